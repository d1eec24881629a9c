//! The connection pool of feeds and article pages: HTTP/1.1 connections kept by origin (feeds'
//! and guarded pages' apart), opened within the global (`max_connections`) and per-host
//! (`per_host_concurrency`) limits.
//!
//! Each open connection holds a global and a per-host slot until it closes, so the limits hold
//! for connections, not only for requests. A finished request hands its connection back before
//! the caller frees its request slot (see [`super::politeness`]), so the next request finds it
//! idle instead of opening another. When a host's slots or every global slot are taken, the
//! idle connection unused the longest (of that host, or of any) is closed to make room; an idle connection is otherwise kept until
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

/// How often a wait for a slot looks again for an idle connection to close.
const SLOT_RECHECK: Duration = Duration::from_millis(100);

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
    key: String,
    host: String,
}

struct Idle {
    sender: SendRequest<Empty<Bytes>>,
    proxied: bool,
    host: String,
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

    /// The most recently used idle connection under `key` (its origin, and how it was opened)
    /// that is still usable.
    pub async fn reuse(&self, key: &str) -> Option<Pooled> {
        loop {
            let mut idle = {
                let mut pool = self.idle.lock().unwrap_or_else(|p| p.into_inner());
                pool.get_mut(key)?.pop()?
            };
            // Dropping an unusable one closes it.
            if idle.sender.is_closed() || idle.since.elapsed() > IDLE_TIMEOUT {
                continue;
            }
            // Ready once the connection has finished reading the previous response.
            if idle.sender.ready().await.is_ok() {
                let (sender, proxied, host) = (idle.sender, idle.proxied, idle.host);
                return Some(Pooled { sender, proxied, key: key.to_owned(), host });
            }
        }
    }

    /// Waits for a slot to open a new connection to `host`, closing the longest-idle connection
    /// of that host when its slots are taken (by connections opened another way: feeds' and
    /// pages' are pooled apart), and of any host when all global slots are taken.
    pub async fn slots(&self, host: &str) -> Result<Slots, tokio::sync::AcquireError> {
        let host_slots = {
            let mut hosts = self.hosts.lock().unwrap_or_else(|p| p.into_inner());
            let slots = hosts
                .entry(host.to_owned())
                .or_insert_with(|| Arc::new(Semaphore::new(host_concurrency(&self.config, host))));
            Arc::clone(slots)
        };
        let host_slot = self.slot(&host_slots, Some(host)).await?;
        let global_slot = self.slot(&self.global, None).await?;
        Ok(Slots { _host: host_slot, _global: global_slot })
    }

    /// One slot of `slots`; while none is free, closes an idle connection (to `host`, or any)
    /// now and then to make one.
    async fn slot(
        &self,
        slots: &Arc<Semaphore>,
        host: Option<&str>,
    ) -> Result<OwnedSemaphorePermit, tokio::sync::AcquireError> {
        loop {
            if slots.available_permits() == 0 {
                self.close_longest_idle(host);
            }
            if let Ok(slot) = tokio::time::timeout(SLOT_RECHECK, Arc::clone(slots).acquire_owned()).await {
                return slot;
            }
        }
    }

    /// A new connection's first checkout.
    pub fn opened(key: &str, host: &str, sender: SendRequest<Empty<Bytes>>, proxied: bool) -> Pooled {
        Pooled { sender, proxied, key: key.to_owned(), host: host.to_owned() }
    }

    /// Takes a connection back after its response was read to the end.
    pub fn give_back(&self, pooled: Pooled) {
        if pooled.sender.is_closed() {
            return;
        }
        let idle =
            Idle { sender: pooled.sender, proxied: pooled.proxied, host: pooled.host, since: Instant::now() };
        let mut pool = self.idle.lock().unwrap_or_else(|p| p.into_inner());
        pool.entry(pooled.key).or_default().push(idle);
    }

    /// Closes the idle connection (to `host`, or to any) unused the longest; its slots free once
    /// it has shut down.
    fn close_longest_idle(&self, host: Option<&str>) {
        let mut pool = self.idle.lock().unwrap_or_else(|p| p.into_inner());
        let oldest = pool
            .iter()
            .filter_map(|(key, idle)| Some((idle.first()?, key)))
            .filter(|(idle, _)| host.is_none_or(|host| idle.host == host))
            .min_by_key(|(idle, _)| idle.since)
            .map(|(_, key)| key.clone());
        if let Some(key) = oldest {
            if let Some(idle) = pool.get_mut(&key) {
                idle.remove(0);
                if idle.is_empty() {
                    pool.remove(&key);
                }
            }
        }
    }
}
