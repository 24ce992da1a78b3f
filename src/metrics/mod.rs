//! Prometheus metrics: what operators alert on and what analysts chart.
//!
//! Each service instance owns its own [`Registry`] rather than the process-global one, so that tests can run
//! several instances in one process and assert on each one's counters. Label values are bounded by
//! construction: outcomes, reasons, stages, entity types and stance labels are closed enums; partitions are
//! bounded by the topic; per-entity stance counters exist only for the configured watchlist.
//! Names follow Prometheus conventions (`_total` counters, `_seconds` histograms, base units).
//!
//! This module is the one place that names metrics. The service moves them only by emitting the named events
//! of [`events`], which also write the matching log lines; reading them (for tests and the run summary) goes
//! through the accessors below.

use std::collections::HashSet;
use std::sync::Mutex;

use prometheus::{
    Encoder, Gauge, GaugeVec, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec,
    IntGauge, IntGaugeVec, Opts, Registry, TextEncoder,
};

use crate::article::RejectReason;

pub mod events;
use crate::config::MetricsConfig;
use crate::nlp::{Entity, EntityType, StanceLabel};

pub const PREFIX: &str = "stancewatch";

/// Outcome label of `stancewatch_articles_total`: every consumed offset ends as exactly one of these.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Enriched,
    DeadLettered,
    /// Delivered nowhere and skipped (`processing.on_undeliverable = "skip"`).
    Skipped,
}

impl Outcome {
    pub const ALL: [Outcome; 3] = [Outcome::Enriched, Outcome::DeadLettered, Outcome::Skipped];

    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Enriched => "enriched",
            Outcome::DeadLettered => "dead_lettered",
            Outcome::Skipped => "skipped",
        }
    }
}

/// Processing stages timed by `stancewatch_stage_duration_seconds`.
#[derive(Debug, Clone, Copy)]
pub enum Stage {
    Parse,
    Nlp,
    Produce,
}

impl Stage {
    fn as_str(self) -> &'static str {
        match self {
            Stage::Parse => "parse",
            Stage::Nlp => "nlp",
            Stage::Produce => "produce",
        }
    }
}

pub struct Metrics {
    registry: Registry,
    messages_consumed: IntCounter,
    articles: IntCounterVec,
    dlq: IntCounterVec,
    stage_seconds: HistogramVec,
    end_to_end_seconds: Histogram,
    in_flight: IntGauge,
    in_flight_bytes: IntGauge,
    consumer_lag: IntGaugeVec,
    consumer_lag_seconds: GaugeVec,
    rebalances: IntCounterVec,
    producer_queue: IntGauge,
    produce_retries: IntCounter,
    commits: IntCounterVec,
    kafka_errors: IntCounterVec,
    paused: IntGauge,
    assigned_partitions: IntGauge,
    blocked_partitions: IntGauge,
    undeliverable: IntCounterVec,
    /// `entities_total` by type and `stances_total` by label, resolved once: in the order of
    /// [`EntityType::ALL`] and [`StanceLabel::ALL`].
    entities: [IntCounter; EntityType::ALL.len()],
    stances: [IntCounter; StanceLabel::ALL.len()],
    watched: IntCounterVec,
    watchlist: HashSet<String>,
    source_stances: IntCounterVec,
    sources: Mutex<SourceLabels>,
    up_since: Gauge,
}

fn name(n: &str) -> String {
    format!("{PREFIX}_{n}")
}

impl Metrics {
    pub fn new(config: &MetricsConfig) -> Self {
        let watchlist = &config.watchlist;
        let registry = Registry::new();
        macro_rules! reg {
            ($m:expr) => {{
                let m = $m.expect("metric definition is valid");
                registry
                    .register(Box::new(m.clone()))
                    .expect("metric names are unique");
                m
            }};
        }
        let latency_buckets = vec![
            0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
        ];
        let stage_buckets = vec![
            0.0001, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0, 5.0,
        ];

        let build_info = reg!(IntGaugeVec::new(
            Opts::new(
                name("build_info"),
                "Build information; the value is always 1."
            ),
            &["version", "pipeline"]
        ));
        build_info
            .with_label_values(&[env!("CARGO_PKG_VERSION"), crate::nlp::Pipeline::VERSION])
            .set(1);

        let m = Metrics {
            messages_consumed: reg!(IntCounter::new(
                name("messages_consumed_total"),
                "Input records received from Kafka."
            )),
            articles: reg!(IntCounterVec::new(
                Opts::new(
                    name("articles_total"),
                    "Input records fully handled, by outcome: enriched, or dead_lettered (sent to the DLQ)."
                ),
                &["outcome"]
            )),
            dlq: reg!(IntCounterVec::new(
                Opts::new(name("dlq_records_total"), "Records sent to the dead-letter topic, by reason."),
                &["reason"]
            )),
            stage_seconds: reg!(HistogramVec::new(
                HistogramOpts::new(name("stage_duration_seconds"), "Time spent per article in each stage.")
                    .buckets(stage_buckets),
                &["stage"]
            )),
            end_to_end_seconds: reg!(Histogram::with_opts(
                HistogramOpts::new(
                    name("end_to_end_latency_seconds"),
                    "From the input record's Kafka timestamp to the acknowledgement of its last output."
                )
                .buckets(latency_buckets)
            )),
            in_flight_bytes: reg!(IntGauge::new(
                name("in_flight_bytes"),
                "Input bytes of the articles being processed (bounded by processing.max_in_flight_bytes)."
            )),
            in_flight: reg!(IntGauge::new(
                name("in_flight_articles"),
                "Articles consumed whose offsets are not yet committed (bounded by processing.max_in_flight)."
            )),
            consumer_lag: reg!(IntGaugeVec::new(
                Opts::new(name("consumer_lag"), "Messages between the committed offset and the partition's end."),
                &["topic", "partition"]
            )),
            consumer_lag_seconds: reg!(GaugeVec::new(
                Opts::new(
                    name("consumer_lag_seconds"),
                    "Age of the oldest input record not yet processed, per assigned partition, from its Kafka \
                     timestamp: the oldest consumed but uncommitted record, or, when none is and the partition \
                     lags in messages, the last consumed record (an upper bound); 0 when caught up. Absent \
                     while no timestamp is known."
                ),
                &["topic", "partition"]
            )),
            rebalances: reg!(IntCounterVec::new(
                Opts::new(name("rebalances_total"), "Partition assignment changes, by kind: assign, revoke, lost (the group moved on without this instance, e.g. after a broker outage; its in-flight work is redelivered), error."),
                &["kind"]
            )),
            producer_queue: reg!(IntGauge::new(
                name("producer_queue_messages"),
                "Records waiting in the producer's queue for acknowledgement."
            )),
            produce_retries: reg!(IntCounter::new(
                name("produce_retries_total"),
                "Times an article's outputs were produced again after a delivery failure."
            )),
            commits: reg!(IntCounterVec::new(
                Opts::new(name("offset_commits_total"), "Offset commits, by result: ok or error."),
                &["result"]
            )),
            kafka_errors: reg!(IntCounterVec::new(
                Opts::new(name("kafka_errors_total"), "Errors reported by librdkafka, by client and error code."),
                &["client", "code"]
            )),
            paused: reg!(IntGauge::new(
                name("consumer_paused"),
                "1 while max_in_flight articles or max_in_flight_bytes stop consumption (the loop holds, and pauses the partitions if it lasts a second)."
            )),
            assigned_partitions: reg!(IntGauge::new(
                name("assigned_partitions"),
                "Input partitions currently assigned to this instance."
            )),
            blocked_partitions: reg!(IntGauge::new(
                name("blocked_partitions"),
                "Input partitions stopped at a record that no topic accepts, not even the dead-letter topic \
                 (processing.on_undeliverable = \"stop\"); they make no progress until restarted."
            )),
            undeliverable: reg!(IntCounterVec::new(
                Opts::new(
                    name("undeliverable_records_total"),
                    "Input records whose outputs and dead-letter record were all refused, by what was done: \
                     stop (the partition stopped there) or skip (the record was skipped)."
                ),
                &["action"]
            )),
            entities: {
                let by_type = reg!(IntCounterVec::new(
                    Opts::new(name("entities_total"), "Entities found in enriched articles, by type."),
                    &["type"]
                ));
                EntityType::ALL.map(|t| by_type.with_label_values(&[t.as_str()]))
            },
            stances: {
                let by_label = reg!(IntCounterVec::new(
                    Opts::new(name("stances_total"), "Article-level stances toward entities, by label."),
                    &["label"]
                ));
                StanceLabel::ALL.map(|l| by_label.with_label_values(&[l.as_str()]))
            },
            watched: reg!(IntCounterVec::new(
                Opts::new(
                    name("watched_entity_stances_total"),
                    "Stances toward the entities on metrics.watchlist, by entity and label."
                ),
                &["entity_id", "name", "label"]
            )),
            source_stances: reg!(IntCounterVec::new(
                Opts::new(
                    name("source_stances_total"),
                    "Article-level stances by the article's source (metrics.sources, else the first \
                     metrics.max_sources seen; the rest count as \"other\") and label."
                ),
                &["source", "label"]
            )),
            sources: Mutex::new(SourceLabels::new(&config.sources, config.max_sources)),
            up_since: reg!(Gauge::new(name("start_time_seconds"), "Start time of the process, Unix seconds.")),
            watchlist: watchlist.iter().map(|w| w.to_lowercase()).collect(),
            registry,
        };
        m.up_since.set(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0.0, |d| d.as_secs_f64()),
        );
        // Pre-create the closed label sets so dashboards and alerts see zeros rather than absent series.
        for o in Outcome::ALL {
            m.articles.with_label_values(&[o.as_str()]);
        }
        for a in events::UndeliverableAction::ALL {
            m.undeliverable.with_label_values(&[a.as_str()]);
        }
        for r in RejectReason::ALL {
            m.dlq.with_label_values(&[r.as_str()]);
        }
        for s in [Stage::Parse, Stage::Nlp, Stage::Produce] {
            m.stage_seconds.with_label_values(&[s.as_str()]);
        }
        for k in ["assign", "revoke", "lost", "error"] {
            m.rebalances.with_label_values(&[k]);
        }
        for r in ["ok", "error"] {
            m.commits.with_label_values(&[r]);
        }
        m
    }

    pub fn messages_consumed(&self) -> u64 {
        self.messages_consumed.get()
    }

    pub fn in_flight(&self) -> i64 {
        self.in_flight.get()
    }

    pub fn in_flight_bytes(&self) -> i64 {
        self.in_flight_bytes.get()
    }

    pub fn paused(&self) -> i64 {
        self.paused.get()
    }

    pub fn assigned_partitions(&self) -> i64 {
        self.assigned_partitions.get()
    }

    pub fn blocked_partitions(&self) -> i64 {
        self.blocked_partitions.get()
    }

    /// `consumer_lag_seconds` of a partition of `topic`, None while it is not exported. Read from what a
    /// scrape would collect, so that asking does not create the series.
    pub fn consumer_lag_seconds(&self, topic: &str, partition: i32) -> Option<f64> {
        use prometheus::core::Collector;
        let partition = partition.to_string();
        self.consumer_lag_seconds
            .collect()
            .iter()
            .flat_map(|family| family.get_metric())
            .find(|m| {
                let labels = m.get_label();
                let has = |n: &str, v: &str| labels.iter().any(|l| l.name() == n && l.value() == v);
                has("topic", topic) && has("partition", &partition)
            })
            .map(|m| m.get_gauge().get_value())
    }

    pub fn articles(&self, outcome: Outcome) -> u64 {
        self.articles.with_label_values(&[outcome.as_str()]).get()
    }

    pub fn dlq_count(&self, reason: RejectReason) -> u64 {
        self.dlq.with_label_values(&[reason.as_str()]).get()
    }

    pub fn rebalances(&self, kind: &str) -> u64 {
        self.rebalances.with_label_values(&[kind]).get()
    }

    pub fn commits(&self, ok: bool) -> u64 {
        self.commits
            .with_label_values(&[if ok { "ok" } else { "error" }])
            .get()
    }

    /// What `entities` add to the product metrics, worked out on the NLP thread that found them (matching the
    /// watchlist lowercases names), so that [`Metrics::record_entities`], run once the article's outputs are
    /// on the brokers, only adds numbers, and the article can be freed on the thread that built it.
    pub fn tally(&self, source: Option<&str>, entities: &[Entity]) -> EntityTally {
        let mut tally = EntityTally {
            source: source.map(str::to_string),
            ..EntityTally::default()
        };
        for e in entities {
            tally.by_type[index_in(&EntityType::ALL, &e.entity_type)] += 1;
            tally.by_label[index_in(&StanceLabel::ALL, &e.stance.label)] += 1;
            if !self.watchlist.is_empty()
                && (self.watchlist.contains(&e.entity_id.to_lowercase())
                    || self.watchlist.contains(&e.name.to_lowercase()))
            {
                tally
                    .watched
                    .push((e.entity_id.clone(), e.name.clone(), e.stance.label));
            }
        }
        tally
    }

    /// Counts a delivered article's entities: by type, by stance label, by source and label, and per watched
    /// entity.
    fn record_entities(&self, tally: &EntityTally) {
        for (counter, n) in self.entities.iter().zip(tally.by_type) {
            counter.inc_by(n);
        }
        for (counter, n) in self.stances.iter().zip(tally.by_label) {
            counter.inc_by(n);
        }
        if tally.by_label.iter().any(|&n| n > 0) {
            let source = self
                .sources
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .label(tally.source.as_deref());
            for (label, n) in StanceLabel::ALL.iter().zip(tally.by_label) {
                if n > 0 {
                    self.source_stances
                        .with_label_values(&[&source, label.as_str()])
                        .inc_by(n);
                }
            }
        }
        for (entity_id, name, stance) in &tally.watched {
            // All three labels exist from the first sighting on, so that rates and ratios over a watched
            // entity read 0 rather than "no data" for a label it has not had yet.
            for label in StanceLabel::ALL {
                let series = self
                    .watched
                    .with_label_values(&[entity_id, name, label.as_str()]);
                if label == *stance {
                    series.inc();
                }
            }
        }
    }

    /// The Prometheus text exposition of every metric.
    pub fn render(&self) -> String {
        let mut buf = Vec::new();
        TextEncoder::new()
            .encode(&self.registry.gather(), &mut buf)
            .expect("encoding metrics to memory");
        String::from_utf8(buf).expect("the text format is UTF-8")
    }
}

/// An enriched article's contribution to the product metrics (see [`Metrics::tally`]).
#[derive(Debug, Default)]
pub struct EntityTally {
    source: Option<String>,
    by_type: [u64; EntityType::ALL.len()],
    by_label: [u64; StanceLabel::ALL.len()],
    /// (entity id, name, label) of the entities on the watchlist.
    watched: Vec<(String, String, StanceLabel)>,
}

/// Where `x` is in `all` (an `ALL` list of a label enum), which orders the tally's counts.
fn index_in<T: PartialEq>(all: &[T], x: &T) -> usize {
    all.iter()
        .position(|a| a == x)
        .expect("an ALL list holds every value")
}

/// Which `source` label an article's source gets: keeps the per-source series bounded whatever the feed sends.
#[derive(Debug)]
struct SourceLabels {
    /// Sources with their own series; fixed when configured, filled by first sight up to `max` otherwise.
    known: HashSet<String>,
    fixed: bool,
    max: usize,
}

impl SourceLabels {
    fn new(configured: &[String], max: usize) -> Self {
        Self {
            known: configured.iter().cloned().collect(),
            fixed: !configured.is_empty(),
            max,
        }
    }

    fn label(&mut self, source: Option<&str>) -> String {
        let Some(source) = source.map(str::trim).filter(|s| !s.is_empty()) else {
            return "unknown".to_string();
        };
        if self.known.contains(source) {
            return source.to_string();
        }
        if !self.fixed && self.known.len() < self.max {
            self.known.insert(source.to_string());
            return source.to_string();
        }
        "other".to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_closed_label_sets_as_zero() {
        let m = Metrics::new(&MetricsConfig::default());
        let text = m.render();
        assert!(
            text.contains("stancewatch_dlq_records_total{reason=\"nlp_panic\"} 0"),
            "{text}"
        );
        assert!(text.contains("stancewatch_articles_total{outcome=\"enriched\"} 0"));
        assert!(text.contains("stancewatch_build_info{"));
    }

    #[test]
    fn watchlist_matches_id_or_name_case_insensitively() {
        let m = Metrics::new(&MetricsConfig {
            watchlist: vec!["q159".to_string(), "Vladimir Putin".to_string()],
            ..MetricsConfig::default()
        });
        let mk = |id: &str, name: &str| Entity {
            entity_id: id.into(),
            name: name.into(),
            entity_type: EntityType::Location,
            mentions: vec![],
            salience: 0.5,
            stance: crate::nlp::Stance {
                label: StanceLabel::Against,
                score: 0.7,
                evidence: vec![],
            },
            truncated_mentions: 0,
        };
        m.record_entities(&m.tally(
            Some("Test Wire"),
            &[
                mk("Q159", "Russia"),
                mk("Q7747", "Vladimir Putin"),
                mk("Q43", "Turkey"),
            ],
        ));
        let text = m.render();
        assert!(text.contains("entity_id=\"Q159\""));
        assert!(
            text.contains("stancewatch_watched_entity_stances_total{entity_id=\"Q159\",label=\"favor\",name=\"Russia\"} 0"),
            "every label of a watched entity is exported from its first sighting: {text}"
        );
        assert!(text.contains("entity_id=\"Q7747\""));
        assert!(!text.contains("entity_id=\"Q43\""));
        assert!(text.contains("stancewatch_stances_total{label=\"against\"} 3"));
        assert!(text.contains("stancewatch_entities_total{type=\"LOCATION\"} 3"));
        assert!(text.contains("stancewatch_entities_total{type=\"PERSON\"} 0"));
        assert!(text.contains(
            "stancewatch_source_stances_total{label=\"against\",source=\"Test Wire\"} 3"
        ));
    }

    #[test]
    fn per_source_series_are_bounded() {
        let mut auto = SourceLabels::new(&[], 2);
        assert_eq!(auto.label(Some("A")), "A");
        assert_eq!(auto.label(Some("B")), "B");
        assert_eq!(auto.label(Some("C")), "other", "past max_sources");
        assert_eq!(auto.label(Some("A")), "A");
        assert_eq!(auto.label(None), "unknown");
        assert_eq!(auto.label(Some("  ")), "unknown");
        let mut fixed = SourceLabels::new(&["Wire".to_string()], 50);
        assert_eq!(fixed.label(Some("Wire")), "Wire");
        assert_eq!(
            fixed.label(Some("Other Paper")),
            "other",
            "a configured list is the whole list"
        );
    }
}
