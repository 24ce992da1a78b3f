//! One verdict per entity per article from the model's per-sentence probabilities.
//!
//! The verdict is a weighted mean of the sentence probabilities: quoted or attributed sentences count less
//! (they are someone else's stance), the title and the lead count more (that is where news puts its framing).
//! The mean's favor-minus-against margin is labelled by two thresholds, and the confidence is a logistic map of
//! the distance from the nearest threshold. Every constant in [`Params::TUNED`] was chosen on PerSenT dev
//! (`stancewatch eval persent --tune`), a few numbers against several hundred articles.

use super::super::text::TextView;
use super::super::{Evidence, Field, Stance, StanceLabel};
use super::model::{AGAINST, FAVOR, NEUTRAL};
use super::MentionStance;

const MAX_EVIDENCE: usize = 3;

#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct Params {
    /// Weight of a sentence where the entity is only quoted or reported by another speaker.
    pub attributed_weight: f32,
    /// Weight of the title.
    pub title_weight: f32,
    /// Weight of the first `lead_sentences` body sentences.
    pub lead_weight: f32,
    pub lead_sentences: usize,
    /// Margins (favor minus against) above which the verdict is favor, below which against.
    pub favor_threshold: f32,
    pub against_threshold: f32,
    /// Slope of the confidence's logistic map of the margin's distance from the thresholds.
    pub confidence_slope: f32,
    /// Confidence at a threshold.
    pub confidence_bias: f32,
}

impl Params {
    pub const TUNED: Params = Params {
        attributed_weight: 0.5,
        title_weight: 2.0,
        lead_weight: 1.5,
        lead_sentences: 3,
        favor_threshold: 0.1,
        against_threshold: -0.1,
        confidence_slope: 6.0,
        confidence_bias: 0.0,
    };
}

/// The verdict with the tuned parameters.
pub fn verdict(body: &TextView<'_>, n_sentences: usize, mentions: &[&MentionStance]) -> Stance {
    verdict_with(&Params::TUNED, body, n_sentences, mentions)
}

/// Weighted mean probabilities of against, neutral, favor.
pub fn mean_probs(p: &Params, mentions: &[&MentionStance]) -> Option<[f32; 3]> {
    let mut sum = [0f32; 3];
    let mut total = 0f32;
    for m in mentions {
        let w = weight(p, m);
        for (s, x) in sum.iter_mut().zip(m.probs) {
            *s += w * x;
        }
        total += w;
    }
    (total > 0.0).then(|| sum.map(|s| s / total))
}

fn weight(p: &Params, m: &MentionStance) -> f32 {
    let mut w = 1.0;
    if m.attributed {
        w *= p.attributed_weight;
    }
    match m.field {
        Field::Title => w *= p.title_weight,
        Field::Body if m.sentence < p.lead_sentences => w *= p.lead_weight,
        Field::Body => {}
    }
    w
}

/// Label and confidence from mean probabilities.
pub fn decide(p: &Params, mean: [f32; 3]) -> (StanceLabel, f32) {
    let margin = mean[FAVOR] - mean[AGAINST];
    let (label, distance) = if margin > p.favor_threshold {
        (StanceLabel::Favor, margin - p.favor_threshold)
    } else if margin < p.against_threshold {
        (StanceLabel::Against, p.against_threshold - margin)
    } else {
        let d = (margin - p.against_threshold).min(p.favor_threshold - margin);
        (StanceLabel::Neutral, d)
    };
    let confidence = 1.0 / (1.0 + (-(p.confidence_slope * distance + p.confidence_bias)).exp());
    (label, confidence)
}

pub fn verdict_with(
    p: &Params,
    body: &TextView<'_>,
    _n_sentences: usize,
    mentions: &[&MentionStance],
) -> Stance {
    let Some(mean) = mean_probs(p, mentions) else {
        return super::no_stance();
    };
    let (label, confidence) = decide(p, mean);
    // Evidence: body sentences that most support the label, the author's own before attributed ones.
    let class = match label {
        StanceLabel::Favor => FAVOR,
        StanceLabel::Against => AGAINST,
        StanceLabel::Neutral => NEUTRAL,
    };
    let mut ranked: Vec<(&MentionStance, f32)> = mentions
        .iter()
        .filter(|m| m.field == Field::Body)
        .filter(|m| label == StanceLabel::Neutral || m.label() == label)
        .map(|m| (*m, m.probs[class] * weight(p, m)))
        .collect();
    ranked.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.sentence.cmp(&b.0.sentence)));
    let evidence = ranked
        .iter()
        .take(MAX_EVIDENCE)
        .map(|(m, _)| {
            let s = &body.sentences()[m.sentence];
            Evidence {
                sentence: m.sentence,
                start: s.start,
                end: s.end,
                text: body.sentence_text(m.sentence).to_string(),
            }
        })
        .collect();
    Stance {
        label,
        score: round4(f64::from(confidence).clamp(0.0, 1.0)),
        evidence,
    }
}

fn round4(x: f64) -> f64 {
    (x * 10_000.0).round() / 10_000.0
}
