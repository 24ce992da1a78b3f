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
use super::offsets::OffsetTracker;
use crate::http::Health;
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
        self.metrics.commit(result.is_ok());
        match &result {
            Ok(()) => {
                for &(p, pos) in positions {
                    self.tracker.commit_acknowledged(p, pos);
                }
                debug!(?positions, "offsets committed");
            }
            Err(e) => {
                warn!(topic = %self.input_topic, ?positions, error = %e, "offset commit failed; it will be retried")
            }
        }
        result
    }

    fn input_partitions(&self, tpl: &TopicPartitionList) -> Vec<i32> {
        tpl.elements()
            .iter()
            .filter(|e| e.topic() == self.input_topic)
            .map(|e| e.partition())
            .collect()
    }

    fn update_assignment_gauges(&self) {
        let n = self.tracker.assigned().len();
        self.metrics.assigned_partitions.set(n as i64);
        self.health.set_assigned(n > 0);
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
    if shared.closing.load(Ordering::SeqCst) {
        // Clients report their own connections going away while they are destroyed.
        debug!(client, error = %error, reason, "Kafka client error while closing");
        return;
    }
    let code = error.rdkafka_error_code();
    let code_name = code.map_or_else(|| "other".to_string(), |c| format!("{c:?}"));
    shared.metrics.kafka_error(client, &code_name);
    if code == Some(RDKafkaErrorCode::AllBrokersDown) {
        shared.health.set_connected(false);
    }
    // librdkafka reconnects and retries by itself; these are worth a warning, not a crash.
    warn!(client, error = %error, reason, "Kafka client error");
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
        s.metrics.consumer_lag.reset();
        if let Some(topic) = stats.topics.get(&s.input_topic) {
            for (p, part) in &topic.partitions {
                // Partition -1 is librdkafka's internal "unassigned" queue; a lag of -1 means unknown.
                if *p >= 0 && part.consumer_lag >= 0 {
                    s.metrics
                        .consumer_lag
                        .with_label_values(&[&s.input_topic, &p.to_string()])
                        .set(part.consumer_lag);
                }
            }
        }
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
        s.metrics.rebalance("revoke");
        if s.is_aborted() {
            s.tracker.revoke(&partitions);
            return;
        }
        if consumer.assignment_lost() {
            s.metrics.rebalance("lost");
            // The group moved on without us (session timeout): a commit would be rejected and the new owner is
            // already consuming. Our uncommitted work is redelivered to it.
            warn!(
                ?partitions,
                "assignment lost; uncommitted articles of these partitions will be redelivered"
            );
        } else {
            let started = Instant::now();
            let deadline = if s.closing.load(Ordering::SeqCst) {
                started
            } else {
                started + s.rebalance_drain_timeout
            };
            let drained = s.tracker.wait_drained(Some(&partitions), deadline);
            let positions = s.tracker.commit_candidates(Some(&partitions));
            let committed = s.commit(consumer, &positions).is_ok();
            let left = s.tracker.pending(Some(&partitions));
            if drained {
                info!(
                    ?partitions,
                    ?positions,
                    committed,
                    waited_ms = started.elapsed().as_millis() as u64,
                    "partitions revoked after draining"
                );
            } else {
                warn!(?partitions, ?positions, committed, abandoned = left, "partitions revoked at the drain deadline; abandoned articles will be redelivered to the next owner");
            }
        }
        s.tracker.revoke(&partitions);
        s.update_assignment_gauges();
    }

    fn post_rebalance(&self, _consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        let s = &self.shared;
        match rebalance {
            Rebalance::Assign(tpl) => {
                let partitions = s.input_partitions(tpl);
                s.metrics.rebalance("assign");
                s.tracker.assign(&partitions);
                // Joining a group needs the coordinator, so an assignment proves a working connection.
                s.health.set_connected(true);
                s.update_assignment_gauges();
                info!(?partitions, "partitions assigned");
            }
            Rebalance::Revoke(_) => {}
            Rebalance::Error(e) => {
                s.metrics.rebalance("error");
                warn!(error = %e, "rebalance error");
            }
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
        self.shared.metrics.producer_queue.set(stats.msg_cnt as i64);
    }
}

impl ProducerContext for ProducerCtx {
    type DeliveryOpaque = Box<Delivery>;

    fn delivery(&self, result: &DeliveryResult<'_>, delivery: Box<Delivery>) {
        on_delivery(result, &delivery);
    }
}
