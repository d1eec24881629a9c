//! `[storage]`: which database keeps the items — a SQLite file (the default) or a PostgreSQL
//! database shared by several nodes — and how long items are kept.

use std::fmt;
use std::path::PathBuf;

use serde::Deserialize;

/// The variable that names the PostgreSQL database instead of the file's keys.
pub const DATABASE_URL_VAR: &str = "FEEDMILL_DATABASE_URL";

#[derive(Debug, Clone)]
pub struct StorageConfig {
    /// The SQLite file; its folder is created if missing. Not used when `database` is set.
    pub path: PathBuf,
    /// The PostgreSQL database (`database_url`, `database_url_file` or `$FEEDMILL_DATABASE_URL`).
    pub database: Option<DatabaseUrl>,
    /// Items first seen longer ago than this are removed (0: kept forever).
    pub max_age_days: u32,
    /// Each source keeps at most this many items, its newest (0: no limit).
    pub max_items_per_source: usize,
}

impl Default for StorageConfig {
    fn default() -> Self {
        Self {
            path: PathBuf::from("data/feedmill.db"),
            database: None,
            max_age_days: 90,
            max_items_per_source: 10_000,
        }
    }
}

impl StorageConfig {
    /// The database as messages and the status page name it: the SQLite file, or
    /// `user@host:port/name` (never the password).
    pub fn describe(&self) -> String {
        match &self.database {
            Some(database) => format!("PostgreSQL {database}"),
            None => format!("SQLite {}", self.path.display()),
        }
    }
}

/// `[storage]` as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct StorageToml {
    path: Option<PathBuf>,
    database_url: Option<String>,
    database_url_file: Option<PathBuf>,
    max_age_days: Option<u32>,
    max_items_per_source: Option<usize>,
}

/// A PostgreSQL database URL. It may hold the password, so it is never shown: `Debug` and
/// `Display` print the database as `user@host:port/name`.
#[derive(Clone, PartialEq, Eq)]
pub struct DatabaseUrl {
    url: String,
    shown: String,
}

impl DatabaseUrl {
    /// Checks the URL's syntax (libpq URL or key=value, `sslmode`).
    pub fn new(url: &str) -> Result<DatabaseUrl, String> {
        let shown = crate::store::postgres::describe_url(url).map_err(|e| e.to_string())?;
        Ok(DatabaseUrl { url: url.to_owned(), shown })
    }

    /// The URL itself, password included: for connecting, never for a message.
    pub fn secret(&self) -> &str {
        &self.url
    }
}

impl fmt::Display for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.shown)
    }
}

impl fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DatabaseUrl({})", self.shown)
    }
}

/// Resolves `[storage]`: `env_url` is `$FEEDMILL_DATABASE_URL`, which stands in for the file's
/// `database_url`/`database_url_file`. A SQLite `path` and a database URL together are an error,
/// as are `database_url` and `database_url_file` together. Errors are (key, message).
pub(super) fn resolve(raw: StorageToml, env_url: Option<String>) -> Result<StorageConfig, (String, String)> {
    let defaults = StorageConfig::default();
    let err = |key: &str, message: String| (format!("storage.{key}"), message);
    let (key, url) = match (env_url.filter(|u| !u.trim().is_empty()), raw.database_url, raw.database_url_file)
    {
        (Some(url), _, _) => (format!("${DATABASE_URL_VAR}"), Some(url)),
        (None, Some(_), Some(_)) => {
            return Err(err("database_url", "set either database_url or database_url_file, not both".into()))
        }
        (None, Some(url), None) => ("storage.database_url".to_owned(), Some(url)),
        (None, None, Some(file)) => {
            let text = std::fs::read_to_string(&file)
                .map_err(|e| err("database_url_file", format!("{}: cannot read: {e}", file.display())))?;
            ("storage.database_url_file".to_owned(), Some(text.trim().to_owned()))
        }
        (None, None, None) => (String::new(), None),
    };
    let database = match url {
        Some(url) => {
            if raw.path.is_some() {
                return Err(err(
                    "path",
                    format!("both a SQLite file (path) and a PostgreSQL database ({key}) are set; keep one"),
                ));
            }
            Some(DatabaseUrl::new(url.trim()).map_err(|message| (key.clone(), message))?)
        }
        None => None,
    };
    Ok(StorageConfig {
        path: raw.path.unwrap_or(defaults.path),
        database,
        max_age_days: raw.max_age_days.unwrap_or(defaults.max_age_days),
        max_items_per_source: raw.max_items_per_source.unwrap_or(defaults.max_items_per_source),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(text: &str) -> StorageToml {
        toml::from_str(text).unwrap()
    }

    #[test]
    fn a_database_url_comes_from_the_file_a_credential_or_the_environment() {
        let url = "postgresql://feedmill:s3cret@db.example:5433/news";
        let storage = resolve(raw(&format!("database_url = \"{url}\"")), None).unwrap();
        let database = storage.database.unwrap();
        assert_eq!(database.secret(), url);
        assert_eq!(database.to_string(), "feedmill@db.example:5433/news");
        assert!(!format!("{database:?}").contains("s3cret"));

        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("db");
        std::fs::write(&file, format!("{url}\n")).unwrap();
        let storage =
            resolve(raw(&format!("database_url_file = {:?}", file.display().to_string())), None).unwrap();
        assert_eq!(storage.database.unwrap().secret(), url, "read from the file, trailing newline dropped");

        // The environment stands in for the file's keys.
        let storage = resolve(raw("database_url = \"postgresql://other/x\""), Some(url.into())).unwrap();
        assert_eq!(storage.database.unwrap().secret(), url);
        assert!(resolve(raw(""), None).unwrap().database.is_none(), "SQLite by default");
    }

    #[test]
    fn conflicting_or_bad_settings_are_named_without_the_password() {
        let url = "postgresql://feedmill:s3cret@db.example/news";
        let (key, message) =
            resolve(raw(&format!("path = \"x.db\"\ndatabase_url = \"{url}\"")), None).unwrap_err();
        assert_eq!(key, "storage.path");
        assert!(message.contains("keep one") && !message.contains("s3cret"), "{message}");
        let (key, _) = resolve(raw("path = \"x.db\""), Some(url.into())).unwrap_err();
        assert_eq!(key, "storage.path", "a path and $FEEDMILL_DATABASE_URL");
        let (key, _) =
            resolve(raw(&format!("database_url = \"{url}\"\ndatabase_url_file = \"/f\"")), None).unwrap_err();
        assert_eq!(key, "storage.database_url");
        let (key, message) = resolve(raw("database_url_file = \"/nonexistent/db\""), None).unwrap_err();
        assert_eq!(key, "storage.database_url_file");
        assert!(message.contains("/nonexistent/db: cannot read"), "{message}");
        let (key, message) = resolve(
            raw("database_url = \"postgresql://feedmill:s3cret@db.example/news?sslmode=maybe\""),
            None,
        )
        .unwrap_err();
        assert_eq!(key, "storage.database_url");
        assert!(message.contains("sslmode `maybe`") && !message.contains("s3cret"), "{message}");
    }
}
