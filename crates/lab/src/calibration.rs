//! Whether a score is a probability: the expected calibration error (ECE) over equal-width score bins, and
//! the reliability table behind it (per bin: how many, their mean score, how many of them were right). A
//! score is calibrated when, in every bin, the mean score and the accuracy agree; the ECE is their gap,
//! weighted by the bins' sizes.

/// One bin of a reliability table.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct Bin {
    pub lo: f64,
    pub hi: f64,
    pub count: usize,
    pub mean_score: f64,
    pub accuracy: f64,
}

/// Expected calibration error over `bins` equal-width bins of the score, and the table.
pub fn ece(scores: &[f64], correct: &[bool], bins: usize) -> (f64, Vec<Bin>) {
    let n = scores.len().max(1) as f64;
    let mut table = Vec::new();
    let mut e = 0.0;
    for b in 0..bins {
        let lo = b as f64 / bins as f64;
        let hi = (b + 1) as f64 / bins as f64;
        let inside: Vec<usize> = (0..scores.len())
            .filter(|&i| scores[i] >= lo && (scores[i] < hi || (b + 1 == bins && scores[i] <= hi)))
            .collect();
        if inside.is_empty() {
            continue;
        }
        let k = inside.len() as f64;
        let mean_score = inside.iter().map(|&i| scores[i]).sum::<f64>() / k;
        let accuracy = inside.iter().filter(|&&i| correct[i]).count() as f64 / k;
        e += k / n * (mean_score - accuracy).abs();
        table.push(Bin {
            lo,
            hi,
            count: inside.len(),
            mean_score,
            accuracy,
        });
    }
    (e, table)
}

/// A reliability table: per score bin, items, mean score and accuracy.
pub fn reliability_text(table: &[Bin]) -> String {
    let mut out = String::from("  score bin    n   mean score  accuracy");
    for b in table {
        out.push_str(&format!(
            "\n  {:.1}-{:.1}  {:>5}  {:>9.3}  {:>8.3}",
            b.lo, b.hi, b.count, b.mean_score, b.accuracy
        ));
    }
    out
}

/// The temperature T that makes `softmax(log p / T)` best calibrated over `readings` (gold class, the
/// model's probabilities): the one of least log-loss, by golden-section search over [0.2, 5] in log space.
/// Dividing the log-probabilities by T is dividing the class scores by T (the softmax ignores a shift).
pub fn fit_temperature(readings: &[(usize, [f32; 3])]) -> f32 {
    let loss = |t: f64| -> f64 {
        readings
            .iter()
            .map(|(gold, p)| {
                let z: Vec<f64> = p
                    .iter()
                    .map(|&x| f64::from(x.max(1e-12)).ln() / t)
                    .collect();
                let m = z.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
                let sum: f64 = z.iter().map(|v| (v - m).exp()).sum();
                -(z[*gold] - m - sum.ln())
            })
            .sum()
    };
    let (mut lo, mut hi) = (0.2f64.ln(), 5f64.ln());
    let phi = (5f64.sqrt() - 1.0) / 2.0;
    for _ in 0..60 {
        let a = hi - phi * (hi - lo);
        let b = lo + phi * (hi - lo);
        if loss(a.exp()) < loss(b.exp()) {
            hi = b;
        } else {
            lo = a;
        }
    }
    ((lo + hi) / 2.0).exp() as f32
}

/// `probs` at temperature `t` (see [`fit_temperature`]).
pub fn at_temperature(probs: [f32; 3], t: f32) -> [f32; 3] {
    let z = probs.map(|x| x.max(1e-12).ln() / t);
    let m = z.iter().cloned().fold(f32::NEG_INFINITY, f32::max);
    let e = z.map(|v| (v - m).exp());
    let sum: f32 = e.iter().sum();
    e.map(|v| v / sum)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_overconfident_model_is_cooled_and_its_error_shrinks() {
        // Says 0.95 for its label; right 70 % of the time.
        let readings: Vec<(usize, [f32; 3])> = (0..100)
            .map(|i| (if i % 10 < 7 { 2 } else { 0 }, [0.03, 0.02, 0.95]))
            .collect();
        let t = fit_temperature(&readings);
        assert!(t > 1.5, "{t}");
        let score = |p: [f32; 3]| f64::from(p[2]);
        let right: Vec<bool> = readings.iter().map(|(g, _)| *g == 2).collect();
        let before: Vec<f64> = readings.iter().map(|(_, p)| score(*p)).collect();
        let after: Vec<f64> = readings
            .iter()
            .map(|(_, p)| score(at_temperature(*p, t)))
            .collect();
        assert!(ece(&after, &right, 10).0 < ece(&before, &right, 10).0 / 2.0);
    }
}
