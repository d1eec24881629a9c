-- Stories: what one published entry stands for. A story's id is its entry's id and never changes,
-- whichever of its reports is published; reports join it by body (exact or near-duplicate) or as
-- another language edition of one of its reports.

CREATE TABLE stories (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,  -- never reused: a reader that saw an id must never see it again for another story
    legacy      INTEGER NOT NULL DEFAULT 0,  -- 1: its entry id was handed out as /items/{id} before stories existed
    changed_at  INTEGER,                     -- when another of its reports became the published one
    merged_into INTEGER                      -- joined to this (older) story: its id leads there
);

ALTER TABLE items ADD COLUMN story_id INTEGER REFERENCES stories(id);  -- NULL for hidden items

-- Every visible cluster as it stands becomes a story under its published item's id, so the
-- entry ids already handed out (/items/N) stay the same.
INSERT INTO stories (id, legacy) SELECT id, 1 FROM items WHERE duplicate_of IS NULL AND NOT hidden;
UPDATE items SET story_id = COALESCE(duplicate_of, id) WHERE NOT hidden;

CREATE INDEX items_story ON items (story_id) WHERE story_id IS NOT NULL;

-- The other language editions an item's page declares (hreflang alternates, JSON-LD
-- workTranslation / translationOfWork), as canonical links.
CREATE TABLE item_alternates (
    item_id  INTEGER NOT NULL REFERENCES items(id),
    link     TEXT NOT NULL,
    language TEXT,
    PRIMARY KEY (item_id, link)
) WITHOUT ROWID;
CREATE INDEX item_alternates_link ON item_alternates (link);
