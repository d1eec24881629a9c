//! Sources without a feed, end to end: a Telegram channel's preview, an HTML listing page and a
//! sitemap index polled by the real binary on the loopback fixture web, beside an RSS feed, into
//! one merged feed; and the Telegram reader on a preview page written from public evidence of
//! its markup (see the comment in `tests/fixtures/telegram/unn_channel.html`).

mod common;

use chrono::{DateTime, Utc};
use feedmill::config::{SourceKind, Telegram};
use url::Url;

use common::{
    feedmill, feedparser, fixture_file, free_port, http_get, served_at, validate_atom, Daemon, Fixture,
    Workspace,
};

const NORTH_KOREA: &str =
    "http://unn.ua/en/news/north-korea-to-send-almost-30000-troops-to-reinforce-russia-in-war-against-ukraine-cnn";

fn telegram() -> SourceKind {
    SourceKind::Telegram(Telegram { channel: "unn_test".into(), max_pages: 3 })
}

fn long_ago() -> DateTime<Utc> {
    DateTime::from_timestamp(0, 0).unwrap()
}

#[test]
fn a_channel_preview_gives_one_clean_item_per_message() {
    let url = Url::parse("https://t.me/s/unn_test").unwrap();
    let page = fixture_file("telegram/unn_channel.html");
    let parsed = feedmill::feed::read(&telegram(), &page, &url, long_ago()).unwrap();
    assert_eq!(parsed.title.as_deref(), Some("UNN test (@unn_test)"));
    assert_eq!(parsed.older.as_ref().map(Url::as_str), Some("https://t.me/s/unn_test?before=100"));
    let items = parsed.items;
    let guids: Vec<&str> = items.iter().map(|i| i.guid.as_str()).collect();
    assert_eq!(
        guids,
        (101..=106).map(|n| format!("https://t.me/unn_test/{n}")).collect::<Vec<_>>(),
        "no service message"
    );
    let body = |n: usize| items[n].content.clone().unwrap_or_default();
    for (n, item) in items.iter().enumerate() {
        let html = body(n);
        assert_eq!(item.link.as_ref().map(Url::as_str), Some(item.guid.as_str()));
        assert!(item.published.is_some(), "{}", item.guid);
        for furniture in
            ["views", "48.2K", "Please open Telegram", "VIEW IN TELEGRAM", "style=", "emoji/", "class="]
        {
            assert!(!html.contains(furniture), "{furniture} in {}: {html}", item.guid);
        }
    }
    // A photo post: the photo from the preview's background image, the first line as the title.
    assert_eq!(items[0].title, "🚨 Air defence shot down 20 drones overnight");
    assert!(body(0).contains("<img src=\"https://cdn4.telesco.pe/file/photo-101.jpg\""), "{}", body(0));
    assert!(
        body(0).contains("<a href=\"https://t.me/kpszsu\">air defence</a>")
            && body(0).contains("<i>without</i>")
    );
    assert_eq!(items[0].author.as_deref(), Some("UNN test"));
    // A custom emoji alone: its character, no image wrapper.
    assert_eq!((items[1].title.as_str(), body(1).as_str()), ("👍", "<p>👍</p>"));
    // Forwarded: named and linked.
    assert!(body(2).contains("Forwarded from <a href=\"https://t.me/kpszsu/9001\">Air Force of Ukraine</a>"));
    assert_eq!(items[2].title, "Threat of ballistic missiles from the north.");
    // A reply quotes what it answers; its own text is the title.
    assert_eq!(items[3].title, "All clear in Kyiv.");
    assert!(
        body(3).starts_with("<blockquote><p><a href=\"https://t.me/unn_test/103\">UNN test</a></p><p>Threat")
    );
    // A link preview: quoted, and the article it cites.
    assert_eq!(
        items[4].cites.as_ref().map(|u| u.as_str().split('?').next().unwrap_or_default()),
        Some(NORTH_KOREA)
    );
    assert!(
        body(4).contains("UNN: North Korea to send almost 30,000 troops") && body(4).contains("<blockquote>")
    );
    // A video post without text: its poster, a title saying what it is, the post's signature.
    assert_eq!(items[5].title, "@unn_test posted a video");
    assert!(body(5).contains("video-106.jpg"));
    assert_eq!(items[5].author.as_deref(), Some("Olena Petrenko"));
}

#[test]
fn a_channel_that_does_not_exist_is_a_named_error() {
    // t.me answers an unknown or private channel's preview with its plain landing page.
    let page = b"<html><body><div class=\"tgme_page\"><div class=\"tgme_page_title\">Telegram</div></div></body></html>";
    let url = Url::parse("https://t.me/s/unn_test").unwrap();
    let error = feedmill::feed::read(&telegram(), page, &url, long_ago()).unwrap_err();
    assert!(error.to_string().contains("`unn_test` does not exist or is not public"), "{error}");
}

/// A Google News sitemap listing `path` on news.example, published `at`: the sitemap protocol's
/// `urlset`/`url`/`loc` (sitemaps.org) with Google's news extension (`news:news`,
/// `news:publication` with `news:name` and `news:language`, `news:publication_date`, `news:title`).
fn news_sitemap(path: &str, title: &str, at: DateTime<Utc>) -> Vec<u8> {
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n\
         <urlset xmlns=\"http://www.sitemaps.org/schemas/sitemap/0.9\" \
         xmlns:news=\"http://www.google.com/schemas/sitemap-news/0.9\">\
         <url><loc>http://news.example{path}</loc><news:news><news:publication><news:name>Example</news:name>\
         <news:language>en</news:language></news:publication>\
         <news:publication_date>{}</news:publication_date><news:title>{title}</news:title></news:news></url>\
         </urlset>",
        at.to_rfc3339()
    )
    .into_bytes()
}

#[test]
fn telegram_html_and_sitemap_sources_join_a_feed_in_one_merged_feed() {
    let fixture = Fixture::news_web();
    let html = "text/html; charset=utf-8";
    let xml = "application/xml";
    fixture.add("t.me/s/unn_test", 200, html, fixture_file("telegram/unn_channel.html"));
    fixture.add(
        "t.me/s/unn_test?before=100",
        200,
        html,
        b"<section class=tgme_channel_history></section>".to_vec(),
    );
    fixture.add("news.example/latest/", 200, html, fixture_file("listing/latest.html"));
    fixture.add("news.example/latest/science/wind-farm", 200, html, common::page("wind"));
    // A sitemap index that lists itself, an old child and today's news sitemap.
    let now = Utc::now();
    fixture.add(
        "news.example/sitemap_index.xml",
        200,
        xml,
        format!(
            "<sitemapindex xmlns=\"http://www.sitemaps.org/schemas/sitemap/0.9\">\
             <sitemap><loc>http://news.example/sitemap_index.xml</loc><lastmod>{now}</lastmod></sitemap>\
             <sitemap><loc>http://news.example/sitemap-2019.xml</loc><lastmod>2019-01-01</lastmod></sitemap>\
             <sitemap><loc>/sitemap-broken.xml</loc><lastmod>{now}</lastmod></sitemap>\
             <sitemap><loc>/sitemap-news.xml</loc><lastmod>{now}</lastmod></sitemap></sitemapindex>",
            now = now.to_rfc3339()
        )
        .into_bytes(),
    );
    fixture.add("news.example/sitemap-2019.xml", 200, xml, news_sitemap("/old", "Old", now));
    // An unreadable child costs only its own items.
    fixture.add(
        "news.example/sitemap-broken.xml",
        200,
        xml,
        b"<urlset><url><loc>http://news.example/x</wrong></urlset>".to_vec(),
    );
    fixture.add(
        "news.example/sitemap-news.xml",
        200,
        xml,
        news_sitemap("/science/tidal-plant", "Tidal plant starts up", now - chrono::Duration::hours(1)),
    );
    let fixture = fixture.start();
    let work = Workspace::new();
    let port = free_port();
    let config = work.config(&format!(
        "{}[fetch]\nproxy = \"{}\"\n[defaults]\nevery = \"1h\"\n\
         [[sources]]\nname = \"unn-telegram\"\nurl = \"http://t.me/unn_test\"\nmax_pages = 2\n\
         [[sources]]\nname = \"world\"\nurl = \"http://unn.ua/en/rss/world_en.xml\"\nfull_text = false\n\
         [[sources]]\nname = \"latest\"\nurl = \"http://news.example/latest/\"\nkind = \"html\"\n\
         item = \"article.c-article-card\"\nlink = \"a[href]\"\ntitle = \"h3\"\ndate = \"time\"\nsummary = \"p\"\nfull_text = false\n\
         [[sources]]\nname = \"sitemap\"\nurl = \"http://news.example/sitemap_index.xml\"\nfull_text = false\n",
        served_at(port),
        fixture.proxy_url()
    ));
    let check = feedmill().args(["check-config", "-c", config.to_str().unwrap()]).output().unwrap();
    let printed = String::from_utf8_lossy(&check.stdout);
    assert!(check.status.success(), "{}", String::from_utf8_lossy(&check.stderr));
    for line in
        ["unn-telegram  http://t.me/s/unn_test", "kind=telegram", "kind=feed", "kind=html", "kind=sitemap"]
    {
        assert!(printed.contains(line), "{line} in {printed}");
    }

    let mut daemon = Daemon::start(&config, port);
    let base = daemon.base.clone();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let atom = loop {
        let (_, _, atom) = http_get(&format!("{base}/feed.atom")).unwrap();
        if ["@unn_test posted a video", "Solar farm opens", "Tidal plant starts up", "North Korea"]
            .iter()
            .all(|title| atom.contains(title))
        {
            break atom;
        }
        assert!(std::time::Instant::now() < deadline, "not every kind arrived: {atom}");
        std::thread::sleep(std::time::Duration::from_millis(200));
    };
    validate_atom(&atom);
    // Real readers take the mixed feed: every entry, from all four kinds.
    let telegram_post = "https://t.me/unn_test/101";
    for feed in ["feed.atom", "feed.rss"] {
        if let Some(entries) = feedparser(&base, feed) {
            assert!(entries.iter().any(|(_, link)| link == telegram_post), "{feed}: {entries:?}");
            assert!(
                entries.iter().any(|(_, link)| link == "http://news.example/science/tidal-plant"),
                "{feed}"
            );
        }
        if let Some(cache) = common::newsboat_reload(&base, &work, feed) {
            let count = |link: &str| -> i64 {
                cache.query_row("SELECT COUNT(*) FROM rss_item WHERE url = ?1", [link], |r| r.get(0)).unwrap()
            };
            assert_eq!(count(telegram_post), 1, "newsboat, {feed}");
            assert_eq!(count("http://news.example/science/solar-farm"), 1, "newsboat, {feed}");
        }
    }
    // The Telegram post citing UNN's article is a report of that story, not a second entry.
    let (_, _, json) = http_get(&format!("{base}/feed.json")).unwrap();
    common::validate_json_feed(&json);
    let json: serde_json::Value = serde_json::from_str(&json).unwrap();
    let items = json["items"].as_array().unwrap();
    let korea: Vec<&serde_json::Value> =
        items.iter().filter(|i| i["title"].as_str().is_some_and(|t| t.contains("North Korea"))).collect();
    assert_eq!(korea.len(), 1, "one entry for the story: {korea:#?}");
    let content = korea[0]["content_html"].as_str().unwrap_or_default();
    assert!(content.contains("Also reported by") && content.contains("(@unn_test)"), "{content}");
    // Nothing from the sitemap that is out of the window, or that the index only repeats.
    assert_eq!(fixture.hits("news.example/sitemap-2019.xml"), 0);
    assert_eq!(fixture.hits("news.example/sitemap-broken.xml"), 1);
    assert_eq!(fixture.hits("news.example/sitemap_index.xml"), 1, "an index listing itself is read once");
    assert_eq!(fixture.hits("t.me/s/unn_test?before=100"), 1, "every message was new: one older page read");
    // The status page names each source's kind.
    let (_, _, status) = http_get(&format!("{base}/")).unwrap();
    for kind in ["<td>telegram</td>", "<td>html</td>", "<td>sitemap</td>", "<td>feed</td>"] {
        assert!(status.contains(kind), "{kind}");
    }
    daemon.terminate(std::time::Duration::from_secs(10));

    // An edited post (same id, new text) is an update of its item, not a new one.
    let edited = String::from_utf8(fixture_file("telegram/unn_channel.html"))
        .unwrap()
        .replace("without</i> casualties", "without</i> casualties, officials said later");
    fixture.add("t.me/s/unn_test", 200, html, edited.into_bytes());
    let poll = feedmill()
        .current_dir(work.path(""))
        .args(["poll", "-c", config.to_str().unwrap(), "--source", "unn-telegram"])
        .output()
        .unwrap();
    assert!(poll.status.success(), "{}", String::from_utf8_lossy(&poll.stderr));
    let db = work.db();
    let rows: Vec<String> =
        db.all("SELECT content_html FROM items WHERE link = 'https://t.me/unn_test/101'", &[]);
    assert_eq!(rows.len(), 1, "one item for the edited post");
    assert!(rows[0].contains("officials said later"), "{}", rows[0]);
    assert_eq!(
        fixture.hits("t.me/s/unn_test?before=100"),
        1,
        "no catch-up when the newest page has known posts"
    );
}

/// `feedmill ARGS -c CONFIG` in the config's folder.
fn run_with(config: &std::path::Path, args: &[&str]) -> std::process::Output {
    feedmill()
        .current_dir(config.parent().unwrap())
        .args(args)
        .args(["-c", config.to_str().unwrap()])
        .output()
        .unwrap()
}

#[test]
fn a_page_that_links_a_feed_is_polled_through_that_feed() {
    let fixture = Fixture::default();
    let page = "<!DOCTYPE html><html><head><title>Example news</title>\
        <link rel=\"alternate\" type=\"application/rss+xml\" title=\"RSS\" href=\"/rss.xml\">\
        <link rel=\"alternate\" type=\"application/atom+xml\" title=\"Atom\" href=\"/atom.xml\">\
        </head><body><p>Front page</p></body></html>";
    fixture.add("news.example/", 200, "text/html", page.as_bytes().to_vec());
    fixture.add("news.example/atom.xml", 200, "application/atom+xml", fixture_file("example/atom.xml"));
    fixture.add(
        "news.example/rss.xml",
        200,
        "application/rss+xml",
        common::rss("", &[("r1", "http://news.example/r1")]),
    );
    fixture.add("news.example/latest/", 200, "text/html", fixture_file("listing/latest.html"));
    let fixture = fixture.start();
    let work = Workspace::new();
    let config = work.config(&format!(
        "{}[fetch]\nproxy = \"{}\"\n[defaults]\nfull_text = false\n\
         [[sources]]\nname = \"front\"\nurl = \"http://news.example/\"\n\
         [[sources]]\nname = \"latest\"\nurl = \"http://news.example/latest/\"\nkind = \"html\"\n\
         item = \"article.c-article-card\"\nlink = \"a\"\ntitle = \"h3\"\ndate = \"time\"\n",
        served_at(free_port()),
        fixture.proxy_url()
    ));
    // `discover` lists what the page offers, Atom first.
    let discovered = run_with(&config, &["discover", "http://news.example/"]);
    let printed = String::from_utf8_lossy(&discovered.stdout);
    assert!(discovered.status.success(), "{}", String::from_utf8_lossy(&discovered.stderr));
    let lines: Vec<&str> = printed.lines().collect();
    assert_eq!(lines, ["http://news.example/atom.xml  atom  Atom", "http://news.example/rss.xml  rss  RSS"]);
    let feed = run_with(&config, &["discover", "http://news.example/atom.xml"]);
    assert!(String::from_utf8_lossy(&feed.stdout).contains("is a feed"));

    // The source polls the preferred feed, with a warning naming it, and from then on directly.
    let first = run_with(&config, &["poll", "--source", "front"]);
    let stdout = String::from_utf8_lossy(&first.stdout);
    let stderr = String::from_utf8_lossy(&first.stderr);
    assert!(
        first.status.success() && stdout.contains("front: HTTP 200") && !stdout.contains("FAILED"),
        "{stdout}{stderr}"
    );
    assert!(stderr.contains("http://news.example/atom.xml"), "the warning names the feed: {stderr}");
    let (page_hits, feed_hits) = (fixture.hits("news.example/"), fixture.hits("news.example/atom.xml"));
    let second = run_with(&config, &["poll", "--source", "front"]);
    assert!(second.status.success());
    assert_eq!(fixture.hits("news.example/"), page_hits, "the page is not asked again");
    assert_eq!(fixture.hits("news.example/atom.xml"), feed_hits + 1);
    assert_eq!(fixture.hits("news.example/rss.xml"), 0);

    // `check-source` shows what a listing's selectors find, without storing anything.
    let checked = run_with(&config, &["check-source", "latest"]);
    let printed = String::from_utf8_lossy(&checked.stdout);
    assert!(checked.status.success(), "{}", String::from_utf8_lossy(&checked.stderr));
    assert!(printed.contains("latest (html): 2 items"), "{printed}");
    assert!(
        printed.contains("2026-12-02T07:15:00+00:00  http://news.example/science/solar-farm"),
        "{printed}"
    );
    assert!(printed.contains("no date  http://news.example/latest/science/wind-farm"), "{printed}");
    let stored: i64 = work.db().one(
        "SELECT COUNT(*) FROM items i JOIN sources s ON s.id = i.source_id WHERE s.name = 'latest'",
        &[],
    );
    assert_eq!(stored, 0);
}

#[test]
fn hostile_previews_listings_and_sitemaps_fail_cleanly_in_bounded_memory() {
    let fixture = Fixture::default();
    let html = "text/html";
    let xml = "application/xml";
    // A 64 MiB preview page: over the body cap, a named error.
    let mut huge = b"<html><body><section class=\"tgme_channel_history\">".to_vec();
    huge.resize(64 * 1024 * 1024, b'a');
    fixture.add("t.me/s/huge", 200, html, huge);
    // 100,000 nested elements around an item of a listing: parsed flattened below depth 512 as
    // browsers do (the deep item's own tags are lost, its text kept), in bounded time.
    let nested = format!(
        "<html><body><article class=card><a href=\"/shallow\">Shallow</a></article>{}\
         <article class=card><a href=\"/deep\">Deep</a></article>{}</body></html>",
        "<div>".repeat(100_000),
        "</div>".repeat(100_000)
    );
    fixture.add("deep.example/", 200, html, nested.into_bytes());
    // A sitemap index that lists only itself.
    fixture.add(
        "loop.example/sitemap_index.xml",
        200,
        xml,
        b"<sitemapindex><sitemap><loc>http://loop.example/sitemap_index.xml</loc></sitemap></sitemapindex>"
            .to_vec(),
    );
    // 50,000 URLs in one sitemap.
    let mut urls = String::from("<urlset xmlns=\"http://www.sitemaps.org/schemas/sitemap/0.9\">");
    for n in 0..50_000 {
        urls.push_str(&format!("<url><loc>http://big.example/story/{n}</loc></url>"));
    }
    urls.push_str("</urlset>");
    fixture.add("big.example/sitemap.xml", 200, xml, urls.into_bytes());
    // A listing whose item selector matches nothing.
    fixture.add("empty.example/", 200, html, b"<html><body><p>Redesigned</p></body></html>".to_vec());
    let fixture = fixture.start();
    let work = Workspace::new();
    let config = work.config(&format!(
        "[storage]\npath = \"data/feedmill.db\"\n[fetch]\nproxy = \"{}\"\nper_host_rate = 100\n[defaults]\nfull_text = false\n\
         [[sources]]\nname = \"huge\"\nurl = \"http://t.me/s/huge\"\n\
         [[sources]]\nname = \"deep\"\nurl = \"http://deep.example/\"\nkind = \"html\"\nitem = \"article.card\"\nlink = \"a\"\n\
         [[sources]]\nname = \"loop\"\nurl = \"http://loop.example/sitemap_index.xml\"\n\
         [[sources]]\nname = \"big\"\nurl = \"http://big.example/sitemap.xml\"\n\
         [[sources]]\nname = \"empty\"\nurl = \"http://empty.example/\"\nkind = \"html\"\nitem = \"article.card\"\nlink = \"a\"\n",
        fixture.proxy_url()
    ));
    // Under GNU time where it is installed, to read the peak memory of the whole poll.
    let (mut command, timed) = common::feedmill_timed();
    let started = std::time::Instant::now();
    let output =
        command.current_dir(work.path("")).args(["poll", "-c", config.to_str().unwrap()]).output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    let line = |name: &str| {
        stdout.lines().find(|l| l.starts_with(&format!("{name}: "))).unwrap_or_default().to_owned()
    };
    assert!(line("huge").contains("FAILED") && line("huge").contains("larger than"), "{stdout}");
    assert!(line("deep").contains("1 new"), "{stdout}");
    assert!(line("loop").contains("0 new") && !line("loop").contains("FAILED"), "{stdout}");
    assert_eq!(fixture.hits("loop.example/sitemap_index.xml"), 1);
    assert!(line("big").contains("1000 new"), "the newest 1,000 of 50,000: {stdout}");
    assert!(
        line("empty").contains("FAILED") && line("empty").contains("`article.card` matched nothing"),
        "{stdout}"
    );
    assert!(started.elapsed() < std::time::Duration::from_secs(60), "took {:?}: {stdout}", started.elapsed());
    if timed {
        let peak_kb = common::peak_rss_kb(&stderr);
        assert!(peak_kb < 128 * 1024, "peak RSS {peak_kb} kB");
        eprintln!("peak RSS of the hostile poll of the new readers: {peak_kb} kB");
    }
}
