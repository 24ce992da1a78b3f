//! librdkafka callbacks: logs, errors, statistics, commits and the rebalance barrier.
//!
//! Every callback of the consumer runs on the consumer thread, inside `poll`, which is what makes the rebalance
//! barrier below possible without extra synchronisation: while `pre_rebalance` blocks, no new message of any
//! partition is handed out.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext, Rebalance};
use rdkafka::error::{KafkaError, KafkaResult, RDKafkaErrorCode};
use rdkafka::producer::{DeliveryResult, ProducerContext};
use rdkafka::statistics::Statistics;
use rdkafka::{ClientContext, Offset, TopicPartitionList};
use tracing::{debug, error, info, warn};

use super::delivery::{on_delivery, Delivery};
use super::offsets::{EndStats, OffsetTracker};
use crate::http::Health;
use crate::metrics::events::{
    ConsumerLag, KafkaClientError, OffsetsCommitted, PartitionsAssigned, PartitionsRevoked,
    ProducerQueue, RebalanceFailed, Revocation,
};
use crate::metrics::Metrics;

/// State shared by the consumer thread, its callbacks and the processing tasks.
pub(crate) struct Shared {
    pub tracker: OffsetTracker,
    pub metrics: Arc<Metrics>,
    pub health: Arc<Health>,
    pub input_topic: String,
    pub rebalance_drain_timeout: Duration,
    /// Set by a hard stop: nothing more is committed, in-flight work is abandoned (what a crash looks like).
    pub aborted: AtomicBool,
    /// Set once the graceful drain is over, so the revoke triggered by closing the consumer does not wait again.
    pub closing: AtomicBool,
}

impl Shared {
    pub fn is_aborted(&self) -> bool {
        self.aborted.load(Ordering::SeqCst)
    }

    /// Commits `positions` of the input topic and, once the broker acknowledges, releases their slots.
    ///
    /// Commits are synchronous, one round trip per commit interval on the consumer thread. rdkafka 0.39's
    /// event-based consumer never reports the outcome of an asynchronous commit (librdkafka only posts it when a
    /// native offset_commit_cb is set), and slots must only be released by a commit known to have succeeded.
    pub fn commit<C: ConsumerContext>(
        &self,
        consumer: &BaseConsumer<C>,
        positions: &[(i32, i64)],
    ) -> KafkaResult<()> {
        if positions.is_empty() {
            return Ok(());
        }
        let mut tpl = TopicPartitionList::new();
        for &(p, pos) in positions {
            tpl.add_partition_offset(&self.input_topic, p, Offset::Offset(pos))?;
        }
        let result = consumer.commit(&tpl, CommitMode::Sync);
        if result.is_ok() {
            for &(p, pos) in positions {
                self.tracker.commit_acknowledged(p, pos);
            }
        }
        self.metrics.emit(OffsetsCommitted {
            topic: &self.input_topic,
            positions,
            result: result.as_ref().map(|_| ()),
        });
        result
    }

    /// Partitions of the input topic are now this instance's, by a rebalance or a replay's own assignment.
    pub fn partitions_assigned(&self, partitions: &[i32]) {
        self.tracker.assign(partitions);
        self.metrics.emit(PartitionsAssigned {
            partitions,
            held: self.held_partitions(),
        });
    }

    fn input_partitions(&self, tpl: &TopicPartitionList) -> Vec<i32> {
        tpl.elements()
            .iter()
            .filter(|e| e.topic() == self.input_topic)
            .map(|e| e.partition())
            .collect()
    }

    /// Partitions held now, told to the readiness probe; returned for the event that changed them.
    fn held_partitions(&self) -> usize {
        let n = self.tracker.assigned().len();
        self.health.set_assigned(n > 0);
        n
    }
}

fn log_librdkafka(client: &str, level: rdkafka::config::RDKafkaLogLevel, fac: &str, msg: &str) {
    use rdkafka::config::RDKafkaLogLevel as L;
    match level {
        L::Emerg | L::Alert | L::Critical | L::Error => {
            error!(target: "librdkafka", client, fac, "{msg}")
        }
        L::Warning => warn!(target: "librdkafka", client, fac, "{msg}"),
        L::Notice | L::Info => info!(target: "librdkafka", client, fac, "{msg}"),
        L::Debug => debug!(target: "librdkafka", client, fac, "{msg}"),
    }
}

fn on_error(shared: &Shared, client: &str, error: KafkaError, reason: &str) {
    // Clients report their own connections going away while they are destroyed.
    let closing = shared.closing.load(Ordering::SeqCst);
    if !closing && error.rdkafka_error_code() == Some(RDKafkaErrorCode::AllBrokersDown) {
        shared.health.set_connected(false);
    }
    // librdkafka reconnects and retries by itself; these are worth a warning, not a crash.
    shared.metrics.emit(KafkaClientError {
        client,
        error: &error,
        reason,
        closing,
    });
}

fn any_broker_up(stats: &Statistics) -> bool {
    stats.brokers.values().any(|b| b.state == "UP")
}

/// Context of the input consumer.
pub(crate) struct ConsumerCtx {
    pub shared: Arc<Shared>,
}

impl ClientContext for ConsumerCtx {
    fn log(&self, level: rdkafka::config::RDKafkaLogLevel, fac: &str, log_message: &str) {
        log_librdkafka("consumer", level, fac, log_message);
    }

    fn error(&self, error: KafkaError, reason: &str) {
        on_error(&self.shared, "consumer", error, reason);
    }

    fn stats(&self, stats: Statistics) {
        let s = &self.shared;
        s.health.set_connected(any_broker_up(&stats));
        // Partition -1 is librdkafka's internal "unassigned" queue; a lag of -1 means unknown.
        let known: Vec<(i32, &rdkafka::statistics::Partition)> = stats
            .topics
            .get(&s.input_topic)
            .map(|topic| {
                topic
                    .partitions
                    .iter()
                    .filter(|(p, part)| **p >= 0 && part.consumer_lag >= 0)
                    .map(|(p, part)| (*p, part))
                    .collect()
            })
            .unwrap_or_default();
        let lags: Vec<(i32, i64)> = known
            .iter()
            .map(|(p, part)| (*p, part.consumer_lag))
            .collect();
        // librdkafka counts consumer_lag from the committed offset to the partition's end (the high
        // watermark, or the last stable offset under read_committed), so the two give that end back: what
        // the lag in seconds needs to tell "caught up" from "records wait that were not fetched yet".
        let ends: Vec<(i32, EndStats)> = known
            .iter()
            .map(|(p, part)| {
                let committed = part.committed_offset;
                let end = committed + part.consumer_lag;
                (*p, EndStats { end, committed })
            })
            .collect();
        s.tracker.observe_ends(&ends);
        s.metrics.emit(ConsumerLag {
            topic: &s.input_topic,
            lags: &lags,
        });
    }
}

impl ConsumerContext for ConsumerCtx {
    /// The rebalance barrier. On revoke: stop taking work for the revoked partitions (nothing is handed out
    /// while this callback runs), wait for their in-flight articles to be acknowledged up to the drain
    /// deadline, commit the done prefix synchronously, and only then let librdkafka release them. The next owner
    /// starts from that commit, so work finished here is not redone and work abandoned at the deadline is
    /// redelivered, never skipped. Under cooperative-sticky assignment the revoked set is only the partitions
    /// that move; the others keep flowing.
    fn pre_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        let s = &self.shared;
        let Rebalance::Revoke(tpl) = rebalance else {
            return;
        };
        let partitions = s.input_partitions(tpl);
        let positions;
        let how = if s.is_aborted() {
            Revocation::Aborted
        } else if consumer.assignment_lost() {
            // The group moved on without us (session timeout): a commit would be rejected and the new owner is
            // already consuming. Our uncommitted work is redelivered to it.
            Revocation::Lost
        } else {
            let started = Instant::now();
            let deadline = if s.closing.load(Ordering::SeqCst) {
                started
            } else {
                started + s.rebalance_drain_timeout
            };
            let drained = s.tracker.wait_drained(Some(&partitions), deadline);
            positions = s.tracker.commit_candidates(Some(&partitions));
            let committed = s.commit(consumer, &positions).is_ok();
            Revocation::Drained {
                positions: &positions,
                committed,
                drained,
                waited: started.elapsed(),
                abandoned: s.tracker.pending(Some(&partitions)),
            }
        };
        s.tracker.revoke(&partitions);
        s.metrics.emit(PartitionsRevoked {
            topic: &s.input_topic,
            partitions: &partitions,
            how,
            held: s.held_partitions(),
        });
    }

    fn post_rebalance(&self, _consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        let s = &self.shared;
        match rebalance {
            Rebalance::Assign(tpl) => {
                let partitions = s.input_partitions(tpl);
                s.partitions_assigned(&partitions);
                // Joining a group needs the coordinator, so an assignment proves a working connection.
                s.health.set_connected(true);
            }
            Rebalance::Revoke(_) => {}
            Rebalance::Error(e) => s.metrics.emit(RebalanceFailed { error: e }),
        }
    }

    fn main_queue_min_poll_interval(&self) -> rdkafka::util::Timeout {
        rdkafka::util::Timeout::After(Duration::from_millis(100))
    }
}

/// Context of the output producer.
pub(crate) struct ProducerCtx {
    pub shared: Arc<Shared>,
}

impl ClientContext for ProducerCtx {
    fn log(&self, level: rdkafka::config::RDKafkaLogLevel, fac: &str, log_message: &str) {
        log_librdkafka("producer", level, fac, log_message);
    }

    fn error(&self, error: KafkaError, reason: &str) {
        on_error(&self.shared, "producer", error, reason);
    }

    fn stats(&self, stats: Statistics) {
        self.shared.metrics.emit(ProducerQueue {
            messages: stats.msg_cnt as i64,
        });
    }
}

impl ProducerContext for ProducerCtx {
    type DeliveryOpaque = Box<Delivery>;

    fn delivery(&self, result: &DeliveryResult<'_>, delivery: Box<Delivery>) {
        on_delivery(result, &delivery);
    }
}
