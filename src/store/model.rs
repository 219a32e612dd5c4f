//! The store's model: the values that cross the store interface ([`super::Backend`]) —
//! the rows each tier holds, what the request path inserts, what the queue hands to workers,
//! the edit requests and their refusals, and what the status endpoints show. Plain data: no
//! SQL, no backend.

use std::collections::HashMap;

use serde::Serialize;
use serde_json::Value;

use crate::job::{JobState, Priority, ReflectionJob};

/// A turn as stored in Tier 1.
#[derive(Debug, Clone, Serialize)]
pub struct TurnRow {
    pub interaction_id: String,
    pub user_id: String,
    pub session_id: String,
    pub user_message: String,
    pub assistant_response: String,
    pub timestamp: String,
    #[serde(skip)]
    pub ts_ms: i64,
    pub metadata: serde_json::Value,
    pub reflection_job_id: String,
    pub reflected: bool,
}

/// A Tier 2 episode.
#[derive(Debug, Clone, Serialize)]
pub struct EpisodeRow {
    pub id: i64,
    pub user_id: String,
    pub speaker: String,
    pub text: String,
    pub summary: String,
    pub importance: f32,
    pub tags: Vec<String>,
    pub occurred_at: String,
    #[serde(skip)]
    pub occurred_ms: i64,
    pub observed_at: String,
    #[serde(skip)]
    pub observed_ms: i64,
    pub evidence: Vec<String>,
    pub job_id: String,
}

/// A Tier 3 relation with its entities' names.
#[derive(Debug, Clone, Serialize)]
pub struct FactRow {
    pub id: i64,
    pub subject: String,
    pub predicate: String,
    pub object: String,
    pub fact: String,
    pub valid_at: String,
    pub invalid_at: Option<String>,
    #[serde(skip)]
    pub valid_ms: i64,
    pub evidence: Vec<String>,
}

/// Typed access to one result row by column index, so that a row type is read the same way
/// from either backend ([`EpisodeRow::from_columns`], [`FactRow::from_columns`]). Each
/// backend implements it for its own row type; `Error` is that driver's error.
pub trait Columns {
    type Error;
    fn int(&self, i: usize) -> Result<i64, Self::Error>;
    fn opt_int(&self, i: usize) -> Result<Option<i64>, Self::Error>;
    fn real(&self, i: usize) -> Result<f32, Self::Error>;
    /// A REAL column as the backend stores it (SQLite: f64; PostgreSQL `real`: f32, widened).
    fn double(&self, i: usize) -> Result<f64, Self::Error>;
    /// A boolean column (SQLite: an integer, 0 false).
    fn flag(&self, i: usize) -> Result<bool, Self::Error>;
    fn opt_text(&self, i: usize) -> Result<Option<String>, Self::Error>;
    /// A double-precision column (SQLite REAL, PostgreSQL `double precision`), maybe null.
    fn opt_f64(&self, i: usize) -> Result<Option<f64>, Self::Error>;
    fn text(&self, i: usize) -> Result<String, Self::Error>;
    fn blob(&self, i: usize) -> Result<Vec<u8>, Self::Error>;
}

/// Implements [`Columns`] for a driver's row type `$row` (error `$err`) by its typed getter
/// `$get` (rusqlite's `get`, postgres' `try_get`), for every method but `double`, which the
/// backend writes in `$double` (the REAL column's width differs).
macro_rules! impl_columns {
    ($row:ty, $err:ty, $get:ident, $double:item) => {
        impl $crate::store::Columns for $row {
            type Error = $err;
            fn int(&self, i: usize) -> Result<i64, $err> { self.$get(i) }
            fn opt_int(&self, i: usize) -> Result<Option<i64>, $err> { self.$get(i) }
            fn real(&self, i: usize) -> Result<f32, $err> { self.$get(i) }
            fn flag(&self, i: usize) -> Result<bool, $err> { self.$get(i) }
            fn opt_text(&self, i: usize) -> Result<Option<String>, $err> { self.$get(i) }
            fn opt_f64(&self, i: usize) -> Result<Option<f64>, $err> { self.$get(i) }
            fn text(&self, i: usize) -> Result<String, $err> { self.$get(i) }
            fn blob(&self, i: usize) -> Result<Vec<u8>, $err> { self.$get(i) }
            $double
        }
    };
}
pub(crate) use impl_columns;

/// The `SELECT` whose columns [`RuleRow::from_columns`] reads, in its order (the same SQL on
/// both backends); callers add `WHERE …`.
pub const RULE_SELECT: &str = "SELECT id, kind, topic, statement, confidence, last_ms, superseded_by, evidence, embedding FROM rules";

impl RuleRow {
    /// A rule from a row of [`RULE_SELECT`] (evidence: a JSON string array, unreadable: empty;
    /// embedding: little-endian f32 bytes).
    pub fn from_columns<R: Columns>(r: &R) -> Result<Self, R::Error> {
        Ok(Self {
            id: r.int(0)?,
            kind: r.text(1)?,
            topic: r.text(2)?,
            statement: r.text(3)?,
            confidence: r.real(4)?,
            stated_at: super::ms_to_rfc3339(r.int(5)?),
            superseded_by: r.opt_int(6)?,
            evidence: serde_json::from_str(&r.text(7)?).unwrap_or_default(),
            embedding: super::blob_to_vec(&r.blob(8)?),
        })
    }
}

impl TurnRow {
    /// A turn from a row of `SELECT id, user_id, session_id, user_message,
    /// assistant_response, ts_ms, metadata, job_id, reflected FROM turns` (metadata: a JSON
    /// object text, unreadable: null; `ts_ms`: epoch milliseconds).
    pub fn from_columns<R: Columns>(r: &R) -> Result<Self, R::Error> {
        let ts = r.int(5)?;
        Ok(Self {
            interaction_id: r.text(0)?,
            user_id: r.text(1)?,
            session_id: r.text(2)?,
            user_message: r.text(3)?,
            assistant_response: r.text(4)?,
            timestamp: super::ms_to_rfc3339(ts),
            ts_ms: ts,
            metadata: serde_json::from_str(&r.text(6)?).unwrap_or(serde_json::Value::Null),
            reflection_job_id: r.text(7)?,
            reflected: r.flag(8)?,
        })
    }
}

/// The `SELECT` whose columns [`EpisodeRow::from_columns`] reads, in its order (the same SQL on
/// both backends); callers add `WHERE …`.
pub const EPISODE_SELECT: &str = "SELECT id, user_id, speaker, text, summary, importance, tags, occurred_ms, observed_ms, evidence, job_id FROM episodes";

impl EpisodeRow {
    /// An episode from a row of [`EPISODE_SELECT`]. Tags and evidence are JSON string arrays
    /// in the store (unreadable: empty); times are epoch milliseconds.
    pub fn from_columns<R: Columns>(r: &R) -> Result<Self, R::Error> {
        let occurred = r.int(7)?;
        let observed = r.int(8)?;
        Ok(Self {
            id: r.int(0)?,
            user_id: r.text(1)?,
            speaker: r.text(2)?,
            text: r.text(3)?,
            summary: r.text(4)?,
            importance: r.real(5)?,
            tags: serde_json::from_str(&r.text(6)?).unwrap_or_default(),
            occurred_at: crate::store::ms_to_rfc3339(occurred),
            occurred_ms: occurred,
            observed_at: crate::store::ms_to_rfc3339(observed),
            observed_ms: observed,
            evidence: serde_json::from_str(&r.text(9)?).unwrap_or_default(),
            job_id: r.text(10)?,
        })
    }
}

/// The `SELECT` whose columns [`FactRow::from_columns`] reads: relations `r` with their
/// subjects `s` and objects `o` (the same SQL on both backends); callers add `WHERE …`.
pub const FACT_SELECT: &str =
    "SELECT r.id, s.name, r.predicate, o.name, r.fact, r.valid_ms, r.invalid_ms, r.evidence
     FROM relations r JOIN entities s ON s.id = r.subject_id JOIN entities o ON o.id = r.object_id";

impl FactRow {
    /// A fact from a row of [`FACT_SELECT`] (evidence: a JSON string array, unreadable: empty).
    pub fn from_columns<R: Columns>(r: &R) -> Result<Self, R::Error> {
        let valid = r.int(5)?;
        Ok(Self {
            id: r.int(0)?,
            subject: r.text(1)?,
            predicate: r.text(2)?,
            object: r.text(3)?,
            fact: r.text(4)?,
            valid_at: crate::store::ms_to_rfc3339(valid),
            invalid_at: r.opt_int(6)?.map(crate::store::ms_to_rfc3339),
            valid_ms: valid,
            evidence: serde_json::from_str(&r.text(7)?).unwrap_or_default(),
        })
    }
}

/// A Tier 3 entity with its aliases.
#[derive(Debug, Clone, Serialize)]
pub struct EntityRow {
    pub id: i64,
    pub name: String,
    pub kind: String,
    pub aliases: Vec<String>,
}

/// A Tier 4 rule.
#[derive(Debug, Clone, Serialize)]
pub struct RuleRow {
    pub id: i64,
    pub kind: String,
    pub topic: String,
    pub statement: String,
    pub confidence: f32,
    pub stated_at: String,
    pub superseded_by: Option<i64>,
    pub evidence: Vec<String>,
    #[serde(skip)]
    pub embedding: Vec<f32>,
}

/// One tier's outcome for one job, as kept in `job_tiers`.
#[derive(Debug, Clone, Serialize)]
pub struct TierRecord {
    pub tier: String,
    pub status: String,
    pub result: Option<serde_json::Value>,
    pub error: Option<String>,
    pub attempts: i64,
    pub latency_ms: Option<f64>,
}

/// A job as the API shows it.
#[derive(Debug, Clone, Serialize)]
pub struct JobRecord {
    pub job_id: String,
    pub user_id: String,
    pub state: String,
    pub priority: String,
    pub attempts: i64,
    pub max_retries: i64,
    pub last_error: Option<String>,
    pub dead_reason: Option<String>,
    pub created_at: String,
    pub updated_at: String,
    pub completed_at: Option<String>,
    pub next_attempt_at: Option<String>,
    pub tiers: Vec<TierRecord>,
    pub job: serde_json::Value,
}

/// A user's memory by tier and jobs by state (`GET /api/memory/stats/{user_id}`).
#[derive(Debug, Clone, Serialize)]
pub struct UserStats {
    pub user_id: String,
    pub short_term: ShortTermCounts,
    pub episodic: EpisodicCounts,
    pub semantic: SemanticCounts,
    pub procedural: ProceduralCounts,
    /// Jobs by state, every state present (zero when none).
    pub jobs: HashMap<String, i64>,
}

/// Tier 1: turns stored, and those not yet reflected.
#[derive(Debug, Clone, Serialize)]
pub struct ShortTermCounts {
    pub turns: i64,
    pub unreflected: i64,
}

/// Tier 2: episodes.
#[derive(Debug, Clone, Serialize)]
pub struct EpisodicCounts {
    pub episodes: i64,
}

/// Tier 3: entities, facts (restatements merged into another row not counted), and the
/// facts valid now.
#[derive(Debug, Clone, Serialize)]
pub struct SemanticCounts {
    pub entities: i64,
    pub facts: i64,
    pub valid_facts: i64,
}

/// Tier 4: rules, and those not superseded.
#[derive(Debug, Clone, Serialize)]
pub struct ProceduralCounts {
    pub rules: i64,
    pub active_rules: i64,
}

/// The counts of [`UserStats::from_columns`], one row of eight columns; `$1` is the user
/// (the same SQL on both backends: SQLite reads `$1` as its first parameter).
pub const USER_COUNTS_SELECT: &str = "SELECT (SELECT count(*) FROM turns WHERE user_id = $1),
        (SELECT count(*) FROM turns WHERE user_id = $1 AND NOT reflected),
        (SELECT count(*) FROM episodes WHERE user_id = $1),
        (SELECT count(*) FROM entities WHERE user_id = $1),
        (SELECT count(*) FROM relations WHERE user_id = $1 AND merged_into IS NULL),
        (SELECT count(*) FROM relations WHERE user_id = $1 AND merged_into IS NULL AND invalid_ms IS NULL),
        (SELECT count(*) FROM rules WHERE user_id = $1),
        (SELECT count(*) FROM rules WHERE user_id = $1 AND superseded_by IS NULL)";

impl UserStats {
    /// `user`'s statistics from the row of [`USER_COUNTS_SELECT`] and the job counts.
    pub fn from_columns<R: Columns>(
        user: &str,
        r: &R,
        jobs: HashMap<String, i64>,
    ) -> Result<Self, R::Error> {
        Ok(Self {
            user_id: user.to_string(),
            short_term: ShortTermCounts {
                turns: r.int(0)?,
                unreflected: r.int(1)?,
            },
            episodic: EpisodicCounts {
                episodes: r.int(2)?,
            },
            semantic: SemanticCounts {
                entities: r.int(3)?,
                facts: r.int(4)?,
                valid_facts: r.int(5)?,
            },
            procedural: ProceduralCounts {
                rules: r.int(6)?,
                active_rules: r.int(7)?,
            },
            jobs,
        })
    }
}

/// Mean latency and count of a tier's runs of one status.
#[derive(Debug, Clone, Serialize)]
pub struct TierLatency {
    pub count: i64,
    /// Milliseconds; `None` when no run recorded one.
    pub mean_latency_ms: Option<f64>,
}

/// Tier runs by tier and status, with their count and mean latency: one row of
/// [`tier_latency_row`] each.
pub const TIER_LATENCY_SELECT: &str =
    "SELECT tier, status, count(*), avg(latency_ms) FROM job_tiers GROUP BY tier, status";

/// `(tier, status, latency)` from a row of [`TIER_LATENCY_SELECT`].
pub fn tier_latency_row<R: Columns>(r: &R) -> Result<(String, String, TierLatency), R::Error> {
    Ok((
        r.text(0)?,
        r.text(1)?,
        TierLatency {
            count: r.int(2)?,
            mean_latency_ms: r.opt_f64(3)?,
        },
    ))
}

/// The rows of [`tier_latency_row`] by tier, then status.
pub fn tier_latencies(
    rows: Vec<(String, String, TierLatency)>,
) -> HashMap<String, HashMap<String, TierLatency>> {
    let mut out: HashMap<String, HashMap<String, TierLatency>> = HashMap::new();
    for (tier, status, l) in rows {
        out.entry(tier).or_default().insert(status, l);
    }
    out
}

/// One row of `memory_edits` as the edit history shows it.
#[derive(Debug, Clone, Serialize)]
pub struct EditEntry {
    pub edit_id: i64,
    /// `episodic`, `semantic` or `procedural`.
    pub tier: String,
    pub memory_id: i64,
    /// `add`, `update` or `delete`.
    pub action: String,
    pub actor: String,
    /// RFC 3339 UTC.
    pub at: String,
    /// The memory before and after, as the edit API showed it (`null` when absent or
    /// unreadable).
    pub before: Option<serde_json::Value>,
    pub after: Option<serde_json::Value>,
}

/// The `SELECT` whose columns [`EditEntry::from_columns`] reads (the same SQL on both
/// backends); callers add `WHERE …`.
pub const EDIT_SELECT: &str =
    "SELECT id, tier, memory_id, action, actor, at_ms, before, after FROM memory_edits";

impl EditEntry {
    /// An edit from a row of [`EDIT_SELECT`] (`at_ms`: ms since the Unix epoch; before and
    /// after: JSON text).
    pub fn from_columns<R: Columns>(r: &R) -> Result<Self, R::Error> {
        let parse = |s: Option<String>| s.and_then(|s| serde_json::from_str(&s).ok());
        Ok(Self {
            edit_id: r.int(0)?,
            tier: r.text(1)?,
            memory_id: r.int(2)?,
            action: r.text(3)?,
            actor: r.text(4)?,
            at: super::ms_to_rfc3339(r.int(5)?),
            before: parse(r.opt_text(6)?),
            after: parse(r.opt_text(7)?),
        })
    }
}

/// The `SELECT` whose columns [`TierRecord::from_columns`] reads (the same SQL on both
/// backends); callers add `WHERE …`.
pub const TIER_SELECT: &str =
    "SELECT tier, status, result, error, attempts, latency_ms FROM job_tiers";

impl TierRecord {
    /// A tier record from a row of [`TIER_SELECT`] (result: JSON text, unreadable: none).
    pub fn from_columns<R: Columns>(r: &R) -> Result<Self, R::Error> {
        Ok(Self {
            tier: r.text(0)?,
            status: r.text(1)?,
            result: r.opt_text(2)?.and_then(|s| serde_json::from_str(&s).ok()),
            error: r.opt_text(3)?,
            attempts: r.int(4)?,
            latency_ms: r.opt_f64(5)?,
        })
    }
}

/// The `SELECT` whose columns [`JobRecord::from_columns`] reads (the same SQL on both
/// backends); callers add `WHERE …`.
pub const JOB_SELECT: &str =
    "SELECT job_id, user_id, state, priority, attempts, max_retries, last_error, dead_reason,
        created_ms, updated_ms, completed_ms, available_ms, payload FROM jobs";

impl JobRecord {
    /// A job from a row of [`JOB_SELECT`], without its tiers (times: ms since the Unix epoch;
    /// payload: JSON text, unreadable: null).
    pub fn from_columns<R: Columns>(r: &R) -> Result<Self, R::Error> {
        let state = r.text(2)?;
        let available = r.int(11)?;
        Ok(Self {
            job_id: r.text(0)?,
            user_id: r.text(1)?,
            next_attempt_at: (state == "retrying").then(|| super::ms_to_rfc3339(available)),
            state,
            priority: crate::job::Priority::from_i64(r.int(3)?)
                .unwrap_or(crate::job::Priority::Normal)
                .name()
                .to_string(),
            attempts: r.int(4)?,
            max_retries: r.int(5)?,
            last_error: r.opt_text(6)?,
            dead_reason: r.opt_text(7)?,
            created_at: super::ms_to_rfc3339(r.int(8)?),
            updated_at: super::ms_to_rfc3339(r.int(9)?),
            completed_at: r.opt_int(10)?.map(super::ms_to_rfc3339),
            tiers: Vec::new(),
            job: serde_json::from_str(&r.text(12)?).unwrap_or(serde_json::Value::Null),
        })
    }
}

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

/// Waiting jobs (queued or retrying) by priority: rows of `(priority, jobs)`.
pub const QUEUE_DEPTH_SELECT: &str =
    "SELECT priority, count(*) FROM jobs WHERE state IN ('queued', 'retrying') GROUP BY priority";

/// One row for [`QueueStatus::from_columns`]: the `available_ms` of the oldest waiting job
/// already due at `?1` (ms since the Unix epoch; null when none), the leased jobs, the dead
/// jobs, and the waiting jobs of the user with the most (`?n` here; PostgreSQL writes `$n`).
pub const QUEUE_COUNTS_SELECT: &str = "SELECT
        (SELECT min(available_ms) FROM jobs WHERE state IN ('queued', 'retrying') AND available_ms <= ?1),
        (SELECT count(*) FROM jobs WHERE state = 'processing'),
        (SELECT count(*) FROM jobs WHERE state = 'dead'),
        (SELECT coalesce(max(n), 0) FROM (SELECT count(*) AS n FROM jobs
             WHERE state IN ('queued', 'retrying') GROUP BY user_id) per_user)";

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

impl QueueStatus {
    /// From the rows of [`QUEUE_DEPTH_SELECT`] (`depth`) and the row of
    /// [`QUEUE_COUNTS_SELECT`] read at `now` (ms since the Unix epoch). Every priority is a
    /// key of `depth_by_priority`, zero when none waits; a priority no longer known counts
    /// in `waiting` only.
    pub fn from_columns<R: Columns>(
        depth: &[(i64, i64)],
        r: &R,
        now: i64,
    ) -> Result<Self, R::Error> {
        let mut depth_by_priority: HashMap<String, i64> = [
            Priority::Low,
            Priority::Normal,
            Priority::High,
            Priority::Urgent,
        ]
        .iter()
        .map(|p| (p.name().to_string(), 0))
        .collect();
        for &(p, n) in depth {
            if let Some(p) = Priority::from_i64(p) {
                depth_by_priority.insert(p.name().to_string(), n);
            }
        }
        let oldest = r.opt_int(0)?;
        Ok(Self {
            depth_by_priority,
            waiting: depth.iter().map(|(_, n)| n).sum(),
            oldest_waiting_age_s: oldest.map_or(0.0, |o| (now - o).max(0) as f64 / 1000.0),
            leased: r.int(1)?,
            dead: r.int(2)?,
            deepest_user_waiting: r.int(3)?,
        })
    }
}

/// The three tiers that can be edited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EditTier {
    Episodic,
    Semantic,
    Procedural,
}

impl EditTier {
    /// From the path segment (`episodic`, `semantic`, `procedural`).
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "episodic" => Some(Self::Episodic),
            "semantic" => Some(Self::Semantic),
            "procedural" => Some(Self::Procedural),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Episodic => "episodic",
            Self::Semantic => "semantic",
            Self::Procedural => "procedural",
        }
    }

    /// What one memory of the tier is called in messages.
    pub fn noun(self) -> &'static str {
        match self {
            Self::Episodic => "episode",
            Self::Semantic => "fact",
            Self::Procedural => "rule",
        }
    }

    /// The table of the tier's memories.
    pub fn table(self) -> &'static str {
        match self {
            Self::Episodic => "episodes",
            Self::Semantic => "relations",
            Self::Procedural => "rules",
        }
    }
}

/// Why an edit was not made.
#[derive(Debug, thiserror::Error)]
pub enum EditRefused {
    /// No such memory for this user.
    #[error("no {0} with id {1} for this user")]
    NotFound(&'static str, i64),
    /// The result would duplicate an existing memory.
    #[error("{0}")]
    Conflict(String),
}

/// A new explicit episode ("remember that …").
#[derive(Debug, Clone)]
pub struct NewEpisode {
    pub text: String,
    pub speaker: String,
    pub occurred_ms: i64,
    pub importance: f32,
    pub tags: Vec<String>,
    pub embedding: Vec<f32>,
}

/// Changes to an episode; `None` leaves a field as it is. A new text comes with its vector.
#[derive(Debug, Clone, Default)]
pub struct EpisodePatch {
    pub text: Option<(String, Vec<f32>)>,
    pub importance: Option<f32>,
    pub tags: Option<Vec<String>>,
}

/// A new explicit fact.
#[derive(Debug, Clone)]
pub struct NewFact {
    pub subject: String,
    pub predicate: String,
    pub object: String,
    pub fact: String,
    pub valid_ms: i64,
    /// `None`: as the slot's existing facts, else false.
    pub exclusive: Option<bool>,
}

/// Changes to a fact.
#[derive(Debug, Clone, Default)]
pub struct FactPatch {
    pub fact: Option<String>,
    pub object: Option<String>,
}

/// A new explicit rule.
#[derive(Debug, Clone)]
pub struct NewRule {
    pub kind: String,
    pub topic: String,
    pub statement: String,
    pub embedding: Vec<f32>,
}

/// Changes to a rule. A new statement comes with its vector.
#[derive(Debug, Clone, Default)]
pub struct RulePatch {
    pub statement: Option<(String, Vec<f32>)>,
    pub kind: Option<String>,
}

/// Lines written or read, by record type.
pub type Counts = std::collections::BTreeMap<String, u64>;

/// What holds a re-reflected job's lease (a crashed `reflector reflect` lets it expire, and
/// a worker finishes the job).
pub const REFLECT_OWNER: &str = "reflector-reflect";

/// Which memories `reembed` recomputes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Embedded {
    Episodes,
    Rules,
}

/// The Tier 1 window of one user: the newest turns up to `max_turns` and `max_tokens`
/// (estimated as in `crate::tokens`); older, reflected turns are folded into the summary,
/// which itself keeps its newest lines within `max_tokens / 2`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    pub max_turns: usize,
    pub max_tokens: usize,
}

/// Most turns one fold marks (a backlog beyond that is folded by the next jobs' folds).
pub const FOLD_BATCH: usize = 500;

/// A user's running summary of the turns folded out of the window.
#[derive(Debug, Clone, Serialize)]
pub struct ShortTermSummary {
    pub summary: String,
    pub folded_turns: i64,
    /// Timestamp of the newest folded turn.
    pub through: String,
    pub updated_at: String,
}

/// One user as the users list shows it ([`super::Reader::list_users`]): rows per tier, the
/// user's jobs not yet finished and dead, and when the user was last active.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct UserSummary {
    pub user_id: String,
    /// Tier 1: stored turns.
    pub turns: i64,
    /// Tier 2: episodes.
    pub episodes: i64,
    /// Tier 3: entities, and facts (restatements merged into another fact not counted).
    pub entities: i64,
    pub facts: i64,
    /// Tier 4: rules, superseded ones included, and the active ones among them.
    pub rules: i64,
    pub active_rules: i64,
    /// Reflection jobs queued, retrying or processing.
    pub jobs_waiting: i64,
    /// Reflection jobs in the dead-letter state.
    pub jobs_dead: i64,
    /// RFC 3339 UTC: the latest of the last turn stored, the last job update and the last
    /// episode written; `None` when the user has none of them.
    pub last_activity: Option<String>,
}

/// The `SELECT` of one user's [`UserSummary`] columns, the user's id as parameter 1 (written
/// `?1` here; PostgreSQL replaces it by `$1`): the same scalar subqueries on both backends,
/// each through an index that starts with `user_id`.
pub const USER_SUMMARY_SELECT: &str = "SELECT
    (SELECT count(*) FROM turns WHERE user_id = ?1),
    (SELECT count(*) FROM episodes WHERE user_id = ?1),
    (SELECT count(*) FROM entities WHERE user_id = ?1),
    (SELECT count(*) FROM relations WHERE user_id = ?1 AND merged_into IS NULL),
    (SELECT count(*) FROM rules WHERE user_id = ?1),
    (SELECT count(*) FROM rules WHERE user_id = ?1 AND superseded_by IS NULL),
    (SELECT count(*) FROM jobs WHERE user_id = ?1 AND state IN ('queued', 'retrying', 'processing')),
    (SELECT count(*) FROM jobs WHERE user_id = ?1 AND state = 'dead'),
    (SELECT max(ts_ms) FROM turns WHERE user_id = ?1),
    (SELECT max(updated_ms) FROM jobs WHERE user_id = ?1),
    (SELECT created_ms FROM episodes WHERE user_id = ?1 ORDER BY id DESC LIMIT 1)";

/// The user ids the users list pages through: every user with a turn, an episode, an
/// entity, a rule or a job. Parameter 1 is the search text (matched case-insensitively
/// anywhere in the id; empty matches all), 2 the limit, 3 the offset (`?n` here; PostgreSQL
/// writes `$n` and `strpos` for `instr`).
pub const USER_IDS_SELECT: &str = "SELECT user_id FROM (
        SELECT user_id FROM turns UNION SELECT user_id FROM episodes UNION SELECT user_id FROM entities
        UNION SELECT user_id FROM rules UNION SELECT user_id FROM jobs) u
    WHERE instr(lower(user_id), lower(?1)) > 0 ORDER BY user_id LIMIT ?2 OFFSET ?3";

/// How many users [`USER_IDS_SELECT`] matches without paging (parameter 1: the search text).
pub const USER_COUNT_SELECT: &str = "SELECT count(*) FROM (
        SELECT user_id FROM turns UNION SELECT user_id FROM episodes UNION SELECT user_id FROM entities
        UNION SELECT user_id FROM rules UNION SELECT user_id FROM jobs) u
    WHERE instr(lower(user_id), lower(?1)) > 0";

impl UserSummary {
    /// A user's summary from a row of [`USER_SUMMARY_SELECT`] (the last three columns are
    /// epoch milliseconds, or NULL).
    pub fn from_columns<R: Columns>(user_id: &str, r: &R) -> Result<Self, R::Error> {
        let last = [r.opt_int(8)?, r.opt_int(9)?, r.opt_int(10)?]
            .into_iter()
            .flatten()
            .max();
        Ok(Self {
            user_id: user_id.to_string(),
            turns: r.int(0)?,
            episodes: r.int(1)?,
            entities: r.int(2)?,
            facts: r.int(3)?,
            rules: r.int(4)?,
            active_rules: r.int(5)?,
            jobs_waiting: r.int(6)?,
            jobs_dead: r.int(7)?,
            last_activity: last.map(crate::store::ms_to_rfc3339),
        })
    }
}

/// What a turn is looked up by ([`super::Reader::find_turn`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TurnKey {
    /// An evidence id as memories carry it: a LoCoMo `dia_id` (the turn's `metadata.dia_id`)
    /// or an interaction id.
    Evidence(String),
    /// The reflection job id of the turn (the `job_id` of an episode or fact).
    Job(String),
}

impl TurnKey {
    /// The id itself.
    pub fn id(&self) -> &str {
        match self {
            TurnKey::Evidence(s) | TurnKey::Job(s) => s,
        }
    }

    /// Ids of memories that were never a turn: an explicit memory's job id and evidence id
    /// (`manual:…`, the edit API) and the benchmark's synthetic episodes' job ids
    /// (`synthetic-…`).
    pub fn is_turnless(&self) -> bool {
        match self {
            TurnKey::Job(j) => j.starts_with("manual:") || j.starts_with("synthetic-"),
            TurnKey::Evidence(e) => e.starts_with("manual:"),
        }
    }

    /// Where the turn this key names is, for [`super::Reader::find_turn`] on either backend:
    /// never a turn ([`TurnKey::is_turnless`]): `NoTurn`; stored: `Found`; gone but a memory
    /// still cites it: `Pruned` (retention removed it); a job the ledger knows that stored no
    /// turn: `NoTurn`; else `Unknown`.
    pub fn lookup(&self, user: &str, sql: &mut dyn TurnSql) -> anyhow::Result<TurnLookup> {
        if self.is_turnless() {
            return Ok(TurnLookup::NoTurn);
        }
        if let Some(t) = sql.stored_turn(user, self)? {
            return Ok(TurnLookup::Found(Box::new(t)));
        }
        if sql.cited(user, self)? {
            return Ok(TurnLookup::Pruned);
        }
        match self {
            TurnKey::Job(job_id) if sql.job_known(user, job_id)? => Ok(TurnLookup::NoTurn),
            _ => Ok(TurnLookup::Unknown),
        }
    }
}

/// The statements of [`TurnKey::lookup`], scoped to `user`; each backend implements it on its
/// read connection.
pub trait TurnSql {
    /// The turn the key names: by id or LoCoMo `dia_id` (the earliest), or by its job id.
    fn stored_turn(&mut self, user: &str, key: &TurnKey) -> anyhow::Result<Option<TurnRow>>;
    /// Whether a memory still cites the key (an evidence id, or the job that wrote it).
    fn cited(&mut self, user: &str, key: &TurnKey) -> anyhow::Result<bool>;
    /// Whether the job ledger has the job.
    fn job_known(&mut self, user: &str, job_id: &str) -> anyhow::Result<bool>;
}

/// The answer of a turn lookup ([`super::Reader::find_turn`]).
#[derive(Debug, Clone)]
pub enum TurnLookup {
    /// The turn is stored (Tier 1).
    Found(Box<TurnRow>),
    /// The user's memories cite this id (as evidence or as the job that wrote them), but its
    /// turn is no longer stored: retention removed it (`retention_secs`; memories made from
    /// a turn outlive it).
    Pruned,
    /// The id names a memory that never came from a turn (an explicit memory, a synthetic
    /// episode), or a job that has no turn (a job posted straight to the broker).
    NoTurn,
    /// Nothing of this user has this id.
    Unknown,
}
