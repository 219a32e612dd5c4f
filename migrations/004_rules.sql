-- Tier 4: procedural memory. Preferences, instructions and constraints, one row per distinct
-- statement; within a topic the most recently stated rule is active and supersedes the rest.
CREATE TABLE rules (
    id             INTEGER PRIMARY KEY,
    user_id        TEXT NOT NULL,
    kind           TEXT NOT NULL,                 -- preference | instruction | constraint
    topic          TEXT NOT NULL,
    statement      TEXT NOT NULL,
    confidence     REAL NOT NULL,
    first_ms       INTEGER NOT NULL,              -- earliest turn that stated it
    last_ms        INTEGER NOT NULL,              -- latest turn that stated it
    superseded_by  INTEGER,                       -- the active rule of the topic, when not this one
    invalid_ms     INTEGER,
    embedding      BLOB NOT NULL,
    evidence       TEXT NOT NULL,                 -- JSON array
    created_ms     INTEGER NOT NULL,
    UNIQUE (user_id, topic, statement)
);
CREATE INDEX rules_by_user ON rules(user_id, topic);
