//! Producing an article's output records until the brokers acknowledge all of them.
//!
//! librdkafka already retries each record for `message.timeout.ms`. When that runs out (a broker outage longer
//! than the timeout), the article's offset is still uncommitted, so giving up would lose it for good; instead
//! the records not yet acknowledged are produced again, with capped exponential backoff, for as long as this
//! instance still owns the partition. Errors that no retry can fix (a record larger than the broker accepts)
//! are reported to the caller, which dead-letters the article instead. A fatal producer error (the idempotent
//! producer's sequence state is broken) ends the service so that Kubernetes restarts it cleanly.

use std::time::Duration;

use futures::future::join_all;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};
use rdkafka::util::Timeout;
use tracing::warn;

use super::context::ProducerCtx;
use crate::metrics::Metrics;

/// A record to produce, owned so that it can be sent again.
#[derive(Debug, Clone)]
pub(crate) struct OutRecord {
    pub topic: String,
    pub key: Option<Vec<u8>>,
    pub payload: Vec<u8>,
    pub headers: Vec<(String, Option<Vec<u8>>)>,
    pub timestamp: Option<i64>,
}

impl OutRecord {
    fn owned_headers(&self) -> OwnedHeaders {
        self.headers.iter().fold(
            OwnedHeaders::new_with_capacity(self.headers.len()),
            |h, (key, value)| {
                h.insert(Header {
                    key,
                    value: value.as_deref(),
                })
            },
        )
    }
}

#[derive(Debug, thiserror::Error)]
pub(crate) enum DeliveryError {
    #[error("the brokers will never accept this record: {0}")]
    Permanent(KafkaError),
    #[error("the producer failed fatally: {0}")]
    Fatal(String),
    #[error("delivery abandoned: the partition is no longer ours or the service is stopping")]
    Abandoned,
}

#[derive(Debug, Clone, Copy)]
pub(crate) struct Backoff {
    pub initial: Duration,
    pub max: Duration,
}

fn is_permanent(e: &KafkaError) -> bool {
    matches!(
        e.rdkafka_error_code(),
        Some(
            RDKafkaErrorCode::MessageSizeTooLarge
                | RDKafkaErrorCode::InvalidMessageSize
                | RDKafkaErrorCode::InvalidMessage
                | RDKafkaErrorCode::InvalidRecord
                | RDKafkaErrorCode::MessageBatchTooLarge
        )
    )
}

/// Where the records being delivered came from, for logs.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Origin<'a> {
    pub topic: &'a str,
    pub partition: i32,
    pub offset: i64,
}

/// Produces every record and waits for all acknowledgements; retries what failed while `still_wanted()`.
pub(crate) async fn deliver_all(
    producer: &FutureProducer<ProducerCtx>,
    records: &[OutRecord],
    origin: Origin<'_>,
    backoff: Backoff,
    metrics: &Metrics,
    still_wanted: impl Fn() -> bool,
) -> Result<(), DeliveryError> {
    let mut remaining: Vec<&OutRecord> = records.iter().collect();
    let mut delay = backoff.initial;
    loop {
        let sends = remaining.iter().map(|r| {
            let mut fr = FutureRecord::to(&r.topic)
                .payload(&r.payload)
                .headers(r.owned_headers());
            if let Some(k) = &r.key {
                fr = fr.key(k);
            }
            if let Some(ts) = r.timestamp {
                fr = fr.timestamp(ts);
            }
            // Waiting for queue space applies backpressure from a slow broker to this task.
            producer.send(fr, Timeout::After(Duration::from_secs(5)))
        });
        let results = join_all(sends).await;
        let mut failed = Vec::new();
        let mut last_error = None;
        for (r, res) in remaining.iter().zip(results) {
            if let Err((e, _)) = res {
                if is_permanent(&e) {
                    return Err(DeliveryError::Permanent(e));
                }
                failed.push(*r);
                last_error = Some(e);
            }
        }
        if failed.is_empty() {
            return Ok(());
        }
        if let Some((code, reason)) = producer.client().fatal_error() {
            return Err(DeliveryError::Fatal(format!("{code:?}: {reason}")));
        }
        if !still_wanted() {
            return Err(DeliveryError::Abandoned);
        }
        metrics.produce_retries.inc();
        warn!(
            topic = origin.topic,
            partition = origin.partition,
            offset = origin.offset,
            records = failed.len(),
            output_topic = %failed[0].topic,
            error = ?last_error,
            retry_in_ms = delay.as_millis() as u64,
            "producing outputs failed; retrying"
        );
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(backoff.max);
        remaining = failed;
    }
}
