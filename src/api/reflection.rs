//! `/api/reflection/...` and `/metrics`: what operators look at.
//!
//! - `GET /api/reflection/jobs/{job_id}` — a job's state, attempts and per-tier outcome.
//! - `GET /api/reflection/dlq?limit=&offset=` — dead jobs with their reasons; with RabbitMQ
//!   also `broker`: the messages in the broker's dead-letter queue (poison messages that
//!   never became a job included), oldest first, up to `limit`, left in place.
//! - `POST /api/reflection/dlq/replay` — body `{"job_ids": [...]}` or `{"all": true}`: dead
//!   jobs go back to the queue with fresh attempts (committed tiers are not redone); with
//!   RabbitMQ their messages leave the broker's DLQ and the relay publishes them again.
//! - `POST /api/reflection/dlq/purge` — RabbitMQ only: delete every message in the broker's
//!   DLQ (dead job rows stay, replayable); `{"purged": N}`.
//! - `GET /api/reflection/health` — per-component status; 503 only when the store is down
//!   (no turn can be accepted); `degraded` when reflection is behind or stopped.
//! - `GET /api/reflection/stats` — jobs by state, completion rate, per-tier latencies.
//! - `GET /api/reflection/queue-status` — waiting jobs by priority, oldest age, leased, dead,
//!   the deepest user's backlog, and the backpressure ceilings (`limits`); with RabbitMQ
//!   also the broker's queue depths and consumers and the outbox backlog.
//! - `GET /metrics` — Prometheus text.

use std::collections::HashMap;

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Extension, Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::auth::Caller;
use super::schema::{
    DeadLetters, ErrorBody, Health, JobPath, JobRecord, PageQuery, Purged, QueueStatusResponse,
    ReflectionStats, ReplayRequest, Replayed,
};
use super::{ApiContext, ApiError, body_bytes, page};

/// The routes of this module, with their OpenAPI operations.
pub fn router() -> OpenApiRouter<ApiContext> {
    OpenApiRouter::new()
        .routes(routes!(job))
        .routes(routes!(dlq))
        .routes(routes!(replay))
        .routes(routes!(purge))
        .routes(routes!(health))
        .routes(routes!(stats))
        .routes(routes!(queue_status))
        .routes(routes!(prometheus))
}

/// The health check alone (see [`super::health_router`]).
pub fn health_routes() -> OpenApiRouter<ApiContext> {
    OpenApiRouter::new().routes(routes!(health))
}

/// A reflection job: state, attempts, per-tier result or error.
#[utoipa::path(
    get,
    path = "/api/reflection/jobs/{job_id}",
    tag = "reflection",
    params(JobPath),
    responses(
        (status = 200, description = "The job", body = JobRecord),
        (status = 404, description = "No such job", body = ErrorBody),
    ),
)]
async fn job(
    State(ctx): State<ApiContext>,
    Extension(caller): Extension<Caller>,
    Path(job_id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let id = job_id.clone();
    match ctx.store.run(move |s| s.get_job(&id)).await? {
        Some(j) => {
            caller.check_user(&j.user_id)?;
            Ok(Json(serde_json::to_value(j).map_err(anyhow::Error::from)?))
        }
        None => Err(ApiError::NotFound(format!("no reflection job {job_id:?}"))),
    }
}

/// Dead jobs with their reasons, newest first; with RabbitMQ also the broker's dead-letter
/// queue.
#[utoipa::path(
    get,
    path = "/api/reflection/dlq",
    tag = "reflection",
    params(PageQuery),
    responses(
        (status = 200, description = "One page of dead jobs", body = DeadLetters),
        (status = 422, description = "A parameter is invalid (`field` names it)", body = ErrorBody),
    ),
)]
async fn dlq(
    State(ctx): State<ApiContext>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Json<Value>, ApiError> {
    let (limit, offset) = page(&q)?;
    let jobs = ctx.store.run(move |s| s.list_dead(limit, offset)).await?;
    let mut out = json!({"limit": limit, "offset": offset, "jobs": jobs});
    if let Some(b) = &ctx.broker {
        out["broker"] = match b.dlq_peek(limit).await {
            Ok(m) => json!({"queue": b.settings().dlq, "messages": m}),
            Err(e) => json!({"queue": b.settings().dlq, "error": format!("{e:#}")}),
        };
    }
    Ok(Json(out))
}

/// RabbitMQ only: delete every message in the broker's dead-letter queue (dead job rows
/// stay, replayable).
#[utoipa::path(
    post,
    path = "/api/reflection/dlq/purge",
    tag = "reflection",
    responses(
        (status = 200, description = "Purged", body = Purged),
        (status = 400, description = "The embedded queue has no broker dead-letter queue", body = ErrorBody),
    ),
)]
async fn purge(State(ctx): State<ApiContext>) -> Result<Json<Value>, ApiError> {
    let Some(b) = &ctx.broker else {
        return Err(ApiError::BadRequest(
            "the embedded queue has no broker dead-letter queue to purge; dead jobs stay in the ledger (replay them, or forget their user)".into(),
        ));
    };
    let n = b.dlq_purge().await?;
    Ok(Json(json!({"purged": n, "queue": b.settings().dlq})))
}

/// Put dead jobs back in the queue with fresh attempts (only the tiers that failed run again).
#[utoipa::path(
    post,
    path = "/api/reflection/dlq/replay",
    tag = "reflection",
    request_body = ReplayRequest,
    responses(
        (status = 200, description = "Replayed", body = Replayed),
        (status = 400, description = "The body is not JSON", body = ErrorBody),
        (status = 404, description = "None of the given jobs is dead", body = ErrorBody),
        (status = 422, description = "Neither `job_ids` nor `all: true`, or a field of the wrong type", body = ErrorBody),
    ),
)]
async fn replay(
    State(ctx): State<ApiContext>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<Value>, ApiError> {
    let body = body_bytes(&ctx, body)?;
    let v: Value = if body.is_empty() {
        json!({})
    } else {
        serde_json::from_slice(&body)
            .map_err(|e| ApiError::BadRequest(format!("body is not valid JSON: {e}")))?
    };
    let all = match v.get("all") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(_) => return Err(ApiError::invalid("all", "must be a boolean")),
    };
    let ids: Vec<String> = match v.get("job_ids") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(a)) => a
            .iter()
            .map(|x| x.as_str().map(str::to_string))
            .collect::<Option<_>>()
            .ok_or_else(|| ApiError::invalid("job_ids", "must be an array of strings"))?,
        Some(_) => return Err(ApiError::invalid("job_ids", "must be an array of strings")),
    };
    if ids.is_empty() && !all {
        return Err(ApiError::invalid(
            "job_ids",
            "give the dead jobs to replay, or {\"all\": true}",
        ));
    }
    let ids = match (&ctx.broker, ids.is_empty()) {
        // RabbitMQ needs the ids to take their messages out of the broker's DLQ.
        (Some(_), true) => ctx.store.run(|s| s.dead_job_ids()).await?,
        _ => ids,
    };
    if ids.is_empty() && ctx.broker.is_some() {
        return Ok(Json(json!({"replayed": 0, "not_dead": []})));
    }
    let replay_ids = ids.clone();
    let (n, not_dead) = ctx.store.run(move |s| s.replay_dead(&replay_ids)).await?;
    let mut removed = None;
    if let Some(b) = &ctx.broker {
        let replayed: std::collections::HashSet<String> =
            ids.into_iter().filter(|i| !not_dead.contains(i)).collect();
        removed = Some(b.dlq_remove_jobs(&replayed).await.map_err(|e| {
            anyhow::anyhow!("jobs replayed (the relay publishes them), but their messages could not be taken out of the broker's DLQ: {e:#}")
        })?);
    }
    if n == 0 && !not_dead.is_empty() {
        return Err(ApiError::NotFound(format!(
            "no dead job among {not_dead:?}: unknown ids, or jobs that are not dead (see GET /api/reflection/jobs/{{id}})"
        )));
    }
    let mut out = json!({"replayed": n, "not_dead": not_dead});
    if let Some(r) = removed {
        out["removed_from_broker_dlq"] = json!(r);
    }
    Ok(Json(out))
}

/// Per-component status. Public (load balancers, container health checks; no user data).
/// 503 only when the store is down; `degraded` when jobs wait longer than
/// `lag_degraded_secs`, nobody reflects them, or the broker is down.
#[utoipa::path(
    get,
    path = "/api/reflection/health",
    tag = "reflection",
    responses(
        (status = 200, description = "Healthy or degraded", body = Health),
        (status = 503, description = "Unhealthy: the store is down", body = Health),
    ),
)]
async fn health(State(ctx): State<ApiContext>) -> Response {
    let store = ctx.store.run(|s| {
        s.ping()?;
        s.queue_status()
    });
    match store.await {
        Err(e) => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({
                "status": "unhealthy",
                "components": {"store": {"status": "down", "error": format!("{e:#}")}},
            })),
        )
            .into_response(),
        Ok(q) => {
            let lagging = q.oldest_waiting_age_s > ctx.config.lag_degraded_secs as f64;
            // RabbitMQ: workers may run in other processes; the broker counts consumers.
            let broker = match &ctx.broker {
                Some(b) => Some(b.status().await),
                None => None,
            };
            let consumers = broker
                .as_ref()
                .and_then(|b| b["queues"]["priority"]["consumers"].as_u64());
            let workers_running = ctx.workers_running || consumers.is_some_and(|n| n > 0);
            let stalled = q.waiting > 0 && !workers_running;
            let reflection = if !workers_running {
                "not running in this process"
            } else if lagging {
                "behind"
            } else {
                "up"
            };
            let broker_down = broker.as_ref().is_some_and(|b| b["status"] != "up");
            let status = if lagging || stalled || broker_down {
                "degraded"
            } else {
                "healthy"
            };
            Json(json!({
                "status": status,
                "uptime_s": ctx.started.elapsed().as_secs(),
                "components": {
                    "store": {"status": "up", "backend": "sqlite"},
                    "queue": match &broker {
                        None => json!({"status": "up", "backend": "embedded", "waiting": q.waiting,
                                       "oldest_waiting_age_s": q.oldest_waiting_age_s, "dead": q.dead}),
                        Some(b) => json!({"status": b["status"], "backend": "amqp", "waiting": q.waiting,
                                          "oldest_waiting_age_s": q.oldest_waiting_age_s, "dead": q.dead,
                                          "broker": b}),
                    },
                    "reflection": {"status": reflection, "workers": if ctx.workers_running { ctx.config.workers } else { 0 }},
                    "embedder": {"status": "up", "model": ctx.embedder},
                }
            }))
            .into_response()
        }
    }
}

/// Jobs by state, completions per second over the last minute, per-tier latency.
#[utoipa::path(
    get,
    path = "/api/reflection/stats",
    operation_id = "reflection_stats",
    tag = "reflection",
    responses((status = 200, description = "The statistics", body = ReflectionStats)),
)]
async fn stats(State(ctx): State<ApiContext>) -> Result<Json<Value>, ApiError> {
    let (counts, rate, tiers) = ctx
        .store
        .run(|s| {
            Ok((
                s.job_counts(None)?,
                s.completion_rate(60_000)?,
                s.tier_latencies()?,
            ))
        })
        .await?;
    Ok(Json(json!({
        "jobs": counts,
        "completed_per_s_last_minute": rate,
        "tiers": tiers,
    })))
}

/// Waiting jobs by priority, the oldest waiting age, leased and dead jobs, the deepest
/// user's backlog, the backpressure ceilings; with RabbitMQ also the broker's queues and the
/// outbox backlog.
#[utoipa::path(
    get,
    path = "/api/reflection/queue-status",
    tag = "reflection",
    responses((status = 200, description = "The queue", body = QueueStatusResponse)),
)]
async fn queue_status(State(ctx): State<ApiContext>) -> Result<Json<Value>, ApiError> {
    let (q, backlog) = ctx
        .store
        .run(|s| Ok((s.queue_status()?, s.outbox_backlog()?)))
        .await?;
    let limits = ctx.config.queue_limits();
    match &ctx.broker {
        None => Ok(Json(
            json!({"backend": "embedded", "queue": q, "limits": limits}),
        )),
        Some(b) => Ok(Json(json!({
            "backend": "amqp",
            "queue": q,
            "limits": limits,
            "outbox_backlog": backlog,
            "broker": b.status().await,
        }))),
    }
}

/// Prometheus metrics (text format): requests, latencies, job outcomes, tier latencies,
/// queue depth.
#[utoipa::path(
    get,
    path = "/metrics",
    tag = "operations",
    responses((status = 200, description = "Prometheus text exposition format", body = String,
        content_type = "text/plain; version=0.0.4")),
)]
async fn prometheus(State(ctx): State<ApiContext>) -> Result<Response, ApiError> {
    let q = ctx.store.run(|s| s.queue_status()).await?;
    metrics::gauge!("reflector_queue_waiting").set(q.waiting as f64);
    metrics::gauge!("reflector_queue_leased").set(q.leased as f64);
    metrics::gauge!("reflector_queue_dead").set(q.dead as f64);
    metrics::gauge!("reflector_queue_oldest_waiting_seconds").set(q.oldest_waiting_age_s);
    metrics::gauge!("reflector_queue_deepest_user_waiting").set(q.deepest_user_waiting as f64);
    let limits = ctx.config.queue_limits();
    metrics::gauge!("reflector_queue_max_waiting_per_user").set(limits.per_user as f64);
    metrics::gauge!("reflector_queue_max_waiting_total").set(limits.total as f64);
    for (p, n) in &q.depth_by_priority {
        metrics::gauge!("reflector_queue_depth", "priority" => p.clone()).set(*n as f64);
    }
    Ok((
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        ctx.metrics.render(),
    )
        .into_response())
}
