//! PostgreSQL: export and import of one user's memory (docs/EXPORT.md), as the SQLite
//! methods of the same names (`src/store/sqlite/export.rs`). The export reads one snapshot (a
//! read-only REPEATABLE READ transaction) and streams rows through portals; the import takes
//! the user's lock.

use std::collections::{BTreeSet, HashMap};
use std::io::{BufRead, Write};

use ::postgres::{IsolationLevel, Row, Transaction};
use anyhow::{Context, bail};
use serde_json::{Value, json};

use crate::store::derive::*;
use crate::store::*;
use crate::store::{blob_to_vec, ms_to_rfc3339, now_ms};

use crate::store::tiers::{self, TierSql};

use super::tiers::WriteTx;
use super::*;

/// Rows fetched per round trip when the export streams a query (a few in the unit tests, so
/// that they cross batch boundaries).
pub(super) const EXPORT_BATCH: i32 = if cfg!(test) { 3 } else { 256 };

/// The entity of `name` during an import: the one its entity line resolved to, else resolved
/// now (kind `other`), as SQLite's import does.
pub(super) fn pg_import_entity(
    tx: &mut Transaction<'_>,
    user: &str,
    vectors: VectorMode,
    entity_ids: &HashMap<String, i64>,
    name: &str,
) -> anyhow::Result<i64> {
    match entity_ids.get(name) {
        Some(id) => Ok(*id),
        None => WriteTx { tx, vectors }.resolve_entity(user, name, "other", now_ms()),
    }
}

/// Run `sql` and hand each row to `f`, fetching [`EXPORT_BATCH`] rows per round trip.
pub(super) fn pg_each_row(
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
                export_header(user, model),
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
        let (lines, user) = read_export(input)?;
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
                            let id = WriteTx { tx, vectors }.resolve_entity(user, name, s(v, "kind")?, ms(v, "created_at")?)?;
                            for a in v["aliases"].as_array().into_iter().flatten() {
                                let a = a.as_str().context("aliases: expected strings")?;
                                tx.execute(&insert_alias, &[&user, &a, &id])?;
                            }
                            entity_ids.insert(name.to_string(), id);
                            !existed
                        }
                        "fact" => {
                            let sid = pg_import_entity(tx, user, vectors, &entity_ids, s(v, "subject")?)?;
                            let oid = pg_import_entity(tx, user, vectors, &entity_ids, s(v, "object")?)?;
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
                tiers::rederive_slot(&mut WriteTx { tx, vectors }, user, *sid, p)?;
            }
            for t in &topics {
                tiers::rederive_topic(&mut WriteTx { tx, vectors }, user, t)?;
            }
            Ok(counts)
        })
    }
}
