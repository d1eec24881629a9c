//! The SSRF guard: article pages named by untrusted feeds must not reach into the operator's network.
//!
//! Two checks, both on addresses rather than names: URLs whose host is a literal IP are checked before
//! the request (and on every redirect), and host names are checked by [`Resolver`], the DNS
//! hook every connection goes through, so a name that resolves to a private address — even one that
//! changes its answer between two lookups (DNS rebinding) — is refused at connect time.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use hyper_util::client::legacy::connect::dns::Name;
use tower_service::Service;
use url::{Host, Url};

/// Is this an address a public web page may live at?
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_public_v4(v4);
            }
            let first = v6.segments()[0];
            !(v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (first & 0xfe00) == 0xfc00 // unique local fc00::/7
                || (first & 0xffc0) == 0xfe80 // link local fe80::/10
                || v6 == Ipv6Addr::new(0, 0, 0, 0, 0, 0xffff, 0, 0))
        }
    }
}

fn is_public_v4(ip: Ipv4Addr) -> bool {
    let [a, b, ..] = ip.octets();
    !(ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local()
        || ip.is_unspecified()
        || ip.is_broadcast()
        || ip.is_multicast()
        || a == 0
        || (a == 100 && (64..128).contains(&b)) // carrier-grade NAT 100.64.0.0/10
        || (a == 198 && (b == 18 || b == 19))) // benchmarking 198.18.0.0/15
}

/// Why a URL may not be fetched.
pub fn refusal(url: &Url) -> Option<String> {
    if !matches!(url.scheme(), "http" | "https") {
        return Some(format!("scheme `{}` is not http(s)", url.scheme()));
    }
    let ip = match url.host() {
        Some(Host::Ipv4(v4)) => IpAddr::V4(v4),
        Some(Host::Ipv6(v6)) => IpAddr::V6(v6),
        Some(Host::Domain(_)) => return None,
        None => return Some("URL has no host".into()),
    };
    (!is_public(ip)).then(|| format!("address {ip} is not public"))
}

/// Is `host` one of `listed` or a subdomain of one?
fn host_listed(host: &str, listed: &[String]) -> bool {
    let host = host.trim_end_matches('.').to_ascii_lowercase();
    listed.iter().any(|l| host == *l || host.ends_with(&format!(".{l}")))
}

/// The DNS resolver every fetch connects through. Guarded, it drops non-public addresses and
/// fails when none are left, except for the hosts the operator listed
/// (`[fetch.hosts."name"] allow_private = true`); unguarded (feeds the operator configured, or
/// `allow_private_networks = true`), it resolves as the system does.
#[derive(Clone, Default)]
pub struct Resolver {
    allowed_private: Option<Arc<Vec<String>>>,
}

impl Resolver {
    pub fn guarded(allowed_private: Vec<String>) -> Resolver {
        Resolver { allowed_private: Some(Arc::new(allowed_private)) }
    }

    pub fn is_guarded(&self) -> bool {
        self.allowed_private.is_some()
    }
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

impl Service<Name> for Resolver {
    type Response = std::vec::IntoIter<SocketAddr>;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, BoxError>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, name: Name) -> Self::Future {
        let host = name.as_str().to_owned();
        let allowed_private = self.allowed_private.clone();
        Box::pin(async move {
            let resolved: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let guarded = allowed_private.is_some_and(|allowed| !host_listed(&host, &allowed));
            if !guarded {
                return Ok(resolved.into_iter());
            }
            let public: Vec<SocketAddr> = resolved.into_iter().filter(|a| is_public(a.ip())).collect();
            if public.is_empty() {
                return Err(
                    format!("{host} resolves to no public address (allow_private_networks is off)").into()
                );
            }
            Ok(public.into_iter())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn private_and_special_addresses_are_not_public() {
        for ip in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "0.0.0.0",
            "100.64.0.1",
            "::1",
            "::",
            "fd00::1",
            "fe80::1",
            "::ffff:127.0.0.1",
        ] {
            assert!(!is_public(ip.parse().unwrap()), "{ip}");
        }
        for ip in ["93.184.216.34", "8.8.8.8", "2606:4700::1111"] {
            assert!(is_public(ip.parse().unwrap()), "{ip}");
        }
    }

    #[test]
    fn literal_private_urls_are_refused() {
        assert!(refusal(&Url::parse("http://127.0.0.1:8080/a").unwrap()).is_some());
        assert!(refusal(&Url::parse("http://[::1]/a").unwrap()).is_some());
        assert!(refusal(&Url::parse("ftp://example.com/a").unwrap()).is_some());
        assert!(refusal(&Url::parse("https://example.com/a").unwrap()).is_none());
    }

    #[tokio::test]
    async fn resolver_refuses_localhost_unless_listed_or_unguarded() {
        let localhost = || "localhost".parse::<Name>().unwrap();
        assert!(Resolver::guarded(vec![]).call(localhost()).await.is_err());
        assert!(Resolver::guarded(vec!["localhost".into()]).call(localhost()).await.is_ok());
        assert!(Resolver::default().call(localhost()).await.is_ok());
    }
}
