//! The `stancewatch` command line: the service (`run`), the offline mode (`process`) and a self-contained demo
//! against librdkafka's in-process mock cluster (`demo`).

use std::io::{BufRead, BufReader, Read, Write};
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
use stancewatch::enriched::{enrich, load_pipeline, EnrichedArticle, EntityStanceRecord};
use stancewatch::nlp::Pipeline;
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
    },
    /// Train a model (`train ner`: the entity recogniser, on CoNLL-2003 files).
    Train {
        #[command(subcommand)]
        what: TrainWhat,
    },
    /// Measure a model on labelled data (`eval ner`: entity-level P/R/F1 and speed on a CoNLL file).
    Eval {
        #[command(subcommand)]
        what: EvalWhat,
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
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Run { config } => run(config.as_deref(), cli.log_format),
        Command::Process {
            input,
            max_article_bytes,
            knowledge_base_files,
        } => {
            init_logging(cli.log_format.unwrap_or(LogFormat::Human), "warn");
            let limits = Limits {
                max_body_bytes: max_article_bytes,
            };
            process(input.as_deref(), limits, &knowledge_base_files)
        }
        Command::Train {
            what:
                TrainWhat::Ner {
                    train,
                    dev,
                    out,
                    epochs,
                    bits,
                    folds,
                },
        } => train_ner(&train, &dev, &out, epochs, bits, folds),
        Command::Eval {
            what: EvalWhat::Ner { conll, model, json },
        } => eval_ner(&conll, model.as_deref(), json),
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
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn init_logging(format: LogFormat, default_filter: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_filter));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
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
        pipeline = Pipeline::VERSION,
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
    let service = Arc::new(tokio::sync::Mutex::new(Some(service)));
    let finished = {
        let s = service.clone();
        async move {
            loop {
                if s.lock().await.as_ref().is_none_or(|s| s.is_finished()) {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    };
    tokio::select! {
        _ = term.recv() => info!("SIGTERM: draining in-flight articles, then exiting"),
        _ = int.recv() => info!("SIGINT: draining in-flight articles, then exiting (again to stop at once)"),
        _ = finished => {}
    }
    let running = service.lock().await.take().expect("taken once");
    running.shutdown();
    let wait = running.wait();
    tokio::pin!(wait);
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
    knowledge_base_files: &[PathBuf],
) -> Result<ExitCode> {
    let pipeline = load_pipeline(knowledge_base_files)?;
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
            enrich(&pipeline, article).map_err(|e| e.to_string())
        });
        match result {
            Ok(enriched) => {
                serde_json::to_writer(&mut out, &enriched)?;
                out.write_all(b"\n")?;
                ok += 1;
            }
            Err(reason) => {
                eprintln!("line {line_no}: {reason}");
                failed += 1;
            }
        }
    }
    out.flush()?;
    if failed > 0 {
        eprintln!("{ok} article(s) enriched, {failed} line(s) failed");
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
            payload: line.as_bytes().to_vec(),
            headers: vec![(
                "traceparent".into(),
                format!("00-{:032x}-{:016x}-01", i + 1, i + 1).into_bytes(),
            )],
        });
    }
    // Two broken inputs, to show that bad input is dead-lettered rather than dropped or fatal.
    articles.push(Publish {
        key: Some(b"broken-1".to_vec()),
        payload: b"{\"id\": \"broken-1\", \"body\": ".to_vec(),
        headers: vec![],
    });
    articles.push(Publish {
        key: Some(b"broken-2".to_vec()),
        payload: br#"{"id": "broken-2", "title": "No body"}"#.to_vec(),
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
            let key = msg
                .key()
                .map(|k| String::from_utf8_lossy(k).into_owned())
                .unwrap_or_default();
            println!("dlq       {key}: {reason}");
            counts.dlq_reasons.push(format!("{key}: {reason}"));
        }
    }
    Ok(())
}
