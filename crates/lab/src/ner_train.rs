//! Training: averaged structured perceptron, two passes, with cross-validated first-pass predictions.
//!
//! Pass one learns from local features. Pass two learns from the same features plus pass one's predictions,
//! and those predictions must be as wrong on the training data as they will be on unseen text, or pass two
//! learns to trust them blindly: so the training documents are split into folds and each fold is tagged by a
//! pass-one model trained on the other folds (jackknifing). Everything is deterministic: fixed-seed shuffles,
//! fixed fold assignment, sequential updates. Model selection (the epoch kept for each pass) is by F1 on the
//! development set, the only thing it is used for.

use std::collections::HashMap;
use std::ops::Range;

use crate::conll::{ConllDoc, Scores};
use nlp::ner::features::{self, BaseFeatures, Stacked};
use nlp::ner::gazetteer::Gazetteer;
use nlp::ner::{labels_to_spans, spans_to_labels, NerError, NerModel, Weights, N_LABELS};

#[derive(Debug, Clone)]
pub struct TrainOptions {
    /// Epochs per pass; the best one on the development set is kept.
    pub epochs: usize,
    /// log2 of the weight-table rows.
    pub bits: u8,
    /// Folds for the cross-validated first-pass predictions pass two trains on.
    pub folds: usize,
    pub seed: u64,
}

impl Default for TrainOptions {
    fn default() -> Self {
        TrainOptions {
            epochs: 12,
            bits: 19,
            folds: 5,
            seed: 0x5eed,
        }
    }
}

/// What training tells its caller as it goes; the CLI turns it into a progress bar and log lines.
#[derive(Debug, Clone)]
pub enum Progress {
    /// A stage starts that will take `total` steps (sentences × epochs).
    Stage { name: String, total: u64 },
    /// `n` more steps done.
    Advance(u64),
    /// A line worth reporting (dev F1 of an epoch, a stage's outcome).
    Message(String),
}

#[derive(Debug, Clone)]
pub struct TrainReport {
    pub pass1_epoch: usize,
    pub pass1_dev: Scores,
    pub pass2_epoch: usize,
    pub dev: Scores,
}

/// One training or development sentence with its pass's features.
struct Example {
    doc: usize,
    sent: Range<usize>,
    feats: Vec<u32>,
    offsets: Vec<u32>,
    gold: Vec<u8>,
}

fn examples(
    docs: &[ConllDoc<'_>],
    bases: &[BaseFeatures],
    stacked: Option<&[Stacked]>,
    bits: u8,
) -> Vec<Example> {
    let mut out = Vec::new();
    for (d, doc) in docs.iter().enumerate() {
        let gold = spans_to_labels(&doc.gold, doc.input.len());
        for sent in doc.input.sentences() {
            let (mut feats, mut offsets) = (Vec::new(), Vec::new());
            features::extract(
                &bases[d],
                sent.clone(),
                stacked.map(|s| &s[d]),
                bits,
                &mut feats,
                &mut offsets,
            );
            out.push(Example {
                doc: d,
                sent: sent.clone(),
                feats,
                offsets,
                gold: gold[sent.clone()].to_vec(),
            });
        }
    }
    out
}

/// Weights plus the running sums that averaging needs (the "lazy averaging" trick: the average is
/// `w - acc / c`, so an update costs the same as without averaging).
struct Perceptron {
    w: Weights,
    acc_table: Vec<f64>,
    acc_trans: Vec<f64>,
    c: f64,
}

impl Perceptron {
    fn new(bits: u8) -> Self {
        let w = Weights::zeros(bits);
        Perceptron {
            acc_table: vec![0.0; w.table.len()],
            acc_trans: vec![0.0; w.trans.len()],
            w,
            c: 1.0,
        }
    }

    fn bump_row(&mut self, f: u32, y: u8, d: f32) {
        let k = f as usize * N_LABELS + y as usize;
        self.w.table[k] += d;
        self.acc_table[k] += self.c * f64::from(d);
    }

    fn bump_trans(&mut self, prev: Option<u8>, y: u8, d: f32) {
        let k = prev.map_or(0, |p| p as usize + 1) * N_LABELS + y as usize;
        self.w.trans[k] += d;
        self.acc_trans[k] += self.c * f64::from(d);
    }

    fn learn(&mut self, ex: &Example, em: &mut Vec<[f32; N_LABELS]>, pred: &mut Vec<u8>) {
        self.w.emissions(&ex.feats, &ex.offsets, em);
        self.w.viterbi(em, pred);
        if *pred != ex.gold {
            for i in 0..pred.len() {
                let (g, p) = (ex.gold[i], pred[i]);
                if g != p {
                    for &f in &ex.feats[ex.offsets[i] as usize..ex.offsets[i + 1] as usize] {
                        self.bump_row(f, g, 1.0);
                        self.bump_row(f, p, -1.0);
                    }
                }
                let (gp, pp) = if i == 0 {
                    (None, None)
                } else {
                    (Some(ex.gold[i - 1]), Some(pred[i - 1]))
                };
                if (gp, g) != (pp, p) {
                    self.bump_trans(gp, g, 1.0);
                    self.bump_trans(pp, p, -1.0);
                }
            }
        }
        self.c += 1.0;
    }

    fn averaged(&self) -> Weights {
        let avg = |w: &[f32], acc: &[f64]| -> Vec<f32> {
            w.iter()
                .zip(acc)
                .map(|(&w, &a)| (f64::from(w) - a / self.c) as f32)
                .collect()
        };
        Weights {
            table: avg(&self.w.table, &self.acc_table),
            trans: avg(&self.w.trans, &self.acc_trans),
        }
    }
}

/// Deterministic shuffle (xorshift64*), so a retrain reproduces the committed model bit for bit.
fn shuffle(v: &mut [usize], seed: u64) {
    let mut x = seed | 1;
    for i in (1..v.len()).rev() {
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        let r = x.wrapping_mul(0x2545_f491_4f6c_dd1d);
        v.swap(i, (r % (i as u64 + 1)) as usize);
    }
}

/// Per-document labels for a set of examples, decoded with `w`.
fn decode(w: &Weights, exs: &[Example], doc_lens: &[usize]) -> Vec<Vec<u8>> {
    let mut out: Vec<Vec<u8>> = doc_lens.iter().map(|&n| vec![0u8; n]).collect();
    let (mut em, mut pred) = (Vec::new(), Vec::new());
    for ex in exs {
        w.emissions(&ex.feats, &ex.offsets, &mut em);
        w.viterbi(&em, &mut pred);
        out[ex.doc][ex.sent.clone()].copy_from_slice(&pred);
    }
    out
}

fn score(docs: &[ConllDoc<'_>], labels: &[Vec<u8>]) -> Scores {
    let mut s = Scores::default();
    for (doc, l) in docs.iter().zip(labels) {
        s.add(&doc.gold, &labels_to_spans(l, 0));
    }
    s
}

/// Trains `epochs` epochs over `train`; with a development set, returns the averaged weights of the epoch
/// that scored best on it, else those of the last epoch.
fn run_epochs(
    name: &str,
    train: &[&Example],
    dev: Option<(&[Example], &[ConllDoc<'_>])>,
    opts: &TrainOptions,
    epochs: usize,
    progress: &mut dyn FnMut(Progress),
) -> (Weights, usize, Option<Scores>) {
    progress(Progress::Stage {
        name: name.to_string(),
        total: (train.len() * epochs) as u64,
    });
    let mut p = Perceptron::new(opts.bits);
    let mut order: Vec<usize> = (0..train.len()).collect();
    let (mut em, mut pred) = (Vec::new(), Vec::new());
    let mut best: Option<(f64, usize, Weights, Scores)> = None;
    for epoch in 1..=epochs {
        shuffle(
            &mut order,
            opts.seed ^ (epoch as u64).wrapping_mul(0x9e37_79b9),
        );
        for (k, &i) in order.iter().enumerate() {
            p.learn(train[i], &mut em, &mut pred);
            if k % 1000 == 999 {
                progress(Progress::Advance(1000));
            }
        }
        progress(Progress::Advance((order.len() % 1000) as u64));
        if let Some((dev_ex, dev_docs)) = dev {
            let w = p.averaged();
            let lens: Vec<usize> = dev_docs.iter().map(|d| d.input.len()).collect();
            let s = score(dev_docs, &decode(&w, dev_ex, &lens));
            let f1 = s.overall.f1();
            progress(Progress::Message(format!(
                "{name}: epoch {epoch:>2}: dev F1 {f1:.2} (P {:.2}, R {:.2})",
                s.overall.precision(),
                s.overall.recall()
            )));
            if best.as_ref().is_none_or(|b| f1 > b.0) {
                best = Some((f1, epoch, w, s));
            }
        }
    }
    match best {
        Some((_, epoch, w, s)) => (w, epoch, Some(s)),
        None => (p.averaged(), epochs, None),
    }
}

/// Trains both passes on `train`, selecting epochs on `dev`.
pub fn train(
    train: &[ConllDoc<'_>],
    dev: &[ConllDoc<'_>],
    gazetteer: &Gazetteer,
    opts: &TrainOptions,
    provenance: String,
    progress: &mut dyn FnMut(Progress),
) -> Result<(NerModel, TrainReport), NerError> {
    if train.iter().all(|d| d.gold.is_empty()) {
        return Err(NerError::Empty);
    }
    let inputs: Vec<_> = train.iter().map(|d| d.input.clone()).collect();
    let prior: HashMap<u64, u8> = features::count_prior(&inputs);
    let bases: Vec<BaseFeatures> = train
        .iter()
        .map(|d| BaseFeatures::new(&d.input, gazetteer, &prior))
        .collect();
    let dev_bases: Vec<BaseFeatures> = dev
        .iter()
        .map(|d| BaseFeatures::new(&d.input, gazetteer, &prior))
        .collect();
    let ex1 = examples(train, &bases, None, opts.bits);
    let dev1 = examples(dev, &dev_bases, None, opts.bits);
    let all: Vec<&Example> = ex1.iter().collect();
    let (w1, e1, s1) = run_epochs(
        "pass 1",
        &all,
        (!dev.is_empty()).then_some((dev1.as_slice(), dev)),
        opts,
        opts.epochs,
        progress,
    );

    // Cross-validated pass-one labels for the training documents.
    let lens: Vec<usize> = train.iter().map(|d| d.input.len()).collect();
    let mut jack: Vec<Vec<u8>> = lens.iter().map(|&n| vec![0u8; n]).collect();
    for fold in 0..opts.folds {
        let held = |d: usize| d % opts.folds == fold;
        let rest: Vec<&Example> = ex1.iter().filter(|e| !held(e.doc)).collect();
        let (w, _, _) = run_epochs(
            &format!("pass 1, fold {}/{}", fold + 1, opts.folds),
            &rest,
            None,
            opts,
            e1,
            progress,
        );
        let held_ex: Vec<Example> = ex1
            .iter()
            .filter(|e| held(e.doc))
            .map(|e| Example {
                doc: e.doc,
                sent: e.sent.clone(),
                feats: e.feats.clone(),
                offsets: e.offsets.clone(),
                gold: e.gold.clone(),
            })
            .collect();
        let labels = decode(&w, &held_ex, &lens);
        for (d, l) in labels.into_iter().enumerate() {
            if held(d) {
                jack[d] = l;
            }
        }
    }
    let jack_scores = score(train, &jack);
    progress(Progress::Message(format!(
        "pass 1 cross-validated on train: F1 {:.2}",
        jack_scores.overall.f1()
    )));
    drop(ex1);

    let stacked: Vec<Stacked> = bases
        .iter()
        .zip(&jack)
        .map(|(b, l)| Stacked::new(b, l))
        .collect();
    let dev_lens: Vec<usize> = dev.iter().map(|d| d.input.len()).collect();
    let dev_first = decode(&w1, &dev1, &dev_lens);
    let dev_stacked: Vec<Stacked> = dev_bases
        .iter()
        .zip(&dev_first)
        .map(|(b, l)| Stacked::new(b, l))
        .collect();
    let ex2 = examples(train, &bases, Some(&stacked), opts.bits);
    let dev2 = examples(dev, &dev_bases, Some(&dev_stacked), opts.bits);
    let all2: Vec<&Example> = ex2.iter().collect();
    let (w2, e2, s2) = run_epochs(
        "pass 2",
        &all2,
        (!dev.is_empty()).then_some((dev2.as_slice(), dev)),
        opts,
        opts.epochs,
        progress,
    );
    let model = NerModel::new(opts.bits, prior, &w1, &w2, provenance);
    let empty = Scores::default();
    Ok((
        model,
        TrainReport {
            pass1_epoch: e1,
            pass1_dev: s1.unwrap_or_else(|| empty.clone()),
            pass2_epoch: e2,
            dev: s2.unwrap_or(empty),
        },
    ))
}
