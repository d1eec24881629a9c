//! Atom 1.0 (RFC 4287) rendering.

use std::fmt::Write;

use super::{feed_updated, rfc3339, Channel, EntryView, Format, TranslationView};

/// Renders the feed; `entries` are newest first.
pub fn render(channel: &Channel, entries: &[EntryView]) -> String {
    let mut out = String::with_capacity(4096 + entries.len() * 4096);
    out.push_str(
        "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<feed xmlns=\"http://www.w3.org/2005/Atom\">\n",
    );
    element(&mut out, 1, "id", &channel.id);
    element(&mut out, 1, "title", &channel.title);
    element(&mut out, 1, "updated", &rfc3339(&feed_updated(entries)));
    link(&mut out, 1, "self", Some("application/atom+xml"), &channel.url(Format::Atom));
    // RFC 5005 paging: a reader that was away follows `next` to older entries.
    link(&mut out, 1, "first", Some("application/atom+xml"), &channel.first_url(Format::Atom));
    if let Some(next) = channel.next_url(Format::Atom) {
        link(&mut out, 1, "next", Some("application/atom+xml"), &next);
    }
    link(&mut out, 1, "alternate", Some("text/html"), channel.home.as_str());
    if let Some(hub) = &channel.hub {
        link(&mut out, 1, "hub", None, hub);
    }
    let _ = writeln!(
        out,
        "  <generator uri=\"{}\" version=\"{}\">feedmill</generator>",
        env!("CARGO_PKG_HOMEPAGE"),
        env!("CARGO_PKG_VERSION")
    );
    for entry in entries {
        render_entry(&mut out, entry);
    }
    out.push_str("</feed>\n");
    out
}

fn render_entry(out: &mut String, entry: &EntryView) {
    out.push_str("  <entry>\n");
    element(out, 2, "id", &entry.id);
    let _ = writeln!(out, "    <title type=\"text\">{}</title>", escape(&entry.title));
    if let Some(href) = &entry.link {
        let hreflang =
            entry.language.as_deref().map(|l| format!(" hreflang=\"{}\"", escape(l))).unwrap_or_default();
        let _ = writeln!(
            out,
            "    <link rel=\"alternate\" type=\"text/html\"{hreflang} href=\"{}\"/>",
            escape(href)
        );
    }
    // The story's other language editions: RFC 4287 allows several alternates that differ in
    // hreflang.
    for translation in &entry.translations {
        edition_link(out, "link", translation);
    }
    for related in &entry.related {
        if let Some(href) = &related.link {
            let _ = writeln!(
                out,
                "    <link rel=\"related\" type=\"text/html\" href=\"{}\" title=\"{}\"/>",
                escape(href),
                escape(&related.source_title)
            );
        }
    }
    if let Some(published) = &entry.published {
        element(out, 2, "published", &rfc3339(published));
    }
    element(out, 2, "updated", &rfc3339(&entry.updated));
    let author = entry.author.as_deref().unwrap_or(&entry.source.title);
    let _ = writeln!(out, "    <author><name>{}</name></author>", escape(author));
    for category in &entry.categories {
        let _ = writeln!(out, "    <category term=\"{}\"/>", escape(category));
    }
    if let Some(summary) = &entry.summary {
        let _ = writeln!(out, "    <summary type=\"text\">{}</summary>", escape(summary));
    }
    if let Some(content) = &entry.content_html {
        let _ = writeln!(out, "    <content type=\"html\">{}</content>", escape(content));
    }
    out.push_str("    <source>\n");
    element(out, 3, "id", &entry.source.feed_url);
    element(out, 3, "title", &entry.source.title);
    link(out, 3, "self", None, &entry.source.feed_url);
    out.push_str("    </source>\n  </entry>\n");
}

/// `<{element} rel="alternate" hreflang=… href=… title=…/>` for another language edition (RSS
/// writes it as `atom:link`).
pub(super) fn edition_link(out: &mut String, element: &str, edition: &TranslationView) {
    let _ = writeln!(
        out,
        "    <{element} rel=\"alternate\" type=\"text/html\" hreflang=\"{}\" href=\"{}\" title=\"{}\"/>",
        escape(&edition.language),
        escape(&edition.link),
        escape(&edition.title)
    );
}

fn link(out: &mut String, depth: usize, rel: &str, media_type: Option<&str>, href: &str) {
    let media_type = media_type.map(|t| format!(" type=\"{t}\"")).unwrap_or_default();
    let _ = writeln!(
        out,
        "{:indent$}<link rel=\"{rel}\"{media_type} href=\"{}\"/>",
        "",
        escape(href),
        indent = depth * 2
    );
}

fn element(out: &mut String, depth: usize, name: &str, text: &str) {
    let _ = writeln!(out, "{:indent$}<{name}>{}</{name}>", "", escape(text), indent = depth * 2);
}

/// XML text/attribute escaping; characters XML 1.0 forbids (most C0 controls) are dropped.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + text.len() / 8);
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\t' | '\n' | '\r' => out.push(c),
            c if (c as u32) < 0x20 || c == '\u{FFFE}' || c == '\u{FFFF}' => {}
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::publish::tests::{channel, entry};

    #[test]
    fn renders_escaped_entry_with_source() {
        let xml = render(&channel(), &[entry()]);
        assert!(xml.contains("<title type=\"text\">Tom &amp; Jerry &lt;3</title>"));
        assert!(xml.contains("href=\"https://e.com/a?x=1&amp;y=2\""));
        assert!(xml.contains("<content type=\"html\">&lt;p&gt;Body&lt;/p&gt;</content>"));
        assert!(xml.contains("<summary type=\"text\">Lead.</summary>"));
        assert!(xml.contains("<author><name>E News</name></author>"));
        assert!(xml.contains("<source>") && xml.contains("<id>https://e.com/rss</id>"));
        assert!(xml.contains(
            "<link rel=\"self\" type=\"application/atom+xml\" href=\"http://127.0.0.1:8080/feed.atom\"/>"
        ));
        assert!(xml.contains(
            "<link rel=\"related\" type=\"text/html\" href=\"https://o.com/1\" title=\"Other &amp; Co\"/>"
        ));
        assert!(xml.contains("<updated>2025-07-02T07:06:40Z</updated>"));
        assert!(xml.contains(
            "<link rel=\"alternate\" type=\"text/html\" hreflang=\"uk\" href=\"https://e.com/a?x=1&amp;y=2\"/>"
        ));
        assert!(xml.contains(
            "<link rel=\"alternate\" type=\"text/html\" hreflang=\"en\" href=\"https://e.com/en/a\" title=\"In English\"/>"
        ));
        assert!(!xml.contains("rel=\"hub\""));
        let mut with_hub = channel();
        with_hub.hub = Some("https://hub.example/".into());
        assert!(render(&with_hub, &[]).contains("<link rel=\"hub\" href=\"https://hub.example/\"/>"));
    }
}
