//! The `stancewatch` binary as a user runs it: `process` (the offline mode) and configuration errors of `run`.

use std::io::Write;
use std::process::{Command, Output, Stdio};

use stancewatch::enriched::EnrichedArticle;

const BIN: &str = env!("CARGO_BIN_EXE_stancewatch");
const EXAMPLES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/articles.jsonl");
const SAMPLE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../shared/samples/karabakh-opinion.json"
);

fn run_with_stdin(args: &[&str], stdin: &[u8]) -> Output {
    let mut child = Command::new(BIN)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // A run that fails before reading its input (e.g. a missing --kb file) closes stdin: that is not a test error.
    if let Err(e) = child.stdin.take().unwrap().write_all(stdin) {
        assert_eq!(
            e.kind(),
            std::io::ErrorKind::BrokenPipe,
            "writing the child's stdin: {e}"
        );
    }
    child.wait_with_output().unwrap()
}

fn enriched_lines(out: &Output) -> Vec<EnrichedArticle> {
    String::from_utf8(out.stdout.clone())
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).expect("every stdout line is an enriched record"))
        .collect()
}

#[test]
fn process_enriches_every_example_in_order() {
    let out = Command::new(BIN)
        .args(["process", EXAMPLES])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let records = enriched_lines(&out);
    let inputs: Vec<serde_json::Value> = std::fs::read_to_string(EXAMPLES)
        .unwrap()
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(
        inputs.len() >= 12,
        "examples/ holds a dozen or more articles"
    );
    assert_eq!(records.len(), inputs.len());
    for (r, i) in records.iter().zip(&inputs) {
        assert_eq!(r.id, i["id"].as_str().unwrap());
        assert!(!r.entities.is_empty(), "{} has entities", r.id);
        let body = i["body"].as_str().unwrap();
        for m in r.entities.iter().flat_map(|e| &e.mentions) {
            if m.field == stancewatch::nlp::Field::Body {
                let slice: String = body.chars().skip(m.start).take(m.end - m.start).collect();
                assert_eq!(
                    slice, m.text,
                    "{}: offsets are code points into the body",
                    r.id
                );
            }
        }
    }
    let french = records
        .iter()
        .find(|r| r.declared_language.as_deref() == Some("fr"))
        .expect("a French example");
    assert_eq!(french.language, "fr");
    assert!(
        french
            .warnings
            .contains(&"unsupported_language".to_string()),
        "non-English is flagged"
    );
}

#[test]
fn bad_lines_are_reported_with_their_number_and_the_rest_still_processed() {
    let input = concat!(
        "{\"id\":\"a\",\"body\":\"President Emmanuel Macron spoke in Paris.\"}\n",
        "{\"id\":\"b\",\"body\":\n",
        "\n",
        "{\"id\":\"c\"}\n",
        "{\"id\":\"d\",\"body\":\"Chancellor Friedrich Merz visited Warsaw.\"}\n",
    );
    let out = run_with_stdin(&["process", "-"], input.as_bytes());
    assert_eq!(out.status.code(), Some(2), "exit status says a line failed");
    let ids: Vec<String> = enriched_lines(&out).into_iter().map(|r| r.id).collect();
    assert_eq!(ids, ["a", "d"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("line 2: invalid_json"), "{stderr}");
    assert!(stderr.contains("line 4: missing_field"), "{stderr}");
}

#[test]
fn a_single_pretty_printed_object_is_accepted() {
    let pretty = "{\n  \"id\": \"x1\",\n  \"title\": \"Summit\",\n  \"body\": \"NATO leaders met in Brussels.\"\n}\n";
    let out = run_with_stdin(&["process"], pretty.as_bytes());
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let records = enriched_lines(&out);
    assert_eq!(records.len(), 1);
    assert_eq!(records[0].id, "x1");
}

#[test]
fn the_seed_article_yields_the_required_entities() {
    if !std::path::Path::new(SAMPLE).exists() {
        eprintln!("skipping: {SAMPLE} not found (../shared is not beside the checkout)");
        return;
    }
    let out = Command::new(BIN)
        .args(["process", SAMPLE])
        .output()
        .unwrap();
    assert!(out.status.success());
    let records = enriched_lines(&out);
    let names: Vec<(&str, &str)> = records[0]
        .entities
        .iter()
        .map(|e| (e.name.as_str(), e.entity_type.as_str()))
        .collect();
    for (needle, ty) in [
        ("Putin", "PERSON"),
        ("Pashinyan", "PERSON"),
        ("Erdo", "PERSON"),
        ("Russia", "LOCATION"),
        ("Turkey", "LOCATION"),
        ("Azerbaijan", "LOCATION"),
        ("Armenia", "LOCATION"),
    ] {
        assert!(
            names.iter().any(|(n, t)| n.contains(needle) && *t == ty),
            "{needle} ({ty}) missing from {names:?}"
        );
    }
}

#[test]
fn run_refuses_a_bad_configuration_and_names_the_key() {
    let out = Command::new(BIN)
        .args(["run"])
        .env("STANCEWATCH__PROCESSING__MAX_IN_FLIGHTS", "3")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("processing.max_in_flights"), "{stderr}");

    let out = Command::new(BIN)
        .args(["run", "--config", "/nonexistent.toml"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent.toml"));
}

#[test]
fn process_takes_a_watchlist_of_the_users_own_entities() {
    let dir = tempfile::tempdir().unwrap();
    let kb = dir.path().join("watchlist.jsonl");
    std::fs::write(
        &kb,
        "{\"name\":\"Harbour Energy Cooperative\",\"type\":\"ORG\",\"aliases\":[\"HEC\"]}\n",
    )
    .unwrap();
    let article =
        "{\"id\":\"w1\",\"body\":\"Shares of HEC fell after the merger talks collapsed.\"}\n";
    let out = run_with_stdin(
        &["process", "--kb", kb.to_str().unwrap()],
        article.as_bytes(),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let records = enriched_lines(&out);
    let hec = records[0]
        .entities
        .iter()
        .find(|e| e.name == "Harbour Energy Cooperative")
        .expect("watchlist entity");
    assert_eq!(hec.mentions[0].text, "HEC");

    let out = run_with_stdin(
        &["process", "--kb", "/nonexistent/w.jsonl"],
        article.as_bytes(),
    );
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent/w.jsonl"));
}

/// `train stance --silver`: distilled files change the model, deterministically, and the confidence floor
/// drops their unsure targets (here all of them, which must give the model trained without them).
#[test]
fn train_stance_takes_silver_files() {
    let dir = tempfile::tempdir().unwrap();
    let path = |name: &str| dir.path().join(name).to_str().unwrap().to_string();
    let line = |text: &str, to: usize, polarity: f64, teacher: Option<[f32; 3]>| {
        let mut target = serde_json::json!({"from": 0, "to": to, "polarity": polarity});
        if let Some(t) = teacher {
            target["teacher"] = serde_json::json!(t);
        }
        serde_json::json!({"sentence_normalized": text, "targets": [target]}).to_string() + "\n"
    };
    let gold = line("Smith praised the brave plan.", 5, 6.0, None)
        + &line("Jones attacked the corrupt deal.", 5, 2.0, None)
        + &line("Brown met the delegation on Monday.", 5, 4.0, None);
    let silver = line(
        "Kohl condemned the disastrous policy.",
        4,
        2.0,
        Some([0.8, 0.15, 0.05]),
    ) + &line(
        "Major welcomed the excellent result.",
        5,
        6.0,
        Some([0.05, 0.25, 0.7]),
    );
    std::fs::write(path("gold.jsonl"), &gold).unwrap();
    std::fs::write(path("silver.jsonl"), &silver).unwrap();
    let train = |out: &str, extra: &[&str]| {
        let (g, o) = (path("gold.jsonl"), path(out));
        let mut args = vec![
            "train", "stance", "--train", &g, "--dev", &g, "--out", &o, "--epochs", "3",
        ];
        args.extend_from_slice(extra);
        let run = Command::new(BIN).args(&args).output().unwrap();
        assert!(
            run.status.success(),
            "{}",
            String::from_utf8_lossy(&run.stderr)
        );
        (
            std::fs::read(&o).unwrap(),
            String::from_utf8_lossy(&run.stderr).into_owned(),
        )
    };
    let s = path("silver.jsonl");
    let (plain, _) = train("plain.bin", &[]);
    let (a, log) = train("a.bin", &["--silver", &s, "--silver-weight", "0.5"]);
    let (b, _) = train("b.bin", &["--silver", &s, "--silver-weight", "0.5"]);
    assert!(log.contains("2 targets of 2 sentences"), "{log}");
    assert_eq!(a, b, "the same command gives the same model");
    assert_ne!(a, plain, "silver examples change the model");
    let (none, log) = train(
        "none.bin",
        &["--silver", &s, "--silver-min-confidence", "0.9"],
    );
    assert!(log.contains("0 targets of 2 sentences"), "{log}");
    assert_eq!(none, plain);
}

/// `distill stance --conll`: prose sentences with their gold entities as targets, labelled by the transformer
/// (skips without the base weights, like the other accurate-mode tests).
#[test]
fn distill_stance_labels_conll_entities_with_the_teacher() {
    let base = concat!(env!("CARGO_MANIFEST_DIR"), "/models/base/all-minilm-l6-v2");
    if !std::path::Path::new(base)
        .join("model.safetensors")
        .is_file()
    {
        eprintln!("skipping: no base weights in {base} (run scripts/fetch-minilm.sh)");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let conll = dir.path().join("tiny.conll");
    let out = dir.path().join("silver.jsonl");
    let sentence = |tokens: &[(&str, &str)]| -> String {
        tokens
            .iter()
            .map(|(w, t)| format!("{w} X X {t}\n"))
            .collect::<String>()
            + "\n"
    };
    let text = String::from("-DOCSTART- -X- O O\n\n")
        + &sentence(&[("RUGBY", "O"), ("-", "O"), ("WALES", "I-LOC"), ("WIN", "O")])
        + &sentence(&[
            ("Critics", "O"),
            ("said", "O"),
            ("Peter", "I-PER"),
            ("Smith", "I-PER"),
            ("was", "O"),
            ("a", "O"),
            ("corrupt", "O"),
            (",", "O"),
            ("incompetent", "O"),
            ("liar", "O"),
            ("who", "O"),
            ("betrayed", "O"),
            ("Ruritania", "I-LOC"),
            (".", "O"),
        ]);
    std::fs::write(&conll, text).unwrap();
    let run = Command::new(BIN)
        .args(["distill", "stance", "--conll", conll.to_str().unwrap()])
        .args([
            "--out",
            out.to_str().unwrap(),
            "--base-dir",
            base,
            "--types",
            "PER",
        ])
        .output()
        .unwrap();
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let written = std::fs::read_to_string(&out).unwrap();
    let lines: Vec<serde_json::Value> = written
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    // The headline is not prose, and only PER targets were asked for.
    assert_eq!(lines.len(), 1, "{written}");
    assert_eq!(
        lines[0]["sentence_normalized"],
        "Critics said Peter Smith was a corrupt, incompetent liar who betrayed Ruritania."
    );
    let target = &lines[0]["targets"][0];
    assert_eq!(lines[0]["targets"].as_array().unwrap().len(), 1);
    assert_eq!(target["mention"], "Peter Smith");
    let p: Vec<f64> = serde_json::from_value(target["teacher"].clone()).unwrap();
    assert!((p.iter().sum::<f64>() - 1.0).abs() < 1e-3, "{p:?}");
    assert_eq!(
        target["polarity"], 2.0,
        "the teacher reads the insult as against: {p:?}"
    );
    // The file is what `train stance` reads.
    let parsed = lab::datasets::parse_newsmtsc(&written).unwrap();
    assert_eq!(
        parsed[0].targets[0].label,
        stancewatch::nlp::StanceLabel::Against
    );
}

/// A librdkafka property the clients refuse stops `run` before it serves anything, with the message once.
#[test]
fn run_refuses_a_bad_librdkafka_property_before_serving() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let out = Command::new(BIN)
        .args(["run"])
        .env("STANCEWATCH__KAFKA__CONSUMER__SESSION_TIMEOUT_MS", "soon")
        .env("STANCEWATCH__HTTP__LISTEN", format!("127.0.0.1:{port}"))
        .env("STANCEWATCH__KAFKA__BROKERS", "127.0.0.1:1")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("session.timeout.ms"), "{stderr}");
    assert_eq!(
        stderr
            .matches("Invalid value for configuration property")
            .count(),
        1,
        "the message once: {stderr}"
    );
    assert!(
        !stderr.contains("serving /metrics"),
        "nothing served before the clients were validated: {stderr}"
    );
}

/// Closed pipes: a reader of `process` output that stops early, and a log reader that goes away, end the
/// process quietly or keep it running; never SIGABRT.
#[test]
fn closed_stdout_or_stderr_never_aborts() {
    use std::io::Read;
    use std::os::unix::process::ExitStatusExt;

    let mut child = Command::new(BIN)
        .args(["process", EXAMPLES])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = [0u8; 16];
    child
        .stdout
        .as_mut()
        .unwrap()
        .read_exact(&mut first)
        .unwrap();
    drop(child.stdout.take()); // "| head -c 16"
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.signal(), None, "{:?}", out.status);
    assert!(
        out.status.success(),
        "{:?} {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );

    // `stancewatch run 2>&1 | head -3`: the brokers are unreachable, so it logs errors over and over.
    let mut child = Command::new(BIN)
        .args(["run"])
        .env("STANCEWATCH__KAFKA__BROKERS", "127.0.0.1:1")
        .env("STANCEWATCH__HTTP__LISTEN", "127.0.0.1:0")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = std::io::BufReader::new(child.stderr.take().unwrap());
    for _ in 0..3 {
        let mut line = String::new();
        std::io::BufRead::read_line(&mut stderr, &mut line).unwrap();
    }
    drop(stderr);
    std::thread::sleep(std::time::Duration::from_secs(3));
    assert!(
        child.try_wait().unwrap().is_none(),
        "still running with its log reader gone"
    );
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let status = child.wait().unwrap();
    assert_ne!(status.signal(), Some(libc::SIGABRT), "{status:?}");
    assert!(status.success(), "SIGTERM stops it cleanly: {status:?}");
}
