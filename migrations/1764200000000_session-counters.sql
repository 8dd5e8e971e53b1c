-- Up Migration

-- Counters kept with each session, so `stats` reads one row per session instead of every snapshot, and retention
-- finds the sessions it has work in without visiting the others. The checkpointer's own statements keep them:
-- every write adds what it stored, every cleanup subtracts what it deleted (services/checkpointer/src/store).
-- - snapshot_count, snapshot_bytes: the session's stored snapshots and the size of their states.
-- - oldest_persisted_at, newest_persisted_at: the earliest and latest persisted_at among them (NULL when none).
-- A checkpointer of an older version does not keep them: stop every checkpointer before applying this, as
-- `docker compose up` and `npm run stack` do by running the migrations first.
ALTER TABLE checkpoint_sessions
  ADD COLUMN snapshot_count      bigint NOT NULL DEFAULT 0,
  ADD COLUMN snapshot_bytes      bigint NOT NULL DEFAULT 0,
  ADD COLUMN oldest_persisted_at timestamptz,
  ADD COLUMN newest_persisted_at timestamptz;

-- The size of the state as its producer wrote it (JSON text, before compression), so a delete can subtract it
-- without reading the state back. NULL for rows stored before this migration; their TOAST size counts instead.
ALTER TABLE checkpoints ADD COLUMN state_bytes integer;

-- Both ALTERs hold their tables exclusively until commit: nothing is written or deleted between this count and it.
UPDATE checkpoint_sessions s
SET snapshot_count      = c.rows,
    snapshot_bytes      = c.bytes,
    oldest_persisted_at = c.oldest,
    newest_persisted_at = c.newest
FROM (
  SELECT service, session_id, count(*) AS rows, sum(pg_column_size(state)) AS bytes,
         min(persisted_at) AS oldest, max(persisted_at) AS newest
  FROM checkpoints
  GROUP BY service, session_id
) c
WHERE s.service = c.service AND s.session_id = c.session_id;

-- Retention trims finished sessions holding more than the kept count: this index lists exactly those, fewest
-- snapshots first, so a run walks only the sessions it has something to delete in.
CREATE INDEX checkpoint_sessions_trim_idx
  ON checkpoint_sessions (snapshot_count, service, session_id) WHERE status IN ('completed', 'stopped');

-- Expiry deletes every snapshot of sessions finished long ago; once emptied, a session leaves this index.
DROP INDEX checkpoint_sessions_finished_idx;
CREATE INDEX checkpoint_sessions_expiry_idx
  ON checkpoint_sessions (updated_at, service, session_id) WHERE status IN ('completed', 'stopped') AND snapshot_count > 0;

-- Raised by a write that created a session's row at the same moment as a concurrent write at a higher epoch
-- (neither could lock a row that did not exist yet): the write is rolled back and run again, and then fenced.
CREATE FUNCTION checkpoint_session_raced(service text, session_id text) RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION 'session %/% was created concurrently by a write at a higher epoch; write again', service, session_id
    USING ERRCODE = 'serialization_failure';
END
$$;

-- Down Migration

DROP FUNCTION checkpoint_session_raced(text, text);
DROP INDEX checkpoint_sessions_expiry_idx;
CREATE INDEX checkpoint_sessions_finished_idx
  ON checkpoint_sessions (updated_at) WHERE status IN ('completed', 'stopped');
DROP INDEX checkpoint_sessions_trim_idx;
ALTER TABLE checkpoints DROP COLUMN state_bytes;
ALTER TABLE checkpoint_sessions
  DROP COLUMN snapshot_count,
  DROP COLUMN snapshot_bytes,
  DROP COLUMN oldest_persisted_at,
  DROP COLUMN newest_persisted_at;
