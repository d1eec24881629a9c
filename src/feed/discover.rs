//! Feed discovery: the feeds an HTML page links in its head (`<link rel="alternate"
//! type="application/atom+xml | application/rss+xml | application/feed+json" href>`, the
//! autodiscovery convention browsers and feed readers follow), best first: Atom, then RSS, then
//! JSON Feed, each in document order.

use std::sync::LazyLock;

use scraper::Selector;
use url::Url;

use super::plain_line;
use crate::extract::static_selector;

static ALTERNATE: LazyLock<Selector> = LazyLock::new(|| static_selector("link[rel][type][href]"));

/// A feed a page links.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Discovered {
    pub url: Url,
    /// "atom", "rss" or "json".
    pub format: &'static str,
    pub title: Option<String>,
}

/// The feeds `html` (fetched from `url`) links, best first.
pub fn discover(html: &str, url: &Url) -> Vec<Discovered> {
    let page = super::parse_html(html);
    let mut found: Vec<(usize, Discovered)> = Vec::new();
    for link in page.select(&ALTERNATE) {
        let element = link.value();
        let alternate = element
            .attr("rel")
            .is_some_and(|rel| rel.split_ascii_whitespace().any(|r| r.eq_ignore_ascii_case("alternate")));
        let media_type = element.attr("type").unwrap_or_default().trim().to_ascii_lowercase();
        let (rank, format) = match media_type.split(';').next().unwrap_or_default().trim() {
            "application/atom+xml" => (0, "atom"),
            "application/rss+xml" => (1, "rss"),
            "application/feed+json" | "application/json+feed" => (2, "json"),
            _ => continue,
        };
        let Some(feed) = element.attr("href").and_then(|h| url.join(h.trim()).ok()) else { continue };
        if !alternate
            || !matches!(feed.scheme(), "http" | "https")
            || found.iter().any(|(_, d)| d.url == feed)
        {
            continue;
        }
        let title = element.attr("title").map(plain_line).filter(|t| !t.is_empty());
        found.push((rank, Discovered { url: feed, format, title }));
    }
    // A stable sort keeps document order within a format.
    found.sort_by_key(|(rank, _)| *rank);
    found.into_iter().map(|(_, d)| d).collect()
}

/// Whether a fetched body is an HTML page rather than a feed: its first kilobyte opens an
/// `<html>` element and no feed element.
pub fn is_html_page(bytes: &[u8]) -> bool {
    let head = String::from_utf8_lossy(&bytes[..bytes.len().min(1024)]).to_ascii_lowercase();
    head.contains("<html")
        && !["<rss", "<feed", "<rdf:rdf", "<urlset", "<sitemapindex"].iter().any(|f| head.contains(f))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn atom_then_rss_then_json_each_in_document_order() {
        let html = r#"<!DOCTYPE html><html><head>
            <link rel="alternate" type="application/feed+json" href="/feed.json" title="JSON">
            <link rel="alternate" type="application/rss+xml" href="/rss/uk.xml" title="Новини">
            <link rel="alternate" type="application/rss+xml" href="/rss/en.xml">
            <link rel="alternate" type="application/atom+xml; charset=utf-8" href="https://news.example/atom.xml">
            <link rel="stylesheet" type="text/css" href="/style.css">
            <link rel="alternate" hreflang="en" href="/en/">
            </head><body></body></html>"#;
        let url = Url::parse("https://news.example/section/").unwrap();
        let found = discover(html, &url);
        let urls: Vec<&str> = found.iter().map(|d| d.url.as_str()).collect();
        assert_eq!(
            urls,
            [
                "https://news.example/atom.xml",
                "https://news.example/rss/uk.xml",
                "https://news.example/rss/en.xml",
                "https://news.example/feed.json"
            ]
        );
        assert_eq!(found[1].title.as_deref(), Some("Новини"));
        assert!(discover("<html><body>no feeds</body></html>", &url).is_empty());
    }

    #[test]
    fn pages_and_feeds_are_told_apart() {
        assert!(is_html_page(b"\xEF\xBB\xBF  <!DOCTYPE html><html>"));
        assert!(is_html_page(
            b"<?xml version=\"1.0\"?><!-- generator --><html xmlns=\"http://www.w3.org/1999/xhtml\">"
        ));
        assert!(is_html_page(b"<HTML><head>"));
        assert!(!is_html_page(b"<?xml version=\"1.0\"?><rss version=\"2.0\">"));
        assert!(!is_html_page(b"{\"version\": \"https://jsonfeed.org/version/1.1\"}"));
    }
}
