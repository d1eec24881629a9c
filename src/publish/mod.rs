//! The publish stage: stored items → output feeds (Atom, RSS 2.0, JSON Feed).
//!
//! [`EntryView`] is the one shape every format renders from: ids, dates, attribution, a story's
//! "Also reported by" line and its other language editions are decided here once. An entry of
//! the merged and per-tag feeds is a story: its id is the story's page (`/stories/{id}`; for
//! stories from before stories had ids, `/items/{id}`, which leads there), whichever report is
//! published. [`Channel`] says
//! which feed is rendered (the merged one, one source's, one tag's) and where it lives.

pub mod atom;
pub mod json;
pub mod rss;
pub mod story;

use chrono::{DateTime, SecondsFormat, Utc};
use url::Url;

use crate::language;
use crate::store::{FeedScope, StoredItem};

/// An output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Format {
    Atom,
    Rss,
    Json,
}

impl Format {
    /// The format a feed file name asks for: `feed.atom`, `feed.rss`, `feed.json`.
    pub fn from_file_name(name: &str) -> Option<Format> {
        match name {
            "feed.atom" => Some(Format::Atom),
            "feed.rss" => Some(Format::Rss),
            "feed.json" => Some(Format::Json),
            _ => None,
        }
    }

    pub fn extension(self) -> &'static str {
        match self {
            Format::Atom => "atom",
            Format::Rss => "rss",
            Format::Json => "json",
        }
    }

    pub fn content_type(self) -> &'static str {
        match self {
            Format::Atom => "application/atom+xml; charset=utf-8",
            Format::Rss => "application/rss+xml; charset=utf-8",
            Format::Json => "application/feed+json; charset=utf-8",
        }
    }

    /// Renders `entries` (newest first) as this format.
    pub fn render(self, channel: &Channel, entries: &[EntryView]) -> String {
        match self {
            Format::Atom => atom::render(channel, entries),
            Format::Rss => rss::render(channel, entries),
            Format::Json => json::render(channel, entries),
        }
    }
}

/// One output feed: its title and addresses.
#[derive(Debug, Clone)]
pub struct Channel {
    /// The feed's stable identity (Atom `id`); the merged feed keeps the server's base URL.
    pub id: String,
    pub title: String,
    /// The server's public base URL (ends with `/`); entry ids are made from it.
    pub home: Url,
    /// The feed's URL without its extension, e.g. `http://host/feed` or `http://host/tags/war/feed`.
    pub base: String,
    /// A WebSub hub the feed advertises.
    pub hub: Option<String>,
    /// This page's cursor (`before=…`) when it is an older page, not the feed's head.
    pub page: Option<String>,
    /// The next older page's cursor, when there are older entries (RFC 5005 paging).
    pub next_page: Option<String>,
}

impl Channel {
    /// The feed of a scope: the merged feed at `/feed.*`, a source's at `/sources/NAME/feed.*`,
    /// a tag's at `/tags/TAG/feed.*`.
    pub fn for_scope(title: &str, home: &Url, scope: &FeedScope) -> Channel {
        let nested = |name: &str, folder: &str| {
            // A name is one path segment, percent-encoded (spaces as %20).
            let segment: String = url::form_urlencoded::byte_serialize(name.as_bytes()).collect();
            let base = format!("{home}{folder}/{}/feed", segment.replace('+', "%20"));
            (format!("{title} — {name}"), base)
        };
        let (title, base, id) = match scope {
            FeedScope::All => (title.to_owned(), format!("{home}feed"), home.to_string()),
            FeedScope::Source(name) => {
                let (title, base) = nested(name, "sources");
                (title, base.clone(), base)
            }
            FeedScope::Tag(tag) => {
                let (title, base) = nested(tag, "tags");
                (title, base.clone(), base)
            }
        };
        Channel { id, title, home: home.clone(), base, hub: None, page: None, next_page: None }
    }

    /// The feed's head (newest page) in `format`.
    pub fn first_url(&self, format: Format) -> String {
        format!("{}.{}", self.base, format.extension())
    }

    /// This page's own URL in `format`.
    pub fn url(&self, format: Format) -> String {
        self.page_url(format, self.page.as_deref())
    }

    /// The next older page, if any.
    pub fn next_url(&self, format: Format) -> Option<String> {
        self.next_page.as_deref().map(|cursor| self.page_url(format, Some(cursor)))
    }

    fn page_url(&self, format: Format, cursor: Option<&str>) -> String {
        match cursor {
            Some(cursor) => format!("{}?before={cursor}", self.first_url(format)),
            None => self.first_url(format),
        }
    }
}

/// One entry, ready to render.
#[derive(Debug, Clone)]
pub struct EntryView {
    /// Stable, unique IRI for the entry.
    pub id: String,
    pub title: String,
    pub link: Option<String>,
    /// The published report's language, when known.
    pub language: Option<String>,
    pub published: Option<DateTime<Utc>>,
    pub updated: DateTime<Utc>,
    pub author: Option<String>,
    pub categories: Vec<String>,
    pub summary: Option<String>,
    /// The body, with the "Also reported by" line appended when other sources carried the story.
    pub content_html: Option<String>,
    pub source: SourceView,
    /// The same story from other sources.
    pub related: Vec<RelatedView>,
    /// The story's editions in other languages.
    pub translations: Vec<TranslationView>,
    /// The story's page, listing every report (entries of the merged and per-tag feeds).
    pub story_url: Option<String>,
}

/// Another language edition of the story.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TranslationView {
    pub language: String,
    pub link: String,
    pub title: String,
}

/// Where an entry came from.
#[derive(Debug, Clone)]
pub struct SourceView {
    pub name: String,
    pub title: String,
    pub feed_url: String,
}

/// Another source's report of the same story.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RelatedView {
    pub source_title: String,
    pub link: Option<String>,
}

impl EntryView {
    pub fn new(item: StoredItem, public_url: &Url) -> EntryView {
        let time = |t: i64| DateTime::from_timestamp(t, 0);
        let published = item.published.and_then(time);
        let first_seen = time(item.first_seen).unwrap_or_else(Utc::now);
        let related: Vec<RelatedView> = item
            .related
            .into_iter()
            .map(|r| RelatedView { source_title: r.source_title, link: r.link })
            .collect();
        let translations: Vec<TranslationView> = item
            .translations
            .into_iter()
            .filter_map(|t| Some(TranslationView { language: t.language, link: t.link?, title: t.title }))
            .collect();
        let story_url = item.story.map(|story| format!("{public_url}stories/{}", story.id));
        let id = match item.story {
            Some(story) if !story.legacy => format!("{public_url}stories/{}", story.id),
            Some(story) => format!("{public_url}items/{}", story.id),
            None => format!("{public_url}items/{}", item.id),
        };
        let closing = [also_reported_by(&related, story_url.as_deref()), also_in(&translations)];
        let content_html =
            item.content_html.map(|html| closing.iter().flatten().fold(html, |html, line| html + line));
        EntryView {
            id,
            title: if item.title.is_empty() { "(untitled)".into() } else { item.title },
            link: item.link,
            language: item.language,
            published,
            updated: item
                .changed_at
                .and_then(time)
                .max(item.updated.and_then(time))
                .max(item.story.and_then(|s| s.changed_at).and_then(time))
                .or(published)
                .unwrap_or(first_seen),
            author: item.author,
            categories: item.categories,
            summary: item.summary,
            content_html,
            source: SourceView {
                title: item.source_title.unwrap_or_else(|| item.source_name.clone()),
                name: item.source_name,
                feed_url: item.source_url,
            },
            related,
            translations,
            story_url,
        }
    }
}

/// `<p>Also reported by: <a href=…>UNN</a>, Ukrinform (<a href=…>all reports</a>)</p>`, or
/// nothing without related reports.
fn also_reported_by(related: &[RelatedView], story_url: Option<&str>) -> Option<String> {
    if related.is_empty() {
        return None;
    }
    let names: Vec<String> = related
        .iter()
        .map(|r| match &r.link {
            Some(link) => format!("<a href=\"{}\">{}</a>", atom::escape(link), atom::escape(&r.source_title)),
            None => atom::escape(&r.source_title),
        })
        .collect();
    let all = story_url
        .map(|url| format!(" (<a href=\"{}\">all reports</a>)", atom::escape(url)))
        .unwrap_or_default();
    Some(format!("<p>Also reported by: {}{all}</p>", names.join(", ")))
}

/// `<p>Also in English: <a href=…>Title</a>; in Russian: <a href=…>Title</a></p>`, or nothing
/// without other editions.
fn also_in(translations: &[TranslationView]) -> Option<String> {
    let editions: Vec<String> = translations
        .iter()
        .map(|t| {
            format!(
                "in {}: <a href=\"{}\" hreflang=\"{}\">{}</a>",
                atom::escape(&language::name(&t.language)),
                atom::escape(&t.link),
                atom::escape(&t.language),
                atom::escape(&t.title)
            )
        })
        .collect();
    (!editions.is_empty()).then(|| format!("<p>Also {}</p>", editions.join("; ")))
}

/// RFC 3339 in UTC with a `Z`, as Atom and JSON Feed want it.
pub fn rfc3339(time: &DateTime<Utc>) -> String {
    time.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// The newest `updated` time of the entries (now for an empty feed).
pub fn feed_updated(entries: &[EntryView]) -> DateTime<Utc> {
    entries.iter().map(|e| e.updated).max().unwrap_or_else(Utc::now)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// An entry with markup-sensitive text in every field, for the format tests.
    pub fn entry() -> EntryView {
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
            related: vec![RelatedView {
                source_title: "Other & Co".into(),
                link: Some("https://o.com/1".into()),
            }],
            language: Some("uk".into()),
            translations: vec![TranslationView {
                language: "en".into(),
                link: "https://e.com/en/a".into(),
                title: "In English".into(),
            }],
            story_url: Some("http://127.0.0.1:8080/stories/1".into()),
        }
    }

    pub fn channel() -> Channel {
        Channel::for_scope("feedmill", &Url::parse("http://127.0.0.1:8080/").unwrap(), &FeedScope::All)
    }

    #[test]
    fn also_reported_by_names_each_source() {
        let related = vec![
            RelatedView { source_title: "UNN".into(), link: Some("https://unn.ua/a?x=1&y=2".into()) },
            RelatedView { source_title: "Blog <b>".into(), link: None },
        ];
        assert_eq!(
            also_reported_by(&related, None).unwrap(),
            "<p>Also reported by: <a href=\"https://unn.ua/a?x=1&amp;y=2\">UNN</a>, Blog &lt;b&gt;</p>"
        );
        assert!(also_reported_by(&related, Some("http://h/stories/3"))
            .unwrap()
            .ends_with(" (<a href=\"http://h/stories/3\">all reports</a>)</p>"));
        assert_eq!(also_reported_by(&[], Some("http://h/stories/3")), None);
    }

    #[test]
    fn also_in_names_each_language() {
        let translations = vec![
            TranslationView {
                language: "en".into(),
                link: "https://unn.ua/en/a".into(),
                title: "A & B".into(),
            },
            TranslationView { language: "ru".into(), link: "https://unn.ua/ru/a".into(), title: "А".into() },
        ];
        assert_eq!(
            also_in(&translations).unwrap(),
            "<p>Also in English: <a href=\"https://unn.ua/en/a\" hreflang=\"en\">A &amp; B</a>; \
             in Russian: <a href=\"https://unn.ua/ru/a\" hreflang=\"ru\">А</a></p>"
        );
        assert_eq!(also_in(&[]), None);
    }
}
