//! The publish stage: stored items → the merged output feed.
//!
//! [`EntryView`] is the one shape every output format renders from: ids, dates and attribution
//! are decided here once.

pub mod atom;

use chrono::{DateTime, SecondsFormat, Utc};
use url::Url;

use crate::store::StoredItem;

/// The output feed's own metadata.
#[derive(Debug, Clone)]
pub struct FeedMeta {
    pub title: String,
    /// Base URL readers reach the server at (ends with `/`).
    pub public_url: Url,
}

/// One entry, ready to render.
#[derive(Debug, Clone)]
pub struct EntryView {
    /// Stable, unique IRI for the entry.
    pub id: String,
    pub title: String,
    pub link: Option<String>,
    pub published: Option<DateTime<Utc>>,
    pub updated: DateTime<Utc>,
    pub author: Option<String>,
    pub categories: Vec<String>,
    pub summary: Option<String>,
    pub content_html: Option<String>,
    pub source: SourceView,
}

/// Where an entry came from.
#[derive(Debug, Clone)]
pub struct SourceView {
    pub name: String,
    pub title: String,
    pub feed_url: String,
}

impl EntryView {
    pub fn new(item: StoredItem, public_url: &Url) -> EntryView {
        let time = |t: i64| DateTime::from_timestamp(t, 0);
        let published = item.published.and_then(time);
        let first_seen = time(item.first_seen).unwrap_or_else(Utc::now);
        EntryView {
            id: format!("{}items/{}", public_url, item.id),
            title: if item.title.is_empty() { "(untitled)".into() } else { item.title },
            link: item.link,
            published,
            updated: item.updated.and_then(time).or(published).unwrap_or(first_seen),
            author: item.author,
            categories: item.categories,
            summary: item.summary,
            content_html: item.content_html,
            source: SourceView {
                title: item.source_title.unwrap_or_else(|| item.source_name.clone()),
                name: item.source_name,
                feed_url: item.source_url,
            },
        }
    }
}

/// RFC 3339 in UTC with a `Z`, as Atom and JSON Feed want it.
pub fn rfc3339(time: &DateTime<Utc>) -> String {
    time.to_rfc3339_opts(SecondsFormat::Secs, true)
}
