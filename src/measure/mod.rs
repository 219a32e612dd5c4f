//! The `reflector` binary's measuring commands. They are not part of the service library
//! (`reflector::…`): they drive it from outside, through its public API and the seams in
//! `reflector::seams`.
//!
//! - [`bench`]: `reflector bench`, the performance benchmark (docs/BENCHMARKS.md).
//! - [`locomo`]: `reflector eval locomo`, recall on LoCoMo questions for the scorer.
//! - [`amqp`]: `reflector amqp-bench`, what the broker costs a job.

pub mod amqp;
pub mod bench;
pub mod bench_keys;
pub mod locomo;

use std::path::PathBuf;

use clap::Subcommand;

/// The measuring subcommands, added to the product's (`reflector::cli::Command`).
// Parsed once per process: the size of the largest variant costs nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Evaluate recall on a LoCoMo file after an import: writes the scorer's JSONL.
    Eval {
        /// Benchmark (only `locomo`).
        benchmark: String,
        file: PathBuf,
        #[arg(long)]
        out: PathBuf,
        #[arg(long, value_delimiter = ',')]
        samples: Vec<String>,
        /// Memories retrieved per question.
        #[arg(long, default_value_t = 25)]
        k: usize,
        #[arg(
            long,
            env = "REFLECTOR_SERVER",
            default_value = "http://127.0.0.1:8080"
        )]
        server: String,
        #[arg(long, default_value_t = 4)]
        concurrency: usize,
    },
    /// Performance benchmark on loopback (in-process services, temp data): store latency
    /// and throughput, reflection rate, recall at scale, peak RSS. Exit 1 if a target is missed.
    Bench(bench::BenchArgs),
    /// Measure publish-with-confirm latency (p50/p99) and jobs/s through RabbitMQ
    /// (RABBITMQ_URL; uses queues of its own, deleted afterwards).
    AmqpBench(amqp::MeasureArgs),
}

/// Run one measuring subcommand; the process exit code, or an error (printed, exit 2).
pub async fn run(command: Command) -> anyhow::Result<i32> {
    match command {
        Command::Bench(args) => bench::run(args).await,
        Command::AmqpBench(args) => amqp::run(args).await,
        Command::Eval {
            benchmark,
            file,
            out,
            samples,
            k,
            server,
            concurrency,
        } => {
            if benchmark != "locomo" {
                anyhow::bail!(
                    "unknown benchmark {benchmark:?}; use `reflector eval locomo FILE --out R.jsonl`"
                );
            }
            locomo::eval(&file, &out, &samples, k, &server, concurrency.max(1)).await?;
            Ok(0)
        }
    }
}
