//! The public stance datasets, parsed from their text (reading the files is the caller's business).
//!
//! NewsMTSC: one JSON object per line, a sentence and its targets with character offsets and a polarity
//! (2.0 negative, 4.0 neutral, 6.0 positive). PerSenT: a CSV of whole articles, each with one target person
//! and the article's overall sentiment toward them.

use serde::Deserialize;

use nlp::{Entity, EntityType, StanceLabel};

#[derive(Debug, thiserror::Error)]
pub enum DataError {
    #[error("line {line}: {message}")]
    Line { line: usize, message: String },
    #[error("CSV: {0}")]
    Csv(#[from] csv::Error),
    #[error("CSV has no column {0}")]
    MissingColumn(&'static str),
}

/// One NewsMTSC sentence and its annotated targets.
#[derive(Debug, Clone)]
pub struct MtscSentence {
    pub text: String,
    pub targets: Vec<MtscTarget>,
}

#[derive(Debug, Clone)]
pub struct MtscTarget {
    /// Character (code point) offsets of the main mention, `end` exclusive.
    pub start: usize,
    pub end: usize,
    /// Other mentions of the same target in the sentence.
    pub further: Vec<(usize, usize)>,
    pub label: StanceLabel,
    /// A teacher model's probabilities (against, neutral, favor), in distilled ("silver") files.
    pub teacher: Option<[f32; 3]>,
}

#[derive(Deserialize)]
struct RawSentence {
    sentence_normalized: String,
    targets: Vec<RawTarget>,
}

#[derive(Deserialize)]
struct RawTarget {
    from: usize,
    to: usize,
    polarity: f64,
    #[serde(default)]
    further_mentions: Vec<RawMention>,
    #[serde(default)]
    teacher: Option<[f32; 3]>,
}

#[derive(Deserialize)]
struct RawMention {
    from: usize,
    to: usize,
}

/// Polarity on NewsMTSC's 1..7 scale to a label: below 4 against, above favor.
fn polarity_label(p: f64) -> StanceLabel {
    if p < 3.5 {
        StanceLabel::Against
    } else if p > 4.5 {
        StanceLabel::Favor
    } else {
        StanceLabel::Neutral
    }
}

pub fn parse_newsmtsc(text: &str) -> Result<Vec<MtscSentence>, DataError> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let err = |message: String| DataError::Line {
            line: i + 1,
            message,
        };
        let raw: RawSentence = serde_json::from_str(line).map_err(|e| err(e.to_string()))?;
        let len = raw.sentence_normalized.chars().count();
        let mut targets = Vec::new();
        for t in raw.targets {
            if t.from >= t.to || t.to > len {
                return Err(err(format!(
                    "target {}..{} outside the sentence",
                    t.from, t.to
                )));
            }
            targets.push(MtscTarget {
                start: t.from,
                end: t.to,
                further: t
                    .further_mentions
                    .iter()
                    .filter(|m| m.from < m.to && m.to <= len)
                    .map(|m| (m.from, m.to))
                    .collect(),
                label: polarity_label(t.polarity),
                teacher: t.teacher,
            });
        }
        out.push(MtscSentence {
            text: raw.sentence_normalized,
            targets,
        });
    }
    Ok(out)
}

/// One PerSenT article.
#[derive(Debug, Clone)]
pub struct PersentArticle {
    pub target: String,
    pub title: String,
    pub document: String,
    pub label: StanceLabel,
}

pub fn parse_persent(text: &str) -> Result<Vec<PersentArticle>, DataError> {
    let mut reader = csv::ReaderBuilder::new()
        .flexible(true)
        .from_reader(text.as_bytes());
    let headers = reader.headers()?.clone();
    let col = |name: &'static str| {
        headers
            .iter()
            .position(|h| h == name)
            .ok_or(DataError::MissingColumn(name))
    };
    let (target, title, document, sentiment) = (
        col("TARGET_ENTITY")?,
        col("TITLE")?,
        col("DOCUMENT")?,
        col("TRUE_SENTIMENT")?,
    );
    let mut out = Vec::new();
    for record in reader.records() {
        let record = record?;
        let get = |i: usize| record.get(i).unwrap_or("").to_string();
        let label = match record.get(sentiment).unwrap_or("").trim() {
            "Positive" => StanceLabel::Favor,
            "Negative" => StanceLabel::Against,
            _ => StanceLabel::Neutral,
        };
        out.push(PersentArticle {
            target: get(target).trim().to_string(),
            title: get(title),
            document: get(document),
            label,
        });
    }
    Ok(out)
}

/// The entity an annotated target person is: one named or mentioned exactly so, else one whose name or a
/// mention ends with the target's surname, else one sharing a capitalised word with it (annotations can be
/// noisy: "Tim Ryan Tuesday", "-- Donald Trump", "Mahdi Karroubi's"). Among several, the person with the most
/// mentions.
pub fn find_target(entities: &[Entity], target: &str) -> Option<usize> {
    let clean = |s: &str| -> String {
        let s = s.trim_matches(|c: char| !c.is_alphanumeric());
        let s = s
            .strip_suffix("'s")
            .or_else(|| s.strip_suffix("\u{2019}s"))
            .unwrap_or(s);
        s.to_lowercase()
    };
    let words: Vec<String> = target
        .split_whitespace()
        .filter(|w| w.chars().next().is_some_and(char::is_uppercase))
        .map(clean)
        .filter(|w| w.chars().count() >= 3)
        .collect();
    let target = clean(target);
    let surname = target
        .split_whitespace()
        .last()
        .unwrap_or(&target)
        .to_string();
    let rank = |e: &Entity| -> u8 {
        let mut texts: Vec<String> = e.mentions.iter().map(|m| clean(&m.text)).collect();
        texts.push(clean(&e.name));
        if texts.contains(&target) {
            3
        } else if texts
            .iter()
            .any(|t| t.split_whitespace().last() == Some(surname.as_str()))
        {
            2
        } else if texts
            .iter()
            .any(|t| t.split_whitespace().any(|x| words.iter().any(|w| w == x)))
        {
            1
        } else {
            0
        }
    };
    entities
        .iter()
        .enumerate()
        .map(|(i, e)| {
            (
                i,
                rank(e),
                e.entity_type == EntityType::Person,
                e.mentions.len(),
            )
        })
        .filter(|x| x.1 > 0)
        .max_by_key(|x| (x.1, x.2, x.3, std::cmp::Reverse(x.0)))
        .map(|x| x.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_newsmtsc_lines() {
        let s = parse_newsmtsc(
            r#"{"sentence_normalized": "Émile praised Bob.", "targets": [{"from": 0, "to": 5, "polarity": 6.0}, {"from": 14, "to": 17, "polarity": 4.0, "further_mentions": [{"from": 0, "to": 1}]}]}"#,
        )
        .unwrap();
        assert_eq!(s[0].targets[0].label, StanceLabel::Favor);
        assert_eq!(s[0].targets[1].label, StanceLabel::Neutral);
        assert_eq!(s[0].targets[1].further, vec![(0, 1)]);
        assert!(parse_newsmtsc(
            r#"{"sentence_normalized": "x", "targets": [{"from": 0, "to": 9, "polarity": 2.0}]}"#
        )
        .is_err());
    }

    #[test]
    fn parses_persent_csv_with_quoted_newlines() {
        let csv = "DOCUMENT_INDEX,TITLE,TARGET_ENTITY,DOCUMENT,TRUE_SENTIMENT\n1,T,Ann Lee,\"Ann Lee won.\nShe said \"\"yes\"\".\",Positive\n";
        let a = parse_persent(csv).unwrap();
        assert_eq!(a.len(), 1);
        assert_eq!(a[0].target, "Ann Lee");
        assert_eq!(a[0].document, "Ann Lee won.\nShe said \"yes\".");
        assert_eq!(a[0].label, StanceLabel::Favor);
    }
}
