//! Extraction speed and memory on both extraction corpora, beside trafilatura in the same run.
//!
//! Run: `cargo bench --bench extract_speed`. With `TRAFILATURA_PYTHON=/path/to/venv/bin/python`
//! (a venv with `pip install trafilatura`), trafilatura extracts the same pages in the same run.
//!
//! Pages are decompressed and decoded (feedmill's own charset sniffing) into memory first; only
//! extraction is timed, on one thread, over several rounds (the median round is reported).
//! trafilatura gets the same page bytes and decodes them itself. On extraction-dev, between
//! rounds, the `feedmill extract` command runs on the same files (one process, each page read,
//! decompressed, decoded, extracted and written out) — on one core's worth of jobs (`--jobs 1`)
//! and as it runs by default (one job per core) — to compare its median run with the in-process
//! rate. Peak memory per page is the peak RSS of a `feedmill extract` process run on
//! that page alone (GNU time), reported as median and maximum.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use feedmill::extract::{Extractor, SiteRules};
use feedmill::fetch::charset::decode_html;

/// The corpora: folder under ../shared/corpus, warm rounds, and whether the CLI is timed.
const CORPORA: &[(&str, usize, bool)] = &[("extraction-dev", 7, true), ("extraction-dev2", 2, false)];

fn corpus(folder: &str) -> Option<Vec<(PathBuf, String)>> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/corpus").join(folder).join("html");
    let mut pages = Vec::new();
    for entry in std::fs::read_dir(&dir).ok()? {
        let path = entry.ok()?.path();
        let mut bytes = Vec::new();
        flate2::read::GzDecoder::new(std::fs::File::open(&path).ok()?).read_to_end(&mut bytes).ok()?;
        pages.push((path, decode_html(&bytes, None)));
    }
    pages.sort();
    Some(pages)
}

const TRAFILATURA: &str = r#"
import gzip, sys, time, glob
import trafilatura
pages = [gzip.open(p).read() for p in sorted(glob.glob(sys.argv[1] + '/*.html.gz'))]
rounds = int(sys.argv[2])
start = time.perf_counter()
for _ in range(rounds):
    for html in pages:
        trafilatura.extract(html)
elapsed = time.perf_counter() - start
print(len(pages) * rounds / elapsed)
"#;

fn median(rates: &mut [f64]) -> f64 {
    rates.sort_by(f64::total_cmp);
    rates[rates.len() / 2]
}

/// The fastest run: the one this shared machine disturbed least.
fn best(rates: &[f64]) -> f64 {
    rates.iter().copied().fold(0.0, f64::max)
}

fn main() {
    let extractor = Extractor::new(SiteRules::new(&[]).expect("built-in rules"));
    for &(folder, rounds, time_cli) in CORPORA {
        match corpus(folder) {
            Some(pages) if !pages.is_empty() => measure(&extractor, folder, &pages, rounds, time_cli),
            _ => println!("extract_speed: ../shared/corpus/{folder} is absent; not measured"),
        }
    }
}

fn measure(extractor: &Extractor, name: &str, pages: &[(PathBuf, String)], rounds: usize, time_cli: bool) {
    let url = url::Url::parse("https://example.com/article").expect("url");
    // A first (cold) round, timed apart: a fresh process pays for growing its heap. Then the
    // warm rounds, each timed, interleaved with runs of the `feedmill extract` command on the same
    // files, so that both see the same moments of this shared machine; medians are reported.
    let started = Instant::now();
    for (_, html) in pages {
        let _ = extractor.extract(html, &url);
    }
    let cold_rate = pages.len() as f64 / started.elapsed().as_secs_f64();
    // The command writes its outputs to memory (/dev/shm) and, in separate runs, to the temporary
    // directory on disk: the first is the command's own cost, the second adds the file system's.
    let run_dir = |base: PathBuf| base.join(format!("feedmill-extract-speed-{}", std::process::id()));
    let memory = Path::new("/dev/shm").is_dir().then(|| run_dir(PathBuf::from("/dev/shm")));
    let disk = run_dir(std::env::temp_dir());
    let cli_rate = |out: &Path, jobs: &[&str]| {
        let started = Instant::now();
        let run = Command::new(env!("CARGO_BIN_EXE_feedmill"))
            .arg("extract")
            .args(jobs)
            .arg("--out-dir")
            .arg(out)
            .args(pages.iter().map(|(path, _)| path))
            .output();
        let rate = pages.len() as f64 / started.elapsed().as_secs_f64();
        run.is_ok_and(|output| output.status.code().is_some()).then_some(rate)
    };
    let (mut warm, mut cli_one_job, mut cli_memory, mut cli_disk) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for _ in 0..rounds {
        let started = Instant::now();
        for (_, html) in pages {
            std::hint::black_box(extractor.extract(html, &url));
        }
        warm.push(pages.len() as f64 / started.elapsed().as_secs_f64());
        if time_cli {
            cli_one_job.extend(memory.as_deref().and_then(|out| cli_rate(out, &["--jobs", "1"])));
            cli_memory.extend(memory.as_deref().and_then(|out| cli_rate(out, &[])));
            cli_disk.extend(cli_rate(&disk, &[]));
        }
    }
    for dir in memory.iter().chain([&disk]) {
        let _ = std::fs::remove_dir_all(dir);
    }
    let feedmill_rate = median(&mut warm);
    let feedmill_best = best(&warm);
    let megabytes: f64 = pages.iter().map(|(_, h)| h.len() as f64).sum::<f64>() / 1e6;
    println!(
        "extract_speed, {name}: {} pages ({megabytes:.1} MB of HTML), {rounds} rounds, one thread",
        pages.len()
    );
    println!(
        "  feedmill: {feedmill_rate:.0} pages/s, median round, best {feedmill_best:.0} (first round, cold: {cold_rate:.0} pages/s)"
    );
    if time_cli {
        for (outputs, rates) in [
            ("in /dev/shm, --jobs 1", &mut cli_one_job),
            ("in /dev/shm, one job per core", &mut cli_memory),
            ("on disk, one job per core", &mut cli_disk),
        ] {
            match rates.is_empty() {
                false => {
                    let rate = median(rates);
                    let fastest = best(rates);
                    println!(
                        "  feedmill extract (CLI, outputs {outputs}): {rate:.0} pages/s, median of {} runs, {:.0} % of the in-process rate; best run {fastest:.0}, {:.0} % of the best round",
                        rates.len(),
                        rate / feedmill_rate * 100.0,
                        fastest / feedmill_best * 100.0
                    )
                }
                true => println!("  feedmill extract (CLI, outputs {outputs}): did not run"),
            }
        }
    }

    let trafilatura_rate = std::env::var("TRAFILATURA_PYTHON").ok().and_then(|python| {
        let dir = pages[0].0.parent()?.to_owned();
        let output = Command::new(python)
            .args(["-c", TRAFILATURA])
            .arg(dir)
            .arg(rounds.min(3).to_string())
            .output()
            .ok()?;
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
