//! Item filters: which items a source keeps and which the merged feed shows.
//!
//! A filter is two lists of patterns, `include` and `exclude`; an item passes when the include
//! list is empty or one of its patterns matches, and no exclude pattern matches. A pattern is
//! `[field:]text` or `[field:]/regex/`, where `field` is `title`, `body`, `author` or `tags`
//! (without one, any of them). Text matches case-insensitively anywhere in the field (for tags:
//! one whole tag, case-insensitively); a regex uses Rust's `regex` syntax (add `(?i)` to ignore
//! case).

use regex::Regex;

/// Which part of an item a pattern looks at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Field {
    Any,
    Title,
    Body,
    Author,
    Tags,
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
            Field::Any => text(item.title) || text(item.body) || text(item.author) || tags(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item<'a>(title: &'a str, tags: &'a [String]) -> ItemText<'a> {
        ItemText { title, body: "Body about the Kyiv metro.", author: "Olena", tags }
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
