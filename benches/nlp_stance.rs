//! Stance scoring time per article beside the entity step it follows, over `examples/articles.jsonl`.
//!
//! The budget is that stance adds at most half the entity time: `entities` (tokenise, find and merge entities),
//! `stance` (the model over every mention sentence, aggregation, relations) and `analyze` (the whole
//! pipeline) are measured per article, on the same text, so the three figures can be compared directly.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use stancewatch::nlp::kb::KnowledgeBase;
use stancewatch::nlp::lexicon::Lexicon;
use stancewatch::nlp::text::TextView;
use stancewatch::nlp::{entities, ner, relations, stance, Document, Pipeline};

const ARTICLES: &str = include_str!("../examples/articles.jsonl");

fn articles() -> Vec<(Option<String>, String)> {
    ARTICLES
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).expect("example is JSON");
            (
                v["title"].as_str().map(str::to_string),
                v["body"].as_str().expect("example has a body").to_string(),
            )
        })
        .collect()
}

fn bench(c: &mut Criterion) {
    let docs = articles();
    let n = docs.len();
    let kb = KnowledgeBase::embedded();
    let recogniser =
        entities::Recogniser::new(&kb, ner::Tagger::embedded(&kb).expect("embedded NER model"));
    let lexicon = Lexicon::embedded();
    let model = stance::embedded_model();
    let pipeline = Pipeline::new();
    let views: Vec<(Option<TextView<'_>>, TextView<'_>)> = docs
        .iter()
        .map(|(t, b)| (t.as_deref().map(TextView::new), TextView::new(b)))
        .collect();
    let found: Vec<_> = views
        .iter()
        .map(|(t, b)| entities::find(&kb, &recogniser, b, t.as_ref()))
        .collect();

    let mut group = c.benchmark_group("nlp");
    // Each iteration runs every example article once; throughput is articles per second.
    group.throughput(Throughput::Elements(n as u64));
    group.bench_function("entities", |bench| {
        bench.iter(|| {
            for (title, body) in &docs {
                let b = TextView::new(body);
                let t = title.as_deref().map(TextView::new);
                black_box(entities::find(&kb, &recogniser, &b, t.as_ref()));
            }
        })
    });
    group.bench_function("stance", |bench| {
        bench.iter(|| {
            for ((t, b), es) in views.iter().zip(&found) {
                let mut es = es.clone();
                let ms = stance::score(&lexicon, &model, b, t.as_ref(), &mut es);
                black_box(relations::find(&lexicon, b, &es, &ms));
            }
        })
    });
    group.bench_function("analyze", |bench| {
        bench.iter(|| {
            for (title, body) in &docs {
                black_box(pipeline.analyze(&Document {
                    title: title.as_deref(),
                    body,
                    declared_language: None,
                }));
            }
        })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
