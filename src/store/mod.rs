//! The store: SQLite (bundled) holding sources, their poll state and items.
//!
//! All writes go through one writer thread that owns the write connection, so async code never
//! blocks on SQLite and writes never contend. The writer commits in groups: it takes every write
//! waiting in its queue (up to [`MAX_GROUP`]), runs each in its own savepoint — one failing write
//! rolls back alone — and commits them together, answering each caller only after that commit.
//! A poll's items are one write, so they land together or not at all. Reads use a small pool of
//! connections (WAL lets them read while the writer writes) on tokio's blocking pool. The schema
//! lives in `/migrations`, applied in order at open and recorded in `user_version`.

pub mod postgres;
mod queries;
mod stories;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Condvar, Mutex};

use rusqlite::Connection;

use crate::dedup::index::BandIndex;
use rusqlite_migration::{Migrations, M};
use tokio::sync::oneshot;

pub use queries::{
    Candidate, CommitCounts, FeedScope, PollState, PollSuccess, Related, SourceRow, StoredItem,
};
pub use stories::{Report, StoryLookup, StoryPage, StoryRef, Translation};

/// The migrations, in order. Add new files at the end; never edit one that has shipped.
const MIGRATIONS: &[M<'static>] = &[
    M::up(include_str!("../../migrations/0001_initial.sql")),
    M::up(include_str!("../../migrations/0002_poll_pacing.sql")),
    M::up(include_str!("../../migrations/0003_dedup.sql")),
    M::up(include_str!("../../migrations/0004_retention.sql")),
    M::up(include_str!("../../migrations/0005_stories.sql")),
];

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
    #[error("database: stored JSON is invalid: {0}")]
    Json(#[from] serde_json::Error),
    #[error("the database writer has stopped")]
    WriterGone,
    /// The group's commit failed; the message names the database file and the likely cause.
    #[error("{0}")]
    Commit(String),
}

/// A read connection's page cache, at most.
const READER_CACHE_KIB: i64 = 1024;
/// The writer connection's page cache, at most.
const WRITER_CACHE_KIB: i64 = 4 * 1024;
/// How often, at most, the WAL is copied into the database file while writes come in.
const CHECKPOINT_EVERY: std::time::Duration = std::time::Duration::from_millis(200);
/// WAL size (in pages) beyond which the checkpointer briefly holds up the writer.
const MAX_WAL_FRAMES: i64 = 64 * 1024;
/// Most writes committed together.
const MAX_GROUP: usize = 512;
/// Most read connections open at once.
const MAX_READERS: usize = 4;

/// A write: runs inside the group's transaction and returns how to answer its caller once the
/// group's commit succeeded (`None`) or failed (`Some(message)`).
type WriteJob = Box<dyn FnOnce(&Connection) -> Reply + Send>;
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
}

impl Store {
    /// Opens (creating if needed) the database at `path`, migrates it and starts the writer thread.
    pub fn open(path: &Path) -> Result<Store, StoreError> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)
                .map_err(|source| StoreError::CreateDir { path: dir.to_owned(), source })?;
        }
        let open_err = |source| StoreError::Open { path: path.to_owned(), source };
        let mut write_conn = Connection::open(path).map_err(open_err)?;
        // SQLite quietly opens a file it cannot write read-only; every poll would then fail.
        if write_conn.is_readonly(rusqlite::MAIN_DB).map_err(open_err)? {
            return Err(StoreError::ReadOnly { path: path.to_owned() });
        }
        // Before `configure`: switching to WAL writes a new database's header, after which
        // auto_vacuum can only change through a VACUUM.
        incremental_vacuum(&write_conn).map_err(open_err)?;
        configure(&write_conn).map_err(open_err)?;
        // The writer walks the indexes of every layer for every item: a page cache big enough
        // for them keeps it off the disk (SQLite's default is 2 MiB); it only grows as used.
        write_conn.pragma_update(None, "cache_size", -WRITER_CACHE_KIB).map_err(open_err)?;
        // Checkpoints (copying the WAL into the database file) run on their own thread instead.
        write_conn.pragma_update(None, "wal_autocheckpoint", 0).map_err(open_err)?;
        Migrations::from_slice(MIGRATIONS)
            .to_latest(&mut write_conn)
            .map_err(|source| StoreError::Migrate { path: path.to_owned(), source })?;
        let readers = Arc::new(ReadPool::new(path.to_owned())?);

        let checkpoint_conn = open_reader(path)?;
        let (writer, jobs) = mpsc::channel::<WriteJob>();
        let (wrote, writes) = mpsc::channel::<()>();
        let spawn_err = |e| StoreError::CreateDir { path: path.to_owned(), source: e };
        std::thread::Builder::new()
            .name("feedmill-writer".into())
            .spawn({
                let path = path.to_owned();
                move || write_loop(&write_conn, &path, &jobs, &wrote)
            })
            .map_err(spawn_err)?;
        std::thread::Builder::new()
            .name("feedmill-checkpoint".into())
            .spawn(move || checkpoint_loop(&checkpoint_conn, &writes))
            .map_err(spawn_err)?;
        Ok(Store {
            writer,
            readers,
            dedup: DedupParams::default(),
            changes: Arc::new(AtomicU64::new(0)),
            near_index: Arc::default(),
        })
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
        F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
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

    /// Queues `f`, which runs one SQL statement, for the writer thread without waiting for the
    /// commit. No savepoint: SQLite undoes a failed statement by itself.
    fn queue_statement<F>(&self, f: F) -> Result<(), StoreError>
    where
        F: FnOnce(&Connection) -> Result<(), StoreError> + Send + 'static,
    {
        let job: WriteJob = Box::new(move |conn| {
            if let Err(error) = f(conn) {
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
        F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    {
        let readers = Arc::clone(&self.readers);
        tokio::task::spawn_blocking(move || {
            let conn = readers.take()?;
            let result = f(&conn);
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

    /// Waits for the queued writes, then copies the whole WAL into the database file and empties
    /// it, so the next process starts without a WAL to replay. For a clean exit.
    pub async fn close(&self) -> Result<(), StoreError> {
        self.flush().await?;
        self.read(|conn| Ok(conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))?)).await
    }
}

/// The writer thread: takes whatever writes are queued, commits them as one transaction, answers,
/// and tells the checkpointer.
/// A failed commit leaves the database as it was; the next group tries again, so writes resume
/// by themselves once the disk has room (or the file is writable) again.
fn write_loop(conn: &Connection, path: &Path, jobs: &mpsc::Receiver<WriteJob>, wrote: &mpsc::Sender<()>) {
    while let Ok(first) = jobs.recv() {
        let mut group = vec![first];
        while group.len() < MAX_GROUP {
            match jobs.try_recv() {
                Ok(job) => group.push(job),
                Err(_) => break,
            }
        }
        let begin = conn.prepare_cached("BEGIN IMMEDIATE").and_then(|mut s| s.execute([]));
        let replies: Vec<Reply> = group.into_iter().map(|job| job(conn)).collect();
        let commit = begin.and_then(|_| conn.prepare_cached("COMMIT")?.execute([]));
        let error = commit.err().map(|e| {
            let _ = conn.execute_batch("ROLLBACK");
            let message = commit_failure(path, &e);
            tracing::error!(error = %message, "database commit failed");
            message
        });
        for reply in replies {
            reply(error.as_deref());
        }
        let _ = wrote.send(());
    }
}

/// What a failed commit says: the file, SQLite's error and, for the usual causes, what to check.
fn commit_failure(path: &Path, error: &rusqlite::Error) -> String {
    use rusqlite::ErrorCode;
    let hint = match error.sqlite_error_code() {
        Some(ErrorCode::DiskFull) => " (free some space: writes resume by themselves)",
        Some(ErrorCode::ReadOnly) => " (the database file or its folder is read-only)",
        Some(ErrorCode::SystemIoFailure) => {
            " (the file system refused the write: disk full, a file size limit, or a failing disk)"
        }
        Some(ErrorCode::CannotOpen) | Some(ErrorCode::PermissionDenied) => {
            " (the database's folder is not writable)"
        }
        _ => "",
    };
    format!("{}: commit failed: {error}{hint}", path.display())
}

/// The checkpointer thread: while writes come in, copies the WAL into the database file at
/// most every [`CHECKPOINT_EVERY`] (PASSIVE: never blocks the writer or readers), so the writer
/// never stops to do it and the WAL stays small; a last full checkpoint when the store closes.
fn checkpoint_loop(conn: &Connection, writes: &mpsc::Receiver<()>) {
    // (WAL frames, frames copied), or None when the checkpoint failed.
    let checkpoint = |mode: &str| -> Option<(i64, i64)> {
        conn.query_row(&format!("PRAGMA wal_checkpoint({mode})"), [], |row| Ok((row.get(1)?, row.get(2)?)))
            .inspect_err(|error| tracing::warn!(%error, "database checkpoint failed"))
            .ok()
    };
    while writes.recv().is_ok() {
        std::thread::sleep(CHECKPOINT_EVERY);
        while writes.try_recv().is_ok() {}
        // Under writes that never pause, a passive checkpoint never catches up and the WAL only
        // grows; past a bound, RESTART makes the writer wait once so the WAL starts over.
        if checkpoint("PASSIVE").is_some_and(|(frames, _)| frames > MAX_WAL_FRAMES) {
            checkpoint("RESTART");
        }
    }
    checkpoint("TRUNCATE");
}

/// Runs one write in a savepoint, so its failure undoes only its own changes.
fn in_savepoint<T>(
    conn: &Connection,
    f: impl FnOnce(&Connection) -> Result<T, StoreError>,
) -> Result<T, StoreError> {
    conn.prepare_cached("SAVEPOINT write")?.execute([])?;
    match f(conn) {
        Ok(value) => {
            conn.prepare_cached("RELEASE write")?.execute([])?;
            Ok(value)
        }
        Err(error) => {
            conn.execute_batch("ROLLBACK TO write; RELEASE write")?;
            Err(error)
        }
    }
}

/// Read connections, opened on demand up to [`MAX_READERS`].
struct ReadPool {
    path: PathBuf,
    idle: Mutex<(Vec<Connection>, usize)>,
    returned: Condvar,
}

impl ReadPool {
    fn new(path: PathBuf) -> Result<ReadPool, StoreError> {
        let first = open_reader(&path)?;
        Ok(ReadPool { path, idle: Mutex::new((vec![first], 1)), returned: Condvar::new() })
    }

    fn take(&self) -> Result<Connection, StoreError> {
        let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
        loop {
            if let Some(conn) = idle.0.pop() {
                return Ok(conn);
            }
            if idle.1 < MAX_READERS {
                idle.1 += 1;
                drop(idle);
                return open_reader(&self.path).inspect_err(|_| {
                    self.idle.lock().unwrap_or_else(|p| p.into_inner()).1 -= 1;
                });
            }
            idle = self.returned.wait(idle).unwrap_or_else(|p| p.into_inner());
        }
    }

    fn give_back(&self, conn: Connection) {
        self.idle.lock().unwrap_or_else(|p| p.into_inner()).0.push(conn);
        self.returned.notify_one();
    }
}

fn open_reader(path: &Path) -> Result<Connection, StoreError> {
    let open_err = |source| StoreError::Open { path: path.to_owned(), source };
    let conn = Connection::open(path).map_err(open_err)?;
    configure(&conn).map_err(open_err)?;
    // Reads touch few pages each (a GUID, a feed's newest items); up to MAX_READERS of these.
    conn.pragma_update(None, "cache_size", -READER_CACHE_KIB).map_err(open_err)?;
    Ok(conn)
}

/// Makes the database give freed pages back to the file system bit by bit (retention runs
/// `PRAGMA incremental_vacuum`), so it does not only ever grow. A new database gets the setting
/// before its first table; one created by an older feedmill is rewritten once (`VACUUM`).
fn incremental_vacuum(conn: &Connection) -> rusqlite::Result<()> {
    const INCREMENTAL: i64 = 2;
    let mode: i64 = conn.query_row("PRAGMA auto_vacuum", [], |row| row.get(0))?;
    if mode == INCREMENTAL {
        return Ok(());
    }
    conn.pragma_update(None, "auto_vacuum", INCREMENTAL)?;
    let tables: i64 = conn.query_row("SELECT count(*) FROM sqlite_schema", [], |row| row.get(0))?;
    if tables > 0 {
        tracing::info!("rewriting the database once so it can shrink (VACUUM)");
        conn.execute_batch("VACUUM")?;
    }
    Ok(())
}

fn configure(conn: &Connection) -> rusqlite::Result<()> {
    conn.busy_timeout(std::time::Duration::from_secs(10))?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    // Savepoint journals and sorting stay in memory.
    conn.pragma_update(None, "temp_store", "MEMORY")?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migrations_are_valid() {
        assert!(Migrations::from_slice(MIGRATIONS).validate().is_ok());
    }
}
