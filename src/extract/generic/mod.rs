//! The generic extractor, for pages no site rule covers: finds the element that holds the article
//! by scoring text-bearing blocks (in the spirit of Readability) over the one `scraper` DOM.
//!
//! Every paragraph-like block scores by its length and commas; the score flows to its parent and,
//! diminished, to two more ancestors. A container's total is weighted by its tag and class/id
//! names and discounted by how much of its text is link text. The best container wins, together
//! with siblings that look like more of the same article, or with every section of its kind; when
//! it holds little of the page's prose, the element holding most of that prose wins instead.
//! `furniture` then finds what to remove inside it; `stats` holds the per-element text
//! lengths all of this reads.

mod furniture;
mod stats;

use std::sync::LazyLock;

use super::{static_regex, static_selector};
use ego_tree::NodeId;
use furniture::conditional_noise;
pub use furniture::title_copies;
use regex::Regex;
use scraper::{ElementRef, Html, Selector};
use stats::{IdMap, TextStats};

/// Class and id words of page furniture (sidebars, footers, share bars…).
pub const UNLIKELY_NAMES: &str = r"(?i)-ad-|ai2html|banner|breadcrumb|combx|comment|community|cover-wrap|disqus|extra|footer|gdpr|header|legends|menu|related|remark|replies|rss|shoutbox|sidebar|skyscraper|social|sponsor|supplemental|ad-break|agegate|pagination|pager|popup|yom-remote|share|newsletter|subscribe|promo|cookie|recommend|most-read|trending|tags|modal|consent";
static UNLIKELY: LazyLock<Regex> = LazyLock::new(|| static_regex(UNLIKELY_NAMES));
static MAYBE: LazyLock<Regex> =
    LazyLock::new(|| static_regex(r"(?i)and|article|body|column|content|main|shadow|story|entry|post|text"));
/// Class and id words that raise a candidate's score.
pub const POSITIVE_NAMES: &str =
    r"(?i)article|body|content|entry|hentry|h-entry|main|page|pagination|post|text|blog|story";
static POSITIVE: LazyLock<Regex> = LazyLock::new(|| static_regex(POSITIVE_NAMES));
/// Class and id words that lower a candidate's score.
pub const NEGATIVE_NAMES: &str = r"(?i)-ad-|hidden|^hid$| hid$| hid |^hid |banner|combx|comment|com-|contact|footer|gdpr|masthead|media|meta|outbrain|promo|related|scroll|share|shoutbox|sidebar|skyscraper|sponsor|shopping|tags|widget|byline|author|dateline|caption";
static NEGATIVE: LazyLock<Regex> = LazyLock::new(|| static_regex(NEGATIVE_NAMES));
static BODY: LazyLock<Selector> = LazyLock::new(|| static_selector("body"));

/// Below this much text, a strict pass is retried without skipping "unlikely" page regions (some
/// sites wrap the whole page in a `<form>` or in classes like `Page-ad-margins`).
const ENOUGH_TEXT: usize = 500;
/// How much better the relaxed pass's best candidate must score to replace the strict one.
const RELAXED_WINS: f64 = 2.0;

/// What the generic extractor found: the elements that make the article (in document order;
/// empty when nothing scores), and the furniture inside them to remove.
pub struct Found {
    pub roots: Vec<NodeId>,
    pub furniture: Vec<NodeId>,
}

/// Finds the article of a page.
pub fn find_article(doc: &Html) -> Found {
    let Some(body) = doc.select(&BODY).next() else {
        return Found { roots: Vec::new(), furniture: Vec::new() };
    };
    let stats = TextStats::new(*body);
    let text_of = |ids: &[NodeId]| -> usize {
        ids.iter().filter_map(|&id| doc.tree.get(id).and_then(ElementRef::wrap)).map(|e| stats.text(&e)).sum()
    };
    let mut unlikely = IdMap::default();
    let (mut roots, strict_score) = best_candidate(doc, body, Some(&mut unlikely), &stats);
    // Whole-page wrappers with classes like `header-style-2` or `penci_sidebar` make a strict pass
    // miss the article; the relaxed pass wins when it finds clearly better-scoring text.
    let (relaxed, relaxed_score) = best_candidate(doc, body, None, &stats);
    let strict_short = text_of(&roots) < ENOUGH_TEXT && text_of(&relaxed) > text_of(&roots);
    // Readers' comments often outscore a short post; the relaxed pass may not pick them over
    // what the strict pass found outside them.
    let takes_comments = !roots.is_empty() && in_discussion(doc, &relaxed) && !in_discussion(doc, &roots);
    if !takes_comments && (strict_short || relaxed_score > strict_score * RELAXED_WINS) {
        roots = relaxed;
    }
    if let Some(wider) = where_the_prose_is(doc, body, &roots, &stats, &mut unlikely) {
        roots = vec![wider];
    }
    if let Some(declared) = declared_body(doc, &roots) {
        roots = vec![declared];
    }
    let furniture = conditional_noise(doc, &roots, &stats);
    Found { roots, furniture }
}

/// When nothing scored survives cleaning: the page's longest stretch of prose — the paragraph-like
/// block with the most text outside links, or its parent (the block with its neighbours) unless
/// that is the whole page or mostly links. A page with any text then never yields nothing.
pub fn best_block(doc: &Html) -> Option<NodeId> {
    let body = doc.select(&BODY).next()?;
    let stats = TextStats::new(*body);
    let prose = |e: &ElementRef| stats.text(e) as f64 * (1.0 - stats.link_density(e));
    let block = body
        .descendants()
        .filter_map(ElementRef::wrap)
        .filter(|e| is_paragraph_like(e, &stats))
        .max_by(|a, b| prose(a).total_cmp(&prose(b)))
        .filter(|block| prose(block) > 0.0)?;
    let parent = block
        .parent()
        .and_then(ElementRef::wrap)
        .filter(|p| !matches!(p.value().name(), "body" | "html") && stats.link_density(p) < 0.5);
    Some(parent.unwrap_or(block).id())
}

/// Scoring counts a paragraph for three ancestors only, so an article whose paragraphs each sit
/// deep in their own layout wrappers (page builders nest them seven levels down) scores as many
/// small candidates, and a list or a box elsewhere can outscore them all. When the chosen roots
/// hold little of the page's prose (paragraphs of some length outside page furniture, comments
/// and links), the innermost element holding most of it is the article instead.
fn where_the_prose_is(
    doc: &Html,
    body: ElementRef,
    roots: &[NodeId],
    stats: &TextStats,
    unlikely: &mut IdMap<bool>,
) -> Option<NodeId> {
    let mut prose: IdMap<usize> = IdMap::default();
    let mut discussion = IdMap::default();
    for paragraph in body.select(&CHILD_P) {
        let text = stats.text(&paragraph);
        if text < PROSE_PARAGRAPH || stats.link_density(&paragraph) > 0.3 {
            continue;
        }
        if is_unlikely_inside(paragraph, unlikely) || discussion_around(paragraph, &mut discussion) {
            continue;
        }
        for ancestor in paragraph.ancestors() {
            *prose.entry(ancestor.id()).or_default() += text;
        }
    }
    let total = prose.get(&body.id()).copied().unwrap_or(0);
    let covered: usize = roots.iter().map(|id| prose.get(id).copied().unwrap_or(0)).sum();
    if total < PROSE_PAGE || covered as f64 >= total as f64 * PROSE_COVERED {
        return None;
    }
    prose
        .iter()
        .filter(|(_, &text)| text as f64 >= total as f64 * PROSE_SHARE)
        .filter_map(|(&id, _)| doc.tree.get(id).and_then(ElementRef::wrap))
        .filter(|e| !matches!(e.value().name(), "body" | "html"))
        .min_by_key(|e| stats.text(e))
        .map(|e| e.id())
}

/// A paragraph this long is prose (shorter ones are captions, labels, teasers).
const PROSE_PARAGRAPH: usize = 80;
/// Below this much prose a page is too short to second-guess the scoring.
const PROSE_PAGE: usize = 1000;
/// The chosen roots are second-guessed when they hold less than this share of the page's prose
/// (0.2–0.5 measured alike on WCXB; at 0.5, related-story summaries made Dragnet pages worse).
const PROSE_COVERED: f64 = 0.3;
/// The share of the page's prose the article's element must hold (0.7–0.9 measured alike).
const PROSE_SHARE: f64 = 0.8;

static DISCUSSION: LazyLock<Regex> = LazyLock::new(|| static_regex(r"(?i)comment|disqus|dsq-|replies"));

/// Whether any of the elements is, or sits in, a region of readers' comments (by class or id).
fn in_discussion(doc: &Html, ids: &[NodeId]) -> bool {
    let mut known = IdMap::default();
    ids.iter()
        .filter_map(|&id| doc.tree.get(id).and_then(ElementRef::wrap))
        .any(|e| discussion_around(e, &mut known))
}

/// Whether `element` is, or sits in, a region of readers' comments.
fn discussion_around(element: ElementRef, known: &mut IdMap<bool>) -> bool {
    remembered_walk(element, known, |e| {
        let mut names = [e.value().attr("class"), e.value().attr("id")].into_iter().flatten();
        names.any(|v| DISCUSSION.is_match(v)).then_some(true)
    })
}

static ARTICLE_BODY: LazyLock<Selector> = LazyLock::new(|| static_selector(r#"[itemprop="articleBody"]"#));

/// The page's one schema.org `articleBody` element, when the scored candidates all sit inside it:
/// the publisher's own statement of where the body is, so paragraphs that scored lower (a lead
/// in its own block) are not left out.
fn declared_body(doc: &Html, roots: &[NodeId]) -> Option<NodeId> {
    let mut declared = doc.select(&ARTICLE_BODY);
    let body = declared.next()?;
    if declared.next().is_some() || roots.is_empty() {
        return None;
    }
    let inside =
        |id: &NodeId| doc.tree.get(*id).is_some_and(|node| node.ancestors().any(|a| a.id() == body.id()));
    roots.iter().all(inside).then_some(body.id())
}

/// The best-scoring candidate with its siblings, and its score (0 when nothing scored). With
/// `unlikely` (the strict pass), blocks in page furniture are skipped, and the answers kept.
fn best_candidate(
    doc: &Html,
    body: ElementRef,
    mut unlikely: Option<&mut IdMap<bool>>,
    stats: &TextStats,
) -> (Vec<NodeId>, f64) {
    let mut scores: IdMap<f64> = IdMap::default();
    for block in body.descendants().filter_map(ElementRef::wrap).filter(|e| is_paragraph_like(e, stats)) {
        if unlikely.as_deref_mut().is_some_and(|known| is_unlikely_inside(block, known)) {
            continue;
        }
        let text = stats.text(&block);
        if text < 25 || matches!(block.value().name(), "li" | "td") && text < 60 {
            continue;
        }
        let commas = block.text().map(|t| t.matches([',', '،', '，']).count()).sum::<usize>();
        let score = 1.0 + commas as f64 + (text as f64 / 100.0).min(3.0);
        let ancestors = block.ancestors().filter_map(ElementRef::wrap).take(3);
        for (level, ancestor) in ancestors.enumerate() {
            let share = match level {
                0 => 1.0,
                1 => 0.5,
                _ => 1.0 / (level as f64 * 3.0),
            };
            *scores.entry(ancestor.id()).or_insert_with(|| initial_score(&ancestor)) += score * share;
        }
    }
    let mut ranked: Vec<(ElementRef, f64)> = scores
        .iter()
        .filter_map(|(&id, &score)| {
            let element = doc.tree.get(id).and_then(ElementRef::wrap)?;
            Some((element, score * (1.0 - stats.link_density(&element))))
        })
        .collect();
    ranked.sort_by(|a, b| b.1.total_cmp(&a.1));
    let Some(&(top, top_score)) = ranked.first() else { return (Vec::new(), 0.0) };
    let top = common_ancestor_of_rivals(top, top_score, &ranked[1..]).unwrap_or(top);
    let kin = same_kind(doc, top, &scores, stats);
    if kin.len() > 1 {
        return (kin, top_score);
    }
    (with_siblings(top, top_score, &scores, stats), top_score)
}

/// An article cut into sections by a page builder repeats one wrapper per section (`<div
/// class="rich-text">` after `<div class="rich-text">`), each in its own row of the layout, so
/// they are neither siblings nor close rivals. Those that carry scored text are the article, in
/// document order.
fn same_kind(doc: &Html, top: ElementRef, scores: &IdMap<f64>, stats: &TextStats) -> Vec<NodeId> {
    let Some(class) = top.value().attr("class").filter(|c| !c.trim().is_empty()) else { return Vec::new() };
    let name = top.value().name();
    let mut kin: Vec<ElementRef> = scores
        .iter()
        .filter_map(|(&id, &score)| {
            let element = doc.tree.get(id).and_then(ElementRef::wrap)?;
            let same = element.value().name() == name && element.value().attr("class") == Some(class);
            (same && score * (1.0 - stats.link_density(&element)) >= SAME_KIND_SCORE).then_some(element)
        })
        .collect();
    if !kin.iter().any(|e| e.id() == top.id()) {
        kin.push(top);
    }
    if kin.len() < 2 {
        return Vec::new();
    }
    // Document order, outermost only.
    let order: IdMap<usize> = doc.tree.root().descendants().enumerate().map(|(i, n)| (n.id(), i)).collect();
    kin.sort_by_key(|e| order.get(&e.id()).copied().unwrap_or(usize::MAX));
    let ids: Vec<NodeId> = kin.iter().map(|e| e.id()).collect();
    kin.iter().filter(|e| !e.ancestors().any(|a| ids.contains(&a.id()))).map(|e| e.id()).collect()
}

/// The least score a section of the same kind as the best candidate needs to be taken with it.
const SAME_KIND_SCORE: f64 = 10.0;

/// An article split into sections scores as several similar candidates; when at least two
/// rivals of the best one score within 75 % of it, their nearest common ancestor is the article
/// (Readability's rule).
fn common_ancestor_of_rivals<'a>(
    top: ElementRef<'a>,
    top_score: f64,
    others: &[(ElementRef<'a>, f64)],
) -> Option<ElementRef<'a>> {
    let rival_ancestors: Vec<std::collections::HashSet<NodeId>> = others
        .iter()
        .take(4)
        .filter(|(_, score)| *score >= top_score * 0.75)
        .map(|(rival, _)| rival.ancestors().map(|a| a.id()).collect())
        .collect();
    if rival_ancestors.len() < 2 {
        return None;
    }
    top.ancestors()
        .filter_map(ElementRef::wrap)
        .take_while(|a| a.value().name() != "body")
        .find(|ancestor| rival_ancestors.iter().filter(|set| set.contains(&ancestor.id())).count() >= 2)
}

/// Elements that hold running text: paragraphs and their kin, and `<div>`s used as paragraphs
/// (no block-level children, text separated by `<br>`), as Readability treats them.
fn is_paragraph_like(element: &ElementRef, stats: &TextStats) -> bool {
    match element.value().name() {
        "p" | "pre" | "td" | "blockquote" | "h2" | "h3" | "li" => true,
        "div" | "section" => {
            !element.children().filter_map(ElementRef::wrap).any(|c| BLOCK_TAGS.contains(&c.value().name()))
                || stats.direct_text(element) >= 100
        }
        _ => false,
    }
}

/// Children that make a `<div>` a container rather than a paragraph.
const BLOCK_TAGS: &[&str] = &[
    "address",
    "article",
    "aside",
    "blockquote",
    "dir",
    "div",
    "dl",
    "fieldset",
    "figure",
    "footer",
    "form",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "header",
    "hr",
    "li",
    "main",
    "menu",
    "nav",
    "ol",
    "p",
    "pre",
    "section",
    "table",
    "ul",
];

/// The top candidate plus siblings that carry more of the same article.
fn with_siblings(top: ElementRef, top_score: f64, scores: &IdMap<f64>, stats: &TextStats) -> Vec<NodeId> {
    let Some(parent) = top.parent() else { return vec![top.id()] };
    let threshold = (top_score * 0.2).max(10.0);
    let top_class = top.value().attr("class").unwrap_or("");
    parent
        .children()
        .filter_map(ElementRef::wrap)
        .filter(|sibling| {
            if sibling.id() == top.id() {
                return true;
            }
            // Each <article> is a self-contained composition: a neighbouring one is another story.
            if top.value().name() == "article" && sibling.value().name() == "article" {
                return false;
            }
            let mut bonus = 0.0;
            if !top_class.is_empty() && sibling.value().attr("class") == Some(top_class) {
                bonus = top_score * 0.2;
            }
            let score = scores.get(&sibling.id()).map(|s| s * (1.0 - stats.link_density(sibling)));
            if score.is_some_and(|s| s + bonus >= threshold) {
                return true;
            }
            // A document's plain `<section>`s are its parts (HTML's sectioning): beside a chosen one
            // without a class, every other one without a class that carries scored text belongs
            // to the article (documentation pages split into sections, a recipe after the prose).
            if top_class.is_empty() && top.value().name() == "section" && is_plain_section(sibling) {
                return score.is_some_and(|s| s > 0.0);
            }
            if sibling.value().name() == "p" {
                let len = stats.text(sibling);
                let density = stats.link_density(sibling);
                let text: String = sibling.text().collect();
                return (len > 80 && density < 0.25)
                    || (len > 0 && len <= 80 && density == 0.0 && text.trim_end().ends_with('.'));
            }
            false
        })
        .map(|e| e.id())
        .collect()
}

/// A `<section>` without a class.
fn is_plain_section(element: &ElementRef) -> bool {
    element.value().name() == "section" && element.value().attr("class").is_none_or(|c| c.trim().is_empty())
}

static CHILD_P: LazyLock<Selector> = LazyLock::new(|| static_selector("p"));

fn initial_score(element: &ElementRef) -> f64 {
    let tag = match element.value().name() {
        "div" | "article" | "main" | "section" => 5.0,
        "pre" | "td" | "blockquote" => 3.0,
        "address" | "ol" | "ul" | "dl" | "dd" | "dt" | "li" | "form" => -3.0,
        "h1" | "h2" | "h3" | "h4" | "h5" | "h6" | "th" => -5.0,
        _ => 0.0,
    };
    tag + class_weight(element)
}

fn class_weight(element: &ElementRef) -> f64 {
    let mut weight = 0.0;
    for value in [element.value().attr("class"), element.value().attr("id")].into_iter().flatten() {
        if NEGATIVE.is_match(value) {
            weight -= 25.0;
        }
        if POSITIVE.is_match(value) {
            weight += 25.0;
        }
    }
    weight
}

/// Does the block sit in (or is it) page furniture: nav, footer, comments, sidebars?
fn is_unlikely_inside(block: ElementRef, known: &mut IdMap<bool>) -> bool {
    remembered_walk(block, known, |e| {
        let v = e.value();
        if matches!(v.name(), "nav" | "footer" | "aside" | "header" | "form") {
            return Some(true);
        }
        if is_hidden(e) {
            return Some(true);
        }
        if matches!(v.name(), "body" | "html" | "article" | "main") {
            return Some(false);
        }
        let names = format!("{} {}", v.attr("class").unwrap_or(""), v.attr("id").unwrap_or(""));
        let unlikely = UNLIKELY.is_match(&names) && !MAYBE.is_match(&names)
            || matches!(v.attr("role"), Some("navigation" | "complementary" | "banner" | "contentinfo"));
        unlikely.then_some(true)
    })
}

/// Whether the page hides the element from readers (after Readability's visibility test):
/// `aria-hidden="true"`, or an inline `display: none` / `visibility: hidden`. Only the strict pass
/// skips hidden blocks: collapsed accordions and tabs are hidden that way too and are part of the
/// article once chosen. The `hidden` attribute is not read: React's streaming rendering delivers
/// whole pages inside `<div hidden>`.
fn is_hidden(element: &ElementRef) -> bool {
    let v = element.value();
    if v.attr("aria-hidden") == Some("true") {
        return true;
    }
    let declarations = v.attr("style").into_iter().flat_map(|style| style.split(';'));
    declarations.filter_map(|d| d.split_once(':')).any(|(property, value)| {
        let (property, value) = (property.trim(), value.trim());
        property.eq_ignore_ascii_case("display") && value.eq_ignore_ascii_case("none")
            || property.eq_ignore_ascii_case("visibility") && value.eq_ignore_ascii_case("hidden")
    })
}

/// Walks from `element` up through its ancestors until `verdict` settles the question (`Some`)
/// or an element's answer is already in `known`; no verdict up to the root means `false`. The
/// answer is recorded for the whole path, so the blocks of a page share the walk up through their
/// common ancestors.
fn remembered_walk(
    element: ElementRef,
    known: &mut IdMap<bool>,
    verdict: impl Fn(&ElementRef) -> Option<bool>,
) -> bool {
    let mut path = Vec::new();
    let mut answer = false;
    for e in std::iter::once(element).chain(element.ancestors().filter_map(ElementRef::wrap)) {
        if let Some(&known_answer) = known.get(&e.id()) {
            answer = known_answer;
            break;
        }
        path.push(e.id());
        if let Some(settled) = verdict(&e) {
            answer = settled;
            break;
        }
    }
    for id in path {
        known.insert(id, answer);
    }
    answer
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The HTML of the elements `ids` on `page`.
    fn html_of(page: &Html, ids: &[NodeId]) -> String {
        ids.iter().filter_map(|&id| page.tree.get(id).and_then(ElementRef::wrap)).map(|e| e.html()).collect()
    }

    /// The furniture the generic extractor finds on `page`, as HTML.
    pub(super) fn removed_html(page: &Html) -> String {
        html_of(page, &find_article(page).furniture)
    }

    /// The HTML of the roots `find_article` chooses on `page`.
    pub(super) fn article_html(page: &Html) -> String {
        html_of(page, &find_article(page).roots)
    }

    #[test]
    fn finds_the_article_among_furniture() {
        let page = Html::parse_document(
            r#"<html><body><nav><p>Home, News, Sport, Weather, and all the other menu items here</p></nav>
            <div class="sidebar"><p>Most read: something else entirely, with commas, many commas</p></div>
            <div class="article-body"><p>The first paragraph of the story, which is long enough to count, with a comma.</p>
            <p>The second paragraph goes on, and on, adding detail after detail to the report.</p></div>
            <footer><p>Copyright, all rights reserved, contact us, privacy policy, terms</p></footer></body></html>"#,
        );
        let html = article_html(&page);
        assert!(html.contains("first paragraph") && html.contains("second paragraph"), "{html}");
        assert!(!html.contains("Most read") && !html.contains("Copyright"), "{html}");
    }

    #[test]
    fn a_short_post_is_not_replaced_by_its_longer_comments() {
        let comment = "<li class=comment><p>I disagree with this, and here is why, at length, with commas, \
            and more commas, because comments go on and on, and on, and on.</p></li>";
        let page = Html::parse_document(&format!(
            r#"<html><body><div class="post"><p>The short post itself: a photo from the show, and two
            sentences about it, which is all the author wrote that day.</p></div>
            <ol class="commentlist">{}</ol></body></html>"#,
            comment.repeat(12)
        ));
        let html = article_html(&page);
        assert!(html.contains("The short post itself") && !html.contains("I disagree"), "{html}");
    }

    #[test]
    fn dialogs_and_consent_panels_are_not_the_article() {
        // A forum thread's posts are "replies", which the strict pass skips; a members-only
        // dialog or a consent manager's panel must not win in their place.
        let post = "<li class=bbp-body><div class=bbp-reply-content><p>My favourite city for hiking is Santa Fe, with trails close by, \
            good food, and a long season, which matters more than anything else to me.</p></div></li>";
        let page = Html::parse_document(&format!(
            r#"<html><body><ul class="bbp-replies">{}</ul>
            <div class="modal" id="membership-required-modal"><div class="modal-dialog"><div class="modal-body"><p>This
            feature requires an active membership. You're currently viewing a free preview, so sign in, or join us,
            today.</p></div></div></div>
            <div id="onetrust-consent-sdk"><p>These cookies are set by a range of social media services that we
            have added to the site, to enable you to share our content with your friends, and networks.</p></div>
            </body></html>"#,
            post.repeat(3)
        ));
        let html = article_html(&page);
        assert!(html.contains("Santa Fe"), "{html}");
        assert!(!html.contains("membership") && !html.contains("cookies"), "{html}");
    }

    #[test]
    fn hidden_blocks_are_not_the_article() {
        let paragraph =
            |text: &str| format!("<p>{text}, a paragraph long enough to count, with commas, and more.</p>");
        // Hidden blocks that would outscore the story were they shown.
        let page = Html::parse_document(&format!(
            r#"<html><body><div><div>{}</div></div>
            <div><div style="display: none">{}</div></div><div><div aria-hidden="true">{}</div></div></body></html>"#,
            paragraph("The story itself").repeat(7),
            paragraph("A hidden popup, longer, with commas, commas").repeat(5),
            paragraph("An off-screen copy, longer, with commas, commas").repeat(5),
        ));
        let html = article_html(&page);
        assert!(html.contains("The story itself"), "{html}");
        assert!(!html.contains("hidden popup") && !html.contains("off-screen"), "{html}");
    }

    #[test]
    fn the_best_block_is_the_longest_prose_with_its_neighbours() {
        let page = Html::parse_document(
            "<body><div id=menu><p><a href=/a>A very long list of links, one after another</a></p></div>\
             <div id=text><p>Short.</p><p>The longest paragraph of the page, with plain words in it.</p></div></body>",
        );
        let block = best_block(&page).and_then(|id| page.tree.get(id).and_then(ElementRef::wrap));
        assert_eq!(block.and_then(|e| e.value().attr("id")), Some("text"));
        assert!(best_block(&Html::parse_document("<body><p><a href=/>only a link</a></p></body>")).is_none());
        assert!(best_block(&Html::parse_document("<body></body>")).is_none());
    }

    #[test]
    fn sections_of_a_page_builder_are_one_article() {
        let section = |text: &str| {
            format!(
                "<div class=row><div class=col><div class=block><div class=rich-text><p>{text}, which goes on \
                 for a while, with commas, as prose does.</p></div></div></div></div>"
            )
        };
        let page = Html::parse_document(&format!(
            "<body><main>{}<div class=row><div class=col><div class=block><h2>Part two</h2></div></div></div>{}{}</main>\
             <div class=teaser><p>Another story, teased here, with commas, and more words.</p></div></body>",
            section(&"The first section of the article, the longest of them all, so it wins, clearly. ".repeat(8)),
            section("The second section"),
            section("The third section"),
        ));
        let html = article_html(&page);
        assert!(html.contains("first section") && html.contains("second section"), "{html}");
        assert!(html.contains("third section") && !html.contains("Another story"), "{html}");
    }

    #[test]
    fn plain_sections_beside_the_chosen_one_are_more_of_the_article() {
        let prose = "A paragraph of the guide, long enough to count, with commas, and more words, and more.";
        let page = Html::parse_document(&format!(
            "<body><main><section id=intro><p>{prose} The introduction.</p><p>{prose}</p><p>{prose}</p></section>\
             <section id=recipes><p>Short recipe using the functions above, in one line.</p><pre>take(n, iterable)</pre></section>\
             <section class=newsletter><p>Subscribe to our newsletter, weekly, with tips, and more.</p></section>\
             </main></body>"
        ));
        let html = article_html(&page);
        assert!(html.contains("The introduction") && html.contains("Short recipe"), "{html}");
        assert!(!html.contains("Subscribe"), "a classed section is judged as before: {html}");
    }

    #[test]
    fn paragraphs_deep_in_layout_wrappers_outweigh_a_list_elsewhere() {
        let wrapped = |n: u32| {
            format!(
                "<div class=section-{n}><div class=column><div class=widget-{n}><div class=inner><p>Paragraph {n} of \
                 the article, which is long enough to be prose, and says something new each time.</p></div></div></div></div>"
            )
        };
        let item = "<li>A list item with a long text, and commas, commas, commas, commas, commas, and more commas.</li>";
        let page = Html::parse_document(&format!(
            "<body><div class=entry>{}</div><div class=box><ul>{}</ul></div></body>",
            (1..=12).map(wrapped).collect::<String>(),
            item.repeat(6)
        ));
        let html = article_html(&page);
        assert!(html.contains("Paragraph 1 of") && html.contains("Paragraph 12 of"), "{html}");
        assert!(!html.contains("A list item"), "{html}");
    }

    #[test]
    fn a_declared_article_body_around_the_candidates_is_the_article() {
        let body = r#"<div itemprop="articleBody"><div class="lead"><p>A short lead.</p></div>
            <div class="text"><p>The first paragraph of the story, which is long enough to count, with a comma.</p>
            <p>The second paragraph goes on, and on, adding detail after detail to the report.</p></div></div>"#;
        let page = Html::parse_document(&format!("<html><body>{body}</body></html>"));
        let roots = find_article(&page).roots;
        let root = page.tree.get(roots[0]).and_then(ElementRef::wrap).unwrap();
        assert_eq!(roots.len(), 1);
        assert_eq!(root.value().attr("itemprop"), Some("articleBody"), "the lead is in");
        // Two declared bodies say nothing certain: the scored candidates stand.
        let twice = Html::parse_document(&format!("<html><body>{body}{body}</body></html>"));
        let roots = find_article(&twice).roots;
        assert!(roots.iter().all(|&id| {
            twice.tree.get(id).and_then(ElementRef::wrap).unwrap().value().attr("itemprop").is_none()
        }));
    }

    #[test]
    fn empty_page_has_no_article() {
        assert!(find_article(&Html::parse_document("")).roots.is_empty());
    }
}
