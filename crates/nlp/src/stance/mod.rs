//! Stance: a trained target-dependent model scores each mention's sentence, then the scores of an entity are
//! aggregated into one verdict per article with the sentences that carry it.
//!
//! The mention model ([`model`], over the features of [`features`]) is a multinomial logistic regression
//! trained on NewsMTSC's news sentences; it reads where the target is, what is said on either side of it, the
//! verbs it is agent or patient of, and whether it speaks or is quoted. It is embedded in the binary
//! (`models/stance.bin`) and is the only thing loaded at construction; analysis does no I/O.
//!
//! The article verdict is the author's: a mention inside a quotation or inside the reported speech of another
//! entity ("X said Y is a disaster") says what X thinks of Y, so it counts for less toward the article's stance
//! toward Y and is reported as a relation instead (see [`crate::relations`]). How the readings of an entity
//! become its verdict is learnt: [`article`], a small logistic regression over summaries of the readings and
//! their context, cross-validated and calibrated on PerSenT.

use std::ops::Range;

use super::lexicon::Lexicon;
use super::text::TextView;
use crate::types::{Entity, EntityType, Field, Stance, StanceLabel};

pub mod article;
pub mod classes;
pub mod dense;
pub mod features;
pub mod model;

pub use model::{Model, ModelError};

use features::{token_range, Context, Features};

/// The committed model, gzip-compressed (see the README, "Retraining the stance model").
const EMBEDDED_MODEL: &[u8] = include_bytes!(repo_file!("models/stance.bin"));

/// The embedded mention model.
///
/// # Panics
/// If the embedded file does not load, which is a build defect (a model from other features, say).
pub fn embedded_model() -> Model {
    let mut model = match Model::from_bytes(EMBEDDED_MODEL) {
        Ok(m) => m,
        Err(e) => panic!("embedded models/stance.bin: {e}"),
    };
    model.temperature = embedded_temperature();
    model
}

/// The temperature fitted for the embedded model's probabilities (`stancewatch train calibration`, which
/// writes `models/stance-calibration.json`), so that a reading's probability for its label is the chance that
/// the label is right.
///
/// # Panics
/// If the embedded file is malformed, a build defect.
pub fn embedded_temperature() -> f32 {
    #[derive(serde::Deserialize)]
    struct Calibration {
        temperature: f32,
    }
    match serde_json::from_str::<Calibration>(EMBEDDED_CALIBRATION) {
        Ok(c) if c.temperature > 0.0 => c.temperature,
        _ => panic!("embedded models/stance-calibration.json has no positive temperature"),
    }
}

const EMBEDDED_CALIBRATION: &str = include_str!(repo_file!("models/stance-calibration.json"));

/// What the model says about one entity in one body or title sentence.
#[derive(Debug, Clone)]
pub struct MentionStance {
    pub entity: usize,
    pub field: Field,
    pub sentence: usize,
    /// Token range of the sentence in its field's view.
    pub sentence_tokens: Range<usize>,
    /// The entity's mentions in the sentence, as token ranges into the sentence.
    pub spans: Vec<Range<usize>>,
    /// Probabilities of against, neutral, favor.
    pub probs: [f32; 3],
    /// The entity speaks in this sentence ("X said ...").
    pub speaker: bool,
    /// Every mention of the entity here is inside quotation marks or the reported speech of another entity.
    pub attributed: bool,
    /// The entity is not named in this sentence, only referred to by a personal pronoun resolved to it.
    pub pronoun: bool,
}

impl MentionStance {
    /// Favor minus against probability, in [-1, 1].
    pub fn polarity(&self) -> f32 {
        self.probs[classes::FAVOR] - self.probs[classes::AGAINST]
    }

    pub fn label(&self) -> StanceLabel {
        classes::label_of(classes::argmax(&self.probs))
    }
}

/// Scores every (entity, sentence) pair of body and title, in entity then field then sentence order.
pub fn mention_stances(
    lexicon: &Lexicon,
    model: &Model,
    body: &TextView<'_>,
    title: Option<&TextView<'_>>,
    entities: &[Entity],
) -> Vec<MentionStance> {
    let mut out = Vec::new();
    for (field, view) in [(Field::Body, Some(body)), (Field::Title, title)] {
        let Some(view) = view else { continue };
        let tokens = view.tokens();
        // Mentions of every entity per sentence, in sentence-local token ranges.
        let mut per_sentence: Vec<Vec<(usize, Range<usize>)>> =
            vec![Vec::new(); view.sentences().len()];
        for (e, entity) in entities.iter().enumerate() {
            for m in entity.mentions.iter().filter(|m| m.field == field) {
                let r = token_range(tokens, m.start, m.end);
                if r.is_empty() {
                    continue;
                }
                let s = tokens[r.start].sentence;
                let sentence = &view.sentences()[s].tokens;
                // Mentions never cross a sentence (the recogniser cuts them), but a reading must not
                // index past its sentence even if one did.
                let end = r.end.min(sentence.end);
                per_sentence[s].push((e, r.start - sentence.start..end - sentence.start));
            }
        }
        let mut pronouns = vec![false; per_sentence.len()];
        if field == Field::Body {
            resolve_pronouns(view, entities, &mut per_sentence, &mut pronouns);
        }
        let mut features = Features::new(model.bits);
        for (s, mentions) in per_sentence.iter().enumerate() {
            if mentions.is_empty() {
                continue;
            }
            let range = view.sentences()[s].tokens.clone();
            let ctx = Context::new(lexicon, &tokens[range.clone()]);
            let speakers: Vec<usize> = mentions
                .iter()
                .filter(|(_, r)| ctx.is_speaker(r))
                .map(|(e, _)| *e)
                .collect();
            let mut done: Vec<usize> = Vec::new();
            for &(e, _) in mentions {
                if done.contains(&e) {
                    continue;
                }
                done.push(e);
                let spans: Vec<Range<usize>> = mentions
                    .iter()
                    .filter(|(x, _)| *x == e)
                    .map(|(_, r)| r.clone())
                    .collect();
                model.read(&ctx, &spans, &mut features);
                let speaker = speakers.contains(&e);
                let other_speaker = speakers.iter().any(|&x| x != e);
                let attributed =
                    !speaker && (spans.iter().all(|r| ctx.in_quote(r)) || other_speaker);
                out.push(MentionStance {
                    entity: e,
                    field,
                    sentence: s,
                    sentence_tokens: range.clone(),
                    spans,
                    probs: model.probabilities(&features),
                    speaker,
                    attributed,
                    pronoun: pronouns[s],
                });
            }
        }
    }
    out.sort_by_key(|m| (m.entity, m.field != Field::Body, m.sentence));
    out
}

/// Subject and possessive pronouns that can stand for a person named before.
const PERSONAL: &[&str] = &["he", "she", "his", "her", "him"];

/// Adds, to sentences that name no person, the personal pronouns there as mentions of the person named last
/// before them. Articles about someone name them once or twice and say "he" or "she" for the rest; without
/// this, most of what an article says about its subject would go unread. Deliberately simple: no gender or
/// number agreement, and only while no other person has been named since.
fn resolve_pronouns(
    view: &TextView<'_>,
    entities: &[Entity],
    per_sentence: &mut [Vec<(usize, Range<usize>)>],
    pronoun_sentence: &mut [bool],
) {
    let tokens = view.tokens();
    let mut last_person: Option<usize> = None;
    for (s, sentence) in view.sentences().iter().enumerate() {
        let persons: Vec<&(usize, Range<usize>)> = per_sentence[s]
            .iter()
            .filter(|(e, _)| entities[*e].entity_type == EntityType::Person)
            .collect();
        if let Some(last) = persons.iter().max_by_key(|(_, r)| r.start) {
            last_person = Some(last.0);
            continue;
        }
        let Some(person) = last_person else { continue };
        let base = sentence.tokens.start;
        let spans: Vec<Range<usize>> = sentence
            .tokens
            .clone()
            .filter(|&i| PERSONAL.contains(&tokens[i].lower.as_str()))
            .map(|i| i - base..i - base + 1)
            .collect();
        if !spans.is_empty() {
            pronoun_sentence[s] = true;
            per_sentence[s].extend(spans.into_iter().map(|r| (person, r)));
        }
    }
}

/// Fills in the stance of every entity. Returns the per-sentence scores, which relations reuse.
pub fn score(
    lexicon: &Lexicon,
    model: &Model,
    body: &TextView<'_>,
    title: Option<&TextView<'_>>,
    entities: &mut [Entity],
) -> Vec<MentionStance> {
    let mentions = mention_stances(lexicon, model, body, title, entities);
    article::verdicts(
        article::fast_model(),
        lexicon,
        body,
        title,
        &mentions,
        entities,
    );
    mentions
}

/// A neutral verdict with no evidence, for entities nothing can be said about.
pub fn no_stance() -> Stance {
    Stance {
        label: StanceLabel::Neutral,
        score: 0.5,
        evidence: Vec::new(),
    }
}

#[cfg(test)]
mod tests;
