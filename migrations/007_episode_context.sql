-- Contextual full-text: an episode is also findable by the words of the turn before it in
-- its session (the question an answer replies to: "What did you paint?" / "A sunrise").
-- The context is indexed, weighted below the episode's own text, and never shown as the
-- episode. External-content FTS5 tables cannot gain a column, so the index is rebuilt.
ALTER TABLE episodes ADD COLUMN context TEXT NOT NULL DEFAULT '';
DROP TRIGGER episodes_ai;
DROP TRIGGER episodes_ad;
DROP TABLE episodes_fts;
CREATE VIRTUAL TABLE episodes_fts USING fts5(text, context, content = 'episodes', content_rowid = 'id', tokenize = 'porter unicode61');
CREATE TRIGGER episodes_ai AFTER INSERT ON episodes BEGIN
    INSERT INTO episodes_fts(rowid, text, context) VALUES (new.id, new.text, new.context);
END;
CREATE TRIGGER episodes_ad AFTER DELETE ON episodes BEGIN
    INSERT INTO episodes_fts(episodes_fts, rowid, text, context) VALUES ('delete', old.id, old.text, old.context);
END;
INSERT INTO episodes_fts(episodes_fts) VALUES ('rebuild');
