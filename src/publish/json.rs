//! JSON Feed 1.1 rendering. Attribution and related reports, which JSON Feed has no field for,
//! go in the `_feedmill` extension object (extensions start with `_`, per the spec).

use serde_json::{json, Map, Value};

use super::{rfc3339, Channel, EntryView, Format};

/// Renders the feed; `entries` are newest first.
pub fn render(channel: &Channel, entries: &[EntryView]) -> String {
    let mut feed = Map::new();
    feed.insert("version".into(), json!("https://jsonfeed.org/version/1.1"));
    feed.insert("title".into(), json!(channel.title));
    feed.insert("home_page_url".into(), json!(channel.home.as_str()));
    feed.insert("feed_url".into(), json!(channel.url(Format::Json)));
    if let Some(next) = channel.next_url(Format::Json) {
        feed.insert("next_url".into(), json!(next));
    }
    if let Some(hub) = &channel.hub {
        feed.insert("hubs".into(), json!([{"type": "WebSub", "url": hub}]));
    }
    feed.insert("items".into(), Value::Array(entries.iter().map(item).collect()));
    // Serializing a tree of strings and arrays cannot fail.
    serde_json::to_string_pretty(&Value::Object(feed)).unwrap_or_default()
}

fn item(entry: &EntryView) -> Value {
    let mut item = Map::new();
    item.insert("id".into(), json!(entry.id));
    if let Some(link) = &entry.link {
        item.insert("url".into(), json!(link));
    }
    item.insert("title".into(), json!(entry.title));
    if let Some(language) = &entry.language {
        item.insert("language".into(), json!(language));
    }
    // JSON Feed requires content_html or content_text.
    match (&entry.content_html, &entry.summary) {
        (Some(html), _) => item.insert("content_html".into(), json!(html)),
        (None, Some(summary)) => item.insert("content_text".into(), json!(summary)),
        (None, None) => item.insert("content_text".into(), json!("")),
    };
    if let Some(summary) = &entry.summary {
        item.insert("summary".into(), json!(summary));
    }
    if let Some(published) = &entry.published {
        item.insert("date_published".into(), json!(rfc3339(published)));
    }
    item.insert("date_modified".into(), json!(rfc3339(&entry.updated)));
    let author = entry.author.as_deref().unwrap_or(&entry.source.title);
    item.insert("authors".into(), json!([{ "name": author }]));
    if !entry.categories.is_empty() {
        item.insert("tags".into(), json!(entry.categories));
    }
    let related: Vec<Value> =
        entry.related.iter().map(|r| json!({"source": r.source_title, "url": r.link})).collect();
    let translations: Vec<Value> = entry
        .translations
        .iter()
        .map(|t| json!({"language": t.language, "url": t.link, "title": t.title}))
        .collect();
    let mut extension = json!({
        "source": {"name": entry.source.name, "title": entry.source.title, "feed_url": entry.source.feed_url},
        "related": related,
        "translations": translations,
    });
    if let (Some(story), Value::Object(map)) = (&entry.story_url, &mut extension) {
        map.insert("story_url".into(), json!(story));
    }
    item.insert("_feedmill".into(), extension);
    Value::Object(item)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::publish::tests::{channel, entry};

    #[test]
    fn renders_items_with_attribution() {
        let feed: Value = serde_json::from_str(&render(&channel(), &[entry()])).unwrap();
        assert_eq!(feed["version"], "https://jsonfeed.org/version/1.1");
        assert_eq!(feed["feed_url"], "http://127.0.0.1:8080/feed.json");
        let item = &feed["items"][0];
        assert_eq!(item["id"], "http://127.0.0.1:8080/items/1");
        assert_eq!(item["title"], "Tom & Jerry <3");
        assert_eq!(item["content_html"], "<p>Body</p>");
        assert_eq!(item["date_published"], "2025-07-02T07:06:40Z");
        assert_eq!(item["authors"][0]["name"], "E News");
        assert_eq!(item["_feedmill"]["source"]["feed_url"], "https://e.com/rss");
        assert_eq!(item["_feedmill"]["related"][0]["url"], "https://o.com/1");
        assert_eq!(item["language"], "uk");
        assert_eq!(item["_feedmill"]["translations"][0]["url"], "https://e.com/en/a");
        assert_eq!(item["_feedmill"]["translations"][0]["language"], "en");
        assert_eq!(item["_feedmill"]["story_url"], "http://127.0.0.1:8080/stories/1");
    }
}
