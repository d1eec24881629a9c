//! The listing reader: an HTML page of article teasers → items, with the CSS selectors of an
//! `html` source (`item`, and inside it `link`, `title`, `date`, `summary`). Links are resolved
//! against the page (or its `<base href>`); an item without a link is skipped, and a selector that
//! finds nothing is an error naming it, never a silent empty poll.

use std::sync::LazyLock;

use scraper::{ElementRef, Selector};
use url::Url;

use super::{parse_date, plain_line, plausible, FeedItem, ParseError, ParsedFeed};
use crate::config::Listing;

/// Most items read from one page.
const MAX_ITEMS: usize = 1000;

static BASE: LazyLock<Selector> = LazyLock::new(|| crate::extract::static_selector("base[href]"));
static TITLE: LazyLock<Selector> = LazyLock::new(|| crate::extract::static_selector("title"));

/// Reads a listing page fetched from `url`.
pub fn read(listing: &Listing, html: &str, url: &Url) -> Result<ParsedFeed, ParseError> {
    let page = super::parse_html(html);
    let base = page
        .select(&BASE)
        .next()
        .and_then(|b| b.value().attr("href"))
        .and_then(|href| url.join(href.trim()).ok())
        .unwrap_or_else(|| url.clone());
    let matches: Vec<ElementRef> = page.select(&listing.item.selector).take(MAX_ITEMS).collect();
    if matches.is_empty() {
        return Err(ParseError(format!(
            "the item selector `{}` matched nothing on the page",
            listing.item.text
        )));
    }
    let mut items: Vec<FeedItem> = Vec::new();
    for element in matches {
        let Some(anchor) = element.select(&listing.link.selector).next() else { continue };
        let href = anchor.value().attr("href").or_else(|| anchor.value().attr("content"));
        let Some(link) =
            href.and_then(|h| base.join(h.trim()).ok()).filter(|u| matches!(u.scheme(), "http" | "https"))
        else {
            continue;
        };
        if items.iter().any(|i| i.link.as_ref() == Some(&link)) {
            continue;
        }
        let text_of = |e: ElementRef| plain_line(&e.text().collect::<String>());
        let title = match &listing.title {
            Some(title) => element.select(&title.selector).next().map(text_of),
            None => None,
        }
        .filter(|t| !t.is_empty())
        .unwrap_or_else(|| text_of(anchor));
        let published =
            listing.date.as_ref().and_then(|date| element.select(&date.selector).next()).and_then(|e| {
                let written = e.value().attr("datetime").or_else(|| e.value().attr("content"));
                plausible(parse_date(written.map_or_else(|| text_of(e), str::to_owned).as_str()))
            });
        let summary = listing
            .summary
            .as_ref()
            .and_then(|summary| element.select(&summary.selector).next())
            .map(|e| e.inner_html().trim().to_owned())
            .filter(|s| !s.is_empty());
        items.push(FeedItem {
            guid: link.to_string(),
            link: Some(link),
            title,
            author: None,
            published,
            updated: None,
            categories: Vec::new(),
            summary,
            content: None,
            image: None,
            language: None,
            cites: None,
        });
    }
    if items.is_empty() {
        return Err(ParseError(format!(
            "the link selector `{}` found no http(s) link in any of the items",
            listing.link.text
        )));
    }
    let title = page.select(&TITLE).next().map(|t| plain_line(&t.text().collect::<String>()));
    Ok(ParsedFeed { title, items, publisher_interval: None, children: Vec::new(), older: None })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::CssSelector;

    fn listing(item: &str, title: Option<&str>, date: Option<&str>) -> Listing {
        let css = |s: &str| CssSelector::parse(s).unwrap();
        Listing {
            item: css(item),
            link: css("a[href]"),
            title: title.map(css),
            date: date.map(css),
            summary: Some(css("p")),
        }
    }

    const PAGE: &str = r#"<html><head><title>Latest — Suspilne</title></head><body>
        <article class="card"><h3>Air defence shot down 20 drones</h3><a href="/news/1">read</a>
          <time datetime="2026-12-02T07:41:00Z">today</time><p>Overnight <b>attack</b>.</p></article>
        <article class="card"><a href="news/2">Budget rules approved</a></article>
        <article class="card"><span>no link here</span></article>
        </body></html>"#;

    #[test]
    fn items_with_relative_links_titles_and_dates() {
        let url = Url::parse("https://suspilne.example/latest/").unwrap();
        let parsed = read(&listing("article.card", Some("h3"), Some("time")), PAGE, &url).unwrap();
        assert_eq!(parsed.title.as_deref(), Some("Latest — Suspilne"));
        assert_eq!(parsed.items.len(), 2, "the item without a link is skipped");
        let (first, second) = (&parsed.items[0], &parsed.items[1]);
        assert_eq!(first.link.as_ref().unwrap().as_str(), "https://suspilne.example/news/1");
        assert_eq!(first.title, "Air defence shot down 20 drones");
        assert_eq!(first.published.unwrap().to_rfc3339(), "2026-12-02T07:41:00+00:00");
        assert_eq!(first.summary.as_deref(), Some("Overnight <b>attack</b>."));
        // No title element: the link's text; no date: none.
        assert_eq!(second.link.as_ref().unwrap().as_str(), "https://suspilne.example/latest/news/2");
        assert_eq!((second.title.as_str(), second.published), ("Budget rules approved", None));
    }

    #[test]
    fn a_selector_that_matches_nothing_is_a_named_error() {
        let url = Url::parse("https://suspilne.example/latest/").unwrap();
        let error = read(&listing("div.teaser", None, None), PAGE, &url).unwrap_err();
        assert!(error.to_string().contains("`div.teaser` matched nothing"), "{error}");
        let error = read(&listing("span", None, None), PAGE, &url).unwrap_err();
        assert!(error.to_string().contains("`a[href]` found no http(s) link"), "{error}");
    }
}
