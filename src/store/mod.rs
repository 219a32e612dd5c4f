//! The store: every tier's rows and the job ledger, behind one interface ([`Backend`]) with
//! two backends: SQLite ([`SqliteStore`], the embedded default: one file, no server) and
//! PostgreSQL ([`PgStore`], for several API and worker processes on one database).
//!
//! The methods are synchronous; async callers go through [`Store`], which runs them on
//! tokio's blocking pool so no database call ever blocks the async runtime. Every method that
//! reads or writes memory takes a `user_id` and every statement filters on it: nothing crosses
//! between users.

pub mod backend;
pub mod derive;
pub mod edits;
pub mod export;
pub mod jobs;
pub mod model;
pub mod postgres;
pub mod sql;
pub mod sqlite;
pub mod tiers;
pub mod window;

#[cfg(test)]
mod parity;

use std::sync::Arc;

pub use backend::{
    Backend, Editor, JobLedger, JobWriter, Portability, Reader, Seams, TierWriter, WriteStore,
};

pub use self::postgres::PgStore;

pub use sqlite::SqliteStore;

pub use model::*;

/// Shared handle to the store for async code.
#[derive(Clone)]
pub struct Store {
    inner: Arc<dyn Backend>,
    /// The same store, as its test and benchmark seams (not part of [`Backend`]).
    seams: Arc<dyn Seams>,
}

impl Store {
    pub fn new(inner: impl Backend + Seams + 'static) -> Self {
        let inner = Arc::new(inner);
        Self {
            seams: inner.clone(),
            inner,
        }
    }

    /// The synchronous store, for code already on a blocking thread.
    pub fn sync(&self) -> &dyn Backend {
        &*self.inner
    }

    /// Run `f` against the store on the blocking pool.
    pub async fn run<T, F>(&self, f: F) -> anyhow::Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&dyn Backend) -> anyhow::Result<T> + Send + 'static,
    {
        let inner = self.inner.clone();
        tokio::task::spawn_blocking(move || f(&*inner))
            .await
            .map_err(|e| anyhow::anyhow!("store task panicked: {e}"))?
    }

    /// The store's test and benchmark seams (synchronous, like [`Store::sync`]).
    pub fn seams(&self) -> Arc<dyn Seams> {
        self.seams.clone()
    }
}

/// Open the configured store: PostgreSQL when `cfg.uses_postgres()`, else the SQLite file
/// in the data directory (both create their schema). Blocking (connects and migrates): call
/// it before serving, or on the blocking pool.
pub fn open(cfg: &crate::config::Config) -> anyhow::Result<Store> {
    if cfg.uses_postgres() {
        let url = cfg
            .database_url
            .clone()
            .ok_or_else(|| anyhow::anyhow!("the postgres store needs DATABASE_URL"))?;
        let dim = if cfg.embedder == "hash" {
            crate::embed::hash::HASH_DIM
        } else {
            crate::embed::minilm::DIM
        };
        Ok(Store::new(PgStore::open(&postgres::PgOptions {
            url,
            schema: cfg.database_schema.clone(),
            pgvector: cfg.pgvector.clone(),
            dim,
            max_connections: cfg.database_max_connections,
        })?))
    } else {
        Ok(Store::new(SqliteStore::open(
            &cfg.db_path(),
            &cfg.sqlite_synchronous,
        )?))
    }
}

/// Where the store is, for messages: the SQLite file, or PostgreSQL's host, port and
/// database (never the password).
pub fn describe(cfg: &crate::config::Config) -> String {
    match (&cfg.database_url, cfg.uses_postgres()) {
        (Some(url), true) => url
            .parse::<::postgres::Config>()
            .map(|c| format!("PostgreSQL {}", postgres::describe(&c)))
            .unwrap_or_else(|_| "PostgreSQL".into()),
        _ => cfg.db_path().display().to_string(),
    }
}

/// Milliseconds since the Unix epoch, now.
pub fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// RFC 3339 UTC text for a millisecond timestamp.
pub fn ms_to_rfc3339(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| crate::job::format_timestamp(&t))
        .unwrap_or_default()
}

/// Encode a vector as little-endian f32 bytes (the `embedding` BLOB format).
pub fn vec_to_blob(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

/// Decode an `embedding` BLOB; trailing bytes that do not make a whole f32 are ignored.
pub fn blob_to_vec(b: &[u8]) -> Vec<f32> {
    b.chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect()
}
