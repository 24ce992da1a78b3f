//! The commands, one file each, and what several of them share: logging, reading input files, loading a
//! stance model, the async runtime, progress bars.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use lab::article_train;
use stancewatch::config::LogFormat;
use stancewatch::nlp::lexicon::Lexicon;
use stancewatch::nlp::{stance, Pipeline};

pub mod bench;
pub mod demo;
pub mod distill;
pub mod eval;
pub mod process;
pub mod replay;
pub mod run;
pub mod train;

/// The articles the demo publishes and the bench's corpus is cut from, written for this project.
pub const EXAMPLE_ARTICLES: &str = include_str!("../../examples/articles.jsonl");

/// Logs to stderr, human-readable or JSON lines; `default_filter` unless RUST_LOG says otherwise.
pub fn init_logging(format: LogFormat, default_filter: &str) {
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

/// Which stance models an evaluation runs.
#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Mode {
    Fast,
    Accurate,
}

#[derive(clap::Args)]
pub struct ModeArgs {
    /// `fast` (linear models) or `accurate` (the fine-tuned transformer; needs scripts/fetch-minilm.sh).
    #[arg(long, value_enum, default_value = "fast")]
    pub mode: Mode,
    /// Accurate: the base weights.
    #[arg(long, default_value = "models/base/all-minilm-l6-v2")]
    pub base_dir: PathBuf,
    /// Accurate: transformer readings (forward passes) per article (0: all).
    #[arg(long)]
    pub max_sentences: Option<usize>,
    /// Articles analysed at once (eval persent; default 1 in fast mode, 8 in accurate mode).
    #[arg(long)]
    pub workers: Option<usize>,
}

impl ModeArgs {
    /// Articles analysed at once: `--workers`, else 1 in fast mode and 8 in accurate mode, where several
    /// articles at once let the transformer batch across them.
    pub fn workers(&self) -> usize {
        self.workers
            .unwrap_or(match self.mode {
                Mode::Fast => 1,
                Mode::Accurate => 8,
            })
            .max(1)
    }
}

pub fn read_file(path: &Path) -> Result<String> {
    std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))
}

pub fn load_model(path: Option<&Path>) -> Result<stance::Model> {
    match path {
        None => Ok(stance::embedded_model()),
        Some(p) => {
            let bytes = std::fs::read(p).with_context(|| format!("reading {}", p.display()))?;
            stance::Model::from_bytes(&bytes).with_context(|| format!("loading {}", p.display()))
        }
    }
}

/// The accurate-mode model for an evaluation: the base weights with the embedded adapter or `adapter`.
#[cfg(feature = "accurate")]
pub fn load_accurate(
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

pub fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")
}

/// A bar over the teacher's labelling, drawn only on a terminal.
#[cfg(feature = "accurate")]
pub fn sentences_bar(total: usize) -> indicatif::ProgressBar {
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

pub fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

pub fn read_conll(path: &Path) -> Result<String> {
    std::fs::read_to_string(path).with_context(|| {
        format!(
            "cannot read {}; give a CoNLL-2003 file such as ../shared/data/conll2003/eng.train",
            path.display()
        )
    })
}

/// The pipeline `eval persent` and `train article` run: fast mode, or accurate mode with its options; `model`
/// is a mention-stance model file (fast) or an adapter (accurate) instead of the embedded one.
pub fn persent_pipeline(mode: &ModeArgs, model: Option<&Path>) -> Result<Pipeline> {
    let model = model.map(Path::to_path_buf);
    Ok(match mode.mode {
        Mode::Fast => Pipeline::with_stance_model(load_model(model.as_deref())?),
        #[cfg(feature = "accurate")]
        Mode::Accurate => {
            use stancewatch::nlp::accurate::pipeline::{Accurate, AccurateOptions};
            let mut options = AccurateOptions::default();
            options.max_sentences = mode.max_sentences.unwrap_or(options.max_sentences);
            let accurate = match model.as_deref() {
                Some(p) => Accurate::load_with_adapter(
                    &mode.base_dir,
                    &std::fs::read(p).with_context(|| format!("reading {}", p.display()))?,
                    options,
                )?,
                None => Accurate::load(&mode.base_dir, options)?,
            };
            Pipeline::new().with_accurate(accurate)
        }
        #[cfg(not(feature = "accurate"))]
        Mode::Accurate => {
            anyhow::bail!("this build has no accurate mode (rebuild with the `accurate` feature)")
        }
    })
}

/// The article model cross-validated on PerSenT dev's committed folds with the default settings and the
/// hand-written training cases (`lab::article_train`).
pub fn article_cv(
    pipeline: &Pipeline,
    lexicon: &Lexicon,
    rows: &[Option<article_train::Row>],
    gold: &[usize],
) -> Result<article_train::CvReport> {
    let fold = article_train::parse_folds(article_train::PERSENT_DEV_FOLDS, rows.len())
        .map_err(|e| anyhow::anyhow!("the committed folds: {e} (they are PerSenT dev's)"))?;
    let settings = article_train::Settings::default();
    let cases = article_train::cases(
        pipeline,
        lexicon,
        article_train::CASES,
        settings.cases_weight,
    )
    .map_err(|e| anyhow::anyhow!("the committed cases: {e}"))?;
    let extra = article_train::training_rows(&cases);
    Ok(article_train::cross_validate(
        rows, gold, &fold, &extra, &settings,
    ))
}
