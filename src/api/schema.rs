//! The wire shapes of the HTTP API, for the OpenAPI document ([`super::openapi`]).
//!
//! The handlers validate request bodies by hand (so that a 422 names the first bad field, and
//! unknown fields of an edit are refused) and answer with rows whose types live in
//! `crate::store`, `crate::recall` and `crate::manager`. The store is kept free of OpenAPI
//! concerns, so the shapes are described here, once, as `ToSchema` types: a request type per
//! body, a response type per answer. They are never built at run time; what keeps them true
//! is `scripts/schemathesis.sh`, which checks every response of a running server against this
//! document, and `tests/openapi.rs`.
//!
//! Bounds given here (lengths, ranges, patterns) are the handlers' own, so a client generated
//! from the document refuses what the server would refuse with 422.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use utoipa::openapi::RefOr;
use utoipa::openapi::schema::{
    AllOfBuilder, AnyOfBuilder, ArrayBuilder, ObjectBuilder, Schema, Type,
};
use utoipa::{IntoParams, PartialSchema, ToSchema};

/// Not blank: a character that is not white space as the server trims it (Unicode
/// `White_Space`, which has U+0085 and lacks U+FEFF, unlike a regular expression's `\s`).
pub const NOT_BLANK_PATTERN: &str =
    r"[^\t\n\u000B\f\r \u0085\u00A0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000]";

/// The timestamps the server reads, as the document states them: RFC 3339 with a `T`
/// (`2024-05-08T13:56:00Z`, `…+02:00`; offsets up to ±14:00, as a turn's offset becomes the
/// user's time zone), or without a zone, meaning UTC
/// (`2024-05-08T13:56:00`, `2024-05-08 13:56:00.5`, `2024-05-08T13:56`, `2024-05-08`). The
/// server also takes 29 February of leap years and a few more RFC 3339 spellings, which a
/// regular expression cannot tell apart from invalid dates; the document leaves them out.
pub const TIMESTAMP_PATTERN: &str = r"^[0-9]{4}-((0[13578]|1[02])-(0[1-9]|[12][0-9]|3[01])|(0[469]|11)-(0[1-9]|[12][0-9]|30)|02-(0[1-9]|1[0-9]|2[0-8]))(T([01][0-9]|2[0-3]):[0-5][0-9](:[0-5][0-9](\.[0-9]{1,9})?(Z|[+-](0[0-9]|1[0-3]):[0-5][0-9]|[+-]14:00)?)?| ([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](\.[0-9]{1,9})?)?$";

/// A user id: 1 to 256 bytes (the schema says characters; the server counts UTF-8 bytes),
/// no control characters.
pub const USER_ID_PATTERN: &str = r"^[^\u0000-\u001F\u007F-\u009F]+$";

// ------------------------------------------------------------------------------- errors

/// The error body of every 4xx and 503 answer (`crate::api::ApiError`).
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    /// What went wrong, as a stable code.
    pub error: ErrorCode,
    /// What went wrong, for a person.
    pub message: String,
    /// 422 only: the request field that is wrong (`metadata.timezone`, `limit`, `body`…).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// 429 only: seconds to wait before sending the turn again (also the `Retry-After` header).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retry_after_s: Option<u64>,
}

/// The `error` code of an [`ErrorBody`]; one per status.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// 400: the body is not JSON, or not an object.
    BadRequest,
    /// 422: a field is missing, of the wrong type or out of range (`field` names it).
    ValidationFailed,
    /// 401: no API key, or an unknown one.
    Unauthorized,
    /// 403: a valid key that is not allowed here.
    Forbidden,
    /// 404: no such job, memory or route.
    NotFound,
    /// 405: the route exists, not with this method (the `Allow` header lists its methods).
    MethodNotAllowed,
    /// 409: an idempotency key reused for another turn, or an edit that would duplicate a memory.
    Conflict,
    /// 413: the body is larger than `max_body_bytes`.
    PayloadTooLarge,
    /// 429: backpressure; nothing was stored.
    TooManyRequests,
    /// 503: the store cannot be reached.
    Unavailable,
    /// 500: a bug; details only in the server log.
    Internal,
}

// ------------------------------------------------------------------------------ params

/// The user a route is about.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub struct UserPath {
    /// The user id: 1 to 256 bytes without control characters (dots and any other
    /// characters are fine).
    #[param(
        min_length = 1,
        max_length = 256,
        pattern = r"^[^\u0000-\u001F\u007F-\u009F]+$"
    )]
    pub user_id: String,
}

/// One memory of a user.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub struct MemoryPath {
    /// The user id (as in every `{user_id}` route).
    #[param(
        min_length = 1,
        max_length = 256,
        pattern = r"^[^\u0000-\u001F\u007F-\u009F]+$"
    )]
    pub user_id: String,
    /// The memory's `id`, as browsing a tier, search and recall show it.
    #[param(minimum = 1)]
    pub id: i64,
}

/// A reflection job.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub struct JobPath {
    /// The `reflection_job_id` that storing the turn answered (`POST /api/interactions`; the
    /// MCP tool `store_turn`).
    pub job_id: String,
}

/// Pagination, newest first.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PageQuery {
    /// Items per page, 1 to 500 (default 50).
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<u32>,
    /// Items to skip (default 0).
    #[param(minimum = 0)]
    pub offset: Option<u64>,
}

/// Pagination of the procedural tier.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ProceduralQuery {
    /// Items per page, 1 to 500 (default 50).
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<u32>,
    /// Items to skip (default 0).
    #[param(minimum = 0)]
    pub offset: Option<u64>,
    /// Also list rules a newer rule of the same topic superseded (default false).
    pub include_superseded: Option<bool>,
}

/// What to recall.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ContextQuery {
    /// What the next prompt is about (at most 4096 bytes); empty: the recent state of the
    /// user's memory.
    #[param(max_length = 4096)]
    pub query: Option<String>,
    /// Items in the ranked `memories` list, 1 to 100 (default 10).
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<u32>,
    /// Also facts that are no longer valid (default false).
    pub include_invalid: Option<bool>,
    /// Trim `context` to fit this many estimated tokens, highest-ranked first (1 to 1000000).
    #[param(minimum = 1, maximum = 1000000)]
    pub max_tokens: Option<u32>,
}

/// What to search for.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SearchQuery {
    /// What to look for: not blank, at most 4096 bytes.
    #[param(
        min_length = 1,
        max_length = 4096,
        pattern = r"[^\t\n\u000B\f\r \u0085\u00A0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000]"
    )]
    pub query: String,
    /// Items wanted, 1 to 100 (default 10).
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<u32>,
    /// Only these tiers, comma-separated: `short_term`, `episodic`, `semantic`,
    /// `procedural` (default: all).
    #[param(
        pattern = r"^ *(short_term|short-term|episodic|semantic|procedural) *(, *(short_term|short-term|episodic|semantic|procedural) *)*$"
    )]
    pub tier: Option<String>,
    /// Only items dated at or after this instant: an RFC 3339 timestamp (`2024-05-08T13:56:00Z`)
    /// or a date (`2024-05-08`, from its midnight UTC). An item's date is when its event
    /// happened (episodic), its `valid_at` (semantic), when it was stated (procedural) or the
    /// turn's timestamp (short-term).
    #[param(
        pattern = "^[0-9]{4}-((0[13578]|1[02])-(0[1-9]|[12][0-9]|3[01])|(0[469]|11)-(0[1-9]|[12][0-9]|30)|02-(0[1-9]|1[0-9]|2[0-8]))(T([01][0-9]|2[0-3]):[0-5][0-9](:[0-5][0-9](\\.[0-9]{1,9})?(Z|[+-](0[0-9]|1[0-3]):[0-5][0-9]|[+-]14:00)?)?| ([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](\\.[0-9]{1,9})?)?$"
    )]
    pub since: Option<String>,
    /// Only items dated before this instant (as `since`); a date alone includes that whole day
    /// (UTC). Must be later than `since`.
    #[param(
        pattern = "^[0-9]{4}-((0[13578]|1[02])-(0[1-9]|[12][0-9]|3[01])|(0[469]|11)-(0[1-9]|[12][0-9]|30)|02-(0[1-9]|1[0-9]|2[0-8]))(T([01][0-9]|2[0-3]):[0-5][0-9](:[0-5][0-9](\\.[0-9]{1,9})?(Z|[+-](0[0-9]|1[0-3]):[0-5][0-9]|[+-]14:00)?)?| ([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](\\.[0-9]{1,9})?)?$"
    )]
    pub until: Option<String>,
}

/// `GET /api/memory/search/{user_id}`: ranked items, best first.
#[derive(Debug, Serialize, ToSchema)]
pub struct SearchResponse {
    pub user_id: String,
    pub query: String,
    pub limit: u64,
    /// At most `limit` items, best first.
    pub items: Vec<RankedMemory>,
}

// ------------------------------------------------------------------------ interactions

/// One turn of a conversation. Unknown fields are ignored.
#[derive(Debug, Deserialize, ToSchema)]
pub struct InteractionRequest {
    /// The user: 1 to 256 bytes without control characters.
    #[schema(
        min_length = 1,
        max_length = 256,
        pattern = r"^[^\u0000-\u001F\u007F-\u009F]+$"
    )]
    pub user_id: String,
    /// The conversation: at most 256 bytes.
    #[schema(max_length = 256)]
    pub session_id: String,
    /// What the user said; not blank.
    #[schema(
        min_length = 1,
        pattern = r"[^\t\n\u000B\f\r \u0085\u00A0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000]"
    )]
    pub user_message: String,
    /// What the assistant answered; may be empty or absent.
    pub assistant_response: Option<String>,
    /// When the turn happened: RFC 3339; without a zone it means UTC (`2024-05-08T13:56:00`,
    /// `2024-05-08 13:56:00` and `2024-05-08` are accepted too). Default: now. Its UTC offset
    /// is the user's time zone unless `metadata.timezone` says otherwise.
    #[schema(
        pattern = "^[0-9]{4}-((0[13578]|1[02])-(0[1-9]|[12][0-9]|3[01])|(0[469]|11)-(0[1-9]|[12][0-9]|30)|02-(0[1-9]|1[0-9]|2[0-8]))(T([01][0-9]|2[0-3]):[0-5][0-9](:[0-5][0-9](\\.[0-9]{1,9})?(Z|[+-](0[0-9]|1[0-3]):[0-5][0-9]|[+-]14:00)?)?| ([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](\\.[0-9]{1,9})?)?$"
    )]
    pub timestamp: Option<String>,
    /// Free-form object; these keys are read, other keys are kept.
    pub metadata: Option<InteractionMetadata>,
    /// Idempotency key, unique across the service: 1 to 200 bytes without spaces or control
    /// characters. Resending the same body returns the same job; another body with the same
    /// id gets 409.
    #[schema(
        min_length = 1,
        max_length = 200,
        pattern = r"^[^\s\u0000-\u001F\u007F-\u009F]+$"
    )]
    pub interaction_id: Option<String>,
}

/// The keys of a turn's `metadata` the service reads (any other key is kept as it is).
#[derive(Debug, Deserialize, ToSchema)]
pub struct InteractionMetadata {
    /// Who "I" is (default: the user id).
    pub speaker: Option<String>,
    /// IANA time zone name (`Europe/Berlin`) or UTC offset (`+02:00`, at most ±14:00), for
    /// resolving dates.
    #[schema(schema_with = timezone_schema)]
    pub timezone: Option<String>,
    /// Evidence id (LoCoMo's dialogue id), shown as the evidence of what is remembered.
    pub dia_id: Option<String>,
    /// A caption of an image shared in the turn.
    pub image_caption: Option<String>,
}

/// A time zone as the server reads it: an IANA name, `UTC`, an offset up to ±14:00, or empty
/// (none).
/// (`GMT+5`, `+0530` and lower case are read too; the document gives the plain forms.)
fn timezone_schema() -> RefOr<Schema> {
    let names: Vec<Value> = chrono_tz::TZ_VARIANTS
        .iter()
        .map(|z| json!(z.name()))
        .collect();
    AnyOfBuilder::new()
        .item(
            ObjectBuilder::new()
                .schema_type(Type::String)
                .enum_values(Some(names)),
        )
        .item(
            ObjectBuilder::new()
                .schema_type(Type::String)
                .pattern(Some(r"^(|UTC|[+-](0[0-9]|1[0-3]):[0-5][0-9]|[+-]14:00)$")),
        )
        .item(ObjectBuilder::new().schema_type(Type::Null))
        .description(Some(
            "IANA time zone name (`Europe/Berlin`) or UTC offset (`+02:00`, at most ±14:00)",
        ))
        .into()
}

/// The priority of a reflection job, from the words of the message.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum JobPriority {
    Low,
    Normal,
    High,
    Urgent,
}

/// A reflection job's state.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum JobStateName {
    Queued,
    Processing,
    Retrying,
    Completed,
    Dead,
}

/// What `POST /api/interactions` did.
#[derive(Debug, Serialize, ToSchema)]
pub struct StoredTurn {
    /// The idempotency key (the client's, or one the service made).
    pub interaction_id: String,
    /// The job that reflects this turn (`GET /api/reflection/jobs/{job_id}`).
    pub reflection_job_id: String,
    pub priority: JobPriority,
    /// `queued` on the fast path; the job's state after inline reflection on the traditional
    /// path, or its current state for a replayed request.
    pub status: JobStateName,
    /// True when this request repeated an earlier one with the same `interaction_id`.
    pub idempotent_replay: bool,
    /// Traditional path only (`MEMORY_FAST_MODE=false`): what each tier did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub results: Option<JobOutcomeBody>,
}

/// Every tier's outcome for one run of a job.
#[derive(Debug, Serialize, ToSchema)]
pub struct JobOutcomeBody {
    pub tiers: Vec<TierOutcomeBody>,
    /// True when the job can never succeed (dead without retries).
    pub permanent: bool,
}

/// One tier's outcome for one run of a job.
#[derive(Debug, Serialize, ToSchema)]
pub struct TierOutcomeBody {
    /// `episodic`, `semantic` or `procedural`.
    pub tier: String,
    /// What was written (ids, counts).
    pub result: Option<Value>,
    pub error: Option<String>,
    /// Wall time of the run (ms).
    pub latency_ms: f64,
}

// ------------------------------------------------------------------------------ tiers

/// A turn in short-term memory (Tier 1).
#[derive(Debug, Serialize, ToSchema)]
pub struct Turn {
    pub interaction_id: String,
    pub user_id: String,
    pub session_id: String,
    pub user_message: String,
    pub assistant_response: String,
    /// RFC 3339 UTC.
    pub timestamp: String,
    #[schema(value_type = Object)]
    pub metadata: Value,
    pub reflection_job_id: String,
    /// Whether its reflection job completed.
    pub reflected: bool,
}

/// An episode (Tier 2): a curated, self-contained memory.
#[derive(Debug, Serialize, ToSchema)]
pub struct Episode {
    pub id: i64,
    pub user_id: String,
    pub speaker: String,
    pub text: String,
    pub summary: String,
    /// 0 to 1.
    pub importance: f32,
    pub tags: Vec<String>,
    /// When it happened (RFC 3339 UTC).
    pub occurred_at: String,
    /// When it was told (RFC 3339 UTC).
    pub observed_at: String,
    /// Source `dia_id`s, else interaction ids (`manual:N` for an explicit memory).
    pub evidence: Vec<String>,
    pub job_id: String,
}

/// An episode as recall ranks it.
#[derive(Debug, Serialize, ToSchema)]
pub struct ScoredEpisode {
    #[serde(flatten)]
    pub episode: Episode,
    /// Fused BM25 + vector score; higher is better, comparable within one answer.
    pub score: f64,
    /// The episode with its neighbouring turns of the same session.
    pub with_context: String,
    pub context_evidence: Vec<String>,
}

/// A fact (Tier 3): a relation between two entities, valid from `valid_at` until
/// `invalid_at`.
#[derive(Debug, Serialize, ToSchema)]
pub struct Fact {
    pub id: i64,
    pub subject: String,
    /// Upper case with underscores (`LIVES_IN`).
    pub predicate: String,
    pub object: String,
    /// The fact as a sentence.
    pub fact: String,
    pub valid_at: String,
    /// Null while the fact holds.
    pub invalid_at: Option<String>,
    pub evidence: Vec<String>,
}

/// An entity (Tier 3) with its aliases.
#[derive(Debug, Serialize, ToSchema)]
pub struct Entity {
    pub id: i64,
    pub name: String,
    pub kind: String,
    pub aliases: Vec<String>,
}

/// A rule (Tier 4): a preference, instruction or constraint.
#[derive(Debug, Serialize, ToSchema)]
pub struct Rule {
    pub id: i64,
    /// `preference`, `instruction` or `constraint`.
    pub kind: String,
    /// The newest rule of a topic supersedes the others.
    pub topic: String,
    pub statement: String,
    pub confidence: f32,
    pub stated_at: String,
    /// The rule that replaced this one, if any; the rule's own id when a later turn ended
    /// it without a replacement ("you can forget the bullet points").
    pub superseded_by: Option<i64>,
    pub evidence: Vec<String>,
}

/// One item of the ranked `memories` list.
#[derive(Debug, Serialize, ToSchema)]
pub struct RankedMemory {
    pub text: String,
    pub tier: MemoryTier,
    /// Higher is better; comparable within one answer only.
    pub score: f64,
    /// Source `dia_id`s, else interaction ids.
    pub evidence: Vec<String>,
    /// Row id in its tier (the interaction id for a short-term turn).
    pub id: String,
    /// When it holds or happened (RFC 3339 UTC): an episode's event, a fact's `valid_at`, a
    /// rule's statement, a turn's timestamp.
    pub date: Option<String>,
}

/// The tier a ranked memory comes from.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum MemoryTier {
    ShortTerm,
    Episodic,
    Semantic,
    Procedural,
}

/// The running summary of the turns folded out of the Tier 1 window.
#[derive(Debug, Serialize, ToSchema)]
pub struct ShortTermSummary {
    pub summary: String,
    pub folded_turns: i64,
    /// Timestamp of the newest folded turn.
    pub through: String,
    pub updated_at: String,
}

/// `GET /api/memory/context/{user_id}`: context for the next prompt from all four tiers.
#[derive(Debug, Serialize, ToSchema)]
pub struct ContextResponse {
    pub user_id: String,
    pub query: String,
    /// Recent turns, newest first (including turns not yet reflected).
    pub short_term: Vec<Turn>,
    pub episodes: Vec<ScoredEpisode>,
    /// Currently valid facts about the entities the query names (`include_invalid` adds
    /// expired ones).
    pub facts: Vec<Fact>,
    pub rules: Vec<Rule>,
    /// One ranked list over every tier, at most `limit` items.
    pub memories: Vec<RankedMemory>,
    /// A block ready for a prompt.
    pub context: String,
    /// Estimated size of `context` in tokens.
    pub context_tokens: u64,
    /// The budget asked for (only with `max_tokens`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_tokens: Option<u64>,
    /// Items left out of `context` to fit the budget (only with `max_tokens`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub omitted: Option<u64>,
    /// Which items were left out, highest priority first (only with `max_tokens`): ranked
    /// memories by their tier and id, standing rules and recent turns outside the ranked list
    /// as `procedural` / `short_term` with the rule id / interaction id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub omitted_items: Option<Vec<OmittedItem>>,
    pub short_term_summary: Option<ShortTermSummary>,
}

/// An item `max_tokens` left out of the context block.
#[derive(Debug, Serialize, ToSchema)]
pub struct OmittedItem {
    pub tier: MemoryTier,
    /// Row id in its tier (the interaction id for a turn), as in `memories`;
    /// `short_term_summary` for the summary of the turns folded out of the Tier 1 window.
    pub id: String,
    pub text: String,
}

/// `GET /api/memory/short-term/{user_id}`.
#[derive(Debug, Serialize, ToSchema)]
pub struct TurnPage {
    pub user_id: String,
    /// `short_term`.
    pub tier: String,
    pub limit: u64,
    pub offset: u64,
    pub turns: Vec<Turn>,
}

/// `GET /api/memory/episodic/{user_id}`.
#[derive(Debug, Serialize, ToSchema)]
pub struct EpisodePage {
    pub user_id: String,
    /// `episodic`.
    pub tier: String,
    pub limit: u64,
    pub offset: u64,
    pub episodes: Vec<Episode>,
}

/// `GET /api/memory/semantic/{user_id}`: a page of entities and a page of facts.
#[derive(Debug, Serialize, ToSchema)]
pub struct SemanticPage {
    pub user_id: String,
    /// `semantic`.
    pub tier: String,
    pub limit: u64,
    pub offset: u64,
    pub entities: Vec<Entity>,
    pub facts: Vec<Fact>,
}

/// `GET /api/memory/procedural/{user_id}`.
#[derive(Debug, Serialize, ToSchema)]
pub struct RulePage {
    pub user_id: String,
    /// `procedural`.
    pub tier: String,
    pub limit: u64,
    pub offset: u64,
    pub rules: Vec<Rule>,
}

/// Rows per tier and jobs by state for one user.
#[derive(Debug, Serialize, ToSchema)]
pub struct UserStats {
    pub user_id: String,
    pub short_term: ShortTermCounts,
    pub episodic: EpisodicCounts,
    pub semantic: SemanticCounts,
    pub procedural: ProceduralCounts,
    /// Jobs by state (every state present).
    pub jobs: BTreeMap<String, i64>,
}

/// Tier 1 counts.
#[derive(Debug, Serialize, ToSchema)]
pub struct ShortTermCounts {
    pub turns: i64,
    pub unreflected: i64,
}

/// Tier 2 counts.
#[derive(Debug, Serialize, ToSchema)]
pub struct EpisodicCounts {
    pub episodes: i64,
}

/// Tier 3 counts.
#[derive(Debug, Serialize, ToSchema)]
pub struct SemanticCounts {
    pub entities: i64,
    pub facts: i64,
    pub valid_facts: i64,
}

/// Tier 4 counts.
#[derive(Debug, Serialize, ToSchema)]
pub struct ProceduralCounts {
    pub rules: i64,
    pub active_rules: i64,
}

/// `DELETE /api/memory/user/{user_id}`: rows removed, by table.
#[derive(Debug, Serialize, ToSchema)]
pub struct Forgotten {
    pub user_id: String,
    pub removed: BTreeMap<String, i64>,
}

// ---------------------------------------------------------------------------- editing

/// `POST /api/memory/episodic/{user_id}`: remember this. Unknown fields are 422.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewEpisodeRequest {
    /// At most 10,000 bytes; not blank.
    #[schema(
        min_length = 1,
        max_length = 10000,
        pattern = r"[^\t\n\u000B\f\r \u0085\u00A0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000]"
    )]
    pub text: String,
    /// When it happened (RFC 3339; default now).
    #[schema(
        pattern = "^[0-9]{4}-((0[13578]|1[02])-(0[1-9]|[12][0-9]|3[01])|(0[469]|11)-(0[1-9]|[12][0-9]|30)|02-(0[1-9]|1[0-9]|2[0-8]))(T([01][0-9]|2[0-3]):[0-5][0-9](:[0-5][0-9](\\.[0-9]{1,9})?(Z|[+-](0[0-9]|1[0-3]):[0-5][0-9]|[+-]14:00)?)?| ([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](\\.[0-9]{1,9})?)?$"
    )]
    pub occurred_at: Option<String>,
    /// 0 to 1 (default 0.5).
    #[schema(minimum = 0.0, maximum = 1.0)]
    pub importance: Option<f64>,
    /// At most 50 tags of 1 to 100 bytes.
    #[schema(max_items = 50, inline)]
    pub tags: Option<Vec<Tag>>,
    /// Who said it (default the user id); not blank, at most 10,000 bytes.
    #[schema(
        min_length = 1,
        max_length = 10000,
        pattern = r"[^\t\n\u000B\f\r \u0085\u00A0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000]"
    )]
    pub speaker: Option<String>,
}

/// A tag of an episode: 1 to 100 bytes.
#[derive(Debug, Deserialize, ToSchema)]
#[schema(min_length = 1, max_length = 100)]
pub struct Tag(pub String);

/// `POST /api/memory/semantic/{user_id}`: a fact. Unknown fields are 422.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewFactRequest {
    /// Not blank; at most 10,000 bytes.
    #[schema(
        min_length = 1,
        max_length = 10000,
        pattern = r"[^\t\n\u000B\f\r \u0085\u00A0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000]"
    )]
    pub subject: String,
    /// Up to 64 letters, spaces or underscores; stored upper case (`works at` → `WORKS_AT`).
    #[schema(
        min_length = 1,
        max_length = 64,
        pattern = r"^[A-Za-z_]([A-Za-z_ ]*[A-Za-z_])?$"
    )]
    pub predicate: String,
    /// Not blank; at most 10,000 bytes.
    #[schema(
        min_length = 1,
        max_length = 10000,
        pattern = r"[^\t\n\u000B\f\r \u0085\u00A0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000]"
    )]
    pub object: String,
    /// The fact as a sentence (default "subject predicate object."). Read as said by the
    /// subject ("I" is the subject), it must not state another relation than the predicate
    /// (422 naming `fact`); a sentence stating no relation the analysis knows is accepted.
    #[schema(
        min_length = 1,
        max_length = 10000,
        pattern = r"[^\t\n\u000B\f\r \u0085\u00A0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000]"
    )]
    pub fact: Option<String>,
    /// Valid from (RFC 3339; default now).
    #[schema(
        pattern = "^[0-9]{4}-((0[13578]|1[02])-(0[1-9]|[12][0-9]|3[01])|(0[469]|11)-(0[1-9]|[12][0-9]|30)|02-(0[1-9]|1[0-9]|2[0-8]))(T([01][0-9]|2[0-3]):[0-5][0-9](:[0-5][0-9](\\.[0-9]{1,9})?(Z|[+-](0[0-9]|1[0-3]):[0-5][0-9]|[+-]14:00)?)?| ([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](\\.[0-9]{1,9})?)?$"
    )]
    pub valid_at: Option<String>,
    /// One value at a time, like `LIVES_IN` (default: as the slot's existing facts, else false).
    pub exclusive: Option<bool>,
}

/// The kind of a rule.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RuleKind {
    Preference,
    Instruction,
    Constraint,
}

/// `POST /api/memory/procedural/{user_id}`: a rule. Unknown fields are 422.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewRuleRequest {
    /// Not blank; at most 10,000 bytes.
    #[schema(
        min_length = 1,
        max_length = 10000,
        pattern = r"[^\t\n\u000B\f\r \u0085\u00A0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000]"
    )]
    pub statement: String,
    pub kind: RuleKind,
    /// The newest rule of a topic supersedes the others (`language`, `diet`; default the
    /// statement).
    #[schema(
        min_length = 1,
        max_length = 10000,
        pattern = r"[^\t\n\u000B\f\r \u0085\u00A0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000]"
    )]
    pub topic: Option<String>,
}

/// `PATCH /api/memory/episodic/{user_id}/{id}`: the fields to change. Unknown fields are 422.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EpisodePatchFields {
    #[schema(
        min_length = 1,
        max_length = 10000,
        pattern = r"[^\t\n\u000B\f\r \u0085\u00A0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000]"
    )]
    pub text: Option<String>,
    #[schema(minimum = 0.0, maximum = 1.0)]
    pub importance: Option<f64>,
    #[schema(max_items = 50, inline)]
    pub tags: Option<Vec<Tag>>,
}

/// The body of the PATCH route: [`EpisodePatchFields`] with at least one field not null (a null or
/// absent field is left as it is).
#[derive(Debug)]
pub struct EpisodePatchRequest;

impl PartialSchema for EpisodePatchRequest {
    fn schema() -> RefOr<Schema> {
        at_least_one(
            EpisodePatchFields::schema(),
            &[
                ("text", Type::String),
                ("importance", Type::Number),
                ("tags", Type::Array),
            ],
        )
    }
}

impl ToSchema for EpisodePatchRequest {}

/// `PATCH /api/memory/semantic/{user_id}/{id}`: the fields to change. Unknown fields are 422.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FactPatchFields {
    /// The fact as a sentence. Read as said by the fact's subject ("I" is the subject), it must
    /// not state another relation than the fact's predicate (422 naming `fact`).
    #[schema(
        min_length = 1,
        max_length = 10000,
        pattern = r"[^\t\n\u000B\f\r \u0085\u00A0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000]"
    )]
    pub fact: Option<String>,
    #[schema(
        min_length = 1,
        max_length = 10000,
        pattern = r"[^\t\n\u000B\f\r \u0085\u00A0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000]"
    )]
    pub object: Option<String>,
}

/// The body of the PATCH route: [`FactPatchFields`] with at least one field not null (a null or
/// absent field is left as it is).
#[derive(Debug)]
pub struct FactPatchRequest;

impl PartialSchema for FactPatchRequest {
    fn schema() -> RefOr<Schema> {
        at_least_one(
            FactPatchFields::schema(),
            &[("fact", Type::String), ("object", Type::String)],
        )
    }
}

impl ToSchema for FactPatchRequest {}

/// `PATCH /api/memory/procedural/{user_id}/{id}`: the fields to change. Unknown fields are 422.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RulePatchFields {
    #[schema(
        min_length = 1,
        max_length = 10000,
        pattern = r"[^\t\n\u000B\f\r \u0085\u00A0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000]"
    )]
    pub statement: Option<String>,
    #[schema(inline)]
    pub kind: Option<RuleKind>,
}

/// The body of the PATCH route: [`RulePatchFields`] with at least one field not null (a null or
/// absent field is left as it is).
#[derive(Debug)]
pub struct RulePatchRequest;

impl PartialSchema for RulePatchRequest {
    fn schema() -> RefOr<Schema> {
        at_least_one(
            RulePatchFields::schema(),
            &[("statement", Type::String), ("kind", Type::String)],
        )
    }
}

impl ToSchema for RulePatchRequest {}

/// A deleted episode, as it was.
#[derive(Debug, Serialize, ToSchema)]
pub struct DeletedEpisode {
    pub deleted: Episode,
}

/// A deleted fact, as it was.
#[derive(Debug, Serialize, ToSchema)]
pub struct DeletedFact {
    pub deleted: Fact,
}

/// A deleted rule, as it was.
#[derive(Debug, Serialize, ToSchema)]
pub struct DeletedRule {
    pub deleted: Rule,
}

/// One change in the audit record.
#[derive(Debug, Serialize, ToSchema)]
pub struct EditRecord {
    pub edit_id: i64,
    /// `episodic`, `semantic` or `procedural`.
    pub tier: String,
    pub memory_id: i64,
    /// `add`, `update` or `delete`.
    pub action: String,
    /// The API key's id, or `local` without keys.
    pub actor: String,
    /// When (RFC 3339 UTC).
    pub at: String,
    /// The memory before the change (null for an add).
    pub before: Option<Value>,
    /// The memory after the change (null for a delete).
    pub after: Option<Value>,
}

/// `GET /api/memory/edits/{user_id}`: the audit record, newest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct EditPage {
    pub user_id: String,
    pub limit: u64,
    pub offset: u64,
    pub edits: Vec<EditRecord>,
}

// ------------------------------------------------------------------------- reflection

/// One tier's record for one job.
#[derive(Debug, Serialize, ToSchema)]
pub struct TierRecord {
    /// `episodic`, `semantic` or `procedural`.
    pub tier: String,
    /// `completed` or `failed`.
    pub status: String,
    pub result: Option<Value>,
    pub error: Option<String>,
    pub attempts: i64,
    pub latency_ms: Option<f64>,
}

/// A reflection job.
#[derive(Debug, Serialize, ToSchema)]
pub struct JobRecord {
    pub job_id: String,
    pub user_id: String,
    pub state: JobStateName,
    pub priority: JobPriority,
    pub attempts: i64,
    pub max_retries: i64,
    pub last_error: Option<String>,
    /// Why the job was dead-lettered.
    pub dead_reason: Option<String>,
    pub created_at: String,
    pub updated_at: String,
    pub completed_at: Option<String>,
    /// When a waiting job may run next.
    pub next_attempt_at: Option<String>,
    pub tiers: Vec<TierRecord>,
    /// The job message (the original service's `MemoryReflectionJob`).
    #[schema(value_type = Object)]
    pub job: Value,
}

/// `GET /api/reflection/dlq`: dead jobs, newest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct DeadLetters {
    pub limit: u64,
    pub offset: u64,
    pub jobs: Vec<JobRecord>,
    /// RabbitMQ only: the broker's dead-letter queue, oldest first, left in place.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub broker: Option<BrokerDeadLetters>,
}

/// The messages in the broker's dead-letter queue (or why they could not be read).
#[derive(Debug, Serialize, ToSchema)]
pub struct BrokerDeadLetters {
    pub queue: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub messages: Option<Vec<Value>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// `POST /api/reflection/dlq/replay`: `job_ids`, or `all: true`.
#[derive(Debug, Deserialize, ToSchema)]
pub struct ReplayFields {
    /// Dead jobs to replay.
    pub job_ids: Option<Vec<String>>,
    /// Replay every dead job.
    pub all: Option<bool>,
}

/// The body of the replay route: [`ReplayFields`] with a non-empty `job_ids` or `all: true`.
#[derive(Debug)]
pub struct ReplayRequest;

impl PartialSchema for ReplayRequest {
    fn schema() -> RefOr<Schema> {
        AllOfBuilder::new()
            .item(ReplayFields::schema())
            .item(
                AnyOfBuilder::new()
                    .item(
                        ObjectBuilder::new()
                            .property(
                                "job_ids",
                                ArrayBuilder::new()
                                    .items(ObjectBuilder::new().schema_type(Type::String))
                                    .min_items(Some(1)),
                            )
                            .required("job_ids"),
                    )
                    .item(
                        ObjectBuilder::new()
                            .property(
                                "all",
                                ObjectBuilder::new()
                                    .schema_type(Type::Boolean)
                                    .enum_values(Some([json!(true)])),
                            )
                            .required("all"),
                    ),
            )
            .into()
    }
}

impl ToSchema for ReplayRequest {}

/// `schema`, and at least one of `fields` present with a value of its type (not null).
fn at_least_one(schema: RefOr<Schema>, fields: &[(&str, Type)]) -> RefOr<Schema> {
    let mut any = AnyOfBuilder::new();
    for (name, ty) in fields {
        any = any.item(
            ObjectBuilder::new()
                .property(*name, ObjectBuilder::new().schema_type(ty.clone()))
                .required(*name),
        );
    }
    AllOfBuilder::new().item(schema).item(any).into()
}

/// What a replay did.
#[derive(Debug, Serialize, ToSchema)]
pub struct Replayed {
    /// Jobs put back in the queue.
    pub replayed: u64,
    /// Given ids that are unknown or not dead.
    pub not_dead: Vec<String>,
    /// RabbitMQ only: messages taken out of the broker's dead-letter queue.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub removed_from_broker_dlq: Option<u64>,
}

/// `POST /api/reflection/dlq/purge`.
#[derive(Debug, Serialize, ToSchema)]
pub struct Purged {
    /// Messages deleted from the broker's dead-letter queue.
    pub purged: u64,
    pub queue: String,
}

/// Overall status.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum HealthStatus {
    /// Everything up.
    Healthy,
    /// Serving, but reflection is behind or stopped, or the broker is down.
    Degraded,
    /// The store is down (503).
    Unhealthy,
}

/// `GET /api/reflection/health`.
#[derive(Debug, Serialize, ToSchema)]
pub struct Health {
    pub status: HealthStatus,
    /// Seconds since the process started (absent when unhealthy).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub uptime_s: Option<u64>,
    /// Per component (`store`, `queue`, `reflection`, `embedder`): `status` and details.
    pub components: BTreeMap<String, Component>,
}

/// One component's status.
#[derive(Debug, Serialize, ToSchema)]
pub struct Component {
    /// `up`, `down`, `behind`, `not running in this process`…
    pub status: String,
    /// Details (backend, counts, model, error…).
    #[serde(flatten)]
    pub details: BTreeMap<String, Value>,
}

/// `GET /api/reflection/stats`.
#[derive(Debug, Serialize, ToSchema)]
pub struct ReflectionStats {
    /// Jobs by state.
    pub jobs: BTreeMap<String, i64>,
    pub completed_per_s_last_minute: f64,
    /// By tier, then by status: `count` and `mean_latency_ms`.
    #[schema(value_type = Object)]
    pub tiers: Value,
}

/// Waiting-job counts and ages.
#[derive(Debug, Serialize, ToSchema)]
pub struct QueueCounts {
    /// Waiting jobs (queued or retrying) by priority.
    pub depth_by_priority: BTreeMap<String, i64>,
    pub waiting: i64,
    /// Age of the oldest waiting job that is due, in seconds.
    pub oldest_waiting_age_s: f64,
    pub leased: i64,
    pub dead: i64,
    /// Waiting jobs of the user with the most.
    pub deepest_user_waiting: i64,
}

/// The backpressure ceilings (429 beyond).
#[derive(Debug, Serialize, ToSchema)]
pub struct QueueLimits {
    pub max_waiting_per_user: u64,
    pub max_waiting_total: u64,
}

/// `GET /api/reflection/queue-status`.
#[derive(Debug, Serialize, ToSchema)]
pub struct QueueStatusResponse {
    /// `embedded` or `amqp`.
    pub backend: String,
    pub queue: QueueCounts,
    pub limits: QueueLimits,
    /// RabbitMQ only: jobs written but not yet confirmed by the broker.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub outbox_backlog: Option<i64>,
    /// RabbitMQ only: queue depths and consumers.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub broker: Option<Value>,
}

/// `GET /api/users`: search and pagination.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct UsersQuery {
    /// Keep the user ids that contain this text, case-insensitively (at most 256
    /// characters, no control characters; trimmed; empty or absent: every user).
    #[param(max_length = 256, pattern = r"^[^\u0000-\u001F\u007F-\u009F]*$")]
    pub q: Option<String>,
    /// Users per page, 1 to 500 (default 50).
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<u32>,
    /// Users to skip (default 0).
    #[param(minimum = 0)]
    pub offset: Option<u64>,
}

/// One user in `GET /api/users`: rows per tier, jobs, last activity.
#[derive(Debug, Serialize, ToSchema)]
pub struct UserSummary {
    pub user_id: String,
    /// Tier 1: stored turns.
    pub turns: i64,
    /// Tier 2: episodes.
    pub episodes: i64,
    /// Tier 3: entities.
    pub entities: i64,
    /// Tier 3: facts, valid and invalidated (restatements merged into another not counted).
    pub facts: i64,
    /// Tier 4: rules, superseded ones included.
    pub rules: i64,
    /// Tier 4: rules not superseded.
    pub active_rules: i64,
    /// Reflection jobs queued, retrying or processing.
    pub jobs_waiting: i64,
    /// Reflection jobs in the dead-letter state.
    pub jobs_dead: i64,
    /// RFC 3339 UTC: the latest turn, job update or episode; null when there is none.
    pub last_activity: Option<String>,
}

/// `GET /api/users`: one page of users, by user id ascending.
#[derive(Debug, Serialize, ToSchema)]
pub struct UserPage {
    /// The search text as applied (trimmed; empty: every user).
    pub q: String,
    pub limit: u64,
    pub offset: u64,
    /// Users matching `q` in all pages.
    pub total: i64,
    pub users: Vec<UserSummary>,
}

/// `GET /api/me`: which users the caller's key may see.
#[derive(Debug, Serialize, ToSchema)]
pub struct Access {
    /// `admin` (an admin key), `users` (a key limited to `users`), or `open` (no keys are
    /// configured: everything is allowed, on loopback only).
    pub access: String,
    /// Whether every user is visible.
    pub all_users: bool,
    /// The key's id as logs name it (the first 8 hex digits of its SHA-256); null without keys.
    pub key_id: Option<String>,
    /// The users a user-limited key may see, sorted; null for `admin` and `open`.
    pub users: Option<Vec<String>>,
}

/// `GET /api/memory/turn/{user_id}`: what to look up; exactly one of the two (422 naming
/// `evidence` when neither is given, `job_id` when both are).
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct TurnLookupQuery {
    /// An evidence id as memories carry it: a LoCoMo `dia_id` (the turn's `metadata.dia_id`)
    /// or an interaction id; 1 to 512 characters without control characters, matched exactly.
    #[param(
        min_length = 1,
        max_length = 512,
        pattern = r"^[^\u0000-\u001F\u007F-\u009F]+$"
    )]
    pub evidence: Option<String>,
    /// The reflection job id of a memory (an episode's or fact's `job_id`); 1 to 512
    /// characters without control characters, matched exactly.
    #[param(
        min_length = 1,
        max_length = 512,
        pattern = r"^[^\u0000-\u001F\u007F-\u009F]+$"
    )]
    pub job_id: Option<String>,
}

/// `GET /api/memory/turn/{user_id}`: the turn, or why it is not stored.
#[derive(Debug, Serialize, ToSchema)]
pub struct TurnLookupAnswer {
    pub user_id: String,
    /// `evidence` or `job_id`: what was looked up.
    pub by: String,
    /// The id looked up.
    pub id: String,
    /// `stored` (`turn` is set); `pruned` (the user's memories cite the id, but retention
    /// removed the turn); `no_turn` (a memory that never came from a stored turn).
    pub status: String,
    /// The turn when `status` is `stored`, else null.
    pub turn: Option<Turn>,
    /// The status for a person.
    pub message: String,
}
