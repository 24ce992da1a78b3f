//! A BERT encoder (embeddings and transformer layers) over candle, with the layers callable one at a time.
//!
//! candle-transformers' `BertModel` runs all layers in one call and keeps its layer forward private; training
//! here freezes the lower layers, runs them once over the corpus and caches their output, then trains only the
//! top layers on the cache, so the encoder must be callable from layer `k` on. The tensor names are those of
//! Hugging Face's BERT without the `bert.` prefix (`embeddings.word_embeddings.weight`,
//! `encoder.layer.3.attention.self.query.weight`, ...), as all-MiniLM-L6-v2's `model.safetensors` has them.
//! Dropout is applied only when a [`Dropout`] source is passed, with its own seeded generator, so training is
//! deterministic.

use candle_core::{DType, Module, Result, Tensor, D};
use candle_nn::{embedding, layer_norm, linear, Embedding, LayerNorm, Linear, VarBuilder};
use serde::Deserialize;

/// The fields of the checkpoint's `config.json` the encoder needs.
#[derive(Debug, Clone, Deserialize)]
pub struct BertConfig {
    pub vocab_size: usize,
    pub hidden_size: usize,
    pub num_hidden_layers: usize,
    pub num_attention_heads: usize,
    pub intermediate_size: usize,
    pub max_position_embeddings: usize,
    pub type_vocab_size: usize,
    pub layer_norm_eps: f64,
    #[serde(default)]
    pub hidden_act: Option<String>,
}

/// A deterministic source of dropout masks (xorshift64*), so that a training run can be repeated exactly.
pub struct Dropout {
    state: u64,
    pub p: f32,
}

impl Dropout {
    pub fn new(seed: u64, p: f32) -> Self {
        Self {
            state: seed.max(1),
            p,
        }
    }

    /// Uniform in [0, 1).
    pub fn next_f32(&mut self) -> f32 {
        self.state ^= self.state >> 12;
        self.state ^= self.state << 25;
        self.state ^= self.state >> 27;
        let x = self.state.wrapping_mul(0x2545_f491_4f6c_dd1d);
        (x >> 40) as f32 / (1u64 << 24) as f32
    }

    /// Zeroes each element with probability `p` and scales the rest by 1 / (1 - p).
    pub fn apply(&mut self, xs: &Tensor) -> Result<Tensor> {
        if self.p <= 0.0 {
            return Ok(xs.clone());
        }
        let keep = 1.0 / (1.0 - self.p);
        let n = xs.elem_count();
        let mask: Vec<f32> = (0..n)
            .map(|_| if self.next_f32() < self.p { 0.0 } else { keep })
            .collect();
        let mask = Tensor::from_vec(mask, xs.shape(), xs.device())?;
        xs.mul(&mask)
    }
}

struct Embeddings {
    word: Embedding,
    position: Embedding,
    token_type: Embedding,
    norm: LayerNorm,
}

/// One transformer layer: self-attention and feed-forward, each with a residual connection and layer norm.
pub struct Layer {
    query: Linear,
    key: Linear,
    value: Linear,
    attention_out: Linear,
    attention_norm: LayerNorm,
    intermediate: Linear,
    output: Linear,
    output_norm: LayerNorm,
    heads: usize,
    eps: f32,
}

impl Layer {
    pub fn load(vb: VarBuilder, c: &BertConfig) -> Result<Self> {
        let h = c.hidden_size;
        let att = vb.pp("attention");
        Ok(Self {
            query: linear(h, h, att.pp("self").pp("query"))?,
            key: linear(h, h, att.pp("self").pp("key"))?,
            value: linear(h, h, att.pp("self").pp("value"))?,
            attention_out: linear(h, h, att.pp("output").pp("dense"))?,
            attention_norm: layer_norm(h, c.layer_norm_eps, att.pp("output").pp("LayerNorm"))?,
            intermediate: linear(h, c.intermediate_size, vb.pp("intermediate").pp("dense"))?,
            output: linear(c.intermediate_size, h, vb.pp("output").pp("dense"))?,
            output_norm: layer_norm(h, c.layer_norm_eps, vb.pp("output").pp("LayerNorm"))?,
            heads: c.num_attention_heads,
            eps: c.layer_norm_eps as f32,
        })
    }

    /// `xs` is (batch, seq, hidden); `mask` is the additive attention mask, (batch, 1, 1, seq).
    pub fn forward(
        &self,
        xs: &Tensor,
        mask: &Tensor,
        mut dropout: Option<&mut Dropout>,
    ) -> Result<Tensor> {
        // candle's fused layer norm and last-dimension softmax have no backward pass: gradients would stop
        // at them and only the head would learn. Training (dropout given) uses the composed versions.
        let train = dropout.is_some();
        let norm = |ln: &LayerNorm, x: &Tensor| -> Result<Tensor> {
            if train {
                candle_nn::ops::layer_norm_slow(
                    x,
                    ln.weight(),
                    ln.bias().expect("BERT norms have a bias"),
                    self.eps,
                )
            } else {
                ln.forward(x)
            }
        };
        let (b, s, h) = xs.dims3()?;
        let d = h / self.heads;
        let split = |t: Tensor| -> Result<Tensor> {
            t.reshape((b, s, self.heads, d))?
                .transpose(1, 2)?
                .contiguous()
        };
        let q = split(self.query.forward(xs)?)?;
        let k = split(self.key.forward(xs)?)?;
        let v = split(self.value.forward(xs)?)?;
        let scores = (q.matmul(&k.t()?)? / (d as f64).sqrt())?.broadcast_add(mask)?;
        let probs = if train {
            candle_nn::ops::softmax(&scores, D::Minus1)?
        } else {
            candle_nn::ops::softmax_last_dim(&scores)?
        };
        let ctx = probs
            .matmul(&v)?
            .transpose(1, 2)?
            .contiguous()?
            .reshape((b, s, h))?;
        let mut att = self.attention_out.forward(&ctx)?;
        if let Some(dr) = dropout.as_deref_mut() {
            att = dr.apply(&att)?;
        }
        let att = norm(&self.attention_norm, &(att + xs)?)?;
        let mid = self.intermediate.forward(&att)?.gelu_erf()?;
        let mut out = self.output.forward(&mid)?;
        if let Some(dr) = dropout {
            out = dr.apply(&out)?;
        }
        norm(&self.output_norm, &(out + att)?)
    }
}

/// The encoder: embeddings and `num_hidden_layers` layers.
pub struct Bert {
    embeddings: Embeddings,
    pub layers: Vec<Layer>,
    pub config: BertConfig,
}

impl Bert {
    pub fn load(vb: VarBuilder, config: &BertConfig) -> Result<Self> {
        let c = config;
        let e = vb.pp("embeddings");
        let embeddings = Embeddings {
            word: embedding(c.vocab_size, c.hidden_size, e.pp("word_embeddings"))?,
            position: embedding(
                c.max_position_embeddings,
                c.hidden_size,
                e.pp("position_embeddings"),
            )?,
            token_type: embedding(
                c.type_vocab_size,
                c.hidden_size,
                e.pp("token_type_embeddings"),
            )?,
            norm: layer_norm(c.hidden_size, c.layer_norm_eps, e.pp("LayerNorm"))?,
        };
        let layers = (0..c.num_hidden_layers)
            .map(|i| Layer::load(vb.pp(format!("encoder.layer.{i}")), c))
            .collect::<Result<Vec<_>>>()?;
        Ok(Self {
            embeddings,
            layers,
            config: config.clone(),
        })
    }

    /// Embeddings of (batch, seq) token ids and token types.
    pub fn embed(&self, ids: &Tensor, types: &Tensor) -> Result<Tensor> {
        let (_, s) = ids.dims2()?;
        let positions = Tensor::arange(0u32, s as u32, ids.device())?;
        let x = self
            .embeddings
            .word
            .forward(ids)?
            .add(&self.embeddings.token_type.forward(types)?)?
            .broadcast_add(&self.embeddings.position.forward(&positions)?)?;
        self.embeddings.norm.forward(&x)
    }

    /// Runs layers `from..to` over hidden states `xs`.
    pub fn layers(
        &self,
        xs: &Tensor,
        mask: &Tensor,
        from: usize,
        to: usize,
        mut dropout: Option<&mut Dropout>,
    ) -> Result<Tensor> {
        let mut h = xs.clone();
        for layer in &self.layers[from..to] {
            h = layer.forward(&h, mask, dropout.as_deref_mut())?;
        }
        Ok(h)
    }
}

/// The additive attention mask for (batch, seq) 0/1 `valid` flags: 0 where attended, a large negative
/// number on padding, shaped (batch, 1, 1, seq) to broadcast over heads and query positions.
pub fn attention_mask(valid: &Tensor) -> Result<Tensor> {
    let (b, s) = valid.dims2()?;
    let valid = valid.to_dtype(DType::F32)?;
    ((valid - 1.0)? * 10_000.0)?.reshape((b, 1, 1, s))
}

/// Softmax over the last dimension, re-exported for the head.
pub fn softmax(xs: &Tensor) -> Result<Tensor> {
    candle_nn::ops::softmax(xs, D::Minus1)
}

/// Inference over a batch of sentences laid end to end, (tokens, hidden), without padding.
///
/// Sentences in a batch differ in length, and padding them to the longest made about 40% of the rows the
/// linear layers multiplied padding on the example articles. Only attention needs to know where a sentence
/// ends, so it runs per sentence over the packed rows ([`attend`]); everything else is per token. Query, key
/// and value are one matrix product. Candle runs only the matrix products (on its gemm thread pool); biases,
/// GELU, residuals and layer norms are fused kernels here ([`BiasGelu`], [`ResidualNorm`]), because candle's
/// element-wise ops on tensors this size go to its barrier pool, whose worker then spins for the better part
/// of a millisecond after each one, on a core the next matrix product needs. No gradients flow here; training
/// keeps [`Bert::layers`].
pub struct Packed {
    layers: Vec<PackedLayer>,
    embed_norm: ResidualNorm,
}

struct PackedLayer {
    /// The query, key and value weights stacked, transposed: (hidden, 3 * hidden).
    qkv: Tensor,
    qkv_bias: Vec<f32>,
    heads: usize,
    attention_out: Tensor,
    attention_norm: ResidualNorm,
    intermediate: Tensor,
    gelu: BiasGelu,
    output: Tensor,
    output_norm: ResidualNorm,
}

fn values(t: &Tensor) -> Result<Vec<f32>> {
    t.flatten_all()?.to_vec1::<f32>()
}

fn bias_of(l: &Linear) -> Result<Vec<f32>> {
    values(l.bias().expect("BERT linear maps have a bias"))
}

impl Packed {
    pub fn new(bert: &Bert) -> Result<Self> {
        let norm = |bias: Option<&Linear>, ln: &LayerNorm, eps: f32| -> Result<ResidualNorm> {
            Ok(ResidualNorm {
                bias: bias.map(bias_of).transpose()?,
                gamma: values(ln.weight())?,
                beta: values(ln.bias().expect("BERT norms have a bias"))?,
                eps,
            })
        };
        let eps = bert.config.layer_norm_eps as f32;
        let layers = bert
            .layers
            .iter()
            .map(|l| {
                let w = Tensor::cat(&[l.query.weight(), l.key.weight(), l.value.weight()], 0)?;
                let mut qkv_bias = bias_of(&l.query)?;
                qkv_bias.extend(bias_of(&l.key)?);
                qkv_bias.extend(bias_of(&l.value)?);
                Ok(PackedLayer {
                    qkv: w.t()?,
                    qkv_bias,
                    heads: l.heads,
                    attention_out: l.attention_out.weight().t()?,
                    attention_norm: norm(Some(&l.attention_out), &l.attention_norm, l.eps)?,
                    intermediate: l.intermediate.weight().t()?,
                    gelu: BiasGelu {
                        bias: bias_of(&l.intermediate)?,
                    },
                    output: l.output.weight().t()?,
                    output_norm: norm(Some(&l.output), &l.output_norm, l.eps)?,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Self {
            layers,
            embed_norm: norm(None, &bert.embeddings.norm, eps)?,
        })
    }

    /// Final hidden states of the sentences whose ids and token types are concatenated in `ids` and
    /// `types`, `lens[i]` tokens each: of the positions `keep[i]` of each sentence (in order, sentence by
    /// sentence), or of every token when `keep` is None.
    ///
    /// The last layer computes only the kept rows: the head reads `[CLS]` and the targets' pieces, a few of
    /// a sentence's ~35, and keys and values are all that layer needs of the others.
    pub fn forward(
        &self,
        bert: &Bert,
        ids: &[u32],
        types: &[u32],
        lens: &[usize],
        keep: Option<&[Vec<usize>]>,
    ) -> Result<Tensor> {
        let device = bert.embeddings.word.embeddings().device();
        let n = ids.len();
        let positions: Vec<u32> = lens.iter().flat_map(|&s| 0..s as u32).collect();
        let e = &bert.embeddings;
        let gather = |table: &Embedding, ids: &[u32]| -> Result<Tensor> {
            table.forward(&Tensor::from_slice(ids, n, device)?)
        };
        let word = gather(&e.word, ids)?;
        let others = (gather(&e.position, &positions)? + gather(&e.token_type, types)?)?;
        let mut h = word.apply_op2_no_bwd(&others, &self.embed_norm)?;
        let all: Vec<Vec<usize>> = lens.iter().map(|&s| (0..s).collect()).collect();
        let last = self.layers.len().saturating_sub(1);
        for (i, l) in self.layers.iter().enumerate() {
            let queries = match keep {
                Some(keep) if i == last => keep,
                _ => &all[..],
            };
            let ctx = attend(&h.matmul(&l.qkv)?, &l.qkv_bias, lens, l.heads, queries)?;
            let residual = if queries.as_ptr() == all.as_ptr() {
                h.clone()
            } else {
                let mut rows = Vec::new();
                let mut start = 0u32;
                for (&s, q) in lens.iter().zip(queries) {
                    rows.extend(q.iter().map(|&p| start + p as u32));
                    start += s as u32;
                }
                let rows_len = rows.len();
                h.index_select(&Tensor::from_vec(rows, rows_len, device)?, 0)?
            };
            let att = ctx
                .matmul(&l.attention_out)?
                .apply_op2_no_bwd(&residual, &l.attention_norm)?;
            let mid = att.matmul(&l.intermediate)?.apply_op1_no_bwd(&l.gelu)?;
            h = mid
                .matmul(&l.output)?
                .apply_op2_no_bwd(&att, &l.output_norm)?;
        }
        Ok(h)
    }
}

/// Scaled dot-product attention of packed (tokens, 3 * hidden) query|key|value rows (before their `bias`),
/// each sentence over itself only. Plain loops: at ~35 tokens a sentence this is a few percent of a layer's
/// work, and per sentence and head candle calls would cost more in dispatch than in arithmetic.
fn attend(
    qkv: &Tensor,
    bias: &[f32],
    lens: &[usize],
    heads: usize,
    queries: &[Vec<usize>],
) -> Result<Tensor> {
    let (_, h3) = qkv.dims2()?;
    let mut rows = values(qkv)?;
    for row in rows.chunks_exact_mut(h3) {
        add_assign(row, bias);
    }
    let h = h3 / 3;
    let n_out: usize = queries.iter().map(Vec::len).sum();
    let mut ctx = vec![0f32; n_out * h];
    // Two halves of about equal work on two threads: between matrix products the gemm threads are idle,
    // and this would otherwise run on one core.
    let work: usize = lens.iter().zip(queries).map(|(s, q)| s * q.len()).sum();
    let (mut split, mut acc) = (0, 0);
    while split < lens.len() && 2 * acc < work {
        acc += lens[split] * queries[split].len();
        split += 1;
    }
    let tokens: usize = lens[..split].iter().sum();
    let outs: usize = queries[..split].iter().map(Vec::len).sum();
    let (rows_a, rows_b) = rows.split_at(tokens * h3);
    let (ctx_a, ctx_b) = ctx.split_at_mut(outs * h);
    let run = |lens: &[usize], queries: &[Vec<usize>], rows: &[f32], ctx: &mut [f32]| {
        let mut scores = vec![0f32; lens.iter().copied().max().unwrap_or(0)];
        let (mut start, mut out) = (0, 0);
        for (&s, q) in lens.iter().zip(queries) {
            let sentence = &rows[start * h3..(start + s) * h3];
            let dst = &mut ctx[out * h..(out + q.len()) * h];
            attend_sentence(sentence, q, dst, &mut scores[..s], h, heads);
            start += s;
            out += q.len();
        }
    };
    if split == lens.len() {
        run(lens, queries, rows_a, ctx_a);
    } else {
        std::thread::scope(|scope| {
            scope.spawn(|| run(&lens[split..], &queries[split..], rows_b, ctx_b));
            run(&lens[..split], &queries[..split], rows_a, ctx_a);
        });
    }
    Tensor::from_vec(ctx, (n_out, h), qkv.device())
}

/// Whether the fused AVX2/FMA kernels can run on this CPU (detected once, then cached by std).
#[cfg(target_arch = "x86_64")]
fn avx2_fma() -> bool {
    std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
}

/// Attention of one sentence's rows, for the query positions `queries`, into one output row each.
fn attend_sentence(
    rows: &[f32],
    queries: &[usize],
    out: &mut [f32],
    scores: &mut [f32],
    h: usize,
    heads: usize,
) {
    #[cfg(target_arch = "x86_64")]
    if avx2_fma() {
        // SAFETY: the CPU has the features the function is compiled for.
        return unsafe { attend_sentence_avx2(rows, queries, out, scores, h, heads) };
    }
    attend_sentence_any(rows, queries, out, scores, h, heads)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn attend_sentence_avx2(
    rows: &[f32],
    queries: &[usize],
    out: &mut [f32],
    scores: &mut [f32],
    h: usize,
    heads: usize,
) {
    attend_sentence_any(rows, queries, out, scores, h, heads)
}

/// Inlined into the AVX2 copy above, so the same loops compile to wider vectors there; the build targets
/// baseline x86-64.
#[inline(always)]
fn attend_sentence_any(
    rows: &[f32],
    queries: &[usize],
    out: &mut [f32],
    scores: &mut [f32],
    h: usize,
    heads: usize,
) {
    let h3 = 3 * h;
    let d = h / heads;
    let scale = 1.0 / (d as f32).sqrt();
    for head in 0..heads {
        let col = head * d;
        for (&i, o) in queries.iter().zip(out.chunks_exact_mut(h)) {
            let q = &rows[i * h3 + col..][..d];
            let mut max = f32::NEG_INFINITY;
            for (j, score) in scores.iter_mut().enumerate() {
                let k = &rows[j * h3 + h + col..][..d];
                *score = dot(q, k) * scale;
                max = max.max(*score);
            }
            let mut sum = 0.0;
            for score in scores.iter_mut() {
                *score = (*score - max).exp();
                sum += *score;
            }
            let o = &mut o[col..col + d];
            for (j, &p) in scores.iter().enumerate() {
                let w = p / sum;
                let v = &rows[j * h3 + 2 * h + col..][..d];
                for (o, x) in o.iter_mut().zip(v) {
                    *o += w * x;
                }
            }
        }
    }
}

/// Dot product with eight independent partial sums, so the compiler can keep them in vector lanes.
#[inline(always)]
fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut acc = [0f32; 8];
    let (ac, bc) = (a.chunks_exact(8), b.chunks_exact(8));
    let tail: f32 = ac
        .remainder()
        .iter()
        .zip(bc.remainder())
        .map(|(x, y)| x * y)
        .sum();
    for (x, y) in ac.zip(bc) {
        for l in 0..8 {
            acc[l] += x[l] * y[l];
        }
    }
    acc.iter().sum::<f32>() + tail
}

#[inline(always)]
fn add_assign(row: &mut [f32], bias: &[f32]) {
    for (x, b) in row.iter_mut().zip(bias) {
        *x += b;
    }
}

/// The contiguous f32 data of a custom op's input.
fn f32_input<'a>(
    storage: &'a candle_core::CpuStorage,
    layout: &candle_core::Layout,
) -> Result<&'a [f32]> {
    let candle_core::CpuStorage::F32(xs) = storage else {
        candle_core::bail!("packed encoder: f32 only");
    };
    let Some((a, b)) = layout.contiguous_offsets() else {
        candle_core::bail!("packed encoder: contiguous input only");
    };
    Ok(&xs[a..b])
}

/// `gelu(x + bias)` over rows of a matrix product, GELU in the exact (erf) form MiniLM was trained with,
/// over a branch-free rational erf instead of libm's scalar `erff`, which took about an eighth of the
/// encoder's time.
struct BiasGelu {
    bias: Vec<f32>,
}

impl candle_core::CustomOp1 for BiasGelu {
    fn name(&self) -> &'static str {
        "bias-gelu-erf"
    }

    fn cpu_fwd(
        &self,
        storage: &candle_core::CpuStorage,
        layout: &candle_core::Layout,
    ) -> Result<(candle_core::CpuStorage, candle_core::Shape)> {
        let mut ys = f32_input(storage, layout)?.to_vec();
        #[cfg(target_arch = "x86_64")]
        if avx2_fma() {
            // SAFETY: the CPU has the features the function is compiled for.
            unsafe { bias_gelu_avx2(&mut ys, &self.bias) };
            return Ok((candle_core::CpuStorage::F32(ys), layout.shape().clone()));
        }
        bias_gelu_any(&mut ys, &self.bias);
        Ok((candle_core::CpuStorage::F32(ys), layout.shape().clone()))
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn bias_gelu_avx2(ys: &mut [f32], bias: &[f32]) {
    bias_gelu_any(ys, bias)
}

#[inline(always)]
fn bias_gelu_any(ys: &mut [f32], bias: &[f32]) {
    for row in ys.chunks_exact_mut(bias.len()) {
        for (y, b) in row.iter_mut().zip(bias) {
            let x = *y + b;
            *y = 0.5 * x * (1.0 + erf(x * std::f32::consts::FRAC_1_SQRT_2));
        }
    }
}

/// erf as a rational function of x over [-4, 4] (Eigen's `generic_fast_erf_float`): within a few float
/// ulps of the exact value, and beyond 4 erf is 1 to float precision.
#[inline(always)]
pub fn erf(x: f32) -> f32 {
    let x = x.clamp(-4.0, 4.0);
    let x2 = x * x;
    let mut p = x2 * -2.726_142_3e-10 + 2.770_681_4e-8;
    p = p * x2 + -2.101_024e-6;
    p = p * x2 + -5.692_506_4e-5;
    p = p * x2 + -7.349_906_3e-4;
    p = p * x2 + -2.954_6e-3;
    p = p * x2 + -1.609_603_3e-2;
    p *= x;
    let mut q = x2 * -1.456_607_2e-5 + -2.133_740_6e-4;
    q = q * x2 + -1.682_827e-3;
    q = q * x2 + -7.373_329_3e-3;
    q = q * x2 + -1.426_473_9e-2;
    p / q
}

/// `layer_norm(x + bias + residual)` row by row: the end of a BERT sub-layer (the bias is that of the
/// matrix product `x` came from, none for the embeddings).
struct ResidualNorm {
    bias: Option<Vec<f32>>,
    gamma: Vec<f32>,
    beta: Vec<f32>,
    eps: f32,
}

impl candle_core::CustomOp2 for ResidualNorm {
    fn name(&self) -> &'static str {
        "bias-residual-layer-norm"
    }

    fn cpu_fwd(
        &self,
        s1: &candle_core::CpuStorage,
        l1: &candle_core::Layout,
        s2: &candle_core::CpuStorage,
        l2: &candle_core::Layout,
    ) -> Result<(candle_core::CpuStorage, candle_core::Shape)> {
        let (x, res) = (f32_input(s1, l1)?, f32_input(s2, l2)?);
        if l1.shape() != l2.shape() {
            candle_core::bail!(
                "residual norm: shapes {:?} and {:?}",
                l1.shape(),
                l2.shape()
            );
        }
        let mut ys = x.to_vec();
        #[cfg(target_arch = "x86_64")]
        if avx2_fma() {
            // SAFETY: the CPU has the features the function is compiled for.
            unsafe { residual_norm_avx2(self, &mut ys, res) };
            return Ok((candle_core::CpuStorage::F32(ys), l1.shape().clone()));
        }
        residual_norm_any(self, &mut ys, res);
        Ok((candle_core::CpuStorage::F32(ys), l1.shape().clone()))
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn residual_norm_avx2(n: &ResidualNorm, ys: &mut [f32], res: &[f32]) {
    residual_norm_any(n, ys, res)
}

#[inline(always)]
fn residual_norm_any(n: &ResidualNorm, ys: &mut [f32], res: &[f32]) {
    let h = n.gamma.len();
    for (y, r) in ys.chunks_exact_mut(h).zip(res.chunks_exact(h)) {
        add_assign(y, r);
        if let Some(b) = &n.bias {
            add_assign(y, b);
        }
        let mean = y.iter().sum::<f32>() / h as f32;
        let var = y.iter().map(|v| (v - mean) * (v - mean)).sum::<f32>() / h as f32;
        let inv = 1.0 / (var + n.eps).sqrt();
        for ((v, g), b) in y.iter_mut().zip(&n.gamma).zip(&n.beta) {
            *v = (*v - mean) * inv * g + b;
        }
    }
}
