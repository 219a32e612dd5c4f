//! PostgreSQL: the statements of the tier commits ([`crate::store::tiers`], where the flows
//! and their documentation are). The notes below hold for the reads (`reads.rs`), the window
//! (`window.rs`) and the edits (`edits.rs`) too; the SQLite backend's statements and methods
//! of the same names are the reference behaviour. Where the SQL differs:
//!
//! - Every tier commit, [`PgStore::fold_short_term`] and every edit take the per-user
//!   advisory lock ([`super::lock_user`]) first: SQLite's single writer serialises them,
//!   here several processes commit at once (see the module documentation of [`super`]).
//!   Forgetting a user ([`crate::store::edits::forget_user`]) takes it too, so a commit that
//!   found its job row cannot write after the user was forgotten.
//! - Text is ordered with `COLLATE "C"` wherever the order decides a result (the
//!   re-derivation of a fact slot and a rule topic, the alias lists): byte order, as SQLite's
//!   BINARY collation, whatever the database's locale.
//! - Full text: `websearch_to_tsquery` reads the `"term" OR "term"` expressions recall
//!   builds; the score is `-ts_rank_cd` with the episode's text at weight A (1.0) and its
//!   context at B (0.5), so that lower is better as with SQLite's `bm25()`.
//! - Statements that SQLite's schema scopes by a globally unique key (an episode by its job
//!   id) also filter on the user here.

use ::postgres::Transaction;
use ::postgres::types::{IsNull, ToSql, Type};

use crate::extract::RuleDraft;
use crate::job::Tier;
use crate::store::derive::{SlotRow, TopicRule, entity_key};
use crate::store::sql::{RowSql, SqlValue, insert_sql, update_sql};
use crate::store::tiers::{ReflectedEpisode, ReflectedFact, TierSql};
use crate::store::{EditTier, blob_to_vec, vec_to_blob};

use super::{VectorMode, vector_param, vector_text};

/// An open write transaction, as the statements of the flows written once for both backends:
/// [`TierSql`] (here) and [`crate::store::edits::EditSql`] (in `edits.rs`). `vectors` says
/// whether episodes and rules also get a pgvector column.
pub(super) struct WriteTx<'a, 'c> {
    pub tx: &'a mut Transaction<'c>,
    pub vectors: VectorMode,
}

impl ToSql for SqlValue<'_> {
    fn to_sql(
        &self,
        ty: &Type,
        out: &mut ::postgres::types::private::BytesMut,
    ) -> Result<IsNull, Box<dyn std::error::Error + Sync + Send>> {
        fn put<T: ToSql>(
            v: T,
            ty: &Type,
            out: &mut ::postgres::types::private::BytesMut,
        ) -> Result<IsNull, Box<dyn std::error::Error + Sync + Send>> {
            if !T::accepts(ty) {
                return Err(format!(
                    "a {} cannot be bound to a {ty} column",
                    std::any::type_name::<T>()
                )
                .into());
            }
            v.to_sql(ty, out)
        }
        match *self {
            SqlValue::Int(v) => put(v, ty, out),
            SqlValue::OptInt(v) => put(v, ty, out),
            SqlValue::Real(v) if *ty == Type::FLOAT4 => put(v as f32, ty, out),
            SqlValue::Real(v) => put(v, ty, out),
            SqlValue::Bool(v) => put(v, ty, out),
            SqlValue::Text(v) => put(v, ty, out),
            SqlValue::OptText(v) => put(v, ty, out),
            SqlValue::Blob(v) => put(v, ty, out),
        }
    }

    /// Any type: [`ToSql::to_sql`] checks the value's against the column's.
    fn accepts(_: &Type) -> bool {
        true
    }

    ::postgres::types::to_sql_checked!();
}

/// The row statements on PostgreSQL: an insert that breaks a uniqueness constraint writes
/// nothing (`ON CONFLICT DO NOTHING`). With pgvector, an episode's `embedding_v` is filled
/// from its `embedding` (when [`indexable`]).
impl RowSql for WriteTx<'_, '_> {
    fn insert_row(
        &mut self,
        table: &'static str,
        columns: &[&'static str],
        values: &[SqlValue<'_>],
    ) -> anyhow::Result<bool> {
        let mut params: Vec<&(dyn ToSql + Sync)> = values.iter().map(|v| v as _).collect();
        let embedding = columns
            .iter()
            .position(|c| *c == "embedding")
            .map(|i| values[i]);
        let vector = match embedding {
            Some(SqlValue::Blob(b)) => vector_param(&blob_to_vec(b)),
            _ => None,
        };
        let mut extra = Vec::new();
        if table == "episodes" && self.vectors == VectorMode::Pgvector && embedding.is_some() {
            extra.push((
                "embedding_v",
                format!("CAST(${}::text AS vector)", values.len() + 1),
            ));
            params.push(&vector);
        }
        let sql = insert_sql(
            "INSERT",
            table,
            columns,
            &extra,
            |i| format!("${i}"),
            " ON CONFLICT DO NOTHING",
        );
        Ok(self.tx.execute(&sql, &params)? > 0)
    }

    fn set_columns(
        &mut self,
        table: &'static str,
        user: &str,
        id: i64,
        set: &[(&'static str, SqlValue<'_>)],
    ) -> anyhow::Result<()> {
        let columns: Vec<&str> = set.iter().map(|(c, _)| *c).collect();
        let sql = update_sql(table, &columns, |i| format!("${i}"));
        let mut params: Vec<&(dyn ToSql + Sync)> = vec![&user, &id];
        params.extend(set.iter().map(|(_, v)| v as &(dyn ToSql + Sync)));
        self.tx.execute(&sql, &params)?;
        Ok(())
    }
}

/// Whether pgvector can store `v` (at least one dimension, no NaN or infinity); a vector it
/// cannot store is kept only as bytes, and found by the exact scan.
pub(super) fn indexable(v: &[f32]) -> bool {
    !v.is_empty() && v.iter().all(|x| x.is_finite())
}

impl TierSql for WriteTx<'_, '_> {
    fn lock_user(&mut self, user: &str) -> anyhow::Result<()> {
        super::lock_user(self.tx, user)
    }

    fn completed_tier(
        &mut self,
        job_id: &str,
        tier: Tier,
    ) -> anyhow::Result<Option<Option<String>>> {
        let row = self.tx.query_opt(
            "SELECT result FROM job_tiers WHERE job_id = $1 AND tier = $2 AND status = 'completed'",
            &[&job_id, &tier.as_str()],
        )?;
        Ok(row.map(|r| r.get(0)))
    }

    fn job_exists(&mut self, user: &str, job_id: &str) -> anyhow::Result<bool> {
        let row = self.tx.query_opt(
            "SELECT 1 FROM jobs WHERE job_id = $1 AND user_id = $2",
            &[&job_id, &user],
        )?;
        Ok(row.is_some())
    }

    fn record_completed(
        &mut self,
        job_id: &str,
        tier: Tier,
        result: &str,
        latency_ms: f64,
        now: i64,
    ) -> anyhow::Result<()> {
        self.tx.execute(
            "INSERT INTO job_tiers (job_id, tier, status, result, attempts, latency_ms, updated_ms)
             VALUES ($1, $2, 'completed', $3, 1, $4, $5)
             ON CONFLICT (job_id, tier) DO UPDATE SET status = 'completed', result = EXCLUDED.result,
                 error = NULL, attempts = job_tiers.attempts + 1,
                 latency_ms = EXCLUDED.latency_ms, updated_ms = EXCLUDED.updated_ms",
            &[&job_id, &tier.as_str(), &result, &latency_ms, &now],
        )?;
        Ok(())
    }

    fn has_tombstones(&mut self, user: &str, tier: EditTier) -> anyhow::Result<bool> {
        Ok(self
            .tx
            .query_one(
                "SELECT EXISTS (SELECT 1 FROM memory_edits
                                WHERE user_id = $1 AND tier = $2 AND signature IS NOT NULL)",
                &[&user, &tier.as_str()],
            )?
            .get(0))
    }

    fn tombstones(
        &mut self,
        user: &str,
        tier: EditTier,
        signature: &str,
    ) -> anyhow::Result<Vec<(Option<String>, Option<String>)>> {
        let rows = self.tx.query(
            "SELECT source_job_id, evidence FROM memory_edits
             WHERE user_id = $1 AND tier = $2 AND signature = $3",
            &[&user, &tier.as_str(), &signature],
        )?;
        Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
    }

    fn delete_job_episodes(&mut self, user: &str, job_id: &str) -> anyhow::Result<()> {
        self.tx.execute(
            "DELETE FROM episodes WHERE user_id = $1 AND job_id = $2",
            &[&user, &job_id],
        )?;
        Ok(())
    }

    fn insert_reflected_episode(&mut self, e: &ReflectedEpisode<'_>) -> anyhow::Result<i64> {
        let d = e.draft;
        let pgvector = self.vectors == VectorMode::Pgvector;
        let vector = (pgvector && indexable(e.embedding)).then(|| vector_text(e.embedding));
        let (tags, occurred, blob) = (
            serde_json::to_string(&d.tags)?,
            d.occurred_at.timestamp_millis(),
            vec_to_blob(e.embedding),
        );
        let mut params: Vec<&(dyn ToSql + Sync)> = vec![
            &e.user,
            &e.job_id,
            &e.speaker,
            &d.text,
            &d.summary,
            &d.importance,
            &tags,
            &occurred,
            &e.observed_ms,
            &blob,
            &e.evidence,
            &e.now,
            &e.context,
        ];
        // The `embedding_v` column exists only where pgvector is set up.
        let sql = if pgvector {
            params.push(&vector);
            "INSERT INTO episodes (user_id, job_id, speaker, text, summary, importance, tags, occurred_ms,
                                   observed_ms, embedding, evidence, created_ms, context, embedding_v)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14::text::vector)
             RETURNING id"
        } else {
            "INSERT INTO episodes (user_id, job_id, speaker, text, summary, importance, tags, occurred_ms,
                                   observed_ms, embedding, evidence, created_ms, context)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)
             RETURNING id"
        };
        Ok(self.tx.query_one(sql, &params)?.get(0))
    }

    /// Run under the user's lock, so two commits cannot both create the entity; the unique key
    /// `(user_id, norm_name)` backs that up.
    fn resolve_entity(
        &mut self,
        user: &str,
        name: &str,
        kind: &str,
        now: i64,
    ) -> anyhow::Result<i64> {
        let n = entity_key(name);
        if let Some(r) = self.tx.query_opt(
            "SELECT entity_id FROM entity_aliases WHERE user_id = $1 AND alias_norm = $2",
            &[&user, &n],
        )? {
            return Ok(r.get(0));
        }
        let id: i64 = self
            .tx
            .query_one(
                "INSERT INTO entities (user_id, name, norm_name, kind, created_ms) VALUES ($1, $2, $3, $4, $5)
                 ON CONFLICT (user_id, norm_name) DO UPDATE SET
                     kind = CASE WHEN entities.kind = 'other' THEN EXCLUDED.kind ELSE entities.kind END
                 RETURNING id",
                &[&user, &name.trim(), &n, &kind, &now],
            )?
            .get(0);
        self.add_alias(user, &n, id)?;
        Ok(id)
    }

    fn add_alias(&mut self, user: &str, alias_norm: &str, entity: i64) -> anyhow::Result<()> {
        self.tx.execute(
            "INSERT INTO entity_aliases (user_id, alias_norm, entity_id) VALUES ($1, $2, $3)
             ON CONFLICT DO NOTHING",
            &[&user, &alias_norm, &entity],
        )?;
        Ok(())
    }

    fn entity_norm(&mut self, user: &str, entity: i64) -> anyhow::Result<String> {
        Ok(self
            .tx
            .query_one(
                "SELECT norm_name FROM entities WHERE user_id = $1 AND id = $2",
                &[&user, &entity],
            )?
            .get(0))
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
        Ok(self.tx.execute(
            "UPDATE relations SET invalid_ms = $5
             WHERE user_id = $1 AND subject_id = $2 AND predicate = $3
               AND ($4::BIGINT IS NULL OR object_id = $4) AND invalid_ms IS NULL
               AND valid_ms <= $5 AND job_id <> $6",
            &[&user, &subject, &predicate, &object, &at_ms, &job_id],
        )?)
    }

    fn valid_objects(
        &mut self,
        user: &str,
        subject: i64,
        predicate: &str,
    ) -> anyhow::Result<Vec<(i64, String)>> {
        let rows = self.tx.query(
            "SELECT DISTINCT r.object_id, o.norm_name FROM relations r JOIN entities o ON o.id = r.object_id
             WHERE r.user_id = $1 AND r.subject_id = $2 AND r.predicate = $3 AND r.invalid_ms IS NULL
             ORDER BY r.object_id",
            &[&user, &subject, &predicate],
        )?;
        Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
    }

    fn insert_reflected_fact(&mut self, f: &ReflectedFact<'_>) -> anyhow::Result<()> {
        // An exclusive fact stated again (same slot, object and time) is ignored.
        let sql = match f.exclusive {
            true => {
                "INSERT INTO relations (user_id, subject_id, predicate, object_id, fact, exclusive,
                                            valid_ms, evidence, job_id, created_ms)
                     VALUES ($1, $2, $3, $4, $5, TRUE, $6, $7, $8, $9)
                     ON CONFLICT DO NOTHING"
            }
            false => {
                "INSERT INTO relations (user_id, subject_id, predicate, object_id, fact, exclusive,
                                             valid_ms, evidence, job_id, created_ms)
                      VALUES ($1, $2, $3, $4, $5, FALSE, $6, $7, $8, $9)"
            }
        };
        self.tx.execute(
            sql,
            &[
                &f.user,
                &f.subject,
                &f.predicate,
                &f.object,
                &f.fact,
                &f.valid_ms,
                &f.evidence,
                &f.job_id,
                &f.now,
            ],
        )?;
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
        let row = self.tx.query_opt(
            "SELECT id, valid_ms, evidence FROM relations
             WHERE user_id = $1 AND subject_id = $2 AND predicate = $3 AND object_id = $4
               AND (invalid_ms IS NULL OR invalid_ms > $5)
             ORDER BY id DESC LIMIT 1",
            &[&user, &subject, &predicate, &object, &valid_ms],
        )?;
        Ok(row.map(|r| (r.get(0), r.get(1), r.get(2))))
    }

    fn restate_fact(
        &mut self,
        user: &str,
        id: i64,
        earlier: Option<(i64, &str)>,
        evidence: &str,
    ) -> anyhow::Result<()> {
        match earlier {
            Some((valid, fact)) => self.tx.execute(
                "UPDATE relations SET valid_ms = $3, fact = $4, evidence = $5 WHERE user_id = $1 AND id = $2",
                &[&user, &id, &valid, &fact, &evidence],
            )?,
            None => self.tx.execute(
                "UPDATE relations SET evidence = $3 WHERE user_id = $1 AND id = $2",
                &[&user, &id, &evidence],
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
        let rows = self.tx.query(
            "SELECT r.id, r.object_id, r.valid_ms FROM relations r JOIN entities o ON o.id = r.object_id
             WHERE r.user_id = $1 AND r.subject_id = $2 AND r.predicate = $3 AND r.exclusive
             ORDER BY r.valid_ms, o.norm_name COLLATE \"C\", r.id",
            &[&user, &subject, &predicate],
        )?;
        Ok(rows
            .iter()
            .map(|r| (r.get(0), r.get(1), r.get(2)))
            .collect())
    }

    /// One UPDATE, of the rows that change only.
    fn set_slot_rows(&mut self, user: &str, rows: &[SlotRow]) -> anyhow::Result<()> {
        if rows.is_empty() {
            return Ok(());
        }
        let ids: Vec<i64> = rows.iter().map(|r| r.id).collect();
        let invalids: Vec<Option<i64>> = rows.iter().map(|r| r.invalid_ms).collect();
        let merged: Vec<Option<i64>> = rows.iter().map(|r| r.merged_into).collect();
        self.tx.execute(
            "UPDATE relations r SET invalid_ms = v.invalid_ms, merged_into = v.merged_into
             FROM unnest($2::bigint[], $3::bigint[], $4::bigint[]) AS v(id, invalid_ms, merged_into)
             WHERE r.user_id = $1 AND r.id = v.id
               AND (r.invalid_ms IS DISTINCT FROM v.invalid_ms OR r.merged_into IS DISTINCT FROM v.merged_into)",
            &[&user, &ids, &invalids, &merged],
        )?;
        Ok(())
    }

    fn stated_rule(
        &mut self,
        user: &str,
        topic: &str,
        statement: &str,
    ) -> anyhow::Result<Option<(i64, i64, i64, String)>> {
        let row = self.tx.query_opt(
            "SELECT id, first_ms, last_ms, evidence FROM rules
             WHERE user_id = $1 AND topic = $2 AND statement = $3",
            &[&user, &topic, &statement],
        )?;
        Ok(row.map(|r| (r.get(0), r.get(1), r.get(2), r.get(3))))
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
        self.tx.execute(
            "UPDATE rules SET first_ms = $3, last_ms = $4, evidence = $5, confidence = greatest(confidence, $6)
             WHERE user_id = $1 AND id = $2",
            &[&user, &id, &first_ms, &last_ms, &evidence, &confidence],
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
        self.tx.execute(
            "INSERT INTO rules (user_id, kind, topic, statement, confidence, first_ms, last_ms,
                                embedding, evidence, created_ms)
             VALUES ($1, $2, $3, $4, $5, $6, $6, $7, $8, $9)",
            &[
                &user,
                &d.kind,
                &d.topic,
                &d.statement,
                &d.confidence,
                &at_ms,
                &vec_to_blob(embedding),
                &evidence,
                &now,
            ],
        )?;
        Ok(())
    }

    fn topic_rules(&mut self, user: &str, topic: &str) -> anyhow::Result<Vec<TopicRule>> {
        let rows = self.tx.query(
            "SELECT id, last_ms, superseded_by, invalid_ms FROM rules WHERE user_id = $1 AND topic = $2
             ORDER BY last_ms DESC, statement COLLATE \"C\" DESC",
            &[&user, &topic],
        )?;
        Ok(rows
            .iter()
            .map(|r| TopicRule {
                id: r.get(0),
                last_ms: r.get(1),
                superseded_by: r.get(2),
                invalid_ms: r.get(3),
            })
            .collect())
    }

    fn set_rule_state(
        &mut self,
        user: &str,
        id: i64,
        superseded_by: Option<i64>,
        invalid_ms: Option<i64>,
    ) -> anyhow::Result<()> {
        self.tx.execute(
            "UPDATE rules SET superseded_by = $3, invalid_ms = $4 WHERE user_id = $1 AND id = $2",
            &[&user, &id, &superseded_by, &invalid_ms],
        )?;
        Ok(())
    }
}
