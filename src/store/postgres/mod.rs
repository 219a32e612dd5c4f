//! PostgreSQL store: the second backend of [`super::Backend`], for deployments with several
//! API and worker processes on one database (`REFLECTOR_STORE=postgres` or `DATABASE_URL`).
//!
//! - **Connections**: an r2d2 pool of blocking `postgres` clients (`max_size` from the
//!   config). Every method runs on tokio's blocking pool (see [`super::Store::run`]).
//! - **Schema**: `migrations/postgres/NNN_*.sql`, applied at open (and by `reflector
//!   migrate`) under an advisory lock, so several processes starting together apply each
//!   migration once; applied versions are rows of `schema_migrations`. With
//!   `REFLECTOR_DATABASE_SCHEMA` every table lives in that schema (created when missing),
//!   which is how the test suite gives each test an empty store.
//! - **Concurrency**: workers of several processes may commit tiers of the same user at
//!   once. Each tier commit takes a per-user transaction-scoped advisory lock
//!   (`pg_advisory_xact_lock` on the user id's hash) before it reads anything, so a user's
//!   commits apply one after another: entity resolution cannot create twins (the unique key
//!   `(user_id, norm_name)` backs it up), and the validity re-derivation of a fact slot sees
//!   every committed fact. Because the commit logic is order-independent (validity is
//!   derived from `valid_at`, accumulating facts keep the earliest `valid_at` and the union of
//!   evidence, rules the latest statement), the graph equals sequential processing whatever
//!   order the jobs run in; `scripts/scale-test.sh` checks it. Per-user ordering of jobs is
//!   therefore not needed, and not guaranteed. Transactions that still fail with a
//!   serialization failure or a deadlock (SQLSTATE 40001, 40P01) are retried
//!   ([`WRITE_ATTEMPTS`]), never surfaced to a job.
//! - **Vectors**: `episodes.embedding` holds the little-endian f32 bytes, as in SQLite, so
//!   recall's exact in-process scan works without any extension. When the `vector` extension
//!   (pgvector) can be created, episodes also get `embedding_v vector` and an HNSW index for
//!   the configured dimension, and [`PgStore::vector_search`] answers from it.
//! - **Full text**: a generated `tsvector` column (English stemming, the episode's text at
//!   weight A and its context at B) with a GIN index; queries go through
//!   `websearch_to_tsquery`, which reads the `"term" OR "term"` expressions recall builds.

pub(crate) mod edits;
pub(crate) mod export;
pub(crate) mod jobs;
pub(crate) mod reads;
pub(crate) mod rebuild;
pub(crate) mod tiers;
pub(crate) mod window;

use std::sync::atomic::{AtomicBool, Ordering};

use ::postgres::NoTls;
use ::postgres::types::ToSql;
use anyhow::{Context, bail};
use r2d2_postgres::{PostgresConnectionManager, r2d2};

/// How many times a write transaction is tried when PostgreSQL reports a serialization
/// failure (40001) or a deadlock (40P01) before the error is returned.
pub const WRITE_ATTEMPTS: u32 = 8;

/// The PostgreSQL migrations, applied in order; the number is the version.
pub(super) const MIGRATIONS: &[(i64, &str, &str)] = &[
    (
        1,
        "001_schema",
        include_str!("../../../migrations/postgres/001_schema.sql"),
    ),
    (
        2,
        "002_foldable_turns",
        include_str!("../../../migrations/postgres/002_foldable_turns.sql"),
    ),
];

/// How recall finds an episode's nearest neighbours on PostgreSQL.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VectorMode {
    /// pgvector's HNSW index (`vector` extension present).
    Pgvector,
    /// Exact search in the process (no extension needed).
    Exact,
}

/// Connection settings for [`PgStore::open`].
#[derive(Debug, Clone)]
pub struct PgOptions {
    /// `postgres://user:password@host:port/db` (or key=value form). Never logged: it may
    /// carry a password.
    pub url: String,
    /// Schema for every table (created when missing); `None`: the connection's default
    /// (`public`). Letters, digits and `_` only.
    pub schema: Option<String>,
    /// `auto` (use pgvector when the extension can be created), `on` (fail without it),
    /// `off` (exact search only).
    pub pgvector: String,
    /// Embedding dimension the HNSW index is built for (the embedder's).
    pub dim: usize,
    /// Pool size: connections held at most.
    pub max_connections: u32,
}

pub(super) type Pool = r2d2::Pool<PostgresConnectionManager<NoTls>>;

/// The PostgreSQL backend (see the module documentation).
pub struct PgStore {
    /// `Some` until dropped (see the `Drop` impl).
    pool: Option<Pool>,
    vectors: VectorMode,
    dim: usize,
    /// RabbitMQ mode: job rows are written unpublished for the relay (the outbox).
    outbox: AtomicBool,
    /// The service-wide count of waiting jobs for backpressure, with when it was counted
    /// (reused for 250 ms, `jobs::WAITING_TOTAL_RECOUNT`).
    pub(in crate::store) waiting_total: crate::store::jobs::WaitingTotal,
}

impl PgStore {
    /// Connect, create the schema when asked, apply migrations, set up pgvector.
    /// Errors: unreachable server or bad credentials (the message names the host, never
    /// the password), a migration that fails, `pgvector = on` without the extension.
    pub fn open(opts: &PgOptions) -> anyhow::Result<Self> {
        let mut config: ::postgres::Config = opts
            .url
            .parse()
            .context("DATABASE_URL is not a valid PostgreSQL connection string")?;
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(std::time::Duration::from_secs(10));
        }
        let where_ = describe(&config);
        if let Some(schema) = &opts.schema {
            if schema.is_empty()
                || !schema
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_')
            {
                bail!("REFLECTOR_DATABASE_SCHEMA must be letters, digits and _, got {schema:?}");
            }
            let mut c = config
                .connect(NoTls)
                .with_context(|| format!("cannot connect to PostgreSQL at {where_}"))?;
            c.batch_execute(&format!("CREATE SCHEMA IF NOT EXISTS \"{schema}\""))
                .or_else(|e| {
                    // Two processes creating it at once: the loser sees a duplicate.
                    if e.code() == Some(&::postgres::error::SqlState::UNIQUE_VIOLATION) {
                        Ok(())
                    } else {
                        Err(e)
                    }
                })
                .with_context(|| format!("cannot create schema {schema}"))?;
            config.options(&format!("-c search_path={schema},public"));
        }
        let manager = PostgresConnectionManager::new(config, NoTls);
        let pool = r2d2::Pool::builder()
            .max_size(opts.max_connections.max(2))
            .min_idle(Some(1))
            .connection_timeout(std::time::Duration::from_secs(30))
            // A broken connection is noticed when it is returned (`has_broken`); checking
            // each one out with a query would cost a round trip per store call.
            .test_on_check_out(false)
            .build(manager)
            .with_context(|| format!("cannot connect to PostgreSQL at {where_}"))?;
        let mut c = pool
            .get()
            .with_context(|| format!("cannot connect to PostgreSQL at {where_}"))?;
        migrate(&mut c)?;
        let vectors = setup_vectors(&mut c, &opts.pgvector, opts.dim)?;
        tracing::info!(server = %where_, vectors = ?vectors, "PostgreSQL store ready");
        drop(c);
        Ok(Self {
            pool: Some(pool),
            vectors,
            dim: opts.dim,
            outbox: AtomicBool::new(false),
            waiting_total: crate::store::jobs::WaitingTotal::new(jobs::WAITING_TOTAL_RECOUNT),
        })
    }

    /// How nearest-neighbour search runs on this store.
    pub fn vector_mode(&self) -> VectorMode {
        self.vectors
    }

    /// A pooled connection. Errors when none frees up within the pool's timeout (30 s).
    pub(super) fn conn(
        &self,
    ) -> anyhow::Result<r2d2::PooledConnection<PostgresConnectionManager<NoTls>>> {
        self.pool
            .as_ref()
            .expect("the pool lives as long as the store")
            .get()
            .context("no PostgreSQL connection available (pool exhausted or server down)")
    }

    /// One page of a user's rows: `sql` binds `$1` to `user`, `$2` to `limit` and `$3` to
    /// `offset` (each clamped to `i64::MAX`); `row` reads each row.
    pub(crate) fn page<T>(
        &self,
        sql: &str,
        user: &str,
        limit: usize,
        offset: usize,
        row: impl FnMut(&::postgres::Row) -> Result<T, ::postgres::Error>,
    ) -> anyhow::Result<Vec<T>> {
        let (limit, offset) = (
            limit.min(i64::MAX as usize) as i64,
            offset.min(i64::MAX as usize) as i64,
        );
        self.read(|c| {
            let rows = c.query(sql, &[&user, &limit, &offset])?;
            Ok(rows.iter().map(row).collect::<Result<_, _>>()?)
        })
    }

    /// Run `f` on a pooled connection outside any explicit transaction.
    pub(crate) fn read<T>(
        &self,
        f: impl FnOnce(&mut ::postgres::Client) -> anyhow::Result<T>,
    ) -> anyhow::Result<T> {
        let mut c = self.conn()?;
        f(&mut c)
    }

    /// Run one flow of [`crate::store::tiers`] or [`crate::store::edits`] in a write
    /// transaction, from the start again on a serialization failure ([`PgStore::write`]): see
    /// [`crate::store::WriteStore::write_transaction`].
    pub fn write_transaction(
        &self,
        flow: crate::store::backend::WriteFlow<'_>,
    ) -> anyhow::Result<()> {
        let vectors = self.vectors;
        self.write(|tx| flow(&mut tiers::WriteTx { tx, vectors }))
    }

    /// Run `f` in one transaction and commit; retried from the start (so `f` must be
    /// repeatable) on a serialization failure or deadlock, up to [`WRITE_ATTEMPTS`] times.
    pub(crate) fn write<T>(
        &self,
        mut f: impl FnMut(&mut ::postgres::Transaction) -> anyhow::Result<T>,
    ) -> anyhow::Result<T> {
        let mut c = self.conn()?;
        let mut attempt = 0;
        loop {
            attempt += 1;
            let result = (|| {
                let mut tx = c.transaction()?;
                let out = f(&mut tx)?;
                tx.commit()?;
                Ok(out)
            })();
            match result {
                Err(e) if attempt < WRITE_ATTEMPTS && retryable(&e) => {
                    metrics::counter!("reflector_store_retries_total").increment(1);
                    std::thread::sleep(std::time::Duration::from_millis(
                        5 * (1 << attempt.min(6)) + fastrand::u64(0..10),
                    ));
                }
                other => return other,
            }
        }
    }

    /// Is the database answering? (`SELECT 1`.)
    pub fn ping(&self) -> anyhow::Result<()> {
        self.read(|c| {
            c.simple_query("SELECT 1")?;
            Ok(())
        })
    }

    /// RabbitMQ mode on or off (see [`super::SqliteStore::set_outbox`]).
    pub fn set_outbox(&self, on: bool) {
        self.outbox.store(on, Ordering::Relaxed);
    }

    /// Whether new job rows wait in the outbox for the relay.
    pub fn is_outbox(&self) -> bool {
        self.outbox.load(Ordering::Relaxed)
    }
}

impl Drop for PgStore {
    /// Closing a blocking `postgres` client blocks on its own runtime, which panics on a
    /// thread that drives async tasks (a service stopping drops its store there): the pool
    /// is dropped on a thread of its own.
    fn drop(&mut self) {
        if let Some(pool) = self.pool.take() {
            if tokio::runtime::Handle::try_current().is_ok() {
                let _ = std::thread::Builder::new()
                    .name("pg-pool-close".into())
                    .spawn(move || drop(pool));
            } else {
                drop(pool);
            }
        }
    }
}

/// `host:port/db` of a config, for messages (never the password).
pub(crate) fn describe(c: &::postgres::Config) -> String {
    let host = c
        .get_hosts()
        .first()
        .map(|h| match h {
            ::postgres::config::Host::Tcp(h) => h.clone(),
            ::postgres::config::Host::Unix(p) => p.display().to_string(),
        })
        .unwrap_or_else(|| "localhost".into());
    let port = c.get_ports().first().copied().unwrap_or(5432);
    format!("{host}:{port}/{}", c.get_dbname().unwrap_or("(default db)"))
}

/// Serialization failure or deadlock: the transaction may succeed when run again.
pub(super) fn retryable(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<::postgres::Error>()
            .and_then(|e| e.code())
            .is_some_and(|code| {
                *code == ::postgres::error::SqlState::T_R_SERIALIZATION_FAILURE
                    || *code == ::postgres::error::SqlState::T_R_DEADLOCK_DETECTED
            })
    })
}

/// Apply the migrations not yet applied, one transaction each, under an advisory lock.
pub(super) fn migrate(c: &mut ::postgres::Client) -> anyhow::Result<()> {
    // Arbitrary constant key for the migration lock ("reflectr" in ASCII).
    const LOCK: i64 = 0x7265_666c_6563_7472;
    c.execute("SELECT pg_advisory_lock($1)", &[&LOCK])?;
    let result = (|| -> anyhow::Result<()> {
        c.batch_execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations (
                 version BIGINT PRIMARY KEY, name TEXT NOT NULL, applied_ms BIGINT NOT NULL)",
        )?;
        let current: i64 = c
            .query_one(
                "SELECT coalesce(max(version), 0) FROM schema_migrations",
                &[],
            )?
            .get(0);
        let newest = MIGRATIONS.last().map(|m| m.0).unwrap_or(0);
        if current > newest {
            bail!(
                "the database is at schema version {current}, newer than this build knows ({newest}); use a newer reflector"
            );
        }
        for (version, name, sql) in MIGRATIONS.iter().filter(|m| m.0 > current) {
            let mut tx = c.transaction()?;
            tx.batch_execute(sql)
                .with_context(|| format!("PostgreSQL migration {name} failed"))?;
            tx.execute(
                "INSERT INTO schema_migrations (version, name, applied_ms) VALUES ($1, $2, $3)",
                &[version, name, &super::now_ms()],
            )?;
            tx.commit()?;
            tracing::info!(migration = name, "applied PostgreSQL migration");
        }
        Ok(())
    })();
    c.execute("SELECT pg_advisory_unlock($1)", &[&LOCK])?;
    result
}

/// Decide the vector mode and, with pgvector, add the vector column and the HNSW index for
/// `dim` (both idempotent; the index build reads every stored vector once).
pub(super) fn setup_vectors(
    c: &mut ::postgres::Client,
    mode: &str,
    dim: usize,
) -> anyhow::Result<VectorMode> {
    if mode == "off" {
        return Ok(VectorMode::Exact);
    }
    let have = c
        .batch_execute("CREATE EXTENSION IF NOT EXISTS vector SCHEMA public")
        .map(|_| true)
        .or_else(|e| {
            // Created concurrently by another process: it exists now.
            if e.code() == Some(&::postgres::error::SqlState::UNIQUE_VIOLATION) {
                Ok(true)
            } else {
                tracing::debug!(error = %e, "pgvector is not available");
                Ok::<_, anyhow::Error>(false)
            }
        })?;
    if !have {
        if mode == "on" {
            bail!(
                "REFLECTOR_PGVECTOR=on but the `vector` extension cannot be created on this server (install pgvector, or set REFLECTOR_PGVECTOR=auto)"
            );
        }
        tracing::info!("pgvector not available: vector search is exact, in the process");
        return Ok(VectorMode::Exact);
    }
    if dim == 0 || dim > 2000 {
        bail!("pgvector's HNSW index takes 1 to 2000 dimensions, the embedder has {dim}");
    }
    const LOCK: i64 = 0x7265_666c_7665_6374;
    c.execute("SELECT pg_advisory_lock($1)", &[&LOCK])?;
    let result = c.batch_execute(&format!(
        "ALTER TABLE episodes ADD COLUMN IF NOT EXISTS embedding_v vector;
         CREATE INDEX IF NOT EXISTS episodes_hnsw_{dim} ON episodes
             USING hnsw ((embedding_v::vector({dim})) vector_cosine_ops)
             WHERE vector_dims(embedding_v) = {dim};"
    ));
    c.execute("SELECT pg_advisory_unlock($1)", &[&LOCK])?;
    result.context("cannot set up the pgvector column and index")?;
    Ok(VectorMode::Pgvector)
}

/// pgvector's text form of a vector: `[x1,x2,...]`.
pub(crate) fn vector_text(v: &[f32]) -> String {
    let mut s = String::with_capacity(v.len() * 10 + 2);
    s.push('[');
    for (i, x) in v.iter().enumerate() {
        if i > 0 {
            s.push(',');
        }
        s.push_str(&x.to_string());
    }
    s.push(']');
    s
}

/// A statement written for SQLite (`?1` … `?9`, `instr`) in PostgreSQL's spelling (`$1` …
/// `$9`, `strpos`), for the statements both backends share (`store/model.rs`).
pub(crate) fn dollar_params(sql: &str) -> String {
    let mut out = sql.replace("instr(", "strpos(");
    for n in (1..=9).rev() {
        out = out.replace(&format!("?{n}"), &format!("${n}"));
    }
    out
}

/// Take the per-user advisory lock for the rest of the transaction: a user's tier commits
/// and edits run one at a time across every process (see the module documentation).
pub(crate) fn lock_user(tx: &mut ::postgres::Transaction, user: &str) -> anyhow::Result<()> {
    tx.execute(
        "SELECT pg_advisory_xact_lock(hashtextextended($1, 7))",
        &[&user],
    )?;
    Ok(())
}

/// A query parameter.
pub(super) type Param<'a> = &'a (dyn ToSql + Sync);

/// pgvector's text of an embedding, or NULL for one pgvector cannot store (no dimension, a
/// NaN or an infinity): such an episode is found by the exact scan only, as in the tier
/// commits.
pub(super) fn vector_param(v: &[f32]) -> Option<String> {
    (!v.is_empty() && v.iter().all(|x| x.is_finite())).then(|| vector_text(v))
}
