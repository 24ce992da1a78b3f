//! The trained entity recogniser: a two-pass averaged structured perceptron over hashed features, decoded with
//! a BILOU-constrained Viterbi.
//!
//! It works on a *document*: tokens (their normalised text) and the sentence ranges over them. Pass one tags
//! every sentence from local features (the word, its shape and affixes, its neighbours, knowledge-base
//! gazetteer hits, how the document and the training corpus capitalise the word). Pass two sees the same
//! features plus what pass one concluded about other occurrences of the same word in the document, which is how
//! a name stays consistently typed across an article ("Mr Kinkel ... Kinkel said"). Features are hashed into a
//! fixed-size weight table, so the model is one flat array of weights per pass plus a small word prior, and
//! tagging allocates little and touches no I/O. [`train`] builds models, [`conll`] reads and scores CoNLL-2003.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use crate::tables;

pub mod features;
pub mod gazetteer;
pub mod input;
pub mod labels;

pub use gazetteer::Gazetteer;
pub use input::TaggerInput;
use labels::{allowed, may_end};
pub use labels::{labels_to_spans, spans_to_labels, NerSpan, NerType, N_LABELS};

/// One pass's weights: a hashed feature table (`rows` × [`N_LABELS`]) and label transitions.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Weights {
    /// Row-major `[row][label]`.
    pub table: Vec<f32>,
    /// `[prev + 1][cur]`, row 0 being the sentence start.
    pub trans: Vec<f32>,
}

impl Weights {
    pub fn zeros(bits: u8) -> Self {
        Weights {
            table: tables::table((1usize << bits) * N_LABELS),
            trans: vec![0.0; (N_LABELS + 1) * N_LABELS],
        }
    }

    /// Adds each feature row to the emission scores of its token.
    pub fn emissions(&self, feats: &[u32], offsets: &[u32], out: &mut Vec<[f32; N_LABELS]>) {
        out.clear();
        for w in offsets.windows(2) {
            let mut acc = [0f32; N_LABELS];
            for &f in &feats[w[0] as usize..w[1] as usize] {
                let row = &self.table[f as usize * N_LABELS..f as usize * N_LABELS + N_LABELS];
                for (a, r) in acc.iter_mut().zip(row) {
                    *a += r;
                }
            }
            out.push(acc);
        }
    }

    /// Transitions with the BILOU constraints folded in (`-inf` where a transition is not allowed), so the
    /// Viterbi inner loop is one add and one compare.
    fn masked_transitions(&self) -> [[f32; N_LABELS]; N_LABELS + 1] {
        let mut m = [[f32::NEG_INFINITY; N_LABELS]; N_LABELS + 1];
        for (p, row) in m.iter_mut().enumerate() {
            let prev = p.checked_sub(1).map(|x| x as u8);
            for (y, v) in row.iter_mut().enumerate() {
                if allowed(prev, y as u8) {
                    *v = self.trans[p * N_LABELS + y];
                }
            }
        }
        m
    }

    /// Best BILOU-valid label sequence for one sentence's emission scores.
    pub fn viterbi(&self, em: &[[f32; N_LABELS]], out: &mut Vec<u8>) {
        self.viterbi_with(&self.masked_transitions(), em, out);
    }

    fn viterbi_with(
        &self,
        trans: &[[f32; N_LABELS]; N_LABELS + 1],
        em: &[[f32; N_LABELS]],
        out: &mut Vec<u8>,
    ) {
        out.clear();
        let n = em.len();
        if n == 0 {
            return;
        }
        let neg = f32::NEG_INFINITY;
        let mut back = vec![[0u8; N_LABELS]; n];
        let mut prev = [neg; N_LABELS];
        for (y, p) in prev.iter_mut().enumerate() {
            *p = em[0][y] + trans[0][y];
        }
        for i in 1..n {
            let mut cur = [neg; N_LABELS];
            for y in 0..N_LABELS {
                let mut best = neg;
                let mut arg = 0u8;
                for (p, &sp) in prev.iter().enumerate() {
                    let s = sp + trans[p + 1][y];
                    if s > best {
                        best = s;
                        arg = p as u8;
                    }
                }
                cur[y] = best + em[i][y];
                back[i][y] = arg;
            }
            prev = cur;
        }
        let mut last = 0u8;
        let mut best = neg;
        for (y, &s) in prev.iter().enumerate() {
            if may_end(y as u8) && s > best {
                best = s;
                last = y as u8;
            }
        }
        out.resize(n, 0);
        out[n - 1] = last;
        for i in (1..n).rev() {
            out[i - 1] = back[i][out[i] as usize];
        }
    }
}

/// A trained recogniser, as stored in `models/ner.bin` (postcard, zstd-compressed).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NerModel {
    /// Bumped whenever the features change meaning, so an old file is refused instead of silently misread.
    format: u32,
    bits: u8,
    /// Training-corpus capitalisation prior per lowercase word hash (see `features::prior_bucket`).
    prior: Vec<(u64, u8)>,
    #[serde(with = "serde_bytes")]
    pass1: Vec<u8>,
    #[serde(with = "serde_bytes")]
    pass2: Vec<u8>,
    #[serde(with = "serde_bytes")]
    trans1: Vec<u8>,
    #[serde(with = "serde_bytes")]
    trans2: Vec<u8>,
    /// What produced the model: the command line, dev F1, date; shown by `eval ner`.
    pub provenance: String,
}

/// Why a model file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum NerError {
    #[error("the NER model is not valid zstd/postcard data ({0}); retrain it with `stancewatch train ner`")]
    Corrupt(String),
    #[error(
        "the NER model has format {found}, this build reads format {expected}; retrain it with `stancewatch train ner`"
    )]
    Format { found: u32, expected: u32 },
    #[error("the NER model's tables have the wrong size; retrain it with `stancewatch train ner`")]
    Shape,
    #[error("CoNLL input line {line}: {message}")]
    Conll { line: usize, message: String },
    #[error("nothing to train on: the training file has no tagged sentences")]
    Empty,
}

const FORMAT: u32 = 1;

fn f32s_to_bytes(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

fn bytes_to_f32s(b: &[u8]) -> Vec<f32> {
    b.chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect()
}

/// The model ready to tag: weights unpacked, gazetteer built from the knowledge base.
pub struct Tagger {
    bits: u8,
    prior: HashMap<u64, u8>,
    pass1: Weights,
    pass2: Weights,
    gazetteer: Gazetteer,
    pub provenance: String,
}

impl std::fmt::Debug for Tagger {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tagger")
            .field("bits", &self.bits)
            .field("provenance", &self.provenance)
            .finish_non_exhaustive()
    }
}

impl NerModel {
    pub fn new(
        bits: u8,
        prior: HashMap<u64, u8>,
        pass1: &Weights,
        pass2: &Weights,
        provenance: String,
    ) -> Self {
        let mut prior: Vec<(u64, u8)> = prior.into_iter().collect();
        prior.sort_unstable();
        NerModel {
            format: FORMAT,
            bits,
            prior,
            pass1: f32s_to_bytes(&pass1.table),
            pass2: f32s_to_bytes(&pass2.table),
            trans1: f32s_to_bytes(&pass1.trans),
            trans2: f32s_to_bytes(&pass2.trans),
            provenance,
        }
    }

    /// The compressed file contents.
    pub fn to_bytes(&self) -> Result<Vec<u8>, NerError> {
        let raw = postcard::to_allocvec(self).map_err(|e| NerError::Corrupt(e.to_string()))?;
        zstd::bulk::compress(&raw, 12).map_err(|e| NerError::Corrupt(e.to_string()))
    }

    pub fn from_bytes(bytes: &[u8]) -> Result<Self, NerError> {
        let raw = zstd::stream::decode_all(bytes).map_err(|e| NerError::Corrupt(e.to_string()))?;
        let model: NerModel =
            postcard::from_bytes(&raw).map_err(|e| NerError::Corrupt(e.to_string()))?;
        if model.format != FORMAT {
            return Err(NerError::Format {
                found: model.format,
                expected: FORMAT,
            });
        }
        Ok(model)
    }

    pub fn into_tagger(self, gazetteer: Gazetteer) -> Result<Tagger, NerError> {
        let rows = (1usize << self.bits) * N_LABELS;
        let weights = |table: &[u8], trans: &[u8]| -> Result<Weights, NerError> {
            let f32s = std::mem::size_of::<f32>();
            if table.len() != rows * f32s || trans.len() != (N_LABELS + 1) * N_LABELS * f32s {
                return Err(NerError::Shape);
            }
            let mut w = Weights {
                table: tables::table(rows),
                trans: bytes_to_f32s(trans),
            };
            for (x, b) in w.table.iter_mut().zip(table.chunks_exact(f32s)) {
                *x = f32::from_le_bytes([b[0], b[1], b[2], b[3]]);
            }
            Ok(w)
        };
        Ok(Tagger {
            bits: self.bits,
            prior: self.prior.into_iter().collect(),
            pass1: weights(&self.pass1, &self.trans1)?,
            pass2: weights(&self.pass2, &self.trans2)?,
            gazetteer,
            provenance: self.provenance,
        })
    }
}

/// The model committed under `models/`, compiled into the binary.
const EMBEDDED: &[u8] = include_bytes!(repo_file!("models/ner.bin"));

impl Tagger {
    /// The tagger of the model embedded at build time, with gazetteer features from `kb`.
    pub fn embedded(kb: &crate::kb::KnowledgeBase) -> Result<Tagger, NerError> {
        NerModel::from_bytes(EMBEDDED)?.into_tagger(Gazetteer::from_kb(kb))
    }
}

/// Reusable buffers for tagging, so a worker thread does not reallocate per document.
#[derive(Default)]
struct Scratch {
    feats: Vec<u32>,
    offsets: Vec<u32>,
    em: Vec<[f32; N_LABELS]>,
    labels: Vec<u8>,
}

impl Tagger {
    /// The training corpus writes this word lowercase nearly always (away from sentence starts), so a
    /// capitalised occurrence at a sentence start is most likely just that.
    pub fn usually_lowercase(&self, word: &str) -> bool {
        self.prior
            .get(&input::str_hash(&features::lowercase(word)))
            .is_some_and(|&b| b == 1)
    }

    /// The entities of one document, as token spans in document order.
    pub fn tag(&self, input: &TaggerInput<'_>) -> Vec<NerSpan> {
        let base = features::BaseFeatures::new(input, &self.gazetteer, &self.prior);
        let mut s = Scratch::default();
        let first = self.run_pass(&self.pass1, &base, input, None, &mut s);
        let second = self.run_pass(&self.pass2, &base, input, Some(&first), &mut s);
        labels_to_spans(&second, 0)
    }

    fn run_pass(
        &self,
        weights: &Weights,
        base: &features::BaseFeatures,
        input: &TaggerInput<'_>,
        first: Option<&[u8]>,
        s: &mut Scratch,
    ) -> Vec<u8> {
        let stacked = first.map(|f| features::Stacked::new(base, f));
        let trans = weights.masked_transitions();
        let mut all = vec![0u8; input.len()];
        for sent in input.sentences() {
            features::extract(
                base,
                sent.clone(),
                stacked.as_ref(),
                self.bits,
                &mut s.feats,
                &mut s.offsets,
            );
            weights.emissions(&s.feats, &s.offsets, &mut s.em);
            weights.viterbi_with(&trans, &s.em, &mut s.labels);
            all[sent.clone()].copy_from_slice(&s.labels);
        }
        all
    }
}

#[cfg(test)]
mod tests {
    use super::labels::{label, B, I};
    use super::*;

    #[test]
    fn bilou_round_trip_and_constraints() {
        let spans = vec![
            NerSpan {
                start: 0,
                end: 2,
                ty: NerType::Per,
            },
            NerSpan {
                start: 2,
                end: 3,
                ty: NerType::Loc,
            },
            NerSpan {
                start: 4,
                end: 7,
                ty: NerType::Org,
            },
        ];
        let labels = spans_to_labels(&spans, 8);
        assert_eq!(labels_to_spans(&labels, 0), spans);
        for w in labels.windows(2) {
            assert!(allowed(Some(w[0]), w[1]));
        }
        assert!(!allowed(None, label(NerType::Per, I)));
        assert!(!allowed(Some(label(NerType::Per, B)), 0));
        assert!(input::check_sentences(&[0..3, 3..8], 8));
        assert!(!input::check_sentences(&[0..3, 4..8], 8));
    }
}
