//! The HTTP server (axum): the feeds, and a health check.
//!
//! Feeds: `/feed.{atom,rss,json}` (every story once), `/sources/{name}/feed.{atom,rss,json}`
//! (one source's items) and `/tags/{tag}/feed.{atom,rss,json}` (stories with that tag), each the
//! newest `max_items`. Rendered bytes are cached per feed and format, with their gzip and brotli
//! forms, until the store's items change (or for at most ten seconds); every response carries a strong ETag, Last-Modified
//! and Cache-Control, and matching validators get a `304`. `GET /stories/{id}` (and `.json`) is a
//! story's page, where the merged feed's entry ids lead; `/items/{id}` redirects there. `GET
//! /healthz` answers 200 with the version and the number of configured sources.

use std::collections::HashMap;
use std::io::Write;
use std::sync::{Arc, Mutex, OnceLock};

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use tokio::net::TcpListener;
use url::Url;

use crate::config::Config;
use crate::filter::{Filter, ItemText};
use crate::publish::{self, Channel, EntryView, Format};
use crate::shutdown::Shutdown;
use crate::store::{FeedScope, Store, StoryLookup};

/// How long readers and proxies may reuse a feed without asking again.
const CACHE_CONTROL: &str = "public, max-age=60";
/// Most rendered feeds kept; beyond it the cache starts over (tag URLs are unbounded).
const MAX_CACHED: usize = 256;
/// A rendered feed is checked against the store again after this long even when this process
/// wrote nothing (a `feedmill poll` run beside the daemon writes to the same database).
const MAX_RENDER_AGE: std::time::Duration = std::time::Duration::from_secs(10);

/// What the handlers need.
pub struct AppState {
    pub store: Store,
    pub title: String,
    /// Base URL readers reach the server at (ends with `/`).
    pub public_url: Url,
    /// A WebSub hub the feeds advertise.
    pub hub: Option<String>,
    pub max_items: usize,
    /// The configured sources' names and kinds (status page, health), replaced on reload.
    source_names: std::sync::RwLock<Vec<(String, &'static str)>>,
    /// `[feed] include/exclude`: applies to the merged and per-tag feeds.
    pub filter: Filter,
    /// When the daemon started (Unix seconds) and how long without a successful poll is unhealthy.
    started_at: i64,
    unhealthy_after: std::time::Duration,
    cache: Mutex<HashMap<FeedKey, Arc<Rendered>>>,
    /// Other nodes share the database: the status page shows them.
    shared: bool,
}

fn names_and_kinds(sources: &[crate::config::Source]) -> Vec<(String, &'static str)> {
    sources.iter().map(|s| (s.name.clone(), s.kind.name())).collect()
}

/// A rendered feed's identity: which items, which format, which page.
type FeedKey = (FeedScope, Format, Option<(i64, i64)>);

/// How many stored items a filtered feed looks through per entry it shows.
const FILTER_LOOKAHEAD: usize = 5;

impl AppState {
    /// The configured sources changed (a reload).
    pub fn set_sources(&self, sources: &[crate::config::Source]) {
        *self.source_names.write().unwrap_or_else(|p| p.into_inner()) = names_and_kinds(sources);
    }

    fn sources(&self) -> Vec<(String, &'static str)> {
        self.source_names.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    pub fn new(store: Store, config: &Config) -> AppState {
        AppState {
            store,
            title: config.feed.title.clone(),
            public_url: config.server.public_url.clone(),
            hub: config.feed.websub_hub.as_ref().map(Url::to_string),
            max_items: config.feed.max_items,
            source_names: std::sync::RwLock::new(names_and_kinds(&config.sources)),
            filter: config.feed_filter.clone(),
            started_at: Utc::now().timestamp(),
            unhealthy_after: config.server.unhealthy_after,
            cache: Mutex::default(),
            shared: config.storage.database.is_some(),
        }
    }
}

/// One rendered feed: the bytes, their validators, and compressed forms made on first demand.
struct Rendered {
    generation: u64,
    rendered_at: std::time::Instant,
    body: Bytes,
    etag: String,
    last_modified: DateTime<Utc>,
    gzip: OnceLock<Bytes>,
    brotli: OnceLock<Bytes>,
}

/// The `?before=` page cursor of an older page (RFC 5005 paging).
#[derive(Debug, Default, serde::Deserialize)]
struct Page {
    before: Option<String>,
}

type Request = (State<Arc<AppState>>, HeaderMap, Query<Page>);

pub fn router(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/feed.atom", get(|s, h, q| feed((s, h, q), FeedScope::All, Format::Atom)))
        .route("/feed.rss", get(|s, h, q| feed((s, h, q), FeedScope::All, Format::Rss)))
        .route("/feed.json", get(|s, h, q| feed((s, h, q), FeedScope::All, Format::Json)))
        .route(
            "/sources/{name}/{file}",
            get(|s, h, q, Path((name, file)): Path<(String, String)>| async move {
                match Format::from_file_name(&file) {
                    Some(format) => feed((s, h, q), FeedScope::Source(name), format).await,
                    None => not_found(),
                }
            }),
        )
        .route(
            "/tags/{tag}/{file}",
            get(|s, h, q, Path((tag, file)): Path<(String, String)>| async move {
                match Format::from_file_name(&file) {
                    Some(format) => feed((s, h, q), FeedScope::Tag(tag), format).await,
                    None => not_found(),
                }
            }),
        )
        .route("/stories/{file}", get(story_page))
        .route("/items/{id}", get(item_story))
        .route("/", get(status_page))
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics_text))
        .with_state(state)
}

/// Serves until shutdown; connections in flight are finished first.
pub async fn serve(listener: TcpListener, state: Arc<AppState>, shutdown: Shutdown) -> std::io::Result<()> {
    axum::serve(listener, router(state)).with_graceful_shutdown(async move { shutdown.wait().await }).await
}

fn not_found() -> Response {
    (StatusCode::NOT_FOUND, "no such feed; feeds are feed.atom, feed.rss and feed.json\n").into_response()
}

async fn feed((State(state), headers, Query(page)): Request, scope: FeedScope, format: Format) -> Response {
    let before = match page.before.as_deref().map(parse_cursor) {
        None => None,
        Some(Some(cursor)) => Some(cursor),
        Some(None) => return (StatusCode::BAD_REQUEST, "`before` is not a page cursor\n").into_response(),
    };
    let rendered = match rendered(&state, scope.clone(), format, before).await {
        Ok(Some(rendered)) => rendered,
        Ok(None) => return (StatusCode::NOT_FOUND, "no such source\n").into_response(),
        Err(error) => {
            tracing::error!(%error, ?scope, "cannot render a feed");
            return (StatusCode::INTERNAL_SERVER_ERROR, format!("cannot read the store: {error}\n"))
                .into_response();
        }
    };
    let mut response = if not_modified(&headers, &rendered) {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        let (encoding, body) = match preferred_encoding(&headers) {
            Some("br") => (Some("br"), rendered.brotli.get_or_init(|| brotli(&rendered.body)).clone()),
            Some("gzip") => (Some("gzip"), rendered.gzip.get_or_init(|| gzip(&rendered.body)).clone()),
            _ => (None, rendered.body.clone()),
        };
        let mut response = body.into_response();
        let headers = response.headers_mut();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(format.content_type()));
        if let Some(encoding) = encoding {
            headers.insert(header::CONTENT_ENCODING, HeaderValue::from_static(encoding));
        }
        response
    };
    let headers = response.headers_mut();
    if let Ok(etag) = HeaderValue::from_str(&rendered.etag) {
        headers.insert(header::ETAG, etag);
    }
    if let Ok(date) = HeaderValue::from_str(&http_date(&rendered.last_modified)) {
        headers.insert(header::LAST_MODIFIED, date);
    }
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static(CACHE_CONTROL));
    headers.insert(header::VARY, HeaderValue::from_static("Accept-Encoding"));
    response
}

/// The feed's rendered bytes: from the cache while the store has not changed since, else
/// rendered again (off the I/O threads); `None` for an unknown source.
async fn rendered(
    state: &Arc<AppState>,
    scope: FeedScope,
    format: Format,
    before: Option<(i64, i64)>,
) -> Result<Option<Arc<Rendered>>, crate::store::StoreError> {
    let generation = state.store.generation();
    let key = (scope.clone(), format, before);
    let cached = state.cache.lock().unwrap_or_else(|p| p.into_inner()).get(&key).cloned();
    if let Some(cached) =
        cached.as_ref().filter(|c| c.generation == generation && c.rendered_at.elapsed() < MAX_RENDER_AGE)
    {
        return Ok(Some(Arc::clone(cached)));
    }
    let filtered = !state.filter.is_empty() && !matches!(scope, FeedScope::Source(_));
    let limit = if filtered { state.max_items * FILTER_LOOKAHEAD } else { state.max_items };
    let Some(mut items) = state.store.entries(scope.clone(), limit, before).await? else { return Ok(None) };
    if filtered {
        items.retain(|item| {
            state.filter.accepts(&ItemText {
                title: &item.title,
                body: item.content_text.as_deref().or(item.summary.as_deref()).unwrap_or_default(),
                author: item.author.as_deref().unwrap_or_default(),
                tags: &item.categories,
                language: item.language.as_deref().unwrap_or_default(),
            })
        });
        items.truncate(state.max_items);
    }
    let mut channel = channel(state, &scope);
    channel.page = before.map(format_cursor);
    if items.len() == state.max_items {
        channel.next_page = items.last().map(|item| format_cursor(item.cursor()));
    }
    let public_url = state.public_url.clone();
    let body = tokio::task::spawn_blocking(move || {
        let entries: Vec<EntryView> =
            items.into_iter().map(|item| EntryView::new(item, &public_url)).collect();
        format.render(&channel, &entries)
    })
    .await
    .unwrap_or_default();
    let etag = strong_etag(body.as_bytes());
    // Last-Modified moves only when the bytes do.
    let last_modified = match cached {
        Some(old) if old.etag == etag => old.last_modified,
        _ => Utc::now(),
    };
    let rendered = Arc::new(Rendered {
        generation,
        rendered_at: std::time::Instant::now(),
        body: Bytes::from(body),
        etag,
        last_modified,
        gzip: OnceLock::new(),
        brotli: OnceLock::new(),
    });
    let mut cache = state.cache.lock().unwrap_or_else(|p| p.into_inner());
    if cache.len() >= MAX_CACHED {
        cache.clear();
    }
    cache.insert(key, Arc::clone(&rendered));
    Ok(Some(rendered))
}

fn channel(state: &AppState, scope: &FeedScope) -> Channel {
    let mut channel = Channel::for_scope(&state.title, &state.public_url, scope);
    channel.hub = state.hub.clone();
    channel
}

/// A page cursor as it appears in URLs: `TIME.ID`.
fn format_cursor((time, id): (i64, i64)) -> String {
    format!("{time}.{id}")
}

fn parse_cursor(text: &str) -> Option<(i64, i64)> {
    let (time, id) = text.split_once('.')?;
    Some((time.parse().ok()?, id.parse().ok()?))
}

fn strong_etag(body: &[u8]) -> String {
    use sha2::Digest;
    let digest = sha2::Sha256::digest(body);
    let hex: String = digest.iter().take(12).map(|b| format!("{b:02x}")).collect();
    format!("\"{hex}\"")
}

/// Whether the request's validators match: `If-None-Match` (any listed tag, or `*`) when sent,
/// else `If-Modified-Since` no earlier than the feed's last change.
fn not_modified(headers: &HeaderMap, rendered: &Rendered) -> bool {
    if let Some(tags) = headers.get(header::IF_NONE_MATCH).and_then(|v| v.to_str().ok()) {
        return tags
            .split(',')
            .map(str::trim)
            .any(|tag| tag == "*" || tag.trim_start_matches("W/") == rendered.etag);
    }
    headers
        .get(header::IF_MODIFIED_SINCE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| DateTime::parse_from_rfc2822(v).ok())
        .is_some_and(|since| rendered.last_modified.timestamp() <= since.timestamp())
}

/// `br` or `gzip` when the client accepts it (q > 0), brotli first.
fn preferred_encoding(headers: &HeaderMap) -> Option<&'static str> {
    let accept = headers.get(header::ACCEPT_ENCODING)?.to_str().ok()?;
    let accepted = |name: &str| {
        accept.split(',').any(|part| {
            let mut pieces = part.split(';').map(str::trim);
            let coding = pieces.next().unwrap_or_default();
            let refused =
                pieces.any(|p| p.strip_prefix("q=").and_then(|q| q.parse::<f32>().ok()) == Some(0.0));
            coding.eq_ignore_ascii_case(name) && !refused
        })
    };
    ["br", "gzip"].into_iter().find(|name| accepted(name))
}

fn gzip(body: &[u8]) -> Bytes {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    // Writing to a Vec cannot fail.
    let _ = encoder.write_all(body);
    Bytes::from(encoder.finish().unwrap_or_default())
}

fn brotli(body: &[u8]) -> Bytes {
    let mut out = Vec::new();
    {
        let mut writer = brotli::CompressorWriter::new(&mut out, 4096, 5, 22);
        let _ = writer.write_all(body);
    }
    Bytes::from(out)
}

/// An IMF-fixdate (`Sun, 06 Nov 1994 08:49:37 GMT`).
fn http_date(time: &DateTime<Utc>) -> String {
    time.format("%a, %d %b %Y %H:%M:%S GMT").to_string()
}

/// `GET /`: the status page.
/// `GET /stories/{id}` (HTML) and `/stories/{id}.json`: every report of a story; a story joined
/// into another leads there.
async fn story_page(State(state): State<Arc<AppState>>, Path(file): Path<String>) -> Response {
    let (id, json) = match file.strip_suffix(".json") {
        Some(id) => (id, true),
        None => (file.as_str(), false),
    };
    let Ok(id) = id.parse::<i64>() else { return no_such_story() };
    match state.store.story(id).await {
        Ok(Some(StoryLookup::Found(page))) if json => {
            ([(header::CONTENT_TYPE, "application/json")], publish::story::json(&state.public_url, &page))
                .into_response()
        }
        Ok(Some(StoryLookup::Found(page))) => {
            let html = publish::story::html(&state.title, &state.public_url, &page);
            ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], html).into_response()
        }
        Ok(Some(StoryLookup::JoinedInto(target))) => {
            let suffix = if json { ".json" } else { "" };
            Redirect::permanent(&format!("{}stories/{target}{suffix}", state.public_url)).into_response()
        }
        Ok(None) => no_such_story(),
        Err(error) => store_error(error),
    }
}

/// `GET /items/{id}`, the entry ids handed out before stories had their own: leads to the
/// item's story.
async fn item_story(State(state): State<Arc<AppState>>, Path(id): Path<String>) -> Response {
    let Ok(id) = id.parse::<i64>() else { return no_such_story() };
    match state.store.story_of_item(id).await {
        Ok(Some(story)) => {
            Redirect::permanent(&format!("{}stories/{story}", state.public_url)).into_response()
        }
        Ok(None) => no_such_story(),
        Err(error) => store_error(error),
    }
}

fn no_such_story() -> Response {
    (StatusCode::NOT_FOUND, "no such story\n").into_response()
}

fn store_error(error: crate::store::StoreError) -> Response {
    tracing::error!(%error, "cannot read the store");
    (StatusCode::INTERNAL_SERVER_ERROR, format!("cannot read the store: {error}\n")).into_response()
}

async fn status_page(State(state): State<Arc<AppState>>) -> Response {
    let nodes = match state.shared {
        true => state.store.nodes().await.unwrap_or_else(|error| {
            tracing::warn!(%error, "cannot read the nodes");
            Vec::new()
        }),
        false => Vec::new(),
    };
    match state.store.sources().await {
        Ok(rows) => {
            let html = crate::status::render(
                &state.title,
                &state.public_url,
                &rows,
                &state.sources(),
                &nodes,
                Utc::now().timestamp(),
            );
            ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], html).into_response()
        }
        Err(error) => {
            (StatusCode::INTERNAL_SERVER_ERROR, format!("cannot read the store: {error}\n")).into_response()
        }
    }
}

/// `GET /metrics`: every metric, OpenMetrics text (Prometheus reads it).
async fn metrics_text(State(state): State<Arc<AppState>>) -> Response {
    let m = crate::metrics::metrics();
    match state.store.size_bytes().await {
        Ok(bytes) => {
            m.database_bytes.set(bytes);
        }
        Err(error) => tracing::warn!(%error, "cannot read the database size"),
    }
    ([(header::CONTENT_TYPE, "application/openmetrics-text; version=1.0.0; charset=utf-8")], m.encode())
        .into_response()
}

/// `GET /healthz`: 200 when the store takes writes and some source was polled successfully
/// within `unhealthy_after` (counted from start at the earliest); else 503 naming the problems.
async fn healthz(State(state): State<Arc<AppState>>) -> Response {
    let mut problems = Vec::new();
    if let Err(error) = state.store.probe_write().await {
        problems.push(format!("the database does not take writes: {error}"));
    }
    match state.store.last_success_at().await {
        Ok(last) => {
            let since = last.unwrap_or(0).max(state.started_at);
            let silent = Utc::now().timestamp() - since;
            if !state.sources().is_empty() && silent > state.unhealthy_after.as_secs() as i64 {
                problems.push(format!("no source polled successfully for {silent} s"));
            }
        }
        Err(error) => problems.push(format!("cannot read the sources: {error}")),
    }
    let status = if problems.is_empty() { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    let body = Json(serde_json::json!({
        "status": if problems.is_empty() { "ok" } else { "degraded" },
        "version": env!("CARGO_PKG_VERSION"),
        "node": state.store.node(),
        "sources": state.sources().len(),
        "problems": problems,
    }));
    (status, body).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(header::HeaderName, &str)]) -> HeaderMap {
        pairs.iter().map(|(k, v)| (k.clone(), HeaderValue::from_str(v).unwrap())).collect()
    }

    #[test]
    fn encodings_and_validators() {
        assert_eq!(
            preferred_encoding(&headers(&[(header::ACCEPT_ENCODING, "gzip, deflate, br")])),
            Some("br")
        );
        assert_eq!(preferred_encoding(&headers(&[(header::ACCEPT_ENCODING, "br;q=0, gzip")])), Some("gzip"));
        assert_eq!(preferred_encoding(&headers(&[(header::ACCEPT_ENCODING, "identity")])), None);
        let rendered = Rendered {
            generation: 0,
            rendered_at: std::time::Instant::now(),
            body: Bytes::from_static(b"x"),
            etag: "\"abc\"".into(),
            last_modified: DateTime::from_timestamp(1_000_000, 0).unwrap(),
            gzip: OnceLock::new(),
            brotli: OnceLock::new(),
        };
        assert!(not_modified(&headers(&[(header::IF_NONE_MATCH, "\"x\", W/\"abc\"")]), &rendered));
        assert!(!not_modified(&headers(&[(header::IF_NONE_MATCH, "\"x\"")]), &rendered));
        let since = http_date(&rendered.last_modified);
        assert!(not_modified(&headers(&[(header::IF_MODIFIED_SINCE, &since)]), &rendered));
        let earlier = http_date(&DateTime::from_timestamp(999_999, 0).unwrap());
        assert!(!not_modified(&headers(&[(header::IF_MODIFIED_SINCE, &earlier)]), &rendered));
    }
}
