//! `stancewatch process`: enrichment offline, articles as JSONL (or one JSON object) in, exactly the
//! `articles.enriched` records out, one per line, in input order.

use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result};
use stancewatch::analyze::{enrich, load_pipeline_for};
use stancewatch::article::{Article, Limits};
use stancewatch::config::{Config, NlpConfig, NlpMode};

use super::Mode;

#[derive(clap::Args)]
pub struct Args {
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
}

pub fn process(args: Args) -> Result<ExitCode> {
    let limits = Limits {
        max_body_bytes: args.max_article_bytes,
    };
    let mut nlp = Config::defaults().nlp;
    nlp.knowledge_base_files = args.knowledge_base_files;
    nlp.mode = match args.mode {
        Mode::Fast => NlpMode::Fast,
        Mode::Accurate => NlpMode::Accurate,
    };
    nlp.accurate.base_dir = args.base_dir;
    enrich_file(args.input.as_deref(), limits, &nlp)
}

/// Offline mode: one output line per input line, in order; bad lines are reported and skipped.
fn enrich_file(input: Option<&Path>, limits: Limits, nlp: &NlpConfig) -> Result<ExitCode> {
    let pipeline = load_pipeline_for(nlp)?;
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
