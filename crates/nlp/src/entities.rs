//! Entity recognition and within-article merging.
//!
//! Spans and their types come from the trained tagger ([`super::ner`]); the knowledge base then links them
//! to ids and adds the known phrases the tagger left out, so a watched name is never lost to one bad guess.
//! A country's demonym stands for the state ("Russian leader", "Turkish world") unless a people noun follows
//! ("Armenian community"), which makes it a GROUP, as are the knowledge base's peoples and the adjectives of its
//! groups ("Kurdish"). Mentions are then merged into entities: same knowledge-base entry, same surface, a
//! surname standing for a full name seen in the same article, an acronym for its expansion. Stance is left as a
//! neutral placeholder for [`super::stance`] to fill in.

use std::borrow::Cow;
use std::cmp::Reverse;
use std::collections::HashMap;
use std::ops::Range;

use crate::kb::{derive_id, KnowledgeBase, MatchKind, PhraseTrie};
use crate::ner::{NerType, Tagger, TaggerInput};
use crate::spans::{self, NameSpan};
use crate::text::{self, TextView, Token};
use crate::types::{Entity, EntityType, Field, Mention, Stance, StanceLabel};

/// All-caps tokens that are not organisation acronyms.
const NOT_ACRONYMS: &str = "\
    I II III IV V VI VII VIII IX X XI XII XX OK TV AM PM AD BC CEO CFO PHD AKA FAQ GMT UTC USD EUR \
    GDP PS NB";

/// Lowercase nouns after a demonym that make it a people rather than its state ("Armenian community").
const PEOPLE_NOUNS: &str = "\
    people peoples community communities population populations diaspora minority minorities majority \
    descent origin ancestry nationals expatriates expats refugees migrants immigrants emigres civilians \
    families family villagers tribes tribe clans ethnic";

/// Abbreviations whose dot wire copy keeps on the token ("Dr.", "St."); case-sensitive.
const NAME_ABBREVIATIONS: &str =
    "Mr Mrs Ms Dr Prof Gen Sen Gov Rep Lt Col Capt Sgt Maj Adm Brig Rev St Mt Ft Jr Sr Inc Corp Ltd Co";

/// Lowercase nouns right after a name that make it an organisation ("the Asala organization").
const ORG_NOUNS_AFTER: &str = "\
    organization organisation group party movement militia company agency ministry government \
    network faction newspaper channel bank firm coalition";

/// A recognised span before merging.
#[derive(Debug, Clone)]
struct Candidate {
    tokens: Range<usize>,
    kb: Option<usize>,
    /// The type the tagger (or the knowledge base) gives the span.
    cue: Option<EntityType>,
    /// Title re-matching already knows which body group this is.
    group: Option<usize>,
    /// Tokens of the title written before the name ("Sen.").
    title: Option<Range<usize>>,
}

/// The tagger plus what linking needs beyond the knowledge base's own matcher.
pub struct Recogniser {
    tagger: Tagger,
    /// Lowercase first word of a group's "X people" / "X community" style alias → that group ("kurdish").
    group_adjectives: HashMap<String, usize>,
}

impl std::fmt::Debug for Recogniser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Recogniser")
            .field("tagger", &self.tagger)
            .finish_non_exhaustive()
    }
}

impl Recogniser {
    pub fn new(kb: &KnowledgeBase, tagger: Tagger) -> Self {
        // Two groups can share an adjective ("American people", "American Muslims"): a people noun beats a
        // religion, then the group loaded first, so the choice never depends on the order phrases are walked in.
        let mut ranked: HashMap<String, (bool, usize)> = HashMap::new();
        for (keys, entity, _) in kb.phrases() {
            if kb.entity(entity).entity_type != EntityType::Group || keys.len() != 2 {
                continue;
            }
            let tail = keys[1].to_lowercase();
            let people = listed(PEOPLE_NOUNS, &tail);
            if people || matches!(tail.as_str(), "muslims" | "christians" | "islam") {
                let rank = (!people, entity);
                let slot = ranked.entry(keys[0].to_lowercase()).or_insert(rank);
                *slot = (*slot).min(rank);
            }
        }
        Recogniser {
            tagger,
            group_adjectives: ranked.into_iter().map(|(k, (_, e))| (k, e)).collect(),
        }
    }

    pub fn tagger(&self) -> &Tagger {
        &self.tagger
    }
}

/// `word` is one of the whitespace-separated words of `list`; for the short lists consulted rarely.
fn listed(list: &str, word: &str) -> bool {
    list.split_whitespace().any(|w| w == word)
}

/// The tagger's tokens for a view: wire-service tokenisation, which keeps hyphenated words whole
/// ("Pro-Russian", "1996-08-22") and the dot of initials and title abbreviations ("J.", "Dr.") where the
/// article tokeniser splits them. Returns each unit's range of view
/// tokens and its text.
/// Each unit's range of view tokens, its text, and the sentences as unit ranges.
type Units<'v> = (Vec<Range<usize>>, Vec<Cow<'v, str>>, Vec<Range<usize>>);

fn units<'v>(view: &'v TextView<'_>) -> Units<'v> {
    let tokens = view.tokens();
    let mut ranges: Vec<Range<usize>> = Vec::with_capacity(tokens.len());
    let mut sentences = Vec::with_capacity(view.sentences().len());
    for s in view.sentences() {
        let first = ranges.len();
        let mut i = s.tokens.start;
        while i < s.tokens.end {
            let mut end = i + 1;
            while end + 1 < s.tokens.end
                && tokens[end].norm == "-"
                && !tokens[end].space_before
                && !tokens[end + 1].space_before
                && tokens[end - 1].is_word()
                && tokens[end + 1].is_word()
            {
                end += 2;
            }
            let t = &tokens[end - 1];
            let initial = {
                let mut c = t.norm.chars();
                matches!((c.next(), c.next()), (Some(c), None) if c.is_uppercase())
            };
            if end < s.tokens.end
                && tokens[end].norm == "."
                && !tokens[end].space_before
                && (initial || listed(NAME_ABBREVIATIONS, &t.norm))
            {
                end += 1;
            }
            ranges.push(i..end);
            i = end;
        }
        sentences.push(first..ranges.len());
    }
    let texts = ranges
        .iter()
        .map(|r| {
            if r.len() == 1 {
                Cow::Borrowed(tokens[r.start].norm.as_str())
            } else {
                Cow::Owned(tokens[r.clone()].iter().map(|t| t.norm.as_str()).collect())
            }
        })
        .collect();
    (ranges, texts, sentences)
}

fn entity_type(t: NerType) -> EntityType {
    match t {
        NerType::Per => EntityType::Person,
        NerType::Org => EntityType::Org,
        NerType::Loc => EntityType::Location,
        NerType::Misc => EntityType::Misc,
    }
}

/// Tags the views as one document (title first, so the body's evidence types the headline's names and the
/// reverse) and returns each view's spans as view-token ranges.
fn tag_views(tagger: &Tagger, views: &[&TextView<'_>]) -> Vec<Vec<(Range<usize>, EntityType)>> {
    let mut all_ranges = Vec::new();
    let mut texts = Vec::new();
    let mut sentences = Vec::new();
    let mut bounds = Vec::new();
    for view in views {
        let (r, t, s) = units(view);
        let offset = texts.len();
        bounds.push((offset, offset + t.len(), all_ranges.len()));
        sentences.extend(s.into_iter().map(|s| s.start + offset..s.end + offset));
        all_ranges.push(r);
        texts.extend(t);
    }
    let Some(input) = TaggerInput::new(texts, sentences) else {
        return vec![Vec::new(); views.len()];
    };
    let spans = tagger.tag(&input);
    bounds
        .iter()
        .map(|&(from, to, v)| {
            let r = &all_ranges[v];
            spans
                .iter()
                .filter(|s| s.start >= from && s.end <= to)
                .map(|s| {
                    (
                        r[s.start - from].start..r[s.end - 1 - from].end,
                        entity_type(s.ty),
                    )
                })
                .collect()
        })
        .collect()
}

/// Two to six capitals, dots allowed ("PKK", "U.N."), and not a roman numeral or the like.
fn is_acronym(t: &Token) -> bool {
    let letters = t.norm.chars().filter(|c| c.is_alphabetic()).count();
    t.is_all_caps() && (2..=6).contains(&letters) && !listed(NOT_ACRONYMS, t.norm.as_str())
}

/// Candidates of one field: the tagger's spans, linked to the knowledge base where they name a known entity,
/// plus the known phrases no span touches, in text order.
fn detect(
    kb: &KnowledgeBase,
    rec: &Recogniser,
    view: &TextView<'_>,
    spans: &[(Range<usize>, EntityType)],
) -> Vec<Candidate> {
    let tokens = view.tokens();
    let matches = kb.find_all(view);
    let mut touched = vec![false; tokens.len()];
    let mut out = Vec::new();
    for span in adjust_spans(kb, rec, view, spans) {
        let Some(range) = bounded_span(view, span.tokens) else {
            continue;
        };
        let (range, ty) = (&range, &span.ty);
        let mut c = Candidate {
            tokens: range.clone(),
            kb: None,
            cue: Some(*ty),
            group: None,
            title: span.title,
        };
        let keys: Vec<String> = tokens[range.clone()]
            .iter()
            .map(|t| t.key.clone())
            .collect();
        // A known people phrase that contains the span ("Armenian people" around "Armenian").
        let people = matches.iter().find(|m| {
            m.tokens.start <= range.start
                && m.tokens.end >= range.end
                && kb.entity(m.entity).entity_type == EntityType::Group
        });
        let next_lower = tokens
            .get(range.end)
            .filter(|t| t.sentence == tokens[range.start].sentence)
            .map(|t| t.lower.as_str());
        if let Some(m) = people {
            c.tokens = m.tokens.clone();
            c.kb = Some(m.entity);
            c.cue = Some(EntityType::Group);
        } else if let Some((entity, kind)) = kb.lookup(&keys).filter(|&(e, _)| agrees(kb, e, *ty)) {
            let people_noun = next_lower.is_some_and(|w| listed(PEOPLE_NOUNS, w));
            if kind == MatchKind::Demonym && people_noun {
                c.cue = Some(EntityType::Group);
                c.kb = rec
                    .group_adjectives
                    .get(&keys.join(" ").to_lowercase())
                    .copied();
            } else {
                c.kb = Some(entity);
                c.cue = Some(kb.entity(entity).entity_type);
            }
        } else if let Some(&g) = rec.group_adjectives.get(&keys.join(" ").to_lowercase()) {
            c.kb = Some(g);
            c.cue = Some(EntityType::Group);
        } else if let Some(person) = without_middle_names(kb, &keys, *ty) {
            c.kb = Some(person);
            c.cue = Some(EntityType::Person);
        }
        for t in c.tokens.clone() {
            touched[t] = true;
        }
        out.push(c);
    }
    for m in matches {
        let one_sentence = tokens[m.tokens.start].sentence == tokens[m.tokens.end - 1].sentence;
        let alone = kb.entity(m.entity).match_alone;
        if m.tokens.clone().any(|t| touched[t]) || !one_sentence || !alone {
            continue;
        }
        out.push(Candidate {
            cue: Some(kb.entity(m.entity).entity_type),
            tokens: m.tokens,
            kb: Some(m.entity),
            group: None,
            title: None,
        });
    }
    out.sort_by_key(|c| (c.tokens.start, c.tokens.end));
    out.dedup_by_key(|c| (c.tokens.start, c.tokens.end));
    out
}

/// Longest name, in tokens and in code points. Real names are a handful of words ("Organization for Security
/// and Co-operation in Europe" is seven); a longer span is a run of capitalised words the tagger could not
/// break, e.g. a body of one name repeated, and would make a name and an id as long as the text.
pub const MAX_NAME_TOKENS: usize = 10;
pub const MAX_NAME_CHARS: usize = 200;

/// A span cut at the end of the sentence it starts in (no span may cross one: everything downstream reads
/// mentions sentence by sentence) and at a Treebank bracket word, without leading or trailing punctuation,
/// and only if what is left has a word and fits the name bounds.
fn bounded_span(view: &TextView<'_>, range: Range<usize>) -> Option<Range<usize>> {
    let tokens = view.tokens();
    if range.is_empty() || range.end > tokens.len() {
        return None;
    }
    // Brackets, and bracket words whose dashes a feed lost ("LRB"), are no part of a name.
    let bracket = |t: &Token| {
        matches!(t.norm.as_str(), "(" | ")" | "[" | "]" | "{" | "}")
            || text::treebank_bracket(&t.key).is_some()
    };
    let mut start = range.start;
    while start < range.end && (!tokens[start].is_word() || bracket(&tokens[start])) {
        start += 1;
    }
    let sentence = tokens.get(start)?.sentence;
    let mut end = start;
    while end < range.end && tokens[end].sentence == sentence && !bracket(&tokens[end]) {
        end += 1;
    }
    while end > start && !tokens[end - 1].is_word() && tokens[end - 1].norm != "." {
        end -= 1;
    }
    let (first, last) = (tokens.get(start)?, tokens.get(end.checked_sub(1)?)?);
    let fits =
        end > start && end - start <= MAX_NAME_TOKENS && last.end - first.start <= MAX_NAME_CHARS;
    fits.then_some(start..end)
}

/// Where the article's conventions differ from the wire copy the tagger learnt from: a demonym right before an
/// organisation is part of its name ("Russian Foreign Ministry"), an organisation noun after a name types it
/// ("the Asala organization"), and a lone capitalised word opening a sentence that the training corpus writes
/// lowercase ("Likewise", "Assisted") is not a name.
fn adjust_spans(
    kb: &KnowledgeBase,
    rec: &Recogniser,
    view: &TextView<'_>,
    spans: &[(Range<usize>, EntityType)],
) -> Vec<NameSpan> {
    let tokens = view.tokens();
    let keys = |r: &Range<usize>| -> Vec<String> {
        tokens[r.clone()].iter().map(|t| t.key.clone()).collect()
    };
    let mut out: Vec<(Range<usize>, EntityType)> = Vec::with_capacity(spans.len());
    for (range, ty) in spans {
        let (mut range, mut ty) = (range.clone(), *ty);
        if let Some((prev, _)) = out.last() {
            let demonym = prev.len() == 1
                && kb
                    .lookup(&keys(prev))
                    .is_some_and(|(_, kind)| kind == MatchKind::Demonym);
            let same_line = tokens[prev.start].sentence == tokens[range.start].sentence
                && !tokens[range.start].newline_before;
            if demonym && same_line && prev.end == range.start && ty == EntityType::Org {
                range.start = prev.start;
                out.pop();
            }
        }
        let linked = kb.lookup(&keys(&range)).is_some();
        if !linked {
            let after = tokens
                .get(range.end)
                .filter(|t| t.sentence == tokens[range.start].sentence);
            if after.is_some_and(|t| listed(ORG_NOUNS_AFTER, t.norm.as_str())) {
                ty = EntityType::Org;
            }
            let opener = range.len() == 1 && view.is_sentence_initial(range.start);
            if opener && rec.tagger.usually_lowercase(&tokens[range.start].norm) {
                continue;
            }
        }
        out.push((range, ty));
    }
    out.into_iter()
        .flat_map(|(range, ty)| spans::tidy(kb, view, range, ty))
        .collect()
}

/// A span may link to a knowledge-base entity of another type when the entity is one the matcher looks for on
/// its own (curated: "Google" tagged a person is the company); a generated, link-only entity (a town whose
/// GeoNames alternate name is "Asala") links only a span the tagger typed as it.
fn agrees(kb: &KnowledgeBase, entity: usize, ty: EntityType) -> bool {
    let e = kb.entity(entity);
    e.match_alone || e.entity_type == ty
}

/// "Donald J. Trump", "Hillary Rodham Clinton": a person span of three words or more that the knowledge base
/// knows by its first and last word.
fn without_middle_names(kb: &KnowledgeBase, keys: &[String], ty: EntityType) -> Option<usize> {
    let words: Vec<&String> = keys
        .iter()
        .filter(|k| k.chars().any(char::is_alphabetic))
        .collect();
    if ty != EntityType::Person || words.len() < 3 {
        return None;
    }
    let short = [words[0].clone(), words[words.len() - 1].clone()];
    let (entity, _) = kb.lookup(&short)?;
    (kb.entity(entity).entity_type == EntityType::Person).then_some(entity)
}

/// Most words of a title-case headline are capitalised, so capitals there say nothing about names.
fn is_title_case(view: &TextView<'_>) -> bool {
    let long: Vec<&Token> = view
        .tokens()
        .iter()
        .filter(|t| t.is_word() && t.norm.chars().count() >= 4)
        .collect();
    long.len() >= 2 && long.iter().filter(|t| t.is_capitalised()).count() * 5 >= long.len() * 4
}

/// One mention with what merging needs to know about it.
#[derive(Debug, Clone)]
struct MentionInfo {
    field: Field,
    mention: Mention,
    /// Token keys joined by spaces: the identity of an unknown name.
    surface: String,
    words: usize,
    last_key: String,
    /// Initials of the capitalised words, and of all words ("Bank of England": "BE", "BOE").
    initials: (String, String),
    acronym: Option<String>,
    cue: Option<EntityType>,
    /// Followed by "(ACRONYM)": the expansion of that acronym.
    parenthesised: Option<String>,
}

impl MentionInfo {
    /// Title mentions come first in reading order.
    fn position(&self) -> (u8, usize) {
        (u8::from(self.field == Field::Body), self.mention.start)
    }
}

fn mention_info(view: &TextView<'_>, field: Field, c: &Candidate) -> MentionInfo {
    let tokens = view.tokens();
    let span = &tokens[c.tokens.clone()];
    let (start, end) = view.span_chars(c.tokens.clone());
    let surface = span
        .iter()
        .map(|t| t.key.as_str())
        .collect::<Vec<_>>()
        .join(" ");
    let word_tokens: Vec<&Token> = span.iter().filter(|t| t.is_word()).collect();
    let first_upper = |t: &&Token| {
        t.norm
            .chars()
            .next()
            .map(|c| c.to_uppercase().to_string())
            .unwrap_or_default()
    };
    let initials_caps = word_tokens
        .iter()
        .filter(|t| t.is_capitalised())
        .map(first_upper)
        .collect();
    let initials_all = word_tokens.iter().map(first_upper).collect();
    let acronym =
        (c.tokens.len() == 1 && is_acronym(&span[0])).then(|| span[0].norm.replace('.', ""));
    // "International Monetary Fund (IMF)"
    let parenthesised = match tokens.get(c.tokens.end..c.tokens.end + 3) {
        Some([open, inner, close])
            if open.norm == "(" && close.norm == ")" && is_acronym(inner) =>
        {
            Some(inner.norm.replace('.', ""))
        }
        _ => None,
    };
    MentionInfo {
        field,
        mention: Mention {
            start,
            end,
            text: view.span_text(c.tokens.clone()).to_string(),
            sentence: tokens[c.tokens.start].sentence,
            field,
            title: c
                .title
                .clone()
                .map(|t| clean_name(view.span_text(t)))
                .filter(|t| !t.is_empty()),
        },
        surface,
        words: word_tokens.len(),
        last_key: word_tokens
            .last()
            .map(|t| t.key.clone())
            .unwrap_or_default(),
        initials: (initials_caps, initials_all),
        acronym,
        cue: c.cue,
        parenthesised,
    }
}

/// Mentions grouped into would-be entities, with union-find merging between groups.
#[derive(Default)]
struct Groups {
    mentions: Vec<Vec<MentionInfo>>,
    kb: Vec<Option<usize>>,
    parent: Vec<usize>,
    by_kb: HashMap<usize, usize>,
    by_surface: HashMap<String, usize>,
}

impl Groups {
    fn add(&mut self, view: &TextView<'_>, field: Field, c: &Candidate) {
        let info = mention_info(view, field, c);
        let existing = match (c.kb, c.group) {
            (Some(kb), _) => self.by_kb.get(&kb).copied(),
            (None, Some(g)) => Some(g),
            (None, None) => self.by_surface.get(&info.surface).copied(),
        };
        let g = existing.unwrap_or_else(|| {
            self.mentions.push(Vec::new());
            self.kb.push(c.kb);
            self.parent.push(self.parent.len());
            let g = self.mentions.len() - 1;
            match c.kb {
                Some(kb) => self.by_kb.insert(kb, g),
                None => self.by_surface.insert(info.surface.clone(), g),
            };
            g
        });
        self.mentions[g].push(info);
    }

    /// The groups merged into each root, indexed by root (empty for groups that are not roots).
    fn members(&mut self) -> Vec<Vec<usize>> {
        let n = self.mentions.len();
        let mut members: Vec<Vec<usize>> = vec![Vec::new(); n];
        for g in 0..n {
            let r = self.find(g);
            members[r].push(g);
        }
        members
    }

    fn find(&mut self, g: usize) -> usize {
        let mut root = g;
        while self.parent[root] != root {
            root = self.parent[root];
        }
        let mut g = g;
        while self.parent[g] != root {
            let next = self.parent[g];
            self.parent[g] = root;
            g = next;
        }
        root
    }

    /// Merges two groups unless they are two different knowledge-base entities. The lower index stays root, so
    /// the outcome does not depend on the order merges are discovered in.
    fn union(&mut self, a: usize, b: usize) -> bool {
        let (ra, rb) = (self.find(a), self.find(b));
        if ra == rb {
            return true;
        }
        let (ka, kb) = (self.root_kb(ra), self.root_kb(rb));
        if ka.is_some() && kb.is_some() && ka != kb {
            return false;
        }
        let (root, child) = (ra.min(rb), ra.max(rb));
        self.parent[child] = root;
        self.kb[root] = ka.or(kb);
        true
    }

    fn root_kb(&mut self, g: usize) -> Option<usize> {
        let r = self.find(g);
        self.kb[r]
    }

    /// The type a group's own cues vote for (knowledge-base type when it has one).
    fn cue_type(&self, kb: &KnowledgeBase, g: usize) -> EntityType {
        if let Some(k) = self.kb[g] {
            return kb.entity(k).entity_type;
        }
        vote(self.mentions[g].iter().map(|m| m.cue))
    }

    fn first_position(&self, g: usize) -> (u8, usize) {
        self.mentions[g]
            .iter()
            .map(MentionInfo::position)
            .min()
            .unwrap_or((2, 0))
    }

    /// "Putin" after (or before) "Vladimir Putin": a lone word that is the last word of a longer person name
    /// in the same article names that person. When several names end in it, the nearest preceding one wins.
    fn merge_surnames(&mut self, kb: &KnowledgeBase) {
        let n = self.mentions.len();
        let mut by_last: HashMap<&str, Vec<usize>> = HashMap::new();
        let types: Vec<EntityType> = (0..n).map(|g| self.cue_type(kb, g)).collect();
        for (g, ty) in types.iter().enumerate() {
            if matches!(ty, EntityType::Person | EntityType::Misc) {
                let mut lasts: Vec<&str> = self.mentions[g]
                    .iter()
                    .filter(|m| m.words >= 2)
                    .map(|m| m.last_key.as_str())
                    .collect();
                lasts.sort_unstable();
                lasts.dedup();
                for last in lasts {
                    by_last.entry(last).or_default().push(g);
                }
            }
        }
        let mut pairs = Vec::new();
        for g in 0..n {
            // The tagger types a lone surname an organisation now and then ("Bezos", "DeVos"); the full name
            // elsewhere in the article says who it is.
            let lone = self.kb[g].is_none()
                && matches!(
                    types[g],
                    EntityType::Person | EntityType::Misc | EntityType::Org
                )
                && self.mentions[g]
                    .iter()
                    .all(|m| m.words == 1 && m.acronym.is_none());
            if !lone {
                continue;
            }
            let Some(cands) = by_last.get(self.mentions[g][0].last_key.as_str()) else {
                continue;
            };
            let at = self.first_position(g);
            let eligible: Vec<((u8, usize), usize)> = cands
                .iter()
                .copied()
                .filter(|&h| {
                    h != g
                        && (types[h] == EntityType::Person
                            || (types[g] == EntityType::Person && types[h] == EntityType::Misc))
                        && (types[g] != EntityType::Org || types[h] == EntityType::Person)
                })
                .map(|h| (self.first_position(h), h))
                .collect();
            let preceding = eligible
                .iter()
                .filter(|(pos, _)| *pos <= at)
                .max_by_key(|(pos, h)| (*pos, Reverse(*h)));
            let best = preceding.or_else(|| eligible.iter().min_by_key(|(pos, h)| (*pos, *h)));
            if let Some(&(_, h)) = best {
                pairs.push((g, h));
            }
        }
        for (g, h) in pairs {
            if self.union(g, h) && types[g] == EntityType::Org {
                for m in &mut self.mentions[g] {
                    m.cue = Some(EntityType::Person);
                }
            }
        }
    }

    /// "Clinton" in an article that never gives the full name: the knowledge base's person of that surname the
    /// article points to. A title on a mention that the person's role holds ("President", "Sen.") and the
    /// person's country among the article's known places weigh with the person's notability; two people too
    /// close to tell apart leave the name unlinked, with an id of its own, rather than guess.
    fn link_surnames(&mut self, kb: &KnowledgeBase) {
        let members = self.members();
        let mut countries: Vec<&str> = Vec::new();
        for k in self.kb.iter().flatten() {
            let e = kb.entity(*k);
            if e.kind == "country" {
                countries.push(&e.name);
            }
        }
        for (root, group_ids) in members.iter().enumerate() {
            if group_ids.is_empty() || self.kb[root].is_some() {
                continue;
            }
            let mentions: Vec<&MentionInfo> =
                group_ids.iter().flat_map(|&g| &self.mentions[g]).collect();
            let surface = &mentions[0].surface;
            let one_name = mentions.iter().all(|m| &m.surface == surface);
            if !one_name || vote(mentions.iter().map(|m| m.cue)) != EntityType::Person {
                continue;
            }
            let keys: Vec<String> = surface.split(' ').map(str::to_string).collect();
            let titles: Vec<String> = mentions
                .iter()
                .filter_map(|m| m.mention.title.as_deref())
                .flat_map(|t| t.split_whitespace().map(office_word))
                .collect();
            let score = |p: usize| {
                let e = kb.entity(p);
                let role = e.role.as_deref().unwrap_or_default().to_lowercase();
                let titled = titles
                    .iter()
                    .any(|t| crate::names::is_title(t) && role.contains(t.as_str()));
                let at_home = e.country.as_deref().is_some_and(|c| countries.contains(&c));
                e.prior + 0.3 * f64::from(u8::from(titled)) + 0.15 * f64::from(u8::from(at_home))
            };
            let mut scored: Vec<(f64, usize)> = kb
                .people_with_surname(&keys)
                .into_iter()
                .map(|p| (score(p), p))
                .collect();
            scored.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
            let clear = match scored.as_slice() {
                [] => None,
                [(best, p)] => (*best >= SURNAME_FLOOR).then_some(*p),
                [(best, p), (second, _), ..] => {
                    (*best >= SURNAME_FLOOR && best - second >= SURNAME_MARGIN).then_some(*p)
                }
            };
            if let Some(p) = clear {
                self.kb[root] = Some(p);
            }
        }
    }

    /// "International Monetary Fund (IMF)" and later "IMF": the acronym names the expansion.
    fn merge_acronyms(&mut self) {
        let n = self.mentions.len();
        // Multi-word mentions by their initials, so each acronym is one lookup, not a scan of the article.
        let mut by_initials: HashMap<String, Vec<(usize, usize)>> = HashMap::new();
        for (h, mentions) in self.mentions.iter().enumerate() {
            for (i, m) in mentions.iter().enumerate().filter(|(_, m)| m.words >= 2) {
                by_initials
                    .entry(m.initials.0.clone())
                    .or_default()
                    .push((h, i));
                if m.initials.1 != m.initials.0 {
                    by_initials
                        .entry(m.initials.1.clone())
                        .or_default()
                        .push((h, i));
                }
            }
        }
        let mut pairs = Vec::new();
        for g in 0..n {
            let Some(acronym) = self.mentions[g].iter().find_map(|m| m.acronym.as_deref()) else {
                continue;
            };
            let Some(expansions) = by_initials.get(&acronym.to_uppercase()) else {
                continue;
            };
            let mut best: Option<(bool, (u8, usize), usize)> = None;
            for &(h, i) in expansions.iter().filter(|(h, _)| *h != g) {
                let m = &self.mentions[h][i];
                let explicit = m
                    .parenthesised
                    .as_deref()
                    .is_some_and(|p| p.eq_ignore_ascii_case(acronym));
                // A knowledge-base entity only absorbs, or is absorbed by, an explicitly introduced pair:
                // "UN" must not swallow every "Ukrainian Navy".
                if !explicit && (self.kb[g].is_some() || self.kb[h].is_some()) {
                    continue;
                }
                // An explicit "(IMF)" beats a coincidence of initials; then the earliest expansion.
                let key = (explicit, m.position(), h);
                let better = match &best {
                    None => true,
                    Some(b) => (key.0, Reverse(key.1)) > (b.0, Reverse(b.1)),
                };
                if better {
                    best = Some(key);
                }
            }
            if let Some((_, _, h)) = best {
                pairs.push((g, h));
            }
        }
        for (g, h) in pairs {
            self.union(g, h);
        }
    }
}

/// Least score, and least lead over the runner-up, for a surname alone to name a known person: below them the
/// name is too obscure, or the people too alike, to guess.
const SURNAME_FLOOR: f64 = 0.25;
const SURNAME_MARGIN: f64 = 0.1;

/// A title word as the knowledge base's roles spell the office ("Sen." → "senator").
fn office_word(word: &str) -> String {
    let w = word.trim_end_matches('.').to_lowercase();
    match w.as_str() {
        "sen" => "senator".into(),
        "rep" | "congressman" | "congresswoman" => "representative".into(),
        "gov" => "governor".into(),
        "pres" => "president".into(),
        "gen" => "general".into(),
        "amb" => "ambassador".into(),
        _ => w,
    }
}

/// Cue-typed mentions outvote untyped ones; among cues the majority wins, ties in [`EntityType::ALL`] order.
fn vote(cues: impl Iterator<Item = Option<EntityType>>) -> EntityType {
    let mut counts = [0usize; 5];
    for t in cues.flatten() {
        counts[EntityType::ALL.iter().position(|&x| x == t).unwrap_or(4)] += 1;
    }
    let mut best = EntityType::Misc;
    let mut best_count = 0;
    for (i, &c) in counts.iter().enumerate().take(4) {
        if c > best_count {
            best = EntityType::ALL[i];
            best_count = c;
        }
    }
    best
}

/// Finds the entities of an article. Stances are neutral placeholders until [`super::stance::score`] runs.
pub fn find(
    kb: &KnowledgeBase,
    rec: &Recogniser,
    body: &TextView<'_>,
    title: Option<&TextView<'_>>,
) -> Vec<Entity> {
    // A title-case headline capitalises every word, unlike anything the tagger learnt from, so it is only
    // re-matched against what the body established.
    let tagged_title = title.filter(|t| !is_title_case(t));
    let mut views = Vec::new();
    views.extend(tagged_title);
    views.push(body);
    let mut spans = tag_views(&rec.tagger, &views);
    let body_spans = spans.pop().unwrap_or_default();
    let mut groups = Groups::default();
    for c in detect(kb, rec, body, &body_spans) {
        groups.add(body, Field::Body, &c);
    }
    if let Some(title) = title {
        let candidates = match (tagged_title, spans.pop()) {
            (Some(_), Some(title_spans)) => detect(kb, rec, title, &title_spans),
            _ => rematch_title(kb, title, &groups),
        };
        for c in candidates {
            groups.add(title, Field::Title, &c);
        }
    }
    groups.merge_acronyms();
    groups.merge_surnames(kb);
    groups.link_surnames(kb);
    build_entities(kb, &mut groups, body)
}

/// Title-case headline: only knowledge-base phrases and names the body already established are trusted.
fn rematch_title(kb: &KnowledgeBase, title: &TextView<'_>, groups: &Groups) -> Vec<Candidate> {
    let mut known: PhraseTrie<usize> = PhraseTrie::default();
    for (g, mentions) in groups.mentions.iter().enumerate() {
        if groups.kb[g].is_some() {
            continue;
        }
        for m in mentions {
            let keys: Vec<String> = m.surface.split(' ').map(str::to_string).collect();
            known.insert(&keys, g, |_, _| false);
        }
    }
    let tokens = title.tokens();
    let mut out = Vec::new();
    let mut i = 0;
    while i < tokens.len() {
        if let Some(m) = kb
            .match_at(title, i)
            .filter(|m| kb.entity(m.entity).match_alone)
        {
            i = m.tokens.end;
            let cue = Some(kb.entity(m.entity).entity_type);
            out.push(Candidate {
                tokens: m.tokens,
                kb: Some(m.entity),
                cue,
                group: None,
                title: None,
            });
        } else if let Some((len, g)) = known.longest_at(tokens, i) {
            out.push(Candidate {
                tokens: i..i + len,
                kb: None,
                cue: None,
                group: Some(g),
                title: None,
            });
            i += len;
        } else {
            i += 1;
        }
    }
    out
}

fn build_entities(kb: &KnowledgeBase, groups: &mut Groups, body: &TextView<'_>) -> Vec<Entity> {
    let members = groups.members();
    // Entities keyed by id, in order of first creation, so equal derived ids ("Asala", "ASALA") become one.
    let mut by_id: HashMap<String, usize> = HashMap::new();
    let mut drafts: Vec<(Option<usize>, Vec<MentionInfo>)> = Vec::new();
    let mut ids: Vec<String> = Vec::new();
    for (root, group_ids) in members.iter().enumerate() {
        if group_ids.is_empty() {
            continue;
        }
        let mentions: Vec<MentionInfo> = group_ids
            .iter()
            .flat_map(|&g| groups.mentions[g].iter().cloned())
            .collect();
        let kb_idx = groups.kb[root];
        let id = match kb_idx {
            Some(k) => kb.entity(k).id.clone(),
            None => match derive_id(&fullest(&mentions)) {
                Some(id) => id,
                None => continue,
            },
        };
        match by_id.get(&id) {
            Some(&d) => drafts[d].1.extend(mentions),
            None => {
                by_id.insert(id.clone(), drafts.len());
                drafts.push((kb_idx, mentions));
                ids.push(id);
            }
        }
    }
    let body_len = body.tokens().last().map_or(1, |t| t.end.max(1));
    let mut entities = Vec::new();
    let mut counts = Vec::new();
    for ((kb_idx, mut infos), id) in drafts.into_iter().zip(ids) {
        let (name, entity_type) = match kb_idx {
            Some(k) => (kb.entity(k).name.clone(), kb.entity(k).entity_type),
            None => (fullest(&infos), vote(infos.iter().map(|m| m.cue))),
        };
        infos.sort_by_key(|m| (m.position(), m.mention.end));
        infos.dedup_by_key(|m| (m.field, m.mention.start, m.mention.end));
        let in_title = infos.iter().any(|m| m.field == Field::Title);
        let first_body = infos
            .iter()
            .find(|m| m.field == Field::Body)
            .map(|m| m.mention.start);
        counts.push((infos.len(), first_body, in_title));
        entities.push(Entity {
            entity_id: id,
            name,
            entity_type,
            mentions: infos.into_iter().map(|m| m.mention).collect(),
            salience: 0.0,
            stance: Stance {
                label: StanceLabel::Neutral,
                score: 0.0,
                evidence: Vec::new(),
            },
            truncated_mentions: 0,
        });
    }
    let max_count = counts.iter().map(|c| c.0).max().unwrap_or(1).max(1);
    for (e, (count, first_body, in_title)) in entities.iter_mut().zip(counts) {
        e.salience = salience(
            count,
            max_count,
            first_body.map(|s| s as f64 / body_len as f64),
            in_title,
        );
    }
    entities.sort_by(|a, b| {
        b.salience
            .total_cmp(&a.salience)
            .then_with(|| a.name.cmp(&b.name))
            .then_with(|| a.entity_id.cmp(&b.entity_id))
    });
    entities
}

/// Frequency relative to the article's most mentioned entity, how early it first appears in the body, and
/// whether the title names it — the three signals that survive without a parser. Rounded so that float noise
/// never reorders entities between runs or builds.
fn salience(count: usize, max_count: usize, first_body: Option<f64>, in_title: bool) -> f64 {
    let frequency = ((1 + count) as f64).ln() / ((1 + max_count) as f64).ln();
    let earliness = first_body.map_or(0.0, |p| 1.0 - p.clamp(0.0, 1.0));
    let s = 0.5 * frequency + 0.3 * earliness + 0.2 * f64::from(u8::from(in_title));
    (s.clamp(0.0, 1.0) * 10_000.0).round() / 10_000.0
}

/// The fullest form seen: most words, then longest, then earliest; whitespace runs collapsed.
fn fullest(infos: &[MentionInfo]) -> String {
    let best = infos
        .iter()
        .max_by(|a, b| {
            (
                a.words,
                a.mention.text.chars().count(),
                Reverse(a.position()),
            )
                .cmp(&(
                    b.words,
                    b.mention.text.chars().count(),
                    Reverse(b.position()),
                ))
        })
        .map(|m| m.mention.text.as_str())
        .unwrap_or_default();
    clean_name(best)
}

/// A name as output: NFKC (so mathematical and full-width letters read as plain ones), typographic quotes and
/// dashes folded, invisible characters dropped, whitespace runs collapsed to one space.
fn clean_name(text: &str) -> String {
    text::normalize(text)
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kb() -> KnowledgeBase {
        KnowledgeBase::from_jsonl(
            r#"{"id": "Q159", "name": "Russia", "type": "LOCATION", "kind": "country", "demonyms": ["Russian", "Russians"]}
            {"id": "Q7747", "name": "Vladimir Putin", "type": "PERSON", "kind": "person", "aliases": ["Putin"]}
            {"id": "Q84", "name": "London", "type": "LOCATION", "kind": "city"}"#,
        )
        .unwrap()
    }

    fn run(body: &str, title: Option<&str>) -> Vec<Entity> {
        let kb = kb();
        let body = TextView::new(body);
        let title = title.map(TextView::new);
        let rec = Recogniser::new(&kb, Tagger::embedded(&kb).unwrap());
        find(&kb, &rec, &body, title.as_ref())
    }

    fn get<'a>(entities: &'a [Entity], name: &str) -> &'a Entity {
        entities
            .iter()
            .find(|e| e.name == name)
            .unwrap_or_else(|| panic!("no {name} in {entities:#?}"))
    }

    fn texts(e: &Entity) -> Vec<&str> {
        e.mentions.iter().map(|m| m.text.as_str()).collect()
    }

    #[test]
    fn acronym_and_expansion_merge() {
        let es = run(
            "The International Monetary Fund (IMF) approved the loan. Later the IMF said more was needed. \
             Analysts at Acme Capital doubted the IMF plan.",
            None,
        );
        let imf = get(&es, "International Monetary Fund");
        assert_eq!(imf.entity_type, EntityType::Org);
        assert_eq!(
            texts(imf),
            vec!["International Monetary Fund", "IMF", "IMF", "IMF"]
        );
        assert_eq!(imf.entity_id, "sw:international-monetary-fund");
        assert!(es.iter().all(|e| e.name != "IMF"));
    }

    #[test]
    fn possessives_titles_and_surnames() {
        let es = run(
            "Russian President Vladimir Putin’s plan failed. Putin's aides blamed Prime Minister Nikol \
             Pashinyan. Pashinyan said nothing. Foreign Minister Ararat Mirzoyan's office was quiet.",
            None,
        );
        let putin = get(&es, "Vladimir Putin");
        assert_eq!(texts(putin), vec!["Vladimir Putin", "Putin"]);
        assert_eq!(putin.entity_id, "Q7747");
        let russia = get(&es, "Russia");
        assert_eq!(texts(russia), vec!["Russian"]);
        let pashinyan = get(&es, "Nikol Pashinyan");
        assert_eq!(pashinyan.entity_type, EntityType::Person);
        assert_eq!(texts(pashinyan), vec!["Nikol Pashinyan", "Pashinyan"]);
        let mirzoyan = get(&es, "Ararat Mirzoyan");
        assert_eq!(mirzoyan.entity_type, EntityType::Person);
        assert_eq!(texts(mirzoyan), vec!["Ararat Mirzoyan"]);
        assert!(
            es.iter()
                .all(|e| !e.name.contains("Minister") && !e.name.ends_with('s')),
            "{es:#?}"
        );
    }

    #[test]
    fn titles_are_cues_not_names() {
        let es = run(
            "Dr. Jane Doe met Secretary-General António Guterres and U.N. envoy Staffan de Mistura. \
             Later Ms. Doe told reporters that General Motors would invest.",
            None,
        );
        let doe = get(&es, "Jane Doe");
        assert_eq!(doe.entity_type, EntityType::Person);
        assert_eq!(texts(doe), vec!["Jane Doe", "Doe"]);
        assert_eq!(get(&es, "António Guterres").entity_type, EntityType::Person);
        let mistura = get(&es, "Staffan de Mistura");
        assert_eq!(mistura.entity_type, EntityType::Person);
        assert_eq!(get(&es, "General Motors").entity_type, EntityType::Org);
        assert!(es
            .iter()
            .all(|e| !e.name.starts_with("Dr") && !e.name.starts_with("Secretary")));
    }

    #[test]
    fn sentence_initial_words_are_not_entities() {
        let es = run(
            "Clearly the plan failed. Pandemic fears grew as the pandemic spread. Haft weapons arrived. \
             Everything changed in London.",
            None,
        );
        let names: Vec<&str> = es.iter().map(|e| e.name.as_str()).collect();
        assert_eq!(names, vec!["London"]);
    }

    #[test]
    fn organisation_words_and_acronyms() {
        let es = run(
            "The Russian Foreign Ministry and the PYD met officials of the Asala organization.",
            None,
        );
        assert_eq!(
            get(&es, "Russian Foreign Ministry").entity_type,
            EntityType::Org
        );
        assert_eq!(get(&es, "PYD").entity_type, EntityType::Org);
        assert_eq!(get(&es, "Asala").entity_type, EntityType::Org);
        assert!(es.iter().all(|e| e.name != "Russia"));
    }

    #[test]
    fn title_mentions_point_into_the_title() {
        let es = run(
            "Sergei Lavrov said Putin would not attend. Lavrov was in London.",
            Some("Lavrov Says Putin Will Skip Summit"),
        );
        let lavrov = get(&es, "Sergei Lavrov");
        assert_eq!(lavrov.entity_type, EntityType::Person);
        assert_eq!(lavrov.mentions[0].field, Field::Title);
        assert_eq!((lavrov.mentions[0].start, lavrov.mentions[0].end), (0, 6));
        assert_eq!(texts(lavrov), vec!["Lavrov", "Sergei Lavrov", "Lavrov"]);
        assert!(
            es.iter()
                .all(|e| e.name != "Skip Summit" && e.name != "Says"),
            "{es:#?}"
        );
        assert_eq!(es[0].name, "Sergei Lavrov", "most salient first: {es:#?}");
    }
}
