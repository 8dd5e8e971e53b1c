-- Up Migration

-- Dead letters made visible: a run that failed for good (its worker crashed more than
-- REASONER_MAX_STALLED_COUNT times, its attempts ran out, or the model API refused it) ends with a
-- `dead_lettered` event snapshot and the session status 'interrupted', so retention spares its checkpoints
-- and a re-drive resumes from them. Its newest snapshot says so; these columns lift the cause and reason out,
-- and turn NULL again as soon as a re-drive's attempt claims the run. Every earlier column is unchanged (the
-- seed's monitoring query still runs), and a dead-lettered run counts as interrupted: it waits for a person.
CREATE OR REPLACE VIEW agent_reasoning_sessions AS
SELECT s.owner_id                                               AS agent_id,
       s.session_id,
       s.started_at,
       s.status = 'interrupted'                                 AS is_interrupted,
       CASE WHEN s.status = 'completed' THEN s.updated_at END   AS completed_at,
       s.status,
       s.latest_epoch                                           AS attempt,
       s.updated_at,
       latest.state::jsonb                                      AS checkpoint_state,
       COALESCE(history.steps, '[]'::jsonb)                     AS checkpoint_history,
       dead_letter.persisted_at                                 AS dead_lettered_at,
       dead_letter.state ->> 'cause'                            AS dead_letter_cause,
       dead_letter.state ->> 'reason'                           AS dead_letter_reason
FROM checkpoint_sessions s
LEFT JOIN LATERAL (
  SELECT c.state, c.kind, c.persisted_at FROM checkpoints c
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
LEFT JOIN LATERAL (
  SELECT latest.state::jsonb AS state, latest.persisted_at
  WHERE latest.kind = 'event' AND json_typeof(latest.state -> 'event') = 'string' AND latest.state ->> 'event' = 'dead_lettered'
) dead_letter ON true
WHERE s.service = 'reasoner';

-- Down Migration

DROP VIEW agent_reasoning_sessions;

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
