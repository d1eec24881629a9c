//! The daemon's behaviour over time: scheduling, isolation of slow and failing sources, shutdown.

mod common;

use std::time::{Duration, Instant};

use common::{free_port, http_get, page, rss, run_feedmill, served_at, Daemon, Fixture, Workspace};

fn wait_until(limit: Duration, mut condition: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if condition() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    false
}

#[test]
fn slow_source_never_overlaps_itself_nor_delays_others() {
    let fixture = Fixture::default();
    fixture.add_slow(
        "slow.example/rss",
        200,
        "application/rss+xml",
        rss("", &[("s1", "http://slow.example/1")]),
        Duration::from_millis(2500),
    );
    fixture.add("fast.example/rss", 200, "application/rss+xml", rss("", &[("f1", "http://fast.example/1")]));
    let fixture = fixture.start();
    let work = Workspace::new();
    let port = free_port();
    let config = work.config(&format!(
        "[server]\nlisten = \"127.0.0.1:{port}\"\n[fetch]\nproxy = \"{}\"\n[defaults]\nevery = \"1s\"\nfull_text = false\n\
         [[sources]]\nname = \"slow\"\nurl = \"http://slow.example/rss\"\n[[sources]]\nname = \"fast\"\nurl = \"http://fast.example/rss\"\n",
        fixture.proxy_url()
    ));
    let mut daemon = Daemon::start(&config, port);
    std::thread::sleep(Duration::from_millis(5500));
    let status = daemon.terminate(Duration::from_secs(10)).expect("exits within 10 s");
    assert!(status.success());

    let (fast, slow) = (fixture.hits("fast.example/rss"), fixture.hits("slow.example/rss"));
    assert!(fast >= 4, "the fast source kept its 1 s schedule while the slow one was busy: {fast} polls");
    assert!((1..=3).contains(&slow), "a 2.5 s poll on a 1 s schedule skips ticks: {slow} polls");
    assert_eq!(
        fixture.max_concurrent("slow.example/rss"),
        1,
        "a source never polls concurrently with itself"
    );
}

#[test]
fn sigterm_during_a_poll_keeps_finished_items_and_exits_promptly() {
    let fixture = Fixture::default();
    fixture.add(
        "site.example/rss",
        200,
        "application/rss+xml",
        rss("", &[("quick", "http://site.example/quick"), ("stuck", "http://site.example/stuck")]),
    );
    fixture.add("site.example/quick", 200, "text/html", page("Quick"));
    fixture.add_slow("site.example/stuck", 200, "text/html", page("Stuck"), Duration::from_secs(60));
    let fixture = fixture.start();
    let work = Workspace::new();
    let port = free_port();
    let config = work.config(&format!(
        "[storage]\npath = \"{}\"\n[server]\nlisten = \"127.0.0.1:{port}\"\n[fetch]\nproxy = \"{}\"\ntimeout_secs = 120\nper_host_rate = 100\n\
         [defaults]\nevery = \"1h\"\n[[sources]]\nname = \"site\"\nurl = \"http://site.example/rss\"\n",
        work.path("data/feedmill.db").display(),
        fixture.proxy_url()
    ));
    let mut daemon = Daemon::start(&config, port);
    // Both page requests went out (the quick one is answered at once, the stuck one never).
    let both_asked = || fixture.hits("site.example/stuck") == 1 && fixture.hits("site.example/quick") == 1;
    assert!(wait_until(Duration::from_secs(10), both_asked), "page fetches started");
    std::thread::sleep(Duration::from_millis(300));
    let started = Instant::now();
    let status = daemon.terminate(Duration::from_secs(10)).expect("exits within 10 s of SIGTERM");
    assert!(status.success(), "{status:?}");
    assert!(started.elapsed() < Duration::from_secs(10));

    // The finished item was written; the unfinished one is left for the next poll.
    let titles = || -> Vec<String> { work.db().all("SELECT title FROM items ORDER BY title", &[]) };
    assert_eq!(titles(), vec!["Item quick"]);
    fixture.add("site.example/stuck", 200, "text/html", page("Stuck"));
    let output = run_feedmill(&["poll", "-c", config.to_str().unwrap()]);
    assert!(String::from_utf8_lossy(&output.stdout).contains("site: HTTP 200, 1 new, 0 duplicate"));
    assert_eq!(titles(), vec!["Item quick", "Item stuck"]);
}

#[test]
fn unreachable_source_is_recorded_while_others_are_polled() {
    let fixture = Fixture::default();
    fixture.add(
        "127.0.0.1/direct.xml",
        200,
        "application/rss+xml",
        rss("", &[("d1", "http://127.0.0.1/d1")]),
    );
    let fixture = fixture.start();
    let closed_port = free_port();
    let work = Workspace::new();
    let config = work.config(&format!(
        "[storage]\npath = \"{}\"\n[defaults]\nfull_text = false\n\
         [[sources]]\nname = \"refused\"\nurl = \"http://127.0.0.1:{closed_port}/rss\"\n\
         [[sources]]\nname = \"direct\"\nurl = \"http://{}/direct.xml\"\n",
        work.path("db.sqlite").display(),
        fixture.addr.unwrap()
    ));
    let output = common::feedmill()
        .env("NO_PROXY", "*")
        .args(["poll", "-c", config.to_str().unwrap()])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stdout}");
    assert!(
        stdout.contains("refused: FAILED (HTTP -)") && stdout.to_lowercase().contains("connect"),
        "{stdout}"
    );
    assert!(stdout.contains("direct: HTTP 200, 1 new"), "{stdout}");
}

#[test]
fn sigint_also_stops_the_daemon_cleanly() {
    let work = Workspace::new();
    let port = free_port();
    let config = work.config(&format!(
        "[storage]\npath = \"{}\"\n[server]\nlisten = \"127.0.0.1:{port}\"\n",
        work.path("data/feedmill.db").display()
    ));
    let mut daemon = Daemon::start(&config, port);
    std::process::Command::new("kill").args(["-INT", &daemon.child.id().to_string()]).status().unwrap();
    assert!(wait_until(Duration::from_secs(10), || daemon.child.try_wait().unwrap().is_some()));
    assert!(daemon.child.try_wait().unwrap().is_some_and(|s| s.success()));
}

#[test]
fn http_proxy_from_the_environment_is_honoured() {
    let fixture = Fixture::default();
    fixture.add("env.example/rss", 200, "application/rss+xml", rss("", &[("e1", "http://env.example/1")]));
    let fixture = fixture.start();
    let work = Workspace::new();
    let config = work.config(&format!(
        "[storage]\npath = \"{}\"\n[defaults]\nfull_text = false\n[[sources]]\nname = \"env\"\nurl = \"http://env.example/rss\"\n",
        work.path("db.sqlite").display()
    ));
    let output = common::feedmill()
        .env("HTTP_PROXY", fixture.proxy_url())
        .env("http_proxy", fixture.proxy_url())
        .env_remove("NO_PROXY")
        .env_remove("no_proxy")
        .args(["poll", "-c", config.to_str().unwrap()])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains("env: HTTP 200, 1 new"), "{stdout}");
    assert_eq!(fixture.hits("env.example/rss"), 1);
}

#[test]
fn healthz_reports_degraded_when_no_source_succeeds_for_too_long() {
    let fixture = Fixture::default();
    fixture.add("down.example/rss", 500, "text/plain", b"broken".to_vec());
    let fixture = fixture.start();
    let work = Workspace::new();
    let port = free_port();
    let config = work.config(&format!(
        "{}unhealthy_after = \"2s\"\n[fetch]\nproxy = \"{}\"\n\
         [[sources]]\nname = \"down\"\nurl = \"http://down.example/rss\"\n",
        served_at(port),
        fixture.proxy_url()
    ));
    let daemon = Daemon::start(&config, port);
    let (status, _, body) = http_get(&format!("{}/healthz", daemon.base)).unwrap();
    assert_eq!(status, 200, "within the grace period after start: {body}");
    std::thread::sleep(Duration::from_millis(3200));
    let (status, _, body) = http_get(&format!("{}/healthz", daemon.base)).unwrap();
    assert_eq!(status, 503, "{body}");
    let health: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(health["status"], "degraded");
    assert!(health["problems"][0].as_str().unwrap().contains("no source polled successfully"), "{body}");
    assert_eq!(health["sources"], 1);
}

#[test]
fn status_page_renders_in_headless_chromium() {
    let fixture = Fixture::default();
    fixture.add(
        "ok.example/rss",
        200,
        "application/rss+xml",
        rss("", &[("s1", "http://ok.example/1"), ("s2", "http://ok.example/2")]),
    );
    fixture.add("broken.example/rss", 503, "text/plain", b"down".to_vec());
    let fixture = fixture.start();
    let work = Workspace::new();
    let port = free_port();
    let config = work.config(&format!(
        "{}[fetch]\nproxy = \"{}\"\n[defaults]\nfull_text = false\n\
         [[sources]]\nname = \"working\"\nurl = \"http://ok.example/rss\"\n\
         [[sources]]\nname = \"failing\"\nurl = \"http://broken.example/rss\"\n",
        served_at(port),
        fixture.proxy_url()
    ));
    let daemon = Daemon::start(&config, port);
    assert!(wait_until(Duration::from_secs(10), || {
        http_get(&format!("{}/", daemon.base)).is_ok_and(|(_, _, body)| body.contains("erroring since"))
    }));
    let Some(chromium) = ["chromium", "chromium-browser", "google-chrome"]
        .into_iter()
        .find(|c| std::process::Command::new(c).arg("--version").output().is_ok_and(|o| o.status.success()))
    else {
        eprintln!("skipped: no headless Chromium (apt-get install chromium)");
        return;
    };
    let headless = |extra: &[&str]| {
        std::process::Command::new(chromium)
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--hide-scrollbars",
                "--window-size=1280,720",
            ])
            .arg(format!("--user-data-dir={}", work.path("chromium").display()))
            .args(extra)
            .arg(format!("{}/", daemon.base))
            .output()
            .unwrap()
    };
    // The DOM as Chromium built it: a table with a row per source.
    let dom = String::from_utf8_lossy(&headless(&["--dump-dom"]).stdout).into_owned();
    assert!(dom.contains("<table>") && dom.contains(">working</a>") && dom.contains(">failing</a>"), "{dom}");
    assert!(dom.contains("erroring since") && dom.contains("HTTP 503"), "{dom}");
    assert_eq!(dom.matches("<tr class=").count(), 2);
    assert!(dom.contains("<svg"));
    // And a screenshot, kept next to the build for a person to look at.
    let shot = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("status-page.png");
    let _ = std::fs::remove_file(&shot);
    let output = headless(&[&format!("--screenshot={}", shot.display())]);
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let png = std::fs::read(&shot).expect("a screenshot");
    assert!(png.starts_with(b"\x89PNG") && png.len() > 10_000, "{} bytes", png.len());
    eprintln!("status page screenshot: {}", shot.display());
}

#[test]
fn sighup_reloads_sources_and_rejects_an_invalid_config() {
    let fixture = Fixture::default();
    fixture.add(
        "first.example/rss",
        200,
        "application/rss+xml",
        rss("", &[("a1", "http://first.example/1")]),
    );
    fixture.add(
        "second.example/rss",
        200,
        "application/rss+xml",
        rss("", &[("b1", "http://second.example/1")]),
    );
    let fixture = fixture.start();
    let work = Workspace::new();
    let port = free_port();
    let head = format!(
        "{}[fetch]\nproxy = \"{}\"\nper_host_rate = 100\n\
         [defaults]\nfull_text = false\n",
        served_at(port),
        fixture.proxy_url()
    );
    let first = "[[sources]]\nname = \"first\"\nurl = \"http://first.example/rss\"\nevery = \"1s\"\n";
    let second = "[[sources]]\nname = \"second\"\nurl = \"http://second.example/rss\"\nevery = \"1h\"\n";
    let config = work.config(&format!("{head}{first}"));
    let daemon = Daemon::start(&config, port);
    let hangup = || {
        std::process::Command::new("kill").args(["-HUP", &daemon.child.id().to_string()]).status().unwrap();
    };
    assert!(
        wait_until(Duration::from_secs(10), || fixture.hits("first.example/rss") >= 2),
        "first polls every second"
    );

    // An invalid config is refused; the daemon keeps running the old one.
    std::fs::write(&config, format!("{head}{first}[[sources]]\nname = \"broken\"\nurl = \"not a url\"\n"))
        .unwrap();
    hangup();
    let hits = fixture.hits("first.example/rss");
    assert!(
        wait_until(Duration::from_secs(10), || fixture.hits("first.example/rss") >= hits + 2),
        "still polling"
    );
    assert_eq!(http_get(&format!("{}/healthz", daemon.base)).unwrap().0, 200);

    // Add `second`, remove `first`: second is polled at once, first no more.
    std::fs::write(&config, format!("{head}{second}")).unwrap();
    hangup();
    assert!(
        wait_until(Duration::from_secs(10), || fixture.hits("second.example/rss") == 1),
        "the added source polls"
    );
    std::thread::sleep(Duration::from_millis(500));
    let after = fixture.hits("first.example/rss");
    std::thread::sleep(Duration::from_millis(2500));
    assert_eq!(fixture.hits("first.example/rss"), after, "the removed source stopped");
    let (_, _, health) = http_get(&format!("{}/healthz", daemon.base)).unwrap();
    assert!(health.contains("\"sources\":1"), "{health}");
    let (_, _, status) = http_get(&format!("{}/", daemon.base)).unwrap();
    assert!(status.contains(">second</a>") && !status.contains(">first</a>"), "{status}");
}

/// Stores a failed write cannot reach, like a full disk: a file size limit on the running daemon
/// (`prlimit`; soft limit only, so it can be lifted again without privileges).
fn limit_file_size(pid: u32, limit: &str) -> bool {
    std::process::Command::new("prlimit")
        .args(["--pid", &pid.to_string(), &format!("--fsize={limit}:unlimited")])
        .status()
        .is_ok_and(|status| status.success())
}

#[test]
fn a_full_disk_fails_polls_keeps_serving_and_writes_resume_when_space_returns() {
    if !limit_file_size(std::process::id(), "unlimited") {
        eprintln!("skipped: prlimit (util-linux) cannot change file size limits here");
        return;
    }
    let fixture = Fixture::default();
    fixture.add("wire.example/rss", 200, "application/rss+xml", rss("", &[("a1", "http://wire.example/a1")]));
    let fixture = fixture.start();
    let work = Workspace::new();
    let port = free_port();
    let config = work.sqlite_config(&format!(
        "{}[fetch]\nproxy = \"{}\"\n\
         [defaults]\nevery = \"1s\"\nfull_text = false\n\
         [[sources]]\nname = \"wire\"\nurl = \"http://wire.example/rss\"\n",
        served_at(port),
        fixture.proxy_url()
    ));
    let mut daemon = Daemon::start(&config, port);
    // The log goes to a pipe, which a file size limit does not touch.
    let log = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
    let stderr = daemon.child.stderr.take().unwrap();
    std::thread::spawn({
        let log = std::sync::Arc::clone(&log);
        move || {
            use std::io::BufRead;
            for line in std::io::BufReader::new(stderr).lines().map_while(Result::ok) {
                log.lock().unwrap().push_str(&(line + "\n"));
            }
        }
    });
    let stored = || -> i64 { work.db().one("SELECT count(*) FROM items", &[]) };
    assert!(wait_until(Duration::from_secs(10), || stored() == 1), "first item stored");

    // The disk fills up; the feed brings a new item meanwhile.
    assert!(limit_file_size(daemon.child.id(), "4096"));
    let items = [("a1", "http://wire.example/a1"), ("a2", "http://wire.example/a2")];
    fixture.add("wire.example/rss", 200, "application/rss+xml", rss("", &items));
    assert!(
        wait_until(Duration::from_secs(10), || log.lock().unwrap().contains("poll failed")),
        "a poll fails once writes fail:\n{}",
        log.lock().unwrap()
    );
    let failure =
        log.lock().unwrap().lines().find(|l| l.contains("poll failed")).unwrap_or_default().to_owned();
    assert!(failure.contains("source=wire") && failure.contains("feedmill.db: commit failed"), "{failure}");
    assert!(failure.contains("disk full, a file size limit"), "the error says what to check: {failure}");
    let (status, _, body) = http_get(&format!("{}/healthz", daemon.base)).unwrap();
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("does not take writes"), "{body}");
    let (status, _, feed) = http_get(&format!("{}/feed.json", daemon.base)).unwrap();
    assert_eq!(status, 200, "the stored items are still served");
    assert!(feed.contains("http://wire.example/a1"), "{feed}");
    assert_eq!(stored(), 1);

    // Space returns: the item that could not be stored is, with no restart.
    assert!(limit_file_size(daemon.child.id(), "unlimited"));
    assert!(wait_until(Duration::from_secs(10), || stored() == 2), "writes resume:\n{}", log.lock().unwrap());
    assert!(wait_until(Duration::from_secs(5), || {
        http_get(&format!("{}/healthz", daemon.base)).is_ok_and(|(status, _, _)| status == 200)
    }));
    assert!(daemon.terminate(Duration::from_secs(10)).is_some_and(|s| s.success()));
    let integrity: String = work.db().one("PRAGMA integrity_check", &[]);
    assert_eq!(integrity, "ok");
}

/// A small tmpfs mounted on a folder for one test, unmounted on drop.
struct Tmpfs(std::path::PathBuf);

impl Tmpfs {
    /// `None` (the test skips) where this process may not mount file systems.
    fn mount(dir: std::path::PathBuf) -> Option<Tmpfs> {
        std::fs::create_dir_all(&dir).ok()?;
        let mounted = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", "size=2m", "feedmill-test"])
            .arg(&dir)
            .stderr(std::process::Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        mounted.then_some(Tmpfs(dir))
    }

    fn remount(&self, mode: &str) {
        let status = std::process::Command::new("mount")
            .args(["-o", &format!("remount,{mode}")])
            .arg(&self.0)
            .status()
            .unwrap();
        assert!(status.success(), "remount {mode}");
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount").arg(&self.0).status();
    }
}

#[test]
fn a_read_only_database_is_refused_with_its_path() {
    let work = Workspace::new();
    let Some(tmpfs) = Tmpfs::mount(work.path("data")) else {
        eprintln!("skipped: cannot mount a tmpfs here (needs CAP_SYS_ADMIN)");
        return;
    };
    let config = work.sqlite_config(
        "[storage]\npath = \"data/feedmill.db\"\n[[sources]]\nname = \"a\"\nurl = \"http://a.example/rss\"\n",
    );
    let config = config.to_str().unwrap();
    let created =
        common::feedmill().current_dir(work.path("")).args(["poll", "-c", config]).output().unwrap();
    assert!(work.path("data/feedmill.db").exists(), "{}", String::from_utf8_lossy(&created.stderr));
    tmpfs.remount("ro");
    let output = common::feedmill().current_dir(work.path("")).args(["run", "-c", config]).output().unwrap();
    tmpfs.remount("rw");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("feedmill.db: the database is read-only"), "{stderr}");
}
