//! Fuzzing the NLP over feed-shaped text: the fuzzer's bytes are a perturbation mask, a seed and a text (a
//! title line, then the body); the text is mangled as feeds mangle news (`lab::feeds`) and analysed, and the
//! analysis must hold what the output contract promises (spans quote the text, names and ids bounded and
//! clean). A panic or a broken promise is a crash the fuzzer keeps. Seeded with real articles (`.ci/run`
//! writes the corpus from examples/ and ../shared/data).

#![no_main]

use std::sync::OnceLock;

use lab::feeds::{check_analysis, perturb, PERTURBATIONS};
use libfuzzer_sys::fuzz_target;
use nlp::{Document, Pipeline};

fn pipeline() -> &'static Pipeline {
    static PIPELINE: OnceLock<Pipeline> = OnceLock::new();
    PIPELINE.get_or_init(Pipeline::new)
}

fuzz_target!(|data: &[u8]| {
    let Some((head, text)) = data.split_first_chunk::<4>() else {
        return;
    };
    let mask = u32::from(u16::from_le_bytes([head[0], head[1]])) % (1 << PERTURBATIONS.len());
    let seed = u64::from(u16::from_le_bytes([head[2], head[3]]));
    let text = String::from_utf8_lossy(text);
    let (title, body) = text.split_once('\n').unwrap_or(("", &text));
    let (title, body) = (perturb(title, mask, seed), perturb(body, mask, seed + 1));
    let title = Some(title.as_str()).filter(|t| !t.trim().is_empty());
    let analysis = pipeline().analyze(&Document {
        title,
        body: &body,
        declared_language: None,
    });
    if let Err(broken) = check_analysis(title, &body, &analysis) {
        panic!("{broken}");
    }
});
