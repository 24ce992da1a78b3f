//! `stancewatch train`: the entity recogniser from CoNLL-2003, the fast mention-stance model (linear and dense
//! parts) from NewsMTSC and distilled files, or the accurate-mode transformer's adapter. The training is the
//! `lab` crate's; this file reads the files, shows progress on a terminal and writes the model.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use clap::Subcommand;
use lab::{conll, datasets, ner_train, stance_train};
use stancewatch::nlp::lexicon::Lexicon;
use stancewatch::nlp::stance;

use super::{persent_pipeline, read_conll, read_file, Mode, ModeArgs};

// The stance variant carries every training option; the enum is parsed once, so its size does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Subcommand)]
pub enum TrainWhat {
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
    /// The temperature that calibrates the fast mention model's probabilities (models/stance-calibration.json):
    /// fitted on the embedded model's readings of the --newsmtsc files, each file's calibration error first
    /// measured with the temperature fitted on the others (cross-validation by file), then fitted on all.
    Calibration {
        /// NewsMTSC files the model was not trained on (its dev files); at least two.
        #[arg(long, required = true, num_args = 1)]
        newsmtsc: Vec<PathBuf>,
        #[arg(long, default_value = "models/stance-calibration.json")]
        out: PathBuf,
    },
    /// The article-level stance model (crates/nlp/src/stance/article.rs), from PerSenT: the pipeline reads
    /// every article, the target's readings are summed up, a logistic regression is cross-validated on the
    /// committed folds (F1m, accuracy against the majority class, ECE and a reliability table), then fitted on
    /// all of it with Platt calibration and written to --out (embed it with `cargo build --release`).
    Article {
        /// PerSenT dev (the committed folds are its articles').
        #[arg(long)]
        csv: PathBuf,
        /// A 5-fold split instead of the committed one (TSV: index, document index, label, fold).
        #[arg(long)]
        folds: Option<PathBuf>,
        /// Hand-written cases instead of the committed ones (JSON Lines; `"split": "train"` ones are learnt
        /// from, `"check"` ones reported).
        #[arg(long)]
        cases: Option<PathBuf>,
        /// Where to write the weights (default: models/article-fast.json or models/article-accurate.json).
        #[arg(long)]
        out: Option<PathBuf>,
        /// Inverse L2 strength (as scikit-learn's C).
        #[arg(long, default_value_t = 0.1)]
        c: f32,
        /// Class weights (n / 3 n_class) to this power.
        #[arg(long, default_value_t = 0.5)]
        class_power: f32,
        /// Sample weight of the hand-written training cases.
        #[arg(long, default_value_t = 1.0)]
        cases_weight: f32,
        /// Only print the cross-validated figures; write nothing.
        #[arg(long)]
        dry_run: bool,
        #[command(flatten)]
        mode: ModeArgs,
    },
}

pub fn train(what: TrainWhat) -> Result<ExitCode> {
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
        article @ TrainWhat::Article { .. } => train_article(article),
        TrainWhat::Calibration { newsmtsc, out } => train_calibration(&newsmtsc, &out),
    }
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
        conll::parse(&train_text).with_context(|| format!("parsing {}", train.display()))?;
    let dev_docs = conll::parse(&dev_text).with_context(|| format!("parsing {}", dev.display()))?;
    let opts = ner_train::TrainOptions {
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
    let mut progress = |p: ner_train::Progress| match p {
        ner_train::Progress::Stage { name, total } => {
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
        ner_train::Progress::Advance(n) => {
            if let Some(b) = &bar {
                b.inc(n);
            }
        }
        ner_train::Progress::Message(m) => match &bar {
            Some(b) => b.println(&m),
            None => eprintln!("{m}"),
        },
    };
    let kb = KnowledgeBase::embedded();
    let gazetteer = ner::Gazetteer::from_kb(&kb);
    let (mut model, report) = ner_train::train(
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
            let mut cfg = lab::accurate_train::TrainConfig::default();
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
    let mut cfg = stance_train::TrainConfig::default();
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
    let sentences = datasets::parse_newsmtsc(&read_file(&train)?)
        .with_context(|| format!("parsing {}", train.display()))?;
    let mut silver_sentences = Vec::new();
    for file in &silver {
        let s = datasets::parse_newsmtsc(&read_file(file)?)
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
    let gold_options = stance_train::TeacherOptions {
        weight: 1.0,
        min_confidence: 0.0,
        soft_mix,
    };
    let mut examples = stance_train::with_teacher(
        stance_train::examples(&lexicon, &sentences, cfg.bits, rows),
        &sentences,
        &gold_options,
    );
    if let Some(k) = cross_validate {
        let f1 = stance_train::cross_validate(&examples, &cfg, vectors, k.max(2));
        println!("{k}-fold cross-validated F1m on the training file: {f1:.4}");
    }
    let silver_options = stance_train::TeacherOptions {
        weight: silver_weight,
        min_confidence: silver_min_confidence,
        soft_mix,
    };
    let mut sentence_count = sentences.len();
    for (file, s) in &silver_sentences {
        let mut more = stance_train::with_teacher(
            stance_train::examples(&lexicon, s, cfg.bits, rows),
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
        let s = datasets::parse_newsmtsc(&read_file(d)?)
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
    let model = stance_train::train(&examples, &cfg, vectors, |epoch, loss| {
        bar.set_position(epoch as u64);
        bar.set_message(format!("loss {loss:.4}"));
    });
    bar.finish_and_clear();
    let dev_examples = |m: &stance::Model| -> Vec<stance_train::Example> {
        dev_sentences
            .iter()
            .flat_map(|(_, s)| stance_train::examples(&lexicon, s, cfg.bits, m.vectors()))
            .collect()
    };
    // The run-time form (the dense part's word vectors projected through the first layer, 8-bit), which is
    // what is saved; the offsets are tuned on its readings.
    let mut model = match &model.dense {
        Some(stance::dense::DensePart::Direct(_)) => {
            let mut direct = model;
            let pooled = dev_examples(&direct);
            direct.offsets = stance_train::tune_offsets(&direct, &pooled);
            let before = stance_train::predict_all(&direct, &pooled);
            let mut projected = direct.projected();
            let after = stance_train::predict_all(&projected, &dev_examples(&projected));
            let same = before
                .iter()
                .zip(&after)
                .filter(|(a, b)| a.1 == b.1)
                .count();
            eprintln!(
                "dense part as trained: pooled dev F1m {:.4}; projected, same offsets: {:.4}, {same} of {} \
                 targets read alike",
                stance_train::scores(&before).f1m,
                stance_train::scores(&after).f1m,
                after.len()
            );
            projected.offsets = [0.0; 3];
            projected
        }
        _ => model,
    };
    let pooled = dev_examples(&model);
    model.offsets = stance_train::tune_offsets(&model, &pooled);
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
            stance_train::examples(&lexicon, s, cfg.bits, saved.vectors()),
        ));
    }
    for (path, ex) in &devs_saved {
        let s = stance_train::scores(&stance_train::predict_all(&saved, ex));
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
    sentences: impl Iterator<Item = &'a datasets::MtscSentence>,
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
        let v = lab::word_vectors::from_minilm(base_dir, &words, dim)?;
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
    cfg: &lab::accurate_train::TrainConfig,
) -> Result<ExitCode> {
    use lab::accurate_train::Progress;
    let started = Instant::now();
    let sentences = datasets::parse_newsmtsc(&read_file(train)?)
        .with_context(|| format!("parsing {}", train.display()))?;
    let mut dev_sets = Vec::new();
    for d in devs {
        dev_sets.push(
            datasets::parse_newsmtsc(&read_file(d)?)
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
    let figures =
        lab::accurate_train::train(base_dir, &sentences, &dev_sets, cfg, out, &mut progress)?;
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

/// `train article`: see [`TrainWhat::Article`].
fn train_article(what: TrainWhat) -> Result<ExitCode> {
    use lab::article_train::{self, Settings};
    let TrainWhat::Article {
        csv,
        folds,
        cases,
        out,
        c,
        class_power,
        cases_weight,
        dry_run,
        mode,
    } = what
    else {
        unreachable!("train() routes only the article command here")
    };
    let pipeline = persent_pipeline(&mode, None)?;
    let lexicon = Lexicon::embedded();
    let articles = datasets::parse_persent(&read_file(&csv)?)
        .with_context(|| format!("parsing {}", csv.display()))?;
    let folds_text = match &folds {
        Some(f) => read_file(f)?,
        None => article_train::PERSENT_DEV_FOLDS.to_string(),
    };
    let fold = article_train::parse_folds(&folds_text, articles.len())
        .map_err(|e| anyhow::anyhow!("the folds: {e}"))?;
    let started = Instant::now();
    let analysed = lab::evaluation::analyse_all(&pipeline, &articles, mode.workers());
    let (rows, gold) = article_train::persent_rows(&lexicon, &articles, &analysed);
    let cases_text = match &cases {
        Some(f) => read_file(f)?,
        None => article_train::CASES.to_string(),
    };
    let cases = article_train::cases(&pipeline, &lexicon, &cases_text, cases_weight)
        .map_err(|e| anyhow::anyhow!("the cases: {e}"))?;
    for case in cases.iter().filter(|c| c.row.is_none()) {
        eprintln!("case {:?}: the pipeline did not find it", case.entity);
    }
    let extra = if cases_weight > 0.0 {
        article_train::training_rows(&cases)
    } else {
        Vec::new()
    };
    let settings = Settings {
        c,
        class_power,
        cases_weight,
    };
    let report = article_train::cross_validate(&rows, &gold, &fold, &extra, &settings);
    let mode_name = match mode.mode {
        Mode::Fast => "fast",
        Mode::Accurate => "accurate",
    };
    println!(
        "{mode_name} mode: {} articles read in {:.1} s, target found in {}; {} training cases",
        articles.len(),
        started.elapsed().as_secs_f64(),
        rows.iter().filter(|r| r.is_some()).count(),
        extra.len()
    );
    print!("{}", article_train::report_text(&report));
    let mut model = article_train::train(&rows, &fold, &extra, &settings);
    let checks: Vec<_> = cases
        .iter()
        .filter(|c| !c.train)
        .filter_map(|c| c.row.map(|row| (c, row)))
        .collect();
    let mut right = 0;
    let mut lines = Vec::new();
    for (case, row) in &checks {
        let p = model.probs(&row.x);
        let class = stance::classes::argmax(&p);
        let got = stance::classes::label_of(class);
        right += usize::from(got == case.label);
        lines.push(format!(
            "{} {}: {} (gold {}, score {:.2}){}",
            case.kind,
            case.entity,
            got.as_str(),
            case.label.as_str(),
            model.score(&p, class),
            if got == case.label { "" } else { " WRONG" }
        ));
    }
    println!(
        "hand-written check cases: {right} of {} right\n  {}",
        checks.len(),
        lines.join("\n  ")
    );
    let (f, sd) = article_train::mean_sd(&report.f1m);
    let round3 = |x: f64| (x * 1000.0).round() / 1000.0;
    model.note = serde_json::json!({
        "mode": mode_name,
        "settings": {
            "c": (f64::from(settings.c) * 1e6).round() / 1e6,
            "class_power": (f64::from(settings.class_power) * 1e6).round() / 1e6,
            "cases_weight": (f64::from(settings.cases_weight) * 1e6).round() / 1e6,
        },
        "cv_f1m_mean": round3(f),
        "cv_f1m_sd": round3(sd),
        "cv_accuracy": report.accuracy.iter().map(|x| round3(*x)).collect::<Vec<_>>(),
        "cv_majority": report.majority.iter().map(|x| round3(*x)).collect::<Vec<_>>(),
        "cv_pooled_ece": round3(report.pooled_ece),
        "check_cases_right": format!("{right}/{}", checks.len()),
        "command": format!("stancewatch train article --csv {} --mode {mode_name}", csv.display()),
    });
    if !dry_run {
        let out = out.unwrap_or_else(|| PathBuf::from(format!("models/article-{mode_name}.json")));
        std::fs::write(&out, serde_json::to_string_pretty(&model)? + "\n")
            .with_context(|| format!("writing {}", out.display()))?;
        println!("wrote {} (cargo build --release embeds it)", out.display());
    }
    Ok(ExitCode::SUCCESS)
}

/// `train calibration`: see [`TrainWhat::Calibration`].
fn train_calibration(files: &[PathBuf], out: &Path) -> Result<ExitCode> {
    use lab::calibration::{at_temperature, ece, fit_temperature};
    if files.len() < 2 {
        bail!(
            "give at least two --newsmtsc files, so that each can be measured with the others' fit"
        );
    }
    let mut model = stance::embedded_model();
    model.temperature = 1.0;
    let lexicon = Lexicon::embedded();
    let mut per_file = Vec::new();
    for f in files {
        let sentences = datasets::parse_newsmtsc(&read_file(f)?)
            .with_context(|| format!("parsing {}", f.display()))?;
        let examples = stance_train::examples(&lexicon, &sentences, model.bits, model.vectors());
        let readings: Vec<(usize, [f32; 3])> = stance_train::readings(&model, &examples)
            .into_iter()
            .map(|(gold, p)| (stance::classes::class_of(gold), p))
            .collect();
        per_file.push((f, readings));
    }
    let calibration = |readings: &[(usize, [f32; 3])], t: f32| {
        let (score, right): (Vec<f64>, Vec<bool>) = readings
            .iter()
            .map(|(gold, p)| {
                let q = at_temperature(*p, t);
                let c = stance::classes::argmax(&q);
                (f64::from(q[c]), c == *gold)
            })
            .unzip();
        ece(&score, &right, 10).0
    };
    let mut held_out = Vec::new();
    for (i, (f, readings)) in per_file.iter().enumerate() {
        let others: Vec<(usize, [f32; 3])> = per_file
            .iter()
            .enumerate()
            .filter(|(j, _)| *j != i)
            .flat_map(|(_, (_, r))| r.iter().copied())
            .collect();
        let t = fit_temperature(&others);
        let (before, after) = (calibration(readings, 1.0), calibration(readings, t));
        println!(
            "{}: ECE {before:.4} uncalibrated, {after:.4} at the temperature fitted on the other files ({t:.3})",
            f.display()
        );
        held_out.push(after);
    }
    let all: Vec<(usize, [f32; 3])> = per_file
        .iter()
        .flat_map(|(_, r)| r.iter().copied())
        .collect();
    let t = fit_temperature(&all);
    let round = |x: f64| (x * 10_000.0).round() / 10_000.0;
    let json = serde_json::json!({
        "temperature": (f64::from(t) * 10_000.0).round() / 10_000.0,
        "note": {
            "fitted_on": files.iter().map(|f| f.display().to_string()).collect::<Vec<_>>(),
            "held_out_ece": held_out.iter().map(|x| round(*x)).collect::<Vec<_>>(),
            "command": format!(
                "stancewatch train calibration {}",
                files.iter().map(|f| format!("--newsmtsc {}", f.display())).collect::<Vec<_>>().join(" ")
            ),
        }
    });
    std::fs::write(out, serde_json::to_string_pretty(&json)? + "\n")
        .with_context(|| format!("writing {}", out.display()))?;
    println!(
        "temperature {t:.4} (fitted on all); wrote {} (cargo build --release embeds it)",
        out.display()
    );
    Ok(ExitCode::SUCCESS)
}
