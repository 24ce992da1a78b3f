//! Fitting the article model of `nlp::stance::article`: a class-weighted multinomial logistic regression with an
//! L2 penalty over standardised features, 5-fold cross-validation with a fixed, committed split (nested: the
//! Platt calibration of each outer fold is fitted on out-of-fold predictions of its training articles), and
//! the calibration error and reliability table of the cross-validated scores. Deterministic; no I/O (the
//! caller reads the data, runs the pipeline and writes the weights file).

// Class- and feature-indexed arithmetic over small fixed arrays reads clearer with indices.
#![allow(clippy::needless_range_loop)]

use nlp::lexicon::Lexicon;
use nlp::stance::article::{self, ArticleModel, FEATURES, FEATURE_NAMES};
use nlp::stance::classes::class_of;
use nlp::stance::MentionStance;
use nlp::text::TextView;
use nlp::{Analysis, Document, Pipeline, StanceLabel};

use crate::calibration::{ece, reliability_text, Bin};
use crate::datasets::{find_target, PersentArticle};

/// The committed 5-fold split of PerSenT dev (stratified by label, seeded; columns index, document index,
/// label, fold): every model choice is made by cross-validation over these folds.
pub const PERSENT_DEV_FOLDS: &str = include_str!("../data/persent-folds.tsv");

/// Hand-written cases the training learns from (`"split": "train"`) or only reports on (`"check"`): harm done to
/// an entity ("strikes left Kyiv without heat"), places mentioned in passing, sides taken. JSON Lines with
/// `entity`, `label`, `title`, `body`, `kind`, `split`.
pub const CASES: &str = include_str!("../data/article-cases.jsonl");

/// The article model's features for entity `target` of an analysed article.
pub fn target_features(
    lexicon: &Lexicon,
    title: Option<&str>,
    body: &str,
    mentions: &[MentionStance],
    target: usize,
) -> [f32; FEATURES] {
    let body = TextView::new(body);
    let title = title.map(TextView::new);
    let paragraph_of = article::paragraphs(&body);
    let contexts = article::contexts(lexicon, &body, title.as_ref(), &paragraph_of, mentions);
    let mine: Vec<(&MentionStance, &article::ReadingContext)> = mentions
        .iter()
        .zip(&contexts)
        .filter(|(m, _)| m.entity == target)
        .collect();
    article::features(&mine)
}

/// The training rows of analysed PerSenT articles (None where the pipeline failed or the target was not
/// found: a wrong answer in the figures), and the gold classes.
pub fn persent_rows(
    lexicon: &Lexicon,
    articles: &[PersentArticle],
    analysed: &[Option<(Analysis, Vec<MentionStance>)>],
) -> (Vec<Option<Row>>, Vec<usize>) {
    let mut rows = Vec::with_capacity(articles.len());
    let mut gold = Vec::with_capacity(articles.len());
    for (a, analysed) in articles.iter().zip(analysed) {
        let y = class_of(a.label);
        gold.push(y);
        let title = Some(a.title.as_str()).filter(|t| !t.trim().is_empty());
        rows.push(analysed.as_ref().and_then(|(analysis, mentions)| {
            find_target(&analysis.entities, &a.target).map(|t| Row {
                x: target_features(lexicon, title, &a.document, mentions, t),
                y,
                weight: 1.0,
            })
        }));
    }
    (rows, gold)
}

/// A hand-written case, read by the pipeline.
#[derive(Debug, Clone)]
pub struct Case {
    pub kind: String,
    pub entity: String,
    pub label: StanceLabel,
    /// Learnt from (true) or only reported on.
    pub train: bool,
    /// None when the pipeline did not find the entity.
    pub row: Option<Row>,
}

/// The rows the article model learns from among `cases`: the training split's, where the pipeline found
/// the entity.
pub fn training_rows(cases: &[Case]) -> Vec<Row> {
    cases
        .iter()
        .filter(|c| c.train)
        .filter_map(|c| c.row)
        .collect()
}

/// The cases of `text` (see [`CASES`]) read by `pipeline`, their rows weighted `weight`.
pub fn cases(
    pipeline: &Pipeline,
    lexicon: &Lexicon,
    text: &str,
    weight: f32,
) -> Result<Vec<Case>, String> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let v: serde_json::Value =
            serde_json::from_str(line).map_err(|e| format!("line {}: {e}", i + 1))?;
        let s = |k: &str| v[k].as_str().unwrap_or("").to_string();
        let label = match s("label").as_str() {
            "favor" => StanceLabel::Favor,
            "against" => StanceLabel::Against,
            "neutral" => StanceLabel::Neutral,
            other => return Err(format!("line {}: label {other:?}", i + 1)),
        };
        let (title, body) = (s("title"), s("body"));
        let title = Some(title.as_str()).filter(|t| !t.is_empty());
        let (analysis, mentions) = pipeline.analyze_detailed(&Document {
            title,
            body: &body,
            declared_language: Some("en"),
        });
        let row = find_target(&analysis.entities, &s("entity")).map(|t| Row {
            x: target_features(lexicon, title, &body, &mentions, t),
            y: class_of(label),
            weight,
        });
        out.push(Case {
            kind: s("kind"),
            entity: s("entity"),
            label,
            train: s("split") != "check",
            row,
        });
    }
    Ok(out)
}

/// One training example: an entity's features and the article's label toward it (0 against, 1 neutral,
/// 2 favor), with a sample weight.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Row {
    pub x: [f32; FEATURES],
    pub y: usize,
    pub weight: f32,
}

/// What is fitted and how.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct Settings {
    /// Inverse L2 strength, as scikit-learn's `C`: the penalty is |W|² / (2 C) against the summed,
    /// weighted log-loss.
    pub c: f32,
    /// Class weights are (n / (3 n_class)) to this power: 0 none, 1 balanced.
    pub class_power: f32,
    /// Sample weight of the hand-written cases (harm done to an entity, places in passing, sides taken).
    pub cases_weight: f32,
}

impl Default for Settings {
    /// The settings chosen by cross-validation on PerSenT dev over the committed folds (docs/models.md).
    fn default() -> Self {
        Settings {
            c: 0.1,
            class_power: 0.5,
            cases_weight: 1.0,
        }
    }
}

/// Fits the regression on `rows` (standardised by their own weighted mean and spread).
pub fn fit(rows: &[Row], s: &Settings) -> ArticleModel {
    let mut mean = [0f64; FEATURES];
    let mut sq = [0f64; FEATURES];
    let total: f64 = rows
        .iter()
        .map(|r| f64::from(r.weight))
        .sum::<f64>()
        .max(1e-9);
    for r in rows {
        for k in 0..FEATURES {
            mean[k] += f64::from(r.weight) * f64::from(r.x[k]);
            sq[k] += f64::from(r.weight) * f64::from(r.x[k]).powi(2);
        }
    }
    let mean: Vec<f32> = mean.iter().map(|m| (m / total) as f32).collect();
    let scale: Vec<f32> = (0..FEATURES)
        .map(|k| {
            let m = f64::from(mean[k]);
            (((sq[k] / total) - m * m).max(0.0).sqrt() + 1e-6) as f32
        })
        .collect();
    let xs: Vec<[f64; FEATURES + 1]> = rows
        .iter()
        .map(|r| {
            let mut z = [1f64; FEATURES + 1];
            for k in 0..FEATURES {
                z[k + 1] = f64::from((r.x[k] - mean[k]) / scale[k]);
            }
            z
        })
        .collect();
    let mut counts = [0f64; 3];
    for r in rows {
        counts[r.y] += f64::from(r.weight);
    }
    let cw: Vec<f64> = counts
        .iter()
        .map(|&c| (total / (3.0 * c.max(1e-9))).powf(f64::from(s.class_power)))
        .collect();
    let sw: Vec<f64> = rows.iter().map(|r| f64::from(r.weight) * cw[r.y]).collect();
    let n_eff: f64 = sw.iter().sum::<f64>().max(1e-9);
    // Mean loss + |W|² / (2 C n_eff): the same optimum as scikit-learn's C-scaled sum.
    let l2 = 1.0 / (f64::from(s.c) * n_eff);
    let mut w = [[0f64; FEATURES + 1]; 3];
    let mut v = [[0f64; FEATURES + 1]; 3];
    // Nesterov-accelerated gradient descent; the problem is small, smooth and convex.
    let lr = 0.2;
    let momentum = 0.9;
    for _ in 0..4000 {
        let mut look = w;
        for c in 0..3 {
            for k in 0..=FEATURES {
                look[c][k] += momentum * v[c][k];
            }
        }
        let mut g = [[0f64; FEATURES + 1]; 3];
        for (x, (r, &wt)) in xs.iter().zip(rows.iter().zip(&sw)) {
            let p = softmax64(&look, x);
            for c in 0..3 {
                let d = (p[c] - if c == r.y { 1.0 } else { 0.0 }) * wt / n_eff;
                for k in 0..=FEATURES {
                    g[c][k] += d * x[k];
                }
            }
        }
        for c in 0..3 {
            for k in 1..=FEATURES {
                g[c][k] += l2 * look[c][k];
            }
            for k in 0..=FEATURES {
                v[c][k] = momentum * v[c][k] - lr * g[c][k];
                w[c][k] += v[c][k];
            }
        }
    }
    ArticleModel {
        features: FEATURE_NAMES.iter().map(|s| s.to_string()).collect(),
        mean,
        scale,
        weights: w
            .iter()
            .map(|r| r.iter().map(|&x| x as f32).collect())
            .collect(),
        platt: [1.0, 0.0],
        note: serde_json::Value::Null,
    }
}

fn softmax64(w: &[[f64; FEATURES + 1]; 3], x: &[f64; FEATURES + 1]) -> [f64; 3] {
    let mut z = [0f64; 3];
    for c in 0..3 {
        z[c] = w[c].iter().zip(x).map(|(a, b)| a * b).sum();
    }
    let m = z.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let e: Vec<f64> = z.iter().map(|v| (v - m).exp()).collect();
    let s: f64 = e.iter().sum();
    [e[0] / s, e[1] / s, e[2] / s]
}

/// Platt scaling: (a, b) of sigmoid(a z + b) fitted to `correct` by Newton's method on the log-loss (a
/// tiny ridge keeps it finite when the classes separate).
pub fn platt(z: &[f32], correct: &[bool]) -> [f32; 2] {
    let (mut a, mut b) = (1f64, 0f64);
    for _ in 0..100 {
        let (mut ga, mut gb, mut haa, mut hab, mut hbb) = (1e-4 * a, 1e-4 * b, 1e-4, 0.0, 1e-4);
        for (&z, &y) in z.iter().zip(correct) {
            let z = f64::from(z);
            let p = 1.0 / (1.0 + (-(a * z + b)).exp());
            let d = p - f64::from(u8::from(y));
            ga += d * z;
            gb += d;
            let h = (p * (1.0 - p)).max(1e-12);
            haa += h * z * z;
            hab += h * z;
            hbb += h;
        }
        let det = haa * hbb - hab * hab;
        if det.abs() < 1e-18 {
            break;
        }
        let da = (hbb * ga - hab * gb) / det;
        let db = (haa * gb - hab * ga) / det;
        a -= da;
        b -= db;
        if da.abs() + db.abs() < 1e-10 {
            break;
        }
    }
    [a as f32, b as f32]
}

/// A model's label for a row and its log-probability.
fn label_and_z(m: &ArticleModel, x: &[f32; FEATURES]) -> (usize, f32, [f32; 3]) {
    let p = m.probs(x);
    let c = nlp::stance::classes::argmax(&p);
    (c, p[c].max(1e-6).ln(), p)
}

/// Fits on `train` (article rows and the extra rows) and calibrates with Platt over out-of-fold predictions
/// of the training articles, the folds being those of `fold` other than the held-out one.
fn fit_calibrated(
    rows: &[Option<Row>],
    fold: &[usize],
    train: &dyn Fn(usize) -> bool,
    extra: &[Row],
    s: &Settings,
) -> ArticleModel {
    let pick = |f: &dyn Fn(usize) -> bool| -> Vec<Row> {
        rows.iter()
            .enumerate()
            .filter(|&(i, _)| f(i))
            .filter_map(|(_, r)| *r)
            .chain(extra.iter().copied())
            .collect()
    };
    let mut model = fit(&pick(&|i| train(i)), s);
    let inner: Vec<usize> = {
        let mut f: Vec<usize> = (0..rows.len())
            .filter(|&i| train(i))
            .map(|i| fold[i])
            .collect();
        f.sort_unstable();
        f.dedup();
        f
    };
    let (mut z, mut correct) = (Vec::new(), Vec::new());
    for &k in &inner {
        let m = fit(&pick(&|i| train(i) && fold[i] != k), s);
        for (i, r) in rows.iter().enumerate() {
            if let Some(r) = r.filter(|_| train(i) && fold[i] == k) {
                let (c, lz, _) = label_and_z(&m, &r.x);
                z.push(lz);
                correct.push(c == r.y);
            }
        }
    }
    model.platt = platt(&z, &correct);
    model
}

/// Cross-validated figures of one setting.
#[derive(Debug, Clone, serde::Serialize)]
pub struct CvReport {
    pub settings: Settings,
    pub f1m: Vec<f64>,
    pub accuracy: Vec<f64>,
    /// Accuracy of always answering the fold's most frequent label.
    pub majority: Vec<f64>,
    pub ece: Vec<f64>,
    /// Over all articles' out-of-fold predictions.
    pub pooled_ece: f64,
    pub reliability: Vec<Bin>,
    /// Out-of-fold (label, score) per article; a target not found is a wrong answer with score 0.5.
    #[serde(skip)]
    pub predictions: Vec<(usize, f64)>,
}

pub fn mean_sd(v: &[f64]) -> (f64, f64) {
    let n = v.len().max(1) as f64;
    let m = v.iter().sum::<f64>() / n;
    (
        m,
        (v.iter().map(|x| (x - m).powi(2)).sum::<f64>() / n).sqrt(),
    )
}

/// Macro-F1 over the three classes of (gold, predicted) pairs.
pub fn macro_f1(pairs: &[(usize, usize)]) -> f64 {
    (0..3)
        .map(|c| {
            let tp = pairs.iter().filter(|&&(g, p)| g == c && p == c).count() as f64;
            let fp = pairs.iter().filter(|&&(g, p)| g != c && p == c).count() as f64;
            let fn_ = pairs.iter().filter(|&&(g, p)| g == c && p != c).count() as f64;
            if tp == 0.0 {
                0.0
            } else {
                2.0 * tp / (2.0 * tp + fp + fn_)
            }
        })
        .sum::<f64>()
        / 3.0
}

/// 5-fold (or as many folds as `fold` names) cross-validation over the PerSenT rows (`None`: the target was
/// not found, counted wrong) with the extra rows in every training set. Labels are `gold`.
pub fn cross_validate(
    rows: &[Option<Row>],
    gold: &[usize],
    fold: &[usize],
    extra: &[Row],
    s: &Settings,
) -> CvReport {
    let k_max = fold.iter().copied().max().map_or(0, |k| k + 1);
    let mut predictions = vec![(0usize, 0.5f64); rows.len()];
    let mut report = CvReport {
        settings: *s,
        f1m: Vec::new(),
        accuracy: Vec::new(),
        majority: Vec::new(),
        ece: Vec::new(),
        pooled_ece: 0.0,
        reliability: Vec::new(),
        predictions: Vec::new(),
    };
    for k in 0..k_max {
        let model = fit_calibrated(rows, fold, &|i| fold[i] != k, extra, s);
        let test: Vec<usize> = (0..rows.len()).filter(|&i| fold[i] == k).collect();
        for &i in &test {
            predictions[i] = match &rows[i] {
                Some(r) => {
                    let (c, _, p) = label_and_z(&model, &r.x);
                    (c, f64::from(model.score(&p, c)))
                }
                None => (if gold[i] == 1 { 2 } else { 1 }, 0.5),
            };
        }
        let pairs: Vec<(usize, usize)> =
            test.iter().map(|&i| (gold[i], predictions[i].0)).collect();
        let mut counts = [0usize; 3];
        for &(g, _) in &pairs {
            counts[g] += 1;
        }
        let n = pairs.len().max(1) as f64;
        report.f1m.push(macro_f1(&pairs));
        report
            .accuracy
            .push(pairs.iter().filter(|(g, p)| g == p).count() as f64 / n);
        report
            .majority
            .push(*counts.iter().max().unwrap_or(&0) as f64 / n);
        let scores: Vec<f64> = test.iter().map(|&i| predictions[i].1).collect();
        let correct: Vec<bool> = pairs.iter().map(|(g, p)| g == p).collect();
        report.ece.push(ece(&scores, &correct, 10).0);
    }
    let scores: Vec<f64> = predictions.iter().map(|p| p.1).collect();
    let correct: Vec<bool> = predictions
        .iter()
        .zip(gold)
        .map(|(p, g)| p.0 == *g)
        .collect();
    let (e, table) = ece(&scores, &correct, 10);
    report.pooled_ece = e;
    report.reliability = table;
    report.predictions = predictions;
    report
}

/// The model to ship: fitted on every found PerSenT row and the extra rows, calibrated by Platt on the
/// out-of-fold predictions of the committed folds.
pub fn train(rows: &[Option<Row>], fold: &[usize], extra: &[Row], s: &Settings) -> ArticleModel {
    fit_calibrated(rows, fold, &|_| true, extra, s)
}

/// The committed split: a TSV with a header and columns index, document index, label, fold.
pub fn parse_folds(text: &str, n: usize) -> Result<Vec<usize>, String> {
    let mut fold = vec![usize::MAX; n];
    for (line_no, line) in text.lines().enumerate().skip(1) {
        if line.trim().is_empty() {
            continue;
        }
        let cols: Vec<&str> = line.split('\t').collect();
        let parse = |i: usize| -> Result<usize, String> {
            cols.get(i)
                .and_then(|c| c.trim().parse().ok())
                .ok_or_else(|| format!("line {}: column {} is not a number", line_no + 1, i + 1))
        };
        let (i, k) = (parse(0)?, parse(3)?);
        if i >= n {
            return Err(format!("line {}: index {i} but {n} articles", line_no + 1));
        }
        fold[i] = k;
    }
    if let Some(i) = fold.iter().position(|&k| k == usize::MAX) {
        return Err(format!("article {i} has no fold"));
    }
    Ok(fold)
}

/// The cross-validated figures as text: F1m and ECE mean ± sd over folds, accuracy against the majority
/// class per fold, and the reliability table of the pooled out-of-fold scores.
pub fn report_text(r: &CvReport) -> String {
    use std::fmt::Write;
    let (f, fs) = mean_sd(&r.f1m);
    let (a, as_) = mean_sd(&r.accuracy);
    let (e, es) = mean_sd(&r.ece);
    let mut out = String::new();
    let _ = writeln!(
        out,
        "5-fold CV (C {}, class power {}, cases weight {}): F1m {f:.3} ± {fs:.3}; accuracy {a:.3} ± {as_:.3}; ECE per fold {e:.3} ± {es:.3}, pooled {:.3}",
        r.settings.c, r.settings.class_power, r.settings.cases_weight, r.pooled_ece
    );
    let folds: Vec<String> = r
        .f1m
        .iter()
        .zip(&r.accuracy)
        .zip(&r.majority)
        .map(|((f, a), m)| {
            format!(
                "F1m {f:.3} acc {a:.3} (majority {m:.3}{})",
                if a > m { "" } else { ", NOT above" }
            )
        })
        .collect();
    let _ = writeln!(out, "  folds: {}", folds.join("; "));
    let _ = writeln!(out, "{}", reliability_text(&r.reliability));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fits_a_separable_toy_problem_and_calibrates() {
        let mut rows = Vec::new();
        for i in 0..90 {
            let mut x = [0f32; FEATURES];
            let y = i % 3;
            x[0] = y as f32 + ((i * 7) % 5) as f32 * 0.1;
            rows.push(Row { x, y, weight: 1.0 });
        }
        let m = fit(&rows, &Settings::default());
        let right = rows
            .iter()
            .filter(|r| nlp::stance::classes::argmax(&m.probs(&r.x)) == r.y)
            .count();
        assert!(right >= 85, "{right}");
        let p = platt(&[-0.1, -0.2, -1.0, -1.2], &[true, true, false, false]);
        assert!(p[0] > 0.0);
    }

    #[test]
    fn ece_of_a_perfectly_calibrated_table_is_zero() {
        let (e, t) = ece(&[0.75, 0.75, 0.75, 0.75], &[true, true, true, false], 10);
        assert!(e.abs() < 1e-12);
        assert_eq!(t.len(), 1);
    }

    #[test]
    fn parses_folds() {
        let f = parse_folds(
            "index\tdocument_index\tlabel\tfold\n0\t9\tNeutral\t2\n1\t3\tPositive\t0\n",
            2,
        );
        assert_eq!(f, Ok(vec![2, 0]));
        assert!(parse_folds("h\n0\t1\tx\t1\n", 2).is_err());
    }
}
