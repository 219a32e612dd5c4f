//! One error type for the whole HTTP API. Every variant documents its status code; the body
//! is always JSON `{"error": CODE, "message": TEXT, "field": FIELD?}`. Internal errors are
//! logged with their cause and shown to the client only as a generic message.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// 400: the body is not JSON (or not an object).
    #[error("{0}")]
    BadRequest(String),
    /// 422: a field is missing, of the wrong type or out of range; names the field.
    #[error("{field}: {message}")]
    Invalid { field: String, message: String },
    /// 401: no API key, or an unknown one (keys are configured). Sent with
    /// `WWW-Authenticate: Bearer`.
    #[error("{0}")]
    Unauthorized(String),
    /// 403: a valid API key that is not allowed for this user (or for an admin route).
    #[error("{0}")]
    Forbidden(String),
    /// 404: no such job (or route).
    #[error("{0}")]
    NotFound(String),
    /// 405: the route exists but not with this method. axum adds the `Allow` header (see
    /// [`crate::api::json_method_not_allowed`]).
    #[error("{0}")]
    MethodNotAllowed(String),
    /// 409: an idempotency key reused with a different body.
    #[error("{0}")]
    Conflict(String),
    /// 413: the body exceeds the configured limit.
    #[error("request body is larger than the limit of {0} bytes (max_body_bytes)")]
    TooLarge(usize),
    /// 429: backpressure, the reflection backlog is at its ceiling; nothing was stored. Sent
    /// with `Retry-After` (seconds) and `retry_after_s` in the body.
    #[error("{message}")]
    TooManyRequests { message: String, retry_after_s: u64 },
    /// 503: the store cannot be reached.
    #[error("{0}")]
    Unavailable(String),
    /// 500: a bug or an unexpected failure; details only in the log.
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl ApiError {
    /// A 422 naming `field`.
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self::Invalid {
            field: field.into(),
            message: message.into(),
        }
    }

    fn status(&self) -> StatusCode {
        match self {
            Self::BadRequest(_) => StatusCode::BAD_REQUEST,
            Self::Invalid { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            Self::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            Self::Forbidden(_) => StatusCode::FORBIDDEN,
            Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::MethodNotAllowed(_) => StatusCode::METHOD_NOT_ALLOWED,
            Self::Conflict(_) => StatusCode::CONFLICT,
            Self::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            Self::TooManyRequests { .. } => StatusCode::TOO_MANY_REQUESTS,
            Self::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn code(&self) -> &'static str {
        match self {
            Self::BadRequest(_) => "bad_request",
            Self::Invalid { .. } => "validation_failed",
            Self::Unauthorized(_) => "unauthorized",
            Self::Forbidden(_) => "forbidden",
            Self::NotFound(_) => "not_found",
            Self::MethodNotAllowed(_) => "method_not_allowed",
            Self::Conflict(_) => "conflict",
            Self::TooLarge(_) => "payload_too_large",
            Self::TooManyRequests { .. } => "too_many_requests",
            Self::Unavailable(_) => "unavailable",
            Self::Internal(_) => "internal",
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        let message = match &self {
            Self::Internal(e) => {
                tracing::error!(error = %format!("{e:#}"), "internal error");
                "internal error; see the server log".to_string()
            }
            other => other.to_string(),
        };
        let mut body = json!({"error": self.code(), "message": message});
        if let Self::Invalid { field, .. } = &self {
            body["field"] = json!(field);
        }
        if let Self::TooManyRequests { retry_after_s, .. } = &self {
            body["retry_after_s"] = json!(retry_after_s);
        }
        let mut resp = (status, Json(body)).into_response();
        if let Self::TooManyRequests { retry_after_s, .. } = &self {
            resp.headers_mut().insert(
                axum::http::header::RETRY_AFTER,
                axum::http::HeaderValue::from(*retry_after_s),
            );
        }
        if let Self::Unauthorized(_) = &self {
            resp.headers_mut().insert(
                axum::http::header::WWW_AUTHENTICATE,
                axum::http::HeaderValue::from_static("Bearer realm=\"reflector\""),
            );
        }
        resp
    }
}

impl From<crate::manager::StoreError> for ApiError {
    fn from(e: crate::manager::StoreError) -> Self {
        match e {
            crate::manager::StoreError::Conflict(_) => ApiError::Conflict(e.to_string()),
            crate::manager::StoreError::Busy { .. } => ApiError::TooManyRequests {
                message: e.to_string(),
                retry_after_s: 1,
            },
            crate::manager::StoreError::Internal(e) => ApiError::Internal(e),
        }
    }
}
