//! The phrasing corpus (`tests/phrasing/`, format in its README): short hand-written
//! conversations in everyday English, each with the facts and rules that must be valid after
//! it. Every conversation is stored through the HTTP API (its own user, reflection inside the
//! request, MiniLM embeddings as in production), then what the service presents as valid is
//! read back and scored.
//!
//! Prints the accuracy for each kind, for the untuned fifth (`heldout/`) and for the rest
//! (`tuning/`), and fails when a kind falls under its floor in [`FLOORS`]:
//!
//! ```sh
//! scripts/phrasing.sh                 # = cargo test --release --test phrasing -- --nocapture
//! PHRASING_SHOW=tuning scripts/phrasing.sh   # also print every wrong case of the tuning part
//! PHRASING_EXTRA=/some/dir scripts/phrasing.sh # also score a third set kept outside the repo
//! ```
//!
//! Needs the MiniLM model (`reflector model fetch`): a missing model fails the test.

mod common;

use std::collections::BTreeMap;
use std::sync::Arc;

use common::*;
use reflector::server::Options;
use serde::Deserialize;
use serde_json::{Value, json};

/// The corpus's kinds, in the order of the issue's table.
const KINDS: [&str; 7] = [
    "residence",
    "work",
    "relations",
    "tastes",
    "instructions",
    "dates",
    "recall",
];

/// The lowest accuracy each half may have for each kind (0.0 ..= 1.0), in the order of
/// [`KINDS`]: the figures measured when the floor was last raised, so a change that loses
/// cases fails. The goal of issue 18 is 0.90 everywhere.
const FLOORS: [f64; 7] = [0.4, 0.3, 0.2, 0.5, 0.4, 0.8, 0.975];

#[derive(Debug, Clone, Deserialize)]
struct Turn {
    at: String,
    text: String,
}

#[derive(Debug, Clone, Deserialize)]
struct Expect {
    about: String,
    slot: String,
    value: String,
    #[serde(default)]
    role: Option<String>,
    #[serde(default)]
    event: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
struct Case {
    id: String,
    kind: String,
    speaker: String,
    turns: Vec<Turn>,
    #[serde(default)]
    valid: Vec<Expect>,
    #[serde(default)]
    stale: Vec<Expect>,
    #[serde(default)]
    query: Option<String>,
    #[serde(default)]
    first: Option<String>,
}

fn load(half: &str) -> Vec<Case> {
    let dir = match half {
        // A gauge kept outside the repository (same layout), never tuned on: no floor.
        "extra" => std::path::PathBuf::from(std::env::var("PHRASING_EXTRA").unwrap()),
        _ => std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/phrasing")
            .join(half),
    };
    let mut cases = Vec::new();
    for kind in KINDS {
        let path = dir.join(format!("{kind}.json"));
        let text =
            std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let part: Vec<Case> =
            serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        for c in &part {
            assert_eq!(
                c.kind,
                kind,
                "{}: case {} is in the wrong file",
                path.display(),
                c.id
            );
        }
        cases.extend(part);
    }
    cases
}

/// Lower-case words, apostrophes folded, a plural `s` dropped: "Priya's" → ["priya"],
/// "bullet-points" → ["bullet", "point"].
fn words(s: &str) -> Vec<String> {
    s.replace(['’', '\''], "")
        .to_lowercase()
        .replace("ex-", "ex")
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(|w| {
            if w.len() > 3 && w.ends_with('s') && !w.ends_with("ss") {
                w[..w.len() - 1].to_string()
            } else {
                w.to_string()
            }
        })
        .collect()
}

/// Every word of `needle` is a word of `hay`.
fn has_words(hay: &str, needle: &str) -> bool {
    let h = words(hay);
    words(needle).iter().all(|w| h.contains(w))
}

fn same_person(a: &str, b: &str) -> bool {
    words(a) == words(b)
}

/// Words that make a rule's statement a dislike or an avoidance.
const NEGATIVE: &[&str] = &[
    "dislike",
    "avoid",
    "hate",
    "not",
    "no",
    "never",
    "doesnt",
    "dont",
    "cant",
    "cannot",
    "allergic",
    "intolerant",
    "without",
    "stand",
];

struct Memory {
    /// Valid facts: (subject, predicate, object, sentence).
    facts: Vec<(String, String, String, String)>,
    /// Active rule statements.
    rules: Vec<String>,
    /// Episode texts, the most recently stated first (by the turn's time, `observed_at`).
    episodes: Vec<String>,
    /// The top episode recalled for the case's query.
    top: Option<String>,
}

fn holds(e: &Expect, m: &Memory, speaker: &str) -> bool {
    let about_speaker = same_person(speaker, &e.about);
    let fact_about = |preds: &dyn Fn(&str) -> bool| {
        m.facts.iter().any(|(s, p, o, f)| {
            same_person(s, &e.about)
                && preds(p)
                && (has_words(o, &e.value) || has_words(f, &e.value))
        })
    };
    let rule_with = |negative: Option<bool>| {
        m.rules.iter().any(|r| {
            has_words(r, &e.value)
                && negative
                    .is_none_or(|n| words(r).iter().any(|w| NEGATIVE.contains(&w.as_str())) == n)
        })
    };
    match e.slot.as_str() {
        "residence" => fact_about(&|p| p == "LIVES_IN"),
        "work" => fact_about(&|p| p == "WORKS_AT" || p == "HAS_JOB"),
        "relation" => m.facts.iter().any(|(s, p, o, f)| {
            let related = (same_person(s, &e.about) && has_words(o, &e.value))
                || (same_person(o, &e.about) && has_words(s, &e.value));
            let kin = p != "LIVES_IN"
                && p != "WORKS_AT"
                && p != "HAS_JOB"
                && p != "LIKES"
                && p != "DISLIKES"
                && p != "VISITED"
                && p != "FROM";
            related
                && kin
                && e.role
                    .as_ref()
                    .is_none_or(|r| has_words(f, r) || has_words(&p.replace('_', " "), r))
        }),
        "likes" => fact_about(&|p| p == "LIKES") || (about_speaker && rule_with(Some(false))),
        "dislikes" => fact_about(&|p| p == "DISLIKES") || (about_speaker && rule_with(Some(true))),
        // Rules are about the speaker: someone else's diet can only be a fact.
        "diet" => fact_about(&|_| true) || (about_speaker && rule_with(None)),
        "instruction" => rule_with(None),
        "date" => {
            let event = e.event.clone().unwrap_or_default();
            let day = chrono::NaiveDate::parse_from_str(&e.value, "%Y-%m-%d")
                .map(|d| d.format("%-d %B %Y").to_string())
                .unwrap_or_else(|_| panic!("bad date {}", e.value));
            // The most recent mention of the event is the plan as it stands.
            m.episodes
                .iter()
                .find(|t| has_words(t, &event))
                .is_some_and(|t| t.contains(&day))
        }
        other => panic!("unknown slot {other}"),
    }
}

struct Client {
    base: String,
    http: reqwest::Client,
}

impl Client {
    async fn get(&self, path: &str) -> Value {
        let r = self
            .http
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 200, "GET {path}");
        r.json().await.unwrap()
    }
}

async fn run_case(c: Arc<Client>, case: Case, user: String) -> Memory {
    for t in &case.turns {
        let body = json!({"user_id": user, "session_id": "s1", "user_message": t.text,
                          "assistant_response": "", "timestamp": t.at,
                          "metadata": {"speaker": case.speaker}});
        let r = c
            .http
            .post(format!("{}/api/interactions", c.base))
            .json(&body)
            .send()
            .await
            .unwrap();
        let s = r.status().as_u16();
        let v: Value = r.json().await.unwrap_or(Value::Null);
        assert_eq!(s, 200, "{}: {v}", case.id);
        assert_eq!(v["status"], "completed", "{}: {v}", case.id);
    }
    let sem = c
        .get(&format!("/api/memory/semantic/{user}?limit=500"))
        .await;
    let facts = sem["facts"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["invalid_at"].is_null())
        .map(|f| {
            let s = |k: &str| f[k].as_str().unwrap_or("").to_string();
            (s("subject"), s("predicate"), s("object"), s("fact"))
        })
        .collect();
    let pro = c
        .get(&format!("/api/memory/procedural/{user}?limit=500"))
        .await;
    let rules = pro["rules"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["statement"].as_str().unwrap_or("").to_string())
        .collect();
    let epi = c
        .get(&format!("/api/memory/episodic/{user}?limit=500"))
        .await;
    let mut episodes: Vec<(String, String)> = epi["episodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["observed_at"].as_str().unwrap_or("").to_string(),
                e["text"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect();
    episodes.sort_by(|a, b| b.0.cmp(&a.0));
    let episodes = episodes.into_iter().map(|e| e.1).collect();
    let top = match &case.query {
        Some(q) => {
            let q = urlencode(q);
            let ctx = c
                .get(&format!("/api/memory/context/{user}?query={q}"))
                .await;
            ctx["episodes"]
                .get(0)
                .and_then(|e| e["text"].as_str())
                .map(str::to_string)
        }
        None => None,
    };
    Memory {
        facts,
        rules,
        episodes,
        top,
    }
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Whether the case comes out right, and why not.
fn score(case: &Case, m: &Memory) -> Result<(), String> {
    let mut why = Vec::new();
    if case.kind == "recall" {
        let first = case.first.as_deref().expect("a recall case has `first`");
        match &m.top {
            Some(t) if t.to_lowercase().contains(&first.to_lowercase()) => {}
            other => why.push(format!("top episode {other:?} lacks {first:?}")),
        }
    }
    for e in &case.valid {
        if !holds(e, m, &case.speaker) {
            why.push(format!("missing {} {} {:?}", e.about, e.slot, e.value));
        }
    }
    for e in &case.stale {
        if holds(e, m, &case.speaker) {
            why.push(format!(
                "stale {} {} {:?} still valid",
                e.about, e.slot, e.value
            ));
        }
    }
    if why.is_empty() {
        Ok(())
    } else {
        let facts: Vec<String> = m
            .facts
            .iter()
            .map(|(s, p, o, _)| format!("{s} {p} {o}"))
            .collect();
        let episodes = if case.kind == "dates" {
            format!("\n      episodes: {:?}", m.episodes)
        } else {
            String::new()
        };
        Err(format!(
            "{}\n      facts: {facts:?}\n      rules: {:?}{episodes}",
            why.join("; "),
            m.rules
        ))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_phrasing_corpus_comes_out_right() {
    let t = start_with(
        |c| {
            c.fast_mode = false;
            c.embedder = "minilm".into();
        },
        Options::default(),
    )
    .await;
    let client = Arc::new(Client {
        base: t.base.clone(),
        http: reqwest::Client::new(),
    });
    let show = std::env::var("PHRASING_SHOW").unwrap_or_default();
    let mut table: BTreeMap<(&str, &str), (usize, usize)> = BTreeMap::new();
    let mut failed = Vec::new();
    let extra = std::env::var_os("PHRASING_EXTRA").is_some();
    let halves: &[&str] = if extra {
        &["heldout", "tuning", "extra"]
    } else {
        &["heldout", "tuning"]
    };
    for &half in halves {
        let cases = load(half);
        let mut tasks = tokio::task::JoinSet::new();
        let sem = Arc::new(tokio::sync::Semaphore::new(4));
        for (i, case) in cases.iter().cloned().enumerate() {
            let (c, sem) = (client.clone(), sem.clone());
            let user = format!("{half}-{}", case.id);
            tasks.spawn(async move {
                let _permit = sem.acquire_owned().await.unwrap();
                (i, run_case(c, case, user).await)
            });
        }
        let mut results: Vec<Option<Memory>> = (0..cases.len()).map(|_| None).collect();
        while let Some(r) = tasks.join_next().await {
            let (i, m) = r.unwrap();
            results[i] = Some(m);
        }
        for (case, m) in cases.iter().zip(results) {
            let m = m.unwrap();
            let kind = KINDS.iter().find(|k| **k == case.kind).unwrap();
            let cell = table.entry((half, kind)).or_default();
            cell.1 += 1;
            match score(case, &m) {
                Ok(()) => cell.0 += 1,
                Err(why) if show == half || show == "all" => {
                    println!("WRONG {half}/{}: {why}", case.id);
                    for t in &case.turns {
                        println!("      > {}", t.text);
                    }
                }
                Err(_) => {}
            }
        }
    }
    println!("\nkind          heldout        tuning        floor");
    for (k, kind) in KINDS.iter().enumerate() {
        let cell = |half| {
            let (r, n) = table.get(&(half, *kind)).copied().unwrap_or((0, 0));
            (r, n, if n == 0 { 0.0 } else { r as f64 / n as f64 })
        };
        let (hr, hn, ha) = cell("heldout");
        let (tr, tn, ta) = cell("tuning");
        let more = if extra {
            let (er, en, ea) = cell("extra");
            format!("  extra {er:>3}/{en:<3} {:>5.1}%", ea * 100.0)
        } else {
            String::new()
        };
        println!(
            "{kind:<13} {hr:>3}/{hn:<3} {:>5.1}%  {tr:>3}/{tn:<3} {:>5.1}%  {:>5.1}%{more}",
            ha * 100.0,
            ta * 100.0,
            FLOORS[k] * 100.0
        );
        for (half, a) in [("heldout", ha), ("tuning", ta)] {
            if a + 1e-9 < FLOORS[k] {
                failed.push(format!(
                    "{kind} {half}: {:.1}% < floor {:.1}%",
                    a * 100.0,
                    FLOORS[k] * 100.0
                ));
            }
        }
    }
    t.stop().await;
    assert!(failed.is_empty(), "under the floor: {failed:?}");
}
