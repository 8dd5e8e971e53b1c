import { startSimulator, type RunningSimulator } from "@savepoint/alpaca-simulator";
import { createModelServer, type ModelServer } from "@savepoint/model-server";
import { requestDecision, thinkJobId, type ThinkPayload, type ThinkResult } from "@savepoint/shared";
import { createTestEnvironment, openQueueWithEvents, spawnCheckpointer, stopNewestFirst, type QueueWithEvents, type ServiceProcess, type TestEnvironment } from "@savepoint/shared/testing";
import { expectBasicAuthChallenge, launchHeadlessChromium, saveScreenshot, type HeadlessBrowser } from "@savepoint/shared/testing/browser";
import { hostname } from "node:os";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { formatPl } from "../src/pages/format.js";
import { PASSWORD, spawnReasoner, spawnTrader, startConsole, USER, type RunningConsole } from "./support.js";

/**
 * The simulator and trader at the trader's own tests' pace (services/trader/test/support.ts): Alpaca's order
 * lifecycle and NYSE hours (a Monday, an hour after the open), the rate limits raised for ten ticks a second.
 * The simulator's clock moves only when the test moves it, so the broker stands still while the pages are read.
 */
const SIMULATOR = { seed: "console-browser", start: new Date("2026-01-05T15:30:00.000Z"), historyBars: 240, requestsPerMinute: 20_000 };
const TRADER_SETTINGS = { BROKER_REQUESTS_PER_MINUTE: "5000" };
/** Three symbols entered at once (no threshold), brackets wide enough that only the test's prices close them. */
const SESSION = ["--symbols", "AAPL,MSFT,GOOGL", "--entry-threshold-pct", "0", "--lookback", "5", "--position-size", "5000", "--stop-loss-pct", "5", "--take-profit-pct", "5"];
const PACE = ["--interval", "0.1", "--checkpoint-interval", "0.3"];
/** Long enough that the run is still thinking when its worker is stopped after three iterations. */
const ITERATIONS = 10;
const MODEL_LATENCY_MS = 150;

/** What the console reads of a trader snapshot's positions (the trader's TraderState, services/trader/src/session/state.ts). */
interface StoredPosition {
  symbol: string;
  side: "long" | "short";
  qty: number;
  tradeNo: number;
  entryFilling?: boolean;
  exit?: unknown;
  orders: { takeProfitId: string | null };
}

interface Change {
  kind: string;
  trade?: { symbol: string; via: string };
}

/** What the console reads of a resume the trader recorded in its state (services/trader/src/session/resume-record.ts). */
interface ResumeRecord {
  epoch: number;
  downtimeMs: number;
  positions: { before: number; atBroker: number; after: number };
  closedTradesAdded: number;
  realizedPlAdded: number;
  changes: Array<{ category: string; text: string; change: Change }>;
}

const payload = (agentId: string, maxIterations: number): ThinkPayload => ({
  agentId,
  symbol: "AAPL",
  marketContext: { price: 187.4, previousClose: 184.1, recentCloses: [180.1, 181.3, 182.8, 183.5, 184.1, 185.0] },
  maxIterations,
});

/** "$1,234.56" or "+$1.20" / "−$1.20" as a number. */
const dollars = (text: string) => Number(text.replace("−", "-").replace(/[$,+]/g, ""));

describe("the console in headless Chromium, against a stack that traded and reasoned, each resumed once", () => {
  const stops: Array<() => Promise<unknown>> = [];
  let env: TestEnvironment;
  let sim: RunningSimulator;
  let model: ModelServer;
  let producer: QueueWithEvents;
  let service: RunningConsole;
  let browser: HeadlessBrowser["context"];
  let trading: Awaited<ReturnType<typeof tradeCrashAndResume>>;
  let reasoning: Awaited<ReturnType<typeof thinkInterruptAndResume>>;

  /** Polls `check` until it gives a value; with `broker`, moves its clock a minute between looks (orders route and fill on it). */
  async function until<T>(what: string, check: () => T | undefined | Promise<T | undefined>, broker?: RunningSimulator): Promise<T> {
    const deadline = Date.now() + 20_000;
    for (;;) {
      const value = await check();
      if (value !== undefined) return value;
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
      broker?.control.advance(1);
      await new Promise((resolve) => setTimeout(resolve, 25));
    }
  }

  async function newestTraderSnapshot(sessionId: string) {
    const { rows } = await env.query<{ epoch: string; seq: string; state: { positions: StoredPosition[]; closedTrades: number; resumes?: ResumeRecord[] } }>(
      "SELECT epoch, seq, state FROM checkpoints WHERE service = 'trader' AND session_id = $1 ORDER BY epoch DESC, seq DESC LIMIT 1",
      [sessionId],
    );
    const row = rows[0];
    return row && { epoch: Number(row.epoch), seq: Number(row.seq), state: row.state };
  }

  /** Trades at the take-profit leg's limit until the broker has filled it (a fill may come in parts). */
  function fillTakeProfit(position: StoredPosition) {
    return until(`${position.symbol}'s take-profit filled`, () => {
      const leg = sim.control.state().orders.find((order) => order.id === position.orders.takeProfitId);
      if (!leg) throw new Error(`the broker has no take-profit leg ${position.orders.takeProfitId} for ${position.symbol}`);
      if (leg.status === "filled") return leg;
      sim.control.setPrice(position.symbol, Number(leg.limit_price));
      return undefined;
    });
  }

  /**
   * A trader session that opens three positions and closes one at its take-profit, is SIGKILLed, has a second
   * take-profit fill at the broker while it is down, and is resumed with --resume: its reconciliation books that
   * trade. The resumed trader keeps running (and checkpointing) while the pages are read.
   */
  async function tradeCrashAndResume() {
    sim = await startSimulator(SIMULATOR);
    stops.push(() => sim.close());
    const first = await spawnTrader(env, sim.url, [...SESSION, ...PACE], TRADER_SETTINGS);
    stops.push(() => first.trader.kill("SIGKILL"));
    const { sessionId } = first;
    const whole = (position: StoredPosition) => !position.entryFilling && !position.exit;
    const held = await until(
      "a checkpoint holding three positions, their entries filled whole",
      async () => {
        const positions = (await newestTraderSnapshot(sessionId))?.state.positions ?? [];
        return positions.length === 3 && positions.every(whole) ? positions : undefined;
      },
      sim,
    );
    const [watched, unwatched] = held as [StoredPosition, StoredPosition];
    await fillTakeProfit(watched);
    await until("a checkpoint with the trade booked", async () => ((await newestTraderSnapshot(sessionId))?.state.closedTrades === 1 ? true : undefined));

    const killedAt = Date.now();
    await first.trader.kill("SIGKILL");
    expect((await newestTraderSnapshot(sessionId))?.state.positions.map((position) => position.symbol)).toContain(unwatched.symbol);
    await fillTakeProfit(unwatched);

    // Nothing of the session is written between the kill and the resumed trader's start.
    const downAtLeastMs = Date.now() - killedAt;
    const resumed = await spawnTrader(env, sim.url, ["--resume", ...PACE], TRADER_SETTINGS);
    stops.push(() => resumed.trader.kill("SIGKILL"));
    expect(resumed.sessionId).toBe(sessionId);
    const logged = resumed.trader.logs.find((line) => line.report)?.report as { changes: Change[] };
    // The resumed owner's curve needs a few points: its first checkpoint is written after the reconciliation.
    const newest = await until("three checkpoints of the resumed trader", async () => {
      const snapshot = await newestTraderSnapshot(sessionId);
      return snapshot && snapshot.epoch === 1 && snapshot.seq >= 2 ? snapshot : undefined;
    });
    // The page shows the report as the trader stored it in its state; the log had the same changes.
    const report = newest.state.resumes!.find((record) => record.epoch === 1)!;
    expect(report.changes.map((item) => item.change)).toEqual(logged.changes);
    return { sessionId, watched, unwatched, report, downAtLeastMs, trader: resumed.trader };
  }

  /**
   * A reasoning run started on one of two reasoner workers, SIGTERMed after three iterations and finished by the
   * other, then a fresh run on the survivor.
   */
  async function thinkInterruptAndResume() {
    model = createModelServer({ latencyMs: MODEL_LATENCY_MS });
    const modelUrl = `http://127.0.0.1:${await model.listen(0)}`;
    stops.push(() => model.close());
    producer = await openQueueWithEvents(env, "reasoning");
    stops.push(() => producer.close());
    const workers = await Promise.all([spawnReasoner(env, modelUrl), spawnReasoner(env, modelUrl)]);
    for (const worker of workers) stops.push(() => worker.kill("SIGKILL"));
    const nameOf = (worker: ServiceProcess) => `${hostname()}:${worker.child.pid}`;

    const job = await requestDecision(producer.queue, thinkJobId("agent-console", 1), payload("agent-console", ITERATIONS));
    const sessionId = job.id!;
    const iterations = async () => {
      const { rows } = await env.query<{ worker: string }>(
        "SELECT state->'run'->>'worker' AS worker FROM checkpoints WHERE service = 'reasoner' AND session_id = $1 AND kind = 'iteration' ORDER BY epoch, seq",
        [sessionId],
      );
      return rows;
    };
    const thinking = await until("three iterations checkpointed", async () => {
      const rows = await iterations();
      return rows.length >= 3 ? rows[0]!.worker : undefined;
    });
    const first = workers.find((worker) => nameOf(worker) === thinking)!;
    const second = workers.find((worker) => worker !== first)!;
    expect(await first.kill("SIGTERM")).toEqual({ code: 0, signal: null });
    const interruptedAfter = (await iterations()).length;
    const result = (await job.waitUntilFinished(producer.events, 40_000)) as ThinkResult;

    const fresh = await requestDecision(producer.queue, thinkJobId("agent-console-fresh", 1), payload("agent-console-fresh", 3));
    await fresh.waitUntilFinished(producer.events, 40_000);
    return { sessionId, freshId: fresh.id!, first: nameOf(first), second: nameOf(second), interruptedAfter, result, calls: model.ledger.session(sessionId) };
  }

  beforeAll(async () => {
    env = await createTestEnvironment("console_browser");
    stops.push(() => env.dispose());
    const checkpointer = await spawnCheckpointer(env);
    stops.push(() => checkpointer.kill("SIGTERM"));
    const parts = [tradeCrashAndResume().then((done) => (trading = done)), thinkInterruptAndResume().then((done) => (reasoning = done))];
    // Both have registered what they started by the time both have settled, so a failed setup stops it all.
    const failed = (await Promise.allSettled(parts)).find((part) => part.status === "rejected");
    if (failed) throw failed.reason;
    service = await startConsole(env, { CONSOLE_REFRESH_SECONDS: "1" });
    stops.push(() => service.process.kill("SIGTERM"));
    const chromium = await launchHeadlessChromium({ viewport: { width: 1280, height: 900 } });
    stops.push(() => chromium.close());
    browser = chromium.context;
  }, 120_000);

  afterAll(() => stopNewestFirst(stops));

  it("asks for credentials, then lists both sessions with their status, owner and resumes", async () => {
    const page = await browser.newPage();
    await expectBasicAuthChallenge(page, `${service.url}/sessions`, "Savepoint console");

    await browser.setHTTPCredentials({ username: USER, password: PASSWORD, origin: service.url });
    const response = await page.goto(`${service.url}/`);
    expect(response?.status()).toBe(200);
    expect(page.url()).toBe(`${service.url}/sessions`);
    await expect(page.locator("header .mode").textContent()).resolves.toBe("read-only");
    await expect(page.locator("button[data-action], dialog").count()).resolves.toBe(0);

    const cells = (service: string, sessionId: string) => page.locator(`tr[data-session="${service}/${sessionId}"] td`).allTextContents();
    const account = sim.control.state().account.id;
    await expect(cells("trader", trading.sessionId)).resolves.toEqual([
      "trader", trading.sessionId, account, "active", expect.stringMatching(/^1, \d+$/), expect.stringMatching(/^\d{4}-\d\d-\d\d \d\d:\d\d:\d\dZ$/), expect.stringMatching(/^\d+$/), expect.stringMatching(/B$/), "1",
    ]);
    await expect(cells("reasoner", reasoning.sessionId)).resolves.toEqual([
      "reasoner", reasoning.sessionId, "agent-console", "completed", expect.stringMatching(/^2, \d+$/), expect.any(String), expect.any(String), expect.any(String), "1",
    ]);
    await expect(cells("reasoner", reasoning.freshId).then((row) => [row[3], row[8]])).resolves.toEqual(["completed", "0"]);
    await saveScreenshot(page, "console-sessions.png");

    await page.selectOption("select[name=status]", "completed");
    await page.click("form.filters button");
    await page.waitForURL(/status=completed/);
    await expect(page.locator("table.sessions tbody tr").evaluateAll((rows) => rows.map((row) => row.getAttribute("data-session")).sort())).resolves.toEqual(
      [`reasoner/${reasoning.sessionId}`, `reasoner/${reasoning.freshId}`].sort(),
    );
  });

  it("shows the trading session as the broker has it: equity curve split at the resume, positions, closed trades, the reconciliation", async () => {
    const page = await browser.newPage();
    await page.goto(`${service.url}/sessions/trader/${trading.sessionId}`);
    const broker = sim.control.state();

    await expect(page.locator("h1").textContent()).resolves.toBe(`Trading session ${trading.sessionId}`);
    // One line per owner, each with points, and the downtime between them left empty, marked at the resume.
    const curves = await page.locator("svg.equity polyline.curve").evaluateAll((lines) =>
      lines.map((line) => ({ epoch: line.getAttribute("data-epoch"), xs: line.getAttribute("points")!.split(" ").map((point: string) => Number(point.split(",")[0])) })),
    );
    expect(curves.map((curve) => curve.epoch)).toEqual(["0", "1"]);
    expect(curves.every((curve) => curve.xs.length >= 2)).toBe(true);
    const resumeAt = Number(await page.locator("svg.equity line.resume").getAttribute("x1"));
    expect(curves[0]!.xs.at(-1)!).toBeLessThan(resumeAt);
    expect(resumeAt).toBeLessThanOrEqual(curves[1]!.xs[0]!);

    // Open positions: the broker's, quantity for quantity and entry to the cent.
    const positions = await page.locator("table.positions tbody tr").evaluateAll((rows) => rows.map((row) => [...row.querySelectorAll("td")].map((cell) => cell.textContent!)));
    expect(positions.map(([symbol, side, qty]) => `${symbol} ${side} ${qty}`).sort()).toEqual(
      broker.positions.map((position) => `${position.symbol} ${position.side} ${Math.abs(Number(position.qty))}`).sort(),
    );
    for (const [symbol, , , entry] of positions) {
      const held = broker.positions.find((position) => position.symbol === symbol)!;
      expect(Math.abs(dollars(entry!) - Number(held.avg_entry_price)), `${symbol} entry`).toBeLessThanOrEqual(0.005);
    }

    // Closed trades: as many as exits filled at the broker, the realised P&L the broker's to the cent per trade.
    const exits = broker.orders.filter((order) => order.status === "filled" && String(order.position_intent).endsWith("_to_close")).length;
    expect(exits).toBe(2);
    const fact = (name: string) => page.locator(`dl.facts div:has(dt:text-is("${name}")) dd`).textContent();
    await expect(fact("closed trades")).resolves.toBe(String(exits));
    expect(Math.abs(dollars((await fact("realized P&L"))!) - broker.realizedPl)).toBeLessThanOrEqual(0.005 * exits + 0.005);
    await expect(fact("resumes")).resolves.toBe("1");
    await expect(fact("portfolio value")).resolves.toMatch(/^\$\d{2,3},\d{3}\.\d\d$/);
    const closings = await page.locator("table.closings tbody tr").allTextContents();
    expect(closings).toEqual([
      expect.stringContaining(`${trading.watched.symbol} ${trading.watched.side} ${trading.watched.qty} @ $`),
      expect.stringContaining(`${trading.unwatched.symbol} ${trading.unwatched.side} ${trading.unwatched.qty} @ $`),
    ]);

    // The resume: the reconciliation report the trader stored in its state, item for item, and a downtime at least as long as the kill lasted.
    const { report } = trading;
    expect(report.closedTradesAdded).toBe(1);
    expect(report.changes).toContainEqual({
      category: "trades",
      text: expect.any(String),
      change: expect.objectContaining({ kind: "position_closed", trade: expect.objectContaining({ symbol: trading.unwatched.symbol, via: "take_profit" }) }),
    });
    expect(closings[1]).toContain(formatPl(report.realizedPlAdded));
    const resume = await page.locator("table.resumes tbody > tr > td").allTextContents();
    expect(resume.slice(0, 4)).toEqual(["0 → 1", expect.stringMatching(/^\d+ s$/), expect.stringMatching(/\((periodic|event), active\)$/), expect.stringMatching(/\(event\)$/)]);
    expect(Number.parseInt(resume[1]!, 10)).toBeGreaterThanOrEqual(Math.round(trading.downAtLeastMs / 1000));
    const shown = page.locator("table.resumes .report[data-epoch='1']");
    await expect(shown.locator(".summary").textContent()).resolves.toBe(
      `Positions: ${report.positions.before} in the checkpoint, ${report.positions.atBroker} at the broker, ${report.positions.after} after reconciling; 1 trade(s) booked (${formatPl(report.realizedPlAdded)})`,
    );
    const items = await shown.locator("li").evaluateAll((lines) => lines.map((line) => ({ category: line.parentElement!.getAttribute("data-category"), kind: line.getAttribute("data-kind"), text: line.textContent })));
    // Grouped by category, in the order of the trader's categories (resume-record.ts, CHANGE_CATEGORIES).
    const categories = ["positions", "trades", "orders", "client_order_ids", "protection"].filter((category) => report.changes.some((item) => item.category === category));
    expect(items).toEqual(categories.flatMap((category) => report.changes.filter((item) => item.category === category).map((item) => ({ category, kind: item.change.kind, text: item.text }))));
    // The checkpoint timeline marks the downtime: the new owner's first row follows the gap.
    const gaps = await page.locator("table.timeline tr.gap").evaluateAll((rows) => rows.map((row) => [...row.querySelectorAll("td")].map((cell) => cell.textContent!)));
    expect(gaps.filter((cells) => cells.at(-1)!.endsWith(" · resumed")).map((cells) => cells.slice(0, 2))).toEqual([["1", "0"]]);
    await saveScreenshot(page, "console-trading.png");
  });

  it("follows the running trader's new checkpoints without a reload", async () => {
    const page = await browser.newPage();
    await page.goto(`${service.url}/sessions/trader/${trading.sessionId}`);
    // A mark on the page's global object survives a swap of its parts, and is gone after a reload.
    await page.evaluate(() => Object.assign(globalThis, { notReloaded: true }));
    const count = (label: string | null) => Number(/over (\d+) snapshots$/.exec(label ?? "")?.[1]);
    const before = count(await page.locator("svg.equity").getAttribute("aria-label"));

    await expect.poll(async () => count(await page.locator("svg.equity").getAttribute("aria-label")), { timeout: 15_000 }).toBeGreaterThan(before);
    await expect(page.evaluate(() => (globalThis as { notReloaded?: boolean }).notReloaded)).resolves.toBe(true);
  });

  it("shows the reasoning run: each iteration with its worker and epoch, the interruption, the resume and the model calls it saved", async () => {
    const page = await browser.newPage();
    await page.goto(`${service.url}/sessions/reasoner/${reasoning.sessionId}`);
    const { result, calls, interruptedAfter, first, second } = reasoning;
    expect(result).toMatchObject({ resumed: true, resumedAtIteration: interruptedAfter, iterations: ITERATIONS });

    const steps = page.locator("article.step");
    await expect(steps.locator("h3").allTextContents()).resolves.toEqual(Array.from({ length: ITERATIONS }, (_, i) => expect.stringMatching(new RegExp(`^Iteration ${i + 1} · \\w+$`))));
    const metas = await steps.locator(".meta").allTextContents();
    metas.forEach((meta, i) => {
      const [epoch, worker] = i < interruptedAfter ? [1, first] : [2, second];
      expect(meta, `iteration ${i + 1}`).toMatch(new RegExp(`^epoch ${epoch} · seq \\d+ · ${worker.replaceAll(".", "\\.")} · `));
    });
    await expect(page.locator("table.attempts tbody tr td:nth-child(2)").allTextContents()).resolves.toEqual([first, second]);
    await expect(page.locator(".event.resume").textContent()).resolves.toMatch(
      new RegExp(`^Resumed by ${second.replaceAll(".", "\\.")} \\(epoch 2\\) after \\d+ s: ${result.modelCallsSaved} model call\\(s\\) taken from checkpoints$`),
    );
    await expect(page.locator("article.step.resumed").getAttribute("data-iteration")).resolves.toBe(String(interruptedAfter + 1));
    const events = await page.locator("h2:text-is('Events') ~ div.event").allTextContents();
    expect(events).toEqual([
      expect.stringMatching(new RegExp(` · interrupted at iteration ${interruptedAfter + 1} on ${first.replaceAll(".", "\\.")} \\(epoch 1\\): `)),
      expect.stringContaining(" · completed (epoch 2): "),
    ]);

    // Every answer the model server gave is on the page once: none made twice, the first worker's taken over.
    expect(calls).toMatchObject({ repeated: 0, aborted: 0, failed: 0 });
    const fact = (name: string) => page.locator(`dl.facts div:has(dt:text-is("${name}")) dd`).textContent();
    await expect(fact("model calls")).resolves.toBe(String(calls.answered));
    await expect(fact("model calls saved by resumes")).resolves.toBe(String(result.modelCallsSaved));
    expect(result.modelCallsSaved).toBe(calls.answered - result.modelCalls);
    await expect(page.locator("article.step .decision").textContent()).resolves.toBe(`Decision: ${result.action} (confidence ${result.confidence}): ${result.rationale}`);
    await saveScreenshot(page, "console-reasoning.png");
  });

  it("shows the fleet: resumed vs fresh sessions, and the workers connected now", async () => {
    const page = await browser.newPage();
    await page.goto(`${service.url}/fleet`);

    await expect(page.locator("table.starts tr[data-service=trader] td").allTextContents()).resolves.toEqual(["trader", "1", "0"]);
    await expect(page.locator("table.starts tr[data-service=reasoner] td").allTextContents()).resolves.toEqual(["reasoner", "1", "1"]);
    const perState = (serviceName: string) => page.locator(`table.sessions-per-state tr[data-service=${serviceName}] td`).allTextContents();
    await expect(perState("trader").then((row) => row.at(-1))).resolves.toBe("1");
    await expect(perState("reasoner").then((row) => row.at(-1))).resolves.toBe("2");
    await expect(page.locator("table.queues tr[data-queue=reasoning] td").last().textContent()).resolves.toBe("1");
    const workers = await page.locator("table.workers tbody tr").evaluateAll((rows) => rows.map((row) => [...row.querySelectorAll("td")].slice(0, 2).map((cell) => cell.textContent).join(" ")));
    expect(workers).toContain(`reasoning ${reasoning.second}`);
    expect(workers).not.toContain(`reasoning ${reasoning.first}`);
    expect(workers).toContain(`trader-control.${trading.sessionId} trader@${hostname()}:${trading.trader.child.pid}`);
    await saveScreenshot(page, "console-fleet-stack.png");
  });
});
