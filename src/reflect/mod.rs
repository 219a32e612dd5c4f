//! The reflector: turns one reflection job into Tier 2, 3 and 4 memory.
//!
//! [`Reflector::process`] runs the episodic, semantic and procedural processors of a job
//! concurrently. Each processor extracts drafts (pure, `crate::extract`), computes the
//! embeddings it needs (`crate::embed`, batched across concurrent jobs) and commits its tier
//! in one transaction together with the tier's completion record, so a tier that committed is
//! skipped when the job runs again: re-delivery never duplicates memory.
//! This module processes one job and nothing more: the queues lease jobs and settle them from
//! the [`JobOutcome`] (`crate::queue::embedded`, `crate::queue::amqp`), and
//! `crate::queue::lifecycle` decides completed / retrying / dead.

use std::sync::Arc;
use std::time::Instant;

use serde::Serialize;
use serde_json::Value;

use crate::embed::EmbedService;
use crate::extract::{self, TurnView};
use crate::job::{ReflectionJob, Tier};
use crate::store::Store;

/// How many of a user's active rules (newest first) a new rule is compared with.
const ACTIVE_RULES_COMPARED: usize = 500;

/// A test hook: returns `Some(error)` to make a tier fail for a job before it commits.
/// Production code never sets one.
pub type FaultInjector = Arc<dyn Fn(&ReflectionJob, Tier) -> Option<String> + Send + Sync>;

/// One tier's outcome for one run of a job.
#[derive(Debug, Clone, Serialize)]
pub struct TierOutcome {
    pub tier: Tier,
    /// What was written (ids, counts) or `{"already_committed": true, ...}` on a re-run.
    pub result: Option<Value>,
    pub error: Option<String>,
    /// Wall time of this tier's run (ms).
    pub latency_ms: f64,
}

/// Every tier's outcome for one run of a job.
#[derive(Debug, Clone, Serialize)]
pub struct JobOutcome {
    pub tiers: Vec<TierOutcome>,
    /// True when the job can never succeed (e.g. an unknown time zone): dead without retries.
    pub permanent: bool,
}

impl JobOutcome {
    /// All three tiers committed (now or in an earlier run).
    pub fn all_committed(&self) -> bool {
        self.tiers.iter().all(|t| t.error.is_none())
    }

    /// "tier: error; tier: error" for the job's `last_error`.
    pub fn error_summary(&self) -> String {
        self.tiers
            .iter()
            .filter_map(|t| {
                t.error
                    .as_ref()
                    .map(|e| format!("{}: {e}", t.tier.as_str()))
            })
            .collect::<Vec<_>>()
            .join("; ")
    }

    /// The dead-letter reason when a job that did not fully commit must not be retried — a
    /// permanent failure, or its retries used up (`exhausted`, after `attempts`) — else
    /// `None`. `error` is [`Self::error_summary`]. One wording for both queue backends.
    pub fn dead_reason(&self, error: &str, exhausted: bool, attempts: u32) -> Option<String> {
        if self.permanent {
            Some(format!("cannot be processed: {error}"))
        } else if exhausted {
            Some(format!(
                "retries exhausted after {attempts} attempts: {error}"
            ))
        } else {
            None
        }
    }
}

/// Runs the three processors of a job.
#[derive(Clone)]
pub struct Reflector {
    store: Store,
    embed: EmbedService,
    fault: Option<FaultInjector>,
    llm: Option<crate::llm::LlmExtractor>,
}

impl Reflector {
    pub fn new(store: Store, embed: EmbedService) -> Self {
        Self {
            store,
            embed,
            fault: None,
            llm: None,
        }
    }

    /// Use an LLM for curation and extraction instead of the built-in rules. A reply that
    /// cannot be used fails the tier (retried, then dead-lettered) — never stores nothing.
    pub fn with_llm(mut self, llm: crate::llm::LlmExtractor) -> Self {
        self.llm = Some(llm);
        self
    }

    /// Install a fault injector (tests only).
    pub fn with_fault_injector(mut self, f: FaultInjector) -> Self {
        self.fault = Some(f);
        self
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Run every tier of `job` that has not committed yet, concurrently.
    pub async fn process(&self, job: &ReflectionJob) -> JobOutcome {
        let view = match turn_view(job) {
            Ok(v) => v,
            Err(e) => {
                return JobOutcome {
                    tiers: Tier::ALL
                        .iter()
                        .map(|&tier| TierOutcome {
                            tier,
                            result: None,
                            error: Some(e.clone()),
                            latency_ms: 0.0,
                        })
                        .collect(),
                    permanent: true,
                };
            }
        };
        let id = job.job_id.clone();
        let done = self
            .store
            .run(move |s| s.completed_tiers(&id))
            .await
            .unwrap_or_default();
        let run = |tier: Tier| {
            let view = &view;
            let skip = done.contains(&tier);
            async move {
                let start = Instant::now();
                let res = if skip {
                    Ok(serde_json::json!({"already_committed": true}))
                } else if let Some(err) = self.fault.as_ref().and_then(|f| f(job, tier)) {
                    Err(anyhow::anyhow!(err))
                } else {
                    match tier {
                        Tier::Episodic => self.episodic(job, view).await,
                        Tier::Semantic => self.semantic(job, view).await,
                        Tier::Procedural => self.procedural(job, view).await,
                    }
                };
                let latency_ms = start.elapsed().as_secs_f64() * 1000.0;
                metrics::histogram!("reflector_tier_seconds", "tier" => tier.as_str())
                    .record(latency_ms / 1000.0);
                match res {
                    Ok(v) => TierOutcome {
                        tier,
                        result: Some(v),
                        error: None,
                        latency_ms,
                    },
                    Err(e) => {
                        let msg = format!("{e:#}");
                        let id = job.job_id.clone();
                        let m = msg.clone();
                        if let Err(e2) = self
                            .store
                            .run(move |s| s.record_tier_failure(&id, tier, &m, latency_ms))
                            .await
                        {
                            tracing::error!(error = %e2, "cannot record a tier failure");
                        }
                        metrics::counter!("reflector_tier_failures_total", "tier" => tier.as_str())
                            .increment(1);
                        TierOutcome {
                            tier,
                            result: None,
                            error: Some(msg),
                            latency_ms,
                        }
                    }
                }
            }
        };
        let (a, b, c) = tokio::join!(
            run(Tier::Episodic),
            run(Tier::Semantic),
            run(Tier::Procedural)
        );
        JobOutcome {
            tiers: vec![a, b, c],
            permanent: false,
        }
    }

    /// Tier 2: curate the turn into at most one episode, embed it, commit.
    async fn episodic(&self, job: &ReflectionJob, view: &TurnView) -> anyhow::Result<Value> {
        let start = Instant::now();
        let draft = match &self.llm {
            Some(llm) => llm.episode(view).await?,
            None => extract::curate::curate(view),
        };
        let embedding = match &draft {
            Some(d) => Some(self.embed.embed_one(d.text.clone()).await?),
            None => None,
        };
        let job = job.clone();
        let speaker = view.speaker.clone();
        self.store
            .run(move |s| {
                // The turn before this one in its session: what an answer replies to.
                let context = match &draft {
                    Some(_) => s
                        .turn_window(&job.user_id, &job.job_id, 1, 0)?
                        .0
                        .pop()
                        .map(|w| w.text)
                        .unwrap_or_default(),
                    None => String::new(),
                };
                s.commit_episode(
                    &job,
                    &speaker,
                    draft.as_ref(),
                    embedding.as_deref(),
                    &context,
                    start.elapsed().as_secs_f64() * 1000.0,
                )
            })
            .await
    }

    /// Tier 3: extract entities and relations, commit them to the user's graph.
    async fn semantic(&self, job: &ReflectionJob, view: &TurnView) -> anyhow::Result<Value> {
        let start = Instant::now();
        let draft = match &self.llm {
            Some(llm) => llm.graph(view).await?,
            None => extract::graph::extract(view),
        };
        let job = job.clone();
        self.store
            .run(move |s| s.commit_graph(&job, &draft, start.elapsed().as_secs_f64() * 1000.0))
            .await
    }

    /// Tier 4: extract rules, embed their statements, commit.
    async fn procedural(&self, job: &ReflectionJob, view: &TurnView) -> anyhow::Result<Value> {
        let start = Instant::now();
        let drafts = match &self.llm {
            Some(llm) => llm.rules(view).await?,
            None => extract::rules::extract(view),
        };
        let mut drafts = drafts;
        let vectors = if drafts.is_empty() {
            Vec::new()
        } else {
            self.embed
                .embed(drafts.iter().map(|d| d.statement.clone()).collect())
                .await?
        };
        if !drafts.is_empty() {
            // A newer rule on the same topic supersedes the older one however either is
            // worded: compare with the user's active rules (their stored vectors; words
            // when the embedder is the `hash` one, whose vectors carry no meaning).
            let user = job.user_id.clone();
            let active = self
                .store
                .run(move |s| s.list_rules(&user, false, ACTIVE_RULES_COMPARED, 0))
                .await?;
            let view: Vec<extract::rules::ActiveRule<'_>> = active
                .iter()
                .map(|r| extract::rules::ActiveRule {
                    kind: &r.kind,
                    topic: &r.topic,
                    statement: &r.statement,
                    embedding: &r.embedding,
                })
                .collect();
            let semantic = !self.embed.model_id().starts_with("hash");
            extract::rules::adopt_topics(&mut drafts, semantic.then_some(&vectors[..]), &view);
        }
        let pairs: Vec<_> = drafts.into_iter().zip(vectors).collect();
        let job = job.clone();
        self.store
            .run(move |s| s.commit_rules(&job, &pairs, start.elapsed().as_secs_f64() * 1000.0))
            .await
    }
}

/// The processors' view of a job's turn. Errors (permanent) name the bad metadata field.
pub fn turn_view(job: &ReflectionJob) -> Result<TurnView, String> {
    let local = extract::time::to_local(job.timestamp, job.meta_str("timezone"))
        .map_err(|e| format!("metadata.timezone: {e}"))?;
    let speaker = job
        .meta_str("speaker")
        .filter(|s| !s.trim().is_empty())
        .unwrap_or(&job.user_id)
        .trim()
        .to_string();
    let mut text = job.user_message.clone();
    if let Some(caption) = job
        .meta_str("image_caption")
        .or_else(|| job.meta_str("blip_caption"))
        .filter(|c| !c.trim().is_empty())
    {
        text.push_str(&format!(" [shares a photo: {}]", caption.trim()));
    }
    Ok(TurnView {
        user_id: job.user_id.clone(),
        speaker,
        text,
        assistant_response: job.assistant_response.clone(),
        timestamp: job.timestamp,
        local,
    })
}
