//! Deduplication keys: what makes two items "the same story", layer by layer.
//!
//! 1. The per-source GUID (the store keeps every GUID a source delivered; a GUID repeated
//!    within one feed counts once, its first occurrence wins).
//! 2. The canonical link ([`LinkRules::canonical`]): the same article announced by two rubric
//!    feeds, with tracking parameters, as its AMP variant, or under the page's own
//!    `<link rel="canonical">`, is one item.
//! 3. The exact content fingerprint and 4. near-duplicate clusters ([`near`]): the same story
//!    republished by another site.
//! 5. Language editions ([`Edition`]): a report whose page declares another report's canonical
//!    link as its translation (or is declared by it) is the same story in another language.
//!
//! The store applies the layers in that order, in its writer; layers 3–5 gather reports into
//! stories, each published once.

pub mod index;
pub mod near;

use url::Url;

/// Query parameters that only track the reader and never change the page.
pub const TRACKING_PARAMS: &[&str] = &["fbclid", "gclid", "yclid", "mc_cid", "mc_eid", "_ga", "igshid"];

/// Another report of an item's story, by the link it declares: another language edition (its
/// page's hreflang or JSON-LD translations, with the language, normalized), or the article a
/// Telegram post cites (no language). Either way the two join one story, in whichever order they
/// arrive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Edition {
    pub link: String,
    pub language: Option<String>,
}

/// How links are made canonical: the built-in tracking parameters plus the user's own.
#[derive(Debug, Clone, Default)]
pub struct LinkRules {
    /// Extra tracking parameter names (lower-case), from `[dedup] tracking_params`.
    pub extra_tracking: Vec<String>,
}

impl LinkRules {
    fn is_tracking(&self, key: &str) -> bool {
        let key = key.to_ascii_lowercase();
        key.starts_with("utm_")
            || TRACKING_PARAMS.contains(&key.as_str())
            || self.extra_tracking.contains(&key)
    }

    /// The canonical form of an article link: lower-case host (the `url` crate already
    /// lower-cases it and drops a default port), no fragment, no tracking parameters, AMP
    /// markers (`amp=1`, `outputType=amp`, a trailing `/amp` segment) removed, remaining
    /// parameters in order.
    pub fn canonical(&self, link: &Url) -> String {
        let mut url = link.clone();
        url.set_fragment(None);
        if let Some(path) = url.path().strip_suffix("/amp").or_else(|| url.path().strip_suffix("/amp/")) {
            let path = if path.is_empty() { "/".to_owned() } else { path.to_owned() };
            url.set_path(&path);
        }
        let kept: Vec<(String, String)> = url
            .query_pairs()
            .filter(|(key, value)| !self.is_tracking(key) && !is_amp_marker(key, value))
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
        if kept.is_empty() {
            url.set_query(None);
        } else {
            url.query_pairs_mut().clear().extend_pairs(kept);
        }
        url.to_string()
    }
}

fn is_amp_marker(key: &str, value: &str) -> bool {
    let key = key.to_ascii_lowercase();
    (key == "amp" && matches!(value, "" | "1" | "true"))
        || (key == "outputtype" && value.eq_ignore_ascii_case("amp"))
}

/// [`LinkRules::canonical`] with the built-in tracking parameters only.
pub fn canonical_link(link: &Url) -> String {
    LinkRules::default().canonical(link)
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
    fn amp_variants_and_configured_parameters() {
        let plain = canon("https://e.com/news/a");
        for amp in [
            "https://e.com/news/a/amp",
            "https://e.com/news/a/amp/",
            "https://e.com/news/a?amp=1",
            "https://e.com/news/a?outputType=amp",
        ] {
            assert_eq!(canon(amp), plain, "{amp}");
        }
        let rules = LinkRules { extra_tracking: vec!["ref".into()] };
        assert_eq!(
            rules.canonical(&Url::parse("https://e.com/news/a?ref=tg&id=2").unwrap()),
            "https://e.com/news/a?id=2"
        );
        assert_eq!(canon("https://e.com/news/a?ref=tg"), "https://e.com/news/a?ref=tg", "not by default");
    }

    #[test]
    fn meaningful_parameters_stay() {
        assert_eq!(canon("https://e.com/a?id=5&utm_source=x&page=2"), "https://e.com/a?id=5&page=2");
        assert_ne!(canon("https://e.com/a?id=5"), canon("https://e.com/a?id=6"));
    }
}
