//! The `stancewatch` command line: the service (`run`), the offline mode (`process`), a self-contained demo
//! against librdkafka's in-process mock cluster (`demo`), and model training and evaluation on the public
//! datasets (`train`, `eval`), which is where their files are read.

use std::io::{BufRead, BufReader, IsTerminal, Read, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::{ClientConfig, Offset, TopicPartitionList};
use stancewatch::article::{Article, Limits};
use stancewatch::config::{Config, LogFormat};
use stancewatch::enriched::{enrich, EnrichedArticle, EntityStanceRecord};
use stancewatch::nlp::lexicon::Lexicon;
use stancewatch::nlp::{stance, Document, Pipeline, StanceLabel};
use stancewatch::stream::mock::{publish_all, MockKafka, Publish};
use stancewatch::stream::records::HEADER_ERROR_CLASS;
use stancewatch::stream::{RunningService, Service};
use tracing::{error, info, warn};

/// The articles the demo publishes, written for this project.
const EXAMPLE_ARTICLES: &str = include_str!("../examples/articles.jsonl");

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
    Run {
        /// A TOML file overriding config/default.toml; STANCEWATCH__SECTION__KEY variables override both.
        #[arg(long, short)]
        config: Option<PathBuf>,
    },
    /// Enrich articles offline: JSONL (or one JSON object) from FILE or stdin, enriched JSONL on stdout.
    Process {
        /// Input file; `-` or nothing reads stdin.
        input: Option<PathBuf>,
        /// Largest accepted body, in bytes.
        #[arg(long, default_value_t = 1 << 20)]
        max_article_bytes: usize,
        /// A knowledge-base file of your own entities (JSON Lines, kb/ format); repeatable.
        #[arg(long = "kb", value_name = "FILE")]
        knowledge_base_files: Vec<PathBuf>,
        /// `fast` (linear models) or `accurate` (the fine-tuned transformer; needs scripts/fetch-minilm.sh).
        #[arg(long, value_enum, default_value = "fast")]
        mode: Mode,
        /// Accurate: the base weights.
        #[arg(long, default_value = "models/base/all-minilm-l6-v2")]
        base_dir: PathBuf,
    },
    /// Train a model: `train ner` (CoNLL-2003) or `train stance` (NewsMTSC).
    Train {
        #[command(subcommand)]
        what: TrainWhat,
    },
    /// Label data with the accurate-mode transformer for training the fast model: `distill stance`.
    Distill {
        #[command(subcommand)]
        what: DistillWhat,
    },
    /// Measure a model on annotated data: `eval ner` (CoNLL), `eval stance` (NewsMTSC), `eval persent` (PerSenT).
    Eval {
        #[command(subcommand)]
        what: EvalWhat,
    },
    /// Measure throughput, latency and memory: the NLP pipeline alone, then the whole service through an
    /// in-process mock Kafka cluster (see BENCHMARKS.md).
    Bench {
        /// Articles in the corpus (a mix of briefs, articles and long reads cut from the examples); each round
        /// runs all of them through the NLP alone and then through the service, a second or two each.
        #[arg(long, default_value_t = 1000)]
        articles: usize,
        /// Thread counts to measure (NLP threads, and the service's NLP workers).
        #[arg(long, value_delimiter = ',', default_value = "1,2")]
        threads: Vec<usize>,
        /// How long the fixed-rate latency phase publishes, in seconds (0 skips it).
        #[arg(long, default_value_t = 20.0)]
        latency_seconds: f64,
        /// Rounds for each thread count; medians are reported. Each end-to-end run is compared with the NLP-only
        /// runs just before and after it (on a shared machine one round's ratio still swings by ±10 %).
        #[arg(long, default_value_t = 9)]
        repeats: usize,
        /// Leave the service's Kafka I/O threads in the default scheduling class (`processing.io_sched_batch =
        /// false`), to measure what the SCHED_BATCH class is worth.
        #[arg(long)]
        no_io_sched_batch: bool,
        /// Print the figures as one JSON object on the last line as well.
        #[arg(long)]
        json: bool,
        /// Which stance mode to measure; `both` skips accurate mode, saying why, when its base weights are
        /// missing.
        #[arg(long, value_enum, default_value = "both")]
        mode: BenchMode,
        /// Accurate mode: articles in its (smaller) corpus.
        #[arg(long, default_value_t = 200)]
        accurate_articles: usize,
        /// Accurate mode: the base weights.
        #[arg(long, default_value = "models/base/all-minilm-l6-v2")]
        base_dir: PathBuf,
        /// Accurate mode: transformer readings (forward passes) per article (default: nlp.accurate.max_sentences).
        #[arg(long)]
        max_sentences: Option<usize>,
    },
    /// Start an in-process mock Kafka cluster, publish the example articles, run the service against it and
    /// print the events it emits.
    Demo {
        /// Keep the cluster and the service running after the summary, until Ctrl-C.
        #[arg(long)]
        serve: bool,
        /// Address for /metrics, /healthz and /readyz.
        #[arg(long, default_value = "127.0.0.1:9898")]
        listen: std::net::SocketAddr,
    },
}

// The stance variant carries every training option; the enum is parsed once, so its size does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Subcommand)]
enum TrainWhat {
    /// Train the entity recogniser (two-pass averaged perceptron) and write it, compressed, to --out.
    Ner {
        /// CoNLL-2003 training file (e.g. ../shared/data/conll2003/eng.train).
        #[arg(long)]
        train: PathBuf,
        /// CoNLL-2003 development file used to pick the epoch of each pass (e.g. eng.testa).
        #[arg(long)]
        dev: PathBuf,
        /// Where to write the model; commit it as models/ner.bin to embed it in the binary.
        #[arg(long, default_value = "models/ner.bin")]
        out: PathBuf,
        /// Epochs per pass (the best on --dev is kept).
        #[arg(long, default_value_t = 12)]
        epochs: usize,
        /// log2 of the hashed weight-table rows (memory: 2^bits x 17 x 4 bytes per pass).
        #[arg(long, default_value_t = 19)]
        bits: u8,
        /// Cross-validation folds for the first-pass predictions the second pass learns from.
        #[arg(long, default_value_t = 5)]
        folds: usize,
    },
    /// The mention-stance model, from NewsMTSC JSONL; offsets tuned for macro-F1 on the dev files.
    Stance {
        #[arg(long)]
        train: PathBuf,
        /// Dev file(s) for the class offsets and the reported figures; repeat for several.
        #[arg(long, required = true)]
        dev: Vec<PathBuf>,
        /// Where to write the model (default models/stance.bin, or models/stance-accurate.safetensors with
        /// --accurate).
        #[arg(long)]
        out: Option<PathBuf>,
        /// Fine-tune the accurate-mode transformer (MiniLM) instead of the fast linear model.
        #[arg(long)]
        accurate: bool,
        /// Accurate: the base weights (scripts/fetch-minilm.sh puts them there).
        #[arg(long, default_value = "models/base/all-minilm-l6-v2")]
        base_dir: PathBuf,
        /// Accurate: top encoder layers fine-tuned (the rest frozen and cached).
        #[arg(long)]
        tuned_layers: Option<usize>,
        /// Accurate: sentences per step.
        #[arg(long)]
        batch: Option<usize>,
        /// Accurate: peak learning rate of the head.
        #[arg(long)]
        head_learning_rate: Option<f64>,
        /// Seed: accurate, of the head's initialisation, the batch order and dropout; fast, of the shuffle.
        #[arg(long)]
        seed: Option<u64>,
        /// Accurate: mark the target (token type 1) and read each target in its own pass.
        #[arg(long)]
        mark_target: bool,
        #[arg(long)]
        epochs: Option<usize>,
        #[arg(long)]
        bits: Option<u32>,
        #[arg(long)]
        l2: Option<f32>,
        #[arg(long)]
        learning_rate: Option<f32>,
        #[arg(long)]
        class_weight_power: Option<f32>,
        /// Train without averaging the weights over epochs.
        #[arg(long)]
        no_average: bool,
        /// Also report K-fold cross-validated macro-F1 on the training file.
        #[arg(long, value_name = "K")]
        cross_validate: Option<usize>,
        /// Distilled (teacher-labelled) JSONL from `distill stance`, trained on beside --train; repeatable.
        #[arg(long, value_name = "FILE")]
        silver: Vec<PathBuf>,
        /// Weight of each --silver example (gold examples weigh 1).
        #[arg(long, default_value_t = 1.0)]
        silver_weight: f32,
        /// Drop --silver targets whose teacher's top probability is below this.
        #[arg(long, default_value_t = 0.0)]
        silver_min_confidence: f32,
        /// Train toward (1 - MIX) x one-hot label + MIX x teacher probabilities, for every target that has
        /// them (--silver files, and --train when it was written by `distill stance --newsmtsc`).
        #[arg(long, default_value_t = 0.0)]
        soft_mix: f32,
        /// Fast: give the model a dense part, word vectors of this many dimensions derived from the base
        /// weights' input embeddings (--base-dir; needed only for training) read by a hidden layer.
        #[arg(long, default_value_t = 0)]
        dense_dim: usize,
        /// Fast: hidden units of the dense part.
        #[arg(long, default_value_t = 64)]
        hidden: usize,
        /// Fast: Adam step size of the dense part.
        #[arg(long)]
        dense_learning_rate: Option<f32>,
        /// Fast: weight decay of the dense part.
        #[arg(long)]
        dense_l2: Option<f32>,
        /// Fast: the dense part's weights are averaged over this many last epochs.
        #[arg(long)]
        dense_average_last: Option<usize>,
        /// Fast: train this many models from consecutive seeds and merge them (mean class scores).
        #[arg(long, default_value_t = 1)]
        ensemble: usize,
    },
}

#[derive(Subcommand)]
enum DistillWhat {
    /// Write NewsMTSC-style JSONL whose targets carry the transformer's label (`polarity`) and probabilities
    /// (`teacher`): from a CoNLL-2003 file (prose sentences, gold entities as targets) or a NewsMTSC file.
    Stance {
        /// CoNLL-2003 file (e.g. ../shared/data/conll2003/eng.train).
        #[arg(
            long,
            conflicts_with = "newsmtsc",
            required_unless_present = "newsmtsc"
        )]
        conll: Option<PathBuf>,
        /// NewsMTSC JSONL: the same lines with the teacher's probabilities added (gold polarity kept).
        #[arg(long)]
        newsmtsc: Option<PathBuf>,
        /// NewsMTSC: instead, the entities the recogniser finds in each sentence (of --types) that are not
        /// its annotated targets, labelled by the teacher (silver, in-domain).
        #[arg(long, requires = "newsmtsc")]
        others: bool,
        #[arg(long)]
        out: PathBuf,
        /// CoNLL: entity types used as targets.
        #[arg(long, value_delimiter = ',', default_value = "PER,ORG,LOC")]
        types: Vec<String>,
        /// CoNLL: sentences with fewer tokens are skipped.
        #[arg(long, default_value_t = 8)]
        min_tokens: usize,
        /// The base weights.
        #[arg(long, default_value = "models/base/all-minilm-l6-v2")]
        base_dir: PathBuf,
        /// An adapter file instead of the embedded one.
        #[arg(long)]
        model: Option<PathBuf>,
    },
}

#[derive(Subcommand)]
enum EvalWhat {
    /// Entity-level exact-match precision, recall and F1 (conlleval semantics) and tokens per second.
    Ner {
        /// CoNLL-2003 file with gold IOB1 tags in the last column.
        #[arg(long)]
        conll: PathBuf,
        /// A model file instead of the embedded one.
        #[arg(long)]
        model: Option<PathBuf>,
        /// End with one JSON line: f1, precision, recall, per_type, tokens_per_sec, ...
        #[arg(long)]
        json: bool,
    },
    /// Mention stance on NewsMTSC JSONL: macro-F1, accuracy, per-class figures, speed.
    Stance {
        #[arg(long)]
        newsmtsc: PathBuf,
        /// Print the figures as one JSON object on the last line.
        #[arg(long)]
        json: bool,
        /// A model file instead of the embedded one (with --mode accurate: an adapter).
        #[arg(long)]
        model: Option<PathBuf>,
        #[command(flatten)]
        mode: ModeArgs,
    },
    /// Article stance on PerSenT CSV, through the whole pipeline: macro-F1, accuracy, coverage.
    Persent {
        #[arg(long)]
        csv: PathBuf,
        #[arg(long)]
        json: bool,
        #[arg(long)]
        model: Option<PathBuf>,
        /// Search the aggregation parameters on this file and print the best (with 5-fold figures).
        #[arg(long)]
        tune: bool,
        #[command(flatten)]
        mode: ModeArgs,
    },
}

/// Which stance modes `bench` measures.
#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum BenchMode {
    Fast,
    Accurate,
    Both,
}

/// Which stance models an evaluation runs.
#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Mode {
    Fast,
    Accurate,
}

#[derive(clap::Args)]
struct ModeArgs {
    /// `fast` (linear models) or `accurate` (the fine-tuned transformer; needs scripts/fetch-minilm.sh).
    #[arg(long, value_enum, default_value = "fast")]
    mode: Mode,
    /// Accurate: the base weights.
    #[arg(long, default_value = "models/base/all-minilm-l6-v2")]
    base_dir: PathBuf,
    /// Accurate: transformer readings (forward passes) per article (0: all).
    #[arg(long)]
    max_sentences: Option<usize>,
    /// Articles analysed at once (eval persent; default 1 in fast mode, 8 in accurate mode).
    #[arg(long)]
    workers: Option<usize>,
}

fn main() -> ExitCode {
    limit_malloc_arenas();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Run { config } => run(config.as_deref(), cli.log_format),
        Command::Process {
            input,
            max_article_bytes,
            knowledge_base_files,
            mode,
            base_dir,
        } => {
            init_logging(cli.log_format.unwrap_or(LogFormat::Human), "warn");
            let limits = Limits {
                max_body_bytes: max_article_bytes,
            };
            let mut nlp = Config::defaults().nlp;
            nlp.knowledge_base_files = knowledge_base_files;
            nlp.mode = match mode {
                Mode::Fast => stancewatch::config::NlpMode::Fast,
                Mode::Accurate => stancewatch::config::NlpMode::Accurate,
            };
            nlp.accurate.base_dir = base_dir;
            process(input.as_deref(), limits, &nlp)
        }
        Command::Train { what } => train(what),
        Command::Distill { what } => distill(what),
        Command::Eval { what } => eval(what),
        Command::Bench {
            articles,
            threads,
            latency_seconds,
            repeats,
            no_io_sched_batch,
            json,
            mode,
            accurate_articles,
            base_dir,
            max_sentences,
        } => {
            init_logging(cli.log_format.unwrap_or(LogFormat::Human), "warn");
            let options = stancewatch::bench::BenchOptions {
                articles,
                threads,
                latency_seconds,
                repeats,
                io_sched_batch: !no_io_sched_batch,
            };
            bench(
                options,
                json,
                mode,
                accurate_articles,
                &base_dir,
                max_sentences,
            )
        }
        Command::Demo { serve, listen } => {
            init_logging(
                cli.log_format.unwrap_or(LogFormat::Human),
                "warn,stancewatch=warn",
            );
            demo(serve, listen)
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

fn init_logging(format: LogFormat, default_filter: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_filter));
    // A closed stderr ("stancewatch run 2>&1 | head") loses log lines, nothing else: without
    // log_internal_errors(false) the subscriber reports the failed write with eprintln!, which panics, and a
    // panic inside a librdkafka callback aborts the process.
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .log_internal_errors(false)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Human => builder.init(),
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .init(),
    }
}

fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")
}

fn run(config_file: Option<&Path>, log_format: Option<LogFormat>) -> Result<ExitCode> {
    let config = Config::load(config_file)?;
    init_logging(log_format.unwrap_or(config.log.format), &config.log.level);
    info!(
        version = env!("CARGO_PKG_VERSION"),
        mode = ?config.nlp.mode,
        "starting stancewatch"
    );
    runtime()?.block_on(async {
        let service = Service::new(config).start().await?;
        let summary = stop_on_signal(service).await?;
        info!(
            consumed = summary.consumed,
            enriched = summary.enriched,
            dead_lettered = summary.dead_lettered,
            uncommitted = summary.uncommitted_at_exit,
            "stancewatch stopped"
        );
        Ok(ExitCode::SUCCESS)
    })
}

/// SIGTERM or SIGINT starts a graceful shutdown; a second one stops at once.
async fn stop_on_signal(service: RunningService) -> Result<stancewatch::stream::RunSummary> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).context("installing the SIGTERM handler")?;
    let mut int = signal(SignalKind::interrupt()).context("installing the SIGINT handler")?;
    let stop = service.stop_handle();
    // The service may also end by itself (a fatal producer error): then its result is returned at once.
    let wait = service.wait();
    tokio::pin!(wait);
    tokio::select! {
        r = &mut wait => return Ok(r?),
        _ = term.recv() => info!("SIGTERM: draining in-flight articles, then exiting"),
        _ = int.recv() => info!("SIGINT: draining in-flight articles, then exiting (again to stop at once)"),
    }
    stop.shutdown();
    tokio::select! {
        r = &mut wait => Ok(r?),
        _ = async { tokio::select! { _ = term.recv() => {}, _ = int.recv() => {} } } => {
            warn!("second signal: exiting without waiting for in-flight work (it will be redelivered)");
            std::process::exit(130);
        }
    }
}

/// Offline mode: one output line per input line, in order; bad lines are reported and skipped.
fn process(
    input: Option<&Path>,
    limits: Limits,
    nlp: &stancewatch::config::NlpConfig,
) -> Result<ExitCode> {
    let pipeline = stancewatch::enriched::load_pipeline_for(nlp)?;
    // The same bounds as the service's enriched records, so that `process` prints what `run` would produce.
    let output = stancewatch::config::Config::defaults().output;
    let reader: Box<dyn Read> = match input {
        None => Box::new(std::io::stdin().lock()),
        Some(p) if p == Path::new("-") => Box::new(std::io::stdin().lock()),
        Some(p) => Box::new(std::fs::File::open(p).with_context(|| {
            format!(
                "cannot open {}; give a JSONL file or `-` for stdin",
                p.display()
            )
        })?),
    };
    let mut text = String::new();
    BufReader::new(reader)
        .read_to_string(&mut text)
        .context("reading the input (it must be UTF-8 JSON)")?;
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let mut failed = 0usize;
    let mut ok = 0usize;

    // One JSON object spread over several lines (a pretty-printed article) is accepted as a whole.
    let single = text.trim_start().starts_with('{') && text.trim().lines().nth(1).is_some();
    let whole: Option<serde_json::Value> = if single {
        serde_json::from_str(&text).ok()
    } else {
        None
    };
    let items: Vec<(usize, Result<serde_json::Value, String>)> = match whole {
        Some(v) => vec![(1, Ok(v))],
        None => text
            .as_bytes()
            .lines()
            .enumerate()
            .filter_map(|(i, line)| {
                let line = line.ok()?;
                (!line.trim().is_empty()).then(|| {
                    (
                        i + 1,
                        serde_json::from_str(&line).map_err(|e| format!("invalid_json: {e}")),
                    )
                })
            })
            .collect(),
    };
    for (line_no, value) in items {
        let result = value.and_then(|v| {
            let article = Article::from_value(v, limits).map_err(|e| e.to_string())?;
            let mut enriched = enrich(&pipeline, article).map_err(|e| e.to_string())?;
            enriched.to_bounded_json(&output).map_err(|e| e.to_string())
        });
        match result {
            Ok(json) => {
                out.write_all(&json)?;
                out.write_all(b"\n")?;
                ok += 1;
            }
            Err(reason) => {
                let _ = writeln!(std::io::stderr(), "line {line_no}: {reason}");
                failed += 1;
            }
        }
    }
    out.flush()?;
    if failed > 0 {
        let _ = writeln!(
            std::io::stderr(),
            "{ok} article(s) enriched, {failed} line(s) failed"
        );
        return Ok(ExitCode::from(2));
    }
    Ok(ExitCode::SUCCESS)
}

fn read_conll(path: &Path) -> Result<String> {
    std::fs::read_to_string(path).with_context(|| {
        format!(
            "cannot read {}; give a CoNLL-2003 file such as ../shared/data/conll2003/eng.train",
            path.display()
        )
    })
}

fn train_ner(
    train: &Path,
    dev: &Path,
    out: &Path,
    epochs: usize,
    bits: u8,
    folds: usize,
) -> Result<ExitCode> {
    use indicatif::{ProgressBar, ProgressStyle};
    use stancewatch::nlp::{kb::KnowledgeBase, ner};
    use std::io::IsTerminal;

    if !(10..=24).contains(&bits) {
        bail!("--bits {bits} is out of range; use 10 to 24 (19 is the default)");
    }
    if folds < 2 {
        bail!("--folds must be at least 2");
    }
    let train_text = read_conll(train)?;
    let dev_text = read_conll(dev)?;
    let train_docs =
        ner::conll::parse(&train_text).with_context(|| format!("parsing {}", train.display()))?;
    let dev_docs =
        ner::conll::parse(&dev_text).with_context(|| format!("parsing {}", dev.display()))?;
    let opts = ner::train::TrainOptions {
        epochs,
        bits,
        folds,
        ..Default::default()
    };
    let command = format!(
        "stancewatch train ner --train {} --dev {} --out {} --epochs {epochs} --bits {bits} --folds {folds}",
        train.display(),
        dev.display(),
        out.display()
    );
    let terminal = std::io::stderr().is_terminal();
    let mut bar: Option<ProgressBar> = None;
    let started = Instant::now();
    let mut progress = |p: ner::train::Progress| match p {
        ner::train::Progress::Stage { name, total } => {
            if let Some(b) = bar.take() {
                b.finish_and_clear();
            }
            if terminal {
                let b = ProgressBar::new(total);
                b.set_style(
                    ProgressStyle::with_template(
                        "{msg:>18} [{bar:40}] {pos}/{len} sentences ({eta} left)",
                    )
                    .expect("valid template")
                    .progress_chars("=> "),
                );
                b.set_message(name);
                bar = Some(b);
            }
        }
        ner::train::Progress::Advance(n) => {
            if let Some(b) = &bar {
                b.inc(n);
            }
        }
        ner::train::Progress::Message(m) => match &bar {
            Some(b) => b.println(&m),
            None => eprintln!("{m}"),
        },
    };
    let kb = KnowledgeBase::embedded();
    let gazetteer = ner::Gazetteer::from_kb(&kb);
    let (mut model, report) = ner::train::train(
        &train_docs,
        &dev_docs,
        &gazetteer,
        &opts,
        String::new(),
        &mut progress,
    )?;
    if let Some(b) = bar.take() {
        b.finish_and_clear();
    }
    let elapsed = started.elapsed();
    model.provenance = format!(
        "{command}: dev F1 {:.2} (pass 1 {:.2}, epochs {} / {}), trained in {:.0} s",
        report.dev.overall.f1(),
        report.pass1_dev.overall.f1(),
        report.pass1_epoch,
        report.pass2_epoch,
        elapsed.as_secs_f64()
    );
    let bytes = model.to_bytes()?;
    std::fs::write(out, &bytes).with_context(|| {
        format!(
            "cannot write {}; check that its directory exists and is writable",
            out.display()
        )
    })?;
    eprintln!(
        "{}\nwrote {} ({:.1} MB)",
        model.provenance,
        out.display(),
        bytes.len() as f64 / 1e6
    );
    Ok(ExitCode::SUCCESS)
}

fn eval_ner(conll: &Path, model: Option<&Path>, json: bool) -> Result<ExitCode> {
    use stancewatch::nlp::{kb::KnowledgeBase, ner};

    let text = read_conll(conll)?;
    let docs = ner::conll::parse(&text).with_context(|| format!("parsing {}", conll.display()))?;
    let kb = KnowledgeBase::embedded();
    let tagger = match model {
        Some(path) => {
            let bytes = std::fs::read(path)
                .with_context(|| format!("cannot read model {}", path.display()))?;
            ner::NerModel::from_bytes(&bytes)?.into_tagger(ner::Gazetteer::from_kb(&kb))?
        }
        None => ner::Tagger::embedded(&kb)?,
    };
    let tokens: usize = docs.iter().map(|d| d.input.len()).sum();
    let started = Instant::now();
    let predicted: Vec<Vec<ner::NerSpan>> = docs.iter().map(|d| tagger.tag(&d.input)).collect();
    let secs = started.elapsed().as_secs_f64();
    let mut scores = ner::conll::Scores::default();
    for (d, p) in docs.iter().zip(&predicted) {
        scores.add(&d.gold, p);
    }
    let tokens_per_sec = tokens as f64 / secs.max(1e-9);
    let o = scores.overall;
    println!(
        "{}: {} documents, {tokens} tokens, {} gold entities, {} predicted",
        conll.display(),
        docs.len(),
        o.gold,
        o.predicted
    );
    println!("model: {}", tagger.provenance);
    println!(
        "{:<8} {:>9} {:>9} {:>9} {:>7} {:>7}",
        "type", "precision", "recall", "F1", "gold", "pred"
    );
    for (ty, c) in
        std::iter::once(("overall", &o)).chain(scores.per_type.iter().map(|(t, c)| (*t, c)))
    {
        println!(
            "{ty:<8} {:>9.2} {:>9.2} {:>9.2} {:>7} {:>7}",
            c.precision(),
            c.recall(),
            c.f1(),
            c.gold,
            c.predicted
        );
    }
    println!("speed: {tokens_per_sec:.0} tokens/s on one thread ({secs:.2} s)");
    if json {
        let per_type: serde_json::Map<String, serde_json::Value> = scores
            .per_type
            .iter()
            .map(|(t, c)| {
                (
                    t.to_string(),
                    serde_json::json!({
                        "precision": round2(c.precision()), "recall": round2(c.recall()), "f1": round2(c.f1()),
                        "gold": c.gold, "predicted": c.predicted, "correct": c.correct,
                    }),
                )
            })
            .collect();
        let line = serde_json::json!({
            "file": conll.display().to_string(),
            "f1": round2(o.f1()),
            "precision": round2(o.precision()),
            "recall": round2(o.recall()),
            "per_type": per_type,
            "gold": o.gold,
            "predicted": o.predicted,
            "correct": o.correct,
            "tokens": tokens,
            "tokens_per_sec": tokens_per_sec.round(),
        });
        println!("{line}");
    }
    Ok(ExitCode::SUCCESS)
}

fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

const DEMO_TOPICS: [(&str, i32); 4] = [
    ("articles", 8),
    ("articles.enriched", 8),
    ("entity-stances", 8),
    ("articles.dlq", 1),
];

fn demo(serve: bool, listen: std::net::SocketAddr) -> Result<ExitCode> {
    let kafka = MockKafka::start(1).context("starting librdkafka's mock cluster")?;
    for (topic, partitions) in DEMO_TOPICS {
        kafka
            .create_topic(topic, partitions)
            .with_context(|| format!("creating topic {topic}"))?;
    }
    let bootstrap = kafka.bootstrap_servers().to_string();
    println!("mock Kafka cluster at {bootstrap}; topics: articles, articles.enriched, entity-stances, articles.dlq");

    let mut articles = Vec::new();
    for (i, line) in EXAMPLE_ARTICLES
        .lines()
        .filter(|l| !l.trim().is_empty())
        .enumerate()
    {
        let id = serde_json::from_str::<serde_json::Value>(line)
            .ok()
            .and_then(|v| v["id"].as_str().map(str::to_string))
            .unwrap_or_else(|| format!("line-{i}"));
        articles.push(Publish {
            key: Some(id.into_bytes()),
            payload: Some(line.as_bytes().to_vec()),
            headers: vec![(
                "traceparent".into(),
                format!("00-{:032x}-{:016x}-01", i + 1, i + 1).into_bytes(),
            )],
        });
    }
    // Two broken inputs, to show that bad input is dead-lettered rather than dropped or fatal.
    articles.push(Publish {
        key: Some(b"broken-1".to_vec()),
        payload: Some(b"{\"id\": \"broken-1\", \"body\": ".to_vec()),
        headers: vec![],
    });
    articles.push(Publish {
        key: Some(b"broken-2".to_vec()),
        payload: Some(br#"{"id": "broken-2", "title": "No body"}"#.to_vec()),
        headers: vec![],
    });
    let expected = articles.len();

    let mut config = Config::defaults();
    config.kafka.brokers = bootstrap.clone();
    config.kafka.group_id = "stancewatch-demo".into();
    config.kafka.statistics_interval_ms = 1000;
    config.http.listen = listen;

    let rt = runtime()?;
    rt.block_on(async move {
        let service = match Service::new(config.clone()).start().await {
            Ok(s) => s,
            Err(e @ stancewatch::stream::StreamError::Http { .. }) => {
                bail!("{e}; or run the demo with --listen 127.0.0.1:0")
            }
            Err(e) => return Err(e.into()),
        };
        let metrics_url = format!("http://{}/metrics", service.http_addr);
        println!("service started; metrics at {metrics_url}");

        let started = Instant::now();
        publish_all(&bootstrap, "articles", &articles).await.context("publishing the example articles")?;
        println!("published {expected} articles ({} examples + 2 deliberately broken)\n", expected - 2);

        let stop_watch = Arc::new(AtomicBool::new(false));
        let counts = {
            let (bootstrap, stop) = (bootstrap.clone(), stop_watch.clone());
            tokio::task::spawn_blocking(move || watch_outputs(&bootstrap, expected, serve, &stop))
        };
        let counts = if serve {
            println!("serving until Ctrl-C; publish more with kcat -b {bootstrap} -t articles -P\n");
            tokio::signal::ctrl_c().await.ok();
            stop_watch.store(true, Ordering::SeqCst);
            counts.await??
        } else {
            counts.await??
        };
        let elapsed = started.elapsed();
        service.shutdown();
        let summary = service.wait().await?;

        println!("\n── summary ──────────────────────────────────────────────");
        println!("articles published     {expected}");
        println!("enriched               {}", counts.enriched);
        println!("entity-stance records  {}", counts.stances);
        println!("dead-lettered          {} ({})", counts.dlq, counts.dlq_reasons.join(", "));
        println!("consumed by service    {} (all offsets committed: {})", summary.consumed, summary.uncommitted_at_exit == 0);
        println!(
            "elapsed                {:.2} s from first publish to last output, {:.1} articles/s (includes the consumer group join)",
            elapsed.as_secs_f64(),
            (counts.enriched + counts.dlq) as f64 / elapsed.as_secs_f64()
        );
        println!("metrics were served at {metrics_url}");
        if counts.enriched + counts.dlq < expected {
            bail!("only {} of {expected} articles came out before the deadline", counts.enriched + counts.dlq);
        }
        Ok(ExitCode::SUCCESS)
    })
}

#[derive(Debug, Default)]
struct OutputCounts {
    enriched: usize,
    stances: usize,
    dlq: usize,
    dlq_reasons: Vec<String>,
}

/// Reads the output topics from the beginning and prints each event as it arrives, until `expected` inputs are
/// accounted for (or, with `serve`, until stopped).
fn watch_outputs(
    bootstrap: &str,
    expected: usize,
    serve: bool,
    stop: &AtomicBool,
) -> Result<OutputCounts> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", "stancewatch-demo-watcher")
        .set("enable.auto.commit", "false")
        .create()?;
    let mut tpl = TopicPartitionList::new();
    for (topic, partitions) in &DEMO_TOPICS[1..] {
        for p in 0..*partitions {
            tpl.add_partition_offset(topic, p, Offset::Beginning)?;
        }
    }
    consumer.assign(&tpl)?;
    let mut counts = OutputCounts::default();
    let deadline = Instant::now() + Duration::from_secs(120);
    while (serve || counts.enriched + counts.dlq < expected) && !stop.load(Ordering::SeqCst) {
        if !serve && Instant::now() > deadline {
            error!("timed out waiting for outputs");
            break;
        }
        let Some(msg) = consumer.poll(Duration::from_millis(200)) else {
            continue;
        };
        print_event(&msg?, &mut counts)?;
    }
    // Entity-stance records of the last article may trail its enriched record.
    let settle = Instant::now() + Duration::from_millis(500);
    while Instant::now() < settle {
        if let Some(msg) = consumer.poll(Duration::from_millis(100)) {
            print_event(&msg?, &mut counts)?;
        }
    }
    Ok(counts)
}

/// Prints one output record as a line a person can read, and counts it.
fn print_event(
    msg: &rdkafka::message::BorrowedMessage<'_>,
    counts: &mut OutputCounts,
) -> Result<()> {
    let payload = msg.payload().unwrap_or_default();
    match msg.topic() {
        "articles.enriched" => {
            let e: EnrichedArticle = serde_json::from_slice(payload)?;
            counts.enriched += 1;
            let title: String = e.title.as_deref().unwrap_or("").chars().take(60).collect();
            println!(
                "enriched  {}  [{}] \"{}\"  {} entities",
                e.id,
                e.language,
                title,
                e.entities.len()
            );
        }
        "entity-stances" => {
            let s: EntityStanceRecord = serde_json::from_slice(payload)?;
            counts.stances += 1;
            println!(
                "  stance  {} → {} ({}, {}): {} {:.2}",
                s.article_id,
                s.name,
                s.entity_type.as_str(),
                s.entity_id,
                s.label.as_str(),
                s.score
            );
        }
        _ => {
            use rdkafka::message::Headers;
            let reason = msg
                .headers()
                .and_then(|h| {
                    h.iter()
                        .find(|h| h.key == HEADER_ERROR_CLASS)
                        .and_then(|h| h.value)
                })
                .map(|v| String::from_utf8_lossy(v).into_owned())
                .unwrap_or_default();
            counts.dlq += 1;
            let key = match msg.key() {
                Some(k) => String::from_utf8_lossy(k).into_owned(),
                None => format!(
                    "(no key, {}/{}@{})",
                    msg.topic(),
                    msg.partition(),
                    msg.offset()
                ),
            };
            println!("dlq       {key}: {reason}");
            counts.dlq_reasons.push(format!("{key}: {reason}"));
        }
    }
    Ok(())
}

fn read_file(path: &Path) -> Result<String> {
    std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))
}

fn load_model(path: Option<&Path>) -> Result<stance::Model> {
    match path {
        None => Ok(stance::embedded_model()),
        Some(p) => {
            let bytes = std::fs::read(p).with_context(|| format!("reading {}", p.display()))?;
            stance::Model::from_bytes(&bytes).with_context(|| format!("loading {}", p.display()))
        }
    }
}

fn train(what: TrainWhat) -> Result<ExitCode> {
    match what {
        TrainWhat::Ner {
            train,
            dev,
            out,
            epochs,
            bits,
            folds,
        } => train_ner(&train, &dev, &out, epochs, bits, folds),
        stance @ TrainWhat::Stance { .. } => train_stance(stance),
    }
}

fn train_stance(what: TrainWhat) -> Result<ExitCode> {
    let TrainWhat::Stance {
        train,
        dev,
        out,
        epochs,
        bits,
        l2,
        learning_rate,
        class_weight_power,
        no_average,
        cross_validate,
        silver,
        silver_weight,
        silver_min_confidence,
        soft_mix,
        dense_dim,
        hidden,
        dense_learning_rate,
        dense_l2,
        dense_average_last,
        ensemble,
        accurate,
        base_dir,
        tuned_layers,
        batch,
        head_learning_rate,
        seed,
        mark_target,
    } = what
    else {
        unreachable!("train() routes only the stance command here")
    };
    if accurate {
        #[cfg(feature = "accurate")]
        {
            let mut cfg = stancewatch::nlp::accurate::train::TrainConfig::default();
            cfg.epochs = epochs.unwrap_or(cfg.epochs);
            cfg.lr = learning_rate.map_or(cfg.lr, f64::from);
            cfg.head_lr = head_learning_rate.unwrap_or(cfg.head_lr);
            cfg.class_weight_power = class_weight_power.unwrap_or(cfg.class_weight_power);
            cfg.tuned_layers = tuned_layers.unwrap_or(cfg.tuned_layers);
            cfg.batch = batch.unwrap_or(cfg.batch);
            cfg.seed = seed.unwrap_or(cfg.seed);
            cfg.mark_target = mark_target;
            let out = out.unwrap_or_else(|| stancewatch::nlp::accurate::ADAPTER_PATH.into());
            return train_accurate(&train, &dev, &out, &base_dir, &cfg);
        }
        #[cfg(not(feature = "accurate"))]
        {
            let _ = (
                base_dir,
                tuned_layers,
                batch,
                head_learning_rate,
                seed,
                mark_target,
            );
            bail!("this build has no accurate mode (rebuild with the `accurate` feature)");
        }
    }
    let out = out.unwrap_or_else(|| "models/stance.bin".into());
    let mut cfg = stance::train::TrainConfig::default();
    cfg.epochs = epochs.unwrap_or(cfg.epochs);
    cfg.bits = bits.unwrap_or(cfg.bits);
    cfg.l2 = l2.unwrap_or(cfg.l2);
    cfg.learning_rate = learning_rate.unwrap_or(cfg.learning_rate);
    cfg.class_weight_power = class_weight_power.unwrap_or(cfg.class_weight_power);
    cfg.average = !no_average;
    cfg.seed = seed.unwrap_or(cfg.seed);
    cfg.hidden = if dense_dim > 0 { hidden } else { 0 };
    cfg.dense_learning_rate = dense_learning_rate.unwrap_or(cfg.dense_learning_rate);
    cfg.dense_l2 = dense_l2.unwrap_or(cfg.dense_l2);
    cfg.dense_average_last = dense_average_last.unwrap_or(cfg.dense_average_last);
    cfg.ensemble = ensemble;
    if cfg.hidden * ensemble.max(1) > stance::dense::MAX_HIDDEN {
        bail!(
            "--hidden x --ensemble must be at most {}",
            stance::dense::MAX_HIDDEN
        );
    }
    let lexicon = Lexicon::embedded();
    let sentences = stance::data::parse_newsmtsc(&read_file(&train)?)
        .with_context(|| format!("parsing {}", train.display()))?;
    let mut silver_sentences = Vec::new();
    for file in &silver {
        let s = stance::data::parse_newsmtsc(&read_file(file)?)
            .with_context(|| format!("parsing {}", file.display()))?;
        silver_sentences.push((file.clone(), s));
    }
    let vectors = if dense_dim > 0 {
        let all = sentences
            .iter()
            .chain(silver_sentences.iter().flat_map(|(_, s)| s.iter()));
        Some(dense_vectors(all, &base_dir, dense_dim)?)
    } else {
        None
    };
    let vectors = vectors.as_ref();
    let rows = vectors.map(stance::dense::DenseRows::Vectors);
    let gold_options = stance::train::TeacherOptions {
        weight: 1.0,
        min_confidence: 0.0,
        soft_mix,
    };
    let mut examples = stance::train::with_teacher(
        stance::train::examples(&lexicon, &sentences, cfg.bits, rows),
        &sentences,
        &gold_options,
    );
    if let Some(k) = cross_validate {
        let f1 = stance::train::cross_validate(&examples, &cfg, vectors, k.max(2));
        println!("{k}-fold cross-validated F1m on the training file: {f1:.4}");
    }
    let silver_options = stance::train::TeacherOptions {
        weight: silver_weight,
        min_confidence: silver_min_confidence,
        soft_mix,
    };
    let mut sentence_count = sentences.len();
    for (file, s) in &silver_sentences {
        let mut more = stance::train::with_teacher(
            stance::train::examples(&lexicon, s, cfg.bits, rows),
            s,
            &silver_options,
        );
        // Sentence indices stay distinct from the gold file's.
        for e in &mut more {
            e.sentence += sentence_count;
        }
        sentence_count += s.len();
        eprintln!(
            "silver {}: {} targets of {} sentences ({})",
            file.display(),
            more.len(),
            s.len(),
            serde_json::to_string(&silver_options)?
        );
        examples.extend(more);
    }
    let mut dev_sentences = Vec::new();
    for d in &dev {
        let s = stance::data::parse_newsmtsc(&read_file(d)?)
            .with_context(|| format!("parsing {}", d.display()))?;
        dev_sentences.push((d.clone(), s));
    }
    eprintln!(
        "training on {} targets of {} sentences; {}",
        examples.len(),
        sentence_count,
        serde_json::to_string(&cfg)?
    );
    let bar = if std::io::stderr().is_terminal() {
        indicatif::ProgressBar::new(cfg.epochs as u64)
    } else {
        indicatif::ProgressBar::hidden()
    };
    let model = stance::train::train(&examples, &cfg, vectors, |epoch, loss| {
        bar.set_position(epoch as u64);
        bar.set_message(format!("loss {loss:.4}"));
    });
    bar.finish_and_clear();
    let dev_examples = |m: &stance::Model| -> Vec<stance::train::Example> {
        dev_sentences
            .iter()
            .flat_map(|(_, s)| stance::train::examples(&lexicon, s, cfg.bits, m.vectors()))
            .collect()
    };
    // The run-time form (the dense part's word vectors projected through the first layer, 8-bit), which is
    // what is saved; the offsets are tuned on its readings.
    let mut model = match &model.dense {
        Some(stance::dense::DensePart::Direct(_)) => {
            let mut direct = model;
            let pooled = dev_examples(&direct);
            direct.offsets = stance::train::tune_offsets(&direct, &pooled);
            let before = stance::train::predict_all(&direct, &pooled);
            let mut projected = direct.projected();
            let after = stance::train::predict_all(&projected, &dev_examples(&projected));
            let same = before
                .iter()
                .zip(&after)
                .filter(|(a, b)| a.1 == b.1)
                .count();
            eprintln!(
                "dense part as trained: pooled dev F1m {:.4}; projected, same offsets: {:.4}, {same} of {} \
                 targets read alike",
                stance::train::scores(&before).f1m,
                stance::train::scores(&after).f1m,
                after.len()
            );
            projected.offsets = [0.0; 3];
            projected
        }
        _ => model,
    };
    let pooled = dev_examples(&model);
    model.offsets = stance::train::tune_offsets(&model, &pooled);
    eprintln!(
        "class offsets (against, neutral, favor): {:?}",
        model.offsets
    );
    let bytes = model.to_bytes();
    // Figures of the model as saved, as `eval stance` computes them.
    let saved = stance::Model::from_bytes(&bytes)?;
    let mut devs_saved = Vec::new();
    for (d, s) in &dev_sentences {
        devs_saved.push((
            d.clone(),
            stance::train::examples(&lexicon, s, cfg.bits, saved.vectors()),
        ));
    }
    for (path, ex) in &devs_saved {
        let s = stance::train::scores(&stance::train::predict_all(&saved, ex));
        println!(
            "{}: F1m {:.4} accuracy {:.4} (n = {})",
            path.display(),
            s.f1m,
            s.accuracy,
            s.n
        );
    }
    if let Some(dir) = out.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::write(&out, &bytes).with_context(|| format!("writing {}", out.display()))?;
    println!("wrote {} ({} bytes)", out.display(), bytes.len());
    Ok(ExitCode::SUCCESS)
}

/// The dense part's word vectors for the word forms of `sentences` (counted, for the frequency weighting)
/// and MiniLM's whole-word pieces, from the base weights in `base_dir`.
fn dense_vectors<'a>(
    sentences: impl Iterator<Item = &'a stance::data::MtscSentence>,
    base_dir: &Path,
    dim: usize,
) -> Result<stance::dense::WordVectors> {
    #[cfg(feature = "accurate")]
    {
        let mut counts: std::collections::BTreeMap<String, u64> = Default::default();
        for s in sentences {
            let view = stancewatch::nlp::text::TextView::new(&s.text);
            for t in view.tokens().iter().filter(|t| t.is_word()) {
                if !t.lower.bytes().any(|b| b.is_ascii_digit()) {
                    *counts.entry(t.lower.clone()).or_default() += 1;
                }
            }
        }
        let words: Vec<(String, u64)> = counts.into_iter().collect();
        let started = Instant::now();
        let v = stance::dense::build::from_minilm(base_dir, &words, dim)?;
        eprintln!(
            "word vectors: {} words x {dim} from {} in {:.1} s",
            v.len(),
            base_dir.display(),
            started.elapsed().as_secs_f64()
        );
        Ok(v)
    }
    #[cfg(not(feature = "accurate"))]
    {
        let _ = (sentences, base_dir, dim);
        bail!("deriving word vectors needs the `accurate` feature (the base weights' reader)")
    }
}

/// Fine-tunes the accurate-mode transformer and writes its adapter.
#[cfg(feature = "accurate")]
fn train_accurate(
    train: &Path,
    devs: &[PathBuf],
    out: &Path,
    base_dir: &Path,
    cfg: &stancewatch::nlp::accurate::train::TrainConfig,
) -> Result<ExitCode> {
    use stancewatch::nlp::accurate::train::{self, Progress};
    let started = Instant::now();
    let sentences = stance::data::parse_newsmtsc(&read_file(train)?)
        .with_context(|| format!("parsing {}", train.display()))?;
    let mut dev_sets = Vec::new();
    for d in devs {
        dev_sets.push(
            stance::data::parse_newsmtsc(&read_file(d)?)
                .with_context(|| format!("parsing {}", d.display()))?,
        );
    }
    eprintln!(
        "fine-tuning on {} sentences of {}; {}",
        sentences.len(),
        train.display(),
        serde_json::to_string(cfg)?
    );
    let terminal = std::io::stderr().is_terminal();
    let bar = if terminal {
        indicatif::ProgressBar::new(0)
    } else {
        indicatif::ProgressBar::hidden()
    };
    let mut progress = |p: Progress| match p {
        Progress::Caching { done, total } => {
            bar.set_length(total as u64);
            bar.set_position(done as u64);
            bar.set_message("caching the frozen layers");
            if !terminal && (done == total || done % 1024 < 64) {
                eprintln!(
                    "[{:>5.0} s] cached {done}/{total} rows",
                    started.elapsed().as_secs_f64()
                );
            }
        }
        Progress::Step {
            epoch,
            step,
            steps,
            loss,
        } => {
            bar.set_length(steps as u64);
            bar.set_position(step as u64);
            bar.set_message(format!("epoch {epoch} loss {loss:.4}"));
            if !terminal && step % 25 == 0 {
                eprintln!(
                    "[{:>5.0} s] epoch {epoch} step {step}/{steps} loss {loss:.4}",
                    started.elapsed().as_secs_f64()
                );
            }
        }
        Progress::Epoch { epoch, dev_f1m } => {
            bar.suspend(|| {
                eprintln!(
                    "[{:>5.0} s] epoch {epoch}: dev F1m {}",
                    started.elapsed().as_secs_f64(),
                    devs.iter()
                        .zip(&dev_f1m)
                        .map(|(d, f)| format!("{} {f:.4}", d.display()))
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            });
        }
    };
    let figures = train::train(base_dir, &sentences, &dev_sets, cfg, out, &mut progress)?;
    bar.finish_and_clear();
    for (d, s) in devs.iter().zip(&figures) {
        println!(
            "{}: F1m {:.4} accuracy {:.4} (n = {})",
            d.display(),
            s.f1m,
            s.accuracy,
            s.n
        );
    }
    let size = std::fs::metadata(out).map(|m| m.len()).unwrap_or(0);
    println!(
        "wrote {} ({size} bytes) in {:.0} s",
        out.display(),
        started.elapsed().as_secs_f64()
    );
    Ok(ExitCode::SUCCESS)
}

/// Prints `eval stance`'s scores over (gold, predicted) pairs, and with `json` the same as one JSON object
/// (with `mode` when one is named).
fn report_stance_eval(
    file: &Path,
    mode: Option<&str>,
    pairs: &[(StanceLabel, StanceLabel)],
    sentences: usize,
    elapsed: f64,
    json: bool,
) -> Result<ExitCode> {
    let scores = stance::train::scores(pairs);
    let per_second = sentences as f64 / elapsed.max(1e-9);
    let title = match mode {
        Some(m) => format!("{} ({m})", file.display()),
        None => file.display().to_string(),
    };
    print_scores(&title, &scores);
    println!("{sentences} sentences in {elapsed:.3} s: {per_second:.0} sentences/s");
    if json {
        let mut v = serde_json::to_value(&scores)?;
        if let Some(m) = mode {
            v["mode"] = m.into();
        }
        v["sentences"] = sentences.into();
        v["sentences_per_second"] = ((per_second * 10.0).round() / 10.0).into();
        println!("{}", serde_json::to_string(&v)?);
    }
    Ok(ExitCode::SUCCESS)
}

/// The accurate-mode model for an evaluation: the base weights with the embedded adapter or `adapter`.
#[cfg(feature = "accurate")]
fn load_accurate(
    base_dir: &Path,
    adapter: Option<&Path>,
) -> Result<stancewatch::nlp::accurate::AccurateModel> {
    use stancewatch::nlp::accurate;
    let bytes = match adapter {
        Some(p) => std::fs::read(p).with_context(|| format!("reading {}", p.display()))?,
        None => accurate::EMBEDDED_ADAPTER.to_vec(),
    };
    Ok(accurate::AccurateModel::load(
        base_dir,
        &bytes,
        accurate::model::DEFAULT_MAX_TOKENS,
    )?)
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

/// A bar over the teacher's labelling, drawn only on a terminal.
#[cfg(feature = "accurate")]
fn sentences_bar(total: usize) -> indicatif::ProgressBar {
    if !std::io::stderr().is_terminal() {
        return indicatif::ProgressBar::hidden();
    }
    let bar = indicatif::ProgressBar::new(total as u64);
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "labelling [{bar:40}] {pos}/{len} sentences ({eta} left)",
        )
        .expect("valid template")
        .progress_chars("=> "),
    );
    bar
}

fn distill(what: DistillWhat) -> Result<ExitCode> {
    let DistillWhat::Stance {
        conll,
        newsmtsc,
        others,
        out,
        types,
        min_tokens,
        base_dir,
        model,
    } = what;
    #[cfg(feature = "accurate")]
    {
        use stancewatch::nlp::ner::{conll as conll_file, NerType};
        use stancewatch::nlp::stance::distill;
        let teacher = load_accurate(&base_dir, model.as_deref())?;
        let started = Instant::now();
        let mut lines = Vec::new();
        let mut targets = 0usize;
        let mut counts = [0usize; 3];
        const CHUNK: usize = 512;
        let types = types
            .iter()
            .map(|t| {
                NerType::from_conll(t.trim())
                    .with_context(|| format!("--types: {t:?} is not PER, ORG, LOC or MISC"))
            })
            .collect::<Result<Vec<_>>>()?;
        let mut candidates = Vec::new();
        if let Some(file) = newsmtsc.as_ref().filter(|_| others) {
            candidates = other_entity_candidates(file, &types)?;
        }
        if let Some(conll) = conll {
            let text = read_file(&conll)?;
            let docs =
                conll_file::parse(&text).with_context(|| format!("parsing {}", conll.display()))?;
            candidates =
                distill::conll_candidates(&docs, &distill::CandidateFilter { types, min_tokens });
        }
        if !candidates.is_empty() {
            eprintln!(
                "{} sentences with {} targets to label",
                candidates.len(),
                candidates.iter().map(|c| c.targets.len()).sum::<usize>()
            );
            let bar = sentences_bar(candidates.len());
            for chunk in candidates.chunks(CHUNK) {
                let inputs: Vec<_> = chunk
                    .iter()
                    .map(|c| stancewatch::nlp::accurate::SentenceTargets {
                        text: c.text.clone(),
                        targets: c.targets.iter().map(|t| vec![(t.from, t.to)]).collect(),
                    })
                    .collect();
                let probs = teacher.probabilities(&inputs, 64)?;
                for (c, p) in chunk.iter().zip(&probs) {
                    for q in p.iter().flatten() {
                        targets += 1;
                        counts[(distill::polarity_of(q) / 2.0) as usize - 1] += 1;
                    }
                    lines.extend(distill::silver_line(c, p));
                }
                bar.inc(chunk.len() as u64);
            }
            bar.finish_and_clear();
        } else if let Some(file) = newsmtsc.filter(|_| !others) {
            let text = read_file(&file)?;
            let raw: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
            let sentences = stance::data::parse_newsmtsc(&text)
                .with_context(|| format!("parsing {}", file.display()))?;
            let (inputs, _) = stancewatch::nlp::accurate::train::mtsc_targets(&sentences);
            let bar = sentences_bar(inputs.len());
            for (chunk, raw) in inputs.chunks(CHUNK).zip(raw.chunks(CHUNK)) {
                let probs = teacher.probabilities(chunk, 64)?;
                for (line, p) in raw.iter().zip(&probs) {
                    let mut v: serde_json::Value = serde_json::from_str(line)?;
                    if let Some(ts) = v["targets"].as_array_mut() {
                        for (t, q) in ts.iter_mut().zip(p) {
                            if let Some(q) = q {
                                targets += 1;
                                counts[(distill::polarity_of(q) / 2.0) as usize - 1] += 1;
                                t["teacher"] = serde_json::to_value(
                                    q.map(|x| (x * 10_000.0).round() / 10_000.0),
                                )?;
                            }
                        }
                    }
                    lines.push(serde_json::to_string(&v)?);
                }
                bar.inc(chunk.len() as u64);
            }
            bar.finish_and_clear();
        }
        if let Some(dir) = out.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)?;
        }
        let mut body = lines.join("\n");
        body.push('\n');
        std::fs::write(&out, body).with_context(|| format!("writing {}", out.display()))?;
        println!(
            "wrote {} ({} sentences, {targets} targets: {} against, {} neutral, {} favor) in {:.0} s",
            out.display(),
            lines.len(),
            counts[0],
            counts[1],
            counts[2],
            started.elapsed().as_secs_f64()
        );
        Ok(ExitCode::SUCCESS)
    }
    #[cfg(not(feature = "accurate"))]
    {
        let _ = (
            conll, newsmtsc, others, out, types, min_tokens, base_dir, model,
        );
        bail!("this build has no accurate mode (rebuild with the `accurate` feature)")
    }
}

/// The entities the pipeline's recogniser finds in each sentence of a NewsMTSC file, of `types`, that do not
/// overlap the sentence's annotated targets: further targets in the same kind of text, for the teacher to label.
/// An entity named twice in a sentence is one target, at its first mention.
#[cfg(feature = "accurate")]
fn other_entity_candidates(
    file: &Path,
    types: &[stancewatch::nlp::ner::NerType],
) -> Result<Vec<stance::distill::Candidate>> {
    use stancewatch::nlp::kb::KnowledgeBase;
    use stancewatch::nlp::ner::{self, NerType};
    use stancewatch::nlp::{entities, text::TextView, EntityType};
    let sentences = stance::data::parse_newsmtsc(&read_file(file)?)
        .with_context(|| format!("parsing {}", file.display()))?;
    let kb = KnowledgeBase::embedded();
    let recogniser = entities::Recogniser::new(&kb, ner::Tagger::embedded(&kb)?);
    let mut out = Vec::new();
    for s in &sentences {
        let view = TextView::new(&s.text);
        let mut targets = Vec::new();
        for e in entities::find(&kb, &recogniser, &view, None) {
            let ty = match e.entity_type {
                EntityType::Person => NerType::Per,
                EntityType::Org => NerType::Org,
                EntityType::Location => NerType::Loc,
                EntityType::Group | EntityType::Misc => NerType::Misc,
            };
            if !types.contains(&ty) {
                continue;
            }
            let annotated = |a: usize, b: usize| {
                s.targets.iter().any(|t| {
                    std::iter::once((t.start, t.end))
                        .chain(t.further.iter().copied())
                        .any(|(x, y)| a < y && x < b)
                })
            };
            if e.mentions.iter().any(|m| annotated(m.start, m.end)) {
                continue;
            }
            if let Some(m) = e.mentions.first() {
                targets.push(stance::distill::CandidateTarget {
                    from: m.start,
                    to: m.end,
                    mention: m.text.clone(),
                    ty,
                });
            }
        }
        if !targets.is_empty() {
            targets.sort_by_key(|t| t.from);
            out.push(stance::distill::Candidate {
                text: s.text.clone(),
                targets,
            });
        }
    }
    Ok(out)
}

fn eval(what: EvalWhat) -> Result<ExitCode> {
    match what {
        EvalWhat::Ner { conll, model, json } => eval_ner(&conll, model.as_deref(), json),
        EvalWhat::Stance {
            newsmtsc,
            json,
            model,
            mode,
        } if mode.mode == Mode::Accurate => {
            #[cfg(feature = "accurate")]
            {
                let accurate = load_accurate(&mode.base_dir, model.as_deref())?;
                let sentences = stance::data::parse_newsmtsc(&read_file(&newsmtsc)?)
                    .with_context(|| format!("parsing {}", newsmtsc.display()))?;
                let started = Instant::now();
                let pairs =
                    stancewatch::nlp::accurate::train::predict_mtsc(&accurate, &sentences, 64)?;
                report_stance_eval(
                    &newsmtsc,
                    Some("accurate"),
                    &pairs,
                    sentences.len(),
                    started.elapsed().as_secs_f64(),
                    json,
                )
            }
            #[cfg(not(feature = "accurate"))]
            {
                let _ = (newsmtsc, json, model);
                bail!("this build has no accurate mode (rebuild with the `accurate` feature)")
            }
        }
        EvalWhat::Stance {
            newsmtsc,
            json,
            model,
            mode: _,
        } => {
            let model = load_model(model.as_deref())?;
            let lexicon = Lexicon::embedded();
            let sentences = stance::data::parse_newsmtsc(&read_file(&newsmtsc)?)
                .with_context(|| format!("parsing {}", newsmtsc.display()))?;
            let started = Instant::now();
            let examples =
                stance::train::examples(&lexicon, &sentences, model.bits, model.vectors());
            let pairs = stance::train::predict_all(&model, &examples);
            report_stance_eval(
                &newsmtsc,
                None,
                &pairs,
                sentences.len(),
                started.elapsed().as_secs_f64(),
                json,
            )
        }
        EvalWhat::Persent {
            csv,
            json,
            model,
            tune,
            mode,
        } => {
            let pipeline = match mode.mode {
                Mode::Fast => Pipeline::with_stance_model(load_model(model.as_deref())?),
                #[cfg(feature = "accurate")]
                Mode::Accurate => {
                    use stancewatch::nlp::accurate::pipeline::{Accurate, AccurateOptions};
                    let mut options = AccurateOptions::default();
                    options.max_sentences = mode.max_sentences.unwrap_or(options.max_sentences);
                    let accurate = match model.as_deref() {
                        Some(p) => Accurate::load_with_adapter(
                            &mode.base_dir,
                            &std::fs::read(p)
                                .with_context(|| format!("reading {}", p.display()))?,
                            options,
                        )?,
                        None => Accurate::load(&mode.base_dir, options)?,
                    };
                    Pipeline::new().with_accurate(accurate)
                }
                #[cfg(not(feature = "accurate"))]
                Mode::Accurate => {
                    bail!("this build has no accurate mode (rebuild with the `accurate` feature)")
                }
            };
            let articles = stance::data::parse_persent(&read_file(&csv)?)
                .with_context(|| format!("parsing {}", csv.display()))?;
            let started = Instant::now();
            // Articles are analysed by `workers` threads at once, as the service does; in accurate mode that
            // is what lets the transformer batch across articles.
            let workers = mode.workers.unwrap_or(match mode.mode {
                Mode::Fast => 1,
                Mode::Accurate => 8,
            });
            let analysed = analyse_all(&pipeline, &articles, workers.max(1));
            let mut pairs = Vec::new();
            let mut found = 0usize;
            let mut details = Vec::new();
            let mut failed = 0usize;
            for (a, analysed) in articles.iter().zip(analysed) {
                let Some((analysis, mentions)) = analysed else {
                    failed += 1;
                    pairs.push((a.label, wrong_for(a.label)));
                    continue;
                };
                let target = stance::data::find_target(&analysis.entities, &a.target);
                found += usize::from(target.is_some());
                if tune && target.is_none() {
                    eprintln!("target not found: {:?}", a.target);
                }
                // A target not found is a wrong answer, whatever the gold label.
                let predicted = target.map(|t| analysis.entities[t].stance.label);
                pairs.push((a.label, predicted.unwrap_or(wrong_for(a.label))));
                if tune {
                    let mine: Vec<stance::MentionStance> = target
                        .map(|t| mentions.into_iter().filter(|m| m.entity == t).collect())
                        .unwrap_or_default();
                    details.push((a.label, mine));
                }
            }
            let elapsed = started.elapsed().as_secs_f64();
            let scores = stance::train::scores(&pairs);
            let coverage = found as f64 / articles.len().max(1) as f64;
            print_scores(&format!("{}", csv.display()), &scores);
            if failed > 0 {
                println!("{failed} article(s) failed in the pipeline and count as wrong");
            }
            println!(
                "target found in {found} of {} articles (coverage {coverage:.4}); {:.1} articles/s",
                articles.len(),
                articles.len() as f64 / elapsed.max(1e-9)
            );
            if tune {
                tune_aggregation(&details);
            }
            if json {
                let mut v = serde_json::to_value(&scores)?;
                v["coverage"] = ((coverage * 10_000.0).round() / 10_000.0).into();
                v["articles"] = articles.len().into();
                v["failed"] = failed.into();
                v["articles_per_second"] =
                    ((articles.len() as f64 / elapsed.max(1e-9) * 10.0).round() / 10.0).into();
                v["mode"] = match mode.mode {
                    Mode::Fast => "fast",
                    Mode::Accurate => "accurate",
                }
                .into();
                println!("{}", serde_json::to_string(&v)?);
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// The detailed analyses of PerSenT articles, in order, from `workers` threads pulling the next article; None
/// for an article the pipeline panicked on (reported on stderr).
fn analyse_all(
    pipeline: &Pipeline,
    articles: &[stance::data::PersentArticle],
    workers: usize,
) -> Vec<Option<(stancewatch::nlp::Analysis, Vec<stance::MentionStance>)>> {
    let next = std::sync::atomic::AtomicUsize::new(0);
    let mut results: Vec<Option<_>> = (0..articles.len()).map(|_| None).collect();
    let done = std::sync::Mutex::new(&mut results);
    std::thread::scope(|scope| {
        for _ in 0..workers {
            scope.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(a) = articles.get(i) else { break };
                let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    pipeline.analyze_detailed(&Document {
                        title: Some(a.title.as_str()).filter(|t| !t.trim().is_empty()),
                        body: &a.document,
                        declared_language: Some("en"),
                    })
                }));
                if r.is_err() {
                    // The panic message went to stderr already; say which article, and go on.
                    let _ = writeln!(
                        std::io::stderr(),
                        "article {} (target {:?}) failed in the pipeline; counted as wrong",
                        i + 1,
                        a.target
                    );
                }
                done.lock().unwrap_or_else(|p| p.into_inner())[i] = Some(r.ok());
            });
        }
    });
    results
        .into_iter()
        .map(|r| r.expect("every article analysed"))
        .collect()
}

/// A label different from `gold`, for scoring an article whose target was not found as wrong.
fn wrong_for(gold: StanceLabel) -> StanceLabel {
    if gold == StanceLabel::Neutral {
        StanceLabel::Favor
    } else {
        StanceLabel::Neutral
    }
}

fn print_scores(what: &str, s: &stance::train::Scores) {
    println!(
        "{what}: F1m {:.4} accuracy {:.4} (n = {})",
        s.f1m, s.accuracy, s.n
    );
    for (label, c) in &s.per_class {
        println!(
            "  {label:<8} P {:.3} R {:.3} F1 {:.3} (support {})",
            c.precision, c.recall, c.f1, c.support
        );
    }
    println!(
        "  confusion (rows gold, columns predicted; against, neutral, favor): {:?}",
        s.confusion
    );
}

/// Grid search of the aggregation parameters for macro-F1, reported with 5-fold cross-validated figures so
/// that the gain from tuning on the same file can be told apart from a real one.
fn tune_aggregation(details: &[(StanceLabel, Vec<stance::MentionStance>)]) {
    use stance::aggregate::{decide, mean_probs, Params};
    let grid = || {
        let mut out = Vec::new();
        for attributed_weight in [0.25f32, 0.5, 1.0] {
            for pronoun_weight in [0.0f32, 0.5, 1.0] {
                for title_weight in [1.0f32, 2.0, 4.0] {
                    for lead_weight in [1.0f32, 2.0] {
                        for f in [0.0f32, 0.05, 0.1, 0.15, 0.2, 0.3] {
                            for a in [-0.4f32, -0.3, -0.2, -0.15, -0.1, -0.05] {
                                out.push(Params {
                                    attributed_weight,
                                    pronoun_weight,
                                    title_weight,
                                    lead_weight,
                                    favor_threshold: f,
                                    against_threshold: a,
                                    ..Params::TUNED
                                });
                            }
                        }
                    }
                }
            }
        }
        out
    };
    let f1_of = |p: &Params, idx: &mut dyn Iterator<Item = usize>| {
        let pairs: Vec<(StanceLabel, StanceLabel)> = idx
            .map(|i| {
                let (gold, ms) = &details[i];
                let refs: Vec<&stance::MentionStance> = ms.iter().collect();
                let label = match mean_probs(p, &refs) {
                    Some(mean) => decide(p, mean).0,
                    None => wrong_for(*gold),
                };
                (*gold, label)
            })
            .collect();
        stance::train::scores(&pairs).f1m
    };
    let grid = grid();
    let n = details.len();
    let best = |train: &dyn Fn(usize) -> bool| -> Params {
        let mut best = (Params::TUNED, f64::NEG_INFINITY);
        for p in &grid {
            let f = f1_of(p, &mut (0..n).filter(|&i| train(i)));
            if f > best.1 {
                best = (*p, f);
            }
        }
        best.0
    };
    let mut cv_pairs_f1 = Vec::new();
    for fold in 0..5 {
        let p = best(&|i| i % 5 != fold);
        cv_pairs_f1.push(f1_of(&p, &mut (0..n).filter(|&i| i % 5 == fold)));
    }
    let p = best(&|_| true);
    println!(
        "thresholds tuned on all: F1m {:.4} with {p:?}; 5-fold cross-validated F1m {:.4} (folds {:?}); current {:.4}",
        f1_of(&p, &mut (0..n)),
        cv_pairs_f1.iter().sum::<f64>() / 5.0,
        cv_pairs_f1.iter().map(|x| (x * 1000.0).round() / 1000.0).collect::<Vec<_>>(),
        f1_of(&Params::TUNED, &mut (0..n)),
    );
    // Fast mode's thresholds alone, its other weights fixed: the best pairs, to choose among near-ties.
    let mut table = Vec::new();
    for f in [0.0f32, 0.01, 0.02, 0.03, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3] {
        for a in [-0.4f32, -0.3, -0.25, -0.2, -0.15, -0.1, -0.05] {
            let p = Params {
                favor_threshold: f,
                against_threshold: a,
                ..Params::FAST
            };
            table.push((f1_of(&p, &mut (0..n)), f, a));
        }
    }
    table.sort_by(|x, y| y.0.total_cmp(&x.0));
    let top: Vec<String> = table
        .iter()
        .take(20)
        .map(|(f1, f, a)| format!("favor > {f}, against < {a}: {f1:.4}"))
        .collect();
    println!(
        "fast weights, thresholds by F1m (current: favor > {}, against < {}: {:.4}):\n  {}",
        Params::FAST.favor_threshold,
        Params::FAST.against_threshold,
        f1_of(&Params::FAST, &mut (0..n)),
        top.join("\n  ")
    );

    // The fitted aggregator, over the summaries with the current weights; articles without the target
    // stay wrong in the figures.
    use stance::aggregate::{aggregator_probs, fit_aggregator, summary, SUMMARY};
    let xs: Vec<Option<[f32; SUMMARY]>> = details
        .iter()
        .map(|(_, ms)| summary(&Params::TUNED, &ms.iter().collect::<Vec<_>>()))
        .collect();
    let ys: Vec<usize> = details
        .iter()
        .map(|(g, _)| stance::train::class_of(*g))
        .collect();
    for l2 in [0.0f32, 0.01, 0.1] {
        let fit = |train: &dyn Fn(usize) -> bool| {
            let (x, y): (Vec<[f32; SUMMARY]>, Vec<usize>) = (0..n)
                .filter(|&i| train(i))
                .filter_map(|i| xs[i].map(|x| (x, ys[i])))
                .unzip();
            fit_aggregator(&x, &y, l2)
        };
        let pairs_of = |w: &[[f32; SUMMARY]; 3], idx: &mut dyn Iterator<Item = usize>| {
            idx.map(|i| {
                let gold = details[i].0;
                let pred = xs[i].map_or(wrong_for(gold), |x| {
                    stance::train::label_of(stance::model::argmax(&aggregator_probs(w, &x)))
                });
                (gold, pred)
            })
            .collect::<Vec<_>>()
        };
        let mut cv = Vec::new();
        for fold in 0..5 {
            let w = fit(&|i| i % 5 != fold);
            cv.extend(pairs_of(&w, &mut (0..n).filter(|&i| i % 5 == fold)));
        }
        let w = fit(&|_| true);
        let all = stance::train::scores(&pairs_of(&w, &mut (0..n)));
        println!(
            "aggregator l2 {l2}: F1m {:.4} on all, 5-fold cross-validated F1m {:.4}; weights {:?}",
            all.f1m,
            stance::train::scores(&cv).f1m,
            w.map(|r| r.map(|x| (x * 1000.0).round() / 1000.0))
        );
    }
}

/// `stancewatch bench`: fast mode over the full corpus with the thread counts asked for, and accurate mode
/// over a smaller corpus with the service's accurate-mode default of four workers per core (its workers mostly
/// wait for the shared transformer batches, and the batches only fill when several articles wait at once).
fn bench(
    options: stancewatch::bench::BenchOptions,
    json: bool,
    mode: BenchMode,
    accurate_articles: usize,
    base_dir: &Path,
    max_sentences: Option<usize>,
) -> Result<ExitCode> {
    use stancewatch::bench;
    if options.articles < 2 || options.threads.is_empty() || options.threads.contains(&0) {
        bail!("bench needs --articles 2 or more and --threads of 1 or more, e.g. --articles 600 --threads 1,2");
    }
    let mut reports = serde_json::Map::new();
    if mode != BenchMode::Accurate {
        let pipeline: Arc<dyn stancewatch::enriched::Analyze> = Arc::new(Pipeline::new());
        let report = bench_mode(pipeline, &options)?;
        print_bench("fast mode", &report);
        reports.insert("fast".into(), serde_json::to_value(&report)?);
    }
    if mode != BenchMode::Fast {
        match accurate_pipeline(base_dir, max_sentences) {
            Ok(pipeline) => {
                let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
                // Accurate mode runs at a twentieth of fast mode's rate: three rounds of its smaller corpus
                // already take a minute and a half.
                let accurate = bench::BenchOptions {
                    articles: accurate_articles.max(2),
                    threads: vec![4 * cores],
                    repeats: options.repeats.min(3),
                    ..options
                };
                let report = bench_mode(Arc::new(pipeline), &accurate)?;
                print_bench("accurate mode", &report);
                reports.insert("accurate".into(), serde_json::to_value(&report)?);
            }
            Err(e) if mode == BenchMode::Both => {
                println!("\naccurate mode: skipped ({e:#})");
            }
            Err(e) => return Err(e),
        }
    }
    if json {
        println!("{}", serde_json::Value::Object(reports));
    }
    Ok(ExitCode::SUCCESS)
}

/// The accurate-mode pipeline as the service would load it with `nlp.mode = "accurate"` and `base_dir`.
fn accurate_pipeline(base_dir: &Path, max_sentences: Option<usize>) -> Result<Pipeline> {
    let mut nlp = Config::defaults().nlp;
    nlp.mode = stancewatch::config::NlpMode::Accurate;
    nlp.accurate.base_dir = base_dir.to_path_buf();
    if let Some(m) = max_sentences {
        nlp.accurate.max_sentences = m;
    }
    Ok(stancewatch::enriched::load_pipeline_for(&nlp)?)
}

fn bench_mode(
    pipeline: Arc<dyn stancewatch::enriched::Analyze>,
    options: &stancewatch::bench::BenchOptions,
) -> Result<stancewatch::bench::BenchReport> {
    let corpus = stancewatch::bench::corpus(EXAMPLE_ARTICLES, options.articles);
    let bars = PhaseBars::new(std::io::stderr().is_terminal());
    let report = runtime()?.block_on(stancewatch::bench::run(
        pipeline,
        &corpus,
        options,
        &|phase, done, total| bars.update(phase, done, total),
    ))?;
    bars.finish();
    Ok(report)
}

fn print_bench(title: &str, report: &stancewatch::bench::BenchReport) {
    println!("\n== {title} ==");
    println!(
        "corpus: {} articles, {:.0} words on average (30% briefs, 50% articles, 20% long reads)",
        report.corpus_articles, report.corpus_mean_words
    );
    println!(
        "cores available: {}\n",
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );
    println!(
        "{:<34} {:>12} {:>14} {:>16}",
        "NLP alone", "articles/s", "words/s", "articles/s/core"
    );
    for r in &report.nlp {
        println!(
            "{:<34} {:>12.1} {:>14.0} {:>16.1}",
            format!("  {} thread(s)", r.threads),
            r.articles_per_sec,
            r.words_per_sec,
            r.articles_per_sec_per_core
        );
    }
    println!(
        "\n{:<34} {:>12} {:>14} {:>16} {:>12}",
        "end to end (mock cluster)", "articles/s", "ratio to NLP", "CPU ratio", "peak RSS MB"
    );
    let or_na = |x: Option<f64>, digits: usize| x.map_or("n/a".into(), |v| format!("{v:.digits$}"));
    for r in &report.end_to_end {
        println!(
            "{:<34} {:>12.1} {:>14.2} {:>16} {:>12}",
            format!("  {} worker(s)", r.workers),
            r.articles_per_sec,
            r.ratio_to_nlp,
            or_na(r.cpu_ratio_to_nlp, 2),
            or_na(r.peak_rss_mb, 0)
        );
    }
    if report
        .end_to_end
        .iter()
        .any(|r| r.ratio_per_round.len() > 1)
    {
        let rounds: Vec<String> = report
            .end_to_end
            .iter()
            .map(|r| {
                let each: Vec<String> = r
                    .ratio_per_round
                    .iter()
                    .map(|x| format!("{x:.2}"))
                    .collect();
                format!("{} worker(s) {}", r.workers, each.join(" "))
            })
            .collect();
        println!("ratio to NLP in each round: {}", rounds.join("; "));
    }
    if let Some(l) = &report.latency {
        println!(
            "\nlatency, publish to emit, {} worker(s) at {:.1} articles/s (half the maximum), {} articles:",
            l.workers, l.rate_per_sec, l.articles
        );
        println!(
            "  p50 {:.1} ms   p95 {:.1} ms   p99 {:.1} ms   max {:.1} ms   peak RSS {}",
            l.p50_ms,
            l.p95_ms,
            l.p99_ms,
            l.max_ms,
            l.peak_rss_mb.map_or("n/a".into(), |m| format!("{m:.0} MB"))
        );
    }
}

/// One progress bar per benchmark phase on a terminal; nothing when piped.
struct PhaseBars {
    terminal: bool,
    current: std::sync::Mutex<Option<(String, indicatif::ProgressBar)>>,
}

impl PhaseBars {
    fn new(terminal: bool) -> Self {
        Self {
            terminal,
            current: std::sync::Mutex::new(None),
        }
    }

    fn update(&self, phase: &str, done: u64, total: u64) {
        if !self.terminal {
            return;
        }
        let mut current = self.current.lock().unwrap_or_else(|p| p.into_inner());
        if current.as_ref().is_none_or(|(name, _)| name != phase) {
            if let Some((_, bar)) = current.take() {
                bar.finish_and_clear();
            }
            let bar = indicatif::ProgressBar::new(total);
            bar.set_style(
                indicatif::ProgressStyle::with_template(
                    "{msg:>34} [{bar:40}] {pos}/{len} articles",
                )
                .expect("valid template")
                .progress_chars("=> "),
            );
            bar.set_message(phase.to_string());
            *current = Some((phase.to_string(), bar));
        }
        if let Some((_, bar)) = current.as_ref() {
            bar.set_position(done);
        }
    }

    fn finish(&self) {
        if let Some((_, bar)) = self
            .current
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()
        {
            bar.finish_and_clear();
        }
    }
}
