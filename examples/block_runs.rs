//! The learned-block-scorer experiment of issue 13 (BENCHMARKS.md; measured, not kept): cuts each
//! saved page into text runs — inline text between block boundaries, owned by the innermost block
//! element — with the generic extractor's verdict on each and the features a block scorer would
//! use, as one JSON line per page (`{"id", "runs": [{"t": text, "f": [features]}]}`).
//! `scripts/block_scorer.py` labels the runs from the ground truth, trains and scores.
//!
//! Run: `cargo run --release --example block_runs -- PAGE.html.gz... > runs.jsonl`

use std::collections::HashSet;
use std::io::{Read, Write};

use ego_tree::iter::Edge;
use ego_tree::NodeId;
use feedmill::extract::generic::{NEGATIVE_NAMES, POSITIVE_NAMES, UNLIKELY_NAMES};
use feedmill::extract::{clean, generic, meta, preparse, text};
use regex::Regex;
use scraper::{ElementRef, Html, Node, Selector};

/// Elements that end a run of inline text: those that start a line in feedmill's text, and the
/// containers around them.
fn is_block(name: &str) -> bool {
    text::BLOCKS.contains(&name) || matches!(name, "body" | "form" | "nav" | "tbody" | "thead")
}

struct Run<'a> {
    owner: ElementRef<'a>,
    text: String,
    chars: usize,
    linked: usize,
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let patterns = [Regex::new(UNLIKELY_NAMES)?, Regex::new(POSITIVE_NAMES)?, Regex::new(NEGATIVE_NAMES)?];
    let invisible = Selector::parse("script, style, noscript, template")?;
    let page_url = url::Url::parse("https://example.com/")?;
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    for path in std::env::args().skip(1) {
        let mut bytes = Vec::new();
        flate2::read::GzDecoder::new(std::fs::File::open(&path)?).read_to_end(&mut bytes)?;
        let html = feedmill::fetch::charset::decode_html(&bytes, None);
        // The page as the generic step sees it (src/extract/mod.rs, `extract_parsed`).
        let mut doc = Html::parse_document(&preparse::prepare(&html, preparse::MAX_DEPTH, true));
        clean::fix_images(&mut doc);
        let hidden: Vec<NodeId> = doc.select(&invisible).map(|e| e.id()).collect();
        clean::detach_all(&mut doc, &hidden);
        let page = meta::page_metadata(&doc, &page_url, None);
        let mut found = generic::find_article(&doc);
        if let Some(title) = &page.title {
            found.furniture.extend(generic::title_copies(&doc, &found.roots, title));
        }
        let id = path.rsplit('/').next().unwrap_or(&path).trim_end_matches(".html.gz");
        let runs: Vec<serde_json::Value> = features(&doc, &found, &patterns)
            .into_iter()
            .map(|(text, f)| serde_json::json!({"t": text, "f": f}))
            .collect();
        writeln!(out, "{}", serde_json::json!({"id": id, "runs": runs}))?;
    }
    Ok(())
}

fn text_len(text: &str) -> usize {
    text.split_whitespace().map(|w| w.chars().count() + 1).sum()
}

/// Ends the run being gathered, if it has any text, as a run of the innermost open block.
fn flush<'a>(owners: &[ElementRef<'a>], text: &mut String, linked: &mut usize, runs: &mut Vec<Run<'a>>) {
    let joined = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if let (false, Some(&owner)) = (joined.is_empty(), owners.last()) {
        let chars = text_len(&joined);
        runs.push(Run { owner, text: joined, chars, linked: *linked });
    }
    text.clear();
    *linked = 0;
}

fn runs(doc: &Html) -> Vec<Run<'_>> {
    let mut runs = Vec::new();
    let mut owners: Vec<ElementRef> = Vec::new();
    let (mut text, mut linked, mut in_links) = (String::new(), 0, 0);
    let Some(body) = doc.select(&Selector::parse("body").expect("static")).next() else { return runs };
    for edge in body.traverse() {
        match edge {
            Edge::Open(node) => match (ElementRef::wrap(node), node.value()) {
                (Some(e), _) => {
                    let name = e.value().name();
                    if is_block(name) || name == "br" {
                        flush(&owners, &mut text, &mut linked, &mut runs);
                    }
                    if is_block(name) {
                        owners.push(e);
                    }
                    in_links += usize::from(name == "a");
                }
                (None, Node::Text(t)) => {
                    text.push_str(t);
                    text.push(' ');
                    if in_links > 0 {
                        linked += text_len(t);
                    }
                }
                _ => {}
            },
            Edge::Close(node) => {
                if let Some(e) = ElementRef::wrap(node) {
                    if is_block(e.value().name()) {
                        flush(&owners, &mut text, &mut linked, &mut runs);
                        owners.pop();
                    }
                    in_links -= usize::from(e.value().name() == "a" && in_links > 0);
                }
            }
        }
    }
    runs
}

/// Each run's text and features; the first two are the extractor's verdict (inside the chosen
/// roots; removed from them as furniture).
fn features(doc: &Html, found: &generic::Found, patterns: &[Regex; 3]) -> Vec<(String, Vec<f32>)> {
    let roots: HashSet<NodeId> = found.roots.iter().copied().collect();
    let furniture: HashSet<NodeId> = found.furniture.iter().copied().collect();
    let runs = runs(doc);
    let within = |e: &ElementRef, set: &HashSet<NodeId>| {
        set.contains(&e.id()) || e.ancestors().any(|a| set.contains(&a.id()))
    };
    let verdicts: Vec<(bool, bool)> =
        runs.iter().map(|r| (within(&r.owner, &roots), within(&r.owner, &furniture))).collect();
    let chosen: Vec<usize> = (0..runs.len()).filter(|&i| verdicts[i].0 && !verdicts[i].1).collect();
    let total = runs.iter().map(|r| r.chars).sum::<usize>().max(1) as f32;
    let count = runs.len().max(1) as f32;
    let flag = |b: bool| f32::from(u8::from(b));
    let mut before = 0;
    let mut rows = Vec::new();
    for (i, run) in runs.iter().enumerate() {
        let e = run.owner;
        let name = e.value().name();
        let words = run.text.split_whitespace().count().max(1) as f32;
        let chars = run.chars.max(1) as f32;
        let tag = |names: &[&str]| flag(names.contains(&name));
        let inside = |names: &[&str]| {
            flag(e.ancestors().filter_map(ElementRef::wrap).any(|a| names.contains(&a.value().name())))
        };
        let path: Vec<ElementRef> =
            std::iter::once(e).chain(e.ancestors().filter_map(ElementRef::wrap)).collect();
        let hits = |pattern: &Regex| {
            let names = path.iter().flat_map(|a| [a.value().attr("class"), a.value().attr("id")]).flatten();
            (names.filter(|v| pattern.is_match(v)).count() as f32).min(3.0)
        };
        let distance = chosen.iter().map(|&c| c.abs_diff(i)).min().unwrap_or(50).min(50);
        let neighbour = |j: Option<usize>| match j.filter(|&j| j < runs.len()) {
            Some(j) => (flag(verdicts[j].0 && !verdicts[j].1), ((runs[j].chars + 1) as f32).ln()),
            None => (0.0, 0.0),
        };
        let (previous_chosen, previous_len) = neighbour(i.checked_sub(1));
        let (next_chosen, next_len) = neighbour(Some(i + 1));
        let row = vec![
            flag(verdicts[i].0),
            flag(verdicts[i].1),
            (chars + 1.0).ln(),
            (words + 1.0).ln(),
            (run.linked as f32 / chars).min(1.0),
            i as f32 / count,
            before as f32 / total,
            distance as f32 / 50.0,
            flag(run.text.ends_with(['.', '!', '?', '…', '"', '”', '»'])),
            run.text.matches([',', '،', '，']).count() as f32 / words,
            chars / words / 10.0,
            run.text.chars().filter(char::is_ascii_digit).count() as f32 / chars,
            tag(&["p"]),
            tag(&["h1"]),
            tag(&["h2", "h3", "h4", "h5", "h6"]),
            tag(&["li", "dd", "dt"]),
            tag(&["td", "th"]),
            tag(&["div", "section", "article", "main"]),
            tag(&["pre", "blockquote"]),
            tag(&["figcaption", "caption"]),
            inside(&["nav"]),
            inside(&["header"]),
            inside(&["footer"]),
            inside(&["aside"]),
            inside(&["form"]),
            inside(&["ul", "ol"]),
            inside(&["table"]),
            inside(&["figure"]),
            hits(&patterns[0]),
            hits(&patterns[1]),
            hits(&patterns[2]),
            chars / total,
            previous_chosen,
            previous_len,
            next_chosen,
            next_len,
            (path.len() as f32).min(30.0) / 30.0,
        ];
        before += run.chars;
        rows.push((run.text.clone(), row));
    }
    rows
}
