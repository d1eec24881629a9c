//! The fetch stage against a loopback server: compression, caps, deadlines, redirects, the SSRF
//! guard, conditional GET and the User-Agent.

use std::io::Write;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect};
use axum::routing::get;
use axum::Router;
use feedmill::config::FetchConfig;
use feedmill::fetch::{FeedResponse, FetchError, Fetcher, Validators};
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
    configure(&mut config);
    Fetcher::new(&config).unwrap()
}

fn url(addr: SocketAddr, path: &str) -> Url {
    Url::parse(&format!("http://{addr}{path}")).unwrap()
}

#[tokio::test]
async fn gzip_and_brotli_bodies_are_decoded() {
    let addr = server().await;
    let f = fetcher(|_| {});
    assert_eq!(f.fetch_page(&url(addr, "/gzip")).await.unwrap().body, b"<p>zipped</p>");
    assert_eq!(f.fetch_page(&url(addr, "/br")).await.unwrap().body, b"<p>brotli</p>");
}

#[tokio::test]
async fn body_cap_applies_after_decompression() {
    let addr = server().await;
    let f = fetcher(|_| {});
    for path in ["/big", "/gzip-bomb", "/brotli-bomb"] {
        let error = f.fetch_page(&url(addr, path)).await.unwrap_err();
        assert!(matches!(error, FetchError::TooLarge { .. }), "{path}: {error}");
    }
}

#[tokio::test]
async fn a_trickling_body_is_cut_at_the_total_deadline() {
    let addr = server().await;
    let f = fetcher(|c| c.timeout_secs = 2);
    let started = Instant::now();
    let error = f.fetch_page(&url(addr, "/trickle")).await.unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(4), "took {:?}", started.elapsed());
    assert!(error.to_string().contains("timed out"), "{error}");
}

#[tokio::test]
async fn configured_user_agent_is_sent() {
    let addr = server().await;
    let f = fetcher(|c| c.user_agent = "feedmill-test/1.0 (+https://example.org)".into());
    let body = f.fetch_page(&url(addr, "/ua")).await.unwrap().body;
    assert_eq!(String::from_utf8(body).unwrap(), "Some(\"feedmill-test/1.0 (+https://example.org)\")");
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
    let ok = f.fetch_page(&url(addr, "/hop/5")).await.unwrap();
    assert_eq!((ok.body.as_slice(), ok.url.path()), (&b"arrived"[..], "/hop/0"));
    let too_many = f.fetch_page(&url(addr, "/hop/6")).await.unwrap_err();
    assert!(too_many.to_string().contains("redirects"), "{too_many}");
    let looped = f.fetch_page(&url(addr, "/loop")).await.unwrap_err();
    assert!(looped.to_string().contains("loop"), "{looped}");
}

#[tokio::test]
async fn http_errors_carry_the_status() {
    let addr = server().await;
    let error = fetcher(|_| {}).fetch_page(&url(addr, "/missing")).await.unwrap_err();
    assert_eq!(error.status(), Some(404));
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
