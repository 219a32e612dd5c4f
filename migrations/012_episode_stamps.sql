-- Each user's episode count, highest episode id and deletions, kept by triggers: the recall
-- vector cache's change stamp (`episode_version`) reads one row instead of counting the
-- user's index entries (count(*) over 100k episodes took 3-7 ms per query).
-- `max_id` only grows (a deleted highest id stays). `deletes` counts deletions: SQLite
-- reuses the highest id once its row is gone (no AUTOINCREMENT), so a delete followed by an
-- insert can leave (episodes, max_id) unchanged; the cache reloads whenever `deletes` moved.
CREATE TABLE episode_stamps (
    user_id  TEXT PRIMARY KEY,
    episodes INTEGER NOT NULL,
    max_id   INTEGER NOT NULL,
    deletes  INTEGER NOT NULL DEFAULT 0
) WITHOUT ROWID;
INSERT INTO episode_stamps (user_id, episodes, max_id)
    SELECT user_id, count(*), max(id) FROM episodes GROUP BY user_id;
CREATE TRIGGER episode_stamps_ai AFTER INSERT ON episodes BEGIN
    INSERT INTO episode_stamps (user_id, episodes, max_id) VALUES (new.user_id, 1, new.id)
    ON CONFLICT (user_id) DO UPDATE SET episodes = episodes + 1, max_id = max(max_id, excluded.max_id);
END;
CREATE TRIGGER episode_stamps_ad AFTER DELETE ON episodes BEGIN
    UPDATE episode_stamps SET episodes = episodes - 1, deletes = deletes + 1 WHERE user_id = old.user_id;
END;
