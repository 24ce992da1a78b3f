//! Baseline stance: lexicon sentiment around each mention, aggregated per entity.
//!
//! Each body mention is scored from the sentiment words of the clause that holds it (sentences are cut at
//! semicolons, colons and contrastive conjunctions, since "X is strong, but Y is weak" says opposite things
//! about X and Y). Words nearer the mention weigh more, negators flip the words in their scope, degree
//! adverbs scale them, and the mention's own words never count ("Justice Party" is not praise). Mention scores
//! are averaged per entity into a label, a confidence and the sentences that show it.
//!
//! This is a sentiment-near-target heuristic, not stance detection proper: it cannot tell whose opinion a
//! sentence reports or what it is about. It is the floor that a trained model replaces.

use std::collections::BTreeMap;
use std::ops::Range;

use super::lexicon::Lexicon;
use super::text::{TextView, Token};
use super::{Entity, Evidence, Field, Stance, StanceLabel};

/// A mean mention score beyond this is a stance; inside it, neutral.
const THRESHOLD: f64 = 0.1;
/// Tokens either side of a mention that can speak about it. Besides keeping the score local, this bounds the
/// work per mention, so a megabyte-long "sentence" full of mentions stays linear.
const WINDOW: usize = 20;
/// Words after a negator that it reverses.
const NEGATION_SCOPE: usize = 3;
/// VADER's normalisation constant: `x / sqrt(x² + α)` maps a clause's summed valence into (-1, 1).
const ALPHA: f64 = 15.0;
const MAX_EVIDENCE: usize = 3;

/// Fills in the stance of every entity from its body mentions.
pub fn score(lexicon: &Lexicon, body: &TextView<'_>, entities: &mut [Entity]) {
    score_with_threshold(lexicon, body, entities, THRESHOLD);
}

/// [`score`] with another label threshold, for the calibration runs in the evaluation tests.
pub(crate) fn score_with_threshold(
    lexicon: &Lexicon,
    body: &TextView<'_>,
    entities: &mut [Entity],
    threshold: f64,
) {
    let tokens = body.tokens();
    let spans: Vec<Vec<Range<usize>>> = entities
        .iter()
        .map(|e| {
            e.mentions
                .iter()
                .filter(|m| m.field == Field::Body)
                .map(|m| token_range(tokens, m.start, m.end))
                .filter(|r| !r.is_empty())
                .collect()
        })
        .collect();
    let mut in_mention = vec![false; tokens.len()];
    for r in spans.iter().flatten() {
        in_mention[r.clone()].iter_mut().for_each(|x| *x = true);
    }
    let clauses = Clauses::new(lexicon, body);
    let words = word_infos(lexicon, tokens, &in_mention);
    let negation = lexicon.negation_scalar();
    for (entity, spans) in entities.iter_mut().zip(spans) {
        let scored: Vec<(usize, f64)> = spans
            .into_iter()
            .map(|r| {
                (
                    tokens[r.start].sentence,
                    mention_score(&words, negation, &clauses, r),
                )
            })
            .collect();
        entity.stance = aggregate(body, &scored, threshold);
    }
}

/// Tokens whose start lies in the code-point span; mentions are token-aligned by construction.
fn token_range(tokens: &[Token], start: usize, end: usize) -> Range<usize> {
    tokens.partition_point(|t| t.start < start)..tokens.partition_point(|t| t.start < end)
}

/// Clause of every token: a new clause starts with each sentence, after ";" and ":", and at a contrastive
/// conjunction.
struct Clauses {
    of_token: Vec<usize>,
    ranges: Vec<Range<usize>>,
}

impl Clauses {
    fn new(lexicon: &Lexicon, view: &TextView<'_>) -> Self {
        let tokens = view.tokens();
        let mut of_token = Vec::with_capacity(tokens.len());
        let mut ranges: Vec<Range<usize>> = Vec::new();
        for (i, t) in tokens.iter().enumerate() {
            let new_sentence = i == 0 || tokens[i - 1].sentence != t.sentence;
            let after_stop = i > 0 && matches!(tokens[i - 1].norm.as_str(), ";" | ":");
            if new_sentence || after_stop || lexicon.is_contrastive(&t.lower) {
                if let Some(last) = ranges.last_mut() {
                    last.end = i;
                }
                ranges.push(i..tokens.len());
            }
            of_token.push(ranges.len() - 1);
        }
        Clauses { of_token, ranges }
    }
}

/// What the lexicon says about one token, looked up once per article rather than once per mention window.
#[derive(Debug, Clone, Copy, Default)]
struct WordInfo {
    /// A word whose valence counts: not punctuation, not a negator or degree adverb, not part of a mention.
    scored: bool,
    /// A word, as opposed to punctuation; negation scope and degree adverbs look back over words only.
    word: bool,
    /// Counts toward distances: a word that is neither a negator nor a degree adverb.
    content: bool,
    valence: f64,
    negator: bool,
    degree: Option<f64>,
}

fn word_infos(lexicon: &Lexicon, tokens: &[Token], in_mention: &[bool]) -> Vec<WordInfo> {
    tokens
        .iter()
        .zip(in_mention)
        .map(|(t, &mention)| {
            if !t.is_word() {
                return WordInfo::default();
            }
            let negator = lexicon.is_negator(&t.lower);
            let degree = lexicon.degree(&t.lower);
            let content = !negator && degree.is_none();
            let valence = if content {
                lexicon.valence(&t.lower)
            } else {
                None
            };
            WordInfo {
                scored: content && !mention && valence.is_some(),
                word: true,
                content,
                valence: valence.unwrap_or(0.0),
                negator,
                degree,
            }
        })
        .collect()
}

/// Score in (-1, 1) of what the mention's clause says around it.
fn mention_score(
    words: &[WordInfo],
    negation_scalar: f64,
    clauses: &Clauses,
    mention: Range<usize>,
) -> f64 {
    let clause = &clauses.ranges[clauses.of_token[mention.start]];
    let lo = clause.start.max(mention.start.saturating_sub(WINDOW));
    let hi = clause.end.min(mention.end + WINDOW);
    // Distance counts content words only, so "very good" is as close to the mention as "good".
    let mut rank = Vec::with_capacity(hi - lo);
    let mut content = 0usize;
    for w in &words[lo..hi] {
        rank.push(content);
        content += usize::from(w.content);
    }
    let rank_at = |t: usize| rank[t - lo];
    let mut sum = 0.0;
    for t in lo..hi {
        if !words[t].scored {
            continue;
        }
        let mut v = words[t].valence;
        let mut before = words[lo..t]
            .iter()
            .rev()
            .filter(|w| w.word)
            .take(NEGATION_SCOPE);
        if let Some(factor) = before.clone().next().and_then(|w| w.degree) {
            v *= factor;
        }
        if before.any(|w| w.negator) {
            v *= negation_scalar;
        }
        let distance = if t < mention.start {
            rank_at(mention.start) - rank_at(t)
        } else {
            rank_at(t) - rank_at(mention.end - 1)
        };
        sum += v * 4.0 / (3.0 + distance as f64);
    }
    sum / (sum * sum + ALPHA).sqrt()
}

/// Label, confidence and evidence from the (sentence, score) pairs of an entity's body mentions.
fn aggregate(body: &TextView<'_>, scored: &[(usize, f64)], threshold: f64) -> Stance {
    if scored.is_empty() {
        // Named only in the title: nothing to judge by, so neutral without conviction.
        return Stance {
            label: StanceLabel::Neutral,
            score: 0.5,
            evidence: Vec::new(),
        };
    }
    let n = scored.len() as f64;
    let total: f64 = scored.iter().map(|s| s.1).sum();
    let total_abs: f64 = scored.iter().map(|s| s.1.abs()).sum();
    let mean = total / n;
    let squash = |x: f64| x / (x + threshold);
    let (label, confidence) = if mean.abs() > threshold {
        // Strength of the mean, discounted when mentions pull in different directions.
        let agreement = if total_abs > 0.0 {
            total.abs() / total_abs
        } else {
            1.0
        };
        let label = if mean > 0.0 {
            StanceLabel::Favor
        } else {
            StanceLabel::Against
        };
        (label, squash(mean.abs()) * agreement)
    } else {
        // Neutral is only convincing when the mentions carry little polarity at all, not when strong
        // praise and strong blame cancel out.
        (StanceLabel::Neutral, 1.0 - squash(total_abs / n))
    };
    let mut by_sentence: BTreeMap<usize, (f64, f64)> = BTreeMap::new();
    for &(s, x) in scored {
        let e = by_sentence.entry(s).or_default();
        e.0 += x;
        e.1 += 1.0;
    }
    let mut sentences: Vec<(usize, f64)> = by_sentence
        .into_iter()
        .map(|(s, (sum, k))| (s, sum / k))
        .collect();
    match label {
        StanceLabel::Favor => {
            sentences.retain(|s| s.1 > 0.0);
            sentences.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        }
        StanceLabel::Against => {
            sentences.retain(|s| s.1 < 0.0);
            sentences.sort_by(|a, b| a.1.total_cmp(&b.1).then(a.0.cmp(&b.0)));
        }
        StanceLabel::Neutral => {
            sentences.sort_by(|a, b| a.1.abs().total_cmp(&b.1.abs()).then(a.0.cmp(&b.0)))
        }
    }
    let evidence = sentences
        .into_iter()
        .take(MAX_EVIDENCE)
        .map(|(s, _)| {
            let sentence = &body.sentences()[s];
            Evidence {
                sentence: s,
                start: sentence.start,
                end: sentence.end,
                text: body.sentence_text(s).to_string(),
            }
        })
        .collect();
    Stance {
        label,
        score: round4(confidence.clamp(0.0, 1.0)),
        evidence,
    }
}

fn round4(x: f64) -> f64 {
    (x * 10_000.0).round() / 10_000.0
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nlp::{EntityType, Mention};

    fn entity_at(view: &TextView<'_>, needle: &str) -> Entity {
        let byte = view.text().find(needle).unwrap();
        let start = view.text()[..byte].chars().count();
        let end = start + needle.chars().count();
        Entity {
            entity_id: "sw:x".into(),
            name: needle.into(),
            entity_type: EntityType::Person,
            mentions: vec![Mention {
                start,
                end,
                text: needle.into(),
                sentence: 0,
                field: Field::Body,
            }],
            salience: 1.0,
            stance: Stance {
                label: StanceLabel::Neutral,
                score: 0.0,
                evidence: Vec::new(),
            },
        }
    }

    fn stance_of(text: &str, needle: &str) -> Stance {
        let lexicon = Lexicon::embedded();
        let view = TextView::new(text);
        let mut es = vec![entity_at(&view, needle)];
        score(&lexicon, &view, &mut es);
        es.remove(0).stance
    }

    #[test]
    fn negation_flips_the_lexicon_score() {
        let plain = stance_of("Voters support Smith.", "Smith");
        let negated = stance_of("Voters do not support Smith.", "Smith");
        assert_eq!(plain.label, StanceLabel::Favor, "{plain:?}");
        assert_eq!(negated.label, StanceLabel::Against, "{negated:?}");
        let lexicon = Lexicon::embedded();
        let score_of = |text: &str| {
            let view = TextView::new(text);
            let tokens = view.tokens();
            let in_mention: Vec<bool> = tokens.iter().map(|t| t.norm == "Smith").collect();
            let at = tokens.iter().position(|t| t.norm == "Smith").unwrap();
            let words = word_infos(&lexicon, tokens, &in_mention);
            let clauses = Clauses::new(&lexicon, &view);
            mention_score(&words, lexicon.negation_scalar(), &clauses, at..at + 1)
        };
        let (p, n) = (
            score_of("Voters support Smith."),
            score_of("Voters do not support Smith."),
        );
        assert!(p > 0.0 && n < 0.0 && n.abs() < p, "{p} {n}");
    }

    #[test]
    fn clauses_split_at_but() {
        let text = "Jones is a brilliant and honest leader, but Smith is a corrupt liar.";
        assert_eq!(stance_of(text, "Jones").label, StanceLabel::Favor);
        assert_eq!(stance_of(text, "Smith").label, StanceLabel::Against);
    }

    #[test]
    fn neutral_without_sentiment_words_and_evidence_points_at_sentences() {
        let s = stance_of(
            "The meeting took place on Tuesday. Smith arrived at noon.",
            "Smith",
        );
        assert_eq!(s.label, StanceLabel::Neutral);
        assert_eq!(s.score, 1.0);
        assert_eq!(s.evidence.len(), 1);
        assert_eq!(s.evidence[0].text, "Smith arrived at noon.");
        assert_eq!(
            (
                s.evidence[0].sentence,
                s.evidence[0].start,
                s.evidence[0].end
            ),
            (1, 35, 57)
        );
    }

    #[test]
    fn intensifiers_strengthen() {
        let lexicon = Lexicon::embedded();
        let strength = |text: &str| {
            let view = TextView::new(text);
            let mut es = vec![entity_at(&view, "Smith")];
            score(&lexicon, &view, &mut es);
            es[0].stance.score
        };
        assert!(strength("Smith is very good.") > strength("Smith is good."));
        assert!(strength("Smith is slightly good.") < strength("Smith is good."));
    }
}
