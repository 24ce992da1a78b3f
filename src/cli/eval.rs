//! `stancewatch eval`: the models' figures on annotated data. `eval ner` on CoNLL-2003 (conlleval's entity-level
//! exact match), `eval stance` on NewsMTSC (mention stance), `eval persent` on PerSenT (article stance through
//! the whole pipeline), `eval identity` on PerSenT or article JSON Lines (one entity, one id). The measuring is the `lab` crate's; this file reads the files and prints.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{Context, Result};
use clap::Subcommand;
use lab::evaluation::{analyse_all, wrong_for};
use lab::{article_train, conll, datasets, stance_train};
use stancewatch::nlp::lexicon::Lexicon;
use stancewatch::nlp::StanceLabel;

#[cfg(feature = "accurate")]
use super::load_accurate;
use super::{
    article_cv, load_model, persent_pipeline, read_conll, read_file, round2, Mode, ModeArgs,
};

#[derive(Subcommand)]
pub enum EvalWhat {
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
        /// Also cross-validate the article model on the committed folds of PerSenT dev (refitted on four
        /// fifths, scored on the fifth): F1m mean ± sd, accuracy against the majority class per fold, ECE and
        /// a reliability table of the out-of-fold scores. The figures to expect on unseen articles.
        #[arg(long)]
        cross_validate: bool,
        #[command(flatten)]
        mode: ModeArgs,
    },
    /// Identity across articles: whether each PerSenT target gets one id in all its articles, the share of
    /// mentions linked to the knowledge base per type, and names that still hold a title, an opener, a place
    /// compound or a foreign function word.
    Identity {
        /// PerSenT CSV (targets named per article).
        #[arg(
            long,
            conflicts_with = "articles",
            required_unless_present = "articles"
        )]
        persent: Option<PathBuf>,
        /// Articles as JSON Lines in the input contract's shape (e.g. examples/articles.jsonl); no targets.
        #[arg(long)]
        articles: Option<PathBuf>,
        /// Print the figures as one JSON object on the last line.
        #[arg(long)]
        json: bool,
    },
}

pub fn eval(what: EvalWhat) -> Result<ExitCode> {
    match what {
        EvalWhat::Identity {
            persent,
            articles,
            json,
        } => eval_identity(persent.as_deref(), articles.as_deref(), json),
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
                let sentences = datasets::parse_newsmtsc(&read_file(&newsmtsc)?)
                    .with_context(|| format!("parsing {}", newsmtsc.display()))?;
                let started = Instant::now();
                // A target the token cap cut off reads neutral, with no confidence either way.
                let readings: Vec<(StanceLabel, [f32; 3])> =
                    lab::accurate_train::readings_mtsc(&accurate, &sentences, 64)?
                        .into_iter()
                        .map(|(gold, p)| (gold, p.unwrap_or([0.0, 1.0, 0.0])))
                        .collect();
                report_stance_eval(
                    &newsmtsc,
                    Some("accurate"),
                    &readings,
                    sentences.len(),
                    started.elapsed().as_secs_f64(),
                    json,
                )
            }
            #[cfg(not(feature = "accurate"))]
            {
                let _ = (newsmtsc, json, model);
                anyhow::bail!(
                    "this build has no accurate mode (rebuild with the `accurate` feature)"
                )
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
            let sentences = datasets::parse_newsmtsc(&read_file(&newsmtsc)?)
                .with_context(|| format!("parsing {}", newsmtsc.display()))?;
            let started = Instant::now();
            let examples =
                stance_train::examples(&lexicon, &sentences, model.bits, model.vectors());
            let readings = stance_train::readings(&model, &examples);
            report_stance_eval(
                &newsmtsc,
                None,
                &readings,
                sentences.len(),
                started.elapsed().as_secs_f64(),
                json,
            )
        }
        EvalWhat::Persent {
            csv,
            json,
            model,
            cross_validate,
            mode,
        } => {
            let pipeline = persent_pipeline(&mode, model.as_deref())?;
            let articles = datasets::parse_persent(&read_file(&csv)?)
                .with_context(|| format!("parsing {}", csv.display()))?;
            let started = Instant::now();
            // Articles are analysed by `workers` threads at once, as the service does; in accurate mode that
            // is what lets the transformer batch across articles.
            let analysed = analyse_all(&pipeline, &articles, mode.workers());
            let mut pairs = Vec::new();
            let mut found = 0usize;
            let mut failed = 0usize;
            let (mut scores_of_found, mut right) = (Vec::new(), Vec::new());
            for (a, analysed) in articles.iter().zip(&analysed) {
                let Some((analysis, _)) = analysed else {
                    failed += 1;
                    pairs.push((a.label, wrong_for(a.label)));
                    continue;
                };
                let target = datasets::find_target(&analysis.entities, &a.target);
                found += usize::from(target.is_some());
                // A target not found is a wrong answer, whatever the gold label.
                let predicted = target.map(|t| &analysis.entities[t].stance);
                if let Some(p) = predicted {
                    scores_of_found.push(p.score);
                    right.push(p.label == a.label);
                }
                pairs.push((a.label, predicted.map_or(wrong_for(a.label), |p| p.label)));
            }
            let elapsed = started.elapsed().as_secs_f64();
            let scores = stance_train::scores(&pairs);
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
            let (ece, reliability) = lab::calibration::ece(&scores_of_found, &right, 10);
            println!(
                "score calibration over the {} targets found: ECE {ece:.4} (10 bins; on PerSenT dev this is the \
                 data the article model was fitted on: --cross-validate gives the figure to expect)\n{}",
                scores_of_found.len(),
                lab::calibration::reliability_text(&reliability)
            );
            let cv = cross_validate.then(|| {
                let lexicon = Lexicon::embedded();
                let (rows, gold) = article_train::persent_rows(&lexicon, &articles, &analysed);
                article_cv(&pipeline, &lexicon, &rows, &gold)
            });
            let cv = cv.transpose()?;
            if let Some(report) = &cv {
                print!("{}", article_train::report_text(report));
            }
            if json {
                let mut v = serde_json::to_value(&scores)?;
                v["ece"] = ((ece * 10_000.0).round() / 10_000.0).into();
                v["reliability"] = serde_json::to_value(&reliability)?;
                if let Some(report) = &cv {
                    let (f, sd) = article_train::mean_sd(&report.f1m);
                    v["cross_validated"] = serde_json::json!({
                        "f1m_mean": (f * 10_000.0).round() / 10_000.0,
                        "f1m_sd": (sd * 10_000.0).round() / 10_000.0,
                        "folds": report,
                    });
                }
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

fn eval_ner(conll: &Path, model: Option<&Path>, json: bool) -> Result<ExitCode> {
    use stancewatch::nlp::{kb::KnowledgeBase, ner};

    let text = read_conll(conll)?;
    let docs = conll::parse(&text).with_context(|| format!("parsing {}", conll.display()))?;
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
    let mut scores = conll::Scores::default();
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

/// Prints `eval stance`'s scores over (gold, predicted) pairs, and with `json` the same as one JSON object
/// (with `mode` when one is named).
fn report_stance_eval(
    file: &Path,
    mode: Option<&str>,
    readings: &[(StanceLabel, [f32; 3])],
    sentences: usize,
    elapsed: f64,
    json: bool,
) -> Result<ExitCode> {
    use stancewatch::nlp::stance::classes::{argmax, label_of};
    let pairs: Vec<(StanceLabel, StanceLabel)> = readings
        .iter()
        .map(|(gold, p)| (*gold, label_of(argmax(p))))
        .collect();
    let scores = stance_train::scores(&pairs);
    // The score of a reading is the probability of its label, as a relation's score is.
    let confidence: Vec<f64> = readings
        .iter()
        .map(|(_, p)| f64::from(p[argmax(p)]))
        .collect();
    let right: Vec<bool> = pairs.iter().map(|(g, p)| g == p).collect();
    let (ece, reliability) = lab::calibration::ece(&confidence, &right, 10);
    let per_second = sentences as f64 / elapsed.max(1e-9);
    let title = match mode {
        Some(m) => format!("{} ({m})", file.display()),
        None => file.display().to_string(),
    };
    print_scores(&title, &scores);
    println!("{sentences} sentences in {elapsed:.3} s: {per_second:.0} sentences/s");
    println!(
        "calibration of the label's probability: ECE {ece:.4} (10 bins)\n{}",
        lab::calibration::reliability_text(&reliability)
    );
    if json {
        let mut v = serde_json::to_value(&scores)?;
        v["ece"] = ((ece * 10_000.0).round() / 10_000.0).into();
        v["reliability"] = serde_json::to_value(&reliability)?;
        if let Some(m) = mode {
            v["mode"] = m.into();
        }
        v["sentences"] = sentences.into();
        v["sentences_per_second"] = ((per_second * 10.0).round() / 10.0).into();
        println!("{}", serde_json::to_string(&v)?);
    }
    Ok(ExitCode::SUCCESS)
}

fn print_scores(what: &str, s: &stance_train::Scores) {
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

/// Articles' texts and targets from either file shape, measured by `lab::identity`.
fn eval_identity(persent: Option<&Path>, articles: Option<&Path>, json: bool) -> Result<ExitCode> {
    let mut docs: Vec<(Option<String>, String, String)> = Vec::new();
    let what = persent.or(articles).map(Path::display);
    if let Some(csv) = persent {
        for a in datasets::parse_persent(&read_file(csv)?)
            .with_context(|| format!("parsing {}", csv.display()))?
        {
            docs.push((Some(a.target), a.title, a.document));
        }
    }
    if let Some(path) = articles {
        for (i, line) in read_file(path)?.lines().enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            let a = stancewatch::article::Article::parse(line.as_bytes(), Default::default())
                .map_err(|e| anyhow::anyhow!("{}, line {}: {e}", path.display(), i + 1))?;
            docs.push((None, a.title.unwrap_or_default(), a.body));
        }
    }
    let r = lab::identity::measure_documents(&docs);
    println!(
        "{}: {} articles",
        what.map(|w| w.to_string()).unwrap_or_default(),
        r.articles
    );
    if r.with_target > 0 {
        println!(
            "targets: {} (by surname) in {} articles, found in {}; same id as the target's most frequent: {:.4}; ids per target {:.3}",
            r.targets, r.with_target, r.target_found, r.consistent_share, r.ids_per_target
        );
        for (target, ids) in &r.most_split {
            println!("  {target}: {}", ids.join(" "));
        }
    }
    for (ty, l) in &r.linked {
        println!(
            "linked {ty:<8} {:>6} of {:>6} mentions ({:.4})",
            l.linked, l.mentions, l.share
        );
    }
    for (flaw, n) in &r.flawed {
        let examples = &r.flawed_examples[flaw];
        println!("names with {flaw}: {n} {examples:?}");
    }
    if json {
        println!("{}", serde_json::to_string(&r)?);
    }
    Ok(ExitCode::SUCCESS)
}
