//! The MCP server (Model Context Protocol, through the official Rust SDK `rmcp`): a user's
//! memory as tools an assistant can call.
//!
//! Two transports serve the same tools:
//! - streamable HTTP at `/mcp` on the running service ([`http_service`]), behind the same
//!   bearer keys as the REST API;
//! - `reflector mcp` over stdio, for desktop clients ([`serve_stdio`]), on a local data
//!   directory (the service runs in that process, with its own workers) or against a running
//!   server (`--server URL`, key from `REFLECTOR_API_KEY`).
//!
//! **One API.** Every tool is one REST operation ([`TOOLS`]): its input schema is built from
//! that operation in the OpenAPI document — its query parameters, or its request body — so
//! the schemas come from the request types the REST handlers document (`crate::api::schema`),
//! not from a second copy. A call becomes that HTTP request, answered by the API's own router
//! in this process ([`Upstream::InProcess`]) or by the remote server; validation, errors and
//! access checks are the API's. A 4xx comes back as a tool error carrying the server's message
//! (`field: message` on a 422), so the assistant can correct its call.
//!
//! **Which user.** An MCP session serves one user, never chosen by the model:
//! - stdio: `--user ID`;
//! - HTTP: the user of a key limited to one user, or the `X-Reflector-User` header, which an
//!   admin key (or any caller when no keys are configured, loopback only) must send, and a
//!   key limited to several users must send naming one of them.
//!
//! Every tool takes an optional `user_id` argument; naming any user but the session's is
//! refused. `forget_user` (delete everything about the user) is listed only when the
//! operator enables it (`mcp_allow_forget`, `--mcp-allow-forget true`), since a model can
//! call any tool it sees.

use std::borrow::Cow;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use axum::body::Body;
use axum::http::{HeaderValue, Method, Request, header};
use axum::response::IntoResponse as _;
use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, ContentBlock, Implementation,
    JsonObject, ListToolsResult, PaginatedRequestParams, ServerCapabilities, ServerConfig, Tool,
};
use rmcp::service::RequestContext;
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
use rmcp::{ErrorData, RoleServer, ServerHandler, ServiceExt as _};
use serde_json::{Map, Value, json};
use tokio_util::sync::CancellationToken;
use tower::ServiceExt as _;

use super::auth::{Caller, Scope};

/// The header naming the session's user over HTTP (see the module docs).
pub const USER_HEADER: &str = "X-Reflector-User";

/// Largest API answer a tool relays (bytes); a page of 500 memories is far below it.
const MAX_ANSWER_BYTES: usize = 64 << 20;

/// Longest `wait_seconds` of `job_status`.
const MAX_WAIT_SECS: u64 = 120;

/// One tool: a REST operation.
struct ToolSpec {
    name: &'static str,
    description: &'static str,
    method: &'static str,
    /// The route; `{user_id}` is the session's user, any other `{name}` an argument.
    path: &'static str,
    /// The operation (path) whose parameters or body the input schema is built from, when it
    /// is not `path` itself (the `{tier}` routes take one tier's operation).
    schema_path: Option<&'static str>,
    /// Arguments the tool adds to the operation's own (name, JSON Schema, required).
    extra: fn() -> Vec<(&'static str, Value, bool)>,
}

fn no_extra() -> Vec<(&'static str, Value, bool)> {
    Vec::new()
}

/// The tools, in the order `tools/list` gives them. `forget_user` is last and listed only
/// when enabled.
const TOOLS: &[ToolSpec] = &[
    ToolSpec {
        name: "store_turn",
        description: "Store one turn of the conversation in the user's memory: what the user said (user_message) and, optionally, what the assistant answered. Reflection then turns it, in the background, into episodes (what happened, with absolute dates), facts about people and places, and standing preferences or instructions. To remember a note the user dictates, store it as a turn in their words. Returns the reflection job id (see job_status). session_id defaults to one per day; give timestamp when the turn did not happen now.",
        method: "POST",
        path: "/api/interactions",
        schema_path: None,
        extra: no_extra,
    },
    ToolSpec {
        name: "store_note",
        description: "Store a note directly as an episodic memory (no reflection: it is kept as written, dated occurred_at or now). Use it for a fact the user asks you to remember verbatim; prefer store_turn for conversation.",
        method: "POST",
        path: "/api/memory/episodic/{user_id}",
        schema_path: None,
        extra: no_extra,
    },
    ToolSpec {
        name: "recall",
        description: "Recall what memory holds for a question or topic: relevant episodes (with the turns around them), currently valid facts about the people and things it names, the standing instructions and preferences, and the recent conversation, as one block of text ready to read (`context`), with the ranked items and their evidence. Call it before answering anything that depends on the user's past.",
        method: "GET",
        path: "/api/memory/context/{user_id}",
        schema_path: None,
        extra: no_extra,
    },
    ToolSpec {
        name: "search",
        description: "Search the user's memories: the ranked items alone, each with its tier (short_term, episodic, semantic, procedural), score, date and evidence; filter by tier (comma-separated) and by date (since, until).",
        method: "GET",
        path: "/api/memory/search/{user_id}",
        schema_path: None,
        extra: no_extra,
    },
    ToolSpec {
        name: "list_memories",
        description: "List one tier of the user's memory, newest first, a page at a time: short_term (the raw turns), episodic (episodes), semantic (entities and facts with valid_at/invalid_at) or procedural (rules; include_superseded=true adds the ones a newer rule replaced). Ids in the answer are what delete_memory takes.",
        method: "GET",
        path: "/api/memory/{tier}/{user_id}",
        schema_path: Some("/api/memory/procedural/{user_id}"),
        extra: tier_argument,
    },
    ToolSpec {
        name: "delete_memory",
        description: "Delete one memory by tier and id (ids as list_memories, search or recall show them): an episode, a fact or a rule. The deletion is recorded, and reflecting the same turns again does not bring it back.",
        method: "DELETE",
        path: "/api/memory/{tier}/{user_id}/{id}",
        schema_path: Some("/api/memory/episodic/{user_id}/{id}"),
        extra: editable_tier_argument,
    },
    ToolSpec {
        name: "job_status",
        description: "The state of a reflection job (queued, processing, retrying, completed or dead) and what each tier made of it; with wait_seconds, wait up to that long for it to be completed or dead.",
        method: "GET",
        path: "/api/reflection/jobs/{job_id}",
        schema_path: None,
        extra: wait_argument,
    },
    ToolSpec {
        name: "forget_user",
        description: "Delete EVERYTHING remembered about the user, in every tier, for good. Only when the user explicitly asks to be forgotten.",
        method: "DELETE",
        path: "/api/memory/user/{user_id}",
        schema_path: None,
        extra: no_extra,
    },
];

fn tier_argument() -> Vec<(&'static str, Value, bool)> {
    vec![(
        "tier",
        json!({"type": "string", "enum": ["short_term", "episodic", "semantic", "procedural"],
               "description": "The tier to list."}),
        true,
    )]
}

fn editable_tier_argument() -> Vec<(&'static str, Value, bool)> {
    vec![(
        "tier",
        json!({"type": "string", "enum": ["episodic", "semantic", "procedural"],
               "description": "The memory's tier."}),
        true,
    )]
}

fn wait_argument() -> Vec<(&'static str, Value, bool)> {
    vec![(
        "wait_seconds",
        json!({"type": "integer", "minimum": 0, "maximum": MAX_WAIT_SECS,
               "description": "Wait up to this many seconds for the job to be completed or dead (default 0: answer at once)."}),
        false,
    )]
}

/// A tool as listed: its spec and its input schema.
struct ToolDef {
    spec: &'static ToolSpec,
    schema: Arc<JsonObject>,
    /// Whether the arguments are the request body.
    body: bool,
}

/// Where a tool's HTTP request goes.
#[derive(Clone)]
pub enum Upstream {
    /// The API router of this process.
    InProcess(axum::Router),
    /// A running server: base URL (no trailing slash) and its bearer key.
    Remote {
        base: String,
        key: Option<String>,
        client: reqwest::Client,
    },
}

impl Upstream {
    /// A running server at `base` (`http://host:port`), with the key to present.
    pub fn remote(base: &str, key: Option<String>) -> anyhow::Result<Upstream> {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(MAX_WAIT_SECS + 30))
            .build()?;
        Ok(Upstream::Remote {
            base: base.trim_end_matches('/').to_string(),
            key,
            client,
        })
    }

    /// Send one request; the answer's status and JSON body (a non-JSON body as a string).
    async fn call(
        &self,
        method: Method,
        path_and_query: &str,
        body: Option<&Value>,
        auth: Option<&HeaderValue>,
    ) -> anyhow::Result<(u16, Value)> {
        let (status, bytes) = match self {
            Upstream::InProcess(router) => {
                let mut req = Request::builder().method(method).uri(path_and_query);
                if let Some(a) = auth {
                    req = req.header(header::AUTHORIZATION, a.clone());
                }
                let req = match body {
                    Some(b) => req
                        .header(header::CONTENT_TYPE, "application/json")
                        .body(Body::from(serde_json::to_vec(b)?))?,
                    None => req.body(Body::empty())?,
                };
                let resp = router.clone().oneshot(req).await?;
                let status = resp.status().as_u16();
                let bytes = axum::body::to_bytes(resp.into_body(), MAX_ANSWER_BYTES).await?;
                (status, bytes.to_vec())
            }
            Upstream::Remote { base, key, client } => {
                let mut req = client.request(method, format!("{base}{path_and_query}"));
                if let Some(k) = key {
                    req = req.bearer_auth(k);
                }
                if let Some(b) = body {
                    req = req.json(b);
                }
                let resp = req
                    .send()
                    .await
                    .with_context(|| format!("cannot reach the server at {base}"))?;
                let status = resp.status().as_u16();
                (status, resp.bytes().await?.to_vec())
            }
        };
        let value = serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()));
        Ok((status, value))
    }
}

/// Who the session's user is.
#[derive(Clone, Debug)]
pub enum SessionUser {
    /// Fixed when the server starts (`reflector mcp --user ID`).
    Fixed(String),
    /// Read from each HTTP request: the key's only user, or [`USER_HEADER`].
    FromRequest,
}

/// The MCP server: the tools, where their requests go, and whose memory they reach.
#[derive(Clone)]
pub struct MemoryTools {
    inner: Arc<Inner>,
}

struct Inner {
    upstream: Upstream,
    user: SessionUser,
    tools: Vec<ToolDef>,
    listed: Vec<Tool>,
}

impl MemoryTools {
    /// The tools over `upstream` for `user`; `forget_user` only with `allow_forget`.
    ///
    /// Errors when the OpenAPI document lacks an operation a tool is built from (a bug caught
    /// by the tests).
    pub fn new(
        upstream: Upstream,
        user: SessionUser,
        allow_forget: bool,
    ) -> anyhow::Result<MemoryTools> {
        let doc = serde_json::to_value(crate::api::openapi::document())?;
        let mut tools = Vec::new();
        for spec in TOOLS {
            if spec.name == "forget_user" && !allow_forget {
                continue;
            }
            tools.push(tool_def(&doc, spec)?);
        }
        let listed = tools
            .iter()
            .map(|t| Tool::new(t.spec.name, t.spec.description, t.schema.clone()))
            .collect();
        Ok(MemoryTools {
            inner: Arc::new(Inner {
                upstream,
                user,
                tools,
                listed,
            }),
        })
    }

    /// Fail fast when the server refuses `user`'s memory to this key (401/403): a desktop
    /// client shows a startup error, where a refusal at every tool call would be obscure. An
    /// unreachable server is only logged (it may start later).
    pub async fn check_access(&self, user: &str) -> anyhow::Result<()> {
        let path = format!("/api/memory/stats/{}", escape(user, PATH_SAFE));
        match self
            .inner
            .upstream
            .call(Method::GET, &path, None, None)
            .await
        {
            Ok((status @ (401 | 403), answer)) => {
                let message = answer.get("message").and_then(Value::as_str).unwrap_or("");
                anyhow::bail!(
                    "the server refuses user {user:?} to this key (HTTP {status}: {message}); set REFLECTOR_API_KEY to a key for this user"
                )
            }
            Ok(_) => Ok(()),
            Err(e) => {
                tracing::warn!(error = %format!("{e:#}"), "the server cannot be reached yet; tool calls will fail until it can");
                Ok(())
            }
        }
    }

    /// The tools as `tools/list` gives them.
    pub fn tools(&self) -> &[Tool] {
        &self.inner.listed
    }

    /// The session's user and the bearer header to forward, or the reason there is none.
    fn session(
        &self,
        ctx: &RequestContext<RoleServer>,
    ) -> Result<(String, Option<HeaderValue>), String> {
        match &self.inner.user {
            SessionUser::Fixed(u) => Ok((u.clone(), None)),
            SessionUser::FromRequest => {
                let parts = ctx
                    .extensions
                    .get::<axum::http::request::Parts>()
                    .ok_or("no HTTP request carries this call")?;
                let caller = parts
                    .extensions
                    .get::<Caller>()
                    .cloned()
                    .unwrap_or(Caller::Open);
                // Raw UTF-8 is read as it is (a user id may be any text).
                let named = match parts.headers.get(USER_HEADER) {
                    None => None,
                    Some(v) => Some(
                        std::str::from_utf8(v.as_bytes())
                            .map_err(|_| format!("the {USER_HEADER} header is not UTF-8"))?
                            .trim()
                            .to_string(),
                    ),
                };
                let user = match (named, &caller) {
                    (Some(u), _) if !u.is_empty() => u,
                    (
                        _,
                        Caller::Key {
                            scope: Scope::Users(users),
                            ..
                        },
                    ) if users.len() == 1 => users.iter().next().cloned().unwrap_or_default(),
                    (
                        _,
                        Caller::Key {
                            scope: Scope::Users(_),
                            ..
                        },
                    ) => {
                        return Err(format!(
                            "this API key serves several users: name one with the {USER_HEADER} header in the MCP client's configuration"
                        ));
                    }
                    _ => {
                        return Err(format!(
                            "no user for this MCP session: send the {USER_HEADER} header (with an admin key, or without keys), or use a key limited to one user"
                        ));
                    }
                };
                crate::api::check_user_id(USER_HEADER, &user).map_err(|e| e.to_string())?;
                caller.check_user(&user).map_err(|e| e.to_string())?;
                Ok((user, parts.headers.get(header::AUTHORIZATION).cloned()))
            }
        }
    }

    /// Run one tool: `Ok` with the tool's result (an API refusal is a result with
    /// `is_error`), `Err` for a failure of the service itself.
    pub async fn call(
        &self,
        name: &str,
        args: JsonObject,
        user: &str,
        auth: Option<&HeaderValue>,
    ) -> anyhow::Result<CallToolResult> {
        let Some(tool) = self.inner.tools.iter().find(|t| t.spec.name == name) else {
            return Ok(refusal(format!(
                "no tool named {name:?}; tools: {}",
                self.inner
                    .tools
                    .iter()
                    .map(|t| t.spec.name)
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        };
        // A null argument is an absent one.
        let mut args: JsonObject = args.into_iter().filter(|(_, v)| !v.is_null()).collect();
        let properties = tool.schema.get("properties").and_then(Value::as_object);
        for (k, v) in &args {
            let Some(schema) = properties.and_then(|p| p.get(k)) else {
                return Ok(refusal(format!(
                    "{k}: not an argument of {}; it takes {}",
                    tool.spec.name,
                    properties
                        .map(|p| p.keys().cloned().collect::<Vec<_>>().join(", "))
                        .unwrap_or_default()
                )));
            };
            if let Some(allowed) = schema.get("enum").and_then(Value::as_array)
                && !allowed.contains(v)
            {
                return Ok(refusal(format!(
                    "{k}: {v} is not one of {}",
                    allowed
                        .iter()
                        .map(Value::to_string)
                        .collect::<Vec<_>>()
                        .join(", ")
                )));
            }
        }
        match args.remove("user_id") {
            None | Some(Value::Null) => {}
            Some(Value::String(u)) if u == user => {}
            Some(other) => {
                return Ok(refusal(format!(
                    "user_id: this MCP session serves user {user:?} only; {other} is refused"
                )));
            }
        }
        let wait_secs = match args.remove("wait_seconds") {
            None | Some(Value::Null) => 0,
            Some(v) => match v.as_u64() {
                Some(n) if n <= MAX_WAIT_SECS => n,
                _ => {
                    return Ok(refusal(format!(
                        "wait_seconds: must be a whole number from 0 to {MAX_WAIT_SECS}"
                    )));
                }
            },
        };
        // The path: {user_id} is the session's; other placeholders are arguments.
        let mut path = String::new();
        let mut rest = tool.spec.path;
        while let Some(open) = rest.find('{') {
            let close = open + rest[open..].find('}').unwrap_or(rest.len() - open);
            path.push_str(&rest[..open]);
            let key = &rest[open + 1..close];
            let value = if key == "user_id" {
                user.to_string()
            } else {
                match args.remove(key) {
                    Some(Value::String(s)) if !s.is_empty() => s,
                    Some(Value::Number(n)) => n.to_string(),
                    _ => return Ok(refusal(format!("{key}: is required"))),
                }
            };
            path.push_str(&escape(&value, PATH_SAFE));
            rest = &rest[(close + 1).min(rest.len())..];
        }
        path.push_str(rest);
        if path.starts_with("/api/memory/short_term/") {
            path = path.replacen("/short_term/", "/short-term/", 1);
        }
        let mut body = None;
        if tool.body {
            let mut b = args;
            if tool.spec.path == "/api/interactions" {
                b.insert("user_id".into(), json!(user));
                if !b.contains_key("session_id") {
                    // One session per day of the turn: recall shows an episode with the turns
                    // around it in its session, which should be the same conversation.
                    let day = b
                        .get("timestamp")
                        .and_then(Value::as_str)
                        .and_then(crate::job::parse_timestamp)
                        .unwrap_or_else(chrono::Utc::now)
                        .format("%Y-%m-%d");
                    b.insert("session_id".into(), json!(format!("mcp-{day}")));
                }
            }
            body = Some(Value::Object(b));
        } else {
            let mut pairs = Vec::new();
            for (k, v) in &args {
                let text = match v {
                    Value::Null => continue,
                    Value::String(s) => s.clone(),
                    Value::Array(items) => items
                        .iter()
                        .map(|i| i.as_str().map(str::to_string).unwrap_or(i.to_string()))
                        .collect::<Vec<_>>()
                        .join(","),
                    other => other.to_string(),
                };
                pairs.push(format!(
                    "{}={}",
                    escape(k, QUERY_SAFE),
                    escape(&text, QUERY_SAFE)
                ));
            }
            if !pairs.is_empty() {
                path = format!("{path}?{}", pairs.join("&"));
            }
        }
        let method = Method::from_bytes(tool.spec.method.as_bytes())?;
        let deadline = Instant::now() + Duration::from_secs(wait_secs);
        let (status, answer) = loop {
            let (status, answer) = self
                .inner
                .upstream
                .call(method.clone(), &path, body.as_ref(), auth)
                .await?;
            // A job (or anything else) of another user is not this session's to see.
            if answer
                .get("user_id")
                .and_then(Value::as_str)
                .is_some_and(|u| u != user)
            {
                return Ok(refusal(format!(
                    "HTTP 404: nothing of user {user:?} has this id"
                )));
            }
            let state = answer.get("state").and_then(Value::as_str);
            let settled = matches!(state, Some("completed" | "dead"));
            if status != 200 || settled || Instant::now() >= deadline {
                break (status, answer);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        if !(200..300).contains(&status) {
            let message = answer
                .get("message")
                .and_then(Value::as_str)
                .map(str::to_string)
                .unwrap_or_else(|| answer.to_string());
            let mut r = refusal(format!("HTTP {status}: {message}"));
            r.structured_content = Some(answer);
            return Ok(r);
        }
        // recall: the prompt-ready block first; every tool: the API's answer as JSON.
        let mut content = Vec::new();
        if let Some(text) = answer.get("context").and_then(Value::as_str) {
            content.push(ContentBlock::text(text.to_string()));
        }
        content.push(ContentBlock::text(answer.to_string()));
        let mut r = CallToolResult::success(content);
        if answer.is_object() {
            r.structured_content = Some(answer);
        }
        Ok(r)
    }
}

/// A tool error the model can act on.
fn refusal(message: String) -> CallToolResult {
    CallToolResult::error(vec![ContentBlock::text(message)])
}

/// Bytes kept as they are in a path segment / a query component (RFC 3986 unreserved).
const PATH_SAFE: &[u8] = b"-._~";
const QUERY_SAFE: &[u8] = b"-._~";

/// Percent-encode everything but ASCII alphanumerics and `safe` (RFC 3986, section 2.1).
fn escape(s: &str, safe: &[u8]) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || safe.contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Build a tool's input schema from its operation in the OpenAPI document (`doc`, as JSON):
/// the operation's query and path parameters (but `user_id`) as properties, or its request
/// body's schema with every `$ref` inlined; plus the tool's own arguments and the optional
/// `user_id`.
fn tool_def(doc: &Value, spec: &'static ToolSpec) -> anyhow::Result<ToolDef> {
    let path = spec.schema_path.unwrap_or(spec.path);
    let method = spec.method.to_ascii_lowercase();
    let op = doc
        .pointer(&format!(
            "/paths/{}/{method}",
            path.replace('~', "~0").replace('/', "~1")
        ))
        .with_context(|| format!("the API has no {} {path} (tool {})", spec.method, spec.name))?;
    let mut properties = Map::new();
    let mut required: Vec<Value> = Vec::new();
    let mut body = false;
    if let Some(schema) = op.pointer("/requestBody/content/application~1json/schema") {
        let mut schema = inline_refs(doc, schema, 0)?;
        if let Some(obj) = schema.as_object_mut() {
            if let Some(p) = obj.get("properties").and_then(Value::as_object) {
                properties = p.clone();
            }
            if let Some(r) = obj.get("required").and_then(Value::as_array) {
                required = r.clone();
            }
        }
        body = true;
    }
    for p in op
        .get("parameters")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let name = p.get("name").and_then(Value::as_str).unwrap_or_default();
        if name == "user_id" {
            continue;
        }
        let mut schema = inline_refs(doc, p.get("schema").unwrap_or(&json!({})), 0)?;
        if let (Some(obj), Some(d)) = (schema.as_object_mut(), p.get("description")) {
            obj.insert("description".into(), d.clone());
        }
        properties.insert(name.to_string(), schema);
        if p.get("required").and_then(Value::as_bool) == Some(true) {
            required.push(json!(name));
        }
    }
    // The session fixes the user (and store_turn's session id has a default).
    required.retain(|r| r != "user_id" && !(spec.name == "store_turn" && r == "session_id"));
    if let Some(s) = properties
        .get_mut("session_id")
        .and_then(Value::as_object_mut)
        .filter(|_| spec.name == "store_turn")
    {
        s.insert(
            "description".into(),
            json!("The conversation (at most 256 bytes); default \"mcp-\" and the turn's date (one session per day)."),
        );
    }
    properties.insert(
        "user_id".into(),
        json!({"type": "string", "description": "Optional: the session's user. This session serves one user; any other is refused."}),
    );
    for (name, schema, req) in (spec.extra)() {
        properties.insert(name.to_string(), schema);
        if req {
            required.push(json!(name));
        }
    }
    let mut properties = Value::Object(properties);
    compact_enums(&mut properties);
    let mut schema = Map::new();
    schema.insert("type".into(), json!("object"));
    schema.insert("properties".into(), properties);
    if !required.is_empty() {
        schema.insert("required".into(), Value::Array(required));
    }
    Ok(ToolDef {
        spec,
        schema: Arc::new(schema),
        body,
    })
}

/// Enums longer than this are dropped from tool schemas (their description names the values):
/// the time zone's ~600 IANA names would be most of `tools/list`, read by every session.
const MAX_ENUM: usize = 32;

/// Drop every `enum` of more than [`MAX_ENUM`] values (the server still checks the value).
fn compact_enums(v: &mut Value) {
    match v {
        Value::Object(o) => {
            if o.get("enum")
                .and_then(Value::as_array)
                .is_some_and(|e| e.len() > MAX_ENUM)
            {
                o.remove("enum");
            }
            o.values_mut().for_each(compact_enums);
        }
        Value::Array(a) => a.iter_mut().for_each(compact_enums),
        _ => {}
    }
}

/// `schema` with every `{"$ref": "#/components/schemas/X"}` replaced by X's schema.
fn inline_refs(doc: &Value, schema: &Value, depth: usize) -> anyhow::Result<Value> {
    anyhow::ensure!(depth < 16, "the OpenAPI schemas nest too deep to inline");
    Ok(match schema {
        Value::Object(o) => {
            if let Some(r) = o.get("$ref").and_then(Value::as_str) {
                let name = r
                    .strip_prefix("#/components/schemas/")
                    .with_context(|| format!("unsupported $ref {r}"))?;
                let target = doc
                    .pointer(&format!("/components/schemas/{name}"))
                    .with_context(|| format!("no schema {name}"))?;
                inline_refs(doc, target, depth + 1)?
            } else {
                let mut out = Map::new();
                for (k, v) in o {
                    out.insert(k.clone(), inline_refs(doc, v, depth + 1)?);
                }
                Value::Object(out)
            }
        }
        Value::Array(a) => Value::Array(
            a.iter()
                .map(|v| inline_refs(doc, v, depth + 1))
                .collect::<anyhow::Result<_>>()?,
        ),
        other => other.clone(),
    })
}

impl ServerHandler for MemoryTools {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
            .with_server_info(Implementation::new(
                "memory-reflector",
                env!("CARGO_PKG_VERSION"),
            ))
            .with_instructions(
                "Long-term memory of the user you are talking with. Call recall (or search) before answering anything that depends on the user's past, store_turn after each turn worth remembering, and list_memories / delete_memory when the user asks what you remember or to forget something.",
            )
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, ErrorData> {
        Ok(ListToolsResult::with_all_items(self.inner.listed.clone()))
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        let (user, auth) = match self.session(&context) {
            Ok(s) => s,
            Err(reason) => return Ok(refusal(reason).into()),
        };
        let args = request.arguments.unwrap_or_default();
        let started = Instant::now();
        let result = self
            .call(&request.name, args, &user, auth.as_ref())
            .await
            .map_err(|e| {
                tracing::warn!(tool = %request.name, error = %format!("{e:#}"), "MCP tool failed");
                ErrorData::internal_error(format!("{e:#}"), None)
            })?;
        metrics::histogram!("reflector_mcp_tool_seconds", "tool" => request.name.to_string())
            .record(started.elapsed().as_secs_f64());
        Ok(result.into())
    }
}

/// The streamable HTTP transport at `/mcp` (nested in the API router, after its auth layer):
/// tools answered by `api` (the REST routes with their auth layer), the user read from each
/// request.
///
/// Stateless: no MCP session is kept between requests (no `Mcp-Session-Id`), so any API
/// process behind a load balancer can answer any request, and a client that vanishes leaves
/// nothing behind; answers are plain JSON (`json_response`). Nothing is lost by it: the
/// session's user comes with every request (the key, the header), and the tools need no
/// server-to-client messages. Cancelling `shutdown` ends open streams.
///
/// Host checking: the SDK accepts only loopback `Host` headers by default (against DNS
/// rebinding of a local server without credentials). Without keys this service listens on
/// loopback only and the default stays; with keys every request needs a bearer token, and any
/// host is accepted.
pub fn http_service(
    api: axum::Router,
    allow_forget: bool,
    keys_configured: bool,
    shutdown: CancellationToken,
) -> anyhow::Result<StreamableHttpService<MemoryTools, LocalSessionManager>> {
    let tools = MemoryTools::new(
        Upstream::InProcess(api),
        SessionUser::FromRequest,
        allow_forget,
    )?;
    let mut config = StreamableHttpServerConfig::default()
        .with_legacy_session_mode(false)
        .with_json_response(true)
        .with_cancellation_token(shutdown);
    if keys_configured {
        config = config.disable_allowed_hosts();
    }
    Ok(StreamableHttpService::new(
        move || Ok(tools.clone()),
        Arc::new(LocalSessionManager::default()),
        config,
    ))
}

/// `/mcp` as an axum route around [`http_service`]: the transport's own refusals (a bad
/// `Accept` or `Content-Type`, a foreign `Host`, a malformed body) get the API's JSON error
/// body (`{"error", "message"}`) with their status, and a 405 the `Allow` header.
pub fn route<S: Clone + Send + Sync + 'static>(
    svc: StreamableHttpService<MemoryTools, LocalSessionManager>,
) -> axum::routing::MethodRouter<S> {
    axum::routing::any(move |req: Request<Body>| {
        let svc = svc.clone();
        async move {
            let resp = match svc.oneshot(req).await {
                Ok(r) => r.into_response(),
                Err(never) => match never {},
            };
            json_errors(resp).await
        }
    })
}

async fn json_errors(resp: axum::response::Response) -> axum::response::Response {
    let status = resp.status();
    let json = resp
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|c| c.starts_with("application/json"));
    if !(status.is_client_error() || status.is_server_error()) || json {
        return resp;
    }
    let (parts, body) = resp.into_parts();
    let text = axum::body::to_bytes(body, 64 << 10)
        .await
        .map(|b| String::from_utf8_lossy(&b).trim().to_string())
        .unwrap_or_default();
    let code = match status.as_u16() {
        401 => "unauthorized",
        403 => "forbidden",
        404 => "not_found",
        405 => "method_not_allowed",
        413 => "payload_too_large",
        500..=599 => "internal",
        _ => "bad_request",
    };
    let message = if text.is_empty() {
        status.canonical_reason().unwrap_or("error").to_string()
    } else {
        text
    };
    let mut out = (
        status,
        axum::Json(json!({"error": code, "message": message})),
    )
        .into_response();
    for (k, v) in parts.headers.iter() {
        if k != header::CONTENT_TYPE && k != header::CONTENT_LENGTH {
            out.headers_mut().insert(k.clone(), v.clone());
        }
    }
    if status == axum::http::StatusCode::METHOD_NOT_ALLOWED {
        out.headers_mut()
            .entry(header::ALLOW)
            .or_insert(HeaderValue::from_static("POST"));
    }
    out
}

/// Serve the tools over stdin/stdout until the client closes the stream.
pub async fn serve_stdio(tools: MemoryTools) -> anyhow::Result<()> {
    let running = tools
        .serve(rmcp::transport::stdio())
        .await
        .map_err(|e| anyhow::anyhow!("MCP handshake over stdio failed: {e}"))?;
    running.waiting().await?;
    Ok(())
}

/// The tools' names, for documentation and tests.
pub fn tool_names(allow_forget: bool) -> Vec<Cow<'static, str>> {
    TOOLS
        .iter()
        .filter(|t| allow_forget || t.name != "forget_user")
        .map(|t| Cow::Borrowed(t.name))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn schema_of(tools: &MemoryTools, name: &str) -> Value {
        let t = tools.tools().iter().find(|t| t.name == name).unwrap();
        Value::Object((*t.input_schema).clone())
    }

    #[test]
    fn schemas_come_from_the_api_operations() {
        let tools = MemoryTools::new(
            Upstream::remote("http://127.0.0.1:1", None).unwrap(),
            SessionUser::Fixed("ana".into()),
            false,
        )
        .unwrap();
        let names: Vec<&str> = tools.tools().iter().map(|t| t.name.as_ref()).collect();
        assert_eq!(names, tool_names(false));
        assert!(!names.contains(&"forget_user"));
        // store_turn: the interaction body, user_id no longer required, session_id optional.
        let s = schema_of(&tools, "store_turn");
        assert_eq!(s["required"], json!(["user_message"]));
        assert!(s["properties"]["timestamp"]["pattern"].is_string());
        // metadata was a $ref, now inlined.
        assert!(s["properties"]["metadata"].to_string().contains("speaker"));
        assert!(!s.to_string().contains("$ref"));
        // search: the query parameters, query required.
        let s = schema_of(&tools, "search");
        assert_eq!(s["required"], json!(["query"]));
        for p in ["limit", "tier", "since", "until", "user_id"] {
            assert!(s["properties"].get(p).is_some(), "{p}");
        }
        let s = schema_of(&tools, "list_memories");
        assert!(s["properties"]["include_superseded"].is_object());
        assert_eq!(s["required"], json!(["tier"]));
        let s = schema_of(&tools, "delete_memory");
        assert_eq!(s["required"], json!(["id", "tier"]));
        let with_forget = MemoryTools::new(
            Upstream::remote("http://127.0.0.1:1", None).unwrap(),
            SessionUser::Fixed("ana".into()),
            true,
        )
        .unwrap();
        assert!(with_forget.tools().iter().any(|t| t.name == "forget_user"));
    }

    #[test]
    fn escaping_keeps_unreserved_bytes_only() {
        assert_eq!(escape("a b/c?d&é", QUERY_SAFE), "a%20b%2Fc%3Fd%26%C3%A9");
        assert_eq!(escape("ana.v-1_~", PATH_SAFE), "ana.v-1_~");
    }
}
