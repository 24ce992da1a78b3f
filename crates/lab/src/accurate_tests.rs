//! Tests of accurate mode: the start-up error without base weights, the choice of sentences, and, when the
//! base weights (`scripts/fetch-minilm.sh`) and `../shared/data` are present, the dev targets of the issue,
//! batching across threads, and the pipeline's output contract in accurate mode.

use std::path::PathBuf;
use std::sync::OnceLock;

use crate::accurate_train as train;
use crate::data::read;
use crate::datasets::parse_newsmtsc;
use crate::stance_train::scores;
use nlp::accurate::pipeline::{select, Accurate, AccurateOptions, Reading};
use nlp::accurate::{
    bert, model, AccurateError, AccurateModel, SentenceTargets, EMBEDDED_ADAPTER, SETUP_SCRIPT,
};
use nlp::stance::MentionStance;
use nlp::{Document, Field, Pipeline, StanceLabel};

fn base_dir() -> PathBuf {
    PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../models/base/all-minilm-l6-v2"
    ))
}

/// The model over the base weights, loaded once per test binary; None (with the reason) when the weights
/// have not been fetched.
fn model() -> Option<&'static AccurateModel> {
    static MODEL: OnceLock<Option<AccurateModel>> = OnceLock::new();
    MODEL
        .get_or_init(|| {
            match AccurateModel::load(&base_dir(), EMBEDDED_ADAPTER, model::DEFAULT_MAX_TOKENS) {
                Ok(m) => Some(m),
                Err(e @ AccurateError::MissingBaseFile { .. }) => {
                    eprintln!("skipping: {e}");
                    None
                }
                Err(e) if EMBEDDED_ADAPTER.is_empty() => {
                    eprintln!("skipping: no adapter trained yet ({e})");
                    None
                }
                Err(e) => panic!("the base weights are there but do not load: {e}"),
            }
        })
        .as_ref()
}

#[test]
fn missing_base_weights_name_the_file_and_the_script() {
    let dir = tempfile::tempdir().unwrap();
    let err = AccurateModel::load(dir.path(), EMBEDDED_ADAPTER, 128)
        .err()
        .expect("no weights, no model");
    let msg = err.to_string();
    assert!(msg.contains("model.safetensors"), "{msg}");
    assert!(msg.contains(SETUP_SCRIPT), "{msg}");
}

fn reading(entity: usize, field: Field, sentence: usize, pronoun: bool) -> MentionStance {
    MentionStance {
        entity,
        field,
        sentence,
        sentence_tokens: 0..1,
        spans: std::iter::once(0..1).collect(),
        probs: [0.2, 0.6, 0.2],
        speaker: false,
        attributed: false,
        pronoun,
    }
}

#[test]
fn sentences_are_chosen_title_first_then_each_entity_in_turn() {
    let ms = vec![
        // Entity 0 in body sentences 0, 1, 2, 3 (3 by pronoun only); entity 1 in sentences 5 and 6 and the title.
        reading(0, Field::Body, 0, false),
        reading(0, Field::Body, 1, false),
        reading(0, Field::Body, 2, false),
        reading(0, Field::Body, 3, true),
        reading(1, Field::Title, 0, false),
        reading(1, Field::Body, 5, false),
        reading(1, Field::Body, 6, false),
    ];
    let sentence = |field, sentence| Reading {
        field,
        sentence,
        entity: None,
    };
    assert_eq!(
        select(&ms, 2, 4, false),
        vec![
            sentence(Field::Title, 0),
            sentence(Field::Body, 0),
            sentence(Field::Body, 5),
            sentence(Field::Body, 1)
        ]
    );
    // No cap: every sentence once, the pronoun-only one after the named ones of its entity.
    let all = select(&ms, 2, 0, false);
    assert_eq!(all.len(), 7);
    assert_eq!(all.last(), Some(&sentence(Field::Body, 3)));
}

#[test]
fn a_marked_adapter_reads_each_entity_of_a_shared_sentence_on_its_own_budget() {
    // Both entities in body sentences 0 and 1; entity 0 also in 2.
    let ms = vec![
        reading(0, Field::Body, 0, false),
        reading(1, Field::Body, 0, false),
        reading(0, Field::Body, 1, false),
        reading(1, Field::Body, 1, false),
        reading(0, Field::Body, 2, false),
    ];
    let pair = |sentence, entity| Reading {
        field: Field::Body,
        sentence,
        entity: Some(entity),
    };
    assert_eq!(
        select(&ms, 2, 3, true),
        vec![pair(0, 0), pair(0, 1), pair(1, 0)]
    );
    // Read per sentence, the same cap covers every sentence.
    assert_eq!(select(&ms, 2, 3, false).len(), 3);
    assert_eq!(select(&ms, 2, 0, true).len(), 5);
}

#[test]
fn newsmtsc_dev_targets_in_accurate_mode() {
    let Some(model) = model() else { return };
    for (file, target) in [("dev-rw.jsonl", 0.78), ("dev-mt.jsonl", 0.75)] {
        let Some(text) = read(&format!("newsmtsc/{file}")) else {
            return;
        };
        let sentences = parse_newsmtsc(&text).unwrap();
        let s = scores(&train::predict_mtsc(model, &sentences, 64).unwrap());
        eprintln!(
            "accurate {file}: F1m {:.4} accuracy {:.4}",
            s.f1m, s.accuracy
        );
        assert!(s.f1m >= target, "{file}: F1m {} below {target}", s.f1m);
    }
}

#[test]
fn a_target_reads_differently_from_its_neighbour() {
    let Some(model) = model() else { return };
    // Two targets of opposite stance in one sentence: two readings (one pass each with the marked adapter).
    let text = "Prosecutors praised Smith for his courage, while Jones was condemned as a liar and a fraud.";
    let span = |w: &str| {
        let start = text.find(w).unwrap();
        vec![(start, start + w.len())]
    };
    let probs = model
        .probabilities(
            &[SentenceTargets {
                text: text.into(),
                targets: vec![span("Smith"), span("Jones")],
            }],
            8,
        )
        .unwrap();
    let smith = probs[0][0].unwrap();
    let jones = probs[0][1].unwrap();
    eprintln!("smith {smith:?} jones {jones:?}");
    // favor minus against
    assert!(
        smith[2] - smith[0] > jones[2] - jones[0],
        "{smith:?} {jones:?}"
    );
}

#[test]
fn batching_across_threads_gives_the_single_sentence_readings() {
    let Some(model) = model() else { return };
    let Some(text) = read("newsmtsc/dev-mt.jsonl") else {
        return;
    };
    let sentences = parse_newsmtsc(&text).unwrap();
    let (inputs, _) = train::mtsc_targets(&sentences[..24]);
    let alone: Vec<_> = inputs
        .iter()
        .map(|s| model.probabilities(std::slice::from_ref(s), 1).unwrap())
        .collect();
    let accurate =
        Accurate::load(&base_dir(), AccurateOptions::default()).expect("weights are there");
    let batcher = accurate.batcher();
    std::thread::scope(|scope| {
        let handles: Vec<_> = inputs
            .chunks(3)
            .map(|chunk| scope.spawn(move || batcher.score(chunk.to_vec()).unwrap()))
            .collect();
        let batched: Vec<_> = handles
            .into_iter()
            .flat_map(|h| h.join().unwrap())
            .collect();
        assert_eq!(batched.len(), alone.len());
        for (b, a) in batched.iter().zip(&alone) {
            for (pb, pa) in b.iter().zip(&a[0]) {
                let (pb, pa) = (pb.unwrap(), pa.unwrap());
                for c in 0..3 {
                    assert!((pb[c] - pa[c]).abs() < 1e-3, "{pb:?} vs {pa:?}");
                }
            }
        }
    });
    let stats = batcher.stats();
    let batches = stats.batches.load(std::sync::atomic::Ordering::Relaxed);
    assert_eq!(
        stats.sentences.load(std::sync::atomic::Ordering::Relaxed),
        24
    );
    assert!((1..=8).contains(&batches), "{batches} batches");
}

#[test]
fn accurate_pipeline_keeps_the_output_contract() {
    if model().is_none() {
        return;
    }
    let accurate =
        Accurate::load(&base_dir(), AccurateOptions::default()).expect("weights are there");
    let pipeline = Pipeline::new().with_accurate(accurate);
    let body =
        "President Emmanuel Macron praised the agreement. Critics in Moscow condemned Macron's \
                plan as reckless. Vladimir Putin said the deal was a disgrace.";
    let title = "Macron hails summit deal";
    let analysis = pipeline.analyze(&Document {
        title: Some(title),
        body,
        declared_language: Some("en"),
    });
    assert!(analysis.warnings.is_empty(), "{:?}", analysis.warnings);
    let macron = analysis
        .entities
        .iter()
        .find(|e| e.name.contains("Macron"))
        .expect("Macron found");
    assert!(StanceLabel::ALL.contains(&macron.stance.label));
    assert!((0.0..=1.0).contains(&macron.stance.score));
    for e in &analysis.entities {
        for ev in &e.stance.evidence {
            let slice: String = body
                .chars()
                .skip(ev.start)
                .take(ev.end - ev.start)
                .collect();
            assert_eq!(ev.text, slice);
        }
    }
    assert!(accurate_stats_sentences(&pipeline) >= 2);
}

fn accurate_stats_sentences(p: &Pipeline) -> u64 {
    p.accurate()
        .expect("accurate mode")
        .batcher()
        .stats()
        .sentences
        .load(std::sync::atomic::Ordering::Relaxed)
}

/// The hand-written encoder gives candle-transformers' `BertModel`'s hidden states over the same weights, and
/// as a sentence embedder it puts sentences differing only in the verb close together and unrelated ones far
/// apart. Guards against a wiring mistake that fine-tuning would partly hide.
#[test]
fn base_encoder_matches_the_reference_embeddings() {
    use candle_core::{DType, Device, Tensor};
    if let Err(e) = model::check_base_dir(&base_dir()) {
        eprintln!("skipping: {e}");
        return;
    }
    let dir = base_dir();
    let device = Device::Cpu;
    let config = model::read_config(&dir).unwrap();
    let vb = candle_nn::VarBuilder::from_tensors(
        model::read_base(&dir, &device).unwrap(),
        DType::F32,
        &device,
    );
    let bert = bert::Bert::load(vb, &config).unwrap();
    let tokens = model::Tokens::load(&dir, 128).unwrap();
    let embed = |text: &str| -> Vec<f32> {
        let e = tokens
            .encode(&SentenceTargets {
                text: text.into(),
                targets: vec![],
            })
            .unwrap();
        let n = e.ids.len();
        let ids = Tensor::from_vec(e.ids.clone(), (1, n), &device).unwrap();
        let types = ids.zeros_like().unwrap();
        let mask = bert::attention_mask(&types.ones_like().unwrap()).unwrap();
        let h = bert
            .layers(&bert.embed(&ids, &types).unwrap(), &mask, 0, 6, None)
            .unwrap();
        let v: Vec<f32> = h.mean(1).unwrap().flatten_all().unwrap().to_vec1().unwrap();
        let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
        v.iter().map(|x| x / norm).collect()
    };
    // candle-transformers' BertModel over the same weights is the reference.
    let reference = candle_transformers::models::bert::BertModel::load(
        candle_nn::VarBuilder::from_tensors(
            model::read_base(&dir, &device).unwrap(),
            DType::F32,
            &device,
        ),
        &serde_json::from_str(&std::fs::read_to_string(dir.join("config.json")).unwrap()).unwrap(),
    )
    .unwrap();
    {
        let e = tokens
            .encode(&SentenceTargets {
                text: "X praised Y".into(),
                targets: vec![],
            })
            .unwrap();
        let n = e.ids.len();
        let ids = Tensor::from_vec(e.ids.clone(), (1, n), &device).unwrap();
        let types = ids.zeros_like().unwrap();
        let want: Vec<f32> = reference
            .forward(&ids, &types, None)
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1()
            .unwrap();
        let mask = bert::attention_mask(&types.ones_like().unwrap()).unwrap();
        let got: Vec<f32> = bert
            .layers(&bert.embed(&ids, &types).unwrap(), &mask, 0, 6, None)
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1()
            .unwrap();
        let diff = want
            .iter()
            .zip(&got)
            .map(|(a, b)| (a - b).abs())
            .fold(0f32, f32::max);
        eprintln!(
            "ids {:?}; largest difference from the reference {diff}",
            e.ids
        );
        assert!(diff < 1e-3, "{diff}");
    }
    let cos = |a: &[f32], b: &[f32]| a.iter().zip(b).map(|(x, y)| x * y).sum::<f32>();
    let praised = embed("X praised Y");
    let criticised = embed("X criticised Y");
    let other = embed("The weather in the mountains was cold and wet all week.");
    let close = cos(&praised, &criticised);
    let far = cos(&praised, &other);
    // 0.71 here: an embedder puts opposite verdicts close together, which is why it has to be fine-tuned.
    eprintln!("cosine praised/criticised {close:.3}, praised/weather {far:.3}");
    assert!(close > 0.6 && far < 0.3, "{close} {far}");
}

/// Articles per second through the accurate pipeline: the example articles repeated to 210, analysed by
/// two threads as the service's NLP workers would. Timing only, so ignored by default:
/// `cargo test --release --lib -- --ignored accurate_throughput --nocapture`.
#[test]
#[ignore]
fn accurate_throughput() {
    if model().is_none() {
        return;
    }
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../examples/articles.jsonl"
    ))
    .unwrap();
    let examples: Vec<(String, String)> = text
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            (
                v["title"].as_str().unwrap_or_default().to_string(),
                v["body"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let articles: Vec<&(String, String)> = examples.iter().cycle().take(210).collect();
    let options = AccurateOptions::default();
    let threads = std::env::var("THROUGHPUT_THREADS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2usize);
    let accurate = Accurate::load(&base_dir(), options.clone()).expect("weights are there");
    let pipeline = Pipeline::new().with_accurate(accurate);
    let analyze = |(title, body): &(String, String)| {
        pipeline.analyze(&Document {
            title: Some(title),
            body,
            declared_language: Some("en"),
        })
    };
    // Warm-up, so allocation and page faults of the first batches are not counted.
    for a in &examples[..2] {
        analyze(a);
    }
    let before = accurate_stats_sentences(&pipeline);
    let next = std::sync::atomic::AtomicUsize::new(0);
    let cpu_before = process_cpu_seconds();
    let start = std::time::Instant::now();
    std::thread::scope(|scope| {
        for _ in 0..threads {
            scope.spawn(|| loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let Some(a) = articles.get(i) else { break };
                analyze(a);
            });
        }
    });
    let secs = start.elapsed().as_secs_f64();
    let cpu = process_cpu_seconds() - cpu_before;
    let sentences = accurate_stats_sentences(&pipeline) - before;
    let stats = pipeline.accurate().unwrap().batcher().stats();
    eprintln!(
        "accurate throughput ({threads} threads, max_sentences {}, max_batch {}): {} articles in {secs:.2} s = \
         {:.1} articles/s, {:.1} sentences/s ({sentences} sentences, {} batches); {:.1} ms CPU an article",
        options.max_sentences,
        options.max_batch,
        articles.len(),
        articles.len() as f64 / secs,
        sentences as f64 / secs,
        stats.batches.load(std::sync::atomic::Ordering::Relaxed),
        1000.0 * cpu / articles.len() as f64,
    );
}

/// User and system CPU time of this process so far (from /proc, in clock ticks of 10 ms): beside wall
/// time, a figure that others' work on the same cores disturbs less.
fn process_cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let fields: Vec<&str> = stat
        .rsplit(')')
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    // utime and stime are the 14th and 15th fields, the 12th and 13th after the command name.
    (ticks(11) + ticks(12)) / 100.0
}

/// The packed inference path gives the padded training path's hidden states and target features, over a
/// batch of sentences of different lengths, and its erf is libm's to float precision.
#[test]
fn packed_inference_matches_the_padded_path() {
    let Some(model) = model() else { return };
    let Some(text) = read("newsmtsc/dev-mt.jsonl") else {
        return;
    };
    for i in -800..=800 {
        let x = i as f32 / 100.0;
        let want = libm_erf(x);
        assert!(
            (bert::erf(x) - want).abs() < 1e-6,
            "erf({x}) {} vs {want}",
            bert::erf(x)
        );
    }
    let sentences = parse_newsmtsc(&text).unwrap();
    let (inputs, _) = train::mtsc_targets(&sentences[..12]);
    let encoded: Vec<model::Encoded> = inputs
        .iter()
        .map(|s| model.tokens.encode(s).unwrap())
        .collect();
    let batch: Vec<&model::Encoded> = encoded.iter().collect();
    let device = candle_core::Device::Cpu;
    let (ids, types, valid) = model::batch_tensors(&batch, &device).unwrap();
    let mask = bert::attention_mask(&valid).unwrap();
    let n_layers = model.bert.layers.len();
    let padded = model
        .bert
        .layers(
            &model.bert.embed(&ids, &types).unwrap(),
            &mask,
            0,
            n_layers,
            None,
        )
        .unwrap();
    let lens: Vec<usize> = batch.iter().map(|e| e.ids.len()).collect();
    let flat_ids: Vec<u32> = batch.iter().flat_map(|e| e.ids.clone()).collect();
    let flat_types: Vec<u32> = batch.iter().flat_map(|e| e.types.clone()).collect();
    let packed = model
        .packed
        .forward(&model.bert, &flat_ids, &flat_types, &lens, None)
        .unwrap();
    let padded_rows: Vec<Vec<Vec<f32>>> = padded.to_vec3().unwrap();
    let packed_rows: Vec<Vec<f32>> = packed.to_vec2().unwrap();
    let mut diff = 0f32;
    let mut r = 0;
    for (b, &len) in lens.iter().enumerate() {
        for row in &padded_rows[b][..len] {
            for (x, y) in row.iter().zip(&packed_rows[r]) {
                diff = diff.max((x - y).abs());
            }
            r += 1;
        }
    }
    let features =
        |t: candle_core::Tensor| -> Vec<f32> { t.flatten_all().unwrap().to_vec1().unwrap() };
    let a = features(model::target_features(&padded, &batch).unwrap());
    let keep: Vec<Vec<usize>> = batch.iter().map(|e| model::head_rows(e)).collect();
    let kept = model
        .packed
        .forward(&model.bert, &flat_ids, &flat_types, &lens, Some(&keep))
        .unwrap();
    let b = features(model::kept_target_features(&kept, &batch, &keep).unwrap());
    assert_eq!(a.len(), b.len());
    let fdiff = a
        .iter()
        .zip(&b)
        .map(|(x, y)| (x - y).abs())
        .fold(0f32, f32::max);
    eprintln!("lengths {lens:?}: largest hidden difference {diff}, feature difference {fdiff}");
    assert!(diff < 1e-4 && fdiff < 1e-4, "{diff} {fdiff}");
}

/// erf in double precision (the C library's), as the reference.
fn libm_erf(x: f32) -> f32 {
    extern "C" {
        fn erf(x: f64) -> f64;
    }
    // SAFETY: a pure function of a double.
    unsafe { erf(x as f64) as f32 }
}
