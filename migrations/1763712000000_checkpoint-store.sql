-- Up Migration

-- One row per (service, session): its newest snapshot's position and status, and the highest epoch ever
-- accepted (the fencing token). Kept even when cleanup deletes the session's snapshots.
CREATE SEQUENCE checkpoint_write_seq;

CREATE TABLE checkpoint_sessions (
  service       text        NOT NULL,
  session_id    text        NOT NULL,
  owner_id      text,
  status        text        NOT NULL CHECK (status IN ('active', 'interrupted', 'completed', 'stopped')),
  latest_epoch  bigint      NOT NULL CHECK (latest_epoch >= 0),
  latest_seq    bigint      NOT NULL CHECK (latest_seq >= 0),
  -- Server-side write order of the newest snapshot: orders an owner's sessions without trusting any clock.
  latest_write  bigint      NOT NULL DEFAULT nextval('checkpoint_write_seq'),
  started_at    timestamptz NOT NULL DEFAULT now(),
  updated_at    timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (service, session_id)
);

CREATE INDEX checkpoint_sessions_owner_idx
  ON checkpoint_sessions (service, owner_id, latest_write DESC) WHERE owner_id IS NOT NULL;
CREATE INDEX checkpoint_sessions_finished_idx
  ON checkpoint_sessions (updated_at) WHERE status IN ('completed', 'stopped');

-- Every stored snapshot. The primary key serves "latest" as one backward index lookup and makes a
-- redelivered snapshot a no-op. States over ~2 KB are compressed by TOAST with lz4. They are `json`, not
-- `jsonb`: snapshots are written far more often than queried, json input is only validated (about half the
-- server CPU of building jsonb), and SQL that wants jsonb operators casts `state::jsonb`.
CREATE TABLE checkpoints (
  service        text        NOT NULL,
  session_id     text        NOT NULL,
  epoch          bigint      NOT NULL CHECK (epoch >= 0),
  seq            bigint      NOT NULL CHECK (seq >= 0),
  owner_id       text,
  kind           text        NOT NULL CHECK (kind IN ('periodic', 'event', 'iteration', 'shutdown', 'interrupt', 'final')),
  status         text        NOT NULL CHECK (status IN ('active', 'interrupted', 'completed', 'stopped')),
  schema_version integer     NOT NULL CHECK (schema_version >= 0),
  taken_at       timestamptz NOT NULL,
  persisted_at   timestamptz NOT NULL DEFAULT now(),
  state          json        COMPRESSION lz4 NOT NULL,
  PRIMARY KEY (service, session_id, epoch, seq)
);

CREATE INDEX checkpoints_persisted_at_idx ON checkpoints (persisted_at);

-- Down Migration

DROP TABLE checkpoints;
DROP TABLE checkpoint_sessions;
DROP SEQUENCE checkpoint_write_seq;
