//! Memory editing: add one memory explicitly, change or delete one by id.
//!
//! - `POST /api/memory/episodic/{user_id}` `{"text", "occurred_at"?, "importance"?, "tags"?, "speaker"?}`
//! - `POST /api/memory/semantic/{user_id}` `{"subject", "predicate", "object", "fact"?, "valid_at"?, "exclusive"?}`
//! - `POST /api/memory/procedural/{user_id}` `{"statement", "kind", "topic"?}`
//! - `PATCH /api/memory/episodic/{user_id}/{id}` `{"text"?, "importance"?, "tags"?}`
//! - `PATCH /api/memory/semantic/{user_id}/{id}` `{"fact"?, "object"?}`
//! - `PATCH /api/memory/procedural/{user_id}/{id}` `{"statement"?, "kind"?}`
//! - `DELETE /api/memory/{episodic|semantic|procedural}/{user_id}/{id}`
//! - `GET /api/memory/edits/{user_id}?limit=&offset=` — the audit record, newest first.
//!
//! Answers: 201 (added) or 200 with the memory as the browse routes show it, 200
//! `{"deleted": MEMORY}`; 404 for an id that is not this user's memory of that tier; 409 when
//! the result would duplicate another memory; 422 naming the field (unknown fields too, so a
//! typo is never silently ignored); 400 for a body that is not a JSON object. Each change is
//! visible to recall at once (rows, full-text index, the vector cache) and recorded with the
//! caller's key id and the time; updates and deletes leave a tombstone so that re-reflecting
//! the turns the memory came from does not bring the old version back (`crate::store::sqlite::edits`).
//!
//! A fact's `fact` text must not state another relation than its predicate: the text, read
//! by the clause analysis as a turn its subject says ([`crate::extract::stated_predicates`]),
//! must give the fact's predicate whenever it gives any relation of that subject ("I" is the
//! subject). So `{"subject": "Ana", "predicate": "WORKS_AT", "object": "Acme", "fact": "I live
//! in Munich."}` is a 422 naming `fact` ("states LIVES_IN, not WORKS_AT"), on adding a fact and
//! on changing one (with the stored fact's subject and predicate). Text the analysis reads no
//! relation of the subject in — a predicate it does not know (`OWNS_CAR`), or text it cannot
//! read — is accepted as it is.

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Extension, Path, Query, State};
use axum::http::StatusCode;
use serde_json::{Map, Value, json};
use std::collections::HashMap;

use super::auth::Caller;
use super::schema::{
    DeletedEpisode, DeletedFact, DeletedRule, EditPage, Episode, EpisodePatchRequest, ErrorBody,
    Fact, FactPatchRequest, MemoryPath, NewEpisodeRequest, NewFactRequest, NewRuleRequest,
    PageQuery, Rule, RulePatchRequest, UserPath,
};
use super::{ApiContext, ApiError, body_bytes, check_user_id, page};
use crate::store::{
    EditRefused, EditTier, EpisodePatch, FactPatch, NewEpisode, NewFact, NewRule, RulePatch,
};

/// Longest text of an explicit memory, in bytes.
const MAX_TEXT: usize = 10_000;
/// Rule kinds (as reflection writes them).
const RULE_KINDS: [&str; 3] = ["preference", "instruction", "constraint"];

fn object(body: &[u8], allowed: &[&str]) -> Result<Map<String, Value>, ApiError> {
    let v: Value = serde_json::from_slice(body)
        .map_err(|e| ApiError::BadRequest(format!("body is not valid JSON: {e}")))?;
    let Value::Object(m) = v else {
        return Err(ApiError::BadRequest("body must be a JSON object".into()));
    };
    if let Some(k) = m.keys().find(|k| !allowed.contains(&k.as_str())) {
        return Err(ApiError::invalid(
            k.clone(),
            format!("unknown field; expected one of {}", allowed.join(", ")),
        ));
    }
    Ok(m)
}

fn text(m: &Map<String, Value>, field: &str, required: bool) -> Result<Option<String>, ApiError> {
    match m.get(field) {
        None | Some(Value::Null) if required => Err(ApiError::invalid(field, "is required")),
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.trim().is_empty() => {
            Err(ApiError::invalid(field, "must not be empty"))
        }
        Some(Value::String(s)) if s.len() > MAX_TEXT => Err(ApiError::invalid(
            field,
            format!("must be at most {MAX_TEXT} bytes"),
        )),
        Some(Value::String(s)) => Ok(Some(s.trim().to_string())),
        Some(other) => Err(ApiError::invalid(
            field,
            format!("must be a string, got {}", crate::job::json_kind(other)),
        )),
    }
}

fn time_ms(m: &Map<String, Value>, field: &str) -> Result<Option<i64>, ApiError> {
    match text(m, field, false)? {
        None => Ok(None),
        Some(s) => crate::job::parse_timestamp(&s)
            .map(|t| Some(t.timestamp_millis()))
            .ok_or_else(|| ApiError::invalid(field, format!("{s:?} is not an RFC 3339 timestamp"))),
    }
}

fn importance(m: &Map<String, Value>) -> Result<Option<f32>, ApiError> {
    match m.get("importance") {
        None | Some(Value::Null) => Ok(None),
        Some(v) => match v.as_f64() {
            Some(x) if (0.0..=1.0).contains(&x) => Ok(Some(x as f32)),
            _ => Err(ApiError::invalid(
                "importance",
                "must be a number from 0 to 1",
            )),
        },
    }
}

fn tags(m: &Map<String, Value>) -> Result<Option<Vec<String>>, ApiError> {
    match m.get("tags") {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Array(a)) if a.len() <= 50 => a
            .iter()
            .map(|t| {
                t.as_str()
                    .filter(|s| !s.is_empty() && s.len() <= 100)
                    .map(str::to_string)
            })
            .collect::<Option<Vec<_>>>()
            .map(Some)
            .ok_or_else(|| ApiError::invalid("tags", "must be strings of 1 to 100 bytes")),
        Some(_) => Err(ApiError::invalid(
            "tags",
            "must be an array of at most 50 strings",
        )),
    }
}

fn kind(m: &Map<String, Value>, required: bool) -> Result<Option<String>, ApiError> {
    let k = text(m, "kind", required)?;
    if let Some(k) = &k
        && !RULE_KINDS.contains(&k.as_str())
    {
        return Err(ApiError::invalid(
            "kind",
            "must be preference, instruction or constraint",
        ));
    }
    Ok(k)
}

fn memory_id(s: &str) -> Result<i64, ApiError> {
    s.parse::<i64>().ok().filter(|n| *n > 0).ok_or_else(|| {
        ApiError::invalid("id", format!("{s:?} is not a memory id (a whole number)"))
    })
}

/// 422 naming `fact` when the text `fact` states relations of `subject` and none of them is
/// `predicate` (see the module docs); accepted when the analysis reads none.
fn check_stated(subject: &str, predicate: &str, fact: &str) -> Result<(), ApiError> {
    let stated = crate::extract::stated_predicates(subject, fact);
    if stated.is_empty() || stated.iter().any(|p| p == predicate) {
        return Ok(());
    }
    Err(ApiError::invalid(
        "fact",
        format!("states {}, not {predicate}", stated.join(" and ")),
    ))
}

fn refused(e: EditRefused) -> ApiError {
    match e {
        EditRefused::NotFound(..) => ApiError::NotFound(e.to_string()),
        EditRefused::Conflict(_) => ApiError::Conflict(e.to_string()),
    }
}

/// `POST /api/memory/{tier}/{user_id}`.
pub async fn add(
    tier: EditTier,
    ctx: ApiContext,
    caller: Caller,
    user_id: String,
    body: Bytes,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    check_user_id("user_id", &user_id)?;
    let actor = caller.actor();
    let u = user_id.clone();
    let out = match tier {
        EditTier::Episodic => {
            let m = object(
                &body,
                &["text", "occurred_at", "importance", "tags", "speaker"],
            )?;
            let text = text(&m, "text", true)?.unwrap_or_default();
            let speaker =
                crate::api::edit::text(&m, "speaker", false)?.unwrap_or_else(|| user_id.clone());
            let e = NewEpisode {
                embedding: ctx.embed.embed_one(text.clone()).await?,
                occurred_ms: time_ms(&m, "occurred_at")?.unwrap_or_else(crate::store::now_ms),
                importance: importance(&m)?.unwrap_or(0.5),
                tags: tags(&m)?.unwrap_or_default(),
                speaker,
                text,
            };
            Ok(ctx
                .store
                .run(move |s| s.add_episode(&u, &actor, &e))
                .await?)
        }
        EditTier::Semantic => {
            let m = object(
                &body,
                &[
                    "subject",
                    "predicate",
                    "object",
                    "fact",
                    "valid_at",
                    "exclusive",
                ],
            )?;
            let subject = text(&m, "subject", true)?.unwrap_or_default();
            let object_ = text(&m, "object", true)?.unwrap_or_default();
            let predicate = text(&m, "predicate", true)?.unwrap_or_default();
            if !predicate
                .chars()
                .all(|c| c.is_ascii_alphabetic() || c == '_' || c == ' ')
                || predicate.len() > 64
            {
                return Err(ApiError::invalid(
                    "predicate",
                    "must be up to 64 letters, spaces or underscores (e.g. LIVES_IN)",
                ));
            }
            let predicate = predicate.to_uppercase().replace(' ', "_");
            let exclusive = match m.get("exclusive") {
                None | Some(Value::Null) => None,
                Some(Value::Bool(b)) => Some(*b),
                Some(_) => return Err(ApiError::invalid("exclusive", "must be true or false")),
            };
            let fact = match text(&m, "fact", false)? {
                Some(fact) => {
                    check_stated(&subject, &predicate, &fact)?;
                    fact
                }
                None => format!(
                    "{subject} {} {object_}.",
                    predicate.to_lowercase().replace('_', " ")
                ),
            };
            let f = NewFact {
                valid_ms: time_ms(&m, "valid_at")?.unwrap_or_else(crate::store::now_ms),
                subject,
                predicate,
                object: object_,
                fact,
                exclusive,
            };
            ctx.store.run(move |s| s.add_fact(&u, &actor, &f)).await?
        }
        EditTier::Procedural => {
            let m = object(&body, &["statement", "kind", "topic"])?;
            let statement = text(&m, "statement", true)?.unwrap_or_default();
            let kind = kind(&m, true)?.unwrap_or_default();
            let topic = text(&m, "topic", false)?
                .unwrap_or_else(|| statement.to_lowercase())
                .to_lowercase();
            let r = NewRule {
                embedding: ctx.embed.embed_one(statement.clone()).await?,
                kind,
                topic,
                statement,
            };
            ctx.store.run(move |s| s.add_rule(&u, &actor, &r)).await?
        }
    }
    .map_err(refused)?;
    if tier == EditTier::Episodic {
        ctx.recall.vectors().evict(&user_id);
    }
    tracing::info!(user_id = %user_id, tier = tier.as_str(), bytes = body.len(), actor = %caller.actor(), "memory added");
    Ok((StatusCode::CREATED, Json(out)))
}

/// `PATCH /api/memory/{tier}/{user_id}/{id}`.
pub async fn update(
    tier: EditTier,
    ctx: ApiContext,
    caller: Caller,
    (user_id, id): (String, String),
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    check_user_id("user_id", &user_id)?;
    let id = memory_id(&id)?;
    let actor = caller.actor();
    let u = user_id.clone();
    let nothing = || ApiError::invalid("body", "give at least one field to change");
    let out = match tier {
        EditTier::Episodic => {
            let m = object(&body, &["text", "importance", "tags"])?;
            let mut p = EpisodePatch {
                importance: importance(&m)?,
                tags: tags(&m)?,
                ..Default::default()
            };
            if let Some(t) = text(&m, "text", false)? {
                p.text = Some((t.clone(), ctx.embed.embed_one(t).await?));
            }
            if p.text.is_none() && p.importance.is_none() && p.tags.is_none() {
                return Err(nothing());
            }
            ctx.store
                .run(move |s| s.update_episode(&u, &actor, id, &p))
                .await?
        }
        EditTier::Semantic => {
            let m = object(&body, &["fact", "object"])?;
            let p = FactPatch {
                fact: text(&m, "fact", false)?,
                object: text(&m, "object", false)?,
            };
            if p.fact.is_none() && p.object.is_none() {
                return Err(nothing());
            }
            if let Some(fact) = &p.fact {
                // PATCH changes neither subject nor predicate: the stored ones are the fact's.
                let u = u.clone();
                let Some(stored) = ctx.store.run(move |s| s.fact_by_id(&u, id)).await? else {
                    return Err(refused(EditRefused::NotFound("fact", id)));
                };
                check_stated(&stored.subject, &stored.predicate, fact)?;
            }
            ctx.store
                .run(move |s| s.update_fact(&u, &actor, id, &p))
                .await?
        }
        EditTier::Procedural => {
            let m = object(&body, &["statement", "kind"])?;
            let mut p = RulePatch {
                kind: kind(&m, false)?,
                ..Default::default()
            };
            if let Some(t) = text(&m, "statement", false)? {
                p.statement = Some((t.clone(), ctx.embed.embed_one(t).await?));
            }
            if p.statement.is_none() && p.kind.is_none() {
                return Err(nothing());
            }
            ctx.store
                .run(move |s| s.update_rule(&u, &actor, id, &p))
                .await?
        }
    }
    .map_err(refused)?;
    if tier == EditTier::Episodic {
        ctx.recall.vectors().evict(&user_id);
    }
    tracing::info!(user_id = %user_id, tier = tier.as_str(), id, bytes = body.len(), actor = %caller.actor(), "memory updated");
    Ok(Json(out))
}

/// `DELETE /api/memory/{tier}/{user_id}/{id}`.
pub async fn delete(
    tier: EditTier,
    ctx: ApiContext,
    caller: Caller,
    (user_id, id): (String, String),
) -> Result<Json<Value>, ApiError> {
    check_user_id("user_id", &user_id)?;
    let id = memory_id(&id)?;
    let actor = caller.actor();
    let u = user_id.clone();
    let out = ctx
        .store
        .run(move |s| s.delete_memory(&u, &actor, tier, id))
        .await?
        .map_err(refused)?;
    if tier == EditTier::Episodic {
        ctx.recall.vectors().evict(&user_id);
    }
    tracing::info!(user_id = %user_id, tier = tier.as_str(), id, actor = %caller.actor(), "memory deleted");
    Ok(Json(out))
}

/// The audit record of a user's edits, newest first: who, when, before, after.
#[utoipa::path(
    get,
    path = "/api/memory/edits/{user_id}",
    tag = "editing",
    params(UserPath, PageQuery),
    responses(
        (status = 200, description = "One page of edits", body = EditPage),
        (status = 422, description = "A parameter is invalid (`field` names it)", body = ErrorBody),
    ),
)]
pub async fn edits(
    State(ctx): State<ApiContext>,
    Path(user_id): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Json<Value>, ApiError> {
    check_user_id("user_id", &user_id)?;
    let (limit, offset) = page(&q)?;
    let u = user_id.clone();
    let edits = ctx
        .store
        .run(move |s| s.list_edits(&u, limit, offset))
        .await?;
    Ok(Json(
        json!({"user_id": user_id, "limit": limit, "offset": offset, "edits": edits}),
    ))
}

// One handler per route and tier (axum and the OpenAPI operations need a function each).

/// Remember an episode explicitly ("remember that …").
#[utoipa::path(
    post,
    path = "/api/memory/episodic/{user_id}",
    tag = "editing",
    params(UserPath),
    request_body = NewEpisodeRequest,
    responses(
        (status = 201, description = "Added; the episode as the browse route shows it", body = Episode),
        (status = 400, description = "The body is not JSON, or not an object", body = ErrorBody),
        (status = 422, description = "A field is missing, unknown or invalid (`field` names it)", body = ErrorBody),
    ),
)]
pub async fn add_episode(
    State(ctx): State<ApiContext>,
    Extension(caller): Extension<Caller>,
    Path(user_id): Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let body = body_bytes(&ctx, body)?;
    add(EditTier::Episodic, ctx, caller, user_id, body).await
}

/// Change one episode; re-reflection never brings the old version back.
#[utoipa::path(
    patch,
    path = "/api/memory/episodic/{user_id}/{id}",
    tag = "editing",
    params(MemoryPath),
    request_body = EpisodePatchRequest,
    responses(
        (status = 200, description = "Changed; the episode as it is now", body = Episode),
        (status = 400, description = "The body is not JSON, or not an object", body = ErrorBody),
        (status = 404, description = "No episode with this id for this user", body = ErrorBody),
        (status = 422, description = "A field is unknown or invalid, or none is given (`field` names it)", body = ErrorBody),
    ),
)]
pub async fn update_episode(
    State(ctx): State<ApiContext>,
    Extension(caller): Extension<Caller>,
    Path(p): Path<(String, String)>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<Value>, ApiError> {
    let body = body_bytes(&ctx, body)?;
    update(EditTier::Episodic, ctx, caller, p, body).await
}

/// Delete one episode; re-reflection never brings it back.
#[utoipa::path(
    delete,
    path = "/api/memory/episodic/{user_id}/{id}",
    tag = "editing",
    params(MemoryPath),
    responses(
        (status = 200, description = "Deleted; the episode as it was", body = DeletedEpisode),
        (status = 404, description = "No episode with this id for this user", body = ErrorBody),
        (status = 422, description = "The user id or the memory id is invalid", body = ErrorBody),
    ),
)]
pub async fn delete_episode(
    State(ctx): State<ApiContext>,
    Extension(caller): Extension<Caller>,
    Path(p): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    delete(EditTier::Episodic, ctx, caller, p).await
}

/// Add a fact; an exclusive fact (one value at a time, like `LIVES_IN`) invalidates the slot's current value.
///
/// A `fact` text that states another relation of the subject than the predicate is refused
/// (422 naming `fact`): read as said by the subject, "I live in Munich." states `LIVES_IN`, not
/// `WORKS_AT`. Text the clause analysis reads no relation of the subject in is accepted.
#[utoipa::path(
    post,
    path = "/api/memory/semantic/{user_id}",
    tag = "editing",
    params(UserPath),
    request_body = NewFactRequest,
    responses(
        (status = 201, description = "Added; the fact as the browse route shows it", body = Fact),
        (status = 400, description = "The body is not JSON, or not an object", body = ErrorBody),
        (status = 409, description = "The same fact exists already", body = ErrorBody),
        (status = 422, description = "A field is missing, unknown or invalid (`field` names it), or the `fact` text states another relation than the predicate (`field` is `fact`)", body = ErrorBody),
    ),
)]
pub async fn add_fact(
    State(ctx): State<ApiContext>,
    Extension(caller): Extension<Caller>,
    Path(user_id): Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let body = body_bytes(&ctx, body)?;
    add(EditTier::Semantic, ctx, caller, user_id, body).await
}

/// Change one fact; re-reflection never brings the old version back.
///
/// A new `fact` text must not state another relation of the fact's subject than its
/// predicate (422 naming `fact`), as when adding one.
#[utoipa::path(
    patch,
    path = "/api/memory/semantic/{user_id}/{id}",
    tag = "editing",
    params(MemoryPath),
    request_body = FactPatchRequest,
    responses(
        (status = 200, description = "Changed; the fact as it is now", body = Fact),
        (status = 400, description = "The body is not JSON, or not an object", body = ErrorBody),
        (status = 404, description = "No fact with this id for this user", body = ErrorBody),
        (status = 409, description = "The change would duplicate another fact", body = ErrorBody),
        (status = 422, description = "A field is unknown or invalid, or none is given (`field` names it), or the `fact` text states another relation than the fact's predicate (`field` is `fact`)", body = ErrorBody),
    ),
)]
pub async fn update_fact(
    State(ctx): State<ApiContext>,
    Extension(caller): Extension<Caller>,
    Path(p): Path<(String, String)>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<Value>, ApiError> {
    let body = body_bytes(&ctx, body)?;
    update(EditTier::Semantic, ctx, caller, p, body).await
}

/// Delete one fact; re-reflection never brings it back.
#[utoipa::path(
    delete,
    path = "/api/memory/semantic/{user_id}/{id}",
    tag = "editing",
    params(MemoryPath),
    responses(
        (status = 200, description = "Deleted; the fact as it was", body = DeletedFact),
        (status = 404, description = "No fact with this id for this user", body = ErrorBody),
        (status = 422, description = "The user id or the memory id is invalid", body = ErrorBody),
    ),
)]
pub async fn delete_fact(
    State(ctx): State<ApiContext>,
    Extension(caller): Extension<Caller>,
    Path(p): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    delete(EditTier::Semantic, ctx, caller, p).await
}

/// Add a rule; it supersedes the other rules of its topic.
#[utoipa::path(
    post,
    path = "/api/memory/procedural/{user_id}",
    tag = "editing",
    params(UserPath),
    request_body = NewRuleRequest,
    responses(
        (status = 201, description = "Added; the rule as the browse route shows it", body = Rule),
        (status = 400, description = "The body is not JSON, or not an object", body = ErrorBody),
        (status = 409, description = "The same rule exists already", body = ErrorBody),
        (status = 422, description = "A field is missing, unknown or invalid (`field` names it)", body = ErrorBody),
    ),
)]
pub async fn add_rule(
    State(ctx): State<ApiContext>,
    Extension(caller): Extension<Caller>,
    Path(user_id): Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let body = body_bytes(&ctx, body)?;
    add(EditTier::Procedural, ctx, caller, user_id, body).await
}

/// Change one rule; re-reflection never brings the old version back.
#[utoipa::path(
    patch,
    path = "/api/memory/procedural/{user_id}/{id}",
    tag = "editing",
    params(MemoryPath),
    request_body = RulePatchRequest,
    responses(
        (status = 200, description = "Changed; the rule as it is now", body = Rule),
        (status = 400, description = "The body is not JSON, or not an object", body = ErrorBody),
        (status = 404, description = "No rule with this id for this user", body = ErrorBody),
        (status = 409, description = "The change would duplicate another rule", body = ErrorBody),
        (status = 422, description = "A field is unknown or invalid, or none is given (`field` names it)", body = ErrorBody),
    ),
)]
pub async fn update_rule(
    State(ctx): State<ApiContext>,
    Extension(caller): Extension<Caller>,
    Path(p): Path<(String, String)>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<Value>, ApiError> {
    let body = body_bytes(&ctx, body)?;
    update(EditTier::Procedural, ctx, caller, p, body).await
}

/// Delete one rule; re-reflection never brings it back.
#[utoipa::path(
    delete,
    path = "/api/memory/procedural/{user_id}/{id}",
    tag = "editing",
    params(MemoryPath),
    responses(
        (status = 200, description = "Deleted; the rule as it was", body = DeletedRule),
        (status = 404, description = "No rule with this id for this user", body = ErrorBody),
        (status = 422, description = "The user id or the memory id is invalid", body = ErrorBody),
    ),
)]
pub async fn delete_rule(
    State(ctx): State<ApiContext>,
    Extension(caller): Extension<Caller>,
    Path(p): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    delete(EditTier::Procedural, ctx, caller, p).await
}
