//! SQLite: rebuilding memory after a model or rule change: the jobs to re-reflect (their
//! start is in `store/jobs.rs`) and the re-embedding of stored memories (`reflector
//! reflect`, `reflector reembed`).

use rusqlite::params;

use crate::store::*;
use crate::store::{SqliteStore, vec_to_blob};

impl SqliteStore {
    /// Jobs whose turns to reflect again: finished (completed or dead) jobs with a stored
    /// turn, of `user` (or everyone), whose turn's timestamp is at or after `since_ms`, in
    /// turn order.
    pub fn rereflection_jobs(
        &self,
        user: Option<&str>,
        since_ms: i64,
    ) -> anyhow::Result<Vec<String>> {
        self.read(|c| {
            let mut st = c.prepare(
                "SELECT j.job_id FROM jobs j JOIN turns t ON t.job_id = j.job_id
                 WHERE (?1 IS NULL OR j.user_id = ?1) AND t.ts_ms >= ?2 AND j.state IN ('completed', 'dead')
                 ORDER BY t.ts_ms, t.id",
            )?;
            let rows = st.query_map(params![user, since_ms], |r| r.get(0))?;
            Ok(rows.collect::<Result<_, _>>()?)
        })
    }

    /// Up to `limit` (id, text) of `what`, of `user` or everyone, with id > `after`, by id.
    pub fn texts_to_embed(
        &self,
        what: Embedded,
        user: Option<&str>,
        after: i64,
        limit: usize,
    ) -> anyhow::Result<Vec<(i64, String)>> {
        let sql = match what {
            Embedded::Episodes => {
                "SELECT id, text FROM episodes WHERE (?1 IS NULL OR user_id = ?1) AND id > ?2 ORDER BY id LIMIT ?3"
            }
            Embedded::Rules => {
                "SELECT id, statement FROM rules WHERE (?1 IS NULL OR user_id = ?1) AND id > ?2 ORDER BY id LIMIT ?3"
            }
        };
        self.read(|c| {
            let mut st = c.prepare_cached(sql)?;
            let rows = st.query_map(params![user, after, limit as i64], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })?;
            Ok(rows.collect::<Result<_, _>>()?)
        })
    }

    /// Replace vectors, in one transaction.
    pub fn set_embeddings(&self, what: Embedded, rows: &[(i64, Vec<f32>)]) -> anyhow::Result<()> {
        let sql = match what {
            Embedded::Episodes => "UPDATE episodes SET embedding = ?2 WHERE id = ?1",
            Embedded::Rules => "UPDATE rules SET embedding = ?2 WHERE id = ?1",
        };
        self.write(|tx| {
            let mut st = tx.prepare_cached(sql)?;
            for (id, v) in rows {
                st.execute(params![id, vec_to_blob(v)])?;
            }
            Ok(())
        })
    }

    /// Episodes and rules, of `user` or everyone.
    pub fn count_embedded(&self, user: Option<&str>) -> anyhow::Result<u64> {
        self.read(|c| {
            Ok(c.query_row(
                "SELECT (SELECT count(*) FROM episodes WHERE ?1 IS NULL OR user_id = ?1)
                      + (SELECT count(*) FROM rules WHERE ?1 IS NULL OR user_id = ?1)",
                params![user],
                |r| r.get::<_, i64>(0),
            )? as u64)
        })
    }
}
