-- The Tier 1 fold reads only the reflected, unfolded turns at or past the window's edge, in
-- this order (see migrations/013_foldable_turns.sql of the SQLite store): a backlog of turns
-- still queued is never read.
CREATE INDEX IF NOT EXISTS turns_foldable ON turns(user_id, ts_ms, created_ms, id)
    WHERE NOT folded AND reflected;
