-- Tier 2: episodic memory. Curated, self-contained episodes with absolute dates and vectors.
CREATE TABLE episodes (
    id           INTEGER PRIMARY KEY,             -- also the full-text rowid
    user_id      TEXT NOT NULL,
    job_id       TEXT NOT NULL UNIQUE,            -- one episode per job at most (idempotency)
    speaker      TEXT NOT NULL,
    text         TEXT NOT NULL,
    summary      TEXT NOT NULL,
    importance   REAL NOT NULL,                   -- 0..1
    tags         TEXT NOT NULL,                   -- JSON array of strings
    occurred_ms  INTEGER NOT NULL,                -- event time
    observed_ms  INTEGER NOT NULL,                -- the turn's timestamp
    embedding    BLOB NOT NULL,                   -- little-endian f32 x dim
    evidence     TEXT NOT NULL,                   -- JSON array: dia_ids or interaction ids
    created_ms   INTEGER NOT NULL
);
CREATE INDEX episodes_by_user ON episodes(user_id, id);

-- BM25 over episode text (SQLite FTS5, external content: the text lives once, in episodes).
CREATE VIRTUAL TABLE episodes_fts USING fts5(text, content = 'episodes', content_rowid = 'id', tokenize = 'porter unicode61');
CREATE TRIGGER episodes_ai AFTER INSERT ON episodes BEGIN
    INSERT INTO episodes_fts(rowid, text) VALUES (new.id, new.text);
END;
CREATE TRIGGER episodes_ad AFTER DELETE ON episodes BEGIN
    INSERT INTO episodes_fts(episodes_fts, rowid, text) VALUES ('delete', old.id, old.text);
END;
