-- Up Migration

-- No query reads checkpoints by persisted_at alone: restores, history and cleanup go through the primary key
-- (cleanup's older-than filter applies within one session's range), and stats scan whatever they count. The
-- index only cost every snapshot one more B-tree insert.
DROP INDEX IF EXISTS checkpoints_persisted_at_idx;

-- Down Migration

CREATE INDEX IF NOT EXISTS checkpoints_persisted_at_idx ON checkpoints (persisted_at);
