//! Smoke test of `reflector bench --quick --json`: it runs end to end (hash embedder, small
//! sizes) and its last line is the JSON of headline figures, every key a finite number.
//! Timing targets are NOT asserted: CI machines are shared and noisy, so the command may
//! exit 1 (a target missed); only 0 or 1 is accepted, never an error (2) or a crash.

use std::process::{Command, Stdio};

use serde_json::Value;

/// The headline figures of the JSON line (`JSON_KEYS`), the benchmark's own list.
#[path = "../src/measure/bench_keys.rs"]
mod bench_keys;
use bench_keys::JSON_KEYS;

/// Run `reflector bench ARGS` with the hash embedder and `RABBITMQ_URL` set to `amqp` (or
/// removed); asserts the exit code is 0 or 1. Returns (pid, stdout).
fn run_bench(args: &[&str], amqp: Option<&str>) -> (u32, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_reflector"));
    cmd.args(args)
        .env("REFLECTOR_EMBEDDER", "hash")
        .env("REFLECTOR_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    match amqp {
        Some(url) => cmd.env("RABBITMQ_URL", url),
        None => cmd.env_remove("RABBITMQ_URL"),
    };
    let child = cmd.spawn().expect("run reflector bench");
    let pid = child.id();
    let out = child.wait_with_output().expect("bench output");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr);
    let code = out.status.code();
    assert!(
        matches!(code, Some(0) | Some(1)),
        "bench exited with {code:?}\nstdout:\n{stdout}\nstderr:\n{stderr}"
    );
    (pid, stdout)
}

#[test]
fn bench_quick_json_reports_every_headline_figure() {
    let (_, stdout) = run_bench(&["bench", "--quick", "--json"], None);
    let last = stdout.lines().last().unwrap_or_default();
    let json: Value = serde_json::from_str(last)
        .unwrap_or_else(|e| panic!("last line is not JSON ({e}): {last:?}\n{stdout}"));
    let obj = json.as_object().expect("a JSON object");
    for key in JSON_KEYS {
        let v = obj.get(key).and_then(Value::as_f64);
        assert!(
            v.is_some_and(f64::is_finite),
            "{key} is missing or not a finite number: {:?}\n{stdout}",
            obj.get(key)
        );
    }
    // Beyond the names, only the HTTP floor (RabbitMQ keys need RABBITMQ_URL).
    let floor = obj.get("http_floor_p99_ms").and_then(Value::as_f64);
    assert!(floor.is_some_and(f64::is_finite), "{last}");
    assert_eq!(obj.len(), JSON_KEYS.len() + 1, "{last}");
    // The table came first, with the floor rows under the open-loop rows they bound.
    for row in ["| 1a |", "| 1c |", "| 1c0 |", "| 1d |", "| 1d0 |", "| 3c |"] {
        assert!(stdout.contains(row), "no {row} row:\n{stdout}");
    }
    assert!(stdout.find("| 1d |") < stdout.find("| 1d0 |"), "{stdout}");
}

/// With a broker (`REFLECTOR_TEST_AMQP_URL`, set by scripts/test.sh), the store section adds
/// the RabbitMQ rows and their JSON keys, and deletes the queues it declared.
#[test]
fn bench_with_rabbitmq_adds_the_broker_rows_and_deletes_its_queues() {
    let Ok(url) = std::env::var("REFLECTOR_TEST_AMQP_URL") else {
        eprintln!("REFLECTOR_TEST_AMQP_URL is not set: RabbitMQ bench rows not run");
        return;
    };
    let (pid, stdout) = run_bench(
        &["bench", "--quick", "--json", "--only", "store"],
        Some(&url),
    );
    for row in ["| 1d |", "| 1i |", "| 1j |", "| 1k |", "| 1l |", "| 1m |"] {
        assert!(stdout.contains(row), "{row} missing:\n{stdout}");
    }
    assert!(stdout.contains("RabbitMQ: fast path"), "{stdout}");
    let last = stdout.lines().last().unwrap_or_default();
    let json: Value = serde_json::from_str(last).expect("last line is JSON");
    for key in [
        "amqp_fast_p99_ms",
        "amqp_fast_p99_ms_workers_running",
        "amqp_store_turns_per_s",
        "amqp_store_turns_per_s_workers_running",
        "fast_p99_ms",
    ] {
        assert!(
            json[key].as_f64().is_some_and(f64::is_finite),
            "{key}: {}",
            json[key]
        );
    }
    // Its queues are gone: a passive declaration of each fails.
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let conn = lapin::Connection::connect(&url, lapin::ConnectionProperties::default())
            .await
            .expect("broker reachable");
        let tag = format!("reflector-bench-{pid}");
        for q in [
            format!("{tag}.queue"),
            format!("{tag}.queue.priority"),
            format!("{tag}.dlq"),
        ] {
            let ch = conn.create_channel().await.unwrap();
            let passive = lapin::options::QueueDeclareOptions {
                passive: true,
                ..Default::default()
            };
            let r = ch
                .queue_declare(q.as_str().into(), passive, Default::default())
                .await;
            assert!(r.is_err(), "queue {q} still exists after the bench");
        }
        let _ = conn.close(200, "done".into()).await;
    });
}
