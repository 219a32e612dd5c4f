//! The store interface both backends implement — SQLite ([`super::SqliteStore`], the
//! embedded default) and PostgreSQL ([`super::PgStore`]) — split by subject:
//!
//! | trait | what | files (`sqlite/`, `postgres/`) |
//! |---|---|---|
//! | [`JobLedger`] | the request path, the outbox, jobs and their tiers, the embedded queue's claims, retention, re-reflection | `jobs.rs`, `window.rs` (prune), `rebuild.rs` |
//! | [`TierWriter`] | the tier commits and the Tier 1 fold | `tiers.rs`, `window.rs` |
//! | [`Reader`] | recall's and the browse API's reads, statistics | `reads.rs`, `window.rs` (summary) |
//! | [`Editor`] | explicit edits, their audit record, forgetting a user | `edits.rs`, `reads.rs` (forget) |
//! | [`Portability`] | export, import, re-embedding | `export.rs`, `rebuild.rs` |
//!
//! [`Backend`] is all five, plus [`Backend::kind`]; the service holds an `Arc<dyn Backend>`.
//! Seams for tests and the benchmark are not part of it: see [`Seams`].
//!
//! Every method is synchronous: the SQLite backend is rusqlite, the PostgreSQL backend the
//! blocking `postgres` client over a connection pool. Async code reaches them through
//! [`super::Store::run`], which runs them on tokio's blocking pool; they must never be called
//! on an async worker thread (the PostgreSQL client would panic there).
//!
//! Each backend implements the methods as inherent methods, in the files of its folder named
//! above; [`backend!`] declares each trait once and forwards it to those inherent methods, so
//! a method missing from a backend is a compile error, and the signatures cannot drift
//! apart. The documentation of each method is on the SQLite backend's inherent method, which
//! is the reference behaviour; the parity tests (`src/store/parity/`, run with
//! `REFLECTOR_TEST_DATABASE_URL`) and the integration tests of the store suite
//! (`scripts/test.sh`, on PostgreSQL 15 and 16) hold the PostgreSQL backend to it.

use std::collections::HashMap;
use std::io::{BufRead, Write};

use serde_json::Value;

use super::model::{
    ClaimedJob, Counts, Delivery, EditRefused, EditTier, Embedded, EpisodePatch, FactPatch,
    InsertOutcome, NewEpisode, NewFact, NewRule, NewTurn, QueueLimits, QueueStatus, RulePatch,
    ShortTermSummary, TurnInsert, TurnKey, TurnLookup, UserSummary, Window, WindowTurn,
};
use super::{EntityRow, EpisodeRow, FactRow, JobRecord, PgStore, RuleRow, SqliteStore, TurnRow};
use crate::extract::{EpisodeDraft, GraphDraft, RuleDraft};
use crate::job::{JobState, Priority, ReflectionJob, Tier};

/// The callback of [`Reader::each_episode_vector`]: `(episode id, little-endian f32 bytes)`.
pub type VectorSink<'a> = &'a mut dyn FnMut(i64, &[u8]);

macro_rules! backend {
    ($( $(#[$attr:meta])* trait $trait:ident { $( fn $name:ident(&self $(, $arg:ident : $ty:ty)* $(,)?) -> $ret:ty; )* } )*) => {
        $(
            $(#[$attr])*
            pub trait $trait: Send + Sync {
                $( fn $name(&self $(, $arg: $ty)*) -> $ret; )*
            }
            impl $trait for SqliteStore {
                $( fn $name(&self $(, $arg: $ty)*) -> $ret { SqliteStore::$name(self $(, $arg)*) } )*
            }
            impl $trait for PgStore {
                $( fn $name(&self $(, $arg: $ty)*) -> $ret { PgStore::$name(self $(, $arg)*) } )*
            }
        )*
    };
}

/// The store interface: the five subjects, and which backend this is. Object-safe.
pub trait Backend: JobLedger + TierWriter + Reader + Editor + Portability {
    /// `sqlite` or `postgres`, for health output and logs.
    fn kind(&self) -> &'static str;
}

impl Backend for SqliteStore {
    fn kind(&self) -> &'static str {
        "sqlite"
    }
}

impl Backend for PgStore {
    fn kind(&self) -> &'static str {
        "postgres"
    }
}

backend! {
    /// The request path, the outbox (RabbitMQ mode), the job ledger with its tier records,
    /// the embedded queue's claims, retention and re-reflection.
    trait JobLedger {
        fn ping(&self) -> anyhow::Result<()>;
        fn insert_turn_and_job(&self, turn: &NewTurn, job: &ReflectionJob, state: JobState, limits: QueueLimits) -> anyhow::Result<InsertOutcome>;
        fn insert_turns_and_jobs(&self, items: &[TurnInsert], limits: QueueLimits) -> Vec<anyhow::Result<InsertOutcome>>;
        fn insert_job(&self, job: &ReflectionJob) -> anyhow::Result<bool>;
        fn set_outbox(&self, on: bool) -> ();
        fn is_outbox(&self) -> bool;
        fn unpublished_jobs(&self, limit: usize) -> anyhow::Result<Vec<(String, String, Priority, String)>>;
        fn mark_published(&self, job_ids: &[String]) -> anyhow::Result<()>;
        fn outbox_backlog(&self) -> anyhow::Result<i64>;
        fn begin_delivery(&self, job: &ReflectionJob, owner: &str) -> anyhow::Result<Delivery>;
        fn claim_jobs(&self, owner: &str, n: usize, lease_ms: i64) -> anyhow::Result<Vec<ClaimedJob>>;
        fn completed_tiers(&self, job_id: &str) -> anyhow::Result<Vec<Tier>>;
        fn record_tier_failure(&self, job_id: &str, tier: Tier, error: &str, latency_ms: f64) -> anyhow::Result<()>;
        fn complete_job(&self, job_id: &str) -> anyhow::Result<()>;
        fn retry_job(&self, job_id: &str, available_ms: i64, error: &str) -> anyhow::Result<()>;
        fn dead_job(&self, job_id: &str, reason: &str) -> anyhow::Result<()>;
        fn replay_dead(&self, job_ids: &[String]) -> anyhow::Result<(usize, Vec<String>)>;
        fn dead_job_ids(&self) -> anyhow::Result<Vec<String>>;
        fn get_job(&self, job_id: &str) -> anyhow::Result<Option<JobRecord>>;
        fn list_dead(&self, limit: usize, offset: usize) -> anyhow::Result<Vec<JobRecord>>;
        fn job_counts(&self, user_id: Option<&str>) -> anyhow::Result<HashMap<String, i64>>;
        fn tier_latencies(&self) -> anyhow::Result<HashMap<String, Value>>;
        fn completion_rate(&self, window_ms: i64) -> anyhow::Result<f64>;
        fn queue_status(&self) -> anyhow::Result<QueueStatus>;
        fn prune(&self, cutoff_ms: i64) -> anyhow::Result<(usize, usize)>;
        fn rereflect_job(&self, job_id: &str) -> anyhow::Result<bool>;
        fn rereflection_jobs(&self, user: Option<&str>, since_ms: i64) -> anyhow::Result<Vec<String>>;
        fn begin_rereflection(&self, job_id: &str, lease_ms: i64) -> anyhow::Result<Option<ClaimedJob>>;
    }

    /// The tier commits (each once per job and tier) and the Tier 1 fold.
    trait TierWriter {
        fn commit_episode(&self, job: &ReflectionJob, speaker: &str, draft: Option<&EpisodeDraft>, embedding: Option<&[f32]>, context: &str, latency_ms: f64) -> anyhow::Result<Value>;
        fn commit_graph(&self, job: &ReflectionJob, draft: &GraphDraft, latency_ms: f64) -> anyhow::Result<Value>;
        fn commit_rules(&self, job: &ReflectionJob, drafts: &[(RuleDraft, Vec<f32>)], latency_ms: f64) -> anyhow::Result<Value>;
        fn fold_short_term(&self, user: &str, w: Window) -> anyhow::Result<usize>;
    }

    /// The reads of recall and of the browse API, and a user's statistics.
    trait Reader {
        fn recent_turns(&self, user_id: &str, limit: usize) -> anyhow::Result<Vec<TurnRow>>;
        fn list_turns(&self, user_id: &str, limit: usize, offset: usize) -> anyhow::Result<Vec<TurnRow>>;
        fn search_episodes_fts(&self, user_id: &str, fts_query: &str, limit: usize) -> anyhow::Result<Vec<(i64, f64)>>;
        fn fts_doc_count(&self, fts_query: &str) -> anyhow::Result<i64>;
        fn vector_search(&self, user_id: &str, query: &[f32], k: usize) -> anyhow::Result<Option<Vec<(i64, f32)>>>;
        fn turn_window(&self, user_id: &str, job_id: &str, before: usize, after: usize) -> anyhow::Result<(Vec<WindowTurn>, Vec<WindowTurn>)>;
        fn episode_version(&self, user_id: &str) -> anyhow::Result<(i64, i64, i64)>;
        fn each_episode_vector(&self, user_id: &str, after_id: i64, f: VectorSink<'_>) -> anyhow::Result<()>;
        fn episode_vectors_by_ids(&self, user_id: &str, ids: &[i64]) -> anyhow::Result<Vec<(i64, Vec<f32>)>>;
        fn episodes_by_ids(&self, user_id: &str, ids: &[i64]) -> anyhow::Result<Vec<EpisodeRow>>;
        fn list_episodes(&self, user_id: &str, limit: usize, offset: usize) -> anyhow::Result<Vec<EpisodeRow>>;
        fn entity_names(&self, user_id: &str) -> anyhow::Result<Vec<(String, i64)>>;
        fn facts_about(&self, user_id: &str, entity_ids: &[i64], include_invalid: bool, limit: usize) -> anyhow::Result<Vec<FactRow>>;
        fn list_facts(&self, user_id: &str, limit: usize, offset: usize) -> anyhow::Result<Vec<FactRow>>;
        fn fact_by_id(&self, user_id: &str, id: i64) -> anyhow::Result<Option<FactRow>>;
        fn list_entities(&self, user_id: &str, limit: usize, offset: usize) -> anyhow::Result<Vec<EntityRow>>;
        fn list_rules(&self, user_id: &str, include_superseded: bool, limit: usize, offset: usize) -> anyhow::Result<Vec<RuleRow>>;
        fn user_stats(&self, user_id: &str) -> anyhow::Result<Value>;
        fn short_term_summary(&self, user: &str) -> anyhow::Result<Option<ShortTermSummary>>;
        fn list_users(&self, query: &str, limit: usize, offset: usize) -> anyhow::Result<(Vec<UserSummary>, i64)>;
        fn find_turn(&self, user_id: &str, key: &TurnKey) -> anyhow::Result<TurnLookup>;
    }

    /// Explicit edits of one memory, each with its audit record and tombstone, and
    /// forgetting a user.
    trait Editor {
        fn add_episode(&self, user: &str, actor: &str, e: &NewEpisode) -> anyhow::Result<Value>;
        fn add_fact(&self, user: &str, actor: &str, f: &NewFact) -> anyhow::Result<Result<Value, EditRefused>>;
        fn add_rule(&self, user: &str, actor: &str, r: &NewRule) -> anyhow::Result<Result<Value, EditRefused>>;
        fn update_episode(&self, user: &str, actor: &str, id: i64, p: &EpisodePatch) -> anyhow::Result<Result<Value, EditRefused>>;
        fn update_fact(&self, user: &str, actor: &str, id: i64, p: &FactPatch) -> anyhow::Result<Result<Value, EditRefused>>;
        fn update_rule(&self, user: &str, actor: &str, id: i64, p: &RulePatch) -> anyhow::Result<Result<Value, EditRefused>>;
        fn delete_memory(&self, user: &str, actor: &str, tier: EditTier, id: i64) -> anyhow::Result<Result<Value, EditRefused>>;
        fn list_edits(&self, user: &str, limit: usize, offset: usize) -> anyhow::Result<Vec<Value>>;
        fn forget_user(&self, user_id: &str) -> anyhow::Result<Value>;
    }

    /// Moving memory between stores and models: export, import, re-embedding.
    trait Portability {
        fn export_user(&self, user: &str, model: &str, out: &mut dyn Write) -> anyhow::Result<Counts>;
        fn import_user(&self, input: &mut dyn BufRead) -> anyhow::Result<Counts>;
        fn texts_to_embed(&self, what: Embedded, user: Option<&str>, after: i64, limit: usize) -> anyhow::Result<Vec<(i64, String)>>;
        fn set_embeddings(&self, what: Embedded, rows: &[(i64, Vec<f32>)]) -> anyhow::Result<()>;
        fn count_embedded(&self, user: Option<&str>) -> anyhow::Result<u64>;
    }

    /// Seams for tests and the benchmark, not part of [`Backend`]: reach them through
    /// [`super::Store::seams`].
    trait Seams {
        fn insert_synthetic_episodes(&self, user_id: &str, episodes: &[(String, i64, Vec<f32>)]) -> anyhow::Result<usize>;
    }
}
