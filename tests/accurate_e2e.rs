//! The service in accurate mode (`nlp.mode = "accurate"`) against librdkafka's mock cluster: every article
//! enriched once, every offset committed, with the transformer batching across the workers' articles; and
//! the start-up failure when the base weights are missing. Skips (saying so) when `scripts/fetch-minilm.sh`
//! has not been run.

mod common;

use std::path::PathBuf;
use std::time::Duration;

use common::*;
use stancewatch::config::NlpMode;
use stancewatch::nlp::Pipeline;
use stancewatch::stream::Service;

const LONG: Duration = Duration::from_secs(120);

fn base_dir() -> PathBuf {
    PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/models/base/all-minilm-l6-v2"
    ))
}

fn block<T>(f: impl FnOnce() -> T) -> T {
    tokio::task::block_in_place(f)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn accurate_mode_enriches_every_article_once_and_commits() {
    if !base_dir().join("model.safetensors").is_file() {
        eprintln!(
            "skipping: no base weights in {} (run scripts/fetch-minilm.sh)",
            base_dir().display()
        );
        return;
    }
    let cluster = Cluster::mock();
    let topics = cluster.topics(4).await;
    let group = unique("acc");
    let bootstrap = cluster.bootstrap();
    let mut config = cluster.config(&topics, &group);
    config.nlp.mode = NlpMode::Accurate;
    config.nlp.accurate.base_dir = base_dir();
    // A small in-flight bound, so that the transformer is the bottleneck and partitions get paused.
    config.processing.max_in_flight = 8;
    let service = Service::new(config).start().await.unwrap();
    let input = articles(30);
    cluster.publish(&topics, &input).await;

    let mut reader = OutputReader::new(&bootstrap, &topics);
    block(|| reader.until(LONG, "30 enriched articles", |r| r.enriched.len() >= 30));
    block(|| wait_all_committed(&bootstrap, &group, &topics, LONG));
    block(|| reader.drain(Duration::from_millis(300)));
    assert_eq!(reader.enriched.len(), 30, "one enriched record per article");
    assert!(reader.dlq.is_empty());
    for (e, _) in &reader.enriched {
        assert_eq!(e.pipeline_version, Pipeline::ACCURATE_VERSION);
        assert!(
            !e.warnings.iter().any(|w| w == "accurate_model_failed"),
            "{:?}",
            e.warnings
        );
    }
    service.shutdown();
    let summary = service.wait().await.unwrap();
    assert_eq!(summary.consumed, 30);
    assert_eq!(summary.enriched, 30);
    assert_eq!(summary.uncommitted_at_exit, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn accurate_mode_without_base_weights_fails_at_start_up() {
    let cluster = Cluster::mock();
    let topics = cluster.topics(1).await;
    let mut config = cluster.config(&topics, &unique("acc-missing"));
    config.nlp.mode = NlpMode::Accurate;
    let empty = tempfile::tempdir().unwrap();
    config.nlp.accurate.base_dir = empty.path().to_path_buf();
    let err = match Service::new(config).start().await {
        Ok(_) => panic!("accurate mode started without its base weights"),
        Err(e) => e.to_string(),
    };
    assert!(
        err.contains("model.safetensors") && err.contains("scripts/fetch-minilm.sh"),
        "{err}"
    );
}
