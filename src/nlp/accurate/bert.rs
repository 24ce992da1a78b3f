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
