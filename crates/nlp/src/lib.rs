//! Text in, entities and stances out: the inference of stancewatch.
//!
//! This crate is pure and synchronous: no Kafka, no async, no configuration, no globals, no I/O after
//! construction (the models, knowledge base and lexicons are compiled in; accurate mode reads its base weights
//! once when loaded). The Kafka service, the offline `process` command, the quality evaluations (`lab`) and the
//! speed benchmarks all call the same [`Pipeline::analyze`], so what is measured offline is what runs in
//! production.
//!
//! The stages, in order: normalise and tokenise ([`text`]), identify the language ([`lang`]), tag names
//! ([`ner`]) and link them to the knowledge base ([`kb`]), merge mentions into entities within the article
//! ([`entities`]), read the stance of each mention's sentence and aggregate it per entity ([`stance`], or
//! [`accurate`] with the transformer), and record who says what about whom ([`relations`]). [`types`] is the
//! vocabulary and the wire schema of the output. Offsets everywhere are in Unicode scalar values (code points)
//! into the original, un-normalised field text, `end` exclusive, so
//! `text == field.chars().skip(start).take(end - start)` always holds.

/// The path of a data file of the repository (models, knowledge base, lexicons), for `include_bytes!` and
/// `include_str!`: they live at the top of the repository, beside the crates that use them.
macro_rules! repo_file {
    ($path:literal) => {
        concat!(env!("CARGO_MANIFEST_DIR"), "/../../", $path)
    };
}

#[cfg(feature = "accurate")]
pub mod accurate;
pub mod entities;
pub mod kb;
pub mod lang;
pub mod lexicon;
pub mod names;
pub mod ner;
pub mod pipeline;
pub mod relations;
pub mod spans;
pub mod stance;
mod tables;
pub mod text;
pub mod types;

pub use pipeline::{ExtensionError, Pipeline};
pub use types::*;

#[cfg(test)]
mod testdata;
#[cfg(test)]
mod tests;
