//! Replay: re-process the input records of a time range, then stop.
//!
//! The use case is re-enriching last month after a model upgrade. Outputs carry `pipeline_version` and the
//! same deterministic event ids as the first time, so compacted output topics end up holding the new version;
//! with an output prefix they go to parallel topics instead, for a side-by-side comparison.
//!
//! How a range becomes offsets. Kafka indexes every partition by record timestamp: the ListOffsets request
//! with a timestamp T (librdkafka's `offsets_for_times`) answers, per partition, the earliest offset whose
//! timestamp is at or after T, or "none" when no such record exists yet. So `--from F` gives each partition's
//! first offset and `--to T` its end (exclusive); without `--to`, the end is the high watermark read when the
//! replay starts, so that a replay of "everything since F" finishes rather than following the live stream.
//! Brokers differ here. Apache Kafka looks the time up in each partition's time index (record timestamps,
//! CreateTime or LogAppendTime as the topic says). librdkafka's mock cluster does not implement the lookup
//! (it answers "none" for every time), so replay cannot be tested against it. tansu 0.6 (in-memory storage)
//! answers by the time it stored each batch, and offset 0 instead of "none"; the plan reads an end before the
//! start as "none" (see `make`), while a `--from` later than every record reads as the whole topic there.
//! A range is a range of offsets: a producer that stamps records out of order (CreateTime) can leave a record
//! stamped inside the window outside the offsets, as for every Kafka tool that seeks by time.
//!
//! The replay has a consumer group of its own, so the live service's committed offsets are never touched. It
//! does not join that group: it assigns itself the partitions at the planned offsets, so nothing is rebalanced
//! away from it mid-range and it alone knows where the range ends. The group only keeps the replay's commits:
//! a replay stopped half-way (SIGTERM, a crash, a Kubernetes Job retried) and started again with the same group
//! and range resumes from its last commit rather than from the start.
//!
//! Where a partition's range ends. A record at or past the end is not processed, and the partition is paused.
//! The consumer has reached the end of a partition's range when such a record arrives or when librdkafka
//! reports the end of the partition (`enable.partition.eof`): one of the two always happens, even when a
//! compacted topic or a transaction marker leaves the last offsets of a range without a record. Records are
//! handed out in offset order, so by then every record of the range has been taken. The replay stops once
//! every partition is at its end (or blocked, by an undeliverable record under `on_undeliverable = "stop"`)
//! and nothing taken is still being processed; the usual graceful stop then commits and closes.

use std::collections::{BTreeMap, HashSet};
use std::time::Duration;

use chrono::{DateTime, Utc};
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::{Offset, TopicPartitionList};

use crate::config::Config;

/// How long one metadata, offset or committed-offset request of the planning may take.
const PLAN_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    #[error("the replay's range is empty: --to ({to}) must be later than --from ({from})")]
    EmptyWindow {
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    },
    #[error("could not create the Kafka consumer that plans the replay: {0}; check the [kafka.consumer] properties in the configuration")]
    Client(KafkaError),
    #[error("could not read the partitions of topic `{topic}` from {brokers}: {error}; is the broker reachable and does the topic exist?")]
    Metadata {
        topic: String,
        brokers: String,
        error: String,
    },
    #[error("the broker did not answer the offsets-for-times lookup of topic `{topic}`: {error}; the broker must support ListOffsets by timestamp (Kafka 0.10.1 or later)")]
    OffsetsForTimes { topic: String, error: KafkaError },
    #[error("could not read the high watermark of `{topic}` partition {partition}: {error}")]
    Watermarks {
        topic: String,
        partition: i32,
        error: KafkaError,
    },
    #[error("could not read the committed offsets of the replay's group `{group}`: {error}")]
    Committed { group: String, error: KafkaError },
}

/// The time range of a replay: records stamped at or after `from` and, with `to`, before `to`.
#[derive(Debug, Clone, Copy)]
pub struct ReplayWindow {
    pub from: DateTime<Utc>,
    pub to: Option<DateTime<Utc>>,
}

impl ReplayWindow {
    pub fn new(from: DateTime<Utc>, to: Option<DateTime<Utc>>) -> Result<Self, ReplayError> {
        match to {
            Some(to) if to <= from => Err(ReplayError::EmptyWindow { from, to }),
            _ => Ok(Self { from, to }),
        }
    }

    /// The consumer group a replay of this window uses unless told otherwise: named after the live group and
    /// the window, so that running the same replay again resumes it and another window starts afresh.
    pub fn default_group(&self, live_group: &str) -> String {
        let stamp = |t: DateTime<Utc>| t.format("%Y%m%dT%H%M%SZ").to_string();
        match self.to {
            Some(to) => format!("{live_group}-replay-{}-{}", stamp(self.from), stamp(to)),
            None => format!("{live_group}-replay-{}", stamp(self.from)),
        }
    }
}

/// One partition's share of a replay: offsets `start..end`, resumed at `position`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PartitionRange {
    pub partition: i32,
    /// The first offset of the window.
    pub start: i64,
    /// The first offset past the window (exclusive).
    pub end: i64,
    /// Where processing starts: `start`, or the replay group's committed offset when a replay of the same
    /// range was stopped part-way.
    pub position: i64,
}

impl PartitionRange {
    /// Records of the range still to process (offsets, so an upper bound on a compacted topic).
    pub fn remaining(&self) -> i64 {
        (self.end - self.position).max(0)
    }

    pub fn len(&self) -> i64 {
        (self.end - self.start).max(0)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Where a replay starts and ends in every partition of the input topic.
#[derive(Debug, Clone)]
pub struct ReplayPlan {
    pub topic: String,
    pub group: String,
    pub window: ReplayWindow,
    pub partitions: Vec<PartitionRange>,
}

impl ReplayPlan {
    /// Asks the brokers where `window` lies in the input topic of `config` (whose `kafka.group_id` is the
    /// replay's own group). Blocking: a few round trips to the brokers.
    pub fn make(config: &Config, window: ReplayWindow) -> Result<Self, ReplayError> {
        let k = &config.kafka;
        let mut client = ClientConfig::new();
        for (key, value) in &k.consumer {
            client.set(key, value);
        }
        let consumer: BaseConsumer = client
            .set("bootstrap.servers", &k.brokers)
            .set("group.id", &k.group_id)
            .set("enable.auto.commit", "false")
            .create()
            .map_err(ReplayError::Client)?;
        let topic = k.input_topic.as_str();
        let metadata_error = |error: String| ReplayError::Metadata {
            topic: topic.to_string(),
            brokers: k.brokers.clone(),
            error,
        };
        let metadata = consumer
            .fetch_metadata(Some(topic), PLAN_TIMEOUT)
            .map_err(|e| metadata_error(e.to_string()))?;
        let Some(meta) = metadata.topics().iter().find(|t| t.name() == topic) else {
            return Err(metadata_error("the topic is not in the metadata".into()));
        };
        if let Some(error) = meta.error() {
            return Err(metadata_error(format!("{error:?}")));
        }
        let mut partitions: Vec<i32> = meta.partitions().iter().map(|p| p.id()).collect();
        partitions.sort_unstable();
        if partitions.is_empty() {
            return Err(metadata_error("the topic has no partitions".into()));
        }

        let highs: BTreeMap<i32, i64> = partitions
            .iter()
            .map(|&p| {
                consumer
                    .fetch_watermarks(topic, p, PLAN_TIMEOUT)
                    .map(|(_, high)| (p, high))
                    .map_err(|error| ReplayError::Watermarks {
                        topic: topic.to_string(),
                        partition: p,
                        error,
                    })
            })
            .collect::<Result<_, _>>()?;
        let lookup = |at: DateTime<Utc>| -> Result<BTreeMap<i32, Option<i64>>, ReplayError> {
            let mut tpl = TopicPartitionList::new();
            for &p in &partitions {
                tpl.add_partition_offset(topic, p, Offset::Offset(at.timestamp_millis()))
                    .expect("a timestamp is a valid offset request");
            }
            let found = consumer
                .offsets_for_times(tpl, PLAN_TIMEOUT)
                .map_err(|error| ReplayError::OffsetsForTimes {
                    topic: topic.to_string(),
                    error,
                })?;
            found
                .elements()
                .iter()
                .map(|e| {
                    e.error().map_err(|error| ReplayError::OffsetsForTimes {
                        topic: topic.to_string(),
                        error,
                    })?;
                    // "No record at or after the time" comes back as the end of the partition.
                    let offset = match e.offset() {
                        Offset::Offset(o) if o >= 0 => Some(o),
                        _ => None,
                    };
                    Ok((e.partition(), offset))
                })
                .collect()
        };
        let starts = lookup(window.from)?;
        let ends = window.to.map(lookup).transpose()?;

        let mut committed_tpl = TopicPartitionList::new();
        for &p in &partitions {
            committed_tpl
                .add_partition_offset(topic, p, Offset::Invalid)
                .expect("an unset offset is valid");
        }
        let committed: BTreeMap<i32, i64> = consumer
            .committed_offsets(committed_tpl, PLAN_TIMEOUT)
            .map_err(|error| ReplayError::Committed {
                group: k.group_id.clone(),
                error,
            })?
            .elements()
            .iter()
            .filter_map(|e| match e.offset() {
                Offset::Offset(o) if o >= 0 => Some((e.partition(), o)),
                _ => None,
            })
            .collect();

        let partitions = partitions
            .iter()
            .map(|&p| {
                let high = highs[&p];
                let start = starts.get(&p).copied().flatten().unwrap_or(high);
                // An end before the start cannot come from a broker that answers as Kafka does (a record at
                // or after `to` is also at or after `from`); tansu answers offset 0 where Kafka answers "none",
                // and "none" means every record there now is before `to`.
                let end = match &ends {
                    Some(ends) => ends.get(&p).copied().flatten().unwrap_or(high),
                    None => high,
                };
                let end = if end < start { high } else { end.min(high) };
                let position = match committed.get(&p) {
                    Some(&c) if c > start && c <= end => c,
                    _ => start,
                };
                PartitionRange {
                    partition: p,
                    start,
                    end,
                    position,
                }
            })
            .collect();
        Ok(Self {
            topic: topic.to_string(),
            group: k.group_id.clone(),
            window,
            partitions,
        })
    }

    /// Offsets of the window, over all partitions.
    pub fn records(&self) -> i64 {
        self.partitions.iter().map(PartitionRange::len).sum()
    }

    /// Offsets still to process, over all partitions.
    pub fn remaining(&self) -> i64 {
        self.partitions.iter().map(PartitionRange::remaining).sum()
    }

    /// The partitions with something left to process, and where to start in each.
    pub(crate) fn assignment(&self) -> Vec<(i32, i64)> {
        self.partitions
            .iter()
            .filter(|r| r.remaining() > 0)
            .map(|r| (r.partition, r.position))
            .collect()
    }

    /// The bookkeeping the consumer loop keeps of where each assigned partition stops.
    pub(crate) fn ends(&self) -> RangeEnds {
        RangeEnds {
            ends: self
                .partitions
                .iter()
                .filter(|r| r.remaining() > 0)
                .map(|r| (r.partition, r.end))
                .collect(),
            at_end: HashSet::new(),
            stopped: HashSet::new(),
        }
    }
}

/// The consumer loop's view of a replay: each partition's end, and which partitions are known to be there.
#[derive(Debug)]
pub(crate) struct RangeEnds {
    ends: BTreeMap<i32, i64>,
    /// Partitions whose consumer reached the end of the range (a record past it, or the partition's end).
    at_end: HashSet<i32>,
    /// Partitions paused because a record past the range arrived.
    stopped: HashSet<i32>,
}

impl RangeEnds {
    /// Whether a consumed record lies past its partition's range; such a record is not processed, and the
    /// partition is marked so that it is paused.
    pub fn past_end(&mut self, partition: i32, offset: i64) -> bool {
        let past = self.ends.get(&partition).is_some_and(|&end| offset >= end);
        if past {
            self.at_end.insert(partition);
            self.stopped.insert(partition);
        }
        past
    }

    /// librdkafka reported the end of `partition`: no record of the range is left to fetch from it.
    pub fn partition_eof(&mut self, partition: i32) {
        if self.ends.contains_key(&partition) {
            self.at_end.insert(partition);
        }
    }

    /// Partitions to keep paused: a record past their range arrived.
    pub fn stopped(&self) -> impl Iterator<Item = i32> + '_ {
        self.stopped.iter().copied()
    }

    /// The partitions not yet at their end.
    pub fn unfinished(&self) -> impl Iterator<Item = i32> + '_ {
        self.ends
            .keys()
            .copied()
            .filter(|p| !self.at_end.contains(p))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(ranges: &[(i32, i64, i64, i64)]) -> ReplayPlan {
        ReplayPlan {
            topic: "in".into(),
            group: "g".into(),
            window: ReplayWindow::new(DateTime::UNIX_EPOCH, None).unwrap(),
            partitions: ranges
                .iter()
                .map(|&(partition, start, end, position)| PartitionRange {
                    partition,
                    start,
                    end,
                    position,
                })
                .collect(),
        }
    }

    #[test]
    fn a_window_must_not_be_empty() {
        let t = DateTime::parse_from_rfc3339("2026-11-01T00:00:00Z")
            .unwrap()
            .to_utc();
        assert!(ReplayWindow::new(t, Some(t)).is_err());
        assert!(ReplayWindow::new(t, Some(t - chrono::Duration::hours(1))).is_err());
        let w = ReplayWindow::new(t, Some(t + chrono::Duration::days(30))).unwrap();
        assert_eq!(
            w.default_group("stancewatch"),
            "stancewatch-replay-20261101T000000Z-20261201T000000Z"
        );
        let open = ReplayWindow::new(t, None).unwrap();
        assert_eq!(
            open.default_group("stancewatch"),
            "stancewatch-replay-20261101T000000Z"
        );
    }

    #[test]
    fn only_partitions_with_records_left_are_assigned() {
        // Partition 0: 10..20 from the start; 1: nothing in the window; 2: resumed at 25 of 20..30; 3: done.
        let p = plan(&[(0, 10, 20, 10), (1, 7, 7, 7), (2, 20, 30, 25), (3, 5, 9, 9)]);
        assert_eq!(p.assignment(), vec![(0, 10), (2, 25)]);
        assert_eq!(p.records(), 10 + 10 + 4);
        assert_eq!(p.remaining(), 10 + 5);
    }

    #[test]
    fn a_partition_is_at_its_end_by_a_record_past_it_or_its_eof() {
        let p = plan(&[(0, 0, 10, 0), (1, 0, 10, 0), (2, 0, 10, 0), (3, 4, 4, 4)]);
        let mut ends = p.ends();
        assert_eq!(ends.unfinished().collect::<Vec<_>>(), vec![0, 1, 2]);
        assert!(
            !ends.past_end(0, 9),
            "the last offset of the range is in it"
        );
        assert!(ends.past_end(0, 10));
        assert!(!ends.past_end(7, 1_000), "a partition outside the plan");
        assert_eq!(ends.unfinished().collect::<Vec<_>>(), vec![1, 2]);
        ends.partition_eof(1);
        ends.partition_eof(2);
        ends.partition_eof(3);
        assert_eq!(ends.unfinished().count(), 0);
        assert_eq!(ends.stopped().collect::<Vec<_>>(), vec![0]);
    }
}
