//! Kafka: consuming articles, producing enriched events, and the bookkeeping that makes delivery at-least-once.
//!
//! [`Service`] is the whole service loop, used by `stancewatch run` and, against librdkafka's in-process mock
//! cluster, by `stancewatch demo` and the end-to-end tests. [`offsets`] holds the per-partition offset
//! tracker, [`records`] the mapping from an input record to its output or dead-letter records, [`outputs`] the
//! reader of the output topics that the demo, the bench and the tests share, [`replay`] the planning of a
//! replay of a time range (`stancewatch replay`: the same loop, stopping at the range's end), and [`mock`] the
//! mock-cluster helpers.

mod context;
mod delivery;
pub mod mock;
pub mod offsets;
pub mod outputs;
pub mod records;
pub mod replay;
mod runner;
pub mod sched;
mod sink;
mod workers;

pub use records::{InputRecord, OutputTopics};
pub use runner::{RunSummary, RunningService, Service, StopHandle, StreamError};
