//! The store's operations: each is one read or one write transaction.

use std::collections::{HashMap, HashSet};

use std::sync::Arc;

use super::ingest::store_poll;
use super::sql::{values, Conn, Row};
use super::stories::{self, StoryRef, Translation};
use super::{Store, StoreError};
use crate::config::Source;
use crate::dedup::index::BandIndex;
use crate::dedup::near;
use crate::dedup::Edition;
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
    /// Normalized ([`crate::language::normalize`]): the page's, else the feed's.
    pub language: Option<String>,
    /// The other language editions its page declares, and the article it cites (canonical links,
    /// never its own).
    pub editions: Vec<Edition>,
    /// Failed its source's filter: stored so it is not fetched again, never published.
    pub hidden: bool,
    /// The body's fingerprint and LSH bands ([`near::Signature::of`] of `content_text`),
    /// computed before the write; `None` for bodies too short to compare.
    pub signature: Option<near::Signature>,
    /// Hash of what the feed said about the item (title, text): when it changes for a known
    /// GUID, the item was updated.
    pub feed_hash: String,
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

/// The columns of `sources` a [`PollState`] is read from, in [`PollState::from_row`]'s order.
pub(super) const POLL_STATE_COLUMNS: &str =
    "etag, last_modified, body_hash, not_before, error_count, moved_from, moved_to";

impl PollState {
    /// The state in `row`'s columns from `first` on, selected as [`POLL_STATE_COLUMNS`].
    pub(super) fn from_row(row: &Row, first: usize) -> Result<PollState, StoreError> {
        Ok(PollState {
            validators: Validators { etag: row.get(first)?, last_modified: row.get(first + 1)? },
            body_hash: row.get(first + 2)?,
            not_before: row.get(first + 3)?,
            error_count: row.get(first + 4)?,
            moved_from: row.get(first + 5)?,
            moved_to: row.get(first + 6)?,
        })
    }

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
    /// Stored as new published items.
    pub new: usize,
    /// Already stored (same GUID from this source, or same canonical link from any source).
    pub duplicate: usize,
    /// Stored, but merged into another source's report of the same story (same body, or a
    /// near-duplicate).
    pub merged: usize,
    /// Known items whose title or body changed.
    pub updated: usize,
    /// Stored hidden: they failed the source's filter.
    pub filtered: usize,
}

/// What a retention pass did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Retention {
    /// Items removed (tombstones keep them from coming back).
    pub removed: usize,
}

/// Which items a feed shows.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum FeedScope {
    /// Every story once: the published item of each cluster.
    All,
    /// Everything one source delivered (by source name), merged or not.
    Source(String),
    /// Stories carrying this tag, exactly.
    Tag(String),
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
    /// No scheduled poll before this (backoff, Retry-After, the publisher's pace).
    pub not_before: Option<i64>,
    /// When the current run of failures began; `None` while healthy.
    pub failing_since: Option<i64>,
    /// Items first seen per day, the last 14 days, oldest first (today last).
    pub items_per_day: Vec<i64>,
    /// Items first seen in the last 24 hours.
    pub items_24h: i64,
    /// The node that recorded its last poll.
    pub last_node: Option<String>,
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
    pub content_text: Option<String>,
    /// When the source last changed it, if ever.
    pub changed_at: Option<i64>,
    pub source_name: String,
    pub source_title: Option<String>,
    pub source_url: String,
    pub language: Option<String>,
    /// The story this item stands for, in the feeds that show each story once (`None` in a
    /// source's own feed, where every item is an entry of its own).
    pub story: Option<StoryRef>,
    /// Other sources' reports of the same story, in its language.
    pub related: Vec<Related>,
    /// The story's editions in other languages.
    pub translations: Vec<Translation>,
}

impl StoredItem {
    /// Where the item sits in a feed's order (newest first): a page that ends with it continues
    /// `before` this.
    pub fn cursor(&self) -> (i64, i64) {
        (self.published.unwrap_or(self.first_seen), self.id)
    }
}

/// Another source's report of a story.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Related {
    pub source_title: String,
    pub link: Option<String>,
}

pub(super) fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

impl Store {
    /// Makes sure every configured source has a row (updating its URL and priority) and returns
    /// name → id. Sources no longer configured keep their rows and items. Every story's
    /// published report is chosen again, as priorities or preferred languages may have changed.
    pub async fn sync_sources(&self, sources: &[Source]) -> Result<HashMap<String, i64>, StoreError> {
        let sources: Vec<(String, String, i64)> =
            sources.iter().map(|s| (s.name.clone(), s.url.to_string(), s.priority)).collect();
        let languages = Arc::clone(&self.dedup.languages);
        let (ids, changed) = self
            .write(move |conn| {
                // Stories are chosen again below: the dedup lock first, as every item write takes it.
                conn.lock_for_dedup()?;
                let mut stored = HashMap::new();
                for row in conn.query("SELECT name, id, url, priority FROM sources", &[])? {
                    stored.insert(
                        row.get::<String>(0)?,
                        (row.get::<i64>(1)?, row.get::<String>(2)?, row.get::<i64>(3)?),
                    );
                }
                let mut ids = HashMap::new();
                for (name, url, priority) in sources {
                    // Unchanged rows are not written: nodes starting together do not wait for each other.
                    if let Some((id, _, _)) =
                        stored.get(&name).filter(|(_, u, p)| *u == url && *p == priority)
                    {
                        ids.insert(name, *id);
                        continue;
                    }
                    let id: i64 = conn
                        .query_one(
                            "INSERT INTO sources (name, url, priority) VALUES (?1, ?2, ?3)
                             ON CONFLICT(name) DO UPDATE SET url = excluded.url, priority = excluded.priority
                             RETURNING id",
                            values![&name, url, priority],
                        )?
                        .get(0)?;
                    ids.insert(name, id);
                }
                let changed = stories::publish_best_everywhere(conn, &languages)?;
                if changed > 0 {
                    feeds_changed(conn)?;
                }
                Ok((ids, changed))
            })
            .await?;
        if changed > 0 {
            tracing::info!(stories = changed, "published reports chosen again after a configuration change");
            self.items_changed();
        }
        Ok(ids)
    }

    /// What the previous polls of every source left — validators, body hash, pacing, moves — by
    /// source id.
    pub async fn poll_states(&self) -> Result<HashMap<i64, PollState>, StoreError> {
        self.read(move |conn| {
            let rows = conn.query(&format!("SELECT id, {POLL_STATE_COLUMNS} FROM sources"), &[])?;
            rows.iter().map(|row| Ok((row.get(0)?, PollState::from_row(row, 1)?))).collect()
        })
        .await
    }

    /// Which of these GUIDs this source has already delivered (with the feed hash last seen for
    /// each), and which canonical links any source has.
    pub async fn known(
        &self,
        source_id: i64,
        guids: Vec<String>,
        links: Vec<String>,
    ) -> Result<(HashMap<String, Option<String>>, HashSet<String>), StoreError> {
        self.read(move |conn| {
            let mut known_guids = HashMap::new();
            for guid in guids {
                let hash = conn.query_opt(
                    "SELECT feed_hash FROM item_guids WHERE source_id = ?1 AND guid = ?2",
                    values![source_id, &guid],
                )?;
                if let Some(hash) = hash {
                    known_guids.insert(guid, hash.get(0)?);
                } else if conn.exists(
                    // Removed by retention: known for good, never delivered again.
                    "SELECT 1 FROM tombstone_guids WHERE source_id = ?1 AND guid = ?2",
                    values![source_id, &guid],
                )? {
                    known_guids.insert(guid, None);
                }
            }
            let mut known_links = HashSet::new();
            for link in links {
                if conn.exists(
                    "SELECT 1 FROM items WHERE canonical_link = ?1
                     UNION ALL SELECT 1 FROM tombstone_links WHERE canonical_link = ?1",
                    values![&link],
                )? {
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
        let (dedup, node) = (self.dedup.clone(), self.node.clone());
        let near_index = Arc::clone(&self.near_index);
        let counts = self
            .write(move |conn| {
                let mut index = near_index.lock().unwrap_or_else(|p| p.into_inner());
                let index = index.get_or_insert_with(BandIndex::default);
                let counts = store_poll(conn, source_id, &candidates, &dedup, index)?;
                if counts.new + counts.merged + counts.updated > 0 {
                    feeds_changed(conn)?;
                }
                store_success(conn, source_id, &success, &node)?;
                Ok(counts)
            })
            .await?;
        if counts.new + counts.merged + counts.updated > 0 {
            self.items_changed();
        }
        Ok(counts)
    }

    /// Records a poll answered 304 without waiting for the commit: nothing was fetched that
    /// could be lost, and at 10,000 sources the round trip to the writer would cost more than the
    /// request. A failed commit is logged by the writer and marks the store unhealthy like any
    /// other; the next poll writes again.
    pub fn record_not_modified(&self, source_id: i64, success: PollSuccess) -> Result<(), StoreError> {
        let node = self.node.clone();
        self.queue_write(move |conn| store_success(conn, source_id, &success, &node))
    }

    /// Records a failed poll and when to try again; stored items are untouched.
    pub async fn record_failure(
        &self,
        source_id: i64,
        status: Option<u16>,
        error: String,
        retry_at: i64,
    ) -> Result<(), StoreError> {
        let node = self.node.clone();
        self.write(move |conn| {
            conn.execute(
                "UPDATE sources SET last_poll_at = ?2, last_status = ?3, last_error = ?4,
                    error_count = error_count + 1, next_poll_at = ?5, not_before = ?5,
                    failing_since = COALESCE(failing_since, ?2),
                    lease_node = NULL, lease_until = NULL, last_node = ?6
                 WHERE id = ?1",
                values![source_id, now(), status, error, retry_at, &*node],
            )?;
            Ok(())
        })
        .await
    }

    /// The newest items of a feed, newest first, with the other reports of each story; `None`
    /// when the scope names a source that does not exist. `before` is a page cursor
    /// ([`StoredItem::cursor`]): only items older than it.
    pub async fn entries(
        &self,
        scope: FeedScope,
        limit: usize,
        before: Option<(i64, i64)>,
    ) -> Result<Option<Vec<StoredItem>>, StoreError> {
        self.read(move |conn| {
            const COLUMNS: &str = "i.id, i.link, i.title, i.author, i.published, i.updated, i.first_seen,
                i.categories, i.summary, i.content_html, i.changed_at, s.name, s.title, s.url, i.content_text,
                i.language, i.story_id, st.legacy, st.changed_at, i.duplicate_of IS NULL, i.source_id
                FROM items i JOIN sources s ON s.id = i.source_id LEFT JOIN stories st ON st.id = i.story_id";
            const NEWEST: &str =
                "AND (CAST(?2 AS BIGINT) IS NULL OR (COALESCE(i.published, i.first_seen), i.id) < (?2, ?3))
                ORDER BY COALESCE(i.published, i.first_seen) DESC, i.id DESC LIMIT ?1";
            let (sql, key) = match &scope {
                FeedScope::All => {
                    (format!("SELECT {COLUMNS} WHERE i.duplicate_of IS NULL AND i.hidden = 0 {NEWEST}"), None)
                }
                FeedScope::Source(name) => {
                    let id = conn.query_opt("SELECT id FROM sources WHERE name = ?1", values![name])?;
                    let Some(id) = id else { return Ok(None) };
                    (
                        format!(
                            "SELECT {COLUMNS} WHERE i.hidden = 0
                             AND i.id IN (SELECT item_id FROM item_guids WHERE source_id = ?4) {NEWEST}"
                        ),
                        Some(id.get::<i64>(0)?.into()),
                    )
                }
                FeedScope::Tag(tag) => (
                    format!(
                        "SELECT {COLUMNS} WHERE i.duplicate_of IS NULL AND i.hidden = 0
                         AND i.id IN (SELECT item_id FROM item_tags WHERE tag = ?4) {NEWEST}"
                    ),
                    Some(tag.into()),
                ),
            };
            let by_story = !matches!(scope, FeedScope::Source(_));
            let mut params =
                vec![(limit as i64).into(), before.map(|b| b.0).into(), before.map(|b| b.1).into()];
            params.extend(key);
            let mut items = Vec::new();
            for row in conn.query(&sql, &params)? {
                let mut item = StoredItem {
                    id: row.get(0)?,
                    link: row.get(1)?,
                    title: row.get(2)?,
                    author: row.get(3)?,
                    published: row.get(4)?,
                    updated: row.get(5)?,
                    first_seen: row.get(6)?,
                    categories: serde_json::from_str(&row.get::<String>(7)?)?,
                    summary: row.get(8)?,
                    content_html: row.get(9)?,
                    changed_at: row.get(10)?,
                    source_name: row.get(11)?,
                    source_title: row.get(12)?,
                    source_url: row.get(13)?,
                    content_text: row.get(14)?,
                    language: row.get(15)?,
                    story: None,
                    related: Vec::new(),
                    translations: Vec::new(),
                };
                let (story_id, published) = (row.get::<Option<i64>>(16)?, row.get::<bool>(19)?);
                if let (Some(id), true) = (story_id, published) {
                    (item.related, item.translations) =
                        stories::others(conn, id, item.id, row.get(20)?, item.language.as_deref())?;
                    if by_story {
                        let legacy = row.get::<Option<bool>>(17)?.unwrap_or(false);
                        item.story = Some(StoryRef { id, legacy, changed_at: row.get(18)? });
                    }
                }
                items.push(item);
            }
            Ok(Some(items))
        })
        .await
    }

    /// Removes the items first seen more than `max_age_days` ago and each source's items beyond
    /// its newest `max_items_per_source` (0: no limit), with the other reports of their stories;
    /// leaves tombstones (their GUIDs and canonical links) so they never come back, and gives
    /// the freed space back to the file system.
    pub async fn apply_retention(
        &self,
        max_age_days: u32,
        max_items_per_source: usize,
    ) -> Result<Retention, StoreError> {
        let cutoff = (max_age_days > 0).then(|| now() - i64::from(max_age_days) * 86_400);
        let cap = (max_items_per_source > 0).then_some(max_items_per_source as i64);
        let removed = self
            .write(move |conn| {
                conn.lock_for_dedup()?;
                // Temporary tables, dropped at the end of the write (an unqualified name finds the
                // temporary table first in both databases).
                conn.batch(
                    "CREATE TEMP TABLE IF NOT EXISTS expired (id BIGINT PRIMARY KEY);
                     CREATE TEMP TABLE IF NOT EXISTS expired_stories (id BIGINT PRIMARY KEY);",
                )?;
                conn.execute(
                    "INSERT INTO expired SELECT id FROM items WHERE first_seen < ?1 ON CONFLICT DO NOTHING",
                    values![cutoff],
                )?;
                conn.execute(
                    "INSERT INTO expired SELECT id FROM (
                        SELECT id, ROW_NUMBER() OVER (PARTITION BY source_id ORDER BY first_seen DESC, id DESC) AS n
                        FROM items) AS ranked WHERE n > ?1
                     ON CONFLICT DO NOTHING",
                    values![cap],
                )?;
                conn.batch(
                    "INSERT INTO expired SELECT id FROM items WHERE duplicate_of IN (SELECT id FROM expired)
                         ON CONFLICT DO NOTHING;
                     INSERT INTO expired_stories SELECT DISTINCT story_id FROM items
                         WHERE id IN (SELECT id FROM expired) AND story_id IS NOT NULL
                         ON CONFLICT DO NOTHING;",
                )?;
                let stamp = now();
                conn.execute(
                    "INSERT INTO tombstone_guids (source_id, guid, removed_at)
                     SELECT source_id, guid, CAST(?1 AS BIGINT) FROM item_guids WHERE item_id IN (SELECT id FROM expired)
                     ON CONFLICT DO NOTHING",
                    values![stamp],
                )?;
                conn.execute(
                    "INSERT INTO tombstone_links (canonical_link, removed_at)
                     SELECT canonical_link, CAST(?1 AS BIGINT) FROM items
                     WHERE id IN (SELECT id FROM expired) AND canonical_link IS NOT NULL
                     ON CONFLICT DO NOTHING",
                    values![stamp],
                )?;
                conn.batch(
                    "DELETE FROM item_guids WHERE item_id IN (SELECT id FROM expired);
                     DELETE FROM item_tags WHERE item_id IN (SELECT id FROM expired);
                     DELETE FROM item_alternates WHERE item_id IN (SELECT id FROM expired);
                     UPDATE items SET duplicate_of = NULL WHERE duplicate_of IN (SELECT id FROM expired);",
                )?;
                let removed = conn.execute("DELETE FROM items WHERE id IN (SELECT id FROM expired)", &[])?;
                // A story goes with its last report, and so do the ids of stories joined to it.
                conn.batch(
                    "DELETE FROM stories WHERE merged_into IN (SELECT id FROM expired_stories)
                         OR (id IN (SELECT id FROM expired_stories)
                             AND NOT EXISTS (SELECT 1 FROM items WHERE story_id = stories.id));
                     DROP TABLE expired; DROP TABLE expired_stories;",
                )?;
                if removed > 0 {
                    feeds_changed(conn)?;
                }
                // Claims of page fetches a day past their end are history.
                conn.execute("DELETE FROM page_fetches WHERE until < ?1", values![now() - 86_400])?;
                conn.release_space()?;
                Ok(removed)
            })
            .await?;
        if removed > 0 {
            self.items_changed();
        }
        Ok(Retention { removed })
    }

    /// Proves the database takes writes: rewrites one row through the writer and commits.
    pub async fn probe_write(&self) -> Result<(), StoreError> {
        self.write(|conn| {
            // Deleted and inserted, not updated: an update to the same value (two probes within a
            // second) writes nothing in SQLite, and would pass on a disk that takes no writes.
            conn.execute("DELETE FROM health WHERE id = 1", &[])?;
            conn.execute("INSERT INTO health (id, checked_at) VALUES (1, ?1)", values![now()])?;
            Ok(())
        })
        .await
    }

    /// When any source was last polled successfully.
    pub async fn last_success_at(&self) -> Result<Option<i64>, StoreError> {
        self.read(|conn| conn.query_one("SELECT max(last_success_at) FROM sources", &[])?.get(0)).await
    }

    /// The database's size on disk, in bytes.
    pub async fn size_bytes(&self) -> Result<i64, StoreError> {
        self.read(|conn| conn.size_bytes()).await
    }

    /// Every source with its poll state and item count, by name.
    pub async fn sources(&self) -> Result<Vec<SourceRow>, StoreError> {
        self.read(|conn| {
            let rows = conn.query(
                "SELECT s.id, s.name, s.url, s.title, s.last_poll_at, s.last_success_at, s.last_status,
                        s.last_error, s.error_count, s.next_poll_at,
                        (SELECT COUNT(*) FROM items i WHERE i.source_id = s.id), s.not_before, s.failing_since,
                        s.last_node
                 FROM sources s ORDER BY s.name",
                &[],
            )?;
            let mut sources = rows
                .iter()
                .map(|row| {
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
                        not_before: row.get(11)?,
                        failing_since: row.get(12)?,
                        items_per_day: vec![0; 14],
                        items_24h: 0,
                        last_node: row.get(13)?,
                    })
                })
                .collect::<Result<Vec<_>, StoreError>>()?;
            let today = now() / 86_400;
            let per_day = conn.query(
                "SELECT source_id, first_seen / 86400, count(*) FROM items
                 WHERE first_seen >= ?1 GROUP BY source_id, first_seen / 86400",
                values![(today - 13) * 86_400],
            )?;
            for row in per_day {
                let (source_id, day, n) = (row.get::<i64>(0)?, row.get::<i64>(1)?, row.get::<i64>(2)?);
                let slot = usize::try_from(13 - (today - day)).ok();
                if let (Some(source), Some(slot)) = (sources.iter_mut().find(|s| s.id == source_id), slot) {
                    if let Some(cell) = source.items_per_day.get_mut(slot) {
                        *cell = n;
                    }
                }
            }
            let last_day = conn.query(
                "SELECT source_id, count(*) FROM items WHERE first_seen >= ?1 GROUP BY source_id",
                values![now() - 86_400],
            )?;
            for row in last_day {
                let (source_id, n) = (row.get::<i64>(0)?, row.get::<i64>(1)?);
                if let Some(source) = sources.iter_mut().find(|s| s.id == source_id) {
                    source.items_24h = n;
                }
            }
            Ok(sources)
        })
        .await
    }
}

/// Tells every node sharing the database that what the feeds show changed (the write's commit
/// publishes it).
fn feeds_changed(conn: &mut dyn Conn) -> Result<(), StoreError> {
    conn.execute_later("UPDATE feed_version SET version = version + 1 WHERE id = 1", &[])
}

/// A successful poll's source state (one statement); the lease on the source ends.
fn store_success(
    conn: &mut dyn Conn,
    source_id: i64,
    success: &PollSuccess,
    node: &str,
) -> Result<(), StoreError> {
    let (etag, last_modified, body_hash) = match &success.validators {
        Some((v, hash)) => (v.etag.clone(), v.last_modified.clone(), Some(hash.clone())),
        None => (None, None, None),
    };
    let (moved_from, moved_to) = success.moved.clone().unzip();
    conn.execute_later(
        "UPDATE sources SET
            title = COALESCE(?2, title),
            etag = CASE WHEN CAST(?5 AS TEXT) IS NOT NULL THEN ?3 ELSE etag END,
            last_modified = CASE WHEN CAST(?5 AS TEXT) IS NOT NULL THEN ?4 ELSE last_modified END,
            body_hash = COALESCE(?5, body_hash),
            last_poll_at = ?6, last_success_at = ?6, last_status = ?7,
            last_error = NULL, error_count = 0, next_poll_at = ?8, not_before = ?9, failing_since = NULL,
            moved_from = COALESCE(?10, moved_from), moved_to = COALESCE(?11, moved_to),
            lease_node = NULL, lease_until = NULL, last_node = ?12
         WHERE id = ?1",
        values![
            source_id,
            success.feed_title.as_deref(),
            etag,
            last_modified,
            body_hash,
            now(),
            success.status,
            success.next_poll_at,
            success.not_before,
            moved_from,
            moved_to,
            node,
        ],
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Schedule;
    use crate::store::StoryLookup;

    fn source(name: &str) -> Source {
        Source {
            name: name.into(),
            url: url::Url::parse(&format!("https://{name}.example/rss")).unwrap(),
            schedule: Schedule::Every(std::time::Duration::from_secs(60)),
            full_text: false,
            tags: vec![],
            priority: 0,
            filter: Default::default(),
            kind: crate::config::SourceKind::Feed,
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
            language: None,
            editions: vec![],
            hidden: false,
            signature: None,
            feed_hash: format!("h-{guid}"),
        }
    }

    /// A new store ([`crate::store::tests::store`]) with sources `a` and `b`.
    async fn store() -> (tempfile::TempDir, Store, HashMap<String, i64>) {
        let (dir, store) = crate::store::tests::store().await;
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
        assert_eq!(counts, CommitCounts { new: 2, duplicate: 1, ..Default::default() });
        // Another source announcing the same link: one item, and its GUID is remembered.
        let counts =
            store.commit_poll(ids["b"], vec![candidate("b-9", "https://e.com/2", 20)], ok).await.unwrap();
        assert_eq!(counts, CommitCounts { new: 0, duplicate: 1, ..Default::default() });
        let (guids, links) = store
            .known(
                ids["b"],
                vec!["b-9".into(), "b-10".into()],
                vec!["https://e.com/1".into(), "https://e.com/3".into()],
            )
            .await
            .unwrap();
        assert_eq!(guids, HashMap::from([("b-9".to_owned(), Some("h-b-9".to_owned()))]));
        assert_eq!(links, HashSet::from(["https://e.com/1".to_owned()]));
        let items = store.entries(FeedScope::All, 10, None).await.unwrap().unwrap();
        assert_eq!(items.iter().map(|i| i.title.as_str()).collect::<Vec<_>>(), vec!["title 2", "title 1"]);
        assert_eq!(items[0].categories, vec!["World"]);
        let first_page = store.entries(FeedScope::All, 1, None).await.unwrap().unwrap();
        assert_eq!(first_page.len(), 1);
        let older = store.entries(FeedScope::All, 1, Some(first_page[0].cursor())).await.unwrap().unwrap();
        assert_eq!(
            older.iter().map(|i| i.title.as_str()).collect::<Vec<_>>(),
            vec!["title 1"],
            "the next page"
        );
        let last = store.entries(FeedScope::All, 1, Some(older[0].cursor())).await.unwrap().unwrap();
        assert!(last.is_empty());
    }

    const STORY: &str = "Russian forces attacked the Kharkiv region overnight with drones and missiles, \
        damaging a power substation and several residential buildings, the regional governor said on \
        Tuesday. Three people were injured, including a child, and emergency crews worked through the \
        night to restore electricity to about twelve thousand households.";
    const OTHER: &str = "The city council approved the budget for next year on Tuesday, raising spending on \
        schools and hospitals while cutting the cost of public transport for pensioners and students \
        alike, the mayor said after a long session that ran late into the evening.";

    fn story(guid: &str, link: &str, text: &str) -> Candidate {
        Candidate {
            content_text: Some(text.into()),
            signature: near::Signature::of(text),
            ..candidate(guid, link, 10)
        }
    }

    #[tokio::test]
    async fn same_and_near_duplicate_bodies_form_one_entry_naming_the_others() {
        let (_dir, store, ids) = store().await;
        let ok = PollSuccess { status: 200, ..Default::default() };
        let c = store
            .commit_poll(ids["a"], vec![story("1", "https://a.example/1", STORY)], ok.clone())
            .await
            .unwrap();
        assert_eq!(c.new, 1);
        // The same words with other markup and case from b: merged; an edited copy with an
        // added sentence from a third source: merged; a different story: a new entry.
        let shouted = STORY.to_uppercase();
        let edited = format!("Kyiv • UNN. {STORY} Air defence shot down most of the drones.");
        let b = vec![story("b1", "https://b.example/x", &shouted), story("b2", "https://b.example/y", OTHER)];
        let c = store.commit_poll(ids["b"], b, ok.clone()).await.unwrap();
        assert_eq!((c.new, c.merged), (1, 1));
        let ids_c = store.sync_sources(&[Source { priority: 5, ..source("c") }]).await.unwrap();
        // c has a higher priority: its report becomes the published entry of the cluster.
        let c = store
            .commit_poll(ids_c["c"], vec![story("c1", "https://c.example/z", &edited)], ok)
            .await
            .unwrap();
        assert_eq!((c.new, c.merged), (1, 0));
        let entries = store.entries(FeedScope::All, 10, None).await.unwrap().unwrap();
        assert_eq!(entries.len(), 2, "one entry per story");
        let cluster = entries.iter().find(|e| e.source_name == "c").expect("c heads the cluster");
        let named: Vec<&str> = cluster.related.iter().map(|r| r.source_title.as_str()).collect();
        assert_eq!(named, vec!["a", "b"]);
        assert_eq!(cluster.related[0].link.as_deref(), Some("https://a.example/1"));
        // Per-source feeds still list everything the source delivered.
        let b_items = store.entries(FeedScope::Source("b".into()), 10, None).await.unwrap().unwrap();
        assert_eq!(b_items.len(), 2);
        assert_eq!(
            store.entries(FeedScope::Source("nope".into()), 10, None).await.unwrap().map(|v| v.len()),
            None
        );
        assert_eq!(store.entries(FeedScope::Tag("World".into()), 10, None).await.unwrap().unwrap().len(), 2);
        assert_eq!(store.entries(FeedScope::Tag("world".into()), 10, None).await.unwrap().unwrap().len(), 0);
    }

    #[tokio::test]
    async fn one_poll_deduplicates_within_itself_as_against_the_store() {
        // What the store knows is read once per poll and kept current as the poll stores: a
        // poll's later items must meet its earlier ones in every layer — also when the earlier
        // ones' rows went to the database before the later ones came (after `SEND_EVERY` items).
        for fillers in [0, super::super::ingest::SEND_EVERY - 1] {
            poll_meets_itself(fillers).await;
        }
    }

    /// One poll that repeats its first story in every dedup layer, after `fillers` other items.
    async fn poll_meets_itself(fillers: usize) {
        let (_dir, store, ids) = store().await;
        let ok = PollSuccess { status: 200, ..Default::default() };
        let edited = format!("Kyiv • UNN. {STORY} Air defence shot down most of the drones.");
        let mut corrected = story("1", "https://a.example/1", STORY);
        corrected.title = "title 1, corrected".into();
        corrected.feed_hash = "h-1-corrected".into();
        let mut poll: Vec<Candidate> = (0..fillers)
            .map(|n| candidate(&format!("f{n}"), &format!("https://f.example/{n}"), 20))
            .collect();
        poll.extend([
            story("1", "https://a.example/1", STORY),
            // The same body under another link: merged.
            story("2", "https://a.example/2", &STORY.to_uppercase()),
            // An edited copy published earlier: it takes over the story's entry.
            Candidate { published: Some(5), ..story("3", "https://a.example/3", &edited) },
            // The first GUID again with new text: an update.
            corrected,
            // The first link under another GUID: a duplicate.
            story("4", "https://a.example/1", STORY),
            story("5", "https://a.example/5", OTHER),
        ]);
        let counts = store.commit_poll(ids["a"], poll, ok).await.unwrap();
        assert_eq!(
            counts,
            CommitCounts { new: 3 + fillers, merged: 1, updated: 1, duplicate: 1, ..Default::default() }
        );
        let not_filler = |title: &&str| !title.starts_with("title f");
        let entries = store.entries(FeedScope::All, 100, None).await.unwrap().unwrap();
        assert_eq!(entries.len(), 2 + fillers);
        let mut titles: Vec<&str> = entries.iter().map(|e| e.title.as_str()).filter(not_filler).collect();
        titles.sort_unstable();
        assert_eq!(titles, vec!["title 3", "title 5"], "one entry per story, the earliest report published");
        let own = store.entries(FeedScope::Source("a".into()), 100, None).await.unwrap().unwrap();
        let mut titles: Vec<&str> = own.iter().map(|e| e.title.as_str()).filter(not_filler).collect();
        titles.sort_unstable();
        assert_eq!(titles, vec!["title 1, corrected", "title 2", "title 3", "title 5"]);
    }

    #[tokio::test]
    async fn a_changed_item_updates_its_entry() {
        let (_dir, store, ids) = store().await;
        let ok = PollSuccess { status: 200, ..Default::default() };
        store
            .commit_poll(ids["a"], vec![story("1", "https://a.example/1", STORY)], ok.clone())
            .await
            .unwrap();
        let generation = store.generation();
        let same = store
            .commit_poll(ids["a"], vec![story("1", "https://a.example/1", STORY)], ok.clone())
            .await
            .unwrap();
        assert_eq!(same.duplicate, 1);
        assert_eq!(store.generation(), generation, "nothing changed");
        let mut changed = story("1", "https://a.example/1", OTHER);
        assert!(changed.signature.is_some());
        changed.title = "Corrected title".into();
        changed.feed_hash = "h-changed".into();
        let c = store.commit_poll(ids["a"], vec![changed], ok).await.unwrap();
        assert_eq!((c.new, c.updated), (0, 1));
        assert!(store.generation() > generation);
        let entries = store.entries(FeedScope::All, 10, None).await.unwrap().unwrap();
        assert_eq!(entries.len(), 1, "never a second entry");
        assert_eq!(entries[0].title, "Corrected title");
        assert!(entries[0].changed_at.is_some());
    }

    #[tokio::test]
    async fn retention_removes_old_and_surplus_items_and_leaves_tombstones() {
        let (_dir, store, ids) = store().await;
        let ok = PollSuccess { status: 200, ..Default::default() };
        let items = (1..=4).map(|n| candidate(&n.to_string(), &format!("https://e.com/{n}"), n)).collect();
        store.commit_poll(ids["a"], items, ok.clone()).await.unwrap();
        // Item 1 is 100 days old.
        store.write(|c| c.execute("UPDATE items SET first_seen = first_seen - 100 * 86400 WHERE canonical_link = 'https://e.com/1'", &[]).map(|_| ())).await.unwrap();
        assert_eq!(store.apply_retention(90, 0).await.unwrap(), Retention { removed: 1 });
        // Of the remaining three, a's newest two stay.
        assert_eq!(store.apply_retention(90, 2).await.unwrap(), Retention { removed: 1 });
        let left: Vec<String> = store
            .entries(FeedScope::All, 10, None)
            .await
            .unwrap()
            .unwrap()
            .into_iter()
            .map(|i| i.title)
            .collect();
        assert_eq!(left.len(), 2);
        // The source still lists everything: removed items are known, under their GUID or their link.
        let (guids, links) = store
            .known(
                ids["a"],
                vec!["1".into(), "2".into(), "3".into(), "4".into()],
                vec!["https://e.com/1".into()],
            )
            .await
            .unwrap();
        assert_eq!(guids.len(), 4);
        assert!(links.contains("https://e.com/1"));
        let again = vec![candidate("1", "https://e.com/1", 1), candidate("other-guid", "https://e.com/1", 1)];
        let counts = store.commit_poll(ids["b"], again, ok).await.unwrap();
        assert_eq!((counts.new, counts.duplicate), (0, 2), "never comes back");
        assert_eq!(store.apply_retention(0, 0).await.unwrap(), Retention { removed: 0 });
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
    async fn editions_join_one_story_transitively_in_any_order() {
        let (_dir, store, ids) = store().await;
        let ok = PollSuccess { status: 200, ..Default::default() };
        let edition = |guid: &str, lang: &str, declares: &[&str]| Candidate {
            language: Some(lang.into()),
            editions: declares.iter().map(|l| Edition { link: (*l).into(), language: None }).collect(),
            ..candidate(guid, &format!("https://e.com/{lang}/a"), 10)
        };
        // uk and ru arrive first, unrelated; en declares uk and is declared by ru: all one story.
        store.commit_poll(ids["a"], vec![edition("uk", "uk", &[])], ok.clone()).await.unwrap();
        store
            .commit_poll(ids["a"], vec![edition("ru", "ru", &["https://e.com/en/a"])], ok.clone())
            .await
            .unwrap();
        assert_eq!(store.entries(FeedScope::All, 10, None).await.unwrap().unwrap().len(), 2);
        let counts = store
            .commit_poll(ids["b"], vec![edition("en", "en", &["https://e.com/uk/a"])], ok)
            .await
            .unwrap();
        assert_eq!(counts.merged, 1);
        let entries = store.entries(FeedScope::All, 10, None).await.unwrap().unwrap();
        assert_eq!(entries.len(), 1, "one story: {entries:?}");
        let entry = &entries[0];
        let mut languages: Vec<&str> = entry.translations.iter().map(|t| t.language.as_str()).collect();
        languages.push(entry.language.as_deref().unwrap());
        languages.sort();
        assert_eq!(languages, ["en", "ru", "uk"]);
        assert!(entry.related.is_empty(), "editions are not 'also reported by'");
        // The younger story's id leads to the one they joined.
        let story = entry.story.unwrap().id;
        let joined = store.story(story + 1).await.unwrap();
        assert!(matches!(joined, Some(StoryLookup::JoinedInto(id)) if id == story), "{joined:?}");
    }

    #[tokio::test]
    async fn stories_from_before_story_ids_keep_their_entry_ids() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("old.db");
        {
            // A database as the previous release left it: a cluster of two (item 2 published,
            // item 1 merged into it) and a hidden item.
            let mut conn = rusqlite::Connection::open(&path).unwrap();
            rusqlite_migration::Migrations::from_slice(&super::super::sqlite::MIGRATIONS[..4])
                .to_latest(&mut conn)
                .unwrap();
            conn.execute_batch(
                "INSERT INTO sources (id, name, url) VALUES (1, 'a', 'https://a/'), (2, 'b', 'https://b/');
                 INSERT INTO items (id, source_id, canonical_link, link, title, extracted_by, first_seen, duplicate_of, hidden)
                 VALUES (1, 1, 'https://a/1', 'https://a/1', 'A', 'feed', 100, 2, 0),
                        (2, 2, 'https://b/1', 'https://b/1', 'B', 'feed', 50, NULL, 0),
                        (3, 1, NULL, 'https://a/3', 'hidden', 'feed', 100, NULL, 1);",
            )
            .unwrap();
        }
        let store = Store::open(&path).unwrap();
        let entries = store.entries(FeedScope::All, 10, None).await.unwrap().unwrap();
        assert_eq!(entries.len(), 1);
        assert_eq!(entries[0].story, Some(StoryRef { id: 2, legacy: true, changed_at: None }));
        assert_eq!(entries[0].related.len(), 1, "the merged report is still named");
        assert_eq!(store.story_of_item(1).await.unwrap(), Some(2));
        assert_eq!(store.story_of_item(3).await.unwrap(), None, "hidden items have no story");
        // A new story's id never takes an id already handed out, even once retention removed it.
        let ids = store.sync_sources(&[source("a")]).await.unwrap();
        let ok = PollSuccess { status: 200, ..Default::default() };
        store.commit_poll(ids["a"], vec![candidate("n", "https://a/new", 10)], ok).await.unwrap();
        let entries = store.entries(FeedScope::All, 10, None).await.unwrap().unwrap();
        let new = entries.iter().find(|e| e.title == "title n").unwrap().story.unwrap();
        assert!(new.id > 2 && !new.legacy, "{new:?}");
        store.write(|c| c.execute("UPDATE items SET first_seen = 0", &[]).map(|_| ())).await.unwrap();
        assert_eq!(store.apply_retention(1, 0).await.unwrap().removed, 4);
        store
            .commit_poll(ids["a"], vec![candidate("m", "https://a/m", 10)], PollSuccess::default())
            .await
            .unwrap();
        let entries = store.entries(FeedScope::All, 10, None).await.unwrap().unwrap();
        assert!(entries[0].story.unwrap().id > new.id, "ids are never reused");
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
        assert_eq!(store.entries(FeedScope::All, 10, None).await.unwrap().unwrap().len(), 1);
        let journal: String = store.read(|c| c.query_one("PRAGMA journal_mode", &[])?.get(0)).await.unwrap();
        assert_eq!(journal, "wal");
        let auto_vacuum: i64 = store.read(|c| c.query_one("PRAGMA auto_vacuum", &[])?.get(0)).await.unwrap();
        assert_eq!(auto_vacuum, 2, "incremental: retention gives pages back");
    }
}
