//! `[cluster]`: this node's name among the nodes sharing a PostgreSQL database, and how long its
//! lease on a source lasts when it stops renewing it.

use std::time::Duration;

use serde::Deserialize;

use super::schedule::deserialize_duration;

#[derive(Debug, Clone, PartialEq)]
pub struct ClusterConfig {
    /// Unique per node; by default the host's name and the port this node listens on.
    pub node: String,
    /// A node that stops renewing its leases (it died) loses its sources after this long.
    pub lease: Duration,
}

/// `[cluster]` as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ClusterToml {
    node: Option<String>,
    #[serde(default, deserialize_with = "deserialize_optional_duration")]
    lease: Option<Duration>,
}

/// The default lease.
const LEASE: Duration = Duration::from_secs(60);

fn deserialize_optional_duration<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<Option<Duration>, D::Error> {
    deserialize_duration(d).map(Some)
}

/// Resolves `[cluster]`; `listen` is `[server] listen`. Errors are (key, message).
pub(super) fn resolve(raw: ClusterToml, listen: &str) -> Result<ClusterConfig, (String, String)> {
    let node = match raw.node {
        Some(node) if node.trim().is_empty() => {
            return Err(("cluster.node".into(), "must not be empty".into()));
        }
        Some(node) => node.trim().to_owned(),
        None => {
            let port = listen.rsplit(':').next().unwrap_or(listen);
            format!("{}:{port}", host_name())
        }
    };
    let lease = raw.lease.unwrap_or(LEASE);
    if lease < Duration::from_secs(3) {
        return Err(("cluster.lease".into(), "must be at least 3s (it is renewed every third)".into()));
    }
    Ok(ClusterConfig { node, lease })
}

fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|name| name.trim().to_owned())
        .filter(|name| !name.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "localhost".to_owned())
}
