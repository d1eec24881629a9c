//! PostgreSQL, the store for several nodes: its schema, how a node brings a database up to it,
//! the store's connections to it (`conn`, [`crate::store::Store::connect`]) and the copy of a
//! SQLite database into it (`copy`, for `feedmill migrate --to`).
//!
//! The schema lives in `/migrations/postgres`, plain SQL, the same tables and columns as the SQLite
//! schema. A node applies the migrations it knows in order, in one transaction, recording each in
//! `feedmill_migrations`; the transaction first takes an advisory lock, so nodes starting together
//! wait for each other and the database is migrated once. A node refuses a database that a newer
//! feedmill has migrated further than it knows. Error messages name the database as
//! `user@host:port/name`, never with its password.

mod conn;
mod copy;
mod tls;

pub use copy::{copy_sqlite, CopyError, TableCount};
use tokio_postgres::config::Host;
use tokio_postgres::{Client, Config};

/// The migrations, in order, by name. Add new files at the end; never edit one that has shipped.
const MIGRATIONS: &[(&str, &str)] = &[
    ("0001_schema", include_str!("../../../migrations/postgres/0001_schema.sql")),
    ("0002_cluster", include_str!("../../../migrations/postgres/0002_cluster.sql")),
];

/// The advisory lock migrating nodes take (any constant every node agrees on: "feedmill" in ASCII).
const MIGRATION_LOCK: i64 = 0x6665_6564_6d69_6c6c;

/// Each error's message says what failed and where; the driver's own error is its `source`, which
/// the command line prints after it (`cannot connect: error connecting to server: Connection
/// refused`).
#[derive(Debug, thiserror::Error)]
pub enum PostgresError {
    /// The URL itself is not shown: it may hold the password.
    #[error("the PostgreSQL database URL is invalid: {0}")]
    Url(String),
    #[error("{database}: TLS: {problem}")]
    Tls { database: String, problem: String },
    #[error("{database}: cannot start the connection's runtime: {problem}")]
    Runtime { database: String, problem: String },
    #[error("{database}: cannot connect")]
    Connect { database: String, source: tokio_postgres::Error },
    #[error("{database}: cannot apply migration {migration}")]
    Migrate { database: String, migration: &'static str, source: tokio_postgres::Error },
    #[error("{database}: migrated to version {found} by a newer feedmill, which this one ({known} migrations) cannot read; upgrade this node")]
    Newer { database: String, found: i64, known: usize },
    #[error("{database}: a statement failed")]
    Sql { database: String, source: tokio_postgres::Error },
}

/// An open connection and the database's name for messages.
pub struct Database {
    pub client: Client,
    pub name: String,
}

/// Connects to the database at `url` (libpq URL or key=value syntax; TLS as its `sslmode` and
/// `sslrootcert` say, see [`tls`]). The connection's driver runs as a task on the current
/// runtime until the client is dropped.
pub async fn connect(url: &str) -> Result<Database, PostgresError> {
    let (config, tls) = tls::parse(url)?;
    let name = describe(&config);
    let (client, connection) = config
        .connect(tls.connector(&name)?)
        .await
        .map_err(|source| PostgresError::Connect { database: name.clone(), source })?;
    let driver_name = name.clone();
    tokio::spawn(async move {
        if let Err(error) = connection.await {
            tracing::warn!(database = %driver_name, "PostgreSQL connection ended: {error}");
        }
    });
    Ok(Database { client, name })
}

/// Applies the migrations `database` does not have yet; returns how many it applied.
pub async fn migrate(database: &mut Database) -> Result<usize, PostgresError> {
    let name = database.name.clone();
    let sql = |source| PostgresError::Sql { database: name.clone(), source };
    let transaction = database.client.transaction().await.map_err(sql)?;
    transaction.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK]).await.map_err(sql)?;
    transaction
        .batch_execute(
            "CREATE TABLE IF NOT EXISTS feedmill_migrations (
                 version    INTEGER PRIMARY KEY,
                 name       TEXT NOT NULL,
                 applied_at TIMESTAMPTZ NOT NULL DEFAULT now()
             )",
        )
        .await
        .map_err(sql)?;
    let row = transaction
        .query_one("SELECT COALESCE(MAX(version), 0)::BIGINT FROM feedmill_migrations", &[])
        .await
        .map_err(sql)?;
    let found: i64 = row.get(0);
    let known = MIGRATIONS.len();
    let applied = usize::try_from(found).unwrap_or(usize::MAX);
    if applied > known {
        return Err(PostgresError::Newer { database: name, found, known });
    }
    for (version, &(migration, text)) in MIGRATIONS.iter().enumerate().skip(applied) {
        let failed = |source| PostgresError::Migrate { database: name.clone(), migration, source };
        transaction.batch_execute(text).await.map_err(failed)?;
        let version = i32::try_from(version + 1).unwrap_or(i32::MAX);
        transaction
            .execute(
                "INSERT INTO feedmill_migrations (version, name) VALUES ($1, $2)",
                &[&version, &migration],
            )
            .await
            .map_err(failed)?;
    }
    transaction.commit().await.map_err(sql)?;
    Ok(known - applied)
}

/// Checks a database URL's syntax; returns the database as messages name it.
pub fn describe_url(url: &str) -> Result<String, PostgresError> {
    Ok(describe(&tls::parse(url)?.0))
}

/// `user@host:port/name`: the database as messages name it, without the password.
fn describe(config: &Config) -> String {
    let user = config.get_user().map(|u| format!("{u}@")).unwrap_or_default();
    let host = match config.get_hosts().first() {
        Some(Host::Tcp(host)) => host.clone(),
        Some(Host::Unix(path)) => path.display().to_string(),
        None => "localhost".to_owned(),
    };
    let port = config.get_ports().first().copied().unwrap_or(5432);
    format!("{user}{host}:{port}/{}", config.get_dbname().unwrap_or_default())
}

/// A new, empty database on the server at `server` (an admin URL); its URL. For tests.
#[cfg(test)]
pub(crate) async fn test_database(server: &str) -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let name = format!("unit_{}_{}", std::process::id(), NEXT.fetch_add(1, Ordering::Relaxed));
    let admin = connect(server).await.unwrap();
    admin.client.batch_execute(&format!("CREATE DATABASE {name}")).await.unwrap();
    let mut url = url::Url::parse(server).unwrap();
    url.set_path(&name);
    url.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn descriptions_never_show_the_password() {
        let config: Config =
            "postgresql://feedmill:s3cret@db.example:5433/news?sslmode=disable".parse().unwrap();
        assert_eq!(describe(&config), "feedmill@db.example:5433/news");
        let error = tls::parse("postgresql://feedmill:s3cret@db.example:notaport/news").err().unwrap();
        assert!(!error.to_string().contains("s3cret"), "{error}");
    }
}
