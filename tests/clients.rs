//! The service driven by a client nobody here wrote: Debian's `kcat` (librdkafka's own command-line client)
//! publishes into `stancewatch demo --serve` and reads the output topics back, as a user trying the service
//! would. It sends what real producers send and our own client code never does: records without a key,
//! tombstones, records at and over the size limit, headers. Skipped, with the reason, when `kcat` is not
//! installed (`.ci/run` installs it).

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// The demo in serve mode, killed when dropped.
struct Demo {
    child: Child,
    bootstrap: String,
    metrics: String,
}

impl Drop for Demo {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn kcat_installed() -> bool {
    Command::new("kcat")
        .arg("-V")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

fn start_demo() -> Demo {
    let mut child = Command::new(env!("CARGO_BIN_EXE_stancewatch"))
        .args(["demo", "--serve", "--listen", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("starting stancewatch demo");
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    // Keep reading, so that the demo never blocks on a full pipe.
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let (mut bootstrap, mut metrics) = (None, None);
    let deadline = Instant::now() + Duration::from_secs(60);
    while bootstrap.is_none() || metrics.is_none() {
        let line = rx
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
            .expect("the demo prints its cluster and metrics addresses");
        if let Some(rest) = line.strip_prefix("mock Kafka cluster at ") {
            bootstrap = rest.split(';').next().map(str::to_string);
        }
        if let Some(rest) = line.strip_prefix("service started; metrics at ") {
            metrics = Some(rest.trim().to_string());
        }
    }
    Demo {
        child,
        bootstrap: bootstrap.unwrap(),
        metrics: metrics.unwrap(),
    }
}

/// Runs kcat with `args`, feeding it `input`; returns its stdout.
fn kcat(args: &[&str], input: &[u8]) -> String {
    let mut child = Command::new("kcat")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("kcat runs");
    child.stdin.take().unwrap().write_all(input).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "kcat {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Reads a whole topic with kcat: one line per record, `key|headers|value length|value` (NULL for nulls).
fn read_topic(bootstrap: &str, topic: &str) -> Vec<String> {
    kcat(
        &[
            "-b",
            bootstrap,
            "-t",
            topic,
            "-C",
            "-o",
            "beginning",
            "-e",
            "-q",
            "-Z",
            "-f",
            "%k|%h|%S|%s\n",
        ],
        b"",
    )
    .lines()
    .map(str::to_string)
    .collect()
}

fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(300));
    }
}

fn article(id: &str, body_bytes: usize) -> String {
    let prose = "Chancellor Friedrich Merz praised NATO allies in Berlin while critics condemned the plan. ";
    let mut body = prose.repeat(body_bytes / prose.len() + 1);
    body.truncate(body_bytes);
    serde_json::json!({"id": id, "body": body}).to_string()
}

#[test]
fn kcat_records_of_every_shape_end_enriched_or_dead_lettered() {
    if !kcat_installed() {
        eprintln!("skipping: kcat is not installed (apt-get install kcat)");
        return;
    }
    let demo = start_demo();
    let b = demo.bootstrap.as_str();
    let max = 1 << 20; // the demo runs with the default processing.max_article_bytes
    let produce = |extra: &[&str], input: &[u8]| {
        let mut args = vec![
            "-b",
            b,
            "-t",
            "articles",
            "-P",
            "-X",
            "message.max.bytes=4000000",
        ];
        args.extend_from_slice(extra);
        kcat(&args, input);
    };
    // No key, with a trace header.
    produce(
        &[
            "-H",
            "traceparent=00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
        ],
        format!("{}\n", article("kcat-nokey", 300)).as_bytes(),
    );
    // A tombstone: -Z sends the empty value as null.
    produce(&["-Z", "-K", "\t"], b"kcat-tomb\t\n");
    // Exactly at the body limit, and one byte over it; the delimiter is a byte no article contains.
    produce(
        &["-K", "\t", "-D", "\x01"],
        format!(
            "kcat-max\t{}\x01kcat-over\t{}\x01",
            article("kcat-max", max),
            article("kcat-over", max + 1)
        )
        .as_bytes(),
    );

    let mut enriched = Vec::new();
    let mut dlq = Vec::new();
    wait_for("kcat's records in the output topics", || {
        enriched = read_topic(b, "articles.enriched");
        dlq = read_topic(b, "articles.dlq");
        let has =
            |lines: &[String], key: &str| lines.iter().any(|l| l.starts_with(&format!("{key}|")));
        has(&enriched, "kcat-nokey")
            && has(&enriched, "kcat-max")
            && has(&dlq, "kcat-tomb")
            && has(&dlq, "kcat-over")
    });
    let line = |lines: &[String], key: &str| -> String {
        lines
            .iter()
            .find(|l| l.starts_with(&format!("{key}|")))
            .cloned()
            .unwrap()
    };
    let nokey = line(&enriched, "kcat-nokey");
    assert!(
        nokey.contains("stancewatch.source.key=NULL"),
        "a null input key is recorded as such: {nokey}"
    );
    assert!(
        nokey.contains("traceparent=00-0af7651916cd43dd8448eb211c80319c"),
        "{nokey}"
    );
    let tomb = line(&dlq, "kcat-tomb");
    assert!(tomb.contains("stancewatch.error.class=tombstone"), "{tomb}");
    assert!(
        tomb.ends_with("|-1|NULL"),
        "a tombstone stays null in the DLQ: {tomb}"
    );
    let over = line(&dlq, "kcat-over");
    assert!(over.contains("stancewatch.error.class=too_large"), "{over}");
    let over_len: usize = over.split('|').nth(2).unwrap().parse().unwrap();
    assert_eq!(
        over_len,
        article("kcat-over", max + 1).len(),
        "the original bytes, all of them"
    );
    let max_line = line(&enriched, "kcat-max");
    let max_len: usize = max_line.split('|').nth(2).unwrap().parse().unwrap();
    assert!(
        max_len <= 1_000_000,
        "the enriched record fits output.max_record_bytes: {max_len}"
    );

    // Entity-stance records of a record without source or published_at carry them as null.
    let stances = read_topic(b, "entity-stances");
    let mine = stances
        .iter()
        .find(|l| l.contains("\"article_id\":\"kcat-nokey\""))
        .expect("entity-stance records of kcat's article");
    assert!(
        mine.contains("\"source\":null") && mine.contains("\"published_at\":null"),
        "{mine}"
    );

    // The service's own account agrees.
    let metrics = http_get(&demo.metrics);
    assert!(
        metrics.contains("stancewatch_dlq_records_total{reason=\"tombstone\"} 1"),
        "tombstone counted"
    );
    assert!(
        metrics.contains("stancewatch_dlq_records_total{reason=\"too_large\"} 1"),
        "too_large counted"
    );
    assert!(metrics.contains("stancewatch_blocked_partitions 0"));
}

/// GET over plain HTTP/1.1 to a `http://host:port/path` URL; the body.
fn http_get(url: &str) -> String {
    let rest = url.strip_prefix("http://").unwrap();
    let (host, path) = rest.split_once('/').unwrap();
    let mut stream = std::net::TcpStream::connect(host).unwrap();
    write!(
        stream,
        "GET /{path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut body = String::new();
    std::io::Read::read_to_string(&mut stream, &mut body).unwrap();
    body
}
