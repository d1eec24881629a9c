//! Polling at scale: 10,000 feeds of 50 items each on a loopback fixture server.
//!
//! Run: `cargo bench --bench poll_scale` (needs `wrk` and GNU `time`: `apt-get install wrk time`).
//! Optional: `FEEDS=2000 CONCURRENCY=32 RUNS_304=5 cargo bench --bench poll_scale`; `PROFILE_304=1`
//! records each all-304 poll with `perf record -e cpu-clock -g` into `target/poll_304.perf`.
//!
//! Measures the release `feedmill poll` binary twice against the same database — the first poll
//! (every feed new, 500,000 items) and a second where every feed answers 304 — reporting the poll
//! cycle's wall time and requests/s, feedmill's peak RSS, and the most requests the fixture ever
//! had in flight at once. For context, bare reqwest and bare hyper-util clients send the same
//! requests with nothing else to do. Then `wrk` hits the same fixture (same 304 answers, same
//! concurrency, rotating over the same URLs) as the ceiling.

use std::net::SocketAddr;
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;

const ITEMS_PER_FEED: usize = 50;
const ETAG: &str = "\"v1\"";

#[derive(Default)]
struct Counters {
    open_connections: AtomicUsize,
    max_open_connections: AtomicUsize,
    requests: AtomicUsize,
}

/// A TCP listener that counts the connections open at once.
struct CountingListener {
    inner: tokio::net::TcpListener,
    counters: Arc<Counters>,
}

/// A connection that tells the counters when it closes.
struct CountedStream {
    inner: tokio::net::TcpStream,
    counters: Arc<Counters>,
}

impl Drop for CountedStream {
    fn drop(&mut self) {
        self.counters.open_connections.fetch_sub(1, Ordering::SeqCst);
    }
}

impl axum::serve::Listener for CountingListener {
    type Io = CountedStream;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            if let Ok((stream, addr)) = self.inner.accept().await {
                let open = self.counters.open_connections.fetch_add(1, Ordering::SeqCst) + 1;
                self.counters.max_open_connections.fetch_max(open, Ordering::SeqCst);
                return (CountedStream { inner: stream, counters: Arc::clone(&self.counters) }, addr);
            }
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        self.inner.local_addr()
    }
}

impl tokio::io::AsyncRead for CountedStream {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl tokio::io::AsyncWrite for CountedStream {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        std::pin::Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

async fn feed(
    State(counters): State<Arc<Counters>>,
    Path(file): Path<String>,
    headers: HeaderMap,
) -> Response {
    counters.requests.fetch_add(1, Ordering::Relaxed);
    let response = if headers.get(header::IF_NONE_MATCH).is_some_and(|v| v == ETAG) {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        let n = file.trim_end_matches(".xml");
        let mut body = String::with_capacity(ITEMS_PER_FEED * 400);
        body.push_str("<?xml version=\"1.0\" encoding=\"utf-8\"?><rss version=\"2.0\"><channel><title>Feed ");
        body.push_str(n);
        body.push_str("</title><link>http://bench.example/</link><description>bench</description>");
        for i in 0..ITEMS_PER_FEED {
            body.push_str(&format!(
                "<item><title>Story {i} of feed {n}</title><link>http://bench.example/{n}/{i}</link>\
                 <guid>bench-{n}-{i}</guid><pubDate>Wed, 02 Jul 2025 10:{:02}:00 +0000</pubDate>\
                 <description>The lead paragraph of story {i} in feed {n}, a sentence or two long.</description></item>",
                i % 60
            ));
        }
        body.push_str("</channel></rss>");
        ([(header::CONTENT_TYPE, "application/rss+xml"), (header::ETAG, ETAG)], body).into_response()
    };
    response
}

fn start_fixture(counters: Arc<Counters>) -> SocketAddr {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.set_nonblocking(true).expect("nonblocking");
    let addr = listener.local_addr().expect("addr");
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime");
        runtime.block_on(async move {
            let inner = tokio::net::TcpListener::from_std(listener).expect("listener");
            let listener = CountingListener { inner, counters: Arc::clone(&counters) };
            let app = Router::new().route("/feeds/{file}", get(feed)).with_state(counters);
            axum::serve(listener, app).await.expect("serve");
        });
    });
    addr
}

struct PollRun {
    cycle_secs: f64,
    peak_rss_kb: u64,
    summary: String,
}

fn run_poll(config: &std::path::Path, profile: bool) -> PollRun {
    let mut command = Command::new("/usr/bin/time");
    command.args(["-f", "peak_rss_kb=%M"]);
    if profile {
        command.args([
            "perf",
            "record",
            "-e",
            "cpu-clock",
            "--call-graph",
            "dwarf,16384",
            "-F",
            "2000",
            "-o",
            "target/poll_304.perf",
            "--",
        ]);
    }
    let output = command
        .args([env!("CARGO_BIN_EXE_feedmill"), "poll", "-c"])
        .arg(config)
        .env("RUST_LOG", "warn")
        .output()
        .expect("run feedmill under /usr/bin/time (apt-get install time)");
    let stderr = String::from_utf8_lossy(&output.stderr);
    let summary = stderr.lines().find(|l| l.starts_with("polled ")).unwrap_or_default().to_owned();
    let cycle_secs = summary
        .split(" in ")
        .nth(1)
        .and_then(|rest| rest.split('s').next())
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no poll summary in: {stderr}"));
    let peak_rss_kb = stderr
        .lines()
        .find_map(|l| l.strip_prefix("peak_rss_kb=")?.trim().parse().ok())
        .expect("GNU time output");
    PollRun { cycle_secs, peak_rss_kb, summary }
}

/// Requests/s of `send(i)` for i in 0..feeds, `concurrency` at a time, on two worker threads (as
/// feedmill has on this machine).
fn rate<F, Fut>(feeds: usize, concurrency: usize, send: F) -> f64
where
    F: Fn(usize) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let runtime =
        tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
    runtime.block_on(async move {
        let slots = Arc::new(tokio::sync::Semaphore::new(concurrency));
        let started = std::time::Instant::now();
        let mut tasks = tokio::task::JoinSet::new();
        for i in 0..feeds {
            let (request, slots) = (send(i), Arc::clone(&slots));
            tasks.spawn(async move {
                let _slot = slots.acquire_owned().await;
                request.await;
            });
        }
        while tasks.join_next().await.is_some() {}
        feeds as f64 / started.elapsed().as_secs_f64()
    })
}

/// A plain reqwest client sending the same conditional GETs.
fn bare_reqwest_rate(addr: SocketAddr, feeds: usize, concurrency: usize) -> f64 {
    let client = reqwest::Client::builder().no_proxy().build().expect("client");
    rate(feeds, concurrency, move |i| {
        let request = client.get(format!("http://{addr}/feeds/{i}.xml")).header("If-None-Match", ETAG).send();
        async move {
            let _ = request.await;
        }
    })
}

/// hyper-util's pooled HTTP/1 client (what reqwest wraps) sending the same conditional GETs.
fn bare_hyper_rate(addr: SocketAddr, feeds: usize, concurrency: usize) -> f64 {
    let client: hyper_util::client::legacy::Client<_, http_body_util::Empty<bytes::Bytes>> =
        hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new()).build_http();
    rate(feeds, concurrency, move |i| {
        let uri: hyper::Uri = format!("http://{addr}/feeds/{i}.xml").parse().expect("uri");
        let request = hyper::Request::get(uri)
            .header("If-None-Match", ETAG)
            .body(http_body_util::Empty::new())
            .expect("request");
        let response = client.request(request);
        async move {
            let _ = response.await;
        }
    })
}

fn main() {
    // `cargo bench` passes `--bench`; nothing else to parse.
    let feeds: usize = std::env::var("FEEDS").ok().and_then(|v| v.parse().ok()).unwrap_or(10_000);
    let concurrency: usize = std::env::var("CONCURRENCY").ok().and_then(|v| v.parse().ok()).unwrap_or(64);
    let counters = Arc::new(Counters::default());
    let addr = start_fixture(Arc::clone(&counters));
    std::thread::sleep(Duration::from_millis(200));

    let dir = std::env::temp_dir().join(format!("feedmill-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    // With $FEEDMILL_TEST_POSTGRES (scripts/with-postgresql), on a new PostgreSQL database there.
    let storage = match std::env::var("FEEDMILL_TEST_POSTGRES") {
        Ok(server) => {
            let database = format!("poll_scale_{}", std::process::id());
            let mut admin = postgres::Client::connect(&server, postgres::NoTls).expect("the server");
            admin.batch_execute(&format!("CREATE DATABASE {database}")).expect("a database");
            println!("on PostgreSQL ({database})");
            // The admin URL names the `postgres` database (scripts/with-postgresql).
            format!("database_url = \"{}\"", server.replacen("/postgres", &format!("/{database}"), 1))
        }
        Err(_) => format!("path = \"{}\"", dir.join("bench.db").display()),
    };
    let mut config = format!(
        "[storage]\n{storage}\n[fetch]\nmax_connections = {concurrency}\n\
         [fetch.hosts.\"127.0.0.1\"]\nconcurrency = {concurrency}\nrate = 1000000\n\
         [defaults]\nfull_text = false\nevery = \"10m\"\n"
    );
    for i in 0..feeds {
        config
            .push_str(&format!("[[sources]]\nname = \"feed-{i}\"\nurl = \"http://{addr}/feeds/{i}.xml\"\n"));
    }
    let config_path = dir.join("bench.toml");
    std::fs::write(&config_path, config).expect("write config");

    println!(
        "poll_scale: {feeds} feeds x {ITEMS_PER_FEED} items, concurrency {concurrency}, fixture on {addr}"
    );
    let mut rows = Vec::new();
    counters.max_open_connections.store(0, Ordering::SeqCst);
    let first = run_poll(&config_path, false);
    println!("  first poll (all new): {}", first.summary);
    rows.push(("first poll (all new)", first, counters.max_open_connections.load(Ordering::SeqCst)));
    // The 304 cycle is short (well under a second), so it is run several times; the table
    // shows the median run and the most connections seen over all of them.
    let runs_304: usize = std::env::var("RUNS_304").ok().and_then(|v| v.parse().ok()).unwrap_or(3).max(1);
    let profile = std::env::var_os("PROFILE_304").is_some();
    counters.max_open_connections.store(0, Ordering::SeqCst);
    let mut polls_304: Vec<PollRun> = (0..runs_304)
        .map(|_| {
            let run = run_poll(&config_path, profile);
            println!("  second poll (all 304): {}", run.summary);
            run
        })
        .collect();
    polls_304.sort_by(|a, b| a.cycle_secs.total_cmp(&b.cycle_secs));
    let median = polls_304.swap_remove(runs_304 / 2);
    rows.push((
        "second poll (all 304), median run",
        median,
        counters.max_open_connections.load(Ordering::SeqCst),
    ));

    // For context: a bare reqwest client (the HTTP stack feedmill uses) doing only the requests.
    let bare_rate = bare_reqwest_rate(addr, feeds, concurrency);
    // And hyper's own pooled client, without reqwest's layers: what a leaner fetcher could reach.
    let bare_hyper = bare_hyper_rate(addr, feeds, concurrency);

    // The ceiling: wrk on the same fixture, same 304 answers, same concurrency, same URLs.
    let script = dir.join("rotate.lua");
    std::fs::write(
        &script,
        format!(
            "local i = 0\nrequest = function()\n  i = (i % {feeds}) + 1\n  return wrk.format(\"GET\", \"/feeds/\" .. i .. \".xml\", {{[\"If-None-Match\"] = '{ETAG}'}})\nend\n"
        ),
    )
    .expect("write wrk script");
    let wrk = Command::new("wrk")
        .args(["-t2", &format!("-c{concurrency}"), "-d10s", "-s"])
        .arg(&script)
        .arg(format!("http://{addr}/"))
        .output();
    let wrk_rate = match &wrk {
        Ok(output) => String::from_utf8_lossy(&output.stdout)
            .lines()
            .find_map(|l| l.strip_prefix("Requests/sec:")?.trim().parse::<f64>().ok())
            .unwrap_or(0.0),
        Err(error) => {
            println!("  wrk not run ({error}); apt-get install wrk");
            0.0
        }
    };

    println!();
    println!("| run | poll cycle | requests/s | peak RSS of feedmill | most connections open at once |");
    println!("|---|---|---|---|---|");
    for (label, run, max_open) in &rows {
        println!(
            "| {label} | {:.3} s | {:.0} | {:.1} MB | {max_open} (limit {concurrency}) |",
            run.cycle_secs,
            feeds as f64 / run.cycle_secs,
            run.peak_rss_kb as f64 / 1024.0
        );
    }
    println!("| bare reqwest, {concurrency} at a time, 304s | - | {bare_rate:.0} | - | - |");
    println!("| bare hyper-util client, {concurrency} at a time, 304s | - | {bare_hyper:.0} | - | - |");
    println!("| wrk -t2 -c{concurrency}, 304s | 10 s | {wrk_rate:.0} | - | - |");
    if wrk_rate > 0.0 {
        let rate_304 = feeds as f64 / rows[1].1.cycle_secs;
        println!("\nall-304 poll cycle at {:.0}% of wrk's request rate", 100.0 * rate_304 / wrk_rate);
    }
    let _ = std::fs::remove_dir_all(&dir);
}
