//! Queue backends for reflection jobs.
//!
//! - [`embedded`] (default): the `jobs` table itself, leased by the worker loop here.
//! - [`lifecycle`]: what an attempt's outcome does to a job (complete, retry, dead) and the
//!   retry delays, for both backends.
//! - [`amqp`]: RabbitMQ, selected by `REFLECTOR_QUEUE=amqp` or by `RABBITMQ_URL` alone. The
//!   `jobs` table stays the ledger and becomes the outbox: the relay publishes its rows.

/// What processing one job did, tier by tier: what the queues settle a job by, and what the
/// traditional path answers with ([`embedded::Inline`]).
pub use crate::reflect::{JobOutcome, TierOutcome};

pub mod amqp;
pub mod embedded;
pub mod lifecycle;
