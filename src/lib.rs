//! stancewatch: a Kafka stream processor that finds the entities a news article is about and the article's
//! stance toward each.
//!
//! Data flows one way through the modules: [`config`] describes the service; [`article`] parses and validates
//! an input; [`nlp`] (pure, no I/O) analyses its text; [`enriched`] shapes the output contracts; [`stream`]
//! moves records between Kafka topics with at-least-once delivery; [`metrics`] and [`http`] make all of it
//! observable. The binary (`src/main.rs`) is the command line over these.

pub mod article;
pub mod bench;
pub mod config;
pub mod enriched;
pub mod http;
pub mod metrics;
pub mod nlp;
pub mod stream;
