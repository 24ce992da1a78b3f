//! Shared pieces of the end-to-end tests: a real broker (librdkafka's mock cluster, or an external broker such
//! as tansu named by `STANCEWATCH_TEST_BROKERS`), test articles, and a reader of the output topics.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};
use stancewatch::config::Config;
use stancewatch::enriched::{EnrichedArticle, EntityStanceRecord};
use stancewatch::stream::mock::{publish_all_with, MockKafka, Publish};
use stancewatch::stream::outputs::{OutputKind, OutputReader as SharedReader, OutputRecord};
use stancewatch::stream::OutputTopics;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

pub const EXAMPLES: &str = include_str!("../../examples/articles.jsonl");

/// Where the tests' Kafka traffic goes. Both variants are real brokers speaking the Kafka protocol.
pub enum Cluster {
    Mock(MockKafka),
    External(String),
}

/// Topic names of one test, unique per test so that tests can share an external broker.
#[derive(Clone, Debug)]
pub struct Topics {
    pub input: String,
    pub enriched: String,
    pub stances: String,
    pub dlq: String,
    pub partitions: i32,
    /// One past the highest offset published to each input partition, from the delivery reports.
    pub ends: std::sync::Arc<std::sync::Mutex<Vec<i64>>>,
}

static COUNTER: AtomicU64 = AtomicU64::new(0);

pub fn unique(prefix: &str) -> String {
    let n = COUNTER.fetch_add(1, Ordering::SeqCst);
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_micros();
    format!("{prefix}-{}-{t}-{n}", std::process::id())
}

/// Logs to the test output when RUST_LOG is set (e.g. RUST_LOG=stancewatch=debug).
pub fn init_logs() {
    if std::env::var_os("RUST_LOG").is_some() {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .with_test_writer()
            .try_init();
    }
}

impl Cluster {
    pub fn mock() -> Self {
        init_logs();
        Cluster::Mock(MockKafka::start(1).expect("mock cluster starts"))
    }

    /// The broker named by STANCEWATCH_TEST_BROKERS, or None (and a printed reason) when it is unset.
    pub fn external(test: &str) -> Option<Self> {
        match std::env::var("STANCEWATCH_TEST_BROKERS") {
            Ok(b) if !b.trim().is_empty() => {
                init_logs();
                Some(Cluster::External(b))
            }
            _ => {
                eprintln!("skipping {test}: STANCEWATCH_TEST_BROKERS is unset (set it to a broker such as tansu on 127.0.0.1:9092)");
                None
            }
        }
    }

    pub fn bootstrap(&self) -> String {
        match self {
            Cluster::Mock(m) => m.bootstrap_servers().to_string(),
            Cluster::External(b) => b.clone(),
        }
    }

    pub fn mock_kafka(&self) -> &MockKafka {
        match self {
            Cluster::Mock(m) => m,
            Cluster::External(_) => panic!("this test needs the mock cluster"),
        }
    }

    pub async fn topics(&self, partitions: i32) -> Topics {
        let base = unique("t");
        let topics = Topics {
            input: format!("{base}.articles"),
            enriched: format!("{base}.enriched"),
            stances: format!("{base}.stances"),
            dlq: format!("{base}.dlq"),
            partitions,
            ends: Default::default(),
        };
        *topics.ends.lock().unwrap() = vec![0; partitions as usize];
        let names = [
            topics.input.as_str(),
            &topics.enriched,
            &topics.stances,
            &topics.dlq,
        ];
        self.create_topics(&names, partitions).await;
        topics
    }

    /// Creates topics of `partitions` partitions each.
    pub async fn create_topics(&self, names: &[&str], partitions: i32) {
        match self {
            Cluster::Mock(m) => {
                for t in names {
                    m.create_topic(t, partitions).expect("create topic");
                }
            }
            Cluster::External(b) => {
                let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
                    .set("bootstrap.servers", b)
                    .create()
                    .expect("admin client");
                let new: Vec<NewTopic> = names
                    .iter()
                    .map(|t| NewTopic::new(t, partitions, TopicReplication::Fixed(1)))
                    .collect();
                let results = admin
                    .create_topics(&new, &AdminOptions::new())
                    .await
                    .expect("create topics");
                for r in results {
                    r.expect("topic created");
                }
            }
        }
    }

    /// Publishes articles to the input topic and records where they landed.
    ///
    /// On an external broker each record goes in a batch of its own: tansu 0.6.0 answers a fetch that starts
    /// inside a multi-record batch with nothing, so a consumer resuming mid-batch (after a pause or a restart
    /// from a committed offset) would stall there. Apache Kafka and the mock cluster have no such limit.
    pub async fn publish(&self, topics: &Topics, records: &[Publish]) -> Vec<(i32, i64)> {
        let props: &[(&str, &str)] = match self {
            Cluster::Mock(_) => &[],
            Cluster::External(_) => &[("batch.num.messages", "1"), ("linger.ms", "0")],
        };
        let positions = publish_all_with(&self.bootstrap(), &topics.input, records, props)
            .await
            .expect("publishing articles");
        let mut ends = topics.ends.lock().unwrap();
        for &(p, o) in &positions {
            ends[p as usize] = ends[p as usize].max(o + 1);
        }
        positions
    }

    pub fn config(&self, topics: &Topics, group: &str) -> Config {
        let mut c = Config::defaults();
        c.kafka.brokers = self.bootstrap();
        c.kafka.group_id = group.to_string();
        c.kafka.input_topic = topics.input.clone();
        c.kafka.enriched_topic = topics.enriched.clone();
        c.kafka.entity_stances_topic = topics.stances.clone();
        c.kafka.dlq_topic = topics.dlq.clone();
        c.kafka.statistics_interval_ms = 500;
        c.kafka
            .consumer
            .insert("session.timeout.ms".into(), "6000".into());
        c.kafka
            .consumer
            .insert("heartbeat.interval.ms".into(), "500".into());
        c.kafka
            .producer
            .insert("message.timeout.ms".into(), "5000".into());
        c.processing.commit_interval_ms = 50;
        c.processing.workers = 2;
        c.processing.rebalance_drain_timeout_ms = 5000;
        c.processing.shutdown_drain_timeout_ms = 10000;
        c.http.listen = "127.0.0.1:0".parse().unwrap();
        c
    }
}

/// `n` distinct articles made from the examples (ids made unique), keyed by id, with a traceparent header.
pub fn articles(n: usize) -> Vec<Publish> {
    let examples: Vec<serde_json::Value> = EXAMPLES
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    (0..n)
        .map(|i| {
            let mut v = examples[i % examples.len()].clone();
            let id = format!("{}-{i}", v["id"].as_str().unwrap());
            v["id"] = serde_json::Value::String(id.clone());
            Publish {
                key: Some(id.clone().into_bytes()),
                payload: Some(serde_json::to_vec(&v).unwrap()),
                headers: vec![(
                    "traceparent".into(),
                    format!("00-{:032x}-{:016x}-01", i + 1, i + 7).into_bytes(),
                )],
                timestamp: None,
            }
        })
        .collect()
}

pub fn id_of(p: &Publish) -> String {
    String::from_utf8(p.key.clone().unwrap()).unwrap()
}

/// A record read back from an output topic (the service's own output reader's records).
pub type Out = OutputRecord;

/// Reads all output topics from the beginning with the service's output reader, accumulating what it has
/// seen, parsed.
pub struct OutputReader {
    reader: SharedReader,
    pub enriched: Vec<(EnrichedArticle, Out)>,
    pub stances: Vec<(EntityStanceRecord, Out)>,
    pub dlq: Vec<Out>,
}

impl OutputReader {
    pub fn new(bootstrap: &str, topics: &Topics) -> Self {
        let names = OutputTopics {
            enriched: topics.enriched.as_str().into(),
            entity_stances: topics.stances.as_str().into(),
            dlq: topics.dlq.as_str().into(),
        };
        let reader = SharedReader::new(
            bootstrap,
            &names,
            &[
                OutputKind::Enriched,
                OutputKind::EntityStance,
                OutputKind::DeadLetter,
            ],
            Duration::from_millis(100),
        )
        .expect("output reader");
        Self {
            reader,
            enriched: vec![],
            stances: vec![],
            dlq: vec![],
        }
    }

    fn poll_once(&mut self, timeout: Duration) -> bool {
        let out = match self.reader.poll(timeout) {
            None => return false,
            Some(Ok(out)) => out,
            // Transient (a broker down in a fault test): librdkafka reconnects by itself.
            Some(Err(e)) => {
                eprintln!("output reader: {e}");
                return false;
            }
        };
        let value = out.value.clone().unwrap_or_default();
        match out.kind {
            OutputKind::Enriched => self
                .enriched
                .push((serde_json::from_slice(&value).expect("enriched JSON"), out)),
            OutputKind::EntityStance => self
                .stances
                .push((serde_json::from_slice(&value).expect("stance JSON"), out)),
            OutputKind::DeadLetter => self.dlq.push(out),
        }
        true
    }

    /// Reads until `done(self)` holds; panics with `what` after `timeout`.
    pub fn until(&mut self, timeout: Duration, what: &str, done: impl Fn(&Self) -> bool) {
        let deadline = Instant::now() + timeout;
        while !done(self) {
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what}: {} enriched, {} stances, {} dlq",
                self.enriched.len(),
                self.stances.len(),
                self.dlq.len()
            );
            self.poll_once(Duration::from_millis(100));
        }
    }

    /// Reads whatever else arrives within `quiet`.
    pub fn drain(&mut self, quiet: Duration) {
        let deadline = Instant::now() + quiet;
        while Instant::now() < deadline {
            self.poll_once(Duration::from_millis(50));
        }
    }

    /// Distinct article ids seen, enriched or dead-lettered (DLQ records are keyed by the input key).
    pub fn accounted_ids(&self) -> std::collections::BTreeSet<String> {
        self.enriched
            .iter()
            .map(|(e, _)| e.id.clone())
            .chain(self.dlq.iter().filter_map(|o| o.key_text()))
            .collect()
    }

    /// Output records of articles seen more than once (at-least-once replays).
    pub fn duplicate_articles(&self) -> usize {
        let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
        for (e, _) in &self.enriched {
            *counts.entry(&e.id).or_default() += 1;
        }
        counts.values().map(|c| c - 1).sum()
    }
}

/// The group's committed position per input partition (None when nothing was committed).
pub fn committed(bootstrap: &str, group: &str, topics: &Topics) -> Vec<Option<i64>> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", group)
        .set("enable.auto.commit", "false")
        .create()
        .unwrap();
    let mut tpl = TopicPartitionList::new();
    for p in 0..topics.partitions {
        tpl.add_partition(&topics.input, p);
    }
    let got = consumer
        .committed_offsets(tpl, Duration::from_secs(10))
        .expect("committed offsets");
    (0..topics.partitions)
        .map(
            |p| match got.find_partition(&topics.input, p).map(|e| e.offset()) {
                Some(Offset::Offset(o)) => Some(o),
                _ => None,
            },
        )
        .collect()
}

/// Waits until the group's commits reach the end of every input partition.
pub fn wait_all_committed(bootstrap: &str, group: &str, topics: &Topics, timeout: Duration) {
    let ends = topics.ends.lock().unwrap().clone();
    let deadline = Instant::now() + timeout;
    loop {
        let c = committed(bootstrap, group, topics);
        let ok = c.iter().zip(&ends).all(|(c, e)| {
            if *e == 0 {
                c.is_none_or(|c| c == 0)
            } else {
                *c == Some(*e)
            }
        });
        if ok {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "offsets not all committed: committed {c:?}, ends {ends:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Waits (async) until `cond` holds, polling every 50 ms; panics with `what` after `timeout`.
pub async fn eventually(timeout: Duration, what: &str, cond: impl Fn() -> bool) {
    let deadline = Instant::now() + timeout;
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// GET over plain HTTP/1.1: (status, body).
pub async fn http_get(addr: SocketAddr, target: &str) -> (u16, String) {
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    s.write_all(
        format!("GET {target} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").as_bytes(),
    )
    .await
    .unwrap();
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).await.unwrap();
    let text = String::from_utf8(buf).unwrap();
    let (head, body) = text.split_once("\r\n\r\n").unwrap();
    let status = head.split_whitespace().nth(1).unwrap().parse().unwrap();
    let body = if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        let mut out = String::new();
        let mut rest = body;
        loop {
            let (size, after) = rest.split_once("\r\n").unwrap();
            let size = usize::from_str_radix(size.trim(), 16).unwrap();
            if size == 0 {
                break;
            }
            out.push_str(&after[..size]);
            rest = &after[size + 2..];
        }
        out
    } else {
        body.to_string()
    };
    (status, body)
}
