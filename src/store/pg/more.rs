//! PostgreSQL port of memory editing ([`crate::store::edits`]), export and import
//! ([`crate::store::export`], docs/EXPORT.md) and re-embedding ([`crate::store::rebuild`]).
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

use std::collections::{BTreeSet, HashMap};
use std::io::{BufRead, Write};

use anyhow::{Context as _, bail};
use postgres::types::ToSql;
use postgres::{IsolationLevel, Row, Transaction};
use serde_json::{Value, json};

use super::memory::{rederive_slot, rederive_topic, resolve_entity};
use super::{PgStore, VectorMode};
use crate::store::edits::{
    EditRefused, EditTier, EpisodePatch, FactPatch, NewEpisode, NewFact, NewRule, RulePatch,
    episode_signature, fact_signature, rule_signature,
};
use crate::store::export::{Counts, FORMAT, VERSION, hex_vec, ms, opt_ms, s, vec_hex};
use crate::store::rebuild::Embedded;
use crate::store::sqlite::norm_name;
use crate::store::{EpisodeRow, FactRow, blob_to_vec, ms_to_rfc3339, now_ms, vec_to_blob};

/// Rows fetched per round trip when the export streams a query (a few in the unit tests, so
/// that they cross batch boundaries).
const EXPORT_BATCH: i32 = if cfg!(test) { 3 } else { 256 };

/// A query parameter.
type Param<'a> = &'a (dyn ToSql + Sync);

/// pgvector's text of an embedding, or NULL for one pgvector cannot store (no dimension, a
/// NaN or an infinity): such an episode is found by the exact scan only, as in the tier
/// commits.
fn vector_param(v: &[f32]) -> Option<String> {
    (!v.is_empty() && v.iter().all(|x| x.is_finite())).then(|| super::vector_text(v))
}

/// Insert an audit record (and tombstone); returns its id. Port of `edits::record`.
#[allow(clippy::too_many_arguments)]
fn pg_record(
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

/// Columns of [`pg_episode_from_row`].
const EPISODE_COLUMNS: &str = "id, user_id, speaker, text, summary, importance, tags, occurred_ms, observed_ms, evidence, job_id";

/// An episode row as the API shows it (port of `sqlite::episode_from_row`).
fn pg_episode_from_row(r: &Row) -> anyhow::Result<EpisodeRow> {
    let tags: String = r.try_get(6)?;
    let ev: String = r.try_get(9)?;
    let occurred: i64 = r.try_get(7)?;
    let observed: i64 = r.try_get(8)?;
    Ok(EpisodeRow {
        id: r.try_get(0)?,
        user_id: r.try_get(1)?,
        speaker: r.try_get(2)?,
        text: r.try_get(3)?,
        summary: r.try_get(4)?,
        importance: r.try_get(5)?,
        tags: serde_json::from_str(&tags).unwrap_or_default(),
        occurred_at: ms_to_rfc3339(occurred),
        occurred_ms: occurred,
        observed_at: ms_to_rfc3339(observed),
        observed_ms: observed,
        evidence: serde_json::from_str(&ev).unwrap_or_default(),
        job_id: r.try_get(10)?,
    })
}

/// The user's episode `id` as JSON, with its job id. Port of `edits::episode_json`.
fn pg_episode_json(
    tx: &mut Transaction<'_>,
    user: &str,
    id: i64,
) -> anyhow::Result<Option<(Value, String)>> {
    let row = tx.query_opt(
        &format!("SELECT {EPISODE_COLUMNS} FROM episodes WHERE user_id = $1 AND id = $2"),
        &[&user, &id],
    )?;
    Ok(match row {
        Some(r) => {
            let e = pg_episode_from_row(&r)?;
            Some((serde_json::to_value(&e)?, e.job_id))
        }
        None => None,
    })
}

/// A fact as JSON, with its job, its signature and its entities (as `edits::FactInfo`).
struct PgFactInfo {
    json: Value,
    job_id: String,
    signature: String,
    subject_id: i64,
    predicate: String,
    exclusive: bool,
    evidence: Vec<String>,
}

/// The user's fact `id` (not a restatement merged into another). Port of `edits::fact_info`.
fn pg_fact_info(
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
struct PgRuleInfo {
    json: Value,
    topic: String,
    statement: String,
    evidence: Vec<String>,
}

/// The user's rule `id`. Port of `edits::rule_info`.
fn pg_rule_info(
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

/// The entity of `name` during an import: the one its entity line resolved to, else resolved
/// now (kind `other`), as SQLite's import does.
fn pg_import_entity(
    tx: &mut Transaction<'_>,
    user: &str,
    entity_ids: &HashMap<String, i64>,
    name: &str,
) -> anyhow::Result<i64> {
    match entity_ids.get(name) {
        Some(id) => Ok(*id),
        None => resolve_entity(tx, user, name, "other", now_ms()),
    }
}

/// Run `sql` and hand each row to `f`, fetching [`EXPORT_BATCH`] rows per round trip.
fn pg_each_row(
    tx: &mut Transaction<'_>,
    sql: &str,
    params: &[Param<'_>],
    mut f: impl FnMut(&Row) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    let portal = tx.bind(sql, params)?;
    loop {
        let rows = tx.query_portal(&portal, EXPORT_BATCH)?;
        for r in &rows {
            f(r)?;
        }
        if rows.len() < EXPORT_BATCH as usize {
            return Ok(());
        }
    }
}

impl PgStore {
    /// `, embedding_v` and its value expression for an episode insert with pgvector, else
    /// nothing; `n` is the parameter number of the vector's text.
    fn vector_column(&self, n: usize) -> (&'static str, String) {
        match self.vectors {
            VectorMode::Pgvector => (", embedding_v", format!(", CAST(${n}::text AS vector)")),
            VectorMode::Exact => ("", String::new()),
        }
    }

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

    /// Write `user`'s memory as JSON Lines (docs/EXPORT.md), line for line what
    /// [`crate::store::SqliteStore::export_user`] writes for the same content. Reads one
    /// snapshot of the user's rows.
    pub fn export_user(
        &self,
        user: &str,
        model: &str,
        out: &mut dyn Write,
    ) -> anyhow::Result<Counts> {
        let mut counts = Counts::new();
        let mut line = |v: Value, counts: &mut Counts| -> anyhow::Result<()> {
            *counts
                .entry(v["type"].as_str().unwrap_or("?").to_string())
                .or_default() += 1;
            serde_json::to_writer(&mut *out, &v)?;
            out.write_all(b"\n")?;
            Ok(())
        };
        self.read(|c| {
            let mut tx = c
                .build_transaction()
                .isolation_level(IsolationLevel::RepeatableRead)
                .read_only(true)
                .start()?;
            let tx = &mut tx;
            line(
                json!({"type": "header", "format": FORMAT, "version": VERSION, "user_id": user,
                       "exported_at": ms_to_rfc3339(now_ms()), "embedding_model": model}),
                &mut counts,
            )?;
            pg_each_row(
                tx,
                "SELECT t.id, t.session_id, t.user_message, t.assistant_response, t.ts_ms, t.metadata, t.request_hash,
                        t.created_ms, t.reflected, j.job_id, j.priority, j.state, j.payload, j.max_retries, j.created_ms
                 FROM turns t LEFT JOIN jobs j ON j.job_id = t.job_id WHERE t.user_id = $1
                 ORDER BY t.ts_ms, t.created_ms, t.id COLLATE \"C\"",
                &[&user],
                |r| {
                    let meta: &str = r.try_get(5)?;
                    let payload: Option<&str> = r.try_get(12)?;
                    line(json!({
                        "type": "turn", "interaction_id": r.try_get::<_, String>(0)?, "session_id": r.try_get::<_, String>(1)?,
                        "user_message": r.try_get::<_, String>(2)?, "assistant_response": r.try_get::<_, String>(3)?,
                        "timestamp": ms_to_rfc3339(r.try_get(4)?), "metadata": serde_json::from_str::<Value>(meta)?,
                        "request_hash": r.try_get::<_, String>(6)?, "stored_at": ms_to_rfc3339(r.try_get(7)?),
                        "reflected": r.try_get::<_, bool>(8)?,
                        "job": {
                            "job_id": r.try_get::<_, Option<String>>(9)?, "priority": r.try_get::<_, Option<i64>>(10)?,
                            "state": r.try_get::<_, Option<String>>(11)?,
                            "payload": payload.and_then(|p| serde_json::from_str::<Value>(p).ok()),
                            "max_retries": r.try_get::<_, Option<i64>>(13)?,
                            "created_at": r.try_get::<_, Option<i64>>(14)?.map(ms_to_rfc3339),
                        },
                    }), &mut counts)
                },
            )?;
            pg_each_row(
                tx,
                "SELECT job_id, speaker, text, summary, importance, tags, occurred_ms, observed_ms, embedding, evidence, created_ms, context
                 FROM episodes WHERE user_id = $1 ORDER BY id",
                &[&user],
                |r| {
                    let tags: &str = r.try_get(5)?;
                    let ev: &str = r.try_get(9)?;
                    line(json!({
                        "type": "episode", "job_id": r.try_get::<_, String>(0)?, "speaker": r.try_get::<_, String>(1)?,
                        "text": r.try_get::<_, String>(2)?, "summary": r.try_get::<_, String>(3)?,
                        "importance": f64::from(r.try_get::<_, f32>(4)?),
                        "tags": serde_json::from_str::<Value>(tags)?, "occurred_at": ms_to_rfc3339(r.try_get(6)?),
                        "observed_at": ms_to_rfc3339(r.try_get(7)?), "embedding": vec_hex(r.try_get::<_, &[u8]>(8)?),
                        "evidence": serde_json::from_str::<Value>(ev)?, "created_at": ms_to_rfc3339(r.try_get(10)?),
                        "context": r.try_get::<_, String>(11)?,
                    }), &mut counts)
                },
            )?;
            pg_each_row(
                tx,
                "SELECT e.name, e.kind, e.created_ms,
                        coalesce((SELECT array_agg(a.alias_norm ORDER BY a.alias_norm COLLATE \"C\")
                                  FROM entity_aliases a WHERE a.user_id = e.user_id AND a.entity_id = e.id), '{}')
                 FROM entities e WHERE e.user_id = $1 ORDER BY e.id",
                &[&user],
                |r| {
                    let aliases: Vec<String> = r.try_get(3)?;
                    line(json!({"type": "entity", "name": r.try_get::<_, String>(0)?, "kind": r.try_get::<_, String>(1)?,
                                "aliases": aliases, "created_at": ms_to_rfc3339(r.try_get(2)?)}), &mut counts)
                },
            )?;
            pg_each_row(
                tx,
                "SELECT s.name, r.predicate, o.name, r.fact, r.exclusive, r.valid_ms, r.evidence, r.job_id, r.created_ms
                 FROM relations r JOIN entities s ON s.id = r.subject_id JOIN entities o ON o.id = r.object_id
                 WHERE r.user_id = $1 ORDER BY r.id",
                &[&user],
                |r| {
                    let ev: &str = r.try_get(6)?;
                    line(json!({
                        "type": "fact", "subject": r.try_get::<_, String>(0)?, "predicate": r.try_get::<_, String>(1)?,
                        "object": r.try_get::<_, String>(2)?, "fact": r.try_get::<_, String>(3)?, "exclusive": r.try_get::<_, bool>(4)?,
                        "valid_at": ms_to_rfc3339(r.try_get(5)?), "evidence": serde_json::from_str::<Value>(ev)?,
                        "job_id": r.try_get::<_, String>(7)?, "created_at": ms_to_rfc3339(r.try_get(8)?),
                    }), &mut counts)
                },
            )?;
            pg_each_row(
                tx,
                "SELECT kind, topic, statement, confidence, first_ms, last_ms, embedding, evidence, created_ms
                 FROM rules WHERE user_id = $1 ORDER BY id",
                &[&user],
                |r| {
                    let ev: &str = r.try_get(7)?;
                    line(json!({
                        "type": "rule", "kind": r.try_get::<_, String>(0)?, "topic": r.try_get::<_, String>(1)?,
                        "statement": r.try_get::<_, String>(2)?, "confidence": f64::from(r.try_get::<_, f32>(3)?),
                        "first_stated_at": ms_to_rfc3339(r.try_get(4)?), "last_stated_at": ms_to_rfc3339(r.try_get(5)?),
                        "embedding": vec_hex(r.try_get::<_, &[u8]>(6)?), "evidence": serde_json::from_str::<Value>(ev)?,
                        "created_at": ms_to_rfc3339(r.try_get(8)?),
                    }), &mut counts)
                },
            )?;
            pg_each_row(
                tx,
                "SELECT tier, memory_id, action, actor, at_ms, before, after, signature, source_job_id, evidence
                 FROM memory_edits WHERE user_id = $1 ORDER BY id",
                &[&user],
                |r| {
                    let parse = |x: Option<&str>| x.and_then(|s| serde_json::from_str::<Value>(s).ok());
                    line(json!({
                        "type": "edit", "tier": r.try_get::<_, String>(0)?, "memory_id": r.try_get::<_, i64>(1)?,
                        "action": r.try_get::<_, String>(2)?, "actor": r.try_get::<_, String>(3)?, "at": ms_to_rfc3339(r.try_get(4)?),
                        "before": parse(r.try_get(5)?), "after": parse(r.try_get(6)?), "signature": r.try_get::<_, Option<String>>(7)?,
                        "source_job_id": r.try_get::<_, Option<String>>(8)?, "evidence": parse(r.try_get(9)?),
                    }), &mut counts)
                },
            )?;
            Ok(())
        })?;
        out.flush()?;
        Ok(counts)
    }

    /// Read an export back in ONE transaction, skipping records already present: see
    /// [`crate::store::SqliteStore::import_user`] (same checks, same messages, same stored
    /// state; ids are PostgreSQL's own).
    pub fn import_user(&self, input: &mut dyn BufRead) -> anyhow::Result<Counts> {
        let mut lines: Vec<Value> = Vec::new();
        for (i, l) in input.lines().enumerate() {
            let l = l.with_context(|| format!("line {}", i + 1))?;
            if l.trim().is_empty() {
                continue;
            }
            lines.push(
                serde_json::from_str(&l).with_context(|| format!("line {}: not JSON", i + 1))?,
            );
        }
        let Some(header) = lines.first() else {
            bail!("the file is empty")
        };
        if header["type"] != "header" || header["format"] != FORMAT {
            bail!(
                "line 1: not a Memory Reflector export (expected a header with format {FORMAT:?})"
            );
        }
        if header["version"].as_u64() != Some(VERSION) {
            bail!(
                "line 1: export version {} is not supported (this build reads {VERSION})",
                header["version"]
            );
        }
        let user = s(header, "user_id").context("line 1")?.to_string();
        let user = user.as_str();
        let vectors = self.vectors;
        let (vcol, vval) = self.vector_column(14);
        let insert_episode = format!(
            "INSERT INTO episodes (user_id, job_id, speaker, text, summary, importance, tags, occurred_ms,
                                   observed_ms, embedding, evidence, created_ms, context{vcol})
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13{vval})
             ON CONFLICT DO NOTHING"
        );
        self.write(|tx| {
            super::lock_user(tx, user)?;
            let insert_turn = tx.prepare(
                "INSERT INTO turns (id, user_id, session_id, user_message, assistant_response, ts_ms,
                                    metadata, request_hash, job_id, created_ms, reflected)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) ON CONFLICT DO NOTHING",
            )?;
            let insert_job = tx.prepare(
                "INSERT INTO jobs (job_id, user_id, priority, state, payload, attempts, max_retries,
                                   available_ms, published_ms, created_ms, updated_ms, completed_ms)
                 VALUES ($1, $2, $3, $4, $5, 0, $6, $7, $7, $7, $7, $8) ON CONFLICT DO NOTHING",
            )?;
            let insert_episode = tx.prepare(&insert_episode)?;
            let entity_exists = tx.prepare(
                "SELECT EXISTS (SELECT 1 FROM entities WHERE user_id = $1 AND norm_name = $2)",
            )?;
            let insert_alias = tx.prepare(
                "INSERT INTO entity_aliases (user_id, alias_norm, entity_id) VALUES ($1, $2, $3)
                 ON CONFLICT DO NOTHING",
            )?;
            let insert_fact = tx.prepare(
                "INSERT INTO relations (user_id, subject_id, predicate, object_id, fact, exclusive,
                                        valid_ms, evidence, job_id, created_ms)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) ON CONFLICT DO NOTHING",
            )?;
            let insert_rule = tx.prepare(
                "INSERT INTO rules (user_id, kind, topic, statement, confidence, first_ms, last_ms,
                                    embedding, evidence, created_ms)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) ON CONFLICT DO NOTHING",
            )?;
            let edit_exists = tx.prepare(
                "SELECT EXISTS (SELECT 1 FROM memory_edits WHERE user_id = $1 AND tier = $2 AND action = $3
                                AND at_ms = $4 AND signature IS NOT DISTINCT FROM $5 AND memory_id = $6)",
            )?;
            let insert_edit = tx.prepare(
                "INSERT INTO memory_edits (user_id, tier, memory_id, action, actor, at_ms, before, after,
                                           signature, source_job_id, evidence)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
            )?;
            let mut counts = Counts::new();
            let mut slots: BTreeSet<(i64, String)> = BTreeSet::new();
            let mut topics: BTreeSet<String> = BTreeSet::new();
            let mut entity_ids: HashMap<String, i64> = HashMap::new();
            for (i, v) in lines.iter().enumerate().skip(1) {
                let n = i + 1;
                let kind = v["type"].as_str().unwrap_or("");
                let added = (|| -> anyhow::Result<bool> {
                    Ok(match kind {
                        "turn" => {
                            let job = &v["job"];
                            let job_id = job["job_id"].as_str().unwrap_or_default().to_string();
                            let t = tx.execute(
                                &insert_turn,
                                &[&s(v, "interaction_id")?, &user, &s(v, "session_id")?, &s(v, "user_message")?,
                                  &s(v, "assistant_response")?, &ms(v, "timestamp")?, &v["metadata"].to_string(),
                                  &s(v, "request_hash")?, &job_id, &ms(v, "stored_at")?,
                                  &v["reflected"].as_bool().unwrap_or(false)],
                            )?;
                            if !job_id.is_empty() {
                                // A job that had not finished is queued again (it is reflected here).
                                let state = job["state"]
                                    .as_str()
                                    .filter(|st| matches!(*st, "completed" | "dead"))
                                    .unwrap_or("queued");
                                let created = opt_ms(job, "created_at")?.unwrap_or_else(now_ms);
                                let completed = (state == "completed").then_some(created);
                                tx.execute(
                                    &insert_job,
                                    &[&job_id, &user, &job["priority"].as_i64().unwrap_or(1), &state,
                                      &job["payload"].to_string(), &job["max_retries"].as_i64().unwrap_or(3),
                                      &created, &completed],
                                )?;
                            }
                            t > 0
                        }
                        "episode" => {
                            let emb = hex_vec(s(v, "embedding")?)?;
                            let importance =
                                v["importance"].as_f64().context("importance: expected a number")? as f32;
                            let vector = vector_param(&blob_to_vec(&emb));
                            let (job_id, speaker, text, summary) =
                                (s(v, "job_id")?, s(v, "speaker")?, s(v, "text")?, s(v, "summary")?);
                            let (tags, occurred, observed) =
                                (v["tags"].to_string(), ms(v, "occurred_at")?, ms(v, "observed_at")?);
                            let (evidence, created) = (v["evidence"].to_string(), ms(v, "created_at")?);
                            let context = v["context"].as_str().unwrap_or("");
                            let mut params: Vec<Param<'_>> = vec![
                                &user, &job_id, &speaker, &text, &summary, &importance, &tags, &occurred,
                                &observed, &emb, &evidence, &created, &context,
                            ];
                            if vectors == VectorMode::Pgvector {
                                params.push(&vector);
                            }
                            tx.execute(&insert_episode, &params)? > 0
                        }
                        "entity" => {
                            let name = s(v, "name")?;
                            let existed: bool = tx
                                .query_one(&entity_exists, &[&user, &norm_name(name)])?
                                .try_get(0)?;
                            let id = resolve_entity(tx, user, name, s(v, "kind")?, ms(v, "created_at")?)?;
                            for a in v["aliases"].as_array().into_iter().flatten() {
                                let a = a.as_str().context("aliases: expected strings")?;
                                tx.execute(&insert_alias, &[&user, &a, &id])?;
                            }
                            entity_ids.insert(name.to_string(), id);
                            !existed
                        }
                        "fact" => {
                            let sid = pg_import_entity(tx, user, &entity_ids, s(v, "subject")?)?;
                            let oid = pg_import_entity(tx, user, &entity_ids, s(v, "object")?)?;
                            let predicate = s(v, "predicate")?;
                            let exclusive = v["exclusive"].as_bool().unwrap_or(false);
                            let added = tx.execute(
                                &insert_fact,
                                &[&user, &sid, &predicate, &oid, &s(v, "fact")?, &exclusive, &ms(v, "valid_at")?,
                                  &v["evidence"].to_string(), &s(v, "job_id")?, &ms(v, "created_at")?],
                            )? > 0;
                            if exclusive {
                                slots.insert((sid, predicate.to_string()));
                            }
                            added
                        }
                        "rule" => {
                            let topic = s(v, "topic")?;
                            topics.insert(topic.to_string());
                            let confidence =
                                v["confidence"].as_f64().context("confidence: expected a number")? as f32;
                            tx.execute(
                                &insert_rule,
                                &[&user, &s(v, "kind")?, &topic, &s(v, "statement")?, &confidence,
                                  &ms(v, "first_stated_at")?, &ms(v, "last_stated_at")?, &hex_vec(s(v, "embedding")?)?,
                                  &v["evidence"].to_string(), &ms(v, "created_at")?],
                            )? > 0
                        }
                        "edit" => {
                            let at = ms(v, "at")?;
                            let sig = v["signature"].as_str();
                            let memory_id = v["memory_id"].as_i64().unwrap_or(0);
                            let (tier, action) = (s(v, "tier")?, s(v, "action")?);
                            let exists: bool = tx
                                .query_one(&edit_exists, &[&user, &tier, &action, &at, &sig, &memory_id])?
                                .try_get(0)?;
                            let opt = |f: &str| (!v[f].is_null()).then(|| v[f].to_string());
                            if !exists {
                                tx.execute(
                                    &insert_edit,
                                    &[&user, &tier, &memory_id, &action, &s(v, "actor")?, &at, &opt("before"),
                                      &opt("after"), &sig, &v["source_job_id"].as_str(), &opt("evidence")],
                                )?;
                            }
                            !exists
                        }
                        "header" => bail!("a second header"),
                        other => bail!("type: unknown record type {other:?}"),
                    })
                })()
                .with_context(|| format!("line {n} ({kind})"))?;
                if added {
                    *counts.entry(kind.to_string()).or_default() += 1;
                }
            }
            for (sid, p) in &slots {
                rederive_slot(tx, user, *sid, p)?;
            }
            for t in &topics {
                rederive_topic(tx, user, t)?;
            }
            Ok(counts)
        })
    }

    /// Up to `limit` (id, text) of `what`, of `user` or everyone, with id > `after`, by id:
    /// see [`crate::store::SqliteStore::texts_to_embed`].
    pub fn texts_to_embed(
        &self,
        what: Embedded,
        user: Option<&str>,
        after: i64,
        limit: usize,
    ) -> anyhow::Result<Vec<(i64, String)>> {
        let sql = match what {
            Embedded::Episodes => {
                "SELECT id, text FROM episodes WHERE ($1::text IS NULL OR user_id = $1) AND id > $2 ORDER BY id LIMIT $3"
            }
            Embedded::Rules => {
                "SELECT id, statement FROM rules WHERE ($1::text IS NULL OR user_id = $1) AND id > $2 ORDER BY id LIMIT $3"
            }
        };
        let limit = limit.min(i64::MAX as usize) as i64;
        self.read(|c| {
            c.query(sql, &[&user, &after, &limit])?
                .iter()
                .map(|r| Ok((r.try_get(0)?, r.try_get(1)?)))
                .collect::<anyhow::Result<Vec<_>>>()
        })
    }

    /// Replace vectors, in one transaction (with pgvector, an episode's `embedding_v` too):
    /// see [`crate::store::SqliteStore::set_embeddings`].
    pub fn set_embeddings(&self, what: Embedded, rows: &[(i64, Vec<f32>)]) -> anyhow::Result<()> {
        let sql = match (what, self.vectors) {
            (Embedded::Episodes, VectorMode::Pgvector) => {
                "UPDATE episodes SET embedding = $2, embedding_v = CAST($3::text AS vector) WHERE id = $1"
            }
            (Embedded::Episodes, VectorMode::Exact) => {
                "UPDATE episodes SET embedding = $2 WHERE id = $1"
            }
            (Embedded::Rules, _) => "UPDATE rules SET embedding = $2 WHERE id = $1",
        };
        let with_vector = what == Embedded::Episodes && self.vectors == VectorMode::Pgvector;
        self.write(|tx| {
            let st = tx.prepare(sql)?;
            for (id, v) in rows {
                let blob = vec_to_blob(v);
                if with_vector {
                    tx.execute(&st, &[id, &blob, &vector_param(v)])?;
                } else {
                    tx.execute(&st, &[id, &blob])?;
                }
            }
            Ok(())
        })
    }

    /// Episodes and rules, of `user` or everyone: see
    /// [`crate::store::SqliteStore::count_embedded`].
    pub fn count_embedded(&self, user: Option<&str>) -> anyhow::Result<u64> {
        self.read(|c| {
            let n: i64 = c
                .query_one(
                    "SELECT (SELECT count(*) FROM episodes WHERE $1::text IS NULL OR user_id = $1)
                          + (SELECT count(*) FROM rules WHERE $1::text IS NULL OR user_id = $1)",
                    &[&user],
                )?
                .try_get(0)?;
            Ok(n as u64)
        })
    }
}
