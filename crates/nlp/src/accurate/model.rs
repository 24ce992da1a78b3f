//! The accurate mention-stance model: MiniLM encodes a sentence, and each target's reading is a small head over
//! the final hidden states of the target's word pieces (mean-pooled) beside the sentence's `[CLS]` state
//! (TD-BERT style). A marked-target adapter (the committed one, see [`MARKED`]) also marks the target in the
//! input, token type 1 on its word pieces, so each (sentence, target) is a forward pass of its own; an
//! unmarked adapter reads every target of a sentence from one pass.
//!
//! It loads from two parts: the base weights (`model.safetensors`, `tokenizer.json`, `config.json` of
//! all-MiniLM-L6-v2, fetched by `scripts/fetch-minilm.sh`) and the adapter training produced (the fine-tuned
//! top layers, the head and its class offsets, a small safetensors file embedded in the binary), whose
//! tensors replace the base's of the same name.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use candle_core::{DType, Device, Module, Tensor};
use candle_nn::{linear, Linear, VarBuilder};
use tokenizers::Tokenizer;

use super::bert::{softmax, Bert, BertConfig, Packed};
use super::AccurateError;

/// The base files the model reads, all in one directory.
pub const BASE_FILES: [&str; 3] = ["model.safetensors", "tokenizer.json", "config.json"];
/// Names of the head's tensors in the adapter.
pub const HEAD: &str = "stance_head";
pub const OFFSETS: &str = "stance_head.offsets";
/// Present in an adapter trained with the target marked by token type 1 (one pass per target).
pub const MARKED: &str = "stance_head.marked";
/// Word pieces per sentence, `[CLS]` and `[SEP]` included; longer sentences are cut, and a target beyond the
/// cut gets no reading (the caller keeps the fast model's).
pub const DEFAULT_MAX_TOKENS: usize = 128;

/// A sentence and the targets to read in it, each as code-point spans (`end` exclusive) into `text`: the
/// target's mentions in the sentence.
#[derive(Debug, Clone)]
pub struct SentenceTargets {
    pub text: String,
    pub targets: Vec<Vec<(usize, usize)>>,
}

/// A tokenized sentence: word-piece ids and, per target, the indices of its word pieces (None when the
/// target's pieces all fell beyond the length cap).
#[derive(Debug, Clone)]
pub struct Encoded {
    pub ids: Vec<u32>,
    /// Token types: 1 on the word pieces of the marked target, 0 elsewhere (all 0 when unmarked).
    pub types: Vec<u32>,
    pub targets: Vec<Option<Vec<usize>>>,
}

impl Encoded {
    /// One row per target, each with its target's pieces marked by token type 1 (targets cut off by the
    /// length cap are dropped; `owners` says which target each row reads).
    pub fn marked(&self) -> Vec<(usize, Encoded)> {
        self.targets
            .iter()
            .enumerate()
            .filter_map(|(t, pieces)| {
                let pieces = pieces.as_ref()?;
                let mut types = vec![0u32; self.ids.len()];
                for &p in pieces {
                    types[p] = 1;
                }
                Some((
                    t,
                    Encoded {
                        ids: self.ids.clone(),
                        types,
                        targets: vec![Some(pieces.clone())],
                    },
                ))
            })
            .collect()
    }
}

/// Checks that `dir` holds every base file; the error names the first missing one and the setup script.
pub fn check_base_dir(dir: &Path) -> Result<(), AccurateError> {
    for f in BASE_FILES {
        let path = dir.join(f);
        if !path.is_file() {
            return Err(AccurateError::MissingBaseFile { path });
        }
    }
    Ok(())
}

pub struct Tokens {
    tokenizer: Tokenizer,
    sep: u32,
    pub max_tokens: usize,
}

impl Tokens {
    pub fn load(dir: &Path, max_tokens: usize) -> Result<Self, AccurateError> {
        let path = dir.join("tokenizer.json");
        let mut tokenizer = Tokenizer::from_file(&path).map_err(|e| AccurateError::Tokenizer {
            path: path.clone(),
            message: e.to_string(),
        })?;
        // The checkpoint pads every sentence to 128 and truncates there; batches here are padded to their
        // longest sentence instead, and cut by `encode`, which keeps `[SEP]`.
        tokenizer.with_padding(None);
        tokenizer
            .with_truncation(None)
            .map_err(|e| AccurateError::Tokenizer {
                path: path.clone(),
                message: e.to_string(),
            })?;
        let sep = tokenizer
            .token_to_id("[SEP]")
            .ok_or_else(|| AccurateError::Tokenizer {
                path,
                message: "no [SEP] token".into(),
            })?;
        Ok(Self {
            tokenizer,
            sep,
            max_tokens: max_tokens.max(8),
        })
    }

    pub fn encode(&self, s: &SentenceTargets) -> Result<Encoded, AccurateError> {
        let enc = self
            .tokenizer
            .encode_char_offsets(s.text.as_str(), true)
            .map_err(|e| AccurateError::Inference(e.to_string()))?;
        let mut ids = enc.get_ids().to_vec();
        let offsets = enc.get_offsets();
        let specials = enc.get_special_tokens_mask();
        if ids.len() > self.max_tokens {
            ids.truncate(self.max_tokens - 1);
            ids.push(self.sep);
        }
        let last = ids.len() - 1;
        let targets = s
            .targets
            .iter()
            .map(|spans| {
                let pieces: Vec<usize> = (1..last)
                    .filter(|&i| specials[i] == 0)
                    .filter(|&i| {
                        let (a, b) = offsets[i];
                        spans.iter().any(|&(s, e)| a < e && b > s)
                    })
                    .collect();
                (!pieces.is_empty()).then_some(pieces)
            })
            .collect();
        Ok(Encoded {
            types: vec![0; ids.len()],
            ids,
            targets,
        })
    }
}

/// Padded (batch, seq) ids, token types and 0/1 validity of a batch of encoded sentences.
pub fn batch_tensors(
    batch: &[&Encoded],
    device: &Device,
) -> candle_core::Result<(Tensor, Tensor, Tensor)> {
    let len = batch.iter().map(|e| e.ids.len()).max().unwrap_or(1);
    let mut ids = vec![0u32; batch.len() * len];
    let mut types = vec![0u32; batch.len() * len];
    let mut valid = vec![0u32; batch.len() * len];
    for (b, e) in batch.iter().enumerate() {
        ids[b * len..b * len + e.ids.len()].copy_from_slice(&e.ids);
        types[b * len..b * len + e.ids.len()].copy_from_slice(&e.types);
        valid[b * len..b * len + e.ids.len()].fill(1);
    }
    Ok((
        Tensor::from_vec(ids, (batch.len(), len), device)?,
        Tensor::from_vec(types, (batch.len(), len), device)?,
        Tensor::from_vec(valid, (batch.len(), len), device)?,
    ))
}

/// The head's input for every target with pieces in `batch`, in batch then target order: `[CLS]` state
/// and the mean of the target's piece states, side by side, (targets, 2 * hidden).
pub fn target_features(hidden: &Tensor, batch: &[&Encoded]) -> candle_core::Result<Tensor> {
    let (b, s, h) = hidden.dims3()?;
    let flat = hidden.reshape((b * s, h))?;
    let mut pool = Vec::new();
    let mut cls = Vec::new();
    let mut n = 0usize;
    for (bi, e) in batch.iter().enumerate() {
        for pieces in e.targets.iter().flatten() {
            let mut row = vec![0f32; b * s];
            let w = 1.0 / pieces.len() as f32;
            for &p in pieces {
                row[bi * s + p] = w;
            }
            pool.extend(row);
            cls.push((bi * s) as u32);
            n += 1;
        }
    }
    let pool = Tensor::from_vec(pool, (n, b * s), hidden.device())?;
    let cls = Tensor::from_vec(cls, n, hidden.device())?;
    let mean = pool.matmul(&flat)?;
    let cls = flat.index_select(&cls, 0)?;
    Tensor::cat(&[&cls, &mean], 1)
}

/// The stance head: a linear map of the target features to logits of against, neutral, favor.
pub fn load_head(vb: VarBuilder, hidden: usize) -> candle_core::Result<Linear> {
    linear(2 * hidden, 3, vb.pp(HEAD))
}

/// The loaded model, for inference.
pub struct AccurateModel {
    pub bert: Bert,
    pub head: Linear,
    pub tokens: Tokens,
    /// Added to the logits before the softmax; tuned for macro-F1 on the dev sets after training.
    pub offsets: [f32; 3],
    /// Layers the adapter replaced (the first fine-tuned one).
    pub tuned_from: usize,
    /// Each target is read in its own pass with its pieces marked (see [`MARKED`]); else one pass per
    /// sentence serves all its targets.
    pub marked: bool,
    pub packed: Packed,
    device: Device,
}

/// Reads `config.json` of the base directory.
pub fn read_config(dir: &Path) -> Result<BertConfig, AccurateError> {
    let path = dir.join("config.json");
    let text = std::fs::read_to_string(&path).map_err(|source| AccurateError::Io {
        path: path.clone(),
        source,
    })?;
    serde_json::from_str(&text).map_err(|e| AccurateError::BadFile {
        path,
        message: e.to_string(),
    })
}

/// The base checkpoint's tensors, as F32.
pub fn read_base(dir: &Path, device: &Device) -> Result<HashMap<String, Tensor>, AccurateError> {
    let path = dir.join("model.safetensors");
    candle_core::safetensors::load(&path, device).map_err(|e| AccurateError::BadFile {
        path,
        message: e.to_string(),
    })
}

/// The lowest encoder layer an adapter's tensors belong to.
pub fn first_layer(names: impl Iterator<Item = String>) -> Option<usize> {
    names
        .filter_map(|n| {
            n.strip_prefix("encoder.layer.")?
                .split('.')
                .next()?
                .parse::<usize>()
                .ok()
        })
        .min()
}

impl AccurateModel {
    /// Loads the base weights from `base_dir` and the adapter (safetensors bytes) over them.
    pub fn load(base_dir: &Path, adapter: &[u8], max_tokens: usize) -> Result<Self, AccurateError> {
        check_base_dir(base_dir)?;
        let device = Device::Cpu;
        let config = read_config(base_dir)?;
        let mut tensors = read_base(base_dir, &device)?;
        let adapter = candle_core::safetensors::load_buffer(adapter, &device)
            .map_err(|e| AccurateError::Adapter(e.to_string()))?;
        let tuned_from = first_layer(adapter.keys().cloned()).unwrap_or(config.num_hidden_layers);
        let mut offsets = [0f32; 3];
        let mut marked = false;
        for (name, t) in adapter {
            if name == MARKED {
                marked = true;
                continue;
            }
            let t = t
                .to_dtype(DType::F32)
                .map_err(|e| AccurateError::Adapter(e.to_string()))?;
            if name == OFFSETS {
                let v: Vec<f32> = t
                    .to_vec1()
                    .map_err(|e| AccurateError::Adapter(e.to_string()))?;
                if v.len() != 3 {
                    return Err(AccurateError::Adapter("offsets must have 3 values".into()));
                }
                offsets.copy_from_slice(&v);
                continue;
            }
            tensors.insert(name, t);
        }
        if !tensors.contains_key(&format!("{HEAD}.weight")) {
            return Err(AccurateError::Adapter(format!(
                "no {HEAD}.weight: not a stance adapter"
            )));
        }
        let vb = VarBuilder::from_tensors(tensors, DType::F32, &device);
        let bert = Bert::load(vb.clone(), &config).map_err(AccurateError::Candle)?;
        let head = load_head(vb, config.hidden_size).map_err(AccurateError::Candle)?;
        let packed = Packed::new(&bert).map_err(AccurateError::Candle)?;
        Ok(Self {
            packed,
            bert,
            head,
            tokens: Tokens::load(base_dir, max_tokens)?,
            offsets,
            tuned_from,
            marked,
            device,
        })
    }

    /// Probabilities (against, neutral, favor) of every target of every sentence; None for a target cut off
    /// by the length cap. Sentences are run `max_batch` at a time, packed end to end (see [`Packed`]).
    pub fn probabilities(
        &self,
        sentences: &[SentenceTargets],
        max_batch: usize,
    ) -> Result<Vec<Vec<Option<[f32; 3]>>>, AccurateError> {
        let mut out: Vec<Vec<Option<[f32; 3]>>> = sentences
            .iter()
            .map(|s| vec![None; s.targets.len()])
            .collect();
        // Rows to run, each with the (sentence, target) of every reading it gives.
        let mut rows: Vec<(Encoded, Vec<(usize, usize)>)> = Vec::new();
        for (i, s) in sentences.iter().enumerate() {
            let e = self.tokens.encode(s)?;
            if self.marked {
                rows.extend(e.marked().into_iter().map(|(t, m)| (m, vec![(i, t)])));
            } else {
                let owners: Vec<(usize, usize)> = (0..e.targets.len())
                    .filter(|&t| e.targets[t].is_some())
                    .map(|t| (i, t))
                    .collect();
                if !owners.is_empty() {
                    rows.push((e, owners));
                }
            }
        }
        for chunk in rows.chunks(max_batch.max(1)) {
            let batch: Vec<&Encoded> = chunk.iter().map(|(e, _)| e).collect();
            let probs = self.batch_probabilities(&batch)?;
            for ((i, t), p) in chunk.iter().flat_map(|(_, o)| o.iter()).zip(probs) {
                out[*i][*t] = Some(p);
            }
        }
        Ok(out)
    }

    fn batch_probabilities(&self, batch: &[&Encoded]) -> Result<Vec<[f32; 3]>, AccurateError> {
        let run = || -> candle_core::Result<Vec<[f32; 3]>> {
            let lens: Vec<usize> = batch.iter().map(|e| e.ids.len()).collect();
            let ids: Vec<u32> = batch.iter().flat_map(|e| e.ids.iter().copied()).collect();
            let types: Vec<u32> = batch.iter().flat_map(|e| e.types.iter().copied()).collect();
            let keep: Vec<Vec<usize>> = batch.iter().map(|e| head_rows(e)).collect();
            let h = self
                .packed
                .forward(&self.bert, &ids, &types, &lens, Some(&keep))?;
            let logits = self
                .head
                .forward(&kept_target_features(&h, batch, &keep)?)?;
            let offsets = Tensor::new(&self.offsets, &self.device)?;
            let probs = softmax(&logits.broadcast_add(&offsets)?)?;
            Ok(probs
                .to_vec2::<f32>()?
                .into_iter()
                .map(|v| [v[0], v[1], v[2]])
                .collect())
        };
        run().map_err(AccurateError::Candle)
    }
}

/// The positions of a sentence the head reads: `[CLS]` and every target piece, in order.
pub fn head_rows(e: &Encoded) -> Vec<usize> {
    let mut rows: Vec<usize> = std::iter::once(0)
        .chain(e.targets.iter().flatten().flatten().copied())
        .collect();
    rows.sort_unstable();
    rows.dedup();
    rows
}

/// [`target_features`] over the hidden states of the rows `keep` (see [`head_rows`]) of `batch`'s
/// sentences, laid end to end.
pub fn kept_target_features(
    hidden: &Tensor,
    batch: &[&Encoded],
    keep: &[Vec<usize>],
) -> candle_core::Result<Tensor> {
    let (_, h) = hidden.dims2()?;
    let rows = hidden.flatten_all()?.to_vec1::<f32>()?;
    let mut features = Vec::new();
    let mut start = 0;
    for (e, kept) in batch.iter().zip(keep) {
        let row = |p: usize| -> &[f32] {
            let i = kept.binary_search(&p).expect("the head's rows are kept");
            &rows[(start + i) * h..][..h]
        };
        for pieces in e.targets.iter().flatten() {
            features.extend_from_slice(row(0));
            let mut mean = vec![0f32; h];
            for &p in pieces {
                for (m, x) in mean.iter_mut().zip(row(p)) {
                    *m += x;
                }
            }
            let w = 1.0 / pieces.len() as f32;
            features.extend(mean.iter().map(|m| m * w));
        }
        start += kept.len();
    }
    let n = features.len() / (2 * h);
    Tensor::from_vec(features, (n, 2 * h), hidden.device())
}

/// Where the base weights are expected when nothing else is configured.
pub fn default_base_dir() -> PathBuf {
    PathBuf::from(super::DEFAULT_BASE_DIR)
}
