//! SQLite: the export's `SELECT`s and the import's statements ([`ImportSql`]); the records
//! and the import's flow are written once, in `store/export.rs` (schema: docs/EXPORT.md).

use std::io::{BufRead, Write};

use rusqlite::{OptionalExtension, params};

use crate::store::derive::{export_header, read_export};
use crate::store::edits::EditRecord;
use crate::store::export::{self, ImportSql, Lines};
use crate::store::{Counts, SqliteStore};

use super::WriteTx;

impl SqliteStore {
    /// Write `user`'s memory to `out` as JSON Lines (docs/EXPORT.md); returns the lines
    /// written by type.
    pub fn export_user(
        &self,
        user: &str,
        model: &str,
        out: &mut dyn Write,
    ) -> anyhow::Result<Counts> {
        let mut lines = Lines::new(out);
        self.read(|c| {
            lines.line(export_header(user, model))?;
            let mut each = |sql: &str, f: &mut dyn FnMut(&rusqlite::Row) -> anyhow::Result<serde_json::Value>| -> anyhow::Result<()> {
                let mut st = c.prepare(sql)?;
                let mut rows = st.query([user])?;
                while let Some(r) = rows.next()? {
                    lines.line(f(r)?)?;
                }
                Ok(())
            };
            each(
                "SELECT t.id, t.session_id, t.user_message, t.assistant_response, t.ts_ms, t.metadata, t.request_hash,
                        t.created_ms, t.reflected, j.job_id, j.priority, j.state, j.payload, j.max_retries, j.created_ms
                 FROM turns t LEFT JOIN jobs j ON j.job_id = t.job_id WHERE t.user_id = ?1 ORDER BY t.ts_ms, t.created_ms, t.id",
                &mut |r| export::turn_line(r),
            )?;
            each(
                "SELECT job_id, speaker, text, summary, importance, tags, occurred_ms, observed_ms, embedding, evidence, created_ms, context
                 FROM episodes WHERE user_id = ?1 ORDER BY id",
                &mut |r| export::episode_line(r),
            )?;
            let mut aliases = c.prepare(
                "SELECT alias_norm FROM entity_aliases WHERE user_id = ?1 AND entity_id = ?2 ORDER BY alias_norm",
            )?;
            each(
                "SELECT e.name, e.kind, e.created_ms, e.id FROM entities e WHERE e.user_id = ?1 ORDER BY e.id",
                &mut |r| {
                    let al = aliases
                        .query_map(params![user, r.get::<_, i64>(3)?], |x| x.get(0))?
                        .collect::<Result<_, _>>()?;
                    export::entity_line(r, al)
                },
            )?;
            each(
                "SELECT s.name, r.predicate, o.name, r.fact, r.exclusive, r.valid_ms, r.evidence, r.job_id, r.created_ms
                 FROM relations r JOIN entities s ON s.id = r.subject_id JOIN entities o ON o.id = r.object_id
                 WHERE r.user_id = ?1 ORDER BY r.id",
                &mut |r| export::fact_line(r),
            )?;
            each(
                "SELECT kind, topic, statement, confidence, first_ms, last_ms, embedding, evidence, created_ms
                 FROM rules WHERE user_id = ?1 ORDER BY id",
                &mut |r| export::rule_line(r),
            )?;
            each(
                "SELECT tier, memory_id, action, actor, at_ms, before, after, signature, source_job_id, evidence
                 FROM memory_edits WHERE user_id = ?1 ORDER BY id",
                &mut |r| export::edit_line(r),
            )
        })?;
        lines.finish()
    }

    /// Read an export back, in ONE transaction (a bad line leaves the store as it was): see
    /// [`export::import_lines`]. Returns the records imported (new) by type; records already
    /// present are skipped. Errors name the line number and the field.
    pub fn import_user(&self, input: &mut dyn BufRead) -> anyhow::Result<Counts> {
        let (lines, user) = read_export(input)?;
        self.write(|tx| export::import_lines(&mut WriteTx(tx), &lines, &user))
    }
}

/// The import's statements on SQLite: `INSERT OR IGNORE` on each record's unique key.
impl ImportSql for WriteTx<'_, '_> {
    fn entity_exists(&mut self, user: &str, norm: &str) -> anyhow::Result<bool> {
        Ok(self
            .0
            .prepare_cached("SELECT 1 FROM entities WHERE user_id = ?1 AND norm_name = ?2")?
            .query_row(params![user, norm], |_| Ok(()))
            .optional()?
            .is_some())
    }

    fn edit_exists(&mut self, e: &EditRecord<'_>) -> anyhow::Result<bool> {
        Ok(self.0
            .prepare_cached(
                "SELECT 1 FROM memory_edits WHERE user_id = ?1 AND tier = ?2 AND action = ?3 AND at_ms = ?4
                 AND signature IS ?5 AND memory_id = ?6",
            )?
            .query_row(params![e.user, e.tier.as_str(), e.action, e.at_ms, e.signature, e.memory_id], |_| Ok(()))
            .optional()?
            .is_some())
    }
}
