//! One poll of one source: the one place that orders the pipeline's stages.
//!
//! fetch the source's document (conditionally) → read it with the reader of the source's kind
//! (a page that links a feed: that feed; a sitemap index's children, a channel's older pages: in
//! the same poll) → drop what this source already delivered → for new items, fetch the page once
//! per canonical link and extract its body, else use the feed's text ([`pages`]) → commit
//! everything, and the source's new poll state, in one transaction.
//!
//! A failure is recorded on the source and logged; it never touches stored items and never
//! affects other sources. On shutdown a poll stops fetching pages and commits what it finished.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::Utc;
use tokio::sync::Semaphore;
use url::Url;

use crate::config::{Config, Source, SourceKind};
use crate::dedup::near;
use crate::dedup::LinkRules;
use crate::extract::Extractor;
use crate::feed::{self, FeedItem};
use crate::fetch::charset::{decode_html, feed_to_utf8};
use crate::fetch::{FeedResponse, FetchError, Fetcher};
use crate::metrics::metrics;
use crate::shutdown::Shutdown;
use crate::store::{Candidate, Claim, CommitCounts, PollState, PollSuccess, Store, StoreError};
use crate::websub::Notifier;

mod pages;

use pages::{feed_hash, NewItem, SharedPage};

/// The longest a failing source is left alone.
const MAX_BACKOFF: Duration = Duration::from_secs(24 * 3600);
/// Bodies up to this size get their dedup signature on the poll's own task (a few µs).
const INLINE_SIGNATURE_BYTES: usize = 2048;
/// Most further documents of a source read in one poll: a sitemap index's children, a Telegram
/// channel's older pages.
const MORE_DOCUMENTS: usize = 10;

/// Why a poll failed.
#[derive(Debug, thiserror::Error)]
pub enum PollError {
    #[error("source `{0}` is not known to the store")]
    UnknownSource(String),
    #[error(transparent)]
    Fetch(#[from] FetchError),
    #[error("{url}: {error}")]
    Parse { url: String, error: feed::ParseError },
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("internal task failed: {0}")]
    Task(String),
}

/// What one poll did, for logs and `feedmill poll`.
#[derive(Debug, Clone)]
pub struct PollReport {
    pub source: String,
    /// HTTP status of the feed request, when there was a response.
    pub status: Option<u16>,
    pub new: usize,
    pub duplicate: usize,
    /// Stored but merged into another source's report of the same story.
    pub merged: usize,
    pub updated: usize,
    /// Stored hidden: they failed the source's filter.
    pub filtered: usize,
    /// "not modified", "unchanged", "retry in 600s"…
    pub note: Option<String>,
    pub error: Option<String>,
    pub duration: Duration,
}

/// Polls sources; shared by the scheduler's jobs.
pub struct Poller {
    store: Store,
    fetcher: Fetcher,
    extractor: Arc<Extractor>,
    source_ids: HashMap<String, i64>,
    /// Each source's poll state, loaded once and kept in step with the store (this process is
    /// its only writer), so a poll needs no read before its request.
    states: Mutex<HashMap<i64, PollState>>,
    /// When other nodes share the database: the lease this node takes on a source before
    /// polling it (with its poll state fresh from the database, instead of `states`).
    lease: Option<Duration>,
    shutdown: Shutdown,
    poll_slots: Semaphore,
    max_interval: Duration,
    links: LinkRules,
    /// Told about sources whose published entries changed (WebSub).
    notifier: Option<Notifier>,
    /// Recent and in-flight page fetches by canonical link: two sources announcing the same
    /// article at the same moment cause one request.
    pages: Mutex<HashMap<String, SharedPage>>,
    /// The dedup window: sitemap entries older than this are no news.
    window: Duration,
}

impl Poller {
    pub fn new(
        store: Store,
        fetcher: Fetcher,
        extractor: Arc<Extractor>,
        source_ids: HashMap<String, i64>,
        states: HashMap<i64, PollState>,
        config: &Config,
        shutdown: Shutdown,
    ) -> Poller {
        Poller {
            store,
            fetcher,
            extractor,
            source_ids,
            states: Mutex::new(states),
            lease: None,
            shutdown,
            poll_slots: Semaphore::new(config.fetch.max_connections),
            max_interval: config.fetch.max_interval,
            links: LinkRules { extra_tracking: config.dedup.tracking_params.clone() },
            notifier: None,
            pages: Mutex::new(HashMap::new()),
            window: config.dedup.window,
        }
    }

    /// The same poller, sharing the sources with other nodes: a poll first takes a lease on its
    /// source for `lease` (renewed by the node's heartbeat), and only if the source is due and
    /// no other node holds it.
    pub fn with_lease(mut self, lease: Duration) -> Poller {
        self.lease = Some(lease);
        self
    }

    /// This node's name.
    pub fn node(&self) -> &str {
        self.store.node()
    }

    /// The same poller, reporting changed sources to a WebSub notifier.
    pub fn with_notifier(mut self, notifier: Notifier) -> Poller {
        self.notifier = Some(notifier);
        self
    }

    /// Polls one source, records the outcome and logs one line. Unless `force`d, a source whose
    /// backoff, Retry-After or publisher's pace says "not yet" is skipped (`None`).
    pub async fn poll(&self, source: &Source, force: bool) -> Option<PollReport> {
        let started = Instant::now();
        let mut report = PollReport {
            source: source.name.clone(),
            status: None,
            new: 0,
            duplicate: 0,
            merged: 0,
            updated: 0,
            filtered: 0,
            note: None,
            error: None,
            duration: Duration::ZERO,
        };
        let Some(&source_id) = self.source_ids.get(&source.name) else {
            report.error = Some(PollError::UnknownSource(source.name.clone()).to_string());
            return Some(report);
        };
        let state = match self.lease {
            Some(lease) => self.claim(source, source_id, lease, force).await?,
            None => {
                let state = self.state(source_id);
                if !force && state.not_before.is_some_and(|t| t > Utc::now().timestamp()) {
                    tracing::debug!(source = %source.name, "backing off; tick skipped");
                    return None;
                }
                state
            }
        };
        // Bounds the polls in flight (and the parsed feeds waiting for the writer) at any time.
        let _slot = self.poll_slots.acquire().await.ok();
        if let Err(error) = self.try_poll(source, source_id, &state, &mut report).await {
            report.error = Some(error.to_string());
            let fetch_error = match &error {
                PollError::Fetch(fetch) => Some(fetch),
                _ => None,
            };
            report.status = report.status.or(fetch_error.and_then(FetchError::status));
            let wait = backoff(
                source.schedule.interval(),
                state.error_count + 1,
                fetch_error.and_then(FetchError::retry_after),
                random_unit(),
            );
            let retry_at = Utc::now().timestamp() + wait.as_secs() as i64;
            match self.store.record_failure(source_id, report.status, error.to_string(), retry_at).await {
                Ok(()) => self.update_state(source_id, |s| s.after_failure(retry_at)),
                Err(store_error) => {
                    tracing::error!(source = %source.name, error = %store_error, "cannot record poll failure")
                }
            }
            report.note = Some(format!("retry in {}s", wait.as_secs()));
        }
        report.duration = started.elapsed();
        let outcome = match (&report.error, report.status) {
            (Some(_), _) => "error",
            (None, Some(304)) => "not_modified",
            (None, _) if report.note.as_deref() == Some("unchanged") => "not_modified",
            (None, _) => "ok",
        };
        let m = metrics();
        m.poll(&source.name, outcome);
        for (kind, count) in crate::metrics::ITEM_KINDS.iter().zip([
            report.new,
            report.duplicate,
            report.merged,
            report.updated,
            report.filtered,
        ]) {
            m.items(&source.name, kind, count);
        }
        let status = report.status.map_or_else(|| "-".to_owned(), |s| s.to_string());
        let duration_ms = report.duration.as_millis() as u64;
        let note = report.note.as_deref().unwrap_or("");
        match &report.error {
            None => tracing::info!(
                source = %source.name, status = %status, new = report.new, duplicate = report.duplicate,
                merged = report.merged, updated = report.updated, filtered = report.filtered,
                duration_ms, note, "poll"
            ),
            Some(error) => tracing::warn!(
                source = %source.name, status = %status, duration_ms, error = %error, note, "poll failed"
            ),
        }
        Some(report)
    }

    /// Takes the lease on a source shared with other nodes; its poll state, or `None` when it
    /// is not due (backoff and pacing included, unless `force`d) or another node polls it now.
    async fn claim(
        &self,
        source: &Source,
        source_id: i64,
        lease: Duration,
        force: bool,
    ) -> Option<PollState> {
        // Due within a tenth of the interval: a node's tick that comes a little early still polls.
        let tolerance = (source.schedule.interval() / 10).min(Duration::from_secs(60));
        let claim = Claim {
            lease_secs: lease.as_secs() as i64,
            due_by: Utc::now().timestamp() + tolerance.as_secs() as i64,
            force,
        };
        match self.store.claim(source_id, claim).await {
            Ok(Some(state)) => Some(state),
            Ok(None) => {
                tracing::debug!(source = %source.name, "not due, or polled by another node; tick skipped");
                None
            }
            Err(error) => {
                tracing::warn!(source = %source.name, %error, "cannot take the lease on the source; tick skipped");
                None
            }
        }
    }

    fn state(&self, source_id: i64) -> PollState {
        let states = self.states.lock().unwrap_or_else(|p| p.into_inner());
        states.get(&source_id).cloned().unwrap_or_default()
    }

    fn update_state(&self, source_id: i64, update: impl FnOnce(&mut PollState)) {
        let mut states = self.states.lock().unwrap_or_else(|p| p.into_inner());
        update(states.entry(source_id).or_default());
    }

    /// Commits a poll and keeps the in-memory state in step.
    async fn commit(
        &self,
        source_id: i64,
        candidates: Vec<Candidate>,
        success: PollSuccess,
    ) -> Result<CommitCounts, StoreError> {
        let counts = self.store.commit_poll(source_id, candidates, success.clone()).await?;
        self.update_state(source_id, |s| s.after_success(&success));
        Ok(counts)
    }

    async fn try_poll(
        &self,
        source: &Source,
        source_id: i64,
        state: &PollState,
        report: &mut PollReport,
    ) -> Result<(), PollError> {
        // A permanent redirect seen earlier is followed directly, until the config changes.
        let url = match (&state.moved_from, &state.moved_to) {
            (Some(from), Some(to)) if *from == source.url.as_str() => {
                Url::parse(to).unwrap_or(source.url.clone())
            }
            _ => source.url.clone(),
        };
        let requested = Instant::now();
        let response = self.fetcher.fetch_feed(&url, &state.validators).await;
        let status = match &response {
            Ok(FeedResponse::NotModified) => Some(304),
            Ok(FeedResponse::Fetched(fetched)) => Some(fetched.status),
            Err(error) => error.status(),
        };
        metrics().response("feed", status, requested.elapsed());
        let fetched = match response? {
            FeedResponse::NotModified => {
                report.status = Some(304);
                report.note = Some("not modified".into());
                let success =
                    PollSuccess { status: 304, next_poll_at: next_poll(source, None), ..Default::default() };
                self.store.record_not_modified(source_id, success.clone())?;
                self.update_state(source_id, |s| s.after_success(&success));
                return Ok(());
            }
            FeedResponse::Fetched(fetched) => *fetched,
        };
        report.status = Some(fetched.status);
        // A feed source whose address is a page linking a feed polls that feed from now on, as
        // after a permanent redirect.
        let (fetched, discovered) = match source.kind {
            SourceKind::Feed if feed::is_html_page(&fetched.body) => {
                self.discovered_feed(source, fetched).await?
            }
            _ => (fetched, None),
        };
        let moved = fetched.moved_permanently.clone().or(discovered).map(|to| {
            tracing::warn!(source = %source.name, from = %source.url, to = %to, "feed moved permanently; update the config");
            (source.url.to_string(), to.to_string())
        });
        let body_hash = sha256_hex(&fetched.body);
        if state.body_hash.as_deref() == Some(body_hash.as_str()) {
            report.note = Some("unchanged".into());
            let success = PollSuccess {
                status: fetched.status,
                validators: Some((fetched.validators, body_hash)),
                next_poll_at: next_poll(source, None),
                moved,
                ..Default::default()
            };
            self.commit(source_id, Vec::new(), success).await?;
            return Ok(());
        }
        if fetched.body.iter().all(u8::is_ascii_whitespace) {
            return Err(PollError::Parse { url: fetched.url.to_string(), error: feed::ParseError::empty() });
        }
        let parsed = self.read(source, fetched.url.clone(), fetched.body, fetched.content_type).await?;
        let parsed_count = parsed.items.len();
        let mut items = self.new_items(source_id, parsed.items).await?;
        // More documents of the same source: a sitemap index's recent children (each read once,
        // so an index listing itself is no loop), a Telegram channel's older messages while every
        // message read so far is new (catching up after downtime).
        let mut visited = vec![fetched.url.clone()];
        // A stack: the newest child is read first.
        let mut more: Vec<Url> = parsed.children.into_iter().rev().collect();
        let mut older = parsed.older.filter(|_| parsed_count > 0 && items.len() == parsed_count);
        let max_pages = match &source.kind {
            SourceKind::Telegram(telegram) => telegram.max_pages,
            _ => 1,
        };
        while let Some(next) = more.pop().or_else(|| older.take().filter(|_| visited.len() < max_pages)) {
            if visited.len() > MORE_DOCUMENTS {
                break;
            }
            if visited.contains(&next) {
                continue;
            }
            visited.push(next.clone());
            let response = self.fetcher.fetch_feed(&next, &Default::default()).await;
            let Ok(FeedResponse::Fetched(document)) = response else {
                tracing::warn!(source = %source.name, url = %next, "could not fetch; read next poll");
                continue;
            };
            // One unreadable child does not cost the items of the others.
            let read = match self.read(source, document.url, document.body, document.content_type).await {
                Ok(read) => read,
                Err(error) => {
                    tracing::warn!(source = %source.name, url = %next, %error, "skipped an unreadable document");
                    continue;
                }
            };
            let count = read.items.len();
            let new = self.new_items(source_id, read.items).await?;
            if new.len() == count && count > 0 {
                older = read.older;
            }
            more.extend(read.children.into_iter().rev());
            items.extend(new);
        }
        let (mut candidates, complete) = self.candidates(source, items).await;
        // Dedup signatures: short bodies (feed descriptions) inline, full articles — CPU work —
        // together off the I/O threads.
        let long = |c: &Candidate| c.content_text.as_ref().is_some_and(|t| t.len() > INLINE_SIGNATURE_BYTES);
        for candidate in candidates.iter_mut().filter(|c| !long(c)) {
            candidate.signature = near::Signature::of(candidate.content_text.as_deref().unwrap_or_default());
        }
        if candidates.iter().any(long) {
            candidates = tokio::task::spawn_blocking(move || {
                for candidate in candidates.iter_mut().filter(|c| long(c)) {
                    candidate.signature =
                        near::Signature::of(candidate.content_text.as_deref().unwrap_or_default());
                }
                candidates
            })
            .await
            .map_err(|e| PollError::Task(e.to_string()))?;
        }
        if !complete {
            report.note = Some("some pages deferred to the next poll".into());
        }
        let pace = parsed.publisher_interval.max(fetched.freshness).map(|p| p.min(self.max_interval));
        let success = PollSuccess {
            status: fetched.status,
            feed_title: parsed.title,
            // A poll cut short keeps the old validators, so the next poll sees the skipped items.
            validators: complete.then_some((fetched.validators, body_hash)),
            next_poll_at: next_poll(source, pace),
            not_before: pace.map(|p| Utc::now().timestamp() + p.as_secs() as i64),
            moved,
        };
        let counts = self.commit(source_id, candidates, success).await?;
        if counts.new + counts.updated > 0 {
            if let Some(notifier) = &self.notifier {
                notifier.changed(&source.name);
            }
        }
        report.new = counts.new;
        report.duplicate = counts.duplicate;
        report.merged = counts.merged;
        report.updated = counts.updated;
        report.filtered = counts.filtered;
        Ok(())
    }

    /// The feed a page links (the first of the preferred format: Atom, RSS, JSON Feed), fetched,
    /// and its URL; the page itself when it links none (reading it then names the problem).
    async fn discovered_feed(
        &self,
        source: &Source,
        page: crate::fetch::Fetched,
    ) -> Result<(crate::fetch::Fetched, Option<Url>), PollError> {
        let html = decode_html(&page.body, page.content_type.as_deref());
        let Some(found) = feed::discover(&html, &page.url).into_iter().next() else {
            return Ok((page, None));
        };
        tracing::warn!(source = %source.name, page = %page.url, feed = %found.url, "the source's URL is a page; polling the feed it links");
        match self.fetcher.fetch_feed(&found.url, &Default::default()).await? {
            FeedResponse::Fetched(feed) => Ok((*feed, Some(found.url))),
            FeedResponse::NotModified => Ok((page, None)),
        }
    }

    /// Reads one fetched document of the source, off the I/O threads: feeds and sitemaps decoded
    /// as XML (their declared encoding), HTML pages as pages.
    async fn read(
        &self,
        source: &Source,
        url: Url,
        body: Vec<u8>,
        content_type: Option<String>,
    ) -> Result<feed::ParsedFeed, PollError> {
        let kind = source.kind.clone();
        let since = Utc::now() - chrono::Duration::from_std(self.window).unwrap_or_default();
        let read_url = url.clone();
        tokio::task::spawn_blocking(move || {
            read_document(&kind, &body, content_type.as_deref(), &read_url, since)
        })
        .await
        .map_err(|e| PollError::Task(e.to_string()))?
        .map_err(|error| PollError::Parse { url: url.to_string(), error })
    }

    /// Items this source has not delivered before (the first occurrence of a GUID repeated
    /// within the feed wins), and known items whose title or text changed in the feed.
    async fn new_items(&self, source_id: i64, items: Vec<FeedItem>) -> Result<Vec<NewItem>, StoreError> {
        let mut seen = HashSet::new();
        let items: Vec<FeedItem> = items.into_iter().filter(|item| seen.insert(item.guid.clone())).collect();
        let guids = items.iter().map(|i| i.guid.clone()).collect();
        let links: Vec<Option<String>> =
            items.iter().map(|i| i.link.as_ref().map(|l| self.links.canonical(l))).collect();
        let (known_guids, known_links) =
            self.store.known(source_id, guids, links.iter().flatten().cloned().collect()).await?;
        Ok(items
            .into_iter()
            .zip(links)
            .filter_map(|(item, link)| {
                let feed_hash = feed_hash(&item);
                let update = match known_guids.get(&item.guid) {
                    None => false,
                    Some(Some(stored)) if *stored != feed_hash => true,
                    Some(_) => return None,
                };
                let link_known = link.as_ref().is_some_and(|l| known_links.contains(l));
                Some(NewItem {
                    item,
                    link,
                    link_known,
                    update,
                    feed_hash,
                    page_language: None,
                    page_editions: Vec::new(),
                })
            })
            .collect())
    }
}

/// Reads a fetched document of a source of `kind` into items: feeds and sitemaps decoded as XML
/// (their declared encoding), HTML pages as pages. Sitemap entries older than `since` are left out.
pub fn read_document(
    kind: &SourceKind,
    body: &[u8],
    content_type: Option<&str>,
    url: &Url,
    since: chrono::DateTime<Utc>,
) -> Result<feed::ParsedFeed, feed::ParseError> {
    let utf8 = match kind {
        SourceKind::Html(_) | SourceKind::Telegram(_) => decode_html(body, content_type).into_bytes(),
        SourceKind::Feed | SourceKind::Sitemap => feed_to_utf8(body, content_type),
    };
    feed::read(kind, &utf8, url, since)
}

/// The next scheduled time, at least `pace` from now.
fn next_poll(source: &Source, pace: Option<Duration>) -> Option<i64> {
    let earliest = Utc::now() + chrono::Duration::from_std(pace.unwrap_or_default()).unwrap_or_default();
    source.schedule.next_after(earliest).map(|t| t.timestamp())
}

/// How long to leave a source alone after its `failures`-th failure in a row: the schedule's
/// interval, doubled per further failure, capped at a day, spread by `unit` (0..1) over ±20 %,
/// and never shorter than the server's Retry-After.
fn backoff(interval: Duration, failures: i64, retry_after: Option<Duration>, unit: f64) -> Duration {
    let doublings = (failures - 1).clamp(0, 30) as u32;
    let doubled = interval.saturating_mul(2u32.saturating_pow(doublings)).min(MAX_BACKOFF);
    let jittered = doubled.mul_f64(0.8 + 0.4 * unit.clamp(0.0, 1.0)).min(MAX_BACKOFF);
    jittered.max(retry_after.unwrap_or_default())
}

/// A random number in 0..1, from the per-process random keys of the standard hasher.
fn random_unit() -> f64 {
    use std::hash::{BuildHasher, Hasher};
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u128(Instant::now().elapsed().as_nanos());
    (hasher.finish() >> 11) as f64 / (1u64 << 53) as f64
}

fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_caps_and_honours_retry_after() {
        let ten_min = Duration::from_secs(600);
        assert_eq!(backoff(ten_min, 1, None, 0.5), ten_min);
        assert_eq!(backoff(ten_min, 3, None, 0.5), Duration::from_secs(2400));
        assert_eq!(backoff(ten_min, 40, None, 1.0), MAX_BACKOFF);
        assert_eq!(backoff(ten_min, 1, None, 0.0), Duration::from_secs(480));
        assert_eq!(backoff(ten_min, 1, Some(Duration::from_secs(7200)), 0.5), Duration::from_secs(7200));
    }

    #[test]
    fn random_units_vary_within_range() {
        let draws: Vec<f64> = (0..100).map(|_| random_unit()).collect();
        assert!(draws.iter().all(|d| (0.0..1.0).contains(d)));
        assert!(draws.windows(2).any(|w| w[0] != w[1]));
    }
}
