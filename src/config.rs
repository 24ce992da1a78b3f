//! Service configuration: what can be set, its defaults, and where values come from.
//!
//! `config/default.toml` is embedded in the binary and documents every key. On top of it go an optional file
//! and then `STANCEWATCH__SECTION__KEY` environment variables (figment does the layering). Every struct denies
//! unknown fields and [`Config::validate`] checks ranges, so a typo or a bad value stops the service at start-up
//! with the key's name instead of being silently ignored in production. librdkafka properties are the one
//! exception: `[kafka.consumer]` and `[kafka.producer]` pass through untouched, since librdkafka validates them
//! itself when the clients are created.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use figment::providers::{Format, Toml};
use figment::Figment;
use serde::{Deserialize, Deserializer, Serialize};

/// The embedded defaults, also shipped as `config/default.toml`.
pub const DEFAULT_TOML: &str = include_str!("../config/default.toml");

/// Prefix of environment variables that override settings; `__` separates nesting levels.
pub const ENV_PREFIX: &str = "STANCEWATCH__";

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("configuration file {0} does not exist; pass an existing file to --config or leave it out to use the defaults")]
    MissingFile(String),
    #[error("invalid configuration: {0}")]
    Invalid(String),
    #[error("invalid configuration: `{key}` {problem}")]
    BadValue { key: &'static str, problem: String },
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub kafka: KafkaConfig,
    pub processing: ProcessingConfig,
    pub output: OutputConfig,
    pub nlp: NlpConfig,
    pub metrics: MetricsConfig,
    pub http: HttpConfig,
    pub log: LogConfig,
    pub traces: TracesConfig,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KafkaConfig {
    pub brokers: String,
    pub group_id: String,
    pub input_topic: String,
    pub enriched_topic: String,
    pub entity_stances_topic: String,
    pub dlq_topic: String,
    pub statistics_interval_ms: u64,
    #[serde(default, deserialize_with = "librdkafka_properties")]
    pub consumer: BTreeMap<String, String>,
    #[serde(default, deserialize_with = "librdkafka_properties")]
    pub producer: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProcessingConfig {
    pub max_in_flight: usize,
    pub max_in_flight_bytes: usize,
    pub workers: usize,
    pub max_article_bytes: usize,
    pub commit_interval_ms: u64,
    pub rebalance_drain_timeout_ms: u64,
    pub shutdown_drain_timeout_ms: u64,
    pub retry_backoff_initial_ms: u64,
    pub retry_backoff_max_ms: u64,
    /// Run the Kafka I/O threads in Linux's `SCHED_BATCH` class, so that they do not preempt the NLP workers.
    pub io_sched_batch: bool,
    /// What to do with a record that can be delivered nowhere, not even to the dead-letter topic.
    pub on_undeliverable: OnUndeliverable,
}

/// What happens to an input record that cannot be delivered anywhere: its outputs were refused and so was its
/// dead-letter record (say, a dead-letter topic whose `max.message.bytes` is smaller than the input's).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OnUndeliverable {
    /// The partition stops at the record: it is paused and never committed past it, an error names it, the
    /// blocked-partitions gauge and `/readyz` say so; the other partitions go on. A restart tries it again.
    Stop,
    /// The record is skipped: an error log line names topic, partition and offset, a counter counts it, and
    /// the offset is committed as handled.
    Skip,
}

/// Bounds on what one article's outputs may hold, so that every article under `max_article_bytes` yields
/// records the output topics accept.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OutputConfig {
    /// Largest enriched record, in bytes of JSON; keep it at most the output topics' `max.message.bytes`.
    pub max_record_bytes: usize,
    /// Entities per enriched record (the most salient are kept).
    pub max_entities: usize,
    /// Mentions listed per entity (the first ones in reading order are kept).
    pub max_mentions_per_entity: usize,
    /// Relations per enriched record.
    pub max_relations: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NlpMode {
    Fast,
    /// Mention stance from the fine-tuned transformer (`nlp.accurate`); needs the base weights.
    Accurate,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NlpConfig {
    pub mode: NlpMode,
    pub knowledge_base_files: Vec<std::path::PathBuf>,
    pub accurate: AccurateConfig,
}

/// Settings of accurate mode, read only when `nlp.mode = "accurate"`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccurateConfig {
    /// Directory of the base weights (`model.safetensors`, `tokenizer.json`, `config.json`), as
    /// `scripts/fetch-minilm.sh` leaves them.
    pub base_dir: std::path::PathBuf,
    /// Sentences per forward pass of the transformer.
    pub max_batch: usize,
    /// Transformer readings (forward passes) per article; the other mentions keep the fast model's reading.
    /// 0: all.
    pub max_sentences: usize,
    /// Word pieces per sentence read.
    pub max_tokens: usize,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetricsConfig {
    pub watchlist: Vec<String>,
    pub sources: Vec<String>,
    pub max_sources: usize,
}

impl Default for MetricsConfig {
    fn default() -> Self {
        Self {
            watchlist: Vec::new(),
            sources: Vec::new(),
            max_sources: 50,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpConfig {
    pub listen: SocketAddr,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Human,
    Json,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogConfig {
    pub format: LogFormat,
    pub level: String,
}

/// OpenTelemetry traces of the articles (see [`crate::traces`]). Off while `otlp_endpoint` is empty.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TracesConfig {
    /// Base URL of an OTLP/HTTP receiver (a collector), e.g. `http://otel-collector:4318`; spans go to its
    /// `/v1/traces`. Empty: no spans.
    pub otlp_endpoint: String,
    /// Share of the traces that start here (inputs without a valid `traceparent`) that are recorded, 0 to 1.
    /// Inputs with one follow its sampled flag.
    #[serde(deserialize_with = "ratio")]
    pub sample_ratio: f64,
    /// `service.name` of the spans.
    pub service_name: String,
}

impl TracesConfig {
    pub fn enabled(&self) -> bool {
        !self.otlp_endpoint.trim().is_empty()
    }

    /// Where the spans are posted: the endpoint's `/v1/traces`, unless the endpoint already names it.
    pub fn traces_url(&self) -> String {
        let base = self.otlp_endpoint.trim().trim_end_matches('/');
        if base.ends_with("/v1/traces") {
            base.to_string()
        } else {
            format!("{base}/v1/traces")
        }
    }
}

/// Consumer properties stancewatch owns: changing them would break at-least-once delivery.
const RESERVED_CONSUMER_KEYS: &[&str] = &[
    "bootstrap.servers",
    "group.id",
    "enable.auto.commit",
    "enable.auto.offset.store",
];
/// Producer properties stancewatch owns, for the same reason.
const RESERVED_PRODUCER_KEYS: &[&str] = &["bootstrap.servers", "enable.idempotence", "acks"];

impl Config {
    /// Defaults, then `file` if given, then the process environment.
    pub fn load(file: Option<&Path>) -> Result<Self, ConfigError> {
        Self::load_with_env(file, std::env::vars())
    }

    /// As [`Config::load`], with the environment passed in (tests must not mutate the process environment).
    pub fn load_with_env(
        file: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Self, ConfigError> {
        let mut figment = Figment::from(Toml::string(DEFAULT_TOML));
        if let Some(path) = file {
            if !path.exists() {
                return Err(ConfigError::MissingFile(path.display().to_string()));
            }
            figment = figment.merge(Toml::file_exact(path));
        }
        figment = figment.merge(env_provider(env));
        let config: Config = figment
            .extract()
            .map_err(|e| ConfigError::Invalid(describe(e)))?;
        config.validate()?;
        Ok(config)
    }

    /// The embedded defaults alone.
    pub fn defaults() -> Self {
        Self::load_with_env(None, std::iter::empty())
            .expect("the embedded default configuration is valid")
    }

    /// Range and consistency checks serde cannot express.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let bad = |key, problem: &str| {
            Err(ConfigError::BadValue {
                key,
                problem: problem.to_string(),
            })
        };
        let k = &self.kafka;
        for (key, value) in [
            ("kafka.brokers", &k.brokers),
            ("kafka.group_id", &k.group_id),
            ("kafka.input_topic", &k.input_topic),
            ("kafka.enriched_topic", &k.enriched_topic),
            ("kafka.entity_stances_topic", &k.entity_stances_topic),
            ("kafka.dlq_topic", &k.dlq_topic),
        ] {
            if value.trim().is_empty() {
                return bad(key, "must not be empty");
            }
        }
        let a = &self.nlp.accurate;
        if a.max_batch == 0 {
            return bad("nlp.accurate.max_batch", "must be at least 1");
        }
        if !(8..=512).contains(&a.max_tokens) {
            return bad("nlp.accurate.max_tokens", "must be between 8 and 512");
        }
        let outputs = [&k.enriched_topic, &k.entity_stances_topic, &k.dlq_topic];
        if outputs.contains(&&k.input_topic) {
            return bad(
                "kafka.input_topic",
                "must differ from the output topics, or outputs would be consumed again",
            );
        }
        if let Some(key) = k
            .consumer
            .keys()
            .find(|key| RESERVED_CONSUMER_KEYS.contains(&key.as_str()))
        {
            return Err(ConfigError::BadValue {
                key: "kafka.consumer",
                problem: format!(
                    "must not set `{key}`: stancewatch manages it (see config/default.toml)"
                ),
            });
        }
        if let Some(key) = k
            .producer
            .keys()
            .find(|key| RESERVED_PRODUCER_KEYS.contains(&key.as_str()))
        {
            return Err(ConfigError::BadValue {
                key: "kafka.producer",
                problem: format!(
                    "must not set `{key}`: stancewatch manages it (see config/default.toml)"
                ),
            });
        }
        let o = &self.output;
        if o.max_entities == 0 || o.max_mentions_per_entity == 0 {
            return bad(
                "output.max_entities",
                "and output.max_mentions_per_entity must be at least 1",
            );
        }
        if o.max_record_bytes < MIN_OUTPUT_RECORD_BYTES {
            return Err(ConfigError::BadValue {
                key: "output.max_record_bytes",
                problem: format!(
                    "must be at least {MIN_OUTPUT_RECORD_BYTES} (an article's metadata must fit)"
                ),
            });
        }
        if let Some(key) = k
            .producer
            .keys()
            .find(|key| key.as_str() == "message.max.bytes")
        {
            return Err(ConfigError::BadValue {
                key: "kafka.producer",
                problem: format!(
                    "must not set `{key}`: stancewatch derives it from what the consumer can fetch, so that \
                     any input can be dead-lettered (raise kafka.consumer \"receive.message.max.bytes\" to \
                     raise both)"
                ),
            });
        }
        self.kafka_limits()?;
        let p = &self.processing;
        if p.max_in_flight == 0 {
            return bad("processing.max_in_flight", "must be at least 1");
        }
        if p.max_in_flight_bytes == 0 {
            return bad("processing.max_in_flight_bytes", "must be at least 1");
        }
        if p.max_article_bytes == 0 {
            return bad("processing.max_article_bytes", "must be at least 1");
        }
        if p.commit_interval_ms == 0 {
            return bad("processing.commit_interval_ms", "must be at least 1");
        }
        if p.retry_backoff_initial_ms == 0 || p.retry_backoff_initial_ms > p.retry_backoff_max_ms {
            return bad(
                "processing.retry_backoff_initial_ms",
                "must be at least 1 and at most processing.retry_backoff_max_ms",
            );
        }
        let t = &self.traces;
        if !(0.0..=1.0).contains(&t.sample_ratio) {
            return bad("traces.sample_ratio", "must be between 0 and 1 (e.g. 0.1)");
        }
        if t.enabled() {
            let endpoint = t.otlp_endpoint.trim();
            let host = endpoint
                .get(..7)
                .filter(|scheme| scheme.eq_ignore_ascii_case("http://"))
                .map(|_| &endpoint[7..]);
            if host.is_none_or(|h| h.is_empty() || h.starts_with('/')) {
                return bad(
                    "traces.otlp_endpoint",
                    "must be empty (no traces) or the http:// URL of an OTLP/HTTP receiver, e.g. \
                     \"http://otel-collector:4318\" (https is not supported: send to a collector in the \
                     cluster, which can forward over TLS)",
                );
            }
            if t.service_name.trim().is_empty() {
                return bad("traces.service_name", "must not be empty");
            }
        }
        if self
            .log
            .level
            .parse::<tracing_subscriber::EnvFilter>()
            .is_err()
        {
            return bad(
                "log.level",
                "is not a valid tracing filter (try \"info\" or \"stancewatch=debug,info\")",
            );
        }
        Ok(())
    }

    /// Worker threads for NLP, resolving 0 to the number of cores.
    pub fn workers(&self) -> usize {
        let cores = || {
            std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1)
        };
        match (self.processing.workers, self.nlp.mode) {
            (0, NlpMode::Fast) => cores(),
            // In accurate mode a worker spends most of its time waiting for the transformer's batch; more of
            // them make bigger batches, which the transformer reads faster per sentence.
            (0, NlpMode::Accurate) => 4 * cores(),
            (n, _) => n,
        }
    }
}

/// Byte limits the Kafka clients are given, derived from the configuration (see [`Config::kafka_limits`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KafkaLimits {
    /// The largest input record the consumer can be handed (librdkafka's `receive.message.max.bytes`, less
    /// the fetch response's own framing).
    pub largest_input: usize,
    /// The producer's `message.max.bytes`: the largest input plus room for the dead-letter headers, so that
    /// any record the consumer can fetch can also be dead-lettered.
    pub producer_message_max_bytes: usize,
}

/// Room for the headers a dead-letter record adds (reason, message, source topic, partition, offset).
pub const DLQ_HEADER_ALLOWANCE: usize = 64 * 1024;
/// librdkafka's default `receive.message.max.bytes`.
const DEFAULT_RECEIVE_MESSAGE_MAX_BYTES: usize = 100_000_000;
/// librdkafka's fetch response framing beyond the records (its own check uses 512).
const FETCH_RESPONSE_OVERHEAD: usize = 512;
/// librdkafka's largest `message.max.bytes`.
const LIBRDKAFKA_MAX_MESSAGE_BYTES: usize = 1_000_000_000;
/// Smallest `output.max_record_bytes`: room for an article's metadata and a few entities.
const MIN_OUTPUT_RECORD_BYTES: usize = 16 * 1024;

impl Config {
    /// The byte limits of the Kafka clients, checked against each other: an article of `max_article_bytes`
    /// must be fetchable, and the producer must be able to carry, to the dead-letter topic, any record the
    /// consumer can fetch. The error says which setting to change.
    pub fn kafka_limits(&self) -> Result<KafkaLimits, ConfigError> {
        let receive = match self.kafka.consumer.get("receive.message.max.bytes") {
            None => DEFAULT_RECEIVE_MESSAGE_MAX_BYTES,
            Some(v) => v.trim().parse().map_err(|_| ConfigError::BadValue {
                key: "kafka.consumer",
                problem: format!(
                    "`receive.message.max.bytes` must be a number of bytes, not {v:?} (e.g. \"100000000\")"
                ),
            })?,
        };
        let largest_input = receive.saturating_sub(FETCH_RESPONSE_OVERHEAD);
        let article = self
            .processing
            .max_article_bytes
            .saturating_add(crate::article::ENVELOPE_ALLOWANCE);
        if article > largest_input {
            return Err(ConfigError::BadValue {
                key: "processing.max_article_bytes",
                problem: format!(
                    "is {} bytes, but the consumer cannot fetch records over {largest_input} bytes \
                     (kafka.consumer \"receive.message.max.bytes\" = {receive}); lower max_article_bytes or \
                     raise receive.message.max.bytes to at least {}",
                    self.processing.max_article_bytes,
                    article + FETCH_RESPONSE_OVERHEAD
                ),
            });
        }
        let producer_message_max_bytes = largest_input.saturating_add(DLQ_HEADER_ALLOWANCE);
        if producer_message_max_bytes > LIBRDKAFKA_MAX_MESSAGE_BYTES {
            return Err(ConfigError::BadValue {
                key: "kafka.consumer",
                problem: format!(
                    "\"receive.message.max.bytes\" = {receive} lets the consumer fetch records the producer \
                     could not dead-letter (librdkafka's largest message.max.bytes is \
                     {LIBRDKAFKA_MAX_MESSAGE_BYTES}); set it to at most {}",
                    LIBRDKAFKA_MAX_MESSAGE_BYTES - DLQ_HEADER_ALLOWANCE + FETCH_RESPONSE_OVERHEAD
                ),
            });
        }
        if self.output.max_record_bytes > producer_message_max_bytes {
            return Err(ConfigError::BadValue {
                key: "output.max_record_bytes",
                problem: format!(
                    "must be at most the producer's message.max.bytes, {producer_message_max_bytes}"
                ),
            });
        }
        Ok(KafkaLimits {
            largest_input,
            producer_message_max_bytes,
        })
    }
}

impl ProcessingConfig {
    pub fn commit_interval(&self) -> Duration {
        Duration::from_millis(self.commit_interval_ms)
    }
    pub fn rebalance_drain_timeout(&self) -> Duration {
        Duration::from_millis(self.rebalance_drain_timeout_ms)
    }
    pub fn shutdown_drain_timeout(&self) -> Duration {
        Duration::from_millis(self.shutdown_drain_timeout_ms)
    }
}

/// The environment variables that override settings, as a figment provider whose metadata renders a key path
/// back into the variable's name, so that an error names the variable the user set.
///
/// `__` separates nesting levels and names are case-insensitive. Inside the librdkafka tables
/// (`kafka.consumer`, `kafka.producer`) a property may be spelt with underscores, which bash accepts in a
/// variable name, or with its own dots: `STANCEWATCH__KAFKA__CONSUMER__SESSION_TIMEOUT_MS` and
/// `STANCEWATCH__KAFKA__CONSUMER__SESSION.TIMEOUT.MS` both set `session.timeout.ms` (librdkafka has no
/// property with an underscore in its name). figment's own `Env` provider would split on those dots, so the
/// variables are collected here.
struct EnvVars(toml::Table);

fn env_provider(env: impl IntoIterator<Item = (String, String)>) -> EnvVars {
    let mut root = toml::Table::new();
    for (name, value) in env {
        let Some(path) = name.strip_prefix(ENV_PREFIX) else {
            continue;
        };
        let mut keys: Vec<String> = path.split("__").map(|k| k.to_ascii_lowercase()).collect();
        if keys.iter().any(String::is_empty) {
            continue;
        }
        // librdkafka properties are strings to librdkafka: a password like "00123" must arrive verbatim.
        let passthrough = keys.len() > 2
            && keys[0] == "kafka"
            && (keys[1] == "consumer" || keys[1] == "producer");
        let value = if passthrough {
            let property = keys[2..].join(".").replace('_', ".");
            keys.truncate(2);
            keys.push(property);
            toml::Value::String(value)
        } else {
            env_value(&value)
        };
        insert_path(&mut root, &keys, value);
    }
    EnvVars(root)
}

/// The name figment gives the environment in errors' metadata.
const ENV_SOURCE: &str = "environment variable";

impl figment::Provider for EnvVars {
    fn metadata(&self) -> figment::Metadata {
        figment::Metadata::named(ENV_SOURCE).interpolater(|_, keys| {
            let upper: Vec<String> = keys.iter().map(|k| k.to_ascii_uppercase()).collect();
            format!("{ENV_PREFIX}{}", upper.join("__"))
        })
    }

    fn data(
        &self,
    ) -> Result<figment::value::Map<figment::Profile, figment::value::Dict>, figment::Error> {
        figment::providers::Serialized::defaults(&self.0).data()
    }
}

fn insert_path(table: &mut toml::Table, keys: &[String], value: toml::Value) {
    let (last, parents) = keys.split_last().expect("at least one key");
    if parents.is_empty() {
        table.insert(last.clone(), value);
        return;
    }
    let entry = table
        .entry(parents[0].clone())
        .or_insert_with(|| toml::Value::Table(toml::Table::new()));
    if let toml::Value::Table(child) = entry {
        let mut rest = parents[1..].to_vec();
        rest.push(last.clone());
        insert_path(child, &rest, value);
    }
}

/// Environment values are strings; numbers, booleans and TOML arrays (`["Q159","Putin"]`) are read as such so
/// that `STANCEWATCH__PROCESSING__MAX_IN_FLIGHT=512` fills a number field.
fn env_value(raw: &str) -> toml::Value {
    let trimmed = raw.trim();
    if let Ok(v) = trimmed.parse::<i64>() {
        return toml::Value::Integer(v);
    }
    if let Ok(v) = trimmed.parse::<bool>() {
        return toml::Value::Boolean(v);
    }
    if trimmed.starts_with('[') {
        if let Ok(table) = format!("v = {trimmed}").parse::<toml::Table>() {
            if let Some(v) = table.get("v") {
                return v.clone();
            }
        }
    }
    toml::Value::String(raw.to_string())
}

/// A number from 0 to 1, written as a number or, from an environment variable, as a string
/// (`STANCEWATCH__TRACES__SAMPLE_RATIO=0.1`, which the environment reader leaves a string).
fn ratio<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
    struct Ratio;
    impl serde::de::Visitor<'_> for Ratio {
        type Value = f64;
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("a number between 0 and 1")
        }
        fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<f64, E> {
            Ok(v)
        }
        fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<f64, E> {
            Ok(v as f64)
        }
        fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<f64, E> {
            Ok(v as f64)
        }
        fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<f64, E> {
            v.trim()
                .parse()
                .map_err(|_| E::invalid_type(serde::de::Unexpected::Str(v), &self))
        }
    }
    d.deserialize_any(Ratio)
}

/// librdkafka takes every property as a string; TOML authors naturally write `linger.ms = 5`.
fn librdkafka_properties<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<BTreeMap<String, String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Scalar {
        S(String),
        I(i64),
        F(f64),
        B(bool),
    }
    let raw = BTreeMap::<String, Scalar>::deserialize(d)?;
    Ok(raw
        .into_iter()
        .map(|(k, v)| {
            let v = match v {
                Scalar::S(s) => s,
                Scalar::I(i) => i.to_string(),
                Scalar::F(f) => f.to_string(),
                Scalar::B(b) => b.to_string(),
            };
            (k, v)
        })
        .collect())
}

/// One line per problem, each naming the exact key (and the environment variable or file that set it), what
/// is expected there, and an example taken from the defaults.
fn describe(err: figment::Error) -> String {
    err.into_iter()
        .map(|e| describe_one(&e))
        .collect::<Vec<_>>()
        .join("; ")
}

fn describe_one(e: &figment::Error) -> String {
    use figment::error::Kind;
    let mut path: Vec<String> = e.path.clone();
    // figment puts an unknown field's name at the end of the path already, or not, depending on the source.
    if let Kind::UnknownField(field, _) = &e.kind {
        if path.last() != Some(field) {
            path.push(field.clone());
        }
    }
    let key = path.join(".");
    let source = e.metadata.as_ref().map(|m| {
        if m.name == ENV_SOURCE {
            format!(
                "environment variable {}",
                m.interpolate(&figment::Profile::Default, &path)
            )
        } else {
            match &m.source {
                Some(figment::Source::File(f)) => format!("file {}", f.display()),
                _ => m.name.to_string(),
            }
        }
    });
    let from = source.map(|s| format!(" (set by {s})")).unwrap_or_default();
    match &e.kind {
        Kind::UnknownField(field, expected) => {
            let hint = closest(field, expected)
                .map(|c| format!("; did you mean `{}`?", replace_last(&key, c)))
                .unwrap_or_default();
            format!("unknown key `{key}`{from}{hint} (config/default.toml lists every key)")
        }
        Kind::InvalidType(actual, expected) => format!(
            "`{key}`{from} must be {}, not {actual}{}",
            plain_type(expected),
            example(&path)
        ),
        Kind::MissingField(field) => {
            format!(
                "`{key}.{field}` is missing{}",
                example(&[&path[..], &[field.to_string()]].concat())
            )
        }
        other => format!("`{key}`{from}: {other}{}", example(&path)),
    }
}

/// What a Rust type name that serde reports as expected means to someone writing a configuration.
fn plain_type(expected: &str) -> &str {
    match expected {
        "usize" | "u64" | "u32" | "u16" | "u8" => "a whole number (0 or more)",
        "i64" | "i32" => "a whole number",
        "f64" | "f32" => "a number",
        "bool" => "true or false",
        "a string" | "string" | "str" => "a string",
        other => other,
    }
}

/// The most similar of `candidates`, if one is close enough to be a likely typo.
fn closest<'a>(word: &str, candidates: &[&'a str]) -> Option<&'a str> {
    candidates
        .iter()
        .map(|c| (edit_distance(word, c), *c))
        .filter(|(d, c)| *d <= 2.max(c.len() / 3))
        .min()
        .map(|(_, c)| c)
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let here = row[j + 1];
            row[j + 1] = (prev + usize::from(ca != *cb))
                .min(row[j] + 1)
                .min(here + 1);
            prev = here;
        }
    }
    row[b.len()]
}

fn replace_last(key: &str, last: &str) -> String {
    match key.rsplit_once('.') {
        Some((parent, _)) => format!("{parent}.{last}"),
        None => last.to_string(),
    }
}

/// "; for example ..." with the key's default value, written as a file and as an environment variable would.
fn example(path: &[String]) -> String {
    let Ok(defaults) = DEFAULT_TOML.parse::<toml::Table>() else {
        return String::new();
    };
    let mut value = None;
    let mut table = Some(&defaults);
    for k in path {
        value = table.and_then(|t| t.get(k));
        table = value.and_then(toml::Value::as_table);
    }
    let (Some(value), Some((last, parents))) = (value, path.split_last()) else {
        return String::new();
    };
    if value.is_table() {
        return String::new();
    }
    let env_value = match value {
        toml::Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    let var: Vec<String> = path.iter().map(|k| k.to_ascii_uppercase()).collect();
    format!(
        "; for example `{last} = {value}` under [{}] in the file, or {ENV_PREFIX}{}={}",
        parents.join("."),
        var.join("__"),
        shell_quote(&env_value)
    )
}

fn shell_quote(s: &str) -> String {
    if s.chars()
        .all(|c| c.is_ascii_alphanumeric() || "-_.:/,".contains(c))
    {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', "'\\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn embedded_defaults_load() {
        let c = Config::defaults();
        assert_eq!(c.kafka.input_topic, "articles");
        assert_eq!(c.kafka.dlq_topic, "articles.dlq");
        assert_eq!(c.processing.max_article_bytes, 1 << 20);
        assert_eq!(
            c.kafka
                .consumer
                .get("auto.offset.reset")
                .map(String::as_str),
            Some("earliest")
        );
        assert_eq!(
            c.kafka.producer.get("linger.ms").map(String::as_str),
            Some("5")
        );
    }

    #[test]
    fn file_then_env_override_in_order() {
        let mut f = tempfile::NamedTempFile::new().unwrap();
        writeln!(f, "[kafka]\nbrokers = \"file:9092\"\ngroup_id = \"from-file\"\n[kafka.consumer]\n\"fetch.max.bytes\" = 1000000").unwrap();
        let c = Config::load_with_env(
            Some(f.path()),
            env(&[
                ("STANCEWATCH__KAFKA__BROKERS", "env:9092"),
                ("STANCEWATCH__PROCESSING__MAX_IN_FLIGHT", "17"),
                ("STANCEWATCH__KAFKA__CONSUMER__SESSION.TIMEOUT.MS", "6000"),
                ("STANCEWATCH__METRICS__WATCHLIST", "[\"Q159\", \"Putin\"]"),
                ("UNRELATED", "x"),
            ]),
        )
        .unwrap();
        assert_eq!(c.kafka.brokers, "env:9092");
        assert_eq!(c.kafka.group_id, "from-file");
        assert_eq!(c.processing.max_in_flight, 17);
        assert_eq!(c.kafka.consumer["session.timeout.ms"], "6000");
        assert_eq!(c.kafka.consumer["fetch.max.bytes"], "1000000");
        // The file's table merges with the defaults' rather than replacing it.
        assert_eq!(c.kafka.consumer["auto.offset.reset"], "earliest");
        assert_eq!(c.metrics.watchlist, vec!["Q159", "Putin"]);
    }

    #[test]
    fn librdkafka_values_from_the_environment_stay_verbatim() {
        let c = Config::load_with_env(
            None,
            env(&[
                ("STANCEWATCH__KAFKA__PRODUCER__SASL.PASSWORD", "00123"),
                ("STANCEWATCH__KAFKA__CONSUMER__SASL.PASSWORD", "[1, 2]"),
                (
                    "STANCEWATCH__KAFKA__CONSUMER__ENABLE.PARTITION.EOF",
                    "false",
                ),
            ]),
        )
        .unwrap();
        assert_eq!(c.kafka.producer["sasl.password"], "00123");
        assert_eq!(c.kafka.consumer["sasl.password"], "[1, 2]");
        assert_eq!(c.kafka.consumer["enable.partition.eof"], "false");
    }

    #[test]
    fn unknown_key_is_named() {
        let err =
            Config::load_with_env(None, env(&[("STANCEWATCH__PROCESSING__MAX_INFLIGHT", "3")]))
                .unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("processing.max_inflight"), "{msg}");
    }

    #[test]
    fn unknown_key_in_file_is_named() {
        let mut f = tempfile::NamedTempFile::new().unwrap();
        writeln!(f, "[http]\nlisten = \"127.0.0.1:1\"\nport = 3").unwrap();
        let msg = Config::load_with_env(Some(f.path()), env(&[]))
            .unwrap_err()
            .to_string();
        assert!(msg.contains("http.port"), "{msg}");
    }

    #[test]
    fn bad_values_are_named() {
        let cases = [
            (
                "STANCEWATCH__PROCESSING__MAX_IN_FLIGHT",
                "lots",
                "max_in_flight",
            ),
            (
                "STANCEWATCH__PROCESSING__MAX_IN_FLIGHT",
                "0",
                "processing.max_in_flight",
            ),
            ("STANCEWATCH__HTTP__LISTEN", "not-an-address", "http.listen"),
            ("STANCEWATCH__LOG__FORMAT", "xml", "log.format"),
            ("STANCEWATCH__NLP__MODE", "psychic", "nlp.mode"),
            (
                "STANCEWATCH__KAFKA__INPUT_TOPIC",
                "articles.dlq",
                "kafka.input_topic",
            ),
            (
                "STANCEWATCH__KAFKA__CONSUMER__ENABLE.AUTO.COMMIT",
                "true",
                "enable.auto.commit",
            ),
            ("STANCEWATCH__KAFKA__PRODUCER__ACKS", "1", "acks"),
        ];
        for (key, value, expect) in cases {
            let err = Config::load_with_env(None, env(&[(key, value)])).expect_err(key);
            let msg = err.to_string();
            assert!(msg.contains(expect), "{key}={value}: {msg}");
        }
    }

    #[test]
    fn librdkafka_properties_take_a_spelling_bash_accepts() {
        let c = Config::load_with_env(
            None,
            env(&[
                ("STANCEWATCH__KAFKA__CONSUMER__SESSION_TIMEOUT_MS", "30000"),
                ("STANCEWATCH__KAFKA__PRODUCER__COMPRESSION_TYPE", "zstd"),
                ("STANCEWATCH__KAFKA__CONSUMER__SASL.USERNAME", "svc"),
            ]),
        )
        .unwrap();
        assert_eq!(c.kafka.consumer["session.timeout.ms"], "30000");
        assert_eq!(c.kafka.producer["compression.type"], "zstd");
        assert_eq!(c.kafka.consumer["sasl.username"], "svc");
    }

    #[test]
    fn errors_name_the_variable_the_key_and_what_to_write() {
        let msg = |pairs: &[(&str, &str)]| {
            Config::load_with_env(None, env(pairs))
                .unwrap_err()
                .to_string()
        };
        assert_eq!(
            msg(&[("STANCEWATCH__PROCESSING__MAX_INFLIGHT", "3")]),
            "invalid configuration: unknown key `processing.max_inflight` (set by environment variable \
             STANCEWATCH__PROCESSING__MAX_INFLIGHT); did you mean `processing.max_in_flight`? \
             (config/default.toml lists every key)"
        );
        assert_eq!(
            msg(&[("STANCEWATCH__PROCESSING__MAX_IN_FLIGHT", "lots")]),
            "invalid configuration: `processing.max_in_flight` (set by environment variable \
             STANCEWATCH__PROCESSING__MAX_IN_FLIGHT) must be a whole number (0 or more), not string \"lots\"; \
             for example `max_in_flight = 256` under [processing] in the file, or \
             STANCEWATCH__PROCESSING__MAX_IN_FLIGHT=256"
        );
        let m = msg(&[("STANCEWATCH__PROCESINGG__WORKERS", "2")]);
        assert!(
            m.contains("unknown key `procesingg`") && !m.contains("procesingg.procesingg"),
            "{m}"
        );
        for m in [m, msg(&[("STANCEWATCH__NLP__MODE", "psychic")])] {
            assert!(
                !m.contains("toml::") && !m.contains("alloc::"),
                "no internal type names: {m}"
            );
        }
    }

    #[test]
    fn file_errors_name_the_file() {
        let mut f = tempfile::NamedTempFile::new().unwrap();
        writeln!(f, "[output]\nmax_entites = 3").unwrap();
        let msg = Config::load_with_env(Some(f.path()), env(&[]))
            .unwrap_err()
            .to_string();
        assert!(
            msg.contains(&format!("set by file {}", f.path().display())),
            "{msg}"
        );
        assert!(msg.contains("did you mean `output.max_entities`?"), "{msg}");
    }

    #[test]
    fn size_limits_line_up_or_the_error_says_which_to_change() {
        let limits = Config::defaults().kafka_limits().unwrap();
        assert_eq!(limits.largest_input, 100_000_000 - 512);
        assert_eq!(
            limits.producer_message_max_bytes,
            limits.largest_input + DLQ_HEADER_ALLOWANCE
        );
        let c = Config::load_with_env(
            None,
            env(&[(
                "STANCEWATCH__KAFKA__CONSUMER__RECEIVE_MESSAGE_MAX_BYTES",
                "2000000",
            )]),
        )
        .unwrap();
        assert_eq!(
            c.kafka_limits().unwrap().producer_message_max_bytes,
            2_000_000 - 512 + DLQ_HEADER_ALLOWANCE
        );
        let err = Config::load_with_env(
            None,
            env(&[
                (
                    "STANCEWATCH__KAFKA__CONSUMER__RECEIVE_MESSAGE_MAX_BYTES",
                    "1000000",
                ),
                ("STANCEWATCH__PROCESSING__MAX_ARTICLE_BYTES", "2000000"),
            ]),
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("processing.max_article_bytes")
                && err.contains("receive.message.max.bytes"),
            "{err}"
        );
        let err = Config::load_with_env(
            None,
            env(&[("STANCEWATCH__KAFKA__PRODUCER__MESSAGE_MAX_BYTES", "5000000")]),
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("message.max.bytes") && err.contains("derives it"),
            "{err}"
        );
    }

    #[test]
    fn traces_are_off_by_default_and_set_from_the_environment() {
        let c = Config::defaults();
        assert!(!c.traces.enabled());
        assert_eq!(c.traces.sample_ratio, 1.0);
        let c = Config::load_with_env(
            None,
            env(&[
                (
                    "STANCEWATCH__TRACES__OTLP_ENDPOINT",
                    "http://otel-collector:4318/",
                ),
                ("STANCEWATCH__TRACES__SAMPLE_RATIO", "0.25"),
                ("STANCEWATCH__TRACES__SERVICE_NAME", "stancewatch-eu"),
            ]),
        )
        .unwrap();
        assert!(c.traces.enabled());
        assert_eq!(
            c.traces.traces_url(),
            "http://otel-collector:4318/v1/traces"
        );
        assert_eq!(c.traces.sample_ratio, 0.25);
        assert_eq!(c.traces.service_name, "stancewatch-eu");
        let whole = Config::load_with_env(None, env(&[("STANCEWATCH__TRACES__SAMPLE_RATIO", "0")]));
        assert_eq!(whole.unwrap().traces.sample_ratio, 0.0);
        let named = Config::load_with_env(
            None,
            env(&[(
                "STANCEWATCH__TRACES__OTLP_ENDPOINT",
                "http://c:4318/v1/traces",
            )]),
        );
        assert_eq!(
            named.unwrap().traces.traces_url(),
            "http://c:4318/v1/traces"
        );
        for (key, value, expect) in [
            (
                "STANCEWATCH__TRACES__SAMPLE_RATIO",
                "1.5",
                "between 0 and 1",
            ),
            (
                "STANCEWATCH__TRACES__SAMPLE_RATIO",
                "often",
                "a number between 0 and 1",
            ),
            (
                "STANCEWATCH__TRACES__OTLP_ENDPOINT",
                "https://c:4318",
                "https is not supported",
            ),
            (
                "STANCEWATCH__TRACES__OTLP_ENDPOINT",
                "otel-collector:4318",
                "http:// URL",
            ),
        ] {
            let msg = Config::load_with_env(None, env(&[(key, value)]))
                .expect_err(value)
                .to_string();
            assert!(msg.contains(expect), "{key}={value}: {msg}");
        }
    }

    #[test]
    fn missing_file_says_what_to_do() {
        let msg = Config::load_with_env(Some(Path::new("/nonexistent/sw.toml")), env(&[]))
            .unwrap_err()
            .to_string();
        assert!(
            msg.contains("/nonexistent/sw.toml") && msg.contains("--config"),
            "{msg}"
        );
    }
}
