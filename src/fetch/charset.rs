//! Bytes → text: which character encoding a feed or page is in, and decoding it.
//!
//! Order of evidence: a byte-order mark (it wins over any declaration), the HTTP `charset`
//! parameter, the document's own declaration (`<?xml encoding=…?>` for feeds, `<meta charset>` for
//! pages), and finally detection (chardetng) when the bytes are not valid UTF-8. A declared UTF-8
//! that the bytes contradict is treated as no declaration at all — a common server misconfiguration.

use std::sync::LazyLock;

use encoding_rs::{Encoding, UTF_16BE, UTF_16LE, UTF_8};
use regex::bytes::Regex;

static XML_ENCODING: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r#"^\s*<\?xml[^>]*?encoding\s*=\s*["']([A-Za-z0-9._:\-]+)["']"#)
        .unwrap_or_else(|e| unreachable!("static regex: {e}"))
});
static XML_DECLARATION: LazyLock<regex::Regex> = LazyLock::new(|| {
    regex::Regex::new(r#"^(\s*<\?xml[^>]*?encoding\s*=\s*)["'][A-Za-z0-9._:\-]+["']"#)
        .unwrap_or_else(|e| unreachable!("static regex: {e}"))
});

/// Decodes an HTML document.
///
/// Pages are more often mislabelled than feeds (saved copies, mirrors, templates that say
/// ISO-8859-1 around UTF-8 text), so two more rules hold for them: bytes that are valid UTF-8 and
/// not plain ASCII are UTF-8 whatever a legacy declaration says (legacy text is valid UTF-8 by
/// accident almost never), and a page declared UTF-8 — or undeclared — that is UTF-8 but for a few
/// stray bytes stays UTF-8 (those bytes become U+FFFD) instead of being read as windows-1252.
pub fn decode_html(bytes: &[u8], content_type: Option<&str>) -> String {
    let (encoding, body) = sniff(bytes, content_type, meta_charset, mostly_utf8);
    let encoding = if encoding != UTF_8
        && encoding.is_ascii_compatible()
        && !body.is_ascii()
        && std::str::from_utf8(body).is_ok()
    {
        UTF_8
    } else {
        encoding
    };
    encoding.decode_without_bom_handling(body).0.into_owned()
}

/// How many valid multi-byte characters a page needs per stray byte sequence to stay UTF-8.
const STRAY_BYTES: usize = 2;

/// UTF-8 but for a few stray bytes (an ASCII page is UTF-8 too).
fn mostly_utf8(bytes: &[u8]) -> bool {
    if std::str::from_utf8(bytes).is_ok() {
        return true;
    }
    let (mut valid, mut invalid) = (0usize, 0usize);
    let mut rest = bytes;
    loop {
        match std::str::from_utf8(rest) {
            Ok(text) => {
                valid += text.bytes().filter(|b| *b >= 0xC0).count();
                break;
            }
            Err(error) => {
                let (good, after) = rest.split_at(error.valid_up_to());
                valid += good.iter().filter(|b| **b >= 0xC0).count();
                invalid += 1;
                rest = &after[error.error_len().unwrap_or(after.len())..];
            }
        }
    }
    valid >= invalid * STRAY_BYTES
}

/// A feed as UTF-8 bytes, with its XML declaration (if any) rewritten to say so, ready for a
/// parser that trusts the declaration.
pub fn feed_to_utf8(bytes: &[u8], content_type: Option<&str>) -> Vec<u8> {
    let (encoding, body) = sniff(bytes, content_type, xml_declared, |b| std::str::from_utf8(b).is_ok());
    if encoding == UTF_8 && !XML_ENCODING.is_match(body) {
        return body.to_vec();
    }
    let text = encoding.decode_without_bom_handling(body).0;
    XML_DECLARATION.replace(&text, "${1}\"utf-8\"").into_owned().into_bytes()
}

/// The encoding and the bytes to decode (without a BOM).
fn sniff<'a>(
    bytes: &'a [u8],
    content_type: Option<&str>,
    declared: fn(&[u8]) -> Option<&'static Encoding>,
    utf8: fn(&[u8]) -> bool,
) -> (&'static Encoding, &'a [u8]) {
    if let Some((encoding, bom_len)) = Encoding::for_bom(bytes) {
        return (encoding, &bytes[bom_len..]);
    }
    if let Some(encoding) = utf16_without_bom(bytes) {
        return (encoding, bytes);
    }
    let plausible = |e: &&'static Encoding| *e != UTF_8 || utf8(bytes);
    let encoding = content_type
        .and_then(charset_param)
        .filter(plausible)
        .or_else(|| declared(bytes).filter(plausible))
        .unwrap_or_else(|| detect(bytes, utf8));
    (encoding, bytes)
}

/// UTF-16 text without a BOM still starts with `<` as a 16-bit unit.
fn utf16_without_bom(bytes: &[u8]) -> Option<&'static Encoding> {
    match bytes {
        [b'<', 0, next, 0, ..] if *next != 0 => Some(UTF_16LE),
        [0, b'<', 0, next, ..] if *next != 0 => Some(UTF_16BE),
        _ => None,
    }
}

fn detect(bytes: &[u8], utf8: fn(&[u8]) -> bool) -> &'static Encoding {
    if utf8(bytes) {
        return UTF_8;
    }
    let mut detector = chardetng::EncodingDetector::new(chardetng::Iso2022JpDetection::Deny);
    detector.feed(bytes, true);
    detector.guess(None, chardetng::Utf8Detection::Allow)
}

/// The `charset=` parameter of a Content-Type value.
fn charset_param(content_type: &str) -> Option<&'static Encoding> {
    content_type.split(';').skip(1).find_map(|param| {
        let (key, value) = param.split_once('=')?;
        key.trim()
            .eq_ignore_ascii_case("charset")
            .then(|| Encoding::for_label(value.trim().trim_matches('"').as_bytes()))
            .flatten()
    })
}

/// `<?xml … encoding="…"?>`.
fn xml_declared(bytes: &[u8]) -> Option<&'static Encoding> {
    let head = &bytes[..bytes.len().min(512)];
    let label = XML_ENCODING.captures(head)?.get(1)?.as_bytes();
    ascii_compatible(Encoding::for_label(label)?)
}

/// `<meta charset=..>` or `<meta http-equiv content="..charset=..">` in the first 2 KiB.
fn meta_charset(bytes: &[u8]) -> Option<&'static Encoding> {
    let head = String::from_utf8_lossy(&bytes[..bytes.len().min(2048)]).to_ascii_lowercase();
    let at = head.find("charset=")? + "charset=".len();
    let value: String = head[at..]
        .trim_start_matches(['"', '\''])
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | ':' | '.'))
        .collect();
    ascii_compatible(Encoding::for_label(value.as_bytes())?)
}

/// A UTF-16 declaration inside ASCII-compatible bytes is wrong; such documents are UTF-8 (as the
/// HTML spec says).
fn ascii_compatible(encoding: &'static Encoding) -> Option<&'static Encoding> {
    Some(if encoding == UTF_16LE || encoding == UTF_16BE { UTF_8 } else { encoding })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn feed(encoding: &'static Encoding, declared: &str) -> Vec<u8> {
        let text = format!("<?xml version=\"1.0\" encoding=\"{declared}\"?><rss><channel><title>Київ</title></channel></rss>");
        encoding.encode(&text).0.into_owned()
    }

    #[test]
    fn header_charset_wins_for_pages() {
        let (bytes, _, _) = encoding_rs::WINDOWS_1251.encode("<p>Київ</p>");
        assert_eq!(decode_html(&bytes, Some("text/html; charset=windows-1251")), "<p>Київ</p>");
    }

    #[test]
    fn valid_utf8_beats_a_legacy_declaration_on_pages() {
        let page = "<meta http-equiv=Content-Type content=\"text/html; charset=ISO-8859-1\"><p>It’s Київ</p>";
        assert!(decode_html(page.as_bytes(), None).ends_with("<p>It’s Київ</p>"));
        assert!(decode_html(page.as_bytes(), Some("text/html; charset=gb2312")).ends_with("Київ</p>"));
        // An ASCII page keeps its declaration (nothing to tell them apart).
        assert_eq!(decode_html(b"<meta charset=iso-8859-1>abc", None), "<meta charset=iso-8859-1>abc");
    }

    #[test]
    fn a_utf8_page_with_a_stray_byte_stays_utf8() {
        let mut page =
            "<meta charset=utf-8><p>“Quoted” — it’s right, naïve café, Київ, Львів, Одеса, Харків</p>"
                .as_bytes()
                .to_vec();
        page.push(0x92); // a windows-1252 apostrophe pasted into UTF-8 text
        let text = decode_html(&page, None);
        assert!(text.contains("“Quoted” — it’s right") && text.ends_with('\u{FFFD}'), "{text}");
        // Undeclared, the same.
        assert!(decode_html(&page[20..], None).starts_with("<p>“Quoted”"));
        // A page that is mostly not UTF-8 is still detected.
        let (cyrillic, _, _) =
            encoding_rs::WINDOWS_1251.encode("<p>Київ — столиця України, найбільше місто країни.</p>");
        assert!(decode_html(&cyrillic, None).contains("Київ — столиця"));
    }

    #[test]
    fn meta_charset_is_used() {
        let (body, _, _) = encoding_rs::KOI8_U.encode("Київ");
        let mut page = b"<html><head><meta charset=\"koi8-u\"></head><body>".to_vec();
        page.extend_from_slice(&body);
        assert!(decode_html(&page, Some("text/html")).ends_with("Київ"));
    }

    #[test]
    fn bom_beats_declaration() {
        let mut page = vec![0xEF, 0xBB, 0xBF];
        page.extend_from_slice("<meta charset=windows-1251>Київ".as_bytes());
        assert!(decode_html(&page, None).ends_with("Київ"));
    }

    #[test]
    fn undeclared_cyrillic_page_is_detected() {
        let text =
            "<p>Уночі сили протиповітряної оборони знешкодили двадцять ударних дронів над областю.</p>";
        let (bytes, _, _) = encoding_rs::WINDOWS_1251.encode(text);
        assert_eq!(decode_html(&bytes, None), text);
    }

    #[test]
    fn feeds_in_legacy_encodings_become_utf8_with_their_declaration() {
        for (encoding, label) in
            [(encoding_rs::WINDOWS_1251, "windows-1251"), (encoding_rs::KOI8_U, "koi8-u")]
        {
            let out = String::from_utf8(feed_to_utf8(&feed(encoding, label), None)).unwrap();
            assert!(out.contains("Київ") && out.contains("encoding=\"utf-8\""), "{out}");
        }
    }

    #[test]
    fn utf16_feeds_decode_with_or_without_bom() {
        let text =
            "<?xml version=\"1.0\" encoding=\"utf-16\"?><rss><channel><title>Київ</title></channel></rss>";
        let le: Vec<u8> = text.encode_utf16().flat_map(u16::to_le_bytes).collect();
        let be: Vec<u8> = text.encode_utf16().flat_map(u16::to_be_bytes).collect();
        let with_bom: Vec<u8> = [0xFF, 0xFE].into_iter().chain(le.iter().copied()).collect();
        for bytes in [le, be, with_bom] {
            let out = String::from_utf8(feed_to_utf8(&bytes, None)).unwrap();
            assert!(out.contains("Київ") && out.contains("encoding=\"utf-8\""), "{out}");
        }
    }

    #[test]
    fn header_charset_beats_xml_declaration_and_bom_beats_both() {
        let bytes = feed(encoding_rs::WINDOWS_1251, "iso-8859-1");
        let out = String::from_utf8(feed_to_utf8(&bytes, Some("application/rss+xml; charset=windows-1251")))
            .unwrap();
        assert!(out.contains("Київ"), "{out}");
        let mut bom = vec![0xEF, 0xBB, 0xBF];
        bom.extend_from_slice(b"<?xml version=\"1.0\" encoding=\"windows-1251\"?><t>");
        bom.extend_from_slice("Київ</t>".as_bytes());
        let out = String::from_utf8(feed_to_utf8(&bom, Some("text/xml; charset=koi8-u"))).unwrap();
        assert!(out.contains("Київ"), "{out}");
    }

    #[test]
    fn a_wrong_utf8_header_falls_back_to_the_declaration() {
        let bytes = feed(encoding_rs::WINDOWS_1251, "windows-1251");
        let out = String::from_utf8(feed_to_utf8(&bytes, Some("text/xml; charset=utf-8"))).unwrap();
        assert!(out.contains("Київ"), "{out}");
    }
}
