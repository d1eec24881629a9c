//! Durability: the daemon is killed with SIGKILL at random moments — while polling, writing and
//! serving — 50 times against a fixture that keeps producing new items, and restarted each time.
//! After every kill the database (on SQLite, passing `PRAGMA integrity_check`) still holds every
//! item it held before and every item the daemon had reported stored, and has no duplicates; a
//! last clean run picks up where the killed ones stopped. On PostgreSQL each restart also gives
//! back the leases its killed run held, or it would not poll until they ran out.

mod common;

use std::collections::HashSet;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{free_port, served_at, Fixture, Workspace};

const FEEDS: usize = 3;
const KILLS: usize = 50;
const WINDOW: usize = 15;

/// RSS for `feed` whose newest item is number `newest` (the last WINDOW items).
fn feed(feed: usize, newest: usize) -> Vec<u8> {
    let items: String = (newest.saturating_sub(WINDOW)..=newest)
        .map(|n| {
            format!(
                "<item><title>Feed {feed} story {n}</title><link>http://crash{feed}.example/story/{n}</link>\
                 <guid>f{feed}-{n}</guid><description>Report number {n} of feed {feed}.</description></item>"
            )
        })
        .collect();
    format!("<?xml version=\"1.0\"?><rss version=\"2.0\"><channel><title>Feed {feed}</title><link>http://x/</link><description>d</description>{items}</channel></rss>").into_bytes()
}

/// A small deterministic generator for the kill moments (the seed is printed).
struct Random(u64);

impl Random {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

struct Stored {
    guids: HashSet<String>,
}

fn check_database(work: &Workspace) -> Stored {
    let db = work.db();
    if work.postgres_url().is_none() {
        assert_eq!(db.one::<String>("PRAGMA integrity_check", &[]), "ok");
    }
    let (items, links): (i64, i64) = db.one("SELECT count(*), count(DISTINCT link) FROM items", &[]);
    assert_eq!(items, links, "no item is stored twice");
    Stored { guids: db.all::<String>("SELECT guid FROM item_guids", &[]).into_iter().collect() }
}

#[test]
fn fifty_kill_nines_lose_nothing_committed_and_corrupt_nothing() {
    let fixture = Fixture::default();
    for f in 0..FEEDS {
        fixture.add(&format!("crash{f}.example/rss"), 200, "application/rss+xml", feed(f, 0));
    }
    let fixture = fixture.start();
    // The publishers keep publishing: a new item per feed every 150 ms.
    let publishing = Arc::new(AtomicBool::new(true));
    let publisher = {
        let (fixture, publishing) = (fixture.clone(), Arc::clone(&publishing));
        std::thread::spawn(move || {
            let mut newest = 0;
            while publishing.load(Ordering::Relaxed) {
                newest += 1;
                for f in 0..FEEDS {
                    fixture.add(
                        &format!("crash{f}.example/rss"),
                        200,
                        "application/rss+xml",
                        feed(f, newest),
                    );
                }
                std::thread::sleep(Duration::from_millis(150));
            }
            newest
        })
    };
    let work = Workspace::new();
    let port = free_port();
    let mut config = format!(
        "{}[fetch]\nproxy = \"{}\"\nper_host_rate = 100\n\
         [defaults]\nevery = \"1s\"\nfull_text = false\n",
        served_at(port),
        fixture.proxy_url()
    );
    for f in 0..FEEDS {
        config
            .push_str(&format!("[[sources]]\nname = \"feed-{f}\"\nurl = \"http://crash{f}.example/rss\"\n"));
    }
    let config = work.config(&config);
    let seed =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos() as u64 | 1;
    eprintln!("kill moments seed: {seed}");
    let mut random = Random(seed);
    let started = Instant::now();
    let mut known: HashSet<String> = HashSet::new();
    let mut reported_new = 0usize;
    let log = work.path("daemon.log");
    for kill in 0..KILLS {
        let mut daemon = Command::new(env!("CARGO_BIN_EXE_feedmill"))
            .current_dir(work.path(""))
            .args(["run", "-c", config.to_str().unwrap()])
            .stderr(Stdio::from(std::fs::File::create(&log).unwrap()))
            .spawn()
            .unwrap();
        // Readers keep asking for the feed meanwhile.
        let reading = Arc::new(AtomicBool::new(true));
        let reader = {
            let reading = Arc::clone(&reading);
            std::thread::spawn(move || {
                while reading.load(Ordering::Relaxed) {
                    let _ = common::http_get(&format!("http://127.0.0.1:{port}/feed.atom"));
                    std::thread::sleep(Duration::from_millis(20));
                }
            })
        };
        std::thread::sleep(Duration::from_millis(100 + random.below(1400)));
        daemon.kill().unwrap(); // SIGKILL
        daemon.wait().unwrap();
        reading.store(false, Ordering::Relaxed);
        reader.join().unwrap();
        // What the daemon said it stored before dying ("poll" lines are logged after the commit).
        let text = std::fs::read_to_string(&log).unwrap();
        let field = |line: &str, name: &str| -> usize {
            line.split(&format!(" {name}="))
                .nth(1)
                .and_then(|v| v.split_whitespace().next()?.parse().ok())
                .unwrap_or(0)
        };
        reported_new += text
            .lines()
            .filter(|l| l.contains("feedmill::poll: poll "))
            .map(|l| field(l, "new") + field(l, "merged"))
            .sum::<usize>();
        let stored = check_database(&work);
        let lost: Vec<&String> = known.difference(&stored.guids).collect();
        assert!(lost.is_empty(), "kill {kill}: items lost: {lost:?}");
        known = stored.guids;
        assert!(
            known.len() >= reported_new,
            "kill {kill}: {} stored, {reported_new} reported stored",
            known.len()
        );
    }
    publishing.store(false, Ordering::Relaxed);
    let published = publisher.join().unwrap();
    // A last, clean run resumes: the newest items arrive, nothing is duplicated.
    let output = Command::new(env!("CARGO_BIN_EXE_feedmill"))
        .current_dir(work.path(""))
        .args(["poll", "-c", config.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let stored = check_database(&work);
    assert!(known.is_subset(&stored.guids));
    let newest_served = (0..FEEDS).all(|f| stored.guids.iter().any(|g| g.starts_with(&format!("f{f}-"))));
    assert!(newest_served);
    // The restarted runs kept polling to the end (none waited out a lease its killed run held).
    for f in 0..FEEDS {
        let newest_stored = stored
            .guids
            .iter()
            .filter_map(|g| g.strip_prefix(&format!("f{f}-"))?.parse::<usize>().ok())
            .max()
            .unwrap_or(0);
        assert!(newest_stored >= published / 2, "feed {f}: newest stored {newest_stored} of {published}");
    }
    eprintln!(
        "{KILLS} kills in {:.0} s: {} items stored, {reported_new} reported stored before the kills, checked after each",
        started.elapsed().as_secs_f64(),
        stored.guids.len()
    );
    assert!(reported_new > 0, "the daemon never got to store anything between kills");
}
