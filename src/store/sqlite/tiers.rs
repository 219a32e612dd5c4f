//! SQLite: the statements of the tier commits ([`crate::store::tiers`], where the flows and
//! their documentation are): SQL and parameter binding only.

use rusqlite::{OptionalExtension, params};

use crate::extract::RuleDraft;
use crate::job::Tier;
use crate::store::derive::{SlotRow, TopicRule, entity_key};
use crate::store::sql::{RowSql, SqlValue, insert_sql, update_sql};
use crate::store::tiers::{ReflectedEpisode, ReflectedFact, TierSql};
use crate::store::{EditTier, vec_to_blob};

use super::WriteTx;

impl rusqlite::ToSql for SqlValue<'_> {
    fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
        use rusqlite::types::{ToSqlOutput, Value};
        Ok(match *self {
            SqlValue::Int(v) | SqlValue::OptInt(Some(v)) => v.into(),
            SqlValue::Real(v) => v.into(),
            SqlValue::Bool(v) => i64::from(v).into(),
            SqlValue::Text(v) | SqlValue::OptText(Some(v)) => v.into(),
            SqlValue::Blob(v) => v.into(),
            SqlValue::OptInt(None) | SqlValue::OptText(None) => ToSqlOutput::Owned(Value::Null),
        })
    }
}

/// The row statements on SQLite: an insert that breaks a uniqueness constraint (or a `NOT
/// NULL`) is ignored (`INSERT OR IGNORE`).
impl RowSql for WriteTx<'_, '_> {
    fn insert_row(
        &mut self,
        table: &'static str,
        columns: &[&'static str],
        values: &[SqlValue<'_>],
    ) -> anyhow::Result<bool> {
        let sql = insert_sql(
            "INSERT OR IGNORE",
            table,
            columns,
            &[],
            |i| format!("?{i}"),
            "",
        );
        let n = self
            .0
            .prepare_cached(&sql)?
            .execute(rusqlite::params_from_iter(values))?;
        Ok(n > 0)
    }

    fn set_columns(
        &mut self,
        table: &'static str,
        user: &str,
        id: i64,
        set: &[(&'static str, SqlValue<'_>)],
    ) -> anyhow::Result<()> {
        let columns: Vec<&str> = set.iter().map(|(c, _)| *c).collect();
        let sql = update_sql(table, &columns, |i| format!("?{i}"));
        let params = [SqlValue::Text(user), SqlValue::Int(id)]
            .into_iter()
            .chain(set.iter().map(|(_, v)| *v));
        self.0
            .prepare_cached(&sql)?
            .execute(rusqlite::params_from_iter(params))?;
        Ok(())
    }
}

impl TierSql for WriteTx<'_, '_> {
    fn lock_user(&mut self, _user: &str) -> anyhow::Result<()> {
        Ok(())
    }

    fn completed_tier(
        &mut self,
        job_id: &str,
        tier: Tier,
    ) -> anyhow::Result<Option<Option<String>>> {
        Ok(self
            .0
            .prepare_cached(
                "SELECT result FROM job_tiers WHERE job_id = ?1 AND tier = ?2 AND status = 'completed'",
            )?
            .query_row(params![job_id, tier.as_str()], |r| r.get(0))
            .optional()?)
    }

    fn job_exists(&mut self, user: &str, job_id: &str) -> anyhow::Result<bool> {
        Ok(self
            .0
            .prepare_cached(
                "SELECT EXISTS (SELECT 1 FROM jobs WHERE job_id = ?1 AND user_id = ?2)",
            )?
            .query_row(params![job_id, user], |r| r.get(0))?)
    }

    fn record_completed(
        &mut self,
        job_id: &str,
        tier: Tier,
        result: &str,
        latency_ms: f64,
        now: i64,
    ) -> anyhow::Result<()> {
        self.0
            .prepare_cached(
                "INSERT INTO job_tiers (job_id, tier, status, result, attempts, latency_ms, updated_ms)
                 VALUES (?1, ?2, 'completed', ?3, 1, ?4, ?5)
                 ON CONFLICT (job_id, tier) DO UPDATE SET status = 'completed', result = ?3, error = NULL,
                     attempts = attempts + 1, latency_ms = ?4, updated_ms = ?5",
            )?
            .execute(params![job_id, tier.as_str(), result, latency_ms, now])?;
        Ok(())
    }

    fn has_tombstones(&mut self, user: &str, tier: EditTier) -> anyhow::Result<bool> {
        Ok(self
            .0
            .prepare_cached(
                "SELECT EXISTS (SELECT 1 FROM memory_edits WHERE user_id = ?1 AND tier = ?2 AND signature IS NOT NULL)",
            )?
            .query_row(params![user, tier.as_str()], |r| r.get(0))?)
    }

    fn tombstones(
        &mut self,
        user: &str,
        tier: EditTier,
        signature: &str,
    ) -> anyhow::Result<Vec<(Option<String>, Option<String>)>> {
        let mut stmt = self.0.prepare_cached(
            "SELECT source_job_id, evidence FROM memory_edits
             WHERE user_id = ?1 AND tier = ?2 AND signature = ?3",
        )?;
        let rows = stmt.query_map(params![user, tier.as_str(), signature], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    fn delete_job_episodes(&mut self, user: &str, job_id: &str) -> anyhow::Result<()> {
        self.0
            .prepare_cached("DELETE FROM episodes WHERE user_id = ?1 AND job_id = ?2")?
            .execute(params![user, job_id])?;
        Ok(())
    }

    fn insert_reflected_episode(&mut self, e: &ReflectedEpisode<'_>) -> anyhow::Result<i64> {
        let d = e.draft;
        self.0
            .prepare_cached(
                "INSERT INTO episodes (user_id, job_id, speaker, text, summary, importance, tags, occurred_ms,
                                       observed_ms, embedding, evidence, created_ms, context)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
            )?
            .execute(params![e.user, e.job_id, e.speaker, d.text, d.summary, d.importance,
                             serde_json::to_string(&d.tags)?, d.occurred_at.timestamp_millis(), e.observed_ms,
                             vec_to_blob(e.embedding), e.evidence, e.now, e.context])?;
        Ok(self.0.last_insert_rowid())
    }

    fn resolve_entity(
        &mut self,
        user: &str,
        name: &str,
        kind: &str,
        now: i64,
    ) -> anyhow::Result<i64> {
        let n = entity_key(name);
        let alias = self
            .0
            .prepare_cached(
                "SELECT entity_id FROM entity_aliases WHERE user_id = ?1 AND alias_norm = ?2",
            )?
            .query_row(params![user, n], |r| r.get::<_, i64>(0))
            .optional()?;
        if let Some(id) = alias {
            return Ok(id);
        }
        let id: i64 = self
            .0
            .prepare_cached(
                "INSERT INTO entities (user_id, name, norm_name, kind, created_ms) VALUES (?1, ?2, ?3, ?4, ?5)
                 ON CONFLICT (user_id, norm_name) DO UPDATE SET
                     kind = CASE WHEN entities.kind = 'other' THEN excluded.kind ELSE entities.kind END
                 RETURNING id",
            )?
            .query_row(params![user, name.trim(), n, kind, now], |r| r.get(0))?;
        self.add_alias(user, &n, id)?;
        Ok(id)
    }

    fn add_alias(&mut self, user: &str, alias_norm: &str, entity: i64) -> anyhow::Result<()> {
        self.0
            .prepare_cached(
                "INSERT OR IGNORE INTO entity_aliases (user_id, alias_norm, entity_id) VALUES (?1, ?2, ?3)",
            )?
            .execute(params![user, alias_norm, entity])?;
        Ok(())
    }

    fn entity_norm(&mut self, user: &str, entity: i64) -> anyhow::Result<String> {
        Ok(self
            .0
            .prepare_cached("SELECT norm_name FROM entities WHERE user_id = ?1 AND id = ?2")?
            .query_row(params![user, entity], |r| r.get(0))?)
    }

    fn end_facts(
        &mut self,
        user: &str,
        subject: i64,
        predicate: &str,
        object: Option<i64>,
        at_ms: i64,
        job_id: &str,
    ) -> anyhow::Result<u64> {
        let n = self
            .0
            .prepare_cached(
                "UPDATE relations SET invalid_ms = ?5
                 WHERE user_id = ?1 AND subject_id = ?2 AND predicate = ?3
                   AND (?4 IS NULL OR object_id = ?4) AND invalid_ms IS NULL
                   AND valid_ms <= ?5 AND job_id <> ?6",
            )?
            .execute(params![user, subject, predicate, object, at_ms, job_id])?;
        Ok(n as u64)
    }

    fn valid_objects(
        &mut self,
        user: &str,
        subject: i64,
        predicate: &str,
    ) -> anyhow::Result<Vec<(i64, String)>> {
        let mut st = self.0.prepare_cached(
            "SELECT DISTINCT r.object_id, o.norm_name FROM relations r JOIN entities o ON o.id = r.object_id
             WHERE r.user_id = ?1 AND r.subject_id = ?2 AND r.predicate = ?3 AND r.invalid_ms IS NULL
             ORDER BY r.object_id",
        )?;
        let rows = st.query_map(params![user, subject, predicate], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    fn insert_reflected_fact(&mut self, f: &ReflectedFact<'_>) -> anyhow::Result<()> {
        // An exclusive fact stated again (same slot, object and time) is ignored.
        let sql = match f.exclusive {
            true => "INSERT OR IGNORE INTO relations (user_id, subject_id, predicate, object_id, fact, exclusive,
                                                      valid_ms, evidence, job_id, created_ms)
                     VALUES (?1, ?2, ?3, ?4, ?5, 1, ?6, ?7, ?8, ?9)",
            false => "INSERT INTO relations (user_id, subject_id, predicate, object_id, fact, exclusive,
                                             valid_ms, evidence, job_id, created_ms)
                      VALUES (?1, ?2, ?3, ?4, ?5, 0, ?6, ?7, ?8, ?9)",
        };
        self.0.prepare_cached(sql)?.execute(params![
            f.user,
            f.subject,
            f.predicate,
            f.object,
            f.fact,
            f.valid_ms,
            f.evidence,
            f.job_id,
            f.now
        ])?;
        Ok(())
    }

    fn open_fact(
        &mut self,
        user: &str,
        subject: i64,
        predicate: &str,
        object: i64,
        valid_ms: i64,
    ) -> anyhow::Result<Option<(i64, i64, String)>> {
        Ok(self
            .0
            .prepare_cached(
                "SELECT id, valid_ms, evidence FROM relations
                 WHERE user_id = ?1 AND subject_id = ?2 AND predicate = ?3 AND object_id = ?4
                   AND (invalid_ms IS NULL OR invalid_ms > ?5)
                 ORDER BY id DESC LIMIT 1",
            )?
            .query_row(params![user, subject, predicate, object, valid_ms], |x| {
                Ok((x.get(0)?, x.get(1)?, x.get(2)?))
            })
            .optional()?)
    }

    fn restate_fact(
        &mut self,
        user: &str,
        id: i64,
        earlier: Option<(i64, &str)>,
        evidence: &str,
    ) -> anyhow::Result<()> {
        match earlier {
            Some((valid, fact)) => self.0.execute(
                "UPDATE relations SET valid_ms = ?3, fact = ?4, evidence = ?5 WHERE user_id = ?1 AND id = ?2",
                params![user, id, valid, fact, evidence],
            )?,
            None => self.0.execute(
                "UPDATE relations SET evidence = ?3 WHERE user_id = ?1 AND id = ?2",
                params![user, id, evidence],
            )?,
        };
        Ok(())
    }

    fn slot_facts(
        &mut self,
        user: &str,
        subject: i64,
        predicate: &str,
    ) -> anyhow::Result<Vec<(i64, i64, i64)>> {
        let mut stmt = self.0.prepare_cached(
            "SELECT r.id, r.object_id, r.valid_ms FROM relations r JOIN entities o ON o.id = r.object_id
             WHERE r.user_id = ?1 AND r.subject_id = ?2 AND r.predicate = ?3 AND r.exclusive = 1
             ORDER BY r.valid_ms, o.norm_name, r.id",
        )?;
        let rows = stmt.query_map(params![user, subject, predicate], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?))
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    fn set_slot_rows(&mut self, user: &str, rows: &[SlotRow]) -> anyhow::Result<()> {
        let mut update = self.0.prepare_cached(
            "UPDATE relations SET invalid_ms = ?3, merged_into = ?4 WHERE user_id = ?1 AND id = ?2",
        )?;
        for r in rows {
            update.execute(params![user, r.id, r.invalid_ms, r.merged_into])?;
        }
        Ok(())
    }

    fn stated_rule(
        &mut self,
        user: &str,
        topic: &str,
        statement: &str,
    ) -> anyhow::Result<Option<(i64, i64, i64, String)>> {
        Ok(self
            .0
            .prepare_cached(
                "SELECT id, first_ms, last_ms, evidence FROM rules WHERE user_id = ?1 AND topic = ?2 AND statement = ?3",
            )?
            .query_row(params![user, topic, statement], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
            .optional()?)
    }

    fn restate_rule(
        &mut self,
        user: &str,
        id: i64,
        first_ms: i64,
        last_ms: i64,
        evidence: &str,
        confidence: f32,
    ) -> anyhow::Result<()> {
        self.0.execute(
            "UPDATE rules SET first_ms = ?3, last_ms = ?4, evidence = ?5, confidence = max(confidence, ?6)
             WHERE user_id = ?1 AND id = ?2",
            params![user, id, first_ms, last_ms, evidence, confidence],
        )?;
        Ok(())
    }

    fn insert_reflected_rule(
        &mut self,
        user: &str,
        d: &RuleDraft,
        embedding: &[f32],
        at_ms: i64,
        evidence: &str,
        now: i64,
    ) -> anyhow::Result<()> {
        self.0.execute(
            "INSERT INTO rules (user_id, kind, topic, statement, confidence, first_ms, last_ms, embedding, evidence, created_ms)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6, ?7, ?8, ?9)",
            params![user, d.kind, d.topic, d.statement, d.confidence, at_ms, vec_to_blob(embedding), evidence, now],
        )?;
        Ok(())
    }

    fn topic_rules(&mut self, user: &str, topic: &str) -> anyhow::Result<Vec<TopicRule>> {
        let mut stmt = self.0.prepare_cached(
            "SELECT id, last_ms, superseded_by, invalid_ms FROM rules WHERE user_id = ?1 AND topic = ?2
             ORDER BY last_ms DESC, statement DESC",
        )?;
        let rows = stmt.query_map(params![user, topic], |r| {
            Ok(TopicRule {
                id: r.get(0)?,
                last_ms: r.get(1)?,
                superseded_by: r.get(2)?,
                invalid_ms: r.get(3)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    fn set_rule_state(
        &mut self,
        user: &str,
        id: i64,
        superseded_by: Option<i64>,
        invalid_ms: Option<i64>,
    ) -> anyhow::Result<()> {
        self.0
            .prepare_cached("UPDATE rules SET superseded_by = ?3, invalid_ms = ?4 WHERE user_id = ?1 AND id = ?2")?
            .execute(params![user, id, superseded_by, invalid_ms])?;
        Ok(())
    }
}
