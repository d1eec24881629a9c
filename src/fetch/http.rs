//! The feed transport: hyper-util's pooled HTTP/1.1 client over rustls, for the conditional GETs
//! of every poll.
//!
//! Feeds are where the scale is (10,000 sources answer 304 in a fraction of a second), and
//! reqwest's layers cost more there than the request itself, so feeds use hyper's client
//! directly; article pages, fetched once each, keep reqwest and its redirect policy. This module
//! owns what a feed request needs from the wire: the proxy (the configured one, else
//! `HTTP_PROXY`/`HTTPS_PROXY`, with `NO_PROXY`), TLS with the webpki roots, the connect timeout,
//! the connection limits (each open connection holds a global and a per-host slot, so the
//! configured limits hold for connections, not only for requests), and a body read under a
//! deadline and a size cap that holds after decompression (gzip, brotli). Redirects are not
//! followed here: the caller follows them hop by hop. HTTPS proxies (TLS to the proxy itself) are
//! not supported for https feeds; plain-HTTP proxies are.

use std::future::Future;
use std::io::Read;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper::header::{self, HeaderMap, HeaderName, HeaderValue};
use hyper::{StatusCode, Uri};
use hyper_rustls::{HttpsConnector, HttpsConnectorBuilder, MaybeHttpsStream};
use hyper_util::client::legacy::connect::proxy::Tunnel;
use hyper_util::client::legacy::connect::{Connected, Connection, HttpConnector};
use hyper_util::client::legacy::Client;
use hyper_util::client::proxy::matcher::Matcher;
use hyper_util::rt::{TokioExecutor, TokioIo};
use url::Url;

use super::politeness::{ConnectionLimits, ConnectionPermit};
use super::{network_error as network, FetchError};
use crate::config::FetchConfig;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// How long an idle connection stays in the pool.
const POOL_IDLE_TIMEOUT: Duration = Duration::from_secs(3);

/// A response whose body has not been read yet.
pub struct Response {
    pub status: StatusCode,
    pub headers: HeaderMap,
    body: hyper::body::Incoming,
}

/// The feed client; cheap to clone.
#[derive(Clone)]
pub struct FeedClient {
    client: Client<Connector, Empty<Bytes>>,
    proxies: Arc<Matcher>,
    default_headers: HeaderMap,
    timeout: Duration,
}

impl FeedClient {
    pub fn new(config: &FetchConfig) -> Result<FeedClient, FetchError> {
        let client_error = |e: &dyn std::fmt::Display| FetchError::Client(e.to_string());
        let mut http = HttpConnector::new();
        http.enforce_http(false);
        http.set_nodelay(true);
        http.set_connect_timeout(Some(Duration::from_secs(config.timeout_secs.min(10))));
        let roots = rustls::RootCertStore { roots: webpki_roots::TLS_SERVER_ROOTS.to_vec() };
        let tls =
            rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
                .with_safe_default_protocol_versions()
                .map_err(|e| client_error(&e))?
                .with_root_certificates(roots)
                .with_no_client_auth();
        let proxies = Arc::new(match &config.proxy {
            Some(proxy) => Matcher::builder()
                .all(proxy.to_string())
                .no(std::env::var("NO_PROXY").or_else(|_| std::env::var("no_proxy")).unwrap_or_default())
                .build(),
            None => Matcher::from_env(),
        });
        let limits = Arc::new(ConnectionLimits::new(config));
        let connector = Connector { http, tls: Arc::new(tls), proxies: Arc::clone(&proxies), limits };
        // Idle connections hold their slots, so they are closed soon: a host that needs a
        // connection while every slot is idle elsewhere waits at most this long (twice, at worst,
        // with the pool's reaper).
        let client = Client::builder(TokioExecutor::new())
            .pool_max_idle_per_host(config.max_connections)
            .pool_idle_timeout(POOL_IDLE_TIMEOUT)
            .pool_timer(hyper_util::rt::TokioTimer::new())
            .build(connector);
        let mut default_headers = HeaderMap::new();
        let user_agent = HeaderValue::from_str(&config.user_agent).map_err(|e| client_error(&e))?;
        default_headers.insert(header::USER_AGENT, user_agent);
        default_headers.insert(header::ACCEPT_LANGUAGE, HeaderValue::from_static(super::ACCEPT_LANGUAGE));
        default_headers.insert(header::ACCEPT_ENCODING, HeaderValue::from_static("gzip, br"));
        Ok(FeedClient { client, proxies, default_headers, timeout: Duration::from_secs(config.timeout_secs) })
    }

    /// The request deadline: [`FeedClient::get`] and [`Response::body`] together must finish
    /// within it.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// Sends a GET with the default headers and `headers`, and returns once the response head
    /// has arrived.
    pub async fn get(&self, url: &Url, headers: &[(HeaderName, &str)]) -> Result<Response, FetchError> {
        let uri: Uri = url.as_str().parse().map_err(|e| network(url, &e))?;
        let mut request = hyper::Request::get(uri.clone());
        if let Some(request_headers) = request.headers_mut() {
            request_headers.clone_from(&self.default_headers);
            for (name, value) in headers {
                let value = HeaderValue::from_str(value).map_err(|e| network(url, &e))?;
                request_headers.insert(name.clone(), value);
            }
            // A plain-HTTP request through a proxy goes to the proxy itself, which wants the
            // credentials on every request (an HTTPS one tunnels, and sends them on CONNECT).
            if url.scheme() == "http" {
                if let Some(auth) = self.proxies.intercept(&uri).and_then(|p| p.basic_auth().cloned()) {
                    request_headers.insert(header::PROXY_AUTHORIZATION, auth);
                }
            }
        }
        let request = request.body(Empty::new()).map_err(|e| network(url, &e))?;
        let response = self.client.request(request).await.map_err(|e| network(url, &e))?;
        let (parts, body) = response.into_parts();
        Ok(Response { status: parts.status, headers: parts.headers, body })
    }
}

impl Response {
    /// Reads the body, decompressing gzip and brotli, failing with `TooLarge` once more than
    /// `limit` bytes arrive either way: a small compressed body cannot become a large one here.
    pub async fn body(self, url: &Url, limit: u64) -> Result<Vec<u8>, FetchError> {
        let too_large = || FetchError::TooLarge { url: url.to_string(), limit };
        let encoding = self.headers.get(header::CONTENT_ENCODING).and_then(|v| v.to_str().ok());
        let encoding = encoding.map(|e| e.trim().to_ascii_lowercase());
        let mut body = self.body;
        let mut raw = Vec::new();
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(|e| network(url, &e))?;
            if let Some(chunk) = frame.data_ref() {
                if raw.len() as u64 + chunk.len() as u64 > limit {
                    return Err(too_large());
                }
                raw.extend_from_slice(chunk);
            }
        }
        let decoder: Box<dyn Read> = match encoding.as_deref() {
            None | Some("" | "identity") => return Ok(raw),
            Some("gzip" | "x-gzip") => Box::new(flate2::read::MultiGzDecoder::new(&raw[..])),
            Some("br") => Box::new(brotli::Decompressor::new(&raw[..], 64 * 1024)),
            Some(other) => {
                return Err(FetchError::Network {
                    url: url.to_string(),
                    message: format!("unsupported Content-Encoding `{other}`"),
                })
            }
        };
        let mut decoded = Vec::new();
        decoder.take(limit + 1).read_to_end(&mut decoded).map_err(|e| FetchError::Network {
            url: url.to_string(),
            message: format!("bad compressed body: {e}"),
        })?;
        if decoded.len() as u64 > limit {
            return Err(too_large());
        }
        Ok(decoded)
    }
}

/// Opens connections: directly, to the proxy (plain HTTP), or through a CONNECT tunnel (HTTPS).
#[derive(Clone)]
struct Connector {
    http: HttpConnector,
    tls: Arc<rustls::ClientConfig>,
    proxies: Arc<Matcher>,
    limits: Arc<ConnectionLimits>,
}

impl Connector {
    fn tls_over<C>(&self, connector: C) -> HttpsConnector<C> {
        HttpsConnectorBuilder::new()
            .with_tls_config((*self.tls).clone())
            .https_or_http()
            .enable_http1()
            .wrap_connector(connector)
    }
}

impl tower_service::Service<Uri> for Connector {
    type Response = Conn;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<Conn, BoxError>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, destination: Uri) -> Self::Future {
        let this = self.clone();
        Box::pin(async move {
            let plain_http = destination.scheme_str() == Some("http");
            let permit = this.limits.acquire(destination.host().unwrap_or_default()).await?;
            match this.proxies.intercept(&destination) {
                None => {
                    let io = this.tls_over(this.http.clone()).call(destination).await?;
                    Ok(Conn { io, proxied: false, _permit: permit })
                }
                Some(proxy) if plain_http => {
                    let io = this.tls_over(this.http.clone()).call(proxy.uri().clone()).await?;
                    Ok(Conn { io, proxied: true, _permit: permit })
                }
                Some(proxy) => {
                    let mut tunnel = Tunnel::new(proxy.uri().clone(), this.http.clone());
                    if let Some(auth) = proxy.basic_auth() {
                        tunnel = tunnel.with_auth(auth.clone());
                    }
                    let io = this.tls_over(tunnel).call(destination).await?;
                    Ok(Conn { io, proxied: false, _permit: permit })
                }
            }
        })
    }
}

/// A connection, which tells hyper when it leads to a proxy (requests then carry the full URL),
/// and holds its slots of the connection limits until it is closed.
struct Conn {
    io: MaybeHttpsStream<TokioIo<tokio::net::TcpStream>>,
    proxied: bool,
    _permit: ConnectionPermit,
}

impl Connection for Conn {
    fn connected(&self) -> Connected {
        self.io.connected().proxy(self.proxied)
    }
}

impl hyper::rt::Read for Conn {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: hyper::rt::ReadBufCursor<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl hyper::rt::Write for Conn {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.io).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}
