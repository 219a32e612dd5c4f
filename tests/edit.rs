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

// A fact's text must state its predicate (issue 18): the clause analysis reads the `fact`
// text as a turn its subject says; when it reads relations of the subject there and none is
// the predicate, the edit is refused with a 422 naming `fact`.

/// Facts whose text states another relation than their predicate: (subject, predicate,
/// object, fact text, the relation the text states). Third person, with the subject's name,
/// one everyday sentence each.
const MISMATCHED: &[(&str, &str, &str, &str, &str)] = &[
    (
        "Ana",
        "WORKS_AT",
        "Acme",
        "Ana lives in Munich.",
        "LIVES_IN",
    ),
    (
        "Ben",
        "LIVES_IN",
        "Oslo",
        "Ben works at Equinor.",
        "WORKS_AT",
    ),
    (
        "Cara",
        "HAS_JOB",
        "nurse",
        "Cara lives in Leeds.",
        "LIVES_IN",
    ),
    ("Dan", "LIKES", "jazz", "Dan works as a plumber.", "HAS_JOB"),
    (
        "Eli",
        "PARTNER_OF",
        "Sam",
        "Eli has a dog named Rex.",
        "HAS_PET",
    ),
    ("Fay", "WORKS_AT", "Globex", "Fay is a dentist.", "HAS_JOB"),
    ("Gus", "HAS_PET", "Milo", "Gus loves hiking.", "LIKES"),
    (
        "Hana",
        "LIVES_IN",
        "Kyoto",
        "Hana was born in Osaka.",
        "FROM",
    ),
    (
        "Ivo",
        "FROM",
        "Zagreb",
        "Ivo moved to Vienna last year.",
        "LIVES_IN",
    ),
    (
        "Jo",
        "RELATIONSHIP_STATUS",
        "married",
        "Jo works for Siemens.",
        "WORKS_AT",
    ),
    (
        "Kai",
        "LIKES",
        "sushi",
        "Kai visited Lisbon in May.",
        "VISITED",
    ),
    ("Lea", "VISITED", "Rome", "Lea lives in Rome.", "LIVES_IN"),
    (
        "Max",
        "STUDIES",
        "law",
        "Max works at Deutsche Bahn.",
        "WORKS_AT",
    ),
    (
        "Nia",
        "HAS_JOB",
        "teacher",
        "Nia is married.",
        "RELATIONSHIP_STATUS",
    ),
    (
        "Omar",
        "LIVES_IN",
        "Cairo",
        "Omar's wife is Layla.",
        "PARTNER_OF",
    ),
    (
        "Pia",
        "WORKS_AT",
        "Spotify",
        "Pia studies medicine.",
        "STUDIES",
    ),
    (
        "Quinn",
        "PARTNER_OF",
        "Alex",
        "Quinn's sister is called Maya.",
        "HAS_SISTER",
    ),
    (
        "Rui",
        "HAS_PET",
        "Bolt",
        "Rui joined a running club.",
        "MEMBER_OF",
    ),
    (
        "Sara",
        "LIKES",
        "tennis",
        "Sara's birthday is on 3 March.",
        "HAS_BIRTHDAY",
    ),
    ("Tom", "HAS_JOB", "chef", "Tom enjoys gardening.", "LIKES"),
    (
        "Uma",
        "LIVES_IN",
        "Delhi",
        "Uma is a software engineer.",
        "HAS_JOB",
    ),
    ("Vic", "WORKS_AT", "Ikea", "Vic grew up in Malmo.", "FROM"),
    ("Wen", "FROM", "Taipei", "Wen works at TSMC.", "WORKS_AT"),
    (
        "Yara",
        "HAS_MOTHER",
        "Rosa",
        "Yara's father is Luis.",
        "HAS_FATHER",
    ),
    // The subject as the user typed it, in lower case: compared case-insensitively.
    (
        "zoe",
        "WORKS_AT",
        "Bosch",
        "Zoe lives in Stuttgart.",
        "LIVES_IN",
    ),
];

/// The user id of a case: one user per subject, so cases cannot meet in a slot.
fn case_user(subject: &str) -> String {
    format!("refuse-{}", subject.to_lowercase())
}

/// `None` when the answer is the refusal the case expects, else what is wrong with it.
fn wrong_refusal(status: u16, body: &Value, predicate: &str, states: &str) -> Option<String> {
    let message = body["message"].as_str().unwrap_or_default();
    let refused = status == 422
        && body["field"] == "fact"
        && message.contains(states)
        && message.contains(&format!("not {predicate}"));
    (!refused).then(|| format!("{status} {body}"))
}

/// Panics listing the cases that went wrong, after listing those that went right.
fn report(what: &str, passed: &[String], failed: &[String]) {
    eprintln!("{what}: {} passed: {passed:#?}", passed.len());
    assert!(
        failed.is_empty(),
        "{what}: {} of {} failed: {failed:#?}",
        failed.len(),
        passed.len() + failed.len()
    );
}

#[tokio::test]
async fn adding_a_fact_whose_text_states_another_relation_is_refused_naming_fact() {
    assert!(MISMATCHED.len() >= 20);
    let t = start().await;
    let (mut passed, mut failed) = (Vec::new(), Vec::new());
    for &(subject, predicate, object, fact, states) in MISMATCHED {
        let user = case_user(subject);
        let (s, e) = send(
            &t,
            "POST",
            &format!("/api/memory/semantic/{user}"),
            Some(
                json!({"subject": subject, "predicate": predicate, "object": object, "fact": fact}),
            ),
        )
        .await;
        let case = format!("{subject} {predicate} {fact:?}");
        match wrong_refusal(s, &e, predicate, states) {
            None => passed.push(case.clone()),
            Some(got) => failed.push(format!("{case} → {got}")),
        }
        // Refused or not, a refusal stores nothing: either nothing or the accepted fact.
        let (_, sem) = t.get(&format!("/api/memory/semantic/{user}")).await;
        let stored = sem["facts"].as_array().unwrap().len();
        assert_eq!(stored, usize::from(s == 201), "{case}: {sem}");
    }
    report("POST with a mismatched fact text", &passed, &failed);
    t.stop().await;
}

#[tokio::test]
async fn changing_a_facts_text_to_one_that_states_another_relation_is_refused_naming_fact() {
    let t = start().await;
    let (mut passed, mut failed) = (Vec::new(), Vec::new());
    for &(subject, predicate, object, fact, states) in MISMATCHED {
        let user = case_user(subject);
        // Added without a text: the default sentence is not analysed.
        let (s, added) = send(
            &t,
            "POST",
            &format!("/api/memory/semantic/{user}"),
            Some(json!({"subject": subject, "predicate": predicate, "object": object})),
        )
        .await;
        assert_eq!(s, 201, "{added}");
        let id = added["id"].as_i64().unwrap();
        let (s, e) = send(
            &t,
            "PATCH",
            &format!("/api/memory/semantic/{user}/{id}"),
            Some(json!({"fact": fact})),
        )
        .await;
        let case = format!("{subject} {predicate} {fact:?}");
        match wrong_refusal(s, &e, predicate, states) {
            None => passed.push(case.clone()),
            Some(got) => failed.push(format!("{case} → {got}")),
        }
        if s == 422 {
            // The fact is as it was, and no edit was recorded.
            let (_, sem) = t.get(&format!("/api/memory/semantic/{user}")).await;
            assert_eq!(sem["facts"][0]["fact"], added["fact"], "{case}: {sem}");
            let (_, edits) = t.get(&format!("/api/memory/edits/{user}")).await;
            assert_eq!(
                edits["edits"].as_array().unwrap().len(),
                1,
                "{case}: {edits}"
            );
        }
    }
    report("PATCH with a mismatched fact text", &passed, &failed);
    t.stop().await;
}

/// First-person text reads as the subject speaking ("I" is the subject), as the extractor
/// reads a turn: refused when it states another relation, accepted when it states the
/// predicate.
#[tokio::test]
async fn first_person_fact_text_is_read_as_the_subject_speaking() {
    let t = start().await;
    let (s, e) = send(
        &t,
        "POST",
        "/api/memory/semantic/fp",
        Some(json!({"subject": "Ana", "predicate": "WORKS_AT", "object": "Acme", "fact": "I live in Munich."})),
    )
    .await;
    assert_eq!(
        (s, e["field"].as_str(), e["message"].as_str()),
        (
            422,
            Some("fact"),
            Some("fact: states LIVES_IN, not WORKS_AT")
        ),
        "{e}"
    );
    let (s, f) = send(
        &t,
        "POST",
        "/api/memory/semantic/fp",
        Some(json!({"subject": "Ana", "predicate": "works at", "object": "Acme", "fact": "I work at Acme."})),
    )
    .await;
    assert_eq!(s, 201, "{f}");
    let id = f["id"].as_i64().unwrap();
    for (fact, states) in [
        ("I live in Munich.", "LIVES_IN"),
        ("I love hiking.", "LIKES"),
        ("I'm a nurse.", "HAS_JOB"),
    ] {
        let (s, e) = send(
            &t,
            "PATCH",
            &format!("/api/memory/semantic/fp/{id}"),
            Some(json!({"fact": fact, "object": "Globex"})),
        )
        .await;
        assert_eq!((s, e["field"].as_str()), (422, Some("fact")), "{fact}: {e}");
        assert_eq!(
            e["message"],
            format!("fact: states {states}, not WORKS_AT"),
            "{e}"
        );
    }
    // Neither the object nor the text changed with a refused PATCH.
    let (_, sem) = t.get("/api/memory/semantic/fp").await;
    assert_eq!(
        (
            sem["facts"][0]["object"].as_str(),
            sem["facts"][0]["fact"].as_str()
        ),
        (Some("Acme"), Some("I work at Acme.")),
        "{sem}"
    );
    let (s, f) = send(
        &t,
        "PATCH",
        &format!("/api/memory/semantic/fp/{id}"),
        Some(json!({"fact": "I work at Globex now.", "object": "Globex"})),
    )
    .await;
    assert_eq!((s, f["object"].as_str()), (200, Some("Globex")), "{f}");
    // Another user's id, or a missing one, is 404 (not a 422 about the text).
    for path in [
        format!("/api/memory/semantic/other/{id}"),
        "/api/memory/semantic/fp/999".to_string(),
    ] {
        let (s, e) = send(
            &t,
            "PATCH",
            &path,
            Some(json!({"fact": "I live in Munich."})),
        )
        .await;
        assert_eq!(s, 404, "{path}: {e}");
    }
    t.stop().await;
}

/// Accepted: text that states the predicate (alone or with other relations), text the
/// analysis reads no relation of the subject in, unknown predicates, and facts without a text.
#[tokio::test]
async fn fact_texts_that_state_the_predicate_or_nothing_known_are_accepted() {
    let t = start().await;
    let cases: &[(&str, &str, &str, &str)] = &[
        // The text states the predicate.
        ("Ana", "LIVES_IN", "Munich", "Ana lives in Munich."),
        ("Ben", "WORKS_AT", "Equinor", "Ben works at Equinor."),
        ("Cara", "HAS_JOB", "nurse", "Cara is a nurse."),
        ("Gus", "LIKES", "hiking", "Gus loves hiking."),
        ("Hana", "FROM", "Osaka", "Hana was born in Osaka."),
        ("Eli", "HAS_PET", "Rex", "Eli has a dog named Rex."),
        ("Kai", "VISITED", "Lisbon", "Kai visited Lisbon in May."),
        ("Pia", "STUDIES", "medicine", "Pia studies medicine."),
        (
            "Max",
            "works at",
            "Siemens",
            "Max lives in Munich and works at Siemens.",
        ),
        ("Ana", "LIVES_IN", "Munich", "I live in Munich."),
        // Predicates the analysis does not know, with the text saying just that.
        ("Ana", "OWNS_CAR", "Volvo", "Ana drives a 2012 Volvo."),
        (
            "Ben",
            "SPEAKS",
            "Portuguese",
            "Ben speaks Portuguese fluently.",
        ),
        (
            "Cara",
            "ALLERGIC_TO",
            "peanuts",
            "Cara is allergic to peanuts.",
        ),
        ("Dan", "SUPPORTS", "Celtic", "Dan supports Celtic."),
        // Text it reads no relation in, and another person's relation.
        ("Eli", "PARTNER_OF", "Sam", "See the notes from March."),
        ("Fay", "WORKS_AT", "Globex", "Tim lives in Paris."),
    ];
    for (i, &(subject, predicate, object, fact)) in cases.iter().enumerate() {
        let user = format!("accept-{i}");
        let (s, f) = send(
            &t,
            "POST",
            &format!("/api/memory/semantic/{user}"),
            Some(
                json!({"subject": subject, "predicate": predicate, "object": object, "fact": fact}),
            ),
        )
        .await;
        assert_eq!(s, 201, "{subject} {predicate} {fact:?}: {f}");
        assert_eq!(f["fact"], fact, "{f}");
        // The same text again as a PATCH of the stored fact, now with another object.
        let id = f["id"].as_i64().unwrap();
        let (s, f) = send(
            &t,
            "PATCH",
            &format!("/api/memory/semantic/{user}/{id}"),
            Some(json!({"fact": fact, "object": format!("{object} 2")})),
        )
        .await;
        assert_eq!(s, 200, "PATCH {subject} {predicate} {fact:?}: {f}");
    }
    // Without a text, the default sentence is stored as before.
    let (s, f) = send(
        &t,
        "POST",
        "/api/memory/semantic/accept-default",
        Some(json!({"subject": "Ana", "predicate": "OWNS_CAR", "object": "Volvo"})),
    )
    .await;
    assert_eq!(
        (s, f["fact"].as_str()),
        (201, Some("Ana owns car Volvo.")),
        "{f}"
    );
    t.stop().await;
}

/// The analysis behind the refusal, as a pure function.
#[test]
fn stated_predicates_reads_the_text_as_the_subject_speaking() {
    use reflector::extract::stated_predicates;
    assert_eq!(stated_predicates("Ana", "I live in Munich."), ["LIVES_IN"]);
    assert_eq!(
        stated_predicates("  Ana ", "I live in Munich."),
        ["LIVES_IN"]
    );
    // Each predicate once, in the order stated.
    assert_eq!(
        stated_predicates(
            "Ana",
            "I love jazz. I live in Munich. I moved to Berlin. I love tea."
        ),
        ["LIKES", "LIVES_IN"]
    );
    // Nothing known, nothing readable, a question, a negation.
    for text in [
        "Ana owns a red Volvo.",
        "asdf qwerty",
        "",
        "Do I live in Munich?",
        "I don't live in Paris anymore.",
    ] {
        assert_eq!(
            stated_predicates("Ana", text),
            Vec::<String>::new(),
            "{text:?}"
        );
    }
    // Pure: the same answer every time.
    assert_eq!(
        stated_predicates("Ana", "I work at Acme."),
        stated_predicates("Ana", "I work at Acme.")
    );
}

/// The intended reading of third-person text: the subject's name is the subject.
#[test]
fn stated_predicates_reads_third_person_text_about_the_subject() {
    use reflector::extract::stated_predicates;
    let (mut passed, mut failed) = (Vec::new(), Vec::new());
    for &(subject, _, _, fact, states) in MISMATCHED {
        let got = stated_predicates(subject, fact);
        let case = format!("{subject} {fact:?}");
        if got.iter().any(|p| p == states) {
            passed.push(case);
        } else {
            failed.push(format!("{case} → {got:?}, expected {states}"));
        }
    }
    // Another person's relation is not the subject's.
    let other = stated_predicates("Ana", "Ben lives in Munich.");
    if !other.is_empty() {
        failed.push(format!(
            "Ana \"Ben lives in Munich.\" → {other:?}, expected none"
        ));
    }
    report("third-person stated_predicates", &passed, &failed);
}
