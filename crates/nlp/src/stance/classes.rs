//! The three stance classes, in the order every model's outputs use, and the conversions between class
//! indices, probabilities and labels. Shared by the models and the aggregation (and by training).

use crate::types::StanceLabel;

/// Number of stance classes.
pub const CLASSES: usize = 3;
/// Class index of against / neutral / favor.
pub const AGAINST: usize = 0;
pub const NEUTRAL: usize = 1;
pub const FAVOR: usize = 2;

pub fn softmax(mut z: [f32; CLASSES]) -> [f32; CLASSES] {
    let m = z.iter().fold(f32::NEG_INFINITY, |a, &b| a.max(b));
    let mut sum = 0.0;
    for x in &mut z {
        *x = (*x - m).exp();
        sum += *x;
    }
    for x in &mut z {
        *x /= sum;
    }
    z
}

pub fn argmax(p: &[f32; CLASSES]) -> usize {
    let mut best = 0;
    for c in 1..CLASSES {
        if p[c] > p[best] {
            best = c;
        }
    }
    best
}

/// The class index of a label.
pub fn class_of(label: StanceLabel) -> usize {
    match label {
        StanceLabel::Against => AGAINST,
        StanceLabel::Neutral => NEUTRAL,
        StanceLabel::Favor => FAVOR,
    }
}

/// The label of a class index.
pub fn label_of(class: usize) -> StanceLabel {
    match class {
        AGAINST => StanceLabel::Against,
        FAVOR => StanceLabel::Favor,
        _ => StanceLabel::Neutral,
    }
}
