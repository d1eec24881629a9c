//! A poll's candidates into the store: each through the deduplication layers — this source's
//! GUID (an update when the feed's text changed), tombstones, the canonical link, the exact body
//! fingerprint, near-duplicates within the window — into a story, and the item's rows (tags,
//! GUIDs, editions). Runs inside [`super::Store::commit_poll`]'s write. What the dedup layers
//! look up is read for the whole poll at once ([`Known`]); the rows are written with
//! [`Conn::execute_later`], under ids reserved beforehand, so nothing waits for them, and are
//! sent every [`SEND_EVERY`] new items without waiting for their answers ([`Conn::send_now`]).

use super::known::Known;
use super::pending::Table;
use super::queries::now;
use super::sql::{values, Conn};
use super::stories;
use super::{Candidate, CommitCounts, DedupParams, StoreError};
use crate::dedup::index::BandIndex;
use crate::dedup::near;

/// A poll's rows go to the database every this many new items ([`Conn::send_now`]), so that it
/// writes them while the rest of the poll is decided (PostgreSQL ingest +10 % at 25; at 10 the
/// extra statements cost more than the overlap gains: BENCHMARKS.md).
pub(super) const SEND_EVERY: usize = 25;

/// What happened to one candidate.
enum Outcome {
    New,
    Filtered,
    Duplicate,
    Merged,
    Updated,
}

/// Stores a poll's candidates of source `source_id`, in order, after taking the dedup lock and
/// bringing the band index up to date; what the store already holds about them is read first,
/// for all of them at once ([`Known`]).
pub(super) fn store_poll(
    conn: &mut dyn Conn,
    source_id: i64,
    candidates: &[Candidate],
    dedup: &DedupParams,
    index: &mut BandIndex,
) -> Result<CommitCounts, StoreError> {
    let mut counts = CommitCounts::default();
    if candidates.is_empty() {
        return Ok(counts);
    }
    conn.lock_for_dedup()?;
    let since = now() - dedup.window_secs;
    catch_up_band_index(conn, index, since)?;
    index.expire(since);
    let mut known = Known::read(conn, source_id, candidates, since, index)?;
    for candidate in candidates {
        match store_candidate(conn, &mut known, source_id, candidate, dedup, index)? {
            Outcome::New => counts.new += 1,
            Outcome::Filtered => counts.filtered += 1,
            Outcome::Duplicate => counts.duplicate += 1,
            Outcome::Merged => counts.merged += 1,
            Outcome::Updated => counts.updated += 1,
        }
        known.candidate_done();
        if known.rows_held() >= SEND_EVERY {
            known.write_rows(conn)?;
            conn.send_now()?;
        }
    }
    known.write_rows(conn)?;
    Ok(counts)
}

/// Stores one candidate through the deduplication layers: this source's GUID (an update when
/// the feed's text for it changed), the canonical link, the exact body fingerprint, then
/// near-duplicates within the window. A merged item keeps its own row (its source and link
/// are named in the published entry) with `duplicate_of` pointing at its cluster's entry.
fn store_candidate(
    conn: &mut dyn Conn,
    known: &mut Known,
    source_id: i64,
    c: &Candidate,
    dedup: &DedupParams,
    index: &mut BandIndex,
) -> Result<Outcome, StoreError> {
    let seen = now();
    if let Some(guid) = known.guid(conn, &c.guid)? {
        if guid.feed_hash.as_deref() == Some(c.feed_hash.as_str()) {
            return Ok(Outcome::Duplicate);
        }
        known.execute_later(
            conn,
            "UPDATE item_guids SET feed_hash = ?3 WHERE source_id = ?1 AND guid = ?2",
            values![source_id, &c.guid, &c.feed_hash],
        )?;
        known.remember_guid(&c.guid, guid.item_id, &c.feed_hash, guid.owner);
        // Only the source that owns the item may change it; a GUID that was merged into another
        // source's item just remembers the new text.
        if guid.owner != Some(source_id) || guid.feed_hash.is_none() {
            return Ok(Outcome::Duplicate);
        }
        update_item(conn, known, guid.item_id, c)?;
        known.body_changed(guid.item_id);
        if let Some(signature) = &c.signature {
            index.insert(guid.item_id, seen, signature.bands);
        }
        return Ok(Outcome::Updated);
    }
    if known.is_tombstoned(conn, &c.guid, c.canonical_link.as_deref())? {
        // Retention removed this story: it does not come back, under this GUID or a new one.
        known.execute_later(
            conn,
            "INSERT INTO tombstone_guids (source_id, guid, removed_at) VALUES (?1, ?2, ?3) ON CONFLICT DO NOTHING",
            values![source_id, &c.guid, seen],
        )?;
        known.tombstone_guid(&c.guid);
        return Ok(Outcome::Duplicate);
    }
    if let Some(link) = &c.canonical_link {
        if let Some(item) = known.item_with_link(conn, link)? {
            remember_guid(known, source_id, c, item.id, item.source);
            return Ok(Outcome::Duplicate);
        }
    }
    if c.hidden {
        // Kept out of the link and content layers, so it never swallows a visible report.
        let hidden = Candidate { canonical_link: None, signature: None, ..c.clone() };
        let item_id = known.next_id(conn, "items")?;
        insert_item(known, item_id, source_id, &hidden, c.language.clone(), None, None, seen)?;
        index.looked_at(item_id);
        remember_guid(known, source_id, c, item_id, source_id);
        return Ok(Outcome::Filtered);
    }
    let body_story = match &c.signature {
        Some(signature) => match known.story_with_fingerprint(conn, signature.fingerprint)? {
            Some(story) => Some(story),
            None => nearest(conn, known, c, index.candidates(&signature.bands), dedup.threshold)?,
        },
        None => None,
    };
    let story = stories::gather(conn, known, c, body_story)?;
    let language = match &c.language {
        Some(language) => Some(language.clone()),
        None => match &c.canonical_link {
            Some(link) => known.declaring(conn, link)?.iter().find_map(|d| d.language.clone()),
            None => None,
        },
    };
    let item_id = known.next_id(conn, "items")?;
    let this = stories::Member {
        id: item_id,
        priority: known.priority(conn)?,
        language: language.clone(),
        published: c.published.unwrap_or(seen),
        is_published: false,
    };
    // Of a story with reports already, the best report (priority, language, earliest
    // published) is the published one, which may now be this one; its entry keeps its id.
    let (story_id, mut members) = match story {
        Some(story) => (story, known.members(conn, story)?),
        None => {
            let id = known.next_id(conn, "stories")?;
            known.add_row(Table::Stories, values![id]);
            (id, Vec::new())
        }
    };
    let best = stories::best(members.iter().chain([&this]), &dedup.languages).unwrap_or(item_id);
    if best != item_id && !members.is_empty() {
        // The stored reports change only if the published one was not the best already.
        if known.has_rows_of(story_id) {
            known.write_rows(conn)?;
        }
        stories::publish(conn, story_id, &members, best)?;
    }
    let duplicate_of = Some(best).filter(|&best| best != item_id);
    insert_item(known, item_id, source_id, c, language, Some(story_id), duplicate_of, seen)?;
    known.stored(item_id, c, story_id, seen);
    index.looked_at(item_id);
    for edition in &c.editions {
        known.add_row(Table::Alternates, values![item_id, &edition.link, edition.language.as_deref()]);
    }
    crate::metrics::metrics().extraction_step(&c.extracted_by);
    if let Some(signature) = &c.signature {
        index.insert(item_id, seen, signature.bands);
    }
    remember_guid(known, source_id, c, item_id, source_id);
    let outcome = match (story, best == item_id) {
        (None, _) => Outcome::New,
        (Some(_), true) => {
            // This report takes over the story's entry: the others point at it (once it is stored).
            known.write_rows(conn)?;
            stories::publish(conn, story_id, &members, best)?;
            Outcome::New
        }
        (Some(_), false) => Outcome::Merged,
    };
    members.push(this);
    for member in &mut members {
        member.is_published = member.id == best;
    }
    known.set_members(story_id, members);
    Ok(outcome)
}

/// The story of the most similar of the `candidates` (items sharing an LSH band, from the
/// index) whose similarity reaches `threshold`, among those inside the window.
fn nearest(
    conn: &mut dyn Conn,
    known: &mut Known,
    c: &Candidate,
    candidates: Vec<i64>,
    threshold: f64,
) -> Result<Option<i64>, StoreError> {
    if candidates.is_empty() {
        return Ok(None);
    }
    let own = near::shingles(c.content_text.as_deref().unwrap_or_default());
    let mut best: Option<(f64, i64)> = None;
    for id in candidates {
        let Some(neighbour) = known.neighbour(conn, id)? else { continue };
        let score = near::similarity(&own, &near::shingles(neighbour.text.as_deref().unwrap_or_default()));
        if score >= threshold && best.is_none_or(|(s, _)| score > s) {
            best = Some((score, neighbour.story));
        }
    }
    Ok(best.map(|(_, story)| story))
}

/// Brings the band index up to date before a write that stores items: at first use, every item
/// of the window; later, the items other nodes stored since the index last looked (item writes
/// are serialized by [`Conn::lock_for_dedup`], so every item above the highest id it has looked
/// at is new to it), read along the primary key a page at a time.
pub(super) fn catch_up_band_index(
    conn: &mut dyn Conn,
    index: &mut BandIndex,
    since: i64,
) -> Result<(), StoreError> {
    const PAGE: usize = 1000;
    if index.newest_id() == 0 {
        let rows = conn.query(
            "SELECT id, first_seen, bands FROM items
             WHERE first_seen >= ?1 AND bands IS NOT NULL AND hidden = 0 ORDER BY first_seen, id",
            values![since],
        )?;
        for row in rows {
            if let Some(bands) = near::bands_from_bytes(&row.get::<Vec<u8>>(2)?) {
                index.insert(row.get(0)?, row.get(1)?, bands);
            }
        }
        let newest: Option<i64> = conn.query_one("SELECT max(id) FROM items", &[])?.get(0)?;
        index.looked_at(newest.unwrap_or(0));
        return Ok(());
    }
    loop {
        let rows = conn.query(
            "SELECT id, first_seen, bands, hidden FROM items WHERE id > ?1 ORDER BY id LIMIT ?2",
            values![index.newest_id(), PAGE as i64],
        )?;
        let complete = rows.len() < PAGE;
        for row in rows {
            let (id, first_seen) = (row.get::<i64>(0)?, row.get::<i64>(1)?);
            index.looked_at(id);
            let bands = row.get::<Option<Vec<u8>>>(2)?.and_then(|bytes| near::bands_from_bytes(&bytes));
            match bands {
                Some(bands) if first_seen >= since && !row.get::<bool>(3)? => {
                    index.insert(id, first_seen, bands)
                }
                _ => {}
            }
        }
        if complete {
            return Ok(());
        }
    }
}

/// Holds back a new item's row and its tags.
#[allow(clippy::too_many_arguments)]
fn insert_item(
    known: &mut Known,
    id: i64,
    source_id: i64,
    c: &Candidate,
    language: Option<String>,
    story_id: Option<i64>,
    duplicate_of: Option<i64>,
    first_seen: i64,
) -> Result<(), StoreError> {
    known.add_row(
        Table::Items,
        values![
            id,
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
            first_seen,
            c.signature.as_ref().map(|s| s.fingerprint),
            c.signature.as_ref().map(|s| near::bands_to_bytes(&s.bands)),
            duplicate_of,
            language,
            c.hidden,
            story_id,
        ],
    );
    for tag in &c.categories {
        known.add_row(Table::Tags, values![tag, id]);
    }
    Ok(())
}

/// A known item's new title, body and metadata; its fingerprint and bands follow the new body.
fn update_item(
    conn: &mut dyn Conn,
    known: &mut Known,
    item_id: i64,
    c: &Candidate,
) -> Result<(), StoreError> {
    known.execute_later(
        conn,
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
    known.execute_later(conn, "DELETE FROM item_tags WHERE item_id = ?1", values![item_id])?;
    for tag in &c.categories {
        known.add_row(Table::Tags, values![tag, item_id]);
    }
    Ok(())
}

/// Records that this source's candidate's GUID leads to `item_id`, owned by source `owner`.
fn remember_guid(known: &mut Known, source_id: i64, c: &Candidate, item_id: i64, owner: i64) {
    known.add_row(Table::Guids, values![source_id, &c.guid, item_id, &c.feed_hash]);
    known.remember_guid(&c.guid, item_id, &c.feed_hash, Some(owner));
}
