//! What a source's URL serves, and so which reader reads it: a feed, a Telegram channel's public
//! preview, an HTML listing page read with CSS selectors, or a sitemap.

use std::fmt;

use url::Url;

use super::CssSelector;

/// How a source's document is read into items.
#[derive(Debug, Clone)]
pub enum SourceKind {
    /// RSS, Atom or JSON Feed (a sitemap served at a feed source's URL is read as one too).
    Feed,
    /// A public channel's web preview, `https://t.me/s/NAME`.
    Telegram(Telegram),
    /// A listing page: one item per `item` match.
    Html(Listing),
    /// A sitemap (`<urlset>`, Google News entries) or a sitemap index.
    Sitemap,
}

/// A Telegram channel source.
#[derive(Debug, Clone)]
pub struct Telegram {
    /// The channel's name, as in `t.me/NAME`.
    pub channel: String,
    /// Preview pages read back (`?before=ID`) when every post on the newest one is new.
    pub max_pages: usize,
}

/// Where a listing page's items are, as CSS selectors.
#[derive(Debug, Clone)]
pub struct Listing {
    /// One match per item.
    pub item: CssSelector,
    /// Inside the item: the article link (`href`).
    pub link: CssSelector,
    /// Inside the item: the title's text (default: the link's text).
    pub title: Option<CssSelector>,
    /// Inside the item: the date (`datetime` or `content` attribute, else the text).
    pub date: Option<CssSelector>,
    /// Inside the item: a summary.
    pub summary: Option<CssSelector>,
}

impl SourceKind {
    /// The name `kind =` takes.
    pub fn name(&self) -> &'static str {
        match self {
            SourceKind::Feed => "feed",
            SourceKind::Telegram(_) => "telegram",
            SourceKind::Html(_) => "html",
            SourceKind::Sitemap => "sitemap",
        }
    }
}

impl fmt::Display for SourceKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The preview pages read back at most, by default.
pub const DEFAULT_MAX_PAGES: usize = 3;

/// The kind-specific keys of a `[[sources]]` table, as written.
#[derive(Debug, Default)]
pub(super) struct KindToml {
    pub kind: Option<String>,
    pub item: Option<CssSelector>,
    pub link: Option<CssSelector>,
    pub title: Option<CssSelector>,
    pub date: Option<CssSelector>,
    pub summary: Option<CssSelector>,
    pub max_pages: Option<usize>,
}

/// The source's kind and, for Telegram, the preview URL it is read from. Errors name the key.
pub(super) fn resolve(raw: KindToml, url: &Url) -> Result<(SourceKind, Url), (&'static str, String)> {
    let channel = telegram_channel(url);
    let name = match raw.kind.as_deref() {
        Some(name) => name,
        None if channel.is_some() => "telegram",
        None if looks_like_sitemap(url) => "sitemap",
        None => "feed",
    };
    let selectors = [("item", raw.item.is_some()), ("link", raw.link.is_some())].into_iter().chain([
        ("title", raw.title.is_some()),
        ("date", raw.date.is_some()),
        ("summary", raw.summary.is_some()),
    ]);
    if name != "html" {
        if let Some((key, _)) = selectors.clone().find(|(_, set)| *set) {
            return Err((key, format!("only `kind = \"html\"` sources take CSS selectors (kind is {name})")));
        }
    }
    if name != "telegram" && raw.max_pages.is_some() {
        return Err(("max_pages", format!("only `kind = \"telegram\"` sources page back (kind is {name})")));
    }
    match name {
        "feed" => Ok((SourceKind::Feed, url.clone())),
        "sitemap" => Ok((SourceKind::Sitemap, url.clone())),
        "telegram" => {
            let channel = channel.ok_or((
                "url",
                format!("`{url}` is not a Telegram channel's address like https://t.me/s/NAME"),
            ))?;
            let preview = Url::parse(&format!("{}://t.me/s/{channel}", url.scheme()))
                .map_err(|e| ("url", format!("`{url}`: {e}")))?;
            let max_pages = raw.max_pages.unwrap_or(DEFAULT_MAX_PAGES);
            if max_pages == 0 {
                return Err(("max_pages", "must be at least 1".into()));
            }
            Ok((SourceKind::Telegram(Telegram { channel, max_pages }), preview))
        }
        "html" => {
            let missing = |key| (key, "an html source needs it (a CSS selector)".to_owned());
            let listing = Listing {
                item: raw.item.ok_or_else(|| missing("item"))?,
                link: raw.link.ok_or_else(|| missing("link"))?,
                title: raw.title,
                date: raw.date,
                summary: raw.summary,
            };
            Ok((SourceKind::Html(listing), url.clone()))
        }
        other => {
            Err(("kind", format!("`{other}` is not one of \"feed\", \"telegram\", \"html\", \"sitemap\"")))
        }
    }
}

/// `t.me/s/NAME`, `t.me/NAME`, `telegram.me/…` → `NAME` (Telegram's public names: letters, digits
/// and underscores).
pub fn telegram_channel(url: &Url) -> Option<String> {
    let host = url.host_str()?.trim_start_matches("www.");
    if !matches!(host, "t.me" | "telegram.me") {
        return None;
    }
    let mut segments = url.path_segments()?.filter(|s| !s.is_empty());
    let first = segments.next()?;
    let name = if first == "s" { segments.next()? } else { first };
    let valid = !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    (valid && segments.next().is_none()).then(|| name.to_owned())
}

/// A URL whose file name says sitemap (`sitemap.xml`, `news-sitemap.xml`, `sitemap_index.xml.gz`).
fn looks_like_sitemap(url: &Url) -> bool {
    let file = url.path().rsplit('/').next().unwrap_or_default().to_ascii_lowercase();
    file.contains("sitemap") && (file.ends_with(".xml") || file.ends_with(".xml.gz"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(text: &str) -> Url {
        Url::parse(text).unwrap()
    }

    #[test]
    fn kinds_are_inferred_from_the_url() {
        for (address, kind) in [
            ("https://t.me/s/air_alert_ua", "telegram"),
            ("https://t.me/UNN_ua", "telegram"),
            ("http://telegram.me/s/kpszsu", "telegram"),
            ("https://example.com/news-sitemap.xml", "sitemap"),
            ("https://example.com/rss.xml", "feed"),
            ("https://t.me/s/name/123", "feed"),
        ] {
            let (resolved, _) = resolve(KindToml::default(), &url(address)).unwrap();
            assert_eq!(resolved.name(), kind, "{address}");
        }
        let (_, preview) = resolve(KindToml::default(), &url("https://telegram.me/UNN_ua/")).unwrap();
        assert_eq!(preview.as_str(), "https://t.me/s/UNN_ua");
    }

    #[test]
    fn keys_of_another_kind_and_missing_selectors_are_named() {
        let with = |kind: &str| KindToml { kind: Some(kind.into()), ..Default::default() };
        let selector = CssSelector::parse("a").ok();
        let feed_with_item = KindToml { item: selector.clone(), ..with("feed") };
        assert_eq!(resolve(feed_with_item, &url("https://e.com/")).unwrap_err().0, "item");
        assert_eq!(resolve(with("html"), &url("https://e.com/")).unwrap_err().0, "item");
        let html_without_link = KindToml { item: selector, ..with("html") };
        assert_eq!(resolve(html_without_link, &url("https://e.com/")).unwrap_err().0, "link");
        assert_eq!(resolve(with("telegram"), &url("https://e.com/")).unwrap_err().0, "url");
        assert_eq!(resolve(with("rss"), &url("https://e.com/")).unwrap_err().0, "kind");
        let paging_feed = KindToml { max_pages: Some(2), ..with("feed") };
        assert_eq!(resolve(paging_feed, &url("https://e.com/")).unwrap_err().0, "max_pages");
    }
}
