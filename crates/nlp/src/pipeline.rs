//! The pipeline: the stages of [`crate`] in order, built once and shared read-only between threads.

#[cfg(feature = "accurate")]
use crate::accurate;
use crate::types::{Analysis, Document, Entity};
use crate::{entities, kb, lang, lexicon, ner, relations, stance, text};

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
