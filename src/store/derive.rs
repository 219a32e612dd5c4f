//! Pure derivations both backends share: name normalisation, evidence union, tombstone
//! signatures, token estimates of a turn, and the export format's field codecs. No SQL: each
//! backend reads rows, calls these, and writes what they return.

use std::collections::BTreeSet;

use anyhow::{Context as _, bail};
use serde_json::Value;

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

/// Estimated tokens of one turn (message and response), as the window counts them.
pub(crate) fn turn_tokens(user_message: &str, assistant: &str) -> usize {
    crate::budget::estimate_tokens(user_message) + crate::budget::estimate_tokens(assistant)
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{blob_to_vec, vec_to_blob};

    #[test]
    fn norm_name_drops_possessives_and_case() {
        assert_eq!(norm_name("My Mom"), "mom");
        assert_eq!(norm_name("the  Eiffel Tower!"), "eiffel tower");
        assert_eq!(norm_name("Sarah"), "sarah");
    }

    #[test]
    fn vectors_round_trip_exactly_through_hex() {
        let v = [0.1f32, -3.25e-7, 1.0, f32::MIN_POSITIVE];
        let blob = vec_to_blob(&v);
        assert_eq!(blob_to_vec(&hex_vec(&vec_hex(&blob)).unwrap()), v);
        assert!(hex_vec("abc").is_err());
    }
}
