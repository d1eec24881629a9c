//! The read stage: a source's document → [`FeedItem`]s, by the source's kind ([`read`]). Feeds
//! (RSS 0.9x/1.0/2.0, Atom, JSON Feed) go through feed-rs, and documents it cannot read (old or
//! odd dialects) get a second chance in [`lenient`]; [`telegram`] reads a channel's preview page,
//! [`listing`] an HTML listing with CSS selectors, [`sitemap`] a sitemap or sitemap index.
//!
//! Only what later stages need is kept, already tidied: titles without CDATA padding or line breaks,
//! links resolved against the document's URL, one author line, plain category names.

mod discover;
mod lenient;
mod listing;
mod sitemap;
mod telegram;

use std::sync::LazyLock;
use std::time::Duration;

use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};
use regex::bytes::Regex;
use url::Url;

use crate::config::SourceKind;
pub use discover::{discover, is_html_page, Discovered};

static SY_PERIOD: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"<(?:\w+:)?updatePeriod>\s*(hourly|daily|weekly|monthly|yearly)\s*</")
        .unwrap_or_else(|e| unreachable!("static regex: {e}"))
});
static SY_FREQUENCY: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"<(?:\w+:)?updateFrequency>\s*(\d{1,6})\s*</")
        .unwrap_or_else(|e| unreachable!("static regex: {e}"))
});

/// A document its reader cannot read: a feed feed-rs cannot read, a sitemap that is none, a
/// listing whose selectors find nothing, a channel that is not public.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ParseError(String);

impl ParseError {
    /// A zero-byte (or all-whitespace) body.
    pub fn empty() -> ParseError {
        ParseError("not a readable feed: the response body is empty".into())
    }
}

/// The parsed feed: its title and items, in feed order.
#[derive(Debug)]
pub struct ParsedFeed {
    pub title: Option<String>,
    pub items: Vec<FeedItem>,
    /// How often the publisher says the feed changes: RSS `<ttl>`, or the syndication module's
    /// `sy:updatePeriod` / `sy:updateFrequency`, whichever is longer.
    pub publisher_interval: Option<Duration>,
    /// A sitemap index's recently modified child sitemaps, read in the same poll.
    pub children: Vec<Url>,
    /// A Telegram preview's page of older messages, read when every message on this one is new.
    pub older: Option<Url>,
}

/// One item as the feed describes it.
#[derive(Debug, Clone)]
pub struct FeedItem {
    /// The feed's id for the item (RSS guid, Atom id, JSON Feed id; feed-rs derives one if absent).
    pub guid: String,
    pub link: Option<Url>,
    pub title: String,
    pub author: Option<String>,
    pub published: Option<DateTime<Utc>>,
    pub updated: Option<DateTime<Utc>>,
    pub categories: Vec<String>,
    /// Description/summary as the feed sent it (HTML or text).
    pub summary: Option<String>,
    /// Full content as the feed sent it, when it sends any.
    pub content: Option<String>,
    /// An image enclosure or media thumbnail.
    pub image: Option<Url>,
    /// The item's `xml:lang`, else the feed's (`<language>`, `xml:lang`), normalized.
    pub language: Option<String>,
    /// An article the item reports on without being it (a Telegram post's link preview): its
    /// page is the one fetched for the full text, and the item joins that article's story.
    pub cites: Option<Url>,
}

/// Reads a source's document (UTF-8) fetched from `url` into items, by the source's kind.
/// Sitemap entries older than `since` (the dedup window) are left out.
pub fn read(
    kind: &SourceKind,
    utf8: &[u8],
    url: &Url,
    since: DateTime<Utc>,
) -> Result<ParsedFeed, ParseError> {
    match kind {
        SourceKind::Feed if sitemap::is_sitemap(utf8) => sitemap::read(utf8, url, since),
        SourceKind::Feed => parse(utf8, url),
        SourceKind::Sitemap => sitemap::read(utf8, url, since),
        SourceKind::Html(listing) => listing::read(listing, &String::from_utf8_lossy(utf8), url),
        SourceKind::Telegram(channel) => telegram::read(channel, &String::from_utf8_lossy(utf8), url),
    }
}

/// An HTML page parsed as the extractor parses one: flattened below the depth browsers allow,
/// so 100,000 nested elements cost what a flat page does.
fn parse_html(html: &str) -> scraper::Html {
    use crate::extract::preparse;
    scraper::Html::parse_document(&preparse::prepare(html, preparse::MAX_DEPTH, false))
}

/// Parses a feed document (UTF-8) fetched from `url`: feed-rs first; when it rejects the document
/// or finds no item in it, the [`lenient`] reader.
pub fn parse(bytes: &[u8], url: &Url) -> Result<ParsedFeed, ParseError> {
    let parsed = feed_rs::parser::Builder::new()
        .base_uri(Some(url.as_str()))
        .build()
        .parse(&*dialects_feed_rs_reads(bytes));
    let feed = match parsed {
        Ok(feed) if !feed.entries.is_empty() => feed,
        parsed => {
            let lenient =
                lenient::read(&String::from_utf8_lossy(bytes), url).filter(|(_, items)| !items.is_empty());
            match (parsed, lenient) {
                (_, Some((title, items))) => {
                    let publisher_interval = syndication_interval(bytes);
                    return Ok(ParsedFeed {
                        title,
                        items,
                        publisher_interval,
                        children: Vec::new(),
                        older: None,
                    });
                }
                (Ok(feed), None) => feed,
                (Err(error), None) => {
                    return Err(ParseError(format!(
                        "not a readable feed: {}",
                        describe_unreadable(bytes, &error.to_string())
                    )))
                }
            }
        }
    };
    let ttl = feed.ttl.map(|minutes| Duration::from_secs(u64::from(minutes) * 60));
    let publisher_interval = ttl.max(syndication_interval(bytes));
    let language = feed.language.as_deref().and_then(crate::language::normalize);
    let items = feed.entries.into_iter().map(|entry| item(entry, url, language.as_deref())).collect();
    let title = feed.title.map(|t| plain_line(&t.content));
    Ok(ParsedFeed { title, items, publisher_interval, children: Vec::new(), older: None })
}

const ATOM_03: &[u8] = b"http://purl.org/atom/ns#";
const ATOM_10: &[u8] = b"http://www.w3.org/2005/Atom";

/// Old dialects rewritten into the ones feed-rs reads, so one odd feed is not a failed source:
/// Atom 0.3 (its namespace becomes Atom 1.0's; the elements are mostly the same) and MIME-style
/// Atom content types (`application/xhtml+xml`, `text/html`, `text/plain`, empty) as Atom 1.0's
/// `xhtml`/`html`/`text`; `<rss>` without a version, or with one feed-rs does not know (0.90,
/// 0.93, 0.94…), read as RSS 2.0, its superset, and without a default namespace of its own.
fn dialects_feed_rs_reads(bytes: &[u8]) -> std::borrow::Cow<'_, [u8]> {
    use memchr::memmem;
    let head = &bytes[..bytes.len().min(4096)];
    if memmem::find(head, b"<feed").is_some() {
        const REWRITES: &[(&[u8], &[u8])] = &[
            (ATOM_03, ATOM_10),
            (b" type=\"application/xhtml+xml\"", b" type=\"xhtml\""),
            (b" type=\"text/html\"", b" type=\"html\""),
            (b" type=\"text/plain\"", b" type=\"text\""),
            (b" type=\"\"", b" type=\"text\""),
        ];
        if !REWRITES.iter().any(|(from, _)| memmem::find(bytes, from).is_some()) {
            return std::borrow::Cow::Borrowed(bytes);
        }
        let mut text = bytes.to_vec();
        for (from, to) in REWRITES {
            text = replace_all(&text, from, to);
        }
        return std::borrow::Cow::Owned(text);
    }
    let Some(start) = memmem::find(head, b"<rss") else { return std::borrow::Cow::Borrowed(bytes) };
    let Some(length) = head[start..].iter().position(|&b| b == b'>') else {
        return std::borrow::Cow::Borrowed(bytes);
    };
    let tag = &head[start..start + length];
    let known = [
        &b"version=\"2.0\""[..],
        b"version='2.0'",
        b"version=\"0.91\"",
        b"version=\"0.92\"",
        b"version=\"\"",
    ];
    let known_version = known.iter().any(|v| memmem::find(tag, v).is_some());
    let default_namespace = memmem::find(tag, b"xmlns=").is_some();
    if known_version && !default_namespace {
        return std::borrow::Cow::Borrowed(bytes);
    }
    let mut new_tag = tag.to_vec();
    for attribute in [&b"xmlns="[..], b"version="] {
        if let Some(at) = memmem::find(&new_tag, attribute) {
            let quote = new_tag.get(at + attribute.len()).copied().unwrap_or(b'"');
            if let Some(end) = new_tag[at + attribute.len() + 1..].iter().position(|&b| b == quote) {
                new_tag.drain(at..at + attribute.len() + 1 + end + 1);
            }
        }
    }
    new_tag.extend_from_slice(b" version=\"2.0\"");
    let mut out = Vec::with_capacity(bytes.len() + 16);
    out.extend_from_slice(&bytes[..start]);
    out.extend_from_slice(&new_tag);
    out.extend_from_slice(&bytes[start + length..]);
    std::borrow::Cow::Owned(out)
}

fn replace_all(bytes: &[u8], from: &[u8], to: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(bytes.len() + 16);
    let mut rest = bytes;
    while let Some(at) = memchr::memmem::find(rest, from) {
        out.extend_from_slice(&rest[..at]);
        out.extend_from_slice(to);
        rest = &rest[at + from.len()..];
    }
    out.extend_from_slice(rest);
    out
}

/// A parse failure in words an operator can act on.
fn describe_unreadable(bytes: &[u8], parser_message: &str) -> String {
    let head = String::from_utf8_lossy(&bytes[..bytes.len().min(1024)]).to_ascii_lowercase();
    if head.contains("<html") || head.trim_start().starts_with("<!doctype html") {
        "the URL returned an HTML page, not a feed (is there a feed link on that page?)".into()
    } else {
        parser_message.to_owned()
    }
}

/// `sy:updatePeriod` divided by `sy:updateFrequency` (RSS 1.0 syndication module).
fn syndication_interval(bytes: &[u8]) -> Option<Duration> {
    let head = &bytes[..bytes.len().min(16 * 1024)];
    let period = match SY_PERIOD.captures(head)?.get(1)?.as_bytes() {
        b"hourly" => 3600,
        b"daily" => 86_400,
        b"weekly" => 7 * 86_400,
        b"monthly" => 30 * 86_400,
        _ => 365 * 86_400,
    };
    let frequency = SY_FREQUENCY
        .captures(head)
        .and_then(|c| std::str::from_utf8(c.get(1)?.as_bytes()).ok()?.parse::<u64>().ok())
        .filter(|f| *f > 0)
        .unwrap_or(1);
    Some(Duration::from_secs(period / frequency))
}

fn item(entry: feed_rs::model::Entry, feed_url: &Url, feed_language: Option<&str>) -> FeedItem {
    let link = entry
        .links
        .iter()
        .find(|l| l.rel.as_deref().is_none_or(|rel| rel == "alternate"))
        .or(entry.links.first())
        .and_then(|l| feed_url.join(l.href.trim()).ok())
        .filter(|u| matches!(u.scheme(), "http" | "https"));
    let author = entry
        .authors
        .iter()
        .filter_map(|p| p.name.as_deref().map(plain_line).filter(|n| !n.is_empty()))
        .collect::<Vec<_>>()
        .join(", ");
    let image = entry
        .media
        .iter()
        .flat_map(|m| {
            let contents =
                m.content.iter().filter(|c| c.content_type.as_ref().is_none_or(|t| t.ty() == "image"));
            contents
                .filter_map(|c| c.url.clone())
                .chain(m.thumbnails.iter().filter_map(|t| Url::parse(&t.image.uri).ok()))
        })
        .find(|u| matches!(u.scheme(), "http" | "https"));
    FeedItem {
        guid: entry.id.trim().to_owned(),
        title: entry.title.map(|t| plain_line(&t.content)).unwrap_or_default(),
        link,
        author: (!author.is_empty()).then_some(author),
        published: plausible(entry.published.or(entry.updated)),
        updated: plausible(entry.updated),
        categories: entry
            .categories
            .iter()
            .map(|c| plain_line(c.label.as_deref().unwrap_or(&c.term)))
            .filter(|c| !c.is_empty())
            .collect(),
        summary: entry.summary.map(|t| t.content.trim().to_owned()).filter(|s| !s.is_empty()),
        content: entry.content.and_then(|c| c.body).map(|b| b.trim().to_owned()).filter(|s| !s.is_empty()),
        image,
        language: entry
            .language
            .as_deref()
            .and_then(crate::language::normalize)
            .or(feed_language.map(str::to_owned)),
        cites: None,
    }
}

/// A date as feeds, sitemaps and pages write it, as UTC: RFC 2822 (RSS), RFC 3339 (Atom, Dublin
/// Core), W3C datetimes without seconds or without a time (sitemaps), CDF's `YYYY-MM-DDTHH:MM`.
pub(crate) fn parse_date(text: &str) -> Option<DateTime<Utc>> {
    let text = text.trim();
    DateTime::parse_from_rfc2822(text)
        .or_else(|_| DateTime::parse_from_rfc3339(text))
        .or_else(|_| DateTime::parse_from_str(text, "%Y-%m-%dT%H:%M%:z"))
        .map(|d| d.with_timezone(&Utc))
        .ok()
        .or_else(|| {
            ["%Y-%m-%dT%H:%M:%S", "%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M:%S"]
                .iter()
                .find_map(|format| NaiveDateTime::parse_from_str(text, format).ok())
                .map(|naive| naive.and_utc())
        })
        .or_else(|| {
            NaiveDate::parse_from_str(text, "%Y-%m-%d")
                .ok()
                .and_then(|d| d.and_hms_opt(0, 0, 0))
                .map(|d| d.and_utc())
        })
}

/// A date more than a day in the future is a publisher's error (or an attempt to stay on top of
/// the merged feed forever): it is treated as absent.
fn plausible(date: Option<DateTime<Utc>>) -> Option<DateTime<Utc>> {
    date.filter(|d| *d <= Utc::now() + chrono::Duration::days(1))
}

/// One line of plain text from a title, author name or category: markup stripped (RSS titles
/// are often escaped HTML; a `<script>`'s content is no text) and entities decoded, once; CDATA
/// padding, line breaks and runs of spaces collapsed.
fn plain_line(text: &str) -> String {
    let text = if text.contains(['<', '&']) {
        std::borrow::Cow::Owned(crate::extract::text::html_to_text(text))
    } else {
        std::borrow::Cow::Borrowed(text)
    };
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url() -> Url {
        Url::parse("https://unn.ua/rss/news_uk.xml").unwrap()
    }

    #[test]
    fn rss2_with_cdata_padding_and_enclosure() {
        let rss = br#"<?xml version="1.0" encoding="UTF-8"?>
<rss version="2.0"><channel><title>UNN</title>
<item><title><![CDATA[
   North Korea to send troops   ]]></title>
<link>https://unn.ua/en/news/north-korea</link><guid>https://unn.ua/en/news/north-korea</guid>
<description><![CDATA[ The lead. ]]></description><category>World</category>
<pubDate>Wed, 02 Jul 2025 10:00:00 +0300</pubDate>
<enclosure url="https://unn.ua/img/a.jpg" type="image/jpeg" length="1"/></item>
</channel></rss>"#;
        let feed = parse(rss, &url()).unwrap();
        assert_eq!(feed.title.as_deref(), Some("UNN"));
        let item = &feed.items[0];
        assert_eq!(item.title, "North Korea to send troops");
        assert_eq!(item.link.as_ref().unwrap().as_str(), "https://unn.ua/en/news/north-korea");
        assert_eq!(item.summary.as_deref(), Some("The lead."));
        assert_eq!(item.categories, vec!["World"]);
        assert_eq!(item.published.unwrap().to_rfc3339(), "2025-07-02T07:00:00+00:00");
        assert_eq!(item.image.as_ref().unwrap().as_str(), "https://unn.ua/img/a.jpg");
    }

    #[test]
    fn atom_and_json_feed_parse() {
        let atom = br#"<feed xmlns="http://www.w3.org/2005/Atom"><title>A</title><id>urn:a</id><updated>2025-01-01T00:00:00Z</updated>
<entry><id>urn:1</id><title>One</title><link href="/one"/><updated>2025-01-01T00:00:00Z</updated><author><name>Ann</name></author><content type="html">&lt;p&gt;Body&lt;/p&gt;</content></entry></feed>"#;
        let item = &parse(atom, &url()).unwrap().items[0];
        assert_eq!(item.guid, "urn:1");
        assert_eq!(item.link.as_ref().unwrap().as_str(), "https://unn.ua/one");
        assert_eq!(item.author.as_deref(), Some("Ann"));
        assert_eq!(item.content.as_deref(), Some("<p>Body</p>"));

        let json = br#"{"version":"https://jsonfeed.org/version/1.1","title":"J","items":[{"id":"7","url":"https://e.com/7","title":"Seven","content_html":"<p>x</p>"}]}"#;
        let item = &parse(json, &url()).unwrap().items[0];
        assert_eq!((item.guid.as_str(), item.title.as_str()), ("7", "Seven"));
    }

    #[test]
    fn rss1_and_rss091_parse() {
        let rss1 = br#"<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#" xmlns="http://purl.org/rss/1.0/">
<channel rdf:about="https://e.com/"><title>R1</title><link>https://e.com/</link><description>d</description></channel>
<item rdf:about="https://e.com/1"><title>First</title><link>https://e.com/1</link></item></rdf:RDF>"#;
        assert_eq!(parse(rss1, &url()).unwrap().items[0].title, "First");
        let rss091 = br#"<rss version="0.91"><channel><title>Old</title><link>https://e.com/</link><description>d</description>
<item><title>Oldie</title><link>https://e.com/o</link></item></channel></rss>"#;
        assert_eq!(parse(rss091, &url()).unwrap().items[0].title, "Oldie");
    }

    #[test]
    fn publisher_pace_from_ttl_and_syndication_module() {
        let rss = b"<rss version=\"2.0\"><channel><title>T</title><ttl>90</ttl></channel></rss>";
        assert_eq!(parse(rss, &url()).unwrap().publisher_interval, Some(Duration::from_secs(5400)));
        let rdf = br#"<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#" xmlns="http://purl.org/rss/1.0/" xmlns:sy="http://purl.org/rss/1.0/modules/syndication/">
<channel rdf:about="https://e.com/"><title>R</title><link>https://e.com/</link><description>d</description>
<sy:updatePeriod>daily</sy:updatePeriod><sy:updateFrequency>4</sy:updateFrequency></channel></rdf:RDF>"#;
        assert_eq!(parse(rdf, &url()).unwrap().publisher_interval, Some(Duration::from_secs(21_600)));
        let plain = b"<rss version=\"2.0\"><channel><title>T</title></channel></rss>";
        assert_eq!(parse(plain, &url()).unwrap().publisher_interval, None);
    }

    #[test]
    fn far_future_dates_are_dropped() {
        let rss = b"<rss version=\"2.0\"><channel><title>T</title><item><title>x</title><guid>1</guid>\
<pubDate>Mon, 01 Jan 99999 00:00:00 +0000</pubDate></item></channel></rss>";
        assert_eq!(parse(rss, &url()).unwrap().items[0].published, None);
    }

    #[test]
    fn titles_authors_and_categories_are_plain_text() {
        let rss = br#"<rss version="2.0"><channel><title>T &amp;amp; Co</title><item><guid>1</guid>
<title>&lt;script&gt;alert(1)&lt;/script&gt;News &lt;b&gt;today&lt;/b&gt; Tom &amp;amp; Jerry</title>
<author>&lt;i&gt;Ann&lt;/i&gt;</author><category>&lt;b&gt;War&lt;/b&gt;</category></item></channel></rss>"#;
        let feed = parse(rss, &url()).unwrap();
        let item = &feed.items[0];
        assert_eq!(item.title, "News today Tom & Jerry");
        assert_eq!(item.author.as_deref(), Some("Ann"));
        assert_eq!(item.categories, vec!["War"]);
        assert_eq!(feed.title.as_deref(), Some("T & Co"));
        assert_eq!(plain_line("5 < 6 and AT&T"), "5 < 6 and AT&T");
    }

    #[test]
    fn html_is_not_a_feed() {
        assert!(parse(b"<html><body>hello</body></html>", &url()).is_err());
        assert!(parse(b"", &url()).is_err());
    }
}
