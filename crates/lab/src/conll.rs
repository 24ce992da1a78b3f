//! CoNLL-2003 files in, tagger documents and gold spans out; and entity-level scoring with conlleval's
//! semantics.
//!
//! The files have one token per line (`token POS chunk NER`), blank lines between sentences and `-DOCSTART-`
//! lines between documents. NER tags are IOB1: `I-X` continues or starts an entity of type X, `B-X` only
//! appears where an X entity starts right after another X. Following conlleval, an entity starts at any `B-X`,
//! or at an `I-X` after `O`, after another type, or at a sentence start; a predicted entity counts as correct
//! only when its first token, last token and type all equal a gold entity's (exact match). Functions here take
//! the file's text, never a path: reading files is the caller's business.

use std::borrow::Cow;
use std::collections::BTreeMap;

use serde::Serialize;

use nlp::ner::{NerError, NerSpan, NerType, TaggerInput};

/// One document with its gold entities (token spans into the document).
#[derive(Debug, Clone)]
pub struct ConllDoc<'a> {
    pub input: TaggerInput<'a>,
    pub gold: Vec<NerSpan>,
}

/// Parses a CoNLL-2003 file's text into documents.
pub fn parse(text: &str) -> Result<Vec<ConllDoc<'_>>, NerError> {
    let mut docs = Vec::new();
    let mut tokens: Vec<Cow<'_, str>> = Vec::new();
    let mut sentences = Vec::new();
    let mut gold = Vec::new();
    let mut sent_start = 0;
    // Type and start of the entity being read.
    let mut open: Option<(NerType, usize)> = None;
    let close = |open: &mut Option<(NerType, usize)>, gold: &mut Vec<NerSpan>, end: usize| {
        if let Some((ty, start)) = open.take() {
            gold.push(NerSpan { start, end, ty });
        }
    };
    for (no, line) in text.lines().enumerate() {
        let line = line.trim_end();
        if line.starts_with("-DOCSTART-") {
            close(&mut open, &mut gold, tokens.len());
            if sent_start < tokens.len() {
                sentences.push(sent_start..tokens.len());
            }
            finish_doc(&mut tokens, &mut sentences, &mut gold, &mut docs);
            sent_start = 0;
            continue;
        }
        if line.trim().is_empty() {
            close(&mut open, &mut gold, tokens.len());
            if sent_start < tokens.len() {
                sentences.push(sent_start..tokens.len());
                sent_start = tokens.len();
            }
            continue;
        }
        let cols: Vec<&str> = line.split_whitespace().collect();
        let (Some(word), Some(tag)) = (cols.first(), cols.last()) else {
            continue;
        };
        if cols.len() < 2 {
            return Err(NerError::Conll {
                line: no + 1,
                message: "expected `token ... NER-tag` columns separated by spaces".into(),
            });
        }
        let i = tokens.len();
        tokens.push(Cow::Borrowed(*word));
        if *tag == "O" {
            close(&mut open, &mut gold, i);
            continue;
        }
        let (prefix, ty) = tag.split_once('-').ok_or_else(|| NerError::Conll {
            line: no + 1,
            message: format!("tag {tag:?} is neither O nor B-TYPE / I-TYPE"),
        })?;
        let ty = NerType::from_conll(ty).ok_or_else(|| NerError::Conll {
            line: no + 1,
            message: format!("unknown entity type in {tag:?}; expected PER, ORG, LOC or MISC"),
        })?;
        let continues = prefix == "I" && open.is_some_and(|(t, _)| t == ty);
        if !continues {
            close(&mut open, &mut gold, i);
            open = Some((ty, i));
        }
        if !matches!(prefix, "I" | "B") {
            return Err(NerError::Conll {
                line: no + 1,
                message: format!("tag {tag:?} has prefix {prefix:?}; IOB1 uses only B- and I-"),
            });
        }
    }
    close(&mut open, &mut gold, tokens.len());
    if sent_start < tokens.len() {
        sentences.push(sent_start..tokens.len());
    }
    finish_doc(&mut tokens, &mut sentences, &mut gold, &mut docs);
    Ok(docs)
}

fn finish_doc<'a>(
    tokens: &mut Vec<Cow<'a, str>>,
    sentences: &mut Vec<std::ops::Range<usize>>,
    gold: &mut Vec<NerSpan>,
    docs: &mut Vec<ConllDoc<'a>>,
) {
    if !tokens.is_empty() {
        let input = TaggerInput::new(std::mem::take(tokens), std::mem::take(sentences))
            .expect("sentences are built to tile the tokens");
        docs.push(ConllDoc {
            input,
            gold: std::mem::take(gold),
        });
    }
}

/// Counts for precision and recall.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Counts {
    pub correct: usize,
    pub gold: usize,
    pub predicted: usize,
}

impl Counts {
    pub fn precision(&self) -> f64 {
        100.0 * self.correct as f64 / self.predicted.max(1) as f64
    }
    pub fn recall(&self) -> f64 {
        100.0 * self.correct as f64 / self.gold.max(1) as f64
    }
    pub fn f1(&self) -> f64 {
        let (p, r) = (self.precision(), self.recall());
        if p + r > 0.0 {
            2.0 * p * r / (p + r)
        } else {
            0.0
        }
    }
}

/// Entity-level exact-match scores, overall and per CoNLL type.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Scores {
    pub overall: Counts,
    pub per_type: BTreeMap<&'static str, Counts>,
}

impl Scores {
    /// Adds one document's gold and predicted spans.
    pub fn add(&mut self, gold: &[NerSpan], predicted: &[NerSpan]) {
        let gold_set: std::collections::HashSet<&NerSpan> = gold.iter().collect();
        for g in gold {
            self.overall.gold += 1;
            self.per_type.entry(g.ty.as_str()).or_default().gold += 1;
        }
        for p in predicted {
            self.overall.predicted += 1;
            let c = self.per_type.entry(p.ty.as_str()).or_default();
            c.predicted += 1;
            if gold_set.contains(p) {
                c.correct += 1;
                self.overall.correct += 1;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iob1_chunks_follow_conlleval() {
        let text = "-DOCSTART- -X- O O\n\nEU NNP I-NP I-ORG\nrejects VBZ I-VP O\nGerman JJ I-NP I-MISC\n\
                    \nPeter NNP I-NP I-PER\nBlackburn NNP I-NP I-PER\nJohn NNP I-NP B-PER\nLOC X X I-LOC\n\
                    \n-DOCSTART- -X- O O\n\nParis NNP I-NP I-LOC\n";
        let docs = parse(text).unwrap();
        assert_eq!(docs.len(), 2);
        assert_eq!(docs[0].input.sentences(), &[0..3, 3..7]);
        let spans: Vec<(usize, usize, &str)> = docs[0]
            .gold
            .iter()
            .map(|s| (s.start, s.end, s.ty.as_str()))
            .collect();
        assert_eq!(
            spans,
            vec![
                (0, 1, "ORG"),
                (2, 3, "MISC"),
                (3, 5, "PER"),
                (5, 6, "PER"),
                (6, 7, "LOC")
            ]
        );
        let mut s = Scores::default();
        s.add(&docs[0].gold, &docs[0].gold[..3]);
        assert_eq!(s.overall.correct, 3);
        assert!((s.overall.precision() - 100.0).abs() < 1e-9);
        assert!((s.overall.recall() - 60.0).abs() < 1e-9);
        assert!(parse("word X X Q-PER\n").is_err());
    }
}
