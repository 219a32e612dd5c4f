//! SQLite: memory editing: explicit adds, updates and deletes of one episode, fact or rule, each in
//! one transaction with its audit record (`memory_edits`: who, when, before, after), and the
//! tombstones that keep re-reflection from writing back what a user changed or deleted.
//!
//! Every statement is scoped to the user: an id of another user's memory is "not found".
//! A tombstone names a memory as reflection would write it again (see migration 009) with the
//! job that wrote it and that memory's evidence ids; the tier commits skip a memory whose
//! signature is tombstoned for the job being reflected or for any of its evidence ids. A NEW
//! turn saying the same thing again is new evidence and is remembered again.

use anyhow::Context;
use rusqlite::{Connection, OptionalExtension, Transaction, params};
use serde_json::{Value, json};

use crate::store::derive::*;
use crate::store::*;
use crate::store::{EPISODE_SELECT, FACT_SELECT};
use crate::store::{SqliteStore, ms_to_rfc3339, now_ms, vec_to_blob};

use super::reads::*;
use super::tiers::*;

#[allow(clippy::too_many_arguments)]
pub(super) fn record(
    tx: &Transaction,
    user: &str,
    tier: EditTier,
    id: i64,
    action: &str,
    actor: &str,
    before: Option<&Value>,
    after: Option<&Value>,
    tombstone: Option<(&str, &str, &[String])>,
) -> anyhow::Result<i64> {
    let (sig, job, ev) = match tombstone {
        Some((s, j, e)) => (
            Some(s),
            Some(j).filter(|j| !j.is_empty()),
            Some(serde_json::to_string(e)?),
        ),
        None => (None, None, None),
    };
    tx.prepare_cached(
        "INSERT INTO memory_edits (user_id, tier, memory_id, action, actor, at_ms, before, after, signature, source_job_id, evidence)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
    )?
    .execute(params![
        user,
        tier.as_str(),
        id,
        action,
        actor,
        now_ms(),
        before.map(Value::to_string),
        after.map(Value::to_string),
        sig,
        job,
        ev
    ])?;
    Ok(tx.last_insert_rowid())
}

pub(super) fn episode_json(
    tx: &Connection,
    user: &str,
    id: i64,
) -> anyhow::Result<Option<(Value, String)>> {
    let row = tx
        .prepare_cached(&format!("{EPISODE_SELECT} WHERE user_id = ?1 AND id = ?2"))?
        .query_row(params![user, id], episode_from_row)
        .optional()?;
    Ok(match row {
        Some(e) => Some((serde_json::to_value(&e)?, e.job_id)),
        None => None,
    })
}

/// A fact as JSON, with its job, its signature and its entities.
pub(super) struct FactInfo {
    json: Value,
    job_id: String,
    signature: String,
    subject_id: i64,
    predicate: String,
    exclusive: bool,
    evidence: Vec<String>,
}

pub(super) fn fact_info(tx: &Connection, user: &str, id: i64) -> anyhow::Result<Option<FactInfo>> {
    let row = tx
        .prepare_cached(&format!(
            "{FACT_SELECT} WHERE r.user_id = ?1 AND r.id = ?2 AND r.merged_into IS NULL"
        ))?
        .query_row(params![user, id], fact_from_row)
        .optional()?;
    let Some(f) = row else { return Ok(None) };
    let (job_id, subject_id, exclusive, s_norm, o_norm): (String, i64, bool, String, String) = tx
        .query_row(
            "SELECT r.job_id, r.subject_id, r.exclusive, s.norm_name, o.norm_name
             FROM relations r JOIN entities s ON s.id = r.subject_id JOIN entities o ON o.id = r.object_id
             WHERE r.id = ?1",
            [id],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)),
        )?;
    // A restated fact's rows (merged into this one) carry evidence of the same fact.
    let mut evidence: Vec<String> = f.evidence.clone();
    let mut stmt = tx.prepare_cached("SELECT evidence FROM relations WHERE merged_into = ?1")?;
    for ev in stmt.query_map([id], |r| r.get::<_, String>(0))? {
        let ev: Vec<String> = serde_json::from_str(&ev?).unwrap_or_default();
        evidence.extend(ev);
    }
    evidence.sort();
    evidence.dedup();
    Ok(Some(FactInfo {
        signature: fact_signature(&s_norm, &f.predicate, &o_norm),
        predicate: f.predicate.clone(),
        json: serde_json::to_value(&f)?,
        job_id,
        subject_id,
        exclusive,
        evidence,
    }))
}

/// A rule as JSON, with its topic, statement and evidence.
pub(super) struct RuleInfo {
    json: Value,
    topic: String,
    statement: String,
    evidence: Vec<String>,
}

pub(super) fn rule_info(tx: &Connection, user: &str, id: i64) -> anyhow::Result<Option<RuleInfo>> {
    tx.prepare_cached(
        "SELECT id, kind, topic, statement, confidence, last_ms, superseded_by, evidence
         FROM rules WHERE user_id = ?1 AND id = ?2",
    )?
    .query_row(params![user, id], |r| {
        let ev: String = r.get(7)?;
        let evidence: Vec<String> = serde_json::from_str(&ev).unwrap_or_default();
        let topic: String = r.get(2)?;
        let statement: String = r.get(3)?;
        Ok(RuleInfo {
            json: json!({
                "id": r.get::<_, i64>(0)?, "kind": r.get::<_, String>(1)?, "topic": topic,
                "statement": statement, "confidence": r.get::<_, f64>(4)?,
                "stated_at": ms_to_rfc3339(r.get(5)?), "superseded_by": r.get::<_, Option<i64>>(6)?,
                "evidence": evidence,
            }),
            topic,
            statement,
            evidence,
        })
    })
    .optional()
    .map_err(Into::into)
}

impl SqliteStore {
    /// Add an episode explicitly. Its job id is `manual:<uuid>` (no turn wrote it) and its
    /// evidence `manual:<edit id>`. Returns the episode.
    pub fn add_episode(&self, user: &str, actor: &str, e: &NewEpisode) -> anyhow::Result<Value> {
        self.write(|tx| {
            let job_id = format!("manual:{}", uuid::Uuid::now_v7());
            let now = now_ms();
            tx.execute(
                "INSERT INTO episodes (user_id, job_id, speaker, text, summary, importance, tags, occurred_ms,
                                       observed_ms, embedding, evidence, created_ms, context)
                 VALUES (?1, ?2, ?3, ?4, ?4, ?5, ?6, ?7, ?8, ?9, '[]', ?8, '')",
                params![user, job_id, e.speaker, e.text, e.importance, serde_json::to_string(&e.tags)?,
                        e.occurred_ms, now, vec_to_blob(&e.embedding)],
            )?;
            let id = tx.last_insert_rowid();
            let edit = record(tx, user, EditTier::Episodic, id, "add", actor, None, None, None)?;
            tx.execute(
                "UPDATE episodes SET evidence = ?2 WHERE id = ?1",
                params![id, json!([format!("manual:{edit}")]).to_string()],
            )?;
            let (after, _) = episode_json(tx, user, id)?.context("episode just added")?;
            tx.execute("UPDATE memory_edits SET after = ?2 WHERE id = ?1", params![edit, after.to_string()])?;
            Ok(after)
        })
    }

    /// Add a fact explicitly (entities resolved like reflection's, aliases included).
    pub fn add_fact(
        &self,
        user: &str,
        actor: &str,
        f: &NewFact,
    ) -> anyhow::Result<Result<Value, EditRefused>> {
        self.write(|tx| {
            let now = now_ms();
            let s = resolve_entity(tx, user, &f.subject, "other", now)?;
            let o = resolve_entity(tx, user, &f.object, "other", now)?;
            let exclusive = match f.exclusive {
                Some(x) => x,
                None => tx
                    .query_row(
                        "SELECT max(exclusive) FROM relations WHERE user_id = ?1 AND subject_id = ?2 AND predicate = ?3",
                        params![user, s, f.predicate],
                        |r| r.get::<_, Option<bool>>(0),
                    )?
                    .unwrap_or(false),
            };
            let n = tx.execute(
                "INSERT OR IGNORE INTO relations (user_id, subject_id, predicate, object_id, fact, exclusive,
                                                  valid_ms, evidence, job_id, created_ms)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, '[]', ?8, ?9)",
                params![user, s, f.predicate, o, f.fact, exclusive, f.valid_ms,
                        format!("manual:{}", uuid::Uuid::now_v7()), now],
            )?;
            if n == 0 {
                return Ok(Err(EditRefused::Conflict(
                    "the same fact (subject, predicate, object, valid_at) is already stored".into(),
                )));
            }
            let id = tx.last_insert_rowid();
            if exclusive {
                rederive_slot(tx, user, s, &f.predicate)?;
            }
            // A restatement of the slot's current fact (same object, later valid_at) is merged
            // into it by the rederivation: the fact the user sees, and the edit, are that one.
            let shown: i64 = tx.query_row(
                "SELECT coalesce(merged_into, id) FROM relations WHERE id = ?1",
                [id],
                |r| r.get(0),
            )?;
            let edit = record(tx, user, EditTier::Semantic, shown, "add", actor, None, None, None)?;
            tx.execute(
                "UPDATE relations SET evidence = ?2 WHERE id = ?1",
                params![id, json!([format!("manual:{edit}")]).to_string()],
            )?;
            let info = fact_info(tx, user, shown)?.context("fact just added")?;
            tx.execute("UPDATE memory_edits SET after = ?2 WHERE id = ?1", params![edit, info.json.to_string()])?;
            Ok(Ok(info.json))
        })
    }

    /// Add a rule explicitly; it becomes the active rule of its topic (stated now).
    pub fn add_rule(
        &self,
        user: &str,
        actor: &str,
        r: &NewRule,
    ) -> anyhow::Result<Result<Value, EditRefused>> {
        self.write(|tx| {
            let now = now_ms();
            let n = tx.execute(
                "INSERT OR IGNORE INTO rules (user_id, kind, topic, statement, confidence, first_ms, last_ms, embedding, evidence, created_ms)
                 VALUES (?1, ?2, ?3, ?4, 1.0, ?5, ?5, ?6, '[]', ?5)",
                params![user, r.kind, r.topic, r.statement, now, vec_to_blob(&r.embedding)],
            )?;
            if n == 0 {
                return Ok(Err(EditRefused::Conflict(
                    "the same rule (topic, statement) is already stored".into(),
                )));
            }
            let id = tx.last_insert_rowid();
            rederive_topic(tx, user, &r.topic)?;
            let edit = record(tx, user, EditTier::Procedural, id, "add", actor, None, None, None)?;
            tx.execute(
                "UPDATE rules SET evidence = ?2 WHERE id = ?1",
                params![id, json!([format!("manual:{edit}")]).to_string()],
            )?;
            let info = rule_info(tx, user, id)?.context("rule just added")?;
            tx.execute("UPDATE memory_edits SET after = ?2 WHERE id = ?1", params![edit, info.json.to_string()])?;
            Ok(Ok(info.json))
        })
    }

    /// Change an episode. Its job is tombstoned: re-reflecting the turn keeps this version.
    pub fn update_episode(
        &self,
        user: &str,
        actor: &str,
        id: i64,
        p: &EpisodePatch,
    ) -> anyhow::Result<Result<Value, EditRefused>> {
        self.write(|tx| {
            let Some((before, job_id)) = episode_json(tx, user, id)? else {
                return Ok(Err(EditRefused::NotFound("episode", id)));
            };
            if let Some((text, emb)) = &p.text {
                tx.execute(
                    "UPDATE episodes SET text = ?3, summary = ?3, embedding = ?4 WHERE user_id = ?1 AND id = ?2",
                    params![user, id, text, vec_to_blob(emb)],
                )?;
            }
            if let Some(i) = p.importance {
                tx.execute("UPDATE episodes SET importance = ?3 WHERE user_id = ?1 AND id = ?2", params![user, id, i])?;
            }
            if let Some(t) = &p.tags {
                tx.execute(
                    "UPDATE episodes SET tags = ?3 WHERE user_id = ?1 AND id = ?2",
                    params![user, id, serde_json::to_string(t)?],
                )?;
            }
            let (after, _) = episode_json(tx, user, id)?.context("episode just updated")?;
            let ev: Vec<String> = serde_json::from_value(before["evidence"].clone()).unwrap_or_default();
            record(tx, user, EditTier::Episodic, id, "update", actor, Some(&before), Some(&after),
                   Some((&episode_signature(&job_id), &job_id, &ev)))?;
            Ok(Ok(after))
        })
    }

    /// Change a fact's sentence and/or object. The fact as it was is tombstoned, so
    /// re-reflecting its turns does not bring the old version back.
    pub fn update_fact(
        &self,
        user: &str,
        actor: &str,
        id: i64,
        p: &FactPatch,
    ) -> anyhow::Result<Result<Value, EditRefused>> {
        self.write(|tx| {
            let Some(before) = fact_info(tx, user, id)? else {
                return Ok(Err(EditRefused::NotFound("fact", id)));
            };
            if let Some(object) = &p.object {
                let o = resolve_entity(tx, user, object, "other", now_ms())?;
                let clash: bool = tx.query_row(
                    "SELECT EXISTS (SELECT 1 FROM relations r JOIN relations x ON x.id = ?2
                     WHERE r.user_id = ?1 AND r.id != x.id AND r.subject_id = x.subject_id
                       AND r.predicate = x.predicate AND r.object_id = ?3 AND r.valid_ms = x.valid_ms)",
                    params![user, id, o],
                    |r| r.get(0),
                )?;
                if clash {
                    return Ok(Err(EditRefused::Conflict(
                        "another fact already says that (same subject, predicate, object and valid_at)".into(),
                    )));
                }
                // The rows merged into this one are restatements of the old object: they go
                // with it (their evidence is tombstoned below).
                tx.execute("DELETE FROM relations WHERE user_id = ?1 AND merged_into = ?2", params![user, id])?;
                tx.execute("UPDATE relations SET object_id = ?3 WHERE user_id = ?1 AND id = ?2", params![user, id, o])?;
            }
            if let Some(fact) = &p.fact {
                tx.execute("UPDATE relations SET fact = ?3 WHERE user_id = ?1 AND id = ?2", params![user, id, fact])?;
            }
            if before.exclusive {
                rederive_slot(tx, user, before.subject_id, &before.predicate)?;
            }
            let after = fact_info(tx, user, id)?.context("fact just updated")?;
            record(tx, user, EditTier::Semantic, id, "update", actor, Some(&before.json), Some(&after.json),
                   Some((&before.signature, &before.job_id, &before.evidence)))?;
            Ok(Ok(after.json))
        })
    }

    /// Change a rule's statement and/or kind. The old statement is tombstoned.
    pub fn update_rule(
        &self,
        user: &str,
        actor: &str,
        id: i64,
        p: &RulePatch,
    ) -> anyhow::Result<Result<Value, EditRefused>> {
        self.write(|tx| {
            let Some(before) = rule_info(tx, user, id)? else {
                return Ok(Err(EditRefused::NotFound("rule", id)));
            };
            if let Some((statement, emb)) = &p.statement {
                let clash: bool = tx.query_row(
                    "SELECT EXISTS (SELECT 1 FROM rules WHERE user_id = ?1 AND topic = ?2 AND statement = ?3 AND id != ?4)",
                    params![user, before.topic, statement, id],
                    |r| r.get(0),
                )?;
                if clash {
                    return Ok(Err(EditRefused::Conflict(
                        "another rule of the same topic already says that".into(),
                    )));
                }
                tx.execute(
                    "UPDATE rules SET statement = ?3, embedding = ?4 WHERE user_id = ?1 AND id = ?2",
                    params![user, id, statement, vec_to_blob(emb)],
                )?;
            }
            if let Some(kind) = &p.kind {
                tx.execute("UPDATE rules SET kind = ?3 WHERE user_id = ?1 AND id = ?2", params![user, id, kind])?;
            }
            let after = rule_info(tx, user, id)?.context("rule just updated")?;
            // Rules have no job of their own (one rule, many turns): matched by evidence.
            let job = String::new();
            record(tx, user, EditTier::Procedural, id, "update", actor, Some(&before.json), Some(&after.json),
                   Some((&rule_signature(&before.topic, &before.statement), &job, &before.evidence)))?;
            Ok(Ok(after.json))
        })
    }

    /// Delete one episode, fact or rule, and tombstone it.
    pub fn delete_memory(
        &self,
        user: &str,
        actor: &str,
        tier: EditTier,
        id: i64,
    ) -> anyhow::Result<Result<Value, EditRefused>> {
        self.write(|tx| match tier {
            EditTier::Episodic => {
                let Some((before, job_id)) = episode_json(tx, user, id)? else {
                    return Ok(Err(EditRefused::NotFound("episode", id)));
                };
                tx.execute("DELETE FROM episodes WHERE user_id = ?1 AND id = ?2", params![user, id])?;
                let ev: Vec<String> = serde_json::from_value(before["evidence"].clone()).unwrap_or_default();
                record(tx, user, tier, id, "delete", actor, Some(&before), None,
                       Some((&episode_signature(&job_id), &job_id, &ev)))?;
                Ok(Ok(json!({"deleted": before})))
            }
            EditTier::Semantic => {
                let Some(before) = fact_info(tx, user, id)? else {
                    return Ok(Err(EditRefused::NotFound("fact", id)));
                };
                tx.execute(
                    "DELETE FROM relations WHERE user_id = ?1 AND (id = ?2 OR merged_into = ?2)",
                    params![user, id],
                )?;
                if before.exclusive {
                    rederive_slot(tx, user, before.subject_id, &before.predicate)?;
                }
                record(tx, user, tier, id, "delete", actor, Some(&before.json), None,
                       Some((&before.signature, &before.job_id, &before.evidence)))?;
                Ok(Ok(json!({"deleted": before.json})))
            }
            EditTier::Procedural => {
                let Some(before) = rule_info(tx, user, id)? else {
                    return Ok(Err(EditRefused::NotFound("rule", id)));
                };
                tx.execute("DELETE FROM rules WHERE user_id = ?1 AND id = ?2", params![user, id])?;
                tx.execute(
                    "UPDATE rules SET superseded_by = NULL WHERE user_id = ?1 AND superseded_by = ?2",
                    params![user, id],
                )?;
                rederive_topic(tx, user, &before.topic)?;
                let job = String::new();
                record(tx, user, tier, id, "delete", actor, Some(&before.json), None,
                       Some((&rule_signature(&before.topic, &before.statement), &job, &before.evidence)))?;
                Ok(Ok(json!({"deleted": before.json})))
            }
        })
    }

    /// The user's edits, newest first.
    pub fn list_edits(
        &self,
        user: &str,
        limit: usize,
        offset: usize,
    ) -> anyhow::Result<Vec<Value>> {
        self.read(|c| {
            let mut stmt = c.prepare_cached(
                "SELECT id, tier, memory_id, action, actor, at_ms, before, after FROM memory_edits
                 WHERE user_id = ?1 ORDER BY id DESC LIMIT ?2 OFFSET ?3",
            )?;
            let rows = stmt.query_map(params![user, limit as i64, offset as i64], |r| {
                let parse =
                    |s: Option<String>| s.and_then(|s| serde_json::from_str::<Value>(&s).ok());
                Ok(json!({
                    "edit_id": r.get::<_, i64>(0)?, "tier": r.get::<_, String>(1)?,
                    "memory_id": r.get::<_, i64>(2)?, "action": r.get::<_, String>(3)?,
                    "actor": r.get::<_, String>(4)?, "at": ms_to_rfc3339(r.get(5)?),
                    "before": parse(r.get(6)?), "after": parse(r.get(7)?),
                }))
            })?;
            Ok(rows.collect::<Result<_, _>>()?)
        })
    }

    /// Re-reflection of one job: forget its tier records and queue it again, so the
    /// processors run over its stored turn once more. Idempotent: every tier commit replaces
    /// or de-duplicates what the job wrote before, and tombstones keep user edits. Returns
    /// false for an unknown job or one already waiting or in progress.
    pub fn rereflect_job(&self, job_id: &str) -> anyhow::Result<bool> {
        self.write(|tx| {
            let state: Option<String> = tx
                .query_row("SELECT state FROM jobs WHERE job_id = ?1", [job_id], |r| r.get(0))
                .optional()?;
            if !matches!(state.as_deref(), Some("completed" | "dead")) {
                return Ok(false);
            }
            tx.execute("DELETE FROM job_tiers WHERE job_id = ?1", [job_id])?;
            let now = now_ms();
            tx.execute(
                "UPDATE jobs SET state = 'queued', attempts = 0, available_ms = ?2, lease_owner = NULL,
                     lease_expires_ms = NULL, last_error = NULL, dead_reason = NULL, completed_ms = NULL, updated_ms = ?2
                 WHERE job_id = ?1",
                params![job_id, now],
            )?;
            Ok(true)
        })
    }
}
