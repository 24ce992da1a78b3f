//! The service's internal events: each thing that happens in the stream layer, told once, as a named struct
//! whose `emit` moves its counters and gauges and writes its log line together (in the spirit of Vector's
//! internal events). The code where a thing happens names the event and its facts; it holds no metric names,
//! label values or log wording, so what operators chart and what they read in the logs cannot drift apart.

use std::time::Duration;

use rdkafka::error::KafkaError;
use tracing::{debug, error, info, warn};

use super::{EntityTally, Metrics, Outcome, Stage};
use crate::article::{RejectReason, Rejection};

/// Something that happened, told to the metrics and the log at once.
pub trait InternalEvent {
    fn emit(self, metrics: &Metrics);
}

impl Metrics {
    /// Tells `event` to the metrics and the log.
    pub fn emit(&self, event: impl InternalEvent) {
        event.emit(self);
    }
}

/// Where an input record is: topic, partition, offset, for log lines an operator can act on.
#[derive(Debug, Clone, Copy)]
pub struct RecordAt<'a> {
    pub topic: &'a str,
    pub partition: i32,
    pub offset: i64,
}

/// A record was taken from the input topic and handed to the NLP workers.
pub struct RecordConsumed;

impl InternalEvent for RecordConsumed {
    fn emit(self, m: &Metrics) {
        m.messages_consumed.inc();
    }
}

/// A record was consumed a second time while its first copy is still being processed, and is skipped.
pub struct RecordRedelivered<'a> {
    pub at: RecordAt<'a>,
    pub error: &'a dyn std::fmt::Display,
}

impl InternalEvent for RecordRedelivered<'_> {
    fn emit(self, _: &Metrics) {
        let RecordAt {
            topic,
            partition,
            offset,
        } = self.at;
        warn!(%topic, partition, offset, error = %self.error, "skipping a redelivered record");
    }
}

/// A processing stage of one article took `seconds`.
pub struct StageTimed {
    pub stage: Stage,
    pub elapsed: Duration,
}

impl InternalEvent for StageTimed {
    fn emit(self, m: &Metrics) {
        m.stage_seconds
            .with_label_values(&[self.stage.as_str()])
            .observe(self.elapsed.as_secs_f64());
    }
}

/// An article cannot be enriched and goes to the dead-letter topic.
pub struct ArticleRejected<'a> {
    pub at: RecordAt<'a>,
    pub rejection: &'a Rejection,
}

impl InternalEvent for ArticleRejected<'_> {
    fn emit(self, _: &Metrics) {
        let RecordAt {
            topic,
            partition,
            offset,
        } = self.at;
        warn!(
            %topic,
            partition,
            offset,
            reason = self.rejection.reason.as_str(),
            message = %self.rejection.message,
            "article rejected; sending it to the dead-letter topic"
        );
    }
}

/// The outcome of an input record is on the brokers (enriched, dead-lettered) or was given up (skipped).
pub struct ArticleHandled<'a> {
    pub outcome: Outcome,
    /// For a dead-lettered article, why.
    pub reason: Option<RejectReason>,
    /// What the article's entities add to the product metrics, for an enriched article.
    pub tally: Option<&'a EntityTally>,
    /// Time since its outputs were handed to the producer.
    pub producing: Duration,
    /// The input record's timestamp, milliseconds since the epoch, for the end-to-end latency.
    pub input_timestamp: Option<i64>,
}

impl InternalEvent for ArticleHandled<'_> {
    fn emit(self, m: &Metrics) {
        if let Some(tally) = self.tally {
            m.record_entities(tally);
        }
        if let Some(reason) = self.reason {
            m.dlq.with_label_values(&[reason.as_str()]).inc();
        }
        m.emit(StageTimed {
            stage: Stage::Produce,
            elapsed: self.producing,
        });
        m.articles.with_label_values(&[self.outcome.as_str()]).inc();
        if let Some(ts) = self.input_timestamp {
            let now_ms = chrono::Utc::now().timestamp_millis();
            m.end_to_end_seconds
                .observe((now_ms - ts).max(0) as f64 / 1000.0);
        }
    }
}

/// Producing an article's outputs failed for some records; they are produced again after `retry_in`.
pub struct ProduceRetried<'a> {
    pub at: RecordAt<'a>,
    pub records: usize,
    pub output_topic: &'a str,
    pub error: Option<&'a KafkaError>,
    pub retry_in: Duration,
}

impl InternalEvent for ProduceRetried<'_> {
    fn emit(self, m: &Metrics) {
        m.produce_retries.inc();
        let RecordAt {
            topic,
            partition,
            offset,
        } = self.at;
        warn!(
            %topic,
            partition,
            offset,
            records = self.records,
            output_topic = self.output_topic,
            error = ?self.error,
            retry_in_ms = self.retry_in.as_millis() as u64,
            "producing outputs failed; retrying"
        );
    }
}

/// What [`RecordUndeliverable`] did with the record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UndeliverableAction {
    /// The record's partition stops at it.
    Stop,
    /// The record is skipped and committed past.
    Skip,
}

impl UndeliverableAction {
    pub const ALL: [UndeliverableAction; 2] = [Self::Stop, Self::Skip];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Stop => "stop",
            Self::Skip => "skip",
        }
    }
}

/// A record's outputs and its dead-letter record were all refused: it can be delivered nowhere.
pub struct RecordUndeliverable<'a> {
    pub at: RecordAt<'a>,
    pub action: UndeliverableAction,
    pub error: &'a KafkaError,
}

impl InternalEvent for RecordUndeliverable<'_> {
    fn emit(self, m: &Metrics) {
        m.undeliverable
            .with_label_values(&[self.action.as_str()])
            .inc();
        let RecordAt {
            topic,
            partition,
            offset,
        } = self.at;
        let error = self.error;
        match self.action {
            UndeliverableAction::Stop => error!(
                %topic,
                partition,
                offset,
                %error,
                "the record's outputs and its dead-letter record were all refused; the partition stops here \
                 (processing.on_undeliverable = \"stop\"): raise the dead-letter topic's max.message.bytes, or \
                 set on_undeliverable = \"skip\", and restart"
            ),
            UndeliverableAction::Skip => error!(
                %topic,
                partition,
                offset,
                %error,
                "the record's outputs and its dead-letter record were all refused; skipping it \
                 (processing.on_undeliverable = \"skip\")"
            ),
        }
    }
}

/// The producer failed fatally: the service stops so that it restarts cleanly.
pub struct ProducerFailed<'a> {
    pub at: RecordAt<'a>,
    pub reason: &'a str,
}

impl InternalEvent for ProducerFailed<'_> {
    fn emit(self, _: &Metrics) {
        let RecordAt {
            topic,
            partition,
            offset,
        } = self.at;
        error!(%topic, partition, offset, reason = self.reason, "fatal producer error; stopping");
    }
}

/// An article's delivery was abandoned (its partition moved, or the service is stopping); it is redelivered.
pub struct DeliveryAbandoned<'a> {
    pub at: RecordAt<'a>,
}

impl InternalEvent for DeliveryAbandoned<'_> {
    fn emit(self, _: &Metrics) {
        let RecordAt {
            topic,
            partition,
            offset,
        } = self.at;
        debug!(%topic, partition, offset, "delivery abandoned; the record will be redelivered");
    }
}

/// The consumer loop's view of backpressure, once per iteration.
pub struct Backpressure {
    /// Consumed, uncommitted articles over every partition.
    pub in_flight: usize,
    /// Input bytes being processed.
    pub bytes: usize,
    /// At the in-flight limit: consumption stopped (holding, or paused).
    pub at_limit: bool,
}

impl InternalEvent for Backpressure {
    fn emit(self, m: &Metrics) {
        m.in_flight.set(self.in_flight as i64);
        m.in_flight_bytes.set(self.bytes as i64);
        m.paused.set(i64::from(self.at_limit));
    }
}

/// The partitions stopped at an undeliverable record, as "topic/partition@offset".
pub struct BlockedPartitions<'a> {
    pub partitions: &'a [String],
}

impl InternalEvent for BlockedPartitions<'_> {
    fn emit(self, m: &Metrics) {
        m.blocked_partitions.set(self.partitions.len() as i64);
    }
}

/// Partitions were assigned to this instance; it now holds `held` input partitions.
pub struct PartitionsAssigned<'a> {
    pub partitions: &'a [i32],
    pub held: usize,
}

impl InternalEvent for PartitionsAssigned<'_> {
    fn emit(self, m: &Metrics) {
        m.rebalances.with_label_values(&["assign"]).inc();
        m.assigned_partitions.set(self.held as i64);
        info!(partitions = ?self.partitions, "partitions assigned");
    }
}

/// How revoked partitions were let go.
pub enum Revocation<'a> {
    /// In a hard stop: nothing more is committed.
    Aborted,
    /// The group moved on without us (session timeout): our uncommitted work is redelivered to the new owner.
    Lost,
    /// Drained (or not, by the deadline) and committed.
    Drained {
        positions: &'a [(i32, i64)],
        committed: bool,
        drained: bool,
        waited: Duration,
        abandoned: usize,
    },
}

/// Partitions of `topic` were taken from this instance; it now holds `held`.
pub struct PartitionsRevoked<'a> {
    pub topic: &'a str,
    pub partitions: &'a [i32],
    pub how: Revocation<'a>,
    pub held: usize,
}

impl InternalEvent for PartitionsRevoked<'_> {
    fn emit(self, m: &Metrics) {
        let partitions = self.partitions;
        m.rebalances.with_label_values(&["revoke"]).inc();
        m.assigned_partitions.set(self.held as i64);
        // The partitions' next owner reports their lag in time now; a stale figure left here would double
        // them in a max over the group until the next refresh.
        for p in partitions {
            let _ = m
                .consumer_lag_seconds
                .remove_label_values(&[self.topic, &p.to_string()]);
        }
        match self.how {
            Revocation::Aborted => {}
            Revocation::Lost => {
                m.rebalances.with_label_values(&["lost"]).inc();
                warn!(
                    ?partitions,
                    "assignment lost; uncommitted articles of these partitions will be redelivered"
                );
            }
            Revocation::Drained {
                positions,
                committed,
                drained: true,
                waited,
                ..
            } => info!(
                ?partitions,
                ?positions,
                committed,
                waited_ms = waited.as_millis() as u64,
                "partitions revoked after draining"
            ),
            Revocation::Drained {
                positions,
                committed,
                abandoned,
                ..
            } => warn!(
                ?partitions,
                ?positions,
                committed,
                abandoned,
                "partitions revoked at the drain deadline; abandoned articles will be redelivered to the next owner"
            ),
        }
    }
}

/// librdkafka reported a failed rebalance.
pub struct RebalanceFailed<'a> {
    pub error: &'a KafkaError,
}

impl InternalEvent for RebalanceFailed<'_> {
    fn emit(self, m: &Metrics) {
        m.rebalances.with_label_values(&["error"]).inc();
        warn!(error = %self.error, "rebalance error");
    }
}

/// An offset commit of `positions` of `topic` succeeded or failed.
pub struct OffsetsCommitted<'a> {
    pub topic: &'a str,
    pub positions: &'a [(i32, i64)],
    pub result: Result<(), &'a KafkaError>,
}

impl InternalEvent for OffsetsCommitted<'_> {
    fn emit(self, m: &Metrics) {
        let positions = self.positions;
        match self.result {
            Ok(()) => {
                m.commits.with_label_values(&["ok"]).inc();
                debug!(?positions, "offsets committed");
            }
            Err(error) => {
                m.commits.with_label_values(&["error"]).inc();
                warn!(topic = %self.topic, ?positions, %error, "offset commit failed; it will be retried");
            }
        }
    }
}

/// A Kafka client reported an error (librdkafka reconnects and retries by itself).
pub struct KafkaClientError<'a> {
    pub client: &'a str,
    pub error: &'a KafkaError,
    pub reason: &'a str,
    /// The client is being closed: its connections going away are expected.
    pub closing: bool,
}

impl InternalEvent for KafkaClientError<'_> {
    fn emit(self, m: &Metrics) {
        let (client, error, reason) = (self.client, self.error, self.reason);
        if self.closing {
            debug!(client, %error, reason, "Kafka client error while closing");
            return;
        }
        let code = error
            .rdkafka_error_code()
            .map_or_else(|| "other".to_string(), |c| format!("{c:?}"));
        m.kafka_errors.with_label_values(&[client, &code]).inc();
        warn!(client, %error, reason, "Kafka client error");
    }
}

/// The consumer's lag per input partition, from librdkafka's statistics (partitions it does not know are
/// left out).
pub struct ConsumerLag<'a> {
    pub topic: &'a str,
    pub lags: &'a [(i32, i64)],
}

impl InternalEvent for ConsumerLag<'_> {
    fn emit(self, m: &Metrics) {
        m.consumer_lag.reset();
        for (partition, lag) in self.lags {
            m.consumer_lag
                .with_label_values(&[self.topic, &partition.to_string()])
                .set(*lag);
        }
    }
}

/// How old the oldest unprocessed record of each assigned input partition is, in seconds (see
/// `OffsetTracker::lags`); None for a partition with no figure yet, whose series is left out.
pub struct ConsumerLagSeconds<'a> {
    pub topic: &'a str,
    pub lags: &'a [(i32, Option<f64>)],
}

impl InternalEvent for ConsumerLagSeconds<'_> {
    fn emit(self, m: &Metrics) {
        // Set or removed one by one rather than reset and refilled, so that a scrape in between never sees
        // a partition's series missing.
        for (partition, lag) in self.lags {
            let labels = [self.topic, &partition.to_string()];
            match lag {
                Some(seconds) => m
                    .consumer_lag_seconds
                    .with_label_values(&labels)
                    .set(*seconds),
                None => {
                    let _ = m.consumer_lag_seconds.remove_label_values(&labels);
                }
            }
        }
    }
}

/// Records waiting in the producer's queue, from librdkafka's statistics.
pub struct ProducerQueue {
    pub messages: i64,
}

impl InternalEvent for ProducerQueue {
    fn emit(self, m: &Metrics) {
        m.producer_queue.set(self.messages);
    }
}
