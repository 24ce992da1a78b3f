//! Tidying the tagger's spans into names.
//!
//! The tagger proposes runs of tokens; feed text makes some of them more than one name or less than a name (see
//! [`crate::names`] for the shapes). Each span the knowledge base does not know as a whole is, in this order:
//! cut at place compounds ("Paris-based" yields the place "Paris", or nothing when the knowledge base does not
//! know it as a place); split where a stripped comma left a double space between two names; stripped of
//! leading words that never open a name ("Accordingly", "January", "Selon"; "All" and "No" from organisations
//! only at a sentence start, since "All Progressives Congress" is a name); stripped of its leading title
//! ("Sen.", "Prime Minister", "Democrat"), which the mention keeps; and split where the knowledge base knows
//! one end as a name of its own ("Donald Trump  Hillary Clinton", "Donald Trump Republicans"). What remains
//! of a span that held nothing but such words is dropped.

use std::ops::Range;

use crate::kb::{KnowledgeBase, MatchKind};
use crate::names;
use crate::text::{TextView, Token};
use crate::types::EntityType;

/// A tidied span: the name's tokens, its type, and the tokens of the title written before it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NameSpan {
    pub tokens: Range<usize>,
    pub ty: EntityType,
    pub title: Option<Range<usize>>,
}

/// Token suffixes that end a personal name and are not a name of their own ("Donald Trump Jr.").
const NAME_SUFFIXES: &str = "Jr Sr II III IV";

/// Tidies one span; at most a handful of spans come out.
pub fn tidy(
    kb: &KnowledgeBase,
    view: &TextView<'_>,
    range: Range<usize>,
    ty: EntityType,
) -> Vec<NameSpan> {
    let mut out = Vec::new();
    tidy_into(kb, view, range, ty, 0, &mut out);
    for span in &mut out {
        if span.title.is_none() && matches!(span.ty, EntityType::Person | EntityType::Misc) {
            span.title = title_before(view, span.tokens.start);
        }
    }
    out
}

fn keys(tokens: &[Token], range: Range<usize>) -> Vec<String> {
    tokens[range].iter().map(|t| t.key.clone()).collect()
}

fn known(kb: &KnowledgeBase, tokens: &[Token], range: Range<usize>) -> Option<(usize, MatchKind)> {
    if range.is_empty() {
        return None;
    }
    kb.lookup(&keys(tokens, range))
}

/// The span is a person's surname the knowledge base knows ("Le Pen", "von der Leyen"): nothing to strip.
fn known_surname(kb: &KnowledgeBase, tokens: &[Token], range: Range<usize>) -> bool {
    range.len() > 1 && !kb.people_with_surname(&keys(tokens, range)).is_empty()
}

fn has_name_word(tokens: &[Token], range: Range<usize>) -> bool {
    tokens[range].iter().any(|t| {
        t.is_capitalised()
            && !names::is_title(&t.norm)
            && !names::is_title_qualifier(&t.norm)
            && !names::is_role_word(&t.norm)
            && !names::never_starts_name(&t.norm)
    })
}

fn tidy_into(
    kb: &KnowledgeBase,
    view: &TextView<'_>,
    range: Range<usize>,
    ty: EntityType,
    depth: usize,
    out: &mut Vec<NameSpan>,
) {
    let tokens = view.tokens();
    if range.is_empty() || !tokens[range.clone()].iter().any(Token::is_word) {
        return;
    }
    // Splits recurse on strictly smaller spans; the bound only guards against a mistake here.
    if depth > 8 || known(kb, tokens, range.clone()).is_some() {
        out.push(NameSpan {
            tokens: range,
            ty,
            title: None,
        });
        return;
    }
    if let Some(parts) = split_compound(kb, tokens, range.clone()) {
        for (part, part_ty) in parts {
            tidy_into(kb, view, part, part_ty.unwrap_or(ty), depth + 1, out);
        }
        return;
    }
    if let Some(at) = double_space(tokens, range.clone()) {
        tidy_into(kb, view, range.start..at, ty, depth + 1, out);
        tidy_into(kb, view, at..range.end, ty, depth + 1, out);
        return;
    }
    let personal = matches!(ty, EntityType::Person | EntityType::Misc);
    let mut start = range.start;
    // The word lists first: the knowledge-base probes allocate, and most spans open with a name.
    while start + 1 < range.end
        && tokens[start + 1].space_before
        && ((names::never_starts_name(&tokens[start].norm)
            && !tokens[start].is_all_caps()
            && (personal
                || tokens[start].sentence_initial
                || !names::sometimes_starts_name(&tokens[start].norm)))
            || names::is_foreign_function_word(&tokens[start].norm))
        && !known_surname(kb, tokens, start..range.end)
        && known(kb, tokens, start..range.end).is_none()
    {
        start += 1;
    }
    if start > range.start {
        tidy_into(kb, view, start..range.end, ty, depth + 1, out);
        return;
    }
    let mut title = None;
    if personal {
        if let Some(end) = title_end(tokens, range.clone()) {
            title = Some(range.start..end);
            start = end;
        }
    }
    let range = start..range.end;
    if !has_name_word(tokens, range.clone()) {
        return;
    }
    if personal {
        if let Some(at) = known_end(kb, view, range.clone()) {
            let mut first = Vec::new();
            tidy_into(kb, view, range.start..at, ty, depth + 1, &mut first);
            if let (Some(t), Some(f)) = (&title, first.first_mut()) {
                f.title.get_or_insert(t.clone());
            }
            out.extend(first);
            tidy_into(kb, view, at..range.end, ty, depth + 1, out);
            return;
        }
    }
    out.push(NameSpan {
        tokens: range,
        ty,
        title,
    });
}

/// "Paris-based", "US-led", "New York-based": the parts around the compound, with the place before the hyphen
/// typed as a place when the knowledge base knows it as one (or as the demonym or alias of a country), and
/// left out otherwise.
type Parts = Vec<(Range<usize>, Option<EntityType>)>;

fn split_compound(kb: &KnowledgeBase, tokens: &[Token], range: Range<usize>) -> Option<Parts> {
    let hyphen = (range.start + 1..range.end.saturating_sub(1)).find(|&j| {
        tokens[j].norm == "-"
            && !tokens[j].space_before
            && !tokens[j + 1].space_before
            && names::is_compound_head(&tokens[j + 1].norm)
    })?;
    let mut parts = Vec::new();
    let place = (range.start..hyphen).find_map(|s| {
        let (entity, _) = known(kb, tokens, s..hyphen)?;
        (kb.entity(entity).entity_type == EntityType::Location).then_some(s)
    });
    match place {
        Some(s) => {
            parts.push((range.start..s, None));
            parts.push((s..hyphen, Some(EntityType::Location)));
        }
        None => {
            // The word before the hyphen belongs to the compound; anything before that is a name of its own.
            parts.push((range.start..hyphen - 1, None));
        }
    }
    parts.push((hyphen + 2..range.end, None));
    parts.retain(|(r, _)| !r.is_empty());
    Some(parts)
}

/// Where two runs of capitalised words are separated by two or more whitespace characters: the trace of a comma
/// a feed stripped ("Mick Mulvaney  Trump").
fn double_space(tokens: &[Token], range: Range<usize>) -> Option<usize> {
    (range.start + 1..range.end).find(|&i| {
        tokens[i].start >= tokens[i - 1].end + 2
            && tokens[i].is_capitalised()
            && tokens[i - 1].is_word()
            && !tokens[i].newline_before
    })
}

/// The end of a leading title ("Sen.", "Vice President", "Democrat", "Republican Sen."): a run of title,
/// qualifier and party words (and their dots) holding at least one title or party word, followed by a
/// capitalised word.
fn title_end(tokens: &[Token], range: Range<usize>) -> Option<usize> {
    let mut end = None;
    let mut i = range.start;
    let mut titled = false;
    while i < range.end {
        let t = &tokens[i];
        if t.norm == "." || t.norm == "-" {
            i += 1;
            continue;
        }
        let title = names::is_title(&t.norm) || names::is_role_word(&t.norm);
        if !(title || names::is_title_qualifier(&t.norm)) {
            break;
        }
        titled |= title;
        i += 1;
        if titled {
            end = Some(i);
        }
    }
    let mut end = end?;
    while end < range.end && matches!(tokens[end].norm.as_str(), "." | "-") {
        end += 1;
    }
    (end < range.end && tokens[end].is_capitalised()).then_some(end)
}

/// A title right before a name that the tagger left out of the span ("President" in "President Trump").
fn title_before(view: &TextView<'_>, start: usize) -> Option<Range<usize>> {
    let tokens = view.tokens();
    let sentence = tokens.get(start)?.sentence;
    let mut from = start;
    while from > 0 {
        let t = &tokens[from - 1];
        let part = t.sentence == sentence
            && (t.norm == "."
                || (t.is_capitalised()
                    && (names::is_title(&t.norm) || names::is_title_qualifier(&t.norm))));
        if !part {
            break;
        }
        from -= 1;
    }
    // Only the dot of an abbreviated title counts, not a sentence's full stop.
    while from < start && tokens[from].norm == "." {
        from += 1;
    }
    let titled = tokens[from..start].iter().any(|t| names::is_title(&t.norm));
    titled.then_some(from..start)
}

/// A split point where the knowledge base knows one side as a name of its own and the other side is a name too:
/// a known name at the start followed by another known name or a full name ("Donald Trump Hillary Clinton",
/// "Donald Trump Republicans"), or a full name followed by a known name at the end ("Mick Mulvaney Trump").
/// "Ivanka Trump" is not split (one word before a known surname is a given name), nor "Trump Tower" (the rest
/// is no name of its own), nor "Donald Trump Jr.".
fn known_end(kb: &KnowledgeBase, view: &TextView<'_>, range: Range<usize>) -> Option<usize> {
    let tokens = view.tokens();
    if range.len() < 2 {
        return None;
    }
    let capital_words = |r: Range<usize>| {
        tokens[r]
            .iter()
            .filter(|t| t.is_word() && t.is_capitalised())
            .count()
    };
    let suffix = |r: Range<usize>| {
        let word = tokens[r.start].norm.trim_end_matches('.');
        r.len() <= 2 && NAME_SUFFIXES.split_whitespace().any(|s| s == word)
    };
    if let Some(m) = kb.match_at(view, range.start) {
        let at = m.tokens.end;
        if at < range.end && tokens[at].is_capitalised() {
            let rest = at..range.end;
            let rest_is_name =
                known(kb, tokens, rest.clone()).is_some() || capital_words(rest.clone()) >= 2;
            if rest_is_name && !suffix(rest) {
                return Some(at);
            }
        }
    }
    for at in range.start + 1..range.end {
        let Some(m) = kb.match_at(view, at) else {
            continue;
        };
        if m.tokens.end != range.end {
            continue;
        }
        let before = range.start..at;
        let before_is_name =
            known(kb, tokens, before.clone()).is_some() || capital_words(before) >= 2;
        if before_is_name {
            return Some(at);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kb() -> KnowledgeBase {
        KnowledgeBase::from_jsonl(
            r#"{"id": "Q22686", "name": "Donald Trump", "type": "PERSON", "aliases": ["Trump"]}
            {"id": "Q6294", "name": "Hillary Clinton", "type": "PERSON"}
            {"id": "Q90", "name": "Paris", "type": "LOCATION", "kind": "city"}
            {"id": "Q30", "name": "United States", "type": "LOCATION", "kind": "country", "aliases": ["US"]}
            {"name": "Republicans", "type": "GROUP"}
            {"name": "Marine Le Pen", "type": "PERSON"}"#,
        )
        .unwrap()
    }

    /// The tidied spans of the whole of `text`, tagged as one span of `ty`, as (text, title) pairs.
    fn run(text: &str, ty: EntityType) -> Vec<(String, Option<String>, EntityType)> {
        let kb = kb();
        let view = TextView::new(text);
        let n = view.tokens().len();
        tidy(&kb, &view, 0..n, ty)
            .into_iter()
            .map(|s| {
                (
                    view.span_text(s.tokens).to_string(),
                    s.title.map(|t| view.span_text(t).to_string()),
                    s.ty,
                )
            })
            .collect()
    }

    fn names(text: &str, ty: EntityType) -> Vec<String> {
        run(text, ty).into_iter().map(|(n, _, _)| n).collect()
    }

    #[test]
    fn openers_months_and_foreign_function_words_are_stripped() {
        assert_eq!(names("Accordingly Trump", EntityType::Person), ["Trump"]);
        assert_eq!(names("January Trump", EntityType::Person), ["Trump"]);
        assert_eq!(names("Does Trump", EntityType::Person), ["Trump"]);
        assert_eq!(names("du Brésil", EntityType::Person), ["Brésil"]);
        assert_eq!(names("Selon Reuters", EntityType::Org), ["Reuters"]);
        assert_eq!(names("On Instagram", EntityType::Org), ["Instagram"]);
        assert_eq!(names("Las Vegas", EntityType::Location), ["Las Vegas"]);
        // Name particles stay, and a known surname is left alone.
        assert_eq!(names("Le Pen", EntityType::Person), ["Le Pen"]);
        assert_eq!(
            names("Ursula von der Leyen", EntityType::Person),
            ["Ursula von der Leyen"]
        );
        // Only a separate word is stripped: "Mar-a-Lago" is one name.
        assert_eq!(names("Mar-a-Lago", EntityType::Misc), ["Mar-a-Lago"]);
    }

    #[test]
    fn titles_move_to_the_mention() {
        let got = run("Sen. John McCain", EntityType::Person);
        assert_eq!(got[0].0, "John McCain");
        assert_eq!(got[0].1.as_deref(), Some("Sen."));
        let got = run("Democrat Hillary Clinton", EntityType::Person);
        assert_eq!(got[0].0, "Hillary Clinton");
        assert_eq!(got[0].1.as_deref(), Some("Democrat"));
        let got = run("Prime Minister Nikol Pashinyan", EntityType::Person);
        assert_eq!(got[0].0, "Nikol Pashinyan");
        assert_eq!(got[0].1.as_deref(), Some("Prime Minister"));
        assert_eq!(names("Pres. Trump", EntityType::Person), ["Trump"]);
        // A title alone is no name; an organisation keeps its words.
        assert!(names("Senator", EntityType::Person).is_empty());
        assert_eq!(names("General Motors", EntityType::Org), ["General Motors"]);
        // A title the tagger left outside the span is still the mention's.
        let kb = kb();
        let view = TextView::new("He met President Trump.");
        let got = tidy(&kb, &view, 3..4, EntityType::Person);
        assert_eq!(
            got[0].title.clone().map(|t| view.span_text(t)),
            Some("President")
        );
    }

    #[test]
    fn names_run_together_are_split() {
        assert_eq!(
            names("Mick Mulvaney  Trump", EntityType::Person),
            ["Mick Mulvaney", "Trump"]
        );
        assert_eq!(
            names("Mick Mulvaney Trump", EntityType::Person),
            ["Mick Mulvaney", "Trump"]
        );
        assert_eq!(
            names("Donald Trump Hillary Clinton", EntityType::Person),
            ["Donald Trump", "Hillary Clinton"]
        );
        assert_eq!(
            names("Donald Trump Republicans", EntityType::Person),
            ["Donald Trump", "Republicans"]
        );
        assert_eq!(names("Ivanka Trump", EntityType::Person), ["Ivanka Trump"]);
        assert_eq!(
            names("Donald Trump Jr.", EntityType::Person),
            ["Donald Trump Jr."]
        );
    }

    #[test]
    fn place_compounds_yield_the_place_or_nothing() {
        assert_eq!(
            run("Paris-based", EntityType::Org),
            [("Paris".to_string(), None, EntityType::Location)]
        );
        assert_eq!(
            run("US-led", EntityType::Misc),
            [("US".to_string(), None, EntityType::Location)]
        );
        assert!(names("Kurdish-led", EntityType::Misc).is_empty());
        assert_eq!(names("Moscow-backed Wagner", EntityType::Org), ["Wagner"]);
    }
}
