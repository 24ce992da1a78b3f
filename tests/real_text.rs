//! Real news text in the shapes real feeds deliver it: the NLP pipeline never panics, every span it reports
//! points at the text it quotes, and names and ids stay short and clean.
//!
//! The articles are the public datasets in `../shared/data` (PerSenT articles with their titles, NewsMTSC
//! sentences); the tests skip with a message when that folder is absent. Each article is perturbed the way
//! feeds mangle text: commas stripped to double spaces, possessive `'s` split off, brackets written as Penn
//! Treebank tokens (`-LRB-`), stray quotes, no-break spaces, zero-width and directional marks, words in
//! mathematical bold, odd line breaks. Two passes: every PerSenT article once with a combination of
//! perturbations chosen by its index (all combinations occur), and proptest's random articles, perturbations
//! and positions.

use std::sync::OnceLock;

use proptest::prelude::*;
use stancewatch::nlp::entities::{MAX_NAME_CHARS, MAX_NAME_TOKENS};
use stancewatch::nlp::kb::MAX_ID_BYTES;
use stancewatch::nlp::text::is_invisible;
use stancewatch::nlp::{Analysis, Document, Field, Pipeline};

const DATA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/data");

fn pipeline() -> &'static Pipeline {
    static PIPELINE: OnceLock<Pipeline> = OnceLock::new();
    PIPELINE.get_or_init(Pipeline::new)
}

/// (title, body) pairs of real news: PerSenT's articles, then NewsMTSC's sentences as bodies of their own.
fn articles() -> &'static [(String, String)] {
    static ARTICLES: OnceLock<Vec<(String, String)>> = OnceLock::new();
    ARTICLES.get_or_init(|| {
        let mut out = Vec::new();
        match std::fs::read_to_string(format!("{DATA}/persent/dev.csv")) {
            Ok(text) => {
                let mut reader = csv::Reader::from_reader(text.as_bytes());
                let headers = reader.headers().expect("PerSenT has a header").clone();
                let col = |name: &str| headers.iter().position(|h| h == name);
                let (title, doc) = (col("TITLE").unwrap(), col("DOCUMENT").unwrap());
                for row in reader.records().flatten() {
                    out.push((row[title].to_string(), row[doc].to_string()));
                }
            }
            Err(e) => eprintln!("skipping PerSenT articles: {DATA}/persent/dev.csv: {e}"),
        }
        match std::fs::read_to_string(format!("{DATA}/newsmtsc/dev-rw.jsonl")) {
            Ok(text) => out.extend(text.lines().filter_map(|l| {
                let v: serde_json::Value = serde_json::from_str(l).ok()?;
                Some((
                    String::new(),
                    v["sentence_normalized"].as_str()?.to_string(),
                ))
            })),
            Err(e) => eprintln!("skipping NewsMTSC sentences: {e}"),
        }
        out
    })
}

/// A named way of mangling text.
type Perturbation = (&'static str, fn(&str, &mut Rng) -> String);

/// The ways feeds mangle text, one bit each.
const PERTURBATIONS: [Perturbation; 9] = [
    ("commas stripped", |t, _| {
        t.replace(", ", "  ").replace(',', " ")
    }),
    ("'s split off", |t, _| {
        t.replace("'s ", " 's ").replace("’s ", " ’s ")
    }),
    ("bracket tokens", |t, _| {
        t.replace('(', "-LRB- ")
            .replace(')', " -RRB-")
            .replace('[', "-LSB-")
            .replace(']', "-RSB-")
    }),
    ("stray quotes", |t, r| {
        sprinkle(t, r, &["\"", "''", "``", "'", "“", "”"], 0.03)
    }),
    ("no-break spaces", |t, r| {
        t.chars()
            .map(|c| {
                if c == ' ' && r.chance(0.2) {
                    '\u{a0}'
                } else {
                    c
                }
            })
            .collect()
    }),
    ("zero-width and directional marks", |t, r| {
        let marks = [
            "\u{200b}", "\u{200c}", "\u{200d}", "\u{200e}", "\u{202a}", "\u{202c}", "\u{2066}",
            "\u{feff}", "\u{ad}",
        ];
        // Anywhere, inside words too.
        let mut out = String::new();
        for c in t.chars() {
            out.push(c);
            if r.chance(0.02) {
                out.push_str(marks[r.below(marks.len())]);
            }
        }
        out
    }),
    ("mathematical bold words", |t, r| {
        t.split(' ')
            .map(|w| {
                if r.chance(0.05) {
                    math_bold(w)
                } else {
                    w.to_string()
                }
            })
            .collect::<Vec<_>>()
            .join(" ")
    }),
    ("odd whitespace", |t, r| {
        t.chars()
            .map(|c| match c {
                ' ' if r.chance(0.02) => "\r\n".to_string(),
                ' ' if r.chance(0.02) => "\t ".to_string(),
                '.' if r.chance(0.1) => ".\n\n\n".to_string(),
                c => c.to_string(),
            })
            .collect()
    }),
    ("capitals and repeats", |t, r| {
        t.split(' ')
            .map(|w| match r.below(40) {
                0 => w.to_uppercase(),
                1 => format!("{w} {w} {w}"),
                _ => w.to_string(),
            })
            .collect::<Vec<_>>()
            .join(" ")
    }),
];

/// A small deterministic generator, so that a failure names the seed that reproduces it.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn chance(&mut self, p: f64) -> bool {
        (self.next() % 10_000) as f64 / 10_000.0 < p
    }
}

fn sprinkle(text: &str, r: &mut Rng, what: &[&str], p: f64) -> String {
    text.split(' ')
        .map(|w| {
            if r.chance(p) {
                format!("{}{w}", what[r.below(what.len())])
            } else {
                w.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// Letters and digits in Unicode's mathematical bold (U+1D400...), as social-media text styles them.
fn math_bold(word: &str) -> String {
    word.chars()
        .map(|c| {
            let offset = match c {
                'A'..='Z' => 0x1d400 + (c as u32 - 'A' as u32),
                'a'..='z' => 0x1d41a + (c as u32 - 'a' as u32),
                '0'..='9' => 0x1d7ce + (c as u32 - '0' as u32),
                _ => return c,
            };
            char::from_u32(offset).unwrap_or(c)
        })
        .collect()
}

fn perturb(text: &str, mask: u32, seed: u64) -> String {
    let mut rng = Rng(seed | 1);
    let mut out = text.to_string();
    for (i, (_, f)) in PERTURBATIONS.iter().enumerate() {
        if mask & (1 << i) != 0 {
            out = f(&out, &mut rng);
        }
    }
    out
}

fn describe(mask: u32) -> String {
    PERTURBATIONS
        .iter()
        .enumerate()
        .filter(|(i, _)| mask & (1 << i) != 0)
        .map(|(_, (name, _))| *name)
        .collect::<Vec<_>>()
        .join(", ")
}

/// Analyses one perturbed article and checks everything the contract promises about spans, names and ids.
fn check(title: &str, body: &str, what: &str) -> Result<(), String> {
    let title = Some(title).filter(|t| !t.trim().is_empty());
    let analysis = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        pipeline().analyze(&Document {
            title,
            body,
            declared_language: None,
        })
    }))
    .map_err(|_| format!("the pipeline panicked on {what}"))?;
    check_analysis(title, body, &analysis).map_err(|e| format!("{e} ({what})"))
}

fn slice(text: &str, start: usize, end: usize) -> String {
    text.chars()
        .skip(start)
        .take(end.saturating_sub(start))
        .collect()
}

fn check_analysis(title: Option<&str>, body: &str, a: &Analysis) -> Result<(), String> {
    for e in &a.entities {
        if e.name.chars().count() > MAX_NAME_CHARS || e.name.split(' ').count() > MAX_NAME_TOKENS {
            return Err(format!("name too long: {:?}", e.name));
        }
        if e.name.chars().any(is_invisible) || e.name.contains(['\n', '\t', '\u{a0}']) {
            return Err(format!("invisible or odd whitespace in name {:?}", e.name));
        }
        let brackets = ["LRB", "RRB", "LSB", "RSB", "LCB", "RCB"];
        if e.name
            .split(|c: char| !c.is_alphanumeric())
            .any(|w| brackets.contains(&w))
        {
            return Err(format!("a bracket token became an entity: {:?}", e.name));
        }
        if e.entity_id.len() > MAX_ID_BYTES || e.entity_id.is_empty() {
            return Err(format!(
                "bad id length {}: {:?}",
                e.entity_id.len(),
                e.entity_id
            ));
        }
        for m in &e.mentions {
            let field = match m.field {
                Field::Title => title.ok_or("a title mention without a title")?,
                Field::Body => body,
            };
            if slice(field, m.start, m.end) != m.text || m.start >= m.end {
                return Err(format!(
                    "mention {}..{} does not quote {:?}",
                    m.start, m.end, m.text
                ));
            }
        }
        for ev in &e.stance.evidence {
            if slice(body, ev.start, ev.end) != ev.text {
                return Err(format!(
                    "evidence {}..{} does not quote its text",
                    ev.start, ev.end
                ));
            }
        }
        if !(0.0..=1.0).contains(&e.stance.score) {
            return Err(format!("score {} out of range", e.stance.score));
        }
    }
    Ok(())
}

/// Every PerSenT article (and NewsMTSC sentence) once, with the combination of perturbations its index picks.
#[test]
fn every_real_article_survives_the_shapes_feeds_give_it() {
    let articles = articles();
    if articles.is_empty() {
        return;
    }
    let combos = 1u32 << PERTURBATIONS.len();
    let mut failures = Vec::new();
    for (i, (title, body)) in articles.iter().enumerate() {
        // Spread the combinations over the articles: article i gets mask (i * a large odd number) mod 2^n.
        let mask = (i as u32).wrapping_mul(2_654_435_761) % combos;
        let (t, b) = (
            perturb(title, mask, i as u64),
            perturb(body, mask, i as u64 + 1),
        );
        if let Err(e) = check(&t, &b, &format!("article {i} with {}", describe(mask))) {
            failures.push(e);
        }
    }
    eprintln!(
        "{} real articles perturbed and analysed, {} failed",
        articles.len(),
        failures.len()
    );
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// The reproduction from a real article: a title that makes "Flynn" a name in the body, and a line break
/// between a demonym and that name.
#[test]
fn a_name_never_spans_a_line_break() {
    let title = "Flynn news very very very bad source close to President Trump tells NBC";
    let body = "Stocks fall on report that Michael Flynn was directed by Trump to talk to Russians\n Flynn 's \
                plea is a very big deal said Peter Jones a lawyer.";
    check(title, body, "the Flynn article").unwrap();
    let a = pipeline().analyze(&Document {
        title: Some(title),
        body,
        declared_language: None,
    });
    assert!(
        a.entities
            .iter()
            .all(|e| !e.name.contains("Russians Flynn")),
        "{:?}",
        a.entities.iter().map(|e| &e.name).collect::<Vec<_>>()
    );
}

fn cases() -> u32 {
    std::env::var("STANCEWATCH_PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(64)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(), ..ProptestConfig::default() })]

    /// Random articles, perturbation sets and positions.
    #[test]
    fn random_real_articles_with_random_perturbations(pick in any::<usize>(), mask in any::<u32>(), seed in any::<u64>()) {
        let articles = articles();
        if !articles.is_empty() {
            let (title, body) = &articles[pick % articles.len()];
            let mask = mask % (1 << PERTURBATIONS.len());
            let (t, b) = (perturb(title, mask, seed), perturb(body, mask, seed.wrapping_add(1)));
            let what = format!("article {} with {} (seed {seed})", pick % articles.len(), describe(mask));
            prop_assert!(check(&t, &b, &what).is_ok(), "{}", check(&t, &b, &what).unwrap_err());
        }
    }
}
