-- Cross-source deduplication (content fingerprints, near-duplicate clusters, updates), filters and tags.

ALTER TABLE sources ADD COLUMN priority INTEGER NOT NULL DEFAULT 0;  -- a cluster is published as its highest-priority source's item

ALTER TABLE items ADD COLUMN fingerprint INTEGER; -- hash of the normalized body words: exact duplicates
ALTER TABLE items ADD COLUMN bands BLOB;          -- MinHash LSH band keys of the body (20 little-endian u32): near-duplicate candidates
ALTER TABLE items ADD COLUMN duplicate_of INTEGER REFERENCES items(id);  -- the published item of its cluster; NULL when published itself
ALTER TABLE items ADD COLUMN changed_at INTEGER;  -- when the source last changed the title or body
ALTER TABLE items ADD COLUMN language TEXT;
ALTER TABLE items ADD COLUMN hidden INTEGER NOT NULL DEFAULT 0;  -- 1: failed its source's filter; kept so it is not fetched again, never published

CREATE INDEX items_fingerprint ON items (fingerprint) WHERE fingerprint IS NOT NULL;
CREATE INDEX items_cluster ON items (duplicate_of) WHERE duplicate_of IS NOT NULL;
CREATE INDEX items_banded ON items (first_seen) WHERE bands IS NOT NULL;  -- the dedup window, loaded into the band index at start

-- Each item's tags (its categories), for the per-tag feeds; matched exactly.
CREATE TABLE item_tags (
    tag     TEXT NOT NULL,
    item_id INTEGER NOT NULL REFERENCES items(id),
    PRIMARY KEY (tag, item_id)
) WITHOUT ROWID;
INSERT OR IGNORE INTO item_tags (tag, item_id)
    SELECT json_each.value, items.id FROM items, json_each(items.categories);

-- Each (source, guid)'s last seen title and feed text, hashed: a change is an update.
ALTER TABLE item_guids ADD COLUMN feed_hash TEXT;
