//! Near-duplicate detection quality on the labelled set (`benches/data/near_dup.json`):
//! similarity ranges per kind of pair, and precision/recall over thresholds, for the measure
//! the store uses. `cargo bench --bench near_dup`.

#[path = "data/near_dup_set.rs"]
mod near_dup_set;

use std::collections::BTreeMap;

use feedmill::dedup::near;
use near_dup_set::Set;

fn main() {
    let set = match Set::load() {
        Ok(set) => set,
        Err(error) => return eprintln!("cannot read the labelled set: {error}"),
    };
    let docs = set.texts();
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
        let score = set.score(threshold);
        let (precision, recall) = (score.precision, score.recall);
        println!("| {threshold:.1} | {precision:.3} | {recall:.3} |");
    }
    let default = feedmill::config::DedupConfig::default().threshold;
    println!("\nmisses at the default threshold {default}: {:?}", set.score(default).misses);
}
