//! Who says what about whom: stance edges between the entities of an article.
//!
//! Two shapes of sentence carry one entity's stance toward another. A speaker: "X said Y is a disaster" — the
//! speech is X's, so the model's reading of the sentence toward Y is X's stance toward Y, not the author's. An
//! agent: "Turkey condemned Armenia", "Pashinyan signed a cooperation agreement with the US", "Y was praised by
//! X" — the verb and what follows it up to the target carry the stance, read from the lexicon with negation.
//! When an agent's verb has no entity after it ("..., but Putin dismissed it"), the target is the entity that
//! spoke or acted in the clause before, which is what "it" usually points back to.
//!
//! Edges are per sentence, so each carries exactly the evidence that supports it; neutral readings are not
//! edges. An entity and another one glued to it ("Russian leader Putin") are never an edge: that is a
//! description, not a statement.

use std::ops::Range;

use crate::lexicon::Lexicon;
use crate::stance::features::Context;
use crate::stance::MentionStance;
use crate::text::TextView;
use crate::types::{Entity, Evidence, Field, Relation, RelationStance, StanceLabel};

/// Below this confidence a reading is too weak to report as an edge.
const MIN_SCORE: f32 = 0.5;
/// A speaker edge needs the model this sure of its reading of the speech.
const SPEECH_MIN: f32 = 0.6;
/// Tokens after the verb in which its object may be.
const OBJECT_REACH: usize = 12;

/// The relations of an article, in sentence order.
pub fn find(
    lexicon: &Lexicon,
    body: &TextView<'_>,
    entities: &[Entity],
    mentions: &[MentionStance],
) -> Vec<Relation> {
    let mut by_sentence: Vec<Vec<&MentionStance>> = vec![Vec::new(); body.sentences().len()];
    // Resolved pronouns are too uncertain to say who said what.
    for m in mentions
        .iter()
        .filter(|m| m.field == Field::Body && !m.pronoun)
    {
        by_sentence[m.sentence].push(m);
    }
    let mut out = Vec::new();
    for (s, here) in by_sentence.iter().enumerate() {
        if here.len() < 2 {
            continue;
        }
        let range = here[0].sentence_tokens.clone();
        let ctx = Context::new(lexicon, &body.tokens()[range]);
        let mut edges: Vec<(usize, usize, StanceLabel, f32)> = Vec::new();
        for source in here {
            for (from, to, label, score) in statements(&ctx, source, here) {
                if score < MIN_SCORE || label == StanceLabel::Neutral || from == to {
                    continue;
                }
                match edges.iter_mut().find(|e| e.0 == from && e.1 == to) {
                    Some(e) if e.3 < score => *e = (from, to, label, score),
                    Some(_) => {}
                    None => edges.push((from, to, label, score)),
                }
            }
        }
        for (a, b, label, score) in edges {
            out.push(Relation {
                source: entities[a].entity_id.clone(),
                target: entities[b].entity_id.clone(),
                stance: RelationStance {
                    label,
                    score: (f64::from(score) * 10_000.0).round() / 10_000.0,
                },
                evidence: Evidence::of_sentence(body, s),
            });
        }
    }
    out
}

/// What `source` says or does about the other entities of its sentence, and what others do to it in the
/// passive: (source entity, target entity, label, score).
fn statements(
    ctx: &Context<'_>,
    source: &MentionStance,
    here: &[&MentionStance],
) -> Vec<(usize, usize, StanceLabel, f32)> {
    let mut out = Vec::new();
    let mut in_source = vec![false; ctx.len()];
    for r in &source.spans {
        in_source[r.clone()].iter_mut().for_each(|x| *x = true);
    }
    let others: Vec<&&MentionStance> = here
        .iter()
        .filter(|m| m.entity != source.entity)
        .filter(|m| {
            !m.spans
                .iter()
                .any(|r| source.spans.iter().any(|s| adjacent(r, s)))
        })
        .collect();
    for span in &source.spans {
        if ctx.is_speaker(span) {
            // The model's reading of the speech toward each entity in it is the speaker's. The speech is taken
            // to be what follows the speaker in the same clause ("X said Y ..."); what precedes is as often
            // the author's setting of the scene as a fronted quotation.
            let clause = ctx.clause(span.start);
            let speech = others.iter().filter(|m| {
                m.spans
                    .iter()
                    .any(|r| r.start > span.end && ctx.clause(r.start) == clause)
                    && m.probs[super::stance::classes::argmax(&m.probs)] >= SPEECH_MIN
            });
            for m in speech {
                let label = m.label();
                let score = m.probs[super::stance::classes::argmax(&m.probs)];
                out.push((source.entity, m.entity, label, score));
            }
            continue;
        }
        let Some((verb, passive, negated)) = ctx.verb_after(span, &in_source) else {
            continue;
        };
        if !looks_like_verb(ctx.form(verb)) {
            // "Russian leader Putin ...", "Turkey's links ...": a modifier or possessor, not an agent.
            continue;
        }
        if passive {
            // "X was praised by Y": Y toward X.
            let by = (verb + 1..ctx.len().min(verb + 3)).find(|&i| ctx.form(i) == "by");
            if let Some(by) = by {
                if let Some(agent) = others.iter().find(|m| {
                    m.spans
                        .iter()
                        .any(|r| r.start == by + 1 || r.start == by + 2)
                }) {
                    if let Some((label, score)) = reading(ctx, verb..verb + 1, negated) {
                        out.push((agent.entity, source.entity, label, score));
                    }
                }
            }
            continue;
        }
        let clause = ctx.clause(verb);
        // The object: entities after the verb, before the clause ends or a comma closes the phrase.
        let stop = (verb + 1..ctx.len())
            .find(|&i| ctx.form(i) == "," || ctx.clause(i) != clause)
            .unwrap_or(ctx.len())
            .min(verb + OBJECT_REACH);
        let after: Vec<&&&MentionStance> = others
            .iter()
            .filter(|m| m.spans.iter().any(|r| r.start > verb && r.start < stop))
            .collect();
        if after.is_empty() {
            // "..., but Putin dismissed it": the previous clause's first actor.
            if clause == 0 {
                continue;
            }
            let before = others
                .iter()
                .filter(|m| {
                    m.spans.iter().any(|r| {
                        ctx.clause(r.start) + 1 == clause && (ctx.is_speaker(r) || m.speaker)
                    })
                })
                .min_by_key(|m| m.spans[0].start);
            if let Some(m) = before {
                let end = (verb + 6).min(ctx.len());
                if let Some((label, score)) = reading(ctx, verb..end, negated) {
                    out.push((source.entity, m.entity, label, score));
                }
            }
            continue;
        }
        for m in after {
            let first = m
                .spans
                .iter()
                .map(|r| r.start)
                .filter(|&s| s > verb)
                .min()
                .unwrap_or(verb + 1);
            if first >= 1 && ctx.form(first - 1) == "against" {
                // "allies against Turkey": the preposition decides, whatever the verb.
                out.push((source.entity, m.entity, StanceLabel::Against, 0.6));
            } else if let Some((label, score)) = reading(ctx, verb..first, negated) {
                out.push((source.entity, m.entity, label, score));
            }
        }
    }
    out
}

/// Past tense, present third person or progressive, or a common irregular past: what a subject's verb looks
/// like, as opposed to the noun of "Russian leader" or the possessive of "Turkey's".
fn looks_like_verb(word: &str) -> bool {
    const IRREGULAR: &[&str] = &[
        "said", "told", "gave", "made", "took", "sent", "won", "lost", "met", "led", "held", "put",
        "struck", "beat", "fought", "threw", "kept", "sold", "bought", "brought", "began", "broke",
        "came", "went", "left", "hit", "sought", "rejects", "backs", "slams", "must",
    ];
    let long = word.chars().count() >= 4;
    IRREGULAR.contains(&word)
        || long && (word.ends_with("ed") || word.ends_with("ing"))
        || long && word.ends_with('s') && !word.ends_with("ss") && !word.ends_with("'s")
}

/// Two mentions that touch describe one thing ("Russian Putin", "US-Russia"), whatever the verbs say.
fn adjacent(a: &Range<usize>, b: &Range<usize>) -> bool {
    a.end >= b.start && b.end >= a.start
}

/// The stance the words of `range` carry, from their lexicon valence: a verb and its object phrase.
fn reading(ctx: &Context<'_>, range: Range<usize>, negated: bool) -> Option<(StanceLabel, f32)> {
    let mut sum = 0f32;
    for i in range {
        sum += ctx.valence(i);
    }
    if negated {
        sum = -sum * 0.74;
    }
    if sum.abs() < 0.5 {
        return None;
    }
    let label = if sum > 0.0 {
        StanceLabel::Favor
    } else {
        StanceLabel::Against
    };
    Some((label, sum.abs() / (sum.abs() + 1.0)))
}
