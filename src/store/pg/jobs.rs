//! TODO(pg): port from the SQLite backend.
#![allow(unused)]
use std::collections::HashMap;
use std::io::{BufRead, Write};

use serde_json::Value;

use super::PgStore;
use crate::extract::{EpisodeDraft, GraphDraft, RuleDraft};
use crate::job::{JobState, Priority, ReflectionJob, Tier};
use crate::store::backend::VectorSink;
use crate::store::edits::{
    EditRefused, EditTier, EpisodePatch, FactPatch, NewEpisode, NewFact, NewRule, RulePatch,
};
use crate::store::export::Counts;
use crate::store::rebuild::Embedded;
use crate::store::window::{ShortTermSummary, Window};
use crate::store::*;

impl PgStore {
    pub fn insert_turn_and_job(
        &self,
        turn: &NewTurn,
        job: &ReflectionJob,
        state: JobState,
        limits: QueueLimits,
    ) -> anyhow::Result<InsertOutcome> {
        anyhow::bail!("insert_turn_and_job: not yet on PostgreSQL")
    }

    pub fn insert_turns_and_jobs(
        &self,
        items: &[TurnInsert],
        limits: QueueLimits,
    ) -> Vec<anyhow::Result<InsertOutcome>> {
        vec![]
    }

    pub fn insert_job(&self, job: &ReflectionJob) -> anyhow::Result<bool> {
        anyhow::bail!("insert_job: not yet on PostgreSQL")
    }

    pub fn unpublished_jobs(
        &self,
        limit: usize,
    ) -> anyhow::Result<Vec<(String, String, Priority, String)>> {
        anyhow::bail!("unpublished_jobs: not yet on PostgreSQL")
    }

    pub fn mark_published(&self, job_ids: &[String]) -> anyhow::Result<()> {
        anyhow::bail!("mark_published: not yet on PostgreSQL")
    }

    pub fn outbox_backlog(&self) -> anyhow::Result<i64> {
        anyhow::bail!("outbox_backlog: not yet on PostgreSQL")
    }

    pub fn begin_delivery(&self, job: &ReflectionJob, owner: &str) -> anyhow::Result<Delivery> {
        anyhow::bail!("begin_delivery: not yet on PostgreSQL")
    }

    pub fn claim_jobs(
        &self,
        owner: &str,
        n: usize,
        lease_ms: i64,
    ) -> anyhow::Result<Vec<ClaimedJob>> {
        anyhow::bail!("claim_jobs: not yet on PostgreSQL")
    }

    pub fn completed_tiers(&self, job_id: &str) -> anyhow::Result<Vec<Tier>> {
        anyhow::bail!("completed_tiers: not yet on PostgreSQL")
    }

    pub fn record_tier_failure(
        &self,
        job_id: &str,
        tier: Tier,
        error: &str,
        latency_ms: f64,
    ) -> anyhow::Result<()> {
        anyhow::bail!("record_tier_failure: not yet on PostgreSQL")
    }

    pub fn complete_job(&self, job_id: &str) -> anyhow::Result<()> {
        anyhow::bail!("complete_job: not yet on PostgreSQL")
    }

    pub fn retry_job(&self, job_id: &str, available_ms: i64, error: &str) -> anyhow::Result<()> {
        anyhow::bail!("retry_job: not yet on PostgreSQL")
    }

    pub fn dead_job(&self, job_id: &str, reason: &str) -> anyhow::Result<()> {
        anyhow::bail!("dead_job: not yet on PostgreSQL")
    }

    pub fn replay_dead(&self, job_ids: &[String]) -> anyhow::Result<(usize, Vec<String>)> {
        anyhow::bail!("replay_dead: not yet on PostgreSQL")
    }

    pub fn dead_job_ids(&self) -> anyhow::Result<Vec<String>> {
        anyhow::bail!("dead_job_ids: not yet on PostgreSQL")
    }

    pub fn get_job(&self, job_id: &str) -> anyhow::Result<Option<JobRecord>> {
        anyhow::bail!("get_job: not yet on PostgreSQL")
    }

    pub fn list_dead(&self, limit: usize, offset: usize) -> anyhow::Result<Vec<JobRecord>> {
        anyhow::bail!("list_dead: not yet on PostgreSQL")
    }

    pub fn job_counts(&self, user_id: Option<&str>) -> anyhow::Result<HashMap<String, i64>> {
        anyhow::bail!("job_counts: not yet on PostgreSQL")
    }

    pub fn tier_latencies(&self) -> anyhow::Result<HashMap<String, Value>> {
        anyhow::bail!("tier_latencies: not yet on PostgreSQL")
    }

    pub fn completion_rate(&self, window_ms: i64) -> anyhow::Result<f64> {
        anyhow::bail!("completion_rate: not yet on PostgreSQL")
    }

    pub fn queue_status(&self) -> anyhow::Result<QueueStatus> {
        anyhow::bail!("queue_status: not yet on PostgreSQL")
    }

    pub fn rereflect_job(&self, job_id: &str) -> anyhow::Result<bool> {
        anyhow::bail!("rereflect_job: not yet on PostgreSQL")
    }

    pub fn prune(&self, cutoff_ms: i64) -> anyhow::Result<(usize, usize)> {
        anyhow::bail!("prune: not yet on PostgreSQL")
    }

    pub fn rereflection_jobs(
        &self,
        user: Option<&str>,
        since_ms: i64,
    ) -> anyhow::Result<Vec<String>> {
        anyhow::bail!("rereflection_jobs: not yet on PostgreSQL")
    }

    pub fn begin_rereflection(
        &self,
        job_id: &str,
        lease_ms: i64,
    ) -> anyhow::Result<Option<ClaimedJob>> {
        anyhow::bail!("begin_rereflection: not yet on PostgreSQL")
    }
}
