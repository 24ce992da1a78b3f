//! Knowledge distillation for the fast stance model: unlabelled news sentences with known entity targets (the
//! gold entity spans of a CoNLL-2003 file), to be labelled by the accurate-mode transformer (the teacher) and
//! written as NewsMTSC-style JSONL ("silver" data) that `train stance --silver` reads beside the gold file.
//!
//! This module is pure: it turns CoNLL documents into sentences with targets and a teacher's probabilities into
//! JSONL lines. Running the teacher is the caller's (it needs the base weights).

use serde::Serialize;

use crate::conll::ConllDoc;
use crate::datasets::MtscSentence;
use nlp::ner::NerType;

/// A sentence, detokenised, with the targets to label.
#[derive(Debug, Clone, PartialEq)]
pub struct Candidate {
    pub text: String,
    pub targets: Vec<CandidateTarget>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct CandidateTarget {
    /// Code-point offsets into `text`, `end` exclusive.
    pub from: usize,
    pub to: usize,
    pub mention: String,
    pub ty: NerType,
}

/// Which CoNLL sentences and targets become candidates.
#[derive(Debug, Clone)]
pub struct CandidateFilter {
    /// Entity types used as targets.
    pub types: Vec<NerType>,
    /// Sentences shorter than this (in tokens) are skipped: headlines, datelines, score lines.
    pub min_tokens: usize,
}

impl Default for CandidateFilter {
    fn default() -> Self {
        CandidateFilter {
            types: vec![NerType::Per, NerType::Org, NerType::Loc],
            min_tokens: 8,
        }
    }
}

/// Tokens after which no space is written.
fn opens(tok: &str) -> bool {
    matches!(tok, "(" | "[" | "{" | "$" | "``")
}

/// Tokens before which no space is written.
fn closes(tok: &str) -> bool {
    matches!(
        tok,
        "," | "."
            | ";"
            | ":"
            | "!"
            | "?"
            | ")"
            | "]"
            | "}"
            | "%"
            | "'s"
            | "'S"
            | "n't"
            | "'"
            | "''"
    )
}

/// Joins tokens with single spaces, except before closing punctuation and after opening brackets (straight
/// double quotes alternate between opening and closing). Returns the text and each token's code-point span.
pub fn detokenize<S: AsRef<str>>(tokens: &[S]) -> (String, Vec<(usize, usize)>) {
    let mut text = String::new();
    let mut len = 0usize;
    let mut spans = Vec::with_capacity(tokens.len());
    let mut quote_open = false;
    let mut glue_next = false;
    for (i, tok) in tokens.iter().enumerate() {
        let tok = tok.as_ref();
        let is_quote = tok == "\"";
        let glue = i == 0 || glue_next || closes(tok) || (is_quote && quote_open);
        if !glue {
            text.push(' ');
            len += 1;
        }
        let n = tok.chars().count();
        spans.push((len, len + n));
        text.push_str(tok);
        len += n;
        glue_next = opens(tok) || (is_quote && !quote_open);
        if is_quote {
            quote_open = !quote_open;
        }
    }
    (text, spans)
}

/// A sentence worth labelling: long enough, and prose rather than a headline or a table row (some lowercase
/// words, mostly words rather than numbers).
fn is_prose<S: AsRef<str>>(tokens: &[S], min_tokens: usize) -> bool {
    if tokens.len() < min_tokens {
        return false;
    }
    let lower = tokens
        .iter()
        .filter(|t| t.as_ref().chars().next().is_some_and(char::is_lowercase))
        .count();
    let alpha = tokens
        .iter()
        .filter(|t| t.as_ref().chars().next().is_some_and(char::is_alphabetic))
        .count();
    lower * 4 >= tokens.len() && alpha * 3 >= tokens.len() * 2
}

/// Every prose sentence of the documents that has at least one gold entity of the wanted types, with those
/// entities as targets (in document order; deterministic).
pub fn conll_candidates(docs: &[ConllDoc<'_>], filter: &CandidateFilter) -> Vec<Candidate> {
    let mut out = Vec::new();
    for doc in docs {
        let tokens = doc.input.tokens();
        for range in doc.input.sentences() {
            let sent = &tokens[range.clone()];
            if !is_prose(sent, filter.min_tokens) {
                continue;
            }
            let (text, spans) = detokenize(sent);
            let targets: Vec<CandidateTarget> = doc
                .gold
                .iter()
                .filter(|g| g.start >= range.start && g.end <= range.end && g.start < g.end)
                .filter(|g| filter.types.contains(&g.ty))
                .map(|g| {
                    let from = spans[g.start - range.start].0;
                    let to = spans[g.end - 1 - range.start].1;
                    CandidateTarget {
                        from,
                        to,
                        mention: text.chars().skip(from).take(to - from).collect(),
                        ty: g.ty,
                    }
                })
                .collect();
            if !targets.is_empty() {
                out.push(Candidate { text, targets });
            }
        }
    }
    out
}

#[derive(Serialize)]
struct SilverLine<'a> {
    sentence_normalized: &'a str,
    targets: Vec<SilverTarget<'a>>,
}

#[derive(Serialize)]
struct SilverTarget<'a> {
    from: usize,
    to: usize,
    mention: &'a str,
    #[serde(rename = "type")]
    ty: &'static str,
    /// The teacher's argmax on NewsMTSC's scale: 2.0 against, 4.0 neutral, 6.0 favor.
    polarity: f64,
    /// The teacher's probabilities (against, neutral, favor), rounded to 4 places.
    teacher: [f32; 3],
}

/// One JSONL line for a candidate and the teacher's probabilities of its targets; targets the teacher gave no
/// reading (cut off by its length cap) are left out, and a candidate left with none gives `None`.
pub fn silver_line(c: &Candidate, probs: &[Option<[f32; 3]>]) -> Option<String> {
    let targets: Vec<SilverTarget<'_>> = c
        .targets
        .iter()
        .zip(probs)
        .filter_map(|(t, p)| {
            let p = (*p)?;
            Some(SilverTarget {
                from: t.from,
                to: t.to,
                mention: &t.mention,
                ty: t.ty.as_str(),
                polarity: polarity_of(&p),
                teacher: p.map(|x| (x * 10_000.0).round() / 10_000.0),
            })
        })
        .collect();
    if targets.is_empty() {
        return None;
    }
    serde_json::to_string(&SilverLine {
        sentence_normalized: &c.text,
        targets,
    })
    .ok()
}

/// NewsMTSC polarity of the most probable class.
pub fn polarity_of(p: &[f32; 3]) -> f64 {
    let mut best = 0;
    for c in 1..3 {
        if p[c] > p[best] {
            best = c;
        }
    }
    [2.0, 4.0, 6.0][best]
}

/// The entities the pipeline's recogniser finds in each sentence of a NewsMTSC file, of `types`, that do not
/// overlap the sentence's annotated targets: further targets in the same kind of text, for the teacher to label.
/// An entity named twice in a sentence is one target, at its first mention.
pub fn other_entity_candidates(
    sentences: &[MtscSentence],
    types: &[NerType],
) -> Result<Vec<Candidate>, nlp::ner::NerError> {
    use nlp::kb::KnowledgeBase;
    use nlp::{entities, ner, text::TextView, EntityType};
    let kb = KnowledgeBase::embedded();
    let recogniser = entities::Recogniser::new(&kb, ner::Tagger::embedded(&kb)?);
    let mut out = Vec::new();
    for s in sentences {
        let view = TextView::new(&s.text);
        let mut targets = Vec::new();
        for e in entities::find(&kb, &recogniser, &view, None) {
            let ty = match e.entity_type {
                EntityType::Person => NerType::Per,
                EntityType::Org => NerType::Org,
                EntityType::Location => NerType::Loc,
                EntityType::Group | EntityType::Misc => NerType::Misc,
            };
            if !types.contains(&ty) {
                continue;
            }
            let annotated = |a: usize, b: usize| {
                s.targets.iter().any(|t| {
                    std::iter::once((t.start, t.end))
                        .chain(t.further.iter().copied())
                        .any(|(x, y)| a < y && x < b)
                })
            };
            if e.mentions.iter().any(|m| annotated(m.start, m.end)) {
                continue;
            }
            if let Some(m) = e.mentions.first() {
                targets.push(CandidateTarget {
                    from: m.start,
                    to: m.end,
                    mention: m.text.clone(),
                    ty,
                });
            }
        }
        if !targets.is_empty() {
            targets.sort_by_key(|t| t.from);
            out.push(Candidate {
                text: s.text.clone(),
                targets,
            });
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::conll::parse;
    use crate::datasets::parse_newsmtsc;
    use nlp::StanceLabel;

    #[test]
    fn detokenizes_punctuation_and_quotes() {
        let toks = [
            "Peter", "'s", "aide", "said", "\"", "no", "\"", "(", "again", ")", ",", "twice", ".",
        ];
        let (text, spans) = detokenize(&toks);
        assert_eq!(text, "Peter's aide said \"no\" (again), twice.");
        for (t, &(a, b)) in toks.iter().zip(&spans) {
            let got: String = text.chars().skip(a).take(b - a).collect();
            assert_eq!(&got, t);
        }
    }

    const CONLL: &str = "-DOCSTART- -X- O O\n\n\
        SOCCER NN I-NP O\n- : O O\nJAPAN NNP I-NP I-LOC\nWIN VB I-VP O\n\n\
        German JJ I-NP I-MISC\nChancellor NNP I-NP O\nHelmut NNP I-NP I-PER\nKohl NNP I-NP I-PER\n\
        criticised VBD I-VP O\nthe DT I-NP O\nEuropean NNP I-NP I-ORG\nCommission NNP I-NP I-ORG\n\
        on IN I-PP O\nTuesday NNP I-NP O\n, , O O\nsaid VBD I-VP O\nBonn NNP I-NP I-LOC\n. . O O\n";

    #[test]
    fn conll_sentences_become_targets_and_silver_lines_parse_back() {
        let docs = parse(CONLL).unwrap();
        let cands = conll_candidates(&docs, &CandidateFilter::default());
        // The headline is skipped; MISC is not a target type by default.
        assert_eq!(cands.len(), 1, "{cands:?}");
        let c = &cands[0];
        assert_eq!(
            c.text,
            "German Chancellor Helmut Kohl criticised the European Commission on Tuesday, said Bonn."
        );
        let mentions: Vec<&str> = c.targets.iter().map(|t| t.mention.as_str()).collect();
        assert_eq!(mentions, ["Helmut Kohl", "European Commission", "Bonn"]);
        let per_only = CandidateFilter {
            types: vec![NerType::Per],
            ..CandidateFilter::default()
        };
        assert_eq!(conll_candidates(&docs, &per_only)[0].targets.len(), 1);

        let line = silver_line(c, &[Some([0.7, 0.2, 0.1]), None, Some([0.1, 0.3, 0.6])]).unwrap();
        let parsed = parse_newsmtsc(&line).unwrap();
        assert_eq!(parsed[0].targets.len(), 2);
        assert_eq!(parsed[0].targets[0].label, StanceLabel::Against);
        assert_eq!(parsed[0].targets[1].label, StanceLabel::Favor);
        assert_eq!(parsed[0].targets[1].teacher, Some([0.1, 0.3, 0.6]));
        assert_eq!(silver_line(c, &[None, None, None]), None);
    }
}
