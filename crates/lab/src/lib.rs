//! Training, distillation, datasets and evaluation for stancewatch's models, on top of [`nlp`].
//!
//! Nothing in [`nlp`] calls into this crate: the service never trains. Each module is one concern: reading a
//! dataset ([`conll`], [`datasets`], [`data`] for where they are), training a model ([`ner_train`], [`stance_train`], and
//! [`accurate_train`] for the transformer), making training data from a teacher ([`distill`]),; measuring ([`evaluation`]); and news text
//! in the shapes feeds deliver it, with the promises the pipeline keeps on it ([`feeds`]). The command line's `train`, `distill` and `eval` commands are thin wrappers over these.

#[cfg(feature = "accurate")]
pub mod accurate_train;
pub mod article_train;
pub mod calibration;
pub mod conll;
pub mod data;
pub mod datasets;
pub mod distill;
pub mod evaluation;
pub mod feeds;
pub mod identity;
pub mod ner_train;
pub mod stance_train;
#[cfg(feature = "accurate")]
pub mod word_vectors;

#[cfg(all(test, feature = "accurate"))]
mod accurate_tests;
