//! The job ledger's decisions, written once for both backends over the statements of
//! [`JobSql`]: the request path (a turn and its reflection job in one transaction, with
//! admission against the queue limits and idempotent retries by interaction id), a job from
//! another producer, the start of a broker delivery (attempt counting, stale and forgotten
//! deliveries) and of a re-reflection.
//!
//! A backend implements [`JobSql`] on its open write transaction (`sqlite/jobs.rs`,
//! `postgres/jobs.rs`: SQL and parameter binding only); [`super::JobWriter`] runs these flows
//! in [`super::WriteStore::write_transaction`]. So do the embedded queue's claims and the
//! replay of dead jobs. The ledger's single-statement transitions (complete, retry, dead)
//! and its reads stay with each backend.

use std::collections::HashMap;

use anyhow::Context;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::derive::admission;
use super::model::{
    ClaimedJob, Columns, Delivery, InsertOutcome, NewTurn, QueueLimits, REFLECT_OWNER, TurnInsert,
};
use crate::job::{JobState, Priority, ReflectionJob};

/// A stored turn as the request path compares a retry with it.
#[derive(Debug)]
pub struct StoredTurn {
    pub user_id: String,
    /// sha256 (hex) of the stored request's content.
    pub request_hash: String,
    pub job_id: String,
    /// The job's priority and state; `None` when the job row is gone.
    pub priority: Option<i64>,
    pub state: Option<String>,
}

impl StoredTurn {
    /// From a row of `SELECT t.user_id, t.request_hash, t.job_id, j.priority, j.state FROM
    /// turns t LEFT JOIN jobs j ON j.job_id = t.job_id`.
    pub fn from_columns<R: Columns>(r: &R) -> Result<Self, R::Error> {
        Ok(Self {
            user_id: r.text(0)?,
            request_hash: r.text(1)?,
            job_id: r.text(2)?,
            priority: r.opt_int(3)?,
            state: r.opt_text(4)?,
        })
    }
}

/// The statements of the job ledger's flows, one method each. A backend implements it on its
/// open write transaction; nothing here decides anything.
// One line per statement (rustfmt would fold the longer ones), so the list reads as a table.
#[rustfmt::skip]
pub trait JobSql {
    /// `(state, attempts, max_retries)` of the job, its row locked for the rest of the
    /// transaction (PostgreSQL's `FOR UPDATE`; SQLite has one writer).
    fn lock_job(&mut self, job_id: &str) -> anyhow::Result<Option<(String, i64, i64)>>;
    /// When `user` was last forgotten (ms since the Unix epoch), if ever.
    fn forgotten_ms(&mut self, user: &str) -> anyhow::Result<Option<i64>>;
    /// Insert the job's row in `state` (attempt 1 when `processing`, else 0), due and created
    /// at `now`; `published_ms`: when it reached its queue (`None`: the outbox relay has yet to
    /// publish it). Returns false, writing nothing, when the job id exists.
    fn insert_job(&mut self, job: &ReflectionJob, payload: &str, state: JobState, now: i64, published_ms: Option<i64>) -> anyhow::Result<bool>;
    /// The job is `processing` as attempt `attempts` by `owner`, with no lease (the broker
    /// holds the delivery); published at `now` unless it already was.
    fn start_attempt(&mut self, job_id: &str, attempts: i64, owner: &str, now: i64) -> anyhow::Result<()>;
    /// The stored turn of this interaction id, with its job's priority and state.
    fn stored_turn(&mut self, interaction_id: &str) -> anyhow::Result<Option<StoredTurn>>;
    /// Insert the turn (`metadata`: JSON object text) with its job's id, created at `now`.
    /// Returns false, writing nothing, when the interaction id exists.
    fn insert_turn(&mut self, turn: &NewTurn, metadata: &str, job_id: &str, now: i64) -> anyhow::Result<bool>;
    /// Waiting jobs (`queued` or `retrying`): `user`'s, or with `None` everyone's.
    fn count_waiting(&mut self, user: Option<&str>) -> anyhow::Result<i64>;
    /// The job as stored (JSON text).
    fn job_payload(&mut self, job_id: &str) -> anyhow::Result<Option<String>>;
    /// Forget the job's tier records and make it `processing` as attempt 1, leased to `owner`
    /// until `lease_expires_ms`, with no error, dead reason or completion.
    fn restart_job(&mut self, job_id: &str, owner: &str, lease_expires_ms: i64, now: i64) -> anyhow::Result<()>;
    /// Make the `processing` jobs whose lease expired before `now` due again (`retrying`, due
    /// at `now`, unleased, with the reason as their last error); returns how many.
    fn expire_leases(&mut self, now: i64) -> anyhow::Result<u64>;
    /// Lease up to `n` due jobs (`queued` or `retrying`, due at or before `now`), highest
    /// priority first then longest due, to `owner` until `lease_expires_ms`, counting the
    /// attempt. Returns `(payload, attempts, max_retries)` of each, in no set order.
    /// PostgreSQL skips the rows other workers have locked.
    fn lease_due(&mut self, owner: &str, lease_expires_ms: i64, now: i64, n: usize) -> anyhow::Result<Vec<(String, i64, i64)>>;
    /// Put dead jobs back in the queue: `queued`, due at `now`, with no attempt made and no
    /// dead reason; `unpublish` marks them for the outbox relay again. `job_id`: that job
    /// only, else every dead job. Returns how many.
    fn requeue_dead(&mut self, job_id: Option<&str>, now: i64, unpublish: bool) -> anyhow::Result<u64>;
}

/// A store's count of all waiting jobs, reused by the request path for `recount` before it
/// counts again (counting scans the waiting jobs' index inside the fast path's write
/// transaction, and delays the turns behind it). Between counts the admitted turns are added
/// and the jobs the workers finish are not subtracted: an over-estimate, good for admitting a
/// turn; a turn is refused only on a count made in its own transaction, so the period never
/// changes an admission decision, it only bounds how far the estimate drifts.
#[derive(Debug)]
pub struct WaitingTotal {
    counted: Mutex<Option<(Instant, i64)>>,
    recount: Duration,
}

impl WaitingTotal {
    /// A store's count, reused for `recount` (SQLite: 10 s, PostgreSQL: 250 ms; see each
    /// backend's `WAITING_TOTAL_RECOUNT`).
    pub const fn new(recount: Duration) -> Self {
        Self {
            counted: Mutex::new(None),
            recount,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<(Instant, i64)>> {
        self.counted.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Waiting-job admission within one write transaction: each user's count once per
/// transaction, then kept up to date as its own jobs are inserted; the total from
/// [`WaitingTotal`], counted again in this transaction before it refuses a turn.
pub(crate) struct Admission<'a> {
    limits: QueueLimits,
    cache: &'a WaitingTotal,
    per_user: HashMap<String, i64>,
    total: Option<i64>,
    /// Whether `total` was counted in this transaction.
    fresh: bool,
}

impl<'a> Admission<'a> {
    pub(crate) fn new(cache: &'a WaitingTotal, limits: QueueLimits) -> Self {
        let total = cache
            .lock()
            .filter(|(at, _)| at.elapsed() < cache.recount)
            .map(|(_, n)| n);
        Self {
            limits,
            cache,
            per_user: HashMap::new(),
            total,
            fresh: false,
        }
    }

    fn count_total(&mut self, sql: &mut dyn JobSql) -> anyhow::Result<i64> {
        let n = sql.count_waiting(None)?;
        *self.cache.lock() = Some((Instant::now(), n));
        (self.total, self.fresh) = (Some(n), true);
        Ok(n)
    }

    /// `Some(Busy)` when one more waiting job for `user` would pass a ceiling.
    fn check(&mut self, sql: &mut dyn JobSql, user: &str) -> anyhow::Result<Option<InsertOutcome>> {
        if self.limits == QueueLimits::NONE {
            return Ok(None);
        }
        let mut total = match self.total {
            Some(n) => n,
            None => self.count_total(sql)?,
        };
        if total as u64 >= self.limits.total && !self.fresh {
            total = self.count_total(sql)?;
        }
        let mine = match self.per_user.get(user) {
            Some(n) => *n,
            None => {
                let n = sql.count_waiting(Some(user))?;
                self.per_user.insert(user.to_string(), n);
                n
            }
        };
        Ok(admission(self.limits, mine, total))
    }

    /// Count one more waiting job, here and in the store's reused total (which then
    /// over-estimates if the transaction rolls back: harmless, see [`WaitingTotal`]).
    fn admitted(&mut self, user: &str) {
        if let Some(n) = &mut self.total {
            *n += 1;
        }
        if let Some((_, n)) = self.cache.lock().as_mut() {
            *n += 1;
        }
        if let Some(n) = self.per_user.get_mut(user) {
            *n += 1;
        }
    }
}

/// One turn and its job, inside the caller's transaction. A stored interaction id answers
/// `Replay` when the request is the same (same user and request hash), else `Conflict`. A
/// fast-path (`queued`) job must pass admission first. Two processes storing the same
/// interaction id at once (PostgreSQL): the second insert waits for the first to commit,
/// finds the row, and answers as a retry or a conflict. `outbox`: the job waits for the relay
/// to publish it.
pub(crate) fn insert_turn_and_job(
    sql: &mut dyn JobSql,
    it: &TurnInsert,
    adm: &mut Admission,
    outbox: bool,
) -> anyhow::Result<InsertOutcome> {
    let turn = &it.turn;
    let existing = |sql: &mut dyn JobSql| -> anyhow::Result<Option<InsertOutcome>> {
        let Some(t) = sql.stored_turn(&turn.interaction_id)? else {
            return Ok(None);
        };
        if t.user_id != turn.user_id || t.request_hash != turn.request_hash {
            return Ok(Some(InsertOutcome::Conflict));
        }
        Ok(Some(InsertOutcome::Replay {
            job_id: t.job_id,
            priority: t
                .priority
                .and_then(Priority::from_i64)
                .unwrap_or(Priority::Normal),
            state: t
                .state
                .and_then(|s| JobState::parse(&s))
                .unwrap_or(JobState::Completed),
        }))
    };
    if let Some(o) = existing(sql)? {
        return Ok(o);
    }
    if it.state == JobState::Queued {
        if let Some(busy) = adm.check(sql, &turn.user_id)? {
            return Ok(busy);
        }
        adm.admitted(&turn.user_id);
    }
    let now = super::now_ms();
    if !sql.insert_turn(turn, &it.metadata, &it.job.job_id, now)? {
        // Stored by another process meanwhile.
        return Ok(existing(sql)?.unwrap_or(InsertOutcome::Conflict));
    }
    sql.insert_job(
        &it.job,
        &it.payload,
        it.state,
        now,
        (!outbox).then_some(now),
    )?;
    Ok(InsertOutcome::Created)
}

/// A job was delivered by the broker and is about to be processed: count the attempt. A job
/// never seen (another producer's) is recorded first, so the API shows it, unless its user was
/// forgotten at or after the job was created (then `Forgotten`: it must write nothing). A
/// completed or dead job answers `Finished`, one whose every allowed attempt started
/// `Exhausted`. `payload`: the job as JSON text; `owner` names the worker.
pub(crate) fn begin_delivery(
    sql: &mut dyn JobSql,
    job: &ReflectionJob,
    payload: &str,
    owner: &str,
) -> anyhow::Result<Delivery> {
    let now = super::now_ms();
    let (attempts, max_retries) = match sql.lock_job(&job.job_id)? {
        None => {
            let forgotten = sql.forgotten_ms(&job.user_id)?;
            if forgotten.is_some_and(|at| job.created_at.timestamp_millis() <= at) {
                return Ok(Delivery::Forgotten);
            }
            if !sql.insert_job(job, payload, JobState::Queued, now, Some(now))? {
                // Inserted by another worker meanwhile: its delivery processes it.
                return Ok(Delivery::Finished(JobState::Processing));
            }
            (1, job.max_retries as i64)
        }
        Some((state, attempts, max_retries)) => {
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
    sql.start_attempt(&job.job_id, attempts, owner, now)?;
    Ok(Delivery::Process(ClaimedJob {
        job: job.clone(),
        attempts: attempts as u32,
        max_retries: max_retries as u32,
    }))
}

/// Take a finished job for re-reflection in this process: forget its tier records and lease
/// it to [`REFLECT_OWNER`] for `lease_ms` (workers leave it alone meanwhile). `None` when the
/// job is not finished (waiting or in progress: it will be reflected anyway) or unknown.
pub(crate) fn begin_rereflection(
    sql: &mut dyn JobSql,
    job_id: &str,
    lease_ms: i64,
) -> anyhow::Result<Option<ClaimedJob>> {
    let Some((state, _, max_retries)) = sql.lock_job(job_id)? else {
        return Ok(None);
    };
    if !matches!(state.as_str(), "completed" | "dead") {
        return Ok(None);
    }
    let Some(payload) = sql.job_payload(job_id)? else {
        return Ok(None);
    };
    let job: ReflectionJob = serde_json::from_str(&payload)?;
    let now = super::now_ms();
    sql.restart_job(job_id, REFLECT_OWNER, now + lease_ms, now)?;
    Ok(Some(ClaimedJob {
        job,
        attempts: 1,
        max_retries: max_retries as u32,
    }))
}

/// The embedded queue's claim: lease up to `n` due jobs to `owner` for `lease_ms`, highest
/// priority first, after making due again the jobs whose lease expired (their worker
/// stopped). Each claim counts an attempt. Errors when a stored payload does not decode.
pub(crate) fn claim_jobs(
    sql: &mut dyn JobSql,
    owner: &str,
    n: usize,
    lease_ms: i64,
) -> anyhow::Result<Vec<ClaimedJob>> {
    let now = super::now_ms();
    sql.expire_leases(now)?;
    let mut out = Vec::with_capacity(n);
    for (payload, attempts, max_retries) in sql.lease_due(owner, now + lease_ms, now, n)? {
        let job: ReflectionJob =
            serde_json::from_str(&payload).context("a stored job payload does not decode")?;
        out.push(ClaimedJob {
            job,
            attempts: attempts as u32,
            max_retries: max_retries as u32,
        });
    }
    // Highest priority first, as the statement chose them (RETURNING order is unspecified).
    out.sort_by_key(|c| std::cmp::Reverse(c.job.priority));
    Ok(out)
}

/// Put dead jobs back in the queue with fresh attempts (failed tiers only will run, the
/// committed ones are skipped). `job_ids` empty: every dead job. `outbox` (RabbitMQ mode):
/// the jobs are unpublished again, so the relay puts them back on the broker. Returns how
/// many, and the given ids that are unknown or not dead.
pub(crate) fn replay_dead(
    sql: &mut dyn JobSql,
    job_ids: &[String],
    outbox: bool,
) -> anyhow::Result<(usize, Vec<String>)> {
    let now = super::now_ms();
    if job_ids.is_empty() {
        return Ok((sql.requeue_dead(None, now, outbox)? as usize, Vec::new()));
    }
    let mut n = 0;
    let mut not_dead = Vec::new();
    for id in job_ids {
        match sql.requeue_dead(Some(id), now, outbox)? {
            0 => not_dead.push(id.clone()),
            k => n += k as usize,
        }
    }
    Ok((n, not_dead))
}
