//! Turning the model's JSON into drafts, with the same conventions as the rule-based
//! extractors (`crate::extract`), and rejecting replies that cannot be used.
//!
//! Required fields are the ones a draft cannot exist without: an episode's `keep` (or a
//! non-empty `text`, which implies it) and, when kept, its `text`; an entity's `name`; a
//! relation's `subject`, `predicate` and `object`; a rule's `kind`, `statement` and `topic`.
//! A missing required field, a field of the wrong JSON type, or a top-level value of the
//! wrong shape is an `Err` naming the field (e.g. ``relations[1]: missing `predicate` ``).
//! Optional fields fall back to defaults: importance 0.5, confidence 0.8, no tags, no
//! aliases, the turn's timestamp for dates, a fact sentence built from the triple.
//!
//! A reply that wraps the expected object in one more object (`{"result": {…}}`) is
//! unwrapped.
//!
//! Normalisation: "I", "me", "the user", "speaker" as a name → the speaker's name;
//! predicates → UPPER_SNAKE (`"lives in"`, `"livesIn"` → `LIVES_IN`), exclusive forced for
//! [`EXCLUSIVE_PREDICATES`]; entity types mapped onto person/place/organization/event/thing/
//! other; importance and confidence clamped to 0..=1; tags and topics lower-case; dates
//! (`YYYY-MM-DD`, `YYYY-MM`, `YYYY`, or an RFC 3339 time) → noon of that day at the turn's
//! UTC offset, like the rule-based extractors.

use anyhow::{Result, anyhow, bail};
use chrono::{DateTime, NaiveDate, Utc};
use serde_json::{Map, Value};

use crate::extract::curate::{noon_utc, speaker_name, truncate_chars};
use crate::extract::time::{format_day, ground};
use crate::extract::{EntityDraft, EpisodeDraft, GraphDraft, RelationDraft, RuleDraft, TurnView};

/// Predicates whose slot holds one value at a time: `exclusive` is forced true for them.
pub const EXCLUSIVE_PREDICATES: &[&str] =
    &["LIVES_IN", "WORKS_AT", "HAS_JOB", "RELATIONSHIP_STATUS"];

/// The rule kinds Tier 4 stores.
pub const RULE_KINDS: &[&str] = &["preference", "instruction", "constraint"];

/// Importance of a kept episode whose reply gave none.
pub const DEFAULT_IMPORTANCE: f32 = 0.5;

/// Confidence of a rule whose reply gave none.
pub const DEFAULT_CONFIDENCE: f32 = 0.8;

/// At most this many tags per episode.
pub const MAX_TAGS: usize = 12;

/// Names that mean the speaker.
const SELF_NAMES: &[&str] = &[
    "i",
    "me",
    "myself",
    "my",
    "mine",
    "user",
    "the user",
    "speaker",
    "the speaker",
    "narrator",
];

/// Shows a model-provided value in an error message: JSON, at most 60 characters.
fn show(v: &Value) -> String {
    truncate_chars(&v.to_string(), 60)
}

/// A string field: trimmed, whitespace collapsed; `None` when missing, null or blank.
/// Numbers are accepted as their text; arrays and objects are an error.
fn opt_str(o: &Map<String, Value>, key: &str, at: &str) -> Result<Option<String>> {
    match o.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => {
            let s = s.split_whitespace().collect::<Vec<_>>().join(" ");
            Ok((!s.is_empty()).then_some(s))
        }
        Some(Value::Number(n)) => Ok(Some(n.to_string())),
        Some(v) => bail!(
            "{at}`{key}` must be a string, got {}",
            crate::job::json_kind(v)
        ),
    }
}

fn req_str(o: &Map<String, Value>, key: &str, at: &str) -> Result<String> {
    opt_str(o, key, at)?.ok_or_else(|| anyhow!("{at}missing `{key}`"))
}

/// A number field (a numeric string counts); `None` when missing or null.
fn opt_num(o: &Map<String, Value>, key: &str, at: &str) -> Result<Option<f32>> {
    match o.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => Ok(n.as_f64().map(|x| x as f32)),
        Some(Value::String(s)) if s.trim().parse::<f32>().is_ok_and(f32::is_finite) => {
            Ok(s.trim().parse::<f32>().ok())
        }
        Some(v) => bail!("{at}`{key}` must be a number, got {}", show(v)),
    }
}

/// A boolean field ("true"/"false"/"yes"/"no" strings count); `None` when missing or null.
fn opt_bool(o: &Map<String, Value>, key: &str, at: &str) -> Result<Option<bool>> {
    match o.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(*b)),
        Some(Value::String(s)) => match s.trim().to_ascii_lowercase().as_str() {
            "true" | "yes" => Ok(Some(true)),
            "false" | "no" => Ok(Some(false)),
            _ => bail!(
                "{at}`{key}` must be true or false, got {}",
                show(&Value::String(s.clone()))
            ),
        },
        Some(v) => bail!("{at}`{key}` must be true or false, got {}", show(v)),
    }
}

/// A list of strings; a single string is split at commas; missing or null → empty.
fn str_list(o: &Map<String, Value>, key: &str, at: &str) -> Result<Vec<String>> {
    let items: Vec<String> = match o.get(key) {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::String(s)) => s.split(',').map(str::to_string).collect(),
        Some(Value::Array(a)) => a
            .iter()
            .enumerate()
            .map(|(i, v)| match v {
                Value::String(s) => Ok(s.clone()),
                other => bail!(
                    "{at}`{key}[{i}]` must be a string, got {}",
                    crate::job::json_kind(other)
                ),
            })
            .collect::<Result<_>>()?,
        Some(v) => bail!(
            "{at}`{key}` must be an array of strings, got {}",
            crate::job::json_kind(v)
        ),
    };
    Ok(items
        .into_iter()
        .map(|s| s.split_whitespace().collect::<Vec<_>>().join(" "))
        .filter(|s| !s.is_empty())
        .collect())
}

/// An array field; missing or null → `None`.
fn opt_array<'a>(o: &'a Map<String, Value>, key: &str) -> Result<Option<&'a Vec<Value>>> {
    match o.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Array(a)) => Ok(Some(a)),
        Some(v) => bail!("`{key}` must be an array, got {}", crate::job::json_kind(v)),
    }
}

fn as_object<'a>(v: &'a Value, what: &str) -> Result<&'a Map<String, Value>> {
    v.as_object().ok_or_else(|| {
        anyhow!(
            "{what} must be a JSON object, got {}",
            crate::job::json_kind(v)
        )
    })
}

/// `v`, or what it wraps: while `v` is an object with none of `keys` and exactly one entry
/// whose value is an object, that object (`{"result": {"keep": …}}` → `{"keep": …}`).
fn unwrap_single<'a>(mut v: &'a Value, keys: &[&str]) -> &'a Value {
    while let Value::Object(o) = v
        && o.len() == 1
        && !keys.iter().any(|k| o.contains_key(*k))
        && let Some(inner @ Value::Object(_)) = o.values().next()
    {
        v = inner;
    }
    v
}

/// The day a model's date names: `YYYY-MM-DD` (also the date part of an ISO date-time),
/// `YYYY-MM` (its first day), `YYYY` (1 January). `None` for anything else.
pub fn parse_day(s: &str) -> Option<NaiveDate> {
    let s = s.trim();
    if let Ok(d) = NaiveDate::parse_from_str(s.get(..10).unwrap_or(s), "%Y-%m-%d") {
        return Some(d);
    }
    if let Ok(dt) = DateTime::parse_from_rfc3339(s) {
        return Some(dt.date_naive());
    }
    let b = s.as_bytes();
    if b.len() == 7 && b[4] == b'-' {
        let (y, m) = (s[..4].parse().ok()?, s[5..].parse().ok()?);
        return NaiveDate::from_ymd_opt(y, m, 1);
    }
    if b.len() == 4 && b.iter().all(u8::is_ascii_digit) {
        return NaiveDate::from_ymd_opt(s.parse().ok()?, 1, 1);
    }
    None
}

/// Noon (at the turn's UTC offset) of the day `s` names.
fn date_field(
    o: &Map<String, Value>,
    key: &str,
    at: &str,
    turn: &TurnView,
) -> Result<Option<DateTime<Utc>>> {
    Ok(opt_str(o, key, at)?
        .as_deref()
        .and_then(parse_day)
        .and_then(|d| noon_utc(d, turn.local.offset())))
}

/// `p` as UPPER_SNAKE: words split at non-alphanumerics and at lower→upper case changes
/// (`"lives in"`, `"livesIn"`, `"lives-in"` → `LIVES_IN`).
pub fn upper_snake(p: &str) -> String {
    let mut out = String::new();
    let mut sep = false;
    let mut prev_lower = false;
    for c in p.chars() {
        if c.is_alphanumeric() {
            if (sep || (prev_lower && c.is_uppercase())) && !out.is_empty() {
                out.push('_');
            }
            sep = false;
            prev_lower = c.is_lowercase();
            out.extend(c.to_uppercase());
        } else {
            sep = true;
            prev_lower = false;
        }
    }
    out
}

/// A rule topic: lower-case, whitespace and hyphen runs → `_` ("Contact Time" →
/// `contact_time`); `:` kept, without spaces around it (`"Allergy: Peanut"` → `allergy:peanut`).
pub fn normalize_topic(t: &str) -> String {
    t.to_lowercase()
        .split(':')
        .map(|part| {
            part.split(|c: char| c.is_whitespace() || c == '-' || c == '_')
                .filter(|w| !w.is_empty())
                .collect::<Vec<_>>()
                .join("_")
        })
        .filter(|p| !p.is_empty())
        .collect::<Vec<_>>()
        .join(":")
}

/// An entity type mapped onto the kinds the graph uses.
pub fn normalize_kind(k: &str) -> &'static str {
    match k.trim().to_lowercase().as_str() {
        "person" | "people" | "human" | "individual" | "character" | "family" | "relative" => {
            "person"
        }
        "place" | "location" | "city" | "country" | "region" | "state" | "gpe" | "loc"
        | "address" => "place",
        "organization" | "organisation" | "org" | "company" | "business" | "employer"
        | "school" | "university" | "college" | "institution" | "group" | "team" | "band"
        | "club" => "organization",
        "event" | "occasion" | "activity" | "holiday" => "event",
        "thing" | "object" | "item" | "product" | "animal" | "pet" | "book" | "movie" | "film"
        | "song" | "game" | "food" | "artwork" | "work" | "concept" => "thing",
        _ => "other",
    }
}

/// The speaker's name for names that mean "I"; else `name`.
fn resolve_self(name: String, speaker: &str) -> String {
    if SELF_NAMES.contains(&name.to_lowercase().as_str()) {
        speaker.to_string()
    } else {
        name
    }
}

/// Tier 2: the episode from `{keep, text, summary, importance, tags, occurred_on}`.
///
/// `Ok(None)` only when `keep` is false. The text becomes
/// `"[{day}] {speaker}: {model text with relative dates grounded}"`; `occurred_at` is the
/// model's `occurred_on`, else the first date the (grounded) text names, else the turn's
/// timestamp.
pub fn episode(v: &Value, turn: &TurnView) -> Result<Option<EpisodeDraft>> {
    let o = as_object(unwrap_single(v, &["keep", "text"]), "the reply")?;
    let keep = opt_bool(o, "keep", "")?;
    let text = opt_str(o, "text", "")?;
    let body = match (keep, text) {
        (Some(false), _) => return Ok(None),
        (_, Some(t)) => t,
        (Some(true), None) => bail!("`keep` is true but `text` is missing or empty"),
        (None, None) => {
            bail!("missing `keep` (and no `text`); expected {{\"keep\": …, \"text\": …}}")
        }
    };
    let speaker = speaker_name(turn);
    let date = turn.local_date();
    let day = format_day(date);
    let full = format!("[{day}] {speaker}: ");
    let bracket = format!("[{day}] ");
    let own = format!("{speaker}: ");
    let rest = body
        .strip_prefix(&full)
        .or_else(|| body.strip_prefix(&bracket))
        .unwrap_or(&body);
    let rest = rest.strip_prefix(&own).unwrap_or(rest).trim();
    if rest.is_empty() {
        bail!("`text` has nothing after its date and speaker prefix");
    }
    let (grounded, mentions) = ground(rest, date);
    let text = format!("{full}{grounded}");
    let summary = opt_str(o, "summary", "")?.unwrap_or_else(|| grounded.clone());
    let summary = if summary.starts_with(speaker) {
        summary
    } else {
        format!("{own}{summary}")
    };
    let importance = opt_num(o, "importance", "")?
        .unwrap_or(DEFAULT_IMPORTANCE)
        .clamp(0.0, 1.0);
    let mut tags: Vec<String> = Vec::new();
    for t in str_list(o, "tags", "")? {
        let t = t.trim_start_matches('#').trim().to_lowercase();
        if !t.is_empty() && !tags.contains(&t) && tags.len() < MAX_TAGS {
            tags.push(t);
        }
    }
    let occurred_at = date_field(o, "occurred_on", "", turn)?
        .or_else(|| {
            mentions
                .first()
                .and_then(|m| noon_utc(m.resolved.start, turn.local.offset()))
        })
        .unwrap_or(turn.timestamp);
    Ok(Some(EpisodeDraft {
        text,
        summary: truncate_chars(&summary, 200),
        importance,
        tags,
        occurred_at,
    }))
}

/// Tier 3: the graph from `{entities: [...], relations: [...]}` (either may be missing, not
/// both). The speaker is always the first entity (a person); duplicates are merged.
pub fn graph(v: &Value, turn: &TurnView) -> Result<GraphDraft> {
    let o = as_object(unwrap_single(v, &["entities", "relations"]), "the reply")?;
    let entities = opt_array(o, "entities")?;
    let relations = opt_array(o, "relations")?;
    if entities.is_none() && relations.is_none() {
        bail!(
            "missing `entities` and `relations`; expected {{\"entities\": [...], \"relations\": [...]}}"
        );
    }
    let speaker = speaker_name(turn);
    let mut out = GraphDraft::default();
    for (i, e) in entities.into_iter().flatten().enumerate() {
        let at = format!("entities[{i}]: ");
        let e = as_object(e, &format!("entities[{i}]"))?;
        let name = resolve_self(req_str(e, "name", &at)?, speaker);
        let kind = match opt_str(e, "type", &at)?.or(opt_str(e, "kind", &at)?) {
            Some(k) => normalize_kind(&k),
            None => "other",
        };
        let aliases = str_list(e, "aliases", &at)?;
        out.entities.push(EntityDraft {
            name,
            kind: kind.to_string(),
            aliases,
        });
    }
    for (i, r) in relations.into_iter().flatten().enumerate() {
        let at = format!("relations[{i}]: ");
        let r = as_object(r, &format!("relations[{i}]"))?;
        let subject = resolve_self(req_str(r, "subject", &at)?, speaker);
        let raw = req_str(r, "predicate", &at)?;
        let predicate = upper_snake(&raw);
        if predicate.is_empty() {
            bail!(
                "{at}`predicate` {} has no letters or digits",
                show(&Value::String(raw))
            );
        }
        let object = resolve_self(req_str(r, "object", &at)?, speaker);
        let fact = opt_str(r, "fact", &at)?.unwrap_or_else(|| {
            format!(
                "{subject} {} {object}.",
                predicate.to_lowercase().replace('_', " ")
            )
        });
        let valid_at = date_field(r, "valid_on", &at, turn)?
            .or(date_field(r, "valid_at", &at, turn)?)
            .unwrap_or(turn.timestamp);
        let exclusive = EXCLUSIVE_PREDICATES.contains(&predicate.as_str())
            || opt_bool(r, "exclusive", &at)?.unwrap_or(false);
        out.relations.push(RelationDraft {
            subject,
            predicate,
            object,
            fact,
            valid_at,
            exclusive,
        });
    }
    Ok(merge_graph(vec![out], speaker))
}

/// Several graphs (one per chunk) as one: the speaker first (a person), entities merged by
/// case-insensitive name (aliases united; a specific kind wins over `other`), relations
/// de-duplicated by (subject, predicate, object), the first kept.
pub fn merge_graph(parts: Vec<GraphDraft>, speaker: &str) -> GraphDraft {
    let mut out = GraphDraft::default();
    out.entities.push(EntityDraft {
        name: speaker.to_string(),
        kind: "person".to_string(),
        aliases: Vec::new(),
    });
    for part in parts {
        for e in part.entities {
            let key = e.name.to_lowercase();
            match out
                .entities
                .iter_mut()
                .find(|x| x.name.to_lowercase() == key)
            {
                Some(x) => {
                    if x.kind == "other" {
                        x.kind = e.kind;
                    }
                    x.aliases.extend(e.aliases);
                }
                None => out.entities.push(e),
            }
        }
        for r in part.relations {
            let dup = out.relations.iter().any(|x| {
                x.predicate == r.predicate
                    && x.subject.to_lowercase() == r.subject.to_lowercase()
                    && x.object.to_lowercase() == r.object.to_lowercase()
            });
            if !dup {
                out.relations.push(r);
            }
        }
    }
    for e in &mut out.entities {
        let name = e.name.to_lowercase();
        let mut seen: Vec<String> = Vec::new();
        e.aliases.retain(|a| {
            let k = a.to_lowercase();
            let keep = k != name && !seen.contains(&k);
            seen.push(k);
            keep
        });
    }
    out
}

/// Tier 4: the rules from `{rules: [...]}` (a bare array of rules, or one rule object, is
/// accepted too). At most one rule per topic, the first.
pub fn rules(v: &Value) -> Result<Vec<RuleDraft>> {
    let v = unwrap_single(v, &["rules", "kind"]);
    let items: Vec<Value> = match v {
        Value::Array(a) => a.clone(),
        Value::Object(o) if o.contains_key("rules") => match opt_array(o, "rules")? {
            Some(a) => a.clone(),
            None => Vec::new(),
        },
        Value::Object(o) if o.contains_key("kind") && o.contains_key("statement") => {
            vec![v.clone()]
        }
        _ => bail!(
            "missing `rules`; expected {{\"rules\": [{{\"kind\": …, \"statement\": …, \"topic\": …}}]}}"
        ),
    };
    let mut out: Vec<RuleDraft> = Vec::new();
    for (i, r) in items.iter().enumerate() {
        let at = format!("rules[{i}]: ");
        let r = as_object(r, &format!("rules[{i}]"))?;
        let raw = req_str(r, "kind", &at)?;
        let kind = raw.to_lowercase();
        if !RULE_KINDS.contains(&kind.as_str()) {
            bail!(
                "{at}`kind` must be preference, instruction or constraint, got {}",
                show(&Value::String(raw))
            );
        }
        let statement = req_str(r, "statement", &at)?;
        let topic = normalize_topic(&req_str(r, "topic", &at)?);
        if topic.is_empty() {
            bail!("{at}`topic` is empty");
        }
        let confidence = opt_num(r, "confidence", &at)?
            .unwrap_or(DEFAULT_CONFIDENCE)
            .clamp(0.0, 1.0);
        if out.iter().all(|x| x.topic != topic) {
            out.push(RuleDraft {
                kind,
                statement,
                confidence,
                topic,
            });
        }
    }
    Ok(out)
}

/// Several rule lists (one per chunk) as one: at most one rule per topic, the first.
pub fn merge_rules(parts: Vec<Vec<RuleDraft>>) -> Vec<RuleDraft> {
    let mut out: Vec<RuleDraft> = Vec::new();
    for r in parts.into_iter().flatten() {
        if out.iter().all(|x| x.topic != r.topic) {
            out.push(r);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{FixedOffset, TimeZone};
    use serde_json::json;

    fn turn_at(offset_hours: i32) -> TurnView {
        let ts = Utc.with_ymd_and_hms(2023, 5, 8, 13, 56, 0).unwrap();
        TurnView {
            user_id: "u1".into(),
            speaker: "Caroline".into(),
            text: "I went to a support group yesterday.".into(),
            assistant_response: String::new(),
            timestamp: ts,
            local: ts.with_timezone(&FixedOffset::east_opt(offset_hours * 3600).unwrap()),
        }
    }

    fn turn() -> TurnView {
        turn_at(0)
    }

    #[test]
    fn snake_predicates() {
        assert_eq!(upper_snake("lives in"), "LIVES_IN");
        assert_eq!(upper_snake("livesIn"), "LIVES_IN");
        assert_eq!(upper_snake("LIVES_IN"), "LIVES_IN");
        assert_eq!(upper_snake(" has-job "), "HAS_JOB");
        assert_eq!(upper_snake("Works at:"), "WORKS_AT");
        assert_eq!(upper_snake("--"), "");
    }

    #[test]
    fn topics_and_kinds() {
        assert_eq!(normalize_topic("Contact Time"), "contact_time");
        assert_eq!(normalize_topic(" Allergy:Peanut "), "allergy:peanut");
        assert_eq!(normalize_topic("answer-length"), "answer_length");
        assert_eq!(normalize_kind("City"), "place");
        assert_eq!(normalize_kind("organisation"), "organization");
        assert_eq!(normalize_kind("PERSON"), "person");
        assert_eq!(normalize_kind("feeling"), "other");
    }

    #[test]
    fn days() {
        let d = |y, m, d| NaiveDate::from_ymd_opt(y, m, d);
        assert_eq!(parse_day("2023-05-07"), d(2023, 5, 7));
        assert_eq!(parse_day("2023-05-07T10:00:00Z"), d(2023, 5, 7));
        assert_eq!(parse_day("2023-05"), d(2023, 5, 1));
        assert_eq!(parse_day("2022"), d(2022, 1, 1));
        assert_eq!(parse_day("yesterday"), None);
        assert_eq!(parse_day("2023-13-01"), None);
    }

    #[test]
    fn episode_is_prefixed_grounded_clamped() {
        let v = json!({"keep": true, "text": "Caroline went to an LGBTQ support group yesterday.",
            "summary": null, "importance": 3, "tags": ["Support", "support", " #Health "], "occurred_on": null});
        let e = episode(&v, &turn()).unwrap().unwrap();
        assert_eq!(
            e.text,
            "[8 May 2023] Caroline: Caroline went to an LGBTQ support group yesterday (7 May 2023)."
        );
        assert_eq!(e.importance, 1.0);
        assert_eq!(e.tags, vec!["support", "health"]);
        // No date from the model: the first date the text names, at noon.
        assert_eq!(
            e.occurred_at,
            Utc.with_ymd_and_hms(2023, 5, 7, 12, 0, 0).unwrap()
        );
        assert!(e.summary.starts_with("Caroline"));
    }

    #[test]
    fn episode_prefix_is_not_doubled() {
        let v = json!({"keep": true, "text": "[8 May 2023] Caroline: She adopted a cat.", "importance": -1});
        let e = episode(&v, &turn()).unwrap().unwrap();
        assert_eq!(e.text, "[8 May 2023] Caroline: She adopted a cat.");
        assert_eq!(e.importance, 0.0);
        assert_eq!(e.occurred_at, turn().timestamp);
        assert_eq!(e.summary, "Caroline: She adopted a cat.");
    }

    #[test]
    fn episode_date_uses_the_turn_offset() {
        let v = json!({"keep": true, "text": "Caroline moved.", "occurred_on": "2023-05-07"});
        let e = episode(&v, &turn_at(14)).unwrap().unwrap();
        // Local date is 9 May 2023 at +14:00.
        assert!(e.text.starts_with("[9 May 2023] Caroline: "), "{}", e.text);
        assert_eq!(
            e.occurred_at,
            Utc.with_ymd_and_hms(2023, 5, 6, 22, 0, 0).unwrap()
        );
    }

    #[test]
    fn episode_keep_false_and_errors() {
        assert_eq!(
            episode(&json!({"keep": false, "text": null}), &turn()).unwrap(),
            None
        );
        assert_eq!(episode(&json!({"keep": "no"}), &turn()).unwrap(), None);
        let implied = episode(&json!({"text": "Caroline paints."}), &turn()).unwrap();
        assert!(implied.is_some());
        let wrapped = json!({"episode": {"keep": true, "text": "Caroline paints."}});
        assert!(episode(&wrapped, &turn()).unwrap().is_some());
        let err = |v: Value| format!("{:#}", episode(&v, &turn()).unwrap_err());
        assert!(err(json!({"foo": 1})).contains("missing `keep`"));
        assert!(err(json!({"keep": true})).contains("`text`"));
        assert!(err(json!({"keep": true, "text": ["a"]})).contains("`text` must be a string"));
        assert!(
            err(json!({"keep": "maybe", "text": "x"})).contains("`keep` must be true or false")
        );
        assert!(
            err(json!({"keep": true, "text": "x", "importance": "high"})).contains("`importance`")
        );
        assert!(err(json!([{"keep": true}])).contains("must be a JSON object"));
    }

    #[test]
    fn graph_is_normalised() {
        let v = json!({
            "entities": [
                {"name": "Berlin", "type": "city", "aliases": ["berlin", "the capital"]},
                {"name": "I", "type": "person", "aliases": []},
                {"name": "berlin", "type": "other", "aliases": ["Berlin, Germany"]}
            ],
            "relations": [
                {"subject": "I", "predicate": "lives in", "object": "Berlin", "fact": "Caroline lives in Berlin.", "valid_on": "2023-05-01", "exclusive": false},
                {"subject": "Caroline", "predicate": "LIVES_IN", "object": "berlin", "fact": "dup", "valid_on": null, "exclusive": true},
                {"subject": "Caroline", "predicate": "likes", "object": "Hiking", "fact": null, "valid_on": "someday", "exclusive": false},
                {"subject": "Caroline", "predicate": "PARTNER_OF", "object": "Sam", "fact": "x", "valid_on": null, "exclusive": true}
            ]
        });
        let g = graph(&v, &turn()).unwrap();
        let names: Vec<_> = g
            .entities
            .iter()
            .map(|e| (e.name.as_str(), e.kind.as_str()))
            .collect();
        assert_eq!(names, vec![("Caroline", "person"), ("Berlin", "place")]);
        assert_eq!(
            g.entities[1].aliases,
            vec!["the capital", "Berlin, Germany"]
        );
        assert_eq!(g.relations.len(), 3);
        let r = &g.relations[0];
        assert_eq!(
            (r.subject.as_str(), r.predicate.as_str(), r.object.as_str()),
            ("Caroline", "LIVES_IN", "Berlin")
        );
        assert!(r.exclusive, "LIVES_IN is forced exclusive");
        assert_eq!(
            r.valid_at,
            Utc.with_ymd_and_hms(2023, 5, 1, 12, 0, 0).unwrap()
        );
        let l = &g.relations[1];
        assert_eq!((l.predicate.as_str(), l.exclusive), ("LIKES", false));
        assert_eq!(l.fact, "Caroline likes Hiking.");
        assert_eq!(l.valid_at, turn().timestamp);
        assert!(g.relations[2].exclusive, "the model's exclusive is kept");
    }

    #[test]
    fn graph_errors() {
        let err = |v: Value| format!("{:#}", graph(&v, &turn()).unwrap_err());
        assert!(err(json!({"facts": []})).contains("missing `entities` and `relations`"));
        assert!(err(json!({"entities": "Berlin"})).contains("`entities` must be an array"));
        assert!(
            err(json!({"relations": [{"subject": "I", "object": "Berlin"}]}))
                .contains("relations[0]: missing `predicate`")
        );
        assert!(
            err(json!({"entities": [{"type": "place"}]})).contains("entities[0]: missing `name`")
        );
        assert!(
            err(json!({"relations": [{"subject": "I", "predicate": "??", "object": "x"}]}))
                .contains("no letters")
        );
        assert!(err(json!({"graph": "none"})).contains("missing `entities` and `relations`"));
        let wrapped =
            json!({"graph": {"entities": [{"name": "Berlin", "type": "place", "aliases": []}]}});
        assert_eq!(graph(&wrapped, &turn()).unwrap().entities.len(), 2);
        // Empty is fine: the speaker alone.
        let g = graph(&json!({"entities": [], "relations": []}), &turn()).unwrap();
        assert_eq!(g.entities.len(), 1);
        assert!(g.relations.is_empty());
    }

    #[test]
    fn rules_are_checked() {
        let v = json!({"rules": [
            {"kind": "Instruction", "statement": "Caroline wants answers in German.", "topic": "Language", "confidence": 1.4},
            {"kind": "preference", "statement": "Caroline prefers French.", "topic": "language", "confidence": 0.5},
            {"kind": "constraint", "statement": "Caroline is allergic to peanuts.", "topic": "Allergy: Peanut", "confidence": null}
        ]});
        let r = rules(&v).unwrap();
        assert_eq!(r.len(), 2);
        assert_eq!(
            (r[0].kind.as_str(), r[0].topic.as_str(), r[0].confidence),
            ("instruction", "language", 1.0)
        );
        assert_eq!(
            (r[1].topic.as_str(), r[1].confidence),
            ("allergy:peanut", DEFAULT_CONFIDENCE)
        );
        let bare = rules(&json!([{"kind": "preference", "statement": "s", "topic": "t"}])).unwrap();
        assert_eq!(bare.len(), 1);
        let one = rules(&json!({"kind": "preference", "statement": "s", "topic": "t"})).unwrap();
        let wrapped =
            json!({"result": {"rules": [{"kind": "preference", "statement": "s", "topic": "t"}]}});
        assert_eq!(rules(&wrapped).unwrap().len(), 1);
        assert_eq!(one.len(), 1);
        assert!(rules(&json!({"rules": []})).unwrap().is_empty());
        let err = |v: Value| format!("{:#}", rules(&v).unwrap_err());
        assert!(
            err(json!({"rules": [{"kind": "wish", "statement": "s", "topic": "t"}]}))
                .contains("`kind` must be preference, instruction or constraint, got \"wish\"")
        );
        assert!(
            err(json!({"rules": [{"kind": "preference", "topic": "t"}]}))
                .contains("rules[0]: missing `statement`")
        );
        assert!(
            err(json!({"rules": [{"kind": "preference", "statement": "s"}]}))
                .contains("missing `topic`")
        );
        assert!(err(json!({"preferences": []})).contains("missing `rules`"));
        assert!(err(json!({"rules": {"kind": "x"}})).contains("`rules` must be an array"));
    }
}
