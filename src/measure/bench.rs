//! `reflector bench [--json] [--quick]`: the performance benchmark of issue 5.
//!
//! Starts everything it measures itself, in this process, on loopback: in-process
//! [`Service`]s on `127.0.0.1:0` with their data in a temporary directory, all sharing ONE
//! [`EmbedService`] built from the config (MiniLM from the model cache by default;
//! `REFLECTOR_EMBEDDER=hash` for smoke runs). The HTTP client is reqwest with keep-alive, in
//! the same process, so client and server share the machine's cores (as a chat backend on the
//! same host would).
//!
//! Services:
//! - `fast`: embedded defaults, workers started paused (the pause switch,
//!   [`Service::pause_workers`]), resumed for the "workers running" rows;
//! - `traditional`: `fast_mode = false` — the three processors run inside the request;
//! - `reflect`: queue N jobs paused, resume, time until all are completed; then the lag run;
//! - `recall`: no workers; users seeded with 1k / 10k / 100k synthetic episodes.
//!
//! Rows (see docs/BENCHMARKS.md for what each means):
//! 1. store latency/throughput: fast vs traditional (sequential, one client), fast path
//!    open loop at 100 and 1,000 turns/s (sends scheduled on a timer thread, latency measured
//!    from the *scheduled* time, so queueing is not hidden by coordinated omission), closed
//!    loop saturation with 32 clients — each with workers paused and running; before each
//!    open loop with workers paused, its HTTP floor (rows 1c0, 1d0): the same POSTs without
//!    `user_id`, answered 422 by validation without touching the store, at the same rate,
//!    so the store's share of the latency is the difference (JSON `http_floor_p99_ms`);
//! 2. reflection: raw MiniLM sentences/s through the same pool, jobs/s at saturation,
//!    embeddings per job (counted by a wrapper around the embedder), lag from POST to job
//!    completed at half the saturation rate;
//! 3. recall p50/p99 through `GET /api/memory/context/{user}` (query embedding included);
//!    search through REST and through the MCP tool, side by side (rows 3f, 3g);
//! 4. peak RSS (`VmHWM`) of this process, which holds every service and the client.
//!
//! `--json` ends the output with one JSON line of the headline figures. The exit code is 0
//! when every target of the issue is met, 1 when one is missed (they are listed), 2 on error.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context as _, bail};
use axum::body::Bytes;
use serde_json::{Value, json};

use reflector::config::{Config, ConfigArgs};
use reflector::embed::EmbedService;
use reflector::seams::Seams;
use reflector::server::{Options, Service};

/// `reflector bench` flags.
#[derive(Debug, Clone, clap::Args)]
pub struct BenchArgs {
    /// End the output with one JSON line of the headline figures.
    #[arg(long)]
    pub json: bool,
    /// Small sizes and short runs (a smoke test: the figures are not comparable with the
    /// targets; recall uses 100 / 1k / 10k episodes instead of 1k / 10k / 100k).
    #[arg(long)]
    pub quick: bool,
    /// Run one section only (for profiling); the other figures are null in the JSON line.
    #[arg(long, value_enum)]
    pub only: Option<Section>,
    #[command(flatten)]
    pub config: ConfigArgs,
}

pub use super::bench_keys::JSON_KEYS;

struct Sizes {
    /// Sequential fast-path requests (one client).
    seq_fast: usize,
    /// Sequential traditional-path requests (one client).
    seq_traditional: usize,
    /// Seconds of each open-loop run.
    open_secs: f64,
    /// Seconds of each saturation run.
    sat_secs: f64,
    /// Closed-loop clients at saturation.
    sat_clients: usize,
    /// Jobs queued for the reflection-rate run.
    reflect_jobs: usize,
    /// Sentences for the raw embedding rate.
    embed_sentences: usize,
    /// Seconds of the lag run.
    lag_secs: f64,
    /// Episodes per recall user: the rows "1k", "10k", "100k".
    recall_sizes: [usize; 3],
    /// Recall queries per size.
    recall_queries: usize,
}

const FULL: Sizes = Sizes {
    seq_fast: 2000,
    seq_traditional: 200,
    open_secs: 5.0,
    sat_secs: 5.0,
    sat_clients: 32,
    reflect_jobs: 600,
    embed_sentences: 384,
    lag_secs: 20.0,
    recall_sizes: [1_000, 10_000, 100_000],
    recall_queries: 200,
};

const QUICK: Sizes = Sizes {
    seq_fast: 200,
    seq_traditional: 20,
    open_secs: 1.0,
    sat_secs: 1.0,
    sat_clients: 32,
    reflect_jobs: 40,
    embed_sentences: 64,
    lag_secs: 2.0,
    recall_sizes: [100, 1_000, 10_000],
    recall_queries: 20,
};

// ------------------------------------------------------------------------ measurements

/// Latencies (ms) of one run, with its wall time.
#[derive(Debug, Default, Clone)]
struct Lat {
    ms: Vec<f64>,
    errors: usize,
    secs: f64,
}

impl Lat {
    fn sorted(mut self) -> Self {
        self.ms.sort_by(f64::total_cmp);
        self
    }

    /// Nearest-rank percentile (`q` in 0..=1) of sorted samples; NaN when empty.
    fn p(&self, q: f64) -> f64 {
        if self.ms.is_empty() {
            return f64::NAN;
        }
        let rank = ((q * self.ms.len() as f64).ceil() as usize).clamp(1, self.ms.len());
        self.ms[rank - 1]
    }

    /// Completed requests per second.
    fn rate(&self) -> f64 {
        if self.secs > 0.0 {
            self.ms.len() as f64 / self.secs
        } else {
            f64::NAN
        }
    }
}

/// Removes the benchmark's data directory when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> anyhow::Result<Self> {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        let p =
            std::env::temp_dir().join(format!("reflector-bench-{}-{nanos}", std::process::id()));
        std::fs::create_dir_all(&p).with_context(|| format!("creating {}", p.display()))?;
        Ok(Self(p))
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn wall_ms() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64() * 1000.0)
        .unwrap_or(0.0)
}

fn ms_since(t: Instant) -> f64 {
    t.elapsed().as_secs_f64() * 1000.0
}

// ------------------------------------------------------------------------ synthetic data

const NAMES: [&str; 12] = [
    "Maria", "Tom", "Lucia", "Kenji", "Aisha", "Omar", "Sofia", "Liam", "Chen", "Priya", "Noah",
    "Elena",
];
const CITIES: [&str; 12] = [
    "Berlin", "Lisbon", "Osaka", "Toronto", "Nairobi", "Lima", "Oslo", "Hanoi", "Paris", "Madrid",
    "Seattle", "Cairo",
];
const FOODS: [&str; 8] = [
    "sushi",
    "peanuts",
    "lasagna",
    "mango",
    "shellfish",
    "tofu",
    "ramen",
    "chocolate",
];
const ACTIVITIES: [&str; 8] = [
    "hiking", "climbing", "swimming", "painting", "cycling", "running", "sailing", "chess",
];
const LANGS: [&str; 5] = ["German", "Spanish", "French", "Portuguese", "Japanese"];
const WHEN: [&str; 6] = [
    "yesterday",
    "last week",
    "two weeks ago",
    "last month",
    "on Saturday",
    "three days ago",
];
const JOBS: [&str; 6] = [
    "nurse",
    "data analyst",
    "teacher",
    "carpenter",
    "architect",
    "chef",
];
const PETS: [&str; 6] = ["Miso", "Pepper", "Biscuit", "Luna", "Rocky", "Nori"];
const REPLIES: [&str; 5] = [
    "That sounds great! Tell me more.",
    "Noted, I will keep that in mind.",
    "Congratulations, that is big news!",
    "Sure, I can do that.",
    "Thanks for letting me know.",
];

fn pick<'a>(rng: &mut fastrand::Rng, xs: &[&'a str]) -> &'a str {
    xs[rng.usize(..xs.len())]
}

/// One user message like a chat turn: life events, plans, preferences and rules, some small
/// talk, of varied length.
fn message(rng: &mut fastrand::Rng) -> String {
    let (name, city, food) = (pick(rng, &NAMES), pick(rng, &CITIES), pick(rng, &FOODS));
    let (act, when, lang) = (pick(rng, &ACTIVITIES), pick(rng, &WHEN), pick(rng, &LANGS));
    match rng.usize(..12) {
        0 => format!(
            "I moved to {city} {when} and I'm still looking for a good {food} place nearby."
        ),
        1 => format!("My sister {name} visited me {when} and we went {act} together near {city}."),
        2 => format!("Please always answer me in {lang} from now on, I'm practising."),
        3 => format!("I'm allergic to {food}, so never suggest recipes that contain it."),
        4 => format!(
            "I started a new job as a {} in {city} {when}. It's tiring but I like my team a lot.",
            pick(rng, &JOBS)
        ),
        5 => format!("{name} and I are planning a trip to {city} next month to go {act}."),
        6 => format!("My mom {name} is coming to visit next week, she has never been to {city}."),
        7 => format!(
            "I adopted a dog named {} {when}; he loves going {act} with me.",
            pick(rng, &PETS)
        ),
        8 => "Just a quick note: I prefer short answers without bullet points.".to_string(),
        9 => "Hi! How are you today?".to_string(),
        10 => format!(
            "I finished a painting of the harbour in {city} {when}. I'm also learning {lang} in the evenings with my friend {name}, which is hard but a lot of fun, and we want to visit {} together in the spring.",
            pick(rng, &CITIES)
        ),
        _ => format!("My favourite food is {food} and I usually cook it on Sundays with {name}."),
    }
}

/// `n` request bodies for `POST /api/interactions`, spread over `users` users.
fn turn_bodies(n: usize, users: usize, prefix: &str, seed: u64) -> Vec<Bytes> {
    let mut rng = fastrand::Rng::with_seed(seed);
    let base = chrono::DateTime::parse_from_rfc3339("2024-05-01T09:00:00Z")
        .expect("static timestamp")
        .with_timezone(&chrono::Utc);
    (0..n)
        .map(|i| {
            let u = i % users.max(1);
            let ts = base + chrono::Duration::seconds(i as i64 * 7);
            let body = json!({
                "user_id": format!("{prefix}-{u}"),
                "session_id": format!("s{}", i / 50),
                "user_message": message(&mut rng),
                "assistant_response": pick(&mut rng, &REPLIES),
                "timestamp": reflector::job::format_timestamp(&ts),
                "metadata": {"speaker": NAMES[u % NAMES.len()]},
            });
            Bytes::from(body.to_string())
        })
        .collect()
}

/// The same bodies without `user_id`: the API answers 422 after parsing and validating,
/// without touching the store (the HTTP floor rows).
fn without_user_id(bodies: &[Bytes]) -> Vec<Bytes> {
    bodies
        .iter()
        .map(|b| {
            let mut v: Value = serde_json::from_slice(b).expect("bench bodies are JSON");
            if let Some(o) = v.as_object_mut() {
                o.remove("user_id");
            }
            Bytes::from(v.to_string())
        })
        .collect()
}

/// A random unit vector of `dim` floats.
fn random_unit(rng: &mut fastrand::Rng, dim: usize) -> Vec<f32> {
    let mut v: Vec<f32> = (0..dim).map(|_| rng.f32() - 0.5).collect();
    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt().max(1e-12);
    v.iter_mut().for_each(|x| *x /= norm);
    v
}

const RECALL_QUERIES: [&str; 10] = [
    "Where did I go hiking with Maria?",
    "What am I allergic to?",
    "When did I move to Lisbon?",
    "Which language should you answer in?",
    "What is the name of my dog?",
    "Who visited me last month?",
    "What job did I start in Toronto?",
    "What do I cook on Sundays?",
    "Where are we planning a trip next month?",
    "What did I paint in Oslo?",
];

// ------------------------------------------------------------------------ HTTP load

/// What an open-loop request must get back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expect {
    /// 200 or 202: the turn was stored (the fast or the traditional path).
    Stored,
    /// 422: the body was rejected by validation before the store was touched (the HTTP
    /// floor rows, whose bodies lack `user_id`).
    Rejected,
}

/// POST one turn; returns the reflection job id. Any status but 200/202 is an error.
async fn post_turn(c: &reqwest::Client, url: &str, body: Bytes) -> anyhow::Result<String> {
    post_expecting(c, url, body, Expect::Stored).await
}

/// POST one body; returns the reflection job id for a stored turn ("" for a rejected one).
/// A status other than the expected one is an error.
async fn post_expecting(
    c: &reqwest::Client,
    url: &str,
    body: Bytes,
    expect: Expect,
) -> anyhow::Result<String> {
    let r = c
        .post(url)
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await?;
    let status = r.status().as_u16();
    let bytes = r.bytes().await?;
    let ok = match expect {
        Expect::Stored => status == 202 || status == 200,
        Expect::Rejected => status == 422,
    };
    if !ok {
        bail!("status {status}: {}", String::from_utf8_lossy(&bytes));
    }
    // The job id is a fixed-shape string field; avoid a full JSON parse on the hot path.
    let text = std::str::from_utf8(&bytes).unwrap_or("");
    Ok(text
        .split("\"reflection_job_id\":\"")
        .nth(1)
        .and_then(|r| r.split('"').next())
        .unwrap_or("")
        .to_string())
}

/// Closed loop: `clients` tasks each send back-to-back until `total` requests were sent or
/// `dur` elapsed. Latency = send to response read.
async fn closed_loop(
    c: &reqwest::Client,
    url: &str,
    bodies: &Arc<Vec<Bytes>>,
    clients: usize,
    total: usize,
    dur: Duration,
) -> Lat {
    let start = Instant::now();
    let deadline = start + dur;
    let next = Arc::new(AtomicU64::new(0));
    let tasks: Vec<_> = (0..clients)
        .map(|_| {
            let (c, url, bodies, next) = (c.clone(), url.to_string(), bodies.clone(), next.clone());
            tokio::spawn(async move {
                let mut lat = Lat::default();
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed) as usize;
                    if i >= total || Instant::now() >= deadline {
                        break;
                    }
                    let t = Instant::now();
                    match post_turn(&c, &url, bodies[i % bodies.len()].clone()).await {
                        Ok(_) => lat.ms.push(ms_since(t)),
                        Err(e) => {
                            if lat.errors == 0 {
                                tracing::warn!(error = %format!("{e:#}"), "bench request failed");
                            }
                            lat.errors += 1;
                        }
                    }
                }
                lat
            })
        })
        .collect();
    let mut all = Lat::default();
    for t in tasks {
        if let Ok(l) = t.await {
            all.ms.extend(l.ms);
            all.errors += l.errors;
        }
    }
    all.secs = start.elapsed().as_secs_f64();
    all.sorted()
}

/// Open loop: request `i` is scheduled at `start + i / rate` by a timer thread (precise
/// sleeps, not tokio's 1 ms wheel) and sent at once in its own task whatever the others are
/// doing; latency is measured from the scheduled time to the response, so a server that
/// falls behind shows its queueing delay (no coordinated omission). Returns the latencies
/// and, per request, (job id, scheduled wall-clock ms, latency ms); a request that does not
/// get the status `expect` asks for counts as an error.
async fn open_loop(
    c: &reqwest::Client,
    url: &str,
    bodies: &Arc<Vec<Bytes>>,
    rate: f64,
    secs: f64,
    expect: Expect,
) -> anyhow::Result<(Lat, Vec<(String, f64, f64)>)> {
    let n = ((rate * secs).round() as usize).max(1);
    let handle = tokio::runtime::Handle::current();
    let start = Instant::now() + Duration::from_millis(20);
    let wall0 = wall_ms() + 20.0;
    let (c2, url2, bodies2) = (c.clone(), url.to_string(), bodies.clone());
    let tasks = tokio::task::spawn_blocking(move || {
        let mut tasks = Vec::with_capacity(n);
        for i in 0..n {
            let offset = Duration::from_secs_f64(i as f64 / rate);
            let at = start + offset;
            let now = Instant::now();
            if at > now {
                std::thread::sleep(at - now);
            }
            let (c, url, body) = (c2.clone(), url2.clone(), bodies2[i % bodies2.len()].clone());
            let scheduled_wall = wall0 + offset.as_secs_f64() * 1000.0;
            tasks.push(handle.spawn(async move {
                let r = post_expecting(&c, &url, body, expect).await;
                (r, at.elapsed().as_secs_f64() * 1000.0, scheduled_wall)
            }));
        }
        tasks
    })
    .await?;
    let mut lat = Lat::default();
    let mut jobs = Vec::with_capacity(n);
    for t in tasks {
        let (r, ms, scheduled) = t.await?;
        match r {
            Ok(job) => {
                lat.ms.push(ms);
                jobs.push((job, scheduled, ms));
            }
            Err(e) => {
                if lat.errors == 0 {
                    tracing::warn!(error = %format!("{e:#}"), "bench request failed");
                }
                lat.errors += 1;
            }
        }
    }
    lat.secs = start.elapsed().as_secs_f64();
    Ok((lat.sorted(), jobs))
}

/// Jobs by state, from the store.
async fn job_counts(svc: &Service) -> anyhow::Result<std::collections::HashMap<String, i64>> {
    svc.store.run(|s| s.job_counts(None)).await
}

/// Wait until `n` jobs are completed or dead (or `timeout`); returns (completed, dead).
async fn wait_jobs(svc: &Service, n: i64, timeout: Duration) -> anyhow::Result<(i64, i64)> {
    let deadline = Instant::now() + timeout;
    loop {
        let c = job_counts(svc).await?;
        let done = c.get("completed").copied().unwrap_or(0);
        let dead = c.get("dead").copied().unwrap_or(0);
        if done + dead >= n || Instant::now() >= deadline {
            return Ok((done, dead));
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Run `load` against `svc` and count the jobs completed meanwhile: (its result, jobs).
async fn with_jobs_done<T>(
    svc: &Service,
    load: impl std::future::Future<Output = anyhow::Result<T>>,
) -> anyhow::Result<(T, i64)> {
    let completed = |c: std::collections::HashMap<String, i64>| c.get("completed").copied();
    let before = completed(job_counts(svc).await?).unwrap_or(0);
    let out = load.await?;
    let after = completed(job_counts(svc).await?).unwrap_or(0);
    Ok((out, after - before))
}

/// Closed-loop saturation of `url` with `sizes.sat_clients` clients for `sizes.sat_secs`.
async fn saturate(ctx: &Ctx, url: &str, bodies: &Arc<Vec<Bytes>>) -> Lat {
    closed_loop(
        &ctx.client,
        url,
        bodies,
        ctx.sizes.sat_clients,
        usize::MAX,
        Duration::from_secs_f64(ctx.sizes.sat_secs),
    )
    .await
}

/// The rate column's tail for a row with the workers running: how many jobs completed.
fn reflected_note(running: bool, done: i64) -> String {
    if running {
        format!("; {done} jobs reflected meanwhile")
    } else {
        String::new()
    }
}

fn peak_rss_mb() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map(|kb| kb / 1024.0)
        .unwrap_or(f64::NAN)
}

/// Hand the heap pages freed by the services of a finished section back to the OS (glibc
/// keeps them otherwise), so that the peak RSS of a later section is that of one service,
/// not of every service this process ran before it.
fn release_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        unsafe extern "C" {
            fn malloc_trim(pad: usize) -> i32;
        }
        // SAFETY: glibc's malloc_trim only releases free memory; it is thread-safe.
        unsafe {
            malloc_trim(0);
        }
    }
}

// ------------------------------------------------------------------------ the run

struct Table {
    rows: Vec<[String; 7]>,
}

impl Table {
    fn row(&mut self, id: &str, what: &str, lat: Option<&Lat>, rate: String, target: String) {
        let f = |v: f64| {
            if v.is_finite() {
                format!("{v:.2}")
            } else {
                "–".into()
            }
        };
        let (p50, p95, p99) = match lat {
            Some(l) => (f(l.p(0.5)), f(l.p(0.95)), f(l.p(0.99))),
            None => ("".into(), "".into(), "".into()),
        };
        self.rows
            .push([id.into(), what.into(), p50, p95, p99, rate, target]);
    }

    fn render(&self) -> String {
        let head = [
            "#",
            "measurement",
            "p50 ms",
            "p95 ms",
            "p99 ms",
            "rate / figure",
            "target",
        ];
        let mut out = format!("| {} |\n", head.join(" | "));
        out.push_str(&format!("|{}\n", "---|".repeat(head.len())));
        for r in &self.rows {
            out.push_str(&format!("| {} |\n", r.join(" | ")));
        }
        out
    }
}

fn verdict(ok: bool) -> &'static str {
    if ok { "met" } else { "MISSED" }
}

async fn start_service(
    base: &Config,
    dir: &std::path::Path,
    name: &str,
    edit: impl FnOnce(&mut Config),
    opts: Options,
) -> anyhow::Result<Service> {
    let mut cfg = base.clone();
    cfg.listen = "127.0.0.1:0".parse().expect("static address");
    cfg.data_dir = dir.join(name);
    edit(&mut cfg);
    Service::start(cfg, opts).await
}

fn progress(msg: &str) {
    eprintln!("bench: {msg}");
}

/// What every section shares.
struct Ctx {
    base: Config,
    dir: PathBuf,
    embed: EmbedService,
    /// Texts embedded so far (through `embed`).
    embedded: Arc<AtomicU64>,
    client: reqwest::Client,
    sizes: &'static Sizes,
}

impl Ctx {
    fn options(&self, start_paused: bool, no_workers: bool) -> Options {
        Options {
            no_workers,
            seams: Seams {
                start_paused,
                embed: Some(self.embed.clone()),
                ..Seams::default()
            },
            ..Options::default()
        }
    }
}

/// The headline figures (the JSON line), NaN until measured.
struct Headline {
    fast_p99: f64,
    fast_p99_running: f64,
    trad_p50: f64,
    ratio: f64,
    sat: f64,
    sat_running: f64,
    jobs_rate: f64,
    embed_rate: f64,
    per_job: f64,
    lag_p99: f64,
    recall_p99_10k: f64,
    recall_p99_100k: f64,
    rss: f64,
    /// Figures beyond the names (RabbitMQ rows), in the order measured.
    extra: Vec<(&'static str, f64)>,
}

impl Headline {
    fn new() -> Self {
        let n = f64::NAN;
        Self {
            fast_p99: n,
            fast_p99_running: n,
            trad_p50: n,
            ratio: n,
            sat: n,
            sat_running: n,
            jobs_rate: n,
            embed_rate: n,
            per_job: n,
            lag_p99: n,
            recall_p99_10k: n,
            recall_p99_100k: n,
            rss: n,
            extra: Vec::new(),
        }
    }

    fn json(&self) -> Value {
        let vals = [
            self.fast_p99,
            self.fast_p99_running,
            self.trad_p50,
            self.ratio,
            self.sat,
            self.sat_running,
            self.jobs_rate,
            self.embed_rate,
            self.per_job,
            self.lag_p99,
            self.recall_p99_10k,
            self.recall_p99_100k,
            self.rss,
        ];
        let mut m = serde_json::Map::new();
        let extra = self.extra.iter().map(|(k, v)| (*k, *v));
        for (k, v) in JSON_KEYS.iter().copied().zip(vals).chain(extra) {
            m.insert(k.to_string(), json!((v * 1000.0).round() / 1000.0));
        }
        Value::Object(m)
    }
}

/// The table and the targets missed so far.
struct Report {
    table: Table,
    missed: Vec<String>,
}

impl Report {
    /// Record a target: `ok`, else `miss` joins the list of missed targets. Returns the
    /// target column's text.
    fn target(&mut self, ok: bool, text: &str, miss: String) -> String {
        if !ok {
            self.missed.push(miss);
        }
        format!("{text}: {}", verdict(ok))
    }
}

fn running_label(running: bool) -> &'static str {
    if running {
        "workers running"
    } else {
        "workers paused"
    }
}

/// Section 1: the store path.
async fn store_section(ctx: &Ctx, h: &mut Headline, rep: &mut Report) -> anyhow::Result<()> {
    let sizes = ctx.sizes;
    let fast = start_service(
        &ctx.base,
        &ctx.dir,
        "fast",
        |c| c.fast_mode = true,
        ctx.options(true, false),
    )
    .await?;
    let trad = start_service(
        &ctx.base,
        &ctx.dir,
        "traditional",
        |c| c.fast_mode = false,
        ctx.options(false, true),
    )
    .await?;
    let client = &ctx.client;
    let fast_url = format!("http://{}/api/interactions", fast.addr);
    let trad_url = format!("http://{}/api/interactions", trad.addr);
    let bodies = Arc::new(turn_bodies(20_000, 50, "bench-user", 1));
    let trad_bodies = Arc::new(turn_bodies(sizes.seq_traditional + 20, 10, "bench-trad", 2));

    progress("warming up");
    closed_loop(client, &fast_url, &bodies, 4, 400, Duration::from_secs(10)).await;
    closed_loop(
        client,
        &trad_url,
        &trad_bodies,
        1,
        5,
        Duration::from_secs(30),
    )
    .await;

    progress("fast vs traditional, sequential");
    let seq_fast = closed_loop(
        client,
        &fast_url,
        &bodies,
        1,
        sizes.seq_fast,
        Duration::from_secs(60),
    )
    .await;
    let seq_trad = closed_loop(
        client,
        &trad_url,
        &trad_bodies,
        1,
        sizes.seq_traditional,
        Duration::from_secs(120),
    )
    .await;
    h.trad_p50 = seq_trad.p(0.5);
    h.ratio = seq_trad.p(0.5) / seq_fast.p(0.5);
    rep.table.row(
        "1a",
        "store, fast path, 1 client sequential, workers paused",
        Some(&seq_fast),
        format!("{:.0} turns/s", seq_fast.rate()),
        String::new(),
    );
    let ratio = h.ratio;
    let target = rep.target(
        ratio >= 50.0,
        ">= 50x",
        format!("fast_vs_traditional_ratio {ratio:.1} < 50"),
    );
    rep.table.row(
        "1b",
        "store, traditional path (processors inline), 1 client sequential",
        Some(&seq_trad),
        format!(
            "{:.0} turns/s; traditional p50 / fast p50 = **{ratio:.0}x**",
            seq_trad.rate()
        ),
        target,
    );

    // (workers running, rate, latencies, jobs done meanwhile, the HTTP floor measured
    // just before: only with the workers paused)
    let mut open_rows = Vec::new();
    let mut sat_rows = Vec::new();
    let rejected = Arc::new(without_user_id(&bodies[..2_000.min(bodies.len())]));
    for running in [false, true] {
        let label = running_label(running);
        if running {
            fast.pause_workers(false);
            // Let the workers get going on the backlog queued so far.
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        for rate in [100.0, 1000.0] {
            let floor = if running {
                None
            } else {
                progress(&format!("HTTP floor, open loop {rate}/s"));
                let (floor, _) = open_loop(
                    client,
                    &fast_url,
                    &rejected,
                    rate,
                    sizes.open_secs,
                    Expect::Rejected,
                )
                .await?;
                Some(floor)
            };
            progress(&format!("open loop {rate}/s, {label}"));
            let ((lat, _), done) = with_jobs_done(
                &fast,
                open_loop(
                    client,
                    &fast_url,
                    &bodies,
                    rate,
                    sizes.open_secs,
                    Expect::Stored,
                ),
            )
            .await?;
            open_rows.push((running, rate, lat, done, floor));
        }
        progress(&format!(
            "saturation, {} clients, {label}",
            sizes.sat_clients
        ));
        let (sat, done) =
            with_jobs_done(&fast, async { Ok(saturate(ctx, &fast_url, &bodies).await) }).await?;
        sat_rows.push((running, sat, done));
    }
    fast.shutdown(Duration::from_secs(30)).await?;
    trad.shutdown(Duration::from_secs(30)).await?;

    for (i, (running, rate, lat, done, floor)) in open_rows.iter().enumerate() {
        let extra = reflected_note(*running, *done);
        let target = if *rate == 1000.0 {
            let p99 = lat.p(0.99);
            let (limit, key) = if *running {
                h.fast_p99_running = p99;
                (10.0, "fast_p99_ms_workers_running")
            } else {
                h.fast_p99 = p99;
                (2.0, "fast_p99_ms")
            };
            rep.target(
                p99 <= limit && lat.errors == 0,
                &format!("p99 <= {limit} ms"),
                format!("{key} {p99:.2} > {limit}"),
            )
        } else {
            String::new()
        };
        let id = format!("1{}", (b'c' + i as u8) as char);
        rep.table.row(
            &id,
            &format!(
                "fast path, open loop {rate:.0} turns/s, {}",
                running_label(*running)
            ),
            Some(lat),
            format!(
                "{:.0} turns/s achieved, {} errors{extra}",
                lat.rate(),
                lat.errors
            ),
            target,
        );
        if let Some(floor) = floor {
            if *rate == 1000.0 {
                h.extra.push(("http_floor_p99_ms", floor.p(0.99)));
            }
            rep.table.row(
                &format!("{id}0"),
                &format!(
                    "HTTP floor for {id}: the same POSTs without `user_id`, rejected (422) before the store, open loop {rate:.0}/s, just before {id}"
                ),
                Some(floor),
                format!(
                    "{:.0} requests/s achieved, {} errors; {id} p99 - floor p99 = {:.2} ms",
                    floor.rate(),
                    floor.errors,
                    lat.p(0.99) - floor.p(0.99)
                ),
                String::new(),
            );
        }
    }
    for (running, sat, done) in &sat_rows {
        let (id, limit, key) = if *running {
            h.sat_running = sat.rate();
            ("1h", 2000.0, "store_turns_per_s_workers_running")
        } else {
            h.sat = sat.rate();
            ("1g", 5000.0, "store_turns_per_s")
        };
        let target = rep.target(
            sat.rate() >= limit && sat.errors == 0,
            &format!(">= {limit:.0}/s"),
            format!("{key} {:.0} < {limit}", sat.rate()),
        );
        let extra = reflected_note(*running, *done);
        rep.table.row(
            id,
            &format!(
                "fast path, saturation ({} clients, closed loop), {}",
                sizes.sat_clients,
                running_label(*running)
            ),
            Some(sat),
            format!(
                "**{:.0} turns/s**, {} errors{extra}",
                sat.rate(),
                sat.errors
            ),
            target,
        );
    }
    Ok(())
}

/// Section 1 on RabbitMQ (only when `RABBITMQ_URL` is set): the same fast path with the jobs
/// table as the outbox and the relay publishing each job to the broker (publisher confirms),
/// workers consuming from the broker. Rows 1i–1m; the figures also go into the JSON line
/// under `amqp_*` keys. The bench declares its own exchange and queues (named
/// `reflector-bench-<pid>…`) and deletes them at the end, so a service using the same broker
/// is not disturbed. No target applies (the store targets are for embedded defaults).
async fn amqp_store_rows(
    ctx: &Ctx,
    amqp: &Config,
    h: &mut Headline,
    rep: &mut Report,
) -> anyhow::Result<()> {
    let sizes = ctx.sizes;
    let mut cfg = amqp.clone();
    cfg.listen = "127.0.0.1:0".parse().expect("static address");
    cfg.data_dir = ctx.dir.join("amqp");
    cfg.fast_mode = true;
    let settings =
        reflector::queue::amqp::AmqpSettings::from_config(&cfg).context("amqp settings")?;
    let svc = Service::start(cfg, ctx.options(true, false)).await?;
    let client = &ctx.client;
    let url = format!("http://{}/api/interactions", svc.addr);
    let bodies = Arc::new(turn_bodies(20_000, 50, "bench-amqp", 3));
    let backlog = |svc: &Service| {
        let store = svc.store.clone();
        async move { store.run(|s| s.outbox_backlog()).await }
    };

    progress("RabbitMQ: warming up");
    closed_loop(client, &url, &bodies, 4, 400, Duration::from_secs(10)).await;
    progress("RabbitMQ: sequential");
    let seq = closed_loop(
        client,
        &url,
        &bodies,
        1,
        sizes.seq_fast,
        Duration::from_secs(60),
    )
    .await;
    rep.table.row(
        "1i",
        "RabbitMQ: store, fast path (turn + outbox row; relay publishes), 1 client sequential, workers paused",
        Some(&seq),
        format!("{:.0} turns/s", seq.rate()),
        String::new(),
    );
    let mut id = b'j';
    for running in [false, true] {
        let label = running_label(running);
        if running {
            svc.pause_workers(false);
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        progress(&format!("RabbitMQ: open loop 1000/s, {label}"));
        let ((lat, _), done) = with_jobs_done(
            &svc,
            open_loop(
                client,
                &url,
                &bodies,
                1000.0,
                sizes.open_secs,
                Expect::Stored,
            ),
        )
        .await?;
        let left = backlog(&svc).await?;
        if running {
            h.extra
                .push(("amqp_fast_p99_ms_workers_running", lat.p(0.99)));
        } else {
            h.extra.push(("amqp_fast_p99_ms", lat.p(0.99)));
        }
        let extra = reflected_note(running, done);
        rep.table.row(
            &format!("1{}", id as char),
            &format!("RabbitMQ: fast path, open loop 1000 turns/s, {label}"),
            Some(&lat),
            format!(
                "{:.0} turns/s achieved, {} errors; {left} not yet published at the end{extra}",
                lat.rate(),
                lat.errors
            ),
            String::new(),
        );
        id += 1;

        progress(&format!(
            "RabbitMQ: saturation, {} clients, {label}",
            sizes.sat_clients
        ));
        let (sat, done) =
            with_jobs_done(&svc, async { Ok(saturate(ctx, &url, &bodies).await) }).await?;
        // How long the relay needs to publish what saturation left in the outbox.
        let t = Instant::now();
        let left = backlog(&svc).await?;
        while backlog(&svc).await? > 0 && t.elapsed() < Duration::from_secs(120) {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let drained = t.elapsed().as_secs_f64();
        if running {
            h.extra
                .push(("amqp_store_turns_per_s_workers_running", sat.rate()));
        } else {
            h.extra.push(("amqp_store_turns_per_s", sat.rate()));
        }
        let extra = reflected_note(running, done);
        rep.table.row(
            &format!("1{}", id as char),
            &format!(
                "RabbitMQ: fast path, saturation ({} clients, closed loop), {label}",
                sizes.sat_clients
            ),
            Some(&sat),
            format!(
                "**{:.0} turns/s**, {} errors; outbox {left} at the end, published in {drained:.1} s{extra}",
                sat.rate(),
                sat.errors
            ),
            String::new(),
        );
        id += 1;
    }
    svc.shutdown(Duration::from_secs(30)).await?;
    if let Err(e) = delete_bench_topology(&settings).await {
        tracing::warn!(error = %format!("{e:#}"), "could not delete the benchmark's RabbitMQ queues");
    }
    Ok(())
}

/// Delete the exchange and queues `amqp_store_rows` declared (the retry queues too, if a
/// retry created any).
async fn delete_bench_topology(s: &reflector::queue::amqp::AmqpSettings) -> anyhow::Result<()> {
    use lapin::options::{ExchangeDeleteOptions, QueueDeleteOptions};
    let broker = reflector::queue::amqp::Broker::new(s.clone());
    let mut queues = vec![s.queue.clone(), s.work_queue(), s.dlq.clone()];
    queues.extend((1..=12).map(|a| s.delay_queue(s.retry_delay_ms(a))));
    queues.dedup();
    for q in queues {
        // A fresh channel each time: deleting a queue that was never declared may close it.
        let ch = broker.channel().await?;
        let _ = ch
            .queue_delete(q.as_str().into(), QueueDeleteOptions::default())
            .await;
    }
    let ch = broker.channel().await?;
    for x in [s.exchange.clone(), s.dlx()] {
        ch.exchange_delete(x.as_str().into(), ExchangeDeleteOptions::default())
            .await?;
    }
    broker.close().await;
    Ok(())
}

/// Sentences per second through `embed`: all of `sentences`, in requests of 8 queued at once
/// (the pool batches them), as reflection's bulk embeddings arrive.
async fn embed_rate(embed: &EmbedService, sentences: &[String]) -> anyhow::Result<f64> {
    let t = Instant::now();
    let parts: Vec<_> = sentences
        .chunks(8)
        .map(|c| {
            let (e, c) = (embed.clone(), c.to_vec());
            tokio::spawn(async move { e.embed(c).await })
        })
        .collect();
    for p in parts {
        p.await??;
    }
    Ok(sentences.len() as f64 / t.elapsed().as_secs_f64())
}

/// Section 2: reflection rate, embedding rate, lag.
async fn reflection_section(ctx: &Ctx, h: &mut Headline, rep: &mut Report) -> anyhow::Result<()> {
    let sizes = ctx.sizes;
    let client = &ctx.client;
    let refl = start_service(
        &ctx.base,
        &ctx.dir,
        "reflect",
        |_| {},
        ctx.options(true, false),
    )
    .await?;
    let url = format!("http://{}/api/interactions", refl.addr);
    let n = sizes.reflect_jobs;
    let bodies = turn_bodies(n + 20_000, 20, "bench-reflect", 3);
    progress(&format!("queueing {n} jobs (workers paused)"));
    let queued = closed_loop(
        client,
        &url,
        &Arc::new(bodies[..n].to_vec()),
        8,
        n,
        Duration::from_secs(120),
    )
    .await;
    if queued.errors > 0 {
        bail!("{} turns could not be queued", queued.errors);
    }

    progress("raw embedding throughput");
    let sentences: Vec<String> = {
        let mut rng = fastrand::Rng::with_seed(4);
        (0..sizes.embed_sentences)
            .map(|_| message(&mut rng))
            .collect()
    };
    ctx.embed
        .embed(sentences[..8.min(sentences.len())].to_vec())
        .await?;
    let embed_before = embed_rate(&ctx.embed, &sentences).await?;

    progress("reflection at saturation");
    let c0 = ctx.embedded.load(Ordering::Relaxed);
    let t = Instant::now();
    refl.pause_workers(false);
    let (done, dead) = wait_jobs(&refl, n as i64, Duration::from_secs(900)).await?;
    let secs = t.elapsed().as_secs_f64();
    let embeddings = ctx.embedded.load(Ordering::Relaxed) - c0;
    if done + dead < n as i64 {
        bail!("reflection did not finish: {done} completed, {dead} dead of {n}");
    }
    // Measured right before and right after the reflection run, on the same pool: the mean
    // is what this machine could embed while the jobs ran.
    let embed_after = embed_rate(&ctx.embed, &sentences).await?;
    let embed_rate = (embed_before + embed_after) / 2.0;
    h.embed_rate = embed_rate;
    let jobs_rate = (done + dead) as f64 / secs;
    let per_job = embeddings as f64 / n as f64;
    h.jobs_rate = jobs_rate;
    h.per_job = per_job;
    let bound = embed_rate / per_job.max(1e-9);
    let needed = 0.8 * bound;
    rep.table.row(
        "2a",
        "MiniLM raw embedding, same EmbedService (chunks of 8, all queued)",
        None,
        format!(
            "**{embed_rate:.1} sentences/s** (mean of {embed_before:.1} before and {embed_after:.1} after 2b)"
        ),
        String::new(),
    );
    let target = rep.target(
        jobs_rate >= needed && dead == 0,
        &format!(">= 0.8 x 2a / embeddings per job = {needed:.1} jobs/s"),
        format!(
            "reflection_jobs_per_s {jobs_rate:.1} < 0.8 x {embed_rate:.1} / {per_job:.2} = {needed:.1}"
        ),
    );
    rep.table.row(
        "2b",
        &format!("reflection at saturation ({n} jobs queued, then workers resumed)"),
        None,
        format!(
            "**{jobs_rate:.1} jobs/s** ({:.0}% of the embedding bound {bound:.1}); {per_job:.2} embeddings/job; {dead} dead",
            100.0 * jobs_rate / bound
        ),
        target,
    );

    let lag_rate = (jobs_rate / 2.0).max(0.5);
    progress(&format!("lag at {lag_rate:.1} jobs/s"));
    let lag_bodies = Arc::new(bodies[n..].to_vec());
    let (posted, jobs) = open_loop(
        client,
        &url,
        &lag_bodies,
        lag_rate,
        sizes.lag_secs,
        Expect::Stored,
    )
    .await?;
    let total = n as i64 + jobs.len() as i64 + posted.errors as i64;
    wait_jobs(&refl, total, Duration::from_secs(600)).await?;
    let ids: Vec<String> = jobs.iter().map(|(j, _, _)| j.clone()).collect();
    let completed: std::collections::HashMap<String, Option<i64>> = refl
        .store
        .run(move |s| {
            let mut out = std::collections::HashMap::new();
            for id in ids {
                let done = s.get_job(&id)?.and_then(|j| j.completed_at).and_then(|t| {
                    chrono::DateTime::parse_from_rfc3339(&t)
                        .ok()
                        .map(|t| t.timestamp_millis())
                });
                out.insert(id, done);
            }
            Ok(out)
        })
        .await?;
    let mut lag = Lat::default();
    for (job, scheduled, _) in &jobs {
        match completed.get(job) {
            Some(Some(done)) => lag.ms.push((*done as f64 - scheduled).max(0.0)),
            _ => lag.errors += 1,
        }
    }
    let lag = lag.sorted();
    refl.shutdown(Duration::from_secs(30)).await?;
    h.lag_p99 = lag.p(0.99);
    let target = rep.target(
        lag.p(0.99) <= 2000.0 && lag.errors == 0,
        "p99 <= 2000 ms",
        format!("lag_p99_ms {:.0} > 2000", lag.p(0.99)),
    );
    rep.table.row(
        "2c",
        &format!("lag, POST to job completed, open loop {lag_rate:.1} jobs/s (half of 2b)"),
        Some(&lag),
        format!("{} jobs, {} not completed", lag.ms.len(), lag.errors),
        target,
    );
    Ok(())
}

/// Seed `size` synthetic episodes for `user` in `svc`'s store, then time recall over HTTP:
/// (latencies of `recall_queries` warm queries, the first (cold) query in ms). `seed`
/// picks the random texts and vectors (the same seed gives the same episodes).
async fn seed_and_recall(
    ctx: &Ctx,
    svc: &Service,
    user: &str,
    size: usize,
    seed: usize,
) -> anyhow::Result<(Lat, f64)> {
    let dim = ctx.embed.dim();
    progress(&format!("seeding {size} synthetic episodes"));
    let mut rng = fastrand::Rng::with_seed(10 + seed as u64);
    let t0 = 1_700_000_000_000i64;
    let mut seeded = 0;
    while seeded < size {
        let chunk = (size - seeded).min(10_000);
        let eps: Vec<(String, i64, Vec<f32>)> = (seeded..seeded + chunk)
            .map(|i| {
                let when = t0 + i as i64 * 3_600_000;
                let day = chrono::DateTime::from_timestamp_millis(when)
                    .map(|t| reflector::extract::time::format_day(t.date_naive()))
                    .unwrap_or_default();
                (
                    format!(
                        "[{day}] {}: {}",
                        NAMES[seed % NAMES.len()],
                        message(&mut rng)
                    ),
                    when,
                    random_unit(&mut rng, dim),
                )
            })
            .collect();
        let u = user.to_string();
        let seams = svc.store.seams();
        tokio::task::spawn_blocking(move || seams.insert_synthetic_episodes(&u, &eps)).await??;
        seeded += chunk;
    }
    progress(&format!("recall over {size} episodes"));
    let url = format!("http://{}/api/memory/context/{user}", svc.addr);
    let get = |q: &'static str| {
        let (c, url) = (ctx.client.clone(), url.clone());
        async move {
            let r = c
                .get(&url)
                .query(&[("query", q), ("limit", "10")])
                .send()
                .await?;
            let s = r.status().as_u16();
            let b = r.bytes().await?;
            if s != 200 {
                bail!("recall status {s}: {}", String::from_utf8_lossy(&b));
            }
            anyhow::Ok(())
        }
    };
    let t = Instant::now();
    get(RECALL_QUERIES[0]).await?; // cold: loads the user's vectors
    let cold = ms_since(t);
    let mut lat = Lat::default();
    let t = Instant::now();
    for i in 0..ctx.sizes.recall_queries {
        let s = Instant::now();
        match get(RECALL_QUERIES[i % RECALL_QUERIES.len()]).await {
            Ok(()) => lat.ms.push(ms_since(s)),
            Err(_) => lat.errors += 1,
        }
    }
    lat.secs = t.elapsed().as_secs_f64();
    Ok((lat.sorted(), cold))
}

/// Rows 3f/3g: the same search queries through REST and through the MCP tool, alternating
/// one by one (so both see the same machine state), on a user seeded by [`seed_and_recall`].
/// Both go over loopback HTTP with keep-alive; MCP adds JSON-RPC framing and the tool's
/// in-process call to the REST route. Returns (REST, MCP) latencies.
async fn search_rest_vs_mcp(ctx: &Ctx, svc: &Service, user: &str) -> anyhow::Result<(Lat, Lat)> {
    progress("search: REST vs MCP");
    let rest_url = format!("http://{}/api/memory/search/{user}", svc.addr);
    let mcp_url = format!("http://{}/mcp", svc.addr);
    let rest = |q: &'static str| {
        let (c, url) = (ctx.client.clone(), rest_url.clone());
        async move {
            let r = c
                .get(&url)
                .query(&[("query", q), ("limit", "10")])
                .send()
                .await?;
            let s = r.status().as_u16();
            let b: Value = r.json().await?;
            if s != 200 || !b["items"].is_array() {
                bail!("search status {s}: {b}");
            }
            anyhow::Ok(())
        }
    };
    let mcp = |i: usize, q: &'static str| {
        let (c, url, user) = (ctx.client.clone(), mcp_url.clone(), user.to_string());
        async move {
            let call = json!({"jsonrpc": "2.0", "id": i, "method": "tools/call",
                "params": {"name": "search", "arguments": {"query": q, "limit": 10}}});
            let r = c
                .post(&url)
                .header("accept", "application/json, text/event-stream")
                .header(reflector::api::mcp::USER_HEADER, user)
                .json(&call)
                .send()
                .await?;
            let s = r.status().as_u16();
            let b: Value = r.json().await?;
            if s != 200 || b["result"]["isError"] != json!(false) {
                bail!("MCP search status {s}: {b}");
            }
            anyhow::Ok(())
        }
    };
    rest(RECALL_QUERIES[0]).await?;
    mcp(0, RECALL_QUERIES[0]).await?;
    let (mut a, mut b) = (Lat::default(), Lat::default());
    for i in 0..ctx.sizes.recall_queries {
        let q = RECALL_QUERIES[i % RECALL_QUERIES.len()];
        // Alternate which goes first, so neither always meets a warmer cache.
        for first in [i % 2 == 0, i % 2 != 0] {
            let s = Instant::now();
            if first {
                match rest(q).await {
                    Ok(()) => a.ms.push(ms_since(s)),
                    Err(_) => a.errors += 1,
                }
            } else {
                match mcp(i + 1, q).await {
                    Ok(()) => b.ms.push(ms_since(s)),
                    Err(_) => b.errors += 1,
                }
            }
        }
    }
    a.secs = a.ms.iter().sum::<f64>() / 1e3;
    b.secs = b.ms.iter().sum::<f64>() / 1e3;
    Ok((a.sorted(), b.sorted()))
}

/// Section 3: recall at 1k / 10k / 100k episodes; with `REFLECTOR_BENCH_DATABASE_URL`, also
/// at 10k on PostgreSQL (in a schema of its own), next to SQLite's.
async fn recall_section(ctx: &Ctx, h: &mut Headline, rep: &mut Report) -> anyhow::Result<()> {
    let sizes = ctx.sizes;
    let rec = start_service(
        &ctx.base,
        &ctx.dir,
        "recall",
        |_| {},
        ctx.options(false, true),
    )
    .await?;
    for (k, &size) in sizes.recall_sizes.iter().enumerate() {
        let (lat, cold) = seed_and_recall(ctx, &rec, &format!("recall-{size}"), size, k).await?;
        let p99 = lat.p(0.99);
        let label = ["1k", "10k", "100k"][k];
        let target = match k {
            1 | 2 => {
                let limit = if k == 1 { 50.0 } else { 100.0 };
                if k == 1 {
                    h.recall_p99_10k = p99;
                } else {
                    h.recall_p99_100k = p99;
                }
                rep.target(
                    p99 <= limit && lat.errors == 0,
                    &format!("p99 <= {limit} ms"),
                    format!("recall_p99_ms_{label} {p99:.1} > {limit}"),
                )
            }
            _ => String::new(),
        };
        rep.table.row(
            &format!("3{}", (b'a' + k as u8) as char),
            &format!("recall, one user with {size} episodes, SQLite, query embedding included"),
            Some(&lat),
            format!(
                "{:.0} queries/s (1 client); first (cold) query {cold:.0} ms",
                lat.rate()
            ),
            target,
        );
    }
    let user = format!("recall-{}", sizes.recall_sizes[1]);
    let (rest, mcp) = search_rest_vs_mcp(ctx, &rec, &user).await?;
    let extra = mcp.p(0.5) - rest.p(0.5);
    let target = rep.target(
        extra <= 2.0 && rest.errors + mcp.errors == 0,
        "MCP p50 <= REST p50 + 2 ms",
        format!("mcp_search_extra_p50_ms {extra:.2} > 2"),
    );
    rep.table.row(
        "3f",
        &format!(
            "search, REST GET /api/memory/search, one user with {} episodes",
            sizes.recall_sizes[1]
        ),
        Some(&rest),
        format!("{:.0} queries/s (1 client)", rest.rate()),
        String::new(),
    );
    rep.table.row(
        "3g",
        "search, the same queries through the MCP tool (POST /mcp, tools/call search), alternating with 3f",
        Some(&mcp),
        format!("{:.0} queries/s; p50 {extra:+.2} ms vs 3f", mcp.rate()),
        target,
    );
    rec.shutdown(Duration::from_secs(30)).await?;
    let Some(url) = std::env::var("REFLECTOR_BENCH_DATABASE_URL")
        .ok()
        .filter(|u| !u.is_empty())
    else {
        return Ok(());
    };
    let size = sizes.recall_sizes[1];
    for (row, pgvector) in [("3d", "off"), ("3e", "auto")] {
        let schema = format!("bench_{}", uuid::Uuid::new_v4().simple());
        let pg = start_service(
            &ctx.base,
            &ctx.dir,
            &format!("recall-pg-{pgvector}"),
            |c| {
                c.database_url = Some(url.clone());
                c.database_schema = Some(schema.clone());
                c.pgvector = pgvector.into();
            },
            ctx.options(false, true),
        )
        .await?;
        let mode = pg.store.sync().kind();
        let (lat, cold) = seed_and_recall(ctx, &pg, &format!("recall-{size}"), size, 1).await?;
        let p99 = lat.p(0.99);
        let how = if pgvector == "off" {
            "exact vector scan in the process".to_string()
        } else {
            "pgvector HNSW when the server has it, else exact".to_string()
        };
        let target = rep.target(
            p99 <= 50.0 && lat.errors == 0,
            "p99 <= 50 ms",
            format!("recall_p99_ms_10k_{mode}_{pgvector} {p99:.1} > 50"),
        );
        rep.table.row(
            row,
            &format!("recall, one user with {size} episodes, PostgreSQL ({how})"),
            Some(&lat),
            format!(
                "{:.0} queries/s (1 client); first (cold) query {cold:.0} ms",
                lat.rate()
            ),
            target,
        );
        pg.shutdown(Duration::from_secs(30)).await?;
        // The schema was the bench's own: leave the database as it was.
        let (url, schema) = (url.clone(), schema.clone());
        let dropped = tokio::task::spawn_blocking(move || -> anyhow::Result<()> {
            let mut c = postgres::Client::connect(&url, postgres::NoTls)?;
            c.batch_execute(&format!("DROP SCHEMA \"{schema}\" CASCADE"))?;
            Ok(())
        })
        .await?;
        if let Err(e) = dropped {
            tracing::warn!(error = %format!("{e:#}"), "could not drop the benchmark's PostgreSQL schema");
        }
    }
    Ok(())
}

/// A section of the benchmark, for `--only`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Section {
    Store,
    Reflection,
    Recall,
}

/// Entry point of `reflector bench`. Returns the exit code: 0 all targets met, 1 missed.
pub async fn run(args: BenchArgs) -> anyhow::Result<i32> {
    let mut base = Config::load(&args.config)?;
    // With RABBITMQ_URL, the main rows still measure embedded defaults; RabbitMQ gets rows
    // of its own (1i–1m), on queues named for this run.
    let amqp = base.uses_amqp().then(|| {
        let mut a = base.clone();
        let tag = format!("reflector-bench-{}", std::process::id());
        a.queue = Some("amqp".into());
        a.amqp_exchange = tag.clone();
        a.amqp_queue = format!("{tag}.queue");
        a.amqp_dlq = format!("{tag}.dlq");
        a
    });
    base.queue = Some("embedded".into());
    let tmp = TempDir::new()?;
    let embedded = Arc::new(AtomicU64::new(0));
    let ctx = Ctx {
        embed: reflector::seams::embed_service_counting(&base, Some(embedded.clone()))?,
        base,
        dir: tmp.0.clone(),
        embedded,
        client: reqwest::Client::builder()
            .tcp_nodelay(true)
            .pool_max_idle_per_host(256)
            .timeout(Duration::from_secs(120))
            .build()?,
        sizes: if args.quick { &QUICK } else { &FULL },
    };
    let mut h = Headline::new();
    let mut rep = Report {
        table: Table { rows: Vec::new() },
        missed: Vec::new(),
    };
    let load0 = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let want = |s: Section| args.only.is_none_or(|o| o == s);
    let mut peaks = Vec::new();
    if want(Section::Store) {
        store_section(&ctx, &mut h, &mut rep).await?;
        if let Some(amqp) = &amqp {
            amqp_store_rows(&ctx, amqp, &mut h, &mut rep).await?;
        }
        peaks.push(format!("{:.0} after 1", peak_rss_mb()));
        release_freed_memory();
    }
    if want(Section::Reflection) {
        reflection_section(&ctx, &mut h, &mut rep).await?;
        peaks.push(format!("{:.0} after 2", peak_rss_mb()));
        release_freed_memory();
    }
    if want(Section::Recall) {
        recall_section(&ctx, &mut h, &mut rep).await?;
    }

    h.rss = peak_rss_mb();
    let rss = h.rss;
    let target = rep.target(
        rss <= 500.0,
        "<= 500 MB",
        format!("peak_rss_mb {rss:.0} > 500"),
    );
    rep.table.row(
        "4",
        "peak RSS (VmHWM) of this process: the service(s) of each section, the model, the client",
        None,
        if peaks.is_empty() {
            format!("**{rss:.0} MB**")
        } else {
            format!("**{rss:.0} MB** (peak so far: {} MB)", peaks.join(", "))
        },
        target,
    );

    let load1 = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let load = |s: &str| s.split_whitespace().take(3).collect::<Vec<_>>().join(" ");
    println!(
        "Memory Reflector benchmark{}: embedder {}, {} embed threads, {} workers, {} cores, RAYON_NUM_THREADS={}",
        if args.quick { " (--quick)" } else { "" },
        ctx.embed.model_id(),
        ctx.base.embed_threads,
        ctx.base.workers,
        std::thread::available_parallelism().map_or(1, |n| n.get()),
        std::env::var("RAYON_NUM_THREADS").unwrap_or_else(|_| "unset".into()),
    );
    println!(
        "load average before: {}; after: {}",
        load(&load0),
        load(&load1)
    );
    println!();
    print!("{}", rep.table.render());
    println!();
    if rep.missed.is_empty() {
        println!("all targets met");
    } else {
        println!("targets missed: {}", rep.missed.join("; "));
    }
    if args.json {
        println!("{}", h.json());
    }
    Ok(if rep.missed.is_empty() { 0 } else { 1 })
}
