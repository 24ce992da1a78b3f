//! The fast stance model's word vectors, derived from MiniLM's input embeddings (the base weights of accurate
//! mode): needed to train the dense part, never at run time, where the model file carries them projected.

use std::path::Path;

use nlp::stance::dense::{DenseError, WordVectors};

/// The vectors of `words` (form, count in the training text): each word's MiniLM word pieces' input
/// embeddings averaged, centred, projected on the top `dim` principal components of the vocabulary's
/// vectors, scaled to unit variance per component, then multiplied by the smooth inverse frequency
/// weight a / (a + p(word)) (Arora et al. 2017), so that averages over a window are not dominated by
/// "the" and "of". Whole-word pieces of MiniLM's vocabulary are added with count 0 (weight 1), so words
/// absent from the training text still have a vector at run time.
pub fn from_minilm(
    base_dir: &Path,
    words: &[(String, u64)],
    dim: usize,
) -> Result<WordVectors, DenseError> {
    let err = |e: &dyn std::fmt::Display| DenseError::Base(e.to_string());
    let tokenizer =
        tokenizers::Tokenizer::from_file(base_dir.join("tokenizer.json")).map_err(|e| err(&e))?;
    let tensors = candle_core::safetensors::load(
        base_dir.join("model.safetensors"),
        &candle_core::Device::Cpu,
    )
    .map_err(|e| err(&e))?;
    let table = tensors
        .iter()
        .find(|(k, _)| k.ends_with("embeddings.word_embeddings.weight"))
        .ok_or_else(|| DenseError::Base("no word_embeddings in model.safetensors".into()))?
        .1
        .to_dtype(candle_core::DType::F32)
        .and_then(|t| t.to_vec2::<f32>())
        .map_err(|e| err(&e))?;
    let width = table.first().map_or(0, Vec::len);
    let total: u64 = words.iter().map(|(_, c)| c).sum::<u64>().max(1);
    let mut all: Vec<(String, u64)> = words.to_vec();
    let mut vocab: Vec<(String, u32)> = tokenizer.get_vocab(false).into_iter().collect();
    vocab.sort_unstable();
    let known: std::collections::HashSet<String> = words.iter().map(|(w, _)| w.clone()).collect();
    for (piece, _) in vocab {
        if piece.chars().all(char::is_alphabetic) && !known.contains(&piece) {
            all.push((piece, 0));
        }
    }
    all.sort_unstable();
    all.dedup_by(|a, b| a.0 == b.0);
    // Raw vectors: the mean of the word's pieces.
    let mut raw: Vec<(String, u64, Vec<f32>)> = Vec::with_capacity(all.len());
    for (w, c) in all {
        let enc = tokenizer.encode(w.as_str(), false).map_err(|e| err(&e))?;
        let ids = enc.get_ids();
        if ids.is_empty() {
            continue;
        }
        let mut v = vec![0f32; width];
        for &id in ids {
            for (a, b) in v.iter_mut().zip(&table[id as usize]) {
                *a += b / ids.len() as f32;
            }
        }
        raw.push((w, c, v));
    }
    let n = raw.len().max(1) as f64;
    let mut mean = vec![0f64; width];
    for (_, _, v) in &raw {
        for (m, x) in mean.iter_mut().zip(v) {
            *m += f64::from(*x) / n;
        }
    }
    let mut cov = vec![0f64; width * width];
    for (_, _, v) in &raw {
        let c: Vec<f64> = v
            .iter()
            .zip(&mean)
            .map(|(x, m)| f64::from(*x) - m)
            .collect();
        for i in 0..width {
            let ci = c[i];
            let row = &mut cov[i * width..(i + 1) * width];
            for (r, cj) in row.iter_mut().zip(&c) {
                *r += ci * cj;
            }
        }
    }
    let basis = top_components(&cov, width, dim);
    let project = |v: &[f32]| -> Vec<f64> {
        basis
            .iter()
            .map(|b| {
                b.iter()
                    .zip(v.iter().zip(&mean))
                    .map(|(bi, (x, m))| bi * (f64::from(*x) - m))
                    .sum()
            })
            .collect()
    };
    let projected: Vec<Vec<f64>> = raw.iter().map(|(_, _, v)| project(v)).collect();
    let mut sd = vec![0f64; dim];
    for p in &projected {
        for (s, x) in sd.iter_mut().zip(p) {
            *s += x * x / n;
        }
    }
    const SIF_A: f64 = 1e-3;
    let rows = raw
        .into_iter()
        .zip(projected)
        .map(|((w, c, _), p)| {
            let weight = SIF_A / (SIF_A + c as f64 / total as f64);
            let v = p
                .iter()
                .zip(&sd)
                .map(|(x, s)| (x / s.sqrt().max(1e-9) * weight) as f32)
                .collect();
            (w, v)
        })
        .collect();
    Ok(WordVectors::new(dim, rows))
}

/// The `k` leading eigenvectors of the symmetric `n`×`n` matrix `m` by orthogonal iteration from a fixed
/// start (deterministic; 100 rounds is plenty for the well-separated leading spectrum of embeddings).
fn top_components(m: &[f64], n: usize, k: usize) -> Vec<Vec<f64>> {
    let mut q: Vec<Vec<f64>> = (0..k)
        .map(|j| {
            (0..n)
                .map(|i| (((i * 7919 + j * 104_729) % 1009) as f64 / 1009.0) - 0.5)
                .collect()
        })
        .collect();
    for _ in 0..100 {
        let mut z: Vec<Vec<f64>> = q
            .iter()
            .map(|v| {
                (0..n)
                    .map(|i| {
                        m[i * n..(i + 1) * n]
                            .iter()
                            .zip(v)
                            .map(|(a, b)| a * b)
                            .sum()
                    })
                    .collect()
            })
            .collect();
        for j in 0..k {
            for p in 0..j {
                let d: f64 = z[j].iter().zip(&z[p]).map(|(a, b)| a * b).sum();
                let (head, tail) = z.split_at_mut(j);
                for (a, b) in tail[0].iter_mut().zip(&head[p]) {
                    *a -= d * b;
                }
            }
            let norm = z[j].iter().map(|a| a * a).sum::<f64>().sqrt().max(1e-12);
            z[j].iter_mut().for_each(|a| *a /= norm);
        }
        q = z;
    }
    q
}
