//! Measuring article stance on PerSenT through the whole pipeline: each article analysed (by several threads,
//! as the service does; in accurate mode that is what lets the transformer batch across articles), its target
//! found among the entities, the verdict scored against the gold label.

use std::io::Write;
use std::sync::atomic::{AtomicUsize, Ordering};

use nlp::stance::MentionStance;
use nlp::{Analysis, Document, Pipeline, StanceLabel};

use crate::datasets::PersentArticle;

/// The detailed analyses of PerSenT articles, in order, from `workers` threads pulling the next article; None
/// for an article the pipeline panicked on (reported on stderr).
pub fn analyse_all(
    pipeline: &Pipeline,
    articles: &[PersentArticle],
    workers: usize,
) -> Vec<Option<(Analysis, Vec<MentionStance>)>> {
    let next = AtomicUsize::new(0);
    let mut results: Vec<Option<_>> = (0..articles.len()).map(|_| None).collect();
    let done = std::sync::Mutex::new(&mut results);
    std::thread::scope(|scope| {
        for _ in 0..workers {
            scope.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(a) = articles.get(i) else { break };
                let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    pipeline.analyze_detailed(&Document {
                        title: Some(a.title.as_str()).filter(|t| !t.trim().is_empty()),
                        body: &a.document,
                        declared_language: Some("en"),
                    })
                }));
                if r.is_err() {
                    // The panic message went to stderr already; say which article, and go on.
                    let _ = writeln!(
                        std::io::stderr(),
                        "article {} (target {:?}) failed in the pipeline; counted as wrong",
                        i + 1,
                        a.target
                    );
                }
                done.lock().unwrap_or_else(|p| p.into_inner())[i] = Some(r.ok());
            });
        }
    });
    results
        .into_iter()
        .map(|r| r.expect("every article analysed"))
        .collect()
}

/// A label different from `gold`, for scoring an article whose target was not found as wrong.
pub fn wrong_for(gold: StanceLabel) -> StanceLabel {
    if gold == StanceLabel::Neutral {
        StanceLabel::Favor
    } else {
        StanceLabel::Neutral
    }
}
