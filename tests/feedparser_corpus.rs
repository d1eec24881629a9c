//! The feedparser test corpus (../shared/corpus/feedparser, 2,100+ real-world feeds: well-formed,
//! ill-formed, encodings, entities, sanitizer cases) served over loopback with each file's own
//! `Header:` lines, polled by the real binary in one `feedmill poll`. Every file must give items or
//! a recorded, named error, with no panic; for `wellformed/` files whose expectation names entries
//! (`entries[N]`, `len(entries) == N`), feedmill must deliver at least that many items. Skipped
//! (with a message) where ../shared is absent.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use common::{run_feedmill, shared_dir, Fixture, Workspace};

fn files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            files(&path, out);
        } else if matches!(
            path.extension().and_then(|e| e.to_str()),
            Some("xml" | "rdf" | "json" | "atom" | "rss")
        ) {
            out.push(path);
        }
    }
}

/// The file's expectation comment: its `Header:` lines and the least number of entries it expects.
fn expectation(text: &str) -> (Vec<(String, String)>, Option<usize>) {
    let head: String = text.chars().take(4000).collect();
    let headers = head
        .lines()
        .filter_map(|l| l.trim().strip_prefix("Header:"))
        .filter_map(|h| h.trim().split_once(':'))
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .collect();
    let expect = head.lines().find(|l| l.contains("Expect:")).unwrap_or_default();
    let mut least = None;
    for (i, _) in expect.match_indices("entries[") {
        let n: Option<usize> = expect[i + 8..].split(']').next().and_then(|n| n.parse().ok());
        least = least.max(n.map(|n| n + 1));
    }
    if let Some(i) = expect.find("len(entries) == ") {
        least = expect[i + 16..]
            .split(|c: char| !c.is_ascii_digit())
            .next()
            .and_then(|n| n.parse().ok())
            .max(least);
    }
    (headers, least)
}

#[test]
fn every_corpus_feed_gives_items_or_a_named_error() {
    let Some(corpus) = shared_dir().map(|d| d.join("corpus/feedparser")).filter(|d| d.is_dir()) else {
        eprintln!("skipped: ../shared/corpus/feedparser is absent");
        return;
    };
    let mut paths = Vec::new();
    files(&corpus, &mut paths);
    paths.sort();
    let fixture = Fixture::default();
    let mut expected = BTreeMap::new();
    let mut config = String::new();
    for (i, path) in paths.iter().enumerate() {
        let bytes = std::fs::read(path).unwrap();
        let (headers, least) = expectation(&String::from_utf8_lossy(&bytes));
        let content_type = headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case("content-type"))
            .map(|(_, v)| v.clone())
            .unwrap_or_else(|| "application/xml".into());
        let extra: Vec<(&'static str, &str)> = headers
            .iter()
            .filter(|(k, _)| !k.eq_ignore_ascii_case("content-type"))
            .filter_map(|(k, v)| match k.to_ascii_lowercase().as_str() {
                "content-location" => Some(("content-location", v.as_str())),
                "content-language" => Some(("content-language", v.as_str())),
                "last-modified" => Some(("last-modified", v.as_str())),
                "etag" => Some(("etag", v.as_str())),
                _ => None,
            })
            .collect();
        let content_type: &'static str = Box::leak(content_type.into_boxed_str());
        fixture.add_with_headers(&format!("corpus.example/f/{i}"), 200, content_type, bytes, &extra);
        let name = path.strip_prefix(&corpus).unwrap().display().to_string();
        expected.insert(format!("f{i}"), (name, least));
        config.push_str(&format!("[[sources]]\nname = \"f{i}\"\nurl = \"http://corpus.example/f/{i}\"\n"));
    }
    let fixture = fixture.start();
    let work = Workspace::new();
    let config = work.config(&format!(
        "[storage]\npath = \"{}\"\n[fetch]\nproxy = \"{}\"\nmax_connections = 32\n\
         [fetch.hosts.\"corpus.example\"]\nconcurrency = 32\nrate = 100000\n[defaults]\nfull_text = false\n{config}",
        work.path("data/feedmill.db").display(),
        fixture.proxy_url()
    ));
    let output = run_feedmill(&["poll", "-c", config.to_str().unwrap()]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!stderr.contains("panicked"), "a panic: {stderr}");
    let mut outcomes = BTreeMap::new();
    for line in stdout.lines() {
        let Some((source, rest)) = line.split_once(": ") else { continue };
        outcomes.insert(source.to_owned(), rest.to_owned());
    }
    // Items each source delivered, from the store: a GUID per item it gave.
    let db = work.db();
    let mut items = BTreeMap::new();
    let counts: Vec<(String, i64)> = db.all(
        "SELECT s.name, count(g.guid) FROM sources s LEFT JOIN item_guids g ON g.source_id = s.id GROUP BY s.id",
        &[],
    );
    for (name, n) in counts {
        items.insert(name, n as usize);
    }
    let (mut failed, mut checked, mut met) = (0, 0, 0);
    let mut misses: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (source, (file, least)) in &expected {
        let outcome = outcomes.get(source).unwrap_or_else(|| panic!("{file}: no outcome line"));
        if outcome.starts_with("FAILED") {
            failed += 1;
            assert!(outcome.contains(": "), "{file}: an error without a name: {outcome}");
        }
        if let (true, Some(least)) = (file.starts_with("wellformed/"), least) {
            checked += 1;
            let got = items.get(source).copied().unwrap_or(0);
            if got >= *least {
                met += 1;
            } else {
                let cause = if outcome.starts_with("FAILED") {
                    outcome.split(": ").last().unwrap_or(outcome).chars().take(80).collect::<String>()
                } else {
                    "fewer items than the file lists".to_owned()
                };
                misses.entry(cause).or_default().push(format!("{file} ({got} of {least})"));
            }
        }
    }
    let share = met as f64 / checked.max(1) as f64;
    eprintln!(
        "feedparser corpus: {} files, {failed} recorded errors, no panic; wellformed files with an entry expectation: {met} of {checked} met ({:.1} %)",
        paths.len(),
        share * 100.0
    );
    for (cause, files) in &misses {
        eprintln!("  {} × {cause}: {}", files.len(), files.join(", "));
    }
    // Issue 6's target; 99.7 % is where this stands (BENCHMARKS.md lists the misses by cause).
    assert!(share >= 0.99, "{met} of {checked} wellformed expectations met");
}
