//! Optional LLM mode: Tier 2 curation and Tier 3/4 extraction by an OpenAI-compatible chat
//! model instead of the built-in rules (`crate::extract`). Off unless configured; the default
//! stays offline and rule-based.
//!
//! [`LlmExtractor`] is what the reflector calls: [`LlmExtractor::episode`],
//! [`LlmExtractor::graph`] and [`LlmExtractor::rules`] each send the turn to
//! `POST {REFLECTOR_LLM_BASE_URL}/chat/completions` with the tier's JSON schema and return the
//! same drafts the rule-based extractors return, post-processed to the same conventions, so
//! storage and ranking do not care which produced them. It works with OpenAI, Ollama, vLLM and
//! llama.cpp's server (see [`client`] for the protocol details: `response_format` with
//! fallback, timeouts, retries with backoff honouring `Retry-After`).
//!
//! Failure is loud: a reply without a usable JSON object, of the wrong shape or missing a
//! required field is an `Err` naming the problem, and so is a request that still fails after
//! its retries. The reflector then fails that tier, which is retried with the job's backoff
//! and finally dead-lettered — a tier never commits "nothing" because the model's answer could
//! not be read. Only an explicit `{"keep": false}` (Tier 2) or empty arrays (Tiers 3 and 4)
//! mean there is nothing to remember.
//!
//! The API key comes only from `OPENAI_API_KEY`, travels only in the `Authorization` header,
//! and is redacted from every error message and `Debug` output. Prompts and replies are never
//! logged (they hold the user's words).
//!
//! - [`client`]: the HTTP side (one chat completion, retries, `response_format` fallback).
//! - [`prompt`]: prompts, JSON schemas, fitting the text into `max_input_chars`.
//! - [`json`]: finding the JSON in a fenced, prefixed or chatty reply.
//! - [`parse`]: JSON → drafts, validation and normalisation.

pub mod client;
pub mod json;
pub mod parse;
pub mod prompt;

use std::time::Duration;

use anyhow::{Context, Result, anyhow};
use serde_json::Value;

use crate::extract::curate::speaker_name;
use crate::extract::{EpisodeDraft, GraphDraft, RuleDraft, TurnView};
use client::ChatClient;

/// Environment variable: the API base URL, e.g. `https://api.openai.com/v1`,
/// `http://localhost:11434/v1` (Ollama), `http://localhost:8000/v1` (vLLM),
/// `http://localhost:8080/v1` (llama.cpp). `/chat/completions` is appended.
pub const ENV_BASE_URL: &str = "REFLECTOR_LLM_BASE_URL";
/// Environment variable: the model name sent as `model`.
pub const ENV_MODEL: &str = "REFLECTOR_LLM_MODEL";
/// Environment variable: the API key (sent as `Authorization: Bearer …`); optional for local
/// servers.
pub const ENV_API_KEY: &str = "OPENAI_API_KEY";
/// Environment variable: per-request timeout in seconds (may be fractional).
pub const ENV_TIMEOUT_SECS: &str = "REFLECTOR_LLM_TIMEOUT_SECS";
/// Environment variable: retries per request after the first attempt.
pub const ENV_MAX_RETRIES: &str = "REFLECTOR_LLM_MAX_RETRIES";
/// Environment variable: the input budget in characters (see [`LlmConfig::max_input_chars`]).
pub const ENV_MAX_INPUT_CHARS: &str = "REFLECTOR_LLM_MAX_INPUT_CHARS";

/// Default per-request timeout.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
/// Default retries per request (so at most 4 attempts).
pub const DEFAULT_MAX_RETRIES: u32 = 3;
/// Default input budget: 12,000 characters ≈ 3,000 tokens of text, which fits with the
/// prompt and the answer in a 4k-token context.
pub const DEFAULT_MAX_INPUT_CHARS: usize = 12_000;
/// The smallest accepted input budget.
pub const MIN_INPUT_CHARS: usize = 100;

/// How to reach the chat model.
#[derive(Clone)]
pub struct LlmConfig {
    /// API base URL (`…/v1`); `{base_url}/chat/completions` is called. A URL that already
    /// ends in `/chat/completions` is used as is.
    pub base_url: String,
    /// Model name, e.g. `gpt-4o-mini`, `llama3.1:8b`.
    pub model: String,
    /// Bearer token; `None` (or blank) sends no `Authorization` header.
    pub api_key: Option<String>,
    /// Per-request timeout (connect + send + whole response). Default 30 s.
    pub timeout: Duration,
    /// Retries per request after the first attempt, for 408/425/429/5xx, timeouts and
    /// connection errors. Default 3.
    pub max_retries: u32,
    /// Characters (not bytes, not tokens) of turn text per request: an episode's text and
    /// reply together are truncated to it; graph and rule extraction split longer text into
    /// up to [`prompt::MAX_CHUNKS`] requests. Default 12,000; at least [`MIN_INPUT_CHARS`].
    pub max_input_chars: usize,
}

impl std::fmt::Debug for LlmConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LlmConfig")
            .field("base_url", &self.base_url)
            .field("model", &self.model)
            .field("api_key", &self.api_key.as_ref().map(|_| client::REDACTED))
            .field("timeout", &self.timeout)
            .field("max_retries", &self.max_retries)
            .field("max_input_chars", &self.max_input_chars)
            .finish()
    }
}

impl LlmConfig {
    /// A config for `base_url` and `model` with no key and the defaults.
    pub fn new(base_url: impl Into<String>, model: impl Into<String>) -> LlmConfig {
        LlmConfig {
            base_url: base_url.into(),
            model: model.into(),
            api_key: None,
            timeout: DEFAULT_TIMEOUT,
            max_retries: DEFAULT_MAX_RETRIES,
            max_input_chars: DEFAULT_MAX_INPUT_CHARS,
        }
    }

    /// The config from the environment: `Some` when `REFLECTOR_LLM_BASE_URL` and
    /// `REFLECTOR_LLM_MODEL` are both set (non-blank), with `OPENAI_API_KEY` and the optional
    /// `REFLECTOR_LLM_TIMEOUT_SECS`, `REFLECTOR_LLM_MAX_RETRIES`,
    /// `REFLECTOR_LLM_MAX_INPUT_CHARS`. An invalid optional value is logged as a warning and
    /// its default used; only one of base URL and model set is logged and gives `None`. Use
    /// [`LlmConfig::try_from_env`] to turn those into errors instead.
    pub fn from_env() -> Option<LlmConfig> {
        let (cfg, problems) = Self::from_vars(&|k| std::env::var(k).ok());
        for p in problems {
            tracing::warn!("{p}");
        }
        cfg
    }

    /// Like [`LlmConfig::from_env`], but an invalid value, or only one of
    /// `REFLECTOR_LLM_BASE_URL` and `REFLECTOR_LLM_MODEL` set, is an `Err` naming the
    /// variable (never quoting the API key).
    pub fn try_from_env() -> Result<Option<LlmConfig>> {
        let (cfg, problems) = Self::from_vars(&|k| std::env::var(k).ok());
        if problems.is_empty() {
            Ok(cfg)
        } else {
            Err(anyhow!(problems.join("; ")))
        }
    }

    /// The config from variables looked up by `get`, and the problems found.
    fn from_vars(get: &dyn Fn(&str) -> Option<String>) -> (Option<LlmConfig>, Vec<String>) {
        let val = |k: &str| {
            get(k)
                .map(|v| v.trim().to_string())
                .filter(|v| !v.is_empty())
        };
        let mut problems = Vec::new();
        let (base, model) = match (val(ENV_BASE_URL), val(ENV_MODEL)) {
            (Some(b), Some(m)) => (b, m),
            (None, None) => return (None, problems),
            (Some(_), None) => {
                problems.push(format!(
                    "{ENV_BASE_URL} is set but {ENV_MODEL} is not: LLM mode is off"
                ));
                return (None, problems);
            }
            (None, Some(_)) => {
                problems.push(format!(
                    "{ENV_MODEL} is set but {ENV_BASE_URL} is not: LLM mode is off"
                ));
                return (None, problems);
            }
        };
        let mut cfg = LlmConfig::new(base, model);
        cfg.api_key = val(ENV_API_KEY);
        if let Some(v) = val(ENV_TIMEOUT_SECS) {
            match v.parse::<f64>() {
                Ok(s) if s.is_finite() && s > 0.0 && s <= 3600.0 => {
                    cfg.timeout = Duration::from_secs_f64(s)
                }
                _ => problems.push(format!(
                    "{ENV_TIMEOUT_SECS}={v:?} is not a number of seconds in (0, 3600]; using {}",
                    DEFAULT_TIMEOUT.as_secs()
                )),
            }
        }
        if let Some(v) = val(ENV_MAX_RETRIES) {
            match v.parse::<u32>() {
                Ok(n) => cfg.max_retries = n,
                Err(_) => problems.push(format!(
                    "{ENV_MAX_RETRIES}={v:?} is not a whole number; using {DEFAULT_MAX_RETRIES}"
                )),
            }
        }
        if let Some(v) = val(ENV_MAX_INPUT_CHARS) {
            match v.parse::<usize>() {
                Ok(n) if n >= MIN_INPUT_CHARS => cfg.max_input_chars = n,
                _ => problems.push(format!(
                    "{ENV_MAX_INPUT_CHARS}={v:?} is not a whole number ≥ {MIN_INPUT_CHARS}; using {DEFAULT_MAX_INPUT_CHARS}"
                )),
            }
        }
        (Some(cfg), problems)
    }
}

/// The LLM-backed extractor for Tiers 2, 3 and 4. Cheap to clone (clones share the HTTP
/// connection pool).
#[derive(Clone)]
pub struct LlmExtractor {
    client: ChatClient,
    max_input_chars: usize,
}

impl std::fmt::Debug for LlmExtractor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LlmExtractor")
            .field("client", &self.client)
            .field("max_input_chars", &self.max_input_chars)
            .finish()
    }
}

impl LlmExtractor {
    /// An extractor for `cfg`; makes no request. Errors: a base URL that is not an http(s)
    /// URL, a blank model, a zero timeout, `max_input_chars` below [`MIN_INPUT_CHARS`], an API
    /// key with characters an HTTP header cannot carry (the key is never quoted).
    pub fn new(cfg: LlmConfig) -> Result<Self> {
        anyhow::ensure!(
            cfg.max_input_chars >= MIN_INPUT_CHARS,
            "llm_max_input_chars must be at least {MIN_INPUT_CHARS}, got {}",
            cfg.max_input_chars
        );
        Ok(LlmExtractor {
            client: ChatClient::new(&cfg)?,
            max_input_chars: cfg.max_input_chars,
        })
    }

    /// Sets the backoff between retries when the server sends no `Retry-After`:
    /// `base × 2^retry` capped at `max`, 50–100 % of it (jitter). Defaults 500 ms and 10 s.
    pub fn with_retry_backoff(mut self, base: Duration, max: Duration) -> Self {
        self.client.set_backoff(base, max);
        self
    }

    /// The chat-completions URL requests go to (without user info or query).
    pub fn endpoint(&self) -> &str {
        self.client.endpoint()
    }

    /// Tier 2: curate `turn` into at most one episode.
    ///
    /// `Ok(None)`: nothing worth remembering — the model answered `"keep": false`, or the
    /// turn's text is blank (no request then). Otherwise the draft's text is
    /// `"[{local date as 7 May 2023}] {speaker}: {model's text}"` with relative dates grounded
    /// by `crate::extract::time::ground`; `importance` clamped to 0..=1; tags lower-case and
    /// unique; `occurred_at` noon (turn's offset) of the model's `occurred_on`, else of the
    /// first date the text names, else the turn's timestamp. The input (text + reply) is
    /// truncated to `max_input_chars`.
    ///
    /// Errors: the request failed after its retries, or the reply has no JSON object, the
    /// wrong shape, or no `keep`/`text` — the message names which; never the API key.
    pub async fn episode(&self, turn: &TurnView) -> Result<Option<EpisodeDraft>> {
        if turn.text.trim().is_empty() {
            return Ok(None);
        }
        let (text, reply) =
            prompt::episode_inputs(&turn.text, &turn.assistant_response, self.max_input_chars);
        let p = prompt::episode(speaker_name(turn), turn.local_date(), &text, &reply);
        let result = async {
            let v = self.ask(&p).await?;
            parse::episode(&v, turn).context("unusable reply")
        }
        .await;
        self.finish("episode", result)
    }

    /// Tier 3: the entities and relations `turn` states.
    ///
    /// The speaker is always the first entity (a person); "I" becomes the speaker's name;
    /// predicates are UPPER_SNAKE; `exclusive` is the model's, forced true for `LIVES_IN`,
    /// `WORKS_AT`, `HAS_JOB`, `RELATIONSHIP_STATUS`; `valid_at` is noon (turn's offset) of the
    /// model's `valid_on`, else the turn's timestamp. Text longer than `max_input_chars` is
    /// sent in up to [`prompt::MAX_CHUNKS`] requests and the results merged. A blank text
    /// gives the speaker alone, without a request.
    ///
    /// Errors: as [`LlmExtractor::episode`]; shape errors name the field
    /// (``relations[0]: missing `predicate` ``).
    pub async fn graph(&self, turn: &TurnView) -> Result<GraphDraft> {
        let speaker = speaker_name(turn);
        if turn.text.trim().is_empty() {
            return Ok(parse::merge_graph(Vec::new(), speaker));
        }
        let chunks = prompt::chunks(&turn.text, self.max_input_chars);
        let n = chunks.len();
        let result = async {
            let mut parts = Vec::with_capacity(n);
            for (i, chunk) in chunks.iter().enumerate() {
                let part = (n > 1).then_some((i + 1, n));
                let p = prompt::graph(speaker, turn.local_date(), chunk, part);
                let v = self.ask(&p).await?;
                parts.push(parse::graph(&v, turn).context("unusable reply")?);
            }
            Ok::<_, anyhow::Error>(parse::merge_graph(parts, speaker))
        }
        .await;
        self.finish("graph", result)
    }

    /// Tier 4: the preferences, instructions and constraints `turn` states.
    ///
    /// `kind` is `preference`, `instruction` or `constraint` (anything else is an error);
    /// `topic` lower-case with `_` for spaces; `confidence` clamped to 0..=1 (0.8 when the
    /// model gives none); at most one rule per topic. Long text is chunked as in
    /// [`LlmExtractor::graph`]. A blank text gives no rules, without a request.
    ///
    /// Errors: as [`LlmExtractor::episode`].
    pub async fn rules(&self, turn: &TurnView) -> Result<Vec<RuleDraft>> {
        if turn.text.trim().is_empty() {
            return Ok(Vec::new());
        }
        let speaker = speaker_name(turn);
        let chunks = prompt::chunks(&turn.text, self.max_input_chars);
        let n = chunks.len();
        let result = async {
            let mut parts = Vec::with_capacity(n);
            for (i, chunk) in chunks.iter().enumerate() {
                let part = (n > 1).then_some((i + 1, n));
                let p = prompt::rules(speaker, turn.local_date(), chunk, part);
                let v = self.ask(&p).await?;
                parts.push(parse::rules(&v).context("unusable reply")?);
            }
            Ok::<_, anyhow::Error>(parse::merge_rules(parts))
        }
        .await;
        self.finish("rules", result)
    }

    /// One completion, and the JSON in it.
    async fn ask(&self, p: &prompt::Prompt) -> Result<Value> {
        let reply = self.client.complete(p).await?;
        json::find_json(&reply.content).ok_or_else(|| {
            let cut = if reply.finish_reason.as_deref() == Some("length") {
                "; the reply was cut off at the model's token limit (finish_reason: length)"
            } else {
                ""
            };
            anyhow!(
                "unusable reply: no JSON object in the model's reply ({} characters{cut})",
                reply.content.chars().count()
            )
        })
    }

    /// Prefixes the tier to an error and redacts the key from the whole message.
    fn finish<T>(&self, tier: &str, r: Result<T>) -> Result<T> {
        r.map_err(|e| {
            anyhow!(
                "{}",
                self.client.redact(&format!("LLM {tier} extraction: {e:#}"))
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn vars(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn read(pairs: &[(&str, &str)]) -> (Option<LlmConfig>, Vec<String>) {
        let m = vars(pairs);
        LlmConfig::from_vars(&|k| m.get(k).cloned())
    }

    #[test]
    fn env_needs_base_and_model() {
        assert!(read(&[]).0.is_none());
        let (c, p) = read(&[(ENV_BASE_URL, "http://localhost:11434/v1")]);
        assert!(c.is_none() && p[0].contains(ENV_MODEL));
        let (c, p) = read(&[(ENV_BASE_URL, " "), (ENV_MODEL, "m")]);
        assert!(c.is_none() && p[0].contains(ENV_BASE_URL));
        let (c, p) = read(&[(ENV_BASE_URL, "http://x/v1"), (ENV_MODEL, "llama3.1")]);
        let c = c.unwrap();
        assert!(p.is_empty());
        assert_eq!(
            (c.base_url.as_str(), c.model.as_str()),
            ("http://x/v1", "llama3.1")
        );
        assert_eq!(c.api_key, None);
        assert_eq!(c.timeout, DEFAULT_TIMEOUT);
        assert_eq!(c.max_retries, DEFAULT_MAX_RETRIES);
        assert_eq!(c.max_input_chars, DEFAULT_MAX_INPUT_CHARS);
    }

    #[test]
    fn env_optional_values() {
        let (c, p) = read(&[
            (ENV_BASE_URL, "http://x/v1"),
            (ENV_MODEL, "m"),
            (ENV_API_KEY, "sk-abc"),
            (ENV_TIMEOUT_SECS, "2.5"),
            (ENV_MAX_RETRIES, "0"),
            (ENV_MAX_INPUT_CHARS, "4000"),
        ]);
        let c = c.unwrap();
        assert!(p.is_empty());
        assert_eq!(c.api_key.as_deref(), Some("sk-abc"));
        assert_eq!(c.timeout, Duration::from_millis(2500));
        assert_eq!((c.max_retries, c.max_input_chars), (0, 4000));
        // Bad values: defaults, and one problem each.
        let (c, p) = read(&[
            (ENV_BASE_URL, "http://x/v1"),
            (ENV_MODEL, "m"),
            (ENV_TIMEOUT_SECS, "0"),
            (ENV_MAX_RETRIES, "-1"),
            (ENV_MAX_INPUT_CHARS, "5"),
        ]);
        let c = c.unwrap();
        assert_eq!(p.len(), 3, "{p:?}");
        assert_eq!(c.timeout, DEFAULT_TIMEOUT);
        assert_eq!(c.max_input_chars, DEFAULT_MAX_INPUT_CHARS);
    }

    #[test]
    fn debug_hides_the_key() {
        let mut c = LlmConfig::new("http://x/v1", "m");
        c.api_key = Some("sk-very-secret".into());
        assert!(!format!("{c:?}").contains("sk-very-secret"));
        let x = LlmExtractor::new(c).unwrap();
        assert!(!format!("{x:?}").contains("sk-very-secret"));
    }

    #[test]
    fn new_validates() {
        assert!(LlmExtractor::new(LlmConfig::new("not a url", "m")).is_err());
        assert!(LlmExtractor::new(LlmConfig::new("http://x/v1", " ")).is_err());
        let mut c = LlmConfig::new("http://x/v1", "m");
        c.max_input_chars = 10;
        assert!(LlmExtractor::new(c).is_err());
        let x = LlmExtractor::new(LlmConfig::new("http://x:1/v1/", "m")).unwrap();
        assert_eq!(x.endpoint(), "http://x:1/v1/chat/completions");
    }
}
