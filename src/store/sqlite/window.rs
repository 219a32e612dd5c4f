//! SQLite: the Tier 1 window (folding turns beyond a user's window into a running summary)
//! and retention. Both run in the reflector, never on the request path.

use std::collections::{HashMap, HashSet};

use rusqlite::{Connection, OptionalExtension, params};

use crate::store::window::{self, FoldReadSql, FoldSql, FoldTurn, UnfoldedTurn};
use crate::store::*;
use crate::store::{SqliteStore, ms_to_rfc3339};

use super::WriteTx;

impl SqliteStore {
    /// Fold `user`'s turns beyond `w` into the running summary: see
    /// [`crate::store::window`]. Returns the number of turns folded.
    ///
    /// Runs after every job, so it must not hold the single writer (and with it the fast
    /// path's group commit) for long: the turns to fold are found on a reader connection, and
    /// the write transaction only marks them and rewrites the summary. Nothing to fold, the
    /// usual case, takes no write at all.
    pub fn fold_short_term(&self, user: &str, w: Window) -> anyhow::Result<usize> {
        let overflow = self.read(|mut c| window::overflow(&mut c, user, w))?;
        if overflow.is_empty() {
            return Ok(0);
        }
        self.write(|tx| window::fold(&mut WriteTx(tx), user, w, &overflow))
    }

    /// The user's running summary, if any turn was folded.
    pub fn short_term_summary(&self, user: &str) -> anyhow::Result<Option<ShortTermSummary>> {
        self.read(|c| {
            let mut st = c.prepare_cached(
                "SELECT summary, folded_turns, through_ms, updated_ms FROM short_term_summaries WHERE user_id = ?1",
            )?;
            let mut rows = st.query([user])?;
            Ok(match rows.next()? {
                Some(r) => Some(ShortTermSummary {
                    summary: r.get(0)?,
                    folded_turns: r.get(1)?,
                    through: ms_to_rfc3339(r.get(2)?),
                    updated_at: ms_to_rfc3339(r.get(3)?),
                }),
                None => None,
            })
        })
    }

    /// Retention: delete completed jobs (with their tier records) completed before
    /// `cutoff_ms`, and reflected turns stored before it. Waiting, running and dead jobs, and
    /// turns not yet reflected, are never pruned; episodes, facts, rules and summaries stay.
    /// Returns (jobs, turns) deleted.
    pub fn prune(&self, cutoff_ms: i64) -> anyhow::Result<(usize, usize)> {
        self.write(|tx| {
            tx.execute(
                "DELETE FROM job_tiers WHERE job_id IN
                   (SELECT job_id FROM jobs WHERE state = 'completed' AND completed_ms < ?1)",
                [cutoff_ms],
            )?;
            let jobs = tx.execute(
                "DELETE FROM jobs WHERE state = 'completed' AND completed_ms < ?1",
                [cutoff_ms],
            )?;
            let turns = tx.execute(
                "DELETE FROM turns WHERE created_ms < ?1 AND reflected = 1",
                [cutoff_ms],
            )?;
            Ok((jobs, turns))
        })
    }
}

/// The fold's reads, on a reader connection.
impl FoldReadSql for &Connection {
    fn newest_unfolded(&mut self, user: &str, n: usize) -> anyhow::Result<Vec<UnfoldedTurn>> {
        let mut st = self.prepare_cached(
            "SELECT ts_ms, created_ms, id, user_message, assistant_response FROM turns
             WHERE user_id = ?1 AND folded = 0
             ORDER BY ts_ms DESC, created_ms DESC, id DESC LIMIT ?2",
        )?;
        let rows = st.query_map(params![user, n as i64], |r| UnfoldedTurn::from_columns(r))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    fn foldable(
        &mut self,
        user: &str,
        edge: &UnfoldedTurn,
        limit: usize,
    ) -> anyhow::Result<Vec<FoldTurn>> {
        let mut st = self.prepare_cached(
            "SELECT id, job_id, ts_ms FROM turns INDEXED BY turns_foldable
             WHERE user_id = ?1 AND folded = 0 AND reflected = 1
               AND (ts_ms, created_ms, id) <= (?2, ?3, ?4)
             ORDER BY ts_ms, created_ms, id LIMIT ?5",
        )?;
        let rows = st.query_map(
            params![user, edge.ts_ms, edge.created_ms, edge.id, limit as i64],
            |r| FoldTurn::from_columns(r),
        )?;
        Ok(rows.collect::<Result<_, _>>()?)
    }
}

/// The fold's statements. The turns were read outside this transaction: each is marked only
/// if it is still unfolded (another worker may have folded it, or it was deleted meanwhile).
impl FoldSql for WriteTx<'_, '_> {
    fn mark_folded(&mut self, user: &str, ids: &[&str]) -> anyhow::Result<HashSet<String>> {
        let mut mark = self.0.prepare_cached(
            "UPDATE turns SET folded = 1 WHERE user_id = ?1 AND id = ?2 AND folded = 0 AND reflected = 1",
        )?;
        let mut out = HashSet::new();
        for id in ids {
            if mark.execute(params![user, id])? > 0 {
                out.insert(id.to_string());
            }
        }
        Ok(out)
    }

    fn episode_texts(
        &mut self,
        user: &str,
        job_ids: &[&str],
    ) -> anyhow::Result<HashMap<String, String>> {
        let mut st = self
            .0
            .prepare_cached("SELECT text FROM episodes WHERE job_id = ?1 AND user_id = ?2")?;
        let mut out = HashMap::new();
        for job in job_ids {
            if let Some(text) = st.query_row(params![job, user], |r| r.get(0)).optional()? {
                out.insert(job.to_string(), text);
            }
        }
        Ok(out)
    }

    fn running_summary(&mut self, user: &str) -> anyhow::Result<Option<(String, i64, i64)>> {
        Ok(self
            .0
            .prepare_cached(
                "SELECT summary, folded_turns, through_ms FROM short_term_summaries WHERE user_id = ?1",
            )?
            .query_row([user], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .optional()?)
    }

    fn write_summary(
        &mut self,
        user: &str,
        summary: &str,
        folded_turns: i64,
        through_ms: i64,
        now: i64,
    ) -> anyhow::Result<()> {
        self.0.execute(
            "INSERT INTO short_term_summaries (user_id, summary, folded_turns, through_ms, updated_ms)
             VALUES (?1, ?2, ?3, ?4, ?5)
             ON CONFLICT (user_id) DO UPDATE SET summary = ?2, folded_turns = ?3, through_ms = ?4, updated_ms = ?5",
            params![user, summary, folded_turns, through_ms, now],
        )?;
        Ok(())
    }
}
