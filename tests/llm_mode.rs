//! LLM mode wired into the reflector: a local stand-in that speaks the chat-completions
//! protocol curates and extracts; an unusable reply fails its tier, which retries and then
//! dead-letters — it never silently stores nothing.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use axum::Router;
use axum::routing::post;
use common::*;
use reflector::server::Options;
use serde_json::{Value, json};

/// Serve chat completions on a free port; `broken_graph` makes the graph replies unusable.
async fn stand_in(broken_graph: Arc<AtomicBool>) -> String {
    let app = Router::new().route(
        "/v1/chat/completions",
        post(move |body: String| {
            let broken = broken_graph.load(Ordering::SeqCst);
            async move {
                let content = if body.contains("occurred_on") {
                    json!({"keep": true, "text": "Ana moved to Berlin on 1 June 2024 for a new job.",
                           "summary": "Ana moved to Berlin", "importance": 0.9, "tags": ["Home", "home", "move"],
                           "occurred_on": "2024-06-01"})
                    .to_string()
                } else if body.contains("valid_on") {
                    if broken {
                        "Sorry, I cannot help with that.".to_string()
                    } else {
                        format!(
                            "Here you go:\n```json\n{}\n```",
                            json!({"entities": [{"name": "Ana", "type": "person", "aliases": []},
                                                {"name": "Berlin", "type": "place", "aliases": []}],
                                   "relations": [{"subject": "I", "predicate": "lives in", "object": "Berlin",
                                                  "fact": "Ana lives in Berlin.", "valid_on": "2024-06-01", "exclusive": true}]})
                        )
                    }
                } else {
                    json!({"rules": [{"kind": "instruction", "statement": "Ana wants answers in German.",
                                      "topic": "Language", "confidence": 0.9}]})
                    .to_string()
                };
                axum::Json(json!({"id": "x", "object": "chat.completion", "model": "stand-in",
                    "choices": [{"index": 0, "finish_reason": "stop",
                                 "message": {"role": "assistant", "content": content}}]}))
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{addr}/v1")
}

async fn llm_server(broken: Arc<AtomicBool>) -> TestServer {
    let base = stand_in(broken).await;
    start_with(
        move |c| {
            c.llm_base_url = Some(base);
            c.llm_model = Some("stand-in".into());
            c.max_retries = 1;
        },
        Options::default(),
    )
    .await
}

#[tokio::test]
async fn the_model_curates_and_extracts_every_tier() {
    let t = llm_server(Arc::new(AtomicBool::new(false))).await;
    let (_, r) = t
        .turn(
            "ana",
            "I moved to Berlin last week for a new job. Answer in German from now on.",
            "2024-06-08T10:00:00Z",
            json!({"metadata": {"speaker": "Ana"}}),
        )
        .await;
    let job = t.wait_job(r["reflection_job_id"].as_str().unwrap()).await;
    assert_eq!(job["state"], "completed", "{job}");
    let (_, ep) = t.get("/api/memory/episodic/ana").await;
    let e = &ep["episodes"][0];
    assert!(
        e["text"]
            .as_str()
            .unwrap()
            .starts_with("[8 June 2024] Ana: "),
        "{e}"
    );
    assert!(e["text"].as_str().unwrap().contains("1 June 2024"), "{e}");
    assert_eq!(e["tags"], json!(["home", "move"]), "{e}");
    assert!(
        e["occurred_at"].as_str().unwrap().starts_with("2024-06-01"),
        "{e}"
    );
    let (_, sem) = t.get("/api/memory/semantic/ana").await;
    let f = &sem["facts"][0];
    assert_eq!(
        (
            f["subject"].as_str(),
            f["predicate"].as_str(),
            f["object"].as_str()
        ),
        (Some("Ana"), Some("LIVES_IN"), Some("Berlin")),
        "{sem}"
    );
    let (_, pro) = t.get("/api/memory/procedural/ana").await;
    assert_eq!(pro["rules"][0]["topic"], "language", "{pro}");
    t.stop().await;
}

#[tokio::test]
async fn an_unusable_reply_fails_the_tier_then_dead_letters() {
    let broken = Arc::new(AtomicBool::new(true));
    let t = llm_server(broken.clone()).await;
    let (_, r) = t
        .turn(
            "ana",
            "I moved to Berlin.",
            "2024-06-08T10:00:00Z",
            json!({"metadata": {"speaker": "Ana"}}),
        )
        .await;
    let id = r["reflection_job_id"].as_str().unwrap().to_string();
    let job = t.wait_job(&id).await;
    assert_eq!(job["state"], "dead", "{job}");
    let reason = job["dead_reason"].as_str().unwrap();
    assert!(
        reason.contains("semantic") && reason.to_lowercase().contains("json"),
        "{reason}"
    );
    let (_, st) = t.get("/api/memory/stats/ana").await;
    assert_eq!(
        st["episodic"]["episodes"], 1,
        "the other tiers committed: {st}"
    );
    assert_eq!(st["semantic"]["facts"], 0, "{st}");
    // The model recovers; an operator replays the job; only the failed tier runs again.
    broken.store(false, Ordering::SeqCst);
    let (s, _) = t
        .post("/api/reflection/dlq/replay", &json!({"all": true}))
        .await;
    assert_eq!(s, 200);
    let job = t.wait_job(&id).await;
    assert_eq!(job["state"], "completed", "{job}");
    let (_, st) = t.get("/api/memory/stats/ana").await;
    assert_eq!(
        (
            st["episodic"]["episodes"].as_i64(),
            st["semantic"]["facts"].as_i64()
        ),
        (Some(1), Some(1)),
        "{st}"
    );
    let _: Value = st;
    t.stop().await;
}
