//! Tier 1 window and retention: turns beyond the window are folded into a running summary by
//! the reflector (the request path never waits for it), the summary is in the context, and
//! retention prunes completed jobs and reflected turns.

mod common;

use std::time::{Duration, Instant};

use common::*;
use reflector::server::Options;
use serde_json::json;

const TURNS: [&str; 6] = [
    "I adopted a parrot called Kiwi.",
    "My brother Teo plays the oboe.",
    "I work as a carpenter in Bergen.",
    "I started learning Japanese.",
    "I bought a red bicycle.",
    "I planted tomatoes on the balcony.",
];

#[tokio::test]
async fn turns_beyond_the_window_are_folded_into_a_summary_in_the_context() {
    let t = start_with(
        |c| {
            c.short_term_window_turns = 3;
            c.short_term_turns = 3;
        },
        Options {
            seams: reflector::seams::Seams::paused(),
            ..Options::default()
        },
    )
    .await;
    let mut jobs = Vec::new();
    for (i, m) in TURNS.iter().enumerate() {
        let start = Instant::now();
        let (s, r) = t
            .turn(
                "ana",
                m,
                &format!("2024-09-0{}T10:00:00Z", i + 1),
                json!({"metadata": {"speaker": "Ana"}}),
            )
            .await;
        assert_eq!(s, 202, "{r}");
        assert!(start.elapsed() < Duration::from_secs(2));
        jobs.push(r["reflection_job_id"].as_str().unwrap().to_string());
    }
    // Reflection is paused: nothing was folded on the request path, the window overflows.
    let (_, ctx) = t.get("/api/memory/context/ana").await;
    assert!(ctx["short_term_summary"].is_null(), "{ctx}");
    assert!(
        !ctx["context"]
            .as_str()
            .unwrap()
            .contains("Earlier conversation")
    );

    t.svc.as_ref().unwrap().pause_workers(false);
    for j in &jobs {
        t.wait_job(j).await;
    }
    // The last job's fold may still be running just after its completion.
    let mut ctx = json!(null);
    for _ in 0..100 {
        ctx = t.get("/api/memory/context/ana?query=hobbies").await.1;
        if ctx["short_term_summary"]["folded_turns"] == 3 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let sm = &ctx["short_term_summary"];
    assert_eq!(sm["folded_turns"], 3, "{ctx}");
    let summary = sm["summary"].as_str().unwrap();
    for old in ["Kiwi", "oboe", "carpenter"] {
        assert!(summary.contains(old), "{summary}");
    }
    for recent in ["Japanese", "bicycle", "tomatoes"] {
        assert!(!summary.contains(recent), "{summary}");
    }
    let text = ctx["context"].as_str().unwrap();
    let at = text
        .find("## Earlier conversation (summary of 3 older turns)")
        .expect(text);
    assert!(at < text.find("## Recent conversation").unwrap(), "{text}");
    assert!(text[at..].contains("Kiwi"), "{text}");
    let recent = &text[text.find("## Recent conversation").unwrap()..];
    assert!(
        !recent.contains("Kiwi") && recent.contains("tomatoes"),
        "a folded turn is not also a recent turn: {text}"
    );
    // Within a budget the summary is kept only if it fits.
    let (_, small) = t.get("/api/memory/context/ana?max_tokens=30").await;
    assert!(small["context_tokens"].as_u64().unwrap() <= 30, "{small}");
    t.stop().await;
}

#[tokio::test]
async fn retention_prunes_completed_jobs_and_reflected_turns_but_keeps_memories() {
    let t = start().await;
    let (_, r) = t
        .turn("bo", TURNS[0], "2024-09-01T10:00:00Z", json!({}))
        .await;
    let job = r["reflection_job_id"].as_str().unwrap().to_string();
    t.wait_job(&job).await;
    let svc = t.svc.as_ref().unwrap();
    svc.pause_workers(true);
    let (_, waiting) = t
        .turn("bo", TURNS[1], "2024-09-02T10:00:00Z", json!({}))
        .await;
    let store = svc.store.clone();
    // Nothing is older than an hour ago.
    let s2 = store.clone();
    let none = tokio::task::spawn_blocking(move || {
        s2.sync().prune(reflector::store::now_ms() - 3_600_000)
    })
    .await
    .unwrap()
    .unwrap();
    assert_eq!(none, (0, 0));
    let pruned =
        tokio::task::spawn_blocking(move || store.sync().prune(reflector::store::now_ms() + 1))
            .await
            .unwrap()
            .unwrap();
    assert_eq!(
        pruned,
        (1, 1),
        "the completed job and its turn; not the waiting ones"
    );
    let (s, _) = t.get(&format!("/api/reflection/jobs/{job}")).await;
    assert_eq!(s, 404);
    let (_, st) = t.get("/api/memory/short-term/bo").await;
    assert_eq!(st["turns"].as_array().unwrap().len(), 1, "{st}");
    let (s, _) = t
        .get(&format!(
            "/api/reflection/jobs/{}",
            waiting["reflection_job_id"].as_str().unwrap()
        ))
        .await;
    assert_eq!(s, 200);
    let (_, ep) = t.get("/api/memory/episodic/bo").await;
    assert_eq!(
        ep["episodes"].as_array().unwrap().len(),
        1,
        "episodes stay: {ep}"
    );
    t.stop().await;
}
