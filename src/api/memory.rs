//! `/api/memory/...`: recall, browsing each tier, per-user stats, forgetting a user.
//!
//! - `GET /api/memory/context/{user_id}?query=&limit=&include_invalid=&max_tokens=` — the
//!   context for the next prompt (see `crate::recall`). `limit` 1..=100, default 10.
//!   `max_tokens` (1..=1000000) trims the rendered `context` to fit, highest-ranked first
//!   (`crate::budget`: estimate and order); the answer then has `max_tokens` and `omitted`
//!   (items left out), and always `context_tokens` (the estimate for `context`).
//! - `GET /api/memory/{short-term|episodic|semantic|procedural}/{user_id}?limit=&offset=` —
//!   browse a tier, newest first. `semantic` returns `entities` and `facts`; `procedural`
//!   takes `include_superseded=true`.
//! - `GET /api/memory/stats/{user_id}` — row counts per tier and jobs by state.
//! - `DELETE /api/memory/user/{user_id}` — forget the user everywhere; reports rows removed.

use std::collections::HashMap;

use axum::Json;
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::routing::{delete, get};

use super::edit as ed;
use serde_json::{Value, json};

use super::{ApiContext, ApiError, check_user_id, page, parse_param};
use crate::recall::RecallQuery;

pub fn router() -> Router<ApiContext> {
    Router::new()
        .route("/api/memory/context/{user_id}", get(context))
        .route("/api/memory/short-term/{user_id}", get(short_term))
        .route(
            "/api/memory/episodic/{user_id}",
            get(episodic).post(ed::add_episode),
        )
        .route(
            "/api/memory/semantic/{user_id}",
            get(semantic).post(ed::add_fact),
        )
        .route(
            "/api/memory/procedural/{user_id}",
            get(procedural).post(ed::add_rule),
        )
        .route(
            "/api/memory/episodic/{user_id}/{id}",
            axum::routing::patch(ed::update_episode).delete(ed::delete_episode),
        )
        .route(
            "/api/memory/semantic/{user_id}/{id}",
            axum::routing::patch(ed::update_fact).delete(ed::delete_fact),
        )
        .route(
            "/api/memory/procedural/{user_id}/{id}",
            axum::routing::patch(ed::update_rule).delete(ed::delete_rule),
        )
        .route("/api/memory/edits/{user_id}", get(ed::edits))
        .route("/api/memory/stats/{user_id}", get(stats))
        .route("/api/memory/user/{user_id}", delete(forget))
}

async fn context(
    State(ctx): State<ApiContext>,
    Path(user_id): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Json<Value>, ApiError> {
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
    let start = std::time::Instant::now();
    let out = ctx
        .recall
        .context(RecallQuery {
            user_id,
            query,
            limit,
            include_invalid,
        })
        .await?;
    let u = out.user_id.clone();
    let summary = ctx.store.run(move |s| s.short_term_summary(&u)).await?;
    let mut fitted = max_tokens.map(|n| crate::budget::fit(&out, n));
    let mut out = out;
    if let Some(sm) = summary.as_ref().filter(|s| !s.summary.is_empty()) {
        // The summary of the turns folded out of the Tier 1 window goes just before the
        // recent conversation, within the budget if there is one.
        let block = format!(
            "## Earlier conversation (summary of {} older turns)\n{}\n\n",
            sm.folded_turns,
            sm.summary
                .lines()
                .map(|l| format!("- {l}"))
                .collect::<Vec<_>>()
                .join("\n")
        );
        let insert = |text: &str| -> String {
            match text.find("## Recent conversation") {
                Some(i) => format!("{}{block}{}", &text[..i], &text[i..]),
                None if text.is_empty() || text.ends_with("\n\n") => format!("{text}{block}"),
                None => format!("{text}\n{block}"),
            }
        };
        match (&mut fitted, max_tokens) {
            (Some(f), Some(n)) => {
                let with = insert(&f.context);
                let t = crate::budget::estimate_tokens(&with);
                if t <= n {
                    f.context = with;
                    f.tokens = t;
                } else {
                    f.omitted += 1;
                }
            }
            _ => out.context = insert(&out.context),
        }
    }
    metrics::histogram!("reflector_recall_seconds").record(start.elapsed().as_secs_f64());
    let mut v = serde_json::to_value(&out).map_err(anyhow::Error::from)?;
    match fitted {
        Some(f) => {
            v["context"] = json!(f.context);
            v["context_tokens"] = json!(f.tokens);
            v["max_tokens"] = json!(max_tokens);
            v["omitted"] = json!(f.omitted);
        }
        None => v["context_tokens"] = json!(crate::budget::estimate_tokens(&out.context)),
    }
    v["short_term_summary"] = json!(summary);
    Ok(Json(v))
}

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

async fn stats(
    State(ctx): State<ApiContext>,
    Path(user_id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    check_user_id("user_id", &user_id)?;
    Ok(Json(ctx.store.run(move |s| s.user_stats(&user_id)).await?))
}

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
