//! Atom 1.0 (RFC 4287) rendering of the merged feed.

use std::fmt::Write;

use chrono::Utc;

use super::{rfc3339, EntryView, FeedMeta};

/// Renders the feed; `entries` are newest first.
pub fn render(meta: &FeedMeta, entries: &[EntryView]) -> String {
    let updated = entries.iter().map(|e| e.updated).max().unwrap_or_else(Utc::now);
    let mut out = String::with_capacity(4096 + entries.len() * 4096);
    out.push_str(
        "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<feed xmlns=\"http://www.w3.org/2005/Atom\">\n",
    );
    element(&mut out, 1, "id", meta.public_url.as_str());
    element(&mut out, 1, "title", &meta.title);
    element(&mut out, 1, "updated", &rfc3339(&updated));
    let self_url = format!("{}feed.atom", meta.public_url);
    let _ =
        writeln!(out, "  <link rel=\"self\" type=\"application/atom+xml\" href=\"{}\"/>", escape(&self_url));
    let _ = writeln!(
        out,
        "  <link rel=\"alternate\" type=\"text/html\" href=\"{}\"/>",
        escape(meta.public_url.as_str())
    );
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
    if let Some(link) = &entry.link {
        let _ = writeln!(out, "    <link rel=\"alternate\" type=\"text/html\" href=\"{}\"/>", escape(link));
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
    let _ = writeln!(out, "      <link rel=\"self\" href=\"{}\"/>", escape(&entry.source.feed_url));
    out.push_str("    </source>\n  </entry>\n");
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
    use crate::publish::SourceView;
    use chrono::DateTime;
    use url::Url;

    fn entry() -> EntryView {
        EntryView {
            id: "http://127.0.0.1:8080/items/1".into(),
            title: "Tom & Jerry <3".into(),
            link: Some("https://e.com/a?x=1&y=2".into()),
            published: DateTime::from_timestamp(1_751_440_000, 0),
            updated: DateTime::from_timestamp(1_751_440_000, 0).unwrap(),
            author: None,
            categories: vec!["World".into()],
            summary: Some("Lead\u{0}.".into()),
            content_html: Some("<p>Body</p>".into()),
            source: SourceView {
                name: "e".into(),
                title: "E News".into(),
                feed_url: "https://e.com/rss".into(),
            },
        }
    }

    #[test]
    fn renders_escaped_entry_with_source() {
        let meta =
            FeedMeta { title: "feedmill".into(), public_url: Url::parse("http://127.0.0.1:8080/").unwrap() };
        let xml = render(&meta, &[entry()]);
        assert!(xml.contains("<title type=\"text\">Tom &amp; Jerry &lt;3</title>"));
        assert!(xml.contains("href=\"https://e.com/a?x=1&amp;y=2\""));
        assert!(xml.contains("<content type=\"html\">&lt;p&gt;Body&lt;/p&gt;</content>"));
        assert!(xml.contains("<summary type=\"text\">Lead.</summary>"));
        assert!(xml.contains("<author><name>E News</name></author>"));
        assert!(xml.contains("<source>") && xml.contains("<id>https://e.com/rss</id>"));
        assert!(xml.contains(
            "<link rel=\"self\" type=\"application/atom+xml\" href=\"http://127.0.0.1:8080/feed.atom\"/>"
        ));
        assert!(xml.contains("<updated>2025-07-02T07:06:40Z</updated>"));
    }
}
