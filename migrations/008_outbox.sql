-- RabbitMQ mode: the jobs table is the outbox. A job row is written with its turn, with
-- `published_ms` NULL; the relay publishes it and sets `published_ms` when the broker
-- confirmed it. This index holds exactly the rows the relay still has to publish.
-- IF NOT EXISTS: harmless to apply twice (see the merge note on migration order in
-- docs/RABBITMQ.md).
CREATE INDEX IF NOT EXISTS jobs_unpublished ON jobs(created_ms) WHERE published_ms IS NULL;
