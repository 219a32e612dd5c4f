//! The worker side: the intake forwarder (intake queue → priority queue, priority from the
//! job) and the consumer that reflects each job and settles its delivery — ack, a retry
//! through a delay queue, or the DLQ — by [`crate::queue::lifecycle`].

use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use lapin::Channel;
use lapin::options::{
    BasicAckOptions, BasicCancelOptions, BasicConsumeOptions, BasicNackOptions, BasicQosOptions,
};
use lapin::types::{AMQPValue, FieldTable};
use serde_json::Value;
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;

use super::connection::{AmqpSettings, Broker};
use super::message::{confirmed, dead_letter, decode_job, header_str, lstr, mandatory, persistent};
use super::topology::declare_delay_queue;
use super::{H_ATTEMPTS, H_REASON, H_ROUTING_KEY};
use crate::queue::lifecycle::{self, Transition};
use crate::reflect::Reflector;
use crate::store::Delivery;
use crate::store::now_ms;

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

/// A consumer on one queue: its channel (at most `prefetch` unacknowledged deliveries), a
/// confirm channel for what it publishes, the stream of deliveries, and its consumer tag.
struct Subscription {
    channel: Channel,
    publ: Channel,
    consumer: lapin::Consumer,
    tag: String,
}

impl Subscription {
    /// Open both channels and start consuming `queue` with a tag naming `role`.
    async fn open(broker: &Broker, queue: &str, role: &str) -> anyhow::Result<Self> {
        let sub = broker.channel().await?;
        let publ = broker.confirm_channel().await?;
        sub.basic_qos(broker.settings().prefetch, BasicQosOptions::default())
            .await?;
        let tag = consumer_tag(role);
        let consumer = sub
            .basic_consume(
                queue.into(),
                tag.as_str().into(),
                BasicConsumeOptions::default(),
                FieldTable::default(),
            )
            .await?;
        Ok(Self {
            channel: sub,
            publ,
            consumer,
            tag,
        })
    }

    /// Stop taking deliveries (cancel the consumer), let the work in hand finish, then close
    /// both channels with `why`: closing the subscription returns the prefetched deliveries
    /// that were never started.
    async fn stop(self, inflight: &mut JoinSet<()>, why: &str) {
        let _ = self
            .channel
            .basic_cancel(self.tag.as_str().into(), BasicCancelOptions::default())
            .await;
        while inflight.join_next().await.is_some() {}
        let _ = self.channel.close(200, why.into()).await;
        let _ = self.publ.close(200, why.into()).await;
    }
}

/// Move messages from the intake to the priority queue: decode (poison → DLQ with the
/// reason), republish with the job's priority, and ack the intake copy on the confirm.
async fn forward(broker: &Broker, mut shutdown: watch::Receiver<bool>) -> anyhow::Result<()> {
    let s = broker.settings().clone();
    let mut sub = Subscription::open(broker, &s.queue, "forwarder").await?;
    let mut inflight: JoinSet<()> = JoinSet::new();
    let result = loop {
        let d = match next_delivery(&mut sub.consumer, &mut shutdown, "intake consumer").await {
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
                let (publ, s) = (sub.publ.clone(), s.clone());
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
                let pc = sub
                    .publ
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
    sub.stop(&mut inflight, "forwarder stopped").await;
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
    let mut sub = Subscription::open(broker, &s.work_queue(), "worker").await?;
    let slots = Arc::new(Semaphore::new(s.workers.max(1)));
    let owner = format!("amqp-{}", std::process::id());
    let mut inflight: JoinSet<()> = JoinSet::new();
    let result = loop {
        let d = match next_delivery(&mut sub.consumer, &mut shutdown, "consumer").await {
            Ok(Some(d)) => d,
            Ok(None) => break Ok(()),
            Err(e) => break Err(e),
        };
        let permit = tokio::select! {
            _ = shutdown.changed() => break Ok(()),
            p = slots.clone().acquire_owned() => p.expect("semaphore never closed"),
        };
        while inflight.try_join_next().is_some() {}
        let (publ, s, r, owner) = (
            sub.publ.clone(),
            s.clone(),
            reflector.clone(),
            owner.clone(),
        );
        inflight.spawn(async move {
            let _permit = permit;
            handle(&publ, &s, &r, &owner, d).await;
        });
    };
    // Stop taking work; finish what is in hand; closing the channel returns the
    // prefetched deliveries that were never started.
    sub.stop(&mut inflight, "worker stopped").await;
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
