//! The fault suite: the service under the failures a Kafka deployment meets, each scenario followed by the
//! same three checks of at-least-once delivery.
//!
//! 1. Commit audit: at a moment when no instance can commit any more (every instance aborted, or the process
//!    killed), every article below the group's committed offsets already has its output on the broker. A
//!    commit never passed an article whose outputs were unacknowledged.
//! 2. No loss: after a clean recovery, every input id is in the enriched topic or the dead-letter topic.
//! 3. Bounded duplicates: articles output more than once are counted, and stay within the in-flight limit
//!    for each instance that stopped without draining (a crash replays at most what it had in flight).
//!
//! The faults come from librdkafka's mock cluster, a real protocol-level broker whose requests can be made to
//! fail or slow down: `broker_down`, `request_errors`, `broker_round_trip_time`.

mod common;

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use rdkafka::types::RDKafkaApiKey;
use rdkafka::types::RDKafkaRespErr;
use stancewatch::analyze::Analyze;
use stancewatch::config::{Config, OnUndeliverable};
use stancewatch::nlp::{Analysis, Document, Pipeline};
use stancewatch::stream::mock::Publish;
use stancewatch::stream::records::HEADER_ERROR_CLASS;
use stancewatch::stream::{RunningService, Service};

const LONG: Duration = Duration::from_secs(90);

fn block<T>(f: impl FnOnce() -> T) -> T {
    tokio::task::block_in_place(f)
}

/// Where one published article landed.
struct Published {
    id: String,
    partition: i32,
    offset: i64,
}

/// One scenario's cluster, topics, consumer group, published articles and service instances.
struct Scenario {
    cluster: Cluster,
    topics: Topics,
    group: String,
    bootstrap: String,
    max_in_flight: usize,
    pipeline: Arc<Pipeline>,
    published: Vec<Published>,
    instances: Vec<RunningService>,
    /// Instances that stopped without draining (aborted or killed), and assignments lost with work in flight
    /// (a session that expired in a broker outage): each may replay up to max_in_flight.
    crashes: usize,
    reader: OutputReader,
    /// Extra properties of the service's producer.
    producer: Vec<(&'static str, &'static str)>,
    /// Other changes to the service's configuration.
    configure: fn(&mut Config),
}

impl Scenario {
    async fn new(partitions: i32, max_in_flight: usize) -> Self {
        let cluster = Cluster::mock();
        let topics = cluster.topics(partitions).await;
        let bootstrap = cluster.bootstrap();
        let reader = OutputReader::new(&bootstrap, &topics);
        Self {
            cluster,
            topics,
            group: unique("g"),
            bootstrap,
            max_in_flight,
            pipeline: Arc::new(Pipeline::new()),
            published: Vec::new(),
            instances: Vec::new(),
            crashes: 0,
            reader,
            producer: Vec::new(),
            configure: |_| {},
        }
    }

    fn mock(&self) -> rdkafka::mocking::MockCluster<'_, rdkafka::producer::DefaultProducerContext> {
        self.cluster.mock_kafka().cluster()
    }

    fn config(&self) -> Config {
        let mut c = self.cluster.config(&self.topics, &self.group);
        c.processing.max_in_flight = self.max_in_flight;
        for (k, v) in &self.producer {
            c.kafka.producer.insert(k.to_string(), v.to_string());
        }
        (self.configure)(&mut c);
        c
    }

    /// Publishes the next `n` articles (ids continue where the last call stopped).
    async fn publish(&mut self, n: usize) {
        let from = self.published.len();
        let batch: Vec<_> = articles(from + n).into_iter().skip(from).collect();
        let positions = self.cluster.publish(&self.topics, &batch).await;
        for (a, (partition, offset)) in batch.iter().zip(positions) {
            self.published.push(Published {
                id: id_of(a),
                partition,
                offset,
            });
        }
    }

    /// Starts an instance whose NLP takes at least `delay` per article, so that faults meet work in flight.
    async fn start(&mut self, delay: Duration) -> usize {
        let pipeline = self.pipeline.clone();
        let analyzer: Arc<dyn Analyze> = Arc::new(move |doc: &Document<'_>| -> Analysis {
            std::thread::sleep(delay);
            pipeline.analyze(doc)
        });
        let service = Service::new(self.config())
            .with_analyzer(analyzer)
            .start()
            .await
            .expect("service starts");
        self.instances.push(service);
        self.instances.len() - 1
    }

    /// Stops one instance, gracefully (drain and commit) or as a crash would (nothing more committed).
    async fn stop(&mut self, index: usize, graceful: bool) {
        let service = self.instances.remove(index);
        self.crashes += service.metrics.rebalances("lost") as usize;
        if graceful {
            service.shutdown();
        } else {
            service.abort();
            self.crashes += 1;
        }
        service.wait().await.expect("service stops without error");
    }

    /// Waits until at least `n` articles are accounted for in the outputs.
    fn wait_accounted(&mut self, n: usize) {
        block(|| {
            self.reader
                .until(LONG, &format!("{n} articles accounted for"), |r| {
                    r.accounted_ids().len() >= n
                })
        });
    }

    /// Check 1. Aborts every running instance, then checks that the group's committed offsets cover only
    /// articles whose outputs are on the broker. Returns how many articles the commits cover, so that a
    /// scenario can make sure the audit was not vacuous.
    async fn freeze_and_audit(&mut self) -> usize {
        while !self.instances.is_empty() {
            self.stop(0, false).await;
        }
        self.audit_commits()
    }

    /// Check 1 for when the committing process is already gone (killed).
    fn audit_commits(&mut self) -> usize {
        // Outputs acknowledged before a commit are on the broker already; read all of them.
        block(|| self.reader.drain(Duration::from_millis(1500)));
        let committed = block(|| committed(&self.bootstrap, &self.group, &self.topics));
        let accounted = self.reader.accounted_ids();
        let mut covered = 0;
        for a in &self.published {
            if committed[a.partition as usize].is_some_and(|c| a.offset < c) {
                assert!(
                    accounted.contains(&a.id),
                    "offset {} of partition {} ({}) is committed (committed offsets {committed:?}) but its outputs are not on the broker",
                    a.offset,
                    a.partition,
                    a.id
                );
                covered += 1;
            }
        }
        covered
    }

    /// Checks 2 and 3 once the group has consumed everything: every id accounted for, every offset
    /// committed, duplicates within the bound. Returns the number of duplicated articles.
    fn check_complete(&mut self) -> usize {
        let ids: BTreeSet<String> = self.published.iter().map(|a| a.id.clone()).collect();
        self.wait_accounted(ids.len());
        block(|| wait_all_committed(&self.bootstrap, &self.group, &self.topics, LONG));
        block(|| self.reader.drain(Duration::from_millis(500)));
        assert_eq!(self.reader.accounted_ids(), ids, "no article lost");
        let duplicates = self.reader.duplicate_articles();
        // Sessions the running instances lost count too: each lost assignment may replay its in-flight work.
        let lost_now: usize = self
            .instances
            .iter()
            .map(|i| i.metrics.rebalances("lost") as usize)
            .sum();
        let bound = (self.crashes + lost_now) * self.max_in_flight;
        assert!(
            duplicates <= bound,
            "{duplicates} duplicated articles exceed the bound of {bound} ({} crashes or lost sessions x max_in_flight {})",
            self.crashes + lost_now,
            self.max_in_flight
        );
        duplicates
    }

    /// Starts a clean instance, waits for it to finish everything, checks 2 and 3, and stops it.
    async fn recover_and_check(&mut self) -> usize {
        let i = self.start(Duration::ZERO).await;
        let duplicates = self.check_complete();
        self.stop(i, true).await;
        duplicates
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn broker_down_longer_than_the_producer_timeout() {
    let mut s = Scenario::new(4, 16).await;
    // Timed-out requests are "possibly persisted": see the produce-errors scenario for why the mock needs one
    // request in flight per connection then.
    s.producer = vec![("max.in.flight.requests.per.connection", "1")];
    s.start(Duration::from_millis(40)).await;
    s.publish(40).await;
    s.wait_accounted(5);
    // Longer than message.timeout.ms (5 s in the tests' configuration): librdkafka gives up on the records it
    // holds, and the service must retry them itself rather than drop or dead-letter them.
    s.mock().broker_down(1).unwrap();
    tokio::time::sleep(Duration::from_secs(7)).await;
    s.mock().broker_up(1).unwrap();
    s.publish(20).await;
    s.wait_accounted(45);
    let covered = s.freeze_and_audit().await;
    assert!(covered > 0, "the audit covers committed articles");
    let duplicates = s.recover_and_check().await;
    assert!(
        s.reader.dlq.is_empty(),
        "a broker outage is not the articles' fault: {} dead-lettered",
        s.reader.dlq.len()
    );
    eprintln!("broker down 7 s: 60 articles, {covered} covered by commits at the freeze, {duplicates} duplicates ({} crashes or lost sessions)", s.crashes);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn produce_errors_are_retried_without_loss_or_dead_letters() {
    let mut s = Scenario::new(4, 16).await;
    s.publish(60).await;
    // Retriable produce errors, answered to the next produce requests (all of them the service's).
    let errors = [
        RDKafkaRespErr::RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION,
        RDKafkaRespErr::RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT,
        RDKafkaRespErr::RD_KAFKA_RESP_ERR_NOT_ENOUGH_REPLICAS,
        RDKafkaRespErr::RD_KAFKA_RESP_ERR_NOT_ENOUGH_REPLICAS_AFTER_APPEND,
    ];
    // One produce request in flight per connection. When a request fails and a later one to the same partition
    // succeeds, librdkafka acks the failed request's records implicitly (rd_kafka_dr_implicit_ack). A real
    // broker makes that safe: it refuses the later batch while a sequence number is missing. The mock checks
    // sequences only for transactional producers (rd_kafka_mock_validate_records), so with several requests
    // in flight it would accept the later batch and the service would be told that records it never stored
    // were delivered. The audit caught exactly that in about one run in six.
    s.producer = vec![("max.in.flight.requests.per.connection", "1")];
    let burst: Vec<_> = errors.iter().copied().cycle().take(40).collect();
    s.mock().request_errors(RDKafkaApiKey::Produce, &burst);
    s.start(Duration::from_millis(10)).await;
    s.wait_accounted(20);
    let covered = s.freeze_and_audit().await;
    assert!(covered > 0, "the audit covers committed articles");
    // Recovery meets another burst.
    s.mock().request_errors(RDKafkaApiKey::Produce, &burst);
    let duplicates = s.recover_and_check().await;
    assert!(
        s.reader.dlq.is_empty(),
        "retriable produce errors must not dead-letter articles: {} dead-lettered",
        s.reader.dlq.len()
    );
    eprintln!("produce errors: 60 articles, 80 injected errors, {covered} covered at the freeze, {duplicates} duplicates");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn commit_errors_hold_offsets_until_a_commit_succeeds() {
    let mut s = Scenario::new(4, 16).await;
    s.publish(80).await;
    let errors = [
        RDKafkaRespErr::RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT,
        RDKafkaRespErr::RD_KAFKA_RESP_ERR_COORDINATOR_NOT_AVAILABLE,
        RDKafkaRespErr::RD_KAFKA_RESP_ERR_NOT_COORDINATOR,
        RDKafkaRespErr::RD_KAFKA_RESP_ERR_COORDINATOR_LOAD_IN_PROGRESS,
    ];
    let burst: Vec<_> = errors.iter().copied().cycle().take(12).collect();
    s.mock().request_errors(RDKafkaApiKey::OffsetCommit, &burst);
    let i = s.start(Duration::from_millis(10)).await;
    let metrics = s.instances[i].metrics.clone();
    s.wait_accounted(40);
    eventually(LONG, "some commits failed and some succeeded", || {
        metrics.commits(false) > 0 && metrics.commits(true) > 0
    })
    .await;
    let (failed, ok) = (metrics.commits(false), metrics.commits(true));
    let covered = s.freeze_and_audit().await;
    assert!(covered > 0, "the audit covers committed articles");
    s.mock().request_errors(RDKafkaApiKey::OffsetCommit, &burst);
    let duplicates = s.recover_and_check().await;
    eprintln!("commit errors: 80 articles, {failed} failed and {ok} successful commits before the freeze, {covered} covered, {duplicates} duplicates ({} crashes or lost sessions)", s.crashes);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn slow_broker_round_trips() {
    let mut s = Scenario::new(4, 16).await;
    s.mock()
        .broker_round_trip_time(1, Duration::from_millis(300))
        .unwrap();
    s.start(Duration::ZERO).await;
    s.publish(40).await;
    s.wait_accounted(10);
    let covered = s.freeze_and_audit().await;
    let duplicates = s.recover_and_check().await;
    s.mock().broker_round_trip_time(1, Duration::ZERO).unwrap();
    eprintln!(
        "300 ms round trips: 40 articles, {covered} covered at the freeze, {duplicates} duplicates"
    );
}

/// Instances join and leave the group over and over while articles keep arriving: every join and leave is a
/// rebalance, whose barrier must drain or abandon revoked work without losing or double-committing any.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn rebalance_storm() {
    let mut s = Scenario::new(8, 16).await;
    let first = s.start(Duration::from_millis(5)).await;
    let metrics = s.instances[first].metrics.clone();
    s.publish(30).await;
    for round in 0..6 {
        let joined = s.start(Duration::from_millis(5)).await;
        let joined_metrics = s.instances[joined].metrics.clone();
        s.publish(20).await;
        eventually(LONG, "the new instance gets partitions", || {
            joined_metrics.assigned_partitions() > 0
        })
        .await;
        tokio::time::sleep(Duration::from_millis(300)).await;
        // Every third departure is a crash; the others drain and commit.
        s.stop(joined, round % 3 != 2).await;
        s.publish(10).await;
    }
    let rebalances = metrics.rebalances("assign") + metrics.rebalances("revoke");
    assert!(
        rebalances >= 6,
        "the long-lived instance saw the storm ({rebalances} assignment changes)"
    );
    let covered = s.freeze_and_audit().await;
    assert!(covered > 0, "the audit covers committed articles");
    let duplicates = s.recover_and_check().await;
    eprintln!(
        "rebalance storm: {} articles, {rebalances} assignment changes of the long-lived instance, {} crashes, {covered} covered at the freeze, {duplicates} duplicates",
        s.published.len(),
        s.crashes
    );
}

/// The service as a separate process, killed with SIGKILL mid-stream (no drain, no shutdown hook, no
/// flush), then started again.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sigkill_mid_stream_then_restart() {
    let mut s = Scenario::new(4, 16).await;
    s.publish(150).await;
    let dir = tempfile::tempdir().unwrap();
    let config_file = dir.path().join("stancewatch.toml");
    std::fs::write(&config_file, toml::to_string(&s.config()).unwrap()).unwrap();

    let mut child = spawn_service(&config_file);
    // Kill as soon as some progress is committed: the process is then certainly mid-stream.
    let deadline = Instant::now() + LONG;
    loop {
        let c = block(|| committed(&s.bootstrap, &s.group, &s.topics));
        if c.iter().flatten().sum::<i64>() > 0 {
            break;
        }
        assert!(Instant::now() < deadline, "the child never committed");
        assert!(
            child.try_wait().unwrap().is_none(),
            "the child exited on its own"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    s.crashes += 1;
    let covered = s.audit_commits();
    assert!(covered > 0, "the audit covers committed articles");
    assert!(
        covered < s.published.len(),
        "killed mid-stream: {covered} of {} committed",
        s.published.len()
    );

    let mut restarted = spawn_service(&config_file);
    let duplicates = s.check_complete();
    let status = Command::new("kill")
        .args(["-TERM", &restarted.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let exit = restarted.wait().unwrap();
    assert!(exit.success(), "SIGTERM stops the service cleanly: {exit}");
    eprintln!("SIGKILL: 150 articles, {covered} committed at the kill, {duplicates} duplicates after the restart");
}

fn spawn_service(config: &PathBuf) -> Child {
    let verbose = std::env::var_os("RUST_LOG").is_some();
    Command::new(env!("CARGO_BIN_EXE_stancewatch"))
        .arg("run")
        .arg("--config")
        .arg(config)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(if verbose {
            Stdio::inherit()
        } else {
            Stdio::null()
        })
        .spawn()
        .expect("starting the stancewatch binary")
}

/// Bodies at this size and around it in the poison-record scenario.
const POISON_MAX_ARTICLE: usize = 60_000;
/// Enriched records at most this large in that scenario.
const POISON_MAX_RECORD: usize = 40_000;

/// A JSON article whose body is exactly `bytes` bytes of ordinary prose.
fn article_of(id: &str, bytes: usize) -> Vec<u8> {
    let prose = "Chancellor Friedrich Merz praised NATO allies in Berlin on Monday, while critics in Paris \
                 condemned the plan as a costly mistake. ";
    let mut body = prose.repeat(bytes / prose.len() + 1);
    body.truncate(bytes);
    serde_json::to_vec(&serde_json::json!({"id": id, "title": "Poison test", "body": body}))
        .unwrap()
}

/// A body naming so many different countries so often that its enrichment, uncapped, would be many times
/// the record limit.
fn crowded_article(id: &str) -> Vec<u8> {
    let countries = "Russia Turkey France Germany Italy Spain Poland Ukraine Armenia Azerbaijan Georgia Iran Iraq \
        Syria Israel Egypt Libya Tunisia Algeria Morocco Nigeria Kenya Ethiopia Somalia Sudan Chad Mali Niger \
        Ghana Senegal Brazil Argentina Chile Peru Colombia Venezuela Mexico Canada Cuba Haiti Japan China India \
        Pakistan Afghanistan Bangladesh Nepal Vietnam Thailand Cambodia Laos Myanmar Malaysia Indonesia \
        Philippines Australia Sweden Norway Finland Denmark Estonia Latvia Lithuania Belarus Moldova Romania \
        Bulgaria Greece Serbia Croatia Bosnia Albania Hungary Austria Switzerland Belgium Netherlands Ireland \
        Portugal Iceland Qatar Kuwait Oman Yemen Jordan Lebanon Cyprus Malta";
    let sentence = countries
        .split_whitespace()
        .map(|c| format!("{c} praised the deal."))
        .collect::<Vec<_>>()
        .join(" ");
    let body = format!("{sentence} ").repeat(POISON_MAX_ARTICLE / (sentence.len() + 1));
    serde_json::to_vec(&serde_json::json!({"id": id, "body": body})).unwrap()
}

/// What a published record must end as.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Expect {
    /// Enriched whole.
    Whole,
    /// Enriched, within the record limit, truncated or not.
    Enriched,
    /// Enriched and truncated to fit.
    Truncated,
    DeadLettered(&'static str),
}

/// Records near every size limit, a tombstone, a record without a key and one whose enrichment would be far
/// over the record limit, mixed with ordinary articles on several partitions and a small in-flight limit: every
/// input offset ends enriched or dead-lettered, every partition is committed to its end, nothing waits on
/// anything else.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn poison_records_never_stop_a_partition() {
    let mut s = Scenario::new(4, 8).await;
    s.configure = |c| {
        c.processing.max_article_bytes = POISON_MAX_ARTICLE;
        c.output.max_record_bytes = POISON_MAX_RECORD;
    };
    let mut records: Vec<(Publish, Expect)> = articles(24)
        .into_iter()
        .map(|p| (p, Expect::Whole))
        .collect();
    let keyed = |id: &str, payload: Option<Vec<u8>>| Publish {
        key: Some(id.as_bytes().to_vec()),
        payload,
        headers: vec![(
            "traceparent".into(),
            b"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01".to_vec(),
        )],
        timestamp: None,
    };
    let envelope = stancewatch::article::ENVELOPE_ALLOWANCE;
    for k in 0..4 {
        let id = |what: &str| format!("{what}-{k}");
        let poison = [
            (
                id("max-minus-1"),
                Some(article_of(&id("max-minus-1"), POISON_MAX_ARTICLE - 1)),
                Expect::Enriched,
            ),
            (
                id("max"),
                Some(article_of(&id("max"), POISON_MAX_ARTICLE)),
                Expect::Enriched,
            ),
            (
                id("max-plus-1"),
                Some(article_of(&id("max-plus-1"), POISON_MAX_ARTICLE + 1)),
                Expect::DeadLettered("too_large"),
            ),
            (
                id("over-envelope"),
                Some(article_of(
                    &id("over-envelope"),
                    POISON_MAX_ARTICLE + envelope + 1,
                )),
                Expect::DeadLettered("too_large"),
            ),
            (
                id("crowded"),
                Some(crowded_article(&id("crowded"))),
                Expect::Truncated,
            ),
            (id("tombstone"), None, Expect::DeadLettered("tombstone")),
        ];
        for (key, payload, expect) in poison {
            records.push((keyed(&key, payload), expect));
        }
        // No key and no article: dead-lettered with a null key, found by its source offset.
        records.push((
            Publish {
                key: None,
                payload: Some(b"{\"id\": 7".to_vec()),
                headers: vec![],
                timestamp: None,
            },
            Expect::DeadLettered("invalid_json"),
        ));
    }
    // Interleaved, so that poison sits between ordinary articles on each partition.
    records.sort_by_key(|(p, _)| {
        p.key
            .as_ref()
            .map(|k| k.iter().rev().copied().collect::<Vec<u8>>())
    });
    let publish: Vec<Publish> = records.iter().map(|(p, _)| p.clone()).collect();
    let positions = s.cluster.publish(&s.topics, &publish).await;
    let partitions: BTreeSet<i32> = positions.iter().map(|(p, _)| *p).collect();
    assert!(
        partitions.len() >= 3,
        "records spread over several partitions: {partitions:?}"
    );

    let i = s.start(Duration::ZERO).await;
    let metrics = s.instances[i].metrics.clone();
    block(|| wait_all_committed(&s.bootstrap, &s.group, &s.topics, LONG));
    block(|| s.reader.drain(Duration::from_millis(1500)));

    let mut counts = std::collections::BTreeMap::<String, usize>::new();
    for ((sent, expect), &(partition, offset)) in records.iter().zip(&positions) {
        let what = format!(
            "{:?} at {partition}@{offset}",
            sent.key.as_ref().map(|k| String::from_utf8_lossy(k))
        );
        let dlq = s
            .reader
            .dlq
            .iter()
            .find(|o| o.source_position() == Some((partition, offset)));
        let id = sent
            .key
            .as_ref()
            .map(|k| String::from_utf8_lossy(k).into_owned());
        let enriched = s
            .reader
            .enriched
            .iter()
            .find(|(e, _)| Some(&e.id) == id.as_ref());
        match *expect {
            Expect::Whole | Expect::Enriched | Expect::Truncated => {
                let (e, out) = enriched.unwrap_or_else(|| {
                    panic!(
                        "{what} was not enriched (dlq: {:?})",
                        dlq.map(|d| d.header_text(HEADER_ERROR_CLASS))
                    )
                });
                assert!(
                    out.value.as_ref().map_or(0, Vec::len) <= POISON_MAX_RECORD,
                    "{what}: enriched record of {} bytes",
                    out.value.as_ref().map_or(0, Vec::len)
                );
                match expect {
                    Expect::Whole => assert!(e.truncated.is_none(), "{what}: {:?}", e.truncated),
                    Expect::Truncated => assert!(e.truncated.is_some(), "{what}"),
                    _ => {}
                }
                if let Some(t) = &e.truncated {
                    assert!(t.mentions > 0 && !e.entities.is_empty(), "{what}: {t:?}");
                }
                *counts.entry(format!("{expect:?}")).or_default() += 1;
            }
            Expect::DeadLettered(class) => {
                let d = dlq.unwrap_or_else(|| panic!("{what} was not dead-lettered"));
                assert_eq!(
                    d.header_text(HEADER_ERROR_CLASS).as_deref(),
                    Some(class),
                    "{what}"
                );
                assert_eq!(
                    d.value, sent.payload,
                    "{what}: the original value, a tombstone's null included"
                );
                assert_eq!(
                    d.key, sent.key,
                    "{what}: the original key, a null key included"
                );
                *counts.entry(class.to_string()).or_default() += 1;
            }
        }
    }
    assert_eq!(metrics.in_flight(), 0, "nothing left in flight");
    assert_eq!(metrics.blocked_partitions(), 0);
    let n = records.len();
    s.stop(i, true).await;
    eprintln!("poison records: {n} records on {} partitions, every offset accounted for and committed: {counts:?}", partitions.len());
}

/// A record whose dead-letter record the brokers refuse too (injected: the next produce request is answered
/// MESSAGE_TOO_LARGE). With `on_undeliverable = "stop"` its partition stops there and says so while the others
/// go on; with "skip" it is skipped, counted and committed past.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_record_no_topic_accepts_stops_its_partition_or_is_skipped() {
    for policy in [OnUndeliverable::Stop, OnUndeliverable::Skip] {
        let mut s = Scenario::new(2, 8).await;
        s.configure = match policy {
            OnUndeliverable::Stop => |c| c.processing.on_undeliverable = OnUndeliverable::Stop,
            OnUndeliverable::Skip => |c| c.processing.on_undeliverable = OnUndeliverable::Skip,
        };
        let poison = Publish {
            key: Some(b"poison".to_vec()),
            payload: Some(b"not json".to_vec()),
            headers: vec![],
            timestamp: None,
        };
        let (poison_partition, poison_offset) = s.cluster.publish(&s.topics, &[poison]).await[0];
        // The service's first produce request is the poison's dead-letter record.
        s.mock().request_errors(
            RDKafkaApiKey::Produce,
            &[RDKafkaRespErr::RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE],
        );
        let i = s.start(Duration::ZERO).await;
        let (metrics, health, addr) = {
            let r = &s.instances[i];
            (r.metrics.clone(), r.health.clone(), r.http_addr)
        };
        eventually(LONG, "the poison is found undeliverable", || {
            metrics
                .render()
                .contains("stancewatch_undeliverable_records_total{action=\"stop\"} 1")
                || metrics
                    .render()
                    .contains("stancewatch_undeliverable_records_total{action=\"skip\"} 1")
        })
        .await;
        s.publish(20).await;
        let on = |p: i32| -> Vec<&Published> {
            s.published.iter().filter(|a| a.partition == p).collect()
        };
        let other = 1 - poison_partition;
        let expected_elsewhere: Vec<String> = on(other).iter().map(|a| a.id.clone()).collect();
        assert!(!expected_elsewhere.is_empty() && !on(poison_partition).is_empty());
        match policy {
            OnUndeliverable::Stop => {
                block(|| {
                    s.reader.until(LONG, "the other partition's articles", |r| {
                        let ids = r.accounted_ids();
                        expected_elsewhere.iter().all(|id| ids.contains(id))
                    })
                });
                assert_eq!(metrics.blocked_partitions(), 1);
                assert!(!health.is_ready());
                let (status, body) = http_get(addr, "/readyz").await;
                assert_eq!(status, 503, "{body}");
                assert!(
                    body.contains(&format!("/{poison_partition}@{poison_offset}")),
                    "{body}"
                );
                tokio::time::sleep(Duration::from_secs(1)).await;
                let committed = block(|| committed(&s.bootstrap, &s.group, &s.topics));
                assert_eq!(
                    committed[poison_partition as usize].unwrap_or(0),
                    poison_offset,
                    "never committed past the poison"
                );
                let ids = s.reader.accounted_ids();
                assert!(
                    on(poison_partition).iter().all(|a| !ids.contains(&a.id)),
                    "the stopped partition stays stopped"
                );
                // The stopped partition does not hold up the drain.
                let started = Instant::now();
                s.stop(i, true).await;
                assert!(
                    started.elapsed() < Duration::from_secs(5),
                    "shutdown took {:?}",
                    started.elapsed()
                );
            }
            OnUndeliverable::Skip => {
                let all: Vec<String> = s.published.iter().map(|a| a.id.clone()).collect();
                block(|| {
                    s.reader.until(LONG, "every article", |r| {
                        let ids = r.accounted_ids();
                        all.iter().all(|id| ids.contains(id))
                    })
                });
                block(|| wait_all_committed(&s.bootstrap, &s.group, &s.topics, LONG));
                assert_eq!(metrics.articles(stancewatch::metrics::Outcome::Skipped), 1);
                assert_eq!(metrics.blocked_partitions(), 0);
                assert!(health.is_ready());
                s.stop(i, true).await;
            }
        }
    }
}
