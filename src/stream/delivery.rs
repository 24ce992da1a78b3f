//! What librdkafka carries with each produced record to its delivery callback: a [`Delivery`] pointing at the
//! [`Batch`] of the article's records, whose last verdict runs the article's continuation once. The producer's
//! context ([`super::context`]) calls [`on_delivery`]; [`super::sink`] makes the batches.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use rdkafka::error::KafkaError;
use rdkafka::producer::DeliveryResult;

/// The records of one send that failed, by index into what was sent, with librdkafka's error.
pub(crate) type Failures = Vec<(usize, KafkaError)>;

pub(crate) type Continuation = Box<dyn FnOnce(Failures) + Send>;

/// The records of one send still waiting for librdkafka's verdict.
pub(crate) struct Batch {
    pending: AtomicUsize,
    failures: Mutex<Failures>,
    then: Mutex<Option<Continuation>>,
}

impl Batch {
    /// A batch of `records` records whose last verdict runs `then` with the records that failed.
    pub(crate) fn new(records: usize, then: Continuation) -> Arc<Self> {
        Arc::new(Batch {
            pending: AtomicUsize::new(records),
            failures: Mutex::new(Vec::new()),
            then: Mutex::new(Some(then)),
        })
    }

    /// Records one record's verdict; the last one runs the continuation.
    fn settle(&self, index: usize, error: Option<KafkaError>) {
        if let Some(e) = error {
            self.failures
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .push((index, e));
        }
        if self.pending.fetch_sub(1, Ordering::AcqRel) == 1 {
            let failures =
                std::mem::take(&mut *self.failures.lock().unwrap_or_else(|p| p.into_inner()));
            let then = self.then.lock().unwrap_or_else(|p| p.into_inner()).take();
            if let Some(then) = then {
                then(failures);
            }
        }
    }
}

/// The opaque librdkafka carries with each record to its delivery callback.
pub(crate) struct Delivery {
    batch: Arc<Batch>,
    index: usize,
}

impl Delivery {
    /// The opaque of record `index` of `batch`.
    pub(crate) fn new(batch: &Arc<Batch>, index: usize) -> Self {
        Self {
            batch: batch.clone(),
            index,
        }
    }

    /// The record's verdict: None when the brokers acknowledged it.
    pub(crate) fn settle(&self, error: Option<KafkaError>) {
        self.batch.settle(self.index, error);
    }
}

/// librdkafka's verdict on one record (called by the producer's context on its polling thread).
pub(crate) fn on_delivery(result: &DeliveryResult<'_>, delivery: &Delivery) {
    delivery.settle(result.as_ref().err().map(|(e, _)| e.clone()));
}
