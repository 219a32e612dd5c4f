//! Recall: assemble the context for the next prompt from all four tiers.
//!
//! - Tier 1: the user's most recent turns, reflected or not (a turn is recallable the moment
//!   its 202 is sent).
//! - Tier 2: hybrid search over episodes — BM25 (SQLite FTS5) and cosine similarity of
//!   MiniLM vectors, each ranked, then fused by reciprocal rank (RRF, k = 60: Cormack, Clarke
//!   and Büttcher, "Reciprocal Rank Fusion outperforms Condorcet and individual Rank Learning
//!   Methods", SIGIR 2009), BM25 weighted [`BM25_WEIGHT`]. Small boosts for importance, for
//!   episodes inside a time range the query names, and — when the query asks about time
//!   ("when", "what year", a month name) — for episodes that date their own event. (A boost for episodes whose speaker
//!   the query names lowered recall on LoCoMo: answers often sit in the other person's turn.)
//! - Tier 3: currently valid facts about entities the query mentions (names and aliases,
//!   whole words).
//! - Tier 4: the standing rules; the ones similar to the query also enter the ranked list.
//!
//! Every item carries its evidence (source `dia_id`s, else interaction ids).

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, RwLock};

use serde::{Deserialize, Serialize};

use crate::embed::{EmbedService, cosine};
use crate::extract::{time, words};
use crate::store::{EpisodeRow, FactRow, RuleRow, Store, TurnRow};

/// RRF constant (Cormack et al. 2009).
pub const RRF_K: f64 = 60.0;
/// Weight of the BM25 list in the fusion (the vector list weighs 1). Measured on LoCoMo dev
/// (`reflector eval locomo`, 760 questions): 1.0 gives evidence_recall@10 0.720, 3.0 gives
/// 0.769, BM25 alone 0.755. Conversational turns share many words with the questions asked
/// about them; the vectors still rescue paraphrases and break BM25's ties.
pub const BM25_WEIGHT: f64 = 3.0;
/// Milliseconds in a day.
const DAY_MS: i64 = 86_400_000;
/// Candidates taken from each of BM25 and vector search before fusion.
const CANDIDATES: usize = 100;

/// A recall request.
#[derive(Debug, Clone, Deserialize)]
pub struct RecallQuery {
    pub user_id: String,
    /// What the next prompt is about; empty = just the recent state of the user's memory.
    pub query: String,
    /// Items in the ranked `memories` list (1..=100).
    pub limit: usize,
    /// Include facts that are no longer valid (default false).
    pub include_invalid: bool,
}

/// One ranked memory item.
#[derive(Debug, Clone, Serialize)]
pub struct Memory {
    pub text: String,
    /// `short_term`, `episodic`, `semantic` or `procedural`.
    pub tier: &'static str,
    /// Higher is better; comparable within one response only.
    pub score: f64,
    /// Source `metadata.dia_id` values, else interaction ids.
    pub evidence: Vec<String>,
    /// Row id in its tier (interaction id for short-term turns).
    pub id: String,
}

/// An episode with its fused score.
#[derive(Debug, Clone, Serialize)]
pub struct ScoredEpisode {
    #[serde(flatten)]
    pub episode: EpisodeRow,
    pub score: f64,
    /// The episode with its neighbouring turns of the same session (`recall_window` each
    /// side), oldest first: what the ranked `memories` list shows.
    pub with_context: String,
    /// Evidence of the episode first, then of its neighbours.
    pub context_evidence: Vec<String>,
}

/// The context endpoint's answer.
#[derive(Debug, Clone, Serialize)]
pub struct Context {
    pub user_id: String,
    pub query: String,
    pub short_term: Vec<TurnRow>,
    pub episodes: Vec<ScoredEpisode>,
    pub facts: Vec<FactRow>,
    pub rules: Vec<RuleRow>,
    pub memories: Vec<Memory>,
    /// A block ready to paste into a prompt.
    pub context: String,
}

/// Per-user episode vectors kept in memory for exact (brute-force) search; refreshed from the
/// store when the user's (count, max id) changes, incrementally when rows were only added.
#[derive(Default)]
pub struct VectorCache {
    users: Mutex<HashMap<String, Arc<RwLock<UserVectors>>>>,
}

#[derive(Default)]
struct UserVectors {
    count: i64,
    max_id: i64,
    ids: Vec<i64>,
    data: Vec<f32>,
    dim: usize,
}

impl VectorCache {
    /// Forget a user's vectors (after the user was deleted).
    pub fn evict(&self, user_id: &str) {
        self.users
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(user_id);
    }

    /// Top `k` episodes of the user by cosine similarity to `q`: (episode id, cosine).
    /// Blocking: runs SQL when the cache is stale and scans every vector of the user.
    pub fn top_k(
        &self,
        store: &crate::store::SqliteStore,
        user_id: &str,
        q: &[f32],
        k: usize,
    ) -> anyhow::Result<Vec<(i64, f32)>> {
        let entry = self
            .users
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(user_id.to_string())
            .or_default()
            .clone();
        let (count, max_id) = store.episode_version(user_id)?;
        {
            let cur = entry.read().unwrap_or_else(|p| p.into_inner());
            if cur.count != count || cur.max_id != max_id {
                drop(cur);
                let mut w = entry.write().unwrap_or_else(|p| p.into_inner());
                if w.count != count || w.max_id != max_id {
                    let incremental = max_id >= w.max_id && count >= w.count;
                    let after = if incremental { w.max_id } else { 0 };
                    let rows = store.episode_vectors(user_id, after)?;
                    if !incremental || w.count + rows.len() as i64 != count {
                        w.ids.clear();
                        w.data.clear();
                        if incremental {
                            // Rows were deleted and added: reload everything.
                            let all = store.episode_vectors(user_id, 0)?;
                            push_rows(&mut w, all);
                        } else {
                            push_rows(&mut w, rows);
                        }
                    } else {
                        push_rows(&mut w, rows);
                    }
                    w.count = w.ids.len() as i64;
                    w.max_id = max_id;
                }
            }
        }
        let cur = entry.read().unwrap_or_else(|p| p.into_inner());
        if cur.dim == 0 || cur.dim != q.len() {
            return Ok(Vec::new());
        }
        let mut scored: Vec<(i64, f32)> = cur
            .data
            .chunks_exact(cur.dim)
            .zip(&cur.ids)
            .map(|(v, id)| (*id, cosine(v, q)))
            .collect();
        let k = k.min(scored.len());
        if k == 0 {
            return Ok(Vec::new());
        }
        scored.select_nth_unstable_by(k - 1, |a, b| b.1.total_cmp(&a.1));
        scored.truncate(k);
        scored.sort_by(|a, b| b.1.total_cmp(&a.1));
        Ok(scored)
    }
}

fn push_rows(w: &mut UserVectors, rows: Vec<(i64, Vec<f32>)>) {
    for (id, v) in rows {
        if w.dim == 0 {
            w.dim = v.len();
        }
        if v.len() == w.dim {
            w.ids.push(id);
            w.data.extend_from_slice(&v);
        }
    }
}

/// Builds contexts.
#[derive(Clone)]
pub struct Recall {
    store: Store,
    embed: EmbedService,
    vectors: Arc<VectorCache>,
    short_term_turns: usize,
    window: usize,
}

impl Recall {
    /// `window`: neighbouring turns shown on each side of a recalled episode.
    pub fn new(store: Store, embed: EmbedService, short_term_turns: usize, window: usize) -> Self {
        Self {
            store,
            embed,
            vectors: Arc::new(VectorCache::default()),
            short_term_turns,
            window,
        }
    }

    pub fn vectors(&self) -> &VectorCache {
        &self.vectors
    }

    /// Assemble the context for `q`.
    pub async fn context(&self, q: RecallQuery) -> anyhow::Result<Context> {
        let query = q.query.trim().to_string();
        let qvec = if query.is_empty() {
            None
        } else {
            Some(self.embed.embed_query(query.clone()).await?)
        };
        let qvec_for_rules = qvec.clone();
        let vectors = self.vectors.clone();
        let st_n = self.short_term_turns;
        let window = self.window;
        let limit = q.limit;
        let user = q.user_id.clone();
        let (short_term, episodes, facts, rules) = self
            .store
            .run(move |s| {
                let short_term = s.recent_turns(&user, st_n)?;
                let mut episodes = Vec::new();
                let mut facts = Vec::new();
                if let Some(qv) = &qvec {
                    let fts = s.search_episodes_fts(&user, &fts_query(&query), CANDIDATES)?;
                    let vec = vectors.top_k(s, &user, qv, CANDIDATES)?;
                    let mut fused: HashMap<i64, f64> = HashMap::new();
                    for (rank, (id, _)) in fts.iter().enumerate() {
                        *fused.entry(*id).or_default() += BM25_WEIGHT / (RRF_K + rank as f64 + 1.0);
                    }
                    for (rank, (id, _)) in vec.iter().enumerate() {
                        *fused.entry(*id).or_default() += 1.0 / (RRF_K + rank as f64 + 1.0);
                    }
                    let ids: Vec<i64> = fused.keys().copied().collect();
                    let rows = s.episodes_by_ids(&user, &ids)?;
                    let range = time::explicit_range(&query, chrono::Utc::now().date_naive());
                    let asks_when = time::is_temporal_question(&query);
                    for e in rows {
                        let mut score = fused.get(&e.id).copied().unwrap_or(0.0);
                        // Boosts are multiplicative and small: RRF decides, these break near-ties.
                        let mut boost = 1.0 + 0.1 * e.importance as f64;
                        if let Some((from, to)) = range {
                            let d = chrono::DateTime::from_timestamp_millis(e.occurred_ms)
                                .map(|t| t.date_naive());
                            if d.is_some_and(|d| d >= from && d <= to) {
                                boost += 0.2;
                            }
                        }
                        // A question about time favours episodes that date their event
                        // themselves ("yesterday", "last May") over ones that merely happened.
                        if asks_when && e.occurred_ms / DAY_MS != e.observed_ms / DAY_MS {
                            boost += 0.2;
                        }
                        score *= boost;
                        episodes.push(ScoredEpisode::new(e, score));
                    }
                    episodes.sort_by(|a, b| b.score.total_cmp(&a.score));
                    episodes = with_windows(s, &user, episodes, window, limit)?;
                    let mentioned = mentioned_entities(&s.entity_names(&user)?, &query);
                    if !mentioned.is_empty() {
                        facts = s.facts_about(&user, &mentioned, q.include_invalid, 50)?;
                    }
                } else {
                    episodes = s
                        .list_episodes(&user, 20, 0)?
                        .into_iter()
                        .map(|e| {
                            let score = e.importance as f64 / RRF_K;
                            ScoredEpisode::new(e, score)
                        })
                        .collect();
                }
                let rules = s.list_rules(&user, false, 50, 0)?;
                Ok((short_term, episodes, facts, rules))
            })
            .await?;
        Ok(assemble(
            q,
            short_term,
            episodes,
            facts,
            rules,
            qvec_for_rules.as_deref(),
        ))
    }
}

impl ScoredEpisode {
    fn new(episode: EpisodeRow, score: f64) -> Self {
        Self {
            with_context: episode.text.clone(),
            context_evidence: episode.evidence.clone(),
            episode,
            score,
        }
    }
}

/// Give the best `limit` episodes their session context (`window` turns each side), and
/// drop a lower-ranked episode that is already shown inside a better one's window — its
/// slot goes to something new. Episodes past the first `limit` kept are left as they are.
fn with_windows(
    s: &crate::store::SqliteStore,
    user: &str,
    ranked: Vec<ScoredEpisode>,
    window: usize,
    limit: usize,
) -> anyhow::Result<Vec<ScoredEpisode>> {
    if window == 0 {
        return Ok(ranked);
    }
    let mut shown: HashSet<String> = HashSet::new();
    let mut out = Vec::with_capacity(ranked.len());
    for mut e in ranked {
        if out.len() >= limit {
            out.push(e);
            continue;
        }
        if shown.contains(&e.episode.job_id) {
            continue;
        }
        let (prev, next) = s.turn_window(user, &e.episode.job_id, window, window)?;
        // Neighbours already shown in a better window are not repeated.
        let prev: Vec<_> = prev
            .into_iter()
            .filter(|w| !shown.contains(&w.job_id))
            .collect();
        let next: Vec<_> = next
            .into_iter()
            .filter(|w| !shown.contains(&w.job_id))
            .collect();
        shown.insert(e.episode.job_id.clone());
        let mut lines: Vec<&str> = prev.iter().map(|w| w.text.as_str()).collect();
        lines.push(&e.episode.text);
        lines.extend(next.iter().map(|w| w.text.as_str()));
        e.with_context = lines.join("\n");
        for w in prev.iter().chain(next.iter()) {
            shown.insert(w.job_id.clone());
            if !e.context_evidence.contains(&w.evidence) {
                e.context_evidence.push(w.evidence.clone());
            }
        }
        out.push(e);
    }
    Ok(out)
}

/// Turn a free-text query into an FTS5 expression: its content words, quoted, OR-ed.
/// Quoting makes every user string a valid FTS5 query (no syntax errors from `"` or `-`).
pub fn fts_query(query: &str) -> String {
    let mut seen = HashSet::new();
    words::tokens(query)
        .into_iter()
        .filter(|t| !words::is_stopword(t) && t.chars().any(|c| c.is_alphanumeric()))
        .filter(|t| seen.insert(t.clone()))
        .map(|t| format!("\"{}\"", t.replace('"', "")))
        .collect::<Vec<_>>()
        .join(" OR ")
}

/// Entities whose normalised name or alias appears in the query as whole words.
fn mentioned_entities(names: &[(String, i64)], query: &str) -> Vec<i64> {
    let q = format!(" {} ", words::tokens(query).join(" "));
    let mut out: Vec<i64> = names
        .iter()
        .filter(|(n, _)| !n.is_empty() && !words::is_stopword(n) && q.contains(&format!(" {n} ")))
        .map(|(_, id)| *id)
        .collect();
    out.sort_unstable();
    out.dedup();
    out
}

/// Merge the tiers into one ranked list and render the prompt block.
fn assemble(
    q: RecallQuery,
    short_term: Vec<TurnRow>,
    episodes: Vec<ScoredEpisode>,
    facts: Vec<FactRow>,
    rules: Vec<RuleRow>,
    qvec: Option<&[f32]>,
) -> Context {
    let mut memories: Vec<Memory> = Vec::new();
    let qtokens: HashSet<String> = words::tokens(&q.query)
        .into_iter()
        .filter(|t| !words::is_stopword(t))
        .collect();
    let top = episodes.first().map(|e| e.score).unwrap_or(1.0 / RRF_K);
    for e in &episodes {
        memories.push(Memory {
            text: e.with_context.clone(),
            tier: "episodic",
            score: e.score,
            evidence: e.context_evidence.clone(),
            id: e.episode.id.to_string(),
        });
    }
    // Facts about entities the query names. What makes one relevant is a content word it
    // shares with the query beyond the entity's own name (the predicate counts: "live" meets
    // LIVES_IN). Relevant facts rank just above the best episode — the most direct answer
    // there is; the others follow below the episodes, newest first.
    let stems: HashSet<String> = qtokens.iter().map(|t| words::singular(t)).collect();
    let content_overlap = |f: &FactRow| -> usize {
        let names: HashSet<String> = words::tokens(&format!("{} {}", f.subject, f.object))
            .iter()
            .map(|t| words::singular(t))
            .collect();
        let text = format!("{} {}", f.fact, f.predicate.replace('_', " "));
        let toks: HashSet<String> = words::tokens(&text)
            .iter()
            .map(|t| words::singular(t))
            .filter(|t| !names.contains(t))
            .collect();
        stems.iter().filter(|t| toks.contains(*t)).count()
    };
    let mut ranked_facts: Vec<(usize, &FactRow)> =
        facts.iter().map(|f| (content_overlap(f), f)).collect();
    ranked_facts.sort_by(|a, b| b.0.cmp(&a.0).then(b.1.valid_ms.cmp(&a.1.valid_ms)));
    let most = ranked_facts.first().map(|x| x.0).unwrap_or(0).max(1) as f64;
    for (i, (n, f)) in ranked_facts.iter().enumerate() {
        let day = chrono::DateTime::from_timestamp_millis(f.valid_ms)
            .map(|t| time::format_day(t.date_naive()))
            .unwrap_or_default();
        let weight = if *n > 0 {
            0.8 + 0.3 * *n as f64 / most
        } else {
            0.3
        };
        memories.push(Memory {
            text: format!("{} (since {day})", f.fact),
            tier: "semantic",
            score: top * weight / (1.0 + i as f64 * 0.2),
            evidence: f.evidence.clone(),
            id: f.id.to_string(),
        });
    }
    for r in &rules {
        let sim = qvec.map(|v| cosine(v, &r.embedding) as f64).unwrap_or(0.0);
        if sim > 0.35 {
            memories.push(Memory {
                text: r.statement.clone(),
                tier: "procedural",
                score: top * sim,
                evidence: r.evidence.clone(),
                id: r.id.to_string(),
            });
        }
    }
    // Recent turns: only when they share words with the query (or there is no query).
    for (i, t) in short_term.iter().enumerate() {
        let toks: HashSet<String> = words::tokens(&t.user_message).into_iter().collect();
        let overlap = if qtokens.is_empty() {
            1.0
        } else {
            qtokens.iter().filter(|w| toks.contains(*w)).count() as f64 / qtokens.len() as f64
        };
        if overlap > 0.0 {
            memories.push(Memory {
                text: turn_text(t),
                tier: "short_term",
                score: top * 0.5 * overlap / (1.0 + i as f64 * 0.1),
                evidence: vec![
                    t.metadata
                        .get("dia_id")
                        .and_then(|v| v.as_str())
                        .unwrap_or(&t.interaction_id)
                        .to_string(),
                ],
                id: t.interaction_id.clone(),
            });
        }
    }
    memories.sort_by(|a, b| b.score.total_cmp(&a.score));
    memories.truncate(q.limit);
    let context = render(&short_term, &memories, &rules);
    let mut episodes = episodes;
    episodes.truncate(q.limit);
    Context {
        user_id: q.user_id,
        query: q.query,
        short_term,
        episodes,
        facts,
        rules,
        memories,
        context,
    }
}

fn turn_text(t: &TurnRow) -> String {
    let who = t
        .metadata
        .get("speaker")
        .and_then(|v| v.as_str())
        .unwrap_or(&t.user_id);
    let day = chrono::DateTime::from_timestamp_millis(t.ts_ms)
        .map(|d| time::format_day(d.date_naive()))
        .unwrap_or_default();
    if t.assistant_response.is_empty() {
        format!("[{day}] {who}: {}", t.user_message)
    } else {
        format!(
            "[{day}] {who}: {} — assistant: {}",
            t.user_message, t.assistant_response
        )
    }
}

/// The prompt block: standing rules (at most 20), the ranked memories other than recent turns
/// and rules, then the recent turns, oldest first.
pub fn render(short_term: &[TurnRow], memories: &[Memory], rules: &[RuleRow]) -> String {
    let mut out = String::new();
    if !rules.is_empty() {
        out.push_str("## Standing instructions and preferences\n");
        for r in rules.iter().take(20) {
            out.push_str(&format!("- {}\n", r.statement));
        }
        out.push('\n');
    }
    let ranked: Vec<&Memory> = memories
        .iter()
        .filter(|m| m.tier != "short_term" && m.tier != "procedural")
        .collect();
    if !ranked.is_empty() {
        out.push_str("## Relevant memories\n");
        for m in ranked {
            out.push_str(&format!("- {}\n", m.text));
        }
        out.push('\n');
    }
    if !short_term.is_empty() {
        out.push_str("## Recent conversation (oldest first)\n");
        for t in short_term.iter().rev() {
            out.push_str(&format!("- {}\n", turn_text(t)));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fts_query_quotes_and_drops_stopwords() {
        let q = fts_query("When did \"Caroline\" go to the support-group?");
        assert!(q.contains("\"caroline\""), "{q}");
        assert!(!q.contains("\"the\""), "{q}");
        assert!(fts_query("   ").is_empty());
    }
}
