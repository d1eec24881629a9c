//! HTML → plain text: the words a reader sees, one block (paragraph, heading, list item…) per line.

use ego_tree::iter::Edge;
use ego_tree::NodeRef;
use scraper::{Html, Node};

/// Elements that start a new line.
pub const BLOCKS: &[&str] = &[
    "address",
    "article",
    "aside",
    "blockquote",
    "br",
    "dd",
    "div",
    "dl",
    "dt",
    "figcaption",
    "figure",
    "footer",
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
    "ol",
    "p",
    "pre",
    "section",
    "table",
    "tr",
    "td",
    "th",
    "ul",
    "caption",
    "details",
    "summary",
];

/// Plain text of an HTML fragment: blocks separated by newlines, inline whitespace collapsed.
pub fn html_to_text(html: &str) -> String {
    let fragment = Html::parse_fragment(html);
    let mut out = String::new();
    write_text(fragment.tree.root(), &mut out);
    tidy(&out)
}

/// Plain text below a node of a parsed document.
pub fn node_text(node: NodeRef<'_, Node>) -> String {
    let mut out = String::new();
    write_text(node, &mut out);
    tidy(&out)
}

/// Walks the tree iteratively (`traverse`), so a deeply nested page cannot overflow the stack.
fn write_text(node: NodeRef<'_, Node>, out: &mut String) {
    let (mut skip_depth, mut pre_depth) = (0usize, 0usize);
    // A link just closed with nothing after it yet: a link that opens right there is another
    // item (`<a>one</a><a>two</a>` reads "one two", not "onetwo").
    let mut after_link = false;
    let is_link = |n: &NodeRef<'_, Node>| matches!(n.value(), Node::Element(e) if e.name() == "a");
    for edge in node.traverse() {
        if after_link && skip_depth == 0 && matches!(edge, Edge::Open(n) if is_link(&n)) {
            out.push(' ');
        }
        match edge {
            Edge::Open(n) => match n.value() {
                Node::Element(e) if skip_depth > 0 || SKIPPED.contains(&e.name()) => skip_depth += 1,
                _ if skip_depth > 0 => {}
                // Source line breaks are just spaces, except inside <pre>.
                Node::Text(text) if pre_depth == 0 => {
                    out.extend(text.chars().map(|c| if c == '\n' || c == '\r' { ' ' } else { c }))
                }
                Node::Text(text) => out.push_str(text),
                Node::Element(e) if e.name() == "pre" => {
                    pre_depth += 1;
                    out.push('\n');
                }
                Node::Element(e) if BLOCKS.contains(&e.name()) => out.push('\n'),
                _ => {}
            },
            Edge::Close(n) => match n.value() {
                Node::Element(_) if skip_depth > 0 => skip_depth -= 1,
                Node::Element(e) if e.name() == "pre" => {
                    pre_depth -= 1;
                    out.push('\n');
                }
                Node::Element(e) if BLOCKS.contains(&e.name()) => out.push('\n'),
                Node::Element(e) if e.name() == "img" => out.push(' '),
                _ => {}
            },
        }
        after_link = matches!(edge, Edge::Close(n) if is_link(&n));
    }
}

/// Elements whose content is never text a reader sees.
const SKIPPED: &[&str] = &["script", "style", "noscript", "template"];

/// Collapses whitespace inside lines and drops empty lines.
fn tidy(raw: &str) -> String {
    raw.lines()
        .map(|line| line.split_whitespace().collect::<Vec<_>>().join(" "))
        .filter(|line| !line.is_empty())
        .collect::<Vec<_>>()
        .join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_become_lines() {
        let html =
            "<h2>Title</h2><p>One <b>bold</b>\n  word.</p><ul><li>a</li><li>b</li></ul>x<br>y<!-- -->z";
        assert_eq!(html_to_text(html), "Title\nOne bold word.\na\nb\nx\nyz");
    }

    #[test]
    fn adjacent_links_are_separate_words() {
        assert_eq!(html_to_text("<p><a href=/a>click</a><a href=/b>d</a></p>"), "click d");
        assert_eq!(html_to_text("<p><a href=/a>Kyiv</a>'s <a>x</a> <a>y</a></p>"), "Kyiv's x y");
    }

    #[test]
    fn entities_are_decoded() {
        assert_eq!(html_to_text("<p>Tom &amp; Jerry&nbsp;&#x41;</p>"), "Tom & Jerry A");
    }
}
