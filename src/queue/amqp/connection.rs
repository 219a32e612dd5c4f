//! The connection to the broker: [`AmqpSettings`] from the config (the URL is never shown
//! but redacted), and [`Broker`], one connection (re)opened on demand with the topology
//! declared on each new one, and the operator's view of the broker and its DLQ.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use lapin::options::{
    BasicAckOptions, BasicGetOptions, ConfirmSelectOptions, QueueDeclareOptions, QueuePurgeOptions,
};
use lapin::types::FieldTable;
use lapin::{Channel, Connection, ConnectionProperties};
use serde_json::{Value, json};

use super::H_JOB_ID;
use super::message::{describe_dead, header_str};
use super::topology::{FoundEntity, declare_topology};
use crate::config::Config;
use crate::queue::lifecycle::{self};

/// RabbitMQ settings taken from the [`Config`]. The URL holds a password: it is never
/// logged or shown; [`AmqpSettings::redacted_url`] is what messages print.
#[derive(Clone)]
pub struct AmqpSettings {
    url: String,
    /// Topic exchange producers publish to (`memory_reflection_exchange`).
    pub exchange: String,
    /// Intake queue, declared exactly as the original producer declares it
    /// (`memory_reflection_queue`).
    pub queue: String,
    /// Dead-letter queue (`memory_reflection_dlq`).
    pub dlq: String,
    /// Unacknowledged deliveries per consumer channel.
    pub prefetch: u16,
    /// Concurrent jobs in this worker process.
    pub workers: usize,
    /// Largest job body accepted (bytes); larger ones are dead-lettered.
    pub max_job_bytes: usize,
    /// First retry delay (ms), doubled per attempt up to `retry_max_ms`.
    pub retry_base_ms: u64,
    /// Longest retry delay (ms).
    pub retry_max_ms: u64,
    /// Attempts before a job is dead-lettered; also the intake's `x-max-retries` argument,
    /// as the original declares it (its `reflection_max_retries`).
    pub max_retries: u32,
}

impl AmqpSettings {
    /// The RabbitMQ settings when the config selects the `amqp` queue, else `None`.
    pub fn from_config(cfg: &Config) -> Option<Self> {
        if !cfg.uses_amqp() {
            return None;
        }
        Some(Self {
            url: cfg.rabbitmq_url.clone()?,
            exchange: cfg.amqp_exchange.clone(),
            queue: cfg.amqp_queue.clone(),
            dlq: cfg.amqp_dlq.clone(),
            prefetch: cfg.amqp_prefetch,
            workers: cfg.workers,
            max_job_bytes: cfg.max_body_bytes,
            retry_base_ms: cfg.retry_base_ms,
            retry_max_ms: cfg.retry_max_ms,
            max_retries: cfg.max_retries,
        })
    }

    /// Settings for `url` with the default names (tests, measurements).
    pub fn new(url: &str) -> Self {
        let d = Config::default();
        Self {
            url: url.to_string(),
            exchange: d.amqp_exchange,
            queue: d.amqp_queue,
            dlq: d.amqp_dlq,
            prefetch: d.amqp_prefetch,
            workers: d.workers,
            max_job_bytes: d.max_body_bytes,
            retry_base_ms: d.retry_base_ms,
            retry_max_ms: d.retry_max_ms,
            max_retries: d.max_retries,
        }
    }

    /// The dead-letter exchange: `<exchange>.dlx` (the original's name).
    pub fn dlx(&self) -> String {
        format!("{}.dlx", self.exchange)
    }

    /// The priority queue behind the intake: `<queue>.priority`.
    pub fn work_queue(&self) -> String {
        format!("{}.priority", self.queue)
    }

    /// The delay queue for a retry after `ms` milliseconds: `<queue>.retry.<ms>ms`.
    pub fn delay_queue(&self, ms: u64) -> String {
        format!("{}.retry.{ms}ms", self.queue)
    }

    /// Delay (ms) before retry number `attempt` (1-based): `base * 2^(attempt-1)`, capped.
    /// No jitter: each distinct delay is one queue with a fixed TTL.
    pub fn retry_delay_ms(&self, attempt: u32) -> u64 {
        lifecycle::retry_delay_ms(attempt, self.retry_base_ms, self.retry_max_ms)
    }

    /// The URL with its password replaced by `***`, for messages.
    pub fn redacted_url(&self) -> String {
        redact_url(&self.url)
    }
}

impl std::fmt::Debug for AmqpSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AmqpSettings")
            .field("url", &self.redacted_url())
            .field("exchange", &self.exchange)
            .field("queue", &self.queue)
            .field("dlq", &self.dlq)
            .field("prefetch", &self.prefetch)
            .finish()
    }
}

/// `amqp://user:secret@host/vhost` → `amqp://user:***@host/vhost`.
pub fn redact_url(url: &str) -> String {
    let Some(scheme_end) = url.find("://") else {
        return "<unparsable URL>".into();
    };
    let rest = &url[scheme_end + 3..];
    match rest.rfind('@') {
        Some(at) => {
            let userinfo = &rest[..at];
            let user = userinfo.split(':').next().unwrap_or("");
            format!("{}{user}:***{}", &url[..scheme_end + 3], &rest[at..])
        }
        None => url.to_string(),
    }
}

/// A connection to the broker, (re)opened on demand, with the topology declared on each
/// new connection. Shared by the relay, the worker and the API's operator endpoints.
pub struct Broker {
    settings: AmqpSettings,
    conn: tokio::sync::Mutex<Option<Arc<Connection>>>,
    /// The topology as found on the last connection (empty before the first).
    topology: std::sync::Mutex<Vec<FoundEntity>>,
}

impl Broker {
    /// A broker handle; nothing connects until the first call that needs the broker.
    pub fn new(settings: AmqpSettings) -> Arc<Self> {
        Arc::new(Self {
            settings,
            conn: tokio::sync::Mutex::new(None),
            topology: std::sync::Mutex::new(Vec::new()),
        })
    }

    /// The names and limits this broker handle uses.
    pub fn settings(&self) -> &AmqpSettings {
        &self.settings
    }

    /// A live connection: the current one, or a new one (5 s connect timeout) on which the
    /// topology was declared. Errors name the broker by its redacted URL.
    pub async fn connection(&self) -> anyhow::Result<Arc<Connection>> {
        let mut guard = self.conn.lock().await;
        if let Some(c) = guard.as_ref()
            && c.status().connected()
        {
            return Ok(c.clone());
        }
        *guard = None;
        let url = self.settings.redacted_url();
        let conn = tokio::time::timeout(
            Duration::from_secs(5),
            Connection::connect(&self.settings.url, ConnectionProperties::default()),
        )
        .await
        .map_err(|_| anyhow::anyhow!("cannot connect to RabbitMQ at {url}: timed out after 5 s"))?
        .map_err(|e| anyhow::anyhow!("cannot connect to RabbitMQ at {url}: {e}"))?;
        let conn = Arc::new(conn);
        let found = declare_topology(&conn, &self.settings)
            .await
            .map_err(|e| anyhow::anyhow!("declaring the RabbitMQ topology at {url}: {e:#}"))?;
        *self.topology.lock().unwrap_or_else(|p| p.into_inner()) = found;
        tracing::info!(broker = %url, exchange = %self.settings.exchange, queue = %self.settings.queue, "connected to RabbitMQ");
        *guard = Some(conn.clone());
        Ok(conn)
    }

    /// A new channel on the live connection.
    pub async fn channel(&self) -> anyhow::Result<Channel> {
        Ok(self.connection().await?.create_channel().await?)
    }

    /// A new channel in publisher-confirm mode.
    pub async fn confirm_channel(&self) -> anyhow::Result<Channel> {
        let ch = self.channel().await?;
        ch.confirm_select(ConfirmSelectOptions::default()).await?;
        Ok(ch)
    }

    /// Close the connection (shutdown); the next call opens a new one.
    pub async fn close(&self) {
        if let Some(c) = self.conn.lock().await.take() {
            let _ = c.close(200, "shutdown".into()).await;
        }
    }

    /// Depth and consumers of the intake, priority and dead-letter queues (passive
    /// declarations: nothing is created), and the topology as found when this process last
    /// connected (`topology`: a list of [`FoundEntity`]; entities whose `status` is
    /// `"differs"` are used as the broker holds them). `{"status": "down", "error": …}` when
    /// unreachable.
    pub async fn status(&self) -> Value {
        let r: anyhow::Result<Value> = async {
            let ch = self.channel().await?;
            let s = &self.settings;
            let mut out = serde_json::Map::new();
            for (role, name) in [
                ("intake", s.queue.clone()),
                ("priority", s.work_queue()),
                ("dlq", s.dlq.clone()),
            ] {
                let q = ch
                    .queue_declare(
                        name.as_str().into(),
                        QueueDeclareOptions {
                            passive: true,
                            ..QueueDeclareOptions::default()
                        },
                        FieldTable::default(),
                    )
                    .await?;
                out.insert(
                    role.into(),
                    json!({"name": name, "messages": q.message_count(), "consumers": q.consumer_count()}),
                );
            }
            let _ = ch.close(200, "status".into()).await;
            let topology = self
                .topology
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .clone();
            Ok(json!({"status": "up", "exchange": s.exchange, "queues": out, "topology": topology}))
        }
        .await;
        r.unwrap_or_else(|e| json!({"status": "down", "error": format!("{e:#}")}))
    }

    /// Up to `limit` dead-lettered messages, oldest first, without removing them (they are
    /// fetched unacknowledged and returned to the queue when the channel closes).
    pub async fn dlq_peek(&self, limit: usize) -> anyhow::Result<Vec<Value>> {
        let ch = self.channel().await?;
        let mut out = Vec::new();
        while out.len() < limit {
            let Some(m) = ch
                .basic_get(
                    self.settings.dlq.as_str().into(),
                    BasicGetOptions::default(),
                )
                .await?
            else {
                break;
            };
            out.push(describe_dead(&m.delivery));
        }
        let _ = ch.close(200, "peeked".into()).await;
        Ok(out)
    }

    /// Remove from the DLQ the messages of these jobs (their rows were replayed and the
    /// relay publishes them again); every other message stays. Returns how many were removed.
    pub async fn dlq_remove_jobs(&self, job_ids: &HashSet<String>) -> anyhow::Result<usize> {
        let ch = self.channel().await?;
        let mut removed = 0;
        let mut keep = Vec::new();
        while let Some(m) = ch
            .basic_get(
                self.settings.dlq.as_str().into(),
                BasicGetOptions::default(),
            )
            .await?
        {
            let d = m.delivery;
            let id = header_str(&d.properties, H_JOB_ID).or_else(|| {
                serde_json::from_slice::<Value>(&d.data)
                    .ok()
                    .and_then(|v| v.get("job_id")?.as_str().map(str::to_string))
            });
            if id.is_some_and(|id| job_ids.contains(&id)) {
                d.acker.ack(BasicAckOptions::default()).await?;
                removed += 1;
            } else {
                keep.push(d);
            }
        }
        // Closing the channel returns the unacknowledged rest to the queue, in order.
        drop(keep);
        let _ = ch.close(200, "replayed".into()).await;
        Ok(removed)
    }

    /// Delete every message in the DLQ; returns how many.
    pub async fn dlq_purge(&self) -> anyhow::Result<u32> {
        let ch = self.channel().await?;
        let n = ch
            .queue_purge(
                self.settings.dlq.as_str().into(),
                QueuePurgeOptions::default(),
            )
            .await?;
        let _ = ch.close(200, "purged".into()).await;
        Ok(n)
    }
}
