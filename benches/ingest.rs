//! Ingest throughput through every deduplication layer, with 100,000 items already stored.
//!
//! Run: `cargo bench --bench ingest` (`STORED=100000 NEW=20000` to vary; `KEEP=FILE` keeps the
//! filled database there).
//!
//! A store is filled with `STORED` items (synthetic news-like bodies: 150–400 words drawn from a
//! 5,000-word Zipf vocabulary, all inside the near-duplicate window), then `NEW` items arrive as
//! polls of 50 items, 16 polls in flight at once, into the one writer: 80 % new stories, 10 %
//! near-duplicates of stored ones (a sentence added), 5 % exact copies under another link, 5 %
//! links already stored with tracking parameters. Reported: new items per second through
//! `commit_poll` (GUID, canonical link, fingerprint and LSH lookups, inserts, group commit),
//! what each layer caught, and the cost of computing the signatures (done by the polls before
//! the write, off the writer).

use std::sync::Arc;
use std::time::Instant;

use feedmill::config::{Schedule, Source};
use feedmill::dedup::near::Signature;
use feedmill::store::{Candidate, PollSuccess, Store};

const VOCABULARY: usize = 5_000;
const BATCH: usize = 50;
const IN_FLIGHT: usize = 16;
const SOURCES: usize = 100;

/// SplitMix64: a small deterministic generator, so every run sees the same texts.
struct Random(u64);

impl Random {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    /// A word index with a Zipf-like distribution (frequent words are frequent).
    fn word(&mut self) -> usize {
        let u = (self.next() >> 11) as f64 / (1u64 << 53) as f64;
        ((VOCABULARY as f64).powf(u) as usize).min(VOCABULARY - 1)
    }
}

fn vocabulary(random: &mut Random) -> Vec<String> {
    const SYLLABLES: &[&str] = &[
        "ка", "ро", "ми", "ні", "ва", "ло", "ко", "пре", "ста", "ен", "tra", "mel", "do", "ri", "sun", "ka",
    ];
    (0..VOCABULARY)
        .map(|_| (0..2 + random.below(3)).map(|_| SYLLABLES[random.below(SYLLABLES.len())]).collect())
        .collect()
}

fn body(random: &mut Random, words: &[String]) -> String {
    let length = 150 + random.below(250);
    let mut text = String::new();
    for i in 0..length {
        text.push_str(&words[random.word()]);
        text.push(if i % 17 == 16 { '.' } else { ' ' });
    }
    text
}

fn candidate(n: usize, link: String, text: String) -> Candidate {
    Candidate {
        guid: format!("guid-{n}"),
        canonical_link: Some(link.clone()),
        link: Some(link),
        title: format!("Story {n}"),
        author: None,
        published: Some(1_700_000_000 + n as i64),
        updated: None,
        categories: vec!["News".into()],
        summary: None,
        content_html: Some(format!("<p>{text}</p>")),
        signature: Signature::of(&text),
        content_text: Some(text),
        extracted_by: "generic".into(),
        language: None,
        editions: Vec::new(),
        hidden: false,
        feed_hash: format!("h{n}"),
    }
}

fn env_number(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let stored = env_number("STORED", 100_000);
    let new = env_number("NEW", 20_000);
    let dir = tempfile::tempdir().expect("a temporary folder");
    // With $FEEDMILL_TEST_POSTGRES (scripts/with-postgresql), on a new PostgreSQL database there.
    let mut postgres_url = None;
    let store = match std::env::var("FEEDMILL_TEST_POSTGRES") {
        Ok(server) => {
            let database = format!("ingest_{}", std::process::id());
            let admin = feedmill::store::postgres::connect(&server).await.expect("the server");
            admin.client.batch_execute(&format!("CREATE DATABASE {database}")).await.expect("a database");
            // The admin URL names the `postgres` database (scripts/with-postgresql).
            let url = postgres_url.insert(server.replacen("/postgres", &format!("/{database}"), 1));
            println!("on PostgreSQL ({database})");
            Store::connect(url).await.expect("a store")
        }
        Err(_) => Store::open(&dir.path().join("ingest.db")).expect("a store"),
    };
    let sources: Vec<Source> = (0..SOURCES)
        .map(|i| Source {
            name: format!("s{i}"),
            url: url::Url::parse(&format!("https://s{i}.example/rss")).expect("a URL"),
            schedule: Schedule::Every(std::time::Duration::from_secs(600)),
            full_text: true,
            tags: vec![],
            priority: 0,
            filter: Default::default(),
            kind: feedmill::config::SourceKind::Feed,
        })
        .collect();
    let ids = store.sync_sources(&sources).await.expect("sources");
    let ids: Vec<i64> = (0..SOURCES).map(|i| ids[&format!("s{i}")]).collect();
    let mut random = Random(42);
    let words = vocabulary(&mut random);

    let started = Instant::now();
    let mut texts = Vec::with_capacity(stored);
    for chunk in 0..stored.div_ceil(1000) {
        let batch: Vec<Candidate> = (chunk * 1000..((chunk + 1) * 1000).min(stored))
            .map(|n| {
                let text = body(&mut random, &words);
                texts.push(text.clone());
                candidate(n, format!("https://s{}.example/news/{n}", n % SOURCES), text)
            })
            .collect();
        let ok = PollSuccess { status: 200, ..Default::default() };
        store.commit_poll(ids[chunk % SOURCES], batch, ok).await.expect("prefill");
    }
    println!("prefilled {stored} items in {:.1} s", started.elapsed().as_secs_f64());
    // The database settled as a running one is between bursts: its tables' statistics taken
    // (autovacuum had no time to during the fill), the prefill's pages on disk, the WAL
    // checkpointed (PostgreSQL then recycles its segment files instead of creating new ones).
    match &postgres_url {
        Some(url) => {
            let database = feedmill::store::postgres::connect(url).await.expect("the database");
            database.client.batch_execute("ANALYZE; CHECKPOINT").await.expect("statistics and a checkpoint")
        }
        None => store.close().await.expect("a checkpoint"),
    }

    // The arriving items, built (signatures included) before the clock starts.
    let arriving: Vec<Candidate> = (0..new)
        .map(|i| {
            let n = stored + i;
            let link = format!("https://s{}.example/news/{n}", n % SOURCES);
            match i % 20 {
                0 | 1 => {
                    let original = &texts[random.below(stored)];
                    candidate(n, link, format!("{original} Added sentence number {i} with fresh words."))
                }
                2 => candidate(n, link, texts[random.below(stored)].clone()),
                3 => {
                    let m = random.below(stored);
                    let mut c = candidate(n, String::new(), body(&mut random, &words));
                    c.link = Some(format!("https://s{}.example/news/{m}?utm_source=tg", m % SOURCES));
                    c.canonical_link = Some(format!("https://s{}.example/news/{m}", m % SOURCES));
                    c
                }
                _ => candidate(n, link, body(&mut random, &words)),
            }
        })
        .collect();
    let signing = Instant::now();
    for candidate in &arriving {
        std::hint::black_box(Signature::of(candidate.content_text.as_deref().unwrap_or_default()));
    }
    let signing = signing.elapsed();

    let store = Arc::new(store);
    let started = Instant::now();
    let mut polls = tokio::task::JoinSet::new();
    let mut totals = feedmill::store::CommitCounts::default();
    for (k, batch) in arriving.chunks(BATCH).enumerate() {
        if polls.len() >= IN_FLIGHT {
            if let Some(Ok(counts)) = polls.join_next().await {
                add(&mut totals, counts);
            }
        }
        let (store, batch, source) = (Arc::clone(&store), batch.to_vec(), ids[k % SOURCES]);
        polls.spawn(async move {
            let ok = PollSuccess { status: 200, ..Default::default() };
            store.commit_poll(source, batch, ok).await.expect("commit")
        });
    }
    while let Some(Ok(counts)) = polls.join_next().await {
        add(&mut totals, counts);
    }
    let elapsed = started.elapsed().as_secs_f64();
    println!(
        "ingested {new} items into {stored} stored in {elapsed:.2} s: {:.0} items/s through all dedup layers",
        new as f64 / elapsed
    );
    println!(
        "  new {}, merged (fingerprint or near-duplicate) {}, duplicate link {}, expected merged {} and duplicate links {}",
        totals.new,
        totals.merged,
        totals.duplicate,
        new / 20 * 3,
        new / 20
    );
    println!(
        "signatures (MinHash + fingerprint), computed by the polls before the write: {:.1} µs per item, one thread",
        signing.as_secs_f64() * 1e6 / new as f64
    );
    // With KEEP=FILE the filled database is kept there, e.g. to time `feedmill migrate --to` on it.
    if let Ok(keep) = std::env::var("KEEP") {
        store.close().await.expect("the store closes");
        let db = rusqlite::Connection::open(dir.path().join("ingest.db")).expect("the database reopens");
        db.execute("VACUUM INTO ?1", [&keep]).expect("a copy of the database");
        println!("kept the database at {keep}");
    }
}

fn add(totals: &mut feedmill::store::CommitCounts, counts: feedmill::store::CommitCounts) {
    totals.new += counts.new;
    totals.merged += counts.merged;
    totals.duplicate += counts.duplicate;
}
