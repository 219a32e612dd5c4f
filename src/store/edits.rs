//! Memory editing, written once for both backends: explicit adds, updates and deletes of one
//! episode, fact or rule, each with its audit record (`memory_edits`: who, when, before,
//! after) and the tombstone that keeps re-reflection from writing back what a user changed
//! or deleted.
//!
//! Each flow here runs inside one write transaction of a backend and reaches the database
//! only through [`EditSql`]: one method per statement, each scoped to the user, implemented
//! in `sqlite/edits.rs` and `postgres/edits.rs` (SQL text and parameter binding only). An id
//! of another user's memory is "not found".
//!
//! A tombstone names a memory as reflection would write it again (see migration 009): its
//! signature ([`episode_signature`], [`fact_signature`], [`rule_signature`]), the job that
//! wrote it and that memory's evidence ids; the tier commits skip a memory whose signature is
//! tombstoned for the job being reflected or for any of its evidence ids
//! ([`super::derive::tombstone_applies`]). A NEW turn saying the same thing again is new
//! evidence and is remembered again.

use anyhow::Context;
use serde_json::{Value, json};

use super::derive::{episode_signature, fact_signature, rule_signature};
use super::model::{
    Columns, EditRefused, EditTier, EpisodePatch, EpisodeRow, FactPatch, FactRow, NewEpisode,
    NewFact, NewRule, RulePatch, RuleRow,
};
use super::sql::SqlValue::{Real, Text};
use super::tiers::{self, TierSql};
use super::{ms_to_rfc3339, now_ms};

/// One audit record of `memory_edits`, as [`EditSql::record`] inserts it. The tombstone
/// fields (`signature`, `source_job_id`, `evidence`) are `None` for an add.
#[derive(Debug)]
pub struct EditRecord<'a> {
    pub user: &'a str,
    pub tier: EditTier,
    pub memory_id: i64,
    /// `add`, `update` or `delete`.
    pub action: &'a str,
    pub actor: &'a str,
    /// When, in ms since the Unix epoch.
    pub at_ms: i64,
    /// The memory as JSON text, before and after.
    pub before: Option<String>,
    pub after: Option<String>,
    pub signature: Option<&'a str>,
    /// `None` for a rule (one rule, many turns: matched by evidence only).
    pub source_job_id: Option<&'a str>,
    /// The evidence ids as a JSON array text.
    pub evidence: Option<String>,
}

/// A fact as the edit flows read it: the row, and what its tombstone and slot need.
#[derive(Debug)]
pub struct FactParts {
    pub row: FactRow,
    pub job_id: String,
    pub subject_id: i64,
    pub exclusive: bool,
    /// The subject's and object's `norm_name`, for [`fact_signature`].
    pub subject_norm: String,
    pub object_norm: String,
}

/// A rule as the edit flows read it: the row, with `confidence` as each backend stores it
/// (SQLite f64, PostgreSQL `real` widened to f64) and the time it was last stated (ms).
#[derive(Debug)]
pub struct RuleParts {
    pub row: RuleRow,
    pub confidence: f64,
    pub last_ms: i64,
}

/// The `SELECT` whose columns [`FactParts::from_columns`] reads: [`super::FACT_SELECT`]'s,
/// then the job, subject id, exclusivity and both entities' `norm_name`.
pub const FACT_PARTS_SELECT: &str =
    "SELECT r.id, s.name, r.predicate, o.name, r.fact, r.valid_ms, r.invalid_ms, r.evidence,
            r.job_id, r.subject_id, r.exclusive, s.norm_name, o.norm_name
     FROM relations r JOIN entities s ON s.id = r.subject_id JOIN entities o ON o.id = r.object_id";

impl FactParts {
    /// A fact from a row of [`FACT_PARTS_SELECT`].
    pub fn from_columns<R: Columns>(r: &R) -> Result<Self, R::Error> {
        Ok(Self {
            row: FactRow::from_columns(r)?,
            job_id: r.text(8)?,
            subject_id: r.int(9)?,
            exclusive: r.flag(10)?,
            subject_norm: r.text(11)?,
            object_norm: r.text(12)?,
        })
    }
}

impl RuleParts {
    /// A rule from a row of [`super::RULE_SELECT`].
    pub fn from_columns<R: Columns>(r: &R) -> Result<Self, R::Error> {
        Ok(Self {
            row: RuleRow::from_columns(r)?,
            confidence: r.double(4)?,
            last_ms: r.int(5)?,
        })
    }
}

/// The statements of the edit flows, one method each, every one scoped to `user`. A backend
/// implements it on its open write transaction; nothing here decides anything.
// One line per statement (rustfmt would fold the longer ones), so the list reads as a table.
#[rustfmt::skip]
pub trait EditSql: TierSql {
    fn episode(&mut self, user: &str, id: i64) -> anyhow::Result<Option<EpisodeRow>>;
    /// The fact `id`, unless it is a restatement merged into another.
    fn fact(&mut self, user: &str, id: i64) -> anyhow::Result<Option<FactParts>>;
    /// The `evidence` JSON texts of the rows merged into fact `id`.
    fn merged_evidence(&mut self, user: &str, id: i64) -> anyhow::Result<Vec<String>>;
    fn rule(&mut self, user: &str, id: i64) -> anyhow::Result<Option<RuleParts>>;
    /// Insert an audit record; returns its id.
    fn record(&mut self, r: &EditRecord<'_>) -> anyhow::Result<i64>;
    /// Insert an episode with empty evidence; returns its id.
    fn insert_episode(&mut self, user: &str, job_id: &str, e: &NewEpisode, now: i64) -> anyhow::Result<i64>;
    /// Insert a fact with empty evidence; `None` when the same fact is already stored.
    #[allow(clippy::too_many_arguments)]
    fn insert_fact(&mut self, user: &str, subject: i64, object: i64, f: &NewFact, exclusive: bool, job_id: &str, now: i64) -> anyhow::Result<Option<i64>>;
    /// Insert a rule with empty evidence; `None` when the same rule is already stored.
    fn insert_rule(&mut self, user: &str, r: &NewRule, now: i64) -> anyhow::Result<Option<i64>>;
    /// Whether any fact of the slot is exclusive (`None`: the slot has no fact).
    fn slot_exclusive(&mut self, user: &str, subject: i64, predicate: &str) -> anyhow::Result<Option<bool>>;
    /// The fact a row is shown as: the one it was merged into, or itself.
    fn shown_fact(&mut self, user: &str, id: i64) -> anyhow::Result<i64>;
    fn set_episode_text(&mut self, user: &str, id: i64, text: &str, embedding: &[f32]) -> anyhow::Result<()>;
    /// Whether another fact has fact `id`'s subject, predicate and valid_at with `object`.
    fn fact_clash(&mut self, user: &str, id: i64, object: i64) -> anyhow::Result<bool>;
    /// Drop the rows merged into fact `id` and point it at `object`.
    fn set_fact_object(&mut self, user: &str, id: i64, object: i64) -> anyhow::Result<()>;
    /// Whether another rule of `topic` says `statement`.
    fn rule_clash(&mut self, user: &str, topic: &str, statement: &str, id: i64) -> anyhow::Result<bool>;
    fn set_rule_statement(&mut self, user: &str, id: i64, statement: &str, embedding: &[f32]) -> anyhow::Result<()>;
    /// Delete memory `id` of `tier`: a fact with the rows merged into it; a rule so that the
    /// rules it superseded are no longer superseded by it.
    fn delete(&mut self, tier: EditTier, user: &str, id: i64) -> anyhow::Result<()>;
    /// Delete the tier records of the user's jobs; returns how many.
    fn delete_job_tiers_of(&mut self, user: &str) -> anyhow::Result<u64>;
    /// Delete the user's rows of `table`, one of [`USER_TABLES`]; returns how many.
    fn delete_rows_of(&mut self, table: &'static str, user: &str) -> anyhow::Result<u64>;
    /// Record that the user was forgotten at `now` (`forgotten_users`), and delete whatever
    /// the backend derives from the user's rows outside [`USER_TABLES`] (SQLite's
    /// `episode_stamps`).
    fn mark_forgotten(&mut self, user: &str, now: i64) -> anyhow::Result<()>;
}

/// The tables holding a user's rows, in the order forgetting the user deletes from them
/// (a relation names entities, an alias its entity, a turn its job).
pub const USER_TABLES: [&str; 9] = [
    "relations",
    "entity_aliases",
    "entities",
    "rules",
    "episodes",
    "turns",
    "jobs",
    "memory_edits",
    "short_term_summaries",
];

/// Rows removed when a user is forgotten: table name (`job_tiers` and each of
/// [`USER_TABLES`]) → rows.
pub type Removed = std::collections::BTreeMap<String, u64>;

/// Forget a user: every tier, their jobs and tier records, and their edit history; the user
/// is recorded in `forgotten_users` so that a job of theirs still in a broker is dropped on
/// arrival ([`super::Delivery::Forgotten`]). Under the user's lock (PostgreSQL): a tier
/// commit in flight finishes first, and its rows are deleted here, or finds its job gone.
pub fn forget_user(tx: &mut dyn EditSql, user: &str) -> anyhow::Result<Removed> {
    tx.lock_user(user)?;
    let mut removed = Removed::new();
    removed.insert("job_tiers".into(), tx.delete_job_tiers_of(user)?);
    for table in USER_TABLES {
        removed.insert(table.into(), tx.delete_rows_of(table, user)?);
    }
    tx.mark_forgotten(user, now_ms())?;
    Ok(removed)
}

/// One memory as an edit sees it: its JSON (the edit API's shape), what its tombstone
/// names, and what must be re-derived when it changes.
struct Snapshot {
    json: Value,
    /// [`episode_signature`], [`fact_signature`] or [`rule_signature`].
    signature: String,
    /// The job that wrote it; empty for a rule (one rule, many turns: matched by evidence).
    job_id: String,
    /// Its evidence ids; a fact's include those of the restatements merged into it.
    evidence: Vec<String>,
    /// An exclusive fact's slot (subject id, predicate).
    slot: Option<(i64, String)>,
    /// A rule's topic.
    topic: Option<String>,
}

/// The user's memory `id` of `tier` (`None`: no such memory for this user).
fn snapshot(
    tx: &mut dyn EditSql,
    user: &str,
    tier: EditTier,
    id: i64,
) -> anyhow::Result<Option<Snapshot>> {
    Ok(match tier {
        EditTier::Episodic => match tx.episode(user, id)? {
            Some(e) => Some(Snapshot {
                json: serde_json::to_value(&e)?,
                signature: episode_signature(&e.job_id),
                evidence: e.evidence,
                job_id: e.job_id,
                slot: None,
                topic: None,
            }),
            None => None,
        },
        EditTier::Semantic => match tx.fact(user, id)? {
            Some(f) => {
                // A restated fact's rows (merged into this one) carry evidence of the same fact.
                let mut evidence: Vec<String> = f.row.evidence.clone();
                for ev in tx.merged_evidence(user, id)? {
                    evidence.extend(serde_json::from_str::<Vec<String>>(&ev).unwrap_or_default());
                }
                evidence.sort();
                evidence.dedup();
                Some(Snapshot {
                    json: serde_json::to_value(&f.row)?,
                    signature: fact_signature(&f.subject_norm, &f.row.predicate, &f.object_norm),
                    job_id: f.job_id,
                    evidence,
                    slot: f.exclusive.then(|| (f.subject_id, f.row.predicate.clone())),
                    topic: None,
                })
            }
            None => None,
        },
        EditTier::Procedural => tx.rule(user, id)?.map(
            |RuleParts {
                 row: r,
                 confidence,
                 last_ms,
             }| Snapshot {
                json: json!({
                    "id": r.id, "kind": r.kind, "topic": r.topic,
                    "statement": r.statement, "confidence": confidence,
                    "stated_at": ms_to_rfc3339(last_ms), "superseded_by": r.superseded_by,
                    "evidence": r.evidence,
                }),
                signature: rule_signature(&r.topic, &r.statement),
                job_id: String::new(),
                evidence: r.evidence,
                slot: None,
                topic: Some(r.topic),
            },
        ),
    })
}

/// Who edits which memory of which user.
#[derive(Clone, Copy)]
struct Target<'a> {
    user: &'a str,
    actor: &'a str,
    tier: EditTier,
    id: i64,
}

impl<'a> Target<'a> {
    fn new(user: &'a str, actor: &'a str, tier: EditTier, id: i64) -> Self {
        Self {
            user,
            actor,
            tier,
            id,
        }
    }

    /// Insert the audit record of `action`; with `tombstone`, the record also names the
    /// memory as it was, so reflection does not write it back. Returns the record's id.
    fn record(
        self,
        tx: &mut dyn EditSql,
        action: &str,
        before: Option<&Value>,
        after: Option<&Value>,
        tombstone: Option<&Snapshot>,
    ) -> anyhow::Result<i64> {
        tx.record(&EditRecord {
            user: self.user,
            tier: self.tier,
            memory_id: self.id,
            action,
            actor: self.actor,
            at_ms: now_ms(),
            before: before.map(Value::to_string),
            after: after.map(Value::to_string),
            signature: tombstone.map(|t| t.signature.as_str()),
            source_job_id: tombstone
                .map(|t| t.job_id.as_str())
                .filter(|j| !j.is_empty()),
            evidence: tombstone
                .map(|t| serde_json::to_string(&t.evidence))
                .transpose()?,
        })
    }

    /// Re-derive what the memory as it was took part in: its fact slot or its rule topic.
    fn rederive(self, tx: &mut dyn EditSql, was: &Snapshot, topic_too: bool) -> anyhow::Result<()> {
        if let Some((subject, predicate)) = &was.slot {
            tiers::rederive_slot(tx, self.user, *subject, predicate)?;
        }
        match &was.topic {
            Some(topic) if topic_too => tiers::rederive_topic(tx, self.user, topic),
            _ => Ok(()),
        }
    }

    /// After an add of row `row` (shown as this target): the audit record, the row's
    /// evidence `["manual:<edit id>"]`, and the record's `after`. Returns the memory.
    fn added(self, tx: &mut dyn EditSql, row: i64) -> anyhow::Result<Value> {
        let edit = self.record(tx, "add", None, None, None)?;
        let evidence = json!([format!("manual:{edit}")]).to_string();
        tx.set_columns(
            self.tier.table(),
            self.user,
            row,
            &[("evidence", Text(&evidence))],
        )?;
        let after = snapshot(tx, self.user, self.tier, self.id)?
            .with_context(|| format!("{} just added", self.tier.noun()))?;
        tx.set_columns(
            "memory_edits",
            self.user,
            edit,
            &[("after", Text(&after.json.to_string()))],
        )?;
        Ok(after.json)
    }

    /// Change the memory with `apply` (which may refuse), re-derive its slot, and record
    /// the change with a tombstone of the memory as it was. Returns the memory as it is now.
    fn update(
        self,
        tx: &mut dyn EditSql,
        apply: impl FnOnce(&mut dyn EditSql, &Snapshot) -> anyhow::Result<Result<(), EditRefused>>,
    ) -> anyhow::Result<Result<Value, EditRefused>> {
        tx.lock_user(self.user)?;
        let Some(before) = snapshot(tx, self.user, self.tier, self.id)? else {
            return Ok(Err(EditRefused::NotFound(self.tier.noun(), self.id)));
        };
        if let Err(refused) = apply(tx, &before)? {
            return Ok(Err(refused));
        }
        self.rederive(tx, &before, false)?;
        let after = snapshot(tx, self.user, self.tier, self.id)?
            .with_context(|| format!("{} just updated", self.tier.noun()))?;
        self.record(
            tx,
            "update",
            Some(&before.json),
            Some(&after.json),
            Some(&before),
        )?;
        Ok(Ok(after.json))
    }
}

/// Add an episode explicitly. Its job id is `manual:<uuid>` (no turn wrote it) and its
/// evidence `manual:<edit id>`. Returns the episode as JSON.
pub fn add_episode(
    tx: &mut dyn EditSql,
    user: &str,
    actor: &str,
    e: &NewEpisode,
) -> anyhow::Result<Value> {
    tx.lock_user(user)?;
    let job_id = format!("manual:{}", uuid::Uuid::now_v7());
    let id = tx.insert_episode(user, &job_id, e, now_ms())?;
    Target::new(user, actor, EditTier::Episodic, id).added(tx, id)
}

/// Add a fact explicitly (entities resolved like reflection's, aliases included). With
/// `exclusive` unset, the fact is exclusive when any fact of its slot is. Refused with
/// [`EditRefused::Conflict`] when the same fact (subject, predicate, object, valid_at) is
/// stored. Returns the fact as JSON: the slot's current fact when this one restates it.
pub fn add_fact(
    tx: &mut dyn EditSql,
    user: &str,
    actor: &str,
    f: &NewFact,
) -> anyhow::Result<Result<Value, EditRefused>> {
    tx.lock_user(user)?;
    let now = now_ms();
    let s = tx.resolve_entity(user, &f.subject, "other", now)?;
    let o = tx.resolve_entity(user, &f.object, "other", now)?;
    let exclusive = match f.exclusive {
        Some(x) => x,
        None => tx.slot_exclusive(user, s, &f.predicate)?.unwrap_or(false),
    };
    let job_id = format!("manual:{}", uuid::Uuid::now_v7());
    let Some(row) = tx.insert_fact(user, s, o, f, exclusive, &job_id, now)? else {
        return Ok(Err(EditRefused::Conflict(
            "the same fact (subject, predicate, object, valid_at) is already stored".into(),
        )));
    };
    if exclusive {
        tiers::rederive_slot(tx, user, s, &f.predicate)?;
    }
    // A restatement of the slot's current fact (same object, later valid_at) is merged
    // into it by the rederivation: the fact the user sees, and the edit, are that one.
    let id = tx.shown_fact(user, row)?;
    Ok(Ok(
        Target::new(user, actor, EditTier::Semantic, id).added(tx, row)?
    ))
}

/// Add a rule explicitly; it becomes the active rule of its topic (stated now). Refused with
/// [`EditRefused::Conflict`] when the topic already has the statement.
pub fn add_rule(
    tx: &mut dyn EditSql,
    user: &str,
    actor: &str,
    r: &NewRule,
) -> anyhow::Result<Result<Value, EditRefused>> {
    tx.lock_user(user)?;
    let Some(id) = tx.insert_rule(user, r, now_ms())? else {
        return Ok(Err(EditRefused::Conflict(
            "the same rule (topic, statement) is already stored".into(),
        )));
    };
    tiers::rederive_topic(tx, user, &r.topic)?;
    Ok(Ok(
        Target::new(user, actor, EditTier::Procedural, id).added(tx, id)?
    ))
}

/// Change an episode. Its job is tombstoned: re-reflecting the turn keeps this version.
pub fn update_episode(
    tx: &mut dyn EditSql,
    user: &str,
    actor: &str,
    id: i64,
    p: &EpisodePatch,
) -> anyhow::Result<Result<Value, EditRefused>> {
    Target::new(user, actor, EditTier::Episodic, id).update(tx, |tx, _| {
        if let Some((text, emb)) = &p.text {
            tx.set_episode_text(user, id, text, emb)?;
        }
        if let Some(i) = p.importance {
            tx.set_columns("episodes", user, id, &[("importance", Real(f64::from(i)))])?;
        }
        if let Some(t) = &p.tags {
            tx.set_columns(
                "episodes",
                user,
                id,
                &[("tags", Text(&serde_json::to_string(t)?))],
            )?;
        }
        Ok(Ok(()))
    })
}

/// Change a fact's sentence and/or object. The fact as it was is tombstoned, so
/// re-reflecting its turns does not bring the old version back. Refused with
/// [`EditRefused::Conflict`] when another fact already says the new object.
pub fn update_fact(
    tx: &mut dyn EditSql,
    user: &str,
    actor: &str,
    id: i64,
    p: &FactPatch,
) -> anyhow::Result<Result<Value, EditRefused>> {
    Target::new(user, actor, EditTier::Semantic, id).update(tx, |tx, _| {
        if let Some(object) = &p.object {
            let o = tx.resolve_entity(user, object, "other", now_ms())?;
            if tx.fact_clash(user, id, o)? {
                return Ok(Err(EditRefused::Conflict(
                    "another fact already says that (same subject, predicate, object and valid_at)"
                        .into(),
                )));
            }
            // The rows merged into this one are restatements of the old object: they go
            // with it (their evidence is tombstoned with this fact's).
            tx.set_fact_object(user, id, o)?;
        }
        if let Some(fact) = &p.fact {
            tx.set_columns("relations", user, id, &[("fact", Text(fact))])?;
        }
        Ok(Ok(()))
    })
}

/// Change a rule's statement and/or kind. The old statement is tombstoned. Refused with
/// [`EditRefused::Conflict`] when another rule of the topic already says the new statement.
pub fn update_rule(
    tx: &mut dyn EditSql,
    user: &str,
    actor: &str,
    id: i64,
    p: &RulePatch,
) -> anyhow::Result<Result<Value, EditRefused>> {
    Target::new(user, actor, EditTier::Procedural, id).update(tx, |tx, before| {
        if let Some((statement, emb)) = &p.statement {
            let topic = before.topic.as_deref().unwrap_or_default();
            if tx.rule_clash(user, topic, statement, id)? {
                return Ok(Err(EditRefused::Conflict(
                    "another rule of the same topic already says that".into(),
                )));
            }
            tx.set_rule_statement(user, id, statement, emb)?;
        }
        if let Some(kind) = &p.kind {
            tx.set_columns("rules", user, id, &[("kind", Text(kind))])?;
        }
        Ok(Ok(()))
    })
}

/// Delete one episode, fact or rule, re-derive its fact slot or rule topic, and tombstone
/// it. Returns `{"deleted": <memory as it was>}`.
pub fn delete_memory(
    tx: &mut dyn EditSql,
    user: &str,
    actor: &str,
    tier: EditTier,
    id: i64,
) -> anyhow::Result<Result<Value, EditRefused>> {
    tx.lock_user(user)?;
    let target = Target::new(user, actor, tier, id);
    let Some(before) = snapshot(tx, user, tier, id)? else {
        return Ok(Err(EditRefused::NotFound(tier.noun(), id)));
    };
    tx.delete(tier, user, id)?;
    target.rederive(tx, &before, true)?;
    target.record(tx, "delete", Some(&before.json), None, Some(&before))?;
    Ok(Ok(json!({"deleted": before.json})))
}
