//! Wiring: build the store, embedder, reflector, workers and API from a [`Config`], serve
//! until a shutdown signal, then stop taking jobs and let the jobs in hand finish.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use tokio::sync::{Notify, watch};

use crate::api::{self, ApiContext};
use crate::config::Config;
use crate::embed::Embedder;
use crate::embed::{EmbedService, HashEmbedder, MiniLm, PoolConfig, fetch};
use crate::manager::MemoryManager;
use crate::queue::amqp::{self, AmqpSettings, Broker};
use crate::queue::embedded::{
    ClaimGate, Inline, PauseSwitch, REFLECTION_NICE, WorkerConfig, lower_thread_priority,
    spawn_workers,
};
use crate::recall::Recall;
use crate::reflect::Reflector;
use crate::seams::Seams;
use crate::store::Store;

/// How to run the service: which roles this process plays (API, workers, health only) and,
/// for tests and the benchmark, its [`Seams`].
#[derive(Default, Clone)]
pub struct Options {
    /// Do not start reflection workers in this process (`reflector api`).
    pub no_workers: bool,
    /// Do not serve the API (`reflector worker`): [`Service::addr`] is then `0.0.0.0:0`, or
    /// the health address when [`Options::health_listen`] is set.
    pub no_http: bool,
    /// With `no_http`: serve only the public health check (`GET /api/reflection/health`)
    /// here, for container health checks of a worker.
    pub health_listen: Option<std::net::SocketAddr>,
    /// Serve the API in process only, on no socket ([`Service::rest`]; `reflector mcp` on a
    /// data directory). [`Service::addr`] is then `0.0.0.0:0`.
    pub no_listen: bool,
    /// What only tests and the benchmark set (fault injection, paused workers, a shared
    /// embedding pool): see [`crate::seams`].
    pub seams: Seams,
}

/// A running service.
pub struct Service {
    pub addr: std::net::SocketAddr,
    pub store: Store,
    shutdown: watch::Sender<bool>,
    /// The workers' pause switch (true = lease nothing new).
    paused: watch::Sender<bool>,
    /// Held for reading by each embedded worker's claim; taken for writing by a pause, which
    /// so waits for claims already under way (see [`ClaimGate`]).
    claim_gate: ClaimGate,
    server: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
    workers: Vec<tokio::task::JoinHandle<()>>,
    /// The outbox relay (RabbitMQ mode, processes that serve HTTP).
    relay: Option<tokio::task::JoinHandle<()>>,
    /// The REST routes for in-process calls (`crate::api::rest_router`), unless `no_http`.
    pub rest: Option<axum::Router>,
}

/// Load the embedder named by the config.
pub fn embed_service(cfg: &Config) -> anyhow::Result<EmbedService> {
    embed_service_with(cfg, None)
}

/// The embedder as the pool threads run it: on its first call in each pool thread it lowers
/// that thread's CPU priority (reflection's embeddings yield the CPU to request handling; an
/// idle machine runs them at full speed all the same), and it counts the texts it embeds
/// when asked to (`reflector bench`: embeddings per job).
#[derive(Clone)]
struct PoolEmbedder<E> {
    inner: E,
    texts: Option<Arc<AtomicU64>>,
}

impl<E: Embedder> Embedder for PoolEmbedder<E> {
    fn model_id(&self) -> &str {
        self.inner.model_id()
    }
    fn dim(&self) -> usize {
        self.inner.dim()
    }
    fn embed(&self, texts: &[&str]) -> anyhow::Result<Vec<Vec<f32>>> {
        thread_local! {
            static LOWERED: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
        }
        if !LOWERED.replace(true) {
            lower_thread_priority(REFLECTION_NICE);
        }
        if let Some(n) = &self.texts {
            n.fetch_add(texts.len() as u64, Ordering::Relaxed);
        }
        self.inner.embed(texts)
    }
}

/// [`embed_service`], adding the number of texts embedded to `texts` when given (for the
/// benchmark: [`crate::seams::embed_service_counting`]).
pub(crate) fn embed_service_with(
    cfg: &Config,
    texts: Option<Arc<AtomicU64>>,
) -> anyhow::Result<EmbedService> {
    let pool = PoolConfig {
        threads: cfg.embed_threads,
        ..PoolConfig::default()
    };
    match cfg.embedder.as_str() {
        "hash" => EmbedService::from_clones(
            PoolEmbedder {
                inner: HashEmbedder::new(),
                texts,
            },
            pool,
        ),
        _ => {
            fetch::verify(&cfg.model_dir).with_context(|| {
                format!(
                    "the MiniLM model is not ready in {}; run `reflector model fetch` (or set REFLECTOR_MODEL_DIR)",
                    cfg.model_dir.display()
                )
            })?;
            EmbedService::from_clones(
                PoolEmbedder {
                    inner: MiniLm::load(&cfg.model_dir)?,
                    texts,
                },
                pool,
            )
        }
    }
}

/// The LLM extractor when `llm_base_url` and `llm_model` are set; the key comes from
/// `OPENAI_API_KEY` in the environment only.
pub fn llm_extractor(cfg: &Config) -> anyhow::Result<Option<crate::llm::LlmExtractor>> {
    let (Some(base), Some(model)) = (&cfg.llm_base_url, &cfg.llm_model) else {
        return Ok(None);
    };
    let mut l = crate::llm::LlmConfig::new(base.clone(), model.clone());
    l.api_key = std::env::var("OPENAI_API_KEY")
        .ok()
        .filter(|k| !k.trim().is_empty());
    l.timeout = Duration::from_secs(cfg.llm_timeout_secs);
    l.max_input_chars = cfg.llm_max_input_chars;
    tracing::info!(base_url = %base, model = %model, key = l.api_key.is_some(), "LLM mode: curation and extraction by the model");
    Ok(Some(crate::llm::LlmExtractor::new(l)?))
}

pub fn worker_config(cfg: &Config) -> WorkerConfig {
    WorkerConfig {
        workers: cfg.workers,
        lease_ms: (cfg.lease_secs * 1000) as i64,
        retry_base_ms: cfg.retry_base_ms,
        retry_max_ms: cfg.retry_max_ms,
        idle_poll_ms: 200,
        window: Some(crate::store::Window {
            max_turns: cfg.short_term_window_turns,
            max_tokens: cfg.short_term_window_tokens,
        }),
    }
}

impl Service {
    /// Open everything and start serving on `cfg.listen` (port 0 picks a free port).
    pub async fn start(cfg: Config, opts: Options) -> anyhow::Result<Service> {
        cfg.check_exposure()?;
        let cfg = Arc::new(cfg);
        let store = {
            let cfg = cfg.clone();
            tokio::task::spawn_blocking(move || crate::store::open(&cfg)).await??
        };
        let broker = AmqpSettings::from_config(&cfg).map(Broker::new);
        // RabbitMQ: the jobs table becomes the outbox the relay publishes from.
        store.sync().set_outbox(broker.is_some());
        let embed = match opts.seams.embed.clone() {
            Some(e) => e,
            None => embed_service(&cfg)?,
        };
        let model = embed.model_id().to_string();
        let mut reflector = Reflector::new(store.clone(), embed.clone());
        if let Some(f) = opts.seams.fault.clone() {
            reflector = reflector.with_fault_injector(f);
        }
        if let Some(llm) = llm_extractor(&cfg)? {
            reflector = reflector.with_llm(llm);
        }
        let wake = Arc::new(Notify::new());
        let wcfg = worker_config(&cfg);
        let manager = MemoryManager::new(
            store.clone(),
            Inline::new(reflector.clone(), wcfg.clone()),
            wake.clone(),
            cfg.async_reflection(),
            cfg.max_retries,
            cfg.queue_limits(),
        );
        let recall = Recall::new(
            store.clone(),
            embed.clone(),
            cfg.short_term_turns,
            cfg.recall_window,
        );
        let (tx, rx) = watch::channel(false);
        let (paused, paused_rx) = watch::channel(opts.seams.start_paused);
        let claim_gate = ClaimGate::default();
        let run_workers = !opts.no_workers;
        if run_workers && cfg.retention_secs > 0 {
            spawn_pruner(store.clone(), cfg.retention_secs, rx.clone());
        }
        let workers = match (&broker, run_workers) {
            (_, false) => Vec::new(),
            (Some(b), true) => vec![tokio::spawn(amqp::run_worker(
                b.clone(),
                reflector,
                rx.clone(),
                paused_rx,
            ))],
            (None, true) => spawn_workers(
                reflector,
                wcfg,
                wake.clone(),
                rx.clone(),
                PauseSwitch::new(paused_rx, claim_gate.clone()),
            ),
        };
        // The relay runs where turns are stored: in every process that serves the API.
        let relay = match &broker {
            Some(b) if !opts.no_http => Some(tokio::spawn(amqp::run_relay(
                b.clone(),
                store.clone(),
                wake,
                rx.clone(),
            ))),
            _ => None,
        };
        let queue_backend = if broker.is_some() { "amqp" } else { "embedded" };
        let ctx = ApiContext {
            config: cfg.clone(),
            store: store.clone(),
            manager,
            recall,
            metrics: api::metrics_handle(),
            started: Instant::now(),
            workers_running: run_workers,
            embedder: model,
            embed: embed.clone(),
            broker,
        };
        if opts.no_http {
            let (addr, server) = match opts.health_listen {
                None => ("0.0.0.0:0".parse().expect("static address"), None),
                Some(at) => {
                    let listener = tokio::net::TcpListener::bind(at)
                        .await
                        .with_context(|| format!("cannot listen on {at} (health)"))?;
                    let addr = listener.local_addr()?;
                    let app = api::health_router(ctx);
                    let mut stop = rx.clone();
                    let server = tokio::spawn(async move {
                        axum::serve(listener, app)
                            .with_graceful_shutdown(async move {
                                let _ = stop.wait_for(|v| *v).await;
                            })
                            .await
                            .context("health listener failed")
                    });
                    (addr, Some(server))
                }
            };
            tracing::info!(workers = cfg.workers, queue = queue_backend, db = %crate::store::describe(&cfg), health = ?opts.health_listen.map(|_| addr), "memory reflector worker running");
            return Ok(Service {
                addr,
                store,
                shutdown: tx,
                paused,
                claim_gate,
                server,
                workers,
                relay,
                rest: None,
            });
        }
        let rest = Some(api::rest_router(ctx.clone()));
        if opts.no_listen {
            tracing::info!(workers = if run_workers { cfg.workers } else { 0 }, queue = queue_backend, db = %crate::store::describe(&cfg), "memory reflector running in process (no socket)");
            return Ok(Service {
                addr: "0.0.0.0:0".parse().expect("static address"),
                store,
                shutdown: tx,
                paused,
                claim_gate,
                server: None,
                workers,
                relay,
                rest,
            });
        }
        let listener = tokio::net::TcpListener::bind(cfg.listen)
            .await
            .with_context(|| format!("cannot listen on {}", cfg.listen))?;
        let addr = listener.local_addr()?;
        // No Nagle delay on responses (a response written in two segments would otherwise
        // wait for the client's delayed ACK, ~40 ms).
        let listener = axum::serve::ListenerExt::tap_io(listener, |tcp| {
            let _ = tcp.set_nodelay(true);
        });
        let mcp_stop = tokio_util::sync::CancellationToken::new();
        let app = api::router(ctx, mcp_stop.clone())?;
        let mut stop = rx;
        let server = tokio::spawn(async move {
            axum::serve(listener, app)
                .with_graceful_shutdown(async move {
                    let _ = stop.wait_for(|v| *v).await;
                    mcp_stop.cancel();
                })
                .await
                .context("HTTP server failed")
        });
        tracing::info!(%addr, api_keys = cfg.api_keys.len(), workers = if run_workers { cfg.workers } else { 0 }, queue = queue_backend, fast_mode = cfg.async_reflection(), db = %crate::store::describe(&cfg), "memory reflector serving");
        Ok(Service {
            addr,
            store,
            shutdown: tx,
            paused,
            claim_gate,
            server: Some(server),
            workers,
            relay,
            rest,
        })
    }

    /// Pause (`true`) or resume (`false`) the reflection workers at runtime. Paused workers
    /// lease no new job (on RabbitMQ they cancel their consumers, so prefetched deliveries
    /// return to the queue); jobs already in hand finish. Jobs keep queueing durably
    /// meanwhile.
    pub fn pause_workers(&self, paused: bool) {
        self.paused.send_replace(paused);
        if paused {
            // A claim that started before the switch turned may still lease a job queued
            // after it: wait for those (each holds the gate for one claim, milliseconds), so
            // that once this returns, no job queued from now on is leased until resumed.
            self.claim_gate.wait_for_claims();
        }
    }

    /// Stop accepting requests and jobs; wait up to `grace` for jobs in hand to finish.
    /// A job still running after that keeps its lease, which expires, and it runs again later
    /// (RabbitMQ: its delivery is unacknowledged and returns to the queue).
    pub async fn shutdown(self, grace: Duration) -> anyhow::Result<()> {
        let _ = self.shutdown.send(true);
        let workers = futures_join(self.workers);
        if tokio::time::timeout(grace, workers).await.is_err() {
            tracing::warn!(
                "jobs still running after the grace period; their leases will expire and they will be retried"
            );
        }
        if let Some(relay) = self.relay {
            let _ = tokio::time::timeout(grace, relay).await;
        }
        if let Some(server) = self.server {
            match tokio::time::timeout(grace, server).await {
                Ok(r) => r.map_err(|e| anyhow::anyhow!("server task: {e}"))??,
                Err(_) => tracing::warn!("HTTP connections still open after the grace period"),
            }
        }
        Ok(())
    }
}

/// Retention: every minute (and at start), prune completed jobs and reflected turns older
/// than `retention_secs`, until shutdown.
fn spawn_pruner(store: Store, retention_secs: u64, mut stop: watch::Receiver<bool>) {
    tokio::spawn(async move {
        loop {
            let cutoff = crate::store::now_ms() - (retention_secs as i64).saturating_mul(1000);
            match store.run(move |s| s.prune(cutoff)).await {
                Ok((jobs, turns)) if jobs + turns > 0 => {
                    tracing::info!(
                        jobs,
                        turns,
                        "retention: pruned completed jobs and reflected turns"
                    );
                    metrics::counter!("reflector_pruned_total", "what" => "jobs")
                        .increment(jobs as u64);
                    metrics::counter!("reflector_pruned_total", "what" => "turns")
                        .increment(turns as u64);
                }
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %format!("{e:#}"), "retention: pruning failed"),
            }
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_secs(60)) => {}
                _ = stop.wait_for(|v| *v) => return,
            }
        }
    });
}

async fn futures_join(handles: Vec<tokio::task::JoinHandle<()>>) {
    for h in handles {
        let _ = h.await;
    }
}

/// Wait for SIGINT or SIGTERM, then log that the service is shutting down (the caller then
/// stops taking work and lets the jobs in hand finish).
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {}
        _ = term => {}
    }
    tracing::info!("shutting down: no new jobs; finishing the ones in hand");
}
