//! The optional LLM mode against a local stand-in for an OpenAI-compatible chat-completions
//! server (axum on 127.0.0.1:0, scripted per test). No test needs the internet.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use chrono::{FixedOffset, TimeZone, Utc};
use reflector::extract::TurnView;
use reflector::llm::{LlmConfig, LlmExtractor};
use serde_json::{Value, json};

const KEY: &str = "sk-test-SECRET-0123456789";

/// What the stand-in answers to one request.
struct Resp {
    status: u16,
    headers: Vec<(&'static str, String)>,
    body: String,
    delay: Duration,
}

/// A 200 chat completion whose assistant message is `content`.
fn ok(content: &str) -> Resp {
    ok_with(content, "stop")
}

fn ok_with(content: &str, finish_reason: &str) -> Resp {
    Resp {
        status: 200,
        headers: Vec::new(),
        body: json!({
            "id": "chatcmpl-1",
            "object": "chat.completion",
            "model": "stub-model",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": finish_reason}],
        })
        .to_string(),
        delay: Duration::ZERO,
    }
}

fn status(code: u16, body: Value) -> Resp {
    Resp {
        status: code,
        headers: Vec::new(),
        body: body.to_string(),
        delay: Duration::ZERO,
    }
}

/// One request the stand-in received.
#[derive(Clone)]
struct Call {
    headers: HeaderMap,
    body: Value,
}

impl Call {
    fn user(&self) -> &str {
        self.body["messages"][1]["content"].as_str().unwrap()
    }

    /// The text between the `<<<` and `>>>` markers of the user message (the turn's text).
    fn quoted(&self) -> &str {
        let u = self.user();
        let s = u.find("<<<\n").unwrap() + 4;
        let e = s + u[s..].find("\n>>>").unwrap();
        &u[s..e]
    }

    fn format(&self) -> Option<&str> {
        self.body
            .get("response_format")
            .map(|f| f["type"].as_str().unwrap())
    }
}

type Script = Arc<dyn Fn(usize, &Value) -> Resp + Send + Sync>;
type Calls = Arc<Mutex<Vec<Call>>>;

struct Stub {
    base: String,
    calls: Calls,
}

impl Stub {
    fn calls(&self) -> Vec<Call> {
        self.calls.lock().unwrap().clone()
    }
}

/// Starts a stand-in whose answer to request number `n` (from 0) is `script(n, body)`.
async fn stub(script: impl Fn(usize, &Value) -> Resp + Send + Sync + 'static) -> Stub {
    let calls: Calls = Arc::new(Mutex::new(Vec::new()));
    let script: Script = Arc::new(script);
    let app = Router::new()
        .route("/v1/chat/completions", post(handle))
        .with_state((script, calls.clone()));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    Stub {
        base: format!("http://{addr}/v1"),
        calls,
    }
}

async fn handle(
    State((script, calls)): State<(Script, Calls)>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let n = {
        let mut c = calls.lock().unwrap();
        c.push(Call {
            headers,
            body: body.clone(),
        });
        c.len() - 1
    };
    let r = script(n, &body);
    if !r.delay.is_zero() {
        tokio::time::sleep(r.delay).await;
    }
    let mut resp = (StatusCode::from_u16(r.status).unwrap(), r.body).into_response();
    resp.headers_mut()
        .insert("content-type", HeaderValue::from_static("application/json"));
    for (k, v) in r.headers {
        resp.headers_mut()
            .insert(k, HeaderValue::from_str(&v).unwrap());
    }
    resp
}

fn config(base: &str) -> LlmConfig {
    LlmConfig {
        base_url: base.to_string(),
        model: "stub-model".into(),
        api_key: Some(KEY.into()),
        timeout: Duration::from_secs(5),
        max_retries: 2,
        max_input_chars: 12_000,
    }
}

fn extractor(base: &str) -> LlmExtractor {
    LlmExtractor::new(config(base))
        .unwrap()
        .with_retry_backoff(Duration::from_millis(10), Duration::from_millis(40))
}

fn turn(text: &str) -> TurnView {
    let ts = Utc.with_ymd_and_hms(2023, 5, 8, 13, 56, 0).unwrap();
    TurnView {
        user_id: "u1".into(),
        speaker: "Caroline".into(),
        text: text.into(),
        assistant_response: String::new(),
        timestamp: ts,
        local: ts.with_timezone(&FixedOffset::east_opt(0).unwrap()),
    }
}

const SUPPORT: &str = "I went to a LGBTQ support group yesterday and it was so powerful.";

fn episode_json() -> String {
    json!({
        "keep": true,
        "text": "Caroline went to an LGBTQ support group on 7 May 2023 and found it powerful.",
        "summary": "Caroline went to an LGBTQ support group.",
        "importance": 1.5,
        "tags": ["LGBTQ", "support", "Support", "community"],
        "occurred_on": "2023-05-07"
    })
    .to_string()
}

fn err_text<T: std::fmt::Debug>(r: anyhow::Result<T>) -> String {
    let e = r.expect_err("expected an error");
    let s = format!("{e:#}");
    assert!(
        !s.to_ascii_lowercase().contains(&KEY.to_ascii_lowercase()),
        "the API key leaked into an error: {s}"
    );
    assert!(
        !format!("{e:?}").contains(KEY),
        "the API key leaked into an error: {e:?}"
    );
    s
}

#[tokio::test]
async fn clean_json_episode_and_the_request_it_came_from() {
    let s = stub(|_, _| ok(&episode_json())).await;
    let e = extractor(&s.base)
        .episode(&turn(SUPPORT))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        e.text,
        "[8 May 2023] Caroline: Caroline went to an LGBTQ support group on 7 May 2023 and found it powerful."
    );
    assert_eq!(e.importance, 1.0, "clamped");
    assert_eq!(e.tags, vec!["lgbtq", "support", "community"]);
    assert_eq!(
        e.occurred_at,
        Utc.with_ymd_and_hms(2023, 5, 7, 12, 0, 0).unwrap()
    );
    assert_eq!(e.summary, "Caroline went to an LGBTQ support group.");

    let calls = s.calls();
    assert_eq!(calls.len(), 1);
    let c = &calls[0];
    assert_eq!(c.body["model"], "stub-model");
    assert_eq!(c.body["temperature"], 0);
    assert_eq!(c.format(), Some("json_schema"));
    assert_eq!(
        c.body["response_format"]["json_schema"]["schema"]["required"][0],
        "keep"
    );
    assert_eq!(c.body["messages"][0]["role"], "system");
    let u = c.user();
    assert!(u.contains("Speaker: Caroline"), "{u}");
    assert!(u.contains("8 May 2023 (Monday)"), "{u}");
    assert!(
        u.contains("\"occurred_on\""),
        "the schema is in the prompt: {u}"
    );
    assert_eq!(c.quoted(), SUPPORT);
    assert_eq!(
        c.headers.get("authorization").unwrap().to_str().unwrap(),
        format!("Bearer {KEY}")
    );
}

#[tokio::test]
async fn fenced_json_graph() {
    let reply = "```json\n{\"entities\": [{\"name\": \"Berlin\", \"type\": \"city\", \"aliases\": []}],\n\
                 \"relations\": [{\"subject\": \"I\", \"predicate\": \"lives in\", \"object\": \"Berlin\", \
                 \"fact\": \"Caroline lives in Berlin.\", \"valid_on\": \"2023-04-24\", \"exclusive\": false},\
                 {\"subject\": \"Caroline\", \"predicate\": \"hasPet\", \"object\": \"Oscar\", \
                 \"fact\": \"Caroline has a cat named Oscar.\", \"valid_on\": null, \"exclusive\": false}]}\n```";
    let s = stub(move |_, _| ok(reply)).await;
    let g = extractor(&s.base)
        .graph(&turn(
            "I moved to Berlin two weeks ago. My cat Oscar loves it.",
        ))
        .await
        .unwrap();
    let names: Vec<_> = g
        .entities
        .iter()
        .map(|e| (e.name.as_str(), e.kind.as_str()))
        .collect();
    assert_eq!(names, vec![("Caroline", "person"), ("Berlin", "place")]);
    let r = &g.relations[0];
    assert_eq!(
        (
            r.subject.as_str(),
            r.predicate.as_str(),
            r.object.as_str(),
            r.exclusive
        ),
        ("Caroline", "LIVES_IN", "Berlin", true)
    );
    assert_eq!(
        r.valid_at,
        Utc.with_ymd_and_hms(2023, 4, 24, 12, 0, 0).unwrap()
    );
    let p = &g.relations[1];
    assert_eq!((p.predicate.as_str(), p.exclusive), ("HAS_PET", false));
    assert_eq!(
        p.valid_at,
        Utc.with_ymd_and_hms(2023, 5, 8, 13, 56, 0).unwrap()
    );
    assert_eq!(s.calls()[0].format(), Some("json_schema"));
}

#[tokio::test]
async fn prefixed_and_chatty_json_rules() {
    let reply = "Sure {Caroline}! Here is the JSON you asked for [as requested]:\n\
                 {\"rules\": [{\"kind\": \"Instruction\", \"statement\": \"Caroline wants answers in German.\", \
                 \"topic\": \"Language\", \"confidence\": 0.9}, {\"kind\": \"constraint\", \"statement\": \
                 \"Caroline must not be called before 9 am.\", \"topic\": \"Contact Time\", \"confidence\": 2}]}\n\
                 Let me know if you need anything else! {\"rules\": []}";
    let s = stub(move |_, _| ok(reply)).await;
    let r = extractor(&s.base)
        .rules(&turn("Always answer in German. Don't call me before 9."))
        .await
        .unwrap();
    let got: Vec<_> = r
        .iter()
        .map(|r| (r.kind.as_str(), r.topic.as_str(), r.confidence))
        .collect();
    assert_eq!(
        got,
        vec![
            ("instruction", "language", 0.9),
            ("constraint", "contact_time", 1.0)
        ]
    );
}

#[tokio::test]
async fn keep_false_means_no_episode() {
    let s = stub(|_, _| {
        ok(r#"{"keep": false, "text": null, "summary": null, "importance": null, "tags": [], "occurred_on": null}"#)
    })
    .await;
    let x = extractor(&s.base);
    assert_eq!(x.episode(&turn("Hi! How are you?")).await.unwrap(), None);
    // A blank turn needs no request at all.
    assert_eq!(x.episode(&turn("  ")).await.unwrap(), None);
    assert!(x.rules(&turn("")).await.unwrap().is_empty());
    assert_eq!(x.graph(&turn("")).await.unwrap().entities.len(), 1);
    assert_eq!(s.calls().len(), 1);
}

#[tokio::test]
async fn rate_limited_then_success_honours_retry_after() {
    let s = stub(|n, _| {
        if n == 0 {
            let mut r = status(
                429,
                json!({"error": {"message": "Rate limit reached", "type": "requests"}}),
            );
            r.headers.push(("retry-after", "0".into()));
            r
        } else {
            ok(&episode_json())
        }
    })
    .await;
    // Backoff of 60 s: only honouring Retry-After: 0 makes this finish well before that.
    let x = LlmExtractor::new(config(&s.base))
        .unwrap()
        .with_retry_backoff(Duration::from_secs(60), Duration::from_secs(60));
    let t = Instant::now();
    assert!(x.episode(&turn(SUPPORT)).await.unwrap().is_some());
    assert!(
        t.elapsed() < Duration::from_secs(30),
        "waited {:?}",
        t.elapsed()
    );
    assert_eq!(s.calls().len(), 2);
}

#[tokio::test]
async fn server_errors_twice_then_success() {
    let s = stub(|n, _| {
        if n < 2 {
            status(500, json!({"error": {"message": "upstream overloaded"}}))
        } else {
            ok(&episode_json())
        }
    })
    .await;
    assert!(
        extractor(&s.base)
            .episode(&turn(SUPPORT))
            .await
            .unwrap()
            .is_some()
    );
    assert_eq!(s.calls().len(), 3);
}

#[tokio::test]
async fn server_errors_until_retries_run_out() {
    let s = stub(|_, _| status(503, json!({"error": "loading model"}))).await;
    let e = err_text(
        extractor(&s.base)
            .rules(&turn("Always answer in German."))
            .await,
    );
    assert!(e.contains("LLM rules extraction"), "{e}");
    assert!(e.contains("HTTP 503: loading model"), "{e}");
    assert!(e.contains("gave up after 3 attempts"), "{e}");
    assert_eq!(s.calls().len(), 3, "1 attempt + max_retries 2");
}

#[tokio::test]
async fn retry_after_beyond_the_limit_fails_at_once() {
    let s = stub(|_, _| {
        let mut r = status(429, json!({"error": {"message": "quota"}}));
        r.headers.push(("retry-after", "3600".into()));
        r
    })
    .await;
    let e = err_text(extractor(&s.base).episode(&turn(SUPPORT)).await);
    assert!(
        e.contains("HTTP 429") && e.contains("retry after 3600 s"),
        "{e}"
    );
    assert_eq!(s.calls().len(), 1);
}

#[tokio::test]
async fn reply_without_json_is_an_error() {
    let s = stub(|_, _| ok("I'm sorry, but I can't help with that request.")).await;
    let x = extractor(&s.base);
    let e = err_text(x.episode(&turn(SUPPORT)).await);
    assert!(e.contains("LLM episode extraction"), "{e}");
    assert!(e.contains("no JSON object in the model's reply"), "{e}");
    // Not retried at the HTTP level: the same prompt at temperature 0 gives the same reply.
    assert_eq!(s.calls().len(), 1);
    let e = err_text(x.graph(&turn("I live in Berlin.")).await);
    assert!(e.contains("no JSON object"), "{e}");
    let e = err_text(x.rules(&turn("Always answer in German.")).await);
    assert!(e.contains("no JSON object"), "{e}");
}

#[tokio::test]
async fn reply_cut_off_at_the_token_limit_is_an_error() {
    let s = stub(|_, _| ok_with("{\"keep\": true, \"text\": \"Caroline went to", "length")).await;
    let e = err_text(extractor(&s.base).episode(&turn(SUPPORT)).await);
    assert!(
        e.contains("cut off") && e.contains("finish_reason: length"),
        "{e}"
    );
}

#[tokio::test]
async fn wrong_shapes_are_errors() {
    let s = stub(|_, body| {
        let name = body["response_format"]["json_schema"]["name"]
            .as_str()
            .unwrap_or("");
        match name {
            "episode" => ok(r#"{"memory": "Caroline went to a support group."}"#),
            "graph" => {
                ok(r#"{"entities": [], "relations": [{"subject": "I", "object": "Berlin"}]}"#)
            }
            _ => ok(
                r#"{"rules": [{"kind": "wish", "statement": "s", "topic": "t", "confidence": 1}]}"#,
            ),
        }
    })
    .await;
    let x = extractor(&s.base);
    let e = err_text(x.episode(&turn(SUPPORT)).await);
    assert!(
        e.contains("unusable reply") && e.contains("missing `keep`"),
        "{e}"
    );
    let e = err_text(x.graph(&turn("I live in Berlin.")).await);
    assert!(e.contains("relations[0]: missing `predicate`"), "{e}");
    let e = err_text(x.rules(&turn("Always answer in German.")).await);
    assert!(
        e.contains("`kind` must be preference, instruction or constraint, got \"wish\""),
        "{e}"
    );
}

#[tokio::test]
async fn slow_reply_times_out_after_retries() {
    let s = stub(|_, _| {
        let mut r = ok(&episode_json());
        r.delay = Duration::from_secs(60);
        r
    })
    .await;
    let mut cfg = config(&s.base);
    cfg.timeout = Duration::from_millis(200);
    cfg.max_retries = 1;
    let x = LlmExtractor::new(cfg)
        .unwrap()
        .with_retry_backoff(Duration::from_millis(10), Duration::from_millis(10));
    let t = Instant::now();
    let e = err_text(x.episode(&turn(SUPPORT)).await);
    assert!(e.contains("timed out after 0.2 s"), "{e}");
    assert!(e.contains("gave up after 2 attempts"), "{e}");
    // Not a timing test: the reply takes 60 s, so finishing well before that shows the
    // client gave up instead of waiting for it (a wide margin for a loaded machine).
    assert!(
        t.elapsed() < Duration::from_secs(30),
        "took {:?}",
        t.elapsed()
    );
    assert_eq!(s.calls().len(), 2);
}

#[tokio::test]
async fn response_format_rejected_falls_back_to_a_plain_request() {
    let s = stub(|_, body| {
        if body.get("response_format").is_some() {
            status(400, json!({"error": {"message": "Unrecognized request argument supplied: response_format"}}))
        } else {
            ok(&episode_json())
        }
    })
    .await;
    let x = extractor(&s.base);
    assert!(x.episode(&turn(SUPPORT)).await.unwrap().is_some());
    let formats: Vec<_> = s
        .calls()
        .iter()
        .map(|c| c.format().map(str::to_string))
        .collect();
    assert_eq!(
        formats,
        vec![
            Some("json_schema".to_string()),
            Some("json_object".to_string()),
            None
        ]
    );
    // Remembered: a clone goes straight to the plain request, and the schema is still in
    // the prompt.
    assert!(x.clone().episode(&turn(SUPPORT)).await.unwrap().is_some());
    let calls = s.calls();
    assert_eq!(calls.len(), 4);
    assert_eq!(calls[3].format(), None);
    assert!(calls[3].user().contains("\"occurred_on\""));
}

#[tokio::test]
async fn a_bad_request_without_response_format_is_an_error() {
    let s = stub(|_, _| {
        status(
            400,
            json!({"error": {"message": "context length exceeded"}}),
        )
    })
    .await;
    let x = extractor(&s.base);
    let e = err_text(x.episode(&turn(SUPPORT)).await);
    assert!(e.contains("HTTP 400: context length exceeded"), "{e}");
    assert_eq!(s.calls().len(), 3, "json_schema, json_object, plain");
    // The richer format was not given up on, since the plain request failed too.
    let _ = x.episode(&turn(SUPPORT)).await;
    assert_eq!(s.calls()[3].format(), Some("json_schema"));
}

#[tokio::test]
async fn the_key_goes_in_the_header_and_never_into_errors() {
    // A server that echoes the key back in its error body.
    let s = stub(|_, _| {
        status(
            401,
            json!({"error": {"message": format!("Incorrect API key provided: {KEY}")}}),
        )
    })
    .await;
    let e = err_text(extractor(&s.base).episode(&turn(SUPPORT)).await);
    assert!(
        e.contains("HTTP 401") && e.contains("[redacted]") && e.contains("OPENAI_API_KEY"),
        "{e}"
    );
    let calls = s.calls();
    assert_eq!(calls.len(), 1, "401 is not retried");
    assert_eq!(
        calls[0]
            .headers
            .get("authorization")
            .unwrap()
            .to_str()
            .unwrap(),
        format!("Bearer {KEY}")
    );
    // Echoed by a 5xx through the retries, and by the model inside an unusable reply.
    let s = stub(|n, _| match n {
        0..=2 => status(502, json!({"error": format!("bad gateway for {KEY}")})),
        _ => ok(&format!(
            r#"{{"rules": [{{"kind": "{KEY}", "statement": "s", "topic": "t"}}]}}"#
        )),
    })
    .await;
    let x = extractor(&s.base);
    let e = err_text(x.rules(&turn("Always answer in German.")).await);
    assert!(e.contains("[redacted]"), "{e}");
    let e = err_text(x.rules(&turn("Always answer in German.")).await);
    assert!(
        e.contains("`kind` must be") && e.contains("[redacted]"),
        "{e}"
    );
    // Neither Debug output shows it.
    assert!(!format!("{:?}", config(&s.base)).contains(KEY));
    assert!(!format!("{x:?}").contains(KEY));
}

#[tokio::test]
async fn no_key_sends_no_authorization_header() {
    let s = stub(|_, _| ok(&episode_json())).await;
    let mut cfg = config(&s.base);
    cfg.api_key = None;
    LlmExtractor::new(cfg)
        .unwrap()
        .episode(&turn(SUPPORT))
        .await
        .unwrap();
    assert!(s.calls()[0].headers.get("authorization").is_none());
}

#[tokio::test]
async fn long_input_is_truncated_or_chunked_to_max_input_chars() {
    let s = stub(
        |_, body| match body["response_format"]["json_schema"]["name"].as_str() {
            Some("episode") => ok(&episode_json()),
            Some("graph") => ok(r#"{"entities": [], "relations": []}"#),
            _ => ok(r#"{"rules": []}"#),
        },
    )
    .await;
    let mut cfg = config(&s.base);
    cfg.max_input_chars = 500;
    let x = LlmExtractor::new(cfg).unwrap();
    let text = format!("{}ENDMARK", "I like long walks on the beach. ".repeat(300));
    let mut t = turn(&text);
    t.assistant_response = "That sounds lovely! ".repeat(100);

    x.episode(&t).await.unwrap().unwrap();
    let calls = s.calls();
    assert_eq!(calls.len(), 1, "an episode is one request");
    let u = calls[0].user();
    assert!(!u.contains("ENDMARK"));
    let text_part = calls[0].quoted();
    let reply_part = &u[u.rfind("<<<\n").unwrap() + 4..u.rfind("\n>>>").unwrap()];
    let (a, b) = (text_part.chars().count(), reply_part.chars().count());
    assert!(a + b <= 500, "text {a} + reply {b} chars");
    assert!(a >= 350, "the text gets most of the budget: {a}");

    x.graph(&t).await.unwrap();
    x.rules(&t).await.unwrap();
    let calls = s.calls();
    assert_eq!(calls.len(), 1 + 4 + 4, "up to 4 chunks per tier");
    for c in &calls[1..] {
        let q = c.quoted();
        assert!(
            q.chars().count() <= 500,
            "chunk of {} chars",
            q.chars().count()
        );
        assert!(!q.contains("ENDMARK"));
        assert!(
            !c.user().contains("That sounds lovely"),
            "graph and rules use the speaker's words"
        );
        assert!(c.user().contains("of 4 of one long message"));
    }
}

#[tokio::test]
async fn chunk_results_are_merged() {
    let s = stub(|n, _| match n {
        0 => ok(r#"{"rules": [{"kind": "instruction", "statement": "Caroline wants German.", "topic": "language", "confidence": 0.9}]}"#),
        _ => ok(r#"{"rules": [{"kind": "instruction", "statement": "Caroline wants French.", "topic": "language", "confidence": 0.9},
                              {"kind": "preference", "statement": "Caroline is vegetarian.", "topic": "diet", "confidence": 0.9}]}"#),
    })
    .await;
    let mut cfg = config(&s.base);
    cfg.max_input_chars = 120;
    let x = LlmExtractor::new(cfg).unwrap();
    let text = format!(
        "{} {}",
        "Always answer in German please. ".repeat(3),
        "I am vegetarian. ".repeat(3)
    );
    let r = x.rules(&turn(&text)).await.unwrap();
    assert_eq!(s.calls().len(), 2);
    let got: Vec<_> = r
        .iter()
        .map(|r| (r.topic.as_str(), r.statement.as_str()))
        .collect();
    assert_eq!(
        got,
        vec![
            ("language", "Caroline wants German."),
            ("diet", "Caroline is vegetarian.")
        ]
    );
}

#[tokio::test]
async fn not_found_is_not_retried() {
    let s = stub(|_, _| {
        status(
            404,
            json!({"error": {"message": "model 'stub-model' not found"}}),
        )
    })
    .await;
    let e = err_text(extractor(&s.base).graph(&turn("I live in Berlin.")).await);
    assert!(
        e.contains("HTTP 404") && e.contains("REFLECTOR_LLM_BASE_URL"),
        "{e}"
    );
    assert_eq!(s.calls().len(), 1);
}

#[tokio::test]
async fn unreachable_server_fails_after_retries() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let e = err_text(
        extractor(&format!("http://{addr}/v1"))
            .episode(&turn(SUPPORT))
            .await,
    );
    assert!(
        e.contains("cannot connect") && e.contains("gave up after 3 attempts"),
        "{e}"
    );
}
