//! PostgreSQL: the statements of the Tier 1 fold ([`crate::store::window`], where the flow
//! and its documentation are), the running summary and retention, as the SQLite methods of
//! the same names (`src/store/sqlite/window.rs`); the fold takes the user's lock and runs in
//! one transaction, so every turn it reads is still unfolded when it marks them.

use std::collections::{HashMap, HashSet};

use crate::store::ms_to_rfc3339;
use crate::store::window::{self, FoldReadSql, FoldSql, FoldTurn, UnfoldedTurn};
use crate::store::*;

use super::tiers::WriteTx;
use super::*;

impl PgStore {
    /// Fold `user`'s turns beyond `w` into the running summary (see
    /// [`crate::store::window`]), finding and folding them in one transaction under the
    /// user's lock. Returns the number of turns folded.
    pub fn fold_short_term(&self, user: &str, w: Window) -> anyhow::Result<usize> {
        let vectors = self.vectors;
        self.write(|tx| {
            lock_user(tx, user)?;
            let mut tx = WriteTx { tx, vectors };
            let overflow = window::overflow(&mut tx, user, w)?;
            if overflow.is_empty() {
                return Ok(0);
            }
            window::fold(&mut tx, user, w, &overflow)
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

    /// See [`crate::store::SqliteStore::prune`].
    pub fn prune(&self, cutoff_ms: i64) -> anyhow::Result<(usize, usize)> {
        self.write(|tx| {
            tx.execute(
                "DELETE FROM job_tiers WHERE job_id IN
                   (SELECT job_id FROM jobs WHERE state = 'completed' AND completed_ms < $1)",
                &[&cutoff_ms],
            )?;
            let jobs = tx.execute(
                "DELETE FROM jobs WHERE state = 'completed' AND completed_ms < $1",
                &[&cutoff_ms],
            )?;
            let turns = tx.execute(
                "DELETE FROM turns WHERE created_ms < $1 AND reflected",
                &[&cutoff_ms],
            )?;
            Ok((jobs as usize, turns as usize))
        })
    }
}

impl FoldReadSql for WriteTx<'_, '_> {
    fn newest_unfolded(&mut self, user: &str, n: usize) -> anyhow::Result<Vec<UnfoldedTurn>> {
        let rows = self.tx.query(
            "SELECT ts_ms, created_ms, id, user_message, assistant_response FROM turns
             WHERE user_id = $1 AND NOT folded
             ORDER BY ts_ms DESC, created_ms DESC, id DESC LIMIT $2",
            &[&user, &(n as i64)],
        )?;
        Ok(rows
            .iter()
            .map(UnfoldedTurn::from_columns)
            .collect::<Result<_, _>>()?)
    }

    fn foldable(
        &mut self,
        user: &str,
        edge: &UnfoldedTurn,
        limit: usize,
    ) -> anyhow::Result<Vec<FoldTurn>> {
        let rows = self.tx.query(
            "SELECT id, job_id, ts_ms FROM turns
             WHERE user_id = $1 AND NOT folded AND reflected
               AND (ts_ms, created_ms, id) <= ($2, $3, $4)
             ORDER BY ts_ms, created_ms, id LIMIT $5",
            &[
                &user,
                &edge.ts_ms,
                &edge.created_ms,
                &edge.id,
                &(limit as i64),
            ],
        )?;
        Ok(rows
            .iter()
            .map(FoldTurn::from_columns)
            .collect::<Result<_, _>>()?)
    }
}

impl FoldSql for WriteTx<'_, '_> {
    fn mark_folded(&mut self, user: &str, ids: &[&str]) -> anyhow::Result<HashSet<String>> {
        let rows = self.tx.query(
            "UPDATE turns SET folded = TRUE WHERE user_id = $1 AND id = ANY($2) AND NOT folded AND reflected
             RETURNING id",
            &[&user, &ids],
        )?;
        Ok(rows.iter().map(|r| r.get(0)).collect())
    }

    fn episode_texts(
        &mut self,
        user: &str,
        job_ids: &[&str],
    ) -> anyhow::Result<HashMap<String, String>> {
        let rows = self.tx.query(
            "SELECT job_id, text FROM episodes WHERE user_id = $1 AND job_id = ANY($2)",
            &[&user, &job_ids],
        )?;
        Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
    }

    fn running_summary(&mut self, user: &str) -> anyhow::Result<Option<(String, i64, i64)>> {
        Ok(self
            .tx
            .query_opt(
                "SELECT summary, folded_turns, through_ms FROM short_term_summaries WHERE user_id = $1",
                &[&user],
            )?
            .map(|r| (r.get(0), r.get(1), r.get(2))))
    }

    fn write_summary(
        &mut self,
        user: &str,
        summary: &str,
        folded_turns: i64,
        through_ms: i64,
        now: i64,
    ) -> anyhow::Result<()> {
        self.tx.execute(
            "INSERT INTO short_term_summaries (user_id, summary, folded_turns, through_ms, updated_ms)
             VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (user_id) DO UPDATE SET summary = EXCLUDED.summary,
                 folded_turns = EXCLUDED.folded_turns, through_ms = EXCLUDED.through_ms,
                 updated_ms = EXCLUDED.updated_ms",
            &[&user, &summary, &folded_turns, &through_ms, &now],
        )?;
        Ok(())
    }
}
