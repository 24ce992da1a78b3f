//! The vocabulary of the analysis, and the wire schema of `entities[]` (and `relations[]`) in the enriched
//! records: what goes in ([`Document`]), what comes out ([`Analysis`]: the language, the entities with their
//! mentions and stance, the relations between them). The serde attributes here *are* the output contract; the
//! service embeds these types in its records unchanged.

use serde::{Deserialize, Serialize};

use crate::text;

/// What the pipeline reads: the article's text fields, nothing about transport.
#[derive(Debug, Clone, Copy)]
pub struct Document<'a> {
    pub title: Option<&'a str>,
    pub body: &'a str,
    /// The producer's BCP-47 tag, if it sent one; detection still runs and is reported beside it.
    pub declared_language: Option<&'a str>,
}

/// What the pipeline found in one article.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Analysis {
    pub language: LanguageInfo,
    pub entities: Vec<Entity>,
    /// Who says what about whom: stances of one entity toward another, as the article reports them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub relations: Vec<Relation>,
    /// Machine-readable notes on how trustworthy the analysis is, e.g. `unsupported_language`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LanguageInfo {
    /// ISO 639-1 code when it has one (`en`), else ISO 639-3; `und` when undetermined.
    pub code: String,
    /// Detector confidence in [0, 1]; 0 when undetermined.
    pub confidence: f64,
    /// False when the text is known to be in a language the models were not trained on (not for `und`); the
    /// article is still processed.
    pub supported: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum EntityType {
    Person,
    Org,
    Location,
    Group,
    Misc,
}

impl EntityType {
    pub const ALL: [EntityType; 5] = [
        Self::Person,
        Self::Org,
        Self::Location,
        Self::Group,
        Self::Misc,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Person => "PERSON",
            Self::Org => "ORG",
            Self::Location => "LOCATION",
            Self::Group => "GROUP",
            Self::Misc => "MISC",
        }
    }
}

/// Which field of the article a mention's offsets point into.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Field {
    #[default]
    Body,
    Title,
}

impl Field {
    fn is_body(&self) -> bool {
        *self == Field::Body
    }
}

/// One occurrence of an entity in the text.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Mention {
    /// Code-point offset of the first character, into `field`.
    pub start: usize,
    /// Code-point offset one past the last character.
    pub end: usize,
    pub text: String,
    /// Index of the sentence holding the mention, within `field`.
    pub sentence: usize,
    #[serde(default, skip_serializing_if = "Field::is_body")]
    pub field: Field,
    /// The title, office or party word written before the name ("Sen.", "Prime Minister", "Democrat"): kept
    /// here, left out of `text` and of the entity's name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
}

/// All mentions of one real-world thing within one article.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Entity {
    /// Stable across articles: the knowledge-base id (a Wikidata QID or `kb:<slug>`) when known, else `sw:` and
    /// a slug of `name`.
    pub entity_id: String,
    /// Canonical name: the knowledge-base name, else the fullest form seen.
    pub name: String,
    #[serde(rename = "type")]
    pub entity_type: EntityType,
    pub mentions: Vec<Mention>,
    /// How central the entity is to the article, in [0, 1].
    pub salience: f64,
    pub stance: Stance,
    /// Mentions left out of `mentions` to keep the output record within its size limits.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub truncated_mentions: usize,
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StanceLabel {
    Favor,
    Against,
    Neutral,
}

impl StanceLabel {
    pub const ALL: [StanceLabel; 3] = [Self::Favor, Self::Against, Self::Neutral];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Favor => "favor",
            Self::Against => "against",
            Self::Neutral => "neutral",
        }
    }
}

/// The article's stance toward one entity, with the sentences that carry it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Stance {
    pub label: StanceLabel,
    /// Confidence in `label`, in [0, 1].
    pub score: f64,
    pub evidence: Vec<Evidence>,
}

/// A body sentence that supports a stance verdict.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Evidence {
    /// Sentence index in the body.
    pub sentence: usize,
    /// Code-point span of the sentence in the body (of its first [`Evidence::MAX_CHARS`] code points when
    /// it is longer).
    pub start: usize,
    pub end: usize,
    /// The sentence itself, so an analyst can check the verdict without the body at hand: the body's text
    /// from `start` to `end`.
    pub text: String,
}

impl Evidence {
    /// Longest evidence text, in code points. Sentences are at most [`text::MAX_SENTENCE_TOKENS`] tokens, but
    /// one token can be a megabyte of letters.
    pub const MAX_CHARS: usize = 1000;

    /// Sentence `s` of the body as evidence.
    pub fn of_sentence(body: &text::TextView<'_>, s: usize) -> Self {
        let sentence = &body.sentences()[s];
        let text = body.sentence_text(s);
        let (end, text) = match text.char_indices().nth(Self::MAX_CHARS) {
            Some((cut, _)) => (sentence.start + Self::MAX_CHARS, &text[..cut]),
            None => (sentence.end, text),
        };
        Evidence {
            sentence: s,
            start: sentence.start,
            end,
            text: text.to_string(),
        }
    }
}

/// One entity's stance toward another, as reported by the article ("Turkey condemned Armenia"): the
/// source is the speaker or agent, the target what the statement is about.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Relation {
    /// `entity_id` of the speaker or agent.
    pub source: String,
    /// `entity_id` of what the statement is about.
    pub target: String,
    pub stance: RelationStance,
    pub evidence: Evidence,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RelationStance {
    pub label: StanceLabel,
    /// Confidence in `label`, in [0, 1].
    pub score: f64,
}
