//! The fetch stage: HTTP GETs for feeds and article pages.
//!
//! One [`Fetcher`] holds two clients: [`http::FeedClient`] (hyper and the [`pool`], built for
//! polling thousands of feeds) for the feeds the operator configured, and a reqwest client for article
//! pages named by those feeds, which goes through the SSRF [`guard`] unless
//! `allow_private_networks` is set. Both use the configured User-Agent, proxy and total deadline,
//! follow at most 5 redirects, accept gzip and brotli, and cap the (decompressed) body size.

pub mod charset;
pub mod guard;
pub mod http;
pub mod politeness;
pub mod pool;

use std::sync::Arc;
use std::time::{Duration, Instant};

use hyper::StatusCode;
use reqwest::header::{self, HeaderMap, HeaderValue};
use reqwest::{redirect, Client};
use url::Url;

use crate::config::FetchConfig;
use http::FeedClient;
use politeness::Politeness;

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
    feeds: FeedClient,
    articles: Client,
    guard_articles: bool,
    config: Arc<FetchConfig>,
    politeness: Arc<Politeness>,
}

impl Fetcher {
    pub fn new(config: &FetchConfig) -> Result<Fetcher, FetchError> {
        let guard_articles = !config.allow_private_networks;
        let allowed_private: Vec<String> =
            config.hosts.iter().filter(|(_, o)| o.allow_private).map(|(host, _)| host.clone()).collect();
        Ok(Fetcher {
            feeds: FeedClient::new(config)?,
            articles: article_client(config, guard_articles.then_some(allowed_private))?,
            guard_articles,
            config: Arc::new(config.clone()),
            politeness: Arc::new(Politeness::new(config)),
        })
    }

    /// The shared per-host limits (for tests and the status of hosts).
    pub fn politeness(&self) -> &Politeness {
        &self.politeness
    }

    fn private_allowed(&self, url: &Url) -> bool {
        url.host_str().and_then(|h| self.config.host_override(h)).is_some_and(|o| o.allow_private)
    }

    /// Fetches a feed, conditionally when validators are known. Redirects are followed here, hop
    /// by hop, so that a permanent move can be reported and each hop is rate-limited.
    pub async fn fetch_feed(&self, url: &Url, validators: &Validators) -> Result<FeedResponse, FetchError> {
        let mut current = url.clone();
        let mut visited: Vec<Url> = Vec::new();
        let mut all_permanent = true;
        loop {
            let _permit = self.politeness.acquire(current.host_str().unwrap_or_default()).await;
            let hop = tokio::time::timeout(self.feeds.timeout(), self.feed_hop(&current, validators));
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

    /// One request of a feed fetch, body included.
    async fn feed_hop(&self, url: &Url, validators: &Validators) -> Result<Hop, FetchError> {
        let mut headers = vec![(header::ACCEPT, FEED_ACCEPT)];
        if let Some(etag) = &validators.etag {
            headers.push((header::IF_NONE_MATCH, etag));
        }
        if let Some(last_modified) = &validators.last_modified {
            headers.push((header::IF_MODIFIED_SINCE, last_modified));
        }
        let response = self.feeds.get(url, &headers).await?;
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

    /// Fetches an article page. A host that answers 429 or 503 is paused for its Retry-After.
    pub async fn fetch_page(&self, url: &Url) -> Result<Fetched, FetchError> {
        if self.guard_articles && !self.private_allowed(url) {
            if let Some(reason) = guard::refusal(url) {
                return Err(FetchError::Refused { url: url.to_string(), reason });
            }
        }
        let host = url.host_str().unwrap_or_default();
        let _permit = self.politeness.acquire(host).await;
        // Checked with the permit held: a request queued behind the one that got the 429 sees it.
        if let Some(until) = self.politeness.paused_until(host) {
            return Err(FetchError::HostPaused { url: url.to_string(), wait: until - Instant::now() });
        }
        let response = self
            .articles
            .get(url.as_str())
            .header(header::ACCEPT, "text/html, application/xhtml+xml;q=0.9, */*;q=0.5")
            .send()
            .await
            .map_err(|e| network(url, e))?;
        let result = self.read(url, response).await;
        if let Err(error) = &result {
            if error.is_deferral() {
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

    async fn read(&self, url: &Url, mut response: reqwest::Response) -> Result<Fetched, FetchError> {
        let limit = self.config.max_body_bytes;
        let mut fetched = head(url, response.status(), response.headers(), limit)?;
        fetched.url = response.url().clone();
        // Chunks arrive decompressed, so the cap also stops gzip and brotli bombs.
        while let Some(chunk) = response.chunk().await.map_err(|e| network(url, e))? {
            if fetched.body.len() as u64 + chunk.len() as u64 > limit {
                return Err(FetchError::TooLarge { url: url.to_string(), limit });
            }
            fetched.body.extend_from_slice(&chunk);
        }
        // Let the connection go back to the pool before the caller frees its slot, so the next
        // request reuses it instead of opening another one.
        drop(response);
        tokio::task::yield_now().await;
        Ok(fetched)
    }
}

/// One hop of a feed fetch.
enum Hop {
    NotModified,
    Redirect { status: u16, location: String },
    Fetched(Box<Fetched>),
}

/// What feeds accept.
const FEED_ACCEPT: &str = "application/rss+xml, application/atom+xml, application/feed+json, application/json;q=0.9, application/xml;q=0.9, text/xml;q=0.9, */*;q=0.8";
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

/// The article client: follows redirects itself (see [`redirect_policy`]) and, when `guarded`
/// lists the hosts allowed to be private, connects through the SSRF [`guard`].
fn article_client(config: &FetchConfig, guarded: Option<Vec<String>>) -> Result<Client, FetchError> {
    let mut headers = HeaderMap::new();
    headers.insert(header::ACCEPT_LANGUAGE, HeaderValue::from_static(ACCEPT_LANGUAGE));
    let mut builder = Client::builder()
        .user_agent(&config.user_agent)
        .default_headers(headers)
        .timeout(Duration::from_secs(config.timeout_secs))
        .connect_timeout(Duration::from_secs(config.timeout_secs.min(10)))
        .pool_max_idle_per_host(config.max_connections)
        .redirect(redirect_policy(guarded.clone()));
    if let Some(proxy) = &config.proxy {
        let proxy = reqwest::Proxy::all(proxy.as_str())
            .map_err(|e| FetchError::Client(e.to_string()))?
            .no_proxy(reqwest::NoProxy::from_env());
        builder = builder.proxy(proxy);
    }
    if let Some(allowed) = guarded {
        builder = builder.dns_resolver(Arc::new(guard::GuardedResolver::new(allowed)));
    }
    builder.build().map_err(|e| FetchError::Client(e.to_string()))
}

/// At most [`MAX_REDIRECTS`] hops, no loops, and (when guarded) no hop to a non-public literal IP
/// unless its host is allowed to be private.
fn redirect_policy(guarded: Option<Vec<String>>) -> redirect::Policy {
    redirect::Policy::custom(move |attempt| {
        if attempt.previous().len() > MAX_REDIRECTS {
            return attempt.error(format!("more than {MAX_REDIRECTS} redirects"));
        }
        let next = attempt.url().clone();
        if attempt.previous().contains(&next) {
            return attempt.error(format!("redirect loop at {next}"));
        }
        if let Some(allowed) = &guarded {
            let host = next.host_str().unwrap_or_default();
            if let Some(reason) = guard::refusal(&next).filter(|_| !guard::host_listed(host, allowed)) {
                return attempt.error(format!("redirect to {next} refused: {reason}"));
            }
        }
        attempt.follow()
    })
}

/// A reqwest error as a [`FetchError`].
fn network(url: &Url, error: reqwest::Error) -> FetchError {
    if error.is_timeout() {
        return timed_out(url);
    }
    network_error(url, &error)
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
