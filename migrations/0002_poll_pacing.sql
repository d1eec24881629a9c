-- Pacing and identity of a source's feed between polls.
ALTER TABLE sources ADD COLUMN not_before INTEGER;  -- no scheduled poll before this (backoff, Retry-After, publisher's pace)
ALTER TABLE sources ADD COLUMN body_hash TEXT;      -- SHA-256 of the last parsed body: unchanged bodies are not parsed again
ALTER TABLE sources ADD COLUMN moved_from TEXT;     -- the configured URL that answered with a permanent redirect...
ALTER TABLE sources ADD COLUMN moved_to TEXT;       -- ...and where it now lives
