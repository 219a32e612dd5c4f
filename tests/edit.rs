//! Memory editing end to end: explicit adds, PATCH and DELETE by id, seen by recall at once,
//! recorded, and not undone by re-reflecting the turn the memory came from.

mod common;

use common::*;
use serde_json::{Value, json};

async fn send(t: &TestServer, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
    let url = format!("{}{path}", t.base);
    let mut r = match method {
        "POST" => t.http.post(url),
        "PATCH" => t.http.patch(url),
        "DELETE" => t.http.delete(url),
        _ => t.http.get(url),
    };
    if let Some(b) = body {
        r = r.json(&b);
    }
    let resp = r.send().await.unwrap();
    let s = resp.status().as_u16();
    (s, resp.json().await.unwrap_or(Value::Null))
}

/// Queue the job again (what `reflector reflect` does) and wait for it.
async fn rereflect(t: &TestServer, job_id: &str) -> Value {
    let store = t.svc.as_ref().unwrap().store.clone();
    let j = job_id.to_string();
    let queued = tokio::task::spawn_blocking(move || store.sync().rereflect_job(&j))
        .await
        .unwrap()
        .unwrap();
    assert!(queued, "job {job_id} re-queued");
    t.wait_job(job_id).await
}

#[tokio::test]
async fn an_edited_fact_is_what_recall_returns_and_re_reflection_keeps_the_edit() {
    let t = start().await;
    let (s, r) = t
        .turn(
            "ana",
            "I live in Berlin now.",
            "2024-03-01T10:00:00Z",
            json!({"metadata": {"speaker": "Ana"}}),
        )
        .await;
    assert_eq!(s, 202, "{r}");
    let job = r["reflection_job_id"].as_str().unwrap().to_string();
    t.wait_job(&job).await;
    let (_, sem) = t.get("/api/memory/semantic/ana").await;
    let fact = sem["facts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["predicate"] == "LIVES_IN")
        .unwrap_or_else(|| panic!("{sem}"))
        .clone();
    assert_eq!(fact["object"], "Berlin");
    let id = fact["id"].as_i64().unwrap();

    let (s, edited) = send(
        &t,
        "PATCH",
        &format!("/api/memory/semantic/ana/{id}"),
        Some(json!({"object": "Munich", "fact": "Ana lives in Munich."})),
    )
    .await;
    assert_eq!(s, 200, "{edited}");
    assert_eq!(
        (edited["object"].as_str(), edited["fact"].as_str()),
        (Some("Munich"), Some("Ana lives in Munich."))
    );

    let lives_in = |ctx: &Value| -> Vec<String> {
        ctx["facts"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|f| f["predicate"] == "LIVES_IN" && f["invalid_at"].is_null())
            .map(|f| f["fact"].as_str().unwrap().to_string())
            .collect()
    };
    let q = "/api/memory/context/ana?query=Where%20does%20Ana%20live";
    let (_, ctx) = t.get(q).await;
    assert_eq!(lives_in(&ctx), ["Ana lives in Munich."], "{ctx}");
    assert!(
        ctx["memories"]
            .as_array()
            .unwrap()
            .iter()
            .any(|m| m["tier"] == "semantic"
                && m["text"]
                    .as_str()
                    .unwrap()
                    .starts_with("Ana lives in Munich.")),
        "{ctx}"
    );

    // Re-reflecting the turn that said Berlin does not bring Berlin back.
    let j = rereflect(&t, &job).await;
    assert_eq!(j["state"], "completed", "{j}");
    let (_, ctx) = t.get(q).await;
    assert_eq!(lives_in(&ctx), ["Ana lives in Munich."], "{ctx}");
    let (_, sem) = t.get("/api/memory/semantic/ana").await;
    assert!(
        !sem["facts"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f["object"] == "Berlin"),
        "{sem}"
    );

    // A new turn saying Berlin again is new evidence, and is remembered.
    let (_, r) = t
        .turn(
            "ana",
            "I moved back, I live in Berlin again.",
            "2024-06-01T10:00:00Z",
            json!({"metadata": {"speaker": "Ana"}}),
        )
        .await;
    t.wait_job(r["reflection_job_id"].as_str().unwrap()).await;
    let (_, ctx) = t.get(q).await;
    assert!(lives_in(&ctx).iter().any(|f| f.contains("Berlin")), "{ctx}");

    // The edit is recorded: who and when.
    let (_, edits) = t.get("/api/memory/edits/ana").await;
    let e = &edits["edits"][0];
    assert_eq!(
        (
            e["action"].as_str(),
            e["tier"].as_str(),
            e["actor"].as_str()
        ),
        (Some("update"), Some("semantic"), Some("local")),
        "{edits}"
    );
    assert_eq!(e["before"]["object"], "Berlin");
    assert!(e["at"].as_str().unwrap().starts_with("20"));
    t.stop().await;
}

#[tokio::test]
async fn a_deleted_episode_stays_deleted_after_its_turn_is_re_reflected() {
    let t = start().await;
    let mut jobs = Vec::new();
    for (i, m) in [
        "I adopted a parrot called Kiwi yesterday.",
        "I ran the Lisbon marathon in May.",
    ]
    .iter()
    .enumerate()
    {
        let (s, r) = t
            .turn("bo", m, &format!("2024-07-0{}T10:00:00Z", i + 1), json!({}))
            .await;
        assert_eq!(s, 202, "{r}");
        jobs.push(r["reflection_job_id"].as_str().unwrap().to_string());
        t.wait_job(jobs.last().unwrap()).await;
    }
    let episodes = |v: &Value| -> Vec<(i64, String, String)> {
        v["episodes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| {
                (
                    e["id"].as_i64().unwrap(),
                    e["job_id"].as_str().unwrap().to_string(),
                    e["text"].as_str().unwrap().to_string(),
                )
            })
            .collect()
    };
    let (_, ep) = t.get("/api/memory/episodic/bo").await;
    let all = episodes(&ep);
    assert_eq!(all.len(), 2, "{ep}");
    let parrot = all.iter().find(|e| e.2.contains("Kiwi")).unwrap().clone();
    let q = "/api/memory/context/bo?query=What%20is%20the%20parrot%20called";
    let (_, ctx) = t.get(q).await;
    assert!(ctx["context"].as_str().unwrap().contains("Kiwi"), "{ctx}");

    let (s, d) = send(
        &t,
        "DELETE",
        &format!("/api/memory/episodic/bo/{}", parrot.0),
        None,
    )
    .await;
    assert_eq!(s, 200, "{d}");
    assert_eq!(d["deleted"]["id"], parrot.0);
    let (s, _) = send(
        &t,
        "DELETE",
        &format!("/api/memory/episodic/bo/{}", parrot.0),
        None,
    )
    .await;
    assert_eq!(s, 404, "deleting twice");
    let recalled_episode = |ctx: &Value| {
        ctx["episodes"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["id"] == parrot.0)
    };
    let (_, ctx) = t.get(q).await;
    assert!(!recalled_episode(&ctx), "{ctx}");

    // Re-reflect both turns: the deleted episode stays deleted, the other one is not doubled.
    for j in &jobs {
        let rec = rereflect(&t, j).await;
        assert_eq!(rec["state"], "completed", "{rec}");
    }
    let (_, ep) = t.get("/api/memory/episodic/bo").await;
    let now = episodes(&ep);
    assert_eq!(now.len(), 1, "{ep}");
    assert!(now[0].2.contains("marathon"), "{ep}");
    assert!(!now.iter().any(|e| e.1 == parrot.1), "{ep}");
    let (_, ctx) = t.get(q).await;
    assert!(
        !ctx["episodes"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["text"].as_str().unwrap().contains("Kiwi")),
        "{ctx}"
    );
    t.stop().await;
}

#[tokio::test]
async fn explicit_memories_are_added_edited_and_deleted_and_recall_follows_at_once() {
    let t = start().await;
    // Episode: add, find it, edit its text (full-text and vector follow), delete it.
    let (s, ep) = send(&t, "POST", "/api/memory/episodic/cy",
                       Some(json!({"text": "Cy keeps a spare key under the blue flowerpot.", "tags": ["home"], "importance": 0.9}))).await;
    assert_eq!(s, 201, "{ep}");
    let id = ep["id"].as_i64().unwrap();
    assert!(
        ep["evidence"][0].as_str().unwrap().starts_with("manual:"),
        "{ep}"
    );
    let (_, ctx) = t.get("/api/memory/context/cy?query=flowerpot%20key").await;
    assert_eq!(ctx["episodes"][0]["id"], id, "{ctx}");
    let (s, ep2) = send(
        &t,
        "PATCH",
        &format!("/api/memory/episodic/cy/{id}"),
        Some(json!({"text": "Cy keeps a spare key in the mailbox."})),
    )
    .await;
    assert_eq!(s, 200, "{ep2}");
    let (_, ctx) = t.get("/api/memory/context/cy?query=mailbox").await;
    assert_eq!(ctx["episodes"][0]["id"], id, "{ctx}");
    assert!(
        !ctx["context"].as_str().unwrap().contains("flowerpot"),
        "{ctx}"
    );
    let (_, ctx) = t.get("/api/memory/context/cy?query=flowerpot").await;
    assert!(
        !ctx["context"].as_str().unwrap().contains("flowerpot"),
        "{ctx}"
    );

    // Rule: add one, it is a standing rule at once; change it; delete it.
    let (s, rule) = send(
        &t,
        "POST",
        "/api/memory/procedural/cy",
        Some(json!({"statement": "Answer in French.", "kind": "instruction", "topic": "language"})),
    )
    .await;
    assert_eq!(s, 201, "{rule}");
    let rid = rule["id"].as_i64().unwrap();
    let (_, ctx) = t.get("/api/memory/context/cy").await;
    assert!(
        ctx["context"]
            .as_str()
            .unwrap()
            .contains("Answer in French."),
        "{ctx}"
    );
    let (s, _) = send(
        &t,
        "PATCH",
        &format!("/api/memory/procedural/cy/{rid}"),
        Some(json!({"statement": "Answer in Italian."})),
    )
    .await;
    assert_eq!(s, 200);
    let (_, ctx) = t.get("/api/memory/context/cy").await;
    let text = ctx["context"].as_str().unwrap();
    assert!(
        text.contains("Answer in Italian.") && !text.contains("French"),
        "{ctx}"
    );
    let (s, _) = send(
        &t,
        "DELETE",
        &format!("/api/memory/procedural/cy/{rid}"),
        None,
    )
    .await;
    assert_eq!(s, 200);
    let (_, ctx) = t.get("/api/memory/context/cy").await;
    assert!(
        !ctx["context"].as_str().unwrap().contains("Italian"),
        "{ctx}"
    );

    // Fact: add one about an entity, recall names it.
    let (s, f) = send(&t, "POST", "/api/memory/semantic/cy",
                      Some(json!({"subject": "Cy", "predicate": "works at", "object": "Acme", "valid_at": "2024-01-01T00:00:00Z"}))).await;
    assert_eq!(s, 201, "{f}");
    assert_eq!(
        (f["predicate"].as_str(), f["fact"].as_str()),
        (Some("WORKS_AT"), Some("Cy works at Acme."))
    );
    let (_, ctx) = t
        .get("/api/memory/context/cy?query=Where%20does%20Cy%20work")
        .await;
    assert!(
        ctx["facts"]
            .as_array()
            .unwrap()
            .iter()
            .any(|x| x["id"] == f["id"]),
        "{ctx}"
    );
    let (s, dup) = send(&t, "POST", "/api/memory/semantic/cy",
                        Some(json!({"subject": "Cy", "predicate": "WORKS_AT", "object": "Acme", "valid_at": "2024-01-01T00:00:00Z"}))).await;
    assert_eq!(s, 409, "{dup}");

    // Every change is in the audit record, newest first.
    let (_, edits) = t.get("/api/memory/edits/cy").await;
    let actions: Vec<(&str, &str)> = edits["edits"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["tier"].as_str().unwrap(), e["action"].as_str().unwrap()))
        .collect();
    assert_eq!(
        actions,
        [
            ("semantic", "add"),
            ("procedural", "delete"),
            ("procedural", "update"),
            ("procedural", "add"),
            ("episodic", "update"),
            ("episodic", "add")
        ]
    );
    t.stop().await;
}

#[tokio::test]
async fn bad_edits_name_the_field_and_ids_are_per_user() {
    let t = start().await;
    let (_, ep) = send(
        &t,
        "POST",
        "/api/memory/episodic/dee",
        Some(json!({"text": "Dee plays chess on Sundays."})),
    )
    .await;
    let id = ep["id"].as_i64().unwrap();
    for (method, path, body, field) in [
        (
            "POST",
            "/api/memory/episodic/dee".to_string(),
            json!({"txt": "typo"}),
            "txt",
        ),
        ("POST", "/api/memory/episodic/dee".into(), json!({}), "text"),
        (
            "POST",
            "/api/memory/episodic/dee".into(),
            json!({"text": "x", "importance": 3}),
            "importance",
        ),
        (
            "POST",
            "/api/memory/episodic/dee".into(),
            json!({"text": "x", "occurred_at": "soon"}),
            "occurred_at",
        ),
        (
            "POST",
            "/api/memory/semantic/dee".into(),
            json!({"subject": "Dee", "predicate": "LIKES!", "object": "chess"}),
            "predicate",
        ),
        (
            "POST",
            "/api/memory/procedural/dee".into(),
            json!({"statement": "Be brief.", "kind": "wish"}),
            "kind",
        ),
        (
            "PATCH",
            format!("/api/memory/episodic/dee/{id}"),
            json!({}),
            "body",
        ),
        (
            "PATCH",
            "/api/memory/episodic/dee/abc".into(),
            json!({"text": "x"}),
            "id",
        ),
    ] {
        let (s, e) = send(&t, method, &path, Some(body.clone())).await;
        assert_eq!(
            (s, e["field"].as_str()),
            (422, Some(field)),
            "{method} {path} {body}: {e}"
        );
    }
    // Another user's id is not found under this user, and nothing changes.
    let (s, e) = send(
        &t,
        "PATCH",
        &format!("/api/memory/episodic/eve/{id}"),
        Some(json!({"text": "hijacked"})),
    )
    .await;
    assert_eq!(s, 404, "{e}");
    let (s, _) = send(
        &t,
        "DELETE",
        &format!("/api/memory/episodic/eve/{id}"),
        None,
    )
    .await;
    assert_eq!(s, 404);
    let (_, mine) = t.get("/api/memory/episodic/dee").await;
    assert_eq!(mine["episodes"][0]["text"], "Dee plays chess on Sundays.");
    let (_, edits) = t.get("/api/memory/edits/eve").await;
    assert_eq!(edits["edits"], json!([]));
    t.stop().await;
}

/// Found by schemathesis: adding the fact a slot already holds, with a later `valid_at`, is a
/// restatement that the slot's rederivation merges into the existing fact. The answer is
/// that fact (201), not a 500 for the merged row.
#[tokio::test]
async fn restating_a_slots_fact_answers_with_the_fact_it_merged_into() {
    let t = start().await;
    let fact = |valid_at: &str| {
        json!({"subject": "Di", "predicate": "LIVES_IN", "object": "Oslo",
               "valid_at": valid_at, "exclusive": true})
    };
    let (s, first) = send(
        &t,
        "POST",
        "/api/memory/semantic/di",
        Some(fact("2024-01-01T00:00:00Z")),
    )
    .await;
    assert_eq!(s, 201, "{first}");
    let (s, again) = send(
        &t,
        "POST",
        "/api/memory/semantic/di",
        Some(fact("2024-06-01T00:00:00Z")),
    )
    .await;
    assert_eq!(s, 201, "{again}");
    assert_eq!(again["id"], first["id"], "{again}");
    let (_, sem) = t.get("/api/memory/semantic/di").await;
    assert_eq!(sem["facts"].as_array().unwrap().len(), 1, "{sem}");
    t.stop().await;
}
