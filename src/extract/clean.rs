//! Clean-up of an extracted body: page noise out, image-proxy URLs decoded, every URL absolute, and
//! the allow-list sanitizer (ammonia) last, so nothing a page sends can run in a reader.

use std::borrow::Cow;
use std::collections::HashSet;
use std::sync::LazyLock;

use super::{static_regex, static_selector};
use ego_tree::NodeId;
use regex::Regex;
use scraper::{ElementRef, Html, Node, Selector};
use url::Url;

/// Elements that are never part of an article body.
static ALWAYS_NOISE: LazyLock<Selector> = LazyLock::new(|| {
    Selector::parse(
        "script, style, noscript, template, iframe, object, embed, form, button, input, select, \
         textarea, nav, svg, canvas, [hidden], [aria-hidden=\"true\"]",
    )
    .unwrap_or_else(|e| unreachable!("static selector: {e}"))
});

/// A related-news card: a headline followed by "dd.mm.yy, hh:mm • N views" (UNN and many others).
static RELATED_CARD: LazyLock<Regex> = LazyLock::new(|| {
    static_regex(
        r"(?i)\d{1,2}\.\d{1,2}\.\d{2,4},?\s*\d{1,2}:\d{2}\s*•\s*[\d\s]+(views?|переглядів|перегляди|перегляд|просмотров|просмотра|просмотр)\s*$",
    )
});

/// A bare views counter: "743 views", "• 1 234 переглядів".
static VIEW_COUNTER: LazyLock<Regex> = LazyLock::new(|| {
    static_regex(
        r"(?i)^[•·\s]*[\d\s]+(views?|переглядів|перегляди|перегляд|просмотров|просмотра|просмотр)\s*$",
    )
});

/// The word a views counter ends with.
static VIEWS_WORD: LazyLock<Regex> = LazyLock::new(|| static_regex(r"(?i)views?|перегляд|просмотр"));

/// Elements kept even when they have no text.
const VOID_CONTENT: &[&str] = &["img", "br", "hr", "picture", "video", "audio", "source", "figure"];

/// Removes noise below `roots` from the document: the given strip selectors, elements that never
/// belong to an article, related-news cards, view counters, and elements left empty by that.
pub fn remove_noise(doc: &mut Html, roots: &[NodeId], strip: &[&Selector]) {
    let mut doomed: Vec<NodeId> = Vec::new();
    for &root in roots {
        let Some(root) = doc.tree.get(root).and_then(ElementRef::wrap) else { continue };
        for selector in strip.iter().copied().chain([&*ALWAYS_NOISE]) {
            doomed.extend(root.select(selector).map(|e| e.id()));
        }
        // Cards and counters are found from their "N views" text, walking up a few levels: the
        // outermost short link block ending in a date and a count is a card, else the innermost
        // short "N views" element is a counter.
        for text in root.descendants().filter(|n| n.value().as_text().is_some_and(|t| VIEWS_WORD.is_match(t)))
        {
            let (mut card, mut counter) = (None, None);
            for ancestor in text.ancestors().take(8).filter_map(ElementRef::wrap) {
                let name = ancestor.value().name();
                let Some(collapsed) = short_text(&ancestor, 400) else { break };
                if counter.is_none()
                    && matches!(name, "span" | "div" | "p" | "li" | "small")
                    && is_view_counter(&collapsed)
                {
                    counter = Some(ancestor.id());
                }
                if matches!(name, "a" | "div" | "li" | "section" | "aside")
                    && is_related_card(&ancestor, &collapsed)
                {
                    card = Some(ancestor.id());
                }
                if ancestor.id() == root.id() {
                    break;
                }
            }
            doomed.extend(card.or(counter));
        }
    }
    detach_all(doc, &doomed);
    remove_empty(doc, roots);
}

/// A related-news card: a short text ending in "dd.mm.yy, hh:mm • N views" that is (or holds) a link.
fn is_related_card(element: &ElementRef, text: &str) -> bool {
    RELATED_CARD.is_match(text) && (element.value().name() == "a" || element.select(&A).next().is_some())
}

fn is_view_counter(text: &str) -> bool {
    text.len() < 40 && VIEW_COUNTER.is_match(text)
}

/// The element's text with whitespace collapsed, or `None` when it is longer than `limit` bytes
/// (checked while reading, so a large ancestor costs little).
fn short_text(element: &ElementRef, limit: usize) -> Option<String> {
    let mut out = String::new();
    for piece in element.text() {
        for word in piece.split_whitespace() {
            if !out.is_empty() {
                out.push(' ');
            }
            out.push_str(word);
            if out.len() > limit {
                return None;
            }
        }
    }
    Some(out)
}

static A: LazyLock<Selector> = LazyLock::new(|| static_selector("a"));

/// Removes these nodes (and what is below them) from the document.
pub fn detach_all(doc: &mut Html, ids: &[NodeId]) {
    for &id in ids {
        if let Some(mut node) = doc.tree.get_mut(id) {
            node.detach();
        }
    }
}

/// Detaches elements with no text and no media below them, innermost first.
fn remove_empty(doc: &mut Html, roots: &[NodeId]) {
    let roots: HashSet<NodeId> = roots.iter().copied().collect();
    let mut empty = Vec::new();
    for &root in &roots {
        let Some(root) = doc.tree.get(root) else { continue };
        for node in root.descendants() {
            let Some(element) = ElementRef::wrap(node) else { continue };
            if roots.contains(&node.id()) || VOID_CONTENT.contains(&element.value().name()) {
                continue;
            }
            let has_text = element.text().any(|t| !t.trim().is_empty());
            let has_media = node
                .descendants()
                .any(|d| matches!(d.value(), Node::Element(e) if VOID_CONTENT.contains(&e.name()) && e.name() != "br"));
            if !has_text && !has_media {
                empty.push(node.id());
            }
        }
    }
    detach_all(doc, &empty);
}

/// Real image URL behind an image-resizing proxy (Next.js `/_next/image?url=<encoded>&w=..`).
pub fn decode_image_proxy(value: &str, base: &Url) -> Option<String> {
    let url = base.join(value).ok()?;
    if !url.path().ends_with("/_next/image") {
        return None;
    }
    let (_, real) = url.query_pairs().find(|(key, _)| key == "url")?;
    base.join(&real).ok().map(String::from)
}

/// The allow-list sanitizer: safe tags only, http(s)/mailto URLs only, every URL absolute.
pub fn sanitize(html: &str, base: &Url) -> String {
    let proxy_base = base.clone();
    ammonia::Builder::default()
        .url_schemes(HashSet::from(["http", "https", "mailto"]))
        .url_relative(ammonia::UrlRelative::RewriteWithBase(base.clone()))
        .attribute_filter(move |element, attribute, value| match (element, attribute) {
            ("img", "src") => {
                Some(decode_image_proxy(value, &proxy_base).map_or(Cow::Borrowed(value), Cow::Owned))
            }
            _ => Some(Cow::Borrowed(value)),
        })
        .clean(html)
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base() -> Url {
        Url::parse("https://unn.ua/en/news/x").unwrap()
    }

    #[test]
    fn sanitizer_removes_active_content_and_makes_urls_absolute() {
        let html = r#"<p onclick="x()">Hi <a href="/a">link</a> <a href="javascript:alert(1)">bad</a>
            <img src="/i.png" onerror="y()"><script>evil()</script><style>p{}</style><iframe src="https://e.com"></iframe></p>"#;
        let clean = sanitize(html, &base());
        for bad in ["onclick", "javascript", "onerror", "script", "evil", "style", "iframe"] {
            assert!(!clean.contains(bad), "{bad} in {clean}");
        }
        assert!(clean.contains(r#"href="https://unn.ua/a""#), "{clean}");
        assert!(clean.contains(r#"src="https://unn.ua/i.png""#), "{clean}");
    }

    #[test]
    fn next_image_proxy_is_decoded() {
        let html = r#"<img src="/_next/image?url=https%3A%2F%2Funn.ua%2Fimg%2F2025%2F07%2F02%2Fa.jpeg&w=1920&q=75">"#;
        assert!(sanitize(html, &base()).contains(r#"src="https://unn.ua/img/2025/07/02/a.jpeg""#));
    }

    #[test]
    fn related_cards_and_counters_are_removed() {
        let mut doc = Html::parse_document(
            r#"<div id="body"><p>Real text.</p>
            <div><a href="/x"><div>Committee supported it</div><span>18.06.25, 18:25</span> • <span>4957 views</span></a></div>
            <span>743 views</span><p>More text.</p><div><span></span></div></div>"#,
        );
        let root = doc.select(&static_selector("#body")).next().unwrap().id();
        remove_noise(&mut doc, &[root], &[]);
        let html = ElementRef::wrap(doc.tree.get(root).unwrap()).unwrap().html();
        assert!(html.contains("Real text.") && html.contains("More text."));
        assert!(!html.contains("Committee") && !html.contains("views"), "{html}");
        assert!(!html.contains("<span></span>"), "{html}");
    }
}

/// Attributes lazy-loading scripts keep the real image address in.
const LAZY_SRC: &[&str] = &["data-src", "data-lazy-src", "data-original", "data-url", "data-lazy"];
const LAZY_SRCSET: &[&str] = &["data-srcset", "data-lazy-srcset", "srcset"];

/// Makes lazily loaded images real and drops tracking pixels, in the whole document: the real
/// address from `data-src`-style attributes, the first `srcset` candidate, or the `<noscript>`
/// copy right after the image replaces a missing or placeholder `src`.
pub fn fix_images(doc: &mut Html) {
    static IMG: LazyLock<Selector> = LazyLock::new(|| static_selector("img"));
    let mut updates: Vec<(NodeId, String)> = Vec::new();
    let mut pixels: Vec<NodeId> = Vec::new();
    for img in doc.select(&IMG) {
        let v = img.value();
        let is_pixel = ["width", "height"]
            .iter()
            .any(|a| matches!(v.attr(a).map(str::trim), Some("0" | "1" | "1px" | "0px")));
        if is_pixel {
            pixels.push(img.id());
            continue;
        }
        let src = v.attr("src").map(str::trim).unwrap_or("");
        if !src.is_empty() && !is_placeholder(src) {
            continue;
        }
        let real = LAZY_SRC
            .iter()
            .find_map(|a| v.attr(a).map(str::trim).filter(|s| !s.is_empty() && !is_placeholder(s)))
            .map(str::to_owned)
            .or_else(|| LAZY_SRCSET.iter().find_map(|a| first_srcset_url(v.attr(a)?)))
            .or_else(|| noscript_copy(&img));
        if let Some(real) = real {
            updates.push((img.id(), real));
        }
    }
    for (id, real) in updates {
        if let Some(mut node) = doc.tree.get_mut(id) {
            if let Node::Element(element) = node.value() {
                let src = html5ever::QualName::new(None, html5ever::ns!(), html5ever::local_name!("src"));
                element.attrs.retain(|(name, _)| &*name.local != "src");
                element.attrs.push((src, real.as_str().into()));
            }
        }
    }
    detach_all(doc, &pixels);
}

/// A stand-in shown until a script loads the real image.
fn is_placeholder(src: &str) -> bool {
    let lower = src.to_ascii_lowercase();
    lower.starts_with("data:")
        || ["placeholder", "blank.", "spacer", "lazy", "1x1", "transparent."]
            .iter()
            .any(|p| lower.contains(p))
}

fn first_srcset_url(srcset: &str) -> Option<String> {
    let first = srcset.split(',').next()?.split_whitespace().next()?;
    (!first.is_empty() && !is_placeholder(first)).then(|| first.to_owned())
}

/// The `src` of an `<img>` inside the `<noscript>` that follows the image.
fn noscript_copy(img: &ElementRef) -> Option<String> {
    static SRC: LazyLock<Regex> = LazyLock::new(|| static_regex(r#"<img[^>]*\ssrc\s*=\s*["']([^"']+)["']"#));
    let next = img.next_siblings().filter_map(ElementRef::wrap).next()?;
    if next.value().name() != "noscript" {
        return None;
    }
    let inner: String = next.text().collect();
    SRC.captures(&inner).map(|c| c[1].to_owned()).filter(|s| !is_placeholder(s))
}

#[cfg(test)]
mod image_tests {
    use super::*;

    fn fixed(html: &str) -> String {
        let mut doc = Html::parse_document(html);
        fix_images(&mut doc);
        doc.root_element().html()
    }

    #[test]
    fn lazy_images_get_their_real_address() {
        assert!(fixed(r#"<img src="data:image/gif;base64,R0lG" data-src="/real.jpg">"#)
            .contains(r#"src="/real.jpg""#));
        assert!(fixed(r#"<img data-lazy-src="/a.jpg">"#).contains(r#"src="/a.jpg""#));
        assert!(fixed(r#"<img src="/img/placeholder.png" data-srcset="/b-800.jpg 800w, /b-400.jpg 400w">"#)
            .contains(r#"src="/b-800.jpg""#));
        assert!(fixed(r#"<img src="/lazy.gif"><noscript><img src="/c.jpg"></noscript>"#)
            .contains(r#"src="/c.jpg""#));
        assert!(fixed(r#"<img src="/keep.jpg" data-src="/other.jpg">"#).contains(r#"src="/keep.jpg""#));
    }

    #[test]
    fn tracking_pixels_are_dropped() {
        let html = fixed(
            r#"<p>x<img src="https://t.example/p.gif" width="1" height="1"><img src="/photo.jpg" width="640"></p>"#,
        );
        assert!(!html.contains("t.example") && html.contains("/photo.jpg"), "{html}");
    }
}
