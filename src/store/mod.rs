//! The store: SQLite (bundled) holding sources, their poll state and items.
//!
//! All writes go through one writer thread that owns the write connection, so async code never
//! blocks on SQLite and writes never contend; a poll's items commit in one transaction. Reads use
//! a second connection (WAL lets it read while the writer writes) on tokio's blocking pool. The
//! schema lives in `/migrations`, applied in order at open and recorded in `user_version`.

mod queries;

use std::path::{Path, PathBuf};
use std::sync::{mpsc, Arc, Mutex};

use rusqlite::Connection;
use rusqlite_migration::{Migrations, M};
use tokio::sync::oneshot;

pub use queries::{Candidate, CommitCounts, PollState, PollSuccess, SourceRow, StoredItem};

/// The migrations, in order. Add new files at the end; never edit one that has shipped.
const MIGRATIONS: &[M<'static>] = &[
    M::up(include_str!("../../migrations/0001_initial.sql")),
    M::up(include_str!("../../migrations/0002_poll_pacing.sql")),
];

/// A store operation that failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{path}: cannot create the database folder: {source}")]
    CreateDir { path: PathBuf, source: std::io::Error },
    #[error("{path}: cannot open the database: {source}")]
    Open { path: PathBuf, source: rusqlite::Error },
    #[error("{path}: cannot migrate the database: {source}")]
    Migrate { path: PathBuf, source: rusqlite_migration::Error },
    #[error("database: {0}")]
    Sql(#[from] rusqlite::Error),
    #[error("database: stored JSON is invalid: {0}")]
    Json(#[from] serde_json::Error),
    #[error("the database writer has stopped")]
    WriterGone,
}

type WriteJob = Box<dyn FnOnce(&mut Connection) + Send>;

/// Handle to the database; cheap to clone.
#[derive(Clone)]
pub struct Store {
    writer: mpsc::Sender<WriteJob>,
    reader: Arc<Mutex<Connection>>,
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
        configure(&write_conn).map_err(open_err)?;
        Migrations::from_slice(MIGRATIONS)
            .to_latest(&mut write_conn)
            .map_err(|source| StoreError::Migrate { path: path.to_owned(), source })?;
        let read_conn = Connection::open(path).map_err(open_err)?;
        configure(&read_conn).map_err(open_err)?;

        let (writer, jobs) = mpsc::channel::<WriteJob>();
        std::thread::Builder::new()
            .name("feedmill-writer".into())
            .spawn(move || {
                for job in jobs {
                    job(&mut write_conn);
                }
            })
            .map_err(|e| StoreError::CreateDir { path: path.to_owned(), source: e })?;
        Ok(Store { writer, reader: Arc::new(Mutex::new(read_conn)) })
    }

    /// Runs `f` on the writer thread and returns its result.
    async fn write<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T, StoreError> + Send + 'static,
    {
        let (reply, result) = oneshot::channel();
        let job: WriteJob = Box::new(move |conn| {
            let _ = reply.send(f(conn));
        });
        self.writer.send(job).map_err(|_| StoreError::WriterGone)?;
        result.await.map_err(|_| StoreError::WriterGone)?
    }

    /// Runs `f` on the read connection, on the blocking pool.
    async fn read<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    {
        let reader = Arc::clone(&self.reader);
        tokio::task::spawn_blocking(move || {
            let conn = reader.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            f(&conn)
        })
        .await
        .map_err(|_| StoreError::WriterGone)?
    }

    /// Waits until every write queued before this call has been applied.
    pub async fn flush(&self) -> Result<(), StoreError> {
        self.write(|_| Ok(())).await
    }
}

fn configure(conn: &Connection) -> rusqlite::Result<()> {
    conn.busy_timeout(std::time::Duration::from_secs(10))?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
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
