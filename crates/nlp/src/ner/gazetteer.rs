//! Knowledge-base phrases as tagger features: "this token starts / continues / ends a country name, a person's
//! name, an organisation, a demonym ...".
//!
//! Matching is case-insensitive (headlines and datelines are all capitals in wire copy, "RUSSIA"), but a hit
//! must start at a capitalised token, and whether the case matched exactly is part of the feature. Every
//! matching phrase counts, not only the longest, because the model, not the gazetteer, decides the span.

use std::borrow::Cow;
use std::collections::HashSet;

use super::input::{mix, str_hash, IdMap, TaggerInput};
use crate::kb::{KnowledgeBase, MatchKind};
use crate::text::strip_diacritics;
use crate::types::EntityType;

/// Longest phrase, in tokens, worth looking for.
const MAX_LEN: usize = 8;

/// Knowledge-base phrases keyed by the rolling hash of their tokens.
#[derive(Debug, Clone, Default)]
pub struct Gazetteer {
    /// Lowercase phrase hash → category bits.
    lower: IdMap<u16>,
    /// Exact-case phrase hash → category bits.
    exact: IdMap<u16>,
    /// Lowercase hashes of every proper prefix, so a scan stops as soon as nothing can match.
    prefixes: HashSet<u64>,
}

fn category(kb: &KnowledgeBase, entity: usize, kind: MatchKind, words: usize) -> u16 {
    let e = kb.entity(entity);
    let c = match (e.entity_type, kind) {
        (_, MatchKind::Demonym) => 0,
        (EntityType::Location, _) => match e.kind.as_str() {
            "country" => 1,
            "city" => 2,
            _ => 3,
        },
        (EntityType::Person, _) if words > 1 => 4,
        (EntityType::Person, _) => 5,
        (EntityType::Org, _) => 6,
        (EntityType::Group, _) => 7,
        (EntityType::Misc, _) => 8,
    };
    1 << c
}

fn step(h: u64, token: u64) -> u64 {
    mix(h.rotate_left(5) ^ token)
}

fn key_lower(s: &str) -> Cow<'_, str> {
    if s.is_ascii() {
        Cow::Borrowed(s)
    } else {
        Cow::Owned(strip_diacritics(s))
    }
}

impl Gazetteer {
    pub fn from_kb(kb: &KnowledgeBase) -> Self {
        let mut g = Gazetteer::default();
        for (keys, entity, kind) in kb.phrases() {
            if keys.is_empty() || keys.len() > MAX_LEN {
                continue;
            }
            let cat = category(kb, entity, kind, keys.len());
            let (mut hl, mut he) = (0u64, 0u64);
            for (i, k) in keys.iter().enumerate() {
                if i > 0 {
                    g.prefixes.insert(hl);
                }
                hl = step(hl, str_hash(&k.to_lowercase()));
                he = step(he, str_hash(k));
            }
            *g.lower.entry(hl).or_default() |= cat;
            *g.exact.entry(he).or_default() |= cat;
        }
        g
    }

    /// Feature values for every token: hashes of (category, B/I/L/U position, exact case), delimited by the
    /// returned offsets (`len + 1` of them).
    pub fn hits(&self, input: &TaggerInput<'_>, lowers: &[Cow<'_, str>]) -> (Vec<u64>, Vec<u32>) {
        let n = input.len();
        let mut per_token: Vec<Vec<u64>> = vec![Vec::new(); n];
        if !self.lower.is_empty() {
            let lower_h: Vec<u64> = lowers.iter().map(|l| str_hash(&key_lower(l))).collect();
            for sent in input.sentences() {
                for i in sent.clone() {
                    if !input.tokens()[i]
                        .chars()
                        .next()
                        .is_some_and(char::is_uppercase)
                    {
                        continue;
                    }
                    let (mut hl, mut he) = (0u64, 0u64);
                    for j in i..sent.end.min(i + MAX_LEN) {
                        if j > i && !self.prefixes.contains(&hl) {
                            break;
                        }
                        hl = step(hl, lower_h[j]);
                        he = step(he, str_hash(&key_lower(&input.tokens()[j])));
                        let Some(&cats) = self.lower.get(&hl) else {
                            continue;
                        };
                        let exact = self.exact.get(&he).copied().unwrap_or(0);
                        for c in 0..16u64 {
                            if cats & (1 << c) == 0 {
                                continue;
                            }
                            let ex = u64::from(exact & (1 << c) != 0);
                            for (k, slot) in per_token[i..=j].iter_mut().enumerate() {
                                let pos = match (k, j - i) {
                                    (_, 0) => 3,
                                    (0, _) => 0,
                                    (k, len) if k == len => 2,
                                    _ => 1,
                                };
                                slot.push(c * 8 + pos * 2 + ex);
                            }
                        }
                    }
                }
            }
        }
        let mut flat = Vec::new();
        let mut offsets = Vec::with_capacity(n + 1);
        offsets.push(0u32);
        for mut v in per_token {
            v.sort_unstable();
            v.dedup();
            flat.extend(v);
            offsets.push(flat.len() as u32);
        }
        (flat, offsets)
    }
}
