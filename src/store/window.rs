//! Tier 1's window, written once for both backends: a user's turns beyond the window
//! ([`super::Window`]) are folded into one running summary, in time order. Only reflected
//! turns are folded (a turn still waiting for its job stays until it is reflected); a folded
//! turn adds its episode's text (filler turns, which kept no episode, add nothing).
//!
//! The fold has two steps, so that SQLite can take the first on a reader connection and
//! take its single writer only when there is something to fold (the usual case after a job
//! is nothing): [`overflow`] finds the turns to fold (statements: [`FoldReadSql`]), [`fold`]
//! marks them and rewrites the summary (statements: [`FoldSql`]). PostgreSQL runs both in one
//! write transaction under the user's lock. Each backend's `window.rs` holds the statements
//! and that orchestration, and retention (`prune`), a single statement per table.

use std::collections::{HashMap, HashSet};

use super::derive::{append_to_summary, trim_summary, window_edge};
use super::model::{Columns, FOLD_BATCH, Window};

/// An unfolded turn, as the window's edge is found from it.
#[derive(Debug, Clone)]
pub struct UnfoldedTurn {
    /// When the turn happened and when it was stored (ms since the Unix epoch), and its
    /// interaction id: together they order a user's turns totally.
    pub ts_ms: i64,
    pub created_ms: i64,
    pub id: String,
    pub user_message: String,
    pub assistant_response: String,
}

impl UnfoldedTurn {
    /// From a row of `SELECT ts_ms, created_ms, id, user_message, assistant_response FROM
    /// turns`.
    pub fn from_columns<R: Columns>(r: &R) -> Result<Self, R::Error> {
        Ok(Self {
            ts_ms: r.int(0)?,
            created_ms: r.int(1)?,
            id: r.text(2)?,
            user_message: r.text(3)?,
            assistant_response: r.text(4)?,
        })
    }
}

/// A reflected turn beyond the window, to be folded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FoldTurn {
    /// Its interaction id.
    pub id: String,
    pub job_id: String,
    /// When it happened (ms since the Unix epoch).
    pub ts_ms: i64,
}

impl FoldTurn {
    /// From a row of `SELECT id, job_id, ts_ms FROM turns`.
    pub fn from_columns<R: Columns>(r: &R) -> Result<Self, R::Error> {
        Ok(Self {
            id: r.text(0)?,
            job_id: r.text(1)?,
            ts_ms: r.int(2)?,
        })
    }
}

/// The reads that find what to fold, on any connection of the store.
#[rustfmt::skip]
pub trait FoldReadSql {
    /// The user's newest `n` unfolded turns, newest first by `(ts_ms, created_ms, id)`.
    fn newest_unfolded(&mut self, user: &str, n: usize) -> anyhow::Result<Vec<UnfoldedTurn>>;
    /// The user's reflected unfolded turns at or before `edge` by `(ts_ms, created_ms, id)`,
    /// oldest first, at most `limit` (SQLite and PostgreSQL read them from the partial index
    /// `turns_foldable`, so turns still queued are never walked).
    fn foldable(&mut self, user: &str, edge: &UnfoldedTurn, limit: usize) -> anyhow::Result<Vec<FoldTurn>>;
}

/// The statements of the fold, on an open write transaction.
#[rustfmt::skip]
pub trait FoldSql {
    /// Mark the user's turns `ids` folded, each only if it is still unfolded and reflected
    /// (SQLite read them outside this transaction: a concurrent fold is not repeated, a
    /// deleted turn is skipped). Returns the ids this marked.
    fn mark_folded(&mut self, user: &str, ids: &[&str]) -> anyhow::Result<HashSet<String>>;
    /// The text of the episode of each of `job_ids` that has one (at most one per job).
    fn episode_texts(&mut self, user: &str, job_ids: &[&str]) -> anyhow::Result<HashMap<String, String>>;
    /// The user's running summary: `(summary, folded turns, through_ms)`.
    fn running_summary(&mut self, user: &str) -> anyhow::Result<Option<(String, i64, i64)>>;
    /// Store the user's running summary, updated at `now` (ms since the Unix epoch).
    fn write_summary(&mut self, user: &str, summary: &str, folded_turns: i64, through_ms: i64, now: i64) -> anyhow::Result<()>;
}

/// The user's reflected turns beyond `w`, oldest first, at most [`FOLD_BATCH`]: the window's
/// edge is found from the newest `max_turns + 1` unfolded turns ([`window_edge`]), then the
/// reflected turns at or past it are read. Empty when the window holds every turn.
pub fn overflow(sql: &mut dyn FoldReadSql, user: &str, w: Window) -> anyhow::Result<Vec<FoldTurn>> {
    let newest = sql.newest_unfolded(user, w.max_turns + 1)?;
    let edge = window_edge(
        w,
        newest
            .iter()
            .map(|t| (t.user_message.as_str(), t.assistant_response.as_str())),
    );
    match edge {
        Some(i) => sql.foldable(user, &newest[i], FOLD_BATCH),
        None => Ok(Vec::new()),
    }
}

/// Fold `overflow` (from [`overflow`]) into the user's running summary: mark the turns, add
/// their episodes' texts in order, and keep the newest lines within half the window's tokens.
/// Returns the number of turns folded (those already folded meanwhile are not counted).
pub fn fold(
    sql: &mut dyn FoldSql,
    user: &str,
    w: Window,
    overflow: &[FoldTurn],
) -> anyhow::Result<usize> {
    let ids: Vec<&str> = overflow.iter().map(|t| t.id.as_str()).collect();
    let marked = sql.mark_folded(user, &ids)?;
    if marked.is_empty() {
        return Ok(0);
    }
    let folding: Vec<&FoldTurn> = overflow.iter().filter(|t| marked.contains(&t.id)).collect();
    let jobs: Vec<&str> = folding.iter().map(|t| t.job_id.as_str()).collect();
    let texts = sql.episode_texts(user, &jobs)?;
    let (mut summary, mut folded, mut through) = sql.running_summary(user)?.unwrap_or_default();
    for t in &folding {
        append_to_summary(&mut summary, texts.get(&t.job_id).map(String::as_str));
        folded += 1;
        through = through.max(t.ts_ms);
    }
    let summary = trim_summary(&summary, w.max_tokens / 2);
    sql.write_summary(user, &summary, folded, through, super::now_ms())?;
    Ok(folding.len())
}
