//! Site rules: per-host CSS selectors for the article body and the noise inside it.
//!
//! Built-in rules live in `config/sites/*.toml` and are embedded in the binary; rules in the user's
//! config take precedence over them, host by host. A rule for `example.com` also covers its
//! subdomains (`www.example.com`, `en.example.com`).

use serde::Deserialize;

use crate::config::SiteRuleConfig;

/// The built-in rule files, embedded at compile time: (file name, TOML text).
const BUILT_IN: &[(&str, &str)] = &[
    ("unn.toml", include_str!("../../config/sites/unn.toml")),
    ("ukrinform.toml", include_str!("../../config/sites/ukrinform.toml")),
    ("pravda.toml", include_str!("../../config/sites/pravda.toml")),
];

/// A built-in rule file that does not parse (a bug caught by the tests).
#[derive(Debug, thiserror::Error)]
#[error("built-in rule file config/sites/{file}: {message}")]
pub struct RuleFileError {
    file: &'static str,
    message: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RuleFile {
    sites: Vec<SiteRuleConfig>,
}

/// One rule (hosts normalized) and where it came from.
#[derive(Debug, Clone)]
pub struct SiteRule {
    pub hosts: Vec<String>,
    pub spec: SiteRuleConfig,
    /// `config/sites/<file>` or `user config`, for messages.
    pub origin: String,
}

/// All rules, user rules first.
#[derive(Debug, Clone, Default)]
pub struct SiteRules {
    rules: Vec<SiteRule>,
}

impl SiteRules {
    /// The user's rules followed by the built-in ones.
    pub fn new(user: &[SiteRuleConfig]) -> Result<SiteRules, RuleFileError> {
        let mut rules: Vec<SiteRule> =
            user.iter().map(|r| SiteRule::from_config(r, "user config".into())).collect();
        for (file, text) in BUILT_IN {
            let parsed: RuleFile =
                toml::from_str(text).map_err(|e| RuleFileError { file, message: e.to_string() })?;
            rules.extend(
                parsed.sites.iter().map(|r| SiteRule::from_config(r, format!("config/sites/{file}"))),
            );
        }
        Ok(SiteRules { rules })
    }

    /// The rule for a host: the first (user before built-in) whose hosts cover it, most specific first.
    pub fn for_host(&self, host: &str) -> Option<&SiteRule> {
        let host = host.trim_end_matches('.').to_ascii_lowercase();
        let covers = |rule_host: &str| host == rule_host || host.ends_with(&format!(".{rule_host}"));
        self.rules
            .iter()
            .filter_map(|rule| {
                let best = rule.hosts.iter().filter(|h| covers(h)).map(String::len).max()?;
                Some((rule, best))
            })
            // Among matches keep list order (user first) but prefer a longer, more specific host.
            .fold(None::<(&SiteRule, usize)>, |best, (rule, len)| match best {
                Some((_, best_len)) if best_len >= len => best,
                _ => Some((rule, len)),
            })
            .map(|(rule, _)| rule)
    }

    /// Every rule, user rules first.
    pub fn iter(&self) -> impl Iterator<Item = &SiteRule> {
        self.rules.iter()
    }

    pub fn len(&self) -> usize {
        self.rules.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }
}

impl SiteRule {
    fn from_config(config: &SiteRuleConfig, origin: String) -> SiteRule {
        SiteRule {
            hosts: config
                .hosts
                .iter()
                .map(|h| h.trim().trim_start_matches("www.").to_ascii_lowercase())
                .collect(),
            spec: config.clone(),
            origin,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::CssSelector;

    #[test]
    fn built_in_rules_parse_and_cover_unn_editions() {
        let rules = SiteRules::new(&[]).unwrap();
        for host in ["unn.ua", "www.unn.ua", "en.unn.ua"] {
            assert!(rules.for_host(host).is_some(), "{host}");
        }
        assert!(rules.for_host("notunn.ua").is_none());
    }

    #[test]
    fn user_rule_overrides_built_in() {
        let user = SiteRuleConfig {
            hosts: vec!["unn.ua".into()],
            body: vec![CssSelector::parse("main").unwrap()],
            ..Default::default()
        };
        let rules = SiteRules::new(&[user]).unwrap();
        let rule = rules.for_host("unn.ua").unwrap();
        assert_eq!(rule.origin, "user config");
        assert_eq!(rule.spec.body[0].text, "main");
    }
}
