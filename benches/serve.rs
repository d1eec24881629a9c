//! Serving speed: `wrk` against feedmill's `/feed.atom` (100 entries) — full responses and
//! `304`s — beside nginx serving the same bytes as a static file, in the same run.
//!
//! Run: `apt-get install wrk nginx-light && cargo bench --bench serve` (`CONCURRENCY=64`,
//! `SECONDS=10` to vary). Everything runs on this machine over loopback: the release `feedmill
//! run` daemon (on a store filled with 100 items of ~2 KB text), nginx with one worker per core,
//! and wrk with two threads.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use feedmill::config::{Schedule, Source};
use feedmill::dedup::near::Signature;
use feedmill::store::{Candidate, PollSuccess, Store};

const ITEMS: usize = 100;

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or(18_080)
}

/// About 1,500 characters of text for item `n`, different from every other item's (alike
/// bodies would be merged into one entry by the deduplication).
fn body(n: usize) -> String {
    const WORDS: &[&str] = &[
        "region",
        "officials",
        "Tuesday",
        "council",
        "energy",
        "drones",
        "budget",
        "school",
        "port",
        "grain",
        "minister",
        "village",
        "repairs",
        "border",
        "talks",
        "court",
        "river",
        "bridge",
        "power",
        "train",
        "hospital",
        "farmers",
        "prices",
        "shelter",
        "mayor",
        "airport",
        "exports",
        "station",
        "volunteers",
        "law",
    ];
    let mut state = n as u64 * 0x9e37_79b9_7f4a_7c15 + 1;
    let mut text = String::new();
    for i in 0..220 {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        text.push_str(WORDS[(state % WORDS.len() as u64) as usize]);
        text.push_str(if i % 14 == 13 { ". " } else { " " });
    }
    text
}

async fn fill(db: &std::path::Path) {
    let store = Store::open(db).expect("store");
    let source = Source {
        name: "wire".into(),
        url: url::Url::parse("https://wire.example/rss").expect("url"),
        schedule: Schedule::Every(Duration::from_secs(600)),
        full_text: true,
        tags: vec![],
        priority: 0,
        filter: Default::default(),
        kind: feedmill::config::SourceKind::Feed,
    };
    let ids = store.sync_sources(&[source]).await.expect("sources");
    let items = (0..ITEMS)
        .map(|n| {
            let text = body(n);
            Candidate {
                guid: format!("g{n}"),
                canonical_link: Some(format!("https://wire.example/news/{n}")),
                link: Some(format!("https://wire.example/news/{n}")),
                title: format!("Story number {n}"),
                author: Some("Reporter".into()),
                published: Some(1_760_000_000 + n as i64 * 60),
                updated: None,
                categories: vec!["World".into()],
                summary: Some(text[..120].to_owned()),
                content_html: Some(format!("<p>{text}</p>")),
                signature: Signature::of(&text),
                content_text: Some(text),
                extracted_by: "rule".into(),
                language: Some("en".into()),
                editions: Vec::new(),
                hidden: false,
                feed_hash: format!("h{n}"),
            }
        })
        .collect();
    store
        .commit_poll(ids["wire"], items, PollSuccess { status: 200, ..Default::default() })
        .await
        .expect("fill");
    store.flush().await.expect("flush");
}

struct Killed(Child);

impl Drop for Killed {
    /// SIGTERM, so nginx's master stops its workers too (and feedmill shuts down cleanly).
    fn drop(&mut self) {
        let _ = Command::new("kill").args(["-TERM", &self.0.id().to_string()]).status();
        let _ = self.0.wait();
    }
}

/// `wrk` requests/s against `url`, with extra request headers.
fn wrk(url: &str, headers: &[String], concurrency: usize, seconds: u64) -> f64 {
    let mut command = Command::new("wrk");
    command.args(["-t2", &format!("-c{concurrency}"), &format!("-d{seconds}s")]);
    for header in headers {
        command.args(["-H", header]);
    }
    match command.arg(url).output() {
        Ok(output) => String::from_utf8_lossy(&output.stdout)
            .lines()
            .find_map(|l| l.strip_prefix("Requests/sec:")?.trim().parse::<f64>().ok())
            .unwrap_or(0.0),
        Err(error) => {
            println!("wrk not run ({error}): apt-get install wrk");
            0.0
        }
    }
}

/// Status and response headers of a GET, with `curl`-free plain HTTP/1.1 over a socket.
fn head(port: u16, path: &str, extra: &str) -> (u16, String) {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect");
    let request = format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n{extra}Connection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).expect("send");
    let mut response = Vec::new();
    let _ = stream.read_to_end(&mut response);
    let text = String::from_utf8_lossy(&response).into_owned();
    let status = text.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    (status, text)
}

fn header_value(response: &str, name: &str) -> Option<String> {
    response.lines().find_map(|line| {
        let (key, value) = line.split_once(':')?;
        key.eq_ignore_ascii_case(name).then(|| value.trim().to_owned())
    })
}

fn wait_for(port: u16) {
    for _ in 0..100 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("nothing listens on port {port}");
}

fn main() {
    let concurrency: usize = std::env::var("CONCURRENCY").ok().and_then(|v| v.parse().ok()).unwrap_or(64);
    let seconds: u64 = std::env::var("SECONDS").ok().and_then(|v| v.parse().ok()).unwrap_or(10);
    let dir = tempfile::tempdir().expect("temp dir");
    let db = dir.path().join("serve.db");
    tokio::runtime::Runtime::new().expect("runtime").block_on(fill(&db));

    let port = free_port();
    let config = dir.path().join("feedmill.toml");
    std::fs::write(
        &config,
        format!(
            "[storage]\npath = \"{}\"\n[server]\nlisten = \"127.0.0.1:{port}\"\npublic_url = \"http://127.0.0.1:{port}/\"\n\
             [feed]\nmax_items = {ITEMS}\n",
            db.display()
        ),
    )
    .expect("config");
    let _daemon = Killed(
        Command::new(env!("CARGO_BIN_EXE_feedmill"))
            .args(["run", "-c"])
            .arg(&config)
            .env("RUST_LOG", "warn")
            .stderr(Stdio::null())
            .spawn()
            .expect("start feedmill"),
    );
    wait_for(port);
    let (status, response) = head(port, "/feed.atom", "");
    assert_eq!(status, 200, "{response}");
    let etag = header_value(&response, "etag").expect("an ETag");
    let body_start = response.find("\r\n\r\n").map(|i| i + 4).unwrap_or(0);
    let atom = &response[body_start..];
    let entries = atom.matches("<entry>").count();
    println!("serve: /feed.atom with {entries} entries, {} bytes, ETag {etag}", atom.len());
    assert_eq!(entries, ITEMS, "{response}");

    // nginx serving the same bytes as a static file, with its own ETag and 304s.
    let root = dir.path().join("www");
    std::fs::create_dir_all(&root).expect("www");
    std::fs::write(root.join("feed.atom"), atom).expect("static copy");
    let nginx_port = free_port();
    let nginx_conf = dir.path().join("nginx.conf");
    std::fs::write(
        &nginx_conf,
        format!(
            "worker_processes auto;\ndaemon off;\npid {dir}/nginx.pid;\nerror_log {dir}/error.log;\n\
             events {{ worker_connections 1024; }}\n\
             http {{ access_log off; sendfile on; tcp_nopush on; keepalive_requests 100000; types {{ application/atom+xml atom; }}\n\
               client_body_temp_path {dir}; proxy_temp_path {dir}; fastcgi_temp_path {dir}; uwsgi_temp_path {dir}; scgi_temp_path {dir};\n\
               server {{ listen 127.0.0.1:{nginx_port}; root {root}; }} }}\n",
            dir = dir.path().display(),
            root = root.display()
        ),
    )
    .expect("nginx.conf");
    let nginx = Command::new("nginx").arg("-c").arg(&nginx_conf).stderr(Stdio::null()).spawn();
    let Ok(nginx) = nginx else {
        println!("nginx not run: apt-get install nginx-light");
        return;
    };
    let _nginx = Killed(nginx);
    wait_for(nginx_port);
    let (_, nginx_response) = head(nginx_port, "/feed.atom", "");
    let nginx_etag = header_value(&nginx_response, "etag").expect("nginx ETag");
    assert_eq!(head(nginx_port, "/feed.atom", &format!("If-None-Match: {nginx_etag}\r\n")).0, 304);
    assert_eq!(head(port, "/feed.atom", &format!("If-None-Match: {etag}\r\n")).0, 304);

    let feed_url = format!("http://127.0.0.1:{port}/feed.atom");
    let nginx_url = format!("http://127.0.0.1:{nginx_port}/feed.atom");
    let rows = [
        ("feedmill, full 200", wrk(&feed_url, &[], concurrency, seconds)),
        ("nginx, full 200", wrk(&nginx_url, &[], concurrency, seconds)),
        ("feedmill, 304", wrk(&feed_url, &[format!("If-None-Match: {etag}")], concurrency, seconds)),
        ("nginx, 304", wrk(&nginx_url, &[format!("If-None-Match: {nginx_etag}")], concurrency, seconds)),
    ];
    println!("\n| wrk -t2 -c{concurrency} -d{seconds}s | requests/s |\n|---|---|");
    for (label, rate) in &rows {
        println!("| {label} | {rate:.0} |");
    }
    if rows[1].1 > 0.0 && rows[3].1 > 0.0 {
        println!(
            "\nfeedmill at {:.0}% of nginx for full responses, {:.0}% for 304s",
            100.0 * rows[0].1 / rows[1].1,
            100.0 * rows[2].1 / rows[3].1
        );
    }
}
