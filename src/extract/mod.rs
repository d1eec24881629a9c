//! The extract stage: an article page's HTML → its clean body, as sanitized HTML and plain text.
//!
//! Steps, in order of trust: the site rule for the page's host ([`rules`]), then the page's JSON-LD
//! `articleBody` when it is the full text ([`structured`]), then the generic extractor
//! ([`generic`]); a page that yields nothing there is read again as its `<noscript>` shows it
//! (a forum's crawler view), else its longest stretch of prose is the body. Whatever step picks
//! the body, [`clean`] removes noise and sanitizes it last. Parsing and scoring are CPU work:
//! async callers run [`Extractor::extract`] off the I/O threads (`spawn_blocking`).

pub mod clean;
pub mod generic;
pub mod meta;
pub mod preparse;
pub mod rules;
pub mod structured;
pub mod text;

use std::fmt;
use std::sync::LazyLock;

use ego_tree::NodeId;
use scraper::{ElementRef, Html, Selector};
use serde::Serialize;
use url::Url;

pub use rules::{SiteRule, SiteRules};

/// Which step produced an article body.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Step {
    /// A site rule's body selectors.
    Rule,
    /// The page's JSON-LD `articleBody`.
    Structured,
    /// The generic extractor.
    Generic,
    /// The feed's own content or description.
    Feed,
}

impl Step {
    pub fn as_str(self) -> &'static str {
        match self {
            Step::Rule => "rule",
            Step::Structured => "structured",
            Step::Generic => "generic",
            Step::Feed => "feed",
        }
    }
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An extracted article body.
#[derive(Debug, Clone, Serialize)]
pub struct Article {
    /// Sanitized HTML with absolute URLs.
    pub html: String,
    /// Plain text, one block per line.
    pub text: String,
    pub step: Step,
    /// Title, authors, date, tags, lead image, as far as the page tells.
    pub meta: meta::Metadata,
}

/// A site rule existed for the page but none of its body selectors matched.
#[derive(Debug, Clone, Serialize)]
pub struct RuleMiss {
    pub host: String,
    /// Where the rule is defined (`config/sites/unn.toml`, `user config`).
    pub rule: String,
}

/// What extraction found on one page.
#[derive(Debug, Clone, Serialize)]
pub struct Extraction {
    pub article: Option<Article>,
    pub rule_miss: Option<RuleMiss>,
    /// The next page of a multi-page article, when the site rule has a `next_page` selector that
    /// matched a link on the same host.
    pub next_page: Option<Url>,
    /// The page's own `<link rel="canonical">` (else `og:url`), when it names an article (not a
    /// site's home page).
    pub canonical: Option<Url>,
    /// The page's language and its other language editions, whether or not its body is used.
    pub language: Option<String>,
    pub editions: Vec<meta::Edition>,
}

/// The most pages of one multi-page article that are fetched and joined.
pub const MAX_PAGES: usize = 10;

/// Runs the extraction steps; built once, shared by every poll.
#[derive(Debug, Clone)]
pub struct Extractor {
    rules: SiteRules,
}

static INVISIBLE: LazyLock<Selector> = LazyLock::new(|| static_selector("script, style, noscript, template"));

impl Extractor {
    pub fn new(rules: SiteRules) -> Extractor {
        Extractor { rules }
    }

    pub fn rules(&self) -> &SiteRules {
        &self.rules
    }

    /// Extracts the article of a page fetched from `url`.
    pub fn extract(&self, html: &str, url: &Url) -> Extraction {
        let rule = self.rules.for_host(url.host_str().unwrap_or_default());
        self.extract_parsed(parse(html, rule), url, rule, true)
    }

    /// Extracts a page whose address is not known (a saved file): its URL is its own canonical
    /// link, else `fallback`. The page is parsed once, unless its canonical host has a site
    /// rule (which reads the page as sent, navigation included).
    pub fn extract_saved(&self, html: &str, fallback: &Url) -> (Url, Extraction) {
        let doc = parse(html, None);
        let url = canonical_of(&doc).unwrap_or_else(|| fallback.clone());
        let rule = self.rules.for_host(url.host_str().unwrap_or_default());
        let doc = if rule.is_some() { parse(html, rule) } else { doc };
        let extraction = self.extract_parsed(doc, &url, rule, true);
        (url, extraction)
    }

    /// `read_noscript`: whether a page that yields nothing may be read again as its largest
    /// `<noscript>` shows it (once: that inner page is read with `false`).
    fn extract_parsed(
        &self,
        mut doc: Html,
        url: &Url,
        rule: Option<&SiteRule>,
        read_noscript: bool,
    ) -> Extraction {
        let host = url.host_str().unwrap_or_default();
        // Lazy images take their real address (possibly from a <noscript> copy) before scripts,
        // styles and <noscript> go: they are never body text, and their raw text would count as
        // words when scoring.
        clean::fix_images(&mut doc);
        let ld = structured::ld_article(&doc);
        let without_scripts = read_noscript.then(|| noscript_page(&doc)).flatten();
        let invisible: Vec<NodeId> = doc.select(&INVISIBLE).map(|e| e.id()).collect();
        clean::detach_all(&mut doc, &invisible);
        let page = meta::page_metadata(&doc, url, ld.as_ref());
        let canonical = canonical_of(&doc).filter(|c| !c.path().trim_matches('/').is_empty());
        let mut rule_miss = None;
        if let Some(rule) = rule {
            if let Some(roots) = rule_roots(&doc, rule) {
                // Metadata first: author blocks and tag lists are stripped from the body next.
                let meta = meta::rule_metadata(&doc, &rule.spec, url, page.clone());
                let strip: Vec<&Selector> = rule.spec.strip.iter().map(|s| &s.selector).collect();
                let next_page = next_page_link(&doc, rule, url);
                if let Some(article) = finish(&mut doc, &roots, &strip, url, Step::Rule, meta) {
                    let (language, editions) = (page.language, page.editions);
                    return Extraction {
                        article: Some(article),
                        rule_miss: None,
                        next_page,
                        canonical,
                        language,
                        editions,
                    };
                }
            }
            rule_miss = Some(RuleMiss { host: host.to_owned(), rule: rule.origin.clone() });
        }
        let generic::Found { roots, mut furniture } = generic::find_article(&doc);
        if let Some(title) = &page.title {
            furniture.extend(generic::title_copies(&doc, &roots, title));
        }
        clean::detach_all(&mut doc, &furniture);
        let generic = finish(&mut doc, &roots, &[], url, Step::Generic, page.clone())
            .or_else(|| {
                // A page that shows its content only without scripts (a forum's crawler view).
                let inner = self.extract_parsed(parse(&without_scripts?, None), url, None, false).article?;
                Some(Article { meta: page.clone(), ..inner })
            })
            .or_else(|| {
                let block = generic::best_block(&doc)?;
                finish(&mut doc, &[block], &[], url, Step::Generic, page.clone())
            });
        // JSON-LD's plain text loses the page's images and subheads, so it only wins when the
        // generic extractor found nothing or clearly less than the full `articleBody`.
        let structured = ld.and_then(|ld| ld.body).filter(|body| {
            let generic_len = generic.as_ref().map_or(0, |a| a.text.chars().count());
            structured::is_full_text(body) && generic_len * 10 < body.chars().count() * 6
        });
        let (language, editions) = (page.language.clone(), page.editions.clone());
        let article = match structured {
            Some(body) => Some(structured_article(&body, url, page)),
            None => generic,
        };
        Extraction { article, rule_miss, next_page: None, canonical, language, editions }
    }

    /// Appends a later page of a multi-page article (extracted with [`Extractor::extract`]) to
    /// the article so far: bodies joined in order, metadata from the first page.
    pub fn append_page(first: &mut Article, next: Article) {
        first.html.push_str(&next.html);
        first.text.push('\n');
        first.text.push_str(&next.text);
    }

    /// The feed's own content or description, sanitized the same way as a page body.
    pub fn from_feed(html: &str, url: &Url) -> Option<Article> {
        let html = clean::sanitize(html, url);
        let text = text::html_to_text(&html);
        (!text.is_empty()).then_some(Article {
            html,
            text,
            step: Step::Feed,
            meta: meta::Metadata::default(),
        })
    }
}

/// The page as the steps read it: prepared ([`preparse::prepare`]; navigation dropped unless a
/// site rule reads the page), then parsed.
fn parse(html: &str, rule: Option<&SiteRule>) -> Html {
    Html::parse_document(&preparse::prepare(html, preparse::MAX_DEPTH, rule.is_none()))
}

/// An article from JSON-LD's `articleBody`: HTML when it carries markup, else one paragraph per
/// line of text.
fn structured_article(body: &str, url: &Url, meta: meta::Metadata) -> Article {
    let has_markup = body.contains("</p>") || body.contains("<br");
    let raw = if has_markup {
        body.to_owned()
    } else {
        body.lines()
            .map(str::trim)
            .filter(|line| !line.is_empty())
            .map(|line| format!("<p>{}</p>", crate::publish::atom::escape(line)))
            .collect()
    };
    let html = clean::sanitize(&raw, url);
    let text = text::html_to_text(&html);
    Article { html, text, step: Step::Structured, meta }
}

/// A selector written in this source code: failing to parse is a bug the tests catch.
pub(crate) fn static_selector(css: &str) -> Selector {
    Selector::parse(css).unwrap_or_else(|e| unreachable!("static selector `{css}`: {e}"))
}

/// A regular expression written in this source code: failing to compile is a bug the tests catch.
fn static_regex(pattern: &str) -> regex::Regex {
    regex::Regex::new(pattern).unwrap_or_else(|e| unreachable!("static regex `{pattern}`: {e}"))
}

/// The elements a rule selects: all matches of its first body selector that matches anything,
/// without elements nested inside another match.
fn rule_roots(doc: &Html, rule: &SiteRule) -> Option<Vec<NodeId>> {
    rule.spec.body.iter().find_map(|body| {
        let matched: Vec<ElementRef> = doc.select(&body.selector).collect();
        let ids: Vec<NodeId> = matched
            .iter()
            .filter(|e| !e.ancestors().any(|a| matched.iter().any(|m| m.id() == a.id())))
            .map(|e| e.id())
            .collect();
        (!ids.is_empty()).then_some(ids)
    })
}

/// The rule's `next_page` link, absolute, when it stays on the page's host and is not the page
/// itself.
fn next_page_link(doc: &Html, rule: &SiteRule, url: &Url) -> Option<Url> {
    let href = rule
        .spec
        .next_page
        .iter()
        .find_map(|s| doc.select(&s.selector).find_map(|e| e.value().attr("href")))?;
    let mut next = url.join(href.trim()).ok()?;
    next.set_fragment(None);
    let mut this = url.clone();
    this.set_fragment(None);
    (next.host_str() == url.host_str() && next != this).then_some(next)
}

/// Cleans the chosen elements, then serializes and sanitizes them; `None` when no text remains.
fn finish(
    doc: &mut Html,
    roots: &[NodeId],
    strip: &[&Selector],
    url: &Url,
    step: Step,
    meta: meta::Metadata,
) -> Option<Article> {
    if roots.is_empty() {
        return None;
    }
    clean::remove_noise(doc, roots, strip);
    let raw: String = roots
        .iter()
        .filter_map(|&id| doc.tree.get(id).and_then(ElementRef::wrap))
        .map(|e| e.html())
        .collect();
    let html = clean::sanitize(&raw, url);
    // The text comes from the cleaned tree itself (what the sanitizer keeps of it is the same
    // words), which spares parsing the sanitized HTML again.
    let text: Vec<String> = roots
        .iter()
        .filter_map(|&id| doc.tree.get(id))
        .map(text::node_text)
        .filter(|t| !t.is_empty())
        .collect();
    let text = text.join("\n");
    (!text.is_empty()).then_some(Article { html, text, step, meta })
}

/// Below this much markup a `<noscript>` is a tracking pixel or a "please enable JavaScript"
/// line, not a page.
const NOSCRIPT_PAGE: usize = 2048;

/// The markup of the page's largest `<noscript>`, when it is large enough to be the page itself
/// as shown without scripts. (The parser reads `<noscript>` as text, as a browser running
/// scripts does.)
fn noscript_page(doc: &Html) -> Option<String> {
    doc.select(&NOSCRIPT)
        .filter_map(|e| e.children().find_map(|c| c.value().as_text().map(|t| t.to_string())))
        .filter(|markup| markup.len() >= NOSCRIPT_PAGE)
        .max_by_key(String::len)
}

static NOSCRIPT: LazyLock<Selector> = LazyLock::new(|| static_selector("noscript"));

static CANONICAL: LazyLock<Selector> =
    LazyLock::new(|| static_selector(r#"link[rel="canonical"], meta[property="og:url"]"#));

/// The page's own idea of its URL: `<link rel="canonical">`, else `og:url`.
fn canonical_of(doc: &Html) -> Option<Url> {
    doc.select(&CANONICAL).find_map(|e| {
        let value = e.value().attr("href").or_else(|| e.value().attr("content"))?;
        Url::parse(value.trim()).ok().filter(|u| matches!(u.scheme(), "http" | "https"))
    })
}
