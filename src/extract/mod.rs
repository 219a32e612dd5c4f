//! Extraction: turning one turn into drafts for the three reflected tiers.
//!
//! Everything here is a pure function of the turn (text, speaker, timestamp, time zone):
//! no I/O, no clock, no randomness. The reflector's processors (`crate::reflect`) call these
//! and then commit the drafts to the store, so the same turn always yields the same drafts
//! and re-processing a job can never produce something new.
//!
//! - [`time`]: relative time expressions ("yesterday", "last Friday", "next month") resolved
//!   to absolute dates against the turn's own timestamp, never the processing time.
//! - [`curate`]: Tier 2 — which turns are worth remembering, and the self-contained episode text.
//! - [`graph`]: Tier 3 — entities and relations (facts) of the per-user knowledge graph.
//! - [`rules`]: Tier 4 — preferences, instructions and constraints.
//! - [`words`]: whole-word tokenisation and matching shared by all of the above (never substrings:
//!   "hi" must not match "this").

pub mod clause;
pub mod curate;
pub mod graph;
pub mod rules;
pub mod slots;
pub mod time;
pub mod words;

use chrono::{DateTime, FixedOffset, NaiveDate, Utc};

/// One turn as the processors see it.
#[derive(Debug, Clone)]
pub struct TurnView {
    /// The user whose memory this is. Every draft belongs to this user only.
    pub user_id: String,
    /// Who "I" is in `text`: `metadata.speaker` when given, else the user id.
    pub speaker: String,
    /// What the speaker said (the turn's `user_message`), with an image caption appended as
    /// ` [shares a photo: CAPTION]` when the turn carried one.
    pub text: String,
    /// The assistant's reply; may be empty (LoCoMo-style dialogue between two people).
    pub assistant_response: String,
    /// When the turn happened (UTC).
    pub timestamp: DateTime<Utc>,
    /// The same instant in the user's time zone (`metadata.timezone`: IANA name or UTC offset),
    /// UTC when none was given. Relative dates are resolved against `local.date_naive()`.
    pub local: DateTime<FixedOffset>,
}

impl TurnView {
    /// The calendar date of the turn in the user's time zone.
    pub fn local_date(&self) -> NaiveDate {
        self.local.date_naive()
    }
}

/// A Tier 2 episode before it is stored.
#[derive(Debug, Clone, PartialEq)]
pub struct EpisodeDraft {
    /// Self-contained text: who (the speaker's name, not "I"), what, and when, with relative
    /// times followed by their absolute date, e.g.
    /// `"[8 May 2023] Caroline: I went to a LGBTQ support group yesterday (7 May 2023)."`.
    pub text: String,
    /// One short line for listings (≤ 200 characters).
    pub summary: String,
    /// 0.0 ..= 1.0; higher for events, decisions, plans and facts about people.
    pub importance: f32,
    /// Lower-case topical tags (e.g. `"family"`, `"work"`, `"plan"`), de-duplicated.
    pub tags: Vec<String>,
    /// Event time: the date the turn talks about when it names one ("yesterday" → the day
    /// before the turn, at noon local time), else the turn's own timestamp.
    pub occurred_at: DateTime<Utc>,
}

/// A Tier 3 entity mention before resolution against the user's graph.
#[derive(Debug, Clone, PartialEq)]
pub struct EntityDraft {
    /// Canonical display name ("Sarah", "Berlin", "Google").
    pub name: String,
    /// `person`, `place`, `organization`, `event`, `thing` or `other`.
    pub kind: String,
    /// Other names for the same thing stated in this turn ("my mom Sarah" → `["mom"]`).
    pub aliases: Vec<String>,
}

/// A Tier 3 relation (fact) before it is stored.
#[derive(Debug, Clone, PartialEq)]
pub struct RelationDraft {
    /// Entity name of the subject (the speaker's name for "I").
    pub subject: String,
    /// UPPER_SNAKE predicate, e.g. `LIVES_IN`, `WORKS_AT`, `HAS_PET`.
    pub predicate: String,
    /// Entity name of the object.
    pub object: String,
    /// The fact as a sentence that stands alone ("Caroline lives in Berlin.").
    pub fact: String,
    /// When the fact became true: the turn's timestamp unless the text dates it.
    pub valid_at: DateTime<Utc>,
    /// True when the slot (subject, predicate) holds one value at a time — where someone
    /// lives, their job, their relationship status — so a newer fact of the slot invalidates
    /// the older one. False for facts that accumulate (likes, has visited, has a pet).
    pub exclusive: bool,
}

/// A Tier 3 ending: the turn says a fact stopped holding ("I moved out of Oslo", "we broke
/// up", "I'm not vegan anymore") without necessarily naming what replaced it.
#[derive(Debug, Clone, PartialEq)]
pub struct EndDraft {
    /// Entity name of the subject.
    pub subject: String,
    /// The predicate whose facts end (`LIVES_IN`, `WORKS_AT`, …).
    pub predicate: String,
    /// Only the fact with this object ends; `None`: every valid fact of the slot.
    pub object: Option<String>,
    /// When it stopped holding: the date the sentence names, else the turn's timestamp.
    /// Only facts valid from this time or earlier end.
    pub at: DateTime<Utc>,
}

/// Everything Tier 3 learns from one turn.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct GraphDraft {
    pub entities: Vec<EntityDraft>,
    pub relations: Vec<RelationDraft>,
    /// Facts the turn ends, applied before `relations` are added.
    pub ends: Vec<EndDraft>,
}

/// The [`RuleDraft::kind`] of a revocation: the turn ends the rule of `topic` without
/// stating a new one.
pub const REVOCATION: &str = "revocation";

/// A Tier 4 rule before it is stored.
#[derive(Debug, Clone, PartialEq)]
pub struct RuleDraft {
    /// `preference`, `instruction` or `constraint`; or [`REVOCATION`]: the turn ends the
    /// topic's rule without a replacement ("you can forget the bullet-point thing", "I'm not
    /// vegan anymore", "stop calling me Dr Okafor"). A revocation is never stored as a rule
    /// (its `statement` only describes the ending, for the embedder and the logs): the store
    /// marks the topic's rule stated at or before the turn as ended (`superseded_by` = its
    /// own id, `invalid_at` = the turn's time), and no rule of the topic is active until one
    /// is stated again.
    pub kind: String,
    /// The rule as a sentence about the user ("Caroline prefers answers in Spanish.").
    pub statement: String,
    /// 0.0 ..= 1.0: how sure the extractor is.
    pub confidence: f32,
    /// The slot this rule fills ("language", "diet", "coffee", "contact_time"): a newer rule
    /// of the same topic with a different statement supersedes the older one.
    pub topic: String,
}

/// The relations `fact` states about `subject`, as the clause analysis reads them: the
/// predicates of the relations [`graph::extract`] gives for `fact` read as a turn that
/// `subject` says, whose subject is `subject` (compared case-insensitively), each once, in
/// the order the analysis gives them. The editing API refuses an explicit fact whose text
/// states relations of which none is its predicate (`crate::api::edit`).
///
/// Empty when the analysis reads no relation of `subject` in the text: a predicate it does
/// not know (`OWNS_CAR`), or text it cannot read. Pure, like everything here: the turn is
/// dated at a fixed instant (2000-01-01T00:00:00Z, UTC), never the clock, so the same text
/// always gives the same answer.
pub fn stated_predicates(subject: &str, fact: &str) -> Vec<String> {
    let at = DateTime::<Utc>::from_timestamp(946_684_800, 0)
        .expect("2000-01-01T00:00:00Z is a valid instant");
    let turn = TurnView {
        user_id: "edit".into(),
        speaker: subject.into(),
        text: fact.into(),
        assistant_response: String::new(),
        timestamp: at,
        local: at.with_timezone(&FixedOffset::east_opt(0).expect("UTC is a valid offset")),
    };
    let who = subject.trim().to_lowercase();
    let mut out: Vec<String> = Vec::new();
    // The text as written, then as the subject would say it ("Eli has a dog named Rex." →
    // "I have a dog named Rex.", "Omar's wife is Layla." → "My wife is Layla."), so that the
    // first-person patterns read third-person facts too.
    let first_person = TurnView {
        text: in_first_person(subject, fact),
        ..turn.clone()
    };
    for t in [&turn, &first_person] {
        for r in graph::extract(t).relations {
            if r.subject.trim().to_lowercase() == who && !out.contains(&r.predicate) {
                out.push(r.predicate);
            }
        }
    }
    out
}

/// `fact` with a leading `subject` turned into the first person: "NAME's" → "My", "NAME is" →
/// "I am", "NAME has" → "I have", "NAME studies" → "I study" (a third-person "-s" dropped).
fn in_first_person(subject: &str, fact: &str) -> String {
    let s = subject.trim();
    let Some(rest) = fact.trim().strip_prefix(s) else {
        return fact.to_string();
    };
    if let Some(r) = rest
        .strip_prefix("'s ")
        .or_else(|| rest.strip_prefix("’s "))
    {
        return format!("My {r}");
    }
    let rest = rest.trim_start();
    let (verb, tail) = rest.split_once(' ').unwrap_or((rest, ""));
    let verb = match verb {
        "is" => "am".to_string(),
        "has" => "have".to_string(),
        "was" | "had" => verb.to_string(),
        v if v.ends_with("ies") => format!("{}y", &v[..v.len() - 3]),
        v if v.ends_with("es")
            && (v.ends_with("shes")
                || v.ends_with("ches")
                || v.ends_with("xes")
                || v.ends_with("sses")) =>
        {
            v[..v.len() - 2].to_string()
        }
        v if v.ends_with('s') && !v.ends_with("ss") => v[..v.len() - 1].to_string(),
        v => v.to_string(),
    };
    format!("I {verb} {tail}")
}
