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
//!
//! [`Recall::answer`] ([`answer`]) makes the whole answer of `GET /api/memory/context`: the
//! recalled items, the Tier 1 summary, and the block fitted to a token budget ([`budget`]).

pub mod answer;
pub mod budget;
pub use answer::{Answer, OmittedItem};

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, RwLock};

use serde::{Deserialize, Serialize};

use crate::embed::{EmbedService, cosine};
use crate::extract::{time, words};
use crate::store::{EpisodeRow, FactRow, RuleRow, ShortTermSummary, Store, TurnRow};

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
    /// When it holds or happened, RFC 3339 UTC (see [`Memory::at_ms`]).
    pub date: Option<String>,
    /// The same instant in Unix milliseconds: an episode's event (`occurred_at`), a fact's
    /// `valid_at`, a rule's `stated_at`, a turn's timestamp. What search's `since`/`until`
    /// compare.
    #[serde(skip)]
    pub at_ms: Option<i64>,
}

impl Memory {
    fn dated(mut self, at_ms: Option<i64>) -> Self {
        self.at_ms = at_ms;
        self.date = at_ms
            .and_then(chrono::DateTime::from_timestamp_millis)
            .map(|t| crate::job::format_timestamp(&t));
        self
    }
}

/// A search request: the ranked items of [`Recall::context`] alone, filtered.
#[derive(Debug, Clone)]
pub struct SearchQuery {
    pub user_id: String,
    /// Not blank.
    pub query: String,
    /// Items wanted (1..=100).
    pub limit: usize,
    /// Only these tiers (`short_term`, `episodic`, `semantic`, `procedural`); empty = all.
    pub tiers: Vec<&'static str>,
    /// Only items dated at or after this instant (Unix ms).
    pub since_ms: Option<i64>,
    /// Only items dated before this instant (Unix ms, exclusive).
    pub until_ms: Option<i64>,
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

/// Candidates the int8 scan keeps per result wanted, before exact rescoring.
const OVERSAMPLE: usize = 3;

/// Users with at least this many vectors are searched through the binary prefilter first
/// (see [`VectorCache`]); below it the int8 scan reads every vector (10k episodes: ~4 ms).
pub const BINARY_PREFILTER_MIN: usize = 20_000;

/// Candidates the binary prefilter keeps per candidate the int8 stage returns (so 10 x 300 =
/// 3,000 of a 100k-episode user, 3%). The same "oversampling + rescoring" as Qdrant's binary
/// quantization and the Hugging Face / mixedbread "Embedding Quantization" write-up (2024),
/// which keep 2–10x and rescore; we keep 10x and rescore twice (int8, then exact f32).
const BINARY_OVERSAMPLE: usize = 10;

/// Per-user episode vectors kept in memory for brute-force search, as int8 codes (scalar
/// quantization: one f32 scale per vector, `code = round(x / scale)`, `scale = max|x| / 127`);
/// refreshed from the store when the user's (count, max id) changes, incrementally when rows
/// were only added.
///
/// A query scans the codes with integer arithmetic, keeps the best `k x OVERSAMPLE`, and
/// rescores those with their exact f32 vectors read back from the store — int8 scan plus
/// float rescoring, as in Qdrant's scalar quantization with `rescore` or Lucene's
/// `int8_hnsw`. Memory: `dim + 12` bytes per episode (396 bytes for MiniLM's 384: 40 MB per
/// 100k episodes, a quarter of f32), and a scan of 100k episodes reads 38 MB instead of 154
/// (the f32 scan was memory-bound: ~35 ms here against ~12 ms).
///
/// Users with [`BINARY_PREFILTER_MIN`] vectors or more are searched in three stages: the
/// sign bits of each vector (binary quantization, `dim / 8` more bytes per episode: 48 for
/// MiniLM, 4.8 MB per 100k) are compared with the query's by Hamming distance (XOR +
/// popcount: ~1 ms for 100k episodes against 12–20 ms for the int8 scan), the nearest
/// `k x OVERSAMPLE x BINARY_OVERSAMPLE` are rescored with their int8 codes, and the best
/// `k x OVERSAMPLE` of those exactly, as above. The prefilter is approximate: a vector whose
/// signs disagree with the query's more than 3,000 others' do is missed (the unit test
/// `binary_prefilter_keeps_the_true_neighbours` bounds this on clustered data).
pub struct VectorCache {
    users: Mutex<HashMap<String, Arc<RwLock<UserVectors>>>>,
}

impl Default for VectorCache {
    fn default() -> Self {
        Self {
            users: Mutex::new(HashMap::new()),
        }
    }
}

#[derive(Default)]
struct UserVectors {
    /// The store's stamp when loaded: (count, max id, deletions); see `episode_version`.
    count: i64,
    max_id: i64,
    deletes: i64,
    ids: Vec<i64>,
    /// Each vector's scale (f32 value of code 1).
    scales: Vec<f32>,
    /// `dim` codes per vector, contiguous.
    codes: Vec<i8>,
    /// `dim.div_ceil(64)` words of sign bits per vector (bit set: component > 0).
    bits: Vec<u64>,
    dim: usize,
}

impl UserVectors {
    fn clear(&mut self) {
        self.ids.clear();
        self.scales.clear();
        self.codes.clear();
        self.bits.clear();
    }

    /// Append one stored vector (a little-endian f32 blob); vectors of another dimension than
    /// the first one seen are skipped (they belong to another model).
    fn push_blob(&mut self, id: i64, blob: &[u8]) {
        let dim = blob.len() / 4;
        if self.dim == 0 {
            self.dim = dim;
        }
        if dim != self.dim || dim == 0 {
            return;
        }
        let v: Vec<f32> = crate::store::blob_to_vec(blob);
        let scale = quantize_into(&v, &mut self.codes);
        sign_bits_into(&v, &mut self.bits);
        self.ids.push(id);
        self.scales.push(scale);
    }

    /// Indices of the `n` vectors nearest to `q` by int8 dot product, among `among` (all
    /// vectors when `None`).
    fn int8_nearest(&self, q: &[f32], among: Option<Vec<u32>>, n: usize) -> Vec<u32> {
        let mut qcodes = Vec::with_capacity(q.len());
        quantize_into(q, &mut qcodes);
        let dim = self.dim;
        let score = |i: u32| {
            let at = i as usize * dim;
            (
                dot_i8(&self.codes[at..at + dim], &qcodes) as f32 * self.scales[i as usize],
                i,
            )
        };
        let mut scored: Vec<(f32, u32)> = match among {
            Some(ix) => ix.into_iter().map(score).collect(),
            None => (0..self.ids.len() as u32).map(score).collect(),
        };
        let n = n.min(scored.len());
        if n == 0 {
            return Vec::new();
        }
        scored.select_nth_unstable_by(n - 1, |a, b| b.0.total_cmp(&a.0));
        scored.truncate(n);
        scored.into_iter().map(|(_, i)| i).collect()
    }

    /// Indices of the `n` vectors whose sign bits are nearest to `q`'s (Hamming distance),
    /// ties at the cut broken by index. Counting sort over the distances (0..=dim).
    fn binary_nearest(&self, q: &[f32], n: usize) -> Vec<u32> {
        let mut qbits = Vec::new();
        sign_bits_into(q, &mut qbits);
        let dist = hamming_all(&self.bits, &qbits);
        if n >= dist.len() {
            return (0..dist.len() as u32).collect();
        }
        let mut hist = vec![0usize; qbits.len() * 64 + 1];
        for d in &dist {
            hist[*d as usize] += 1;
        }
        // The smallest cut with at least n distances at or below it.
        let (mut cut, mut below) = (0usize, 0usize);
        while below + hist[cut] < n {
            below += hist[cut];
            cut += 1;
        }
        let mut room_at_cut = n - below;
        let mut out = Vec::with_capacity(n);
        for (i, d) in dist.iter().enumerate() {
            let d = *d as usize;
            if d < cut {
                out.push(i as u32);
            } else if d == cut && room_at_cut > 0 {
                room_at_cut -= 1;
                out.push(i as u32);
            }
        }
        out
    }
}

/// Appends the sign bits of `v` to `out`: `v.len().div_ceil(64)` words, bit `i % 64` of
/// word `i / 64` set when `v[i] > 0` (binary quantization).
fn sign_bits_into(v: &[f32], out: &mut Vec<u64>) {
    for chunk in v.chunks(64) {
        let mut w = 0u64;
        for (i, x) in chunk.iter().enumerate() {
            if *x > 0.0 {
                w |= 1 << i;
            }
        }
        out.push(w);
    }
}

/// Hamming distance from `q` (one vector's words) to each vector in `bits` (contiguous,
/// `q.len()` words each). Uses the POPCNT instruction when the CPU has it (checked at run
/// time: the release build targets baseline x86-64, where `count_ones` is ~10 instructions).
fn hamming_all(bits: &[u64], q: &[u64]) -> Vec<u16> {
    // Inlined into `scan_popcnt`, so that it is compiled with that function's features.
    #[inline(always)]
    fn scan(bits: &[u64], q: &[u64]) -> Vec<u16> {
        bits.chunks_exact(q.len())
            .map(|v| {
                // Wrapping: the release profile's overflow checks would stop vectorisation
                // (at most 64 x words, far below u16::MAX for any embedding).
                v.iter().zip(q).fold(0u16, |s, (a, b)| {
                    s.wrapping_add((a ^ b).count_ones() as u16)
                })
            })
            .collect()
    }
    #[cfg(target_arch = "x86_64")]
    {
        #[target_feature(enable = "popcnt")]
        fn scan_popcnt(bits: &[u64], q: &[u64]) -> Vec<u16> {
            scan(bits, q)
        }
        if std::arch::is_x86_feature_detected!("popcnt") {
            // SAFETY: the CPU was just checked to have POPCNT.
            return unsafe { scan_popcnt(bits, q) };
        }
    }
    scan(bits, q)
}

/// Appends the int8 codes of `v` to `out`; returns the scale (`max|x| / 127`, 0 for a zero
/// vector, whose codes are all 0).
fn quantize_into(v: &[f32], out: &mut Vec<i8>) -> f32 {
    let max = v.iter().fold(0f32, |m, x| m.max(x.abs()));
    if max == 0.0 || !max.is_finite() {
        out.extend(std::iter::repeat_n(0i8, v.len()));
        return 0.0;
    }
    let scale = max / 127.0;
    out.extend(
        v.iter()
            .map(|x| (x / scale).round().clamp(-127.0, 127.0) as i8),
    );
    scale
}

/// Integer dot product of two code vectors of equal length (32 independent i32 lanes, which
/// the compiler vectorises with plain SSE2). Wrapping arithmetic only to keep the release
/// profile's overflow checks out of the loop (they stop vectorisation): no overflow is
/// possible below 133,000 dimensions (127 x 127 x 133,000 < 2^31).
#[inline]
fn dot_i8(a: &[i8], b: &[i8]) -> i32 {
    const LANES: usize = 32;
    let (ca, cb) = (a.chunks_exact(LANES), b.chunks_exact(LANES));
    let mut tail = 0i32;
    for (x, y) in ca.remainder().iter().zip(cb.remainder()) {
        tail = tail.wrapping_add((*x as i32).wrapping_mul(*y as i32));
    }
    let mut acc = [0i32; LANES];
    for (x, y) in ca.zip(cb) {
        for i in 0..LANES {
            acc[i] = acc[i].wrapping_add((x[i] as i32).wrapping_mul(y[i] as i32));
        }
    }
    acc.iter().fold(tail, |s, a| s.wrapping_add(*a))
}

impl VectorCache {
    /// Forget a user's vectors (after the user was deleted).
    pub fn evict(&self, user_id: &str) {
        self.users
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(user_id);
    }

    /// Top `k` episodes of the user by cosine similarity to `q`: (episode id, cosine), best
    /// first. The cosines are exact (rescored from the stored f32 vectors); the candidates
    /// come from the int8 scan. Blocking: runs SQL (a refresh when the cache is stale, and
    /// the rescoring reads) and scans every vector of the user.
    pub fn top_k(
        &self,
        store: &dyn crate::store::Backend,
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
        let t0 = std::time::Instant::now();
        let (count, max_id, deletes) = store.episode_version(user_id)?;
        let t_version = t0.elapsed();
        {
            let cur = entry.read().unwrap_or_else(|p| p.into_inner());
            let stale =
                |u: &UserVectors| u.count != count || u.max_id != max_id || u.deletes != deletes;
            if stale(&cur) {
                drop(cur);
                let mut w = entry.write().unwrap_or_else(|p| p.into_inner());
                if stale(&w) {
                    let incremental =
                        deletes == w.deletes && max_id >= w.max_id && count >= w.count;
                    let before = w.ids.len();
                    if incremental {
                        let after = w.max_id;
                        store.each_episode_vector(user_id, after, &mut |id, blob| {
                            w.push_blob(id, blob)
                        })?;
                    }
                    // Rows were deleted (and maybe added): reload everything.
                    if !incremental || w.count + (w.ids.len() - before) as i64 != count {
                        w.clear();
                        store.each_episode_vector(user_id, 0, &mut |id, blob| {
                            w.push_blob(id, blob)
                        })?;
                    }
                    // Rows committed between the stamp and the load were loaded too: the
                    // next incremental load starts past them.
                    w.count = w.ids.len() as i64;
                    w.max_id = max_id.max(w.ids.last().copied().unwrap_or(0));
                    w.deletes = deletes;
                }
            }
        }
        let candidates: Vec<i64> = {
            let cur = entry.read().unwrap_or_else(|p| p.into_inner());
            if cur.dim == 0 || cur.dim != q.len() || k == 0 {
                return Ok(Vec::new());
            }
            let n = k * OVERSAMPLE;
            let among = (cur.ids.len() >= BINARY_PREFILTER_MIN)
                .then(|| cur.binary_nearest(q, n * BINARY_OVERSAMPLE));
            cur.int8_nearest(q, among, n)
                .into_iter()
                .map(|i| cur.ids[i as usize])
                .collect()
        };
        if candidates.is_empty() {
            return Ok(Vec::new());
        }
        let t_scan = t0.elapsed();
        let mut exact: Vec<(i64, f32)> = store
            .episode_vectors_by_ids(user_id, &candidates)?
            .into_iter()
            .filter(|(_, v)| v.len() == q.len())
            .map(|(id, v)| (id, cosine(&v, q)))
            .collect();
        exact.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        exact.truncate(k);
        tracing::debug!(
            version_ms = t_version.as_secs_f64() * 1e3,
            scan_ms = (t_scan - t_version).as_secs_f64() * 1e3,
            rescore_ms = (t0.elapsed() - t_scan).as_secs_f64() * 1e3,
            candidates = candidates.len(),
            "vector search stages"
        );
        Ok(exact)
    }
}

/// Builds contexts.
#[derive(Clone)]
pub struct Recall {
    store: Store,
    embed: EmbedService,
    vectors: Arc<VectorCache>,
    df: Arc<DocFreqCache>,
    short_term_turns: usize,
    window: usize,
}

/// Document frequencies of full-text terms (rows of the whole index that hold the term),
/// remembered for [`DF_TTL`]: they change slowly, and counting a common term's postings costs
/// a few ms. At most [`DF_CACHE_TERMS`] terms; the cache is emptied when full.
#[derive(Default)]
pub struct DocFreqCache {
    terms: Mutex<HashMap<String, (i64, std::time::Instant)>>,
}

/// How long a cached document frequency is used (only the BM25 plan depends on it).
const DF_TTL: std::time::Duration = std::time::Duration::from_secs(60);
/// Terms kept in the [`DocFreqCache`] (a few hundred KB).
const DF_CACHE_TERMS: usize = 10_000;

impl DocFreqCache {
    /// The document frequency of each term, in order. Blocking (SQL for terms not cached).
    pub fn get(
        &self,
        store: &dyn crate::store::Backend,
        terms: &[String],
    ) -> anyhow::Result<Vec<i64>> {
        let now = std::time::Instant::now();
        let mut out = Vec::with_capacity(terms.len());
        for t in terms {
            let cached = self
                .terms
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .get(t)
                .filter(|(_, at)| now.duration_since(*at) < DF_TTL)
                .map(|(d, _)| *d);
            let d = match cached {
                Some(d) => d,
                None => {
                    let d = store.fts_doc_count(&format!("\"{t}\""))?;
                    let mut m = self.terms.lock().unwrap_or_else(|p| p.into_inner());
                    if m.len() >= DF_CACHE_TERMS {
                        m.clear();
                    }
                    m.insert(t.clone(), (d, now));
                    d
                }
            };
            out.push(d);
        }
        Ok(out)
    }
}

impl Recall {
    /// `window`: neighbouring turns shown on each side of a recalled episode.
    pub fn new(store: Store, embed: EmbedService, short_term_turns: usize, window: usize) -> Self {
        Self {
            store,
            embed,
            vectors: Arc::new(VectorCache::default()),
            df: Arc::new(DocFreqCache::default()),
            short_term_turns,
            window,
        }
    }

    pub fn vectors(&self) -> &VectorCache {
        &self.vectors
    }

    /// Assemble the context for `q`.
    ///
    /// With a query, BM25 runs on the blocking pool while the query is embedded, and the
    /// vector scan follows the embedding, so the request waits for the longer of the two
    /// rather than their sum. Stage timings are logged at `debug` (target `reflector::recall`).
    pub async fn context(&self, q: RecallQuery) -> anyhow::Result<Context> {
        self.recall(q, self.window).await
    }

    /// The ranked items alone (`GET /api/memory/search/{user_id}`): the same ranking as
    /// [`Recall::context`]'s `memories`, with each episode as itself (no neighbouring turns),
    /// filtered by tier and date. With a filter, every candidate recall considered (up to
    /// [`CANDIDATES`] episodes, the facts about the entities the query names, the active
    /// rules, the recent turns that share a word with it) is ranked, and the filter keeps the
    /// first `limit` that pass, so a tier is never crowded out by another tier's items.
    pub async fn search(&self, q: SearchQuery) -> anyhow::Result<Vec<Memory>> {
        let filtered = !q.tiers.is_empty() || q.since_ms.is_some() || q.until_ms.is_some();
        let ctx = self
            .recall(
                RecallQuery {
                    user_id: q.user_id,
                    query: q.query,
                    limit: if filtered { usize::MAX } else { q.limit },
                    include_invalid: false,
                },
                0,
            )
            .await?;
        let keep = |m: &Memory| {
            (q.tiers.is_empty() || q.tiers.contains(&m.tier))
                && q.since_ms.is_none_or(|s| m.at_ms.is_some_and(|t| t >= s))
                && q.until_ms.is_none_or(|u| m.at_ms.is_some_and(|t| t < u))
        };
        Ok(ctx
            .memories
            .into_iter()
            .filter(keep)
            .take(q.limit)
            .collect())
    }

    async fn recall(&self, q: RecallQuery, window: usize) -> anyhow::Result<Context> {
        let query = q.query.trim().to_string();
        let st_n = self.short_term_turns;
        let user = q.user_id.clone();
        if query.is_empty() {
            let (short_term, episodes, rules) = self
                .store
                .run(move |s| {
                    let short_term = s.recent_turns(&user, st_n)?;
                    let episodes = s
                        .list_episodes(&user, 20, 0)?
                        .into_iter()
                        .map(|e| {
                            let score = e.importance as f64 / RRF_K;
                            ScoredEpisode::new(e, score)
                        })
                        .collect();
                    let rules = s.list_rules(&user, false, 50, 0)?;
                    Ok((short_term, episodes, rules))
                })
                .await?;
            return Ok(assemble(q, short_term, episodes, Vec::new(), rules, None));
        }

        let started = std::time::Instant::now();
        let bm25 = {
            let (user, terms, df_cache) = (user.clone(), fts_terms(&query), self.df.clone());
            self.store.run(move |s| {
                let t = std::time::Instant::now();
                let df = df_cache.get(s, &terms)?;
                let hits = s.search_episodes_fts(&user, &plan_fts(&terms, &df), CANDIDATES)?;
                Ok((hits, t.elapsed()))
            })
        };
        let dense = async {
            let qv = self.embed.embed_query(query.clone()).await?;
            let embedded = started.elapsed();
            let (vectors, user, qv2) = (self.vectors.clone(), user.clone(), qv.clone());
            let (hits, scan) = self
                .store
                .run(move |s| {
                    let t = std::time::Instant::now();
                    // pgvector's index when the backend has one, else the exact scan.
                    let hits = match s.vector_search(&user, &qv2, CANDIDATES)? {
                        Some(hits) => hits,
                        None => vectors.top_k(s, &user, &qv2, CANDIDATES)?,
                    };
                    Ok((hits, t.elapsed()))
                })
                .await?;
            anyhow::Ok((qv, hits, embedded, scan))
        };
        let ((fts, fts_time), (qvec, vec, embed_time, scan_time)) = tokio::try_join!(bm25, dense)?;
        let searched = started.elapsed();

        let limit = q.limit;
        let include_invalid = q.include_invalid;
        let q_text = query.clone();
        let (short_term, episodes, facts, rules) = self
            .store
            .run(move |s| {
                let query = q_text;
                let short_term = s.recent_turns(&user, st_n)?;
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
                let mut episodes = Vec::with_capacity(rows.len());
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
                let episodes = with_windows(s, &user, episodes, window, limit)?;
                let mentioned = mentioned_entities(&s.entity_names(&user)?, &query);
                let facts = if mentioned.is_empty() {
                    Vec::new()
                } else {
                    s.facts_about(&user, &mentioned, include_invalid, 50)?
                };
                let rules = s.list_rules(&user, false, 50, 0)?;
                Ok((short_term, episodes, facts, rules))
            })
            .await?;
        tracing::debug!(
            bm25_ms = fts_time.as_secs_f64() * 1e3,
            embed_ms = embed_time.as_secs_f64() * 1e3,
            vector_scan_ms = scan_time.as_secs_f64() * 1e3,
            searched_ms = searched.as_secs_f64() * 1e3,
            total_ms = started.elapsed().as_secs_f64() * 1e3,
            "recall stages"
        );
        Ok(assemble(
            q,
            short_term,
            episodes,
            facts,
            rules,
            Some(qvec.as_slice()),
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
    s: &dyn crate::store::Backend,
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

/// The content words of a free-text query, lowercased, deduplicated, in order: what the BM25
/// search looks for (stopwords and punctuation-only tokens dropped).
pub fn fts_terms(query: &str) -> Vec<String> {
    let mut seen = HashSet::new();
    words::tokens(query)
        .into_iter()
        .filter(|t| !words::is_stopword(t) && t.chars().any(|c| c.is_alphanumeric()))
        .map(|t| t.replace('"', ""))
        .filter(|t| !t.is_empty() && seen.insert(t.clone()))
        .collect()
}

/// Turn a free-text query into an FTS5 expression: its content words, quoted, OR-ed.
/// Quoting makes every user string a valid FTS5 query (no syntax errors from `"` or `-`).
pub fn fts_query(query: &str) -> String {
    or_expression(&fts_terms(query))
}

fn or_expression(terms: &[String]) -> String {
    terms
        .iter()
        .map(|t| format!("\"{t}\""))
        .collect::<Vec<_>>()
        .join(" OR ")
}

/// Matching rows the BM25 search may score per query, counted as the sum of its terms'
/// document frequencies. FTS5 computes `bm25()` for every matching row and the user filter
/// joins each one before the top 100 are kept (~1.5-3 us per row here), so a query of common
/// words over 100k episodes ("visit OR last OR month": 46k rows) took 60-180 ms; 10,000 rows
/// bound it to ~15-30 ms. LoCoMo users (a few hundred episodes each) never reach it.
pub const FTS_POSTINGS_BUDGET: i64 = 10_000;

/// Plan the BM25 expression for `terms` given each term's document frequency (`df`, same
/// order), in the manner of Lucene's `CommonTermsQuery` (Elasticsearch's `cutoff_frequency`):
/// within [`FTS_POSTINGS_BUDGET`], all terms OR-ed (plain BM25). Beyond it, the most frequent
/// terms are dropped from the OR until the rest fit — they carry the least IDF, and every row
/// that matches a rarer term is still found; if even the rarest term alone is over budget,
/// the terms are AND-ed instead, rarest first (rows that hold all of them: a much smaller set
/// for common words). Terms that match nothing are left out. Returns "" when nothing can match.
pub fn plan_fts(terms: &[String], df: &[i64]) -> String {
    let mut present: Vec<(&String, i64)> = terms
        .iter()
        .zip(df)
        .filter(|(_, d)| **d > 0)
        .map(|(t, d)| (t, *d))
        .collect();
    if present.iter().map(|(_, d)| d).sum::<i64>() <= FTS_POSTINGS_BUDGET {
        return or_expression(
            &present
                .iter()
                .map(|(t, _)| (*t).clone())
                .collect::<Vec<_>>(),
        );
    }
    present.sort_by_key(|(_, d)| *d);
    let mut kept = Vec::new();
    let mut total = 0;
    for (t, d) in &present {
        if total + d > FTS_POSTINGS_BUDGET {
            break;
        }
        total += d;
        kept.push((*t).clone());
    }
    if kept.is_empty() {
        return present
            .iter()
            .map(|(t, _)| format!("\"{t}\""))
            .collect::<Vec<_>>()
            .join(" AND ");
    }
    or_expression(&kept)
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
        memories.push(
            Memory {
                text: e.with_context.clone(),
                tier: "episodic",
                score: e.score,
                evidence: e.context_evidence.clone(),
                id: e.episode.id.to_string(),
                date: None,
                at_ms: None,
            }
            .dated(Some(e.episode.occurred_ms)),
        );
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
        memories.push(
            Memory {
                text: format!("{} (since {day})", f.fact),
                tier: "semantic",
                score: top * weight / (1.0 + i as f64 * 0.2),
                evidence: f.evidence.clone(),
                id: f.id.to_string(),
                date: None,
                at_ms: None,
            }
            .dated(Some(f.valid_ms)),
        );
    }
    for r in &rules {
        let sim = qvec.map(|v| cosine(v, &r.embedding) as f64).unwrap_or(0.0);
        if sim > 0.35 {
            memories.push(
                Memory {
                    text: r.statement.clone(),
                    tier: "procedural",
                    score: top * sim,
                    evidence: r.evidence.clone(),
                    id: r.id.to_string(),
                    date: None,
                    at_ms: None,
                }
                .dated(crate::job::parse_timestamp(&r.stated_at).map(|t| t.timestamp_millis())),
            );
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
            memories.push(
                Memory {
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
                    date: None,
                    at_ms: None,
                }
                .dated(Some(t.ts_ms)),
            );
        }
    }
    memories.sort_by(|a, b| b.score.total_cmp(&a.score));
    memories.truncate(q.limit);
    let context = render(&short_term, &memories, &rules, None);
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
/// and rules, the summary of the turns folded out of the Tier 1 window (`earlier`, when there
/// is one and it is not empty), then the recent turns, oldest first. Each section is a
/// `## ` header and `- ` lines, followed by a blank line but for the last.
pub fn render(
    short_term: &[TurnRow],
    memories: &[Memory],
    rules: &[RuleRow],
    earlier: Option<&ShortTermSummary>,
) -> String {
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
    if let Some(sm) = earlier.filter(|sm| !sm.summary.is_empty()) {
        out.push_str(&format!(
            "## Earlier conversation (summary of {} older turns)\n",
            sm.folded_turns
        ));
        for l in sm.summary.lines() {
            out.push_str(&format!("- {l}\n"));
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

    fn unit(rng: &mut fastrand::Rng, dim: usize) -> Vec<f32> {
        let mut v: Vec<f32> = (0..dim).map(|_| rng.f32() - 0.5).collect();
        let n = v.iter().map(|x| x * x).sum::<f32>().sqrt();
        v.iter_mut().for_each(|x| *x /= n);
        v
    }

    #[test]
    fn int8_codes_keep_the_dot_product_close() {
        let mut rng = fastrand::Rng::with_seed(3);
        for dim in [1, 31, 32, 33, 384] {
            let (a, b) = (unit(&mut rng, dim), unit(&mut rng, dim));
            let (mut ca, mut cb) = (Vec::new(), Vec::new());
            let (sa, sb) = (quantize_into(&a, &mut ca), quantize_into(&b, &mut cb));
            let approx = dot_i8(&ca, &cb) as f32 * sa * sb;
            assert!((approx - cosine(&a, &b)).abs() < 0.02, "dim {dim}");
        }
        let mut zero = Vec::new();
        assert_eq!(quantize_into(&[0.0; 4], &mut zero), 0.0);
        assert_eq!(zero, vec![0; 4]);
    }

    /// The int8 scan + rescoring returns exactly what a brute-force f32 search returns, for
    /// the user asked about only, and follows inserts and deletes.
    #[test]
    fn top_k_equals_exact_search_and_follows_changes() {
        let dir = tempfile::tempdir().unwrap();
        let store = crate::store::SqliteStore::open(&dir.path().join("r.db"), "normal").unwrap();
        let mut rng = fastrand::Rng::with_seed(11);
        let dim = 64;
        let mine: Vec<(String, i64, Vec<f32>)> = (0..2000)
            .map(|i| (format!("episode {i}"), i, unit(&mut rng, dim)))
            .collect();
        let theirs: Vec<(String, i64, Vec<f32>)> = (0..500)
            .map(|i| (format!("other {i}"), i, unit(&mut rng, dim)))
            .collect();
        store.insert_synthetic_episodes("me", &mine).unwrap();
        store.insert_synthetic_episodes("them", &theirs).unwrap();
        let cache = VectorCache::default();
        let exact = |user: &str, q: &[f32], k: usize| {
            let mut all = Vec::new();
            store
                .each_episode_vector(user, 0, |id, b| {
                    all.push((id, cosine(&crate::store::blob_to_vec(b), q)))
                })
                .unwrap();
            all.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
            all.truncate(k);
            all
        };
        for _ in 0..20 {
            let q = unit(&mut rng, dim);
            let got = cache.top_k(&store, "me", &q, 10).unwrap();
            assert_eq!(got, exact("me", &q, 10));
        }
        // New rows are picked up, rows of another user never appear.
        let q = unit(&mut rng, dim);
        store
            .insert_synthetic_episodes("me", &[("twin".into(), 9, q.clone())])
            .unwrap();
        let got = cache.top_k(&store, "me", &q, 5).unwrap();
        assert!((got[0].1 - 1.0).abs() < 1e-5, "{got:?}");
        assert_eq!(got, exact("me", &q, 5));
        let theirs_ids: HashSet<i64> = {
            let mut ids = HashSet::new();
            store
                .each_episode_vector("them", 0, |id, _| {
                    ids.insert(id);
                })
                .unwrap();
            ids
        };
        assert!(got.iter().all(|(id, _)| !theirs_ids.contains(id)));
        // A user with no episodes, and k = 0, give nothing.
        assert!(cache.top_k(&store, "nobody", &q, 5).unwrap().is_empty());
        assert!(cache.top_k(&store, "me", &q, 0).unwrap().is_empty());
        // The highest row deleted and another inserted (SQLite reuses its id, so count and
        // highest id are as before): the deletion counter makes the cache reload.
        let before = cache.top_k(&store, "me", &q, 5).unwrap();
        store
            .write(|tx| {
                tx.execute(
                    "DELETE FROM episodes WHERE id = (SELECT max(id) FROM episodes)",
                    [],
                )?;
                Ok(())
            })
            .unwrap();
        let q2 = unit(&mut rng, dim);
        store
            .insert_synthetic_episodes("me", &[("replacement".into(), 10, q2.clone())])
            .unwrap();
        let got = cache.top_k(&store, "me", &q2, 5).unwrap();
        assert!((got[0].1 - 1.0).abs() < 1e-5, "{got:?}");
        assert_eq!(got, exact("me", &q2, 5));
        assert_ne!(cache.top_k(&store, "me", &q, 5).unwrap(), before);
        // Deleted rows leave the cache (reload), even when as many rows were added back.
        crate::store::Editor::forget_user(&store, "me").unwrap();
        assert!(cache.top_k(&store, "me", &q, 5).unwrap().is_empty());
        store.insert_synthetic_episodes("me", &mine[..3]).unwrap();
        let got = cache.top_k(&store, "me", &q, 5).unwrap();
        assert_eq!(got.len(), 3);
        assert_eq!(got, exact("me", &q, 5));
    }

    /// The binary prefilter's cut is exact: the `n` smallest Hamming distances, whatever the
    /// ties.
    #[test]
    fn binary_cut_keeps_the_smallest_distances() {
        let mut rng = fastrand::Rng::with_seed(5);
        let mut u = UserVectors::default();
        for id in 0..3000 {
            let v = unit(&mut rng, 100);
            let blob: Vec<u8> = v.iter().flat_map(|x| x.to_le_bytes()).collect();
            u.push_blob(id, &blob);
        }
        assert_eq!(u.bits.len(), 3000 * 2);
        let q = unit(&mut rng, 100);
        let mut qb = Vec::new();
        sign_bits_into(&q, &mut qb);
        let dist = hamming_all(&u.bits, &qb);
        for n in [1, 7, 300, 2999, 3000, 5000] {
            let got = u.binary_nearest(&q, n);
            assert_eq!(got.len(), n.min(3000));
            let worst_in = got.iter().map(|i| dist[*i as usize]).max().unwrap();
            let kept: HashSet<u32> = got.iter().copied().collect();
            let best_out = (0..3000u32)
                .filter(|i| !kept.contains(i))
                .map(|i| dist[i as usize])
                .min();
            assert!(best_out.is_none_or(|b| b >= worst_in), "n {n}");
        }
        // A vector's own signs are at distance 0 from it.
        let mut own = Vec::new();
        sign_bits_into(&q, &mut own);
        assert_eq!(hamming_all(&own, &qb), vec![0]);
    }

    /// On clustered vectors (as sentence embeddings are: topics, not uniform noise), the
    /// three-stage search of a user above [`BINARY_PREFILTER_MIN`] finds nearly all of the
    /// exact top 100, and its cosines are exact.
    #[test]
    fn binary_prefilter_keeps_the_true_neighbours() {
        let dir = tempfile::tempdir().unwrap();
        let store = crate::store::SqliteStore::open(&dir.path().join("b.db"), "normal").unwrap();
        let mut rng = fastrand::Rng::with_seed(17);
        let dim = 384;
        let centers: Vec<Vec<f32>> = (0..200).map(|_| unit(&mut rng, dim)).collect();
        let near = |rng: &mut fastrand::Rng, c: &[f32], spread: f32| {
            let noise = unit(rng, dim);
            let mut v: Vec<f32> = c.iter().zip(&noise).map(|(a, b)| a + spread * b).collect();
            let n = v.iter().map(|x| x * x).sum::<f32>().sqrt();
            v.iter_mut().for_each(|x| *x /= n);
            v
        };
        let rows: Vec<(String, i64, Vec<f32>)> = (0..BINARY_PREFILTER_MIN + 5000)
            .map(|i| {
                let c = &centers[rng.usize(..centers.len())];
                let spread = 0.8 + 0.8 * rng.f32();
                (format!("e{i}"), i as i64, near(&mut rng, c, spread))
            })
            .collect();
        store.insert_synthetic_episodes("big", &rows).unwrap();
        let vectors: Vec<(i64, Vec<f32>)> = {
            let mut all = Vec::new();
            store
                .each_episode_vector("big", 0, |id, b| {
                    all.push((id, crate::store::blob_to_vec(b)))
                })
                .unwrap();
            all
        };
        let cache = VectorCache::default();
        let (mut found, mut wanted) = (0, 0);
        for _ in 0..20 {
            let c = &centers[rng.usize(..centers.len())];
            let q = near(&mut rng, c, 1.0);
            let mut exact: Vec<(i64, f32)> =
                vectors.iter().map(|(id, v)| (*id, cosine(v, &q))).collect();
            exact.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
            exact.truncate(100);
            let got = cache.top_k(&store, "big", &q, 100).unwrap();
            assert_eq!(got.len(), 100);
            let truth: HashMap<i64, f32> = exact.iter().copied().collect();
            for (id, cos) in &got {
                if let Some(t) = truth.get(id) {
                    assert!((t - cos).abs() < 1e-5);
                    found += 1;
                }
            }
            wanted += 100;
        }
        let recall = found as f64 / wanted as f64;
        eprintln!("binary prefilter: recall@100 {recall:.3} against the exact search");
        assert!(recall >= 0.95, "recall@100 {recall}");

        // The worst case, for the record (not a realistic workload): uniform random unit
        // vectors, whose cosines all sit within a few hundredths of 0.
        let rows: Vec<(String, i64, Vec<f32>)> = (0..BINARY_PREFILTER_MIN + 5000)
            .map(|i| (format!("r{i}"), i as i64, unit(&mut rng, dim)))
            .collect();
        store.insert_synthetic_episodes("noise", &rows).unwrap();
        let mut all = Vec::new();
        store
            .each_episode_vector("noise", 0, |id, b| {
                all.push((id, crate::store::blob_to_vec(b)))
            })
            .unwrap();
        let (mut found, mut wanted) = (0, 0);
        for _ in 0..10 {
            let q = unit(&mut rng, dim);
            let mut exact: Vec<(i64, f32)> =
                all.iter().map(|(id, v)| (*id, cosine(v, &q))).collect();
            exact.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
            let truth: HashSet<i64> = exact.iter().take(100).map(|(id, _)| *id).collect();
            let got = cache.top_k(&store, "noise", &q, 100).unwrap();
            found += got.iter().filter(|(id, _)| truth.contains(id)).count();
            wanted += 100;
        }
        let noise = found as f64 / wanted as f64;
        eprintln!("binary prefilter on uniform random vectors: recall@100 {noise:.3}");
        assert!(noise > 0.85, "recall@100 on noise {noise}");
    }

    #[test]
    fn common_terms_are_dropped_beyond_the_budget() {
        let t = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let terms = t(&["visit", "last", "month"]);
        // Within budget: plain OR of the terms that occur.
        assert_eq!(plan_fts(&terms, &[10, 0, 30]), "\"visit\" OR \"month\"");
        // Over budget: the rarest terms that fit, most frequent dropped.
        let b = FTS_POSTINGS_BUDGET;
        assert_eq!(
            plan_fts(&terms, &[b / 4, b, b / 2]),
            "\"visit\" OR \"month\""
        );
        // Even the rarest alone is over budget: all terms must match.
        assert_eq!(
            plan_fts(&terms, &[b + 1, b * 3, b * 2]),
            "\"visit\" AND \"month\" AND \"last\""
        );
        assert_eq!(plan_fts(&terms, &[0, 0, 0]), "");
        assert_eq!(plan_fts(&[], &[]), "");
    }

    #[test]
    fn fts_query_quotes_and_drops_stopwords() {
        let q = fts_query("When did \"Caroline\" go to the support-group?");
        assert!(q.contains("\"caroline\""), "{q}");
        assert!(!q.contains("\"the\""), "{q}");
        assert!(fts_query("   ").is_empty());
    }
}

#[cfg(test)]
mod timing {
    use super::*;

    /// Stage timings of `top_k` on 100k random vectors (run by hand, `--ignored`).
    #[test]
    #[ignore]
    fn top_k_timing_100k() {
        let dir = tempfile::tempdir().unwrap();
        let store = crate::store::SqliteStore::open(&dir.path().join("t.db"), "normal").unwrap();
        let mut rng = fastrand::Rng::with_seed(1);
        let unit = |rng: &mut fastrand::Rng| {
            let mut v: Vec<f32> = (0..384).map(|_| rng.f32() - 0.5).collect();
            let n = v.iter().map(|x| x * x).sum::<f32>().sqrt();
            v.iter_mut().for_each(|x| *x /= n);
            v
        };
        let rows: Vec<(String, i64, Vec<f32>)> = (0..100_000)
            .map(|i| (format!("e{i}"), i, unit(&mut rng)))
            .collect();
        store.insert_synthetic_episodes("u", &rows).unwrap();
        let cache = VectorCache::default();
        let q = unit(&mut rng);
        cache.top_k(&store, "u", &q, 100).unwrap();
        let entry = cache.users.lock().unwrap().get("u").unwrap().clone();
        let cur = entry.read().unwrap();
        for _ in 0..5 {
            let q = unit(&mut rng);
            let t = std::time::Instant::now();
            let among = cur.binary_nearest(&q, 3000);
            let b = t.elapsed();
            let top = cur.int8_nearest(&q, Some(among), 300);
            let i = t.elapsed() - b;
            let t2 = std::time::Instant::now();
            let all = cur.int8_nearest(&q, None, 300);
            let full = t2.elapsed();
            eprintln!(
                "binary {b:?} int8 of 3000 {i:?}; full int8 scan {full:?} ({} {})",
                top.len(),
                all.len()
            );
        }
    }
}
