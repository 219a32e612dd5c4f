//! `MemoryManager::store_interaction`: the request path for one turn.
//!
//! Fast path (default): append the turn to Tier 1 and insert its reflection job in ONE
//! transaction, wake a worker, answer. Nothing else happens on the request path — no
//! embedding, no extraction — so it costs one small SQLite transaction, shared with the
//! other turns arriving meanwhile (group commit, see [`TurnWriter`]).
//! Traditional path (`MEMORY_FAST_MODE=false` or `REFLECTION_ENABLED=false`): the same
//! transaction, then the three processors run inline before the answer.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};
use tokio::sync::Notify;

use crate::job::{JobState, Priority, ReflectionJob};
use crate::queue::JobOutcome;
use crate::queue::embedded::Inline;
use crate::store::Store;
use crate::store::{InsertOutcome, NewTurn, QueueLimits, TurnInsert};

/// Most turns one group commit takes.
const GROUP_COMMIT_MAX: usize = 256;
/// Turns waiting for the writer before senders wait (backpressure).
const GROUP_COMMIT_QUEUE: usize = 4096;

type PendingTurn = (
    TurnInsert,
    tokio::sync::oneshot::Sender<anyhow::Result<InsertOutcome>>,
);

/// Group commit of the request path's writes. Request tasks hand their turn and job to one
/// writer thread, which commits everything waiting — up to [`GROUP_COMMIT_MAX`] turns — in
/// ONE SQLite transaction, then answers each. An idle writer commits a lone turn at once
/// (nothing waits for a batch to fill); under load, the turns that arrive during a commit
/// share the next one, so the commit's fixed cost (WAL append, one write per touched index
/// page) is paid once per batch instead of once per turn. Durability is unchanged: no turn
/// is answered before the transaction holding it committed. The thread ends when the last
/// [`MemoryManager`] clone is dropped.
#[derive(Clone)]
struct TurnWriter {
    tx: tokio::sync::mpsc::Sender<PendingTurn>,
}

impl TurnWriter {
    fn spawn(store: Store, limits: QueueLimits) -> std::io::Result<Self> {
        let (tx, mut rx) = tokio::sync::mpsc::channel::<PendingTurn>(GROUP_COMMIT_QUEUE);
        std::thread::Builder::new()
            .name("turn-writer".into())
            .spawn(move || {
                let mut batch: Vec<PendingTurn> = Vec::with_capacity(GROUP_COMMIT_MAX);
                while let Some(first) = rx.blocking_recv() {
                    batch.push(first);
                    while batch.len() < GROUP_COMMIT_MAX {
                        match rx.try_recv() {
                            Ok(p) => batch.push(p),
                            Err(_) => break,
                        }
                    }
                    let (items, replies): (Vec<_>, Vec<_>) = batch.drain(..).unzip();
                    let results = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                        store.sync().insert_turns_and_jobs(&items, limits)
                    }))
                    .unwrap_or_else(|_| {
                        items
                            .iter()
                            .map(|_| Err(anyhow::anyhow!("the turn writer panicked")))
                            .collect()
                    });
                    metrics::histogram!("reflector_group_commit_turns").record(items.len() as f64);
                    for (reply, r) in replies.into_iter().zip(results) {
                        let _ = reply.send(r);
                    }
                }
            })?;
        Ok(Self { tx })
    }

    async fn insert(&self, item: TurnInsert) -> anyhow::Result<InsertOutcome> {
        let (reply, rx) = tokio::sync::oneshot::channel();
        let stopped = || anyhow::anyhow!("the turn writer thread stopped");
        self.tx.send((item, reply)).await.map_err(|_| stopped())?;
        rx.await.map_err(|_| stopped())?
    }
}

/// A validated turn from the API.
#[derive(Debug, Clone)]
pub struct Interaction {
    /// Client-chosen idempotency key, if any.
    pub interaction_id: Option<String>,
    pub user_id: String,
    pub session_id: String,
    pub user_message: String,
    pub assistant_response: String,
    /// When the turn happened; `None` = now.
    pub timestamp: Option<DateTime<Utc>>,
    pub metadata: Map<String, Value>,
}

/// What `store_interaction` did.
#[derive(Debug, Clone, Serialize)]
pub struct Stored {
    pub interaction_id: String,
    pub reflection_job_id: String,
    /// `low`, `normal`, `high` or `urgent`.
    pub priority: &'static str,
    /// `queued` (fast path), or the job's state after inline reflection (traditional path),
    /// or its current state for a replayed request.
    pub status: &'static str,
    /// True when this request repeated an earlier one with the same interaction id.
    pub idempotent_replay: bool,
    /// Traditional path only: what each tier did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub results: Option<JobOutcome>,
}

/// Why a turn was not stored.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error(
        "interaction_id {0:?} was already used for a different turn; use a new id, or resend exactly the same body to retry"
    )]
    Conflict(String),
    /// Backpressure: too many waiting jobs (see [`QueueLimits`]); nothing was stored.
    #[error(
        "too many turns are waiting for reflection ({depth} waiting {for_whom}, ceiling {ceiling}); the turn was NOT stored: send it again after Retry-After seconds"
    )]
    Busy {
        scope: &'static str,
        for_whom: &'static str,
        depth: i64,
        ceiling: u64,
    },
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

#[derive(Clone)]
pub struct MemoryManager {
    store: Store,
    inline: Inline,
    wake: Arc<Notify>,
    async_reflection: bool,
    max_retries: u32,
    limits: QueueLimits,
    /// Group commit; `None` only if its thread could not be started (then each turn is its
    /// own transaction on the blocking pool).
    writer: Option<TurnWriter>,
}

impl MemoryManager {
    pub fn new(
        store: Store,
        inline: Inline,
        wake: Arc<Notify>,
        async_reflection: bool,
        max_retries: u32,
        limits: QueueLimits,
    ) -> Self {
        let writer = TurnWriter::spawn(store.clone(), limits)
            .inspect_err(|e| tracing::warn!(error = %e, "no group commit: cannot start the turn writer thread"))
            .ok();
        Self {
            store,
            inline,
            wake,
            async_reflection,
            max_retries,
            limits,
            writer,
        }
    }

    /// Store one turn; see the module docs for the two paths.
    pub async fn store_interaction(&self, i: Interaction) -> Result<Stored, StoreError> {
        let request_hash = request_hash(&i);
        let interaction_id = i
            .interaction_id
            .clone()
            .unwrap_or_else(|| uuid::Uuid::now_v7().to_string());
        let priority = priority_of(&i.user_message);
        let timestamp = i.timestamp.unwrap_or_else(Utc::now);
        let mut metadata = i.metadata.clone();
        metadata.insert(
            "interaction_id".into(),
            Value::String(interaction_id.clone()),
        );
        let job = ReflectionJob {
            job_id: uuid::Uuid::now_v7().to_string(),
            user_id: i.user_id.clone(),
            session_id: i.session_id.clone(),
            user_message: i.user_message.clone(),
            assistant_response: i.assistant_response.clone(),
            timestamp,
            priority,
            metadata: Value::Object(metadata),
            retry_count: 0,
            max_retries: self.max_retries,
            created_at: Utc::now(),
        };
        let turn = NewTurn {
            interaction_id: interaction_id.clone(),
            user_id: i.user_id,
            session_id: i.session_id,
            user_message: i.user_message,
            assistant_response: i.assistant_response,
            ts_ms: timestamp.timestamp_millis(),
            metadata: Value::Object(i.metadata),
            request_hash,
        };
        let state = if self.async_reflection {
            JobState::Queued
        } else {
            JobState::Processing
        };
        let outcome = match &self.writer {
            Some(w) => w.insert(TurnInsert::new(turn, job.clone(), state)?).await?,
            None => {
                let (t, j, l) = (turn, job.clone(), self.limits);
                self.store
                    .run(move |s| s.insert_turn_and_job(&t, &j, state, l))
                    .await?
            }
        };
        match outcome {
            InsertOutcome::Conflict => Err(StoreError::Conflict(interaction_id)),
            InsertOutcome::Busy {
                scope,
                depth,
                ceiling,
            } => {
                metrics::counter!("reflector_turns_rejected_total", "ceiling" => scope)
                    .increment(1);
                tracing::info!(user_id = %job.user_id, ceiling = scope, depth, "turn refused: reflection backlog at its ceiling (429)");
                Err(StoreError::Busy {
                    scope,
                    for_whom: if scope == "user" {
                        "for this user"
                    } else {
                        "in total"
                    },
                    depth,
                    ceiling,
                })
            }
            InsertOutcome::Replay {
                job_id,
                priority,
                state,
            } => Ok(Stored {
                interaction_id,
                reflection_job_id: job_id,
                priority: priority.name(),
                status: state.as_str(),
                idempotent_replay: true,
                results: None,
            }),
            InsertOutcome::Created if self.async_reflection => {
                self.wake.notify_one();
                metrics::counter!("reflector_turns_stored_total", "path" => "fast").increment(1);
                Ok(Stored {
                    interaction_id,
                    reflection_job_id: job.job_id,
                    priority: priority.name(),
                    status: JobState::Queued.as_str(),
                    idempotent_replay: false,
                    results: None,
                })
            }
            InsertOutcome::Created => {
                metrics::counter!("reflector_turns_stored_total", "path" => "traditional")
                    .increment(1);
                let (status, outcome) = self.inline.run(&job).await?;
                if status == JobState::Retrying {
                    // Left for the workers to retry, if any run.
                    self.wake.notify_one();
                }
                Ok(Stored {
                    interaction_id,
                    reflection_job_id: job.job_id,
                    priority: priority.name(),
                    status: status.as_str(),
                    idempotent_replay: false,
                    results: Some(outcome),
                })
            }
        }
    }
}

/// Priority from the content, by whole words (never substrings).
pub fn priority_of(text: &str) -> Priority {
    Priority::from_i64(crate::extract::curate::priority(text) as i64).unwrap_or(Priority::Normal)
}

/// sha256 of what makes two requests "the same turn": every client-supplied field.
fn request_hash(i: &Interaction) -> String {
    let canonical = serde_json::json!({
        "user_id": i.user_id,
        "session_id": i.session_id,
        "user_message": i.user_message,
        "assistant_response": i.assistant_response,
        "timestamp": i.timestamp.map(|t| t.timestamp_millis()),
        "metadata": i.metadata,
    });
    let mut h = Sha256::new();
    h.update(canonical.to_string().as_bytes());
    format!("{:x}", h.finalize())
}
