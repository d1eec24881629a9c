//! One SQL dialect over the two databases the store runs on, so the store's operations are
//! written once: [`Conn`] is a connection to SQLite or PostgreSQL, [`Value`] a parameter or a
//! column, [`Row`] a result row.
//!
//! The dialect is the common ground of both: parameters numbered `?1`, `?2`… (SQLite's own form;
//! the PostgreSQL connection rewrites them to `$1`…), `ON CONFLICT … DO NOTHING/UPDATE`, 0/1
//! integers for flags (compared as `hidden = 0`, never `NOT hidden`), Unix seconds for times.
//! What differs — starting a write transaction, reserving ids for new rows, the database's size, giving
//! freed space back — is a method of [`Conn`], implemented by each database.

use super::StoreError;

/// A parameter or a column value.
#[derive(Debug, Clone, Default, PartialEq)]
pub enum Value {
    #[default]
    Null,
    Int(i64),
    Real(f64),
    Text(String),
    Blob(Vec<u8>),
}

impl From<i64> for Value {
    fn from(v: i64) -> Value {
        Value::Int(v)
    }
}
impl From<u16> for Value {
    fn from(v: u16) -> Value {
        Value::Int(i64::from(v))
    }
}
impl From<bool> for Value {
    fn from(v: bool) -> Value {
        Value::Int(i64::from(v))
    }
}
impl From<String> for Value {
    fn from(v: String) -> Value {
        Value::Text(v)
    }
}
impl From<&String> for Value {
    fn from(v: &String) -> Value {
        Value::Text(v.clone())
    }
}
impl From<&str> for Value {
    fn from(v: &str) -> Value {
        Value::Text(v.to_owned())
    }
}
impl From<Vec<u8>> for Value {
    fn from(v: Vec<u8>) -> Value {
        Value::Blob(v)
    }
}
impl<T: Into<Value>> From<Option<T>> for Value {
    fn from(v: Option<T>) -> Value {
        v.map_or(Value::Null, Into::into)
    }
}

/// The parameters of a statement: `values![a, b]` is `&[Value::from(a), Value::from(b)]`.
macro_rules! values {
    ($($value:expr),* $(,)?) => {
        &[$($crate::store::sql::Value::from($value)),*][..]
    };
}
pub(crate) use values;

/// A column's value as a Rust type.
pub trait FromValue: Sized {
    fn from_value(value: &Value) -> Option<Self>;
}

impl FromValue for i64 {
    fn from_value(value: &Value) -> Option<i64> {
        match value {
            Value::Int(v) => Some(*v),
            _ => None,
        }
    }
}
impl FromValue for bool {
    fn from_value(value: &Value) -> Option<bool> {
        i64::from_value(value).map(|v| v != 0)
    }
}
impl FromValue for String {
    fn from_value(value: &Value) -> Option<String> {
        match value {
            Value::Text(v) => Some(v.clone()),
            _ => None,
        }
    }
}
impl FromValue for Vec<u8> {
    fn from_value(value: &Value) -> Option<Vec<u8>> {
        match value {
            Value::Blob(v) => Some(v.clone()),
            _ => None,
        }
    }
}
impl<T: FromValue> FromValue for Option<T> {
    fn from_value(value: &Value) -> Option<Option<T>> {
        match value {
            Value::Null => Some(None),
            other => T::from_value(other).map(Some),
        }
    }
}

/// One result row.
#[derive(Debug, Clone, Default)]
pub struct Row(pub Vec<Value>);

impl Row {
    /// Column `index` as `T`; a missing column or another type is an error naming both.
    pub fn get<T: FromValue>(&self, index: usize) -> Result<T, StoreError> {
        let value = self.0.get(index).unwrap_or(&Value::Null);
        T::from_value(value).ok_or_else(|| StoreError::Column {
            index,
            expected: std::any::type_name::<T>(),
            found: format!("{value:?}").chars().take(60).collect(),
        })
    }
}

/// The rows of one table that [`Conn::insert_later`] inserts together.
#[derive(Debug)]
pub struct Insert {
    pub table: &'static str,
    /// Each column's name and SQL type.
    pub columns: &'static [(&'static str, &'static str)],
    /// What follows the rows (` ON CONFLICT DO NOTHING`), if anything.
    pub tail: &'static str,
}

/// A connection to one of the store's databases.
pub trait Conn: Send {
    /// Runs a statement; returns how many rows it changed.
    fn execute(&mut self, sql: &str, params: &[Value]) -> Result<usize, StoreError>;
    /// Runs a write whose outcome nothing needs before the transaction commits. PostgreSQL sends
    /// such writes together just before the connection's next statement (one round trip for all
    /// of them), so a failure shows there or at the commit; SQLite runs it at once.
    fn execute_later(&mut self, sql: &str, params: &[Value]) -> Result<(), StoreError> {
        self.execute(sql, params).map(drop)
    }
    /// Inserts rows into a table — `values` holds each row's values in the order of its
    /// columns — as [`Conn::execute_later`] runs a write: as few statements as the database
    /// makes fastest.
    fn insert_later(&mut self, insert: &Insert, values: Vec<Value>) -> Result<(), StoreError>;
    /// Runs a query; returns every row.
    fn query(&mut self, sql: &str, params: &[Value]) -> Result<Vec<Row>, StoreError>;
    /// Runs queries that look up lists of keys (`IN (…)`), together: PostgreSQL sends them in one
    /// round trip.
    fn lookup(&mut self, queries: &[(String, Vec<Value>)]) -> Result<Vec<Vec<Row>>, StoreError> {
        queries.iter().map(|(sql, params)| self.query(sql, params)).collect()
    }
    /// `n` ids for rows of each of `tables` (their `id` column) that this transaction inserts
    /// with explicit ids; no other insert gets them. Ids a transaction does not use may never be
    /// handed out.
    fn reserve_ids(&mut self, tables: &[&'static str], n: usize) -> Result<Vec<Vec<i64>>, StoreError>;
    /// Starts sending the writes held back ([`Conn::execute_later`], [`Conn::insert_later`])
    /// without waiting for them: the database works on them while the caller goes on. Their
    /// failure is the next statement's.
    fn send_now(&mut self) -> Result<(), StoreError> {
        Ok(())
    }
    /// Runs statements separated by `;`, without parameters.
    fn batch(&mut self, sql: &str) -> Result<(), StoreError>;
    /// Most writes committed together in one transaction.
    fn max_group(&self) -> usize;
    /// Starts the transaction a group of writes commits together.
    fn begin(&mut self) -> Result<(), StoreError>;
    /// Commits it; the error says what to check.
    fn commit(&mut self) -> Result<(), StoreError>;
    /// Undoes it.
    fn rollback(&mut self) -> Result<(), StoreError> {
        self.batch("ROLLBACK")
    }
    /// The database's size on disk, in bytes.
    fn size_bytes(&mut self) -> Result<i64, StoreError>;
    /// After many rows were deleted: gives the freed space back where the database does not do it
    /// by itself.
    fn release_space(&mut self) -> Result<(), StoreError>;
    /// On a clean exit, after the last write: leaves the database tidy for the next process.
    fn close(&mut self) -> Result<(), StoreError>;
    /// `FOR UPDATE SKIP LOCKED` where the database locks rows (a subquery that ends with it picks
    /// only rows no other transaction is changing), else nothing (SQLite has one writer).
    fn skip_locked(&self) -> &'static str;
    /// Serializes, for the rest of the transaction, the writes that store items against every
    /// other node's: the dedup layers then see everything committed before. SQLite has one writer.
    fn lock_for_dedup(&mut self) -> Result<(), StoreError>;
    /// The connection can no longer be used (its server went away).
    fn is_broken(&self) -> bool {
        false
    }
}

impl dyn Conn + '_ {
    /// The first row, if any.
    pub fn query_opt(&mut self, sql: &str, params: &[Value]) -> Result<Option<Row>, StoreError> {
        Ok(self.query(sql, params)?.into_iter().next())
    }

    /// The first row; none is an error.
    pub fn query_one(&mut self, sql: &str, params: &[Value]) -> Result<Row, StoreError> {
        self.query_opt(sql, params)?.ok_or(StoreError::NoRow)
    }

    /// Whether the query returns a row.
    pub fn exists(&mut self, sql: &str, params: &[Value]) -> Result<bool, StoreError> {
        Ok(self.query_opt(sql, params)?.is_some())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_convert_both_ways() {
        let params = values![1i64, "a", None::<String>, Some(true), vec![1u8, 2]];
        assert_eq!(
            params,
            [Value::Int(1), Value::Text("a".into()), Value::Null, Value::Int(1), Value::Blob(vec![1, 2])]
        );
        let row = Row(params.to_vec());
        assert_eq!(row.get::<i64>(0).unwrap(), 1);
        assert_eq!(row.get::<Option<String>>(2).unwrap(), None);
        assert!(row.get::<bool>(3).unwrap());
        let error = row.get::<String>(0).unwrap_err().to_string();
        assert!(error.contains("column 0") && error.contains("Int(1)"), "{error}");
    }
}
