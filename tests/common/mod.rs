//! Test harness: a loopback "web" of fixture sites and helpers to run the real `feedmill` binary.
//!
//! The fixture server is also the HTTP proxy feedmill is configured with, so feeds and pages keep
//! their real host names (`unn.ua`, `news.example`) — the site rules match as they would in
//! production — while every byte stays on 127.0.0.1.

#![allow(dead_code)]

pub mod db;
pub mod postgres;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use axum::response::{IntoResponse, Response};

/// One fixture response.
#[derive(Clone)]
pub struct Page {
    pub status: u16,
    pub content_type: &'static str,
    pub body: Vec<u8>,
    /// How long to wait before answering.
    pub delay: Duration,
    /// Extra response headers.
    pub headers: Vec<(&'static str, String)>,
}

/// The fixture web: `host + path` → page, with a hit counter per `host + path`.
#[derive(Clone, Default)]
pub struct Fixture {
    pages: Arc<Mutex<HashMap<String, Page>>>,
    hits: Arc<Mutex<HashMap<String, usize>>>,
    /// Requests being answered now, and the most ever answered at once, per key.
    in_flight: Arc<Mutex<HashMap<String, (usize, usize)>>>,
    /// When each request came, per key (wall clock, for tests that count per schedule tick).
    times: Arc<Mutex<HashMap<String, Vec<std::time::SystemTime>>>>,
    pub addr: Option<SocketAddr>,
}

pub fn fixture_file(rel: &str) -> Vec<u8> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(rel);
    std::fs::read(&path).unwrap_or_else(|e| panic!("fixture {}: {e}", path.display()))
}

impl Fixture {
    /// The UNN-like site and a second site, as the end-to-end tests use them.
    pub fn news_web() -> Fixture {
        let fixture = Fixture::default();
        let rss = "application/rss+xml; charset=utf-8";
        let html = "text/html; charset=utf-8";
        fixture.add("unn.ua/rss/news_uk.xml", 200, rss, fixture_file("unn/news_uk.xml"));
        fixture.add("unn.ua/en/rss/world_en.xml", 200, rss, fixture_file("unn/world_en.xml"));
        fixture.add(
            "unn.ua/en/news/north-korea-to-send-almost-30000-troops-to-reinforce-russia-in-war-against-ukraine-cnn",
            200,
            html,
            fixture_file("unn/north-korea.html"),
        );
        fixture.add(
            "unn.ua/news/syly-ppo-zneshkodyly-20-droniv",
            200,
            html,
            fixture_file("unn/air-defense.html"),
        );
        fixture.add(
            "unn.ua/en/news/government-approves-new-budget-rules",
            200,
            html,
            fixture_file("unn/redesigned.html"),
        );
        fixture.add("news.example/atom.xml", 200, "application/atom+xml", fixture_file("example/atom.xml"));
        fixture.add("news.example/science/solar-farm", 200, html, fixture_file("example/solar.html"));
        fixture.add("broken.example/feed.xml", 500, "text/plain", b"internal error".to_vec());
        fixture.add(
            "broken.example/page.html",
            200,
            html,
            b"<html><body><p>Not a feed at all</p></body></html>".to_vec(),
        );
        fixture
    }

    pub fn add(&self, key: &str, status: u16, content_type: &'static str, body: Vec<u8>) {
        self.add_slow(key, status, content_type, body, Duration::ZERO);
    }

    pub fn add_slow(
        &self,
        key: &str,
        status: u16,
        content_type: &'static str,
        body: Vec<u8>,
        delay: Duration,
    ) {
        self.add_page(key, Page { status, content_type, body, delay, headers: Vec::new() });
    }

    pub fn add_with_headers(
        &self,
        key: &str,
        status: u16,
        content_type: &'static str,
        body: Vec<u8>,
        headers: &[(&'static str, &str)],
    ) {
        let headers = headers.iter().map(|(k, v)| (*k, (*v).to_owned())).collect();
        self.add_page(key, Page { status, content_type, body, delay: Duration::ZERO, headers });
    }

    pub fn add_page(&self, key: &str, page: Page) {
        self.pages.lock().unwrap().insert(key.to_owned(), page);
    }

    /// The most requests to `host` (any path) that were ever being answered at the same time.
    pub fn max_concurrent_host(&self, host: &str) -> usize {
        self.max_concurrent(&format!("host:{host}"))
    }

    /// The most requests for `key` that were ever being answered at the same time.
    pub fn max_concurrent(&self, key: &str) -> usize {
        self.in_flight.lock().unwrap().get(key).map_or(0, |(_, max)| *max)
    }

    /// When the requests for `key` came, in order.
    pub fn hit_times(&self, key: &str) -> Vec<std::time::SystemTime> {
        self.times.lock().unwrap().get(key).cloned().unwrap_or_default()
    }

    pub fn hits(&self, key: &str) -> usize {
        self.hits.lock().unwrap().get(key).copied().unwrap_or(0)
    }

    /// Serves on 127.0.0.1 (random port) for the rest of the test process.
    pub fn start(mut self) -> Fixture {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        self.addr = Some(listener.local_addr().unwrap());
        let state = self.clone();
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            runtime.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener).unwrap();
                let app = axum::Router::new().fallback(move |request: Request<Body>| {
                    let state = state.clone();
                    async move { state.respond(request).await }
                });
                axum::serve(listener, app).await.unwrap();
            });
        });
        self
    }

    /// The proxy URL to put in `[fetch] proxy`.
    pub fn proxy_url(&self) -> String {
        format!("http://{}", self.addr.unwrap())
    }

    async fn respond(&self, request: Request<Body>) -> Response {
        // Proxied requests carry an absolute URI; direct ones only a Host header.
        let host = request
            .uri()
            .host()
            .map(str::to_owned)
            .or_else(|| request.headers().get(header::HOST).and_then(|h| h.to_str().ok()).map(str::to_owned))
            .unwrap_or_default();
        let host = host.split(':').next().unwrap_or_default().to_ascii_lowercase();
        // A page added with its query (`t.me/s/name?before=10`) answers that query alone.
        let key = match request.uri().query().map(|q| format!("{host}{}?{q}", request.uri().path())) {
            Some(with_query) if self.pages.lock().unwrap().contains_key(&with_query) => with_query,
            _ => format!("{host}{}", request.uri().path()),
        };
        *self.hits.lock().unwrap().entry(key.clone()).or_default() += 1;
        self.times.lock().unwrap().entry(key.clone()).or_default().push(std::time::SystemTime::now());
        let page = self.pages.lock().unwrap().get(&key).cloned();
        let answering = InFlight::start(&self.in_flight, [key.clone(), format!("host:{host}")]);
        if let Some(page) = &page {
            tokio::time::sleep(page.delay).await;
        }
        drop(answering);
        match page {
            Some(page) => {
                let mut response = (
                    StatusCode::from_u16(page.status).unwrap(),
                    [(header::CONTENT_TYPE, page.content_type)],
                    page.body,
                )
                    .into_response();
                for (name, value) in page.headers {
                    response.headers_mut().insert(name, value.parse().unwrap());
                }
                response
            }
            None => (StatusCode::NOT_FOUND, format!("no fixture for {key}")).into_response(),
        }
    }
}

/// A request being answered, counted for its keys until dropped (also when the client goes away
/// and the server drops the answer half-way).
struct InFlight {
    counts: Arc<Mutex<HashMap<String, (usize, usize)>>>,
    keys: [String; 2],
}

impl InFlight {
    fn start(counts: &Arc<Mutex<HashMap<String, (usize, usize)>>>, keys: [String; 2]) -> InFlight {
        let mut in_flight = counts.lock().unwrap();
        for key in &keys {
            let (now, max) = in_flight.entry(key.clone()).or_default();
            *now += 1;
            *max = (*max).max(*now);
        }
        InFlight { counts: Arc::clone(counts), keys }
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        let mut in_flight = self.counts.lock().unwrap_or_else(|p| p.into_inner());
        for key in &self.keys {
            in_flight.entry(key.clone()).or_default().0 -= 1;
        }
    }
}

/// A temporary folder with a config file in it, and the database the test's feedmill uses: the
/// SQLite file of its config's `[storage] path`, or, when the suite runs on PostgreSQL
/// ([`db::postgres_server`]), a database of its own there.
pub struct Workspace {
    pub dir: tempfile::TempDir,
    postgres: std::sync::OnceLock<String>,
    /// Its config names a SQLite file whatever store the suite runs on ([`Workspace::sqlite_config`]).
    sqlite_only: std::sync::atomic::AtomicBool,
}

impl Workspace {
    pub fn new() -> Workspace {
        Workspace {
            dir: tempfile::tempdir().unwrap(),
            postgres: Default::default(),
            sqlite_only: Default::default(),
        }
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    /// Writes `feedmill.toml` and returns its path. When the suite runs on PostgreSQL, the
    /// `[storage]` section's `path` line becomes this workspace's `database_url`.
    pub fn config(&self, text: &str) -> PathBuf {
        let text = match self.postgres_url() {
            Some(url) => on_postgres(text, url),
            None => text.to_owned(),
        };
        self.write_config(&text)
    }

    /// Writes `feedmill.toml` as given, for tests of the SQLite store itself (its file, its disk).
    pub fn sqlite_config(&self, text: &str) -> PathBuf {
        self.sqlite_only.store(true, std::sync::atomic::Ordering::Relaxed);
        self.write_config(text)
    }

    fn write_config(&self, text: &str) -> PathBuf {
        let path = self.path("feedmill.toml");
        std::fs::write(&path, text).unwrap();
        path
    }

    /// This workspace's PostgreSQL database, created at first use, when the suite runs there.
    pub fn postgres_url(&self) -> Option<&str> {
        if self.sqlite_only.load(std::sync::atomic::Ordering::Relaxed) {
            return None;
        }
        let server = db::postgres_server()?;
        Some(self.postgres.get_or_init(|| {
            let name = self.dir.path().file_name().unwrap().to_string_lossy().to_ascii_lowercase();
            let name: String = name.chars().filter(char::is_ascii_alphanumeric).collect();
            db::create_database(&server, &format!("t_{name}"))
        }))
    }

    /// The database the test's feedmill writes (SQLite: `data/feedmill.db` under the workspace).
    pub fn db(&self) -> db::TestDb {
        match self.postgres_url() {
            Some(url) => db::TestDb::postgres(url),
            None => db::TestDb::sqlite(&self.path("data/feedmill.db")),
        }
    }
}

/// `text` with its `[storage]` on the PostgreSQL database at `url`: the `path` line replaced, or
/// a `[storage]` section added at the end (the other lines keep their numbers).
fn on_postgres(text: &str, url: &str) -> String {
    let database = format!("database_url = \"{url}\"");
    let mut section = "";
    let mut replaced = false;
    let mut lines = Vec::new();
    for line in text.lines() {
        let trimmed = line.trim();
        if trimmed.starts_with('[') {
            section = trimmed;
        }
        if section == "[storage]" && trimmed.starts_with("path") && trimmed[4..].trim_start().starts_with('=')
        {
            lines.push(database.clone());
            replaced = true;
        } else {
            lines.push(line.to_owned());
        }
    }
    let text = lines.join("\n") + "\n";
    match (replaced, text.contains("[storage]")) {
        (true, _) => text,
        (false, true) => text.replacen("[storage]", &format!("[storage]\n{database}"), 1),
        (false, false) => format!("{text}[storage]\n{database}\n"),
    }
}

pub fn feedmill() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_feedmill"));
    command.env_remove("FEEDMILL_CONFIG").env("RUST_LOG", "info");
    command
}

/// Runs `feedmill ARGS` to completion.
pub fn run_feedmill(args: &[&str]) -> Output {
    feedmill().args(args).output().unwrap()
}

/// The `[storage]` and `[server]` sections of a daemon's config: the database under the config's
/// folder, the server on 127.0.0.1:`port` with that as its public URL. Tests append the rest.
pub fn served_at(port: u16) -> String {
    format!(
        "[storage]\npath = \"data/feedmill.db\"\n[server]\nlisten = \"127.0.0.1:{port}\"\n\
         public_url = \"http://127.0.0.1:{port}/\"\n"
    )
}

/// Metrics text without the `node="…"` label a node sharing a PostgreSQL database puts on every
/// series.
pub fn without_node_label(metrics: &str) -> String {
    let mut out = String::with_capacity(metrics.len());
    let mut rest = metrics;
    while let Some(start) = rest.find("{node=\"") {
        let after = &rest[start + 7..];
        let after = &after[after.find('"').map_or(after.len(), |i| i + 1)..];
        match after.strip_prefix(',') {
            Some(labels) => {
                out.push_str(&rest[..=start]);
                rest = labels;
            }
            None => {
                out.push_str(&rest[..start]);
                rest = after.strip_prefix('}').unwrap_or(after);
            }
        }
    }
    out.push_str(rest);
    out
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// A running `feedmill run`; killed on drop if the test did not stop it.
pub struct Daemon {
    pub child: Child,
    pub base: String,
}

impl Daemon {
    pub fn start(config: &Path, port: u16) -> Daemon {
        // Relative paths in the config (the database) resolve against the config's folder.
        let child = feedmill()
            .current_dir(config.parent().unwrap())
            .args(["run", "-c", config.to_str().unwrap()])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let daemon = Daemon { child, base: format!("http://127.0.0.1:{port}") };
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Ok(response) = http_get(&format!("{}/healthz", daemon.base)) {
                if response.0 == 200 {
                    return daemon;
                }
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("daemon did not answer /healthz within 20 s");
    }

    /// Sends SIGTERM and waits up to `limit` for the exit status.
    pub fn terminate(&mut self, limit: Duration) -> Option<std::process::ExitStatus> {
        Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status().unwrap();
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            if let Some(status) = self.child.try_wait().unwrap() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        None
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A blocking GET without any proxy: (status, content type, body).
pub fn http_get(url: &str) -> Result<(u16, String, String), String> {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    runtime.block_on(async {
        let client = reqwest::Client::builder().no_proxy().timeout(Duration::from_secs(10)).build().unwrap();
        let response = client.get(url).send().await.map_err(|e| e.to_string())?;
        let status = response.status().as_u16();
        let content_type = response
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        let body = response.text().await.map_err(|e| e.to_string())?;
        Ok((status, content_type, body))
    })
}

/// `../shared` beside the project, when this checkout has it.
pub fn shared_dir() -> Option<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared");
    dir.is_dir().then_some(dir)
}

/// Validates an Atom document against RFC 4287's RELAX NG schema with xmllint. Returns false (and
/// says why) when the schema or xmllint is not available here.
pub fn validate_atom(atom: &str) -> bool {
    let Some(schema) = shared_dir().map(|d| d.join("tools/atom.rng")).filter(|p| p.is_file()) else {
        eprintln!("skipped: ../shared/tools/atom.rng is absent");
        return false;
    };
    if Command::new("xmllint").arg("--version").output().is_err() {
        eprintln!("skipped: xmllint is not installed (apt-get install libxml2-utils)");
        return false;
    }
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("feed.atom");
    std::fs::write(&file, atom).unwrap();
    let output =
        Command::new("xmllint").arg("--noout").arg("--relaxng").arg(&schema).arg(&file).output().unwrap();
    assert!(
        output.status.success(),
        "Atom output fails RFC 4287 schema: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    true
}

/// An RSS 2.0 feed of `(guid, link)` items; `channel_extra` goes inside `<channel>` (e.g. `<ttl>`).
pub fn rss(channel_extra: &str, items: &[(&str, &str)]) -> Vec<u8> {
    let items: String = items
        .iter()
        .map(|(guid, link)| {
            format!("<item><title>Item {guid}</title><link>{link}</link><guid>{guid}</guid><description>Lead of {guid}.</description></item>")
        })
        .collect();
    format!("<?xml version=\"1.0\"?><rss version=\"2.0\"><channel><title>T</title><link>http://x/</link><description>d</description>{channel_extra}{items}</channel></rss>")
        .into_bytes()
}

/// An article page whose two paragraphs start with `word`.
pub fn page(word: &str) -> Vec<u8> {
    format!("<html><body><article><p>{word} paragraph one, long enough to be an article body, with commas, and more.</p><p>{word} paragraph two goes on, adding more detail, and more words, to the story.</p></article></body></html>").into_bytes()
}

/// Runs headless newsboat once (`-x reload`) on `{base}/{feed}` with its own cache in `work`
/// (kept between calls, as a reader's is) and opens that cache; `None`, with a message, when
/// newsboat is not installed.
pub fn newsboat_reload(base: &str, work: &Workspace, feed: &str) -> Option<rusqlite::Connection> {
    if Command::new("newsboat").arg("--version").output().is_err() {
        eprintln!("skipped: newsboat is not installed (apt-get install newsboat)");
        return None;
    }
    let urls = work.path(&format!("newsboat-{feed}.urls"));
    std::fs::write(&urls, format!("{base}/{feed}\n")).unwrap();
    let cache = work.path(&format!("newsboat-{feed}.db"));
    let output = Command::new("newsboat")
        .args(["-u", urls.to_str().unwrap(), "-c", cache.to_str().unwrap(), "-x", "reload"])
        .env("HOME", work.path(""))
        .output()
        .unwrap();
    assert!(output.status.success(), "newsboat: {}", String::from_utf8_lossy(&output.stderr));
    Some(rusqlite::Connection::open(&cache).unwrap())
}

/// Python feedparser's (id, link) of every entry of `feed`; `None` when it is not installed.
pub fn feedparser(base: &str, feed: &str) -> Option<Vec<(String, String)>> {
    let script = "import sys,json,feedparser\nd=feedparser.parse(sys.argv[1])\n\
                  print(json.dumps({'bozo': int(d.bozo), 'entries': [[e.id, e.link] for e in d.entries]}))";
    let output = Command::new("python3").arg("-c").arg(script).arg(format!("{base}/{feed}")).output().ok()?;
    let stderr = String::from_utf8_lossy(&output.stderr);
    if stderr.contains("ModuleNotFoundError") {
        eprintln!("skipped: python feedparser is not installed");
        return None;
    }
    let parsed: serde_json::Value =
        serde_json::from_slice(&output.stdout).unwrap_or_else(|_| panic!("{stderr}"));
    assert_eq!(parsed["bozo"], 0, "{feed}: {parsed}");
    Some(serde_json::from_value(parsed["entries"].clone()).unwrap())
}

/// Validates against ../shared/tools/jsonfeed-v1.1.schema.json with Python's jsonschema.
pub fn validate_json_feed(body: &str) {
    let Some(schema) =
        shared_dir().map(|d| d.join("tools/jsonfeed-v1.1.schema.json")).filter(|p| p.is_file())
    else {
        eprintln!("skipped: ../shared/tools/jsonfeed-v1.1.schema.json is absent");
        return;
    };
    let script = "import json,sys,jsonschema\nschema=json.load(open(sys.argv[1]))\n\
                  jsonschema.validate(json.load(sys.stdin), schema)\nprint('valid')";
    let Some(output) = python(script, &[schema.to_str().unwrap()], body) else { return };
    assert!(output.contains("valid"), "JSON Feed fails its schema: {output}");
}

/// Runs a Python script; `None` (with a message) when Python or its module is missing.
pub fn python(script: &str, args: &[&str], stdin: &str) -> Option<String> {
    use std::io::Write;
    let child = Command::new("python3")
        .arg("-c")
        .arg(script)
        .args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn();
    let Ok(mut child) = child else {
        eprintln!("skipped: python3 is not installed");
        return None;
    };
    child.stdin.take().unwrap().write_all(stdin.as_bytes()).unwrap();
    let output = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    if stderr.contains("ModuleNotFoundError") {
        eprintln!("skipped: {}", stderr.lines().last().unwrap_or_default());
        return None;
    }
    assert!(output.status.success(), "python failed: {stderr}");
    Some(String::from_utf8_lossy(&output.stdout).into_owned())
}

/// `feedmill` under GNU time where it is installed, to read the run's peak memory with
/// [`peak_rss_kb`] (the flag is true); plain `feedmill`, with a message, where it is not.
pub fn feedmill_timed() -> (Command, bool) {
    if Command::new("/usr/bin/time").arg("--version").output().is_err() {
        eprintln!("skipped memory check: /usr/bin/time is not installed (apt-get install time)");
        return (feedmill(), false);
    }
    let mut command = Command::new("/usr/bin/time");
    command.args(["-f", "peak_rss_kb=%M", env!("CARGO_BIN_EXE_feedmill")]);
    command.env_remove("FEEDMILL_CONFIG").env("RUST_LOG", "info");
    (command, true)
}

/// The peak RSS GNU time printed to a [`feedmill_timed`] run's stderr, in kB.
pub fn peak_rss_kb(stderr: &str) -> u64 {
    stderr
        .lines()
        .find_map(|l| l.strip_prefix("peak_rss_kb=")?.trim().parse().ok())
        .expect("GNU time printed the peak RSS")
}
