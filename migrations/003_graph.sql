-- Tier 3: semantic memory, a per-user knowledge graph. Entities are unique per user by
-- normalised name; aliases ("mom" -> Sarah) point at one entity. Relations are facts with
-- temporal validity: valid_ms .. invalid_ms (NULL = still true).
CREATE TABLE entities (
    id         INTEGER PRIMARY KEY,
    user_id    TEXT NOT NULL,
    name       TEXT NOT NULL,
    norm_name  TEXT NOT NULL,
    kind       TEXT NOT NULL,
    created_ms INTEGER NOT NULL,
    UNIQUE (user_id, norm_name)
);

CREATE TABLE entity_aliases (
    user_id    TEXT NOT NULL,
    alias_norm TEXT NOT NULL,
    entity_id  INTEGER NOT NULL REFERENCES entities(id) ON DELETE CASCADE,
    PRIMARY KEY (user_id, alias_norm)
);

CREATE TABLE relations (
    id          INTEGER PRIMARY KEY,
    user_id     TEXT NOT NULL,
    subject_id  INTEGER NOT NULL REFERENCES entities(id) ON DELETE CASCADE,
    predicate   TEXT NOT NULL,
    object_id   INTEGER NOT NULL REFERENCES entities(id) ON DELETE CASCADE,
    fact        TEXT NOT NULL,
    exclusive   INTEGER NOT NULL,                 -- 1: one value at a time in (subject, predicate)
    valid_ms    INTEGER NOT NULL,
    invalid_ms  INTEGER,                          -- set when a newer fact of the slot replaced it
    evidence    TEXT NOT NULL,                    -- JSON array
    job_id      TEXT NOT NULL,
    created_ms  INTEGER NOT NULL,
    UNIQUE (user_id, subject_id, predicate, object_id, valid_ms)
);
CREATE INDEX relations_by_subject ON relations(user_id, subject_id, predicate);
CREATE INDEX relations_by_object ON relations(user_id, object_id);
