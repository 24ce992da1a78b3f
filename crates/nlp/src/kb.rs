//! The knowledge base of known entities and the phrase matcher that finds them in text.
//!
//! Known entities (countries and cities, organisations, people, groups) come from JSON Lines files embedded at
//! build time from `kb/`, one entity per line. Their names, aliases and demonyms are tokenised with the same
//! tokeniser as article text and stored in a token trie, so matching an article is one left-to-right pass that
//! takes the longest phrase at each position. Matching is case-sensitive on the diacritic-free normalised form:
//! "Turkey" the country is not "turkey" the bird, but "Erdoğan" and "Erdogan" are the same man.

use std::collections::HashMap;
use std::ops::Range;

use serde::Deserialize;
use sha2::Digest as _;

use crate::text::{self, TextView, Token};
use crate::types::EntityType;

/// A known entity.
#[derive(Debug, Clone, PartialEq)]
pub struct KbEntity {
    /// The file's id (a Wikidata QID or `kb:<slug>`), else `kb:<slug of name>`; never `sw:`, which marks names
    /// outside the knowledge base.
    pub id: String,
    pub name: String,
    pub entity_type: EntityType,
    /// Finer class from the file: `country`, `city`, `person`, `political_party`, ...
    pub kind: String,
    /// Country of a city or person, as the file names it.
    pub country: Option<String>,
    pub role: Option<String>,
    pub iso: Option<String>,
    /// Notability in (0, 1]: which of two entities sharing a name or a surname a bare mention means.
    pub prior: f64,
    /// Searched for in text on its own; when false the phrase only links a name the tagger found (bulk
    /// places and people whose names are also common words or other people's names).
    pub match_alone: bool,
}

/// Notability of an entity whose line gives none.
pub const DEFAULT_PRIOR: f64 = 0.5;

/// How a phrase refers to its entity. The order is the priority when two entities claim the same phrase: a
/// canonical name beats an alias, which beats a demonym ("Armenians" the group over the country's demonym).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum MatchKind {
    Name,
    Alias,
    Capital,
    Demonym,
}

/// A knowledge-base phrase found in a text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KbMatch {
    /// Index into [`KnowledgeBase::entities`].
    pub entity: usize,
    pub kind: MatchKind,
    /// Token indices in the view that was searched.
    pub tokens: Range<usize>,
}

/// A line of a knowledge-base file that could not be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {message}")]
pub struct KbError {
    /// 1-based line number.
    pub line: usize,
    pub message: String,
}

/// One line of a knowledge-base file. Unknown fields are ignored so the files can carry more than we use.
#[derive(Debug, Deserialize)]
struct Record {
    #[serde(default)]
    id: Option<String>,
    name: String,
    #[serde(rename = "type")]
    entity_type: EntityType,
    #[serde(default)]
    kind: Option<String>,
    #[serde(default)]
    aliases: Vec<String>,
    #[serde(default)]
    demonyms: Vec<String>,
    #[serde(default)]
    capital: Option<String>,
    #[serde(default)]
    iso: Option<String>,
    #[serde(default)]
    country: Option<String>,
    #[serde(default)]
    role: Option<String>,
    #[serde(default)]
    prior: Option<f64>,
    #[serde(default)]
    match_alone: Option<bool>,
}

const EMBEDDED: [(&str, &str); 5] = [
    (
        "kb/countries.jsonl",
        include_str!(repo_file!("kb/countries.jsonl")),
    ),
    (
        "kb/organizations.jsonl",
        include_str!(repo_file!("kb/organizations.jsonl")),
    ),
    (
        "kb/people.jsonl",
        include_str!(repo_file!("kb/people.jsonl")),
    ),
    (
        "kb/groups.jsonl",
        include_str!(repo_file!("kb/groups.jsonl")),
    ),
    // Generated places load last: a curated entity keeps a phrase a generated one of equal standing claims.
    (
        "kb/places.jsonl",
        include_str!(repo_file!("kb/places.jsonl")),
    ),
];

/// Known entities and a matcher over all the phrases that name them.
#[derive(Debug, Clone, Default)]
pub struct KnowledgeBase {
    entities: Vec<KbEntity>,
    by_id: HashMap<String, usize>,
    phrases: PhraseTrie<(usize, MatchKind)>,
    /// People by the keys of their surname ("Clinton", "von der Leyen"), for mentions that give only that.
    surnames: HashMap<String, Vec<usize>>,
}

impl KnowledgeBase {
    /// The knowledge base compiled into the binary.
    ///
    /// # Panics
    /// If an embedded file is malformed: that is a build defect, caught by the first test that runs.
    pub fn embedded() -> Self {
        let mut kb = KnowledgeBase::default();
        for (file, text) in EMBEDDED {
            if let Err(e) = kb.extend_jsonl(text) {
                panic!("embedded knowledge base {file}, {e}");
            }
        }
        kb
    }

    /// A knowledge base from JSON Lines text, one entity per line; blank lines and `#` comments are skipped.
    pub fn from_jsonl(text: &str) -> Result<Self, KbError> {
        let mut kb = KnowledgeBase::default();
        kb.extend_jsonl(text)?;
        Ok(kb)
    }

    /// Adds the entities of JSON Lines text. A record whose id is already known adds its aliases and demonyms
    /// to that entity instead of creating a second one. Nothing is added when any line is bad.
    pub fn extend_jsonl(&mut self, text: &str) -> Result<(), KbError> {
        let mut records = Vec::new();
        for (i, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let record: Record = serde_json::from_str(line).map_err(|e| KbError {
                line: i + 1,
                message: e.to_string(),
            })?;
            if kb_id(&record.name).is_none() {
                return Err(KbError {
                    line: i + 1,
                    message: "entity name has no letters or digits".into(),
                });
            }
            if let Some(id) = record.id.as_deref().filter(|id| id.starts_with("sw:")) {
                return Err(KbError {
                    line: i + 1,
                    message: format!(
                        "id {id:?} begins with `sw:`, which marks names outside the knowledge base; \
                         give a Wikidata QID, a `kb:` id, or none"
                    ),
                });
            }
            if let Some(prior) = record.prior.filter(|p| !(*p > 0.0 && *p <= 1.0)) {
                return Err(KbError {
                    line: i + 1,
                    message: format!("prior {prior} is not in (0, 1]"),
                });
            }
            records.push(record);
        }
        let mut capitals = Vec::new();
        for record in records {
            let id = match record.id.as_deref().map(str::trim) {
                Some(id) if !id.is_empty() => id.to_string(),
                _ => kb_id(&record.name).unwrap_or_default(),
            };
            let idx = match self.by_id.get(&id) {
                Some(&idx) => idx,
                None => {
                    self.entities.push(KbEntity {
                        id: id.clone(),
                        name: record.name.trim().to_string(),
                        entity_type: record.entity_type,
                        kind: record.kind.unwrap_or_default(),
                        country: record.country,
                        role: record.role,
                        iso: record.iso,
                        prior: record.prior.unwrap_or(DEFAULT_PRIOR),
                        match_alone: record.match_alone.unwrap_or(true),
                    });
                    self.by_id.insert(id, self.entities.len() - 1);
                    self.entities.len() - 1
                }
            };
            if self.entities[idx].entity_type == EntityType::Person {
                for name in std::iter::once(&record.name).chain(&record.aliases) {
                    self.add_surname(name, idx);
                }
            }
            self.add_phrase(&record.name, idx, MatchKind::Name);
            for alias in &record.aliases {
                self.add_phrase(alias, idx, MatchKind::Alias);
            }
            for demonym in &record.demonyms {
                self.add_phrase(demonym, idx, MatchKind::Demonym);
            }
            if let Some(capital) = record.capital {
                capitals.push((capital, record.name));
            }
        }
        // A capital the files do not list as a city of its own still is a place worth recognising.
        for (capital, country) in capitals {
            if self.phrases.get(&phrase_keys(&capital)).is_some() {
                continue;
            }
            let Some(id) = kb_id(&capital) else {
                continue;
            };
            if self.by_id.contains_key(&id) {
                continue;
            }
            self.entities.push(KbEntity {
                id: id.clone(),
                name: capital.trim().to_string(),
                entity_type: EntityType::Location,
                kind: "city".into(),
                country: Some(country),
                role: None,
                iso: None,
                prior: DEFAULT_PRIOR,
                match_alone: true,
            });
            let idx = self.entities.len() - 1;
            self.by_id.insert(id, idx);
            self.add_phrase(&capital, idx, MatchKind::Capital);
        }
        Ok(())
    }

    /// A phrase two entities claim goes to the better kind of match, then to the more notable entity, then to
    /// the one loaded first (the curated files load before the generated ones).
    fn add_phrase(&mut self, phrase: &str, entity: usize, kind: MatchKind) {
        let keys = phrase_keys(phrase);
        if keys.is_empty() {
            return;
        }
        let entities = &self.entities;
        self.phrases.insert(&keys, (entity, kind), |old, new| {
            (new.1, -entities[new.0].prior) < (old.1, -entities[old.0].prior)
        });
    }

    /// Indexes a person under the last word of a name of two words or more, and under everything after the
    /// first word when that is several words ("von der Leyen", "Le Pen").
    fn add_surname(&mut self, name: &str, entity: usize) {
        let keys = phrase_keys(name);
        if keys.len() < 2 {
            return;
        }
        let mut tails = vec![keys[keys.len() - 1].clone()];
        if keys.len() > 2 {
            tails.push(keys[1..].join(" "));
        }
        for tail in tails {
            let people = self.surnames.entry(tail).or_default();
            if !people.contains(&entity) {
                people.push(entity);
            }
        }
    }

    /// The people whose surname is the phrase with these token keys, most notable first.
    pub fn people_with_surname(&self, keys: &[String]) -> Vec<usize> {
        let mut people = self
            .surnames
            .get(&keys.join(" "))
            .cloned()
            .unwrap_or_default();
        people.sort_by(|&a, &b| self.entities[b].prior.total_cmp(&self.entities[a].prior));
        people
    }

    pub fn entities(&self) -> &[KbEntity] {
        &self.entities
    }

    pub fn entity(&self, idx: usize) -> &KbEntity {
        &self.entities[idx]
    }

    pub fn by_id(&self, id: &str) -> Option<&KbEntity> {
        self.by_id.get(id).map(|&i| &self.entities[i])
    }

    /// Every phrase the matcher knows, as token keys, with the entity it names and how; the NER gazetteer is
    /// built from these.
    pub fn phrases(&self) -> Vec<(Vec<String>, usize, MatchKind)> {
        let mut out = Vec::new();
        self.phrases.walk(&mut Vec::new(), 0, &mut |keys, v| {
            out.push((keys.to_vec(), v.0, v.1))
        });
        out
    }

    /// The entity a whole phrase (token keys) names, if the knowledge base has it.
    pub fn lookup(&self, keys: &[String]) -> Option<(usize, MatchKind)> {
        self.phrases.get(keys).copied()
    }

    /// The longest known phrase starting at token `start`, within its sentence.
    pub fn match_at(&self, view: &TextView<'_>, start: usize) -> Option<KbMatch> {
        let (len, (entity, kind)) = self.phrases.longest_at(view.tokens(), start)?;
        Some(KbMatch {
            entity,
            kind,
            tokens: start..start + len,
        })
    }

    /// All known phrases of a text, left to right, longest first, never overlapping.
    pub fn find_all(&self, view: &TextView<'_>) -> Vec<KbMatch> {
        let mut found = Vec::new();
        let mut i = 0;
        while i < view.tokens().len() {
            match self.match_at(view, i) {
                Some(m) => {
                    i = m.tokens.end;
                    found.push(m);
                }
                None => i += 1,
            }
        }
        found
    }
}

/// The matching keys of a phrase's tokens, as the article tokeniser would produce them.
pub fn phrase_keys(phrase: &str) -> Vec<String> {
    TextView::new(phrase)
        .tokens()
        .iter()
        .map(|t| t.key.clone())
        .collect()
}

/// `sw:<slug>` for an entity outside the knowledge base: lowercase, diacritics dropped, every run of other
/// characters turned into one '-'. Letters of other scripts are kept, so non-Latin names still get an id.
/// `None` when the name has no letters or digits at all.
pub fn derive_id(name: &str) -> Option<String> {
    slug_id("sw:", name)
}

/// `kb:<slug>`: the id of a knowledge-base entity whose line gives none.
pub fn kb_id(name: &str) -> Option<String> {
    slug_id("kb:", name)
}

fn slug_id(prefix: &str, name: &str) -> Option<String> {
    let folded = text::strip_diacritics(&text::normalize(name)).to_lowercase();
    let mut slug = String::with_capacity(folded.len());
    for c in folded.chars() {
        if c.is_alphanumeric() {
            slug.push(c);
        } else if !slug.is_empty() && !slug.ends_with('-') {
            slug.push('-');
        }
    }
    while slug.ends_with('-') {
        slug.pop();
    }
    if slug.is_empty() {
        return None;
    }
    if slug.len() + prefix.len() > MAX_ID_BYTES {
        // Cut on a character boundary and made unique again by a hash of the whole slug.
        let digest = sha2::Sha256::digest(slug.as_bytes());
        let suffix: String = digest[..6].iter().map(|b| format!("{b:02x}")).collect();
        let mut cut = MAX_ID_BYTES - prefix.len() - suffix.len() - 1;
        while !slug.is_char_boundary(cut) {
            cut -= 1;
        }
        slug.truncate(cut);
        slug.push('-');
        slug.push_str(&suffix);
    }
    Some(format!("{prefix}{slug}"))
}

/// Longest entity id, in bytes. Ids are Kafka keys of the `entity-stances` topic and label values in
/// dashboards: they must stay short whatever the text.
pub const MAX_ID_BYTES: usize = 256;

/// Token-sequence trie: each edge is one token key. Shared by the knowledge base and by the per-article
/// matcher that finds body entities again in a title.
#[derive(Debug, Clone)]
pub struct PhraseTrie<V> {
    nodes: Vec<TrieNode<V>>,
}

#[derive(Debug, Clone)]
struct TrieNode<V> {
    children: HashMap<String, usize>,
    value: Option<V>,
}

impl<V> Default for PhraseTrie<V> {
    fn default() -> Self {
        PhraseTrie {
            nodes: vec![TrieNode {
                children: HashMap::new(),
                value: None,
            }],
        }
    }
}

impl<V: Clone> PhraseTrie<V> {
    /// Stores `value` under `keys`; when the phrase already has a value, `replace(old, new)` decides.
    pub fn insert(&mut self, keys: &[String], value: V, replace: impl Fn(&V, &V) -> bool) {
        let mut node = 0;
        for key in keys {
            node = match self.nodes[node].children.get(key) {
                Some(&next) => next,
                None => {
                    self.nodes.push(TrieNode {
                        children: HashMap::new(),
                        value: None,
                    });
                    let next = self.nodes.len() - 1;
                    self.nodes[node].children.insert(key.clone(), next);
                    next
                }
            };
        }
        let slot = &mut self.nodes[node].value;
        match slot {
            Some(old) if !replace(old, &value) => {}
            _ => *slot = Some(value),
        }
    }

    /// Calls `f` with the keys and value of every stored phrase below `node`, in no particular order.
    fn walk(&self, keys: &mut Vec<String>, node: usize, f: &mut impl FnMut(&[String], &V)) {
        if let Some(v) = &self.nodes[node].value {
            f(keys, v);
        }
        for (key, &child) in &self.nodes[node].children {
            keys.push(key.clone());
            self.walk(keys, child, f);
            keys.pop();
        }
    }

    pub fn get(&self, keys: &[String]) -> Option<&V> {
        let mut node = 0;
        for key in keys {
            node = *self.nodes[node].children.get(key)?;
        }
        self.nodes[node].value.as_ref()
    }

    /// Length and value of the longest stored phrase that starts at `tokens[start]` and stays in its sentence.
    pub fn longest_at(&self, tokens: &[Token], start: usize) -> Option<(usize, V)> {
        let sentence = tokens.get(start)?.sentence;
        let mut node = 0;
        let mut best = None;
        for (len, token) in tokens[start..].iter().enumerate() {
            if token.sentence != sentence {
                break;
            }
            match self.nodes[node].children.get(token.key.as_str()) {
                Some(&next) => node = next,
                None => break,
            }
            if let Some(v) = &self.nodes[node].value {
                best = Some((len + 1, v.clone()));
            }
        }
        best
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_loads_and_matches_names_aliases_demonyms() {
        let kb = KnowledgeBase::embedded();
        assert!(!kb.entities().is_empty());
        let text = "Russian leader Putin met Erdoğan, then Erdogan met the Turkish side.";
        let view = TextView::new(text);
        let found: Vec<(&str, &str)> = kb
            .find_all(&view)
            .iter()
            .map(|m| {
                (
                    kb.entity(m.entity).id.as_str(),
                    view.span_text(m.tokens.clone()),
                )
            })
            .collect();
        // Wikidata ids: stable while the files grow.
        assert_eq!(
            found,
            vec![
                ("Q159", "Russian"),
                ("Q7747", "Putin"),
                ("Q39259", "Erdoğan"),
                ("Q39259", "Erdogan"),
                ("Q43", "Turkish")
            ]
        );
    }

    #[test]
    fn longest_match_wins_and_case_matters() {
        let kb = KnowledgeBase::from_jsonl(
            r#"{"name": "Bank", "type": "ORG"}
            {"id": "Q1", "name": "Bank of England", "type": "ORG", "kind": "bank", "aliases": ["BoE"]}

            # comment
            {"name": "Turkey", "type": "LOCATION", "capital": "Ankara", "demonyms": ["Turkish"], "extra": 1}"#,
        )
        .unwrap();
        let view = TextView::new("The Bank of England and the turkey. Bank. Ankara’s BoE");
        let found: Vec<&str> = kb
            .find_all(&view)
            .iter()
            .map(|m| view.span_text(m.tokens.clone()))
            .collect();
        assert_eq!(found, vec!["Bank of England", "Bank", "Ankara", "BoE"]);
        assert_eq!(
            kb.by_id("kb:ankara").unwrap().entity_type,
            EntityType::Location
        );
        assert_eq!(kb.by_id("Q1").unwrap().kind, "bank");
        assert_eq!(kb.by_id("kb:turkey").unwrap().name, "Turkey");
    }

    #[test]
    fn bad_lines_report_their_number() {
        let err =
            KnowledgeBase::from_jsonl("{\"name\": \"A\", \"type\": \"ORG\"}\n{\"name\": \"B\"}")
                .unwrap_err();
        assert_eq!(err.line, 2);
        assert!(err.to_string().starts_with("line 2: "), "{err}");
        let err = KnowledgeBase::from_jsonl("{\"name\": \"X\", \"type\": \"PLANET\"}").unwrap_err();
        assert_eq!(err.line, 1);
    }

    #[test]
    fn derived_ids() {
        assert_eq!(
            derive_id("Recep Tayyip Erdoğan").unwrap(),
            "sw:recep-tayyip-erdogan"
        );
        assert_eq!(
            derive_id("  Kurdistan Workers’ Party ").unwrap(),
            "sw:kurdistan-workers-party"
        );
        assert_eq!(derive_id("Washington, D.C.").unwrap(), "sw:washington-d-c");
        assert_eq!(derive_id("東京").unwrap(), "sw:東京");
        let long = derive_id(&"Merkel ".repeat(1000)).unwrap();
        assert!(long.len() <= MAX_ID_BYTES, "{}", long.len());
        assert!(long.starts_with("sw:merkel-merkel-"));
        assert_ne!(long, derive_id(&"Merkel ".repeat(999)).unwrap());
        let long = derive_id(&"Мерkель ".repeat(1000)).unwrap();
        assert!(long.len() <= MAX_ID_BYTES, "{}", long.len());
        assert_eq!(derive_id("--"), None);
    }
}
