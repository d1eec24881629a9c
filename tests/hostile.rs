//! Hostile and broken feeds, served over loopback: each gets a recorded, named error or a defined
//! recovery; nothing panics, no entity is expanded or fetched, and memory stays bounded.

mod common;

use common::{Fixture, Workspace};

const LAUGHS: &str = r#"<?xml version="1.0"?>
<!DOCTYPE rss [
 <!ENTITY lol "lol">
 <!ENTITY lol1 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol2 "&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
 <!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
 <!ENTITY lol6 "&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;">
 <!ENTITY lol7 "&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;">
 <!ENTITY lol8 "&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;">
 <!ENTITY lol9 "&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;">
]>
<rss version="2.0"><channel><title>Laughs</title><item><title>&lol9;</title><guid>l1</guid><link>http://laughs.example/1</link></item></channel></rss>"#;

const XXE: &str = r#"<?xml version="1.0"?>
<!DOCTYPE rss [
 <!ENTITY remote SYSTEM "http://xxe.example/secret">
 <!ENTITY local SYSTEM "file:///etc/passwd">
]>
<rss version="2.0"><channel><title>XXE</title><item><title>Remote &remote; local &local;</title><guid>x1</guid><link>http://xxe.example/1</link><description>&local;</description></item></channel></rss>"#;

const TRUNCATED: &str = r#"<?xml version="1.0"?><rss version="2.0"><channel><title>T</title>
<item><title>Whole item</title><link>http://truncated.example/1</link><guid>t1</guid></item>
<item><title>Cut in the mid"#;

const BAD_DATES: &str = r#"<?xml version="1.0"?><rss version="2.0"><channel><title>Dates</title>
<item><title>No date at all</title><guid>d1</guid><link>http://dates.example/1</link><pubDate>not a date</pubDate></item>
<item><title>Year 99999</title><guid>d2</guid><link>http://dates.example/2</link><pubDate>Mon, 01 Jan 99999 00:00:00 +0000</pubDate></item>
<item><title>February 31st</title><guid>d3</guid><link>http://dates.example/3</link><pubDate>Tue, 31 Feb 2025 25:61:00 +0000</pubDate></item>
</channel></rss>"#;

const DUPLICATE_GUIDS: &str = r#"<?xml version="1.0"?><rss version="2.0"><channel><title>Dups</title>
<item><title>First</title><guid>same</guid><link>http://dups.example/1</link></item>
<item><title>Second</title><guid>same</guid><link>http://dups.example/2</link></item>
<item><title>Third</title><guid>same</guid><link>http://dups.example/3</link></item>
<item><title>Other</title><guid>other</guid><link>http://dups.example/4</link></item>
</channel></rss>"#;

#[test]
fn hostile_feeds_fail_cleanly_or_recover_in_bounded_memory() {
    let fixture = Fixture::default();
    let xml = "application/rss+xml";
    fixture.add("empty.example/rss", 200, xml, Vec::new());
    fixture.add(
        "html.example/rss",
        200,
        "text/html",
        b"<!DOCTYPE html><html><body><h1>Welcome</h1></body></html>".to_vec(),
    );
    fixture.add("truncated.example/rss", 200, xml, TRUNCATED.as_bytes().to_vec());
    let mut huge = b"<?xml version=\"1.0\"?><rss version=\"2.0\"><channel><title>".to_vec();
    huge.resize(64 * 1024 * 1024, b'a');
    fixture.add("huge.example/rss", 200, xml, huge);
    fixture.add("dates.example/rss", 200, xml, BAD_DATES.as_bytes().to_vec());
    fixture.add("dups.example/rss", 200, xml, DUPLICATE_GUIDS.as_bytes().to_vec());
    fixture.add("laughs.example/rss", 200, xml, LAUGHS.as_bytes().to_vec());
    fixture.add("xxe.example/rss", 200, xml, XXE.as_bytes().to_vec());
    let fixture = fixture.start();
    let work = Workspace::new();
    let names = ["empty", "html", "truncated", "huge", "dates", "dups", "laughs", "xxe"];
    let sources: String = names
        .iter()
        .map(|n| format!("[[sources]]\nname = \"{n}\"\nurl = \"http://{n}.example/rss\"\n"))
        .collect();
    let config = work.config(&format!(
        "[storage]\npath = \"{}\"\n[fetch]\nproxy = \"{}\"\nper_host_rate = 100\n[defaults]\nfull_text = false\n{sources}",
        work.path("data/feedmill.db").display(),
        fixture.proxy_url()
    ));

    // Under GNU time where it is installed, to read the peak memory of the whole poll.
    let (mut command, timed) = common::feedmill_timed();
    let output = command.args(["poll", "-c", config.to_str().unwrap()]).output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "some sources worked: {stdout}\n{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");

    let line = |name: &str| {
        stdout.lines().find(|l| l.starts_with(&format!("{name}: "))).unwrap_or_default().to_owned()
    };
    assert!(line("empty").contains("FAILED") && line("empty").contains("body is empty"), "{stdout}");
    assert!(line("html").contains("FAILED") && line("html").contains("HTML page, not a feed"), "{stdout}");
    assert!(
        line("huge").contains("FAILED") && line("huge").contains("larger than 8388608 bytes"),
        "{stdout}"
    );
    // Truncated XML: either the complete items are kept, or a named parse error is recorded.
    let truncated = line("truncated");
    assert!(truncated.contains("1 new") || truncated.contains("not a readable feed"), "{truncated}");
    // Bad dates: the items are kept, undated.
    assert!(line("dates").contains("HTTP 200, 3 new"), "{stdout}");
    let undated: i64 = work
        .db()
        .one("SELECT COUNT(*) FROM items i JOIN sources s ON s.id = i.source_id WHERE s.name = 'dates' AND i.published IS NULL", &[]);
    assert_eq!(undated, 3);
    // A GUID repeated within one feed: its first occurrence is the item.
    assert!(line("dups").contains("HTTP 200, 2 new"), "{stdout}");
    let first: String = work.db().one("SELECT title FROM items WHERE link = 'http://dups.example/1'", &[]);
    assert_eq!(first, "First");
    // Entities: never expanded into a billion laughs, never fetched, never read from disk.
    let laughs = line("laughs");
    assert!(laughs.contains("not a readable feed") || laughs.contains("1 new"), "{laughs}");
    let longest_title: i64 = work.db().one("SELECT COALESCE(MAX(LENGTH(title)), 0) FROM items", &[]);
    assert!(longest_title < 1000, "an entity was expanded: title of {longest_title} characters");
    assert_eq!(fixture.hits("xxe.example/secret"), 0, "an external entity was fetched");
    let leaked: i64 =
        work.db().one("SELECT COUNT(*) FROM items WHERE title LIKE '%root:%' OR summary LIKE '%root:%'", &[]);
    assert_eq!(leaked, 0, "a local file was read into an item");
    // Every failure is recorded on its source.
    let failed: i64 =
        work.db().one("SELECT COUNT(*) FROM sources WHERE error_count > 0 AND last_error IS NOT NULL", &[]);
    assert_eq!(failed as usize, stdout.matches("FAILED").count());

    if timed {
        let peak_kb = common::peak_rss_kb(&stderr);
        assert!(peak_kb < 128 * 1024, "peak RSS {peak_kb} kB for a 64 MiB hostile body");
        eprintln!("peak RSS of the hostile poll: {peak_kb} kB");
    }
}

#[test]
fn legacy_and_utf16_encodings_decode_over_http() {
    let title = "Новини Києва: ґанок, їжак, єнот";
    let rss = |declared: &str, site: &str| {
        format!("<?xml version=\"1.0\" encoding=\"{declared}\"?><rss version=\"2.0\"><channel><title>T</title><item><title>{title}</title><guid>g</guid><link>http://{site}.example/a</link></item></channel></rss>")
    };
    let encode = |encoding: &'static encoding_rs::Encoding, text: &str| encoding.encode(text).0.into_owned();
    let utf16le: Vec<u8> = [0xFF, 0xFE]
        .into_iter()
        .chain(rss("utf-16", "utf16").encode_utf16().flat_map(u16::to_le_bytes))
        .collect();
    let mut bom_utf8 = vec![0xEF, 0xBB, 0xBF];
    bom_utf8.extend_from_slice(rss("windows-1251", "bom").as_bytes());
    let fixture = Fixture::default();
    // Charset only in the HTTP header (the declaration lies); only in the declaration; UTF-16 with
    // a BOM; a UTF-8 BOM against a wrong declaration.
    fixture.add(
        "cp1251.example/rss",
        200,
        "application/rss+xml; charset=windows-1251",
        encode(encoding_rs::WINDOWS_1251, &rss("iso-8859-1", "cp1251")),
    );
    fixture.add(
        "koi8.example/rss",
        200,
        "application/rss+xml",
        encode(encoding_rs::KOI8_U, &rss("koi8-u", "koi8")),
    );
    fixture.add("utf16.example/rss", 200, "application/rss+xml", utf16le);
    fixture.add("bom.example/rss", 200, "application/rss+xml", bom_utf8);
    let fixture = fixture.start();
    let work = Workspace::new();
    let names = ["cp1251", "koi8", "utf16", "bom"];
    let sources: String = names
        .iter()
        .map(|n| format!("[[sources]]\nname = \"{n}\"\nurl = \"http://{n}.example/rss\"\n"))
        .collect();
    let config = work.config(&format!(
        "[storage]\npath = \"{}\"\n[fetch]\nproxy = \"{}\"\n[defaults]\nfull_text = false\n{sources}",
        work.path("data/feedmill.db").display(),
        fixture.proxy_url()
    ));
    let output = common::run_feedmill(&["poll", "-c", config.to_str().unwrap()]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    let db = work.db();
    for name in names {
        assert!(stdout.contains(&format!("{name}: HTTP 200")), "{stdout}");
        let titles: Vec<String> = db
            .all("SELECT i.title FROM item_guids g JOIN sources s ON s.id = g.source_id JOIN items i ON i.id = g.item_id WHERE s.name = ?1", &[name]);
        assert_eq!(titles, vec![title.to_owned()], "{name}");
    }
    let items: i64 = db.one("SELECT COUNT(*) FROM items", &[]);
    assert_eq!(items, 4);
}
