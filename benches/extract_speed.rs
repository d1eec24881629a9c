//! Extraction speed and memory on the development corpus, beside trafilatura in the same run.
//!
//! Run: `cargo bench --bench extract_speed`. With `TRAFILATURA_PYTHON=/path/to/venv/bin/python`
//! (a venv with `pip install trafilatura`), trafilatura extracts the same pages in the same run.
//!
//! Pages are decompressed into memory first; only extraction is timed, on one thread, over
//! several rounds. The `feedmill extract` command is timed on the same files (one process, each
//! page read, decompressed, decoded, extracted and written out), to compare with the in-process
//! rate. Peak memory per page is the peak RSS of a `feedmill extract` process run on
//! that page alone (GNU time), reported as median and maximum.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use feedmill::extract::{Extractor, SiteRules};

const ROUNDS: usize = 5;

fn corpus() -> Option<Vec<(PathBuf, String)>> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/corpus/extraction-dev/html");
    let mut pages = Vec::new();
    for entry in std::fs::read_dir(&dir).ok()? {
        let path = entry.ok()?.path();
        let mut html = String::new();
        flate2::read::GzDecoder::new(std::fs::File::open(&path).ok()?).read_to_string(&mut html).ok()?;
        pages.push((path, html));
    }
    pages.sort();
    Some(pages)
}

const TRAFILATURA: &str = r#"
import gzip, sys, time, glob
import trafilatura
pages = [gzip.open(p).read().decode('utf8', 'replace') for p in sorted(glob.glob(sys.argv[1] + '/*.html.gz'))]
rounds = int(sys.argv[2])
start = time.perf_counter()
for _ in range(rounds):
    for html in pages:
        trafilatura.extract(html)
elapsed = time.perf_counter() - start
print(len(pages) * rounds / elapsed)
"#;

fn main() {
    let Some(pages) = corpus() else {
        println!("extract_speed: ../shared/corpus/extraction-dev is absent; nothing to measure");
        return;
    };
    let extractor = Extractor::new(SiteRules::new(&[]).expect("built-in rules"));
    let url = url::Url::parse("https://example.com/article").expect("url");
    // A first (cold) round, timed apart: a fresh process pays for growing its heap. Then the
    // timed rounds.
    let started = Instant::now();
    for (_, html) in &pages {
        let _ = extractor.extract(html, &url);
    }
    let cold_rate = pages.len() as f64 / started.elapsed().as_secs_f64();
    let started = Instant::now();
    for _ in 0..ROUNDS {
        for (_, html) in &pages {
            std::hint::black_box(extractor.extract(html, &url));
        }
    }
    let feedmill_rate = (pages.len() * ROUNDS) as f64 / started.elapsed().as_secs_f64();
    let megabytes: f64 = pages.iter().map(|(_, h)| h.len() as f64).sum::<f64>() / 1e6;
    println!("extract_speed: {} pages ({megabytes:.1} MB of HTML), {ROUNDS} rounds, one thread", pages.len());
    println!("  feedmill: {feedmill_rate:.0} pages/s (first round, cold: {cold_rate:.0} pages/s)");

    // The CLI on the same files: its rate should stay close to the in-process one.
    let out = std::env::temp_dir().join(format!("feedmill-extract-speed-{}", std::process::id()));
    let started = Instant::now();
    let cli = Command::new(env!("CARGO_BIN_EXE_feedmill"))
        .args(["extract", "--out-dir"])
        .arg(&out)
        .args(pages.iter().map(|(path, _)| path))
        .output();
    let cli_elapsed = started.elapsed().as_secs_f64();
    let _ = std::fs::remove_dir_all(&out);
    match cli {
        Ok(output) if output.status.code().is_some() => {
            let rate = pages.len() as f64 / cli_elapsed;
            println!(
                "  feedmill extract (CLI): {rate:.0} pages/s, {:.0} % of the in-process rate",
                rate / feedmill_rate * 100.0
            )
        }
        _ => println!("  feedmill extract (CLI): did not run"),
    }

    let trafilatura_rate = std::env::var("TRAFILATURA_PYTHON").ok().and_then(|python| {
        let dir = pages[0].0.parent()?.to_owned();
        let output =
            Command::new(python).args(["-c", TRAFILATURA]).arg(dir).arg(ROUNDS.to_string()).output().ok()?;
        String::from_utf8_lossy(&output.stdout).trim().parse::<f64>().ok()
    });
    match trafilatura_rate {
        Some(rate) => {
            println!("  trafilatura: {rate:.0} pages/s  (feedmill is {:.1}x)", feedmill_rate / rate)
        }
        None => println!("  trafilatura: not run (set TRAFILATURA_PYTHON to a python with trafilatura)"),
    }

    // Peak RSS of extracting each page in its own process.
    let mut peaks: Vec<u64> = pages
        .iter()
        .filter_map(|(path, _)| {
            let output = Command::new("/usr/bin/time")
                .args([
                    "-f",
                    "peak_rss_kb=%M",
                    env!("CARGO_BIN_EXE_feedmill"),
                    "extract",
                    "--url",
                    url.as_str(),
                ])
                .arg(path)
                .output()
                .ok()?;
            String::from_utf8_lossy(&output.stderr)
                .lines()
                .find_map(|l| l.strip_prefix("peak_rss_kb=")?.trim().parse().ok())
        })
        .collect();
    peaks.sort_unstable();
    if let (Some(median), Some(max)) = (peaks.get(peaks.len() / 2), peaks.last()) {
        println!(
            "  peak RSS of `feedmill extract` on one page: median {:.1} MB, max {:.1} MB",
            *median as f64 / 1024.0,
            *max as f64 / 1024.0
        );
    }
}
