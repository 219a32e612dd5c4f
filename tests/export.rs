//! Export then import: a user's memory moved into an empty store gives the same context for
//! the same query; importing twice adds nothing; the command line does the same.

mod common;

use common::*;
use reflector::server::Options;
use serde_json::{Value, json};

const QUERIES: [&str; 3] = [
    "Where%20does%20Ana%20live",
    "What%20is%20the%20name%20of%20the%20cat",
    "",
];

/// What must survive the move: the prompt block and the ranked list (row ids may differ).
fn comparable(ctx: &Value) -> Value {
    let mems: Vec<Value> = ctx["memories"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| json!([m["tier"], m["text"], m["score"], m["evidence"]]))
        .collect();
    json!({"context": ctx["context"], "memories": mems, "facts": ctx["facts"].as_array().unwrap().len(),
           "rules": ctx["rules"].as_array().unwrap().iter().map(|r| r["statement"].clone()).collect::<Vec<_>>()})
}

async fn contexts(t: &TestServer, user: &str) -> Vec<Value> {
    let mut out = Vec::new();
    for q in QUERIES {
        let (s, c) = t
            .get(&format!("/api/memory/context/{user}?query={q}"))
            .await;
        assert_eq!(s, 200, "{c}");
        out.push(comparable(&c));
    }
    out
}

async fn seeded() -> TestServer {
    seeded_with(&mut Vec::new()).await
}

/// [`seeded`], and the environment a `reflector` command needs to use its store.
async fn seeded_with(env: &mut Vec<(&'static str, String)>) -> TestServer {
    let t = start_with(|cfg| *env = store_env(cfg), Options::default()).await;
    let turns = [
        "I live in Lisbon. Please always answer in Portuguese.",
        "I adopted a cat named Miso last week.",
        "My sister Lucia works as a nurse in Porto.",
        "Actually I moved to Madrid yesterday.",
        "I'm allergic to peanuts.",
    ];
    for (i, m) in turns.iter().enumerate() {
        let (s, r) = t
            .turn(
                "ana",
                m,
                &format!("2024-0{}-10T10:00:00Z", i + 1),
                json!({"metadata": {"speaker": "Ana", "dia_id": format!("D1:{i}")}}),
            )
            .await;
        assert_eq!(s, 202, "{r}");
        t.wait_job(r["reflection_job_id"].as_str().unwrap()).await;
    }
    // Another user, who must not travel with ana.
    let (_, r) = t
        .turn("bob", "I live in Oslo.", "2024-01-01T10:00:00Z", json!({}))
        .await;
    t.wait_job(r["reflection_job_id"].as_str().unwrap()).await;
    // An explicit memory and a deletion (its tombstone travels too).
    let (s, _) = t
        .post(
            "/api/memory/procedural/ana",
            &json!({"statement": "Keep answers short.", "kind": "instruction", "topic": "length"}),
        )
        .await;
    assert_eq!(s, 201);
    let (_, ep) = t.get("/api/memory/episodic/ana").await;
    let nurse = ep["episodes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["text"].as_str().unwrap().contains("nurse"))
        .unwrap()["id"]
        .as_i64()
        .unwrap();
    let r = t
        .http
        .delete(format!("{}/api/memory/episodic/ana/{nurse}", t.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    t
}

#[tokio::test]
async fn export_then_import_into_an_empty_store_gives_the_same_context() {
    let a = seeded().await;
    let before = contexts(&a, "ana").await;
    let store = a.svc.as_ref().unwrap().store.clone();
    let (file, counts) = tokio::task::spawn_blocking(move || {
        let mut buf = Vec::new();
        let c = store
            .sync()
            .export_user("ana", "hash-384", &mut buf)
            .unwrap();
        (buf, c)
    })
    .await
    .unwrap();
    assert_eq!(counts["turn"], 5, "{counts:?}");
    assert_eq!(counts["episode"], 4, "{counts:?}");
    assert_eq!(counts["edit"], 2, "{counts:?}");
    let text = String::from_utf8(file.clone()).unwrap();
    assert!(
        !text.contains("Oslo"),
        "another user's memory leaked into the export"
    );
    for line in text.lines() {
        let v: Value = serde_json::from_str(line).unwrap();
        assert!(v["type"].is_string(), "{line}");
    }

    let b = start_with(|_| {}, Options::default()).await;
    let store_b = b.svc.as_ref().unwrap().store.clone();
    let f = file.clone();
    let (first, second) = tokio::task::spawn_blocking(move || {
        let first = store_b.sync().import_user(&mut f.as_slice()).unwrap();
        let second = store_b.sync().import_user(&mut f.as_slice()).unwrap();
        (first, second)
    })
    .await
    .unwrap();
    assert_eq!(first["turn"], 5, "{first:?}");
    assert!(
        second.is_empty(),
        "a second import adds nothing: {second:?}"
    );
    assert_eq!(contexts(&b, "ana").await, before);
    let (_, stats_a) = a.get("/api/memory/stats/ana").await;
    let (_, stats_b) = b.get("/api/memory/stats/ana").await;
    assert_eq!(stats_a, stats_b);

    // A bad file changes nothing and names the line.
    let store_b = b.svc.as_ref().unwrap().store.clone();
    let bad = format!(
        "{}\n{{\"type\":\"rule\",\"kind\":\"x\"}}\n",
        text.lines().next().unwrap()
    );
    let err = tokio::task::spawn_blocking(move || {
        store_b.sync().import_user(&mut bad.as_bytes()).unwrap_err()
    })
    .await
    .unwrap();
    assert!(format!("{err:#}").contains("line 2"), "{err:#}");
    a.stop().await;
    b.stop().await;
}

#[tokio::test]
async fn the_command_line_exports_and_imports() {
    let mut env_a = Vec::new();
    let a = seeded_with(&mut env_a).await;
    let before = contexts(&a, "ana").await;
    let dir_a = a.dir.path().to_path_buf();
    let out = tempfile::tempdir().unwrap();
    let file = out.path().join("ana.jsonl");
    let bin = env!("CARGO_BIN_EXE_reflector");
    let st = std::process::Command::new(bin)
        .args(["export", "--user", "ana", "--embedder", "hash", "--out"])
        .arg(&file)
        .arg("--data-dir")
        .arg(&dir_a)
        .envs(env_a)
        .status()
        .unwrap();
    assert!(st.success());
    a.stop().await;
    let mut env_c = Vec::new();
    let c = start_with(|cfg| env_c = store_env(cfg), Options::default()).await;
    let dir_c = c.dir.path().to_path_buf();
    let st = std::process::Command::new(bin)
        .args(["import", "--format", "reflector"])
        .arg(&file)
        .arg("--data-dir")
        .arg(&dir_c)
        .envs(env_c)
        .status()
        .unwrap();
    assert!(st.success());
    assert_eq!(contexts(&c, "ana").await, before);
    c.stop().await;
}
