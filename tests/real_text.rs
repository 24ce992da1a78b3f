//! Real news text in the shapes real feeds deliver it: the NLP pipeline never panics, every span it reports
//! points at the text it quotes, and names and ids stay short and clean (`lab::feeds` holds the
//! perturbations and the checks; the fuzz target in `fuzz/` uses the same).
//!
//! The articles are the public datasets in `../shared/data` (PerSenT articles with their titles, NewsMTSC
//! sentences); the tests skip with a message when that folder is absent. Two passes: every PerSenT article
//! once with a combination of perturbations chosen by its index (all combinations occur), and proptest's
//! random articles, perturbations and positions.

use std::sync::OnceLock;

use lab::feeds::{check_analysis, describe, perturb, PERTURBATIONS};
use proptest::prelude::*;
use stancewatch::nlp::{Document, Pipeline};

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
