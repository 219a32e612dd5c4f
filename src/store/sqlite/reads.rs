//! SQLite: the reads of recall and of the browse API (turns, episodes by full text and by
//! vector, entities, facts, rules), the user's statistics, and forgetting a user.

use std::collections::BTreeSet;

use rusqlite::{OptionalExtension, params};
use serde_json::Value;

use crate::store::model::impl_columns;
use crate::store::*;
use crate::store::{EPISODE_SELECT, FACT_SELECT, RULE_SELECT};
use crate::store::{SqliteStore, now_ms, vec_to_blob};

impl SqliteStore {
    /// Nearest episodes from an index in the database: SQLite has none, so always `None`,
    /// and recall scans its in-process vector cache (exact search). PostgreSQL answers from
    /// pgvector's HNSW index when the extension is there.
    pub fn vector_search(
        &self,
        _user_id: &str,
        _query: &[f32],
        _k: usize,
    ) -> anyhow::Result<Option<Vec<(i64, f32)>>> {
        Ok(None)
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
        self.page("SELECT id, user_id, session_id, user_message, assistant_response, ts_ms, metadata, job_id, reflected
                 FROM turns WHERE user_id = ?1 ORDER BY ts_ms DESC, created_ms DESC LIMIT ?2 OFFSET ?3", user_id, limit, offset, turn_from_row)
    }

    /// BM25 over the user's episodes: (episode id, bm25 score; lower is better in SQLite).
    /// `fts_query` must already be an FTS5 expression (see `recall::fts_query`).
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
            // The user filter goes through the small covering index (user_id, id), not the
            // episode rows (~2 KB each with their vector): 3x faster at 100k episodes, 7x for
            // a small user sharing the database with a big one.
            let mut stmt = c.prepare_cached(
                "SELECT e.id, bm25(episodes_fts, 1.0, 0.5) AS score FROM episodes_fts
                 JOIN episodes e INDEXED BY episodes_by_user
                   ON e.user_id = ?2 AND e.id = episodes_fts.rowid
                 WHERE episodes_fts MATCH ?1
                 ORDER BY score LIMIT ?3",
            )?;
            let rows = stmt.query_map(params![fts_query, user_id, limit as i64], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })?;
            Ok(rows.collect::<Result<_, _>>()?)
        })
    }

    /// Rows of the whole full-text index (every user) that match `fts_query`: the document
    /// frequency of a term when given one quoted term. Reads the term's postings.
    pub fn fts_doc_count(&self, fts_query: &str) -> anyhow::Result<i64> {
        self.read(|c| {
            Ok(
                c.prepare_cached("SELECT count(*) FROM episodes_fts WHERE episodes_fts MATCH ?1")?
                    .query_row([fts_query], |r| r.get(0))?,
            )
        })
    }

    /// The turns around a job's turn in its session: up to `before` earlier and `after` later
    /// ones, in time order, each as its episode text when it has one (dates resolved), else
    /// as `[date] speaker: message`. Empty for jobs without a stored turn.
    pub fn turn_window(
        &self,
        user_id: &str,
        job_id: &str,
        before: usize,
        after: usize,
    ) -> anyhow::Result<(Vec<WindowTurn>, Vec<WindowTurn>)> {
        self.read(|c| {
            let anchor: Option<(String, i64)> = c
                .prepare_cached("SELECT session_id, ts_ms FROM turns WHERE user_id = ?1 AND job_id = ?2")?
                .query_row(params![user_id, job_id], |r| Ok((r.get(0)?, r.get(1)?)))
                .optional()?;
            let Some((session, ts)) = anchor else { return Ok((Vec::new(), Vec::new())) };
            let fetch = |sql: &str, n: usize| -> anyhow::Result<Vec<WindowTurn>> {
                if n == 0 {
                    return Ok(Vec::new());
                }
                let mut stmt = c.prepare_cached(sql)?;
                let rows = stmt.query_map(params![user_id, session, ts, n as i64], |r| {
                    let meta: String = r.get(2)?;
                    let meta: Value = serde_json::from_str(&meta).unwrap_or(Value::Null);
                    let ts: i64 = r.get(3)?;
                    let id: String = r.get(0)?;
                    let episode: Option<String> = r.get(5)?;
                    let evidence = meta.get("dia_id").and_then(|v| v.as_str()).unwrap_or(&id).to_string();
                    let text = episode.unwrap_or_else(|| {
                        let who = meta.get("speaker").and_then(|v| v.as_str()).unwrap_or(user_id);
                        let day = chrono::DateTime::from_timestamp_millis(ts)
                            .map(|t| crate::extract::time::format_day(t.date_naive()))
                            .unwrap_or_default();
                        format!("[{day}] {who}: {}", r.get::<_, String>(1).unwrap_or_default())
                    });
                    Ok(WindowTurn { job_id: r.get(4)?, text, evidence })
                })?;
                Ok(rows.collect::<Result<_, _>>()?)
            };
            let mut prev = fetch(
                "SELECT t.id, t.user_message, t.metadata, t.ts_ms, t.job_id, e.text FROM turns t
                 LEFT JOIN episodes e ON e.job_id = t.job_id
                 WHERE t.user_id = ?1 AND t.session_id = ?2 AND t.ts_ms < ?3 ORDER BY t.ts_ms DESC LIMIT ?4",
                before,
            )?;
            prev.reverse();
            let next = fetch(
                "SELECT t.id, t.user_message, t.metadata, t.ts_ms, t.job_id, e.text FROM turns t
                 LEFT JOIN episodes e ON e.job_id = t.job_id
                 WHERE t.user_id = ?1 AND t.session_id = ?2 AND t.ts_ms > ?3 ORDER BY t.ts_ms ASC LIMIT ?4",
                after,
            )?;
            Ok((prev, next))
        })
    }

    /// (count, highest id ever, deletions) of the user's episodes: a cheap version stamp for
    /// the vector cache, which reloads the user's vectors whenever the deletions moved (ids
    /// can be reused after a delete) and otherwise loads the ids past the highest it holds.
    pub fn episode_version(&self, user_id: &str) -> anyhow::Result<(i64, i64, i64)> {
        self.read(|c| {
            // One row kept by triggers (migration 012), not count(*) over the user's index
            // entries (3-7 ms at 100k episodes).
            Ok(c.prepare_cached(
                "SELECT episodes, max_id, deletes FROM episode_stamps WHERE user_id = ?1",
            )?
            .query_row([user_id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .optional()?
            .unwrap_or((0, 0, 0)))
        })
    }

    /// Calls `f(id, blob)` for each of the user's episode vectors with id > `after_id`, in
    /// ascending id; `blob` is the stored little-endian f32 vector (4 bytes per dimension).
    /// Streams: no copy of all the vectors is ever held (100k episodes are 154 MB as f32).
    pub fn each_episode_vector(
        &self,
        user_id: &str,
        after_id: i64,
        mut f: impl FnMut(i64, &[u8]),
    ) -> anyhow::Result<()> {
        self.read(|c| {
            let mut stmt = c.prepare_cached(
                "SELECT id, embedding FROM episodes WHERE user_id = ?1 AND id > ?2 ORDER BY id",
            )?;
            let mut rows = stmt.query(params![user_id, after_id])?;
            while let Some(r) = rows.next()? {
                let id: i64 = r.get(0)?;
                f(id, r.get_ref(1)?.as_blob()?);
            }
            Ok(())
        })
    }

    /// The f32 vectors of the given episodes of this user (ids of another user, or unknown,
    /// are skipped), in no particular order.
    pub fn episode_vectors_by_ids(
        &self,
        user_id: &str,
        ids: &[i64],
    ) -> anyhow::Result<Vec<(i64, Vec<f32>)>> {
        self.read(|c| {
            let mut stmt =
                c.prepare_cached("SELECT embedding FROM episodes WHERE user_id = ?1 AND id = ?2")?;
            let mut out = Vec::with_capacity(ids.len());
            // In id order: neighbouring lookups share b-tree pages.
            let mut sorted = ids.to_vec();
            sorted.sort_unstable();
            for id in sorted {
                if let Some(v) = stmt
                    .query_row(params![user_id, id], |r| {
                        Ok(blob_to_vec(r.get_ref(0)?.as_blob()?))
                    })
                    .optional()?
                {
                    out.push((id, v));
                }
            }
            Ok(out)
        })
    }

    /// **For benchmarks only** (`reflector bench`): insert synthetic Tier 2 episodes for
    /// `user_id` in ONE transaction, bypassing reflection — no turn, no job, no tier record;
    /// each `job_id` is a fresh `synthetic-…` id, importance 0.5, no tags, no evidence. Each
    /// item is (text, occurred_ms, vector); the full-text index follows through its trigger.
    /// Returns the number of episodes inserted. Never called by the service itself.
    pub fn insert_synthetic_episodes(
        &self,
        user_id: &str,
        episodes: &[(String, i64, Vec<f32>)],
    ) -> anyhow::Result<usize> {
        self.write(|tx| {
            let mut stmt = tx.prepare_cached(
                "INSERT INTO episodes (user_id, job_id, speaker, text, summary, importance, tags, occurred_ms,
                                       observed_ms, embedding, evidence, created_ms)
                 VALUES (?1, ?2, ?1, ?3, ?3, 0.5, '[]', ?4, ?4, ?5, '[]', ?6)",
            )?;
            let now = now_ms();
            for (text, occurred_ms, vector) in episodes {
                let job_id = format!("synthetic-{}", uuid::Uuid::now_v7());
                stmt.execute(params![user_id, job_id, text, occurred_ms, vec_to_blob(vector), now])?;
            }
            Ok(episodes.len())
        })
    }

    /// Episodes by id, for this user only (ids of another user are ignored).
    pub fn episodes_by_ids(&self, user_id: &str, ids: &[i64]) -> anyhow::Result<Vec<EpisodeRow>> {
        self.read(|c| {
            let mut stmt =
                c.prepare_cached(&format!("{EPISODE_SELECT} WHERE user_id = ?1 AND id = ?2"))?;
            let mut out = Vec::with_capacity(ids.len());
            for id in ids {
                if let Some(e) = stmt
                    .query_row(params![user_id, id], episode_from_row)
                    .optional()?
                {
                    out.push(e);
                }
            }
            Ok(out)
        })
    }

    /// Tier 2 browse, newest first.
    pub fn list_episodes(
        &self,
        user_id: &str,
        limit: usize,
        offset: usize,
    ) -> anyhow::Result<Vec<EpisodeRow>> {
        self.page(&format!(
                "{EPISODE_SELECT} WHERE user_id = ?1 ORDER BY occurred_ms DESC, id DESC LIMIT ?2 OFFSET ?3"
            ), user_id, limit, offset, episode_from_row)
    }

    /// Every (normalised name or alias, entity id) of the user, for spotting entities in a query.
    pub fn entity_names(&self, user_id: &str) -> anyhow::Result<Vec<(String, i64)>> {
        self.read(|c| {
            let mut stmt = c.prepare_cached(
                "SELECT norm_name, id FROM entities WHERE user_id = ?1
                 UNION SELECT alias_norm, entity_id FROM entity_aliases WHERE user_id = ?1",
            )?;
            let rows = stmt.query_map([user_id], |r| Ok((r.get(0)?, r.get(1)?)))?;
            Ok(rows.collect::<Result<_, _>>()?)
        })
    }

    /// Facts whose subject or object is one of `entity_ids`; only currently valid ones unless
    /// `include_invalid`. Newest first.
    pub fn facts_about(
        &self,
        user_id: &str,
        entity_ids: &[i64],
        include_invalid: bool,
        limit: usize,
    ) -> anyhow::Result<Vec<FactRow>> {
        self.read(|c| {
            let mut out = Vec::new();
            let mut seen = BTreeSet::new();
            let mut stmt = c.prepare_cached(&format!(
                "{FACT_SELECT} WHERE r.user_id = ?1 AND (r.subject_id = ?2 OR r.object_id = ?2)
                 AND r.merged_into IS NULL AND (?3 OR r.invalid_ms IS NULL) ORDER BY r.valid_ms DESC LIMIT ?4"
            ))?;
            for id in entity_ids {
                for f in stmt.query_map(
                    params![user_id, id, include_invalid, limit as i64],
                    fact_from_row,
                )? {
                    let f = f?;
                    if seen.insert(f.id) {
                        out.push(f);
                    }
                }
            }
            out.sort_by_key(|f| std::cmp::Reverse(f.valid_ms));
            out.truncate(limit);
            Ok(out)
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
                "{FACT_SELECT} WHERE r.user_id = ?1 AND r.merged_into IS NULL
                 ORDER BY r.valid_ms DESC, r.id DESC LIMIT ?2 OFFSET ?3"
            ),
            user_id,
            limit,
            offset,
            fact_from_row,
        )
    }

    /// One fact of the user by id, as the browse route shows it; `None` when the user has no
    /// fact with this id (or it is a restatement merged into another fact, which edits do not
    /// reach either).
    pub fn fact_by_id(&self, user_id: &str, id: i64) -> anyhow::Result<Option<FactRow>> {
        self.read(|c| {
            Ok(c.prepare_cached(&format!(
                "{FACT_SELECT} WHERE r.user_id = ?1 AND r.id = ?2 AND r.merged_into IS NULL"
            ))?
            .query_row(params![user_id, id], fact_from_row)
            .optional()?)
        })
    }

    /// Tier 3 browse: entities with their aliases.
    pub fn list_entities(
        &self,
        user_id: &str,
        limit: usize,
        offset: usize,
    ) -> anyhow::Result<Vec<EntityRow>> {
        self.page("SELECT e.id, e.name, e.kind,
                        (SELECT json_group_array(alias_norm) FROM entity_aliases a
                         WHERE a.user_id = e.user_id AND a.entity_id = e.id AND a.alias_norm <> e.norm_name)
                 FROM entities e WHERE e.user_id = ?1 ORDER BY e.id LIMIT ?2 OFFSET ?3", user_id, limit, offset, |r| {
                let aliases: String = r.get(3)?;
                Ok(EntityRow {
                    id: r.get(0)?,
                    name: r.get(1)?,
                    kind: r.get(2)?,
                    aliases: serde_json::from_str(&aliases).unwrap_or_default(),
                })
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
            let mut stmt = c.prepare_cached(&format!(
                "{RULE_SELECT} WHERE user_id = ?1 AND (?2 OR superseded_by IS NULL)
                 ORDER BY last_ms DESC, id DESC LIMIT ?3 OFFSET ?4"
            ))?;
            let params = params![user_id, include_superseded, limit as i64, offset as i64];
            let rows = stmt.query_map(params, |r| RuleRow::from_columns(r))?;
            Ok(rows.collect::<Result<_, _>>()?)
        })
    }

    /// Row counts per tier for one user.
    pub fn user_stats(&self, user_id: &str) -> anyhow::Result<UserStats> {
        let jobs = self.job_counts(Some(user_id))?;
        self.read(|c| {
            Ok(c.query_row(USER_COUNTS_SELECT, [user_id], |r| {
                UserStats::from_columns(user_id, r, jobs)
            })?)
        })
    }
}

impl SqliteStore {
    /// One page of users (see [`USER_IDS_SELECT`]: every user with a turn, an episode, an
    /// entity, a rule or a job), by user id ascending, each with its [`UserSummary`];
    /// `query` keeps the ids that contain it, case-insensitively (empty: all). Also returns
    /// how many users match in all.
    pub fn list_users(
        &self,
        query: &str,
        limit: usize,
        offset: usize,
    ) -> anyhow::Result<(Vec<UserSummary>, i64)> {
        self.read(|c| {
            let total: i64 = c
                .prepare_cached(USER_COUNT_SELECT)?
                .query_row([query], |r| r.get(0))?;
            let ids: Vec<String> = c
                .prepare_cached(USER_IDS_SELECT)?
                .query_map(params![query, limit as i64, offset as i64], |r| r.get(0))?
                .collect::<Result<_, _>>()?;
            let mut stmt = c.prepare_cached(USER_SUMMARY_SELECT)?;
            let mut out = Vec::with_capacity(ids.len());
            for id in &ids {
                out.push(stmt.query_row([id], |r| UserSummary::from_columns(id, r))?);
            }
            Ok((out, total))
        })
    }

    /// One turn of the user, by evidence id (its interaction id, or its `metadata.dia_id`:
    /// the earliest such turn when a dia_id repeats) or by its reflection job id. When no
    /// stored turn matches, tells whether the user's memories still cite the id (the turn
    /// was pruned by retention) from whether the id is unknown. Only this user's rows are read.
    pub fn find_turn(&self, user_id: &str, key: &TurnKey) -> anyhow::Result<TurnLookup> {
        self.read(|mut c| key.lookup(user_id, &mut c))
    }
}

impl TurnSql for &rusqlite::Connection {
    fn stored_turn(&mut self, user: &str, key: &TurnKey) -> anyhow::Result<Option<TurnRow>> {
        let sql = match key {
            TurnKey::Evidence(_) => "SELECT id, user_id, session_id, user_message, assistant_response, ts_ms, metadata, job_id, reflected
                 FROM turns WHERE user_id = ?1 AND (id = ?2 OR json_extract(metadata, '$.dia_id') = ?2)
                 ORDER BY ts_ms, id LIMIT 1",
            TurnKey::Job(_) => "SELECT id, user_id, session_id, user_message, assistant_response, ts_ms, metadata, job_id, reflected
                 FROM turns WHERE user_id = ?1 AND job_id = ?2 LIMIT 1",
        };
        Ok(self
            .prepare_cached(sql)?
            .query_row(params![user, key.id()], turn_from_row)
            .optional()?)
    }

    fn cited(&mut self, user: &str, key: &TurnKey) -> anyhow::Result<bool> {
        let sql = match key {
            TurnKey::Evidence(_) => "SELECT EXISTS (SELECT 1 FROM episodes e, json_each(e.evidence) j WHERE e.user_id = ?1 AND j.value = ?2)
                 OR EXISTS (SELECT 1 FROM relations r, json_each(r.evidence) j WHERE r.user_id = ?1 AND j.value = ?2)
                 OR EXISTS (SELECT 1 FROM rules u, json_each(u.evidence) j WHERE u.user_id = ?1 AND j.value = ?2)",
            TurnKey::Job(_) => "SELECT EXISTS (SELECT 1 FROM episodes WHERE user_id = ?1 AND job_id = ?2)
                 OR EXISTS (SELECT 1 FROM relations WHERE user_id = ?1 AND job_id = ?2)",
        };
        Ok(self
            .prepare_cached(sql)?
            .query_row(params![user, key.id()], |r| r.get(0))?)
    }

    fn job_known(&mut self, user: &str, job_id: &str) -> anyhow::Result<bool> {
        let sql = "SELECT EXISTS (SELECT 1 FROM jobs WHERE user_id = ?1 AND job_id = ?2)";
        Ok(self
            .prepare_cached(sql)?
            .query_row(params![user, job_id], |r| r.get(0))?)
    }
}

/// A turn from a row of `SELECT id, user_id, session_id, user_message, assistant_response,
/// ts_ms, metadata, job_id, reflected FROM turns`.
fn turn_from_row(r: &rusqlite::Row) -> rusqlite::Result<TurnRow> {
    TurnRow::from_columns(r)
}

impl_columns!(
    rusqlite::Row<'_>,
    rusqlite::Error,
    get,
    fn double(&self, i: usize) -> rusqlite::Result<f64> {
        self.get(i)
    }
);

/// An episode row as the API shows it (for `query_map`).
pub(crate) fn episode_from_row(r: &rusqlite::Row) -> rusqlite::Result<EpisodeRow> {
    EpisodeRow::from_columns(r)
}

/// A fact row as the API shows it (for `query_map`).
pub(crate) fn fact_from_row(r: &rusqlite::Row) -> rusqlite::Result<FactRow> {
    FactRow::from_columns(r)
}
