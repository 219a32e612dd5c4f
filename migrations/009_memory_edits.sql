-- Memory editing: every explicit add, update and delete of an episode, fact or rule, with who
-- and when (the audit record), and what re-reflection must not write again (the tombstone).
-- (008 is reserved for the RabbitMQ outbox.)
CREATE TABLE memory_edits (
    id            INTEGER PRIMARY KEY,
    user_id       TEXT NOT NULL,
    tier          TEXT NOT NULL,                 -- episodic | semantic | procedural
    memory_id     INTEGER NOT NULL,              -- row id in its tier (episodes, relations, rules)
    action        TEXT NOT NULL,                 -- add | update | delete
    actor         TEXT NOT NULL,                 -- API key id (8 hex digits of its SHA-256), or 'local' without keys
    at_ms         INTEGER NOT NULL,
    before        TEXT,                          -- JSON of the memory before (update, delete)
    after         TEXT,                          -- JSON of the memory after (add, update)
    -- Tombstone (update and delete): the memory as reflection would write it again —
    -- episodic 'job:<job_id>', semantic '<subject>|<PREDICATE>|<object>' (normalised entity
    -- names), procedural '<topic>|<statement>' — with the job that wrote it and its evidence
    -- ids. Reflection skips a memory whose signature is tombstoned for its job or evidence.
    signature     TEXT,
    source_job_id TEXT,
    evidence      TEXT                           -- JSON array
);
CREATE INDEX memory_edits_by_user ON memory_edits(user_id, id);
CREATE INDEX memory_edits_tombstones ON memory_edits(user_id, tier, signature) WHERE signature IS NOT NULL;

-- Episode text edited in place: keep the full-text index in step (the insert and delete
-- triggers of 007 cover the rest).
CREATE TRIGGER episodes_au AFTER UPDATE OF text, context ON episodes BEGIN
    INSERT INTO episodes_fts(episodes_fts, rowid, text, context) VALUES ('delete', old.id, old.text, old.context);
    INSERT INTO episodes_fts(rowid, text, context) VALUES (new.id, new.text, new.context);
END;
