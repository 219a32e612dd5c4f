//! Configuration: one [`Config`] built from defaults, an optional TOML file, environment
//! variables and command-line flags.
//!
//! Precedence, highest first: **flag > environment variable > TOML file > default**.
//! Every setting has a flag (`--workers 4`), an environment variable (`REFLECTOR_WORKERS=4`)
//! and a TOML key (`workers = 4`), except the original service's two switches, which keep
//! their names (`MEMORY_FAST_MODE`, `REFLECTION_ENABLED`), and the conventional
//! `RABBITMQ_URL`, `DATABASE_URL` and `OPENAI_API_KEY`. The TOML file is given by `--config`
//! or `REFLECTOR_CONFIG`; unknown keys in it are an error, so a typo never goes unnoticed.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use clap::Args;
use serde::Deserialize;

/// The service's settings after merging all sources.
#[derive(Debug, Clone)]
pub struct Config {
    /// HTTP listen address. Default `127.0.0.1:8080`.
    pub listen: SocketAddr,
    /// Directory holding the SQLite database (`reflector.db`). Default `./data`.
    pub data_dir: PathBuf,
    /// Concurrent reflection jobs per process (async worker tasks). Default 4.
    pub workers: usize,
    /// Fast path: store the turn and a job, reflect later (default true). When false, or when
    /// `reflection_enabled` is false, `POST /api/interactions` reflects inline (traditional path).
    pub fast_mode: bool,
    /// The original service's switch for asynchronous reflection. Default true.
    pub reflection_enabled: bool,
    /// Largest accepted request body in bytes; larger bodies get 413. Default 1 MiB.
    pub max_body_bytes: usize,
    /// How long a worker's lease on a job lasts before another worker may take it (s). Default 60.
    pub lease_secs: u64,
    /// First retry delay (ms); doubles per attempt up to `retry_max_ms`. Default 1000.
    pub retry_base_ms: u64,
    /// Longest retry delay (ms). Default 300000 (5 min).
    pub retry_max_ms: u64,
    /// Retries after the first attempt before a job is dead (the original's default, 3).
    pub max_retries: u32,
    /// `minilm` (default; all-MiniLM-L6-v2 on CPU) or `hash` (fast feature hashing, for
    /// tests and smoke runs only — it does not understand meaning).
    pub embedder: String,
    /// Where the MiniLM files live. Default: `reflector model fetch`'s cache directory.
    pub model_dir: PathBuf,
    /// OS threads computing embeddings (each single-threaded). Default 2.
    pub embed_threads: usize,
    /// Tier 1 window: recent turns shown in recall. Default 10.
    pub short_term_turns: usize,
    /// Turns shown on each side of a recalled episode, from its session (its context). Default 1.
    pub recall_window: usize,
    /// List the MCP tool `forget_user` (delete everything about the session's user). Default
    /// false: a model can call any tool it sees.
    pub mcp_allow_forget: bool,
    /// OpenAI-compatible API base (`…/v1`) for LLM curation and extraction; with
    /// `llm_model`, turns on LLM mode (`OPENAI_API_KEY` from the environment is sent as the
    /// bearer token). Unset: the built-in rules, offline.
    pub llm_base_url: Option<String>,
    /// Chat model name for LLM mode (e.g. `gpt-4o-mini`, `llama3.1:8b`).
    pub llm_model: Option<String>,
    /// Per-request timeout of the LLM (s). Default 30.
    pub llm_timeout_secs: u64,
    /// Characters of a turn sent to the LLM in one request; longer turns are chunked. Default 12000.
    pub llm_max_input_chars: usize,
    /// SQLite `synchronous` mode: `normal` (default; a commit survives a process crash, the
    /// last commits may be lost on power failure) or `full` (survives power failure too).
    pub sqlite_synchronous: String,
    /// Seconds a queued job may wait before health reports reflection as degraded. Default 120.
    pub lag_degraded_secs: u64,
    /// Tier 1 window (turns): a user's turns beyond the newest this many are folded into the
    /// running summary by the reflector. Default 200.
    pub short_term_window_turns: usize,
    /// Tier 1 window (estimated tokens, as `crate::tokens`): likewise. Default 8000.
    pub short_term_window_tokens: usize,
    /// Retention (s): completed jobs and reflected turns older than this are pruned (every
    /// minute, by the process running workers). Default 0: keep forever.
    pub retention_secs: u64,
    /// Backpressure: most waiting reflection jobs (queued or retrying) one user may have; a
    /// new turn beyond it gets 429 with `Retry-After`. Default 10000.
    pub max_waiting_per_user: u64,
    /// Backpressure: most waiting reflection jobs in total. Default 100000.
    pub max_waiting_total: u64,
    /// Bearer API keys from `REFLECTOR_API_KEYS` (environment only; format in
    /// `crate::api::auth`). Empty: no authentication, and the service listens on loopback only.
    pub api_keys: crate::api::auth::ApiKeys,
    /// `RABBITMQ_URL` (`amqp://user:password@host:5672/%2f`): the RabbitMQ broker. Setting
    /// it alone selects the `amqp` queue. A secret: never logged (see
    /// `queue::amqp::redact_url`). Environment or flag only, never the TOML file.
    pub rabbitmq_url: Option<String>,
    /// `embedded` (the `jobs` table) or `amqp` (RabbitMQ). Unset: `amqp` when
    /// `rabbitmq_url` is set, else `embedded`.
    pub queue: Option<String>,
    /// Topic exchange jobs are published to. Default `memory_reflection_exchange`; its
    /// dead-letter exchange is this name plus `.dlx`.
    pub amqp_exchange: String,
    /// Intake queue (declared exactly as the original producer declares it). Default
    /// `memory_reflection_queue`; the priority queue is this name plus `.priority`, the
    /// delay queues this name plus `.retry.<ms>ms`.
    pub amqp_queue: String,
    /// Dead-letter queue. Default `memory_reflection_dlq`.
    pub amqp_dlq: String,
    /// Unacknowledged deliveries a worker holds per queue (AMQP prefetch). Default 8: a
    /// little more than `workers`, so that higher-priority jobs are not stuck behind a
    /// long prefetched backlog.
    pub amqp_prefetch: u16,
    /// `DATABASE_URL` (`postgres://user:password@host:5432/db`): the PostgreSQL store.
    /// Setting it alone selects the `postgres` store. A secret: never logged (messages show
    /// host, port and database only). Environment or flag only, never the TOML file.
    pub database_url: Option<String>,
    /// `sqlite` (the embedded default) or `postgres`. Unset: `postgres` when `database_url`
    /// is set, else `sqlite`.
    pub store: Option<String>,
    /// PostgreSQL schema for every table (created when missing). Unset: `public`.
    pub database_schema: Option<String>,
    /// PostgreSQL connections per process at most. Default 16.
    pub database_max_connections: u32,
    /// pgvector use on PostgreSQL: `auto` (default: when the extension can be created),
    /// `on` (fail without it) or `off` (exact search in the process).
    pub pgvector: String,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:8080".parse().expect("static address"),
            data_dir: PathBuf::from("./data"),
            workers: 4,
            fast_mode: true,
            reflection_enabled: true,
            max_body_bytes: 1024 * 1024,
            lease_secs: 60,
            retry_base_ms: 1000,
            retry_max_ms: 300_000,
            max_retries: crate::job::default_max_retries(),
            embedder: "minilm".into(),
            model_dir: crate::embed::fetch::default_model_dir(),
            embed_threads: 2,
            short_term_turns: 10,
            recall_window: 1,
            mcp_allow_forget: false,
            llm_base_url: None,
            llm_model: None,
            llm_timeout_secs: 30,
            llm_max_input_chars: 12_000,
            sqlite_synchronous: "normal".into(),
            lag_degraded_secs: 120,
            short_term_window_turns: 200,
            short_term_window_tokens: 8000,
            retention_secs: 0,
            max_waiting_per_user: 10_000,
            max_waiting_total: 100_000,
            api_keys: Default::default(),
            rabbitmq_url: None,
            queue: None,
            amqp_exchange: "memory_reflection_exchange".into(),
            amqp_queue: "memory_reflection_queue".into(),
            amqp_dlq: "memory_reflection_dlq".into(),
            amqp_prefetch: 8,
            database_url: None,
            store: None,
            database_schema: None,
            database_max_connections: 16,
            pgvector: "auto".into(),
        }
    }
}

impl Config {
    /// True when turns are reflected by workers after a 202 (the fast path).
    pub fn async_reflection(&self) -> bool {
        self.fast_mode && self.reflection_enabled
    }

    /// The backpressure ceilings.
    pub fn queue_limits(&self) -> crate::store::QueueLimits {
        crate::store::QueueLimits {
            per_user: self.max_waiting_per_user,
            total: self.max_waiting_total,
        }
    }

    /// True when jobs travel through RabbitMQ (`queue = amqp`, or `RABBITMQ_URL` alone).
    pub fn uses_amqp(&self) -> bool {
        match self.queue.as_deref() {
            Some(q) => q == "amqp",
            None => self.rabbitmq_url.is_some(),
        }
    }

    /// True when the store is PostgreSQL (`store = postgres`, or `DATABASE_URL` alone).
    pub fn uses_postgres(&self) -> bool {
        match self.store.as_deref() {
            Some(s) => s == "postgres",
            None => self.database_url.is_some(),
        }
    }

    /// The SQLite database file.
    pub fn db_path(&self) -> PathBuf {
        self.data_dir.join("reflector.db")
    }

    /// Refuse to serve beyond loopback without API keys: anyone who can reach the port
    /// could read and delete every user's memory.
    pub fn check_exposure(&self) -> anyhow::Result<()> {
        if self.api_keys.is_empty() && !self.listen.ip().is_loopback() {
            bail!(
                "refusing to listen on {} without API keys: anyone reaching that address could read and delete every user's memory. Set REFLECTOR_API_KEYS (`reflector key new --admin` makes one; see the README, Authentication) or listen on 127.0.0.1",
                self.listen
            );
        }
        Ok(())
    }

    /// Merge: defaults, then the TOML file (if any), then flags/environment (already merged
    /// by clap, flags winning). Errors name the file and key that is wrong.
    pub fn load(args: &ConfigArgs) -> anyhow::Result<Config> {
        let mut cfg = Config::default();
        if let Some(path) = &args.config {
            let file = ConfigFile::read(path)?;
            cfg.apply(file.into_overrides());
        }
        cfg.apply(args.overrides.clone());
        cfg.api_keys = crate::api::auth::ApiKeys::from_env()?;
        cfg.validate()?;
        Ok(cfg)
    }

    fn apply(&mut self, o: Overrides) {
        macro_rules! set {
            ($($f:ident),*) => { $( if let Some(v) = o.$f { self.$f = v; } )* };
        }
        set!(
            listen,
            data_dir,
            workers,
            fast_mode,
            reflection_enabled,
            max_body_bytes,
            lease_secs,
            retry_base_ms,
            retry_max_ms,
            max_retries,
            embedder,
            model_dir,
            embed_threads,
            short_term_turns,
            recall_window,
            mcp_allow_forget,
            llm_timeout_secs,
            llm_max_input_chars,
            sqlite_synchronous,
            lag_degraded_secs,
            max_waiting_per_user,
            max_waiting_total,
            amqp_exchange,
            amqp_queue,
            amqp_dlq,
            amqp_prefetch,
            short_term_window_turns,
            short_term_window_tokens,
            retention_secs
        );
        if o.queue.is_some() {
            self.queue = o.queue;
        }
        // An empty variable (`RABBITMQ_URL=`) means unset.
        if let Some(u) = o.rabbitmq_url.filter(|u| !u.trim().is_empty()) {
            self.rabbitmq_url = Some(u);
        }
        if o.llm_base_url.is_some() {
            self.llm_base_url = o.llm_base_url;
        }
        if o.llm_model.is_some() {
            self.llm_model = o.llm_model;
        }
        if let Some(u) = o.database_url.filter(|u| !u.trim().is_empty()) {
            self.database_url = Some(u);
        }
        if o.store.is_some() {
            self.store = o.store;
        }
        if let Some(v) = o.database_schema.filter(|v| !v.trim().is_empty()) {
            self.database_schema = Some(v);
        }
        if let Some(v) = o.database_max_connections {
            self.database_max_connections = v;
        }
        if let Some(v) = o.pgvector {
            self.pgvector = v;
        }
    }

    fn validate(&self) -> anyhow::Result<()> {
        if self.workers == 0 {
            bail!("workers must be at least 1");
        }
        if self.embed_threads == 0 {
            bail!("embed_threads must be at least 1");
        }
        if !matches!(self.embedder.as_str(), "minilm" | "hash") {
            bail!(
                "embedder must be `minilm` or `hash`, got {:?}",
                self.embedder
            );
        }
        if !matches!(self.sqlite_synchronous.as_str(), "normal" | "full") {
            bail!(
                "sqlite_synchronous must be `normal` or `full`, got {:?}",
                self.sqlite_synchronous
            );
        }
        if self.lease_secs == 0 {
            bail!("lease_secs must be at least 1 (a job's lease must outlive its processing)");
        }
        if self.retry_base_ms > self.retry_max_ms {
            bail!(
                "retry_base_ms ({}) must not exceed retry_max_ms ({})",
                self.retry_base_ms,
                self.retry_max_ms
            );
        }
        if self.short_term_window_turns == 0 || self.short_term_window_tokens < 100 {
            bail!(
                "short_term_window_turns must be at least 1 and short_term_window_tokens at least 100"
            );
        }
        if self.short_term_window_turns < self.short_term_turns {
            bail!(
                "short_term_window_turns ({}) must be at least short_term_turns ({}): recall shows the recent turns, the summary the ones folded out of the window",
                self.short_term_window_turns,
                self.short_term_turns
            );
        }
        if self.max_waiting_per_user == 0 || self.max_waiting_total == 0 {
            bail!("max_waiting_per_user and max_waiting_total must be at least 1");
        }
        if self.max_body_bytes < 1024 {
            bail!("max_body_bytes must be at least 1024");
        }
        if self.llm_base_url.is_some() != self.llm_model.is_some() {
            bail!(
                "LLM mode needs both llm_base_url (REFLECTOR_LLM_BASE_URL) and llm_model (REFLECTOR_LLM_MODEL)"
            );
        }
        self.check_exposure()?;
        if let Some(q) = &self.queue
            && !matches!(q.as_str(), "embedded" | "amqp")
        {
            bail!("queue (REFLECTOR_QUEUE) must be `embedded` or `amqp`, got {q:?}");
        }
        if let Some(url) = &self.rabbitmq_url {
            // The URL holds a password: messages show only its scheme.
            if url.starts_with("amqps://") {
                bail!(
                    "RABBITMQ_URL uses amqps://, but this build has no TLS for AMQP; use amqp:// (a trusted network or a TLS-terminating proxy)"
                );
            }
            if !url.starts_with("amqp://") {
                bail!(
                    "RABBITMQ_URL must start with amqp:// (e.g. amqp://user:password@host:5672/%2f)"
                );
            }
        }
        if self.queue.as_deref() == Some("amqp") && self.rabbitmq_url.is_none() {
            bail!(
                "queue (REFLECTOR_QUEUE) is `amqp` but RABBITMQ_URL is not set (e.g. amqp://user:password@host:5672/%2f)"
            );
        }
        for (key, v) in [
            ("amqp_exchange", &self.amqp_exchange),
            ("amqp_queue", &self.amqp_queue),
            ("amqp_dlq", &self.amqp_dlq),
        ] {
            if v.is_empty() || v.len() > 200 || v.chars().any(char::is_control) {
                bail!("{key} must be 1 to 200 bytes without control characters, got {v:?}");
            }
        }
        if self.amqp_queue == self.amqp_dlq {
            bail!(
                "amqp_queue and amqp_dlq must differ (both are {:?})",
                self.amqp_dlq
            );
        }
        if self.amqp_prefetch == 0 {
            bail!("amqp_prefetch must be at least 1");
        }
        if let Some(st) = &self.store
            && !matches!(st.as_str(), "sqlite" | "postgres")
        {
            bail!("store (REFLECTOR_STORE) must be `sqlite` or `postgres`, got {st:?}");
        }
        if self.store.as_deref() == Some("postgres") && self.database_url.is_none() {
            bail!(
                "store (REFLECTOR_STORE) is `postgres` but DATABASE_URL is not set (e.g. postgres://user:password@host:5432/reflector)"
            );
        }
        if let Some(url) = &self.database_url
            && !(url.starts_with("postgres://") || url.starts_with("postgresql://"))
        {
            // The URL holds a password: the message shows only what it should start with.
            bail!(
                "DATABASE_URL must start with postgres:// or postgresql:// (e.g. postgres://user:password@host:5432/reflector)"
            );
        }
        if !matches!(self.pgvector.as_str(), "auto" | "on" | "off") {
            bail!(
                "pgvector (REFLECTOR_PGVECTOR) must be `auto`, `on` or `off`, got {:?}",
                self.pgvector
            );
        }
        if self.database_max_connections == 0 {
            bail!("database_max_connections must be at least 1");
        }
        Ok(())
    }
}

/// Optional values from one source; `None` means "not set here".
#[derive(Debug, Clone, Default, Args)]
pub struct Overrides {
    /// HTTP listen address [default: 127.0.0.1:8080]
    #[arg(long, env = "REFLECTOR_LISTEN")]
    pub listen: Option<SocketAddr>,
    /// Data directory for the SQLite database [default: ./data]
    #[arg(long, env = "REFLECTOR_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// Concurrent reflection jobs [default: 4]
    #[arg(long, env = "REFLECTOR_WORKERS")]
    pub workers: Option<usize>,
    /// Fast path: answer 202 and reflect later [default: true]
    #[arg(long, env = "MEMORY_FAST_MODE", value_parser = clap::builder::BoolishValueParser::new())]
    pub fast_mode: Option<bool>,
    /// Asynchronous reflection on/off [default: true]
    #[arg(long, env = "REFLECTION_ENABLED", value_parser = clap::builder::BoolishValueParser::new())]
    pub reflection_enabled: Option<bool>,
    /// Largest request body in bytes [default: 1048576]
    #[arg(long, env = "REFLECTOR_MAX_BODY_BYTES")]
    pub max_body_bytes: Option<usize>,
    /// Job lease in seconds [default: 60]
    #[arg(long, env = "REFLECTOR_LEASE_SECS")]
    pub lease_secs: Option<u64>,
    /// First retry delay in ms [default: 1000]
    #[arg(long, env = "REFLECTOR_RETRY_BASE_MS")]
    pub retry_base_ms: Option<u64>,
    /// Longest retry delay in ms [default: 300000]
    #[arg(long, env = "REFLECTOR_RETRY_MAX_MS")]
    pub retry_max_ms: Option<u64>,
    /// Retries before a job is dead [default: 3]
    #[arg(long, env = "REFLECTOR_MAX_RETRIES")]
    pub max_retries: Option<u32>,
    /// Embedder: minilm or hash [default: minilm]
    #[arg(long, env = "REFLECTOR_EMBEDDER")]
    pub embedder: Option<String>,
    /// Directory with the MiniLM model files [default: the model cache]
    #[arg(long, env = "REFLECTOR_MODEL_DIR")]
    pub model_dir: Option<PathBuf>,
    /// Embedding threads [default: 2]
    #[arg(long, env = "REFLECTOR_EMBED_THREADS")]
    pub embed_threads: Option<usize>,
    /// Recent turns shown from Tier 1 [default: 10]
    #[arg(long, env = "REFLECTOR_SHORT_TERM_TURNS")]
    pub short_term_turns: Option<usize>,
    /// Turns shown around a recalled episode, each side [default: 1]
    #[arg(long, env = "REFLECTOR_RECALL_WINDOW")]
    pub recall_window: Option<usize>,
    /// Offer the MCP tool forget_user (deletes everything about the user) [default: false]
    #[arg(long, env = "REFLECTOR_MCP_ALLOW_FORGET")]
    pub mcp_allow_forget: Option<bool>,
    /// OpenAI-compatible API base for LLM mode, e.g. http://localhost:11434/v1
    #[arg(long, env = "REFLECTOR_LLM_BASE_URL")]
    pub llm_base_url: Option<String>,
    /// Chat model for LLM mode
    #[arg(long, env = "REFLECTOR_LLM_MODEL")]
    pub llm_model: Option<String>,
    /// LLM request timeout in seconds [default: 30]
    #[arg(long, env = "REFLECTOR_LLM_TIMEOUT_SECS")]
    pub llm_timeout_secs: Option<u64>,
    /// Characters per LLM request [default: 12000]
    #[arg(long, env = "REFLECTOR_LLM_MAX_INPUT_CHARS")]
    pub llm_max_input_chars: Option<usize>,
    /// SQLite synchronous mode: normal or full [default: normal]
    #[arg(long, env = "REFLECTOR_SQLITE_SYNCHRONOUS")]
    pub sqlite_synchronous: Option<String>,
    /// Queue age in seconds after which health says degraded [default: 120]
    #[arg(long, env = "REFLECTOR_LAG_DEGRADED_SECS")]
    pub lag_degraded_secs: Option<u64>,
    /// Tier 1 window in turns; older turns are folded into a summary [default: 200]
    #[arg(long, env = "REFLECTOR_SHORT_TERM_WINDOW_TURNS")]
    pub short_term_window_turns: Option<usize>,
    /// Tier 1 window in estimated tokens [default: 8000]
    #[arg(long, env = "REFLECTOR_SHORT_TERM_WINDOW_TOKENS")]
    pub short_term_window_tokens: Option<usize>,
    /// Prune completed jobs and reflected turns older than this many seconds; 0 keeps them [default: 0]
    #[arg(long, env = "REFLECTOR_RETENTION_SECS")]
    pub retention_secs: Option<u64>,
    /// Waiting reflection jobs per user before new turns get 429 [default: 10000]
    #[arg(long, env = "REFLECTOR_MAX_WAITING_PER_USER")]
    pub max_waiting_per_user: Option<u64>,
    /// Waiting reflection jobs in total before new turns get 429 [default: 100000]
    #[arg(long, env = "REFLECTOR_MAX_WAITING_TOTAL")]
    pub max_waiting_total: Option<u64>,
    /// RabbitMQ URL, amqp://user:password@host:5672/%2f (selects the amqp queue)
    #[arg(long, env = "RABBITMQ_URL", hide_env_values = true)]
    pub rabbitmq_url: Option<String>,
    /// Queue backend: embedded or amqp [default: amqp when RABBITMQ_URL is set, else embedded]
    #[arg(long, env = "REFLECTOR_QUEUE")]
    pub queue: Option<String>,
    /// RabbitMQ topic exchange [default: memory_reflection_exchange]
    #[arg(long, env = "REFLECTOR_AMQP_EXCHANGE")]
    pub amqp_exchange: Option<String>,
    /// RabbitMQ intake queue [default: memory_reflection_queue]
    #[arg(long, env = "REFLECTOR_AMQP_QUEUE")]
    pub amqp_queue: Option<String>,
    /// RabbitMQ dead-letter queue [default: memory_reflection_dlq]
    #[arg(long, env = "REFLECTOR_AMQP_DLQ")]
    pub amqp_dlq: Option<String>,
    /// RabbitMQ prefetch per consumer [default: 8]
    #[arg(long, env = "REFLECTOR_AMQP_PREFETCH")]
    pub amqp_prefetch: Option<u16>,
    /// PostgreSQL URL, postgres://user:password@host:5432/db (selects the postgres store)
    #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<String>,
    /// Store backend: sqlite or postgres [default: postgres when DATABASE_URL is set, else sqlite]
    #[arg(long, env = "REFLECTOR_STORE")]
    pub store: Option<String>,
    /// PostgreSQL schema for the tables, created when missing [default: public]
    #[arg(long, env = "REFLECTOR_DATABASE_SCHEMA")]
    pub database_schema: Option<String>,
    /// PostgreSQL connections per process [default: 16]
    #[arg(long, env = "REFLECTOR_DATABASE_MAX_CONNECTIONS")]
    pub database_max_connections: Option<u32>,
    /// pgvector: auto, on or off [default: auto]
    #[arg(long, env = "REFLECTOR_PGVECTOR")]
    pub pgvector: Option<String>,
}

/// Flags shared by every command that runs the service.
#[derive(Debug, Clone, Default, Args)]
pub struct ConfigArgs {
    /// TOML configuration file (keys as in reflector.example.toml; unknown keys are errors)
    #[arg(long, env = "REFLECTOR_CONFIG", global = true)]
    pub config: Option<PathBuf>,
    #[command(flatten)]
    pub overrides: Overrides,
}

/// The TOML file's shape: the same keys as [`Config`], all optional.
#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct ConfigFile {
    listen: Option<SocketAddr>,
    data_dir: Option<PathBuf>,
    workers: Option<usize>,
    fast_mode: Option<bool>,
    reflection_enabled: Option<bool>,
    max_body_bytes: Option<usize>,
    lease_secs: Option<u64>,
    retry_base_ms: Option<u64>,
    retry_max_ms: Option<u64>,
    max_retries: Option<u32>,
    embedder: Option<String>,
    model_dir: Option<PathBuf>,
    embed_threads: Option<usize>,
    short_term_turns: Option<usize>,
    recall_window: Option<usize>,
    mcp_allow_forget: Option<bool>,
    llm_base_url: Option<String>,
    llm_model: Option<String>,
    llm_timeout_secs: Option<u64>,
    llm_max_input_chars: Option<usize>,
    sqlite_synchronous: Option<String>,
    lag_degraded_secs: Option<u64>,
    max_waiting_per_user: Option<u64>,
    max_waiting_total: Option<u64>,
    queue: Option<String>,
    amqp_exchange: Option<String>,
    amqp_queue: Option<String>,
    amqp_dlq: Option<String>,
    amqp_prefetch: Option<u16>,
    short_term_window_turns: Option<usize>,
    short_term_window_tokens: Option<usize>,
    retention_secs: Option<u64>,
    store: Option<String>,
    database_schema: Option<String>,
    database_max_connections: Option<u32>,
    pgvector: Option<String>,
}

impl ConfigFile {
    fn read(path: &Path) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read config file {}", path.display()))?;
        toml::from_str(&text).with_context(|| format!("invalid config file {}", path.display()))
    }

    fn into_overrides(self) -> Overrides {
        Overrides {
            listen: self.listen,
            data_dir: self.data_dir,
            workers: self.workers,
            fast_mode: self.fast_mode,
            reflection_enabled: self.reflection_enabled,
            max_body_bytes: self.max_body_bytes,
            lease_secs: self.lease_secs,
            retry_base_ms: self.retry_base_ms,
            retry_max_ms: self.retry_max_ms,
            max_retries: self.max_retries,
            embedder: self.embedder,
            model_dir: self.model_dir,
            embed_threads: self.embed_threads,
            short_term_turns: self.short_term_turns,
            recall_window: self.recall_window,
            mcp_allow_forget: self.mcp_allow_forget,
            llm_base_url: self.llm_base_url,
            llm_model: self.llm_model,
            llm_timeout_secs: self.llm_timeout_secs,
            llm_max_input_chars: self.llm_max_input_chars,
            sqlite_synchronous: self.sqlite_synchronous,
            lag_degraded_secs: self.lag_degraded_secs,
            max_waiting_per_user: self.max_waiting_per_user,
            max_waiting_total: self.max_waiting_total,
            short_term_window_turns: self.short_term_window_turns,
            short_term_window_tokens: self.short_term_window_tokens,
            retention_secs: self.retention_secs,
            rabbitmq_url: None,
            queue: self.queue,
            amqp_exchange: self.amqp_exchange,
            amqp_queue: self.amqp_queue,
            amqp_dlq: self.amqp_dlq,
            amqp_prefetch: self.amqp_prefetch,
            database_url: None,
            store: self.store,
            database_schema: self.database_schema,
            database_max_connections: self.database_max_connections,
            pgvector: self.pgvector,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_beat_file_beat_defaults() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r.toml");
        std::fs::write(&path, "workers = 7\nlease_secs = 9\n").unwrap();
        let args = ConfigArgs {
            config: Some(path),
            overrides: Overrides {
                workers: Some(2),
                ..Default::default()
            },
        };
        let cfg = Config::load(&args).unwrap();
        assert_eq!(cfg.workers, 2);
        assert_eq!(cfg.lease_secs, 9);
        assert_eq!(cfg.max_retries, 3);
    }

    #[test]
    fn the_example_file_is_valid_and_matches_the_defaults() {
        let args = ConfigArgs {
            config: Some(concat!(env!("CARGO_MANIFEST_DIR"), "/reflector.example.toml").into()),
            ..Default::default()
        };
        let cfg = Config::load(&args).unwrap();
        let d = Config::default();
        assert_eq!(
            (
                cfg.listen,
                cfg.workers,
                cfg.lease_secs,
                cfg.max_retries,
                cfg.recall_window,
                cfg.queue_limits()
            ),
            (
                d.listen,
                d.workers,
                d.lease_secs,
                d.max_retries,
                d.recall_window,
                d.queue_limits()
            )
        );
    }

    #[test]
    fn rabbitmq_url_alone_selects_amqp_and_errors_never_show_it() {
        let load = |o: Overrides| {
            Config::load(&ConfigArgs {
                config: None,
                overrides: o,
            })
        };
        let cfg = load(Overrides {
            rabbitmq_url: Some("amqp://u:pw@h/".into()),
            ..Default::default()
        })
        .unwrap();
        assert!(cfg.uses_amqp());
        let cfg = load(Overrides {
            rabbitmq_url: Some("amqp://u:pw@h/".into()),
            queue: Some("embedded".into()),
            ..Default::default()
        })
        .unwrap();
        assert!(!cfg.uses_amqp());
        let e = format!(
            "{:#}",
            load(Overrides {
                queue: Some("amqp".into()),
                ..Default::default()
            })
            .unwrap_err()
        );
        assert!(e.contains("RABBITMQ_URL"), "{e}");
        let e = format!(
            "{:#}",
            load(Overrides {
                rabbitmq_url: Some("http://u:secretpw@h/".into()),
                ..Default::default()
            })
            .unwrap_err()
        );
        assert!(e.contains("amqp://") && !e.contains("secretpw"), "{e}");
        let e = format!(
            "{:#}",
            load(Overrides {
                queue: Some("kafka".into()),
                ..Default::default()
            })
            .unwrap_err()
        );
        assert!(e.contains("REFLECTOR_QUEUE"), "{e}");
    }

    #[test]
    fn unknown_key_in_file_is_an_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r.toml");
        std::fs::write(&path, "wrokers = 7\n").unwrap();
        let args = ConfigArgs {
            config: Some(path),
            ..Default::default()
        };
        let err = format!("{:#}", Config::load(&args).unwrap_err());
        assert!(err.contains("wrokers"), "{err}");
    }
}
