import { startSimulator, type RunningSimulator } from "@savepoint/alpaca-simulator";
import { sdk } from "@savepoint/alpaca-simulator/testing";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { defaultJobOptions, type ThinkPayload } from "@savepoint/shared";
import { decisionOf, iterationsStored, market, nextSessionId, pollUntil, storedIterations, think, useReasonerStack } from "./support.js";

const ITERATIONS = 8;
/** A Monday mid-session, so the simulated market is open and daily bars reach back over full weeks. */
const START = "2026-11-30T16:00:00Z";
const DAY_BARS = 1_440;

describe("a live market on every attempt, from the broker through the Alpaca SDK", () => {
  const stack = useReasonerStack("reasoner-market", { modelLatencyMs: 100 });
  let sim: RunningSimulator;

  beforeAll(async () => {
    // Orders fill within their request (the simulator's instantOrders shortcut): the broker's lifecycle is not under test here.
    sim = await startSimulator({ start: START, historyBars: 35 * DAY_BARS, universe: { AAPL: { price: 190 } }, instantOrders: true });
  });
  afterAll(async () => {
    await sim?.close();
  });

  /** The market each stored iteration's run info says it reasoned on, by epoch. */
  async function marketsByEpoch(sessionId: string) {
    const { rows } = await stack.env.query<{ epoch: string; market: Record<string, unknown> }>(
      "SELECT epoch, state::jsonb #> '{run,market}' AS market FROM checkpoints WHERE session_id = $1 AND kind = 'iteration' ORDER BY epoch, seq",
      [sessionId],
    );
    return new Map(rows.map((row) => [Number(row.epoch), row.market]));
  }

  it("each attempt reads the latest price, daily bars and the broker's position; a resumed run sees where they moved", async () => {
    const broker = sdk(sim.url);
    await broker.orders.market({ symbol: "AAPL", qty: "10", side: "buy", timeInForce: "day" });
    await pollUntil(() => broker.positions.getAllOpenPositions(), (positions) => positions.length === 1);
    const settings = { APCA_API_BASE_URL: sim.url, APCA_DATA_BASE_URL: sim.url };

    const { reasoner: first } = await stack.startInProcessReasoner(settings);
    // The producer's view is stale: another price, and no position.
    const job = await think(stack.producer.queue, "agent-live", ITERATIONS, market({ price: 150, position: null }));
    await iterationsStored(stack.env, job.id!, 2);
    await first.close();
    const firstPrice = sim.control.price("AAPL");

    // While the run is parked, the price moves and part of the position is sold.
    await broker.orders.market({ symbol: "AAPL", qty: "4", side: "sell", timeInForce: "day" });
    await pollUntil(() => broker.positions.getOpenPosition({ symbolOrAssetId: "AAPL" }), (position) => Number(position.qty) === 6);
    const movedPrice = sim.control.setPrice("AAPL", 201.5);
    await stack.startInProcessReasoner(settings);
    const result = await decisionOf(job, stack.producer.events);
    expect(result).toMatchObject({ resumed: true, iterations: ITERATIONS });

    // By attempt, oldest first: the first reasoner's (after any attempt that failed before thinking), then the resumed one.
    const markets = [...(await marketsByEpoch(job.id!)).values()];
    expect(markets).toHaveLength(2);
    expect(markets[0]).toEqual({
      source: "broker",
      price: firstPrice,
      previousClose: expect.any(Number),
      quotedAt: expect.any(String),
      position: { side: "long", qty: 10, entryPrice: expect.any(Number) },
    });
    expect(markets[1]).toMatchObject({ source: "broker", price: movedPrice, position: { side: "long", qty: 6 } });

    const { logs } = await stack.producer.queue.getJobLogs(job.id!);
    const marketLines = logs.filter((line) => line.startsWith("market from "));
    expect(marketLines.slice(-2)).toEqual([
      expect.stringMatching(new RegExp(`^market from the broker's market data .*: price ${firstPrice} quoted at .*, \\d+ recent closes, position long 10 @ `)),
      expect.stringMatching(/^market from the broker's market data .*: price 201.5 quoted at .*, \d+ recent closes, position long 6 @ /),
    ]);
    // The tools see the broker's market too, not the job's: the first analysis read the first attempt's price.
    const { rows } = await stack.env.query<{ result: { price: number } }>(
      `SELECT call -> 'result' AS result FROM checkpoints, json_array_elements(state -> 'step' -> 'toolCalls') AS call
       WHERE session_id = $1 AND kind = 'iteration' AND call ->> 'name' = 'analyze_market' ORDER BY epoch, seq`,
      [job.id],
    );
    expect(rows[0]?.result.price).toBe(firstPrice);
  });

  it("with MARKET_BARS_TIMEFRAME=1Min, a run reasons on the last 30 minute closes, the previous close still daily", async () => {
    await stack.startInProcessReasoner({ APCA_API_BASE_URL: sim.url, MARKET_BARS_TIMEFRAME: "1Min" });
    const job = await think(stack.producer.queue, "agent-minutes", 4);
    await decisionOf(job, stack.producer.events);

    const { logs } = await stack.producer.queue.getJobLogs(job.id!);
    expect(logs).toContainEqual(expect.stringMatching(/^market from the broker's market data .*, 30 recent closes, /));
    const { rows } = await stack.env.query<{ result: { closesUsed: number; changePct: number | null } }>(
      `SELECT call -> 'result' AS result FROM checkpoints, json_array_elements(state -> 'step' -> 'toolCalls') AS call
       WHERE session_id = $1 AND kind = 'iteration' AND call ->> 'name' = 'analyze_market'`,
      [job.id],
    );
    expect(rows[0]?.result).toMatchObject({ closesUsed: 20, changePct: expect.any(Number) });
  });

  it("without market data configured, the job's marketContext is used, and the snapshot says so", async () => {
    await stack.startInProcessReasoner();
    const job = await think(stack.producer.queue, "agent-fallback", 4, market({ price: 150 }));
    await decisionOf(job, stack.producer.events);

    expect((await marketsByEpoch(job.id!)).get(1)).toEqual({ source: "job", price: 150, previousClose: 184.1, position: null });
  });

  it("a broker that cannot be read fails the attempt (to be retried) rather than reason on the job's old prices; the last one dead-letters", async () => {
    await stack.startInProcessReasoner({ APCA_API_BASE_URL: "http://127.0.0.1:9", MARKET_DATA_TIMEOUT_MS: "500" });
    const sessionId = nextSessionId("agent-no-broker");
    const job = await stack.producer.queue.add(
      "think",
      { agentId: "agent-no-broker", symbol: "AAPL", marketContext: market(), maxIterations: 4 } satisfies ThinkPayload,
      { ...defaultJobOptions.reasoning, jobId: sessionId, attempts: 2, backoff: { type: "fixed", delay: 100 } },
    );
    await expect(job.waitUntilFinished(stack.producer.events, 30_000)).rejects.toThrow(/GET \/v2\/\S+ failed: network error/);

    const { logs } = await stack.producer.queue.getJobLogs(sessionId);
    expect(logs.find((line) => line.startsWith("attempt 1: could not read the market"))).toMatch(
      /\(GET \/v2\/\S+ failed: network error: .*\); the attempt fails and is retried$/,
    );
    expect(logs.at(-1)).toMatch(/^dead-lettered \(attempts_exhausted\): could not read the market: GET \/v2\//);
    expect(await storedIterations(stack.env, sessionId)).toEqual([]);
    const { rows } = await stack.env.query("SELECT status, dead_letter_cause FROM agent_reasoning_sessions WHERE session_id = $1", [sessionId]);
    expect(rows).toEqual([{ status: "interrupted", dead_letter_cause: "attempts_exhausted" }]);
  });
});
