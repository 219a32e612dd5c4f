//! Who is remembered, and who may ask: the routes the dashboard (`/ui`, [`super::ui`]) and
//! operators use to find their way around the store.
//!
//! - `GET /api/users?q=&limit=&offset=` — admin only: every user (anyone with a turn, an
//!   episode, an entity, a rule or a reflection job), by user id ascending, each with rows
//!   per tier, reflection jobs waiting and dead, and the last activity; `q` keeps the ids
//!   that contain it (case-insensitive); `total` counts every match.
//! - `GET /api/me` — which users the caller's key may see: `{"access": "admin", "all_users":
//!   true}` for an admin key (and without keys: `"access": "open"`), `{"access": "users",
//!   "all_users": false, "users": [...]}` for a user-limited key. Checked in the handler
//!   (it names no user), so every valid key may call it.
//! - `GET /api/memory/turn/{user_id}?evidence=ID` or `?job_id=ID` — one stored turn (Tier 1)
//!   of the user, by an evidence id as memories carry it (a LoCoMo `dia_id` or an interaction
//!   id) or by the reflection job id of a memory. A turn that the user's memories cite but that
//!   retention removed answers 200 with `status: "pruned"` and no turn; an id of a memory
//!   that never came from a turn answers `status: "no_turn"`; an id unknown for this user
//!   is 404.

use std::collections::HashMap;

use axum::Json;
use axum::extract::{Extension, Path, Query, State};
use serde_json::{Value, json};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::auth::{Caller, Scope};
use super::schema::{
    Access, ErrorBody, TurnLookupAnswer, TurnLookupQuery, UserPage, UserPath, UsersQuery,
};
use super::{ApiContext, ApiError, check_user_id, page};
use crate::store::{TurnKey, TurnLookup};

/// The routes of this module, with their OpenAPI operations.
pub fn router() -> OpenApiRouter<ApiContext> {
    OpenApiRouter::new()
        .routes(routes!(users))
        .routes(routes!(me))
        .routes(routes!(turn))
}

/// Every user with rows per tier, reflection jobs waiting and dead, and the last activity;
/// by user id ascending, searchable (admin keys only).
#[utoipa::path(
    get,
    path = "/api/users",
    tag = "memory",
    params(UsersQuery),
    responses(
        (status = 200, description = "One page of users", body = UserPage),
        (status = 422, description = "A parameter is invalid (`field` names it)", body = ErrorBody),
    ),
)]
async fn users(
    State(ctx): State<ApiContext>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Json<Value>, ApiError> {
    let (limit, offset) = page(&q)?;
    let query = q.get("q").map(|s| s.trim().to_string()).unwrap_or_default();
    if query.chars().count() > 256 || query.chars().any(char::is_control) {
        return Err(ApiError::invalid(
            "q",
            "must be at most 256 characters without control characters",
        ));
    }
    let qq = query.clone();
    let (users, total) = ctx
        .store
        .run(move |s| s.list_users(&qq, limit, offset))
        .await?;
    Ok(Json(
        json!({"q": query, "limit": limit, "offset": offset, "total": total, "users": users}),
    ))
}

/// Which users the caller's API key may see: all of them (an admin key, or no keys
/// configured), or the users named in the key's scope.
#[utoipa::path(
    get,
    path = "/api/me",
    tag = "memory",
    responses(
        (status = 200, description = "The caller's access", body = Access),
    ),
)]
async fn me(Extension(caller): Extension<Caller>) -> Json<Value> {
    Json(match &caller {
        Caller::Open => json!({"access": "open", "all_users": true, "key_id": null, "users": null}),
        Caller::Key {
            key_id,
            scope: Scope::Admin,
        } => json!({"access": "admin", "all_users": true, "key_id": key_id, "users": null}),
        Caller::Key {
            key_id,
            scope: Scope::Users(u),
        } => json!({"access": "users", "all_users": false, "key_id": key_id, "users": u}),
    })
}

/// One turn of the user (Tier 1), by an evidence id (a LoCoMo `dia_id` or an interaction id)
/// or by a memory's reflection job id; says so when retention has removed it.
#[utoipa::path(
    get,
    path = "/api/memory/turn/{user_id}",
    tag = "memory",
    params(UserPath, TurnLookupQuery),
    responses(
        (status = 200, description = "The turn, or why it is not stored", body = TurnLookupAnswer),
        (status = 404, description = "Nothing of this user has this id", body = ErrorBody),
        (status = 422, description = "A parameter is invalid (`field` names it)", body = ErrorBody),
    ),
)]
async fn turn(
    State(ctx): State<ApiContext>,
    Path(user_id): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Json<Value>, ApiError> {
    check_user_id("user_id", &user_id)?;
    let key = match (q.get("evidence"), q.get("job_id")) {
        (Some(e), None) => TurnKey::Evidence(e.clone()),
        (None, Some(j)) => TurnKey::Job(j.clone()),
        (Some(_), Some(_)) => {
            return Err(ApiError::invalid(
                "job_id",
                "give either evidence or job_id, not both",
            ));
        }
        (None, None) => {
            return Err(ApiError::invalid(
                "evidence",
                "is required (or job_id): the evidence id or job id to look up",
            ));
        }
    };
    let field = match key {
        TurnKey::Evidence(_) => "evidence",
        TurnKey::Job(_) => "job_id",
    };
    let id = key.id().to_string();
    if id.is_empty() || id.chars().count() > 512 || id.chars().any(char::is_control) {
        return Err(ApiError::invalid(
            field,
            "must be 1 to 512 characters without control characters",
        ));
    }
    let (u, k) = (user_id.clone(), key.clone());
    let found = ctx.store.run(move |s| s.find_turn(&u, &k)).await?;
    let (status, turn, message) = match found {
        TurnLookup::Found(t) => ("stored", Some(t), "the turn is stored".to_string()),
        TurnLookup::Pruned => (
            "pruned",
            None,
            "this turn is no longer stored: retention removed it (the memories made from it remain)"
                .to_string(),
        ),
        TurnLookup::NoTurn => (
            "no_turn",
            None,
            "this memory did not come from a stored turn (an explicit or imported memory, or a job sent straight to the broker)".to_string(),
        ),
        TurnLookup::Unknown => {
            return Err(ApiError::NotFound(format!(
                "user {user_id:?} has no turn or memory with {field} {id:?}"
            )));
        }
    };
    Ok(Json(json!({
        "user_id": user_id, "by": field, "id": id, "status": status, "turn": turn, "message": message,
    })))
}
