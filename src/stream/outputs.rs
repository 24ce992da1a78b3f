//! Reading the service's output topics back, from the beginning: the demo prints what it reads, the bench times
//! it, the end-to-end and fault tests check it. One reader for all of them, so that they agree on what an
//! output record is.
//!
//! The reader assigns itself every partition of the topics it is asked for (found in the brokers' metadata)
//! at their beginning, without a consumer group's commits: it sees everything, every time, and never takes
//! partitions from anyone.

use std::time::Duration;

use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::{KafkaError, KafkaResult};
use rdkafka::message::{Headers, Message};
use rdkafka::{Offset, TopicPartitionList};

use super::records::{OutputTopics, HEADER_SOURCE_OFFSET, HEADER_SOURCE_PARTITION};

/// Which of the three output topics a record came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutputKind {
    Enriched,
    EntityStance,
    DeadLetter,
}

/// One record of an output topic, as the brokers hold it.
#[derive(Debug, Clone)]
pub struct OutputRecord {
    pub kind: OutputKind,
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
    pub key: Option<Vec<u8>>,
    /// None: a record without a value (only a dead-lettered tombstone is one).
    pub value: Option<Vec<u8>>,
    /// Headers in order; a null header value is None.
    pub headers: Vec<(String, Option<Vec<u8>>)>,
    /// The record's timestamp, milliseconds since the epoch (the input's, carried through).
    pub timestamp: Option<i64>,
}

impl OutputRecord {
    /// The value of the first header named `name`: None when absent, Some(None) when its value is null.
    pub fn header(&self, name: &str) -> Option<Option<&[u8]>> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_deref())
    }

    /// A header's value as text, when present and not null.
    pub fn header_text(&self, name: &str) -> Option<String> {
        self.header(name)
            .flatten()
            .map(|v| String::from_utf8_lossy(v).into_owned())
    }

    /// The input partition and offset a dead-letter record names in its headers.
    pub fn source_position(&self) -> Option<(i32, i64)> {
        Some((
            self.header_text(HEADER_SOURCE_PARTITION)?.parse().ok()?,
            self.header_text(HEADER_SOURCE_OFFSET)?.parse().ok()?,
        ))
    }

    /// The key as text (lossy), or None for a null key.
    pub fn key_text(&self) -> Option<String> {
        self.key
            .as_deref()
            .map(|k| String::from_utf8_lossy(k).into_owned())
    }
}

/// A reader of some of the output topics, from their beginning.
pub struct OutputReader {
    consumer: BaseConsumer,
    topics: OutputTopics,
}

impl OutputReader {
    /// Reads the topics of `kinds` among `topics` on the brokers at `bootstrap`. `fetch_wait` bounds how long
    /// the brokers hold a fetch for data (the bench keeps it short, so that it times the service and not its
    /// reader).
    pub fn new(
        bootstrap: &str,
        topics: &OutputTopics,
        kinds: &[OutputKind],
        fetch_wait: Duration,
    ) -> KafkaResult<Self> {
        let consumer: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", bootstrap)
            // Never joins the group: partitions are assigned by hand below. The id only names the client.
            .set("group.id", "stancewatch-output-reader")
            .set("enable.auto.commit", "false")
            .set(
                "fetch.wait.max.ms",
                fetch_wait.as_millis().max(1).to_string(),
            )
            .create()?;
        let mut tpl = TopicPartitionList::new();
        for kind in kinds {
            let topic = topic_of(topics, *kind);
            let metadata = consumer.fetch_metadata(Some(topic), Duration::from_secs(10))?;
            let partitions = metadata
                .topics()
                .iter()
                .find(|t| t.name() == topic)
                .map_or(0, |t| t.partitions().len());
            if partitions == 0 {
                return Err(KafkaError::MetadataFetch(
                    rdkafka::types::RDKafkaErrorCode::UnknownTopicOrPartition,
                ));
            }
            for p in 0..partitions as i32 {
                tpl.add_partition_offset(topic, p, Offset::Beginning)?;
            }
        }
        consumer.assign(&tpl)?;
        Ok(Self {
            consumer,
            topics: topics.clone(),
        })
    }

    /// The next record, waiting at most `timeout`; None when nothing came.
    pub fn poll(&self, timeout: Duration) -> Option<KafkaResult<OutputRecord>> {
        let message = match self.consumer.poll(timeout)? {
            Ok(m) => m,
            Err(e) => return Some(Err(e)),
        };
        let topic = message.topic();
        let kind = if topic == &*self.topics.enriched {
            OutputKind::Enriched
        } else if topic == &*self.topics.entity_stances {
            OutputKind::EntityStance
        } else {
            OutputKind::DeadLetter
        };
        Some(Ok(OutputRecord {
            kind,
            topic: topic.to_string(),
            partition: message.partition(),
            offset: message.offset(),
            key: message.key().map(<[u8]>::to_vec),
            value: message.payload().map(<[u8]>::to_vec),
            headers: message
                .headers()
                .map(|h| {
                    h.iter()
                        .map(|h| (h.key.to_string(), h.value.map(<[u8]>::to_vec)))
                        .collect()
                })
                .unwrap_or_default(),
            timestamp: message.timestamp().to_millis(),
        }))
    }
}

fn topic_of(topics: &OutputTopics, kind: OutputKind) -> &str {
    match kind {
        OutputKind::Enriched => &topics.enriched,
        OutputKind::EntityStance => &topics.entity_stances,
        OutputKind::DeadLetter => &topics.dlq,
    }
}
