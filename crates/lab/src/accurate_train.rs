//! Fine-tuning the accurate model on NewsMTSC, on the CPU, in minutes rather than hours.
//!
//! The embeddings and the lower layers stay frozen: they run once over every training and dev sentence and
//! their output is cached in memory (a few hundred MB). Only the top `tuned_layers` layers and the head are
//! trained, with AdamW over the cache, for several epochs; after each epoch the dev sets are read and the
//! epoch with the best mean macro-F1 is kept. Then class offsets (added to the logits) are tuned for macro-F1
//! on the pooled dev sets, as the fast model's are. The result is an adapter: the tuned layers' tensors under
//! their base names, the head and the offsets, stored as F16 (offsets F32). Deterministic: the head's
//! initialisation, the batch order and dropout all come from `seed`.

use std::collections::HashMap;
use std::path::Path;

use candle_core::{DType, Device, Module, Tensor, Var, D};
use candle_nn::optim::{AdamW, Optimizer, ParamsAdamW};
use candle_nn::VarBuilder;

use crate::datasets::MtscSentence;
use crate::stance_train::{scores, Scores};
use nlp::accurate::bert::{attention_mask, Bert, Dropout, Layer};
use nlp::accurate::model::{
    batch_tensors, load_head, read_base, read_config, target_features, AccurateModel, Encoded,
    SentenceTargets, Tokens, HEAD, MARKED, OFFSETS,
};
use nlp::accurate::AccurateError;
use nlp::stance::classes::{class_of, label_of};
use nlp::StanceLabel;

#[derive(Debug, Clone, serde::Serialize)]
pub struct TrainConfig {
    /// Top encoder layers fine-tuned; the rest are frozen and cached.
    pub tuned_layers: usize,
    pub epochs: usize,
    /// Sentences per step.
    pub batch: usize,
    /// Peak learning rate of the tuned layers (linear warm-up over the first 10% of steps, then linear decay).
    pub lr: f64,
    /// Peak learning rate of the head.
    pub head_lr: f64,
    pub weight_decay: f64,
    pub dropout: f32,
    /// Class weights are (n / (3 · count))^power: 0 unweighted, 1 fully balanced.
    pub class_weight_power: f32,
    pub max_tokens: usize,
    pub seed: u64,
    /// Mark the target with token type 1 and read each target in its own pass (costlier at inference, as
    /// many passes as targets), instead of one pass per sentence pooled per target.
    pub mark_target: bool,
}

impl Default for TrainConfig {
    fn default() -> Self {
        Self {
            tuned_layers: 2,
            epochs: 4,
            batch: 32,
            lr: 1e-4,
            head_lr: 1e-3,
            weight_decay: 0.01,
            dropout: 0.1,
            class_weight_power: 0.5,
            max_tokens: nlp::accurate::model::DEFAULT_MAX_TOKENS,
            seed: 7,
            mark_target: false,
        }
    }
}

/// What training reports along the way.
pub enum Progress {
    /// Lower layers cached for `done` of `total` sentences.
    Caching { done: usize, total: usize },
    /// A training step.
    Step {
        epoch: usize,
        step: usize,
        steps: usize,
        loss: f32,
    },
    /// Dev macro-F1 per dev set after an epoch (argmax, before offsets).
    Epoch { epoch: usize, dev_f1m: Vec<f64> },
}

/// The targets of NewsMTSC sentences (main and further mentions) and their classes.
pub fn mtsc_targets(sentences: &[MtscSentence]) -> (Vec<SentenceTargets>, Vec<Vec<usize>>) {
    sentences
        .iter()
        .map(|s| {
            let targets = s
                .targets
                .iter()
                .map(|t| {
                    let mut spans = vec![(t.start, t.end)];
                    spans.extend(t.further.iter().copied());
                    spans
                })
                .collect();
            let classes = s.targets.iter().map(|t| class_of(t.label)).collect();
            (
                SentenceTargets {
                    text: s.text.clone(),
                    targets,
                },
                classes,
            )
        })
        .unzip()
}

/// (gold, predicted) pairs of a model over NewsMTSC sentences; a target the length cap cut off is read
/// as neutral.
pub fn predict_mtsc(
    model: &AccurateModel,
    sentences: &[MtscSentence],
    max_batch: usize,
) -> Result<Vec<(StanceLabel, StanceLabel)>, AccurateError> {
    Ok(readings_mtsc(model, sentences, max_batch)?
        .into_iter()
        .map(|(gold, p)| {
            (
                gold,
                p.map_or(StanceLabel::Neutral, |p| label_of(argmax(&p))),
            )
        })
        .collect())
}

/// A target's gold label and the transformer's probabilities (against, neutral, favor); None for a target
/// the token cap cut off.
pub type Reading = (StanceLabel, Option<[f32; 3]>);

/// Gold label and the transformer's probabilities of every target.
pub fn readings_mtsc(
    model: &AccurateModel,
    sentences: &[MtscSentence],
    max_batch: usize,
) -> Result<Vec<Reading>, AccurateError> {
    let (inputs, classes) = mtsc_targets(sentences);
    let probs = model.probabilities(&inputs, max_batch)?;
    Ok(classes
        .iter()
        .zip(&probs)
        .flat_map(|(cs, ps)| cs.iter().zip(ps).map(|(&c, p)| (label_of(c), *p)))
        .collect())
}

fn argmax(p: &[f32; 3]) -> usize {
    let mut best = 0;
    for c in 1..3 {
        if p[c] > p[best] {
            best = c;
        }
    }
    best
}

/// A corpus with its lower-layer output cached: per sentence, (tokens, hidden) at the first tuned layer.
struct Cached {
    encoded: Vec<Encoded>,
    classes: Vec<Vec<usize>>,
    hidden: Vec<Tensor>,
}

// The cache step needs the frozen encoder, the corpus and the progress plumbing; a struct for them would be
// used once.
#[allow(clippy::too_many_arguments)]
fn cache(
    bert: &Bert,
    tokens: &Tokens,
    sentences: &[MtscSentence],
    upto: usize,
    device: &Device,
    progress: &mut dyn FnMut(Progress),
    done: &mut usize,
    total: usize,
    marked: bool,
) -> Result<Cached, AccurateError> {
    let (inputs, sentence_classes) = mtsc_targets(sentences);
    let mut encoded = Vec::new();
    let mut classes = Vec::new();
    for (s, cs) in inputs.iter().zip(sentence_classes) {
        let e = tokens.encode(s)?;
        if marked {
            // One row per target; a target cut off by the length cap is read as neutral, as in inference.
            for (t, m) in e.marked() {
                encoded.push(m);
                classes.push(vec![cs[t]]);
            }
        } else {
            encoded.push(e);
            classes.push(cs);
        }
    }
    let mut order: Vec<usize> = (0..encoded.len()).collect();
    order.sort_by_key(|&i| encoded[i].ids.len());
    let mut hidden: Vec<Option<Tensor>> = vec![None; encoded.len()];
    for chunk in order.chunks(64) {
        let batch: Vec<&Encoded> = chunk.iter().map(|&i| &encoded[i]).collect();
        let (ids, types, valid) = batch_tensors(&batch, device)?;
        let mask = attention_mask(&valid)?;
        let h = bert.layers(&bert.embed(&ids, &types)?, &mask, 0, upto, None)?;
        for (b, &i) in chunk.iter().enumerate() {
            let len = encoded[i].ids.len();
            // A fresh buffer: a view (or `copy`, which clones the whole storage) would keep the batch alive.
            let v: Vec<f32> = h.get(b)?.narrow(0, 0, len)?.flatten_all()?.to_vec1()?;
            let width = v.len() / len;
            hidden[i] = Some(Tensor::from_vec(v, (len, width), device)?);
        }
        *done += chunk.len();
        progress(Progress::Caching {
            done: (*done).min(total),
            total,
        });
    }
    Ok(Cached {
        encoded,
        classes,
        hidden: hidden
            .into_iter()
            .map(|h| h.expect("every sentence cached"))
            .collect(),
    })
}

struct Top {
    layers: Vec<Layer>,
    head: candle_nn::Linear,
}

impl Top {
    /// Logits of every target (with pieces) of sentences `idx` of `c`.
    fn logits(
        &self,
        c: &Cached,
        idx: &[usize],
        mut dropout: Option<&mut Dropout>,
        device: &Device,
    ) -> candle_core::Result<Tensor> {
        let batch: Vec<&Encoded> = idx.iter().map(|&i| &c.encoded[i]).collect();
        let len = batch.iter().map(|e| e.ids.len()).max().unwrap_or(1);
        let padded = idx
            .iter()
            .map(|&i| {
                let h = &c.hidden[i];
                let n = h.dim(0)?;
                if n < len {
                    h.pad_with_zeros(0, 0, len - n)
                } else {
                    Ok(h.clone())
                }
            })
            .collect::<candle_core::Result<Vec<_>>>()?;
        let mut h = Tensor::stack(&padded, 0)?;
        let (_, _, valid) = batch_tensors(&batch, device)?;
        let mask = attention_mask(&valid)?;
        for layer in &self.layers {
            h = layer.forward(&h, &mask, dropout.as_deref_mut())?;
        }
        let mut f = target_features(&h, &batch)?;
        if let Some(d) = dropout {
            f = d.apply(&f)?;
        }
        self.head.forward(&f)
    }
}

/// Trains on `train`, selects the epoch on `devs`, tunes the offsets there, and writes the adapter to `out`.
/// Returns the figures of the saved adapter (reloaded over the base weights) on each dev set.
pub fn train(
    base_dir: &Path,
    train: &[MtscSentence],
    devs: &[Vec<MtscSentence>],
    cfg: &TrainConfig,
    out: &Path,
    progress: &mut dyn FnMut(Progress),
) -> Result<Vec<Scores>, AccurateError> {
    nlp::accurate::model::check_base_dir(base_dir)?;
    let device = Device::Cpu;
    let config = read_config(base_dir)?;
    let n_layers = config.num_hidden_layers;
    let tuned = cfg.tuned_layers.clamp(1, n_layers);
    let first = n_layers - tuned;
    let base = read_base(base_dir, &device)?;
    let tokens = Tokens::load(base_dir, cfg.max_tokens)?;
    let frozen = Bert::load(
        VarBuilder::from_tensors(base.clone(), DType::F32, &device),
        &config,
    )?;

    // Lower layers once over everything: one row per sentence, or per target when targets are marked.
    let rows = |d: &[MtscSentence]| {
        if cfg.mark_target {
            d.iter().map(|s| s.targets.len()).sum()
        } else {
            d.len()
        }
    };
    let total = rows(train) + devs.iter().map(|d| rows(d)).sum::<usize>();
    let mut done = 0;
    let mut cache_of = |d: &[MtscSentence]| {
        cache(
            &frozen,
            &tokens,
            d,
            first,
            &device,
            progress,
            &mut done,
            total,
            cfg.mark_target,
        )
    };
    let train_c = cache_of(train)?;
    let dev_c = devs
        .iter()
        .map(|d| cache_of(d))
        .collect::<Result<Vec<_>, _>>()?;
    drop(frozen);

    // The tuned layers start from the base weights; the head from small seeded values.
    let mut rng = Dropout::new(cfg.seed, cfg.dropout);
    let prefixes: Vec<String> = (first..n_layers)
        .map(|i| format!("encoder.layer.{i}."))
        .collect();
    let mut vars: HashMap<String, Var> = HashMap::new();
    for (name, t) in &base {
        if prefixes.iter().any(|p| name.starts_with(p)) {
            vars.insert(name.clone(), Var::from_tensor(t)?);
        }
    }
    let h2 = 2 * config.hidden_size;
    let bound = (1.0 / h2 as f32).sqrt();
    let w: Vec<f32> = (0..3 * h2)
        .map(|_| (rng.next_f32() * 2.0 - 1.0) * bound)
        .collect();
    vars.insert(
        format!("{HEAD}.weight"),
        Var::from_tensor(&Tensor::from_vec(w, (3, h2), &device)?)?,
    );
    vars.insert(
        format!("{HEAD}.bias"),
        Var::from_tensor(&Tensor::zeros(3, DType::F32, &device)?)?,
    );
    let tensors: HashMap<String, Tensor> = vars
        .iter()
        .map(|(k, v)| (k.clone(), v.as_tensor().clone()))
        .collect();
    let vb = VarBuilder::from_tensors(tensors, DType::F32, &device);
    let top = Top {
        layers: (first..n_layers)
            .map(|i| Layer::load(vb.pp(format!("encoder.layer.{i}")), &config))
            .collect::<candle_core::Result<Vec<_>>>()?,
        head: load_head(vb, config.hidden_size)?,
    };
    let mut head_vars: Vec<Var> = Vec::new();
    let mut layer_vars: Vec<Var> = Vec::new();
    for (k, v) in &vars {
        if k.starts_with(HEAD) {
            head_vars.push(v.clone());
        } else {
            layer_vars.push(v.clone());
        }
    }
    let params = |lr: f64| ParamsAdamW {
        lr,
        weight_decay: cfg.weight_decay,
        ..Default::default()
    };
    let mut opt_layers = AdamW::new(layer_vars, params(cfg.lr))?;
    let mut opt_head = AdamW::new(head_vars, params(cfg.head_lr))?;

    // Class weights.
    let mut counts = [0usize; 3];
    for (e, cs) in train_c.encoded.iter().zip(&train_c.classes) {
        for (p, &c) in e.targets.iter().zip(cs) {
            if p.is_some() {
                counts[c] += 1;
            }
        }
    }
    let n: usize = counts.iter().sum();
    let class_w: Vec<f32> = counts
        .iter()
        .map(|&c| (n as f32 / (3.0 * c.max(1) as f32)).powf(cfg.class_weight_power))
        .collect();

    // Batches of similar length, in a seeded order per epoch.
    let mut order: Vec<usize> = (0..train_c.encoded.len()).collect();
    order.sort_by_key(|&i| train_c.encoded[i].ids.len());
    let mut batches: Vec<Vec<usize>> = order
        .chunks(cfg.batch.max(1))
        .map(<[usize]>::to_vec)
        .collect();
    let steps_per_epoch = batches.len();
    let total_steps = (steps_per_epoch * cfg.epochs).max(1);
    let warmup = (total_steps / 10).max(1);
    let mut step_no = 0usize;
    let mut best: Option<(f64, HashMap<String, Tensor>)> = None;
    for epoch in 1..=cfg.epochs {
        for i in (1..batches.len()).rev() {
            let j = (rng.next_f32() * (i + 1) as f32) as usize;
            batches.swap(i, j.min(i));
        }
        for (s, idx) in batches.iter().enumerate() {
            let labels: Vec<u32> = idx
                .iter()
                .flat_map(|&i| {
                    train_c.encoded[i]
                        .targets
                        .iter()
                        .zip(&train_c.classes[i])
                        .filter(|(p, _)| p.is_some())
                        .map(|(_, &c)| c as u32)
                })
                .collect();
            if labels.is_empty() {
                continue;
            }
            let weights: Vec<f32> = labels.iter().map(|&c| class_w[c as usize]).collect();
            let frac = if step_no < warmup {
                (step_no + 1) as f64 / warmup as f64
            } else {
                (total_steps - step_no) as f64 / (total_steps - warmup).max(1) as f64
            };
            opt_layers.set_learning_rate(cfg.lr * frac);
            opt_head.set_learning_rate(cfg.head_lr * frac);
            let logits = top.logits(&train_c, idx, Some(&mut rng), &device)?;
            let k = labels.len();
            let labels = Tensor::from_vec(labels, (k, 1), &device)?;
            let weights = Tensor::from_vec(weights, k, &device)?;
            let logp = candle_nn::ops::log_softmax(&logits, D::Minus1)?
                .gather(&labels, 1)?
                .squeeze(1)?;
            let loss = ((logp * &weights)?.sum_all()?.neg()?
                / f64::from(weights.sum_all()?.to_scalar::<f32>()?))?;
            let grads = loss.backward()?;
            opt_layers.step(&grads)?;
            opt_head.step(&grads)?;
            step_no += 1;
            progress(Progress::Step {
                epoch,
                step: s + 1,
                steps: steps_per_epoch,
                loss: loss.to_scalar::<f32>()?,
            });
        }
        let mut f1s = Vec::new();
        for d in &dev_c {
            let probs = dev_probs(&top, d, &device)?;
            f1s.push(scores(&pairs(d, &probs, [0.0; 3])).f1m);
        }
        let mean = f1s.iter().sum::<f64>() / f1s.len().max(1) as f64;
        progress(Progress::Epoch {
            epoch,
            dev_f1m: f1s,
        });
        if best.as_ref().is_none_or(|(b, _)| mean > *b) {
            let snapshot = vars
                .iter()
                .map(|(k, v)| Ok((k.clone(), v.as_tensor().copy()?)))
                .collect::<candle_core::Result<HashMap<_, _>>>()?;
            best = Some((mean, snapshot));
        }
    }
    let Some((_, best)) = best else {
        return Err(AccurateError::Inference("no epochs".into()));
    };
    for (k, v) in &vars {
        v.set(&best[k])?;
    }

    // Offsets for macro-F1 on the pooled dev sets.
    let dev_probs_all = dev_c
        .iter()
        .map(|d| dev_probs(&top, d, &device))
        .collect::<Result<Vec<_>, _>>()?;
    let offsets = tune_offsets(&dev_c, &dev_probs_all);

    // The adapter: tuned layers and head at F16, offsets at F32.
    let mut adapter: HashMap<String, Tensor> = HashMap::new();
    for (k, v) in &best {
        adapter.insert(k.clone(), v.to_dtype(DType::F16)?);
    }
    adapter.insert(OFFSETS.to_string(), Tensor::new(&offsets, &device)?);
    if cfg.mark_target {
        adapter.insert(MARKED.to_string(), Tensor::new(&[1f32], &device)?);
    }
    if let Some(dir) = out.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|source| AccurateError::Io {
            path: dir.to_path_buf(),
            source,
        })?;
    }
    candle_core::safetensors::save(&adapter, out)?;

    // Figures of the adapter as saved.
    let bytes = std::fs::read(out).map_err(|source| AccurateError::Io {
        path: out.to_path_buf(),
        source,
    })?;
    let model = AccurateModel::load(base_dir, &bytes, cfg.max_tokens)?;
    devs.iter()
        .map(|d| Ok(scores(&predict_mtsc(&model, d, 64)?)))
        .collect()
}

fn dev_probs(top: &Top, c: &Cached, device: &Device) -> Result<Vec<Vec<f32>>, AccurateError> {
    let mut order: Vec<usize> = (0..c.encoded.len()).collect();
    order.sort_by_key(|&i| c.encoded[i].ids.len());
    // Per sentence, per target with pieces, the logits.
    let mut out: Vec<Vec<f32>> = vec![Vec::new(); c.encoded.len()];
    for chunk in order.chunks(64) {
        let logits: Vec<Vec<f32>> = top.logits(c, chunk, None, device)?.to_vec2()?;
        let mut k = 0;
        for &i in chunk {
            for p in &c.encoded[i].targets {
                if p.is_some() {
                    out[i].extend_from_slice(&logits[k]);
                    k += 1;
                }
            }
        }
    }
    Ok(out)
}

/// (gold, predicted) of a cached corpus from per-sentence flattened logits, with `offsets` added.
fn pairs(c: &Cached, logits: &[Vec<f32>], offsets: [f32; 3]) -> Vec<(StanceLabel, StanceLabel)> {
    let mut out = Vec::new();
    for ((e, classes), row) in c.encoded.iter().zip(&c.classes).zip(logits) {
        let mut k = 0;
        for (p, &gold) in e.targets.iter().zip(classes) {
            let pred = if p.is_some() {
                let l = &row[3 * k..3 * k + 3];
                k += 1;
                let z = [l[0] + offsets[0], l[1] + offsets[1], l[2] + offsets[2]];
                label_of(argmax(&z))
            } else {
                StanceLabel::Neutral
            };
            out.push((label_of(gold), pred));
        }
    }
    out
}

/// Grid search of offsets of against and favor (neutral stays 0) for the mean macro-F1 over the dev sets.
fn tune_offsets(devs: &[Cached], logits: &[Vec<Vec<f32>>]) -> [f32; 3] {
    let mut best = ([0f32; 3], f64::NEG_INFINITY);
    for a in -10..=10 {
        for f in -10..=10 {
            let o = [a as f32 * 0.1, 0.0, f as f32 * 0.1];
            let mean = devs
                .iter()
                .zip(logits)
                .map(|(d, l)| scores(&pairs(d, l, o)).f1m)
                .sum::<f64>()
                / devs.len().max(1) as f64;
            // Prefer smaller offsets on ties, so the search does not drift on noise.
            let size = o[0].abs() + o[2].abs();
            let best_size = best.0[0].abs() + best.0[2].abs();
            if mean > best.1 + 1e-9 || ((mean - best.1).abs() <= 1e-9 && size < best_size) {
                best = (o, mean);
            }
        }
    }
    best.0
}
