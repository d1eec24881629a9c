//! The article pages of a poll's new items: each fetched once per canonical link (shared by the
//! sources announcing it at the same moment), extracted off the I/O threads, and turned with the
//! item into the candidate the store deduplicates.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::OnceCell;
use tokio::task::JoinSet;
use url::Url;

use super::{sha256_hex, Poller};
use crate::config::{Source, SourceKind};
use crate::dedup::{Edition, LinkRules};
use crate::extract::{text::html_to_text, Article, Extraction, Extractor, Step, MAX_PAGES};
use crate::feed::FeedItem;
use crate::fetch::charset::decode_html;
use crate::fetch::{FetchError, Fetcher};
use crate::filter::ItemText;
use crate::metrics::metrics;
use crate::store::Candidate;

/// How long a fetched page's result is reused for other sources announcing the same link.
const PAGE_MEMORY: Duration = Duration::from_secs(30 * 60);

/// Why a page gave no extraction; `deferred` when the host asked us to come back later.
#[derive(Debug, Clone)]
pub(super) struct PageError {
    message: String,
    deferred: bool,
}

pub(super) type PageResult = Result<Extraction, PageError>;
/// A page fetch shared by everyone who asks for the same link, and when it was first asked for.
pub(super) type SharedPage = (Instant, Arc<OnceCell<PageResult>>);

impl Poller {
    /// Builds the candidates, fetching pages where needed. The flag is false when shutdown cut the
    /// page fetching short (unfinished items are left for the next poll).
    pub(super) async fn candidates(&self, source: &Source, items: Vec<NewItem>) -> (Vec<Candidate>, bool) {
        let mut candidates = Vec::with_capacity(items.len());
        let mut fetches = JoinSet::new();
        for (index, mut new) in items.into_iter().enumerate() {
            // An item citing an article (a Telegram post's link preview) is not that article: the
            // article's page is the one read, and its link joins the item to the article's story.
            let (page_url, page_key) = match &new.item.cites {
                Some(cited) => {
                    new.page_editions
                        .push(crate::extract::meta::Edition { url: cited.clone(), language: None });
                    (Some(cited.clone()), Some(self.links.canonical(cited)))
                }
                // A Telegram post's page shows nothing its preview did not.
                None if matches!(source.kind, SourceKind::Telegram(_)) => (None, None),
                None => (new.item.link.clone(), new.link.clone()),
            };
            match (page_url, page_key) {
                // A link some source already delivered is not fetched again, unless the feed
                // says this item changed.
                (Some(url), Some(canonical)) if source.full_text && (!new.link_known || new.update) => {
                    let page = self.page(canonical, url, new.update);
                    fetches.spawn(async move { (index, new, Some(page.await)) });
                }
                _ => candidates.push((index, candidate(source, &self.links, new, None))),
            }
        }
        let mut complete = true;
        loop {
            tokio::select! {
                next = fetches.join_next() => match next {
                    Some(Ok((_, _, Some(Err(PageError { deferred: true, .. }))))) => complete = false,
                    Some(Ok((index, mut new, page))) => {
                        // The page's own canonical link (an AMP page's, a syndicated copy's)
                        // is the article's identity; a cited article's joins the citing item to it.
                        if let Some(Ok(Extraction { canonical: Some(canonical), .. })) = &page {
                            match new.item.cites {
                                Some(_) => new.page_editions.push(crate::extract::meta::Edition {
                                    url: canonical.clone(),
                                    language: None,
                                }),
                                None => new.link = Some(self.links.canonical(canonical)),
                            }
                        }
                        // The page's language and editions count even when the feed's text is
                        // published instead of its body.
                        if let Some(Ok(extraction)) = &page {
                            new.page_language = extraction.language.clone();
                            new.page_editions.extend(extraction.editions.iter().cloned());
                        }
                        let article = page.and_then(|page| self.choose_article(&new.item, page));
                        candidates.push((index, candidate(source, &self.links, new, article)));
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
    /// `fresh` forgets an earlier result (the item was updated).
    fn page(
        &self,
        canonical: String,
        url: Url,
        fresh: bool,
    ) -> impl std::future::Future<Output = PageResult> + Send + 'static {
        // Nodes sharing the database fetch a page once between them.
        let claim = self.lease.map(|lease| (self.store.clone(), lease.as_secs() as i64, canonical.clone()));
        let cell = {
            let mut pages = self.pages.lock().unwrap_or_else(|p| p.into_inner());
            if fresh {
                pages.remove(&canonical);
            }
            // Forget old results, and failures once settled, so a later poll can try again.
            pages.retain(|_, (at, cell)| at.elapsed() < PAGE_MEMORY && !matches!(cell.get(), Some(Err(_))));
            Arc::clone(
                &pages.entry(canonical).or_insert_with(|| (Instant::now(), Arc::new(OnceCell::new()))).1,
            )
        };
        let fetcher = self.fetcher.clone();
        let extractor = Arc::clone(&self.extractor);
        async move {
            cell.get_or_init(|| async move {
                if let Some((store, lease_secs, link)) = claim {
                    match store.claim_page(&link, lease_secs).await {
                        Ok(true) => {}
                        Ok(false) => {
                            let message = "another node is fetching this page".to_owned();
                            return Err(PageError { message, deferred: true });
                        }
                        Err(error) => tracing::warn!(%link, %error, "cannot claim the page for the cluster; fetching it"),
                    }
                }
                let mut extraction = fetch_and_extract(&fetcher, &extractor, url.clone()).await?;
                // A multi-page article: later pages are fetched and joined, bounded; a later page
                // that fails ends the article there.
                let mut seen = vec![url];
                while let (Some(next), Some(article)) = (extraction.next_page.take(), &mut extraction.article) {
                    if seen.contains(&next) || seen.len() >= MAX_PAGES {
                        break;
                    }
                    seen.push(next.clone());
                    match fetch_and_extract(&fetcher, &extractor, next.clone()).await {
                        Ok(Extraction { article: Some(more), next_page, .. }) if more.step == Step::Rule => {
                            Extractor::append_page(article, more);
                            extraction.next_page = next_page;
                        }
                        Ok(_) => tracing::warn!(page = %next, "next page of an article has no body; stopping there"),
                        Err(error) => tracing::warn!(page = %next, error = %error.message, "next page of an article not fetched"),
                    }
                }
                Ok(extraction)
            })
            .await
            .clone()
        }
    }

    /// Picks the page's body when it is trustworthy; `None` means "use the feed's text".
    fn choose_article(&self, item: &FeedItem, page: PageResult) -> Option<Article> {
        let link = item.link.as_ref().map(Url::as_str).unwrap_or_default();
        match page {
            Err(PageError { message: error, .. }) => {
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

/// Fetches one page and extracts it off the I/O threads.
async fn fetch_and_extract(fetcher: &Fetcher, extractor: &Arc<Extractor>, url: Url) -> PageResult {
    let requested = Instant::now();
    let response = fetcher.fetch_page(&url).await;
    let status = response.as_ref().map_or_else(FetchError::status, |page| Some(page.status));
    metrics().response("page", status, requested.elapsed());
    let page = response.map_err(|e| PageError { deferred: e.is_deferral(), message: e.to_string() })?;
    let html = decode_html(&page.body, page.content_type.as_deref());
    let extractor = Arc::clone(extractor);
    let extraction = tokio::task::spawn_blocking(move || extractor.extract(&html, &page.url))
        .await
        .map_err(|e| PageError { message: e.to_string(), deferred: false })?;
    if let Some(miss) = &extraction.rule_miss {
        metrics().rule_miss(&miss.host);
    }
    Ok(extraction)
}

/// A feed item to store: new to this source, or known with changed text (`update`).
pub(super) struct NewItem {
    pub item: FeedItem,
    pub link: Option<String>,
    /// Some source already delivered this canonical link.
    pub link_known: bool,
    pub update: bool,
    pub feed_hash: String,
    /// From the fetched page, if any: its language and other language editions.
    pub page_language: Option<String>,
    pub page_editions: Vec<crate::extract::meta::Edition>,
}

/// What the feed says about an item, hashed: a change means the publisher updated it.
pub(super) fn feed_hash(item: &FeedItem) -> String {
    let mut text = String::with_capacity(256);
    for part in [Some(&item.title), item.content.as_ref(), item.summary.as_ref()] {
        text.push_str(part.map_or("", |p| p.as_str()));
        text.push('\u{1f}');
    }
    sha256_hex(text.as_bytes())[..32].to_owned()
}

/// The stored form of an item; without an article, the feed's content (or description) is the body.
fn candidate(source: &Source, links: &LinkRules, new: NewItem, article: Option<Article>) -> Candidate {
    let NewItem { item, link: canonical_link, feed_hash, page_language, page_editions, .. } = new;
    let base =
        item.link.clone().unwrap_or_else(|| Url::parse("about:blank").unwrap_or_else(|_| unreachable!()));
    let mut article = article.or_else(|| {
        item.content.as_deref().or(item.summary.as_deref()).and_then(|html| Extractor::from_feed(html, &base))
    });
    // The lead image (the page's og:image, else the feed's image enclosure, which UNN's RSS
    // carries) heads the body unless the body already shows it.
    let image = article
        .as_ref()
        .and_then(|a| a.meta.image.clone())
        .or_else(|| item.image.as_ref().map(Url::to_string));
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
    // The feed's author wins; the page's fills in. The page's tags join the feed's categories.
    let page = article.as_ref().map(|a| a.meta.clone()).unwrap_or_default();
    let author = item.author.or_else(|| (!page.authors.is_empty()).then(|| page.authors.join(", ")));
    let mut categories = item.categories;
    for tag in page.tags.into_iter().chain(source.tags.iter().cloned()) {
        if !categories.contains(&tag) {
            categories.push(tag);
        }
    }
    let language = page_language.or(item.language);
    // The page's other language editions, by canonical link like every item.
    let mut editions: Vec<Edition> = Vec::new();
    for edition in page_editions {
        let link = links.canonical(&edition.url);
        if Some(&link) != canonical_link.as_ref() && !editions.iter().any(|e| e.link == link) {
            editions.push(Edition { link, language: edition.language });
        }
    }
    let body = article.as_ref().map(|a| a.text.as_str()).or(summary.as_deref()).unwrap_or_default();
    let hidden = !source.filter.accepts(&ItemText {
        title: &item.title,
        body,
        author: author.as_deref().unwrap_or_default(),
        tags: &categories,
        language: language.as_deref().unwrap_or_default(),
    });
    Candidate {
        signature: None,
        hidden,
        guid: item.guid,
        // Published links are the clean ones: no tracking parameters, no fragment.
        link: canonical_link.clone().or_else(|| item.link.map(String::from)),
        title: item.title,
        author,
        published: item.published.map(|t| t.timestamp()),
        updated: item.updated.map(|t| t.timestamp()),
        categories,
        summary,
        extracted_by: article.as_ref().map_or(Step::Feed, |a| a.step).as_str().to_owned(),
        content_html: article.as_ref().map(|a| a.html.clone()),
        language,
        editions,
        content_text: article.map(|a| a.text),
        canonical_link,
        feed_hash,
    }
}
