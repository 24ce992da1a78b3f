//! librdkafka's mock cluster, for the demo and the end-to-end tests.
//!
//! The mock cluster is a Kafka broker implemented inside librdkafka that speaks the real protocol on loopback
//! ports: the service talks to it exactly as to a real cluster (consumer groups, commits, idempotent produce,
//! rebalances). It lives as long as the client that owns it, so [`MockKafka`] keeps that client.
//! Two of its behaviours matter here: it has no CreateTopics, so topics are created through
//! [`MockKafka::create_topic`]; and its first group join waits ~3 s (the initial rebalance delay), which
//! [`MockKafka::start`] sets to zero.

use std::time::Duration;

use rdkafka::config::ClientConfig;
use rdkafka::error::{KafkaError, KafkaResult, RDKafkaErrorCode};
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::mocking::MockCluster;
use rdkafka::producer::{
    BaseProducer, DefaultProducerContext, FutureProducer, FutureRecord, Producer,
};
use rdkafka::util::Timeout;

/// A mock Kafka cluster owned by this process.
pub struct MockKafka {
    owner: BaseProducer,
    bootstrap: String,
}

impl MockKafka {
    /// Starts a cluster of `brokers` brokers on loopback ports chosen by the OS.
    ///
    /// The brokers' threads run in the `SCHED_BATCH` class, as the service's Kafka threads do: in the bench
    /// they stand in for brokers on other machines, so they should take the service's cores as politely.
    pub fn start(brokers: u32) -> KafkaResult<Self> {
        let owner: BaseProducer = super::sched::on_batch_thread(|| {
            ClientConfig::new()
                .set("test.mock.num.brokers", brokers.to_string())
                // The owner never produces; keep its own logging out of the way.
                .set("log_level", "3")
                .create()
        })?;
        // SAFETY: the handle belongs to `owner`, which outlives this call; the function only sets a field.
        unsafe {
            let cluster =
                rdkafka::bindings::rd_kafka_handle_mock_cluster(owner.client().native_ptr());
            if cluster.is_null() {
                return Err(KafkaError::MockCluster(RDKafkaErrorCode::Fail));
            }
            rdkafka::bindings::rd_kafka_mock_group_initial_rebalance_delay_ms(cluster, 0);
        }
        let bootstrap = owner
            .client()
            .mock_cluster()
            .ok_or(KafkaError::MockCluster(RDKafkaErrorCode::Fail))?
            .bootstrap_servers();
        Ok(Self { owner, bootstrap })
    }

    /// The `bootstrap.servers` value for clients of this cluster.
    pub fn bootstrap_servers(&self) -> &str {
        &self.bootstrap
    }

    /// The cluster itself, for fault injection (`broker_down`, `request_errors`, `broker_round_trip_time`).
    pub fn cluster(&self) -> MockCluster<'_, DefaultProducerContext> {
        self.owner
            .client()
            .mock_cluster()
            .expect("the owner client has a mock cluster")
    }

    pub fn create_topic(&self, name: &str, partitions: i32) -> KafkaResult<()> {
        self.cluster().create_topic(name, partitions, 1)
    }
}

/// A record to publish to a topic (articles in the demo and the tests).
#[derive(Debug, Clone, Default)]
pub struct Publish {
    pub key: Option<Vec<u8>>,
    /// None: a tombstone.
    pub payload: Option<Vec<u8>>,
    pub headers: Vec<(String, Vec<u8>)>,
    /// The record's Kafka timestamp (CreateTime), ms since the epoch; None: the time it is produced.
    pub timestamp: Option<i64>,
}

/// Produces `records` to `topic` and waits until all are acknowledged; returns each record's (partition,
/// offset) in order.
pub async fn publish_all(
    bootstrap: &str,
    topic: &str,
    records: &[Publish],
) -> KafkaResult<Vec<(i32, i64)>> {
    publish_all_with(bootstrap, topic, records, &[]).await
}

/// As [`publish_all`], with extra producer properties (e.g. `batch.num.messages`).
pub async fn publish_all_with(
    bootstrap: &str,
    topic: &str,
    records: &[Publish],
    properties: &[(&str, &str)],
) -> KafkaResult<Vec<(i32, i64)>> {
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", bootstrap)
        .set("enable.idempotence", "true")
        .set("linger.ms", "5");
    for (k, v) in properties {
        config.set(*k, *v);
    }
    let producer: FutureProducer = config.create()?;
    let sends = records.iter().map(|r| {
        let headers = r.headers.iter().fold(OwnedHeaders::new(), |h, (k, v)| {
            h.insert(Header {
                key: k,
                value: Some(v.as_slice()),
            })
        });
        let mut fr = FutureRecord::<[u8], [u8]>::to(topic).headers(headers);
        if let Some(p) = &r.payload {
            fr = fr.payload(p);
        }
        if let Some(k) = &r.key {
            fr = fr.key(k);
        }
        if let Some(t) = r.timestamp {
            fr = fr.timestamp(t);
        }
        producer.send(fr, Timeout::After(Duration::from_secs(30)))
    });
    let mut positions = Vec::with_capacity(records.len());
    for result in futures::future::join_all(sends).await {
        let delivery = result.map_err(|(e, _)| e)?;
        positions.push((delivery.partition, delivery.offset));
    }
    producer.flush(Duration::from_secs(10))?;
    Ok(positions)
}
