//! PostgreSQL: the reads of recall and of the browse API, nearest-neighbour search with
//! pgvector, the user's statistics, and forgetting a user (under the user's lock). Each
//! method behaves as the SQLite method of the same name (`src/store/sqlite/reads.rs`).

use std::collections::HashMap;

use ::postgres::Row;
use ::postgres::fallible_iterator::FallibleIterator;
use ::postgres::types::ToSql;
use serde_json::Value;

use crate::store::backend::VectorSink;
use crate::store::model::impl_columns;
use crate::store::{EPISODE_SELECT, FACT_SELECT, RULE_SELECT, USER_COUNTS_SELECT, UserStats};
use crate::store::{
    EntityRow, EpisodeRow, FactRow, RuleRow, TurnKey, TurnLookup, TurnRow, TurnSql,
    USER_COUNT_SELECT, USER_IDS_SELECT, USER_SUMMARY_SELECT, UserSummary, WindowTurn, blob_to_vec,
    now_ms, vec_to_blob,
};

use super::tiers::*;
use super::*;

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
        self.page(
            "SELECT id, user_id, session_id, user_message, assistant_response, ts_ms, metadata, job_id, reflected
             FROM turns WHERE user_id = $1 ORDER BY ts_ms DESC, created_ms DESC LIMIT $2 OFFSET $3",
            user_id,
            limit,
            offset,
            TurnRow::from_columns,
        )
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
                .map(|r| episode_from_row(r).map(|e| (e.id, e)))
                .collect::<Result<_, _>>()?;
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
        self.page(
            &format!(
                "{EPISODE_SELECT} WHERE user_id = $1 ORDER BY occurred_ms DESC, id DESC LIMIT $2 OFFSET $3"
            ),
            user_id,
            limit,
            offset,
            episode_from_row,
        )
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
            Ok(rows.iter().map(fact_from_row).collect::<Result<_, _>>()?)
        })
    }

    /// Tier 3 browse: facts newest first (valid and invalidated).
    pub fn list_facts(
        &self,
        user_id: &str,
        limit: usize,
        offset: usize,
    ) -> anyhow::Result<Vec<FactRow>> {
        self.page(
            &format!(
                "{FACT_SELECT} WHERE r.user_id = $1 AND r.merged_into IS NULL
                 ORDER BY r.valid_ms DESC, r.id DESC LIMIT $2 OFFSET $3"
            ),
            user_id,
            limit,
            offset,
            fact_from_row,
        )
    }

    /// One fact of the user by id (see [`crate::store::Reader::fact_by_id`]).
    pub fn fact_by_id(&self, user_id: &str, id: i64) -> anyhow::Result<Option<FactRow>> {
        self.read(|c| {
            let row = c.query_opt(
                &format!(
                    "{FACT_SELECT} WHERE r.user_id = $1 AND r.id = $2 AND r.merged_into IS NULL"
                ),
                &[&user_id, &id],
            )?;
            Ok(row.as_ref().map(fact_from_row).transpose()?)
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
        self.page(
            "SELECT e.id, e.name, e.kind,
                    ARRAY(SELECT a.alias_norm FROM entity_aliases a
                          WHERE a.user_id = e.user_id AND a.entity_id = e.id AND a.alias_norm <> e.norm_name
                          ORDER BY a.alias_norm COLLATE \"C\")
             FROM entities e WHERE e.user_id = $1 ORDER BY e.id LIMIT $2 OFFSET $3",
            user_id,
            limit,
            offset,
            |r| {
                Ok(EntityRow {
                    id: r.try_get(0)?,
                    name: r.try_get(1)?,
                    kind: r.try_get(2)?,
                    aliases: r.try_get(3)?,
                })
            },
        )
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
                &format!(
                    "{RULE_SELECT} WHERE user_id = $1 AND ($2 OR superseded_by IS NULL)
                     ORDER BY last_ms DESC, id DESC LIMIT $3 OFFSET $4"
                ),
                &[
                    &user_id,
                    &include_superseded,
                    &(limit as i64),
                    &(offset as i64),
                ],
            )?;
            Ok(rows
                .iter()
                .map(RuleRow::from_columns)
                .collect::<Result<_, _>>()?)
        })
    }

    /// Row counts per tier for one user, and their jobs by state.
    pub fn user_stats(&self, user_id: &str) -> anyhow::Result<UserStats> {
        let jobs = self.job_counts(Some(user_id))?;
        self.read(|c| {
            let r = c.query_one(USER_COUNTS_SELECT, &[&user_id])?;
            Ok(UserStats::from_columns(user_id, &r, jobs)?)
        })
    }
}

impl PgStore {
    /// One page of users with their summaries, and how many match (see the SQLite method).
    pub fn list_users(
        &self,
        query: &str,
        limit: usize,
        offset: usize,
    ) -> anyhow::Result<(Vec<UserSummary>, i64)> {
        let pg = dollar_params;
        self.read(|c| {
            let total: i64 = c.query_one(&pg(USER_COUNT_SELECT), &[&query])?.get(0);
            let ids: Vec<String> = c
                .query(
                    &pg(USER_IDS_SELECT),
                    &[&query, &(limit as i64), &(offset as i64)],
                )?
                .iter()
                .map(|r| r.get(0))
                .collect();
            let stmt = c.prepare(&pg(USER_SUMMARY_SELECT))?;
            let mut out = Vec::with_capacity(ids.len());
            for id in &ids {
                let row = c.query_one(&stmt, &[id])?;
                out.push(UserSummary::from_columns(id, &row)?);
            }
            Ok((out, total))
        })
    }

    /// One turn of the user by evidence id or job id, or why there is none (see the SQLite
    /// method).
    pub fn find_turn(&self, user_id: &str, key: &TurnKey) -> anyhow::Result<TurnLookup> {
        self.read(|c| key.lookup(user_id, c))
    }
}

impl TurnSql for ::postgres::Client {
    fn stored_turn(&mut self, user: &str, key: &TurnKey) -> anyhow::Result<Option<TurnRow>> {
        let sql = match key {
            TurnKey::Evidence(_) => "SELECT id, user_id, session_id, user_message, assistant_response, ts_ms, metadata, job_id, reflected
                 FROM turns WHERE user_id = $1 AND (id = $2 OR metadata::jsonb ->> 'dia_id' = $2)
                 ORDER BY ts_ms, id LIMIT 1",
            TurnKey::Job(_) => "SELECT id, user_id, session_id, user_message, assistant_response, ts_ms, metadata, job_id, reflected
                 FROM turns WHERE user_id = $1 AND job_id = $2 LIMIT 1",
        };
        let row = self.query_opt(sql, &[&user, &key.id()])?;
        Ok(row.map(|r| TurnRow::from_columns(&r)).transpose()?)
    }

    fn cited(&mut self, user: &str, key: &TurnKey) -> anyhow::Result<bool> {
        let sql = match key {
            TurnKey::Evidence(_) => {
                "SELECT EXISTS (SELECT 1 FROM episodes WHERE user_id = $1 AND evidence::jsonb ? $2)
                 OR EXISTS (SELECT 1 FROM relations WHERE user_id = $1 AND evidence::jsonb ? $2)
                 OR EXISTS (SELECT 1 FROM rules WHERE user_id = $1 AND evidence::jsonb ? $2)"
            }
            TurnKey::Job(_) => {
                "SELECT EXISTS (SELECT 1 FROM episodes WHERE user_id = $1 AND job_id = $2)
                 OR EXISTS (SELECT 1 FROM relations WHERE user_id = $1 AND job_id = $2)"
            }
        };
        Ok(self.query_one(sql, &[&user, &key.id()])?.get(0))
    }

    fn job_known(&mut self, user: &str, job_id: &str) -> anyhow::Result<bool> {
        let sql = "SELECT EXISTS (SELECT 1 FROM jobs WHERE user_id = $1 AND job_id = $2)";
        Ok(self.query_one(sql, &[&user, &job_id])?.get(0))
    }
}

impl_columns!(
    ::postgres::Row,
    ::postgres::Error,
    try_get,
    fn double(&self, i: usize) -> Result<f64, ::postgres::Error> {
        self.try_get::<_, f32>(i).map(f64::from)
    }
);

/// An episode row as the API shows it.
pub(crate) fn episode_from_row(r: &Row) -> Result<EpisodeRow, ::postgres::Error> {
    EpisodeRow::from_columns(r)
}

/// A fact row as the API shows it.
pub(crate) fn fact_from_row(r: &Row) -> Result<FactRow, ::postgres::Error> {
    FactRow::from_columns(r)
}

/// One row of [`PgStore::turn_window`]'s queries: the turn's episode text, else
/// `[date] speaker: message`.
pub(super) fn window_turn(r: &Row, user_id: &str) -> WindowTurn {
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
