//! RSS 2.0 rendering, with `content:encoded` for the full body, `dc:creator` for authors,
//! `atom:link rel="self"` (and `rel="hub"` for WebSub) and `<source>` naming the original feed.

use std::fmt::Write;

use chrono::{DateTime, Utc};

use super::atom::escape;
use super::{feed_updated, Channel, EntryView, Format};

/// Renders the feed; `entries` are newest first.
pub fn render(channel: &Channel, entries: &[EntryView]) -> String {
    let mut out = String::with_capacity(4096 + entries.len() * 4096);
    out.push_str(
        "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<rss version=\"2.0\" \
         xmlns:content=\"http://purl.org/rss/1.0/modules/content/\" \
         xmlns:dc=\"http://purl.org/dc/elements/1.1/\" xmlns:atom=\"http://www.w3.org/2005/Atom\">\n<channel>\n",
    );
    element(&mut out, "title", &channel.title);
    element(&mut out, "link", channel.home.as_str());
    element(&mut out, "description", &format!("{} — merged by feedmill", channel.title));
    let _ = writeln!(
        out,
        "  <atom:link rel=\"self\" type=\"application/rss+xml\" href=\"{}\"/>",
        escape(&channel.url(Format::Rss))
    );
    let _ = writeln!(
        out,
        "  <atom:link rel=\"first\" type=\"application/rss+xml\" href=\"{}\"/>",
        escape(&channel.first_url(Format::Rss))
    );
    if let Some(next) = channel.next_url(Format::Rss) {
        let _ = writeln!(
            out,
            "  <atom:link rel=\"next\" type=\"application/rss+xml\" href=\"{}\"/>",
            escape(&next)
        );
    }
    if let Some(hub) = &channel.hub {
        let _ = writeln!(out, "  <atom:link rel=\"hub\" href=\"{}\"/>", escape(hub));
    }
    element(&mut out, "lastBuildDate", &rfc2822(&feed_updated(entries)));
    element(&mut out, "generator", concat!("feedmill ", env!("CARGO_PKG_VERSION")));
    for entry in entries {
        render_item(&mut out, entry);
    }
    out.push_str("</channel>\n</rss>\n");
    out
}

fn render_item(out: &mut String, entry: &EntryView) {
    out.push_str("  <item>\n");
    element(out, "title", &entry.title);
    if let Some(link) = &entry.link {
        element(out, "link", link);
    }
    let _ = writeln!(out, "    <guid isPermaLink=\"false\">{}</guid>", escape(&entry.id));
    for translation in &entry.translations {
        super::atom::edition_link(out, "atom:link", translation);
    }
    element(out, "pubDate", &rfc2822(&entry.published.unwrap_or(entry.updated)));
    element(out, "dc:creator", entry.author.as_deref().unwrap_or(&entry.source.title));
    for category in &entry.categories {
        element(out, "category", category);
    }
    if let Some(summary) = &entry.summary {
        element(out, "description", summary);
    }
    if let Some(content) = &entry.content_html {
        element(out, "content:encoded", content);
    }
    let _ = writeln!(
        out,
        "    <source url=\"{}\">{}</source>",
        escape(&entry.source.feed_url),
        escape(&entry.source.title)
    );
    out.push_str("  </item>\n");
}

fn element(out: &mut String, name: &str, text: &str) {
    let _ = writeln!(out, "    <{name}>{}</{name}>", escape(text));
}

/// RFC 822/2822 date as RSS 2.0 wants it (`Wed, 02 Jul 2025 07:06:40 +0000`).
fn rfc2822(time: &DateTime<Utc>) -> String {
    time.to_rfc2822()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::publish::tests::{channel, entry};

    #[test]
    fn renders_item_with_modules() {
        let xml = render(&channel(), &[entry()]);
        assert!(xml.contains("<title>Tom &amp; Jerry &lt;3</title>"));
        assert!(xml.contains("<link>https://e.com/a?x=1&amp;y=2</link>"));
        assert!(xml.contains("<guid isPermaLink=\"false\">http://127.0.0.1:8080/items/1</guid>"));
        assert!(xml.contains("<pubDate>Wed, 2 Jul 2025 07:06:40 +0000</pubDate>"), "{xml}");
        assert!(xml.contains("<dc:creator>E News</dc:creator>"));
        assert!(xml.contains("<content:encoded>&lt;p&gt;Body&lt;/p&gt;</content:encoded>"));
        assert!(xml.contains("<description>Lead.</description>"));
        assert!(xml.contains("<source url=\"https://e.com/rss\">E News</source>"));
        assert!(xml.contains(
            "<atom:link rel=\"alternate\" type=\"text/html\" hreflang=\"en\" href=\"https://e.com/en/a\" title=\"In English\"/>"
        ));
        assert!(xml.contains(
            "<atom:link rel=\"self\" type=\"application/rss+xml\" href=\"http://127.0.0.1:8080/feed.rss\"/>"
        ));
    }
}
