//! `stancewatch demo`: the whole service against librdkafka's in-process mock cluster. It creates the topics,
//! publishes the example articles and two broken records, runs the same service loop as `run`, prints every
//! output record as it arrives (read back with the shared output reader), then a summary; `--serve` keeps it
//! all running for other clients (kcat) until Ctrl-C.

use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use stancewatch::config::Config;
use stancewatch::enriched::{EnrichedArticle, EntityStanceRecord};
use stancewatch::stream::mock::{publish_all, MockKafka, Publish};
use stancewatch::stream::outputs::{OutputKind, OutputReader, OutputRecord};
use stancewatch::stream::records::HEADER_ERROR_CLASS;
use stancewatch::stream::{OutputTopics, Service};
use tracing::error;

use super::{runtime, EXAMPLE_ARTICLES};

#[derive(clap::Args)]
pub struct Args {
    /// Keep the cluster and the service running after the summary, until Ctrl-C.
    #[arg(long)]
    serve: bool,
    /// Address for /metrics, /healthz and /readyz.
    #[arg(long, default_value = "127.0.0.1:9898")]
    listen: std::net::SocketAddr,
}

const DEMO_TOPICS: [(&str, i32); 4] = [
    ("articles", 8),
    ("articles.enriched", 8),
    ("entity-stances", 8),
    ("articles.dlq", 1),
];

pub fn demo(args: Args) -> Result<ExitCode> {
    let Args { serve, listen } = args;
    let kafka = MockKafka::start(1).context("starting librdkafka's mock cluster")?;
    for (topic, partitions) in DEMO_TOPICS {
        kafka
            .create_topic(topic, partitions)
            .with_context(|| format!("creating topic {topic}"))?;
    }
    let bootstrap = kafka.bootstrap_servers().to_string();
    println!("mock Kafka cluster at {bootstrap}; topics: articles, articles.enriched, entity-stances, articles.dlq");

    let mut articles = Vec::new();
    for (i, line) in EXAMPLE_ARTICLES
        .lines()
        .filter(|l| !l.trim().is_empty())
        .enumerate()
    {
        let id = serde_json::from_str::<serde_json::Value>(line)
            .ok()
            .and_then(|v| v["id"].as_str().map(str::to_string))
            .unwrap_or_else(|| format!("line-{i}"));
        articles.push(Publish {
            key: Some(id.into_bytes()),
            payload: Some(line.as_bytes().to_vec()),
            headers: vec![(
                "traceparent".into(),
                format!("00-{:032x}-{:016x}-01", i + 1, i + 1).into_bytes(),
            )],
            timestamp: None,
        });
    }
    // Two broken inputs, to show that bad input is dead-lettered rather than dropped or fatal.
    articles.push(Publish {
        key: Some(b"broken-1".to_vec()),
        payload: Some(b"{\"id\": \"broken-1\", \"body\": ".to_vec()),
        headers: vec![],
        timestamp: None,
    });
    articles.push(Publish {
        key: Some(b"broken-2".to_vec()),
        payload: Some(br#"{"id": "broken-2", "title": "No body"}"#.to_vec()),
        headers: vec![],
        timestamp: None,
    });
    let expected = articles.len();

    let mut config = Config::defaults();
    config.kafka.brokers = bootstrap.clone();
    config.kafka.group_id = "stancewatch-demo".into();
    config.kafka.statistics_interval_ms = 1000;
    config.http.listen = listen;

    let rt = runtime()?;
    rt.block_on(async move {
        let service = match Service::new(config.clone()).start().await {
            Ok(s) => s,
            Err(e @ stancewatch::stream::StreamError::Http { .. }) => {
                bail!("{e}; or run the demo with --listen 127.0.0.1:0")
            }
            Err(e) => return Err(e.into()),
        };
        let metrics_url = format!("http://{}/metrics", service.http_addr);
        println!("service started; metrics at {metrics_url}");

        let started = Instant::now();
        publish_all(&bootstrap, "articles", &articles).await.context("publishing the example articles")?;
        println!("published {expected} articles ({} examples + 2 deliberately broken)\n", expected - 2);

        let stop_watch = Arc::new(AtomicBool::new(false));
        let counts = {
            let (bootstrap, stop) = (bootstrap.clone(), stop_watch.clone());
            tokio::task::spawn_blocking(move || watch_outputs(&bootstrap, expected, serve, &stop))
        };
        let counts = if serve {
            println!("serving until Ctrl-C; publish more with kcat -b {bootstrap} -t articles -P\n");
            tokio::signal::ctrl_c().await.ok();
            stop_watch.store(true, Ordering::SeqCst);
            counts.await??
        } else {
            counts.await??
        };
        let elapsed = started.elapsed();
        service.shutdown();
        let summary = service.wait().await?;

        println!("\n── summary ──────────────────────────────────────────────");
        println!("articles published     {expected}");
        println!("enriched               {}", counts.enriched);
        println!("entity-stance records  {}", counts.stances);
        println!("dead-lettered          {} ({})", counts.dlq, counts.dlq_reasons.join(", "));
        println!("consumed by service    {} (all offsets committed: {})", summary.consumed, summary.uncommitted_at_exit == 0);
        println!(
            "elapsed                {:.2} s from first publish to last output, {:.1} articles/s (includes the consumer group join)",
            elapsed.as_secs_f64(),
            (counts.enriched + counts.dlq) as f64 / elapsed.as_secs_f64()
        );
        println!("metrics were served at {metrics_url}");
        if counts.enriched + counts.dlq < expected {
            bail!("only {} of {expected} articles came out before the deadline", counts.enriched + counts.dlq);
        }
        Ok(ExitCode::SUCCESS)
    })
}

#[derive(Debug, Default)]
struct OutputCounts {
    enriched: usize,
    stances: usize,
    dlq: usize,
    dlq_reasons: Vec<String>,
}

/// Reads the output topics from the beginning and prints each event as it arrives, until `expected` inputs are
/// accounted for (or, with `serve`, until stopped).
fn watch_outputs(
    bootstrap: &str,
    expected: usize,
    serve: bool,
    stop: &AtomicBool,
) -> Result<OutputCounts> {
    let topics = OutputTopics::of(&Config::defaults().kafka);
    let reader = OutputReader::new(
        bootstrap,
        &topics,
        &[
            OutputKind::Enriched,
            OutputKind::EntityStance,
            OutputKind::DeadLetter,
        ],
        Duration::from_millis(100),
    )?;
    let mut counts = OutputCounts::default();
    let deadline = Instant::now() + Duration::from_secs(120);
    while (serve || counts.enriched + counts.dlq < expected) && !stop.load(Ordering::SeqCst) {
        if !serve && Instant::now() > deadline {
            error!("timed out waiting for outputs");
            break;
        }
        if let Some(record) = reader.poll(Duration::from_millis(200)) {
            print_event(&record?, &mut counts)?;
        }
    }
    // Entity-stance records of the last article may trail its enriched record.
    let settle = Instant::now() + Duration::from_millis(500);
    while Instant::now() < settle {
        if let Some(record) = reader.poll(Duration::from_millis(100)) {
            print_event(&record?, &mut counts)?;
        }
    }
    Ok(counts)
}

fn print_event(record: &OutputRecord, counts: &mut OutputCounts) -> Result<()> {
    let value = record.value.as_deref().unwrap_or_default();
    match record.kind {
        OutputKind::Enriched => {
            let e: EnrichedArticle = serde_json::from_slice(value)?;
            counts.enriched += 1;
            let title: String = e.title.as_deref().unwrap_or("").chars().take(60).collect();
            println!(
                "enriched  {}  [{}] \"{}\"  {} entities",
                e.id,
                e.language,
                title,
                e.entities.len()
            );
        }
        OutputKind::EntityStance => {
            let s: EntityStanceRecord = serde_json::from_slice(value)?;
            counts.stances += 1;
            println!(
                "  stance  {} → {} ({}, {}): {} {:.2}",
                s.article_id,
                s.name,
                s.entity_type.as_str(),
                s.entity_id,
                s.label.as_str(),
                s.score
            );
        }
        OutputKind::DeadLetter => {
            let reason = record.header_text(HEADER_ERROR_CLASS).unwrap_or_default();
            counts.dlq += 1;
            let key = record.key_text().unwrap_or_else(|| {
                format!(
                    "(no key, {}/{}@{})",
                    record.topic, record.partition, record.offset
                )
            });
            println!("dlq       {key}: {reason}");
            counts.dlq_reasons.push(format!("{key}: {reason}"));
        }
    }
    Ok(())
}
