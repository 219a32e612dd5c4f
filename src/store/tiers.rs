//! The tier commits (Tier 2 episodes, Tier 3 graph, Tier 4 rules), written once for both
//! backends over the statements of [`TierSql`]: each commit runs once per (job, tier), with
//! entity resolution, the re-derivation of fact slots and rule topics, and the tombstone
//! checks that keep reflection from writing back what a user edited.
//!
//! A backend implements [`TierSql`] on its open write transaction (`sqlite/tiers.rs`,
//! `postgres/tiers.rs`: SQL and parameter binding only) and runs these flows in
//! [`super::WriteStore::write_transaction`]; [`super::TierWriter`] is the entry point. The
//! explicit edits ([`super::edits`]) and imports share [`rederive_slot`] and
//! [`rederive_topic`].

use std::collections::{BTreeSet, HashMap};

use serde_json::{Value, json};

use super::derive::{
    SlotRow, TopicRule, episode_signature, fact_signature, names_the_value, norm_name,
    rule_signature, slot_rows, tombstone_applies, topic_rows, union_json,
};
use super::sql::RowSql;
use super::{EditTier, now_ms};
use crate::extract::{EpisodeDraft, GraphDraft, REVOCATION, RuleDraft};
use crate::job::{ReflectionJob, Tier};

/// An episode as reflection writes it (Tier 2).
#[derive(Debug)]
pub struct ReflectedEpisode<'a> {
    pub user: &'a str,
    pub job_id: &'a str,
    pub speaker: &'a str,
    pub draft: &'a EpisodeDraft,
    pub embedding: &'a [f32],
    /// The job's evidence ids as a JSON array text.
    pub evidence: &'a str,
    /// The text of the turn before it in its session (searched, never shown).
    pub context: &'a str,
    /// When the turn was observed, and when the row is written: ms since the Unix epoch.
    pub observed_ms: i64,
    pub now: i64,
}

/// A fact as reflection writes it (Tier 3): `subject` and `object` are entity ids.
#[derive(Debug)]
pub struct ReflectedFact<'a> {
    pub user: &'a str,
    pub subject: i64,
    pub predicate: &'a str,
    pub object: i64,
    pub fact: &'a str,
    /// Exclusive: one value at a time in the (subject, predicate) slot; an insert of the
    /// same row again is ignored. Accumulating: always a new row.
    pub exclusive: bool,
    pub valid_ms: i64,
    /// The job's evidence ids as a JSON array text.
    pub evidence: &'a str,
    pub job_id: &'a str,
    pub now: i64,
}

/// The statements of the tier commits, one method each, every one scoped to `user` (the
/// job ledger's `job_tiers` rows are keyed by the globally unique job id). A backend
/// implements it on its open write transaction; nothing here decides anything.
// One line per statement (rustfmt would fold the longer ones), so the list reads as a table.
#[rustfmt::skip]
pub trait TierSql: RowSql {
    /// Serialise this user's writers for the rest of the transaction (PostgreSQL's advisory
    /// lock; SQLite has one writer and does nothing).
    fn lock_user(&mut self, user: &str) -> anyhow::Result<()>;
    /// The result text of `tier` of the job when it completed: `Some(None)` when it
    /// completed with no result stored, `None` when it has not completed.
    fn completed_tier(&mut self, job_id: &str, tier: Tier) -> anyhow::Result<Option<Option<String>>>;
    /// Whether the job's row exists (it is gone when its user was forgotten).
    fn job_exists(&mut self, user: &str, job_id: &str) -> anyhow::Result<bool>;
    /// Record `tier` of the job as completed with `result` (JSON text), counting an attempt.
    fn record_completed(&mut self, job_id: &str, tier: Tier, result: &str, latency_ms: f64, now: i64) -> anyhow::Result<()>;
    /// Whether `user` has any tombstone in `tier`.
    fn has_tombstones(&mut self, user: &str, tier: EditTier) -> anyhow::Result<bool>;
    /// `(source_job_id, evidence JSON)` of every tombstone of `tier` naming `signature`.
    fn tombstones(&mut self, user: &str, tier: EditTier, signature: &str) -> anyhow::Result<Vec<(Option<String>, Option<String>)>>;
    /// Delete the episodes an earlier run of the job wrote.
    fn delete_job_episodes(&mut self, user: &str, job_id: &str) -> anyhow::Result<()>;
    /// Insert an episode; returns its id.
    fn insert_reflected_episode(&mut self, e: &ReflectedEpisode<'_>) -> anyhow::Result<i64>;
    /// The user's entity for `name`: by alias, then by normalised name, else a new one of
    /// `kind` (an existing entity of kind `other` takes `kind`).
    fn resolve_entity(&mut self, user: &str, name: &str, kind: &str, now: i64) -> anyhow::Result<i64>;
    /// Add `alias_norm` (a normalised name) as an alias of the entity, unless it is one.
    fn add_alias(&mut self, user: &str, alias_norm: &str, entity: i64) -> anyhow::Result<()>;
    /// An entity's normalised name.
    fn entity_norm(&mut self, user: &str, entity: i64) -> anyhow::Result<String>;
    /// End at `at_ms` the valid facts of the slot (of `object` only, when given) that are
    /// valid from `at_ms` or earlier and were written by another job; returns how many.
    fn end_facts(&mut self, user: &str, subject: i64, predicate: &str, object: Option<i64>, at_ms: i64, job_id: &str) -> anyhow::Result<u64>;
    /// `(object id, object's normalised name)` of the slot's valid facts, by object id.
    fn valid_objects(&mut self, user: &str, subject: i64, predicate: &str) -> anyhow::Result<Vec<(i64, String)>>;
    fn insert_reflected_fact(&mut self, f: &ReflectedFact<'_>) -> anyhow::Result<()>;
    /// `(id, valid_ms, evidence JSON)` of the newest row of the fact that was not ended at or
    /// before `valid_ms`.
    fn open_fact(&mut self, user: &str, subject: i64, predicate: &str, object: i64, valid_ms: i64) -> anyhow::Result<Option<(i64, i64, String)>>;
    /// Set a fact's evidence, and with `earlier` its `valid_ms` and text.
    fn restate_fact(&mut self, user: &str, id: i64, earlier: Option<(i64, &str)>, evidence: &str) -> anyhow::Result<()>;
    /// `(id, object id, valid_ms)` of the slot's exclusive facts in time order, ties by the
    /// object's normalised name (byte order), then id.
    fn slot_facts(&mut self, user: &str, subject: i64, predicate: &str) -> anyhow::Result<Vec<(i64, i64, i64)>>;
    /// Store `invalid_ms` and `merged_into` of each row.
    fn set_slot_rows(&mut self, user: &str, rows: &[SlotRow]) -> anyhow::Result<()>;
    /// `(id, first_ms, last_ms, evidence JSON)` of the rule of `topic` saying `statement`.
    fn stated_rule(&mut self, user: &str, topic: &str, statement: &str) -> anyhow::Result<Option<(i64, i64, i64, String)>>;
    /// Set a rule's first and last statement times and evidence; its confidence becomes the
    /// greater of the stored one and `confidence`.
    fn restate_rule(&mut self, user: &str, id: i64, first_ms: i64, last_ms: i64, evidence: &str, confidence: f32) -> anyhow::Result<()>;
    /// Insert a rule first and last stated at `at_ms`.
    fn insert_reflected_rule(&mut self, user: &str, d: &RuleDraft, embedding: &[f32], at_ms: i64, evidence: &str, now: i64) -> anyhow::Result<()>;
    /// The topic's rules, newest first (by `last_ms`, ties by statement in byte order, descending).
    fn topic_rules(&mut self, user: &str, topic: &str) -> anyhow::Result<Vec<TopicRule>>;
    fn set_rule_state(&mut self, user: &str, id: i64, superseded_by: Option<i64>, invalid_ms: Option<i64>) -> anyhow::Result<()>;
}

/// Run `write` (the tier's writes) and the tier's `completed` record, under the user's lock,
/// unless the tier already completed for this job (then the stored result, with
/// `already_committed: true`) or the job row is gone (its user was forgotten while the job
/// was in flight: nothing is written, or the memory would come back after the forgetting).
/// Runs inside one write transaction, which a backend may run again from the start.
pub fn commit_tier(
    tx: &mut dyn TierSql,
    job: &ReflectionJob,
    tier: Tier,
    latency_ms: f64,
    write: impl FnOnce(&mut dyn TierSql) -> anyhow::Result<Value>,
) -> anyhow::Result<Value> {
    tx.lock_user(&job.user_id)?;
    if let Some(result) = tx.completed_tier(&job.job_id, tier)? {
        let mut v: Value = result
            .and_then(|s| serde_json::from_str(&s).ok())
            .unwrap_or(Value::Null);
        if let Value::Object(m) = &mut v {
            m.insert("already_committed".into(), Value::Bool(true));
        }
        return Ok(v);
    }
    if !tx.job_exists(&job.user_id, &job.job_id)? {
        return Ok(json!({"dropped": "the job's user was forgotten; nothing written"}));
    }
    let result = write(tx)?;
    tx.record_completed(&job.job_id, tier, &result.to_string(), latency_ms, now_ms())?;
    Ok(result)
}

/// True when reflection of `job` must not write the memory `signature` of `tier`: a
/// tombstone names that job or one of its evidence ids ([`tombstone_applies`]).
fn tombstoned(
    tx: &mut dyn TierSql,
    job: &ReflectionJob,
    tier: EditTier,
    signature: &str,
    evidence: &[String],
) -> anyhow::Result<bool> {
    Ok(tx
        .tombstones(&job.user_id, tier, signature)?
        .iter()
        .any(|(source, ev)| {
            tombstone_applies(source.as_deref(), ev.as_deref(), &job.job_id, evidence)
        }))
}

/// Tier 2: the episode (or the decision to keep none) for a job. An episode the user edited
/// or deleted is kept as the user left it; otherwise what an earlier run of this job wrote is
/// replaced. `context`: the text of the turn before it in its session, indexed for
/// full-text search (weighted below the episode's own text) but never shown.
pub fn commit_episode(
    tx: &mut dyn TierSql,
    job: &ReflectionJob,
    speaker: &str,
    draft: Option<&EpisodeDraft>,
    embedding: Option<&[f32]>,
    context: &str,
) -> anyhow::Result<Value> {
    let user = job.user_id.as_str();
    let evidence = job.evidence();
    if tx.has_tombstones(user, EditTier::Episodic)?
        && tombstoned(
            tx,
            job,
            EditTier::Episodic,
            &episode_signature(&job.job_id),
            &evidence,
        )?
    {
        return Ok(
            json!({"episode_id": null, "skipped": "edited or deleted by the user; reflection keeps the user's version"}),
        );
    }
    tx.delete_job_episodes(user, &job.job_id)?;
    let (Some(d), Some(e)) = (draft, embedding) else {
        return Ok(json!({"episode_id": null, "skipped": "small talk: nothing worth remembering"}));
    };
    let id = tx.insert_reflected_episode(&ReflectedEpisode {
        user,
        job_id: &job.job_id,
        speaker,
        draft: d,
        embedding: e,
        evidence: &serde_json::to_string(&evidence)?,
        context,
        observed_ms: job.timestamp.timestamp_millis(),
        now: now_ms(),
    })?;
    Ok(json!({"episode_id": id, "importance": d.importance, "tags": d.tags}))
}

/// Tier 3: resolve entities to one node per real thing for this user, end the facts the
/// turn says stopped holding, then add the relations and re-derive validity of every
/// exclusive slot they touch.
///
/// - An ending ([`GraphDraft::ends`]) makes the slot's valid facts stated by other turns,
///   valid from its time or earlier, invalid at its time. Endings come first.
/// - An exclusive fact is inserted once per (subject, predicate, object, valid_at) and its
///   slot re-derived ([`rederive_slot`]).
/// - An accumulating fact has one row per (subject, predicate, object), valid from the
///   earliest turn that stated it, with the union of their evidence: both are commutative,
///   so the processing order does not matter. A row that a turn ended before this
///   statement stays ended, and the statement starts a new row.
pub fn commit_graph(
    tx: &mut dyn TierSql,
    job: &ReflectionJob,
    draft: &GraphDraft,
) -> anyhow::Result<Value> {
    let user = job.user_id.as_str();
    let evidence = job.evidence();
    let evidence_json = serde_json::to_string(&evidence)?;
    let now = now_ms();
    let mut kinds: HashMap<String, &str> = HashMap::new();
    let mut entity_ids = BTreeSet::new();
    for e in &draft.entities {
        kinds.insert(norm_name(&e.name), e.kind.as_str());
        let id = tx.resolve_entity(user, &e.name, &e.kind, now)?;
        entity_ids.insert(id);
        for a in &e.aliases {
            let an = norm_name(a);
            if !an.is_empty() {
                tx.add_alias(user, &an, id)?;
            }
        }
    }
    let mut ended = 0u64;
    for e in &draft.ends {
        let s = tx.resolve_entity(user, &e.subject, "person", now)?;
        let at = e.at.timestamp_millis();
        let Some(name) = &e.object else {
            ended += tx.end_facts(user, s, &e.predicate, None, at, &job.job_id)?;
            continue;
        };
        // The named value, and every valid value of the slot it names by its last words
        // ("coffee" ends "black coffee").
        let o = tx.resolve_entity(user, name, "other", now)?;
        let named = norm_name(name);
        let mut objects = BTreeSet::from([o]);
        for (id, norm) in tx.valid_objects(user, s, &e.predicate)? {
            if names_the_value(&named, &norm) {
                objects.insert(id);
            }
        }
        for o in objects {
            ended += tx.end_facts(user, s, &e.predicate, Some(o), at, &job.job_id)?;
        }
    }
    let mut relation_ids = Vec::new();
    let edited = tx.has_tombstones(user, EditTier::Semantic)?;
    for r in &draft.relations {
        let kind_of = |n: &str| kinds.get(&norm_name(n)).copied().unwrap_or("other");
        let s = tx.resolve_entity(user, &r.subject, kind_of(&r.subject), now)?;
        let o = tx.resolve_entity(user, &r.object, kind_of(&r.object), now)?;
        if edited {
            let sig = fact_signature(
                &tx.entity_norm(user, s)?,
                &r.predicate,
                &tx.entity_norm(user, o)?,
            );
            if tombstoned(tx, job, EditTier::Semantic, &sig, &evidence)? {
                continue;
            }
        }
        entity_ids.insert(s);
        entity_ids.insert(o);
        let valid = r.valid_at.timestamp_millis();
        let open = match r.exclusive {
            true => None,
            false => tx.open_fact(user, s, &r.predicate, o, valid)?,
        };
        match open {
            Some((id, v, ev)) => {
                let earlier = (valid < v).then_some((valid, r.fact.as_str()));
                tx.restate_fact(user, id, earlier, &union_json(&ev, &evidence))?;
            }
            None => tx.insert_reflected_fact(&ReflectedFact {
                user,
                subject: s,
                predicate: &r.predicate,
                object: o,
                fact: &r.fact,
                exclusive: r.exclusive,
                valid_ms: valid,
                evidence: &evidence_json,
                job_id: &job.job_id,
                now,
            })?,
        }
        if r.exclusive {
            rederive_slot(tx, user, s, &r.predicate)?;
        }
        relation_ids.push(format!("{} {} {}", r.subject, r.predicate, r.object));
    }
    Ok(json!({"entities": entity_ids.len(), "relations": relation_ids, "ended": ended}))
}

/// Tier 4: de-duplicate each rule by (topic, statement), then make the most recently stated
/// rule of each touched topic the active one ([`rederive_topic`]). A draft of kind
/// [`REVOCATION`] writes no rule: it ends its topic's rule stated at or before the turn
/// ([`revoke_topic`]).
pub fn commit_rules(
    tx: &mut dyn TierSql,
    job: &ReflectionJob,
    drafts: &[(RuleDraft, Vec<f32>)],
) -> anyhow::Result<Value> {
    let user = job.user_id.as_str();
    let evidence = job.evidence();
    let evidence_json = serde_json::to_string(&evidence)?;
    let ts = job.timestamp.timestamp_millis();
    let mut topics = BTreeSet::new();
    let edited = tx.has_tombstones(user, EditTier::Procedural)?;
    let mut ended = 0u64;
    for (d, emb) in drafts {
        if d.kind == REVOCATION {
            ended += revoke_topic(tx, user, &d.topic, ts)?;
            topics.insert(d.topic.as_str());
            continue;
        }
        let sig = rule_signature(&d.topic, &d.statement);
        if edited && tombstoned(tx, job, EditTier::Procedural, &sig, &evidence)? {
            continue;
        }
        match tx.stated_rule(user, &d.topic, &d.statement)? {
            Some((id, first, last, ev)) => {
                let ev = union_json(&ev, &evidence);
                tx.restate_rule(user, id, first.min(ts), last.max(ts), &ev, d.confidence)?
            }
            None => tx.insert_reflected_rule(user, d, emb, ts, &evidence_json, now_ms())?,
        }
        topics.insert(d.topic.as_str());
    }
    for t in &topics {
        rederive_topic(tx, user, t)?;
    }
    let rules: Vec<&String> = drafts
        .iter()
        .filter(|(d, _)| d.kind != REVOCATION)
        .map(|(d, _)| &d.statement)
        .collect();
    Ok(json!({"rules": rules, "ended": ended}))
}

/// Re-derive validity in an exclusive slot (subject, predicate) from its facts' own times
/// ([`slot_rows`]: restatements merged into their run's first fact, each run's first fact
/// invalid from the next run's `valid_ms`). A pure function of the set of facts, so the
/// processing order cannot matter.
pub fn rederive_slot(
    tx: &mut dyn TierSql,
    user: &str,
    subject: i64,
    predicate: &str,
) -> anyhow::Result<()> {
    let facts = tx.slot_facts(user, subject, predicate)?;
    tx.set_slot_rows(user, &slot_rows(&facts))
}

/// Re-derive which rule of a topic is active ([`topic_rows`]): the one stated last (ties: by
/// statement), unless the topic was ended at or after that ([`revoke_topic`]); the others are
/// superseded by it.
pub fn rederive_topic(tx: &mut dyn TierSql, user: &str, topic: &str) -> anyhow::Result<()> {
    let rules = tx.topic_rules(user, topic)?;
    for (id, superseded_by, invalid_ms) in topic_rows(&rules) {
        tx.set_rule_state(user, id, superseded_by, invalid_ms)?;
    }
    Ok(())
}

/// A turn ended `topic` at `at_ms` without naming a replacement: its rule stated last at or
/// before `at_ms` is marked ended (`superseded_by` = itself, `invalid_ms` = `at_ms`, the
/// latest ending kept); [`rederive_topic`] then decides what is active. A rule ended by a
/// revocation keeps that mark when it is not the newest (it is inactive either way), so a
/// later re-derivation still knows the topic was ended and does not bring the ended rule
/// back. Nothing is inserted; re-applying the same ending changes nothing. Returns the
/// number of rules marked (0 or 1).
pub fn revoke_topic(
    tx: &mut dyn TierSql,
    user: &str,
    topic: &str,
    at_ms: i64,
) -> anyhow::Result<u64> {
    // The topic's rules newest first: the first stated at or before the ending.
    let rules = tx.topic_rules(user, topic)?;
    let Some(r) = rules.iter().find(|r| r.last_ms <= at_ms) else {
        return Ok(0);
    };
    let at = match (r.superseded_by == Some(r.id), r.invalid_ms) {
        (true, Some(prev)) => prev.max(at_ms),
        _ => at_ms,
    };
    tx.set_rule_state(user, r.id, Some(r.id), Some(at))?;
    Ok(1)
}
