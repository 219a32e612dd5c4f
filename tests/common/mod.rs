//! Shared helpers for the integration tests: start the real service on a free port with a
//! temporary data directory, and talk to it over HTTP.
#![allow(dead_code)]

use std::time::Duration;

use reflector::config::Config;
use reflector::server::{Options, Service};
use serde_json::{Value, json};

pub struct TestServer {
    pub svc: Option<Service>,
    pub base: String,
    pub http: reqwest::Client,
    pub dir: tempfile::TempDir,
}

/// A config on a temp dir, port 0, the hash embedder (fast; MiniLM is tested on its own).
///
/// With `REFLECTOR_TEST_DATABASE_URL` set, the store is PostgreSQL at that URL instead of
/// SQLite, in a new empty schema for each call (so tests stay independent): the same suite
/// runs on both backends (`scripts/test.sh` does both). An unreachable server fails the
/// test; it never falls back to SQLite.
pub fn test_config(dir: &std::path::Path) -> Config {
    let (database_url, database_schema) = match std::env::var("REFLECTOR_TEST_DATABASE_URL") {
        Ok(url) if !url.is_empty() => (
            Some(url),
            Some(format!("t_{}", uuid::Uuid::new_v4().simple())),
        ),
        _ => (None, None),
    };
    Config {
        database_url,
        database_schema,
        listen: "127.0.0.1:0".parse().unwrap(),
        data_dir: dir.to_path_buf(),
        embedder: "hash".into(),
        workers: 2,
        embed_threads: 1,
        retry_base_ms: 20,
        retry_max_ms: 200,
        ..Config::default()
    }
}

/// Environment for a `reflector` command that must use the same store as a server started
/// with `cfg`: with PostgreSQL, its URL and schema (the data directory alone names only the
/// SQLite file); nothing with SQLite.
pub fn store_env(cfg: &Config) -> Vec<(&'static str, String)> {
    let mut env = Vec::new();
    if let Some(url) = &cfg.database_url {
        env.push(("DATABASE_URL", url.clone()));
    }
    if let Some(schema) = &cfg.database_schema {
        env.push(("REFLECTOR_DATABASE_SCHEMA", schema.clone()));
    }
    env
}

pub async fn start_with(f: impl FnOnce(&mut Config), opts: Options) -> TestServer {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = test_config(dir.path());
    f(&mut cfg);
    let svc = Service::start(cfg, opts).await.expect("service starts");
    let base = format!("http://{}", svc.addr);
    TestServer {
        svc: Some(svc),
        base,
        http: reqwest::Client::new(),
        dir,
    }
}

pub async fn start() -> TestServer {
    start_with(|_| {}, Options::default()).await
}

impl TestServer {
    pub async fn post(&self, path: &str, body: &Value) -> (u16, Value) {
        let r = self
            .http
            .post(format!("{}{path}", self.base))
            .json(body)
            .send()
            .await
            .unwrap();
        let s = r.status().as_u16();
        (s, r.json().await.unwrap_or(Value::Null))
    }

    pub async fn post_raw(&self, path: &str, body: Vec<u8>) -> (u16, Value) {
        let r = self
            .http
            .post(format!("{}{path}", self.base))
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        let s = r.status().as_u16();
        (s, r.json().await.unwrap_or(Value::Null))
    }

    /// The whole response to a GET (status, headers, body unread).
    pub async fn get_response(&self, path: &str) -> reqwest::Response {
        self.http
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .unwrap()
    }

    pub async fn get(&self, path: &str) -> (u16, Value) {
        let r = self.get_response(path).await;
        let s = r.status().as_u16();
        (s, r.json().await.unwrap_or(Value::Null))
    }

    pub async fn get_text(&self, path: &str) -> (u16, String) {
        let r = self.get_response(path).await;
        (r.status().as_u16(), r.text().await.unwrap())
    }

    /// Post a turn; returns (status, body).
    pub async fn turn(&self, user: &str, text: &str, ts: &str, extra: Value) -> (u16, Value) {
        let mut body = json!({"user_id": user, "session_id": "s1", "user_message": text,
                              "assistant_response": "", "timestamp": ts});
        if let Value::Object(m) = extra {
            for (k, v) in m {
                body[k] = v;
            }
        }
        self.post("/api/interactions", &body).await
    }

    /// Wait until the job is in a final state (completed or dead); returns the job record.
    pub async fn wait_job(&self, job_id: &str) -> Value {
        for _ in 0..500 {
            let (s, j) = self.get(&format!("/api/reflection/jobs/{job_id}")).await;
            assert_eq!(s, 200, "{j}");
            if j["state"] == "completed" || j["state"] == "dead" {
                return j;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("job {job_id} did not finish");
    }

    pub async fn stop(mut self) {
        if let Some(s) = self.svc.take() {
            s.shutdown(Duration::from_secs(10)).await.unwrap();
        }
    }
}
