//! PostgreSQL: the statements of the job ledger's shared flows ([`JobSql`]; the request path,
//! deliveries), the outbox, the job ledger's transitions and reads, and the embedded queue's
//! claims (`FOR UPDATE SKIP LOCKED`). Each method behaves as the SQLite method of the same
//! name (the reference: `src/store/sqlite/jobs.rs`).

use std::collections::HashMap;

use crate::job::{JobState, Priority, ReflectionJob, Tier};
use crate::store::derive::job_counts;
use crate::store::jobs::{JobSql, StoredTurn};
use crate::store::now_ms;
use crate::store::*;

use super::tiers::WriteTx;
use super::*;

/// How long the request path reuses its count of all waiting jobs
/// ([`crate::store::jobs::WaitingTotal`]; SQLite's `WAITING_TOTAL_RECOUNT` is 10 s: there the
/// count runs inside the fast path's single write transaction and delayed the turns behind
/// it; not measured on PostgreSQL, so the shorter period stays).
pub(super) const WAITING_TOTAL_RECOUNT: std::time::Duration = std::time::Duration::from_millis(250);

pub(super) fn tiers_of(
    c: &mut impl ::postgres::GenericClient,
    job_id: &str,
) -> anyhow::Result<Vec<TierRecord>> {
    let rows = c.query(
        &format!("{TIER_SELECT} WHERE job_id = $1 ORDER BY tier"),
        &[&job_id],
    )?;
    Ok(rows
        .iter()
        .map(TierRecord::from_columns)
        .collect::<Result<_, _>>()?)
}

impl PgStore {
    /// See [`crate::store::SqliteStore::unpublished_jobs`].
    pub fn unpublished_jobs(
        &self,
        limit: usize,
    ) -> anyhow::Result<Vec<(String, String, Priority, String)>> {
        self.read(|c| {
            let rows = c.query(
                "SELECT job_id, user_id, priority, payload FROM jobs
                 WHERE published_ms IS NULL AND state IN ('queued', 'retrying')
                 ORDER BY created_ms LIMIT $1",
                &[&(limit as i64)],
            )?;
            Ok(rows
                .iter()
                .map(|r| {
                    (
                        r.get(0),
                        r.get(1),
                        Priority::from_i64(r.get(2)).unwrap_or(Priority::Normal),
                        r.get(3),
                    )
                })
                .collect())
        })
    }

    /// See [`crate::store::SqliteStore::mark_published`].
    pub fn mark_published(&self, job_ids: &[String]) -> anyhow::Result<()> {
        let now = now_ms();
        self.write(|tx| {
            tx.execute(
                "UPDATE jobs SET published_ms = $2 WHERE job_id = ANY($1) AND published_ms IS NULL",
                &[&job_ids, &now],
            )?;
            Ok(())
        })
    }

    /// See [`crate::store::SqliteStore::outbox_backlog`].
    pub fn outbox_backlog(&self) -> anyhow::Result<i64> {
        self.read(|c| {
            Ok(c.query_one(
                "SELECT count(*) FROM jobs WHERE published_ms IS NULL AND state IN ('queued', 'retrying')",
                &[],
            )?
            .get(0))
        })
    }

    /// See [`crate::store::SqliteStore::completed_tiers`].
    pub fn completed_tiers(&self, job_id: &str) -> anyhow::Result<Vec<Tier>> {
        self.read(|c| {
            let rows = c.query(
                "SELECT tier FROM job_tiers WHERE job_id = $1 AND status = 'completed'",
                &[&job_id],
            )?;
            Ok(rows
                .iter()
                .filter_map(|r| Tier::parse(r.get::<_, &str>(0)))
                .collect())
        })
    }

    /// See [`crate::store::SqliteStore::record_tier_failure`].
    pub fn record_tier_failure(
        &self,
        job_id: &str,
        tier: Tier,
        error: &str,
        latency_ms: f64,
    ) -> anyhow::Result<()> {
        self.write(|tx| {
            tx.execute(
                "INSERT INTO job_tiers (job_id, tier, status, error, attempts, latency_ms, updated_ms)
                 SELECT $1, $2, 'failed', $3, 1, $4, $5 WHERE EXISTS (SELECT 1 FROM jobs WHERE job_id = $1)
                 ON CONFLICT (job_id, tier) DO UPDATE SET status = 'failed', error = $3,
                     attempts = job_tiers.attempts + 1, latency_ms = $4, updated_ms = $5
                 WHERE job_tiers.status <> 'completed'",
                &[&job_id, &tier.as_str(), &error, &latency_ms, &now_ms()],
            )?;
            Ok(())
        })
    }

    /// See [`crate::store::SqliteStore::complete_job`].
    pub fn complete_job(&self, job_id: &str) -> anyhow::Result<()> {
        self.write(|tx| {
            let now = now_ms();
            tx.execute(
                "UPDATE jobs SET state = 'completed', completed_ms = $2, updated_ms = $2,
                        lease_owner = NULL, lease_expires_ms = NULL, last_error = NULL
                 WHERE job_id = $1 AND state <> 'completed'",
                &[&job_id, &now],
            )?;
            tx.execute(
                "UPDATE turns SET reflected = TRUE WHERE job_id = $1",
                &[&job_id],
            )?;
            Ok(())
        })
    }

    /// See [`crate::store::SqliteStore::retry_job`].
    pub fn retry_job(&self, job_id: &str, available_ms: i64, error: &str) -> anyhow::Result<()> {
        self.write(|tx| {
            tx.execute(
                "UPDATE jobs SET state = 'retrying', available_ms = $2, updated_ms = $3, last_error = $4,
                        lease_owner = NULL, lease_expires_ms = NULL
                 WHERE job_id = $1 AND state = 'processing'",
                &[&job_id, &available_ms, &now_ms(), &error],
            )?;
            Ok(())
        })
    }

    /// See [`crate::store::SqliteStore::dead_job`].
    pub fn dead_job(&self, job_id: &str, reason: &str) -> anyhow::Result<()> {
        self.write(|tx| {
            tx.execute(
                "UPDATE jobs SET state = 'dead', dead_reason = $2, last_error = $2, updated_ms = $3,
                        lease_owner = NULL, lease_expires_ms = NULL
                 WHERE job_id = $1 AND state <> 'completed'",
                &[&job_id, &reason, &now_ms()],
            )?;
            Ok(())
        })
    }

    /// See [`crate::store::SqliteStore::dead_job_ids`].
    pub fn dead_job_ids(&self) -> anyhow::Result<Vec<String>> {
        self.read(|c| {
            Ok(
                c.query("SELECT job_id FROM jobs WHERE state = 'dead'", &[])?
                    .iter()
                    .map(|r| r.get(0))
                    .collect(),
            )
        })
    }

    /// See [`crate::store::SqliteStore::get_job`].
    pub fn get_job(&self, job_id: &str) -> anyhow::Result<Option<JobRecord>> {
        self.read(|c| {
            let Some(row) = c.query_opt(&format!("{JOB_SELECT} WHERE job_id = $1"), &[&job_id])?
            else {
                return Ok(None);
            };
            let mut job = JobRecord::from_columns(&row)?;
            job.tiers = tiers_of(c, job_id)?;
            Ok(Some(job))
        })
    }

    /// See [`crate::store::SqliteStore::list_dead`].
    pub fn list_dead(&self, limit: usize, offset: usize) -> anyhow::Result<Vec<JobRecord>> {
        self.read(|c| {
            let rows = c.query(
                &format!(
                    "{JOB_SELECT} WHERE state = 'dead' ORDER BY updated_ms DESC, job_id LIMIT $1 OFFSET $2"
                ),
                &[&(limit as i64), &(offset as i64)],
            )?;
            let mut out = Vec::with_capacity(rows.len());
            for r in &rows {
                let mut j = JobRecord::from_columns(r)?;
                j.tiers = tiers_of(c, &j.job_id)?;
                out.push(j);
            }
            Ok(out)
        })
    }

    /// See [`crate::store::SqliteStore::job_counts`].
    pub fn job_counts(&self, user_id: Option<&str>) -> anyhow::Result<HashMap<String, i64>> {
        self.read(|c| {
            let rows = c.query(
                "SELECT state, count(*) FROM jobs WHERE ($1::TEXT IS NULL OR user_id = $1) GROUP BY state",
                &[&user_id],
            )?;
            Ok(job_counts(rows.iter().map(|r| (r.get(0), r.get(1)))))
        })
    }

    /// See [`crate::store::SqliteStore::tier_latencies`].
    pub fn tier_latencies(&self) -> anyhow::Result<HashMap<String, HashMap<String, TierLatency>>> {
        self.read(|c| {
            let rows = c.query(TIER_LATENCY_SELECT, &[])?;
            let rows = rows
                .iter()
                .map(tier_latency_row)
                .collect::<Result<Vec<_>, _>>()?;
            Ok(tier_latencies(rows))
        })
    }

    /// See [`crate::store::SqliteStore::completion_rate`].
    pub fn completion_rate(&self, window_ms: i64) -> anyhow::Result<f64> {
        let since = now_ms() - window_ms;
        self.read(|c| {
            let n: i64 = c
                .query_one(
                    "SELECT count(*) FROM jobs WHERE state = 'completed' AND completed_ms >= $1",
                    &[&since],
                )?
                .get(0);
            Ok(n as f64 * 1000.0 / window_ms as f64)
        })
    }

    /// See [`crate::store::SqliteStore::queue_status`].
    pub fn queue_status(&self) -> anyhow::Result<QueueStatus> {
        let now = now_ms();
        self.read(|c| {
            let depth: Vec<(i64, i64)> = c
                .query(QUEUE_DEPTH_SELECT, &[])?
                .iter()
                .map(|r| (r.get(0), r.get(1)))
                .collect();
            let r = c.query_one(&dollar_params(QUEUE_COUNTS_SELECT), &[&now])?;
            Ok(QueueStatus::from_columns(&depth, &r, now)?)
        })
    }
}

/// The job ledger's statements on PostgreSQL: the flows are in `store/jobs.rs`.
impl JobSql for WriteTx<'_, '_> {
    fn lock_job(&mut self, job_id: &str) -> anyhow::Result<Option<(String, i64, i64)>> {
        // FOR UPDATE: two workers given the same job (a redelivery racing the first) count
        // attempts one after the other.
        let row = self.tx.query_opt(
            "SELECT state, attempts, max_retries FROM jobs WHERE job_id = $1 FOR UPDATE",
            &[&job_id],
        )?;
        Ok(row.map(|r| (r.get(0), r.get(1), r.get(2))))
    }

    fn forgotten_ms(&mut self, user: &str) -> anyhow::Result<Option<i64>> {
        let row = self.tx.query_opt(
            "SELECT forgotten_ms FROM forgotten_users WHERE user_id = $1",
            &[&user],
        )?;
        Ok(row.map(|r| r.get(0)))
    }

    fn insert_job(
        &mut self,
        job: &ReflectionJob,
        payload: &str,
        state: JobState,
        now: i64,
        published_ms: Option<i64>,
    ) -> anyhow::Result<bool> {
        let n = self.tx.execute(
            "INSERT INTO jobs (job_id, user_id, priority, state, payload, attempts, max_retries, available_ms,
                               published_ms, created_ms, updated_ms)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $8, $8) ON CONFLICT (job_id) DO NOTHING",
            &[
                &job.job_id,
                &job.user_id,
                &job.priority.as_i64(),
                &state.as_str(),
                &payload,
                &(if state == JobState::Processing { 1i64 } else { 0 }),
                &(job.max_retries as i64),
                &now,
                &published_ms,
            ],
        )?;
        Ok(n == 1)
    }

    fn start_attempt(
        &mut self,
        job_id: &str,
        attempts: i64,
        owner: &str,
        now: i64,
    ) -> anyhow::Result<()> {
        self.tx.execute(
            "UPDATE jobs SET state = 'processing', attempts = $2, lease_owner = $3,
                    lease_expires_ms = NULL, updated_ms = $4,
                    published_ms = coalesce(published_ms, $4)
             WHERE job_id = $1",
            &[&job_id, &attempts, &owner, &now],
        )?;
        Ok(())
    }

    fn stored_turn(&mut self, interaction_id: &str) -> anyhow::Result<Option<StoredTurn>> {
        let row = self.tx.query_opt(
            "SELECT t.user_id, t.request_hash, t.job_id, j.priority, j.state
             FROM turns t LEFT JOIN jobs j ON j.job_id = t.job_id WHERE t.id = $1",
            &[&interaction_id],
        )?;
        Ok(row.map(|r| StoredTurn::from_columns(&r)).transpose()?)
    }

    fn insert_turn(
        &mut self,
        turn: &NewTurn,
        metadata: &str,
        job_id: &str,
        now: i64,
    ) -> anyhow::Result<bool> {
        let n = self.tx.execute(
            "INSERT INTO turns (id, user_id, session_id, user_message, assistant_response, ts_ms, metadata, request_hash, job_id, created_ms)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) ON CONFLICT (id) DO NOTHING",
            &[
                &turn.interaction_id,
                &turn.user_id,
                &turn.session_id,
                &turn.user_message,
                &turn.assistant_response,
                &turn.ts_ms,
                &metadata,
                &turn.request_hash,
                &job_id,
                &now,
            ],
        )?;
        Ok(n == 1)
    }

    fn count_waiting(&mut self, user: Option<&str>) -> anyhow::Result<i64> {
        let row = match user {
            Some(u) => self.tx.query_one(
                "SELECT count(*) FROM jobs WHERE user_id = $1 AND state IN ('queued', 'retrying')",
                &[&u],
            )?,
            None => self.tx.query_one(
                "SELECT count(*) FROM jobs WHERE state IN ('queued', 'retrying')",
                &[],
            )?,
        };
        Ok(row.get(0))
    }

    fn job_payload(&mut self, job_id: &str) -> anyhow::Result<Option<String>> {
        let row = self
            .tx
            .query_opt("SELECT payload FROM jobs WHERE job_id = $1", &[&job_id])?;
        Ok(row.map(|r| r.get(0)))
    }

    fn restart_job(
        &mut self,
        job_id: &str,
        owner: &str,
        lease_expires_ms: i64,
        now: i64,
    ) -> anyhow::Result<()> {
        self.tx
            .execute("DELETE FROM job_tiers WHERE job_id = $1", &[&job_id])?;
        self.tx.execute(
            "UPDATE jobs SET state = 'processing', attempts = 1, lease_owner = $2, lease_expires_ms = $3,
                 last_error = NULL, dead_reason = NULL, completed_ms = NULL, updated_ms = $4
             WHERE job_id = $1",
            &[&job_id, &owner, &lease_expires_ms, &now],
        )?;
        Ok(())
    }

    fn expire_leases(&mut self, now: i64) -> anyhow::Result<u64> {
        Ok(self.tx.execute(
            "UPDATE jobs SET state = 'retrying', lease_owner = NULL, lease_expires_ms = NULL,
                    available_ms = $1, updated_ms = $1,
                    last_error = 'lease expired: the worker stopped or crashed while processing'
             WHERE job_id IN (SELECT job_id FROM jobs WHERE state = 'processing' AND lease_expires_ms < $1
                              FOR UPDATE SKIP LOCKED)",
            &[&now],
        )?)
    }

    /// `FOR UPDATE SKIP LOCKED`: workers of several processes claim disjoint jobs without
    /// waiting for each other.
    fn lease_due(
        &mut self,
        owner: &str,
        lease_expires_ms: i64,
        now: i64,
        n: usize,
    ) -> anyhow::Result<Vec<(String, i64, i64)>> {
        let rows = self.tx.query(
            "UPDATE jobs SET state = 'processing', lease_owner = $1, lease_expires_ms = $2,
                    attempts = attempts + 1, updated_ms = $3
             WHERE job_id IN (SELECT job_id FROM jobs
                              WHERE state IN ('queued', 'retrying') AND available_ms <= $3
                              ORDER BY priority DESC, available_ms LIMIT $4
                              FOR UPDATE SKIP LOCKED)
             RETURNING payload, attempts, max_retries",
            &[&owner, &lease_expires_ms, &now, &(n as i64)],
        )?;
        Ok(rows
            .iter()
            .map(|r| (r.get(0), r.get(1), r.get(2)))
            .collect())
    }

    fn requeue_dead(
        &mut self,
        job_id: Option<&str>,
        now: i64,
        unpublish: bool,
    ) -> anyhow::Result<u64> {
        const SQL: &str =
            "UPDATE jobs SET state = 'queued', attempts = 0, available_ms = $1, updated_ms = $1,
                    dead_reason = NULL,
                    published_ms = CASE WHEN $2 THEN NULL ELSE published_ms END
             WHERE state = 'dead'";
        Ok(match job_id {
            None => self.tx.execute(SQL, &[&now, &unpublish])?,
            Some(id) => self
                .tx
                .execute(&format!("{SQL} AND job_id = $3"), &[&now, &unpublish, &id])?,
        })
    }
}
