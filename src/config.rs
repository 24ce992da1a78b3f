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
    pub nlp: NlpConfig,
    pub metrics: MetricsConfig,
    pub http: HttpConfig,
    pub log: LogConfig,
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

/// `STANCEWATCH__KAFKA__CONSUMER__SESSION.TIMEOUT.MS=45000` → `kafka.consumer."session.timeout.ms"`.
///
/// figment's own `Env` provider would split on the dots inside librdkafka property names, so the variables are
/// collected here and nested by `__` only.
fn env_provider(
    env: impl IntoIterator<Item = (String, String)>,
) -> figment::providers::Serialized<toml::Table> {
    let mut root = toml::Table::new();
    for (name, value) in env {
        let Some(path) = name.strip_prefix(ENV_PREFIX) else {
            continue;
        };
        let keys: Vec<String> = path.split("__").map(|k| k.to_ascii_lowercase()).collect();
        if keys.iter().any(String::is_empty) {
            continue;
        }
        // librdkafka properties are strings to librdkafka: a password like "00123" must arrive verbatim.
        let passthrough = keys.len() > 2
            && keys[0] == "kafka"
            && (keys[1] == "consumer" || keys[1] == "producer");
        let value = if passthrough {
            toml::Value::String(value)
        } else {
            env_value(&value)
        };
        insert_path(&mut root, &keys, value);
    }
    figment::providers::Serialized::defaults(root)
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

/// figment's errors already carry the key path; flatten them into one line per problem.
fn describe(err: figment::Error) -> String {
    err.into_iter()
        .map(|e| {
            let key = e.path.join(".");
            let mut kind = e.kind.to_string();
            if let figment::error::Kind::UnknownField(field, _) = &e.kind {
                let full = if key.is_empty() {
                    field.clone()
                } else {
                    format!("{key}.{field}")
                };
                kind = format!(
                    "unknown key `{full}` (see config/default.toml for the keys that exist)"
                );
            }
            let origin = e
                .metadata
                .as_ref()
                .map(|m| format!(" (from {})", m.name))
                .unwrap_or_default();
            if key.is_empty() || kind.contains(&key) {
                format!("{kind}{origin}")
            } else {
                format!("`{key}`: {kind}{origin}")
            }
        })
        .collect::<Vec<_>>()
        .join("; ")
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
