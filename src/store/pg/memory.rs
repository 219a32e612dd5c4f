//! PostgreSQL: the tier commits (Tier 2 episodes, Tier 3 graph, Tier 4 rules), the reads of
//! recall and of the browse API, nearest-neighbour search with pgvector, forgetting a user,
//! and the Tier 1 window. Ports of the SQLite backend's methods of the same names
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

use postgres::fallible_iterator::FallibleIterator;
use postgres::types::ToSql;
use postgres::{Row, Transaction};
use serde_json::{Value, json};

use super::{PgStore, VectorMode, lock_user, vector_text};
use crate::extract::{EpisodeDraft, GraphDraft, RuleDraft};
use crate::job::{ReflectionJob, Tier};
use crate::store::backend::VectorSink;
use crate::store::edits::{EditTier, episode_signature, fact_signature, rule_signature};
use crate::store::sqlite::norm_name;
use crate::store::window::{FOLD_BATCH, ShortTermSummary, Window};
use crate::store::{
    EntityRow, EpisodeRow, FactRow, RuleRow, TurnRow, WindowTurn, blob_to_vec, ms_to_rfc3339,
    now_ms, vec_to_blob,
};

impl PgStore {
    /// Nearest episodes of the user to `query` by cosine similarity, best first, from
    /// pgvector's HNSW index (see [`crate::store::Backend::vector_search`]).
    ///
    /// `None` (recall then scans exactly, in the process) when the store has no pgvector, the
    /// query's dimension is not the index's, or the index found fewer than `min(k, the user's
    /// episodes)`: HNSW filters by user only after its graph search, so a small user among
    /// many may lose candidates (and episodes stored without `embedding_v` are not indexed).
    pub fn vector_search(
        &self,
        user_id: &str,
        query: &[f32],
        k: usize,
    ) -> anyhow::Result<Option<Vec<(i64, f32)>>> {
        if self.vectors != VectorMode::Pgvector
            || query.len() != self.dim
            || !query.iter().all(|x| x.is_finite())
        {
            return Ok(None);
        }
        if k == 0 {
            return Ok(Some(Vec::new()));
        }
        let dim = self.dim;
        let ef = (2 * k).clamp(40, 1000);
        let q = vector_text(query);
        let k64 = k as i64;
        self.read(|c| {
            let mut tx = c.build_transaction().read_only(true).start()?;
            tx.batch_execute(&format!("SET LOCAL hnsw.ef_search = {ef}"))?;
            let rows = tx.query(
                &format!(
                    "SELECT id, 1 - (embedding_v::vector({dim}) <=> $2::text::vector({dim}))
                     FROM episodes WHERE user_id = $1 AND vector_dims(embedding_v) = {dim}
                     ORDER BY embedding_v::vector({dim}) <=> $2::text::vector({dim}) LIMIT $3"
                ),
                &[&user_id, &q, &k64],
            )?;
            let hits: Vec<(i64, f32)> = rows
                .iter()
                .map(|r| (r.get::<_, i64>(0), r.get::<_, f64>(1) as f32))
                .collect();
            if hits.len() < k {
                let n: i64 = tx
                    .query_one(
                        "SELECT count(*) FROM (SELECT 1 FROM episodes WHERE user_id = $1 LIMIT $2) x",
                        &[&user_id, &k64],
                    )?
                    .get(0);
                if (hits.len() as i64) < n {
                    return Ok(None);
                }
            }
            tx.commit()?;
            Ok(Some(hits))
        })
    }

    /// Run `f` (the tier's writes) and the tier's `completed` record in one transaction
    /// under the user's advisory lock, unless the tier already committed for this job (then
    /// the stored result, with `already_committed: true`) or the job row is gone (its user
    /// was forgotten: nothing is written). `f` may run more than once (retried transaction).
    fn commit_tier(
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
}

/// Whether pgvector can store `v` (at least one dimension, no NaN or infinity); a vector it
/// cannot store is kept only as bytes, and found by the exact scan.
fn indexable(v: &[f32]) -> bool {
    !v.is_empty() && v.iter().all(|x| x.is_finite())
}

impl PgStore {
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
                    // the earliest turn that stated it; evidence is the union. The first row
                    // by id, as SQLite's lookup through `relations_by_subject` finds it.
                    let existing = tx.query_opt(
                        "SELECT id, valid_ms, evidence FROM relations
                         WHERE user_id = $1 AND subject_id = $2 AND predicate = $3 AND object_id = $4
                         ORDER BY id LIMIT 1",
                        &[&user, &s, &r.predicate, &o],
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
            Ok(json!({"entities": entity_ids.len(), "relations": relation_ids}))
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
            for (d, emb) in drafts {
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
            Ok(json!({"rules": drafts.iter().map(|(d, _)| &d.statement).collect::<Vec<_>>()}))
        })
    }

    /// The user's most recent turns, newest first.
    pub fn recent_turns(&self, user_id: &str, limit: usize) -> anyhow::Result<Vec<TurnRow>> {
        self.list_turns(user_id, limit, 0)
    }

    /// Tier 1 browse, newest first.
    pub fn list_turns(
        &self,
        user_id: &str,
        limit: usize,
        offset: usize,
    ) -> anyhow::Result<Vec<TurnRow>> {
        self.read(|c| {
            let rows = c.query(
                "SELECT id, user_id, session_id, user_message, assistant_response, ts_ms, metadata, job_id, reflected
                 FROM turns WHERE user_id = $1 ORDER BY ts_ms DESC, created_ms DESC LIMIT $2 OFFSET $3",
                &[&user_id, &(limit as i64), &(offset as i64)],
            )?;
            Ok(rows
                .iter()
                .map(|r| {
                    let ts: i64 = r.get(5);
                    let meta: &str = r.get(6);
                    TurnRow {
                        interaction_id: r.get(0),
                        user_id: r.get(1),
                        session_id: r.get(2),
                        user_message: r.get(3),
                        assistant_response: r.get(4),
                        timestamp: ms_to_rfc3339(ts),
                        ts_ms: ts,
                        metadata: serde_json::from_str(meta).unwrap_or(Value::Null),
                        reflection_job_id: r.get(7),
                        reflected: r.get(8),
                    }
                })
                .collect())
        })
    }

    /// Full-text search over the user's episodes: (episode id, score; lower is better, as
    /// SQLite's bm25). `fts_query` is recall's expression (`"term" OR "term"`), read by
    /// `websearch_to_tsquery`; the score is minus `ts_rank_cd` with the text weighted 1.0
    /// and the context 0.5.
    pub fn search_episodes_fts(
        &self,
        user_id: &str,
        fts_query: &str,
        limit: usize,
    ) -> anyhow::Result<Vec<(i64, f64)>> {
        if fts_query.is_empty() {
            return Ok(Vec::new());
        }
        self.read(|c| {
            let rows = c.query(
                "SELECT e.id, -ts_rank_cd('{0.1, 0.2, 0.5, 1.0}', e.fts, q)::float8 AS score
                 FROM episodes e, websearch_to_tsquery('english', $2) q
                 WHERE e.user_id = $1 AND e.fts @@ q
                 ORDER BY score, e.id LIMIT $3",
                &[&user_id, &fts_query, &(limit as i64)],
            )?;
            Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
        })
    }

    /// Episodes of every user that match `fts_query`: the document frequency of a term when
    /// given one quoted term (global on purpose, as SQLite's full-text index).
    pub fn fts_doc_count(&self, fts_query: &str) -> anyhow::Result<i64> {
        self.read(|c| {
            Ok(c.query_one(
                "SELECT count(*) FROM episodes WHERE fts @@ websearch_to_tsquery('english', $1)",
                &[&fts_query],
            )?
            .get(0))
        })
    }

    /// The turns around a job's turn in its session (see
    /// [`crate::store::SqliteStore::turn_window`]).
    pub fn turn_window(
        &self,
        user_id: &str,
        job_id: &str,
        before: usize,
        after: usize,
    ) -> anyhow::Result<(Vec<WindowTurn>, Vec<WindowTurn>)> {
        self.read(|c| {
            let anchor = c.query_opt(
                "SELECT session_id, ts_ms FROM turns WHERE user_id = $1 AND job_id = $2 LIMIT 1",
                &[&user_id, &job_id],
            )?;
            let Some(anchor) = anchor else {
                return Ok((Vec::new(), Vec::new()));
            };
            let (session, ts): (String, i64) = (anchor.get(0), anchor.get(1));
            let mut fetch = |sql: &str, n: usize| -> anyhow::Result<Vec<WindowTurn>> {
                if n == 0 {
                    return Ok(Vec::new());
                }
                let rows = c.query(sql, &[&user_id, &session, &ts, &(n as i64)])?;
                Ok(rows.iter().map(|r| window_turn(r, user_id)).collect())
            };
            let mut prev = fetch(
                "SELECT t.id, t.user_message, t.metadata, t.ts_ms, t.job_id, e.text FROM turns t
                 LEFT JOIN episodes e ON e.user_id = t.user_id AND e.job_id = t.job_id
                 WHERE t.user_id = $1 AND t.session_id = $2 AND t.ts_ms < $3 ORDER BY t.ts_ms DESC LIMIT $4",
                before,
            )?;
            prev.reverse();
            let next = fetch(
                "SELECT t.id, t.user_message, t.metadata, t.ts_ms, t.job_id, e.text FROM turns t
                 LEFT JOIN episodes e ON e.user_id = t.user_id AND e.job_id = t.job_id
                 WHERE t.user_id = $1 AND t.session_id = $2 AND t.ts_ms > $3 ORDER BY t.ts_ms ASC LIMIT $4",
                after,
            )?;
            Ok((prev, next))
        })
    }

    /// (count, max id, 0) of the user's episodes: the vector cache's version stamp. The
    /// deletion counter SQLite keeps is not needed here: identity ids are never reused, so a
    /// delete followed by inserts always moves (count, max id) apart from what the cache
    /// loaded, and the cache reloads.
    pub fn episode_version(&self, user_id: &str) -> anyhow::Result<(i64, i64, i64)> {
        self.read(|c| {
            let r = c.query_one(
                "SELECT (SELECT count(*) FROM episodes WHERE user_id = $1),
                        (SELECT coalesce(max(id), 0) FROM episodes WHERE user_id = $1)",
                &[&user_id],
            )?;
            Ok((r.get(0), r.get(1), 0))
        })
    }

    /// Calls `f(id, bytes)` for each of the user's episode vectors with id > `after_id`, in
    /// ascending id. One statement (one snapshot, consistent with [`Self::episode_version`]
    /// read before it), streamed: the client's row channel holds one network read at a time,
    /// never the whole result.
    pub fn each_episode_vector(
        &self,
        user_id: &str,
        after_id: i64,
        f: VectorSink<'_>,
    ) -> anyhow::Result<()> {
        self.read(|c| {
            let params: [&(dyn ToSql + Sync); 2] = [&user_id, &after_id];
            let mut rows = c.query_raw(
                "SELECT id, embedding FROM episodes WHERE user_id = $1 AND id > $2 ORDER BY id",
                params,
            )?;
            while let Some(r) = rows.next()? {
                f(r.get(0), r.get::<_, &[u8]>(1));
            }
            Ok(())
        })
    }

    /// The f32 vectors of the given episodes of this user (others' and unknown ids skipped),
    /// in the order of `ids`.
    pub fn episode_vectors_by_ids(
        &self,
        user_id: &str,
        ids: &[i64],
    ) -> anyhow::Result<Vec<(i64, Vec<f32>)>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        self.read(|c| {
            let rows = c.query(
                "SELECT id, embedding FROM episodes WHERE user_id = $1 AND id = ANY($2)",
                &[&user_id, &ids],
            )?;
            let found: HashMap<i64, Vec<f32>> = rows
                .iter()
                .map(|r| (r.get(0), blob_to_vec(r.get::<_, &[u8]>(1))))
                .collect();
            Ok(ids
                .iter()
                .filter_map(|id| found.get(id).map(|v| (*id, v.clone())))
                .collect())
        })
    }

    /// **For benchmarks only**: synthetic episodes in one transaction (see
    /// [`crate::store::SqliteStore::insert_synthetic_episodes`]); with pgvector their vectors
    /// are indexed too.
    pub fn insert_synthetic_episodes(
        &self,
        user_id: &str,
        episodes: &[(String, i64, Vec<f32>)],
    ) -> anyhow::Result<usize> {
        let pgvector = self.vectors == VectorMode::Pgvector;
        self.write(|tx| {
            let stmt = tx.prepare(if pgvector {
                "INSERT INTO episodes (user_id, job_id, speaker, text, summary, importance, tags, occurred_ms,
                                       observed_ms, embedding, evidence, created_ms, embedding_v)
                 VALUES ($1, $2, $1, $3, $3, 0.5, '[]', $4, $4, $5, '[]', $6, $7::text::vector)"
            } else {
                "INSERT INTO episodes (user_id, job_id, speaker, text, summary, importance, tags, occurred_ms,
                                       observed_ms, embedding, evidence, created_ms)
                 VALUES ($1, $2, $1, $3, $3, 0.5, '[]', $4, $4, $5, '[]', $6)"
            })?;
            let now = now_ms();
            for (text, occurred_ms, vector) in episodes {
                let job_id = format!("synthetic-{}", uuid::Uuid::now_v7());
                let blob = vec_to_blob(vector);
                let v = indexable(vector).then(|| vector_text(vector));
                let mut params: Vec<&(dyn ToSql + Sync)> =
                    vec![&user_id, &job_id, text, occurred_ms, &blob, &now];
                if pgvector {
                    params.push(&v);
                }
                tx.execute(&stmt, &params)?;
            }
            Ok(episodes.len())
        })
    }

    /// Episodes by id, for this user only (ids of another user are ignored), in the order
    /// of `ids`.
    pub fn episodes_by_ids(&self, user_id: &str, ids: &[i64]) -> anyhow::Result<Vec<EpisodeRow>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        self.read(|c| {
            let rows = c.query(
                &format!("{EPISODE_SELECT} WHERE user_id = $1 AND id = ANY($2)"),
                &[&user_id, &ids],
            )?;
            let found: HashMap<i64, EpisodeRow> = rows
                .iter()
                .map(|r| {
                    let e = episode_from_row(r);
                    (e.id, e)
                })
                .collect();
            Ok(ids.iter().filter_map(|id| found.get(id).cloned()).collect())
        })
    }

    /// Tier 2 browse, newest first.
    pub fn list_episodes(
        &self,
        user_id: &str,
        limit: usize,
        offset: usize,
    ) -> anyhow::Result<Vec<EpisodeRow>> {
        self.read(|c| {
            let rows = c.query(
                &format!(
                    "{EPISODE_SELECT} WHERE user_id = $1 ORDER BY occurred_ms DESC, id DESC LIMIT $2 OFFSET $3"
                ),
                &[&user_id, &(limit as i64), &(offset as i64)],
            )?;
            Ok(rows.iter().map(episode_from_row).collect())
        })
    }

    /// Every (normalised name or alias, entity id) of the user.
    pub fn entity_names(&self, user_id: &str) -> anyhow::Result<Vec<(String, i64)>> {
        self.read(|c| {
            let rows = c.query(
                "SELECT norm_name, id FROM entities WHERE user_id = $1
                 UNION SELECT alias_norm, entity_id FROM entity_aliases WHERE user_id = $1",
                &[&user_id],
            )?;
            Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
        })
    }

    /// Facts whose subject or object is one of `entity_ids`; only currently valid ones unless
    /// `include_invalid`. Newest first, at most `limit`.
    pub fn facts_about(
        &self,
        user_id: &str,
        entity_ids: &[i64],
        include_invalid: bool,
        limit: usize,
    ) -> anyhow::Result<Vec<FactRow>> {
        if entity_ids.is_empty() {
            return Ok(Vec::new());
        }
        self.read(|c| {
            let rows = c.query(
                &format!(
                    "{FACT_SELECT} WHERE r.user_id = $1 AND (r.subject_id = ANY($2) OR r.object_id = ANY($2))
                     AND r.merged_into IS NULL AND ($3 OR r.invalid_ms IS NULL)
                     ORDER BY r.valid_ms DESC, r.id LIMIT $4"
                ),
                &[&user_id, &entity_ids, &include_invalid, &(limit as i64)],
            )?;
            Ok(rows.iter().map(fact_from_row).collect())
        })
    }

    /// Tier 3 browse: facts newest first (valid and invalidated).
    pub fn list_facts(
        &self,
        user_id: &str,
        limit: usize,
        offset: usize,
    ) -> anyhow::Result<Vec<FactRow>> {
        self.read(|c| {
            let rows = c.query(
                &format!(
                    "{FACT_SELECT} WHERE r.user_id = $1 AND r.merged_into IS NULL
                     ORDER BY r.valid_ms DESC, r.id DESC LIMIT $2 OFFSET $3"
                ),
                &[&user_id, &(limit as i64), &(offset as i64)],
            )?;
            Ok(rows.iter().map(fact_from_row).collect())
        })
    }

    /// Tier 3 browse: entities with their aliases (other than the name itself, in byte
    /// order, as SQLite lists them).
    pub fn list_entities(
        &self,
        user_id: &str,
        limit: usize,
        offset: usize,
    ) -> anyhow::Result<Vec<EntityRow>> {
        self.read(|c| {
            let rows = c.query(
                "SELECT e.id, e.name, e.kind,
                        ARRAY(SELECT a.alias_norm FROM entity_aliases a
                              WHERE a.user_id = e.user_id AND a.entity_id = e.id AND a.alias_norm <> e.norm_name
                              ORDER BY a.alias_norm COLLATE \"C\")
                 FROM entities e WHERE e.user_id = $1 ORDER BY e.id LIMIT $2 OFFSET $3",
                &[&user_id, &(limit as i64), &(offset as i64)],
            )?;
            Ok(rows
                .iter()
                .map(|r| EntityRow {
                    id: r.get(0),
                    name: r.get(1),
                    kind: r.get(2),
                    aliases: r.get(3),
                })
                .collect())
        })
    }

    /// Tier 4: rules, active ones only unless `include_superseded`.
    pub fn list_rules(
        &self,
        user_id: &str,
        include_superseded: bool,
        limit: usize,
        offset: usize,
    ) -> anyhow::Result<Vec<RuleRow>> {
        self.read(|c| {
            let rows = c.query(
                "SELECT id, kind, topic, statement, confidence, last_ms, superseded_by, evidence, embedding
                 FROM rules WHERE user_id = $1 AND ($2 OR superseded_by IS NULL)
                 ORDER BY last_ms DESC, id DESC LIMIT $3 OFFSET $4",
                &[&user_id, &include_superseded, &(limit as i64), &(offset as i64)],
            )?;
            Ok(rows
                .iter()
                .map(|r| RuleRow {
                    id: r.get(0),
                    kind: r.get(1),
                    topic: r.get(2),
                    statement: r.get(3),
                    confidence: r.get(4),
                    stated_at: ms_to_rfc3339(r.get(5)),
                    superseded_by: r.get(6),
                    evidence: serde_json::from_str(r.get(7)).unwrap_or_default(),
                    embedding: blob_to_vec(r.get::<_, &[u8]>(8)),
                })
                .collect())
        })
    }

    /// Row counts per tier for one user, and their jobs by state.
    pub fn user_stats(&self, user_id: &str) -> anyhow::Result<Value> {
        let jobs = self.job_counts(Some(user_id))?;
        let mut stats = self.memory_counts(user_id)?;
        stats["jobs"] = json!(jobs);
        Ok(stats)
    }

    /// [`Self::user_stats`] without the jobs: one statement.
    pub(crate) fn memory_counts(&self, user_id: &str) -> anyhow::Result<Value> {
        self.read(|c| {
            let r = c.query_one(
                "SELECT (SELECT count(*) FROM turns WHERE user_id = $1),
                        (SELECT count(*) FROM turns WHERE user_id = $1 AND NOT reflected),
                        (SELECT count(*) FROM episodes WHERE user_id = $1),
                        (SELECT count(*) FROM entities WHERE user_id = $1),
                        (SELECT count(*) FROM relations WHERE user_id = $1 AND merged_into IS NULL),
                        (SELECT count(*) FROM relations WHERE user_id = $1 AND merged_into IS NULL
                                                            AND invalid_ms IS NULL),
                        (SELECT count(*) FROM rules WHERE user_id = $1),
                        (SELECT count(*) FROM rules WHERE user_id = $1 AND superseded_by IS NULL)",
                &[&user_id],
            )?;
            let n = |i: usize| r.get::<_, i64>(i);
            Ok(json!({
                "user_id": user_id,
                "short_term": {"turns": n(0), "unreflected": n(1)},
                "episodic": {"episodes": n(2)},
                "semantic": {"entities": n(3), "facts": n(4), "valid_facts": n(5)},
                "procedural": {"rules": n(6), "active_rules": n(7)},
            }))
        })
    }

    /// Forget a user: every tier, their jobs and tier records (rows removed per table, as
    /// SQLite reports them), and remember that they were forgotten (`forgotten_users`), so
    /// that a job of theirs arriving later is dropped. Under the user's lock: a tier commit
    /// in flight finishes first (and its rows are deleted here) or finds its job gone.
    pub fn forget_user(&self, user_id: &str) -> anyhow::Result<Value> {
        self.write(|tx| {
            lock_user(tx, user_id)?;
            let mut removed = serde_json::Map::new();
            let n = tx.execute(
                "DELETE FROM job_tiers WHERE job_id IN (SELECT job_id FROM jobs WHERE user_id = $1)",
                &[&user_id],
            )?;
            removed.insert("job_tiers".into(), n.into());
            for table in [
                "relations",
                "entity_aliases",
                "entities",
                "rules",
                "episodes",
                "turns",
                "jobs",
                "memory_edits",
                "short_term_summaries",
            ] {
                let n = tx.execute(
                    &format!("DELETE FROM {table} WHERE user_id = $1"),
                    &[&user_id],
                )?;
                removed.insert(table.into(), n.into());
            }
            tx.execute(
                "INSERT INTO forgotten_users (user_id, forgotten_ms) VALUES ($1, $2)
                 ON CONFLICT (user_id) DO UPDATE SET forgotten_ms = EXCLUDED.forgotten_ms",
                &[&user_id, &now_ms()],
            )?;
            Ok(Value::Object(removed))
        })
    }

    /// Fold `user`'s turns beyond `w` into the running summary, in one transaction under the
    /// user's lock (see [`crate::store::SqliteStore::fold_short_term`]). Returns the number
    /// of turns folded.
    pub fn fold_short_term(&self, user: &str, w: Window) -> anyhow::Result<usize> {
        self.write(|tx| {
            lock_user(tx, user)?;
            // The window's edge from the newest `max_turns + 1` unfolded turns, then the
            // reflected turns at or past it, oldest first, at most FOLD_BATCH (partial index
            // turns_foldable: turns still queued are never read).
            let newest = tx.query(
                "SELECT ts_ms, created_ms, id, user_message, assistant_response FROM turns
                 WHERE user_id = $1 AND NOT folded
                 ORDER BY ts_ms DESC, created_ms DESC, id DESC LIMIT $2",
                &[&user, &(w.max_turns as i64 + 1)],
            )?;
            let edge = w
                .edge(newest.iter().map(|r| (r.get(3), r.get(4))))
                .map(|i| &newest[i])
                .map(|r| (r.get::<_, i64>(0), r.get::<_, i64>(1), r.get::<_, &str>(2)));
            let Some((edge_ts, edge_created, edge_id)) = edge else {
                return Ok(0);
            };
            let past = tx.query(
                "SELECT id, job_id, ts_ms FROM turns
                 WHERE user_id = $1 AND NOT folded AND reflected
                   AND (ts_ms, created_ms, id) <= ($2, $3, $4)
                 ORDER BY ts_ms, created_ms, id LIMIT $5",
                &[&user, &edge_ts, &edge_created, &edge_id, &(FOLD_BATCH as i64)],
            )?;
            // (id, job id, ts_ms) of the reflected turns beyond the window, oldest first.
            let overflow: Vec<(&str, &str, i64)> = past
                .iter()
                .map(|r| (r.get(0), r.get(1), r.get(2)))
                .collect();
            if overflow.is_empty() {
                return Ok(0);
            }
            let (mut summary, mut folded, mut through): (String, i64, i64) = tx
                .query_opt(
                    "SELECT summary, folded_turns, through_ms FROM short_term_summaries WHERE user_id = $1",
                    &[&user],
                )?
                .map(|r| (r.get(0), r.get(1), r.get(2)))
                .unwrap_or_default();
            let ids: Vec<&str> = overflow.iter().map(|o| o.0).collect();
            let jobs: Vec<&str> = overflow.iter().map(|o| o.1).collect();
            // One episode per job at most (`episodes.job_id` is unique).
            let texts: HashMap<String, String> = tx
                .query(
                    "SELECT job_id, text FROM episodes WHERE user_id = $1 AND job_id = ANY($2)",
                    &[&user, &jobs],
                )?
                .iter()
                .map(|r| (r.get(0), r.get(1)))
                .collect();
            for (_, job_id, ts) in &overflow {
                if let Some(t) = texts.get(*job_id) {
                    if !summary.is_empty() {
                        summary.push('\n');
                    }
                    summary.push_str(&t.replace('\n', " "));
                }
                folded += 1;
                through = through.max(*ts);
            }
            tx.execute(
                "UPDATE turns SET folded = TRUE WHERE user_id = $1 AND id = ANY($2)",
                &[&user, &ids],
            )?;
            // Bounded: keep the newest lines within half the window's tokens.
            let mut lines: Vec<&str> = summary.lines().collect();
            while lines.len() > 1
                && crate::budget::estimate_tokens(&lines.join("\n")) > w.max_tokens / 2
            {
                lines.remove(0);
            }
            let summary = lines.join("\n");
            tx.execute(
                "INSERT INTO short_term_summaries (user_id, summary, folded_turns, through_ms, updated_ms)
                 VALUES ($1, $2, $3, $4, $5)
                 ON CONFLICT (user_id) DO UPDATE SET summary = EXCLUDED.summary,
                     folded_turns = EXCLUDED.folded_turns, through_ms = EXCLUDED.through_ms,
                     updated_ms = EXCLUDED.updated_ms",
                &[&user, &summary, &folded, &through, &now_ms()],
            )?;
            Ok(overflow.len())
        })
    }

    /// The user's running summary, if any turn was folded.
    pub fn short_term_summary(&self, user: &str) -> anyhow::Result<Option<ShortTermSummary>> {
        self.read(|c| {
            Ok(c.query_opt(
                "SELECT summary, folded_turns, through_ms, updated_ms FROM short_term_summaries
                 WHERE user_id = $1",
                &[&user],
            )?
            .map(|r| ShortTermSummary {
                summary: r.get(0),
                folded_turns: r.get(1),
                through: ms_to_rfc3339(r.get(2)),
                updated_at: ms_to_rfc3339(r.get(3)),
            }))
        })
    }
}

// -------------------------------------------------------------------- helpers

/// The columns [`episode_from_row`] reads, as in SQLite's `EPISODE_SELECT`.
pub(crate) const EPISODE_SELECT: &str = "SELECT id, user_id, speaker, text, summary, importance, tags, occurred_ms, observed_ms, evidence, job_id FROM episodes";

/// An episode from a row of [`EPISODE_SELECT`].
pub(crate) fn episode_from_row(r: &Row) -> EpisodeRow {
    let occurred: i64 = r.get(7);
    let observed: i64 = r.get(8);
    EpisodeRow {
        id: r.get(0),
        user_id: r.get(1),
        speaker: r.get(2),
        text: r.get(3),
        summary: r.get(4),
        importance: r.get(5),
        tags: serde_json::from_str(r.get(6)).unwrap_or_default(),
        occurred_at: ms_to_rfc3339(occurred),
        occurred_ms: occurred,
        observed_at: ms_to_rfc3339(observed),
        observed_ms: observed,
        evidence: serde_json::from_str(r.get(9)).unwrap_or_default(),
        job_id: r.get(10),
    }
}

/// The columns [`fact_from_row`] reads (relations `r`, subjects `s`, objects `o`).
pub(crate) const FACT_SELECT: &str =
    "SELECT r.id, s.name, r.predicate, o.name, r.fact, r.valid_ms, r.invalid_ms, r.evidence
     FROM relations r JOIN entities s ON s.id = r.subject_id JOIN entities o ON o.id = r.object_id";

/// A fact from a row of [`FACT_SELECT`].
pub(crate) fn fact_from_row(r: &Row) -> FactRow {
    let valid: i64 = r.get(5);
    let invalid: Option<i64> = r.get(6);
    FactRow {
        id: r.get(0),
        subject: r.get(1),
        predicate: r.get(2),
        object: r.get(3),
        fact: r.get(4),
        valid_at: ms_to_rfc3339(valid),
        invalid_at: invalid.map(ms_to_rfc3339),
        valid_ms: valid,
        evidence: serde_json::from_str(r.get(7)).unwrap_or_default(),
    }
}

/// One row of [`PgStore::turn_window`]'s queries: the turn's episode text, else
/// `[date] speaker: message`.
fn window_turn(r: &Row, user_id: &str) -> WindowTurn {
    let id: String = r.get(0);
    let meta: Value = serde_json::from_str(r.get(2)).unwrap_or(Value::Null);
    let ts: i64 = r.get(3);
    let episode: Option<String> = r.get(5);
    let evidence = meta
        .get("dia_id")
        .and_then(|v| v.as_str())
        .unwrap_or(&id)
        .to_string();
    let text = episode.unwrap_or_else(|| {
        let who = meta
            .get("speaker")
            .and_then(|v| v.as_str())
            .unwrap_or(user_id);
        let day = chrono::DateTime::from_timestamp_millis(ts)
            .map(|t| crate::extract::time::format_day(t.date_naive()))
            .unwrap_or_default();
        format!("[{day}] {who}: {}", r.get::<_, &str>(1))
    });
    WindowTurn {
        job_id: r.get(4),
        text,
        evidence,
    }
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
    let n = norm_name(name);
    let n = if n.is_empty() {
        name.trim().to_lowercase()
    } else {
        n
    };
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
fn entity_norm(tx: &mut Transaction<'_>, user: &str, id: i64) -> anyhow::Result<String> {
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
    let mut ids = Vec::with_capacity(facts.len());
    let mut invalids: Vec<Option<i64>> = Vec::with_capacity(facts.len());
    let mut merged: Vec<Option<i64>> = Vec::with_capacity(facts.len());
    let mut i = 0;
    while i < facts.len() {
        let (head, object, _) = facts[i];
        let mut j = i + 1;
        while j < facts.len() && facts[j].1 == object {
            j += 1;
        }
        let invalid = facts.get(j).map(|f| f.2);
        for (k, f) in facts[i..j].iter().enumerate() {
            ids.push(f.0);
            invalids.push(invalid);
            merged.push((k > 0).then_some(head));
        }
        i = j;
    }
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

/// Re-derive which rule of a topic is active: the one stated last (ties: by statement, in
/// byte order), the others superseded by it from its `last_ms`. One UPDATE, of the rows that
/// change only.
pub(crate) fn rederive_topic(
    tx: &mut Transaction<'_>,
    user: &str,
    topic: &str,
) -> anyhow::Result<()> {
    tx.execute(
        "UPDATE rules r SET superseded_by = t.sup, invalid_ms = t.inv
         FROM (SELECT x.id,
                      CASE WHEN x.id = a.id THEN NULL ELSE a.id END AS sup,
                      CASE WHEN x.id = a.id THEN NULL ELSE a.last_ms END AS inv
               FROM rules x,
                    (SELECT id, last_ms FROM rules WHERE user_id = $1 AND topic = $2
                     ORDER BY last_ms DESC, statement COLLATE \"C\" DESC LIMIT 1) a
               WHERE x.user_id = $1 AND x.topic = $2) t
         WHERE r.user_id = $1 AND r.id = t.id
           AND (r.superseded_by IS DISTINCT FROM t.sup OR r.invalid_ms IS DISTINCT FROM t.inv)",
        &[&user, &topic],
    )?;
    Ok(())
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
    for r in &rows {
        let job: Option<&str> = r.get(0);
        if job == Some(job_id) {
            return Ok(true);
        }
        let ev: Vec<String> = r
            .get::<_, Option<&str>>(1)
            .and_then(|s| serde_json::from_str(s).ok())
            .unwrap_or_default();
        if evidence.iter().any(|e| ev.contains(e)) {
            return Ok(true);
        }
    }
    Ok(false)
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

/// Union of a stored JSON string array and new items, sorted, as JSON text.
fn union_json(stored: &str, add: &[String]) -> String {
    let mut set: BTreeSet<String> = serde_json::from_str::<Vec<String>>(stored)
        .unwrap_or_default()
        .into_iter()
        .collect();
    set.extend(add.iter().cloned());
    serde_json::to_string(&set).unwrap_or_else(|_| "[]".into())
}
