//! `/api/memory/...`: recall, browsing each tier, per-user stats, forgetting a user.
//!
//! - `GET /api/memory/context/{user_id}?query=&limit=&include_invalid=&max_tokens=` — the
//!   context for the next prompt (see `crate::recall`). `limit` 1..=100, default 10.
//!   `max_tokens` (1..=1000000) trims the rendered `context` to fit, highest-ranked first
//!   (`crate::recall::budget`: order; `crate::tokens`: estimate); the answer then has `max_tokens` and `omitted`
//!   (how many items were left out) and `omitted_items` (which: tier, id and text, in
//!   priority order), and always `context_tokens` (the estimate for `context`).
//! - `GET /api/memory/search/{user_id}?query=&limit=&tier=&since=&until=` — the ranked
//!   items alone (`crate::recall::Recall::search`), filtered by tier and date.
//! - `GET /api/memory/{short-term|episodic|semantic|procedural}/{user_id}?limit=&offset=` —
//!   browse a tier, newest first. `semantic` returns `entities` and `facts`; `procedural`
//!   takes `include_superseded=true`.
//! - `GET /api/memory/stats/{user_id}` — row counts per tier and jobs by state.
//! - `DELETE /api/memory/user/{user_id}` — forget the user everywhere; reports rows removed.

use std::collections::HashMap;

use axum::Json;
use axum::extract::{Path, Query, State};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::edit as ed;
use serde_json::{Value, json};

use super::schema::{
    ContextQuery, ContextResponse, EpisodePage, ErrorBody, Forgotten, PageQuery, ProceduralQuery,
    RulePage, SearchQuery, SearchResponse, SemanticPage, TurnPage, UserPath, UserStats,
};
use super::{ApiContext, ApiError, check_user_id, page, parse_param};
use crate::recall::{Answer, RecallQuery};

/// The routes of this module and of [`super::edit`], with their OpenAPI operations.
pub fn router() -> OpenApiRouter<ApiContext> {
    OpenApiRouter::new()
        .routes(routes!(context))
        .routes(routes!(search))
        .routes(routes!(short_term))
        .routes(routes!(episodic, ed::add_episode))
        .routes(routes!(semantic, ed::add_fact))
        .routes(routes!(procedural, ed::add_rule))
        .routes(routes!(ed::update_episode, ed::delete_episode))
        .routes(routes!(ed::update_fact, ed::delete_fact))
        .routes(routes!(ed::update_rule, ed::delete_rule))
        .routes(routes!(ed::edits))
        .routes(routes!(stats))
        .routes(routes!(forget))
}

/// Context for the next prompt from all four tiers: hybrid BM25 + vector search over
/// episodes, currently valid facts about the entities the query names, the standing rules,
/// the recent turns, one ranked list, and a block ready for a prompt.
#[utoipa::path(
    get,
    path = "/api/memory/context/{user_id}",
    tag = "memory",
    params(UserPath, ContextQuery),
    responses(
        (status = 200, description = "The context", body = ContextResponse),
        (status = 422, description = "A parameter is invalid (`field` names it)", body = ErrorBody),
    ),
)]
async fn context(
    State(ctx): State<ApiContext>,
    Path(user_id): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Json<Answer>, ApiError> {
    check_user_id("user_id", &user_id)?;
    let limit = parse_param(&q, "limit", 10usize)?;
    if !(1..=100).contains(&limit) {
        return Err(ApiError::invalid("limit", "must be between 1 and 100"));
    }
    let query = q.get("query").cloned().unwrap_or_default();
    if query.len() > 4096 {
        return Err(ApiError::invalid("query", "must be at most 4096 bytes"));
    }
    let include_invalid = parse_param(&q, "include_invalid", false)?;
    let max_tokens = match q.get("max_tokens") {
        None => None,
        Some(_) => {
            let n = parse_param(&q, "max_tokens", 0usize)?;
            if !(1..=1_000_000).contains(&n) {
                return Err(ApiError::invalid(
                    "max_tokens",
                    "must be between 1 and 1000000",
                ));
            }
            Some(n)
        }
    };
    let answer = ctx
        .recall
        .answer(
            RecallQuery {
                user_id,
                query,
                limit,
                include_invalid,
            },
            max_tokens,
        )
        .await?;
    Ok(Json(answer))
}

/// Search memories: the ranked items of recall alone (what `/context` lists as `memories`),
/// each episode as itself, filtered by tier and by date.
#[utoipa::path(
    get,
    path = "/api/memory/search/{user_id}",
    tag = "memory",
    params(UserPath, SearchQuery),
    responses(
        (status = 200, description = "Ranked items, best first", body = SearchResponse),
        (status = 422, description = "A parameter is invalid (`field` names it)", body = ErrorBody),
    ),
)]
async fn search(
    State(ctx): State<ApiContext>,
    Path(user_id): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Json<Value>, ApiError> {
    check_user_id("user_id", &user_id)?;
    let query = q.get("query").map(|s| s.trim()).unwrap_or_default();
    if query.is_empty() {
        return Err(ApiError::invalid(
            "query",
            "is required and must not be blank",
        ));
    }
    if query.len() > 4096 {
        return Err(ApiError::invalid("query", "must be at most 4096 bytes"));
    }
    let limit = parse_param(&q, "limit", 10usize)?;
    if !(1..=100).contains(&limit) {
        return Err(ApiError::invalid("limit", "must be between 1 and 100"));
    }
    let mut tiers: Vec<&'static str> = Vec::new();
    for t in q.get("tier").map(|s| s.as_str()).unwrap_or("").split(',') {
        let t = t.trim();
        let tier = match t {
            "" if q.contains_key("tier") => {
                return Err(ApiError::invalid(
                    "tier",
                    "names an empty tier; use short_term, episodic, semantic or procedural, comma-separated",
                ));
            }
            "" => continue,
            "short_term" | "short-term" => "short_term",
            "episodic" => "episodic",
            "semantic" => "semantic",
            "procedural" => "procedural",
            other => {
                return Err(ApiError::invalid(
                    "tier",
                    format!(
                        "{other:?} is not a tier; use short_term, episodic, semantic or procedural, comma-separated"
                    ),
                ));
            }
        };
        if !tiers.contains(&tier) {
            tiers.push(tier);
        }
    }
    let instant = |name: &str, end_of_day: bool| -> Result<Option<i64>, ApiError> {
        let Some(v) = q.get(name) else {
            return Ok(None);
        };
        let t = crate::job::parse_timestamp(v).ok_or_else(|| {
            ApiError::invalid(
                name,
                format!("{v:?} is not an RFC 3339 timestamp or a date (YYYY-MM-DD)"),
            )
        })?;
        let date_only = !v.trim().contains([':', 'T', ' ']);
        let day = if end_of_day && date_only {
            86_400_000
        } else {
            0
        };
        Ok(Some(t.timestamp_millis() + day))
    };
    let since_ms = instant("since", false)?;
    let until_ms = instant("until", true)?;
    if let (Some(s), Some(u)) = (since_ms, until_ms)
        && u <= s
    {
        return Err(ApiError::invalid("until", "must be later than since"));
    }
    let start = std::time::Instant::now();
    let items = ctx
        .recall
        .search(crate::recall::SearchQuery {
            user_id: user_id.clone(),
            query: query.to_string(),
            limit,
            tiers,
            since_ms,
            until_ms,
        })
        .await?;
    metrics::histogram!("reflector_search_seconds").record(start.elapsed().as_secs_f64());
    Ok(Json(
        json!({"user_id": user_id, "query": query, "limit": limit, "items": items}),
    ))
}

/// Browse short-term memory (Tier 1): the user's turns, newest first.
#[utoipa::path(
    get,
    path = "/api/memory/short-term/{user_id}",
    tag = "memory",
    params(UserPath, PageQuery),
    responses(
        (status = 200, description = "One page", body = TurnPage),
        (status = 422, description = "A parameter is invalid (`field` names it)", body = ErrorBody),
    ),
)]
async fn short_term(
    State(ctx): State<ApiContext>,
    Path(user_id): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Json<Value>, ApiError> {
    check_user_id("user_id", &user_id)?;
    let (limit, offset) = page(&q)?;
    let u = user_id.clone();
    let turns = ctx
        .store
        .run(move |s| s.list_turns(&u, limit, offset))
        .await?;
    Ok(Json(
        json!({"user_id": user_id, "tier": "short_term", "limit": limit, "offset": offset, "turns": turns}),
    ))
}

/// Browse episodic memory (Tier 2), newest first.
#[utoipa::path(
    get,
    path = "/api/memory/episodic/{user_id}",
    tag = "memory",
    params(UserPath, PageQuery),
    responses(
        (status = 200, description = "One page", body = EpisodePage),
        (status = 422, description = "A parameter is invalid (`field` names it)", body = ErrorBody),
    ),
)]
async fn episodic(
    State(ctx): State<ApiContext>,
    Path(user_id): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Json<Value>, ApiError> {
    check_user_id("user_id", &user_id)?;
    let (limit, offset) = page(&q)?;
    let u = user_id.clone();
    let episodes = ctx
        .store
        .run(move |s| s.list_episodes(&u, limit, offset))
        .await?;
    Ok(Json(
        json!({"user_id": user_id, "tier": "episodic", "limit": limit, "offset": offset, "episodes": episodes}),
    ))
}

/// Browse semantic memory (Tier 3): a page of entities and a page of facts (valid and invalidated), newest first.
#[utoipa::path(
    get,
    path = "/api/memory/semantic/{user_id}",
    tag = "memory",
    params(UserPath, PageQuery),
    responses(
        (status = 200, description = "One page", body = SemanticPage),
        (status = 422, description = "A parameter is invalid (`field` names it)", body = ErrorBody),
    ),
)]
async fn semantic(
    State(ctx): State<ApiContext>,
    Path(user_id): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Json<Value>, ApiError> {
    check_user_id("user_id", &user_id)?;
    let (limit, offset) = page(&q)?;
    let u = user_id.clone();
    let (entities, facts) = ctx
        .store
        .run(move |s| {
            Ok((
                s.list_entities(&u, limit, offset)?,
                s.list_facts(&u, limit, offset)?,
            ))
        })
        .await?;
    Ok(Json(
        json!({"user_id": user_id, "tier": "semantic", "limit": limit, "offset": offset,
                   "entities": entities, "facts": facts}),
    ))
}

/// Browse procedural memory (Tier 4): rules, newest first; active ones only unless `include_superseded=true`.
#[utoipa::path(
    get,
    path = "/api/memory/procedural/{user_id}",
    tag = "memory",
    params(UserPath, ProceduralQuery),
    responses(
        (status = 200, description = "One page", body = RulePage),
        (status = 422, description = "A parameter is invalid (`field` names it)", body = ErrorBody),
    ),
)]
async fn procedural(
    State(ctx): State<ApiContext>,
    Path(user_id): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Json<Value>, ApiError> {
    check_user_id("user_id", &user_id)?;
    let (limit, offset) = page(&q)?;
    let all = parse_param(&q, "include_superseded", false)?;
    let u = user_id.clone();
    let rules = ctx
        .store
        .run(move |s| s.list_rules(&u, all, limit, offset))
        .await?;
    Ok(Json(
        json!({"user_id": user_id, "tier": "procedural", "limit": limit, "offset": offset, "rules": rules}),
    ))
}

/// Rows per tier and jobs by state for one user.
#[utoipa::path(
    get,
    path = "/api/memory/stats/{user_id}",
    operation_id = "user_stats",
    tag = "memory",
    params(UserPath),
    responses(
        (status = 200, description = "The counts", body = UserStats),
        (status = 422, description = "The user id is invalid", body = ErrorBody),
    ),
)]
async fn stats(
    State(ctx): State<ApiContext>,
    Path(user_id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    check_user_id("user_id", &user_id)?;
    Ok(Json(json!(
        ctx.store.run(move |s| s.user_stats(&user_id)).await?
    )))
}

/// Forget a user in every tier, with their jobs and edit records.
#[utoipa::path(
    delete,
    path = "/api/memory/user/{user_id}",
    tag = "memory",
    params(UserPath),
    responses(
        (status = 200, description = "Rows removed, by table", body = Forgotten),
        (status = 422, description = "The user id is invalid", body = ErrorBody),
    ),
)]
async fn forget(
    State(ctx): State<ApiContext>,
    Path(user_id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    check_user_id("user_id", &user_id)?;
    let u = user_id.clone();
    let removed = ctx.store.run(move |s| s.forget_user(&u)).await?;
    ctx.recall.vectors().evict(&user_id);
    tracing::info!(user_id = %user_id, "user forgotten");
    Ok(Json(json!({"user_id": user_id, "removed": removed})))
}
