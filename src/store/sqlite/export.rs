//! SQLite: Export and import of one user's memory as JSON Lines (schema: docs/EXPORT.md).
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
use std::io::{BufRead, Write};

use anyhow::{Context, bail};
use rusqlite::{OptionalExtension, params};
use serde_json::{Value, json};

use crate::store::derive::*;
use crate::store::*;
use crate::store::{SqliteStore, ms_to_rfc3339, now_ms};

use crate::store::tiers::{self, TierSql};

use super::WriteTx;

impl SqliteStore {
    /// Write `user`'s memory to `out` as JSON Lines; returns the lines written by type.
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
            line(
                export_header(user, model),
                &mut counts,
            )?;
            let mut st = c.prepare(
                "SELECT t.id, t.session_id, t.user_message, t.assistant_response, t.ts_ms, t.metadata, t.request_hash,
                        t.created_ms, t.reflected, j.job_id, j.priority, j.state, j.payload, j.max_retries, j.created_ms
                 FROM turns t LEFT JOIN jobs j ON j.job_id = t.job_id WHERE t.user_id = ?1 ORDER BY t.ts_ms, t.created_ms, t.id",
            )?;
            let mut rows = st.query([user])?;
            while let Some(r) = rows.next()? {
                let meta: String = r.get(5)?;
                let payload: Option<String> = r.get(12)?;
                line(json!({
                    "type": "turn", "interaction_id": r.get::<_, String>(0)?, "session_id": r.get::<_, String>(1)?,
                    "user_message": r.get::<_, String>(2)?, "assistant_response": r.get::<_, String>(3)?,
                    "timestamp": ms_to_rfc3339(r.get(4)?), "metadata": serde_json::from_str::<Value>(&meta)?,
                    "request_hash": r.get::<_, String>(6)?, "stored_at": ms_to_rfc3339(r.get(7)?),
                    "reflected": r.get::<_, bool>(8)?,
                    "job": {
                        "job_id": r.get::<_, Option<String>>(9)?, "priority": r.get::<_, Option<i64>>(10)?,
                        "state": r.get::<_, Option<String>>(11)?,
                        "payload": payload.and_then(|p| serde_json::from_str::<Value>(&p).ok()),
                        "max_retries": r.get::<_, Option<i64>>(13)?,
                        "created_at": r.get::<_, Option<i64>>(14)?.map(ms_to_rfc3339),
                    },
                }), &mut counts)?;
            }
            let mut st = c.prepare(
                "SELECT job_id, speaker, text, summary, importance, tags, occurred_ms, observed_ms, embedding, evidence, created_ms, context
                 FROM episodes WHERE user_id = ?1 ORDER BY id",
            )?;
            let mut rows = st.query([user])?;
            while let Some(r) = rows.next()? {
                let tags: String = r.get(5)?;
                let ev: String = r.get(9)?;
                line(json!({
                    "type": "episode", "job_id": r.get::<_, String>(0)?, "speaker": r.get::<_, String>(1)?,
                    "text": r.get::<_, String>(2)?, "summary": r.get::<_, String>(3)?, "importance": r.get::<_, f64>(4)?,
                    "tags": serde_json::from_str::<Value>(&tags)?, "occurred_at": ms_to_rfc3339(r.get(6)?),
                    "observed_at": ms_to_rfc3339(r.get(7)?), "embedding": vec_hex(&r.get::<_, Vec<u8>>(8)?),
                    "evidence": serde_json::from_str::<Value>(&ev)?, "created_at": ms_to_rfc3339(r.get(10)?),
                    "context": r.get::<_, String>(11)?,
                }), &mut counts)?;
            }
            let mut st = c.prepare(
                "SELECT e.id, e.name, e.kind, e.created_ms FROM entities e WHERE e.user_id = ?1 ORDER BY e.id",
            )?;
            let mut aliases = c.prepare(
                "SELECT alias_norm FROM entity_aliases WHERE user_id = ?1 AND entity_id = ?2 ORDER BY alias_norm",
            )?;
            let mut rows = st.query([user])?;
            while let Some(r) = rows.next()? {
                let id: i64 = r.get(0)?;
                let al: Vec<String> = aliases
                    .query_map(params![user, id], |x| x.get(0))?
                    .collect::<Result<_, _>>()?;
                line(json!({"type": "entity", "name": r.get::<_, String>(1)?, "kind": r.get::<_, String>(2)?,
                            "aliases": al, "created_at": ms_to_rfc3339(r.get(3)?)}), &mut counts)?;
            }
            let mut st = c.prepare(
                "SELECT s.name, r.predicate, o.name, r.fact, r.exclusive, r.valid_ms, r.evidence, r.job_id, r.created_ms
                 FROM relations r JOIN entities s ON s.id = r.subject_id JOIN entities o ON o.id = r.object_id
                 WHERE r.user_id = ?1 ORDER BY r.id",
            )?;
            let mut rows = st.query([user])?;
            while let Some(r) = rows.next()? {
                let ev: String = r.get(6)?;
                line(json!({
                    "type": "fact", "subject": r.get::<_, String>(0)?, "predicate": r.get::<_, String>(1)?,
                    "object": r.get::<_, String>(2)?, "fact": r.get::<_, String>(3)?, "exclusive": r.get::<_, bool>(4)?,
                    "valid_at": ms_to_rfc3339(r.get(5)?), "evidence": serde_json::from_str::<Value>(&ev)?,
                    "job_id": r.get::<_, String>(7)?, "created_at": ms_to_rfc3339(r.get(8)?),
                }), &mut counts)?;
            }
            let mut st = c.prepare(
                "SELECT kind, topic, statement, confidence, first_ms, last_ms, embedding, evidence, created_ms
                 FROM rules WHERE user_id = ?1 ORDER BY id",
            )?;
            let mut rows = st.query([user])?;
            while let Some(r) = rows.next()? {
                let ev: String = r.get(7)?;
                line(json!({
                    "type": "rule", "kind": r.get::<_, String>(0)?, "topic": r.get::<_, String>(1)?,
                    "statement": r.get::<_, String>(2)?, "confidence": r.get::<_, f64>(3)?,
                    "first_stated_at": ms_to_rfc3339(r.get(4)?), "last_stated_at": ms_to_rfc3339(r.get(5)?),
                    "embedding": vec_hex(&r.get::<_, Vec<u8>>(6)?), "evidence": serde_json::from_str::<Value>(&ev)?,
                    "created_at": ms_to_rfc3339(r.get(8)?),
                }), &mut counts)?;
            }
            let mut st = c.prepare(
                "SELECT tier, memory_id, action, actor, at_ms, before, after, signature, source_job_id, evidence
                 FROM memory_edits WHERE user_id = ?1 ORDER BY id",
            )?;
            let mut rows = st.query([user])?;
            while let Some(r) = rows.next()? {
                let parse = |x: Option<String>| x.and_then(|s| serde_json::from_str::<Value>(&s).ok());
                line(json!({
                    "type": "edit", "tier": r.get::<_, String>(0)?, "memory_id": r.get::<_, i64>(1)?,
                    "action": r.get::<_, String>(2)?, "actor": r.get::<_, String>(3)?, "at": ms_to_rfc3339(r.get(4)?),
                    "before": parse(r.get(5)?), "after": parse(r.get(6)?), "signature": r.get::<_, Option<String>>(7)?,
                    "source_job_id": r.get::<_, Option<String>>(8)?, "evidence": parse(r.get(9)?),
                }), &mut counts)?;
            }
            Ok(())
        })?;
        out.flush()?;
        Ok(counts)
    }

    /// Read an export back, in ONE transaction (a bad line leaves the store as it was).
    /// Returns the records imported (new) by type; records already present are skipped.
    /// Errors name the line number and the field.
    pub fn import_user(&self, input: &mut dyn BufRead) -> anyhow::Result<Counts> {
        let (lines, user) = read_export(input)?;
        self.write(|tx| {
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
                                "INSERT OR IGNORE INTO turns (id, user_id, session_id, user_message, assistant_response, ts_ms,
                                                              metadata, request_hash, job_id, created_ms, reflected)
                                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
                                params![s(v, "interaction_id")?, user, s(v, "session_id")?, s(v, "user_message")?,
                                        s(v, "assistant_response")?, ms(v, "timestamp")?, v["metadata"].to_string(),
                                        s(v, "request_hash")?, job_id, ms(v, "stored_at")?, v["reflected"].as_bool().unwrap_or(false)],
                            )?;
                            if !job_id.is_empty() {
                                // A job that had not finished is queued again (it is reflected here).
                                let state = job["state"]
                                    .as_str()
                                    .filter(|st| matches!(*st, "completed" | "dead"))
                                    .unwrap_or("queued");
                                let created = opt_ms(job, "created_at")?.unwrap_or_else(now_ms);
                                tx.execute(
                                    "INSERT OR IGNORE INTO jobs (job_id, user_id, priority, state, payload, attempts, max_retries,
                                                                 available_ms, published_ms, created_ms, updated_ms, completed_ms)
                                     VALUES (?1, ?2, ?3, ?4, ?5, 0, ?6, ?7, ?7, ?7, ?7, CASE WHEN ?4 = 'completed' THEN ?7 END)",
                                    params![job_id, user, job["priority"].as_i64().unwrap_or(1), state,
                                            job["payload"].to_string(), job["max_retries"].as_i64().unwrap_or(3), created],
                                )?;
                            }
                            t > 0
                        }
                        "episode" => {
                            let emb = hex_vec(s(v, "embedding")?)?;
                            tx.execute(
                                "INSERT OR IGNORE INTO episodes (user_id, job_id, speaker, text, summary, importance, tags, occurred_ms,
                                                                 observed_ms, embedding, evidence, created_ms, context)
                                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
                                params![user, s(v, "job_id")?, s(v, "speaker")?, s(v, "text")?, s(v, "summary")?,
                                        v["importance"].as_f64().context("importance: expected a number")?,
                                        v["tags"].to_string(), ms(v, "occurred_at")?, ms(v, "observed_at")?, emb,
                                        v["evidence"].to_string(), ms(v, "created_at")?, v["context"].as_str().unwrap_or("")],
                            )? > 0
                        }
                        "entity" => {
                            let name = s(v, "name")?;
                            let existed = tx
                                .query_row("SELECT 1 FROM entities WHERE user_id = ?1 AND norm_name = ?2",
                                           params![user, norm_name(name)], |_| Ok(()))
                                .optional()?
                                .is_some();
                            let id = WriteTx(tx).resolve_entity(&user, name, s(v, "kind")?, ms(v, "created_at")?)?;
                            for a in v["aliases"].as_array().into_iter().flatten() {
                                let a = a.as_str().context("aliases: expected strings")?;
                                tx.execute("INSERT OR IGNORE INTO entity_aliases (user_id, alias_norm, entity_id) VALUES (?1, ?2, ?3)",
                                           params![user, a, id])?;
                            }
                            entity_ids.insert(name.to_string(), id);
                            !existed
                        }
                        "fact" => {
                            let ent = |name: &str| -> anyhow::Result<i64> {
                                match entity_ids.get(name) {
                                    Some(id) => Ok(*id),
                                    None => WriteTx(tx).resolve_entity(&user, name, "other", now_ms()),
                                }
                            };
                            let sid = ent(s(v, "subject")?)?;
                            let oid = ent(s(v, "object")?)?;
                            let predicate = s(v, "predicate")?;
                            let exclusive = v["exclusive"].as_bool().unwrap_or(false);
                            let added = tx.execute(
                                "INSERT OR IGNORE INTO relations (user_id, subject_id, predicate, object_id, fact, exclusive,
                                                                  valid_ms, evidence, job_id, created_ms)
                                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
                                params![user, sid, predicate, oid, s(v, "fact")?, exclusive, ms(v, "valid_at")?,
                                        v["evidence"].to_string(), s(v, "job_id")?, ms(v, "created_at")?],
                            )? > 0;
                            if exclusive {
                                slots.insert((sid, predicate.to_string()));
                            }
                            added
                        }
                        "rule" => {
                            let topic = s(v, "topic")?;
                            topics.insert(topic.to_string());
                            tx.execute(
                                "INSERT OR IGNORE INTO rules (user_id, kind, topic, statement, confidence, first_ms, last_ms,
                                                             embedding, evidence, created_ms)
                                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
                                params![user, s(v, "kind")?, topic, s(v, "statement")?,
                                        v["confidence"].as_f64().context("confidence: expected a number")?,
                                        ms(v, "first_stated_at")?, ms(v, "last_stated_at")?, hex_vec(s(v, "embedding")?)?,
                                        v["evidence"].to_string(), ms(v, "created_at")?],
                            )? > 0
                        }
                        "edit" => {
                            let at = ms(v, "at")?;
                            let sig = v["signature"].as_str();
                            let exists = tx
                                .query_row(
                                    "SELECT 1 FROM memory_edits WHERE user_id = ?1 AND tier = ?2 AND action = ?3 AND at_ms = ?4
                                     AND signature IS ?5 AND memory_id = ?6",
                                    params![user, s(v, "tier")?, s(v, "action")?, at, sig, v["memory_id"].as_i64().unwrap_or(0)],
                                    |_| Ok(()),
                                )
                                .optional()?
                                .is_some();
                            let opt = |f: &str| (!v[f].is_null()).then(|| v[f].to_string());
                            if !exists {
                                tx.execute(
                                    "INSERT INTO memory_edits (user_id, tier, memory_id, action, actor, at_ms, before, after,
                                                               signature, source_job_id, evidence)
                                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
                                    params![user, s(v, "tier")?, v["memory_id"].as_i64().unwrap_or(0), s(v, "action")?,
                                            s(v, "actor")?, at, opt("before"), opt("after"), sig,
                                            v["source_job_id"].as_str(), opt("evidence")],
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
                tiers::rederive_slot(&mut WriteTx(tx), &user, *sid, p)?;
            }
            for t in &topics {
                tiers::rederive_topic(&mut WriteTx(tx), &user, t)?;
            }
            Ok(counts)
        })
    }
}
