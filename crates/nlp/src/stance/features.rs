//! Target-aware features of one sentence toward one target, hashed into a fixed-size sparse vector.
//!
//! The model has to tell what a sentence says *about the target*, not how positive the sentence is, so most
//! features are anchored at the target's mentions: the words either side of it, with their direction and
//! distance; the words of the clause that holds it (clauses are cut at contrastive conjunctions, so "A is
//! strong, but B is weak" puts A and B in different clauses); lexicon valences summed per side and per clause
//! with negation scope applied; the target's role around stance-bearing verbs ("X accused Y" makes X the agent
//! and Y the patient of an accusation, "Y was praised by X" the reverse); whether the target speaks, is quoted
//! about or sits inside a quotation. Target-masked sentence n-grams carry the general tone of the sentence,
//! which in news usually falls on the target too. Features are strings hashed with FNV-1a, so the model needs
//! no vocabulary and unseen words cost nothing.

// Class-indexed arithmetic over small fixed arrays reads clearer with indices than with zipped iterators.
#![allow(clippy::needless_range_loop)]

use std::cell::{Cell, OnceCell};
use std::ops::Range;

use super::dense::{self, DenseRows, Rows};
use crate::lexicon::Lexicon;
use crate::text::Token;

/// Bumped whenever the features change meaning, so a model trained on other features is refused at load.
pub const FEATURE_VERSION: u32 = 4;

/// Words either side of a mention that get positional features.
const WINDOW: usize = 8;
/// Words either side of a mention whose vectors make the dense left and right blocks.
const DENSE_WINDOW: usize = 6;
/// Words after a negator whose valence it reverses.
const NEGATION_SCOPE: usize = 3;

/// Hashed sparse features, duplicates allowed (their values add up in the dot product).
#[derive(Debug, Default, Clone)]
pub struct Features {
    pub items: Vec<(u32, f32)>,
    /// The dense input of the model's network (empty when the model has none), see [`Context::dense`].
    pub dense: Vec<f32>,
    mask: u32,
}

impl Features {
    pub fn new(bits: u32) -> Self {
        Features {
            items: Vec::with_capacity(256),
            dense: Vec::new(),
            mask: (1u32 << bits) - 1,
        }
    }

    pub fn clear(&mut self) {
        self.items.clear();
        self.dense.clear();
    }

    fn add(&mut self, parts: &[&str], value: f32) {
        self.add_hash(hash(parts), value);
    }

    /// Adds a feature whose [`hash`] is already known (memoised per sentence token, see [`Context`]).
    fn add_hash(&mut self, folded: u32, value: f32) {
        self.items.push((folded & self.mask, value));
    }
}

/// The feature hash before masking to the table size: FNV-1a over the parts with a separator byte, so
/// ("ab", "c") and ("a", "bc") differ, high bits folded in.
fn hash(parts: &[&str]) -> u32 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for p in parts {
        for &b in p.as_bytes() {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
        h ^= 0xff;
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    // Fold the high bits in: FNV's low bits alone mix poorly for short keys.
    (h ^ (h >> 29) ^ (h >> 47)) as u32
}

/// Slots of the per-token memo of target-independent feature hashes: the unigram, negated unigram, clause
/// word and sentence bigram (ending at the token), then the directional word and directional word by
/// distance bucket for each side.
const MEMO_U: usize = 0;
const MEMO_UN: usize = 1;
const MEMO_C: usize = 2;
const MEMO_B: usize = 3;
/// `MEMO_DIR + side` with side 0 left, 1 right.
const MEMO_DIR: usize = 4;
/// `MEMO_DIR_BUCKET + side * 4 + bucket`.
const MEMO_DIR_BUCKET: usize = 6;
const MEMO_SLOTS: usize = 14;
/// Marks a memo slot as filled; the hash sits in the low 32 bits.
const MEMO_SET: u64 = 1 << 32;

/// Words that introduce reported speech; a target right before one is the speaker.
const SPEECH: &[&str] = &[
    "said",
    "says",
    "say",
    "told",
    "tells",
    "added",
    "stated",
    "argued",
    "argues",
    "claimed",
    "claims",
    "wrote",
    "writes",
    "insisted",
    "warned",
    "noted",
    "explained",
    "declared",
    "announced",
    "tweeted",
    "asserted",
    "suggested",
    "acknowledged",
    "admitted",
    "replied",
    "responded",
    "according",
    "believes",
    "thinks",
];

/// Determiners and prepositions skipped when looking for the word that governs the target from before it.
const FUNCTION_BEFORE: &[&str] = &[
    "the", "a", "an", "his", "her", "their", "its", "of", "to", "with", "against", "on", "at",
    "for",
];

/// Function words skipped when looking for the verb that governs the target.
const SKIP: &[&str] = &[
    "has", "have", "had", "was", "were", "is", "are", "be", "been", "being", "will", "would",
    "could", "should", "may", "might", "must", "can", "also", "then", "later", "again", "already",
    "still", "just", "even", "who", "which", "that", "did", "does", "do", "to", "the", "a", "an",
];

const PRONOUNS: &[&str] = &[
    "he", "she", "him", "her", "his", "hers", "they", "them", "their", "it", "its", "i", "we",
    "you",
];

pub fn is_speech_word(lower: &str) -> bool {
    SPEECH.contains(&lower)
}

/// What the lexicon says about each token of a context, computed once and shared by all its targets.
#[derive(Debug, Clone)]
pub struct Context<'t> {
    tokens: &'t [Token],
    /// Word form used in features: lowercased, digits folded.
    forms: Vec<&'t str>,
    /// Valence with degree and negation applied, 0 for non-sentiment words.
    valence: Vec<f32>,
    /// Inside a negator's scope.
    negated: Vec<bool>,
    /// Clause index per token.
    clause: Vec<u16>,
    /// Number of quotation marks before the token.
    quotes_before: Vec<u16>,
    word: Vec<bool>,
    has_speech: bool,
    /// Target-independent feature hashes per token (`MEMO_SLOTS` per token, `MEMO_SET` when filled), filled
    /// as the targets of the sentence first need them: every target of a sentence hashes the same words
    /// outside its own mentions, and hashing was most of the per-target cost. Allocated on the first
    /// [`Context::features`] call, so contexts used only for their lexicon readings (relations) pay nothing.
    memo: OnceCell<Box<[Cell<u64>]>>,
    /// Word-vector rows and sums of the sentence, looked up once per sentence for all its targets.
    dense_memo: OnceCell<DenseMemo>,
}

impl<'t> Context<'t> {
    pub fn new(lexicon: &Lexicon, tokens: &'t [Token]) -> Self {
        let n = tokens.len();
        let mut forms = Vec::with_capacity(n);
        let mut valence = vec![0f32; n];
        let mut negated = vec![false; n];
        let mut clause = Vec::with_capacity(n);
        let mut quotes_before = Vec::with_capacity(n);
        let mut word = Vec::with_capacity(n);
        let mut c = 0u16;
        let mut quotes = 0u16;
        let mut scope = 0usize;
        let mut degree: Option<f64> = None;
        let mut has_speech = false;
        for (i, t) in tokens.iter().enumerate() {
            let lower: &'t str = t.lower.as_str();
            let is_word = t.is_word();
            word.push(is_word);
            forms.push(if lower.bytes().any(|b| b.is_ascii_digit()) {
                "<num>"
            } else {
                t.lower.as_str()
            });
            if i > 0 && (matches!(lower, ";" | ":") || lexicon.is_contrastive(lower)) {
                c = c.saturating_add(1);
            }
            clause.push(c);
            quotes_before.push(quotes);
            if lower == "\"" {
                quotes = quotes.saturating_add(1);
            }
            has_speech |= is_speech_word(lower);
            if !is_word {
                continue;
            }
            if lexicon.is_negator(lower) {
                scope = NEGATION_SCOPE;
                continue;
            }
            if let Some(d) = lexicon.degree(lower) {
                degree = Some(d);
                continue;
            }
            if let Some(v) = lexicon.valence(lower) {
                let mut v = v * degree.unwrap_or(1.0);
                if scope > 0 {
                    v *= lexicon.negation_scalar();
                }
                valence[i] = v as f32;
            }
            negated[i] = scope > 0;
            scope = scope.saturating_sub(1);
            degree = None;
        }
        Context {
            tokens,
            forms,
            valence,
            negated,
            clause,
            quotes_before,
            word,
            has_speech,
            memo: OnceCell::new(),
            dense_memo: OnceCell::new(),
        }
    }

    /// The hash of `parts`, a feature of token `i` that does not depend on the target, memoised in `slot`.
    fn memo(&self, i: usize, slot: usize, parts: &[&str]) -> u32 {
        let memo = self.memo.get_or_init(|| {
            (0..self.tokens.len() * MEMO_SLOTS)
                .map(|_| Cell::new(0))
                .collect()
        });
        let cell = &memo[i * MEMO_SLOTS + slot];
        let v = cell.get();
        if v & MEMO_SET != 0 {
            return v as u32;
        }
        let h = hash(parts);
        cell.set(MEMO_SET | u64::from(h));
        h
    }

    pub fn len(&self) -> usize {
        self.tokens.len()
    }

    pub fn is_empty(&self) -> bool {
        self.tokens.is_empty()
    }

    /// The target is the subject of a speech verb ("X said", "X told", "according to X", "said X").
    pub fn is_speaker(&self, span: &Range<usize>) -> bool {
        let n = self.len();
        let after = (span.end..n.min(span.end + 3))
            .filter(|&i| self.word[i])
            .take(2)
            .any(|i| is_speech_word(self.forms[i]) && self.forms[i] != "according");
        // "..., said X" attributes only when the speech came before; in "Y said X is ..." X is the topic.
        let said_before = span.start >= 2
            && matches!(self.forms[span.start - 1], "said" | "says" | "told")
            && matches!(self.forms[span.start - 2], "," | "\"");
        let before = said_before
            || span.start >= 2
                && self.forms[span.start - 2] == "according"
                && self.forms[span.start - 1] == "to";
        after || before
    }

    /// The target sits between an odd number of quotation marks: inside someone's quoted words.
    pub fn in_quote(&self, span: &Range<usize>) -> bool {
        self.quotes_before[span.start] % 2 == 1
    }

    /// Number of quotation marks in the context.
    pub fn has_quote(&self) -> bool {
        self.quotes_before.last().is_some_and(|&q| q > 0)
            || self.tokens.last().is_some_and(|t| t.lower == "\"")
    }

    pub fn has_speech(&self) -> bool {
        self.has_speech
    }

    /// Signed valence of a token after negation and degree, 0 when it carries none.
    pub fn valence(&self, i: usize) -> f32 {
        self.valence[i]
    }

    /// Appends the features of the target whose mentions in this context are `spans` (the first is the main
    /// one). Spans are token ranges into the context, non-empty.
    pub fn features(&self, spans: &[Range<usize>], out: &mut Features) {
        let n = self.len();
        if spans.is_empty() || n == 0 {
            return;
        }
        let mut in_target = vec![false; n];
        for s in spans {
            in_target[s.start.min(n)..s.end.min(n)]
                .iter_mut()
                .for_each(|x| *x = true);
        }
        let form = |i: usize| -> &str {
            if in_target[i] {
                "<t>"
            } else {
                self.forms[i]
            }
        };
        out.add(&["bias"], 1.0);

        // Sentence n-grams, target masked: the general tone.
        let mut prev: Option<&str> = None;
        for i in 0..n {
            if in_target[i] && i > 0 && in_target[i - 1] {
                continue;
            }
            let f = form(i);
            if self.word[i] && !in_target[i] {
                out.add_hash(self.memo(i, MEMO_U, &["u", f]), 1.0);
                if self.negated[i] {
                    out.add_hash(self.memo(i, MEMO_UN, &["un", f]), 1.0);
                }
            }
            if let Some(p) = prev {
                if !in_target[i] && !in_target[i - 1] {
                    // Neither word masked: `p` is the previous token's own form, the same for every target.
                    out.add_hash(self.memo(i, MEMO_B, &["b", p, f]), 1.0);
                } else {
                    out.add(&["b", p, f], 1.0);
                }
            }
            prev = Some(f);
        }

        let main = &spans[0];
        let nearest = |i: usize| -> (bool, usize) {
            // (left of the target?, distance in tokens to the nearest mention)
            let mut best = (true, usize::MAX);
            for s in spans {
                if i < s.start && s.start - i < best.1 {
                    best = (true, s.start - i);
                } else if i >= s.end && i + 1 - s.end < best.1 {
                    best = (false, i + 1 - s.end);
                }
            }
            best
        };

        // Positional words and lexicon sums by side and distance.
        let mut sums = [0f32; 8]; // left near/far pos/neg, right near/far pos/neg
        let mut clause_sum = [0f32; 2];
        let mut other_sum = [0f32; 2];
        let mut decayed = 0f32;
        let target_clauses: Vec<u16> = spans.iter().map(|s| self.clause[s.start]).collect();
        for i in 0..n {
            if in_target[i] {
                continue;
            }
            let (left, d) = nearest(i);
            let dir = if left { "L" } else { "R" };
            let same_clause = target_clauses.contains(&self.clause[i]);
            if self.word[i] && d <= WINDOW {
                let (b, bucket) = match d {
                    1 => (0, "1"),
                    2 => (1, "2"),
                    3 | 4 => (2, "3"),
                    _ => (3, "5"),
                };
                let side = usize::from(!left);
                let h = self.memo(
                    i,
                    MEMO_DIR_BUCKET + side * 4 + b,
                    &[dir, bucket, self.forms[i]],
                );
                out.add_hash(h, 1.0);
                out.add_hash(self.memo(i, MEMO_DIR + side, &[dir, self.forms[i]]), 1.0);
            }
            if same_clause && self.word[i] {
                out.add_hash(self.memo(i, MEMO_C, &["c", self.forms[i]]), 1.0);
            }
            let v = self.valence[i];
            if v != 0.0 {
                let near = d <= 4;
                let k = usize::from(!left) * 4 + usize::from(!near) * 2 + usize::from(v < 0.0);
                sums[k] += v.abs() / 4.0;
                let side = if same_clause {
                    &mut clause_sum
                } else {
                    &mut other_sum
                };
                side[usize::from(v < 0.0)] += v.abs() / 4.0;
                decayed += v * 4.0 / (3.0 + d as f32);
                let sign = if v > 0.0 { "+" } else { "-" };
                let near_s = if near { "n" } else { "f" };
                let clause_s = if same_clause { "c" } else { "o" };
                out.add(&["lex", dir, near_s, clause_s, sign], 1.0);
                if self.negated[i] {
                    out.add(&["lexneg", dir, sign], 1.0);
                }
            }
        }
        const SUM_NAMES: [&str; 8] = ["Lnp", "Lnn", "Lfp", "Lfn", "Rnp", "Rnn", "Rfp", "Rfn"];
        for (k, s) in sums.iter().enumerate() {
            if *s > 0.0 {
                out.add(&["sum", SUM_NAMES[k]], s.min(3.0));
            }
        }
        for (name, s) in [("cl", clause_sum), ("ot", other_sum)] {
            if s[0] > 0.0 {
                out.add(&["sum", name, "+"], s[0].min(3.0));
            }
            if s[1] > 0.0 {
                out.add(&["sum", name, "-"], s[1].min(3.0));
            }
            let net = s[0] - s[1];
            let b = bucket_signed(net);
            out.add(&["net", name, b], 1.0);
        }
        let squashed = decayed / (decayed * decayed + 15.0).sqrt();
        out.add(&["decayed"], squashed);
        out.add(&["decb", bucket_signed(squashed * 2.0)], 1.0);

        // Immediate neighbours and bigrams anchored at the main mention.
        let l1 = main.start.checked_sub(1).map(form).unwrap_or("<s>");
        let l2 = main.start.checked_sub(2).map(form).unwrap_or("<s>");
        let r1 = if main.end < n { form(main.end) } else { "</s>" };
        let r2 = if main.end + 1 < n {
            form(main.end + 1)
        } else {
            "</s>"
        };
        out.add(&["L12", l2, l1], 1.0);
        out.add(&["R12", r1, r2], 1.0);

        // Role around the governing verbs.
        for s in spans {
            self.role_features(s, &in_target, out);
        }

        // Quotes, speech, attribution.
        let speaker = spans.iter().any(|s| self.is_speaker(s));
        let quoted = spans.iter().any(|s| self.in_quote(s));
        out.add(&["speaker", flag(speaker)], 1.0);
        out.add(&["inquote", flag(quoted)], 1.0);
        out.add(&["hasquote", flag(self.has_quote())], 1.0);
        out.add(&["hasspeech", flag(self.has_speech)], 1.0);
        if speaker {
            // What a speaker says is mostly about others; their own treatment shows in the verb and clause.
            let b = bucket_signed(clause_sum[0] - clause_sum[1]);
            out.add(&["speaker_net", b], 1.0);
        }

        // Where the target sits and what it is.
        let first = main.start == 0 || (main.start == 1 && !self.word[0]);
        out.add(&["first", flag(first)], 1.0);
        let pos = (main.start * 4 / n.max(1)).min(3);
        out.add(&["pos", &pos.to_string()], 1.0);
        let pron = (main.end - main.start == 1) && PRONOUNS.contains(&self.forms[main.start]);
        out.add(&["pron", flag(pron)], 1.0);
        out.add(&["nment", &spans.len().min(3).to_string()], 1.0);
        let after_contrast = self.clause[main.start] > 0;
        let later_contrast = self.clause[n - 1] > self.clause[main.start];
        out.add(
            &["contrast", flag(after_contrast), flag(later_contrast)],
            1.0,
        );
        let len_bucket = match n {
            0..=12 => "s",
            13..=25 => "m",
            26..=40 => "l",
            _ => "x",
        };
        out.add(&["len", len_bucket], 1.0);
    }

    /// Appends the dense input of the target whose mentions are `spans` to `out` (the blocks of
    /// [`dense::BLOCKS`], then [`dense::LEXICAL`] lexicon sums). Target words are left out of every block; a
    /// block with no word that has a vector is zeros. The sentence's and each clause's vector sums are
    /// computed once per sentence and the target's own words subtracted, so a target costs only the words
    /// near it.
    pub fn dense(&self, spans: &[Range<usize>], rows: DenseRows<'_>, out: &mut Vec<f32>) {
        match rows {
            DenseRows::Vectors(v) => self.dense_from(spans, v, out),
            DenseRows::Projected(p) => self.dense_from(spans, p, out),
        }
    }

    /// [`Context::dense`] from the rows of `vectors`: `width` numbers per block.
    fn dense_from<R: Rows>(&self, spans: &[Range<usize>], vectors: &R, out: &mut Vec<f32>) {
        let dim = vectors.width();
        let start = out.len();
        out.resize(start + dense::input_len(dim), 0.0);
        let n = self.len();
        if spans.is_empty() || n == 0 {
            return;
        }
        // The memo is of the first rows this context met; other rows (another model) get their own.
        let key = std::ptr::from_ref(vectors).cast::<()>() as usize;
        let memo = self
            .dense_memo
            .get_or_init(|| DenseMemo::new(self, vectors, key));
        let other;
        let memo = if memo.key == key {
            memo
        } else {
            other = DenseMemo::new(self, vectors, key);
            &other
        };
        let ids = &memo.ids;
        let mut mask = vec![false; n];
        for s in spans {
            mask[s.clone()].iter_mut().for_each(|x| *x = true);
        }
        let block = &mut out[start..];
        let mut totals = [0f32; dense::BLOCKS];

        // Sentence and clauses: the memoised sums less the target's words.
        let mut clauses: Vec<u16> = spans.iter().map(|s| self.clause[s.start]).collect();
        clauses.sort_unstable();
        clauses.dedup();
        {
            let (sentence, clause) = block[..6 * dim].split_at_mut(5 * dim);
            sentence[4 * dim..].copy_from_slice(&memo.sentence);
            totals[4] = memo.sentence_count;
            for &c in &clauses {
                let c = usize::from(c);
                for (o, x) in clause.iter_mut().zip(&memo.clauses[c * dim..(c + 1) * dim]) {
                    *o += x;
                }
                totals[5] += memo.clause_counts[c];
            }
            for i in (0..n).filter(|&i| mask[i] && ids[i] != u32::MAX) {
                totals[4] -= 1.0;
                vectors.add(ids[i], 4, -1.0, &mut sentence[4 * dim..]);
                if clauses.contains(&self.clause[i]) {
                    totals[5] -= 1.0;
                    vectors.add(ids[i], 5, -1.0, clause);
                }
            }
        }

        // Windows either side, and the lexicon sums (which need every word's distance).
        let mut lexical = [0f32; dense::LEXICAL];
        for i in 0..n {
            if mask[i] {
                continue;
            }
            // Distance in words to the nearest mention, and on which side.
            let mut best = (0usize, usize::MAX);
            for s in spans {
                if i < s.start && s.start - i < best.1 {
                    best = (0, s.start - i);
                } else if i >= s.end && i + 1 - s.end < best.1 {
                    best = (1, i + 1 - s.end);
                }
            }
            let v = self.valence[i];
            if v != 0.0 {
                let neg = usize::from(v < 0.0);
                let far = usize::from(best.1 > 4);
                lexical[best.0 * 4 + far * 2 + neg] += v.abs() / 4.0;
                let other = usize::from(!clauses.contains(&self.clause[i]));
                lexical[8 + other * 2 + neg] += v.abs() / 4.0;
                lexical[12] += v * 4.0 / (3.0 + best.1 as f32);
            }
            if ids[i] == u32::MAX || best.1 > DENSE_WINDOW {
                continue;
            }
            let mut add = |b: usize, w: f32| {
                totals[b] += w;
                vectors.add(ids[i], b, w, &mut block[b * dim..(b + 1) * dim]);
            };
            add(best.0, 1.0 / best.1 as f32);
            if best.1 <= 2 {
                add(2 + best.0, 1.0);
            }
        }
        for b in 0..6 {
            // Sentence and clause totals are counts after subtraction (0.5 guards the float rounding).
            let floor = if b >= 4 { 0.5 } else { 0.0 };
            if totals[b] > floor {
                block[b * dim..(b + 1) * dim]
                    .iter_mut()
                    .for_each(|x| *x /= totals[b]);
            } else {
                block[b * dim..(b + 1) * dim]
                    .iter_mut()
                    .for_each(|x| *x = 0.0);
            }
        }

        // The vectors of the words the target is agent and patient of (negated verbs flipped), so the network
        // can read verbs the training data never labelled ("X lambasted", "hailed X").
        for s in spans {
            let mut put = |b: usize, j: usize, sign: f32| {
                // Blocks 6 and 7 are zeros until filled here.
                if ids[j] != u32::MAX && totals[b] == 0.0 {
                    totals[b] = 1.0;
                    vectors.add(ids[j], b, sign, &mut block[b * dim..(b + 1) * dim]);
                }
            };
            if let Some((j, passive, negated)) = self.verb_after(s, &mask) {
                put(
                    6 + usize::from(passive),
                    j,
                    if negated { -1.0 } else { 1.0 },
                );
            }
            if let Some((j, agent)) = self.word_before(s, &mask) {
                put(6 + usize::from(!agent), j, 1.0);
            }
        }
        for (o, x) in block[dense::BLOCKS * dim..].iter_mut().zip(&lexical) {
            *o = x.clamp(-3.0, 3.0);
        }
    }

    /// The first content word after the target, past auxiliaries, adverbs and negators: the verb it is the
    /// subject of, most of the time. Returns (token, passive, negated); passive when a form of "be" came
    /// first and the word looks like a participle ("X was praised").
    pub fn verb_after(&self, s: &Range<usize>, in_target: &[bool]) -> Option<(usize, bool, bool)> {
        let n = self.len();
        let mut passive = false;
        let mut negated = false;
        let mut j = s.end;
        let mut steps = 0;
        while j < n && steps < 5 {
            if in_target[j] || !self.word[j] {
                if self.forms[j] == "," {
                    return None;
                }
                j += 1;
                continue;
            }
            let f = self.forms[j];
            if matches!(f, "was" | "were" | "been" | "being" | "is" | "are" | "got") {
                passive = true;
            }
            let negator = matches!(f, "not" | "never") || f.ends_with("n't");
            negated |= negator;
            if SKIP.contains(&f) || f.ends_with("ly") || negator {
                j += 1;
                steps += 1;
                continue;
            }
            break;
        }
        if j < n && self.word[j] && !in_target[j] {
            let f = self.forms[j];
            let participle = f.ends_with("ed") || f.ends_with("en");
            Some((j, passive && participle, negated))
        } else {
            None
        }
    }

    /// The content word right before the target, past determiners and prepositions ("accused X", "praised
    /// by X"): Some((token, agent)) with agent when "by" came first; None past a comma or four words.
    pub fn word_before(&self, s: &Range<usize>, in_target: &[bool]) -> Option<(usize, bool)> {
        self.walk_before(s, in_target, |_| {})
    }

    /// [`Self::word_before`], calling `skipped` with each determiner or preposition walked past.
    fn walk_before(
        &self,
        s: &Range<usize>,
        in_target: &[bool],
        mut skipped: impl FnMut(&str),
    ) -> Option<(usize, bool)> {
        let mut j = s.start;
        let mut steps = 0;
        let mut by = false;
        while j > 0 && steps < 4 {
            j -= 1;
            if in_target[j] || !self.word[j] {
                if self.forms[j] == "," {
                    return None;
                }
                continue;
            }
            let f = self.forms[j];
            if f == "by" && steps == 0 {
                by = true;
                steps += 1;
                continue;
            }
            if FUNCTION_BEFORE.contains(&f) {
                skipped(f);
                steps += 1;
                continue;
            }
            return Some((j, by));
        }
        None
    }

    /// The stance-bearing word the target is agent or patient of, looked for past auxiliaries and adverbs.
    fn role_features(&self, s: &Range<usize>, in_target: &[bool], out: &mut Features) {
        // Agent: "X (has) accused ...", "X sharply criticised ..."; patient: "X was praised".
        if let Some((j, passive, negated)) = self.verb_after(s, in_target) {
            let f = self.forms[j];
            let v = self.valence[j];
            let role = if passive { "pt" } else { "ag" };
            out.add(&["role", role, f], 1.0);
            if v != 0.0 {
                let sign = if (v > 0.0) != negated { "+" } else { "-" };
                out.add(&["roles", role, sign], 1.0);
            }
        }
        // Patient: "... accused X"; "... praised by X" makes X the agent.
        if let Some((j, by)) = self.walk_before(s, in_target, |f| out.add(&["prep", f], 1.0)) {
            let f = self.forms[j];
            let v = self.valence[j];
            let role = if by { "ag" } else { "pt" };
            out.add(&["role", role, f], 1.0);
            if v != 0.0 {
                let sign = if v > 0.0 { "+" } else { "-" };
                out.add(&["roles", role, sign], 1.0);
            }
        }
    }

    /// The lowercased form of a token as features see it.
    pub fn form(&self, i: usize) -> &str {
        self.forms[i]
    }

    /// Clause index of a token (clauses are cut at ";", ":" and contrastive conjunctions).
    pub fn clause(&self, i: usize) -> u16 {
        self.clause[i]
    }
}

/// What [`Context::dense`] shares between the targets of a sentence.
#[derive(Debug, Clone)]
struct DenseMemo {
    /// Address of the rows it was computed from.
    key: usize,
    /// Word-vector row of each token (`u32::MAX` for none).
    ids: Vec<u32>,
    /// Sum of the rows of the sentence's words (as the sentence block reads them), and how many there are.
    sentence: Vec<f32>,
    sentence_count: f32,
    /// The same per clause (as the clause block reads them), `width` numbers per clause.
    clauses: Vec<f32>,
    clause_counts: Vec<f32>,
}

impl DenseMemo {
    fn new<R: Rows>(ctx: &Context<'_>, vectors: &R, key: usize) -> Self {
        let dim = vectors.width();
        let n = ctx.len();
        let ids: Vec<u32> = (0..n)
            .map(|i| {
                if ctx.word[i] {
                    vectors.id(ctx.forms[i]).unwrap_or(u32::MAX)
                } else {
                    u32::MAX
                }
            })
            .collect();
        let n_clauses = ctx.clause.last().map_or(0, |&c| usize::from(c) + 1);
        let mut memo = DenseMemo {
            key,
            sentence: vec![0.0; dim],
            sentence_count: 0.0,
            clauses: vec![0.0; n_clauses * dim],
            clause_counts: vec![0.0; n_clauses],
            ids,
        };
        for i in 0..n {
            if memo.ids[i] == u32::MAX {
                continue;
            }
            let c = usize::from(ctx.clause[i]);
            memo.sentence_count += 1.0;
            memo.clause_counts[c] += 1.0;
            vectors.add(memo.ids[i], 4, 1.0, &mut memo.sentence);
            vectors.add(
                memo.ids[i],
                5,
                1.0,
                &mut memo.clauses[c * dim..(c + 1) * dim],
            );
        }
        memo
    }
}

fn flag(b: bool) -> &'static str {
    if b {
        "1"
    } else {
        "0"
    }
}

fn bucket_signed(x: f32) -> &'static str {
    match x {
        x if x <= -1.0 => "--",
        x if x <= -0.25 => "-",
        x if x < 0.25 => "0",
        x if x < 1.0 => "+",
        _ => "++",
    }
}

/// Tokens whose start lies in the code-point span `start..end`.
pub fn token_range(tokens: &[Token], start: usize, end: usize) -> Range<usize> {
    tokens.partition_point(|t| t.start < start)..tokens.partition_point(|t| t.start < end)
}
