//! Forgetting a user whose jobs are still on their way: in the jobs table (the embedded
//! queue) or in a broker (RabbitMQ delivers them after the DELETE). Runs on SQLite, and on
//! PostgreSQL with `REFLECTOR_TEST_DATABASE_URL` (scripts/test.sh runs both).

mod common;

use common::*;
use reflector::job::ReflectionJob;
use reflector::server::Options;
use reflector::store::Delivery;
use serde_json::{Value, json};

/// The job as the broker would carry it: the payload stored with the job row.
async fn job_of(t: &TestServer, job_id: &str) -> ReflectionJob {
    let (s, v) = t.get(&format!("/api/reflection/jobs/{job_id}")).await;
    assert_eq!(s, 200, "{v}");
    serde_json::from_value(v["job"].clone()).expect("the job payload decodes")
}

#[tokio::test]
async fn a_job_of_a_forgotten_user_arriving_from_the_broker_is_dropped() {
    let t = start_with(
        |_| {},
        Options {
            seams: reflector::seams::Seams::paused(),
            ..Options::default()
        },
    )
    .await;
    let (s, r) = t
        .turn(
            "leaving",
            "I moved to Lisbon and I have a dog named Rex.",
            "2024-02-01T10:00:00Z",
            json!({}),
        )
        .await;
    assert_eq!(s, 202, "{r}");
    let job = job_of(&t, r["reflection_job_id"].as_str().unwrap()).await;

    // Forget the user while the job is still queued.
    let resp = t
        .http
        .delete(format!("{}/api/memory/user/leaving", t.base))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    let removed: Value = resp.json().await.unwrap();
    assert_eq!(removed["removed"]["turns"], 1, "{removed}");
    assert_eq!(removed["removed"]["jobs"], 1, "{removed}");

    // The broker delivers the message anyway: the store drops it and writes nothing.
    let store = t.svc.as_ref().unwrap().store.clone();
    let (j, st) = (job.clone(), store.clone());
    let d = tokio::task::spawn_blocking(move || st.sync().begin_delivery(&j, "w1"))
        .await
        .unwrap()
        .unwrap();
    assert!(matches!(d, Delivery::Forgotten), "{d:?}");
    let (_, jr) = t.get(&format!("/api/reflection/jobs/{}", job.job_id)).await;
    assert!(jr.get("job_id").is_none(), "no job row comes back: {jr}");

    // A job of the same user id created after the DELETE is a new user's: processed.
    let mut later = job.clone();
    later.job_id = format!("{}-after", job.job_id);
    later.created_at = chrono::Utc::now() + chrono::Duration::milliseconds(5);
    std::thread::sleep(std::time::Duration::from_millis(10));
    let st = store.clone();
    let d = tokio::task::spawn_blocking(move || st.sync().begin_delivery(&later, "w1"))
        .await
        .unwrap()
        .unwrap();
    assert!(matches!(d, Delivery::Process(_)), "{d:?}");

    // And the queued job never reflects: resume the workers and look.
    t.svc.as_ref().unwrap().pause_workers(false);
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    let (_, stats) = t.get("/api/memory/stats/leaving").await;
    assert_eq!(stats["episodic"]["episodes"], 0, "{stats}");
    assert_eq!(stats["semantic"]["entities"], 0, "{stats}");
    t.stop().await;
}

#[tokio::test]
async fn forgetting_one_user_leaves_another_untouched() {
    let t = start().await;
    for user in ["stay", "go"] {
        let (s, r) = t
            .turn(
                user,
                &format!("My name is {user} and I live in Bergen with my cat Milo."),
                "2024-03-01T09:00:00Z",
                json!({}),
            )
            .await;
        assert_eq!(s, 202, "{r}");
        t.wait_job(r["reflection_job_id"].as_str().unwrap()).await;
    }
    let resp = t
        .http
        .delete(format!("{}/api/memory/user/go", t.base))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    let (_, gone) = t.get("/api/memory/stats/go").await;
    assert_eq!(gone["episodic"]["episodes"], 0, "{gone}");
    let (_, kept) = t.get("/api/memory/stats/stay").await;
    assert_eq!(kept["episodic"]["episodes"], 1, "{kept}");
    assert!(kept["semantic"]["entities"].as_i64().unwrap() > 0, "{kept}");
    let (_, ctx) = t.get("/api/memory/context/stay?query=Bergen%20cat").await;
    assert!(!ctx["memories"].as_array().unwrap().is_empty(), "{ctx}");
    t.stop().await;
}
