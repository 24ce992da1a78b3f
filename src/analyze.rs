//! The one door from the service to the NLP: loading the pipeline the configuration asks for (knowledge-base
//! files, accurate mode), and enriching one article with it, a panic inside the NLP turned into a rejection.
//!
//! The stream reaches the inference crate only through here, so its loading errors, its versioning and its
//! failure modes are handled in one place, and tests can put their own [`Analyze`] in the pipeline's stead.

use crate::article::{Article, RejectReason, Rejection};
use crate::config::{NlpConfig, NlpMode};
use crate::enriched::EnrichedArticle;
use crate::nlp::{Analysis, Document, Pipeline};

/// Anything that turns a document into an analysis. The service and the offline commands use
/// [`Pipeline`]; tests substitute their own to exercise failure paths such as a panicking model.
pub trait Analyze: Send + Sync {
    fn analyze(&self, doc: &Document<'_>) -> Analysis;

    /// The `pipeline_version` of the records made from its analyses.
    fn version(&self) -> &'static str {
        Pipeline::VERSION
    }
}

impl Analyze for Pipeline {
    fn analyze(&self, doc: &Document<'_>) -> Analysis {
        Pipeline::analyze(self, doc)
    }

    fn version(&self) -> &'static str {
        Pipeline::version(self)
    }
}

impl<F: Fn(&Document<'_>) -> Analysis + Send + Sync> Analyze for F {
    fn analyze(&self, doc: &Document<'_>) -> Analysis {
        self(doc)
    }
}

/// The pipeline with the user's knowledge-base files added (`nlp.knowledge_base_files`). This is the one place
/// that reads them, for the service and the offline commands alike.
pub fn load_pipeline(knowledge_base_files: &[std::path::PathBuf]) -> Result<Pipeline, LoadError> {
    let mut extensions = Vec::with_capacity(knowledge_base_files.len());
    for path in knowledge_base_files {
        let text = std::fs::read_to_string(path).map_err(|source| LoadError::Read {
            path: path.clone(),
            source,
        })?;
        extensions.push((path.display().to_string(), text));
    }
    Ok(Pipeline::with_knowledge_base_extensions(&extensions)?)
}

/// The pipeline the configuration asks for: [`load_pipeline`] with its knowledge-base files, and in accurate
/// mode the transformer loaded over the base weights of `nlp.accurate.base_dir`. A missing base file is an
/// error naming it and the setup script, so the service stops at start-up rather than run in another mode.
pub fn load_pipeline_for(nlp: &NlpConfig) -> Result<Pipeline, LoadError> {
    let pipeline = load_pipeline(&nlp.knowledge_base_files)?;
    match nlp.mode {
        NlpMode::Fast => Ok(pipeline),
        #[cfg(feature = "accurate")]
        NlpMode::Accurate => {
            use crate::nlp::accurate::pipeline::{Accurate, AccurateOptions};
            let a = &nlp.accurate;
            let accurate = Accurate::load(
                &a.base_dir,
                AccurateOptions {
                    max_batch: a.max_batch,
                    max_sentences: a.max_sentences,
                    max_tokens: a.max_tokens,
                },
            )?;
            Ok(pipeline.with_accurate(accurate))
        }
        #[cfg(not(feature = "accurate"))]
        NlpMode::Accurate => Err(LoadError::NoAccurateMode),
    }
}

#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    // Not marked as the source: the message already includes it, and error chains would print it twice.
    #[cfg(feature = "accurate")]
    #[error("nlp.mode = \"accurate\": {0}")]
    Accurate(crate::nlp::accurate::AccurateError),
    #[cfg(not(feature = "accurate"))]
    #[error("nlp.mode = \"accurate\", but this build has no accurate mode (build with the `accurate` feature)")]
    NoAccurateMode,
    #[error("cannot read knowledge base file {}: {source}; fix the path in nlp.knowledge_base_files", path.display())]
    Read {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    Extension(#[from] crate::nlp::ExtensionError),
}

#[cfg(feature = "accurate")]
impl From<crate::nlp::accurate::AccurateError> for LoadError {
    fn from(e: crate::nlp::accurate::AccurateError) -> Self {
        LoadError::Accurate(e)
    }
}

/// Runs the analysis of one article, turning a panic inside it into a [`RejectReason::NlpPanic`] rejection so
/// that one pathological article cannot take the service down.
pub fn enrich(analyzer: &dyn Analyze, article: Article) -> Result<EnrichedArticle, Rejection> {
    let analysis = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        analyzer.analyze(&Document {
            title: article.title.as_deref(),
            body: &article.body,
            declared_language: article.language.as_deref(),
        })
    }))
    .map_err(|panic| {
        let what = panic
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| panic.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "unknown panic payload".to_string());
        Rejection::new(
            RejectReason::NlpPanic,
            format!("the NLP pipeline panicked: {what}"),
        )
    })?;
    Ok(EnrichedArticle::with_version(
        article,
        analysis,
        analyzer.version(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::article::Limits;
    use crate::nlp::EntityType;

    #[test]
    fn knowledge_base_files_add_entities_and_aliases() {
        let mut f = tempfile::NamedTempFile::new().unwrap();
        use std::io::Write;
        writeln!(f, "# the desk's own watchlist").unwrap();
        writeln!(
            f,
            r#"{{"name":"Harbour Energy Cooperative","type":"ORG","aliases":["HEC"]}}"#
        )
        .unwrap();
        writeln!(
            f,
            r#"{{"id":"Q7747","name":"Vladimir Putin","type":"PERSON","aliases":["VVP"]}}"#
        )
        .unwrap();
        let pipeline = load_pipeline(&[f.path().to_path_buf()]).unwrap();
        let json =
            r#"{"id":"w","body":"HEC signed a deal. Later, VVP spoke to reporters in Moscow."}"#;
        let e = super::enrich(
            &pipeline,
            Article::parse(json.as_bytes(), Limits::default()).unwrap(),
        )
        .unwrap();
        let hec = e
            .entities
            .iter()
            .find(|x| x.name == "Harbour Energy Cooperative")
            .expect("watchlist entity found");
        assert_eq!(hec.entity_type, EntityType::Org);
        assert_eq!(hec.entity_id, "kb:harbour-energy-cooperative");
        let putin = e
            .entities
            .iter()
            .find(|x| x.entity_id == "Q7747")
            .expect("alias added to a known entity");
        assert!(
            putin.mentions.iter().any(|m| m.text == "VVP"),
            "{:?}",
            putin.mentions
        );

        let mut bad = tempfile::NamedTempFile::new().unwrap();
        writeln!(bad, r#"{{"name":"Ok","type":"ORG"}}"#).unwrap();
        writeln!(bad, r#"{{"name":"Broken","type":"PLANET"}}"#).unwrap();
        let msg = load_pipeline(&[bad.path().to_path_buf()])
            .err()
            .unwrap()
            .to_string();
        assert!(
            msg.contains("line 2") && msg.contains(&bad.path().display().to_string()),
            "{msg}"
        );
        let msg = load_pipeline(&["/nonexistent/watch.jsonl".into()])
            .err()
            .unwrap()
            .to_string();
        assert!(msg.contains("nlp.knowledge_base_files"), "{msg}");
    }

    #[test]
    fn a_panicking_analyzer_becomes_a_rejection() {
        let article = Article::parse(SAMPLE.as_bytes(), Limits::default()).unwrap();
        let boom = |_: &Document<'_>| -> Analysis { panic!("model exploded") };
        let err = super::enrich(&boom, article).unwrap_err();
        assert_eq!(err.reason, RejectReason::NlpPanic);
        assert!(err.message.contains("model exploded"), "{}", err.message);
    }

    /// Accurate mode without its base weights does not start, and says which file is missing and how to get it.
    #[cfg(feature = "accurate")]
    #[test]
    fn accurate_mode_without_base_weights_names_the_file_and_the_script() {
        let dir = tempfile::tempdir().unwrap();
        let mut nlp = crate::config::Config::defaults().nlp;
        nlp.mode = NlpMode::Accurate;
        nlp.accurate.base_dir = dir.path().to_path_buf();
        let msg = load_pipeline_for(&nlp)
            .err()
            .expect("accurate mode without weights must not start")
            .to_string();
        let script = crate::nlp::accurate::SETUP_SCRIPT;
        assert!(
            msg.contains("accurate") && msg.contains("model.safetensors") && msg.contains(script),
            "{msg}"
        );
    }

    const SAMPLE: &str = r#"{"id":"t-1","title":"Summit in Paris","body":"President Emmanuel Macron welcomed Chancellor Friedrich Merz to Paris on Monday."}"#;
}
