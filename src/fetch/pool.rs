//! The feed connection pool: HTTP/1.1 connections kept by origin, opened within the global
//! (`max_connections`) and per-host (`per_host_concurrency`) limits.
//!
//! Each open connection holds a global and a per-host slot until it closes, so the limits hold
//! for connections, not only for requests. A finished request hands its connection back before
//! the caller frees its request slot (see [`super::politeness`]), so the next request finds it
//! idle instead of opening another. When every global slot is taken, the idle connection unused
//! the longest (of any host) is closed to make room; an idle connection is otherwise kept until
//! the server closes it, and not reused once idle longer than [`IDLE_TIMEOUT`].

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::Empty;
use hyper::client::conn::http1::SendRequest;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::politeness::host_concurrency;
use crate::config::FetchConfig;

/// An idle connection older than this is closed instead of reused.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(90);

/// Held by an open connection; dropping it (the connection closed) frees its slots.
pub struct Slots {
    _host: OwnedSemaphorePermit,
    _global: OwnedSemaphorePermit,
}

/// A connection checked out of the pool (or just opened), ready for one request.
pub struct Pooled {
    pub sender: SendRequest<Empty<Bytes>>,
    /// The connection leads to a proxy: requests carry the full URL.
    pub proxied: bool,
    origin: String,
}

struct Idle {
    sender: SendRequest<Empty<Bytes>>,
    proxied: bool,
    since: Instant,
}

/// The pool's state: idle connections by origin, and the slots.
pub struct Pool {
    config: FetchConfig,
    global: Arc<Semaphore>,
    hosts: Mutex<HashMap<String, Arc<Semaphore>>>,
    idle: Mutex<HashMap<String, Vec<Idle>>>,
}

impl Pool {
    pub fn new(config: &FetchConfig) -> Pool {
        Pool {
            config: config.clone(),
            global: Arc::new(Semaphore::new(config.max_connections.max(1))),
            hosts: Mutex::new(HashMap::new()),
            idle: Mutex::new(HashMap::new()),
        }
    }

    /// The most recently used idle connection to `origin` that is still usable.
    pub async fn reuse(&self, origin: &str) -> Option<Pooled> {
        loop {
            let mut idle = {
                let mut pool = self.idle.lock().unwrap_or_else(|p| p.into_inner());
                pool.get_mut(origin)?.pop()?
            };
            // Dropping an unusable one closes it.
            if idle.sender.is_closed() || idle.since.elapsed() > IDLE_TIMEOUT {
                continue;
            }
            // Ready once the connection has finished reading the previous response.
            if idle.sender.ready().await.is_ok() {
                return Some(Pooled {
                    sender: idle.sender,
                    proxied: idle.proxied,
                    origin: origin.to_owned(),
                });
            }
        }
    }

    /// Waits for a slot to open a new connection to `host`, closing the longest-idle connection
    /// of any host when all global slots are taken.
    pub async fn slots(&self, host: &str) -> Result<Slots, tokio::sync::AcquireError> {
        let host_slots = {
            let mut hosts = self.hosts.lock().unwrap_or_else(|p| p.into_inner());
            let slots = hosts
                .entry(host.to_owned())
                .or_insert_with(|| Arc::new(Semaphore::new(host_concurrency(&self.config, host))));
            Arc::clone(slots)
        };
        let host = host_slots.acquire_owned().await?;
        if self.global.available_permits() == 0 {
            self.close_longest_idle();
        }
        let global = Arc::clone(&self.global).acquire_owned().await?;
        Ok(Slots { _host: host, _global: global })
    }

    /// A new connection's first checkout.
    pub fn opened(origin: &str, sender: SendRequest<Empty<Bytes>>, proxied: bool) -> Pooled {
        Pooled { sender, proxied, origin: origin.to_owned() }
    }

    /// Takes a connection back after its response was read to the end.
    pub fn give_back(&self, pooled: Pooled) {
        if pooled.sender.is_closed() {
            return;
        }
        let idle = Idle { sender: pooled.sender, proxied: pooled.proxied, since: Instant::now() };
        let mut pool = self.idle.lock().unwrap_or_else(|p| p.into_inner());
        pool.entry(pooled.origin).or_default().push(idle);
    }

    /// Closes the idle connection unused the longest; its slots free once it has shut down.
    fn close_longest_idle(&self) {
        let mut pool = self.idle.lock().unwrap_or_else(|p| p.into_inner());
        let oldest = pool
            .iter()
            .filter_map(|(origin, idle)| Some((idle.first()?.since, origin.clone())))
            .min()
            .map(|(_, origin)| origin);
        if let Some(origin) = oldest {
            if let Some(idle) = pool.get_mut(&origin) {
                idle.remove(0);
                if idle.is_empty() {
                    pool.remove(&origin);
                }
            }
        }
    }
}
