//! Article metadata from the page: a site rule's selectors first, then the page's JSON-LD, then
//! its OpenGraph/`<meta>` tags, field by field. (The feed item's own data comes last, in `poll`.)

use std::sync::LazyLock;

use scraper::{ElementRef, Html, Selector};
use serde::Serialize;
use url::Url;

use super::clean::decode_image_proxy;
use super::static_selector;
use super::structured::LdArticle;
use crate::config::{CssSelector, SiteRuleConfig};
use crate::language::normalize;

/// What a page says about its article.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Metadata {
    pub title: Option<String>,
    pub authors: Vec<String>,
    /// As the page writes it (ISO 8601 in `datetime`/`content` attributes, else the visible text).
    pub published: Option<String>,
    /// When the article was last modified, as the page writes it.
    pub updated: Option<String>,
    pub tags: Vec<String>,
    /// The lead image, absolute, with image-proxy URLs decoded.
    pub image: Option<String>,
    /// The article's language, normalized ([`crate::language::normalize`]): JSON-LD `inLanguage`
    /// (it describes the article itself), else `<html lang>`, else `og:locale`.
    pub language: Option<String>,
    /// The other language editions the page declares.
    pub editions: Vec<Edition>,
}

/// Another language edition of the article, as the page declares it: `<link rel="alternate"
/// hreflang="en" href>` in the head, or JSON-LD `workTranslation` / `translationOfWork`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Edition {
    pub url: Url,
    pub language: Option<String>,
}

static META: LazyLock<Selector> = LazyLock::new(|| static_selector("meta"));
static TITLE: LazyLock<Selector> = LazyLock::new(|| static_selector("title, h1"));

/// Metadata from the page's JSON-LD article, then its `<meta>` tags (one pass over them), the
/// `<title>` and `<html lang>`, field by field.
pub fn page_metadata(doc: &Html, url: &Url, ld: Option<&LdArticle>) -> Metadata {
    let tags = meta_tags(doc, url);
    let editions = editions(doc, url, ld.map_or(&[][..], |ld| &ld.translations));
    let Some(ld) = ld else { return Metadata { editions, ..tags } };
    let or_tags = |ld: &[String], tags: Vec<String>| if ld.is_empty() { tags } else { ld.to_vec() };
    Metadata {
        title: ld.headline.clone().or(tags.title),
        authors: or_tags(&ld.authors, tags.authors),
        published: ld.published.clone().or(tags.published),
        updated: ld.updated.clone().or(tags.updated),
        tags: or_tags(&ld.keywords, tags.tags),
        image: ld.image.as_deref().and_then(|i| absolute_image(i, url)).or(tags.image),
        language: ld.language.as_deref().and_then(normalize).or(tags.language),
        editions,
    }
}

static HTML_LANG: LazyLock<Selector> = LazyLock::new(|| static_selector("html[lang]"));
static HREFLANG: LazyLock<Selector> =
    LazyLock::new(|| static_selector(r#"link[rel~="alternate" i][hreflang][href]"#));

fn html_lang(doc: &Html) -> Option<String> {
    doc.select(&HTML_LANG).find_map(|e| e.value().attr("lang").and_then(normalize))
}

/// The page's declared editions (hreflang links, then JSON-LD translations), absolute, each URL
/// once, without the page itself.
fn editions(doc: &Html, url: &Url, ld: &[(String, Option<String>)]) -> Vec<Edition> {
    let declared = doc
        .select(&HREFLANG)
        .filter_map(|e| Some((e.value().attr("href")?, e.value().attr("hreflang"))))
        .filter(|(_, lang)| lang.is_some_and(|l| normalize(l).is_some()))
        .chain(ld.iter().map(|(href, lang)| (href.as_str(), lang.as_deref())));
    let mut editions: Vec<Edition> = Vec::new();
    for (href, language) in declared {
        let Some(mut edition) = url.join(href.trim()).ok().filter(|u| matches!(u.scheme(), "http" | "https"))
        else {
            continue;
        };
        edition.set_fragment(None);
        if edition != *url && !editions.iter().any(|e| e.url == edition) {
            editions.push(Edition { url: edition, language: language.and_then(normalize) });
        }
    }
    editions
}

fn meta_tags(doc: &Html, url: &Url) -> Metadata {
    let mut meta = Metadata::default();
    let mut authors = Vec::new();
    let mut tags = Vec::new();
    for element in doc.select(&META) {
        let v = element.value();
        let Some(key) = v.attr("property").or_else(|| v.attr("name")).or_else(|| v.attr("itemprop")) else {
            continue;
        };
        match key.trim().to_ascii_lowercase().as_str() {
            "og:title" if meta.title.is_none() => meta.title = value(&element),
            "author" | "article:author" => authors.extend(value(&element).filter(|a| Url::parse(a).is_err())),
            "article:published_time" | "datepublished" if meta.published.is_none() => {
                meta.published = value(&element)
            }
            "article:modified_time" | "datemodified" if meta.updated.is_none() => {
                meta.updated = value(&element)
            }
            "article:tag" => tags.extend(value(&element)),
            "og:locale" if meta.language.is_none() => {
                meta.language = value(&element).as_deref().and_then(normalize)
            }
            "og:image" | "twitter:image" if meta.image.is_none() => meta.image = image(&element, url),
            _ => {}
        }
    }
    if meta.title.is_none() {
        meta.title = doc.select(&TITLE).find_map(|e| value(&e));
    }
    meta.language = html_lang(doc).or(meta.language);
    meta.authors = unique(authors.into_iter());
    meta.tags = unique(tags.into_iter());
    meta
}

/// A rule's metadata selectors, each field falling back to the page's own metadata.
pub fn rule_metadata(doc: &Html, rule: &SiteRuleConfig, url: &Url, page: Metadata) -> Metadata {
    let first = |selectors: &[CssSelector], read: &dyn Fn(&ElementRef) -> Option<String>| {
        selectors.iter().find_map(|s| doc.select(&s.selector).find_map(|e| read(&e)))
    };
    let all = |selectors: &[CssSelector]| -> Vec<String> {
        selectors
            .iter()
            .map(|s| unique(doc.select(&s.selector).filter_map(|e| value(&e))))
            .find(|found| !found.is_empty())
            .unwrap_or_default()
    };
    let authors = all(&rule.author);
    let tags = all(&rule.tags);
    Metadata {
        title: first(&rule.title, &value).or(page.title),
        authors: if authors.is_empty() { page.authors } else { authors },
        published: first(&rule.date, &value).or(page.published),
        updated: page.updated,
        tags: if tags.is_empty() { page.tags } else { tags },
        image: first(&rule.lead_image, &|e| image(e, url)).or(page.image),
        language: page.language,
        editions: page.editions,
    }
}

/// An element's value: its `datetime`/`content` attribute, else its text; whitespace collapsed.
fn value(element: &ElementRef) -> Option<String> {
    let raw = match element.value().attr("datetime").or_else(|| element.value().attr("content")) {
        Some(attribute) => attribute.to_owned(),
        None => element.text().collect(),
    };
    let text = raw.split_whitespace().collect::<Vec<_>>().join(" ");
    (!text.is_empty()).then_some(text)
}

/// An image element's absolute URL (`src`, `content`, `href`, lazy `data-src`).
fn image(element: &ElementRef, url: &Url) -> Option<String> {
    let v = element.value();
    let raw = v
        .attr("src")
        .or_else(|| v.attr("data-src"))
        .or_else(|| v.attr("content"))
        .or_else(|| v.attr("href"))?;
    absolute_image(raw, url)
}

/// An image address made absolute, image-proxy URLs decoded; only http(s).
fn absolute_image(raw: &str, url: &Url) -> Option<String> {
    let absolute = url.join(raw.trim()).ok().filter(|u| matches!(u.scheme(), "http" | "https"))?;
    Some(decode_image_proxy(absolute.as_str(), url).unwrap_or_else(|| absolute.to_string()))
}

/// Values in first-seen order without repeats (an author block often names its author twice).
fn unique(values: impl Iterator<Item = String>) -> Vec<String> {
    let mut seen = Vec::new();
    for value in values {
        if !seen.contains(&value) {
            seen.push(value);
        }
    }
    seen
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn editions_from_hreflang_and_json_ld_and_the_language() {
        let html = r#"<html lang="uk_UA"><head>
            <link rel="alternate" hreflang="uk" href="/news/a">
            <link rel="alternate" hreflang="en" href="/en/news/a#top">
            <link rel="alternate" hreflang="x-default" href="/">
            <link rel="alternate" type="application/rss+xml" href="/rss">
            <meta property="og:locale" content="ru_RU">
            <script type="application/ld+json">{"@type":"NewsArticle","headline":"H",
              "workTranslation":[{"@type":"NewsArticle","url":"https://unn.ua/ru/news/a","inLanguage":"ru"},
                                 {"@id":"https://unn.ua/en/news/a"}]}</script></head><body></body></html>"#;
        let doc = Html::parse_document(html);
        let url = Url::parse("https://unn.ua/news/a").unwrap();
        let ld = crate::extract::structured::ld_article(&doc);
        let meta = page_metadata(&doc, &url, ld.as_ref());
        assert_eq!(meta.language.as_deref(), Some("uk-ua"), "<html lang> before og:locale");
        let editions: Vec<(&str, Option<&str>)> =
            meta.editions.iter().map(|e| (e.url.as_str(), e.language.as_deref())).collect();
        assert_eq!(
            editions,
            [("https://unn.ua/en/news/a", Some("en")), ("https://unn.ua/ru/news/a", Some("ru"))],
            "absolute, without the page itself, x-default, feeds or repeats"
        );
    }

    #[test]
    fn meta_tags_and_rule_selectors() {
        let doc = Html::parse_document(
            r#"<html><head><meta property="og:title" content="OG title"><meta name="author" content="Ann Lee">
            <meta property="article:tag" content="War"><meta property="article:published_time" content="2025-07-02T10:00:00Z">
            <meta property="og:image" content="/_next/image?url=https%3A%2F%2Fcdn.example%2Fa.jpg&w=640"></head>
            <body><h1>Headline</h1><div class="by"><a>Liliia Naboka</a><span>Liliia Naboka</span></div>
            <div class="tags"><a>Kim Jong Un</a><a>North Korea</a></div></body></html>"#,
        );
        let url = Url::parse("https://unn.ua/en/news/x").unwrap();
        let page = page_metadata(&doc, &url, None);
        assert_eq!(page.title.as_deref(), Some("OG title"));
        assert_eq!(page.authors, vec!["Ann Lee"]);
        assert_eq!(page.tags, vec!["War"]);
        assert_eq!(page.published.as_deref(), Some("2025-07-02T10:00:00Z"));
        assert_eq!(page.image.as_deref(), Some("https://cdn.example/a.jpg"));
        let rule = SiteRuleConfig {
            title: vec![CssSelector::parse("h1").unwrap()],
            author: vec![
                CssSelector::parse(".byline").unwrap(),
                CssSelector::parse(".by a, .by span").unwrap(),
            ],
            tags: vec![CssSelector::parse(".tags a").unwrap()],
            ..Default::default()
        };
        let meta = rule_metadata(&doc, &rule, &url, page);
        assert_eq!(meta.title.as_deref(), Some("Headline"));
        assert_eq!(meta.authors, vec!["Liliia Naboka"]);
        assert_eq!(meta.tags, vec!["Kim Jong Un", "North Korea"]);
        assert_eq!(meta.published.as_deref(), Some("2025-07-02T10:00:00Z"), "falls back to the page");
    }
}
