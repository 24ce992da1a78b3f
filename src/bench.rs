//! `stancewatch bench`: how fast the service is, measured in one run that anyone can repeat.
//!
//! One corpus serves every phase: the example articles (`examples/articles.jsonl`) cut and joined into a mix
//! of sizes close to a news feed's: 30 % wire briefs (the first third of an article), 50 % standard articles,
//! 20 % long reads (four articles end to end).
//!
//! 1. NLP alone: the pipeline over the corpus on 1 and on 2 threads (articles/s, words/s per core). No
//!    parsing, no JSON out, no Kafka: the ceiling the service can reach.
//! 2. End to end: the corpus published to librdkafka's in-process mock cluster as a backlog, then consumed by
//!    the real [`Service`] with 1 and with 2 NLP workers. The rate is taken between the first and the last
//!    article done (outputs acknowledged by the broker), so the consumer-group join is not counted; its ratio
//!    to phase 1 at the same thread count is the Kafka overhead (parsing, serialising, producing,
//!    committing, the broker itself).
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
use rdkafka::message::Message;
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::util::Timeout;
use rdkafka::{ClientConfig, Offset, TopicPartitionList};
use serde::Serialize;

use crate::config::Config;
use crate::enriched::Analyze;
use crate::metrics::Outcome;
use crate::nlp::Document;
use crate::stream::mock::{publish_all, MockKafka, Publish};
use crate::stream::sched::on_batch_thread;
use crate::stream::{Service, StreamError};

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
    /// Articles in the corpus (each NLP and end-to-end phase processes all of them).
    pub articles: usize,
    /// Worker-thread counts to measure, e.g. `[1, 2]`.
    pub threads: Vec<usize>,
    /// How long the fixed-rate latency phase publishes.
    pub latency_seconds: f64,
    /// Runs of each rate measurement; the median is reported (the machine may be busy with other work).
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
    /// The ratio in each round, each end-to-end run over the NLP-only run of the same round.
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
    // Rounds alternate the NLP-only and the end-to-end phases, so that a change in the machine's other load
    // during the run moves both alike; each figure is the median of its rounds.
    let repeats = options.repeats.max(1);
    let mut nlp_runs: Vec<Vec<NlpRate>> = vec![Vec::new(); options.threads.len()];
    let mut e2e_runs: Vec<Vec<E2eRun>> = vec![Vec::new(); options.threads.len()];
    for _ in 0..repeats {
        for (i, &threads) in options.threads.iter().enumerate() {
            let name = format!("NLP, {threads} thread(s)");
            nlp_runs[i].push(tokio::task::block_in_place(|| {
                nlp_rate(analyzer.as_ref(), corpus, threads, &|d, t| {
                    progress(&name, d, t)
                })
            }));
            let name = format!("end to end, {threads} worker(s)");
            e2e_runs[i].push(
                end_to_end_rate(analyzer.clone(), corpus, threads, options, &|d, t| {
                    progress(&name, d, t)
                })
                .await?,
            );
        }
    }
    let mut nlp = Vec::new();
    let mut end_to_end = Vec::new();
    for (i, &workers) in options.threads.iter().enumerate() {
        // Each round's end-to-end run over the NLP-only run just before it: the two ran minutes apart at most,
        // so a machine that is faster or slower for a while moves both, and the ratio less than either rate.
        let ratio_per_round: Vec<f64> = nlp_runs[i]
            .iter()
            .zip(&e2e_runs[i])
            .map(|(n, e)| e.rate / n.articles_per_sec)
            .collect();
        let mut runs = std::mem::take(&mut nlp_runs[i]);
        runs.sort_by(|a, b| a.articles_per_sec.total_cmp(&b.articles_per_sec));
        let n = runs.swap_remove(repeats / 2);
        let mut runs = std::mem::take(&mut e2e_runs[i]);
        runs.sort_by(|a, b| a.rate.total_cmp(&b.rate));
        let E2eRun { rate, cpu, rss } = runs.swap_remove(repeats / 2);
        end_to_end.push(EndToEndRate {
            workers,
            articles_per_sec: rate,
            ratio_to_nlp: median(&ratio_per_round),
            ratio_per_round,
            cpu_ms_per_article: cpu,
            cpu_ratio_to_nlp: n.cpu_ms_per_article.zip(cpu).map(|(a, b)| a / b),
            peak_rss_mb: rss,
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

/// One end-to-end run: articles/s, CPU ms per article, peak RSS in MB.
#[derive(Debug, Clone)]
struct E2eRun {
    rate: f64,
    cpu: Option<f64>,
    rss: Option<f64>,
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

/// A consumer of the enriched topic from its beginning. It waits at most 10 ms for data so that it measures
/// the service rather than its own fetch wait.
fn enriched_reader(config: &Config) -> Result<BaseConsumer, BenchError> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", &config.kafka.brokers)
        .set("group.id", format!("{}-reader", config.kafka.group_id))
        .set("enable.auto.commit", "false")
        .set("fetch.wait.max.ms", "10")
        .create()?;
    let mut tpl = TopicPartitionList::new();
    for p in 0..PARTITIONS {
        tpl.add_partition_offset(&config.kafka.enriched_topic, p, Offset::Beginning)?;
    }
    consumer.assign(&tpl)?;
    Ok(consumer)
}

/// Phase 2: the whole corpus published as a backlog before the service starts, then drained by it.
///
/// The rate runs from the first article done to the last, so neither the group join nor the bench's own
/// publishing counts. "Done" is the service's own count of articles whose outputs the broker acknowledged,
/// read in-process: a reader of the enriched topic, or even polling its watermarks, would take CPU and
/// wake-ups from the service that production does not have. At the end the enriched topic's watermarks
/// must show every article, so the count is checked against the broker.
async fn end_to_end_rate(
    analyzer: Arc<dyn Analyze>,
    corpus: &[BenchArticle],
    workers: usize,
    options: &BenchOptions,
    progress: &(dyn Fn(u64, u64) + Sync),
) -> Result<E2eRun, BenchError> {
    // A cluster of its own, so that the records of earlier phases do not count in this phase's memory.
    let kafka = MockKafka::start(1)?;
    let config = phase_config(&kafka, "e2e", workers, options)?;
    let records: Vec<Publish> = corpus.iter().map(publishable).collect();
    publish_all(&config.kafka.brokers, &config.kafka.input_topic, &records).await?;
    drop(records);
    let watermarks = EnrichedCount::new(&config)?;
    reset_peak_rss();
    let service = Service::new(config).with_analyzer(analyzer).start().await?;
    let metrics = service.metrics.clone();
    let done = || metrics.articles(Outcome::Enriched) + metrics.articles(Outcome::DeadLettered);

    let n = corpus.len();
    let deadline = Instant::now() + Duration::from_secs(60) + Duration::from_millis(n as u64 * 500);
    // The bench's own watching wakes every 2 ms; in the SCHED_BATCH class, as the service's Kafka threads, so
    // that it does not preempt the NLP workers it measures either.
    let (first, cpu_started, started) = tokio::task::block_in_place(|| {
        on_batch_thread(|| {
            let (first, cpu_started, started) = loop {
                let count = done() as usize;
                if count > 0 {
                    break (count, cpu_seconds(), Instant::now());
                }
                if Instant::now() > deadline {
                    return Err(BenchError::Stalled(
                        "no enriched record came out: the service did not start consuming".into(),
                    ));
                }
                std::thread::sleep(Duration::from_millis(2));
            };
            loop {
                let count = done() as usize;
                progress(count as u64, n as u64);
                if count >= n {
                    return Ok((first, cpu_started, started));
                }
                if Instant::now() > deadline {
                    return Err(BenchError::Stalled(format!(
                        "only {count} of {n} articles came out before the deadline"
                    )));
                }
                std::thread::sleep(Duration::from_millis(2));
            }
        })
    })?;
    let secs = started.elapsed().as_secs_f64();
    let on_broker = watermarks.count()?;
    if on_broker < n {
        return Err(BenchError::Stalled(format!(
            "the service counted {n} articles done, but only {on_broker} are on the enriched topic"
        )));
    }
    let drained = (n - first).max(1);
    let cpu = cpu_seconds()
        .zip(cpu_started)
        .map(|(b, a)| (b - a) * 1000.0 / drained as f64);
    let rss = peak_rss_mb();
    service.shutdown();
    service.wait().await?;
    Ok(E2eRun {
        rate: drained as f64 / secs,
        cpu,
        rss,
    })
}

/// How many enriched records the broker holds: the sum of the enriched topic's high watermarks.
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
            let (low, high) =
                self.client
                    .fetch_watermarks(&self.topic, p, Duration::from_secs(5))?;
            total += (high - low).max(0) as usize;
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
    reader: &BaseConsumer,
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
    let mut fr = FutureRecord::to(topic).payload(&record.payload);
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
    reader: &BaseConsumer,
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
            if let Some(created) = m.timestamp().to_millis() {
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
        payload: a.json.clone(),
        headers: vec![],
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

    const EXAMPLES: &str = include_str!("../examples/articles.jsonl");

    #[test]
    fn median_of_odd_and_even_counts() {
        assert_eq!(median(&[0.9, 0.7, 0.8]), 0.8);
        assert_eq!(median(&[0.9, 0.7, 0.8, 0.6]), 0.75);
        assert!(median(&[]).is_nan());
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
            let parsed = crate::article::Article::parse(
                &a.json,
                crate::article::Limits {
                    max_body_bytes: 1 << 20,
                },
            )
            .expect("every corpus article is a valid input");
            assert_eq!(parsed.body, a.body);
        }
    }
}
