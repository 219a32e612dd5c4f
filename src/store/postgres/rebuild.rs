//! PostgreSQL: re-reflection of stored turns and re-embedding of stored memories, as the
//! SQLite methods of the same names (`src/store/sqlite/rebuild.rs`).

use crate::store::vec_to_blob;
use crate::store::*;

use super::*;

impl PgStore {
    /// See [`crate::store::SqliteStore::rereflection_jobs`].
    pub fn rereflection_jobs(
        &self,
        user: Option<&str>,
        since_ms: i64,
    ) -> anyhow::Result<Vec<String>> {
        self.read(|c| {
            Ok(c.query(
                "SELECT j.job_id FROM jobs j JOIN turns t ON t.job_id = j.job_id
                 WHERE ($1::TEXT IS NULL OR j.user_id = $1) AND t.ts_ms >= $2 AND j.state IN ('completed', 'dead')
                 ORDER BY t.ts_ms, t.id",
                &[&user, &since_ms],
            )?
            .iter()
            .map(|r| r.get(0))
            .collect())
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
