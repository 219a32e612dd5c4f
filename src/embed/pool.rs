//! [`EmbedService`]: the async, cloneable embedding front end shared by reflector workers
//! and recall requests.
//!
//! Behind it, [`PoolConfig::threads`] OS threads each own one [`Embedder`] and take work
//! from one shared queue with two lanes ([`Lane`]): interactive requests (recall
//! queries, [`EmbedService::embed_query`]) are served before queued bulk work
//! ([`EmbedService::embed`], [`EmbedService::embed_one`]). A thread that becomes free takes every request waiting in
//! one lane, up to [`PoolConfig::max_batch`] texts, embeds them in one call (MiniLM then
//! sorts them by token count and runs padded sub-batches, see [`super::minilm`]), and
//! answers each caller through its own oneshot channel. Larger requests are split so that
//! several threads share them. Requests whose caller gave up (dropped future) are skipped.
//! A failing or panicking batch is retried request by request, so one bad request cannot
//! fail the others, and threads survive panics.
//!
//! # Threads and candle's CPU parallelism
//!
//! candle 0.11 sizes its CPU parallelism for the whole process, from the environment
//! (`candle_core::utils`):
//! - matrix products (gemm) are split into `get_num_threads()` rayon tasks:
//!   `RAYON_NUM_THREADS`, re-read on every call, else the number of *physical* cores
//!   (2 here);
//! - element-wise ops on ≥ 64 Ki elements run on candle's global, spin-waiting "barrier
//!   pool" of `CANDLE_NUM_THREADS` (else `RAYON_NUM_THREADS`, else physical cores) − 1
//!   workers, sized once at first use; concurrent callers take turns on it.
//!
//! There is no per-thread setting. Single-threaded embedders therefore need
//! `RAYON_NUM_THREADS=1` in the process environment (it covers both): set it in the
//! service's environment, or call [`set_single_threaded_kernels`] first thing in `main`.
//! [`PoolConfig::default`] adapts to whichever is in effect (cores ÷ candle threads).
//!
//! Measured on this 2-core KVM box (Xeon, AVX-512) with `bench_throughput` below: 512
//! sentences of 19.4 tokens on average, sent as 64 concurrent requests of 8, `max_batch`
//! 64. The box was shared with other jobs (load 1–8), so sentences/s is the best of ~20
//! runs; CPU time per sentence is stable under load:
//!
//! | configuration | sentences/s | CPU-ms / sentence |
//! |---|---|---|
//! | 1 thread, single-threaded kernels (`RAYON_NUM_THREADS=1`) | 101 | 9.3–10.7 |
//! | 1 embedder with candle's default 2 threads | 167 | 12.7–14.6 |
//! | **pool of 2 single-threaded embedders** (`RAYON_NUM_THREADS=1`) | 161 | 9.5–10.6 |
//! | pool of 2 embedders with 2 candle threads each | 120 | 13.1–16.0 |
//!
//! The pool of single-threaded embedders needs ~30% less CPU per sentence (no
//! spin-waiting barrier pool, no rayon hand-offs). On the least loaded runs it was level
//! with one 2-threaded embedder (161 vs 167, within noise); under load it was clearly
//! faster (median 68 vs 52 sentences/s over 6 runs at load 3–6); and it serves two
//! queries at once. It is the recommended setup and the default under
//! `RAYON_NUM_THREADS=1`; without that variable the default falls back to one 2-threaded
//! embedder, avoiding the worst row (4 busy threads on 2 cores). One sentence alone takes
//! ~20 ms on an idle core in every configuration (too small for candle to parallelise).
//! `max_batch` from 8 to 64 made no measurable difference (9.8–10.5 CPU-ms/sentence), so
//! the default of 32 is about latency: it bounds how long an interactive request waits
//! behind a bulk batch (~0.3 s of short texts per thread).

use std::collections::VecDeque;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::Instant;

use anyhow::{anyhow, bail};
use tokio::sync::oneshot;

use super::Embedder;

/// Sizing of an [`EmbedService`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PoolConfig {
    /// Number of embedding threads, each owning one embedder. Default: available cores
    /// divided by candle's threads per embedder (`candle_core::utils::get_num_threads`), at
    /// least 1: 2 threads here with `RAYON_NUM_THREADS=1`, else 1 thread (see module docs).
    pub threads: usize,
    /// Most texts one thread takes from the queue for one embedder call. Larger requests
    /// are split into parts of this size. Default 32.
    pub max_batch: usize,
}

impl Default for PoolConfig {
    fn default() -> Self {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        let per_embedder = candle_core::utils::get_num_threads().max(1);
        PoolConfig {
            threads: (cores / per_embedder).max(1),
            max_batch: 32,
        }
    }
}

/// Makes candle's CPU kernels single-threaded for the whole process by setting
/// `RAYON_NUM_THREADS=1` unless it is already set (then it is left alone), so that
/// [`PoolConfig::default`] runs one single-threaded embedder per core, the fastest setup
/// (see the module docs). Returns the value in effect. Side effect: rayon's global pool,
/// if anything else in the process uses it, is single-threaded too.
///
/// # Safety
/// Same contract as [`std::env::set_var`]: call it at the start of `main`, before any other
/// thread (tokio runtime, logging, …) is started, and before the first embedding.
pub unsafe fn set_single_threaded_kernels() -> String {
    match std::env::var("RAYON_NUM_THREADS") {
        Ok(v) if !v.is_empty() => v,
        _ => {
            // SAFETY: the caller guarantees no other thread is running.
            unsafe { std::env::set_var("RAYON_NUM_THREADS", "1") };
            "1".to_owned()
        }
    }
}

type Reply = oneshot::Sender<anyhow::Result<Vec<Vec<f32>>>>;

/// Which lane of the pool's queue a request waits in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lane {
    /// Someone is waiting on the answer (a recall query): served before any queued bulk
    /// work, and never batched with bulk texts. Keep it for small requests.
    Interactive,
    /// Throughput work (reflection, re-indexing): served in arrival order.
    Bulk,
}

/// One caller's request (or a `max_batch`-sized part of it).
struct Job {
    texts: Vec<String>,
    reply: Reply,
}

/// The queue shared by the pool threads: two FIFO lanes under one lock.
struct Queue {
    state: Mutex<Lanes>,
    ready: Condvar,
}

struct Lanes {
    interactive: VecDeque<Job>,
    bulk: VecDeque<Job>,
    /// Set when the last [`EmbedService`] clone is dropped: threads exit.
    closed: bool,
}

impl Queue {
    fn lock(&self) -> MutexGuard<'_, Lanes> {
        // A poisoned lock only means a thread panicked while holding it; the lanes
        // themselves are always consistent (plain pushes and pops).
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn push(&self, lane: Lane, jobs: Vec<Job>) {
        let mut lanes = self.lock();
        match lane {
            Lane::Interactive => lanes.interactive.extend(jobs),
            Lane::Bulk => lanes.bulk.extend(jobs),
        }
        drop(lanes);
        self.ready.notify_all();
    }

    /// Blocks until work is waiting, then takes a batch: interactive jobs if any are
    /// waiting, else bulk jobs, in order, while they fit in `max_batch` texts (always at
    /// least one job). `None` once closed.
    fn next_batch(&self, max_batch: usize) -> Option<Vec<Job>> {
        let mut lanes = self.lock();
        while !lanes.closed && lanes.interactive.is_empty() && lanes.bulk.is_empty() {
            lanes = self.ready.wait(lanes).unwrap_or_else(|e| e.into_inner());
        }
        if lanes.closed {
            return None;
        }
        let lane = if lanes.interactive.is_empty() {
            &mut lanes.bulk
        } else {
            &mut lanes.interactive
        };
        let mut n = 0;
        let mut jobs = Vec::new();
        while let Some(job) = lane.front() {
            if !jobs.is_empty() && n + job.texts.len() > max_batch {
                break;
            }
            n += job.texts.len();
            jobs.extend(lane.pop_front());
        }
        Some(jobs)
    }
}

struct Inner {
    queue: Arc<Queue>,
    model_id: String,
    dim: usize,
    max_batch: usize,
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.queue.lock().closed = true;
        self.queue.ready.notify_all();
    }
}

/// Async, cloneable handle to a pool of embedding threads. Clones share the pool; the
/// threads exit once every clone is dropped.
#[derive(Clone)]
pub struct EmbedService {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for EmbedService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmbedService")
            .field("model_id", &self.inner.model_id)
            .field("dim", &self.inner.dim)
            .finish()
    }
}

impl EmbedService {
    /// Starts `config.threads` threads, each with its own embedder from `factory` (called
    /// `threads` times, here, on the caller's thread).
    ///
    /// # Errors
    /// `threads` or `max_batch` is 0, the factory fails, the embedders disagree on model id
    /// or dimension, or a thread cannot be spawned.
    pub fn new<F>(config: PoolConfig, factory: F) -> anyhow::Result<EmbedService>
    where
        F: Fn() -> anyhow::Result<Box<dyn Embedder>>,
    {
        if config.threads == 0 || config.max_batch == 0 {
            bail!("embedding pool needs threads >= 1 and max_batch >= 1, got {config:?}");
        }
        let embedders = (0..config.threads)
            .map(|_| factory())
            .collect::<anyhow::Result<Vec<_>>>()?;
        let (model_id, dim) = (embedders[0].model_id().to_owned(), embedders[0].dim());
        if let Some(e) = embedders
            .iter()
            .find(|e| e.model_id() != model_id || e.dim() != dim)
        {
            bail!(
                "embedding pool factory made different models: {model_id}/{dim} and {}/{}",
                e.model_id(),
                e.dim()
            );
        }
        let queue = Arc::new(Queue {
            state: Mutex::new(Lanes {
                interactive: VecDeque::new(),
                bulk: VecDeque::new(),
                closed: false,
            }),
            ready: Condvar::new(),
        });
        // Built before spawning so that a spawn failure closes the queue (Inner::drop) and
        // stops the threads already started.
        let inner = Arc::new(Inner {
            queue: Arc::clone(&queue),
            model_id,
            dim,
            max_batch: config.max_batch,
        });
        for (i, embedder) in embedders.into_iter().enumerate() {
            let queue = Arc::clone(&queue);
            let max_batch = config.max_batch;
            std::thread::Builder::new()
                .name(format!("embed-{i}"))
                .spawn(move || worker(&*embedder, &queue, max_batch))?;
        }
        tracing::info!(
            model_id = inner.model_id,
            dim,
            threads = config.threads,
            max_batch = config.max_batch,
            candle_threads = candle_core::utils::get_num_threads(),
            "embedding pool started"
        );
        Ok(EmbedService { inner })
    }

    /// [`EmbedService::new`] with each thread owning a clone of `embedder` (for
    /// [`super::MiniLm`], clones share the weights).
    ///
    /// # Errors
    /// As [`EmbedService::new`].
    pub fn from_clones<E>(embedder: E, config: PoolConfig) -> anyhow::Result<EmbedService>
    where
        E: Embedder + Clone + 'static,
    {
        Self::new(config, || Ok(Box::new(embedder.clone())))
    }

    /// Model id of the vectors (see [`Embedder::model_id`]).
    pub fn model_id(&self) -> &str {
        &self.inner.model_id
    }

    /// Dimensions of the vectors.
    pub fn dim(&self) -> usize {
        self.inner.dim
    }

    /// Embeds `texts` in the [`Lane::Bulk`] lane: one L2-normalised vector of
    /// [`EmbedService::dim`] `f32`s per text, in order.
    ///
    /// # Errors
    /// As [`EmbedService::embed_with`].
    pub async fn embed(&self, texts: Vec<String>) -> anyhow::Result<Vec<Vec<f32>>> {
        self.embed_with(texts, Lane::Bulk).await
    }

    /// Embeds one text in the [`Lane::Bulk`] lane (see [`EmbedService::embed`]).
    ///
    /// # Errors
    /// As [`EmbedService::embed_with`].
    pub async fn embed_one(&self, text: String) -> anyhow::Result<Vec<f32>> {
        let mut v = self.embed_with(vec![text], Lane::Bulk).await?;
        v.pop()
            .ok_or_else(|| anyhow!("embedder returned no vector"))
    }

    /// Embeds a query someone is waiting on (recall) in the [`Lane::Interactive`] lane: it
    /// overtakes queued bulk work and waits at most for the batches already in progress.
    ///
    /// # Errors
    /// As [`EmbedService::embed_with`].
    pub async fn embed_query(&self, text: String) -> anyhow::Result<Vec<f32>> {
        let mut v = self.embed_with(vec![text], Lane::Interactive).await?;
        v.pop()
            .ok_or_else(|| anyhow!("embedder returned no vector"))
    }

    /// Embeds `texts` in the given lane: one L2-normalised vector of
    /// [`EmbedService::dim`] `f32`s per text, in order. Requests of more than `max_batch`
    /// texts are split so that several threads share them. Cancel-safe: the texts of a
    /// dropped future are skipped unless already being embedded.
    ///
    /// # Errors
    /// The embedder failed on these texts (e.g. tokenizer error; other requests of the
    /// same batch are unaffected), or a pool thread died.
    pub async fn embed_with(
        &self,
        texts: Vec<String>,
        lane: Lane,
    ) -> anyhow::Result<Vec<Vec<f32>>> {
        if texts.is_empty() {
            return Ok(Vec::new());
        }
        let n = texts.len();
        let mut jobs = Vec::with_capacity(n.div_ceil(self.inner.max_batch));
        let mut pending = Vec::with_capacity(jobs.capacity());
        let mut texts = texts.into_iter().peekable();
        while texts.peek().is_some() {
            let part: Vec<String> = texts.by_ref().take(self.inner.max_batch).collect();
            let (reply, rx) = oneshot::channel();
            jobs.push(Job { texts: part, reply });
            pending.push(rx);
        }
        self.inner.queue.push(lane, jobs);
        let mut out = Vec::with_capacity(n);
        for rx in pending {
            out.extend(rx.await.map_err(|_| anyhow!("embedding thread exited"))??);
        }
        Ok(out)
    }
}

/// Loop of one pool thread: take a batch of waiting jobs, embed, reply; exit when the
/// queue is closed (every [`EmbedService`] clone dropped).
fn worker(embedder: &dyn Embedder, queue: &Queue, max_batch: usize) {
    while let Some(mut jobs) = queue.next_batch(max_batch) {
        jobs.retain(|j| !j.reply.is_closed());
        if jobs.is_empty() {
            continue;
        }
        let start = Instant::now();
        let n: usize = jobs.iter().map(|j| j.texts.len()).sum();
        let texts: Vec<&str> = jobs
            .iter()
            .flat_map(|j| j.texts.iter().map(String::as_str))
            .collect();
        match embed_checked(embedder, &texts) {
            Ok(mut vectors) => {
                // Split back per job, last job first so `split_off` is cheap.
                for job in jobs.into_iter().rev() {
                    let rest = vectors.split_off(vectors.len() - job.texts.len());
                    let _ = job.reply.send(Ok(rest));
                }
            }
            Err(e) if jobs.len() == 1 => {
                if let Some(job) = jobs.pop() {
                    let _ = job.reply.send(Err(e));
                }
            }
            Err(e) => {
                tracing::warn!(
                    error = format!("{e:#}"),
                    "embedding batch failed; retrying request by request"
                );
                for job in jobs {
                    let texts: Vec<&str> = job.texts.iter().map(String::as_str).collect();
                    let _ = job.reply.send(embed_checked(embedder, &texts));
                }
            }
        }
        tracing::debug!(
            texts = n,
            ms = start.elapsed().as_secs_f64() * 1e3,
            "embedded batch"
        );
    }
}

/// `embedder.embed`, with panics turned into errors and the output count checked.
fn embed_checked(embedder: &dyn Embedder, texts: &[&str]) -> anyhow::Result<Vec<Vec<f32>>> {
    let vectors = catch_unwind(AssertUnwindSafe(|| embedder.embed(texts))).map_err(|p| {
        let msg = p
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| p.downcast_ref::<String>().cloned())
            .unwrap_or_default();
        anyhow!("embedder panicked: {msg}")
    })??;
    if vectors.len() != texts.len() {
        bail!(
            "embedder returned {} vectors for {} texts",
            vectors.len(),
            texts.len()
        );
    }
    Ok(vectors)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::embed::{HashEmbedder, cosine, test_minilm};
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    /// Hash embedder that records batch sizes, can be slowed down, and fails or panics on
    /// texts "FAIL" / "PANIC".
    #[derive(Clone, Default)]
    struct Probe {
        /// (number of texts, first text) of each call.
        calls: Arc<Mutex<Vec<(usize, String)>>>,
        delay: Duration,
    }

    impl Embedder for Probe {
        fn model_id(&self) -> &str {
            "probe"
        }
        fn dim(&self) -> usize {
            384
        }
        fn embed(&self, texts: &[&str]) -> anyhow::Result<Vec<Vec<f32>>> {
            self.calls
                .lock()
                .unwrap()
                .push((texts.len(), texts[0].to_owned()));
            std::thread::sleep(self.delay);
            if texts.contains(&"FAIL") {
                bail!("bad text");
            }
            if texts.contains(&"PANIC") {
                panic!("boom");
            }
            HashEmbedder.embed(texts)
        }
    }

    fn strings(prefix: &str, n: usize) -> Vec<String> {
        (0..n)
            .map(|i| format!("{prefix} text number {i}"))
            .collect()
    }

    #[tokio::test]
    async fn results_match_direct_embedding_in_order() {
        let svc = EmbedService::from_clones(
            HashEmbedder,
            PoolConfig {
                threads: 2,
                max_batch: 8,
            },
        )
        .unwrap();
        assert_eq!((svc.model_id(), svc.dim()), ("hash-384", 384));
        let texts = strings("a", 50); // split into 7 parts over 2 threads
        let got = svc.embed(texts.clone()).await.unwrap();
        let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
        assert_eq!(got, HashEmbedder.embed(&refs).unwrap());
        assert_eq!(
            svc.embed_one("a text number 3".into()).await.unwrap(),
            got[3]
        );
        assert!(svc.embed(vec![]).await.unwrap().is_empty());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn concurrent_callers_are_batched_and_answered_correctly() {
        let probe = Probe {
            delay: Duration::from_millis(20),
            ..Default::default()
        };
        let svc = EmbedService::from_clones(
            probe.clone(),
            PoolConfig {
                threads: 1,
                max_batch: 16,
            },
        )
        .unwrap();
        let tasks: Vec<_> = (0..40)
            .map(|i| {
                let svc = svc.clone();
                tokio::spawn(async move {
                    let texts = strings(&format!("caller {i}"), 1 + i % 3);
                    (svc.embed(texts.clone()).await.unwrap(), texts)
                })
            })
            .collect();
        for t in tasks {
            let (got, texts) = t.await.unwrap();
            let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
            assert_eq!(got, HashEmbedder.embed(&refs).unwrap());
        }
        let calls: Vec<usize> = probe.calls.lock().unwrap().iter().map(|c| c.0).collect();
        assert_eq!(
            calls.iter().sum::<usize>(),
            (0..40).map(|i| 1 + i % 3).sum::<usize>()
        );
        assert!(calls.iter().all(|&n| n <= 16), "{calls:?}");
        assert!(
            calls.len() < 40,
            "waiting requests must be batched: {calls:?}"
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn a_failing_request_does_not_fail_its_batch_mates() {
        let probe = Probe {
            delay: Duration::from_millis(30),
            ..Default::default()
        };
        let svc = EmbedService::from_clones(
            probe.clone(),
            PoolConfig {
                threads: 1,
                max_batch: 64,
            },
        )
        .unwrap();
        // Occupy the thread so the next requests queue up and are batched together.
        let busy = tokio::spawn({
            let svc = svc.clone();
            async move { svc.embed_one("warm up".into()).await }
        });
        tokio::time::sleep(Duration::from_millis(5)).await;
        let ok = svc.embed(vec!["fine".into()]);
        let bad = svc.embed(vec!["FAIL".into()]);
        let boom = svc.embed(vec!["x".into(), "PANIC".into()]);
        let (ok, bad, boom) = tokio::join!(ok, bad, boom);
        assert!(busy.await.unwrap().is_ok());
        assert_eq!(ok.unwrap(), HashEmbedder.embed(&["fine"]).unwrap());
        assert!(format!("{:#}", bad.unwrap_err()).contains("bad text"));
        assert!(format!("{:#}", boom.unwrap_err()).contains("panicked: boom"));
        // The thread survived the panic.
        assert_eq!(svc.embed_one("fine".into()).await.unwrap().len(), 384);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn interactive_requests_overtake_queued_bulk_work() {
        let probe = Probe {
            delay: Duration::from_millis(300),
            ..Default::default()
        };
        let svc = EmbedService::from_clones(
            probe.clone(),
            PoolConfig {
                threads: 1,
                max_batch: 2,
            },
        )
        .unwrap();
        let bulk = tokio::spawn({
            let svc = svc.clone();
            // Three jobs of two texts: the first starts at once, two wait in the bulk lane.
            async move { svc.embed(strings("bulk", 6)).await }
        });
        // Send the query while the first bulk job is being embedded.
        while probe.calls.lock().unwrap().is_empty() {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        let query = svc.embed_query("query".into()).await.unwrap();
        assert_eq!(query, HashEmbedder.embed_text("query"));
        assert_eq!(bulk.await.unwrap().unwrap().len(), 6);
        let order: Vec<String> = probe
            .calls
            .lock()
            .unwrap()
            .iter()
            .map(|c| c.1.clone())
            .collect();
        assert_eq!(
            order,
            [
                "bulk text number 0",
                "query",
                "bulk text number 2",
                "bulk text number 4"
            ],
        );
    }

    #[test]
    fn threads_exit_when_the_service_is_dropped() {
        let probe = Probe::default();
        let svc = EmbedService::from_clones(
            probe.clone(),
            PoolConfig {
                threads: 2,
                max_batch: 4,
            },
        )
        .unwrap();
        // Each thread holds a clone of the probe (and so of `calls`).
        assert_eq!(Arc::strong_count(&probe.calls), 3);
        drop(svc);
        let deadline = Instant::now() + Duration::from_secs(5);
        while Arc::strong_count(&probe.calls) > 1 {
            assert!(Instant::now() < deadline, "pool threads did not exit");
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    #[test]
    fn rejects_bad_config_and_mixed_models() {
        let zero = EmbedService::from_clones(
            HashEmbedder,
            PoolConfig {
                threads: 0,
                max_batch: 1,
            },
        );
        assert!(zero.is_err());
        let n = AtomicUsize::new(0);
        let mixed = EmbedService::new(
            PoolConfig {
                threads: 2,
                max_batch: 4,
            },
            || {
                Ok(if n.fetch_add(1, Ordering::SeqCst) == 0 {
                    Box::new(HashEmbedder)
                } else {
                    Box::new(Probe::default())
                })
            },
        );
        assert!(format!("{:#}", mixed.unwrap_err()).contains("different models"));
    }

    #[tokio::test]
    async fn minilm_through_the_pool() {
        let svc = EmbedService::from_clones(
            test_minilm().clone(),
            PoolConfig {
                threads: 2,
                max_batch: 4,
            },
        )
        .unwrap();
        let v = svc
            .embed(vec![
                "A man is eating food.".into(),
                "A man is eating a piece of bread.".into(),
                "The girl is carrying a baby.".into(),
            ])
            .await
            .unwrap();
        assert!((cosine(&v[0], &v[1]) - 0.7553).abs() < 1e-3);
        assert!((cosine(&v[0], &v[2]) - -0.1050).abs() < 1e-3);
    }

    /// User + system CPU time of this process, from `/proc/self/stat` (Linux; 0 elsewhere).
    fn process_cpu_seconds() -> f64 {
        let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
        // Fields after the parenthesised command name; utime and stime are fields 14 and 15.
        let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
        let f: Vec<f64> = rest
            .split_whitespace()
            .map(|x| x.parse().unwrap_or(0.0))
            .collect();
        if f.len() < 13 {
            return 0.0;
        }
        (f[11] + f[12]) / 100.0 // USER_HZ is 100 on Linux
    }

    /// Throughput benchmark (not run by default). Reproduces the module-doc table, one
    /// configuration per process since candle reads its thread count from the environment:
    ///
    /// ```text
    /// B="cargo test --release --lib embed::pool::tests::bench_throughput -- --ignored --nocapture"
    /// export REFLECTOR_BENCH_MAX_BATCH=64
    /// REFLECTOR_BENCH_THREADS=1 RAYON_NUM_THREADS=1 $B  # 1 single-threaded embedder
    /// REFLECTOR_BENCH_THREADS=1 $B                      # 1 embedder, candle default threads
    /// REFLECTOR_BENCH_THREADS=2 RAYON_NUM_THREADS=1 $B  # pool of 2 single-threaded
    /// REFLECTOR_BENCH_THREADS=2 $B                      # pool of 2, candle default threads
    /// ```
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    #[ignore = "benchmark: run explicitly"]
    async fn bench_throughput() {
        let env = |k: &str| std::env::var(k).ok().and_then(|s| s.parse::<usize>().ok());
        let threads = env("REFLECTOR_BENCH_THREADS").unwrap_or(2);
        let max_batch = env("REFLECTOR_BENCH_MAX_BATCH").unwrap_or(PoolConfig::default().max_batch);
        let model = test_minilm().clone();
        let cities = [
            "Berlin", "Lisbon", "Osaka", "Toronto", "Nairobi", "Lima", "Oslo", "Hanoi",
        ];
        let things = [
            "tea", "jazz", "hiking", "chess", "sushi", "poetry", "cycling", "opera",
        ];
        let texts: Vec<String> = (0..512)
            .map(|i| {
                format!(
                    "On day {i} the user said they like {} and want to visit {} next summer.",
                    things[i % 8],
                    cities[(i / 8) % 8]
                )
            })
            .collect();
        let tokens: usize = texts.iter().map(|t| model.token_count(t).unwrap()).sum();
        let svc = EmbedService::from_clones(model, PoolConfig { threads, max_batch }).unwrap();
        svc.embed(texts[..64].to_vec()).await.unwrap(); // warm up

        // Many concurrent callers, 8 texts each (reflector workers).
        let cpu0 = process_cpu_seconds();
        let start = Instant::now();
        let tasks: Vec<_> = texts
            .chunks(8)
            .map(|c| {
                let (svc, c) = (svc.clone(), c.to_vec());
                tokio::spawn(async move { svc.embed(c).await.unwrap() })
            })
            .collect();
        for t in tasks {
            t.await.unwrap();
        }
        let secs = start.elapsed().as_secs_f64();
        let cpu = process_cpu_seconds() - cpu0;

        // Sequential single-sentence latency (recall requests on an idle pool).
        let mut lat: Vec<f64> = Vec::new();
        for t in texts.iter().take(30) {
            let s = Instant::now();
            svc.embed_one(t.clone()).await.unwrap();
            lat.push(s.elapsed().as_secs_f64() * 1e3);
        }
        lat.sort_by(f64::total_cmp);
        println!(
            "BENCH threads={threads} max_batch={max_batch} RAYON_NUM_THREADS={:?} get_num_threads={}: {:.0} sentences/s \
             ({} sentences, {:.1} tokens avg, {secs:.2} s, {:.1} CPU-ms/sentence); \
             embed_one p50 {:.1} ms",
            std::env::var("RAYON_NUM_THREADS").ok(),
            candle_core::utils::get_num_threads(),
            texts.len() as f64 / secs,
            texts.len(),
            tokens as f64 / texts.len() as f64,
            cpu * 1e3 / texts.len() as f64,
            lat[lat.len() / 2],
        );
    }
}
