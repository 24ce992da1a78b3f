//! What the tagger predicts: the four CoNLL-2003 types, spans of them, and the BILOU label scheme the
//! Viterbi decoder works in (0 is O, then Begin, Inside, Last, Unit for each type).

use serde::{Deserialize, Serialize};

/// The four CoNLL-2003 classes the model predicts; the pipeline refines MISC into GROUP where it can.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum NerType {
    Per,
    Org,
    Loc,
    Misc,
}

impl NerType {
    pub const ALL: [NerType; 4] = [NerType::Per, NerType::Org, NerType::Loc, NerType::Misc];

    /// The CoNLL tag suffix.
    pub fn as_str(self) -> &'static str {
        match self {
            NerType::Per => "PER",
            NerType::Org => "ORG",
            NerType::Loc => "LOC",
            NerType::Misc => "MISC",
        }
    }

    pub fn from_conll(s: &str) -> Option<NerType> {
        Some(match s {
            "PER" => NerType::Per,
            "ORG" => NerType::Org,
            "LOC" => NerType::Loc,
            "MISC" => NerType::Misc,
            _ => return None,
        })
    }

    pub(super) fn index(self) -> usize {
        self as usize
    }
}

/// An entity found by the tagger: token indices into the document, `end` exclusive.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NerSpan {
    pub start: usize,
    pub end: usize,
    pub ty: NerType,
}

/// BILOU labels: 0 is O, then Begin, Inside, Last, Unit for each type in [`NerType::ALL`] order.
pub const N_LABELS: usize = 1 + 4 * 4;

pub(super) const B: usize = 0;
pub(super) const I: usize = 1;
pub(super) const L: usize = 2;
pub(super) const U: usize = 3;

pub(super) fn label(ty: NerType, part: usize) -> u8 {
    (1 + ty.index() * 4 + part) as u8
}

pub(super) fn label_type(l: u8) -> Option<NerType> {
    (l > 0).then(|| NerType::ALL[(l as usize - 1) / 4])
}

pub(super) fn label_part(l: u8) -> usize {
    (l as usize - 1) % 4
}

/// Whether BILOU allows `cur` after `prev`; `prev == None` is the sentence start.
pub(super) fn allowed(prev: Option<u8>, cur: u8) -> bool {
    let open = |l: u8| l > 0 && matches!(label_part(l), B | I);
    match prev {
        Some(p) if open(p) => {
            cur > 0 && label_type(cur) == label_type(p) && matches!(label_part(cur), I | L)
        }
        _ => cur == 0 || matches!(label_part(cur), B | U),
    }
}

pub(super) fn may_end(l: u8) -> bool {
    l == 0 || matches!(label_part(l), L | U)
}

/// Spans to per-token BILOU labels over `n` tokens.
pub fn spans_to_labels(spans: &[NerSpan], n: usize) -> Vec<u8> {
    let mut labels = vec![0u8; n];
    for s in spans {
        if s.end - s.start == 1 {
            labels[s.start] = label(s.ty, U);
        } else {
            labels[s.start] = label(s.ty, B);
            for l in &mut labels[s.start + 1..s.end - 1] {
                *l = label(s.ty, I);
            }
            labels[s.end - 1] = label(s.ty, L);
        }
    }
    labels
}

/// Per-token labels back to spans; tolerant of ill-formed sequences (an unterminated span ends where its type
/// stops).
pub fn labels_to_spans(labels: &[u8], offset: usize) -> Vec<NerSpan> {
    let mut spans = Vec::new();
    let mut open: Option<(usize, NerType)> = None;
    for (i, &l) in labels.iter().enumerate() {
        let ty = label_type(l);
        let starts = match (open, ty) {
            (_, None) => false,
            (None, Some(_)) => true,
            (Some((_, t)), Some(u)) => t != u || matches!(label_part(l), B | U),
        };
        if ty.is_none() || starts {
            if let Some((s, t)) = open.take() {
                spans.push(NerSpan {
                    start: offset + s,
                    end: offset + i,
                    ty: t,
                });
            }
        }
        if starts {
            open = Some((i, ty.expect("starts implies a type")));
        }
        if let (Some((s, t)), true) = (open, l > 0 && matches!(label_part(l), L | U)) {
            spans.push(NerSpan {
                start: offset + s,
                end: offset + i + 1,
                ty: t,
            });
            open = None;
        }
    }
    if let Some((s, t)) = open {
        spans.push(NerSpan {
            start: offset + s,
            end: offset + labels.len(),
            ty: t,
        });
    }
    spans
}
