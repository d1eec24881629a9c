//! The `feedmill` command line: parses arguments, sets up logging, calls the library.

use std::io::{IsTerminal, Write};
use std::num::NonZeroUsize;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::Context;
use clap::{Parser, Subcommand};
use feedmill::config::{Config, ConfigError, FetchConfig, DEFAULT_CONFIG_PATH};
use feedmill::extract::{Extractor, SiteRules, Step};
use feedmill::fetch::{charset::decode_html, FeedResponse, Fetched, Fetcher};
use url::Url;

/// `println!` for the command's output, through [`out`].
macro_rules! outln {
    ($($arg:tt)*) => { out(format_args!("{}\n", format_args!($($arg)*))) };
}

#[path = "cli/extract.rs"]
mod extract_command;
use extract_command::Format;

/// Exit code for a configuration that cannot be used.
const EXIT_CONFIG: u8 = 2;

#[derive(Parser)]
#[command(
    name = "feedmill",
    version,
    about = "Turns news feeds into one clean, deduplicated, full-text feed"
)]
struct Cli {
    /// Configuration file [default: $FEEDMILL_CONFIG, else config/feedmill.toml]
    #[arg(short, long, global = true, env = "FEEDMILL_CONFIG")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the daemon: poll every source on its schedule (and once at start) and serve HTTP.
    Run,
    /// Poll every source (or one) once, store the items, print a summary per source.
    Poll {
        /// Only this source.
        #[arg(long)]
        source: Option<String>,
    },
    /// Validate the configuration and print the resolved sources.
    CheckConfig,
    /// Fetch one source's document now and print the items it yields (without storing them): for
    /// writing an html source's selectors, or checking a channel or sitemap.
    CheckSource {
        /// The source's name.
        name: String,
    },
    /// Print the feeds a page offers (its `<link rel="alternate">` feeds, best first), or say
    /// that the URL is a feed itself.
    Discover { url: Url },
    /// Site rules: `rules test [HOST]` fetches each rule's `test_url` pages and checks that the
    /// extracted body contains every `test_contains` text (needs internet for the built-in rules).
    Rules {
        #[command(subcommand)]
        command: RulesCommand,
    },
    /// OPML 2.0 subscription lists: `opml export` prints the sources; `opml import FILE` prints
    /// (or with --write appends to the config) `[[sources]]` for the feeds not configured yet.
    Opml {
        #[command(subcommand)]
        command: OpmlCommand,
    },
    /// Copy the configured SQLite database into an empty PostgreSQL database, in one transaction,
    /// and print each table's rows on both sides.
    Migrate {
        /// The PostgreSQL database (libpq URL: postgresql://user@host:5432/name).
        #[arg(long, value_name = "URL")]
        to: String,
    },
    /// Extract the article from HTML files (plain or .gz) or http(s) URLs.
    Extract {
        /// The page's URL, for files: picks the site rule and resolves relative links
        /// [default: the page's canonical link].
        #[arg(long)]
        url: Option<Url>,
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
        /// Write one file per input here (`a.html` → `DIR/a.txt`) instead of printing.
        #[arg(long)]
        out_dir: Option<PathBuf>,
        /// Pages extracted at once [default: one per core]; outputs keep the inputs' order.
        #[arg(long)]
        jobs: Option<NonZeroUsize>,
        #[arg(required = true)]
        inputs: Vec<String>,
    },
}

#[derive(Subcommand)]
enum OpmlCommand {
    /// Print the configured sources as OPML 2.0.
    Export,
    /// Print `[[sources]]` TOML for the OPML file's feeds that are not configured yet.
    Import {
        file: PathBuf,
        /// Append them to the config file instead (after checking the result is valid).
        #[arg(long)]
        write: bool,
    },
}

#[derive(Subcommand)]
enum RulesCommand {
    /// Check the rules (of one host, or all) against their test pages.
    Test {
        /// Only rules covering this host.
        host: Option<String>,
    },
}

/// Threads for blocking work: parsing feeds, extracting articles (CPU-bound, so more threads
/// than cores gain nothing) and SQLite reads (short). tokio's default of 512 let a 10,000-source
/// poll start dozens, each with its own malloc arena: capping them took that poll's peak RSS from
/// ~100 MB to 85 MB and made it faster (BENCHMARKS.md).
const BLOCKING_THREADS: usize = 8;

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| {
            tracing_subscriber::EnvFilter::new(
                "info,html5ever=error,selectors=error,tokio_cron_scheduler=warn",
            )
        }))
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .max_blocking_threads(BLOCKING_THREADS)
        .enable_all()
        .build();
    let runtime = match runtime {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("feedmill: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(dispatch(cli)) {
        Ok(_) if STDOUT_FAILED.load(Ordering::Relaxed) => ExitCode::FAILURE,
        Ok(code) => code,
        Err(error) => {
            eprintln!("feedmill: {error:#}");
            if error.downcast_ref::<ConfigError>().is_some() {
                ExitCode::from(EXIT_CONFIG)
            } else {
                ExitCode::FAILURE
            }
        }
    }
}

/// Set once the reader of stdout has gone, or stdout failed otherwise.
static STDOUT_GONE: AtomicBool = AtomicBool::new(false);
/// Set when stdout failed for another reason than its reader going (a full disk): the command
/// then exits with a failure.
static STDOUT_FAILED: AtomicBool = AtomicBool::new(false);

/// Writes the command's output. Once its reader has gone (`feedmill poll | head`) the rest is
/// dropped and the command still finishes its work, instead of panicking in `println!` on the
/// closed pipe. (Restoring SIGPIPE's default would end the process there, but also on a `writev`
/// to an HTTP peer that reset its connection.)
fn out(text: std::fmt::Arguments) {
    if STDOUT_GONE.load(Ordering::Relaxed) {
        return;
    }
    if let Err(error) = std::io::stdout().lock().write_fmt(text) {
        STDOUT_GONE.store(true, Ordering::Relaxed);
        if error.kind() != std::io::ErrorKind::BrokenPipe {
            eprintln!("feedmill: cannot write to stdout: {error}");
            STDOUT_FAILED.store(true, Ordering::Relaxed);
        }
    }
}

/// Whether the reader of stdout has gone, so that writing more is useless.
fn stdout_gone() -> bool {
    STDOUT_GONE.load(Ordering::Relaxed)
}

async fn dispatch(cli: Cli) -> anyhow::Result<ExitCode> {
    let explicit_config = cli.config.is_some();
    let config_path = cli.config.unwrap_or_else(|| PathBuf::from(DEFAULT_CONFIG_PATH));
    match cli.command {
        Command::Run => {
            let config = Config::load(&config_path)?;
            feedmill::daemon::run(config).await?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Poll { source } => poll(&Config::load(&config_path)?, source.as_deref()).await,
        Command::CheckConfig => {
            let config = Config::load(&config_path)?;
            print_config(&config)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Extract { url, format, out_dir, inputs, jobs } => {
            let config = optional_config(&config_path, explicit_config)?;
            let request = extract_command::Request { url, format, out_dir, inputs, jobs };
            extract_command::run(config.as_ref(), request).await
        }
        Command::CheckSource { name } => check_source(&Config::load(&config_path)?, &name).await,
        Command::Discover { url } => {
            let config = optional_config(&config_path, explicit_config)?;
            discover(config.as_ref(), &url).await
        }
        Command::Migrate { to } => migrate(&Config::load(&config_path)?, &to).await,
        Command::Opml { command: OpmlCommand::Export } => {
            out(format_args!("{}", feedmill::opml::export(&Config::load(&config_path)?)));
            Ok(ExitCode::SUCCESS)
        }
        Command::Opml { command: OpmlCommand::Import { file, write } } => {
            opml_import(&config_path, &file, write)
        }
        Command::Rules { command: RulesCommand::Test { host } } => {
            let config = optional_config(&config_path, explicit_config)?;
            rules_test(config.as_ref(), host.as_deref()).await
        }
    }
}

/// `feedmill opml import`: the new sources as TOML, printed or appended to the config.
fn opml_import(config_path: &Path, file: &Path, write: bool) -> anyhow::Result<ExitCode> {
    use anyhow::Context;
    let config = Config::load(config_path)?;
    let text = std::fs::read_to_string(file).with_context(|| format!("{}: cannot read", file.display()))?;
    let subscriptions = feedmill::opml::parse(&text).with_context(|| file.display().to_string())?;
    let (toml, skipped) = feedmill::opml::to_sources_toml(&subscriptions, &config);
    let added = subscriptions.len() - skipped;
    if write && added > 0 {
        let current = std::fs::read_to_string(config_path)
            .with_context(|| format!("{}: cannot read", config_path.display()))?;
        let updated = format!("{}\n# Imported from {}{toml}", current.trim_end(), file.display());
        // Never write a config the daemon would refuse.
        Config::parse(&updated, config_path)?;
        std::fs::write(config_path, updated)
            .with_context(|| format!("{}: cannot write", config_path.display()))?;
    } else {
        out(format_args!("{toml}"));
    }
    eprintln!(
        "{added} new source{} {}, {skipped} already configured",
        if added == 1 { "" } else { "s" },
        if write { format!("appended to {}", config_path.display()) } else { "printed".to_owned() }
    );
    Ok(ExitCode::SUCCESS)
}

/// Extraction works without a config file (built-in rules only); an explicitly named one must load.
fn optional_config(path: &Path, explicit: bool) -> Result<Option<Config>, ConfigError> {
    match Config::load(path) {
        Ok(config) => Ok(Some(config)),
        Err(ConfigError::Read { .. }) if !explicit => Ok(None),
        Err(error) => Err(error),
    }
}

/// `feedmill rules test`: one PASS/FAIL line per test page; exit status 1 when any failed.
async fn rules_test(config: Option<&Config>, host: Option<&str>) -> anyhow::Result<ExitCode> {
    let rules = SiteRules::new(config.map_or(&[][..], |c| &c.sites))?;
    let extractor = Extractor::new(rules.clone());
    let fetcher = Fetcher::new(&config.map_or_else(FetchConfig::default, |c| c.fetch.clone()))?;
    let covers = |rule: &feedmill::extract::SiteRule| {
        host.is_none_or(|h| rule.hosts.iter().any(|r| h == r || h.ends_with(&format!(".{r}"))))
    };
    let (mut checked, mut failed) = (0, 0);
    for rule in rules.iter().filter(|r| covers(r)) {
        for url in &rule.spec.test_url {
            checked += 1;
            let verdict = match fetcher.fetch_page(url).await {
                Err(error) => Err(error.to_string()),
                Ok(page) => {
                    let html = decode_html(&page.body, page.content_type.as_deref());
                    match extractor.extract(&html, &page.url).article {
                        Some(article) if article.step == Step::Rule => {
                            let missing: Vec<&String> = rule
                                .spec
                                .test_contains
                                .iter()
                                .filter(|t| !article.text.contains(t.as_str()))
                                .collect();
                            if missing.is_empty() {
                                Ok(())
                            } else {
                                Err(format!("body lacks {missing:?}"))
                            }
                        }
                        Some(_) => {
                            Err("no body selector matched (the generic extractor was used)".to_owned())
                        }
                        None => Err("no article found".to_owned()),
                    }
                }
            };
            match verdict {
                Ok(()) => outln!("PASS {} ({}) {url}", rule.hosts.join(","), rule.origin),
                Err(why) => {
                    failed += 1;
                    outln!("FAIL {} ({}) {url}: {why}", rule.hosts.join(","), rule.origin);
                }
            }
        }
    }
    if checked == 0 {
        outln!("no rule{} has a test_url", host.map(|h| format!(" for {h}")).unwrap_or_default());
    }
    Ok(if failed == 0 { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}

/// Exit status: 0 when at least one source (or the only one asked for) was polled successfully.
async fn poll(config: &Config, only: Option<&str>) -> anyhow::Result<ExitCode> {
    let (reports, cycle) = feedmill::daemon::poll_once(config, only).await?;
    let elapsed = cycle.as_secs_f64();
    for report in &reports {
        let status = report.status.map_or_else(|| "-".to_owned(), |s| s.to_string());
        let seconds = report.duration.as_secs_f64();
        let note = report.note.as_ref().map(|n| format!(" ({n})")).unwrap_or_default();
        match &report.error {
            None => {
                let mut extra = String::new();
                if report.merged > 0 {
                    extra.push_str(&format!(", {} merged", report.merged));
                }
                if report.updated > 0 {
                    extra.push_str(&format!(", {} updated", report.updated));
                }
                if report.filtered > 0 {
                    extra.push_str(&format!(", {} filtered out", report.filtered));
                }
                outln!(
                    "{}: HTTP {status}, {} new, {} duplicate{extra}, {seconds:.2}s{note}",
                    report.source,
                    report.new,
                    report.duplicate
                )
            }
            Some(error) => {
                outln!("{}: FAILED (HTTP {status}) after {seconds:.2}s{note}: {error}", report.source)
            }
        }
    }
    let failed = reports.iter().filter(|r| r.error.is_some()).count();
    let new: usize = reports.iter().map(|r| r.new).sum();
    eprintln!(
        "polled {} sources in {elapsed:.3}s ({:.0}/s): {} ok, {failed} failed, {new} new items",
        reports.len(),
        reports.len() as f64 / elapsed.max(1e-9),
        reports.len() - failed
    );
    let all_failed = !reports.is_empty() && failed == reports.len();
    Ok(if all_failed { ExitCode::FAILURE } else { ExitCode::SUCCESS })
}

/// `feedmill check-source NAME`: the items the source's document yields now.
async fn check_source(config: &Config, name: &str) -> anyhow::Result<ExitCode> {
    let source = config.source(name).with_context(|| format!("no source named `{name}` in the config"))?;
    let fetcher = Fetcher::new(&config.fetch)?;
    let fetched = fetch_now(&fetcher, &source.url).await?;
    let since = chrono::Utc::now() - chrono::Duration::from_std(config.dedup.window).unwrap_or_default();
    let url = fetched.url.clone();
    let kind = source.kind.clone();
    let parsed = tokio::task::spawn_blocking(move || {
        feedmill::poll::read_document(&kind, &fetched.body, fetched.content_type.as_deref(), &url, since)
    })
    .await?
    .with_context(|| format!("source `{name}` ({}, {})", source.kind, source.url))?;
    outln!("{} ({}): {} items", source.name, source.kind, parsed.items.len());
    for item in &parsed.items {
        let date = item.published.map_or_else(|| "no date".to_owned(), |d| d.to_rfc3339());
        let link = item.link.as_ref().map_or("(no link)", Url::as_str);
        outln!("  {date}  {link}\n      {}", item.title);
    }
    for child in &parsed.children {
        outln!("  child sitemap: {child}");
    }
    if let Some(older) = &parsed.older {
        outln!("  older messages: {older}");
    }
    Ok(ExitCode::SUCCESS)
}

/// A document fetched now, unconditionally, as a feed is (the source's politeness and limits).
async fn fetch_now(fetcher: &Fetcher, url: &Url) -> anyhow::Result<Box<Fetched>> {
    match fetcher.fetch_feed(url, &Default::default()).await? {
        FeedResponse::Fetched(fetched) => Ok(fetched),
        FeedResponse::NotModified => anyhow::bail!("{url}: 304 Not Modified to an unconditional request"),
    }
}

/// `feedmill discover URL`: the feeds a page links, or the URL itself when it is a feed.
async fn discover(config: Option<&Config>, url: &Url) -> anyhow::Result<ExitCode> {
    let fetcher = Fetcher::new(&config.map_or_else(FetchConfig::default, |c| c.fetch.clone()))?;
    let fetched = fetch_now(&fetcher, url).await?;
    if !feedmill::feed::is_html_page(&fetched.body) {
        let utf8 = feedmill::fetch::charset::feed_to_utf8(&fetched.body, fetched.content_type.as_deref());
        if let Ok(feed) = feedmill::feed::parse(&utf8, &fetched.url) {
            outln!("{} is a feed: {} items", fetched.url, feed.items.len());
            return Ok(ExitCode::SUCCESS);
        }
    }
    let html = decode_html(&fetched.body, fetched.content_type.as_deref());
    let found = feedmill::feed::discover(&html, &fetched.url);
    if found.is_empty() {
        eprintln!("{}: the page links no feed", fetched.url);
        return Ok(ExitCode::FAILURE);
    }
    for feed in found {
        outln!("{}  {}  {}", feed.url, feed.format, feed.title.unwrap_or_default());
    }
    Ok(ExitCode::SUCCESS)
}

fn print_config(config: &Config) -> anyhow::Result<()> {
    let rules = SiteRules::new(&config.sites)?;
    outln!("config: {}", config.path.display());
    match &config.storage.database {
        Some(database) => outln!("storage: PostgreSQL {database}"),
        None => outln!("storage: {}", config.storage.path.display()),
    }
    outln!("server: {} (public URL {})", config.server.listen, config.server.public_url);
    outln!("feed: \"{}\", {} items", config.feed.title, config.feed.max_items);
    outln!(
        "fetch: timeout {}s, body cap {} bytes, proxy {}, private networks {}",
        config.fetch.timeout_secs,
        config.fetch.max_body_bytes,
        config.fetch.proxy.as_ref().map_or("from environment".to_owned(), Url::to_string),
        if config.fetch.allow_private_networks { "allowed" } else { "refused" },
    );
    outln!("sources ({}):", config.sources.len());
    for s in &config.sources {
        let tags = if s.tags.is_empty() { String::new() } else { format!(" tags={}", s.tags.join(",")) };
        outln!("  {}  {}  {}  full_text={}{tags}  kind={}", s.name, s.url, s.schedule, s.full_text, s.kind);
    }
    outln!("site rules: {} ({} from this config, the rest built in)", rules.len(), config.sites.len());
    Ok(())
}

/// `feedmill migrate --to URL`: the SQLite database, brought to this feedmill's schema as `run`
/// would, copied into PostgreSQL. The URL is never printed (it may hold the password).
async fn migrate(config: &Config, to: &str) -> anyhow::Result<ExitCode> {
    use feedmill::store::{postgres, Store};
    if let Some(database) = &config.storage.database {
        anyhow::bail!(
            "the configured store is already PostgreSQL ({database}); migrate --to copies a SQLite database"
        );
    }
    let path = config.storage.path.clone();
    anyhow::ensure!(path.exists(), "{}: there is no SQLite database to copy", path.display());
    let sqlite = path.clone();
    tokio::task::spawn_blocking(move || Store::open(&sqlite).map(drop)).await??;
    let mut database = postgres::connect(to).await?;
    postgres::migrate(&mut database).await?;
    let counts = postgres::copy_sqlite(&path, &mut database).await?;
    outln!("copied {} into {} (one transaction; rows counted on both sides):", path.display(), database.name);
    for count in counts {
        outln!("  {:<16} SQLite {:>9}  PostgreSQL {:>9}", count.table, count.sqlite, count.postgres);
    }
    Ok(ExitCode::SUCCESS)
}
