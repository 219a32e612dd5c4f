//! SQLite store (the embedded default): one file in WAL mode, one writer connection behind a
//! mutex (SQLite admits one writer at a time anyway) and a small pool of reader connections.
//!
//! Durability: a commit returns after the WAL append; with `synchronous = NORMAL` that survives
//! a crash of this process (the OS holds the pages) but not a power failure, with `FULL` both.
//! Migrations are numbered files under `migrations/`, applied in order and tracked in
//! `PRAGMA user_version`.

mod edits;
mod export;
mod jobs;
mod reads;
mod rebuild;
mod tiers;
mod window;

use std::path::Path;
use std::sync::{Arc, Mutex};

use anyhow::{Context, bail};
use rusqlite::{Connection, Transaction};

pub(super) const MIGRATIONS: &[(&str, &str)] = &[
    (
        "001_turns_and_jobs",
        include_str!("../../../migrations/001_turns_and_jobs.sql"),
    ),
    (
        "002_episodes",
        include_str!("../../../migrations/002_episodes.sql"),
    ),
    (
        "003_graph",
        include_str!("../../../migrations/003_graph.sql"),
    ),
    (
        "004_rules",
        include_str!("../../../migrations/004_rules.sql"),
    ),
    (
        "005_turn_lookups",
        include_str!("../../../migrations/005_turn_lookups.sql"),
    ),
    (
        "006_fact_restatements",
        include_str!("../../../migrations/006_fact_restatements.sql"),
    ),
    (
        "007_episode_context",
        include_str!("../../../migrations/007_episode_context.sql"),
    ),
    (
        "008_outbox",
        include_str!("../../../migrations/008_outbox.sql"),
    ),
    (
        "009_memory_edits",
        include_str!("../../../migrations/009_memory_edits.sql"),
    ),
    (
        "010_short_term_window",
        include_str!("../../../migrations/010_short_term_window.sql"),
    ),
    (
        "011_forgotten_users",
        include_str!("../../../migrations/011_forgotten_users.sql"),
    ),
    (
        "012_episode_stamps",
        include_str!("../../../migrations/012_episode_stamps.sql"),
    ),
    (
        "013_foldable_turns",
        include_str!("../../../migrations/013_foldable_turns.sql"),
    ),
];

pub struct SqliteStore {
    /// Shared with the background checkpointer (which holds a `Weak` and stops with us).
    writer: Arc<Mutex<Connection>>,
    readers: Mutex<Vec<Connection>>,
    path: std::path::PathBuf,
    synchronous: String,
    /// The service-wide count of waiting jobs for backpressure, reused for
    /// [`jobs::WAITING_TOTAL_RECOUNT`].
    pub(in crate::store) waiting_total: crate::store::jobs::WaitingTotal,
    /// RabbitMQ mode: new job rows are written unpublished (`published_ms` NULL) for the
    /// relay to publish (see [`SqliteStore::set_outbox`]).
    outbox: std::sync::atomic::AtomicBool,
}

/// How often the background checkpointer copies the WAL into the database file. Often, so
/// that each checkpoint's fsync has little to write: with 1 s (12k pages at 1,000 turns/s)
/// the fsync held up the WAL appends of concurrent commits for 10-50 ms (ext4 writeback),
/// with 5 s for 100+ ms; with 100 ms the stalls stay under ~10 ms.
pub(super) const CHECKPOINT_EVERY: std::time::Duration = std::time::Duration::from_millis(100);

/// WAL length (pages) from which the checkpointer finishes a checkpoint under the writer
/// lock, so that the WAL starts over (128 MB): each start-over stalls commits for one or two
/// fsyncs (~10 ms here), so it should be rare — at 1,000 turns/s one turn writes ~12 pages
/// (48 KB: two rows and their nine index entries, page by page), 12k pages a second.
pub(super) const WAL_RESTART_PAGES: i64 = 32_768;

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
pub(super) const WRITER_CACHE_KIB: i64 = 2_000;

/// Backstop only: a commit that finds the WAL this long checkpoints by itself (if the
/// background checkpointer cannot keep up). SQLite's default is 1,000 pages.
pub(super) const WAL_AUTOCHECKPOINT_PAGES: i64 = 50_000;

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
pub(super) fn spawn_checkpointer(
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

pub(super) fn configure(conn: &Connection, synchronous: &str) -> rusqlite::Result<()> {
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

/// An open write transaction, as the statements of the flows written once for both
/// backends: [`crate::store::tiers::TierSql`] (in `tiers.rs`) and
/// [`crate::store::edits::EditSql`] (in `edits.rs`).
pub(super) struct WriteTx<'a, 'c>(pub &'a Transaction<'c>);

impl SqliteStore {
    /// Run one flow of [`crate::store::tiers`] or [`crate::store::edits`] in a write
    /// transaction: see [`crate::store::WriteStore::write_transaction`].
    pub fn write_transaction(
        &self,
        flow: crate::store::backend::WriteFlow<'_>,
    ) -> anyhow::Result<()> {
        self.write(|tx| flow(&mut WriteTx(tx)))
    }

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
            waiting_total: crate::store::jobs::WaitingTotal::new(jobs::WAITING_TOTAL_RECOUNT),
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

    /// One page of a user's rows on a reader connection: `sql` binds `?1` to `user`, `?2` to
    /// `limit` and `?3` to `offset` (each clamped to `i64::MAX`); `row` reads each row.
    pub(crate) fn page<T>(
        &self,
        sql: &str,
        user: &str,
        limit: usize,
        offset: usize,
        row: impl FnMut(&rusqlite::Row<'_>) -> rusqlite::Result<T>,
    ) -> anyhow::Result<Vec<T>> {
        self.read(|c| {
            let mut stmt = c.prepare_cached(sql)?;
            let (limit, offset) = (
                limit.min(i64::MAX as usize) as i64,
                offset.min(i64::MAX as usize) as i64,
            );
            let rows = stmt.query_map(rusqlite::params![user, limit, offset], row)?;
            Ok(rows.collect::<Result<_, _>>()?)
        })
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

    /// Turn outbox mode on (RabbitMQ): job rows written from now on are unpublished until
    /// [`SqliteStore::mark_published`]; replayed dead jobs become unpublished again.
    pub fn set_outbox(&self, on: bool) {
        self.outbox.store(on, std::sync::atomic::Ordering::Relaxed);
    }

    /// Whether outbox mode is on.
    pub fn is_outbox(&self) -> bool {
        self.outbox.load(std::sync::atomic::Ordering::Relaxed)
    }
}

pub(super) fn migrate(conn: &mut Connection) -> anyhow::Result<()> {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migrations_apply_once_and_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x.db");
        SqliteStore::open(&p, "normal").unwrap();
        let s = SqliteStore::open(&p, "normal").unwrap();
        s.ping().unwrap();
    }
}
