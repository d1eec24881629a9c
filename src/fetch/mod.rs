//! The fetch stage: HTTP GETs for feeds and article pages.
//!
//! One [`Fetcher`] holds two reqwest clients: one for the feeds the operator configured, and one for
//! article pages named by those feeds, which goes through the SSRF [`guard`] unless
//! `allow_private_networks` is set. Both use the configured User-Agent, proxy and total deadline,
//! follow at most 5 redirects, accept gzip and brotli, and cap the (decompressed) body size.

pub mod charset;
pub mod guard;

use std::sync::Arc;
use std::time::Duration;

use reqwest::header::{self, HeaderMap, HeaderValue};
use reqwest::{redirect, Client, StatusCode};
use url::Url;

use crate::config::FetchConfig;

/// The most redirects one request follows.
const MAX_REDIRECTS: usize = 5;

/// A request that did not produce a usable response.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error("{url}: refused: {reason}")]
    Refused { url: String, reason: String },
    #[error("{url}: HTTP {status}")]
    Status { url: String, status: u16 },
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
    pub body: Vec<u8>,
}

/// The answer to a conditional GET.
#[derive(Debug)]
pub enum FeedResponse {
    NotModified,
    Fetched(Fetched),
}

/// Makes the requests; cheap to clone.
#[derive(Clone)]
pub struct Fetcher {
    feeds: Client,
    articles: Client,
    guard_articles: bool,
    max_body_bytes: u64,
}

impl Fetcher {
    pub fn new(config: &FetchConfig) -> Result<Fetcher, FetchError> {
        let guard_articles = !config.allow_private_networks;
        Ok(Fetcher {
            feeds: build_client(config, false)?,
            articles: build_client(config, guard_articles)?,
            guard_articles,
            max_body_bytes: config.max_body_bytes,
        })
    }

    /// Fetches a feed, conditionally when validators are known.
    pub async fn fetch_feed(&self, url: &Url, validators: &Validators) -> Result<FeedResponse, FetchError> {
        let mut request = self.feeds.get(url.as_str()).header(
            header::ACCEPT,
            "application/rss+xml, application/atom+xml, application/feed+json, application/json;q=0.9, application/xml;q=0.9, text/xml;q=0.9, */*;q=0.8",
        );
        if let Some(etag) = &validators.etag {
            request = request.header(header::IF_NONE_MATCH, etag);
        }
        if let Some(last_modified) = &validators.last_modified {
            request = request.header(header::IF_MODIFIED_SINCE, last_modified);
        }
        let response = request.send().await.map_err(|e| network(url, e))?;
        if response.status() == StatusCode::NOT_MODIFIED {
            return Ok(FeedResponse::NotModified);
        }
        self.read(url, response).await.map(FeedResponse::Fetched)
    }

    /// Fetches an article page.
    pub async fn fetch_page(&self, url: &Url) -> Result<Fetched, FetchError> {
        if self.guard_articles {
            if let Some(reason) = guard::refusal(url) {
                return Err(FetchError::Refused { url: url.to_string(), reason });
            }
        }
        let response = self
            .articles
            .get(url.as_str())
            .header(header::ACCEPT, "text/html, application/xhtml+xml;q=0.9, */*;q=0.5")
            .send()
            .await
            .map_err(|e| network(url, e))?;
        self.read(url, response).await
    }

    async fn read(&self, url: &Url, mut response: reqwest::Response) -> Result<Fetched, FetchError> {
        let status = response.status();
        if !status.is_success() {
            return Err(FetchError::Status { url: url.to_string(), status: status.as_u16() });
        }
        let too_large = || FetchError::TooLarge { url: url.to_string(), limit: self.max_body_bytes };
        if response.content_length().is_some_and(|n| n > self.max_body_bytes) {
            return Err(too_large());
        }
        let headers = response.headers();
        let text = |name| headers.get(name).and_then(|v: &HeaderValue| v.to_str().ok()).map(str::to_owned);
        let content_type = text(header::CONTENT_TYPE);
        let validators = Validators { etag: text(header::ETAG), last_modified: text(header::LAST_MODIFIED) };
        let final_url = response.url().clone();
        let mut body = Vec::new();
        // Chunks arrive decompressed, so the cap also stops gzip and brotli bombs.
        while let Some(chunk) = response.chunk().await.map_err(|e| network(url, e))? {
            if body.len() as u64 + chunk.len() as u64 > self.max_body_bytes {
                return Err(too_large());
            }
            body.extend_from_slice(&chunk);
        }
        Ok(Fetched { status: status.as_u16(), url: final_url, content_type, validators, body })
    }
}

fn build_client(config: &FetchConfig, guarded: bool) -> Result<Client, FetchError> {
    let mut headers = HeaderMap::new();
    headers.insert(header::ACCEPT_LANGUAGE, HeaderValue::from_static("uk, en;q=0.8, *;q=0.5"));
    let mut builder = Client::builder()
        .user_agent(&config.user_agent)
        .default_headers(headers)
        .timeout(Duration::from_secs(config.timeout_secs))
        .connect_timeout(Duration::from_secs(config.timeout_secs.min(10)))
        .redirect(redirect_policy(guarded));
    if let Some(proxy) = &config.proxy {
        let proxy = reqwest::Proxy::all(proxy.as_str())
            .map_err(|e| FetchError::Client(e.to_string()))?
            .no_proxy(reqwest::NoProxy::from_env());
        builder = builder.proxy(proxy);
    }
    if guarded {
        builder = builder.dns_resolver(Arc::new(guard::GuardedResolver));
    }
    builder.build().map_err(|e| FetchError::Client(e.to_string()))
}

/// At most [`MAX_REDIRECTS`] hops, no loops, and (when guarded) no hop to a non-public literal IP.
fn redirect_policy(guarded: bool) -> redirect::Policy {
    redirect::Policy::custom(move |attempt| {
        if attempt.previous().len() > MAX_REDIRECTS {
            return attempt.error(format!("more than {MAX_REDIRECTS} redirects"));
        }
        let next = attempt.url().clone();
        if attempt.previous().contains(&next) {
            return attempt.error(format!("redirect loop at {next}"));
        }
        if guarded {
            if let Some(reason) = guard::refusal(&next) {
                return attempt.error(format!("redirect to {next} refused: {reason}"));
            }
        }
        attempt.follow()
    })
}

/// A reqwest error as text with its causes, which carry the useful part ("connection refused").
fn network(url: &Url, error: reqwest::Error) -> FetchError {
    let mut message = if error.is_timeout() { "timed out".to_owned() } else { error.to_string() };
    let mut cause = std::error::Error::source(&error);
    while let Some(inner) = cause {
        message.push_str(": ");
        message.push_str(&inner.to_string());
        cause = inner.source();
    }
    FetchError::Network { url: url.to_string(), message }
}
