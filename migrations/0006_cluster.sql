-- Several nodes on one database (PostgreSQL; a SQLite database has one node, and the same
-- columns so that `feedmill migrate --to` carries them over).

-- Which node polls a source now, until when, and which polled it last.
ALTER TABLE sources ADD COLUMN lease_node TEXT;     -- the node polling it now (NULL: nobody)
ALTER TABLE sources ADD COLUMN lease_until INTEGER; -- the lease ends here unless renewed (Unix seconds)
ALTER TABLE sources ADD COLUMN last_node TEXT;      -- the node that recorded its last poll

-- The nodes, as each reports itself.
CREATE TABLE nodes (
    name         TEXT PRIMARY KEY,
    listen       TEXT NOT NULL,
    version      TEXT NOT NULL,
    started_at   INTEGER NOT NULL,
    heartbeat_at INTEGER NOT NULL   -- renewed every third of the lease while the node runs
);

-- Jobs that run once per cluster (retention): the node that ran each last, and when.
CREATE TABLE cluster_jobs (
    name        TEXT PRIMARY KEY,
    last_node   TEXT,
    last_run_at INTEGER
);

-- Bumped by every commit that changes what the feeds show, so that every node knows when to
-- render its feeds again.
CREATE TABLE feed_version (
    id      INTEGER PRIMARY KEY CHECK (id = 1),
    version INTEGER NOT NULL
);
INSERT INTO feed_version (id, version) VALUES (1, 0);

-- Per-host limits held by all the nodes together: a request to a host takes one of its slots
-- (`per_host_concurrency` of them) and a turn (`per_host_rate`). Times in Unix milliseconds.
CREATE TABLE host_slots (
    host  TEXT NOT NULL,
    slot  INTEGER NOT NULL,
    node  TEXT,
    until INTEGER,          -- taken until then (renewed by the node's heartbeat); NULL: free
    PRIMARY KEY (host, slot)
);
CREATE TABLE host_turns (
    host    TEXT PRIMARY KEY,
    next_at INTEGER NOT NULL -- the next request's turn
);

-- Article pages being fetched, so that the cluster fetches each canonical link once.
CREATE TABLE page_fetches (
    link  TEXT PRIMARY KEY,
    node  TEXT NOT NULL,
    until INTEGER NOT NULL   -- Unix seconds: the claim ends here
);
