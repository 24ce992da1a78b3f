//! The input contract: what an article on the `articles` topic is, and why one can be rejected.
//!
//! Parsing is strict about the two fields the pipeline cannot work without (`id` and `body`) and lenient about
//! everything else: unknown fields are kept verbatim in [`Article::extra`] and carried through to the enriched
//! output, because producers in a media-monitoring platform routinely add fields (feed id, section, tags) that
//! downstream consumers need. Every rejection is a [`Rejection`] with a stable machine-readable
//! [`RejectReason`], which becomes the DLQ header and the metric label.

use serde_json::{Map, Value};

/// A news article as received.
#[derive(Debug, Clone, PartialEq)]
pub struct Article {
    pub id: String,
    pub body: String,
    pub title: Option<String>,
    pub url: Option<String>,
    pub source: Option<String>,
    /// BCP-47 tag as declared by the producer.
    pub language: Option<String>,
    /// RFC 3339 as sent; kept as text so that an unparseable date is reported, not lost.
    pub published_at: Option<String>,
    /// Every other top-level field, untouched.
    pub extra: Map<String, Value>,
}

/// Why an input record cannot become an enriched article. The `as_str` names are part of the DLQ contract
/// (header `stancewatch.error.class`) and of the metrics (`reason` label): do not rename them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RejectReason {
    InvalidUtf8,
    InvalidJson,
    NotAnObject,
    MissingField,
    EmptyField,
    WrongType,
    TooLarge,
    NlpPanic,
    /// The enriched output was refused by the brokers (e.g. larger than the topic accepts).
    OutputRejected,
    /// The record has no value at all (a Kafka tombstone): there is no article to read.
    Tombstone,
}

impl RejectReason {
    pub const ALL: [RejectReason; 10] = [
        Self::InvalidUtf8,
        Self::InvalidJson,
        Self::NotAnObject,
        Self::MissingField,
        Self::EmptyField,
        Self::WrongType,
        Self::TooLarge,
        Self::NlpPanic,
        Self::OutputRejected,
        Self::Tombstone,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::InvalidUtf8 => "invalid_utf8",
            Self::InvalidJson => "invalid_json",
            Self::NotAnObject => "not_an_object",
            Self::MissingField => "missing_field",
            Self::EmptyField => "empty_field",
            Self::WrongType => "wrong_type",
            Self::TooLarge => "too_large",
            Self::NlpPanic => "nlp_panic",
            Self::OutputRejected => "output_rejected",
            Self::Tombstone => "tombstone",
        }
    }
}

/// A rejected input: the class and a human-readable message for logs and the DLQ.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}: {message}", reason.as_str())]
pub struct Rejection {
    pub reason: RejectReason,
    pub message: String,
}

impl Rejection {
    pub fn new(reason: RejectReason, message: impl Into<String>) -> Self {
        Self {
            reason,
            message: message.into(),
        }
    }
}

/// Room for an article's other fields (title, url, extra fields) and JSON escapes beyond its body: a record
/// longer than `max_body_bytes` plus this is rejected as too large before it is parsed.
pub const ENVELOPE_ALLOWANCE: usize = 64 * 1024;

/// Limits applied while parsing.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Largest accepted `body`, in bytes of UTF-8.
    pub max_body_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_body_bytes: 1 << 20,
        }
    }
}

impl Article {
    /// Parses one record's payload. A missing payload (a Kafka tombstone) is rejected like an empty document.
    pub fn parse(payload: &[u8], limits: Limits) -> Result<Self, Rejection> {
        let text = std::str::from_utf8(payload).map_err(|e| {
            Rejection::new(
                RejectReason::InvalidUtf8,
                format!("payload is not UTF-8 at byte {}", e.valid_up_to()),
            )
        })?;
        // A whole record far over the body limit is rejected before building a JSON tree for it: bodies are the
        // bulk of an article, and the tree would cost several times the payload in memory.
        if text.len() > limits.max_body_bytes.saturating_add(ENVELOPE_ALLOWANCE) {
            return Err(Rejection::new(
                RejectReason::TooLarge,
                format!(
                    "record is {} bytes; the body limit is {} bytes",
                    text.len(),
                    limits.max_body_bytes
                ),
            ));
        }
        let value: Value = serde_json::from_str(text)
            .map_err(|e| Rejection::new(RejectReason::InvalidJson, format!("invalid JSON: {e}")))?;
        Self::from_value(value, limits)
    }

    /// Validates an already-parsed JSON value (the offline `process` command reads JSON itself).
    pub fn from_value(value: Value, limits: Limits) -> Result<Self, Rejection> {
        let Value::Object(mut map) = value else {
            return Err(Rejection::new(
                RejectReason::NotAnObject,
                "an article must be a JSON object",
            ));
        };
        let id = required_string(&mut map, "id")?;
        let body = required_string(&mut map, "body")?;
        if body.len() > limits.max_body_bytes {
            return Err(Rejection::new(
                RejectReason::TooLarge,
                format!(
                    "body is {} bytes; the limit is {} bytes",
                    body.len(),
                    limits.max_body_bytes
                ),
            ));
        }
        Ok(Article {
            id,
            body,
            title: optional_string(&mut map, "title")?,
            url: optional_string(&mut map, "url")?,
            source: optional_string(&mut map, "source")?,
            language: optional_string(&mut map, "language")?,
            published_at: optional_string(&mut map, "published_at")?,
            extra: map,
        })
    }

    /// `published_at` as a point in time, when it is valid RFC 3339.
    pub fn published_at_parsed(&self) -> Option<chrono::DateTime<chrono::FixedOffset>> {
        self.published_at
            .as_deref()
            .and_then(|s| chrono::DateTime::parse_from_rfc3339(s).ok())
    }
}

fn required_string(map: &mut Map<String, Value>, field: &'static str) -> Result<String, Rejection> {
    match map.remove(field) {
        None | Some(Value::Null) => Err(Rejection::new(
            RejectReason::MissingField,
            format!("required field `{field}` is missing"),
        )),
        Some(Value::String(s)) if s.trim().is_empty() => Err(Rejection::new(
            RejectReason::EmptyField,
            format!("required field `{field}` is empty"),
        )),
        Some(Value::String(s)) => Ok(s),
        Some(other) => Err(Rejection::new(
            RejectReason::WrongType,
            format!(
                "field `{field}` must be a string, not {}",
                json_type(&other)
            ),
        )),
    }
}

fn optional_string(
    map: &mut Map<String, Value>,
    field: &'static str,
) -> Result<Option<String>, Rejection> {
    match map.remove(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(other) => Err(Rejection::new(
            RejectReason::WrongType,
            format!(
                "field `{field}` must be a string, not {}",
                json_type(&other)
            ),
        )),
    }
}

fn json_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<Article, Rejection> {
        Article::parse(s.as_bytes(), Limits::default())
    }

    #[test]
    fn keeps_known_and_unknown_fields() {
        let a = parse(r#"{"id":"a1","body":"Text.","title":"T","language":"en","published_at":"2026-03-01T10:00:00Z","feed":{"n":1},"tags":["x"]}"#).unwrap();
        assert_eq!(a.id, "a1");
        assert_eq!(a.title.as_deref(), Some("T"));
        assert_eq!(a.extra["feed"]["n"], 1);
        assert_eq!(a.extra["tags"][0], "x");
        assert!(!a.extra.contains_key("id"));
        assert!(a.published_at_parsed().is_some());
    }

    #[test]
    fn every_rejection_has_its_reason() {
        let cases: [(&[u8], RejectReason); 9] = [
            (b"\xff\xfe{}", RejectReason::InvalidUtf8),
            (b"{\"id\":", RejectReason::InvalidJson),
            (b"", RejectReason::InvalidJson),
            (b"[1,2]", RejectReason::NotAnObject),
            (b"{\"body\":\"x\"}", RejectReason::MissingField),
            (b"{\"id\":\"a\",\"body\":null}", RejectReason::MissingField),
            (b"{\"id\":\" \",\"body\":\"x\"}", RejectReason::EmptyField),
            (b"{\"id\":7,\"body\":\"x\"}", RejectReason::WrongType),
            (
                b"{\"id\":\"a\",\"body\":\"x\",\"title\":[]}",
                RejectReason::WrongType,
            ),
        ];
        for (input, reason) in cases {
            let err = Article::parse(input, Limits::default())
                .expect_err(&String::from_utf8_lossy(input));
            assert_eq!(
                err.reason,
                reason,
                "{:?}: {}",
                String::from_utf8_lossy(input),
                err
            );
        }
    }

    #[test]
    fn body_limit_is_enforced_in_bytes() {
        let limits = Limits { max_body_bytes: 10 };
        // Five two-byte characters: exactly at the limit.
        assert!(Article::parse("{\"id\":\"a\",\"body\":\"ééééé\"}".as_bytes(), limits).is_ok());
        let err =
            Article::parse("{\"id\":\"a\",\"body\":\"éééééé\"}".as_bytes(), limits).unwrap_err();
        assert_eq!(err.reason, RejectReason::TooLarge);
        // Far over the limit: rejected before parsing.
        let huge = format!("{{\"id\":\"a\",\"body\":\"{}\"}}", "x".repeat(200_000));
        assert_eq!(
            Article::parse(huge.as_bytes(), limits).unwrap_err().reason,
            RejectReason::TooLarge
        );
    }

    #[test]
    fn deeply_nested_json_is_an_error_not_a_crash() {
        let nested = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
        assert_eq!(
            parse(&nested).unwrap_err().reason,
            RejectReason::InvalidJson
        );
    }
}
