//! The headline figures of `reflector bench --json`'s last line: a contract with the scripts
//! that read it (docs/BENCHMARKS.md). One file, included by the benchmark and by its smoke
//! test (`tests/bench_smoke.rs`), which cannot reach the binary's modules.

/// The JSON line's keys, in order; each value a finite number.
pub const JSON_KEYS: [&str; 13] = [
    "fast_p99_ms",
    "fast_p99_ms_workers_running",
    "traditional_p50_ms",
    "fast_vs_traditional_ratio",
    "store_turns_per_s",
    "store_turns_per_s_workers_running",
    "reflection_jobs_per_s",
    "embed_sentences_per_s",
    "embeddings_per_job",
    "lag_p99_ms",
    "recall_p99_ms_10k",
    "recall_p99_ms_100k",
    "peak_rss_mb",
];
