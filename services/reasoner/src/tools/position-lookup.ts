import { z } from "zod";
import { round, type AgentTool } from "./agent-tool.js";

const input = z.strictObject({});

export const positionLookupTool: AgentTool<typeof input> = {
  name: "lookup_position",
  description: "Look up the agent's current position in the symbol (side, quantity, entry price, unrealized P&L), or null when flat.",
  input,
  run: async (_input, { symbol, market }) => {
    const position = market.position;
    if (!position) return { symbol, position: null, asOf: market.asOf };
    const direction = position.side === "long" ? 1 : -1;
    const unrealizedPnl = (market.price - position.entryPrice) * position.qty * direction;
    return {
      symbol,
      position: {
        side: position.side,
        qty: position.qty,
        entryPrice: position.entryPrice,
        marketValue: round(market.price * position.qty, 2),
        unrealizedPnl: round(unrealizedPnl, 2),
        unrealizedPnlPct: round(((market.price / position.entryPrice - 1) * 100 * direction), 4),
      },
      asOf: market.asOf,
    };
  },
};
