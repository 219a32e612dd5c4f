//! The store interface both backends implement — SQLite ([`super::SqliteStore`], the
//! embedded default) and PostgreSQL ([`super::PgStore`]) — split by subject:
//!
//! | trait | what | files (`sqlite/`, `postgres/`) |
//! |---|---|---|
//! | [`JobLedger`] | the outbox, jobs and their tiers, the embedded queue's claims, retention, the jobs to re-reflect | `jobs.rs`, `window.rs` (prune), `rebuild.rs` |
//! | [`JobWriter`] | the request path, a job from another producer, the start of a delivery and of a re-reflection: written once, in `store/jobs.rs`, over the [`jobs::JobSql`] statements of `jobs.rs` | — |
//! | [`WriteStore`] | the one write transaction the shared flows run in, the Tier 1 fold, the edit history | `mod.rs`, `window.rs`, `edits.rs` |
//! | [`TierWriter`] | the tier commits: written once, in `store/tiers.rs`, over the [`tiers::TierSql`] statements of `tiers.rs` | — |
//! | [`Reader`] | recall's and the browse API's reads, statistics | `reads.rs`, `window.rs` (summary) |
//! | [`Editor`] | explicit edits with their audit record and tombstone, and forgetting a user: written once, in `store/edits.rs`, over the [`EditSql`] statements of `edits.rs` | — |
//! | [`Portability`] | export, import, re-embedding | `export.rs`, `rebuild.rs` |
//!
//! [`Backend`] is all seven, plus [`Backend::kind`]; the service holds an `Arc<dyn Backend>`.
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
//! apart. [`TierWriter`] and [`Editor`] have no backend code at all: their provided methods
//! run the flows of `store/tiers.rs` and `store/edits.rs` in
//! [`WriteStore::write_transaction`] ([`edit_flows!`] declares each edit once). The
//! documentation of each method is on the SQLite backend's inherent method or on the shared
//! flow, which is the reference behaviour; the parity tests (`src/store/parity/`, run with
//! `REFLECTOR_TEST_DATABASE_URL`) and the integration tests of the store suite
//! (`scripts/test.sh`, on PostgreSQL 15 and 16) hold the PostgreSQL backend to it.

use std::collections::HashMap;
use std::io::{BufRead, Write};

use serde_json::Value;

use super::edits::{self, EditSql};
use super::jobs::{self, Admission, JobSql, WaitingTotal};
use super::model::{
    ClaimedJob, Counts, Delivery, EditEntry, EditRefused, EditTier, Embedded, EpisodePatch,
    FactPatch, InsertOutcome, NewEpisode, NewFact, NewRule, NewTurn, QueueLimits, QueueStatus,
    RulePatch, ShortTermSummary, TierLatency, TurnInsert, TurnKey, TurnLookup, UserStats,
    UserSummary, Window, WindowTurn,
};
use super::tiers;
use super::{EntityRow, EpisodeRow, FactRow, JobRecord, PgStore, RuleRow, SqliteStore, TurnRow};
use crate::extract::{EpisodeDraft, GraphDraft, RuleDraft};
use crate::job::{JobState, Priority, ReflectionJob, Tier};

/// One flow of [`super::tiers`] or [`super::edits`], run by
/// [`WriteStore::write_transaction`] inside one write transaction (from the start again when
/// PostgreSQL reports a serialization failure, so it must leave its result only when it
/// returns `Ok`). It gets the transaction as every statement the flows use ([`WriteSql`]).
pub type WriteFlow<'a> = &'a mut dyn FnMut(&mut dyn WriteSql) -> anyhow::Result<()>;

/// Every statement of the flows written once for both backends, on one open write
/// transaction: [`EditSql`] (with [`tiers::TierSql`]) and [`jobs::JobSql`].
pub trait WriteSql: EditSql + JobSql {}

impl<T: EditSql + JobSql + ?Sized> WriteSql for T {}

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

/// The store interface: the seven subjects, and which backend this is. Object-safe.
pub trait Backend:
    JobLedger + JobWriter + WriteStore + TierWriter + Reader + Editor + Portability
{
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
    /// The outbox (RabbitMQ mode), the job ledger with its tier records, the embedded
    /// queue's claims, retention and the jobs to re-reflect ([`JobWriter`] has the writes
    /// written once).
    trait JobLedger {
        fn ping(&self) -> anyhow::Result<()>;
        fn set_outbox(&self, on: bool) -> ();
        fn is_outbox(&self) -> bool;
        fn unpublished_jobs(&self, limit: usize) -> anyhow::Result<Vec<(String, String, Priority, String)>>;
        fn mark_published(&self, job_ids: &[String]) -> anyhow::Result<()>;
        fn outbox_backlog(&self) -> anyhow::Result<i64>;
        fn completed_tiers(&self, job_id: &str) -> anyhow::Result<Vec<Tier>>;
        fn record_tier_failure(&self, job_id: &str, tier: Tier, error: &str, latency_ms: f64) -> anyhow::Result<()>;
        fn complete_job(&self, job_id: &str) -> anyhow::Result<()>;
        fn retry_job(&self, job_id: &str, available_ms: i64, error: &str) -> anyhow::Result<()>;
        fn dead_job(&self, job_id: &str, reason: &str) -> anyhow::Result<()>;
        fn dead_job_ids(&self) -> anyhow::Result<Vec<String>>;
        fn get_job(&self, job_id: &str) -> anyhow::Result<Option<JobRecord>>;
        fn list_dead(&self, limit: usize, offset: usize) -> anyhow::Result<Vec<JobRecord>>;
        fn job_counts(&self, user_id: Option<&str>) -> anyhow::Result<HashMap<String, i64>>;
        fn tier_latencies(&self) -> anyhow::Result<HashMap<String, HashMap<String, TierLatency>>>;
        fn completion_rate(&self, window_ms: i64) -> anyhow::Result<f64>;
        fn queue_status(&self) -> anyhow::Result<QueueStatus>;
        fn prune(&self, cutoff_ms: i64) -> anyhow::Result<(usize, usize)>;
        fn rereflect_job(&self, job_id: &str) -> anyhow::Result<bool>;
        fn rereflection_jobs(&self, user: Option<&str>, since_ms: i64) -> anyhow::Result<Vec<String>>;
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
        fn user_stats(&self, user_id: &str) -> anyhow::Result<UserStats>;
        fn short_term_summary(&self, user: &str) -> anyhow::Result<Option<ShortTermSummary>>;
        fn list_users(&self, query: &str, limit: usize, offset: usize) -> anyhow::Result<(Vec<UserSummary>, i64)>;
        fn find_turn(&self, user_id: &str, key: &TurnKey) -> anyhow::Result<TurnLookup>;
    }

    /// A backend's own writing: the transaction that the flows written once for both
    /// backends run in ([`TierWriter`]'s tier commits, [`Editor`]'s edits), the Tier 1 fold
    /// and the edit history.
    trait WriteStore {
        fn write_transaction(&self, flow: WriteFlow<'_>) -> anyhow::Result<()>;
        fn fold_short_term(&self, user: &str, w: Window) -> anyhow::Result<usize>;
        fn list_edits(&self, user: &str, limit: usize, offset: usize) -> anyhow::Result<Vec<EditEntry>>;
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

/// Declares [`Editor`]: each method runs the flow of [`super::edits`] of the same name, with
/// the same arguments, in one [`WriteStore::write_transaction`].
macro_rules! edit_flows {
    ($(#[$tattr:meta])* trait $trait:ident { $( $(#[$attr:meta])* fn $name:ident($($arg:ident : $ty:ty),*) -> $ret:ty; )* }) => {
        $(#[$tattr])*
        pub trait $trait: WriteStore {
            $( $(#[$attr])* fn $name(&self, $($arg: $ty),*) -> anyhow::Result<$ret> {
                in_transaction(self, |tx| edits::$name(tx, $($arg),*))
            } )*
        }
    };
}

edit_flows! {
    /// Explicit edits of one memory, each with its audit record and tombstone: the flows of
    /// [`super::edits`], each run in one [`WriteStore::write_transaction`]. Both backends have
    /// them as they are; a backend supplies only the transaction and its statements
    /// ([`EditSql`]).
    trait Editor {
        /// Add an episode explicitly: see [`edits::add_episode`].
        fn add_episode(user: &str, actor: &str, e: &NewEpisode) -> Value;
        /// Add a fact explicitly: see [`edits::add_fact`].
        fn add_fact(user: &str, actor: &str, f: &NewFact) -> Edited;
        /// Add a rule explicitly: see [`edits::add_rule`].
        fn add_rule(user: &str, actor: &str, r: &NewRule) -> Edited;
        /// Change an episode: see [`edits::update_episode`].
        fn update_episode(user: &str, actor: &str, id: i64, p: &EpisodePatch) -> Edited;
        /// Change a fact: see [`edits::update_fact`].
        fn update_fact(user: &str, actor: &str, id: i64, p: &FactPatch) -> Edited;
        /// Change a rule: see [`edits::update_rule`].
        fn update_rule(user: &str, actor: &str, id: i64, p: &RulePatch) -> Edited;
        /// Delete one memory and tombstone it: see [`edits::delete_memory`].
        fn delete_memory(user: &str, actor: &str, tier: EditTier, id: i64) -> Edited;
        /// Forget a user in every tier: see [`edits::forget_user`].
        fn forget_user(user: &str) -> edits::Removed;
    }
}

impl Editor for SqliteStore {}
impl Editor for PgStore {}

/// The tier commits, each once per (job, tier): the flows of [`super::tiers`], each run in
/// one [`WriteStore::write_transaction`] inside [`tiers::commit_tier`]. Both backends have them
/// as they are; a backend supplies only the transaction and its statements ([`tiers::TierSql`]).
pub trait TierWriter: WriteStore {
    /// Tier 2: see [`tiers::commit_episode`]. Returns the tier's result JSON.
    fn commit_episode(
        &self,
        job: &ReflectionJob,
        speaker: &str,
        draft: Option<&EpisodeDraft>,
        embedding: Option<&[f32]>,
        context: &str,
        latency_ms: f64,
    ) -> anyhow::Result<Value> {
        in_transaction(self, |tx| {
            tiers::commit_tier(tx, job, Tier::Episodic, latency_ms, |tx| {
                tiers::commit_episode(tx, job, speaker, draft, embedding, context)
            })
        })
    }

    /// Tier 3: see [`tiers::commit_graph`]. Returns the tier's result JSON.
    fn commit_graph(
        &self,
        job: &ReflectionJob,
        draft: &GraphDraft,
        latency_ms: f64,
    ) -> anyhow::Result<Value> {
        in_transaction(self, |tx| {
            tiers::commit_tier(tx, job, Tier::Semantic, latency_ms, |tx| {
                tiers::commit_graph(tx, job, draft)
            })
        })
    }

    /// Tier 4: see [`tiers::commit_rules`]. Returns the tier's result JSON.
    fn commit_rules(
        &self,
        job: &ReflectionJob,
        drafts: &[(RuleDraft, Vec<f32>)],
        latency_ms: f64,
    ) -> anyhow::Result<Value> {
        in_transaction(self, |tx| {
            tiers::commit_tier(tx, job, Tier::Procedural, latency_ms, |tx| {
                tiers::commit_rules(tx, job, drafts)
            })
        })
    }
}

impl TierWriter for SqliteStore {}
impl TierWriter for PgStore {}

/// The job ledger's writes whose decisions are written once, in `store/jobs.rs`: the
/// request path, a job from another producer, the start of a broker delivery and of a
/// re-reflection. Each runs in
/// one [`WriteStore::write_transaction`]; a backend supplies only the transaction, its
/// statements ([`JobSql`]) and its reused count of waiting jobs.
pub trait JobWriter: JobLedger + WriteStore {
    /// The store's reused count of all waiting jobs, for admission.
    fn waiting_total(&self) -> &WaitingTotal;

    /// Tier 1 append and job insert in ONE transaction: see [`jobs::insert_turn_and_job`].
    /// `state` is `queued` for the fast path (admitted against `limits`), `processing` for
    /// the traditional path.
    fn insert_turn_and_job(
        &self,
        turn: &NewTurn,
        job: &ReflectionJob,
        state: JobState,
        limits: QueueLimits,
    ) -> anyhow::Result<InsertOutcome> {
        let it = TurnInsert::new(turn.clone(), job.clone(), state)?;
        let outbox = self.is_outbox();
        in_transaction(self, |tx| {
            let mut adm = Admission::new(self.waiting_total(), limits);
            jobs::insert_turn_and_job(tx, &it, &mut adm, outbox)
        })
    }

    /// Group commit: [`JobWriter::insert_turn_and_job`] for many turns in ONE transaction
    /// (on SQLite one WAL append and one write of each touched index page for the whole
    /// batch). Results are in input order and the same as one call each: a conflict or replay
    /// is per turn. If anything fails, the batch is rolled back and every turn is retried in a
    /// transaction of its own, so one bad turn cannot fail the others. Fast-path turns are
    /// admitted against `limits` in input order.
    fn insert_turns_and_jobs(
        &self,
        items: &[TurnInsert],
        limits: QueueLimits,
    ) -> Vec<anyhow::Result<InsertOutcome>> {
        let outbox = self.is_outbox();
        let batch = in_transaction(self, |tx| {
            let mut adm = Admission::new(self.waiting_total(), limits);
            items
                .iter()
                .map(|it| jobs::insert_turn_and_job(tx, it, &mut adm, outbox))
                .collect::<anyhow::Result<Vec<_>>>()
        });
        match batch {
            Ok(outcomes) => outcomes.into_iter().map(Ok).collect(),
            Err(_) => items
                .iter()
                .map(|it| {
                    in_transaction(self, |tx| {
                        let mut adm = Admission::new(self.waiting_total(), limits);
                        jobs::insert_turn_and_job(tx, it, &mut adm, outbox)
                    })
                })
                .collect(),
        }
    }

    /// Record a job that did not come through our API (another producer), as queued.
    /// Returns false when the job id is already known.
    fn insert_job(&self, job: &ReflectionJob) -> anyhow::Result<bool> {
        let payload = serde_json::to_string(job)?;
        in_transaction(self, |tx| {
            let now = super::now_ms();
            tx.insert_job(job, &payload, JobState::Queued, now, Some(now))
        })
    }

    /// A job was delivered by the broker and is about to be processed: see
    /// [`jobs::begin_delivery`]. `owner` names the worker (shown as the lease owner while
    /// processing).
    fn begin_delivery(&self, job: &ReflectionJob, owner: &str) -> anyhow::Result<Delivery> {
        let payload = serde_json::to_string(job)?;
        in_transaction(self, |tx| jobs::begin_delivery(tx, job, &payload, owner))
    }

    /// The embedded queue's claim of up to `n` due jobs for `owner`, leased for `lease_ms`:
    /// see [`jobs::claim_jobs`].
    fn claim_jobs(&self, owner: &str, n: usize, lease_ms: i64) -> anyhow::Result<Vec<ClaimedJob>> {
        in_transaction(self, |tx| jobs::claim_jobs(tx, owner, n, lease_ms))
    }

    /// Put dead jobs back in the queue (`job_ids` empty: every one): see
    /// [`jobs::replay_dead`]. Returns how many, and the given ids that are unknown or not
    /// dead.
    fn replay_dead(&self, job_ids: &[String]) -> anyhow::Result<(usize, Vec<String>)> {
        let outbox = self.is_outbox();
        in_transaction(self, |tx| jobs::replay_dead(tx, job_ids, outbox))
    }

    /// Take a finished job for re-reflection in this process: see
    /// [`jobs::begin_rereflection`].
    fn begin_rereflection(
        &self,
        job_id: &str,
        lease_ms: i64,
    ) -> anyhow::Result<Option<ClaimedJob>> {
        in_transaction(self, |tx| jobs::begin_rereflection(tx, job_id, lease_ms))
    }
}

impl JobWriter for SqliteStore {
    fn waiting_total(&self) -> &WaitingTotal {
        &self.waiting_total
    }
}

impl JobWriter for PgStore {
    fn waiting_total(&self) -> &WaitingTotal {
        &self.waiting_total
    }
}

/// What an edit answers: the memory as the edit API shows it, or why the edit was refused.
pub type Edited = Result<Value, EditRefused>;

/// Run `flow` in one write transaction of `store` and return what its last run returned.
fn in_transaction<S: WriteStore + ?Sized, T>(
    store: &S,
    mut flow: impl FnMut(&mut dyn WriteSql) -> anyhow::Result<T>,
) -> anyhow::Result<T> {
    let mut out = None;
    store.write_transaction(&mut |tx| {
        out = Some(flow(tx)?);
        Ok(())
    })?;
    out.ok_or_else(|| anyhow::anyhow!("the write transaction never ran its flow"))
}
