//! PostgreSQL: the Tier 1 window and retention, as the SQLite methods of the same names
//! (`src/store/sqlite/window.rs`); the fold takes the user's lock.

use std::collections::HashMap;

use crate::store::derive::{append_to_summary, trim_summary, window_edge};
use crate::store::*;
use crate::store::{ms_to_rfc3339, now_ms};

use super::*;

impl PgStore {
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
            let edge = window_edge(w, newest.iter().map(|r| (r.get(3), r.get(4))))
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
                append_to_summary(&mut summary, texts.get(*job_id).map(String::as_str));
                folded += 1;
                through = through.max(*ts);
            }
            tx.execute(
                "UPDATE turns SET folded = TRUE WHERE user_id = $1 AND id = ANY($2)",
                &[&user, &ids],
            )?;
            // Bounded: keep the newest lines within half the window's tokens.
            let summary = trim_summary(&summary, w.max_tokens / 2);
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
