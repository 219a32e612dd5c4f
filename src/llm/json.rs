//! Finding the JSON in a model's reply.
//!
//! Models asked for "only JSON" still wrap it: in a Markdown fence (```` ```json … ``` ````),
//! after a preamble ("Here is the JSON: {…}"), before an afterword, or after a reasoning block
//! (`<think>…</think>`, as DeepSeek-R1 or Qwen 3 print through Ollama). [`find_json`] drops
//! reasoning blocks, then returns the first *balanced* JSON object or array in the text that
//! parses — skipping brace-delimited prose such as "{name}" or "[see below]" that does not.
//! Pure functions, no I/O.

use serde_json::Value;

/// How many candidate start positions are tried before giving up (a guard against
/// pathological replies; real replies succeed on the first or second candidate).
const MAX_CANDIDATES: usize = 256;

/// The first JSON value in `reply` that is an object, or an array whose elements are all
/// objects (an empty array included), after removing `<think>…</think>` blocks.
///
/// A candidate starts at a `{` or `[` and ends at its balanced closer (brackets inside JSON
/// strings, with escapes, are ignored). Candidates that do not parse, or arrays of scalars
/// such as "[1]", are skipped. `None` when nothing qualifies — including a reply cut off
/// in the middle of its JSON (unbalanced).
pub fn find_json(reply: &str) -> Option<Value> {
    let text = strip_reasoning(reply);
    let bytes = text.as_bytes();
    let mut tried = 0;
    for (start, &b) in bytes.iter().enumerate() {
        if b != b'{' && b != b'[' {
            continue;
        }
        tried += 1;
        if tried > MAX_CANDIDATES {
            break;
        }
        let Some(end) = balanced_end(bytes, start) else {
            continue;
        };
        // `start` and `end` are ASCII bracket positions, hence char boundaries.
        if let Ok(v) = serde_json::from_str::<Value>(&text[start..=end])
            && acceptable(&v)
        {
            return Some(v);
        }
    }
    None
}

/// Objects, and arrays of objects only.
fn acceptable(v: &Value) -> bool {
    match v {
        Value::Object(_) => true,
        Value::Array(items) => items.iter().all(Value::is_object),
        _ => false,
    }
}

/// Index of the bracket closing the one at `start`, ignoring brackets in JSON strings.
/// `None` when a closer does not match its opener or the text ends first.
fn balanced_end(bytes: &[u8], start: usize) -> Option<usize> {
    let mut stack: Vec<u8> = Vec::new();
    let mut in_string = false;
    let mut escaped = false;
    for (i, &b) in bytes.iter().enumerate().skip(start) {
        if in_string {
            if escaped {
                escaped = false;
            } else if b == b'\\' {
                escaped = true;
            } else if b == b'"' {
                in_string = false;
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'{' => stack.push(b'}'),
            b'[' => stack.push(b']'),
            b'}' | b']' => {
                if stack.pop() != Some(b) {
                    return None;
                }
                if stack.is_empty() {
                    return Some(i);
                }
            }
            _ => {}
        }
    }
    None
}

/// `reply` without `<think>…</think>` / `<thinking>…</thinking>` blocks; an unclosed block
/// removes everything after its opening tag.
pub fn strip_reasoning(reply: &str) -> String {
    let mut out = reply.to_string();
    for (open, close) in [("<think>", "</think>"), ("<thinking>", "</thinking>")] {
        while let Some(s) = out.find(open) {
            match out[s..].find(close) {
                Some(e) => out.replace_range(s..s + e + close.len(), ""),
                None => out.truncate(s),
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn clean_object() {
        assert_eq!(find_json(r#"{"a": 1}"#), Some(json!({"a": 1})));
    }

    #[test]
    fn fenced_object() {
        let r = "```json\n{\"keep\": true, \"tags\": [\"a\"]}\n```";
        assert_eq!(find_json(r), Some(json!({"keep": true, "tags": ["a"]})));
        let r = "```\n{\"keep\": false}\n```\nDone.";
        assert_eq!(find_json(r), Some(json!({"keep": false})));
    }

    #[test]
    fn prefixed_and_chatty() {
        let r = "Here is the JSON: {\"x\": \"y\"} Let me know if you need more!";
        assert_eq!(find_json(r), Some(json!({"x": "y"})));
        // Brace-delimited prose before the JSON is skipped.
        let r = "Sure {friend}! [see below] [1, 2]\n{\"rules\": []}";
        assert_eq!(find_json(r), Some(json!({"rules": []})));
    }

    #[test]
    fn brackets_inside_strings_do_not_count() {
        let r =
            r#"Result: {"text": "she said \"}{\" and [left]", "n": [1, {"k": "]"}]} trailing }"#;
        assert_eq!(
            find_json(r),
            Some(json!({"text": "she said \"}{\" and [left]", "n": [1, {"k": "]"}]}))
        );
    }

    #[test]
    fn arrays_of_objects_are_accepted() {
        assert_eq!(
            find_json("[{\"kind\": \"preference\"}]"),
            Some(json!([{"kind": "preference"}]))
        );
        assert_eq!(find_json("[]"), Some(json!([])));
    }

    #[test]
    fn no_json_or_truncated_json() {
        assert_eq!(find_json("I cannot help with that."), None);
        assert_eq!(find_json(""), None);
        assert_eq!(
            find_json("{\"keep\": true, \"text\": \"Caroline went"),
            None
        );
        assert_eq!(find_json("{not json}"), None);
        assert_eq!(find_json("[1, 2, 3]"), None);
    }

    #[test]
    fn reasoning_blocks_are_dropped() {
        let r = "<think>The user wants {\"keep\": false} maybe</think>\n{\"keep\": true, \"text\": \"x\"}";
        assert_eq!(find_json(r), Some(json!({"keep": true, "text": "x"})));
        assert_eq!(find_json("<think>{\"a\": 1} still thinking"), None);
    }

    #[test]
    fn unicode_around_json() {
        let r = "Voilà — le JSON 🙂: {\"name\": \"Zoë\"} ✔";
        assert_eq!(find_json(r), Some(json!({"name": "Zoë"})));
    }
}
