//! Near-duplicate detection quality on the labelled set (`benches/data/near_dup.json`):
//! similarity ranges per kind of pair, and precision/recall over thresholds, for the measure
//! the store uses. `cargo bench --bench near_dup`.

use std::collections::{BTreeMap, HashMap};

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

fn main() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/benches/data/near_dup.json");
    let set: Set = match std::fs::read_to_string(path).map(|t| serde_json::from_str(&t)) {
        Ok(Ok(set)) => set,
        other => return eprintln!("cannot read {path}: {:?}", other.err()),
    };
    let docs: HashMap<&str, &str> = set.docs.iter().map(|d| (d.id.as_str(), d.text.as_str())).collect();
    let mut by_kind: BTreeMap<(bool, &str), Vec<f64>> = BTreeMap::new();
    for pair in &set.pairs {
        let (a, b) = (near::shingles(docs[pair.a.as_str()]), near::shingles(docs[pair.b.as_str()]));
        by_kind.entry((pair.same, pair.kind.as_str())).or_default().push(near::similarity(&a, &b));
    }
    println!("{} documents, {} pairs\n", set.docs.len(), set.pairs.len());
    println!("| pair kind | same story | pairs | similarity min | max |");
    println!("|---|---|---|---|---|");
    for ((same, kind), values) in &by_kind {
        let min = values.iter().cloned().fold(f64::MAX, f64::min);
        let max = values.iter().cloned().fold(f64::MIN, f64::max);
        println!("| {kind} | {same} | {} | {min:.2} | {max:.2} |", values.len());
    }
    println!("\n| threshold | precision | recall |");
    println!("|---|---|---|");
    for step in 2..=8 {
        let threshold = step as f64 / 10.0;
        let (mut tp, mut fp, mut fn_) = (0, 0, 0);
        for pair in &set.pairs {
            match (near::same_story(docs[pair.a.as_str()], docs[pair.b.as_str()], threshold), pair.same) {
                (true, true) => tp += 1,
                (true, false) => fp += 1,
                (false, true) => fn_ += 1,
                _ => {}
            }
        }
        let precision = tp as f64 / (tp + fp).max(1) as f64;
        let recall = tp as f64 / (tp + fn_).max(1) as f64;
        println!("| {threshold:.1} | {precision:.3} | {recall:.3} |");
    }
}
