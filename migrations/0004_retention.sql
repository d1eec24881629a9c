-- Retention tombstones (what it removed, so a source that still lists an item does not bring it
-- back), the health check's write probe, and when a source's current run of failures began.

ALTER TABLE sources ADD COLUMN failing_since INTEGER;  -- first failure since the last success; NULL when healthy

CREATE TABLE tombstone_guids (
    source_id  INTEGER NOT NULL,
    guid       TEXT NOT NULL,
    removed_at INTEGER NOT NULL,
    PRIMARY KEY (source_id, guid)
) WITHOUT ROWID;

CREATE TABLE tombstone_links (
    canonical_link TEXT PRIMARY KEY,
    removed_at     INTEGER NOT NULL
) WITHOUT ROWID;

-- One row the health check rewrites to prove the database takes writes.
CREATE TABLE health (
    id         INTEGER PRIMARY KEY CHECK (id = 1),
    checked_at INTEGER NOT NULL
);
