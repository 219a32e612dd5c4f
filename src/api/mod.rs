//! The HTTP API (axum). Each route module owns its `router()`; [`ApiContext`] is the one
//! state struct handed to every handler.
//!
//! - [`auth`]: bearer API keys and the access policy (a layer on every route).
//! - [`interactions`]: `POST /api/interactions` — the request path for a turn.
//! - [`memory`]: `/api/memory/...` — recall (`context`), browsing a tier, stats, forgetting a
//!   user. Every first segment after `/api/memory/` is a fixed word, so no user id can collide
//!   with a route.
//! - [`edit`]: adding, changing and deleting one memory, and the audit record of edits.
//! - [`reflection`]: `/api/reflection/...` — jobs, the dead-letter list and replay, health,
//!   stats, queue status; and `GET /metrics` (Prometheus text format).
//! - [`users`]: `GET /api/users` (every user, admin), `GET /api/me` (what a key may see),
//!   `GET /api/memory/turn/{user_id}` (a turn by evidence id or job id).
//! - [`ui`]: the dashboard at `/ui` (static files compiled into the binary; public like
//!   `/docs`: the pages hold no data, they call the API with the key the user enters).
//! - [`openapi`]: the OpenAPI 3.1 document, generated from the handlers' `#[utoipa::path]`
//!   annotations (`GET /openapi.json`), and Swagger UI on it (`GET /docs`); [`schema`]: the
//!   request and response shapes it describes.

pub mod auth;
pub mod edit;
pub mod error;
pub mod interactions;
pub mod mcp;
pub mod memory;
pub mod openapi;
pub mod reflection;
pub mod schema;
pub mod ui;
pub mod users;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, MatchedPath, Request};
use axum::http::StatusCode;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use tokio_util::sync::CancellationToken;
use utoipa_axum::router::OpenApiRouter;

pub use error::ApiError;

use crate::config::Config;
use crate::manager::MemoryManager;
use crate::recall::Recall;
use crate::store::Store;

/// State shared by every handler.
#[derive(Clone)]
pub struct ApiContext {
    pub config: Arc<Config>,
    pub store: Store,
    pub manager: MemoryManager,
    pub recall: Recall,
    pub metrics: metrics_exporter_prometheus::PrometheusHandle,
    pub started: Instant,
    /// Whether this process runs reflection workers (health reports them).
    pub workers_running: bool,
    /// Model id of the embedder in use.
    pub embedder: String,
    /// The embedding pool (explicitly added or edited memories get their vectors here).
    pub embed: crate::embed::EmbedService,
    /// The RabbitMQ broker when jobs travel through it (queue status, dead letters).
    pub broker: Option<Arc<crate::queue::amqp::Broker>>,
}

/// Every documented route, with its OpenAPI operation (see [`openapi`]).
pub fn api_routes() -> OpenApiRouter<ApiContext> {
    OpenApiRouter::with_openapi(openapi::base())
        .merge(interactions::router())
        .merge(memory::router())
        .merge(reflection::router())
        .merge(users::router())
}

/// The whole API. `/openapi.json`, `/docs` and the dashboard (`/ui`) are merged after the
/// auth layer: they are public metadata and static files (the API's shape and the pages,
/// the same for every deployment; no user data, keys or configuration), like the health check.
///
/// `/mcp` is the MCP server's streamable HTTP transport (`crate::api::mcp`), behind the same auth
/// layer; its tools call the REST routes in process ([`rest_router`]), with the caller's key.
/// Cancelling `shutdown` ends its sessions (their event streams would otherwise hold a
/// graceful shutdown open).
///
/// Errors only when the MCP tools cannot be built from the OpenAPI document (a bug).
pub fn router(ctx: ApiContext, shutdown: CancellationToken) -> anyhow::Result<Router> {
    let limit = ctx.config.max_body_bytes;
    let (routes, doc) = api_routes().split_for_parts();
    let mcp = crate::api::mcp::http_service(
        rest_router(ctx.clone()),
        ctx.config.mcp_allow_forget,
        !ctx.config.api_keys.is_empty(),
        shutdown,
    )?;
    Ok(Router::new()
        .merge(routes)
        .route("/mcp", crate::api::mcp::route(mcp))
        .route_layer(middleware::from_fn_with_state(ctx.clone(), auth::authorize))
        .merge(openapi::docs(openapi::finish(doc)))
        .merge(ui::router())
        .fallback(|| async {
            ApiError::NotFound("no such route; see the README for the API".into())
        })
        .layer(DefaultBodyLimit::max(limit))
        .layer(middleware::map_response(json_method_not_allowed))
        .layer(middleware::from_fn(track_requests))
        .with_state(ctx))
}

/// The REST routes alone, behind the auth layer, without request metrics: what the MCP
/// tools call in process (`crate::api::mcp::Upstream::InProcess`), and `reflector mcp` on a data
/// directory.
pub fn rest_router(ctx: ApiContext) -> Router {
    let limit = ctx.config.max_body_bytes;
    let (routes, _) = api_routes().split_for_parts();
    Router::new()
        .merge(routes)
        .route_layer(middleware::from_fn_with_state(ctx.clone(), auth::authorize))
        .fallback(|| async {
            ApiError::NotFound("no such route; see the README for the API".into())
        })
        .layer(DefaultBodyLimit::max(limit))
        .layer(middleware::map_response(json_method_not_allowed))
        .with_state(ctx)
}

/// axum answers a known path asked with another method with 405 and an empty body; this
/// gives that answer the API's JSON error body (`method_not_allowed`). axum's method router
/// adds the `Allow` header with the route's methods after this layer has run.
pub async fn json_method_not_allowed(resp: Response) -> Response {
    if resp.status() != StatusCode::METHOD_NOT_ALLOWED {
        return resp;
    }
    let allow = resp.headers().get(axum::http::header::ALLOW).cloned();
    let mut out = ApiError::MethodNotAllowed(
        "this route does not take this method; the Allow header lists the ones it takes".into(),
    )
    .into_response();
    // A route's own 405 (the MCP transport's) already names its methods.
    if let Some(allow) = allow {
        out.headers_mut().insert(axum::http::header::ALLOW, allow);
    }
    out
}

/// Only the public health check (`GET /api/reflection/health`), for a process that serves
/// no API: `reflector worker --health-listen ADDR`, for container health checks.
pub fn health_router(ctx: ApiContext) -> Router {
    let (routes, _) = reflection::health_routes().split_for_parts();
    Router::new()
        .merge(routes)
        .fallback(|| async {
            ApiError::NotFound("this worker serves only GET /api/reflection/health".into())
        })
        .with_state(ctx)
}

/// Records `http_requests_total` and `http_request_duration_seconds` per route and status.
async fn track_requests(req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| "unmatched".into());
    let method = req.method().to_string();
    let start = Instant::now();
    let resp = next.run(req).await;
    let status = resp.status().as_u16().to_string();
    metrics::counter!("http_requests_total", "route" => route.clone(), "method" => method.clone(), "status" => status)
        .increment(1);
    metrics::histogram!("http_request_duration_seconds", "route" => route, "method" => method)
        .record(start.elapsed().as_secs_f64());
    resp
}

/// A request body as bytes; a body over `max_body_bytes` is 413 and an unreadable one 400,
/// both with the JSON error body (axum's own rejections are plain text).
pub fn body_bytes(
    ctx: &ApiContext,
    body: Result<Bytes, BytesRejection>,
) -> Result<Bytes, ApiError> {
    body.map_err(|e| {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::TooLarge(ctx.config.max_body_bytes)
        } else {
            ApiError::BadRequest(e.body_text())
        }
    })
}

/// Pagination from `?limit=&offset=`: limit 1..=500 (default 50), offset 0..=i64::MAX (the
/// store's SQL takes it as a signed 64-bit integer; a larger one used to wrap to a negative
/// offset, read as 0).
pub fn page(q: &HashMap<String, String>) -> Result<(usize, usize), ApiError> {
    let limit = parse_param(q, "limit", 50usize)?;
    if !(1..=500).contains(&limit) {
        return Err(ApiError::invalid("limit", "must be between 1 and 500"));
    }
    let offset = parse_param(q, "offset", 0u64)?;
    if offset > i64::MAX as u64 {
        return Err(ApiError::invalid(
            "offset",
            format!("must be at most {}", i64::MAX),
        ));
    }
    Ok((limit, offset as usize))
}

/// A typed query parameter with a default; 422 naming it when it does not parse.
pub fn parse_param<T: std::str::FromStr>(
    q: &HashMap<String, String>,
    name: &str,
    default: T,
) -> Result<T, ApiError> {
    match q.get(name) {
        None => Ok(default),
        Some(v) => v.trim().parse().map_err(|_| {
            let want = match std::any::type_name::<T>() {
                "usize" | "u64" | "u32" => "a whole number >= 0",
                "bool" => "true or false",
                other => other,
            };
            ApiError::invalid(name, format!("{v:?} is not {want}"))
        }),
    }
}

/// A user id from a path: 1..=256 bytes, no control characters.
pub fn check_user_id(field: &str, s: &str) -> Result<(), ApiError> {
    if s.is_empty() || s.len() > 256 || s.chars().any(char::is_control) {
        return Err(ApiError::invalid(
            field,
            "must be 1 to 256 bytes without control characters",
        ));
    }
    Ok(())
}

/// The process-wide Prometheus recorder (installed once, even when tests start many servers).
pub fn metrics_handle() -> metrics_exporter_prometheus::PrometheusHandle {
    static HANDLE: std::sync::OnceLock<metrics_exporter_prometheus::PrometheusHandle> =
        std::sync::OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let recorder = metrics_exporter_prometheus::PrometheusBuilder::new().build_recorder();
            let handle = recorder.handle();
            if metrics::set_global_recorder(recorder).is_err() {
                tracing::warn!("a metrics recorder was already installed; /metrics may be empty");
            }
            handle
        })
        .clone()
}
