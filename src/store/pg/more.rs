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

/// The methods above against SQLite's, on the same inputs. Skipped (with a note) unless
/// `REFLECTOR_TEST_DATABASE_URL` names a PostgreSQL server; FAIL when it is set and the
/// server cannot be reached. Each test works in a fresh schema, dropped at the end.
#[cfg(test)]
mod tests {
    use std::path::Path;

    use chrono::{TimeZone, Utc};

    use super::*;
    use crate::extract::{EntityDraft, EpisodeDraft, GraphDraft, RelationDraft, RuleDraft};
    use crate::job::{JobState, Priority, ReflectionJob};
    use crate::store::pg::PgOptions;
    use crate::store::{Backend, NewTurn, QueueLimits, SqliteStore};

    const DIM: usize = 8;

    /// A PostgreSQL store in a schema of its own, dropped with it.
    struct TestPg {
        store: Option<PgStore>,
        url: String,
        schema: String,
    }

    impl TestPg {
        fn store(&self) -> &PgStore {
            self.store.as_ref().unwrap()
        }
    }

    impl Drop for TestPg {
        fn drop(&mut self) {
            self.store.take();
            if let Ok(mut c) = postgres::Client::connect(&self.url, postgres::NoTls) {
                // Never drop a schema an extension lives in (another test may use it).
                let ext: i64 = c
                    .query_one(
                        "SELECT count(*) FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace
                         WHERE n.nspname = $1",
                        &[&self.schema],
                    )
                    .map(|r| r.get(0))
                    .unwrap_or(1);
                if ext == 0 {
                    let _ = c.batch_execute(&format!("DROP SCHEMA \"{}\" CASCADE", self.schema));
                }
            }
        }
    }

    /// `None` (the test is skipped) without `REFLECTOR_TEST_DATABASE_URL`; panics when it is
    /// set and the store cannot be opened.
    fn pg() -> Option<TestPg> {
        let url = match std::env::var("REFLECTOR_TEST_DATABASE_URL") {
            Ok(u) if !u.is_empty() => u,
            _ => {
                eprintln!("skipped: REFLECTOR_TEST_DATABASE_URL is not set");
                return None;
            }
        };
        let schema = format!("t_{}", uuid::Uuid::new_v4().simple());
        let store = PgStore::open(&PgOptions {
            url: url.clone(),
            schema: Some(schema.clone()),
            pgvector: "auto".into(),
            dim: DIM,
            max_connections: 4,
        })
        .unwrap_or_else(|e| {
            panic!("REFLECTOR_TEST_DATABASE_URL is set but PostgreSQL cannot be opened: {e:#}")
        });
        eprintln!("PostgreSQL store, vectors: {:?}", store.vector_mode());
        Some(TestPg {
            store: Some(store),
            url,
            schema,
        })
    }

    fn sqlite(dir: &Path, name: &str) -> SqliteStore {
        SqliteStore::open(&dir.join(name), "normal").unwrap()
    }

    fn vector(seed: u32) -> Vec<f32> {
        (0..DIM as u32)
            .map(|i| ((seed * 31 + i * 7) % 17) as f32 / 16.0 - 0.5 + seed as f32 * 1e-3)
            .collect()
    }

    fn t(day: u32, hour: u32) -> chrono::DateTime<Utc> {
        Utc.with_ymd_and_hms(2024, 5, day, hour, 0, 0).unwrap()
    }

    /// `manual:<uuid>` job ids are random: replaced by `manual:<uuid>`, so that two stores'
    /// outputs compare.
    fn scrub_str(s: &str) -> String {
        let mut out = String::new();
        let mut rest = s;
        while let Some(i) = rest.find("manual:") {
            out.push_str(&rest[..i + 7]);
            rest = &rest[i + 7..];
            let uuid_len = rest
                .chars()
                .take(36)
                .take_while(|c| c.is_ascii_hexdigit() || *c == '-')
                .count();
            if uuid_len == 36 {
                out.push_str("<uuid>");
                rest = &rest[36..];
            }
        }
        out.push_str(rest);
        out
    }

    /// Drop what differs between two runs of the same edits (times stamped "now", random
    /// job ids); ids are kept (the scripts are ordered so that they match).
    fn scrub(v: &Value) -> Value {
        match v {
            Value::Object(m) => Value::Object(
                m.iter()
                    .map(|(k, x)| {
                        let x = if matches!(k.as_str(), "at" | "stated_at" | "observed_at") {
                            Value::String("<now>".into())
                        } else {
                            scrub(x)
                        };
                        (k.clone(), x)
                    })
                    .collect(),
            ),
            Value::Array(a) => Value::Array(a.iter().map(scrub).collect()),
            Value::String(s) => Value::String(scrub_str(s)),
            other => other.clone(),
        }
    }

    /// One table as sorted text rows, from SQL both backends read alike.
    fn dump_sql(times: bool) -> Vec<(&'static str, String)> {
        let row = |cols: &[&str]| {
            cols.iter()
                .map(|c| format!("coalesce(CAST({c} AS TEXT), '-')"))
                .collect::<Vec<_>>()
                .join(" || '|' || ")
        };
        let b = |c: &str| format!("CASE WHEN {c} THEN 1 ELSE 0 END");
        let f = |c: &str| format!("CAST(round({c} * 1000) AS BIGINT)");
        let mut tables = [
            (
                "episodes",
                vec!["user_id", "job_id", "speaker", "text", "summary", &f("importance"), "tags",
                     "occurred_ms", "evidence", "context"]
                    .into_iter()
                    .map(String::from)
                    .collect::<Vec<_>>(),
                "episodes",
                vec!["observed_ms", "created_ms"],
            ),
            (
                "entities",
                ["user_id", "name", "norm_name", "kind"].map(String::from).to_vec(),
                "entities",
                vec!["created_ms"],
            ),
            (
                "aliases",
                ["a.user_id", "a.alias_norm", "e.norm_name"].map(String::from).to_vec(),
                "entity_aliases a JOIN entities e ON e.id = a.entity_id",
                vec![],
            ),
            (
                "relations",
                vec!["r.user_id".into(), "s.norm_name".into(), "r.predicate".into(), "o.norm_name".into(),
                     "r.fact".into(), b("r.exclusive"), "r.valid_ms".into(), "r.invalid_ms".into(),
                     "mo.norm_name || '@' || CAST(m.valid_ms AS TEXT)".into(), "r.evidence".into(),
                     "r.job_id".into()],
                "relations r JOIN entities s ON s.id = r.subject_id JOIN entities o ON o.id = r.object_id
                 LEFT JOIN relations m ON m.id = r.merged_into LEFT JOIN entities mo ON mo.id = m.object_id",
                vec!["r.created_ms"],
            ),
            (
                "rules",
                vec!["r.user_id".into(), "r.kind".into(), "r.topic".into(), "r.statement".into(),
                     f("r.confidence"), "x.statement".into(), b("r.invalid_ms IS NULL"), "r.evidence".into()],
                "rules r LEFT JOIN rules x ON x.id = r.superseded_by",
                vec!["r.first_ms", "r.last_ms", "r.invalid_ms", "r.created_ms"],
            ),
            (
                "edits",
                ["user_id", "tier", "memory_id", "action", "actor", "signature", "source_job_id", "evidence"]
                    .map(String::from)
                    .to_vec(),
                "memory_edits",
                vec!["at_ms", "before", "after"],
            ),
            (
                "turns",
                vec!["id".into(), "user_id".into(), "session_id".into(), "user_message".into(),
                     "assistant_response".into(), "ts_ms".into(), "metadata".into(), "request_hash".into(),
                     "job_id".into(), b("reflected"), b("folded")],
                "turns",
                vec!["created_ms"],
            ),
            (
                "jobs",
                ["job_id", "user_id", "priority", "state", "payload", "attempts", "max_retries",
                 "lease_owner", "lease_expires_ms", "last_error", "dead_reason"]
                    .map(String::from)
                    .to_vec(),
                "jobs",
                vec!["available_ms", "published_ms", "created_ms", "updated_ms", "completed_ms"],
            ),
        ];
        tables
            .iter_mut()
            .map(|(name, cols, from, timed)| {
                if times {
                    cols.extend(timed.iter().map(|c| c.to_string()));
                }
                let cols: Vec<&str> = cols.iter().map(String::as_str).collect();
                (*name, format!("SELECT {} FROM {from}", row(&cols)))
            })
            .collect()
    }

    fn dump_sqlite(path: &Path, times: bool) -> Vec<String> {
        let c = rusqlite::Connection::open(path).unwrap();
        let mut out = Vec::new();
        for (name, sql) in dump_sql(times) {
            let mut st = c.prepare(&sql).unwrap_or_else(|e| panic!("{sql}: {e}"));
            let rows = st.query_map([], |r| r.get::<_, String>(0)).unwrap();
            out.extend(rows.map(|r| format!("{name}: {}", scrub_str(&r.unwrap()))));
        }
        out.sort();
        out
    }

    fn dump_pg(pg: &PgStore, times: bool) -> Vec<String> {
        let mut out = Vec::new();
        for (name, sql) in dump_sql(times) {
            let rows = pg
                .read(|c| Ok(c.query(&sql, &[])?))
                .unwrap_or_else(|e| panic!("{sql}: {e:#}"));
            out.extend(
                rows.iter()
                    .map(|r| format!("{name}: {}", scrub_str(r.get::<_, &str>(0)))),
            );
        }
        out.sort();
        out
    }

    fn assert_same_rows(pg: &[String], sq: &[String]) {
        let only_pg: Vec<_> = pg.iter().filter(|r| !sq.contains(r)).collect();
        let only_sq: Vec<_> = sq.iter().filter(|r| !pg.contains(r)).collect();
        assert!(
            only_pg.is_empty() && only_sq.is_empty() && pg.len() == sq.len(),
            "stored state differs\nonly in PostgreSQL: {only_pg:#?}\nonly in SQLite: {only_sq:#?}"
        );
    }

    /// With pgvector, every episode's `embedding_v` is its `embedding`.
    fn assert_vectors_in_step(pg: &PgStore) {
        if pg.vector_mode() != VectorMode::Pgvector {
            return;
        }
        let mut checked = 0;
        let rows = pg
            .read(|c| Ok(c.query("SELECT id, embedding, embedding_v::text FROM episodes", &[])?))
            .unwrap();
        for r in rows {
            let blob: Vec<u8> = r.get(1);
            let text: Option<String> = r.get(2);
            let want = blob_to_vec(&blob);
            match text {
                Some(t) => {
                    let got: Vec<f32> = t
                        .trim_matches(|c| c == '[' || c == ']')
                        .split(',')
                        .map(|x| x.parse().unwrap())
                        .collect();
                    assert_eq!(got, want, "episode {}", r.get::<_, i64>(0));
                    checked += 1;
                }
                None => assert!(
                    want.is_empty() || !want.iter().all(|x| x.is_finite()),
                    "episode {} has no embedding_v",
                    r.get::<_, i64>(0)
                ),
            }
        }
        assert!(checked > 0, "no episode with a vector to check");
    }

    fn outcome(r: anyhow::Result<Result<Value, EditRefused>>) -> Value {
        match r {
            Ok(Ok(v)) => v,
            Ok(Err(e)) => json!({"refused": e.to_string()}),
            Err(e) => json!({"error": format!("{e:#}")}),
        }
    }

    fn pause() {
        // Distinct "now" for each edit, so the order of rules stated now is the same on both.
        std::thread::sleep(std::time::Duration::from_millis(3));
    }

    /// The same edits on any backend: adds, then updates, then deletes, then refusals (ids
    /// stay equal across backends: PostgreSQL consumes an id on a refused insert, SQLite
    /// reuses the highest id after a delete).
    fn edit_script(b: &dyn Backend) -> Vec<Value> {
        let mut out = Vec::new();
        let ep = |text: &str, seed| NewEpisode {
            text: text.into(),
            speaker: "Ana".into(),
            occurred_ms: t(3, 12).timestamp_millis(),
            importance: 0.7,
            tags: vec!["move".into(), "city".into()],
            embedding: vector(seed),
        };
        let fact = |o: &str, day, excl| NewFact {
            subject: "Ana".into(),
            predicate: "LIVES_IN".into(),
            object: o.into(),
            fact: format!("Ana lives in {o}."),
            valid_ms: t(day, 10).timestamp_millis(),
            exclusive: excl,
        };
        let rule = |s: &str, seed| NewRule {
            kind: "preference".into(),
            topic: "language".into(),
            statement: s.into(),
            embedding: vector(seed),
        };
        let e1 = b
            .add_episode("ana", "local", &ep("Ana moved to Paris.", 1))
            .unwrap();
        let e1 = e1["id"].as_i64().unwrap();
        pause();
        let e2 = b
            .add_episode("bob", "key1", &ep("Bob likes tea.", 2))
            .unwrap();
        let e2 = e2["id"].as_i64().unwrap();
        out.push(json!([e1, e2]));
        let mut facts = Vec::new();
        for (o, day, excl) in [
            ("Paris", 1, Some(true)),
            ("Berlin", 5, None),
            ("Rome", 5, None),
            ("the Paris", 9, None),
        ] {
            pause();
            let v = outcome(b.add_fact("ana", "local", &fact(o, day, excl)));
            facts.push(v["id"].as_i64().unwrap_or(-1));
            out.push(v);
        }
        pause();
        out.push(outcome(b.add_fact(
            "ana",
            "local",
            &NewFact {
                subject: "my sister Eva".into(),
                predicate: "LIKES".into(),
                object: "Jazz".into(),
                fact: "Eva likes jazz.".into(),
                valid_ms: t(2, 9).timestamp_millis(),
                exclusive: None,
            },
        )));
        let mut rules = Vec::new();
        for (s, seed) in [
            ("Answer in Spanish.", 3),
            ("Answer in French.", 4),
            ("Answer in Dutch.", 7),
        ] {
            pause();
            let v = outcome(b.add_rule("ana", "local", &rule(s, seed)));
            rules.push(v["id"].as_i64().unwrap());
            out.push(v);
        }
        // Updates.
        pause();
        out.push(outcome(b.update_episode(
            "ana",
            "local",
            e1,
            &EpisodePatch {
                text: Some(("Ana moved to Lyon.".into(), vector(9))),
                importance: Some(0.25),
                tags: Some(vec!["lyon".into()]),
            },
        )));
        pause();
        out.push(outcome(b.update_episode(
            "ana",
            "local",
            e2,
            &EpisodePatch::default(),
        )));
        pause();
        out.push(outcome(b.update_fact(
            "ana",
            "local",
            facts[1],
            &FactPatch {
                fact: Some("Ana lives in Munich.".into()),
                object: Some("Munich".into()),
            },
        )));
        pause();
        out.push(outcome(b.update_fact(
            "ana",
            "local",
            999,
            &FactPatch {
                fact: Some("x".into()),
                object: None,
            },
        )));
        pause();
        out.push(outcome(b.update_fact(
            "ana",
            "local",
            facts[3],
            &FactPatch {
                fact: None,
                object: Some("Madrid".into()),
            },
        )));
        pause();
        out.push(outcome(b.update_rule(
            "ana",
            "local",
            rules[0],
            &RulePatch {
                statement: Some(("Answer in German.".into(), vector(5))),
                kind: None,
            },
        )));
        pause();
        out.push(outcome(b.update_rule(
            "ana",
            "local",
            rules[1],
            &RulePatch {
                statement: None,
                kind: Some("instruction".into()),
            },
        )));
        out.push(json!(b.list_edits("ana", 100, 0).unwrap()));
        // Deletes.
        pause();
        out.push(outcome(b.delete_memory(
            "ana",
            "local",
            EditTier::Procedural,
            rules[1],
        )));
        pause();
        out.push(outcome(b.delete_memory(
            "ana",
            "local",
            EditTier::Semantic,
            facts[0],
        )));
        pause();
        out.push(outcome(b.delete_memory(
            "ana",
            "local",
            EditTier::Episodic,
            e1,
        )));
        pause();
        out.push(outcome(b.delete_memory(
            "ana",
            "local",
            EditTier::Episodic,
            e2,
        )));
        out.push(outcome(b.delete_memory(
            "ana",
            "local",
            EditTier::Semantic,
            facts[0],
        )));
        out.push(outcome(b.delete_memory(
            "ana",
            "local",
            EditTier::Procedural,
            999,
        )));
        pause();
        out.push(outcome(b.add_fact(
            "ana",
            "local",
            &fact("Paris", 12, Some(true)),
        )));
        // Refusals that insert nothing.
        out.push(outcome(b.update_fact(
            "ana",
            "local",
            facts[1],
            &FactPatch {
                fact: None,
                object: Some("Rome".into()),
            },
        )));
        out.push(outcome(b.update_rule(
            "ana",
            "local",
            rules[0],
            &RulePatch {
                statement: Some(("Answer in Dutch.".into(), vector(8))),
                kind: None,
            },
        )));
        out.push(outcome(b.update_rule(
            "bob",
            "local",
            rules[0],
            &RulePatch::default(),
        )));
        out.push(json!(b.list_edits("ana", 100, 0).unwrap()));
        out
    }

    /// After [`edit_script`], what makes ids diverge: PostgreSQL consumes an id on a refused
    /// or rolled-back insert, SQLite reuses the highest id after a delete. Compared without ids.
    fn edit_script_ids_apart(b: &dyn Backend) -> Vec<Value> {
        let mut out = Vec::new();
        let fact = |o: &str, day| NewFact {
            subject: "Ana".into(),
            predicate: "LIVES_IN".into(),
            object: o.into(),
            fact: format!("Ana lives in {o}."),
            valid_ms: t(day, 10).timestamp_millis(),
            exclusive: None,
        };
        let rule = |s: &str| NewRule {
            kind: "preference".into(),
            topic: "language".into(),
            statement: s.into(),
            embedding: vector(11),
        };
        // Paris on day 14 restates Paris on day 12: merged into it at once, so the reply is
        // the fact it merged into and the edit is recorded on that fact (on SQLite too).
        pause();
        out.push(outcome(b.add_fact("ana", "local", &fact("Paris", 14))));
        out.push(outcome(b.add_fact("ana", "local", &fact("Rome", 5))));
        out.push(outcome(b.add_rule(
            "ana",
            "local",
            &rule("Answer in German."),
        )));
        pause();
        out.push(outcome(b.add_rule(
            "ana",
            "local",
            &rule("Answer in Italian."),
        )));
        pause();
        out.push(outcome(b.add_fact("ana", "local", &fact("Oslo", 20))));
        out.push(json!(b.list_edits("ana", 3, 2).unwrap()));
        out.push(json!(b.list_edits("ana", 100, 0).unwrap()));
        out.push(json!(b.list_edits("bob", 100, 0).unwrap()));
        out.push(json!(b.list_edits("nobody", 100, 0).unwrap()));
        out
    }

    /// [`scrub`], and ids too: `id`, `memory_id`, `superseded_by`, `edit_id` and the edit
    /// ids in `manual:<n>` evidence.
    fn scrub_ids(v: &Value) -> Value {
        match scrub(v) {
            Value::Object(m) => Value::Object(
                m.into_iter()
                    .map(|(k, x)| {
                        let x = match k.as_str() {
                            "id" | "memory_id" | "superseded_by" | "edit_id" if !x.is_null() => {
                                json!("<id>")
                            }
                            _ => scrub_ids(&x),
                        };
                        (k, x)
                    })
                    .collect(),
            ),
            Value::Array(a) => Value::Array(a.iter().map(scrub_ids).collect()),
            Value::String(s) => Value::String(scrub_edit_ids(&s)),
            other => other,
        }
    }

    /// `manual:<digits>` as `manual:<n>`.
    fn scrub_edit_ids(s: &str) -> String {
        let mut out = String::new();
        let mut rest = s;
        while let Some(i) = rest.find("manual:") {
            out.push_str(&rest[..i + 7]);
            rest = &rest[i + 7..];
            let digits = rest.chars().take_while(char::is_ascii_digit).count();
            if digits > 0 {
                out.push_str("<n>");
                rest = &rest[digits..];
            }
        }
        out.push_str(rest);
        out
    }

    #[test]
    fn edits_audit_and_tombstones_match_sqlite() {
        let Some(pg) = pg() else { return };
        let dir = tempfile::tempdir().unwrap();
        let sq = sqlite(dir.path(), "edits.db");
        let want = edit_script(&sq);
        let got_a = edit_script(pg.store());
        assert_eq!(want.len(), got_a.len());
        for (i, (w, g)) in want.iter().zip(&got_a).enumerate() {
            assert_eq!(scrub(g), scrub(w), "step {i}");
        }
        assert_same_rows(
            &dump_pg(pg.store(), false),
            &dump_sqlite(&dir.path().join("edits.db"), false),
        );
        let want = edit_script_ids_apart(&sq);
        let got = edit_script_ids_apart(pg.store());
        assert_eq!(want.len(), got.len());
        for (i, (w, g)) in want.iter().zip(&got).enumerate() {
            assert_eq!(scrub_ids(g), scrub_ids(w), "step {i} after the first part");
        }
        // Spot checks that the script did what it means to.
        let all = serde_json::to_string(&(got_a, got)).unwrap();
        assert!(all.contains("Answer in Italian."), "{all}");
        assert!(all.contains("is already stored"), "{all}");
        assert!(all.contains("another fact already says that"), "{all}");
        assert!(all.contains("no episode with id"), "{all}");
        assert!(!all.contains("fact just added"), "{all}");
        let ids_apart = |rows: Vec<String>| -> Vec<String> {
            let mut rows: Vec<String> = rows
                .into_iter()
                .map(|r| {
                    // The edits' memory_id (third column) and manual:<edit id> evidence.
                    let r = scrub_edit_ids(&r);
                    match r.strip_prefix("edits: ") {
                        Some(e) => {
                            let mut c: Vec<&str> = e.split('|').collect();
                            c[2] = "<id>";
                            format!("edits: {}", c.join("|"))
                        }
                        None => r,
                    }
                })
                .collect();
            rows.sort();
            rows
        };
        assert_same_rows(
            &ids_apart(dump_pg(pg.store(), false)),
            &ids_apart(dump_sqlite(&dir.path().join("edits.db"), false)),
        );
        let tombstones = pg
            .store()
            .read(|c| Ok(c.query("SELECT tier, signature FROM memory_edits WHERE signature IS NOT NULL ORDER BY id", &[])?))
            .unwrap();
        let sigs: Vec<String> = tombstones
            .iter()
            .map(|r| format!("{}:{}", r.get::<_, &str>(0), r.get::<_, &str>(1)))
            .collect();
        assert!(
            sigs.contains(&"semantic:ana|LIVES_IN|berlin".to_string()),
            "{sigs:?}"
        );
        assert!(
            sigs.contains(&"procedural:language|Answer in Spanish.".to_string()),
            "{sigs:?}"
        );
        assert!(
            sigs.iter().any(|s| s.starts_with("episodic:job:manual:")),
            "{sigs:?}"
        );
        assert_vectors_in_step(pg.store());
    }

    fn job(user: &str, n: u32, ts: chrono::DateTime<Utc>, text: &str) -> (NewTurn, ReflectionJob) {
        let id = format!("{user}-turn-{n}");
        let metadata = json!({"interaction_id": id, "speaker": "Ana", "dia_id": format!("D1:{n}")});
        let turn = NewTurn {
            interaction_id: id.clone(),
            user_id: user.into(),
            session_id: "s1".into(),
            user_message: text.into(),
            assistant_response: "Nice!".into(),
            ts_ms: ts.timestamp_millis(),
            metadata: metadata.clone(),
            request_hash: format!("hash-{id}"),
        };
        let job = ReflectionJob {
            job_id: format!("job-{id}"),
            user_id: user.into(),
            session_id: "s1".into(),
            user_message: text.into(),
            assistant_response: "Nice!".into(),
            timestamp: ts,
            priority: Priority::High,
            metadata,
            retry_count: 0,
            max_retries: 3,
            created_at: ts,
        };
        (turn, job)
    }

    fn relation(
        s: &str,
        p: &str,
        o: &str,
        at: chrono::DateTime<Utc>,
        exclusive: bool,
    ) -> RelationDraft {
        RelationDraft {
            subject: s.into(),
            predicate: p.into(),
            object: o.into(),
            fact: format!("{s} {p} {o}."),
            valid_at: at,
            exclusive,
        }
    }

    /// A SQLite store with reflected turns (episodes, a graph with aliases, restatements and
    /// an accumulating slot, rules of one topic), a queued and a dead job, explicit edits
    /// with tombstones, and a second user.
    fn seed_sqlite(sq: &SqliteStore) {
        let entity = |name: &str, kind: &str, aliases: &[&str]| EntityDraft {
            name: name.into(),
            kind: kind.into(),
            aliases: aliases.iter().map(|a| a.to_string()).collect(),
        };
        let turns = [
            ("ana", 1, t(1, 9), "I live in Paris with my mom Sarah."),
            (
                "ana",
                2,
                t(4, 9),
                "I moved to Berlin. Please answer in Spanish.",
            ),
            ("ana", 3, t(6, 9), "Still in Berlin! I like jazz and tea."),
            (
                "ana",
                4,
                t(8, 9),
                "Back in Paris. Answer in French from now on.",
            ),
            ("bob", 1, t(2, 9), "I live in Oslo."),
            ("ana", 5, t(9, 9), "Queued, never reflected."),
            ("ana", 6, t(9, 9), "This one died."),
        ];
        for (k, (user, n, ts, text)) in turns.into_iter().enumerate() {
            let (turn, job) = job(user, n, ts, text);
            let state = if n == 5 {
                JobState::Queued
            } else {
                JobState::Processing
            };
            sq.insert_turn_and_job(&turn, &job, state, QueueLimits::NONE)
                .unwrap();
            if n >= 5 {
                if n == 6 {
                    sq.dead_job(&job.job_id, "the processor failed").unwrap();
                }
                continue;
            }
            let draft = EpisodeDraft {
                text: format!("[{} May 2024] {text}", ts.format("%-d")),
                summary: text.chars().take(20).collect(),
                importance: 0.3 + 0.1 * n as f32,
                tags: vec!["life".into(), format!("t{n}")],
                occurred_at: ts - chrono::Duration::hours(n as i64),
            };
            sq.commit_episode(
                &job,
                "Ana",
                Some(&draft),
                Some(&vector(k as u32 + 10)),
                "previous turn",
                1.5,
            )
            .unwrap();
            let graph = match (user, n) {
                ("ana", 1) => GraphDraft {
                    entities: vec![
                        entity("Ana", "person", &[]),
                        entity("Sarah", "person", &["mom", "my mom"]),
                        entity("Paris", "place", &[]),
                    ],
                    relations: vec![
                        relation("Ana", "LIVES_IN", "Paris", ts, true),
                        relation("Sarah", "LIVES_IN", "Paris", ts, true),
                        relation("Ana", "MOTHER", "mom", ts, false),
                    ],
                },
                ("ana", 2) => GraphDraft {
                    entities: vec![entity("Berlin", "place", &["berlin city"])],
                    relations: vec![relation("Ana", "LIVES_IN", "Berlin", ts, true)],
                },
                ("ana", 3) => GraphDraft {
                    entities: vec![entity("Jazz", "thing", &[])],
                    relations: vec![
                        relation("Ana", "LIVES_IN", "Berlin", ts, true),
                        relation("Ana", "LIKES", "Jazz", ts, false),
                        relation("Ana", "LIKES", "Tea", ts, false),
                    ],
                },
                ("ana", 4) => GraphDraft {
                    entities: vec![],
                    relations: vec![
                        relation("Ana", "LIVES_IN", "Paris", ts, true),
                        relation("Ana", "LIKES", "Jazz", t(1, 8), false),
                    ],
                },
                _ => GraphDraft {
                    entities: vec![entity("Bob", "person", &[])],
                    relations: vec![relation("Bob", "LIVES_IN", "Oslo", ts, true)],
                },
            };
            sq.commit_graph(&job, &graph, 2.0).unwrap();
            let rules: Vec<(RuleDraft, Vec<f32>)> = match n {
                2 => vec![(
                    RuleDraft {
                        kind: "preference".into(),
                        statement: "Ana wants answers in Spanish.".into(),
                        confidence: 0.8,
                        topic: "language".into(),
                    },
                    vector(30),
                )],
                4 => vec![
                    (
                        RuleDraft {
                            kind: "instruction".into(),
                            statement: "Ana wants answers in French.".into(),
                            confidence: 0.9,
                            topic: "language".into(),
                        },
                        vector(31),
                    ),
                    (
                        RuleDraft {
                            kind: "preference".into(),
                            statement: "Ana likes short answers.".into(),
                            confidence: 0.6,
                            topic: "length".into(),
                        },
                        vector(32),
                    ),
                ],
                _ => vec![],
            };
            sq.commit_rules(&job, &rules, 0.5).unwrap();
            sq.complete_job(&job.job_id).unwrap();
        }
        // Explicit edits, with tombstones.
        let e = sq
            .add_episode(
                "ana",
                "local",
                &NewEpisode {
                    text: "Ana's birthday is in June.".into(),
                    speaker: "Ana".into(),
                    occurred_ms: t(10, 0).timestamp_millis(),
                    importance: 0.9,
                    tags: vec![],
                    embedding: vector(40),
                },
            )
            .unwrap();
        sq.update_episode(
            "ana",
            "key9",
            e["id"].as_i64().unwrap(),
            &EpisodePatch {
                importance: Some(0.95),
                ..Default::default()
            },
        )
        .unwrap()
        .unwrap();
        let eps = sq.list_episodes("ana", 100, 0).unwrap();
        let reflected = eps.iter().find(|e| e.job_id == "job-ana-turn-3").unwrap();
        sq.delete_memory("ana", "local", EditTier::Episodic, reflected.id)
            .unwrap()
            .unwrap();
        let f = sq
            .add_fact(
                "ana",
                "local",
                &NewFact {
                    subject: "Ana".into(),
                    predicate: "WORKS_AT".into(),
                    object: "Acme".into(),
                    fact: "Ana works at Acme.".into(),
                    valid_ms: t(7, 0).timestamp_millis(),
                    exclusive: Some(true),
                },
            )
            .unwrap()
            .unwrap();
        sq.update_fact(
            "ana",
            "local",
            f["id"].as_i64().unwrap(),
            &FactPatch {
                fact: Some("Ana works at Acme Corp.".into()),
                object: None,
            },
        )
        .unwrap()
        .unwrap();
        let tea = sq
            .list_facts("ana", 100, 0)
            .unwrap()
            .into_iter()
            .find(|f| f.object == "Tea")
            .unwrap();
        sq.delete_memory("ana", "local", EditTier::Semantic, tea.id)
            .unwrap()
            .unwrap();
        sq.add_rule(
            "ana",
            "local",
            &NewRule {
                kind: "constraint".into(),
                topic: "units".into(),
                statement: "Use metric units.".into(),
                embedding: vector(41),
            },
        )
        .unwrap()
        .unwrap();
        let spanish = sq
            .list_rules("ana", true, 100, 0)
            .unwrap()
            .into_iter()
            .find(|r| r.statement.contains("Spanish"))
            .unwrap();
        sq.update_rule(
            "ana",
            "local",
            spanish.id,
            &RulePatch {
                statement: Some(("Ana wants answers in Spanish, always.".into(), vector(42))),
                kind: None,
            },
        )
        .unwrap()
        .unwrap();
        sq.add_episode(
            "bob",
            "local",
            &NewEpisode {
                text: "Bob's note.".into(),
                speaker: "Bob".into(),
                occurred_ms: t(3, 0).timestamp_millis(),
                importance: 0.5,
                tags: vec!["x".into()],
                embedding: vec![],
            },
        )
        .unwrap();
    }

    fn export(b: &dyn Backend, user: &str) -> (Counts, Vec<String>) {
        let mut buf = Vec::new();
        let counts = b.export_user(user, "hash-test-model", &mut buf).unwrap();
        let text = String::from_utf8(buf).unwrap();
        let mut lines: Vec<String> = text.lines().map(String::from).collect();
        // The header's time is the export's own.
        let mut header: Value = serde_json::from_str(&lines[0]).unwrap();
        header["exported_at"] = Value::Null;
        lines[0] = header.to_string();
        (counts, lines)
    }

    fn import(b: &dyn Backend, lines: &[String]) -> anyhow::Result<Counts> {
        let text = lines.join("\n") + "\n";
        b.import_user(&mut text.as_bytes())
    }

    #[test]
    fn export_from_sqlite_imports_into_postgres_and_exports_the_same_lines() {
        let Some(pg) = pg() else { return };
        let pg = pg.store();
        let dir = tempfile::tempdir().unwrap();
        let src = sqlite(dir.path(), "src.db");
        seed_sqlite(&src);
        for user in ["ana", "bob", "nobody"] {
            let (counts, lines) = export(&src, user);
            if user == "ana" {
                assert!(
                    counts["turn"] == 6 && counts["edit"] >= 6 && counts["rule"] == 4,
                    "{counts:?}"
                );
            }
            // The reference: the same file imported into an empty SQLite store.
            let dst = sqlite(dir.path(), &format!("dst-{user}.db"));
            let want = import(&dst, &lines).unwrap();
            let got = import(pg, &lines).unwrap();
            assert_eq!(got, want, "{user}: import counts");
            let (_, again) = export(pg, user);
            assert_eq!(again, lines, "{user}: PostgreSQL's export of the import");
            assert_eq!(
                export(&dst, user).1,
                lines,
                "{user}: SQLite's export of the import"
            );
            // Idempotent: a second import adds nothing and changes nothing.
            assert_eq!(
                import(pg, &lines).unwrap(),
                Counts::new(),
                "{user}: second import"
            );
            assert_eq!(
                export(pg, user).1,
                lines,
                "{user}: export after the second import"
            );
        }
        // Same stored state as SQLite's import of the same files, derived columns included.
        let mut want = Vec::new();
        for user in ["ana", "bob", "nobody"] {
            want.extend(dump_sqlite(
                &dir.path().join(format!("dst-{user}.db")),
                true,
            ));
        }
        want.sort();
        let got = dump_pg(pg, true);
        // Non-trivial: restatements merged, superseded rules, tombstones, every table.
        for needle in [
            "|berlin@",
            "rules: ana|preference|language|Ana wants answers in Spanish, always.|800|Ana wants answers in French.|0",
            "edits: ana|semantic|",
            "turns: ana-turn-5|",
            "jobs: job-ana-turn-6|ana|2|dead|",
            "aliases: ana|mom|sarah",
        ] {
            assert!(
                got.iter().any(|r| r.contains(needle)),
                "no {needle:?} in {got:#?}"
            );
        }
        assert_same_rows(&got, &want);
        assert_vectors_in_step(pg);
        // Derived state really was derived: Paris (day 1) is invalid from Berlin (day 4).
        let invalid: Option<i64> = pg
            .read(|c| {
                Ok(c.query_one(
                    "SELECT r.invalid_ms FROM relations r JOIN entities o ON o.id = r.object_id
                     WHERE r.user_id = 'ana' AND r.predicate = 'LIVES_IN' AND o.norm_name = 'paris'
                       AND r.valid_ms = $1 AND r.subject_id = (SELECT id FROM entities WHERE user_id = 'ana' AND norm_name = 'ana')",
                    &[&t(1, 9).timestamp_millis()],
                )?
                .get(0))
            })
            .unwrap();
        assert_eq!(invalid, Some(t(4, 9).timestamp_millis()));
    }

    #[test]
    fn a_bad_import_line_is_named_and_nothing_is_stored() {
        let Some(pg) = pg() else { return };
        let pg = pg.store();
        let dir = tempfile::tempdir().unwrap();
        let src = sqlite(dir.path(), "src.db");
        seed_sqlite(&src);
        let (_, lines) = export(&src, "ana");
        let dst = sqlite(dir.path(), "dst.db");
        let mut bad = lines.clone();
        let i = bad
            .iter()
            .position(|l| l.contains("\"type\":\"rule\""))
            .unwrap();
        let mut rule: Value = serde_json::from_str(&bad[i]).unwrap();
        rule["confidence"] = json!("high");
        bad[i] = rule.to_string();
        let cases: Vec<Vec<String>> = vec![
            bad,
            vec![],
            vec![r#"{"type":"header","format":"other"}"#.into()],
            vec![lines[0].replace("\"version\":1", "\"version\":2")],
            vec![lines[0].clone(), lines[0].clone()],
            vec![lines[0].clone(), r#"{"type":"mystery"}"#.into()],
            vec![lines[0].clone(), "not json".into()],
        ];
        for case in cases {
            let want = format!("{:#}", import(&dst, &case).unwrap_err());
            let got = format!("{:#}", import(pg, &case).unwrap_err());
            assert_eq!(got, want);
        }
        assert_same_rows(&dump_pg(pg, true), &[]);
    }

    #[test]
    fn reembed_helpers_match_sqlite() {
        let Some(pg) = pg() else { return };
        let dir = tempfile::tempdir().unwrap();
        let sq = sqlite(dir.path(), "reembed.db");
        let run = |b: &dyn Backend| -> Vec<Value> {
            for (user, n) in [("ana", 5), ("bob", 2)] {
                for i in 0..n {
                    b.add_episode(
                        user,
                        "local",
                        &NewEpisode {
                            text: format!("{user} episode {i}"),
                            speaker: user.into(),
                            occurred_ms: 0,
                            importance: 0.5,
                            tags: vec![],
                            embedding: vector(i),
                        },
                    )
                    .unwrap();
                    b.add_rule(
                        user,
                        "local",
                        &NewRule {
                            kind: "preference".into(),
                            topic: format!("topic{i}"),
                            statement: format!("{user} rule {i}"),
                            embedding: vector(i),
                        },
                    )
                    .unwrap()
                    .unwrap();
                }
            }
            let mut out = vec![
                json!(b.count_embedded(None).unwrap()),
                json!(b.count_embedded(Some("bob")).unwrap()),
                json!(b.count_embedded(Some("nobody")).unwrap()),
            ];
            for what in [Embedded::Episodes, Embedded::Rules] {
                for user in [None, Some("ana"), Some("bob")] {
                    // Page through by id, 3 at a time.
                    let mut after = 0;
                    let mut all = Vec::new();
                    loop {
                        let page = b.texts_to_embed(what, user, after, 3).unwrap();
                        let Some(last) = page.last() else { break };
                        after = last.0;
                        all.extend(page);
                    }
                    let rows: Vec<(i64, Vec<f32>)> = all
                        .iter()
                        .map(|(id, text)| (*id, vector(text.len() as u32 + 50)))
                        .collect();
                    b.set_embeddings(what, &rows).unwrap();
                    out.push(json!(all));
                }
            }
            b.set_embeddings(Embedded::Episodes, &[]).unwrap();
            // A vector pgvector cannot hold is kept as bytes only.
            let first = b.texts_to_embed(Embedded::Episodes, None, 0, 1).unwrap()[0].0;
            b.set_embeddings(Embedded::Episodes, &[(first, vec![f32::NAN; DIM])])
                .unwrap();
            for user in ["ana", "bob"] {
                let (_, lines) = export(b, user);
                // Without the edit records and the times stamped "now".
                let records: Vec<Value> = lines
                    .iter()
                    .map(|l| serde_json::from_str::<Value>(l).unwrap())
                    .filter(|v| v["type"] != "edit")
                    .map(|mut v| {
                        for k in [
                            "created_at",
                            "observed_at",
                            "first_stated_at",
                            "last_stated_at",
                        ] {
                            if v.get(k).is_some() {
                                v[k] = Value::Null;
                            }
                        }
                        v
                    })
                    .collect();
                out.push(json!(records));
            }
            out
        };
        let want = run(&sq);
        let got = run(pg.store());
        for (i, (w, g)) in want.iter().zip(&got).enumerate() {
            assert_eq!(scrub(g), scrub(w), "step {i}");
        }
        assert_vectors_in_step(pg.store());
    }
}
