-- Tier 1 (short-term memory) and the job ledger, written together in one transaction on the
-- request path. Times are integers in milliseconds since the Unix epoch (UTC).

-- One row per turn ("interaction"): what the user said and what the assistant answered.
CREATE TABLE turns (
    id                 TEXT PRIMARY KEY,          -- interaction_id (client-chosen or generated)
    user_id            TEXT NOT NULL,
    session_id         TEXT NOT NULL,
    user_message       TEXT NOT NULL,
    assistant_response TEXT NOT NULL,
    ts_ms              INTEGER NOT NULL,          -- when the turn happened
    metadata           TEXT NOT NULL,             -- JSON object
    request_hash       TEXT NOT NULL,             -- sha256 of the request, to tell a retry (same) from a conflict (409)
    job_id             TEXT NOT NULL,
    created_ms         INTEGER NOT NULL,          -- when we stored it
    reflected          INTEGER NOT NULL DEFAULT 0 -- 1 once every tier committed
);
CREATE INDEX turns_by_user_time ON turns(user_id, ts_ms);

-- The reflection job ledger, and the embedded queue: workers lease rows from it.
CREATE TABLE jobs (
    job_id           TEXT PRIMARY KEY,
    user_id          TEXT NOT NULL,
    priority         INTEGER NOT NULL,            -- 0 low .. 3 urgent
    state            TEXT NOT NULL,               -- queued | processing | retrying | completed | dead
    payload          TEXT NOT NULL,               -- the job's wire JSON
    attempts         INTEGER NOT NULL DEFAULT 0,  -- processing attempts started
    max_retries      INTEGER NOT NULL,
    available_ms     INTEGER NOT NULL,            -- not taken before this time (retry backoff)
    lease_owner      TEXT,
    lease_expires_ms INTEGER,
    last_error       TEXT,
    dead_reason      TEXT,
    published_ms     INTEGER,                     -- broker confirm time (outbox); embedded: = created
    created_ms       INTEGER NOT NULL,
    updated_ms       INTEGER NOT NULL,
    completed_ms     INTEGER
);
-- What a worker looks for: waiting jobs, highest priority first, oldest first.
CREATE INDEX jobs_claimable ON jobs(priority DESC, available_ms) WHERE state IN ('queued', 'retrying');
CREATE INDEX jobs_leased ON jobs(lease_expires_ms) WHERE state = 'processing';
CREATE INDEX jobs_by_state ON jobs(state, updated_ms);
CREATE INDEX jobs_by_user ON jobs(user_id, state);

-- Per-tier outcome of a job: the idempotency record. A tier's data and its row here are
-- committed in one transaction, so a re-delivered job skips what already committed.
CREATE TABLE job_tiers (
    job_id     TEXT NOT NULL,
    tier       TEXT NOT NULL,                     -- episodic | semantic | procedural
    status     TEXT NOT NULL,                     -- completed | failed
    result     TEXT,                              -- JSON: what was written
    error      TEXT,
    attempts   INTEGER NOT NULL DEFAULT 1,
    latency_ms REAL,
    updated_ms INTEGER NOT NULL,
    PRIMARY KEY (job_id, tier)
);
