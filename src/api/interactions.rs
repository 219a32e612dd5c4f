//! `POST /api/interactions`: store one turn (Tier 1) and its reflection job.
//!
//! Body (JSON object; unknown fields are ignored):
//! `user_id` (string, required), `session_id` (string, required), `user_message` (string,
//! required, non-empty), `assistant_response` (string, may be empty or absent), `timestamp`
//! (RFC 3339; without a zone it means UTC; default now), `metadata` (object: `speaker`,
//! `timezone` (IANA name or UTC offset), `dia_id`, `image_caption`, anything else is kept),
//! `interaction_id` (string, optional idempotency key).
//!
//! Answers 202 (fast path) or 200 (traditional path) with `interaction_id`,
//! `reflection_job_id`, `priority`, `status`; 400 for a body that is not a JSON object, 422
//! naming the bad field, 409 when `interaction_id` was used for a different turn, 413 above
//! `max_body_bytes`, 429 with `Retry-After` when the reflection backlog of the user or of the
//! service is at its ceiling (`max_waiting_per_user`, `max_waiting_total`; the turn is not
//! stored and must be sent again), 401/403 (see `auth`).

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Extension, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::auth::Caller;
use super::schema::{ErrorBody, InteractionRequest, StoredTurn};
use super::{ApiContext, ApiError, body_bytes, check_user_id};
use crate::manager::{Interaction, StoreError};

/// `Retry-After` for a turn refused by backpressure: the time for the jobs above the ceiling
/// (`depth - ceiling + 1`, at least 1) to complete at the completion rate of the last 10 s
/// (jobs/s, service-wide), between 1 and 60 s. With no completion in the last 10 s (workers
/// paused, stopped or not in this process) there is no estimate: 10 s, a polite poll.
pub fn retry_after_s(depth: i64, ceiling: u64, completed_per_s: f64) -> u64 {
    let excess = (depth - ceiling as i64 + 1).max(1) as f64;
    if completed_per_s > 0.0 {
        ((excess / completed_per_s).ceil() as u64).clamp(1, 60)
    } else {
        10
    }
}

/// The routes of this module, with their OpenAPI operations.
pub fn router() -> OpenApiRouter<ApiContext> {
    OpenApiRouter::new().routes(routes!(store_interaction))
}

/// Store one turn (Tier 1) and its reflection job; reflection happens later.
#[utoipa::path(
    post,
    path = "/api/interactions",
    tag = "interactions",
    request_body = InteractionRequest,
    responses(
        (status = 202, description = "Stored, and its reflection job queued (fast path)", body = StoredTurn,
            links(("job" = (operation_id = "job", parameters(("job_id" = "$response.body#/reflection_job_id")),
                description = "The turn's reflection job")))),
        (status = 200, description = "Stored and reflected inline (traditional path, `MEMORY_FAST_MODE=false`)", body = StoredTurn,
            links(("job" = (operation_id = "job", parameters(("job_id" = "$response.body#/reflection_job_id")),
                description = "The turn's reflection job")))),
        (status = 400, description = "The body is not JSON, or not an object", body = ErrorBody),
        (status = 409, description = "`interaction_id` was already used for another turn", body = ErrorBody),
        (status = 422, description = "A field is missing or invalid (`field` names it)", body = ErrorBody),
        (status = 429, description = "Backpressure: the user's or the service's reflection backlog is at its ceiling; \
            the turn was NOT stored, send it again after `Retry-After` seconds",
            body = ErrorBody,
            headers(("Retry-After" = u64, description = "Seconds to wait (1 to 60)"))),
    ),
)]
async fn store_interaction(
    State(ctx): State<ApiContext>,
    Extension(caller): Extension<Caller>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let body = body_bytes(&ctx, body)?;
    let interaction = parse_interaction(&body)?;
    caller.check_user(&interaction.user_id)?;
    let stored = match ctx.manager.store_interaction(interaction).await {
        Err(e @ StoreError::Busy { depth, ceiling, .. }) => {
            let rate = ctx
                .store
                .run(|s| s.completion_rate(10_000))
                .await
                .unwrap_or(0.0);
            return Err(ApiError::TooManyRequests {
                message: e.to_string(),
                retry_after_s: retry_after_s(depth, ceiling, rate),
            });
        }
        r => r?,
    };
    let status = if stored.results.is_some() {
        StatusCode::OK
    } else {
        StatusCode::ACCEPTED
    };
    Ok((status, Json(stored)).into_response())
}

/// Validate the body, naming the first bad field.
pub fn parse_interaction(body: &[u8]) -> Result<Interaction, ApiError> {
    let value: Value = serde_json::from_slice(body)
        .map_err(|e| ApiError::BadRequest(format!("body is not valid JSON: {e}")))?;
    let Value::Object(obj) = value else {
        return Err(ApiError::BadRequest("body must be a JSON object".into()));
    };
    let user_id = required_str(&obj, "user_id")?;
    check_user_id("user_id", &user_id)?;
    let session_id = required_str(&obj, "session_id")?;
    if session_id.len() > 256 {
        return Err(ApiError::invalid("session_id", "must be at most 256 bytes"));
    }
    let user_message = required_str(&obj, "user_message")?;
    if user_message.trim().is_empty() {
        return Err(ApiError::invalid("user_message", "must not be empty"));
    }
    let assistant_response = optional_str(&obj, "assistant_response")?.unwrap_or_default();
    let timestamp = match optional_str(&obj, "timestamp")? {
        None => None,
        Some(s) => Some(crate::job::parse_timestamp(&s).ok_or_else(|| {
            ApiError::invalid(
                "timestamp",
                format!("{s:?} is not an RFC 3339 timestamp (e.g. 2024-05-08T13:56:00Z)"),
            )
        })?),
    };
    let mut metadata = match obj.get("metadata") {
        None | Some(Value::Null) => Map::new(),
        Some(Value::Object(m)) => m.clone(),
        Some(_) => return Err(ApiError::invalid("metadata", "must be a JSON object")),
    };
    // A timestamp written with a UTC offset says where the user was: without an explicit
    // metadata.timezone, "yesterday" is resolved in that offset.
    if !metadata.contains_key("timezone")
        && let Some(s) = obj.get("timestamp").and_then(|v| v.as_str())
        && let Ok(t) = chrono::DateTime::parse_from_rfc3339(s.trim())
        && t.offset().local_minus_utc() != 0
    {
        metadata.insert("timezone".into(), Value::String(t.offset().to_string()));
    }
    for key in ["speaker", "timezone", "dia_id", "image_caption"] {
        if let Some(v) = metadata.get(key)
            && !v.is_string()
            && !v.is_null()
        {
            return Err(ApiError::invalid(
                format!("metadata.{key}"),
                "must be a string",
            ));
        }
    }
    if let Some(tz) = metadata.get("timezone").and_then(|v| v.as_str()) {
        crate::extract::time::to_local(chrono::Utc::now(), Some(tz))
            .map_err(|e| ApiError::invalid("metadata.timezone", e))?;
    }
    let interaction_id = optional_str(&obj, "interaction_id")?;
    if let Some(id) = &interaction_id
        && (id.is_empty()
            || id.len() > 200
            || id.chars().any(|c| c.is_control() || c.is_whitespace()))
    {
        return Err(ApiError::invalid(
            "interaction_id",
            "must be 1 to 200 bytes without spaces or control characters",
        ));
    }
    Ok(Interaction {
        interaction_id,
        user_id,
        session_id,
        user_message,
        assistant_response,
        timestamp,
        metadata,
    })
}

fn required_str(obj: &Map<String, Value>, field: &str) -> Result<String, ApiError> {
    match obj.get(field) {
        None | Some(Value::Null) => Err(ApiError::invalid(field, "is required")),
        Some(Value::String(s)) => Ok(s.clone()),
        Some(other) => Err(ApiError::invalid(
            field,
            format!("must be a string, got {}", crate::job::json_kind(other)),
        )),
    }
}

fn optional_str(obj: &Map<String, Value>, field: &str) -> Result<Option<String>, ApiError> {
    match obj.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(other) => Err(ApiError::invalid(
            field,
            format!("must be a string, got {}", crate::job::json_kind(other)),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field_of(body: &str) -> String {
        match parse_interaction(body.as_bytes()) {
            Err(ApiError::Invalid { field, .. }) => field,
            other => panic!("expected a 422, got {other:?}"),
        }
    }

    #[test]
    fn names_the_bad_field() {
        assert_eq!(
            field_of(r#"{"session_id":"s","user_message":"m"}"#),
            "user_id"
        );
        assert_eq!(
            field_of(r#"{"user_id":1,"session_id":"s","user_message":"m"}"#),
            "user_id"
        );
        assert_eq!(
            field_of(r#"{"user_id":"u","session_id":"s","user_message":"  "}"#),
            "user_message"
        );
        assert_eq!(
            field_of(r#"{"user_id":"u","session_id":"s","user_message":"m","timestamp":"soon"}"#),
            "timestamp"
        );
        assert_eq!(
            field_of(r#"{"user_id":"u","session_id":"s","user_message":"m","metadata":[1]}"#),
            "metadata"
        );
        assert_eq!(
            field_of(
                r#"{"user_id":"u","session_id":"s","user_message":"m","metadata":{"timezone":"Mars/Base"}}"#
            ),
            "metadata.timezone"
        );
        assert!(matches!(
            parse_interaction(b"[1]"),
            Err(ApiError::BadRequest(_))
        ));
        assert!(matches!(
            parse_interaction(b"{"),
            Err(ApiError::BadRequest(_))
        ));
    }

    #[test]
    fn retry_after_follows_the_completion_rate() {
        assert_eq!(retry_after_s(5, 5, 0.0), 10);
        assert_eq!(retry_after_s(5, 5, 2.0), 1);
        assert_eq!(retry_after_s(105, 5, 10.0), 11);
        assert_eq!(retry_after_s(100_000, 5, 1.0), 60);
    }

    #[test]
    fn accepts_a_minimal_turn_and_naive_timestamps() {
        let i = parse_interaction(
            br#"{"user_id":"a.b","session_id":"s","user_message":"hello","timestamp":"2024-01-02T03:04:05","extra":1}"#,
        )
        .unwrap();
        assert_eq!(i.assistant_response, "");
        assert_eq!(
            i.timestamp.unwrap().to_rfc3339(),
            "2024-01-02T03:04:05+00:00"
        );
    }
}
