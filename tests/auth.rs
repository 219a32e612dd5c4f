//! Bearer API keys end to end: 401 without a valid key, 403 for another user's data on every
//! kind of route, the public health route, and the refusal to listen beyond loopback without keys.

mod common;

use common::*;
use reflector::api::auth::ApiKeys;
use reflector::server::{Options, Service};
use serde_json::{Value, json};

const ADMIN: &str = "test-admin-key-0123456789";
const ANA: &str = "test-key-for-ana-0123456789";

async fn req(
    t: &TestServer,
    method: &str,
    path: &str,
    key: Option<&str>,
    body: Option<Value>,
) -> (u16, Value, reqwest::header::HeaderMap) {
    let url = format!("{}{path}", t.base);
    let mut r = match method {
        "GET" => t.http.get(url),
        "POST" => t.http.post(url),
        "DELETE" => t.http.delete(url),
        "PATCH" => t.http.patch(url),
        m => panic!("method {m}"),
    };
    if let Some(k) = key {
        r = r.bearer_auth(k);
    }
    if let Some(b) = body {
        r = r.json(&b);
    }
    let resp = r.send().await.unwrap();
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let text = resp.text().await.unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::Null),
        headers,
    )
}

fn turn(user: &str, id: &str) -> Value {
    json!({"user_id": user, "session_id": "s1", "user_message": "I live in Lisbon and I love jazz.",
           "timestamp": "2024-05-01T10:00:00Z", "interaction_id": id})
}

async fn keyed_server() -> TestServer {
    start_with(
        |c| c.api_keys = ApiKeys::parse(&format!("{ADMIN}:admin,{ANA}:user=ana|ana.work")).unwrap(),
        Options::default(),
    )
    .await
}

#[tokio::test]
async fn a_key_limited_to_one_user_gets_403_on_every_route_of_another_user() {
    let t = keyed_server().await;
    // Bob's data exists (written by the admin), so a 403 is not a 404 in disguise.
    let (s, bob_turn, _) = req(
        &t,
        "POST",
        "/api/interactions",
        Some(ADMIN),
        Some(turn("bob", "b-1")),
    )
    .await;
    assert_eq!(s, 202, "{bob_turn}");
    let bob_job = bob_turn["reflection_job_id"].as_str().unwrap().to_string();
    let (s, ana_turn, _) = req(
        &t,
        "POST",
        "/api/interactions",
        Some(ANA),
        Some(turn("ana", "a-1")),
    )
    .await;
    assert_eq!(s, 202, "{ana_turn}");
    let ana_job = ana_turn["reflection_job_id"].as_str().unwrap().to_string();
    for _ in 0..500 {
        let (_, j, _) = req(
            &t,
            "GET",
            &format!("/api/reflection/jobs/{bob_job}"),
            Some(ADMIN),
            None,
        )
        .await;
        if j["state"] == "completed" {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }

    // Every user-scoped route, for bob (403) and for ana (2xx).
    let user_routes = |u: &str| -> Vec<(&'static str, String, Option<Value>)> {
        vec![
            (
                "POST",
                "/api/interactions".into(),
                Some(turn(u, &format!("{u}-2"))),
            ),
            ("GET", format!("/api/memory/context/{u}?query=jazz"), None),
            ("GET", format!("/api/memory/short-term/{u}"), None),
            ("GET", format!("/api/memory/episodic/{u}"), None),
            ("GET", format!("/api/memory/semantic/{u}"), None),
            ("GET", format!("/api/memory/procedural/{u}"), None),
            ("GET", format!("/api/memory/stats/{u}"), None),
            ("GET", format!("/api/memory/edits/{u}"), None),
            (
                "POST",
                format!("/api/memory/procedural/{u}"),
                Some(json!({"statement": "Be brief.", "kind": "instruction"})),
            ),
            ("DELETE", format!("/api/memory/user/{u}"), None),
        ]
    };
    // Editing one memory by id: refused before the id is even looked up.
    for m in ["PATCH", "DELETE"] {
        let (s, b, _) = req(
            &t,
            m,
            "/api/memory/episodic/bob/1",
            Some(ANA),
            Some(json!({"text": "x"})),
        )
        .await;
        assert_eq!(s, 403, "{m}: {b}");
    }
    for (m, path, body) in user_routes("bob") {
        let (s, b, _) = req(&t, m, &path, Some(ANA), body).await;
        assert_eq!(s, 403, "{m} {path}: {b}");
        assert_eq!(b["error"], "forbidden", "{b}");
        assert!(b["message"].as_str().unwrap().contains("bob"), "{b}");
    }
    let (s, b, _) = req(
        &t,
        "GET",
        &format!("/api/reflection/jobs/{bob_job}"),
        Some(ANA),
        None,
    )
    .await;
    assert_eq!(s, 403, "{b}");
    // Operator routes are for admin keys only.
    for (m, path, body) in [
        ("GET", "/api/reflection/dlq", None),
        (
            "POST",
            "/api/reflection/dlq/replay",
            Some(json!({"all": true})),
        ),
        ("GET", "/api/reflection/stats", None),
        ("GET", "/api/reflection/queue-status", None),
        ("GET", "/metrics", None),
    ] {
        let (s, b, _) = req(&t, m, path, Some(ANA), body.clone()).await;
        assert_eq!(s, 403, "{m} {path}: {b}");
        let (s, b, _) = req(&t, m, path, Some(ADMIN), body).await;
        assert!(
            s == 200 || (s == 404 && path.ends_with("replay")),
            "{m} {path}: {s} {b}"
        );
    }
    // Bob's memory is untouched by all of that.
    let (s, b, _) = req(&t, "GET", "/api/memory/short-term/bob", Some(ADMIN), None).await;
    assert_eq!((s, b["turns"].as_array().unwrap().len()), (200, 1), "{b}");

    // Ana's own routes work with her key (the DELETE last).
    let (s, b, _) = req(
        &t,
        "GET",
        &format!("/api/reflection/jobs/{ana_job}"),
        Some(ANA),
        None,
    )
    .await;
    assert_eq!(s, 200, "{b}");
    for (m, path, body) in user_routes("ana") {
        let (s, b, _) = req(&t, m, &path, Some(ANA), body).await;
        assert!((200..300).contains(&s), "{m} {path}: {s} {b}");
    }
    t.stop().await;
}

#[tokio::test]
async fn missing_or_unknown_keys_get_401_and_health_stays_public() {
    let t = keyed_server().await;
    for key in [None, Some("not-a-configured-key-000"), Some("")] {
        let (s, b, h) = req(&t, "GET", "/api/memory/episodic/ana", key, None).await;
        assert_eq!(s, 401, "{key:?}: {b}");
        assert_eq!(b["error"], "unauthorized");
        assert!(
            h.get("www-authenticate")
                .unwrap()
                .to_str()
                .unwrap()
                .starts_with("Bearer")
        );
        let (s, _, _) = req(&t, "POST", "/api/interactions", key, Some(turn("ana", "x"))).await;
        assert_eq!(s, 401);
    }
    // Another scheme is not a bearer token.
    let r = t
        .http
        .get(format!("{}/api/memory/episodic/ana", t.base))
        .header("authorization", format!("Basic {ANA}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 401);
    let (s, b, _) = req(&t, "GET", "/api/reflection/health", None, None).await;
    assert_eq!(s, 200, "{b}");
    // Nothing was stored by the refused requests.
    let (_, b, _) = req(&t, "GET", "/api/memory/short-term/ana", Some(ADMIN), None).await;
    assert_eq!(b["turns"], json!([]));
    t.stop().await;
}

#[tokio::test]
async fn refuses_to_listen_beyond_loopback_without_keys() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = test_config(dir.path());
    cfg.listen = "0.0.0.0:0".parse().unwrap();
    let err = match Service::start(cfg.clone(), Options::default()).await {
        Ok(_) => panic!("served on 0.0.0.0 without keys"),
        Err(e) => format!("{e:#}"),
    };
    assert!(
        err.contains("REFLECTOR_API_KEYS") && err.contains("0.0.0.0"),
        "{err}"
    );
    cfg.api_keys = ApiKeys::parse(&format!("{ADMIN}:admin")).unwrap();
    let svc = Service::start(cfg, Options::default())
        .await
        .expect("with keys it serves");
    svc.shutdown(std::time::Duration::from_secs(5))
        .await
        .unwrap();
}
