//! The store on PostgreSQL: [`Conn`] over a connection of the synchronous `postgres` client (the
//! store's writer and readers are threads, not tasks), and [`Store::connect`].
//!
//! Statements are prepared once per connection and kept by their text; the store's `?N`
//! parameters become PostgreSQL's `$N`. [`Value`] converts to and from whatever type the column
//! or parameter has (a flag is an INTEGER column here, a count a BIGINT). A connection whose
//! server went away is replaced: the writer reconnects at its next transaction, the read pool
//! drops it.

use std::collections::HashMap;
use std::error::Error;

use ::postgres::types::{FromSql, IsNull, ToSql, Type};
use ::postgres::{Client, Statement};
use bytes::BytesMut;

use super::{describe, tls, PostgresError};
use crate::store::sql::{Conn, Row, Value};
use crate::store::{ReadPool, Store, StoreError};

/// The advisory lock writes that store items take (any constant every node agrees on: "dedup" in
/// ASCII); see [`Conn::lock_for_dedup`].
const DEDUP_LOCK: i64 = 0x64_6564_7570;

/// A connection and what it needs to reconnect.
pub(in crate::store) struct PgConn {
    client: Client,
    statements: HashMap<String, Statement>,
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
            let readers =
                ReadPool::new(Box::new(move || Ok(Box::new(PgConn::open(&url)?) as Box<dyn Conn>)))?;
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
        let client = ::postgres::Config::from(config)
            .connect(connector)
            .map_err(|source| PostgresError::Connect { database: database.clone(), source })?;
        Ok(PgConn { client, statements: HashMap::new(), url: url.to_owned(), database })
    }

    /// The prepared statement for `sql` (in the store's dialect).
    fn statement(&mut self, sql: &str) -> Result<Statement, StoreError> {
        if let Some(statement) = self.statements.get(sql) {
            return Ok(statement.clone());
        }
        let statement = self.client.prepare(&numbered_parameters(sql))?;
        self.statements.insert(sql.to_owned(), statement.clone());
        Ok(statement)
    }

    fn rows(&mut self, sql: &str, params: &[Value]) -> Result<Vec<::postgres::Row>, StoreError> {
        let statement = self.statement(sql)?;
        let params: Vec<&(dyn ToSql + Sync)> = params.iter().map(|v| v as &(dyn ToSql + Sync)).collect();
        Ok(self.client.query(&statement, &params)?)
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
        let params: Vec<&(dyn ToSql + Sync)> = params.iter().map(|v| v as &(dyn ToSql + Sync)).collect();
        let changed = self.client.execute(&statement, &params)?;
        Ok(usize::try_from(changed).unwrap_or(usize::MAX))
    }

    fn query(&mut self, sql: &str, params: &[Value]) -> Result<Vec<Row>, StoreError> {
        let rows = self.rows(sql, params)?;
        rows.iter()
            .map(|row| (0..row.len()).map(|i| row.try_get::<_, Value>(i)).collect::<Result<_, _>>().map(Row))
            .collect::<Result<_, _>>()
            .map_err(StoreError::from)
    }

    fn insert(&mut self, sql: &str, params: &[Value]) -> Result<i64, StoreError> {
        let rows = self.rows(&format!("{sql} RETURNING id"), params)?;
        let row = rows.first().ok_or(StoreError::NoRow)?;
        Ok(row.try_get(0)?)
    }

    fn batch(&mut self, sql: &str) -> Result<(), StoreError> {
        Ok(self.client.batch_execute(sql)?)
    }

    fn max_group(&self) -> usize {
        // Each write in a transaction of its own: it then takes its locks in its own order (the
        // dedup lock first, then rows), which other nodes' writes share, so no two nodes' writes
        // can wait for each other in a cycle; grouped, one write's row locks would be held while
        // a later one waits.
        1
    }

    fn begin(&mut self) -> Result<(), StoreError> {
        if self.client.is_closed() {
            tracing::warn!(database = %self.database, "the connection to the database was lost; reconnecting");
            *self = PgConn::open(&self.url)?;
        }
        self.batch("BEGIN")
    }

    fn commit(&mut self) -> Result<(), StoreError> {
        self.client
            .batch_execute("COMMIT")
            .map_err(|error| StoreError::Commit(format!("{}: commit failed: {error}", self.database)))
    }

    fn size_bytes(&mut self) -> Result<i64, StoreError> {
        Ok(self.client.query_one("SELECT pg_database_size(current_database())", &[])?.try_get(0)?)
    }

    fn release_space(&mut self) -> Result<(), StoreError> {
        // Autovacuum makes deleted rows' space reusable by itself.
        Ok(())
    }

    fn close(&mut self) -> Result<(), StoreError> {
        Ok(())
    }

    fn skip_locked(&self) -> &'static str {
        " FOR UPDATE SKIP LOCKED"
    }

    fn lock_for_dedup(&mut self) -> Result<(), StoreError> {
        self.execute("SELECT pg_advisory_xact_lock(?1)", &[Value::Int(DEDUP_LOCK)]).map(drop)
    }

    fn is_broken(&self) -> bool {
        self.client.is_closed()
    }
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

    ::postgres::types::to_sql_checked!();
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

    #[test]
    fn parameters_are_renumbered_for_postgresql() {
        assert_eq!(
            numbered_parameters("SELECT a FROM t WHERE b = ?12 AND c = ?1 AND d <> '?'"),
            "SELECT a FROM t WHERE b = $12 AND c = $1 AND d <> '?'"
        );
    }
}
