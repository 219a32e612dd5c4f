//! SQLite store (the embedded default): one file in WAL mode, one writer connection behind a
//! mutex (SQLite admits one writer at a time anyway) and a small pool of reader connections.
//!
//! Durability: a commit returns after the WAL append; with `synchronous = NORMAL` that survives
//! a crash of this process (the OS holds the pages) but not a power failure, with `FULL` both.
//! Migrations are numbered files under `migrations/`, applied in order and tracked in
//! `PRAGMA user_version`.

use std::collections::{BTreeSet, HashMap};
use std::path::Path;
use std::sync::{Arc, Mutex};

use anyhow::{Context, bail};
use rusqlite::{Connection, OptionalExtension, Transaction, params};
use serde_json::{Value, json};

use super::*;
use crate::extract::{EpisodeDraft, GraphDraft, RuleDraft};
use crate::job::{JobState, Priority, ReflectionJob, Tier};

const MIGRATIONS: &[(&str, &str)] = &[
    (
        "001_turns_and_jobs",
        include_str!("../../migrations/001_turns_and_jobs.sql"),
    ),
    (
        "002_episodes",
        include_str!("../../migrations/002_episodes.sql"),
    ),
    ("003_graph", include_str!("../../migrations/003_graph.sql")),
    ("004_rules", include_str!("../../migrations/004_rules.sql")),
    (
        "005_turn_lookups",
        include_str!("../../migrations/005_turn_lookups.sql"),
    ),
    (
        "006_fact_restatements",
        include_str!("../../migrations/006_fact_restatements.sql"),
    ),
    (
        "007_episode_context",
        include_str!("../../migrations/007_episode_context.sql"),
    ),
    (
        "008_outbox",
        include_str!("../../migrations/008_outbox.sql"),
    ),
    (
        "009_memory_edits",
        include_str!("../../migrations/009_memory_edits.sql"),
    ),
    (
        "010_short_term_window",
        include_str!("../../migrations/010_short_term_window.sql"),
    ),
    (
        "011_forgotten_users",
        include_str!("../../migrations/011_forgotten_users.sql"),
    ),
    (
        "012_episode_stamps",
        include_str!("../../migrations/012_episode_stamps.sql"),
    ),
    (
        "013_foldable_turns",
        include_str!("../../migrations/013_foldable_turns.sql"),
    ),
];

/// Waiting-job counts for admission within one write transaction: counted once per batch
/// (the total over the `jobs_claimable` partial index, each user's over `jobs_by_user`),
/// then kept up to date as the batch's own jobs are inserted.
struct Admission {
    limits: QueueLimits,
    /// The total and when it was counted.
    total: Option<i64>,
    counted_at: Option<std::time::Instant>,
    batch_start: std::time::Instant,
    per_user: HashMap<String, i64>,
}

impl Admission {
    fn new(limits: QueueLimits) -> Self {
        Self {
            limits,
            total: None,
            counted_at: None,
            batch_start: std::time::Instant::now(),
            per_user: HashMap::new(),
        }
    }

    /// `Some(Busy)` when one more waiting job for `user` would pass a ceiling.
    fn check(&mut self, tx: &Connection, user: &str) -> anyhow::Result<Option<InsertOutcome>> {
        if self.limits == QueueLimits::NONE {
            return Ok(None);
        }
        // A reused count only over-estimates (finished jobs are not subtracted), so it may
        // admit a turn but never refuse one: at the ceiling, count again.
        let stale = self.fresh_count_needed();
        let total = match self.total {
            Some(n) if !(stale && n as u64 >= self.limits.total) => n,
            _ => {
                let n = tx
                    .prepare_cached(
                        "SELECT count(*) FROM jobs WHERE state IN ('queued', 'retrying')",
                    )?
                    .query_row([], |r| r.get::<_, i64>(0))?;
                self.total = Some(n);
                self.counted_at = Some(std::time::Instant::now());
                n
            }
        };
        let mine = match self.per_user.get(user) {
            Some(n) => *n,
            None => {
                let n = tx
                    .prepare_cached(
                        "SELECT count(*) FROM jobs WHERE user_id = ?1 AND state IN ('queued', 'retrying')",
                    )?
                    .query_row([user], |r| r.get::<_, i64>(0))?;
                self.per_user.insert(user.to_string(), n);
                n
            }
        };
        Ok(if mine as u64 >= self.limits.per_user {
            Some(InsertOutcome::Busy {
                scope: "user",
                depth: mine,
                ceiling: self.limits.per_user,
            })
        } else if total as u64 >= self.limits.total {
            Some(InsertOutcome::Busy {
                scope: "total",
                depth: total,
                ceiling: self.limits.total,
            })
        } else {
            None
        })
    }

    /// True when the total was not counted during this batch.
    fn fresh_count_needed(&self) -> bool {
        self.counted_at.is_some_and(|at| at < self.batch_start)
    }

    fn admitted(&mut self, user: &str) {
        if let Some(n) = &mut self.total {
            *n += 1;
        }
        if let Some(n) = self.per_user.get_mut(user) {
            *n += 1;
        }
    }
}

pub struct SqliteStore {
    /// Shared with the background checkpointer (which holds a `Weak` and stops with us).
    writer: Arc<Mutex<Connection>>,
    readers: Mutex<Vec<Connection>>,
    path: std::path::PathBuf,
    synchronous: String,
    /// The service-wide count of waiting jobs for backpressure, with when it was counted
    /// (see [`WAITING_TOTAL_RECOUNT`]).
    waiting_total: Mutex<Option<(std::time::Instant, i64)>>,
    /// RabbitMQ mode: new job rows are written unpublished (`published_ms` NULL) for the
    /// relay to publish (see [`SqliteStore::set_outbox`]).
    outbox: std::sync::atomic::AtomicBool,
}

/// How long the request path reuses its count of all waiting jobs before counting again.
/// Counting is a scan of the waiting jobs' index: measured 3.3 ms at 100k waiting jobs
/// (0.06 ms for one user's count, which is therefore exact per batch). Between recounts the
/// turns we insert are added, and jobs the workers finish are not subtracted: an
/// over-estimate, good for admitting a turn; a turn is refused only on a fresh count. So
/// the period never changes an admission decision (an estimate at the ceiling is recounted
/// in that batch); it only bounds how far the estimate drifts. The count runs inside the
/// fast path's write transaction, so every recount delays the turns behind it by its
/// 1–3 ms: at 250 ms that was in the 1,000 turns/s p99 (about 1% of turns); 10 s.
const WAITING_TOTAL_RECOUNT: std::time::Duration = std::time::Duration::from_secs(10);

/// How often the background checkpointer copies the WAL into the database file. Often, so
/// that each checkpoint's fsync has little to write: with 1 s (12k pages at 1,000 turns/s)
/// the fsync held up the WAL appends of concurrent commits for 10-50 ms (ext4 writeback),
/// with 5 s for 100+ ms; with 100 ms the stalls stay under ~10 ms.
const CHECKPOINT_EVERY: std::time::Duration = std::time::Duration::from_millis(100);

/// WAL length (pages) from which the checkpointer finishes a checkpoint under the writer
/// lock, so that the WAL starts over (128 MB): each start-over stalls commits for one or two
/// fsyncs (~10 ms here), so it should be rare — at 1,000 turns/s one turn writes ~12 pages
/// (48 KB: two rows and their nine index entries, page by page), 12k pages a second.
const WAL_RESTART_PAGES: i64 = 32_768;

/// Page cache of the writer connection, in KiB (`PRAGMA cache_size = -WRITER_CACHE_KIB`):
/// SQLite's default of 2 MB, not the readers' 16 MB. SQLite's b-tree balancing swaps pages
/// through a temporary page number just past the 1 GiB lock byte (`balance_nonroot`, page
/// 262,145 at 4 KiB pages), so after every commit that split a page that way (about one
/// commit in 27 on the fast path) the cache is truncated by walking every cached page
/// (`pcache1TruncateUnsafe`, the "scan the entire hash table" branch). Measured with
/// `perf probe` on that function during `reflector bench --only store`: with a 16 MB writer
/// cache each such walk took 1.06 ms on average (p99 8.8 ms) on the fast path's single
/// writer, 1.85 s in one run; with 2 MB, 0.25 ms (p99 2.0 ms), 0.47 s, for 71 ms more of
/// page reads (the writer touches few pages per turn: one leaf per index). Recall reads on
/// reader connections, which keep 16 MB.
const WRITER_CACHE_KIB: i64 = 2_000;

/// Backstop only: a commit that finds the WAL this long checkpoints by itself (if the
/// background checkpointer cannot keep up). SQLite's default is 1,000 pages.
const WAL_AUTOCHECKPOINT_PAGES: i64 = 50_000;

/// Checkpoints in the background, so that commits on the request path only append to the
/// WAL.
///
/// With SQLite's default, the commit that makes the WAL reach 1,000 pages checkpoints it
/// itself: it copies the pages into the database and fsyncs (`synchronous = NORMAL` syncs at
/// checkpoints) — 5 to 50 ms here, several times a second at 1,000 turns/s, on whichever
/// request made that commit. Instead this thread, every [`CHECKPOINT_EVERY`]:
/// 1. runs a PASSIVE checkpoint on its own connection: it copies and syncs without blocking
///    writers or readers; under constant writes it never quite catches up (the WAL can only
///    start over once every frame in it was copied), so
/// 2. once the WAL holds [`WAL_RESTART_PAGES`], it takes the writer lock for a second
///    PASSIVE checkpoint, which has only the frames appended since step 1 to copy (a few ms)
///    and so completes; the next commit starts the WAL over from its beginning (SQLite syncs
///    the WAL header then, once per cycle).
///
/// The thread ends within [`CHECKPOINT_EVERY`] of the store being dropped.
fn spawn_checkpointer(
    path: &Path,
    synchronous: &str,
    writer: std::sync::Weak<Mutex<Connection>>,
) -> anyhow::Result<()> {
    let conn = Connection::open(path)?;
    configure(&conn, synchronous)?;
    // (busy, WAL pages, pages checkpointed)
    let checkpoint = move || {
        conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, i64>(1)?,
                r.get::<_, i64>(2)?,
            ))
        })
    };
    std::thread::Builder::new()
        .name("sqlite-checkpoint".into())
        .spawn(move || {
            while writer.strong_count() > 0 {
                std::thread::sleep(CHECKPOINT_EVERY);
                let wal_pages = match checkpoint() {
                    Ok((_, log, _)) => log,
                    Err(e) => {
                        tracing::warn!(error = %e, "background WAL checkpoint failed");
                        continue;
                    }
                };
                if wal_pages < WAL_RESTART_PAGES {
                    continue;
                }
                let Some(w) = writer.upgrade() else { break };
                let _no_writes = w.lock().unwrap_or_else(|p| p.into_inner());
                if let Err(e) = checkpoint() {
                    tracing::warn!(error = %e, "background WAL checkpoint failed");
                }
            }
        })?;
    Ok(())
}

fn configure(conn: &Connection, synchronous: &str) -> rusqlite::Result<()> {
    conn.busy_timeout(std::time::Duration::from_secs(10))?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", synchronous)?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    conn.pragma_update(None, "temp_store", "MEMORY")?;
    // 16 MB page cache per connection (SQLite's default is 2 MB): the hot pages of recall
    // (full-text doclists, docsizes, the per-user episode index) stay in memory instead of
    // being re-read from the OS on every query. The writer is set back to 2 MB in
    // `SqliteStore::open` ([`WRITER_CACHE_KIB`]).
    conn.pragma_update(None, "cache_size", -16_000)?;
    // Query planner stability: this SQLite build has STAT4, which otherwise re-prepares
    // (re-parses and re-plans) every cached statement that compares an indexed column with a
    // parameter, on every execution, to plan for the bound value — 10% of reflection's CPU
    // (claiming jobs, neighbouring turns). Without ANALYZE data there is nothing to gain.
    conn.set_db_config(
        rusqlite::config::DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG,
        true,
    )?;
    Ok(())
}

impl SqliteStore {
    /// Open (creating the directory and file when missing) and migrate.
    /// `synchronous` is `normal` or `full`.
    pub fn open(path: &Path, synchronous: &str) -> anyhow::Result<Self> {
        if let Some(dir) = path.parent()
            && !dir.as_os_str().is_empty()
        {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("cannot create data directory {}", dir.display()))?;
        }
        let mut conn = Connection::open(path)
            .with_context(|| format!("cannot open SQLite database {}", path.display()))?;
        configure(&conn, synchronous)?;
        migrate(&mut conn)?;
        // Fail now, not on the first turn, when the file cannot be written (read-only file or
        // directory, full disk): rewriting the schema version is a real write.
        let version: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
        conn.pragma_update(None, "user_version", version)
            .with_context(|| format!("the database {} is not writable", path.display()))?;
        conn.pragma_update(None, "wal_autocheckpoint", WAL_AUTOCHECKPOINT_PAGES)?;
        conn.pragma_update(None, "cache_size", -WRITER_CACHE_KIB)?;
        let writer = Arc::new(Mutex::new(conn));
        spawn_checkpointer(path, synchronous, Arc::downgrade(&writer))?;
        Ok(Self {
            writer,
            readers: Mutex::new(Vec::new()),
            path: path.to_path_buf(),
            synchronous: synchronous.to_string(),
            waiting_total: Mutex::new(None),
            outbox: std::sync::atomic::AtomicBool::new(false),
        })
    }

    /// Run `f` in one write transaction; it commits when `f` returns Ok.
    ///
    /// There is one writer: while `f` runs, every other write (the fast path's group commit
    /// included) waits. A transaction that holds it longer than 5 ms is logged at DEBUG
    /// (`reflector::store::sqlite`, "slow write", with the caller's source line and the ms
    /// spent waiting for and holding the writer), to find what delays stored turns.
    #[track_caller]
    pub fn write<T>(&self, f: impl FnOnce(&Transaction) -> anyhow::Result<T>) -> anyhow::Result<T> {
        let caller = std::panic::Location::caller();
        let asked = std::time::Instant::now();
        let mut conn = self.writer.lock().unwrap_or_else(|p| p.into_inner());
        let got = std::time::Instant::now();
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let out = f(&tx)?;
        tx.commit()?;
        let held = got.elapsed();
        if held > std::time::Duration::from_millis(5) {
            tracing::debug!(
                %caller,
                held_ms = held.as_secs_f64() * 1e3,
                waited_ms = (got - asked).as_secs_f64() * 1e3,
                "slow write"
            );
        }
        Ok(out)
    }

    /// Run `f` on a reader connection (sees every committed write).
    pub fn read<T>(&self, f: impl FnOnce(&Connection) -> anyhow::Result<T>) -> anyhow::Result<T> {
        let conn = {
            let mut pool = self.readers.lock().unwrap_or_else(|p| p.into_inner());
            pool.pop()
        };
        let conn = match conn {
            Some(c) => c,
            None => {
                let c = Connection::open(&self.path)?;
                configure(&c, &self.synchronous)?;
                c
            }
        };
        let out = f(&conn);
        let mut pool = self.readers.lock().unwrap_or_else(|p| p.into_inner());
        if pool.len() < 8 {
            pool.push(conn);
        }
        out
    }

    /// Is the database answering? (`SELECT 1` on a reader.)
    pub fn ping(&self) -> anyhow::Result<()> {
        self.read(|c| {
            c.query_row("SELECT 1", [], |_| Ok(()))?;
            Ok(())
        })
    }

    // ---------------------------------------------------------------- request path

    /// Tier 1 append and job insert in ONE transaction (the fast path's only work).
    /// `state` is `queued` for the fast path (subject to `limits`), `processing` for the
    /// traditional path.
    pub fn insert_turn_and_job(
        &self,
        turn: &NewTurn,
        job: &ReflectionJob,
        state: JobState,
        limits: QueueLimits,
    ) -> anyhow::Result<InsertOutcome> {
        let payload = serde_json::to_string(job)?;
        let metadata = serde_json::to_string(&turn.metadata)?;
        let outbox = self.is_outbox();
        self.write(|tx| {
            let mut adm = Admission::new(limits);
            insert_turn_and_job_in(tx, turn, job, &payload, &metadata, state, &mut adm, outbox)
        })
    }

    /// Group commit: [`SqliteStore::insert_turn_and_job`] for many turns in ONE transaction
    /// (one WAL append and one write of each touched index page for the whole batch).
    /// Results are in input order and the same as one call each: a conflict or replay is
    /// per turn. If anything fails, the batch is rolled back and every turn is retried in a
    /// transaction of its own, so one bad turn cannot fail the others.
    ///
    /// Fast-path turns are admitted against `limits` in input order: the ceilings hold
    /// exactly within a batch (one writer commits all batches, one after the other).
    pub fn insert_turns_and_jobs(
        &self,
        items: &[TurnInsert],
        limits: QueueLimits,
    ) -> Vec<anyhow::Result<InsertOutcome>> {
        let outbox = self.is_outbox();
        let one = |it: &TurnInsert, tx: &Transaction, adm: &mut Admission| {
            insert_turn_and_job_in(
                tx,
                &it.turn,
                &it.job,
                &it.payload,
                &it.metadata,
                it.state,
                adm,
                outbox,
            )
        };
        let mut adm = Admission::new(limits);
        if let Some((at, n)) = *self.waiting_total.lock().unwrap_or_else(|e| e.into_inner())
            && at.elapsed() < WAITING_TOTAL_RECOUNT
        {
            (adm.total, adm.counted_at) = (Some(n), Some(at));
        }
        let batch = self.write(|tx| {
            items
                .iter()
                .map(|it| one(it, tx, &mut adm))
                .collect::<anyhow::Result<Vec<_>>>()
        });
        if let Ok(outcomes) = batch {
            if let (Some(n), Some(at)) = (adm.total, adm.counted_at) {
                *self.waiting_total.lock().unwrap_or_else(|e| e.into_inner()) = Some((at, n));
            }
            return outcomes.into_iter().map(Ok).collect();
        }
        items
            .iter()
            .map(|it| self.write(|tx| one(it, tx, &mut Admission::new(limits))))
            .collect()
    }

    /// Record a job that did not come through our API (another producer), as queued.
    /// Returns false when the job id is already known.
    pub fn insert_job(&self, job: &ReflectionJob) -> anyhow::Result<bool> {
        let payload = serde_json::to_string(job)?;
        self.write(|tx| {
            let n = tx.query_row(
                "SELECT count(*) FROM jobs WHERE job_id = ?1",
                [&job.job_id],
                |r| r.get::<_, i64>(0),
            )?;
            if n > 0 {
                return Ok(false);
            }
            let now = now_ms();
            insert_job(tx, job, &payload, JobState::Queued, now, Some(now))?;
            Ok(true)
        })
    }

    // ---------------------------------------------------------------- RabbitMQ outbox

    /// Turn outbox mode on (RabbitMQ): job rows written from now on are unpublished until
    /// [`SqliteStore::mark_published`]; replayed dead jobs become unpublished again.
    pub fn set_outbox(&self, on: bool) {
        self.outbox.store(on, std::sync::atomic::Ordering::Relaxed);
    }

    /// Whether outbox mode is on.
    pub fn is_outbox(&self) -> bool {
        self.outbox.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Up to `limit` jobs the relay still has to publish, oldest first:
    /// `(job_id, user_id, priority, payload JSON)`. Only waiting jobs (queued or retrying):
    /// a job already being processed or finished needs no message.
    pub fn unpublished_jobs(
        &self,
        limit: usize,
    ) -> anyhow::Result<Vec<(String, String, Priority, String)>> {
        self.read(|c| {
            let mut stmt = c.prepare_cached(
                "SELECT job_id, user_id, priority, payload FROM jobs INDEXED BY jobs_unpublished
                 WHERE published_ms IS NULL AND state IN ('queued', 'retrying')
                 ORDER BY created_ms LIMIT ?1",
            )?;
            let rows = stmt.query_map([limit as i64], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, i64>(2)?,
                    r.get::<_, String>(3)?,
                ))
            })?;
            let mut out = Vec::new();
            for row in rows {
                let (id, user, p, payload) = row?;
                out.push((
                    id,
                    user,
                    Priority::from_i64(p).unwrap_or(Priority::Normal),
                    payload,
                ));
            }
            Ok(out)
        })
    }

    /// The broker confirmed these jobs: set `published_ms` (now).
    pub fn mark_published(&self, job_ids: &[String]) -> anyhow::Result<()> {
        let now = now_ms();
        self.write(|tx| {
            let mut stmt = tx.prepare_cached(
                "UPDATE jobs SET published_ms = ?2 WHERE job_id = ?1 AND published_ms IS NULL",
            )?;
            for id in job_ids {
                stmt.execute(params![id, now])?;
            }
            Ok(())
        })
    }

    /// Jobs written but not yet confirmed by the broker (the relay's backlog).
    pub fn outbox_backlog(&self) -> anyhow::Result<i64> {
        self.read(|c| {
            Ok(c.query_row(
                "SELECT count(*) FROM jobs INDEXED BY jobs_unpublished
                 WHERE published_ms IS NULL AND state IN ('queued', 'retrying')",
                [],
                |r| r.get(0),
            )?)
        })
    }

    /// A job was delivered by the broker and is about to be processed: record the attempt.
    /// A job we have never seen (another producer's) is recorded first, so the API shows it.
    /// `owner` names the worker (shown as the lease owner while processing).
    pub fn begin_delivery(&self, job: &ReflectionJob, owner: &str) -> anyhow::Result<Delivery> {
        let payload = serde_json::to_string(job)?;
        let now = now_ms();
        self.write(|tx| {
            let row: Option<(String, i64, i64)> = tx
                .prepare_cached("SELECT state, attempts, max_retries FROM jobs WHERE job_id = ?1")?
                .query_row([&job.job_id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
                .optional()?;
            let (attempts, max_retries) = match row {
                None => {
                    // A job created before its user was forgotten: drop it.
                    let forgotten: Option<i64> = tx
                        .prepare_cached(
                            "SELECT forgotten_ms FROM forgotten_users WHERE user_id = ?1",
                        )?
                        .query_row([&job.user_id], |r| r.get(0))
                        .optional()?;
                    if forgotten.is_some_and(|at| job.created_at.timestamp_millis() <= at) {
                        return Ok(Delivery::Forgotten);
                    }
                    insert_job(tx, job, &payload, JobState::Queued, now, Some(now))?;
                    (1, job.max_retries as i64)
                }
                Some((state, attempts, max_retries)) => {
                    let state = JobState::parse(&state).unwrap_or(JobState::Queued);
                    if state.is_final() {
                        return Ok(Delivery::Finished(state));
                    }
                    if attempts > max_retries {
                        return Ok(Delivery::Exhausted {
                            attempts: attempts as u32,
                        });
                    }
                    (attempts + 1, max_retries)
                }
            };
            tx.prepare_cached(
                "UPDATE jobs SET state = 'processing', attempts = ?2, lease_owner = ?3,
                        lease_expires_ms = NULL, updated_ms = ?4,
                        published_ms = coalesce(published_ms, ?4)
                 WHERE job_id = ?1",
            )?
            .execute(params![job.job_id, attempts, owner, now])?;
            Ok(Delivery::Process(ClaimedJob {
                job: job.clone(),
                attempts: attempts as u32,
                max_retries: max_retries as u32,
            }))
        })
    }

    // ---------------------------------------------------------------- embedded queue

    /// Lease up to `n` due jobs to `owner` for `lease_ms`, highest priority first. Jobs whose
    /// lease expired (their worker died) are made due again first. Increments `attempts`.
    pub fn claim_jobs(
        &self,
        owner: &str,
        n: usize,
        lease_ms: i64,
    ) -> anyhow::Result<Vec<ClaimedJob>> {
        let now = now_ms();
        // INDEXED BY: left to itself the planner takes `jobs_by_state` for the state test and
        // sorts every waiting job to find the first — 50 ms with 40k jobs queued, holding the
        // writer lock. The partial indexes hold exactly the candidates, in the order wanted.
        self.write(|tx| {
            tx.prepare_cached(
                "UPDATE jobs INDEXED BY jobs_leased SET state = 'retrying', lease_owner = NULL, lease_expires_ms = NULL,
                        available_ms = ?1, updated_ms = ?1,
                        last_error = 'lease expired: the worker stopped or crashed while processing'
                 WHERE state = 'processing' AND lease_expires_ms < ?1",
            )?
            .execute([now])?;
            let mut stmt = tx.prepare_cached(
                "UPDATE jobs SET state = 'processing', lease_owner = ?1, lease_expires_ms = ?2,
                        attempts = attempts + 1, updated_ms = ?3
                 WHERE job_id IN (SELECT job_id FROM jobs INDEXED BY jobs_claimable
                                  WHERE state IN ('queued', 'retrying') AND available_ms <= ?3
                                  ORDER BY priority DESC, available_ms LIMIT ?4)
                 RETURNING payload, attempts, max_retries",
            )?;
            let rows = stmt.query_map(params![owner, now + lease_ms, now, n as i64], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, i64>(1)?,
                    r.get::<_, i64>(2)?,
                ))
            })?;
            let mut out = Vec::new();
            for row in rows {
                let (payload, attempts, max_retries) = row?;
                let job: ReflectionJob = serde_json::from_str(&payload)
                    .context("a stored job payload does not decode")?;
                out.push(ClaimedJob {
                    job,
                    attempts: attempts as u32,
                    max_retries: max_retries as u32,
                });
            }
            // Highest priority first, as the subquery chose them (RETURNING order is unspecified).
            out.sort_by_key(|c| std::cmp::Reverse(c.job.priority));
            Ok(out)
        })
    }

    /// Tiers of a job that already committed (skipped on a retry or re-delivery).
    pub fn completed_tiers(&self, job_id: &str) -> anyhow::Result<Vec<Tier>> {
        self.read(|c| {
            let mut stmt = c.prepare_cached(
                "SELECT tier FROM job_tiers WHERE job_id = ?1 AND status = 'completed'",
            )?;
            let rows = stmt.query_map([job_id], |r| r.get::<_, String>(0))?;
            let mut out = Vec::new();
            for r in rows {
                if let Some(t) = Tier::parse(&r?) {
                    out.push(t);
                }
            }
            Ok(out)
        })
    }

    /// Record that a tier failed for a job (its data was not written).
    pub fn record_tier_failure(
        &self,
        job_id: &str,
        tier: Tier,
        error: &str,
        latency_ms: f64,
    ) -> anyhow::Result<()> {
        self.write(|tx| {
            tx.prepare_cached(
                "INSERT INTO job_tiers (job_id, tier, status, error, attempts, latency_ms, updated_ms)
                 SELECT ?1, ?2, 'failed', ?3, 1, ?4, ?5 WHERE EXISTS (SELECT 1 FROM jobs WHERE job_id = ?1)
                 ON CONFLICT (job_id, tier) DO UPDATE SET status = 'failed', error = ?3,
                     attempts = attempts + 1, latency_ms = ?4, updated_ms = ?5
                 WHERE status <> 'completed'",
            )?
            .execute(params![job_id, tier.as_str(), error, latency_ms, now_ms()])?;
            Ok(())
        })
    }

    /// Every tier committed: the job is completed and its turn marked reflected.
    pub fn complete_job(&self, job_id: &str) -> anyhow::Result<()> {
        let now = now_ms();
        self.write(|tx| {
            tx.prepare_cached(
                "UPDATE jobs SET state = 'completed', completed_ms = ?2, updated_ms = ?2,
                        lease_owner = NULL, lease_expires_ms = NULL, last_error = NULL
                 WHERE job_id = ?1 AND state <> 'completed'",
            )?
            .execute(params![job_id, now])?;
            tx.prepare_cached("UPDATE turns SET reflected = 1 WHERE job_id = ?1")?
                .execute([job_id])?;
            Ok(())
        })
    }

    /// A tier failed and retries remain: due again at `available_ms`.
    pub fn retry_job(&self, job_id: &str, available_ms: i64, error: &str) -> anyhow::Result<()> {
        self.write(|tx| {
            tx.prepare_cached(
                "UPDATE jobs SET state = 'retrying', available_ms = ?2, updated_ms = ?3, last_error = ?4,
                        lease_owner = NULL, lease_expires_ms = NULL
                 WHERE job_id = ?1 AND state = 'processing'",
            )?
            .execute(params![job_id, available_ms, now_ms(), error])?;
            Ok(())
        })
    }

    /// Retries exhausted (or the job cannot be processed): dead, with the reason.
    pub fn dead_job(&self, job_id: &str, reason: &str) -> anyhow::Result<()> {
        self.write(|tx| {
            tx.prepare_cached(
                "UPDATE jobs SET state = 'dead', dead_reason = ?2, last_error = ?2, updated_ms = ?3,
                        lease_owner = NULL, lease_expires_ms = NULL
                 WHERE job_id = ?1 AND state <> 'completed'",
            )?
            .execute(params![job_id, reason, now_ms()])?;
            Ok(())
        })
    }

    /// Put dead jobs back in the queue with fresh attempts (failed tiers only will run, the
    /// committed ones are skipped). `job_ids` empty = every dead job. Returns how many, and
    /// the given ids that are unknown or not dead.
    pub fn replay_dead(&self, job_ids: &[String]) -> anyhow::Result<(usize, Vec<String>)> {
        let now = now_ms();
        // RabbitMQ mode: unpublished again, so the relay puts the job back on the broker.
        let outbox = self.is_outbox();
        self.write(|tx| {
            let sql = "UPDATE jobs SET state = 'queued', attempts = 0, available_ms = ?1, updated_ms = ?1,
                              dead_reason = NULL,
                              published_ms = CASE WHEN ?2 THEN NULL ELSE published_ms END
                       WHERE state = 'dead'";
            if job_ids.is_empty() {
                return Ok((tx.execute(sql, params![now, outbox])?, Vec::new()));
            }
            let mut n = 0;
            let mut not_dead = Vec::new();
            let mut stmt = tx.prepare(&format!("{sql} AND job_id = ?3"))?;
            for id in job_ids {
                match stmt.execute(params![now, outbox, id])? {
                    0 => not_dead.push(id.clone()),
                    k => n += k,
                }
            }
            Ok((n, not_dead))
        })
    }

    /// Every dead job's id.
    pub fn dead_job_ids(&self) -> anyhow::Result<Vec<String>> {
        self.read(|c| {
            let mut stmt = c.prepare("SELECT job_id FROM jobs WHERE state = 'dead'")?;
            let rows = stmt.query_map([], |r| r.get::<_, String>(0))?;
            Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
        })
    }

    /// One job with its per-tier records.
    pub fn get_job(&self, job_id: &str) -> anyhow::Result<Option<JobRecord>> {
        self.read(|c| {
            let row = c
                .query_row(
                    "SELECT job_id, user_id, state, priority, attempts, max_retries, last_error, dead_reason,
                            created_ms, updated_ms, completed_ms, available_ms, payload
                     FROM jobs WHERE job_id = ?1",
                    [job_id],
                    job_from_row,
                )
                .optional()?;
            let Some(mut job) = row else { return Ok(None) };
            job.tiers = tiers_of(c, job_id)?;
            Ok(Some(job))
        })
    }

    /// Dead jobs, newest first.
    pub fn list_dead(&self, limit: usize, offset: usize) -> anyhow::Result<Vec<JobRecord>> {
        self.read(|c| {
            let mut stmt = c.prepare(
                "SELECT job_id, user_id, state, priority, attempts, max_retries, last_error, dead_reason,
                        created_ms, updated_ms, completed_ms, available_ms, payload
                 FROM jobs WHERE state = 'dead' ORDER BY updated_ms DESC LIMIT ?1 OFFSET ?2",
            )?;
            let rows = stmt.query_map(params![limit as i64, offset as i64], job_from_row)?;
            let mut out = Vec::new();
            for r in rows {
                let mut j = r?;
                j.tiers = tiers_of(c, &j.job_id)?;
                out.push(j);
            }
            Ok(out)
        })
    }

    /// Jobs by state (every state present as a key, zero when none). `user_id` narrows.
    pub fn job_counts(&self, user_id: Option<&str>) -> anyhow::Result<HashMap<String, i64>> {
        self.read(|c| {
            let mut out: HashMap<String, i64> = JobState::ALL
                .iter()
                .map(|s| (s.as_str().to_string(), 0))
                .collect();
            let mut stmt = match user_id {
                Some(_) => c.prepare_cached(
                    "SELECT state, count(*) FROM jobs WHERE user_id = ?1 GROUP BY state",
                )?,
                None => c.prepare_cached(
                    "SELECT state, count(*) FROM jobs WHERE ?1 IS NULL GROUP BY state",
                )?,
            };
            let rows = stmt.query_map([user_id], |r| {
                Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?))
            })?;
            for r in rows {
                let (s, n) = r?;
                out.insert(s, n);
            }
            Ok(out)
        })
    }

    /// Mean latency (ms) and count of committed tier runs, by tier.
    pub fn tier_latencies(&self) -> anyhow::Result<HashMap<String, Value>> {
        self.read(|c| {
            let mut stmt = c.prepare(
                "SELECT tier, status, count(*), avg(latency_ms) FROM job_tiers GROUP BY tier, status",
            )?;
            let rows = stmt.query_map([], |r| {
                Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?, r.get::<_, i64>(2)?, r.get::<_, Option<f64>>(3)?))
            })?;
            let mut out: HashMap<String, Value> = HashMap::new();
            for r in rows {
                let (tier, status, n, avg) = r?;
                let e = out.entry(tier).or_insert_with(|| json!({}));
                e[status] = json!({"count": n, "mean_latency_ms": avg});
            }
            Ok(out)
        })
    }

    /// Completed jobs per second over the last `window_ms`.
    pub fn completion_rate(&self, window_ms: i64) -> anyhow::Result<f64> {
        let since = now_ms() - window_ms;
        self.read(|c| {
            let n: i64 = c.query_row(
                "SELECT count(*) FROM jobs WHERE state = 'completed' AND completed_ms >= ?1",
                [since],
                |r| r.get(0),
            )?;
            Ok(n as f64 * 1000.0 / window_ms as f64)
        })
    }

    pub fn queue_status(&self) -> anyhow::Result<QueueStatus> {
        let now = now_ms();
        self.read(|c| {
            let mut depth: HashMap<String, i64> = [Priority::Low, Priority::Normal, Priority::High, Priority::Urgent]
                .iter()
                .map(|p| (p.name().to_string(), 0))
                .collect();
            let mut stmt = c.prepare(
                "SELECT priority, count(*) FROM jobs WHERE state IN ('queued', 'retrying') GROUP BY priority",
            )?;
            let mut waiting = 0;
            for r in stmt.query_map([], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?)))? {
                let (p, n) = r?;
                waiting += n;
                if let Some(p) = Priority::from_i64(p) {
                    depth.insert(p.name().to_string(), n);
                }
            }
            let oldest: Option<i64> = c.query_row(
                "SELECT min(available_ms) FROM jobs WHERE state IN ('queued', 'retrying') AND available_ms <= ?1",
                [now],
                |r| r.get(0),
            )?;
            let leased: i64 = c.query_row("SELECT count(*) FROM jobs WHERE state = 'processing'", [], |r| r.get(0))?;
            let dead: i64 = c.query_row("SELECT count(*) FROM jobs WHERE state = 'dead'", [], |r| r.get(0))?;
            let deepest_user_waiting: i64 = c.query_row(
                "SELECT coalesce(max(n), 0) FROM (SELECT count(*) AS n FROM jobs WHERE state IN ('queued', 'retrying') GROUP BY user_id)",
                [],
                |r| r.get(0),
            )?;
            Ok(QueueStatus {
                depth_by_priority: depth,
                waiting,
                oldest_waiting_age_s: oldest.map(|o| (now - o).max(0) as f64 / 1000.0).unwrap_or(0.0),
                leased,
                dead,
                deepest_user_waiting,
            })
        })
    }

    // ---------------------------------------------------------------- tier commits

    /// Run `f` (the tier's writes) and the tier's `completed` record in one transaction,
    /// unless the tier already committed for this job; then return the stored result.
    #[track_caller]
    fn commit_tier(
        &self,
        job_id: &str,
        tier: Tier,
        latency_ms: f64,
        f: impl FnOnce(&Transaction) -> anyhow::Result<Value>,
    ) -> anyhow::Result<Value> {
        self.write(|tx| {
            let done: Option<Option<String>> = tx
                .query_row(
                    "SELECT result FROM job_tiers WHERE job_id = ?1 AND tier = ?2 AND status = 'completed'",
                    params![job_id, tier.as_str()],
                    |r| r.get(0),
                )
                .optional()?;
            if let Some(result) = done {
                let mut v: Value = result.and_then(|s| serde_json::from_str(&s).ok()).unwrap_or(Value::Null);
                if let Value::Object(m) = &mut v {
                    m.insert("already_committed".into(), Value::Bool(true));
                }
                return Ok(v);
            }
            // The job row is gone when its user was forgotten while the job was in flight:
            // write nothing, or the user's memory would come back after the DELETE. (Both run
            // under the one writer lock, so the check and the writes cannot interleave.)
            let exists: bool = tx
                .prepare_cached("SELECT count(*) FROM jobs WHERE job_id = ?1")?
                .query_row([job_id], |r| r.get::<_, i64>(0))?
                > 0;
            if !exists {
                return Ok(json!({"dropped": "the job's user was forgotten; nothing written"}));
            }
            let result = f(tx)?;
            tx.prepare_cached(
                "INSERT INTO job_tiers (job_id, tier, status, result, attempts, latency_ms, updated_ms)
                 VALUES (?1, ?2, 'completed', ?3, 1, ?4, ?5)
                 ON CONFLICT (job_id, tier) DO UPDATE SET status = 'completed', result = ?3, error = NULL,
                     attempts = attempts + 1, latency_ms = ?4, updated_ms = ?5",
            )?
            .execute(params![job_id, tier.as_str(), result.to_string(), latency_ms, now_ms()])?;
            Ok(result)
        })
    }

    /// Tier 2 commit: the episode (or the decision to keep none) for a job.
    #[allow(clippy::too_many_arguments)]
    ///
    /// `context`: the text of the turn before it in its session, indexed for full-text search
    /// (weighted below the episode's own text) but never shown.
    pub fn commit_episode(
        &self,
        job: &ReflectionJob,
        speaker: &str,
        draft: Option<&EpisodeDraft>,
        embedding: Option<&[f32]>,
        context: &str,
        latency_ms: f64,
    ) -> anyhow::Result<Value> {
        self.commit_tier(&job.job_id, Tier::Episodic, latency_ms, |tx| {
            use super::edits::{EditTier, episode_signature, has_tombstones, tombstoned};
            if has_tombstones(tx, &job.user_id, EditTier::Episodic)?
                && tombstoned(tx, &job.user_id, EditTier::Episodic, &episode_signature(&job.job_id), &job.job_id, &job.evidence())?
            {
                return Ok(json!({"episode_id": null, "skipped": "edited or deleted by the user; reflection keeps the user's version"}));
            }
            // Re-reflection replaces what an earlier run of this job wrote.
            tx.prepare_cached("DELETE FROM episodes WHERE job_id = ?1")?.execute([&job.job_id])?;
            let (Some(d), Some(e)) = (draft, embedding) else {
                return Ok(json!({"episode_id": null, "skipped": "small talk: nothing worth remembering"}));
            };
            tx.prepare_cached(
                "INSERT INTO episodes (user_id, job_id, speaker, text, summary, importance, tags, occurred_ms,
                                       observed_ms, embedding, evidence, created_ms, context)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
            )?
            .execute(params![
                job.user_id,
                job.job_id,
                speaker,
                d.text,
                d.summary,
                d.importance,
                serde_json::to_string(&d.tags)?,
                d.occurred_at.timestamp_millis(),
                job.timestamp.timestamp_millis(),
                vec_to_blob(e),
                serde_json::to_string(&job.evidence())?,
                now_ms(),
                context
            ])?;
            Ok(json!({"episode_id": tx.last_insert_rowid(), "importance": d.importance, "tags": d.tags}))
        })
    }

    /// Tier 3 commit: resolve entities to one node per real thing for this user, then add the
    /// relations and re-derive validity of every exclusive slot they touch.
    pub fn commit_graph(
        &self,
        job: &ReflectionJob,
        draft: &GraphDraft,
        latency_ms: f64,
    ) -> anyhow::Result<Value> {
        let user = job.user_id.as_str();
        let evidence = job.evidence();
        self.commit_tier(&job.job_id, Tier::Semantic, latency_ms, |tx| {
            let now = now_ms();
            let mut kinds: HashMap<String, &str> = HashMap::new();
            let mut entity_ids = BTreeSet::new();
            for e in &draft.entities {
                kinds.insert(norm_name(&e.name), e.kind.as_str());
                let id = resolve_entity(tx, user, &e.name, &e.kind, now)?;
                entity_ids.insert(id);
                for a in &e.aliases {
                    let an = norm_name(a);
                    if !an.is_empty() {
                        tx.prepare_cached(
                            "INSERT OR IGNORE INTO entity_aliases (user_id, alias_norm, entity_id) VALUES (?1, ?2, ?3)",
                        )?
                        .execute(params![user, an, id])?;
                    }
                }
            }
            let mut relation_ids = Vec::new();
            let edited = super::edits::has_tombstones(tx, user, super::edits::EditTier::Semantic)?;
            for r in &draft.relations {
                let kind_of = |n: &str| kinds.get(&norm_name(n)).copied().unwrap_or("other");
                let s = resolve_entity(tx, user, &r.subject, kind_of(&r.subject), now)?;
                let o = resolve_entity(tx, user, &r.object, kind_of(&r.object), now)?;
                if edited {
                    let norm = |id: i64| -> anyhow::Result<String> {
                        Ok(tx.prepare_cached("SELECT norm_name FROM entities WHERE id = ?1")?.query_row([id], |x| x.get(0))?)
                    };
                    let sig = super::edits::fact_signature(&norm(s)?, &r.predicate, &norm(o)?);
                    if super::edits::tombstoned(tx, user, super::edits::EditTier::Semantic, &sig, &job.job_id, &evidence)? {
                        continue;
                    }
                }
                entity_ids.insert(s);
                entity_ids.insert(o);
                let valid = r.valid_at.timestamp_millis();
                if r.exclusive {
                    tx.prepare_cached(
                        "INSERT OR IGNORE INTO relations (user_id, subject_id, predicate, object_id, fact, exclusive,
                                                          valid_ms, evidence, job_id, created_ms)
                         VALUES (?1, ?2, ?3, ?4, ?5, 1, ?6, ?7, ?8, ?9)",
                    )?
                    .execute(params![user, s, r.predicate, o, r.fact, valid, serde_json::to_string(&evidence)?, job.job_id, now])?;
                    rederive_slot(tx, user, s, &r.predicate)?;
                } else {
                    // Accumulating facts: one row per (subject, predicate, object), valid from the
                    // earliest turn that stated it; evidence is the union. Both are commutative, so
                    // the processing order does not matter.
                    let existing: Option<(i64, i64, String)> = tx
                        .query_row(
                            "SELECT id, valid_ms, evidence FROM relations
                             WHERE user_id = ?1 AND subject_id = ?2 AND predicate = ?3 AND object_id = ?4",
                            params![user, s, r.predicate, o],
                            |x| Ok((x.get(0)?, x.get(1)?, x.get(2)?)),
                        )
                        .optional()?;
                    match existing {
                        Some((id, v, ev)) => {
                            let ev = union_json(&ev, &evidence);
                            if valid < v {
                                tx.execute(
                                    "UPDATE relations SET valid_ms = ?2, fact = ?3, evidence = ?4 WHERE id = ?1",
                                    params![id, valid, r.fact, ev],
                                )?;
                            } else {
                                tx.execute("UPDATE relations SET evidence = ?2 WHERE id = ?1", params![id, ev])?;
                            }
                        }
                        None => {
                            tx.execute(
                                "INSERT INTO relations (user_id, subject_id, predicate, object_id, fact, exclusive,
                                                        valid_ms, evidence, job_id, created_ms)
                                 VALUES (?1, ?2, ?3, ?4, ?5, 0, ?6, ?7, ?8, ?9)",
                                params![user, s, r.predicate, o, r.fact, valid, serde_json::to_string(&evidence)?, job.job_id, now],
                            )?;
                        }
                    }
                }
                relation_ids.push(format!("{} {} {}", r.subject, r.predicate, r.object));
            }
            Ok(json!({"entities": entity_ids.len(), "relations": relation_ids}))
        })
    }

    /// Tier 4 commit: de-duplicate each rule by (topic, statement), then make the most
    /// recently stated rule of each touched topic the active one.
    pub fn commit_rules(
        &self,
        job: &ReflectionJob,
        drafts: &[(RuleDraft, Vec<f32>)],
        latency_ms: f64,
    ) -> anyhow::Result<Value> {
        let user = job.user_id.as_str();
        let evidence = job.evidence();
        let ts = job.timestamp.timestamp_millis();
        self.commit_tier(&job.job_id, Tier::Procedural, latency_ms, |tx| {
            let mut topics = BTreeSet::new();
            let edited = super::edits::has_tombstones(tx, user, super::edits::EditTier::Procedural)?;
            for (d, emb) in drafts {
                if edited
                    && super::edits::tombstoned(
                        tx,
                        user,
                        super::edits::EditTier::Procedural,
                        &super::edits::rule_signature(&d.topic, &d.statement),
                        &job.job_id,
                        &evidence,
                    )?
                {
                    continue;
                }
                let existing: Option<(i64, i64, i64, String)> = tx
                    .query_row(
                        "SELECT id, first_ms, last_ms, evidence FROM rules WHERE user_id = ?1 AND topic = ?2 AND statement = ?3",
                        params![user, d.topic, d.statement],
                        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
                    )
                    .optional()?;
                match existing {
                    Some((id, first, last, ev)) => {
                        tx.execute(
                            "UPDATE rules SET first_ms = ?2, last_ms = ?3, evidence = ?4, confidence = max(confidence, ?5) WHERE id = ?1",
                            params![id, first.min(ts), last.max(ts), union_json(&ev, &evidence), d.confidence],
                        )?;
                    }
                    None => {
                        tx.execute(
                            "INSERT INTO rules (user_id, kind, topic, statement, confidence, first_ms, last_ms, embedding, evidence, created_ms)
                             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6, ?7, ?8, ?9)",
                            params![user, d.kind, d.topic, d.statement, d.confidence, ts, vec_to_blob(emb), serde_json::to_string(&evidence)?, now_ms()],
                        )?;
                    }
                }
                topics.insert(d.topic.clone());
            }
            for t in &topics {
                rederive_topic(tx, user, t)?;
            }
            Ok(json!({"rules": drafts.iter().map(|(d, _)| &d.statement).collect::<Vec<_>>()}))
        })
    }

    // ---------------------------------------------------------------- reads for recall

    /// The user's most recent turns, newest first.
    pub fn recent_turns(&self, user_id: &str, limit: usize) -> anyhow::Result<Vec<TurnRow>> {
        self.list_turns(user_id, limit, 0)
    }

    /// Tier 1 browse, newest first.
    pub fn list_turns(
        &self,
        user_id: &str,
        limit: usize,
        offset: usize,
    ) -> anyhow::Result<Vec<TurnRow>> {
        self.read(|c| {
            let mut stmt = c.prepare_cached(
                "SELECT id, user_id, session_id, user_message, assistant_response, ts_ms, metadata, job_id, reflected
                 FROM turns WHERE user_id = ?1 ORDER BY ts_ms DESC, created_ms DESC LIMIT ?2 OFFSET ?3",
            )?;
            let rows = stmt.query_map(params![user_id, limit as i64, offset as i64], |r| {
                let ts: i64 = r.get(5)?;
                let meta: String = r.get(6)?;
                Ok(TurnRow {
                    interaction_id: r.get(0)?,
                    user_id: r.get(1)?,
                    session_id: r.get(2)?,
                    user_message: r.get(3)?,
                    assistant_response: r.get(4)?,
                    timestamp: ms_to_rfc3339(ts),
                    ts_ms: ts,
                    metadata: serde_json::from_str(&meta).unwrap_or(Value::Null),
                    reflection_job_id: r.get(7)?,
                    reflected: r.get::<_, i64>(8)? != 0,
                })
            })?;
            Ok(rows.collect::<Result<_, _>>()?)
        })
    }

    /// BM25 over the user's episodes: (episode id, bm25 score; lower is better in SQLite).
    /// `fts_query` must already be an FTS5 expression (see `recall::fts_query`).
    pub fn search_episodes_fts(
        &self,
        user_id: &str,
        fts_query: &str,
        limit: usize,
    ) -> anyhow::Result<Vec<(i64, f64)>> {
        if fts_query.is_empty() {
            return Ok(Vec::new());
        }
        self.read(|c| {
            // The user filter goes through the small covering index (user_id, id), not the
            // episode rows (~2 KB each with their vector): 3x faster at 100k episodes, 7x for
            // a small user sharing the database with a big one.
            let mut stmt = c.prepare_cached(
                "SELECT e.id, bm25(episodes_fts, 1.0, 0.5) AS score FROM episodes_fts
                 JOIN episodes e INDEXED BY episodes_by_user
                   ON e.user_id = ?2 AND e.id = episodes_fts.rowid
                 WHERE episodes_fts MATCH ?1
                 ORDER BY score LIMIT ?3",
            )?;
            let rows = stmt.query_map(params![fts_query, user_id, limit as i64], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })?;
            Ok(rows.collect::<Result<_, _>>()?)
        })
    }

    /// Rows of the whole full-text index (every user) that match `fts_query`: the document
    /// frequency of a term when given one quoted term. Reads the term's postings.
    pub fn fts_doc_count(&self, fts_query: &str) -> anyhow::Result<i64> {
        self.read(|c| {
            Ok(
                c.prepare_cached("SELECT count(*) FROM episodes_fts WHERE episodes_fts MATCH ?1")?
                    .query_row([fts_query], |r| r.get(0))?,
            )
        })
    }

    /// The turns around a job's turn in its session: up to `before` earlier and `after` later
    /// ones, in time order, each as its episode text when it has one (dates resolved), else
    /// as `[date] speaker: message`. Empty for jobs without a stored turn.
    pub fn turn_window(
        &self,
        user_id: &str,
        job_id: &str,
        before: usize,
        after: usize,
    ) -> anyhow::Result<(Vec<WindowTurn>, Vec<WindowTurn>)> {
        self.read(|c| {
            let anchor: Option<(String, i64)> = c
                .prepare_cached("SELECT session_id, ts_ms FROM turns WHERE user_id = ?1 AND job_id = ?2")?
                .query_row(params![user_id, job_id], |r| Ok((r.get(0)?, r.get(1)?)))
                .optional()?;
            let Some((session, ts)) = anchor else { return Ok((Vec::new(), Vec::new())) };
            let fetch = |sql: &str, n: usize| -> anyhow::Result<Vec<WindowTurn>> {
                if n == 0 {
                    return Ok(Vec::new());
                }
                let mut stmt = c.prepare_cached(sql)?;
                let rows = stmt.query_map(params![user_id, session, ts, n as i64], |r| {
                    let meta: String = r.get(2)?;
                    let meta: Value = serde_json::from_str(&meta).unwrap_or(Value::Null);
                    let ts: i64 = r.get(3)?;
                    let id: String = r.get(0)?;
                    let episode: Option<String> = r.get(5)?;
                    let evidence = meta.get("dia_id").and_then(|v| v.as_str()).unwrap_or(&id).to_string();
                    let text = episode.unwrap_or_else(|| {
                        let who = meta.get("speaker").and_then(|v| v.as_str()).unwrap_or(user_id);
                        let day = chrono::DateTime::from_timestamp_millis(ts)
                            .map(|t| crate::extract::time::format_day(t.date_naive()))
                            .unwrap_or_default();
                        format!("[{day}] {who}: {}", r.get::<_, String>(1).unwrap_or_default())
                    });
                    Ok(WindowTurn { job_id: r.get(4)?, text, evidence })
                })?;
                Ok(rows.collect::<Result<_, _>>()?)
            };
            let mut prev = fetch(
                "SELECT t.id, t.user_message, t.metadata, t.ts_ms, t.job_id, e.text FROM turns t
                 LEFT JOIN episodes e ON e.job_id = t.job_id
                 WHERE t.user_id = ?1 AND t.session_id = ?2 AND t.ts_ms < ?3 ORDER BY t.ts_ms DESC LIMIT ?4",
                before,
            )?;
            prev.reverse();
            let next = fetch(
                "SELECT t.id, t.user_message, t.metadata, t.ts_ms, t.job_id, e.text FROM turns t
                 LEFT JOIN episodes e ON e.job_id = t.job_id
                 WHERE t.user_id = ?1 AND t.session_id = ?2 AND t.ts_ms > ?3 ORDER BY t.ts_ms ASC LIMIT ?4",
                after,
            )?;
            Ok((prev, next))
        })
    }

    /// (count, highest id ever, deletions) of the user's episodes: a cheap version stamp for
    /// the vector cache, which reloads the user's vectors whenever the deletions moved (ids
    /// can be reused after a delete) and otherwise loads the ids past the highest it holds.
    pub fn episode_version(&self, user_id: &str) -> anyhow::Result<(i64, i64, i64)> {
        self.read(|c| {
            // One row kept by triggers (migration 012), not count(*) over the user's index
            // entries (3-7 ms at 100k episodes).
            Ok(c.prepare_cached(
                "SELECT episodes, max_id, deletes FROM episode_stamps WHERE user_id = ?1",
            )?
            .query_row([user_id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .optional()?
            .unwrap_or((0, 0, 0)))
        })
    }

    /// Calls `f(id, blob)` for each of the user's episode vectors with id > `after_id`, in
    /// ascending id; `blob` is the stored little-endian f32 vector (4 bytes per dimension).
    /// Streams: no copy of all the vectors is ever held (100k episodes are 154 MB as f32).
    pub fn each_episode_vector(
        &self,
        user_id: &str,
        after_id: i64,
        mut f: impl FnMut(i64, &[u8]),
    ) -> anyhow::Result<()> {
        self.read(|c| {
            let mut stmt = c.prepare_cached(
                "SELECT id, embedding FROM episodes WHERE user_id = ?1 AND id > ?2 ORDER BY id",
            )?;
            let mut rows = stmt.query(params![user_id, after_id])?;
            while let Some(r) = rows.next()? {
                let id: i64 = r.get(0)?;
                f(id, r.get_ref(1)?.as_blob()?);
            }
            Ok(())
        })
    }

    /// The f32 vectors of the given episodes of this user (ids of another user, or unknown,
    /// are skipped), in no particular order.
    pub fn episode_vectors_by_ids(
        &self,
        user_id: &str,
        ids: &[i64],
    ) -> anyhow::Result<Vec<(i64, Vec<f32>)>> {
        self.read(|c| {
            let mut stmt =
                c.prepare_cached("SELECT embedding FROM episodes WHERE user_id = ?1 AND id = ?2")?;
            let mut out = Vec::with_capacity(ids.len());
            // In id order: neighbouring lookups share b-tree pages.
            let mut sorted = ids.to_vec();
            sorted.sort_unstable();
            for id in sorted {
                if let Some(v) = stmt
                    .query_row(params![user_id, id], |r| {
                        Ok(blob_to_vec(r.get_ref(0)?.as_blob()?))
                    })
                    .optional()?
                {
                    out.push((id, v));
                }
            }
            Ok(out)
        })
    }

    /// **For benchmarks only** (`reflector bench`): insert synthetic Tier 2 episodes for
    /// `user_id` in ONE transaction, bypassing reflection — no turn, no job, no tier record;
    /// each `job_id` is a fresh `synthetic-…` id, importance 0.5, no tags, no evidence. Each
    /// item is (text, occurred_ms, vector); the full-text index follows through its trigger.
    /// Returns the number of episodes inserted. Never called by the service itself.
    pub fn insert_synthetic_episodes(
        &self,
        user_id: &str,
        episodes: &[(String, i64, Vec<f32>)],
    ) -> anyhow::Result<usize> {
        self.write(|tx| {
            let mut stmt = tx.prepare_cached(
                "INSERT INTO episodes (user_id, job_id, speaker, text, summary, importance, tags, occurred_ms,
                                       observed_ms, embedding, evidence, created_ms)
                 VALUES (?1, ?2, ?1, ?3, ?3, 0.5, '[]', ?4, ?4, ?5, '[]', ?6)",
            )?;
            let now = now_ms();
            for (text, occurred_ms, vector) in episodes {
                let job_id = format!("synthetic-{}", uuid::Uuid::now_v7());
                stmt.execute(params![user_id, job_id, text, occurred_ms, vec_to_blob(vector), now])?;
            }
            Ok(episodes.len())
        })
    }

    /// Episodes by id, for this user only (ids of another user are ignored).
    pub fn episodes_by_ids(&self, user_id: &str, ids: &[i64]) -> anyhow::Result<Vec<EpisodeRow>> {
        self.read(|c| {
            let mut stmt =
                c.prepare_cached(&format!("{EPISODE_SELECT} WHERE user_id = ?1 AND id = ?2"))?;
            let mut out = Vec::with_capacity(ids.len());
            for id in ids {
                if let Some(e) = stmt
                    .query_row(params![user_id, id], episode_from_row)
                    .optional()?
                {
                    out.push(e);
                }
            }
            Ok(out)
        })
    }

    /// Tier 2 browse, newest first.
    pub fn list_episodes(
        &self,
        user_id: &str,
        limit: usize,
        offset: usize,
    ) -> anyhow::Result<Vec<EpisodeRow>> {
        self.read(|c| {
            let mut stmt = c.prepare_cached(&format!(
                "{EPISODE_SELECT} WHERE user_id = ?1 ORDER BY occurred_ms DESC, id DESC LIMIT ?2 OFFSET ?3"
            ))?;
            let rows = stmt.query_map(params![user_id, limit as i64, offset as i64], episode_from_row)?;
            Ok(rows.collect::<Result<_, _>>()?)
        })
    }

    /// Every (normalised name or alias, entity id) of the user, for spotting entities in a query.
    pub fn entity_names(&self, user_id: &str) -> anyhow::Result<Vec<(String, i64)>> {
        self.read(|c| {
            let mut stmt = c.prepare_cached(
                "SELECT norm_name, id FROM entities WHERE user_id = ?1
                 UNION SELECT alias_norm, entity_id FROM entity_aliases WHERE user_id = ?1",
            )?;
            let rows = stmt.query_map([user_id], |r| Ok((r.get(0)?, r.get(1)?)))?;
            Ok(rows.collect::<Result<_, _>>()?)
        })
    }

    /// Facts whose subject or object is one of `entity_ids`; only currently valid ones unless
    /// `include_invalid`. Newest first.
    pub fn facts_about(
        &self,
        user_id: &str,
        entity_ids: &[i64],
        include_invalid: bool,
        limit: usize,
    ) -> anyhow::Result<Vec<FactRow>> {
        self.read(|c| {
            let mut out = Vec::new();
            let mut seen = BTreeSet::new();
            let mut stmt = c.prepare_cached(&format!(
                "{FACT_SELECT} WHERE r.user_id = ?1 AND (r.subject_id = ?2 OR r.object_id = ?2)
                 AND r.merged_into IS NULL AND (?3 OR r.invalid_ms IS NULL) ORDER BY r.valid_ms DESC LIMIT ?4"
            ))?;
            for id in entity_ids {
                for f in stmt.query_map(
                    params![user_id, id, include_invalid, limit as i64],
                    fact_from_row,
                )? {
                    let f = f?;
                    if seen.insert(f.id) {
                        out.push(f);
                    }
                }
            }
            out.sort_by_key(|f| std::cmp::Reverse(f.valid_ms));
            out.truncate(limit);
            Ok(out)
        })
    }

    /// Tier 3 browse: facts newest first (valid and invalidated).
    pub fn list_facts(
        &self,
        user_id: &str,
        limit: usize,
        offset: usize,
    ) -> anyhow::Result<Vec<FactRow>> {
        self.read(|c| {
            let mut stmt = c.prepare_cached(&format!(
                "{FACT_SELECT} WHERE r.user_id = ?1 AND r.merged_into IS NULL
                 ORDER BY r.valid_ms DESC, r.id DESC LIMIT ?2 OFFSET ?3"
            ))?;
            let rows =
                stmt.query_map(params![user_id, limit as i64, offset as i64], fact_from_row)?;
            Ok(rows.collect::<Result<_, _>>()?)
        })
    }

    /// Tier 3 browse: entities with their aliases.
    pub fn list_entities(
        &self,
        user_id: &str,
        limit: usize,
        offset: usize,
    ) -> anyhow::Result<Vec<EntityRow>> {
        self.read(|c| {
            let mut stmt = c.prepare_cached(
                "SELECT e.id, e.name, e.kind,
                        (SELECT json_group_array(alias_norm) FROM entity_aliases a
                         WHERE a.user_id = e.user_id AND a.entity_id = e.id AND a.alias_norm <> e.norm_name)
                 FROM entities e WHERE e.user_id = ?1 ORDER BY e.id LIMIT ?2 OFFSET ?3",
            )?;
            let rows = stmt.query_map(params![user_id, limit as i64, offset as i64], |r| {
                let aliases: String = r.get(3)?;
                Ok(EntityRow {
                    id: r.get(0)?,
                    name: r.get(1)?,
                    kind: r.get(2)?,
                    aliases: serde_json::from_str(&aliases).unwrap_or_default(),
                })
            })?;
            Ok(rows.collect::<Result<_, _>>()?)
        })
    }

    /// Tier 4: rules, active ones only unless `include_superseded`.
    pub fn list_rules(
        &self,
        user_id: &str,
        include_superseded: bool,
        limit: usize,
        offset: usize,
    ) -> anyhow::Result<Vec<RuleRow>> {
        self.read(|c| {
            let mut stmt = c.prepare_cached(
                "SELECT id, kind, topic, statement, confidence, last_ms, superseded_by, evidence, embedding
                 FROM rules WHERE user_id = ?1 AND (?2 OR superseded_by IS NULL)
                 ORDER BY last_ms DESC, id DESC LIMIT ?3 OFFSET ?4",
            )?;
            let rows = stmt.query_map(params![user_id, include_superseded, limit as i64, offset as i64], |r| {
                let ev: String = r.get(7)?;
                Ok(RuleRow {
                    id: r.get(0)?,
                    kind: r.get(1)?,
                    topic: r.get(2)?,
                    statement: r.get(3)?,
                    confidence: r.get(4)?,
                    stated_at: ms_to_rfc3339(r.get(5)?),
                    superseded_by: r.get(6)?,
                    evidence: serde_json::from_str(&ev).unwrap_or_default(),
                    embedding: blob_to_vec(&r.get::<_, Vec<u8>>(8)?),
                })
            })?;
            Ok(rows.collect::<Result<_, _>>()?)
        })
    }

    /// Row counts per tier for one user.
    pub fn user_stats(&self, user_id: &str) -> anyhow::Result<Value> {
        let jobs = self.job_counts(Some(user_id))?;
        self.read(|c| {
            let count = |sql: &str| -> rusqlite::Result<i64> { c.query_row(sql, [user_id], |r| r.get(0)) };
            Ok(json!({
                "user_id": user_id,
                "short_term": {"turns": count("SELECT count(*) FROM turns WHERE user_id = ?1")?,
                               "unreflected": count("SELECT count(*) FROM turns WHERE user_id = ?1 AND reflected = 0")?},
                "episodic": {"episodes": count("SELECT count(*) FROM episodes WHERE user_id = ?1")?},
                "semantic": {"entities": count("SELECT count(*) FROM entities WHERE user_id = ?1")?,
                             "facts": count("SELECT count(*) FROM relations WHERE user_id = ?1 AND merged_into IS NULL")?,
                             "valid_facts": count("SELECT count(*) FROM relations WHERE user_id = ?1 AND merged_into IS NULL AND invalid_ms IS NULL")?},
                "procedural": {"rules": count("SELECT count(*) FROM rules WHERE user_id = ?1")?,
                               "active_rules": count("SELECT count(*) FROM rules WHERE user_id = ?1 AND superseded_by IS NULL")?},
                "jobs": jobs,
            }))
        })
    }

    /// Forget a user: every tier, their jobs and tier records; the user is recorded in
    /// `forgotten_users` so that a job of theirs still in a broker is dropped on arrival
    /// ([`Delivery::Forgotten`]). Returns rows removed per table.
    pub fn forget_user(&self, user_id: &str) -> anyhow::Result<Value> {
        self.write(|tx| {
            let mut removed = serde_json::Map::new();
            let n = tx.execute(
                "DELETE FROM job_tiers WHERE job_id IN (SELECT job_id FROM jobs WHERE user_id = ?1)",
                [user_id],
            )?;
            removed.insert("job_tiers".into(), n.into());
            for table in ["relations", "entity_aliases", "entities", "rules", "episodes", "turns", "jobs", "memory_edits", "short_term_summaries"] {
                let n = tx.execute(&format!("DELETE FROM {table} WHERE user_id = ?1"), [user_id])?;
                removed.insert(table.into(), n.into());
            }
            // Derived from episodes (its trigger left the row at zero): no trace stays.
            tx.execute("DELETE FROM episode_stamps WHERE user_id = ?1", [user_id])?;
            // Jobs of this user still in a broker are dropped when they arrive.
            tx.execute(
                "INSERT INTO forgotten_users (user_id, forgotten_ms) VALUES (?1, ?2)
                 ON CONFLICT (user_id) DO UPDATE SET forgotten_ms = excluded.forgotten_ms",
                params![user_id, now_ms()],
            )?;
            Ok(Value::Object(removed))
        })
    }
}

// -------------------------------------------------------------------- helpers

fn migrate(conn: &mut Connection) -> anyhow::Result<()> {
    let version: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
    if version as usize > MIGRATIONS.len() {
        bail!(
            "the database is at schema version {version}, newer than this build knows ({}); use a newer reflector",
            MIGRATIONS.len()
        );
    }
    for (i, (name, sql)) in MIGRATIONS.iter().enumerate().skip(version as usize) {
        let tx = conn.transaction()?;
        tx.execute_batch(sql)
            .with_context(|| format!("migration {name} failed"))?;
        tx.pragma_update(None, "user_version", (i + 1) as i64)?;
        tx.commit()?;
        tracing::info!(migration = name, "applied migration");
    }
    Ok(())
}

/// The request path's writes for one turn, inside the caller's transaction.
#[allow(clippy::too_many_arguments)] // private, two callers: the columns of one turn + job
fn insert_turn_and_job_in(
    tx: &Connection,
    turn: &NewTurn,
    job: &ReflectionJob,
    payload: &str,
    metadata: &str,
    state: JobState,
    adm: &mut Admission,
    outbox: bool,
) -> anyhow::Result<InsertOutcome> {
    let existing: Option<(String, String, String)> = tx
        .prepare_cached("SELECT user_id, request_hash, job_id FROM turns WHERE id = ?1")?
        .query_row([&turn.interaction_id], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?))
        })
        .optional()?;
    if let Some((user, hash, job_id)) = existing {
        if user != turn.user_id || hash != turn.request_hash {
            return Ok(InsertOutcome::Conflict);
        }
        let (prio, st): (i64, String) = tx.query_row(
            "SELECT priority, state FROM jobs WHERE job_id = ?1",
            [&job_id],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )?;
        return Ok(InsertOutcome::Replay {
            job_id,
            priority: Priority::from_i64(prio).unwrap_or(Priority::Normal),
            state: JobState::parse(&st).unwrap_or(JobState::Queued),
        });
    }
    if state == JobState::Queued {
        if let Some(busy) = adm.check(tx, &turn.user_id)? {
            return Ok(busy);
        }
        adm.admitted(&turn.user_id);
    }
    let now = now_ms();
    tx.prepare_cached(
        "INSERT INTO turns (id, user_id, session_id, user_message, assistant_response, ts_ms, metadata, request_hash, job_id, created_ms)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
    )?
    .execute(params![
        turn.interaction_id,
        turn.user_id,
        turn.session_id,
        turn.user_message,
        turn.assistant_response,
        turn.ts_ms,
        metadata,
        turn.request_hash,
        job.job_id,
        now
    ])?;
    insert_job(tx, job, payload, state, now, (!outbox).then_some(now))?;
    Ok(InsertOutcome::Created)
}

/// `published_ms`: when the job reached its queue — `now` for the embedded queue and for
/// jobs consumed from the broker, `None` for an outbox row the relay has yet to publish.
fn insert_job(
    tx: &Connection,
    job: &ReflectionJob,
    payload: &str,
    state: JobState,
    now: i64,
    published_ms: Option<i64>,
) -> anyhow::Result<()> {
    tx.prepare_cached(
        "INSERT INTO jobs (job_id, user_id, priority, state, payload, attempts, max_retries, available_ms,
                           published_ms, created_ms, updated_ms)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?8, ?8)",
    )?
    .execute(params![
        job.job_id,
        job.user_id,
        job.priority.as_i64(),
        state.as_str(),
        payload,
        if state == JobState::Processing { 1 } else { 0 },
        job.max_retries,
        now,
        published_ms
    ])?;
    Ok(())
}

pub(crate) const EPISODE_SELECT: &str = "SELECT id, user_id, speaker, text, summary, importance, tags, occurred_ms, observed_ms, evidence, job_id FROM episodes";

pub(crate) fn episode_from_row(r: &rusqlite::Row) -> rusqlite::Result<EpisodeRow> {
    let tags: String = r.get(6)?;
    let ev: String = r.get(9)?;
    let occurred: i64 = r.get(7)?;
    Ok(EpisodeRow {
        id: r.get(0)?,
        user_id: r.get(1)?,
        speaker: r.get(2)?,
        text: r.get(3)?,
        summary: r.get(4)?,
        importance: r.get(5)?,
        tags: serde_json::from_str(&tags).unwrap_or_default(),
        occurred_at: ms_to_rfc3339(occurred),
        occurred_ms: occurred,
        observed_at: ms_to_rfc3339(r.get(8)?),
        observed_ms: r.get(8)?,
        evidence: serde_json::from_str(&ev).unwrap_or_default(),
        job_id: r.get(10)?,
    })
}

pub(crate) const FACT_SELECT: &str =
    "SELECT r.id, s.name, r.predicate, o.name, r.fact, r.valid_ms, r.invalid_ms, r.evidence
     FROM relations r JOIN entities s ON s.id = r.subject_id JOIN entities o ON o.id = r.object_id";

pub(crate) fn fact_from_row(r: &rusqlite::Row) -> rusqlite::Result<FactRow> {
    let valid: i64 = r.get(5)?;
    let invalid: Option<i64> = r.get(6)?;
    let ev: String = r.get(7)?;
    Ok(FactRow {
        id: r.get(0)?,
        subject: r.get(1)?,
        predicate: r.get(2)?,
        object: r.get(3)?,
        fact: r.get(4)?,
        valid_at: ms_to_rfc3339(valid),
        invalid_at: invalid.map(ms_to_rfc3339),
        valid_ms: valid,
        evidence: serde_json::from_str(&ev).unwrap_or_default(),
    })
}

fn job_from_row(r: &rusqlite::Row) -> rusqlite::Result<JobRecord> {
    let state: String = r.get(2)?;
    let available: i64 = r.get(11)?;
    let payload: String = r.get(12)?;
    Ok(JobRecord {
        job_id: r.get(0)?,
        user_id: r.get(1)?,
        next_attempt_at: (state == "retrying").then(|| ms_to_rfc3339(available)),
        state,
        priority: Priority::from_i64(r.get(3)?)
            .unwrap_or(Priority::Normal)
            .name()
            .to_string(),
        attempts: r.get(4)?,
        max_retries: r.get(5)?,
        last_error: r.get(6)?,
        dead_reason: r.get(7)?,
        created_at: ms_to_rfc3339(r.get(8)?),
        updated_at: ms_to_rfc3339(r.get(9)?),
        completed_at: r.get::<_, Option<i64>>(10)?.map(ms_to_rfc3339),
        tiers: Vec::new(),
        job: serde_json::from_str(&payload).unwrap_or(Value::Null),
    })
}

fn tiers_of(c: &Connection, job_id: &str) -> anyhow::Result<Vec<TierRecord>> {
    let mut stmt = c.prepare_cached(
        "SELECT tier, status, result, error, attempts, latency_ms FROM job_tiers WHERE job_id = ?1 ORDER BY tier",
    )?;
    let rows = stmt.query_map([job_id], |r| {
        let result: Option<String> = r.get(2)?;
        Ok(TierRecord {
            tier: r.get(0)?,
            status: r.get(1)?,
            result: result.and_then(|s| serde_json::from_str(&s).ok()),
            error: r.get(3)?,
            attempts: r.get(4)?,
            latency_ms: r.get(5)?,
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Normalised entity name or alias: lower case, words only, without a leading "my"/"the"/"a".
pub fn norm_name(s: &str) -> String {
    let words: Vec<String> = s
        .split(|c: char| !(c.is_alphanumeric() || c == '\''))
        .filter(|w| !w.is_empty())
        .map(|w| w.to_lowercase())
        .collect();
    let skip = words
        .iter()
        .take_while(|w| matches!(w.as_str(), "my" | "the" | "a" | "an" | "our"))
        .count();
    words[skip.min(words.len())..].join(" ")
}

/// The user's entity for `name`: by alias, then by normalised name, else a new one.
pub(crate) fn resolve_entity(
    tx: &Transaction,
    user: &str,
    name: &str,
    kind: &str,
    now: i64,
) -> anyhow::Result<i64> {
    let n = norm_name(name);
    let n = if n.is_empty() {
        name.trim().to_lowercase()
    } else {
        n
    };
    if let Some(id) = tx
        .prepare_cached(
            "SELECT entity_id FROM entity_aliases WHERE user_id = ?1 AND alias_norm = ?2",
        )?
        .query_row(params![user, n], |r| r.get::<_, i64>(0))
        .optional()?
    {
        return Ok(id);
    }
    let id: i64 = tx
        .prepare_cached(
            "INSERT INTO entities (user_id, name, norm_name, kind, created_ms) VALUES (?1, ?2, ?3, ?4, ?5)
             ON CONFLICT (user_id, norm_name) DO UPDATE SET
                 kind = CASE WHEN entities.kind = 'other' THEN excluded.kind ELSE entities.kind END
             RETURNING id",
        )?
        .query_row(params![user, name.trim(), n, kind, now], |r| r.get(0))?;
    tx.prepare_cached(
        "INSERT OR IGNORE INTO entity_aliases (user_id, alias_norm, entity_id) VALUES (?1, ?2, ?3)",
    )?
    .execute(params![user, n, id])?;
    Ok(id)
}

/// Re-derive validity in an exclusive slot (subject, predicate) from its facts' own times.
/// In time order, a fact with the same object as the run before it is a restatement: it is
/// merged into the run's first fact. Each run's first fact is invalid from the `valid_ms` of
/// the next run. A pure function of the set of facts, so the processing order cannot matter.
pub(crate) fn rederive_slot(
    tx: &Transaction,
    user: &str,
    subject: i64,
    predicate: &str,
) -> anyhow::Result<()> {
    let mut stmt = tx.prepare_cached(
        "SELECT r.id, r.object_id, r.valid_ms FROM relations r JOIN entities o ON o.id = r.object_id
         WHERE r.user_id = ?1 AND r.subject_id = ?2 AND r.predicate = ?3 AND r.exclusive = 1
         ORDER BY r.valid_ms, o.norm_name, r.id",
    )?;
    let facts: Vec<(i64, i64, i64)> = stmt
        .query_map(params![user, subject, predicate], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?))
        })?
        .collect::<Result<_, _>>()?;
    let mut update =
        tx.prepare_cached("UPDATE relations SET invalid_ms = ?2, merged_into = ?3 WHERE id = ?1")?;
    let mut i = 0;
    while i < facts.len() {
        let (head, object, _) = facts[i];
        let mut j = i + 1;
        while j < facts.len() && facts[j].1 == object {
            j += 1;
        }
        let invalid = facts.get(j).map(|f| f.2);
        update.execute(params![head, invalid, Option::<i64>::None])?;
        for f in &facts[i + 1..j] {
            update.execute(params![f.0, invalid, head])?;
        }
        i = j;
    }
    Ok(())
}

/// Re-derive which rule of a topic is active: the one stated last (ties: by statement).
pub(crate) fn rederive_topic(tx: &Transaction, user: &str, topic: &str) -> anyhow::Result<()> {
    let mut stmt = tx.prepare_cached(
        "SELECT id, last_ms FROM rules WHERE user_id = ?1 AND topic = ?2 ORDER BY last_ms DESC, statement DESC",
    )?;
    let rules: Vec<(i64, i64)> = stmt
        .query_map(params![user, topic], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<Result<_, _>>()?;
    let Some(&(active, active_ms)) = rules.first() else {
        return Ok(());
    };
    tx.execute(
        "UPDATE rules SET superseded_by = NULL, invalid_ms = NULL WHERE id = ?1",
        [active],
    )?;
    for (id, _) in &rules[1..] {
        tx.execute(
            "UPDATE rules SET superseded_by = ?2, invalid_ms = ?3 WHERE id = ?1",
            params![id, active, active_ms],
        )?;
    }
    Ok(())
}

/// Union of a stored JSON string array and new items, sorted, as JSON text.
fn union_json(stored: &str, add: &[String]) -> String {
    let mut set: BTreeSet<String> = serde_json::from_str::<Vec<String>>(stored)
        .unwrap_or_default()
        .into_iter()
        .collect();
    set.extend(add.iter().cloned());
    serde_json::to_string(&set).unwrap_or_else(|_| "[]".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn norm_name_drops_possessives_and_case() {
        assert_eq!(norm_name("My Mom"), "mom");
        assert_eq!(norm_name("the  Eiffel Tower!"), "eiffel tower");
        assert_eq!(norm_name("Sarah"), "sarah");
    }

    #[test]
    fn migrations_apply_once_and_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x.db");
        SqliteStore::open(&p, "normal").unwrap();
        let s = SqliteStore::open(&p, "normal").unwrap();
        s.ping().unwrap();
    }
}
