//! Item filters: which items a source keeps and which the merged feed shows.
//!
//! A filter is two lists of patterns, `include` and `exclude`; an item passes when the include
//! list is empty or one of its patterns matches, and no exclude pattern matches. A pattern is
//! `[field:]text` or `[field:]/regex/`, where `field` is `title`, `body`, `author`, `tags` or
//! `language` (without one, any of the first four). Text matches case-insensitively anywhere in
//! the field (for tags: one whole tag, case-insensitively; for the language: the tag or one of
//! its regional forms, so `language:uk` matches `uk` and `uk-UA`); a regex uses Rust's `regex`
//! syntax (add `(?i)` to ignore case).

use regex::Regex;

/// Which part of an item a pattern looks at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Field {
    Any,
    Title,
    Body,
    Author,
    Tags,
    Language,
}

#[derive(Debug, Clone)]
enum Matcher {
    /// Lower-cased text.
    Text(String),
    Regex(Regex),
}

#[derive(Debug, Clone)]
struct Pattern {
    field: Field,
    matcher: Matcher,
}

/// What a filter looks at in an item.
pub struct ItemText<'a> {
    pub title: &'a str,
    pub body: &'a str,
    pub author: &'a str,
    pub tags: &'a [String],
    /// Normalized ([`crate::language::normalize`]); empty when unknown.
    pub language: &'a str,
}

/// A validated include/exclude filter.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    include: Vec<Pattern>,
    exclude: Vec<Pattern>,
}

impl Filter {
    /// Parses both lists; the error names the pattern and says what is wrong with it.
    pub fn new(include: &[String], exclude: &[String]) -> Result<Filter, String> {
        let parse = |list: &[String]| list.iter().map(|p| parse_pattern(p)).collect::<Result<Vec<_>, _>>();
        Ok(Filter { include: parse(include)?, exclude: parse(exclude)? })
    }

    pub fn is_empty(&self) -> bool {
        self.include.is_empty() && self.exclude.is_empty()
    }

    /// Whether an item passes.
    pub fn accepts(&self, item: &ItemText) -> bool {
        (self.include.is_empty() || self.include.iter().any(|p| p.matches(item)))
            && !self.exclude.iter().any(|p| p.matches(item))
    }
}

fn parse_pattern(raw: &str) -> Result<Pattern, String> {
    let (field, rest) = match raw.split_once(':') {
        Some(("title", rest)) => (Field::Title, rest),
        Some(("body", rest)) => (Field::Body, rest),
        Some(("author", rest)) => (Field::Author, rest),
        Some(("tags", rest)) => (Field::Tags, rest),
        Some(("language", rest)) => (Field::Language, rest),
        _ => (Field::Any, raw),
    };
    let matcher = match rest.strip_prefix('/').and_then(|r| r.strip_suffix('/')) {
        Some(regex) if !regex.is_empty() => {
            Matcher::Regex(Regex::new(regex).map_err(|e| format!("pattern `{raw}`: invalid regex: {e}"))?)
        }
        _ if rest.trim().is_empty() => return Err(format!("pattern `{raw}` is empty")),
        _ => Matcher::Text(rest.trim().to_lowercase()),
    };
    Ok(Pattern { field, matcher })
}

impl Pattern {
    fn matches(&self, item: &ItemText) -> bool {
        let text = |value: &str| match &self.matcher {
            Matcher::Text(needle) => value.to_lowercase().contains(needle.as_str()),
            Matcher::Regex(regex) => regex.is_match(value),
        };
        let tags = || {
            item.tags.iter().any(|tag| match &self.matcher {
                Matcher::Text(needle) => tag.to_lowercase() == *needle,
                Matcher::Regex(regex) => regex.is_match(tag),
            })
        };
        match self.field {
            Field::Title => text(item.title),
            Field::Body => text(item.body),
            Field::Author => text(item.author),
            Field::Tags => tags(),
            Field::Language => match &self.matcher {
                Matcher::Text(wanted) => {
                    !item.language.is_empty() && crate::language::matches(item.language, wanted)
                }
                Matcher::Regex(regex) => regex.is_match(item.language),
            },
            Field::Any => text(item.title) || text(item.body) || text(item.author) || tags(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item<'a>(title: &'a str, tags: &'a [String]) -> ItemText<'a> {
        ItemText { title, body: "Body about the Kyiv metro.", author: "Olena", tags, language: "uk-ua" }
    }

    #[test]
    fn language_matches_the_tag_or_its_regional_forms() {
        let uk = Filter::new(&["language:uk".into()], &[]).unwrap();
        assert!(uk.accepts(&item("x", &[])));
        let en = Filter::new(&["language:en".into()], &[]).unwrap();
        assert!(!en.accepts(&item("x", &[])));
        let unknown = ItemText { language: "", ..item("x", &[]) };
        assert!(!uk.accepts(&unknown), "an unknown language matches no language");
        assert!(Filter::new(&[], &["language:ru".into()]).unwrap().accepts(&unknown));
        // Without a field, a pattern does not look at the language.
        assert!(!Filter::new(&["uk-ua".into()], &[]).unwrap().accepts(&item("x", &[])));
    }

    #[test]
    fn include_and_exclude_by_field_text_and_regex() {
        let tags = vec!["Спорт".to_owned(), "Kyiv".to_owned()];
        let filter =
            Filter::new(&["/(?i)україн|ukrain/".into(), "body:metro".into()], &["tags:спорт".into()])
                .unwrap();
        assert!(!filter.accepts(&item("Україна виграла", &tags)), "excluded by tag, case-insensitively");
        assert!(filter.accepts(&item("Україна виграла", &[])));
        assert!(filter.accepts(&item("Anything", &[])), "included by body");
        let strict = Filter::new(&["title:war".into()], &[]).unwrap();
        assert!(!strict.accepts(&item("Peace talks", &[])));
        assert!(strict.accepts(&item("WAR update", &[])));
        assert!(Filter::new(&[], &["author:/(/".into()]).unwrap_err().contains("invalid regex"));
        assert!(Filter::new(&["title:".into()], &[]).unwrap_err().contains("empty"));
        assert!(Filter::default().accepts(&item("x", &[])));
    }
}
