-- The Tier 1 fold (store/window.rs) looks for the reflected, unfolded turns at or past the
-- window's edge, oldest first. With only turns_unfolded it walked every unfolded turn of the
-- user older than the edge, reflected or not, to test `reflected` on the table row: a backlog
-- of N queued turns was walked once per job, N^2 for the whole backlog. This index holds only
-- the turns the fold can take, in its order. Turns enter it when their job completes and
-- leave it when folded, both off the request path.
CREATE INDEX IF NOT EXISTS turns_foldable ON turns(user_id, ts_ms, created_ms, id)
    WHERE folded = 0 AND reflected = 1;
