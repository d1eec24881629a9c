//! One poll of one source: the one place that orders the pipeline's stages.
//!
//! fetch the feed (conditionally) → parse → drop what this source already delivered → for new
//! items, fetch the page once per canonical link and extract its body (else use the feed's text)
//! → commit everything, and the source's new poll state, in one transaction.
//!
//! A failure is recorded on the source and logged; it never touches stored items and never
//! affects other sources. On shutdown a poll stops fetching pages and commits what it finished.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::Utc;
use tokio::sync::{OnceCell, Semaphore};
use tokio::task::JoinSet;
use url::Url;

use crate::config::Source;
use crate::dedup::canonical_link;
use crate::extract::{text::html_to_text, Article, Extraction, Extractor, Step};
use crate::feed::{self, FeedItem};
use crate::fetch::{charset::decode_html, FeedResponse, FetchError, Fetcher};
use crate::shutdown::Shutdown;
use crate::store::{Candidate, PollSuccess, Store, StoreError};

/// Article pages fetched at once across all polls.
const PAGE_CONCURRENCY: usize = 8;
/// How long a fetched page's result is reused for other sources announcing the same link.
const PAGE_MEMORY: Duration = Duration::from_secs(30 * 60);

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
    pub error: Option<String>,
    pub duration: Duration,
}

type PageResult = Result<Extraction, String>;
/// A page fetch shared by everyone who asks for the same link, and when it was first asked for.
type SharedPage = (Instant, Arc<OnceCell<PageResult>>);

/// Polls sources; shared by the scheduler's jobs.
pub struct Poller {
    store: Store,
    fetcher: Fetcher,
    extractor: Arc<Extractor>,
    source_ids: HashMap<String, i64>,
    shutdown: Shutdown,
    page_slots: Arc<Semaphore>,
    /// Recent and in-flight page fetches by canonical link: two sources announcing the same
    /// article at the same moment cause one request.
    pages: Mutex<HashMap<String, SharedPage>>,
}

impl Poller {
    pub fn new(
        store: Store,
        fetcher: Fetcher,
        extractor: Arc<Extractor>,
        source_ids: HashMap<String, i64>,
        shutdown: Shutdown,
    ) -> Poller {
        Poller {
            store,
            fetcher,
            extractor,
            source_ids,
            shutdown,
            page_slots: Arc::new(Semaphore::new(PAGE_CONCURRENCY)),
            pages: Mutex::new(HashMap::new()),
        }
    }

    /// Polls one source, records the outcome and logs one line.
    pub async fn poll(&self, source: &Source) -> PollReport {
        let started = Instant::now();
        let mut report = PollReport {
            source: source.name.clone(),
            status: None,
            new: 0,
            duplicate: 0,
            error: None,
            duration: Duration::ZERO,
        };
        if let Err(error) = self.try_poll(source, &mut report).await {
            report.error = Some(error.to_string());
            if let PollError::Fetch(fetch) = &error {
                report.status = fetch.status();
            }
            if let Some(&id) = self.source_ids.get(&source.name) {
                let next = next_poll(source);
                if let Err(store_error) =
                    self.store.record_failure(id, report.status, error.to_string(), next).await
                {
                    tracing::error!(source = %source.name, error = %store_error, "cannot record poll failure");
                }
            }
        }
        report.duration = started.elapsed();
        let status = report.status.map_or_else(|| "-".to_owned(), |s| s.to_string());
        let duration_ms = report.duration.as_millis() as u64;
        match &report.error {
            None => tracing::info!(
                source = %source.name, status = %status, new = report.new, duplicate = report.duplicate,
                duration_ms, "poll"
            ),
            Some(error) => tracing::warn!(
                source = %source.name, status = %status, duration_ms, error = %error, "poll failed"
            ),
        }
        report
    }

    async fn try_poll(&self, source: &Source, report: &mut PollReport) -> Result<(), PollError> {
        let source_id = *self
            .source_ids
            .get(&source.name)
            .ok_or_else(|| PollError::UnknownSource(source.name.clone()))?;
        let validators = self.store.validators(source_id).await?;
        let fetched = match self.fetcher.fetch_feed(&source.url, &validators).await? {
            FeedResponse::NotModified => {
                report.status = Some(304);
                let success =
                    PollSuccess { status: 304, next_poll_at: next_poll(source), ..Default::default() };
                self.store.commit_poll(source_id, Vec::new(), success).await?;
                return Ok(());
            }
            FeedResponse::Fetched(fetched) => fetched,
        };
        report.status = Some(fetched.status);
        let feed_url = fetched.url.clone();
        let body = fetched.body;
        let parse_url = feed_url.clone();
        let parsed = tokio::task::spawn_blocking(move || feed::parse(&body, &parse_url))
            .await
            .map_err(|e| PollError::Task(e.to_string()))?
            .map_err(|error| PollError::Parse { url: feed_url.to_string(), error })?;

        let items = self.new_items(source_id, parsed.items).await?;
        let (candidates, complete) = self.candidates(source, items).await;
        let success = PollSuccess {
            status: fetched.status,
            feed_title: parsed.title,
            // A poll cut short keeps the old validators, so the next poll sees the skipped items.
            validators: complete.then_some(fetched.validators),
            next_poll_at: next_poll(source),
        };
        let counts = self.store.commit_poll(source_id, candidates, success).await?;
        report.new = counts.new;
        report.duplicate = counts.duplicate;
        Ok(())
    }

    /// Items whose GUID this source has not delivered before (first occurrence of a GUID repeated
    /// within the feed), each with its canonical link and whether any source already has that link.
    async fn new_items(
        &self,
        source_id: i64,
        items: Vec<FeedItem>,
    ) -> Result<Vec<(FeedItem, Option<String>, bool)>, StoreError> {
        let mut seen = HashSet::new();
        let items: Vec<FeedItem> = items.into_iter().filter(|item| seen.insert(item.guid.clone())).collect();
        let guids = items.iter().map(|i| i.guid.clone()).collect();
        let links: Vec<Option<String>> = items.iter().map(|i| i.link.as_ref().map(canonical_link)).collect();
        let (known_guids, known_links) =
            self.store.known(source_id, guids, links.iter().flatten().cloned().collect()).await?;
        Ok(items
            .into_iter()
            .zip(links)
            .filter(|(item, _)| !known_guids.contains(&item.guid))
            .map(|(item, link)| {
                let link_known = link.as_ref().is_some_and(|l| known_links.contains(l));
                (item, link, link_known)
            })
            .collect())
    }

    /// Builds the candidates, fetching pages where needed. The flag is false when shutdown cut the
    /// page fetching short (unfinished items are left for the next poll).
    async fn candidates(
        &self,
        source: &Source,
        items: Vec<(FeedItem, Option<String>, bool)>,
    ) -> (Vec<Candidate>, bool) {
        let mut candidates = Vec::with_capacity(items.len());
        let mut fetches = JoinSet::new();
        for (index, (item, link, link_known)) in items.into_iter().enumerate() {
            match (&item.link, &link) {
                (Some(url), Some(canonical)) if source.full_text && !link_known => {
                    let page = self.page(canonical.clone(), url.clone());
                    fetches.spawn(async move { (index, item, link, Some(page.await)) });
                }
                _ => candidates.push((index, candidate(item, link, None))),
            }
        }
        let mut complete = true;
        loop {
            tokio::select! {
                next = fetches.join_next() => match next {
                    Some(Ok((index, item, link, page))) => {
                        let article = page.and_then(|page| self.choose_article(&item, page));
                        candidates.push((index, candidate(item, link, article)));
                    }
                    Some(Err(join_error)) => tracing::error!(source = %source.name, error = %join_error, "page task failed"),
                    None => break,
                },
                _ = self.shutdown.wait() => {
                    fetches.abort_all();
                    complete = false;
                    break;
                }
            }
        }
        candidates.sort_by_key(|(index, _)| *index);
        (candidates.into_iter().map(|(_, c)| c).collect(), complete)
    }

    /// The page's extraction, fetched at most once per canonical link while remembered.
    fn page(
        &self,
        canonical: String,
        url: Url,
    ) -> impl std::future::Future<Output = PageResult> + Send + 'static {
        let cell = {
            let mut pages = self.pages.lock().unwrap_or_else(|p| p.into_inner());
            pages.retain(|_, (at, _)| at.elapsed() < PAGE_MEMORY);
            Arc::clone(
                &pages.entry(canonical).or_insert_with(|| (Instant::now(), Arc::new(OnceCell::new()))).1,
            )
        };
        let fetcher = self.fetcher.clone();
        let extractor = Arc::clone(&self.extractor);
        let slots = Arc::clone(&self.page_slots);
        async move {
            cell.get_or_init(|| async move {
                let _slot = slots.acquire_owned().await.map_err(|e| e.to_string())?;
                let page = fetcher.fetch_page(&url).await.map_err(|e| e.to_string())?;
                let html = decode_html(&page.body, page.content_type.as_deref());
                tokio::task::spawn_blocking(move || extractor.extract(&html, &page.url))
                    .await
                    .map_err(|e| e.to_string())
            })
            .await
            .clone()
        }
    }

    /// Picks the page's body when it is trustworthy; `None` means "use the feed's text".
    fn choose_article(&self, item: &FeedItem, page: PageResult) -> Option<Article> {
        let link = item.link.as_ref().map(Url::as_str).unwrap_or_default();
        match page {
            Err(error) => {
                tracing::warn!(link, error = %error, "article page not fetched; publishing the feed's text");
                None
            }
            Ok(Extraction { rule_miss: Some(miss), .. }) => {
                tracing::warn!(
                    host = %miss.host, rule = %miss.rule, link,
                    "site rule matched nothing; publishing the feed's text"
                );
                None
            }
            Ok(Extraction { article: Some(article), .. }) if article.step == Step::Rule => Some(article),
            Ok(Extraction { article: Some(article), .. }) => {
                // The generic extractor only wins when it found clearly more than the feed carries.
                let feed_len =
                    item.content.as_ref().or(item.summary.as_ref()).map_or(0, |t| html_to_text(t).len());
                (article.text.len() >= 200 && article.text.len() > feed_len).then_some(article)
            }
            Ok(Extraction { article: None, .. }) => None,
        }
    }
}

/// The stored form of an item; without an article, the feed's content (or description) is the body.
fn candidate(item: FeedItem, canonical_link: Option<String>, article: Option<Article>) -> Candidate {
    let base =
        item.link.clone().unwrap_or_else(|| Url::parse("about:blank").unwrap_or_else(|_| unreachable!()));
    let mut article = article.or_else(|| {
        item.content.as_deref().or(item.summary.as_deref()).and_then(|html| Extractor::from_feed(html, &base))
    });
    // The lead image (the page's og:image, else the feed's image enclosure, which UNN's RSS
    // carries) heads the body unless the body already shows it.
    let image =
        article.as_ref().and_then(|a| a.image.clone()).or_else(|| item.image.as_ref().map(Url::to_string));
    if let (Some(article), Some(image)) = (article.as_mut(), image) {
        let src = crate::publish::atom::escape(&image);
        if !article.html.contains(&src) {
            let figure = format!("<figure><img src=\"{src}\" alt=\"\"></figure>");
            article.html = format!("{figure}{}", article.html);
        }
    }
    let summary = item
        .summary
        .as_deref()
        .map(|html| html_to_text(&crate::extract::clean::sanitize(html, &base)))
        .filter(|s| !s.is_empty());
    Candidate {
        guid: item.guid,
        // Published links are the clean ones: no tracking parameters, no fragment.
        link: canonical_link.clone().or_else(|| item.link.map(String::from)),
        title: item.title,
        author: item.author,
        published: item.published.map(|t| t.timestamp()),
        updated: item.updated.map(|t| t.timestamp()),
        categories: item.categories,
        summary,
        extracted_by: article.as_ref().map_or(Step::Feed, |a| a.step).as_str().to_owned(),
        content_html: article.as_ref().map(|a| a.html.clone()),
        content_text: article.map(|a| a.text),
        canonical_link,
    }
}

fn next_poll(source: &Source) -> Option<i64> {
    source.schedule.next_after(Utc::now()).map(|t| t.timestamp())
}
