-- Up Migration

-- Hash partitioning of checkpoints and checkpoint_sessions by session (service, session_id), as an option.
-- Every statement of the checkpointer works unchanged on partitioned tables: each one names the session it
-- reads or writes, so Postgres prunes to the one partition holding it; stats and retention read the session
-- partitions' counters and partial indexes. Nothing needs it below tens of millions of rows; past that it keeps
-- each partition's indexes and autovacuum small. See README, "Partitioning".
--
-- savepoint_partition_checkpoint_tables(n) rebuilds both tables as n hash partitions each (named
-- checkpoints_p0 … and checkpoint_sessions_p0 …), copying their rows, their indexes (each partition's named
-- after the parent's) and the views over them. It holds both tables exclusively while it runs: on a populated
-- database, run it with the checkpointers stopped.
CREATE FUNCTION savepoint_partition_checkpoint_tables(partitions integer) RETURNS void LANGUAGE plpgsql AS $fn$
DECLARE
  item record;
  view_names text[] := '{}';
  view_definitions text[] := '{}';
  index_names text[] := '{}';
  index_tables text[] := '{}';
  index_bodies text[] := '{}';
  base text;
  i integer;
  p integer;
BEGIN
  IF partitions IS NULL OR partitions < 2 THEN
    RAISE EXCEPTION 'savepoint_partition_checkpoint_tables: partitions must be at least 2 (got %)', partitions;
  END IF;
  IF EXISTS (SELECT 1 FROM pg_partitioned_table WHERE partrelid IN ('checkpoints'::regclass, 'checkpoint_sessions'::regclass)) THEN
    RAISE EXCEPTION 'savepoint_partition_checkpoint_tables: the checkpoint tables are partitioned already';
  END IF;
  LOCK TABLE checkpoint_sessions, checkpoints IN ACCESS EXCLUSIVE MODE;

  -- The views over the two tables, oldest first, and their indexes other than the primary keys.
  FOR item IN
    SELECT DISTINCT v.oid, v.relname, pg_get_viewdef(v.oid) AS definition
    FROM pg_depend d JOIN pg_rewrite r ON r.oid = d.objid JOIN pg_class v ON v.oid = r.ev_class
    WHERE d.refobjid IN ('checkpoints'::regclass, 'checkpoint_sessions'::regclass) AND v.relkind = 'v'
    ORDER BY v.oid
  LOOP
    view_names := view_names || item.relname::text;
    view_definitions := view_definitions || item.definition;
  END LOOP;
  FOR item IN
    SELECT c.relname AS index_name, t.relname AS table_name, substring(pg_get_indexdef(x.indexrelid) FROM ' USING .*$') AS body
    FROM pg_index x JOIN pg_class c ON c.oid = x.indexrelid JOIN pg_class t ON t.oid = x.indrelid
    WHERE x.indrelid IN ('checkpoints'::regclass, 'checkpoint_sessions'::regclass) AND NOT x.indisprimary
  LOOP
    index_names := index_names || item.index_name::text;
    index_tables := index_tables || item.table_name::text;
    index_bodies := index_bodies || item.body;
  END LOOP;
  FOR i IN REVERSE coalesce(array_length(view_names, 1), 0)..1 LOOP
    EXECUTE format('DROP VIEW %I', view_names[i]);
  END LOOP;

  FOREACH base IN ARRAY ARRAY['checkpoint_sessions', 'checkpoints'] LOOP
    EXECUTE format('CREATE TABLE %I (LIKE %I INCLUDING DEFAULTS INCLUDING CONSTRAINTS INCLUDING COMPRESSION)
                    PARTITION BY HASH (service, session_id)', base || '_partitioned', base);
    FOR p IN 0..partitions - 1 LOOP
      EXECUTE format('CREATE TABLE %I PARTITION OF %I FOR VALUES WITH (MODULUS %s, REMAINDER %s)',
                     base || '_p' || p, base || '_partitioned', partitions, p);
    END LOOP;
    EXECUTE format('INSERT INTO %I SELECT * FROM %I', base || '_partitioned', base);
    EXECUTE format('DROP TABLE %I', base);
    EXECUTE format('ALTER TABLE %I RENAME TO %I', base || '_partitioned', base);
  END LOOP;

  ALTER TABLE checkpoint_sessions ADD CONSTRAINT checkpoint_sessions_pkey PRIMARY KEY (service, session_id);
  ALTER TABLE checkpoints ADD CONSTRAINT checkpoints_pkey PRIMARY KEY (service, session_id, epoch, seq);
  -- Each index again under its own name, and on each partition as <partition>_<what the name says after the table>.
  FOR i IN 1..coalesce(array_length(index_names, 1), 0) LOOP
    EXECUTE format('CREATE INDEX %I ON ONLY %I %s', index_names[i], index_tables[i], index_bodies[i]);
    FOR p IN 0..partitions - 1 LOOP
      EXECUTE format('CREATE INDEX %I ON %I %s',
                     index_tables[i] || '_p' || p || substring(index_names[i] FROM length(index_tables[i]) + 1),
                     index_tables[i] || '_p' || p, index_bodies[i]);
      EXECUTE format('ALTER INDEX %I ATTACH PARTITION %I', index_names[i],
                     index_tables[i] || '_p' || p || substring(index_names[i] FROM length(index_tables[i]) + 1));
    END LOOP;
  END LOOP;
  FOR i IN 1..coalesce(array_length(view_names, 1), 0) LOOP
    EXECUTE format('CREATE VIEW %I AS %s', view_names[i], view_definitions[i]);
  END LOOP;
  ANALYZE checkpoint_sessions;
  ANALYZE checkpoints;
END
$fn$;

-- Behind a setting: with savepoint.checkpoint_partitions set to n ≥ 2 for the migrating session (for example
-- PGOPTIONS='-c savepoint.checkpoint_partitions=16' npm run migrate), the tables are partitioned now.
DO $$
DECLARE
  partitions text := current_setting('savepoint.checkpoint_partitions', true);
BEGIN
  IF coalesce(partitions, '') <> '' THEN
    PERFORM savepoint_partition_checkpoint_tables(partitions::integer);
  END IF;
END
$$;

-- Down Migration

-- Partitioned tables stay partitioned: every statement works on them either way.
DROP FUNCTION savepoint_partition_checkpoint_tables(integer);
