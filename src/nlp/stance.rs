use super::*;
pub fn score(_l: &lexicon::Lexicon, _b: &text::TextView<'_>, _e: &mut [Entity]) {}
