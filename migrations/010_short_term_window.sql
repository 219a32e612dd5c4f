-- Tier 1 window: turns beyond a user's window (by count and by tokens) are folded into one
-- running summary per user by the reflector (never on the request path), oldest first.
ALTER TABLE turns ADD COLUMN folded INTEGER NOT NULL DEFAULT 0;   -- 1 once in the summary
CREATE INDEX turns_unfolded ON turns(user_id, ts_ms) WHERE folded = 0;

CREATE TABLE short_term_summaries (
    user_id      TEXT PRIMARY KEY,
    summary      TEXT NOT NULL,        -- one line per folded turn that kept an episode, oldest first
    folded_turns INTEGER NOT NULL,     -- turns folded so far (filler turns count, add no line)
    through_ms   INTEGER NOT NULL,     -- timestamp of the newest folded turn
    updated_ms   INTEGER NOT NULL
);

-- Retention prunes completed jobs and reflected turns by age.
CREATE INDEX jobs_completed_age ON jobs(completed_ms) WHERE state = 'completed';
CREATE INDEX turns_by_age ON turns(created_ms);
