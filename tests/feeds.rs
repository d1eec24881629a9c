//! The merged feeds end to end: the real binary polls two sources that carry the same story,
//! then serves Atom, RSS and JSON Feed — one entry per story, the other source named — with
//! validators, compression and per-source/per-tag feeds; real clients (xmllint with RFC 4287's
//! schema, the JSON Feed schema, Python feedparser, newsboat) read them when installed.

mod common;

use std::io::Read;
use std::process::Command;
use std::time::{Duration, Instant};

use common::{free_port, python, served_at, validate_atom, validate_json_feed, Daemon, Fixture, Workspace};

const STORY: &str = "Russian forces attacked the Kharkiv region overnight with drones and missiles, damaging a \
    power substation and several residential buildings, the regional governor said on Tuesday. Three people were \
    injured, including a child, and emergency crews worked through the night to restore electricity to about \
    twelve thousand households.";
const REWRITE: &str = "KHARKIV, Nov 25. Three people were hurt in an overnight strike. Russian forces attacked the \
    Kharkiv region overnight with drones and missiles, damaging a power substation and several residential \
    buildings, the regional governor said on Tuesday. Three people were injured, including a child, and emergency \
    crews worked through the night to restore electricity to about twelve thousand households.";
const SAME_TOPIC: &str = "Ukraine's energy company said on Wednesday it had finished repairs at a Kharkiv \
    substation hit last week, and power was back for most customers in the city, while engineers were still \
    working on lines to villages north of the city near the border, where shelling continued.";
const NEW_STORY: &str = "Parliament passed a law on Thursday that lets schools in frontline communities move \
    classes underground, with funding for shelters coming from the state budget and local councils, and teachers \
    receiving extra pay for lessons held in the shelters during air-raid alerts.";
const UKRAINIAN: &str = "Кабінет Міністрів затвердив нову програму підтримки малого бізнесу в прифронтових \
    громадах, повідомив прем'єр-міністр у середу. Підприємці зможуть отримати гранти на відновлення \
    виробництва, а також пільгові кредити на закупівлю обладнання та генераторів до кінця року.";

fn item(guid: &str, link: &str, title: &str, tag: &str, body: &str) -> String {
    format!(
        "<item><title>{title}</title><link>{link}</link><guid>{guid}</guid><category>{tag}</category>\
         <pubDate>Tue, 25 Nov 2026 08:00:00 +0000</pubDate><description>{body}</description></item>"
    )
}

fn rss(title: &str, items: &[String]) -> Vec<u8> {
    format!(
        "<?xml version=\"1.0\" encoding=\"utf-8\"?><rss version=\"2.0\"><channel><title>{title}</title>\
         <link>http://x/</link><description>d</description>{}</channel></rss>",
        items.concat()
    )
    .into_bytes()
}

/// `feedmill poll [--source NAME]` run in the workspace (where the config's relative database
/// path points); its stdout.
fn poll(work: &Workspace, config: &std::path::Path, source: Option<&str>) -> String {
    let mut command = Command::new(env!("CARGO_BIN_EXE_feedmill"));
    command.current_dir(work.path("")).args(["poll", "-c", config.to_str().unwrap()]);
    if let Some(source) = source {
        command.args(["--source", source]);
    }
    String::from_utf8_lossy(&command.output().unwrap().stdout).into_owned()
}

struct Got {
    status: u16,
    headers: reqwest::header::HeaderMap,
    body: Vec<u8>,
}

/// A GET with request headers; the body is returned as sent (no automatic decompression).
fn get(url: &str, headers: &[(&str, &str)]) -> Got {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    runtime.block_on(async {
        let client = reqwest::Client::builder().no_proxy().no_gzip().no_brotli().build().unwrap();
        let mut request = client.get(url);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        Got { status, headers, body: response.bytes().await.unwrap().to_vec() }
    })
}

fn text(got: &Got) -> String {
    String::from_utf8(got.body.clone()).unwrap()
}

/// (title, link) of every entry, in order, from a feed of any of the three formats, parsed
/// crudely but independently of feedmill's renderers.
fn titles_and_links(body: &str) -> Vec<(String, String)> {
    if body.trim_start().starts_with('{') {
        let feed: serde_json::Value = serde_json::from_str(body).unwrap();
        return feed["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| (i["title"].as_str().unwrap().to_owned(), i["url"].as_str().unwrap().to_owned()))
            .collect();
    }
    let (open, close) =
        if body.contains("<entry>") { ("<entry>", "</entry>") } else { ("<item>", "</item>") };
    body.split(open)
        .skip(1)
        .map(|chunk| {
            let entry = chunk.split(close).next().unwrap();
            let title = entry
                .split("<title")
                .nth(1)
                .unwrap()
                .split_once('>')
                .unwrap()
                .1
                .split("</title>")
                .next()
                .unwrap();
            let link = if open == "<entry>" {
                entry
                    .split("rel=\"alternate\" type=\"text/html\" href=\"")
                    .nth(1)
                    .unwrap()
                    .split('"')
                    .next()
                    .unwrap()
            } else {
                entry.split("<link>").nth(1).unwrap().split("</link>").next().unwrap()
            };
            (title.replace("&amp;", "&"), link.replace("&amp;", "&"))
        })
        .collect()
}

#[test]
fn one_entry_per_story_in_every_format_with_validators_and_compression() {
    let fixture = Fixture::default();
    let wire_items = vec![
        item(
            "w1",
            "http://wire.example/kharkiv-strike",
            "Strike on Kharkiv region injures three",
            "Kharkiv",
            STORY,
        ),
        item(
            "w2",
            "http://wire.example/kharkiv-repairs",
            "Power back in Kharkiv after repairs",
            "Kharkiv",
            SAME_TOPIC,
        ),
    ];
    fixture.add("wire.example/rss", 200, "application/rss+xml", rss("Wire", &wire_items));
    let blog_items = vec![
        // The wire story again, with a new headline and lead, from another site.
        item(
            "b1",
            "http://blog.example/2026/11/25/drones?utm_source=tg",
            "Drones hit Kharkiv overnight",
            "Війна",
            REWRITE,
        ),
        item(
            "b2",
            "http://blog.example/2026/11/25/grants",
            "Гранти для бізнесу в прифронтових громадах",
            "Економіка",
            UKRAINIAN,
        ),
    ];
    fixture.add("blog.example/rss", 200, "application/rss+xml", rss("Blog", &blog_items));
    let fixture = fixture.start();
    let work = Workspace::new();
    let port = free_port();
    let config = work.config(&format!(
        "{}[feed]\ntitle = \"merged\"\n[fetch]\nproxy = \"{}\"\n\
         [defaults]\nevery = \"1s\"\nfull_text = false\n\
         [[sources]]\nname = \"wire\"\nurl = \"http://wire.example/rss\"\n\
         [[sources]]\nname = \"blog\"\nurl = \"http://blog.example/rss\"\n",
        served_at(port),
        fixture.proxy_url()
    ));
    // One source after the other, so the wire's report is the one seen first.
    let mut stdout = String::new();
    for source in ["wire", "blog"] {
        stdout.push_str(&poll(&work, &config, Some(source)));
    }
    assert!(stdout.contains("wire: HTTP 200, 2 new, 0 duplicate"), "{stdout}");
    assert!(stdout.contains("blog: HTTP 200, 1 new, 0 duplicate, 1 merged"), "{stdout}");

    let mut daemon = Daemon::start(&config, port);
    let base = daemon.base.clone();
    let expected = vec![
        (
            "Strike on Kharkiv region injures three".to_owned(),
            "http://wire.example/kharkiv-strike".to_owned(),
        ),
        ("Power back in Kharkiv after repairs".to_owned(), "http://wire.example/kharkiv-repairs".to_owned()),
        (
            "Гранти для бізнесу в прифронтових громадах".to_owned(),
            "http://blog.example/2026/11/25/grants".to_owned(),
        ),
    ];
    let mut bodies = Vec::new();
    for (path, content_type) in [
        ("feed.atom", "application/atom+xml; charset=utf-8"),
        ("feed.rss", "application/rss+xml; charset=utf-8"),
        ("feed.json", "application/feed+json; charset=utf-8"),
    ] {
        let got = get(&format!("{base}/{path}"), &[]);
        assert_eq!(got.status, 200, "{path}");
        assert_eq!(got.headers["content-type"], content_type);
        let body = text(&got);
        let mut entries = titles_and_links(&body);
        entries.sort();
        let mut want = expected.clone();
        want.sort();
        assert_eq!(entries, want, "{path}: the same three stories, the copy merged");
        assert!(body.contains("Also reported by"), "{path} names the other source");
        assert!(
            body.contains("http://blog.example/2026/11/25/drones"),
            "{path} links the other report, tracking parameters gone"
        );
        assert!(!body.contains("utm_source"));
        bodies.push((path, body));
    }
    let atom = &bodies[0].1;
    assert!(atom.contains("<link rel=\"related\" type=\"text/html\" href=\"http://blog.example/2026/11/25/drones\" title=\"Blog\"/>"));
    assert!(bodies[1].1.contains("<atom:link rel=\"self\" type=\"application/rss+xml\""));
    validate_atom(atom);
    validate_json_feed(&bodies[2].1);
    check_with_feedparser(&base, &expected);
    check_with_newsboat(&base, &work, &expected);

    // Per-source and per-tag feeds.
    let blog = text(&get(&format!("{base}/sources/blog/feed.atom"), &[]));
    assert_eq!(titles_and_links(&blog).len(), 2, "a source's feed lists all it delivered");
    validate_atom(&blog);
    assert_eq!(get(&format!("{base}/sources/nope/feed.atom"), &[]).status, 404);
    assert_eq!(get(&format!("{base}/sources/blog/feed.xml"), &[]).status, 404);
    let tag = text(&get(
        &format!("{base}/tags/%D0%95%D0%BA%D0%BE%D0%BD%D0%BE%D0%BC%D1%96%D0%BA%D0%B0/feed.json"),
        &[],
    ));
    assert_eq!(titles_and_links(&tag), vec![expected[2].clone()]);
    let kharkiv = text(&get(&format!("{base}/tags/Kharkiv/feed.rss"), &[]));
    assert_eq!(titles_and_links(&kharkiv).len(), 2);

    // Validators: a strong ETag and Last-Modified, 304 for either, Cache-Control.
    let first = get(&format!("{base}/feed.atom"), &[]);
    let etag = first.headers["etag"].to_str().unwrap().to_owned();
    assert!(etag.starts_with('"') && etag.ends_with('"'), "strong: {etag}");
    assert!(first.headers["cache-control"].to_str().unwrap().contains("max-age"));
    let modified = first.headers["last-modified"].to_str().unwrap().to_owned();
    let not_modified = get(&format!("{base}/feed.atom"), &[("if-none-match", &etag)]);
    assert_eq!((not_modified.status, not_modified.body.len()), (304, 0));
    assert_eq!(get(&format!("{base}/feed.atom"), &[("if-modified-since", &modified)]).status, 304);
    assert_eq!(get(&format!("{base}/feed.atom"), &[("if-none-match", "\"other\"")]).status, 200);

    // Compression by Accept-Encoding, the same bytes inside.
    let gzipped = get(&format!("{base}/feed.atom"), &[("accept-encoding", "gzip")]);
    assert_eq!(gzipped.headers["content-encoding"], "gzip");
    let mut plain = Vec::new();
    flate2::read::GzDecoder::new(&gzipped.body[..]).read_to_end(&mut plain).unwrap();
    assert_eq!(plain, first.body);
    assert!(gzipped.body.len() < first.body.len());
    let brotli = get(&format!("{base}/feed.atom"), &[("accept-encoding", "gzip, br")]);
    assert_eq!(brotli.headers["content-encoding"], "br");
    assert_eq!(brotli.headers["etag"].to_str().unwrap(), etag);

    // A new item invalidates the cached feed (the daemon polls every second).
    let mut more = wire_items.clone();
    more.insert(0, item("w3", "http://wire.example/new", "A new story arrives", "Kharkiv", NEW_STORY));
    fixture.add("wire.example/rss", 200, "application/rss+xml", rss("Wire", &more));
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let got = get(&format!("{base}/feed.atom"), &[("if-none-match", &etag)]);
        if got.status == 200 {
            assert!(text(&got).contains("A new story arrives"));
            assert_ne!(got.headers["etag"].to_str().unwrap(), etag);
            break;
        }
        assert!(Instant::now() < deadline, "the feed never changed");
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(daemon.terminate(Duration::from_secs(10)).is_some_and(|s| s.success()));
}

/// Python `feedparser` reads Atom and RSS without complaint (bozo 0) and sees every entry.
fn check_with_feedparser(base: &str, expected: &[(String, String)]) {
    for path in ["feed.atom", "feed.rss"] {
        let script = "import sys,json,feedparser\nd=feedparser.parse(sys.argv[1])\n\
                      print(json.dumps({'bozo': int(d.bozo), 'entries': sorted([e.title, e.link] for e in d.entries)}))";
        let Some(output) = python(script, &[&format!("{base}/{path}")], "") else { return };
        let parsed: serde_json::Value =
            serde_json::from_str(output.trim()).unwrap_or_else(|_| panic!("{output}"));
        assert_eq!(parsed["bozo"], 0, "{path}: {output}");
        let mut want: Vec<Vec<String>> = expected.iter().map(|(t, l)| vec![t.clone(), l.clone()]).collect();
        want.sort();
        assert_eq!(parsed["entries"], serde_json::json!(want), "{path}");
    }
}

/// newsboat, headless, subscribes to the Atom and the RSS feed (one cache each: newsboat keeps
/// one item per GUID, and both formats share their entry ids): every entry lands in its cache.
fn check_with_newsboat(base: &str, work: &Workspace, expected: &[(String, String)]) {
    for feed in ["feed.atom", "feed.rss"] {
        let Some(db) = common::newsboat_reload(base, work, feed) else { return };
        let mut query =
            db.prepare("SELECT title, url FROM rss_item WHERE feedurl = ?1 ORDER BY title, url").unwrap();
        let got: Vec<(String, String)> = query
            .query_map([format!("{base}/{feed}")], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .map(Result::unwrap)
            .collect();
        let mut want = expected.to_vec();
        want.sort();
        assert_eq!(got, want, "newsboat's view of {feed}");
    }
}

#[test]
fn output_never_carries_active_content_whatever_the_sources_sent() {
    let hostile = "<?xml version=\"1.0\"?><rss version=\"2.0\" xmlns:media=\"http://search.yahoo.com/mrss/\"><channel>\
        <title>Evil</title><link>http://evil.example/</link><description>d</description>\
        <item><title>Hostile markup</title><link>javascript:alert(1)</link><guid>e1</guid>\
        <description><![CDATA[<p style=\"color:red\" onmouseover=\"x()\">Styled <a href=\"data:text/html,<script>alert(2)</script>\">data link</a>\
        <a href=\"javascript:alert(3)\">js link</a></p><iframe src=\"http://evil.example/frame\"></iframe>\
        <svg onload=\"alert(4)\"><circle/></svg><script>alert(5)</script><img src=\"x\" onerror=\"alert(6)\">\
        <object data=\"http://evil.example/x.swf\"></object><form action=\"http://evil.example/\"><input></form>]]></description>\
        <media:content url=\"data:image/svg+xml;base64,PHN2Zz4=\" medium=\"image\"/></item>\
        <item><title>Data link</title><link>data:text/html;base64,PHNjcmlwdD4=</link><guid>e2</guid>\
        <description>Plain text that is long enough to be a body of some kind, with words.</description></item>\
        <item><title>&lt;script&gt;alert(1)&lt;/script&gt;News &amp;amp; more &lt;b&gt;bold&lt;/b&gt;</title>\
        <link>http://evil.example/markup-title</link><guid>e3</guid><author>&lt;i&gt;Ann&lt;/i&gt;</author>\
        <category>&lt;b&gt;War&lt;/b&gt;</category><description>A story whose title came as markup.</description></item>\
        </channel></rss>";
    let fixture = Fixture::default();
    fixture.add("evil.example/rss", 200, "application/rss+xml", hostile.as_bytes().to_vec());
    let fixture = fixture.start();
    let work = Workspace::new();
    let port = free_port();
    let config = work.config(&format!(
        "{}[fetch]\nproxy = \"{}\"\n[defaults]\nfull_text = false\n\
         [[sources]]\nname = \"evil\"\nurl = \"http://evil.example/rss\"\n",
        served_at(port),
        fixture.proxy_url()
    ));
    assert!(poll(&work, &config, None).contains("evil: HTTP 200, 3 new"));
    let daemon = Daemon::start(&config, port);
    for path in ["feed.atom", "feed.rss", "feed.json", "sources/evil/feed.atom"] {
        let body = text(&get(&format!("{}/{path}", daemon.base), &[]));
        assert!(body.contains("Styled") && body.contains("Data link"), "{path}: the items are there");
        // Titles, authors and categories are plain text: markup stripped, entities decoded once.
        let title = if path.ends_with("json") { "News & more bold" } else { "News &amp; more bold" };
        assert!(body.contains(title), "{path}: the markup title as text: {body}");
        assert!(
            !body.contains("&amp;amp;") && !body.contains("<b>War") && !body.contains("&lt;b&gt;"),
            "{path}"
        );
        let lower = body.to_lowercase();
        for bad in [
            "alert(",
            "<script",
            "&lt;script",
            "\\u003cscript",
            "javascript:",
            "data:",
            "style=",
            "iframe",
            "onmouseover",
            "onload",
            "onerror",
            "<svg",
            "&lt;svg",
            "object",
            "<form",
            "&lt;form",
        ] {
            assert!(!lower.contains(bad), "{path} carries `{bad}`: {body}");
        }
    }
}

#[test]
fn source_and_feed_filters() {
    let items = vec![
        item("f1", "http://f.example/ad", "Best loans in town", "Реклама", NEW_STORY),
        item("f2", "http://f.example/sport", "Sport: Dynamo wins the derby", "Sport", SAME_TOPIC),
        item("f3", "http://f.example/news", "Strike on Kharkiv region injures three", "Kharkiv", STORY),
    ];
    let fixture = Fixture::default();
    fixture.add("f.example/rss", 200, "application/rss+xml", rss("F", &items));
    let fixture = fixture.start();
    let work = Workspace::new();
    let port = free_port();
    let config = work.config(&format!(
        "{}[feed]\nexclude = [\"title:/^Sport:/\"]\n\
         [fetch]\nproxy = \"{}\"\n[defaults]\nfull_text = false\n\
         [[sources]]\nname = \"f\"\nurl = \"http://f.example/rss\"\nexclude = [\"tags:реклама\"]\n",
        served_at(port),
        fixture.proxy_url()
    ));
    let poll = || poll(&work, &config, None);
    assert!(poll().contains("f: HTTP 200, 2 new, 0 duplicate, 1 filtered out"));
    // The filtered item is remembered, not processed again.
    let mut more = items.clone();
    more.push(item("f4", "http://f.example/more", "Grants for small business", "Economy", UKRAINIAN));
    fixture.add("f.example/rss", 200, "application/rss+xml", rss("F", &more));
    let second = poll();
    assert!(second.contains("f: HTTP 200, 1 new, 0 duplicate, 0."), "{second}");
    let daemon = Daemon::start(&config, port);
    let merged = titles_and_links(&text(&get(&format!("{}/feed.atom", daemon.base), &[])));
    let mut titles: Vec<&str> = merged.iter().map(|(t, _)| t.as_str()).collect();
    titles.sort();
    assert_eq!(titles, vec!["Grants for small business", "Strike on Kharkiv region injures three"]);
    let source: Vec<String> =
        titles_and_links(&text(&get(&format!("{}/sources/f/feed.rss", daemon.base), &[])))
            .into_iter()
            .map(|(t, _)| t)
            .collect();
    assert_eq!(source.len(), 3, "the source's own feed keeps the sport item: {source:?}");
    assert!(!source.iter().any(|t| t.contains("loans")));

    // A filter that does not parse is a config error naming the key.
    let bad =
        work.config("[[sources]]\nname = \"x\"\nurl = \"http://x.example/\"\ninclude = [\"title:/(/\"]\n");
    let output = Command::new(env!("CARGO_BIN_EXE_feedmill"))
        .args(["check-config", "-c", bad.to_str().unwrap()])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2));
    assert!(stderr.contains("sources[0].include/exclude") && stderr.contains("invalid regex"), "{stderr}");
}

#[test]
fn older_entries_are_reachable_through_rfc5005_next_links() {
    let items: Vec<String> = (1..=5)
        .map(|n| {
            item(
                &format!("p{n}"),
                &format!("http://p.example/{n}"),
                &format!("Story {n}"),
                "T",
                &format!("Short story number {n}."),
            )
        })
        .collect();
    let fixture = Fixture::default();
    fixture.add("p.example/rss", 200, "application/rss+xml", rss("P", &items));
    let fixture = fixture.start();
    let work = Workspace::new();
    let port = free_port();
    let config = work.config(&format!(
        "{}[feed]\nmax_items = 2\n[fetch]\nproxy = \"{}\"\n\
         [defaults]\nfull_text = false\n[[sources]]\nname = \"p\"\nurl = \"http://p.example/rss\"\n",
        served_at(port),
        fixture.proxy_url()
    ));
    assert!(poll(&work, &config, None).contains("5 new"));
    let daemon = Daemon::start(&config, port);
    for format in ["atom", "rss", "json"] {
        let mut url = Some(format!("{}/feed.{format}", daemon.base));
        let mut seen = Vec::new();
        let mut pages = 0;
        while let Some(page) = url.take() {
            let body = text(&get(&page, &[]));
            pages += 1;
            seen.extend(titles_and_links(&body).into_iter().map(|(title, _)| title));
            url = match format {
                "json" => serde_json::from_str::<serde_json::Value>(&body).unwrap()["next_url"]
                    .as_str()
                    .map(str::to_owned),
                _ => body.split("rel=\"next\" type=\"application/").nth(1).map(|rest| {
                    rest.split("href=\"").nth(1).unwrap().split('"').next().unwrap().replace("&amp;", "&")
                }),
            };
            if format == "atom" {
                validate_atom(&body);
            }
            assert!(pages <= 5, "paging must end");
        }
        seen.sort();
        assert_eq!(
            seen,
            vec!["Story 1", "Story 2", "Story 3", "Story 4", "Story 5"],
            "{format}: every entry once"
        );
        assert_eq!(pages, 3, "{format}: 2 + 2 + 1");
    }
    assert_eq!(get(&format!("{}/feed.atom?before=garbage", daemon.base), &[]).status, 400);
}

#[test]
fn websub_hub_is_advertised_and_pinged_when_entries_appear() {
    use std::sync::{Arc, Mutex};
    // A fake hub on loopback that records what it is told.
    let pings: Arc<Mutex<Vec<String>>> = Arc::default();
    let hub_listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    hub_listener.set_nonblocking(true).unwrap();
    let hub = format!("http://{}/hub", hub_listener.local_addr().unwrap());
    let recorded = Arc::clone(&pings);
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        runtime.block_on(async move {
            let app = axum::Router::new().route(
                "/hub",
                axum::routing::post(move |body: String| async move {
                    recorded.lock().unwrap().push(body);
                    axum::http::StatusCode::NO_CONTENT
                }),
            );
            let listener = tokio::net::TcpListener::from_std(hub_listener).unwrap();
            axum::serve(listener, app).await.unwrap();
        });
    });

    let fixture = Fixture::default();
    fixture.add(
        "w.example/rss",
        200,
        "application/rss+xml",
        rss("W", &[item("w1", "http://w.example/1", "First", "T", STORY)]),
    );
    let fixture = fixture.start();
    let work = Workspace::new();
    let port = free_port();
    let config = work.config(&format!(
        "{}[feed]\nwebsub_hub = \"{hub}\"\n[fetch]\nproxy = \"{}\"\n\
         [defaults]\nevery = \"1s\"\nfull_text = false\n[[sources]]\nname = \"w\"\nurl = \"http://w.example/rss\"\n", served_at(port),
        fixture.proxy_url()
    ));
    let daemon = Daemon::start(&config, port);
    let atom = text(&get(&format!("{}/feed.atom", daemon.base), &[]));
    assert!(atom.contains(&format!("<link rel=\"hub\" href=\"{hub}\"/>")), "{atom}");
    let json = text(&get(&format!("{}/feed.json", daemon.base), &[]));
    assert!(json.contains(&hub));
    let deadline = Instant::now() + Duration::from_secs(15);
    let topic = |path: &str| format!("hub.mode=publish&hub.url=http%3A%2F%2F127.0.0.1%3A{port}%2F{path}");
    while !pings.lock().unwrap().contains(&topic("feed.atom")) {
        assert!(Instant::now() < deadline, "the hub was never pinged: {:?}", pings.lock().unwrap());
        std::thread::sleep(Duration::from_millis(100));
    }
    std::thread::sleep(Duration::from_millis(300));
    let got = pings.lock().unwrap().clone();
    for path in ["feed.rss", "feed.json", "sources%2Fw%2Ffeed.atom"] {
        assert!(got.contains(&topic(path)), "{path}: {got:?}");
    }
    // Polls that find nothing new do not ping again.
    let count = got.len();
    std::thread::sleep(Duration::from_millis(2500));
    assert_eq!(pings.lock().unwrap().len(), count);
}

#[test]
fn an_item_the_feed_changes_is_updated_never_duplicated() {
    let fixture = Fixture::default();
    fixture.add(
        "u.example/rss",
        200,
        "application/rss+xml",
        rss("U", &[item("u1", "http://u.example/1", "First headline", "T", STORY)]),
    );
    let fixture = fixture.start();
    let work = Workspace::new();
    let port = free_port();
    let config = work.config(&format!(
        "{}[fetch]\nproxy = \"{}\"\n[defaults]\nfull_text = false\n\
         [[sources]]\nname = \"u\"\nurl = \"http://u.example/rss\"\n",
        served_at(port),
        fixture.proxy_url()
    ));
    let poll = || poll(&work, &config, None);
    assert!(poll().contains("1 new"));
    let corrected = STORY.replace("Three people were injured", "Four people were injured");
    fixture.add(
        "u.example/rss",
        200,
        "application/rss+xml",
        rss("U", &[item("u1", "http://u.example/1", "Corrected headline", "T", &corrected)]),
    );
    let second = poll();
    assert!(second.contains("0 new, 0 duplicate, 1 updated"), "{second}");
    let daemon = Daemon::start(&config, port);
    let atom = text(&get(&format!("{}/feed.atom", daemon.base), &[]));
    assert_eq!(
        titles_and_links(&atom),
        vec![("Corrected headline".to_owned(), "http://u.example/1".to_owned())]
    );
    assert!(atom.contains("Four people were injured") && !atom.contains("Three people were injured"));
    let published = atom.split("<published>").nth(1).unwrap().split('<').next().unwrap();
    let updated =
        atom.split("<entry>").nth(1).unwrap().split("<updated>").nth(1).unwrap().split('<').next().unwrap();
    assert!(updated > published, "the entry's updated time moved: {published} → {updated}");
}

#[test]
fn a_page_naming_another_canonical_article_is_that_article() {
    let page = |canonical: &str, words: &str| {
        format!(
            "<html><head><link rel=\"canonical\" href=\"{canonical}\"></head><body><article><p>{words}</p><p>{STORY}</p></article></body></html>"
        )
        .into_bytes()
    };
    let fixture = Fixture::default();
    fixture.add(
        "a.example/rss",
        200,
        "application/rss+xml",
        rss("A", &[item("a1", "http://a.example/story", "Story", "T", "Lead.")]),
    );
    fixture.add("a.example/story", 200, "text/html", page("http://a.example/story", "Original."));
    // An AMP copy on another host whose page names the original as canonical.
    fixture.add(
        "b.example/rss",
        200,
        "application/rss+xml",
        rss("B", &[item("b1", "http://amp.b.example/amp/story", "Story (AMP)", "T", "Lead.")]),
    );
    fixture.add("amp.b.example/amp/story", 200, "text/html", page("http://a.example/story", "AMP copy."));
    let fixture = fixture.start();
    let work = Workspace::new();
    let config = work.config(&format!(
        "[storage]\npath = \"data/feedmill.db\"\n[fetch]\nproxy = \"{}\"\n\
         [[sources]]\nname = \"a\"\nurl = \"http://a.example/rss\"\n[[sources]]\nname = \"b\"\nurl = \"http://b.example/rss\"\n",
        fixture.proxy_url()
    ));
    let mut stdout = String::new();
    for source in ["a", "b"] {
        stdout.push_str(&poll(&work, &config, Some(source)));
    }
    assert!(stdout.contains("a: HTTP 200, 1 new"), "{stdout}");
    assert!(stdout.contains("b: HTTP 200, 0 new, 1 duplicate"), "{stdout}");
}

#[test]
fn metrics_count_polls_responses_items_steps_and_rule_misses() {
    let fixture = Fixture::default();
    fixture.add(
        "m.example/rss",
        200,
        "application/rss+xml",
        rss("M", &[item("m1", "http://m.example/story", "Story", "T", "Lead.")]),
    );
    // The site rule no longer matches the page (a redesign): a rule miss, the feed's text is used.
    fixture.add(
        "m.example/story",
        200,
        "text/html",
        format!("<html><body><main><p>{STORY}</p></main></body></html>").into_bytes(),
    );
    let fixture = fixture.start();
    let work = Workspace::new();
    let port = free_port();
    let config = work.config(&format!(
        "{}[fetch]\nproxy = \"{}\"\n[defaults]\nevery = \"1h\"\n\
         [[sources]]\nname = \"m\"\nurl = \"http://m.example/rss\"\n\
         [[sites]]\nhosts = [\"m.example\"]\nbody = [\"article .text\"]\n",
        served_at(port),
        fixture.proxy_url()
    ));
    let daemon = Daemon::start(&config, port);
    let deadline = Instant::now() + Duration::from_secs(15);
    let metrics = loop {
        let got = get(&format!("{}/metrics", daemon.base), &[]);
        // On PostgreSQL every series also names its node; the rest is the same.
        let body = common::without_node_label(&text(&got));
        // Known series are there at 0 from the start, before any poll ends.
        for zero in [
            "feedmill_polls_total{source=\"m\",outcome=\"error\"} 0",
            "feedmill_items_total{source=\"m\",kind=\"filtered\"} 0",
            "feedmill_http_responses_total{kind=\"feed\",class=\"5xx\"} 0",
        ] {
            assert!(body.contains(zero), "missing `{zero}` in:\n{body}");
        }
        if body.contains("feedmill_polls_total{source=\"m\",outcome=\"ok\"} 1") {
            assert!(got.headers["content-type"]
                .to_str()
                .unwrap()
                .starts_with("application/openmetrics-text"));
            break body;
        }
        assert!(Instant::now() < deadline, "no poll recorded: {body}");
        std::thread::sleep(Duration::from_millis(100));
    };
    for line in [
        "feedmill_polls_total{source=\"m\",outcome=\"ok\"} 1",
        "feedmill_items_total{source=\"m\",kind=\"new\"} 1",
        "feedmill_http_responses_total{kind=\"feed\",class=\"2xx\"} 1",
        "feedmill_http_responses_total{kind=\"page\",class=\"2xx\"} 1",
        "feedmill_rule_misses_total{host=\"m.example\"} 1",
        "feedmill_extraction_steps_total{step=\"feed\"} 1",
        "feedmill_fetch_duration_seconds_count{kind=\"page\"} 1",
    ] {
        assert!(metrics.contains(line), "missing `{line}` in:\n{metrics}");
    }
    let size: f64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix("feedmill_database_size_bytes "))
        .and_then(|v| v.trim().parse().ok())
        .expect("database size");
    assert!(size > 4096.0);
}
