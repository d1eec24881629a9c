//! Several `feedmill run` nodes on one PostgreSQL database (a real server, started by the test):
//! every source polled exactly once per tick by the cluster and never by two nodes at once, a
//! node killed with SIGKILL in the middle of a poll replaced by the others once its leases
//! expire, nothing stored twice, and the same feed served by every node. Skipped where
//! PostgreSQL is not installed.

mod common;

use std::process::{Child, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use common::db::TestDb;
use common::postgres::Postgres;
use common::{feedmill, free_port, http_get, rss, Fixture, Workspace};

const RSS: &str = "application/rss+xml";

/// One node: its own folder, config and port; killed on drop.
struct Node {
    work: Workspace,
    child: Child,
    base: String,
}

impl Node {
    /// Starts `feedmill run` as node `name` on the database at `url`, with `rest` of the config
    /// (its `[fetch]`, `[defaults]` and sources); its log goes to `log` in its folder.
    fn start(name: &str, url: &str, rest: &str) -> Node {
        let node = Node::spawn(name, url, rest);
        node.wait_ready();
        node
    }

    /// Starts the process without waiting for it to serve.
    fn spawn(name: &str, url: &str, rest: &str) -> Node {
        let work = Workspace::new();
        let port = free_port();
        let config = work.sqlite_config(&format!(
            "[storage]\ndatabase_url = \"{url}\"\n[cluster]\nnode = \"{name}\"\nlease = \"4s\"\n\
             [server]\nlisten = \"127.0.0.1:{port}\"\npublic_url = \"http://feeds.example/\"\n{rest}"
        ));
        let log = std::fs::File::create(work.path("log")).unwrap();
        let child = feedmill()
            .args(["run", "-c", config.to_str().unwrap()])
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        Node { work, child, base: format!("http://127.0.0.1:{port}") }
    }

    fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if http_get(&format!("{}/healthz", self.base)).is_ok() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("node {} did not answer within 20 s:\n{}", self.base, self.log());
    }

    /// Its log has no warning or error (a node killed on purpose aside, a healthy cluster logs none).
    fn assert_quiet(&self) {
        let log = self.log();
        // tokio-cron-scheduler reports its internal channels lagging when hundreds of jobs fire in
        // one second (noted in BENCHMARKS.md); what the cluster does is checked by the tests.
        let noisy: Vec<&str> = log
            .lines()
            .filter(|l| l.contains(" WARN ") || l.contains(" ERROR "))
            .filter(|l| !l.contains("tokio_cron_scheduler::"))
            .collect();
        assert!(noisy.is_empty(), "{}:\n{}", self.base, noisy.join("\n"));
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.work.path("log")).unwrap_or_default()
    }

    /// `/feed.atom`: its body and ETag.
    fn feed(&self) -> (String, String) {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        runtime.block_on(async {
            let client = reqwest::Client::builder().no_proxy().build().unwrap();
            let response = client.get(format!("{}/feed.atom", self.base)).send().await.unwrap();
            assert_eq!(response.status().as_u16(), 200);
            let etag =
                response.headers().get("etag").map(|v| v.to_str().unwrap().to_owned()).unwrap_or_default();
            (response.text().await.unwrap(), etag)
        })
    }

    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        self.kill();
    }
}

fn unix(t: SystemTime) -> f64 {
    t.duration_since(UNIX_EPOCH).unwrap().as_secs_f64()
}

fn now() -> f64 {
    unix(SystemTime::now())
}

fn sleep_until(t: f64) {
    let wait = t - now();
    if wait > 0.0 {
        std::thread::sleep(Duration::from_secs_f64(wait));
    }
}

#[test]
fn a_node_restarted_after_a_kill_takes_its_own_leases_back_at_once() {
    let Some(server) = Postgres::start() else { return };
    let url = server.create_database("restart");
    let fixture = Fixture::default();
    let (config, keys) = sources(3, 1);
    for (i, key) in keys.iter().enumerate() {
        fixture.add(key, 200, RSS, rss("", &[(&format!("g{i}"), &format!("http://news.example/{i}"))]));
    }
    let fixture = fixture.start();
    let rest = format!(
        "[fetch]\nproxy = \"{}\"\n[defaults]\nfull_text = false\nevery = \"1s\"\n{config}",
        fixture.proxy_url()
    );
    let mut first = Node::start("node0", &url, &rest);
    first.kill();
    // As if killed in the middle of polls: node0 holds s0 and s1 for ten more minutes, and
    // another node, alive, holds s2.
    let db = TestDb::postgres(&server.url("restart"));
    let until = now() as i64 + 600;
    let held: Vec<String> = db.all(
        &format!(
            "UPDATE sources SET lease_node = CASE WHEN name = 's2' THEN 'node1' ELSE 'node0' END,
                 lease_until = {until} RETURNING name"
        ),
        &[],
    );
    assert_eq!(held.len(), 3);
    let restarted_at = SystemTime::now();
    let restarted = Node::start("node0", &url, &rest);
    std::thread::sleep(Duration::from_secs(3));
    let polls_since = |key: &str| fixture.hit_times(key).into_iter().filter(|t| *t >= restarted_at).count();
    assert!(polls_since(&keys[0]) > 0 && polls_since(&keys[1]) > 0, "node0 waited out its own leases");
    assert_eq!(polls_since(&keys[2]), 0, "node0 polled a source another node holds");
    let other: String = db.one("SELECT lease_node FROM sources WHERE name = 's2'", &[]);
    assert_eq!(other, "node1");
    assert!(restarted.log().contains("gave back the leases an earlier run of this node held"));
}

/// `[[sources]]` for `n` feeds spread over `hosts` hosts: source `s{i}` at `h{i % hosts}.example/feed{i}`.
fn sources(n: usize, hosts: usize) -> (String, Vec<String>) {
    let keys: Vec<String> = (0..n).map(|i| format!("h{}.example/feed{i}", i % hosts)).collect();
    let config = keys
        .iter()
        .enumerate()
        .map(|(i, key)| format!("[[sources]]\nname = \"s{i}\"\nurl = \"http://{key}\"\n"))
        .collect();
    (config, keys)
}

#[test]
fn three_nodes_poll_every_source_once_per_tick_and_serve_the_same_feed() {
    let Some(server) = Postgres::start() else { return };
    let url = server.create_database("cluster");
    const TICK: f64 = 4.0;
    let fixture = Fixture::default();
    let (config, keys) = sources(300, 6);
    for (i, key) in keys.iter().enumerate() {
        let item = format!("http://news.example/{i}");
        fixture.add_slow(key, 200, RSS, rss("", &[(&format!("g{i}"), &item)]), Duration::from_millis(30));
    }
    let fixture = fixture.start();
    let rest = format!(
        "[fetch]\nproxy = \"{}\"\nper_host_rate = 1000\nper_host_concurrency = 8\n\
         [defaults]\nfull_text = false\nschedule = \"*/4 * * * * *\"\n{config}",
        fixture.proxy_url()
    );
    let nodes: Vec<Node> = (0..3).map(|n| Node::start(&format!("node{n}"), &url, &rest)).collect();

    // Five whole ticks, from the first after every source's first poll (at the nodes' start; a
    // tick that finds its source's previous poll still running is skipped, as on one node).
    let db = TestDb::postgres(&server.url("cluster"));
    let deadline = Instant::now() + Duration::from_secs(20);
    while db
        .one::<i64>("SELECT count(*) FROM sources WHERE last_poll_at IS NULL OR lease_node IS NOT NULL", &[])
        > 0
    {
        assert!(Instant::now() < deadline, "the first polls did not end");
        std::thread::sleep(Duration::from_millis(20));
    }
    let first = (now() / TICK).ceil() * TICK;
    let end = first + 5.0 * TICK;
    sleep_until(end + 0.5);
    for key in &keys {
        let times: Vec<f64> = fixture.hit_times(key).into_iter().map(unix).collect();
        for tick in 0..5 {
            let start = first + tick as f64 * TICK;
            let polls = times.iter().filter(|t| **t >= start && **t < start + TICK).count();
            assert_eq!(polls, 1, "{key}: {polls} requests in the tick at {start} (all: {times:?})");
        }
        assert_eq!(fixture.max_concurrent(key), 1, "{key} requested by two nodes at once");
    }
    let by_node: Vec<(String, i64)> =
        db.all("SELECT last_node, count(*) FROM sources GROUP BY last_node ORDER BY last_node", &[]);
    assert_eq!(by_node.len(), 3, "every node polls a share: {by_node:?}");
    let items: i64 = db.one("SELECT count(*) FROM items", &[]);
    assert_eq!(items, 300, "each item stored once");

    // Every node serves the same bytes with the same validator.
    let feeds: Vec<(String, String)> = nodes.iter().map(Node::feed).collect();
    assert!(feeds.iter().all(|f| *f == feeds[0]), "the nodes serve different feeds");
    assert!(!feeds[0].1.is_empty());

    // A new item committed by whichever node polls its source shows on every node within a second.
    let item = "http://news.example/late";
    fixture.add_slow(
        &keys[7],
        200,
        RSS,
        rss("", &[("g7", "http://news.example/7"), ("late", item)]),
        Duration::ZERO,
    );
    let deadline = Instant::now() + Duration::from_secs(3.0 as u64 * TICK as u64);
    let mut first_seen = None;
    while Instant::now() < deadline {
        let showing: Vec<bool> = nodes.iter().map(|n| n.feed().0.contains(item)).collect();
        if showing.iter().any(|s| *s) && first_seen.is_none() {
            first_seen = Some(Instant::now());
        }
        if showing.iter().all(|s| *s) {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let first_seen = first_seen.expect("the new item reached a feed");
    let lag = first_seen.elapsed();
    eprintln!(
        "sources polled last by each node: {by_node:?}; the new item on every node {lag:?} after the first"
    );
    assert!(lag < Duration::from_secs(1), "the other nodes showed it {lag:?} later");
    let feeds: Vec<(String, String)> = nodes.iter().map(Node::feed).collect();
    assert!(feeds.iter().all(|f| *f == feeds[0]), "the nodes serve different feeds after a commit");
    nodes.iter().for_each(Node::assert_quiet);
}

#[test]
fn a_node_killed_in_the_middle_of_a_poll_loses_its_sources_to_the_others() {
    let Some(server) = Postgres::start() else { return };
    let url = server.create_database("cluster");
    let fixture = Fixture::default();
    let (config, keys) = sources(30, 3);
    for (i, key) in keys.iter().enumerate() {
        let items: Vec<(String, String)> =
            (0..3).map(|j| (format!("g{i}-{j}"), format!("http://news.example/{i}/{j}"))).collect();
        let items: Vec<(&str, &str)> = items.iter().map(|(g, l)| (g.as_str(), l.as_str())).collect();
        // Slow answers: a poll is in flight most of the time.
        fixture.add_slow(key, 200, RSS, rss("", &items), Duration::from_millis(1500));
    }
    let fixture = fixture.start();
    let rest = format!(
        "[fetch]\nproxy = \"{}\"\nper_host_rate = 1000\nper_host_concurrency = 16\n\
         [defaults]\nfull_text = false\nschedule = \"*/3 * * * * *\"\n{config}",
        fixture.proxy_url()
    );
    let mut nodes: Vec<Node> = (0..3).map(|n| Node::start(&format!("node{n}"), &url, &rest)).collect();
    let db = TestDb::postgres(&server.url("cluster"));
    let leased = || -> i64 {
        db.one("SELECT count(*) FROM sources WHERE lease_node = 'node0' AND lease_until IS NOT NULL", &[])
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    while leased() == 0 {
        assert!(Instant::now() < deadline, "node0 never polled:\n{}", nodes[0].log());
        std::thread::sleep(Duration::from_millis(20));
    }
    let held: Vec<String> = db.all("SELECT name FROM sources WHERE lease_node = 'node0'", &[]);
    let stored_before: i64 = db.one("SELECT count(*) FROM items", &[]);
    nodes[0].kill();
    let killed_at = now();

    // Within the lease (4 s) and one interval (3 s), and the poll itself, the others poll every
    // source that node0 held.
    sleep_until(killed_at + 4.0 + 3.0 + 3.0);
    for name in &held {
        let index: usize = name[1..].parse().unwrap();
        let after: Vec<f64> =
            fixture.hit_times(&keys[index]).into_iter().map(unix).filter(|t| *t > killed_at).collect();
        assert!(!after.is_empty(), "{name}, held by the killed node, was not polled again");
        let last_node: Option<String> = db.one("SELECT last_node FROM sources WHERE name = ?1", &[name]);
        assert!(matches!(last_node.as_deref(), Some("node1" | "node2")), "{name}: {last_node:?}");
    }
    for key in &keys {
        let times: Vec<f64> = fixture.hit_times(key).into_iter().map(unix).collect();
        assert_eq!(
            fixture.max_concurrent(key),
            1,
            "{key} requested by two nodes at once: {times:?}, killed at {killed_at}"
        );
    }
    let stored: i64 = db.one("SELECT count(*) FROM items", &[]);
    let links: i64 = db.one("SELECT count(DISTINCT canonical_link) FROM items", &[]);
    assert!(stored >= stored_before, "committed items were lost: {stored} < {stored_before}");
    assert_eq!((stored, links), (90, 90), "every item once");
    nodes[1..].iter().for_each(Node::assert_quiet);
}

/// A feed of `n` items, each a different story of 60 words; the two sites' feeds tell the same
/// stories but for their last word.
fn near_copies(site: &str, n: usize) -> Vec<u8> {
    const WORDS: &[&str] = &[
        "army",
        "bridge",
        "city",
        "council",
        "drone",
        "energy",
        "farm",
        "grain",
        "harbour",
        "hospital",
        "minister",
        "missile",
        "night",
        "officials",
        "port",
        "power",
        "railway",
        "region",
        "repair",
        "school",
        "station",
        "strike",
        "supply",
        "train",
        "village",
        "water",
        "winter",
        "workers",
    ];
    let items: String = (0..n)
        .map(|i| {
            let mut seed = i as u64 * 2_654_435_761 + 1;
            let mut words: Vec<&str> = (0..60)
                .map(|_| {
                    seed =
                        seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
                    WORDS[(seed >> 33) as usize % WORDS.len()]
                })
                .collect();
            words.push(site);
            format!(
                "<item><title>Story {i}</title><link>http://{site}/news/{i}</link><guid>{site}-{i}</guid>\
                 <description>{}</description></item>",
                words.join(" ")
            )
        })
        .collect();
    format!(
        "<?xml version=\"1.0\"?><rss version=\"2.0\"><channel><title>{site}</title><link>http://{site}/</link>\
         <description>d</description>{items}</channel></rss>"
    )
    .into_bytes()
}

#[test]
fn two_nodes_storing_the_same_stories_at_once_make_one_story_of_each() {
    let Some(server) = Postgres::start() else { return };
    let url = server.create_database("cluster");
    let fixture = Fixture::default();
    fixture.add("a.example/rss", 200, RSS, near_copies("a.example", 100));
    fixture.add("b.example/rss", 200, RSS, near_copies("b.example", 100));
    let fixture = fixture.start();
    let rest = |source: &str| {
        format!(
            "[fetch]\nproxy = \"{}\"\n[defaults]\nfull_text = false\nevery = \"1h\"\n\
             [[sources]]\nname = \"{source}\"\nurl = \"http://{source}.example/rss\"\n",
            fixture.proxy_url()
        )
    };
    // Each node polls its own source as it starts: the two commits of 100 reports race.
    let nodes = [Node::spawn("node-a", &url, &rest("a")), Node::spawn("node-b", &url, &rest("b"))];
    nodes.iter().for_each(Node::wait_ready);
    let db = TestDb::postgres(&server.url("cluster"));
    let deadline = Instant::now() + Duration::from_secs(20);
    while db.one::<i64>("SELECT count(*) FROM items", &[]) < 200 {
        assert!(
            Instant::now() < deadline,
            "both polls stored their items:\n{}\n{}",
            nodes[0].log(),
            nodes[1].log()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let stories: i64 = db.one("SELECT count(DISTINCT story_id) FROM items", &[]);
    let published: i64 = db.one("SELECT count(*) FROM items WHERE duplicate_of IS NULL", &[]);
    assert_eq!((stories, published), (100, 100), "one story, published once, per pair of reports");
    for node in &nodes {
        let (feed, _) = node.feed();
        assert_eq!(feed.matches("<entry>").count(), 100, "one entry per story");
    }
    nodes.iter().for_each(Node::assert_quiet);
}

#[test]
fn per_host_limits_hold_for_the_three_nodes_together() {
    let Some(server) = Postgres::start() else { return };
    let url = server.create_database("cluster");
    let fixture = Fixture::default();
    let (config, keys) = sources(60, 2);
    for (i, key) in keys.iter().enumerate() {
        let item = format!("http://news.example/{i}");
        fixture.add_slow(key, 200, RSS, rss("", &[(&format!("g{i}"), &item)]), Duration::from_millis(150));
    }
    let fixture = fixture.start();
    // Two at a time and ten a second per host: each node alone would keep to that; the three
    // together must too.
    let rest = format!(
        "[fetch]\nproxy = \"{}\"\nper_host_rate = 10\nper_host_concurrency = 2\n\
         [defaults]\nfull_text = false\nschedule = \"*/5 * * * * *\"\n{config}",
        fixture.proxy_url()
    );
    let nodes: Vec<Node> = (0..3).map(|n| Node::spawn(&format!("node{n}"), &url, &rest)).collect();
    nodes.iter().for_each(Node::wait_ready);
    let first = ((now() + 1.0) / 5.0).ceil() * 5.0;
    sleep_until(first + 2.0 * 5.0);
    let db = TestDb::postgres(&server.url("cluster"));
    let by_node: Vec<(String, i64)> =
        db.all("SELECT last_node, count(*) FROM sources GROUP BY last_node ORDER BY last_node", &[]);
    assert!(by_node.len() >= 2, "the nodes share the polling: {by_node:?}");
    for host in ["h0.example", "h1.example"] {
        assert!(
            fixture.max_concurrent_host(host) <= 2,
            "{host}: {} at once",
            fixture.max_concurrent_host(host)
        );
        let mut starts: Vec<f64> = keys
            .iter()
            .filter(|k| k.starts_with(host))
            .flat_map(|k| fixture.hit_times(k))
            .map(unix)
            .collect();
        starts.sort_by(f64::total_cmp);
        assert!(starts.len() >= 60, "{host}: {} requests", starts.len());
        // Ten a second: at most ten requests start in any second (one more for the timers' jitter).
        let busiest =
            starts.iter().map(|t| starts.iter().filter(|u| **u >= *t && **u < t + 1.0).count()).max();
        assert!(busiest <= Some(11), "{host}: {busiest:?} requests in one second");
    }
    nodes.iter().for_each(Node::assert_quiet);
}

#[test]
fn the_cluster_fetches_an_article_page_once() {
    let Some(server) = Postgres::start() else { return };
    let url = server.create_database("cluster");
    let fixture = Fixture::default();
    let articles: Vec<(String, String)> =
        (0..10).map(|i| (format!("a{i}"), format!("http://news.example/article/{i}"))).collect();
    for (_, link) in &articles {
        let key = link.trim_start_matches("http://");
        fixture.add_slow(
            key,
            200,
            "text/html",
            common::page(&format!("Story{}", key.len())),
            Duration::from_millis(300),
        );
    }
    for site in ["a", "b", "c"] {
        let items: Vec<(String, &str)> =
            articles.iter().map(|(guid, link)| (format!("{site}-{guid}"), link.as_str())).collect();
        let items: Vec<(&str, &str)> = items.iter().map(|(g, l)| (g.as_str(), *l)).collect();
        fixture.add(&format!("{site}.example/rss"), 200, RSS, rss("", &items));
    }
    let fixture = fixture.start();
    let rest = |site: &str| {
        format!(
            "[fetch]\nproxy = \"{}\"\nper_host_rate = 1000\nper_host_concurrency = 16\n\
             [defaults]\nfull_text = true\nevery = \"1h\"\n\
             [[sources]]\nname = \"{site}\"\nurl = \"http://{site}.example/rss\"\n",
            fixture.proxy_url()
        )
    };
    // Three nodes, each with its own source announcing the same ten articles, polling at once.
    let nodes: Vec<Node> =
        ["a", "b", "c"].iter().map(|site| Node::spawn(&format!("node-{site}"), &url, &rest(site))).collect();
    nodes.iter().for_each(Node::wait_ready);
    let db = TestDb::postgres(&server.url("cluster"));
    let deadline = Instant::now() + Duration::from_secs(20);
    while db.one::<i64>("SELECT count(*) FROM items", &[]) < 10 {
        assert!(Instant::now() < deadline, "the articles were stored:\n{}", nodes[0].log());
        std::thread::sleep(Duration::from_millis(50));
    }
    for (_, link) in &articles {
        assert_eq!(fixture.hits(link.trim_start_matches("http://")), 1, "{link} fetched more than once");
    }
    nodes.iter().for_each(Node::assert_quiet);
}

#[test]
fn a_node_that_cannot_reach_the_database_reports_degraded() {
    let Some(server) = Postgres::start() else { return };
    let url = server.create_database("cluster");
    let node = Node::start("node0", &url, "[defaults]\nfull_text = false\n");
    let (status, _, body) = http_get(&format!("{}/healthz", node.base)).unwrap();
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("\"node\":\"node0\""), "{body}");
    drop(server);
    let (status, _, body) = http_get(&format!("{}/healthz", node.base)).unwrap();
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("degraded") && body.contains("does not take writes"), "{body}");
    // The node stays up (its polls fail until the database is back).
    let mut node = node;
    assert!(node.child.try_wait().unwrap().is_none(), "the node exited:\n{}", node.log());
}
