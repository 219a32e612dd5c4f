//! The job lifecycle both queue backends share: what one attempt's outcome does to a job,
//! and how long a retry waits.
//!
//! A job is **completed** when every tier committed (now or in an earlier attempt); **dead**
//! with a reason when it can never succeed or its retries are used up; otherwise it is
//! **retried** after a delay that doubles per attempt. The embedded queue writes the
//! transition to the job row (`crate::queue::embedded::settle`); RabbitMQ also moves the
//! message (to a delay queue or the DLQ, `crate::queue::amqp`), then writes the same row.

use super::JobOutcome;

/// What one attempt's outcome does to its job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Transition {
    /// Every tier committed: the job is completed.
    Complete,
    /// The job is dead-lettered with this reason (named by [`JobOutcome::dead_reason`]).
    Dead { reason: String },
    /// A tier failed and retries remain; `error` is the failed tiers' summary
    /// ([`JobOutcome::error_summary`]), kept as the job's `last_error`.
    Retry { error: String },
}

/// The transition for `outcome`, after `attempts` attempts; `exhausted` when no retry is
/// left (`ClaimedJob::exhausted`). Pure: the queue backends carry it out.
pub fn settle(outcome: &JobOutcome, exhausted: bool, attempts: u32) -> Transition {
    if outcome.all_committed() {
        return Transition::Complete;
    }
    let error = outcome.error_summary();
    match outcome.dead_reason(&error, exhausted, attempts) {
        Some(reason) => Transition::Dead { reason },
        None => Transition::Retry { error },
    }
}

/// Delay (ms) before retry number `attempt` (1-based): `base * 2^(attempt-1)`, capped at
/// `max`, never 0. RabbitMQ uses it as is, since each distinct delay is one delay queue
/// with a fixed TTL; the embedded queue adds jitter ([`jittered`]).
pub fn retry_delay_ms(attempt: u32, base: u64, max: u64) -> u64 {
    base.saturating_mul(1u64 << attempt.saturating_sub(1).min(30))
        .min(max)
        .max(1)
}

/// `ms` with ±10 % jitter, so that retries of many jobs that failed together spread out.
pub fn jittered(ms: u64) -> u64 {
    (ms as f64 * (0.9 + 0.2 * fastrand::f64())) as u64
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::job::Tier;
    use crate::reflect::TierOutcome;

    fn outcome(errors: &[Option<&str>], permanent: bool) -> JobOutcome {
        let tiers = [Tier::Episodic, Tier::Semantic, Tier::Procedural];
        JobOutcome {
            tiers: errors
                .iter()
                .zip(tiers)
                .map(|(e, tier)| TierOutcome {
                    tier,
                    result: None,
                    error: e.map(str::to_string),
                    latency_ms: 0.0,
                })
                .collect(),
            permanent,
        }
    }

    #[test]
    fn an_attempt_completes_retries_or_kills_its_job() {
        assert_eq!(
            settle(&outcome(&[None, None, None], false), false, 1),
            Transition::Complete
        );
        let failed = outcome(&[None, Some("db locked"), None], false);
        assert_eq!(
            settle(&failed, false, 1),
            Transition::Retry {
                error: "semantic: db locked".into()
            }
        );
        assert_eq!(
            settle(&failed, true, 4),
            Transition::Dead {
                reason: "retries exhausted after 4 attempts: semantic: db locked".into()
            }
        );
        let permanent = outcome(&[Some("unknown time zone"), None, None], true);
        assert_eq!(
            settle(&permanent, false, 1),
            Transition::Dead {
                reason: "cannot be processed: episodic: unknown time zone".into()
            }
        );
    }

    #[test]
    fn retry_delays_double_and_cap() {
        let d: Vec<u64> = (1..=5).map(|a| retry_delay_ms(a, 1000, 5000)).collect();
        assert_eq!(d, vec![1000, 2000, 4000, 5000, 5000]);
        assert_eq!(retry_delay_ms(40, 1000, 60_000), 60_000);
        assert_eq!(retry_delay_ms(1, 0, 10), 1);
        for _ in 0..20 {
            let j = jittered(retry_delay_ms(3, 1000, 60_000));
            assert!((3600..=4400).contains(&j), "{j}");
        }
    }
}
