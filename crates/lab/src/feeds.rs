//! News text in the shapes real feeds deliver it, and the promises the NLP keeps whatever the shape.
//!
//! [`perturb`] mangles a text the way feeds do (commas stripped to double spaces, possessive `'s` split off,
//! brackets as Penn Treebank tokens, stray quotes, no-break spaces, zero-width and directional marks, words in
//! mathematical bold, odd line breaks, shouting and stutter), driven by a seed so that a failure names what
//! reproduces it. [`check_analysis`] states what an analysis of any text must hold: spans quote the text,
//! names and ids are bounded and clean, scores are probabilities. The property tests over real articles and
//! the fuzz target use both.

use nlp::entities::{MAX_NAME_CHARS, MAX_NAME_TOKENS};
use nlp::kb::MAX_ID_BYTES;
use nlp::text::is_invisible;
use nlp::{Analysis, Field};

/// A named way of mangling text.
pub type Perturbation = (&'static str, fn(&str, &mut Rng) -> String);

/// The ways feeds mangle text, one bit each of a perturbation mask.
pub const PERTURBATIONS: [Perturbation; 9] = [
    ("commas stripped", |t, _| {
        t.replace(", ", "  ").replace(',', " ")
    }),
    ("'s split off", |t, _| {
        t.replace("'s ", " 's ").replace("’s ", " ’s ")
    }),
    ("bracket tokens", |t, _| {
        t.replace('(', "-LRB- ")
            .replace(')', " -RRB-")
            .replace('[', "-LSB-")
            .replace(']', "-RSB-")
    }),
    ("stray quotes", |t, r| {
        sprinkle(t, r, &["\"", "''", "``", "'", "“", "”"], 0.03)
    }),
    ("no-break spaces", |t, r| {
        t.chars()
            .map(|c| {
                if c == ' ' && r.chance(0.2) {
                    '\u{a0}'
                } else {
                    c
                }
            })
            .collect()
    }),
    ("zero-width and directional marks", |t, r| {
        let marks = [
            "\u{200b}", "\u{200c}", "\u{200d}", "\u{200e}", "\u{202a}", "\u{202c}", "\u{2066}",
            "\u{feff}", "\u{ad}",
        ];
        // Anywhere, inside words too.
        let mut out = String::new();
        for c in t.chars() {
            out.push(c);
            if r.chance(0.02) {
                out.push_str(marks[r.below(marks.len())]);
            }
        }
        out
    }),
    ("mathematical bold words", |t, r| {
        t.split(' ')
            .map(|w| {
                if r.chance(0.05) {
                    math_bold(w)
                } else {
                    w.to_string()
                }
            })
            .collect::<Vec<_>>()
            .join(" ")
    }),
    ("odd whitespace", |t, r| {
        t.chars()
            .map(|c| match c {
                ' ' if r.chance(0.02) => "\r\n".to_string(),
                ' ' if r.chance(0.02) => "\t ".to_string(),
                '.' if r.chance(0.1) => ".\n\n\n".to_string(),
                c => c.to_string(),
            })
            .collect()
    }),
    ("capitals and repeats", |t, r| {
        t.split(' ')
            .map(|w| match r.below(40) {
                0 => w.to_uppercase(),
                1 => format!("{w} {w} {w}"),
                _ => w.to_string(),
            })
            .collect::<Vec<_>>()
            .join(" ")
    }),
];

/// A small deterministic generator, so that a failure names the seed that reproduces it.
pub struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn chance(&mut self, p: f64) -> bool {
        (self.next() % 10_000) as f64 / 10_000.0 < p
    }
}

fn sprinkle(text: &str, r: &mut Rng, what: &[&str], p: f64) -> String {
    text.split(' ')
        .map(|w| {
            if r.chance(p) {
                format!("{}{w}", what[r.below(what.len())])
            } else {
                w.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// Letters and digits in Unicode's mathematical bold (U+1D400...), as social-media text styles them.
fn math_bold(word: &str) -> String {
    word.chars()
        .map(|c| {
            let offset = match c {
                'A'..='Z' => 0x1d400 + (c as u32 - 'A' as u32),
                'a'..='z' => 0x1d41a + (c as u32 - 'a' as u32),
                '0'..='9' => 0x1d7ce + (c as u32 - '0' as u32),
                _ => return c,
            };
            char::from_u32(offset).unwrap_or(c)
        })
        .collect()
}

/// `text` with the perturbations whose bits are set in `mask`, their positions drawn from `seed`.
pub fn perturb(text: &str, mask: u32, seed: u64) -> String {
    let mut rng = Rng(seed | 1);
    let mut out = text.to_string();
    for (i, (_, f)) in PERTURBATIONS.iter().enumerate() {
        if mask & (1 << i) != 0 {
            out = f(&out, &mut rng);
        }
    }
    out
}

/// The names of the perturbations of `mask`, for messages.
pub fn describe(mask: u32) -> String {
    PERTURBATIONS
        .iter()
        .enumerate()
        .filter(|(i, _)| mask & (1 << i) != 0)
        .map(|(_, (name, _))| *name)
        .collect::<Vec<_>>()
        .join(", ")
}

fn slice(text: &str, start: usize, end: usize) -> String {
    text.chars()
        .skip(start)
        .take(end.saturating_sub(start))
        .collect()
}

/// What an analysis of `title` and `body` must hold, or the first thing that does not.
pub fn check_analysis(title: Option<&str>, body: &str, a: &Analysis) -> Result<(), String> {
    for e in &a.entities {
        if e.name.chars().count() > MAX_NAME_CHARS || e.name.split(' ').count() > MAX_NAME_TOKENS {
            return Err(format!("name too long: {:?}", e.name));
        }
        if e.name.chars().any(is_invisible) || e.name.contains(['\n', '\t', '\u{a0}']) {
            return Err(format!("invisible or odd whitespace in name {:?}", e.name));
        }
        let brackets = ["LRB", "RRB", "LSB", "RSB", "LCB", "RCB"];
        if e.name
            .split(|c: char| !c.is_alphanumeric())
            .any(|w| brackets.contains(&w))
        {
            return Err(format!("a bracket token became an entity: {:?}", e.name));
        }
        if e.entity_id.len() > MAX_ID_BYTES || e.entity_id.is_empty() {
            return Err(format!(
                "bad id length {}: {:?}",
                e.entity_id.len(),
                e.entity_id
            ));
        }
        for m in &e.mentions {
            let field = match m.field {
                Field::Title => title.ok_or("a title mention without a title")?,
                Field::Body => body,
            };
            if slice(field, m.start, m.end) != m.text || m.start >= m.end {
                return Err(format!(
                    "mention {}..{} does not quote {:?}",
                    m.start, m.end, m.text
                ));
            }
        }
        for ev in &e.stance.evidence {
            if slice(body, ev.start, ev.end) != ev.text {
                return Err(format!(
                    "evidence {}..{} does not quote its text",
                    ev.start, ev.end
                ));
            }
        }
        if !(0.0..=1.0).contains(&e.stance.score) {
            return Err(format!("score {} out of range", e.stance.score));
        }
    }
    Ok(())
}
