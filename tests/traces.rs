//! End-to-end test of the OpenTelemetry traces: the service runs against librdkafka's mock cluster and exports
//! its spans to an OTLP/HTTP receiver inside the test (axum on 127.0.0.1, decoding the protobuf requests), and
//! the test checks trace ids and parentage against the `traceparent` headers of what went in and came out:
//! an input with a valid `traceparent` continues its trace, one without (or with a malformed one) starts a new
//! one, an unsampled one stays unsampled, and every output names the span that produced it.

mod common;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::post;
use axum::Router;
use common::*;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use opentelemetry_proto::tonic::common::v1::KeyValue;
use opentelemetry_proto::tonic::trace::v1::span::SpanKind;
use opentelemetry_proto::tonic::trace::v1::status::StatusCode as SpanStatus;
use opentelemetry_proto::tonic::trace::v1::Span;
use prost::Message;
use stancewatch::stream::mock::Publish;
use stancewatch::stream::outputs::OutputRecord;
use stancewatch::stream::Service;

const LONG: Duration = Duration::from_secs(60);

/// A span as received, with the `service.name` of the resource it came under.
#[derive(Clone, Debug)]
struct Received {
    service: String,
    span: Span,
}

type Spans = Arc<Mutex<Vec<Received>>>;

/// An OTLP/HTTP receiver on 127.0.0.1: what it is sent, and its address.
async fn otlp_receiver() -> (SocketAddr, Spans) {
    async fn traces(State(spans): State<Spans>, body: Bytes) -> impl IntoResponse {
        let protobuf = [(header::CONTENT_TYPE, "application/x-protobuf")];
        let Ok(request) = ExportTraceServiceRequest::decode(body) else {
            return (StatusCode::BAD_REQUEST, protobuf, Vec::new());
        };
        let mut spans = spans.lock().unwrap();
        for rs in request.resource_spans {
            let service = rs
                .resource
                .iter()
                .flat_map(|r| &r.attributes)
                .find(|kv| kv.key == "service.name")
                .and_then(text)
                .unwrap_or_default();
            for ss in rs.scope_spans {
                for span in ss.spans {
                    spans.push(Received {
                        service: service.clone(),
                        span,
                    });
                }
            }
        }
        // An empty ExportTraceServiceResponse: everything accepted.
        (StatusCode::OK, protobuf, Vec::new())
    }
    let spans = Spans::default();
    let app = Router::new()
        .route("/v1/traces", post(traces))
        .with_state(spans.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (addr, spans)
}

fn text(kv: &KeyValue) -> Option<String> {
    match kv.value.as_ref()?.value.as_ref()? {
        Value::StringValue(s) => Some(s.clone()),
        Value::IntValue(i) => Some(i.to_string()),
        Value::BoolValue(b) => Some(b.to_string()),
        Value::DoubleValue(d) => Some(d.to_string()),
        _ => None,
    }
}

fn attr(span: &Span, key: &str) -> Option<String> {
    span.attributes
        .iter()
        .find(|kv| kv.key == key)
        .and_then(text)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// (version, trace id, parent id, flags) of a `traceparent` value.
fn parse_traceparent(value: &str) -> (String, String, String, String) {
    let parts: Vec<&str> = value.split('-').collect();
    assert_eq!(parts.len(), 4, "traceparent {value:?}");
    assert_eq!((parts[1].len(), parts[2].len()), (32, 16), "{value:?}");
    (
        parts[0].into(),
        parts[1].into(),
        parts[2].into(),
        parts[3].into(),
    )
}

fn article(id: &str, headers: &[(&str, &str)]) -> Publish {
    let body = serde_json::json!({
        "id": id,
        "title": "Summit",
        "body": "President Emmanuel Macron praised the agreement. Angela Merkel met him in Paris on Monday.",
    });
    Publish {
        key: Some(id.as_bytes().to_vec()),
        payload: Some(serde_json::to_vec(&body).unwrap()),
        headers: headers
            .iter()
            .map(|(k, v)| (k.to_string(), v.as_bytes().to_vec()))
            .collect(),
        timestamp: None,
    }
}

/// The spans of one trace, by name.
fn trace_spans(spans: &[Received], trace_id: &str) -> BTreeMap<String, Received> {
    let mut out = BTreeMap::new();
    for r in spans.iter().filter(|r| hex(&r.span.trace_id) == trace_id) {
        let name = r.span.name.clone();
        assert!(
            out.insert(name.clone(), r.clone()).is_none(),
            "two spans named {name} in trace {trace_id}"
        );
    }
    out
}

/// The consume, analyse and send spans of one article's trace, checked for kind and parentage; the consume
/// span's parent is `parent` (empty: a root).
fn article_spans(
    spans: &[Received],
    trace_id: &str,
    parent: &str,
    input_topic: &str,
    send_topic: &str,
) -> (Span, Span, Span) {
    let by_name = trace_spans(spans, trace_id);
    let names: Vec<&String> = by_name.keys().collect();
    let get = |name: &str| {
        by_name
            .get(name)
            .unwrap_or_else(|| panic!("no span {name} in trace {trace_id}: {names:?}"))
            .clone()
    };
    let consume = get(&format!("process {input_topic}"));
    let analyse = get("analyse");
    let send = get(&format!("send {send_topic}"));
    assert_eq!(by_name.len(), 3, "spans of trace {trace_id}: {names:?}");
    assert_eq!(consume.service, "stancewatch-under-test");
    let (consume, analyse, send) = (consume.span, analyse.span, send.span);
    assert_eq!(consume.kind, SpanKind::Consumer as i32);
    assert_eq!(analyse.kind, SpanKind::Internal as i32);
    assert_eq!(send.kind, SpanKind::Producer as i32);
    assert_eq!(
        hex(&consume.parent_span_id),
        parent,
        "consume span's parent"
    );
    assert_eq!(
        analyse.parent_span_id, consume.span_id,
        "analyse under consume"
    );
    assert_eq!(send.parent_span_id, consume.span_id, "send under consume");
    assert_eq!(attr(&consume, "messaging.system").as_deref(), Some("kafka"));
    assert_eq!(
        attr(&consume, "messaging.destination.name").as_deref(),
        Some(input_topic)
    );
    assert_eq!(
        attr(&send, "messaging.destination.name").as_deref(),
        Some(send_topic)
    );
    for s in [&consume, &analyse, &send] {
        assert!(s.start_time_unix_nano > 0 && s.end_time_unix_nano >= s.start_time_unix_nano);
    }
    (consume, analyse, send)
}

fn traceparent_of(out: &OutputRecord) -> String {
    out.header_text("traceparent")
        .unwrap_or_else(|| panic!("no traceparent on {} record", out.topic))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn spans_continue_the_incoming_trace_and_outputs_point_at_the_send_span() {
    let (addr, received) = otlp_receiver().await;
    let cluster = Cluster::mock();
    let topics = cluster.topics(2).await;
    let group = unique("g");
    let bootstrap = cluster.bootstrap();
    let mut config = cluster.config(&topics, &group);
    config.traces.otlp_endpoint = format!("http://{addr}");
    config.traces.service_name = "stancewatch-under-test".into();
    config.traces.sample_ratio = 1.0;
    let service = Service::new(config).start().await.unwrap();

    let traced = ("0af7651916cd43dd8448eb211c80319c", "b7ad6b7169203331");
    let dead = ("4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7");
    let unsampled = ("5c0c8e4c5e6a4b0f9a7d3e2f1b0a9c8d", "1122334455667788");
    let tp = |(t, s): (&str, &str), flags: &str| format!("00-{t}-{s}-{flags}");
    let with_parent = tp(traced, "01");
    let dead_parent = tp(dead, "01");
    let unsampled_parent = tp(unsampled, "00");
    let mut bad = article("dead", &[("traceparent", &dead_parent)]);
    bad.payload = Some(b"{\"id\": \"dead\", \"body\": ".to_vec());
    let inputs = vec![
        article(
            "with",
            &[
                ("traceparent", &with_parent),
                ("tracestate", "congo=t61rcWkgMzE"),
            ],
        ),
        article("without", &[("other", "kept")]),
        article("malformed", &[("traceparent", "00-feed-beef-01")]),
        article("unsampled", &[("traceparent", &unsampled_parent)]),
        bad,
    ];
    let positions = cluster.publish(&topics, &inputs).await;

    let mut reader = OutputReader::new(&bootstrap, &topics);
    tokio::task::block_in_place(|| {
        reader.until(LONG, "4 enriched articles and 1 dead letter", |r| {
            r.enriched.len() >= 4 && !r.dlq.is_empty()
        });
        let stances: usize = reader.enriched.iter().map(|(e, _)| e.entities.len()).sum();
        reader.until(LONG, "every entity-stance record", |r| {
            r.stances.len() >= stances
        });
        wait_all_committed(&bootstrap, &group, &topics, LONG);
    });
    // Stopping flushes the exporter: every span is at the receiver once `wait` returns.
    service.shutdown();
    let summary = service.wait().await.unwrap();
    assert_eq!((summary.enriched, summary.dead_lettered), (4, 1));
    let spans = received.lock().unwrap().clone();

    let enriched = |id: &str| {
        let (e, out) = reader
            .enriched
            .iter()
            .find(|(e, _)| e.id == id)
            .unwrap_or_else(|| panic!("no enriched record for {id}"));
        let stances: Vec<&OutputRecord> = reader
            .stances
            .iter()
            .filter(|(s, _)| s.article_id == id)
            .map(|(_, o)| o)
            .collect();
        assert_eq!(stances.len(), e.entities.len());
        assert!(!stances.is_empty(), "{id} has entities");
        // The entity-stance records are produced under the same span as the enriched one.
        for s in &stances {
            assert_eq!(
                traceparent_of(s),
                traceparent_of(out),
                "{id}: stance record"
            );
        }
        (e.clone(), out.clone())
    };

    // With a traceparent: the same trace, the consume span under the incoming span, and the outputs' header
    // naming the send span.
    let (e, out) = enriched("with");
    let (consume, analyse, send) =
        article_spans(&spans, traced.0, traced.1, &topics.input, &topics.enriched);
    assert_eq!(
        traceparent_of(&out),
        format!("00-{}-{}-01", traced.0, hex(&send.span_id))
    );
    assert_eq!(
        out.header_text("tracestate").as_deref(),
        Some("congo=t61rcWkgMzE"),
        "tracestate passed on"
    );
    assert_eq!(
        attr(&analyse, "stancewatch.entities"),
        Some(e.entities.len().to_string())
    );
    assert_eq!(
        attr(&analyse, "stancewatch.article.id").as_deref(),
        Some("with")
    );
    assert_eq!(
        attr(&consume, "stancewatch.outcome").as_deref(),
        Some("enriched")
    );
    let with_at = positions[0];
    assert_eq!(
        attr(&consume, "messaging.destination.partition.id"),
        Some(with_at.0.to_string())
    );
    assert_eq!(
        attr(&consume, "messaging.kafka.offset"),
        Some(with_at.1.to_string())
    );
    println!(
        "trace {}: {} {} (parent {}), analyse {} (parent {}), {} {} (parent {}); outgoing traceparent {}",
        traced.0,
        consume.name,
        hex(&consume.span_id),
        hex(&consume.parent_span_id),
        hex(&analyse.span_id),
        hex(&analyse.parent_span_id),
        send.name,
        hex(&send.span_id),
        hex(&send.parent_span_id),
        traceparent_of(&out)
    );

    // Without one, or with a malformed one: a new trace of its own, whose send span the outputs name.
    let mut fresh = Vec::new();
    for id in ["without", "malformed"] {
        let (_, out) = enriched(id);
        let (version, trace_id, parent, flags) = parse_traceparent(&traceparent_of(&out));
        assert_eq!((version.as_str(), flags.as_str()), ("00", "01"), "{id}");
        assert!(
            ![traced.0, dead.0, unsampled.0].contains(&trace_id.as_str())
                && !trace_id.ends_with("feed"),
            "{id}: a new trace, not {trace_id}"
        );
        let (consume, _, send) =
            article_spans(&spans, &trace_id, "", &topics.input, &topics.enriched);
        assert_eq!(
            hex(&send.span_id),
            parent,
            "{id}: header names the send span"
        );
        assert_eq!(
            attr(&consume, "stancewatch.outcome").as_deref(),
            Some("enriched")
        );
        fresh.push(trace_id);
    }
    assert_ne!(fresh[0], fresh[1], "each article its own trace");
    assert_eq!(
        enriched("without").1.header_text("other").as_deref(),
        Some("kept"),
        "other headers pass through"
    );
    assert_eq!(
        enriched("without").1.header("tracestate"),
        None,
        "no tracestate invented"
    );

    // A dead-lettered article: the analyse span says why, and the dead-letter record names its send span.
    let dlq = reader
        .dlq
        .iter()
        .find(|o| o.key_text().as_deref() == Some("dead"))
        .expect("dead letter");
    let (consume, analyse, send) =
        article_spans(&spans, dead.0, dead.1, &topics.input, &topics.dlq);
    assert_eq!(
        traceparent_of(dlq),
        format!("00-{}-{}-01", dead.0, hex(&send.span_id))
    );
    assert_eq!(
        attr(&analyse, "stancewatch.error.class").as_deref(),
        Some("invalid_json")
    );
    assert_eq!(
        analyse.status.as_ref().map(|s| s.code),
        Some(SpanStatus::Error as i32)
    );
    assert_eq!(
        attr(&consume, "stancewatch.outcome").as_deref(),
        Some("dead_lettered")
    );
    let (partition, offset) = dlq.source_position().unwrap();
    assert_eq!(positions[4], (partition, offset));
    assert_eq!(
        attr(&consume, "messaging.kafka.offset"),
        Some(offset.to_string())
    );

    // An unsampled incoming trace stays unsampled: nothing exported, yet the outputs carry the trace on, with
    // the sampled flag clear.
    let (_, out) = enriched("unsampled");
    let (_, trace_id, parent, flags) = parse_traceparent(&traceparent_of(&out));
    assert_eq!((trace_id.as_str(), flags.as_str()), (unsampled.0, "00"));
    assert_ne!(parent, unsampled.1, "the parent is this service's span");
    assert!(trace_spans(&spans, unsampled.0).is_empty());

    assert_eq!(
        spans.len(),
        4 * 3,
        "three spans for each sampled article, nothing else"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_collector_that_is_down_costs_spans_not_articles() {
    // A port nothing listens on: bind, note it, close.
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let cluster = Cluster::mock();
    let topics = cluster.topics(2).await;
    let group = unique("g");
    let bootstrap = cluster.bootstrap();
    let mut config = cluster.config(&topics, &group);
    config.traces.otlp_endpoint = format!("http://{closed}");
    let service = Service::new(config).start().await.unwrap();
    cluster.publish(&topics, &articles(10)).await;
    let mut reader = OutputReader::new(&bootstrap, &topics);
    tokio::task::block_in_place(|| {
        reader.until(LONG, "10 enriched articles", |r| r.enriched.len() >= 10);
        wait_all_committed(&bootstrap, &group, &topics, LONG);
    });
    for (_, out) in &reader.enriched {
        let (_, trace_id, _, _) = parse_traceparent(&traceparent_of(out));
        assert!(
            trace_id.starts_with("0000000000000000"),
            "the input's trace"
        );
    }
    service.shutdown();
    let started = std::time::Instant::now();
    let summary = service.wait().await.unwrap();
    assert_eq!(summary.enriched, 10);
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "shutdown waited {:?} for the collector",
        started.elapsed()
    );
}
