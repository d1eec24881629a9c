//! Stories: the reports of one story, gathered by body or as language editions of each other,
//! and which of them is published.
//!
//! A story's id is its published entry's id and never changes: when a better report arrives
//! (a higher-priority source, a preferred language, an earlier publication) it takes over the
//! entry, which is then *updated* (`stories.changed_at`), not replaced. Every item of a story
//! carries `story_id`; `duplicate_of` points the others at the published one, which the feed
//! queries read. Two stories found to be one (a report that is a near-duplicate of one and an
//! edition of the other) are joined into the older, and the younger's id leads there.

use rusqlite::{params, Connection, OptionalExtension};

use super::queries::{now, Candidate};
use super::{Store, StoreError};
use crate::language;

/// The story an entry stands for, as its feed id needs it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StoryRef {
    pub id: i64,
    /// Its entry id was handed out as `/items/{id}` before stories had ids of their own.
    pub legacy: bool,
    /// When another report last became the published one.
    pub changed_at: Option<i64>,
}

/// Another language edition of a published story.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Translation {
    pub language: String,
    pub link: Option<String>,
    pub title: String,
}

/// One report of a story, for its page.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Report {
    pub source: String,
    pub source_title: String,
    pub language: Option<String>,
    /// The feed's date, else when feedmill first saw it (Unix seconds).
    pub published: i64,
    pub title: String,
    pub link: Option<String>,
    /// This is the report the feeds publish.
    pub is_published: bool,
}

/// Every report of a story, the published one first.
#[derive(Debug, Clone)]
pub struct StoryPage {
    pub story: StoryRef,
    pub reports: Vec<Report>,
}

/// What a story id leads to.
#[derive(Debug, Clone)]
pub enum StoryLookup {
    Found(StoryPage),
    /// The story was joined to this one.
    JoinedInto(i64),
}

impl Store {
    /// The story with this id, or where it was joined to; `None` for an unknown id.
    pub async fn story(&self, id: i64) -> Result<Option<StoryLookup>, StoreError> {
        self.read(move |conn| {
            let row: Option<(bool, Option<i64>, Option<i64>)> = conn
                .prepare_cached("SELECT legacy, changed_at, merged_into FROM stories WHERE id = ?1")?
                .query_row([id], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)))
                .optional()?;
            let Some((legacy, changed_at, merged_into)) = row else { return Ok(None) };
            if let Some(target) = merged_into {
                return Ok(Some(StoryLookup::JoinedInto(target)));
            }
            let mut query = conn.prepare_cached(
                "SELECT s.name, COALESCE(s.title, s.name), i.language, COALESCE(i.published, i.first_seen),
                        i.title, i.link, i.duplicate_of IS NULL
                 FROM items i JOIN sources s ON s.id = i.source_id
                 WHERE i.story_id = ?1 AND NOT i.hidden
                 ORDER BY i.duplicate_of IS NOT NULL, COALESCE(i.published, i.first_seen), i.id",
            )?;
            let reports = query
                .query_map([id], |row| {
                    Ok(Report {
                        source: row.get(0)?,
                        source_title: row.get(1)?,
                        language: row.get(2)?,
                        published: row.get(3)?,
                        title: row.get(4)?,
                        link: row.get(5)?,
                        is_published: row.get(6)?,
                    })
                })?
                .collect::<Result<Vec<_>, _>>()?;
            if reports.is_empty() {
                return Ok(None);
            }
            Ok(Some(StoryLookup::Found(StoryPage { story: StoryRef { id, legacy, changed_at }, reports })))
        })
        .await
    }

    /// The story an item belongs to (`None`: unknown or hidden item).
    pub async fn story_of_item(&self, item_id: i64) -> Result<Option<i64>, StoreError> {
        self.read(move |conn| {
            Ok(conn
                .prepare_cached("SELECT story_id FROM items WHERE id = ?1")?
                .query_row([item_id], |row| row.get::<_, Option<i64>>(0))
                .optional()?
                .flatten())
        })
        .await
    }
}

/// The story a new report joins: the one its body matched (`body_story`) and those of the
/// editions it declares or that declare it, within the window (first seen since `since`),
/// joined into the oldest. `None`: a story of its own.
pub(super) fn gather(
    conn: &Connection,
    c: &Candidate,
    body_story: Option<i64>,
    since: i64,
) -> Result<Option<i64>, StoreError> {
    let mut found: Vec<i64> = body_story.into_iter().collect();
    let mut declared = conn.prepare_cached(
        "SELECT story_id FROM items WHERE canonical_link = ?1 AND first_seen >= ?2 AND story_id IS NOT NULL",
    )?;
    for edition in &c.editions {
        found
            .extend(declared.query_row(params![edition.link, since], |row| row.get::<_, i64>(0)).optional()?);
    }
    if let Some(link) = &c.canonical_link {
        let mut declaring = conn.prepare_cached(
            "SELECT i.story_id FROM item_alternates a JOIN items i ON i.id = a.item_id
             WHERE a.link = ?1 AND i.first_seen >= ?2 AND i.story_id IS NOT NULL",
        )?;
        for story in declaring.query_map(params![link, since], |row| row.get(0))? {
            found.push(story?);
        }
    }
    found.sort_unstable();
    found.dedup();
    let Some((&target, others)) = found.split_first() else { return Ok(None) };
    for &other in others {
        join(conn, target, other)?;
    }
    Ok(Some(target))
}

/// Moves every report of `other` into `target`, behind its published report.
fn join(conn: &Connection, target: i64, other: i64) -> Result<(), StoreError> {
    let published = published_of(conn, target)?;
    conn.prepare_cached("UPDATE items SET story_id = ?1, duplicate_of = ?3 WHERE story_id = ?2")?
        .execute(params![target, other, published])?;
    conn.prepare_cached("UPDATE stories SET merged_into = ?1 WHERE id = ?2 OR merged_into = ?2")?
        .execute(params![target, other])?;
    conn.prepare_cached("UPDATE stories SET changed_at = ?2 WHERE id = ?1")?
        .execute(params![target, now()])?;
    Ok(())
}

/// A new story's id.
pub(super) fn create(conn: &Connection) -> Result<i64, StoreError> {
    conn.prepare_cached("INSERT INTO stories DEFAULT VALUES")?.execute([])?;
    Ok(conn.last_insert_rowid())
}

/// The story's published report.
pub(super) fn published_of(conn: &Connection, story: i64) -> Result<Option<i64>, StoreError> {
    Ok(conn
        .prepare_cached(
            "SELECT id FROM items WHERE story_id = ?1 AND duplicate_of IS NULL ORDER BY id LIMIT 1",
        )?
        .query_row([story], |row| row.get(0))
        .optional()?)
}

/// The language another page declared for `link`, for a report whose own page says none.
pub(super) fn declared_language(conn: &Connection, link: Option<&str>) -> Result<Option<String>, StoreError> {
    let Some(link) = link else { return Ok(None) };
    Ok(conn
        .prepare_cached(
            "SELECT language FROM item_alternates WHERE link = ?1 AND language IS NOT NULL LIMIT 1",
        )?
        .query_row([link], |row| row.get(0))
        .optional()?)
}

/// Stores the editions an item's page declares.
pub(super) fn remember_editions(conn: &Connection, item_id: i64, c: &Candidate) -> Result<(), StoreError> {
    let mut insert = conn.prepare_cached(
        "INSERT OR IGNORE INTO item_alternates (item_id, link, language) VALUES (?1, ?2, ?3)",
    )?;
    for edition in &c.editions {
        insert.execute(params![item_id, edition.link, edition.language])?;
    }
    Ok(())
}

/// Makes the story's best report the published one: the highest source priority, then the
/// earliest of `languages`, then the earliest published (the feed's date, else first seen).
/// A change of published report marks the story changed. Returns the published report.
pub(super) fn publish_best(
    conn: &Connection,
    story: i64,
    languages: &[String],
) -> Result<Option<i64>, StoreError> {
    let mut query = conn.prepare_cached(
        "SELECT i.id, s.priority, i.language, COALESCE(i.published, i.first_seen), i.duplicate_of IS NULL
         FROM items i JOIN sources s ON s.id = i.source_id WHERE i.story_id = ?1 AND NOT i.hidden",
    )?;
    let members = query
        .query_map([story], |row| {
            Ok((
                row.get::<_, i64>(0)?,
                row.get::<_, i64>(1)?,
                row.get::<_, Option<String>>(2)?,
                row.get::<_, i64>(3)?,
                row.get::<_, bool>(4)?,
            ))
        })?
        .collect::<Result<Vec<_>, _>>()?;
    let best = members
        .iter()
        .min_by_key(|(id, priority, lang, published, _)| {
            (-priority, language::rank(lang.as_deref(), languages), *published, *id)
        })
        .map(|m| m.0);
    let Some(best) = best else { return Ok(None) };
    let current: Vec<i64> = members.iter().filter(|m| m.4).map(|m| m.0).collect();
    if current != [best] {
        conn.prepare_cached(
            "UPDATE items SET duplicate_of = CASE id WHEN ?2 THEN NULL ELSE ?2 END WHERE story_id = ?1",
        )?
        .execute(params![story, best])?;
        if !current.is_empty() {
            conn.prepare_cached("UPDATE stories SET changed_at = ?2 WHERE id = ?1")?
                .execute(params![story, now()])?;
        }
    }
    Ok(Some(best))
}

/// Picks the published report of every story of several reports again (after the sources'
/// priorities or the preferred languages may have changed). Returns how many changed hands.
pub(super) fn publish_best_everywhere(conn: &Connection, languages: &[String]) -> Result<usize, StoreError> {
    let mut query = conn.prepare(
        "SELECT story_id, max(CASE WHEN duplicate_of IS NULL THEN id END) FROM items
         WHERE story_id IS NOT NULL AND NOT hidden GROUP BY story_id HAVING count(*) > 1",
    )?;
    let stories = query
        .query_map([], |row| Ok((row.get::<_, i64>(0)?, row.get::<_, Option<i64>>(1)?)))?
        .collect::<Result<Vec<_>, _>>()?;
    let mut changed = 0;
    for (story, published) in stories {
        if publish_best(conn, story, languages)? != published {
            changed += 1;
        }
    }
    Ok(changed)
}

/// A story's other reports, split into other sources' reports in the published report's
/// language ("Also reported by", one per source) and editions in other languages (one per
/// language), first seen first.
pub(super) fn others(
    conn: &Connection,
    story: i64,
    published: i64,
    own_source: i64,
    own_language: Option<&str>,
) -> Result<(Vec<super::Related>, Vec<Translation>), StoreError> {
    let mut query = conn.prepare_cached(
        "SELECT COALESCE(s.title, s.name), i.link, i.language, i.title, i.source_id
         FROM items i JOIN sources s ON s.id = i.source_id
         WHERE i.story_id = ?1 AND i.id != ?2 AND NOT i.hidden ORDER BY i.first_seen, i.id",
    )?;
    let rows = query.query_map(params![story, published], |row| {
        Ok((
            row.get::<_, String>(0)?,
            row.get::<_, Option<String>>(1)?,
            row.get::<_, Option<String>>(2)?,
            row.get::<_, String>(3)?,
            row.get::<_, i64>(4)?,
        ))
    })?;
    let (mut related, mut translations): (Vec<super::Related>, Vec<Translation>) = (Vec::new(), Vec::new());
    for row in rows {
        let (source_title, link, lang, title, source_id) = row?;
        match (own_language, lang) {
            (Some(own), Some(lang)) if language::primary(own) != language::primary(&lang) => {
                if !translations.iter().any(|t| language::primary(&t.language) == language::primary(&lang)) {
                    translations.push(Translation { language: lang, link, title });
                }
            }
            _ if source_id == own_source => {}
            _ => {
                if !related.iter().any(|r| r.source_title == source_title) {
                    related.push(super::Related { source_title, link });
                }
            }
        }
    }
    Ok((related, translations))
}
