//! stancewatch: a Kafka stream processor that finds the entities a news article is about and the article's
//! stance toward each.
//!
//! Data flows one way through the modules: [`config`] describes the service; [`article`] parses and validates
//! an input; [`analyze`] is the one door to [`nlp`] (the inference crate: pure, no I/O), which analyses its
//! text; [`enriched`] shapes the output records; [`stream`] moves records between Kafka topics with
//! at-least-once delivery; [`metrics`], [`http`] and [`traces`] make all of it observable. The binary (`src/main.rs` and
//! `src/cli/`) is the command line over these; its training and evaluation commands use the `lab` crate.

pub mod analyze;
pub mod article;
pub mod config;
pub mod enriched;
pub mod http;
pub mod metrics;
pub mod stream;
pub mod traces;

/// The inference crate (`crates/nlp`), so that the service's users and tests name it as part of the service.
pub use nlp;
