-- Users forgotten by DELETE /api/memory/user/{user_id}, and when: a job of theirs created
-- before that moment which arrives later (still in the broker, or re-published from an
-- outbox) is dropped instead of writing their memory back.
CREATE TABLE forgotten_users (
    user_id      TEXT PRIMARY KEY,
    forgotten_ms INTEGER NOT NULL
);
