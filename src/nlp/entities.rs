//! Entity recognition and within-article merging for the baseline.
//!
//! Candidates come from two sources: knowledge-base phrases (names, aliases, demonyms standing for their
//! country) and runs of capitalised tokens typed by surface rules — titles before a name, organisation words,
//! acronyms, "X said". Mentions are then merged into entities: same knowledge-base entry, same surface, a
//! surname standing for a full name seen in the same article, an acronym for its expansion. Stance is left as a
//! neutral placeholder for [`super::stance`] to fill in.
//!
//! The rules are deliberately plain: they are the floor a trained model has to beat, and every decision they
//! make can be explained by pointing at a word list below.

use std::cmp::Reverse;
use std::collections::{HashMap, HashSet};
use std::ops::Range;

use super::kb::{derive_id, KnowledgeBase, PhraseTrie};
use super::text::{TextView, Token};
use super::{Entity, EntityType, Field, Mention, Stance, StanceLabel};

/// Lowercase words that may sit inside a name between capitalised words ("Bank of England", "Charles de
/// Gaulle", "Osama bin Laden"). "and" and "for" are left out: "Turkey and Azerbaijan" is two entities.
const CONNECTORS: &str = "\
    of de del della di da do dos das du des la le van von der den ter al el bin ibn bint ben abu y e \
    st zu";

/// Words in front of a name that say it is a person; they are not part of the mention. Compared lowercased,
/// without the abbreviation's dot.
const TITLE_HEADS: &str = "\
    president minister chancellor premier secretary secretary-general spokesman spokeswoman \
    spokesperson leader king queen prince princess pope sheikh emir sultan ayatollah imam senator \
    sen governor gov mayor judge ambassador envoy mr mrs ms miss dr prof professor sir dame lord \
    lady gen lt col colonel capt captain sgt sergeant admiral adm commander marshal rep \
    representative congressman congresswoman chairman chairwoman ceo director speaker attorney \
    president-elect rabbi patriarch archbishop bishop cardinal";

/// Words that only make a title together with a head ("Prime Minister", "Foreign Minister", "Vice
/// President"); alone they are ordinary words ("Foreign Policy").
const TITLE_MODIFIERS: &str = "\
    prime foreign defence defense interior finance economy trade health justice deputy vice acting \
    former first crown grand supreme chief senior state general army opposition party executive new \
    late then";

/// Lowercase role nouns right before a capitalised name ("Armenian leader Pashinyan").
const ROLE_NOUNS: &str = "\
    leader president minister chancellor premier spokesman spokeswoman spokesperson secretary \
    secretary-general senator governor mayor ambassador envoy chairman chairwoman ceo dictator king \
    queen prince princess pope commander judge lawmaker mp candidate activist journalist general \
    colonel captain cleric strongman counterpart founder chief head official diplomat economist \
    analyst";

/// Capitalised words that make the name around them an organisation.
const ORG_WORDS: &str = "\
    inc corp corporation ltd llc plc co company companies bank party ministry agency council union \
    group organization organisation association front army forces force navy committee commission \
    institute university college academy news times post journal tribune herald gazette press \
    network television radio foundation fund federation alliance league movement brigade brigades \
    court parliament assembly congress senate government administration department office bureau \
    service services authority police guard corps coalition church club airlines airways industries \
    holdings systems technologies motors media cabinet secretariat board trust society center centre";

/// Lowercase nouns right after a capitalised name that make it an organisation ("the Asala organization").
const ORG_NOUNS_AFTER: &str = "\
    organization organisation group party movement militia company agency ministry government \
    network faction newspaper channel bank firm coalition";

/// Speech verbs of the "X said" pattern that make an unknown short name a person.
const SPEECH_VERBS: &str = "\
    said says told added";

/// Words capitalised only because they start a sentence. A sentence-initial word is also taken as common
/// when it occurs in lowercase elsewhere in the article, which catches what this list misses.
const COMMON_STARTERS: &str = "\
    a an the this that these those it its it's he she they we i you his her their our my your in on \
    at for from by with as to of into about after before during since until under over between \
    against among through but and or so yet if when while whereas where why how what who whom whose \
    which because although though however meanwhile also yes no not there here all both each every \
    some many most more much such other another one two three several few any apart despite \
    according likewise indeed instead thus therefore moreover furthermore still even just only now \
    then today yesterday tomorrow tonight last next first second third finally later earlier once \
    again everything nothing something anything someone everyone anyone nobody none let please do \
    does did is are was were be been has have had will would can could should may might must shall \
    said says asked given unlike like whether either neither nor perhaps maybe besides otherwise \
    hence whatever whoever wherever whenever above below behind beyond inside outside within without \
    upon onto toward towards amid amidst via per than too very well oh ah okay ok hello dear thanks \
    thank sure certainly clearly obviously unfortunately fortunately recently currently previously \
    initially eventually ultimately actually basically especially particularly generally usually \
    often sometimes always never already soon almost nearly about around new old former many few \
    more less least best worst good bad big small great high low long short young early late full \
    whole same different important possible impossible true false real official officials people \
    police experts analysts critics sources reports residents witnesses authorities according \
    regarding including following speaking asked writing reporting why";

/// Month and weekday names: capitalised, but dates are not entities in the output contract.
const CALENDAR: &str = "\
    january february march april may june july august september october november december monday \
    tuesday wednesday thursday friday saturday sunday";

/// All-caps tokens that are not organisation acronyms.
const NOT_ACRONYMS: &str = "\
    I II III IV V VI VII VIII IX X XI XII XX OK TV AM PM AD BC CEO CFO PHD AKA FAQ GMT UTC USD EUR \
    GDP PS NB";

/// Abbreviations whose dot stays inside a name ("Dr. Jane Doe", "St. Petersburg"); case-sensitive.
const NAME_ABBREVIATIONS: &str =
    "Mr Mrs Ms Dr Prof Gen Sen Gov Rep Lt Col Capt Sgt Adm St Mt Ft Jr Sr";

/// A recognised span before merging.
#[derive(Debug, Clone)]
struct Candidate {
    tokens: Range<usize>,
    kb: Option<usize>,
    /// Type suggested by surface cues; `None` means no evidence (MISC unless merged with something typed).
    cue: Option<EntityType>,
    /// One capitalised word at the start of a sentence, with nothing else saying it is a name.
    initial_lone: bool,
    /// Title re-matching already knows which body group this is.
    group: Option<usize>,
}

/// The rule word lists above as sets. Built once, with the knowledge base that carries them, because building
/// them per article would cost more than recognising the entities of a typical article.
#[derive(Debug, Clone)]
pub(crate) struct CueWords {
    common: HashSet<&'static str>,
    connectors: HashSet<&'static str>,
    title_heads: HashSet<&'static str>,
    title_modifiers: HashSet<&'static str>,
    role_nouns: HashSet<&'static str>,
    org_words: HashSet<&'static str>,
    org_nouns_after: HashSet<&'static str>,
}

impl Default for CueWords {
    fn default() -> Self {
        let set = |words: &'static str| words.split_whitespace().collect::<HashSet<_>>();
        CueWords {
            common: set(COMMON_STARTERS),
            connectors: set(CONNECTORS),
            title_heads: set(TITLE_HEADS),
            title_modifiers: set(TITLE_MODIFIERS),
            role_nouns: set(ROLE_NOUNS),
            org_words: set(ORG_WORDS),
            org_nouns_after: set(ORG_NOUNS_AFTER),
        }
    }
}

/// The cue words plus what this article writes in lowercase, which the sentence-initial test consults.
struct Vocabulary<'t> {
    lowercase: HashSet<&'t str>,
    cues: &'t CueWords,
}

impl<'t> Vocabulary<'t> {
    fn new(cues: &'t CueWords, views: &[&'t TextView<'_>]) -> Self {
        let mut lowercase = HashSet::new();
        for view in views {
            for t in view.tokens() {
                if t.is_word() && !t.is_capitalised() {
                    lowercase.insert(t.lower.as_str());
                }
            }
        }
        Vocabulary { lowercase, cues }
    }

    /// The sentence-initial token is an ordinary word, not a name.
    fn is_common_start(&self, tokens: &[Token], i: usize) -> bool {
        let t = &tokens[i];
        let lower = t.lower.as_str();
        let next_capitalised = tokens
            .get(i + 1)
            .is_some_and(|n| n.is_capitalised() && n.is_word());
        self.cues.common.contains(lower)
            || self.lowercase.contains(lower)
            || (lower.ends_with("ly") && lower.chars().count() >= 6 && !next_capitalised)
    }
}

/// `word` is one of the whitespace-separated words of `list`; for the short lists consulted rarely.
fn listed(list: &str, word: &str) -> bool {
    list.split_whitespace().any(|w| w == word)
}

fn title_key(t: &Token) -> &str {
    t.lower.trim_end_matches('.')
}

fn is_glued_hyphen(tokens: &[Token], i: usize) -> bool {
    tokens[i].norm == "-"
        && !tokens[i].space_before
        && tokens.get(i + 1).is_some_and(|n| !n.space_before)
}

/// A dot glued to an initial or title abbreviation ("J.", "Dr.") inside a name.
fn is_glued_abbreviation_dot(tokens: &[Token], i: usize) -> bool {
    if tokens[i].norm != "." || tokens[i].space_before || i == 0 {
        return false;
    }
    let prev = &tokens[i - 1].norm;
    let mut chars = prev.chars();
    let initial = matches!((chars.next(), chars.next()), (Some(c), None) if c.is_uppercase());
    initial || listed(NAME_ABBREVIATIONS, prev)
}

fn is_name_word(t: &Token) -> bool {
    t.is_word() && t.is_capitalised()
}

/// End (exclusive) of the capitalised run starting at `start`, bridging connectors, glued hyphens and
/// abbreviation dots when a capitalised word follows them.
fn run_end(vocab: &Vocabulary<'_>, tokens: &[Token], start: usize) -> usize {
    let sentence = tokens[start].sentence;
    let mut end = start + 1;
    loop {
        let mut k = end;
        while k < tokens.len()
            && k - end < 3
            && tokens[k].sentence == sentence
            && !tokens[k].newline_before
        {
            let t = &tokens[k];
            let bridge = vocab.cues.connectors.contains(t.norm.as_str())
                || (t.norm == "the" && tokens[k - 1].norm == "of")
                || t.norm == "&"
                || is_glued_hyphen(tokens, k)
                || is_glued_abbreviation_dot(tokens, k);
            if !bridge {
                break;
            }
            k += 1;
        }
        let continues = k < tokens.len()
            && tokens[k].sentence == sentence
            && !tokens[k].newline_before
            && is_name_word(&tokens[k]);
        if !continues {
            return end;
        }
        end = k + 1;
    }
}

fn is_bridge_token(vocab: &Vocabulary<'_>, tokens: &[Token], i: usize) -> bool {
    let t = &tokens[i];
    !t.is_word() || vocab.cues.connectors.contains(t.norm.as_str()) || t.norm == "the"
}

/// Token range of a leading title ("Prime Minister", "Dr.", "Secretary-General") at `start`, if any.
fn title_at(vocab: &Vocabulary<'_>, tokens: &[Token], start: usize, end: usize) -> Option<usize> {
    let mut k = start;
    while k < end
        && (vocab.cues.title_modifiers.contains(title_key(&tokens[k]))
            || is_glued_hyphen(tokens, k))
    {
        k += 1;
    }
    if k >= end || !vocab.cues.title_heads.contains(title_key(&tokens[k])) {
        return None;
    }
    k += 1;
    // "Secretary-General", "Attorney General", "Dr." : the rest of the title.
    while k < end
        && (is_glued_hyphen(tokens, k)
            || is_glued_abbreviation_dot(tokens, k)
            || matches!(title_key(&tokens[k]), "general" | "elect"))
    {
        k += 1;
    }
    Some(k)
}

/// Types and trims one stretch of a capitalised run that no knowledge-base phrase covers.
fn piece(vocab: &Vocabulary<'_>, view: &TextView<'_>, range: Range<usize>) -> Option<Candidate> {
    let tokens = view.tokens();
    let (mut s, mut e) = (range.start, range.end);
    if view.is_sentence_initial(s) && vocab.is_common_start(tokens, s) {
        s += 1;
    }
    while s < e && is_bridge_token(vocab, tokens, s) {
        s += 1;
    }
    let mut titled = false;
    while s < e {
        let Some(after) = title_at(vocab, tokens, s, e) else {
            break;
        };
        s = after;
        titled = true;
        while s < e && is_bridge_token(vocab, tokens, s) {
            s += 1;
        }
    }
    while e > s && is_bridge_token(vocab, tokens, e - 1) {
        e -= 1;
    }
    if s >= e {
        return None;
    }
    let single = e - s == 1;
    let first = &tokens[s];
    if single
        && (listed(CALENDAR, first.lower.as_str()) || listed(NOT_ACRONYMS, first.norm.as_str()))
    {
        return None;
    }
    let prev_word = tokens[..s]
        .iter()
        .rposition(|t| t.norm != "-")
        .filter(|&p| tokens[p].sentence == first.sentence);
    let role_before = !titled
        && prev_word.is_some_and(|p| {
            !tokens[p].is_capitalised() && vocab.cues.role_nouns.contains(tokens[p].lower.as_str())
        });
    let org_word = tokens[s..e]
        .iter()
        .any(|t| t.is_capitalised() && vocab.cues.org_words.contains(title_key(t)));
    let org_after = tokens.get(e).is_some_and(|t| {
        t.sentence == first.sentence && vocab.cues.org_nouns_after.contains(t.norm.as_str())
    });
    let words = tokens[s..e].iter().filter(|t| t.is_word()).count();
    let said = words <= 3 && speech_follows(tokens, e, first.sentence);
    let acronym = single && is_acronym(first);
    let cue = if org_word || org_after {
        Some(EntityType::Org)
    } else if titled || role_before || said {
        Some(EntityType::Person)
    } else if acronym {
        Some(EntityType::Org)
    } else {
        None
    };
    let initial_lone = single && cue.is_none() && view.is_sentence_initial(s);
    Some(Candidate {
        tokens: s..e,
        kb: None,
        cue,
        initial_lone,
        group: None,
    })
}

/// "X said", also with one adverb between ("X also said", "X later told").
fn speech_follows(tokens: &[Token], at: usize, sentence: usize) -> bool {
    let is_verb = |i: usize| {
        tokens
            .get(i)
            .is_some_and(|t| t.sentence == sentence && listed(SPEECH_VERBS, t.lower.as_str()))
    };
    let adverb = tokens.get(at).is_some_and(|t| {
        t.sentence == sentence
            && (t.lower == "also"
                || t.lower == "later"
                || (t.lower.ends_with("ly") && !t.is_capitalised()))
    });
    is_verb(at) || (adverb && is_verb(at + 1))
}

/// Two to six capitals, dots allowed ("PKK", "U.N."), and not a roman numeral or the like.
fn is_acronym(t: &Token) -> bool {
    let letters = t.norm.chars().filter(|c| c.is_alphabetic()).count();
    t.is_all_caps() && (2..=6).contains(&letters) && !listed(NOT_ACRONYMS, t.norm.as_str())
}

/// Candidates of one field: knowledge-base phrases plus typed capitalised spans, in text order.
fn detect(kb: &KnowledgeBase, vocab: &Vocabulary<'_>, view: &TextView<'_>) -> Vec<Candidate> {
    let tokens = view.tokens();
    let matches = kb.find_all(view);
    let mut covered: Vec<Option<usize>> = vec![None; tokens.len()];
    for (mi, m) in matches.iter().enumerate() {
        for t in m.tokens.clone() {
            covered[t] = Some(mi);
        }
    }
    let mut keep_match = vec![true; matches.len()];
    let mut out = Vec::new();
    let mut i = 0;
    while i < tokens.len() {
        if !is_name_word(&tokens[i]) {
            i += 1;
            continue;
        }
        let end = run_end(vocab, tokens, i);
        let mut start = i;
        i = end;
        // The sentence-initial common word is dropped before anything else, so that "The Russian Foreign
        // Ministry" is judged on "Russian Foreign Ministry".
        if covered[start].is_none()
            && view.is_sentence_initial(start)
            && vocab.is_common_start(tokens, start)
        {
            start += 1;
            while start < end && is_bridge_token(vocab, tokens, start) {
                start += 1;
            }
        }
        if start >= end {
            continue;
        }
        let inside: Vec<usize> = {
            let mut v: Vec<usize> = covered[start..end].iter().flatten().copied().collect();
            v.dedup();
            v
        };
        let leftovers = uncovered_pieces(&covered, start..end);
        // "Russian Foreign Ministry", "New York Times": a place inside an organisation's name is part of
        // the name, not a mention of the place.
        let places_only = inside.iter().all(|&mi| {
            let m = &matches[mi];
            m.tokens.start >= start
                && m.tokens.end <= end
                && matches!(
                    kb.entity(m.entity).entity_type,
                    EntityType::Location | EntityType::Group
                )
        });
        let org_in_leftover = leftovers.iter().any(|r| {
            tokens[r.clone()]
                .iter()
                .any(|t| t.is_capitalised() && vocab.cues.org_words.contains(title_key(t)))
        });
        if !inside.is_empty() && places_only && org_in_leftover {
            if let Some(mut c) = piece(vocab, view, start..end) {
                if c.cue == Some(EntityType::Org) {
                    for &mi in &inside {
                        keep_match[mi] = false;
                    }
                    c.initial_lone = false;
                    out.push(c);
                    continue;
                }
            }
        }
        for r in leftovers {
            if let Some(c) = piece(vocab, view, r) {
                out.push(c);
            }
        }
    }
    for (mi, m) in matches.into_iter().enumerate() {
        if keep_match[mi] {
            let cue = Some(kb.entity(m.entity).entity_type);
            out.push(Candidate {
                tokens: m.tokens,
                kb: Some(m.entity),
                cue,
                initial_lone: false,
                group: None,
            });
        }
    }
    out.sort_by_key(|c| (c.tokens.start, c.tokens.end));
    out
}

/// Maximal sub-ranges of `range` that no knowledge-base match covers.
fn uncovered_pieces(covered: &[Option<usize>], range: Range<usize>) -> Vec<Range<usize>> {
    let mut pieces = Vec::new();
    let mut open: Option<usize> = None;
    for t in range.clone() {
        match (covered[t], open) {
            (None, None) => open = Some(t),
            (Some(_), Some(s)) => {
                pieces.push(s..t);
                open = None;
            }
            _ => {}
        }
    }
    if let Some(s) = open {
        pieces.push(s..range.end);
    }
    pieces
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
    initial_lone: bool,
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
        initial_lone: c.initial_lone,
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
            let lone = self.kb[g].is_none()
                && matches!(types[g], EntityType::Person | EntityType::Misc)
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
            self.union(g, h);
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
pub fn find(kb: &KnowledgeBase, body: &TextView<'_>, title: Option<&TextView<'_>>) -> Vec<Entity> {
    let mut views = vec![body];
    views.extend(title);
    let vocab = Vocabulary::new(kb.cue_words(), &views);
    let mut groups = Groups::default();
    for c in detect(kb, &vocab, body) {
        groups.add(body, Field::Body, &c);
    }
    if let Some(title) = title {
        let candidates = if is_title_case(title) {
            rematch_title(kb, title, &groups)
        } else {
            detect(kb, &vocab, title)
        };
        for c in candidates {
            groups.add(title, Field::Title, &c);
        }
    }
    groups.merge_acronyms();
    groups.merge_surnames(kb);
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
        if let Some(m) = kb.match_at(title, i) {
            i = m.tokens.end;
            let cue = Some(kb.entity(m.entity).entity_type);
            out.push(Candidate {
                tokens: m.tokens,
                kb: Some(m.entity),
                cue,
                initial_lone: false,
                group: None,
            });
        } else if let Some((len, g)) = known.longest_at(tokens, i) {
            out.push(Candidate {
                tokens: i..i + len,
                kb: None,
                cue: None,
                initial_lone: false,
                group: Some(g),
            });
            i += len;
        } else {
            i += 1;
        }
    }
    out
}

fn build_entities(kb: &KnowledgeBase, groups: &mut Groups, body: &TextView<'_>) -> Vec<Entity> {
    let n = groups.mentions.len();
    let mut members: Vec<Vec<usize>> = vec![Vec::new(); n];
    for g in 0..n {
        let r = groups.find(g);
        members[r].push(g);
    }
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
        if kb_idx.is_none()
            && entity_type == EntityType::Misc
            && infos.iter().all(|m| m.initial_lone)
        {
            continue;
        }
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
    best.split_whitespace().collect::<Vec<_>>().join(" ")
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
        find(&kb, &body, title.as_ref())
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
