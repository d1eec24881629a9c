//! The labelled near-duplicate set (`benches/data/near_dup.json`) and how the detector scores on
//! it; shared by `tests/near_dup.rs` and `benches/near_dup.rs` (included with `#[path]`).

use std::collections::HashMap;

use feedmill::dedup::near;

#[derive(serde::Deserialize)]
pub struct Set {
    pub docs: Vec<Doc>,
    pub pairs: Vec<Pair>,
}

#[derive(serde::Deserialize)]
pub struct Doc {
    pub id: String,
    pub text: String,
}

#[derive(serde::Deserialize)]
pub struct Pair {
    pub a: String,
    pub b: String,
    pub same: bool,
    pub kind: String,
}

/// Precision, recall and the misclassified pairs at `threshold`.
pub struct Score {
    pub precision: f64,
    pub recall: f64,
    pub misses: Vec<String>,
}

impl Set {
    pub fn load() -> Result<Set, String> {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/benches/data/near_dup.json");
        let text = std::fs::read_to_string(path).map_err(|e| format!("{path}: {e}"))?;
        serde_json::from_str(&text).map_err(|e| format!("{path}: {e}"))
    }

    pub fn texts(&self) -> HashMap<&str, &str> {
        self.docs.iter().map(|d| (d.id.as_str(), d.text.as_str())).collect()
    }

    /// Calls each pair the same story exactly as the store does ([`near::same_story`]).
    pub fn score(&self, threshold: f64) -> Score {
        let texts = self.texts();
        let (mut tp, mut fp, mut fn_) = (0, 0, 0);
        let mut misses = Vec::new();
        for pair in &self.pairs {
            let predicted = near::same_story(texts[pair.a.as_str()], texts[pair.b.as_str()], threshold);
            match (predicted, pair.same) {
                (true, true) => tp += 1,
                (true, false) => fp += 1,
                (false, true) => fn_ += 1,
                (false, false) => {}
            }
            if predicted != pair.same {
                misses.push(format!("{} / {} ({})", pair.a, pair.b, pair.kind));
            }
        }
        Score {
            precision: tp as f64 / (tp + fp).max(1) as f64,
            recall: tp as f64 / (tp + fn_).max(1) as f64,
            misses,
        }
    }
}
