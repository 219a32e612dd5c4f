//! The worker loop over the embedded queue (the `jobs` table).
//!
//! A worker leases one due job at a time (highest priority first), runs the reflector on it
//! and settles it: **completed** when every tier committed; **retrying** with exponential
//! backoff when a tier failed and retries remain (the job row waits with a due time — no
//! worker sleeps holding a job); **dead** with the reason when retries are exhausted or the
//! job can never succeed. A worker that dies mid-job leaves a lease that expires, and the job
//! becomes due again for any worker.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{Notify, watch};

use super::lifecycle::{Transition, jittered, retry_delay_ms, settle as settle_outcome};
use crate::job::{JobState, ReflectionJob};
use crate::reflect::{JobOutcome, Reflector};
use crate::store::{ClaimedJob, now_ms};

/// Settings of the worker pool.
#[derive(Debug, Clone)]
pub struct WorkerConfig {
    /// Concurrent jobs in this process.
    pub workers: usize,
    /// Lease length (ms).
    pub lease_ms: i64,
    /// First retry delay (ms), doubled per attempt: base x 2^(attempt-1), capped.
    pub retry_base_ms: u64,
    /// Longest retry delay (ms).
    pub retry_max_ms: u64,
    /// How often an idle worker looks for due jobs when nobody woke it (ms).
    pub idle_poll_ms: u64,
    /// The Tier 1 window: after a job completes, its user's turns beyond it are folded into
    /// the running summary (here, never on the request path).
    pub window: Option<crate::store::Window>,
}

/// CPU priority (nice value) of the thread that runs the worker loops, and of the embedding
/// threads (see `server::embed_service`): reflection yields the CPU to the request path.
pub const REFLECTION_NICE: i32 = 10;

/// Lower the calling thread's CPU priority to `nice` (Linux, where nice is per thread;
/// a no-op elsewhere). Raising the nice value needs no privilege.
pub fn lower_thread_priority(nice: i32) {
    #[cfg(target_os = "linux")]
    {
        unsafe extern "C" {
            fn setpriority(which: i32, who: u32, prio: i32) -> i32;
        }
        // SAFETY: plain syscall wrapper; PRIO_PROCESS (0) with who = 0 is the calling thread.
        if unsafe { setpriority(0, 0, nice) } != 0 {
            tracing::debug!("could not lower the thread's CPU priority");
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = nice;
}

/// Claims in progress, counted by a lock each claim holds for reading (on the blocking
/// thread that runs it) while it checks the pause switch and leases; a pause takes it for
/// writing, which waits until those claims are done. Cloning shares it.
#[derive(Clone, Default)]
pub struct ClaimGate(Arc<std::sync::RwLock<()>>);

impl ClaimGate {
    /// Block until no claim holds the gate (called after the pause switch turned on).
    pub fn wait_for_claims(&self) {
        drop(self.0.write().unwrap_or_else(|p| p.into_inner()));
    }
}

/// The workers' side of the pause switch: the switch itself and the [`ClaimGate`].
#[derive(Clone)]
pub struct PauseSwitch {
    paused: watch::Receiver<bool>,
    gate: ClaimGate,
}

impl PauseSwitch {
    pub fn new(paused: watch::Receiver<bool>, gate: ClaimGate) -> Self {
        Self { paused, gate }
    }
}

/// Start `cfg.workers` worker tasks. They stop taking jobs when `shutdown` turns true and
/// return after finishing the job in hand. `wake` is notified when new jobs are queued.
///
/// `paused` is the pause switch (see `Service::pause_workers`): while it is true no worker
/// leases a new job — jobs already in hand finish — and the workers resume the moment it
/// turns false. Benchmarks use it to queue work first and measure the fast path alone.
///
/// The loops run on their own single-threaded runtime, on a thread of their own at lower
/// CPU priority ([`REFLECTION_NICE`]): extraction is CPU work done between awaits, and on
/// the API's runtime it would hold up request handling (2 runtime threads on 2 cores) for
/// milliseconds at a time. Their store calls still go to a blocking pool at normal priority,
/// so a worker never holds the SQLite writer while starved of CPU. The handles can be
/// awaited from any runtime.
pub fn spawn_workers(
    reflector: Reflector,
    cfg: WorkerConfig,
    wake: Arc<Notify>,
    shutdown: watch::Receiver<bool>,
    paused: PauseSwitch,
) -> Vec<tokio::task::JoinHandle<()>> {
    let loops = |alive: Option<tokio::sync::mpsc::Sender<()>>| {
        (0..cfg.workers)
            .map(|i| {
                worker_loop(
                    reflector.clone(),
                    cfg.clone(),
                    format!("{}-{}-{i}", hostname(), std::process::id()),
                    wake.clone(),
                    shutdown.clone(),
                    paused.clone(),
                    alive.clone(),
                )
            })
            .collect::<Vec<_>>()
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .thread_name("reflector-store")
        .build();
    if let Ok(rt) = rt {
        let (alive, mut all_stopped) = tokio::sync::mpsc::channel::<()>(1);
        let handles: Vec<_> = loops(Some(alive))
            .into_iter()
            .map(|f| rt.spawn(f))
            .collect();
        let driver = std::thread::Builder::new()
            .name("reflector-workers".into())
            .spawn(move || {
                lower_thread_priority(REFLECTION_NICE);
                // Runs the loops until the last one ends (dropping its `alive` sender).
                rt.block_on(async move { while all_stopped.recv().await.is_some() {} });
            });
        match driver {
            Ok(_) => return handles,
            Err(e) => tracing::warn!(error = %e, "no worker thread; workers share the API runtime"),
        }
    }
    loops(None).into_iter().map(tokio::spawn).collect()
}

/// One worker: lease, reflect, settle, until shutdown.
async fn worker_loop(
    r: Reflector,
    cfg: WorkerConfig,
    owner: String,
    wake: Arc<Notify>,
    mut shutdown: watch::Receiver<bool>,
    pause: PauseSwitch,
    _alive: Option<tokio::sync::mpsc::Sender<()>>,
) {
    let mut paused = pause.paused.clone();
    loop {
        if *shutdown.borrow() {
            break;
        }
        if *paused.borrow() {
            tokio::select! {
                r = paused.wait_for(|p| !*p) => if r.is_err() { break },
                _ = shutdown.changed() => {}
            }
            continue;
        }
        match run_gated(&r, &owner, &cfg, Some(&pause)).await {
            Ok(true) => continue,
            Ok(false) => {}
            Err(e) => tracing::error!(error = %format!("{e:#}"), "worker could not lease a job"),
        }
        tokio::select! {
            _ = wake.notified() => {}
            _ = tokio::time::sleep(Duration::from_millis(cfg.idle_poll_ms)) => {}
            _ = shutdown.changed() => {}
        }
    }
    tracing::debug!(worker = %owner, "worker stopped");
}

/// Lease and settle at most one job. Ok(true) when a job was processed.
pub async fn run_once(r: &Reflector, owner: &str, cfg: &WorkerConfig) -> anyhow::Result<bool> {
    run_gated(r, owner, cfg, None).await
}

/// [`run_once`], leasing nothing while `pause` is on. The switch is read inside the claim,
/// under its [`ClaimGate`], so a pause that has returned is never overtaken by a claim.
async fn run_gated(
    r: &Reflector,
    owner: &str,
    cfg: &WorkerConfig,
    pause: Option<&PauseSwitch>,
) -> anyhow::Result<bool> {
    let owner_s = owner.to_string();
    let lease = cfg.lease_ms;
    let pause = pause.cloned();
    let claimed = r
        .store()
        .run(move |s| {
            let _claiming = pause
                .as_ref()
                .map(|p| p.gate.0.read().unwrap_or_else(|e| e.into_inner()));
            if pause.as_ref().is_some_and(|p| *p.paused.borrow()) {
                return Ok(Vec::new());
            }
            s.claim_jobs(&owner_s, 1, lease)
        })
        .await?;
    let Some(c) = claimed.into_iter().next() else {
        return Ok(false);
    };
    let job_id = c.job.job_id.clone();
    let budget = c.max_retries + 1;
    if c.attempts > budget {
        // Its earlier leases expired (worker crashes) until the attempts ran out.
        let reason = format!(
            "gave up after {} attempts: leases expired without the job finishing",
            c.attempts - 1
        );
        r.store().run(move |s| s.dead_job(&job_id, &reason)).await?;
        metrics::counter!("reflector_jobs_total", "outcome" => "dead").increment(1);
        return Ok(true);
    }
    let start = std::time::Instant::now();
    let outcome: JobOutcome = r.process(&c.job).await;
    metrics::histogram!("reflector_job_seconds").record(start.elapsed().as_secs_f64());
    settle(r, &c, &outcome, cfg).await?;
    if let Some(w) = cfg.window
        && outcome.all_committed()
    {
        let user = c.job.user_id.clone();
        let n = r.store().run(move |s| s.fold_short_term(&user, w)).await?;
        if n > 0 {
            metrics::counter!("reflector_turns_folded_total").increment(n as u64);
        }
    }
    Ok(true)
}

/// The traditional path's reflection of one job on the request path
/// (`MEMORY_FAST_MODE=false` or `REFLECTION_ENABLED=false`): the job just stored is processed
/// at once and settled as a worker would settle its first attempt.
#[derive(Clone)]
pub struct Inline {
    reflector: Reflector,
    cfg: WorkerConfig,
}

impl Inline {
    pub fn new(reflector: Reflector, cfg: WorkerConfig) -> Self {
        Self { reflector, cfg }
    }

    /// Process `job` (its row already stored in state `processing`) and settle it: the job's
    /// state afterwards (`completed`, `dead`, or `retrying` for the workers to retry) and what
    /// each tier did. Errors: the store's, when settling fails.
    pub async fn run(&self, job: &ReflectionJob) -> anyhow::Result<(JobState, JobOutcome)> {
        let outcome = self.reflector.process(job).await;
        let claimed = ClaimedJob {
            job: job.clone(),
            attempts: 1,
            max_retries: job.max_retries,
        };
        let state = settle(&self.reflector, &claimed, &outcome, &self.cfg).await?;
        Ok((state, outcome))
    }
}

/// Carry out what `outcome` does to the claimed job ([`crate::queue::lifecycle::settle`]) on
/// the embedded queue: the job row is completed, dead with its reason, or due again after a
/// jittered exponential delay. Returns the job's state afterwards (`completed`, `dead` or
/// `retrying`).
pub async fn settle(
    r: &Reflector,
    c: &ClaimedJob,
    outcome: &JobOutcome,
    cfg: &WorkerConfig,
) -> anyhow::Result<JobState> {
    let job_id = c.job.job_id.clone();
    let state = match settle_outcome(outcome, c.exhausted(), c.attempts) {
        Transition::Complete => {
            r.store().run(move |s| s.complete_job(&job_id)).await?;
            metrics::counter!("reflector_jobs_total", "outcome" => "completed").increment(1);
            let lag = (now_ms()
                - c.job
                    .timestamp
                    .timestamp_millis()
                    .max(c.job.created_at.timestamp_millis())) as f64;
            metrics::histogram!("reflector_job_lag_seconds").record(lag.max(0.0) / 1000.0);
            JobState::Completed
        }
        Transition::Dead { reason } => {
            tracing::warn!(job_id = %c.job.job_id, attempts = c.attempts, reason = %reason, "job dead");
            r.store().run(move |s| s.dead_job(&job_id, &reason)).await?;
            metrics::counter!("reflector_jobs_total", "outcome" => "dead").increment(1);
            JobState::Dead
        }
        Transition::Retry { error } => {
            let delay = jittered(retry_delay_ms(
                c.attempts,
                cfg.retry_base_ms,
                cfg.retry_max_ms,
            ));
            tracing::info!(job_id = %c.job.job_id, attempt = c.attempts, delay_ms = delay, error = %error, "tier failed; retrying");
            let due = now_ms() + delay as i64;
            r.store()
                .run(move |s| s.retry_job(&job_id, due, &error))
                .await?;
            metrics::counter!("reflector_jobs_total", "outcome" => "retrying").increment(1);
            JobState::Retrying
        }
    };
    Ok(state)
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| "host".into())
}
