//! What the store already holds about a poll's candidates — their GUIDs, tombstones, the items
//! under their links and fingerprints, the editions that name them, their near-duplicates'
//! texts — read for all candidates at once, one query per kind, before the poll's items are
//! stored, and kept current as they are. A poll of 50 candidates then costs three queries
//! instead of about ten per candidate: on PostgreSQL, where each is a network round trip, that
//! was most of a poll's time.
//!
//! Every lookup is a cache: a key the first reads did not cover (an edition link met later, a
//! band neighbour stored by this poll) is read then, and an entry a write may have made stale
//! is dropped and read again. The poll's new rows wait here too ([`PendingRows`]) and are
//! written before any read or other write that could depend on them.

use std::collections::{HashMap, HashSet};

use super::pending::{PendingRows, Table};
use super::sql::{Conn, FromValue, Row, Value};
use super::stories::Member;
use super::{Candidate, StoreError};
use crate::dedup::index::BandIndex;

/// Most keys one `IN (…)` list carries; longer lists are read in several queries.
const MOST_KEYS: usize = 64;

/// A GUID this source already sent.
#[derive(Debug, Clone)]
pub(super) struct KnownGuid {
    pub item_id: i64,
    /// The feed's text for it when last seen (`None`: stored before feedmill kept it).
    pub feed_hash: Option<String>,
    /// The source of the item it leads to.
    pub owner: Option<i64>,
}

/// The item stored under a canonical link.
#[derive(Debug, Clone, Copy)]
pub(super) struct LinkedItem {
    pub id: i64,
    pub source: i64,
    pub story: Option<i64>,
    pub first_seen: i64,
}

/// An item that names a link as one of its editions.
#[derive(Debug, Clone)]
pub(super) struct Declaring {
    pub language: Option<String>,
    pub story: Option<i64>,
    pub first_seen: i64,
}

/// A near-duplicate candidate inside the window: its story and text.
#[derive(Debug, Clone)]
pub(super) struct Neighbour {
    pub story: i64,
    pub text: Option<String>,
}

/// The lookups of one poll's write (see the module's documentation).
pub(super) struct Known {
    source_id: i64,
    /// The near-duplicate window's start.
    since: i64,
    guids: HashMap<String, Option<KnownGuid>>,
    tombstoned_guids: HashMap<String, bool>,
    tombstoned_links: HashMap<String, bool>,
    links: HashMap<String, Option<LinkedItem>>,
    /// Fingerprint → an item inside the window with a story: (item, story).
    fingerprints: HashMap<i64, Option<(i64, i64)>>,
    declaring: HashMap<String, Vec<Declaring>>,
    neighbours: HashMap<i64, Option<Neighbour>>,
    /// A story's visible reports, by story.
    members: HashMap<i64, Vec<Member>>,
    /// Ids reserved for this write's new rows, by table.
    ids: HashMap<&'static str, Vec<i64>>,
    /// How many rows this write may still insert per table (the pool's refill size).
    remaining: usize,
    /// The source's priority, once read.
    priority: Option<i64>,
    /// The stories of the items among the rows held back.
    pending_stories: HashSet<i64>,
    pending: PendingRows,
}

/// One kind of lookup, for a list of keys.
#[derive(Debug, Clone, Copy)]
enum Lookup {
    Guids,
    TombstonedGuids,
    TombstonedLinks,
    Links,
    Declaring,
    Fingerprints,
    Neighbours,
    Members,
    Priority,
}

impl Lookup {
    /// Its query; `{keys}` stands for the list of keys, after the parameters of [`Known::fixed`].
    fn sql(self) -> &'static str {
        match self {
            Lookup::Guids => {
                "SELECT g.guid, g.item_id, g.feed_hash, i.source_id
                 FROM item_guids g LEFT JOIN items i ON i.id = g.item_id
                 WHERE g.source_id = ?1 AND g.guid IN ({keys})"
            }
            Lookup::TombstonedGuids => "SELECT guid FROM tombstone_guids WHERE source_id = ?1 AND guid IN ({keys})",
            Lookup::TombstonedLinks => "SELECT canonical_link FROM tombstone_links WHERE canonical_link IN ({keys})",
            Lookup::Links => {
                "SELECT canonical_link, id, source_id, story_id, first_seen FROM items WHERE canonical_link IN ({keys})"
            }
            Lookup::Declaring => {
                "SELECT a.link, a.language, i.story_id, i.first_seen
                 FROM item_alternates a JOIN items i ON i.id = a.item_id WHERE a.link IN ({keys})"
            }
            Lookup::Fingerprints => {
                "SELECT fingerprint, id, story_id FROM items
                 WHERE first_seen >= ?1 AND story_id IS NOT NULL AND fingerprint IN ({keys})"
            }
            Lookup::Neighbours => {
                "SELECT id, story_id, content_text FROM items
                 WHERE first_seen >= ?1 AND story_id IS NOT NULL AND id IN ({keys})"
            }
            Lookup::Members => {
                "SELECT i.id, s.priority, i.language, COALESCE(i.published, i.first_seen),
                        i.duplicate_of IS NULL, i.story_id
                 FROM items i JOIN sources s ON s.id = i.source_id WHERE i.hidden = 0 AND i.story_id IN ({keys})"
            }
            Lookup::Priority => "SELECT id, priority FROM sources WHERE id IN ({keys})",
        }
    }
}

impl Known {
    /// Reads what the store holds about `candidates` of source `source_id`, in two round trips:
    /// their GUIDs, tombstones, links and the editions that name them; then, for the candidates
    /// whose GUID and link are both new, the items with their fingerprints and the texts of
    /// their near-duplicate candidates.
    pub fn read(
        conn: &mut dyn Conn,
        source_id: i64,
        candidates: &[Candidate],
        since: i64,
        index: &BandIndex,
    ) -> Result<Known, StoreError> {
        let mut known = Known {
            source_id,
            since,
            guids: HashMap::new(),
            tombstoned_guids: HashMap::new(),
            tombstoned_links: HashMap::new(),
            links: HashMap::new(),
            fingerprints: HashMap::new(),
            declaring: HashMap::new(),
            neighbours: HashMap::new(),
            members: HashMap::new(),
            ids: HashMap::new(),
            remaining: candidates.len(),
            priority: None,
            pending_stories: HashSet::new(),
            pending: PendingRows::default(),
        };
        let guids = || candidates.iter().map(|c| Value::from(&c.guid));
        let own_links = || candidates.iter().filter_map(|c| c.canonical_link.as_deref()).map(Value::from);
        let edition_links = candidates.iter().flat_map(|c| c.editions.iter().map(|e| Value::from(&e.link)));
        known.look_up(
            conn,
            vec![
                (Lookup::Guids, guids().collect()),
                (Lookup::TombstonedGuids, guids().collect()),
                (Lookup::TombstonedLinks, own_links().collect()),
                (Lookup::Links, own_links().chain(edition_links).collect()),
                (Lookup::Declaring, own_links().collect()),
                (Lookup::Priority, vec![Value::Int(source_id)]),
            ],
        )?;
        let signed: Vec<_> = candidates
            .iter()
            .filter(|c| matches!(known.guids.get(&c.guid), Some(None)) && !c.hidden)
            .filter(|c| c.canonical_link.as_ref().is_none_or(|l| matches!(known.links.get(l), Some(None))))
            .filter_map(|c| c.signature.as_ref())
            .collect();
        let mut neighbours: Vec<i64> = signed.iter().flat_map(|s| index.candidates(&s.bands)).collect();
        neighbours.sort_unstable();
        neighbours.dedup();
        known.look_up(
            conn,
            vec![
                (Lookup::Fingerprints, signed.iter().map(|s| Value::Int(s.fingerprint)).collect()),
                (Lookup::Neighbours, neighbours.into_iter().map(Value::Int).collect()),
            ],
        )?;
        // The reports of the stories those bodies belong to, which candidates may join.
        let stories = known.fingerprints.values().flatten().map(|&(_, story)| story);
        let mut stories: Vec<i64> =
            stories.chain(known.neighbours.values().flatten().map(|n| n.story)).collect();
        stories.sort_unstable();
        stories.dedup();
        known.look_up(conn, vec![(Lookup::Members, stories.into_iter().map(Value::Int).collect())])?;
        Ok(known)
    }

    /// The parameters a lookup's query takes before its keys.
    fn fixed(&self, lookup: Lookup) -> Value {
        match lookup {
            Lookup::Fingerprints | Lookup::Neighbours => Value::Int(self.since),
            _ => Value::Int(self.source_id),
        }
    }

    /// Runs the lookups, together ([`Conn::lookup`]), after writing the rows held back, and
    /// records what they found, and that the other keys were not found.
    fn look_up(&mut self, conn: &mut dyn Conn, lookups: Vec<(Lookup, Vec<Value>)>) -> Result<(), StoreError> {
        self.write_rows(conn)?;
        let mut queries = Vec::new();
        let mut asked = Vec::new();
        for (lookup, mut keys) in lookups {
            keys.sort_by(|a, b| match (a, b) {
                (Value::Int(a), Value::Int(b)) => a.cmp(b),
                (Value::Text(a), Value::Text(b)) => a.cmp(b),
                _ => std::cmp::Ordering::Equal,
            });
            keys.dedup();
            let uses_fixed = lookup.sql().contains("?1");
            for chunk in keys.chunks(MOST_KEYS) {
                let mut params = if uses_fixed { vec![self.fixed(lookup)] } else { Vec::new() };
                let first = params.len() + 1;
                // Padded to a power of two with the last key, so few statement texts serve every poll.
                let size = chunk.len().next_power_of_two();
                let list: Vec<String> = (first..first + size).map(|k| format!("?{k}")).collect();
                params.extend(chunk.iter().cloned());
                params.resize(first - 1 + size, chunk[chunk.len() - 1].clone());
                queries.push((lookup.sql().replace("{keys}", &list.join(", ")), params));
            }
            asked.push((lookup, keys.len().div_ceil(MOST_KEYS), keys));
        }
        let mut answers = conn.lookup(&queries)?.into_iter();
        for (lookup, chunks, keys) in asked {
            let rows: Vec<Row> = answers.by_ref().take(chunks).flatten().collect();
            self.absorb(lookup, &keys, rows)?;
        }
        Ok(())
    }

    /// Records a lookup's answer: the rows found for some of `keys`, none for the others.
    fn absorb(&mut self, lookup: Lookup, keys: &[Value], rows: Vec<Row>) -> Result<(), StoreError> {
        let texts = || keys.iter().filter_map(String::from_value);
        let numbers = || keys.iter().filter_map(i64::from_value);
        match lookup {
            Lookup::Guids => {
                for key in texts() {
                    self.guids.entry(key).or_insert(None);
                }
                for row in rows {
                    let guid = KnownGuid { item_id: row.get(1)?, feed_hash: row.get(2)?, owner: row.get(3)? };
                    self.guids.insert(row.get(0)?, Some(guid));
                }
            }
            Lookup::TombstonedGuids | Lookup::TombstonedLinks => {
                let set = match lookup {
                    Lookup::TombstonedGuids => &mut self.tombstoned_guids,
                    _ => &mut self.tombstoned_links,
                };
                for key in texts() {
                    set.entry(key).or_insert(false);
                }
                for row in rows {
                    set.insert(row.get(0)?, true);
                }
            }
            Lookup::Links => {
                for key in texts() {
                    self.links.entry(key).or_insert(None);
                }
                for row in rows {
                    let item = LinkedItem {
                        id: row.get(1)?,
                        source: row.get(2)?,
                        story: row.get(3)?,
                        first_seen: row.get(4)?,
                    };
                    self.links.insert(row.get(0)?, Some(item));
                }
            }
            Lookup::Declaring => {
                for key in texts() {
                    self.declaring.entry(key).or_default();
                }
                for row in rows {
                    let declaring =
                        Declaring { language: row.get(1)?, story: row.get(2)?, first_seen: row.get(3)? };
                    self.declaring.entry(row.get(0)?).or_default().push(declaring);
                }
            }
            Lookup::Fingerprints => {
                for key in numbers() {
                    self.fingerprints.entry(key).or_insert(None);
                }
                for row in rows {
                    self.fingerprints.insert(row.get(0)?, Some((row.get(1)?, row.get(2)?)));
                }
            }
            Lookup::Members => {
                for key in numbers() {
                    self.members.entry(key).or_default();
                }
                for row in rows {
                    self.members.entry(row.get(5)?).or_default().push(Member::from_row(&row)?);
                }
            }
            Lookup::Priority => {
                for row in rows {
                    self.priority = Some(row.get(1)?);
                }
            }
            Lookup::Neighbours => {
                for key in numbers() {
                    self.neighbours.entry(key).or_insert(None);
                }
                for row in rows {
                    self.neighbours
                        .insert(row.get(0)?, Some(Neighbour { story: row.get(1)?, text: row.get(2)? }));
                }
            }
        }
        Ok(())
    }

    /// Looks one key up (one the first reads did not cover).
    fn read_one(&mut self, conn: &mut dyn Conn, lookup: Lookup, key: Value) -> Result<(), StoreError> {
        self.look_up(conn, vec![(lookup, vec![key])])
    }

    /// What this source's `guid` leads to, if it sent it before.
    pub fn guid(&mut self, conn: &mut dyn Conn, guid: &str) -> Result<Option<KnownGuid>, StoreError> {
        if !self.guids.contains_key(guid) {
            self.read_one(conn, Lookup::Guids, Value::from(guid))?;
        }
        Ok(self.guids.get(guid).cloned().flatten())
    }

    /// Records that this source's `guid` now leads to `item_id` (owned by `owner`).
    pub fn remember_guid(&mut self, guid: &str, item_id: i64, feed_hash: &str, owner: Option<i64>) {
        let known = KnownGuid { item_id, feed_hash: Some(feed_hash.to_owned()), owner };
        self.guids.insert(guid.to_owned(), Some(known));
    }

    /// Whether retention removed this source's `guid` or the story at `link`.
    pub fn is_tombstoned(
        &mut self,
        conn: &mut dyn Conn,
        guid: &str,
        link: Option<&str>,
    ) -> Result<bool, StoreError> {
        if !self.tombstoned_guids.contains_key(guid) {
            self.read_one(conn, Lookup::TombstonedGuids, Value::from(guid))?;
        }
        if self.tombstoned_guids.get(guid) == Some(&true) {
            return Ok(true);
        }
        let Some(link) = link else { return Ok(false) };
        if !self.tombstoned_links.contains_key(link) {
            self.read_one(conn, Lookup::TombstonedLinks, Value::from(link))?;
        }
        Ok(self.tombstoned_links.get(link) == Some(&true))
    }

    /// Records a tombstone for this source's `guid`.
    pub fn tombstone_guid(&mut self, guid: &str) {
        self.tombstoned_guids.insert(guid.to_owned(), true);
    }

    /// The item stored under canonical link `link`.
    pub fn item_with_link(
        &mut self,
        conn: &mut dyn Conn,
        link: &str,
    ) -> Result<Option<LinkedItem>, StoreError> {
        if !self.links.contains_key(link) {
            self.read_one(conn, Lookup::Links, Value::from(link))?;
        }
        Ok(self.links.get(link).copied().flatten())
    }

    /// The story of an item inside the window with this exact body.
    pub fn story_with_fingerprint(
        &mut self,
        conn: &mut dyn Conn,
        fingerprint: i64,
    ) -> Result<Option<i64>, StoreError> {
        if !self.fingerprints.contains_key(&fingerprint) {
            self.read_one(conn, Lookup::Fingerprints, Value::Int(fingerprint))?;
        }
        Ok(self.fingerprints.get(&fingerprint).copied().flatten().map(|(_, story)| story))
    }

    /// The items that name `link` as one of their editions.
    pub fn declaring(&mut self, conn: &mut dyn Conn, link: &str) -> Result<&[Declaring], StoreError> {
        if !self.declaring.contains_key(link) {
            self.read_one(conn, Lookup::Declaring, Value::from(link))?;
        }
        Ok(self.declaring.get(link).map(Vec::as_slice).unwrap_or_default())
    }

    /// Item `id`'s story and text, if it is inside the window and has a story.
    pub fn neighbour(&mut self, conn: &mut dyn Conn, id: i64) -> Result<Option<Neighbour>, StoreError> {
        if !self.neighbours.contains_key(&id) {
            self.read_one(conn, Lookup::Neighbours, Value::Int(id))?;
        }
        Ok(self.neighbours.get(&id).cloned().flatten())
    }

    /// The source's priority.
    pub fn priority(&mut self, conn: &mut dyn Conn) -> Result<i64, StoreError> {
        if self.priority.is_none() {
            self.read_one(conn, Lookup::Priority, Value::Int(self.source_id))?;
        }
        self.priority.ok_or(StoreError::NoRow)
    }

    /// The story's visible reports (an item this write holds back included).
    pub fn members(&mut self, conn: &mut dyn Conn, story: i64) -> Result<Vec<Member>, StoreError> {
        if !self.members.contains_key(&story) {
            self.read_one(conn, Lookup::Members, Value::Int(story))?;
        }
        Ok(self.members.get(&story).cloned().unwrap_or_default())
    }

    /// Records the story's reports after a new one joined it and the published one was chosen.
    pub fn set_members(&mut self, story: i64, members: Vec<Member>) {
        self.members.insert(story, members);
    }

    /// Whether `first_seen` is inside the window.
    pub fn in_window(&self, first_seen: i64) -> bool {
        first_seen >= self.since
    }

    /// Records an item this write stored: under its link, fingerprint and editions, as a
    /// near-duplicate candidate.
    pub fn stored(&mut self, item_id: i64, c: &Candidate, story: i64, first_seen: i64) {
        self.pending_stories.insert(story);
        if let Some(link) = &c.canonical_link {
            let item = LinkedItem { id: item_id, source: self.source_id, story: Some(story), first_seen };
            self.links.insert(link.clone(), Some(item));
        }
        if let Some(signature) = &c.signature {
            let entry = self.fingerprints.entry(signature.fingerprint).or_insert(None);
            if entry.is_none() {
                *entry = Some((item_id, story));
            }
            self.neighbours.insert(item_id, Some(Neighbour { story, text: c.content_text.clone() }));
        }
        for edition in &c.editions {
            if let Some(declaring) = self.declaring.get_mut(&edition.link) {
                let language = edition.language.clone();
                declaring.push(Declaring { language, story: Some(story), first_seen });
            }
        }
    }

    /// Forgets what item `item_id`'s body was known by (its text and fingerprint changed).
    pub fn body_changed(&mut self, item_id: i64) {
        self.neighbours.remove(&item_id);
        self.fingerprints.clear();
    }

    /// Forgets every story id held (two stories were joined: their items changed story).
    pub fn stories_changed(&mut self) {
        self.members.clear();
        self.links.clear();
        self.fingerprints.clear();
        self.declaring.clear();
        self.neighbours.clear();
    }

    /// Holds back a new row of `table` until something needs it written.
    pub fn add_row(&mut self, table: Table, row: &[Value]) {
        self.pending.add(table, row);
    }

    /// Writes the rows held back.
    pub fn write_rows(&mut self, conn: &mut dyn Conn) -> Result<(), StoreError> {
        self.pending_stories.clear();
        self.pending.write(conn)
    }

    /// How many new items' rows are held back.
    pub fn rows_held(&self) -> usize {
        self.pending.items()
    }

    /// Whether an item of `story` is among the rows held back.
    pub fn has_rows_of(&self, story: i64) -> bool {
        self.pending_stories.contains(&story)
    }

    /// A write that comes after the rows held back ([`Conn::execute_later`]).
    pub fn execute_later(
        &mut self,
        conn: &mut dyn Conn,
        sql: &str,
        params: &[Value],
    ) -> Result<(), StoreError> {
        self.write_rows(conn)?;
        conn.execute_later(sql, params)
    }

    /// An id for a new row of `table` (`items` or `stories`), from those reserved for this
    /// write; when they run out, as many as candidates remain are reserved for both tables.
    pub fn next_id(&mut self, conn: &mut dyn Conn, table: &'static str) -> Result<i64, StoreError> {
        if self.ids.get(table).is_none_or(Vec::is_empty) {
            let tables = ["items", "stories"];
            let reserved = conn.reserve_ids(&tables, self.remaining.max(1))?;
            for (table, mut ids) in tables.into_iter().zip(reserved) {
                ids.reverse();
                self.ids.insert(table, ids);
            }
        }
        self.ids.get_mut(table).and_then(Vec::pop).ok_or(StoreError::NoRow)
    }

    /// One candidate fewer may still need new rows (sizes the next reservation).
    pub fn candidate_done(&mut self) {
        self.remaining = self.remaining.saturating_sub(1);
    }
}
