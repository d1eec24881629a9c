//! Page furniture inside the article the generic extractor chose: what scoring let through
//! (navigation, link lists, share and "read more" boxes, captions, publication lines, hover cards,
//! related stories) and the headline repeated above the body.

use std::sync::LazyLock;

use super::stats::TextStats;
use super::{class_weight, CHILD_P, MAYBE, UNLIKELY};
use crate::extract::{static_regex, static_selector};
use ego_tree::NodeId;
use regex::Regex;
use scraper::{ElementRef, Html, Selector};

static BOILERPLATE: LazyLock<Regex> = LazyLock::new(|| {
    static_regex(
        r"(?i)(subscribe|sign up|newsletter|follow (us|@)|click here|read more|you may also like|all rights reserved|copyright|image \d+ of \d+|related:)|©|^\s*advertisement\s*$|підпис(уйтес|атис)ь|читайте (також|также)|подпис(ывайтесь|аться)",
    )
});

/// A byline or dateline written out: "Published on Nov 20, 2019", "05/10/2018 - Publicado por: …".
static BYLINE: LazyLock<Regex> = LazyLock::new(|| {
    static_regex(
        r"(?i)(publicado (por|em)|posted (by|on)|published (by|on)|written by|updated on|opublikowano|veröffentlicht|автор:|опубліковано|опубликовано)",
    )
});

static DATE: LazyLock<Regex> = LazyLock::new(|| {
    static_regex(
        r"(?i)\b(\d{1,2}[./-]\d{1,2}[./-]\d{2,4}|\d{4}-\d{2}-\d{2}|(jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)[a-z]*\.? \d{1,2})\b",
    )
});

static CAPTION: LazyLock<Regex> =
    LazyLock::new(|| static_regex(r"(?i)caption|credit|byline|author-bio|disclosure"));

/// Page furniture inside the chosen article that scoring let through (Readability's "clean
/// conditionally"): navigation, link lists, share and "read more" boxes, captions.
pub(super) fn conditional_noise(doc: &Html, roots: &[NodeId], stats: &TextStats) -> Vec<NodeId> {
    let mut doomed = std::collections::HashSet::new();
    for &root in roots {
        let Some(root) = doc.tree.get(root).and_then(ElementRef::wrap) else { continue };
        let root_text = stats.text(&root).max(1);
        let posts: Vec<ElementRef> = root.select(&EMBEDDED_POST).collect();
        for element in root.descendants().filter_map(ElementRef::wrap) {
            if element.id() == root.id() || element.ancestors().any(|a| doomed.contains(&a.id())) {
                continue;
            }
            if posts.iter().any(|post| holds_embedded_post(&element, post, stats)) {
                continue;
            }
            // An element holding most of the article is the article, whatever its class says.
            if stats.text(&element) * 2 > root_text {
                continue;
            }
            // Articles nested in an article are, in HTML's own terms, related content: teasers,
            // comments.
            // Unless it is most of the article around it: that is the body of a post (a forum's
            // `<article class="message">` around `<article class="message-body">`).
            let nested_article = element.value().name() == "article"
                && element
                    .ancestors()
                    .filter_map(ElementRef::wrap)
                    .find(|a| a.value().name() == "article")
                    .is_some_and(|outer| stats.text(&element) * 2 <= stats.text(&outer));
            if nested_article || is_furniture(&element, stats) {
                doomed.insert(element.id());
            }
        }
    }
    doomed.into_iter().collect()
}

/// A post quoted from a social network in the markup its embed code uses (the text is in the
/// page; a script would only restyle it): part of the story the article tells.
static EMBEDDED_POST: LazyLock<Selector> = LazyLock::new(|| {
    static_selector(
        "blockquote.twitter-tweet, blockquote.instagram-media, blockquote.tiktok-embed, \
         blockquote.bluesky-embed, blockquote.text-post-media, blockquote.reddit-embed-bq",
    )
});

/// Whether `element` is `post`, is inside it, or is a wrapper around little more than it — such
/// wrappers have classes like `social-media-embed` that would otherwise mark them as furniture.
fn holds_embedded_post(element: &ElementRef, post: &ElementRef, stats: &TextStats) -> bool {
    if element.id() == post.id() || element.ancestors().any(|a| a.id() == post.id()) {
        return true;
    }
    let wraps_post = post.ancestors().any(|a| a.id() == element.id());
    wraps_post && stats.text(element) <= stats.text(post) + 40
}

static CHILD_A: LazyLock<Selector> = LazyLock::new(|| static_selector("a"));

static CHILD_LI: LazyLock<Selector> = LazyLock::new(|| static_selector("li"));

static CHILD_IMG: LazyLock<Selector> = LazyLock::new(|| static_selector("img"));

fn is_furniture(element: &ElementRef, stats: &TextStats) -> bool {
    let name = element.value().name();
    // The headline is the entry's title, not part of its body; captions and credits belong to
    // pictures, not to the text.
    if matches!(name, "nav" | "aside" | "footer" | "header" | "form" | "menu" | "h1" | "figcaption") {
        return true;
    }
    let names = format!(
        "{} {}",
        element.value().attr("class").unwrap_or(""),
        element.value().attr("id").unwrap_or("")
    );
    if CAPTION.is_match(&names) || (UNLIKELY.is_match(&names) && !MAYBE.is_match(&names)) {
        return true;
    }
    // A publication line: when and by whom, which the entry's metadata already says.
    let has_digits = || element.text().any(|t| t.bytes().any(|b| b.is_ascii_digit()));
    if stats.text(element) < 160 && has_digits() {
        let text: String = element.text().collect();
        if BYLINE.is_match(&text) && DATE.is_match(&text) {
            return true;
        }
    }
    // Calls to action and credits: short blocks asking the reader to subscribe, follow, read more.
    let short_block = matches!(name, "p" | "div" | "li" | "section" | "h2" | "h3" | "h4" | "h5" | "h6");
    if short_block && stats.text(element) < 250 && BOILERPLATE.is_match(&element.text().collect::<String>()) {
        return true;
    }
    // A hover card hidden inside a sentence (a person's picture and their latest headlines): an
    // inline element holding a list of links and nothing else.
    if name == "span" {
        return stats.text(element) > 100
            && stats.link_density(element) > 0.8
            && element.select(&CHILD_A).nth(2).is_some();
    }
    // A short paragraph that is all link is a "read also" line, not prose.
    if name == "p" {
        return stats.text(element) < 200 && stats.link_density(element) > 0.7;
    }
    if !matches!(
        name,
        "div" | "section" | "ul" | "ol" | "table" | "dl" | "h1" | "h2" | "h3" | "h4" | "h5" | "h6"
    ) {
        return false;
    }
    let weight = class_weight(element);
    let density = stats.link_density(element);
    if name.starts_with('h') {
        return weight < 0.0 || density > 0.5;
    }
    let text = stats.text(element);
    let commas = element.text().map(|t| t.matches([',', '،', '，']).count()).sum::<usize>();
    if commas >= 10 {
        return false;
    }
    let paragraphs = element.select(&CHILD_P).count();
    let items = element.select(&CHILD_LI).count();
    let images = element.select(&CHILD_IMG).count();
    let is_list = matches!(name, "ul" | "ol");
    (weight < 0.0 && density > 0.2)
        || density > 0.5
        || (!is_list && items > paragraphs + 3 && density > 0.25)
        || (is_list && density > 0.4)
        || (text < 25 && images == 0 && !is_list)
        || (images > 1 && paragraphs * 2 < images && text < 200)
}

/// Elements inside the article (not the roots themselves) whose whole text is the page's title:
/// the headline repeated above the body, in whatever element the site puts it.
pub fn title_copies(doc: &Html, roots: &[NodeId], title: &str) -> Vec<NodeId> {
    let title: Vec<&str> = title.split_whitespace().collect();
    if title.is_empty() {
        return Vec::new();
    }
    let mut found = Vec::new();
    for root in roots.iter().filter_map(|&id| doc.tree.get(id)) {
        for element in root.descendants().skip(1).filter_map(ElementRef::wrap) {
            // Compares word by word, so most elements are ruled out at their first word.
            if element.text().flat_map(str::split_whitespace).eq(title.iter().copied()) {
                found.push(element.id());
            }
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::super::tests::{article_html, removed_html};
    use super::*;

    #[test]
    fn the_headline_repeated_inside_the_article_is_found_in_any_element() {
        let page = Html::parse_document(
            "<div id=a><p class=big>\n  Budget  rules approved </p><p>Budget rules approved by the cabinet on Monday.</p></div>",
        );
        let root = page.select(&Selector::parse("#a").unwrap()).next().unwrap().id();
        let copies = title_copies(&page, &[root], "Budget rules approved");
        assert_eq!(copies.len(), 1);
        let copy = page.tree.get(copies[0]).and_then(ElementRef::wrap).unwrap();
        assert_eq!(copy.value().attr("class"), Some("big"));
        assert!(title_copies(&page, &[root], "").is_empty());
    }

    #[test]
    fn embedded_posts_stay_in_the_article() {
        let page = Html::parse_document(
            r#"<html><body><div class="story"><p>The first paragraph of the story, which is long enough to count, with a comma.</p>
            <div class="social-media-embed"><blockquote class="twitter-tweet"><p>Yes this is real <a href="https://t.co/x">https://t.co/x</a></p>
            — Someone (@someone) <a href="https://twitter.com/someone/status/1">November 18, 2019</a></blockquote></div>
            <div class="social-share"><a href="/share">Share</a> <a href="/tweet">Tweet</a></div>
            <p>The second paragraph goes on, and on, adding detail after detail to the report.</p></div></body></html>"#,
        );
        let removed = removed_html(&page);
        assert!(removed.contains("social-share"), "the share bar goes: {removed}");
        assert!(!removed.contains("Yes this is real"), "the quoted post stays: {removed}");
    }

    #[test]
    fn a_hover_card_inside_a_sentence_goes() {
        let card = r#"<span class="card"><img src="/p.jpg"><a href="/people/x">Jane Doe</a><a href="/a">A first headline about something else entirely</a> <a href="/b">A second headline about yet another thing</a> <a href="/c">And a third headline</a></span>"#;
        let page = Html::parse_document(&format!(
            r#"<html><body><div class="story"><p>Rep. {card} said on Monday, in a statement, that the bill would pass, and soon.</p>
            <p>The second paragraph goes on, and on, adding detail after detail to the report.</p></div></body></html>"#
        ));
        assert_eq!(removed_html(&page), card);
    }

    #[test]
    fn articles_nested_in_the_article_are_related_content() {
        let teaser = |n: u32| {
            format!(
                r#"<article class="post"><p>Teaser {n}: another story, told in part, with commas, and more commas, and yet more, to read, in full, elsewhere, on this site, some day, soon, number {n}.</p></article>"#
            )
        };
        let page = Html::parse_document(&format!(
            r#"<html><body><div id="primary"><article class="post"><p>The first paragraph of the story, which is long enough to count, with a comma.</p>
            <p>The second paragraph goes on, and on, adding detail after detail to the report, and more.</p>
            <p>The third paragraph closes it, with a quote, a figure, and a date, as stories do.</p>
            <h3>You may also like</h3>{}{}</article></div></body></html>"#,
            teaser(1),
            teaser(2)
        ));
        let removed = removed_html(&page);
        assert!(removed.contains("Teaser 1") && removed.contains("Teaser 2"), "{removed}");
        assert!(!removed.contains("first paragraph"), "{removed}");
    }

    #[test]
    fn a_forum_post_body_nested_in_its_post_article_stays() {
        let post = |n: u32| {
            format!(
                r#"<article class="message"><div class="user">Member {n}</div><article class="message-body">
                <p>Reply {n}: I had the same problem, and fixed it, after a while, by changing the settings, twice.</p>
                </article></article>"#
            )
        };
        let page = Html::parse_document(&format!(
            r#"<html><body><div class="block-body">{}{}{}</div></body></html>"#,
            post(1),
            post(2),
            post(3)
        ));
        let html = article_html(&page);
        let removed = removed_html(&page);
        assert!(html.contains("Reply 1") && html.contains("Reply 3"), "{html}");
        assert!(!removed.contains("Reply"), "{removed}");
    }

    #[test]
    fn publication_lines_go_but_sentences_about_posting_stay() {
        let page = Html::parse_document(
            r#"<html><body><div class="story"><small>05/10/2018 - Publicado por: Clarissa Borba - Categoria: Saúde</small>
            <p>The first paragraph of the story, which is long enough to count, with a comma.</p>
            <p>Last week, she posted on Twitter that the show, and the tour, would go on.</p>
            <p>The second paragraph goes on, and on, adding detail after detail to the report.</p>
            <div>First Published on Nov 20, 2019 01:38 pm</div></div></body></html>"#,
        );
        let removed = removed_html(&page);
        assert!(removed.contains("Publicado por") && removed.contains("First Published"), "{removed}");
        assert!(!removed.contains("posted on Twitter"), "{removed}");
    }
}
