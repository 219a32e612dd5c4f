//! SQLite: the Tier 1 window (folding turns beyond a user's window into a running summary)
//! and retention. Both run in the reflector, never on the request path.

use rusqlite::{OptionalExtension, params};

use crate::store::derive::{append_to_summary, trim_summary, window_edge};
use crate::store::*;
use crate::store::{SqliteStore, ms_to_rfc3339, now_ms};

impl SqliteStore {
    /// Fold `user`'s turns beyond `w` into the summary. Only reflected turns are folded (a
    /// turn still waiting for its job stays until it is reflected), in time order; a folded
    /// turn adds its episode's text (filler turns, which kept no episode, add nothing).
    /// Returns the number of turns folded.
    ///
    /// Runs after every job, so it must not hold the single writer (and with it the fast
    /// path's group commit) for long: the window's edge and the overflow are found by reads
    /// on a reader connection (the newest `max_turns + 1` unfolded turns, then the reflected
    /// unfolded turns at or past the edge, at most [`FOLD_BATCH`], from the partial index
    /// `turns_foldable`, so turns still queued are never walked); the write transaction only
    /// marks those turns (each only if still unfolded: a concurrent fold is not repeated) and
    /// rewrites the summary. Nothing to fold, the usual case, takes no write at all.
    pub fn fold_short_term(&self, user: &str, w: Window) -> anyhow::Result<usize> {
        type Overflow = Vec<(String, String, i64)>;
        let overflow: Overflow = self.read(|c| {
            // Newest first; (ts_ms, created_ms, id) orders turns totally.
            let mut newest = c.prepare_cached(
                "SELECT ts_ms, created_ms, id, user_message, assistant_response FROM turns
                 WHERE user_id = ?1 AND folded = 0
                 ORDER BY ts_ms DESC, created_ms DESC, id DESC LIMIT ?2",
            )?;
            let rows: Vec<(i64, i64, String, String, String)> = newest
                .query_map(params![user, w.max_turns as i64 + 1], |r| {
                    Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
                })?
                .collect::<Result<_, _>>()?;
            let edge = window_edge(w, rows.iter().map(|r| (r.3.as_str(), r.4.as_str())))
                .map(|i| (rows[i].0, rows[i].1, rows[i].2.clone()));
            let Some((ts, created, id)) = edge else {
                return Ok(Vec::new());
            };
            let mut past = c.prepare_cached(
                "SELECT id, job_id, ts_ms FROM turns INDEXED BY turns_foldable
                 WHERE user_id = ?1 AND folded = 0 AND reflected = 1
                   AND (ts_ms, created_ms, id) <= (?2, ?3, ?4)
                 ORDER BY ts_ms, created_ms, id LIMIT ?5",
            )?;
            let out = past
                .query_map(params![user, ts, created, id, FOLD_BATCH as i64], |r| {
                    Ok((r.get(0)?, r.get(1)?, r.get(2)?))
                })?
                .collect::<Result<_, _>>()?;
            Ok(out)
        })?;
        if overflow.is_empty() {
            return Ok(0);
        }
        self.write(|tx| {
            let (mut summary, mut folded, mut through): (String, i64, i64) = tx
                .query_row(
                    "SELECT summary, folded_turns, through_ms FROM short_term_summaries WHERE user_id = ?1",
                    [user],
                    |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
                )
                .optional()?
                .unwrap_or_default();
            let mut episode = tx.prepare_cached("SELECT text FROM episodes WHERE job_id = ?1")?;
            let mut mark = tx.prepare_cached(
                "UPDATE turns SET folded = 1 WHERE user_id = ?1 AND id = ?2 AND folded = 0 AND reflected = 1",
            )?;
            let mut n = 0;
            for (id, job_id, ts) in &overflow {
                if mark.execute(params![user, id])? == 0 {
                    continue; // folded meanwhile by another worker, or deleted (or replaced)
                }
                let texts: Vec<String> = episode.query_map([job_id], |x| x.get(0))?.collect::<Result<_, _>>()?;
                append_to_summary(&mut summary, texts.iter().map(String::as_str));
                folded += 1;
                n += 1;
                through = through.max(*ts);
            }
            if n == 0 {
                return Ok(0);
            }
            // Bounded: keep the newest lines within half the window's tokens.
            let summary = trim_summary(&summary, w.max_tokens / 2);
            tx.execute(
                "INSERT INTO short_term_summaries (user_id, summary, folded_turns, through_ms, updated_ms)
                 VALUES (?1, ?2, ?3, ?4, ?5)
                 ON CONFLICT (user_id) DO UPDATE SET summary = ?2, folded_turns = ?3, through_ms = ?4, updated_ms = ?5",
                params![user, summary, folded, through, now_ms()],
            )?;
            Ok(n)
        })
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
