//! Export and import of one user's memory as JSON Lines (schema: docs/EXPORT.md), written once
//! for both backends: the record of each row ([`turn_line`] … [`edit_line`], read through
//! [`Columns`]) and the import's checks and record dispatch ([`import_lines`], as column
//! lists for [`super::sql::RowSql::insert_row`] and the statements of [`ImportSql`]). A backend supplies
//! its `SELECT`s and those statements (`sqlite/export.rs`, `postgres/export.rs`).
//!
//! The export holds everything needed to give the same context for the same query in
//! another store: the turns (Tier 1) with their jobs, episodes with their vectors and
//! full-text context, entities and aliases, every fact row, rules with their vectors, and
//! the edit records (so tombstones keep working after a move). Derived state — which fact
//! of a slot is valid, which rule of a topic is active — is recomputed on import from the
//! rows' own times, as reflection does.
//!
//! Import is idempotent: each record is keyed by what makes it unique in the store
//! (interaction id, job id, episode job id, entity name, fact (subject, predicate, object,
//! valid_at), rule (topic, statement), edit (tier, action, time, signature)), and a record
//! already present is skipped, so importing a file twice changes nothing.

use std::collections::{BTreeSet, HashMap};
use std::io::Write;

use anyhow::{Context, bail};
use serde_json::{Value, json};

use super::derive::{hex_vec, ms, norm_name, opt_ms, s, vec_hex};
use super::edits::{EditRecord, EditSql};
use super::model::{Columns, Counts, EditTier};
use super::sql::SqlValue::{Blob, Bool, Int, OptInt, Real, Text};
use super::tiers;
use super::{ms_to_rfc3339, now_ms};

/// The error of a driver's row ([`Columns::Error`]), as `?` turns it into `anyhow::Error`.
pub trait RowError: std::error::Error + Send + Sync + 'static {}
impl<E: std::error::Error + Send + Sync + 'static> RowError for E {}

/// Writes the export's lines to `out` and counts them by `type`.
pub struct Lines<'a> {
    out: &'a mut dyn Write,
    pub counts: Counts,
}

impl<'a> Lines<'a> {
    pub fn new(out: &'a mut dyn Write) -> Self {
        Self {
            out,
            counts: Counts::new(),
        }
    }

    /// Write one record as a line.
    pub fn line(&mut self, v: Value) -> anyhow::Result<()> {
        *self
            .counts
            .entry(v["type"].as_str().unwrap_or("?").to_string())
            .or_default() += 1;
        serde_json::to_writer(&mut *self.out, &v)?;
        self.out.write_all(b"\n")?;
        Ok(())
    }

    /// Flush the output; the lines written by type.
    pub fn finish(self) -> anyhow::Result<Counts> {
        self.out.flush()?;
        Ok(self.counts)
    }
}

/// A JSON text column as a value (`null` when unreadable or absent).
fn parsed(x: Option<String>) -> Value {
    x.and_then(|s| serde_json::from_str(&s).ok())
        .unwrap_or(Value::Null)
}

/// A turn record from a row of `SELECT t.id, t.session_id, t.user_message,
/// t.assistant_response, t.ts_ms, t.metadata, t.request_hash, t.created_ms, t.reflected,
/// j.job_id, j.priority, j.state, j.payload, j.max_retries, j.created_ms FROM turns t LEFT JOIN
/// jobs j` (times in ms since the Unix epoch; the job's columns null when it is gone).
pub fn turn_line<R: Columns>(r: &R) -> anyhow::Result<Value>
where
    R::Error: RowError,
{
    Ok(json!({
        "type": "turn", "interaction_id": r.text(0)?, "session_id": r.text(1)?,
        "user_message": r.text(2)?, "assistant_response": r.text(3)?,
        "timestamp": ms_to_rfc3339(r.int(4)?), "metadata": serde_json::from_str::<Value>(&r.text(5)?)?,
        "request_hash": r.text(6)?, "stored_at": ms_to_rfc3339(r.int(7)?),
        "reflected": r.flag(8)?,
        "job": {
            "job_id": r.opt_text(9)?, "priority": r.opt_int(10)?, "state": r.opt_text(11)?,
            "payload": parsed(r.opt_text(12)?), "max_retries": r.opt_int(13)?,
            "created_at": r.opt_int(14)?.map(ms_to_rfc3339),
        },
    }))
}

/// An episode record from a row of `SELECT job_id, speaker, text, summary, importance, tags,
/// occurred_ms, observed_ms, embedding, evidence, created_ms, context FROM episodes`.
pub fn episode_line<R: Columns>(r: &R) -> anyhow::Result<Value>
where
    R::Error: RowError,
{
    Ok(json!({
        "type": "episode", "job_id": r.text(0)?, "speaker": r.text(1)?,
        "text": r.text(2)?, "summary": r.text(3)?, "importance": r.double(4)?,
        "tags": serde_json::from_str::<Value>(&r.text(5)?)?, "occurred_at": ms_to_rfc3339(r.int(6)?),
        "observed_at": ms_to_rfc3339(r.int(7)?), "embedding": vec_hex(&r.blob(8)?),
        "evidence": serde_json::from_str::<Value>(&r.text(9)?)?, "created_at": ms_to_rfc3339(r.int(10)?),
        "context": r.text(11)?,
    }))
}

/// An entity record from a row whose first columns are `name, kind, created_ms`, with its
/// aliases (normalised names, in byte order).
pub fn entity_line<R: Columns>(r: &R, aliases: Vec<String>) -> anyhow::Result<Value>
where
    R::Error: RowError,
{
    Ok(
        json!({"type": "entity", "name": r.text(0)?, "kind": r.text(1)?,
              "aliases": aliases, "created_at": ms_to_rfc3339(r.int(2)?)}),
    )
}

/// A fact record from a row of `SELECT s.name, r.predicate, o.name, r.fact, r.exclusive,
/// r.valid_ms, r.evidence, r.job_id, r.created_ms FROM relations r` with its subject `s` and
/// object `o`.
pub fn fact_line<R: Columns>(r: &R) -> anyhow::Result<Value>
where
    R::Error: RowError,
{
    Ok(json!({
        "type": "fact", "subject": r.text(0)?, "predicate": r.text(1)?,
        "object": r.text(2)?, "fact": r.text(3)?, "exclusive": r.flag(4)?,
        "valid_at": ms_to_rfc3339(r.int(5)?), "evidence": serde_json::from_str::<Value>(&r.text(6)?)?,
        "job_id": r.text(7)?, "created_at": ms_to_rfc3339(r.int(8)?),
    }))
}

/// A rule record from a row of `SELECT kind, topic, statement, confidence, first_ms, last_ms,
/// embedding, evidence, created_ms FROM rules`.
pub fn rule_line<R: Columns>(r: &R) -> anyhow::Result<Value>
where
    R::Error: RowError,
{
    Ok(json!({
        "type": "rule", "kind": r.text(0)?, "topic": r.text(1)?,
        "statement": r.text(2)?, "confidence": r.double(3)?,
        "first_stated_at": ms_to_rfc3339(r.int(4)?), "last_stated_at": ms_to_rfc3339(r.int(5)?),
        "embedding": vec_hex(&r.blob(6)?), "evidence": serde_json::from_str::<Value>(&r.text(7)?)?,
        "created_at": ms_to_rfc3339(r.int(8)?),
    }))
}

/// An edit record from a row of `SELECT tier, memory_id, action, actor, at_ms, before, after,
/// signature, source_job_id, evidence FROM memory_edits`.
pub fn edit_line<R: Columns>(r: &R) -> anyhow::Result<Value>
where
    R::Error: RowError,
{
    Ok(json!({
        "type": "edit", "tier": r.text(0)?, "memory_id": r.int(1)?,
        "action": r.text(2)?, "actor": r.text(3)?, "at": ms_to_rfc3339(r.int(4)?),
        "before": parsed(r.opt_text(5)?), "after": parsed(r.opt_text(6)?), "signature": r.opt_text(7)?,
        "source_job_id": r.opt_text(8)?, "evidence": parsed(r.opt_text(9)?),
    }))
}

/// The import's statements beyond [`super::sql::RowSql::insert_row`], each scoped to `user`. A backend
/// implements it on its open write transaction; nothing here decides anything.
pub trait ImportSql: EditSql {
    /// Whether the user has an entity of this normalised name.
    fn entity_exists(&mut self, user: &str, norm: &str) -> anyhow::Result<bool>;
    /// Whether an edit record of the same tier, action, time, signature and memory id exists.
    fn edit_exists(&mut self, e: &EditRecord<'_>) -> anyhow::Result<bool>;
}

/// Store the records of an export read by [`super::derive::read_export`] (`lines[0]` is the
/// header) for `user`, in the caller's one transaction, skipping records already present;
/// then re-derive each touched fact slot and rule topic. Returns the records added by type.
/// Errors name the line number, the record type and the field.
pub fn import_lines(tx: &mut dyn ImportSql, lines: &[Value], user: &str) -> anyhow::Result<Counts> {
    tx.lock_user(user)?;
    let mut counts = Counts::new();
    let mut slots: BTreeSet<(i64, String)> = BTreeSet::new();
    let mut topics: BTreeSet<String> = BTreeSet::new();
    let mut entity_ids: HashMap<String, i64> = HashMap::new();
    for (i, v) in lines.iter().enumerate().skip(1) {
        let kind = v["type"].as_str().unwrap_or("");
        let added = (|| -> anyhow::Result<bool> {
            Ok(match kind {
                "turn" => {
                    let job = &v["job"];
                    let job_id = job["job_id"].as_str().unwrap_or_default();
                    let added = tx.insert_row(
                        "turns",
                        &[
                            "id",
                            "user_id",
                            "session_id",
                            "user_message",
                            "assistant_response",
                            "ts_ms",
                            "metadata",
                            "request_hash",
                            "job_id",
                            "created_ms",
                            "reflected",
                        ],
                        &[
                            Text(s(v, "interaction_id")?),
                            Text(user),
                            Text(s(v, "session_id")?),
                            Text(s(v, "user_message")?),
                            Text(s(v, "assistant_response")?),
                            Int(ms(v, "timestamp")?),
                            Text(&v["metadata"].to_string()),
                            Text(s(v, "request_hash")?),
                            Text(job_id),
                            Int(ms(v, "stored_at")?),
                            Bool(v["reflected"].as_bool().unwrap_or(false)),
                        ],
                    )?;
                    if !job_id.is_empty() {
                        let state = job["state"]
                            .as_str()
                            .filter(|st| matches!(*st, "completed" | "dead"))
                            .unwrap_or("queued");
                        let created = opt_ms(job, "created_at")?.unwrap_or_else(now_ms);
                        tx.insert_row(
                            "jobs",
                            &[
                                "job_id",
                                "user_id",
                                "priority",
                                "state",
                                "payload",
                                "attempts",
                                "max_retries",
                                "available_ms",
                                "published_ms",
                                "created_ms",
                                "updated_ms",
                                "completed_ms",
                            ],
                            &[
                                Text(job_id),
                                Text(user),
                                Int(job["priority"].as_i64().unwrap_or(1)),
                                Text(state),
                                Text(&job["payload"].to_string()),
                                Int(0),
                                Int(job["max_retries"].as_i64().unwrap_or(3)),
                                Int(created),
                                Int(created),
                                Int(created),
                                Int(created),
                                OptInt((state == "completed").then_some(created)),
                            ],
                        )?;
                    }
                    added
                }
                "episode" => tx.insert_row(
                    "episodes",
                    &[
                        "user_id",
                        "job_id",
                        "speaker",
                        "text",
                        "summary",
                        "importance",
                        "tags",
                        "occurred_ms",
                        "observed_ms",
                        "embedding",
                        "evidence",
                        "created_ms",
                        "context",
                    ],
                    &[
                        Text(user),
                        Text(s(v, "job_id")?),
                        Text(s(v, "speaker")?),
                        Text(s(v, "text")?),
                        Text(s(v, "summary")?),
                        Real(
                            v["importance"]
                                .as_f64()
                                .context("importance: expected a number")?,
                        ),
                        Text(&v["tags"].to_string()),
                        Int(ms(v, "occurred_at")?),
                        Int(ms(v, "observed_at")?),
                        Blob(&hex_vec(s(v, "embedding")?)?),
                        Text(&v["evidence"].to_string()),
                        Int(ms(v, "created_at")?),
                        Text(v["context"].as_str().unwrap_or("")),
                    ],
                )?,
                "entity" => {
                    let name = s(v, "name")?;
                    let existed = tx.entity_exists(user, &norm_name(name))?;
                    let id = tx.resolve_entity(user, name, s(v, "kind")?, ms(v, "created_at")?)?;
                    for a in v["aliases"].as_array().into_iter().flatten() {
                        let a = a.as_str().context("aliases: expected strings")?;
                        tx.add_alias(user, a, id)?;
                    }
                    entity_ids.insert(name.to_string(), id);
                    !existed
                }
                "fact" => {
                    let subject = imported_entity(tx, user, &entity_ids, s(v, "subject")?)?;
                    let object = imported_entity(tx, user, &entity_ids, s(v, "object")?)?;
                    let predicate = s(v, "predicate")?;
                    let exclusive = v["exclusive"].as_bool().unwrap_or(false);
                    if exclusive {
                        slots.insert((subject, predicate.to_string()));
                    }
                    tx.insert_row(
                        "relations",
                        &[
                            "user_id",
                            "subject_id",
                            "predicate",
                            "object_id",
                            "fact",
                            "exclusive",
                            "valid_ms",
                            "evidence",
                            "job_id",
                            "created_ms",
                        ],
                        &[
                            Text(user),
                            Int(subject),
                            Text(predicate),
                            Int(object),
                            Text(s(v, "fact")?),
                            Bool(exclusive),
                            Int(ms(v, "valid_at")?),
                            Text(&v["evidence"].to_string()),
                            Text(s(v, "job_id")?),
                            Int(ms(v, "created_at")?),
                        ],
                    )?
                }
                "rule" => {
                    let topic = s(v, "topic")?;
                    topics.insert(topic.to_string());
                    tx.insert_row(
                        "rules",
                        &[
                            "user_id",
                            "kind",
                            "topic",
                            "statement",
                            "confidence",
                            "first_ms",
                            "last_ms",
                            "embedding",
                            "evidence",
                            "created_ms",
                        ],
                        &[
                            Text(user),
                            Text(s(v, "kind")?),
                            Text(topic),
                            Text(s(v, "statement")?),
                            Real(
                                v["confidence"]
                                    .as_f64()
                                    .context("confidence: expected a number")?,
                            ),
                            Int(ms(v, "first_stated_at")?),
                            Int(ms(v, "last_stated_at")?),
                            Blob(&hex_vec(s(v, "embedding")?)?),
                            Text(&v["evidence"].to_string()),
                            Int(ms(v, "created_at")?),
                        ],
                    )?
                }
                "edit" => {
                    let opt = |f: &str| (!v[f].is_null()).then(|| v[f].to_string());
                    let tier = s(v, "tier")?;
                    let e = EditRecord {
                        user,
                        tier: EditTier::parse(tier)
                            .with_context(|| format!("tier: unknown tier {tier:?}"))?,
                        memory_id: v["memory_id"].as_i64().unwrap_or(0),
                        action: s(v, "action")?,
                        actor: s(v, "actor")?,
                        at_ms: ms(v, "at")?,
                        before: opt("before"),
                        after: opt("after"),
                        signature: v["signature"].as_str(),
                        source_job_id: v["source_job_id"].as_str(),
                        evidence: opt("evidence"),
                    };
                    let exists = tx.edit_exists(&e)?;
                    if !exists {
                        tx.record(&e)?;
                    }
                    !exists
                }
                "header" => bail!("a second header"),
                other => bail!("type: unknown record type {other:?}"),
            })
        })()
        .with_context(|| format!("line {} ({kind})", i + 1))?;
        if added {
            *counts.entry(kind.to_string()).or_default() += 1;
        }
    }
    for (sid, p) in &slots {
        tiers::rederive_slot(tx, user, *sid, p)?;
    }
    for t in &topics {
        tiers::rederive_topic(tx, user, t)?;
    }
    Ok(counts)
}

/// The entity of `name` during an import: the one its entity line resolved to, else resolved
/// now (kind `other`).
fn imported_entity(
    tx: &mut dyn ImportSql,
    user: &str,
    entity_ids: &HashMap<String, i64>,
    name: &str,
) -> anyhow::Result<i64> {
    match entity_ids.get(name) {
        Some(id) => Ok(*id),
        None => tx.resolve_entity(user, name, "other", now_ms()),
    }
}
