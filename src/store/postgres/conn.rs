//! The store on PostgreSQL: [`Conn`] over a `tokio-postgres` connection driven by a runtime of
//! its own (the store's writer and readers are threads, not tasks), and [`Store::connect`].
//!
//! Statements are prepared per connection and kept by their text (prepared again as the tables
//! double: [`PgConn::replan_as_tables_grow`]); the store's `?N`
//! parameters become PostgreSQL's `$N`. [`Value`] converts to and from whatever type the column
//! or parameter has (a flag is an INTEGER column here, a count a BIGINT). Writes handed to
//! [`Conn::execute_later`] wait in the connection and go out together, pipelined, just before
//! its next statement: many writes then cost one network round trip instead of one each.
//! [`Conn::send_now`] sends them at once, their answers read with the next statement's. A
//! connection whose server went away is replaced: the writer reconnects at its next
//! transaction, the read pool drops it.

use std::collections::HashMap;
use std::error::Error;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};

use bytes::BytesMut;
use std::future::Future;

use futures_util::future::{try_join, try_join_all, Either};
use tokio::runtime::Runtime;
use tokio_postgres::types::{FromSql, IsNull, ToSql, Type};
use tokio_postgres::{Client, Statement};

use super::{describe, tls, PostgresError};
use crate::store::sql::{Conn, Insert, Row, Value};
use crate::store::{ReadPool, Store, StoreError};

/// The advisory lock writes that store items take (any constant every node agrees on: "dedup" in
/// ASCII); see [`Conn::lock_for_dedup`].
const DEDUP_LOCK: i64 = 0x64_6564_7570;

/// A write not sent yet.
enum Pending {
    Statement(Statement, Vec<Value>),
    /// An insert of many rows: the values of each column, as arrays.
    Columns(Statement, Vec<Vec<Value>>),
}

/// A write on its way: sent, its answer not read yet ([`Conn::send_now`]).
type InFlight = Pin<Box<dyn Future<Output = Result<u64, tokio_postgres::Error>> + Send>>;

/// A connection and what it needs to reconnect.
pub(in crate::store) struct PgConn {
    /// Drives the connection while a statement runs (`block_on`).
    runtime: Runtime,
    client: Arc<Client>,
    statements: HashMap<String, Statement>,
    /// How many bits the largest id this connection has handed out takes ([`Conn::reserve_ids`]):
    /// the statements are prepared again each time it grows, that is each time the tables have
    /// about doubled ([`PgConn::replan_as_tables_grow`]).
    id_bits: u32,
    /// The sequence that numbers each table's ids ([`Conn::reserve_ids`]).
    sequences: HashMap<&'static str, String>,
    /// Writes not sent yet ([`Conn::execute_later`], [`Conn::insert_later`]).
    pending: Vec<Pending>,
    /// Writes sent whose answers are read with the next statement's.
    in_flight: Vec<InFlight>,
    url: String,
    /// `user@host:port/name`, for messages.
    database: String,
}

impl Store {
    /// Connects to the PostgreSQL database at `url` (libpq URL or key=value syntax, TLS as its
    /// `sslmode` says), migrates it and starts the writer thread.
    pub async fn connect(url: &str) -> Result<Store, StoreError> {
        let mut database = super::connect(url).await?;
        super::migrate(&mut database).await?;
        drop(database);
        let url = url.to_owned();
        tokio::task::spawn_blocking(move || {
            let writer = PgConn::open(&url)?;
            let name = writer.database.clone();
            // What the read connections write is the cluster's coordination — leases, hosts'
            // slots and turns, page claims ([`Store::claim`], `store/limits.rs`) — which a crash
            // of the server may forget at no cost (a source or page is fetched once more), so
            // they commit without waiting for the disk.
            let readers = ReadPool::new(Box::new(move || {
                let mut reader = PgConn::open(&url)?;
                reader.batch("SET synchronous_commit = off")?;
                Ok(Box::new(reader) as Box<dyn Conn>)
            }))?;
            Store::start(Box::new(writer), readers, None, name)
        })
        .await
        .map_err(|_| StoreError::WriterGone)?
    }
}

impl PgConn {
    fn open(url: &str) -> Result<PgConn, PostgresError> {
        let (config, tls) = tls::parse(url)?;
        let database = describe(&config);
        let connector = tls.connector(&database)?;
        let connect_failed = |source| PostgresError::Connect { database: database.clone(), source };
        let runtime =
            tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(|error| {
                PostgresError::Runtime { database: database.clone(), problem: error.to_string() }
            })?;
        let (client, connection) = runtime.block_on(config.connect(connector)).map_err(connect_failed)?;
        let name = database.clone();
        runtime.spawn(async move {
            if let Err(error) = connection.await {
                tracing::debug!(database = %name, "PostgreSQL connection ended: {error}");
            }
        });
        // Article bodies are compressed with LZ4 where the server has it: several times faster
        // than the default (pglz), which took most of an item's insert (BENCHMARKS.md).
        if let Err(error) = runtime.block_on(client.batch_execute("SET default_toast_compression = lz4")) {
            tracing::debug!(database = %database, "LZ4 compression unavailable, keeping the default: {error}");
        }
        Ok(PgConn {
            runtime,
            client: Arc::new(client),
            statements: HashMap::new(),
            id_bits: 0,
            sequences: HashMap::new(),
            pending: Vec::new(),
            in_flight: Vec::new(),
            url: url.to_owned(),
            database,
        })
    }

    /// The prepared statement for `sql` (in the store's dialect).
    fn statement(&mut self, sql: &str) -> Result<Statement, StoreError> {
        if let Some(statement) = self.statements.get(sql) {
            return Ok(statement.clone());
        }
        let statement = self.runtime.block_on(self.client.prepare(&numbered_parameters(sql)))?;
        self.statements.insert(sql.to_owned(), statement.clone());
        Ok(statement)
    }

    /// Runs what `make` sends on the connection, after the writes waiting to be sent and in the
    /// same round trip: they go out first, all at once, and a failure of any is the result.
    fn send<'a, T, F>(&'a mut self, make: impl FnOnce(&'a Client) -> F) -> Result<T, StoreError>
    where
        F: Future<Output = Result<T, tokio_postgres::Error>> + 'a,
    {
        let pending = std::mem::take(&mut self.pending);
        let in_flight = try_join_all(std::mem::take(&mut self.in_flight));
        let client = &*self.client;
        let writes = try_join_all(pending.iter().map(|write| match write {
            Pending::Statement(statement, params) => {
                Either::Left(client.execute_raw(statement, params.iter()))
            }
            Pending::Columns(statement, columns) => {
                Either::Right(client.execute_raw(statement, columns.iter()))
            }
        }));
        let (_, (_, value)) = self.runtime.block_on(try_join(in_flight, try_join(writes, make(client))))?;
        Ok(value)
    }

    /// Forgets the prepared statements when `largest_id`, the largest id just handed out, takes
    /// more bits than any before. PostgreSQL plans a prepared statement for any parameters once
    /// it has run a few times, and keeps that plan; one made while a table was small enough to
    /// read whole would read it whole when it is large (without this, the ingest bench's prefill
    /// of 100,000 items took 89 s instead of 19: BENCHMARKS.md). Prepared again, a statement is planned for the tables as they are now,
    /// which are at most twice as large by the time it is prepared again. (Tables that grow
    /// without new ids, and slower growth, are left to autovacuum's `ANALYZE`, after which
    /// PostgreSQL plans again by itself.)
    fn replan_as_tables_grow(&mut self, largest_id: Option<i64>) {
        let bits = largest_id.map_or(0, |id| 64 - id.max(0).leading_zeros());
        if bits > self.id_bits {
            self.id_bits = bits;
            self.statements.clear();
        }
    }

    /// Sends the writes waiting to be sent.
    fn flush(&mut self) -> Result<(), StoreError> {
        if self.pending.is_empty() && self.in_flight.is_empty() {
            return Ok(());
        }
        self.send(|_| async { Ok(()) })
    }
}

/// `?1` → `$1`: the store writes SQLite's numbered parameters, PostgreSQL numbers them with `$`.
/// (The store's SQL has no `?` inside string literals.)
fn numbered_parameters(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len());
    let mut chars = sql.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '?' && chars.peek().is_some_and(char::is_ascii_digit) {
            out.push('$');
        } else {
            out.push(c);
        }
    }
    out
}

impl Conn for PgConn {
    fn execute(&mut self, sql: &str, params: &[Value]) -> Result<usize, StoreError> {
        let statement = self.statement(sql)?;
        let changed = self.send(|client| client.execute_raw(&statement, params.iter()))?;
        Ok(usize::try_from(changed).unwrap_or(usize::MAX))
    }

    fn execute_later(&mut self, sql: &str, params: &[Value]) -> Result<(), StoreError> {
        let statement = self.statement(sql)?;
        self.pending.push(Pending::Statement(statement, params.to_vec()));
        Ok(())
    }

    fn insert_later(&mut self, insert: &Insert, values: Vec<Value>) -> Result<(), StoreError> {
        // One statement for any number of rows: each column's values as an array, unnested.
        let width = insert.columns.len();
        let names: Vec<&str> = insert.columns.iter().map(|(name, _)| *name).collect();
        let arrays: Vec<String> = insert
            .columns
            .iter()
            .enumerate()
            .map(|(i, (_, ty))| format!("CAST(?{} AS {ty}[])", i + 1))
            .collect();
        let sql = format!(
            "INSERT INTO {} ({}) SELECT * FROM unnest({}){}",
            insert.table,
            names.join(", "),
            arrays.join(", "),
            insert.tail
        );
        let statement = self.statement(&sql)?;
        let mut columns: Vec<Vec<Value>> =
            (0..width).map(|_| Vec::with_capacity(values.len() / width)).collect();
        for (i, value) in values.into_iter().enumerate() {
            columns[i % width].push(value);
        }
        self.pending.push(Pending::Columns(statement, columns));
        Ok(())
    }

    fn send_now(&mut self) -> Result<(), StoreError> {
        for write in std::mem::take(&mut self.pending) {
            let client = Arc::clone(&self.client);
            let mut write: InFlight = match write {
                Pending::Statement(statement, params) => {
                    Box::pin(async move { client.execute_raw(&statement, params.iter()).await })
                }
                Pending::Columns(statement, columns) => {
                    Box::pin(async move { client.execute_raw(&statement, columns.iter()).await })
                }
            };
            // Polled once, the write is queued to the connection (tokio-postgres sends a request
            // at its first poll); its answer is read with the next statement's. One not queued
            // yet would go out with the next statement, in order, as without `send_now`.
            match write.as_mut().poll(&mut Context::from_waker(Waker::noop())) {
                Poll::Ready(result) => {
                    result?;
                }
                Poll::Pending => self.in_flight.push(write),
            }
        }
        // One turn of the runtime: the connection writes what is queued to the socket.
        self.runtime.block_on(tokio::task::yield_now());
        Ok(())
    }

    fn query(&mut self, sql: &str, params: &[Value]) -> Result<Vec<Row>, StoreError> {
        let statement = self.statement(sql)?;
        let params: Vec<&(dyn ToSql + Sync)> = params.iter().map(|v| v as &(dyn ToSql + Sync)).collect();
        let rows = self.send(|client| client.query(&statement, &params))?;
        store_rows(&rows)
    }

    fn lookup(&mut self, queries: &[(String, Vec<Value>)]) -> Result<Vec<Vec<Row>>, StoreError> {
        // Prepared statements, all run in one round trip.
        let mut prepared = Vec::with_capacity(queries.len());
        for (sql, params) in queries {
            let params: Vec<&(dyn ToSql + Sync)> = params.iter().map(|v| v as &(dyn ToSql + Sync)).collect();
            prepared.push((self.statement(sql)?, params));
        }
        let answers = self.send(|client| {
            try_join_all(prepared.iter().map(|(statement, params)| client.query(statement, params)))
        })?;
        answers.iter().map(|rows| store_rows(rows)).collect()
    }

    fn reserve_ids(&mut self, tables: &[&'static str], n: usize) -> Result<Vec<Vec<i64>>, StoreError> {
        let mut sequences = Vec::with_capacity(tables.len());
        for table in tables {
            let sequence = match self.sequences.get(table) {
                Some(sequence) => sequence.clone(),
                None => {
                    // Looked up once: named in the statement, it is resolved once per statement
                    // instead of once per id.
                    let rows =
                        self.query("SELECT pg_get_serial_sequence(?1, 'id')", &[Value::from(*table)])?;
                    let sequence: String = rows.first().ok_or(StoreError::NoRow)?.get(0)?;
                    self.sequences.insert(table, sequence.clone());
                    sequence
                }
            };
            sequences.push(format!("nextval('{}')", sequence.replace('\'', "''")));
        }
        let sql = format!("SELECT {} FROM generate_series(1, CAST(?1 AS BIGINT))", sequences.join(", "));
        let rows = self.query(&sql, &[Value::Int(i64::try_from(n).unwrap_or(i64::MAX))])?;
        let ids: Vec<Vec<i64>> = (0..tables.len())
            .map(|column| rows.iter().map(|row| row.get(column)).collect())
            .collect::<Result<_, _>>()?;
        self.replan_as_tables_grow(ids.iter().flatten().copied().max());
        Ok(ids)
    }

    fn batch(&mut self, sql: &str) -> Result<(), StoreError> {
        self.send(|client| client.batch_execute(sql))
    }

    fn max_group(&self) -> usize {
        // One durable commit for many writes. A group holds the cluster's dedup lock until it
        // commits (the store's writer takes it first), so other nodes' item writes wait for it:
        // fewer writes than SQLite's keep that wait short.
        64
    }

    fn begin(&mut self) -> Result<(), StoreError> {
        if self.client.is_closed() {
            tracing::warn!(database = %self.database, "the connection to the database was lost; reconnecting");
            *self = PgConn::open(&self.url)?;
        }
        // Sent with the transaction's first statement.
        self.pending.clear();
        self.in_flight.clear();
        self.execute_later("BEGIN", &[])
    }

    fn commit(&mut self) -> Result<(), StoreError> {
        let database = self.database.clone();
        self.batch("COMMIT")
            .map_err(|error| StoreError::Commit(format!("{database}: commit failed: {error}")))
    }

    fn rollback(&mut self) -> Result<(), StoreError> {
        self.pending.clear();
        self.in_flight.clear();
        self.batch("ROLLBACK")
    }

    fn size_bytes(&mut self) -> Result<i64, StoreError> {
        let rows = self.query("SELECT pg_database_size(current_database())", &[])?;
        rows.first().ok_or(StoreError::NoRow)?.get(0)
    }

    fn release_space(&mut self) -> Result<(), StoreError> {
        // Autovacuum makes deleted rows' space reusable by itself.
        Ok(())
    }

    fn close(&mut self) -> Result<(), StoreError> {
        self.flush()
    }

    fn skip_locked(&self) -> &'static str {
        " FOR UPDATE SKIP LOCKED"
    }

    fn lock_for_dedup(&mut self) -> Result<(), StoreError> {
        // Taken when the next statement goes out, before it runs.
        self.execute_later("SELECT pg_advisory_xact_lock(?1)", &[Value::Int(DEDUP_LOCK)])
    }

    fn is_broken(&self) -> bool {
        self.client.is_closed()
    }
}

/// The driver's rows as the store's.
fn store_rows(rows: &[tokio_postgres::Row]) -> Result<Vec<Row>, StoreError> {
    rows.iter()
        .map(|row| (0..row.len()).map(|i| row.try_get::<_, Value>(i)).collect::<Result<_, _>>().map(Row))
        .collect::<Result<_, _>>()
        .map_err(StoreError::from)
}

type BoxedError = Box<dyn Error + Sync + Send>;

impl ToSql for Value {
    fn to_sql(&self, ty: &Type, out: &mut BytesMut) -> Result<IsNull, BoxedError> {
        match self {
            Value::Null => Ok(IsNull::Yes),
            Value::Int(v) => match *ty {
                Type::INT8 => v.to_sql(ty, out),
                Type::INT4 => i32::try_from(*v)?.to_sql(ty, out),
                Type::INT2 => i16::try_from(*v)?.to_sql(ty, out),
                Type::BOOL => (*v != 0).to_sql(ty, out),
                Type::FLOAT8 => (*v as f64).to_sql(ty, out),
                _ => Err(format!("an integer for a parameter of type {ty}").into()),
            },
            Value::Real(v) => match *ty {
                Type::FLOAT4 => (*v as f32).to_sql(ty, out),
                _ => v.to_sql(ty, out),
            },
            Value::Text(v) => v.as_str().to_sql(ty, out),
            Value::Blob(v) => v.as_slice().to_sql(ty, out),
        }
    }

    fn accepts(_: &Type) -> bool {
        true
    }

    tokio_postgres::types::to_sql_checked!();
}

impl<'a> FromSql<'a> for Value {
    fn from_sql(ty: &Type, raw: &'a [u8]) -> Result<Value, BoxedError> {
        Ok(match *ty {
            Type::INT8 => Value::Int(i64::from_sql(ty, raw)?),
            Type::INT4 => Value::Int(i32::from_sql(ty, raw)?.into()),
            Type::INT2 => Value::Int(i16::from_sql(ty, raw)?.into()),
            Type::BOOL => Value::Int(bool::from_sql(ty, raw)?.into()),
            Type::FLOAT8 => Value::Real(f64::from_sql(ty, raw)?),
            Type::FLOAT4 => Value::Real(f32::from_sql(ty, raw)?.into()),
            Type::BYTEA => Value::Blob(raw.to_vec()),
            _ => Value::Text(String::from_sql(ty, raw)?),
        })
    }

    fn from_sql_null(_: &Type) -> Result<Value, BoxedError> {
        Ok(Value::Null)
    }

    fn accepts(_: &Type) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The statements are prepared again, and so planned for the tables as they are, each time
    /// the largest id handed out gains a bit; not in between. (`scripts/test-on-postgresql`.)
    #[tokio::test]
    async fn statements_are_prepared_again_as_the_tables_double() {
        let Some(server) = std::env::var("FEEDMILL_TEST_POSTGRES").ok().filter(|s| !s.is_empty()) else {
            eprintln!("skipped: no PostgreSQL server ($FEEDMILL_TEST_POSTGRES)");
            return;
        };
        let url = super::super::test_database(&server).await;
        drop(Store::connect(&url).await.unwrap());
        tokio::task::spawn_blocking(move || {
            let mut conn = PgConn::open(&url).unwrap();
            let lookup = "SELECT id FROM items WHERE id IN (?1, ?2)";
            let mut reserve = |n| {
                let ids = conn.reserve_ids(&["items"], n).unwrap();
                conn.query(lookup, &[Value::Int(1), Value::Int(2)]).unwrap();
                let prepared = conn.statements.len();
                (*ids[0].last().unwrap(), prepared)
            };
            // Each time the ids gain a bit only the lookup, prepared after, is left; in between
            // the statement that hands out ids is kept beside it.
            assert_eq!(reserve(3), (3, 1));
            assert_eq!(reserve(1), (4, 1), "4 takes a bit more than 3");
            assert_eq!(reserve(3), (7, 2), "5–7 take no more bits than 4");
            assert_eq!(reserve(100), (107, 1));
        })
        .await
        .unwrap();
    }

    #[test]
    fn parameters_are_renumbered_for_postgresql() {
        assert_eq!(
            numbered_parameters("SELECT a FROM t WHERE b = ?12 AND c = ?1 AND d <> '?'"),
            "SELECT a FROM t WHERE b = $12 AND c = $1 AND d <> '?'"
        );
    }
}
