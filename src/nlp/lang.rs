//! Language identification of an article body.
//!
//! The entity and stance models are English-only, so the language decides whether the analysis can be trusted
//! (`supported`), not whether it runs. Detection uses whatlang's trigram model; the producer's declared tag only
//! takes over when the detector is unsure, because producers mislabel content far more often than the detector
//! fails on a paragraph of prose.

use whatlang::Lang;

use super::LanguageInfo;

/// A few hundred words give whatlang a stable trigram profile; more only costs time (detection was the
/// largest single cost of analysing a typical article before this cap).
const MAX_DETECT_BYTES: usize = 2048;

/// Languages the baseline's lexicon and rules were written for.
const SUPPORTED: &[&str] = &["en"];

pub fn identify(body: &str, declared: Option<&str>) -> LanguageInfo {
    let sample = prefix(body, MAX_DETECT_BYTES);
    let detected = whatlang::detect(sample);
    let declared = declared.and_then(primary_subtag);
    let (code, confidence) = match (detected, declared) {
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
    };
    let supported = SUPPORTED.contains(&code.as_str());
    LanguageInfo {
        code,
        confidence: confidence.clamp(0.0, 1.0),
        supported,
    }
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
        let en = identify(ENGLISH, None);
        assert_eq!(en.code, "en");
        assert!(en.supported);
        assert!(en.confidence > 0.5, "{en:?}");
        let fr = identify(FRENCH, Some("en"));
        assert_eq!(
            fr.code, "fr",
            "a reliable detection overrides a wrong declaration"
        );
        assert!(!fr.supported);
    }

    #[test]
    fn empty_text_is_undetermined_unless_declared() {
        assert_eq!(
            identify("", None),
            LanguageInfo {
                code: "und".into(),
                confidence: 0.0,
                supported: false
            }
        );
        assert_eq!(identify("  ", Some("en-GB")).code, "en");
        assert_eq!(identify("", Some("und")).code, "und");
    }

    #[test]
    fn unreliable_detection_defers_to_declaration() {
        let info = identify("Putin Erdogan", Some("en"));
        assert_eq!(info.code, "en");
        assert!(info.supported);
    }

    #[test]
    fn prefix_respects_char_boundaries() {
        assert_eq!(prefix("aé", 2), "a");
        assert_eq!(prefix("abc", 10), "abc");
    }
}
