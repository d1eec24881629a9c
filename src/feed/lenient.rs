//! The lenient reader: the last resort for XML feeds that feed-rs rejects or reads without a
//! single item — Microsoft CDF, RSS 0.90, RSS 1.0 items without a `<link>`, RSS 2.0 in a prefixed
//! namespace, `<item>`s inside an Atom `<feed>`, base64-encoded Atom text. Like Python's
//! feedparser, it goes by element names (case-insensitive, any namespace) rather than by dialect.
//!
//! It reads only well-formed documents whose root is a feed element (`rss`, `RDF`, `feed`,
//! `channel`), so a truncated feed or an HTML page stays an error. Entities other than XML's five
//! and character references are kept as written, never expanded.

use base64::Engine;

use quick_xml::events::{BytesStart, Event};
use quick_xml::Reader;
use sha2::{Digest, Sha256};
use url::Url;

use super::{parse_date, plain_line, FeedItem};

/// Most items read from one document.
const MAX_ITEMS: usize = 10_000;

/// An element being read inside an item: its lower-case local name, the attributes that matter
/// and its text (including the text of elements inside it).
struct Field {
    name: String,
    depth: usize,
    href: Option<String>,
    rel: Option<String>,
    term: Option<String>,
    base64: bool,
    text: String,
}

#[derive(Default)]
struct RawItem {
    depth: usize,
    about: Option<String>,
    href: Option<String>,
    guid: Option<String>,
    link: Option<String>,
    title: Option<String>,
    summary: Option<String>,
    content: Option<String>,
    author: Option<String>,
    published: Option<String>,
    updated: Option<String>,
    categories: Vec<String>,
}

/// The feed's title and items, or `None` when the document is not a well-formed feed.
pub(super) fn read(text: &str, feed_url: &Url) -> Option<(Option<String>, Vec<FeedItem>)> {
    let mut reader = Reader::from_str(text);
    let mut depth = 0usize;
    // The feed's own `<title>` while it is being read, then its text.
    let mut feed_title: Option<Field> = None;
    let mut title: Option<String> = None;
    let mut item: Option<RawItem> = None;
    let mut field: Option<Field> = None;
    let mut items = Vec::new();
    loop {
        match reader.read_event().ok()? {
            Event::Start(e) => {
                depth += 1;
                let name = local_name(&e);
                if depth == 1 && !matches!(name.as_str(), "rss" | "rdf" | "feed" | "channel") {
                    return None;
                }
                match &mut item {
                    None if name == "item" || name == "entry" => item = Some(start_item(&e, depth)),
                    Some(open) if field.is_none() && depth == open.depth + 1 => {
                        field = Some(start_field(&e, name, depth))
                    }
                    None if name == "title" && title.is_none() && feed_title.is_none() => {
                        feed_title = Some(start_field(&e, name, depth))
                    }
                    _ => {}
                }
            }
            Event::Empty(e) => {
                let name = local_name(&e);
                if depth == 0 {
                    return None;
                }
                match &mut item {
                    None if name == "item" || name == "entry" => {
                        items.push(finish_item(start_item(&e, depth + 1), feed_url))
                    }
                    Some(open) if field.is_none() && depth == open.depth => {
                        finish_field(open, start_field(&e, name, depth + 1))
                    }
                    _ => {}
                }
            }
            Event::Text(t) => append(&mut field, &mut feed_title, &t.xml10_content()),
            Event::CData(t) => append(&mut field, &mut feed_title, &t.xml10_content()),
            Event::GeneralRef(r) => append(&mut field, &mut feed_title, &reference_text(&r)),
            Event::End(_) => {
                if field.as_ref().is_some_and(|f| f.depth == depth) {
                    if let (Some(open), Some(done)) = (&mut item, field.take()) {
                        finish_field(open, done);
                    }
                } else if item.as_ref().is_some_and(|i| i.depth == depth) {
                    if let Some(done) = item.take() {
                        items.push(finish_item(done, feed_url));
                    }
                } else if let Some(done) = feed_title.take_if(|f| f.depth == depth) {
                    title = Some(plain_line(&done.text)).filter(|t| !t.is_empty());
                }
                depth = depth.checked_sub(1)?;
            }
            Event::Eof => break,
            _ => {}
        }
        if items.len() >= MAX_ITEMS {
            break;
        }
    }
    if depth != 0 && items.len() < MAX_ITEMS {
        return None;
    }
    Some((title, items))
}

fn local_name(e: &BytesStart) -> String {
    e.local_name().as_ref().to_ascii_lowercase()
}

/// The attributes of `e` by lower-case local name.
fn attribute(e: &BytesStart, wanted: &str) -> Option<String> {
    e.attributes().flatten().find_map(|a| {
        let name = a.key.local_name().as_ref().to_ascii_lowercase();
        (name == wanted)
            .then(|| a.normalized_value(quick_xml::XmlVersion::Implicit1_0).ok().map(|v| v.trim().to_owned()))
            .flatten()
    })
}

fn start_item(e: &BytesStart, depth: usize) -> RawItem {
    RawItem {
        depth,
        // RSS 1.0's `rdf:about`, CDF's `HREF` and `LASTMOD`.
        about: attribute(e, "about"),
        href: attribute(e, "href"),
        updated: attribute(e, "lastmod"),
        ..RawItem::default()
    }
}

fn start_field(e: &BytesStart, name: String, depth: usize) -> Field {
    let kind = attribute(e, "type").unwrap_or_default();
    let base64 = kind == "application/octet-stream" || attribute(e, "mode").as_deref() == Some("base64");
    Field {
        name,
        depth,
        href: attribute(e, "href"),
        rel: attribute(e, "rel"),
        term: attribute(e, "term"),
        base64,
        text: String::new(),
    }
}

fn append(field: &mut Option<Field>, feed_title: &mut Option<Field>, text: &str) {
    if let Some(f) = field.as_mut() {
        f.text.push_str(text);
    } else if let Some(f) = feed_title.as_mut() {
        f.text.push_str(text);
    }
}

fn finish_field(item: &mut RawItem, field: Field) {
    let text = if field.base64 { decode_base64(&field.text) } else { field.text.trim().to_owned() };
    let set = |slot: &mut Option<String>, value: String| {
        if slot.is_none() && !value.is_empty() {
            *slot = Some(value);
        }
    };
    match field.name.as_str() {
        "title" => set(&mut item.title, text),
        "link" | "a" => match field.href {
            Some(href) if field.rel.as_deref().is_none_or(|r| r == "alternate") => set(&mut item.link, href),
            Some(_) => {}
            None => set(&mut item.link, text),
        },
        "guid" | "id" => set(&mut item.guid, text),
        "description" | "summary" | "abstract" => set(&mut item.summary, text),
        "encoded" | "content" | "body" => set(&mut item.content, text),
        "pubdate" | "date" | "published" | "issued" | "created" => set(&mut item.published, text),
        "updated" | "modified" | "lastmod" => set(&mut item.updated, text),
        "author" | "creator" => set(&mut item.author, plain_line(&text)),
        "category" | "subject" => {
            let name = field.term.filter(|t| !t.is_empty()).unwrap_or(text);
            if !name.is_empty() {
                item.categories.push(plain_line(&name));
            }
        }
        _ => {}
    }
}

fn finish_item(raw: RawItem, feed_url: &Url) -> FeedItem {
    let link = [&raw.link, &raw.href, &raw.about]
        .into_iter()
        .flatten()
        .filter_map(|l| feed_url.join(l.trim()).ok())
        .find(|u| matches!(u.scheme(), "http" | "https"));
    let guid = raw.guid.clone().or_else(|| raw.about.clone()).or_else(|| link.as_ref().map(Url::to_string));
    let guid = guid.unwrap_or_else(|| {
        // As feed-rs does for items without an id: a digest of what the item says.
        let mut digest = Sha256::new();
        for part in [&raw.title, &raw.summary, &raw.content, &raw.published] {
            digest.update(part.as_deref().unwrap_or_default());
            digest.update([0]);
        }
        digest.finalize().iter().take(16).map(|b| format!("{b:02x}")).collect()
    });
    let updated = raw.updated.as_deref().and_then(parse_date);
    FeedItem {
        guid,
        link,
        title: raw.title.as_deref().map(plain_line).unwrap_or_default(),
        author: raw.author.filter(|a| !a.is_empty()),
        published: super::plausible(raw.published.as_deref().and_then(parse_date).or(updated)),
        updated: super::plausible(updated),
        categories: raw.categories,
        summary: raw.summary,
        content: raw.content,
        image: None,
        language: None,
        cites: None,
    }
}

fn decode_base64(text: &str) -> String {
    let compact: String = text.split_whitespace().collect();
    base64::engine::general_purpose::STANDARD
        .decode(compact.as_bytes())
        .map(|bytes| String::from_utf8_lossy(&bytes).trim().to_owned())
        .unwrap_or_else(|_| text.trim().to_owned())
}

/// A character or entity reference as text: XML's five entities and character references
/// resolved, any other entity kept as written (never expanded).
pub(super) fn reference_text(reference: &quick_xml::events::BytesRef) -> String {
    match reference.resolve_char_ref() {
        Ok(Some(c)) => c.to_string(),
        _ => match &*reference.xml10_content() {
            "lt" => "<".into(),
            "gt" => ">".into(),
            "amp" => "&".into(),
            "quot" => "\"".into(),
            "apos" => "'".into(),
            other => format!("&{other};"),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url() -> Url {
        Url::parse("http://example.com/feed").unwrap()
    }

    #[test]
    fn cdf_items_with_href_and_abstract() {
        let cdf = r#"<CHANNEL HREF="http://example.com/"><TITLE>Site</TITLE> and some text
            <ITEM HREF="/a" LASTMOD="2024-11-05T22:12">stray<TITLE>First &amp; best</TITLE><ABSTRACT>Lead</ABSTRACT></ITEM>
            </CHANNEL>"#;
        let (title, items) = read(cdf, &url()).unwrap();
        assert_eq!(title.as_deref(), Some("Site"));
        assert_eq!(items.len(), 1);
        assert_eq!(items[0].title, "First & best");
        assert_eq!(items[0].link.as_ref().unwrap().as_str(), "http://example.com/a");
        assert_eq!(items[0].summary.as_deref(), Some("Lead"));
        assert_eq!(items[0].published.unwrap().to_rfc3339(), "2024-11-05T22:12:00+00:00");
    }

    #[test]
    fn prefixed_rss_and_rdf_about_and_base64() {
        let rss = r#"<r:rss version="2.0" xmlns:r="http://backend.userland.com/rss2"><r:channel>
            <r:item><r:title>T</r:title><r:link>http://example.com/1</r:link></r:item></r:channel></r:rss>"#;
        let (_, items) = read(rss, &url()).unwrap();
        assert_eq!(items[0].link.as_ref().unwrap().as_str(), "http://example.com/1");
        let rdf = r#"<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#" xmlns="http://purl.org/rss/1.0/">
            <item rdf:about="http://example.org/1"><title>A</title></item></rdf:RDF>"#;
        let (_, items) = read(rdf, &url()).unwrap();
        assert_eq!(items[0].guid, "http://example.org/1");
        let atom = r#"<feed xmlns="http://www.w3.org/2005/Atom"><entry>
            <title type="application/octet-stream">RXhhbXBsZSA8Yj5BdG9tPC9iPg==</title></entry></feed>"#;
        let (_, items) = read(atom, &url()).unwrap();
        assert_eq!(items[0].title, "Example Atom", "markup stripped: titles are plain text");
    }

    #[test]
    fn never_panics_on_feed_fragments_in_any_order() {
        const PIECES: &[&str] = &[
            "<rss>",
            "</rss>",
            "<item>",
            "</item>",
            "<ITEM HREF='/a'>",
            "<title>",
            "</title>",
            "<link>",
            "</link>",
            "<link href=\"x\"/>",
            "<entry/>",
            "&amp;",
            "&#0;",
            "&x;",
            "<![CDATA[",
            "]]>",
            "x",
            "<feed>",
            "</feed>",
            "<summary type=\"application/octet-stream\">",
            "</summary>",
            "<",
            ">",
        ];
        let mut state = 0x9e37_79b9_7f4a_7c15_u64;
        for _ in 0..5_000 {
            let mut doc = String::new();
            for _ in 0..(state % 20) {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                doc.push_str(PIECES[(state % PIECES.len() as u64) as usize]);
            }
            let _ = read(&doc, &url());
        }
    }

    #[test]
    fn truncated_documents_html_and_entities_are_not_read() {
        assert!(read("<rss><channel><item><title>cut", &url()).is_none());
        assert!(read("<html><body><item>x</item></body></html>", &url()).is_none());
        let (_, items) = read("<rss><item><title>&custom; &#233;</title></item></rss>", &url()).unwrap();
        assert_eq!(items[0].title, "&custom; é");
    }
}
