//! A 202 means committed: SIGKILL the real binary in the middle of an import, start it again
//! on the same data directory, finish the import, and every job completes exactly once.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn spawn(dir: &std::path::Path, port: u16) -> Child {
    Command::new(env!("CARGO_BIN_EXE_reflector"))
        .arg("serve")
        .env("REFLECTOR_LISTEN", format!("127.0.0.1:{port}"))
        .env("REFLECTOR_DATA_DIR", dir)
        .env("REFLECTOR_EMBEDDER", "hash")
        .env("REFLECTOR_WORKERS", "2")
        .env("REFLECTOR_LEASE_SECS", "2")
        .env("REFLECTOR_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start reflector")
}

async fn wait_up(http: &reqwest::Client, base: &str) {
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(30) {
        if http
            .get(format!("{base}/api/reflection/health"))
            .send()
            .await
            .is_ok()
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("server did not come up");
}

fn turn(i: usize) -> Value {
    json!({
        "interaction_id": format!("crash-{i}"),
        "user_id": format!("user-{}", i % 5),
        "session_id": "s",
        "user_message": format!("On day {i} I visited museum number {i} in Vienna and bought {i} postcards."),
        "timestamp": format!("2024-03-{:02}T10:00:00Z", 1 + i % 28),
        "metadata": {"speaker": format!("Person{}", i % 5)}
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_mid_import_loses_and_duplicates_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::new();
    let n = 300;

    let mut child = spawn(dir.path(), port);
    wait_up(&http, &base).await;
    let mut accepted = std::collections::HashSet::new();
    for i in 0..n / 2 {
        let r = http
            .post(format!("{base}/api/interactions"))
            .json(&turn(i))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 202);
        accepted.insert(
            r.json::<Value>().await.unwrap()["reflection_job_id"]
                .as_str()
                .unwrap()
                .to_string(),
        );
    }
    child.kill().unwrap(); // SIGKILL: no graceful shutdown
    child.wait().unwrap();

    let mut child = spawn(dir.path(), port);
    wait_up(&http, &base).await;
    // The client retries everything (it cannot know what was committed): replays are fine.
    for i in 0..n {
        let r = http
            .post(format!("{base}/api/interactions"))
            .json(&turn(i))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 202, "{}", r.text().await.unwrap());
        let v: Value = r.json().await.unwrap();
        if i < n / 2 {
            assert_eq!(
                v["idempotent_replay"], true,
                "turn {i} was committed before the kill"
            );
            assert!(accepted.contains(v["reflection_job_id"].as_str().unwrap()));
        }
    }
    let deadline = Instant::now() + Duration::from_secs(120);
    let (mut completed, mut episodes) = (0, 0);
    while Instant::now() < deadline {
        let v: Value = http
            .get(format!("{base}/api/reflection/stats"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        completed = v["jobs"]["completed"].as_i64().unwrap();
        if completed + v["jobs"]["dead"].as_i64().unwrap() == n as i64 {
            assert_eq!(v["jobs"]["dead"], 0, "{v}");
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(completed, n as i64, "every job completed");
    for u in 0..5 {
        let v: Value = http
            .get(format!("{base}/api/memory/stats/user-{u}"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(v["short_term"]["turns"], n as i64 / 5, "{v}");
        episodes += v["episodic"]["episodes"].as_i64().unwrap();
    }
    assert_eq!(episodes, n as i64, "one episode per job, none duplicated");
    child.kill().unwrap();
    child.wait().unwrap();
}
