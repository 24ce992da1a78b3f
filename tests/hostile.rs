//! Hostile input: whatever bytes arrive, parsing and the NLP pipeline neither panic nor take time out of
//! proportion to the input's size, and every span they report points into the text they were given.
//!
//! Two kinds of test: property tests (proptest) over arbitrary bytes, arbitrary JSON articles and arbitrary
//! Unicode bodies, kept brief so they run in CI; and named cases that have broken text processors before.
//! Time is bounded relative to the same run's cost per byte on the example articles, so the bound does not
//! depend on the machine or the build profile: it catches work that grows faster than the input, not a slow
//! machine.

use std::sync::OnceLock;
use std::time::{Duration, Instant};

use proptest::prelude::*;
use stancewatch::analyze::enrich;
use stancewatch::article::{Article, Limits, RejectReason};
use stancewatch::enriched::EnrichedArticle;
use stancewatch::nlp::{Analysis, Document, Field, Pipeline};

const EXAMPLES: &str = include_str!("../examples/articles.jsonl");
const LIMITS: Limits = Limits {
    max_body_bytes: 1 << 20,
};
/// How many times the examples' cost per byte a hostile input may take (plus a fixed allowance).
const PER_BYTE_FACTOR: f64 = 8.0;
const ALLOWANCE: Duration = Duration::from_millis(200);

fn pipeline() -> &'static Pipeline {
    static PIPELINE: OnceLock<Pipeline> = OnceLock::new();
    PIPELINE.get_or_init(Pipeline::new)
}

/// Seconds per body byte on the example articles, measured once per test run.
fn reference_cost_per_byte() -> f64 {
    static COST: OnceLock<f64> = OnceLock::new();
    *COST.get_or_init(|| {
        let bodies: Vec<String> = EXAMPLES
            .lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .filter_map(|v| v["body"].as_str().map(str::to_string))
            .collect();
        analyze(&bodies[0]); // warm-up
        let started = Instant::now();
        let bytes: usize = bodies
            .iter()
            .map(|b| {
                analyze(b);
                b.len()
            })
            .sum();
        started.elapsed().as_secs_f64() / bytes as f64
    })
}

fn analyze(body: &str) -> Analysis {
    pipeline().analyze(&Document {
        title: None,
        body,
        declared_language: None,
    })
}

/// The code points `start..end` of `text`.
fn chars(text: &str, start: usize, end: usize) -> String {
    text.chars()
        .skip(start)
        .take(end.saturating_sub(start))
        .collect()
}

/// Every mention and evidence span points at the text it quotes.
fn assert_spans_consistent(title: Option<&str>, body: &str, analysis: &Analysis) {
    for e in &analysis.entities {
        for m in &e.mentions {
            let field = match m.field {
                Field::Title => title.expect("a title mention needs a title"),
                Field::Body => body,
            };
            assert_eq!(
                chars(field, m.start, m.end),
                m.text,
                "mention span {}..{} of {:?}",
                m.start,
                m.end,
                e.name
            );
        }
        for ev in &e.stance.evidence {
            assert_eq!(chars(body, ev.start, ev.end), ev.text, "evidence span");
        }
    }
    for r in &analysis.relations {
        assert_eq!(
            chars(body, r.evidence.start, r.evidence.end),
            r.evidence.text,
            "relation evidence span"
        );
    }
}

/// Analyses `body` and checks the time it took against the reference cost per byte.
fn analyze_within_bound(name: &str, body: &str) -> Analysis {
    let reference = reference_cost_per_byte();
    let started = Instant::now();
    let analysis = analyze(body);
    let elapsed = started.elapsed();
    let bound =
        Duration::from_secs_f64(reference * PER_BYTE_FACTOR * body.len() as f64) + ALLOWANCE;
    eprintln!(
        "{name}: {} bytes in {elapsed:?} ({:.1}x the examples' cost per byte; bound {bound:?}), {} entities",
        body.len(),
        elapsed.as_secs_f64() / (reference * body.len().max(1) as f64),
        analysis.entities.len()
    );
    assert!(
        elapsed <= bound,
        "{name}: {} bytes took {elapsed:?}, more than {PER_BYTE_FACTOR}x the examples' cost per byte ({bound:?})",
        body.len()
    );
    assert_spans_consistent(None, body, &analysis);
    analysis
}

fn json_article(body: &str) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({"id": "hostile", "body": body})).unwrap()
}

/// Parses and enriches as the service does; a panic inside the pipeline would come back as NlpPanic.
fn through_service_path(payload: &[u8]) -> Result<EnrichedArticle, RejectReason> {
    let article = Article::parse(payload, LIMITS).map_err(|r| r.reason)?;
    enrich(pipeline(), article).map_err(|r| r.reason)
}

#[test]
fn one_mebibyte_single_line_body() {
    let prose: String = EXAMPLES
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter_map(|v| v["body"].as_str().map(|b| b.replace('\n', " ")))
        .collect::<Vec<_>>()
        .join(" ");
    let mut body = String::with_capacity(1 << 20);
    while body.len() < (1 << 20) - prose.len() {
        body.push_str(&prose);
        body.push(' ');
    }
    while body.len() < 1 << 20 {
        body.push('x');
    }
    assert_eq!(body.len(), 1 << 20);
    let analysis = analyze_within_bound("1 MiB single line", &body);
    assert!(!analysis.entities.is_empty());
    // The service path accepts a body of exactly the limit and refuses one byte more.
    assert!(through_service_path(&json_article(&body)).is_ok());
    body.push('x');
    assert_eq!(
        through_service_path(&json_article(&body)).unwrap_err(),
        RejectReason::TooLarge
    );
}

#[test]
fn a_hundred_thousand_capitalised_tokens() {
    // Distinct capitalised words: every token is a name candidate and no two are the same entity.
    let body: String = (0..100_000u32)
        .map(|i| {
            let mut w = String::new();
            let mut x = i.wrapping_mul(2_654_435_761);
            w.push(char::from(b'A' + (x % 26) as u8));
            for _ in 0..5 {
                x /= 26;
                w.push(char::from(b'a' + (x % 26) as u8));
            }
            w
        })
        .collect::<Vec<_>>()
        .join(" ");
    analyze_within_bound("100,000 capitalised tokens", &body);
}

#[test]
fn many_distinct_names_and_acronyms() {
    // Nothing may compare every entity with every other.
    let mut body = String::new();
    for i in 0..20_000u32 {
        let w = |k: u32| -> String {
            let mut x = i * 7 + k;
            (0..4)
                .map(|_| {
                    let c = char::from(b'a' + (x % 26) as u8);
                    x /= 26;
                    c
                })
                .collect()
        };
        let (a, b) = (w(0), w(1));
        let cap = |s: &str| s[..1].to_uppercase() + &s[1..];
        body.push_str(&format!(
            "{} {} met {}{} in {}. ",
            cap(&a),
            cap(&b),
            a[..2].to_uppercase(),
            b[..1].to_uppercase(),
            cap(&b)
        ));
    }
    analyze_within_bound("20,000 distinct names and acronyms", &body);
}

#[test]
fn repeated_words_and_names() {
    analyze_within_bound("one word repeated", &"word ".repeat(1 << 18));
    analyze_within_bound("one name repeated", &"Putin ".repeat(100_000));
    analyze_within_bound("one place repeated", &"Abbey Road ".repeat(50_000));
}

#[test]
fn only_punctuation() {
    let body = "!?.,;:—–-…\"'()[]{}«»„“”‘’ ".repeat(20_000);
    let analysis = analyze_within_bound("only punctuation", &body);
    assert!(analysis.entities.is_empty());
    assert!(through_service_path(&json_article(&body)).is_ok());
}

#[test]
fn zero_width_and_right_to_left_characters() {
    let piece = "Vladimir\u{200B} Putin\u{200D} met Recep\u{FEFF} Tayyip Erdoğan in \u{202E}Ankara\u{202C}. \
                 \u{200F}רוסיה ותורכיה\u{200E} signed a deal; مصر رحبت بالاتفاق. Armenia\u{0301} protested. ";
    let body = piece.repeat(2_000);
    analyze_within_bound("zero-width and right-to-left", &body);
    assert!(through_service_path(&json_article(&body)).is_ok());
}

#[test]
fn mixed_scripts() {
    let piece = "Владимир Путин said 中国 and 日本 would meet. नरेंद्र मोदी welcomed Olaf Scholz 🇩🇪🤝 in Delhi; \
                 Ελλάδα and Türkiye disagreed. 한국 정부 and the United Nations responded. ";
    let body = piece.repeat(2_000);
    analyze_within_bound("mixed scripts", &body);
    assert!(through_service_path(&json_article(&body)).is_ok());
}

#[test]
fn deeply_nested_json_is_rejected_not_a_stack_overflow() {
    for depth in [1_000usize, 100_000] {
        // Nested inside an extra field of an otherwise valid article, and as the whole payload.
        let nested = format!("{}{}", "[".repeat(depth), "]".repeat(depth));
        let in_field = format!(r#"{{"id": "n", "body": "Putin spoke.", "extra": {nested}}}"#);
        let objects = format!("{}{}", r#"{"a":"#.repeat(depth), "}".repeat(depth));
        for payload in [in_field, nested, objects] {
            assert_eq!(
                through_service_path(payload.as_bytes()).unwrap_err(),
                RejectReason::InvalidJson,
                "depth {depth}"
            );
        }
    }
}

#[test]
fn invalid_utf8_is_rejected() {
    let mut payload = br#"{"id": "u", "body": "Putin "#.to_vec();
    payload.extend_from_slice(&[0xff, 0xfe, 0xc3, 0x28, 0xe2, 0x82]);
    payload.extend_from_slice(br#" spoke."}"#);
    assert_eq!(
        through_service_path(&payload).unwrap_err(),
        RejectReason::InvalidUtf8
    );
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, failure_persistence: None, ..ProptestConfig::default() })]

    /// Any bytes at all: an article or a reason, never a panic.
    #[test]
    fn arbitrary_bytes_are_parsed_or_rejected(bytes in proptest::collection::vec(any::<u8>(), 0..4096)) {
        let _ = Article::parse(&bytes, LIMITS);
    }

    /// Any Unicode body and title through parsing and the whole pipeline: no panic, consistent spans.
    #[test]
    fn arbitrary_unicode_articles_are_analysed(
        title in proptest::option::of("\\PC{0,80}"),
        body in "\\PC{1,1500}",
    ) {
        let payload = serde_json::to_vec(&serde_json::json!({"id": "p", "title": title, "body": body})).unwrap();
        match through_service_path(&payload) {
            Ok(enriched) => {
                let analysis = pipeline().analyze(&Document { title: title.as_deref(), body: &body, declared_language: None });
                assert_spans_consistent(title.as_deref(), &body, &analysis);
                prop_assert_eq!(enriched.entities.len(), analysis.entities.len());
            }
            Err(reason) => prop_assert!(
                reason == RejectReason::EmptyField && body.trim().is_empty(),
                "a body with text was rejected: {:?}", reason
            ),
        }
    }

    /// Text shaped like news (capitalised runs, punctuation, quotes, digits) rather than uniform noise, where
    /// the entity and stance code do the most work.
    #[test]
    fn news_shaped_noise_is_analysed(
        words in proptest::collection::vec(
            prop_oneof![
                "[A-Z][a-z]{1,8}",
                "[a-z]{1,8}",
                "[A-Z]{2,5}",
                "[0-9]{1,4}",
                Just(".".to_string()), Just(",".to_string()), Just("\"".to_string()),
                Just("not".to_string()), Just("but".to_string()), Just("said".to_string()),
                Just("Putin".to_string()), Just("Armenia".to_string()), Just("U.S.".to_string()),
            ],
            1..400,
        )
    ) {
        let body = words.join(" ");
        let analysis = analyze(&body);
        assert_spans_consistent(None, &body, &analysis);
        for e in &analysis.entities {
            prop_assert!((0.0..=1.0).contains(&e.stance.score));
            prop_assert!((0.0..=1.0).contains(&e.salience));
        }
    }
}
