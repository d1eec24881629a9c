//! Structured data: the page's JSON-LD `NewsArticle`/`Article` (schema.org) — its metadata
//! and its `articleBody`, which the extractor uses when it is the full text.
//!
//! JSON-LD is read before scripts are removed from the page. Blocks that are not JSON, or hold
//! no article type, are ignored; the first article found wins.

use std::sync::LazyLock;

use scraper::{Html, Selector};
use serde_json::Value;

use super::static_selector;

static LD_JSON: LazyLock<Selector> =
    LazyLock::new(|| static_selector(r#"script[type="application/ld+json" i]"#));

/// What a page's JSON-LD says about its article.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LdArticle {
    pub headline: Option<String>,
    pub authors: Vec<String>,
    pub published: Option<String>,
    pub updated: Option<String>,
    pub keywords: Vec<String>,
    pub image: Option<String>,
    pub language: Option<String>,
    /// Other language editions: `workTranslation` and `translationOfWork` (URL, language).
    pub translations: Vec<(String, Option<String>)>,
    /// `articleBody`: plain text (HTML markup, when a site puts some in, is kept as sent).
    pub body: Option<String>,
}

/// The first article object in the page's JSON-LD blocks.
pub fn ld_article(doc: &Html) -> Option<LdArticle> {
    doc.select(&LD_JSON).find_map(|script| {
        let text: String = script.text().collect();
        let value: Value = serde_json::from_str(text.trim()).ok()?;
        find_article(&value, 0).map(read_article)
    })
}

/// Searches top-level arrays and `@graph` lists (bounded depth) for an article-typed object.
fn find_article(value: &Value, depth: usize) -> Option<&Value> {
    if depth > 4 {
        return None;
    }
    match value {
        Value::Array(items) => items.iter().find_map(|v| find_article(v, depth + 1)),
        Value::Object(map) => {
            if types(value).any(is_article_type) {
                return Some(value);
            }
            map.get("@graph").and_then(|g| find_article(g, depth + 1))
        }
        _ => None,
    }
}

fn types(value: &Value) -> impl Iterator<Item = &str> {
    let list: Vec<&str> = match value.get("@type") {
        Some(Value::String(t)) => vec![t.as_str()],
        Some(Value::Array(ts)) => ts.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    };
    list.into_iter()
}

/// `NewsArticle`, `Article`, `ReportageNewsArticle`, `BlogPosting`, `LiveBlogPosting`…
fn is_article_type(t: &str) -> bool {
    let t = t.rsplit('/').next().unwrap_or(t);
    t.ends_with("Article") || t.ends_with("BlogPosting")
}

fn read_article(article: &Value) -> LdArticle {
    LdArticle {
        headline: string(article.get("headline")).or_else(|| string(article.get("name"))),
        authors: names(article.get("author")),
        published: string(article.get("datePublished")),
        updated: string(article.get("dateModified")),
        keywords: keywords(article.get("keywords")),
        image: image(article.get("image")),
        language: string(article.get("inLanguage")),
        translations: ["workTranslation", "translationOfWork"]
            .iter()
            .flat_map(|key| translations(article.get(*key)))
            .collect(),
        body: article
            .get("articleBody")
            .and_then(Value::as_str)
            .map(str::trim)
            .filter(|b| !b.is_empty())
            .map(str::to_owned),
    }
}

/// Works named by URL: a string, an object with `url` (else `@id`) and `inLanguage`, or a list
/// of those.
fn translations(value: Option<&Value>) -> Vec<(String, Option<String>)> {
    let one = |v: &Value| match v {
        Value::String(_) => string(Some(v)).map(|url| (url, None)),
        Value::Object(_) => string(v.get("url"))
            .or_else(|| string(v.get("@id")))
            .map(|url| (url, string(v.get("inLanguage")))),
        _ => None,
    };
    match value {
        Some(Value::Array(items)) => items.iter().filter_map(one).collect(),
        Some(v) => one(v).into_iter().collect(),
        None => Vec::new(),
    }
}

/// A string value with whitespace collapsed; `None` when absent or blank.
fn string(value: Option<&Value>) -> Option<String> {
    let text = value?.as_str()?.split_whitespace().collect::<Vec<_>>().join(" ");
    (!text.is_empty()).then_some(text)
}

/// Author names: a string, a `Person`/`Organization` object with `name`, or a list of those.
fn names(value: Option<&Value>) -> Vec<String> {
    let one = |v: &Value| match v {
        Value::String(_) => string(Some(v)),
        Value::Object(_) => string(v.get("name")),
        _ => None,
    };
    let mut found: Vec<String> = match value {
        Some(Value::Array(items)) => items.iter().filter_map(one).collect(),
        Some(v) => one(v).into_iter().collect(),
        None => Vec::new(),
    };
    // Some sites put the author's profile URL where the name belongs.
    found.retain(|name| !name.starts_with("http://") && !name.starts_with("https://"));
    found.dedup();
    found
}

/// Keywords: a comma-separated string or a list of strings.
fn keywords(value: Option<&Value>) -> Vec<String> {
    let parts: Vec<String> = match value {
        Some(Value::String(s)) => s.split(',').map(str::to_owned).collect(),
        Some(Value::Array(items)) => items.iter().filter_map(Value::as_str).map(str::to_owned).collect(),
        _ => Vec::new(),
    };
    let mut out: Vec<String> = Vec::new();
    for part in parts {
        let part = part.split_whitespace().collect::<Vec<_>>().join(" ");
        if !part.is_empty() && !out.contains(&part) {
            out.push(part);
        }
    }
    out
}

/// An image: a URL string, an `ImageObject` with `url`/`contentUrl`, or a list (first wins).
fn image(value: Option<&Value>) -> Option<String> {
    match value? {
        Value::String(_) => string(value),
        Value::Object(_) => {
            let v = value?;
            string(v.get("url")).or_else(|| string(v.get("contentUrl")))
        }
        Value::Array(items) => items.iter().find_map(|v| image(Some(v))),
        _ => None,
    }
}

/// Whether `articleBody` looks like a whole article rather than a teaser: long enough and not
/// cut off with an ellipsis.
pub fn is_full_text(body: &str) -> bool {
    let body = body.trim_end();
    let truncated = body.ends_with('…') || body.ends_with("...") || body.ends_with("[…]");
    !truncated && body.chars().count() >= 200
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_article_from_graph_with_varied_shapes() {
        let doc = Html::parse_document(
            r#"<html><head><script type="application/ld+json">{not json}</script>
            <script type="application/ld+json">{"@context":"https://schema.org","@graph":[
              {"@type":"WebSite","name":"Site"},
              {"@type":["NewsArticle"],"headline":" A  headline ","datePublished":"2025-07-02T10:00:00+03:00",
               "dateModified":"2025-07-02T11:00:00+03:00","inLanguage":"uk",
               "author":[{"@type":"Person","name":"Ann Lee"},"https://site/authors/ann","Bo Chan"],
               "keywords":"War, Kyiv,War","image":{"@type":"ImageObject","url":"https://cdn/a.jpg"},
               "articleBody":"Body text."}]}</script></head><body></body></html>"#,
        );
        let ld = ld_article(&doc).unwrap();
        assert_eq!(ld.headline.as_deref(), Some("A headline"));
        assert_eq!(ld.authors, vec!["Ann Lee", "Bo Chan"]);
        assert_eq!(ld.published.as_deref(), Some("2025-07-02T10:00:00+03:00"));
        assert_eq!(ld.updated.as_deref(), Some("2025-07-02T11:00:00+03:00"));
        assert_eq!(ld.keywords, vec!["War", "Kyiv"]);
        assert_eq!(ld.image.as_deref(), Some("https://cdn/a.jpg"));
        assert_eq!(ld.language.as_deref(), Some("uk"));
        assert_eq!(ld.body.as_deref(), Some("Body text."));
    }

    #[test]
    fn pages_without_articles_give_nothing() {
        let doc = Html::parse_document(
            r#"<script type="application/ld+json">[{"@type":"Organization","name":"X"}]</script>"#,
        );
        assert_eq!(ld_article(&doc), None);
        assert_eq!(ld_article(&Html::parse_document("<p>plain</p>")), None);
    }

    #[test]
    fn full_text_test_rejects_teasers() {
        let long = "word ".repeat(100);
        assert!(is_full_text(&long));
        assert!(!is_full_text(&format!("{long}…")), "cut off");
        assert!(!is_full_text(&format!("{long}...")), "cut off");
        assert!(!is_full_text("Short teaser."));
    }
}
