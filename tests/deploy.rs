//! Cross-checks of the deployment files (docker/, helm/stancewatch/) against the code they deploy. Neither a
//! Docker engine nor a Kubernetes cluster is available here, so what can be checked without one is:
//!
//! - every `stancewatch_*` metric the Grafana dashboards, the alert rules (the operators' and the analysts',
//!   recording rules and the queries in their annotations included) and the KEDA autoscaler's prometheus trigger
//!   query is exported by a running service (mock Kafka cluster), with the labels and label values the queries
//!   select on; a `stancewatch:*` series a rule records counts as exported with the labels its expression keeps;
//! - the analysts' alerts link to the analysts' dashboard, with variables it has;
//! - the compose stack's Prometheus rules are the chart's rules rendered with the chart's defaults;
//! - the chart's config template renders every key of config/default.toml, with the same defaults, and the
//!   configurations rendered from the chart (by .ci/chart_render.py) load in stancewatch's own loader;
//! - the Dockerfile copies sources that exist, through the .dockerignore allow-list, including every file the
//!   crate embeds with include_str!/include_bytes!.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::*;
use stancewatch::config::Config;
use stancewatch::metrics::Outcome;
use stancewatch::stream::mock::{publish_all, Publish};
use stancewatch::stream::Service;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");
const CHART: &str = "helm/stancewatch";
const ALERTS: &str = "helm/stancewatch/files/alerts.yaml";
const ANALYST_ALERTS: &str = "helm/stancewatch/files/alerts-analysts.yaml";
const COMPOSE_ALERTS: &str = "docker/prometheus/alerts.yml";
const DASHBOARDS: &str = "helm/stancewatch/files/dashboards";
const KEDA: &str = "helm/stancewatch/templates/keda-scaledobject.yaml";
const LONG: Duration = Duration::from_secs(60);

/// Labels Prometheus (or the Kubernetes service discovery of the ServiceMonitor) attaches to every scraped
/// series; queries may select on them although the service does not export them.
const TARGET_LABELS: &[&str] = &[
    "namespace",
    "job",
    "pod",
    "instance",
    "service",
    "container",
    "endpoint",
];

fn path(rel: &str) -> PathBuf {
    Path::new(ROOT).join(rel)
}

fn read(rel: &str) -> String {
    std::fs::read_to_string(path(rel)).unwrap_or_else(|e| panic!("reading {rel}: {e}"))
}

// ---------------------------------------------------------------------------------------------------------
// Queries: where the dashboards and the alert rules use metrics.

/// A PromQL expression and where it comes from.
#[derive(Debug, Clone)]
struct Query {
    origin: String,
    expr: String,
    /// The series a recording rule records the expression as.
    record: Option<String>,
}

/// Every query of the dashboards: panel target `expr`s and template variable queries.
fn dashboard_queries() -> Vec<Query> {
    fn walk(v: &serde_json::Value, origin: &str, out: &mut Vec<Query>) {
        match v {
            serde_json::Value::Object(map) => {
                let here = map
                    .get("title")
                    .or_else(|| map.get("name"))
                    .and_then(|t| t.as_str())
                    .map(|t| format!("{origin} / {t}"))
                    .unwrap_or_else(|| origin.to_string());
                for (k, child) in map {
                    match (k.as_str(), child) {
                        ("expr" | "query" | "definition", serde_json::Value::String(s)) => out
                            .push(Query {
                                origin: here.clone(),
                                expr: s.clone(),
                                record: None,
                            }),
                        _ => walk(child, &here, out),
                    }
                }
            }
            serde_json::Value::Array(items) => items.iter().for_each(|i| walk(i, origin, out)),
            _ => {}
        }
    }
    let mut out = vec![];
    let mut files: Vec<_> = std::fs::read_dir(path(DASHBOARDS))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    assert!(files.len() >= 2, "the operators' and analysts' dashboards");
    for f in files {
        let json: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&f).unwrap()).unwrap();
        let name = f.file_name().unwrap().to_string_lossy().into_owned();
        walk(&json, &name, &mut out);
    }
    out
}

/// The `expr` of every rule in a Prometheus rule file (single-line or block scalar), recording rules with the
/// series they record (written before their `expr`, as the chart's files do), and the queries that annotation
/// templates run (`printf "QUERY" ... | query`, whose `%q` placeholders become `"%q"`, a value the checker
/// takes for a variable).
fn rule_queries(rel: &str, text: &str) -> Vec<Query> {
    let lines: Vec<&str> = text.lines().collect();
    let mut out = vec![];
    let mut alert = String::new();
    let mut record = None;
    let mut i = 0;
    while i < lines.len() {
        let line = lines[i];
        let trimmed = line.trim_start();
        let indent = line.len() - trimmed.len();
        if let Some(name) = trimmed
            .strip_prefix("- alert:")
            .or_else(|| trimmed.strip_prefix("alert:"))
        {
            alert = name.trim().to_string();
            record = None;
        }
        if let Some(name) = trimmed
            .strip_prefix("- record:")
            .or_else(|| trimmed.strip_prefix("record:"))
        {
            alert = name.trim().to_string();
            record = Some(alert.clone());
        }
        if let Some(rest) = trimmed.strip_prefix("expr:") {
            let rest = rest.trim();
            let mut expr = String::new();
            if rest.starts_with('|') || rest.starts_with('>') {
                while i + 1 < lines.len() {
                    let next = lines[i + 1];
                    let next_indent = next.len() - next.trim_start().len();
                    if !next.trim().is_empty() && next_indent <= indent {
                        break;
                    }
                    expr.push_str(next.trim());
                    expr.push('\n');
                    i += 1;
                }
            } else {
                expr = rest.to_string();
            }
            out.push(Query {
                origin: format!("{rel} / {alert}"),
                expr,
                record: record.clone(),
            });
        }
        if let Some(pos) = line.find("with printf") {
            let rest = lines[i..].join("\n");
            let rest = &rest[pos + "with printf".len()..];
            let open = rest.find('"').expect("printf's format string") + 1;
            let close = rest[open..].find('"').expect("format string closes") + open;
            out.push(Query {
                origin: format!("{rel} / {alert} / annotation"),
                expr: rest[open..close].replace("%q", "\"%q\""),
                record: None,
            });
        }
        i += 1;
    }
    out
}

/// The PromQL of the KEDA ScaledObject's prometheus trigger, as its template writes it. Helm actions in it
/// (`{{ .Release.Namespace }}`, the input topic) become `$helm`, a value the checker takes for a variable: it
/// then checks that the label exists, not its value, which only a release knows.
fn keda_queries() -> Vec<Query> {
    let template = read(KEDA);
    template
        .lines()
        .map(str::trim)
        .filter(|l| !l.starts_with('#') && l.contains("stancewatch_"))
        .map(|l| {
            let mut expr = String::new();
            let mut rest = l.trim_start_matches("query:").trim();
            while let Some(open) = rest.find("{{") {
                let close = rest[open..].find("}}").expect("action closes") + open;
                expr.push_str(&rest[..open]);
                expr.push_str("$helm");
                rest = &rest[close + 2..];
            }
            expr.push_str(rest);
            Query {
                origin: format!("{KEDA} / prometheus trigger"),
                expr,
                record: None,
            }
        })
        .collect()
}

/// A metric selector in a query: `stancewatch_x{label op "value", ...}`.
#[derive(Debug)]
struct MetricRef {
    name: String,
    matchers: Vec<(String, String, String)>,
}

/// Metric selectors of `stancewatch_*` metrics and of `stancewatch:*` series recorded by rules.
fn metric_refs(expr: &str) -> Vec<MetricRef> {
    let bytes = expr.as_bytes();
    let is_name = |b: u8| b.is_ascii_alphanumeric() || b == b'_' || b == b':';
    let mut out = vec![];
    let mut i = 0;
    while let Some(pos) = expr[i..]
        .match_indices("stancewatch")
        .map(|(p, _)| p)
        .find(|p| matches!(bytes.get(i + p + "stancewatch".len()), Some(b'_' | b':')))
    {
        let start = i + pos;
        let preceded_by_ident = start > 0 && is_name(bytes[start - 1]);
        let mut end = start;
        while end < bytes.len() && is_name(bytes[end]) {
            end += 1;
        }
        i = end;
        if preceded_by_ident {
            continue;
        }
        let mut matchers = vec![];
        if bytes.get(end) == Some(&b'{') {
            let close = expr[end..].find('}').expect("selector closes") + end;
            for m in split_matchers(&expr[end + 1..close]) {
                matchers.push(m);
            }
            i = close + 1;
        }
        out.push(MetricRef {
            name: expr[start..end].to_string(),
            matchers,
        });
    }
    out
}

/// `a="x", b=~"y|z"` → [(a, =, x), (b, =~, y|z)].
fn split_matchers(s: &str) -> Vec<(String, String, String)> {
    let mut out = vec![];
    let mut rest = s.trim();
    while !rest.is_empty() {
        let name_end = rest
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .expect("matcher has an operator");
        let name = rest[..name_end].to_string();
        let after = rest[name_end..].trim_start();
        let op_len =
            if after.starts_with("=~") || after.starts_with("!~") || after.starts_with("!=") {
                2
            } else {
                1
            };
        let op = after[..op_len].to_string();
        let value_part = after[op_len..].trim_start();
        assert!(value_part.starts_with('"'), "quoted matcher value in {s}");
        let close = value_part[1..].find('"').expect("closing quote") + 1;
        out.push((name, op, value_part[1..close].to_string()));
        rest = value_part[close + 1..]
            .trim_start()
            .trim_start_matches(',')
            .trim_start();
    }
    out
}

/// Label names a query groups or matches by: `by (...)`, `on (...)`, `ignoring (...)`, `without (...)`.
fn grouping_labels(expr: &str) -> BTreeSet<String> {
    clause_labels(expr, &["by", "on", "ignoring", "without"])
}

/// Label names in the `KEYWORD (...)` clauses of a query, for the given keywords.
fn clause_labels(expr: &str, keywords: &[&str]) -> BTreeSet<String> {
    clauses(expr, keywords)
        .into_iter()
        .flat_map(|(_, _, labels)| labels)
        .collect()
}

/// The `KEYWORD (...)` clauses of a query, for the given keywords: (position, keyword, label names), in order.
fn clauses<'k>(expr: &str, keywords: &[&'k str]) -> Vec<(usize, &'k str, BTreeSet<String>)> {
    let mut out = vec![];
    for &kw in keywords {
        let mut i = 0;
        while let Some(pos) = expr[i..].find(kw) {
            let start = i + pos;
            i = start + kw.len();
            let before_ok = start == 0 || !expr.as_bytes()[start - 1].is_ascii_alphanumeric();
            let after = expr[i..].trim_start();
            if !before_ok || !after.starts_with('(') {
                continue;
            }
            let close = after.find(')').unwrap();
            let labels = after[1..close]
                .split(',')
                .map(str::trim)
                .filter(|l| !l.is_empty())
                .map(String::from)
                .collect();
            out.push((start, kw, labels));
        }
    }
    out.sort_by_key(|(pos, _, _)| *pos);
    out
}

// ---------------------------------------------------------------------------------------------------------
// Scrape: the text exposition of a running service.

#[derive(Debug, Default, Clone)]
struct Exposition {
    /// Metric family name → type (counter, gauge, histogram ...).
    families: BTreeMap<String, String>,
    /// Series name (with _bucket/_sum/_count for histograms) → label name → values seen.
    series: BTreeMap<String, BTreeMap<String, BTreeSet<String>>>,
}

fn parse_exposition(text: &str) -> Exposition {
    let mut e = Exposition::default();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let mut parts = rest.split_whitespace();
            let (name, kind) = (parts.next().unwrap(), parts.next().unwrap());
            e.families.insert(name.to_string(), kind.to_string());
            continue;
        }
        if line.starts_with('#') || line.trim().is_empty() {
            continue;
        }
        let name_end = line.find(['{', ' ']).unwrap();
        let labels = e.series.entry(line[..name_end].to_string()).or_default();
        if line.as_bytes()[name_end] == b'{' {
            let mut rest = &line[name_end + 1..];
            while !rest.starts_with('}') {
                let eq = rest.find('=').unwrap();
                let label = rest[..eq].to_string();
                let mut value = String::new();
                let mut chars = rest[eq + 2..].char_indices();
                let mut consumed = 0;
                while let Some((j, c)) = chars.next() {
                    match c {
                        '\\' => {
                            if let Some((_, n)) = chars.next() {
                                value.push(if n == 'n' { '\n' } else { n });
                            }
                        }
                        '"' => {
                            consumed = j + 1;
                            break;
                        }
                        c => value.push(c),
                    }
                }
                labels.entry(label).or_default().insert(value);
                rest = rest[eq + 2 + consumed..].trim_start_matches(',');
            }
        }
    }
    e
}

/// The exposition `e` plus the series the recording rules among `queries` record (family type "recorded"),
/// with the labels each keeps, as far as this checker tells: those its leftmost aggregation keeps (the labels
/// of a `by (...)`, or those of the first series it reads less the labels of a `without (...)`), or without an
/// aggregation those of the first series it reads; in `A or B` and `A and on (...) B` the result has A's labels.
/// A kept label has the values it has in the series read (none for target labels), so that selecting on a value
/// it never takes is caught too. Rules are taken in order, as Prometheus evaluates a group.
fn with_recorded(e: &Exposition, queries: &[Query]) -> Exposition {
    let mut out = e.clone();
    for q in queries {
        let Some(record) = &q.record else { continue };
        let sources: Vec<BTreeMap<String, BTreeSet<String>>> = metric_refs(&q.expr)
            .iter()
            .filter_map(|r| out.series.get(&r.name).cloned())
            .collect();
        let first_read: BTreeSet<String> = sources
            .first()
            .map(|s| s.keys().cloned().collect())
            .unwrap_or_default();
        let kept: BTreeSet<String> = match clauses(&q.expr, &["by", "without"]).first() {
            Some((_, "by", labels)) => labels.clone(),
            Some((_, _, without)) => first_read.difference(without).cloned().collect(),
            None => first_read,
        };
        let labels = kept
            .into_iter()
            .filter(|l| !TARGET_LABELS.contains(&l.as_str()))
            .map(|l| {
                let values = sources
                    .iter()
                    .filter_map(|s| s.get(&l))
                    .flatten()
                    .cloned()
                    .collect();
                (l, values)
            })
            .collect();
        out.families.insert(record.clone(), "recorded".into());
        out.series.insert(record.clone(), labels);
    }
    out
}

/// What is wrong with the metric uses of `queries` against the exposition `e` (empty when nothing is).
fn check_queries(queries: &[Query], e: &Exposition) -> Vec<String> {
    let e = &with_recorded(e, queries);
    let mut problems = vec![];
    for q in queries {
        let refs = metric_refs(&q.expr);
        let mut known_labels: BTreeSet<String> =
            TARGET_LABELS.iter().map(|s| s.to_string()).collect();
        known_labels.insert("le".into());
        for r in &refs {
            let family_type = e.families.get(&r.name).map(String::as_str);
            let histogram_base = ["_bucket", "_sum", "_count"].iter().find_map(|suffix| {
                r.name
                    .strip_suffix(suffix)
                    .filter(|base| e.families.get(*base).map(String::as_str) == Some("histogram"))
            });
            match (family_type, histogram_base) {
                (Some("histogram"), _) => {
                    problems.push(format!(
                        "{}: `{}` is a histogram; query its _bucket, _sum or _count series",
                        q.origin, r.name
                    ));
                    continue;
                }
                (Some(_), _) | (None, Some(_)) => {}
                (None, None) if r.name.contains(':') => {
                    problems.push(format!(
                        "{}: `{}` is recorded by no rule of the rule files",
                        q.origin, r.name
                    ));
                    continue;
                }
                (None, None) => {
                    problems.push(format!(
                        "{}: `{}` is not exported by stancewatch",
                        q.origin, r.name
                    ));
                    continue;
                }
            }
            let Some(labels) = e.series.get(&r.name) else {
                problems.push(format!("{}: `{}` has no series", q.origin, r.name));
                continue;
            };
            known_labels.extend(labels.keys().cloned());
            for (label, op, value) in &r.matchers {
                if TARGET_LABELS.contains(&label.as_str()) {
                    continue;
                }
                let Some(values) = labels.get(label) else {
                    problems.push(format!("{}: `{}` has no label `{label}`", q.origin, r.name));
                    continue;
                };
                if op == "=" && !value.contains(['$', '%']) && !values.contains(value) {
                    problems.push(format!(
                        "{}: `{}{{{label}=\"{value}\"}}` matches nothing; exported values: {values:?}",
                        q.origin, r.name
                    ));
                }
            }
        }
        if !refs.is_empty() {
            for label in grouping_labels(&q.expr) {
                if !known_labels.contains(&label) {
                    problems.push(format!(
                        "{}: groups by `{label}`, which none of its metrics has",
                        q.origin
                    ));
                }
            }
        }
    }
    problems
}

/// Entities of examples/articles.jsonl, for per-entity stance counters.
fn watchlist() -> Vec<String> {
    [
        "Vladimir Putin",
        "Emmanuel Macron",
        "Friedrich Merz",
        "NATO",
        "Russia",
        "Ukraine",
    ]
    .map(String::from)
    .to_vec()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_metric_in_the_dashboards_and_alert_rules_is_exported() {
    let mut queries = dashboard_queries();
    let alert_queries = rule_queries(ALERTS, &read(ALERTS));
    assert!(
        alert_queries.len() >= 4,
        "the alert rules: {alert_queries:?}"
    );
    queries.extend(alert_queries);
    let analyst_queries = rule_queries(ANALYST_ALERTS, &read(ANALYST_ALERTS));
    assert!(
        analyst_queries
            .iter()
            .filter(|q| q.record.is_some())
            .count()
            >= 4
            && analyst_queries
                .iter()
                .any(|q| q.origin.ends_with("/ annotation")),
        "the analysts' recording rules, alerts and annotation queries: {analyst_queries:?}"
    );
    queries.extend(analyst_queries);
    let keda = keda_queries();
    assert!(
        keda.iter()
            .any(|q| q.expr.contains("stancewatch_consumer_lag_seconds{")),
        "the KEDA trigger on the lag in seconds: {keda:?}"
    );
    queries.extend(keda);
    let used: BTreeSet<String> = queries
        .iter()
        .flat_map(|q| metric_refs(&q.expr))
        .map(|r| r.name)
        .collect();
    assert!(used.len() >= 10, "metric names found: {used:?}");

    let cluster = Cluster::mock();
    let topics = cluster.topics(2).await;
    let group = unique("g");
    let bootstrap = cluster.bootstrap();
    let mut config = cluster.config(&topics, &group);
    config.metrics.watchlist = watchlist();
    let service = Service::new(config).start().await.unwrap();
    let mut input = articles(15);
    input.push(Publish {
        key: Some(b"broken-1".to_vec()),
        payload: Some(b"not json".to_vec()),
        headers: vec![],
        timestamp: None,
    });
    publish_all(&bootstrap, &topics.input, &input)
        .await
        .unwrap();
    let metrics = service.metrics.clone();
    eventually(LONG, "every article enriched or dead-lettered", || {
        metrics.articles(Outcome::Enriched) + metrics.articles(Outcome::DeadLettered)
            >= input.len() as u64
    })
    .await;

    // The probes the chart's Deployment points at.
    assert_eq!(http_get(service.http_addr, "/healthz").await.0, 200);
    let deadline = Instant::now() + LONG;
    while http_get(service.http_addr, "/readyz").await.0 != 200 {
        assert!(Instant::now() < deadline, "/readyz never answered 200");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // Consumer lag comes from librdkafka statistics (every 500 ms in tests), and the lag in seconds needs
    // them to tell a caught-up partition: wait for both.
    let deadline = Instant::now() + LONG;
    loop {
        let (status, body) = http_get(service.http_addr, "/metrics").await;
        assert_eq!(status, 200);
        if body.contains("stancewatch_consumer_lag{")
            && body.contains("stancewatch_consumer_lag_seconds{")
        {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no consumer lag (messages and seconds) reported"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // stancewatch_kafka_errors_total{client,code} exists once librdkafka has reported an error: take the
    // broker down until one is counted, then bring it back.
    let mock = cluster.mock_kafka();
    mock.cluster().broker_down(1).unwrap();
    let deadline = Instant::now() + LONG;
    while !http_get(service.http_addr, "/metrics")
        .await
        .1
        .contains("stancewatch_kafka_errors_total{")
    {
        assert!(Instant::now() < deadline, "no Kafka error counted");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    mock.cluster().broker_up(1).unwrap();

    let (_, body) = http_get(service.http_addr, "/metrics").await;
    let exposition = parse_exposition(&body);
    service.shutdown();
    let _ = service.wait().await;

    let problems = check_queries(&queries, &exposition);
    assert!(
        problems.is_empty(),
        "dashboard and alert queries that do not match the exported metrics:\n{}\n\nexported: {:?}",
        problems.join("\n"),
        exposition.families.keys().collect::<Vec<_>>()
    );
    println!(
        "{} queries use {} stancewatch metrics, all exported: {}",
        queries.len(),
        used.len(),
        used.iter().cloned().collect::<Vec<_>>().join(", ")
    );
}

#[test]
fn the_query_checker_catches_unknown_metrics_labels_and_bare_histograms() {
    let e = parse_exposition(
        "# TYPE stancewatch_articles_total counter\n\
         stancewatch_articles_total{outcome=\"enriched\"} 3\n\
         # TYPE stancewatch_end_to_end_latency_seconds histogram\n\
         stancewatch_end_to_end_latency_seconds_bucket{le=\"0.5\"} 1\n\
         stancewatch_end_to_end_latency_seconds_sum 0.2\n\
         stancewatch_end_to_end_latency_seconds_count 1\n",
    );
    let q = |expr: &str| Query {
        origin: "t".into(),
        expr: expr.into(),
        record: None,
    };
    let rec = |name: &str, expr: &str| Query {
        record: Some(name.into()),
        ..q(expr)
    };
    let ok = [
        q("sum by (outcome) (rate(stancewatch_articles_total{job=~\"$job\"}[5m]))"),
        q("histogram_quantile(0.99, sum by (le) (rate(stancewatch_end_to_end_latency_seconds_bucket[5m])))"),
        q("stancewatch_end_to_end_latency_seconds_sum / stancewatch_end_to_end_latency_seconds_count"),
    ];
    assert_eq!(check_queries(&ok, &e), Vec::<String>::new());
    // Recording rules: the series they record, with the labels their expressions keep.
    let recorded = [
        rec(
            "stancewatch:articles:rate5m",
            "sum by (namespace, job, outcome) (rate(stancewatch_articles_total[5m]))",
        ),
        rec(
            "stancewatch:articles:all_rate5m",
            "sum without (outcome) (stancewatch:articles:rate5m)",
        ),
    ];
    let ok = [
        q("stancewatch:articles:rate5m{outcome=\"enriched\"} / on (namespace, job) stancewatch:articles:all_rate5m"),
        q("stancewatch:articles:rate5m{namespace=\"%q\", outcome=\"enriched\"}"),
    ];
    assert_eq!(
        check_queries(&[&recorded[..], &ok[..]].concat(), &e),
        Vec::<String>::new()
    );
    let bad = [
        q("rate(stancewatch_articles_by_source_total[5m])"),
        q("stancewatch_end_to_end_latency_seconds"),
        q("stancewatch_articles_total{source=\"x\"}"),
        q("stancewatch_articles_total{outcome=\"dropped\"}"),
        q("sum by (reason) (stancewatch_articles_total)"),
        q("stancewatch:articles:rate1h"),
        q("stancewatch:articles:all_rate5m{outcome=\"enriched\"}"),
        q("stancewatch:articles:rate5m{outcome=\"dropped\"}"),
        q("sum by (reason) (stancewatch:articles:rate5m)"),
    ];
    let bad = [&recorded[..], &bad[..]].concat();
    assert_eq!(
        check_queries(&bad, &e).len(),
        9,
        "{:?}",
        check_queries(&bad, &e)
    );
}

#[test]
fn dashboards_are_well_formed() {
    for name in ["operators.json", "analysts.json"] {
        let rel = format!("{DASHBOARDS}/{name}");
        let d: serde_json::Value = serde_json::from_str(&read(&rel)).unwrap();
        assert!(d["uid"]
            .as_str()
            .is_some_and(|u| u.starts_with("stancewatch-")));
        assert!(
            d["id"].is_null(),
            "{rel}: no numeric id, so that provisioning assigns one"
        );
        let panels = d["panels"].as_array().unwrap();
        let mut ids = BTreeSet::new();
        for p in panels {
            assert!(
                ids.insert(p["id"].as_i64().unwrap()),
                "{rel}: duplicate panel id"
            );
            if p["type"] != "row" && p["type"] != "text" {
                assert_eq!(
                    p["datasource"]["uid"], "${datasource}",
                    "{rel}: panel {} uses the datasource variable",
                    p["title"]
                );
            }
        }
        let vars: Vec<&str> = d["templating"]["list"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v["name"].as_str().unwrap())
            .collect();
        for v in ["datasource", "namespace", "job"] {
            assert!(vars.contains(&v), "{rel}: variable {v}");
        }
    }
}

// ---------------------------------------------------------------------------------------------------------
// values.yaml, read just far enough: nested mappings of scalars (what the chart's values file is made of).

/// Every scalar leaf of a block-style YAML document: path → value (quotes and comments stripped).
fn yaml_leaves(text: &str) -> BTreeMap<Vec<String>, String> {
    let mut out = BTreeMap::new();
    let mut stack: Vec<(usize, String)> = vec![];
    for line in text.lines() {
        let trimmed = line.trim_start();
        if trimmed.is_empty()
            || trimmed.starts_with('#')
            || trimmed.starts_with("- ")
            || trimmed == "---"
        {
            continue;
        }
        let indent = line.len() - trimmed.len();
        let Some((key, value)) = trimmed.split_once(':') else {
            continue;
        };
        while stack.last().is_some_and(|(i, _)| *i >= indent) {
            stack.pop();
        }
        let key = key.trim().trim_matches('"').to_string();
        let value = strip_yaml_comment(value.trim());
        if value.is_empty() {
            stack.push((indent, key));
        } else {
            let mut p: Vec<String> = stack.iter().map(|(_, k)| k.clone()).collect();
            p.push(key);
            out.insert(p, unquote(&value));
        }
    }
    out
}

fn strip_yaml_comment(v: &str) -> String {
    let mut in_quote = None;
    for (i, c) in v.char_indices() {
        match (c, in_quote) {
            ('"' | '\'', None) => in_quote = Some(c),
            (c, Some(q)) if c == q => in_quote = None,
            ('#', None) if i > 0 && v[..i].ends_with(' ') => return v[..i].trim().to_string(),
            _ => {}
        }
    }
    v.to_string()
}

fn unquote(v: &str) -> String {
    let v = v.trim();
    let quoted = |q: char| v.starts_with(q) && v.ends_with(q);
    if v.len() >= 2 && (quoted('"') || quoted('\'')) {
        v[1..v.len() - 1].to_string()
    } else {
        v.to_string()
    }
}

fn values_leaves() -> BTreeMap<Vec<String>, String> {
    yaml_leaves(&read(&format!("{CHART}/values.yaml")))
}

/// One of the chart's alert rule files with its placeholders filled from values.yaml, as Helm's `tpl` does.
fn render_alerts(template: &str, values: &BTreeMap<Vec<String>, String>) -> String {
    let mut out = String::new();
    let mut rest = template;
    while let Some(open) = rest.find("{{") {
        out.push_str(&rest[..open]);
        let after = &rest[open..];
        if let Some(raw) = after.strip_prefix("{{`") {
            let end = raw.find("`}}").expect("raw string closes");
            out.push_str(&raw[..end]);
            rest = &raw[end + 3..];
        } else {
            let end = after.find("}}").expect("action closes");
            let action = after[2..end].trim();
            let key = action
                .strip_prefix(".Values.")
                .unwrap_or_else(|| panic!("alert rules: only {{{{ .Values.x }}}} placeholders are supported, found {{{{ {action} }}}}"));
            let p: Vec<String> = key.split('.').map(String::from).collect();
            let v = values.get(&p).unwrap_or_else(|| {
                panic!("the alert rules use .Values.{key}, which values.yaml does not set")
            });
            out.push_str(v);
            rest = &after[end + 2..];
        }
    }
    out.push_str(rest);
    out
}

#[test]
fn compose_alert_rules_are_the_charts_rules_with_default_values() {
    let rendered = render_alerts(&read(ALERTS), &values_leaves());
    let from_groups = |s: &str| s[s.find("\ngroups:").expect("a groups: key") + 1..].to_string();
    let expected = from_groups(&rendered);
    if std::env::var_os("STANCEWATCH_BLESS").is_some() {
        let current = read(COMPOSE_ALERTS);
        let header = &current[..current.find("\ngroups:").unwrap() + 1];
        std::fs::write(path(COMPOSE_ALERTS), format!("{header}{expected}")).unwrap();
        eprintln!("wrote {COMPOSE_ALERTS}");
    }
    let actual = from_groups(&read(COMPOSE_ALERTS));
    if expected != actual {
        let first = expected
            .lines()
            .zip(actual.lines())
            .position(|(a, b)| a != b)
            .unwrap_or(0);
        panic!(
            "{COMPOSE_ALERTS} differs from {ALERTS} rendered with values.yaml's defaults (first at line {} after groups:); \
             regenerate it with STANCEWATCH_BLESS=1 cargo test --test deploy compose_alert_rules. Expected:\n{expected}",
            first + 1
        );
    }
    // Same alerts, same metrics.
    let names = |s: &str| -> Vec<String> {
        rule_queries("", s)
            .into_iter()
            .map(|q| q.origin)
            .collect::<Vec<_>>()
    };
    assert_eq!(names(&read(ALERTS)), names(&read(COMPOSE_ALERTS)));
}

/// The analysts' alerts: off by default, every placeholder of their file set in values.yaml, each alert keeping
/// the labels that name the entity (and the deployment), and linking to the analysts' dashboard with variables
/// that dashboard has, the window among them.
#[test]
fn analyst_alerts_name_the_entity_and_link_to_the_analysts_dashboard() {
    let values = values_leaves();
    let key = |k: &str| ["prometheusRule", "analysts", k].map(String::from).to_vec();
    assert_eq!(
        values[&key("enabled")],
        "false",
        "the analysts' alerts are off by default"
    );
    let template = read(ANALYST_ALERTS);
    // Panics on a placeholder values.yaml does not set.
    let rendered = render_alerts(&template, &values);

    let dashboard: serde_json::Value =
        serde_json::from_str(&read(&format!("{DASHBOARDS}/analysts.json"))).unwrap();
    let uid = dashboard["uid"].as_str().unwrap();
    let variables: BTreeMap<&str, &serde_json::Value> = dashboard["templating"]["list"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| (v["name"].as_str().unwrap(), v))
        .collect();
    let window = values[&key("window")].as_str();
    assert!(
        variables["window"]["options"]
            .as_array()
            .unwrap()
            .iter()
            .any(|o| o["value"] == window),
        "the analysts' dashboard offers the default window {window} in its window variable"
    );

    let alerts: Vec<Query> = rule_queries(ANALYST_ALERTS, &template)
        .into_iter()
        .filter(|q| q.record.is_none() && !q.origin.ends_with("/ annotation"))
        .collect();
    assert_eq!(alerts.len(), 2, "{alerts:?}");
    for a in &alerts {
        let kept = grouping_labels(&a.expr);
        for label in ["namespace", "job", "entity_id", "name"] {
            assert!(kept.contains(label), "{}: keeps no {label}", a.origin);
        }
    }
    let links: Vec<&str> = rendered
        .lines()
        .map(str::trim)
        .filter(|l| l.contains("/d/"))
        .collect();
    assert_eq!(
        links.len(),
        alerts.len(),
        "one dashboard link per alert: {links:?}"
    );
    for link in links {
        let (path, query) = link.split_once('?').unwrap();
        assert!(
            path.ends_with(&format!("/d/{uid}/stancewatch-analysts")),
            "{link}"
        );
        let vars: Vec<&str> = query
            .split('&')
            .filter_map(|p| p.split_once('=').unwrap().0.strip_prefix("var-"))
            .collect();
        for var in ["namespace", "job", "entity", "window"] {
            assert!(vars.contains(&var), "{link} sets no var-{var}");
        }
        for var in vars {
            assert!(
                variables.contains_key(var),
                "{link} sets var-{var}, a variable the analysts' dashboard does not have"
            );
        }
    }
}

// ---------------------------------------------------------------------------------------------------------
// The chart's configuration against config/default.toml and the loader.

/// Keys of config/default.toml: `section.key`, with librdkafka tables (kafka.consumer, kafka.producer) as one
/// key each.
fn default_toml_keys() -> BTreeMap<String, toml::Value> {
    let table: toml::Table = read("config/default.toml").parse().unwrap();
    let mut out = BTreeMap::new();
    for (section, v) in &table {
        for (key, value) in v.as_table().unwrap() {
            match value.as_table() {
                // A settings sub-table (nlp.accurate) is keys like any other; librdkafka's property tables
                // (kafka.consumer, kafka.producer) are passed through whole, so they stay one key.
                Some(sub) if section != "kafka" => {
                    for (k, v) in sub {
                        out.insert(format!("{section}.{key}.{k}"), v.clone());
                    }
                }
                _ => {
                    out.insert(format!("{section}.{key}"), value.clone());
                }
            }
        }
    }
    out
}

#[test]
fn chart_config_template_renders_every_setting_with_the_same_defaults() {
    let template = read(&format!("{CHART}/templates/_config.tpl"));
    let mut rendered = BTreeSet::new();
    let mut rest = template.as_str();
    while let Some(pos) = rest.find("$c.") {
        let tail = &rest[pos + 3..];
        let end = tail
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '.'))
            .unwrap_or(tail.len());
        rendered.insert(tail[..end].to_string());
        rest = &tail[end..];
    }
    let defaults = default_toml_keys();
    // http.listen is rendered from metrics.listenAddress and metrics.port, so that the container port, the
    // Service and the probes follow it.
    let expected: BTreeSet<String> = defaults
        .keys()
        .filter(|k| *k != "http.listen")
        .cloned()
        .collect();
    assert_eq!(
        rendered, expected,
        "templates/_config.tpl must render exactly the keys of config/default.toml"
    );
    assert!(template.contains("[http]\nlisten = {{ printf \"%s:%d\" .Values.metrics.listenAddress"));
    let port = defaults["http.listen"]
        .as_str()
        .unwrap()
        .rsplit(':')
        .next()
        .unwrap();
    let values = values_leaves();
    assert_eq!(
        values[&vec!["metrics".to_string(), "port".to_string()]],
        port
    );

    // Defaults: the chart's values are config/default.toml's, except where a cluster needs another one.
    let intentional: BTreeMap<&str, &str> = [
        (
            "kafka.brokers",
            "a broker Service name instead of localhost",
        ),
        ("log.format", "JSON lines for log collectors"),
    ]
    .into();
    for (key, default) in &defaults {
        if key == "http.listen" || intentional.contains_key(key.as_str()) {
            continue;
        }
        let mut p = vec!["config".to_string()];
        p.extend(key.split('.').map(String::from));
        match default {
            toml::Value::Table(props) => {
                let chart: BTreeMap<String, String> = values
                    .iter()
                    .filter(|(k, _)| k.len() == p.len() + 1 && k.starts_with(&p))
                    .map(|(k, v)| (k[p.len()].clone(), v.clone()))
                    .collect();
                let toml: BTreeMap<String, String> = props
                    .iter()
                    .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_string()))
                    .collect();
                assert_eq!(chart, toml, "values.yaml config.{key}");
            }
            other => {
                let want = match other {
                    toml::Value::String(s) => s.clone(),
                    toml::Value::Array(a) if a.is_empty() => "[]".into(),
                    v => v.to_string(),
                };
                assert_eq!(
                    values.get(&p),
                    Some(&want),
                    "values.yaml config.{key} should default to config/default.toml's value"
                );
            }
        }
    }
}

#[test]
fn configurations_rendered_from_the_chart_load() {
    let dir = path("target/chart-render");
    let Ok(entries) = std::fs::read_dir(&dir) else {
        eprintln!(
            "skipping: {} does not exist; .ci/chart_render.py renders the chart there (.ci/run runs it first)",
            dir.display()
        );
        return;
    };
    let mut variants: Vec<PathBuf> = entries.map(|e| e.unwrap().path()).collect();
    variants.sort();
    assert!(!variants.is_empty());
    for v in variants {
        let name = v.file_name().unwrap().to_string_lossy().into_owned();
        let env: BTreeMap<String, String> =
            serde_json::from_str(&std::fs::read_to_string(v.join("env.json")).unwrap()).unwrap();
        let config = Config::load_with_env(Some(&v.join("config.toml")), env.clone())
            .unwrap_or_else(|e| panic!("{name}: the chart's configuration does not load: {e}"));
        // Each librdkafka setting the chart passes by environment reaches both clients under its own name.
        for (var, value) in &env {
            let Some(rest) = var.strip_prefix("STANCEWATCH__KAFKA__") else {
                continue;
            };
            let (client, property) = rest.split_once("__").unwrap();
            let props = match client {
                "CONSUMER" => &config.kafka.consumer,
                "PRODUCER" => &config.kafka.producer,
                other => panic!("{name}: unexpected client {other}"),
            };
            assert_eq!(
                props.get(&property.to_ascii_lowercase()),
                Some(value),
                "{name}: {var}"
            );
        }
        println!(
            "{name}: loads; {} consumer and {} producer properties, drain {} ms, listen {}",
            config.kafka.consumer.len(),
            config.kafka.producer.len(),
            config.processing.shutdown_drain_timeout_ms,
            config.http.listen
        );
    }
}

// ---------------------------------------------------------------------------------------------------------
// Dockerfile and compose.

/// Dockerfile instructions, continuation lines joined and comments dropped: (stage, INSTRUCTION, arguments).
fn dockerfile_instructions(text: &str) -> Vec<(String, String, String)> {
    let mut joined = vec![];
    let mut current = String::new();
    for line in text.lines() {
        let t = line.trim();
        if t.starts_with('#') || (t.is_empty() && current.is_empty()) {
            continue;
        }
        if let Some(part) = t.strip_suffix('\\') {
            current.push_str(part);
            current.push(' ');
        } else {
            current.push_str(t);
            joined.push(std::mem::take(&mut current));
        }
    }
    let mut stage = String::new();
    let mut out = vec![];
    for ins in joined {
        if ins.is_empty() {
            continue;
        }
        let (op, args) = ins.split_once(' ').unwrap_or((&ins, ""));
        let op = op.to_ascii_uppercase();
        if op == "FROM" {
            let words: Vec<&str> = args.split_whitespace().collect();
            stage = match words.iter().position(|w| w.eq_ignore_ascii_case("AS")) {
                Some(i) => words[i + 1].to_string(),
                None => words[0].to_string(),
            };
        }
        out.push((stage.clone(), op, args.trim().to_string()));
    }
    out
}

/// Files the crate embeds at compile time (include_str!/include_bytes!), relative to the repository root.
fn embedded_files() -> Vec<String> {
    fn rs_files(dir: &Path, out: &mut Vec<PathBuf>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                rs_files(&p, out);
            } else if p.extension().is_some_and(|e| e == "rs") {
                out.push(p);
            }
        }
    }
    let mut files = vec![];
    rs_files(&path("src"), &mut files);
    for krate in std::fs::read_dir(path("crates")).unwrap() {
        rs_files(&krate.unwrap().path().join("src"), &mut files);
    }
    let mut out = vec![];
    for f in files {
        let text = std::fs::read_to_string(&f).unwrap();
        for mac in ["include_str!(", "include_bytes!("] {
            let mut rest = text.as_str();
            while let Some(pos) = rest.find(mac) {
                let args = &rest[pos + mac.len()..];
                // The arguments end at the first `)` that closes the macro (concat!/env! nest one level).
                let mut depth = 1;
                let mut end = 0;
                for (i, c) in args.char_indices() {
                    match c {
                        '(' => depth += 1,
                        ')' => {
                            depth -= 1;
                            if depth == 0 {
                                end = i;
                                break;
                            }
                        }
                        _ => {}
                    }
                }
                let inner = &args[..end];
                rest = &args[end..];
                if inner.contains("OUT_DIR") {
                    // Generated by a build script from sources it names itself.
                    continue;
                }
                let literals: Vec<&str> = inner
                    .split('"')
                    .skip(1)
                    .step_by(2)
                    .filter(|l| *l != "CARGO_MANIFEST_DIR")
                    .collect();
                let joined = literals.concat();
                // `repo_file!("models/ner.bin")`: a path from the repository root (see crates/nlp/src/lib.rs).
                let abs = if inner.contains("repo_file!") {
                    PathBuf::from(format!("{ROOT}/{joined}"))
                } else if inner.contains("CARGO_MANIFEST_DIR") {
                    PathBuf::from(format!("{ROOT}{joined}"))
                } else {
                    f.parent().unwrap().join(&joined)
                };
                let abs = abs
                    .canonicalize()
                    .unwrap_or_else(|e| panic!("{}: embedded file {joined}: {e}", f.display()));
                let rel = abs
                    .strip_prefix(Path::new(ROOT).canonicalize().unwrap())
                    .unwrap()
                    .to_string_lossy()
                    .into_owned();
                out.push(rel);
            }
        }
    }
    out.sort();
    out.dedup();
    out
}

#[test]
fn dockerfile_copies_what_the_build_needs_and_nothing_missing() {
    let instructions = dockerfile_instructions(&read("docker/Dockerfile"));
    let allowed: Vec<String> = read("docker/Dockerfile.dockerignore")
        .lines()
        .filter_map(|l| l.trim().strip_prefix('!'))
        .map(|s| s.trim_end_matches('/').to_string())
        .collect();
    let mut copied_into_build = BTreeSet::new();
    let mut runtime_stage = String::new();
    for (stage, op, args) in &instructions {
        if op == "FROM" {
            runtime_stage = stage.clone();
        }
        if op != "COPY" && op != "ADD" {
            continue;
        }
        let words: Vec<&str> = args.split_whitespace().collect();
        if words.iter().any(|w| w.starts_with("--from=")) {
            continue;
        }
        let operands: Vec<&str> = words
            .iter()
            .copied()
            .filter(|w| !w.starts_with("--"))
            .collect();
        let (sources, _dest) = operands.split_at(operands.len() - 1);
        for src in sources {
            assert!(
                path(src).exists(),
                "docker/Dockerfile copies {src}, which does not exist in the build context (the repository root)"
            );
            let top = src.split('/').next().unwrap();
            assert!(
                allowed.iter().any(|a| a == top || a == *src),
                "docker/Dockerfile copies {src}, but docker/Dockerfile.dockerignore does not allow it (add !{top})"
            );
            if stage == "build" {
                copied_into_build.insert(top.to_string());
            }
        }
    }
    for needed in ["Cargo.toml", "Cargo.lock", "src"] {
        assert!(
            copied_into_build.contains(needed),
            "build stage copies {needed}"
        );
    }
    let embedded = embedded_files();
    assert!(
        embedded.iter().any(|f| f.starts_with("kb/")),
        "found the embedded files: {embedded:?}"
    );
    for f in &embedded {
        let top = f.split('/').next().unwrap();
        assert!(
            copied_into_build.contains(top),
            "the crate embeds {f} (include_str!/include_bytes!), but docker/Dockerfile does not copy {top}/ into \
             the build stage: add `COPY {top} ./{top}` there and `!{top}` to docker/Dockerfile.dockerignore"
        );
    }

    // The runtime stage: a non-root numeric user (Kubernetes' runAsNonRoot checks it), the binary, and the
    // command line the chart's Deployment uses.
    let runtime: Vec<_> = instructions
        .iter()
        .filter(|(s, _, _)| *s == runtime_stage)
        .collect();
    let user = runtime
        .iter()
        .find(|(_, op, _)| op == "USER")
        .map(|(_, _, a)| a.clone())
        .expect("a USER in the runtime stage");
    let uid: u32 = user
        .split(':')
        .next()
        .unwrap()
        .parse()
        .expect("a numeric USER");
    assert_ne!(uid, 0);
    let values = values_leaves();
    assert_eq!(
        values[&vec!["podSecurityContext".to_string(), "runAsUser".to_string()]],
        uid.to_string(),
        "the chart runs as the image's user"
    );
    let cmd = runtime.iter().find(|(_, op, _)| op == "CMD").unwrap();
    let deployment = read(&format!("{CHART}/templates/deployment.yaml"));
    let args_line = deployment
        .lines()
        .find(|l| l.trim_start().starts_with("args:"))
        .unwrap();
    assert_eq!(
        cmd.2.replace(' ', ""),
        args_line
            .trim_start()
            .trim_start_matches("args:")
            .replace(' ', ""),
        "the image's CMD and the chart's args agree"
    );
    assert!(runtime.iter().any(|(_, op, a)| op == "COPY"
        && a.starts_with("config/default.toml")
        && a.ends_with("/etc/stancewatch/config.toml")));
    println!(
        "Dockerfile: build stage copies {copied_into_build:?}; {} embedded files covered; runtime user {uid}",
        embedded.len()
    );
}

#[test]
fn compose_mounts_exist() {
    let compose = read("docker/compose.yaml");
    let mut checked = 0;
    for line in compose.lines() {
        let t = line.trim_start().trim_start_matches("- ");
        if t.starts_with("./") || t.starts_with("../") {
            let host = t.split(':').next().unwrap();
            assert!(
                path("docker").join(host).exists(),
                "docker/compose.yaml mounts {host}, which does not exist"
            );
            checked += 1;
        }
    }
    assert!(checked >= 4, "compose mounts found: {checked}");
    assert!(compose.contains("dockerfile: docker/Dockerfile"));
    assert!(compose.contains("../helm/stancewatch/files/dashboards:"));
    assert!(compose.contains("./prometheus/alerts.yml:"));
}

#[test]
fn deployment_guide_shows_the_example_values_the_chart_checks_render() {
    let example = read(&format!("{CHART}/ci/readme-example-values.yaml"));
    let body: String = example
        .lines()
        .filter(|l| *l != "---" && !l.starts_with('#'))
        .map(|l| format!("{l}\n"))
        .collect();
    assert!(
        read("docs/deploy.md").contains(&format!("```yaml\n{body}```")),
        "docs/deploy.md's example values differ from {CHART}/ci/readme-example-values.yaml, which \
         .ci/chart-lint and .ci/chart_render.py check"
    );
}
