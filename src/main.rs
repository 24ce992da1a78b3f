//! The `stancewatch` command line: a table of contents of the commands, each in its own file under `cli/`.
//!
//! - `run`: the service (Kafka in, Kafka out, metrics and probes over HTTP) — [`cli::run`].
//! - `replay`: the service over the input records of a time range, stopping at its end — [`cli::replay`].
//! - `process`: the same enrichment offline, JSONL in, JSONL out — [`cli::process`].
//! - `demo`: the service against an in-process Kafka with the example articles — [`cli::demo`].
//! - `train`, `distill`, `eval`: the models' lab (the `lab` crate does the work) — [`cli::train`],
//!   [`cli::distill`], [`cli::eval`].
//! - `bench`: throughput, latency and memory of the NLP and of the whole service — [`cli::bench`].

use std::io::Write;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use stancewatch::config::LogFormat;

mod cli;

#[derive(Parser)]
#[command(
    name = "stancewatch",
    version,
    about = "Entities and stances of news articles, from Kafka to Kafka"
)]
struct Cli {
    /// Log format on stderr (overrides log.format in the configuration).
    #[arg(long, global = true, value_enum)]
    log_format: Option<LogFormat>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the service: consume articles, produce enriched events, serve /metrics.
    Run(cli::run::Args),
    /// Re-process the input records of a time range (e.g. after a model upgrade) under a consumer group of
    /// its own, then stop with a summary.
    Replay(cli::replay::Args),
    /// Enrich articles offline: JSONL (or one JSON object) from FILE or stdin, enriched JSONL on stdout.
    Process(cli::process::Args),
    /// Train a model: `train ner` (CoNLL-2003) or `train stance` (NewsMTSC).
    Train {
        #[command(subcommand)]
        what: cli::train::TrainWhat,
    },
    /// Label data with the accurate-mode transformer for training the fast model: `distill stance`.
    Distill {
        #[command(subcommand)]
        what: cli::distill::DistillWhat,
    },
    /// Measure a model on annotated data: `eval ner` (CoNLL), `eval stance` (NewsMTSC), `eval persent` (PerSenT).
    Eval {
        #[command(subcommand)]
        what: cli::eval::EvalWhat,
    },
    /// Measure throughput, latency and memory: the NLP pipeline alone, then the whole service through an
    /// in-process mock Kafka cluster (see BENCHMARKS.md).
    Bench(cli::bench::Args),
    /// Start an in-process mock Kafka cluster, publish the example articles, run the service against it and
    /// print the events it emits.
    Demo(cli::demo::Args),
}

fn main() -> ExitCode {
    limit_malloc_arenas();
    let cli = Cli::parse();
    let log_format = cli.log_format;
    let quiet_logs = |filter| cli::init_logging(log_format.unwrap_or(LogFormat::Human), filter);
    let result = match cli.command {
        Command::Run(args) => cli::run::run(args, log_format),
        Command::Replay(args) => cli::replay::replay(args, log_format),
        Command::Process(args) => {
            quiet_logs("warn");
            cli::process::process(args)
        }
        Command::Train { what } => cli::train::train(what),
        Command::Distill { what } => cli::distill::distill(what),
        Command::Eval { what } => cli::eval::eval(what),
        Command::Bench(args) => {
            quiet_logs("warn");
            cli::bench::bench(args)
        }
        Command::Demo(args) => {
            quiet_logs("warn,stancewatch=warn");
            cli::demo::demo(args)
        }
    };
    match result {
        Ok(code) => code,
        // A reader of our output that went away is not an error of ours ("stancewatch process | head").
        Err(e) if is_broken_pipe(&e) => ExitCode::SUCCESS,
        Err(e) => {
            // Not eprintln!: it panics when stderr is closed.
            let _ = writeln!(std::io::stderr(), "error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

/// Caps glibc's malloc arenas at twice the cores (at least 4), unless `MALLOC_ARENA_MAX` is set.
///
/// glibc gives each thread that meets contention an arena of its own, up to eight per core. The service's
/// outputs are allocated on the NLP threads and freed on librdkafka's threads once delivered, so every arena
/// keeps a high-water mark of half-freed heaps: with the default, peak RSS in the bench's latency phase was
/// ~270 MB and kept growing with the articles processed; capped at four arenas on two cores it stayed at
/// ~235 MB, at the same rate (fewer, at three or two arenas, made the NLP threads wait on each other's locks:
/// the 2-worker rate fell by a fifth to a half). Must run before any other thread starts.
fn limit_malloc_arenas() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    if std::env::var_os("MALLOC_ARENA_MAX").is_none() {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let arenas = (2 * cores).max(4);
        // SAFETY: mallopt only sets an allocator parameter; no other thread exists yet.
        unsafe {
            libc::mallopt(libc::M_ARENA_MAX, arenas as libc::c_int);
        }
    }
}
