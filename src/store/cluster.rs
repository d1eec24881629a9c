//! Several nodes on one database: which node polls a source now (leases, with the source's poll
//! state read fresh from the database), the nodes' heartbeats, and the jobs one node runs for the
//! whole cluster.
//!
//! A node claims a source before polling it: one statement that takes the lease only if the
//! source is due and no other node holds an unexpired lease (on PostgreSQL the row is picked with
//! `FOR UPDATE SKIP LOCKED`, so two nodes claiming at once never wait for each other: one wins,
//! the other skips). Recording the poll's outcome releases the lease and names the node. A node
//! renews its leases with its heartbeat; one that dies stops renewing, and once its leases
//! expire the other nodes claim its sources at their next tick.

use std::sync::atomic::Ordering;

use super::queries::{now, POLL_STATE_COLUMNS};
use super::sql::values;
use super::{PollState, Store, StoreError};

/// A node as the status page shows it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct NodeRow {
    pub name: String,
    pub listen: String,
    pub version: String,
    pub started_at: i64,
    pub heartbeat_at: i64,
    /// Sources it holds an unexpired lease on now.
    pub leased: i64,
}

/// What a claim asks.
#[derive(Debug, Clone, Copy)]
pub struct Claim {
    /// The lease's length, in seconds.
    pub lease_secs: i64,
    /// The source counts as due when its next poll is due by this time (Unix seconds).
    pub due_by: i64,
    /// Claim it whether due or not (`feedmill poll`), as long as no other node holds it.
    pub force: bool,
}

impl Store {
    /// Takes the lease on a source for this store's node if it is due and no other node holds it;
    /// returns the source's poll state as the database has it. `None`: not due, or polled by
    /// another node now. The claim commits by itself on a read connection, as the per-host
    /// limits do, instead of queueing behind the writer's item commits: a claim that reads the
    /// row before this node's last outcome for it is committed finds the lease still held, and
    /// skips.
    pub async fn claim(&self, source_id: i64, claim: Claim) -> Result<Option<PollState>, StoreError> {
        let node = self.node.clone();
        self.read(move |conn| {
            let stamp = now();
            let sql = format!(
                "UPDATE sources SET lease_node = ?2, lease_until = ?3
                 WHERE id = (SELECT id FROM sources WHERE id = ?1
                     AND (lease_until IS NULL OR lease_until < ?4)
                     AND (?5 = 1 OR ((next_poll_at IS NULL OR next_poll_at <= ?6)
                                     AND (not_before IS NULL OR not_before <= ?4))){})
                 RETURNING {POLL_STATE_COLUMNS}",
                conn.skip_locked()
            );
            let row = conn.query_opt(
                &sql,
                values![source_id, &*node, stamp + claim.lease_secs, stamp, claim.force, claim.due_by],
            )?;
            row.map(|row| PollState::from_row(&row, 0)).transpose()
        })
        .await
    }

    /// Gives back the source leases and host slots an earlier run of this node still holds (it
    /// was killed before it could): a node restarted after a crash polls its sources at once
    /// instead of waiting out its own leases. Node names are unique, so no live node holds them.
    /// Returns how many leases were given back.
    pub async fn release_own_leases(&self) -> Result<usize, StoreError> {
        let node = self.node.clone();
        self.write(move |conn| {
            let released = conn.execute(
                "UPDATE sources SET lease_node = NULL, lease_until = NULL WHERE lease_node = ?1",
                values![&*node],
            )?;
            conn.execute("UPDATE host_slots SET node = NULL, until = NULL WHERE node = ?1", values![&*node])?;
            Ok(released)
        })
        .await
    }

    /// Records this node as alive (`listen`: where it serves) and renews the leases it holds —
    /// on sources and on hosts' request slots — for another `lease_secs`.
    pub async fn heartbeat(&self, listen: &str, lease_secs: i64) -> Result<(), StoreError> {
        let (node, listen, started_at) = (self.node.clone(), listen.to_owned(), self.started_at);
        self.write(move |conn| {
            let stamp = now();
            conn.execute(
                "INSERT INTO nodes (name, listen, version, started_at, heartbeat_at) VALUES (?1, ?2, ?3, ?4, ?5)
                 ON CONFLICT (name) DO UPDATE SET listen = excluded.listen, version = excluded.version,
                     started_at = excluded.started_at, heartbeat_at = excluded.heartbeat_at",
                values![&*node, listen, env!("CARGO_PKG_VERSION"), started_at, stamp],
            )?;
            conn.execute(
                "UPDATE sources SET lease_until = ?2 WHERE lease_node = ?1 AND lease_until IS NOT NULL",
                values![&*node, stamp + lease_secs],
            )?;
            conn.execute(
                "UPDATE host_slots SET until = ?2 WHERE node = ?1 AND until IS NOT NULL",
                values![&*node, (stamp + lease_secs) * 1000],
            )?;
            Ok(())
        })
        .await
    }

    /// Whether this node runs the cluster's job `name` now: true (and the run recorded) when no
    /// node has run it within the last `every_secs`.
    pub async fn claim_job(&self, name: &str, every_secs: i64) -> Result<bool, StoreError> {
        let (node, name) = (self.node.clone(), name.to_owned());
        self.write(move |conn| {
            conn.execute(
                "INSERT INTO cluster_jobs (name) VALUES (?1) ON CONFLICT DO NOTHING",
                values![&name],
            )?;
            let stamp = now();
            let claimed = conn.execute(
                "UPDATE cluster_jobs SET last_node = ?2, last_run_at = ?3
                 WHERE name = ?1 AND (last_run_at IS NULL OR last_run_at <= ?4)",
                values![name, &*node, stamp, stamp - every_secs],
            )?;
            Ok(claimed == 1)
        })
        .await
    }

    /// Looks at the feeds' version in the database: when another node changed what the feeds
    /// show since the last look, this store's [`Store::generation`] moves, so its feeds are
    /// rendered again.
    pub async fn follow_other_nodes(&self) -> Result<(), StoreError> {
        let version: i64 = self
            .read(|conn| conn.query_one("SELECT version FROM feed_version WHERE id = 1", &[])?.get(0))
            .await?;
        if self.seen_version.swap(version, Ordering::AcqRel) != version {
            self.items_changed();
        }
        Ok(())
    }

    /// Every node that has run on this database, the most recently alive first.
    pub async fn nodes(&self) -> Result<Vec<NodeRow>, StoreError> {
        self.read(|conn| {
            conn.query(
                "SELECT n.name, n.listen, n.version, n.started_at, n.heartbeat_at,
                        (SELECT count(*) FROM sources s WHERE s.lease_node = n.name AND s.lease_until >= ?1)
                 FROM nodes n ORDER BY n.heartbeat_at DESC, n.name",
                values![now()],
            )?
            .iter()
            .map(|row| {
                Ok(NodeRow {
                    name: row.get(0)?,
                    listen: row.get(1)?,
                    version: row.get(2)?,
                    started_at: row.get(3)?,
                    heartbeat_at: row.get(4)?,
                    leased: row.get(5)?,
                })
            })
            .collect()
        })
        .await
    }
}
