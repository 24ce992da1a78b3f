//! OpenTelemetry traces of each article's way through the service, exported over OTLP/HTTP.
//!
//! An article gets three spans: a CONSUMER span `process <input topic>` from the moment the record was
//! consumed until its outcome is on the brokers, and under it an INTERNAL span `analyse` (parse and NLP) and a
//! PRODUCER span `send <topic>` (its outputs, until the brokers acknowledge them; a dead-lettered article gets
//! one for the dead-letter topic). The consume span's parent is the input's W3C `traceparent` header when it
//! has a valid one, else the article starts a new trace; the outputs' `traceparent` names the send span, so a
//! consumer of the enriched topics continues the same trace.
//!
//! Off unless `traces.otlp_endpoint` is set: then [`Traces::start`] returns nothing, no span is made and the
//! outputs keep the input's headers as they were. Exporting happens on the SDK's own thread, in batches; the
//! stream only hands a finished span to a bounded queue, so a collector that is slow or down costs dropped
//! spans and a rate-limited warning, never a stalled or failed article.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use opentelemetry::propagation::{Extractor, Injector, TextMapPropagator};
use opentelemetry::trace::{
    Span as _, SpanKind, Status, TraceContextExt, Tracer as _, TracerProvider as _,
};
use opentelemetry::{Context, InstrumentationScope, KeyValue};
use opentelemetry_http::hyper::HyperClient;
use opentelemetry_http::{Bytes, HttpClient, HttpError, Request, Response};
use opentelemetry_otlp::{Protocol, WithExportConfig, WithHttpConfig};
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::{
    Sampler, SdkTracer, SdkTracerProvider, Span as SdkSpan, SpanData, SpanExporter,
};
use opentelemetry_sdk::Resource;
use tracing::{info, warn};

use crate::article::Rejection;
use crate::config::TracesConfig;
use crate::enriched::EnrichedArticle;
use crate::metrics::events::RecordAt;

/// The W3C Trace Context header read from inputs and written on outputs.
pub const TRACEPARENT: &str = "traceparent";

/// How long one export request may take, retries included. It runs on the exporter's thread: a collector
/// this slow delays only the next batch, and the queue drops spans meanwhile rather than grow.
const EXPORT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long the final flush at shutdown may take; counted within the pod's termination grace margin.
const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(5);
/// While the collector keeps failing, at most one warning this often (a batch is attempted every 5 s).
const WARN_EVERY: Duration = Duration::from_secs(60);

#[derive(Debug, thiserror::Error)]
pub enum TracesError {
    #[error("could not set up the OTLP trace exporter for {endpoint}: {error}; check traces.otlp_endpoint")]
    Exporter {
        endpoint: String,
        error: opentelemetry_otlp::ExporterBuildError,
    },
}

/// Tracing switched on: the tracer the per-article spans come from, and the provider that exports them.
pub struct Traces {
    provider: SdkTracerProvider,
    tracer: SdkTracer,
    propagator: TraceContextPropagator,
    consumer_group: String,
}

impl Traces {
    /// The tracer the configuration asks for, or None when `traces.otlp_endpoint` is empty (tracing off).
    /// `runtime` is where the export requests run (see [`OnRuntime`]).
    pub fn start(
        config: &TracesConfig,
        consumer_group: &str,
        runtime: tokio::runtime::Handle,
    ) -> Result<Option<Arc<Traces>>, TracesError> {
        if !config.enabled() {
            return Ok(None);
        }
        let endpoint = config.traces_url();
        let exporter = opentelemetry_otlp::SpanExporter::builder()
            .with_http()
            .with_protocol(Protocol::HttpBinary)
            .with_endpoint(endpoint.clone())
            .with_timeout(EXPORT_TIMEOUT)
            .with_http_client(OnRuntime {
                client: HyperClient::with_default_connector(EXPORT_TIMEOUT, None),
                runtime,
            })
            .build()
            .map_err(|error| TracesError::Exporter {
                endpoint: endpoint.clone(),
                error,
            })?;
        let resource = Resource::builder()
            .with_service_name(config.service_name.clone())
            .with_attribute(KeyValue::new("service.version", env!("CARGO_PKG_VERSION")))
            .build();
        let provider = SdkTracerProvider::builder()
            .with_batch_exporter(Logged::new(exporter, endpoint.clone()))
            // A sampled (or unsampled) incoming trace stays so: the producer upstream already decided. Only the
            // traces that start here are sampled by ratio.
            .with_sampler(Sampler::ParentBased(Box::new(Sampler::TraceIdRatioBased(
                config.sample_ratio,
            ))))
            .with_resource(resource)
            .build();
        let tracer = provider.tracer_with_scope(
            InstrumentationScope::builder("stancewatch")
                .with_version(env!("CARGO_PKG_VERSION"))
                .build(),
        );
        info!(%endpoint, sample_ratio = config.sample_ratio, "exporting traces over OTLP/HTTP");
        Ok(Some(Arc::new(Traces {
            provider,
            tracer,
            propagator: TraceContextPropagator::new(),
            consumer_group: consumer_group.to_string(),
        })))
    }

    /// Starts the consume span of a record consumed at `received`, a child of the context its headers carry
    /// (a new trace when they carry none, or a malformed one).
    pub fn article(
        self: &Arc<Self>,
        at: RecordAt<'_>,
        headers: &[(String, Option<Vec<u8>>)],
        body_bytes: usize,
        received: SystemTime,
    ) -> ArticleTrace {
        let parent = self.propagator.extract(&InputHeaders(headers));
        let span = self
            .tracer
            .span_builder(format!("process {}", at.topic))
            .with_kind(SpanKind::Consumer)
            .with_start_time(received)
            .with_attributes([
                KeyValue::new("messaging.system", "kafka"),
                KeyValue::new("messaging.operation.type", "process"),
                KeyValue::new("messaging.operation.name", "process"),
                KeyValue::new("messaging.destination.name", at.topic.to_string()),
                KeyValue::new(
                    "messaging.destination.partition.id",
                    at.partition.to_string(),
                ),
                KeyValue::new("messaging.kafka.offset", at.offset),
                KeyValue::new("messaging.consumer.group.name", self.consumer_group.clone()),
                KeyValue::new("messaging.message.body.size", body_bytes as i64),
            ])
            .start_with_context(&self.tracer, &parent);
        ArticleTrace {
            traces: self.clone(),
            cx: parent.with_span(span),
            send: None,
        }
    }

    /// Exports what is queued and stops the exporter. Failures are logged: traces are never worth failing
    /// the service's exit over.
    pub async fn shutdown(&self) {
        let provider = self.provider.clone();
        // Blocks until the exporter's thread has sent the last batch, which it does through this runtime: so
        // not on one of the runtime's worker threads.
        let flushed =
            tokio::task::spawn_blocking(move || provider.shutdown_with_timeout(SHUTDOWN_TIMEOUT))
                .await;
        match flushed {
            Ok(Ok(())) => info!("traces flushed"),
            Ok(Err(error)) => warn!(%error, "could not flush the last traces"),
            Err(error) => warn!(%error, "could not flush the last traces"),
        }
    }
}

/// The spans of one article in flight. Dropped without [`ArticleTrace::finish`] or [`ArticleTrace::fail`]
/// (the article was abandoned to be redelivered), its spans end where they are and are exported as such.
pub struct ArticleTrace {
    traces: Arc<Traces>,
    /// The consume span, as the parent of the others.
    cx: Context,
    /// The send span, from the moment the outputs are handed to the producer until they are acknowledged.
    send: Option<SdkSpan>,
}

impl ArticleTrace {
    /// Records the `analyse` span, from `started` to now, with what the analysis found or why it refused the
    /// article.
    pub fn analysed(
        &self,
        started: SystemTime,
        pipeline_version: &'static str,
        result: Result<&EnrichedArticle, &Rejection>,
    ) {
        let tracer = &self.traces.tracer;
        let mut attributes = vec![KeyValue::new(
            "stancewatch.pipeline_version",
            pipeline_version,
        )];
        match result {
            Ok(e) => attributes.extend([
                KeyValue::new("stancewatch.article.id", e.id.clone()),
                KeyValue::new("stancewatch.language", e.language.clone()),
                KeyValue::new("stancewatch.entities", e.entities.len() as i64),
                KeyValue::new("stancewatch.relations", e.relations.len() as i64),
            ]),
            Err(r) => attributes.push(KeyValue::new("stancewatch.error.class", r.reason.as_str())),
        }
        let mut span = tracer
            .span_builder("analyse")
            .with_kind(SpanKind::Internal)
            .with_start_time(started)
            .with_attributes(attributes)
            .start_with_context(tracer, &self.cx);
        if let Err(r) = result {
            span.set_status(Status::error(r.message.clone()));
        }
        span.end();
    }

    /// Starts the send span of `records` outputs to `topic` (and the entity-stance topic, for an enriched
    /// article), ending an earlier one that did not succeed, and returns the headers that point at it.
    pub fn send(
        &mut self,
        topic: &str,
        records: usize,
        error_class: Option<&'static str>,
    ) -> TraceHeaders {
        self.sent(Some(
            "the outputs were refused; the article is dead-lettered instead",
        ));
        let tracer = &self.traces.tracer;
        let mut attributes = vec![
            KeyValue::new("messaging.system", "kafka"),
            KeyValue::new("messaging.operation.type", "send"),
            KeyValue::new("messaging.operation.name", "send"),
            KeyValue::new("messaging.destination.name", topic.to_string()),
            KeyValue::new("messaging.batch.message_count", records as i64),
        ];
        if let Some(class) = error_class {
            attributes.push(KeyValue::new("stancewatch.error.class", class));
        }
        let span = tracer
            .span_builder(format!("send {topic}"))
            .with_kind(SpanKind::Producer)
            .with_attributes(attributes)
            .start_with_context(tracer, &self.cx);
        let mut headers = TraceHeaders(Vec::with_capacity(2));
        self.traces.propagator.inject_context(
            &Context::new().with_remote_span_context(span.span_context().clone()),
            &mut headers,
        );
        self.send = Some(span);
        headers
    }

    /// Ends the send span, if one is open: the outputs are acknowledged (`error` None) or given up on.
    pub fn sent(&mut self, error: Option<&str>) {
        if let Some(mut span) = self.send.take() {
            if let Some(e) = error {
                span.set_status(Status::error(e.to_string()));
            }
            span.end();
        }
    }

    /// The article's outcome is on the brokers: ends its spans.
    pub fn finish(mut self, outcome: &'static str) {
        self.sent(None);
        let span = self.cx.span();
        span.set_attribute(KeyValue::new("stancewatch.outcome", outcome));
        span.end();
    }

    /// The article was given up on (it will be redelivered, or its partition stops there): ends its spans
    /// with the error.
    pub fn fail(mut self, error: &str) {
        self.sent(Some(error));
        let span = self.cx.span();
        span.set_status(Status::error(error.to_string()));
        span.end();
    }
}

/// The trace context headers an article's outputs carry in place of the input's.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TraceHeaders(pub(crate) Vec<(String, String)>);

impl TraceHeaders {
    /// The `traceparent` value, as written.
    pub fn traceparent(&self) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == TRACEPARENT)
            .map(|(_, v)| v.as_str())
    }

    /// Replaces the input's trace context headers in `headers` (any spelling of their names) with these.
    /// An empty value (no `tracestate` to pass on) removes the header: a `tracestate` belongs with the
    /// `traceparent` it came with.
    pub fn apply_to(&self, headers: &mut Vec<(String, Option<Vec<u8>>)>) {
        for (key, value) in &self.0 {
            let mut value = (!value.is_empty()).then(|| value.clone().into_bytes());
            headers.retain_mut(|(k, v)| {
                if !k.eq_ignore_ascii_case(key) {
                    return true;
                }
                // The first one is replaced where it stands, the others removed.
                match value.take() {
                    Some(new) => {
                        *k = key.clone();
                        *v = Some(new);
                        true
                    }
                    None => false,
                }
            });
            if let Some(new) = value {
                headers.push((key.clone(), Some(new)));
            }
        }
    }
}

impl Injector for TraceHeaders {
    fn set(&mut self, key: &str, value: String) {
        self.0.push((key.to_string(), value));
    }
}

/// A Kafka record's headers as the propagator reads them.
struct InputHeaders<'a>(&'a [(String, Option<Vec<u8>>)]);

impl Extractor for InputHeaders<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        let value = self.0.iter().find(|(k, _)| k.eq_ignore_ascii_case(key))?;
        let value = std::str::from_utf8(value.1.as_deref()?).ok()?;
        // The propagator parses the ids as numbers, so it would take "00-feed-beef-01" for a trace; W3C
        // requires the exact widths, and anything else is a new trace.
        (key != TRACEPARENT || has_traceparent_layout(value)).then_some(value)
    }

    fn keys(&self) -> Vec<&str> {
        self.0.iter().map(|(k, _)| k.as_str()).collect()
    }
}

/// version-traceid-parentid-flags with the widths W3C Trace Context fixes (2, 32, 16, 2 characters).
fn has_traceparent_layout(value: &str) -> bool {
    let mut parts = value.trim().split('-');
    let widths = [2, 32, 16, 2];
    widths
        .iter()
        .all(|&w| parts.next().is_some_and(|p| p.len() == w))
}

/// The OTLP exporter's HTTP client, run on the service's tokio runtime. The SDK's batch processor exports
/// from a plain thread of its own, where hyper (which needs a tokio reactor and timer) cannot run: each request
/// is spawned onto the runtime and awaited from there.
#[derive(Debug)]
struct OnRuntime {
    client: HyperClient,
    runtime: tokio::runtime::Handle,
}

#[async_trait::async_trait]
impl HttpClient for OnRuntime {
    async fn send_bytes(&self, request: Request<Bytes>) -> Result<Response<Bytes>, HttpError> {
        let client = self.client.clone();
        self.runtime
            .spawn(async move { client.send_bytes(request).await })
            .await
            .map_err(|e| Box::new(e) as HttpError)?
    }
}

/// The exporter, logging its failures: the first of a run of them, then at most one every [`WARN_EVERY`],
/// and the recovery.
#[derive(Debug)]
struct Logged<E> {
    inner: E,
    endpoint: String,
    failing: AtomicBool,
    last_warning: Mutex<Option<Instant>>,
}

impl<E> Logged<E> {
    fn new(inner: E, endpoint: String) -> Self {
        Self {
            inner,
            endpoint,
            failing: AtomicBool::new(false),
            last_warning: Mutex::new(None),
        }
    }
}

impl<E: SpanExporter> SpanExporter for Logged<E> {
    async fn export(&self, batch: Vec<SpanData>) -> OTelSdkResult {
        let spans = batch.len();
        let result = self.inner.export(batch).await;
        match &result {
            Ok(()) => {
                if self.failing.swap(false, Ordering::Relaxed) {
                    info!(endpoint = %self.endpoint, "exporting traces again");
                }
            }
            Err(error) => {
                self.failing.store(true, Ordering::Relaxed);
                let mut last = self.last_warning.lock().unwrap_or_else(|p| p.into_inner());
                if last.is_none_or(|t| t.elapsed() >= WARN_EVERY) {
                    *last = Some(Instant::now());
                    warn!(
                        endpoint = %self.endpoint,
                        %error,
                        spans,
                        "could not export traces; these spans are lost, the articles are not (next warning in a minute at most)"
                    );
                }
            }
        }
        result
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        self.inner.shutdown_with_timeout(timeout)
    }

    fn force_flush(&self) -> OTelSdkResult {
        self.inner.force_flush()
    }

    fn set_resource(&mut self, resource: &Resource) {
        self.inner.set_resource(resource);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> Vec<(String, Option<Vec<u8>>)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), Some(v.as_bytes().to_vec())))
            .collect()
    }

    #[test]
    fn only_well_formed_traceparents_are_read() {
        let read = |tp: &str| {
            let h = headers(&[(TRACEPARENT, tp)]);
            TraceContextPropagator::new()
                .extract(&InputHeaders(&h))
                .span()
                .span_context()
                .is_valid()
        };
        assert!(read(
            "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
        ));
        for malformed in [
            "00-feed-beef-01",
            "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331",
            "00-00000000000000000000000000000000-b7ad6b7169203331-01",
            "00-0AF7651916CD43DD8448EB211C80319C-b7ad6b7169203331-01",
            "zz-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
            "",
        ] {
            assert!(!read(malformed), "{malformed:?}");
        }
        let binary = vec![(TRACEPARENT.to_string(), Some(vec![0xff, 0xfe]))];
        assert!(!TraceContextPropagator::new()
            .extract(&InputHeaders(&binary))
            .span()
            .span_context()
            .is_valid());
    }

    #[test]
    fn trace_headers_replace_the_inputs_in_place() {
        let new = TraceHeaders(vec![
            (
                TRACEPARENT.into(),
                "00-0af7651916cd43dd8448eb211c80319c-00f067aa0ba902b7-01".into(),
            ),
            ("tracestate".into(), String::new()),
        ]);
        let mut h = headers(&[
            ("a", "1"),
            ("Traceparent", "00-old-old-01"),
            ("tracestate", "k=v"),
            ("traceparent", "00-dup-dup-01"),
            ("b", "2"),
        ]);
        new.apply_to(&mut h);
        assert_eq!(
            h,
            headers(&[
                ("a", "1"),
                (
                    TRACEPARENT,
                    "00-0af7651916cd43dd8448eb211c80319c-00f067aa0ba902b7-01"
                ),
                ("b", "2"),
            ])
        );
        let mut none = Vec::new();
        new.apply_to(&mut none);
        assert_eq!(none.len(), 1, "added when the input had none");
        assert_eq!(new.traceparent().map(str::as_bytes), none[0].1.as_deref());
    }

    #[tokio::test]
    async fn off_without_an_endpoint() {
        let config = crate::config::Config::defaults().traces;
        assert!(!config.enabled(), "off by default");
        let traces = Traces::start(&config, "g", tokio::runtime::Handle::current()).unwrap();
        assert!(traces.is_none());
    }
}
