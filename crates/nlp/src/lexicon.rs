//! The sentiment lexicon the baseline stance scorer reads words against.
//!
//! Word valences come from VADER (Hutto & Gilbert 2014, MIT licence, `lexicons/vader_lexicon.txt`), topped up
//! by a hand-written supplement of political and conflict vocabulary VADER lacks
//! (`lexicons/news_supplement.txt`). The modifier lists — negators, intensifiers, dampeners, contrastive
//! conjunctions — follow VADER's rules. All of it is embedded at build time and parsed once into the
//! [`Lexicon`] the pipeline holds.

use std::collections::{HashMap, HashSet};

const VADER: &str = include_str!(repo_file!("lexicons/vader_lexicon.txt"));
const SUPPLEMENT: &str = include_str!(repo_file!("lexicons/news_supplement.txt"));

/// Words that reverse the polarity of what follows them. VADER's `NEGATE` list without "despite" (a
/// concession, not a negation) and with lack/fail verbs, which negate the verb they govern in news prose.
const NEGATORS: &str = "\
    not no never none nothing nobody nowhere neither nor without cannot rarely seldom hardly ain't \
    aren't can't couldn't daren't didn't doesn't don't hadn't hasn't haven't isn't mightn't mustn't \
    needn't oughtn't shan't shouldn't wasn't weren't won't wouldn't aint arent cant couldnt didnt \
    doesnt dont hadnt hasnt havent isnt shouldnt wasnt werent wont wouldnt lack lacks lacked lacking \
    fail fails failed failing";

/// Degree adverbs that strengthen the next sentiment word (VADER's `B_INCR` entries, trimmed of slang).
const INTENSIFIERS: &str = "\
    absolutely amazingly awfully completely considerably decidedly deeply enormously entirely \
    especially exceptionally extremely fully greatly highly hugely incredibly intensely particularly \
    purely quite really remarkably so substantially thoroughly totally tremendously truly \
    unbelievably unusually utterly very most more openly strongly bitterly fiercely sharply harshly \
    vehemently overwhelming";

/// Degree adverbs that weaken it (VADER's `B_DECR`).
const DAMPENERS: &str = "\
    almost barely less little marginally occasionally partly scarcely slightly somewhat kinda sorta \
    mildly relatively";

/// Words that open a clause whose sentiment is set against the previous one's.
const CONTRASTIVE: &str = "\
    but however although though while whereas nevertheless nonetheless";

/// VADER's scalars: a negated word keeps 74% of its strength with the sign reversed; a degree adverb moves a
/// typical valence (about 2) by roughly 0.3.
const NEGATION_SCALAR: f64 = -0.74;
const INTENSIFIER_SCALAR: f64 = 1.15;
const DAMPENER_SCALAR: f64 = 0.85;

/// The lexicon's tables hash with rustc's Fx hash rather than SipHash: every token of every mention sentence is
/// looked up four times and SipHash, built to resist crafted keys, was a fifth of the stance step; the keys here
/// are fixed word lists, so there is nothing to resist. Nothing iterates these tables, so order cannot leak.
type Words = rustc_hash::FxBuildHasher;

/// Word valences and the modifiers that change them, keyed by lowercased, normalised token.
#[derive(Debug, Clone)]
pub struct Lexicon {
    valence: HashMap<String, f64, Words>,
    negators: HashSet<&'static str, Words>,
    degree: HashMap<&'static str, f64, Words>,
    contrastive: HashSet<&'static str, Words>,
}

impl Lexicon {
    /// VADER plus the news supplement, as embedded in the binary.
    ///
    /// # Panics
    /// If an embedded file is malformed, which is a build defect.
    pub fn embedded() -> Self {
        let mut lexicon = Lexicon::empty();
        if let Err(e) = lexicon.add_vader(VADER) {
            panic!("embedded lexicon lexicons/vader_lexicon.txt, {e}");
        }
        if let Err(e) = lexicon.add_two_column(SUPPLEMENT) {
            panic!("embedded lexicon lexicons/news_supplement.txt, {e}");
        }
        lexicon
    }

    /// No word valences, only the modifier lists.
    pub fn empty() -> Self {
        let mut degree: HashMap<&'static str, f64, Words> = HashMap::default();
        degree.extend(
            INTENSIFIERS
                .split_whitespace()
                .map(|w| (w, INTENSIFIER_SCALAR)),
        );
        degree.extend(DAMPENERS.split_whitespace().map(|w| (w, DAMPENER_SCALAR)));
        Lexicon {
            valence: HashMap::default(),
            negators: NEGATORS.split_whitespace().collect(),
            degree,
            contrastive: CONTRASTIVE.split_whitespace().collect(),
        }
    }

    /// Adds VADER-format lines (`token<TAB>mean<TAB>...`). Multi-word entries are skipped: lookups are per token.
    pub fn add_vader(&mut self, text: &str) -> Result<(), String> {
        for (i, line) in text.lines().enumerate() {
            let line = line.trim_end_matches(['\r', '\n']);
            if line.trim().is_empty() {
                continue;
            }
            let mut fields = line.split('\t');
            let (Some(word), Some(value)) = (fields.next(), fields.next()) else {
                return Err(format!("line {}: expected token<TAB>valence", i + 1));
            };
            let value: f64 = value
                .trim()
                .parse()
                .map_err(|e| format!("line {}: {e}", i + 1))?;
            if !word.contains(' ') {
                self.valence.insert(word.to_lowercase(), value);
            }
        }
        Ok(())
    }

    /// Adds `word<whitespace>valence` lines; `#` starts a comment. Later entries replace earlier ones.
    pub fn add_two_column(&mut self, text: &str) -> Result<(), String> {
        for (i, line) in text.lines().enumerate() {
            let line = line.split('#').next().unwrap_or_default().trim();
            if line.is_empty() {
                continue;
            }
            let mut fields = line.split_whitespace();
            let (Some(word), Some(value), None) = (fields.next(), fields.next(), fields.next())
            else {
                return Err(format!("line {}: expected word and valence", i + 1));
            };
            let value: f64 = value.parse().map_err(|e| format!("line {}: {e}", i + 1))?;
            self.valence.insert(word.to_lowercase(), value);
        }
        Ok(())
    }

    pub fn len(&self) -> usize {
        self.valence.len()
    }

    pub fn is_empty(&self) -> bool {
        self.valence.is_empty()
    }

    /// Mean valence of a lowercased token, roughly -4..4.
    pub fn valence(&self, lower: &str) -> Option<f64> {
        self.valence.get(lower).copied()
    }

    pub fn is_negator(&self, lower: &str) -> bool {
        self.negators.contains(lower) || lower.ends_with("n't")
    }

    /// Factor a degree adverb applies to the next sentiment word's valence.
    pub fn degree(&self, lower: &str) -> Option<f64> {
        self.degree.get(lower).copied()
    }

    pub fn is_contrastive(&self, lower: &str) -> bool {
        self.contrastive.contains(lower)
    }

    /// Factor applied to a sentiment word in a negator's scope.
    pub fn negation_scalar(&self) -> f64 {
        NEGATION_SCALAR
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_parses_vader_and_supplement() {
        let lex = Lexicon::embedded();
        assert!(lex.len() > 7400, "{}", lex.len());
        assert_eq!(lex.valence("praised"), Some(2.2));
        assert_eq!(lex.valence("invasion"), Some(-2.5));
        assert_eq!(
            lex.valence("backed"),
            Some(0.8),
            "the supplement overrides VADER"
        );
        assert_eq!(lex.valence("fed"), None);
        assert!(lex.is_negator("not") && lex.is_negator("didn't") && lex.is_negator("without"));
        assert!(!lex.is_negator("despite"));
        assert!(lex.degree("very").unwrap() > 1.0 && lex.degree("slightly").unwrap() < 1.0);
        assert!(lex.is_contrastive("however"));
    }

    #[test]
    fn malformed_lines_are_errors() {
        let mut lex = Lexicon::empty();
        assert!(lex.add_two_column("good\t2 # fine\n").is_ok());
        assert_eq!(lex.valence("good"), Some(2.0));
        assert!(lex
            .add_two_column("good\tvery\n")
            .unwrap_err()
            .starts_with("line 1"));
        assert!(lex
            .add_vader("x\t1.0\t0\t[]\nbroken\n")
            .unwrap_err()
            .starts_with("line 2"));
    }
}
