//! Stories: the reports of one story, gathered by body or as language editions of each other,
//! and which of them is published.
//!
//! A story's id is its published entry's id and never changes: when a better report arrives
//! (a higher-priority source, a preferred language, an earlier publication) it takes over the
//! entry, which is then *updated* (`stories.changed_at`), not replaced. Every item of a story
//! carries `story_id`; `duplicate_of` points the others at the published one, which the feed
//! queries read. Two stories found to be one (a report that is a near-duplicate of one and an
//! edition of the other) are joined into the older, and the younger's id leads there.

use super::known::Known;
use super::queries::{now, Candidate};
use super::sql::{values, Conn, Row};
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
            let row = conn.query_opt("SELECT legacy, changed_at, merged_into FROM stories WHERE id = ?1", values![id])?;
            let Some(row) = row else { return Ok(None) };
            if let Some(target) = row.get::<Option<i64>>(2)? {
                return Ok(Some(StoryLookup::JoinedInto(target)));
            }
            let story = StoryRef { id, legacy: row.get(0)?, changed_at: row.get(1)? };
            let reports = conn
                .query(
                    "SELECT s.name, COALESCE(s.title, s.name), i.language, COALESCE(i.published, i.first_seen),
                            i.title, i.link, i.duplicate_of IS NULL
                     FROM items i JOIN sources s ON s.id = i.source_id
                     WHERE i.story_id = ?1 AND i.hidden = 0
                     ORDER BY i.duplicate_of IS NOT NULL, COALESCE(i.published, i.first_seen), i.id",
                    values![id],
                )?
                .iter()
                .map(|row| {
                    Ok(Report {
                        source: row.get(0)?,
                        source_title: row.get(1)?,
                        language: row.get(2)?,
                        published: row.get(3)?,
                        title: row.get(4)?,
                        link: row.get(5)?,
                        is_published: row.get(6)?,
                    })
                })
                .collect::<Result<Vec<_>, StoreError>>()?;
            if reports.is_empty() {
                return Ok(None);
            }
            Ok(Some(StoryLookup::Found(StoryPage { story, reports })))
        })
        .await
    }

    /// The story an item belongs to (`None`: unknown or hidden item).
    pub async fn story_of_item(&self, item_id: i64) -> Result<Option<i64>, StoreError> {
        self.read(move |conn| {
            match conn.query_opt("SELECT story_id FROM items WHERE id = ?1", values![item_id])? {
                Some(row) => row.get(0),
                None => Ok(None),
            }
        })
        .await
    }
}

/// The story a new report joins: the one its body matched (`body_story`) and those of the
/// editions it declares or that declare it, within the window, joined into the oldest. `None`:
/// a story of its own.
pub(super) fn gather(
    conn: &mut dyn Conn,
    known: &mut Known,
    c: &Candidate,
    body_story: Option<i64>,
) -> Result<Option<i64>, StoreError> {
    let mut found: Vec<i64> = body_story.into_iter().collect();
    for edition in &c.editions {
        if let Some(item) = known.item_with_link(conn, &edition.link)? {
            found.extend(item.story.filter(|_| known.in_window(item.first_seen)));
        }
    }
    if let Some(link) = &c.canonical_link {
        let declaring: Vec<(Option<i64>, i64)> =
            known.declaring(conn, link)?.iter().map(|d| (d.story, d.first_seen)).collect();
        found.extend(
            declaring.into_iter().filter(|&(_, seen)| known.in_window(seen)).filter_map(|(story, _)| story),
        );
    }
    found.sort_unstable();
    found.dedup();
    let Some((&target, others)) = found.split_first() else { return Ok(None) };
    for &other in others {
        known.write_rows(conn)?;
        join(conn, target, other)?;
        known.stories_changed();
    }
    Ok(Some(target))
}

/// Moves every report of `other` into `target`, behind its published report.
fn join(conn: &mut dyn Conn, target: i64, other: i64) -> Result<(), StoreError> {
    let published = published_of(conn, target)?;
    conn.execute_later(
        "UPDATE items SET story_id = ?1, duplicate_of = ?3 WHERE story_id = ?2",
        values![target, other, published],
    )?;
    conn.execute_later(
        "UPDATE stories SET merged_into = ?1 WHERE id = ?2 OR merged_into = ?2",
        values![target, other],
    )?;
    conn.execute_later("UPDATE stories SET changed_at = ?2 WHERE id = ?1", values![target, now()])
}

/// The story's published report.
fn published_of(conn: &mut dyn Conn, story: i64) -> Result<Option<i64>, StoreError> {
    match conn.query_opt(
        "SELECT id FROM items WHERE story_id = ?1 AND duplicate_of IS NULL ORDER BY id LIMIT 1",
        values![story],
    )? {
        Some(row) => row.get(0),
        None => Ok(None),
    }
}

/// A report of a story, as choosing the published one needs it.
#[derive(Debug, Clone)]
pub(super) struct Member {
    pub id: i64,
    /// Its source's priority.
    pub priority: i64,
    pub language: Option<String>,
    /// The feed's date, else when it was first seen.
    pub published: i64,
    pub is_published: bool,
}

/// The story's visible reports.
pub(super) fn members(conn: &mut dyn Conn, story: i64) -> Result<Vec<Member>, StoreError> {
    conn.query(
        "SELECT i.id, s.priority, i.language, COALESCE(i.published, i.first_seen), i.duplicate_of IS NULL
         FROM items i JOIN sources s ON s.id = i.source_id WHERE i.story_id = ?1 AND i.hidden = 0",
        values![story],
    )?
    .iter()
    .map(Member::from_row)
    .collect()
}

impl Member {
    /// A report from a row whose first columns are `i.id, s.priority, i.language,
    /// COALESCE(i.published, i.first_seen), i.duplicate_of IS NULL` (items `i`, sources `s`).
    pub(super) fn from_row(row: &Row) -> Result<Member, StoreError> {
        Ok(Member {
            id: row.get(0)?,
            priority: row.get(1)?,
            language: row.get(2)?,
            published: row.get(3)?,
            is_published: row.get(4)?,
        })
    }
}

/// Makes the story's best report the published one (see [`best`] and [`publish`]); returns it.
pub(super) fn publish_best(
    conn: &mut dyn Conn,
    story: i64,
    languages: &[String],
) -> Result<Option<i64>, StoreError> {
    let members = members(conn, story)?;
    let Some(best) = best(&members, languages) else { return Ok(None) };
    publish(conn, story, &members, best)?;
    Ok(Some(best))
}

/// The report a story publishes: the highest source priority, then the earliest of `languages`,
/// then the earliest published (the feed's date, else first seen).
pub(super) fn best<'a>(members: impl IntoIterator<Item = &'a Member>, languages: &[String]) -> Option<i64> {
    members
        .into_iter()
        .min_by_key(|m| (-m.priority, language::rank(m.language.as_deref(), languages), m.published, m.id))
        .map(|m| m.id)
}

/// Makes `best` the story's published report, unless of its stored `members` it is already
/// the only one; a change of published report marks the story changed.
pub(super) fn publish(
    conn: &mut dyn Conn,
    story: i64,
    members: &[Member],
    best: i64,
) -> Result<(), StoreError> {
    let current: Vec<i64> = members.iter().filter(|m| m.is_published).map(|m| m.id).collect();
    if current != [best] {
        conn.execute_later(
            "UPDATE items SET duplicate_of = CASE id WHEN ?2 THEN NULL ELSE ?2 END WHERE story_id = ?1",
            values![story, best],
        )?;
        if !current.is_empty() {
            conn.execute_later("UPDATE stories SET changed_at = ?2 WHERE id = ?1", values![story, now()])?;
        }
    }
    Ok(())
}

/// Picks the published report of every story of several reports again (after the sources'
/// priorities or the preferred languages may have changed). Returns how many changed hands.
pub(super) fn publish_best_everywhere(
    conn: &mut dyn Conn,
    languages: &[String],
) -> Result<usize, StoreError> {
    let stories = conn.query(
        "SELECT story_id, max(CASE WHEN duplicate_of IS NULL THEN id END) FROM items
         WHERE story_id IS NOT NULL AND hidden = 0 GROUP BY story_id HAVING count(*) > 1",
        &[],
    )?;
    let mut changed = 0;
    for row in stories {
        let (story, published) = (row.get::<i64>(0)?, row.get::<Option<i64>>(1)?);
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
    conn: &mut dyn Conn,
    story: i64,
    published: i64,
    own_source: i64,
    own_language: Option<&str>,
) -> Result<(Vec<super::Related>, Vec<Translation>), StoreError> {
    let rows = conn.query(
        "SELECT COALESCE(s.title, s.name), i.link, i.language, i.title, i.source_id
         FROM items i JOIN sources s ON s.id = i.source_id
         WHERE i.story_id = ?1 AND i.id != ?2 AND i.hidden = 0 ORDER BY i.first_seen, i.id",
        values![story, published],
    )?;
    let (mut related, mut translations): (Vec<super::Related>, Vec<Translation>) = (Vec::new(), Vec::new());
    for row in rows {
        let (source_title, link, lang, title, source_id) = (
            row.get::<String>(0)?,
            row.get::<Option<String>>(1)?,
            row.get::<Option<String>>(2)?,
            row.get::<String>(3)?,
            row.get::<i64>(4)?,
        );
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
