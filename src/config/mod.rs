//! Configuration: one TOML file → a validated [`Config`].
//!
//! Every key is checked when the file is read (unknown keys, URLs, cron expressions, durations, CSS
//! selectors, duplicate source names), so a daemon that starts has a configuration that works. Errors
//! name the file, the line and the key (`sources[1].url`), never just "invalid input".

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

mod cluster;
mod kind;
mod schedule;
mod storage;

use serde::{Deserialize, Deserializer};

use crate::filter::Filter;
pub use cluster::ClusterConfig;
pub use kind::{telegram_channel, Listing, SourceKind, Telegram};
use schedule::{deserialize_duration, pick_schedule, CronExpr, Every};
pub use schedule::{parse_duration, validate_cron, Schedule};
pub use storage::{DatabaseUrl, StorageConfig, DATABASE_URL_VAR};
use url::Url;

/// Where the configuration is looked for when `-c` and `$FEEDMILL_CONFIG` are not given.
pub const DEFAULT_CONFIG_PATH: &str = "config/feedmill.toml";

/// A configuration file that could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{path}: cannot read: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("{path}:{line}: `{key}`: {message}")]
    Invalid { path: PathBuf, line: usize, key: String, message: String },
}

/// The whole, validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// The file this was read from (for messages).
    pub path: PathBuf,
    pub storage: StorageConfig,
    pub cluster: ClusterConfig,
    pub server: ServerConfig,
    pub feed: FeedConfig,
    pub fetch: FetchConfig,
    pub dedup: DedupConfig,
    /// The merged feed's filter, from `[feed] include/exclude`.
    pub feed_filter: Filter,
    pub sources: Vec<Source>,
    /// User extraction rules; they override the built-in ones host by host.
    pub sites: Vec<SiteRuleConfig>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    /// Address the HTTP server binds, `host:port`.
    pub listen: String,
    /// The address readers reach the server at; used for self links and entry ids.
    pub public_url: Url,
    /// `/healthz` reports degraded when no source has been polled successfully for this long.
    #[serde(deserialize_with = "deserialize_duration")]
    pub unhealthy_after: Duration,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:8080".into(),
            public_url: Url::parse("http://127.0.0.1:8080/").unwrap_or_else(|_| unreachable!()),
            unhealthy_after: Duration::from_secs(6 * 3600),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FeedConfig {
    /// Title of the merged output feed.
    pub title: String,
    /// How many entries the merged feed carries, newest first.
    pub max_items: usize,
    /// Filter patterns for the merged and per-tag feeds (see [`crate::filter`]).
    pub include: Vec<String>,
    pub exclude: Vec<String>,
    /// A WebSub hub: the feeds advertise it and it is pinged when entries change.
    pub websub_hub: Option<Url>,
    /// Preferred languages, in order (`["uk", "en"]`): of a story's reports from sources of equal
    /// priority, the one in the earliest listed language is published. Empty: no preference.
    pub languages: Vec<String>,
}

impl Default for FeedConfig {
    fn default() -> Self {
        Self {
            title: "feedmill".into(),
            max_items: 100,
            include: Vec::new(),
            exclude: Vec::new(),
            websub_hub: None,
            languages: Vec::new(),
        }
    }
}

/// Cross-source deduplication (`[dedup]`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DedupConfig {
    /// How far back a new item is compared with stored ones for near-duplicates (`72h`).
    #[serde(deserialize_with = "deserialize_duration")]
    pub window: Duration,
    /// Jaccard similarity of word 3-grams from which two bodies are one story (0 < t ≤ 1).
    pub threshold: f64,
    /// Query parameters removed from links besides `utm_*`, `fbclid`, `gclid`, `yclid`,
    /// `mc_cid`, `mc_eid`, `_ga`, `igshid`.
    pub tracking_params: Vec<String>,
}

impl Default for DedupConfig {
    fn default() -> Self {
        // 0.4: on the labelled set (BENCHMARKS.md) the lowest same-story pair scores 0.39–0.46
        // and the highest different-story pair (templated daily reports) 0.33.
        Self { window: Duration::from_secs(72 * 3600), threshold: 0.4, tracking_params: Vec::new() }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FetchConfig {
    pub user_agent: String,
    /// Total deadline of one request, body included.
    pub timeout_secs: u64,
    /// Upper bound of a response body, after decompression.
    pub max_body_bytes: u64,
    /// Proxy for every request; `HTTP_PROXY`/`HTTPS_PROXY`/`NO_PROXY` are honoured when unset.
    pub proxy: Option<Url>,
    /// May article links point at loopback or private addresses?
    pub allow_private_networks: bool,
    /// Requests in flight at once, all hosts together.
    pub max_connections: usize,
    /// Requests in flight at once to one host (feeds and pages together).
    pub per_host_concurrency: usize,
    /// Requests per second to one host.
    pub per_host_rate: f64,
    /// The publisher's own pace (Cache-Control, Expires, `<ttl>`, `sy:updatePeriod`) may space
    /// polls out, but never further apart than this.
    #[serde(deserialize_with = "deserialize_duration")]
    pub max_interval: Duration,
    /// Per-host overrides, keyed by host name (`[fetch.hosts."unn.ua"]`); a key also covers
    /// subdomains.
    pub hosts: BTreeMap<String, HostOverride>,
}

/// Limits for one host that differ from the `[fetch]` defaults.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HostOverride {
    pub concurrency: Option<usize>,
    /// Requests per second.
    pub rate: Option<f64>,
    /// Let article links to this host reach private addresses.
    #[serde(default)]
    pub allow_private: bool,
}

impl FetchConfig {
    /// The override for a host, if one is configured (exact name or a parent domain).
    pub fn host_override(&self, host: &str) -> Option<&HostOverride> {
        let host = host.trim_end_matches('.').to_ascii_lowercase();
        self.hosts
            .iter()
            .filter(|(key, _)| host == **key || host.ends_with(&format!(".{key}")))
            .max_by_key(|(key, _)| key.len())
            .map(|(_, o)| o)
    }
}

impl Default for FetchConfig {
    fn default() -> Self {
        Self {
            user_agent: format!("feedmill/{} (+{})", env!("CARGO_PKG_VERSION"), env!("CARGO_PKG_HOMEPAGE")),
            timeout_secs: 20,
            max_body_bytes: 8 * 1024 * 1024,
            proxy: None,
            allow_private_networks: false,
            max_connections: 64,
            per_host_concurrency: 2,
            per_host_rate: 1.0,
            max_interval: Duration::from_secs(12 * 3600),
            hosts: BTreeMap::new(),
        }
    }
}

/// One configured feed, with the defaults applied.
#[derive(Debug, Clone)]
pub struct Source {
    pub name: String,
    pub url: Url,
    pub schedule: Schedule,
    /// Fetch each new item's page and extract its body?
    pub full_text: bool,
    pub tags: Vec<String>,
    /// Of a near-duplicate cluster, the item of the source with the highest priority is
    /// published (the first seen among equals).
    pub priority: i64,
    /// Items that fail it are stored hidden: never published, never fetched again.
    pub filter: Filter,
    /// What the URL serves, and so which reader reads it.
    pub kind: SourceKind,
}

/// A site rule as written in TOML (user config or `config/sites/*.toml`).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SiteRuleConfig {
    /// Hosts the rule applies to; `example.com` also covers `www.example.com` and other subdomains.
    pub hosts: Vec<String>,
    /// Body selectors, tried in order; the first that matches wins, and all its matches (in document
    /// order) make the body.
    pub body: Vec<CssSelector>,
    /// Removed from the body before it is published.
    #[serde(default)]
    pub strip: Vec<CssSelector>,
    /// Metadata selectors, each list tried in order: the headline, author names, the publication
    /// date (`datetime`/`content` attribute or text), tags (one per matched element) and the lead
    /// image (`src`/`content`/`href`).
    #[serde(default)]
    pub title: Vec<CssSelector>,
    #[serde(default)]
    pub author: Vec<CssSelector>,
    #[serde(default)]
    pub date: Vec<CssSelector>,
    #[serde(default)]
    pub tags: Vec<CssSelector>,
    #[serde(default)]
    pub lead_image: Vec<CssSelector>,
    /// The link (`href`) to the next page of a multi-page article; the pages' bodies are joined,
    /// at most [`crate::extract::MAX_PAGES`] of them, on the same host.
    #[serde(default)]
    pub next_page: Vec<CssSelector>,
    /// Pages `feedmill rules test` fetches to check the rule still works...
    #[serde(default)]
    pub test_url: Vec<Url>,
    /// ...and text each of their extracted bodies must contain.
    #[serde(default)]
    pub test_contains: Vec<String>,
}

/// A CSS selector, parsed (and so validated) when the config is read.
#[derive(Clone)]
pub struct CssSelector {
    pub text: String,
    pub selector: scraper::Selector,
}

impl fmt::Debug for CssSelector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.text)
    }
}

impl CssSelector {
    pub fn parse(text: &str) -> Result<Self, String> {
        scraper::Selector::parse(text)
            .map(|selector| Self { text: text.to_owned(), selector })
            .map_err(|e| format!("invalid CSS selector `{text}`: {e}"))
    }
}

impl<'de> Deserialize<'de> for CssSelector {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        CssSelector::parse(&text).map_err(serde::de::Error::custom)
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Defaults {
    schedule: Option<CronExpr>,
    every: Option<Every>,
    full_text: Option<bool>,
    #[serde(default)]
    tags: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SourceToml {
    name: toml::Spanned<String>,
    url: Url,
    schedule: Option<CronExpr>,
    every: Option<Every>,
    full_text: Option<bool>,
    tags: Option<Vec<String>>,
    #[serde(default)]
    priority: i64,
    #[serde(default)]
    include: Vec<String>,
    #[serde(default)]
    exclude: Vec<String>,
    // The kind and its keys (see `kind`).
    kind: Option<String>,
    item: Option<CssSelector>,
    link: Option<CssSelector>,
    title: Option<CssSelector>,
    date: Option<CssSelector>,
    summary: Option<CssSelector>,
    max_pages: Option<usize>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ConfigToml {
    #[serde(default)]
    storage: storage::StorageToml,
    #[serde(default)]
    cluster: cluster::ClusterToml,
    #[serde(default)]
    server: ServerConfig,
    #[serde(default)]
    feed: FeedConfig,
    #[serde(default)]
    fetch: FetchConfig,
    #[serde(default)]
    dedup: DedupConfig,
    #[serde(default)]
    defaults: Defaults,
    #[serde(default)]
    sources: Vec<SourceToml>,
    #[serde(default)]
    sites: Vec<SiteRuleConfig>,
}

/// The default schedule when neither the source nor `[defaults]` sets one.
const DEFAULT_SCHEDULE: &str = "0 */10 * * * *";

impl Config {
    /// Reads and validates a configuration file.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path)
            .map_err(|source| ConfigError::Read { path: path.to_owned(), source })?;
        Self::parse_with_database_url(&text, path, std::env::var(DATABASE_URL_VAR).ok())
    }

    /// Validates configuration text; `path` is only used in messages.
    pub fn parse(text: &str, path: &Path) -> Result<Config, ConfigError> {
        Self::parse_with_database_url(text, path, None)
    }

    /// Validates configuration text, with `$FEEDMILL_DATABASE_URL`'s value.
    fn parse_with_database_url(
        text: &str,
        path: &Path,
        database_url: Option<String>,
    ) -> Result<Config, ConfigError> {
        let invalid =
            |span: Option<std::ops::Range<usize>>, key: String, message: String| ConfigError::Invalid {
                path: path.to_owned(),
                line: span.map_or(1, |s| line_of(text, s.start)),
                key,
                message,
            };
        let deserializer = toml::Deserializer::parse(text)
            .map_err(|e| invalid(e.span(), "(syntax)".into(), e.message().to_owned()))?;
        let mut raw: ConfigToml = serde_path_to_error::deserialize(deserializer).map_err(|e| {
            let key = e.path().to_string();
            let inner = e.into_inner();
            invalid(inner.span(), key, inner.message().to_owned())
        })?;

        let default_schedule = pick_schedule(raw.defaults.schedule.clone(), raw.defaults.every)
            .map_err(|m| invalid(None, "defaults".into(), m))?
            .unwrap_or_else(|| Schedule::Cron(DEFAULT_SCHEDULE.into()));
        let default_full_text = raw.defaults.full_text.unwrap_or(true);

        let mut sources: Vec<Source> = Vec::with_capacity(raw.sources.len());
        let mut names = std::collections::HashSet::new();
        for (i, s) in raw.sources.into_iter().enumerate() {
            let span = s.name.span();
            let name = s.name.into_inner().trim().to_owned();
            if name.is_empty() {
                return Err(invalid(Some(span), format!("sources[{i}].name"), "must not be empty".into()));
            }
            if !names.insert(name.clone()) {
                return Err(invalid(
                    Some(span),
                    format!("sources[{i}].name"),
                    format!("duplicate source name `{name}`"),
                ));
            }
            if !matches!(s.url.scheme(), "http" | "https") {
                return Err(invalid(
                    Some(span),
                    format!("sources[{i}].url"),
                    format!("`{}` is not an http(s) URL", s.url),
                ));
            }
            let schedule = pick_schedule(s.schedule, s.every)
                .map_err(|m| invalid(Some(span.clone()), format!("sources[{i}]"), m))?
                .unwrap_or_else(|| default_schedule.clone());
            let kind_keys = kind::KindToml {
                kind: s.kind,
                item: s.item,
                link: s.link,
                title: s.title,
                date: s.date,
                summary: s.summary,
                max_pages: s.max_pages,
            };
            let (kind, url) = kind::resolve(kind_keys, &s.url)
                .map_err(|(key, m)| invalid(Some(span.clone()), format!("sources[{i}].{key}"), m))?;
            sources.push(Source {
                name,
                url,
                kind,
                schedule,
                full_text: s.full_text.unwrap_or(default_full_text),
                tags: s.tags.unwrap_or_else(|| raw.defaults.tags.clone()),
                priority: s.priority,
                filter: Filter::new(&s.include, &s.exclude)
                    .map_err(|m| invalid(Some(span.clone()), format!("sources[{i}].include/exclude"), m))?,
            });
        }
        if raw.feed.websub_hub.as_ref().is_some_and(|hub| !matches!(hub.scheme(), "http" | "https")) {
            return Err(invalid(None, "feed.websub_hub".into(), "must be an http(s) URL".into()));
        }
        for (i, language) in raw.feed.languages.iter_mut().enumerate() {
            *language = crate::language::normalize(language).ok_or_else(|| {
                invalid(
                    None,
                    format!("feed.languages[{i}]"),
                    format!("`{language}` is not a language tag like \"uk\" or \"en-GB\""),
                )
            })?;
        }
        if raw.feed.max_items == 0 {
            return Err(invalid(None, "feed.max_items".into(), "must be at least 1".into()));
        }
        let feed_filter = Filter::new(&raw.feed.include, &raw.feed.exclude)
            .map_err(|m| invalid(None, "feed.include/exclude".into(), m))?;
        if !(raw.dedup.threshold > 0.0 && raw.dedup.threshold <= 1.0) {
            return Err(invalid(
                None,
                "dedup.threshold".into(),
                format!("{} is not a similarity in (0, 1]", raw.dedup.threshold),
            ));
        }
        if raw.fetch.timeout_secs == 0 {
            return Err(invalid(None, "fetch.timeout_secs".into(), "must be at least 1".into()));
        }
        check_limits(&raw.fetch).map_err(|(key, message)| invalid(None, key, message))?;
        if raw.server.listen.parse::<std::net::SocketAddr>().is_err() {
            return Err(invalid(
                None,
                "server.listen".into(),
                format!("`{}` is not an address like 127.0.0.1:8080", raw.server.listen),
            ));
        }
        let storage = storage::resolve(raw.storage, database_url)
            .map_err(|(key, message)| invalid(None, key, message))?;
        let cluster = cluster::resolve(raw.cluster, &raw.server.listen)
            .map_err(|(key, message)| invalid(None, key, message))?;
        Ok(Config {
            path: path.to_owned(),
            storage,
            cluster,
            server: raw.server,
            feed: raw.feed,
            fetch: raw.fetch,
            feed_filter,
            dedup: DedupConfig {
                tracking_params: raw
                    .dedup
                    .tracking_params
                    .iter()
                    .map(|p| p.trim().to_ascii_lowercase())
                    .collect(),
                ..raw.dedup
            },
            sources,
            sites: raw.sites,
        })
    }

    /// The source called `name`, if configured.
    pub fn source(&self, name: &str) -> Option<&Source> {
        self.sources.iter().find(|s| s.name == name)
    }
}

/// Concurrency limits must be at least 1 and rates positive and finite.
fn check_limits(fetch: &FetchConfig) -> Result<(), (String, String)> {
    let count =
        |key: String, n: usize| if n == 0 { Err((key, "must be at least 1".to_owned())) } else { Ok(()) };
    let rate = |key: String, r: f64| {
        if r.is_finite() && r > 0.0 {
            Ok(())
        } else {
            Err((key, "must be a positive number of requests per second".to_owned()))
        }
    };
    count("fetch.max_connections".into(), fetch.max_connections)?;
    count("fetch.per_host_concurrency".into(), fetch.per_host_concurrency)?;
    rate("fetch.per_host_rate".into(), fetch.per_host_rate)?;
    for (host, o) in &fetch.hosts {
        if let Some(n) = o.concurrency {
            count(format!("fetch.hosts.\"{host}\".concurrency"), n)?;
        }
        if let Some(r) = o.rate {
            rate(format!("fetch.hosts.\"{host}\".rate"), r)?;
        }
    }
    Ok(())
}

/// 1-based line number of a byte offset.
fn line_of(text: &str, offset: usize) -> usize {
    text.get(..offset).unwrap_or(text).matches('\n').count() + 1
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Config, ConfigError> {
        Config::parse(text, Path::new("test.toml"))
    }

    #[test]
    fn minimal_config_gets_defaults() {
        let config = parse("[[sources]]\nname = \"a\"\nurl = \"https://example.com/rss\"\n").unwrap();
        assert_eq!(config.sources[0].schedule, Schedule::Cron(DEFAULT_SCHEDULE.into()));
        assert!(config.sources[0].full_text);
        assert_eq!(config.feed.max_items, 100);
        assert_eq!(config.server.listen, "127.0.0.1:8080");
    }

    #[test]
    fn source_overrides_defaults() {
        let config = parse(
            "[defaults]\nevery = \"5m\"\nfull_text = false\n\
             [[sources]]\nname = \"a\"\nurl = \"https://example.com/rss\"\n\
             [[sources]]\nname = \"b\"\nurl = \"https://example.com/b\"\nschedule = \"0 0 * * * *\"\nfull_text = true\ntags = [\"x\"]\n",
        )
        .unwrap();
        assert_eq!(config.sources[0].schedule, Schedule::Every(Duration::from_secs(300)));
        assert!(!config.sources[0].full_text);
        assert_eq!(config.sources[1].schedule, Schedule::Cron("0 0 * * * *".into()));
        assert!(config.sources[1].full_text);
        assert_eq!(config.sources[1].tags, vec!["x"]);
    }

    fn error_of(text: &str) -> (usize, String, String) {
        match parse(text) {
            Err(ConfigError::Invalid { line, key, message, .. }) => (line, key, message),
            other => panic!("expected an invalid-config error, got {other:?}"),
        }
    }

    #[test]
    fn unknown_key_names_line_and_key() {
        let (line, key, message) = error_of("[feed]\ntitle = \"x\"\ncolour = \"red\"\n");
        assert_eq!(line, 3);
        assert!(key.contains("colour") || message.contains("colour"), "{key} {message}");
    }

    #[test]
    fn bad_url_names_line_and_key() {
        let (line, key, _) = error_of("[[sources]]\nname = \"a\"\nurl = \"not a url\"\n");
        assert_eq!((line, key.as_str()), (3, "sources[0].url"));
    }

    #[test]
    fn bad_cron_names_line_and_key() {
        let (line, key, message) =
            error_of("[[sources]]\nname = \"a\"\nurl = \"https://e.com/\"\nschedule = \"every tuesday\"\n");
        assert_eq!((line, key.as_str()), (4, "sources[0].schedule"));
        assert!(message.contains("cron"), "{message}");
    }

    #[test]
    fn duplicate_source_name_is_rejected() {
        let (line, key, message) = error_of(
            "[[sources]]\nname = \"a\"\nurl = \"https://e.com/1\"\n[[sources]]\nname = \"a\"\nurl = \"https://e.com/2\"\n",
        );
        assert_eq!((line, key.as_str()), (5, "sources[1].name"));
        assert!(message.contains("duplicate"));
    }

    #[test]
    fn bad_selector_names_line_and_key() {
        let (line, key, message) = error_of("[[sites]]\nhosts = [\"e.com\"]\nbody = [\"div[[\"]\n");
        assert_eq!(line, 3);
        assert!(key.starts_with("sites[0].body"), "{key}");
        assert!(message.contains("CSS selector"));
    }

    #[test]
    fn non_http_source_is_rejected() {
        let (_, key, _) = error_of("[[sources]]\nname = \"a\"\nurl = \"file:///etc/passwd\"\n");
        assert_eq!(key, "sources[0].url");
    }

    #[test]
    fn schedule_and_every_together_are_rejected() {
        let (_, _, message) = error_of(
            "[[sources]]\nname = \"a\"\nurl = \"https://e.com/\"\nschedule = \"0 * * * * *\"\nevery = \"1m\"\n",
        );
        assert!(message.contains("either"));
    }

    #[test]
    fn durations_parse() {
        assert_eq!(parse_duration("90s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("1h30m"), Ok(Duration::from_secs(5400)));
        assert!(parse_duration("10").is_err());
        assert!(parse_duration("0s").is_err());
        assert!(parse_duration("ten minutes").is_err());
    }
}
