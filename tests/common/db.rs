//! The database a test's feedmill writes, read back by the test, on either store.
//!
//! The suite runs once on SQLite and, when `$FEEDMILL_TEST_POSTGRES` names a PostgreSQL server
//! (an admin URL; `scripts/test-on-postgresql` starts a throwaway one and runs the suite with
//! it), once more on PostgreSQL from the same tests: each [`super::Workspace`] then gets a fresh
//! database of its own, its config's `[storage] path` becomes `database_url`, and [`TestDb`]
//! reads that database. Queries are written with `?1` parameters, as the store writes them.

use postgres::types::Type;

/// The admin URL of the PostgreSQL server the suite runs on, if it does.
pub fn postgres_server() -> Option<String> {
    std::env::var("FEEDMILL_TEST_POSTGRES").ok().filter(|url| !url.is_empty())
}

/// A fresh database named `name` on the suite's PostgreSQL server; its URL.
pub fn create_database(server: &str, name: &str) -> String {
    let mut admin = postgres::Client::connect(server, postgres::NoTls).unwrap();
    admin.batch_execute(&format!("CREATE DATABASE {name}")).unwrap();
    let mut url = url::Url::parse(server).unwrap();
    url.set_path(name);
    url.to_string()
}

/// One column's value.
#[derive(Debug, Clone, PartialEq)]
pub enum Cell {
    Null,
    Int(i64),
    Text(String),
}

/// A column as a Rust value.
pub trait FromCell: Sized {
    fn from_cell(cell: &Cell) -> Self;
}

impl FromCell for i64 {
    fn from_cell(cell: &Cell) -> i64 {
        match cell {
            Cell::Int(v) => *v,
            other => panic!("{other:?} is not an integer"),
        }
    }
}

impl FromCell for String {
    fn from_cell(cell: &Cell) -> String {
        match cell {
            Cell::Text(v) => v.clone(),
            other => panic!("{other:?} is not text"),
        }
    }
}

impl<T: FromCell> FromCell for Option<T> {
    fn from_cell(cell: &Cell) -> Option<T> {
        match cell {
            Cell::Null => None,
            other => Some(T::from_cell(other)),
        }
    }
}

/// A row as a Rust value: one column's, or a tuple's.
pub trait FromRow: Sized {
    fn from_row(row: &[Cell]) -> Self;
}

impl<T: FromCell> FromRow for T {
    fn from_row(row: &[Cell]) -> T {
        T::from_cell(&row[0])
    }
}

impl<A: FromCell, B: FromCell> FromRow for (A, B) {
    fn from_row(row: &[Cell]) -> (A, B) {
        (A::from_cell(&row[0]), B::from_cell(&row[1]))
    }
}

pub enum TestDb {
    Sqlite(rusqlite::Connection),
    Postgres(std::cell::RefCell<postgres::Client>),
}

impl TestDb {
    pub fn sqlite(path: &std::path::Path) -> TestDb {
        TestDb::Sqlite(rusqlite::Connection::open(path).unwrap())
    }

    pub fn postgres(url: &str) -> TestDb {
        TestDb::Postgres(postgres::Client::connect(url, postgres::NoTls).unwrap().into())
    }

    /// Every row of the query.
    pub fn all<T: FromRow>(&self, sql: &str, params: &[&str]) -> Vec<T> {
        self.rows(sql, params).iter().map(|row| T::from_row(row)).collect()
    }

    /// The query's one row.
    pub fn one<T: FromRow>(&self, sql: &str, params: &[&str]) -> T {
        let rows = self.rows(sql, params);
        assert!(!rows.is_empty(), "no row: {sql}");
        T::from_row(&rows[0])
    }

    fn rows(&self, sql: &str, params: &[&str]) -> Vec<Vec<Cell>> {
        match self {
            TestDb::Sqlite(conn) => {
                let mut statement = conn.prepare(sql).unwrap();
                let columns = statement.column_count();
                let mut rows = statement.query(rusqlite::params_from_iter(params)).unwrap();
                let mut out = Vec::new();
                while let Some(row) = rows.next().unwrap() {
                    out.push(
                        (0..columns)
                            .map(|i| match row.get_ref(i).unwrap() {
                                rusqlite::types::ValueRef::Null => Cell::Null,
                                rusqlite::types::ValueRef::Integer(v) => Cell::Int(v),
                                rusqlite::types::ValueRef::Text(v) => {
                                    Cell::Text(String::from_utf8_lossy(v).into())
                                }
                                other => panic!("{other:?}: not read by tests"),
                            })
                            .collect(),
                    );
                }
                out
            }
            TestDb::Postgres(client) => {
                let sql = sql.replace('?', "$");
                let params: Vec<&(dyn postgres::types::ToSql + Sync)> =
                    params.iter().map(|p| p as &(dyn postgres::types::ToSql + Sync)).collect();
                let rows = client.borrow_mut().query(&sql, &params).unwrap();
                rows.iter()
                    .map(|row| {
                        (0..row.len())
                            .map(|i| {
                                let int = |v: Option<i64>| v.map_or(Cell::Null, Cell::Int);
                                match *row.columns()[i].type_() {
                                    Type::INT8 => int(row.get(i)),
                                    Type::INT4 => int(row.get::<_, Option<i32>>(i).map(i64::from)),
                                    Type::BOOL => int(row.get::<_, Option<bool>>(i).map(i64::from)),
                                    _ => row.get::<_, Option<String>>(i).map_or(Cell::Null, Cell::Text),
                                }
                            })
                            .collect()
                    })
                    .collect()
            }
        }
    }
}
