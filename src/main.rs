//! `reflector`: the Memory Reflector binary. See `reflector --help` and the README.
//!
//! Its commands are the product's (`reflector::cli`) and the measuring ones, which live
//! here in the binary, outside the service library (`measure`).

mod measure;

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "reflector",
    version,
    about = "Memory Reflector: four-tier memory for conversational AI assistants"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    #[command(flatten)]
    Product(reflector::cli::Command),
    #[command(flatten)]
    Measure(measure::Command),
}

fn main() {
    // Before any thread exists: candle's CPU kernels read RAYON_NUM_THREADS. The embedding
    // pool runs one single-threaded embedder per core, which measured fastest on 2 cores
    // (see src/embed/pool.rs); a value set by the operator is kept.
    // SAFETY: no other thread is running yet, so changing the environment cannot race.
    unsafe {
        reflector::embed::pool::set_single_threaded_kernels();
    }
    // rmcp (the MCP server) logs every stateless request's start and end at INFO.
    let mut filter = tracing_subscriber::EnvFilter::try_from_env("REFLECTOR_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,rmcp=warn"));
    // lapin logs every AMQP frame at TRACE, the connection's SASL response (user AND
    // password) included: never below DEBUG, whatever REFLECTOR_LOG asks for, and only
    // warnings unless REFLECTOR_LOG asks for debug output at all (its DEBUG lines are one per
    // channel and frame). A directive for the same target replaces the operator's; these are
    // the most specific targets.
    let verbose =
        std::env::var("REFLECTOR_LOG").is_ok_and(|v| v.contains("debug") || v.contains("trace"));
    let lapin_level = if verbose { "debug" } else { "warn" };
    for target in ["lapin", "lapin::io_loop", "lapin::frames"] {
        let d = format!("{target}={lapin_level}");
        filter = filter.add_directive(d.parse().expect("static directive"));
    }
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            std::process::exit(2);
        }
    };
    let run = async {
        match cli.command {
            Command::Product(c) => reflector::cli::run(c).await,
            Command::Measure(c) => measure::run(c).await,
        }
    };
    match runtime.block_on(run) {
        Ok(code) => std::process::exit(code),
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::exit(2);
        }
    }
}
