//! The HTTP transport: hyper's HTTP/1.1 connections over rustls, kept in feedmill's own
//! [`pool`](super::pool), for feeds and article pages.
//!
//! Feeds are where the scale is (10,000 sources answer 304 in a fraction of a second), and a
//! general client's layers (reqwest's, used before) cost more there than the request itself.
//! This module owns what a request needs from the wire: the proxy (the configured one, else
//! `HTTP_PROXY`/`HTTPS_PROXY`, with `NO_PROXY`), DNS through the SSRF guard's [`Resolver`], TLS
//! with the webpki roots, the connect timeout, and a body read under a size cap that holds after
//! decompression (gzip, brotli). Redirects and the deadline are the caller's. HTTPS proxies (TLS
//! to the proxy itself) are not supported for https targets; plain-HTTP proxies are.

use std::io::Read;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper::body::Body as _;
use hyper::header::{self, HeaderMap, HeaderName, HeaderValue};
use hyper::{StatusCode, Uri};
use hyper_rustls::{HttpsConnector, HttpsConnectorBuilder, MaybeHttpsStream};
use hyper_util::client::legacy::connect::proxy::Tunnel;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::proxy::matcher::Matcher;
use hyper_util::rt::TokioIo;
use tower_service::Service;
use url::Url;

use super::guard::Resolver;
use super::pool::{Pool, Pooled, Slots};
use super::{network_error as network, FetchError};
use crate::config::FetchConfig;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// A response whose body has not been read yet. Its connection goes back to the pool once the
/// body has been read ([`Response::body`], [`Response::release`]); dropped before, it is closed.
pub struct Response {
    pub status: StatusCode,
    pub headers: HeaderMap,
    body: hyper::body::Incoming,
    connection: Pooled,
    pool: Arc<Pool>,
}

/// A client: the feeds' (unguarded) or the article pages' (through the SSRF guard); both share
/// one pool. Cheap to clone.
#[derive(Clone)]
pub struct Client {
    connector: Connector,
    pool: Arc<Pool>,
    pool_tag: &'static str,
    default_headers: HeaderMap,
    timeout: Duration,
}

impl Client {
    pub fn new(config: &FetchConfig, pool: Arc<Pool>, resolver: Resolver) -> Result<Client, FetchError> {
        let client_error = |e: &dyn std::fmt::Display| FetchError::Client(e.to_string());
        // Guarded connections are pooled apart: a feed's connection to a private address the
        // operator configured must not carry an article request.
        let pool_tag = if resolver.is_guarded() { " guarded" } else { "" };
        let mut http = HttpConnector::new_with_resolver(resolver);
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
        let connector = Connector { http, tls: Arc::new(tls), proxies };
        let mut default_headers = HeaderMap::new();
        let user_agent = HeaderValue::from_str(&config.user_agent).map_err(|e| client_error(&e))?;
        default_headers.insert(header::USER_AGENT, user_agent);
        default_headers.insert(header::ACCEPT_LANGUAGE, HeaderValue::from_static(super::ACCEPT_LANGUAGE));
        default_headers.insert(header::ACCEPT_ENCODING, HeaderValue::from_static("gzip, br"));
        Ok(Client {
            connector,
            pool,
            pool_tag,
            default_headers,
            timeout: Duration::from_secs(config.timeout_secs),
        })
    }

    /// The request deadline: [`Client::get`] and [`Response::body`] together must finish
    /// within it.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// Sends a GET with the default headers and `headers`, and returns once the response head
    /// has arrived.
    pub async fn get(&self, url: &Url, headers: &[(HeaderName, &str)]) -> Result<Response, FetchError> {
        let uri: Uri = url.as_str().parse().map_err(|e| network(url, &e))?;
        let key = url.origin().ascii_serialization() + self.pool_tag;
        let (mut connection, mut reused) = match self.pool.reuse(&key).await {
            Some(connection) => (connection, true),
            None => (self.open(url, &uri, &key).await?, false),
        };
        let mut request = self.request(url, &uri, headers, connection.proxied)?;
        let response = loop {
            match connection.sender.try_send_request(request).await {
                Ok(response) => break response,
                // A reused connection the server closed just before the request went out: the
                // request comes back unsent, and goes out again on a new connection.
                Err(mut error) => match error.take_message() {
                    Some(unsent) if reused => {
                        request = unsent;
                        connection = self.open(url, &uri, &key).await?;
                        reused = false;
                    }
                    _ => return Err(network(url, &error.into_error())),
                },
            }
        };
        let (parts, body) = response.into_parts();
        Ok(Response {
            status: parts.status,
            headers: parts.headers,
            body,
            connection,
            pool: Arc::clone(&self.pool),
        })
    }

    /// The GET for `url`, with the default headers and `headers`: to a proxy the full URL (with
    /// its credentials: an HTTPS request tunnels, and sent them on CONNECT), to the server the path.
    fn request(
        &self,
        url: &Url,
        uri: &Uri,
        headers: &[(HeaderName, &str)],
        proxied: bool,
    ) -> Result<hyper::Request<Empty<Bytes>>, FetchError> {
        let target = match proxied {
            true => uri.clone(),
            false => {
                uri.path_and_query().map_or("/", |p| p.as_str()).parse().map_err(|e| network(url, &e))?
            }
        };
        let mut request = hyper::Request::get(target).body(Empty::new()).map_err(|e| network(url, &e))?;
        let request_headers = request.headers_mut();
        request_headers.clone_from(&self.default_headers);
        let host = match url.port() {
            Some(port) => format!("{}:{port}", url.host_str().unwrap_or_default()),
            None => url.host_str().unwrap_or_default().to_owned(),
        };
        request_headers.insert(header::HOST, HeaderValue::from_str(&host).map_err(|e| network(url, &e))?);
        for (name, value) in headers {
            let value = HeaderValue::from_str(value).map_err(|e| network(url, &e))?;
            request_headers.insert(name.clone(), value);
        }
        if proxied {
            if let Some(auth) = self.connector.proxies.intercept(uri).and_then(|p| p.basic_auth().cloned()) {
                request_headers.insert(header::PROXY_AUTHORIZATION, auth);
            }
        }
        Ok(request)
    }

    /// Opens a connection to `uri` within the pool's limits.
    async fn open(&self, url: &Url, uri: &Uri, key: &str) -> Result<Pooled, FetchError> {
        let host = url.host_str().unwrap_or_default();
        let slots = self.pool.slots(host).await.map_err(|e| network(url, &e))?;
        let (io, proxied) = self.connector.connect(uri).await.map_err(|e| network(url, e.as_ref()))?;
        let (sender, connection) = hyper::client::conn::http1::handshake(Conn { io, _slots: slots })
            .await
            .map_err(|e| network(url, &e))?;
        // Runs until the server closes the connection or the pool drops the sender; the slots
        // are freed when it ends.
        tokio::spawn(async move {
            if let Err(error) = connection.await {
                tracing::debug!(%error, "feed connection ended");
            }
        });
        Ok(Pool::opened(key, host, sender, proxied))
    }
}

impl Response {
    /// Reads and drops a body nobody needs (a 304's, a redirect's), so the connection can be
    /// reused; a large one closes the connection instead.
    pub async fn release(self) {
        const DRAIN_LIMIT: usize = 64 * 1024;
        let mut body = self.body;
        let mut drained = 0;
        while let Some(Ok(frame)) = body.frame().await {
            drained += frame.data_ref().map_or(0, Bytes::len);
            if drained > DRAIN_LIMIT {
                return;
            }
        }
        if body.is_end_stream() {
            self.pool.give_back(self.connection);
        }
    }

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
        self.pool.give_back(self.connection);
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
    http: HttpConnector<Resolver>,
    tls: Arc<rustls::ClientConfig>,
    proxies: Arc<Matcher>,
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

impl Connector {
    /// A connection to `destination` (directly, to the proxy, or tunnelled through it) and
    /// whether requests on it go to a proxy.
    async fn connect(&self, destination: &Uri) -> Result<(Io, bool), BoxError> {
        match self.proxies.intercept(destination) {
            None => Ok((self.tls_over(self.http.clone()).call(destination.clone()).await?, false)),
            Some(proxy) if destination.scheme_str() == Some("http") => {
                Ok((self.tls_over(self.http.clone()).call(proxy.uri().clone()).await?, true))
            }
            Some(proxy) => {
                let mut tunnel = Tunnel::new(proxy.uri().clone(), self.http.clone());
                if let Some(auth) = proxy.basic_auth() {
                    tunnel = tunnel.with_auth(auth.clone());
                }
                Ok((self.tls_over(tunnel).call(destination.clone()).await?, false))
            }
        }
    }
}

type Io = MaybeHttpsStream<TokioIo<tokio::net::TcpStream>>;

/// A connection's stream, holding its slots of the connection limits until it is closed.
struct Conn {
    io: Io,
    _slots: Slots,
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
