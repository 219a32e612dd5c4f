//! Prompts and JSON schemas for the three tiers, and fitting a turn into the input budget.
//!
//! Every prompt gives the model the speaker's name, the turn's local date (as
//! "8 May 2023 (Monday)", written with [`format_day`]), the exact JSON schema of the answer,
//! and the text between `<<<` and `>>>` markers. The schemas are written for OpenAI's strict
//! structured outputs (every property required, `additionalProperties: false`, optional
//! values nullable), which Ollama, vLLM and llama.cpp accept too.
//!
//! Input budget: the turn's text (plus, for episodes, the assistant's reply) that goes into
//! one request is at most `max_input_chars` characters. An episode is one per turn, so its
//! input is truncated; graph and rule extraction split a longer text into up to
//! [`MAX_CHUNKS`] chunks at sentence boundaries (one request each, results merged) and
//! truncate what remains beyond that.

use chrono::NaiveDate;
use serde_json::{Value, json};

use crate::extract::time::format_day;

/// At most this many requests per tier for one turn; text beyond `MAX_CHUNKS ×
/// max_input_chars` characters is dropped (a chat turn that long is a pasted document).
pub const MAX_CHUNKS: usize = 4;

/// The marker that ends a truncated text (one character, counted in the budget).
pub const ELLIPSIS: char = '…';

/// One chat-completions request's content: a system and a user message, and the schema the
/// reply must follow (also sent as `response_format` when the server supports it).
#[derive(Debug, Clone)]
pub struct Prompt {
    /// Schema name for `response_format.json_schema.name` (`[a-z_]+`).
    pub schema_name: &'static str,
    pub schema: Value,
    pub system: String,
    pub user: String,
}

const SYSTEM: &str = "You turn one turn of a conversation into long-term memory for a chat assistant's memory service. \
Answer with exactly one JSON object that matches the JSON schema you are given, and nothing else: \
no explanation, no Markdown, no code fences.";

/// The shared header: who speaks, when, how to write dates.
fn header(speaker: &str, day: NaiveDate) -> String {
    format!(
        "Speaker: {speaker}\n\
         Date of the turn: {} ({}). Resolve every relative time expression (\"yesterday\", \
         \"last Friday\", \"the week before\", \"two weekends ago\", \"next month\", \"last year\") \
         to absolute dates against this date. Write dates in text as \"7 May 2023\" (or \
         \"May 2023\", \"2023\" when only the month or year is known) and in date fields as \
         YYYY-MM-DD (or YYYY-MM, YYYY).\n\
         \"I\", \"me\" and \"my\" in the text are {speaker}; never write \"I\" or \"the user\", \
         write {speaker}.\n",
        format_day(day),
        day.format("%A"),
    )
}

fn schema_block(schema: &Value) -> String {
    format!(
        "JSON schema of your answer:\n{}\n",
        serde_json::to_string_pretty(schema).unwrap_or_default()
    )
}

fn quoted(label: &str, text: &str) -> String {
    format!("{label}\n<<<\n{text}\n>>>\n")
}

/// Tier 2 schema: `{keep, text, summary, importance, tags, occurred_on}`.
pub fn episode_schema() -> Value {
    json!({
        "type": "object",
        "properties": {
            "keep": {"type": "boolean", "description": "false when the turn is only small talk (greetings, thanks, acknowledgements, filler) and holds nothing worth remembering"},
            "text": {"type": ["string", "null"], "description": "the memory as self-contained sentences in the third person, naming the speaker, keeping every specific detail (names, places, numbers, titles), with absolute dates; null when keep is false"},
            "summary": {"type": ["string", "null"], "description": "one short line (at most 200 characters)"},
            "importance": {"type": ["number", "null"], "description": "0.0 to 1.0: high for life events, decisions, plans, facts about people; low for opinions and chit-chat"},
            "tags": {"type": "array", "items": {"type": "string"}, "description": "a few lower-case topical tags such as family, work, health, travel, hobby, plan"},
            "occurred_on": {"type": ["string", "null"], "description": "YYYY-MM-DD of the event the turn talks about when it names or implies one, else null"}
        },
        "required": ["keep", "text", "summary", "importance", "tags", "occurred_on"],
        "additionalProperties": false
    })
}

/// Tier 3 schema: `{entities: [{name, type, aliases}], relations: [{subject, predicate,
/// object, fact, valid_on, exclusive}]}`.
pub fn graph_schema() -> Value {
    json!({
        "type": "object",
        "properties": {
            "entities": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {
                        "name": {"type": "string", "description": "canonical name, e.g. Sarah, Berlin, Google"},
                        "type": {"type": "string", "enum": ["person", "place", "organization", "event", "thing", "other"]},
                        "aliases": {"type": "array", "items": {"type": "string"}, "description": "other names stated for the same thing, e.g. \"mom\" for \"my mom Sarah\""}
                    },
                    "required": ["name", "type", "aliases"],
                    "additionalProperties": false
                }
            },
            "relations": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {
                        "subject": {"type": "string", "description": "entity name; the speaker's name for I"},
                        "predicate": {"type": "string", "description": "UPPER_SNAKE_CASE, e.g. LIVES_IN"},
                        "object": {"type": "string", "description": "entity name"},
                        "fact": {"type": "string", "description": "the fact as one sentence that stands alone"},
                        "valid_on": {"type": ["string", "null"], "description": "YYYY-MM-DD when the fact became true if the text dates it, else null"},
                        "exclusive": {"type": "boolean", "description": "true when the subject has one value of this predicate at a time (where someone lives, works, their job, relationship status, partner, birthday)"}
                    },
                    "required": ["subject", "predicate", "object", "fact", "valid_on", "exclusive"],
                    "additionalProperties": false
                }
            }
        },
        "required": ["entities", "relations"],
        "additionalProperties": false
    })
}

/// Tier 4 schema: `{rules: [{kind, statement, topic, confidence}]}`.
pub fn rules_schema() -> Value {
    json!({
        "type": "object",
        "properties": {
            "rules": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {
                        "kind": {"type": "string", "enum": ["preference", "instruction", "constraint"]},
                        "statement": {"type": "string", "description": "the rule as one sentence about the speaker, e.g. \"Ana wants answers in German.\""},
                        "topic": {"type": "string", "description": "lower-case slot key, e.g. language, name, contact_time, diet, allergy:peanut, favorite_color, coffee"},
                        "confidence": {"type": "number", "description": "0.0 to 1.0"}
                    },
                    "required": ["kind", "statement", "topic", "confidence"],
                    "additionalProperties": false
                }
            }
        },
        "required": ["rules"],
        "additionalProperties": false
    })
}

/// The Tier 2 request for one turn. `text` and `reply` must already fit the budget
/// (see [`episode_inputs`]); an empty `reply` is left out.
pub fn episode(speaker: &str, day: NaiveDate, text: &str, reply: &str) -> Prompt {
    let schema = episode_schema();
    let mut user = header(speaker, day);
    user.push_str(
        "Task: decide whether this turn holds anything a person would want remembered later \
         (events, decisions, plans, facts about people, experiences, opinions that say something \
         about the speaker). If it is only small talk, answer {\"keep\": false, …} with null \
         text. Otherwise write the memory in `text` as self-contained sentences: who (the \
         speaker's name), what, and when as absolute dates, keeping every specific detail. The \
         assistant's reply is context only; include it only where it adds a fact.\n",
    );
    user.push_str(&schema_block(&schema));
    user.push_str(&quoted(&format!("Text by {speaker}:"), text));
    if !reply.is_empty() {
        user.push_str(&quoted("Assistant's reply (context):", reply));
    }
    Prompt {
        schema_name: "episode",
        schema,
        system: SYSTEM.to_string(),
        user,
    }
}

/// The Tier 3 request for one chunk of a turn's text.
pub fn graph(speaker: &str, day: NaiveDate, chunk: &str, part: Option<(usize, usize)>) -> Prompt {
    let schema = graph_schema();
    let mut user = header(speaker, day);
    user.push_str(
        "Task: extract the entities the text names (people, places, organizations, events, \
         things; include the speaker as a person) and the facts it states as relations. Use \
         these predicates when they fit: LIVES_IN, FROM, WORKS_AT, HAS_JOB, RELATIONSHIP_STATUS, \
         PARTNER_OF, HAS_MOTHER, HAS_FATHER, HAS_SIBLING, HAS_CHILD, HAS_FRIEND, HAS_PET, LIKES, \
         VISITED, STUDIES, STUDIES_AT, MEMBER_OF, HAS_BIRTHDAY; else invent a short UPPER_SNAKE \
         one. No relations from questions, hypotheticals (\"if I moved to Paris\") or negations \
         (\"I don't live in Paris anymore\"). A photo caption in [brackets] describes a shared \
         photo, not the speaker's words. Empty arrays when the text states nothing.\n",
    );
    user.push_str(&schema_block(&schema));
    user.push_str(&quoted(&chunk_label(speaker, part), chunk));
    Prompt {
        schema_name: "graph",
        schema,
        system: SYSTEM.to_string(),
        user,
    }
}

/// The Tier 4 request for one chunk of a turn's text.
pub fn rules(speaker: &str, day: NaiveDate, chunk: &str, part: Option<(usize, usize)>) -> Prompt {
    let schema = rules_schema();
    let mut user = header(speaker, day);
    user.push_str(
        "Task: extract the speaker's standing preferences, instructions to the assistant and \
         constraints: \"always answer in Spanish\" (instruction, topic language), \"don't call me \
         before 9\" (constraint, topic contact_time), \"I'm vegetarian\" (preference, topic diet), \
         \"I'm allergic to peanuts\" (constraint, topic allergy:peanut), \"my favorite color is \
         blue\" (preference, topic favorite_color), \"I love coffee\" (preference, topic coffee). \
         The topic is the slot a later rule would replace, so the same subject always gets the \
         same topic. At most one rule per topic. Nothing from questions or the assistant. \
         {\"rules\": []} when there are none.\n",
    );
    user.push_str(&schema_block(&schema));
    user.push_str(&quoted(&chunk_label(speaker, part), chunk));
    Prompt {
        schema_name: "rules",
        schema,
        system: SYSTEM.to_string(),
        user,
    }
}

fn chunk_label(speaker: &str, part: Option<(usize, usize)>) -> String {
    match part {
        Some((i, n)) => format!("Text by {speaker} (part {i} of {n} of one long message):"),
        None => format!("Text by {speaker}:"),
    }
}

/// Number of characters (not bytes) of `s`.
pub fn char_len(s: &str) -> usize {
    s.chars().count()
}

/// `s` cut to at most `max` characters (the last one being [`ELLIPSIS`] when cut), at a
/// word boundary when one lies in the second half. `max == 0` gives an empty string.
pub fn truncate(s: &str, max: usize) -> String {
    if char_len(s) <= max {
        return s.to_string();
    }
    if max == 0 {
        return String::new();
    }
    let head = prefix_chars(s, max - 1);
    let cut = match head.rfind(char::is_whitespace) {
        Some(i) if i > head.len() / 2 => &head[..i],
        _ => head,
    };
    format!("{}{ELLIPSIS}", cut.trim_end())
}

/// The longest prefix of `s` with at most `n` characters.
fn prefix_chars(s: &str, n: usize) -> &str {
    s.char_indices().nth(n).map_or(s, |(i, _)| &s[..i])
}

/// The episode's inputs within `max` characters together: the reply gets at most a quarter
/// of the budget (less when it is shorter), the speaker's text the rest.
pub fn episode_inputs(text: &str, reply: &str, max: usize) -> (String, String) {
    let (text, reply) = (text.trim(), reply.trim());
    let reply_budget = char_len(reply).min(max / 4);
    let text = truncate(text, max - reply_budget);
    let reply = truncate(reply, max - char_len(&text));
    (text, reply)
}

/// `text` split into at most [`MAX_CHUNKS`] pieces of at most `max` characters each,
/// preferring to end a piece after a sentence (". ", "! ", "? ", a line break), else at a
/// space, else mid-word. Text beyond the last chunk is dropped and the last chunk ends with
/// [`ELLIPSIS`]. Pieces are trimmed; an empty text gives one empty chunk.
pub fn chunks(text: &str, max: usize) -> Vec<String> {
    let max = max.max(1);
    let mut out = Vec::new();
    let mut rest = text.trim();
    while !rest.is_empty() {
        if char_len(rest) <= max {
            out.push(rest.to_string());
            break;
        }
        if out.len() + 1 == MAX_CHUNKS {
            out.push(truncate(rest, max));
            break;
        }
        let window = prefix_chars(rest, max);
        let cut = sentence_cut(window)
            .or_else(|| {
                window
                    .rfind(char::is_whitespace)
                    .filter(|&i| i > window.len() / 2)
            })
            .unwrap_or(window.len());
        out.push(rest[..cut].trim().to_string());
        rest = rest[cut..].trim_start();
    }
    if out.is_empty() {
        out.push(String::new());
    }
    out
}

/// Byte offset just after the last sentence end in the second half of `window`.
fn sentence_cut(window: &str) -> Option<usize> {
    let b = window.as_bytes();
    (window.len() / 2..b.len())
        .rev()
        .find(|&i| {
            b[i] == b'\n'
                || (matches!(b[i], b'.' | b'!' | b'?')
                    && b.get(i + 1).is_some_and(|c| c.is_ascii_whitespace()))
        })
        .map(|i| i + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn truncate_counts_characters() {
        assert_eq!(truncate("short", 10), "short");
        let t = truncate("ééééé ééééé ééééé", 10);
        assert!(char_len(&t) <= 10, "{t}");
        assert!(t.ends_with(ELLIPSIS));
        assert_eq!(char_len(&truncate(&"x".repeat(100), 7)), 7);
        assert_eq!(truncate("abc", 0), "");
    }

    #[test]
    fn episode_inputs_fit_the_budget() {
        let text = "a".repeat(1000);
        let reply = "b".repeat(1000);
        let (t, r) = episode_inputs(&text, &reply, 400);
        assert!(
            char_len(&t) + char_len(&r) <= 400,
            "{} + {}",
            t.len(),
            r.len()
        );
        assert!(char_len(&t) >= 290);
        // A short reply leaves the rest of the budget to the text.
        let (t, r) = episode_inputs(&text, "ok", 400);
        assert_eq!(r, "ok");
        assert_eq!(char_len(&t), 398);
        // Everything fits: unchanged.
        let (t, r) = episode_inputs("I moved.", "Nice!", 400);
        assert_eq!((t.as_str(), r.as_str()), ("I moved.", "Nice!"));
    }

    #[test]
    fn chunks_split_at_sentences_and_cap() {
        let text = "One two three. Four five six. Seven eight nine. Ten eleven twelve.";
        let c = chunks(text, 32);
        assert!(c.iter().all(|p| char_len(p) <= 32), "{c:?}");
        assert_eq!(c[0], "One two three. Four five six.");
        assert_eq!(c.join(" "), text);
        let long = "word ".repeat(1000);
        let c = chunks(&long, 100);
        assert_eq!(c.len(), MAX_CHUNKS);
        assert!(c.iter().all(|p| char_len(p) <= 100));
        assert!(c.last().unwrap().ends_with(ELLIPSIS));
        assert_eq!(chunks("", 10), vec![String::new()]);
        assert_eq!(chunks(&"x".repeat(25), 10)[0], "x".repeat(10));
    }

    #[test]
    fn prompts_carry_speaker_date_schema_and_text() {
        let day = NaiveDate::from_ymd_opt(2023, 5, 8).unwrap();
        let p = episode("Caroline", day, "I went to a support group yesterday.", "");
        assert!(p.user.contains("Speaker: Caroline"));
        assert!(p.user.contains("8 May 2023 (Monday)"));
        assert!(p.user.contains("\"occurred_on\""));
        assert!(
            p.user
                .contains("<<<\nI went to a support group yesterday.\n>>>")
        );
        assert!(!p.user.contains("Assistant's reply"));
        let g = graph("Caroline", day, "I live in Berlin.", Some((2, 3)));
        assert!(g.user.contains("part 2 of 3"));
        assert!(g.user.contains("LIVES_IN"));
        let r = rules("Caroline", day, "Always answer in German.", None);
        assert!(r.user.contains("\"confidence\""));
        assert_eq!(r.schema_name, "rules");
    }
}
