//! `feedmill extract`: the article of each saved page (plain or `.gz`) or http(s) URL, printed or
//! written one file per input, in input order, with pages extracted on every core.

use std::collections::BTreeMap;
use std::io::Read;
use std::num::NonZeroUsize;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Mutex;

use anyhow::Context;
use clap::ValueEnum;
use feedmill::config::{Config, FetchConfig};
use feedmill::extract::{Extraction, Extractor, SiteRules};
use feedmill::fetch::{charset::decode_html, Fetcher};
use tokio::sync::mpsc;
use url::Url;

#[derive(Clone, Copy, ValueEnum)]
pub enum Format {
    Text,
    Html,
    Json,
}

impl Format {
    fn extension(self) -> &'static str {
        match self {
            Format::Text => "txt",
            Format::Html => "html",
            Format::Json => "json",
        }
    }
}

/// What the command was asked to do.
pub struct Request {
    pub url: Option<Url>,
    pub format: Format,
    pub out_dir: Option<PathBuf>,
    pub inputs: Vec<String>,
    /// Pages extracted at once; `None`: one per core.
    pub jobs: Option<NonZeroUsize>,
}

/// A loaded input as the extracting threads receive it: its position, its name, its page.
type Queued = (usize, String, anyhow::Result<LoadedPage>);

/// An extracted input as the writer receives it.
type Extracted = (usize, String, anyhow::Result<(Url, Extraction)>);

pub async fn run(config: Option<&Config>, request: Request) -> anyhow::Result<ExitCode> {
    let Request { url, format, out_dir, inputs, jobs } = request;
    let extractor = Extractor::new(SiteRules::new(config.map_or(&[][..], |c| &c.sites))?);
    let fetcher = Fetcher::new(&config.map_or_else(FetchConfig::default, |c| c.fetch.clone()))?;
    if let Some(dir) = &out_dir {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    let jobs = jobs.or_else(|| std::thread::available_parallelism().ok()).map_or(1, NonZeroUsize::get);
    let jobs = jobs.min(inputs.len()).max(1);
    // One task loads the inputs in order (files read, gunzipped and decoded on the blocking
    // pool; URLs fetched) a few pages ahead of `jobs` threads that extract them; the writer puts
    // the results out in input order. On one core's worth of jobs the command runs at the
    // extractor's own rate; on more, faster (BENCHMARKS.md).
    let (pages, queue) = mpsc::channel::<Queued>(2 * jobs);
    tokio::spawn(async move {
        for (index, input) in inputs.into_iter().enumerate() {
            let loaded = load_input(fetcher.clone(), input.clone(), url.clone()).await;
            if pages.send((index, input, loaded)).await.is_err() {
                break;
            }
        }
    });
    let failures = tokio::task::spawn_blocking(move || {
        let queue = Mutex::new(queue);
        let (done, extracted) = std::sync::mpsc::channel::<Extracted>();
        std::thread::scope(|scope| {
            for _ in 0..jobs {
                let done = done.clone();
                let (queue, extractor) = (&queue, &extractor);
                scope.spawn(move || {
                    // A poisoned lock means another extracting thread panicked: stop taking work.
                    while let Some((index, input, loaded)) =
                        queue.lock().ok().and_then(|mut q| q.blocking_recv())
                    {
                        let result = loaded.map(|page| extract_loaded(extractor, page));
                        if done.send((index, input, result)).is_err() {
                            break;
                        }
                    }
                });
            }
            drop(done);
            write_in_order(extracted, format, out_dir.as_deref())
        })
    })
    .await??;
    Ok(if failures == 0 { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}

/// Prints or writes each extraction in input order as it becomes available; reports failures on
/// stderr and counts them. Stops at the first output that cannot be written, and once the reader
/// of stdout has gone.
fn write_in_order(
    extracted: std::sync::mpsc::Receiver<Extracted>,
    format: Format,
    out_dir: Option<&Path>,
) -> anyhow::Result<usize> {
    let mut waiting = BTreeMap::new();
    let mut next = 0;
    let mut failures = 0;
    for (index, input, result) in extracted {
        waiting.insert(index, (input, result));
        while let Some((input, result)) = waiting.remove(&next) {
            next += 1;
            let (page_url, extraction) = match result {
                Ok(extracted) => extracted,
                Err(error) => {
                    eprintln!("feedmill: {input}: {error:#}");
                    failures += 1;
                    continue;
                }
            };
            if let Some(miss) = &extraction.rule_miss {
                eprintln!("feedmill: {input}: site rule from {} matched nothing on {}", miss.rule, miss.host);
            }
            if extraction.article.is_none() {
                eprintln!("feedmill: {input}: no article found");
                failures += 1;
            }
            let output = render_extraction(&page_url, &extraction, format)?;
            match out_dir {
                Some(dir) => {
                    let path = dir.join(format!("{}.{}", output_stem(&input), format.extension()));
                    std::fs::write(&path, output)
                        .with_context(|| format!("cannot write {}", path.display()))?;
                }
                None if crate::stdout_gone() => return Ok(failures),
                None => crate::out(format_args!("{output}\n")),
            }
        }
    }
    Ok(failures)
}

/// A page to extract: its text and the URL it is read as.
struct LoadedPage {
    html: String,
    url: Url,
    /// A saved file without `--url`: its canonical link, if it has one, is its URL.
    saved: bool,
}

async fn load_input(fetcher: Fetcher, input: String, url: Option<Url>) -> anyhow::Result<LoadedPage> {
    if input.starts_with("http://") || input.starts_with("https://") {
        let page = fetcher.fetch_page(&Url::parse(&input)?).await?;
        let html = decode_html(&page.body, page.content_type.as_deref());
        return Ok(LoadedPage { html, url: page.url, saved: false });
    }
    tokio::task::spawn_blocking(move || {
        let html = decode_html(&read_input(Path::new(&input))?, None);
        let saved = url.is_none();
        let url = match url {
            Some(url) => url,
            None => std::path::absolute(&input)
                .ok()
                .and_then(|p| Url::from_file_path(p).ok())
                .with_context(|| "cannot make a URL for this file; pass --url")?,
        };
        Ok(LoadedPage { html, url, saved })
    })
    .await?
}

fn extract_loaded(extractor: &Extractor, page: LoadedPage) -> (Url, Extraction) {
    match page.saved {
        true => extractor.extract_saved(&page.html, &page.url),
        false => {
            let extraction = extractor.extract(&page.html, &page.url);
            (page.url, extraction)
        }
    }
}

/// The most `read_input` reserves from a gzip trailer's claim before reading (it is only a hint).
const MAX_INPUT_PREALLOCATION: usize = 64 << 20;

/// A file's bytes, gunzipped when it ends in `.gz`.
fn read_input(path: &Path) -> anyhow::Result<Vec<u8>> {
    let raw = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    if path.extension().is_some_and(|e| e == "gz") {
        // A gzip member ends with its uncompressed size (mod 2^32): room for it up front saves
        // growing and copying the buffer as it fills.
        let size = raw.last_chunk::<4>().map_or(0, |n| u32::from_le_bytes(*n) as usize);
        let mut bytes = Vec::with_capacity(size.min(MAX_INPUT_PREALLOCATION));
        flate2::read::GzDecoder::new(&raw[..])
            .read_to_end(&mut bytes)
            .with_context(|| format!("{}: not valid gzip", path.display()))?;
        Ok(bytes)
    } else {
        Ok(raw)
    }
}

/// `dir/a.html` → `a`, `x.html.gz` → `x`, `https://e.com/news/item` → `item`.
fn output_stem(input: &str) -> String {
    let name = input.trim_end_matches('/').rsplit('/').next().unwrap_or(input);
    let name = name.strip_suffix(".gz").unwrap_or(name);
    let stem = Path::new(name).file_stem().and_then(|s| s.to_str()).unwrap_or(name);
    if stem.is_empty() {
        "index".to_owned()
    } else {
        stem.to_owned()
    }
}

fn render_extraction(page_url: &Url, extraction: &Extraction, format: Format) -> anyhow::Result<String> {
    let article = extraction.article.as_ref();
    Ok(match format {
        Format::Text => article.map(|a| a.text.clone()).unwrap_or_default(),
        Format::Html => article.map(|a| a.html.clone()).unwrap_or_default(),
        Format::Json => serde_json::to_string_pretty(&serde_json::json!({
            "url": page_url.as_str(),
            "title": article.and_then(|a| a.meta.title.as_deref()),
            "authors": article.map(|a| &a.meta.authors),
            "published": article.and_then(|a| a.meta.published.as_deref()),
            "updated": article.and_then(|a| a.meta.updated.as_deref()),
            "language": article.and_then(|a| a.meta.language.as_deref()),
            "tags": article.map(|a| &a.meta.tags),
            "image": article.and_then(|a| a.meta.image.as_deref()),
            "step": article.map(|a| a.step),
            "text": article.map(|a| a.text.as_str()),
            "html": article.map(|a| a.html.as_str()),
            "rule_miss": extraction.rule_miss,
        }))?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn output_names_replace_the_extension() {
        assert_eq!(output_stem("pages/a.html"), "a");
        assert_eq!(output_stem("x/06e5.html.gz"), "06e5");
        assert_eq!(output_stem("https://e.com/news/item"), "item");
    }
}
