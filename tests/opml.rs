//! `feedmill opml export` and `opml import` through the real binary.

mod common;

use common::{run_feedmill, Workspace};

#[test]
fn export_then_import_round_trips_and_write_appends_only_new_feeds() {
    let work = Workspace::new();
    let config = work.config(
        "[[sources]]\nname = \"unn-uk\"\nurl = \"https://unn.ua/rss/news_uk.xml\"\ntags = [\"uk\"]\n\
         [[sources]]\nname = \"pravda\"\nurl = \"https://www.pravda.com.ua/rss/\"\n",
    );
    let config_arg = config.to_str().unwrap();
    let export = run_feedmill(&["opml", "export", "-c", config_arg]);
    assert!(export.status.success());
    let opml = String::from_utf8(export.stdout).unwrap();
    assert!(opml.contains("<opml version=\"2.0\">"));
    assert!(opml.contains("xmlUrl=\"https://unn.ua/rss/news_uk.xml\" category=\"uk\""), "{opml}");

    // Another reader's list: one feed we have, two we do not.
    let other = work.path("reader.opml");
    std::fs::write(
        &other,
        "<?xml version=\"1.0\"?><opml version=\"2.0\"><head/><body><outline text=\"News\">\
         <outline type=\"rss\" text=\"UNN\" xmlUrl=\"https://unn.ua/rss/news_uk.xml\"/>\
         <outline type=\"rss\" text=\"Ukrinform\" xmlUrl=\"https://www.ukrinform.ua/rss/block-lastnews\"/>\
         <outline type=\"rss\" text=\"Suspilne\" xmlUrl=\"https://suspilne.media/rss/all.rss\"/></outline></body></opml>",
    )
    .unwrap();
    let printed = run_feedmill(&["opml", "import", other.to_str().unwrap(), "-c", config_arg]);
    let toml = String::from_utf8(printed.stdout).unwrap();
    assert!(toml.contains("name = \"ukrinform\"") && toml.contains("name = \"suspilne\""), "{toml}");
    assert!(!toml.contains("news_uk.xml"), "already configured: {toml}");
    assert!(String::from_utf8_lossy(&printed.stderr).contains("2 new sources printed, 1 already configured"));
    assert_eq!(
        std::fs::read_to_string(&config).unwrap().matches("[[sources]]").count(),
        2,
        "printing writes nothing"
    );

    let written = run_feedmill(&["opml", "import", other.to_str().unwrap(), "--write", "-c", config_arg]);
    assert!(written.status.success(), "{}", String::from_utf8_lossy(&written.stderr));
    let check = run_feedmill(&["check-config", "-c", config_arg]);
    assert!(check.status.success());
    assert_eq!(std::fs::read_to_string(&config).unwrap().matches("[[sources]]").count(), 4);
    // Importing again adds nothing.
    let again = run_feedmill(&["opml", "import", other.to_str().unwrap(), "--write", "-c", config_arg]);
    assert!(String::from_utf8_lossy(&again.stderr).contains("0 new sources"));
    assert_eq!(std::fs::read_to_string(&config).unwrap().matches("[[sources]]").count(), 4);

    // Not OPML: a clear error naming the file, the config untouched.
    let bad = work.path("bad.opml");
    std::fs::write(&bad, "<rss version=\"2.0\"></rss>").unwrap();
    let failed = run_feedmill(&["opml", "import", bad.to_str().unwrap(), "-c", config_arg]);
    assert_eq!(failed.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&failed.stderr);
    assert!(stderr.contains("bad.opml") && stderr.contains("not an OPML file"), "{stderr}");
}
