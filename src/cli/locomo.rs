//! LoCoMo files (Maharana et al., ACL 2024): import as turns, evaluate recall, and the demo.
//!
//! Mapping of a LoCoMo turn to `POST /api/interactions`: `user_id` = `sample_id`,
//! `session_id` = the session key (`session_3`), `timestamp` = the session's date and time
//! plus one second per turn, `user_message` = the text, `assistant_response` empty,
//! `metadata` = `{speaker, dia_id, image_caption?}`, `interaction_id` =
//! `locomo:{sample_id}:{dia_id}` (so a re-import is an idempotent retry).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use chrono::{NaiveDateTime, TimeDelta};
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::{Value, json};
use tokio::sync::Semaphore;

use super::client::Client;
use crate::config::{Config, ConfigArgs};
use crate::server::{Options, Service, shutdown_signal};

/// One turn ready to post.
#[derive(Debug, Clone)]
pub struct ImportTurn {
    pub sample_id: String,
    pub body: Value,
}

/// The conversations of a LoCoMo file (a JSON array).
pub fn read_file(path: &Path) -> anyhow::Result<Vec<Value>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let v: Value =
        serde_json::from_str(&text).with_context(|| format!("{} is not JSON", path.display()))?;
    match v {
        Value::Array(a) => Ok(a),
        obj @ Value::Object(_) => Ok(vec![obj]),
        _ => bail!(
            "{}: expected a list of LoCoMo conversations",
            path.display()
        ),
    }
}

/// The conversations named in `samples` (all when it is empty), each with its `sample_id`.
/// Errors: a conversation without a `sample_id`, or no conversation matching `samples`.
pub fn selected<'a>(
    convs: &'a [Value],
    samples: &[String],
) -> anyhow::Result<Vec<(&'a str, &'a Value)>> {
    let mut out = Vec::new();
    for c in convs {
        let sample = c["sample_id"]
            .as_str()
            .context("a conversation has no sample_id")?;
        if samples.is_empty() || samples.iter().any(|x| x == sample) {
            out.push((sample, c));
        }
    }
    if out.is_empty() {
        bail!("no conversation matches --samples {samples:?}");
    }
    Ok(out)
}

/// Parse LoCoMo's session date, e.g. "1:56 pm on 8 May, 2023".
pub fn parse_session_time(s: &str) -> Option<NaiveDateTime> {
    let s = s.trim().to_uppercase().replace("  ", " ");
    for fmt in [
        "%I:%M %p ON %d %B, %Y",
        "%I:%M %p ON %d %B %Y",
        "%I:%M%p ON %d %B, %Y",
    ] {
        if let Ok(t) = NaiveDateTime::parse_from_str(&s, fmt) {
            return Some(t);
        }
    }
    None
}

/// Every turn of the selected conversations, in session order.
pub fn turns(path: &Path, samples: &[String]) -> anyhow::Result<Vec<ImportTurn>> {
    let convs = read_file(path)?;
    let mut out = Vec::new();
    for (sample, c) in selected(&convs, samples)? {
        let conv = c["conversation"]
            .as_object()
            .with_context(|| format!("{sample}: no conversation object"))?;
        let mut sessions: Vec<(u32, &str)> = conv
            .keys()
            .filter_map(|k| {
                k.strip_prefix("session_")
                    .and_then(|n| n.parse::<u32>().ok())
                    .map(|n| (n, k.as_str()))
            })
            .collect();
        sessions.sort();
        for (_, key) in sessions {
            let Some(list) = conv[key].as_array() else {
                continue;
            };
            let when = conv
                .get(&format!("{key}_date_time"))
                .and_then(|v| v.as_str())
                .and_then(parse_session_time)
                .with_context(|| format!("{sample}: {key}_date_time is missing or not like \"1:56 pm on 8 May, 2023\""))?;
            for (i, t) in list.iter().enumerate() {
                let dia = t["dia_id"]
                    .as_str()
                    .with_context(|| format!("{sample}/{key}: a turn has no dia_id"))?;
                let mut meta = json!({"speaker": t["speaker"], "dia_id": dia});
                if let Some(cap) = t.get("blip_caption").and_then(|v| v.as_str()) {
                    meta["image_caption"] = json!(cap);
                }
                let ts = (when + TimeDelta::seconds(i as i64)).and_utc();
                out.push(ImportTurn {
                    sample_id: sample.to_string(),
                    body: json!({
                        "interaction_id": format!("locomo:{sample}:{dia}"),
                        "user_id": sample,
                        "session_id": key,
                        "user_message": t["text"].as_str().unwrap_or_default(),
                        "assistant_response": "",
                        "timestamp": crate::job::format_timestamp(&ts),
                        "metadata": meta,
                    }),
                });
            }
        }
    }
    Ok(out)
}

/// A progress bar of `len` steps labelled `what` (indicatif).
pub fn bar(len: u64, what: &str) -> ProgressBar {
    let pb = ProgressBar::new(len);
    pb.set_style(
        ProgressStyle::with_template(&format!(
            "{{spinner}} {what} [{{bar:40}}] {{pos}}/{{len}} ({{per_sec}}, eta {{eta}}) {{msg}}"
        ))
        .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    pb
}

/// Spawn `call` for every item, at most `concurrency` running at once, each advancing `pb`
/// when it ends; the caller takes the results from the set as they finish.
pub async fn fan_out<T, R, Fut>(
    items: Vec<T>,
    concurrency: usize,
    pb: &ProgressBar,
    call: impl Fn(T) -> Fut,
) -> anyhow::Result<tokio::task::JoinSet<R>>
where
    Fut: std::future::Future<Output = R> + Send + 'static,
    R: Send + 'static,
{
    let slots = Arc::new(Semaphore::new(concurrency.max(1)));
    let mut set = tokio::task::JoinSet::new();
    for item in items {
        let permit = slots.clone().acquire_owned().await?;
        let (pb, fut) = (pb.clone(), call(item));
        set.spawn(async move {
            let r = fut.await;
            drop(permit);
            pb.inc(1);
            r
        });
    }
    Ok(set)
}

/// Post every turn; with `wait`, block until the users' jobs are all final. Returns the exit code.
pub async fn import(
    path: &Path,
    samples: &[String],
    server: &str,
    wait: bool,
    concurrency: usize,
) -> anyhow::Result<i32> {
    let turns = turns(path, samples)?;
    let client = Client::new(server)?;
    let users: Vec<String> = {
        let mut u: Vec<String> = turns.iter().map(|t| t.sample_id.clone()).collect();
        u.dedup();
        u
    };
    let pb = bar(turns.len() as u64, "importing");
    let mut set = fan_out(turns, concurrency, &pb, |t| {
        let c = client.clone();
        async move {
            let r = c
                .post_retrying("/api/interactions", &t.body, Duration::from_secs(600))
                .await;
            (t, r)
        }
    })
    .await?;
    let mut rejected = 0usize;
    let mut replays = 0usize;
    while let Some(res) = set.join_next().await {
        let (t, r) = res?;
        let r = r?;
        match r.status {
            200..=299 => {
                if r.body["idempotent_replay"] == json!(true) {
                    replays += 1;
                }
            }
            s => {
                rejected += 1;
                pb.println(format!(
                    "rejected {} ({s}): {}",
                    t.body["interaction_id"], r.body
                ));
            }
        }
    }
    pb.finish_with_message("sent");
    println!(
        "imported {} turns for {} users ({replays} already stored, {rejected} rejected)",
        pb.position(),
        users.len()
    );
    if !wait {
        return Ok(if rejected > 0 { 1 } else { 0 });
    }
    let counts = wait_for_users(&client, &users).await?;
    println!(
        "reflection finished: {} completed, {} dead",
        counts.get("completed").copied().unwrap_or(0),
        counts.get("dead").copied().unwrap_or(0)
    );
    if counts.get("dead").copied().unwrap_or(0) > 0 {
        println!(
            "dead jobs: `reflector dlq list` shows their reasons; `reflector dlq replay --all` retries them"
        );
        return Ok(1);
    }
    Ok(if rejected > 0 { 1 } else { 0 })
}

/// Poll the users' job counts until nothing is queued, processing or retrying.
pub async fn wait_for_users(
    client: &Client,
    users: &[String],
) -> anyhow::Result<HashMap<String, i64>> {
    let pb = bar(0, "reflecting");
    loop {
        let mut total: HashMap<String, i64> = HashMap::new();
        for u in users {
            let stats = client
                .get_json(&format!("/api/memory/stats/{}", urlencode(u)))
                .await?;
            if let Some(jobs) = stats["jobs"].as_object() {
                for (k, v) in jobs {
                    *total.entry(k.clone()).or_default() += v.as_i64().unwrap_or(0);
                }
            }
        }
        let pending: i64 = ["queued", "processing", "retrying"]
            .iter()
            .map(|k| total.get(*k).copied().unwrap_or(0))
            .sum();
        let finished =
            total.get("completed").copied().unwrap_or(0) + total.get("dead").copied().unwrap_or(0);
        pb.set_length((pending + finished) as u64);
        pb.set_position(finished as u64);
        if pending == 0 {
            pb.finish();
            return Ok(total);
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// Percent-encode a path segment.
pub fn urlencode(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The README's first command: a real run on embedded defaults.
pub async fn demo(file: Option<PathBuf>, config: ConfigArgs) -> anyhow::Result<i32> {
    let cfg = Config::load(&config)?;
    if cfg.embedder == "minilm" && crate::embed::fetch::verify(&cfg.model_dir).is_err() {
        println!(
            "fetching the embedding model into {} ...",
            cfg.model_dir.display()
        );
        let dir = cfg.model_dir.clone();
        let r =
            tokio::task::spawn_blocking(move || crate::embed::fetch::fetch(&dir, None)).await??;
        println!("{r}");
    }
    let file = file.unwrap_or_else(|| {
        PathBuf::from(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/examples/conversation.json"
        ))
    });
    let svc = Service::start(cfg, Options::default()).await?;
    let base = format!("http://{}", svc.addr);
    println!("serving on {base}");
    let code = import(&file, &[], &base, true, 8).await?;
    let convs = read_file(&file)?;
    let client = Client::new(&base)?;
    for c in &convs {
        let Some(user) = c["sample_id"].as_str() else {
            continue;
        };
        let u = urlencode(user);
        let ep = client
            .get_json(&format!("/api/memory/episodic/{u}?limit=8"))
            .await?;
        let sem = client
            .get_json(&format!("/api/memory/semantic/{u}?limit=12"))
            .await?;
        let pro = client
            .get_json(&format!("/api/memory/procedural/{u}"))
            .await?;
        println!("\n=== What was remembered for {user} ===");
        println!(
            "-- episodes (newest {}):",
            ep["episodes"].as_array().map_or(0, Vec::len)
        );
        for e in ep["episodes"].as_array().into_iter().flatten() {
            println!(
                "  [{:.2}] {}",
                e["importance"].as_f64().unwrap_or(0.0),
                e["text"].as_str().unwrap_or_default()
            );
        }
        println!("-- facts:");
        for f in sem["facts"].as_array().into_iter().flatten() {
            let valid = if f["invalid_at"].is_null() {
                "valid".to_string()
            } else {
                format!("until {}", f["invalid_at"].as_str().unwrap_or_default())
            };
            println!("  {} ({valid})", f["fact"].as_str().unwrap_or_default());
        }
        println!("-- rules:");
        for r in pro["rules"].as_array().into_iter().flatten() {
            println!(
                "  [{}] {}",
                r["kind"].as_str().unwrap_or_default(),
                r["statement"].as_str().unwrap_or_default()
            );
        }
        if let Some(q) = c["qa"]
            .as_array()
            .and_then(|a| a.first())
            .and_then(|q| q["question"].as_str())
        {
            let ctx = client
                .get_json(&format!(
                    "/api/memory/context/{u}?limit=5&query={}",
                    urlencode(q)
                ))
                .await?;
            println!(
                "-- recall for {q:?}:\n{}",
                ctx["context"].as_str().unwrap_or_default()
            );
        }
    }
    println!(
        "\nStill serving on {base} (try: curl '{base}/api/memory/context/{}?query=where%20does%20she%20live'); Ctrl-C to stop.",
        convs
            .first()
            .and_then(|c| c["sample_id"].as_str())
            .unwrap_or("demo")
    );
    println!("Dashboard: {base}/ui/ (users, each tier, rules, timeline, recall, operations)");
    shutdown_signal().await;
    svc.shutdown(Duration::from_secs(30)).await?;
    Ok(code)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_locomo_session_times() {
        let t = parse_session_time("1:56 pm on 8 May, 2023").unwrap();
        assert_eq!(t.to_string(), "2023-05-08 13:56:00");
        let t = parse_session_time("10:37 am on 27 June, 2023").unwrap();
        assert_eq!(t.to_string(), "2023-06-27 10:37:00");
        assert!(parse_session_time("sometime").is_none());
    }

    #[test]
    fn urlencode_escapes_reserved() {
        assert_eq!(urlencode("a b/c?d"), "a%20b%2Fc%3Fd");
        assert_eq!(urlencode("conv-26"), "conv-26");
    }
}
