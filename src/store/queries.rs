//! The store's operations: each is one read or one write transaction.

use std::collections::{HashMap, HashSet};

use rusqlite::{params, Connection, OptionalExtension};

use super::{Store, StoreError};
use crate::config::Source;
use crate::fetch::Validators;

/// An item a poll wants stored: new to this source (by GUID).
#[derive(Debug, Clone)]
pub struct Candidate {
    pub guid: String,
    pub canonical_link: Option<String>,
    pub link: Option<String>,
    pub title: String,
    pub author: Option<String>,
    pub published: Option<i64>,
    pub updated: Option<i64>,
    pub categories: Vec<String>,
    pub summary: Option<String>,
    pub content_html: Option<String>,
    pub content_text: Option<String>,
    pub extracted_by: String,
}

/// The result of a successful poll, committed together with its candidates.
#[derive(Debug, Clone, Default)]
pub struct PollSuccess {
    pub status: u16,
    pub feed_title: Option<String>,
    /// New validators and body hash; `None` keeps the stored ones (a 304, or a poll cut short).
    pub validators: Option<(Validators, String)>,
    pub next_poll_at: Option<i64>,
    /// No scheduled poll before this (the publisher's pace).
    pub not_before: Option<i64>,
    /// The configured URL and where it moved permanently.
    pub moved: Option<(String, String)>,
}

/// What the previous polls left for the next one.
#[derive(Debug, Clone, Default)]
pub struct PollState {
    pub validators: Validators,
    pub body_hash: Option<String>,
    pub not_before: Option<i64>,
    pub error_count: i64,
    pub moved_from: Option<String>,
    pub moved_to: Option<String>,
}

impl PollState {
    /// The state after [`Store::commit_poll`] stored `success` (mirrors its UPDATE), for callers
    /// that keep states in memory between polls.
    pub fn after_success(&mut self, success: &PollSuccess) {
        if let Some((validators, hash)) = &success.validators {
            self.validators = validators.clone();
            self.body_hash = Some(hash.clone());
        }
        self.not_before = success.not_before;
        self.error_count = 0;
        if let Some((from, to)) = &success.moved {
            self.moved_from = Some(from.clone());
            self.moved_to = Some(to.clone());
        }
    }

    /// The state after [`Store::record_failure`] (mirrors its UPDATE).
    pub fn after_failure(&mut self, retry_at: i64) {
        self.error_count += 1;
        self.not_before = Some(retry_at);
    }
}

/// What a commit did with the candidates.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CommitCounts {
    /// Stored as new items.
    pub new: usize,
    /// Already stored (same GUID from this source, or same canonical link from any source).
    pub duplicate: usize,
}

/// A source with its poll state.
#[derive(Debug, Clone, serde::Serialize)]
pub struct SourceRow {
    pub id: i64,
    pub name: String,
    pub url: String,
    pub title: Option<String>,
    pub last_poll_at: Option<i64>,
    pub last_success_at: Option<i64>,
    pub last_status: Option<i64>,
    pub last_error: Option<String>,
    pub error_count: i64,
    pub next_poll_at: Option<i64>,
    pub item_count: i64,
}

/// An item as published, with the source it came from.
#[derive(Debug, Clone)]
pub struct StoredItem {
    pub id: i64,
    pub link: Option<String>,
    pub title: String,
    pub author: Option<String>,
    pub published: Option<i64>,
    pub updated: Option<i64>,
    pub first_seen: i64,
    pub categories: Vec<String>,
    pub summary: Option<String>,
    pub content_html: Option<String>,
    pub source_name: String,
    pub source_title: Option<String>,
    pub source_url: String,
}

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

impl Store {
    /// Makes sure every configured source has a row (updating its URL) and returns name → id.
    /// Sources no longer configured keep their rows and items.
    pub async fn sync_sources(&self, sources: &[Source]) -> Result<HashMap<String, i64>, StoreError> {
        let sources: Vec<(String, String)> =
            sources.iter().map(|s| (s.name.clone(), s.url.to_string())).collect();
        self.write(move |conn| {
            let mut ids = HashMap::new();
            for (name, url) in sources {
                let id: i64 = conn.query_row(
                    "INSERT INTO sources (name, url) VALUES (?1, ?2)
                     ON CONFLICT(name) DO UPDATE SET url = excluded.url
                     RETURNING id",
                    params![name, url],
                    |row| row.get(0),
                )?;
                ids.insert(name, id);
            }
            Ok(ids)
        })
        .await
    }

    /// What the previous polls of every source left — validators, body hash, pacing, moves — by
    /// source id.
    pub async fn poll_states(&self) -> Result<HashMap<i64, PollState>, StoreError> {
        self.read(move |conn| {
            let mut query = conn.prepare_cached(
                "SELECT id, etag, last_modified, body_hash, not_before, error_count, moved_from, moved_to
                 FROM sources",
            )?;
            let rows = query.query_map([], |row| {
                Ok((
                    row.get(0)?,
                    PollState {
                        validators: Validators { etag: row.get(1)?, last_modified: row.get(2)? },
                        body_hash: row.get(3)?,
                        not_before: row.get(4)?,
                        error_count: row.get(5)?,
                        moved_from: row.get(6)?,
                        moved_to: row.get(7)?,
                    },
                ))
            })?;
            Ok(rows.collect::<Result<HashMap<_, _>, _>>()?)
        })
        .await
    }

    /// Which of these GUIDs this source has already delivered, and which canonical links any
    /// source has.
    pub async fn known(
        &self,
        source_id: i64,
        guids: Vec<String>,
        links: Vec<String>,
    ) -> Result<(HashSet<String>, HashSet<String>), StoreError> {
        self.read(move |conn| {
            let mut guid_query =
                conn.prepare_cached("SELECT 1 FROM item_guids WHERE source_id = ?1 AND guid = ?2")?;
            let mut known_guids = HashSet::new();
            for guid in guids {
                if guid_query.exists(params![source_id, guid])? {
                    known_guids.insert(guid);
                }
            }
            let mut link_query = conn.prepare_cached("SELECT 1 FROM items WHERE canonical_link = ?1")?;
            let mut known_links = HashSet::new();
            for link in links {
                if link_query.exists([&link])? {
                    known_links.insert(link);
                }
            }
            Ok((known_guids, known_links))
        })
        .await
    }

    /// Stores a poll's candidates and the source's new state in one transaction.
    pub async fn commit_poll(
        &self,
        source_id: i64,
        candidates: Vec<Candidate>,
        success: PollSuccess,
    ) -> Result<CommitCounts, StoreError> {
        self.write(move |conn| {
            let mut counts = CommitCounts::default();
            for candidate in &candidates {
                if insert_candidate(conn, source_id, candidate)? {
                    counts.new += 1;
                } else {
                    counts.duplicate += 1;
                }
            }
            let (etag, last_modified, body_hash) = match &success.validators {
                Some((v, hash)) => (v.etag.clone(), v.last_modified.clone(), Some(hash.clone())),
                None => (None, None, None),
            };
            conn.prepare_cached(
                "UPDATE sources SET
                    title = COALESCE(?2, title),
                    etag = CASE WHEN ?5 IS NOT NULL THEN ?3 ELSE etag END,
                    last_modified = CASE WHEN ?5 IS NOT NULL THEN ?4 ELSE last_modified END,
                    body_hash = COALESCE(?5, body_hash),
                    last_poll_at = ?6, last_success_at = ?6, last_status = ?7,
                    last_error = NULL, error_count = 0, next_poll_at = ?8, not_before = ?9
                 WHERE id = ?1",
            )?
            .execute(params![
                source_id,
                success.feed_title,
                etag,
                last_modified,
                body_hash,
                now(),
                success.status,
                success.next_poll_at,
                success.not_before
            ])?;
            if let Some((from, to)) = &success.moved {
                conn.execute(
                    "UPDATE sources SET moved_from = ?2, moved_to = ?3 WHERE id = ?1",
                    params![source_id, from, to],
                )?;
            }
            Ok(counts)
        })
        .await
    }

    /// Records a failed poll and when to try again; stored items are untouched.
    pub async fn record_failure(
        &self,
        source_id: i64,
        status: Option<u16>,
        error: String,
        retry_at: i64,
    ) -> Result<(), StoreError> {
        self.write(move |conn| {
            conn.execute(
                "UPDATE sources SET last_poll_at = ?2, last_status = ?3, last_error = ?4,
                    error_count = error_count + 1, next_poll_at = ?5, not_before = ?5
                 WHERE id = ?1",
                params![source_id, now(), status, error, retry_at],
            )?;
            Ok(())
        })
        .await
    }

    /// The newest items across all sources, newest first.
    pub async fn latest_items(&self, limit: usize) -> Result<Vec<StoredItem>, StoreError> {
        self.read(move |conn| {
            let mut query = conn.prepare_cached(
                "SELECT i.id, i.link, i.title, i.author, i.published, i.updated, i.first_seen,
                        i.categories, i.summary, i.content_html, s.name, s.title, s.url
                 FROM items i JOIN sources s ON s.id = i.source_id
                 ORDER BY COALESCE(i.published, i.first_seen) DESC, i.id DESC
                 LIMIT ?1",
            )?;
            let rows = query.query_map([limit as i64], |row| {
                Ok((
                    StoredItem {
                        id: row.get(0)?,
                        link: row.get(1)?,
                        title: row.get(2)?,
                        author: row.get(3)?,
                        published: row.get(4)?,
                        updated: row.get(5)?,
                        first_seen: row.get(6)?,
                        categories: Vec::new(),
                        summary: row.get(8)?,
                        content_html: row.get(9)?,
                        source_name: row.get(10)?,
                        source_title: row.get(11)?,
                        source_url: row.get(12)?,
                    },
                    row.get::<_, String>(7)?,
                ))
            })?;
            let mut items = Vec::new();
            for row in rows {
                let (mut item, categories) = row?;
                item.categories = serde_json::from_str(&categories)?;
                items.push(item);
            }
            Ok(items)
        })
        .await
    }

    /// Every source with its poll state and item count, by name.
    pub async fn sources(&self) -> Result<Vec<SourceRow>, StoreError> {
        self.read(|conn| {
            let mut query = conn.prepare_cached(
                "SELECT s.id, s.name, s.url, s.title, s.last_poll_at, s.last_success_at, s.last_status,
                        s.last_error, s.error_count, s.next_poll_at,
                        (SELECT COUNT(*) FROM items i WHERE i.source_id = s.id)
                 FROM sources s ORDER BY s.name",
            )?;
            let rows = query.query_map([], |row| {
                Ok(SourceRow {
                    id: row.get(0)?,
                    name: row.get(1)?,
                    url: row.get(2)?,
                    title: row.get(3)?,
                    last_poll_at: row.get(4)?,
                    last_success_at: row.get(5)?,
                    last_status: row.get(6)?,
                    last_error: row.get(7)?,
                    error_count: row.get(8)?,
                    next_poll_at: row.get(9)?,
                    item_count: row.get(10)?,
                })
            })?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        })
        .await
    }
}

/// Inserts one candidate; `false` when it was already stored (then only its GUID is recorded).
fn insert_candidate(conn: &Connection, source_id: i64, c: &Candidate) -> Result<bool, StoreError> {
    let known_guid = conn
        .prepare_cached("SELECT 1 FROM item_guids WHERE source_id = ?1 AND guid = ?2")?
        .exists(params![source_id, c.guid])?;
    if known_guid {
        return Ok(false);
    }
    let existing: Option<i64> = match &c.canonical_link {
        Some(link) => conn
            .prepare_cached("SELECT id FROM items WHERE canonical_link = ?1")?
            .query_row([link], |row| row.get(0))
            .optional()?,
        None => None,
    };
    let (item_id, is_new) = match existing {
        Some(id) => (id, false),
        None => {
            let id = conn
                .prepare_cached(
                    "INSERT INTO items (source_id, canonical_link, link, title, author, published, updated,
                        categories, summary, content_html, content_text, extracted_by, first_seen)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)
                     RETURNING id",
                )?
                .query_row(
                    params![
                        source_id,
                        c.canonical_link,
                        c.link,
                        c.title,
                        c.author,
                        c.published,
                        c.updated,
                        serde_json::to_string(&c.categories)?,
                        c.summary,
                        c.content_html,
                        c.content_text,
                        c.extracted_by,
                        now()
                    ],
                    |row| row.get(0),
                )?;
            (id, true)
        }
    };
    conn.prepare_cached("INSERT INTO item_guids (source_id, guid, item_id) VALUES (?1, ?2, ?3)")?
        .execute(params![source_id, c.guid, item_id])?;
    Ok(is_new)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Schedule;

    fn source(name: &str) -> Source {
        Source {
            name: name.into(),
            url: url::Url::parse(&format!("https://{name}.example/rss")).unwrap(),
            schedule: Schedule::Every(std::time::Duration::from_secs(60)),
            full_text: false,
            tags: vec![],
        }
    }

    fn candidate(guid: &str, link: &str, published: i64) -> Candidate {
        Candidate {
            guid: guid.into(),
            canonical_link: Some(link.into()),
            link: Some(link.into()),
            title: format!("title {guid}"),
            author: None,
            published: Some(published),
            updated: None,
            categories: vec!["World".into()],
            summary: None,
            content_html: Some("<p>x</p>".into()),
            content_text: Some("x".into()),
            extracted_by: "feed".into(),
        }
    }

    async fn store() -> (tempfile::TempDir, Store, HashMap<String, i64>) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("sub/dir/test.db")).unwrap();
        let ids = store.sync_sources(&[source("a"), source("b")]).await.unwrap();
        (dir, store, ids)
    }

    #[tokio::test]
    async fn guid_and_canonical_link_deduplicate() {
        let (_dir, store, ids) = store().await;
        let ok = PollSuccess { status: 200, ..Default::default() };
        let first = vec![
            candidate("1", "https://e.com/1", 10),
            candidate("1", "https://e.com/1", 10),
            candidate("2", "https://e.com/2", 20),
        ];
        let counts = store.commit_poll(ids["a"], first, ok.clone()).await.unwrap();
        assert_eq!(counts, CommitCounts { new: 2, duplicate: 1 });
        // Another source announcing the same link: one item, and its GUID is remembered.
        let counts =
            store.commit_poll(ids["b"], vec![candidate("b-9", "https://e.com/2", 20)], ok).await.unwrap();
        assert_eq!(counts, CommitCounts { new: 0, duplicate: 1 });
        let (guids, links) = store
            .known(
                ids["b"],
                vec!["b-9".into(), "b-10".into()],
                vec!["https://e.com/1".into(), "https://e.com/3".into()],
            )
            .await
            .unwrap();
        assert_eq!(guids, HashSet::from(["b-9".to_owned()]));
        assert_eq!(links, HashSet::from(["https://e.com/1".to_owned()]));
        let items = store.latest_items(10).await.unwrap();
        assert_eq!(items.iter().map(|i| i.title.as_str()).collect::<Vec<_>>(), vec!["title 2", "title 1"]);
        assert_eq!(items[0].categories, vec!["World"]);
        assert_eq!(store.latest_items(1).await.unwrap().len(), 1);
    }

    #[tokio::test]
    async fn failures_are_recorded_without_touching_items() {
        let (_dir, store, ids) = store().await;
        let success = PollSuccess {
            status: 200,
            validators: Some((Validators { etag: Some("\"e1\"".into()), last_modified: None }, "h1".into())),
            ..Default::default()
        };
        store.commit_poll(ids["a"], vec![candidate("1", "https://e.com/1", 10)], success).await.unwrap();
        store.record_failure(ids["a"], Some(503), "HTTP 503".into(), 100).await.unwrap();
        store.record_failure(ids["a"], None, "timed out".into(), 200).await.unwrap();
        let rows = store.sources().await.unwrap();
        let a = rows.iter().find(|r| r.name == "a").unwrap();
        assert_eq!((a.error_count, a.last_error.as_deref(), a.item_count), (2, Some("timed out"), 1));
        let state = store.poll_states().await.unwrap().remove(&ids["a"]).unwrap();
        assert_eq!(
            (state.error_count, state.not_before, state.body_hash.as_deref()),
            (2, Some(200), Some("h1"))
        );
        // A 304 keeps the validators and clears the error.
        store.commit_poll(ids["a"], vec![], PollSuccess { status: 304, ..Default::default() }).await.unwrap();
        let a = store.sources().await.unwrap().into_iter().find(|r| r.name == "a").unwrap();
        assert_eq!((a.error_count, a.last_status), (0, Some(304)));
        let state = store.poll_states().await.unwrap().remove(&ids["a"]).unwrap();
        assert_eq!((state.validators.etag.as_deref(), state.not_before), (Some("\"e1\""), None));
    }

    #[tokio::test]
    async fn reopening_keeps_data_and_schema() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db.sqlite");
        {
            let store = Store::open(&path).unwrap();
            let ids = store.sync_sources(&[source("a")]).await.unwrap();
            let ok = PollSuccess { status: 200, ..Default::default() };
            store.commit_poll(ids["a"], vec![candidate("1", "https://e.com/1", 1)], ok).await.unwrap();
            store.flush().await.unwrap();
        }
        let store = Store::open(&path).unwrap();
        assert_eq!(store.latest_items(10).await.unwrap().len(), 1);
        let journal: String =
            store.read(|c| Ok(c.query_row("PRAGMA journal_mode", [], |r| r.get(0))?)).await.unwrap();
        assert_eq!(journal, "wal");
    }
}
