//! Training the mention-stance model, and the figures it is judged by.
//!
//! Training is deterministic: examples are shuffled by a seeded xorshift generator, updates are sequential, and
//! the same data and settings give the same bytes. The optimiser is AdaGrad on the multinomial log-loss with
//! an L2 penalty on the weights an example touches (the lazy form, which also regularises frequent features
//! harder than rare ones). Classes are weighted by inverse frequency to a power, since NewsMTSC's classes are
//! unbalanced and macro-F1 counts each class equally; per-class offsets are then tuned on dev for macro-F1.

// Class-indexed arithmetic over small fixed arrays reads clearer with indices than with zipped iterators.
#![allow(clippy::needless_range_loop)]

use std::collections::BTreeMap;

use serde::Serialize;

use crate::datasets::MtscSentence;
use nlp::lexicon::Lexicon;
use nlp::stance::classes::{argmax, class_of, label_of, softmax, CLASSES};
use nlp::stance::dense::{input_len, Dense, DensePart, DenseRows, Mlp, WordVectors};
use nlp::stance::features::{token_range, Context, Features};
use nlp::stance::model::Model;
use nlp::text::TextView;
use nlp::StanceLabel;

/// One target in one sentence, as features and a class index.
#[derive(Debug, Clone)]
pub struct Example {
    pub features: Features,
    pub class: usize,
    /// Index of the sentence it comes from; cross-validation folds never split a sentence.
    pub sentence: usize,
    /// How much the example counts (1 for gold; `--silver-weight` for distilled examples).
    pub weight: f32,
    /// The distribution trained toward instead of `class` one-hot (a mix with a teacher's probabilities).
    pub soft: Option<[f32; CLASSES]>,
}

/// The features of every NewsMTSC target; the sentence is the context, as a body sentence is in the pipeline.
/// With `vectors`, each example also gets the dense input a model with those word vectors reads.
pub fn examples(
    lexicon: &Lexicon,
    sentences: &[MtscSentence],
    bits: u32,
    vectors: Option<DenseRows<'_>>,
) -> Vec<Example> {
    let mut out = Vec::new();
    for (k, s) in sentences.iter().enumerate() {
        let view = TextView::new(&s.text);
        let tokens = view.tokens();
        let ctx = Context::new(lexicon, tokens);
        for t in &s.targets {
            let mut spans = vec![token_range(tokens, t.start, t.end)];
            spans.extend(t.further.iter().map(|&(a, b)| token_range(tokens, a, b)));
            spans.retain(|r| !r.is_empty());
            let mut features = Features::new(bits);
            if !spans.is_empty() {
                ctx.features(&spans, &mut features);
            }
            if let Some(v) = vectors {
                ctx.dense(&spans, v, &mut features.dense);
            }
            out.push(Example {
                features,
                class: class_of(t.label),
                sentence: k,
                weight: 1.0,
                soft: None,
            });
        }
    }
    out
}

/// How examples carrying a teacher's probabilities (distilled files) are used.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct TeacherOptions {
    /// Weight of each example.
    pub weight: f32,
    /// Examples whose teacher's top probability is below this are dropped.
    pub min_confidence: f32,
    /// Train toward (1 - mix) x one-hot(label) + mix x teacher probabilities.
    pub soft_mix: f32,
}

/// Applies `opts` to examples made by [`examples`] from `sentences` (same order): targets with teacher
/// probabilities below the confidence floor are dropped, the rest weighted and, with a soft mix, given their
/// soft target. Targets without teacher probabilities keep their label and get the weight.
pub fn with_teacher(
    examples: Vec<Example>,
    sentences: &[MtscSentence],
    opts: &TeacherOptions,
) -> Vec<Example> {
    let teachers = sentences
        .iter()
        .flat_map(|s| s.targets.iter().map(|t| t.teacher));
    assert_eq!(
        examples.len(),
        sentences.iter().map(|s| s.targets.len()).sum::<usize>(),
        "examples must come from these sentences"
    );
    examples
        .into_iter()
        .zip(teachers)
        .filter_map(|(mut e, teacher)| {
            e.weight = opts.weight;
            if let Some(p) = teacher {
                let top = p.iter().copied().fold(0f32, f32::max);
                if top < opts.min_confidence {
                    return None;
                }
                if opts.soft_mix > 0.0 {
                    let mut q = [0f32; CLASSES];
                    for c in 0..CLASSES {
                        let hard = if c == e.class { 1.0 } else { 0.0 };
                        q[c] = (1.0 - opts.soft_mix) * hard + opts.soft_mix * p[c];
                    }
                    e.soft = Some(q);
                }
            }
            Some(e)
        })
        .collect()
}

#[derive(Debug, Clone, Serialize)]
pub struct TrainConfig {
    /// log2 of the number of hashed feature rows.
    pub bits: u32,
    pub epochs: usize,
    pub learning_rate: f32,
    pub l2: f32,
    /// Class weight = (majority count / class count) ^ this.
    pub class_weight_power: f32,
    /// Average the weights over the ends of epochs, which steadies a model trained on noisy labels.
    pub average: bool,
    pub seed: u64,
    /// Hidden units of the dense network (0: a purely linear model, even when word vectors are given).
    pub hidden: usize,
    /// Adam's step size for the dense network.
    pub dense_learning_rate: f32,
    /// Decoupled weight decay of the dense network, per step (AdamW).
    pub dense_l2: f32,
    /// Epochs of the dense network's training whose end weights are averaged (the last ones).
    pub dense_average_last: usize,
    /// Models trained from consecutive seeds and merged into one (see [`train`]).
    pub ensemble: usize,
}

impl Default for TrainConfig {
    fn default() -> Self {
        TrainConfig {
            bits: 19,
            epochs: 12,
            learning_rate: 0.01,
            l2: 1e-4,
            class_weight_power: 0.5,
            average: true,
            seed: 20_260_401,
            hidden: 0,
            dense_learning_rate: 1e-3,
            dense_l2: 1e-5,
            dense_average_last: 6,
            ensemble: 1,
        }
    }
}

/// Trains a model; `on_epoch(epoch, mean_loss)` reports progress. With `vectors` and `cfg.hidden > 0` the
/// model gets a dense part, trained jointly with the linear weights (one loss over the summed class scores, the
/// same example order), the network by Adam and the linear weights by AdaGrad as without it.
///
/// With `cfg.ensemble` = K > 1, K models are trained from seeds `seed`, `seed + 1`, ... and merged into one
/// whose class scores are the mean of theirs: the linear weights averaged, the networks' hidden layers side by
/// side with their output weights divided by K. The networks differ by initialisation and example order, and
/// their mean varies less with the seed than any one of them.
pub fn train(
    examples: &[Example],
    cfg: &TrainConfig,
    vectors: Option<&WordVectors>,
    mut on_epoch: impl FnMut(usize, f64),
) -> Model {
    let k = cfg.ensemble.max(1);
    let mut merged: Option<Model> = None;
    for i in 0..k {
        let one = TrainConfig {
            seed: cfg.seed.wrapping_add(i as u64),
            ..cfg.clone()
        };
        let m = train_one(examples, &one, vectors, &mut on_epoch);
        merged = Some(match merged {
            None => m,
            Some(acc) => merge(acc, m, i),
        });
    }
    merged.unwrap_or_else(|| Model::zeros(cfg.bits))
}

/// `acc` is the merge of `n` models so far; the result is that of `n + 1` with `m`.
fn merge(mut acc: Model, m: Model, n: usize) -> Model {
    let n = n as f32;
    for (a, b) in acc.weights.iter_mut().zip(&m.weights) {
        *a = (*a * n + b) / (n + 1.0);
    }
    if let (Some(DensePart::Direct(a)), Some(DensePart::Direct(b))) = (&mut acc.dense, m.dense) {
        let (x, y) = (&mut a.mlp, b.mlp);
        let scale = n / (n + 1.0);
        let mut w2 = Vec::with_capacity((x.hidden + y.hidden) * CLASSES);
        for c in 0..CLASSES {
            w2.extend(
                x.w2[c * x.hidden..(c + 1) * x.hidden]
                    .iter()
                    .map(|w| w * scale),
            );
            w2.extend(
                y.w2[c * y.hidden..(c + 1) * y.hidden]
                    .iter()
                    .map(|w| w / (n + 1.0)),
            );
        }
        x.w1.extend(y.w1);
        x.b1.extend(y.b1);
        for c in 0..CLASSES {
            x.b2[c] = x.b2[c] * scale + y.b2[c] / (n + 1.0);
        }
        x.w2 = w2;
        x.hidden += y.hidden;
    }
    acc
}

fn train_one(
    examples: &[Example],
    cfg: &TrainConfig,
    vectors: Option<&WordVectors>,
    on_epoch: &mut impl FnMut(usize, f64),
) -> Model {
    let mut model = Model::zeros(cfg.bits);
    let mut net = vectors.filter(|_| cfg.hidden > 0).map(|v| {
        let mlp = Mlp::init(
            input_len(v.dim),
            cfg.hidden,
            cfg.seed ^ 0x9e37_79b9_7f4a_7c15,
        );
        NetTrainer::new(mlp)
    });
    let mut accum = vec![0f32; model.weights.len()];
    // Class frequencies count each example by its weight.
    let mut counts = [0f32; CLASSES];
    for e in examples {
        counts[e.class] += e.weight;
    }
    let most = counts.iter().copied().fold(1f32, f32::max);
    let class_weight: Vec<f32> = counts
        .iter()
        .map(|&c| (most / c.max(1.0)).powf(cfg.class_weight_power))
        .collect();
    let mut order: Vec<usize> = (0..examples.len()).collect();
    let mut sum = if cfg.average {
        vec![0f32; model.weights.len()]
    } else {
        Vec::new()
    };
    let mut rng = XorShift(cfg.seed.max(1));
    for epoch in 0..cfg.epochs {
        for i in (1..order.len()).rev() {
            let j = (rng.next() % (i as u64 + 1)) as usize;
            order.swap(i, j);
        }
        let mut loss = 0f64;
        for &k in &order {
            let e = &examples[k];
            let mut z = model.logits(&e.features);
            if let Some(t) = &mut net {
                let zd = t.mlp.forward(&e.features.dense, &mut t.hidden);
                for c in 0..CLASSES {
                    z[c] += zd[c];
                }
            }
            let p = softmax(z);
            let w = class_weight[e.class] * e.weight;
            let q = e.soft.unwrap_or_else(|| {
                let mut q = [0f32; CLASSES];
                q[e.class] = 1.0;
                q
            });
            let mut grad = [0f32; CLASSES];
            for c in 0..CLASSES {
                loss -= f64::from(q[c]) * f64::from(p[c].max(1e-9).ln()) * f64::from(w);
                grad[c] = (p[c] - q[c]) * w;
            }
            if let Some(t) = &mut net {
                t.step(&e.features.dense, &grad, cfg);
            }
            for &(i, v) in &e.features.items {
                let base = i as usize * CLASSES;
                for c in 0..CLASSES {
                    let wi = &mut model.weights[base + c];
                    let g = grad[c] * v + cfg.l2 * *wi;
                    let a = &mut accum[base + c];
                    *a += g * g;
                    *wi -= cfg.learning_rate * g / (a.sqrt() + 1e-6);
                }
            }
        }
        if cfg.average {
            for (s, w) in sum.iter_mut().zip(&model.weights) {
                *s += w;
            }
        }
        if let Some(t) = &mut net {
            if epoch + cfg.dense_average_last.max(1) >= cfg.epochs {
                t.accumulate();
            }
        }
        on_epoch(epoch + 1, loss / examples.len().max(1) as f64);
    }
    if cfg.average && cfg.epochs > 0 {
        let n = cfg.epochs as f32;
        model.weights = sum.into_iter().map(|s| s / n).collect();
    }
    if let (Some(t), Some(v)) = (net, vectors) {
        model.dense = Some(DensePart::Direct(Dense {
            vectors: v.clone(),
            mlp: t.averaged(),
        }));
    }
    model
}

/// Adam state of the dense network during [`train`], and the running sum for averaging its weights.
struct NetTrainer {
    mlp: Mlp,
    hidden: Vec<f32>,
    /// First and second moments, per parameter in [`Mlp::params_mut`] order.
    m: Vec<f32>,
    v: Vec<f32>,
    steps: i32,
    sum: Option<Mlp>,
    summed: usize,
}

impl NetTrainer {
    fn new(mlp: Mlp) -> Self {
        let n = mlp.w1.len() + mlp.b1.len() + mlp.w2.len() + CLASSES;
        NetTrainer {
            hidden: Vec::with_capacity(mlp.hidden),
            mlp,
            m: vec![0.0; n],
            v: vec![0.0; n],
            steps: 0,
            sum: None,
            summed: 0,
        }
    }

    /// One AdamW step on the gradient of the loss with respect to the class scores, `dz`; `self.hidden` holds
    /// the activations of the forward pass over `x`.
    fn step(&mut self, x: &[f32], dz: &[f32; CLASSES], cfg: &TrainConfig) {
        let (inp, hid) = (self.mlp.input, self.mlp.hidden);
        let mut grad = vec![0f32; self.m.len()];
        let (g1, rest) = grad.split_at_mut(inp * hid);
        let (gb1, rest) = rest.split_at_mut(hid);
        let (g2, gb2) = rest.split_at_mut(hid * CLASSES);
        for j in 0..hid {
            if self.hidden[j] <= 0.0 {
                continue;
            }
            let mut dh = 0f32;
            for c in 0..CLASSES {
                dh += dz[c] * self.mlp.w2[c * hid + j];
            }
            gb1[j] = dh;
            for (g, xi) in g1[j * inp..(j + 1) * inp].iter_mut().zip(x) {
                *g = dh * xi;
            }
        }
        for c in 0..CLASSES {
            gb2[c] = dz[c];
            for j in 0..hid {
                g2[c * hid + j] = dz[c] * self.hidden[j];
            }
        }
        self.steps += 1;
        let (b1, b2) = (0.9f32, 0.999f32);
        let c1 = 1.0 - b1.powi(self.steps);
        let c2 = 1.0 - b2.powi(self.steps);
        let lr = cfg.dense_learning_rate;
        let mut k = 0;
        for params in self.mlp.params_mut() {
            for p in params.iter_mut() {
                let g = grad[k];
                self.m[k] = b1 * self.m[k] + (1.0 - b1) * g;
                self.v[k] = b2 * self.v[k] + (1.0 - b2) * g * g;
                *p -=
                    lr * ((self.m[k] / c1) / ((self.v[k] / c2).sqrt() + 1e-8) + cfg.dense_l2 * *p);
                k += 1;
            }
        }
    }

    fn accumulate(&mut self) {
        self.summed += 1;
        match &mut self.sum {
            None => self.sum = Some(self.mlp.clone()),
            Some(s) => {
                let mut cur = self.mlp.clone();
                for (a, b) in s.params_mut().into_iter().zip(cur.params_mut()) {
                    a.iter_mut().zip(b.iter()).for_each(|(x, y)| *x += y);
                }
            }
        }
    }

    fn averaged(mut self) -> Mlp {
        match self.sum.take() {
            Some(mut s) => {
                let n = self.summed as f32;
                for a in s.params_mut() {
                    a.iter_mut().for_each(|x| *x /= n);
                }
                s
            }
            None => self.mlp,
        }
    }
}

/// Macro-F1 of `k`-fold cross-validation on the training examples (folds by sentence, offsets tuned on the
/// training part of each fold), for choosing settings without looking at dev.
pub fn cross_validate(
    examples: &[Example],
    cfg: &TrainConfig,
    vectors: Option<&WordVectors>,
    k: usize,
) -> f64 {
    let mut pairs = Vec::new();
    for fold in 0..k {
        let (test, train_part): (Vec<Example>, Vec<Example>) = examples
            .iter()
            .cloned()
            .partition(|e| e.sentence % k == fold);
        let mut model = train(&train_part, cfg, vectors, |_, _| {});
        model.offsets = tune_offsets(&model, &train_part);
        pairs.extend(predict_all(&model, &test));
    }
    scores(&pairs).f1m
}

/// Offsets for against and favor (neutral stays 0) that maximise macro-F1 over `examples`, from a coarse grid.
/// Two numbers fitted on several hundred targets: this corrects the class prior, it cannot memorise sentences.
pub fn tune_offsets(model: &Model, examples: &[Example]) -> [f32; CLASSES] {
    let logits: Vec<[f32; CLASSES]> = examples.iter().map(|e| model.logits(&e.features)).collect();
    let mut best = ([0f32; CLASSES], f64::NEG_INFINITY);
    for a in -15..=15 {
        for f in -15..=15 {
            let offsets = [a as f32 / 10.0, 0.0, f as f32 / 10.0];
            let pairs: Vec<(StanceLabel, StanceLabel)> = logits
                .iter()
                .zip(examples)
                .map(|(z, e)| {
                    let mut z = *z;
                    for c in 0..CLASSES {
                        z[c] += offsets[c];
                    }
                    (label_of(e.class), label_of(argmax(&z)))
                })
                .collect();
            let f1 = scores(&pairs).f1m;
            // Prefer the smallest correction among near-equal ones.
            let size = f64::from(offsets[0].abs() + offsets[2].abs()) * 1e-4;
            if f1 - size > best.1 {
                best = (offsets, f1 - size);
            }
        }
    }
    best.0
}

/// Gold label and the model's probabilities (against, neutral, favor) of every example.
pub fn readings(model: &Model, examples: &[Example]) -> Vec<(StanceLabel, [f32; CLASSES])> {
    examples
        .iter()
        .map(|e| (label_of(e.class), model.probabilities(&e.features)))
        .collect()
}

/// Gold and predicted labels of every example.
pub fn predict_all(model: &Model, examples: &[Example]) -> Vec<(StanceLabel, StanceLabel)> {
    examples
        .iter()
        .map(|e| {
            (
                label_of(e.class),
                label_of(argmax(&model.probabilities(&e.features))),
            )
        })
        .collect()
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ClassScores {
    pub precision: f64,
    pub recall: f64,
    pub f1: f64,
    pub support: usize,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Scores {
    /// Macro-F1 over against, neutral and favor.
    pub f1m: f64,
    pub accuracy: f64,
    pub n: usize,
    pub per_class: BTreeMap<&'static str, ClassScores>,
    /// `confusion[gold][predicted]`, in the order against, neutral, favor.
    pub confusion: [[usize; CLASSES]; CLASSES],
}

/// Macro-F1, accuracy and per-class figures of (gold, predicted) pairs.
pub fn scores(pairs: &[(StanceLabel, StanceLabel)]) -> Scores {
    let mut confusion = [[0usize; CLASSES]; CLASSES];
    for (g, p) in pairs {
        confusion[class_of(*g)][class_of(*p)] += 1;
    }
    let mut per_class = BTreeMap::new();
    let mut f1_sum = 0.0;
    for c in 0..CLASSES {
        let tp = confusion[c][c] as f64;
        let predicted: usize = (0..CLASSES).map(|g| confusion[g][c]).sum();
        let support: usize = confusion[c].iter().sum();
        let precision = tp / predicted.max(1) as f64;
        let recall = tp / support.max(1) as f64;
        let f1 = if precision + recall > 0.0 {
            2.0 * precision * recall / (precision + recall)
        } else {
            0.0
        };
        f1_sum += f1;
        per_class.insert(
            label_of(c).as_str(),
            ClassScores {
                precision: round4(precision),
                recall: round4(recall),
                f1: round4(f1),
                support,
            },
        );
    }
    let correct: usize = (0..CLASSES).map(|c| confusion[c][c]).sum();
    Scores {
        f1m: round4(f1_sum / CLASSES as f64),
        accuracy: round4(correct as f64 / pairs.len().max(1) as f64),
        n: pairs.len(),
        per_class,
        confusion,
    }
}

fn round4(x: f64) -> f64 {
    (x * 10_000.0).round() / 10_000.0
}

struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use nlp::stance::classes::{AGAINST, FAVOR, NEUTRAL};

    #[test]
    fn macro_f1_of_known_pairs() {
        use StanceLabel::*;
        let s = scores(&[
            (Favor, Favor),
            (Against, Favor),
            (Neutral, Neutral),
            (Against, Against),
        ]);
        assert_eq!(s.accuracy, 0.75);
        // favor P 0.5 R 1 F 0.667; against P 1 R 0.5 F 0.667; neutral 1.
        assert!((s.f1m - 0.7778).abs() < 1e-3, "{s:?}");
        assert_eq!(s.per_class["against"].support, 2);
    }

    fn toy(feature: u32, class: usize, weight: f32) -> Example {
        let mut features = Features::new(8);
        features.items.push((feature, 1.0));
        features.items.push((0, 1.0));
        Example {
            features,
            class,
            sentence: 0,
            weight,
            soft: None,
        }
    }

    fn sentence(teachers: &[Option<[f32; CLASSES]>]) -> MtscSentence {
        MtscSentence {
            text: "x".into(),
            targets: teachers
                .iter()
                .map(|&teacher| crate::datasets::MtscTarget {
                    start: 0,
                    end: 1,
                    further: Vec::new(),
                    label: StanceLabel::Favor,
                    teacher,
                })
                .collect(),
        }
    }

    #[test]
    fn teacher_options_filter_weight_and_soften() {
        let sentences = [sentence(&[
            Some([0.1, 0.2, 0.7]),
            Some([0.3, 0.3, 0.4]),
            None,
        ])];
        let examples = vec![toy(1, FAVOR, 1.0), toy(2, FAVOR, 1.0), toy(3, FAVOR, 1.0)];
        let opts = TeacherOptions {
            weight: 0.5,
            min_confidence: 0.6,
            soft_mix: 0.5,
        };
        let out = with_teacher(examples, &sentences, &opts);
        // The unsure one (top 0.4) is dropped; the one without teacher keeps its hard label.
        assert_eq!(out.len(), 2);
        assert!(out.iter().all(|e| e.weight == 0.5));
        let q = out[0].soft.unwrap();
        assert!(
            (q[FAVOR] - 0.85).abs() < 1e-6 && (q[AGAINST] - 0.05).abs() < 1e-6,
            "{q:?}"
        );
        assert_eq!(out[1].soft, None);
    }

    #[test]
    fn silver_examples_teach_what_gold_lacks_and_soft_targets_stay_soft() {
        let cfg = TrainConfig {
            bits: 8,
            learning_rate: 0.1,
            ..TrainConfig::default()
        };
        let mut gold = Vec::new();
        for _ in 0..20 {
            gold.push(toy(1, AGAINST, 1.0));
            gold.push(toy(2, NEUTRAL, 1.0));
            gold.push(toy(3, FAVOR, 1.0));
        }
        let probe = toy(4, FAVOR, 1.0).features;
        let without = train(&gold, &cfg, None, |_, _| {}).probabilities(&probe);
        assert!(without[FAVOR] < 0.45, "{without:?}");

        let mut with_silver = gold.clone();
        with_silver.extend((0..20).map(|_| toy(4, FAVOR, 0.5)));
        let with = train(&with_silver, &cfg, None, |_, _| {}).probabilities(&probe);
        assert!(with[FAVOR] > 0.6, "{with:?}");

        // The same silver with a uniform teacher and a full soft mix teaches nothing either way.
        let mut soft = gold.clone();
        soft.extend((0..20).map(|_| Example {
            soft: Some([1.0 / 3.0; CLASSES]),
            ..toy(4, FAVOR, 0.5)
        }));
        let model = train(&soft, &cfg, None, |_, _| {});
        let p = model.probabilities(&probe);
        assert!(p.iter().all(|&x| (x - 1.0 / 3.0).abs() < 0.1), "{p:?}");
    }
}
