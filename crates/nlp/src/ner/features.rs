//! Feature extraction for the tagger: every feature is a 64-bit hash of a template id and the values it looks
//! at, folded to a row of the weight table.
//!
//! Strings are hashed once per token (word, lowercase, shapes, affixes); templates that combine neighbours
//! only mix those integers, which is what keeps extraction at a few hundred nanoseconds per token. The
//! document-level facts (is this word capitalised mid-sentence elsewhere, written lowercase elsewhere, how did
//! pass one type its other occurrences) are computed once per document here too.

use std::borrow::Cow;
use std::collections::HashMap;
use std::ops::Range;

use super::gazetteer::Gazetteer;
use super::input::{mix, str_hash, IdMap, TaggerInput};
use super::labels::label_type;

#[inline]
fn fh(template: u64, v: u64) -> u64 {
    mix(template.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ v)
}

#[inline]
fn fh2(template: u64, a: u64, b: u64) -> u64 {
    fh(template, a ^ mix(b ^ 0x5851_f42d_4c95_7f2d))
}

#[inline]
fn fh3(template: u64, a: u64, b: u64, c: u64) -> u64 {
    fh2(
        template,
        a,
        mix(b ^ 0x1405_7b7e_f767_814f) ^ c.rotate_left(23),
    )
}

const BOS: u64 = 0x0b05_0b05;
const EOS: u64 = 0x0e05_0e05;

/// Token facts that do not depend on the pass.
#[derive(Debug, Clone, Copy, Default)]
struct Tok {
    w: u64,
    l: u64,
    shape: u64,
    sshape: u64,
    pre: [u64; 4],
    suf: [u64; 4],
    /// Hashes of the first and last parts of a hyphenated word ("pro", "russian").
    hyphen: [u64; 2],
    capitalised: bool,
    initial: bool,
    headline: bool,
    first_sentence: bool,
    sent_len: u8,
    prior: u8,
    /// Bit 0: capitalised mid-sentence elsewhere in the document; bit 1: lowercase elsewhere.
    doc: u8,
}

/// Per-document facts for every token, plus the gazetteer hits, shared by both passes.
pub struct BaseFeatures {
    toks: Vec<Tok>,
    gaz: Vec<u64>,
    gaz_off: Vec<u32>,
}

/// Capitalisation prior of a lowercase word in the training corpus, away from sentence starts and headlines:
/// 0 unseen or rare, 1 almost always lowercase ... 4 almost always capitalised.
pub fn prior_bucket(capitalised: u32, lower: u32) -> u8 {
    let n = capitalised + lower;
    if n < 2 {
        return 0;
    }
    let r = f64::from(capitalised) / f64::from(n);
    match r {
        r if r < 0.1 => 1,
        r if r < 0.5 => 2,
        r if r < 0.9 => 3,
        _ => 4,
    }
}

pub fn lowercase(s: &str) -> Cow<'_, str> {
    if s.bytes().any(|b| b.is_ascii_uppercase()) || !s.is_ascii() {
        Cow::Owned(s.to_lowercase())
    } else {
        Cow::Borrowed(s)
    }
}

fn is_capitalised(s: &str) -> bool {
    s.chars().next().is_some_and(char::is_uppercase)
}

fn shapes(s: &str) -> (u64, u64) {
    let (mut long, mut short) = (0xcbf2_9ce4_8422_2325u64, 0xcbf2_9ce4_8422_2325u64);
    let mut prev = '\0';
    let mut run = 0;
    for c in s.chars() {
        let m = if c.is_uppercase() {
            'X'
        } else if c.is_lowercase() {
            'x'
        } else if c.is_numeric() {
            'd'
        } else if c.is_alphabetic() {
            'a'
        } else {
            c
        };
        if m == prev {
            run += 1;
        } else {
            run = 1;
            short = (short ^ m as u64).wrapping_mul(0x0000_0100_0000_01b3);
        }
        if run <= 4 {
            long = (long ^ m as u64).wrapping_mul(0x0000_0100_0000_01b3);
        }
        prev = m;
    }
    (mix(long), mix(short))
}

impl BaseFeatures {
    pub fn new(input: &TaggerInput<'_>, gaz: &Gazetteer, prior: &HashMap<u64, u8>) -> Self {
        let n = input.len();
        let mut toks = vec![Tok::default(); n];
        let mut lowers: Vec<Cow<'_, str>> = Vec::with_capacity(n);
        // Per lowercase word: occurrences capitalised mid-sentence, and lowercase.
        let mut doc: IdMap<(u32, u32)> = IdMap::default();
        for (si, sent) in input.sentences().iter().enumerate() {
            let words = &input.tokens()[sent.clone()];
            let has_lower = words.iter().any(|w| w.chars().any(char::is_lowercase));
            let has_letter = words.iter().any(|w| w.chars().any(char::is_alphabetic));
            let headline = has_letter && !has_lower;
            let mut initial = true;
            for i in sent.clone() {
                let w = input.tokens()[i].as_ref();
                let lower = lowercase(w);
                let t = &mut toks[i];
                t.w = str_hash(w);
                t.l = str_hash(&lower);
                (t.shape, t.sshape) = shapes(w);
                for (k, (end, _)) in lower.char_indices().skip(1).take(3).enumerate() {
                    t.pre[k] = str_hash(&lower[..end]);
                }
                for (k, (start, _)) in lower.char_indices().rev().take(4).enumerate() {
                    t.suf[k] = str_hash(&lower[start..]);
                }
                let n_chars = lower.chars().count();
                if n_chars <= 3 && n_chars > 0 {
                    t.pre[n_chars - 1] = str_hash(&lower);
                } else if n_chars > 3 {
                    let end = lower.char_indices().nth(4).map_or(lower.len(), |c| c.0);
                    t.pre[3] = str_hash(&lower[..end]);
                }
                if let Some((a, b)) = lower.split_once('-') {
                    if !a.is_empty() && !b.is_empty() {
                        t.hyphen = [str_hash(a), str_hash(b.rsplit('-').next().unwrap_or(b))];
                    }
                }
                t.capitalised = is_capitalised(w);
                let is_word = w.chars().any(char::is_alphanumeric);
                t.initial = initial && is_word;
                if is_word {
                    initial = false;
                }
                t.headline = headline;
                t.first_sentence = si == 0;
                t.sent_len = sent.len().min(8) as u8;
                t.prior = prior.get(&t.l).copied().unwrap_or(0);
                if !t.initial && !headline {
                    let e = doc.entry(t.l).or_default();
                    if t.capitalised {
                        e.0 += 1;
                    } else if w.chars().any(char::is_lowercase) {
                        e.1 += 1;
                    }
                }
                lowers.push(lower);
            }
        }
        for t in &mut toks {
            if let Some(&(cap, low)) = doc.get(&t.l) {
                let own_mid = !t.initial && !t.headline;
                let cap_else = cap > u32::from(own_mid && t.capitalised);
                let low_else = low > u32::from(own_mid && !t.capitalised);
                t.doc = u8::from(cap_else) | (u8::from(low_else) << 1);
            }
        }
        let (gaz_hits, gaz_off) = gaz.hits(input, &lowers);
        BaseFeatures {
            toks,
            gaz: gaz_hits,
            gaz_off,
        }
    }

    fn gaz_of(&self, i: usize) -> &[u64] {
        &self.gaz[self.gaz_off[i] as usize..self.gaz_off[i + 1] as usize]
    }
}

/// What pass one said about each token and about the other occurrences of its word in the document.
pub struct Stacked {
    labels: Vec<u8>,
    /// Per token: how often pass one typed the same capitalised word elsewhere as O, PER, ORG, LOC, MISC.
    agg: Vec<[u32; 5]>,
}

fn class(l: u8) -> usize {
    label_type(l).map_or(0, |t| 1 + t as usize)
}

impl Stacked {
    pub fn new(base: &BaseFeatures, first: &[u8]) -> Self {
        let mut counts: IdMap<[u32; 5]> = IdMap::default();
        for (t, &l) in base.toks.iter().zip(first) {
            if t.capitalised {
                let c = &mut counts.entry(t.l).or_default()[class(l)];
                *c = c.saturating_add(1);
            }
        }
        let agg = base
            .toks
            .iter()
            .zip(first)
            .map(|(t, &l)| {
                if !t.capitalised {
                    return [0; 5];
                }
                let mut c = counts.get(&t.l).copied().unwrap_or_default();
                c[class(l)] = c[class(l)].saturating_sub(1);
                c
            })
            .collect();
        Stacked {
            labels: first.to_vec(),
            agg,
        }
    }
}

/// Appends the feature rows of every token of `sent` to `feats`, with `offsets` delimiting tokens
/// (`offsets.len() == sent.len() + 1`).
pub fn extract(
    base: &BaseFeatures,
    sent: Range<usize>,
    stacked: Option<&Stacked>,
    bits: u8,
    feats: &mut Vec<u32>,
    offsets: &mut Vec<u32>,
) {
    feats.clear();
    offsets.clear();
    offsets.push(0);
    let shift = 64 - u32::from(bits);
    let toks = &base.toks;
    let at = |j: isize| -> Option<&Tok> {
        (j >= sent.start as isize && j < sent.end as isize).then(|| &toks[j as usize])
    };
    for i in sent.clone() {
        let mut push = |h: u64| feats.push((h >> shift) as u32);
        let t = &toks[i];
        let ii = i as isize;
        let (p1, n1, p2, n2) = (at(ii - 1), at(ii + 1), at(ii - 2), at(ii + 2));
        let l_of = |o: Option<&Tok>, pad: u64| o.map_or(pad, |t| t.l);
        let w_of = |o: Option<&Tok>, pad: u64| o.map_or(pad, |t| t.w);
        let s_of = |o: Option<&Tok>, pad: u64| o.map_or(pad, |t| t.shape);
        let ss_of = |o: Option<&Tok>, pad: u64| o.map_or(pad, |t| t.sshape);
        let (lm1, lp1, lm2, lp2) = (l_of(p1, BOS), l_of(n1, EOS), l_of(p2, BOS), l_of(n2, EOS));
        let (ssm1, ssp1) = (ss_of(p1, BOS), ss_of(n1, EOS));
        push(fh(1, 0));
        push(fh(2, t.w));
        push(fh(3, t.l));
        push(fh(4, t.shape));
        push(fh(5, t.sshape));
        for k in 0..4 {
            if t.pre[k] != 0 {
                push(fh(6 + k as u64, t.pre[k]));
                push(fh(10 + k as u64, t.suf[k]));
            }
        }
        push(fh(14, lm1));
        push(fh(15, lp1));
        push(fh(16, lm2));
        push(fh(17, lp2));
        push(fh(18, w_of(p1, BOS)));
        push(fh(19, w_of(n1, EOS)));
        push(fh(20, s_of(p1, BOS)));
        push(fh(21, s_of(n1, EOS)));
        push(fh2(22, ssm1, t.sshape));
        push(fh2(23, t.sshape, ssp1));
        push(fh3(24, ssm1, t.sshape, ssp1));
        push(fh2(25, lm1, t.l));
        push(fh2(26, t.l, lp1));
        push(fh2(27, lm1, t.sshape));
        push(fh2(28, t.sshape, lp1));
        let pos = u64::from(t.initial) | (u64::from(t.headline) << 1);
        push(fh2(29, pos, t.sshape));
        if t.headline {
            push(fh(31, t.l));
        }
        push(fh(32, u64::from(t.prior) * 4 + pos));
        push(fh3(33, u64::from(t.doc), pos, t.sshape));
        for &g in base.gaz_of(i) {
            push(fh(34, g));
        }
        if i > sent.start {
            for &g in base.gaz_of(i - 1) {
                push(fh(35, g));
            }
        }
        if i + 1 < sent.end {
            for &g in base.gaz_of(i + 1) {
                push(fh(36, g));
            }
        }
        push(fh2(37, u64::from(t.first_sentence), t.sshape));
        push(fh2(38, u64::from(t.sent_len), t.sshape));
        if t.hyphen[0] != 0 {
            push(fh(40, t.hyphen[0]));
            push(fh(41, t.hyphen[1]));
        }
        if let Some(st) = stacked {
            let lab = |j: isize| -> u64 {
                if j >= sent.start as isize && j < sent.end as isize {
                    u64::from(st.labels[j as usize])
                } else {
                    99
                }
            };
            let own = lab(ii);
            push(fh(50, own));
            push(fh2(51, lab(ii - 1), own));
            push(fh2(52, own, lab(ii + 1)));
            let agg = &st.agg[i];
            let ents: u32 = agg[1..].iter().fold(0u32, |a, &b| a.saturating_add(b));
            if ents.saturating_add(agg[0]) > 0 {
                for (c, &n) in agg.iter().enumerate().skip(1) {
                    if n > 0 {
                        push(fh(54, c as u64));
                    }
                }
                let maj = (0..5).max_by_key(|&c| (agg[c], 5 - c)).unwrap_or(0) as u64;
                let ent_maj = (1..5).max_by_key(|&c| (agg[c], 5 - c)).unwrap_or(0) as u64;
                push(fh2(55, maj, t.sshape));
                push(fh2(56, u64::from(agg[0] > 0), u64::from(ents > 0)));
                push(fh2(57, if ents > 0 { ent_maj } else { 0 }, own));
            }
        }
        offsets.push(feats.len() as u32);
    }
}

/// Training-corpus prior counts: for each lowercase word, (capitalised, lowercase) occurrences away from
/// sentence starts and headlines.
pub fn count_prior(docs: &[TaggerInput<'_>]) -> HashMap<u64, u8> {
    let mut counts: HashMap<u64, (u32, u32)> = HashMap::new();
    for doc in docs {
        for sent in doc.sentences() {
            let words = &doc.tokens()[sent.clone()];
            if !words.iter().any(|w| w.chars().any(char::is_lowercase)) {
                continue;
            }
            let mut initial = true;
            for w in words {
                let is_word = w.chars().any(char::is_alphanumeric);
                if !is_word {
                    continue;
                }
                if !initial {
                    let e = counts.entry(str_hash(&lowercase(w))).or_default();
                    if is_capitalised(w) {
                        e.0 += 1;
                    } else if w.chars().any(char::is_lowercase) {
                        e.1 += 1;
                    }
                }
                initial = false;
            }
        }
    }
    counts
        .into_iter()
        .filter_map(|(k, (c, l))| {
            let b = prior_bucket(c, l);
            (b > 0).then_some((k, b))
        })
        .collect()
}
