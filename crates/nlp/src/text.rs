//! Sentences and tokens of one text field, with offsets back into the original string.
//!
//! Every later stage works on the [`TextView`] built here. It keeps the original text untouched and gives each
//! token and sentence both byte offsets (for slicing) and code-point offsets (what the output contract speaks
//! in), plus normalised forms for matching: NFKC with typographic quotes and dashes folded to ASCII (`norm`), its
//! lowercase (`lower`) and a diacritic-free variant (`key`) so "Erdoğan" and "Erdogan" can meet. Everything is
//! one left-to-right pass: article bodies come from the outside world and may be huge or pathological.

use std::ops::Range;

use unicode_normalization::char::is_combining_mark;
use unicode_normalization::UnicodeNormalization;
use unicode_segmentation::UnicodeSegmentation;

/// One word, number, punctuation mark or symbol of the text.
#[derive(Debug, Clone, PartialEq)]
pub struct Token {
    pub byte_start: usize,
    pub byte_end: usize,
    /// Code-point offsets into the original text, `end` exclusive.
    pub start: usize,
    pub end: usize,
    /// NFKC, with curly quotes, apostrophes and dashes folded to ASCII. Case preserved.
    pub norm: String,
    /// `norm` lowercased.
    pub lower: String,
    /// `norm` without diacritics; case preserved. The form knowledge-base matching compares.
    pub key: String,
    /// Index of the sentence holding this token.
    pub sentence: usize,
    /// Whitespace separates this token from the previous one.
    pub space_before: bool,
    /// That whitespace holds a line break.
    pub newline_before: bool,
    /// See [`TextView::is_sentence_initial`].
    pub sentence_initial: bool,
}

impl Token {
    /// Holds at least one letter or digit (as opposed to punctuation and symbols).
    pub fn is_word(&self) -> bool {
        self.norm.chars().any(char::is_alphanumeric)
    }

    /// Starts with an upper-case letter.
    pub fn is_capitalised(&self) -> bool {
        self.norm.chars().next().is_some_and(char::is_uppercase)
    }

    /// Two or more letters, all upper case (digits and dots allowed, as in "G20" or "U.S.").
    pub fn is_all_caps(&self) -> bool {
        let mut letters = 0;
        for c in self.norm.chars() {
            if c.is_alphabetic() {
                if !c.is_uppercase() {
                    return false;
                }
                letters += 1;
            } else if !(c.is_ascii_digit() || c == '.') {
                return false;
            }
        }
        letters >= 2
    }
}

/// A run of tokens the splitter considers one sentence.
#[derive(Debug, Clone, PartialEq)]
pub struct Sentence {
    pub byte_start: usize,
    pub byte_end: usize,
    /// Code-point offsets into the original text, from the first token's start to the last token's end.
    pub start: usize,
    pub end: usize,
    /// Indices into [`TextView::tokens`].
    pub tokens: Range<usize>,
}

/// A tokenised, sentence-split view of one text field.
#[derive(Debug, Clone)]
pub struct TextView<'a> {
    text: &'a str,
    tokens: Vec<Token>,
    sentences: Vec<Sentence>,
}

impl<'a> TextView<'a> {
    pub fn new(text: &'a str) -> Self {
        let tokens = tokenize(text);
        let mut view = TextView {
            text,
            tokens,
            sentences: Vec::new(),
        };
        view.split_sentences();
        view
    }

    /// The original, un-normalised text.
    pub fn text(&self) -> &'a str {
        self.text
    }

    pub fn tokens(&self) -> &[Token] {
        &self.tokens
    }

    pub fn sentences(&self) -> &[Sentence] {
        &self.sentences
    }

    /// The original text of one token.
    pub fn token_text(&self, i: usize) -> &'a str {
        let t = &self.tokens[i];
        &self.text[t.byte_start..t.byte_end]
    }

    /// The original text from the start of the first token to the end of the last one of `range`.
    pub fn span_text(&self, range: Range<usize>) -> &'a str {
        if range.is_empty() {
            return "";
        }
        &self.text[self.tokens[range.start].byte_start..self.tokens[range.end - 1].byte_end]
    }

    /// Code-point offsets of a non-empty token range.
    pub fn span_chars(&self, range: Range<usize>) -> (usize, usize) {
        (
            self.tokens[range.start].start,
            self.tokens[range.end - 1].end,
        )
    }

    pub fn sentence_text(&self, s: usize) -> &'a str {
        let s = &self.sentences[s];
        &self.text[s.byte_start..s.byte_end]
    }

    /// The token is the first word of its sentence, or follows only opening punctuation there, or a colon:
    /// the places where English capitalises any word, so capitals say nothing about names.
    pub fn is_sentence_initial(&self, i: usize) -> bool {
        self.tokens[i].sentence_initial
    }

    fn split_sentences(&mut self) {
        let n = self.tokens.len();
        let mut start = 0;
        let mut i = 0;
        while i < n {
            if i > start && (self.tokens[i].newline_before || i - start >= MAX_SENTENCE_TOKENS) {
                self.push_sentence(start..i);
                start = i;
            }
            if !is_terminator(&self.tokens[i].norm) {
                i += 1;
                continue;
            }
            // Swallow the rest of a "?!" or "..." run and closing quotes or brackets glued to it.
            let mut j = i + 1;
            while j < n
                && !self.tokens[j].space_before
                && (is_terminator(&self.tokens[j].norm) || is_closer(&self.tokens[j].norm))
            {
                j += 1;
            }
            let ideographic = self.tokens[i].norm == "\u{3002}";
            let breaks = j == n
                || ideographic
                || (self.tokens[j].space_before
                    && starts_sentence(&self.tokens[j].norm)
                    && !self.abbreviation_before(i));
            if breaks && j < n {
                self.push_sentence(start..j);
                start = j;
            }
            i = j;
        }
        if start < n {
            self.push_sentence(start..n);
        }
    }

    /// The full stop at `i` closes an abbreviation ("Mr.", "J.") or is part of one ("U.S."), not a sentence.
    fn abbreviation_before(&self, i: usize) -> bool {
        let t = &self.tokens[i];
        if t.norm != "." {
            // A merged dotted abbreviation such as "U.S." or "e.g." is itself the terminator.
            return t.norm.len() > 1
                && t.norm.ends_with('.')
                && t.norm.chars().any(char::is_alphabetic);
        }
        if i == 0 || t.space_before {
            return false;
        }
        let prev = &self.tokens[i - 1].norm;
        let mut chars = prev.chars();
        let single_initial =
            matches!((chars.next(), chars.next()), (Some(c), None) if c.is_uppercase());
        single_initial || ABBREVIATIONS.contains(&prev.as_str())
    }

    fn push_sentence(&mut self, range: Range<usize>) {
        let idx = self.sentences.len();
        let mut initial = true;
        for t in &mut self.tokens[range.clone()] {
            t.sentence = idx;
            t.sentence_initial = initial && t.is_word();
            let opening = t
                .norm
                .chars()
                .all(|c| matches!(c, '"' | '\'' | '(' | '[' | '-' | '*' | '#' | '•'));
            initial = t.norm == ":" || (initial && !t.is_word() && opening);
        }
        let (first, last) = (&self.tokens[range.start], &self.tokens[range.end - 1]);
        self.sentences.push(Sentence {
            byte_start: first.byte_start,
            byte_end: last.byte_end,
            start: first.start,
            end: last.end,
            tokens: range,
        });
    }
}

/// A run of text this long without a sentence break is cut here anyway. Real sentences are far shorter (news
/// rarely passes 80 tokens); without punctuation a body would be one "sentence", read as a whole for every
/// entity in it and quoted whole as evidence.
pub const MAX_SENTENCE_TOKENS: usize = 200;

/// Words after which a full stop does not end the sentence. Compared case-sensitively with the token before the
/// dot, so "No." (number) is kept but "no." at the end of a sentence still splits.
const ABBREVIATIONS: &[&str] = &[
    "Mr", "Mrs", "Ms", "Dr", "St", "Jr", "Sr", "Prof", "Rev", "Hon", "Gen", "Sen", "Gov", "Rep",
    "Lt", "Col", "Capt", "Sgt", "Maj", "Adm", "Brig", "Cpl", "Pres", "Inc", "Corp", "Ltd", "Co",
    "Bros", "Dept", "Univ", "Ave", "Blvd", "Mt", "Ft", "No", "Nos", "Art", "Fig", "vs", "v",
    "approx", "Jan", "Feb", "Mar", "Apr", "Jun", "Jul", "Aug", "Sep", "Sept", "Oct", "Nov", "Dec",
];

fn is_terminator(norm: &str) -> bool {
    norm == "\u{3002}" || (!norm.is_empty() && norm.chars().all(|c| matches!(c, '.' | '!' | '?')))
}

fn is_closer(norm: &str) -> bool {
    !norm.is_empty()
        && norm
            .chars()
            .all(|c| matches!(c, '"' | '\'' | ')' | ']' | '}'))
}

fn starts_sentence(norm: &str) -> bool {
    norm.chars()
        .next()
        .is_some_and(|c| c.is_uppercase() || c.is_numeric() || matches!(c, '"' | '\'' | '(' | '['))
}

/// Segments that only separate tokens: whitespace and invisible format characters.
fn is_gap(seg: &str) -> bool {
    seg.chars().all(|c| c.is_whitespace() || is_invisible(c))
}

/// Invisible characters that shape how text is displayed but are not part of any word: zero-width spaces and
/// joiners, directional marks and embeddings, the soft hyphen, the byte-order mark, tag characters (Unicode's
/// format class, Cf, as it occurs in text pasted from web pages and word processors). UAX #29 glues most of
/// them to the word before ("Macron" + U+202C), so tokens are trimmed of them and their forms drop them:
/// they never reach a name or a lookup key.
pub fn is_invisible(c: char) -> bool {
    matches!(
        c,
        '\u{ad}'
            | '\u{600}'..='\u{605}'
            | '\u{61c}'
            | '\u{6dd}'
            | '\u{70f}'
            | '\u{180e}'
            | '\u{200b}'..='\u{200f}'
            | '\u{202a}'..='\u{202e}'
            | '\u{2060}'..='\u{2064}'
            | '\u{2066}'..='\u{206f}'
            | '\u{feff}'
            | '\u{fff9}'..='\u{fffb}'
            | '\u{e0001}'
            | '\u{e0020}'..='\u{e007f}'
    )
}

/// The bracket tokens of Penn Treebank-style text (`-LRB-` for "(" and so on), which some feeds pass on
/// verbatim; read as the bracket they stand for, never as a name.
pub fn treebank_bracket(word: &str) -> Option<&'static str> {
    Some(match word {
        "LRB" => "(",
        "RRB" => ")",
        "LSB" => "[",
        "RSB" => "]",
        "LCB" => "{",
        "RCB" => "}",
        _ => return None,
    })
}

fn has_line_break(seg: &str) -> bool {
    seg.chars().any(|c| {
        matches!(
            c,
            '\n' | '\r' | '\u{b}' | '\u{c}' | '\u{85}' | '\u{2028}' | '\u{2029}'
        )
    })
}

/// "U.S", "e.g", "a.m": short letter groups joined by dots, which UAX #29 keeps together minus the final dot.
fn is_dotted_abbreviation(seg: &str) -> bool {
    seg.contains('.')
        && seg.split('.').all(|part| {
            let n = part.chars().count();
            (1..=3).contains(&n) && part.chars().all(char::is_alphabetic)
        })
}

/// Byte length of a trailing possessive "'s" / "’s" worth splitting off, if any.
fn possessive_suffix(seg: &str) -> Option<usize> {
    let mut rev = seg.chars().rev();
    let s = rev.next()?;
    let apostrophe = rev.next()?;
    let before = rev.next()?;
    let is_possessive = matches!(s, 's' | 'S')
        && matches!(apostrophe, '\'' | '\u{2019}' | '\u{2bc}')
        && before.is_alphanumeric();
    is_possessive.then(|| s.len_utf8() + apostrophe.len_utf8())
}

fn tokenize(text: &str) -> Vec<Token> {
    let mut tokens = Vec::new();
    let mut chars_before = 0; // code points before the current segment
    let mut space_before = false;
    let mut newline_before = false;
    let mut segments = text.split_word_bound_indices().peekable();
    while let Some((byte_start, seg)) = segments.next() {
        let seg_chars = seg.chars().count();
        if is_gap(seg) {
            chars_before += seg_chars;
            space_before = true;
            newline_before |= has_line_break(seg);
            continue;
        }
        let mut byte_end = byte_start + seg.len();
        let mut end = chars_before + seg_chars;
        if is_dotted_abbreviation(seg) {
            if let Some((_, ".")) = segments.peek() {
                segments.next();
                byte_end += 1;
                end += 1;
            }
        }
        let mut pieces = [(byte_start, byte_end, chars_before, end), (0, 0, 0, 0)];
        let mut count = 1;
        if let Some(suffix) = possessive_suffix(seg) {
            let split = byte_start + seg.len() - suffix;
            pieces[0] = (byte_start, split, chars_before, end - 2);
            pieces[1] = (split, byte_end, end - 2, end);
            count = 2;
        }
        for &(bs, be, s, e) in &pieces[..count] {
            let Some((bs, be, s, e)) = trim_invisible(text, bs, be, s, e) else {
                continue;
            };
            tokens.push(make_token(
                &text[bs..be],
                bs,
                be,
                s,
                e,
                space_before,
                newline_before,
            ));
            space_before = false;
            newline_before = false;
        }
        chars_before = end;
    }
    merge_treebank_brackets(tokens)
}

/// "-LRB-" is three tokens to the segmenter ("-", "LRB", "-"); as one token it reads as the bracket it
/// stands for. Compared on the normalised forms, so the bracket is found whatever styling or invisible
/// characters a feed added.
fn merge_treebank_brackets(tokens: Vec<Token>) -> Vec<Token> {
    if !tokens.iter().any(|t| treebank_bracket(&t.key).is_some()) {
        return tokens;
    }
    let mut out: Vec<Token> = Vec::with_capacity(tokens.len());
    for t in tokens {
        let n = out.len();
        let is_close = t.norm == "-" && !t.space_before;
        if is_close && n >= 2 && out[n - 2].norm == "-" && !out[n - 1].space_before {
            if let Some(b) = treebank_bracket(&out[n - 1].key) {
                let open = out.swap_remove(n - 2);
                out.truncate(n - 2);
                out.push(Token {
                    byte_end: t.byte_end,
                    end: t.end,
                    norm: b.to_string(),
                    lower: b.to_string(),
                    key: b.to_string(),
                    ..open
                });
                continue;
            }
        }
        out.push(t);
    }
    out
}

/// The piece `text[bs..be]` (code points `s..e`) without the invisible characters at either end; None when
/// nothing else is left.
fn trim_invisible(
    text: &str,
    mut bs: usize,
    mut be: usize,
    mut s: usize,
    mut e: usize,
) -> Option<(usize, usize, usize, usize)> {
    let piece = &text[bs..be];
    for c in piece.chars().take_while(|&c| is_invisible(c)) {
        bs += c.len_utf8();
        s += 1;
    }
    if bs == be {
        return None;
    }
    for c in text[bs..be].chars().rev().take_while(|&c| is_invisible(c)) {
        be -= c.len_utf8();
        e -= 1;
    }
    Some((bs, be, s, e))
}

fn make_token(
    raw: &str,
    byte_start: usize,
    byte_end: usize,
    start: usize,
    end: usize,
    space_before: bool,
    newline_before: bool,
) -> Token {
    let norm = normalize(raw);
    let lower = norm.to_lowercase();
    let key = strip_diacritics(&norm);
    Token {
        byte_start,
        byte_end,
        start,
        end,
        norm,
        lower,
        key,
        sentence: 0,
        space_before,
        newline_before,
        sentence_initial: false,
    }
}

/// NFKC, then the typographic variants news text is full of folded to their ASCII forms, so that lexicon and
/// knowledge-base entries written with straight quotes match curly ones.
pub fn normalize(s: &str) -> String {
    if s.is_ascii() {
        return s.to_string();
    }
    s.nfkc()
        .filter(|&c| !is_invisible(c))
        .map(|c| match c {
            '\u{2018}' | '\u{2019}' | '\u{201a}' | '\u{201b}' | '\u{2032}' | '\u{2bc}'
            | '\u{b4}' | '`' => '\'',
            '\u{201c}' | '\u{201d}' | '\u{201e}' | '\u{201f}' | '\u{2033}' | '\u{ab}'
            | '\u{bb}' => '"',
            '\u{2010}' | '\u{2011}' | '\u{2012}' | '\u{2013}' | '\u{2014}' | '\u{2015}'
            | '\u{2212}' => '-',
            c => c,
        })
        .collect()
}

/// Decomposes and drops combining marks, plus the few Latin letters whose base letter is not a decomposition
/// ("ı", "ł", "ø", "ß"). Case is kept: matching stays case-sensitive.
pub fn strip_diacritics(s: &str) -> String {
    if s.is_ascii() {
        return s.to_string();
    }
    let mut out = String::with_capacity(s.len());
    for c in s.nfd().filter(|c| !is_combining_mark(*c)) {
        match c {
            'ı' => out.push('i'),
            'ł' => out.push('l'),
            'Ł' => out.push('L'),
            'ø' => out.push('o'),
            'Ø' => out.push('O'),
            'đ' => out.push('d'),
            'Đ' => out.push('D'),
            'ħ' => out.push('h'),
            'ß' => out.push_str("ss"),
            'æ' => out.push_str("ae"),
            'Æ' => out.push_str("AE"),
            'œ' => out.push_str("oe"),
            'Œ' => out.push_str("OE"),
            c => out.push(c),
        }
    }
    out.nfc().collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    fn sentences(text: &str) -> Vec<&str> {
        let v = TextView::new(text);
        (0..v.sentences().len())
            .map(|i| v.sentence_text(i))
            .collect()
    }

    fn token_texts<'a>(v: &TextView<'a>) -> Vec<&'a str> {
        (0..v.tokens().len()).map(|i| v.token_text(i)).collect()
    }

    #[test]
    fn splits_sentences_but_not_after_abbreviations() {
        let text = "Mr. Smith met Dr. J. Doe at St. Mary's in the U.S. on Jan. 5. They talked, e.g. about \
                    trade. Was it useful? \"Yes!\" he said. Sen. Brown of Acme Inc. agreed… Then 3 more came.";
        assert_eq!(
            sentences(text),
            vec![
                "Mr. Smith met Dr. J. Doe at St. Mary's in the U.S. on Jan. 5.",
                "They talked, e.g. about trade.",
                "Was it useful?",
                "\"Yes!\" he said.",
                "Sen. Brown of Acme Inc. agreed…",
                "Then 3 more came.",
            ]
        );
    }

    #[test]
    fn line_breaks_always_split() {
        assert_eq!(
            sentences(
                "A heading without a stop\n\nfirst line\nsecond line. and lowercase after a stop"
            ),
            vec![
                "A heading without a stop",
                "first line",
                "second line. and lowercase after a stop"
            ]
        );
        assert_eq!(
            sentences("No split.before letters. \"Quoted\" next."),
            vec!["No split.before letters.", "\"Quoted\" next."]
        );
        assert!(sentences("").is_empty());
        assert!(sentences(" \n\n ").is_empty());
    }

    #[test]
    fn token_offsets_with_multibyte_text() {
        let text = "Erdoğan’s “plan” 👍🏽 東京 café—naïve";
        let v = TextView::new(text);
        assert_eq!(
            token_texts(&v),
            vec![
                "Erdoğan", "’s", "“", "plan", "”", "👍🏽", "東", "京", "café", "—", "naïve"
            ]
        );
        for (i, t) in v.tokens().iter().enumerate() {
            let by_chars: String = text.chars().skip(t.start).take(t.end - t.start).collect();
            assert_eq!(by_chars, v.token_text(i));
            assert_eq!(&text[t.byte_start..t.byte_end], v.token_text(i));
        }
        let t = &v.tokens();
        assert_eq!((t[0].start, t[0].end, t[1].start, t[1].end), (0, 7, 7, 9));
        assert_eq!(t[1].norm, "'s");
        assert_eq!(t[2].norm, "\"");
        assert_eq!(t[0].key, "Erdogan");
        assert_eq!(t[9].norm, "-");
        assert_eq!(t[10].key, "naive");
        assert_eq!(t[0].lower, "erdoğan");
    }

    #[test]
    fn combining_accents_and_nfkc() {
        // "e" + U+0301 is two code points but one visible letter: offsets count code points.
        let text = "Cafe\u{301} ﬁnal Ｔｏｋｙｏ";
        let v = TextView::new(text);
        assert_eq!(token_texts(&v), vec!["Cafe\u{301}", "ﬁnal", "Ｔｏｋｙｏ"]);
        assert_eq!((v.tokens()[0].start, v.tokens()[0].end), (0, 5));
        assert_eq!(v.tokens()[0].key, "Cafe");
        assert_eq!(v.tokens()[1].norm, "final");
        assert_eq!(v.tokens()[2].norm, "Tokyo");
        assert_eq!(v.tokens()[1].start, 6);
    }

    #[test]
    fn dotted_abbreviations_and_possessives() {
        let v = TextView::new("The U.S. and Workers' Party. Putin's aide didn't go.");
        assert_eq!(
            token_texts(&v),
            vec![
                "The", "U.S.", "and", "Workers", "'", "Party", ".", "Putin", "'s", "aide",
                "didn't", "go", "."
            ]
        );
        assert_eq!(v.sentences().len(), 2);
    }

    #[test]
    fn megabyte_without_punctuation_is_fast() {
        let body = "word ".repeat(1 << 18); // 1 MiB
        let t = Instant::now();
        let v = TextView::new(&body);
        assert_eq!(v.tokens().len(), 1 << 18);
        assert_eq!(v.sentences().len(), (1 << 18) / MAX_SENTENCE_TOKENS + 1);
        if !cfg!(debug_assertions) {
            assert!(t.elapsed().as_secs_f64() < 1.0, "{:?}", t.elapsed());
        }
    }

    #[test]
    fn many_capitalised_tokens_are_fast() {
        let body = "Abbey Road ".repeat(50_000);
        let t = Instant::now();
        let v = TextView::new(&body);
        assert_eq!(v.tokens().len(), 100_000);
        assert_eq!(v.sentences().len(), 100_000 / MAX_SENTENCE_TOKENS);
        if !cfg!(debug_assertions) {
            assert!(t.elapsed().as_secs_f64() < 1.0, "{:?}", t.elapsed());
        }
    }

    #[test]
    fn invisible_characters_are_neither_tokens_nor_part_of_them() {
        let text =
            "Emmanuel Macron\u{202c} met \u{200b}Angela\u{200b} Merkel\u{feff}. Sch\u{ad}olz";
        let v = TextView::new(text);
        assert_eq!(
            token_texts(&v),
            vec![
                "Emmanuel",
                "Macron",
                "met",
                "Angela",
                "Merkel",
                ".",
                "Sch\u{ad}olz"
            ]
        );
        assert_eq!(v.tokens()[6].norm, "Scholz");
        for (i, t) in v.tokens().iter().enumerate() {
            let by_chars: String = text.chars().skip(t.start).take(t.end - t.start).collect();
            assert_eq!(by_chars, v.token_text(i));
        }
    }

    #[test]
    fn treebank_brackets_are_brackets() {
        let v = TextView::new("Talks -LRB- in Paris -RRB- ended -LSB-sic-RSB- .");
        assert_eq!(
            token_texts(&v),
            vec!["Talks", "-LRB-", "in", "Paris", "-RRB-", "ended", "-LSB-", "sic", "-RSB-", "."]
        );
        let norms: Vec<&str> = v.tokens().iter().map(|t| t.norm.as_str()).collect();
        assert_eq!(norms[1], "(");
        assert_eq!(norms[4], ")");
        assert_eq!(norms[6], "[");
        assert_eq!(norms[8], "]");
        // Not a bracket: other words between dashes stay as they are.
        let v = TextView::new("a -LOL- b");
        assert!(v.tokens().iter().all(|t| t.norm != "("));
    }

    #[test]
    fn mathematical_alphanumerics_fold_for_matching() {
        let v = TextView::new(
            "\u{1d400}\u{1d401} \u{1d40c}\u{1d41e}\u{1d42b}\u{1d424}\u{1d41e}\u{1d425}",
        );
        let norms: Vec<&str> = v.tokens().iter().map(|t| t.norm.as_str()).collect();
        assert_eq!(norms, vec!["AB", "Merkel"]);
    }
}
