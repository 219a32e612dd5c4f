//! Memory Reflector: a memory service for conversational AI assistants.
//!
//! A chat backend posts every turn; the request path stores it in short-term memory (Tier 1)
//! and records a reflection job in one transaction, then answers. Reflector workers turn each
//! job into episodic (Tier 2), semantic (Tier 3) and procedural (Tier 4) memory, and recall
//! assembles context from all four tiers. Modules follow that flow:
//!
//! - [`api`]: HTTP routes (axum) — interactions, memory, reflection, metrics.
//! - [`manager`]: `store_interaction`, the fast and the traditional path.
//! - [`store`]: SQLite tables for every tier and the job ledger, which is also the embedded queue.
//! - [`reflect`]: the three processors of one job.
//! - [`extract`]: pure extraction rules — curation, graph, rules, time grounding.
//! - [`llm`]: the optional LLM mode — extraction by an OpenAI-compatible chat model.
//! - [`embed`]: all-MiniLM-L6-v2 on CPU (candle), the model cache, the embedding pool.
//! - [`recall`]: hybrid search, context assembly and fitting it into `max_tokens`.
//! - [`tokens`]: the token estimate (no project imports).
//! - [`job`]: the reflection job and its wire format.
//! - [`queue`]: the job lifecycle, the embedded queue's worker loop over the `jobs` table, and RabbitMQ.
//! - [`config`], [`server`], [`cli`]: settings, wiring, and the command-line tools.
//! - [`seams`]: what only tests and the benchmark set (fault injection, paused workers).
//!
//! The measuring commands (`reflector bench`, `eval`, `amqp-bench`) are the binary's own, in
//! `src/measure/`, outside this library.

pub mod api;
pub mod cli;
pub mod config;
pub mod embed;
pub mod extract;
pub mod job;
pub mod llm;
pub mod manager;
pub mod queue;
pub mod recall;
pub mod reflect;
pub mod seams;
pub mod server;
pub mod store;
pub mod tokens;
