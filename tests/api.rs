//! End-to-end tests of the HTTP API on embedded defaults: the real server on a free port.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use common::*;
use reflector::job::Tier;
use reflector::server::Options;
use serde_json::{Value, json};

#[tokio::test]
async fn fast_path_stores_then_reflects_into_every_tier_and_recalls() {
    let t = start().await;
    let (s, r) = t
        .turn(
            "ana",
            "I live in Paris now. I went to the Louvre with my sister Lucia yesterday. Please always answer in Spanish.",
            "2024-03-03T09:15:00Z",
            json!({"interaction_id": "turn-1", "metadata": {"speaker": "Ana", "dia_id": "D1:3"}}),
        )
        .await;
    assert_eq!(s, 202, "{r}");
    assert_eq!(r["interaction_id"], "turn-1");
    assert_eq!(r["status"], "queued");
    assert!(["low", "normal", "high", "urgent"].contains(&r["priority"].as_str().unwrap()));
    let job = t.wait_job(r["reflection_job_id"].as_str().unwrap()).await;
    assert_eq!(job["state"], "completed", "{job}");
    let tiers: Vec<&str> = job["tiers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["status"].as_str().unwrap())
        .collect();
    assert_eq!(tiers, vec!["completed"; 3], "{job}");

    let (_, ep) = t.get("/api/memory/episodic/ana").await;
    let text = ep["episodes"][0]["text"].as_str().unwrap();
    assert!(text.contains("Ana"), "{text}");
    assert!(
        text.contains("2 March 2024"),
        "yesterday resolved against the turn's date: {text}"
    );
    let (_, sem) = t.get("/api/memory/semantic/ana").await;
    assert!(
        sem["facts"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f["predicate"] == "LIVES_IN"),
        "{sem}"
    );
    let (_, pro) = t.get("/api/memory/procedural/ana").await;
    assert!(!pro["rules"].as_array().unwrap().is_empty(), "{pro}");

    let (s, ctx) = t
        .get("/api/memory/context/ana?query=Where%20did%20Ana%20go%20with%20Lucia&limit=5")
        .await;
    assert_eq!(s, 200, "{ctx}");
    let mems = ctx["memories"].as_array().unwrap();
    assert!(!mems.is_empty() && mems.len() <= 5);
    assert!(
        mems.iter()
            .any(|m| m["tier"] == "episodic" && m["evidence"] == json!(["D1:3"])),
        "{ctx}"
    );
    assert!(ctx["context"].as_str().unwrap().contains("Louvre"));
    for m in mems {
        assert!(m["score"].as_f64().is_some() && m["text"].is_string());
    }
    t.stop().await;
}

#[tokio::test]
async fn a_turn_is_recallable_before_it_is_reflected() {
    let t = start_with(
        |_| {},
        Options {
            no_workers: true,
            ..Default::default()
        },
    )
    .await;
    let (s, _) = t
        .turn(
            "bob",
            "My favourite band is Radiohead",
            "2024-01-01T10:00:00Z",
            json!({}),
        )
        .await;
    assert_eq!(s, 202);
    let (_, ctx) = t
        .get("/api/memory/context/bob?query=favourite%20band")
        .await;
    let st = ctx["short_term"].as_array().unwrap();
    assert_eq!(st.len(), 1);
    assert_eq!(st[0]["reflected"], false);
    assert!(
        ctx["memories"]
            .as_array()
            .unwrap()
            .iter()
            .any(|m| m["tier"] == "short_term"),
        "{ctx}"
    );
    let (_, health) = t.get("/api/reflection/health").await;
    assert_eq!(
        health["status"], "degraded",
        "jobs waiting and no workers: {health}"
    );
    t.stop().await;
}

#[tokio::test]
async fn traditional_path_reflects_inline_and_answers_200() {
    let t = start_with(|c| c.fast_mode = false, Options::default()).await;
    let (s, r) = t
        .turn(
            "carol",
            "I work at Acme Corp as an engineer.",
            "2024-02-01T12:00:00Z",
            json!({}),
        )
        .await;
    assert_eq!(s, 200, "{r}");
    assert_eq!(r["status"], "completed");
    assert_eq!(r["results"]["tiers"].as_array().unwrap().len(), 3);
    let (_, job) = t
        .get(&format!(
            "/api/reflection/jobs/{}",
            r["reflection_job_id"].as_str().unwrap()
        ))
        .await;
    assert_eq!(job["state"], "completed");
    t.stop().await;
}

#[tokio::test]
async fn reflection_disabled_also_takes_the_traditional_path() {
    let t = start_with(|c| c.reflection_enabled = false, Options::default()).await;
    let (s, r) = t
        .turn(
            "dan",
            "I adopted a dog named Rex.",
            "2024-02-01T12:00:00Z",
            json!({}),
        )
        .await;
    assert_eq!(s, 200, "{r}");
    t.stop().await;
}

#[tokio::test]
async fn interaction_id_is_an_idempotency_key() {
    let t = start().await;
    let extra = json!({"interaction_id": "same-1"});
    let (s1, a) = t
        .turn(
            "eve",
            "I moved to Lisbon.",
            "2024-01-01T00:00:00Z",
            extra.clone(),
        )
        .await;
    let (s2, b) = t
        .turn(
            "eve",
            "I moved to Lisbon.",
            "2024-01-01T00:00:00Z",
            extra.clone(),
        )
        .await;
    assert_eq!((s1, s2), (202, 202));
    assert_eq!(a["reflection_job_id"], b["reflection_job_id"]);
    assert_eq!(b["idempotent_replay"], true);
    let (s3, c) = t
        .turn("eve", "I moved to Porto.", "2024-01-01T00:00:00Z", extra)
        .await;
    assert_eq!(s3, 409, "{c}");
    assert!(c["message"].as_str().unwrap().contains("interaction_id"));
    let (_, st) = t.get("/api/memory/stats/eve").await;
    assert_eq!(st["short_term"]["turns"], 1);
    t.stop().await;
}

#[tokio::test]
async fn bad_input_gets_4xx_naming_the_field() {
    let t = start_with(|c| c.max_body_bytes = 4096, Options::default()).await;
    let (s, e) = t
        .post(
            "/api/interactions",
            &json!({"session_id": "s", "user_message": "x"}),
        )
        .await;
    assert_eq!((s, e["field"].as_str()), (422, Some("user_id")), "{e}");
    let (s, e) = t
        .post(
            "/api/interactions",
            &json!({"user_id": "u", "session_id": "s", "user_message": 5}),
        )
        .await;
    assert_eq!((s, e["field"].as_str()), (422, Some("user_message")), "{e}");
    let (s, e) = t
        .post("/api/interactions", &json!({"user_id": "u", "session_id": "s", "user_message": "x", "timestamp": "tuesday"}))
        .await;
    assert_eq!((s, e["field"].as_str()), (422, Some("timestamp")), "{e}");
    let (s, _) = t.post_raw("/api/interactions", b"{not json".to_vec()).await;
    assert_eq!(s, 400);
    let big = json!({"user_id": "u", "session_id": "s", "user_message": "x".repeat(10_000)});
    let (s, e) = t
        .post_raw("/api/interactions", big.to_string().into_bytes())
        .await;
    assert_eq!(s, 413, "{e}");
    let (s, _) = t.get("/api/reflection/jobs/nope").await;
    assert_eq!(s, 404);
    // A known route asked with another method: 405 with `Allow` and the JSON error body.
    let r = t.get_response("/api/interactions").await;
    assert_eq!(r.status().as_u16(), 405);
    let allow = r.headers()["allow"].to_str().unwrap().to_string();
    assert!(allow.contains("POST"), "Allow: {allow}");
    let e: Value = r.json().await.unwrap();
    assert_eq!(e["error"], "method_not_allowed", "{e}");
    assert!(e["message"].as_str().unwrap().contains("Allow"), "{e}");
    let (s, e) = t.get("/api/memory/context/u?limit=0").await;
    assert_eq!((s, e["field"].as_str()), (422, Some("limit")));
    let (_, st) = t.get("/api/memory/stats/u").await;
    assert_eq!(st["short_term"]["turns"], 0, "nothing half-written");
    t.stop().await;
}

#[tokio::test]
async fn users_with_dots_and_route_words_are_just_users() {
    let t = start().await;
    for user in ["alice.smith", "context", "stats"] {
        let (s, r) = t
            .turn(
                user,
                &format!("I am {user} and I like chess."),
                "2024-01-01T00:00:00Z",
                json!({}),
            )
            .await;
        assert_eq!(s, 202, "{r}");
        t.wait_job(r["reflection_job_id"].as_str().unwrap()).await;
        let (s, ep) = t.get(&format!("/api/memory/episodic/{user}")).await;
        assert_eq!(s, 200);
        assert_eq!(ep["episodes"].as_array().unwrap().len(), 1, "{user}: {ep}");
    }
    t.stop().await;
}

#[tokio::test]
async fn a_failing_tier_retries_with_backoff_then_dead_letters_and_replays() {
    let fail = Arc::new(AtomicBool::new(true));
    let f = fail.clone();
    let opts = Options {
        seams: reflector::seams::Seams::failing(Arc::new(move |_job, tier| {
            (tier == Tier::Semantic && f.load(Ordering::SeqCst))
                .then(|| "injected graph store failure".to_string())
        })),
        ..Default::default()
    };
    let t = start_with(|c| c.max_retries = 2, opts).await;
    let (_, r) = t
        .turn(
            "frank",
            "I went hiking in the Alps last weekend.",
            "2024-06-10T08:00:00Z",
            json!({}),
        )
        .await;
    let id = r["reflection_job_id"].as_str().unwrap().to_string();
    let job = t.wait_job(&id).await;
    assert_eq!(job["state"], "dead", "{job}");
    assert_eq!(job["attempts"], 3, "first try + max_retries: {job}");
    assert!(
        job["dead_reason"]
            .as_str()
            .unwrap()
            .contains("semantic: injected"),
        "{job}"
    );
    let tiers: std::collections::HashMap<String, String> = job["tiers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| {
            (
                x["tier"].as_str().unwrap().into(),
                x["status"].as_str().unwrap().into(),
            )
        })
        .collect();
    assert_eq!(tiers["episodic"], "completed");
    assert_eq!(tiers["semantic"], "failed");
    let (_, ep) = t.get("/api/memory/episodic/frank").await;
    assert_eq!(
        ep["episodes"].as_array().unwrap().len(),
        1,
        "committed tiers ran once"
    );

    let (_, dlq) = t.get("/api/reflection/dlq").await;
    assert_eq!(dlq["jobs"][0]["job_id"], id.as_str());
    fail.store(false, Ordering::SeqCst);
    let (s, rep) = t
        .post("/api/reflection/dlq/replay", &json!({"job_ids": [id]}))
        .await;
    assert_eq!((s, rep["replayed"].as_i64()), (200, Some(1)));
    let job = t.wait_job(&id).await;
    assert_eq!(job["state"], "completed", "{job}");
    let (_, ep) = t.get("/api/memory/episodic/frank").await;
    assert_eq!(
        ep["episodes"].as_array().unwrap().len(),
        1,
        "replay did not duplicate the episode"
    );
    t.stop().await;
}

#[tokio::test]
async fn an_unknown_time_zone_from_another_producer_is_dead_at_once() {
    let t = start_with(
        |_| {},
        Options {
            no_workers: true,
            ..Default::default()
        },
    )
    .await;
    let store = t.svc.as_ref().unwrap().store.clone();
    let job: reflector::job::ReflectionJob = serde_json::from_value(json!({
        "job_id": "ext-1", "user_id": "gina", "session_id": "s", "user_message": "hello there, I moved to Oslo",
        "timestamp": "2024-01-01T00:00:00", "priority": 1, "metadata": {"timezone": "Mars/Olympus"},
        "retry_count": 0, "max_retries": 3, "created_at": "2024-01-01T00:00:00"}))
    .unwrap();
    let j = job.clone();
    assert!(store.run(move |s| s.insert_job(&j)).await.unwrap());
    let embed = reflector::server::embed_service(&test_config(t.dir.path())).unwrap();
    let r = reflector::reflect::Reflector::new(store.clone(), embed);
    let cfg = reflector::server::worker_config(&test_config(t.dir.path()));
    assert!(
        reflector::queue::embedded::run_once(&r, "w", &cfg)
            .await
            .unwrap()
    );
    let (_, j) = t.get("/api/reflection/jobs/ext-1").await;
    assert_eq!(j["state"], "dead", "{j}");
    assert_eq!(j["attempts"], 1);
    assert!(
        j["dead_reason"]
            .as_str()
            .unwrap()
            .contains("metadata.timezone"),
        "{j}"
    );
    t.stop().await;
}

#[tokio::test]
async fn time_zones_move_relative_dates_across_day_month_and_year() {
    let t = start().await;
    // 2023-12-31T12:00Z is already 1 January 2024 at +14:00: "yesterday" = 31 December 2023.
    let (_, a) = t
        .turn(
            "kiri",
            "I finished my thesis yesterday.",
            "2023-12-31T12:00:00Z",
            json!({"metadata": {"timezone": "+14:00"}}),
        )
        .await;
    // 2024-01-01T04:00Z is still 31 December 2023 at -10:00: "yesterday" = 30 December 2023.
    let (_, b) = t
        .turn(
            "hono",
            "I finished my thesis yesterday.",
            "2024-01-01T04:00:00Z",
            json!({"metadata": {"timezone": "Pacific/Honolulu"}}),
        )
        .await;
    t.wait_job(a["reflection_job_id"].as_str().unwrap()).await;
    t.wait_job(b["reflection_job_id"].as_str().unwrap()).await;
    let (_, ka) = t.get("/api/memory/episodic/kiri").await;
    let (_, ho) = t.get("/api/memory/episodic/hono").await;
    let ka = ka["episodes"][0]["text"].as_str().unwrap().to_string();
    let ho = ho["episodes"][0]["text"].as_str().unwrap().to_string();
    assert!(ka.contains("31 December 2023"), "{ka}");
    assert!(ho.contains("30 December 2023"), "{ho}");
    // Without metadata.timezone, the timestamp's own offset is the user's: 01:00 at +09:00
    // on 20 August is still the 20th there, so "yesterday" is the 19th.
    let (_, c) = t
        .turn(
            "tokyo",
            "I went to Rome yesterday.",
            "2024-08-20T01:00:00+09:00",
            json!({}),
        )
        .await;
    t.wait_job(c["reflection_job_id"].as_str().unwrap()).await;
    let (_, tk) = t.get("/api/memory/episodic/tokyo").await;
    let tk = tk["episodes"][0]["text"].as_str().unwrap().to_string();
    assert!(
        tk.starts_with("[20 August 2024]") && tk.contains("19 August 2024"),
        "{tk}"
    );
    let (s, e) = t
        .turn(
            "x",
            "hello",
            "2024-01-01T00:00:00Z",
            json!({"metadata": {"timezone": "Mars/Olympus"}}),
        )
        .await;
    assert_eq!(
        (s, e["field"].as_str()),
        (422, Some("metadata.timezone")),
        "{e}"
    );
    t.stop().await;
}

#[tokio::test]
async fn workers_take_higher_priority_first() {
    let t = start_with(
        |_| {},
        Options {
            no_workers: true,
            ..Default::default()
        },
    )
    .await;
    let (_, low) = t
        .turn("pat", "ok thanks", "2024-01-01T00:00:00Z", json!({}))
        .await;
    let (_, normal) = t
        .turn(
            "pat",
            "I bought a new bike.",
            "2024-01-01T00:00:01Z",
            json!({}),
        )
        .await;
    let (_, urgent) = t
        .turn(
            "pat",
            "This is urgent: I am allergic to peanuts.",
            "2024-01-01T00:00:02Z",
            json!({}),
        )
        .await;
    assert_eq!(low["priority"], "low", "{low}");
    assert_eq!(normal["priority"], "normal", "{normal}");
    assert_eq!(urgent["priority"], "urgent", "{urgent}");
    let (_, q) = t.get("/api/reflection/queue-status").await;
    assert_eq!(q["queue"]["waiting"], 3, "{q}");
    let store = t.svc.as_ref().unwrap().store.clone();
    let order: Vec<String> = store
        .run(|s| {
            Ok(s.claim_jobs("w", 3, 60_000)?
                .into_iter()
                .map(|c| c.job.job_id)
                .collect())
        })
        .await
        .unwrap();
    let ids: Vec<&str> = [&urgent, &normal, &low]
        .iter()
        .map(|r| r["reflection_job_id"].as_str().unwrap())
        .collect();
    assert_eq!(order, ids);
    t.stop().await;
}

#[tokio::test]
async fn an_expired_lease_is_taken_over_and_nothing_is_duplicated() {
    let t = start_with(
        |_| {},
        Options {
            no_workers: true,
            ..Default::default()
        },
    )
    .await;
    let (_, r) = t
        .turn(
            "lee",
            "I started a new job at Globex yesterday.",
            "2024-05-02T09:00:00Z",
            json!({}),
        )
        .await;
    let id = r["reflection_job_id"].as_str().unwrap().to_string();
    let store = t.svc.as_ref().unwrap().store.clone();
    // A worker leases the job for 1 ms and "crashes" (never settles it).
    let claimed = store
        .run(|s| s.claim_jobs("crashed-worker", 1, 1))
        .await
        .unwrap();
    assert_eq!(claimed.len(), 1);
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    let cfg = test_config(t.dir.path());
    let embed = reflector::server::embed_service(&cfg).unwrap();
    let r = reflector::reflect::Reflector::new(store.clone(), embed);
    // Run the job twice as if re-delivered: the second run must write nothing new.
    let job = claimed[0].job.clone();
    let first = r.process(&job).await;
    assert!(first.all_committed());
    assert!(
        reflector::queue::embedded::run_once(
            &r,
            "second-worker",
            &reflector::server::worker_config(&cfg)
        )
        .await
        .unwrap()
    );
    let (_, j) = t.get(&format!("/api/reflection/jobs/{id}")).await;
    assert_eq!(j["state"], "completed", "{j}");
    assert_eq!(j["attempts"], 2, "{j}");
    for tier in j["tiers"].as_array().unwrap() {
        assert_eq!(tier["status"], "completed");
    }
    let (_, st) = t.get("/api/memory/stats/lee").await;
    assert_eq!(st["episodic"]["episodes"], 1, "{st}");
    let facts = st["semantic"]["facts"].as_i64().unwrap();
    let again = r.process(&job).await;
    assert!(
        again
            .tiers
            .iter()
            .all(|x| x.result.as_ref().unwrap()["already_committed"] == true),
        "{again:?}"
    );
    let (_, st2) = t.get("/api/memory/stats/lee").await;
    assert_eq!(st2["semantic"]["facts"].as_i64().unwrap(), facts);
    assert_eq!(st2["episodic"]["episodes"], 1);
    t.stop().await;
}

#[tokio::test]
async fn operator_endpoints_answer() {
    let t = start().await;
    let (_, r) = t
        .turn(
            "op",
            "I planted tomatoes in my garden.",
            "2024-04-01T00:00:00Z",
            json!({}),
        )
        .await;
    t.wait_job(r["reflection_job_id"].as_str().unwrap()).await;
    let (s, h) = t.get("/api/reflection/health").await;
    assert_eq!((s, h["status"].as_str()), (200, Some("healthy")), "{h}");
    let (s, st) = t.get("/api/reflection/stats").await;
    assert_eq!(s, 200);
    for k in ["queued", "processing", "retrying", "completed", "dead"] {
        assert!(st["jobs"][k].is_i64(), "{k} in {st}");
    }
    assert_eq!(st["jobs"]["completed"], 1);
    let (s, q) = t.get("/api/reflection/queue-status").await;
    assert_eq!(s, 200);
    assert!(q["queue"]["depth_by_priority"]["urgent"].is_i64(), "{q}");
    let (s, m) = t.get_text("/metrics").await;
    assert_eq!(s, 200);
    assert!(m.contains("reflector_queue_waiting"), "{m}");
    let s = t
        .http
        .delete(format!("{}/api/memory/user/op", t.base))
        .send()
        .await
        .unwrap()
        .status()
        .as_u16();
    assert_eq!(s, 200);
    let (_, st) = t.get("/api/memory/stats/op").await;
    assert_eq!(st["episodic"]["episodes"], 0);
    assert_eq!(st["short_term"]["turns"], 0);
    let v: Value = t.get("/api/memory/context/op?query=garden").await.1;
    assert!(v["memories"].as_array().unwrap().is_empty(), "{v}");
    t.stop().await;
}

#[tokio::test]
async fn forgetting_a_user_with_jobs_in_flight_leaves_nothing_behind() {
    let t = start_with(|c| c.workers = 4, Options::default()).await;
    for i in 0..40 {
        let (s, _) = t
            .turn(
                "gone",
                &format!("I moved to Oslo and adopted a cat named Pixel number {i}. Always answer in Norwegian."),
                "2024-01-01T00:00:00Z",
                json!({}),
            )
            .await;
        assert_eq!(s, 202);
    }
    let s = t
        .http
        .delete(format!("{}/api/memory/user/gone", t.base))
        .send()
        .await
        .unwrap()
        .status()
        .as_u16();
    assert_eq!(s, 200);
    // Let any job that was in a worker's hands at the DELETE finish.
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    let (_, st) = t.get("/api/memory/stats/gone").await;
    for (tier, key) in [
        ("short_term", "turns"),
        ("episodic", "episodes"),
        ("semantic", "entities"),
        ("semantic", "facts"),
        ("procedural", "rules"),
    ] {
        assert_eq!(st[tier][key], 0, "{tier}.{key}: {st}");
    }
    let (_, ctx) = t.get("/api/memory/context/gone?query=cat%20Oslo").await;
    assert!(ctx["memories"].as_array().unwrap().is_empty(), "{ctx}");
    t.stop().await;
}

#[tokio::test]
async fn backpressure_answers_429_with_retry_after_at_the_ceiling_then_202_once_drained() {
    let t = start_with(
        |c| {
            c.max_waiting_per_user = 3;
            c.max_waiting_total = 5;
        },
        Options {
            seams: reflector::seams::Seams::paused(),
            ..Options::default()
        },
    )
    .await;
    let ts = "2024-05-01T10:00:00Z";
    // Per-user ceiling: ana's 4th waiting turn is refused, and nothing of it is stored.
    for i in 0..3 {
        let (s, r) = t
            .turn("ana", &format!("I like tea number {i}."), ts, json!({}))
            .await;
        assert_eq!(s, 202, "{r}");
    }
    let refused = t
        .http
        .post(format!("{}/api/interactions", t.base))
        .json(
            &json!({"user_id": "ana", "session_id": "s1", "user_message": "One more thing.",
                      "timestamp": ts, "interaction_id": "ana-4"}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status().as_u16(), 429);
    let retry: u64 = refused.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&retry), "{retry}");
    let body: Value = refused.json().await.unwrap();
    assert_eq!(body["error"], "too_many_requests", "{body}");
    assert_eq!(body["retry_after_s"], json!(retry));
    assert!(
        body["message"].as_str().unwrap().contains("NOT stored"),
        "{body}"
    );
    let (_, st) = t.get("/api/memory/short-term/ana").await;
    assert_eq!(st["turns"].as_array().unwrap().len(), 3, "{st}");
    // Another user still gets in, up to the total ceiling (5).
    for i in 0..2 {
        let (s, r) = t
            .turn("bob", &format!("I walk my dog {i}."), ts, json!({}))
            .await;
        assert_eq!(s, 202, "{r}");
    }
    let (s, r) = t.turn("cy", "Hello there, I am Cy.", ts, json!({})).await;
    assert_eq!(s, 429, "total ceiling: {r}");
    // Ceilings and depth are visible to operators.
    let (_, q) = t.get("/api/reflection/queue-status").await;
    assert_eq!(
        q["limits"],
        json!({"max_waiting_per_user": 3, "max_waiting_total": 5}),
        "{q}"
    );
    assert_eq!(q["queue"]["waiting"], 5, "{q}");
    assert_eq!(q["queue"]["deepest_user_waiting"], 3, "{q}");
    let (_, m) = t.get_text("/metrics").await;
    assert!(m.contains("reflector_queue_max_waiting_per_user 3"), "{m}");
    assert!(m.contains("reflector_turns_rejected_total"), "{m}");

    // Drain the backlog: the same refused turn is accepted now.
    t.svc.as_ref().unwrap().pause_workers(false);
    for _ in 0..500 {
        let (_, q) = t.get("/api/reflection/queue-status").await;
        if q["queue"]["waiting"] == 0 && q["queue"]["leased"] == 0 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let (s, r) = t
        .post(
            "/api/interactions",
            &json!({"user_id": "ana", "session_id": "s1", "user_message": "One more thing.",
                    "timestamp": ts, "interaction_id": "ana-4"}),
        )
        .await;
    assert_eq!(s, 202, "{r}");
    assert_eq!(
        r["idempotent_replay"], false,
        "the refused attempt stored nothing: {r}"
    );
    t.stop().await;
}

#[tokio::test]
async fn backpressure_ceiling_holds_exactly_under_concurrent_turns() {
    let t = start_with(
        |c| c.max_waiting_per_user = 4,
        Options {
            seams: reflector::seams::Seams::paused(),
            ..Options::default()
        },
    )
    .await;
    let tasks: Vec<_> = (0..20)
        .map(|i| {
            let (http, url) = (t.http.clone(), format!("{}/api/interactions", t.base));
            tokio::spawn(async move {
                let body = json!({"user_id": "dan", "session_id": "s1",
                                  "user_message": format!("I visited museum {i} today."),
                                  "timestamp": "2024-05-01T10:00:00Z"});
                http.post(url)
                    .json(&body)
                    .send()
                    .await
                    .unwrap()
                    .status()
                    .as_u16()
            })
        })
        .collect();
    let mut statuses = Vec::new();
    for h in tasks {
        statuses.push(h.await.unwrap());
    }
    assert_eq!(
        statuses.iter().filter(|s| **s == 202).count(),
        4,
        "{statuses:?}"
    );
    assert_eq!(
        statuses.iter().filter(|s| **s == 429).count(),
        16,
        "{statuses:?}"
    );
    let (_, st) = t.get("/api/memory/short-term/dan?limit=100").await;
    assert_eq!(st["turns"].as_array().unwrap().len(), 4);
    t.stop().await;
}

#[tokio::test]
async fn max_tokens_trims_the_context_highest_ranked_first() {
    let t = start().await;
    let turns = [
        "I adopted a cat named Miso last week.",
        "My sister Lucia lives in Madrid and works as a nurse.",
        "I went hiking in the Alps with my friend Tom in July.",
        "Please always answer in Spanish.",
        "I started learning the cello because I love Bach.",
    ];
    for (i, m) in turns.iter().enumerate() {
        let (s, r) = t
            .turn(
                "eve",
                m,
                &format!("2024-08-0{}T10:00:00Z", i + 1),
                json!({}),
            )
            .await;
        assert_eq!(s, 202, "{r}");
        t.wait_job(r["reflection_job_id"].as_str().unwrap()).await;
    }
    let q = "/api/memory/context/eve?query=Where%20does%20Lucia%20live&limit=10";
    let (s, full) = t.get(q).await;
    assert_eq!(s, 200, "{full}");
    let full_text = full["context"].as_str().unwrap();
    let full_tokens = full["context_tokens"].as_u64().unwrap() as usize;
    assert_eq!(full_tokens, reflector::tokens::estimate_tokens(full_text));
    let top = full["memories"][0]["text"].as_str().unwrap();
    assert!(top.contains("Lucia"), "{full}");

    // A budget the whole block does not fit: fewer tokens, the top memory kept, something omitted.
    let budget = full_tokens / 2;
    let (s, cut) = t.get(&format!("{q}&max_tokens={budget}")).await;
    assert_eq!(s, 200, "{cut}");
    let cut_text = cut["context"].as_str().unwrap();
    let cut_tokens = cut["context_tokens"].as_u64().unwrap() as usize;
    assert!(cut_tokens <= budget, "{cut_tokens} > {budget}");
    assert_eq!(cut_tokens, reflector::tokens::estimate_tokens(cut_text));
    assert!(cut["omitted"].as_u64().unwrap() > 0, "{cut}");
    assert!(
        cut_text.contains(top),
        "the highest-ranked memory stays: {cut_text}"
    );
    assert!(cut_text.len() < full_text.len());
    for line in cut_text.lines().filter(|l| l.starts_with("- ")) {
        assert!(
            full_text.contains(line),
            "only lines of the full block: {line}"
        );
    }
    // A budget the block fits in changes nothing; a tiny one leaves nothing.
    let (_, same) = t.get(&format!("{q}&max_tokens={full_tokens}")).await;
    assert_eq!(same["context"], full["context"]);
    assert_eq!(same["omitted"], 0);
    let (_, none) = t.get(&format!("{q}&max_tokens=1")).await;
    assert_eq!(none["context"], "");
    for bad in ["0", "-3", "many", "1000001"] {
        let (s, e) = t.get(&format!("{q}&max_tokens={bad}")).await;
        assert_eq!(
            (s, e["field"].as_str()),
            (422, Some("max_tokens")),
            "{bad}: {e}"
        );
    }
    t.stop().await;
}

#[tokio::test]
async fn search_by_tier_is_not_crowded_out_by_other_tiers() {
    // Many episodes mention Lucia; the one fact about her must still be found when only
    // the semantic tier is asked for (a filter applied after a top-100 cut lost it).
    let t = start().await;
    let (s, r) = t
        .turn(
            "crowd",
            "My sister Lucia lives in Madrid.",
            "2024-01-01T10:00:00Z",
            json!({}),
        )
        .await;
    assert_eq!(s, 202, "{r}");
    t.wait_job(r["reflection_job_id"].as_str().unwrap()).await;
    for i in 0..130 {
        let ts = format!("2024-02-{:02}T{:02}:00:00Z", 1 + i / 24, i % 24);
        let m = format!("Lucia called me about Lucia's garden, part {i}, Lucia said hi.");
        let (s, r) = t.turn("crowd", &m, &ts, json!({})).await;
        assert_eq!(s, 202, "{r}");
        t.wait_job(r["reflection_job_id"].as_str().unwrap()).await;
    }
    let (s, all) = t
        .get("/api/memory/search/crowd?query=Lucia&limit=100")
        .await;
    assert_eq!(s, 200, "{all}");
    let (_, sem) = t
        .get("/api/memory/search/crowd?query=Lucia&tier=semantic")
        .await;
    let sem = sem["items"].as_array().unwrap();
    assert!(
        sem.iter()
            .any(|i| i["text"].as_str().unwrap().contains("Madrid")),
        "the fact about Lucia: {sem:?} (all tiers: {all})"
    );
    assert!(sem.iter().all(|i| i["tier"] == "semantic"), "{sem:?}");
    t.stop().await;
}

#[tokio::test]
async fn search_returns_ranked_items_filtered_by_tier_and_date() {
    let t = start().await;
    let turns = [
        ("I adopted a cat named Miso.", "2024-03-01T10:00:00Z"),
        ("My sister Lucia lives in Madrid.", "2024-04-01T10:00:00Z"),
        ("Please always answer in Spanish.", "2024-05-01T10:00:00Z"),
        (
            "We took the cat Miso to the vet for her vaccines.",
            "2024-06-01T10:00:00Z",
        ),
    ];
    for (m, ts) in turns {
        let (s, r) = t.turn("sam", m, ts, json!({})).await;
        assert_eq!(s, 202, "{r}");
        t.wait_job(r["reflection_job_id"].as_str().unwrap()).await;
    }
    // Another user's memories never appear.
    let (_, r) = t
        .turn(
            "other",
            "My cat Miso is ill.",
            "2024-06-02T10:00:00Z",
            json!({}),
        )
        .await;
    t.wait_job(r["reflection_job_id"].as_str().unwrap()).await;

    let (s, all) = t.get("/api/memory/search/sam?query=cat%20Miso").await;
    assert_eq!(s, 200, "{all}");
    assert_eq!(
        (all["user_id"].as_str(), all["limit"].as_u64()),
        (Some("sam"), Some(10))
    );
    let items = all["items"].as_array().unwrap();
    assert!(!items.is_empty(), "{all}");
    let scores: Vec<f64> = items.iter().map(|i| i["score"].as_f64().unwrap()).collect();
    assert!(
        scores.windows(2).all(|w| w[0] >= w[1]),
        "best first: {scores:?}"
    );
    for i in items {
        assert!(i["date"].as_str().is_some_and(|d| d.ends_with('Z')), "{i}");
        assert!(!i["evidence"].as_array().unwrap().is_empty(), "{i}");
        assert!(
            !i["text"].as_str().unwrap().contains("ill"),
            "another user's: {i}"
        );
    }
    // Episodes come as themselves, without the neighbouring turns /context adds.
    let episodes: Vec<&Value> = items.iter().filter(|i| i["tier"] == "episodic").collect();
    assert!(episodes.len() >= 2, "{all}");
    for e in &episodes {
        assert_eq!(e["text"].as_str().unwrap().lines().count(), 1, "{e}");
    }

    // Tier filter, date filter (`until` as a date includes that day), and both.
    let (_, ep) = t
        .get("/api/memory/search/sam?query=cat%20Miso&tier=episodic")
        .await;
    assert!(
        ep["items"]
            .as_array()
            .unwrap()
            .iter()
            .all(|i| i["tier"] == "episodic"),
        "{ep}"
    );
    let (_, june) = t
        .get("/api/memory/search/sam?query=cat%20Miso&tier=episodic&since=2024-05-15")
        .await;
    let june = june["items"].as_array().unwrap();
    assert_eq!(june.len(), 1, "{june:?}");
    assert!(june[0]["text"].as_str().unwrap().contains("vet"));
    let (_, march) = t
        .get("/api/memory/search/sam?query=cat%20Miso&tier=episodic&until=2024-03-01")
        .await;
    let march = march["items"].as_array().unwrap();
    assert_eq!(march.len(), 1, "{march:?}");
    assert!(march[0]["text"].as_str().unwrap().contains("adopted"));
    let (_, one) = t
        .get("/api/memory/search/sam?query=cat%20Miso&limit=1")
        .await;
    assert_eq!(one["items"].as_array().unwrap().len(), 1);

    for (q, field) in [
        ("", "query"),
        ("query=%20%20", "query"),
        ("query=cat&limit=0", "limit"),
        ("query=cat&limit=101", "limit"),
        ("query=cat&tier=facts", "tier"),
        ("query=cat&tier=episodic,", "tier"),
        ("query=cat&since=yesterday", "since"),
        ("query=cat&since=2024-06-01&until=2024-05-01", "until"),
    ] {
        let (s, e) = t.get(&format!("/api/memory/search/sam?{q}")).await;
        assert_eq!((s, e["field"].as_str()), (422, Some(field)), "{q}: {e}");
    }
    t.stop().await;
}
