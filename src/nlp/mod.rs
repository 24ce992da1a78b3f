//! Text in, entities and stances out.
//!
//! `nlp` is the pure core of stancewatch: no Kafka, no async, no globals, no I/O after construction. The Kafka
//! runner, the offline `process` command, the quality evaluations and the speed benchmarks all call the same
//! [`Pipeline::analyze`], so what is measured offline is what runs in production.
//!
//! The stages, in order: normalise and tokenise ([`text`]), identify the language ([`lang`]), find entity
//! candidates from the knowledge base and capitalised spans ([`entities`]), merge mentions into entities within
//! the article, then score stance per mention from a sentiment lexicon and aggregate it per entity ([`stance`]).
//! Offsets everywhere are in Unicode scalar values (code points) into the original, un-normalised field text,
//! `end` exclusive, so `text == field.chars().skip(start).take(end - start)` always holds.

use serde::{Deserialize, Serialize};

#[cfg(feature = "accurate")]
pub mod accurate;
pub mod entities;
pub mod kb;
pub mod lang;
pub mod lexicon;
pub mod ner;
pub mod relations;
pub mod stance;
mod tables;
pub mod text;

#[cfg(test)]
mod evaluation;
#[cfg(test)]
mod tests;

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
}

/// All mentions of one real-world thing within one article.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Entity {
    /// Stable across articles: the knowledge-base id (a Wikidata QID) when known, else derived from `name`.
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

/// A knowledge-base extension that could not be loaded.
#[derive(Debug, thiserror::Error)]
#[error("knowledge base extension {name}, {source}; each line must be a JSON object in the kb/ format (see kb/README.md)")]
pub struct ExtensionError {
    pub name: String,
    pub source: kb::KbError,
}

/// The whole analysis, built once (knowledge base and lexicon parsed at construction) and shared read-only
/// between worker threads.
pub struct Pipeline {
    kb: kb::KnowledgeBase,
    recogniser: entities::Recogniser,
    lexicon: lexicon::Lexicon,
    stance_model: stance::Model,
    /// Accurate mode: the transformer re-reads the entity-bearing sentences (see [`accurate`]).
    #[cfg(feature = "accurate")]
    accurate: Option<accurate::pipeline::Accurate>,
}

impl Pipeline {
    /// A pipeline over the knowledge base, entity model and lexicon embedded in the binary.
    ///
    /// # Panics
    /// If the embedded model is unreadable: that is a build defect, caught by the first test that runs.
    pub fn new() -> Self {
        let kb = kb::KnowledgeBase::embedded();
        let tagger = ner::Tagger::embedded(&kb).unwrap_or_else(|e| panic!("{e}"));
        Self {
            recogniser: entities::Recogniser::new(&kb, tagger),
            kb,
            lexicon: lexicon::Lexicon::embedded(),
            stance_model: stance::embedded_model(),
            #[cfg(feature = "accurate")]
            accurate: None,
        }
    }

    /// This pipeline in accurate mode: mention stance from the transformer behind `accurate`.
    #[cfg(feature = "accurate")]
    pub fn with_accurate(mut self, accurate: accurate::pipeline::Accurate) -> Self {
        self.accurate = Some(accurate);
        self
    }

    /// The accurate-mode stance reader, when the pipeline runs in accurate mode.
    #[cfg(feature = "accurate")]
    pub fn accurate(&self) -> Option<&accurate::pipeline::Accurate> {
        self.accurate.as_ref()
    }

    /// A pipeline with another mention-stance model, e.g. one just trained and not yet embedded.
    pub fn with_stance_model(stance_model: stance::Model) -> Self {
        Self {
            stance_model,
            ..Self::new()
        }
    }

    /// A pipeline whose knowledge base is the embedded one extended by `extensions`: (name, JSON Lines text)
    /// pairs in the `kb/` format, typically a media-monitoring watchlist of the user's own entities and
    /// aliases. A record with a known id adds aliases to that entity. The error names the extension and line.
    pub fn with_knowledge_base_extensions(
        extensions: &[(String, String)],
    ) -> Result<Self, ExtensionError> {
        let mut pipeline = Self::new();
        for (name, text) in extensions {
            pipeline
                .kb
                .extend_jsonl(text)
                .map_err(|source| ExtensionError {
                    name: name.clone(),
                    source,
                })?;
        }
        Ok(pipeline)
    }

    /// Version of the analysis, recorded in every output so replays by a newer model can be told apart.
    pub const VERSION: &'static str = concat!("ner2p-stance-dense-", env!("CARGO_PKG_VERSION"));
    /// The version of the pipeline in accurate mode (transformer mention stance).
    pub const ACCURATE_VERSION: &'static str =
        concat!("ner2p-stance-minilm-", env!("CARGO_PKG_VERSION"));

    /// This pipeline's version: [`Pipeline::VERSION`], or [`Pipeline::ACCURATE_VERSION`] in accurate mode.
    pub fn version(&self) -> &'static str {
        #[cfg(feature = "accurate")]
        if self.accurate.is_some() {
            return Self::ACCURATE_VERSION;
        }
        Self::VERSION
    }

    pub fn analyze(&self, doc: &Document<'_>) -> Analysis {
        self.analyze_detailed(doc).0
    }

    /// [`Pipeline::analyze`], plus the model's reading of every (entity, sentence) pair the verdicts were
    /// aggregated from, for tuning and inspecting the aggregation.
    pub fn analyze_detailed(&self, doc: &Document<'_>) -> (Analysis, Vec<stance::MentionStance>) {
        let language = lang::identify(doc.title, doc.body, doc.declared_language);
        let mut warnings = Vec::new();
        if !language.supported {
            warnings.push("unsupported_language".to_string());
        }
        let body = text::TextView::new(doc.body);
        let title = doc.title.map(text::TextView::new);
        let mut found = entities::find(&self.kb, &self.recogniser, &body, title.as_ref());
        let mentions = self.stance(&body, title.as_ref(), &mut found, &mut warnings);
        let relations = relations::find(&self.lexicon, &body, &found, &mentions);
        let analysis = Analysis {
            language,
            entities: found,
            relations,
            warnings,
        };
        (analysis, mentions)
    }
}

impl Pipeline {
    /// Mention stances and entity verdicts, from the transformer in accurate mode, else the fast model.
    fn stance(
        &self,
        body: &text::TextView<'_>,
        title: Option<&text::TextView<'_>>,
        found: &mut [Entity],
        warnings: &mut Vec<String>,
    ) -> Vec<stance::MentionStance> {
        #[cfg(feature = "accurate")]
        if let Some(accurate) = &self.accurate {
            let (mentions, failure) =
                accurate.score(&self.lexicon, &self.stance_model, body, title, found);
            if failure.is_some() {
                // The fast readings stand in; the record says so rather than failing the article.
                warnings.push("accurate_model_failed".to_string());
            }
            return mentions;
        }
        let _ = warnings;
        stance::score(&self.lexicon, &self.stance_model, body, title, found)
    }
}

impl Default for Pipeline {
    fn default() -> Self {
        Self::new()
    }
}
