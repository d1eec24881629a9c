-- Several nodes on one database: the same columns and tables as migrations/0006_cluster.sql.

ALTER TABLE sources ADD COLUMN lease_node TEXT;
ALTER TABLE sources ADD COLUMN lease_until BIGINT;
ALTER TABLE sources ADD COLUMN last_node TEXT;

CREATE TABLE nodes (
    name         TEXT PRIMARY KEY,
    listen       TEXT NOT NULL,
    version      TEXT NOT NULL,
    started_at   BIGINT NOT NULL,
    heartbeat_at BIGINT NOT NULL
);

CREATE TABLE cluster_jobs (
    name        TEXT PRIMARY KEY,
    last_node   TEXT,
    last_run_at BIGINT
);

CREATE TABLE feed_version (
    id      INTEGER PRIMARY KEY CHECK (id = 1),
    version BIGINT NOT NULL
);
INSERT INTO feed_version (id, version) VALUES (1, 0);

CREATE TABLE host_slots (
    host  TEXT NOT NULL,
    slot  INTEGER NOT NULL,
    node  TEXT,
    until BIGINT,
    PRIMARY KEY (host, slot)
);
CREATE TABLE host_turns (
    host    TEXT PRIMARY KEY,
    next_at BIGINT NOT NULL
);

CREATE TABLE page_fetches (
    link  TEXT PRIMARY KEY,
    node  TEXT NOT NULL,
    until BIGINT NOT NULL
);
