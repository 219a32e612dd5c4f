//! The OpenAPI document (`GET /openapi.json`) against the router that serves the API: every
//! route the server answers is documented, with its methods; every documented operation is
//! served; the layers' responses (401/403, 413) and the bearer scheme are there; and the
//! document and Swagger UI (`/docs`) are public when keys are configured.
//!
//! axum cannot list its routes, so the routes come from two places: the paths in the document
//! and every path literal registered anywhere in `src/` with `.route(`, `.route_service(` or
//! `.nest(` (the route modules register handlers with `utoipa_axum::routes!`, which documents
//! them by construction; a plain axum registration is how an undocumented route would get
//! in). Each of those paths is then probed on a running server with every method: whatever
//! is served (neither 405 nor the router's fallback 404) must be a documented operation.

mod common;

use std::collections::{BTreeMap, BTreeSet};

use common::*;
use reflector::api::auth::ApiKeys;
use reflector::server::Options;
use serde_json::{Value, json};

const ADMIN: &str = "openapi-admin-key-0123456789";
const METHODS: [&str; 5] = ["get", "post", "put", "patch", "delete"];
/// Served outside the document: the document itself, Swagger UI, the MCP endpoint (one
/// JSON-RPC route whose tools are documented operations; `src/mcp.rs`), and the dashboard's
/// static files (`src/api/ui.rs`).
const META_ROUTES: [&str; 8] = [
    "/openapi.json",
    "/docs",
    "/docs/",
    "/docs/{*rest}",
    "/mcp",
    "/ui",
    "/ui/",
    "/ui/{file}",
];

/// Path literals registered with plain axum calls anywhere under `src/`.
fn registered_in_source() -> BTreeSet<String> {
    let re = regex::Regex::new(r#"\.(route|route_service|nest)\(\s*"([^"]+)""#).unwrap();
    let mut out = BTreeSet::new();
    let mut stack = vec![std::path::PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/src"
    ))];
    while let Some(dir) = stack.pop() {
        for e in std::fs::read_dir(&dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "rs") {
                let text = std::fs::read_to_string(&p).unwrap();
                for c in re.captures_iter(&text) {
                    out.insert(c[2].to_string());
                }
            }
        }
    }
    out
}

/// A concrete URL path for a templated one.
fn concrete(path: &str) -> String {
    let re = regex::Regex::new(r"\{[^}]+\}").unwrap();
    re.replace_all(path, "1").into_owned()
}

async fn fetch_doc(t: &TestServer) -> Value {
    let r = t
        .http
        .get(format!("{}/openapi.json", t.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(
        r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/json")
    );
    r.json().await.unwrap()
}

#[tokio::test]
async fn every_served_route_is_documented_and_every_documented_one_is_served() {
    let t = start().await;
    let doc = fetch_doc(&t).await;
    assert_eq!(doc["openapi"], "3.1.0");
    let paths = doc["paths"].as_object().expect("paths");
    let documented: BTreeSet<(String, String)> = paths
        .iter()
        .flat_map(|(p, item)| {
            METHODS
                .iter()
                .filter(|m| item.get(**m).is_some())
                .map(move |m| (p.clone(), m.to_string()))
        })
        .collect();
    assert!(documented.len() >= 26, "{documented:?}");

    let mut candidates: BTreeSet<String> = paths.keys().cloned().collect();
    candidates.extend(registered_in_source());
    let mut served = BTreeSet::new();
    for path in &candidates {
        if META_ROUTES.contains(&path.as_str()) {
            continue;
        }
        // Side effects are fine: this server and its data are thrown away.
        for m in METHODS {
            let r = t
                .http
                .request(
                    m.to_uppercase().parse().unwrap(),
                    format!("{}{}", t.base, concrete(path)),
                )
                .header("content-type", "application/json")
                .body("{}")
                .send()
                .await
                .unwrap();
            let status = r.status().as_u16();
            let body: Value = r.json().await.unwrap_or(Value::Null);
            let fallback = status == 404
                && body["message"]
                    .as_str()
                    .is_some_and(|s| s.starts_with("no such route"));
            if status != 405 && !fallback {
                served.insert((path.clone(), m.to_string()));
            }
        }
    }
    let undocumented: Vec<_> = served.difference(&documented).collect();
    assert!(
        undocumented.is_empty(),
        "served but not in /openapi.json (annotate the handler with #[utoipa::path] and register it with routes!): {undocumented:?}"
    );
    let unserved: Vec<_> = documented.difference(&served).collect();
    assert!(
        unserved.is_empty(),
        "in /openapi.json but not served: {unserved:?}"
    );
    t.stop().await;
}

#[tokio::test]
async fn operations_document_their_answers_errors_and_security() {
    let t = start().await;
    let doc = fetch_doc(&t).await;
    assert_eq!(
        doc["components"]["securitySchemes"]["bearer"],
        json!({"type": "http", "scheme": "bearer", "description": doc["components"]["securitySchemes"]["bearer"]["description"]})
    );
    for key in ["error", "message"] {
        assert!(
            doc["components"]["schemas"]["ErrorBody"]["required"]
                .as_array()
                .unwrap()
                .contains(&json!(key))
        );
    }
    let public = reflector::api::auth::PUBLIC_ROUTES;
    let param_re = regex::Regex::new(r"\{([^}]+)\}").unwrap();
    let mut ops = 0;
    // OpenAPI 3.1, 4.8.10.1: operationId is unique among all operations (client generators
    // name their methods after it).
    let mut ids = BTreeSet::new();
    for item in doc["paths"].as_object().unwrap().values() {
        for m in METHODS {
            if let Some(id) = item.get(m).and_then(|op| op["operationId"].as_str()) {
                assert!(ids.insert(id.to_string()), "operationId {id} appears twice");
            }
        }
    }
    for (path, item) in doc["paths"].as_object().unwrap() {
        for m in METHODS {
            let Some(op) = item.get(m) else { continue };
            ops += 1;
            let what = format!("{} {path}", m.to_uppercase());
            let responses: BTreeMap<&str, &Value> = op["responses"]
                .as_object()
                .unwrap()
                .iter()
                .map(|(k, v)| (k.as_str(), v))
                .collect();
            assert!(
                responses.keys().any(|k| k.starts_with('2')),
                "{what}: no success answer"
            );
            assert!(
                op["description"].is_string() || op["summary"].is_string(),
                "{what}"
            );
            assert!(op["tags"].is_array(), "{what}: no tag");
            if public.contains(&path.as_str()) {
                assert_eq!(op["security"], json!([{}]), "{what}");
                assert!(!responses.contains_key("401"), "{what}");
            } else {
                assert_eq!(op["security"], json!([{"bearer": []}]), "{what}");
                for code in ["401", "403"] {
                    assert!(responses.contains_key(code), "{what}: no {code}");
                }
                assert!(responses["401"]["headers"]["WWW-Authenticate"].is_object());
            }
            if op.get("requestBody").is_some() {
                assert!(responses.contains_key("413"), "{what}: no 413");
            }
            // Every error answer has the JSON error body (health's 503 has the health body).
            for (code, r) in &responses {
                if code.starts_with('4') {
                    assert_eq!(
                        r["content"]["application/json"]["schema"]["$ref"],
                        "#/components/schemas/ErrorBody",
                        "{what} {code}"
                    );
                }
            }
            // Path parameters are all declared.
            let declared: BTreeSet<&str> = op["parameters"]
                .as_array()
                .map(|ps| {
                    ps.iter()
                        .filter(|p| p["in"] == "path")
                        .map(|p| p["name"].as_str().unwrap())
                        .collect()
                })
                .unwrap_or_default();
            let in_path: BTreeSet<&str> = param_re
                .captures_iter(path)
                .map(|c| c.get(1).unwrap().as_str())
                .collect();
            assert_eq!(declared, in_path, "{what}");
        }
    }
    assert!(ops >= 26);
    // The document served is the one the library builds.
    assert_eq!(
        doc,
        serde_json::to_value(reflector::api::openapi::document()).unwrap()
    );
    t.stop().await;
}

#[tokio::test]
async fn the_document_and_the_docs_page_are_public_with_keys_configured() {
    let t = start_with(
        |c| c.api_keys = ApiKeys::parse(&format!("{ADMIN}:admin")).unwrap(),
        Options::default(),
    )
    .await;
    let doc = fetch_doc(&t).await;
    assert!(doc["paths"]["/api/interactions"].is_object());
    let (s, html) = t.get_text("/docs/").await;
    assert_eq!(s, 200);
    assert!(html.contains("swagger-ui"), "{html}");
    // Swagger UI's files are in the binary (no CDN) and point at our document.
    let (s, init) = t.get_text("/docs/swagger-initializer.js").await;
    assert_eq!(s, 200);
    assert!(init.contains("/openapi.json"), "{init}");
    let (s, js) = t.get_text("/docs/swagger-ui-bundle.js").await;
    assert_eq!(s, 200);
    assert!(js.len() > 100_000);
    assert!(
        !html.contains("https://"),
        "the page loads nothing from elsewhere"
    );
    // /docs redirects to /docs/.
    let r = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
        .get(format!("{}/docs", t.base))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_redirection());
    // The API itself still needs a key.
    let (s, _) = t.get("/api/reflection/stats").await;
    assert_eq!(s, 401);
    t.stop().await;
}

#[tokio::test]
async fn bodies_over_the_limit_are_413_with_the_json_error_body_on_every_route_with_a_body() {
    let t = start_with(|c| c.max_body_bytes = 1024, Options::default()).await;
    let big = vec![b' '; 4096];
    for path in [
        "/api/interactions",
        "/api/memory/episodic/ana",
        "/api/memory/semantic/ana/1",
        "/api/reflection/dlq/replay",
    ] {
        let method = if path.ends_with("/1") {
            "PATCH"
        } else {
            "POST"
        };
        let r = t
            .http
            .request(method.parse().unwrap(), format!("{}{path}", t.base))
            .header("content-type", "application/json")
            .body(big.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 413, "{method} {path}");
        let body: Value = r.json().await.expect("a JSON body");
        assert_eq!(body["error"], "payload_too_large", "{method} {path}");
    }
    t.stop().await;
}

#[tokio::test]
async fn the_documented_timestamp_pattern_is_what_the_server_parses() {
    let t = start().await;
    let doc = fetch_doc(&t).await;
    let pattern = reflector::api::schema::TIMESTAMP_PATTERN;
    let schemas = &doc["components"]["schemas"];
    for (schema, field) in [
        ("InteractionRequest", "timestamp"),
        ("NewEpisodeRequest", "occurred_at"),
        ("NewFactRequest", "valid_at"),
    ] {
        assert_eq!(
            schemas[schema]["properties"][field]["pattern"], pattern,
            "{schema}.{field}"
        );
    }
    let re = regex::Regex::new(pattern).unwrap();
    for ok in [
        "2024-05-08",
        "2024-05-08T13:56",
        "2024-05-08T13:56:00",
        "2024-05-08T13:56:00Z",
        "2024-05-08T13:56:00.123456789+14:00",
        "2024-05-08T13:56:00-09:30",
        "2024-05-08 13:56:00.5",
        "2023-02-28T23:59:59Z",
        "2024-12-31",
    ] {
        assert!(re.is_match(ok), "{ok}");
        assert!(
            reflector::job::parse_timestamp(ok).is_some(),
            "documented but refused: {ok}"
        );
        let (s, r) = t
            .turn(
                "tz",
                "hello there",
                ok,
                json!({"metadata": {"timezone": ""}}),
            )
            .await;
        assert_eq!(s, 202, "{ok}: {r}");
    }
    for bad in [
        "",
        "2024-02-30",
        "2024-04-31",
        "2024-05-08T13:56Z",
        "2024-05-08 13:56",
        "2024-05-08T13:56:00+15:00",
    ] {
        assert!(!re.is_match(bad), "{bad}");
    }
    t.stop().await;
}

#[test]
fn not_blank_is_what_the_server_trims() {
    let re = regex::Regex::new(reflector::api::schema::NOT_BLANK_PATTERN).unwrap();
    for c in (0u32..0x3100).chain([0xFEFF]).filter_map(char::from_u32) {
        let s = c.to_string();
        assert_eq!(re.is_match(&s), !s.trim().is_empty(), "U+{:04X}", c as u32);
    }
}
