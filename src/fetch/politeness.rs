//! Politeness: how hard feedmill may knock on one host, and on the network as a whole.
//!
//! Every request (feed or article page) first takes a slot of its host — at most
//! `per_host_concurrency` at once — then waits for the host's rate limiter (`per_host_rate`
//! requests per second, governor's GCRA), then takes one of `max_connections` global slots. A host
//! that answered an article request with 429 is paused for its Retry-After.
//!
//! When several nodes share a database, the per-host limits hold for all of them together: a
//! request also takes a slot and a turn of its host from [`SharedLimits`] (the store keeps them
//! in the database).

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::config::FetchConfig;

/// Held while a request is in flight; dropping it frees the slots.
pub struct Permit {
    _host: OwnedSemaphorePermit,
    _shared: Option<SharedPermit>,
    _global: OwnedSemaphorePermit,
}

/// A host's slot taken from [`SharedLimits`]; dropping it gives the slot back.
pub type SharedPermit = Box<dyn Send + Sync>;

/// Per-host limits shared with other processes (the nodes of a cluster).
pub trait SharedLimits: Send + Sync {
    /// Waits until a request to `host` may go out for all the processes together: one of its
    /// `concurrency` slots is free and its turn has come (`rate` requests per second).
    fn acquire<'a>(
        &'a self,
        host: &'a str,
        concurrency: usize,
        rate: f64,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = SharedPermit> + Send + 'a>>;
}

struct HostGate {
    slots: Arc<Semaphore>,
    limiter: DefaultDirectRateLimiter,
    paused_until: Mutex<Option<Instant>>,
}

/// The per-host and global limits, shared by every request.
pub struct Politeness {
    config: FetchConfig,
    global: Arc<Semaphore>,
    hosts: Mutex<HashMap<String, Arc<HostGate>>>,
    shared: Option<Arc<dyn SharedLimits>>,
}

impl Politeness {
    pub fn new(config: &FetchConfig) -> Politeness {
        Politeness {
            config: config.clone(),
            global: Arc::new(Semaphore::new(config.max_connections)),
            hosts: Mutex::new(HashMap::new()),
            shared: None,
        }
    }

    /// The same limits, held together with the other processes sharing `limits`.
    pub fn shared_with(mut self, limits: Arc<dyn SharedLimits>) -> Politeness {
        self.shared = Some(limits);
        self
    }

    fn gate(&self, host: &str) -> Arc<HostGate> {
        let mut hosts = self.hosts.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(gate) = hosts.get(host) {
            return Arc::clone(gate);
        }
        let gate = hosts.entry(host.to_owned()).or_insert_with(|| {
            let custom = self.config.host_override(host);
            let rate = custom.and_then(|o| o.rate).unwrap_or(self.config.per_host_rate);
            Arc::new(HostGate {
                slots: Arc::new(Semaphore::new(host_concurrency(&self.config, host))),
                limiter: RateLimiter::direct(quota(rate)),
                paused_until: Mutex::new(None),
            })
        });
        Arc::clone(gate)
    }

    /// Waits until a request to `host` may go out.
    pub async fn acquire(&self, host: &str) -> Permit {
        let gate = self.gate(host);
        let waiting = crate::metrics::metrics().waiting(host);
        waiting.inc();
        // Semaphores here are never closed, so acquiring cannot fail; treat failure as "go ahead".
        let host_slot = Arc::clone(&gate.slots).acquire_owned().await;
        gate.limiter.until_ready().await;
        let shared = match &self.shared {
            Some(limits) => {
                let rate =
                    self.config.host_override(host).and_then(|o| o.rate).unwrap_or(self.config.per_host_rate);
                Some(limits.acquire(host, host_concurrency(&self.config, host), rate).await)
            }
            None => None,
        };
        let global_slot = Arc::clone(&self.global).acquire_owned().await;
        waiting.dec();
        match (host_slot, global_slot) {
            (Ok(host), Ok(global)) => Permit { _host: host, _shared: shared, _global: global },
            _ => unreachable!("politeness semaphores are never closed"),
        }
    }

    /// Stops article requests to `host` until `until`.
    pub fn pause(&self, host: &str, until: Instant) {
        let gate = self.gate(host);
        let mut paused = gate.paused_until.lock().unwrap_or_else(|p| p.into_inner());
        *paused = Some(paused.map_or(until, |p| p.max(until)));
    }

    /// When article requests to `host` may resume, if they are paused now.
    pub fn paused_until(&self, host: &str) -> Option<Instant> {
        let gate = self.gate(host);
        let paused = *gate.paused_until.lock().unwrap_or_else(|p| p.into_inner());
        paused.filter(|until| *until > Instant::now())
    }
}

/// A GCRA quota of `rate` requests per second with no burst beyond one request.
fn quota(rate: f64) -> Quota {
    let period = Duration::from_secs_f64(1.0 / rate.clamp(1e-6, 1e9));
    Quota::with_period(period).unwrap_or_else(|| Quota::per_second(NonZeroU32::MAX))
}

/// How many requests (and connections) one host may have at once.
pub(crate) fn host_concurrency(config: &FetchConfig, host: &str) -> usize {
    let custom = config.host_override(host).and_then(|o| o.concurrency);
    custom.unwrap_or(config.per_host_concurrency).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::HostOverride;

    fn config(concurrency: usize, rate: f64) -> FetchConfig {
        FetchConfig { per_host_concurrency: concurrency, per_host_rate: rate, ..FetchConfig::default() }
    }

    #[tokio::test]
    async fn concurrency_per_host_is_capped() {
        let politeness = Arc::new(Politeness::new(&config(2, 1000.0)));
        let first = politeness.acquire("a.example").await;
        let _second = politeness.acquire("a.example").await;
        let third = tokio::time::timeout(Duration::from_millis(100), politeness.acquire("a.example")).await;
        assert!(third.is_err(), "a third concurrent request to one host waits");
        // Another host is not affected.
        let _other =
            tokio::time::timeout(Duration::from_millis(100), politeness.acquire("b.example")).await.unwrap();
        drop(first);
        tokio::time::timeout(Duration::from_millis(100), politeness.acquire("a.example")).await.unwrap();
    }

    #[tokio::test]
    async fn rate_per_host_spaces_requests() {
        let politeness = Politeness::new(&config(10, 5.0));
        let started = Instant::now();
        for _ in 0..4 {
            drop(politeness.acquire("a.example").await);
        }
        // The first goes at once, the next three 200 ms apart.
        assert!(started.elapsed() >= Duration::from_millis(550), "{:?}", started.elapsed());
    }

    #[tokio::test]
    async fn host_overrides_apply_to_subdomains() {
        let mut c = config(1, 1000.0);
        c.hosts.insert("unn.ua".into(), HostOverride { concurrency: Some(3), ..Default::default() });
        let politeness = Politeness::new(&c);
        let _permits = [
            politeness.acquire("en.unn.ua").await,
            politeness.acquire("en.unn.ua").await,
            politeness.acquire("en.unn.ua").await,
        ];
    }

    #[test]
    fn pauses_expire() {
        let politeness = Politeness::new(&config(1, 1.0));
        politeness.pause("a.example", Instant::now() + Duration::from_secs(60));
        assert!(politeness.paused_until("a.example").is_some());
        assert!(politeness.paused_until("b.example").is_none());
        politeness.pause("c.example", Instant::now() - Duration::from_secs(1));
        assert!(politeness.paused_until("c.example").is_none());
    }
}
