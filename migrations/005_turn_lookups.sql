-- Lookups the reflector and recall make on Tier 1: a job's turn (marking it reflected), and
-- a turn's neighbours in its session (the context window recall shows around an episode).
CREATE INDEX turns_by_job ON turns(job_id);
CREATE INDEX turns_by_session_time ON turns(user_id, session_id, ts_ms);
