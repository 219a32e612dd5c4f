//! Values that cross the store interface ([`super::Backend`]): what the request path
//! inserts, what the queue hands to workers, and what the status endpoints show.

use std::collections::HashMap;

use serde::Serialize;
use serde_json::Value;

use crate::job::{JobState, Priority, ReflectionJob};

/// A turn to append to Tier 1, with its idempotency fingerprint.
#[derive(Debug, Clone)]
pub struct NewTurn {
    pub interaction_id: String,
    pub user_id: String,
    pub session_id: String,
    pub user_message: String,
    pub assistant_response: String,
    pub ts_ms: i64,
    pub metadata: Value,
    /// sha256 (hex) of the request's content: equal for a retry, different for a conflict.
    pub request_hash: String,
}

/// One turn and its job for the group commit ([`super::Backend::insert_turns_and_jobs`]), with
/// the job's payload and the turn's metadata already serialised (off the writer thread).
#[derive(Debug, Clone)]
pub struct TurnInsert {
    pub turn: NewTurn,
    pub job: ReflectionJob,
    pub state: JobState,
    pub(crate) payload: String,
    pub(crate) metadata: String,
}

impl TurnInsert {
    /// `state` is `queued` for the fast path, `processing` for the traditional path.
    pub fn new(turn: NewTurn, job: ReflectionJob, state: JobState) -> anyhow::Result<Self> {
        Ok(Self {
            payload: serde_json::to_string(&job)?,
            metadata: serde_json::to_string(&turn.metadata)?,
            turn,
            job,
            state,
        })
    }
}

/// What `insert_turn_and_job` did.
#[derive(Debug, Clone, PartialEq)]
pub enum InsertOutcome {
    /// New turn and job committed.
    Created,
    /// The interaction id was already stored with the same content: nothing written.
    Replay {
        job_id: String,
        priority: Priority,
        state: JobState,
    },
    /// The interaction id is taken by different content (or another user).
    Conflict,
    /// Backpressure: the waiting jobs (queued or retrying) of this user, or of everyone,
    /// are at their ceiling ([`QueueLimits`]); nothing was written.
    Busy {
        /// `user` or `total`: which ceiling.
        scope: &'static str,
        /// Waiting jobs counted against that ceiling, before this turn.
        depth: i64,
        ceiling: u64,
    },
}

/// Backpressure ceilings on waiting jobs (state `queued` or `retrying`; leased jobs are
/// being worked on and do not count). A new fast-path turn is refused (429) when its user
/// already has `per_user` waiting jobs, or everyone together `total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct QueueLimits {
    #[serde(rename = "max_waiting_per_user")]
    pub per_user: u64,
    #[serde(rename = "max_waiting_total")]
    pub total: u64,
}

impl QueueLimits {
    /// No ceiling (the traditional path, which reflects inline, and tools).
    pub const NONE: QueueLimits = QueueLimits {
        per_user: u64::MAX,
        total: u64::MAX,
    };
}

/// A neighbouring turn shown around an episode in recall.
#[derive(Debug, Clone)]
pub struct WindowTurn {
    pub job_id: String,
    pub text: String,
    pub evidence: String,
}

/// A job leased to a worker.
#[derive(Debug, Clone)]
pub struct ClaimedJob {
    pub job: ReflectionJob,
    /// Attempts started, including this one.
    pub attempts: u32,
    pub max_retries: u32,
}

impl ClaimedJob {
    /// This attempt was the last one allowed: `attempts >= max_retries + 1`.
    pub fn exhausted(&self) -> bool {
        self.attempts > self.max_retries
    }
}

/// What to do with a job the broker delivered ([`super::Backend::begin_delivery`]).
#[derive(Debug, Clone)]
pub enum Delivery {
    /// Process it: this is attempt `attempts` (counted in the jobs table).
    Process(ClaimedJob),
    /// Already completed or dead (a duplicate or stale message): acknowledge, do nothing.
    Finished(JobState),
    /// Every allowed attempt was started and none finished (the worker died each time).
    Exhausted { attempts: u32 },
    /// The job's user was forgotten (`DELETE /api/memory/user/{id}`) after the job was
    /// created: acknowledge and drop it, write nothing.
    Forgotten,
}

/// Counts and ages for `/api/reflection/queue-status`.
#[derive(Debug, Clone, Serialize)]
pub struct QueueStatus {
    /// Waiting jobs (queued or retrying) by priority name.
    pub depth_by_priority: HashMap<String, i64>,
    pub waiting: i64,
    /// Age of the oldest waiting job that is already due, in seconds.
    pub oldest_waiting_age_s: f64,
    pub leased: i64,
    pub dead: i64,
    /// Waiting jobs of the user with the most (the figure `max_waiting_per_user` limits).
    pub deepest_user_waiting: i64,
}
