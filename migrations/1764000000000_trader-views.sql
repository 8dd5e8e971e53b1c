-- Up Migration

-- The trader's sessions and holdings for monitoring, read from each session's newest snapshot in the
-- checkpointer's tables (nothing but the checkpointer writes them). A value of an unexpected JSON type in a
-- snapshot's state reads as NULL rather than failing the whole query.
CREATE VIEW trading_sessions AS
SELECT s.session_id,
       s.owner_id                                                                  AS account_id,
       s.status,
       COALESCE(CASE WHEN jsonb_typeof(latest.state -> 'sessionStartedAt') = 'string'
                     THEN (latest.state ->> 'sessionStartedAt')::timestamptz END, s.started_at) AS started_at,
       s.updated_at,
       CASE WHEN jsonb_typeof(latest.state -> 'symbols') = 'array'
            THEN ARRAY(SELECT jsonb_array_elements_text(latest.state -> 'symbols')) END AS symbols,
       CASE WHEN jsonb_typeof(latest.state -> 'strategy') = 'object' THEN latest.state -> 'strategy' END AS strategy,
       CASE WHEN jsonb_typeof(latest.state -> 'positions') = 'array'
            THEN jsonb_array_length(latest.state -> 'positions') END               AS open_positions,
       CASE WHEN jsonb_typeof(latest.state -> 'closedTrades') = 'number'
            THEN (latest.state ->> 'closedTrades')::bigint END                     AS closed_trades,
       CASE WHEN jsonb_typeof(latest.state -> 'realizedPl') = 'number'
            THEN (latest.state ->> 'realizedPl')::numeric END                      AS realized_pl,
       CASE WHEN jsonb_typeof(latest.state #> '{account,portfolioValue}') = 'number'
            THEN (latest.state #>> '{account,portfolioValue}')::numeric END        AS portfolio_value,
       latest.taken_at                                                             AS last_checkpoint_at,
       latest.kind                                                                 AS last_checkpoint_kind,
       s.latest_epoch                                                              AS epoch
FROM checkpoint_sessions s
LEFT JOIN LATERAL (
  SELECT c.state::jsonb AS state, c.taken_at, c.kind FROM checkpoints c
  WHERE c.service = s.service AND c.session_id = s.session_id
  ORDER BY c.epoch DESC, c.seq DESC LIMIT 1
) latest ON true
WHERE s.service = 'trader';

-- One row per position the session held at its newest snapshot.
CREATE VIEW positions AS
SELECT t.session_id,
       t.account_id,
       t.status                                                                      AS session_status,
       p ->> 'symbol'                                                                AS symbol,
       p ->> 'side'                                                                  AS side,
       CASE WHEN jsonb_typeof(p -> 'qty') = 'number' THEN (p ->> 'qty')::numeric END AS qty,
       CASE WHEN jsonb_typeof(p -> 'entryPrice') = 'number' THEN (p ->> 'entryPrice')::numeric END AS entry_price,
       CASE WHEN jsonb_typeof(p -> 'stopLoss') = 'number' THEN (p ->> 'stopLoss')::numeric END AS stop_loss,
       CASE WHEN jsonb_typeof(p -> 'takeProfit') = 'number' THEN (p ->> 'takeProfit')::numeric END AS take_profit,
       p ->> 'origin'                                                                AS origin,
       CASE WHEN jsonb_typeof(p -> 'openedAt') = 'string' THEN (p ->> 'openedAt')::timestamptz END AS opened_at,
       p #>> '{orders,entryClientOrderId}'                                           AS entry_client_order_id,
       p #>> '{orders,entryId}'                                                      AS entry_order_id,
       p #>> '{orders,takeProfitId}'                                                 AS take_profit_order_id,
       p #>> '{orders,stopLossId}'                                                   AS stop_loss_order_id,
       t.last_checkpoint_at                                                          AS as_of
FROM (
  SELECT s.session_id, s.owner_id AS account_id, s.status, latest.state, latest.taken_at AS last_checkpoint_at
  FROM checkpoint_sessions s
  JOIN LATERAL (
    SELECT c.state::jsonb AS state, c.taken_at FROM checkpoints c
    WHERE c.service = s.service AND c.session_id = s.session_id
    ORDER BY c.epoch DESC, c.seq DESC LIMIT 1
  ) latest ON true
  WHERE s.service = 'trader' AND jsonb_typeof(latest.state -> 'positions') = 'array'
) t
CROSS JOIN LATERAL jsonb_array_elements(t.state -> 'positions') p
WHERE jsonb_typeof(p) = 'object';

-- Down Migration

DROP VIEW positions;
DROP VIEW trading_sessions;
