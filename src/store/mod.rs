//! The store: every tier's rows and the job ledger, behind one interface ([`Backend`]) with
//! two backends: SQLite ([`SqliteStore`], the embedded default: one file, no server) and
//! PostgreSQL ([`PgStore`], for several API and worker processes on one database).
//!
//! The methods are synchronous; async callers go through [`Store`], which runs them on
//! tokio's blocking pool so no database call ever blocks the async runtime. Every method that
//! reads or writes memory takes a `user_id` and every statement filters on it: nothing crosses
//! between users.

pub mod backend;
pub mod edits;
pub mod export;
pub mod pg;
pub mod rebuild;
pub mod sqlite;
pub mod types;
pub mod window;

#[cfg(test)]
mod parity;

use std::sync::Arc;

use serde::Serialize;

pub use backend::Backend;
pub use pg::PgStore;
pub use sqlite::SqliteStore;
pub use types::*;

/// Shared handle to the store for async code.
#[derive(Clone)]
pub struct Store {
    inner: Arc<dyn Backend>,
}

impl Store {
    pub fn new(inner: impl Backend + 'static) -> Self {
        Self {
            inner: Arc::new(inner),
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
        Ok(Store::new(PgStore::open(&pg::PgOptions {
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
            .parse::<postgres::Config>()
            .map(|c| format!("PostgreSQL {}", pg::describe(&c)))
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
