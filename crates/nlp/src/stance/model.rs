//! The mention-stance model: multinomial logistic regression over hashed features, and its file format.
//!
//! Logistic regression gives class probabilities rather than bare scores, and the article-level aggregation
//! needs those to weigh confident mentions over doubtful ones. The weights are stored sparse (only hashed rows
//! some training feature reached), quantised to 16 bits and gzip-compressed, which keeps the committed model
//! small; the loss from quantisation is far below the noise of the dev figures. Per-class offsets added to the
//! log-odds are tuned after training for macro-F1 (the classes are unbalanced, and a model trained for
//! likelihood favours the majority one).

// Class-indexed arithmetic over small fixed arrays reads clearer with indices than with zipped iterators.
#![allow(clippy::needless_range_loop)]

use std::io::{Read, Write};

use std::ops::Range;

use super::classes::{softmax, CLASSES};
use super::dense::{Cursor, DenseError, DensePart, DenseRows};
use super::features::{Context, Features, FEATURE_VERSION};

const MAGIC: &[u8; 4] = b"SWSM";
/// Format 2 adds the optional dense part after the sparse weights; format 3 lets it be in its run-time
/// (projected) form. Files of formats 1 and 2 still load.
const FORMAT: u32 = 3;

#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    #[error("not a stance model (bad magic bytes or compression)")]
    NotAModel,
    #[error("stance model format {0}, this build reads format {FORMAT}")]
    Format(u32),
    #[error(
        "stance model built for features v{0}, this build computes v{FEATURE_VERSION}; retrain it"
    )]
    FeatureVersion(u32),
    #[error("stance model truncated or corrupt")]
    Corrupt,
    #[error(transparent)]
    Dense(#[from] DenseError),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Model {
    pub bits: u32,
    /// `weights[feature * CLASSES + class]`.
    pub weights: Vec<f32>,
    /// Added to each class's log-odds before the softmax.
    pub offsets: [f32; CLASSES],
    /// Word vectors and the hidden layer over them, whose class scores add to the linear ones (absent in a
    /// purely linear model); as trained, or in the run-time form that saved models have.
    pub dense: Option<DensePart>,
    /// The class scores are divided by it before the softmax, so that the probabilities are calibrated
    /// (temperature scaling). Not part of the model file: 1 when loaded; the embedded model takes the one
    /// fitted for it (`models/stance-calibration.json`, see [`super::embedded_model`]).
    pub temperature: f32,
}

impl Model {
    pub fn zeros(bits: u32) -> Self {
        Model {
            bits,
            weights: crate::tables::table((1usize << bits) * CLASSES),
            offsets: [0.0; CLASSES],
            dense: None,
            temperature: 1.0,
        }
    }

    /// The word rows the dense part reads, if there is one.
    pub fn vectors(&self) -> Option<DenseRows<'_>> {
        self.dense.as_ref().map(DensePart::rows)
    }

    /// This model with its dense part in the run-time form ([`super::dense::Projected`]), as it is saved.
    pub fn projected(&self) -> Self {
        Model {
            dense: self.dense.as_ref().map(DensePart::projected),
            ..self.clone()
        }
    }

    /// The features of the target whose mentions in `ctx` are `spans`, as this model reads them (the dense
    /// input only when it has a dense part). `out` is cleared first.
    pub fn read(&self, ctx: &Context<'_>, spans: &[Range<usize>], out: &mut Features) {
        out.clear();
        ctx.features(spans, out);
        if let Some(d) = &self.dense {
            ctx.dense(spans, d.rows(), &mut out.dense);
        }
    }

    /// Class scores before offsets and softmax.
    pub fn logits(&self, f: &Features) -> [f32; CLASSES] {
        let mut z = [0f32; CLASSES];
        for &(i, v) in &f.items {
            let row = &self.weights[i as usize * CLASSES..i as usize * CLASSES + CLASSES];
            for c in 0..CLASSES {
                z[c] += row[c] * v;
            }
        }
        if let Some(d) = &self.dense {
            if f.dense.len() == d.input_len() {
                let zd = d.scores(&f.dense);
                for c in 0..CLASSES {
                    z[c] += zd[c];
                }
            }
        }
        z
    }

    /// Class probabilities with the tuned offsets applied.
    pub fn probabilities(&self, f: &Features) -> [f32; CLASSES] {
        let mut z = self.logits(f);
        for c in 0..CLASSES {
            z[c] = (z[c] + self.offsets[c]) / self.temperature;
        }
        softmax(z)
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        let scale = self
            .weights
            .iter()
            .fold(0f32, |m, w| m.max(w.abs()))
            .max(1e-6)
            / 32767.0;
        let mut raw = Vec::new();
        raw.extend_from_slice(MAGIC);
        for x in [FORMAT, FEATURE_VERSION, self.bits] {
            raw.extend_from_slice(&x.to_le_bytes());
        }
        for x in self.offsets.iter().chain([&scale]) {
            raw.extend_from_slice(&x.to_le_bytes());
        }
        let rows: Vec<usize> = (0..1usize << self.bits)
            .filter(|&r| {
                self.weights[r * CLASSES..(r + 1) * CLASSES]
                    .iter()
                    .any(|w| (w / scale).round() != 0.0)
            })
            .collect();
        raw.extend_from_slice(&(rows.len() as u32).to_le_bytes());
        let mut last = 0usize;
        for &r in &rows {
            put_varint(&mut raw, (r - last) as u64);
            last = r;
        }
        // Class-major after the row list: each class's weights compress better next to each other.
        for c in 0..CLASSES {
            for &r in &rows {
                let q = (self.weights[r * CLASSES + c] / scale).round() as i16;
                raw.extend_from_slice(&q.to_le_bytes());
            }
        }
        match &self.dense {
            None => raw.push(0),
            Some(d) => d.write(&mut raw),
        }
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        gz.write_all(&raw).expect("writing to a Vec");
        gz.finish().expect("writing to a Vec")
    }

    pub fn from_bytes(bytes: &[u8]) -> Result<Self, ModelError> {
        let mut raw = Vec::new();
        flate2::read::GzDecoder::new(bytes)
            .read_to_end(&mut raw)
            .map_err(|_| ModelError::NotAModel)?;
        let mut r = Reader { buf: &raw, at: 0 };
        if r.take(4)? != MAGIC {
            return Err(ModelError::NotAModel);
        }
        let format = r.u32()?;
        if format != FORMAT && format != 1 {
            return Err(ModelError::Format(format));
        }
        let features = r.u32()?;
        if features != FEATURE_VERSION {
            return Err(ModelError::FeatureVersion(features));
        }
        let bits = r.u32()?;
        if !(8..=24).contains(&bits) {
            return Err(ModelError::Corrupt);
        }
        let mut model = Model::zeros(bits);
        for c in 0..CLASSES {
            model.offsets[c] = r.f32()?;
        }
        let scale = r.f32()?;
        let n = r.u32()? as usize;
        let mut rows = Vec::with_capacity(n);
        let mut last = 0u64;
        for _ in 0..n {
            last += r.varint()?;
            if last >= 1 << bits {
                return Err(ModelError::Corrupt);
            }
            rows.push(last as usize);
        }
        for c in 0..CLASSES {
            for &row in &rows {
                let q = i16::from_le_bytes(r.take(2)?.try_into().map_err(|_| ModelError::Corrupt)?);
                model.weights[row * CLASSES + c] = f32::from(q) * scale;
            }
        }
        let tag = if format >= 2 { r.take(1)?[0] } else { 0 };
        if tag != 0 {
            if format < 3 && tag != 1 {
                return Err(ModelError::Corrupt);
            }
            let mut cursor = Cursor {
                buf: r.buf,
                at: r.at,
            };
            model.dense = Some(DensePart::read(tag, &mut cursor)?);
        }
        Ok(model)
    }
}

fn put_varint(out: &mut Vec<u8>, mut x: u64) {
    while x >= 0x80 {
        out.push((x as u8) | 0x80);
        x >>= 7;
    }
    out.push(x as u8);
}

struct Reader<'a> {
    buf: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], ModelError> {
        let s = self
            .buf
            .get(self.at..self.at + n)
            .ok_or(ModelError::Corrupt)?;
        self.at += n;
        Ok(s)
    }
    fn u32(&mut self) -> Result<u32, ModelError> {
        Ok(u32::from_le_bytes(
            self.take(4)?.try_into().map_err(|_| ModelError::Corrupt)?,
        ))
    }
    fn f32(&mut self) -> Result<f32, ModelError> {
        Ok(f32::from_le_bytes(
            self.take(4)?.try_into().map_err(|_| ModelError::Corrupt)?,
        ))
    }
    fn varint(&mut self) -> Result<u64, ModelError> {
        let mut x = 0u64;
        for shift in (0..64).step_by(7) {
            let b = self.take(1)?[0];
            x |= u64::from(b & 0x7f) << shift;
            if b < 0x80 {
                return Ok(x);
            }
        }
        Err(ModelError::Corrupt)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_through_bytes() {
        let mut m = Model::zeros(10);
        m.weights[3] = 1.5;
        m.weights[5 * CLASSES + 2] = -0.25;
        m.offsets = [0.1, -0.2, 0.05];
        let back = Model::from_bytes(&m.to_bytes()).unwrap();
        assert_eq!(back.bits, 10);
        assert_eq!(back.offsets, m.offsets);
        assert!((back.weights[3] - 1.5).abs() < 1e-3);
        assert!((back.weights[5 * CLASSES + 2] + 0.25).abs() < 1e-3);
        assert!(matches!(
            Model::from_bytes(b"nope"),
            Err(ModelError::NotAModel)
        ));
    }
}
