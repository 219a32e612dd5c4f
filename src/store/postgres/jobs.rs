//! PostgreSQL: the request path (turn + job in one transaction), the outbox, the job ledger
//! and the embedded queue's claims (`FOR UPDATE SKIP LOCKED`). Each method behaves as the
//! SQLite method of the same name (the reference: `src/store/sqlite/jobs.rs`).

use std::collections::HashMap;

use ::postgres::{Row, Transaction};
use anyhow::Context;
use serde_json::{Value, json};

use crate::job::{JobState, Priority, ReflectionJob, Tier};
use crate::store::derive::admission;
use crate::store::*;
use crate::store::{ms_to_rfc3339, now_ms};

use super::*;

/// How long the request path reuses its count of all waiting jobs (SQLite's
/// `WAITING_TOTAL_RECOUNT` is 10 s: there the count runs inside the fast path's single write
/// transaction and delayed the turns behind it; not measured on PostgreSQL, so the shorter
/// period stays): a reused count only over-estimates, so it may admit a turn but a turn is
/// refused only on a fresh count.
pub(super) const WAITING_TOTAL_RECOUNT: std::time::Duration = std::time::Duration::from_millis(250);

pub(super) const JOB_SELECT: &str =
    "SELECT job_id, user_id, state, priority, attempts, max_retries, last_error, dead_reason,
        created_ms, updated_ms, completed_ms, available_ms, payload FROM jobs";

pub(super) fn job_from_row(r: &Row) -> JobRecord {
    let state: String = r.get(2);
    let available: i64 = r.get(11);
    let payload: String = r.get(12);
    JobRecord {
        job_id: r.get(0),
        user_id: r.get(1),
        next_attempt_at: (state == "retrying").then(|| ms_to_rfc3339(available)),
        state,
        priority: Priority::from_i64(r.get(3))
            .unwrap_or(Priority::Normal)
            .name()
            .to_string(),
        attempts: r.get(4),
        max_retries: r.get(5),
        last_error: r.get(6),
        dead_reason: r.get(7),
        created_at: ms_to_rfc3339(r.get(8)),
        updated_at: ms_to_rfc3339(r.get(9)),
        completed_at: r.get::<_, Option<i64>>(10).map(ms_to_rfc3339),
        tiers: Vec::new(),
        job: serde_json::from_str(&payload).unwrap_or(Value::Null),
    }
}

pub(super) fn tiers_of(
    c: &mut impl ::postgres::GenericClient,
    job_id: &str,
) -> anyhow::Result<Vec<TierRecord>> {
    let rows = c.query(
        "SELECT tier, status, result, error, attempts, latency_ms FROM job_tiers WHERE job_id = $1 ORDER BY tier",
        &[&job_id],
    )?;
    Ok(rows
        .iter()
        .map(|r| TierRecord {
            tier: r.get(0),
            status: r.get(1),
            result: r
                .get::<_, Option<String>>(2)
                .and_then(|s| serde_json::from_str(&s).ok()),
            error: r.get(3),
            attempts: r.get(4),
            latency_ms: r.get(5),
        })
        .collect())
}

/// `published_ms`: `Some(now)` for the embedded queue and broker deliveries, `None` for an
/// outbox row the relay has yet to publish. Returns false when the job id already existed.
pub(super) fn insert_job(
    tx: &mut Transaction,
    job: &ReflectionJob,
    payload: &str,
    state: JobState,
    now: i64,
    published_ms: Option<i64>,
) -> anyhow::Result<bool> {
    let n = tx.execute(
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

/// Waiting-job admission within one transaction (as SQLite's `Admission`): each user's
/// count once per batch, the total from a count at most [`WAITING_TOTAL_RECOUNT`] old.
pub(super) struct Admission<'a> {
    limits: QueueLimits,
    store: &'a PgStore,
    per_user: HashMap<String, i64>,
    total: Option<i64>,
    fresh: bool,
}

impl<'a> Admission<'a> {
    fn new(store: &'a PgStore, limits: QueueLimits) -> Self {
        let cached = store
            .waiting_total
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .filter(|(at, _)| at.elapsed() < WAITING_TOTAL_RECOUNT)
            .map(|(_, n)| n);
        Self {
            limits,
            store,
            per_user: HashMap::new(),
            total: cached,
            fresh: false,
        }
    }

    fn count_total(&mut self, tx: &mut Transaction) -> anyhow::Result<i64> {
        let n: i64 = tx
            .query_one(
                "SELECT count(*) FROM jobs WHERE state IN ('queued', 'retrying')",
                &[],
            )?
            .get(0);
        *self
            .store
            .waiting_total
            .lock()
            .unwrap_or_else(|p| p.into_inner()) = Some((std::time::Instant::now(), n));
        self.total = Some(n);
        self.fresh = true;
        Ok(n)
    }

    fn check(&mut self, tx: &mut Transaction, user: &str) -> anyhow::Result<Option<InsertOutcome>> {
        if self.limits == QueueLimits::NONE {
            return Ok(None);
        }
        let mut total = match self.total {
            Some(n) => n,
            None => self.count_total(tx)?,
        };
        if total as u64 >= self.limits.total && !self.fresh {
            total = self.count_total(tx)?;
        }
        let mine = match self.per_user.get(user) {
            Some(n) => *n,
            None => {
                let n: i64 = tx
                    .query_one(
                        "SELECT count(*) FROM jobs WHERE user_id = $1 AND state IN ('queued', 'retrying')",
                        &[&user],
                    )?
                    .get(0);
                self.per_user.insert(user.to_string(), n);
                n
            }
        };
        Ok(admission(self.limits, mine, total))
    }

    /// Count one more waiting job, here and in the store's cached total (which then
    /// over-estimates if the transaction rolls back: harmless, see above).
    fn admitted(&mut self, user: &str) {
        if let Some(n) = &mut self.total {
            *n += 1;
        }
        if let Some((_, n)) = self
            .store
            .waiting_total
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .as_mut()
        {
            *n += 1;
        }
        if let Some(n) = self.per_user.get_mut(user) {
            *n += 1;
        }
    }
}

/// One turn and its job inside the caller's transaction. Two API processes storing the same
/// interaction id at once: the second insert waits for the first to commit, finds the row
/// (`ON CONFLICT DO NOTHING`), and answers as a retry or a conflict.
#[allow(clippy::too_many_arguments)] // private: the columns of one turn + job
pub(super) fn insert_turn_and_job_in(
    tx: &mut Transaction,
    turn: &NewTurn,
    job: &ReflectionJob,
    payload: &str,
    metadata: &str,
    state: JobState,
    adm: &mut Admission,
    outbox: bool,
) -> anyhow::Result<InsertOutcome> {
    let existing = |tx: &mut Transaction| -> anyhow::Result<Option<InsertOutcome>> {
        let Some(row) = tx.query_opt(
            "SELECT t.user_id, t.request_hash, t.job_id, j.priority, j.state
             FROM turns t LEFT JOIN jobs j ON j.job_id = t.job_id WHERE t.id = $1",
            &[&turn.interaction_id],
        )?
        else {
            return Ok(None);
        };
        let (user, hash): (String, String) = (row.get(0), row.get(1));
        if user != turn.user_id || hash != turn.request_hash {
            return Ok(Some(InsertOutcome::Conflict));
        }
        Ok(Some(InsertOutcome::Replay {
            job_id: row.get(2),
            priority: row
                .get::<_, Option<i64>>(3)
                .and_then(Priority::from_i64)
                .unwrap_or(Priority::Normal),
            state: row
                .get::<_, Option<String>>(4)
                .and_then(|s| JobState::parse(&s))
                .unwrap_or(JobState::Completed),
        }))
    };
    if let Some(o) = existing(tx)? {
        return Ok(o);
    }
    if state == JobState::Queued {
        if let Some(busy) = adm.check(tx, &turn.user_id)? {
            return Ok(busy);
        }
        adm.admitted(&turn.user_id);
    }
    let now = now_ms();
    let n = tx.execute(
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
            &job.job_id,
            &now,
        ],
    )?;
    if n == 0 {
        // Stored by another process meanwhile.
        return Ok(existing(tx)?.unwrap_or(InsertOutcome::Conflict));
    }
    insert_job(tx, job, payload, state, now, (!outbox).then_some(now))?;
    Ok(InsertOutcome::Created)
}

impl PgStore {
    /// See [`crate::store::SqliteStore::insert_turn_and_job`].
    pub fn insert_turn_and_job(
        &self,
        turn: &NewTurn,
        job: &ReflectionJob,
        state: JobState,
        limits: QueueLimits,
    ) -> anyhow::Result<InsertOutcome> {
        let payload = serde_json::to_string(job)?;
        let metadata = serde_json::to_string(&turn.metadata)?;
        let outbox = self.is_outbox();
        self.write(|tx| {
            let mut adm = Admission::new(self, limits);
            insert_turn_and_job_in(tx, turn, job, &payload, &metadata, state, &mut adm, outbox)
        })
    }

    /// Group commit, as [`crate::store::SqliteStore::insert_turns_and_jobs`]: one
    /// transaction for the batch; if it fails, each turn in a transaction of its own.
    pub fn insert_turns_and_jobs(
        &self,
        items: &[TurnInsert],
        limits: QueueLimits,
    ) -> Vec<anyhow::Result<InsertOutcome>> {
        let outbox = self.is_outbox();
        let one = |it: &TurnInsert, tx: &mut Transaction, adm: &mut Admission| {
            insert_turn_and_job_in(
                tx,
                &it.turn,
                &it.job,
                &it.payload,
                &it.metadata,
                it.state,
                adm,
                outbox,
            )
        };
        let batch = self.write(|tx| {
            let mut adm = Admission::new(self, limits);
            items
                .iter()
                .map(|it| one(it, tx, &mut adm))
                .collect::<anyhow::Result<Vec<_>>>()
        });
        match batch {
            Ok(outcomes) => outcomes.into_iter().map(Ok).collect(),
            Err(_) => items
                .iter()
                .map(|it| self.write(|tx| one(it, tx, &mut Admission::new(self, limits))))
                .collect(),
        }
    }

    /// See [`crate::store::SqliteStore::insert_job`].
    pub fn insert_job(&self, job: &ReflectionJob) -> anyhow::Result<bool> {
        let payload = serde_json::to_string(job)?;
        self.write(|tx| {
            let now = now_ms();
            insert_job(tx, job, &payload, JobState::Queued, now, Some(now))
        })
    }

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

    /// See [`crate::store::SqliteStore::begin_delivery`]. The job row is locked
    /// (`FOR UPDATE`) so two workers given the same job (a redelivery racing the first)
    /// count attempts one after the other.
    pub fn begin_delivery(&self, job: &ReflectionJob, owner: &str) -> anyhow::Result<Delivery> {
        let payload = serde_json::to_string(job)?;
        self.write(|tx| {
            let now = now_ms();
            let row = tx.query_opt(
                "SELECT state, attempts, max_retries FROM jobs WHERE job_id = $1 FOR UPDATE",
                &[&job.job_id],
            )?;
            let (attempts, max_retries) = match row {
                None => {
                    if forgotten_after(tx, job)? {
                        return Ok(Delivery::Forgotten);
                    }
                    if !insert_job(tx, job, &payload, JobState::Queued, now, Some(now))? {
                        // Inserted by another worker meanwhile: its delivery processes it.
                        return Ok(Delivery::Finished(JobState::Processing));
                    }
                    (1, job.max_retries as i64)
                }
                Some(r) => {
                    let state: String = r.get(0);
                    let (attempts, max_retries): (i64, i64) = (r.get(1), r.get(2));
                    let state = JobState::parse(&state).unwrap_or(JobState::Queued);
                    if state.is_final() {
                        return Ok(Delivery::Finished(state));
                    }
                    if attempts > max_retries {
                        return Ok(Delivery::Exhausted {
                            attempts: attempts as u32,
                        });
                    }
                    (attempts + 1, max_retries)
                }
            };
            tx.execute(
                "UPDATE jobs SET state = 'processing', attempts = $2, lease_owner = $3,
                        lease_expires_ms = NULL, updated_ms = $4,
                        published_ms = coalesce(published_ms, $4)
                 WHERE job_id = $1",
                &[&job.job_id, &attempts, &owner, &now],
            )?;
            Ok(Delivery::Process(ClaimedJob {
                job: job.clone(),
                attempts: attempts as u32,
                max_retries: max_retries as u32,
            }))
        })
    }

    /// See [`crate::store::SqliteStore::claim_jobs`]. `FOR UPDATE SKIP LOCKED`: workers of
    /// several processes claim disjoint jobs without waiting for each other.
    pub fn claim_jobs(
        &self,
        owner: &str,
        n: usize,
        lease_ms: i64,
    ) -> anyhow::Result<Vec<ClaimedJob>> {
        self.write(|tx| {
            let now = now_ms();
            tx.execute(
                "UPDATE jobs SET state = 'retrying', lease_owner = NULL, lease_expires_ms = NULL,
                        available_ms = $1, updated_ms = $1,
                        last_error = 'lease expired: the worker stopped or crashed while processing'
                 WHERE job_id IN (SELECT job_id FROM jobs WHERE state = 'processing' AND lease_expires_ms < $1
                                  FOR UPDATE SKIP LOCKED)",
                &[&now],
            )?;
            let rows = tx.query(
                "UPDATE jobs SET state = 'processing', lease_owner = $1, lease_expires_ms = $2,
                        attempts = attempts + 1, updated_ms = $3
                 WHERE job_id IN (SELECT job_id FROM jobs
                                  WHERE state IN ('queued', 'retrying') AND available_ms <= $3
                                  ORDER BY priority DESC, available_ms LIMIT $4
                                  FOR UPDATE SKIP LOCKED)
                 RETURNING payload, attempts, max_retries",
                &[&owner, &(now + lease_ms), &now, &(n as i64)],
            )?;
            let mut out = Vec::with_capacity(rows.len());
            for r in rows {
                let payload: String = r.get(0);
                let job: ReflectionJob = serde_json::from_str(&payload)
                    .context("a stored job payload does not decode")?;
                out.push(ClaimedJob {
                    job,
                    attempts: r.get::<_, i64>(1) as u32,
                    max_retries: r.get::<_, i64>(2) as u32,
                });
            }
            out.sort_by_key(|c| std::cmp::Reverse(c.job.priority));
            Ok(out)
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

    /// See [`crate::store::SqliteStore::replay_dead`].
    pub fn replay_dead(&self, job_ids: &[String]) -> anyhow::Result<(usize, Vec<String>)> {
        let outbox = self.is_outbox();
        self.write(|tx| {
            let now = now_ms();
            let sql = "UPDATE jobs SET state = 'queued', attempts = 0, available_ms = $1, updated_ms = $1,
                              dead_reason = NULL,
                              published_ms = CASE WHEN $2 THEN NULL ELSE published_ms END
                       WHERE state = 'dead'";
            if job_ids.is_empty() {
                return Ok((tx.execute(sql, &[&now, &outbox])? as usize, Vec::new()));
            }
            let rows = tx.query(
                &format!("{sql} AND job_id = ANY($3) RETURNING job_id"),
                &[&now, &outbox, &job_ids],
            )?;
            let replayed: std::collections::HashSet<String> =
                rows.iter().map(|r| r.get(0)).collect();
            let not_dead = job_ids
                .iter()
                .filter(|id| !replayed.contains(*id))
                .cloned()
                .collect();
            Ok((replayed.len(), not_dead))
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
            let mut job = job_from_row(&row);
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
                let mut j = job_from_row(r);
                j.tiers = tiers_of(c, &j.job_id)?;
                out.push(j);
            }
            Ok(out)
        })
    }

    /// See [`crate::store::SqliteStore::job_counts`].
    pub fn job_counts(&self, user_id: Option<&str>) -> anyhow::Result<HashMap<String, i64>> {
        self.read(|c| {
            let mut out: HashMap<String, i64> = JobState::ALL
                .iter()
                .map(|s| (s.as_str().to_string(), 0))
                .collect();
            let rows = c.query(
                "SELECT state, count(*) FROM jobs WHERE ($1::TEXT IS NULL OR user_id = $1) GROUP BY state",
                &[&user_id],
            )?;
            for r in rows {
                out.insert(r.get(0), r.get(1));
            }
            Ok(out)
        })
    }

    /// See [`crate::store::SqliteStore::tier_latencies`].
    pub fn tier_latencies(&self) -> anyhow::Result<HashMap<String, Value>> {
        self.read(|c| {
            let rows = c.query(
                "SELECT tier, status, count(*), avg(latency_ms) FROM job_tiers GROUP BY tier, status",
                &[],
            )?;
            let mut out: HashMap<String, Value> = HashMap::new();
            for r in rows {
                let (tier, status, n, avg): (String, String, i64, Option<f64>) =
                    (r.get(0), r.get(1), r.get(2), r.get(3));
                let e = out.entry(tier).or_insert_with(|| json!({}));
                e[status] = json!({"count": n, "mean_latency_ms": avg});
            }
            Ok(out)
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
            let mut depth: HashMap<String, i64> =
                [Priority::Low, Priority::Normal, Priority::High, Priority::Urgent]
                    .iter()
                    .map(|p| (p.name().to_string(), 0))
                    .collect();
            let mut waiting = 0;
            for r in c.query(
                "SELECT priority, count(*) FROM jobs WHERE state IN ('queued', 'retrying') GROUP BY priority",
                &[],
            )? {
                let (p, n): (i64, i64) = (r.get(0), r.get(1));
                waiting += n;
                if let Some(p) = Priority::from_i64(p) {
                    depth.insert(p.name().to_string(), n);
                }
            }
            let r = c.query_one(
                "SELECT (SELECT min(available_ms) FROM jobs WHERE state IN ('queued', 'retrying') AND available_ms <= $1),
                        (SELECT count(*) FROM jobs WHERE state = 'processing'),
                        (SELECT count(*) FROM jobs WHERE state = 'dead'),
                        (SELECT coalesce(max(n), 0) FROM (SELECT count(*) AS n FROM jobs
                             WHERE state IN ('queued', 'retrying') GROUP BY user_id) per_user)",
                &[&now],
            )?;
            let oldest: Option<i64> = r.get(0);
            Ok(QueueStatus {
                depth_by_priority: depth,
                waiting,
                oldest_waiting_age_s: oldest
                    .map(|o| (now - o).max(0) as f64 / 1000.0)
                    .unwrap_or(0.0),
                leased: r.get(1),
                dead: r.get(2),
                deepest_user_waiting: r.get(3),
            })
        })
    }
}

/// True when the job's user was forgotten at or after the job was created: the job predates
/// the DELETE and must not write anything.
pub(super) fn forgotten_after(tx: &mut Transaction, job: &ReflectionJob) -> anyhow::Result<bool> {
    let at: Option<i64> = tx
        .query_opt(
            "SELECT forgotten_ms FROM forgotten_users WHERE user_id = $1",
            &[&job.user_id],
        )?
        .map(|r| r.get(0));
    Ok(at.is_some_and(|at| job.created_at.timestamp_millis() <= at))
}
