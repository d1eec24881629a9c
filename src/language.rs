//! Language tags (BCP 47) as feedmill stores and compares them: one normalized form, and a
//! preference that matches by prefix (`uk` matches `uk`, `uk-UA` and `uk_UA`).

/// The stored form of a tag from a page or feed: trimmed, lower-case, `_` as `-` (`og:locale`
/// writes `uk_UA`). `None` for an empty tag, `x-default` (hreflang's "any other language") and
/// anything that is not letters, digits and hyphens.
pub fn normalize(raw: &str) -> Option<String> {
    let tag = raw.trim().replace('_', "-").to_ascii_lowercase();
    let valid = !tag.is_empty()
        && tag.len() <= 35
        && tag.split('-').all(|part| !part.is_empty() && part.chars().all(|c| c.is_ascii_alphanumeric()))
        && tag.chars().next().is_some_and(|c| c.is_ascii_alphabetic());
    (valid && tag != "x-default").then_some(tag)
}

/// Whether `tag` (normalized) is `wanted` or one of its regional forms.
pub fn matches(tag: &str, wanted: &str) -> bool {
    let wanted = wanted.trim().to_ascii_lowercase().replace('_', "-");
    tag == wanted || tag.strip_prefix(wanted.as_str()).is_some_and(|rest| rest.starts_with('-'))
}

/// The language part of a tag: `uk` of `uk-ua`.
pub fn primary(tag: &str) -> &str {
    tag.split('-').next().unwrap_or(tag)
}

/// Where `tag` stands in an ordered preference list: its first match's position, after every
/// listed language when it matches none (or is unknown).
pub fn rank(tag: Option<&str>, preferred: &[String]) -> usize {
    tag.and_then(|tag| preferred.iter().position(|wanted| matches(tag, wanted))).unwrap_or(preferred.len())
}

/// The English name of common languages, for "Also in English"; else the tag itself.
pub fn name(tag: &str) -> String {
    let name = match primary(tag) {
        "uk" => "Ukrainian",
        "en" => "English",
        "ru" => "Russian",
        "pl" => "Polish",
        "de" => "German",
        "fr" => "French",
        "es" => "Spanish",
        "it" => "Italian",
        "pt" => "Portuguese",
        "ro" => "Romanian",
        "cs" => "Czech",
        "sk" => "Slovak",
        "hu" => "Hungarian",
        "be" => "Belarusian",
        "ka" => "Georgian",
        "tr" => "Turkish",
        "ar" => "Arabic",
        "zh" => "Chinese",
        "ja" => "Japanese",
        "crh" => "Crimean Tatar",
        _ => return tag.to_owned(),
    };
    name.to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_are_normalized() {
        assert_eq!(normalize(" uk_UA ").as_deref(), Some("uk-ua"));
        assert_eq!(normalize("EN").as_deref(), Some("en"));
        assert_eq!(normalize("x-default"), None);
        assert_eq!(normalize(""), None);
        assert_eq!(normalize("en us"), None);
        assert_eq!(normalize("-en"), None);
    }

    #[test]
    fn preferences_match_by_prefix() {
        assert!(matches("uk-ua", "uk"));
        assert!(matches("uk", "UK"));
        assert!(!matches("ukr", "uk"));
        let preferred = vec!["uk".to_owned(), "en".to_owned()];
        assert_eq!(rank(Some("en-gb"), &preferred), 1);
        assert_eq!(rank(Some("uk"), &preferred), 0);
        assert_eq!(rank(Some("ru"), &preferred), 2);
        assert_eq!(rank(None, &preferred), 2);
        assert_eq!(name("en-gb"), "English");
        assert_eq!(name("xx"), "xx");
    }
}
