//! Language identification of an article: title and body together.
//!
//! The entity and stance models are English-only, so the language decides whether the analysis can be trusted
//! (`supported`), not whether it runs. English is recognised first by its function words ("the", "of",
//! "said", ...): news prose has a fifth or more of them and other languages almost none, and the test holds on
//! a headline where trigram statistics do not (whatlang took "Angela Merkel praised Emmanuel Macron in Paris."
//! for Javanese). Other text goes to whatlang's trigram model. Below [`MIN_DETECT_LETTERS`] no statistic is
//! worth much: the producer's declared tag stands, else the language is undetermined (`und`), which is not
//! flagged as unsupported. The declared tag also takes over when the detector is unsure; otherwise detection
//! wins, because producers mislabel content far more often than the detector fails on a paragraph of prose.

use whatlang::Lang;

use crate::types::LanguageInfo;

/// A few hundred words give whatlang a stable trigram profile; more only costs time (detection was the
/// largest single cost of analysing a typical article before this cap).
const MAX_DETECT_BYTES: usize = 2048;

/// Letters below which a text is too short to identify by statistics.
pub const MIN_DETECT_LETTERS: usize = 80;

/// Languages the models were trained on.
const SUPPORTED: &[&str] = &["en"];

/// Frequent English words that are not also frequent words of the other languages written in Latin script
/// ("in", "on", "is", "was", "an", "also", "will" are left out for that reason).
const ENGLISH_FUNCTION_WORDS: &[&str] = &[
    "the", "of", "and", "to", "that", "for", "with", "are", "by", "this", "from", "has", "have",
    "had", "his", "her", "he", "she", "it", "its", "at", "not", "but", "or", "said", "says",
    "would", "were", "been", "their", "they", "which", "who", "after", "than", "about", "more",
    "we", "our", "you", "over", "into", "be", "can", "could", "there", "what", "when", "if", "all",
    "new", "up", "out", "just", "being", "because", "should", "while", "during", "against",
    "between", "before", "under", "told", "them", "him", "these", "those", "other", "some", "such",
    "only", "most", "many", "where", "why", "how", "do", "does", "did", "any", "may", "might",
    "must", "no", "one", "two", "first", "last",
];

/// Share of function words above which a text of at least [`MIN_ENGLISH_WORDS`] words is English.
const ENGLISH_SHARE: f64 = 0.15;
const MIN_ENGLISH_WORDS: usize = 5;

pub fn identify(title: Option<&str>, body: &str, declared: Option<&str>) -> LanguageInfo {
    let sample = sample(title, body);
    let declared = declared.and_then(primary_subtag);
    let (code, confidence) = if let Some(confidence) = english(&sample) {
        ("en".to_string(), confidence)
    } else if sample.chars().filter(|c| c.is_alphabetic()).count() < MIN_DETECT_LETTERS {
        (declared.unwrap_or_else(|| "und".to_string()), 0.0)
    } else {
        match (whatlang::detect(&sample), declared) {
            (Some(info), _) if info.is_reliable() => {
                (iso_code(info.lang()).to_string(), info.confidence())
            }
            // The detector's confidence is only worth reporting when it backs the producer's claim.
            (Some(info), Some(tag)) => {
                let agrees = iso_code(info.lang()) == tag;
                (tag, if agrees { info.confidence() } else { 0.0 })
            }
            (None, Some(tag)) => (tag, 0.0),
            (Some(info), None) => (iso_code(info.lang()).to_string(), info.confidence()),
            (None, None) => ("und".to_string(), 0.0),
        }
    };
    let supported = code == "und" || SUPPORTED.contains(&code.as_str());
    LanguageInfo {
        code,
        confidence: confidence.clamp(0.0, 1.0),
        supported,
    }
}

/// The title, then the body, up to [`MAX_DETECT_BYTES`] in all.
fn sample(title: Option<&str>, body: &str) -> String {
    let mut s = String::new();
    if let Some(t) = title.filter(|t| !t.trim().is_empty()) {
        s.push_str(prefix(t, MAX_DETECT_BYTES / 2));
        s.push('\n');
    }
    s.push_str(prefix(body, MAX_DETECT_BYTES - s.len()));
    s
}

/// Some(confidence) when the text reads as English by its function words.
fn english(sample: &str) -> Option<f64> {
    let mut words = 0usize;
    let mut function = 0usize;
    for w in sample
        .split(|c: char| !c.is_alphabetic() && c != '\'')
        .filter(|w| !w.is_empty())
    {
        words += 1;
        let lower = w.to_lowercase();
        if ENGLISH_FUNCTION_WORDS.contains(&lower.as_str()) {
            function += 1;
        }
    }
    let share = function as f64 / words.max(1) as f64;
    (words >= MIN_ENGLISH_WORDS && share >= ENGLISH_SHARE).then(|| (0.5 + share * 2.0).min(1.0))
}

/// The longest prefix of at most `max` bytes that ends on a character boundary.
fn prefix(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

/// "en-GB" -> "en"; "und", empty or malformed tags count as no declaration.
fn primary_subtag(tag: &str) -> Option<String> {
    let primary = tag.trim().split(['-', '_']).next()?.to_ascii_lowercase();
    let valid = (2..=3).contains(&primary.len()) && primary.bytes().all(|b| b.is_ascii_lowercase());
    (valid && primary != "und").then_some(primary)
}

/// ISO 639-1 where the language has a two-letter code, else whatlang's ISO 639-3 code.
fn iso_code(lang: Lang) -> &'static str {
    match lang {
        Lang::Epo => "eo",
        Lang::Eng => "en",
        Lang::Rus => "ru",
        Lang::Cmn => "zh",
        Lang::Spa => "es",
        Lang::Por => "pt",
        Lang::Ita => "it",
        Lang::Ben => "bn",
        Lang::Fra => "fr",
        Lang::Deu => "de",
        Lang::Ukr => "uk",
        Lang::Kat => "ka",
        Lang::Ara => "ar",
        Lang::Hin => "hi",
        Lang::Jpn => "ja",
        Lang::Heb => "he",
        Lang::Yid => "yi",
        Lang::Pol => "pl",
        Lang::Amh => "am",
        Lang::Jav => "jv",
        Lang::Kor => "ko",
        Lang::Nob => "nb",
        Lang::Dan => "da",
        Lang::Swe => "sv",
        Lang::Fin => "fi",
        Lang::Tur => "tr",
        Lang::Nld => "nl",
        Lang::Hun => "hu",
        Lang::Ces => "cs",
        Lang::Ell => "el",
        Lang::Bul => "bg",
        Lang::Bel => "be",
        Lang::Mar => "mr",
        Lang::Kan => "kn",
        Lang::Ron => "ro",
        Lang::Slv => "sl",
        Lang::Hrv => "hr",
        Lang::Srp => "sr",
        Lang::Mkd => "mk",
        Lang::Lit => "lt",
        Lang::Lav => "lv",
        Lang::Est => "et",
        Lang::Tam => "ta",
        Lang::Vie => "vi",
        Lang::Urd => "ur",
        Lang::Tha => "th",
        Lang::Guj => "gu",
        Lang::Uzb => "uz",
        Lang::Pan => "pa",
        Lang::Aze => "az",
        Lang::Ind => "id",
        Lang::Tel => "te",
        Lang::Pes => "fa",
        Lang::Mal => "ml",
        Lang::Ori => "or",
        Lang::Mya => "my",
        Lang::Nep => "ne",
        Lang::Sin => "si",
        Lang::Khm => "km",
        Lang::Tuk => "tk",
        Lang::Aka => "ak",
        Lang::Zul => "zu",
        Lang::Sna => "sn",
        Lang::Afr => "af",
        Lang::Lat => "la",
        Lang::Slk => "sk",
        Lang::Cat => "ca",
        Lang::Tgl => "tl",
        Lang::Hye => "hy",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ENGLISH: &str = "The government announced on Tuesday that it would raise taxes on fuel next year, \
        a decision that opposition parties immediately criticised as unfair to families in rural areas.";
    const FRENCH: &str = "Le gouvernement a annoncé mardi qu'il augmenterait les taxes sur le carburant l'année \
        prochaine, une décision que les partis d'opposition ont aussitôt jugée injuste pour les familles.";

    #[test]
    fn identifies_english_and_french() {
        let en = identify(None, ENGLISH, None);
        assert_eq!(en.code, "en");
        assert!(en.supported);
        assert!(en.confidence > 0.5, "{en:?}");
        let fr = identify(None, FRENCH, Some("en"));
        assert_eq!(
            fr.code, "fr",
            "a reliable detection overrides a wrong declaration"
        );
        assert!(!fr.supported);
    }

    #[test]
    fn empty_or_short_text_is_undetermined_unless_declared() {
        assert_eq!(
            identify(None, "", None),
            LanguageInfo {
                code: "und".into(),
                confidence: 0.0,
                supported: true
            }
        );
        assert_eq!(identify(None, "  ", Some("en-GB")).code, "en");
        assert_eq!(identify(None, "", Some("und")).code, "und");
        // Trigram statistics took this for Javanese.
        let short = identify(
            None,
            "Angela Merkel praised Emmanuel Macron in Paris.",
            None,
        );
        assert_eq!(short.code, "und");
        assert!(short.supported);
        assert_eq!(
            identify(None, "Putin Erdogan", Some("tr")).code,
            "tr",
            "a declared tag stands for a text too short to identify"
        );
    }

    #[test]
    fn title_and_body_are_read_together() {
        let info = identify(
            Some("Merkel says the talks with Macron were a success for Europe"),
            "Angela Merkel praised Emmanuel Macron in Paris.",
            None,
        );
        assert_eq!(info.code, "en");
        assert!(info.supported);
        assert_eq!(
            identify(
                None,
                "Angela Merkel praised Emmanuel Macron in Paris.",
                None
            )
            .code,
            "und",
            "the body alone is too short"
        );
    }

    #[test]
    fn unreliable_detection_defers_to_declaration() {
        let info = identify(None, "Putin Erdogan", Some("en"));
        assert_eq!(info.code, "en");
        assert!(info.supported);
    }

    /// Short English news, one sentence or headline at a time, must not be flagged: NewsMTSC's sentences
    /// (about 9,500, no title) and PerSenT's headlines (as titles over an empty body).
    #[test]
    fn short_english_news_is_not_flagged() {
        let mut texts: Vec<(Option<String>, String)> = Vec::new();
        for file in [
            "newsmtsc/train.jsonl",
            "newsmtsc/dev-rw.jsonl",
            "newsmtsc/dev-mt.jsonl",
        ] {
            let Some(text) = crate::testdata::read(file) else {
                return;
            };
            texts.extend(text.lines().filter_map(|l| {
                let v: serde_json::Value = serde_json::from_str(l).ok()?;
                Some((None, v["sentence_normalized"].as_str()?.to_string()))
            }));
        }
        let sentences = texts.len();
        if let Some(csv) = crate::testdata::read("persent/dev.csv") {
            let mut reader = csv::Reader::from_reader(csv.as_bytes());
            let title = reader
                .headers()
                .unwrap()
                .iter()
                .position(|h| h == "TITLE")
                .unwrap();
            texts.extend(
                reader
                    .records()
                    .flatten()
                    .map(|r| (Some(r[title].to_string()), String::new())),
            );
        }
        let flagged: Vec<&(Option<String>, String)> = texts
            .iter()
            .filter(|(title, body)| !identify(title.as_deref(), body, None).supported)
            .collect();
        let rate = flagged.len() as f64 / texts.len() as f64;
        eprintln!(
            "language false alarms: {} of {} short English texts ({sentences} NewsMTSC sentences, {} PerSenT \
             headlines), {:.3} %; e.g. {:?}",
            flagged.len(),
            texts.len(),
            texts.len() - sentences,
            rate * 100.0,
            flagged.iter().take(3).collect::<Vec<_>>()
        );
        assert!(rate < 0.01, "false-alarm rate {rate}");
    }

    #[test]
    fn prefix_respects_char_boundaries() {
        assert_eq!(prefix("aé", 2), "a");
        assert_eq!(prefix("abc", 10), "abc");
    }
}
