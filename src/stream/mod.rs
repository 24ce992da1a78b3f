//! Kafka: consuming articles, producing enriched events, and the bookkeeping that makes delivery at-least-once.
//!
//! [`Service`] is the whole service loop, used by `stancewatch run` and, against librdkafka's in-process mock
//! cluster, by `stancewatch demo` and the end-to-end tests. [`offsets`] holds the per-partition offset
//! tracker, [`records`] the mapping from an input record to its output or dead-letter records, and [`mock`]
//! the mock-cluster helpers shared by the demo and the tests.

mod context;
pub mod mock;
pub mod offsets;
pub mod records;
mod runner;
pub(crate) mod sched;
mod sink;
mod workers;

pub use records::{InputRecord, OutputTopics};
pub use runner::{RunSummary, RunningService, Service, StopHandle, StreamError};
