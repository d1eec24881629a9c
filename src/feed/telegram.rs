//! The Telegram reader: a public channel's web preview (`https://t.me/s/NAME`) → one item per
//! message, newest last as the page shows them.
//!
//! Evidence for the markup (class names Telegram's preview uses): RSS-Bridge's
//! `bridges/TelegramBridge.php` (messages `div.tgme_widget_message_wrap`, the text
//! `div.tgme_widget_message_text.js-message_text`, `a.tgme_widget_message_date` with its `time`,
//! photos `a.tgme_widget_message_photo_wrap` and video posters `i.tgme_widget_message_video_thumb`
//! as `background-image:url('…')`, `a.tgme_widget_message_link_preview` with `link_preview_title`,
//! `link_preview_site_name`, `link_preview_description`, replies `a.tgme_widget_message_reply` with
//! `tgme_widget_message_author_name`, `div.tgme_widget_message_forwarded_from`, the channel's
//! `div.tgme_channel_info_header_title`) and RSSHub's `lib/routes/telegram/channel.js`
//! (`data-post="NAME/ID"`, `tgme_widget_message_from_author` for a post's signature,
//! `tgme_widget_message_forwarded_from_name`, `.service_message`, `.tgme_channel_history`, emoji
//! wrappers `i.emoji` replaced by their text). Older messages: `a.tme_messages_more[data-before]`
//! or `<link rel="prev">`, both `/s/NAME?before=ID`.
//!
//! What never reaches the output: view counters, "Please open Telegram to view this post", emoji
//! image wrappers (custom `tg-emoji` ones too: their text stays) and inline styles.

use std::fmt::Write;
use std::sync::LazyLock;

use ego_tree::NodeRef;
use scraper::{ElementRef, Node, Selector};
use url::Url;

use super::{parse_date, plain_line, plausible, FeedItem, ParseError, ParsedFeed};
use crate::config::Telegram;
use crate::extract::static_selector;
use crate::publish::atom::escape;

/// A title longer than this is cut at a word boundary.
const TITLE_CHARS: usize = 100;

macro_rules! selector {
    ($name:ident, $css:expr) => {
        static $name: LazyLock<Selector> = LazyLock::new(|| static_selector($css));
    };
}
selector!(MESSAGE, ".tgme_widget_message[data-post]");
selector!(CHANNEL, ".tgme_channel_info, .tgme_channel_history");
selector!(CHANNEL_TITLE, ".tgme_channel_info_header_title");
selector!(TEXT, ".tgme_widget_message_text");
selector!(DATE, ".tgme_widget_message_date time[datetime]");
selector!(SIGNATURE, ".tgme_widget_message_from_author");
selector!(OWNER, ".tgme_widget_message_owner_name");
selector!(FORWARDED, ".tgme_widget_message_forwarded_from_name");
selector!(REPLY, "a.tgme_widget_message_reply");
selector!(REPLY_AUTHOR, ".tgme_widget_message_author_name");
selector!(REPLY_TEXT, ".tgme_widget_message_text, .tgme_widget_message_metatext");
selector!(PHOTO, "a.tgme_widget_message_photo_wrap");
selector!(VIDEO_THUMB, "i.tgme_widget_message_video_thumb, i.tgme_widget_message_roundvideo_thumb");
selector!(PREVIEW, "a.tgme_widget_message_link_preview[href]");
selector!(PREVIEW_SITE, ".link_preview_site_name");
selector!(PREVIEW_TITLE, ".link_preview_title");
selector!(PREVIEW_DESCRIPTION, ".link_preview_description");
selector!(PREVIEW_IMAGE, "i.link_preview_image, i.link_preview_right_image");
selector!(SERVICE, ".service_message");
selector!(OLDER, "a.tme_messages_more[data-before][href], link[rel=prev][href]");

/// Reads a channel's preview page fetched from `url`.
pub fn read(channel: &Telegram, html: &str, url: &Url) -> Result<ParsedFeed, ParseError> {
    let page = super::parse_html(html);
    let messages: Vec<ElementRef> = page.select(&MESSAGE).collect();
    if messages.is_empty() && page.select(&CHANNEL).next().is_none() {
        return Err(ParseError(format!(
            "the Telegram channel `{}` does not exist or is not public (no channel preview at {url})",
            channel.channel
        )));
    }
    let channel_title = page.select(&CHANNEL_TITLE).next().map(|e| text_of(e)).filter(|t| !t.is_empty());
    // The channel as readers know it: its title and its handle ("Also reported by UNN (@UNN_ua)").
    let feed_title = Some(match &channel_title {
        Some(title) => format!("{title} (@{})", channel.channel),
        None => format!("@{}", channel.channel),
    });
    let items = messages
        .into_iter()
        .filter(|m| !SERVICE.matches(m) && m.select(&SERVICE).next().is_none())
        .filter_map(|m| message(m, channel, channel_title.as_deref()))
        .collect();
    let older =
        page.select(&OLDER).next().and_then(|a| a.value().attr("href")).and_then(|h| url.join(h).ok());
    Ok(ParsedFeed { title: feed_title, items, publisher_interval: None, children: Vec::new(), older })
}

/// One message as an item; `None` for one without a post id.
fn message(m: ElementRef, channel: &Telegram, channel_title: Option<&str>) -> Option<FeedItem> {
    let post = m.value().attr("data-post")?;
    let (name, id) = post.rsplit_once('/')?;
    if id.is_empty() || !id.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let link = Url::parse(&format!("https://t.me/{name}/{id}")).ok()?;
    let reply = m.select(&REPLY).next();
    let outside_reply = |e: &ElementRef| !reply.is_some_and(|r| e.ancestors().any(|a| a.id() == r.id()));
    let text = m.select(&TEXT).find(outside_reply);

    let mut body = String::new();
    if let Some(from) = m.select(&FORWARDED).next() {
        let name = escape(&text_of(from));
        match from.value().attr("href") {
            Some(href) => write!(body, "<p>Forwarded from <a href=\"{}\">{name}</a></p>", escape(href)),
            None => write!(body, "<p>Forwarded from {name}</p>"),
        }
        .ok()?;
    }
    if let Some(reply) = reply {
        let author = reply.select(&REPLY_AUTHOR).next().map(text_of).unwrap_or_default();
        let quoted = reply.select(&REPLY_TEXT).next().map(|t| message_html(*t)).unwrap_or_default();
        let href = escape(reply.value().attr("href").unwrap_or_default());
        write!(
            body,
            "<blockquote><p><a href=\"{href}\">{}</a></p><p>{quoted}</p></blockquote>",
            escape(&author)
        )
        .ok()?;
    }
    for photo in m.select(&PHOTO) {
        if let Some(src) = background_image(&photo) {
            write!(body, "<figure><img src=\"{}\" alt=\"\"></figure>", escape(&src)).ok()?;
        }
    }
    for thumb in m.select(&VIDEO_THUMB) {
        if let Some(src) = background_image(&thumb) {
            write!(
                body,
                "<figure><a href=\"{}\"><img src=\"{}\" alt=\"Video\"></a></figure>",
                escape(link.as_str()),
                escape(&src)
            )
            .ok()?;
        }
    }
    if let Some(text) = text {
        write!(body, "<p>{}</p>", message_html(*text)).ok()?;
    }
    let preview = m.select(&PREVIEW).next();
    let cites = preview.and_then(|p| p.value().attr("href")).and_then(|h| Url::parse(h).ok());
    if let (Some(preview), Some(cited)) = (preview, &cites) {
        let part = |s: &Selector| preview.select(s).next().map(text_of).filter(|t| !t.is_empty());
        let heading = [part(&PREVIEW_SITE), part(&PREVIEW_TITLE)].into_iter().flatten().collect::<Vec<_>>();
        let heading = if heading.is_empty() { cited.to_string() } else { heading.join(": ") };
        write!(body, "<blockquote><p><a href=\"{}\">{}</a></p>", escape(cited.as_str()), escape(&heading))
            .ok()?;
        if let Some(description) = part(&PREVIEW_DESCRIPTION) {
            write!(body, "<p>{}</p>", escape(&description)).ok()?;
        }
        if let Some(src) = preview.select(&PREVIEW_IMAGE).next().and_then(|i| background_image(&i)) {
            write!(body, "<img src=\"{}\" alt=\"\">", escape(&src)).ok()?;
        }
        body.push_str("</blockquote>");
    }

    let first_line = text.map(|t| first_line(*t)).filter(|l| !l.is_empty());
    let title = first_line.map(|l| shorten(&l)).unwrap_or_else(|| {
        let what = if m.select(&PHOTO).next().is_some() {
            "a photo"
        } else if m.select(&VIDEO_THUMB).next().is_some() {
            "a video"
        } else {
            "a message"
        };
        format!("@{} posted {what}", channel.channel)
    });
    let author = m
        .select(&SIGNATURE)
        .next()
        .or_else(|| m.select(&OWNER).next())
        .map(text_of)
        .filter(|a| !a.is_empty())
        .or_else(|| channel_title.map(str::to_owned));
    let published = m.select(&DATE).next().and_then(|t| t.value().attr("datetime")).and_then(parse_date);
    Some(FeedItem {
        guid: link.to_string(),
        link: Some(link),
        title,
        author,
        published: plausible(published),
        updated: None,
        categories: Vec::new(),
        summary: None,
        content: (!body.is_empty()).then_some(body),
        image: None,
        language: None,
        cites,
    })
}

fn text_of(element: ElementRef) -> String {
    plain_line(&element.text().collect::<String>())
}

/// The URL of an inline `background-image:url('…')`, as the preview shows photos and posters.
fn background_image(element: &ElementRef) -> Option<String> {
    let style = element.value().attr("style")?;
    let start = style.find("background-image")?;
    let rest = &style[start..];
    let open = rest.find("url(")? + 4;
    let close = rest[open..].find(')')? + open;
    let inner = rest[open..close].trim().trim_matches(['\'', '"']);
    Url::parse(inner).ok().filter(|u| matches!(u.scheme(), "http" | "https")).map(String::from)
}

/// The message text as plain HTML: its text, line breaks, links and inline formatting; emoji
/// wrappers (an image behind the character) become the character, everything else its content.
fn message_html(node: NodeRef<Node>) -> String {
    let mut out = String::new();
    write_message(node, &mut out);
    out
}

fn write_message(node: NodeRef<Node>, out: &mut String) {
    for child in node.children() {
        match child.value() {
            Node::Text(text) => out.push_str(&escape(text)),
            Node::Element(element) => {
                let name = element.name();
                let emoji = name == "tg-emoji"
                    || element.has_class("emoji", scraper::CaseSensitivity::AsciiCaseInsensitive);
                match name {
                    "br" => out.push_str("<br>"),
                    _ if emoji => ElementRef::wrap(child)
                        .into_iter()
                        .for_each(|e| out.push_str(&escape(&e.text().collect::<String>()))),
                    "a" => match element.attr("href") {
                        Some(href) => {
                            let _ = write!(out, "<a href=\"{}\">", escape(href));
                            write_message(child, out);
                            out.push_str("</a>");
                        }
                        None => write_message(child, out),
                    },
                    "b" | "strong" | "i" | "em" | "u" | "s" | "del" | "code" | "pre" | "blockquote" => {
                        let _ = write!(out, "<{name}>");
                        write_message(child, out);
                        let _ = write!(out, "</{name}>");
                    }
                    _ => write_message(child, out),
                }
            }
            _ => {}
        }
    }
}

/// The text before the message's first line break.
fn first_line(node: NodeRef<Node>) -> String {
    let mut line = String::new();
    for descendant in node.descendants() {
        match descendant.value() {
            Node::Element(e) if e.name() == "br" => break,
            Node::Text(text) => match text.split_once('\n') {
                Some((before, _)) => {
                    line.push_str(before);
                    break;
                }
                None => line.push_str(text),
            },
            _ => {}
        }
    }
    plain_line(&line)
}

/// `text` cut at a word boundary to at most [`TITLE_CHARS`] characters, with an ellipsis.
fn shorten(text: &str) -> String {
    if text.chars().count() <= TITLE_CHARS {
        return text.to_owned();
    }
    let cut: String = text.chars().take(TITLE_CHARS).collect();
    let at_word = cut.rfind(char::is_whitespace).filter(|&i| i > TITLE_CHARS / 2).unwrap_or(cut.len());
    format!("{}…", cut[..at_word].trim_end_matches([' ', ',', ';', ':', '-', '—']))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_first_lines_are_cut_on_a_word() {
        let long = "Повітряні сили: ".to_owned() + &"збито ракету над областю ".repeat(8);
        let title = shorten(&long);
        assert!(title.ends_with('…') && title.chars().count() <= TITLE_CHARS + 1, "{title}");
        assert!(!title.contains("облас…"), "cut inside a word: {title}");
        assert_eq!(shorten("short"), "short");
    }

    #[test]
    fn background_images_are_read_from_inline_styles() {
        let html = scraper::Html::parse_fragment(
            r#"<a class="tgme_widget_message_photo_wrap" style="width:100%;background-image:url('https://cdn4.telesco.pe/file/a.jpg')"></a>"#,
        );
        let a = html.select(&PHOTO).next().unwrap();
        assert_eq!(background_image(&a).as_deref(), Some("https://cdn4.telesco.pe/file/a.jpg"));
    }
}
