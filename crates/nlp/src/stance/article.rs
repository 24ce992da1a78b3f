//! The article's stance toward one entity, learnt: what the mention readings of an entity say, where they
//! sit and how they relate to the entity, summed up into a few numbers, and a small multinomial logistic
//! regression over them that gives a distribution over against/neutral/favor. The label's score is that
//! distribution's probability for it, recalibrated (Platt) so that it is the probability that the label is
//! right. Pure: no I/O; the weights are embedded (`models/article-*.json`, written by
//! `stancewatch train article`, see the `lab` crate's `article_train`).
//!
//! What a reading's context is ([`ReadingContext`]): field and position (title, first paragraph, last
//! paragraph), whose words (the author's, a quotation, another speaker's report, the entity speaking),
//! the entity's role around a stance-bearing word (agent or patient of a word with a sign: "X praised",
//! "accused X"), around a harm word (agent of harm, "Russian strikes"; patient or place of harm, "strikes
//! left Kyiv without heat", "victims of"), a mention in passing as a place ("in Kyiv"), and whether the
//! sentence carries any stance-bearing word at all. Harm done to an entity is kept apart from what is said
//! against it: readings where the entity is the patient or place of harm feed features of their own, so
//! the model learns how much such a reading says (the hand-written cases it is trained on say: nothing).
//! An entity without stance-bearing evidence gets neutral, and a score that says how sure that is.

// Class-indexed arithmetic over small fixed arrays reads clearer with indices.
#![allow(clippy::needless_range_loop)]

use std::ops::Range;

use super::classes::{AGAINST, FAVOR, NEUTRAL};
use super::features::Context;
use super::MentionStance;
use crate::lexicon::Lexicon;
use crate::text::{TextView, Token};
use crate::types::{Entity, Evidence, Field, Stance};

/// Words of physical harm, damage and loss: an entity that is their patient or place is a victim, and a
/// negative reading there is not a stance against it.
const HARM: &[&str] = &[
    "attack",
    "attacks",
    "attacked",
    "attacking",
    "strike",
    "strikes",
    "struck",
    "striking",
    "airstrike",
    "airstrikes",
    "shell",
    "shelled",
    "shelling",
    "bomb",
    "bombs",
    "bombed",
    "bombing",
    "bombings",
    "bombard",
    "bombarded",
    "bombardment",
    "kill",
    "kills",
    "killed",
    "killing",
    "killings",
    "hit",
    "hits",
    "injure",
    "injured",
    "injuring",
    "wound",
    "wounded",
    "wounding",
    "destroy",
    "destroyed",
    "destroying",
    "destruction",
    "damage",
    "damaged",
    "damaging",
    "target",
    "targeted",
    "targeting",
    "raid",
    "raided",
    "raids",
    "invade",
    "invaded",
    "invasion",
    "occupied",
    "besieged",
    "siege",
    "pounded",
    "pounding",
    "battered",
    "devastated",
    "devastating",
    "ravaged",
    "flooded",
    "flooding",
    "shot",
    "shooting",
    "stabbed",
    "kidnapped",
    "abducted",
    "assaulted",
    "robbed",
    "looted",
    "murdered",
    "murder",
    "massacre",
    "massacred",
    "raped",
    "tortured",
    "hurt",
    "harmed",
    "victim",
    "victims",
    "casualties",
    "dead",
    "died",
    "death",
    "deaths",
    "mourned",
    "mourning",
    "blackout",
    "blackouts",
    "outage",
    "outages",
    "missile",
    "missiles",
    "drone",
    "drones",
    "rocket",
    "rockets",
    "shelter",
    "evacuated",
    "displaced",
    "suffered",
    "suffering",
    "explosion",
    "explosions",
    "blast",
    "fire",
    "quake",
    "earthquake",
    "storm",
    "hurricane",
    "without",
];

/// Verbs whose subject undergoes what happens ("Ukraine suffered", "he lost his home", "she died").
const UNDERGO: &[&str] = &[
    "suffered",
    "suffers",
    "suffer",
    "suffering",
    "endured",
    "endures",
    "lost",
    "loses",
    "died",
    "dies",
    "fled",
    "flee",
    "mourned",
    "mourns",
    "faced",
    "faces",
    "sheltered",
    "survived",
    "remains",
    "remained",
];

/// Prepositions that put a name in the place of an event ("in Kyiv", "across Kharkiv", "parts of Kyiv").
const LOCATIVE: &[&str] = &[
    "in",
    "at",
    "on",
    "across",
    "near",
    "from",
    "of",
    "into",
    "around",
    "outside",
    "inside",
    "over",
    "throughout",
    "to",
];

pub fn is_harm_word(lower: &str) -> bool {
    HARM.contains(&lower)
}

/// What one mention reading is, besides its probabilities: where it sits and how the entity stands in it.
#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ReadingContext {
    pub title: bool,
    /// Body paragraph index (paragraphs are cut at line breaks); 0 in the title.
    pub paragraph: usize,
    /// In the first body paragraph.
    pub lead: bool,
    /// In the last body paragraph (of two or more).
    pub last: bool,
    pub speaker: bool,
    pub attributed: bool,
    pub pronoun: bool,
    /// A mention inside quotation marks.
    pub quoted: bool,
    /// The entity is the agent of a stance-bearing word, positive or negative after negation ("X praised",
    /// "X was accused by Y" makes Y the agent).
    pub agent_pos: bool,
    pub agent_neg: bool,
    /// The entity is the patient of one ("praised X", "X was criticised").
    pub patient_pos: bool,
    pub patient_neg: bool,
    /// The entity does harm ("Russia attacked", "Russian strikes", "killed by X").
    pub harm_agent: bool,
    /// The entity suffers harm or is its place ("attacked X", "X was shelled", "strikes left much of X
    /// without heat", "victims in X").
    pub harm_patient: bool,
    /// A place in passing: the mention follows a locative preposition.
    pub locative: bool,
    /// The sentence holds a word with a lexicon valence: there is something that could take a side.
    pub stance_words: bool,
    /// Other entities named in the sentence.
    pub others: u8,
}

/// Paragraph index of each body sentence: a sentence whose first token follows a line break starts one.
pub fn paragraphs(body: &TextView<'_>) -> Vec<usize> {
    let tokens = body.tokens();
    let mut p = 0usize;
    body.sentences()
        .iter()
        .enumerate()
        .map(|(s, sentence)| {
            if s > 0
                && sentence
                    .tokens
                    .clone()
                    .next()
                    .is_some_and(|i| tokens[i].newline_before)
            {
                p += 1;
            }
            p
        })
        .collect()
}

/// The context of every reading, in the order of `mentions`. `paragraph_of` is [`paragraphs`] of the body.
pub fn contexts(
    lexicon: &Lexicon,
    body: &TextView<'_>,
    title: Option<&TextView<'_>>,
    paragraph_of: &[usize],
    mentions: &[MentionStance],
) -> Vec<ReadingContext> {
    let last_paragraph = paragraph_of.last().copied().unwrap_or(0);
    // Contexts are built once per sentence, for all the readings there; mentions come sorted by entity, so
    // the sentences are gathered first.
    let mut out = vec![ReadingContext::default(); mentions.len()];
    let mut by_sentence: Vec<(Field, usize, usize)> = mentions
        .iter()
        .enumerate()
        .map(|(i, m)| (m.field, m.sentence, i))
        .collect();
    by_sentence.sort_by_key(|&(f, s, i)| (f == Field::Title, s, i));
    let mut k = 0;
    while k < by_sentence.len() {
        let (field, s, _) = by_sentence[k];
        let mut end = k;
        while end < by_sentence.len() && by_sentence[end].0 == field && by_sentence[end].1 == s {
            end += 1;
        }
        let view = match field {
            Field::Body => Some(body),
            Field::Title => title,
        };
        if let Some(view) = view.filter(|v| s < v.sentences().len()) {
            let range = view.sentences()[s].tokens.clone();
            let tokens = &view.tokens()[range];
            let ctx = Context::new(lexicon, tokens);
            let stance_words = (0..ctx.len()).any(|i| ctx.valence(i) != 0.0);
            let entities_here = end - k;
            for &(_, _, i) in &by_sentence[k..end] {
                let m = &mentions[i];
                let mut c = read_roles(&ctx, tokens, &m.spans);
                c.title = field == Field::Title;
                if field == Field::Body {
                    c.paragraph = paragraph_of.get(s).copied().unwrap_or(0);
                    c.lead = c.paragraph == 0;
                    c.last = last_paragraph > 0 && c.paragraph == last_paragraph;
                }
                c.speaker = m.speaker;
                c.attributed = m.attributed;
                c.pronoun = m.pronoun;
                c.stance_words = stance_words;
                c.others = u8::try_from(entities_here - 1).unwrap_or(u8::MAX);
                out[i] = c;
            }
        }
        k = end;
    }
    out
}

/// The entity's roles in one sentence, from its mentions there (token ranges into the sentence).
fn read_roles(ctx: &Context<'_>, tokens: &[Token], spans: &[Range<usize>]) -> ReadingContext {
    let n = ctx.len();
    let mut c = ReadingContext::default();
    let mut in_target = vec![false; n];
    for s in spans.iter().filter(|s| s.end <= n) {
        in_target[s.clone()].iter_mut().for_each(|x| *x = true);
    }
    let harm_at = |i: usize| is_harm_word(ctx.form(i));
    for s in spans.iter().filter(|s| !s.is_empty() && s.end <= n) {
        c.quoted |= ctx.in_quote(s);
        // The word after: "X praised", "X was praised", "X's strikes", "X suffered".
        if let Some((j, passive, negated)) = ctx.verb_after(s, &in_target) {
            // Irregular participles of harm ("was hit", "were shot") are passive too.
            let passive = passive
                || (s.end..j).any(|i| {
                    matches!(
                        ctx.form(i),
                        "was" | "were" | "been" | "being" | "is" | "are" | "got"
                    )
                });
            let v = ctx.valence(j);
            let positive = (v > 0.0) != negated;
            if v != 0.0 {
                match (passive, positive) {
                    (false, true) => c.agent_pos = true,
                    (false, false) => c.agent_neg = true,
                    (true, true) => c.patient_pos = true,
                    (true, false) => c.patient_neg = true,
                }
            }
            if UNDERGO.contains(&ctx.form(j)) {
                c.harm_patient = true;
            } else if harm_at(j) {
                if passive || ctx.form(j) == "without" {
                    c.harm_patient = true;
                } else {
                    c.harm_agent = true;
                }
            }
        }
        // The word before: "accused X", "praised by X", "attacks on X", "killed by X".
        if let Some((j, by)) = ctx.word_before(s, &in_target) {
            let v = ctx.valence(j);
            if v != 0.0 {
                match (by, v > 0.0) {
                    (true, true) => c.agent_pos = true,
                    (true, false) => c.agent_neg = true,
                    (false, true) => c.patient_pos = true,
                    (false, false) => c.patient_neg = true,
                }
            }
            if harm_at(j) {
                if by {
                    c.harm_agent = true;
                } else {
                    c.harm_patient = true;
                }
            }
        }
        // A place: a locative preposition right before (past determiners and names it is listed with:
        // "in Kyiv and Kharkiv"); harm anywhere in the sentence makes it the place of that harm ("strikes
        // left much of Kyiv without heat").
        let mut j = s.start;
        let mut steps = 0;
        while j > 0 && steps < 6 {
            let f = ctx.form(j - 1);
            let name = tokens[j - 1].is_capitalised() && !tokens[j - 1].sentence_initial;
            if matches!(
                f,
                "the" | "a" | "an" | "much" | "parts" | "part" | "all" | "and" | "or" | ","
            ) || name
            {
                j -= 1;
                steps += 1;
            } else {
                break;
            }
        }
        if j > 0 && LOCATIVE.contains(&ctx.form(j - 1)) {
            c.locative = true;
            if (0..n).any(|i| !in_target[i] && harm_at(i)) && !c.harm_agent {
                c.harm_patient = true;
            }
        }
    }
    c
}

/// Names of the features the article model reads, in order (the weights file lists them, and a file with
/// other names is refused).
pub const FEATURE_NAMES: [&str; FEATURES] = [
    "mean_against",
    "mean_neutral",
    "mean_favor",
    "max_against",
    "max_favor",
    "share_against",
    "share_favor",
    "title_margin",
    "lead_margin",
    "log_readings",
    "agent_positive",
    "agent_negative",
    "patient_positive",
    "patient_negative",
    "harm_margin",
    "harm_share",
    "attributed_margin",
    "speaker_share",
    "locative_share",
];

/// Number of features the article model reads (its bias aside).
pub const FEATURES: usize = 19;

/// Weight of a reading where the entity is only quoted or reported by another speaker (someone else's
/// stance), against 1 for the author's own.
const ATTRIBUTED_WEIGHT: f32 = 0.5;

/// The model's inputs for one entity from its readings and their contexts (pairs in any order).
///
/// Readings where the entity is the patient or place of harm are kept out of the means and maxima and
/// summed up in `harm_margin` and `harm_share` instead; the others ("clean") give the means (attributed
/// readings at half weight), the maxima over body readings, the shares read as against and favor, and the
/// title's and first paragraph's margins (favor minus against). Role and position shares count all.
pub fn features(readings: &[(&MentionStance, &ReadingContext)]) -> [f32; FEATURES] {
    let n = readings.len().max(1) as f32;
    let weight = |c: &ReadingContext| if c.attributed { ATTRIBUTED_WEIGHT } else { 1.0 };
    let mut mean = [0f32; 3];
    let mut total = 0f32;
    let mut max = [0f32; 3];
    let mut share = [0f32; 3];
    let (mut title, mut title_w) = (0f32, 0f32);
    let (mut lead, mut lead_w) = (0f32, 0f32);
    let (mut harm, mut harm_w, mut harm_n) = (0f32, 0f32, 0f32);
    let (mut att, mut att_w, mut att_n) = (0f32, 0f32, 0f32);
    let mut roles = [0f32; 6];
    for &(m, c) in readings {
        let w = weight(c);
        let margin = m.probs[FAVOR] - m.probs[AGAINST];
        for (k, flag) in [
            c.agent_pos,
            c.agent_neg,
            c.patient_pos,
            c.patient_neg,
            c.speaker,
            c.locative,
        ]
        .into_iter()
        .enumerate()
        {
            roles[k] += f32::from(u8::from(flag));
        }
        if c.attributed {
            att += w * margin;
            att_w += w;
            att_n += 1.0;
        }
        if c.harm_patient {
            harm += w * margin;
            harm_w += w;
            harm_n += 1.0;
            continue;
        }
        for k in 0..3 {
            mean[k] += w * m.probs[k];
        }
        total += w;
        share[super::classes::argmax(&m.probs)] += 1.0;
        if c.title {
            title += w * margin;
            title_w += w;
        } else {
            for k in 0..3 {
                max[k] = max[k].max(m.probs[k]);
            }
            if c.lead {
                lead += w * margin;
                lead_w += w;
            }
        }
    }
    let ratio = |a: f32, b: f32| if b > 0.0 { a / b } else { 0.0 };
    [
        ratio(mean[AGAINST], total),
        ratio(mean[NEUTRAL], total),
        ratio(mean[FAVOR], total),
        max[AGAINST],
        max[FAVOR],
        share[AGAINST] / n,
        share[FAVOR] / n,
        ratio(title, title_w),
        ratio(lead, lead_w),
        (1.0 + readings.len() as f32).ln() / 3.0,
        roles[0] / n,
        roles[1] / n,
        roles[2] / n,
        roles[3] / n,
        ratio(harm, harm_w) * harm_n / n,
        harm_n / n,
        ratio(att, att_w) * att_n / n,
        roles[4] / n,
        roles[5] / n,
    ]
}

/// A fitted article model: standardisation, a multinomial logistic regression over against, neutral,
/// favor, and the Platt map from the label's log-probability to the probability that the label is right.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ArticleModel {
    /// The feature names, as [`FEATURE_NAMES`].
    pub features: Vec<String>,
    pub mean: Vec<f32>,
    pub scale: Vec<f32>,
    /// `[class][0]` is the bias, `[class][1 + k]` the weight of standardised feature `k`.
    pub weights: Vec<Vec<f32>>,
    /// score = sigmoid(platt[0] * ln p(label) + platt[1]).
    pub platt: [f32; 2],
    /// How it was fitted (settings, cross-validated figures); not read.
    #[serde(default)]
    pub note: serde_json::Value,
}

#[derive(Debug, thiserror::Error)]
pub enum ArticleModelError {
    #[error("article model file: {0}")]
    Json(#[from] serde_json::Error),
    #[error("article model file: features {found:?} are not this build's {expected:?}")]
    Features {
        found: Vec<String>,
        expected: Vec<&'static str>,
    },
    #[error("article model file: {0} numbers where {1} are needed")]
    Shape(usize, usize),
}

impl ArticleModel {
    pub fn from_json(text: &str) -> Result<Self, ArticleModelError> {
        let m: ArticleModel = serde_json::from_str(text)?;
        if m.features.iter().map(String::as_str).ne(FEATURE_NAMES) {
            return Err(ArticleModelError::Features {
                found: m.features,
                expected: FEATURE_NAMES.to_vec(),
            });
        }
        for (v, len) in [(m.mean.len(), FEATURES), (m.scale.len(), FEATURES)] {
            if v != len {
                return Err(ArticleModelError::Shape(v, len));
            }
        }
        if m.weights.len() != 3 || m.weights.iter().any(|w| w.len() != FEATURES + 1) {
            return Err(ArticleModelError::Shape(
                m.weights.iter().map(Vec::len).sum(),
                3 * (FEATURES + 1),
            ));
        }
        Ok(m)
    }

    /// Probabilities of against, neutral, favor.
    pub fn probs(&self, x: &[f32; FEATURES]) -> [f32; 3] {
        let mut z = [0f32; 3];
        for (c, w) in self.weights.iter().enumerate() {
            z[c] = w[0];
            for k in 0..FEATURES {
                z[c] += w[k + 1] * (x[k] - self.mean[k]) / self.scale[k];
            }
        }
        super::classes::softmax(z)
    }

    /// The calibrated probability that `class` is right, given the model's probabilities.
    pub fn score(&self, probs: &[f32; 3], class: usize) -> f32 {
        let z = self.platt[0] * probs[class].max(1e-6).ln() + self.platt[1];
        1.0 / (1.0 + (-z).exp())
    }
}

const FAST_WEIGHTS: &str = include_str!(repo_file!("models/article-fast.json"));
const ACCURATE_WEIGHTS: &str = include_str!(repo_file!("models/article-accurate.json"));

/// The embedded article model of fast mode (fitted over the fast mention model's readings).
///
/// # Panics
/// If the embedded file does not load, which is a build defect caught by the first test.
pub fn fast_model() -> &'static ArticleModel {
    static MODEL: std::sync::OnceLock<ArticleModel> = std::sync::OnceLock::new();
    MODEL.get_or_init(|| {
        ArticleModel::from_json(FAST_WEIGHTS)
            .unwrap_or_else(|e| panic!("embedded models/article-fast.json: {e}"))
    })
}

/// The embedded article model of accurate mode (fitted over the transformer's readings).
///
/// # Panics
/// As [`fast_model`].
pub fn accurate_model() -> &'static ArticleModel {
    static MODEL: std::sync::OnceLock<ArticleModel> = std::sync::OnceLock::new();
    MODEL.get_or_init(|| {
        ArticleModel::from_json(ACCURATE_WEIGHTS)
            .unwrap_or_else(|e| panic!("embedded models/article-accurate.json: {e}"))
    })
}

/// Evidence sentences per verdict.
const MAX_EVIDENCE: usize = 3;

/// Every entity's verdict from all the readings of the article (any order), written into `entities`.
pub fn verdicts(
    model: &ArticleModel,
    lexicon: &Lexicon,
    body: &TextView<'_>,
    title: Option<&TextView<'_>>,
    mentions: &[MentionStance],
    entities: &mut [Entity],
) {
    let paragraph_of = paragraphs(body);
    let contexts = contexts(lexicon, body, title, &paragraph_of, mentions);
    let mut by_entity: Vec<Vec<(&MentionStance, &ReadingContext)>> =
        vec![Vec::new(); entities.len()];
    for (m, c) in mentions.iter().zip(&contexts) {
        if let Some(v) = by_entity.get_mut(m.entity) {
            v.push((m, c));
        }
    }
    for (entity, mine) in entities.iter_mut().zip(&by_entity) {
        entity.stance = verdict(model, body, mine);
    }
}

/// One entity's verdict from its readings and their contexts. An entity with no readings gets what the
/// model says of no evidence: neutral, with the score it has earned on such entities.
pub fn verdict(
    model: &ArticleModel,
    body: &TextView<'_>,
    readings: &[(&MentionStance, &ReadingContext)],
) -> Stance {
    let probs = model.probs(&features(readings));
    let class = super::classes::argmax(&probs);
    let label = super::classes::label_of(class);
    let score = f64::from(model.score(&probs, class));
    Stance {
        label,
        score: (score * 10_000.0).round() / 10_000.0,
        evidence: evidence(model, body, readings, class, probs),
    }
}

/// The body sentences that drove the verdict, highest contribution first: a reading's contribution is how
/// much the label's log-probability drops when the reading is left out. Readings whose removal would raise
/// it are not evidence for it.
fn evidence(
    model: &ArticleModel,
    body: &TextView<'_>,
    readings: &[(&MentionStance, &ReadingContext)],
    class: usize,
    probs: [f32; 3],
) -> Vec<Evidence> {
    let full = probs[class].max(1e-9).ln();
    let mut others: Vec<(&MentionStance, &ReadingContext)> = Vec::with_capacity(readings.len());
    let mut ranked: Vec<(usize, f32)> = Vec::new();
    for (i, &(m, context)) in readings.iter().enumerate() {
        // A neutral verdict's evidence is where a side could have been taken and was not: a sentence that
        // only mentions the entity, with no stance-bearing word, does not bear on it. (A favor or against
        // verdict keeps every sentence that drove it: the mention model also reads stance the lexicon lacks.)
        let bears = context.stance_words || class != NEUTRAL;
        if m.field != Field::Body || m.sentence >= body.sentences().len() || !bears {
            continue;
        }
        others.clear();
        others.extend(
            readings
                .iter()
                .enumerate()
                .filter(|&(j, _)| j != i)
                .map(|(_, r)| *r),
        );
        let without = model.probs(&features(&others))[class].max(1e-9).ln();
        let contribution = full - without;
        if contribution > 0.0 {
            ranked.push((m.sentence, contribution));
        }
    }
    ranked.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    let mut out: Vec<Evidence> = Vec::new();
    for (s, _) in ranked {
        if out.len() == MAX_EVIDENCE {
            break;
        }
        if out.iter().any(|e| e.sentence == s) {
            continue;
        }
        let sentence = &body.sentences()[s];
        out.push(Evidence {
            sentence: s,
            start: sentence.start,
            end: sentence.end,
            text: body.sentence_text(s).to_string(),
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::super::super::StanceLabel;
    use super::*;

    #[test]
    fn embedded_models_load() {
        assert_eq!(fast_model().features.len(), FEATURES);
        assert_eq!(accurate_model().features.len(), FEATURES);
    }

    #[test]
    fn paragraphs_are_cut_at_line_breaks() {
        let body = TextView::new("One. Two.\nThree.\n\nFour. Five.");
        assert_eq!(paragraphs(&body), vec![0, 0, 1, 2, 2]);
    }

    #[test]
    fn harm_done_to_a_place_is_not_a_stance_against_it() {
        let pipeline = crate::Pipeline::new();
        let doc = crate::Document {
            title: Some("Russian strikes leave Kyiv without heat"),
            body: "Russian strikes left Kyiv without heat as temperatures fell to minus 15.\n\
                   Engineers worked to restore the grid. Residents gathered in heated tents set up by the city.",
            declared_language: Some("en"),
        };
        let a = pipeline.analyze(&doc);
        let kyiv = a
            .entities
            .iter()
            .find(|e| e.name == "Kyiv")
            .expect("Kyiv found");
        assert_ne!(kyiv.stance.label, StanceLabel::Against, "{:?}", kyiv.stance);
    }

    #[test]
    fn roles_of_harm() {
        let lexicon = Lexicon::embedded();
        let roles = |text: &str, name: &str| {
            let view = TextView::new(text);
            let tokens = view.tokens();
            let i = tokens
                .iter()
                .position(|t| t.norm == name)
                .expect("name in text");
            let ctx = Context::new(&lexicon, tokens);
            read_roles(&ctx, tokens, std::slice::from_ref(&(i..i + 1)))
        };
        assert!(roles("Russia attacked Kyiv overnight.", "Kyiv").harm_patient);
        assert!(roles("Russia attacked Kyiv overnight.", "Russia").harm_agent);
        assert!(!roles("Russia attacked Kyiv overnight.", "Russia").harm_patient);
        assert!(roles("Lebanon was hit by airstrikes.", "Lebanon").harm_patient);
        assert!(roles("Moldova suffered power cuts.", "Moldova").harm_patient);
        assert!(roles("Strikes left parts of Kharkiv in darkness.", "Kharkiv").harm_patient);
        assert!(roles("Experts praised Estonia warmly.", "Estonia").patient_pos);
        assert!(roles("Talks resumed in Geneva on Monday.", "Geneva").locative);
        assert!(!roles("Talks resumed in Geneva on Monday.", "Geneva").harm_patient);
    }
}
