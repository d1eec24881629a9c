//! `feedmill migrate --to`: copies a SQLite database into an empty PostgreSQL one, in one
//! transaction, and checks the row counts of every table on both sides.
//!
//! The SQLite side is read in one read transaction (a consistent snapshot, even while a daemon
//! writes) on a blocking thread that streams rows to the copy; PostgreSQL takes them with binary
//! `COPY`. Ids are copied as they are, and each id sequence then starts after the highest id ever
//! handed out (for stories, SQLite's AUTOINCREMENT counter: a story id is never reused).

use std::path::{Path, PathBuf};

use rusqlite::types::ValueRef;
use tokio::sync::mpsc;
use tokio_postgres::binary_copy::BinaryCopyInWriter;
use tokio_postgres::types::{ToSql, Type};

use super::{Database, PostgresError, MIGRATION_LOCK};

/// The tables, parents before children, with the columns that order their rows.
const TABLES: &[(&str, &str)] = &[
    ("sources", "id"),
    ("stories", "id"),
    ("items", "id"),
    ("item_guids", "source_id, guid"),
    ("item_tags", "tag, item_id"),
    ("item_alternates", "item_id, link"),
    ("tombstone_guids", "source_id, guid"),
    ("tombstone_links", "canonical_link"),
    ("health", "id"),
    ("nodes", "name"),
    ("cluster_jobs", "name"),
];
// Not copied: `feed_version`, a counter that only tells nodes to render their feeds again (the
// target's migration starts it), and the cluster's passing state: `host_slots`, `host_turns`,
// `page_fetches`.

/// Tables whose ids PostgreSQL generates.
const IDENTITIES: &[&str] = &["sources", "stories", "items"];

/// Rows sent from the SQLite reader to the copy at a time.
const BATCH: usize = 500;

type Value = Box<dyn ToSql + Sync + Send>;

/// One table's rows on both sides after the copy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableCount {
    pub table: &'static str,
    pub sqlite: i64,
    pub postgres: i64,
}

#[derive(Debug, thiserror::Error)]
pub enum CopyError {
    #[error("{path}: cannot read the SQLite database")]
    Sqlite { path: PathBuf, source: rusqlite::Error },
    #[error("{path}: {table}.{column}: {problem}")]
    Value { path: PathBuf, table: &'static str, column: String, problem: String },
    #[error("{database}: not empty ({table} has rows): `migrate --to` only copies into an empty database")]
    NotEmpty { database: String, table: &'static str },
    #[error("{database}: {table}.{column} has type {kind}, which feedmill's schema does not use")]
    Schema { database: String, table: &'static str, column: String, kind: String },
    #[error("{database}: {table}: {sqlite} rows read from SQLite but {postgres} in PostgreSQL; nothing was committed")]
    Mismatch { database: String, table: &'static str, sqlite: i64, postgres: i64 },
    #[error("{path}: reading stopped: {problem}")]
    Reader { path: PathBuf, problem: String },
    #[error(transparent)]
    Postgres(#[from] PostgresError),
}

/// What the SQLite reader sends: first the snapshot's counts, then each table's rows in order.
enum Read {
    Counts { rows: Vec<i64>, story_sequence: i64 },
    Rows(Vec<Vec<Value>>),
    TableEnd,
}

/// Copies the SQLite database at `sqlite` (already migrated to this feedmill's schema) into
/// `database` (migrated; must be empty). Returns the verified counts, table by table.
pub async fn copy_sqlite(sqlite: &Path, database: &mut Database) -> Result<Vec<TableCount>, CopyError> {
    let name = database.name.clone();
    let sql = |source| CopyError::Postgres(PostgresError::Sql { database: name.clone(), source });
    let transaction = database.client.transaction().await.map_err(sql)?;
    transaction.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK]).await.map_err(sql)?;
    let columns = empty_tables_columns(&transaction, &name).await?;

    let (sender, mut reads) = mpsc::channel(4);
    let reader = {
        let (path, columns) = (sqlite.to_owned(), columns.clone());
        tokio::task::spawn_blocking(move || read_sqlite(&path, &columns, &sender))
    };
    let Some(Read::Counts { rows: sqlite_counts, story_sequence }) = reads.recv().await else {
        return Err(reader_failure(reader, sqlite).await);
    };
    for (&(table, _), table_columns) in TABLES.iter().zip(&columns) {
        let names: Vec<&str> = table_columns.iter().map(|(c, _)| c.as_str()).collect();
        let types: Vec<Type> = table_columns.iter().map(|(_, t)| t.clone()).collect();
        let statement = format!("COPY {table} ({}) FROM STDIN BINARY", names.join(", "));
        let sink = transaction.copy_in(&statement).await.map_err(sql)?;
        let writer = BinaryCopyInWriter::new(sink, &types);
        tokio::pin!(writer);
        loop {
            match reads.recv().await {
                Some(Read::Rows(rows)) => {
                    for row in &rows {
                        let values: Vec<&(dyn ToSql + Sync)> =
                            row.iter().map(|v| v.as_ref() as &(dyn ToSql + Sync)).collect();
                        writer.as_mut().write(&values).await.map_err(sql)?;
                    }
                }
                Some(Read::TableEnd) => break,
                Some(Read::Counts { .. }) | None => return Err(reader_failure(reader, sqlite).await),
            }
        }
        writer.as_mut().finish().await.map_err(sql)?;
    }
    match reader.await {
        Ok(result) => result?,
        Err(error) => return Err(CopyError::Reader { path: sqlite.to_owned(), problem: error.to_string() }),
    }

    for &table in IDENTITIES {
        let floor = if table == "stories" { story_sequence } else { 0 };
        transaction
            .execute(
                &format!(
                    "SELECT setval(pg_get_serial_sequence('{table}', 'id'), \
                     GREATEST(COALESCE(MAX(id), 0), $1) + 1, false) FROM {table}"
                ),
                &[&floor],
            )
            .await
            .map_err(sql)?;
    }
    let mut counts = Vec::new();
    for (&(table, _), &sqlite) in TABLES.iter().zip(&sqlite_counts) {
        let postgres: i64 =
            transaction.query_one(&format!("SELECT COUNT(*) FROM {table}"), &[]).await.map_err(sql)?.get(0);
        if postgres != sqlite {
            return Err(CopyError::Mismatch { database: name.clone(), table, sqlite, postgres });
        }
        counts.push(TableCount { table, sqlite, postgres });
    }
    transaction.commit().await.map_err(sql)?;
    Ok(counts)
}

/// Each table's columns and their types, in PostgreSQL's order, once every table is checked to
/// be empty.
async fn empty_tables_columns(
    transaction: &tokio_postgres::Transaction<'_>,
    name: &str,
) -> Result<Vec<Vec<(String, Type)>>, CopyError> {
    let sql = |source| CopyError::Postgres(PostgresError::Sql { database: name.to_owned(), source });
    let mut columns = Vec::new();
    for &(table, _) in TABLES {
        let occupied: bool = transaction
            .query_one(&format!("SELECT EXISTS (SELECT 1 FROM {table})"), &[])
            .await
            .map_err(sql)?
            .get(0);
        if occupied {
            return Err(CopyError::NotEmpty { database: name.to_owned(), table });
        }
        let rows = transaction
            .query(
                "SELECT column_name::TEXT, data_type::TEXT FROM information_schema.columns \
                 WHERE table_schema = current_schema() AND table_name = $1 ORDER BY ordinal_position",
                &[&table],
            )
            .await
            .map_err(sql)?;
        let mut table_columns = Vec::new();
        for row in rows {
            let (column, kind): (String, String) = (row.get(0), row.get(1));
            let kind = match kind.as_str() {
                "bigint" => Type::INT8,
                "integer" => Type::INT4,
                "text" => Type::TEXT,
                "bytea" => Type::BYTEA,
                _ => return Err(CopyError::Schema { database: name.to_owned(), table, column, kind }),
            };
            table_columns.push((column, kind));
        }
        columns.push(table_columns);
    }

    Ok(columns)
}

/// Why the reader stopped sending before the end: its error, or its panic.
async fn reader_failure(reader: tokio::task::JoinHandle<Result<(), CopyError>>, path: &Path) -> CopyError {
    let problem = match reader.await {
        Ok(Err(error)) => return error,
        Ok(Ok(())) => "it ended before the last table".to_owned(),
        Err(error) => error.to_string(),
    };
    CopyError::Reader { path: path.to_owned(), problem }
}

/// Reads the snapshot: counts first, then every table's rows in key order, as PostgreSQL values.
fn read_sqlite(
    path: &Path,
    columns: &[Vec<(String, Type)>],
    sender: &mpsc::Sender<Read>,
) -> Result<(), CopyError> {
    let failed = |source| CopyError::Sqlite { path: path.to_owned(), source };
    let flags = rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let mut conn = rusqlite::Connection::open_with_flags(path, flags).map_err(failed)?;
    // One read transaction: counts and rows come from the same snapshot.
    let snapshot = conn.transaction().map_err(failed)?;
    let mut rows = Vec::new();
    for &(table, _) in TABLES {
        rows.push(
            snapshot.query_row(&format!("SELECT COUNT(*) FROM {table}"), [], |r| r.get(0)).map_err(failed)?,
        );
    }
    let story_sequence: i64 = snapshot
        .query_row("SELECT COALESCE(MAX(seq), 0) FROM sqlite_sequence WHERE name = 'stories'", [], |r| {
            r.get(0)
        })
        .map_err(failed)?;
    if sender.blocking_send(Read::Counts { rows, story_sequence }).is_err() {
        return Ok(());
    }
    for (&(table, order), table_columns) in TABLES.iter().zip(columns) {
        let names: Vec<&str> = table_columns.iter().map(|(c, _)| c.as_str()).collect();
        let mut statement = snapshot
            .prepare(&format!("SELECT {} FROM {table} ORDER BY {order}", names.join(", ")))
            .map_err(failed)?;
        let mut cursor = statement.query([]).map_err(failed)?;
        let mut batch = Vec::with_capacity(BATCH);
        while let Some(row) = cursor.next().map_err(failed)? {
            let mut values = Vec::with_capacity(table_columns.len());
            for (index, (column, kind)) in table_columns.iter().enumerate() {
                let value = row.get_ref(index).map_err(failed)?;
                let problem = |problem: String| CopyError::Value {
                    path: path.to_owned(),
                    table,
                    column: column.clone(),
                    problem,
                };
                values.push(convert(value, kind).map_err(problem)?);
            }
            batch.push(values);
            if batch.len() == BATCH && sender.blocking_send(Read::Rows(std::mem::take(&mut batch))).is_err() {
                return Ok(());
            }
        }
        if !batch.is_empty() && sender.blocking_send(Read::Rows(batch)).is_err() {
            return Ok(());
        }
        if sender.blocking_send(Read::TableEnd).is_err() {
            return Ok(());
        }
    }
    Ok(())
}

/// A SQLite value as the PostgreSQL column's type takes it.
fn convert(value: ValueRef, kind: &Type) -> Result<Value, String> {
    let text =
        |bytes: &[u8]| String::from_utf8(bytes.to_vec()).map_err(|_| "text that is not UTF-8".to_owned());
    Ok(match (value, kind) {
        (ValueRef::Null, &Type::INT8) => Box::new(None::<i64>),
        (ValueRef::Null, &Type::INT4) => Box::new(None::<i32>),
        (ValueRef::Null, &Type::TEXT) => Box::new(None::<String>),
        (ValueRef::Null, _) => Box::new(None::<Vec<u8>>),
        (ValueRef::Integer(n), &Type::INT8) => Box::new(n),
        (ValueRef::Integer(n), &Type::INT4) => {
            Box::new(i32::try_from(n).map_err(|_| format!("{n} does not fit an integer column"))?)
        }
        (ValueRef::Text(bytes), &Type::TEXT) => Box::new(text(bytes)?),
        (ValueRef::Blob(bytes), &Type::BYTEA) => Box::new(bytes.to_vec()),
        (other, kind) => return Err(format!("a SQLite {:?} value for a {kind} column", other.data_type())),
    })
}
