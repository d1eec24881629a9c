//! The store: sources, their poll state and items, in SQLite (bundled; [`Store::open`], the
//! default) or PostgreSQL ([`Store::connect`]), through one set of operations written once in a
//! dialect both understand ([`sql`]).
//!
//! All writes go through one writer thread that owns the write connection, so async code never
//! blocks on the database and writes never contend. The writer commits in groups: it takes every write
//! waiting in its queue (up to [`Conn::max_group`]), runs each in its own savepoint — one failing write
//! rolls back alone — and commits them together, answering each caller only after that commit.
//! A poll's items are one write, so they land together or not at all: `ingest` takes them through
//! the dedup layers, `known` reads what the store holds about all of them in a few set queries
//! first, `pending` writes their new rows together, table by table. Reads use a small pool of
//! connections (SQLite's WAL lets them read while the writer writes) on tokio's blocking pool. Each
//! database's schema lives in `/migrations` (`/migrations/postgres`), applied in order at open.

mod cluster;
mod ingest;
mod known;
mod limits;
mod pending;
pub mod postgres;
mod queries;
pub(crate) mod sql;
mod sqlite;
mod stories;

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Condvar, Mutex};

use crate::dedup::index::BandIndex;
use sql::Conn;
use tokio::sync::oneshot;

pub use cluster::{Claim, NodeRow};
pub use limits::ClusterLimits;
pub use queries::{
    Candidate, CommitCounts, FeedScope, PollState, PollSuccess, Related, SourceRow, StoredItem,
};
pub use stories::{Report, StoryLookup, StoryPage, StoryRef, Translation};

/// A store operation that failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{path}: cannot create the database folder: {source}")]
    CreateDir { path: PathBuf, source: std::io::Error },
    #[error("{path}: cannot open the database: {source}")]
    Open { path: PathBuf, source: rusqlite::Error },
    #[error("{path}: the database is read-only (the file, its folder or its file system); feedmill needs to write it")]
    ReadOnly { path: PathBuf },
    #[error("{path}: cannot migrate the database: {source}")]
    Migrate { path: PathBuf, source: rusqlite_migration::Error },
    #[error("database: {0}")]
    Sql(#[from] rusqlite::Error),
    #[error("database: {0}")]
    Postgres(#[from] tokio_postgres::Error),
    #[error(transparent)]
    Connect(#[from] postgres::PostgresError),
    #[error("database: column {index} is {found}, not {expected}")]
    Column { index: usize, expected: &'static str, found: String },
    #[error("database: a query that returns a row returned none")]
    NoRow,
    #[error("{database}: cannot start a thread: {source}")]
    Thread { database: String, source: std::io::Error },
    #[error("database: stored JSON is invalid: {0}")]
    Json(#[from] serde_json::Error),
    #[error("the database writer has stopped")]
    WriterGone,
    /// The group's commit failed; the message names the database file and the likely cause.
    #[error("{0}")]
    Commit(String),
}

/// Most read connections open at once.
const MAX_READERS: usize = 4;

/// A write: runs inside the group's transaction and returns how to answer its caller once the
/// group's commit succeeded (`None`) or failed (`Some(message)`).
type WriteJob = Box<dyn FnOnce(&mut dyn Conn) -> Reply + Send>;
type Reply = Box<dyn FnOnce(Option<&str>) + Send>;

/// How the store gathers reports into stories (from `[dedup]`) and which one it publishes
/// (`[feed] languages`).
#[derive(Debug, Clone)]
pub struct DedupParams {
    /// Seconds back a new item is compared with stored ones.
    pub window_secs: i64,
    /// Jaccard similarity from which two bodies are one story.
    pub threshold: f64,
    /// Preferred languages, in order: among reports of equal priority, one in an earlier
    /// language is published.
    pub languages: Arc<[String]>,
}

impl Default for DedupParams {
    fn default() -> Self {
        let config = crate::config::DedupConfig::default();
        DedupParams {
            window_secs: config.window.as_secs() as i64,
            threshold: config.threshold,
            languages: Arc::from([]),
        }
    }
}

/// Handle to the database; cheap to clone.
#[derive(Clone)]
pub struct Store {
    writer: mpsc::Sender<WriteJob>,
    readers: Arc<ReadPool>,
    dedup: DedupParams,
    /// Bumped after every commit that added or changed published items, so rendered feeds
    /// know when they are stale.
    changes: Arc<AtomicU64>,
    /// The near-duplicate index of the window; loaded by the writer at its first use, and
    /// only ever touched on the writer thread (the lock is never contended).
    near_index: Arc<Mutex<Option<BandIndex>>>,
    /// This process's name among the nodes sharing the database (recorded on each poll).
    node: Arc<str>,
    started_at: i64,
    /// The feeds' version in the database when last looked at ([`Store::follow_other_nodes`]).
    seen_version: Arc<std::sync::atomic::AtomicI64>,
}

impl Store {
    /// Opens the database `[storage]` names: PostgreSQL when a database URL is set, else the
    /// SQLite file.
    pub async fn open_configured(storage: &crate::config::StorageConfig) -> Result<Store, StoreError> {
        match &storage.database {
            Some(database) => Store::connect(database.secret()).await,
            None => Store::open(&storage.path),
        }
    }

    /// Starts the writer thread on `writer`; `wrote` hears of every commit.
    fn start(
        writer: Box<dyn Conn>,
        readers: ReadPool,
        wrote: Option<mpsc::Sender<()>>,
        name: String,
    ) -> Result<Store, StoreError> {
        let (sender, jobs) = mpsc::channel::<WriteJob>();
        std::thread::Builder::new()
            .name("feedmill-writer".into())
            .spawn(move || write_loop(writer, &jobs, wrote.as_ref()))
            .map_err(|source| StoreError::Thread { database: name.clone(), source })?;
        Ok(Store {
            writer: sender,
            readers: Arc::new(readers),
            dedup: DedupParams::default(),
            changes: Arc::new(AtomicU64::new(0)),
            near_index: Arc::default(),
            node: Arc::from("local"),
            started_at: queries::now(),
            seen_version: Arc::default(),
        })
    }

    /// The same store, recording polls as node `name`'s.
    pub fn with_node(mut self, name: &str) -> Store {
        self.node = Arc::from(name);
        self
    }

    /// This node's name.
    pub fn node(&self) -> &str {
        &self.node
    }

    /// The same store, gathering and publishing stories with `params`.
    pub fn with_dedup(mut self, params: DedupParams) -> Store {
        self.dedup = params;
        self
    }

    /// A number that changes whenever published items change.
    pub fn generation(&self) -> u64 {
        self.changes.load(Ordering::Acquire)
    }

    fn items_changed(&self) {
        self.changes.fetch_add(1, Ordering::AcqRel);
    }

    /// Runs `f` on the writer thread, in its own savepoint, and returns its result once committed.
    async fn write<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&mut dyn Conn) -> Result<T, StoreError> + Send + 'static,
    {
        let (reply, result) = oneshot::channel();
        let job: WriteJob = Box::new(move |conn| {
            let outcome = in_savepoint(conn, f);
            Box::new(move |commit_error: Option<&str>| {
                let outcome = match commit_error {
                    Some(message) => Err(StoreError::Commit(message.to_owned())),
                    None => outcome,
                };
                let _ = reply.send(outcome);
            })
        });
        self.writer.send(job).map_err(|_| StoreError::WriterGone)?;
        result.await.map_err(|_| StoreError::WriterGone)?
    }

    /// Queues `f` for the writer thread, in its own savepoint, without waiting for the commit. A
    /// failure is logged.
    fn queue_write<F>(&self, f: F) -> Result<(), StoreError>
    where
        F: FnOnce(&mut dyn Conn) -> Result<(), StoreError> + Send + 'static,
    {
        let job: WriteJob = Box::new(move |conn| {
            if let Err(error) = in_savepoint(conn, f) {
                tracing::error!(%error, "database write failed");
            }
            Box::new(|_: Option<&str>| {})
        });
        self.writer.send(job).map_err(|_| StoreError::WriterGone)
    }

    /// Runs `f` on a read connection, on the blocking pool.
    async fn read<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&mut dyn Conn) -> Result<T, StoreError> + Send + 'static,
    {
        let readers = Arc::clone(&self.readers);
        tokio::task::spawn_blocking(move || {
            let mut conn = readers.take()?;
            let result = f(conn.as_mut());
            readers.give_back(conn);
            result
        })
        .await
        .map_err(|_| StoreError::WriterGone)?
    }

    /// Waits until every write queued before this call has been applied.
    pub async fn flush(&self) -> Result<(), StoreError> {
        self.write(|_| Ok(())).await
    }

    /// Waits for the queued writes, then leaves the database tidy for the next process (SQLite:
    /// the WAL copied into the database file and emptied). For a clean exit.
    pub async fn close(&self) -> Result<(), StoreError> {
        self.flush().await?;
        self.read(|conn| conn.close()).await
    }
}

/// The writer thread: takes whatever writes are queued, commits them as one transaction, answers,
/// and tells `wrote`.
/// A failed commit leaves the database as it was; the next group tries again, so writes resume
/// by themselves once the cause is gone (the disk has room, the server is back).
fn write_loop(mut conn: Box<dyn Conn>, jobs: &mpsc::Receiver<WriteJob>, wrote: Option<&mpsc::Sender<()>>) {
    let conn = conn.as_mut();
    while let Ok(first) = jobs.recv() {
        let mut group = vec![first];
        while group.len() < conn.max_group() {
            match jobs.try_recv() {
                Ok(job) => group.push(job),
                Err(_) => break,
            }
        }
        // A group takes the dedup lock before any write in it takes a row lock, so that its locks
        // come in the order every item write's do (the dedup lock, then rows): two nodes' writers
        // can then never wait for each other in a cycle. A write alone takes it when it needs it.
        let begin = conn.begin().and_then(|_| if group.len() > 1 { conn.lock_for_dedup() } else { Ok(()) });
        let replies: Vec<Reply> = group.into_iter().map(|job| job(conn)).collect();
        let error = begin.and_then(|_| conn.commit()).err().map(|error| {
            let _ = conn.rollback();
            let message = error.to_string();
            tracing::error!(error = %message, "database commit failed");
            message
        });
        for reply in replies {
            reply(error.as_deref());
        }
        if let Some(wrote) = wrote {
            let _ = wrote.send(());
        }
    }
}

/// Runs one write in a savepoint, so its failure undoes only its own changes.
fn in_savepoint<T>(
    conn: &mut dyn Conn,
    f: impl FnOnce(&mut dyn Conn) -> Result<T, StoreError>,
) -> Result<T, StoreError> {
    // Sent with the write's first statement. Releasing it waits for every statement of the write
    // (PostgreSQL sends some later: [`Conn::execute_later`]), so a failure of any is this write's.
    conn.execute_later("SAVEPOINT write", &[])?;
    match f(conn).and_then(|value| conn.execute("RELEASE write", &[]).map(|_| value)) {
        Ok(value) => Ok(value),
        Err(error) => {
            conn.batch("ROLLBACK TO write; RELEASE write")?;
            Err(error)
        }
    }
}

impl Drop for ReadPool {
    /// A PostgreSQL connection says goodbye to its server when dropped, which must not happen on
    /// an async thread; the idle connections are dropped on a thread of their own.
    fn drop(&mut self) {
        let idle = std::mem::take(&mut self.idle.get_mut().unwrap_or_else(|p| p.into_inner()).0);
        if !idle.is_empty() {
            let _ =
                std::thread::Builder::new().name("feedmill-readers-close".into()).spawn(move || drop(idle));
        }
    }
}

/// Opens a read connection.
type OpenReader = Box<dyn Fn() -> Result<Box<dyn Conn>, StoreError> + Send + Sync>;

/// Read connections, opened on demand up to [`MAX_READERS`].
struct ReadPool {
    open: OpenReader,
    idle: Mutex<(Vec<Box<dyn Conn>>, usize)>,
    returned: Condvar,
}

impl ReadPool {
    /// A pool of connections that `open` opens; opens the first one now, so a database that
    /// cannot be read fails the start.
    fn new(open: OpenReader) -> Result<ReadPool, StoreError> {
        let first = open()?;
        Ok(ReadPool { open, idle: Mutex::new((vec![first], 1)), returned: Condvar::new() })
    }

    fn take(&self) -> Result<Box<dyn Conn>, StoreError> {
        let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
        loop {
            if let Some(conn) = idle.0.pop() {
                return Ok(conn);
            }
            if idle.1 < MAX_READERS {
                idle.1 += 1;
                drop(idle);
                return (self.open)().inspect_err(|_| {
                    self.idle.lock().unwrap_or_else(|p| p.into_inner()).1 -= 1;
                });
            }
            idle = self.returned.wait(idle).unwrap_or_else(|p| p.into_inner());
        }
    }

    /// Returns a connection to the pool; a broken one (its server went away) is dropped, and the
    /// next `take` opens a new one.
    fn give_back(&self, conn: Box<dyn Conn>) {
        let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
        if conn.is_broken() {
            idle.1 -= 1;
        } else {
            idle.0.push(conn);
        }
        drop(idle);
        self.returned.notify_one();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::sql::values;

    /// A new store: SQLite, or a fresh database on the PostgreSQL server
    /// `$FEEDMILL_TEST_POSTGRES` names (`scripts/test-on-postgresql`).
    pub(super) async fn store() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let store = match std::env::var("FEEDMILL_TEST_POSTGRES").ok().filter(|s| !s.is_empty()) {
            Some(server) => Store::connect(&postgres::test_database(&server).await).await.unwrap(),
            None => Store::open(&dir.path().join("sub/dir/test.db")).unwrap(),
        };
        (dir, store)
    }

    fn tombstone(conn: &mut dyn Conn, link: &str, removed_at: Option<i64>) -> Result<(), StoreError> {
        conn.execute_later(
            "INSERT INTO tombstone_links (canonical_link, removed_at) VALUES (?1, ?2)",
            values![link, removed_at],
        )
    }

    /// Writes queued together commit together; one that fails — at a statement the database
    /// answers later, or in its own code after its statements — undoes only its own changes.
    #[tokio::test]
    async fn a_failing_write_rolls_back_alone_and_the_rest_of_its_group_commits() {
        let (_dir, store) = store().await;
        // The first write holds the writer while the others queue behind it: they form a group.
        let hold = store.write(|_| {
            std::thread::sleep(std::time::Duration::from_millis(300));
            Ok(())
        });
        let first = store.write(|conn| tombstone(conn, "https://e.example/1", Some(1)));
        let bad_statement = store.write(|conn| tombstone(conn, "https://e.example/2", None));
        let bad_code = store.write(|conn| {
            tombstone(conn, "https://e.example/3", Some(1))?;
            Err::<(), _>(StoreError::NoRow)
        });
        let last = store.write(|conn| tombstone(conn, "https://e.example/4", Some(1)));
        let (hold, first, bad_statement, bad_code, last) =
            tokio::join!(hold, first, bad_statement, bad_code, last);
        assert!(hold.is_ok() && first.is_ok() && last.is_ok(), "{first:?} {last:?}");
        assert!(bad_statement.is_err(), "a NULL in a NOT NULL column was stored");
        assert!(matches!(bad_code, Err(StoreError::NoRow)), "{bad_code:?}");
        let stored = store
            .read(|conn| {
                conn.query("SELECT canonical_link FROM tombstone_links ORDER BY canonical_link", &[])?
                    .iter()
                    .map(|row| row.get::<String>(0))
                    .collect::<Result<Vec<_>, _>>()
            })
            .await
            .unwrap();
        assert_eq!(stored, ["https://e.example/1", "https://e.example/4"]);
    }
}
