//! Seams: what tests and `reflector bench` set to drive the service in ways production never
//! does. Everything here is in the default build (the benchmark ships in the `reflector`
//! binary), and nothing else in the library offers such a knob.
//!
//! - [`Seams`]: fault injection into the tiers, workers started paused, a shared embedding
//!   pool — given to `Service::start` in `server::Options::seams`.
//! - [`embed_service_counting`]: the configured embedder, counting the texts it embeds.
//! - The pause switch itself is `Service::pause_workers` (paused workers lease nothing).

use std::sync::Arc;
use std::sync::atomic::AtomicU64;

use crate::config::Config;
use crate::embed::EmbedService;
pub use crate::reflect::FaultInjector;

/// The seams of one service; the default sets none of them.
#[derive(Default, Clone)]
pub struct Seams {
    /// Make tiers fail on purpose (tests of retry and dead-lettering).
    pub fault: Option<FaultInjector>,
    /// Start the workers paused: they lease nothing until `Service::pause_workers(false)`
    /// (benchmarks queue work first, or measure the request path without reflection).
    pub start_paused: bool,
    /// Use this embedding pool instead of building one from the config (benchmarks share one
    /// pool between services and count what it computes).
    pub embed: Option<EmbedService>,
}

impl Seams {
    /// Workers start paused (see [`Seams::start_paused`]); nothing else set.
    pub fn paused() -> Self {
        Self {
            start_paused: true,
            ..Self::default()
        }
    }

    /// Tiers fail as `fault` says (see [`Seams::fault`]); nothing else set.
    pub fn failing(fault: FaultInjector) -> Self {
        Self {
            fault: Some(fault),
            ..Self::default()
        }
    }
}

/// The embedder the config names (as the service builds it), adding the number of texts it
/// embeds to `texts` when given (`reflector bench`: embeddings per job). Errors: the model
/// is not in the model directory, or cannot be loaded.
pub fn embed_service_counting(
    cfg: &Config,
    texts: Option<Arc<AtomicU64>>,
) -> anyhow::Result<EmbedService> {
    crate::server::embed_service_with(cfg, texts)
}
