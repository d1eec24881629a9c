//! A poll's candidates into the store: each through the deduplication layers — this source's
//! GUID (an update when the feed's text changed), tombstones, the canonical link, the exact body
//! fingerprint, near-duplicates within the window — into a story, and the item's rows (tags,
//! GUIDs, editions). Runs inside [`super::Store::commit_poll`]'s write.

use super::queries::now;
use super::sql::{values, Conn};
use super::stories;
use super::{Candidate, DedupParams, StoreError};
use crate::dedup::index::BandIndex;
use crate::dedup::near;

/// What happened to one candidate.
pub(super) enum Outcome {
    New,
    Filtered,
    Duplicate,
    Merged,
    Updated,
}

/// Stores one candidate through the deduplication layers: this source's GUID (an update when
/// the feed's text for it changed), the canonical link, the exact body fingerprint, then
/// near-duplicates within the window. A merged item keeps its own row (its source and link
/// are named in the published entry) with `duplicate_of` pointing at its cluster's entry.
pub(super) fn store_candidate(
    conn: &mut dyn Conn,
    source_id: i64,
    c: &Candidate,
    dedup: &DedupParams,
    index: &mut BandIndex,
) -> Result<Outcome, StoreError> {
    let known = conn.query_opt(
        "SELECT item_id, feed_hash FROM item_guids WHERE source_id = ?1 AND guid = ?2",
        values![source_id, &c.guid],
    )?;
    if let Some(known) = known {
        let (item_id, feed_hash) = (known.get::<i64>(0)?, known.get::<Option<String>>(1)?);
        if feed_hash.as_deref() == Some(c.feed_hash.as_str()) {
            return Ok(Outcome::Duplicate);
        }
        conn.execute(
            "UPDATE item_guids SET feed_hash = ?3 WHERE source_id = ?1 AND guid = ?2",
            values![source_id, &c.guid, &c.feed_hash],
        )?;
        // Only the source that owns the item may change it; a GUID that was merged into another
        // source's item just remembers the new text.
        let owner: i64 =
            conn.query_one("SELECT source_id FROM items WHERE id = ?1", values![item_id])?.get(0)?;
        if owner != source_id || feed_hash.is_none() {
            return Ok(Outcome::Duplicate);
        }
        update_item(conn, item_id, c)?;
        if let Some(signature) = &c.signature {
            index.insert(item_id, now(), signature.bands);
        }
        return Ok(Outcome::Updated);
    }
    let tombstoned = conn.exists(
        "SELECT 1 FROM tombstone_guids WHERE source_id = ?1 AND guid = ?2",
        values![source_id, &c.guid],
    )? || match &c.canonical_link {
        Some(link) => {
            conn.exists("SELECT 1 FROM tombstone_links WHERE canonical_link = ?1", values![link])?
        }
        None => false,
    };
    if tombstoned {
        // Retention removed this story: it does not come back, under this GUID or a new one.
        conn.execute(
            "INSERT INTO tombstone_guids (source_id, guid, removed_at) VALUES (?1, ?2, ?3) ON CONFLICT DO NOTHING",
            values![source_id, &c.guid, now()],
        )?;
        return Ok(Outcome::Duplicate);
    }
    let same_link = match &c.canonical_link {
        Some(link) => conn.query_opt("SELECT id FROM items WHERE canonical_link = ?1", values![link])?,
        None => None,
    };
    if let Some(row) = same_link {
        remember_guid(conn, source_id, c, row.get(0)?)?;
        return Ok(Outcome::Duplicate);
    }
    if c.hidden {
        // Kept out of the link and content layers, so it never swallows a visible report.
        let hidden = Candidate { canonical_link: None, signature: None, ..c.clone() };
        let item_id = insert_item(conn, source_id, &hidden, c.language.clone(), None, None)?;
        index.looked_at(item_id);
        remember_guid(conn, source_id, c, item_id)?;
        return Ok(Outcome::Filtered);
    }
    let since = now() - dedup.window_secs;
    let body_story = match &c.signature {
        Some(signature) => {
            let same_body = conn.query_opt(
                "SELECT story_id FROM items
                 WHERE fingerprint = ?1 AND first_seen >= ?2 AND story_id IS NOT NULL LIMIT 1",
                values![signature.fingerprint, since],
            )?;
            match same_body {
                Some(row) => Some(row.get(0)?),
                None => nearest(conn, c, index.candidates(&signature.bands), since, dedup.threshold)?,
            }
        }
        None => None,
    };
    let story = stories::gather(conn, c, body_story, since)?;
    let (story_id, published) = match story {
        Some(story) => (story, stories::published_of(conn, story)?),
        None => (stories::create(conn)?, None),
    };
    let language = match &c.language {
        Some(language) => Some(language.clone()),
        None => stories::declared_language(conn, c.canonical_link.as_deref())?,
    };
    let item_id = insert_item(conn, source_id, c, language, Some(story_id), published)?;
    index.looked_at(item_id);
    stories::remember_editions(conn, item_id, c)?;
    crate::metrics::metrics().extraction_step(&c.extracted_by);
    if let Some(signature) = &c.signature {
        index.insert(item_id, now(), signature.bands);
    }
    remember_guid(conn, source_id, c, item_id)?;
    if story.is_none() {
        return Ok(Outcome::New);
    }
    // The better report of the story (priority, language, earliest published) takes over its
    // entry, which keeps its id.
    if stories::publish_best(conn, story_id, &dedup.languages)? == Some(item_id) {
        return Ok(Outcome::New);
    }
    Ok(Outcome::Merged)
}

/// The story of the most similar of the `candidates` (items sharing an LSH band, from the
/// index) whose similarity reaches `threshold`, among those first seen since `since`.
fn nearest(
    conn: &mut dyn Conn,
    c: &Candidate,
    candidates: Vec<i64>,
    since: i64,
    threshold: f64,
) -> Result<Option<i64>, StoreError> {
    if candidates.is_empty() {
        return Ok(None);
    }
    let own = near::shingles(c.content_text.as_deref().unwrap_or_default());
    let mut best: Option<(f64, i64)> = None;
    for id in candidates {
        let row = conn.query_opt(
            "SELECT story_id, content_text FROM items WHERE id = ?1 AND first_seen >= ?2 AND story_id IS NOT NULL",
            values![id, since],
        )?;
        let Some(row) = row else { continue };
        let (story, text) = (row.get::<i64>(0)?, row.get::<Option<String>>(1)?);
        let score = near::similarity(&own, &near::shingles(text.as_deref().unwrap_or_default()));
        if score >= threshold && best.is_none_or(|(s, _)| score > s) {
            best = Some((score, story));
        }
    }
    Ok(best.map(|(_, story)| story))
}

/// Brings the band index up to date before a write that stores items: at first use, every item
/// of the window; later, the items other nodes stored since the index last looked (item writes
/// are serialized by [`Conn::lock_for_dedup`], so every item above the highest id it has looked
/// at is new to it).
pub(super) fn catch_up_band_index(
    conn: &mut dyn Conn,
    index: &mut BandIndex,
    since: i64,
) -> Result<(), StoreError> {
    let rows = match index.newest_id() {
        0 => conn.query(
            "SELECT id, first_seen, bands FROM items
             WHERE first_seen >= ?1 AND bands IS NOT NULL AND hidden = 0 ORDER BY first_seen, id",
            values![since],
        )?,
        newest => conn.query(
            "SELECT id, first_seen, bands FROM items
             WHERE id > ?1 AND first_seen >= ?2 AND bands IS NOT NULL AND hidden = 0 ORDER BY id",
            values![newest, since],
        )?,
    };
    for row in rows {
        if let Some(bands) = near::bands_from_bytes(&row.get::<Vec<u8>>(2)?) {
            index.insert(row.get(0)?, row.get(1)?, bands);
        }
    }
    let newest: Option<i64> = conn.query_one("SELECT max(id) FROM items", &[])?.get(0)?;
    index.looked_at(newest.unwrap_or(0));
    Ok(())
}

fn insert_item(
    conn: &mut dyn Conn,
    source_id: i64,
    c: &Candidate,
    language: Option<String>,
    story_id: Option<i64>,
    duplicate_of: Option<i64>,
) -> Result<i64, StoreError> {
    let id = conn.insert(
        "INSERT INTO items (source_id, canonical_link, link, title, author, published, updated,
            categories, summary, content_html, content_text, extracted_by, first_seen,
            fingerprint, bands, duplicate_of, language, hidden, story_id)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19)",
        values![
            source_id,
            c.canonical_link.as_deref(),
            c.link.as_deref(),
            &c.title,
            c.author.as_deref(),
            c.published,
            c.updated,
            serde_json::to_string(&c.categories)?,
            c.summary.as_deref(),
            c.content_html.as_deref(),
            c.content_text.as_deref(),
            &c.extracted_by,
            now(),
            c.signature.as_ref().map(|s| s.fingerprint),
            c.signature.as_ref().map(|s| near::bands_to_bytes(&s.bands)),
            duplicate_of,
            language,
            c.hidden,
            story_id,
        ],
    )?;
    insert_tags(conn, id, &c.categories)?;
    Ok(id)
}

fn insert_tags(conn: &mut dyn Conn, item_id: i64, tags: &[String]) -> Result<(), StoreError> {
    for tag in tags {
        conn.execute(
            "INSERT INTO item_tags (tag, item_id) VALUES (?1, ?2) ON CONFLICT DO NOTHING",
            values![tag, item_id],
        )?;
    }
    Ok(())
}

/// A known item's new title, body and metadata; its fingerprint and bands follow the new body.
fn update_item(conn: &mut dyn Conn, item_id: i64, c: &Candidate) -> Result<(), StoreError> {
    conn.execute(
        "UPDATE items SET title = ?2, author = COALESCE(?3, author), updated = COALESCE(?4, updated),
            categories = ?5, summary = ?6, content_html = COALESCE(?7, content_html),
            content_text = COALESCE(?8, content_text), extracted_by = ?9, changed_at = ?10,
            fingerprint = COALESCE(?11, fingerprint), bands = COALESCE(?12, bands)
         WHERE id = ?1",
        values![
            item_id,
            &c.title,
            c.author.as_deref(),
            c.updated,
            serde_json::to_string(&c.categories)?,
            c.summary.as_deref(),
            c.content_html.as_deref(),
            c.content_text.as_deref(),
            &c.extracted_by,
            now(),
            c.signature.as_ref().map(|s| s.fingerprint),
            c.signature.as_ref().map(|s| near::bands_to_bytes(&s.bands)),
        ],
    )?;
    conn.execute("DELETE FROM item_tags WHERE item_id = ?1", values![item_id])?;
    insert_tags(conn, item_id, &c.categories)?;
    Ok(())
}

fn remember_guid(conn: &mut dyn Conn, source_id: i64, c: &Candidate, item_id: i64) -> Result<(), StoreError> {
    conn.execute(
        "INSERT INTO item_guids (source_id, guid, item_id, feed_hash) VALUES (?1, ?2, ?3, ?4)",
        values![source_id, &c.guid, item_id, &c.feed_hash],
    )?;
    Ok(())
}
