//! The OpenAI-compatible chat-completions client: one `POST {base}/chat/completions` per
//! prompt, with timeouts, retries and the `response_format` fallback.
//!
//! Request body: `model`, `messages` (system + user), `temperature: 0`, `stream: false`, and
//! `response_format` — first `{"type": "json_schema", "json_schema": {name, schema, strict}}`;
//! a server that answers 400 or 422 to that gets the same request with
//! `{"type": "json_object"}`, then without `response_format` at all (the schema is in the
//! prompt either way). The first format that succeeds is remembered for later requests (per
//! [`ChatClient`] and its clones), so a server without structured outputs costs the extra
//! round trips once.
//!
//! Retries: 408, 425, 429, 5xx, timeouts and connection errors are retried up to
//! `max_retries` times, waiting `Retry-After` (or `retry-after-ms`) when the server sends it,
//! else exponential backoff with jitter. A server asking to wait longer than
//! [`MAX_RETRY_AFTER`] fails the request at once (the job's own retry, with its longer
//! backoff, takes over). Other statuses fail at once.
//!
//! Secrets: the API key is sent only in the `Authorization` header (marked sensitive). Error
//! messages name the endpoint without user info or query string, quote at most
//! [`DETAIL_CHARS`] characters of a server's error body, and every message is passed through
//! [`ChatClient::redact`], so the key never appears in one even if a server echoes it. Nothing
//! of the prompt or the reply is logged.

use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use reqwest::header::{AUTHORIZATION, HeaderMap, HeaderValue, RETRY_AFTER};
use serde_json::{Value, json};

use super::LlmConfig;
use super::prompt::{Prompt, truncate};

/// The longest `Retry-After` honoured in place; longer requests fail the call.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(60);

/// How many characters of a server's error body an error message quotes.
pub const DETAIL_CHARS: usize = 300;

/// What replaces the API key wherever it would appear in a message.
pub const REDACTED: &str = "[redacted]";

/// Default first backoff delay (doubled per retry, with jitter).
pub const DEFAULT_BACKOFF_BASE: Duration = Duration::from_millis(500);

/// Default longest backoff delay.
pub const DEFAULT_BACKOFF_MAX: Duration = Duration::from_secs(10);

/// How the reply's JSON is requested, from most to least structured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
#[repr(u8)]
pub enum Format {
    /// `response_format: {"type": "json_schema", …}` (OpenAI structured outputs, vLLM,
    /// llama.cpp, Ollama ≥ 0.5).
    JsonSchema = 0,
    /// `response_format: {"type": "json_object"}` (JSON mode).
    JsonObject = 1,
    /// No `response_format`: the schema in the prompt only.
    Plain = 2,
}

impl Format {
    fn from_u8(v: u8) -> Format {
        match v {
            0 => Format::JsonSchema,
            1 => Format::JsonObject,
            _ => Format::Plain,
        }
    }

    fn next(self) -> Format {
        match self {
            Format::JsonSchema => Format::JsonObject,
            _ => Format::Plain,
        }
    }
}

/// The assistant message of a successful completion.
#[derive(Debug, Clone)]
pub struct Reply {
    /// The message text (never blank).
    pub content: String,
    /// `choices[0].finish_reason` when the server gave one (`"length"` = cut off).
    pub finish_reason: Option<String>,
}

/// Why one HTTP attempt failed.
enum Failure {
    /// 400/422 while a `response_format` was sent: try the next format.
    FormatRejected(String),
    /// Worth another attempt (429, 5xx, timeouts, connection errors).
    Retryable {
        msg: String,
        retry_after: Option<Duration>,
    },
    /// Another attempt would fail the same way.
    Fatal(String),
}

/// A chat-completions client for one endpoint and model. Cheap to clone (clones share the
/// connection pool and the remembered `response_format` support).
#[derive(Clone)]
pub struct ChatClient {
    http: reqwest::Client,
    endpoint: reqwest::Url,
    /// The endpoint as error messages show it (no user info, no query).
    shown: String,
    model: String,
    auth: Option<HeaderValue>,
    secret: Option<String>,
    timeout: Duration,
    max_retries: u32,
    backoff_base: Duration,
    backoff_max: Duration,
    format: Arc<AtomicU8>,
}

impl std::fmt::Debug for ChatClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChatClient")
            .field("endpoint", &self.shown)
            .field("model", &self.model)
            .field("api_key", &self.secret.as_ref().map(|_| REDACTED))
            .field("timeout", &self.timeout)
            .field("max_retries", &self.max_retries)
            .field("format", &self.format())
            .finish()
    }
}

impl ChatClient {
    /// A client for `cfg`. Errors: a base URL that is not http(s), an empty model, a zero
    /// timeout, an API key that cannot be an HTTP header value (the key is not quoted).
    pub fn new(cfg: &LlmConfig) -> anyhow::Result<ChatClient> {
        let endpoint = endpoint(&cfg.base_url)?;
        let shown = shown(&endpoint);
        let model = cfg.model.trim().to_string();
        anyhow::ensure!(!model.is_empty(), "REFLECTOR_LLM_MODEL is empty");
        anyhow::ensure!(!cfg.timeout.is_zero(), "the LLM timeout must be positive");
        let secret = cfg
            .api_key
            .as_deref()
            .map(str::trim)
            .filter(|k| !k.is_empty())
            .map(str::to_string);
        let auth = match &secret {
            Some(k) => {
                let mut v = HeaderValue::from_str(&format!("Bearer {k}")).map_err(|_| {
                    anyhow::anyhow!(
                        "OPENAI_API_KEY contains characters that cannot be sent in an HTTP header"
                    )
                })?;
                v.set_sensitive(true);
                Some(v)
            }
            None => None,
        };
        let http = reqwest::Client::builder()
            .timeout(cfg.timeout)
            .connect_timeout(cfg.timeout.min(Duration::from_secs(10)))
            .user_agent(concat!("memory-reflector/", env!("CARGO_PKG_VERSION")))
            .build()
            .context("cannot build the HTTP client for the LLM endpoint")?;
        Ok(ChatClient {
            http,
            endpoint,
            shown,
            model,
            auth,
            secret,
            timeout: cfg.timeout,
            max_retries: cfg.max_retries,
            backoff_base: DEFAULT_BACKOFF_BASE,
            backoff_max: DEFAULT_BACKOFF_MAX,
            format: Arc::new(AtomicU8::new(Format::JsonSchema as u8)),
        })
    }

    /// Sets the backoff between retries: `base × 2^retry`, at most `max`, with jitter (the
    /// actual wait is 50–100 % of that).
    pub fn set_backoff(&mut self, base: Duration, max: Duration) {
        self.backoff_base = base;
        self.backoff_max = max.max(base);
    }

    /// The endpoint requests go to, as error messages show it.
    pub fn endpoint(&self) -> &str {
        &self.shown
    }

    /// The `response_format` the next request will start with.
    pub fn format(&self) -> Format {
        Format::from_u8(self.format.load(Ordering::Relaxed))
    }

    /// `s` with every occurrence of the API key, in any letter case, replaced by
    /// [`REDACTED`].
    pub fn redact(&self, s: &str) -> String {
        match &self.secret {
            Some(k) => redact_ascii_ci(s, k),
            None => s.to_string(),
        }
    }

    /// Sends `prompt` and returns the assistant's message. Errors (already redacted): the
    /// last failure's description — HTTP status and the server's error message, a timeout,
    /// a connection error, a response that is not a chat completion, an empty reply or a
    /// refusal — with the number of attempts when retries ran out.
    pub async fn complete(&self, prompt: &Prompt) -> anyhow::Result<Reply> {
        self.complete_inner(prompt)
            .await
            .map_err(|msg| anyhow::anyhow!(self.redact(&msg)))
    }

    async fn complete_inner(&self, prompt: &Prompt) -> Result<Reply, String> {
        let mut format = self.format();
        let mut retries = 0u32;
        loop {
            let body = self.body(prompt, format);
            let started = Instant::now();
            match self.send(&body, format).await {
                Ok(reply) => {
                    if format > self.format() {
                        self.format.fetch_max(format as u8, Ordering::Relaxed);
                        tracing::info!(endpoint = %self.shown, format = ?format,
                            "the LLM endpoint does not take the richer response_format; using this one from now on");
                    }
                    tracing::debug!(endpoint = %self.shown, model = %self.model, format = ?format,
                        retries, ms = started.elapsed().as_millis() as u64, "LLM completion");
                    return Ok(reply);
                }
                Err(Failure::FormatRejected(msg)) => {
                    tracing::debug!(endpoint = %self.shown, format = ?format,
                        "the LLM endpoint rejected response_format; trying a plainer request");
                    if format == Format::Plain {
                        return Err(msg);
                    }
                    format = format.next();
                }
                Err(Failure::Retryable { msg, retry_after }) => {
                    if retries >= self.max_retries {
                        return Err(format!(
                            "{msg} (gave up after {} attempt{})",
                            retries + 1,
                            if retries == 0 { "" } else { "s" }
                        ));
                    }
                    let wait = match retry_after {
                        Some(d) if d > MAX_RETRY_AFTER => {
                            return Err(format!(
                                "{msg} (the server asks to retry after {} s, longer than the {} s this client waits)",
                                d.as_secs(),
                                MAX_RETRY_AFTER.as_secs()
                            ));
                        }
                        Some(d) => d,
                        None => self.backoff(retries),
                    };
                    retries += 1;
                    tracing::warn!(endpoint = %self.shown, retry = retries, of = self.max_retries,
                        wait_ms = wait.as_millis() as u64, "LLM request failed; retrying");
                    tokio::time::sleep(wait).await;
                }
                Err(Failure::Fatal(msg)) => return Err(msg),
            }
        }
    }

    /// The request body for `prompt` in `format`.
    pub fn body(&self, prompt: &Prompt, format: Format) -> Value {
        let mut body = json!({
            "model": self.model,
            "messages": [
                {"role": "system", "content": prompt.system},
                {"role": "user", "content": prompt.user},
            ],
            "temperature": 0,
            "stream": false,
        });
        match format {
            Format::JsonSchema => {
                body["response_format"] = json!({
                    "type": "json_schema",
                    "json_schema": {"name": prompt.schema_name, "schema": prompt.schema, "strict": true},
                });
            }
            Format::JsonObject => body["response_format"] = json!({"type": "json_object"}),
            Format::Plain => {}
        }
        body
    }

    /// The wait before retry number `retry + 1` when the server did not say.
    fn backoff(&self, retry: u32) -> Duration {
        let full = self
            .backoff_base
            .saturating_mul(2u32.saturating_pow(retry.min(16)))
            .min(self.backoff_max);
        full.mul_f64(0.5 + 0.5 * fastrand::f64())
    }

    async fn send(&self, body: &Value, format: Format) -> Result<Reply, Failure> {
        let mut req = self.http.post(self.endpoint.clone()).json(body);
        if let Some(a) = &self.auth {
            req = req.header(AUTHORIZATION, a.clone());
        }
        let resp = req.send().await.map_err(|e| self.transport(e))?;
        let status = resp.status();
        let retry_after = retry_after(resp.headers());
        let bytes = resp.bytes().await.map_err(|e| self.transport(e))?;
        if status.is_success() {
            return parse_completion(&bytes)
                .map_err(|e| Failure::Fatal(format!("{}: {e}", self.shown)));
        }
        let msg = match error_detail(&bytes) {
            Some(d) => format!("{} answered HTTP {}: {d}", self.shown, status.as_u16()),
            None => format!("{} answered HTTP {}", self.shown, status.as_u16()),
        };
        Err(match status.as_u16() {
            400 | 422 if format != Format::Plain => Failure::FormatRejected(msg),
            408 | 425 | 429 | 500..=599 => Failure::Retryable { msg, retry_after },
            401 | 403 => Failure::Fatal(format!("{msg} (check OPENAI_API_KEY)")),
            404 => Failure::Fatal(format!(
                "{msg} (check REFLECTOR_LLM_BASE_URL — usually it ends in /v1 — and REFLECTOR_LLM_MODEL)"
            )),
            _ => Failure::Fatal(msg),
        })
    }

    fn transport(&self, e: reqwest::Error) -> Failure {
        let e = e.without_url();
        if e.is_timeout() {
            Failure::Retryable {
                msg: format!(
                    "request to {} timed out after {} s",
                    self.shown,
                    self.timeout.as_secs_f64()
                ),
                retry_after: None,
            }
        } else if e.is_builder() {
            Failure::Fatal(format!(
                "cannot build a request to {}: {}",
                self.shown,
                chain(&e)
            ))
        } else if e.is_connect() {
            Failure::Retryable {
                msg: format!("cannot connect to {}: {}", self.shown, chain(&e)),
                retry_after: None,
            }
        } else {
            Failure::Retryable {
                msg: format!("request to {} failed: {}", self.shown, chain(&e)),
                retry_after: None,
            }
        }
    }
}

/// `s` with every ASCII-case-insensitive occurrence of `secret` replaced by [`REDACTED`]
/// (keys are ASCII: they must fit in an HTTP header).
fn redact_ascii_ci(s: &str, secret: &str) -> String {
    if secret.is_empty() || !secret.is_ascii() {
        return s.replace(secret, REDACTED);
    }
    // ASCII lower-casing keeps byte offsets, and a match of an ASCII needle starts and ends
    // on char boundaries.
    let hay = s.to_ascii_lowercase();
    let needle = secret.to_ascii_lowercase();
    let mut out = String::with_capacity(s.len());
    let mut copied = 0;
    while let Some(i) = hay[copied..].find(&needle) {
        let start = copied + i;
        out.push_str(&s[copied..start]);
        out.push_str(REDACTED);
        copied = start + needle.len();
    }
    out.push_str(&s[copied..]);
    out
}

/// An error and its sources, joined by ": ".
fn chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut src = e.source();
    while let Some(s) = src {
        let t = s.to_string();
        if !out.contains(&t) {
            out.push_str(": ");
            out.push_str(&t);
        }
        src = s.source();
    }
    out
}

/// `{base}/chat/completions` (or `base` itself when it already ends in `/chat/completions`).
pub fn endpoint(base: &str) -> anyhow::Result<reqwest::Url> {
    let mut url = reqwest::Url::parse(base.trim()).map_err(|e| {
        anyhow::anyhow!(
            "REFLECTOR_LLM_BASE_URL is not a URL ({e}); expected e.g. https://api.openai.com/v1 or http://localhost:11434/v1"
        )
    })?;
    anyhow::ensure!(
        matches!(url.scheme(), "http" | "https"),
        "REFLECTOR_LLM_BASE_URL must be an http:// or https:// URL, not {}:",
        url.scheme()
    );
    let path = url.path().trim_end_matches('/').to_string();
    if !path.ends_with("/chat/completions") {
        url.set_path(&format!("{path}/chat/completions"));
    }
    Ok(url)
}

/// The URL without user info, query or fragment.
fn shown(url: &reqwest::Url) -> String {
    let mut u = url.clone();
    let _ = u.set_username("");
    let _ = u.set_password(None);
    u.set_query(None);
    u.set_fragment(None);
    u.to_string()
}

/// `retry-after-ms` (OpenAI), else `Retry-After` in seconds or as an HTTP date.
pub fn retry_after(h: &HeaderMap) -> Option<Duration> {
    let get = |name| h.get(name).and_then(|v| v.to_str().ok()).map(str::trim);
    if let Some(ms) = get("retry-after-ms").and_then(|v| v.parse::<f64>().ok())
        && ms.is_finite()
        && ms >= 0.0
    {
        return Some(Duration::from_secs_f64(ms / 1000.0));
    }
    let v = get(RETRY_AFTER.as_str())?;
    if let Ok(secs) = v.parse::<f64>() {
        return (secs.is_finite() && secs >= 0.0).then(|| Duration::from_secs_f64(secs));
    }
    let at = chrono::DateTime::parse_from_rfc2822(v).ok()?;
    let wait = at.with_timezone(&chrono::Utc) - chrono::Utc::now();
    Some(wait.to_std().unwrap_or(Duration::ZERO))
}

/// The server's error message: `error.message` (OpenAI, vLLM, llama.cpp), `error` as a
/// string (Ollama), `detail`/`message`, else the body as text; at most [`DETAIL_CHARS`].
fn error_detail(bytes: &[u8]) -> Option<String> {
    let text = String::from_utf8_lossy(bytes);
    let text = text.trim();
    if text.is_empty() {
        return None;
    }
    let msg = serde_json::from_str::<Value>(text).ok().and_then(|v| {
        let e = &v["error"];
        e["message"]
            .as_str()
            .or_else(|| e.as_str())
            .or_else(|| v["detail"].as_str())
            .or_else(|| v["message"].as_str())
            .map(str::to_string)
    });
    let msg = msg.unwrap_or_else(|| text.to_string());
    let msg = msg.split_whitespace().collect::<Vec<_>>().join(" ");
    Some(truncate(&msg, DETAIL_CHARS))
}

/// The assistant message of a chat-completions response body.
pub fn parse_completion(bytes: &[u8]) -> Result<Reply, String> {
    let v: Value = serde_json::from_slice(bytes).map_err(|_| {
        format!(
            "the response is not JSON ({} bytes); is this an OpenAI-compatible chat-completions endpoint?",
            bytes.len()
        )
    })?;
    let Some(choice) = v["choices"].get(0) else {
        return Err(match error_detail(bytes).filter(|_| v.get("error").is_some()) {
            Some(d) => format!("the server returned an error: {d}"),
            None => "the response has no choices; is this an OpenAI-compatible chat-completions endpoint?".to_string(),
        });
    };
    let finish_reason = choice["finish_reason"].as_str().map(str::to_string);
    let message = &choice["message"];
    if let Some(r) = message["refusal"].as_str().filter(|r| !r.trim().is_empty()) {
        return Err(format!("the model refused: {}", truncate(r.trim(), 200)));
    }
    let content = match &message["content"] {
        Value::String(s) => s.clone(),
        // Content parts: [{"type": "text", "text": "…"}, …].
        Value::Array(parts) => parts
            .iter()
            .filter_map(|p| p["text"].as_str().or_else(|| p.as_str()))
            .collect::<Vec<_>>()
            .join(""),
        _ => String::new(),
    };
    if content.trim().is_empty() {
        return Err(format!(
            "the model's reply is empty (finish_reason: {})",
            finish_reason.as_deref().unwrap_or("none")
        ));
    }
    Ok(Reply {
        content,
        finish_reason,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints() {
        let e = |b: &str| endpoint(b).unwrap().to_string();
        assert_eq!(
            e("https://api.openai.com/v1"),
            "https://api.openai.com/v1/chat/completions"
        );
        assert_eq!(
            e("http://localhost:11434/v1/"),
            "http://localhost:11434/v1/chat/completions"
        );
        assert_eq!(
            e("http://h:8000/v1/chat/completions"),
            "http://h:8000/v1/chat/completions"
        );
        assert_eq!(e("http://h:8080"), "http://h:8080/chat/completions");
        assert!(endpoint("ftp://x/v1").is_err());
        assert!(endpoint("localhost:11434").is_err());
        let u = endpoint("http://user:pw@h:1/v1?x=1").unwrap();
        assert_eq!(shown(&u), "http://h:1/v1/chat/completions");
    }

    #[test]
    fn retry_after_forms() {
        let mut h = HeaderMap::new();
        assert_eq!(retry_after(&h), None);
        h.insert(RETRY_AFTER, HeaderValue::from_static("0"));
        assert_eq!(retry_after(&h), Some(Duration::ZERO));
        h.insert(RETRY_AFTER, HeaderValue::from_static("2"));
        assert_eq!(retry_after(&h), Some(Duration::from_secs(2)));
        h.insert(
            RETRY_AFTER,
            HeaderValue::from_static("Wed, 21 Oct 2015 07:28:00 GMT"),
        );
        assert_eq!(retry_after(&h), Some(Duration::ZERO));
        h.insert("retry-after-ms", HeaderValue::from_static("250"));
        assert_eq!(retry_after(&h), Some(Duration::from_millis(250)));
        let mut h = HeaderMap::new();
        h.insert(RETRY_AFTER, HeaderValue::from_static("soon"));
        assert_eq!(retry_after(&h), None);
    }

    #[test]
    fn completions_parse() {
        let ok = br#"{"choices":[{"message":{"role":"assistant","content":"{\"a\":1}"},"finish_reason":"stop"}]}"#;
        let r = parse_completion(ok).unwrap();
        assert_eq!(r.content, "{\"a\":1}");
        assert_eq!(r.finish_reason.as_deref(), Some("stop"));
        let parts = br#"{"choices":[{"message":{"content":[{"type":"text","text":"{\"a\""},{"type":"text","text":":1}"}]}}]}"#;
        assert_eq!(parse_completion(parts).unwrap().content, "{\"a\":1}");
        let empty = br#"{"choices":[{"message":{"content":null},"finish_reason":"length"}]}"#;
        assert!(
            parse_completion(empty)
                .unwrap_err()
                .contains("empty (finish_reason: length)")
        );
        let refused = br#"{"choices":[{"message":{"content":null,"refusal":"I can't."}}]}"#;
        assert!(parse_completion(refused).unwrap_err().contains("refused"));
        let err = br#"{"error":{"message":"model not loaded"}}"#;
        assert!(
            parse_completion(err)
                .unwrap_err()
                .contains("model not loaded")
        );
        assert!(
            parse_completion(b"<html>")
                .unwrap_err()
                .contains("not JSON")
        );
    }

    #[test]
    fn error_details() {
        assert_eq!(
            error_detail(br#"{"error":{"message":"bad  schema","type":"invalid_request_error"}}"#)
                .as_deref(),
            Some("bad schema")
        );
        assert_eq!(
            error_detail(br#"{"error":"model \"x\" not found"}"#).as_deref(),
            Some("model \"x\" not found")
        );
        assert_eq!(error_detail(b"  ").as_deref(), None);
        let long = "e".repeat(5000);
        assert_eq!(
            error_detail(long.as_bytes()).unwrap().chars().count(),
            DETAIL_CHARS
        );
    }

    fn cfg(key: Option<&str>) -> LlmConfig {
        LlmConfig {
            base_url: "http://127.0.0.1:9/v1".into(),
            model: "m".into(),
            api_key: key.map(str::to_string),
            timeout: Duration::from_secs(1),
            max_retries: 0,
            max_input_chars: 1000,
        }
    }

    #[test]
    fn redaction_and_debug() {
        let c = ChatClient::new(&cfg(Some("sk-secret-42"))).unwrap();
        assert_eq!(
            c.redact("key sk-secret-42 echoed"),
            format!("key {REDACTED} echoed")
        );
        assert_eq!(
            c.redact("SK-SECRET-42, é sk-Secret-42sk-secret-42"),
            format!("{REDACTED}, é {REDACTED}{REDACTED}")
        );
        assert!(!format!("{c:?}").contains("sk-secret-42"));
        let c = ChatClient::new(&cfg(None)).unwrap();
        assert_eq!(c.redact("nothing"), "nothing");
        let e = ChatClient::new(&cfg(Some("bad\nkey")))
            .unwrap_err()
            .to_string();
        assert!(
            !e.contains("bad\nkey") && e.contains("OPENAI_API_KEY"),
            "{e}"
        );
    }

    #[test]
    fn backoff_grows_and_is_capped() {
        let mut c = ChatClient::new(&cfg(None)).unwrap();
        c.set_backoff(Duration::from_millis(100), Duration::from_millis(350));
        let b0 = c.backoff(0);
        assert!(
            b0 >= Duration::from_millis(50) && b0 <= Duration::from_millis(100),
            "{b0:?}"
        );
        let b1 = c.backoff(1);
        assert!(
            b1 >= Duration::from_millis(100) && b1 <= Duration::from_millis(200),
            "{b1:?}"
        );
        assert!(c.backoff(30) <= Duration::from_millis(350));
    }

    #[test]
    fn bodies_per_format() {
        let c = ChatClient::new(&cfg(None)).unwrap();
        let p = super::super::prompt::rules(
            "Ana",
            chrono::NaiveDate::from_ymd_opt(2024, 8, 20).unwrap(),
            "x",
            None,
        );
        let b = c.body(&p, Format::JsonSchema);
        assert_eq!(b["model"], "m");
        assert_eq!(b["temperature"], 0);
        assert_eq!(b["messages"][0]["role"], "system");
        assert_eq!(b["messages"][1]["role"], "user");
        assert_eq!(b["response_format"]["type"], "json_schema");
        assert_eq!(b["response_format"]["json_schema"]["name"], "rules");
        assert_eq!(b["response_format"]["json_schema"]["strict"], true);
        assert_eq!(
            c.body(&p, Format::JsonObject)["response_format"]["type"],
            "json_object"
        );
        assert!(c.body(&p, Format::Plain).get("response_format").is_none());
    }
}
