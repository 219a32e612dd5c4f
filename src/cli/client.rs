//! A small HTTP client for the command-line tools: JSON in and out, clear errors, and
//! retries while the server is unreachable (so an import survives a server restart).

use std::time::Duration;

use anyhow::{Context, bail};
use serde_json::Value;

#[derive(Clone)]
pub struct Client {
    base: String,
    http: reqwest::Client,
}

/// A response the caller may want to inspect rather than fail on.
pub struct Reply {
    pub status: u16,
    pub body: Value,
}

impl Client {
    pub fn new(base: &str) -> anyhow::Result<Self> {
        let url = reqwest::Url::parse(base).with_context(|| {
            format!("--server {base:?} is not a URL (expected e.g. http://127.0.0.1:8080)")
        })?;
        if !matches!(url.scheme(), "http" | "https") {
            bail!("--server {base:?} must be an http:// or https:// URL");
        }
        // A key for a server with authentication, from the environment only (never a flag:
        // the process list is readable by other users). Marked sensitive: never logged.
        let mut headers = reqwest::header::HeaderMap::new();
        if let Ok(key) = std::env::var("REFLECTOR_API_KEY")
            && !key.trim().is_empty()
        {
            let mut v = reqwest::header::HeaderValue::from_str(&format!("Bearer {}", key.trim()))
                .context(
                "REFLECTOR_API_KEY holds characters that cannot go in an HTTP header",
            )?;
            v.set_sensitive(true);
            headers.insert(reqwest::header::AUTHORIZATION, v);
        }
        let http = reqwest::Client::builder()
            .default_headers(headers)
            .timeout(Duration::from_secs(120))
            .connect_timeout(Duration::from_secs(5))
            .build()?;
        Ok(Self {
            base: base.trim_end_matches('/').to_string(),
            http,
        })
    }

    /// POST, retrying connection failures, 5xx and 429 (after its `Retry-After`, the
    /// server's backpressure) for up to `patience`; other 4xx are returned.
    pub async fn post_retrying(
        &self,
        path: &str,
        body: &Value,
        patience: Duration,
    ) -> anyhow::Result<Reply> {
        let deadline = tokio::time::Instant::now() + patience;
        let mut delay = Duration::from_millis(200);
        loop {
            let res = self
                .http
                .post(format!("{}{path}", self.base))
                .json(body)
                .send()
                .await;
            let mut wait = delay;
            let retry_reason = match res {
                Ok(r) if r.status().is_server_error() => format!("server answered {}", r.status()),
                Ok(r) if r.status().as_u16() == 429 => {
                    let secs = r
                        .headers()
                        .get(reqwest::header::RETRY_AFTER)
                        .and_then(|v| v.to_str().ok())
                        .and_then(|v| v.trim().parse::<u64>().ok())
                        .unwrap_or(5);
                    wait = Duration::from_secs(secs.clamp(1, 60));
                    "the server's reflection backlog is full (429)".to_string()
                }
                Ok(r) => {
                    let status = r.status().as_u16();
                    let body = r.json::<Value>().await.unwrap_or(Value::Null);
                    return Ok(Reply { status, body });
                }
                Err(e) if e.is_connect() || e.is_timeout() => unreachable(&self.base, &e),
                Err(e) => bail!("POST {}{path}: {e}", self.base),
            };
            if tokio::time::Instant::now() + wait > deadline {
                bail!(
                    "{}{path}: gave up after retrying: {retry_reason}",
                    self.base
                );
            }
            warn_once(&retry_reason);
            tokio::time::sleep(wait).await;
            if wait == delay {
                delay = (delay * 2).min(Duration::from_secs(5));
            }
        }
    }

    /// GET JSON, retrying while the server is unreachable (up to 10 minutes); non-2xx fails.
    pub async fn get_json(&self, path: &str) -> anyhow::Result<Value> {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(600);
        let mut delay = Duration::from_millis(200);
        loop {
            match self.http.get(format!("{}{path}", self.base)).send().await {
                Ok(r) => {
                    let status = r.status();
                    let body = r.text().await?;
                    if !status.is_success() {
                        bail!("GET {path}: {status}: {body}");
                    }
                    return serde_json::from_str(&body)
                        .with_context(|| format!("GET {path}: not JSON"));
                }
                Err(e)
                    if (e.is_connect() || e.is_timeout())
                        && tokio::time::Instant::now() + delay < deadline =>
                {
                    warn_once(&unreachable(&self.base, &e));
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(Duration::from_secs(5));
                }
                Err(e) if e.is_connect() || e.is_timeout() => {
                    bail!("GET {}{path}: {}", self.base, unreachable(&self.base, &e))
                }
                Err(e) => bail!("GET {}{path}: {e}", self.base),
            }
        }
    }

    /// POST JSON once; non-2xx fails with the server's message.
    pub async fn post_json(&self, path: &str, body: &Value) -> anyhow::Result<Value> {
        let r = self
            .post_retrying(path, body, Duration::from_secs(30))
            .await?;
        if !(200..300).contains(&r.status) {
            bail!("POST {path}: {}: {}", r.status, r.body);
        }
        Ok(r.body)
    }
}

/// "cannot reach the server at URL (is it running?)" with the underlying cause.
fn unreachable(base: &str, e: &reqwest::Error) -> String {
    let mut cause = e.to_string();
    let mut src = std::error::Error::source(e);
    while let Some(s) = src {
        cause = s.to_string();
        src = s.source();
    }
    format!(
        "cannot reach the server at {base} ({cause}); is `reflector serve` running there? (--server / REFLECTOR_SERVER)"
    )
}

/// Tell the user once that we are waiting, instead of hanging silently.
fn warn_once(reason: &str) {
    static SAID: std::sync::Once = std::sync::Once::new();
    SAID.call_once(|| {
        eprintln!("waiting: {reason}; retrying for up to 10 minutes (Ctrl-C to stop)")
    });
}
