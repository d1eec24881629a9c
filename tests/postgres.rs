//! The PostgreSQL store's schema on a real server: migrations applied once and recorded, nodes
//! starting together, a database from a newer feedmill refused, the same tables and columns as
//! the SQLite schema, and `feedmill migrate --to` copying a polled SQLite database row for row.
//! Skipped (with a message) where PostgreSQL is not installed.

mod common;

use std::collections::BTreeSet;

use common::postgres::Postgres;
use common::{feedmill, Fixture, Workspace};
use feedmill::store::postgres::{connect, migrate, Database, PostgresError};

/// The files in migrations/postgres.
const MIGRATIONS: usize = 2;

#[tokio::test]
async fn migrations_apply_once_and_are_recorded() {
    let Some(server) = Postgres::start() else { return };
    let url = server.create_database("feedmill");
    let mut database = connect(&url).await.unwrap();
    assert_eq!(migrate(&mut database).await.unwrap(), MIGRATIONS);
    assert_eq!(migrate(&mut database).await.unwrap(), 0, "a second start applies nothing");
    let recorded = database
        .client
        .query("SELECT version, name FROM feedmill_migrations ORDER BY version", &[])
        .await
        .unwrap();
    let recorded: Vec<(i32, String)> = recorded.iter().map(|r| (r.get(0), r.get(1))).collect();
    assert_eq!(recorded, [(1, "0001_schema".to_owned()), (2, "0002_cluster".to_owned())]);
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
    assert_eq!(applied, [0, 0, MIGRATIONS], "exactly one node migrates");
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
    assert!(matches!(error, PostgresError::Newer { found: 99, known: MIGRATIONS, .. }), "{error}");
    let message = error.to_string();
    assert!(message.contains(&format!("feedmill@127.0.0.1:{}/feedmill", server.port)), "{message}");
    assert!(!message.contains("hunter2"), "{message}");
    // Nothing was touched: the version from the future is still recorded.
    let count: i64 =
        database.client.query_one("SELECT COUNT(*) FROM feedmill_migrations", &[]).await.unwrap().get(0);
    assert_eq!(count, MIGRATIONS as i64 + 1);

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

/// Every row of every table, each value as text (blobs as lowercase hex, NULL as None), sorted.
type Dump = Vec<(String, Vec<Vec<Option<String>>>)>;

/// Every copied table's rows (not the cluster's passing state, which is not copied).
async fn dump_postgres(client: &tokio_postgres::Client) -> Dump {
    let tables = client
        .query(
            "SELECT table_name::TEXT FROM information_schema.tables WHERE table_schema = 'public' \
             AND table_name NOT IN ('feedmill_migrations', 'feed_version', 'host_slots', 'host_turns', \
             'page_fetches') ORDER BY 1",
            &[],
        )
        .await
        .unwrap();
    let mut dump = Vec::new();
    for table in tables.iter().map(|r| r.get::<_, String>(0)) {
        let columns = client
            .query(
                "SELECT column_name::TEXT, data_type::TEXT FROM information_schema.columns \
                 WHERE table_name = $1 ORDER BY column_name",
                &[&table],
            )
            .await
            .unwrap();
        let values: Vec<String> = columns
            .iter()
            .map(|c| match c.get::<_, &str>(1) {
                "bytea" => format!("encode({}, 'hex')", c.get::<_, &str>(0)),
                _ => format!("{}::TEXT", c.get::<_, &str>(0)),
            })
            .collect();
        let rows = client.query(&format!("SELECT {} FROM {table}", values.join(", ")), &[]).await.unwrap();
        let mut rows: Vec<Vec<Option<String>>> =
            rows.iter().map(|r| (0..r.len()).map(|i| r.get(i)).collect()).collect();
        rows.sort();
        dump.push((table, rows));
    }
    dump
}

fn dump_sqlite(path: &std::path::Path, tables: &[String]) -> Dump {
    let db = rusqlite::Connection::open(path).unwrap();
    tables
        .iter()
        .map(|table| {
            let mut columns: Vec<String> = db
                .prepare(&format!("SELECT name FROM pragma_table_info('{table}')"))
                .unwrap()
                .query_map([], |r| r.get(0))
                .unwrap()
                .map(Result::unwrap)
                .collect();
            columns.sort();
            let values: Vec<String> = columns
                .iter()
                .map(|c| {
                    format!("CASE WHEN typeof({c}) = 'blob' THEN lower(hex({c})) ELSE CAST({c} AS TEXT) END")
                })
                .collect();
            let mut statement = db.prepare(&format!("SELECT {} FROM {table}", values.join(", "))).unwrap();
            let mut rows: Vec<Vec<Option<String>>> = statement
                .query_map([], |r| (0..columns.len()).map(|i| r.get(i)).collect())
                .unwrap()
                .map(Result::unwrap)
                .collect();
            rows.sort();
            (table.clone(), rows)
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn migrate_copies_a_polled_database_row_for_row_once() {
    let Some(server) = Postgres::start() else { return };
    let url = server.create_database("copy");
    // A SQLite database as polls leave it: sources with validators and an error, items with full
    // text, GUIDs, tags, stories and near-duplicate data; and retention's tombstones.
    let fixture = Fixture::news_web().start();
    let work = Workspace::new();
    let config = work.sqlite_config(&format!(
        "[storage]\npath = \"data/feedmill.db\"\n[fetch]\nproxy = \"{}\"\n[defaults]\nfull_text = true\n\
         [[sources]]\nname = \"unn-uk\"\nurl = \"http://unn.ua/rss/news_uk.xml\"\n\
         [[sources]]\nname = \"unn-en\"\nurl = \"http://unn.ua/en/rss/world_en.xml\"\ntags = [\"en\"]\n\
         [[sources]]\nname = \"example\"\nurl = \"http://news.example/atom.xml\"\n\
         [[sources]]\nname = \"broken\"\nurl = \"http://broken.example/feed.xml\"\n",
        fixture.proxy_url()
    ));
    let run = |args: &[&str]| {
        feedmill().current_dir(work.path("")).args(args).arg("-c").arg(&config).output().unwrap()
    };
    run(&["poll"]);
    let sqlite = work.path("data/feedmill.db");
    rusqlite::Connection::open(&sqlite)
        .unwrap()
        .execute_batch(
            "INSERT INTO tombstone_guids VALUES (1, 'removed-guid', 1765000000);
             INSERT INTO tombstone_links VALUES ('https://unn.ua/news/removed', 1765000000);",
        )
        .unwrap();

    let output = run(&["migrate", "--to", &url]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stdout}{}", String::from_utf8_lossy(&output.stderr));
    let database = connect(&url).await.unwrap();
    let postgres = dump_postgres(&database.client).await;
    let tables: Vec<String> = postgres.iter().map(|(t, _)| t.clone()).collect();
    assert_eq!(postgres, dump_sqlite(&sqlite, &tables), "every row of every table, unchanged");
    let rows = |table: &str| postgres.iter().find(|(t, _)| t == table).map_or(0, |(_, rows)| rows.len());
    for table in
        ["sources", "stories", "items", "item_guids", "item_tags", "tombstone_guids", "tombstone_links"]
    {
        assert!(rows(table) > 0, "{table} has rows to copy");
    }
    let items = rows("items");
    assert!(
        stdout.contains(&format!("items            SQLite {items:>9}  PostgreSQL {items:>9}")),
        "{stdout}"
    );
    assert!(!stdout.contains(&url), "the URL is not printed: {stdout}");

    // Ids continue after the copied ones.
    let next: i64 = database
        .client
        .query_one("INSERT INTO stories DEFAULT VALUES RETURNING id", &[])
        .await
        .unwrap()
        .get(0);
    let highest: i64 = database
        .client
        .query_one("SELECT MAX(id) FROM stories WHERE id <> $1", &[&next])
        .await
        .unwrap()
        .get(0);
    assert!(next > highest, "a new story id {next} after the copied {highest}");
    database.client.execute("DELETE FROM stories WHERE id = $1", &[&next]).await.unwrap();

    // A second copy is refused and changes nothing.
    let again = run(&["migrate", "--to", &url]);
    let stderr = String::from_utf8_lossy(&again.stderr);
    assert!(!again.status.success());
    assert!(stderr.contains("not empty (sources has rows)"), "{stderr}");
    assert_eq!(dump_postgres(&database.client).await, postgres);
}

/// Whether the session is encrypted, as the server sees it.
async fn encrypted(database: &Database) -> bool {
    let query = "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()";
    database.client.query_one(query, &[]).await.unwrap().get(0)
}

#[tokio::test]
async fn tls_is_used_and_verified_as_sslmode_asks() {
    let Some(server) = Postgres::start_with_tls() else { return };
    server.create_database("feedmill");
    let url =
        |host: &str, query: &str| format!("postgresql://feedmill@{host}:{}/feedmill?{query}", server.port);
    let trusted = format!("sslmode=verify-full&sslrootcert={}", server.ca_file());
    for host in ["127.0.0.1", "localhost"] {
        let database = connect(&url(host, &trusted)).await.unwrap();
        assert!(encrypted(&database).await, "verify-full with the test CA, {host}");
    }
    // The test CA is none of the public roots: verify-full without it refuses the server.
    let refused = connect(&url("127.0.0.1", "sslmode=verify-full")).await.err().expect("an unknown issuer");
    let message = refused.to_string();
    assert!(message.contains("cannot connect") && message.contains("feedmill@127.0.0.1"), "{message}");
    // require and prefer (the default) encrypt without verifying, as in libpq; disable does not.
    assert!(encrypted(&connect(&url("127.0.0.1", "sslmode=require")).await.unwrap()).await);
    assert!(encrypted(&connect(&url("127.0.0.1", "application_name=feedmill")).await.unwrap()).await);
    assert!(!encrypted(&connect(&url("127.0.0.1", "sslmode=disable")).await.unwrap()).await);
    // A root certificate that is not there is named.
    let missing =
        connect(&url("127.0.0.1", "sslmode=verify-full&sslrootcert=/nonexistent/ca.pem")).await.err();
    let message = missing.expect("no CA file").to_string();
    assert!(message.contains("TLS: sslrootcert /nonexistent/ca.pem"), "{message}");
}

#[tokio::test]
async fn require_refuses_a_server_without_tls() {
    let Some(server) = Postgres::start() else { return };
    server.create_database("feedmill");
    let required = format!("{}?sslmode=require", server.url("feedmill"));
    assert!(connect(&required).await.is_err(), "sslmode=require must not fall back to plain text");
    let preferred = connect(&server.url("feedmill")).await.unwrap();
    assert!(!encrypted(&preferred).await, "prefer falls back to plain text");
}
