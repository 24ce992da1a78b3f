//! Producing an article's output records until the brokers acknowledge all of them.
//!
//! Records are handed to librdkafka without waiting ([`send_all`]); each carries a small opaque that points
//! at its article's [`Batch`], and librdkafka's delivery callback (on the producer's polling thread) counts
//! the acknowledgements down. The last one runs the article's continuation once, with the records that
//! failed. So an article costs one callback on a thread that is running anyway, not a task wake-up per
//! record, which is what kept two cores' worth of NLP threads from being preempted thousands of times a
//! second.
//!
//! librdkafka already retries each record for `message.timeout.ms`. When that runs out (a broker outage longer
//! than the timeout), the article's offset is still uncommitted, so giving up would lose it for good; instead
//! the records not yet acknowledged are produced again, with capped exponential backoff, for as long as this
//! instance still owns the partition. Errors that no retry can fix (a record larger than the broker accepts)
//! are reported to the caller, which dead-letters the article instead. A fatal producer error (the idempotent
//! producer's sequence state is broken) ends the service so that Kubernetes restarts it cleanly.

use std::sync::Arc;
use std::time::Duration;

use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{BaseRecord, Producer, ThreadedProducer};

use super::context::ProducerCtx;
pub(crate) use super::delivery::Failures;
use super::delivery::{Batch, Delivery};
use crate::metrics::events::{ProduceRetried, RecordAt};
use crate::metrics::Metrics;

/// A record to produce, owned so that it can be sent again. The topic name and the headers are shared by
/// the records of an article (an enriched record and one per entity), not copied into each.
#[derive(Debug, Clone)]
pub(crate) struct OutRecord {
    pub topic: Arc<str>,
    pub key: Option<Vec<u8>>,
    /// None: a tombstone (only a dead-lettered tombstone is one).
    pub payload: Option<Vec<u8>>,
    pub headers: Arc<[(String, Option<Vec<u8>>)]>,
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

/// The service's producer: librdkafka's, polled by its own thread, which runs the delivery callbacks.
pub(crate) type OutputProducer = ThreadedProducer<ProducerCtx>;

/// Hands every record to librdkafka without waiting. `then` runs exactly once, after the last verdict, with
/// the records that failed: on the polling thread, or on this one if nothing could be queued (a full queue
/// counts as a failure, for the caller's retry to wait out).
pub(crate) fn send_all(
    producer: &OutputProducer,
    records: &[&OutRecord],
    then: impl FnOnce(Failures) + Send + 'static,
) {
    if records.is_empty() {
        then(Vec::new());
        return;
    }
    let batch = Batch::new(records.len(), Box::new(then));
    for (index, r) in records.iter().enumerate() {
        let delivery = Box::new(Delivery::new(&batch, index));
        let mut record = BaseRecord::<[u8], [u8], _>::with_opaque_to(&r.topic, delivery)
            .headers(r.owned_headers());
        if let Some(p) = &r.payload {
            record = record.payload(p);
        }
        if let Some(k) = &r.key {
            record = record.key(k);
        }
        if let Some(ts) = r.timestamp {
            record = record.timestamp(ts);
        }
        if let Err((e, record)) = producer.send(record) {
            record.delivery_opaque.settle(Some(e));
        }
    }
}

/// [`send_all`], waiting for the verdicts.
pub(crate) async fn send_and_wait(producer: &OutputProducer, records: &[&OutRecord]) -> Failures {
    let (tx, rx) = tokio::sync::oneshot::channel();
    send_all(producer, records, move |failures| {
        let _ = tx.send(failures);
    });
    // The continuation is dropped uncalled only if librdkafka dropped the opaques, i.e. the producer is gone.
    rx.await.unwrap_or_else(|_| {
        (0..records.len())
            .map(|i| (i, KafkaError::Canceled))
            .collect()
    })
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

/// Given the `failures` of a send of `sent`, produces the failed records again with backoff until all are
/// acknowledged; stops on an error no retry can fix, a fatal producer error, or when `still_wanted()` says
/// the partition is no longer ours (or the service is stopping).
pub(crate) async fn retry_failed(
    producer: &OutputProducer,
    mut sent: Vec<&OutRecord>,
    mut failures: Failures,
    origin: RecordAt<'_>,
    backoff: Backoff,
    metrics: &Metrics,
    still_wanted: impl Fn() -> bool,
) -> Result<(), DeliveryError> {
    let mut delay = backoff.initial;
    loop {
        if failures.is_empty() {
            return Ok(());
        }
        if let Some((_, e)) = failures.iter().find(|(_, e)| is_permanent(e)) {
            return Err(DeliveryError::Permanent(e.clone()));
        }
        if let Some((code, reason)) = producer.client().fatal_error() {
            return Err(DeliveryError::Fatal(format!("{code:?}: {reason}")));
        }
        if !still_wanted() {
            return Err(DeliveryError::Abandoned);
        }
        failures.sort_by_key(|(i, _)| *i);
        metrics.emit(ProduceRetried {
            at: origin,
            records: failures.len(),
            output_topic: &sent[failures[0].0].topic,
            error: failures.last().map(|(_, e)| e),
            retry_in: delay,
        });
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(backoff.max);
        sent = failures.iter().map(|&(i, _)| sent[i]).collect();
        failures = send_and_wait(producer, &sent).await;
    }
}
