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
    pub fn vector_search(
        &self,
        user_id: &str,
        query: &[f32],
        k: usize,
    ) -> anyhow::Result<Option<Vec<(i64, f32)>>> {
        anyhow::bail!("vector_search: not yet on PostgreSQL")
    }

    pub fn commit_episode(
        &self,
        job: &ReflectionJob,
        speaker: &str,
        draft: Option<&EpisodeDraft>,
        embedding: Option<&[f32]>,
        context: &str,
        latency_ms: f64,
    ) -> anyhow::Result<Value> {
        anyhow::bail!("commit_episode: not yet on PostgreSQL")
    }

    pub fn commit_graph(
        &self,
        job: &ReflectionJob,
        draft: &GraphDraft,
        latency_ms: f64,
    ) -> anyhow::Result<Value> {
        anyhow::bail!("commit_graph: not yet on PostgreSQL")
    }

    pub fn commit_rules(
        &self,
        job: &ReflectionJob,
        drafts: &[(RuleDraft, Vec<f32>)],
        latency_ms: f64,
    ) -> anyhow::Result<Value> {
        anyhow::bail!("commit_rules: not yet on PostgreSQL")
    }

    pub fn recent_turns(&self, user_id: &str, limit: usize) -> anyhow::Result<Vec<TurnRow>> {
        anyhow::bail!("recent_turns: not yet on PostgreSQL")
    }

    pub fn list_turns(
        &self,
        user_id: &str,
        limit: usize,
        offset: usize,
    ) -> anyhow::Result<Vec<TurnRow>> {
        anyhow::bail!("list_turns: not yet on PostgreSQL")
    }

    pub fn search_episodes_fts(
        &self,
        user_id: &str,
        fts_query: &str,
        limit: usize,
    ) -> anyhow::Result<Vec<(i64, f64)>> {
        anyhow::bail!("search_episodes_fts: not yet on PostgreSQL")
    }

    pub fn fts_doc_count(&self, fts_query: &str) -> anyhow::Result<i64> {
        anyhow::bail!("fts_doc_count: not yet on PostgreSQL")
    }

    pub fn turn_window(
        &self,
        user_id: &str,
        job_id: &str,
        before: usize,
        after: usize,
    ) -> anyhow::Result<(Vec<WindowTurn>, Vec<WindowTurn>)> {
        anyhow::bail!("turn_window: not yet on PostgreSQL")
    }

    pub fn episode_version(&self, user_id: &str) -> anyhow::Result<(i64, i64)> {
        anyhow::bail!("episode_version: not yet on PostgreSQL")
    }

    pub fn each_episode_vector(
        &self,
        user_id: &str,
        after_id: i64,
        f: VectorSink<'_>,
    ) -> anyhow::Result<()> {
        anyhow::bail!("each_episode_vector: not yet on PostgreSQL")
    }

    pub fn episode_vectors_by_ids(
        &self,
        user_id: &str,
        ids: &[i64],
    ) -> anyhow::Result<Vec<(i64, Vec<f32>)>> {
        anyhow::bail!("episode_vectors_by_ids: not yet on PostgreSQL")
    }

    pub fn insert_synthetic_episodes(
        &self,
        user_id: &str,
        episodes: &[(String, i64, Vec<f32>)],
    ) -> anyhow::Result<usize> {
        anyhow::bail!("insert_synthetic_episodes: not yet on PostgreSQL")
    }

    pub fn episodes_by_ids(&self, user_id: &str, ids: &[i64]) -> anyhow::Result<Vec<EpisodeRow>> {
        anyhow::bail!("episodes_by_ids: not yet on PostgreSQL")
    }

    pub fn list_episodes(
        &self,
        user_id: &str,
        limit: usize,
        offset: usize,
    ) -> anyhow::Result<Vec<EpisodeRow>> {
        anyhow::bail!("list_episodes: not yet on PostgreSQL")
    }

    pub fn entity_names(&self, user_id: &str) -> anyhow::Result<Vec<(String, i64)>> {
        anyhow::bail!("entity_names: not yet on PostgreSQL")
    }

    pub fn facts_about(
        &self,
        user_id: &str,
        entity_ids: &[i64],
        include_invalid: bool,
        limit: usize,
    ) -> anyhow::Result<Vec<FactRow>> {
        anyhow::bail!("facts_about: not yet on PostgreSQL")
    }

    pub fn list_facts(
        &self,
        user_id: &str,
        limit: usize,
        offset: usize,
    ) -> anyhow::Result<Vec<FactRow>> {
        anyhow::bail!("list_facts: not yet on PostgreSQL")
    }

    pub fn list_entities(
        &self,
        user_id: &str,
        limit: usize,
        offset: usize,
    ) -> anyhow::Result<Vec<EntityRow>> {
        anyhow::bail!("list_entities: not yet on PostgreSQL")
    }

    pub fn list_rules(
        &self,
        user_id: &str,
        include_superseded: bool,
        limit: usize,
        offset: usize,
    ) -> anyhow::Result<Vec<RuleRow>> {
        anyhow::bail!("list_rules: not yet on PostgreSQL")
    }

    pub fn user_stats(&self, user_id: &str) -> anyhow::Result<Value> {
        anyhow::bail!("user_stats: not yet on PostgreSQL")
    }

    pub fn forget_user(&self, user_id: &str) -> anyhow::Result<Value> {
        anyhow::bail!("forget_user: not yet on PostgreSQL")
    }

    pub fn fold_short_term(&self, user: &str, w: Window) -> anyhow::Result<usize> {
        anyhow::bail!("fold_short_term: not yet on PostgreSQL")
    }

    pub fn short_term_summary(&self, user: &str) -> anyhow::Result<Option<ShortTermSummary>> {
        anyhow::bail!("short_term_summary: not yet on PostgreSQL")
    }
}
