//! The RabbitMQ backend against a real broker: `REFLECTOR_TEST_AMQP_URL`
//! (e.g. `amqp://guest:guest@127.0.0.1:5672/%2f`; `scripts/test.sh` starts a broker and sets
//! it). Unset: these tests say so and pass without running — a developer without a broker
//! can still run the rest. Set but unreachable: they FAIL; CI never skips them silently.
//!
//! Every test declares its own exchange and queues (random names), so they run in parallel
//! on one broker without seeing each other's messages.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use common::{TestServer, start_with};
use lapin::options::{
    BasicPublishOptions, ConfirmSelectOptions, ExchangeDeclareOptions, ExchangeDeleteOptions,
    QueueBindOptions, QueueDeclareOptions, QueueDeleteOptions,
};
use lapin::types::{AMQPValue, FieldTable, LongString};
use lapin::{BasicProperties, Connection, ConnectionProperties, ExchangeKind};
use reflector::config::Config;
use reflector::job::Tier;
use reflector::server::Options;
use serde_json::{Value, json};

/// The broker URL, or None (with a note) when the variable is unset. When it is set the
/// broker must answer: an unreachable broker fails the test.
async fn broker_url() -> Option<String> {
    let Ok(url) = std::env::var("REFLECTOR_TEST_AMQP_URL") else {
        eprintln!(
            "REFLECTOR_TEST_AMQP_URL is not set: RabbitMQ test not run (scripts/test.sh sets it)"
        );
        return None;
    };
    let conn = tokio::time::timeout(
        Duration::from_secs(10),
        Connection::connect(&url, ConnectionProperties::default()),
    )
    .await;
    match conn {
        Ok(Ok(c)) => {
            let _ = c.close(200, "probe".into()).await;
            Some(url)
        }
        Ok(Err(e)) => panic!("REFLECTOR_TEST_AMQP_URL is set but the broker is unreachable: {e}"),
        Err(_) => panic!("REFLECTOR_TEST_AMQP_URL is set but the broker did not answer in 10 s"),
    }
}

/// Unique names for one test's topology.
struct Names {
    exchange: String,
    queue: String,
    dlq: String,
}

fn names() -> Names {
    let p = format!("t{}", uuid::Uuid::new_v4().simple());
    Names {
        exchange: format!("{p}_exchange"),
        queue: format!("{p}_queue"),
        dlq: format!("{p}_dlq"),
    }
}

fn amqp_config(url: &str, n: &Names) -> impl FnOnce(&mut Config) {
    let (url, e, q, d) = (
        url.to_string(),
        n.exchange.clone(),
        n.queue.clone(),
        n.dlq.clone(),
    );
    move |c: &mut Config| {
        c.rabbitmq_url = Some(url);
        c.amqp_exchange = e;
        c.amqp_queue = q;
        c.amqp_dlq = d;
    }
}

/// Delete the test's queues (best effort; the broker outlives the test).
async fn cleanup(url: &str, n: &Names) {
    let Ok(c) = Connection::connect(url, ConnectionProperties::default()).await else {
        return;
    };
    let Ok(ch) = c.create_channel().await else {
        return;
    };
    for q in [
        n.queue.clone(),
        format!("{}.priority", n.queue),
        format!("{}.retry.100ms", n.queue),
        format!("{}.retry.200ms", n.queue),
        n.dlq.clone(),
    ] {
        let _ = ch
            .queue_delete(q.as_str().into(), QueueDeleteOptions::default())
            .await;
    }
    for x in [n.exchange.clone(), format!("{}.dlx", n.exchange)] {
        let _ = ch
            .exchange_delete(x.as_str().into(), ExchangeDeleteOptions::default())
            .await;
    }
    let _ = c.close(200, "cleanup".into()).await;
}

/// Publish raw bodies straight to the exchange, as another producer would (confirmed).
async fn publish_raw(url: &str, exchange: &str, msgs: &[(&str, Vec<u8>)]) {
    let c = Connection::connect(url, ConnectionProperties::default())
        .await
        .unwrap();
    let ch = c.create_channel().await.unwrap();
    ch.confirm_select(ConfirmSelectOptions::default())
        .await
        .unwrap();
    for (rk, body) in msgs {
        let conf = ch
            .basic_publish(
                exchange.into(),
                (*rk).into(),
                BasicPublishOptions {
                    mandatory: true,
                    ..Default::default()
                },
                body,
                BasicProperties::default().with_delivery_mode(2),
            )
            .await
            .unwrap()
            .await
            .unwrap();
        assert!(conf.is_ack(), "not confirmed: {rk}");
        assert!(conf.take_message().is_none(), "unroutable: {rk}");
    }
    let _ = c.close(200, "done".into()).await;
}

/// Wait until the service's worker consumes (its topology is declared by then).
async fn wait_ready(t: &TestServer) {
    for _ in 0..200 {
        let (_, q) = t.get("/api/reflection/queue-status").await;
        if q["broker"]["queues"]["priority"]["consumers"] == 1
            && q["broker"]["queues"]["intake"]["consumers"] == 1
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the RabbitMQ worker never started consuming");
}

/// Wait until GET /api/reflection/jobs/{id} shows a final state (404 while unknown).
async fn wait_final(t: &TestServer, id: &str, secs: u64) -> Value {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    loop {
        let (s, j) = t.get(&format!("/api/reflection/jobs/{id}")).await;
        if s == 200 && (j["state"] == "completed" || j["state"] == "dead") {
            return j;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "job {id} not final after {secs} s: {s} {j}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The broker DLQ as the API shows it, once it holds `n` messages.
async fn wait_dlq(t: &TestServer, n: usize) -> Vec<Value> {
    for _ in 0..200 {
        let (s, v) = t.get("/api/reflection/dlq?limit=100").await;
        assert_eq!(s, 200, "{v}");
        let m = v["broker"]["messages"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        if m.len() >= n {
            return m;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the broker DLQ never held {n} messages");
}

#[tokio::test]
async fn turns_flow_through_rabbitmq_and_the_original_declaration_still_succeeds() {
    let Some(url) = broker_url().await else {
        return;
    };
    let n = names();
    let t = start_with(amqp_config(&url, &n), Options::default()).await;
    let mut ids = Vec::new();
    for (i, user) in ["ana", "bob.smith", "c.d.e", "ana"].iter().enumerate() {
        let (s, r) = t
            .turn(
                user,
                &format!("I moved to Berlin {i} weeks ago. Please always answer in German."),
                "2024-08-20T18:40:00Z",
                json!({}),
            )
            .await;
        assert_eq!(s, 202, "{r}");
        ids.push(r["reflection_job_id"].as_str().unwrap().to_string());
    }
    for id in &ids {
        let j = wait_final(&t, id, 30).await;
        assert_eq!(j["state"], "completed", "{j}");
        assert_eq!(j["tiers"].as_array().unwrap().len(), 3, "{j}");
    }
    let (s, st) = t.get("/api/memory/stats/bob.smith").await;
    assert_eq!(s, 200);
    assert_eq!(st["jobs"]["completed"], 1, "{st}");
    let (_, q) = t.get("/api/reflection/queue-status").await;
    assert_eq!(q["backend"], "amqp", "{q}");
    assert_eq!(q["broker"]["status"], "up", "{q}");
    assert_eq!(q["outbox_backlog"], 0, "{q}");
    assert_eq!(q["broker"]["queues"]["priority"]["consumers"], 1, "{q}");

    // The original producer's whole connect sequence, and its consumer's declaration of the
    // intake, on the broker we set up while our workers run: nothing is refused.
    original_declares(&url, &n)
        .await
        .expect("the original producer's declarations succeed");
    original_consumer_declares(&url, &n)
        .await
        .expect("the original consumer's declaration succeeds");
    let (_, q) = t.get("/api/reflection/queue-status").await;
    let topology = q["broker"]["topology"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert_eq!(topology.len(), 7, "{q}");
    assert!(
        topology.iter().all(|e| e["status"] == "as declared"),
        "{topology:?}"
    );
    // And with its binding added, a job still arrives once, not twice.
    let (_, r) = t
        .turn(
            "dora",
            "I adopted a cat named Miso.",
            "2024-08-21T10:00:00Z",
            json!({}),
        )
        .await;
    let id = r["reflection_job_id"].as_str().unwrap();
    let j = wait_final(&t, id, 30).await;
    assert_eq!(j["state"], "completed", "{j}");
    assert_eq!(j["attempts"], 1, "{j}");
    t.stop().await;
    cleanup(&url, &n).await;
}

/// A string argument as aio-pika sends one.
fn long_str(v: &str) -> AMQPValue {
    AMQPValue::LongString(LongString::from(v.as_bytes().to_vec()))
}

/// The intake's arguments exactly as the original producer and consumer declare them
/// (aio-pika encodes the int 3 as a signed byte).
fn original_intake_args(n: &Names) -> FieldTable {
    let mut args = FieldTable::default();
    args.insert(
        "x-dead-letter-exchange".into(),
        long_str(&format!("{}.dlx", n.exchange)),
    );
    args.insert("x-dead-letter-routing-key".into(), long_str("failed"));
    args.insert("x-max-retries".into(), AMQPValue::ShortShortInt(3));
    args
}

/// The original producer's connect sequence, its six steps in its order.
async fn original_declares(url: &str, n: &Names) -> lapin::Result<()> {
    let c = Connection::connect(url, ConnectionProperties::default()).await?;
    let ch = c.create_channel().await?;
    let durable = ExchangeDeclareOptions {
        durable: true,
        ..Default::default()
    };
    let dlx = format!("{}.dlx", n.exchange);
    ch.exchange_declare(
        n.exchange.as_str().into(),
        ExchangeKind::Topic,
        durable,
        FieldTable::default(),
    )
    .await?;
    ch.queue_declare(
        n.queue.as_str().into(),
        QueueDeclareOptions::durable(),
        original_intake_args(n),
    )
    .await?;
    ch.queue_bind(
        n.queue.as_str().into(),
        n.exchange.as_str().into(),
        "reflection.*".into(),
        QueueBindOptions::default(),
        FieldTable::default(),
    )
    .await?;
    ch.exchange_declare(
        dlx.as_str().into(),
        ExchangeKind::Topic,
        durable,
        FieldTable::default(),
    )
    .await?;
    ch.queue_declare(
        n.dlq.as_str().into(),
        QueueDeclareOptions::durable(),
        FieldTable::default(),
    )
    .await?;
    ch.queue_bind(
        n.dlq.as_str().into(),
        dlx.as_str().into(),
        "failed".into(),
        QueueBindOptions::default(),
        FieldTable::default(),
    )
    .await?;
    let _ = c.close(200, "declared".into()).await;
    Ok(())
}

/// The original consumer's declaration: the intake with the same arguments.
async fn original_consumer_declares(url: &str, n: &Names) -> lapin::Result<()> {
    let c = Connection::connect(url, ConnectionProperties::default()).await?;
    let ch = c.create_channel().await?;
    ch.queue_declare(
        n.queue.as_str().into(),
        QueueDeclareOptions::durable(),
        original_intake_args(n),
    )
    .await?;
    let _ = c.close(200, "declared".into()).await;
    Ok(())
}

/// A job body in the original's schema.
fn original_job(id: &str, user: &str) -> Vec<u8> {
    json!({"job_id": id, "user_id": user, "session_id": "s",
           "user_message": "My sister Lena lives in Lisbon.", "assistant_response": "Nice!",
           "timestamp": "2024-03-01T10:20:30.123456", "priority": 1, "metadata": {},
           "retry_count": 0, "max_retries": 3, "created_at": "2024-03-01T10:20:31"})
    .to_string()
    .into_bytes()
}

#[tokio::test]
async fn the_original_producer_may_declare_before_our_service_starts() {
    let Some(url) = broker_url().await else {
        return;
    };
    let n = names();
    original_declares(&url, &n)
        .await
        .expect("a fresh broker takes the original's declarations");
    let t = start_with(amqp_config(&url, &n), Options::default()).await;
    wait_ready(&t).await;
    let (_, q) = t.get("/api/reflection/queue-status").await;
    let topology = q["broker"]["topology"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert!(
        topology.iter().all(|e| e["status"] == "as declared"),
        "our declarations match the original's: {topology:?}"
    );
    // The producer publishes once we are up; dotted ids reach us through reflection.#.
    let users = ["ana", "bob.smith", "dr.jane.doe", "carol"];
    let msgs: Vec<(String, Vec<u8>)> = users
        .iter()
        .enumerate()
        .map(|(i, u)| {
            (
                format!("reflection.{u}"),
                original_job(&format!("b-{i}"), u),
            )
        })
        .collect();
    let refs: Vec<(&str, Vec<u8>)> = msgs.iter().map(|(k, b)| (k.as_str(), b.clone())).collect();
    publish_raw(&url, &n.exchange, &refs).await;
    for i in 0..users.len() {
        let j = wait_final(&t, &format!("b-{i}"), 30).await;
        assert_eq!(j["state"], "completed", "{j}");
        assert_eq!(j["attempts"], 1, "each job once, not once per binding: {j}");
    }
    original_consumer_declares(&url, &n)
        .await
        .expect("the original consumer's declaration succeeds while our workers run");
    t.stop().await;
    cleanup(&url, &n).await;
}

#[tokio::test]
async fn an_older_deployment_with_a_direct_dead_letter_exchange_still_starts() {
    let Some(url) = broker_url().await else {
        return;
    };
    let n = names();
    // An operator's older deployment: the dead-letter exchange is direct, and the intake
    // was declared without x-max-retries and with a length limit of its own.
    {
        let c = Connection::connect(&url, ConnectionProperties::default())
            .await
            .unwrap();
        let ch = c.create_channel().await.unwrap();
        ch.exchange_declare(
            format!("{}.dlx", n.exchange).as_str().into(),
            ExchangeKind::Direct,
            ExchangeDeclareOptions {
                durable: true,
                ..Default::default()
            },
            FieldTable::default(),
        )
        .await
        .unwrap();
        let mut args = FieldTable::default();
        args.insert(
            "x-dead-letter-exchange".into(),
            long_str(&format!("{}.dlx", n.exchange)),
        );
        args.insert("x-dead-letter-routing-key".into(), long_str("failed"));
        args.insert("x-max-length".into(), AMQPValue::LongInt(100_000));
        ch.queue_declare(
            n.queue.as_str().into(),
            QueueDeclareOptions::durable(),
            args,
        )
        .await
        .unwrap();
        let _ = c.close(200, "older deployment".into()).await;
    }
    let t = start_with(amqp_config(&url, &n), Options::default()).await;
    wait_ready(&t).await;
    let (_, q) = t.get("/api/reflection/queue-status").await;
    let topology = q["broker"]["topology"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let entity = |name: &str| {
        topology
            .iter()
            .find(|e| e["name"] == name)
            .cloned()
            .unwrap_or_else(|| panic!("{name} not in {topology:?}"))
    };
    let dlx = entity(&format!("{}.dlx", n.exchange));
    assert_eq!(dlx["status"], "differs", "{dlx}");
    assert_eq!(dlx["owner"], "original", "{dlx}");
    assert_eq!(dlx["declared"]["type"], "topic", "{dlx}");
    let said = dlx["differences"].to_string();
    assert!(
        said.contains("'type'") && said.contains("'direct'"),
        "{dlx}"
    );
    let intake = entity(&n.queue);
    assert_eq!(intake["status"], "differs", "{intake}");
    assert!(
        intake["differences"].to_string().contains("x-max-length"),
        "each difference is named: {intake}"
    );
    assert_eq!(entity(&n.exchange)["status"], "as declared");
    let (_, h) = t.get("/api/reflection/health").await;
    assert_eq!(
        h["components"]["queue"]["broker"]["topology"]
            .as_array()
            .map(Vec::len),
        Some(7),
        "{h}"
    );
    // And it works: a job flows, poison still reaches the DLQ.
    publish_raw(
        &url,
        &n.exchange,
        &[
            ("reflection.old.user", original_job("old-1", "old.user")),
            ("reflection.x", b"not json".to_vec()),
        ],
    )
    .await;
    let j = wait_final(&t, "old-1", 30).await;
    assert_eq!(j["state"], "completed", "{j}");
    assert_eq!(wait_dlq(&t, 1).await.len(), 1);
    t.stop().await;
    cleanup(&url, &n).await;
}

#[tokio::test]
async fn poison_messages_land_in_the_dlq_with_a_reason_and_the_worker_keeps_going() {
    let Some(url) = broker_url().await else {
        return;
    };
    let n = names();
    let t = start_with(amqp_config(&url, &n), Options::default()).await;
    let good = |id: &str, user: &str| {
        json!({"job_id": id, "user_id": user, "session_id": "s",
               "user_message": "My sister Lena lives in Lisbon.", "assistant_response": "Nice!",
               "timestamp": "2024-03-01T10:20:30.123456", "priority": 2, "metadata": {},
               "retry_count": 0, "max_retries": 3, "created_at": "2024-03-01T10:20:31"})
        .to_string()
        .into_bytes()
    };
    let mut wrong_types = serde_json::from_slice::<Value>(&good("w", "u")).unwrap();
    wrong_types["user_id"] = json!(5);
    let mut bad_priority = serde_json::from_slice::<Value>(&good("p", "u")).unwrap();
    bad_priority["priority"] = json!(7);
    let huge = vec![b'x'; 16 * 1024 * 1024];
    wait_ready(&t).await;
    let poison: Vec<(&str, Vec<u8>)> = vec![
        ("reflection.x", b"{\"job_id\": \"m\", not json".to_vec()),
        ("reflection.x", wrong_types.to_string().into_bytes()),
        ("reflection.x", vec![b'{', 0xff, 0xfe, b'}']),
        ("reflection.x", huge),
        ("reflection.x", bad_priority.to_string().into_bytes()),
    ];
    publish_raw(&url, &n.exchange, &poison).await;
    // A good job from another producer, after the poison: it must still be processed.
    publish_raw(
        &url,
        &n.exchange,
        &[("reflection.eve.k", good("foreign-1", "eve.k"))],
    )
    .await;
    let j = wait_final(&t, "foreign-1", 30).await;
    assert_eq!(j["state"], "completed", "{j}");
    assert_eq!(j["user_id"], "eve.k");

    let dead = wait_dlq(&t, 5).await;
    assert_eq!(dead.len(), 5, "{dead:?}");
    let reasons: Vec<String> = dead
        .iter()
        .map(|m| m["reason"].as_str().unwrap_or("").to_string())
        .collect();
    let has = |what: &str| reasons.iter().any(|r| r.contains(what));
    assert!(has("invalid reflection job JSON"), "{reasons:?}");
    assert!(has("invalid type"), "wrong types: {reasons:?}");
    assert!(has("UTF-8"), "{reasons:?}");
    assert!(has("16777216 bytes"), "{reasons:?}");
    assert!(has("priority must be 0, 1, 2 or 3, got 7"), "{reasons:?}");
    assert!(
        dead.iter().all(|m| m["routing_key"] == "reflection.x"),
        "{dead:?}"
    );
    let big = dead.iter().find(|m| m["body_bytes"] == 16 * 1024 * 1024);
    assert!(big.is_some(), "the oversized body's size is kept: {dead:?}");

    let (s, p) = t.post("/api/reflection/dlq/purge", &json!({})).await;
    assert_eq!((s, p["purged"].as_u64()), (200, Some(5)), "{p}");
    t.stop().await;
    cleanup(&url, &n).await;
}

#[tokio::test]
async fn failing_tiers_retry_through_delay_queues_then_dead_letter_and_replay() {
    let Some(url) = broker_url().await else {
        return;
    };
    let n = names();
    let fail = Arc::new(AtomicBool::new(true));
    let f = fail.clone();
    let opts = Options {
        seams: reflector::seams::Seams::failing(Arc::new(move |_job, tier| {
            (tier == Tier::Semantic && f.load(Ordering::SeqCst))
                .then(|| "injected graph store failure".to_string())
        })),
        ..Default::default()
    };
    let cfg = amqp_config(&url, &n);
    let t = start_with(
        |c| {
            cfg(c);
            c.max_retries = 2;
            c.retry_base_ms = 100;
        },
        opts,
    )
    .await;
    let started = std::time::Instant::now();
    let (_, r) = t
        .turn(
            "frank",
            "I went hiking in the Alps last weekend.",
            "2024-06-10T08:00:00Z",
            json!({}),
        )
        .await;
    let id = r["reflection_job_id"].as_str().unwrap().to_string();
    let j = wait_final(&t, &id, 30).await;
    assert_eq!(j["state"], "dead", "{j}");
    assert_eq!(j["attempts"], 3, "first try + max_retries: {j}");
    // Two retries after 100 ms and 200 ms in the delay queues: no sooner.
    assert!(
        started.elapsed() >= Duration::from_millis(300),
        "{:?}",
        started.elapsed()
    );
    let dead = wait_dlq(&t, 1).await;
    assert_eq!(dead[0]["job_id"], id.as_str(), "{dead:?}");
    assert_eq!(dead[0]["attempts"], 3, "{dead:?}");
    let reason = dead[0]["reason"].as_str().unwrap();
    assert!(
        reason.contains("retries exhausted") && reason.contains("semantic: injected"),
        "{reason}"
    );

    fail.store(false, Ordering::SeqCst);
    let (s, rep) = t
        .post("/api/reflection/dlq/replay", &json!({"job_ids": [id]}))
        .await;
    assert_eq!(s, 200, "{rep}");
    assert_eq!(rep["replayed"], 1, "{rep}");
    assert_eq!(rep["removed_from_broker_dlq"], 1, "{rep}");
    let j = wait_final(&t, &id, 30).await;
    assert_eq!(j["state"], "completed", "{j}");
    let (_, v) = t.get("/api/reflection/dlq").await;
    assert_eq!(v["broker"]["messages"], json!([]), "{v}");
    t.stop().await;
    cleanup(&url, &n).await;
}

#[tokio::test]
async fn a_broker_outage_delays_reflection_but_never_fails_a_turn() {
    let Some(url) = broker_url().await else {
        return;
    };
    let n = names();
    // First the API with the broker unreachable (nothing listens on port 9).
    let t = start_with(
        amqp_config("amqp://guest:secretpw@127.0.0.1:9/%2f", &n),
        Options::default(),
    )
    .await;
    let mut ids = Vec::new();
    for i in 0..5 {
        let (s, r) = t
            .turn(
                "gail",
                &format!("I ran {i} km today."),
                "2024-06-10T08:00:00Z",
                json!({}),
            )
            .await;
        assert_eq!(s, 202, "{r}");
        ids.push(r["reflection_job_id"].as_str().unwrap().to_string());
    }
    let (_, q) = t.get("/api/reflection/queue-status").await;
    assert_eq!(q["outbox_backlog"], 5, "{q}");
    assert_eq!(q["broker"]["status"], "down", "{q}");
    let shown = q.to_string();
    assert!(!shown.contains("secretpw"), "the password leaked: {shown}");
    let (_, h) = t.get("/api/reflection/health").await;
    assert_eq!(h["status"], "degraded", "{h}");
    // Then the same data directory with the broker back: the relay publishes the backlog.
    let dir = t.dir.path().to_path_buf();
    let svc = t.svc.unwrap();
    svc.shutdown(Duration::from_secs(10)).await.unwrap();
    let mut cfg = common::test_config(&dir);
    amqp_config(&url, &n)(&mut cfg);
    let svc = reflector::server::Service::start(cfg, Options::default())
        .await
        .unwrap();
    let t2 = TestServer {
        base: format!("http://{}", svc.addr),
        svc: Some(svc),
        http: reqwest::Client::new(),
        dir: t.dir,
    };
    for id in &ids {
        let j = wait_final(&t2, id, 30).await;
        assert_eq!(j["state"], "completed", "{j}");
    }
    let (_, q) = t2.get("/api/reflection/queue-status").await;
    assert_eq!(q["outbox_backlog"], 0, "{q}");
    t2.stop().await;
    cleanup(&url, &n).await;
}

#[tokio::test]
async fn paused_workers_hold_no_consumer_and_resume_where_they_stopped() {
    let Some(url) = broker_url().await else {
        return;
    };
    let n = names();
    let t = start_with(
        amqp_config(&url, &n),
        Options {
            seams: reflector::seams::Seams::paused(),
            ..Options::default()
        },
    )
    .await;
    let mut ids = Vec::new();
    for i in 0..3 {
        let (s, r) = t
            .turn(
                "paula",
                &format!("I moved to Lisbon {i} weeks ago."),
                "2024-08-20T18:40:00Z",
                json!({}),
            )
            .await;
        assert_eq!(s, 202, "{r}");
        ids.push(r["reflection_job_id"].as_str().unwrap().to_string());
    }
    // Published (the relay runs) but not consumed: the jobs wait in the intake queue (the
    // forwarder to the priority queue is paused as well).
    let mut q = Value::Null;
    for _ in 0..200 {
        q = t.get("/api/reflection/queue-status").await.1;
        if q["outbox_backlog"] == 0 && q["broker"]["queues"]["intake"]["messages"] == 3 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(q["outbox_backlog"], 0, "{q}");
    assert_eq!(q["broker"]["queues"]["intake"]["messages"], 3, "{q}");
    assert_eq!(q["broker"]["queues"]["priority"]["consumers"], 0, "{q}");
    assert_eq!(q["broker"]["queues"]["intake"]["consumers"], 0, "{q}");
    let (_, j) = t.get(&format!("/api/reflection/jobs/{}", ids[0])).await;
    assert_ne!(j["state"], "completed", "{j}");

    t.svc.as_ref().unwrap().pause_workers(false);
    for id in &ids {
        let j = wait_final(&t, id, 30).await;
        assert_eq!(j["state"], "completed", "{j}");
        assert_eq!(j["attempts"], 1, "{j}");
    }
    // Pausing again cancels the consumers.
    t.svc.as_ref().unwrap().pause_workers(true);
    for _ in 0..200 {
        q = t.get("/api/reflection/queue-status").await.1;
        if q["broker"]["queues"]["priority"]["consumers"] == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(q["broker"]["queues"]["priority"]["consumers"], 0, "{q}");
    t.stop().await;
    cleanup(&url, &n).await;
}
