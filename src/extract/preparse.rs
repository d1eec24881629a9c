//! One linear scan of the raw markup before it is parsed, doing two things.
//!
//! It drops what extraction never looks at: `<style>` and `<svg>` elements, comments, `<script>`
//! elements other than JSON-LD and, unless a site rule will read the page, `<nav>` menus — about
//! 70 % of the bytes of a typical news page, which html5ever would otherwise turn into nodes only
//! to have them removed.
//!
//! And it guards against pathologically deep documents. html5ever checks "is there a `<p>` in
//! scope?" by walking the stack of open elements, so a page of 100,000 nested `<div>`s costs it
//! billions of steps. Browsers cap the tree depth instead (Chromium at 512); this pass does the
//! same: start tags opened deeper than the cap, and their end tags, are dropped, while all text is
//! kept.

use std::borrow::Cow;

/// Deeper elements are flattened into their ancestor at this depth.
pub const MAX_DEPTH: usize = 512;

/// Elements that never have content, and elements whose end tag is optional (the parser closes
/// them itself, so counting them would overstate the depth of ordinary pages).
const NOT_NESTING: &[&str] = &[
    "area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr",
    "p", "li", "dt", "dd", "option", "optgroup", "colgroup", "rb", "rt", "rp", "html", "head", "body",
];

/// Elements dropped with their content: inline icons and drawings and, unless a site rule will
/// read the page, navigation menus — many nodes and no text an article needs. (A nested one ends
/// the outer early; what is left of the outer is parsed as usual.) One never closed is kept.
const DROPPED: &[&str] = &["svg", "nav"];
const DROPPED_FOR_RULES: &[&str] = &["svg"];

/// Elements whose content is raw text, not markup.
const RAW_TEXT: &[&str] =
    &["script", "style", "textarea", "title", "xmp", "iframe", "noembed", "noframes", "plaintext"];

/// The document without styles, inline SVG, comments, non-JSON-LD scripts and (with
/// `drop_navigation`) `<nav>`s, and with elements nested deeper than `max_depth` flattened;
/// borrowed when nothing needed to change.
pub fn prepare(html: &str, max_depth: usize, drop_navigation: bool) -> Cow<'_, str> {
    let dropped = if drop_navigation { DROPPED } else { DROPPED_FOR_RULES };
    let bytes = html.as_bytes();
    let mut out: Option<String> = None;
    let mut depth = 0usize;
    // How many elements opened beyond the cap are still open (their end tags are dropped too).
    let mut excess = 0usize;
    let mut copied_to = 0usize;
    let mut i = 0usize;
    while let Some(offset) = memchr::memchr(b'<', &bytes[i..]) {
        let start = i + offset;
        let Some(tag) = read_tag(bytes, start) else {
            i = start + 1;
            continue;
        };
        // Scanning goes on at `next`; the bytes `start..drop_to` are left out of the output.
        let mut next = tag.end;
        let mut drop_to = None;
        match &tag.kind {
            TagKind::Start { name, self_closing } => {
                if let Some(raw) = listed(RAW_TEXT, name) {
                    // Skip to the matching end tag: its content is not markup.
                    let rest = &bytes[tag.end..];
                    next = tag.end + find_end_tag(rest, raw).unwrap_or(rest.len());
                    if raw == "style" || (raw == "script" && !is_json_ld(&bytes[start..tag.end])) {
                        next = past_tag(bytes, next);
                        drop_to = Some(next);
                    }
                } else if let Some(end_tag) = listed(dropped, name)
                    .filter(|_| !*self_closing)
                    .and_then(|dropped| find_end_tag(&bytes[tag.end..], dropped))
                {
                    // Only when closed: an unclosed one is left to the parser.
                    next = past_tag(bytes, tag.end + end_tag);
                    drop_to = Some(next);
                } else if !*self_closing && listed(NOT_NESTING, name).is_none() {
                    if depth >= max_depth {
                        excess += 1;
                        drop_to = Some(next);
                    } else {
                        depth += 1;
                    }
                }
            }
            TagKind::End { name } => {
                if listed(NOT_NESTING, name).is_none() {
                    if excess > 0 {
                        excess -= 1;
                        drop_to = Some(next);
                    } else {
                        depth = depth.saturating_sub(1);
                    }
                }
            }
            TagKind::Comment => drop_to = Some(next),
            TagKind::Other => {}
        }
        if let Some(end) = drop_to {
            let buffer = out.get_or_insert_with(|| String::with_capacity(html.len()));
            buffer.push_str(&html[copied_to..start]);
            copied_to = end;
        }
        i = next;
    }
    match out {
        Some(mut buffer) => {
            buffer.push_str(&html[copied_to..]);
            Cow::Owned(buffer)
        }
        None => Cow::Borrowed(html),
    }
}

/// The list's spelling of `name`, compared without regard to ASCII case (and without allocating).
fn listed(list: &[&'static str], name: &str) -> Option<&'static str> {
    list.iter().copied().find(|entry| entry.eq_ignore_ascii_case(name))
}

enum TagKind<'a> {
    Start {
        name: &'a str,
        self_closing: bool,
    },
    End {
        name: &'a str,
    },
    Comment,
    /// Doctypes, processing instructions.
    Other,
}

struct Tag<'a> {
    kind: TagKind<'a>,
    /// Byte offset just past the tag.
    end: usize,
}

/// Reads the tag starting at `bytes[start] == b'<'`; `None` when it is not a tag (a stray `<`).
fn read_tag(bytes: &[u8], start: usize) -> Option<Tag<'_>> {
    let rest = &bytes[start + 1..];
    if rest.starts_with(b"!--") {
        let end = find(bytes, start + 4, b"-->").map_or(bytes.len(), |e| e + 3);
        return Some(Tag { kind: TagKind::Comment, end });
    }
    if rest.first().is_some_and(|b| *b == b'!' || *b == b'?') {
        let end = memchr::memchr(b'>', rest).map_or(bytes.len(), |e| start + 1 + e + 1);
        return Some(Tag { kind: TagKind::Other, end });
    }
    let (closing, name_start) =
        if rest.first() == Some(&b'/') { (true, start + 2) } else { (false, start + 1) };
    let name_len =
        bytes[name_start..].iter().take_while(|b| b.is_ascii_alphanumeric() || **b == b'-').count();
    if name_len == 0 || !bytes[name_start].is_ascii_alphabetic() {
        return None;
    }
    let name = std::str::from_utf8(&bytes[name_start..name_start + name_len]).ok()?;
    // Find the closing `>` outside quoted attribute values.
    let mut j = name_start + name_len;
    while let Some(found) = bytes.get(j..).and_then(|rest| memchr::memchr3(b'>', b'"', b'\'', rest)) {
        j += found;
        if bytes[j] == b'>' {
            break;
        }
        let quote = bytes[j];
        j = memchr::memchr(quote, &bytes[j + 1..]).map_or(bytes.len(), |q| j + 1 + q) + 1;
    }
    let j = j.min(bytes.len());
    let end = (j + 1).min(bytes.len());
    let self_closing = j > 0 && bytes.get(j - 1) == Some(&b'/');
    let kind = if closing { TagKind::End { name } } else { TagKind::Start { name, self_closing } };
    Some(Tag { kind, end })
}

/// The offset just past the tag that starts at `at` (the end of the document if it never ends).
fn past_tag(bytes: &[u8], at: usize) -> usize {
    memchr::memchr(b'>', &bytes[at..]).map_or(bytes.len(), |e| at + e + 1)
}

/// Whether a `<script …>` start tag declares JSON-LD (`type="application/ld+json"`), which the
/// structured-data step reads.
fn is_json_ld(start_tag: &[u8]) -> bool {
    start_tag.windows(7).any(|w| w.eq_ignore_ascii_case(b"ld+json"))
}

fn find(bytes: &[u8], from: usize, needle: &[u8]) -> Option<usize> {
    memchr::memmem::find(bytes.get(from..)?, needle).map(|p| from + p)
}

/// Where `</name` (any case) starts in `haystack`.
fn find_end_tag(haystack: &[u8], name: &str) -> Option<usize> {
    let mut from = 0;
    while let Some(found) = memchr::memmem::find(&haystack[from..], b"</") {
        let at = from + found;
        let candidate = haystack.get(at + 2..at + 2 + name.len())?;
        if candidate.eq_ignore_ascii_case(name.as_bytes()) {
            return Some(at);
        }
        from = at + 2;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ordinary_pages_are_untouched() {
        let page = "<html><body><div class=\"a>b\"><p>One<p>Two<ul><li>x<li>y</ul><br><img src=x>\
                    <textarea><div></textarea></div></body></html>";
        assert!(matches!(prepare(page, 3, true), Cow::Borrowed(_)));
    }

    #[test]
    fn what_extraction_never_reads_goes_but_json_ld_stays() {
        let page = "<html><head><STYLE>p { color: red }</STYLE><script type=\"application/ld+json\">{\"a\":1}</script>\
                    </head><body><!-- <div> --><p>Text</p><script>if (a < b) { document.write('<div>'); }</script \
                    ><svg viewBox=\"0 0 1 1\"><path d=\"M0 0\"/></svg><nav><a href=/>Home</a></nav><noscript><img src=x></noscript></body></html>";
        assert_eq!(
            prepare(page, 3, true),
            "<html><head><script type=\"application/ld+json\">{\"a\":1}</script></head><body><p>Text</p>\
             <noscript><img src=x></noscript></body></html>"
        );
        assert!(prepare(page, 3, false).contains("<nav><a href=/>Home</a></nav>"), "site rules see menus");
        assert_eq!(prepare("<nav><a>Home</a><p>Story", 3, true), "<nav><a>Home</a><p>Story", "unclosed");
    }

    #[test]
    fn deep_nesting_is_flattened_and_text_kept() {
        let deep = format!("{}<p>bottom</p>{}", "<div>".repeat(10), "</div>".repeat(10));
        let limited = prepare(&deep, 4, true);
        assert_eq!(limited, format!("{}<p>bottom</p>{}", "<div>".repeat(4), "</div>".repeat(4)));
    }

    #[test]
    fn an_unterminated_attribute_value_ends_the_document() {
        assert_eq!(prepare("<p>a<a href=\"x", 3, true), "<p>a<a href=\"x");
        assert_eq!(prepare("<div title='x>", 3, true), "<div title='x>");
    }

    #[test]
    fn never_panics_on_markup_fragments_in_any_order() {
        const PIECES: &[&str] = &[
            "<", ">", "</", "\"", "'", "/", "<!--", "-->", "<!", "script", "nav", "svg", "style", " ", "=",
            "x", "é",
        ];
        let mut state = 0x2545_f491_4f6c_dd1d_u64;
        for _ in 0..5_000 {
            let mut doc = String::new();
            for _ in 0..(state % 24) {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                doc.push_str(PIECES[(state % PIECES.len() as u64) as usize]);
            }
            let _ = prepare(&doc, 2, true);
            let _ = prepare(&doc, 2, false);
        }
    }

    #[test]
    fn stray_angle_brackets_are_text() {
        assert!(matches!(prepare("a < b and c<3 <<", 1, true), Cow::Borrowed(_)));
    }
}
