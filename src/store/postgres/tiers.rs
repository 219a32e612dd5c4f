//! PostgreSQL: the tier commits (Tier 2 episodes, Tier 3 graph, Tier 4 rules); the notes below
//! hold for the reads (`reads.rs`) and the window (`window.rs`) too. Ports of the SQLite backend's methods of the same names
//! ([`crate::store::SqliteStore`], `window.rs`), whose documentation is the reference
//! behaviour. Where the SQL differs:
//!
//! - Every tier commit and [`PgStore::fold_short_term`] and [`PgStore::forget_user`] take the
//!   per-user advisory lock ([`super::lock_user`]) first: SQLite's single writer serialises
//!   them, here several processes commit at once (see the module documentation of
//!   [`super`]). Forgetting takes it too, so a commit that found its job row cannot write
//!   after the user was forgotten.
//! - Text is ordered with `COLLATE "C"` wherever the order decides a result (the
//!   re-derivation of a fact slot and a rule topic, the alias lists): byte order, as SQLite's
//!   BINARY collation, whatever the database's locale.
//! - Full text: `websearch_to_tsquery` reads the `"term" OR "term"` expressions recall
//!   builds; the score is `-ts_rank_cd` with the episode's text at weight A (1.0) and its
//!   context at B (0.5), so that lower is better as with SQLite's `bm25()`.
//! - Statements that SQLite's schema scopes by a globally unique key (an episode by its job
//!   id) also filter on the user here.

use std::collections::{BTreeSet, HashMap};

use ::postgres::Transaction;
use ::postgres::types::ToSql;
use serde_json::{Value, json};

use crate::extract::{EpisodeDraft, GraphDraft, REVOCATION, RuleDraft};
use crate::job::{ReflectionJob, Tier};
use crate::store::derive::*;
use crate::store::*;
use crate::store::{now_ms, vec_to_blob};

use super::*;

impl PgStore {
    /// Run `f` (the tier's writes) and the tier's `completed` record in one transaction
    /// under the user's advisory lock, unless the tier already committed for this job (then
    /// the stored result, with `already_committed: true`) or the job row is gone (its user
    /// was forgotten: nothing is written). `f` may run more than once (retried transaction).
    pub(super) fn commit_tier(
        &self,
        job: &ReflectionJob,
        tier: Tier,
        latency_ms: f64,
        mut f: impl FnMut(&mut Transaction<'_>) -> anyhow::Result<Value>,
    ) -> anyhow::Result<Value> {
        let (job_id, user, tier) = (job.job_id.as_str(), job.user_id.as_str(), tier.as_str());
        self.write(|tx| {
            lock_user(tx, user)?;
            if let Some(row) = tx.query_opt(
                "SELECT result FROM job_tiers WHERE job_id = $1 AND tier = $2 AND status = 'completed'",
                &[&job_id, &tier],
            )? {
                let result: Option<String> = row.get(0);
                let mut v: Value = result
                    .and_then(|s| serde_json::from_str(&s).ok())
                    .unwrap_or(Value::Null);
                if let Value::Object(m) = &mut v {
                    m.insert("already_committed".into(), Value::Bool(true));
                }
                return Ok(v);
            }
            // Under the user's lock, so a forget_user either committed before (the row is
            // gone) or waits until this commit is done (and then deletes what it wrote).
            let exists = tx
                .query_opt(
                    "SELECT 1 FROM jobs WHERE job_id = $1 AND user_id = $2",
                    &[&job_id, &user],
                )?
                .is_some();
            if !exists {
                return Ok(json!({"dropped": "the job's user was forgotten; nothing written"}));
            }
            let result = f(tx)?;
            tx.execute(
                "INSERT INTO job_tiers (job_id, tier, status, result, attempts, latency_ms, updated_ms)
                 VALUES ($1, $2, 'completed', $3, 1, $4, $5)
                 ON CONFLICT (job_id, tier) DO UPDATE SET status = 'completed', result = EXCLUDED.result,
                     error = NULL, attempts = job_tiers.attempts + 1,
                     latency_ms = EXCLUDED.latency_ms, updated_ms = EXCLUDED.updated_ms",
                &[&job_id, &tier, &result.to_string(), &latency_ms, &now_ms()],
            )?;
            Ok(result)
        })
    }

    /// Tier 2 commit (see [`crate::store::SqliteStore::commit_episode`]); with pgvector the
    /// vector is also written to `embedding_v` for the HNSW index.
    pub fn commit_episode(
        &self,
        job: &ReflectionJob,
        speaker: &str,
        draft: Option<&EpisodeDraft>,
        embedding: Option<&[f32]>,
        context: &str,
        latency_ms: f64,
    ) -> anyhow::Result<Value> {
        let user = job.user_id.as_str();
        let job_id = job.job_id.as_str();
        let evidence = job.evidence();
        let evidence_json = serde_json::to_string(&evidence)?;
        let tags = draft.map(|d| serde_json::to_string(&d.tags)).transpose()?;
        let pgvector = self.vectors == VectorMode::Pgvector;
        let observed = job.timestamp.timestamp_millis();
        self.commit_tier(job, Tier::Episodic, latency_ms, |tx| {
            if has_tombstones(tx, user, EditTier::Episodic)?
                && tombstoned(
                    tx,
                    user,
                    EditTier::Episodic,
                    &episode_signature(job_id),
                    job_id,
                    &evidence,
                )?
            {
                return Ok(
                    json!({"episode_id": null, "skipped": "edited or deleted by the user; reflection keeps the user's version"}),
                );
            }
            // Re-reflection replaces what an earlier run of this job wrote.
            tx.execute(
                "DELETE FROM episodes WHERE user_id = $1 AND job_id = $2",
                &[&user, &job_id],
            )?;
            let (Some(d), Some(e), Some(tags)) = (draft, embedding, &tags) else {
                return Ok(
                    json!({"episode_id": null, "skipped": "small talk: nothing worth remembering"}),
                );
            };
            let vector = (pgvector && indexable(e)).then(|| vector_text(e));
            let tags: &str = tags;
            let importance = d.importance;
            let occurred = d.occurred_at.timestamp_millis();
            let blob = vec_to_blob(e);
            let now = now_ms();
            let mut params: Vec<&(dyn ToSql + Sync)> = vec![
                &user,
                &job_id,
                &speaker,
                &d.text,
                &d.summary,
                &importance,
                &tags,
                &occurred,
                &observed,
                &blob,
                &evidence_json,
                &now,
                &context,
            ];
            // The `embedding_v` column exists only where pgvector is set up.
            let sql = if pgvector {
                params.push(&vector);
                "INSERT INTO episodes (user_id, job_id, speaker, text, summary, importance, tags, occurred_ms,
                                       observed_ms, embedding, evidence, created_ms, context, embedding_v)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14::text::vector)
                 RETURNING id"
            } else {
                "INSERT INTO episodes (user_id, job_id, speaker, text, summary, importance, tags, occurred_ms,
                                       observed_ms, embedding, evidence, created_ms, context)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)
                 RETURNING id"
            };
            let id: i64 = tx.query_one(sql, &params)?.get(0);
            Ok(json!({"episode_id": id, "importance": d.importance, "tags": d.tags}))
        })
    }

    /// Tier 3 commit (see [`crate::store::SqliteStore::commit_graph`]): entities resolved to
    /// one node per real thing, relations added, every touched exclusive slot re-derived.
    pub fn commit_graph(
        &self,
        job: &ReflectionJob,
        draft: &GraphDraft,
        latency_ms: f64,
    ) -> anyhow::Result<Value> {
        let user = job.user_id.as_str();
        let job_id = job.job_id.as_str();
        let evidence = job.evidence();
        let evidence_json = serde_json::to_string(&evidence)?;
        self.commit_tier(job, Tier::Semantic, latency_ms, |tx| {
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
                        tx.execute(
                            "INSERT INTO entity_aliases (user_id, alias_norm, entity_id) VALUES ($1, $2, $3)
                             ON CONFLICT DO NOTHING",
                            &[&user, &an, &id],
                        )?;
                    }
                }
            }
            // Endings first (see the SQLite store).
            let mut ended = 0u64;
            for e in &draft.ends {
                let s = resolve_entity(tx, user, &e.subject, "person", now)?;
                let o = match &e.object {
                    Some(name) => Some(resolve_entity(tx, user, name, "other", now)?),
                    None => None,
                };
                let at = e.at.timestamp_millis();
                ended += tx.execute(
                    "UPDATE relations SET invalid_ms = $5
                     WHERE user_id = $1 AND subject_id = $2 AND predicate = $3
                       AND ($4::BIGINT IS NULL OR object_id = $4) AND invalid_ms IS NULL
                       AND valid_ms <= $5 AND job_id <> $6",
                    &[&user, &s, &e.predicate, &o, &at, &job_id],
                )?;
            }
            let mut relation_ids = Vec::new();
            let edited = has_tombstones(tx, user, EditTier::Semantic)?;
            for r in &draft.relations {
                let kind_of = |n: &str| kinds.get(&norm_name(n)).copied().unwrap_or("other");
                let s = resolve_entity(tx, user, &r.subject, kind_of(&r.subject), now)?;
                let o = resolve_entity(tx, user, &r.object, kind_of(&r.object), now)?;
                if edited {
                    let sig = fact_signature(
                        &entity_norm(tx, user, s)?,
                        &r.predicate,
                        &entity_norm(tx, user, o)?,
                    );
                    if tombstoned(tx, user, EditTier::Semantic, &sig, job_id, &evidence)? {
                        continue;
                    }
                }
                entity_ids.insert(s);
                entity_ids.insert(o);
                let valid = r.valid_at.timestamp_millis();
                if r.exclusive {
                    tx.execute(
                        "INSERT INTO relations (user_id, subject_id, predicate, object_id, fact, exclusive,
                                                valid_ms, evidence, job_id, created_ms)
                         VALUES ($1, $2, $3, $4, $5, TRUE, $6, $7, $8, $9)
                         ON CONFLICT DO NOTHING",
                        &[&user, &s, &r.predicate, &o, &r.fact, &valid, &evidence_json, &job_id, &now],
                    )?;
                    rederive_slot(tx, user, s, &r.predicate)?;
                } else {
                    // Accumulating facts: one row per (subject, predicate, object), valid from
                    // the earliest turn that stated it; evidence is the union. The newest row
                    // that was not ended before this statement, as in the SQLite store.
                    let existing = tx.query_opt(
                        "SELECT id, valid_ms, evidence FROM relations
                         WHERE user_id = $1 AND subject_id = $2 AND predicate = $3 AND object_id = $4
                           AND (invalid_ms IS NULL OR invalid_ms > $5)
                         ORDER BY id DESC LIMIT 1",
                        &[&user, &s, &r.predicate, &o, &valid],
                    )?;
                    match existing {
                        Some(row) => {
                            let (id, v, ev): (i64, i64, String) = (row.get(0), row.get(1), row.get(2));
                            let ev = union_json(&ev, &evidence);
                            if valid < v {
                                tx.execute(
                                    "UPDATE relations SET valid_ms = $3, fact = $4, evidence = $5
                                     WHERE user_id = $1 AND id = $2",
                                    &[&user, &id, &valid, &r.fact, &ev],
                                )?;
                            } else {
                                tx.execute(
                                    "UPDATE relations SET evidence = $3 WHERE user_id = $1 AND id = $2",
                                    &[&user, &id, &ev],
                                )?;
                            }
                        }
                        None => {
                            tx.execute(
                                "INSERT INTO relations (user_id, subject_id, predicate, object_id, fact, exclusive,
                                                        valid_ms, evidence, job_id, created_ms)
                                 VALUES ($1, $2, $3, $4, $5, FALSE, $6, $7, $8, $9)",
                                &[&user, &s, &r.predicate, &o, &r.fact, &valid, &evidence_json, &job_id, &now],
                            )?;
                        }
                    }
                }
                relation_ids.push(format!("{} {} {}", r.subject, r.predicate, r.object));
            }
            Ok(json!({"entities": entity_ids.len(), "relations": relation_ids, "ended": ended}))
        })
    }

    /// Tier 4 commit (see [`crate::store::SqliteStore::commit_rules`]): each rule
    /// de-duplicated by (topic, statement), then the most recently stated rule of each
    /// touched topic made the active one.
    pub fn commit_rules(
        &self,
        job: &ReflectionJob,
        drafts: &[(RuleDraft, Vec<f32>)],
        latency_ms: f64,
    ) -> anyhow::Result<Value> {
        let user = job.user_id.as_str();
        let job_id = job.job_id.as_str();
        let evidence = job.evidence();
        let evidence_json = serde_json::to_string(&evidence)?;
        let ts = job.timestamp.timestamp_millis();
        self.commit_tier(job, Tier::Procedural, latency_ms, |tx| {
            let mut topics = BTreeSet::new();
            let edited = has_tombstones(tx, user, EditTier::Procedural)?;
            let mut ended = 0u64;
            for (d, emb) in drafts {
                if d.kind == REVOCATION {
                    ended += revoke_topic(tx, user, &d.topic, ts)?;
                    topics.insert(d.topic.as_str());
                    continue;
                }
                if edited
                    && tombstoned(
                        tx,
                        user,
                        EditTier::Procedural,
                        &rule_signature(&d.topic, &d.statement),
                        job_id,
                        &evidence,
                    )?
                {
                    continue;
                }
                let existing = tx.query_opt(
                    "SELECT id, first_ms, last_ms, evidence FROM rules
                     WHERE user_id = $1 AND topic = $2 AND statement = $3",
                    &[&user, &d.topic, &d.statement],
                )?;
                match existing {
                    Some(row) => {
                        let (id, first, last, ev): (i64, i64, i64, String) =
                            (row.get(0), row.get(1), row.get(2), row.get(3));
                        tx.execute(
                            "UPDATE rules SET first_ms = $3, last_ms = $4, evidence = $5,
                                    confidence = greatest(confidence, $6)
                             WHERE user_id = $1 AND id = $2",
                            &[
                                &user,
                                &id,
                                &first.min(ts),
                                &last.max(ts),
                                &union_json(&ev, &evidence),
                                &d.confidence,
                            ],
                        )?;
                    }
                    None => {
                        tx.execute(
                            "INSERT INTO rules (user_id, kind, topic, statement, confidence, first_ms, last_ms,
                                                embedding, evidence, created_ms)
                             VALUES ($1, $2, $3, $4, $5, $6, $6, $7, $8, $9)",
                            &[
                                &user,
                                &d.kind,
                                &d.topic,
                                &d.statement,
                                &d.confidence,
                                &ts,
                                &vec_to_blob(emb),
                                &evidence_json,
                                &now_ms(),
                            ],
                        )?;
                    }
                }
                topics.insert(d.topic.as_str());
            }
            for t in &topics {
                rederive_topic(tx, user, t)?;
            }
            let rules: Vec<&String> = drafts
                .iter()
                .filter(|(d, _)| d.kind != REVOCATION)
                .map(|(d, _)| &d.statement)
                .collect();
            Ok(json!({"rules": rules, "ended": ended}))
        })
    }
}

/// Whether pgvector can store `v` (at least one dimension, no NaN or infinity); a vector it
/// cannot store is kept only as bytes, and found by the exact scan.
pub(super) fn indexable(v: &[f32]) -> bool {
    !v.is_empty() && v.iter().all(|x| x.is_finite())
}

/// The user's entity for `name`: by alias, then by normalised name, else a new one (see
/// SQLite's `resolve_entity`). Run under the user's lock, so two commits cannot both
/// create it; the unique key `(user_id, norm_name)` backs that up. Also used by edits and
/// imports (`more.rs`).
pub(crate) fn resolve_entity(
    tx: &mut Transaction<'_>,
    user: &str,
    name: &str,
    kind: &str,
    now: i64,
) -> anyhow::Result<i64> {
    let n = entity_key(name);
    if let Some(r) = tx.query_opt(
        "SELECT entity_id FROM entity_aliases WHERE user_id = $1 AND alias_norm = $2",
        &[&user, &n],
    )? {
        return Ok(r.get(0));
    }
    let id: i64 = tx
        .query_one(
            "INSERT INTO entities (user_id, name, norm_name, kind, created_ms) VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (user_id, norm_name) DO UPDATE SET
                 kind = CASE WHEN entities.kind = 'other' THEN EXCLUDED.kind ELSE entities.kind END
             RETURNING id",
            &[&user, &name.trim(), &n, &kind, &now],
        )?
        .get(0);
    tx.execute(
        "INSERT INTO entity_aliases (user_id, alias_norm, entity_id) VALUES ($1, $2, $3)
         ON CONFLICT DO NOTHING",
        &[&user, &n, &id],
    )?;
    Ok(id)
}

/// An entity's normalised name (for a fact's tombstone signature).
pub(super) fn entity_norm(tx: &mut Transaction<'_>, user: &str, id: i64) -> anyhow::Result<String> {
    Ok(tx
        .query_one(
            "SELECT norm_name FROM entities WHERE user_id = $1 AND id = $2",
            &[&user, &id],
        )?
        .get(0))
}

/// Re-derive validity in an exclusive slot (subject, predicate) from its facts' own times
/// (see SQLite's `rederive_slot`: restatements merged into their run's first fact, each
/// run's first fact invalid from the next run's `valid_ms`). One UPDATE, of the rows that
/// change only.
pub(crate) fn rederive_slot(
    tx: &mut Transaction<'_>,
    user: &str,
    subject: i64,
    predicate: &str,
) -> anyhow::Result<()> {
    let facts: Vec<(i64, i64, i64)> = tx
        .query(
            "SELECT r.id, r.object_id, r.valid_ms FROM relations r JOIN entities o ON o.id = r.object_id
             WHERE r.user_id = $1 AND r.subject_id = $2 AND r.predicate = $3 AND r.exclusive
             ORDER BY r.valid_ms, o.norm_name COLLATE \"C\", r.id",
            &[&user, &subject, &predicate],
        )?
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect();
    let rows = slot_rows(&facts);
    let ids: Vec<i64> = rows.iter().map(|r| r.id).collect();
    let invalids: Vec<Option<i64>> = rows.iter().map(|r| r.invalid_ms).collect();
    let merged: Vec<Option<i64>> = rows.iter().map(|r| r.merged_into).collect();
    if !ids.is_empty() {
        tx.execute(
            "UPDATE relations r SET invalid_ms = v.invalid_ms, merged_into = v.merged_into
             FROM unnest($2::bigint[], $3::bigint[], $4::bigint[]) AS v(id, invalid_ms, merged_into)
             WHERE r.user_id = $1 AND r.id = v.id
               AND (r.invalid_ms IS DISTINCT FROM v.invalid_ms OR r.merged_into IS DISTINCT FROM v.merged_into)",
            &[&user, &ids, &invalids, &merged],
        )?;
    }
    Ok(())
}

/// Re-derive which rule of a topic is active (see the SQLite store's `rederive_topic` and
/// [`topic_rows`]: the same rows, the same order, the same result).
pub(crate) fn rederive_topic(
    tx: &mut Transaction<'_>,
    user: &str,
    topic: &str,
) -> anyhow::Result<()> {
    let rules: Vec<TopicRule> = tx
        .query(
            "SELECT id, last_ms, superseded_by, invalid_ms FROM rules WHERE user_id = $1 AND topic = $2
             ORDER BY last_ms DESC, statement COLLATE \"C\" DESC",
            &[&user, &topic],
        )?
        .iter()
        .map(|r| TopicRule {
            id: r.get(0),
            last_ms: r.get(1),
            superseded_by: r.get(2),
            invalid_ms: r.get(3),
        })
        .collect();
    for (id, superseded_by, invalid_ms) in topic_rows(&rules) {
        tx.execute(
            "UPDATE rules SET superseded_by = $3, invalid_ms = $4 WHERE user_id = $1 AND id = $2",
            &[&user, &id, &superseded_by, &invalid_ms],
        )?;
    }
    Ok(())
}

/// A turn ended `topic` at `at_ms` without naming a replacement (see the SQLite store's
/// `revoke_topic`). Returns the number of rules marked.
pub(crate) fn revoke_topic(
    tx: &mut Transaction<'_>,
    user: &str,
    topic: &str,
    at_ms: i64,
) -> anyhow::Result<u64> {
    let Some(row) = tx.query_opt(
        "SELECT id, superseded_by, invalid_ms FROM rules WHERE user_id = $1 AND topic = $2 AND last_ms <= $3
         ORDER BY last_ms DESC, statement COLLATE \"C\" DESC LIMIT 1",
        &[&user, &topic, &at_ms],
    )?
    else {
        return Ok(0);
    };
    let (id, sup, inv): (i64, Option<i64>, Option<i64>) = (row.get(0), row.get(1), row.get(2));
    let at = match (sup == Some(id), inv) {
        (true, Some(prev)) => prev.max(at_ms),
        _ => at_ms,
    };
    Ok(tx.execute(
        "UPDATE rules SET superseded_by = $2, invalid_ms = $3 WHERE user_id = $1 AND id = $2",
        &[&user, &id, &at],
    )?)
}

/// True when reflection of `job_id` (evidence `evidence`) must not write the memory
/// `signature` of `tier` for `user`: a tombstone names that job or one of those evidence
/// ids (see `edits::tombstoned`).
pub(crate) fn tombstoned(
    tx: &mut Transaction<'_>,
    user: &str,
    tier: EditTier,
    signature: &str,
    job_id: &str,
    evidence: &[String],
) -> anyhow::Result<bool> {
    let rows = tx.query(
        "SELECT source_job_id, evidence FROM memory_edits
         WHERE user_id = $1 AND tier = $2 AND signature = $3",
        &[&user, &tier.as_str(), &signature],
    )?;
    Ok(rows
        .iter()
        .any(|r| tombstone_applies(r.get(0), r.get(1), job_id, evidence)))
}

/// Whether `user` has any tombstone in `tier` (reflection skips the per-memory checks
/// otherwise).
pub(crate) fn has_tombstones(
    tx: &mut Transaction<'_>,
    user: &str,
    tier: EditTier,
) -> anyhow::Result<bool> {
    Ok(tx
        .query_one(
            "SELECT EXISTS (SELECT 1 FROM memory_edits
                            WHERE user_id = $1 AND tier = $2 AND signature IS NOT NULL)",
            &[&user, &tier.as_str()],
        )?
        .get(0))
}
