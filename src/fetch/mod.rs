//! The fetch stage: HTTP GETs for feeds and article pages.
//!
//! One [`Fetcher`] holds two [`http::Client`]s sharing one connection [`pool`]: one for the feeds
//! the operator configured, and one for article pages named by those feeds, which resolves names
//! through the SSRF [`guard`] unless `allow_private_networks` is set. Redirects are followed here,
//! hop by hop (at most 5, no loops): each hop takes its host's request slot and rate, a page's
//! hops are checked by the guard, and a feed's permanent move is reported. Both use the
//! configured User-Agent, proxy and total deadline, accept gzip and brotli, and cap the
//! (decompressed) body size.

pub mod charset;
pub mod guard;
pub mod http;
pub mod politeness;
pub mod pool;

use std::sync::Arc;
use std::time::{Duration, Instant};

use hyper::header::{self, HeaderMap, HeaderValue};
use hyper::StatusCode;
use url::Url;

use crate::config::FetchConfig;
use guard::Resolver;
use http::Client;
use politeness::Politeness;
use pool::Pool;

/// The most redirects one request follows.
const MAX_REDIRECTS: usize = 5;
/// How long a host that answered 429/503 without Retry-After is left alone.
const DEFAULT_RETRY_AFTER: Duration = Duration::from_secs(60);

/// A request that did not produce a usable response.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error("{url}: refused: {reason}")]
    Refused { url: String, reason: String },
    #[error("{url}: HTTP {status}{}", retry_after.map(|d| format!(" (retry after {}s)", d.as_secs())).unwrap_or_default())]
    Status { url: String, status: u16, retry_after: Option<Duration> },
    #[error("{url}: the host asked for a pause; retrying in {}s", wait.as_secs())]
    HostPaused { url: String, wait: Duration },
    #[error("{url}: body larger than {limit} bytes")]
    TooLarge { url: String, limit: u64 },
    #[error("{url}: {message}")]
    Network { url: String, message: String },
    #[error("cannot build the HTTP client: {0}")]
    Client(String),
}

impl FetchError {
    /// The HTTP status, when the server answered with one.
    pub fn status(&self) -> Option<u16> {
        match self {
            FetchError::Status { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// How long the server asked us to wait (Retry-After on 429/503), or the pause in force.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            FetchError::Status { retry_after, .. } => *retry_after,
            FetchError::HostPaused { wait, .. } => Some(*wait),
            _ => None,
        }
    }

    /// A "come back later" answer (429, 503, a paused host): the request should be retried, not
    /// given up on.
    pub fn is_deferral(&self) -> bool {
        matches!(self, FetchError::HostPaused { .. } | FetchError::Status { status: 429 | 503, .. })
    }
}

/// Validators from an earlier response, sent back as a conditional GET.
#[derive(Debug, Clone, Default)]
pub struct Validators {
    pub etag: Option<String>,
    pub last_modified: Option<String>,
}

/// A successful response with its body read.
#[derive(Debug)]
pub struct Fetched {
    pub status: u16,
    /// The URL after redirects.
    pub url: Url,
    pub content_type: Option<String>,
    pub validators: Validators,
    /// How long the publisher says the response stays fresh (Cache-Control max-age, Expires).
    pub freshness: Option<Duration>,
    /// For feeds: the new URL when every redirect on the way was permanent (301/308).
    pub moved_permanently: Option<Url>,
    pub body: Vec<u8>,
}

/// The answer to a conditional GET.
#[derive(Debug)]
pub enum FeedResponse {
    NotModified,
    Fetched(Box<Fetched>),
}

/// Makes the requests; cheap to clone.
#[derive(Clone)]
pub struct Fetcher {
    feeds: Client,
    articles: Client,
    guard_articles: bool,
    config: Arc<FetchConfig>,
    politeness: Arc<Politeness>,
}

/// What is fetched: a feed (conditionally, permanent moves reported) or an article page (through
/// the SSRF guard, and not while its host asked for a pause).
#[derive(Clone, Copy, PartialEq)]
enum Kind {
    Feed,
    Page,
}

impl Fetcher {
    pub fn new(config: &FetchConfig) -> Result<Fetcher, FetchError> {
        let guard_articles = !config.allow_private_networks;
        let allowed_private: Vec<String> =
            config.hosts.iter().filter(|(_, o)| o.allow_private).map(|(host, _)| host.clone()).collect();
        let pool = Arc::new(Pool::new(config));
        let article_resolver =
            if guard_articles { Resolver::guarded(allowed_private) } else { Resolver::default() };
        Ok(Fetcher {
            feeds: Client::new(config, Arc::clone(&pool), Resolver::default())?,
            articles: Client::new(config, pool, article_resolver)?,
            guard_articles,
            config: Arc::new(config.clone()),
            politeness: Arc::new(Politeness::new(config)),
        })
    }

    /// The same fetcher, its per-host limits held together with the other nodes sharing `limits`.
    pub fn with_shared_limits(mut self, limits: Arc<dyn politeness::SharedLimits>) -> Fetcher {
        self.politeness = Arc::new(Politeness::new(&self.config).shared_with(limits));
        self
    }

    /// The shared per-host limits (for tests and the status of hosts).
    pub fn politeness(&self) -> &Politeness {
        &self.politeness
    }

    /// Fetches a feed, conditionally when validators are known, reporting a permanent move.
    pub async fn fetch_feed(&self, url: &Url, validators: &Validators) -> Result<FeedResponse, FetchError> {
        self.fetch(Kind::Feed, url, validators).await
    }

    /// Fetches an article page. A host that answers 429 or 503 is paused for its Retry-After.
    pub async fn fetch_page(&self, url: &Url) -> Result<Fetched, FetchError> {
        let result = match self.fetch(Kind::Page, url, &Validators::default()).await {
            Ok(FeedResponse::Fetched(fetched)) => Ok(*fetched),
            Ok(FeedResponse::NotModified) => {
                Err(FetchError::Status { url: url.to_string(), status: 304, retry_after: None })
            }
            Err(error) => Err(error),
        };
        if let Err(error) = &result {
            if error.is_deferral() {
                let host = url.host_str().unwrap_or_default();
                let wait = error.retry_after().unwrap_or(DEFAULT_RETRY_AFTER);
                tracing::warn!(
                    host,
                    wait_secs = wait.as_secs(),
                    "host asked us to slow down; pausing its article fetches"
                );
                self.politeness.pause(host, Instant::now() + wait);
            }
        }
        result
    }

    /// Why an article URL (or a hop of its redirects) may not be fetched, if it may not.
    fn refusal(&self, url: &Url) -> Option<FetchError> {
        if !self.guard_articles {
            return None;
        }
        let host = url.host_str().unwrap_or_default();
        let listed = self.config.host_override(host).is_some_and(|o| o.allow_private);
        let reason = guard::refusal(url).filter(|_| !listed)?;
        Some(FetchError::Refused { url: url.to_string(), reason })
    }

    /// Follows redirects hop by hop — at most [`MAX_REDIRECTS`], no loops — each hop taking its
    /// host's request slot and rate, and (for pages) checked by the SSRF guard.
    async fn fetch(
        &self,
        kind: Kind,
        url: &Url,
        validators: &Validators,
    ) -> Result<FeedResponse, FetchError> {
        let mut current = url.clone();
        let mut visited: Vec<Url> = Vec::new();
        let mut all_permanent = true;
        loop {
            if kind == Kind::Page {
                if let Some(refused) = self.refusal(&current) {
                    return Err(refused);
                }
            }
            let host = current.host_str().unwrap_or_default();
            let _permit = self.politeness.acquire(host).await;
            // Checked with the permit held: a request queued behind the one that got the 429 sees it.
            if let Some(until) = self.politeness.paused_until(host).filter(|_| kind == Kind::Page) {
                return Err(FetchError::HostPaused {
                    url: current.to_string(),
                    wait: until - Instant::now(),
                });
            }
            let hop = tokio::time::timeout(self.feeds.timeout(), self.hop(kind, &current, validators));
            let hop = hop.await.map_err(|_| timed_out(&current))??;
            let (status, location) = match hop {
                Hop::NotModified => return Ok(FeedResponse::NotModified),
                Hop::Fetched(mut fetched) => {
                    fetched.moved_permanently =
                        (!visited.is_empty() && all_permanent).then(|| current.clone());
                    return Ok(FeedResponse::Fetched(fetched));
                }
                Hop::Redirect { status, location } => (status, location),
            };
            let next = current.join(&location).map_err(|e| FetchError::Network {
                url: current.to_string(),
                message: format!("bad redirect Location `{location}`: {e}"),
            })?;
            all_permanent &= matches!(status, 301 | 308);
            visited.push(std::mem::replace(&mut current, next));
            if visited.contains(&current) {
                return Err(FetchError::Network {
                    url: url.to_string(),
                    message: format!("redirect loop at {current}"),
                });
            }
            if visited.len() > MAX_REDIRECTS {
                return Err(FetchError::Network {
                    url: url.to_string(),
                    message: format!("more than {MAX_REDIRECTS} redirects"),
                });
            }
        }
    }

    /// One request, body included.
    async fn hop(&self, kind: Kind, url: &Url, validators: &Validators) -> Result<Hop, FetchError> {
        let (client, mut headers) = match kind {
            Kind::Feed => (&self.feeds, vec![(header::ACCEPT, FEED_ACCEPT)]),
            Kind::Page => (&self.articles, vec![(header::ACCEPT, PAGE_ACCEPT)]),
        };
        if let Some(etag) = &validators.etag {
            headers.push((header::IF_NONE_MATCH, etag));
        }
        if let Some(last_modified) = &validators.last_modified {
            headers.push((header::IF_MODIFIED_SINCE, last_modified));
        }
        let response = client.get(url, &headers).await?;
        let status = response.status;
        let location =
            response.headers.get(header::LOCATION).and_then(|l| l.to_str().ok()).map(str::to_owned);
        let hop = match (status, location) {
            (StatusCode::NOT_MODIFIED, _) => Hop::NotModified,
            (status, Some(location)) if status.is_redirection() => {
                Hop::Redirect { status: status.as_u16(), location }
            }
            (status, _) => match head(url, status, &response.headers, self.config.max_body_bytes) {
                Ok(mut fetched) => {
                    fetched.body = response.body(url, self.config.max_body_bytes).await?;
                    return Ok(Hop::Fetched(Box::new(fetched)));
                }
                Err(error) => {
                    response.release().await;
                    return Err(error);
                }
            },
        };
        response.release().await;
        Ok(hop)
    }
}

/// One hop of a fetch.
enum Hop {
    NotModified,
    Redirect { status: u16, location: String },
    Fetched(Box<Fetched>),
}

/// What feeds accept.
const FEED_ACCEPT: &str = "application/rss+xml, application/atom+xml, application/feed+json, application/json;q=0.9, application/xml;q=0.9, text/xml;q=0.9, */*;q=0.8";
/// What article pages accept.
const PAGE_ACCEPT: &str = "text/html, application/xhtml+xml;q=0.9, */*;q=0.5";
/// The languages asked for: Ukrainian first, as the first sources are Ukrainian.
const ACCEPT_LANGUAGE: &str = "uk, en;q=0.8, *;q=0.5";

/// A response's status and headers as a [`Fetched`] with no body yet; an error for a status other
/// than success, or a declared length over `limit`.
fn head(url: &Url, status: StatusCode, headers: &HeaderMap, limit: u64) -> Result<Fetched, FetchError> {
    if !status.is_success() {
        return Err(FetchError::Status {
            url: url.to_string(),
            status: status.as_u16(),
            retry_after: retry_after(headers),
        });
    }
    let content_length =
        headers.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    let compressed = headers.contains_key(header::CONTENT_ENCODING);
    if content_length.is_some_and(|n| n > limit) && !compressed {
        return Err(FetchError::TooLarge { url: url.to_string(), limit });
    }
    let text = |name| headers.get(name).and_then(|v: &HeaderValue| v.to_str().ok()).map(str::to_owned);
    Ok(Fetched {
        status: status.as_u16(),
        url: url.clone(),
        content_type: text(header::CONTENT_TYPE),
        validators: Validators { etag: text(header::ETAG), last_modified: text(header::LAST_MODIFIED) },
        freshness: freshness(headers),
        moved_permanently: None,
        body: Vec::new(),
    })
}

fn timed_out(url: &Url) -> FetchError {
    FetchError::Network { url: url.to_string(), message: "timed out".into() }
}

/// An error as text with its causes, which carry the useful part ("Connection refused").
fn network_error(url: &Url, error: &(dyn std::error::Error + 'static)) -> FetchError {
    let mut message = error.to_string();
    let mut cause = error.source();
    while let Some(inner) = cause {
        message.push_str(": ");
        message.push_str(&inner.to_string());
        cause = inner.source();
    }
    FetchError::Network { url: url.to_string(), message }
}

/// Retry-After as seconds or an HTTP date.
fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let value = headers.get(header::RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let when = chrono::DateTime::parse_from_rfc2822(value).ok()?;
    (when.with_timezone(&chrono::Utc) - chrono::Utc::now()).to_std().ok()
}

/// How long the response says it stays fresh: `Cache-Control: max-age`, else `Expires` − `Date`.
fn freshness(headers: &HeaderMap) -> Option<Duration> {
    let text = |name| headers.get(name).and_then(|v: &HeaderValue| v.to_str().ok());
    if let Some(cache_control) = text(header::CACHE_CONTROL) {
        let max_age = cache_control
            .split(',')
            .find_map(|d| d.trim().strip_prefix("max-age=")?.trim_matches('"').parse::<u64>().ok());
        if let Some(seconds) = max_age {
            return Some(Duration::from_secs(seconds));
        }
    }
    let expires = chrono::DateTime::parse_from_rfc2822(text(header::EXPIRES)?).ok()?;
    let date = text(header::DATE)
        .and_then(|d| chrono::DateTime::parse_from_rfc2822(d).ok())
        .map(|d| d.with_timezone(&chrono::Utc));
    (expires.with_timezone(&chrono::Utc) - date.unwrap_or_else(chrono::Utc::now)).to_std().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(header::HeaderName, &str)]) -> HeaderMap {
        pairs.iter().map(|(k, v)| (k.clone(), HeaderValue::from_str(v).unwrap())).collect()
    }

    #[test]
    fn retry_after_reads_seconds_and_dates() {
        assert_eq!(retry_after(&headers(&[(header::RETRY_AFTER, "120")])), Some(Duration::from_secs(120)));
        let later = (chrono::Utc::now() + chrono::Duration::seconds(300)).to_rfc2822();
        let parsed = retry_after(&headers(&[(header::RETRY_AFTER, &later)])).unwrap();
        assert!((298..=300).contains(&parsed.as_secs()), "{parsed:?}");
        assert_eq!(retry_after(&headers(&[(header::RETRY_AFTER, "soon")])), None);
    }

    #[test]
    fn freshness_from_cache_control_or_expires() {
        let h = headers(&[(header::CACHE_CONTROL, "public, max-age=1800")]);
        assert_eq!(freshness(&h), Some(Duration::from_secs(1800)));
        let h = headers(&[
            (header::DATE, "Wed, 02 Jul 2025 10:00:00 GMT"),
            (header::EXPIRES, "Wed, 02 Jul 2025 11:00:00 GMT"),
        ]);
        assert_eq!(freshness(&h), Some(Duration::from_secs(3600)));
        assert_eq!(freshness(&HeaderMap::new()), None);
    }
}
