//! SQLite (bundled), the default database: one file, WAL, migrations from `/migrations` recorded
//! in `user_version`, a checkpointer thread that keeps the WAL small, and [`Conn`] over a
//! rusqlite connection.

use std::path::{Path, PathBuf};
use std::sync::mpsc;

use rusqlite::types::{ToSqlOutput, ValueRef};
use rusqlite::Connection;
use rusqlite_migration::{Migrations, M};

use super::sql::{Conn, Insert, Row, Value};
use super::{ReadPool, Store, StoreError};

/// The migrations, in order. Add new files at the end; never edit one that has shipped.
pub(super) const MIGRATIONS: &[M<'static>] = &[
    M::up(include_str!("../../migrations/0001_initial.sql")),
    M::up(include_str!("../../migrations/0002_poll_pacing.sql")),
    M::up(include_str!("../../migrations/0003_dedup.sql")),
    M::up(include_str!("../../migrations/0004_retention.sql")),
    M::up(include_str!("../../migrations/0005_stories.sql")),
    M::up(include_str!("../../migrations/0006_cluster.sql")),
];

/// A read connection's page cache, at most.
const READER_CACHE_KIB: i64 = 1024;
/// The writer connection's page cache, at most.
const WRITER_CACHE_KIB: i64 = 4 * 1024;
/// How often, at most, the WAL is copied into the database file while writes come in.
const CHECKPOINT_EVERY: std::time::Duration = std::time::Duration::from_millis(200);
/// WAL size (in pages) beyond which the checkpointer briefly holds up the writer.
const MAX_WAL_FRAMES: i64 = 64 * 1024;

/// A connection to the database file at `path`.
pub(super) struct SqliteConn {
    conn: Connection,
    path: PathBuf,
}

impl Store {
    /// Opens (creating if needed) the SQLite database at `path`, migrates it and starts the
    /// writer and checkpointer threads.
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

        let reader_path = path.to_owned();
        let readers =
            ReadPool::new(Box::new(move || Ok(Box::new(open_reader(&reader_path)?) as Box<dyn Conn>)))?;
        let checkpoint_conn = open_reader(path)?;
        let (wrote, writes) = mpsc::channel::<()>();
        std::thread::Builder::new()
            .name("feedmill-checkpoint".into())
            .spawn(move || checkpoint_loop(&checkpoint_conn.conn, &writes))
            .map_err(|source| StoreError::CreateDir { path: path.to_owned(), source })?;
        let writer = SqliteConn { conn: write_conn, path: path.to_owned() };
        Store::start(Box::new(writer), readers, Some(wrote), path.display().to_string())
    }
}

impl rusqlite::ToSql for Value {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(ToSqlOutput::Borrowed(match self {
            Value::Null => ValueRef::Null,
            Value::Int(v) => ValueRef::Integer(*v),
            Value::Real(v) => ValueRef::Real(*v),
            Value::Text(v) => ValueRef::Text(v.as_bytes()),
            Value::Blob(v) => ValueRef::Blob(v),
        }))
    }
}

fn value_of(value: ValueRef<'_>) -> Value {
    match value {
        ValueRef::Null => Value::Null,
        ValueRef::Integer(v) => Value::Int(v),
        ValueRef::Real(v) => Value::Real(v),
        ValueRef::Text(v) => Value::Text(String::from_utf8_lossy(v).into_owned()),
        ValueRef::Blob(v) => Value::Blob(v.to_vec()),
    }
}

impl Conn for SqliteConn {
    fn execute(&mut self, sql: &str, params: &[Value]) -> Result<usize, StoreError> {
        Ok(self.conn.prepare_cached(sql)?.execute(rusqlite::params_from_iter(params))?)
    }

    fn insert_later(&mut self, insert: &Insert, values: Vec<Value>) -> Result<(), StoreError> {
        // Row by row through one prepared statement: inside the process, a statement per row
        // costs nothing a multi-row one would save.
        let names: Vec<&str> = insert.columns.iter().map(|(name, _)| *name).collect();
        let params: Vec<String> = (1..=names.len()).map(|i| format!("?{i}")).collect();
        let sql = format!(
            "INSERT INTO {} ({}) VALUES ({}){}",
            insert.table,
            names.join(", "),
            params.join(", "),
            insert.tail
        );
        let mut statement = self.conn.prepare_cached(&sql)?;
        for row in values.chunks(names.len()) {
            statement.execute(rusqlite::params_from_iter(row))?;
        }
        Ok(())
    }

    fn query(&mut self, sql: &str, params: &[Value]) -> Result<Vec<Row>, StoreError> {
        let mut statement = self.conn.prepare_cached(sql)?;
        let columns = statement.column_count();
        let mut rows = statement.query(rusqlite::params_from_iter(params))?;
        let mut out = Vec::new();
        while let Some(row) = rows.next()? {
            out.push(Row((0..columns).map(|i| row.get_ref(i).map(value_of)).collect::<Result<_, _>>()?));
        }
        Ok(out)
    }

    fn reserve_ids(&mut self, tables: &[&'static str], n: usize) -> Result<Vec<Vec<i64>>, StoreError> {
        // One writer, inside its transaction: the ids after the highest yet (AUTOINCREMENT's
        // counter included, so a deleted row's id is not handed out again).
        let mut reserved = Vec::new();
        for table in tables {
            let highest: i64 = self
                .conn
                .prepare_cached(&format!(
                    "SELECT max(COALESCE((SELECT max(id) FROM {table}), 0),
                            COALESCE((SELECT seq FROM sqlite_sequence WHERE name = ?1), 0))"
                ))?
                .query_row([table], |row| row.get(0))?;
            reserved.push((1..).take(n).map(|k| highest + k).collect());
        }
        Ok(reserved)
    }

    fn batch(&mut self, sql: &str) -> Result<(), StoreError> {
        Ok(self.conn.execute_batch(sql)?)
    }

    fn max_group(&self) -> usize {
        // One commit (one fsync of the WAL) for many writes.
        512
    }

    fn begin(&mut self) -> Result<(), StoreError> {
        self.execute("BEGIN IMMEDIATE", &[]).map(drop)
    }

    fn commit(&mut self) -> Result<(), StoreError> {
        match self.conn.prepare_cached("COMMIT").and_then(|mut s| s.execute([])) {
            Ok(_) => Ok(()),
            Err(error) => Err(StoreError::Commit(commit_failure(&self.path, &error))),
        }
    }

    fn size_bytes(&mut self) -> Result<i64, StoreError> {
        Ok(self.conn.query_row(
            "SELECT page_count * page_size FROM pragma_page_count(), pragma_page_size()",
            [],
            |row| row.get(0),
        )?)
    }

    fn release_space(&mut self) -> Result<(), StoreError> {
        self.batch("PRAGMA incremental_vacuum")
    }

    fn close(&mut self) -> Result<(), StoreError> {
        // Copies the whole WAL into the database file and empties it, so the next process
        // starts without a WAL to replay.
        Ok(self.conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))?)
    }

    fn skip_locked(&self) -> &'static str {
        ""
    }

    fn lock_for_dedup(&mut self) -> Result<(), StoreError> {
        Ok(())
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

fn open_reader(path: &Path) -> Result<SqliteConn, StoreError> {
    let open_err = |source| StoreError::Open { path: path.to_owned(), source };
    let conn = Connection::open(path).map_err(open_err)?;
    configure(&conn).map_err(open_err)?;
    // Reads touch few pages each (a GUID, a feed's newest items); up to MAX_READERS of these.
    conn.pragma_update(None, "cache_size", -READER_CACHE_KIB).map_err(open_err)?;
    Ok(SqliteConn { conn, path: path.to_owned() })
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
    // Room for every statement the store prepares (the dedup lookups come in several sizes).
    conn.set_prepared_statement_cache_capacity(128);
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
