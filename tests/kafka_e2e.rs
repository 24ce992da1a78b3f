//! End-to-end tests of the service against a real Kafka protocol broker: librdkafka's in-process mock cluster,
//! and (for the happy path and the restart) an external broker such as tansu when STANCEWATCH_TEST_BROKERS is
//! set. Each test runs the same `Service` as `stancewatch run`.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::*;
use stancewatch::analyze::Analyze;
use stancewatch::article::RejectReason;
use stancewatch::metrics::Outcome;
use stancewatch::nlp::{Analysis, Document, Pipeline};
use stancewatch::stream::mock::Publish;
use stancewatch::stream::records::{
    HEADER_ERROR_CLASS, HEADER_SOURCE_OFFSET, HEADER_SOURCE_PARTITION, HEADER_SOURCE_TOPIC,
};
use stancewatch::stream::replay::{ReplayPlan, ReplayWindow};
use stancewatch::stream::Service;

const LONG: Duration = Duration::from_secs(60);

/// The real pipeline, made slower so that tests can stop the service while work is in flight.
fn slow_pipeline(delay: Duration) -> Arc<dyn Analyze> {
    let p = Pipeline::new();
    Arc::new(move |doc: &Document<'_>| -> Analysis {
        std::thread::sleep(delay);
        p.analyze(doc)
    })
}

fn block<T>(f: impl FnOnce() -> T) -> T {
    tokio::task::block_in_place(f)
}

/// The highest value a gauge takes while a test runs, sampled every 2 ms in the background.
struct Peak {
    value: Arc<std::sync::atomic::AtomicI64>,
    sampler: tokio::task::JoinHandle<()>,
}

impl Peak {
    fn watch(gauge: impl Fn() -> i64 + Send + 'static) -> Self {
        let value = Arc::new(std::sync::atomic::AtomicI64::new(0));
        let v = value.clone();
        let sampler = tokio::spawn(async move {
            loop {
                v.fetch_max(gauge(), std::sync::atomic::Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
        });
        Self { value, sampler }
    }

    fn stop(self) -> i64 {
        self.sampler.abort();
        self.value.load(std::sync::atomic::Ordering::SeqCst)
    }
}

async fn happy_path(cluster: Cluster) {
    let topics = cluster.topics(4).await;
    let group = unique("g");
    let bootstrap = cluster.bootstrap();
    let service = Service::new(cluster.config(&topics, &group))
        .start()
        .await
        .unwrap();
    let input = articles(40);
    cluster.publish(&topics, &input).await;

    let mut reader = OutputReader::new(&bootstrap, &topics);
    block(|| reader.until(LONG, "40 enriched articles", |r| r.enriched.len() >= 40));
    let expected_stances: usize = reader.enriched.iter().map(|(e, _)| e.entities.len()).sum();
    block(|| {
        reader.until(LONG, "every entity-stance record", |r| {
            r.stances.len() >= expected_stances
        })
    });
    block(|| wait_all_committed(&bootstrap, &group, &topics, LONG));
    block(|| reader.drain(Duration::from_millis(300)));

    assert_eq!(
        reader.enriched.len(),
        40,
        "exactly one enriched record per article"
    );
    assert_eq!(reader.stances.len(), expected_stances);
    assert!(reader.dlq.is_empty());
    let ids: std::collections::BTreeSet<String> = input.iter().map(id_of).collect();
    assert_eq!(reader.accounted_ids(), ids);
    for (e, out) in &reader.enriched {
        assert_eq!(
            out.key.as_deref(),
            Some(e.id.as_bytes()),
            "enriched records are keyed by article id"
        );
        let sent = input.iter().find(|p| id_of(p) == e.id).unwrap();
        let trace = String::from_utf8(sent.headers[0].1.clone()).unwrap();
        assert_eq!(
            out.header_text("traceparent"),
            Some(trace),
            "traceparent carried through"
        );
        assert_eq!(e.schema_version, 1);
    }
    for (s, out) in &reader.stances {
        assert_eq!(
            out.key.as_deref(),
            Some(s.entity_id.as_bytes()),
            "stances are keyed by entity id"
        );
        assert!(out.header_text("traceparent").is_some());
        assert!(reader
            .enriched
            .iter()
            .any(|(e, _)| e.id == s.article_id
                && e.entities.iter().any(|x| x.entity_id == s.entity_id)));
    }

    service.shutdown();
    let summary = service.wait().await.unwrap();
    assert_eq!(summary.consumed, 40);
    assert_eq!(summary.enriched, 40);
    assert_eq!(summary.uncommitted_at_exit, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn happy_path_mock() {
    happy_path(Cluster::mock()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn happy_path_real_broker() {
    if let Some(cluster) = Cluster::external("happy_path_real_broker") {
        happy_path(cluster).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_bad_input_kind_is_dead_lettered_and_good_ones_flow() {
    let cluster = Cluster::mock();
    let topics = cluster.topics(2).await;
    let group = unique("g");
    let bootstrap = cluster.bootstrap();
    let mut config = cluster.config(&topics, &group);
    config.processing.max_article_bytes = 4000;
    let pipeline = Pipeline::new();
    let panicky: Arc<dyn Analyze> = Arc::new(move |doc: &Document<'_>| -> Analysis {
        if doc.body.contains("TRIGGER-NLP-PANIC") {
            panic!("simulated model failure");
        }
        pipeline.analyze(doc)
    });
    let service = Service::new(config)
        .with_analyzer(panicky)
        .start()
        .await
        .unwrap();

    let bad = |key: &str, payload: &[u8]| Publish {
        key: Some(key.as_bytes().to_vec()),
        payload: Some(payload.to_vec()),
        headers: vec![("traceparent".into(), b"00-feed-beef-01".to_vec())],
        timestamp: None,
    };
    let cases: Vec<(Publish, RejectReason)> = vec![
        (
            bad("bad-json", b"{\"id\": \"x\", \"body\": "),
            RejectReason::InvalidJson,
        ),
        (
            bad("bad-utf8", b"{\"id\": \"y\", \"body\": \"caf\xe9\"}"),
            RejectReason::InvalidUtf8,
        ),
        (
            bad("bad-missing-id", b"{\"body\": \"A text.\"}"),
            RejectReason::MissingField,
        ),
        (
            bad("bad-missing-body", b"{\"id\": \"z\"}"),
            RejectReason::MissingField,
        ),
        (
            bad("bad-empty-id", b"{\"id\": \"\", \"body\": \"A text.\"}"),
            RejectReason::EmptyField,
        ),
        (
            bad("bad-empty-body", b"{\"id\": \"e\", \"body\": \"   \"}"),
            RejectReason::EmptyField,
        ),
        (bad("bad-array", b"[1, 2, 3]"), RejectReason::NotAnObject),
        (
            bad("bad-type", b"{\"id\": 12, \"body\": \"A text.\"}"),
            RejectReason::WrongType,
        ),
        (
            bad(
                "bad-too-large",
                format!(
                    "{{\"id\": \"big\", \"body\": \"{}\"}}",
                    "Word ".repeat(1000)
                )
                .as_bytes(),
            ),
            RejectReason::TooLarge,
        ),
        (
            bad(
                "bad-panic",
                br#"{"id": "p", "body": "Leaders met in Paris. TRIGGER-NLP-PANIC"}"#,
            ),
            RejectReason::NlpPanic,
        ),
        (bad("bad-tombstone", b""), RejectReason::InvalidJson),
    ];
    let good = articles(6);
    // Interleave: good, bad, good, bad ...
    let mut all = Vec::new();
    for (i, (p, _)) in cases.iter().enumerate() {
        if let Some(g) = good.get(i) {
            all.push(g.clone());
        }
        all.push(p.clone());
    }
    cluster.publish(&topics, &all).await;

    let mut reader = OutputReader::new(&bootstrap, &topics);
    block(|| {
        reader.until(LONG, "all outputs", |r| {
            r.enriched.len() >= good.len() && r.dlq.len() >= cases.len()
        })
    });
    block(|| wait_all_committed(&bootstrap, &group, &topics, LONG));

    assert_eq!(reader.enriched.len(), good.len());
    for (sent, reason) in &cases {
        let key = sent.key.clone().unwrap();
        let out = reader
            .dlq
            .iter()
            .find(|o| o.key.as_ref() == Some(&key))
            .unwrap_or_else(|| panic!("{} missing from the DLQ", String::from_utf8_lossy(&key)));
        assert_eq!(out.value, sent.payload, "DLQ keeps the original bytes");
        assert_eq!(
            out.header_text(HEADER_ERROR_CLASS).as_deref(),
            Some(reason.as_str()),
            "{}",
            String::from_utf8_lossy(&key)
        );
        assert_eq!(
            out.header_text("traceparent").as_deref(),
            Some("00-feed-beef-01"),
            "original headers kept"
        );
        assert_eq!(
            out.header_text(HEADER_SOURCE_TOPIC),
            Some(topics.input.clone())
        );
        assert!(out.header_text(HEADER_SOURCE_PARTITION).is_some());
        assert!(out
            .header_text(HEADER_SOURCE_OFFSET)
            .and_then(|o| o.parse::<i64>().ok())
            .is_some());
    }
    let m = &service.metrics;
    assert_eq!(m.dlq_count(RejectReason::MissingField), 2);
    assert_eq!(m.dlq_count(RejectReason::NlpPanic), 1);
    assert_eq!(m.dlq_count(RejectReason::InvalidJson), 2);
    let text = m.render();
    assert!(
        text.contains("stancewatch_dlq_records_total{reason=\"too_large\"} 1"),
        "{text}"
    );
    service.shutdown();
    let summary = service.wait().await.unwrap();
    assert_eq!(summary.consumed as usize, all.len());
    assert_eq!(summary.dead_lettered as usize, cases.len());
}

/// A crash (no drain, no final commit) after partial progress, then a restart: every article comes out at
/// least once, and the replayed ones are at most the in-flight limit.
async fn restart_mid_stream(cluster: Cluster) {
    let topics = cluster.topics(4).await;
    let group = unique("g");
    let bootstrap = cluster.bootstrap();
    let max_in_flight = 8;
    let mut config = cluster.config(&topics, &group);
    config.processing.max_in_flight = max_in_flight;
    let input = articles(60);
    cluster.publish(&topics, &input).await;

    let first = Service::new(config.clone())
        .with_analyzer(slow_pipeline(Duration::from_millis(25)))
        .start()
        .await
        .unwrap();
    let mut reader = OutputReader::new(&bootstrap, &topics);
    // The service's own count, not the reader: a reader behind a broker's fetch wait could see the 20th
    // record only after the service had finished all 60.
    let metrics = first.metrics.clone();
    eventually(LONG, "partial progress", || {
        metrics.articles(Outcome::Enriched) >= 20
    })
    .await;
    first.abort();
    let s1 = first.wait().await.unwrap();
    assert!(
        s1.consumed < 60,
        "the first instance must stop mid-stream (consumed {})",
        s1.consumed
    );
    let progress = committed(&bootstrap, &group, &topics);
    assert!(
        progress.iter().flatten().sum::<i64>() > 0,
        "some progress was committed before the crash"
    );

    let second = Service::new(config).start().await.unwrap();
    let ids: std::collections::BTreeSet<String> = input.iter().map(id_of).collect();
    block(|| {
        reader.until(LONG, "every article after the restart", |r| {
            r.accounted_ids().len() >= ids.len()
        })
    });
    block(|| wait_all_committed(&bootstrap, &group, &topics, LONG));
    block(|| reader.drain(Duration::from_millis(500)));
    assert_eq!(reader.accounted_ids(), ids, "no article lost");
    let duplicates = reader.duplicate_articles();
    eprintln!("restart: {} enriched records for {} articles, {duplicates} duplicates (bound {max_in_flight})", reader.enriched.len(), ids.len());
    assert!(
        duplicates <= max_in_flight,
        "{duplicates} duplicates exceed the in-flight bound {max_in_flight}"
    );
    second.shutdown();
    second.wait().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn restart_mid_stream_mock() {
    restart_mid_stream(Cluster::mock()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn restart_mid_stream_real_broker() {
    if let Some(cluster) = Cluster::external("restart_mid_stream_real_broker") {
        restart_mid_stream(cluster).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_instances_share_the_partitions_without_loss() {
    let cluster = Cluster::mock();
    let topics = cluster.topics(8).await;
    let group = unique("g");
    let bootstrap = cluster.bootstrap();
    let config = cluster.config(&topics, &group);
    let a = Service::new(config.clone()).start().await.unwrap();
    let b = Service::new(config.clone()).start().await.unwrap();
    let (ma, mb) = (a.metrics.clone(), b.metrics.clone());
    eventually(LONG, "both instances assigned", || {
        ma.assigned_partitions() > 0
            && mb.assigned_partitions() > 0
            && ma.assigned_partitions() + mb.assigned_partitions() == 8
    })
    .await;
    assert!(a.health.is_ready() && b.health.is_ready());

    let input = articles(80);
    cluster.publish(&topics, &input).await;
    let mut reader = OutputReader::new(&bootstrap, &topics);
    block(|| reader.until(LONG, "80 articles", |r| r.accounted_ids().len() >= 80));
    assert!(
        ma.messages_consumed() > 0 && mb.messages_consumed() > 0,
        "both instances did work"
    );

    // One leaves: the other takes its partitions over and nothing published afterwards is lost.
    a.shutdown();
    a.wait().await.unwrap();
    eventually(LONG, "the survivor owns every partition", || {
        mb.assigned_partitions() == 8
    })
    .await;
    let more: Vec<Publish> = articles(100).into_iter().skip(80).collect();
    cluster.publish(&topics, &more).await;
    block(|| reader.until(LONG, "all 100 articles", |r| r.accounted_ids().len() >= 100));
    block(|| wait_all_committed(&bootstrap, &group, &topics, LONG));
    block(|| reader.drain(Duration::from_millis(300)));
    assert_eq!(
        reader.duplicate_articles(),
        0,
        "a graceful hand-over replays nothing"
    );
    b.shutdown();
    b.wait().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn graceful_shutdown_drains_and_commits_everything_it_took() {
    let cluster = Cluster::mock();
    let topics = cluster.topics(4).await;
    let group = unique("g");
    let bootstrap = cluster.bootstrap();
    let mut config = cluster.config(&topics, &group);
    config.processing.max_in_flight = 16;
    let input = articles(50);
    cluster.publish(&topics, &input).await;

    let first = Service::new(config.clone())
        .with_analyzer(slow_pipeline(Duration::from_millis(30)))
        .start()
        .await
        .unwrap();
    let m = first.metrics.clone();
    eventually(LONG, "work in flight", || {
        m.in_flight() >= 4 && m.messages_consumed() >= 10
    })
    .await;
    first.shutdown();
    let s1 = first.wait().await.unwrap();
    assert!(s1.consumed < 50, "stopped mid-stream");
    assert_eq!(
        s1.uncommitted_at_exit, 0,
        "everything taken was finished and committed"
    );
    assert_eq!(s1.enriched, s1.consumed);
    let c = committed(&bootstrap, &group, &topics);
    assert_eq!(
        c.iter().flatten().sum::<i64>() as u64,
        s1.consumed,
        "commits match the work done: {c:?}"
    );

    // The restart replays nothing and finishes the rest.
    let second = Service::new(config).start().await.unwrap();
    let mut reader = OutputReader::new(&bootstrap, &topics);
    block(|| reader.until(LONG, "all 50", |r| r.accounted_ids().len() >= 50));
    block(|| wait_all_committed(&bootstrap, &group, &topics, LONG));
    block(|| reader.drain(Duration::from_millis(300)));
    assert_eq!(reader.duplicate_articles(), 0);
    second.shutdown();
    let s2 = second.wait().await.unwrap();
    assert_eq!(s1.consumed + s2.consumed, 50);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn backpressure_bounds_in_flight_work() {
    let cluster = Cluster::mock();
    let topics = cluster.topics(4).await;
    let group = unique("g");
    let bootstrap = cluster.bootstrap();
    let mut config = cluster.config(&topics, &group);
    config.processing.max_in_flight = 5;
    let service = Service::new(config)
        .with_analyzer(slow_pipeline(Duration::from_millis(20)))
        .start()
        .await
        .unwrap();
    let input = articles(40);
    cluster.publish(&topics, &input).await;
    let m = service.metrics.clone();
    let peak = Peak::watch({
        let m = m.clone();
        move || m.in_flight()
    });
    let stopped = Peak::watch({
        let m = m.clone();
        move || m.paused()
    });
    let mut reader = OutputReader::new(&bootstrap, &topics);
    block(|| reader.until(LONG, "all 40", |r| r.accounted_ids().len() >= 40));
    let peak = peak.stop();
    assert_eq!(
        stopped.stop(),
        1,
        "stancewatch_consumer_paused never reported the backpressure"
    );
    assert!(
        peak <= 5,
        "in-flight peaked at {peak}, above max_in_flight 5"
    );
    assert!(peak >= 2, "work did overlap (peak {peak})");
    service.shutdown();
    service.wait().await.unwrap();
}

/// Large articles: the byte bound, not the count, must hold memory down.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn backpressure_bounds_in_flight_bytes() {
    let cluster = Cluster::mock();
    let topics = cluster.topics(4).await;
    let group = unique("g");
    let bootstrap = cluster.bootstrap();
    let limit = 300_000;
    let mut config = cluster.config(&topics, &group);
    config.processing.max_in_flight = 100;
    config.processing.max_in_flight_bytes = limit;
    let service = Service::new(config)
        .with_analyzer(slow_pipeline(Duration::from_millis(20)))
        .start()
        .await
        .unwrap();
    // About 100 kB each: three fit under the limit, the fourth pauses consumption.
    let input: Vec<Publish> = articles(16)
        .into_iter()
        .map(|mut p| {
            let mut v: serde_json::Value =
                serde_json::from_slice(p.payload.as_ref().unwrap()).unwrap();
            let body = v["body"].as_str().unwrap().repeat(35);
            v["body"] = serde_json::Value::String(body);
            p.payload = Some(serde_json::to_vec(&v).unwrap());
            p
        })
        .collect();
    let largest = input
        .iter()
        .map(|p| p.payload.as_ref().map_or(0, Vec::len))
        .max()
        .unwrap() as i64;
    cluster.publish(&topics, &input).await;
    let peak = Peak::watch({
        let m = service.metrics.clone();
        move || m.in_flight_bytes()
    });
    let mut reader = OutputReader::new(&bootstrap, &topics);
    block(|| reader.until(LONG, "all 16", |r| r.accounted_ids().len() >= 16));
    let peak = peak.stop();
    assert!(
        peak < limit as i64 + largest,
        "in-flight bytes peaked at {peak}, above max_in_flight_bytes {limit} plus one article ({largest})"
    );
    assert!(peak >= largest, "work was measured (peak {peak})");
    assert!(reader.dlq.is_empty());
    service.shutdown();
    service.wait().await.unwrap();
}

/// `stancewatch_consumer_lag_seconds` of each input partition in a `/metrics` body: partition → value.
fn lag_seconds_series(body: &str, topic: &str) -> std::collections::BTreeMap<i32, f64> {
    body.lines()
        .filter(|l| l.starts_with("stancewatch_consumer_lag_seconds{"))
        .map(|l| {
            let (labels, value) = l.rsplit_once(' ').unwrap();
            assert!(
                labels.contains(&format!("topic=\"{topic}\"")),
                "the input topic: {l}"
            );
            let partition = labels.split("partition=\"").nth(1).unwrap();
            let partition = partition[..partition.find('"').unwrap()].parse().unwrap();
            (partition, value.parse().unwrap())
        })
        .collect()
}

/// Records stamped an hour ago, consumed slowly enough that a backlog waits: the lag in seconds of each
/// partition reads an hour while its backlog drains (as scraped over HTTP), and 0 once everything is
/// committed.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn lag_in_seconds_is_the_age_of_the_backlog_and_zero_when_caught_up() {
    let cluster = Cluster::mock();
    let topics = cluster.topics(2).await;
    let group = unique("g");
    let bootstrap = cluster.bootstrap();
    let mut config = cluster.config(&topics, &group);
    // One slow worker and a small in-flight limit: the backlog waits in Kafka, not in the service.
    config.processing.workers = 1;
    config.processing.max_in_flight = 4;
    let service = Service::new(config)
        .with_analyzer(slow_pipeline(Duration::from_millis(150)))
        .start()
        .await
        .unwrap();
    let m = service.metrics.clone();
    eventually(LONG, "assignment", || m.assigned_partitions() == 2).await;

    let hour_ago = chrono::Utc::now().timestamp_millis() - 3_600_000;
    let input: Vec<Publish> = articles(60)
        .into_iter()
        .enumerate()
        .map(|(i, p)| Publish {
            timestamp: Some(hour_ago + i as i64),
            ..p
        })
        .collect();
    let positions = cluster.publish(&topics, &input).await;
    let used: std::collections::BTreeSet<i32> = positions.iter().map(|(p, _)| *p).collect();
    assert_eq!(used.len(), 2, "both partitions get records: {positions:?}");

    // Every figure is either 0 (caught up) or at least the hour the records waited, never in between; each
    // partition must show the hour while the backlog is still draining.
    let handled = || m.articles(Outcome::Enriched) + m.articles(Outcome::DeadLettered);
    let mut seen_hour = std::collections::BTreeSet::new();
    let mut excerpt = None;
    while handled() < input.len() as u64 {
        let (status, body) = http_get(service.http_addr, "/metrics").await;
        assert_eq!(status, 200);
        let draining = handled() < input.len() as u64;
        let series = lag_seconds_series(&body, &topics.input);
        for (&p, &seconds) in &series {
            assert!(
                seconds == 0.0 || seconds >= 3599.0,
                "partition {p}: {seconds} s is neither caught up nor the records' hour"
            );
            if seconds >= 3599.0 && draining {
                seen_hour.insert(p);
            }
        }
        // For the log: a scrape with every partition an hour behind, else the first with any.
        let all_behind = series.len() == used.len() && series.values().all(|&s| s >= 3599.0);
        let better = match &excerpt {
            None => true,
            Some((_, _, all)) => all_behind && !all,
        };
        if draining && !series.is_empty() && better {
            excerpt = Some((handled(), body.clone(), all_behind));
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(
        seen_hour, used,
        "every partition reported its backlog's age while it drained"
    );
    let (handled_then, body, _) = excerpt.unwrap();
    println!(
        "/metrics while draining ({handled_then} of {} handled):",
        input.len()
    );
    for line in body.lines().filter(|l| l.contains("consumer_lag")) {
        println!("  {line}");
    }

    block(|| wait_all_committed(&bootstrap, &group, &topics, LONG));
    let deadline = std::time::Instant::now() + LONG;
    loop {
        let (_, body) = http_get(service.http_addr, "/metrics").await;
        let series = lag_seconds_series(&body, &topics.input);
        if series.len() == 2 && series.values().all(|&s| s == 0.0) {
            println!("/metrics once caught up:");
            for line in body.lines().filter(|l| l.contains("consumer_lag")) {
                println!("  {line}");
            }
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "lag in seconds never returned to 0: {series:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    for p in 0..2 {
        assert_eq!(m.consumer_lag_seconds(&topics.input, p), Some(0.0));
    }
    service.shutdown();
    service.wait().await.unwrap();
    assert_eq!(
        m.consumer_lag_seconds(&topics.input, 0),
        None,
        "the partitions' series go with them when they are revoked"
    );
}

/// Replay needs a broker that answers offsets-for-times lookups: librdkafka's mock cluster answers "none" to
/// every time, so this runs against the broker of STANCEWATCH_TEST_BROKERS (tansu in CI). Three batches of
/// articles a second and a half apart; a live service processes them all; then a replay of the middle batch's
/// time range to parallel topics, and an open-ended one through the binary with `--output-prefix`. Each
/// stops by itself with exactly its range processed, under the live event ids, and the live group's offsets
/// stay where they were.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn replay_re_processes_a_time_range_and_stops_by_itself() {
    let Some(cluster) = Cluster::external("replay_re_processes_a_time_range_and_stops_by_itself")
    else {
        return;
    };
    let topics = cluster.topics(2).await;
    let bootstrap = cluster.bootstrap();
    let all = articles(18);
    let (early, rest) = all.split_at(6);
    let (middle, late) = rest.split_at(6);
    let gap = Duration::from_millis(1500);
    cluster.publish(&topics, early).await;
    tokio::time::sleep(gap).await;
    let from = chrono::Utc::now();
    cluster.publish(&topics, middle).await;
    tokio::time::sleep(gap).await;
    let to = chrono::Utc::now();
    cluster.publish(&topics, late).await;

    let live = unique("live");
    let service = Service::new(cluster.config(&topics, &live))
        .start()
        .await
        .unwrap();
    let mut reader = OutputReader::new(&bootstrap, &topics);
    block(|| reader.until(LONG, "18 enriched articles", |r| r.enriched.len() >= 18));
    block(|| wait_all_committed(&bootstrap, &live, &topics, LONG));
    service.shutdown();
    service.wait().await.unwrap();
    let live_offsets = block(|| committed(&bootstrap, &live, &topics));
    let live_event_id = |id: &str| {
        reader
            .enriched
            .iter()
            .find(|(e, _)| e.id == id)
            .map(|(e, _)| e.event_id.clone())
    };

    // The middle batch's range, to parallel topics, through the library.
    let side = cluster.topics(2).await;
    let group = unique("replay");
    let mut config = cluster.config(&topics, &group);
    config.kafka.enriched_topic = side.enriched.clone();
    config.kafka.entity_stances_topic = side.stances.clone();
    config.kafka.dlq_topic = side.dlq.clone();
    let window = ReplayWindow::new(from, Some(to)).unwrap();
    let plan = block(|| ReplayPlan::make(&config, window)).unwrap();
    assert_eq!(plan.records(), 6, "the middle batch's offsets: {plan:?}");
    let service = Service::new(config)
        .with_replay(plan)
        .start()
        .await
        .unwrap();
    let summary = tokio::time::timeout(LONG, service.wait())
        .await
        .expect("the replay stops by itself at the end of its range")
        .unwrap();
    assert!(summary.range_complete, "{summary:?}");
    assert!(summary.blocked.is_empty(), "{summary:?}");
    assert_eq!((summary.consumed, summary.enriched), (6, 6), "{summary:?}");
    assert_eq!(summary.uncommitted_at_exit, 0);
    let mut replayed = OutputReader::new(&bootstrap, &side);
    block(|| replayed.until(LONG, "6 replayed articles", |r| r.enriched.len() >= 6));
    block(|| replayed.drain(Duration::from_millis(500)));
    let expected: std::collections::BTreeSet<String> = middle.iter().map(id_of).collect();
    assert_eq!(replayed.accounted_ids(), expected);
    assert_eq!(replayed.enriched.len(), 6, "each article of the range once");
    for (e, _) in &replayed.enriched {
        assert_eq!(
            Some(e.event_id.clone()),
            live_event_id(&e.id),
            "a replay under the same pipeline version keeps the event id"
        );
    }
    assert_eq!(
        block(|| committed(&bootstrap, &live, &topics)),
        live_offsets,
        "the live group's offsets are untouched"
    );

    // Everything since `from`, through the binary, to topics named with a prefix.
    let prefix = "replayed.";
    let prefixed: Vec<String> = [&topics.enriched, &topics.stances, &topics.dlq]
        .iter()
        .map(|t| format!("{prefix}{t}"))
        .collect();
    let names: Vec<&str> = prefixed.iter().map(String::as_str).collect();
    cluster.create_topics(&names, 2).await;
    let out = block(|| {
        std::process::Command::new(env!("CARGO_BIN_EXE_stancewatch"))
            .args([
                "replay",
                "--from",
                &from.to_rfc3339(),
                "--output-prefix",
                prefix,
            ])
            .env("STANCEWATCH__KAFKA__BROKERS", &bootstrap)
            .env("STANCEWATCH__KAFKA__GROUP_ID", &live)
            .env("STANCEWATCH__KAFKA__INPUT_TOPIC", &topics.input)
            .env("STANCEWATCH__KAFKA__ENRICHED_TOPIC", &topics.enriched)
            .env("STANCEWATCH__KAFKA__ENTITY_STANCES_TOPIC", &topics.stances)
            .env("STANCEWATCH__KAFKA__DLQ_TOPIC", &topics.dlq)
            .env("STANCEWATCH__HTTP__LISTEN", "127.0.0.1:0")
            .output()
            .unwrap()
    });
    let stdout = String::from_utf8_lossy(&out.stdout);
    println!("stancewatch replay --from {from} --output-prefix {prefix}:\n{stdout}");
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains(&format!("group {live}-replay-")),
        "{stdout}"
    );
    assert!(
        stdout.contains("replay complete: 12 records consumed, 12 enriched, 0 dead-lettered"),
        "{stdout}"
    );
    let side = Topics {
        input: topics.input.clone(),
        enriched: prefixed[0].clone(),
        stances: prefixed[1].clone(),
        dlq: prefixed[2].clone(),
        partitions: 2,
        ends: Default::default(),
    };
    let mut replayed = OutputReader::new(&bootstrap, &side);
    block(|| replayed.until(LONG, "12 replayed articles", |r| r.enriched.len() >= 12));
    let expected: std::collections::BTreeSet<String> =
        middle.iter().chain(late).map(id_of).collect();
    assert_eq!(replayed.accounted_ids(), expected);
    assert_eq!(
        block(|| committed(&bootstrap, &live, &topics)),
        live_offsets,
        "the live group's offsets are untouched"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn metrics_and_probes_are_served_over_http() {
    let cluster = Cluster::mock();
    let topics = cluster.topics(2).await;
    let group = unique("g");
    let service = Service::new(cluster.config(&topics, &group))
        .start()
        .await
        .unwrap();
    let addr = service.http_addr;
    assert!(http_get(addr, "/healthz").await.0 == 200);
    let m = service.metrics.clone();
    eventually(LONG, "assignment", || m.assigned_partitions() == 2).await;
    assert!(http_get(addr, "/readyz").await.0 == 200);
    cluster.publish(&topics, &articles(4)).await;
    eventually(LONG, "processing", || m.messages_consumed() == 4).await;
    // Lag comes from librdkafka statistics (every 500 ms here).
    eventually(LONG, "consumer lag gauge", || {
        m.render().contains("stancewatch_consumer_lag{")
    })
    .await;
    let (_, body) = http_get(addr, "/metrics").await;
    for name in [
        "stancewatch_messages_consumed_total 4",
        "stancewatch_articles_total{outcome=\"enriched\"}",
        "stancewatch_stage_duration_seconds_bucket{stage=\"nlp\"",
        "stancewatch_end_to_end_latency_seconds_count",
        "stancewatch_in_flight_articles",
        "stancewatch_consumer_lag{partition=",
        "stancewatch_rebalances_total{kind=\"assign\"} 1",
        "stancewatch_producer_queue_messages",
        "stancewatch_build_info{",
        "stancewatch_entities_total{type=\"PERSON\"}",
        "stancewatch_stances_total{label=",
    ] {
        assert!(body.contains(name), "/metrics lacks {name}:\n{body}");
    }
    service.shutdown();
    service.wait().await.unwrap();
    assert!(
        tokio::net::TcpStream::connect(addr).await.is_err(),
        "HTTP stops with the service"
    );
}
