//! The near-duplicate detector on the labelled set in `benches/data/near_dup.json` (built by
//! `benches/data/near_dup_stories.py`: republished, extended, re-led, shortened and edited
//! variants of news stories in English, Ukrainian, Russian and Polish, against different
//! stories on the same topic, templated daily reports and same-outlet stories). At the default
//! threshold, precision and recall must both reach 0.95 (issue 5); `cargo bench --bench
//! near_dup` prints the full table.

#[path = "../benches/data/near_dup_set.rs"]
mod near_dup_set;

use feedmill::config::DedupConfig;
use near_dup_set::Set;

#[test]
fn precision_and_recall_at_the_default_threshold() {
    let set = Set::load().unwrap();
    let score = set.score(DedupConfig::default().threshold);
    eprintln!(
        "pairs {}, precision {:.3}, recall {:.3}, misses {:?}",
        set.pairs.len(),
        score.precision,
        score.recall,
        score.misses
    );
    assert!(
        score.precision >= 0.95 && score.recall >= 0.95,
        "precision {:.3} recall {:.3}: {:#?}",
        score.precision,
        score.recall,
        score.misses
    );
}
