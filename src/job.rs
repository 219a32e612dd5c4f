//! The reflection job: the unit of work between the request path and the reflector, and its
//! JSON wire format, compatible with the original Python service's `MemoryReflectionJob`.
//!
//! Compatibility rules (ARCHITECTURE.md, "Wire compatibility"): timestamps written by the
//! Python producer are ISO 8601 without a zone and mean UTC — we accept those and RFC 3339,
//! and always write RFC 3339 UTC; unknown extra fields are accepted and ignored; `priority`
//! is the integer 0 (LOW), 1 (NORMAL), 2 (HIGH) or 3 (URGENT).

use chrono::{DateTime, NaiveDateTime, Utc};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// How urgently a job should be reflected. Workers take higher priorities first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Priority {
    Low = 0,
    Normal = 1,
    High = 2,
    Urgent = 3,
}

impl Priority {
    /// The integer used on the wire and in the database (0..=3).
    pub fn as_i64(self) -> i64 {
        self as i64
    }

    /// From the wire integer; `None` outside 0..=3.
    pub fn from_i64(v: i64) -> Option<Self> {
        match v {
            0 => Some(Self::Low),
            1 => Some(Self::Normal),
            2 => Some(Self::High),
            3 => Some(Self::Urgent),
            _ => None,
        }
    }

    /// The lower-case name used by the HTTP API (`low`, `normal`, `high`, `urgent`).
    pub fn name(self) -> &'static str {
        match self {
            Self::Low => "low",
            Self::Normal => "normal",
            Self::High => "high",
            Self::Urgent => "urgent",
        }
    }
}

impl Serialize for Priority {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_i64(self.as_i64())
    }
}

impl<'de> Deserialize<'de> for Priority {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = i64::deserialize(d)?;
        Priority::from_i64(v).ok_or_else(|| {
            serde::de::Error::custom(format!("priority must be 0, 1, 2 or 3, got {v}"))
        })
    }
}

/// A reflection job as it travels on the queue and is kept in the `jobs` table.
///
/// Field names and meaning are those of the original service's `MemoryReflectionJob`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReflectionJob {
    pub job_id: String,
    pub user_id: String,
    pub session_id: String,
    pub user_message: String,
    #[serde(default)]
    pub assistant_response: String,
    /// When the turn happened.
    #[serde(with = "wire_time")]
    pub timestamp: DateTime<Utc>,
    #[serde(default = "default_priority")]
    pub priority: Priority,
    /// Free-form object; `speaker`, `dia_id`, `timezone`, `image_caption` and
    /// `interaction_id` are read by the reflector.
    #[serde(default = "empty_object")]
    pub metadata: serde_json::Value,
    #[serde(default)]
    pub retry_count: u32,
    #[serde(default = "default_max_retries")]
    pub max_retries: u32,
    #[serde(with = "wire_time", default = "Utc::now")]
    pub created_at: DateTime<Utc>,
}

fn default_priority() -> Priority {
    Priority::Normal
}
fn empty_object() -> serde_json::Value {
    serde_json::Value::Object(Default::default())
}
/// The original service's default (`max_retries = 3`).
pub fn default_max_retries() -> u32 {
    3
}

impl ReflectionJob {
    /// A string field of `metadata`, if present and a string.
    pub fn meta_str(&self, key: &str) -> Option<&str> {
        self.metadata.get(key).and_then(|v| v.as_str())
    }

    /// The interaction (turn) this job reflects: `metadata.interaction_id` when the job came
    /// from our own API, else the job id (jobs from another producer have no stored turn).
    pub fn interaction_id(&self) -> &str {
        self.meta_str("interaction_id").unwrap_or(&self.job_id)
    }

    /// The evidence ids of what this job's turn teaches: `metadata.dia_id` when given (LoCoMo
    /// dialogue ids), else the interaction id.
    pub fn evidence(&self) -> Vec<String> {
        vec![
            self.meta_str("dia_id")
                .unwrap_or_else(|| self.interaction_id())
                .to_string(),
        ]
    }

    /// Decode a job from its wire JSON, with a message that names the offending field.
    pub fn from_json(bytes: &[u8]) -> Result<Self, String> {
        let text = std::str::from_utf8(bytes).map_err(|e| format!("body is not UTF-8: {e}"))?;
        serde_json::from_str(text).map_err(|e| format!("invalid reflection job JSON: {e}"))
    }
}

/// Parse a timestamp as written by either producer: RFC 3339 with a zone, or ISO 8601 without
/// one (meaning UTC), with or without fractional seconds; a bare date means midnight UTC.
pub fn parse_timestamp(s: &str) -> Option<DateTime<Utc>> {
    let s = s.trim();
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Some(t.with_timezone(&Utc));
    }
    for fmt in [
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%d %H:%M:%S%.f",
        "%Y-%m-%dT%H:%M",
    ] {
        if let Ok(n) = NaiveDateTime::parse_from_str(s, fmt) {
            return Some(n.and_utc());
        }
    }
    chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .ok()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|n| n.and_utc())
}

/// Write a timestamp as RFC 3339 UTC with millisecond precision (`2023-05-08T13:56:00.000Z`).
pub fn format_timestamp(t: &DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// Serde adapter: read either timestamp form, write RFC 3339 UTC.
pub mod wire_time {
    use super::*;

    pub fn serialize<S: Serializer>(t: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format_timestamp(t))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<DateTime<Utc>, D::Error> {
        let s = String::deserialize(d)?;
        parse_timestamp(&s).ok_or_else(|| {
            serde::de::Error::custom(format!("not an ISO 8601 / RFC 3339 timestamp: {s:?}"))
        })
    }
}

/// "a string", "a number", … — how error messages name the JSON type that was found.
pub fn json_kind(v: &serde_json::Value) -> &'static str {
    use serde_json::Value;
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// A job's place in its life cycle; the names are the API's and the database's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobState {
    /// Waiting to be taken by a worker.
    Queued,
    /// Leased to a worker; the lease expires if the worker dies.
    Processing,
    /// A tier failed; waiting for its backoff to pass before the failed tiers run again.
    Retrying,
    /// Every tier committed.
    Completed,
    /// Retries exhausted or the job cannot be processed; see its reason. Replayable.
    Dead,
}

impl JobState {
    pub const ALL: [JobState; 5] = [
        Self::Queued,
        Self::Processing,
        Self::Retrying,
        Self::Completed,
        Self::Dead,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Queued => "queued",
            Self::Processing => "processing",
            Self::Retrying => "retrying",
            Self::Completed => "completed",
            Self::Dead => "dead",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|x| x.as_str() == s)
    }

    /// Completed and dead are final: nothing happens to the job unless an operator replays it.
    pub fn is_final(self) -> bool {
        matches!(self, Self::Completed | Self::Dead)
    }
}

/// The three reflected tiers; each commits on its own and is idempotent on (job_id, tier).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Tier {
    Episodic,
    Semantic,
    Procedural,
}

impl Tier {
    pub const ALL: [Tier; 3] = [Self::Episodic, Self::Semantic, Self::Procedural];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Episodic => "episodic",
            Self::Semantic => "semantic",
            Self::Procedural => "procedural",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|x| x.as_str() == s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_the_python_producers_job() {
        let body = br#"{"job_id":"j1","user_id":"alice.smith","session_id":"s",
            "user_message":"hello","assistant_response":"hi","timestamp":"2024-03-01T10:20:30.123456",
            "priority":2,"metadata":{},"retry_count":0,"max_retries":3,
            "created_at":"2024-03-01T10:20:31","extra_field":[1,2]}"#;
        let job = ReflectionJob::from_json(body).unwrap();
        assert_eq!(job.priority, Priority::High);
        assert_eq!(format_timestamp(&job.timestamp), "2024-03-01T10:20:30.123Z");
        let out = serde_json::to_value(&job).unwrap();
        assert_eq!(out["timestamp"], "2024-03-01T10:20:30.123Z");
        assert_eq!(out["priority"], 2);
    }

    #[test]
    fn rejects_wrong_types_and_unknown_priority_naming_the_problem() {
        let e = ReflectionJob::from_json(br#"{"job_id":"j","user_id":5}"#).unwrap_err();
        assert!(e.contains("user_id") || e.contains("invalid type"), "{e}");
        let e = ReflectionJob::from_json(
            br#"{"job_id":"j","user_id":"u","session_id":"s","user_message":"m","timestamp":"2024-01-01T00:00:00Z","priority":7}"#,
        )
        .unwrap_err();
        assert!(e.contains("priority"), "{e}");
        assert!(
            ReflectionJob::from_json(&[0xff, 0xfe])
                .unwrap_err()
                .contains("UTF-8")
        );
    }

    #[test]
    fn timestamps_with_and_without_zone() {
        let a = parse_timestamp("2023-05-08T13:56:00+02:00").unwrap();
        assert_eq!(format_timestamp(&a), "2023-05-08T11:56:00.000Z");
        let b = parse_timestamp("2023-05-08T13:56:00").unwrap();
        assert_eq!(format_timestamp(&b), "2023-05-08T13:56:00.000Z");
        assert!(parse_timestamp("yesterday").is_none());
    }
}
