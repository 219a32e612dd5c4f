//! PostgreSQL: the statements of memory editing ([`crate::store::edits`], where the flows
//! and their documentation are), the edit history, and re-reflection of one job. Only what
//! PostgreSQL needs differently from the SQLite statements is noted:
//!
//! - Every edit takes the per-user advisory lock ([`super::lock_user`]) before reading
//!   anything, like the tier commits, so an edit and a commit of the same user apply one
//!   after the other (entity resolution, slot and topic re-derivation see each other). The
//!   write closures are re-runnable: [`PgStore::write`] retries them from the start.
//! - `INSERT OR IGNORE` is `ON CONFLICT DO NOTHING` (`RETURNING id` tells whether a row was
//!   inserted). An identity value is consumed even when the insert is skipped, so ids may
//!   have gaps that SQLite's would not: nothing depends on ids being dense.
//! - With pgvector, an episode's `embedding_v` is written with its `embedding`.
//! - A rule's `confidence` is a `real`, widened to f64 as it is read.

use crate::store::edits::{EditRecord, EditSql, FACT_PARTS_SELECT, FactParts, RuleParts};
use crate::store::*;
use crate::store::{EPISODE_SELECT, RULE_SELECT};
use crate::store::{now_ms, vec_to_blob};

use super::reads::episode_from_row;
use super::tiers::*;
use super::*;

impl EditSql for WriteTx<'_, '_> {
    fn episode(&mut self, user: &str, id: i64) -> anyhow::Result<Option<EpisodeRow>> {
        let row = self.tx.query_opt(
            &format!("{EPISODE_SELECT} WHERE user_id = $1 AND id = $2"),
            &[&user, &id],
        )?;
        Ok(row.map(|r| episode_from_row(&r)).transpose()?)
    }

    fn fact(&mut self, user: &str, id: i64) -> anyhow::Result<Option<FactParts>> {
        let sql = format!(
            "{FACT_PARTS_SELECT} WHERE r.user_id = $1 AND r.id = $2 AND r.merged_into IS NULL"
        );
        let row = self.tx.query_opt(&sql, &[&user, &id])?;
        Ok(row.map(|r| FactParts::from_columns(&r)).transpose()?)
    }

    fn merged_evidence(&mut self, user: &str, id: i64) -> anyhow::Result<Vec<String>> {
        let rows = self.tx.query(
            "SELECT evidence FROM relations WHERE user_id = $1 AND merged_into = $2",
            &[&user, &id],
        )?;
        rows.iter().map(|r| Ok(r.try_get(0)?)).collect()
    }

    fn rule(&mut self, user: &str, id: i64) -> anyhow::Result<Option<RuleParts>> {
        let sql = format!("{RULE_SELECT} WHERE user_id = $1 AND id = $2");
        let row = self.tx.query_opt(&sql, &[&user, &id])?;
        Ok(row.map(|r| RuleParts::from_columns(&r)).transpose()?)
    }

    fn record(&mut self, e: &EditRecord<'_>) -> anyhow::Result<i64> {
        Ok(self
            .tx
            .query_one(
                "INSERT INTO memory_edits (user_id, tier, memory_id, action, actor, at_ms, before, after, signature, source_job_id, evidence)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) RETURNING id",
                &[&e.user, &e.tier.as_str(), &e.memory_id, &e.action, &e.actor, &e.at_ms, &e.before,
                  &e.after, &e.signature, &e.source_job_id, &e.evidence],
            )?
            .try_get(0)?)
    }

    fn insert_episode(
        &mut self,
        user: &str,
        job_id: &str,
        e: &NewEpisode,
        now: i64,
    ) -> anyhow::Result<i64> {
        let tags = serde_json::to_string(&e.tags)?;
        let blob = vec_to_blob(&e.embedding);
        let vector = vector_param(&e.embedding);
        let (vcol, vval) = match self.vectors {
            VectorMode::Pgvector => (", embedding_v", ", CAST($10::text AS vector)"),
            VectorMode::Exact => ("", ""),
        };
        let insert = format!(
            "INSERT INTO episodes (user_id, job_id, speaker, text, summary, importance, tags, occurred_ms,
                                   observed_ms, embedding, evidence, created_ms, context{vcol})
             VALUES ($1, $2, $3, $4, $4, $5, $6, $7, $8, $9, '[]', $8, ''{vval}) RETURNING id"
        );
        let mut params: Vec<Param<'_>> = vec![
            &user,
            &job_id,
            &e.speaker,
            &e.text,
            &e.importance,
            &tags,
            &e.occurred_ms,
            &now,
            &blob,
        ];
        if self.vectors == VectorMode::Pgvector {
            params.push(&vector);
        }
        Ok(self.tx.query_one(&insert, &params)?.try_get(0)?)
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
        let row = self.tx.query_opt(
            "INSERT INTO relations (user_id, subject_id, predicate, object_id, fact, exclusive,
                                    valid_ms, evidence, job_id, created_ms)
             VALUES ($1, $2, $3, $4, $5, $6, $7, '[]', $8, $9)
             ON CONFLICT DO NOTHING RETURNING id",
            &[
                &user,
                &s,
                &f.predicate,
                &o,
                &f.fact,
                &exclusive,
                &f.valid_ms,
                &job_id,
                &now,
            ],
        )?;
        Ok(row.map(|r| r.try_get(0)).transpose()?)
    }

    fn insert_rule(&mut self, user: &str, r: &NewRule, now: i64) -> anyhow::Result<Option<i64>> {
        let row = self.tx.query_opt(
            "INSERT INTO rules (user_id, kind, topic, statement, confidence, first_ms, last_ms, embedding, evidence, created_ms)
             VALUES ($1, $2, $3, $4, 1.0, $5, $5, $6, '[]', $5)
             ON CONFLICT DO NOTHING RETURNING id",
            &[&user, &r.kind, &r.topic, &r.statement, &now, &vec_to_blob(&r.embedding)],
        )?;
        Ok(row.map(|r| r.try_get(0)).transpose()?)
    }

    fn slot_exclusive(
        &mut self,
        user: &str,
        s: i64,
        predicate: &str,
    ) -> anyhow::Result<Option<bool>> {
        Ok(self
            .tx
            .query_one(
                "SELECT bool_or(exclusive) FROM relations WHERE user_id = $1 AND subject_id = $2 AND predicate = $3",
                &[&user, &s, &predicate],
            )?
            .try_get(0)?)
    }

    fn shown_fact(&mut self, user: &str, id: i64) -> anyhow::Result<i64> {
        Ok(self
            .tx
            .query_one(
                "SELECT coalesce(merged_into, id) FROM relations WHERE user_id = $1 AND id = $2",
                &[&user, &id],
            )?
            .try_get(0)?)
    }

    fn set_episode_text(
        &mut self,
        user: &str,
        id: i64,
        text: &str,
        emb: &[f32],
    ) -> anyhow::Result<()> {
        let blob = vec_to_blob(emb);
        match self.vectors {
            VectorMode::Pgvector => self.tx.execute(
                "UPDATE episodes SET text = $3, summary = $3, embedding = $4, embedding_v = CAST($5::text AS vector)
                 WHERE user_id = $1 AND id = $2",
                &[&user, &id, &text, &blob, &vector_param(emb)],
            )?,
            VectorMode::Exact => self.tx.execute(
                "UPDATE episodes SET text = $3, summary = $3, embedding = $4 WHERE user_id = $1 AND id = $2",
                &[&user, &id, &text, &blob],
            )?,
        };
        Ok(())
    }

    fn fact_clash(&mut self, user: &str, id: i64, o: i64) -> anyhow::Result<bool> {
        Ok(self
            .tx
            .query_one(
                "SELECT EXISTS (SELECT 1 FROM relations r JOIN relations x ON x.id = $2 AND x.user_id = $1
                 WHERE r.user_id = $1 AND r.id != x.id AND r.subject_id = x.subject_id
                   AND r.predicate = x.predicate AND r.object_id = $3 AND r.valid_ms = x.valid_ms)",
                &[&user, &id, &o],
            )?
            .try_get(0)?)
    }

    fn set_fact_object(&mut self, user: &str, id: i64, o: i64) -> anyhow::Result<()> {
        self.tx.execute(
            "DELETE FROM relations WHERE user_id = $1 AND merged_into = $2",
            &[&user, &id],
        )?;
        self.tx.execute(
            "UPDATE relations SET object_id = $3 WHERE user_id = $1 AND id = $2",
            &[&user, &id, &o],
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
        Ok(self
            .tx
            .query_one(
                "SELECT EXISTS (SELECT 1 FROM rules WHERE user_id = $1 AND topic = $2 AND statement = $3 AND id != $4)",
                &[&user, &topic, &statement, &id],
            )?
            .try_get(0)?)
    }

    fn set_rule_statement(
        &mut self,
        user: &str,
        id: i64,
        statement: &str,
        emb: &[f32],
    ) -> anyhow::Result<()> {
        self.tx.execute(
            "UPDATE rules SET statement = $3, embedding = $4 WHERE user_id = $1 AND id = $2",
            &[&user, &id, &statement, &vec_to_blob(emb)],
        )?;
        Ok(())
    }

    fn delete(&mut self, tier: EditTier, user: &str, id: i64) -> anyhow::Result<()> {
        let sql = match tier {
            EditTier::Episodic => "DELETE FROM episodes WHERE user_id = $1 AND id = $2",
            EditTier::Semantic => {
                "DELETE FROM relations WHERE user_id = $1 AND (id = $2 OR merged_into = $2)"
            }
            EditTier::Procedural => "DELETE FROM rules WHERE user_id = $1 AND id = $2",
        };
        self.tx.execute(sql, &[&user, &id])?;
        if tier == EditTier::Procedural {
            self.tx.execute(
                "UPDATE rules SET superseded_by = NULL WHERE user_id = $1 AND superseded_by = $2",
                &[&user, &id],
            )?;
        }
        Ok(())
    }

    fn delete_job_tiers_of(&mut self, user: &str) -> anyhow::Result<u64> {
        Ok(self.tx.execute(
            "DELETE FROM job_tiers WHERE job_id IN (SELECT job_id FROM jobs WHERE user_id = $1)",
            &[&user],
        )?)
    }

    fn delete_rows_of(&mut self, table: &'static str, user: &str) -> anyhow::Result<u64> {
        Ok(self
            .tx
            .execute(&format!("DELETE FROM {table} WHERE user_id = $1"), &[&user])?)
    }

    fn mark_forgotten(&mut self, user: &str, now: i64) -> anyhow::Result<()> {
        self.tx.execute(
            "INSERT INTO forgotten_users (user_id, forgotten_ms) VALUES ($1, $2)
             ON CONFLICT (user_id) DO UPDATE SET forgotten_ms = EXCLUDED.forgotten_ms",
            &[&user, &now],
        )?;
        Ok(())
    }
}

impl PgStore {
    /// The user's edits, newest first: see [`crate::store::SqliteStore::list_edits`].
    pub fn list_edits(
        &self,
        user: &str,
        limit: usize,
        offset: usize,
    ) -> anyhow::Result<Vec<EditEntry>> {
        self.page(
            &format!("{EDIT_SELECT} WHERE user_id = $1 ORDER BY id DESC LIMIT $2 OFFSET $3"),
            user,
            limit,
            offset,
            EditEntry::from_columns,
        )
    }

    /// See [`crate::store::SqliteStore::rereflect_job`].
    pub fn rereflect_job(&self, job_id: &str) -> anyhow::Result<bool> {
        self.write(|tx| {
            let state: Option<String> = tx
                .query_opt(
                    "SELECT state FROM jobs WHERE job_id = $1 FOR UPDATE",
                    &[&job_id],
                )?
                .map(|r| r.get(0));
            if !matches!(state.as_deref(), Some("completed" | "dead")) {
                return Ok(false);
            }
            tx.execute("DELETE FROM job_tiers WHERE job_id = $1", &[&job_id])?;
            let now = now_ms();
            tx.execute(
                "UPDATE jobs SET state = 'queued', attempts = 0, available_ms = $2, lease_owner = NULL,
                     lease_expires_ms = NULL, last_error = NULL, dead_reason = NULL, completed_ms = NULL, updated_ms = $2
                 WHERE job_id = $1",
                &[&job_id, &now],
            )?;
            Ok(true)
        })
    }
}
