//! Deduplication keys: what makes two items "the same article".
//!
//! At this stage: the per-source GUID (kept by the store) and the canonical link, so the same
//! article announced by two rubric feeds, or with tracking parameters added, is one item.

use url::Url;

/// Query parameters that only track the reader and never change the page.
const TRACKING_PARAMS: &[&str] = &["fbclid", "gclid", "yclid", "mc_cid", "mc_eid", "_ga", "igshid"];

fn is_tracking(key: &str) -> bool {
    let key = key.to_ascii_lowercase();
    key.starts_with("utm_") || TRACKING_PARAMS.contains(&key.as_str())
}

/// The canonical form of an article link: lower-case host (the `url` crate already lower-cases it
/// and drops a default port), no fragment, no tracking parameters, remaining parameters in order.
pub fn canonical_link(link: &Url) -> String {
    let mut url = link.clone();
    url.set_fragment(None);
    let kept: Vec<(String, String)> = url
        .query_pairs()
        .filter(|(key, _)| !is_tracking(key))
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    if kept.is_empty() {
        url.set_query(None);
    } else {
        url.query_pairs_mut().clear().extend_pairs(kept);
    }
    url.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn canon(s: &str) -> String {
        canonical_link(&Url::parse(s).unwrap())
    }

    #[test]
    fn tracking_variants_are_one_link() {
        let plain = canon("https://unn.ua/en/news/a");
        for variant in [
            "https://UNN.ua/en/news/a#comments",
            "https://unn.ua:443/en/news/a?utm_source=rss&utm_medium=feed",
            "https://unn.ua/en/news/a?fbclid=123&gclid=x",
        ] {
            assert_eq!(canon(variant), plain, "{variant}");
        }
    }

    #[test]
    fn meaningful_parameters_stay() {
        assert_eq!(canon("https://e.com/a?id=5&utm_source=x&page=2"), "https://e.com/a?id=5&page=2");
        assert_ne!(canon("https://e.com/a?id=5"), canon("https://e.com/a?id=6"));
    }
}
