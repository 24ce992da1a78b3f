//! The output contracts: `articles.enriched` and `entity-stances` records.
//!
//! Both are versioned with [`SCHEMA_VERSION`] and carry a deterministic `event_id`, derived from the article's
//! id and content and the pipeline version, so that a replay after a crash (at-least-once delivery) produces
//! byte-identical records that consumers and compacted topics can drop. Nothing here depends on Kafka: the
//! offline `process` command prints the same [`EnrichedArticle`] the service produces.

use std::fmt::Write as _;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use crate::article::{Article, RejectReason, Rejection};
use crate::config::OutputConfig;
use crate::nlp::{Analysis, Entity, EntityType, Pipeline, Relation, StanceLabel};

/// Bumped on any incompatible change to the records below.
pub const SCHEMA_VERSION: u32 = 1;

/// One enriched article, keyed by article id on `articles.enriched`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EnrichedArticle {
    pub schema_version: u32,
    pub event_id: String,
    pub id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub published_at: Option<String>,
    /// The detected language (ISO 639-1), falling back to the declared one when detection is unsure.
    pub language: String,
    pub language_confidence: f64,
    /// The producer's declared language, when it sent one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub declared_language: Option<String>,
    pub entities: Vec<Entity>,
    /// Stances of one entity toward another that the article reports ("X condemned Y"), by `entity_id`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub relations: Vec<Relation>,
    /// Notes on how far to trust this record, e.g. `unsupported_language`, `invalid_published_at`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
    /// The input's other fields, untouched.
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub extra: Map<String, Value>,
    /// What the output limits left out of this record, when they left out anything.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub truncated: Option<Truncated>,
    pub pipeline_version: String,
}

/// Counts of what was left out of an enriched record to keep it within the output limits
/// (`[output]` in the configuration): entities (the least salient), mentions (per entity, the last in reading
/// order; each entity's `truncated_mentions` says how many of its own) and relations.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Truncated {
    pub entities: usize,
    pub mentions: usize,
    pub relations: usize,
}

/// One (article, entity) stance, keyed by `entity_id` on `entity-stances` so that downstream aggregation
/// partitions by entity.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EntityStanceRecord {
    pub schema_version: u32,
    pub event_id: String,
    pub article_id: String,
    pub entity_id: String,
    pub name: String,
    #[serde(rename = "type")]
    pub entity_type: EntityType,
    pub label: StanceLabel,
    pub score: f64,
    pub salience: f64,
    /// Mentions of the entity in the article, including any the output limits left out of the enriched record.
    pub mentions: usize,
    /// The article's `source`, null when it has none.
    pub source: Option<String>,
    /// The article's `published_at`, null when it has none.
    pub published_at: Option<String>,
}

impl EnrichedArticle {
    /// Combines the input article with what the pipeline found in it.
    pub fn new(article: Article, analysis: Analysis) -> Self {
        Self::with_version(article, analysis, Pipeline::VERSION)
    }

    /// [`EnrichedArticle::new`] for the analysis of a pipeline of version `version` (accurate mode has its
    /// own, so that its records get their own `event_id`s).
    pub fn with_version(article: Article, analysis: Analysis, version: &str) -> Self {
        let event_id = article_event_id(&article, version);
        let mut warnings = analysis.warnings;
        if article.published_at.is_some() && article.published_at_parsed().is_none() {
            warnings.push("invalid_published_at".to_string());
        }
        EnrichedArticle {
            schema_version: SCHEMA_VERSION,
            event_id,
            id: article.id,
            title: article.title,
            url: article.url,
            source: article.source,
            published_at: article.published_at,
            language: analysis.language.code,
            language_confidence: analysis.language.confidence,
            declared_language: article.language,
            entities: analysis.entities,
            relations: analysis.relations,
            warnings,
            extra: article.extra,
            truncated: None,
            pipeline_version: version.to_string(),
        }
    }

    /// This record as JSON of at most `limits.max_record_bytes`, after applying the caps of `limits`: the most
    /// salient `max_entities` entities, the first `max_mentions_per_entity` mentions of each, the first
    /// `max_relations` relations. Should that still be too large, each entity keeps half as many mentions,
    /// then the relations and the least salient entities go by halves, until it fits; `truncated` counts all
    /// that was left out. Only an article whose metadata alone (title, url, extra fields) is too large is
    /// refused.
    pub fn to_bounded_json(&mut self, limits: &OutputConfig) -> Result<Vec<u8>, Rejection> {
        let mut cut = Truncated::default();
        self.keep_entities(limits.max_entities, &mut cut);
        self.keep_mentions(limits.max_mentions_per_entity, &mut cut);
        self.keep_relations(limits.max_relations, &mut cut);
        loop {
            self.truncated = (cut != Truncated::default()).then(|| cut.clone());
            let json = serde_json::to_vec(self).map_err(|e| {
                Rejection::new(RejectReason::OutputRejected, format!("serialising: {e}"))
            })?;
            if json.len() <= limits.max_record_bytes {
                return Ok(json);
            }
            let most_mentions = self.entities.iter().map(|e| e.mentions.len()).max();
            match most_mentions {
                Some(m) if m > 1 => self.keep_mentions(m / 2, &mut cut),
                _ if !self.relations.is_empty() => {
                    self.keep_relations(self.relations.len() / 2, &mut cut)
                }
                Some(_) => self.keep_entities(self.entities.len() / 2, &mut cut),
                None => {
                    return Err(Rejection::new(
                        RejectReason::OutputRejected,
                        format!(
                            "the article's metadata alone (title, url, other fields) takes {} bytes, over \
                             output.max_record_bytes = {}",
                            json.len(),
                            limits.max_record_bytes
                        ),
                    ))
                }
            }
        }
    }

    fn keep_entities(&mut self, n: usize, cut: &mut Truncated) {
        if self.entities.len() <= n {
            return;
        }
        cut.entities += self.entities.len() - n;
        self.entities.truncate(n);
        // Relations name entities by id; those about an entity no longer listed go too.
        let kept: std::collections::HashSet<&str> =
            self.entities.iter().map(|e| e.entity_id.as_str()).collect();
        let before = self.relations.len();
        self.relations
            .retain(|r| kept.contains(r.source.as_str()) && kept.contains(r.target.as_str()));
        cut.relations += before - self.relations.len();
    }

    fn keep_mentions(&mut self, n: usize, cut: &mut Truncated) {
        for e in &mut self.entities {
            if e.mentions.len() > n {
                let dropped = e.mentions.len() - n;
                e.mentions.truncate(n);
                e.truncated_mentions += dropped;
                cut.mentions += dropped;
            }
        }
    }

    fn keep_relations(&mut self, n: usize, cut: &mut Truncated) {
        if self.relations.len() > n {
            cut.relations += self.relations.len() - n;
            self.relations.truncate(n);
        }
    }

    /// The `entity-stances` records of this article, one per entity, in entity order.
    pub fn entity_stances(&self) -> Vec<EntityStanceRecord> {
        self.entities
            .iter()
            .map(|e| EntityStanceRecord {
                schema_version: SCHEMA_VERSION,
                event_id: short_hash(&[self.event_id.as_bytes(), e.entity_id.as_bytes()]),
                article_id: self.id.clone(),
                entity_id: e.entity_id.clone(),
                name: e.name.clone(),
                entity_type: e.entity_type,
                label: e.stance.label,
                score: e.stance.score,
                salience: e.salience,
                mentions: e.mentions.len() + e.truncated_mentions,
                source: self.source.clone(),
                published_at: self.published_at.clone(),
            })
            .collect()
    }
}

/// Same article content and same pipeline → same id, whatever partition or offset it arrived at.
fn article_event_id(a: &Article, version: &str) -> String {
    let none = b"\x00".as_slice();
    short_hash(&[
        version.as_bytes(),
        a.id.as_bytes(),
        a.title.as_deref().map_or(none, str::as_bytes),
        a.body.as_bytes(),
        a.language.as_deref().map_or(none, str::as_bytes),
    ])
}

/// 128 bits of SHA-256 over length-prefixed parts, hex: collision-free in practice and stable across releases
/// (unlike `std`'s hasher).
fn short_hash(parts: &[&[u8]]) -> String {
    let mut h = Sha256::new();
    for p in parts {
        h.update((p.len() as u64).to_le_bytes());
        h.update(p);
    }
    // One string written in place: this runs once per output record (~27 per article), and a `format!` per
    // byte showed up in the service's profile.
    let mut hex = String::with_capacity(32);
    for b in &h.finalize()[..16] {
        let _ = write!(hex, "{b:02x}");
    }
    hex
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::article::Limits;

    fn enrich(json: &str) -> EnrichedArticle {
        let article = Article::parse(json.as_bytes(), Limits::default()).unwrap();
        crate::analyze::enrich(&Pipeline::new(), article).unwrap()
    }

    const SAMPLE: &str = r#"{"id":"t-1","title":"Summit in Paris","body":"President Emmanuel Macron welcomed Chancellor Friedrich Merz to Paris on Monday. Macron praised the agreement, but critics in Germany condemned it.","source":"Test Wire","published_at":"2026-04-02T08:00:00+02:00","language":"en","desk":"europe"}"#;

    #[test]
    fn enriched_round_trips_through_json() {
        let e = enrich(SAMPLE);
        let json = serde_json::to_string(&e).unwrap();
        let back: EnrichedArticle = serde_json::from_str(&json).unwrap();
        assert_eq!(back, e);
        let v: Value = serde_json::from_str(&json).unwrap();
        assert_eq!(v["schema_version"], SCHEMA_VERSION);
        assert_eq!(v["extra"]["desk"], "europe");
        assert!(v["entities"].as_array().is_some_and(|a| !a.is_empty()));
        for ent in v["entities"].as_array().unwrap() {
            assert!(["PERSON", "ORG", "LOCATION", "GROUP", "MISC"]
                .contains(&ent["type"].as_str().unwrap()));
            assert!(
                ["favor", "against", "neutral"].contains(&ent["stance"]["label"].as_str().unwrap())
            );
            let score = ent["stance"]["score"].as_f64().unwrap();
            assert!((0.0..=1.0).contains(&score));
        }
    }

    #[test]
    fn mention_offsets_are_code_points_into_the_field() {
        let e = enrich(SAMPLE);
        let article = Article::parse(SAMPLE.as_bytes(), Limits::default()).unwrap();
        for m in e.entities.iter().flat_map(|e| &e.mentions) {
            let field = match m.field {
                crate::nlp::Field::Body => &article.body,
                crate::nlp::Field::Title => article.title.as_ref().unwrap(),
            };
            let slice: String = field.chars().skip(m.start).take(m.end - m.start).collect();
            assert_eq!(slice, m.text);
        }
    }

    #[test]
    fn entity_stance_records_round_trip_and_match_entities() {
        let e = enrich(SAMPLE);
        let records = e.entity_stances();
        assert_eq!(records.len(), e.entities.len());
        for (r, ent) in records.iter().zip(&e.entities) {
            assert_eq!(r.entity_id, ent.entity_id);
            assert_eq!(r.article_id, "t-1");
            assert_eq!(r.published_at.as_deref(), Some("2026-04-02T08:00:00+02:00"));
            let back: EntityStanceRecord =
                serde_json::from_str(&serde_json::to_string(r).unwrap()).unwrap();
            assert_eq!(&back, r);
        }
    }

    #[test]
    fn event_ids_are_deterministic_and_content_sensitive() {
        let a = enrich(SAMPLE);
        let b = enrich(SAMPLE);
        assert_eq!(a.event_id, b.event_id);
        assert_eq!(
            serde_json::to_string(&a).unwrap(),
            serde_json::to_string(&b).unwrap()
        );
        let changed = enrich(&SAMPLE.replace("Monday", "Tuesday"));
        assert_ne!(a.event_id, changed.event_id);
        let ids: std::collections::HashSet<_> =
            a.entity_stances().into_iter().map(|r| r.event_id).collect();
        assert_eq!(ids.len(), a.entities.len());
    }

    #[test]
    fn invalid_published_at_is_flagged_not_rejected() {
        let e = enrich(&SAMPLE.replace("2026-04-02T08:00:00+02:00", "yesterday"));
        assert!(e.warnings.contains(&"invalid_published_at".to_string()));
    }
}
