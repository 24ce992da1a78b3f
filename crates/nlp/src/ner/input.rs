//! A document as the tagger reads it (token texts and the sentences over them), and the integer hashing its
//! features and gazetteer share: every string is hashed once per token, every feature is a mix of hashes.

use std::borrow::Cow;
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::ops::Range;

/// A document as the tagger sees it: token texts and sentence ranges that tile them.
#[derive(Debug, Clone)]
pub struct TaggerInput<'a> {
    tokens: Vec<Cow<'a, str>>,
    sentences: Vec<Range<usize>>,
}

impl<'a> TaggerInput<'a> {
    /// `None` when the sentence ranges do not tile the tokens in order.
    pub fn new(tokens: Vec<Cow<'a, str>>, sentences: Vec<Range<usize>>) -> Option<Self> {
        check_sentences(&sentences, tokens.len()).then_some(TaggerInput { tokens, sentences })
    }

    pub fn len(&self) -> usize {
        self.tokens.len()
    }

    pub fn is_empty(&self) -> bool {
        self.tokens.is_empty()
    }

    pub fn tokens(&self) -> &[Cow<'a, str>] {
        &self.tokens
    }

    pub fn sentences(&self) -> &[Range<usize>] {
        &self.sentences
    }
}

/// The keys are hashes already; hashing them again would only cost time.
#[derive(Default)]
pub struct IdHasher(u64);

impl Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 << 8) ^ u64::from(b);
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

pub type IdMap<V> = HashMap<u64, V, BuildHasherDefault<IdHasher>>;

#[inline]
pub fn mix(mut x: u64) -> u64 {
    x ^= x >> 30;
    x = x.wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x ^= x >> 27;
    x = x.wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// Sentence ranges must tile `0..n` in order; used by inputs built from outside text.
pub(crate) fn check_sentences(sentences: &[Range<usize>], n: usize) -> bool {
    let mut at = 0;
    for s in sentences {
        if s.start != at || s.end < s.start {
            return false;
        }
        at = s.end;
    }
    at == n
}

/// FNV-1a, finished with a mixer: strings are short, so a simple byte loop wins over anything cleverer.
#[inline]
pub fn str_hash(s: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in s.as_bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    mix(h)
}
