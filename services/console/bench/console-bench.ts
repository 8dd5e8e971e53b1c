import os from "node:os";
import { performance } from "node:perf_hooks";
import { fileURLToPath } from "node:url";
import { CheckpointClient, type SnapshotEnvelope } from "@savepoint/shared";
import { createTestEnvironment, ServiceProcess, spawnCheckpointer } from "@savepoint/shared/testing";
import { z } from "zod";

/*
 * How fast the console's pages answer, against the real checkpointer, Redis and Postgres (issue 15's targets):
 * - a trading session of BENCH_HOURS hours of simulated time, a checkpoint a minute, BENCH_RESTARTS restarts:
 *   its page (every snapshot read, the views built, the HTML rendered) in under 1 s;
 * - the sessions page with BENCH_SESSIONS sessions stored: its first page, a page deep in, and a filtered page,
 *   each in under 500 ms.
 * Every snapshot is written through the checkpoint client, as the services write them.
 */

const settingsSchema = z.object({
  BENCH_HOURS: z.coerce.number().int().min(1).max(48).default(8),
  BENCH_RESTARTS: z.coerce.number().int().min(0).max(50).default(3),
  BENCH_SESSIONS: z.coerce.number().int().min(100).max(1_000_000).default(100_000),
  BENCH_REQUESTS: z.coerce.number().int().min(1).max(1_000).default(20),
});

const MAIN = fileURLToPath(new URL("../../dist/main.js", import.meta.url));
const PASSWORD = "benchmark-password-0123";
const SESSION = "bench-trading-session";

const percentile = (samples: number[], q: number) => {
  const sorted = [...samples].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)]!;
};

function tradingSession(hours: number, restarts: number): SnapshotEnvelope[] {
  const minutes = hours * 60;
  const stretch = Math.ceil(minutes / (restarts + 1));
  const start = Date.UTC(2026, 0, 5, 14, 30);
  const snapshots: SnapshotEnvelope[] = [];
  for (let minute = 0; minute < minutes; minute += 1) {
    const epoch = 1 + Math.floor(minute / stretch);
    // Each restart costs ten minutes of downtime, as a redeploy might.
    const takenAt = new Date(start + (minute + (epoch - 1) * 10) * 60_000).toISOString();
    const seq = minute % stretch;
    const held = minute % 30 < 20;
    snapshots.push({
      v: 1, service: "trader", sessionId: SESSION, ownerId: "PA-BENCH", epoch, seq, kind: seq === 0 ? "event" : "periodic", status: "active",
      schemaVersion: 1, takenAt,
      state: {
        sessionStartedAt: new Date(start).toISOString(), brokerSessionStartedAt: new Date(start).toISOString(), symbols: ["AAPL", "MSFT", "NVDA"],
        strategy: { kind: "rule", stopLossPct: 2, takeProfitPct: 4, positionSize: 10_000, lookbackBars: 20, entryThresholdPct: 0.5 },
        account: { id: "PA-BENCH", portfolioValue: 100_000 + 500 * Math.sin(minute / 40) + minute, buyingPower: 200_000, cash: 90_000, asOf: takenAt },
        positions: held
          ? ["AAPL", "MSFT"].map((symbol) => ({
              symbol, side: "long", qty: 50, entryPrice: 180, stopLoss: 176.4, takeProfit: 187.2, tradeNo: 1 + Math.floor(minute / 30), origin: "strategy",
              openedAt: takenAt, orders: { entryId: `order-${symbol}`, entryClientOrderId: null, takeProfitId: null, stopLossId: null },
            }))
          : [],
        pendingEntries: [], nextTradeNo: {}, decisionRuns: {}, closedTrades: 2 * Math.floor((minute + 10) / 30), realizedPl: 40 * Math.floor((minute + 10) / 30),
        takenAt,
      },
    });
  }
  return snapshots;
}

async function timed(url: string, headers: Record<string, string>, requests: number): Promise<{ p50: number; max: number; bytes: number }> {
  const samples: number[] = [];
  let bytes = 0;
  for (let i = 0; i < requests + 2; i += 1) {
    const began = performance.now();
    const response = await fetch(url, { headers });
    const body = await response.text();
    if (!response.ok) throw new Error(`${url} answered ${response.status}: ${body.slice(0, 200)}`);
    // The first two warm the connection pool and the plans up.
    if (i >= 2) samples.push(performance.now() - began);
    bytes = body.length;
  }
  return { p50: percentile(samples, 0.5), max: Math.max(...samples), bytes };
}

const settings = settingsSchema.parse(process.env);
const env = await createTestEnvironment("console_bench");
const checkpointer = await spawnCheckpointer(env);
const client = await CheckpointClient.connect({ redisUrl: env.redisUrl, queuePrefix: env.queuePrefix, confirmTimeoutMs: 120_000 });
let service: ServiceProcess | undefined;
try {
  const trading = tradingSession(settings.BENCH_HOURS, settings.BENCH_RESTARTS);
  // An epoch's snapshots side by side, but each epoch only once the one before is stored: an older epoch's
  // snapshot arriving after a newer one is refused as stale, as it would be from a fenced-out trader.
  for (const epoch of new Set(trading.map((snapshot) => snapshot.epoch))) {
    const own = trading.filter((snapshot) => snapshot.epoch === epoch);
    for (let i = 0; i < own.length; i += 200) await Promise.all(own.slice(i, i + 200).map((snapshot) => client.saveAndConfirm(snapshot)));
  }

  const seeding = performance.now();
  const others = settings.BENCH_SESSIONS - 1;
  for (let i = 0; i < others; i += 1_000) {
    const page = Array.from({ length: Math.min(1_000, others - i) }, (_, j): SnapshotEnvelope => ({
      v: 1, service: (i + j) % 2 === 0 ? "trader" : "reasoner", sessionId: `bench-${i + j}`, ownerId: `owner-${(i + j) % 500}`, epoch: 0, seq: 0,
      kind: "periodic", status: (i + j) % 7 === 0 ? "interrupted" : "active", schemaVersion: 1, takenAt: new Date().toISOString(), state: { n: i + j },
    }));
    await Promise.all(page.map((snapshot) => client.saveAndConfirm(snapshot)));
  }
  const seeded = (performance.now() - seeding) / 1000;

  service = ServiceProcess.start(MAIN, { ...env.env, HTTP_PORT: "0", CONSOLE_PASSWORD: PASSWORD, CONSOLE_DATABASE_URL: env.databaseUrl });
  const started = await service.waitForLog("console starting");
  const url = `http://127.0.0.1:${String(started.httpPort)}`;
  await service.waitForLog((line) => typeof line.msg === "string" && line.msg.startsWith("Savepoint console on"));
  const headers = { authorization: `Basic ${Buffer.from(`admin:${PASSWORD}`).toString("base64")}` };

  const deepCursor = await (async () => {
    let after: string | null = null;
    for (let page = 0; page < 20; page += 1) {
      const response = await fetch(`${url}/api/sessions?limit=500${after ? `&after=${after}` : ""}`, { headers });
      after = ((await response.json()) as { next: string | null }).next;
    }
    return after!;
  })();

  const results = {
    tradingPage: await timed(`${url}/sessions/trader/${SESSION}`, headers, settings.BENCH_REQUESTS),
    tradingApi: await timed(`${url}/api/trading/${SESSION}`, headers, settings.BENCH_REQUESTS),
    sessionsFirstPage: await timed(`${url}/sessions`, headers, settings.BENCH_REQUESTS),
    sessionsDeepPage: await timed(`${url}/sessions?after=${deepCursor}`, headers, settings.BENCH_REQUESTS),
    sessionsFiltered: await timed(`${url}/sessions?service=reasoner&status=interrupted`, headers, settings.BENCH_REQUESTS),
    sessionsByOwner: await timed(`${url}/sessions?service=trader&owner=owner-42`, headers, settings.BENCH_REQUESTS),
  };
  const ms = (value: number) => `${value.toFixed(1)} ms`;
  console.log(`console bench on ${os.cpus().length} CPUs (${os.cpus()[0]?.model ?? "?"}), ${settings.BENCH_REQUESTS} requests each (p50, max):`);
  console.log(`  trading session, ${settings.BENCH_HOURS} h at 1 checkpoint/min, ${settings.BENCH_RESTARTS} restarts (${trading.length} snapshots):`);
  console.log(`    page  ${ms(results.tradingPage.p50)}, ${ms(results.tradingPage.max)} (${results.tradingPage.bytes} bytes of HTML)`);
  console.log(`    API   ${ms(results.tradingApi.p50)}, ${ms(results.tradingApi.max)}`);
  console.log(`  sessions page, ${settings.BENCH_SESSIONS} sessions stored (seeded in ${seeded.toFixed(0)} s), 50 a page:`);
  console.log(`    first page          ${ms(results.sessionsFirstPage.p50)}, ${ms(results.sessionsFirstPage.max)}`);
  console.log(`    page 10,001-10,050  ${ms(results.sessionsDeepPage.p50)}, ${ms(results.sessionsDeepPage.max)}`);
  console.log(`    reasoner+interrupted ${ms(results.sessionsFiltered.p50)}, ${ms(results.sessionsFiltered.max)}`);
  console.log(`    trader+owner        ${ms(results.sessionsByOwner.p50)}, ${ms(results.sessionsByOwner.max)}`);
} finally {
  await service?.kill("SIGTERM");
  await client.close();
  await checkpointer.kill("SIGTERM");
  await env.dispose();
}
