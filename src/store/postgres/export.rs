//! PostgreSQL: the export's `SELECT`s and the import's statements ([`ImportSql`]), as the
//! SQLite methods of the same names (`src/store/sqlite/export.rs`); the records and the
//! import's flow are written once, in `store/export.rs`. The export reads one snapshot (a
//! read-only REPEATABLE READ transaction) and streams rows through portals; the import takes
//! the user's lock.

use std::io::{BufRead, Write};

use ::postgres::{IsolationLevel, Row, Transaction};

use crate::store::Counts;
use crate::store::derive::{export_header, read_export};
use crate::store::edits::EditRecord;
use crate::store::export::{self, ImportSql, Lines};

use super::tiers::WriteTx;
use super::*;

/// Rows fetched per round trip when the export streams a query (a few in the unit tests, so
/// that they cross batch boundaries).
pub(super) const EXPORT_BATCH: i32 = if cfg!(test) { 3 } else { 256 };

/// Run `sql` and hand each row to `f`, fetching [`EXPORT_BATCH`] rows per round trip.
pub(super) fn pg_each_row(
    tx: &mut Transaction<'_>,
    sql: &str,
    params: &[Param<'_>],
    mut f: impl FnMut(&Row) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    let portal = tx.bind(sql, params)?;
    loop {
        let rows = tx.query_portal(&portal, EXPORT_BATCH)?;
        for r in &rows {
            f(r)?;
        }
        if rows.len() < EXPORT_BATCH as usize {
            return Ok(());
        }
    }
}

impl PgStore {
    /// Write `user`'s memory as JSON Lines (docs/EXPORT.md), line for line what
    /// [`crate::store::SqliteStore::export_user`] writes for the same content. Reads one
    /// snapshot of the user's rows.
    pub fn export_user(
        &self,
        user: &str,
        model: &str,
        out: &mut dyn Write,
    ) -> anyhow::Result<Counts> {
        let mut lines = Lines::new(out);
        self.read(|c| {
            let mut tx = c
                .build_transaction()
                .isolation_level(IsolationLevel::RepeatableRead)
                .read_only(true)
                .start()?;
            lines.line(export_header(user, model))?;
            let mut each = |sql: &str, f: fn(&Row) -> anyhow::Result<serde_json::Value>| {
                pg_each_row(&mut tx, sql, &[&user], |r| lines.line(f(r)?))
            };
            each(
                "SELECT t.id, t.session_id, t.user_message, t.assistant_response, t.ts_ms, t.metadata, t.request_hash,
                        t.created_ms, t.reflected, j.job_id, j.priority, j.state, j.payload, j.max_retries, j.created_ms
                 FROM turns t LEFT JOIN jobs j ON j.job_id = t.job_id WHERE t.user_id = $1
                 ORDER BY t.ts_ms, t.created_ms, t.id COLLATE \"C\"",
                export::turn_line,
            )?;
            each(
                "SELECT job_id, speaker, text, summary, importance, tags, occurred_ms, observed_ms, embedding, evidence, created_ms, context
                 FROM episodes WHERE user_id = $1 ORDER BY id",
                export::episode_line,
            )?;
            each(
                "SELECT e.name, e.kind, e.created_ms,
                        coalesce((SELECT array_agg(a.alias_norm ORDER BY a.alias_norm COLLATE \"C\")
                                  FROM entity_aliases a WHERE a.user_id = e.user_id AND a.entity_id = e.id), '{}')
                 FROM entities e WHERE e.user_id = $1 ORDER BY e.id",
                |r| export::entity_line(r, r.try_get(3)?),
            )?;
            each(
                "SELECT s.name, r.predicate, o.name, r.fact, r.exclusive, r.valid_ms, r.evidence, r.job_id, r.created_ms
                 FROM relations r JOIN entities s ON s.id = r.subject_id JOIN entities o ON o.id = r.object_id
                 WHERE r.user_id = $1 ORDER BY r.id",
                export::fact_line,
            )?;
            each(
                "SELECT kind, topic, statement, confidence, first_ms, last_ms, embedding, evidence, created_ms
                 FROM rules WHERE user_id = $1 ORDER BY id",
                export::rule_line,
            )?;
            each(
                "SELECT tier, memory_id, action, actor, at_ms, before, after, signature, source_job_id, evidence
                 FROM memory_edits WHERE user_id = $1 ORDER BY id",
                export::edit_line,
            )
        })?;
        lines.finish()
    }

    /// Read an export back in ONE transaction, skipping records already present: see
    /// [`export::import_lines`] (ids are PostgreSQL's own).
    pub fn import_user(&self, input: &mut dyn BufRead) -> anyhow::Result<Counts> {
        let (lines, user) = read_export(input)?;
        let vectors = self.vectors;
        self.write(|tx| export::import_lines(&mut WriteTx { tx, vectors }, &lines, &user))
    }
}

/// The import's statements on PostgreSQL: `ON CONFLICT DO NOTHING` on each record's unique
/// key.
impl ImportSql for WriteTx<'_, '_> {
    fn entity_exists(&mut self, user: &str, norm: &str) -> anyhow::Result<bool> {
        Ok(self
            .tx
            .query_one(
                "SELECT EXISTS (SELECT 1 FROM entities WHERE user_id = $1 AND norm_name = $2)",
                &[&user, &norm],
            )?
            .try_get(0)?)
    }

    fn edit_exists(&mut self, e: &EditRecord<'_>) -> anyhow::Result<bool> {
        Ok(self.tx.query_one(
            "SELECT EXISTS (SELECT 1 FROM memory_edits WHERE user_id = $1 AND tier = $2 AND action = $3
                            AND at_ms = $4 AND signature IS NOT DISTINCT FROM $5 AND memory_id = $6)",
            &[&e.user, &e.tier.as_str(), &e.action, &e.at_ms, &e.signature, &e.memory_id],
        )?.try_get(0)?)
    }
}
