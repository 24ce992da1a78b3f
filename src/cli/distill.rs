//! `stancewatch distill`: the accurate-mode transformer labels text (NewsMTSC sentences, CoNLL-2003 entities)
//! so that the fast model can learn from its probabilities (`train stance --silver`, `--soft-mix`).

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use clap::Subcommand;

#[derive(Subcommand)]
pub enum DistillWhat {
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

pub fn distill(what: DistillWhat) -> Result<ExitCode> {
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
        use std::time::Instant;

        use anyhow::Context;
        use lab::{conll as conll_file, datasets, distill};
        use stancewatch::nlp::ner::NerType;

        use super::{load_accurate, read_file, sentences_bar};
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
            let sentences = datasets::parse_newsmtsc(&read_file(file)?)
                .with_context(|| format!("parsing {}", file.display()))?;
            candidates = distill::other_entity_candidates(&sentences, &types)?;
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
            let sentences = datasets::parse_newsmtsc(&text)
                .with_context(|| format!("parsing {}", file.display()))?;
            let (inputs, _) = lab::accurate_train::mtsc_targets(&sentences);
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
        anyhow::bail!("this build has no accurate mode (rebuild with the `accurate` feature)")
    }
}
