//! `stancewatch bench`: throughput of the NLP alone and of the whole service through an in-process mock Kafka
//! cluster, publish-to-emit latency at half the maximum rate, peak memory; the engine is [`engine`], this file
//! the command and its report (see BENCHMARKS.md for the method).

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{bail, Result};
use stancewatch::config::Config;
use stancewatch::nlp::Pipeline;

use super::{runtime, EXAMPLE_ARTICLES};

mod engine;

#[derive(clap::Args)]
pub struct Args {
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
}

/// `stancewatch bench`: fast mode, then accurate mode when asked (or `both` and its base weights exist).
pub fn bench(args: Args) -> Result<ExitCode> {
    let options = engine::BenchOptions {
        articles: args.articles,
        threads: args.threads,
        latency_seconds: args.latency_seconds,
        repeats: args.repeats,
        io_sched_batch: !args.no_io_sched_batch,
    };
    run_modes(
        options,
        args.json,
        args.mode,
        args.accurate_articles,
        &args.base_dir,
        args.max_sentences,
    )
}

/// Which stance modes `bench` measures.
#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum BenchMode {
    Fast,
    Accurate,
    Both,
}

/// `stancewatch bench`: fast mode over the full corpus with the thread counts asked for, and accurate mode
/// over a smaller corpus with the service's accurate-mode default of four workers per core (its workers mostly
/// wait for the shared transformer batches, and the batches only fill when several articles wait at once).
fn run_modes(
    options: engine::BenchOptions,
    json: bool,
    mode: BenchMode,
    accurate_articles: usize,
    base_dir: &Path,
    max_sentences: Option<usize>,
) -> Result<ExitCode> {
    if options.articles < 2 || options.threads.is_empty() || options.threads.contains(&0) {
        bail!("bench needs --articles 2 or more and --threads of 1 or more, e.g. --articles 600 --threads 1,2");
    }
    let mut reports = serde_json::Map::new();
    if mode != BenchMode::Accurate {
        let pipeline: Arc<dyn stancewatch::analyze::Analyze> = Arc::new(Pipeline::new());
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
                let accurate = engine::BenchOptions {
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
    Ok(stancewatch::analyze::load_pipeline_for(&nlp)?)
}

fn bench_mode(
    pipeline: Arc<dyn stancewatch::analyze::Analyze>,
    options: &engine::BenchOptions,
) -> Result<engine::BenchReport> {
    let corpus = engine::corpus(EXAMPLE_ARTICLES, options.articles);
    let bars = PhaseBars::new(std::io::stderr().is_terminal());
    let report = runtime()?.block_on(engine::run(
        pipeline,
        &corpus,
        options,
        &|phase, done, total| bars.update(phase, done, total),
    ))?;
    bars.finish();
    Ok(report)
}

fn print_bench(title: &str, report: &engine::BenchReport) {
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
