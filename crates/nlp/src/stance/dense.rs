//! The dense, non-linear half of the fast stance model: static word vectors averaged around the target, read by
//! a one-hidden-layer network whose class scores add to the linear model's.
//!
//! The linear model over hashed features knows only the words it saw in NewsMTSC's 8,700 training targets;
//! a word it never met with a label ("lambasted", "hailed") weighs nothing. Word vectors carry what a word is
//! like from elsewhere: here, the input word-piece embeddings of the accurate model's MiniLM, averaged over each
//! word's pieces and reduced to a few dozen dimensions by PCA, for the words of the training files and every
//! whole-word piece of MiniLM's vocabulary. The averages of the vectors left and right of the target, over its
//! clause and over the sentence are mixed by a small hidden layer (a window mean alone cannot say *whom* a
//! word is about; the interactions between the windows can, in part).
//!
//! The table is derived once, at training time, from the base weights (`train stance --dense-dim`), and stored
//! in the model file (8-bit, per-dimension scales), so the fast model never needs `models/base` at run time.

// Matrix arithmetic over small fixed arrays reads clearer with indices than with zipped iterators.
#![allow(clippy::needless_range_loop)]

use std::collections::HashMap;

use super::classes::CLASSES;

type Words = rustc_hash::FxBuildHasher;

/// Errors of reading the dense part of a model file, or of deriving the word vectors from the base weights.
#[derive(Debug, thiserror::Error)]
pub enum DenseError {
    #[error("dense stance model part truncated or corrupt")]
    Corrupt,
    #[error("word vectors from the base weights: {0}")]
    Base(String),
}

/// Lowercased word forms (as [`super::features::Context`] sees them) and their reduced vectors.
#[derive(Debug, Clone, PartialEq)]
pub struct WordVectors {
    pub dim: usize,
    index: HashMap<Box<str>, u32, Words>,
    /// `dim` numbers per word, in index order.
    data: Vec<f32>,
}

impl WordVectors {
    /// A table from (word, vector) pairs; every vector has `dim` numbers.
    pub fn new(dim: usize, words: Vec<(String, Vec<f32>)>) -> Self {
        let mut index = HashMap::with_capacity_and_hasher(words.len(), Words::default());
        let mut data = Vec::with_capacity(words.len() * dim);
        for (w, v) in words {
            debug_assert_eq!(v.len(), dim);
            if index.contains_key(w.as_str()) {
                continue;
            }
            index.insert(w.into_boxed_str(), (data.len() / dim) as u32);
            data.extend_from_slice(&v);
        }
        WordVectors { dim, index, data }
    }

    pub fn len(&self) -> usize {
        self.index.len()
    }

    pub fn is_empty(&self) -> bool {
        self.index.is_empty()
    }

    /// Row index of a word form, if it has a vector.
    pub fn id(&self, form: &str) -> Option<u32> {
        self.index.get(form).copied()
    }

    pub fn row(&self, id: u32) -> &[f32] {
        let at = id as usize * self.dim;
        &self.data[at..at + self.dim]
    }

    /// Words sorted, then 8-bit rows with one scale per dimension: the file stays a few MB and the rounding
    /// (1/254 of each dimension's range) is far below what the averages and the network can resolve.
    pub fn write(&self, out: &mut Vec<u8>) {
        let mut words: Vec<(&str, u32)> = self.index.iter().map(|(w, &i)| (&**w, i)).collect();
        words.sort_unstable();
        out.extend_from_slice(&(self.dim as u32).to_le_bytes());
        out.extend_from_slice(&(words.len() as u32).to_le_bytes());
        let mut scales = vec![0f32; self.dim];
        for row in self.data.chunks(self.dim.max(1)) {
            for (s, x) in scales.iter_mut().zip(row) {
                *s = s.max(x.abs());
            }
        }
        for s in &mut scales {
            *s = s.max(1e-9) / 127.0;
        }
        put_f32s(out, &scales);
        for (w, _) in &words {
            put_word(out, w);
        }
        for (_, i) in &words {
            for (d, x) in self.row(*i).iter().enumerate() {
                out.push((x / scales[d]).round().clamp(-127.0, 127.0) as i8 as u8);
            }
        }
    }

    pub fn read(r: &mut Cursor<'_>) -> Result<Self, DenseError> {
        let dim = r.u32()? as usize;
        let n = r.u32()? as usize;
        if dim == 0 || dim > 4096 || n > 10_000_000 {
            return Err(DenseError::Corrupt);
        }
        let scales = r.f32s(dim)?;
        let mut words = Vec::with_capacity(n);
        for _ in 0..n {
            words.push(r.word()?.to_string());
        }
        let mut rows = Vec::with_capacity(n);
        for w in words {
            let raw = r.take(dim)?;
            let v: Vec<f32> = raw
                .iter()
                .zip(&scales)
                .map(|(&b, s)| f32::from(b as i8) * s)
                .collect();
            rows.push((w, v));
        }
        Ok(WordVectors::new(dim, rows))
    }
}

/// Largest hidden layer a model file may have (inference keeps it on the stack).
pub const MAX_HIDDEN: usize = 256;

/// One hidden layer (ReLU) from the dense input to class scores.
#[derive(Debug, Clone, PartialEq)]
pub struct Mlp {
    pub input: usize,
    pub hidden: usize,
    /// `w1[h * input + i]`.
    pub w1: Vec<f32>,
    pub b1: Vec<f32>,
    /// `w2[c * hidden + h]`.
    pub w2: Vec<f32>,
    pub b2: [f32; CLASSES],
}

impl Mlp {
    /// Small random weights (Glorot-uniform from a seeded generator, so training stays deterministic).
    pub fn init(input: usize, hidden: usize, seed: u64) -> Self {
        let mut rng = seed.max(1);
        let mut next = move || {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            (rng >> 11) as f32 / (1u64 << 53) as f32 * 2.0 - 1.0
        };
        let a1 = (6.0 / (input + hidden) as f32).sqrt();
        let a2 = (6.0 / (hidden + CLASSES) as f32).sqrt();
        Mlp {
            input,
            hidden,
            w1: (0..input * hidden).map(|_| next() * a1).collect(),
            b1: vec![0.0; hidden],
            w2: (0..hidden * CLASSES).map(|_| next() * a2).collect(),
            b2: [0.0; CLASSES],
        }
    }

    /// Class scores of `x`; `h` receives the hidden activations (training reuses them for the gradient).
    pub fn forward(&self, x: &[f32], h: &mut Vec<f32>) -> [f32; CLASSES] {
        h.clear();
        for j in 0..self.hidden {
            let row = &self.w1[j * self.input..(j + 1) * self.input];
            h.push((self.b1[j] + dot(row, x)).max(0.0));
        }
        let mut z = self.b2;
        for c in 0..CLASSES {
            let row = &self.w2[c * self.hidden..(c + 1) * self.hidden];
            z[c] += row.iter().zip(h.iter()).map(|(w, v)| w * v).sum::<f32>();
        }
        z
    }

    /// Class scores of `x` without allocating (inference; the hidden layer on the stack). The first layer is
    /// most of the stance step's time, so it skips the spans of `x` that are all zeros (blocks with no word,
    /// a target that is nobody's agent) and uses AVX2/FMA where the CPU has them.
    pub fn scores(&self, x: &[f32]) -> [f32; CLASSES] {
        let mut h = [0f32; MAX_HIDDEN];
        let hidden = self.hidden.min(MAX_HIDDEN);
        // Non-zero runs of `x` in chunks of 32 numbers.
        let mut runs: [(usize, usize); 64] = [(0, 0); 64];
        let mut n_runs = 0;
        let mut at = 0;
        while at < x.len() {
            let end = (at + 32).min(x.len());
            if x[at..end].iter().any(|&v| v != 0.0) {
                if n_runs > 0 && runs[n_runs - 1].1 == at {
                    runs[n_runs - 1].1 = end;
                } else if n_runs < runs.len() {
                    runs[n_runs] = (at, end);
                    n_runs += 1;
                } else {
                    runs[n_runs - 1].1 = end;
                }
            }
            at = end;
        }
        let fast = fast_dot_available();
        for j in 0..hidden {
            let row = &self.w1[j * self.input..(j + 1) * self.input];
            let mut a = self.b1[j];
            for &(s, e) in &runs[..n_runs] {
                a += if fast {
                    // SAFETY: the CPU has AVX2 and FMA (checked by `fast_dot_available`).
                    unsafe { dot_avx2(&row[s..e], &x[s..e]) }
                } else {
                    dot(&row[s..e], &x[s..e])
                };
            }
            h[j] = a.max(0.0);
        }
        let mut z = self.b2;
        for c in 0..CLASSES {
            z[c] += dot(
                &self.w2[c * self.hidden..(c + 1) * self.hidden],
                &h[..hidden],
            );
        }
        z
    }

    /// Every parameter in one flat order (w1, b1, w2, b2), for the optimiser and for averaging.
    pub fn params_mut(&mut self) -> [&mut [f32]; 4] {
        [&mut self.w1, &mut self.b1, &mut self.w2, &mut self.b2]
    }

    pub fn write(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&(self.input as u32).to_le_bytes());
        out.extend_from_slice(&(self.hidden as u32).to_le_bytes());
        put_f32s(
            out,
            self.w1
                .iter()
                .chain(&self.b1)
                .chain(&self.w2)
                .chain(&self.b2),
        );
    }

    pub fn read(r: &mut Cursor<'_>) -> Result<Self, DenseError> {
        let input = r.u32()? as usize;
        let hidden = r.u32()? as usize;
        if input == 0 || hidden == 0 || hidden > MAX_HIDDEN || input * hidden > 1 << 24 {
            return Err(DenseError::Corrupt);
        }
        let w1 = r.f32s(input * hidden)?;
        let b1 = r.f32s(hidden)?;
        let w2 = r.f32s(hidden * CLASSES)?;
        let b2 = r.f32s(CLASSES)?;
        Ok(Mlp {
            input,
            hidden,
            w1,
            b1,
            w2,
            b2: [b2[0], b2[1], b2[2]],
        })
    }
}

/// Dot product in eight independent lanes, which the compiler turns into SIMD (a plain iterator sum is
/// one serial chain of additions, since float addition may not be reordered): the first layer is most of the
/// network's time per target.
#[inline(always)]
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    let n = a.len().min(b.len());
    let (a, b) = (&a[..n], &b[..n]);
    let mut lanes = [0f32; 8];
    let chunks = n / 8;
    for k in 0..chunks {
        let (x, y) = (&a[k * 8..k * 8 + 8], &b[k * 8..k * 8 + 8]);
        for l in 0..8 {
            lanes[l] += x[l] * y[l];
        }
    }
    let mut sum: f32 = lanes.iter().sum();
    for k in chunks * 8..n {
        sum += a[k] * b[k];
    }
    sum
}

/// Whether [`dot_avx2`] may run (checked once).
fn fast_dot_available() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        static FAST: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
        *FAST.get_or_init(|| {
            std::arch::is_x86_feature_detected!("avx2")
                && std::arch::is_x86_feature_detected!("fma")
        })
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// [`dot`] compiled for AVX2/FMA (eight lanes in one register).
///
/// # Safety
/// The CPU must have AVX2 and FMA.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn dot_avx2(a: &[f32], b: &[f32]) -> f32 {
    dot(a, b)
}

#[cfg(not(target_arch = "x86_64"))]
unsafe fn dot_avx2(a: &[f32], b: &[f32]) -> f32 {
    dot(a, b)
}

/// Where [`super::features::Context::dense`] gets each word's numbers from: per block, `width` numbers per
/// word. The raw word vectors give every block the same row ([`WordVectors`], training); the run-time form
/// gives each block the word's vector already multiplied by that block's part of the first layer
/// ([`Projected`]).
pub trait Rows {
    /// Numbers per block.
    fn width(&self) -> usize;
    /// Row index of a word form, if it has one.
    fn id(&self, form: &str) -> Option<u32>;
    /// `out += w × (the row of word `id` as block `block` reads it)`.
    fn add(&self, id: u32, block: usize, w: f32, out: &mut [f32]);
}

impl Rows for WordVectors {
    fn width(&self) -> usize {
        self.dim
    }
    fn id(&self, form: &str) -> Option<u32> {
        WordVectors::id(self, form)
    }
    #[inline]
    fn add(&self, id: u32, _block: usize, w: f32, out: &mut [f32]) {
        for (o, x) in out.iter_mut().zip(self.row(id)) {
            *o += w * x;
        }
    }
}

/// The dense part in its run-time form. The first layer is linear in each block's average, and an average
/// of word vectors goes through a linear map as the average of the mapped vectors: W_b · mean(v) =
/// mean(W_b · v). So each word's vector is multiplied by each block's columns of the first layer once, when
/// the model is saved, and the stance step only sums `hidden` numbers per word and block: its cost no
/// longer depends on the vectors' dimension. The projections are 8-bit with one scale per (block, hidden
/// unit) times one per (word, block), so that the rows of frequent words (small after the frequency
/// weighting) keep their precision; the lexicon sums keep their float weights.
#[derive(Debug, Clone, PartialEq)]
pub struct Projected {
    pub hidden: usize,
    index: HashMap<Box<str>, u32, Words>,
    /// `BLOCKS × hidden` numbers per word in index order, block-major.
    data: Vec<i8>,
    /// Scale of each (block, hidden unit), `scales[b * hidden + j]`.
    scales: Vec<f32>,
    /// Scale of each (word, block), `row_scales[id * BLOCKS + b]`.
    row_scales: Vec<f32>,
    /// First-layer weights of the lexicon sums, `lexical[j * LEXICAL + l]`.
    lexical: Vec<f32>,
    b1: Vec<f32>,
    /// `w2[c * hidden + j]`.
    w2: Vec<f32>,
    b2: [f32; CLASSES],
}

impl Projected {
    /// The run-time form of `dense` (words in sorted order, so the bytes do not depend on hashing).
    pub fn new(dense: &Dense) -> Self {
        let (v, mlp) = (&dense.vectors, &dense.mlp);
        let (dim, hidden, input) = (v.dim, mlp.hidden, mlp.input);
        assert_eq!(
            input,
            input_len(dim),
            "network input and word vectors disagree"
        );
        let mut words: Vec<(&str, u32)> = v.index.iter().map(|(w, &i)| (&**w, i)).collect();
        words.sort_unstable();
        let width = BLOCKS * hidden;
        let mut full = vec![0f32; words.len() * width];
        for (k, &(_, i)) in words.iter().enumerate() {
            let row = v.row(i);
            for b in 0..BLOCKS {
                for j in 0..hidden {
                    let w = &mlp.w1[j * input + b * dim..j * input + (b + 1) * dim];
                    full[k * width + b * hidden + j] = dot(w, row);
                }
            }
        }
        let mut scales = vec![0f32; width];
        for row in full.chunks(width) {
            for (s, x) in scales.iter_mut().zip(row) {
                *s = s.max(x.abs());
            }
        }
        scales.iter_mut().for_each(|s| *s = s.max(1e-9));
        let mut row_scales = Vec::with_capacity(words.len() * BLOCKS);
        let mut data = Vec::with_capacity(full.len());
        for row in full.chunks(hidden) {
            let cols = &scales[(row_scales.len() % BLOCKS) * hidden..][..hidden];
            let top = row
                .iter()
                .zip(cols)
                .fold(0f32, |m, (x, s)| m.max((x / s).abs()));
            let r = top.max(1e-9) / 127.0;
            row_scales.push(r);
            data.extend(
                row.iter()
                    .zip(cols)
                    .map(|(x, s)| (x / s / r).round().clamp(-127.0, 127.0) as i8),
            );
        }
        let mut index = HashMap::with_capacity_and_hasher(words.len(), Words::default());
        for (k, (w, _)) in words.iter().enumerate() {
            index.insert(Box::from(*w), k as u32);
        }
        let lexical = (0..hidden)
            .flat_map(|j| {
                mlp.w1[j * input + BLOCKS * dim..(j + 1) * input]
                    .iter()
                    .copied()
            })
            .collect();
        Projected {
            hidden,
            index,
            data,
            scales,
            row_scales,
            lexical,
            b1: mlp.b1.clone(),
            w2: mlp.w2.clone(),
            b2: mlp.b2,
        }
    }

    pub fn len(&self) -> usize {
        self.index.len()
    }

    pub fn is_empty(&self) -> bool {
        self.index.is_empty()
    }

    /// Length of the input [`Projected::scores`] reads: the block sums, then the lexicon sums.
    pub fn input_len(&self) -> usize {
        BLOCKS * self.hidden + LEXICAL
    }

    /// Class scores from the per-block sums of projections (unscaled, as [`Rows::add`] left them, each block
    /// already divided by its weight total) and the lexicon sums.
    pub fn scores(&self, x: &[f32]) -> [f32; CLASSES] {
        let hidden = self.hidden.min(MAX_HIDDEN);
        let mut h = [0f32; MAX_HIDDEN];
        h[..hidden].copy_from_slice(&self.b1[..hidden]);
        for b in 0..BLOCKS {
            let at = b * self.hidden;
            for ((a, s), v) in h[..hidden]
                .iter_mut()
                .zip(&self.scales[at..at + hidden])
                .zip(&x[at..at + hidden])
            {
                *a += s * v;
            }
        }
        let lex = &x[BLOCKS * self.hidden..];
        for j in 0..hidden {
            h[j] = (h[j] + dot(&self.lexical[j * LEXICAL..(j + 1) * LEXICAL], lex)).max(0.0);
        }
        let mut z = self.b2;
        for c in 0..CLASSES {
            z[c] += dot(
                &self.w2[c * self.hidden..(c + 1) * self.hidden],
                &h[..hidden],
            );
        }
        z
    }

    pub fn write(&self, out: &mut Vec<u8>) {
        let mut words: Vec<(&str, u32)> = self.index.iter().map(|(w, &i)| (&**w, i)).collect();
        words.sort_unstable_by_key(|&(_, i)| i);
        out.extend_from_slice(&(self.hidden as u32).to_le_bytes());
        out.extend_from_slice(&(words.len() as u32).to_le_bytes());
        for (w, _) in &words {
            put_word(out, w);
        }
        out.extend(self.data.iter().map(|&q| q as u8));
        put_f32s(
            out,
            self.row_scales
                .iter()
                .chain(&self.scales)
                .chain(&self.lexical)
                .chain(&self.b1)
                .chain(&self.w2)
                .chain(&self.b2),
        );
    }

    pub fn read(r: &mut Cursor<'_>) -> Result<Self, DenseError> {
        let hidden = r.u32()? as usize;
        let n = r.u32()? as usize;
        if hidden == 0 || hidden > MAX_HIDDEN || n > 10_000_000 {
            return Err(DenseError::Corrupt);
        }
        let mut index = HashMap::with_capacity_and_hasher(n, Words::default());
        for k in 0..n {
            index.insert(Box::from(r.word()?), k as u32);
        }
        if index.len() != n {
            return Err(DenseError::Corrupt);
        }
        let width = BLOCKS * hidden;
        let mut data = crate::tables::table::<i8>(n * width);
        for (q, &b) in data.iter_mut().zip(r.take(n * width)?) {
            *q = b as i8;
        }
        let row_scales = r.f32s(n * BLOCKS)?;
        let scales = r.f32s(width)?;
        let lexical = r.f32s(hidden * LEXICAL)?;
        let b1 = r.f32s(hidden)?;
        let w2 = r.f32s(hidden * CLASSES)?;
        let b2 = r.f32s(CLASSES)?;
        Ok(Projected {
            hidden,
            index,
            data,
            scales,
            row_scales,
            lexical,
            b1,
            w2,
            b2: [b2[0], b2[1], b2[2]],
        })
    }
}

impl Rows for Projected {
    fn width(&self) -> usize {
        self.hidden
    }
    fn id(&self, form: &str) -> Option<u32> {
        self.index.get(form).copied()
    }
    #[inline]
    fn add(&self, id: u32, block: usize, w: f32, out: &mut [f32]) {
        let row = id as usize * BLOCKS + block;
        let w = w * self.row_scales[row];
        let at = row * self.hidden;
        for (o, &q) in out.iter_mut().zip(&self.data[at..at + self.hidden]) {
            *o += w * f32::from(q);
        }
    }
}

/// The dense part of a model: as trained (word vectors and the network), or in its run-time form.
#[derive(Debug, Clone, PartialEq)]
pub enum DensePart {
    Direct(Dense),
    Projected(Projected),
}

/// The word rows a model's dense input is computed from (see [`Rows`]).
#[derive(Debug, Clone, Copy)]
pub enum DenseRows<'a> {
    Vectors(&'a WordVectors),
    Projected(&'a Projected),
}

impl DensePart {
    pub fn rows(&self) -> DenseRows<'_> {
        match self {
            DensePart::Direct(d) => DenseRows::Vectors(&d.vectors),
            DensePart::Projected(p) => DenseRows::Projected(p),
        }
    }

    /// Length of the dense input this part reads.
    pub fn input_len(&self) -> usize {
        match self {
            DensePart::Direct(d) => d.mlp.input,
            DensePart::Projected(p) => p.input_len(),
        }
    }

    /// Class scores of a dense input of [`DensePart::input_len`] numbers.
    pub fn scores(&self, x: &[f32]) -> [f32; CLASSES] {
        match self {
            DensePart::Direct(d) => d.mlp.scores(x),
            DensePart::Projected(p) => p.scores(x),
        }
    }

    /// The run-time form.
    pub fn projected(&self) -> Self {
        match self {
            DensePart::Direct(d) => DensePart::Projected(Projected::new(d)),
            DensePart::Projected(p) => DensePart::Projected(p.clone()),
        }
    }

    /// A tag byte (1 direct, 2 projected), then the part.
    pub fn write(&self, out: &mut Vec<u8>) {
        match self {
            DensePart::Direct(d) => {
                out.push(1);
                d.write(out);
            }
            DensePart::Projected(p) => {
                out.push(2);
                p.write(out);
            }
        }
    }

    /// After the tag byte `tag` (see [`DensePart::write`]).
    pub fn read(tag: u8, r: &mut Cursor<'_>) -> Result<Self, DenseError> {
        match tag {
            1 => Ok(DensePart::Direct(Dense::read(r)?)),
            2 => Ok(DensePart::Projected(Projected::read(r)?)),
            _ => Err(DenseError::Corrupt),
        }
    }
}

/// The word vectors and the network that reads their averages.
#[derive(Debug, Clone, PartialEq)]
pub struct Dense {
    pub vectors: WordVectors,
    pub mlp: Mlp,
}

impl Dense {
    pub fn write(&self, out: &mut Vec<u8>) {
        self.vectors.write(out);
        self.mlp.write(out);
    }

    pub fn read(r: &mut Cursor<'_>) -> Result<Self, DenseError> {
        let vectors = WordVectors::read(r)?;
        let mlp = Mlp::read(r)?;
        if mlp.input != input_len(vectors.dim) {
            return Err(DenseError::Corrupt);
        }
        Ok(Dense { vectors, mlp })
    }
}

/// Blocks of the dense input, each `dim` numbers: the words within six of the target left of it (nearer ones
/// weigh more) and right of it, the two words either side alone, the sentence, the target's clauses, and the
/// word the target is agent of and the one it is patient of (see
/// [`super::features::Context::verb_after`]); target words are left out of all.
pub const BLOCKS: usize = 8;
/// Lexicon sums after the blocks: positive and negative valence left and right, near (4 words) and far, in
/// and outside the target's clause, and the distance-decayed net valence. The network can then weigh a
/// window's meaning by how the lexicon reads it.
pub const LEXICAL: usize = 13;

/// Length of the dense input for word vectors of `dim` numbers.
pub fn input_len(dim: usize) -> usize {
    BLOCKS * dim + LEXICAL
}

/// A byte cursor over a decompressed model file.
pub struct Cursor<'a> {
    pub buf: &'a [u8],
    pub at: usize,
}

impl<'a> Cursor<'a> {
    pub fn take(&mut self, n: usize) -> Result<&'a [u8], DenseError> {
        let s = self
            .buf
            .get(self.at..self.at + n)
            .ok_or(DenseError::Corrupt)?;
        self.at += n;
        Ok(s)
    }
    pub fn u32(&mut self) -> Result<u32, DenseError> {
        Ok(u32::from_le_bytes(
            self.take(4)?.try_into().map_err(|_| DenseError::Corrupt)?,
        ))
    }
    pub fn f32(&mut self) -> Result<f32, DenseError> {
        Ok(f32::from_le_bytes(
            self.take(4)?.try_into().map_err(|_| DenseError::Corrupt)?,
        ))
    }
    /// `n` numbers as [`put_f32s`] wrote them.
    pub fn f32s(&mut self, n: usize) -> Result<Vec<f32>, DenseError> {
        (0..n).map(|_| self.f32()).collect()
    }
    /// A word as [`put_word`] wrote it.
    pub fn word(&mut self) -> Result<&'a str, DenseError> {
        let len = self.take(1)?[0] as usize;
        std::str::from_utf8(self.take(len)?).map_err(|_| DenseError::Corrupt)
    }
}

/// Numbers as little-endian f32s, read back by [`Cursor::f32s`].
fn put_f32s<'a>(out: &mut Vec<u8>, xs: impl IntoIterator<Item = &'a f32>) {
    for x in xs {
        out.extend_from_slice(&x.to_le_bytes());
    }
}

/// A word as its length in one byte, then its bytes (at most 255), read back by [`Cursor::word`].
fn put_word(out: &mut Vec<u8>, w: &str) {
    out.push(w.len().min(255) as u8);
    out.extend_from_slice(&w.as_bytes()[..w.len().min(255)]);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vectors_and_network_round_trip() {
        let v = WordVectors::new(
            2,
            vec![
                ("good".into(), vec![1.0, -0.5]),
                ("bad".into(), vec![-1.0, 0.25]),
            ],
        );
        let dense = Dense {
            mlp: Mlp::init(input_len(2), 3, 7),
            vectors: v,
        };
        let mut bytes = Vec::new();
        dense.write(&mut bytes);
        let back = Dense::read(&mut Cursor { buf: &bytes, at: 0 }).unwrap();
        assert_eq!(back.mlp, dense.mlp);
        let good = back.vectors.row(back.vectors.id("good").unwrap());
        assert!(
            (good[0] - 1.0).abs() < 0.01 && (good[1] + 0.5).abs() < 0.01,
            "{good:?}"
        );
        assert!(back.vectors.id("ugly").is_none());
    }
}
