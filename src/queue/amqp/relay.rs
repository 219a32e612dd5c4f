//! The outbox relay: publishes the job rows not yet published (the `jobs` table is the
//! outbox), persistent and confirmed, and marks each row published on its confirm.

use std::sync::Arc;
use std::time::Duration;

use lapin::Channel;
use lapin::types::FieldTable;
use tokio::sync::{Notify, watch};

use super::connection::Broker;
use super::message::{confirmed, mandatory, persistent, routing_key};
use crate::store::Store;

/// Jobs the relay publishes per round (confirms in flight at once).
const RELAY_BATCH: usize = 500;

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
