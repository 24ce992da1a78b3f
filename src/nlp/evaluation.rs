//! Quality measurements on the public datasets in `../shared/data` (see its README): CoNLL-2003 dev for
//! entity recognition, NewsMTSC dev for mention stance, PerSenT dev for article-level stance.
//!
//! They are `#[ignore]`d because they read large files and print reports rather than assert: run them with
//! `cargo test --release evaluation -- --ignored --nocapture`. Each skips with a message when its data is absent.

use std::collections::BTreeMap;

use super::lexicon::Lexicon;
use super::text::TextView;
use super::*;

/// Where the datasets live: `../shared/data` beside the checkout.
pub(crate) const DATA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/data");

/// A dataset file under [`DATA`], or None (with the reason printed) so that tests skip when it is absent.
pub(crate) fn read(rel: &str) -> Option<String> {
    let path = format!("{DATA}/{rel}");
    match std::fs::read_to_string(&path) {
        Ok(s) => Some(s),
        Err(e) => {
            eprintln!("skipping: {path}: {e}");
            None
        }
    }
}

/// Macro-F1 and accuracy over the three stance labels.
fn macro_f1(pairs: &[(StanceLabel, StanceLabel)]) -> (f64, f64) {
    let mut f1s = Vec::new();
    for label in StanceLabel::ALL {
        let tp = pairs
            .iter()
            .filter(|(g, p)| *g == label && *p == label)
            .count() as f64;
        let predicted = pairs.iter().filter(|(_, p)| *p == label).count() as f64;
        let gold = pairs.iter().filter(|(g, _)| *g == label).count() as f64;
        let (precision, recall) = (tp / predicted.max(1.0), tp / gold.max(1.0));
        f1s.push(if precision + recall > 0.0 {
            2.0 * precision * recall / (precision + recall)
        } else {
            0.0
        });
    }
    let correct = pairs.iter().filter(|(g, p)| g == p).count() as f64;
    (
        f1s.iter().sum::<f64>() / 3.0,
        correct / pairs.len().max(1) as f64,
    )
}

fn confusion(pairs: &[(StanceLabel, StanceLabel)]) -> String {
    let mut out = String::from("gold\\pred favor against neutral\n");
    for g in StanceLabel::ALL {
        out.push_str(&format!("{:<9}", g.as_str()));
        for p in StanceLabel::ALL {
            out.push_str(&format!(
                " {:>6}",
                pairs.iter().filter(|x| x.0 == g && x.1 == p).count()
            ));
        }
        out.push('\n');
    }
    out
}

#[test]
#[ignore]
fn evaluation_newsmtsc_mention_stance() {
    let lexicon = Lexicon::embedded();
    let model = stance::embedded_model();
    for file in ["newsmtsc/dev-rw.jsonl", "newsmtsc/dev-mt.jsonl"] {
        let Some(text) = read(file) else { return };
        let sentences = stance::data::parse_newsmtsc(&text).unwrap();
        let examples = stance::train::examples(&lexicon, &sentences, model.bits, model.vectors());
        let pairs = stance::train::predict_all(&model, &examples);
        let (f1, acc) = macro_f1(&pairs);
        eprintln!(
            "{file}: F1m {f1:.3} accuracy {acc:.3} (n = {})",
            pairs.len()
        );
        eprintln!("{}", confusion(&pairs));
    }
}

/// Minimal RFC 4180 reader: quoted fields may hold commas, doubled quotes and line breaks.
fn parse_csv(text: &str) -> Vec<Vec<String>> {
    let mut rows = Vec::new();
    let mut row = Vec::new();
    let mut field = String::new();
    let mut quoted = false;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match (quoted, c) {
            (true, '"') if chars.peek() == Some(&'"') => {
                chars.next();
                field.push('"');
            }
            (true, '"') => quoted = false,
            (true, c) => field.push(c),
            (false, '"') => quoted = true,
            (false, ',') => row.push(std::mem::take(&mut field)),
            (false, '\n') => {
                row.push(std::mem::take(&mut field));
                rows.push(std::mem::take(&mut row));
            }
            (false, '\r') => {}
            (false, c) => field.push(c),
        }
    }
    if !field.is_empty() || !row.is_empty() {
        row.push(field);
        rows.push(row);
    }
    rows
}

#[test]
#[ignore]
fn evaluation_persent_article_stance() {
    let Some(text) = read("persent/dev.csv") else {
        return;
    };
    let rows = parse_csv(&text);
    let header = &rows[0];
    let col = |name: &str| header.iter().position(|h| h == name).unwrap();
    let (target_col, title_col, doc_col, gold_col) = (
        col("TARGET_ENTITY"),
        col("TITLE"),
        col("DOCUMENT"),
        col("TRUE_SENTIMENT"),
    );
    let pipeline = Pipeline::new();
    let mut pairs = Vec::new();
    let mut found = 0;
    for row in rows.iter().skip(1).filter(|r| r.len() > gold_col) {
        let gold = match row[gold_col].trim() {
            "Positive" => StanceLabel::Favor,
            "Negative" => StanceLabel::Against,
            _ => StanceLabel::Neutral,
        };
        let target = row[target_col].trim();
        let analysis = pipeline.analyze(&Document {
            title: Some(row[title_col].as_str()).filter(|t| !t.is_empty()),
            body: &row[doc_col],
            declared_language: Some("en"),
        });
        // The offset contract, on real articles and titles.
        for m in analysis.entities.iter().flat_map(|e| &e.mentions) {
            let field = if m.field == Field::Title {
                &row[title_col]
            } else {
                &row[doc_col]
            };
            let slice: String = field.chars().skip(m.start).take(m.end - m.start).collect();
            assert_eq!(slice, m.text);
        }
        let last = target.split_whitespace().last().unwrap_or(target);
        let entity = analysis.entities.iter().find(|e| {
            e.name == target
                || e.mentions.iter().any(|m| m.text == target)
                || e.name.ends_with(last)
        });
        found += usize::from(entity.is_some());
        pairs.push((
            gold,
            entity.map_or(StanceLabel::Neutral, |e| e.stance.label),
        ));
    }
    let (f1, acc) = macro_f1(&pairs);
    eprintln!(
        "persent dev: F1m {f1:.3} accuracy {acc:.3} (n = {}, target found in {found})",
        pairs.len()
    );
    eprintln!("{}", confusion(&pairs));
}

/// Gold and predicted (start, end, type) spans of CoNLL-2003 dev, documents rebuilt as one sentence per line.
#[test]
#[ignore]
fn evaluation_conll_entities() {
    let Some(text) = read("conll2003/eng.testa") else {
        return;
    };
    let kb = kb::KnowledgeBase::embedded();
    let rec = entities::Recogniser::new(&kb, ner::Tagger::embedded(&kb).unwrap());
    let mut docs: Vec<Vec<Vec<(String, String)>>> = Vec::new();
    let mut sentence = Vec::new();
    for line in text.lines() {
        if line.starts_with("-DOCSTART-") {
            docs.push(Vec::new());
            continue;
        }
        if line.trim().is_empty() {
            if !sentence.is_empty() {
                docs.last_mut().unwrap().push(std::mem::take(&mut sentence));
            }
            continue;
        }
        let cols: Vec<&str> = line.split(' ').collect();
        sentence.push((cols[0].to_string(), cols[3].to_string()));
    }
    let (mut tp_typed, mut tp_span, mut n_gold, mut n_pred) = (0, 0, 0, 0);
    let mut per_type: BTreeMap<&str, (usize, usize, usize)> = BTreeMap::new();
    for doc in &docs {
        let mut body = String::new();
        let mut gold = Vec::new();
        let mut chars = 0;
        for sent in doc {
            let mut open: Option<(usize, String)> = None;
            let mut last_end = 0;
            for (i, (tok, tag)) in sent.iter().enumerate() {
                if i > 0 {
                    body.push(' ');
                    chars += 1;
                }
                let start = chars;
                body.push_str(tok);
                chars += tok.chars().count();
                let ty = tag.get(2..).unwrap_or("").to_string();
                let continues = open
                    .as_ref()
                    .is_some_and(|(_, t)| tag.starts_with("I-") && *t == ty);
                if !continues {
                    if let Some((s, t)) = open.take() {
                        gold.push((s, last_end, t));
                    }
                    if tag != "O" {
                        open = Some((start, ty));
                    }
                }
                last_end = chars;
            }
            if let Some((s, t)) = open.take() {
                gold.push((s, last_end, t));
            }
            body.push('\n');
            chars += 1;
        }
        let view = TextView::new(&body);
        let entities = entities::find(&kb, &rec, &view, None);
        let mut pred = Vec::new();
        for e in &entities {
            let ty = match e.entity_type {
                EntityType::Person => "PER",
                EntityType::Org => "ORG",
                EntityType::Location => "LOC",
                EntityType::Group | EntityType::Misc => "MISC",
            };
            pred.extend(e.mentions.iter().map(|m| (m.start, m.end, ty.to_string())));
        }
        n_gold += gold.len();
        n_pred += pred.len();
        for g in &gold {
            per_type.entry(type_name(&g.2)).or_default().1 += 1;
        }
        for p in &pred {
            per_type.entry(type_name(&p.2)).or_default().2 += 1;
            if gold.iter().any(|g| g.0 == p.0 && g.1 == p.1) {
                tp_span += 1;
            }
            if gold.contains(p) {
                tp_typed += 1;
                per_type.entry(type_name(&p.2)).or_default().0 += 1;
            }
        }
    }
    let f1 = |tp: usize, gold: usize, pred: usize| {
        let (p, r) = (
            tp as f64 / pred.max(1) as f64,
            tp as f64 / gold.max(1) as f64,
        );
        (
            p,
            r,
            if p + r > 0.0 {
                2.0 * p * r / (p + r)
            } else {
                0.0
            },
        )
    };
    let (p, r, f) = f1(tp_typed, n_gold, n_pred);
    eprintln!("conll dev typed exact match: P {p:.3} R {r:.3} F1 {f:.3} (gold {n_gold}, predicted {n_pred})");
    let (p, r, f) = f1(tp_span, n_gold, n_pred);
    eprintln!("conll dev span-only exact match: P {p:.3} R {r:.3} F1 {f:.3}");
    for (ty, (tp, gold, pred)) in per_type {
        let (p, r, f) = f1(tp, gold, pred);
        eprintln!("  {ty:<4} P {p:.3} R {r:.3} F1 {f:.3} (gold {gold}, predicted {pred})");
    }
}

fn type_name(t: &str) -> &'static str {
    match t {
        "PER" => "PER",
        "ORG" => "ORG",
        "LOC" => "LOC",
        _ => "MISC",
    }
}
