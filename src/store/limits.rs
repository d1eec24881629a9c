//! Politeness for a cluster, kept in the database: each host's request slots and turns, taken by
//! every node's requests together ([`SharedLimits`]), and the article pages being fetched, so that
//! the cluster fetches a canonical link once.
//!
//! These are short statements that commit by themselves, on the read connections (never queued
//! behind the writer's item commits). A slot is taken until the lease's end, renewed by the node's
//! heartbeat: a node that dies holding slots gives them back when its lease runs out.

use std::collections::HashSet;
use std::sync::Mutex;
use std::time::Duration;

use super::queries::now;
use super::sql::values;
use super::{Store, StoreError};
use crate::fetch::politeness::{SharedLimits, SharedPermit};

/// How long a node waits before looking for a free slot of a busy host again.
const SLOT_RETRY: Duration = Duration::from_millis(20);

/// The cluster's per-host limits; see the module documentation.
pub struct ClusterLimits {
    store: Store,
    lease: Duration,
    /// Hosts (and slot counts) whose slot rows this node has made sure exist.
    hosts: Mutex<HashSet<(String, usize)>>,
}

impl ClusterLimits {
    /// Limits kept in `store`'s database; a slot is held at most `lease` unless renewed.
    pub fn new(store: Store, lease: Duration) -> ClusterLimits {
        ClusterLimits { store, lease, hosts: Mutex::default() }
    }

    /// Takes a free slot of `host`, if any: its number.
    async fn take_slot(&self, host: &str, concurrency: usize) -> Result<Option<i64>, StoreError> {
        let known = (host.to_owned(), concurrency);
        if !self.hosts.lock().unwrap_or_else(|p| p.into_inner()).contains(&known) {
            let host = host.to_owned();
            self.store
                .read(move |conn| {
                    for slot in 0..concurrency as i64 {
                        conn.execute(
                            "INSERT INTO host_slots (host, slot) VALUES (?1, ?2) ON CONFLICT DO NOTHING",
                            values![&host, slot],
                        )?;
                    }
                    Ok(())
                })
                .await?;
            self.hosts.lock().unwrap_or_else(|p| p.into_inner()).insert(known);
        }
        let (host, node, lease_ms) =
            (host.to_owned(), self.store.node.clone(), self.lease.as_millis() as i64);
        self.store
            .read(move |conn| {
                let stamp = now_ms();
                let sql = format!(
                    "UPDATE host_slots SET node = ?3, until = ?4
                     WHERE (host, slot) IN (SELECT host, slot FROM host_slots
                         WHERE host = ?1 AND slot < ?2 AND (until IS NULL OR until < ?5) ORDER BY slot LIMIT 1{})
                     RETURNING slot",
                    conn.skip_locked()
                );
                let row = conn.query_opt(&sql, values![host, concurrency as i64, &*node, stamp + lease_ms, stamp])?;
                row.map(|row| row.get(0)).transpose()
            })
            .await
    }

    /// The time (Unix ms) this request's turn at `host` comes, `rate` requests per second.
    async fn take_turn(&self, host: &str, rate: f64) -> Result<i64, StoreError> {
        let spacing = (1000.0 / rate.max(1e-3)).round() as i64;
        let host = host.to_owned();
        self.store
            .read(move |conn| {
                conn.query_one(
                    "INSERT INTO host_turns (host, next_at) VALUES (?1, CAST(?2 AS BIGINT) + CAST(?3 AS BIGINT))
                     ON CONFLICT (host) DO UPDATE SET next_at =
                         CASE WHEN host_turns.next_at > ?2 THEN host_turns.next_at ELSE ?2 END + ?3
                     RETURNING next_at - ?3",
                    values![host, now_ms(), spacing],
                )?
                .get(0)
            })
            .await
    }
}

/// A slot taken; given back when dropped.
struct Slot {
    store: Store,
    host: String,
    slot: i64,
}

impl Drop for Slot {
    fn drop(&mut self) {
        let (store, host, slot) = (self.store.clone(), std::mem::take(&mut self.host), self.slot);
        // Outside a runtime (never, in practice) the slot is freed when its lease runs out.
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move {
                let node = store.node.clone();
                let freed = store
                    .read(move |conn| {
                        conn.execute(
                            "UPDATE host_slots SET node = NULL, until = NULL WHERE host = ?1 AND slot = ?2 AND node = ?3",
                            values![host, slot, &*node],
                        )
                    })
                    .await;
                if let Err(error) = freed {
                    tracing::warn!(%error, "cannot give a host's slot back; it frees itself when the lease ends");
                }
            });
        }
    }
}

impl SharedLimits for ClusterLimits {
    fn acquire<'a>(
        &'a self,
        host: &'a str,
        concurrency: usize,
        rate: f64,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = SharedPermit> + Send + 'a>> {
        Box::pin(async move {
            // Without the database the node falls back on its own limits: the poll's commit
            // will fail and say why.
            let slot = loop {
                match self.take_slot(host, concurrency).await {
                    Ok(Some(slot)) => break Some(slot),
                    Ok(None) => tokio::time::sleep(SLOT_RETRY).await,
                    Err(error) => {
                        tracing::warn!(%host, %error, "cannot take a slot of the host for the cluster");
                        break None;
                    }
                }
            };
            match self.take_turn(host, rate).await {
                Ok(at) => {
                    let wait = at - now_ms();
                    if wait > 0 {
                        tokio::time::sleep(Duration::from_millis(wait as u64)).await;
                    }
                }
                Err(error) => tracing::warn!(%host, %error, "cannot take a turn of the host for the cluster"),
            }
            let slot = slot.map(|slot| Slot { store: self.store.clone(), host: host.to_owned(), slot });
            Box::new(slot) as SharedPermit
        })
    }
}

impl Store {
    /// Claims the fetch of the article page at `link` for this node for `lease_secs`: false
    /// while another node fetches it.
    pub async fn claim_page(&self, link: &str, lease_secs: i64) -> Result<bool, StoreError> {
        let (link, node) = (link.to_owned(), self.node.clone());
        self.read(move |conn| {
            let stamp = now();
            let claimed = conn.query_opt(
                "INSERT INTO page_fetches (link, node, until) VALUES (?1, ?2, ?3)
                 ON CONFLICT (link) DO UPDATE SET node = excluded.node, until = excluded.until
                     WHERE page_fetches.until < ?4 OR page_fetches.node = excluded.node
                 RETURNING link",
                values![link, &*node, stamp + lease_secs, stamp],
            )?;
            Ok(claimed.is_some())
        })
        .await
    }
}

/// Unix milliseconds.
fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}
