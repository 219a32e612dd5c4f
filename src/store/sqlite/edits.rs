//! SQLite: the statements of memory editing ([`crate::store::edits`], where the flows and
//! their documentation are), the edit history, and re-reflection of one job.
//!
//! Every statement is scoped to the user: an id of another user's memory is "not found".

use rusqlite::{OptionalExtension, params};

use crate::store::edits::{EditRecord, EditSql, FACT_PARTS_SELECT, FactParts, RuleParts};
use crate::store::*;
use crate::store::{EPISODE_SELECT, RULE_SELECT};
use crate::store::{SqliteStore, now_ms, vec_to_blob};

use super::WriteTx;
use super::reads::*;

impl EditSql for WriteTx<'_, '_> {
    fn episode(&mut self, user: &str, id: i64) -> anyhow::Result<Option<EpisodeRow>> {
        Ok(self
            .0
            .prepare_cached(&format!("{EPISODE_SELECT} WHERE user_id = ?1 AND id = ?2"))?
            .query_row(params![user, id], episode_from_row)
            .optional()?)
    }

    fn fact(&mut self, user: &str, id: i64) -> anyhow::Result<Option<FactParts>> {
        let sql = format!(
            "{FACT_PARTS_SELECT} WHERE r.user_id = ?1 AND r.id = ?2 AND r.merged_into IS NULL"
        );
        let mut stmt = self.0.prepare_cached(&sql)?;
        Ok(stmt
            .query_row(params![user, id], |r| FactParts::from_columns(r))
            .optional()?)
    }

    fn merged_evidence(&mut self, _user: &str, id: i64) -> anyhow::Result<Vec<String>> {
        let mut stmt = self
            .0
            .prepare_cached("SELECT evidence FROM relations WHERE merged_into = ?1")?;
        let rows = stmt.query_map([id], |r| r.get::<_, String>(0))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    fn rule(&mut self, user: &str, id: i64) -> anyhow::Result<Option<RuleParts>> {
        let sql = format!("{RULE_SELECT} WHERE user_id = ?1 AND id = ?2");
        let mut stmt = self.0.prepare_cached(&sql)?;
        Ok(stmt
            .query_row(params![user, id], |r| RuleParts::from_columns(r))
            .optional()?)
    }

    fn record(&mut self, e: &EditRecord<'_>) -> anyhow::Result<i64> {
        self.0
            .prepare_cached(
                "INSERT INTO memory_edits (user_id, tier, memory_id, action, actor, at_ms, before, after, signature, source_job_id, evidence)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
            )?
            .execute(params![e.user, e.tier.as_str(), e.memory_id, e.action, e.actor, e.at_ms, e.before,
                             e.after, e.signature, e.source_job_id, e.evidence])?;
        Ok(self.0.last_insert_rowid())
    }

    fn insert_episode(
        &mut self,
        user: &str,
        job_id: &str,
        e: &NewEpisode,
        now: i64,
    ) -> anyhow::Result<i64> {
        self.0.execute(
            "INSERT INTO episodes (user_id, job_id, speaker, text, summary, importance, tags, occurred_ms,
                                   observed_ms, embedding, evidence, created_ms, context)
             VALUES (?1, ?2, ?3, ?4, ?4, ?5, ?6, ?7, ?8, ?9, '[]', ?8, '')",
            params![user, job_id, e.speaker, e.text, e.importance, serde_json::to_string(&e.tags)?,
                    e.occurred_ms, now, vec_to_blob(&e.embedding)],
        )?;
        Ok(self.0.last_insert_rowid())
    }

    fn insert_fact(
        &mut self,
        user: &str,
        s: i64,
        o: i64,
        f: &NewFact,
        exclusive: bool,
        job_id: &str,
        now: i64,
    ) -> anyhow::Result<Option<i64>> {
        let n = self.0.execute(
            "INSERT OR IGNORE INTO relations (user_id, subject_id, predicate, object_id, fact, exclusive,
                                              valid_ms, evidence, job_id, created_ms)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, '[]', ?8, ?9)",
            params![user, s, f.predicate, o, f.fact, exclusive, f.valid_ms, job_id, now],
        )?;
        Ok((n > 0).then(|| self.0.last_insert_rowid()))
    }

    fn insert_rule(&mut self, user: &str, r: &NewRule, now: i64) -> anyhow::Result<Option<i64>> {
        let n = self.0.execute(
            "INSERT OR IGNORE INTO rules (user_id, kind, topic, statement, confidence, first_ms, last_ms, embedding, evidence, created_ms)
             VALUES (?1, ?2, ?3, ?4, 1.0, ?5, ?5, ?6, '[]', ?5)",
            params![user, r.kind, r.topic, r.statement, now, vec_to_blob(&r.embedding)],
        )?;
        Ok((n > 0).then(|| self.0.last_insert_rowid()))
    }

    fn slot_exclusive(
        &mut self,
        user: &str,
        s: i64,
        predicate: &str,
    ) -> anyhow::Result<Option<bool>> {
        Ok(self.0.query_row(
            "SELECT max(exclusive) FROM relations WHERE user_id = ?1 AND subject_id = ?2 AND predicate = ?3",
            params![user, s, predicate],
            |r| r.get::<_, Option<bool>>(0),
        )?)
    }

    fn shown_fact(&mut self, _user: &str, id: i64) -> anyhow::Result<i64> {
        Ok(self.0.query_row(
            "SELECT coalesce(merged_into, id) FROM relations WHERE id = ?1",
            [id],
            |r| r.get(0),
        )?)
    }

    fn set_episode_text(
        &mut self,
        user: &str,
        id: i64,
        text: &str,
        emb: &[f32],
    ) -> anyhow::Result<()> {
        self.0.execute(
            "UPDATE episodes SET text = ?3, summary = ?3, embedding = ?4 WHERE user_id = ?1 AND id = ?2",
            params![user, id, text, vec_to_blob(emb)],
        )?;
        Ok(())
    }

    fn fact_clash(&mut self, user: &str, id: i64, o: i64) -> anyhow::Result<bool> {
        Ok(self.0.query_row(
            "SELECT EXISTS (SELECT 1 FROM relations r JOIN relations x ON x.id = ?2
             WHERE r.user_id = ?1 AND r.id != x.id AND r.subject_id = x.subject_id
               AND r.predicate = x.predicate AND r.object_id = ?3 AND r.valid_ms = x.valid_ms)",
            params![user, id, o],
            |r| r.get(0),
        )?)
    }

    fn set_fact_object(&mut self, user: &str, id: i64, o: i64) -> anyhow::Result<()> {
        self.0.execute(
            "DELETE FROM relations WHERE user_id = ?1 AND merged_into = ?2",
            params![user, id],
        )?;
        self.0.execute(
            "UPDATE relations SET object_id = ?3 WHERE user_id = ?1 AND id = ?2",
            params![user, id, o],
        )?;
        Ok(())
    }

    fn rule_clash(
        &mut self,
        user: &str,
        topic: &str,
        statement: &str,
        id: i64,
    ) -> anyhow::Result<bool> {
        Ok(self.0.query_row(
            "SELECT EXISTS (SELECT 1 FROM rules WHERE user_id = ?1 AND topic = ?2 AND statement = ?3 AND id != ?4)",
            params![user, topic, statement, id],
            |r| r.get(0),
        )?)
    }

    fn set_rule_statement(
        &mut self,
        user: &str,
        id: i64,
        statement: &str,
        emb: &[f32],
    ) -> anyhow::Result<()> {
        self.0.execute(
            "UPDATE rules SET statement = ?3, embedding = ?4 WHERE user_id = ?1 AND id = ?2",
            params![user, id, statement, vec_to_blob(emb)],
        )?;
        Ok(())
    }

    fn delete(&mut self, tier: EditTier, user: &str, id: i64) -> anyhow::Result<()> {
        let sql = match tier {
            EditTier::Episodic => "DELETE FROM episodes WHERE user_id = ?1 AND id = ?2",
            EditTier::Semantic => {
                "DELETE FROM relations WHERE user_id = ?1 AND (id = ?2 OR merged_into = ?2)"
            }
            EditTier::Procedural => "DELETE FROM rules WHERE user_id = ?1 AND id = ?2",
        };
        self.0.execute(sql, params![user, id])?;
        if tier == EditTier::Procedural {
            self.0.execute(
                "UPDATE rules SET superseded_by = NULL WHERE user_id = ?1 AND superseded_by = ?2",
                params![user, id],
            )?;
        }
        Ok(())
    }

    fn delete_job_tiers_of(&mut self, user: &str) -> anyhow::Result<u64> {
        let n = self.0.execute(
            "DELETE FROM job_tiers WHERE job_id IN (SELECT job_id FROM jobs WHERE user_id = ?1)",
            [user],
        )?;
        Ok(n as u64)
    }

    fn delete_rows_of(&mut self, table: &'static str, user: &str) -> anyhow::Result<u64> {
        let n = self
            .0
            .execute(&format!("DELETE FROM {table} WHERE user_id = ?1"), [user])?;
        Ok(n as u64)
    }

    fn mark_forgotten(&mut self, user: &str, now: i64) -> anyhow::Result<()> {
        // Derived from episodes (its trigger left the row at zero): no trace stays.
        self.0
            .execute("DELETE FROM episode_stamps WHERE user_id = ?1", [user])?;
        self.0.execute(
            "INSERT INTO forgotten_users (user_id, forgotten_ms) VALUES (?1, ?2)
             ON CONFLICT (user_id) DO UPDATE SET forgotten_ms = excluded.forgotten_ms",
            params![user, now],
        )?;
        Ok(())
    }
}

impl SqliteStore {
    /// The user's edits, newest first.
    pub fn list_edits(
        &self,
        user: &str,
        limit: usize,
        offset: usize,
    ) -> anyhow::Result<Vec<EditEntry>> {
        self.page(
            &format!("{EDIT_SELECT} WHERE user_id = ?1 ORDER BY id DESC LIMIT ?2 OFFSET ?3"),
            user,
            limit,
            offset,
            |r| EditEntry::from_columns(r),
        )
    }

    /// Re-reflection of one job: forget its tier records and queue it again, so the
    /// processors run over its stored turn once more. Idempotent: every tier commit replaces
    /// or de-duplicates what the job wrote before, and tombstones keep user edits. Returns
    /// false for an unknown job or one already waiting or in progress.
    pub fn rereflect_job(&self, job_id: &str) -> anyhow::Result<bool> {
        self.write(|tx| {
            let state: Option<String> = tx
                .query_row("SELECT state FROM jobs WHERE job_id = ?1", [job_id], |r| r.get(0))
                .optional()?;
            if !matches!(state.as_deref(), Some("completed" | "dead")) {
                return Ok(false);
            }
            tx.execute("DELETE FROM job_tiers WHERE job_id = ?1", [job_id])?;
            let now = now_ms();
            tx.execute(
                "UPDATE jobs SET state = 'queued', attempts = 0, available_ms = ?2, lease_owner = NULL,
                     lease_expires_ms = NULL, last_error = NULL, dead_reason = NULL, completed_ms = NULL, updated_ms = ?2
                 WHERE job_id = ?1",
                params![job_id, now],
            )?;
            Ok(true)
        })
    }
}
