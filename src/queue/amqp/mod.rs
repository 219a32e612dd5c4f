//! The RabbitMQ queue backend (lapin): topology, the outbox relay (producer), the intake
//! forwarder, the consumer that reflects jobs, and the operator's view of the broker.
//!
//! # Topology (declared idempotently by every process that connects; see [`topology`])
//! ```text
//! producers ──► memory_reflection_exchange (topic, durable)
//!                 │ reflection.#  (ours; the original producer adds reflection.*)
//!                 ▼
//!               memory_reflection_queue            durable classic, arguments EXACTLY the
//!                 │ (intake)                        original's: x-dead-letter-exchange =
//!                 │                                 memory_reflection_exchange.dlx,
//!                 │                                 x-dead-letter-routing-key = failed,
//!                 │                                 x-max-retries = max_retries
//!                 ▼ forwarder: decode, priority from the job, confirm, then ack
//!               memory_reflection_queue.priority   durable classic, x-max-priority = 3
//!                 ▼ consumer: manual ack after every tier committed
//!   tier failed ──► memory_reflection_queue.retry.<ms>ms  (x-message-ttl = ms, dead-letters
//!                     back into .priority: exponential backoff without a sleeping consumer)
//!   poison / exhausted ──► memory_reflection_dlq   (bound to memory_reflection_exchange.dlx,
//!                     topic as the original declares it, with `failed`), headers
//!                     x-reflector-reason / -attempts / -job-id
//! ```
//! Why two queues: RabbitMQ refuses (406 PRECONDITION_FAILED) a re-declaration whose
//! arguments differ, and `x-max-priority` is one of the compared arguments. The original
//! Python producer declares `memory_reflection_queue` with its dead-letter arguments and
//! `x-max-retries`, and no priority, so that queue must keep exactly those arguments for the
//! original producer to keep working on a broker we set up; the priority queue is a second
//! queue behind it.
//! Messages from any producer take the same path, and the forwarder sets the AMQP priority
//! from the job's own `priority` field (the original producer never set it).
//!
//! Delivery guarantees: the job row is written with its turn (the outbox); the relay
//! publishes persistent, `mandatory` messages with publisher confirms and marks the row
//! published on the confirm. The forwarder acks the intake message only after the broker
//! confirmed its copy in the priority queue; the consumer acks only after every tier
//! committed (or the retry / dead-letter message was confirmed). At-least-once throughout,
//! made exactly-once in effect by the per-(job, tier) idempotency of the store.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use lapin::options::{
    BasicAckOptions, BasicCancelOptions, BasicConsumeOptions, BasicGetOptions, BasicNackOptions,
    BasicPublishOptions, BasicQosOptions, ConfirmSelectOptions, QueueDeclareOptions,
    QueuePurgeOptions,
};
use lapin::types::{AMQPValue, FieldTable, LongString, ShortString};
use lapin::{BasicProperties, Channel, Connection, ConnectionProperties};
use serde_json::{Value, json};
use tokio::sync::{Notify, Semaphore, watch};
use tokio::task::JoinSet;

use crate::config::Config;
use crate::job::{Priority, ReflectionJob};
use crate::queue::lifecycle::{self, Transition};
use crate::reflect::Reflector;
use crate::store::Delivery;
use crate::store::Store;
use crate::store::now_ms;

pub mod topology;

use topology::{FoundEntity, declare_delay_queue, declare_topology};

/// `x-max-priority` of the priority queue: job priorities are 0 (low) ..= 3 (urgent).
pub const MAX_PRIORITY: u8 = 3;
/// Routing key of the dead-letter exchange's binding to the DLQ (the original's).
pub const DLQ_ROUTING_KEY: &str = "failed";
/// Header: why a message was dead-lettered (text).
pub const H_REASON: &str = "x-reflector-reason";
/// Header: processing attempts started before it was dead-lettered or retried (integer).
pub const H_ATTEMPTS: &str = "x-reflector-attempts";
/// Header: the job id, when the body decoded far enough to have one.
pub const H_JOB_ID: &str = "x-reflector-job-id";
/// Header: the routing key the message was first published with.
pub const H_ROUTING_KEY: &str = "x-reflector-routing-key";
/// Header: when it was dead-lettered (RFC 3339 UTC).
pub const H_DEAD_AT: &str = "x-reflector-dead-at";
/// Header: size in bytes of the original body, when the DLQ copy keeps only its beginning.
pub const H_BODY_BYTES: &str = "x-reflector-body-bytes";
/// Bytes of an oversized body kept in its dead-letter copy.
const DLQ_BODY_KEEP: usize = 64 * 1024;
/// Longest AMQP routing key (a short string).
const MAX_ROUTING_KEY: usize = 255;
/// Jobs the relay publishes per round (confirms in flight at once).
const RELAY_BATCH: usize = 500;

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

/// The routing key of a job: `reflection.<user_id>`, any characters (dots included; the
/// binding is `reflection.#`), cut at a character boundary to AMQP's 255 bytes.
pub fn routing_key(user_id: &str) -> String {
    let mut k = format!("reflection.{user_id}");
    if k.len() > MAX_ROUTING_KEY {
        let mut cut = MAX_ROUTING_KEY;
        while !k.is_char_boundary(cut) {
            cut -= 1;
        }
        k.truncate(cut);
    }
    k
}

/// Decode and check a job body; the error is the dead-letter reason, naming the problem.
pub fn decode_job(body: &[u8], max_bytes: usize) -> Result<ReflectionJob, String> {
    if body.len() > max_bytes {
        return Err(format!(
            "body is {} bytes, over the {max_bytes}-byte limit (max_body_bytes)",
            body.len()
        ));
    }
    let job = ReflectionJob::from_json(body)?;
    for (field, v) in [
        ("job_id", &job.job_id),
        ("user_id", &job.user_id),
        ("session_id", &job.session_id),
    ] {
        if v.trim().is_empty() {
            return Err(format!("{field} is empty"));
        }
        if v.len() > 256 {
            return Err(format!("{field} is {} bytes, over 256", v.len()));
        }
        if v.chars().any(char::is_control) {
            return Err(format!("{field} contains control characters"));
        }
    }
    if !job.metadata.is_object() {
        return Err(format!(
            "metadata must be an object, got {}",
            crate::job::json_kind(&job.metadata)
        ));
    }
    Ok(job)
}

fn lstr(s: &str) -> AMQPValue {
    AMQPValue::LongString(LongString::from(s.as_bytes().to_vec()))
}

fn header_str(props: &BasicProperties, key: &str) -> Option<String> {
    let h = props.headers().as_ref()?;
    match h.inner().get(key)? {
        AMQPValue::LongString(s) => Some(String::from_utf8_lossy(s.as_bytes()).into_owned()),
        AMQPValue::ShortString(s) => Some(s.as_str().to_string()),
        _ => None,
    }
}

fn header_int(props: &BasicProperties, key: &str) -> Option<i64> {
    let h = props.headers().as_ref()?;
    match h.inner().get(key)? {
        AMQPValue::LongLongInt(v) => Some(*v),
        AMQPValue::LongInt(v) => Some(*v as i64),
        AMQPValue::LongUInt(v) => Some(*v as i64),
        AMQPValue::ShortInt(v) => Some(*v as i64),
        AMQPValue::ShortUInt(v) => Some(*v as i64),
        AMQPValue::ShortShortInt(v) => Some(*v as i64),
        AMQPValue::ShortShortUInt(v) => Some(*v as i64),
        _ => None,
    }
}

fn persistent(priority: Priority, job_id: Option<&str>, headers: FieldTable) -> BasicProperties {
    let mut p = BasicProperties::default()
        .with_delivery_mode(2)
        .with_priority(priority.as_i64() as u8)
        .with_content_type(ShortString::from("application/json"))
        .with_headers(headers);
    if let Some(id) = job_id {
        p = p.with_message_id(ShortString::from(id));
    }
    p
}

fn mandatory() -> BasicPublishOptions {
    BasicPublishOptions {
        mandatory: true,
        ..BasicPublishOptions::default()
    }
}

/// Wait for a publisher confirm; a nack or a returned (unroutable) message is an error.
async fn confirmed(pc: lapin::PublisherConfirm, what: &str) -> anyhow::Result<()> {
    let c = pc
        .await
        .map_err(|e| anyhow::anyhow!("{what}: no confirm: {e}"))?;
    if c.is_nack() {
        anyhow::bail!("{what}: the broker refused the message (nack)");
    }
    if let Some(ret) = c.take_message() {
        anyhow::bail!(
            "{what}: unroutable ({} {}): no queue bound for routing key {:?}",
            ret.reply_code,
            ret.reply_text,
            ret.delivery.routing_key.as_str()
        );
    }
    Ok(())
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

/// What the API shows of a dead-lettered message.
fn describe_dead(d: &lapin::message::Delivery) -> Value {
    let body = String::from_utf8_lossy(&d.data[..d.data.len().min(512)]).into_owned();
    json!({
        "job_id": header_str(&d.properties, H_JOB_ID),
        "reason": header_str(&d.properties, H_REASON),
        "attempts": header_int(&d.properties, H_ATTEMPTS),
        "routing_key": header_str(&d.properties, H_ROUTING_KEY),
        "dead_at": header_str(&d.properties, H_DEAD_AT),
        "body_bytes": header_int(&d.properties, H_BODY_BYTES).unwrap_or(d.data.len() as i64),
        "body_start": body,
    })
}

/// Publish a copy of `d` to the DLQ with the reason (confirmed). Oversized bodies keep
/// their first 64 KiB.
async fn dead_letter(
    ch: &Channel,
    s: &AmqpSettings,
    d: &lapin::message::Delivery,
    reason: &str,
    attempts: u32,
    job_id: Option<&str>,
) -> anyhow::Result<()> {
    let mut h = d.properties.headers().clone().unwrap_or_default();
    h.insert(H_REASON.into(), lstr(reason));
    h.insert(H_ATTEMPTS.into(), AMQPValue::LongLongInt(attempts as i64));
    if let Some(id) = job_id {
        h.insert(H_JOB_ID.into(), lstr(id));
    }
    if header_str(&d.properties, H_ROUTING_KEY).is_none() {
        h.insert(H_ROUTING_KEY.into(), lstr(d.routing_key.as_str()));
    }
    h.insert(
        H_DEAD_AT.into(),
        lstr(&crate::store::ms_to_rfc3339(now_ms())),
    );
    let body = if d.data.len() > s.max_job_bytes {
        h.insert(
            H_BODY_BYTES.into(),
            AMQPValue::LongLongInt(d.data.len() as i64),
        );
        &d.data[..DLQ_BODY_KEEP.min(d.data.len())]
    } else {
        &d.data[..]
    };
    let props = BasicProperties::default()
        .with_delivery_mode(2)
        .with_headers(h);
    let pc = ch
        .basic_publish("".into(), s.dlq.as_str().into(), mandatory(), body, props)
        .await?;
    confirmed(pc, "dead-lettering").await?;
    metrics::counter!("reflector_amqp_dead_lettered_total").increment(1);
    Ok(())
}

// ------------------------------------------------------------------------- the relay

/// The outbox relay: publishes job rows the broker has not confirmed, oldest first, and
/// marks them published on the confirm. Woken by `wake` (a turn was stored) and every
/// second; while the broker is unreachable it retries with backoff (0.5 s doubling to
/// 10 s) and the rows simply wait. Ends when `shutdown` turns true.
pub async fn run_relay(
    broker: Arc<Broker>,
    store: Store,
    wake: Arc<Notify>,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut ch: Option<Channel> = None;
    let mut delay = Duration::from_millis(500);
    let mut failing = false;
    while !*shutdown.borrow() {
        match relay_once(&broker, &store, &mut ch).await {
            Ok(n) => {
                if failing {
                    tracing::info!("outbox relay: publishing again");
                    failing = false;
                }
                delay = Duration::from_millis(500);
                if n > 0 {
                    continue;
                }
                tokio::select! {
                    _ = wake.notified() => {}
                    _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                    _ = shutdown.changed() => {}
                }
            }
            Err(e) => {
                ch = None;
                if !failing {
                    tracing::warn!(error = %format!("{e:#}"), "outbox relay cannot publish; jobs wait in the outbox and are retried");
                    failing = true;
                }
                tokio::select! {
                    _ = tokio::time::sleep(delay) => {}
                    _ = shutdown.changed() => {}
                }
                delay = (delay * 2).min(Duration::from_secs(10));
            }
        }
    }
}

/// One round of the relay; returns how many jobs were published.
async fn relay_once(
    broker: &Broker,
    store: &Store,
    ch: &mut Option<Channel>,
) -> anyhow::Result<usize> {
    let jobs = store.run(|s| s.unpublished_jobs(RELAY_BATCH)).await?;
    if jobs.is_empty() {
        return Ok(0);
    }
    if ch.as_ref().is_none_or(|c| !c.status().connected()) {
        *ch = Some(broker.confirm_channel().await?);
    }
    let c = ch.as_ref().expect("set above");
    let s = broker.settings();
    let mut pending = Vec::with_capacity(jobs.len());
    for (job_id, user_id, priority, payload) in jobs {
        let pc = c
            .basic_publish(
                s.exchange.as_str().into(),
                routing_key(&user_id).as_str().into(),
                mandatory(),
                payload.as_bytes(),
                persistent(priority, Some(&job_id), FieldTable::default()),
            )
            .await?;
        pending.push((job_id, pc));
    }
    let mut done = Vec::with_capacity(pending.len());
    let mut first_err = None;
    for (job_id, pc) in pending {
        match confirmed(pc, "publishing a job").await {
            Ok(()) => done.push(job_id),
            Err(e) => {
                first_err.get_or_insert(e);
            }
        }
    }
    let n = done.len();
    if n > 0 {
        store.run(move |s| s.mark_published(&done)).await?;
        metrics::counter!("reflector_amqp_published_total").increment(n as u64);
    }
    match first_err {
        Some(e) => Err(e),
        None => Ok(n),
    }
}

// ------------------------------------------------------------------------- the worker

/// The reflection worker on RabbitMQ: the intake forwarder and the consumer of the
/// priority queue, over one connection; on a broker restart or connection loss both stop,
/// and the worker reconnects with backoff (0.5 s doubling to 10 s). When `shutdown` turns
/// true it stops taking deliveries, finishes the jobs in hand, and closes its channels,
/// which returns every delivery it had not acknowledged to the queue.
///
/// While `paused` is true the worker holds no consumer at all (pausing cancels both
/// consumers the same way, so unstarted deliveries go back to the queue and wait there);
/// it consumes again when `paused` turns false.
pub async fn run_worker(
    broker: Arc<Broker>,
    reflector: Reflector,
    shutdown: watch::Receiver<bool>,
    mut paused: watch::Receiver<bool>,
) {
    let mut delay = Duration::from_millis(500);
    let mut failing = false;
    let mut stop = shutdown.clone();
    while !*stop.borrow() {
        // The owner (the `Service`) is gone without a shutdown: stop as well.
        if stop.has_changed().is_err() {
            break;
        }
        if *paused.borrow_and_update() {
            let resumed = tokio::select! {
                r = paused.wait_for(|p| !*p) => r.is_ok(),
                _ = stop.wait_for(|v| *v) => false,
            };
            if !resumed {
                break;
            }
            continue;
        }
        let started = tokio::time::Instant::now();
        // One stop signal for both halves: the process shutting down, the workers being
        // paused, or the other half failing (so that neither keeps running on a connection
        // the other gave up).
        let (halt, halted) = watch::channel(false);
        let relay_stop = {
            let (halt, mut outer, mut pause) = (halt.clone(), shutdown.clone(), paused.clone());
            tokio::spawn(async move {
                // A closed pause channel never pauses (the branch is disabled); a closed
                // shutdown channel halts (the loop above then ends).
                tokio::select! {
                    _ = outer.wait_for(|v| *v) => {}
                    Ok(_) = pause.wait_for(|p| *p) => {}
                }
                let _ = halt.send(true);
            })
        };
        let halt_on_err = |r: anyhow::Result<()>| {
            if r.is_err() {
                let _ = halt.send(true);
            }
            r
        };
        let (a, b) = tokio::join!(
            async { halt_on_err(forward(&broker, halted.clone()).await) },
            async { halt_on_err(consume(&broker, &reflector, halted.clone()).await) },
        );
        relay_stop.abort();
        match a.and(b) {
            Ok(()) => {
                // Stopped (the loop condition ends it) or paused (the top of the loop
                // waits for the resume).
            }
            Err(e) => {
                if started.elapsed() > Duration::from_secs(30) {
                    delay = Duration::from_millis(500);
                }
                if !failing || started.elapsed() > Duration::from_secs(30) {
                    tracing::warn!(error = %format!("{e:#}"), retry_in_ms = delay.as_millis() as u64, "RabbitMQ worker lost the broker; reconnecting");
                }
                failing = true;
                tokio::select! {
                    _ = tokio::time::sleep(delay) => {}
                    _ = stop.changed() => {}
                }
                delay = (delay * 2).min(Duration::from_secs(10));
            }
        }
    }
    broker.close().await;
    tracing::debug!("RabbitMQ worker stopped");
}

fn consumer_tag(role: &str) -> String {
    format!(
        "reflector-{role}-{}-{}",
        std::process::id(),
        uuid::Uuid::new_v4().simple()
    )
}

/// The next delivery of `consumer`, or `None` once `shutdown` changes. An error when the
/// stream fails or the broker cancels the consumer (`what` names it in the message).
async fn next_delivery(
    consumer: &mut lapin::Consumer,
    shutdown: &mut watch::Receiver<bool>,
    what: &str,
) -> anyhow::Result<Option<lapin::message::Delivery>> {
    let d = tokio::select! {
        _ = shutdown.changed() => return Ok(None),
        d = consumer.next() => d,
    };
    match d {
        Some(Ok(d)) => Ok(Some(d)),
        Some(Err(e)) => Err(anyhow::anyhow!("{what}: {e}")),
        None => Err(anyhow::anyhow!("the broker cancelled the {what}")),
    }
}

/// Move messages from the intake to the priority queue: decode (poison → DLQ with the
/// reason), republish with the job's priority, and ack the intake copy on the confirm.
async fn forward(broker: &Broker, mut shutdown: watch::Receiver<bool>) -> anyhow::Result<()> {
    let s = broker.settings().clone();
    let sub = broker.channel().await?;
    let publ = broker.confirm_channel().await?;
    sub.basic_qos(s.prefetch, BasicQosOptions::default())
        .await?;
    let tag = consumer_tag("forwarder");
    let mut consumer = sub
        .basic_consume(
            s.queue.as_str().into(),
            tag.as_str().into(),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await?;
    let mut inflight: JoinSet<()> = JoinSet::new();
    let result = loop {
        let d = match next_delivery(&mut consumer, &mut shutdown, "intake consumer").await {
            Ok(Some(d)) => d,
            Ok(None) => break Ok(()),
            Err(e) => break Err(e),
        };
        while inflight.try_join_next().is_some() {}
        match decode_job(&d.data, s.max_job_bytes) {
            Err(reason) => {
                let job_id = serde_json::from_slice::<Value>(&d.data)
                    .ok()
                    .and_then(|v| v.get("job_id")?.as_str().map(str::to_string));
                tracing::warn!(reason = %reason, routing_key = %d.routing_key, "poison message: dead-lettered");
                let (publ, s) = (publ.clone(), s.clone());
                inflight.spawn(async move {
                    match dead_letter(&publ, &s, &d, &reason, 0, job_id.as_deref()).await {
                        Ok(()) => {
                            let _ = d.acker.ack(BasicAckOptions::default()).await;
                        }
                        Err(e) => {
                            tracing::warn!(error = %format!("{e:#}"), "could not dead-letter; message returned to the intake");
                            let _ = d.acker.nack(requeue()).await;
                        }
                    }
                });
            }
            Ok(job) => {
                let mut h = d.properties.headers().clone().unwrap_or_default();
                if header_str(&d.properties, H_ROUTING_KEY).is_none() {
                    h.insert(H_ROUTING_KEY.into(), lstr(d.routing_key.as_str()));
                }
                let pc = publ
                    .basic_publish(
                        "".into(),
                        s.work_queue().as_str().into(),
                        mandatory(),
                        &d.data,
                        persistent(job.priority, Some(&job.job_id), h),
                    )
                    .await;
                inflight.spawn(async move {
                    let ok = match pc {
                        Ok(pc) => confirmed(pc, "forwarding a job").await,
                        Err(e) => Err(e.into()),
                    };
                    match ok {
                        Ok(()) => {
                            let _ = d.acker.ack(BasicAckOptions::default()).await;
                        }
                        Err(e) => {
                            tracing::warn!(error = %format!("{e:#}"), "forwarding failed; message returned to the intake");
                            let _ = d.acker.nack(requeue()).await;
                        }
                    }
                });
            }
        }
    };
    let _ = sub
        .basic_cancel(tag.as_str().into(), BasicCancelOptions::default())
        .await;
    while inflight.join_next().await.is_some() {}
    let _ = sub.close(200, "forwarder stopped".into()).await;
    let _ = publ.close(200, "forwarder stopped".into()).await;
    result
}

fn requeue() -> BasicNackOptions {
    BasicNackOptions {
        requeue: true,
        ..BasicNackOptions::default()
    }
}

/// Consume the priority queue: up to `workers` jobs at once, each acknowledged only after
/// it was settled (completed, retry scheduled, or dead-lettered).
async fn consume(
    broker: &Broker,
    reflector: &Reflector,
    mut shutdown: watch::Receiver<bool>,
) -> anyhow::Result<()> {
    let s = broker.settings().clone();
    let sub = broker.channel().await?;
    let publ = broker.confirm_channel().await?;
    sub.basic_qos(s.prefetch, BasicQosOptions::default())
        .await?;
    let tag = consumer_tag("worker");
    let mut consumer = sub
        .basic_consume(
            s.work_queue().as_str().into(),
            tag.as_str().into(),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await?;
    let slots = Arc::new(Semaphore::new(s.workers.max(1)));
    let owner = format!("amqp-{}", std::process::id());
    let mut inflight: JoinSet<()> = JoinSet::new();
    let result = loop {
        let d = match next_delivery(&mut consumer, &mut shutdown, "consumer").await {
            Ok(Some(d)) => d,
            Ok(None) => break Ok(()),
            Err(e) => break Err(e),
        };
        let permit = tokio::select! {
            _ = shutdown.changed() => break Ok(()),
            p = slots.clone().acquire_owned() => p.expect("semaphore never closed"),
        };
        while inflight.try_join_next().is_some() {}
        let (publ, s, r, owner) = (publ.clone(), s.clone(), reflector.clone(), owner.clone());
        inflight.spawn(async move {
            let _permit = permit;
            handle(&publ, &s, &r, &owner, d).await;
        });
    };
    // Stop taking work; finish what is in hand; closing the channel returns the
    // prefetched deliveries that were never started.
    let _ = sub
        .basic_cancel(tag.as_str().into(), BasicCancelOptions::default())
        .await;
    while inflight.join_next().await.is_some() {}
    let _ = sub.close(200, "worker stopped".into()).await;
    let _ = publ.close(200, "worker stopped".into()).await;
    result
}

/// Process one delivery and acknowledge it once settled. Any failure to settle (store or
/// broker down) returns the message to the queue instead: it runs again, and the tiers
/// that committed are skipped.
async fn handle(
    publ: &Channel,
    s: &AmqpSettings,
    r: &Reflector,
    owner: &str,
    d: lapin::message::Delivery,
) {
    match settle_delivery(publ, s, r, owner, &d).await {
        Ok(()) => {
            if let Err(e) = d.acker.ack(BasicAckOptions::default()).await {
                tracing::debug!(error = %e, "ack failed (connection lost); the job will be redelivered and skipped");
            }
        }
        Err(e) => {
            tracing::warn!(error = %format!("{e:#}"), "job not settled; returned to the queue");
            let _ = d.acker.nack(requeue()).await;
        }
    }
}

async fn settle_delivery(
    publ: &Channel,
    s: &AmqpSettings,
    r: &Reflector,
    owner: &str,
    d: &lapin::message::Delivery,
) -> anyhow::Result<()> {
    let job = match decode_job(&d.data, s.max_job_bytes) {
        Ok(j) => j,
        Err(reason) => {
            tracing::warn!(reason = %reason, "poison message: dead-lettered");
            return dead_letter(publ, s, d, &reason, 0, None).await;
        }
    };
    let store = r.store().clone();
    let (j, o) = (job.clone(), owner.to_string());
    let begin = store.run(move |st| st.begin_delivery(&j, &o)).await?;
    let c = match begin {
        Delivery::Finished(_) => return Ok(()),
        Delivery::Forgotten => {
            tracing::info!(job_id = %job.job_id, "job of a forgotten user dropped");
            metrics::counter!("reflector_jobs_total", "outcome" => "dropped_forgotten")
                .increment(1);
            return Ok(());
        }
        Delivery::Exhausted { attempts } => {
            let reason = format!(
                "gave up after {attempts} attempts: each delivery ended without the job finishing (worker crashes)"
            );
            dead_letter(publ, s, d, &reason, attempts, Some(&job.job_id)).await?;
            let id = job.job_id.clone();
            store.run(move |st| st.dead_job(&id, &reason)).await?;
            metrics::counter!("reflector_jobs_total", "outcome" => "dead").increment(1);
            return Ok(());
        }
        Delivery::Process(c) => c,
    };
    let start = std::time::Instant::now();
    let outcome = r.process(&c.job).await;
    metrics::histogram!("reflector_job_seconds").record(start.elapsed().as_secs_f64());
    let id = job.job_id.clone();
    let error = match lifecycle::settle(&outcome, c.exhausted(), c.attempts) {
        Transition::Complete => {
            store.run(move |st| st.complete_job(&id)).await?;
            metrics::counter!("reflector_jobs_total", "outcome" => "completed").increment(1);
            return Ok(());
        }
        Transition::Dead { reason } => {
            tracing::warn!(job_id = %job.job_id, attempts = c.attempts, reason = %reason, "job dead");
            dead_letter(publ, s, d, &reason, c.attempts, Some(&job.job_id)).await?;
            store.run(move |st| st.dead_job(&id, &reason)).await?;
            metrics::counter!("reflector_jobs_total", "outcome" => "dead").increment(1);
            return Ok(());
        }
        Transition::Retry { error } => error,
    };
    let ms = s.retry_delay_ms(c.attempts);
    let queue = declare_delay_queue(publ, s, ms).await?;
    let mut h = d.properties.headers().clone().unwrap_or_default();
    h.insert(H_ATTEMPTS.into(), AMQPValue::LongLongInt(c.attempts as i64));
    h.insert(H_REASON.into(), lstr(&error));
    let pc = publ
        .basic_publish(
            "".into(),
            queue.as_str().into(),
            mandatory(),
            &d.data,
            persistent(job.priority, Some(&job.job_id), h),
        )
        .await?;
    confirmed(pc, "scheduling a retry").await?;
    tracing::info!(job_id = %job.job_id, attempt = c.attempts, delay_ms = ms, error = %error, "tier failed; retrying");
    let due = now_ms() + ms as i64;
    store.run(move |st| st.retry_job(&id, due, &error)).await?;
    metrics::counter!("reflector_jobs_total", "outcome" => "retrying").increment(1);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacts_the_password() {
        assert_eq!(
            redact_url("amqp://user:s3cret@host:5672/%2f"),
            "amqp://user:***@host:5672/%2f"
        );
        assert_eq!(redact_url("amqp://host/"), "amqp://host/");
        assert!(!redact_url("amqps://a:p@ss@h/").contains("p@ss"));
    }

    #[test]
    fn routing_keys_keep_dots_and_fit_amqp() {
        assert_eq!(routing_key("alice.smith"), "reflection.alice.smith");
        let long = "é".repeat(200);
        let k = routing_key(&long);
        assert!(k.len() <= 255 && k.starts_with("reflection."));
    }

    #[test]
    fn retry_delays_double_and_cap() {
        let mut s = AmqpSettings::new("amqp://h/");
        s.retry_base_ms = 1000;
        s.retry_max_ms = 5000;
        assert_eq!(
            (1..=5).map(|a| s.retry_delay_ms(a)).collect::<Vec<_>>(),
            vec![1000, 2000, 4000, 5000, 5000]
        );
    }

    #[test]
    fn poison_bodies_are_named() {
        let max = 1024 * 1024;
        assert!(decode_job(b"{not json", max).unwrap_err().contains("JSON"));
        assert!(
            decode_job(&[0xff, 0xfe], max)
                .unwrap_err()
                .contains("UTF-8")
        );
        assert!(
            decode_job(&vec![b' '; max + 1], max)
                .unwrap_err()
                .contains("limit")
        );
        let e = decode_job(
            br#"{"job_id":"j","user_id":"u","session_id":"s","user_message":"m","timestamp":"2024-01-01T00:00:00","priority":9}"#,
            max,
        )
        .unwrap_err();
        assert!(e.contains("priority"), "{e}");
        let e = decode_job(
            br#"{"job_id":"j","user_id":"","session_id":"s","user_message":"m","timestamp":"2024-01-01T00:00:00"}"#,
            max,
        )
        .unwrap_err();
        assert!(e.contains("user_id"), "{e}");
        let ok = decode_job(
            br#"{"job_id":"j","user_id":"a.b","session_id":"s","user_message":"m","timestamp":"2024-01-01T00:00:00","priority":3}"#,
            max,
        )
        .unwrap();
        assert_eq!(ok.priority, Priority::Urgent);
    }
}
