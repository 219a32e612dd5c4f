//! Pure derivations both backends share: name normalisation, evidence union, tombstone
//! signatures, token estimates of a turn, and the export format's field codecs. No SQL: each
//! backend reads rows, calls these, and writes what they return.

use std::collections::BTreeSet;
use std::io::BufRead;

use anyhow::{Context as _, bail};
use serde_json::Value;

use super::model::{InsertOutcome, QueueLimits, Window};

/// Normalised entity name or alias: lower case, words only, without a leading "my"/"the"/"a".
pub fn norm_name(s: &str) -> String {
    let words: Vec<String> = s
        .split(|c: char| !(c.is_alphanumeric() || c == '\''))
        .filter(|w| !w.is_empty())
        .map(|w| w.to_lowercase())
        .collect();
    let skip = words
        .iter()
        .take_while(|w| matches!(w.as_str(), "my" | "the" | "a" | "an" | "our"))
        .count();
    words[skip.min(words.len())..].join(" ")
}

/// Union of a stored JSON string array and new items, sorted, as JSON text.
pub(crate) fn union_json(stored: &str, add: &[String]) -> String {
    let mut set: BTreeSet<String> = serde_json::from_str::<Vec<String>>(stored)
        .unwrap_or_default()
        .into_iter()
        .collect();
    set.extend(add.iter().cloned());
    serde_json::to_string(&set).unwrap_or_else(|_| "[]".into())
}

/// The tombstone signature of an episode.
pub(crate) fn episode_signature(job_id: &str) -> String {
    format!("job:{job_id}")
}

/// The tombstone signature of a fact, from its entities' normalised names.
pub(crate) fn fact_signature(subject_norm: &str, predicate: &str, object_norm: &str) -> String {
    format!("{subject_norm}|{predicate}|{object_norm}")
}

/// The tombstone signature of a rule.
pub(crate) fn rule_signature(topic: &str, statement: &str) -> String {
    format!("{topic}|{statement}")
}

/// Whether an ending that names `named` (a normalised name) ends the stored value `stored`
/// (normalised): the same name, or a name whose last words are `named` ("coffee" names
/// "black coffee" and "iced coffee", not "coffee shop"; "baking" names "sourdough baking").
/// A turn that gives up a thing names its head noun more often than the exact phrase it
/// was first stated with.
pub(crate) fn names_the_value(named: &str, stored: &str) -> bool {
    !named.is_empty()
        && (stored == named
            || stored
                .strip_suffix(named)
                .is_some_and(|head| head.ends_with(' ')))
}

/// Jobs by state from rows of `(state, jobs)`: every state of [`crate::job::JobState`] is a
/// key, zero when the rows do not name it.
pub(crate) fn job_counts(
    rows: impl IntoIterator<Item = (String, i64)>,
) -> std::collections::HashMap<String, i64> {
    let mut out: std::collections::HashMap<String, i64> = crate::job::JobState::ALL
        .iter()
        .map(|s| (s.as_str().to_string(), 0))
        .collect();
    out.extend(rows);
    out
}

/// Estimated tokens of one turn (message and response), as the window counts them.
pub(crate) fn turn_tokens(user_message: &str, assistant: &str) -> usize {
    crate::tokens::estimate_tokens(user_message) + crate::tokens::estimate_tokens(assistant)
}

/// Given a user's unfolded turns newest first, as (user message, assistant response), the
/// index of the newest turn outside window `w`: the first that makes the count pass
/// `max_turns` or the estimated tokens ([`turn_tokens`]) pass `max_tokens`. That turn and
/// every older one may be folded. `None`: all of them fit.
pub(crate) fn window_edge<'a>(
    w: Window,
    newest_first: impl IntoIterator<Item = (&'a str, &'a str)>,
) -> Option<usize> {
    let mut tokens = 0usize;
    for (i, (message, response)) in newest_first.into_iter().enumerate() {
        tokens += turn_tokens(message, response);
        if i + 1 > w.max_turns || tokens > w.max_tokens {
            return Some(i);
        }
    }
    None
}

/// The `format` of the header line.
pub const FORMAT: &str = "memory-reflector-export";

/// The schema version this build writes and reads.
pub const VERSION: u64 = 1;

/// Little-endian f32 bytes as hex (exact, unlike decimal floats).
pub(crate) fn vec_hex(blob: &[u8]) -> String {
    blob.iter().map(|b| format!("{b:02x}")).collect()
}

pub(crate) fn hex_vec(s: &str) -> anyhow::Result<Vec<u8>> {
    if !s.len().is_multiple_of(8) {
        bail!("embedding: hex length {} is not a multiple of 8", s.len());
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).context("embedding: not hexadecimal"))
        .collect()
}

pub(crate) fn ms(v: &Value, field: &str) -> anyhow::Result<i64> {
    let s = v[field]
        .as_str()
        .with_context(|| format!("{field}: expected an RFC 3339 string"))?;
    crate::job::parse_timestamp(s)
        .map(|t| t.timestamp_millis())
        .with_context(|| format!("{field}: {s:?} is not an RFC 3339 timestamp"))
}

pub(crate) fn opt_ms(v: &Value, field: &str) -> anyhow::Result<Option<i64>> {
    if v[field].is_null() {
        Ok(None)
    } else {
        ms(v, field).map(Some)
    }
}

pub(crate) fn s<'a>(v: &'a Value, field: &str) -> anyhow::Result<&'a str> {
    v[field]
        .as_str()
        .with_context(|| format!("{field}: expected a string"))
}

/// The key an entity is found by: its [`norm_name`], or, for a name with no word left after
/// normalising (only punctuation or "the"), the trimmed name in lower case.
pub(crate) fn entity_key(name: &str) -> String {
    let n = norm_name(name);
    if n.is_empty() {
        name.trim().to_lowercase()
    } else {
        n
    }
}

/// One fact row of an exclusive slot after re-derivation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SlotRow {
    pub id: i64,
    /// When the fact stopped holding (the next run's `valid_ms`), `None` while current.
    pub invalid_ms: Option<i64>,
    /// The run's first fact, for a restatement merged into it; `None` for a run's head.
    pub merged_into: Option<i64>,
}

/// Re-derive validity in an exclusive slot (subject, predicate) from its facts' own times.
/// `facts` are `(id, object_id, valid_ms)` in time order (ties by the object's normalised
/// name, then id). A fact with the same object as the run before it is a restatement and is
/// merged into the run's first fact; each run's first fact is invalid from the `valid_ms` of
/// the next run. A pure function of the set of facts, so processing order cannot matter.
/// Returns every fact, in the input's order.
pub(crate) fn slot_rows(facts: &[(i64, i64, i64)]) -> Vec<SlotRow> {
    let mut out = Vec::with_capacity(facts.len());
    let mut i = 0;
    while i < facts.len() {
        let (head, object, _) = facts[i];
        let mut j = i + 1;
        while j < facts.len() && facts[j].1 == object {
            j += 1;
        }
        let invalid_ms = facts.get(j).map(|f| f.2);
        for (k, f) in facts[i..j].iter().enumerate() {
            out.push(SlotRow {
                id: f.0,
                invalid_ms,
                merged_into: (k > 0).then_some(head),
            });
        }
        i = j;
    }
    out
}

/// One rule of a topic as [`topic_rows`] reads it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TopicRule {
    pub id: i64,
    /// When it was last stated.
    pub last_ms: i64,
    pub superseded_by: Option<i64>,
    pub invalid_ms: Option<i64>,
}

impl TopicRule {
    /// The time a revocation ended this rule: `superseded_by` is its own id.
    fn ended_at(&self) -> Option<i64> {
        (self.superseded_by == Some(self.id))
            .then_some(self.invalid_ms)
            .flatten()
    }
}

/// Which rule of a topic is active, from `rules` ordered newest first (by `last_ms`, ties by
/// statement, descending): the newest, unless a revocation ended the topic at or after it was
/// stated (the latest ending mark on any of the topic's rules), in which case it keeps an
/// ending mark (`superseded_by` = itself, `invalid_ms` = that ending) and none is active.
/// Every other rule is superseded by the newest from its `last_ms`, except one that carries
/// its own ending mark, which keeps it. Returns `(id, superseded_by, invalid_ms)` for the
/// rows that change. A pure function of the rows, shared by both stores.
pub(crate) fn topic_rows(rules: &[TopicRule]) -> Vec<(i64, Option<i64>, Option<i64>)> {
    let Some(top) = rules.first() else {
        return Vec::new();
    };
    let ended = rules.iter().filter_map(TopicRule::ended_at).max();
    let mut out = Vec::new();
    let top_state = match ended {
        Some(e) if e >= top.last_ms => (Some(top.id), Some(e)),
        _ => (None, None),
    };
    if (top.superseded_by, top.invalid_ms) != top_state {
        out.push((top.id, top_state.0, top_state.1));
    }
    for r in &rules[1..] {
        if r.ended_at().is_some() {
            continue;
        }
        let state = (Some(top.id), Some(top.last_ms));
        if (r.superseded_by, r.invalid_ms) != state {
            out.push((r.id, state.0, state.1));
        }
    }
    out
}

/// Whether one tombstone (its `source_job_id`, and its `evidence` as a JSON string array)
/// keeps reflection of `job_id`, whose evidence ids are `evidence`, from writing the memory
/// again: it names that job, or one of those evidence ids.
pub(crate) fn tombstone_applies(
    source_job_id: Option<&str>,
    tombstone_evidence: Option<&str>,
    job_id: &str,
    evidence: &[String],
) -> bool {
    if source_job_id == Some(job_id) {
        return true;
    }
    let ev: Vec<String> = tombstone_evidence
        .and_then(|s| serde_json::from_str(s).ok())
        .unwrap_or_default();
    evidence.iter().any(|e| ev.contains(e))
}

/// Append folded episode texts to a running summary, one line each (newlines inside a text
/// become spaces).
pub(crate) fn append_to_summary<'a>(
    summary: &mut String,
    texts: impl IntoIterator<Item = &'a str>,
) {
    for t in texts {
        if !summary.is_empty() {
            summary.push('\n');
        }
        summary.push_str(&t.replace('\n', " "));
    }
}

/// The summary bounded to `max_tokens`: its newest lines whose estimate
/// (`crate::tokens::estimate_tokens`) fits, and at least the newest line.
pub(crate) fn trim_summary(summary: &str, max_tokens: usize) -> String {
    let mut lines: Vec<&str> = summary.lines().collect();
    while lines.len() > 1 && crate::tokens::estimate_tokens(&lines.join("\n")) > max_tokens {
        lines.remove(0);
    }
    lines.join("\n")
}

/// The header line of an export of `user`'s memory, embedded with `model`.
pub(crate) fn export_header(user: &str, model: &str) -> Value {
    serde_json::json!({"type": "header", "format": FORMAT, "version": VERSION, "user_id": user,
                       "exported_at": crate::store::ms_to_rfc3339(crate::store::now_ms()), "embedding_model": model})
}

/// Read an export: its non-blank lines as JSON, the header checked (format and version).
/// Returns the lines (header first) and the user id the header names. Errors name the line.
pub(crate) fn read_export(input: &mut dyn BufRead) -> anyhow::Result<(Vec<Value>, String)> {
    let mut lines: Vec<Value> = Vec::new();
    for (i, l) in input.lines().enumerate() {
        let l = l.with_context(|| format!("line {}", i + 1))?;
        if l.trim().is_empty() {
            continue;
        }
        lines.push(serde_json::from_str(&l).with_context(|| format!("line {}: not JSON", i + 1))?);
    }
    let Some(header) = lines.first() else {
        bail!("the file is empty")
    };
    if header["type"] != "header" || header["format"] != FORMAT {
        bail!("line 1: not a Memory Reflector export (expected a header with format {FORMAT:?})");
    }
    if header["version"].as_u64() != Some(VERSION) {
        bail!(
            "line 1: export version {} is not supported (this build reads {VERSION})",
            header["version"]
        );
    }
    let user = s(header, "user_id").context("line 1")?.to_string();
    Ok((lines, user))
}

/// Whether one more waiting job is admitted, given the user's and the service's counts of
/// waiting jobs (`queued` or `retrying`) before it: `Some(Busy)` naming the first ceiling of
/// `limits` it would reach (the user's is checked first), else `None`.
pub(crate) fn admission(limits: QueueLimits, mine: i64, total: i64) -> Option<InsertOutcome> {
    if mine as u64 >= limits.per_user {
        Some(InsertOutcome::Busy {
            scope: "user",
            depth: mine,
            ceiling: limits.per_user,
        })
    } else if total as u64 >= limits.total {
        Some(InsertOutcome::Busy {
            scope: "total",
            depth: total,
            ceiling: limits.total,
        })
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{blob_to_vec, vec_to_blob};

    #[test]
    fn an_ending_names_a_value_by_its_last_words() {
        assert!(names_the_value("coffee", "coffee"));
        assert!(names_the_value("coffee", "black coffee"));
        assert!(names_the_value("sourdough baking", "sourdough baking"));
        assert!(names_the_value("baking", "sourdough baking"));
        assert!(!names_the_value("coffee", "coffee shop"));
        assert!(!names_the_value("tea", "green teapot"));
        assert!(!names_the_value("black coffee", "coffee"));
        assert!(!names_the_value("", "coffee"));
    }

    #[test]
    fn norm_name_drops_possessives_and_case() {
        assert_eq!(norm_name("My Mom"), "mom");
        assert_eq!(norm_name("the  Eiffel Tower!"), "eiffel tower");
        assert_eq!(norm_name("Sarah"), "sarah");
    }

    #[test]
    fn a_topic_keeps_its_newest_rule_unless_a_revocation_ended_it() {
        let r = |id, last_ms, superseded_by, invalid_ms| TopicRule {
            id,
            last_ms,
            superseded_by,
            invalid_ms,
        };
        // Newest first: 3 is active, 1 and 2 superseded by it.
        assert_eq!(
            topic_rows(&[
                r(3, 300, None, None),
                r(2, 200, None, None),
                r(1, 100, Some(2), Some(200))
            ]),
            vec![(2, Some(3), Some(300)), (1, Some(3), Some(300))]
        );
        // 2 was ended at 250: nothing is active; 1 is superseded by 2, which keeps its mark.
        assert_eq!(
            topic_rows(&[r(2, 200, Some(2), Some(250)), r(1, 100, None, None)]),
            vec![(1, Some(2), Some(200))]
        );
        // An older rule processed after the ending (out of order) is ended too.
        assert_eq!(
            topic_rows(&[r(4, 220, None, None), r(2, 200, Some(2), Some(250))]),
            vec![(4, Some(4), Some(250))]
        );
        // A rule stated after the ending is active; the ended one keeps its own mark.
        assert_eq!(
            topic_rows(&[r(5, 400, None, None), r(2, 200, Some(2), Some(250))]),
            vec![]
        );
        // Restated after its ending: active again.
        assert_eq!(
            topic_rows(&[r(2, 400, Some(2), Some(250)), r(1, 100, Some(2), Some(200))]),
            vec![(2, None, None), (1, Some(2), Some(400))]
        );
    }

    #[test]
    fn a_slot_merges_restatements_and_ends_each_run_at_the_next() {
        // Berlin (1), Berlin again (2), Munich (3), Berlin (4): three runs.
        let rows = slot_rows(&[(1, 10, 100), (2, 10, 150), (3, 20, 200), (4, 10, 300)]);
        let want = [
            (1, Some(200), None),
            (2, Some(200), Some(1)),
            (3, Some(300), None),
            (4, None, None),
        ];
        let got: Vec<_> = rows
            .iter()
            .map(|r| (r.id, r.invalid_ms, r.merged_into))
            .collect();
        assert_eq!(got, want);
        assert!(slot_rows(&[]).is_empty());
    }

    #[test]
    fn a_tombstone_applies_to_its_job_and_its_evidence() {
        let ev = vec!["D1:3".to_string()];
        assert!(tombstone_applies(Some("j1"), None, "j1", &[]));
        assert!(tombstone_applies(
            None,
            Some(r#"["D1:2","D1:3"]"#),
            "j2",
            &ev
        ));
        assert!(!tombstone_applies(
            Some("j1"),
            Some(r#"["D1:2"]"#),
            "j2",
            &ev
        ));
        assert!(!tombstone_applies(None, Some("not json"), "j2", &ev));
    }

    #[test]
    fn a_summary_keeps_its_newest_lines_within_the_budget() {
        let mut s = String::new();
        append_to_summary(&mut s, ["one\ntwo", "three"]);
        assert_eq!(s, "one two\nthree");
        let long = (0..50)
            .map(|i| format!("line {i} with several words"))
            .collect::<Vec<_>>()
            .join("\n");
        let t = trim_summary(&long, 30);
        assert!(t.ends_with("line 49 with several words"), "{t}");
        assert!(crate::tokens::estimate_tokens(&t) <= 30);
        assert_eq!(
            trim_summary("a single very long line", 1),
            "a single very long line"
        );
    }

    #[test]
    fn an_export_must_start_with_a_header_of_this_version() {
        let read = |t: &str| read_export(&mut t.as_bytes()).map(|(l, u)| (l.len(), u));
        let h = format!(
            r#"{{"type":"header","format":"{FORMAT}","version":{VERSION},"user_id":"ana"}}"#
        );
        assert_eq!(
            read(&format!("{h}\n\n{{\"type\":\"turn\"}}\n")).unwrap(),
            (2, "ana".into())
        );
        assert_eq!(read("").unwrap_err().to_string(), "the file is empty");
        assert!(
            read("{\"type\":\"turn\"}")
                .unwrap_err()
                .to_string()
                .contains("not a Memory Reflector export")
        );
        let v2 = h.replace(&format!(":{VERSION},"), ":99,");
        assert!(
            read(&v2)
                .unwrap_err()
                .to_string()
                .contains("export version 99 is not supported")
        );
        assert!(format!("{:#}", read("{oops").unwrap_err()).contains("line 1: not JSON"));
    }

    #[test]
    fn vectors_round_trip_exactly_through_hex() {
        let v = [0.1f32, -3.25e-7, 1.0, f32::MIN_POSITIVE];
        let blob = vec_to_blob(&v);
        assert_eq!(blob_to_vec(&hex_vec(&vec_hex(&blob)).unwrap()), v);
        assert!(hex_vec("abc").is_err());
    }
}
