//! The RabbitMQ queue backend (lapin): topology, the outbox relay (producer), the intake
//! forwarder, the consumer that reflects jobs, and the operator's view of the broker.
//!
//! # Topology (declared idempotently by every process that connects; see [`topology`])
//! ```text
//! producers ──► memory_reflection_exchange (topic, durable)
//!                 │ reflection.#  (ours; the original producer adds reflection.*)
//!                 ▼
//!               memory_reflection_queue            durable classic, arguments EXACTLY the
//!                 │ (intake)                        original's: x-dead-letter-exchange =
//!                 │                                 memory_reflection_exchange.dlx,
//!                 │                                 x-dead-letter-routing-key = failed,
//!                 │                                 x-max-retries = max_retries
//!                 ▼ forwarder: decode, priority from the job, confirm, then ack
//!               memory_reflection_queue.priority   durable classic, x-max-priority = 3
//!                 ▼ consumer: manual ack after every tier committed
//!   tier failed ──► memory_reflection_queue.retry.<ms>ms  (x-message-ttl = ms, dead-letters
//!                     back into .priority: exponential backoff without a sleeping consumer)
//!   poison / exhausted ──► memory_reflection_dlq   (bound to memory_reflection_exchange.dlx,
//!                     topic as the original declares it, with `failed`), headers
//!                     x-reflector-reason / -attempts / -job-id
//! ```
//! Why two queues: RabbitMQ refuses (406 PRECONDITION_FAILED) a re-declaration whose
//! arguments differ, and `x-max-priority` is one of the compared arguments. The original
//! Python producer declares `memory_reflection_queue` with its dead-letter arguments and
//! `x-max-retries`, and no priority, so that queue must keep exactly those arguments for the
//! original producer to keep working on a broker we set up; the priority queue is a second
//! queue behind it.
//! Messages from any producer take the same path, and the forwarder sets the AMQP priority
//! from the job's own `priority` field (the original producer never set it).
//!
//! Delivery guarantees: the job row is written with its turn (the outbox); the relay
//! publishes persistent, `mandatory` messages with publisher confirms and marks the row
//! published on the confirm. The forwarder acks the intake message only after the broker
//! confirmed its copy in the priority queue; the consumer acks only after every tier
//! committed (or the retry / dead-letter message was confirmed). At-least-once throughout,
//! made exactly-once in effect by the per-(job, tier) idempotency of the store.

//!
//! # Files
//! - [`connection`]: settings from the config, the broker connection, the operator's view;
//! - [`topology`]: the exchanges and queues, declared and checked;
//! - [`message`]: routing keys, job bodies, publish properties, dead-letter copies;
//! - [`relay`]: the outbox relay (producer);
//! - [`consumer`]: the intake forwarder and the consumer that reflects jobs.

pub mod connection;
pub mod consumer;
pub mod message;
pub mod relay;
pub mod topology;

pub use connection::{AmqpSettings, Broker, redact_url};
pub use consumer::run_worker;
pub use message::{decode_job, routing_key};
pub use relay::run_relay;

/// `x-max-priority` of the priority queue: job priorities are 0 (low) ..= 3 (urgent).
pub const MAX_PRIORITY: u8 = 3;

/// Routing key of the dead-letter exchange's binding to the DLQ (the original's).
pub const DLQ_ROUTING_KEY: &str = "failed";

/// Header: why a message was dead-lettered (text).
pub const H_REASON: &str = "x-reflector-reason";

/// Header: processing attempts started before it was dead-lettered or retried (integer).
pub const H_ATTEMPTS: &str = "x-reflector-attempts";

/// Header: the job id, when the body decoded far enough to have one.
pub const H_JOB_ID: &str = "x-reflector-job-id";

/// Header: the routing key the message was first published with.
pub const H_ROUTING_KEY: &str = "x-reflector-routing-key";

/// Header: when it was dead-lettered (RFC 3339 UTC).
pub const H_DEAD_AT: &str = "x-reflector-dead-at";

/// Header: size in bytes of the original body, when the DLQ copy keeps only its beginning.
pub const H_BODY_BYTES: &str = "x-reflector-body-bytes";

/// Bytes of an oversized body kept in its dead-letter copy.
const DLQ_BODY_KEEP: usize = 64 * 1024;

/// Longest AMQP routing key (a short string).
const MAX_ROUTING_KEY: usize = 255;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::job::Priority;

    #[test]
    fn redacts_the_password() {
        assert_eq!(
            redact_url("amqp://user:s3cret@host:5672/%2f"),
            "amqp://user:***@host:5672/%2f"
        );
        assert_eq!(redact_url("amqp://host/"), "amqp://host/");
        assert!(!redact_url("amqps://a:p@ss@h/").contains("p@ss"));
    }

    #[test]
    fn routing_keys_keep_dots_and_fit_amqp() {
        assert_eq!(routing_key("alice.smith"), "reflection.alice.smith");
        let long = "é".repeat(200);
        let k = routing_key(&long);
        assert!(k.len() <= 255 && k.starts_with("reflection."));
    }

    #[test]
    fn retry_delays_double_and_cap() {
        let mut s = AmqpSettings::new("amqp://h/");
        s.retry_base_ms = 1000;
        s.retry_max_ms = 5000;
        assert_eq!(
            (1..=5).map(|a| s.retry_delay_ms(a)).collect::<Vec<_>>(),
            vec![1000, 2000, 4000, 5000, 5000]
        );
    }

    #[test]
    fn poison_bodies_are_named() {
        let max = 1024 * 1024;
        assert!(decode_job(b"{not json", max).unwrap_err().contains("JSON"));
        assert!(
            decode_job(&[0xff, 0xfe], max)
                .unwrap_err()
                .contains("UTF-8")
        );
        assert!(
            decode_job(&vec![b' '; max + 1], max)
                .unwrap_err()
                .contains("limit")
        );
        let e = decode_job(
            br#"{"job_id":"j","user_id":"u","session_id":"s","user_message":"m","timestamp":"2024-01-01T00:00:00","priority":9}"#,
            max,
        )
        .unwrap_err();
        assert!(e.contains("priority"), "{e}");
        let e = decode_job(
            br#"{"job_id":"j","user_id":"","session_id":"s","user_message":"m","timestamp":"2024-01-01T00:00:00"}"#,
            max,
        )
        .unwrap_err();
        assert!(e.contains("user_id"), "{e}");
        let ok = decode_job(
            br#"{"job_id":"j","user_id":"a.b","session_id":"s","user_message":"m","timestamp":"2024-01-01T00:00:00","priority":3}"#,
            max,
        )
        .unwrap();
        assert_eq!(ok.priority, Priority::Urgent);
    }
}
