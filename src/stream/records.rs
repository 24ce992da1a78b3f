//! From one consumed record to the records that are produced for it.
//!
//! An input ends as exactly one of two things: an enriched article plus its entity-stance records, or one
//! dead-letter record. Both carry the input's headers (so `traceparent` and any producer metadata survive) and
//! its timestamp; with tracing on, [`set_trace_headers`] then points their `traceparent` at the span that
//! produces them. The dead-letter record is the input itself, byte for byte with its key, plus headers that say
//! what went wrong and where the input came from, so an operator can fix and replay it.

use std::sync::Arc;

use crate::article::{RejectReason, Rejection};
use crate::config::OutputConfig;
use crate::enriched::{EnrichedArticle, SCHEMA_VERSION};
use crate::metrics::events::RecordAt;
use crate::traces::TraceHeaders;

use super::sink::OutRecord;

/// DLQ header: the machine-readable reason ([`RejectReason::as_str`]).
pub const HEADER_ERROR_CLASS: &str = "stancewatch.error.class";
/// DLQ header: the human-readable reason.
pub const HEADER_ERROR_MESSAGE: &str = "stancewatch.error.message";
pub const HEADER_SOURCE_TOPIC: &str = "stancewatch.source.topic";
pub const HEADER_SOURCE_PARTITION: &str = "stancewatch.source.partition";
pub const HEADER_SOURCE_OFFSET: &str = "stancewatch.source.offset";
/// On enriched and entity-stance records: the input's Kafka key, when it was not the article id that now keys
/// the output. An input without a key (a null key) gets this header with a null value, so that a consumer can
/// tell "no key" from "the key was the id" (no header).
pub const HEADER_SOURCE_KEY: &str = "stancewatch.source.key";
pub const HEADER_SCHEMA_VERSION: &str = "stancewatch.schema_version";

/// One consumed record, owned, as the processing task needs it.
#[derive(Debug, Clone)]
pub struct InputRecord {
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
    pub key: Option<Vec<u8>>,
    pub payload: Option<Vec<u8>>,
    pub headers: Vec<(String, Option<Vec<u8>>)>,
    /// Kafka timestamp in milliseconds since the epoch, when the record has one.
    pub timestamp: Option<i64>,
}

impl InputRecord {
    /// Where it came from, for log lines.
    pub fn at(&self) -> RecordAt<'_> {
        RecordAt {
            topic: &self.topic,
            partition: self.partition,
            offset: self.offset,
        }
    }
}

/// Topic names the outputs go to.
#[derive(Debug, Clone)]
pub struct OutputTopics {
    pub enriched: Arc<str>,
    pub entity_stances: Arc<str>,
    pub dlq: Arc<str>,
}

impl OutputTopics {
    /// The output topics a configuration names.
    pub fn of(kafka: &crate::config::KafkaConfig) -> Self {
        Self {
            enriched: kafka.enriched_topic.as_str().into(),
            entity_stances: kafka.entity_stances_topic.as_str().into(),
            dlq: kafka.dlq_topic.as_str().into(),
        }
    }
}

/// The enriched record and the entity-stance records of one article, within the output limits (see
/// [`EnrichedArticle::to_bounded_json`]): every record is built before any is sent, so an article whose
/// output cannot be made to fit is dead-lettered whole rather than half produced.
pub(crate) fn enriched_records(
    input: &InputRecord,
    enriched: &mut EnrichedArticle,
    topics: &OutputTopics,
    limits: &OutputConfig,
) -> Result<Vec<OutRecord>, Rejection> {
    let mut headers = input.headers.clone();
    headers.push((
        HEADER_SCHEMA_VERSION.to_string(),
        Some(SCHEMA_VERSION.to_string().into_bytes()),
    ));
    match &input.key {
        Some(k) if k.as_slice() == enriched.id.as_bytes() => {}
        key => headers.push((HEADER_SOURCE_KEY.to_string(), key.clone())),
    }
    let headers: Arc<[_]> = headers.into();
    let payload = enriched.to_bounded_json(limits)?;
    let mut out = Vec::with_capacity(1 + enriched.entities.len());
    out.push(OutRecord {
        topic: topics.enriched.clone(),
        key: Some(enriched.id.clone().into_bytes()),
        payload: Some(payload),
        headers: headers.clone(),
        timestamp: input.timestamp,
    });
    for stance in enriched.entity_stances() {
        out.push(OutRecord {
            topic: topics.entity_stances.clone(),
            key: Some(stance.entity_id.clone().into_bytes()),
            payload: Some(serde_json::to_vec(&stance).map_err(output_rejected)?),
            headers: headers.clone(),
            timestamp: input.timestamp,
        });
    }
    Ok(out)
}

/// The dead-letter record of an input that could not be enriched.
pub(crate) fn dlq_record(
    input: &InputRecord,
    rejection: &Rejection,
    topics: &OutputTopics,
) -> OutRecord {
    let mut headers = input.headers.clone();
    let mut add = |k: &str, v: String| headers.push((k.to_string(), Some(v.into_bytes())));
    add(HEADER_ERROR_CLASS, rejection.reason.as_str().to_string());
    add(HEADER_ERROR_MESSAGE, truncate(&rejection.message, 1000));
    add(HEADER_SOURCE_TOPIC, input.topic.clone());
    add(HEADER_SOURCE_PARTITION, input.partition.to_string());
    add(HEADER_SOURCE_OFFSET, input.offset.to_string());
    OutRecord {
        topic: topics.dlq.clone(),
        key: input.key.clone(),
        // A tombstone (null value) stays null: the dead-letter record is the input as it was.
        payload: input.payload.clone(),
        headers: headers.into(),
        timestamp: input.timestamp,
    }
}

/// Puts the trace context of the span producing `records` in place of the input's (see
/// [`TraceHeaders::apply_to`]). Records that shared their headers still share them.
pub(crate) fn set_trace_headers(records: &mut [OutRecord], trace: &TraceHeaders) {
    type Shared = Arc<[(String, Option<Vec<u8>>)]>;
    let mut last: Option<(Shared, Shared)> = None;
    for r in records {
        if let Some((old, new)) = &last {
            if Arc::ptr_eq(old, &r.headers) {
                r.headers = new.clone();
                continue;
            }
        }
        let mut headers = r.headers.to_vec();
        trace.apply_to(&mut headers);
        let new: Shared = headers.into();
        let old = std::mem::replace(&mut r.headers, new.clone());
        last = Some((old, new));
    }
}

/// A rejection for output the brokers refused outright (e.g. larger than the topic's `max.message.bytes`).
pub(crate) fn output_rejected(error: impl std::fmt::Display) -> Rejection {
    Rejection::new(
        RejectReason::OutputRejected,
        format!("the enriched output could not be produced: {error}"),
    )
}

fn truncate(s: &str, max_chars: usize) -> String {
    match s.char_indices().nth(max_chars) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input() -> InputRecord {
        InputRecord {
            topic: "articles".into(),
            partition: 3,
            offset: 42,
            key: Some(b"k-1".to_vec()),
            payload: Some(b"{not json".to_vec()),
            headers: vec![
                ("traceparent".into(), Some(b"00-abc-def-01".to_vec())),
                ("empty".into(), None),
            ],
            timestamp: Some(1_700_000_000_000),
        }
    }

    fn topics() -> OutputTopics {
        OutputTopics {
            enriched: "e".into(),
            entity_stances: "s".into(),
            dlq: "d".into(),
        }
    }

    #[test]
    fn dlq_record_keeps_the_original_and_says_why() {
        let r = dlq_record(
            &input(),
            &Rejection::new(RejectReason::InvalidJson, "bad"),
            &topics(),
        );
        assert_eq!(&*r.topic, "d");
        assert_eq!(r.payload.as_deref(), Some(&b"{not json"[..]));
        assert_eq!(r.key.as_deref(), Some(&b"k-1"[..]));
        assert_eq!(r.timestamp, Some(1_700_000_000_000));
        let h = |k: &str| {
            r.headers
                .iter()
                .find(|(n, _)| n == k)
                .and_then(|(_, v)| v.clone())
        };
        assert_eq!(h("traceparent").as_deref(), Some(&b"00-abc-def-01"[..]));
        assert!(r.headers.iter().any(|(n, v)| n == "empty" && v.is_none()));
        assert_eq!(h(HEADER_ERROR_CLASS).as_deref(), Some(&b"invalid_json"[..]));
        assert_eq!(h(HEADER_SOURCE_OFFSET).as_deref(), Some(&b"42"[..]));
        assert_eq!(h(HEADER_SOURCE_PARTITION).as_deref(), Some(&b"3"[..]));
        assert_eq!(h(HEADER_SOURCE_TOPIC).as_deref(), Some(&b"articles"[..]));
    }

    #[test]
    fn tombstones_stay_null_in_the_dead_letter_topic() {
        let tombstone = InputRecord {
            payload: None,
            key: None,
            ..input()
        };
        let r = dlq_record(
            &tombstone,
            &Rejection::new(RejectReason::MissingField, "no value"),
            &topics(),
        );
        assert_eq!(r.payload, None);
        assert_eq!(r.key, None);
    }

    #[test]
    fn the_source_key_header_tells_null_keys_from_ids() {
        let json =
            br#"{"id":"a-1","body":"Angela Merkel met Emmanuel Macron in Paris on Monday."}"#;
        let enrich = || {
            let article = crate::article::Article::parse(json, Default::default()).unwrap();
            crate::analyze::enrich(&crate::nlp::Pipeline::new(), article).unwrap()
        };
        let limits = crate::config::Config::defaults().output;
        let header = |key: Option<&[u8]>| {
            let record = InputRecord {
                key: key.map(<[u8]>::to_vec),
                payload: Some(json.to_vec()),
                ..input()
            };
            let out = enriched_records(&record, &mut enrich(), &topics(), &limits).unwrap();
            out[0]
                .headers
                .iter()
                .find(|(k, _)| k == HEADER_SOURCE_KEY)
                .map(|(_, v)| v.clone())
        };
        assert_eq!(header(Some(b"a-1")), None, "the key was the id: no header");
        assert_eq!(
            header(None),
            Some(None),
            "a null key: a header with a null value"
        );
        assert_eq!(header(Some(b"other")), Some(Some(b"other".to_vec())));
    }

    fn trace_header(records: &[OutRecord], name: &str) -> Vec<Option<Vec<u8>>> {
        records
            .iter()
            .map(|r| {
                r.headers
                    .iter()
                    .find(|(k, _)| k == name)
                    .and_then(|(_, v)| v.clone())
            })
            .collect()
    }

    fn enriched_input() -> (InputRecord, Vec<OutRecord>) {
        let json =
            br#"{"id":"a-1","body":"Angela Merkel met Emmanuel Macron in Paris on Monday."}"#;
        let article = crate::article::Article::parse(json, Default::default()).unwrap();
        let mut enriched = crate::analyze::enrich(&crate::nlp::Pipeline::new(), article).unwrap();
        let record = InputRecord {
            payload: Some(json.to_vec()),
            headers: vec![
                ("traceparent".into(), Some(b"00-abc-def-01".to_vec())),
                ("tracestate".into(), Some(b"k=v".to_vec())),
                ("other".into(), Some(b"x".to_vec())),
            ],
            ..input()
        };
        let limits = crate::config::Config::defaults().output;
        let out = enriched_records(&record, &mut enriched, &topics(), &limits).unwrap();
        assert!(
            out.len() > 1,
            "an enriched record and entity-stance records"
        );
        (record, out)
    }

    #[test]
    fn without_tracing_the_inputs_trace_context_is_copied_unchanged() {
        // With tracing off the service sends the records as built here, untouched by set_trace_headers.
        let (_, out) = enriched_input();
        for (name, value) in [
            ("traceparent", &b"00-abc-def-01"[..]),
            ("tracestate", b"k=v"),
        ] {
            assert!(
                trace_header(&out, name)
                    .iter()
                    .all(|v| v.as_deref() == Some(value)),
                "{name}"
            );
        }
    }

    #[test]
    fn trace_headers_name_the_send_span_on_every_record() {
        let (_, mut out) = enriched_input();
        let tp = "00-0af7651916cd43dd8448eb211c80319c-00f067aa0ba902b7-01";
        set_trace_headers(
            &mut out,
            &TraceHeaders(vec![
                ("traceparent".into(), tp.into()),
                ("tracestate".into(), "k=v".into()),
            ]),
        );
        assert!(trace_header(&out, "traceparent")
            .iter()
            .all(|v| v.as_deref() == Some(tp.as_bytes())));
        assert!(trace_header(&out, "other")
            .iter()
            .all(|v| v.as_deref() == Some(&b"x"[..])));
        assert!(
            out.iter().all(|r| Arc::ptr_eq(&r.headers, &out[0].headers)),
            "the records still share one set of headers"
        );
    }

    #[test]
    fn long_messages_are_truncated_on_a_char_boundary() {
        let s = "é".repeat(2000);
        let t = truncate(&s, 1000);
        assert_eq!(t.chars().count(), 1001);
    }
}
