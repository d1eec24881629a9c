//! A story's page (`GET /stories/{id}`, server-rendered HTML without JavaScript, and
//! `/stories/{id}.json`): every report of the story — source, language, published time, title,
//! link — with the published one marked. Entry ids of the merged feed resolve to it.

use std::fmt::Write;

use chrono::DateTime;
use serde_json::json;
use url::Url;

use super::atom::escape;
use super::rfc3339;
use crate::language;
use crate::store::StoryPage;

/// The page as HTML; `title` is the merged feed's.
pub fn html(title: &str, public_url: &Url, page: &StoryPage) -> String {
    let headline = page.reports.first().map(|r| escape(&r.title)).unwrap_or_default();
    let mut out = String::with_capacity(2048 + page.reports.len() * 512);
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{headline} — {}</title>\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n<style>{STYLE}</style></head>\n\
         <body><p><a href=\"{}\">{}</a></p>\n<h1>{headline}</h1>\n<p>{} of this story. The feeds publish the marked one.</p>\n\
         <table>\n<thead><tr><th></th><th>source</th><th>language</th><th>published</th><th>title</th></tr></thead>\n<tbody>\n",
        escape(title),
        escape(public_url.as_str()),
        escape(title),
        match page.reports.len() {
            1 => "One report".to_owned(),
            n => format!("{n} reports"),
        },
    );
    for report in &page.reports {
        let title = escape(&report.title);
        let title = match &report.link {
            Some(link) => {
                let lang = report
                    .language
                    .as_deref()
                    .map(|l| format!(" hreflang=\"{}\"", escape(l)))
                    .unwrap_or_default();
                format!("<a href=\"{}\"{lang}>{title}</a>", escape(link))
            }
            None => title,
        };
        let _ = writeln!(
            out,
            "<tr{}><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{title}</td></tr>",
            if report.is_published { " class=\"published\"" } else { "" },
            if report.is_published { "published" } else { "" },
            escape(&report.source_title),
            report.language.as_deref().map(|l| escape(&language::name(l))).unwrap_or_else(|| "—".into()),
            DateTime::from_timestamp(report.published, 0)
                .map(|t| t.format("%Y-%m-%d %H:%M UTC").to_string())
                .unwrap_or_default(),
        );
    }
    out.push_str("</tbody></table>\n</body></html>\n");
    out
}

/// The page as JSON: `{id, url, reports: [{source, source_title, language, published, title,
/// url, published_report}]}`.
pub fn json(public_url: &Url, page: &StoryPage) -> String {
    let reports: Vec<serde_json::Value> = page
        .reports
        .iter()
        .map(|r| {
            json!({
                "source": r.source,
                "source_title": r.source_title,
                "language": r.language,
                "published": DateTime::from_timestamp(r.published, 0).map(|t| rfc3339(&t)),
                "title": r.title,
                "url": r.link,
                "published_report": r.is_published,
            })
        })
        .collect();
    let story = json!({
        "id": page.story.id,
        "url": format!("{public_url}stories/{}", page.story.id),
        "reports": reports,
    });
    serde_json::to_string_pretty(&story).unwrap_or_default()
}

const STYLE: &str = "body{font:15px/1.4 system-ui,sans-serif;margin:1.5em;color:#222}\
    table{border-collapse:collapse;width:100%}th,td{text-align:left;padding:.35em .6em;border-bottom:1px solid #ddd;vertical-align:top}\
    th{background:#f4f4f4}tr.published{background:#eef5ff;font-weight:600}";

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{Report, StoryRef};

    fn page() -> StoryPage {
        let report = |source: &str, language: &str, published: bool| Report {
            source: source.into(),
            source_title: format!("{source} <news>"),
            language: Some(language.into()),
            published: 1_764_000_000,
            title: format!("Title & {source}"),
            link: Some(format!("https://{source}.example/a?x=1&y=2")),
            is_published: published,
        };
        StoryPage {
            story: StoryRef { id: 7, legacy: false, changed_at: None },
            reports: vec![report("unn", "uk", true), report("ukrinform", "en", false)],
        }
    }

    #[test]
    fn lists_every_report_with_the_published_one_marked() {
        let url = Url::parse("http://feeds.example/").unwrap();
        let html = html("My feeds", &url, &page());
        assert!(html.contains("<h1>Title &amp; unn</h1>"));
        assert!(html.contains("2 reports"));
        assert_eq!(html.matches("class=\"published\"").count(), 1);
        assert!(html.contains("unn &lt;news&gt;") && html.contains("English") && html.contains("Ukrainian"));
        assert!(html.contains("href=\"https://ukrinform.example/a?x=1&amp;y=2\" hreflang=\"en\""));
        assert!(html.contains("2025-11-24 16:00 UTC") && !html.contains("<script"));
        let json: serde_json::Value = serde_json::from_str(&json(&url, &page())).unwrap();
        assert_eq!(json["url"], "http://feeds.example/stories/7");
        assert_eq!(json["reports"][0]["published_report"], true);
        assert_eq!(json["reports"][1]["language"], "en");
        assert_eq!(json["reports"][1]["published"], "2025-11-24T16:00:00Z");
    }
}
