//! PostgreSQL: memory editing ([`crate::store::edits`]), and, in `export.rs` and
//! `rebuild.rs`, export, import and re-embedding.
//! Each method behaves as the SQLite inherent method of the same name, whose documentation
//! is the reference; this file only notes where PostgreSQL needs something different:
//!
//! - Every edit and the import take the per-user advisory lock ([`super::lock_user`]) before
//!   reading anything, like the tier commits, so an edit and a commit of the same user apply
//!   one after the other (entity resolution, slot and topic re-derivation see each other).
//!   The write closures are re-runnable: [`PgStore::write`] retries them from the start.
//! - `INSERT OR IGNORE` is `ON CONFLICT DO NOTHING` (`RETURNING id` tells whether a row was
//!   inserted). An identity value is consumed even when the insert is skipped, so ids may
//!   have gaps that SQLite's would not: nothing depends on ids being dense.
//! - Text is ordered `COLLATE "C"` wherever the order decides something (slot and topic
//!   re-derivation, export order, alias lists): byte order, as SQLite's BINARY collation,
//!   whatever the database's locale.
//! - With pgvector, an episode's `embedding_v` is written with its `embedding`.
//! - The export reads one snapshot (a read-only REPEATABLE READ transaction) and streams rows
//!   through portals, so a large user's export needs no more memory than a batch of rows.
//!
//! The private helpers are ports of those in `edits.rs` and `sqlite.rs`, prefixed `pg_`.

use ::postgres::Transaction;
use anyhow::Context;
use serde_json::{Value, json};

use crate::store::EPISODE_SELECT;
use crate::store::derive::*;
use crate::store::*;
use crate::store::{FactRow, ms_to_rfc3339, now_ms, vec_to_blob};

use super::reads::episode_from_row;
use super::tiers::*;
use super::*;

/// Insert an audit record (and tombstone); returns its id. Port of `edits::record`.
#[allow(clippy::too_many_arguments)]
pub(super) fn pg_record(
    tx: &mut Transaction<'_>,
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
    Ok(tx
        .query_one(
            "INSERT INTO memory_edits (user_id, tier, memory_id, action, actor, at_ms, before, after, signature, source_job_id, evidence)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) RETURNING id",
            &[
                &user,
                &tier.as_str(),
                &id,
                &action,
                &actor,
                &now_ms(),
                &before.map(Value::to_string),
                &after.map(Value::to_string),
                &sig,
                &job,
                &ev,
            ],
        )?
        .try_get(0)?)
}

/// The user's episode `id` as JSON, with its job id. Port of `edits::episode_json`.
pub(super) fn pg_episode_json(
    tx: &mut Transaction<'_>,
    user: &str,
    id: i64,
) -> anyhow::Result<Option<(Value, String)>> {
    let row = tx.query_opt(
        &format!("{EPISODE_SELECT} WHERE user_id = $1 AND id = $2"),
        &[&user, &id],
    )?;
    Ok(match row {
        Some(r) => {
            let e = episode_from_row(&r)?;
            Some((serde_json::to_value(&e)?, e.job_id))
        }
        None => None,
    })
}

/// A fact as JSON, with its job, its signature and its entities (as `edits::FactInfo`).
pub(super) struct PgFactInfo {
    json: Value,
    job_id: String,
    signature: String,
    subject_id: i64,
    predicate: String,
    exclusive: bool,
    evidence: Vec<String>,
}

/// The user's fact `id` (not a restatement merged into another). Port of `edits::fact_info`.
pub(super) fn pg_fact_info(
    tx: &mut Transaction<'_>,
    user: &str,
    id: i64,
) -> anyhow::Result<Option<PgFactInfo>> {
    let Some(r) = tx.query_opt(
        "SELECT r.id, s.name, r.predicate, o.name, r.fact, r.valid_ms, r.invalid_ms, r.evidence,
                r.job_id, r.subject_id, r.exclusive, s.norm_name, o.norm_name
         FROM relations r JOIN entities s ON s.id = r.subject_id JOIN entities o ON o.id = r.object_id
         WHERE r.user_id = $1 AND r.id = $2 AND r.merged_into IS NULL",
        &[&user, &id],
    )?
    else {
        return Ok(None);
    };
    let valid: i64 = r.try_get(5)?;
    let invalid: Option<i64> = r.try_get(6)?;
    let ev: String = r.try_get(7)?;
    let f = FactRow {
        id: r.try_get(0)?,
        subject: r.try_get(1)?,
        predicate: r.try_get(2)?,
        object: r.try_get(3)?,
        fact: r.try_get(4)?,
        valid_at: ms_to_rfc3339(valid),
        invalid_at: invalid.map(ms_to_rfc3339),
        valid_ms: valid,
        evidence: serde_json::from_str(&ev).unwrap_or_default(),
    };
    let s_norm: String = r.try_get(11)?;
    let o_norm: String = r.try_get(12)?;
    // A restated fact's rows (merged into this one) carry evidence of the same fact.
    let mut evidence: Vec<String> = f.evidence.clone();
    for m in tx.query(
        "SELECT evidence FROM relations WHERE user_id = $1 AND merged_into = $2",
        &[&user, &id],
    )? {
        let ev: Vec<String> = serde_json::from_str(m.try_get::<_, &str>(0)?).unwrap_or_default();
        evidence.extend(ev);
    }
    evidence.sort();
    evidence.dedup();
    Ok(Some(PgFactInfo {
        signature: fact_signature(&s_norm, &f.predicate, &o_norm),
        predicate: f.predicate.clone(),
        json: serde_json::to_value(&f)?,
        job_id: r.try_get(8)?,
        subject_id: r.try_get(9)?,
        exclusive: r.try_get(10)?,
        evidence,
    }))
}

/// A rule as JSON, with its topic, statement and evidence (as `edits::RuleInfo`).
pub(super) struct PgRuleInfo {
    json: Value,
    topic: String,
    statement: String,
    evidence: Vec<String>,
}

/// The user's rule `id`. Port of `edits::rule_info`.
pub(super) fn pg_rule_info(
    tx: &mut Transaction<'_>,
    user: &str,
    id: i64,
) -> anyhow::Result<Option<PgRuleInfo>> {
    let Some(r) = tx.query_opt(
        "SELECT id, kind, topic, statement, confidence, last_ms, superseded_by, evidence
         FROM rules WHERE user_id = $1 AND id = $2",
        &[&user, &id],
    )?
    else {
        return Ok(None);
    };
    let evidence: Vec<String> = serde_json::from_str(r.try_get::<_, &str>(7)?).unwrap_or_default();
    let topic: String = r.try_get(2)?;
    let statement: String = r.try_get(3)?;
    Ok(Some(PgRuleInfo {
        json: json!({
            "id": r.try_get::<_, i64>(0)?, "kind": r.try_get::<_, String>(1)?, "topic": topic,
            "statement": statement, "confidence": f64::from(r.try_get::<_, f32>(4)?),
            "stated_at": ms_to_rfc3339(r.try_get(5)?), "superseded_by": r.try_get::<_, Option<i64>>(6)?,
            "evidence": evidence,
        }),
        topic,
        statement,
        evidence,
    }))
}

impl PgStore {
    /// Add an episode explicitly: see [`crate::store::SqliteStore::add_episode`].
    pub fn add_episode(&self, user: &str, actor: &str, e: &NewEpisode) -> anyhow::Result<Value> {
        let tags = serde_json::to_string(&e.tags)?;
        let blob = vec_to_blob(&e.embedding);
        let vector = vector_param(&e.embedding);
        let (vcol, vval) = self.vector_column(10);
        let insert = format!(
            "INSERT INTO episodes (user_id, job_id, speaker, text, summary, importance, tags, occurred_ms,
                                   observed_ms, embedding, evidence, created_ms, context{vcol})
             VALUES ($1, $2, $3, $4, $4, $5, $6, $7, $8, $9, '[]', $8, ''{vval}) RETURNING id"
        );
        self.write(|tx| {
            super::lock_user(tx, user)?;
            let job_id = format!("manual:{}", uuid::Uuid::now_v7());
            let now = now_ms();
            let mut params: Vec<Param<'_>> = vec![
                &user,
                &job_id,
                &e.speaker,
                &e.text,
                &e.importance,
                &tags,
                &e.occurred_ms,
                &now,
                &blob,
            ];
            if self.vectors == VectorMode::Pgvector {
                params.push(&vector);
            }
            let id: i64 = tx.query_one(&insert, &params)?.try_get(0)?;
            let edit = pg_record(
                tx,
                user,
                EditTier::Episodic,
                id,
                "add",
                actor,
                None,
                None,
                None,
            )?;
            tx.execute(
                "UPDATE episodes SET evidence = $3 WHERE user_id = $1 AND id = $2",
                &[&user, &id, &json!([format!("manual:{edit}")]).to_string()],
            )?;
            let (after, _) = pg_episode_json(tx, user, id)?.context("episode just added")?;
            tx.execute(
                "UPDATE memory_edits SET after = $3 WHERE user_id = $1 AND id = $2",
                &[&user, &edit, &after.to_string()],
            )?;
            Ok(after)
        })
    }

    /// Add a fact explicitly: see [`crate::store::SqliteStore::add_fact`].
    pub fn add_fact(
        &self,
        user: &str,
        actor: &str,
        f: &NewFact,
    ) -> anyhow::Result<Result<Value, EditRefused>> {
        self.write(|tx| {
            super::lock_user(tx, user)?;
            let now = now_ms();
            let s = resolve_entity(tx, user, &f.subject, "other", now)?;
            let o = resolve_entity(tx, user, &f.object, "other", now)?;
            let exclusive = match f.exclusive {
                Some(x) => x,
                None => tx
                    .query_one(
                        "SELECT bool_or(exclusive) FROM relations WHERE user_id = $1 AND subject_id = $2 AND predicate = $3",
                        &[&user, &s, &f.predicate],
                    )?
                    .try_get::<_, Option<bool>>(0)?
                    .unwrap_or(false),
            };
            let inserted = tx.query_opt(
                "INSERT INTO relations (user_id, subject_id, predicate, object_id, fact, exclusive,
                                        valid_ms, evidence, job_id, created_ms)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, '[]', $8, $9)
                 ON CONFLICT DO NOTHING RETURNING id",
                &[&user, &s, &f.predicate, &o, &f.fact, &exclusive, &f.valid_ms,
                  &format!("manual:{}", uuid::Uuid::now_v7()), &now],
            )?;
            let Some(row) = inserted else {
                return Ok(Err(EditRefused::Conflict(
                    "the same fact (subject, predicate, object, valid_at) is already stored".into(),
                )));
            };
            let id: i64 = row.try_get(0)?;
            if exclusive {
                rederive_slot(tx, user, s, &f.predicate)?;
            }
            // A restatement of the slot's current fact (same object, later valid_at) is merged
            // into it by the rederivation: the fact the user sees, and the edit, are that one.
            let shown: i64 = tx
                .query_one(
                    "SELECT coalesce(merged_into, id) FROM relations WHERE user_id = $1 AND id = $2",
                    &[&user, &id],
                )?
                .try_get(0)?;
            let edit = pg_record(tx, user, EditTier::Semantic, shown, "add", actor, None, None, None)?;
            tx.execute(
                "UPDATE relations SET evidence = $3 WHERE user_id = $1 AND id = $2",
                &[&user, &id, &json!([format!("manual:{edit}")]).to_string()],
            )?;
            let info = pg_fact_info(tx, user, shown)?.context("fact just added")?;
            tx.execute(
                "UPDATE memory_edits SET after = $3 WHERE user_id = $1 AND id = $2",
                &[&user, &edit, &info.json.to_string()],
            )?;
            Ok(Ok(info.json))
        })
    }

    /// Add a rule explicitly: see [`crate::store::SqliteStore::add_rule`].
    pub fn add_rule(
        &self,
        user: &str,
        actor: &str,
        r: &NewRule,
    ) -> anyhow::Result<Result<Value, EditRefused>> {
        let blob = vec_to_blob(&r.embedding);
        self.write(|tx| {
            super::lock_user(tx, user)?;
            let now = now_ms();
            let inserted = tx.query_opt(
                "INSERT INTO rules (user_id, kind, topic, statement, confidence, first_ms, last_ms, embedding, evidence, created_ms)
                 VALUES ($1, $2, $3, $4, 1.0, $5, $5, $6, '[]', $5)
                 ON CONFLICT DO NOTHING RETURNING id",
                &[&user, &r.kind, &r.topic, &r.statement, &now, &blob],
            )?;
            let Some(row) = inserted else {
                return Ok(Err(EditRefused::Conflict(
                    "the same rule (topic, statement) is already stored".into(),
                )));
            };
            let id: i64 = row.try_get(0)?;
            rederive_topic(tx, user, &r.topic)?;
            let edit = pg_record(tx, user, EditTier::Procedural, id, "add", actor, None, None, None)?;
            tx.execute(
                "UPDATE rules SET evidence = $3 WHERE user_id = $1 AND id = $2",
                &[&user, &id, &json!([format!("manual:{edit}")]).to_string()],
            )?;
            let info = pg_rule_info(tx, user, id)?.context("rule just added")?;
            tx.execute(
                "UPDATE memory_edits SET after = $3 WHERE user_id = $1 AND id = $2",
                &[&user, &edit, &info.json.to_string()],
            )?;
            Ok(Ok(info.json))
        })
    }

    /// Change an episode: see [`crate::store::SqliteStore::update_episode`].
    pub fn update_episode(
        &self,
        user: &str,
        actor: &str,
        id: i64,
        p: &EpisodePatch,
    ) -> anyhow::Result<Result<Value, EditRefused>> {
        let tags = p.tags.as_ref().map(serde_json::to_string).transpose()?;
        self.write(|tx| {
            super::lock_user(tx, user)?;
            let Some((before, job_id)) = pg_episode_json(tx, user, id)? else {
                return Ok(Err(EditRefused::NotFound("episode", id)));
            };
            if let Some((text, emb)) = &p.text {
                let blob = vec_to_blob(emb);
                match self.vectors {
                    VectorMode::Pgvector => tx.execute(
                        "UPDATE episodes SET text = $3, summary = $3, embedding = $4, embedding_v = CAST($5::text AS vector)
                         WHERE user_id = $1 AND id = $2",
                        &[&user, &id, text, &blob, &vector_param(emb)],
                    )?,
                    VectorMode::Exact => tx.execute(
                        "UPDATE episodes SET text = $3, summary = $3, embedding = $4 WHERE user_id = $1 AND id = $2",
                        &[&user, &id, text, &blob],
                    )?,
                };
            }
            if let Some(i) = p.importance {
                tx.execute(
                    "UPDATE episodes SET importance = $3 WHERE user_id = $1 AND id = $2",
                    &[&user, &id, &i],
                )?;
            }
            if let Some(t) = &tags {
                tx.execute(
                    "UPDATE episodes SET tags = $3 WHERE user_id = $1 AND id = $2",
                    &[&user, &id, t],
                )?;
            }
            let (after, _) = pg_episode_json(tx, user, id)?.context("episode just updated")?;
            let ev: Vec<String> =
                serde_json::from_value(before["evidence"].clone()).unwrap_or_default();
            pg_record(tx, user, EditTier::Episodic, id, "update", actor, Some(&before), Some(&after),
                      Some((&episode_signature(&job_id), &job_id, &ev)))?;
            Ok(Ok(after))
        })
    }

    /// Change a fact: see [`crate::store::SqliteStore::update_fact`].
    pub fn update_fact(
        &self,
        user: &str,
        actor: &str,
        id: i64,
        p: &FactPatch,
    ) -> anyhow::Result<Result<Value, EditRefused>> {
        self.write(|tx| {
            super::lock_user(tx, user)?;
            let Some(before) = pg_fact_info(tx, user, id)? else {
                return Ok(Err(EditRefused::NotFound("fact", id)));
            };
            if let Some(object) = &p.object {
                let o = resolve_entity(tx, user, object, "other", now_ms())?;
                let clash: bool = tx
                    .query_one(
                        "SELECT EXISTS (SELECT 1 FROM relations r JOIN relations x ON x.id = $2 AND x.user_id = $1
                         WHERE r.user_id = $1 AND r.id != x.id AND r.subject_id = x.subject_id
                           AND r.predicate = x.predicate AND r.object_id = $3 AND r.valid_ms = x.valid_ms)",
                        &[&user, &id, &o],
                    )?
                    .try_get(0)?;
                if clash {
                    return Ok(Err(EditRefused::Conflict(
                        "another fact already says that (same subject, predicate, object and valid_at)".into(),
                    )));
                }
                // The rows merged into this one are restatements of the old object: they go
                // with it (their evidence is tombstoned below).
                tx.execute(
                    "DELETE FROM relations WHERE user_id = $1 AND merged_into = $2",
                    &[&user, &id],
                )?;
                tx.execute(
                    "UPDATE relations SET object_id = $3 WHERE user_id = $1 AND id = $2",
                    &[&user, &id, &o],
                )?;
            }
            if let Some(fact) = &p.fact {
                tx.execute(
                    "UPDATE relations SET fact = $3 WHERE user_id = $1 AND id = $2",
                    &[&user, &id, fact],
                )?;
            }
            if before.exclusive {
                rederive_slot(tx, user, before.subject_id, &before.predicate)?;
            }
            let after = pg_fact_info(tx, user, id)?.context("fact just updated")?;
            pg_record(tx, user, EditTier::Semantic, id, "update", actor, Some(&before.json), Some(&after.json),
                      Some((&before.signature, &before.job_id, &before.evidence)))?;
            Ok(Ok(after.json))
        })
    }

    /// Change a rule: see [`crate::store::SqliteStore::update_rule`].
    pub fn update_rule(
        &self,
        user: &str,
        actor: &str,
        id: i64,
        p: &RulePatch,
    ) -> anyhow::Result<Result<Value, EditRefused>> {
        self.write(|tx| {
            super::lock_user(tx, user)?;
            let Some(before) = pg_rule_info(tx, user, id)? else {
                return Ok(Err(EditRefused::NotFound("rule", id)));
            };
            if let Some((statement, emb)) = &p.statement {
                let clash: bool = tx
                    .query_one(
                        "SELECT EXISTS (SELECT 1 FROM rules WHERE user_id = $1 AND topic = $2 AND statement = $3 AND id != $4)",
                        &[&user, &before.topic, statement, &id],
                    )?
                    .try_get(0)?;
                if clash {
                    return Ok(Err(EditRefused::Conflict(
                        "another rule of the same topic already says that".into(),
                    )));
                }
                tx.execute(
                    "UPDATE rules SET statement = $3, embedding = $4 WHERE user_id = $1 AND id = $2",
                    &[&user, &id, statement, &vec_to_blob(emb)],
                )?;
            }
            if let Some(kind) = &p.kind {
                tx.execute(
                    "UPDATE rules SET kind = $3 WHERE user_id = $1 AND id = $2",
                    &[&user, &id, kind],
                )?;
            }
            let after = pg_rule_info(tx, user, id)?.context("rule just updated")?;
            // Rules have no job of their own (one rule, many turns): matched by evidence.
            let job = String::new();
            pg_record(tx, user, EditTier::Procedural, id, "update", actor, Some(&before.json), Some(&after.json),
                      Some((&rule_signature(&before.topic, &before.statement), &job, &before.evidence)))?;
            Ok(Ok(after.json))
        })
    }

    /// Delete one episode, fact or rule, and tombstone it: see
    /// [`crate::store::SqliteStore::delete_memory`].
    pub fn delete_memory(
        &self,
        user: &str,
        actor: &str,
        tier: EditTier,
        id: i64,
    ) -> anyhow::Result<Result<Value, EditRefused>> {
        self.write(|tx| {
            super::lock_user(tx, user)?;
            match tier {
                EditTier::Episodic => {
                    let Some((before, job_id)) = pg_episode_json(tx, user, id)? else {
                        return Ok(Err(EditRefused::NotFound("episode", id)));
                    };
                    tx.execute("DELETE FROM episodes WHERE user_id = $1 AND id = $2", &[&user, &id])?;
                    let ev: Vec<String> =
                        serde_json::from_value(before["evidence"].clone()).unwrap_or_default();
                    pg_record(tx, user, tier, id, "delete", actor, Some(&before), None,
                              Some((&episode_signature(&job_id), &job_id, &ev)))?;
                    Ok(Ok(json!({"deleted": before})))
                }
                EditTier::Semantic => {
                    let Some(before) = pg_fact_info(tx, user, id)? else {
                        return Ok(Err(EditRefused::NotFound("fact", id)));
                    };
                    tx.execute(
                        "DELETE FROM relations WHERE user_id = $1 AND (id = $2 OR merged_into = $2)",
                        &[&user, &id],
                    )?;
                    if before.exclusive {
                        rederive_slot(tx, user, before.subject_id, &before.predicate)?;
                    }
                    pg_record(tx, user, tier, id, "delete", actor, Some(&before.json), None,
                              Some((&before.signature, &before.job_id, &before.evidence)))?;
                    Ok(Ok(json!({"deleted": before.json})))
                }
                EditTier::Procedural => {
                    let Some(before) = pg_rule_info(tx, user, id)? else {
                        return Ok(Err(EditRefused::NotFound("rule", id)));
                    };
                    tx.execute("DELETE FROM rules WHERE user_id = $1 AND id = $2", &[&user, &id])?;
                    tx.execute(
                        "UPDATE rules SET superseded_by = NULL WHERE user_id = $1 AND superseded_by = $2",
                        &[&user, &id],
                    )?;
                    rederive_topic(tx, user, &before.topic)?;
                    let job = String::new();
                    pg_record(tx, user, tier, id, "delete", actor, Some(&before.json), None,
                              Some((&rule_signature(&before.topic, &before.statement), &job, &before.evidence)))?;
                    Ok(Ok(json!({"deleted": before.json})))
                }
            }
        })
    }

    /// The user's edits, newest first: see [`crate::store::SqliteStore::list_edits`].
    pub fn list_edits(
        &self,
        user: &str,
        limit: usize,
        offset: usize,
    ) -> anyhow::Result<Vec<Value>> {
        let (limit, offset) = (
            limit.min(i64::MAX as usize) as i64,
            offset.min(i64::MAX as usize) as i64,
        );
        self.read(|c| {
            let parse = |s: Option<String>| s.and_then(|s| serde_json::from_str::<Value>(&s).ok());
            c.query(
                "SELECT id, tier, memory_id, action, actor, at_ms, before, after FROM memory_edits
                 WHERE user_id = $1 ORDER BY id DESC LIMIT $2 OFFSET $3",
                &[&user, &limit, &offset],
            )?
            .iter()
            .map(|r| {
                Ok(json!({
                    "edit_id": r.try_get::<_, i64>(0)?, "tier": r.try_get::<_, String>(1)?,
                    "memory_id": r.try_get::<_, i64>(2)?, "action": r.try_get::<_, String>(3)?,
                    "actor": r.try_get::<_, String>(4)?, "at": ms_to_rfc3339(r.try_get(5)?),
                    "before": parse(r.try_get(6)?), "after": parse(r.try_get(7)?),
                }))
            })
            .collect::<anyhow::Result<Vec<Value>>>()
        })
    }

    /// See [`crate::store::SqliteStore::rereflect_job`].
    pub fn rereflect_job(&self, job_id: &str) -> anyhow::Result<bool> {
        self.write(|tx| {
            let state: Option<String> = tx
                .query_opt(
                    "SELECT state FROM jobs WHERE job_id = $1 FOR UPDATE",
                    &[&job_id],
                )?
                .map(|r| r.get(0));
            if !matches!(state.as_deref(), Some("completed" | "dead")) {
                return Ok(false);
            }
            tx.execute("DELETE FROM job_tiers WHERE job_id = $1", &[&job_id])?;
            let now = now_ms();
            tx.execute(
                "UPDATE jobs SET state = 'queued', attempts = 0, available_ms = $2, lease_owner = NULL,
                     lease_expires_ms = NULL, last_error = NULL, dead_reason = NULL, completed_ms = NULL, updated_ms = $2
                 WHERE job_id = $1",
                &[&job_id, &now],
            )?;
            Ok(true)
        })
    }
}
