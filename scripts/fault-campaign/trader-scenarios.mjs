/**
 * Issue 12, items 1-3, as the trader meets them: two sessions on one account, two traders resuming one
 * session, and a Redis outage while the reasoner strategy asks for decisions. Each trial runs the built
 * trader as real processes against its own simulated account.
 */
import { setTimeout as delay } from "node:timers/promises";
import { createCatalogWorker } from "@savepoint/shared";
import { HttpTap, thinkResult } from "@savepoint/shared/testing";
import {
  changeKinds,
  doubledFills,
  eventually,
  holdingsLost,
  sessionOrders,
  onOwnRedis,
  simulator,
  spawnTrader,
  stackLines,
  storedSnapshot,
  Tally,
  tradingStarted,
} from "./harness.mjs";

const RUN = ["--interval", "0.1", "--checkpoint-interval", "0.3"];
const TWO = ["--symbols", "AAPL,MSFT", "--entry-threshold-pct", "0", "--lookback", "3", "--position-size", "3000", "--stop-loss-pct", "5", "--take-profit-pct", "5"];
/** A short lease, so take-overs are learnt within seconds; the broker timeout within it, as the trader requires. */
const LEASE = { TRADER_ACCOUNT_LEASE_MS: "6000", BROKER_TIMEOUT_MS: "3000" };

const count = (lines, prefix) => lines.logs.filter((line) => String(line.msg).startsWith(prefix)).length;

/** A trial's start for items 1 and 2: a simulated account, and a first trader trading two positions on it. */
async function firstSession(env, stops, seed, simOptions) {
  const sim = await simulator(`${seed}-${Date.now()}`, simOptions);
  stops.push(() => sim.close());
  const first = spawnTrader(env, sim.url, [...TWO, ...RUN], LEASE);
  stops.push(() => first.kill("SIGKILL"));
  const sessionId = String((await first.waitForLog(tradingStarted)).sessionId);
  return { sim, first, sessionId };
}

/** What the session's final snapshot lost, and what the broker filled twice, against the simulator's books. */
async function damage(env, sessionId, sim) {
  const final = await storedSnapshot(env, sessionId);
  return { lost: holdingsLost(final.state, sim), duplicated: doubledFills(sim) };
}

/** Item 1: with a trader running, a second session on the same account (no --resume). */
export async function secondSessionOnAccount({ env, trials, stops }) {
  const tally = new Tally(1, "a second session on a traded account");
  let refused = 0;
  let ordersBySecond = 0;
  let adoptedBySecond = 0;
  let foreignCorrections = 0;
  let lost = 0;
  let duplicated = 0;
  for (let trial = 1; trial <= trials; trial++) {
    const { sim, first, sessionId } = await firstSession(env, stops, `campaign-owner-${trial}`);
    await eventually("two positions", () => (sim.control.state().positions.length === 2 ? true : undefined));

    const tap = await HttpTap.start(sim.url);
    stops.push(() => tap.close());
    const second = spawnTrader(env, tap.url, [...TWO, ...RUN], LEASE);
    stops.push(() => second.kill("SIGKILL"));
    const { code } = await second.exited;
    if (code === 4) refused += 1;
    ordersBySecond += tap.count("POST", "/v2/orders");
    adoptedBySecond += changeKinds(second).filter((kind) => kind === "position_adopted").length;

    await delay(1_000);
    const stopped = await first.kill("SIGTERM");
    tally.expect(`trial ${trial}: the first trader stopped cleanly (got ${JSON.stringify(stopped)})`, stopped.code === 0);
    foreignCorrections += changeKinds(first).filter((kind) => kind === "quantity_corrected" || kind === "position_adopted").length;
    const trialDamage = await damage(env, sessionId, sim);
    lost += trialDamage.lost;
    duplicated += trialDamage.duplicated;
    await sim.close();
  }
  tally.figure("trials", trials);
  tally.figure("second session refused", `${refused}/${trials}`);
  tally.figure("orders by the second session", ordersBySecond);
  tally.figure("positions it adopted", adoptedBySecond);
  tally.figure("corrections by the first (repeated)", foreignCorrections);
  tally.figure("lost", lost);
  tally.figure("duplicated", duplicated);
  tally.expect("every second session refused", refused === trials);
  tally.expect("no order, adoption or correction across sessions", ordersBySecond + adoptedBySecond + foreignCorrections === 0);
  tally.expect("nothing lost or duplicated", lost + duplicated === 0);
  return tally;
}

/** Item 2: two traders resume one session at once; the market opens once both are past their start. */
export async function twoResumers({ env, trials, stops }) {
  const tally = new Tally(2, "two traders resuming one session");
  let oneWinner = 0;
  let loserOrders = 0;
  let refusedAtStart = 0;
  let fencedWhileTrading = 0;
  let lost = 0;
  let duplicated = 0;
  for (let trial = 1; trial <= trials; trial++) {
    const { sim, first, sessionId } = await firstSession(env, stops, `campaign-resumers-${trial}`, { closed: true });
    await first.kill("SIGKILL");

    const taps = [await HttpTap.start(sim.url), await HttpTap.start(sim.url)];
    for (const tap of taps) stops.push(() => tap.close());
    const resumers = taps.map((tap) => spawnTrader(env, tap.url, ["--resume", ...RUN], LEASE));
    for (const resumer of resumers) stops.push(() => resumer.kill("SIGKILL"));
    await Promise.all(resumers.map((resumer) => Promise.race([resumer.exited, resumer.waitForLog(tradingStarted).catch(() => undefined)])));
    const startedBoth = resumers.every((resumer) => resumer.logs.some(tradingStarted));
    sim.control.setMarketOpen(true);

    const loser = await Promise.race(resumers.map((resumer, index) => resumer.exited.then(() => index)));
    const winner = 1 - loser;
    const lost3 = (await resumers[loser].exited).code === 3;
    await eventually("the winner's two entries", () => (sessionOrders(sim, sessionId).filter((order) => order.order_class === "bracket").length >= 2 ? true : undefined));
    await delay(500);
    sim.control.setMarketOpen(false);
    await delay(300);
    const winnerStopped = await resumers[winner].kill("SIGTERM");
    if (lost3 && winnerStopped.code === 0) oneWinner += 1;
    if (startedBoth) fencedWhileTrading += 1;
    else refusedAtStart += 1;
    loserOrders += taps[loser].count("POST", "/v2/orders");
    const trialDamage = await damage(env, sessionId, sim);
    lost += trialDamage.lost;
    duplicated += trialDamage.duplicated;
    tally.expect(`trial ${trial}: no stack printed by the loser`, stackLines(resumers[loser]) === 0);
    await Promise.all(taps.map((tap) => tap.close()));
    await sim.close();
  }
  tally.figure("trials", trials);
  tally.figure("exactly one carried on", `${oneWinner}/${trials}`);
  tally.figure("loser stopped at start / fenced while trading", `${refusedAtStart}/${fencedWhileTrading}`);
  tally.figure("orders by the loser (repeated)", loserOrders);
  tally.figure("lost", lost);
  tally.figure("duplicated", duplicated);
  tally.expect("exactly one trader carried on in every trial", oneWinner === trials);
  tally.expect("the fenced-out trader placed no order", loserOrders === 0);
  tally.expect("nothing lost or duplicated", lost + duplicated === 0);
  return tally;
}

async function readiness(port) {
  try {
    const response = await fetch(`http://127.0.0.1:${port}/readyz`);
    return response.status;
  } catch {
    return 0;
  }
}

/** Item 3: Redis killed by pid while the reasoner strategy asks for decisions, then started again. */
export async function redisOutage({ env: base, trials, stops }) {
  const tally = new Tally(3, "Redis outage, --strategy reasoner");
  const { redis, env } = await onOwnRedis(base, stops);
  let decisions = 0;
  const worker = createCatalogWorker(
    "reasoning",
    {
      think: async (payload, job) => {
        decisions += 1;
        const opened = job.id.endsWith(`.${payload.symbol}.1`);
        return thinkResult({ action: opened ? "OPEN_LONG" : "HOLD", confidence: 0.8, rationale: "fault campaign", sessionId: job.id });
      },
    },
    { connection: { url: redis.url, maxRetriesPerRequest: null }, prefix: env.queuePrefix },
  );
  worker.on("error", () => undefined);
  stops.push(() => worker.close());

  let survived = 0;
  let reportedDown = 0;
  let slowestDownMs = 0;
  let skipped = 0;
  let legsKept = 0;
  let resumedDeciding = 0;
  let finalStored = 0;
  let lost = 0;
  let duplicated = 0;
  let stacks = 0;
  for (let trial = 1; trial <= trials; trial++) {
    const sim = await simulator(`campaign-redis-${trial}-${Date.now()}`, { tickIntervalMs: 100 });
    stops.push(() => sim.close());
    const args = ["--strategy", "reasoner", "--symbols", "AAPL", "--position-size", "2000", "--stop-loss-pct", "5", "--take-profit-pct", "5", ...RUN];
    const trader = spawnTrader(env, sim.url, args, { REASONING_TIMEOUT_MS: "1000", ...LEASE });
    stops.push(() => trader.kill("SIGKILL"));
    const port = Number((await trader.waitForLog((line) => typeof line.httpPort === "number")).httpPort);
    const sessionId = String((await trader.waitForLog(tradingStarted)).sessionId);
    await eventually("the position opened", () => (sim.control.state().positions.length === 1 ? true : undefined));
    await delay(200 + Math.random() * 800);

    const killedAt = Date.now();
    await redis.kill();
    const downAfter = await eventually("/readyz 503", async () => ((await readiness(port)) === 503 ? Date.now() - killedAt : undefined), 10_000).catch(() => null);
    if (downAfter !== null) {
      reportedDown += 1;
      slowestDownMs = Math.max(slowestDownMs, downAfter);
    }
    await delay(2_000 + Math.random() * 2_000);
    const legs = sim.control.state().orders.filter((order) => order.order_class === "bracket" && order.position_intent === "sell_to_close");
    if (legs.length === 2 && legs.every((leg) => leg.status === "new" || leg.status === "held")) legsKept += 1;
    const alive = trader.child.exitCode === null;

    await redis.restart();
    const decisionsBefore = decisions;
    const back = await eventually("deciding again", () => (decisions > decisionsBefore ? true : undefined), 30_000).catch(() => false);
    if (back) resumedDeciding += 1;
    const stopped = await trader.kill("SIGTERM");
    if (alive && stopped.code === 0) survived += 1;
    else {
      const fatal = trader.logs.filter((line) => line.level >= 60).map((line) => `${line.msg}${line.err ? `: ${line.err.type} ${line.err.message}` : ""}`);
      tally.expect(`trial ${trial}: the trader ended (${JSON.stringify(stopped)}) with ${fatal.join("; ") || "no fatal line"}`, false);
    }
    skipped += count(trader, "tick skipped: Redis does not answer");
    stacks += stackLines(trader);
    const final = await storedSnapshot(env, sessionId);
    if (final?.kind === "shutdown") finalStored += 1;
    if (final) lost += holdingsLost(final.state, sim);
    duplicated += Math.max(0, sessionOrders(sim, sessionId).filter((order) => order.position_intent === "buy_to_open").length - 1) + doubledFills(sim);
    await sim.close();
  }
  tally.figure("trials", trials);
  tally.figure("trader survived the outage", `${survived}/${trials}`);
  tally.figure("/readyz 503 while down", `${reportedDown}/${trials} (slowest ${slowestDownMs} ms)`);
  tally.figure("ticks skipped", skipped);
  tally.figure("legs kept at the broker", `${legsKept}/${trials}`);
  tally.figure("deciding again after", `${resumedDeciding}/${trials}`);
  tally.figure("final checkpoint stored", `${finalStored}/${trials}`);
  tally.figure("lost", lost);
  tally.figure("duplicated", duplicated);
  tally.figure("stack lines printed", stacks);
  tally.expect("the trader survived every outage", survived === trials);
  tally.expect("/readyz reported Redis down every time", reportedDown === trials);
  tally.expect("the legs stayed at the broker", legsKept === trials);
  tally.expect("trading resumed after every outage", resumedDeciding === trials && finalStored === trials);
  tally.expect("nothing lost or duplicated", lost + duplicated === 0);
  return tally;
}
