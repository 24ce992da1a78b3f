//! Accurate mode inside the NLP pipeline: which sentences the transformer reads, and how its readings replace
//! the fast model's before the article-level aggregation.
//!
//! The fast path still finds the (entity, sentence) pairs with their speaker, quotation and pronoun flags
//! (`stance::mention_stances`); the transformer then re-reads up to `max_sentences` of them per article, and
//! its probabilities replace the fast model's for the mentions it read. What one reading is depends on the
//! adapter: with a marked-target adapter (the target's word pieces marked in the input, see
//! [`super::model::MARKED`]) it is one (sentence, entity) pair, one forward pass each; with a pooled one it is
//! a sentence, one pass for every entity it names. Either way the budget counts forward passes, so the cost
//! per article stays bounded. Which readings: the title first, then the entities' sentences in rounds (each
//! entity's first sentence, most-mentioned entity first, then each one's second, ...), so every entity gets
//! a transformer reading before any gets many. Mentions beyond the cap, and targets cut off by the token cap,
//! keep the fast reading. The verdicts come from the article model fitted for these readings
//! (`stance::article::accurate_model`).

use std::collections::HashSet;
use std::path::Path;

use super::batcher::Batcher;
use super::model::{AccurateModel, SentenceTargets};
use super::AccurateError;
use crate::lexicon::Lexicon;
use crate::stance::{self, MentionStance};
use crate::text::TextView;
use crate::types::{Entity, Field};

/// Settings of accurate mode (`[nlp.accurate]` in the configuration).
#[derive(Debug, Clone)]
pub struct AccurateOptions {
    /// Sentences per forward pass.
    pub max_batch: usize,
    /// Forward passes per article (0: no limit): sentences, or (sentence, entity) pairs with a
    /// marked-target adapter (see the module doc).
    pub max_sentences: usize,
    /// Word pieces per sentence.
    pub max_tokens: usize,
}

impl Default for AccurateOptions {
    fn default() -> Self {
        Self {
            max_batch: 32,
            max_sentences: 5,
            max_tokens: super::model::DEFAULT_MAX_TOKENS,
        }
    }
}

/// Accurate-mode stance: the batcher in front of the transformer, and the options.
pub struct Accurate {
    batcher: Batcher,
    options: AccurateOptions,
    /// The adapter reads one target per pass (see [`super::model::MARKED`]).
    marked: bool,
}

impl Accurate {
    /// Loads the base weights from `base_dir` with the embedded adapter and starts the batcher.
    pub fn load(base_dir: &Path, options: AccurateOptions) -> Result<Self, AccurateError> {
        Self::load_with_adapter(base_dir, super::EMBEDDED_ADAPTER, options)
    }

    pub fn load_with_adapter(
        base_dir: &Path,
        adapter: &[u8],
        options: AccurateOptions,
    ) -> Result<Self, AccurateError> {
        let model = AccurateModel::load(base_dir, adapter, options.max_tokens)?;
        let marked = model.marked;
        Ok(Self {
            batcher: Batcher::start(model, options.max_batch),
            options,
            marked,
        })
    }

    pub fn batcher(&self) -> &Batcher {
        &self.batcher
    }

    /// The fast readings of every (entity, sentence) pair with the transformer's in place where it read
    /// them, and the verdicts aggregated from them written into `entities`. On a model failure the fast
    /// readings stand and the error is returned beside them.
    pub fn score(
        &self,
        lexicon: &Lexicon,
        fast: &stance::Model,
        body: &TextView<'_>,
        title: Option<&TextView<'_>>,
        entities: &mut [Entity],
    ) -> (Vec<MentionStance>, Option<AccurateError>) {
        let mut mentions = stance::mention_stances(lexicon, fast, body, title, entities);
        let selected = select(
            &mentions,
            entities.len(),
            self.options.max_sentences,
            self.marked,
        );
        let mut inputs = Vec::with_capacity(selected.len());
        let mut owners: Vec<Vec<usize>> = Vec::with_capacity(selected.len());
        for &Reading {
            field,
            sentence: s,
            entity,
        } in &selected
        {
            let Some(view) = (match field {
                Field::Body => Some(body),
                Field::Title => title,
            }) else {
                continue;
            };
            let sentence = &view.sentences()[s];
            let tokens = &view.tokens()[sentence.tokens.clone()];
            let mut targets = Vec::new();
            let mut mine = Vec::new();
            for (i, m) in mentions.iter().enumerate() {
                if m.field != field || m.sentence != s || entity.is_some_and(|e| m.entity != e) {
                    continue;
                }
                let spans = m
                    .spans
                    .iter()
                    .filter(|r| !r.is_empty() && r.end <= tokens.len())
                    .map(|r| {
                        (
                            tokens[r.start].start - sentence.start,
                            tokens[r.end - 1].end - sentence.start,
                        )
                    })
                    .collect();
                targets.push(spans);
                mine.push(i);
            }
            inputs.push(SentenceTargets {
                text: view.sentence_text(s).to_string(),
                targets,
            });
            owners.push(mine);
        }
        let mut failure = None;
        match self.batcher.score(inputs) {
            Ok(probs) => {
                for (ps, mine) in probs.iter().zip(&owners) {
                    for (p, &i) in ps.iter().zip(mine) {
                        if let Some(p) = p {
                            mentions[i].probs = *p;
                        }
                    }
                }
            }
            Err(e) => failure = Some(e),
        }
        stance::article::verdicts(
            stance::article::accurate_model(),
            lexicon,
            body,
            title,
            &mentions,
            entities,
        );
        (mentions, failure)
    }
}

/// One transformer reading: a sentence, and with a marked-target adapter the one entity it is read for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Reading {
    pub field: Field,
    pub sentence: usize,
    /// `Some` when the reading is for one entity (marked-target adapters), `None` for all in the sentence.
    pub entity: Option<usize>,
}

/// The readings the transformer makes: the title first, then each entity's sentences in rounds,
/// most-mentioned entity first, until `max` (0: no limit). `per_entity` makes each (sentence, entity) pair a
/// reading of its own; otherwise a sentence is read once for all its entities.
pub fn select(
    mentions: &[MentionStance],
    n_entities: usize,
    max: usize,
    per_entity: bool,
) -> Vec<Reading> {
    let limit = if max == 0 { usize::MAX } else { max };
    let mut chosen: Vec<Reading> = Vec::new();
    let mut seen: HashSet<Reading> = HashSet::new();
    let mut add = |field: Field, sentence: usize, entity: usize, chosen: &mut Vec<Reading>| {
        let reading = Reading {
            field,
            sentence,
            entity: per_entity.then_some(entity),
        };
        if chosen.len() < limit && seen.insert(reading) {
            chosen.push(reading);
        }
    };
    for m in mentions.iter().filter(|m| m.field == Field::Title) {
        add(m.field, m.sentence, m.entity, &mut chosen);
    }
    // Each entity's body sentences in order, named ones before pronoun-only ones.
    let mut sentences_of: Vec<Vec<usize>> = vec![Vec::new(); n_entities];
    for m in mentions
        .iter()
        .filter(|m| m.field == Field::Body && !m.pronoun)
    {
        sentences_of[m.entity].push(m.sentence);
    }
    for m in mentions
        .iter()
        .filter(|m| m.field == Field::Body && m.pronoun)
    {
        sentences_of[m.entity].push(m.sentence);
    }
    let mut order: Vec<usize> = (0..n_entities).collect();
    order.sort_by_key(|&e| std::cmp::Reverse(sentences_of[e].len()));
    let rounds = sentences_of.iter().map(Vec::len).max().unwrap_or(0);
    for r in 0..rounds {
        for &e in &order {
            if let Some(&s) = sentences_of[e].get(r) {
                add(Field::Body, s, e, &mut chosen);
            }
        }
        if chosen.len() >= limit {
            break;
        }
    }
    chosen
}
