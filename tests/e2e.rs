//! End to end: the real binary against a loopback fixture web (a UNN-like site and a second site).

mod common;

use std::time::Duration;

use common::{feedmill, free_port, http_get, rss, run_feedmill, Daemon, Fixture, Workspace};

const NORTH_KOREA_PAGE: &str =
    "unn.ua/en/news/north-korea-to-send-almost-30000-troops-to-reinforce-russia-in-war-against-ukraine-cnn";

fn news_config(fixture: &Fixture, port: u16) -> String {
    format!(
        r#"
[storage]
path = "data/feedmill.db"
[server]
listen = "127.0.0.1:{port}"
public_url = "http://127.0.0.1:{port}/"
[feed]
title = "feedmill test"
max_items = 50
[fetch]
timeout_secs = 10
proxy = "{proxy}"
[defaults]
every = "1h"
full_text = true
[[sources]]
name = "unn-uk"
url = "http://unn.ua/rss/news_uk.xml"
[[sources]]
name = "unn-en-world"
url = "http://unn.ua/en/rss/world_en.xml"
tags = ["en"]
[[sources]]
name = "example"
url = "http://news.example/atom.xml"
"#,
        proxy = fixture.proxy_url()
    )
}

/// Entry `<entry>` blocks of an Atom document, by title.
fn entries(atom: &str) -> Vec<(String, String)> {
    atom.split("<entry>")
        .skip(1)
        .map(|chunk| {
            let entry = chunk.split("</entry>").next().unwrap_or_default().to_owned();
            let title = entry
                .split("<title type=\"text\">")
                .nth(1)
                .and_then(|t| t.split("</title>").next())
                .map(unescape)
                .unwrap_or_default();
            (title, entry)
        })
        .collect()
}

fn entry<'a>(all: &'a [(String, String)], title_start: &str) -> &'a str {
    all.iter()
        .find(|(title, _)| title.starts_with(title_start))
        .map(|(_, e)| e.as_str())
        .unwrap_or_else(|| panic!("no entry titled {title_start}…"))
}

/// Unescapes the `<content type="html">` of an entry.
fn content(entry: &str) -> String {
    unescape(
        entry
            .split("<content type=\"html\">")
            .nth(1)
            .and_then(|c| c.split("</content>").next())
            .unwrap_or_default(),
    )
}

fn unescape(raw: &str) -> String {
    raw.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&apos;", "'")
        .replace("&amp;", "&")
}

#[test]
fn poll_then_run_publishes_clean_deduplicated_full_text() {
    let fixture = Fixture::news_web().start();
    let work = Workspace::new();
    let port = free_port();
    let config = work.config(&news_config(&fixture, port));
    let config_arg = config.to_str().unwrap();

    // 1. One-shot poll of every source.
    let output =
        common::feedmill().current_dir(work.dir.path()).args(["poll", "-c", config_arg]).output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "poll failed: {stdout}\n{stderr}");
    assert!(stdout.contains("example: HTTP 200, 2 new, 0 duplicate"), "{stdout}");
    // The article in both UNN feeds is new in whichever commits first and a duplicate in the other.
    let count = |what: &str| -> usize {
        stdout
            .lines()
            .filter_map(|l| l.split(", ").find_map(|part| part.strip_suffix(what)?.parse::<usize>().ok()))
            .sum()
    };
    assert_eq!((count(" new"), count(" duplicate")), (5, 1), "{stdout}");
    // Logs: one line per poll, and a rule miss names the host and the rule.
    assert!(stderr.contains("poll") && stderr.contains("source=unn-uk"), "{stderr}");
    assert!(
        stderr.contains("site rule matched nothing")
            && stderr.contains("unn.ua")
            && stderr.contains("config/sites/unn.toml"),
        "{stderr}"
    );
    // The page announced by two feeds, with tracking parameters and a fragment, was fetched once.
    assert_eq!(fixture.hits(NORTH_KOREA_PAGE), 1);

    // 2. The daemon: polls again at start (nothing new), serves the merged feed.
    let mut daemon = Daemon::start(&config, port);
    let (status, _, health) = http_get(&format!("{}/healthz", daemon.base)).unwrap();
    assert_eq!(status, 200);
    let health: serde_json::Value = serde_json::from_str(&health).unwrap();
    assert_eq!(health["sources"], 3);
    assert_eq!(health["version"], env!("CARGO_PKG_VERSION"));

    let (status, content_type, atom) = http_get(&format!("{}/feed.atom", daemon.base)).unwrap();
    assert_eq!(status, 200);
    assert!(content_type.starts_with("application/atom+xml"), "{content_type}");
    let parsed = feed_rs::parser::parse(atom.as_bytes()).expect("output parses as a feed");
    common::validate_atom(&atom);
    assert_eq!(parsed.entries.len(), 5, "{atom}");
    let all = entries(&atom);
    assert_eq!(all.iter().filter(|(t, _)| t.starts_with("North Korea to send")).count(), 1, "dedup");

    // The UNN article: complete body with the lead, and none of the page noise.
    let korea = entry(&all, "North Korea to send almost 30,000 troops");
    assert!(korea.contains("<source>") && korea.contains("<id>http://unn.ua/"), "{korea}");
    assert!(
        korea.contains("<category term=\"War\"/>") || korea.contains("<category term=\"World\"/>"),
        "{korea}"
    );
    // Author and tags come from the page (UNN's RSS carries neither).
    assert!(korea.contains("<author><name>Liliia Naboka</name></author>"), "{korea}");
    assert!(
        korea.contains("<category term=\"Kim Jong Un\"/>")
            && korea.contains("<category term=\"North Korea\"/>"),
        "{korea}"
    );
    // Published with the page's own canonical link (https; the feed said http, with tracking
    // parameters and a fragment).
    assert!(korea.contains("href=\"https://unn.ua/en/news/north-korea-to-send-almost-30000-troops-to-reinforce-russia-in-war-against-ukraine-cnn\"/>"), "{korea}");
    let body = content(korea);
    for wanted in [
        "North Korea plans to send an additional 25,000-30,000 troops to Russia",
        "North Korea intends to triple the number of its troops",
        "<strong>Details</strong>",
        "satellite images obtained by CNN",
        "<strong>Recall</strong>",
        "restore the Kursk region",
        "src=\"https://unn.ua/img/2025/07/02/1751447713-3857.jpeg\"",
        "src=\"https://unn.ua/img/2025/07/02/satellite.jpeg\"",
        "href=\"https://edition.cnn.com/2025/07/02/world/north-korea-troops\"",
    ] {
        assert!(body.contains(wanted), "missing {wanted:?} in {body}");
    }
    for noise in [
        "743",
        "views",
        "Kyiv • UNN",
        "41.82",
        "Verkhovna Rada Committee",
        "4957",
        "18.06.25",
        "saying goodbye to soldiers",
        "Liliia Naboka",
        "News of the World",
        "Facebook",
        "Telegram",
        "Latest news",
        "All rights reserved",
        "Politics",
        "<script",
        "onclick",
        "__related",
        "_next/image",
        "class=",
    ] {
        assert!(!body.contains(noise), "noise {noise:?} in {body}");
    }

    // A Ukrainian UNN page: trimmed CDATA title, body clean of counters and cards.
    let drones = entry(&all, "Сили ППО знешкодили 20 дронів над Київщиною");
    assert!(drones.contains("<title type=\"text\">Сили ППО знешкодили 20 дронів над Київщиною</title>"));
    let body = content(drones);
    assert!(body.contains("Уночі сили протиповітряної оборони") && body.contains("За даними ОВА"), "{body}");
    assert!(
        !body.contains("переглядів")
            && !body.contains("Зеленський провів")
            && !body.contains("Іван Петренко"),
        "{body}"
    );

    // A redesigned page the rule misses: the feed's own text is published.
    let budget = content(entry(&all, "Government approves new budget rules"));
    assert!(budget.contains("The Cabinet approved new rules"), "{budget}");
    assert!(!budget.contains("markup that the built-in UNN rule does not know"), "{budget}");

    // The second site: no rule, the generic extractor finds the story; scripts are gone.
    let solar = content(entry(&all, "Europe's largest solar farm"));
    assert!(solar.contains("400 hectares") && solar.contains("storage batteries"), "{solar}");
    assert!(
        !solar.contains("Most read") && !solar.contains("steal") && !solar.contains("<script"),
        "{solar}"
    );
    // Feed content used as is (its page is missing): sanitized, links absolute.
    let grain = content(entry(&all, "Grain corridor ships"));
    assert!(grain.contains("record volume of grain"), "{grain}");
    assert!(grain.contains("href=\"http://news.example/economy\""), "{grain}");
    assert!(
        !grain.contains("alert") && !grain.contains("javascript:") && !grain.contains("onclick"),
        "{grain}"
    );
    // Nothing anywhere in the output can run.
    assert!(!atom.contains("&lt;script") && !atom.contains("javascript:"), "{atom}");
    // Newest first.
    assert!(
        all[0].0.starts_with("Europe's largest solar farm"),
        "{:?}",
        all.iter().map(|e| &e.0).collect::<Vec<_>>()
    );

    // The daemon's start-up poll found nothing new and fetched no page again.
    assert_eq!(fixture.hits(NORTH_KOREA_PAGE), 1);

    // 3. SIGTERM: a clean exit well within 10 s.
    let status = daemon.terminate(Duration::from_secs(10)).expect("daemon exits within 10 s of SIGTERM");
    assert!(status.success(), "exit status {status:?}");
}

#[test]
fn failing_sources_are_recorded_and_do_not_stop_the_others() {
    let fixture = Fixture::news_web().start();
    let work = Workspace::new();
    let config = work.config(&format!(
        r#"
[storage]
path = "{db}"
[fetch]
proxy = "{proxy}"
timeout_secs = 5
[[sources]]
name = "broken"
url = "http://broken.example/feed.xml"
[[sources]]
name = "html-not-feed"
url = "http://broken.example/page.html"
[[sources]]
name = "missing"
url = "http://nowhere.example/rss"
[[sources]]
name = "example"
url = "http://news.example/atom.xml"
full_text = false
"#,
        db = work.path("data/feedmill.db").display(),
        proxy = fixture.proxy_url()
    ));
    let output = run_feedmill(&["poll", "-c", config.to_str().unwrap()]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "one source worked, so poll succeeds: {stdout}");
    assert!(stdout.contains("broken: FAILED (HTTP 500)"), "{stdout}");
    assert!(stdout.contains("html-not-feed: FAILED") && stdout.contains("not a readable feed"), "{stdout}");
    assert!(stdout.contains("missing: FAILED (HTTP 404)"), "{stdout}");
    assert!(stdout.contains("example: HTTP 200, 2 new"), "{stdout}");

    // The failure is stored on the source; the items of the good one are stored.
    let db = work.db();
    let (errors, last_error): (i64, String) =
        db.one("SELECT error_count, last_error FROM sources WHERE name = 'broken'", &[]);
    assert_eq!(errors, 1);
    assert!(last_error.contains("HTTP 500"), "{last_error}");
    let items: i64 = db.one("SELECT COUNT(*) FROM items", &[]);
    assert_eq!(items, 2);

    // The good source now breaks too: nothing already stored is lost.
    fixture.add("news.example/atom.xml", 503, "text/plain", b"maintenance".to_vec());
    let output = run_feedmill(&["poll", "-c", config.to_str().unwrap(), "--source", "example"]);
    assert_eq!(output.status.code(), Some(1), "the only polled source failed");
    let items: i64 = db.one("SELECT COUNT(*) FROM items", &[]);
    assert_eq!(items, 2);
}

#[test]
fn conditional_get_is_sent_and_304_is_nothing_new() {
    let fixture = Fixture::news_web().start();
    let work = Workspace::new();
    let config = work.config(&format!(
        "[storage]\npath = \"{}\"\n[fetch]\nproxy = \"{}\"\n[[sources]]\nname = \"example\"\nurl = \"http://news.example/etag.xml\"\nfull_text = false\n",
        work.path("db.sqlite").display(),
        fixture.proxy_url()
    ));
    fixture.add(
        "news.example/etag.xml",
        200,
        "application/atom+xml",
        common::fixture_file("example/atom.xml"),
    );
    let first = run_feedmill(&["poll", "-c", config.to_str().unwrap()]);
    assert!(String::from_utf8_lossy(&first.stdout).contains("2 new"));
    // The fixture sends no validators, so the second poll is a full one that finds duplicates.
    let second = run_feedmill(&["poll", "-c", config.to_str().unwrap()]);
    assert!(
        String::from_utf8_lossy(&second.stdout).contains("0 new"),
        "{}",
        String::from_utf8_lossy(&second.stdout)
    );
}

#[test]
fn invalid_config_exits_2_naming_file_line_and_key() {
    let work = Workspace::new();
    let cases = [
        ("[feed]\ntitle = \"x\"\ncolour = \"red\"\n", 3, "colour"),
        ("[[sources]]\nname = \"a\"\nurl = \"not a url\"\n", 3, "sources[0].url"),
        ("[[sources]]\nname = \"a\"\nurl = \"https://e.com/\"\nschedule = \"61 * * * * *\"\n", 4, "sources[0].schedule"),
        (
            "[[sources]]\nname = \"a\"\nurl = \"https://e.com/1\"\n\n[[sources]]\nname = \"a\"\nurl = \"https://e.com/2\"\n",
            6,
            "sources[1].name",
        ),
        ("[[sites]]\nhosts = [\"e.com\"]\nbody = [\"p:::\"]\n", 3, "sites[0].body"),
    ];
    for (text, line, key) in cases {
        let config = work.config(text);
        for command in ["check-config", "poll", "run"] {
            let output = run_feedmill(&[command, "-c", config.to_str().unwrap()]);
            let stderr = String::from_utf8_lossy(&output.stderr);
            assert_eq!(output.status.code(), Some(2), "{command} with {text:?}: {stderr}");
            let location = format!("{}:{line}:", config.display());
            assert!(stderr.contains(&location) && stderr.contains(key), "{command}: {stderr}");
        }
    }
    assert!(!work.path("data").exists(), "nothing was started");
}

#[test]
fn a_database_url_never_shows_its_password() {
    let work = Workspace::new();
    let url = "postgresql://feedmill:hunter2@127.0.0.1:1/news?sslmode=disable";
    let config = work.sqlite_config(&format!("[storage]\ndatabase_url = \"{url}\"\n"));
    let output = run_feedmill(&["check-config", "-c", config.to_str().unwrap()]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    assert!(stdout.contains("storage: PostgreSQL feedmill@127.0.0.1:1/news"), "{stdout}");
    assert!(!stdout.contains("hunter2"));
    // Nothing listens there: the daemon stops with an error that names the database, not the URL.
    let output = run_feedmill(&["run", "-c", config.to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(
        stderr.contains("feedmill@127.0.0.1:1/news: cannot connect") && !stderr.contains("hunter2"),
        "{stderr}"
    );
    // The same URL from the environment, or from a credential file.
    let credential = work.path("db-url");
    std::fs::write(&credential, format!("{url}\n")).unwrap();
    let config = work
        .sqlite_config(&format!("[storage]\ndatabase_url_file = {:?}\n", credential.display().to_string()));
    let output = run_feedmill(&["check-config", "-c", config.to_str().unwrap()]);
    assert!(String::from_utf8_lossy(&output.stdout).contains("storage: PostgreSQL feedmill@127.0.0.1:1/news"));
    let config = work.sqlite_config("[storage]\npath = \"data/feedmill.db\"\n");
    let output = feedmill()
        .args(["check-config", "-c", config.to_str().unwrap()])
        .env("FEEDMILL_DATABASE_URL", url)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "a path and a database URL together: {stderr}");
    assert!(
        stderr.contains("storage.path") && stderr.contains("keep one") && !stderr.contains("hunter2"),
        "{stderr}"
    );
}

#[test]
fn check_config_prints_resolved_sources() {
    let work = Workspace::new();
    let config = work.config(
        "[defaults]\nevery = \"15m\"\n[[sources]]\nname = \"unn-uk\"\nurl = \"https://unn.ua/rss/news_uk.xml\"\n\
         [[sources]]\nname = \"world\"\nurl = \"https://unn.ua/en/rss/world_en.xml\"\nschedule = \"0 5 * * * *\"\nfull_text = false\ntags = [\"en\"]\n",
    );
    let output = run_feedmill(&["check-config", "-c", config.to_str().unwrap()]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success());
    assert!(
        stdout.contains("unn-uk  https://unn.ua/rss/news_uk.xml  every 900s  full_text=true"),
        "{stdout}"
    );
    assert!(
        stdout.contains(
            "world  https://unn.ua/en/rss/world_en.xml  cron \"0 5 * * * *\"  full_text=false tags=en"
        ),
        "{stdout}"
    );
}

#[test]
fn config_path_comes_from_the_environment() {
    let work = Workspace::new();
    let config = work.config("[[sources]]\nname = \"from-env\"\nurl = \"https://e.com/rss\"\n");
    let output = common::feedmill().env("FEEDMILL_CONFIG", &config).arg("check-config").output().unwrap();
    assert!(String::from_utf8_lossy(&output.stdout).contains("from-env"));
}

#[test]
fn shipped_default_config_is_valid() {
    let config = concat!(env!("CARGO_MANIFEST_DIR"), "/config/feedmill.toml");
    let output = run_feedmill(&["check-config", "-c", config]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    assert!(stdout.contains("https://unn.ua/rss/news_uk.xml"));
    assert_eq!(stdout.matches("https://unn.ua/en/rss/").count(), 2, "{stdout}");
}

#[test]
fn extract_keeps_the_input_order_whatever_the_number_of_jobs() {
    // The first page is long (slow to extract) and the rest short, so with several jobs the later
    // pages are extracted first: the outputs must still come in input order, and a failing input
    // is reported in its place without stopping the others.
    use std::io::Write;
    let workspace = Workspace::new();
    let mut inputs = Vec::new();
    for page in 0..12 {
        let paragraphs = if page == 0 { 4000 } else { 3 };
        let body: String = (0..paragraphs)
            .map(|n| {
                format!("<p>Page {page} paragraph {n} carries enough words to count as article text.</p>")
            })
            .collect();
        let html = format!(
            "<html><head><title>Page {page}</title></head><body><article>{body}</article></body></html>"
        );
        let path = workspace.path(&format!("page{page:02}.html.gz"));
        let mut gzip = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gzip.write_all(html.as_bytes()).unwrap();
        std::fs::write(&path, gzip.finish().unwrap()).unwrap();
        inputs.push(path.display().to_string());
        if page == 5 {
            inputs.push(workspace.path("missing.html").display().to_string());
        }
    }
    let run = |jobs: &str| {
        let mut args = vec!["extract", "--format", "json", "--jobs", jobs];
        args.extend(inputs.iter().map(String::as_str));
        let output = run_feedmill(&args);
        assert_eq!(output.status.code(), Some(1), "the missing input fails the run");
        let pages: Vec<serde_json::Value> = serde_json::Deserializer::from_slice(&output.stdout)
            .into_iter()
            .collect::<Result<_, _>>()
            .expect("one JSON document per page");
        let titles: Vec<String> =
            pages.iter().map(|p| p["title"].as_str().unwrap_or_default().to_owned()).collect();
        (titles, String::from_utf8_lossy(&output.stderr).into_owned())
    };
    let (titles, errors) = run("4");
    assert_eq!(titles, (0..12).map(|n| format!("Page {n}")).collect::<Vec<_>>());
    assert!(errors.contains("missing.html: cannot read"), "{errors}");
    assert_eq!(run("1"), (titles, errors));
}

#[test]
fn a_reader_that_goes_away_ends_a_command_quietly() {
    // `feedmill … | head`: once the reader has gone, the rest of the output is dropped and the
    // command finishes normally, without a panic and its backtrace.
    let config = concat!(env!("CARGO_MANIFEST_DIR"), "/config/feedmill.toml");
    let page = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/unn/north-korea.html");
    for args in
        [vec!["check-config", "-c", config], vec!["opml", "export", "-c", config], vec!["extract", page]]
    {
        let (reader, writer) = std::io::pipe().unwrap();
        drop(reader);
        let output = common::feedmill().args(&args).stdout(writer).output().unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
        assert!(output.status.success(), "{args:?}: {:?} {stderr}", output.status);
    }
    // Output that cannot be written for another reason (a full disk) fails the command.
    if let Ok(full) = std::fs::OpenOptions::new().write(true).open("/dev/full") {
        let output = common::feedmill().args(["check-config", "-c", config]).stdout(full).output().unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(1), "{stderr}");
        assert!(stderr.contains("cannot write to stdout: No space left on device"), "{stderr}");
    }
}

#[test]
fn extract_json_reports_metadata_and_rules_test_checks_test_pages() {
    // The UNN fixture page through the built-in rule: body, step and metadata.
    let page = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/unn/north-korea.html");
    let url = "https://unn.ua/en/news/north-korea-to-send-almost-30000-troops-to-reinforce-russia-in-war-against-ukraine-cnn";
    let output = run_feedmill(&["extract", "--format", "json", "--url", url, page]);
    let json: serde_json::Value = serde_json::from_slice(&output.stdout).expect("JSON output");
    assert_eq!(json["step"], "rule");
    assert_eq!(
        json["title"],
        "North Korea to send almost 30,000 troops to reinforce Russia in war against Ukraine - CNN"
    );
    assert_eq!(json["authors"], serde_json::json!(["Liliia Naboka"]));
    assert_eq!(json["tags"], serde_json::json!(["Kim Jong Un", "North Korea", "Ukraine"]));
    assert_eq!(json["image"], "https://unn.ua/img/2025/07/02/1751447713-3857.jpeg");
    assert!(json["text"].as_str().unwrap().starts_with("North Korea plans to send an additional"));

    // `rules test`: a rule whose test page still matches passes, a redesigned one fails.
    let fixture = Fixture::default();
    fixture.add(
        "rules.example/ok",
        200,
        "text/html",
        b"<html><body><article><p>The expected sentence is here.</p></article></body></html>".to_vec(),
    );
    fixture.add(
        "rules.example/redesigned",
        200,
        "text/html",
        b"<html><body><main><p>The expected sentence moved.</p></main></body></html>".to_vec(),
    );
    let fixture = fixture.start();
    let work = Workspace::new();
    let config = work.config(&format!(
        "[fetch]\nproxy = \"{}\"\n[[sites]]\nhosts = [\"rules.example\"]\nbody = [\"article\"]\n\
         test_url = [\"http://rules.example/ok\", \"http://rules.example/redesigned\"]\ntest_contains = [\"expected sentence\"]\n",
        fixture.proxy_url()
    ));
    let output = run_feedmill(&["rules", "test", "rules.example", "-c", config.to_str().unwrap()]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains("PASS rules.example (user config) http://rules.example/ok"), "{stdout}");
    assert!(
        stdout.contains(
            "FAIL rules.example (user config) http://rules.example/redesigned: no body selector matched"
        ),
        "{stdout}"
    );
    assert_eq!(output.status.code(), Some(1));
    assert_eq!(stdout.lines().count(), 2, "only the rules for the named host: {stdout}");
}

#[test]
fn multi_page_articles_are_joined_in_order_and_bounded() {
    let fixture = Fixture::default();
    let html = "text/html; charset=utf-8";
    fixture.add(
        "multi.example/feed",
        200,
        "application/rss+xml",
        rss("", &[("m1", "http://multi.example/story")]),
    );
    let part = |n: usize, next: &str| {
        format!(
            "<html><body><article><div class=text><p>Part {n} of the long story, with enough words to count as a body.</p></div>\
             <a class=next href=\"{next}\">Next page</a></article></body></html>"
        )
        .into_bytes()
    };
    fixture.add("multi.example/story", 200, html, part(1, "/story/2"));
    fixture.add("multi.example/story/2", 200, html, part(2, "/story/3#top"));
    // The last page links back to the first: the loop ends the article.
    fixture.add("multi.example/story/3", 200, html, part(3, "http://multi.example/story"));
    // A second article whose "next page" chain never ends stops at MAX_PAGES (10) pages.
    fixture.add(
        "endless.example/feed",
        200,
        "application/rss+xml",
        rss("", &[("e1", "http://endless.example/p/1")]),
    );
    for n in 1..=20 {
        fixture.add(&format!("endless.example/p/{n}"), 200, html, part(n, &format!("/p/{}", n + 1)));
    }
    let fixture = fixture.start();
    let work = Workspace::new();
    let config = work.config(&format!(
        "[storage]\npath = \"{}\"\n[fetch]\nproxy = \"{}\"\nper_host_rate = 1000\n\
         [[sources]]\nname = \"multi\"\nurl = \"http://multi.example/feed\"\n\
         [[sources]]\nname = \"endless\"\nurl = \"http://endless.example/feed\"\n\
         [[sites]]\nhosts = [\"multi.example\", \"endless.example\"]\nbody = [\"article .text\"]\nnext_page = [\"a.next\"]\n",
        work.path("data/feedmill.db").display(),
        fixture.proxy_url()
    ));
    let output = run_feedmill(&["poll", "-c", config.to_str().unwrap()]);
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let text = |guid: &str| -> String {
        work.db().one(
            "SELECT content_text FROM items JOIN item_guids g ON g.item_id = items.id WHERE g.guid = ?1",
            &[guid],
        )
    };
    let multi = text("m1");
    let parts: Vec<&str> = multi.lines().collect();
    assert_eq!(parts.len(), 3, "{multi:?}");
    for (i, line) in parts.iter().enumerate() {
        assert!(line.starts_with(&format!("Part {} of", i + 1)), "{multi}");
    }
    assert!(!multi.contains("Next page"));
    assert_eq!(fixture.hits("multi.example/story"), 1, "the loop back is not fetched again");
    assert_eq!(text("e1").lines().count(), 10);
    assert_eq!(fixture.hits("endless.example/p/11"), 0);
}
