//! Fetching like a good citizen, end to end: per-host limits, Retry-After, backoff, the
//! publisher's pace, permanent redirects and unchanged bodies.

mod common;

use std::time::{Duration, Instant};

use common::{free_port, page, rss, run_feedmill, Daemon, Fixture, Workspace};

/// A config polling `sources` (TOML `[[sources]]` blocks) through the fixture.
fn config(work: &Workspace, fixture: &Fixture, fetch_extra: &str, sources: &str) -> std::path::PathBuf {
    work.config(&format!(
        "[storage]\npath = \"{}\"\n[fetch]\nproxy = \"{}\"\n{fetch_extra}\n{sources}",
        work.path("data/feedmill.db").display(),
        fixture.proxy_url()
    ))
}

fn poll(config: &std::path::Path) -> (String, String) {
    let output = run_feedmill(&["poll", "-c", config.to_str().unwrap()]);
    (
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// (error_count, not_before − last_poll_at) of a source.
fn pacing(work: &Workspace, name: &str) -> (i64, Option<i64>) {
    work.db().one("SELECT error_count, not_before - last_poll_at FROM sources WHERE name = ?1", &[name])
}

#[test]
fn per_host_concurrency_covers_feeds_and_pages() {
    let fixture = Fixture::default();
    let links: Vec<(String, String)> =
        (0..8).map(|i| (format!("p{i}"), format!("http://busy.example/p{i}"))).collect();
    let items: Vec<(&str, &str)> = links.iter().map(|(g, l)| (g.as_str(), l.as_str())).collect();
    fixture.add("busy.example/a.xml", 200, "application/rss+xml", rss("", &items[..4]));
    fixture.add("busy.example/b.xml", 200, "application/rss+xml", rss("", &items[4..]));
    for (guid, _) in &links {
        fixture.add_slow(
            &format!("busy.example/{guid}"),
            200,
            "text/html",
            page(guid),
            Duration::from_millis(300),
        );
    }
    let fixture = fixture.start();
    let work = Workspace::new();
    let config = config(
        &work,
        &fixture,
        "per_host_rate = 1000",
        "[[sources]]\nname = \"a\"\nurl = \"http://busy.example/a.xml\"\n[[sources]]\nname = \"b\"\nurl = \"http://busy.example/b.xml\"\n",
    );
    let (stdout, _) = poll(&config);
    assert!(stdout.contains("a: HTTP 200, 4 new") && stdout.contains("b: HTTP 200, 4 new"), "{stdout}");
    assert_eq!(fixture.max_concurrent_host("busy.example"), 2, "default per_host_concurrency is 2");
    for (guid, _) in &links {
        assert_eq!(fixture.hits(&format!("busy.example/{guid}")), 1);
    }
}

#[test]
fn per_host_rate_spaces_requests_and_overrides_apply() {
    let fixture = Fixture::default();
    let items = [
        ("q1", "http://paced.example/q1"),
        ("q2", "http://paced.example/q2"),
        ("q3", "http://paced.example/q3"),
    ];
    fixture.add("paced.example/rss", 200, "application/rss+xml", rss("", &items));
    for (guid, _) in items {
        fixture.add(&format!("paced.example/{guid}"), 200, "text/html", page(guid));
    }
    let fixture = fixture.start();
    let work = Workspace::new();
    // Four requests at 4/s take at least 0.75 s; the override lifts concurrency but not the rate.
    let config = config(
        &work,
        &fixture,
        "per_host_rate = 1000\n[fetch.hosts.\"paced.example\"]\nrate = 4\nconcurrency = 8",
        "[[sources]]\nname = \"p\"\nurl = \"http://paced.example/rss\"\n",
    );
    let started = Instant::now();
    let (stdout, _) = poll(&config);
    assert!(stdout.contains("p: HTTP 200, 3 new"), "{stdout}");
    assert!(started.elapsed() >= Duration::from_millis(750), "{:?}", started.elapsed());
}

#[test]
fn article_429_pauses_the_host_and_defers_its_items() {
    let fixture = Fixture::default();
    let items = [("r1", "http://limited.example/r1"), ("r2", "http://limited.example/r2")];
    fixture.add("limited.example/rss", 200, "application/rss+xml", rss("", &items));
    fixture.add_with_headers(
        "limited.example/r1",
        429,
        "text/plain",
        b"slow down".to_vec(),
        &[("retry-after", "120")],
    );
    fixture.add("limited.example/r2", 200, "text/html", page("r2"));
    let fixture = fixture.start();
    let work = Workspace::new();
    let config = config(
        &work,
        &fixture,
        "per_host_rate = 1000\nper_host_concurrency = 1",
        "[[sources]]\nname = \"l\"\nurl = \"http://limited.example/rss\"\n",
    );
    let (stdout, stderr) = poll(&config);
    // r1 answered 429: it waits for the next poll, and so does r2 unless it was fetched before r1
    // (one request at a time to this host) — after the 429 the host is not asked again.
    assert!(stdout.contains("deferred"), "{stdout}");
    assert!(stderr.contains("pausing its article fetches"), "{stderr}");
    let expected_first = fixture.hits("limited.example/r2");
    assert!(expected_first <= 1);
    assert!(stdout.contains(&format!("l: HTTP 200, {expected_first} new")), "{stdout}");
    fixture.add("limited.example/r1", 200, "text/html", page("r1"));
    let (stdout, _) = poll(&config);
    let expected = format!("l: HTTP 200, {} new", 2 - expected_first);
    assert!(stdout.contains(&expected), "the deferred items come with the next poll: {stdout}");
    assert_eq!(fixture.hits("limited.example/r1"), 2);
}

#[test]
fn feed_retry_after_and_backoff_set_the_next_poll() {
    let fixture = Fixture::default();
    fixture.add_with_headers("down.example/rss", 503, "text/plain", b"".to_vec(), &[("retry-after", "3600")]);
    fixture.add("flaky.example/rss", 500, "text/plain", b"oops".to_vec());
    let fixture = fixture.start();
    let work = Workspace::new();
    let config = config(
        &work,
        &fixture,
        "",
        "[defaults]\nevery = \"10m\"\n[[sources]]\nname = \"down\"\nurl = \"http://down.example/rss\"\n\
         [[sources]]\nname = \"flaky\"\nurl = \"http://flaky.example/rss\"\n",
    );
    poll(&config);
    let (errors, wait) = pacing(&work, "down");
    assert_eq!(errors, 1);
    assert!(wait.unwrap() >= 3599, "Retry-After is honoured: {wait:?}");
    // Exponential backoff with ±20 % jitter from the 10-minute schedule, doubling per failure.
    for (failures, low, high) in [(1, 480, 720), (2, 960, 1440), (3, 1920, 2880)] {
        if failures > 1 {
            poll(&config);
        }
        let (errors, wait) = pacing(&work, "flaky");
        let wait = wait.unwrap();
        assert_eq!(errors, failures);
        assert!((low..=high).contains(&wait), "failure {failures}: waits {wait}s");
    }
    // Success resets the count and the backoff.
    fixture.add("flaky.example/rss", 200, "application/rss+xml", rss("", &[("f", "http://flaky.example/f")]));
    poll(&config);
    assert_eq!(pacing(&work, "flaky"), (0, None));
    let last_error: Option<String> =
        work.db().one("SELECT last_error FROM sources WHERE name = 'flaky'", &[]);
    assert_eq!(last_error, None);
}

#[test]
fn publisher_pace_is_a_lower_bound_within_max_interval() {
    let fixture = Fixture::default();
    fixture.add("ttl.example/rss", 200, "application/rss+xml", rss("<ttl>600</ttl>", &[]));
    fixture.add_with_headers(
        "cached.example/rss",
        200,
        "application/rss+xml",
        rss("", &[]),
        &[("cache-control", "public, max-age=1800")],
    );
    let fixture = fixture.start();
    let work = Workspace::new();
    let config = config(
        &work,
        &fixture,
        "max_interval = \"2h\"",
        "[defaults]\nfull_text = false\n[[sources]]\nname = \"ttl\"\nurl = \"http://ttl.example/rss\"\n\
         [[sources]]\nname = \"cached\"\nurl = \"http://cached.example/rss\"\n",
    );
    poll(&config);
    let (_, ttl_wait) = pacing(&work, "ttl");
    assert!(
        (7199..=7201).contains(&ttl_wait.unwrap()),
        "a 10 h <ttl> is capped at max_interval 2 h: {ttl_wait:?}"
    );
    let (_, cached_wait) = pacing(&work, "cached");
    assert!((1799..=1801).contains(&cached_wait.unwrap()), "max-age=1800: {cached_wait:?}");
}

#[test]
fn daemon_skips_ticks_while_a_source_backs_off() {
    let fixture = Fixture::default();
    fixture.add_with_headers("down.example/rss", 503, "text/plain", b"".to_vec(), &[("retry-after", "3600")]);
    fixture.add("up.example/rss", 200, "application/rss+xml", rss("", &[]));
    let fixture = fixture.start();
    let work = Workspace::new();
    let port = free_port();
    let config = work.config(&format!(
        "[storage]\npath = \"{}\"\n[server]\nlisten = \"127.0.0.1:{port}\"\n[fetch]\nproxy = \"{}\"\nper_host_rate = 100\n\
         [defaults]\nevery = \"1s\"\nfull_text = false\n\
         [[sources]]\nname = \"down\"\nurl = \"http://down.example/rss\"\n[[sources]]\nname = \"up\"\nurl = \"http://up.example/rss\"\n",
        work.path("db.sqlite").display(),
        fixture.proxy_url()
    ));
    let mut daemon = Daemon::start(&config, port);
    std::thread::sleep(Duration::from_millis(3500));
    assert!(daemon.terminate(Duration::from_secs(10)).is_some_and(|s| s.success()));
    assert_eq!(fixture.hits("down.example/rss"), 1, "Retry-After: 3600 keeps the source quiet");
    assert!(fixture.hits("up.example/rss") >= 2, "the healthy source kept its schedule");
}

#[test]
fn permanent_redirects_are_recorded_and_followed() {
    let fixture = Fixture::default();
    let feed = rss("", &[("m", "http://moved.example/m")]);
    fixture.add_with_headers("moved.example/old", 301, "text/plain", Vec::new(), &[("location", "/mid")]);
    fixture.add_with_headers(
        "moved.example/mid",
        308,
        "text/plain",
        Vec::new(),
        &[("location", "http://moved.example/new")],
    );
    fixture.add("moved.example/new", 200, "application/rss+xml", feed.clone());
    fixture.add_with_headers("temp.example/rss", 302, "text/plain", Vec::new(), &[("location", "/today")]);
    fixture.add("temp.example/today", 200, "application/rss+xml", rss("", &[]));
    let fixture = fixture.start();
    let work = Workspace::new();
    let config = config(
        &work,
        &fixture,
        "",
        "[defaults]\nfull_text = false\n[[sources]]\nname = \"moved\"\nurl = \"http://moved.example/old\"\n\
         [[sources]]\nname = \"temp\"\nurl = \"http://temp.example/rss\"\n",
    );
    let (stdout, stderr) = poll(&config);
    assert!(stdout.contains("moved: HTTP 200, 1 new"), "{stdout}");
    assert!(
        stderr.contains("feed moved permanently") && stderr.contains("http://moved.example/new"),
        "{stderr}"
    );
    poll(&config);
    assert_eq!(fixture.hits("moved.example/old"), 1, "later polls go straight to the new URL");
    assert_eq!(fixture.hits("moved.example/new"), 2);
    assert_eq!(fixture.hits("temp.example/rss"), 2, "a temporary redirect is not remembered");
    let moved: Option<String> = work.db().one("SELECT moved_to FROM sources WHERE name = 'temp'", &[]);
    assert_eq!(moved, None);
}

#[test]
fn an_unchanged_body_is_not_parsed_again() {
    let fixture = Fixture::default();
    fixture.add("same.example/rss", 200, "application/rss+xml", rss("", &[("s", "http://same.example/s")]));
    let fixture = fixture.start();
    let work = Workspace::new();
    let config = config(
        &work,
        &fixture,
        "",
        "[defaults]\nfull_text = false\n[[sources]]\nname = \"same\"\nurl = \"http://same.example/rss\"\n",
    );
    assert!(poll(&config).0.contains("same: HTTP 200, 1 new"));
    let (stdout, _) = poll(&config);
    assert!(
        stdout.contains("same: HTTP 200, 0 new, 0 duplicate") && stdout.contains("(unchanged)"),
        "{stdout}"
    );
}
