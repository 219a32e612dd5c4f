//! SQLite: the tier commits (Tier 2 episodes, Tier 3 graph, Tier 4 rules), each once per
//! (job, tier), with entity resolution, the re-derivation of fact slots and rule topics, and
//! the tombstone checks that keep reflection from writing back what a user edited.

use std::collections::{BTreeSet, HashMap};

use rusqlite::{Connection, OptionalExtension, Transaction, params};
use serde_json::{Value, json};

use crate::extract::{EpisodeDraft, GraphDraft, REVOCATION, RuleDraft};
use crate::job::{ReflectionJob, Tier};
use crate::store::derive::*;
use crate::store::*;
use crate::store::{SqliteStore, now_ms, vec_to_blob};

impl SqliteStore {
    /// Run `f` (the tier's writes) and the tier's `completed` record in one transaction,
    /// unless the tier already committed for this job; then return the stored result.
    #[track_caller]
    pub(super) fn commit_tier(
        &self,
        job_id: &str,
        tier: Tier,
        latency_ms: f64,
        f: impl FnOnce(&Transaction) -> anyhow::Result<Value>,
    ) -> anyhow::Result<Value> {
        self.write(|tx| {
            let done: Option<Option<String>> = tx
                .query_row(
                    "SELECT result FROM job_tiers WHERE job_id = ?1 AND tier = ?2 AND status = 'completed'",
                    params![job_id, tier.as_str()],
                    |r| r.get(0),
                )
                .optional()?;
            if let Some(result) = done {
                let mut v: Value = result.and_then(|s| serde_json::from_str(&s).ok()).unwrap_or(Value::Null);
                if let Value::Object(m) = &mut v {
                    m.insert("already_committed".into(), Value::Bool(true));
                }
                return Ok(v);
            }
            // The job row is gone when its user was forgotten while the job was in flight:
            // write nothing, or the user's memory would come back after the DELETE. (Both run
            // under the one writer lock, so the check and the writes cannot interleave.)
            let exists: bool = tx
                .prepare_cached("SELECT count(*) FROM jobs WHERE job_id = ?1")?
                .query_row([job_id], |r| r.get::<_, i64>(0))?
                > 0;
            if !exists {
                return Ok(json!({"dropped": "the job's user was forgotten; nothing written"}));
            }
            let result = f(tx)?;
            tx.prepare_cached(
                "INSERT INTO job_tiers (job_id, tier, status, result, attempts, latency_ms, updated_ms)
                 VALUES (?1, ?2, 'completed', ?3, 1, ?4, ?5)
                 ON CONFLICT (job_id, tier) DO UPDATE SET status = 'completed', result = ?3, error = NULL,
                     attempts = attempts + 1, latency_ms = ?4, updated_ms = ?5",
            )?
            .execute(params![job_id, tier.as_str(), result.to_string(), latency_ms, now_ms()])?;
            Ok(result)
        })
    }

    /// Tier 2 commit: the episode (or the decision to keep none) for a job.
    #[allow(clippy::too_many_arguments)]
    ///
    /// `context`: the text of the turn before it in its session, indexed for full-text search
    /// (weighted below the episode's own text) but never shown.
    pub fn commit_episode(
        &self,
        job: &ReflectionJob,
        speaker: &str,
        draft: Option<&EpisodeDraft>,
        embedding: Option<&[f32]>,
        context: &str,
        latency_ms: f64,
    ) -> anyhow::Result<Value> {
        self.commit_tier(&job.job_id, Tier::Episodic, latency_ms, |tx| {
            use crate::store::derive::episode_signature;
            use crate::store::EditTier;
            if has_tombstones(tx, &job.user_id, EditTier::Episodic)?
                && tombstoned(tx, &job.user_id, EditTier::Episodic, &episode_signature(&job.job_id), &job.job_id, &job.evidence())?
            {
                return Ok(json!({"episode_id": null, "skipped": "edited or deleted by the user; reflection keeps the user's version"}));
            }
            // Re-reflection replaces what an earlier run of this job wrote.
            tx.prepare_cached("DELETE FROM episodes WHERE job_id = ?1")?.execute([&job.job_id])?;
            let (Some(d), Some(e)) = (draft, embedding) else {
                return Ok(json!({"episode_id": null, "skipped": "small talk: nothing worth remembering"}));
            };
            tx.prepare_cached(
                "INSERT INTO episodes (user_id, job_id, speaker, text, summary, importance, tags, occurred_ms,
                                       observed_ms, embedding, evidence, created_ms, context)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
            )?
            .execute(params![
                job.user_id,
                job.job_id,
                speaker,
                d.text,
                d.summary,
                d.importance,
                serde_json::to_string(&d.tags)?,
                d.occurred_at.timestamp_millis(),
                job.timestamp.timestamp_millis(),
                vec_to_blob(e),
                serde_json::to_string(&job.evidence())?,
                now_ms(),
                context
            ])?;
            Ok(json!({"episode_id": tx.last_insert_rowid(), "importance": d.importance, "tags": d.tags}))
        })
    }

    /// Tier 3 commit: resolve entities to one node per real thing for this user, then add the
    /// relations and re-derive validity of every exclusive slot they touch.
    pub fn commit_graph(
        &self,
        job: &ReflectionJob,
        draft: &GraphDraft,
        latency_ms: f64,
    ) -> anyhow::Result<Value> {
        let user = job.user_id.as_str();
        let evidence = job.evidence();
        self.commit_tier(&job.job_id, Tier::Semantic, latency_ms, |tx| {
            let now = now_ms();
            let mut kinds: HashMap<String, &str> = HashMap::new();
            let mut entity_ids = BTreeSet::new();
            for e in &draft.entities {
                kinds.insert(norm_name(&e.name), e.kind.as_str());
                let id = resolve_entity(tx, user, &e.name, &e.kind, now)?;
                entity_ids.insert(id);
                for a in &e.aliases {
                    let an = norm_name(a);
                    if !an.is_empty() {
                        tx.prepare_cached(
                            "INSERT OR IGNORE INTO entity_aliases (user_id, alias_norm, entity_id) VALUES (?1, ?2, ?3)",
                        )?
                        .execute(params![user, an, id])?;
                    }
                }
            }
            // Endings first: a fact the turn says stopped holding, valid from `at` or
            // earlier and stated by another turn, becomes invalid at `at`.
            let mut ended = 0usize;
            for e in &draft.ends {
                let s = resolve_entity(tx, user, &e.subject, "person", now)?;
                let o = match &e.object {
                    Some(name) => Some(resolve_entity(tx, user, name, "other", now)?),
                    None => None,
                };
                let at = e.at.timestamp_millis();
                ended += tx
                    .prepare_cached(
                        "UPDATE relations SET invalid_ms = ?5
                         WHERE user_id = ?1 AND subject_id = ?2 AND predicate = ?3
                           AND (?4 IS NULL OR object_id = ?4) AND invalid_ms IS NULL
                           AND valid_ms <= ?5 AND job_id <> ?6",
                    )?
                    .execute(params![user, s, e.predicate, o, at, job.job_id])?;
            }
            let mut relation_ids = Vec::new();
            let edited = has_tombstones(tx, user, EditTier::Semantic)?;
            for r in &draft.relations {
                let kind_of = |n: &str| kinds.get(&norm_name(n)).copied().unwrap_or("other");
                let s = resolve_entity(tx, user, &r.subject, kind_of(&r.subject), now)?;
                let o = resolve_entity(tx, user, &r.object, kind_of(&r.object), now)?;
                if edited {
                    let norm = |id: i64| -> anyhow::Result<String> {
                        Ok(tx.prepare_cached("SELECT norm_name FROM entities WHERE id = ?1")?.query_row([id], |x| x.get(0))?)
                    };
                    let sig = fact_signature(&norm(s)?, &r.predicate, &norm(o)?);
                    if tombstoned(tx, user, EditTier::Semantic, &sig, &job.job_id, &evidence)? {
                        continue;
                    }
                }
                entity_ids.insert(s);
                entity_ids.insert(o);
                let valid = r.valid_at.timestamp_millis();
                if r.exclusive {
                    tx.prepare_cached(
                        "INSERT OR IGNORE INTO relations (user_id, subject_id, predicate, object_id, fact, exclusive,
                                                          valid_ms, evidence, job_id, created_ms)
                         VALUES (?1, ?2, ?3, ?4, ?5, 1, ?6, ?7, ?8, ?9)",
                    )?
                    .execute(params![user, s, r.predicate, o, r.fact, valid, serde_json::to_string(&evidence)?, job.job_id, now])?;
                    rederive_slot(tx, user, s, &r.predicate)?;
                } else {
                    // Accumulating facts: one row per (subject, predicate, object), valid from the
                    // earliest turn that stated it; evidence is the union. Both are commutative, so
                    // the processing order does not matter.
                    // The newest row of the fact; one that a turn ended before this statement
                    // stays ended, and the statement starts a new row.
                    let existing: Option<(i64, i64, String)> = tx
                        .query_row(
                            "SELECT id, valid_ms, evidence FROM relations
                             WHERE user_id = ?1 AND subject_id = ?2 AND predicate = ?3 AND object_id = ?4
                               AND (invalid_ms IS NULL OR invalid_ms > ?5)
                             ORDER BY id DESC LIMIT 1",
                            params![user, s, r.predicate, o, valid],
                            |x| Ok((x.get(0)?, x.get(1)?, x.get(2)?)),
                        )
                        .optional()?;
                    match existing {
                        Some((id, v, ev)) => {
                            let ev = union_json(&ev, &evidence);
                            if valid < v {
                                tx.execute(
                                    "UPDATE relations SET valid_ms = ?2, fact = ?3, evidence = ?4 WHERE id = ?1",
                                    params![id, valid, r.fact, ev],
                                )?;
                            } else {
                                tx.execute("UPDATE relations SET evidence = ?2 WHERE id = ?1", params![id, ev])?;
                            }
                        }
                        None => {
                            tx.execute(
                                "INSERT INTO relations (user_id, subject_id, predicate, object_id, fact, exclusive,
                                                        valid_ms, evidence, job_id, created_ms)
                                 VALUES (?1, ?2, ?3, ?4, ?5, 0, ?6, ?7, ?8, ?9)",
                                params![user, s, r.predicate, o, r.fact, valid, serde_json::to_string(&evidence)?, job.job_id, now],
                            )?;
                        }
                    }
                }
                relation_ids.push(format!("{} {} {}", r.subject, r.predicate, r.object));
            }
            Ok(json!({"entities": entity_ids.len(), "relations": relation_ids, "ended": ended}))
        })
    }

    /// Tier 4 commit: de-duplicate each rule by (topic, statement), then make the most
    /// recently stated rule of each touched topic the active one. A draft of kind
    /// [`REVOCATION`] writes no rule: it ends its topic's rule stated at or before the turn
    /// ([`revoke_topic`]).
    pub fn commit_rules(
        &self,
        job: &ReflectionJob,
        drafts: &[(RuleDraft, Vec<f32>)],
        latency_ms: f64,
    ) -> anyhow::Result<Value> {
        let user = job.user_id.as_str();
        let evidence = job.evidence();
        let ts = job.timestamp.timestamp_millis();
        self.commit_tier(&job.job_id, Tier::Procedural, latency_ms, |tx| {
            let mut topics = BTreeSet::new();
            let edited = has_tombstones(tx, user, EditTier::Procedural)?;
            let mut ended = 0usize;
            for (d, emb) in drafts {
                if d.kind == REVOCATION {
                    ended += revoke_topic(tx, user, &d.topic, ts)?;
                    topics.insert(d.topic.clone());
                    continue;
                }
                if edited
                    && tombstoned(
                        tx,
                        user,
                        EditTier::Procedural,
                        &rule_signature(&d.topic, &d.statement),
                        &job.job_id,
                        &evidence,
                    )?
                {
                    continue;
                }
                let existing: Option<(i64, i64, i64, String)> = tx
                    .query_row(
                        "SELECT id, first_ms, last_ms, evidence FROM rules WHERE user_id = ?1 AND topic = ?2 AND statement = ?3",
                        params![user, d.topic, d.statement],
                        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
                    )
                    .optional()?;
                match existing {
                    Some((id, first, last, ev)) => {
                        tx.execute(
                            "UPDATE rules SET first_ms = ?2, last_ms = ?3, evidence = ?4, confidence = max(confidence, ?5) WHERE id = ?1",
                            params![id, first.min(ts), last.max(ts), union_json(&ev, &evidence), d.confidence],
                        )?;
                    }
                    None => {
                        tx.execute(
                            "INSERT INTO rules (user_id, kind, topic, statement, confidence, first_ms, last_ms, embedding, evidence, created_ms)
                             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6, ?7, ?8, ?9)",
                            params![user, d.kind, d.topic, d.statement, d.confidence, ts, vec_to_blob(emb), serde_json::to_string(&evidence)?, now_ms()],
                        )?;
                    }
                }
                topics.insert(d.topic.clone());
            }
            for t in &topics {
                rederive_topic(tx, user, t)?;
            }
            let rules: Vec<&String> = drafts.iter().filter(|(d, _)| d.kind != REVOCATION).map(|(d, _)| &d.statement).collect();
            Ok(json!({"rules": rules, "ended": ended}))
        })
    }

    // ---------------------------------------------------------------- reads for recall
}

/// The user's entity for `name`: by alias, then by normalised name, else a new one.
pub(crate) fn resolve_entity(
    tx: &Transaction,
    user: &str,
    name: &str,
    kind: &str,
    now: i64,
) -> anyhow::Result<i64> {
    let n = entity_key(name);
    if let Some(id) = tx
        .prepare_cached(
            "SELECT entity_id FROM entity_aliases WHERE user_id = ?1 AND alias_norm = ?2",
        )?
        .query_row(params![user, n], |r| r.get::<_, i64>(0))
        .optional()?
    {
        return Ok(id);
    }
    let id: i64 = tx
        .prepare_cached(
            "INSERT INTO entities (user_id, name, norm_name, kind, created_ms) VALUES (?1, ?2, ?3, ?4, ?5)
             ON CONFLICT (user_id, norm_name) DO UPDATE SET
                 kind = CASE WHEN entities.kind = 'other' THEN excluded.kind ELSE entities.kind END
             RETURNING id",
        )?
        .query_row(params![user, name.trim(), n, kind, now], |r| r.get(0))?;
    tx.prepare_cached(
        "INSERT OR IGNORE INTO entity_aliases (user_id, alias_norm, entity_id) VALUES (?1, ?2, ?3)",
    )?
    .execute(params![user, n, id])?;
    Ok(id)
}

/// Re-derive validity in an exclusive slot (subject, predicate) from its facts' own times.
/// In time order, a fact with the same object as the run before it is a restatement: it is
/// merged into the run's first fact. Each run's first fact is invalid from the `valid_ms` of
/// the next run. A pure function of the set of facts, so the processing order cannot matter.
pub(crate) fn rederive_slot(
    tx: &Transaction,
    user: &str,
    subject: i64,
    predicate: &str,
) -> anyhow::Result<()> {
    let mut stmt = tx.prepare_cached(
        "SELECT r.id, r.object_id, r.valid_ms FROM relations r JOIN entities o ON o.id = r.object_id
         WHERE r.user_id = ?1 AND r.subject_id = ?2 AND r.predicate = ?3 AND r.exclusive = 1
         ORDER BY r.valid_ms, o.norm_name, r.id",
    )?;
    let facts: Vec<(i64, i64, i64)> = stmt
        .query_map(params![user, subject, predicate], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?))
        })?
        .collect::<Result<_, _>>()?;
    let mut update =
        tx.prepare_cached("UPDATE relations SET invalid_ms = ?2, merged_into = ?3 WHERE id = ?1")?;
    for r in slot_rows(&facts) {
        update.execute(params![r.id, r.invalid_ms, r.merged_into])?;
    }
    Ok(())
}

/// Re-derive which rule of a topic is active: the one stated last (ties: by statement),
/// unless the topic was ended at or after that ([`revoke_topic`]); the others are superseded
/// by it. A rule ended by a revocation is marked `superseded_by` = its own id with
/// `invalid_ms` = the ending turn's time; that mark stays on a rule that is not the newest
/// (it is inactive either way), so a later re-derivation still knows the topic was ended and
/// does not bring the ended rule back. Only the newest rule stated after every ending is active.
pub(crate) fn rederive_topic(tx: &Transaction, user: &str, topic: &str) -> anyhow::Result<()> {
    let mut stmt = tx.prepare_cached(
        "SELECT id, last_ms, superseded_by, invalid_ms FROM rules WHERE user_id = ?1 AND topic = ?2
         ORDER BY last_ms DESC, statement DESC",
    )?;
    let rules: Vec<TopicRule> = stmt
        .query_map(params![user, topic], |r| {
            Ok(TopicRule {
                id: r.get(0)?,
                last_ms: r.get(1)?,
                superseded_by: r.get(2)?,
                invalid_ms: r.get(3)?,
            })
        })?
        .collect::<Result<_, _>>()?;
    let mut update =
        tx.prepare_cached("UPDATE rules SET superseded_by = ?2, invalid_ms = ?3 WHERE id = ?1")?;
    for (id, superseded_by, invalid_ms) in topic_rows(&rules) {
        update.execute(params![id, superseded_by, invalid_ms])?;
    }
    Ok(())
}

/// A turn ended `topic` at `at_ms` without naming a replacement: its rule stated last at or
/// before `at_ms` is marked ended (`superseded_by` = itself, `invalid_ms` = `at_ms`, the
/// latest ending kept); [`rederive_topic`] then decides what is active. Nothing is inserted;
/// re-applying the same ending changes nothing. Returns the number of rules marked.
pub(crate) fn revoke_topic(
    tx: &Transaction,
    user: &str,
    topic: &str,
    at_ms: i64,
) -> anyhow::Result<usize> {
    let target: Option<(i64, Option<i64>, Option<i64>)> = tx
        .query_row(
            "SELECT id, superseded_by, invalid_ms FROM rules WHERE user_id = ?1 AND topic = ?2 AND last_ms <= ?3
             ORDER BY last_ms DESC, statement DESC LIMIT 1",
            params![user, topic, at_ms],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .optional()?;
    let Some((id, sup, inv)) = target else {
        return Ok(0);
    };
    let at = match (sup == Some(id), inv) {
        (true, Some(prev)) => prev.max(at_ms),
        _ => at_ms,
    };
    Ok(tx.execute(
        "UPDATE rules SET superseded_by = ?1, invalid_ms = ?2 WHERE id = ?1",
        params![id, at],
    )?)
}

/// True when reflection of `job_id` (whose evidence is `evidence`) must not write the memory
/// `signature` of `tier` for `user`: a tombstone names that job or one of those evidence ids.
pub(crate) fn tombstoned(
    tx: &Connection,
    user: &str,
    tier: EditTier,
    signature: &str,
    job_id: &str,
    evidence: &[String],
) -> anyhow::Result<bool> {
    let mut stmt = tx.prepare_cached(
        "SELECT source_job_id, evidence FROM memory_edits
         WHERE user_id = ?1 AND tier = ?2 AND signature = ?3",
    )?;
    let rows = stmt.query_map(params![user, tier.as_str(), signature], |r| {
        Ok((
            r.get::<_, Option<String>>(0)?,
            r.get::<_, Option<String>>(1)?,
        ))
    })?;
    for row in rows {
        let (job, ev) = row?;
        if tombstone_applies(job.as_deref(), ev.as_deref(), job_id, evidence) {
            return Ok(true);
        }
    }
    Ok(false)
}

/// Whether `user` has any tombstone in `tier` (reflection skips the per-memory checks otherwise).
pub(crate) fn has_tombstones(tx: &Connection, user: &str, tier: EditTier) -> anyhow::Result<bool> {
    Ok(tx
        .prepare_cached(
            "SELECT EXISTS (SELECT 1 FROM memory_edits WHERE user_id = ?1 AND tier = ?2 AND signature IS NOT NULL)",
        )?
        .query_row(params![user, tier.as_str()], |r| r.get(0))?)
}
