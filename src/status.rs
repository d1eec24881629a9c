//! The status page (`GET /`): server-rendered HTML, no JavaScript. Every configured source with
//! its health (ok, erroring since…, backing off until…), last and next poll, last error, items in
//! the last 24 hours and an inline SVG chart of items per day over 14 days; and the feeds' URLs.
//! When several nodes share the database: the nodes (last heartbeat, sources leased now) and which
//! node polled each source last.

use std::fmt::Write;

use chrono::{DateTime, Utc};
use url::Url;

use crate::publish::atom::escape;
use crate::store::{NodeRow, SourceRow};

/// Renders the page for the configured sources (`configured`: their names and kinds; rows of
/// sources no longer configured are left out) and the `nodes` sharing the database (none: one
/// node of its own).
pub fn render(
    title: &str,
    public_url: &Url,
    sources: &[SourceRow],
    configured: &[(String, &'static str)],
    nodes: &[NodeRow],
    now: i64,
) -> String {
    let mut out = String::with_capacity(8192 + sources.len() * 1024);
    let title = escape(title);
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{title} — status</title>\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n<style>{STYLE}</style></head>\n\
         <body><h1>{title}</h1>\n<p class=\"feeds\">Feeds: "
    );
    for (i, format) in ["atom", "rss", "json"].iter().enumerate() {
        let url = escape(&format!("{public_url}feed.{format}"));
        let _ = write!(out, "{}<a href=\"{url}\">{url}</a>", if i > 0 { " · " } else { "" });
    }
    let kind_of = |name: &str| configured.iter().find(|(n, _)| n == name).map(|(_, kind)| *kind);
    let shown: Vec<(&SourceRow, &str)> =
        sources.iter().filter_map(|s| Some((s, kind_of(&s.name)?))).collect();
    let healthy = shown.iter().filter(|(s, _)| s.error_count == 0).count();
    let _ = write!(
        out,
        "</p>\n<p>{} sources, {healthy} healthy, {} failing. Rendered {}.</p>\n",
        shown.len(),
        shown.len() - healthy,
        time(Some(now))
    );
    if !nodes.is_empty() {
        render_nodes(&mut out, nodes);
    }
    let _ = write!(
        out,
        "<table>\n<thead><tr><th>source</th><th>kind</th><th>health</th><th>last poll</th>{}<th>next poll</th>\
         <th>items, 24 h</th><th>items per day, 14 days</th><th>last error</th></tr></thead>\n<tbody>\n",
        if nodes.is_empty() { "" } else { "<th>polled by</th>" }
    );
    for (source, kind) in shown {
        let name = escape(&source.name);
        let feed = escape(&format!("{public_url}sources/{}/feed.atom", path_segment(&source.name)));
        let (class, health) = health(source, now);
        let _ = writeln!(
            out,
            "<tr class=\"{class}\"><td><a href=\"{feed}\">{name}</a><br><small>{}</small></td><td>{kind}</td><td>{health}</td>\
             <td>{}</td>{}<td>{}</td><td class=\"n\">{}</td><td>{}</td><td class=\"error\">{}</td></tr>",
            escape(&source.url),
            time(source.last_poll_at),
            if nodes.is_empty() {
                String::new()
            } else {
                format!("<td>{}</td>", escape(source.last_node.as_deref().unwrap_or("—")))
            },
            time(source.next_poll_at),
            source.items_24h,
            chart(&source.items_per_day),
            escape(source.last_error.as_deref().unwrap_or("")),
        );
    }
    out.push_str("</tbody></table>\n<p><a href=\"metrics\">metrics</a> · <a href=\"healthz\">healthz</a></p>\n</body></html>\n");
    out
}

/// The nodes' table: name, where it listens, version, last heartbeat, sources leased now.
fn render_nodes(out: &mut String, nodes: &[NodeRow]) {
    out.push_str(
        "<h2>Nodes</h2>\n<table class=\"nodes\">\n<thead><tr><th>node</th><th>listens on</th><th>version</th>\
         <th>started</th><th>last heartbeat</th><th>sources leased now</th></tr></thead>\n<tbody>\n",
    );
    for node in nodes {
        let _ = writeln!(
            out,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td class=\"n\">{}</td></tr>",
            escape(&node.name),
            escape(&node.listen),
            escape(&node.version),
            seconds(node.started_at),
            seconds(node.heartbeat_at),
            node.leased
        );
    }
    out.push_str("</tbody></table>\n<h2>Sources</h2>\n");
}

/// A time to the second (heartbeats come every few seconds).
fn seconds(at: i64) -> String {
    DateTime::<Utc>::from_timestamp(at, 0)
        .map_or_else(|| "—".to_owned(), |t| t.format("%Y-%m-%d %H:%M:%S UTC").to_string())
}

const STYLE: &str = "body{font:15px/1.4 system-ui,sans-serif;margin:1.5em;color:#222}\
    table{border-collapse:collapse;width:100%}th,td{text-align:left;padding:.35em .6em;border-bottom:1px solid #ddd;vertical-align:top}\
    th{background:#f4f4f4}td.n{text-align:right}small{color:#777}tr.failing td:nth-child(3){color:#b00020;font-weight:600}\
    tr.waiting td:nth-child(3){color:#a66b00}td.error{color:#b00020;max-width:30em;word-break:break-word}\
    svg rect{fill:#3b7dd8}";

/// (row class, text): `ok`, `erroring since …, retry at …`, or `backing off until …`.
fn health(source: &SourceRow, now: i64) -> (&'static str, String) {
    let waiting = source.not_before.filter(|t| *t > now);
    if source.error_count > 0 {
        let since = time(source.failing_since.or(source.last_poll_at));
        let retry = waiting.map(|t| format!(", backing off until {}", time(Some(t)))).unwrap_or_default();
        let failures = if source.error_count == 1 {
            "1 failure".to_owned()
        } else {
            format!("{} failures", source.error_count)
        };
        return ("failing", format!("erroring since {since} ({failures}){retry}"));
    }
    match (source.last_poll_at, waiting) {
        (None, _) => ("waiting", "not polled yet".to_owned()),
        (Some(_), Some(until)) => ("ok", format!("ok; publisher asks to wait until {}", time(Some(until)))),
        (Some(_), None) => ("ok", "ok".to_owned()),
    }
}

fn time(at: Option<i64>) -> String {
    match at.and_then(|t| DateTime::<Utc>::from_timestamp(t, 0)) {
        Some(t) => t.format("%Y-%m-%d %H:%M UTC").to_string(),
        None => "—".to_owned(),
    }
}

/// An inline SVG bar chart, one bar per day, with the counts as its accessible title.
fn chart(per_day: &[i64]) -> String {
    const WIDTH: usize = 8;
    const HEIGHT: i64 = 24;
    let max = per_day.iter().copied().max().unwrap_or(0).max(1);
    let mut svg = format!(
        "<svg width=\"{}\" height=\"{HEIGHT}\" viewBox=\"0 0 {} {HEIGHT}\" role=\"img\"><title>{}</title>",
        per_day.len() * WIDTH,
        per_day.len() * WIDTH,
        per_day.iter().map(i64::to_string).collect::<Vec<_>>().join(", ")
    );
    for (i, &n) in per_day.iter().enumerate() {
        let height = if n > 0 { (n * HEIGHT / max).max(1) } else { 0 };
        let _ = write!(
            svg,
            "<rect x=\"{}\" y=\"{}\" width=\"{}\" height=\"{height}\"/>",
            i * WIDTH,
            HEIGHT - height,
            WIDTH - 2
        );
    }
    svg.push_str("</svg>");
    svg
}

fn path_segment(name: &str) -> String {
    url::form_urlencoded::byte_serialize(name.as_bytes()).collect::<String>().replace('+', "%20")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(name: &str, error_count: i64) -> SourceRow {
        SourceRow {
            id: 1,
            name: name.into(),
            url: "https://e.com/rss?a=1&b=2".into(),
            title: None,
            last_poll_at: Some(1_764_000_000),
            last_success_at: Some(1_764_000_000),
            last_status: Some(200),
            last_error: (error_count > 0).then(|| "HTTP 503 <b>".to_owned()),
            error_count,
            next_poll_at: Some(1_764_000_600),
            item_count: 10,
            not_before: (error_count > 0).then_some(1_764_009_000),
            failing_since: (error_count > 0).then_some(1_763_990_000),
            items_per_day: (0..14).collect(),
            items_24h: 13,
            last_node: Some("node-a".into()),
        }
    }

    #[test]
    fn lists_sources_with_health_chart_and_escaped_text() {
        let url = Url::parse("http://feeds.example/").unwrap();
        let rows = vec![row("good", 0), row("bad one", 3), row("removed", 0)];
        let html = render(
            "My <feeds>",
            &url,
            &rows,
            &[("good".into(), "feed"), ("bad one".into(), "telegram")],
            &[],
            1_764_000_100,
        );
        assert!(html.contains("<title>My &lt;feeds&gt; — status</title>"));
        assert!(html.contains("http://feeds.example/feed.rss"));
        assert!(html.contains("2 sources, 1 healthy, 1 failing"));
        assert!(html.contains("erroring since 2025-11-24 13:13 UTC (3 failures), backing off until"));
        assert!(html.contains("HTTP 503 &lt;b&gt;") && html.contains("?a=1&amp;b=2"));
        assert!(html.contains("http://feeds.example/sources/bad%20one/feed.atom"));
        assert_eq!(html.matches("<svg").count(), 2);
        assert!(!html.contains("removed") && !html.contains("<script"));
        assert!(html.contains("<td>telegram</td>") && html.contains("<td>feed</td>"), "each source's kind");
        assert!(!html.contains("Nodes") && !html.contains("node-a"), "one node of its own: no nodes shown");

        let node = |name: &str, leased| NodeRow {
            name: name.into(),
            listen: "127.0.0.1:8080".into(),
            version: "1.0".into(),
            started_at: 1_764_000_000,
            heartbeat_at: 1_764_000_090,
            leased,
        };
        let html = render(
            "t",
            &url,
            &rows,
            &[("good".into(), "feed")],
            &[node("node-a", 3), node("node-<b>", 0)],
            1_764_000_100,
        );
        assert!(html.contains("<h2>Nodes</h2>") && html.contains("node-&lt;b&gt;"), "{html}");
        assert!(
            html.contains("2025-11-24 16:01:30 UTC</td><td class=\"n\">3</td>"),
            "heartbeat and leases: {html}"
        );
        assert!(html.contains("<th>polled by</th>") && html.contains("<td>node-a</td>"), "{html}");
    }
}
