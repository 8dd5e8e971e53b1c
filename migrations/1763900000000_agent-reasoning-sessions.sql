-- Up Migration

-- The reasoner's sessions in the shape the seed's monitoring query reads (docs/architecture.md, "Reasoner"), over the
-- checkpointer's tables, so nothing but the checkpointer ever writes them.
-- - is_interrupted: the newest snapshot is the one saved on SIGTERM; it turns false as soon as a worker
--   takes the run over, and stays false after a crash (the run is then merely stalled).
-- - checkpoint_state: the newest snapshot's state.
-- - checkpoint_history: the iteration steps of the chain of thought the session is on now, in order, each
--   with its 'iteration' key. Each iteration snapshot holds one step; when an iteration was stored twice
--   (a worker that lost its job wrote it before being fenced off), the newer owner's copy wins. Steps of a
--   chain abandoned after a corrupted or expired checkpoint are left out.
CREATE VIEW agent_reasoning_sessions AS
SELECT s.owner_id                                               AS agent_id,
       s.session_id,
       s.started_at,
       s.status = 'interrupted'                                 AS is_interrupted,
       CASE WHEN s.status = 'completed' THEN s.updated_at END   AS completed_at,
       s.status,
       s.latest_epoch                                           AS attempt,
       s.updated_at,
       latest.state::jsonb                                      AS checkpoint_state,
       COALESCE(history.steps, '[]'::jsonb)                     AS checkpoint_history
FROM checkpoint_sessions s
LEFT JOIN LATERAL (
  SELECT c.state FROM checkpoints c
  WHERE c.service = s.service AND c.session_id = s.session_id
  ORDER BY c.epoch DESC, c.seq DESC LIMIT 1
) latest ON true
LEFT JOIN LATERAL (
  SELECT (c.state -> 'chain')::jsonb AS chain FROM checkpoints c
  WHERE c.service = s.service AND c.session_id = s.session_id AND json_typeof(c.state -> 'chain') = 'number'
  ORDER BY c.epoch DESC, c.seq DESC LIMIT 1
) current_chain ON true
LEFT JOIN LATERAL (
  SELECT jsonb_agg(step.body ORDER BY step.iteration) AS steps
  FROM (
    SELECT DISTINCT ON (iteration) (c.state -> 'step')::jsonb AS body, (c.state #>> '{step,iteration}')::numeric AS iteration
    FROM checkpoints c
    WHERE c.service = s.service AND c.session_id = s.session_id
      AND (c.state -> 'chain')::jsonb = current_chain.chain
      AND json_typeof(c.state #> '{step,iteration}') = 'number'
    ORDER BY iteration, c.epoch DESC, c.seq DESC
  ) step
) history ON true
WHERE s.service = 'reasoner';

-- Down Migration

DROP VIEW agent_reasoning_sessions;
