//! The engine of `stancewatch bench`: how fast the service is, measured in one run that anyone can repeat.
//!
//! One corpus serves every phase: the example articles (`examples/articles.jsonl`) cut and joined into a mix
//! of sizes close to a news feed's: 30 % wire briefs (the first third of an article), 50 % standard articles,
//! 20 % long reads (four articles end to end).
//!
//! 1. NLP alone: the pipeline over the corpus on 1 and on 2 threads (articles/s, words/s per core). No
//!    parsing, no JSON out, no Kafka: the ceiling the service can reach.
//! 2. End to end: the real [`Service`] with 1 and with 2 NLP workers, on librdkafka's in-process mock
//!    cluster, draining the corpus published to its input topic as a backlog. Its ratio to phase 1 at the same
//!    thread count is the Kafka overhead (parsing, serialising, producing, committing, the broker itself).
//!    Phases 1 and 2 alternate in rounds on one running service (see [`rounds`]), so that each end-to-end run
//!    is compared with NLP-only runs seconds before and after it.
//! 3. Latency: articles published at half the 2-worker end-to-end rate; an article's latency runs from its
//!    publication (the input record's CreateTime, which the enriched record carries over) to the moment its
//!    enriched record is read back, so it includes both hops through the broker.
//! 4. Memory: the process's peak RSS in each end-to-end phase (the kernel's high-water mark, reset between
//!    phases where Linux allows it).
//!
//! The mock broker (and in phase 3 the reader) run in this process and share its two cores with the service;
//! a broker on other machines, as in production, would only make the end-to-end figures better.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::util::Timeout;
use rdkafka::ClientConfig;
use serde::Serialize;

use stancewatch::analyze::Analyze;
use stancewatch::config::Config;
use stancewatch::metrics::Outcome;
use stancewatch::nlp::Document;
use stancewatch::stream::mock::{publish_all, MockKafka, Publish};
use stancewatch::stream::outputs::{OutputKind, OutputReader};
use stancewatch::stream::sched::on_batch_thread;
use stancewatch::stream::{OutputTopics, Service, StreamError};

/// Partitions of the benchmark's input topic: more than the workers, as in production.
const PARTITIONS: i32 = 4;

#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    #[error("Kafka: {0}")]
    Kafka(#[from] rdkafka::error::KafkaError),
    #[error(transparent)]
    Stream(#[from] StreamError),
    #[error("{0}")]
    Stalled(String),
}

/// What to measure and for how long.
#[derive(Debug, Clone)]
pub struct BenchOptions {
    /// Articles in the corpus (each NLP-only and each end-to-end run processes all of them).
    pub articles: usize,
    /// Worker-thread counts to measure, e.g. `[1, 2]`.
    pub threads: Vec<usize>,
    /// How long the fixed-rate latency phase publishes.
    pub latency_seconds: f64,
    /// Rounds for each thread count (`repeats + 1` NLP-only runs around `repeats` end-to-end ones); medians
    /// are reported.
    pub repeats: usize,
    /// The service's `processing.io_sched_batch`; off only to measure what it is worth.
    pub io_sched_batch: bool,
}

/// One article of the corpus, ready to publish and to analyse.
#[derive(Debug, Clone)]
pub struct BenchArticle {
    pub id: String,
    pub title: Option<String>,
    pub body: String,
    pub words: usize,
    pub json: Vec<u8>,
}

#[derive(Debug, Clone, Serialize)]
pub struct NlpRate {
    pub threads: usize,
    pub articles_per_sec: f64,
    pub words_per_sec: f64,
    pub articles_per_sec_per_core: f64,
    pub words_per_sec_per_core: f64,
    /// Process CPU time per article (user + system), in milliseconds.
    pub cpu_ms_per_article: Option<f64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct EndToEndRate {
    pub workers: usize,
    pub articles_per_sec: f64,
    /// End-to-end rate over the NLP-only rate at the same thread count (1.0 = Kafka costs nothing): the
    /// median of `ratio_per_round`.
    pub ratio_to_nlp: f64,
    /// The ratio in each round: an end-to-end run over the mean of the NLP-only runs just before and just
    /// after it.
    pub ratio_per_round: Vec<f64>,
    /// Process CPU time per article, in milliseconds: the service, and also the in-process mock broker and
    /// the bench's reader.
    pub cpu_ms_per_article: Option<f64>,
    /// NLP-only CPU per article over end-to-end CPU per article: the rate ratio a machine with no other
    /// load would show, and unlike `ratio_to_nlp` not moved by whatever else runs on the machine.
    pub cpu_ratio_to_nlp: Option<f64>,
    pub peak_rss_mb: Option<f64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Latency {
    pub workers: usize,
    pub rate_per_sec: f64,
    pub articles: usize,
    pub p50_ms: f64,
    pub p95_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
    pub peak_rss_mb: Option<f64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct BenchReport {
    pub corpus_articles: usize,
    pub corpus_mean_words: f64,
    pub nlp: Vec<NlpRate>,
    pub end_to_end: Vec<EndToEndRate>,
    pub latency: Option<Latency>,
}

/// Progress of a phase, for a progress bar: (phase name, done, total).
pub type Progress<'a> = &'a (dyn Fn(&str, u64, u64) + Sync);

/// The benchmark corpus: `n` articles cut from and joined out of `examples` (JSON Lines articles).
pub fn corpus(examples: &str, n: usize) -> Vec<BenchArticle> {
    let base: Vec<(Option<String>, String)> = examples
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter_map(|v| {
            let body = v["body"].as_str()?.to_string();
            Some((v["title"].as_str().map(str::to_string), body))
        })
        .collect();
    assert!(
        !base.is_empty(),
        "the example articles are embedded and valid"
    );
    (0..n)
        .map(|i| {
            let (title, body) = &base[i % base.len()];
            let body = match i % 10 {
                0..=2 => brief(body),
                3..=7 => body.clone(),
                _ => (0..4)
                    .map(|k| base[(i + k) % base.len()].1.as_str())
                    .collect::<Vec<_>>()
                    .join("\n\n"),
            };
            let id = format!("bench-{i}");
            let json = serde_json::to_vec(&serde_json::json!({
                "id": id, "title": title, "body": body, "source": "bench", "language": "en",
            }))
            .expect("serialising a JSON value");
            BenchArticle {
                id,
                title: title.clone(),
                words: body.split_whitespace().count(),
                body,
                json,
            }
        })
        .collect()
}

/// The first third of an article, cut after a sentence.
fn brief(body: &str) -> String {
    let mut third = body.len() / 3;
    while !body.is_char_boundary(third) {
        third += 1;
    }
    let cut = body[third..]
        .find(". ")
        .map(|i| third + i + 1)
        .unwrap_or(body.len());
    body[..cut].to_string()
}

/// Runs every phase and returns the figures.
pub async fn run(
    analyzer: Arc<dyn Analyze>,
    corpus: &[BenchArticle],
    options: &BenchOptions,
    progress: Progress<'_>,
) -> Result<BenchReport, BenchError> {
    // For each thread count, the NLP-only and the end-to-end runs alternate, starting and ending with NLP
    // alone: N, E, N, E, ..., N, each over the same corpus, each a second or two long. Each end-to-end run is
    // compared with the mean of the two NLP-only runs around it. This machine's speed drifts and jumps by
    // ±10 % within seconds (other tenants of the host); runs minutes apart, or even ten seconds apart, gave
    // single ratios from 0.67 to 1.05. Short runs side by side see the same machine, and the median of the
    // rounds takes care of the rest.
    let mut nlp = Vec::new();
    let mut end_to_end = Vec::new();
    for &workers in &options.threads {
        let Rounds {
            nlp: mut nlp_runs,
            e2e: mut e2e_runs,
            peak_rss_mb,
        } = rounds(analyzer.clone(), corpus, workers, options, progress).await?;
        let ratio_per_round: Vec<f64> = e2e_runs
            .iter()
            .zip(nlp_runs.windows(2))
            .map(|(e, around)| {
                e.rate / ((around[0].articles_per_sec + around[1].articles_per_sec) / 2.0)
            })
            .collect();
        nlp_runs.sort_by(|a, b| a.articles_per_sec.total_cmp(&b.articles_per_sec));
        let n = nlp_runs.swap_remove(nlp_runs.len() / 2);
        e2e_runs.sort_by(|a, b| a.rate.total_cmp(&b.rate));
        let E2eRun { rate, cpu } = e2e_runs.swap_remove(e2e_runs.len() / 2);
        end_to_end.push(EndToEndRate {
            workers,
            articles_per_sec: rate,
            ratio_to_nlp: median(&ratio_per_round),
            ratio_per_round,
            cpu_ms_per_article: cpu,
            cpu_ratio_to_nlp: n.cpu_ms_per_article.zip(cpu).map(|(a, b)| a / b),
            peak_rss_mb,
        });
        nlp.push(n);
    }

    let latency = match end_to_end.last() {
        Some(top) if options.latency_seconds > 0.0 => {
            let rate = top.articles_per_sec / 2.0;
            let n = ((rate * options.latency_seconds).ceil() as usize).max(1);
            Some(
                latency_at(analyzer, corpus, top.workers, options, rate, n, &|d, t| {
                    progress("latency at half the maximum rate", d, t)
                })
                .await?,
            )
        }
        _ => None,
    };

    Ok(BenchReport {
        corpus_articles: corpus.len(),
        corpus_mean_words: corpus.iter().map(|a| a.words).sum::<usize>() as f64
            / corpus.len().max(1) as f64,
        nlp,
        end_to_end,
        latency,
    })
}

/// Phase 1: the pipeline alone over the corpus on `threads` threads, after a short warm-up.
pub fn nlp_rate(
    analyzer: &dyn Analyze,
    corpus: &[BenchArticle],
    threads: usize,
    progress: &(dyn Fn(u64, u64) + Sync),
) -> NlpRate {
    let analyze = |a: &BenchArticle| {
        analyzer.analyze(&Document {
            title: a.title.as_deref(),
            body: &a.body,
            declared_language: Some("en"),
        })
    };
    for a in corpus.iter().take(5) {
        std::hint::black_box(analyze(a));
    }
    let next = AtomicUsize::new(0);
    let cpu_started = cpu_seconds();
    let started = Instant::now();
    std::thread::scope(|scope| {
        for _ in 0..threads {
            scope.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(a) = corpus.get(i) else { break };
                std::hint::black_box(analyze(a));
                progress(i as u64 + 1, corpus.len() as u64);
            });
        }
    });
    let secs = started.elapsed().as_secs_f64();
    let cpu = cpu_seconds()
        .zip(cpu_started)
        .map(|(b, a)| (b - a) * 1000.0 / corpus.len() as f64);
    let words: usize = corpus.iter().map(|a| a.words).sum();
    let articles_per_sec = corpus.len() as f64 / secs;
    let words_per_sec = words as f64 / secs;
    NlpRate {
        threads,
        articles_per_sec,
        words_per_sec,
        articles_per_sec_per_core: articles_per_sec / threads as f64,
        words_per_sec_per_core: words_per_sec / threads as f64,
        cpu_ms_per_article: cpu,
    }
}

/// One end-to-end run: articles/s, CPU ms per article.
#[derive(Debug, Clone)]
struct E2eRun {
    rate: f64,
    cpu: Option<f64>,
}

/// The runs of one thread count: `repeats + 1` NLP-only runs around `repeats` end-to-end ones.
struct Rounds {
    nlp: Vec<NlpRate>,
    e2e: Vec<E2eRun>,
    /// The process's peak RSS over the end-to-end runs.
    peak_rss_mb: Option<f64>,
}

/// Topics and a service configuration for one phase.
fn phase_config(
    kafka: &MockKafka,
    phase: &str,
    workers: usize,
    options: &BenchOptions,
) -> Result<Config, BenchError> {
    let mut config = Config::defaults();
    config.processing.io_sched_batch = options.io_sched_batch;
    config.kafka.brokers = kafka.bootstrap_servers().to_string();
    config.kafka.group_id = format!("bench-{phase}");
    config.kafka.input_topic = format!("{phase}.articles");
    config.kafka.enriched_topic = format!("{phase}.enriched");
    config.kafka.entity_stances_topic = format!("{phase}.entity-stances");
    config.kafka.dlq_topic = format!("{phase}.dlq");
    config.processing.workers = workers;
    // The mock broker answers a fetch that finds no data only after the whole fetch.wait.max.ms (500 ms by
    // default), even when records arrive meanwhile; a real broker answers as soon as they arrive. A short wait
    // gives the service what a real broker would, instead of measuring the mock's long-poll.
    config
        .kafka
        .consumer
        .insert("fetch.wait.max.ms".into(), "10".into());
    config.http.listen = "127.0.0.1:0".parse().expect("a valid address");
    for topic in [
        &config.kafka.input_topic,
        &config.kafka.enriched_topic,
        &config.kafka.entity_stances_topic,
        &config.kafka.dlq_topic,
    ] {
        kafka.create_topic(topic, PARTITIONS)?;
    }
    Ok(config)
}

/// A reader of the enriched topic from its beginning. It waits at most 10 ms for data so that it measures the
/// service rather than its own fetch wait.
fn enriched_reader(config: &Config) -> Result<OutputReader, BenchError> {
    Ok(OutputReader::new(
        &config.kafka.brokers,
        &OutputTopics::of(&config.kafka),
        &[OutputKind::Enriched],
        Duration::from_millis(10),
    )?)
}

/// Phases 1 and 2 for one thread count, in rounds on one running service.
///
/// The service (`workers` NLP workers) starts once, and a few articles go through it first so that the
/// consumer group's join and the first fetches are over. Then each round runs the pipeline alone over the
/// corpus while the service idles, publishes the corpus to the service's input topic as a backlog, and times
/// the service draining it: from the moment the backlog is on the broker to the last article done. "Done" is
/// the service's own count of articles whose outputs the broker acknowledged, read in-process: a reader of
/// the enriched topic, or even polling its watermarks, would take CPU and wake-ups from the service that
/// production does not have. At the end the enriched topic's watermarks must show every article, so the count
/// is checked against the broker.
async fn rounds(
    analyzer: Arc<dyn Analyze>,
    corpus: &[BenchArticle],
    workers: usize,
    options: &BenchOptions,
    progress: Progress<'_>,
) -> Result<Rounds, BenchError> {
    let repeats = options.repeats.max(1);
    // A cluster of its own, so that the records of other phases do not count in this phase's memory.
    let kafka = MockKafka::start(1)?;
    let config = phase_config(&kafka, "e2e", workers, options)?;
    let (bootstrap, topic) = (
        config.kafka.brokers.clone(),
        config.kafka.input_topic.clone(),
    );
    let records: Vec<Publish> = corpus.iter().map(publishable).collect();
    let watermarks = EnrichedCount::new(&config)?;
    reset_peak_rss();
    let service = Service::new(config)
        .with_analyzer(analyzer.clone())
        .start()
        .await?;
    let metrics = service.metrics.clone();
    let done =
        || (metrics.articles(Outcome::Enriched) + metrics.articles(Outcome::DeadLettered)) as usize;

    let warm_up = &records[..records.len().min(WARM_UP_ARTICLES)];
    publish_all(&bootstrap, &topic, warm_up).await?;
    let mut expected = warm_up.len();
    wait_until_done(&done, expected, Duration::from_secs(60), &|_, _| {})?;

    let n = corpus.len();
    let nlp_name = format!("NLP, {workers} thread(s)");
    let e2e_name = format!("end to end, {workers} worker(s)");
    let mut nlp = Vec::with_capacity(repeats + 1);
    let mut e2e = Vec::with_capacity(repeats);
    for round in 0..=repeats {
        nlp.push(tokio::task::block_in_place(|| {
            nlp_rate(analyzer.as_ref(), corpus, workers, &|d, t| {
                progress(&nlp_name, d, t)
            })
        }));
        if round == repeats {
            break;
        }
        publish_all(&bootstrap, &topic, &records).await?;
        let (first, cpu_started, started) = (done(), cpu_seconds(), Instant::now());
        let target = expected + n;
        let deadline = Duration::from_secs(60) + Duration::from_millis(n as u64 * 500);
        wait_until_done(&done, target, deadline, &|d, _| {
            progress(&e2e_name, d.saturating_sub(expected as u64), n as u64)
        })?;
        let secs = started.elapsed().as_secs_f64();
        let drained = (target - first).max(1);
        e2e.push(E2eRun {
            rate: drained as f64 / secs,
            cpu: cpu_seconds()
                .zip(cpu_started)
                .map(|(b, a)| (b - a) * 1000.0 / drained as f64),
        });
        expected = target;
    }
    let peak_rss_mb = peak_rss_mb();
    let on_broker = watermarks.count()?;
    if on_broker < expected {
        return Err(BenchError::Stalled(format!(
            "the service counted {expected} articles done, but only {on_broker} are on the enriched topic"
        )));
    }
    service.shutdown();
    service.wait().await?;
    Ok(Rounds {
        nlp,
        e2e,
        peak_rss_mb,
    })
}

/// Articles sent through the service before the first round, so that no round counts the group join.
const WARM_UP_ARTICLES: usize = 20;

/// Waits until `done()` reaches `target`, checking every 2 ms: in the SCHED_BATCH class, as the service's
/// Kafka threads, so that the bench's own watching does not preempt the NLP workers it measures.
fn wait_until_done(
    done: &(dyn Fn() -> usize + Sync),
    target: usize,
    within: Duration,
    progress: &(dyn Fn(u64, u64) + Sync),
) -> Result<(), BenchError> {
    let deadline = Instant::now() + within;
    tokio::task::block_in_place(|| {
        on_batch_thread(|| loop {
            let count = done();
            progress(count as u64, target as u64);
            if count >= target {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(BenchError::Stalled(format!(
                    "only {count} of {target} articles came out within {within:?}"
                )));
            }
            std::thread::sleep(Duration::from_millis(2));
        })
    })
}

/// How many enriched records the broker took: the sum of the enriched topic's high watermarks (the topic
/// is new, so its offsets start at 0). Not high minus low: the mock cluster keeps only the last 5 MB of each
/// partition, which also keeps the phase's memory from growing with the rounds.
struct EnrichedCount {
    client: BaseConsumer,
    topic: String,
}

impl EnrichedCount {
    fn new(config: &Config) -> Result<Self, BenchError> {
        let client = ClientConfig::new()
            .set("bootstrap.servers", &config.kafka.brokers)
            .create()?;
        Ok(Self {
            client,
            topic: config.kafka.enriched_topic.clone(),
        })
    }

    fn count(&self) -> Result<usize, BenchError> {
        let mut total = 0;
        for p in 0..PARTITIONS {
            let (_, high) = self
                .client
                .fetch_watermarks(&self.topic, p, Duration::from_secs(5))?;
            total += high.max(0) as usize;
        }
        Ok(total)
    }
}

/// Publishes one article and waits for its enriched record, so that the group join is over before any clock
/// starts.
async fn warm_up(
    bootstrap: &str,
    topic: &str,
    article: &BenchArticle,
    reader: &OutputReader,
) -> Result<(), BenchError> {
    let mut record = publishable(article);
    record.key = Some(b"warm-up".to_vec());
    publish_all(bootstrap, topic, std::slice::from_ref(&record)).await?;
    tokio::task::block_in_place(|| read_latencies(reader, 1, Duration::from_secs(60), &|_, _| {}))?;
    Ok(())
}

/// Phase 3: `n` articles published at `rate` per second to a running service; publish-to-emit latency.
async fn latency_at(
    analyzer: Arc<dyn Analyze>,
    corpus: &[BenchArticle],
    workers: usize,
    options: &BenchOptions,
    rate: f64,
    n: usize,
    progress: &(dyn Fn(u64, u64) + Sync),
) -> Result<Latency, BenchError> {
    let kafka = MockKafka::start(1)?;
    let config = phase_config(&kafka, "latency", workers, options)?;
    reset_peak_rss();
    let reader = enriched_reader(&config)?;
    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", &config.kafka.brokers)
        .set("enable.idempotence", "true")
        .set("linger.ms", "5")
        .create()?;
    let (bootstrap, topic) = (
        config.kafka.brokers.clone(),
        config.kafka.input_topic.clone(),
    );
    let service = Service::new(config).with_analyzer(analyzer).start().await?;

    warm_up(&bootstrap, &topic, &corpus[0], &reader).await?;

    let reader_task = tokio::task::spawn_blocking({
        let deadline = Duration::from_secs_f64(n as f64 / rate) + Duration::from_secs(60);
        move || read_latencies(&reader, n, deadline, &|_, _| {})
    });
    let started = tokio::time::Instant::now();
    let mut deliveries = Vec::with_capacity(n);
    for i in 0..n {
        tokio::time::sleep_until(started + Duration::from_secs_f64(i as f64 / rate)).await;
        let mut record = publishable(&corpus[(i + 1) % corpus.len()]);
        record.key = Some(format!("latency-{i}").into_bytes());
        let producer = producer.clone();
        let topic = topic.clone();
        deliveries.push(tokio::spawn(async move {
            send(&producer, &topic, &record).await.map(|_| ())
        }));
        progress(i as u64 + 1, n as u64);
    }
    for d in deliveries {
        d.await
            .map_err(|e| BenchError::Stalled(format!("publishing task failed: {e}")))?
            .map_err(|(e, _)| e)?;
    }
    let mut latencies = reader_task
        .await
        .map_err(|e| BenchError::Stalled(format!("reader task failed: {e}")))??;
    let rss = peak_rss_mb();
    service.shutdown();
    service.wait().await?;

    latencies.sort_by(f64::total_cmp);
    let pct = |p: f64| {
        latencies[((latencies.len() as f64 * p).ceil() as usize).clamp(1, latencies.len()) - 1]
    };
    Ok(Latency {
        workers,
        rate_per_sec: rate,
        articles: n,
        p50_ms: pct(0.50),
        p95_ms: pct(0.95),
        p99_ms: pct(0.99),
        max_ms: pct(1.0),
        peak_rss_mb: rss,
    })
}

async fn send(
    producer: &FutureProducer,
    topic: &str,
    record: &Publish,
) -> Result<(i32, i64), (rdkafka::error::KafkaError, rdkafka::message::OwnedMessage)> {
    let mut fr = FutureRecord::<[u8], [u8]>::to(topic);
    if let Some(p) = &record.payload {
        fr = fr.payload(p);
    }
    if let Some(k) = &record.key {
        fr = fr.key(k);
    }
    producer
        .send(fr, Timeout::After(Duration::from_secs(30)))
        .await
        .map(|d| (d.partition, d.offset))
}

/// Reads `n` enriched records; returns each one's latency in milliseconds (now minus its CreateTime).
fn read_latencies(
    reader: &OutputReader,
    n: usize,
    deadline: Duration,
    progress: &(dyn Fn(u64, u64) + Sync),
) -> Result<Vec<f64>, BenchError> {
    let started = Instant::now();
    let mut latencies = Vec::with_capacity(n);
    while latencies.len() < n {
        if started.elapsed() > deadline {
            return Err(BenchError::Stalled(format!(
                "only {} of {n} articles came out within {deadline:?}",
                latencies.len()
            )));
        }
        if let Some(m) = reader.poll(Duration::from_millis(50)) {
            let m = m?;
            let now = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap_or_default()
                .as_secs_f64()
                * 1000.0;
            if let Some(created) = m.timestamp {
                latencies.push((now - created as f64).max(0.0));
            }
            progress(latencies.len() as u64, n as u64);
        }
    }
    Ok(latencies)
}

fn publishable(a: &BenchArticle) -> Publish {
    Publish {
        key: Some(a.id.clone().into_bytes()),
        payload: Some(a.json.clone()),
        headers: vec![],
        timestamp: None,
    }
}

/// The median (the mean of the middle two for an even count); NaN for none.
fn median(xs: &[f64]) -> f64 {
    let mut xs = xs.to_vec();
    xs.sort_by(f64::total_cmp);
    match xs.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => xs[n / 2],
        n => (xs[n / 2 - 1] + xs[n / 2]) / 2.0,
    }
}

/// CPU time this process has used, user and system, in seconds.
fn cpu_seconds() -> Option<f64> {
    let mut usage = std::mem::MaybeUninit::<libc::rusage>::uninit();
    // SAFETY: getrusage writes a complete rusage into the pointer it is given when it returns 0.
    let usage = unsafe {
        if libc::getrusage(libc::RUSAGE_SELF, usage.as_mut_ptr()) != 0 {
            return None;
        }
        usage.assume_init()
    };
    let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    Some(secs(usage.ru_utime) + secs(usage.ru_stime))
}

/// Resets the kernel's peak-RSS mark of this process (Linux ≥ 4.0; elsewhere a no-op).
fn reset_peak_rss() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

/// Peak resident set size of this process in MB (`VmHWM`), where the OS reports it.
pub fn peak_rss_mb() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXAMPLES: &str = crate::cli::EXAMPLE_ARTICLES;

    #[test]
    fn median_of_odd_and_even_counts() {
        assert_eq!(median(&[0.9, 0.7, 0.8]), 0.8);
        assert_eq!(median(&[0.9, 0.7, 0.8, 0.6]), 0.75);
        assert!(median(&[]).is_nan());
    }

    /// A short run of the whole bench through the mock cluster: every round yields a rate, the rounds
    /// alternate as documented, and the broker holds an enriched record for every article counted done
    /// (`rounds` fails otherwise).
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn rounds_bracket_each_end_to_end_run_with_nlp_runs() {
        let corpus = corpus(EXAMPLES, 12);
        let options = BenchOptions {
            articles: corpus.len(),
            threads: vec![1],
            latency_seconds: 0.0,
            repeats: 2,
            io_sched_batch: true,
        };
        let analyzer: Arc<dyn Analyze> = Arc::new(stancewatch::nlp::Pipeline::new());
        let report = run(analyzer, &corpus, &options, &|_, _, _| {})
            .await
            .expect("the bench runs");
        assert_eq!(report.nlp.len(), 1);
        let e2e = &report.end_to_end[0];
        assert_eq!(e2e.workers, 1);
        assert_eq!(e2e.ratio_per_round.len(), 2, "one ratio per end-to-end run");
        assert!(e2e.articles_per_sec > 0.0 && report.nlp[0].articles_per_sec > 0.0);
        assert!(
            e2e.ratio_per_round
                .iter()
                .all(|r| r.is_finite() && *r > 0.0),
            "{:?}",
            e2e.ratio_per_round
        );
        assert!(report.latency.is_none());
    }

    #[test]
    fn corpus_mixes_briefs_articles_and_long_reads() {
        let c = corpus(EXAMPLES, 100);
        assert_eq!(c.len(), 100);
        let words: Vec<usize> = c.iter().map(|a| a.words).collect();
        let (short, long) = (words[0], words[8]);
        assert!(
            short * 2 < words[3],
            "a brief is well under an article: {words:?}"
        );
        assert!(
            long > words[3] * 3,
            "a long read is several articles: {words:?}"
        );
        let ids: std::collections::BTreeSet<_> = c.iter().map(|a| &a.id).collect();
        assert_eq!(ids.len(), 100, "ids are distinct");
        for a in &c {
            let parsed = stancewatch::article::Article::parse(
                &a.json,
                stancewatch::article::Limits {
                    max_body_bytes: 1 << 20,
                },
            )
            .expect("every corpus article is a valid input");
            assert_eq!(parsed.body, a.body);
        }
    }
}
