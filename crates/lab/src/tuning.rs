//! The search over the hand-set aggregation of mention readings into an article verdict (weights of title,
//! lead, quoted and pronoun sentences; the two thresholds) and the refit of the small summary aggregator, both
//! cross-validated on PerSenT; `eval persent --tune` prints the report.

use std::fmt::Write as _;

use nlp::stance::{self, MentionStance};
use nlp::StanceLabel;

use crate::evaluation::wrong_for;
use crate::stance_train::scores;

/// Grid search of the aggregation parameters for macro-F1, reported with 5-fold cross-validated figures so
/// that the gain from tuning on the same file can be told apart from a real one.
/// The report of the search, as text.
pub fn tune_aggregation(details: &[(StanceLabel, Vec<MentionStance>)]) -> String {
    let mut report = String::new();
    use stance::aggregate::{decide, mean_probs, Params};
    let grid = || {
        let mut out = Vec::new();
        for attributed_weight in [0.25f32, 0.5, 1.0] {
            for pronoun_weight in [0.0f32, 0.5, 1.0] {
                for title_weight in [1.0f32, 2.0, 4.0] {
                    for lead_weight in [1.0f32, 2.0] {
                        for f in [0.0f32, 0.05, 0.1, 0.15, 0.2, 0.3] {
                            for a in [-0.4f32, -0.3, -0.2, -0.15, -0.1, -0.05] {
                                out.push(Params {
                                    attributed_weight,
                                    pronoun_weight,
                                    title_weight,
                                    lead_weight,
                                    favor_threshold: f,
                                    against_threshold: a,
                                    ..Params::TUNED
                                });
                            }
                        }
                    }
                }
            }
        }
        out
    };
    let f1_of = |p: &Params, idx: &mut dyn Iterator<Item = usize>| {
        let pairs: Vec<(StanceLabel, StanceLabel)> = idx
            .map(|i| {
                let (gold, ms) = &details[i];
                let refs: Vec<&MentionStance> = ms.iter().collect();
                let label = match mean_probs(p, &refs) {
                    Some(mean) => decide(p, mean).0,
                    None => wrong_for(*gold),
                };
                (*gold, label)
            })
            .collect();
        scores(&pairs).f1m
    };
    let grid = grid();
    let n = details.len();
    let best = |train: &dyn Fn(usize) -> bool| -> Params {
        let mut best = (Params::TUNED, f64::NEG_INFINITY);
        for p in &grid {
            let f = f1_of(p, &mut (0..n).filter(|&i| train(i)));
            if f > best.1 {
                best = (*p, f);
            }
        }
        best.0
    };
    let mut cv_pairs_f1 = Vec::new();
    for fold in 0..5 {
        let p = best(&|i| i % 5 != fold);
        cv_pairs_f1.push(f1_of(&p, &mut (0..n).filter(|&i| i % 5 == fold)));
    }
    let p = best(&|_| true);
    let _ = writeln!(
        report,
        "thresholds tuned on all: F1m {:.4} with {p:?}; 5-fold cross-validated F1m {:.4} (folds {:?}); current {:.4}",
        f1_of(&p, &mut (0..n)),
        cv_pairs_f1.iter().sum::<f64>() / 5.0,
        cv_pairs_f1.iter().map(|x| (x * 1000.0).round() / 1000.0).collect::<Vec<_>>(),
        f1_of(&Params::TUNED, &mut (0..n)),
    );
    // Fast mode's thresholds alone, its other weights fixed: the best pairs, to choose among near-ties.
    let mut table = Vec::new();
    for f in [0.0f32, 0.01, 0.02, 0.03, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3] {
        for a in [-0.4f32, -0.3, -0.25, -0.2, -0.15, -0.1, -0.05] {
            let p = Params {
                favor_threshold: f,
                against_threshold: a,
                ..Params::FAST
            };
            table.push((f1_of(&p, &mut (0..n)), f, a));
        }
    }
    table.sort_by(|x, y| y.0.total_cmp(&x.0));
    let top: Vec<String> = table
        .iter()
        .take(20)
        .map(|(f1, f, a)| format!("favor > {f}, against < {a}: {f1:.4}"))
        .collect();
    let _ = writeln!(
        report,
        "fast weights, thresholds by F1m (current: favor > {}, against < {}: {:.4}):\n  {}",
        Params::FAST.favor_threshold,
        Params::FAST.against_threshold,
        f1_of(&Params::FAST, &mut (0..n)),
        top.join("\n  ")
    );

    // The fitted aggregator, over the summaries with the current weights; articles without the target
    // stay wrong in the figures.
    use stance::aggregate::{aggregator_probs, fit_aggregator, summary, SUMMARY};
    let xs: Vec<Option<[f32; SUMMARY]>> = details
        .iter()
        .map(|(_, ms)| summary(&Params::TUNED, &ms.iter().collect::<Vec<_>>()))
        .collect();
    let ys: Vec<usize> = details
        .iter()
        .map(|(g, _)| stance::classes::class_of(*g))
        .collect();
    for l2 in [0.0f32, 0.01, 0.1] {
        let fit = |train: &dyn Fn(usize) -> bool| {
            let (x, y): (Vec<[f32; SUMMARY]>, Vec<usize>) = (0..n)
                .filter(|&i| train(i))
                .filter_map(|i| xs[i].map(|x| (x, ys[i])))
                .unzip();
            fit_aggregator(&x, &y, l2)
        };
        let pairs_of = |w: &[[f32; SUMMARY]; 3], idx: &mut dyn Iterator<Item = usize>| {
            idx.map(|i| {
                let gold = details[i].0;
                let pred = xs[i].map_or(wrong_for(gold), |x| {
                    stance::classes::label_of(stance::classes::argmax(&aggregator_probs(w, &x)))
                });
                (gold, pred)
            })
            .collect::<Vec<_>>()
        };
        let mut cv = Vec::new();
        for fold in 0..5 {
            let w = fit(&|i| i % 5 != fold);
            cv.extend(pairs_of(&w, &mut (0..n).filter(|&i| i % 5 == fold)));
        }
        let w = fit(&|_| true);
        let all = scores(&pairs_of(&w, &mut (0..n)));
        let _ = writeln!(
            report,
            "aggregator l2 {l2}: F1m {:.4} on all, 5-fold cross-validated F1m {:.4}; weights {:?}",
            all.f1m,
            scores(&cv).f1m,
            w.map(|r| r.map(|x| (x * 1000.0).round() / 1000.0))
        );
    }
    report
}
