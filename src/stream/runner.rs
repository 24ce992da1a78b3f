//! The service loop: consume, process concurrently, produce, commit, rebalance, shut down.
//!
//! One dedicated OS thread owns the consumer. It polls, hands each record to the NLP worker threads, applies
//! backpressure, and commits; every librdkafka callback (rebalance, commit, stats) runs on it, inside `poll`.
//! Keeping the consumer off the async reactor lets the rebalance barrier block while it waits for in-flight
//! work, without stalling the threads that are finishing that work.
//!
//! An article's path (see [`process`]): one of the `workers` NLP threads ([`NlpWorkers`], so polling and
//! heartbeats never wait for a CPU-bound article) parses it, runs the pipeline, serialises the outputs and
//! hands them to the idempotent producer without waiting. When librdkafka has acknowledged every record, its
//! polling thread marks the offset done in the [`OffsetTracker`]; the consumer thread commits the done prefix
//! of each partition every `commit_interval`. Only the exceptions go through the tokio runtime: retrying
//! outputs the producer gave up on, and dead-lettering rejected articles. The common case thus wakes no task,
//! which matters on small machines, where every wake-up preempts an NLP thread.
//!
//! Backpressure: when `max_in_flight` offsets are consumed but not yet committed, or the articles being
//! processed hold `max_in_flight_bytes` of input, the loop stops taking records until commits release slots
//! and finished articles release their bytes. Briefly it just holds (does not poll); if the limit lasts, it
//! pauses the assigned partitions and polls on, so the group session and rebalances are still served (see
//! [`consumer_loop`] for why both). The byte bound is what keeps memory flat when articles are large.
//!
//! Shutdown: stop taking records, pause, wait for in-flight work up to the drain deadline, commit
//! synchronously, then close the consumer (which revokes without waiting again).

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::{BorrowedMessage, Headers, Message};
use rdkafka::{Offset, TopicPartitionList};
use tokio::sync::watch;
use tracing::{debug, error, info, warn};

use super::context::{ConsumerCtx, ProducerCtx, Shared};
use super::offsets::{Lag, OffsetTracker};
use super::records::{
    dlq_record, enriched_records, output_rejected, set_trace_headers, InputRecord, OutputTopics,
};
use super::replay::{RangeEnds, ReplayPlan};
use super::sched::{self, on_batch_thread};
use super::sink::{
    retry_failed, send_all, send_and_wait, Backoff, DeliveryError, Failures, OutRecord,
    OutputProducer,
};
use super::workers::NlpWorkers;
use crate::analyze::{enrich, load_pipeline_for, Analyze};
use crate::article::{Article, Limits, RejectReason, Rejection};
use crate::config::{Config, KafkaLimits, OnUndeliverable, OutputConfig};
use crate::enriched::EnrichedArticle;
use crate::http::{self, Health};
use crate::metrics::events::{
    ArticleHandled, ArticleRejected, Backpressure, BlockedPartitions, ConsumerLagSeconds,
    DeliveryAbandoned, ProducerFailed, RecordConsumed, RecordRedelivered, RecordUndeliverable,
    StageTimed, UndeliverableAction,
};
use crate::metrics::{EntityTally, Metrics, Outcome, Stage};
use crate::traces::{ArticleTrace, Traces};

/// How long one `poll` may block; bounds how quickly the loop notices shutdown and due commits.
const POLL_INTERVAL: Duration = Duration::from_millis(100);

/// How long the loop holds at the in-flight limit, not polling, before it pauses the partitions. See
/// [`consumer_loop`] for why pausing is kept for long stalls only.
const HOLD_BEFORE_PAUSE: Duration = Duration::from_secs(1);
/// While holding, commit whatever is committable this often rather than every `commit_interval`: the
/// commit is what frees the slots the loop is waiting for.
const HOLD_COMMIT_INTERVAL: Duration = Duration::from_millis(10);
/// While holding, how long the loop sleeps between looks at the limits.
const HOLD_NAP: Duration = Duration::from_millis(5);
/// How often the lag in seconds is worked out again. An age grows with the clock, not with events, so it is
/// refreshed on a timer: once a second is finer than any scrape interval and costs one pass over the
/// assigned partitions.
const LAG_SECONDS_INTERVAL: Duration = Duration::from_secs(1);

#[derive(Debug, thiserror::Error)]
pub enum StreamError {
    // The fields are not named `source`: thiserror would make them the error's source, and a chain printed
    // with its causes would repeat librdkafka's message.
    #[error("could not create the Kafka {client}: {error}; check the [kafka.{client}] properties in the configuration (or their STANCEWATCH__KAFKA__{}__ environment variables)", client.to_uppercase())]
    Client {
        client: &'static str,
        error: rdkafka::error::KafkaError,
    },
    #[error("could not subscribe to topic {topic}: {error}")]
    Subscribe {
        topic: String,
        error: rdkafka::error::KafkaError,
    },
    #[error("could not take the partitions of topic {topic} at the replay's offsets: {error}")]
    Assign {
        topic: String,
        error: rdkafka::error::KafkaError,
    },
    #[error("could not serve HTTP on {addr}: {error}; is another process using the port? Set http.listen")]
    Http {
        addr: SocketAddr,
        error: std::io::Error,
    },
    #[error("the Kafka producer failed fatally ({0}); the service stopped without committing unacknowledged work and will resume from the last commit when restarted")]
    ProducerFatal(String),
    #[error("could not start the NLP worker threads: {0}")]
    Workers(std::io::Error),
    #[error("the consumer thread panicked; uncommitted work will be redelivered on restart")]
    ConsumerPanicked,
    #[error(transparent)]
    Pipeline(#[from] crate::analyze::LoadError),
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    #[error(transparent)]
    Traces(#[from] crate::traces::TracesError),
}

/// Counts reported when the service stops.
#[derive(Debug, Clone, Default)]
pub struct RunSummary {
    pub consumed: u64,
    pub enriched: u64,
    pub dead_lettered: u64,
    pub elapsed: Duration,
    /// Consumed articles whose offsets were not committed when the service stopped (they will be redelivered).
    pub uncommitted_at_exit: usize,
    /// A replay stopped by itself: every partition reached the end of its range (or is blocked).
    pub range_complete: bool,
    /// Partitions stopped at an undeliverable record (`on_undeliverable = "stop"`), and the offset of each.
    pub blocked: Vec<(i32, i64)>,
}

/// A configured service, not yet started.
pub struct Service {
    config: Config,
    /// None: the pipeline the configuration describes, built at start-up.
    analyzer: Option<Arc<dyn Analyze>>,
    metrics: Arc<Metrics>,
    health: Arc<Health>,
    /// A replay's offsets: assigned rather than subscribed, and the service stops at their end.
    replay: Option<ReplayPlan>,
}

impl Service {
    pub fn new(config: Config) -> Self {
        let metrics = Arc::new(Metrics::new(&config.metrics));
        Self {
            config,
            analyzer: None,
            metrics,
            health: Arc::new(Health::default()),
            replay: None,
        }
    }

    /// Makes the service a replay of `plan` (see [`super::replay`]): it takes the planned partitions at the
    /// planned offsets instead of joining the consumer group, and stops once every range is processed.
    pub fn with_replay(mut self, plan: ReplayPlan) -> Self {
        self.replay = Some(plan);
        self
    }

    /// Replaces the NLP pipeline (tests use this to inject failures).
    pub fn with_analyzer(mut self, analyzer: Arc<dyn Analyze>) -> Self {
        self.analyzer = Some(analyzer);
        self
    }

    pub fn metrics(&self) -> Arc<Metrics> {
        self.metrics.clone()
    }

    /// Starts the HTTP endpoints and the consumer; returns once both are running. Must be called inside a
    /// multi-threaded tokio runtime.
    pub async fn start(self) -> Result<RunningService, StreamError> {
        let Service {
            config,
            analyzer,
            metrics,
            health,
            replay,
        } = self;
        let analyzer: Arc<dyn Analyze> = match analyzer {
            Some(a) => a,
            None => Arc::new(load_pipeline_for(&config.nlp)?),
        };
        info!(
            mode = ?config.nlp.mode,
            pipeline_version = analyzer.version(),
            "NLP pipeline loaded"
        );
        let k = &config.kafka;
        let traces = Traces::start(
            &config.traces,
            &k.group_id,
            tokio::runtime::Handle::current(),
        )?;
        let shared = Arc::new(Shared {
            tracker: OffsetTracker::new(),
            metrics: metrics.clone(),
            health: health.clone(),
            input_topic: k.input_topic.clone(),
            rebalance_drain_timeout: config.processing.rebalance_drain_timeout(),
            aborted: AtomicBool::new(false),
            closing: AtomicBool::new(false),
        });

        let kafka_limits = config.kafka_limits()?;
        // Created on a SCHED_BATCH thread, so that librdkafka's threads do not preempt the NLP workers (see
        // [`sched`]).
        let io_sched_batch = config.processing.io_sched_batch;
        let create_clients = || {
            let producer: OutputProducer = producer_config(&config, kafka_limits)
                .create_with_context(ProducerCtx {
                    shared: shared.clone(),
                })
                .map_err(|error| StreamError::Client {
                    client: "producer",
                    error,
                })?;
            let mut consumer_config = consumer_config(&config);
            if replay.is_some() {
                // How a replay learns that a partition has nothing more in its range (see `replay`).
                consumer_config.set("enable.partition.eof", "true");
            }
            let consumer: BaseConsumer<ConsumerCtx> = consumer_config
                .create_with_context(ConsumerCtx {
                    shared: shared.clone(),
                })
                .map_err(|error| StreamError::Client {
                    client: "consumer",
                    error,
                })?;
            Ok::<_, StreamError>((producer, consumer))
        };
        let (producer, consumer) = if io_sched_batch {
            on_batch_thread(create_clients)?
        } else {
            create_clients()?
        };
        let range_ends = match &replay {
            None => {
                consumer
                    .subscribe(&[&k.input_topic])
                    .map_err(|error| StreamError::Subscribe {
                        topic: k.input_topic.clone(),
                        error,
                    })?;
                None
            }
            Some(plan) => {
                let assignment = plan.assignment();
                let mut tpl = TopicPartitionList::new();
                for &(partition, position) in &assignment {
                    tpl.add_partition_offset(&k.input_topic, partition, Offset::Offset(position))
                        .map_err(|error| StreamError::Assign {
                            topic: k.input_topic.clone(),
                            error,
                        })?;
                }
                consumer.assign(&tpl).map_err(|error| StreamError::Assign {
                    topic: k.input_topic.clone(),
                    error,
                })?;
                // No rebalance callback announces a manual assignment: the tracker is told here.
                let partitions: Vec<i32> = assignment.iter().map(|&(p, _)| p).collect();
                shared.partitions_assigned(&partitions);
                Some(plan.ends())
            }
        };
        // Only now serve: a librdkafka property the clients refused has already stopped the start-up.
        let (http_stop_tx, mut http_stop_rx) = watch::channel(false);
        let http_stop = async move {
            let _ = http_stop_rx.wait_for(|stop| *stop).await;
        };
        let (http_addr, http_task) = http::serve(
            config.http.listen,
            metrics.clone(),
            health.clone(),
            http_stop,
        )
        .await
        .map_err(|error| StreamError::Http {
            addr: config.http.listen,
            error,
        })?;
        info!(%http_addr, "serving /metrics, /healthz and /readyz");

        if replay.is_none() {
            info!(brokers = %k.brokers, group = %k.group_id, topic = %k.input_topic, "subscribed");
        }

        let ctx = Arc::new(TaskCtx {
            shared: shared.clone(),
            analyzer,
            producer,
            topics: OutputTopics::of(k),
            limits: Limits {
                max_body_bytes: config.processing.max_article_bytes,
            },
            output: config.output.clone(),
            on_undeliverable: config.processing.on_undeliverable,
            nlp: NlpWorkers::start(config.workers()).map_err(StreamError::Workers)?,
            backoff: Backoff {
                initial: Duration::from_millis(config.processing.retry_backoff_initial_ms),
                max: Duration::from_millis(config.processing.retry_backoff_max_ms),
            },
            fatal: Mutex::new(None),
            in_flight_bytes: AtomicUsize::new(0),
            runtime: tokio::runtime::Handle::current(),
            traces: traces.clone(),
        });
        let stop = Arc::new(AtomicBool::new(false));
        let (done_tx, done_rx) = tokio::sync::oneshot::channel();
        let loop_ctx = ctx.clone();
        let loop_stop = stop.clone();
        let processing = config.processing.clone();
        std::thread::Builder::new()
            .name("stancewatch-consumer".into())
            .spawn(move || {
                if io_sched_batch {
                    sched::enter_batch_class();
                }
                let started = Instant::now();
                let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    consumer_loop(consumer, &loop_ctx, &loop_stop, &processing, range_ends)
                }));
                let result = match result {
                    Ok(r) => r.map(|mut s| {
                        s.elapsed = started.elapsed();
                        s
                    }),
                    Err(_) => Err(StreamError::ConsumerPanicked),
                };
                // The producer lives in the context: drop this thread's handle on it first, so that once `wait`
                // returns the clients are gone (or going) rather than still talking to the brokers.
                drop(loop_ctx);
                let _ = done_tx.send(result);
            })
            .expect("spawning the consumer thread");

        Ok(RunningService {
            metrics,
            health,
            http_addr,
            stop,
            shared,
            done: done_rx,
            http_stop: http_stop_tx,
            http_task,
            traces,
        })
    }
}

/// A running service: its observability handles and the means to stop it.
pub struct RunningService {
    pub metrics: Arc<Metrics>,
    pub health: Arc<Health>,
    pub http_addr: SocketAddr,
    stop: Arc<AtomicBool>,
    shared: Arc<Shared>,
    done: tokio::sync::oneshot::Receiver<Result<RunSummary, StreamError>>,
    http_stop: watch::Sender<bool>,
    http_task: tokio::task::JoinHandle<()>,
    traces: Option<Arc<Traces>>,
}

impl RunningService {
    /// Graceful stop: finish in-flight work within the drain deadline, commit, close. See [`Self::wait`].
    pub fn shutdown(&self) {
        self.stop.store(true, Ordering::SeqCst);
    }

    /// Hard stop, as a crash would: no draining and no further commits. In-flight work is abandoned and
    /// redelivered to whoever consumes the partitions next.
    pub fn abort(&self) {
        self.shared.aborted.store(true, Ordering::SeqCst);
        self.stop.store(true, Ordering::SeqCst);
    }

    /// A handle that requests the graceful stop of [`Self::shutdown`] while [`Self::wait`] holds the service.
    pub fn stop_handle(&self) -> StopHandle {
        StopHandle(self.stop.clone())
    }

    /// Waits for the consumer loop to end, then stops the HTTP server and flushes the traces.
    pub async fn wait(self) -> Result<RunSummary, StreamError> {
        let result = self
            .done
            .await
            .unwrap_or(Err(StreamError::ConsumerPanicked));
        let _ = self.http_stop.send(true);
        let _ = self.http_task.await;
        if let Some(traces) = &self.traces {
            traces.shutdown().await;
        }
        result
    }
}

/// Requests a graceful stop of a running service; see [`RunningService::stop_handle`].
#[derive(Clone)]
pub struct StopHandle(Arc<AtomicBool>);

impl StopHandle {
    pub fn shutdown(&self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

/// What the processing of every article needs.
struct TaskCtx {
    shared: Arc<Shared>,
    analyzer: Arc<dyn Analyze>,
    producer: OutputProducer,
    topics: OutputTopics,
    limits: Limits,
    output: OutputConfig,
    on_undeliverable: OnUndeliverable,
    nlp: NlpWorkers,
    backoff: Backoff,
    fatal: Mutex<Option<String>>,
    /// Input bytes of the records between `dispatch` and the end of their processing.
    in_flight_bytes: AtomicUsize,
    /// Where retries and dead-lettering run.
    runtime: tokio::runtime::Handle,
    /// None: tracing is off, and no article pays for it beyond this check.
    traces: Option<Arc<Traces>>,
}

/// Holds a record's bytes in [`TaskCtx::in_flight_bytes`] until dropped, whichever way processing ends.
struct BytesHeld {
    ctx: Arc<TaskCtx>,
    bytes: usize,
}

impl BytesHeld {
    fn new(ctx: &Arc<TaskCtx>, bytes: usize) -> Self {
        ctx.in_flight_bytes.fetch_add(bytes, Ordering::SeqCst);
        Self {
            ctx: ctx.clone(),
            bytes,
        }
    }
}

impl Drop for BytesHeld {
    fn drop(&mut self) {
        self.ctx
            .in_flight_bytes
            .fetch_sub(self.bytes, Ordering::SeqCst);
    }
}

fn consumer_config(config: &Config) -> ClientConfig {
    let k = &config.kafka;
    let mut c = ClientConfig::new();
    for (key, value) in &k.consumer {
        c.set(key, value);
    }
    c.set("bootstrap.servers", &k.brokers)
        .set("group.id", &k.group_id)
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set(
            "statistics.interval.ms",
            k.statistics_interval_ms.to_string(),
        );
    c
}

fn producer_config(config: &Config, limits: KafkaLimits) -> ClientConfig {
    let k = &config.kafka;
    let mut c = ClientConfig::new();
    for (key, value) in &k.producer {
        c.set(key, value);
    }
    c.set("bootstrap.servers", &k.brokers)
        .set("enable.idempotence", "true")
        .set("acks", "all")
        .set(
            "message.max.bytes",
            limits.producer_message_max_bytes.to_string(),
        )
        .set(
            "statistics.interval.ms",
            k.statistics_interval_ms.to_string(),
        );
    c
}

/// The consumer thread's loop.
///
/// Backpressure protocol. At the in-flight limit the loop first *holds*: it stops polling (so no new record
/// is taken) and naps, committing every [`HOLD_COMMIT_INTERVAL`], until there is room.
/// Only when the limit persists for [`HOLD_BEFORE_PAUSE`] (the producer is stalled, the brokers are down) are
/// the partitions paused, so that polling can go on and keep the group membership, rebalance callbacks and
/// `max.poll.interval.ms` served through a long stall. Pausing is not the steady-state mechanism because
/// resuming is slow: librdkafka does not wake a broker thread that went idle when all its partitions were
/// paused, so fetching restarts only at that thread's next one-second wake-up. With pause/resume at the
/// limit a backlog drained at about `max_in_flight` articles per second, whatever the cores (the bench
/// showed 256/s at 256, 64/s at 64). A hold delays rebalance callbacks by at most [`HOLD_BEFORE_PAUSE`].
///
/// A replay (`range`) also ends the loop by itself, once every partition is at the end of its range and the
/// records taken are processed; records past a range are not processed and their partition stays paused.
fn consumer_loop(
    consumer: BaseConsumer<ConsumerCtx>,
    ctx: &Arc<TaskCtx>,
    stop: &AtomicBool,
    processing: &crate::config::ProcessingConfig,
    mut range: Option<RangeEnds>,
) -> Result<RunSummary, StreamError> {
    let shared = &ctx.shared;
    let tracker = &shared.tracker;
    let metrics = &shared.metrics;
    let max_in_flight = processing.max_in_flight;
    let max_in_flight_bytes = processing.max_in_flight_bytes;
    let mut last_commit = Instant::now();
    // The pause state last applied, and the assignment epoch it was applied to. librdkafka keeps a partition's
    // pause flag across a revoke and a later assign of the same partition (e.g. after the session was lost in
    // a broker outage), so the wanted state is applied again after every assignment change, resuming
    // included; otherwise a partition paused before the loss would stay paused forever.
    let mut applied: Option<(u64, bool)> = None;

    // Since when the loop has been at the in-flight limit, if it is.
    let mut at_limit_since: Option<Instant> = None;

    let mut last_lag_refresh: Option<Instant> = None;
    let refresh_lag_seconds = |last: &mut Option<Instant>| {
        if last.is_some_and(|t| t.elapsed() < LAG_SECONDS_INTERVAL) {
            return;
        }
        *last = Some(Instant::now());
        let lags: Vec<(i32, Option<f64>)> = tracker
            .lags(chrono::Utc::now().timestamp_millis())
            .into_iter()
            .map(|(p, lag)| match lag {
                Lag::Seconds(s) => (p, Some(s)),
                Lag::Unknown => (p, None),
            })
            .collect();
        metrics.emit(ConsumerLagSeconds {
            topic: &shared.input_topic,
            lags: &lags,
        });
    };

    let commit_due = |last_commit: &mut Instant, holding: bool| {
        let waiting = tracker.done_uncommitted();
        let interval = if holding {
            HOLD_COMMIT_INTERVAL
        } else {
            processing.commit_interval()
        };
        if waiting > 0 && (last_commit.elapsed() >= interval || waiting * 2 >= max_in_flight) {
            let _ = shared.commit(&consumer, &tracker.commit_candidates(None));
            *last_commit = Instant::now();
        }
    };

    let mut range_complete = false;
    while !stop.load(Ordering::SeqCst) {
        shared.health.beat();
        refresh_lag_seconds(&mut last_lag_refresh);
        if ctx
            .fatal
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .is_some()
        {
            break;
        }
        if let Some(range) = &range {
            let blocked: Vec<i32> = tracker.blocked().into_iter().map(|(p, _)| p).collect();
            if range.unfinished().all(|p| blocked.contains(&p)) && tracker.pending(None) == 0 {
                info!("replay: every partition reached the end of its range");
                range_complete = true;
                break;
            }
        }
        // A blocked partition is paused and holds a bounded number of slots: it must not hold the others back.
        let in_flight = tracker.in_flight_flowing();
        let epoch = tracker.assignment_epoch();
        let bytes = ctx.in_flight_bytes.load(Ordering::SeqCst);
        let at_limit = in_flight >= max_in_flight || bytes >= max_in_flight_bytes;
        let since = if at_limit {
            *at_limit_since.get_or_insert_with(Instant::now)
        } else {
            at_limit_since = None;
            Instant::now()
        };
        // Consumption is stopped by backpressure whether the loop holds or has paused the partitions.
        metrics.emit(Backpressure {
            in_flight: tracker.in_flight(),
            bytes,
            at_limit,
        });
        let holding = at_limit && since.elapsed() < HOLD_BEFORE_PAUSE;
        if holding {
            // A fixed nap rather than a wait on the tracker: slots are freed by this thread's own commits,
            // so waking at every completed article (hundreds a second) would only preempt an NLP thread.
            std::thread::sleep(HOLD_NAP);
            commit_due(&mut last_commit, true);
            continue;
        }
        let pause = at_limit;
        if applied != Some((epoch, pause)) {
            let blocked = tracker.blocked();
            let named: Vec<String> = blocked
                .iter()
                .map(|(p, o)| format!("{}/{p}@{o}", shared.input_topic))
                .collect();
            metrics.emit(BlockedPartitions { partitions: &named });
            shared.health.set_blocked(named);
            let mut keep_paused: Vec<i32> = blocked.into_iter().map(|(p, _)| p).collect();
            keep_paused.extend(range.iter().flat_map(RangeEnds::stopped));
            set_paused(&consumer, pause, &keep_paused);
            if applied.is_none_or(|(_, was)| was != pause) {
                debug!(
                    in_flight,
                    bytes, pause, "in-flight limit reached (pause) or room again (resume)"
                );
            }
            applied = Some((epoch, pause));
        }

        match (consumer.poll(POLL_INTERVAL), &mut range) {
            (None, _) => {}
            (Some(Err(KafkaError::PartitionEOF(partition))), Some(range)) => {
                range.partition_eof(partition)
            }
            // rdkafka has already passed this error to ConsumerCtx::error, which counts and logs it.
            (Some(Err(e)), _) => debug!(error = %e, "consume error; librdkafka retries by itself"),
            (Some(Ok(msg)), Some(range)) => {
                if range.past_end(msg.partition(), msg.offset()) {
                    debug!(
                        partition = msg.partition(),
                        offset = msg.offset(),
                        "replay: past the end of the range; partition paused"
                    );
                    // Re-applies the pause states, this partition now among those kept paused.
                    applied = None;
                } else {
                    dispatch(&msg, ctx);
                }
            }
            (Some(Ok(msg)), None) => dispatch(&msg, ctx),
        }
        commit_due(&mut last_commit, false);
    }

    if shared.is_aborted() {
        info!(
            in_flight = tracker.in_flight(),
            "aborted: nothing more is committed"
        );
        return Ok(summary(metrics, tracker, false));
    }

    // Graceful drain. Paused partitions hand out nothing more; a record that still arrives is not tracked, so
    // the commits below never pass it and it is redelivered after the restart.
    set_paused(&consumer, true, &[]);
    let deadline = Instant::now() + processing.shutdown_drain_timeout();
    let pending = tracker.pending(None);
    info!(pending, "stopping: draining in-flight articles");
    while tracker.pending(None) > 0 && Instant::now() < deadline && !shared.is_aborted() {
        shared.health.beat();
        refresh_lag_seconds(&mut last_lag_refresh);
        let _ = consumer.poll(POLL_INTERVAL);
        commit_due(&mut last_commit, false);
    }
    let left = tracker.pending(None);
    if left > 0 {
        warn!(
            left,
            "drain deadline reached; unfinished articles will be redelivered after restart"
        );
    }
    let positions = tracker.commit_candidates(None);
    let _ = shared.commit(&consumer, &positions);
    shared.closing.store(true, Ordering::SeqCst);
    // Read before closing: the final revoke forgets the partitions.
    let summary = summary(metrics, tracker, range_complete);
    drop(consumer); // closes: leaves the group after a final (non-waiting) revoke
    let fatal = ctx.fatal.lock().unwrap_or_else(|p| p.into_inner()).take();
    if let Some(reason) = fatal {
        return Err(StreamError::ProducerFatal(reason));
    }
    info!(committed = ?positions, "stopped cleanly");
    Ok(summary)
}

fn summary(metrics: &Metrics, tracker: &OffsetTracker, range_complete: bool) -> RunSummary {
    RunSummary {
        consumed: metrics.messages_consumed(),
        enriched: metrics.articles(Outcome::Enriched),
        dead_lettered: metrics.articles(Outcome::DeadLettered),
        elapsed: Duration::ZERO,
        uncommitted_at_exit: tracker.in_flight(),
        range_complete,
        blocked: tracker.blocked(),
    }
}

/// Pauses the whole assignment (`all`), or resumes it but for the `blocked` partitions, which stay paused.
fn set_paused(consumer: &BaseConsumer<ConsumerCtx>, all: bool, blocked: &[i32]) {
    let Ok(assignment) = consumer.assignment() else {
        return;
    };
    if assignment.count() == 0 {
        return;
    }
    let (mut pause, mut resume) = (TopicPartitionList::new(), TopicPartitionList::new());
    for e in assignment.elements() {
        let list = if all || blocked.contains(&e.partition()) {
            &mut pause
        } else {
            &mut resume
        };
        list.add_partition(e.topic(), e.partition());
    }
    for (list, paused) in [(&pause, true), (&resume, false)] {
        if list.count() == 0 {
            continue;
        }
        let result = if paused {
            consumer.pause(list)
        } else {
            consumer.resume(list)
        };
        if let Err(e) = result {
            warn!(error = %e, paused, "could not change the pause state of partitions");
        }
    }
}

/// Records the offset and hands the record to the NLP workers.
fn dispatch(msg: &BorrowedMessage<'_>, ctx: &Arc<TaskCtx>) {
    let shared = &ctx.shared;
    let input = InputRecord {
        topic: msg.topic().to_string(),
        partition: msg.partition(),
        offset: msg.offset(),
        key: msg.key().map(<[u8]>::to_vec),
        payload: msg.payload().map(<[u8]>::to_vec),
        headers: msg
            .headers()
            .map(|hs| {
                hs.iter()
                    .map(|h| (h.key.to_string(), h.value.map(<[u8]>::to_vec)))
                    .collect()
            })
            .unwrap_or_default(),
        timestamp: msg.timestamp().to_millis(),
    };
    let generation = match shared
        .tracker
        .track(input.partition, input.offset, input.timestamp)
    {
        Ok(g) => g,
        Err(e) => {
            // Already tracked, so already being processed or done: processing it again would only duplicate.
            shared.metrics.emit(RecordRedelivered {
                at: input.at(),
                error: &e,
            });
            return;
        }
    };
    shared.metrics.emit(RecordConsumed);
    let held = BytesHeld::new(ctx, input.payload.as_ref().map_or(0, Vec::len));
    let task = Task {
        ctx: ctx.clone(),
        input: Arc::new(input),
        generation,
        _held: held,
        received: ctx.traces.as_ref().map(|_| SystemTime::now()),
        trace: None,
    };
    if let Err(lost) = ctx.nlp.submit(move || process(task)) {
        // Only when the workers are gone, i.e. the service is stopping: the offset stays uncommitted.
        error!(%lost, "could not hand the article to an NLP worker; it will be redelivered");
    }
}

/// One consumed article on its way through the service. Dropping it without [`Task::finish`] leaves its
/// offset uncommitted, so that the article is redelivered.
struct Task {
    ctx: Arc<TaskCtx>,
    input: Arc<InputRecord>,
    generation: u64,
    _held: BytesHeld,
    /// When the record was consumed, if it is traced: the consume span starts there, though it is made on
    /// the NLP worker, so that the consumer thread only reads the clock.
    received: Option<SystemTime>,
    /// The article's spans, once [`process`] has started them.
    trace: Option<Box<ArticleTrace>>,
}

/// Everything that happens to one record after it is consumed, starting on an NLP worker thread: parse,
/// analyse, serialise, hand the outputs to the producer. The continuation runs on librdkafka's polling thread
/// when the last output is acknowledged; outputs that failed are retried, and rejected articles
/// dead-lettered, on the tokio runtime.
fn process(mut task: Task) {
    if let (Some(traces), Some(received)) = (&task.ctx.traces, task.received) {
        let input = &task.input;
        task.trace = Some(Box::new(traces.article(
            input.at(),
            &input.headers,
            input.payload.as_ref().map_or(0, Vec::len),
            received,
        )));
    }
    let prepared = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        prepare(&task.ctx, &task.input, task.trace.as_deref_mut())
    }))
    .unwrap_or_else(|_| {
        // `analyze` catches panics of the pipeline itself; this is a panic outside it.
        Err(Rejection::new(
            crate::article::RejectReason::NlpPanic,
            "processing panicked outside the NLP pipeline".to_string(),
        ))
    });
    let produce_started = Instant::now();
    let ctx = task.ctx.clone();
    match prepared {
        Ok((tally, records)) => {
            // Shared with the continuation, which may run before `send_all` returns.
            let records = Arc::new(records);
            let for_retry = records.clone();
            let refs: Vec<&OutRecord> = records.iter().collect();
            send_all(&ctx.producer, &refs, move |failures| {
                let handle = task.ctx.clone();
                if failures.is_empty() {
                    task.delivered(&tally, produce_started);
                } else {
                    let runtime = task.ctx.runtime.clone();
                    runtime.spawn(task.retry(tally, for_retry, failures, produce_started));
                }
                release_on_polling_thread(handle);
            });
        }
        Err(rejection) => {
            ctx.runtime
                .spawn(task.dead_letter(rejection, produce_started));
        }
    }
}

/// Lets go of a handle on the context from librdkafka's polling thread, where delivery continuations run.
/// The context owns the producer, and rdkafka's producer joins its polling thread when it drops: if the
/// service stopped while this article was in flight, this may be the last handle, and dropping it here would
/// have the polling thread join itself. The last handle is dropped on a thread of its own instead.
fn release_on_polling_thread(handle: Arc<TaskCtx>) {
    if let Some(last) = Arc::into_inner(handle) {
        // If the thread cannot start, the closure is dropped here: the context is then leaked rather than
        // dropped on this thread (the process is stopping anyway).
        let last = std::mem::ManuallyDrop::new(last);
        let spawned = std::thread::Builder::new()
            .name("stancewatch-release".into())
            .spawn(move || drop(std::mem::ManuallyDrop::into_inner(last)));
        if let Err(error) = spawned {
            error!(%error, "could not start a thread to close the producer; its client is left open");
        }
    }
}

/// Parse, analyse and serialise, on an NLP worker thread. The enriched article itself (hundreds of small
/// allocations) is freed here, on the thread whose malloc arena holds it: only the serialised records, kept
/// for a retry, and the metrics' tally go on to the producer's polling thread.
fn prepare(
    ctx: &TaskCtx,
    input: &InputRecord,
    trace: Option<&mut ArticleTrace>,
) -> Result<(EntityTally, Vec<OutRecord>), Rejection> {
    let started = trace.is_some().then(SystemTime::now);
    let analysed = analyze(ctx, input);
    if let (Some(trace), Some(started)) = (trace.as_deref(), started) {
        trace.analysed(started, ctx.analyzer.version(), analysed.as_ref());
    }
    let mut enriched = analysed?;
    let mut records = enriched_records(input, &mut enriched, &ctx.topics, &ctx.output)?;
    if let Some(trace) = trace {
        let headers = trace.send(&ctx.topics.enriched, records.len(), None);
        set_trace_headers(&mut records, &headers);
    }
    let tally = ctx
        .shared
        .metrics
        .tally(enriched.source.as_deref(), &enriched.entities);
    Ok((tally, records))
}

impl Task {
    /// The partition is still ours (no rebalance took it since the record was consumed) and no hard stop.
    fn still_ours(&self) -> bool {
        let shared = &self.ctx.shared;
        !shared.is_aborted()
            && shared
                .tracker
                .is_current(self.input.partition, self.generation)
    }

    /// Produces again the records of `sent` that `failures` names, until acknowledged or no longer wanted
    /// (see [`retry_failed`]).
    async fn redeliver(
        &self,
        sent: Vec<&OutRecord>,
        failures: Failures,
    ) -> Result<(), DeliveryError> {
        let ctx = &self.ctx;
        let origin = self.input.at();
        retry_failed(
            &ctx.producer,
            sent,
            failures,
            origin,
            ctx.backoff,
            &ctx.shared.metrics,
            || self.still_ours(),
        )
        .await
    }

    /// Every output of an enriched article is acknowledged.
    fn delivered(self, tally: &EntityTally, produce_started: Instant) {
        self.finish(Outcome::Enriched, None, Some(tally), produce_started);
    }

    /// Produces again the outputs the producer reported as failed.
    async fn retry(
        self,
        tally: EntityTally,
        records: Arc<Vec<OutRecord>>,
        failures: Failures,
        produce_started: Instant,
    ) {
        let result = self.redeliver(records.iter().collect(), failures).await;
        match result {
            Ok(()) => self.delivered(&tally, produce_started),
            Err(DeliveryError::Permanent(e)) => {
                self.dead_letter(output_rejected(e), produce_started).await
            }
            Err(other) => self.give_up(other, produce_started),
        }
    }

    /// Sends the original record to the dead-letter topic with the reason.
    async fn dead_letter(mut self, rejection: Rejection, produce_started: Instant) {
        let ctx = self.ctx.clone();
        ctx.shared.metrics.emit(ArticleRejected {
            at: self.input.at(),
            rejection: &rejection,
        });
        let mut record = dlq_record(&self.input, &rejection, &ctx.topics);
        if let Some(trace) = self.trace.as_mut() {
            let headers = trace.send(&ctx.topics.dlq, 1, Some(rejection.reason.as_str()));
            set_trace_headers(std::slice::from_mut(&mut record), &headers);
        }
        let failures = send_and_wait(&ctx.producer, &[&record]).await;
        let result = self.redeliver(vec![&record], failures).await;
        match result {
            Ok(()) => self.finish(
                Outcome::DeadLettered,
                Some(rejection.reason),
                None,
                produce_started,
            ),
            Err(e) => self.give_up(e, produce_started),
        }
    }

    /// The outputs could not be delivered and never will be by this instance. Abandoned or fatal: the offset
    /// stays uncommitted, so that the article is redelivered (to us after a restart, or to the partition's
    /// next owner). Refused everywhere, the dead-letter topic included: `processing.on_undeliverable` says
    /// whether the partition stops there or the record is skipped; either way an error names it.
    fn give_up(mut self, error: DeliveryError, produce_started: Instant) {
        let ctx = self.ctx.clone();
        if let Some(trace) = self.trace.as_mut() {
            trace.sent(Some(&error.to_string()));
        }
        // Skipped, the article is finished like any other; otherwise its spans end here with the error.
        let skip = matches!(error, DeliveryError::Permanent(_))
            && ctx.on_undeliverable == OnUndeliverable::Skip;
        if !skip {
            if let Some(trace) = self.trace.take() {
                trace.fail(&error.to_string());
            }
        }
        let at = self.input.at();
        let metrics = &ctx.shared.metrics;
        match &error {
            DeliveryError::Fatal(reason) => {
                metrics.emit(ProducerFailed { at, reason });
                *ctx.fatal.lock().unwrap_or_else(|p| p.into_inner()) = Some(reason.clone());
            }
            DeliveryError::Abandoned => metrics.emit(DeliveryAbandoned { at }),
            DeliveryError::Permanent(e) => match ctx.on_undeliverable {
                OnUndeliverable::Stop => {
                    if ctx
                        .shared
                        .tracker
                        .block(at.partition, self.generation, at.offset)
                    {
                        metrics.emit(RecordUndeliverable {
                            at,
                            action: UndeliverableAction::Stop,
                            error: e,
                        });
                    }
                }
                OnUndeliverable::Skip => {
                    metrics.emit(RecordUndeliverable {
                        at,
                        action: UndeliverableAction::Skip,
                        error: e,
                    });
                    self.finish(Outcome::Skipped, None, None, produce_started);
                }
            },
        }
    }

    /// The article's outcome is on the brokers (or given up): count it and mark its offset done.
    fn finish(
        mut self,
        outcome: Outcome,
        reason: Option<RejectReason>,
        tally: Option<&EntityTally>,
        produce_started: Instant,
    ) {
        if let Some(trace) = self.trace.take() {
            trace.finish(outcome.as_str());
        }
        self.ctx.shared.metrics.emit(ArticleHandled {
            outcome,
            reason,
            tally,
            producing: produce_started.elapsed(),
            input_timestamp: self.input.timestamp,
        });
        self.ctx
            .shared
            .tracker
            .complete(self.input.partition, self.generation, self.input.offset);
    }
}

/// Parse and analyse, on an NLP worker thread.
fn analyze(ctx: &TaskCtx, input: &InputRecord) -> Result<EnrichedArticle, Rejection> {
    let metrics = &ctx.shared.metrics;
    let t = Instant::now();
    let article = match input.payload.as_deref() {
        Some(payload) => Article::parse(payload, ctx.limits),
        None => Err(Rejection::new(
            crate::article::RejectReason::Tombstone,
            "the record has no value (a tombstone): there is no article to enrich",
        )),
    };
    metrics.emit(StageTimed {
        stage: Stage::Parse,
        elapsed: t.elapsed(),
    });
    let article = article?;
    let t = Instant::now();
    let enriched = enrich(ctx.analyzer.as_ref(), article);
    metrics.emit(StageTimed {
        stage: Stage::Nlp,
        elapsed: t.elapsed(),
    });
    enriched
}
