//! The PostgreSQL store's schema on a real server: migrations applied once and recorded, nodes
//! starting together, a database from a newer feedmill refused, and the same tables and columns
//! as the SQLite schema. Skipped (with a message) where PostgreSQL is not installed.

mod common;

use std::collections::BTreeSet;

use common::postgres::Postgres;
use feedmill::store::postgres::{connect, migrate, PostgresError};

#[tokio::test]
async fn migrations_apply_once_and_are_recorded() {
    let Some(server) = Postgres::start() else { return };
    let url = server.create_database("feedmill");
    let mut database = connect(&url).await.unwrap();
    assert_eq!(migrate(&mut database).await.unwrap(), 1);
    assert_eq!(migrate(&mut database).await.unwrap(), 0, "a second start applies nothing");
    let recorded = database.client.query("SELECT version, name FROM feedmill_migrations", &[]).await.unwrap();
    let recorded: Vec<(i32, String)> = recorded.iter().map(|r| (r.get(0), r.get(1))).collect();
    assert_eq!(recorded, [(1, "0001_schema".to_owned())]);
    // The schema takes what the store writes: a source, a story and an item in it.
    database
        .client
        .batch_execute(
            "INSERT INTO sources (name, url) VALUES ('unn', 'https://unn.ua/rss/news_uk.xml');
             INSERT INTO stories DEFAULT VALUES;
             INSERT INTO items (source_id, canonical_link, title, extracted_by, first_seen, bands, story_id)
                 VALUES (1, 'https://unn.ua/news/1', 'News', 'generic', 1765000000, '\\x0102', 1);",
        )
        .await
        .unwrap();
    let duplicate = database
        .client
        .execute(
            "INSERT INTO items (source_id, canonical_link, title, extracted_by, first_seen) \
             VALUES (1, 'https://unn.ua/news/1', 'Again', 'generic', 1765000001)",
            &[],
        )
        .await;
    assert!(duplicate.is_err(), "one canonical link is stored once");
}

#[tokio::test]
async fn nodes_starting_together_migrate_once() {
    let Some(server) = Postgres::start() else { return };
    let url = server.create_database("feedmill");
    let (mut first, mut second, mut third) =
        (connect(&url).await.unwrap(), connect(&url).await.unwrap(), connect(&url).await.unwrap());
    let (a, b, c) = tokio::join!(migrate(&mut first), migrate(&mut second), migrate(&mut third));
    let mut applied = [a.unwrap(), b.unwrap(), c.unwrap()];
    applied.sort();
    assert_eq!(applied, [0, 0, 1], "exactly one node migrates");
}

#[tokio::test]
async fn a_database_migrated_by_a_newer_feedmill_is_refused() {
    let Some(server) = Postgres::start() else { return };
    server.create_database("feedmill");
    // trust authentication ignores the password; it must still never reach a message.
    let url = format!("postgresql://feedmill:hunter2@127.0.0.1:{}/feedmill", server.port);
    let mut database = connect(&url).await.unwrap();
    migrate(&mut database).await.unwrap();
    database
        .client
        .execute("INSERT INTO feedmill_migrations (version, name) VALUES (99, 'from the future')", &[])
        .await
        .unwrap();
    let error = migrate(&mut database).await.unwrap_err();
    assert!(matches!(error, PostgresError::Newer { found: 99, known: 1, .. }), "{error}");
    let message = error.to_string();
    assert!(message.contains(&format!("feedmill@127.0.0.1:{}/feedmill", server.port)), "{message}");
    assert!(!message.contains("hunter2"), "{message}");
    // Nothing was touched: the version from the future is still recorded.
    let count: i64 =
        database.client.query_one("SELECT COUNT(*) FROM feedmill_migrations", &[]).await.unwrap().get(0);
    assert_eq!(count, 2);

    let refused = connect(&server.url("absent")).await.err().expect("no such database");
    assert!(refused.to_string().contains("/absent: cannot connect"), "{refused}");
}

#[tokio::test]
async fn the_schema_has_the_sqlite_tables_and_columns() {
    let Some(server) = Postgres::start() else { return };
    let mut database = connect(&server.create_database("feedmill")).await.unwrap();
    migrate(&mut database).await.unwrap();
    let rows = database
        .client
        .query(
            "SELECT table_name::TEXT, column_name::TEXT FROM information_schema.columns \
             WHERE table_schema = 'public' AND table_name <> 'feedmill_migrations'",
            &[],
        )
        .await
        .unwrap();
    let postgres: BTreeSet<(String, String)> = rows.iter().map(|r| (r.get(0), r.get(1))).collect();

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("feedmill.db");
    drop(feedmill::store::Store::open(&path).unwrap());
    let sqlite = rusqlite::Connection::open(&path).unwrap();
    let mut statement = sqlite
        .prepare(
            "SELECT m.name, p.name FROM sqlite_schema m, pragma_table_info(m.name) p \
             WHERE m.type = 'table' AND m.name NOT LIKE 'sqlite_%'",
        )
        .unwrap();
    let sqlite: BTreeSet<(String, String)> =
        statement.query_map([], |r| Ok((r.get(0)?, r.get(1)?))).unwrap().map(Result::unwrap).collect();
    assert_eq!(postgres, sqlite, "a SQLite migration needs its PostgreSQL counterpart (migrations/postgres)");
}
