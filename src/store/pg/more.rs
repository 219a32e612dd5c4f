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
    pub fn add_episode(&self, user: &str, actor: &str, e: &NewEpisode) -> anyhow::Result<Value> {
        anyhow::bail!("add_episode: not yet on PostgreSQL")
    }

    pub fn add_fact(
        &self,
        user: &str,
        actor: &str,
        f: &NewFact,
    ) -> anyhow::Result<Result<Value, EditRefused>> {
        anyhow::bail!("add_fact: not yet on PostgreSQL")
    }

    pub fn add_rule(
        &self,
        user: &str,
        actor: &str,
        r: &NewRule,
    ) -> anyhow::Result<Result<Value, EditRefused>> {
        anyhow::bail!("add_rule: not yet on PostgreSQL")
    }

    pub fn update_episode(
        &self,
        user: &str,
        actor: &str,
        id: i64,
        p: &EpisodePatch,
    ) -> anyhow::Result<Result<Value, EditRefused>> {
        anyhow::bail!("update_episode: not yet on PostgreSQL")
    }

    pub fn update_fact(
        &self,
        user: &str,
        actor: &str,
        id: i64,
        p: &FactPatch,
    ) -> anyhow::Result<Result<Value, EditRefused>> {
        anyhow::bail!("update_fact: not yet on PostgreSQL")
    }

    pub fn update_rule(
        &self,
        user: &str,
        actor: &str,
        id: i64,
        p: &RulePatch,
    ) -> anyhow::Result<Result<Value, EditRefused>> {
        anyhow::bail!("update_rule: not yet on PostgreSQL")
    }

    pub fn delete_memory(
        &self,
        user: &str,
        actor: &str,
        tier: EditTier,
        id: i64,
    ) -> anyhow::Result<Result<Value, EditRefused>> {
        anyhow::bail!("delete_memory: not yet on PostgreSQL")
    }

    pub fn list_edits(
        &self,
        user: &str,
        limit: usize,
        offset: usize,
    ) -> anyhow::Result<Vec<Value>> {
        anyhow::bail!("list_edits: not yet on PostgreSQL")
    }

    pub fn export_user(
        &self,
        user: &str,
        model: &str,
        out: &mut dyn Write,
    ) -> anyhow::Result<Counts> {
        anyhow::bail!("export_user: not yet on PostgreSQL")
    }

    pub fn import_user(&self, input: &mut dyn BufRead) -> anyhow::Result<Counts> {
        anyhow::bail!("import_user: not yet on PostgreSQL")
    }

    pub fn texts_to_embed(
        &self,
        what: Embedded,
        user: Option<&str>,
        after: i64,
        limit: usize,
    ) -> anyhow::Result<Vec<(i64, String)>> {
        anyhow::bail!("texts_to_embed: not yet on PostgreSQL")
    }

    pub fn set_embeddings(&self, what: Embedded, rows: &[(i64, Vec<f32>)]) -> anyhow::Result<()> {
        anyhow::bail!("set_embeddings: not yet on PostgreSQL")
    }

    pub fn count_embedded(&self, user: Option<&str>) -> anyhow::Result<u64> {
        anyhow::bail!("count_embedded: not yet on PostgreSQL")
    }
}
