//! The SSRF guard: article pages named by untrusted feeds must not reach into the operator's network.
//!
//! Two checks, both on addresses rather than names: URLs whose host is a literal IP are checked before
//! the request (and on every redirect), and host names are checked by [`GuardedResolver`], the DNS
//! hook reqwest connects through, so a name that resolves to a private address — even one that
//! changes its answer between two lookups (DNS rebinding) — is refused at connect time.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use reqwest::dns::{Addrs, Name, Resolve, Resolving};
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
pub fn host_listed(host: &str, listed: &[String]) -> bool {
    let host = host.trim_end_matches('.').to_ascii_lowercase();
    listed.iter().any(|l| host == *l || host.ends_with(&format!(".{l}")))
}

/// A DNS resolver that drops non-public addresses and fails when none are left; hosts the operator
/// listed (`[fetch.hosts."name"] allow_private = true`) resolve unfiltered.
pub struct GuardedResolver {
    allowed: Vec<String>,
}

impl GuardedResolver {
    pub fn new(allowed: Vec<String>) -> GuardedResolver {
        GuardedResolver { allowed }
    }
}

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let host = name.as_str().to_owned();
        let listed = host_listed(&host, &self.allowed);
        Box::pin(async move {
            let resolved: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let public: Vec<SocketAddr> =
                resolved.into_iter().filter(|a| listed || is_public(a.ip())).collect();
            if public.is_empty() {
                return Err(
                    format!("{host} resolves to no public address (allow_private_networks is off)").into()
                );
            }
            let addrs: Addrs = Box::new(public.into_iter());
            Ok(addrs)
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
    async fn resolver_refuses_localhost() {
        let name: Name = "localhost".parse().unwrap();
        assert!(GuardedResolver::new(vec![]).resolve(name).await.is_err());
        let name: Name = "localhost".parse().unwrap();
        assert!(GuardedResolver::new(vec!["localhost".into()]).resolve(name).await.is_ok());
    }
}
