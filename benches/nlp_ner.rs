//! Entity-recognition speed on one thread, in tokens per second: the CoNLL-2003 development tokens when
//! `../shared/data` is present (as `stancewatch eval ner` tags them), else the example articles through the
//! same tagger, tokenised as the pipeline tokenises them.

use std::borrow::Cow;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use lab::conll;
use stancewatch::nlp::kb::KnowledgeBase;
use stancewatch::nlp::ner::{Tagger, TaggerInput};
use stancewatch::nlp::text::TextView;

const TESTA: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../shared/data/conll2003/eng.testa"
);
const EXAMPLES: &str = include_str!("../examples/articles.jsonl");

fn example_inputs() -> Vec<TaggerInput<'static>> {
    EXAMPLES
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).expect("examples are JSON");
            let body = v["body"].as_str().unwrap_or_default().to_string();
            let view = TextView::new(&body);
            let tokens: Vec<Cow<'static, str>> = view
                .tokens()
                .iter()
                .map(|t| Cow::Owned(t.norm.clone()))
                .collect();
            let sentences = view.sentences().iter().map(|s| s.tokens.clone()).collect();
            TaggerInput::new(tokens, sentences).expect("view sentences tile its tokens")
        })
        .collect()
}

fn bench(c: &mut Criterion) {
    let kb = KnowledgeBase::embedded();
    let tagger = Tagger::embedded(&kb).expect("embedded model loads");
    let text = std::fs::read_to_string(TESTA).ok();
    let inputs: Vec<TaggerInput<'_>> = match &text {
        Some(t) => conll::parse(t)
            .expect("testa parses")
            .into_iter()
            .map(|d| d.input)
            .collect(),
        None => {
            eprintln!("{TESTA} not found: measuring examples/articles.jsonl instead");
            example_inputs()
        }
    };
    let tokens: usize = inputs.iter().map(|i| i.len()).sum();
    let name = if text.is_some() {
        "ner_conll_testa"
    } else {
        "ner_examples"
    };
    let mut group = c.benchmark_group("nlp_ner");
    group.throughput(Throughput::Elements(tokens as u64));
    group.sample_size(20);
    group.bench_function(name, |b| {
        b.iter(|| {
            for input in &inputs {
                std::hint::black_box(tagger.tag(std::hint::black_box(input)));
            }
        })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
