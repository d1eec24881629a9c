//! The near-duplicate detector on the labelled set in `benches/data/near_dup.json` (built by
//! `benches/data/near_dup_stories.py`: republished, extended, re-led, shortened and edited
//! variants of news stories in English, Ukrainian, Russian and Polish, against different
//! stories on the same topic, templated daily reports and same-outlet stories). At the default
//! threshold, precision and recall must both reach 0.95 (issue 5); `cargo bench --bench
//! near_dup` prints the full table.

use std::collections::HashMap;

use feedmill::config::DedupConfig;
use feedmill::dedup::near;

#[derive(serde::Deserialize)]
struct Set {
    docs: Vec<Doc>,
    pairs: Vec<Pair>,
}

#[derive(serde::Deserialize)]
struct Doc {
    id: String,
    text: String,
}

#[derive(serde::Deserialize)]
struct Pair {
    a: String,
    b: String,
    same: bool,
    kind: String,
}

#[test]
fn precision_and_recall_at_the_default_threshold() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/benches/data/near_dup.json");
    let set: Set = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let threshold = DedupConfig::default().threshold;
    let docs: HashMap<&str, &str> = set.docs.iter().map(|d| (d.id.as_str(), d.text.as_str())).collect();
    let (mut tp, mut fp, mut fn_) = (0, 0, 0);
    let mut misses = Vec::new();
    for pair in &set.pairs {
        let predicted = near::same_story(docs[pair.a.as_str()], docs[pair.b.as_str()], threshold);
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
    let precision = tp as f64 / (tp + fp).max(1) as f64;
    let recall = tp as f64 / (tp + fn_).max(1) as f64;
    eprintln!("pairs {}, precision {precision:.3}, recall {recall:.3}, misses {misses:?}", set.pairs.len());
    assert!(precision >= 0.95 && recall >= 0.95, "precision {precision:.3} recall {recall:.3}: {misses:#?}");
}
