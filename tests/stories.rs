//! Stories end to end, with the real binary on the loopback fixture web: which report is
//! published (the earliest published, then a higher priority, whichever poll commits first),
//! entry ids that stay the same through a takeover (read by newsboat and feedparser before and
//! after), story pages, and one story across language editions declared by hreflang.

mod common;

use std::time::{Duration, Instant};

use common::{feedmill, feedparser, free_port, http_get, served_at, Daemon, Fixture, Workspace};

const STORY: &str =
    "North Korea will send almost thirty thousand more troops to reinforce Russian forces in the \
    war against Ukraine in the coming months, CNN reported on Tuesday, citing Western intelligence officials \
    familiar with the assessment. The new troops would join about eleven thousand soldiers already deployed.";
const REWRITE: &str = "KYIV. North Korea will send almost thirty thousand more troops to reinforce Russian forces \
    in the war against Ukraine in the coming months, CNN reported on Tuesday, citing Western intelligence \
    officials familiar with the assessment. The new troops would join about eleven thousand soldiers already deployed.";

fn rss(title: &str, items: &[(&str, &str, &str, &str)]) -> Vec<u8> {
    let items: String = items
        .iter()
        .map(|(guid, link, date, body)| {
            format!(
                "<item><title>{title} report</title><link>{link}</link><guid>{guid}</guid>\
                 <pubDate>{date}</pubDate><description>{body}</description></item>"
            )
        })
        .collect();
    format!(
        "<?xml version=\"1.0\"?><rss version=\"2.0\"><channel><title>{title}</title><link>http://x/</link>\
         <description>d</description>{items}</channel></rss>"
    )
    .into_bytes()
}

/// The merged Atom feed's entries: (id, link, updated).
fn entries(base: &str) -> Vec<(String, String, String)> {
    let (_, _, atom) = http_get(&format!("{base}/feed.atom")).unwrap();
    atom.split("<entry>")
        .skip(1)
        .map(|entry| {
            let between = |open: &str, close: &str| {
                let start = entry.find(open).map(|i| i + open.len()).unwrap_or(0);
                entry[start..].split(close).next().unwrap_or_default().to_owned()
            };
            (
                between("<id>", "</id>"),
                between("rel=\"alternate\" type=\"text/html\" href=\"", "\""),
                between("<updated>", "</updated>"),
            )
        })
        .collect()
}

/// Waits until the merged feed's only entry links `link`.
fn wait_for_link(base: &str, link: &str) -> (String, String, String) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let got = entries(base);
        if got.len() == 1 && got[0].1 == link {
            return got[0].clone();
        }
        assert!(Instant::now() < deadline, "the feed never showed {link} alone: {got:?}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// What newsboat's cache holds after a reload of `feed`: (guid, url) of every item.
fn newsboat(base: &str, work: &Workspace, feed: &str) -> Option<Vec<(String, String)>> {
    let db = common::newsboat_reload(base, work, feed)?;
    let mut query = db.prepare("SELECT guid, url FROM rss_item ORDER BY guid").unwrap();
    let rows = query.query_map([], |r| Ok((r.get(0)?, r.get(1)?))).unwrap().map(Result::unwrap).collect();
    Some(rows)
}

#[test]
fn the_published_report_is_the_earliest_then_the_highest_priority_and_its_entry_id_never_changes() {
    let fixture = Fixture::default();
    let rss_type = "application/rss+xml";
    let blog_link = "https://blog.example/korea";
    let unn_link = "http://agency.example/en/news/korea";
    let wire_link = "https://wire.example/korea";
    // The blog republished at 10:05; UNN's and the wire's feeds do not carry it yet.
    fixture.add(
        "blog.example/rss",
        200,
        rss_type,
        rss("Blog", &[("b1", blog_link, "Tue, 25 Nov 2026 10:05:00 +0000", REWRITE)]),
    );
    fixture.add("unn.ua/rss", 200, rss_type, rss("UNN", &[]));
    fixture.add("wire.example/rss", 200, rss_type, rss("Wire", &[]));
    let fixture = fixture.start();
    let work = Workspace::new();
    let port = free_port();
    let config = work.config(&format!(
        "{}[fetch]\nproxy = \"{}\"\n[defaults]\nevery = \"1s\"\nfull_text = false\n\
         [[sources]]\nname = \"blog\"\nurl = \"http://blog.example/rss\"\n\
         [[sources]]\nname = \"unn\"\nurl = \"http://unn.ua/rss\"\n\
         [[sources]]\nname = \"wire\"\nurl = \"http://wire.example/rss\"\npriority = 10\n",
        served_at(port),
        fixture.proxy_url()
    ));
    let daemon = Daemon::start(&config, port);
    let base = daemon.base.clone();
    let (id, _, first_updated) = wait_for_link(&base, blog_link);
    assert!(id.starts_with(&format!("{base}/stories/")), "a new story's id is its page: {id}");
    let before_newsboat = newsboat(&base, &work, "feed.atom");
    let before_rss = newsboat(&base, &work, "feed.rss");
    if let Some(entries) = feedparser(&base, "feed.atom") {
        assert_eq!(entries, vec![(id.clone(), blog_link.to_owned())]);
    }

    // UNN published it first (09:41), though it is polled later: its report takes over.
    fixture.add(
        "unn.ua/rss",
        200,
        rss_type,
        rss("UNN", &[("u1", unn_link, "Tue, 25 Nov 2026 09:41:00 +0000", STORY)]),
    );
    let (same_id, _, updated) = wait_for_link(&base, unn_link);
    assert_eq!(same_id, id, "a takeover keeps the entry's id");
    assert!(updated > first_updated, "a takeover is an update: {first_updated} → {updated}");
    let (_, _, json) = http_get(&format!("{base}/feed.json")).unwrap();
    let json: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(json["items"].as_array().unwrap().len(), 1);
    assert_eq!(json["items"][0]["id"], id.as_str());
    let content = json["items"][0]["content_html"].as_str().unwrap();
    assert!(
        content.contains("Also reported by: <a href=\"https://blog.example/korea\">Blog</a>"),
        "{content}"
    );
    assert!(content.contains(&format!("<a href=\"{id}\">all reports</a>")), "{content}");
    let (_, _, rss_feed) = http_get(&format!("{base}/feed.rss")).unwrap();
    assert!(rss_feed.contains(&format!("<guid isPermaLink=\"false\">{id}</guid>")));

    // The wire has a higher priority: its later report takes over again, same id.
    fixture.add(
        "wire.example/rss",
        200,
        rss_type,
        rss("Wire", &[("w1", wire_link, "Tue, 25 Nov 2026 11:00:00 +0000", STORY)]),
    );
    let (same_id, _, _) = wait_for_link(&base, wire_link);
    assert_eq!(same_id, id);

    // Real readers: one entry before and after, under the same id, now linking the wire.
    for (feed, before) in [("feed.atom", before_newsboat), ("feed.rss", before_rss)] {
        let Some(before) = before else { break };
        assert_eq!(before, vec![(id.clone(), blog_link.to_owned())], "newsboat before, {feed}");
        let after = newsboat(&base, &work, feed).unwrap();
        assert_eq!(after.len(), 1, "newsboat shows the story once after the takeover, {feed}: {after:?}");
        assert_eq!(after[0].0, id, "{feed}");
    }
    if let Some(entries) = feedparser(&base, "feed.rss") {
        assert_eq!(entries, vec![(id.clone(), wire_link.to_owned())]);
    }

    // The id resolves to the story's page; the JSON lists all three, the wire's published.
    let (status, content_type, html) = http_get(&id).unwrap();
    assert_eq!((status, content_type.as_str()), (200, "text/html; charset=utf-8"));
    assert!(html.contains("3 reports") && !html.contains("<script"), "{html}");
    for link in [blog_link, unn_link, wire_link] {
        assert!(html.contains(link), "{link} on {html}");
    }
    let (status, _, story) = http_get(&format!("{id}.json")).unwrap();
    assert_eq!(status, 200);
    let story: serde_json::Value = serde_json::from_str(&story).unwrap();
    assert_eq!(story["reports"][0]["url"], wire_link);
    assert_eq!(story["reports"][0]["published_report"], true);
    assert_eq!(story["reports"].as_array().unwrap().len(), 3);
    assert_eq!(http_get(&format!("{base}/stories/999999")).unwrap().0, 404);
    assert_eq!(http_get(&format!("{base}/stories/nope.json")).unwrap().0, 404);
    // Per-source feeds are unchanged: each source shows what it delivered.
    let (_, _, blog_feed) = http_get(&format!("{base}/sources/blog/feed.atom")).unwrap();
    assert!(blog_feed.contains(blog_link) && !blog_feed.contains(wire_link));
    // Item ids (what per-source feeds hand out) lead to their story.
    let item_id = blog_feed.split("<id>").nth(2).and_then(|s| s.split("</id>").next()).unwrap();
    assert!(item_id.contains("/items/"), "{item_id}");
    let (status, _, page) = http_get(item_id).unwrap();
    assert_eq!(status, 200, "{item_id} redirects to the story page");
    assert!(page.contains("3 reports"));
    assert_eq!(http_get(&format!("{base}/items/999999")).unwrap().0, 404);
}

/// `feedmill poll` in the config's folder (where its relative database path points).
fn poll(config: &std::path::Path, args: &[&str]) {
    let output = feedmill()
        .current_dir(config.parent().unwrap())
        .args(["poll", "-c", config.to_str().unwrap()])
        .args(args)
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
}

/// Text of its own for each `seed`: no two seeds' texts are near-duplicates.
fn words(vocabulary: &str, seed: usize) -> String {
    let vocabulary: Vec<&str> = vocabulary.split_whitespace().collect();
    (0..60)
        .map(|i| vocabulary[(i * (seed + 2) + seed * 5 + i * i) % vocabulary.len()])
        .collect::<Vec<_>>()
        .join(" ")
}

const UK_WORDS: &str = "сили оборони дрони область штаб уряд рада закон бюджет місто село школа лікарня \
    енергетика світло вода війна мир переговори союзники допомога зброя ракети фронт армія волонтери";
const EN_WORDS: &str =
    "forces defence drones region headquarters government council law budget city village \
    school hospital energy power water war peace talks allies aid weapons missiles front army volunteers";

/// An article page in `lang` declaring `alternates` (hreflang, href).
fn edition(lang: &str, title: &str, alternates: &[(&str, &str)], words: &str) -> Vec<u8> {
    let links: String = alternates
        .iter()
        .map(|(hreflang, href)| format!("<link rel=\"alternate\" hreflang=\"{hreflang}\" href=\"{href}\">"))
        .collect();
    let paragraph = format!("{words}. ");
    format!(
        "<!DOCTYPE html><html lang=\"{lang}\"><head><title>{title}</title>{links}</head><body>\
         <nav><a href=\"/\">Home</a></nav><article><h1>{title}</h1><p>{paragraph}</p><p>{paragraph}</p></article></body></html>"
    )
    .into_bytes()
}

#[test]
fn language_editions_declared_either_way_are_one_story_in_the_preferred_language() {
    let fixture = Fixture::default();
    let html = "text/html; charset=utf-8";
    let uk = |slug: &str| format!("http://agency.example/news/{slug}");
    let en = |slug: &str| format!("http://agency.example/en/news/{slug}");
    // a: both pages declare each other; b: only the Ukrainian page declares the English one;
    // c: only the English page declares the Ukrainian one; d: English only, no edition.
    let pages = [
        ("a", vec![("uk", uk("a")), ("en", en("a"))], vec![("uk", uk("a")), ("en", en("a"))]),
        ("b", vec![("en", en("b"))], vec![]),
        ("c", vec![], vec![("uk", uk("c"))]),
    ];
    let mut uk_items = Vec::new();
    let mut en_items = Vec::new();
    for (seed, (slug, uk_alternates, en_alternates)) in pages.iter().enumerate() {
        let uk_alts: Vec<(&str, &str)> = uk_alternates.iter().map(|(l, h)| (*l, h.as_str())).collect();
        let en_alts: Vec<(&str, &str)> = en_alternates.iter().map(|(l, h)| (*l, h.as_str())).collect();
        fixture.add(
            &format!("agency.example/news/{slug}"),
            200,
            html,
            edition("uk", &format!("Новина {slug}"), &uk_alts, &words(UK_WORDS, seed)),
        );
        fixture.add(
            &format!("agency.example/en/news/{slug}"),
            200,
            html,
            edition("en", &format!("News {slug}"), &en_alts, &words(EN_WORDS, seed)),
        );
        uk_items.push((format!("uk-{slug}"), uk(slug)));
        en_items.push((format!("en-{slug}"), en(slug)));
    }
    fixture.add("agency.example/en/news/d", 200, html, edition("en", "News d", &[], &words(EN_WORDS, 7)));
    en_items.push(("en-d".into(), en("d")));
    // c's English feed item carries more text than its page: the feed's text is published, and
    // the page still tells the item's language and editions.
    let long = format!("{} {}", words(EN_WORDS, 9), words(EN_WORDS, 9)).repeat(2);
    let feed = |items: &[(String, String)]| {
        let items: Vec<(&str, &str, &str, &str)> = items
            .iter()
            .map(|(g, l)| {
                let body = if g == "en-c" { long.as_str() } else { "Lead." };
                (g.as_str(), l.as_str(), "Tue, 25 Nov 2026 09:00:00 +0000", body)
            })
            .collect();
        rss("UNN", &items)
    };
    fixture.add("agency.example/rss/news_uk.xml", 200, "application/rss+xml", feed(&uk_items));
    fixture.add("agency.example/en/rss/news_en.xml", 200, "application/rss+xml", feed(&en_items));
    let fixture = fixture.start();
    let work = Workspace::new();
    let port = free_port();
    let config = work.config(&format!(
        "{}[feed]\nlanguages = [\"uk\", \"en\"]\n[fetch]\nproxy = \"{}\"\n[defaults]\nevery = \"1h\"\nfull_text = true\n\
         [[sources]]\nname = \"unn-uk\"\nurl = \"http://agency.example/rss/news_uk.xml\"\n\
         [[sources]]\nname = \"unn-en\"\nurl = \"http://agency.example/en/rss/news_en.xml\"\n",
        served_at(port),
        fixture.proxy_url()
    ));
    // The English edition arrives first: b's Ukrainian page then declares a stored report,
    // and c's stored English report declares the arriving one.
    for source in ["unn-en", "unn-uk"] {
        poll(&config, &["--source", source]);
    }
    let daemon = Daemon::start(&config, port);
    let base = daemon.base.clone();
    let (_, _, atom) = http_get(&format!("{base}/feed.atom")).unwrap();
    let ids: Vec<&str> = atom.split("<entry>").skip(1).collect();
    assert_eq!(ids.len(), 4, "a, b, c once each, and d: {atom}");
    for slug in ["a", "b", "c"] {
        // Published in Ukrainian (preferred), linking the English edition.
        assert!(
            atom.contains(&format!("hreflang=\"uk\" href=\"{}\"", uk(slug))),
            "{slug}: the Ukrainian edition is published: {atom}"
        );
        assert!(
            atom.contains(&format!(
                "<link rel=\"alternate\" type=\"text/html\" hreflang=\"en\" href=\"{}\"",
                en(slug)
            )),
            "{slug}: the English edition is linked"
        );
    }
    assert!(atom.contains(&en("d")));
    assert!(atom.contains("Also in English: "), "the closing line names the edition");
    if common::validate_atom(&atom) {
        eprintln!("Atom with several hreflang alternates is valid RFC 4287");
    }
    let (_, _, rss_feed) = http_get(&format!("{base}/feed.rss")).unwrap();
    assert!(rss_feed.contains(&format!(
        "<atom:link rel=\"alternate\" type=\"text/html\" hreflang=\"en\" href=\"{}\"",
        en("a")
    )));
    let (_, _, json) = http_get(&format!("{base}/feed.json")).unwrap();
    let json: serde_json::Value = serde_json::from_str(&json).unwrap();
    let a = json["items"].as_array().unwrap().iter().find(|i| i["url"] == uk("a").as_str()).unwrap();
    assert_eq!(a["language"], "uk");
    assert_eq!(a["_feedmill"]["translations"][0]["language"], "en");
    assert_eq!(a["_feedmill"]["translations"][0]["url"], en("a").as_str());
    assert_eq!(a["_feedmill"]["translations"][0]["title"], "UNN report");
    // Per-source feeds are unchanged: the English source still shows all four.
    let (_, _, en_feed) = http_get(&format!("{base}/sources/unn-en/feed.atom")).unwrap();
    assert_eq!(en_feed.matches("<entry>").count(), 4);
    assert!(en_feed.contains(&long[..60]), "c's English report is the feed's text");
}

#[test]
fn a_language_filter_keeps_one_language() {
    let fixture = Fixture::default();
    let html = "text/html; charset=utf-8";
    fixture.add("agency.example/news/x", 200, html, edition("uk-UA", "Новина", &[], &words(UK_WORDS, 1)));
    fixture.add("agency.example/en/news/y", 200, html, edition("en", "News", &[], &words(EN_WORDS, 2)));
    let items = [
        ("x", "http://agency.example/news/x", "Tue, 25 Nov 2026 09:00:00 +0000", "Lead."),
        ("y", "http://agency.example/en/news/y", "Tue, 25 Nov 2026 09:00:00 +0000", "Lead."),
    ];
    fixture.add("agency.example/rss", 200, "application/rss+xml", rss("UNN", &items));
    let fixture = fixture.start();
    let work = Workspace::new();
    let port = free_port();
    let config = work.config(&format!(
        "{}[feed]\ninclude = [\"language:uk\"]\n[fetch]\nproxy = \"{}\"\n[defaults]\nevery = \"1h\"\nfull_text = true\n\
         [[sources]]\nname = \"unn\"\nurl = \"http://agency.example/rss\"\n",
        served_at(port),
        fixture.proxy_url()
    ));
    poll(&config, &[]);
    let daemon = Daemon::start(&config, port);
    let (_, _, atom) = http_get(&format!("{}/feed.atom", daemon.base)).unwrap();
    assert!(atom.contains("http://agency.example/news/x"), "uk-UA passes language:uk");
    assert!(!atom.contains("http://agency.example/en/news/y"), "English is filtered out");
}
