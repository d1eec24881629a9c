-- Sources, their poll state, items and the per-source GUIDs that point at them.
-- Times are Unix seconds (UTC).

CREATE TABLE sources (
    id              INTEGER PRIMARY KEY,
    name            TEXT NOT NULL UNIQUE,
    url             TEXT NOT NULL,
    title           TEXT,
    etag            TEXT,
    last_modified   TEXT,
    last_poll_at    INTEGER,
    last_success_at INTEGER,
    last_status     INTEGER,
    last_error      TEXT,
    error_count     INTEGER NOT NULL DEFAULT 0,
    next_poll_at    INTEGER
);

CREATE TABLE items (
    id             INTEGER PRIMARY KEY,
    source_id      INTEGER NOT NULL REFERENCES sources(id),
    canonical_link TEXT UNIQUE,
    link           TEXT,
    title          TEXT NOT NULL,
    author         TEXT,
    published      INTEGER,
    updated        INTEGER,
    categories     TEXT NOT NULL DEFAULT '[]',  -- JSON array of strings
    summary        TEXT,
    content_html   TEXT,
    content_text   TEXT,
    extracted_by   TEXT NOT NULL,               -- rule | generic | feed
    first_seen     INTEGER NOT NULL
);

CREATE INDEX items_newest ON items (COALESCE(published, first_seen) DESC, id DESC);

-- Every (source, guid) ever seen, and the item it became or was merged into.
CREATE TABLE item_guids (
    source_id INTEGER NOT NULL REFERENCES sources(id),
    guid      TEXT NOT NULL,
    item_id   INTEGER NOT NULL REFERENCES items(id),
    PRIMARY KEY (source_id, guid)
) WITHOUT ROWID;
