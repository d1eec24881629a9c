//! The fetch stage against a loopback server: compression, caps, deadlines, redirects, the SSRF
//! guard, conditional GET and the User-Agent.

use std::io::Write;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect};
use axum::routing::get;
use axum::Router;
use feedmill::config::FetchConfig;
use feedmill::fetch::{FeedResponse, FetchError, Fetched, Fetcher, Validators};
use url::Url;

const BIG: usize = 3 * 1024 * 1024;

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    encoder.write_all(data).unwrap();
    encoder.finish().unwrap()
}

fn brotli(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    {
        let mut writer = brotli::CompressorWriter::new(&mut out, 4096, 9, 22);
        writer.write_all(data).unwrap();
    }
    out
}

async fn server() -> SocketAddr {
    let app = Router::new()
        .route("/gzip", get(|| async { ([(header::CONTENT_ENCODING, "gzip")], gzip(b"<p>zipped</p>")) }))
        .route("/br", get(|| async { ([(header::CONTENT_ENCODING, "br")], brotli(b"<p>brotli</p>")) }))
        .route("/gzip-bomb", get(|| async { ([(header::CONTENT_ENCODING, "gzip")], gzip(&vec![b'a'; BIG])) }))
        .route(
            "/brotli-bomb",
            get(|| async { ([(header::CONTENT_ENCODING, "br")], brotli(&vec![b'a'; BIG])) }),
        )
        .route("/big", get(|| async { vec![b'a'; BIG] }))
        .route(
            "/trickle",
            get(|| async {
                let chunks = futures_stream();
                Body::from_stream(chunks)
            }),
        )
        .route(
            "/ua",
            get(|headers: HeaderMap| async move { format!("{:?}", headers.get(header::USER_AGENT)) }),
        )
        .route(
            "/etag",
            get(|headers: HeaderMap| async move {
                if headers.get(header::IF_NONE_MATCH).is_some_and(|v| v == "\"v1\"") {
                    StatusCode::NOT_MODIFIED.into_response()
                } else {
                    ([(header::ETAG, "\"v1\"")], "<rss/>").into_response()
                }
            }),
        )
        .route(
            "/hop/{n}",
            get(|axum::extract::Path(n): axum::extract::Path<u32>| async move {
                if n == 0 {
                    "arrived".into_response()
                } else {
                    Redirect::temporary(&format!("/hop/{}", n - 1)).into_response()
                }
            }),
        )
        .route("/to-private", get(|| async { Redirect::temporary("http://10.0.0.1/admin") }))
        .route("/loop", get(|| async { Redirect::temporary("/loop2") }))
        .route("/loop2", get(|| async { Redirect::temporary("/loop") }))
        .route("/missing", get(|| async { (StatusCode::NOT_FOUND, "gone").into_response() }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    addr
}

/// A body that sends a byte every 300 ms, forever.
fn futures_stream() -> impl futures_core::Stream<Item = Result<Vec<u8>, std::io::Error>> {
    let (sender, receiver) = tokio::sync::mpsc::channel(1);
    tokio::spawn(async move {
        loop {
            if sender.send(Ok(b"x".to_vec())).await.is_err() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
    });
    tokio_stream_from(receiver)
}

fn tokio_stream_from(
    mut receiver: tokio::sync::mpsc::Receiver<Result<Vec<u8>, std::io::Error>>,
) -> impl futures_core::Stream<Item = Result<Vec<u8>, std::io::Error>> {
    futures_util::stream::poll_fn(move |cx| receiver.poll_recv(cx))
}

fn fetcher(configure: impl FnOnce(&mut FetchConfig)) -> Fetcher {
    let mut config =
        FetchConfig { allow_private_networks: true, max_body_bytes: 1024 * 1024, ..FetchConfig::default() };
    // The loopback server is one host; the politeness tests are elsewhere.
    let fast = feedmill::config::HostOverride { concurrency: None, rate: Some(1000.0), allow_private: false };
    config.hosts.insert("127.0.0.1".into(), fast);
    configure(&mut config);
    Fetcher::new(&config).unwrap()
}

fn url(addr: SocketAddr, path: &str) -> Url {
    Url::parse(&format!("http://{addr}{path}")).unwrap()
}

/// The same GET as an article page and as a feed: the two go through different clients (reqwest
/// for pages, hyper-util for feeds), and both must hold every limit.
async fn as_page_and_feed(f: &Fetcher, url: &Url) -> [(&'static str, Result<Fetched, FetchError>); 2] {
    let page = f.fetch_page(url).await;
    let feed = f.fetch_feed(url, &Validators::default()).await.map(|response| match response {
        FeedResponse::Fetched(fetched) => *fetched,
        FeedResponse::NotModified => panic!("{url}: 304 to a request without validators"),
    });
    [("page", page), ("feed", feed)]
}

#[tokio::test]
async fn gzip_and_brotli_bodies_are_decoded() {
    let addr = server().await;
    let f = fetcher(|_| {});
    for (path, expected) in [("/gzip", b"<p>zipped</p>"), ("/br", b"<p>brotli</p>")] {
        for (client, result) in as_page_and_feed(&f, &url(addr, path)).await {
            assert_eq!(result.unwrap().body, expected, "{client} {path}");
        }
    }
}

#[tokio::test]
async fn body_cap_applies_after_decompression() {
    let addr = server().await;
    let f = fetcher(|_| {});
    for path in ["/big", "/gzip-bomb", "/brotli-bomb"] {
        for (client, result) in as_page_and_feed(&f, &url(addr, path)).await {
            let error = result.unwrap_err();
            assert!(matches!(error, FetchError::TooLarge { .. }), "{client} {path}: {error}");
        }
    }
}

#[tokio::test]
async fn a_trickling_body_is_cut_at_the_total_deadline() {
    let addr = server().await;
    let f = fetcher(|c| c.timeout_secs = 2);
    let trickle = url(addr, "/trickle");
    let started = Instant::now();
    let error = f.fetch_page(&trickle).await.unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(4), "page took {:?}", started.elapsed());
    assert!(error.to_string().contains("timed out"), "{error}");
    let started = Instant::now();
    let error = f.fetch_feed(&trickle, &Validators::default()).await.unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(4), "feed took {:?}", started.elapsed());
    assert!(error.to_string().contains("timed out"), "{error}");
}

#[tokio::test]
async fn configured_user_agent_is_sent() {
    let addr = server().await;
    let f = fetcher(|c| c.user_agent = "feedmill-test/1.0 (+https://example.org)".into());
    for (client, result) in as_page_and_feed(&f, &url(addr, "/ua")).await {
        let body = String::from_utf8(result.unwrap().body).unwrap();
        assert_eq!(body, "Some(\"feedmill-test/1.0 (+https://example.org)\")", "{client}");
    }
}

#[tokio::test]
async fn conditional_get_yields_not_modified() {
    let addr = server().await;
    let f = fetcher(|_| {});
    let first = f.fetch_feed(&url(addr, "/etag"), &Validators::default()).await.unwrap();
    let FeedResponse::Fetched(first) = first else { panic!("first fetch is a full one") };
    assert_eq!(first.validators.etag.as_deref(), Some("\"v1\""));
    let second = f.fetch_feed(&url(addr, "/etag"), &first.validators).await.unwrap();
    assert!(matches!(second, FeedResponse::NotModified));
}

#[tokio::test]
async fn redirects_are_limited_and_loops_detected() {
    let addr = server().await;
    let f = fetcher(|_| {});
    for (client, ok) in as_page_and_feed(&f, &url(addr, "/hop/5")).await {
        let ok = ok.unwrap();
        assert_eq!((ok.body.as_slice(), ok.url.path()), (&b"arrived"[..], "/hop/0"), "{client}");
    }
    for (client, too_many) in as_page_and_feed(&f, &url(addr, "/hop/6")).await {
        let too_many = too_many.unwrap_err();
        assert!(too_many.to_string().contains("redirects"), "{client}: {too_many}");
    }
    for (client, looped) in as_page_and_feed(&f, &url(addr, "/loop")).await {
        let looped = looped.unwrap_err();
        assert!(looped.to_string().contains("loop"), "{client}: {looped}");
    }
}

#[tokio::test]
async fn http_errors_carry_the_status() {
    let addr = server().await;
    for (client, result) in as_page_and_feed(&fetcher(|_| {}), &url(addr, "/missing")).await {
        assert_eq!(result.unwrap_err().status(), Some(404), "{client}");
    }
}

#[tokio::test]
async fn article_pages_on_private_addresses_are_refused_by_default() {
    let addr = server().await;
    let guarded = fetcher(|c| c.allow_private_networks = false);
    // A literal loopback address, and a name that resolves to loopback (caught by the resolver).
    for target in [url(addr, "/gzip"), Url::parse(&format!("http://localhost:{}/gzip", addr.port())).unwrap()]
    {
        let error = guarded.fetch_page(&target).await.unwrap_err();
        assert!(error.to_string().contains("public"), "{target}: {error}");
    }
    // Feeds the operator configured are trusted: the same loopback URL works as a feed.
    assert!(guarded.fetch_feed(&url(addr, "/etag"), &Validators::default()).await.is_ok());
}

#[tokio::test]
async fn literal_private_addresses_are_refused_even_through_a_proxy() {
    let addr = server().await;
    let guarded = fetcher(|c| {
        c.allow_private_networks = false;
        c.proxy = Some(Url::parse(&format!("http://{addr}")).unwrap());
    });
    // Refused before any request: nothing reaches the proxy or the (non-existent) LAN host.
    for target in [
        "http://127.0.0.1:9/x",
        "http://10.0.0.1/admin",
        "http://[fd00::1]/",
        "http://169.254.169.254/latest/meta-data/",
    ] {
        let error = guarded.fetch_page(&Url::parse(target).unwrap()).await.unwrap_err();
        assert!(matches!(error, FetchError::Refused { .. }), "{target}: {error}");
    }
    // A public page that redirects to a private address: the hop is refused.
    let error =
        guarded.fetch_page(&Url::parse("http://public.example/to-private").unwrap()).await.unwrap_err();
    assert!(matches!(&error, FetchError::Refused { url, .. } if url == "http://10.0.0.1/admin"), "{error}");
}

#[tokio::test]
async fn hosts_listed_as_private_are_allowed() {
    let addr = server().await;
    let listed = fetcher(|c| {
        c.allow_private_networks = false;
        c.hosts.insert(
            "localhost".into(),
            feedmill::config::HostOverride { allow_private: true, ..Default::default() },
        );
    });
    let target = Url::parse(&format!("http://localhost:{}/gzip", addr.port())).unwrap();
    assert_eq!(listed.fetch_page(&target).await.unwrap().body, b"<p>zipped</p>");
    // Other private hosts stay refused.
    assert!(listed.fetch_page(&url(addr, "/gzip")).await.is_err());
}

/// A proxy that records the head of each request it gets and answers `answer`.
async fn recording_proxy(answer: &'static str) -> (SocketAddr, tokio::sync::mpsc::UnboundedReceiver<String>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (heads, received) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let mut buffer = vec![0; 4096];
            let read = stream.read(&mut buffer).await.unwrap_or(0);
            let _ = heads.send(String::from_utf8_lossy(&buffer[..read]).into_owned());
            let _ = stream.write_all(answer.as_bytes()).await;
        }
    });
    (addr, received)
}

#[tokio::test]
async fn feeds_go_through_the_proxy_with_its_credentials() {
    let (proxy, mut heads) =
        recording_proxy("HTTP/1.1 200 OK\r\ncontent-length: 6\r\nconnection: close\r\n\r\n<rss/>").await;
    let f = fetcher(|c| c.proxy = Some(Url::parse(&format!("http://user:secret@{proxy}")).unwrap()));
    // Plain HTTP: the full URL goes to the proxy, with the credentials (user:secret in base64).
    let feed = Url::parse("http://feeds.example/rss").unwrap();
    assert!(f.fetch_feed(&feed, &Validators::default()).await.is_ok());
    let head = heads.recv().await.unwrap();
    assert!(head.starts_with("GET http://feeds.example/rss HTTP/1.1\r\n"), "{head}");
    assert!(head.to_ascii_lowercase().contains("proxy-authorization: basic dxnlcjpzzwnyzxq="), "{head}");
    // HTTPS: a CONNECT tunnel to the feed's host, credentials on the CONNECT (the TLS handshake
    // then fails against this fake proxy, which is fine here).
    let secure = Url::parse("https://feeds.example/rss").unwrap();
    assert!(f.fetch_feed(&secure, &Validators::default()).await.is_err());
    let head = heads.recv().await.unwrap();
    assert!(head.starts_with("CONNECT feeds.example:443 HTTP/1.1\r\n"), "{head}");
    assert!(head.to_ascii_lowercase().contains("proxy-authorization: basic dxnlcjpzzwnyzxq="), "{head}");
}

/// A keep-alive HTTP/1.1 server that answers every request with a small feed and counts the
/// connections open at once: (address, most open at once, connections accepted).
async fn counting_server() -> (SocketAddr, Arc<AtomicUsize>, Arc<AtomicUsize>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (open, most, accepted) =
        (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let (most_seen, accepted_count) = (Arc::clone(&most), Arc::clone(&accepted));
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            accepted_count.fetch_add(1, Ordering::SeqCst);
            let now_open = open.fetch_add(1, Ordering::SeqCst) + 1;
            most_seen.fetch_max(now_open, Ordering::SeqCst);
            let open = Arc::clone(&open);
            tokio::spawn(async move {
                let mut buffer = Vec::new();
                let mut chunk = [0; 4096];
                while let Ok(read) = stream.read(&mut chunk).await {
                    if read == 0 {
                        break;
                    }
                    buffer.extend_from_slice(&chunk[..read]);
                    while let Some(end) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
                        buffer.drain(..end + 4);
                        tokio::time::sleep(Duration::from_millis(5)).await;
                        let answer = b"HTTP/1.1 200 OK\r\ncontent-length: 6\r\n\r\n<rss/>";
                        if stream.write_all(answer).await.is_err() {
                            break;
                        }
                    }
                }
                open.fetch_sub(1, Ordering::SeqCst);
            });
        }
    });
    (addr, most, accepted)
}

#[tokio::test]
async fn feed_connections_stay_within_the_limits_and_are_reused() {
    let (addr, most_open, accepted) = counting_server().await;
    let f = fetcher(|c| {
        c.max_connections = 3;
        c.hosts.get_mut("127.0.0.1").unwrap().concurrency = Some(3);
    });
    let mut polls = tokio::task::JoinSet::new();
    for i in 0..60 {
        let (f, feed) = (f.clone(), url(addr, &format!("/feeds/{i}.xml")));
        polls.spawn(async move { f.fetch_feed(&feed, &Validators::default()).await.map(|_| ()) });
    }
    while let Some(done) = polls.join_next().await {
        done.unwrap().unwrap();
    }
    assert_eq!(most_open.load(Ordering::SeqCst), 3, "most connections open at once");
    assert_eq!(accepted.load(Ordering::SeqCst), 3, "connections opened for 60 requests");
}

#[tokio::test]
async fn an_idle_connection_makes_room_for_another_host() {
    let (addr, most_open, accepted) = counting_server().await;
    let f = fetcher(|c| {
        c.max_connections = 1;
        c.hosts.insert("localhost".into(), c.hosts["127.0.0.1"].clone());
    });
    // Two host names of one server: the idle connection to the first is closed for the second.
    let by_ip = url(addr, "/a.xml");
    let by_name = Url::parse(&format!("http://localhost:{}/b.xml", addr.port())).unwrap();
    let none = Validators::default();
    for feed in [&by_ip, &by_name, &by_ip] {
        let fetched = tokio::time::timeout(Duration::from_secs(5), f.fetch_feed(feed, &none)).await;
        assert!(fetched.expect("no wait for a slot").is_ok(), "{feed}");
    }
    assert_eq!(most_open.load(Ordering::SeqCst), 1);
    assert_eq!(accepted.load(Ordering::SeqCst), 3);
}

#[tokio::test]
async fn a_connection_the_server_closed_is_not_reused() {
    // Answers as if keeping the connection alive, then closes it.
    let (addr, _heads) = recording_proxy("HTTP/1.1 200 OK\r\ncontent-length: 6\r\n\r\n<rss/>").await;
    let f = fetcher(|_| {});
    for _ in 0..3 {
        let fetched = f.fetch_feed(&url(addr, "/rss"), &Validators::default()).await;
        assert!(fetched.is_ok(), "{:?}", fetched.err());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
