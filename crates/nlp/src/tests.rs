//! Acceptance tests of the whole pipeline: the contract's offset invariant, the sample article of the design
//! document, determinism and speed.

use std::time::Instant;

use super::*;

const SAMPLE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../../shared/samples/karabakh-opinion.json"
);

fn sample_body() -> Option<String> {
    match std::fs::read_to_string(SAMPLE) {
        Ok(json) => {
            let v: serde_json::Value = serde_json::from_str(&json).expect("sample is JSON");
            Some(v["body"].as_str().expect("sample has a body").to_string())
        }
        Err(e) => {
            eprintln!("skipping: sample {SAMPLE} not readable: {e}");
            None
        }
    }
}

fn analyze(body: &str, title: Option<&str>) -> Analysis {
    Pipeline::new().analyze(&Document {
        title,
        body,
        declared_language: None,
    })
}

/// The output contract: every mention's text is exactly its code-point slice of its field.
fn assert_offsets(analysis: &Analysis, body: &str, title: Option<&str>) {
    for e in &analysis.entities {
        assert!(!e.mentions.is_empty(), "{e:?}");
        for m in &e.mentions {
            let field = match m.field {
                Field::Body => body,
                Field::Title => title.expect("title mention without a title"),
            };
            let slice: String = field.chars().skip(m.start).take(m.end - m.start).collect();
            assert_eq!(m.text, slice, "{m:?} of {}", e.name);
        }
        for ev in &e.stance.evidence {
            let slice: String = body
                .chars()
                .skip(ev.start)
                .take(ev.end - ev.start)
                .collect();
            assert_eq!(ev.text, slice);
        }
        assert!(
            (0.0..=1.0).contains(&e.salience) && (0.0..=1.0).contains(&e.stance.score),
            "{e:?}"
        );
    }
}

#[test]
fn pipeline_is_send_and_sync() {
    fn check<T: Send + Sync>() {}
    check::<Pipeline>();
}

#[test]
fn sample_entities_and_offsets() {
    let Some(body) = sample_body() else { return };
    let analysis = analyze(&body, None);
    assert_offsets(&analysis, &body, None);
    assert_eq!(analysis.language.code, "en");
    // Looked up by what the text says rather than by canonical name, which the knowledge base may refine.
    let holding = |text: &str| -> Vec<&Entity> {
        analysis
            .entities
            .iter()
            .filter(|e| e.mentions.iter().any(|m| m.text == text))
            .collect()
    };
    let the = |text: &str| -> &Entity {
        let found = holding(text);
        assert_eq!(
            found.len(),
            1,
            "one entity should hold the mention {text:?}: {found:#?}"
        );
        found[0]
    };
    for (text, ty) in [
        ("Putin", EntityType::Person),
        ("Pashinyan", EntityType::Person),
        ("Erdogan", EntityType::Person),
        ("Russia", EntityType::Location),
        ("Turkey", EntityType::Location),
        ("Azerbaijan", EntityType::Location),
        ("Armenia", EntityType::Location),
    ] {
        assert_eq!(the(text).entity_type, ty, "{text}");
    }
    let char_offset = |needle: &str| body[..body.find(needle).unwrap()].chars().count();
    // "Russian leader Putin", "Putin" and "Putin’s" are one entity whose mentions are the "Putin" spans.
    let putin = the("Putin");
    assert!(putin.mentions.iter().all(|m| m.text == "Putin"));
    assert_eq!(putin.mentions.len(), body.matches("Putin").count());
    assert!(putin
        .mentions
        .iter()
        .any(|m| m.start == char_offset("Putin’s")));
    // "Russian" in "Russian leader" and "Russian foreign affairs" is Russia; "Turkish world" is Turkey.
    let russia = the("Russia");
    assert!(russia
        .mentions
        .iter()
        .any(|m| m.start == char_offset("Russian leader") && m.text == "Russian"));
    assert!(russia
        .mentions
        .iter()
        .any(|m| m.start == char_offset("Russian foreign affairs")));
    let turkey = the("Turkey");
    assert!(turkey
        .mentions
        .iter()
        .any(|m| m.start == char_offset("Turkish world") && m.text == "Turkish"));
    assert_eq!(
        the("Pashinyan").mentions.len(),
        body.matches("Pashinyan").count()
    );
}

#[test]
fn sample_report() {
    let Some(body) = sample_body() else { return };
    let pipeline = Pipeline::new();
    let doc = Document {
        title: None,
        body: &body,
        declared_language: None,
    };
    let analysis = pipeline.analyze(&doc);
    let runs = 200;
    let t = Instant::now();
    for _ in 0..runs {
        std::hint::black_box(pipeline.analyze(std::hint::black_box(&doc)));
    }
    let per_doc = t.elapsed() / runs;
    eprintln!(
        "sample: {per_doc:?} per analysis; language {:?}",
        analysis.language
    );
    for e in &analysis.entities {
        eprintln!(
            "{:<28} {:<8} {:<18} mentions {:>2}  salience {:.3}  {:<7} {:.3}  evidence {:?}",
            e.name,
            e.entity_type.as_str(),
            e.entity_id,
            e.mentions.len(),
            e.salience,
            e.stance.label.as_str(),
            e.stance.score,
            e.stance
                .evidence
                .iter()
                .map(|ev| ev.sentence)
                .collect::<Vec<_>>()
        );
    }
    // The two-pass tagger takes about 3 ms for this ~900-token article on the development machine when idle
    // (the rule baseline took about 1 ms); the bound leaves room for the other tests running beside it and
    // still catches an accidental quadratic step.
    if !cfg!(debug_assertions) {
        assert!(per_doc.as_secs_f64() < 0.02, "{per_doc:?}");
    }
}

#[test]
fn offsets_hold_with_emoji_cjk_and_combining_accents() {
    let body =
        "🇹🇷 Erdoğan met Jose\u{301} Martí in 東京 👍🏽. Then Erdoğan’s aide, Mr. Zoë O’Brien, said \
                Cafe\u{301} Society was “great” 🎉. 北京 and Putin’s envoy Ахмед Кадыров came.";
    let title = Some("Erdoğan 👍🏽 meets Martí in 東京");
    let analysis = analyze(body, title);
    assert_offsets(&analysis, body, title);
    let names: Vec<&str> = analysis.entities.iter().map(|e| e.name.as_str()).collect();
    assert!(names.contains(&"Recep Tayyip Erdoğan"), "{names:?}");
    // Names are output in NFKC with typographic quotes folded, so that spellings of one name meet.
    assert!(names.contains(&"José Martí"), "{names:?}");
    assert!(names.contains(&"Zoë O'Brien"), "{names:?}");
    let erdogan = analysis
        .entities
        .iter()
        .find(|e| e.name == "Recep Tayyip Erdoğan")
        .unwrap();
    assert_eq!(erdogan.mentions[0].field, Field::Title);
}

#[test]
fn deterministic() {
    let body = sample_body().unwrap_or_else(|| {
        "Acme Corp said Bob Jones met Putin. Jones praised Russia but the IMF criticised Acme."
            .to_string()
    });
    let a = analyze(&body, Some("Putin and Erdogan"));
    let b = Pipeline::new().analyze(&Document {
        title: Some("Putin and Erdogan"),
        body: &body,
        declared_language: None,
    });
    assert_eq!(a, b);
    assert_eq!(
        serde_json::to_string(&a).unwrap(),
        serde_json::to_string(&b).unwrap()
    );
}

#[test]
fn empty_and_non_english_inputs() {
    let a = analyze("", None);
    assert!(a.entities.is_empty());
    assert_eq!(a.language.code, "und");
    assert!(a.warnings.is_empty(), "undetermined is not unsupported");
    let fr = analyze(
        "Le président Emmanuel Macron a reçu hier à Paris le chancelier allemand pour parler de l'Europe \
         et de la guerre en Ukraine, selon l'Élysée.",
        None,
    );
    assert_eq!(fr.language.code, "fr");
    assert!(fr.warnings.contains(&"unsupported_language".to_string()));
}
