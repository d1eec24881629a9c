//! Bytes → text for HTML pages: the charset from the HTTP header, a BOM or `<meta charset>`,
//! else UTF-8 (invalid sequences replaced, never an error).

use encoding_rs::Encoding;

/// Decodes an HTML document.
pub fn decode_html(bytes: &[u8], content_type: Option<&str>) -> String {
    if let Some((encoding, bom_len)) = Encoding::for_bom(bytes) {
        return encoding.decode_without_bom_handling(&bytes[bom_len..]).0.into_owned();
    }
    let encoding =
        content_type.and_then(charset_param).or_else(|| meta_charset(bytes)).unwrap_or(encoding_rs::UTF_8);
    encoding.decode_without_bom_handling(bytes).0.into_owned()
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

/// `<meta charset=..>` or `<meta http-equiv content="..charset=..">` in the first 2 KiB.
fn meta_charset(bytes: &[u8]) -> Option<&'static Encoding> {
    let head = String::from_utf8_lossy(&bytes[..bytes.len().min(2048)]).to_ascii_lowercase();
    let at = head.find("charset=")? + "charset=".len();
    let value: String = head[at..]
        .trim_start_matches(['"', '\''])
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | ':' | '.'))
        .collect();
    let encoding = Encoding::for_label(value.as_bytes())?;
    // A page that declares UTF-16 in ASCII-compatible bytes is really UTF-8 (HTML spec).
    Some(if encoding == encoding_rs::UTF_16LE || encoding == encoding_rs::UTF_16BE {
        encoding_rs::UTF_8
    } else {
        encoding
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_charset_wins() {
        let (bytes, _, _) = encoding_rs::WINDOWS_1251.encode("<p>Київ</p>");
        assert_eq!(decode_html(&bytes, Some("text/html; charset=windows-1251")), "<p>Київ</p>");
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
}
