//! OPML 2.0: the sources as a subscription list for other readers (`feedmill opml export`), and
//! another reader's list as `[[sources]]` TOML (`feedmill opml import`).

use std::collections::HashSet;

use quick_xml::events::{BytesStart, Event};
use quick_xml::Reader;
use url::Url;

use crate::config::Config;
use crate::publish::atom::escape;

/// An OPML file that could not be read.
#[derive(Debug, thiserror::Error)]
#[error("OPML: {0}")]
pub struct OpmlError(String);

/// One subscription of an OPML file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subscription {
    pub title: String,
    pub url: Url,
    /// The folders it sits in (outer first) and its `category` attribute: feedmill tags.
    pub tags: Vec<String>,
    /// Only the site's page was given (`htmlUrl`, no `xmlUrl`): the feed it links is found at
    /// the first poll.
    pub page: bool,
}

/// The configured sources as an OPML 2.0 document.
pub fn export(config: &Config) -> String {
    let mut out =
        String::from("<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<opml version=\"2.0\">\n  <head>\n");
    out.push_str(&format!("    <title>{}</title>\n  </head>\n  <body>\n", escape(&config.feed.title)));
    for source in &config.sources {
        let category = if source.tags.is_empty() {
            String::new()
        } else {
            format!(" category=\"{}\"", escape(&source.tags.join(",")))
        };
        out.push_str(&format!(
            "    <outline type=\"rss\" text=\"{name}\" title=\"{name}\" xmlUrl=\"{url}\"{category}/>\n",
            name = escape(&source.name),
            url = escape(source.url.as_str()),
        ));
    }
    out.push_str("  </body>\n</opml>\n");
    out
}

/// The subscriptions (outlines with an `xmlUrl`) of an OPML document.
pub fn parse(text: &str) -> Result<Vec<Subscription>, OpmlError> {
    let mut reader = Reader::from_str(text);
    let mut folders: Vec<Option<String>> = Vec::new();
    let mut found = Vec::new();
    let mut saw_opml = false;
    loop {
        let event = reader.read_event().map_err(|e| {
            OpmlError(format!("not well-formed XML at byte {}: {e}", reader.buffer_position()))
        })?;
        match event {
            Event::Start(e) | Event::Empty(e) if e.name().as_ref() == "opml" => saw_opml = true,
            Event::Start(e) if e.name().as_ref() == "outline" => {
                let outline = attributes(&e);
                match subscription(&outline, &folders) {
                    Some(s) => {
                        found.push(s);
                        folders.push(None);
                    }
                    None => folders.push(outline.text.or(outline.title)),
                }
            }
            Event::Empty(e) if e.name().as_ref() == "outline" => {
                found.extend(subscription(&attributes(&e), &folders));
            }
            Event::End(e) if e.name().as_ref() == "outline" => {
                folders.pop();
            }
            Event::Eof => break,
            _ => {}
        }
    }
    if !saw_opml {
        return Err(OpmlError("no <opml> element: not an OPML file".into()));
    }
    Ok(found)
}

#[derive(Default)]
struct Outline {
    text: Option<String>,
    title: Option<String>,
    xml_url: Option<String>,
    html_url: Option<String>,
    category: Option<String>,
}

fn attributes(element: &BytesStart) -> Outline {
    let mut outline = Outline::default();
    for attribute in element.attributes().flatten() {
        let Ok(value) = attribute.normalized_value(quick_xml::XmlVersion::Implicit1_0) else { continue };
        let value = value.trim().to_owned();
        match attribute.key.as_ref() {
            "text" => outline.text = Some(value),
            "title" => outline.title = Some(value),
            "xmlUrl" | "xmlurl" => outline.xml_url = Some(value),
            "htmlUrl" | "htmlurl" => outline.html_url = Some(value),
            "category" => outline.category = Some(value),
            _ => {}
        }
    }
    outline
}

fn subscription(outline: &Outline, folders: &[Option<String>]) -> Option<Subscription> {
    let page = outline.xml_url.is_none();
    let address = outline.xml_url.as_deref().or(outline.html_url.as_deref())?;
    let url = Url::parse(address).ok().filter(|u| matches!(u.scheme(), "http" | "https"))?;
    let mut tags: Vec<String> = folders.iter().flatten().cloned().collect();
    for category in outline.category.iter().flat_map(|c| c.split(',')) {
        // OPML categories may be paths ("/News/Ukraine"): each part is a tag.
        tags.extend(category.split('/').map(str::trim).filter(|t| !t.is_empty()).map(str::to_owned));
    }
    tags.dedup();
    let title = outline.title.clone().or_else(|| outline.text.clone()).unwrap_or_else(|| url.to_string());
    Some(Subscription { title, url, tags, page })
}

/// `[[sources]]` TOML for the subscriptions the config does not have yet (by URL), with names
/// made from their titles, unique among the configured ones. Returns the TOML and how many were
/// skipped as already configured.
pub fn to_sources_toml(subscriptions: &[Subscription], config: &Config) -> (String, usize) {
    let configured: HashSet<&str> = config.sources.iter().map(|s| s.url.as_str()).collect();
    let mut names: HashSet<String> = config.sources.iter().map(|s| s.name.clone()).collect();
    let mut toml = String::new();
    let mut skipped = 0;
    for subscription in subscriptions {
        if configured.contains(subscription.url.as_str()) {
            skipped += 1;
            continue;
        }
        let base = slug(&subscription.title, &subscription.url);
        let mut name = base.clone();
        let mut n = 2;
        while !names.insert(name.clone()) {
            name = format!("{base}-{n}");
            n += 1;
        }
        toml.push_str(&format!(
            "\n[[sources]]\n# {}\nname = {}\nurl = {}\n",
            one_line(&subscription.title),
            quoted(&name),
            quoted(subscription.url.as_str())
        ));
        if subscription.page {
            toml.push_str(
                "# a page, not a feed: the feed it links is polled (see `feedmill discover URL`)\n",
            );
        }
        if !subscription.tags.is_empty() {
            let tags: Vec<String> = subscription.tags.iter().map(|t| quoted(t)).collect();
            toml.push_str(&format!("tags = [{}]\n", tags.join(", ")));
        }
    }
    (toml, skipped)
}

/// A source name from a title: lower-case letters and digits (any script) joined by `-`; the
/// URL's host when the title has none.
fn slug(title: &str, url: &Url) -> String {
    let words: Vec<String> = title
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
        .collect();
    let slug = words.join("-").chars().take(40).collect::<String>().trim_end_matches('-').to_owned();
    if slug.is_empty() {
        url.host_str().unwrap_or("feed").to_owned()
    } else {
        slug
    }
}

fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// A TOML basic string.
fn quoted(text: &str) -> String {
    toml::Value::String(text.to_owned()).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    const OPML: &str = r#"<?xml version="1.0"?>
<opml version="2.0"><head><title>My feeds</title></head><body>
  <outline text="Ukraine">
    <outline type="rss" text="UNN &amp; friends" xmlUrl="https://unn.ua/rss/news_uk.xml"/>
    <outline type="rss" text="Українська правда" xmlUrl="https://www.pravda.com.ua/rss/" category="/Politics"/>
  </outline>
  <outline type="rss" title="Already here" xmlUrl="https://example.com/rss"></outline>
  <outline type="rss" text="Bad" xmlUrl="javascript:alert(1)"/>
</body></opml>"#;

    #[test]
    fn reads_nested_outlines_with_folders_as_tags() {
        let subs = parse(OPML).unwrap();
        assert_eq!(subs.len(), 3);
        assert_eq!(subs[0].title, "UNN & friends");
        assert_eq!(subs[0].tags, vec!["Ukraine"]);
        assert_eq!(subs[1].tags, vec!["Ukraine", "Politics"]);
        assert_eq!(subs[2].tags, Vec::<String>::new(), "the folder closed");
        assert!(parse("<rss/>").unwrap_err().to_string().contains("not an OPML file"));
        assert!(parse("<opml><body><outline text=\"x\" xmlUrl=\"https://e.com/").is_err(), "truncated");
    }

    #[test]
    fn a_site_without_a_feed_url_is_imported_as_its_page() {
        let subs = parse(
            r#"<opml version="2.0"><body><outline text="Suspilne" htmlUrl="https://suspilne.media/"/>
            <outline text="Feed" xmlUrl="https://e.com/rss" htmlUrl="https://e.com/"/></body></opml>"#,
        )
        .unwrap();
        assert_eq!((subs[0].url.as_str(), subs[0].page), ("https://suspilne.media/", true));
        assert_eq!((subs[1].url.as_str(), subs[1].page), ("https://e.com/rss", false));
        let (toml, _) = to_sources_toml(&subs, &Config::parse("", Path::new("t.toml")).unwrap());
        assert_eq!(toml.matches("the feed it links is polled").count(), 1, "{toml}");
        assert_eq!(Config::parse(&toml, Path::new("t.toml")).unwrap().sources[0].kind.name(), "feed");
    }

    #[test]
    fn import_skips_configured_feeds_and_round_trips_through_the_config() {
        let config = Config::parse(
            "[[sources]]\nname = \"unn-friends\"\nurl = \"https://example.com/rss\"\ntags = [\"x\"]\n",
            Path::new("t.toml"),
        )
        .unwrap();
        let (toml, skipped) = to_sources_toml(&parse(OPML).unwrap(), &config);
        assert_eq!(skipped, 1);
        assert!(toml.contains("name = \"unn-friends-2\""), "unique names: {toml}");
        assert!(toml.contains("name = \"українська-правда\""), "{toml}");
        let merged = format!(
            "[[sources]]\nname = \"unn-friends\"\nurl = \"https://example.com/rss\"\ntags = [\"x\"]\n{toml}"
        );
        let config = Config::parse(&merged, Path::new("t.toml")).unwrap();
        assert_eq!(config.sources.len(), 3);
        let exported = export(&config);
        let again = parse(&exported).unwrap();
        assert_eq!(again.len(), 3);
        assert_eq!(again[0].tags, vec!["x"]);
        assert_eq!(again[2].url.as_str(), "https://www.pravda.com.ua/rss/");
    }
}
