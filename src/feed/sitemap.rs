//! The sitemap reader: a `<urlset>` → items (one per `<url>`), with the title, publication date
//! and language of Google News entries (`news:news`) where present, else `<lastmod>`; a
//! `<sitemapindex>` → the child sitemaps to read in the same poll.
//!
//! Evidence for the markup: the sitemap protocol (sitemaps.org, `urlset`/`url`/`loc`/`lastmod`,
//! `sitemapindex`/`sitemap`) and Google's news extension (`news:news`, `news:publication`,
//! `news:language`, `news:publication_date`, `news:title`). Elements are matched by local name,
//! whatever their namespace prefix.

use chrono::{DateTime, Utc};
use quick_xml::events::Event;
use quick_xml::Reader;
use url::Url;

use super::{parse_date, plain_line, plausible, FeedItem, ParseError, ParsedFeed};

/// Most items kept from one sitemap: the newest (a news sitemap holds two days; a full site map
/// can list 50,000 pages, which are no news).
pub const MAX_ITEMS: usize = 1000;
/// Most child sitemaps of an index read in one poll: the most recently modified.
pub const MAX_CHILDREN: usize = 10;

/// Whether the document's root element is a `<urlset>` or a `<sitemapindex>`.
pub fn is_sitemap(bytes: &[u8]) -> bool {
    let mut reader = Reader::from_reader(bytes);
    let mut buf = Vec::new();
    loop {
        match reader.read_event_into(&mut buf) {
            Ok(Event::Start(e) | Event::Empty(e)) => {
                return matches!(e.local_name().into_inner(), "urlset" | "sitemapindex")
            }
            Ok(Event::Eof) | Err(_) => return false,
            _ => buf.clear(),
        }
    }
}

/// One `<url>` or `<sitemap>` entry as read.
#[derive(Default)]
struct Entry {
    loc: Option<String>,
    lastmod: Option<String>,
    title: Option<String>,
    published: Option<String>,
    language: Option<String>,
}

/// Reads a sitemap fetched from `url`; entries older than `since` are left out.
pub fn read(bytes: &[u8], url: &Url, since: DateTime<Utc>) -> Result<ParsedFeed, ParseError> {
    let mut reader = Reader::from_reader(bytes);
    let mut buf = Vec::new();
    let (mut root, mut entry, mut field): (Option<String>, Option<Entry>, Option<String>) =
        (None, None, None);
    let mut entries = Vec::new();
    let mut text = String::new();
    loop {
        let event = reader
            .read_event_into(&mut buf)
            .map_err(|e| ParseError(format!("not a readable sitemap: {e}")))?;
        match event {
            Event::Start(e) => {
                let name = e.local_name().into_inner().to_owned();
                match root {
                    None if matches!(name.as_str(), "urlset" | "sitemapindex") => root = Some(name),
                    None => {
                        return Err(ParseError(
                            "not a sitemap: the root element is not <urlset> or <sitemapindex>".into(),
                        ))
                    }
                    Some(_) if matches!(name.as_str(), "url" | "sitemap") => entry = Some(Entry::default()),
                    Some(_) if entry.is_some() => {
                        field = Some(name);
                        text.clear();
                    }
                    Some(_) => {}
                }
            }
            Event::Text(t) if field.is_some() => text.push_str(&t.xml10_content()),
            Event::CData(t) if field.is_some() => text.push_str(&t.xml10_content()),
            Event::GeneralRef(r) if field.is_some() => text.push_str(&super::lenient::reference_text(&r)),
            Event::End(e) => {
                let name = e.local_name().into_inner().to_owned();
                if matches!(name.as_str(), "url" | "sitemap") {
                    entries.extend(entry.take());
                } else if let (Some(current), Some(open)) = (entry.as_mut(), field.take()) {
                    let value = Some(text.trim().to_owned()).filter(|v| !v.is_empty());
                    match open.as_str() {
                        "loc" => current.loc = value,
                        "lastmod" => current.lastmod = value,
                        "title" => current.title = value,
                        "publication_date" => current.published = value,
                        "language" => current.language = value,
                        _ => {}
                    }
                }
            }
            Event::Eof => break,
            _ => {}
        }
        buf.clear();
    }
    let index = match root.as_deref() {
        Some("sitemapindex") => true,
        Some(_) => false,
        None => return Err(ParseError("not a sitemap: the document is empty".into())),
    };
    let dated = |e: &Entry| plausible(e.published.as_deref().or(e.lastmod.as_deref()).and_then(parse_date));
    let mut entries: Vec<(Entry, Option<DateTime<Utc>>)> = entries
        .into_iter()
        .map(|e| {
            let date = dated(&e);
            (e, date)
        })
        .filter(|(_, date)| date.is_none_or(|d| d >= since))
        .collect();
    // Newest first; undated last, in document order.
    entries.sort_by_key(|(_, date)| std::cmp::Reverse(*date));
    let link = |e: &Entry| {
        e.loc.as_deref().and_then(|loc| url.join(loc).ok()).filter(|u| matches!(u.scheme(), "http" | "https"))
    };
    if index {
        // Only children modified within the window; undated ones only from an index that dates
        // none (then nothing tells them apart).
        let dates_children = entries.iter().any(|(_, date)| date.is_some());
        let children = entries
            .iter()
            .filter(|(_, date)| date.is_some() || !dates_children)
            .filter_map(|(e, _)| link(e))
            .take(MAX_CHILDREN)
            .collect();
        return Ok(ParsedFeed {
            title: None,
            items: Vec::new(),
            publisher_interval: None,
            children,
            older: None,
        });
    }
    let items = entries
        .iter()
        .filter_map(|(e, date)| {
            let link = link(e)?;
            Some(FeedItem {
                guid: link.to_string(),
                title: e.title.as_deref().map(plain_line).unwrap_or_default(),
                author: None,
                published: *date,
                updated: e.lastmod.as_deref().and_then(parse_date).and_then(|d| plausible(Some(d))),
                categories: Vec::new(),
                summary: None,
                content: None,
                image: None,
                language: e.language.as_deref().and_then(crate::language::normalize),
                cites: None,
                link: Some(link),
            })
        })
        .take(MAX_ITEMS)
        .collect();
    Ok(ParsedFeed { title: None, items, publisher_interval: None, children: Vec::new(), older: None })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url() -> Url {
        Url::parse("https://news.example/sitemap-news.xml").unwrap()
    }

    fn long_ago() -> DateTime<Utc> {
        DateTime::from_timestamp(0, 0).unwrap()
    }

    #[test]
    fn news_entries_give_title_date_and_language() {
        let xml = r#"<?xml version="1.0" encoding="UTF-8"?>
        <urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9" xmlns:news="http://www.google.com/schemas/sitemap-news/0.9">
          <url><loc>https://news.example/a</loc><lastmod>2026-11-30</lastmod></url>
          <url><loc>https://news.example/b</loc>
            <news:news><news:publication><news:name>Example</news:name><news:language>uk</news:language></news:publication>
            <news:publication_date>2026-12-01T09:41:00+02:00</news:publication_date>
            <news:title>Сили ППО &amp; дрони</news:title></news:news></url>
        </urlset>"#
            .as_bytes();
        assert!(is_sitemap(xml));
        let parsed = read(xml, &url(), long_ago()).unwrap();
        assert_eq!(parsed.items.len(), 2);
        let b = &parsed.items[0];
        assert_eq!(b.link.as_ref().unwrap().as_str(), "https://news.example/b");
        assert_eq!((b.title.as_str(), b.language.as_deref()), ("Сили ППО & дрони", Some("uk")));
        assert_eq!(b.published.unwrap().to_rfc3339(), "2026-12-01T07:41:00+00:00");
        assert_eq!(parsed.items[1].published.unwrap().to_rfc3339(), "2026-11-30T00:00:00+00:00");
        // Entries older than the window are left out.
        let since = DateTime::parse_from_rfc3339("2026-12-01T00:00:00Z").unwrap().to_utc();
        assert_eq!(read(xml, &url(), since).unwrap().items.len(), 1);
    }

    #[test]
    fn an_index_gives_its_recent_children_newest_first() {
        let xml = br#"<sitemapindex xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">
          <sitemap><loc>/sitemap-2019.xml</loc><lastmod>2019-01-01</lastmod></sitemap>
          <sitemap><loc>/sitemap-today.xml</loc><lastmod>2026-12-02T08:00:00Z</lastmod></sitemap>
          <sitemap><loc>/sitemap-undated.xml</loc></sitemap>
        </sitemapindex>"#;
        let since = DateTime::parse_from_rfc3339("2026-11-01T00:00:00Z").unwrap().to_utc();
        let parsed = read(xml, &url(), since).unwrap();
        assert!(parsed.items.is_empty());
        let children: Vec<&str> = parsed.children.iter().map(Url::as_str).collect();
        assert_eq!(children, ["https://news.example/sitemap-today.xml"]);
        // An index that dates none of its children: all of them (bounded).
        let undated = br#"<sitemapindex><sitemap><loc>/a.xml</loc></sitemap><sitemap><loc>/b.xml</loc></sitemap></sitemapindex>"#;
        assert_eq!(read(undated, &url(), since).unwrap().children.len(), 2);
    }

    #[test]
    fn other_documents_are_not_sitemaps() {
        assert!(!is_sitemap(b"<rss version=\"2.0\"><channel/></rss>"));
        assert!(!is_sitemap(b"<html><body>no</body></html>"));
        assert!(read(b"<rss/>", &url(), long_ago()).is_err());
        assert!(read(b"", &url(), long_ago()).is_err());
    }
}
