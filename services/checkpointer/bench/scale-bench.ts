import { parseEnv } from "@savepoint/shared";
import { z } from "zod";
import { describeTargets, measurePostgresScale } from "./postgres-scale.js";
import { measureConfirmedFleet, measureDrainRates } from "./fleet-scale.js";
import { measureRedisScale } from "./redis-scale.js";

const settingsSchema = z.object({
  DATABASE_URL: z.string().default("postgres://postgres@127.0.0.1:5432/savepoint"),
  /** Its own database, dropped and created again: never the one DATABASE_URL names. */
  BENCH_SCALE_DATABASE: z.string().regex(/^[a-z_][a-z0-9_]*$/).default("savepoint_bench_scale"),
  /** Table sizes in snapshots, ascending. */
  BENCH_SCALE_SIZES: z
    .string()
    .default("10000,1000000,5000000")
    .transform((text) => text.split(",").map(Number))
    .pipe(z.array(z.number().int().min(1_000)).min(1)),
  BENCH_SCALE_SAMPLES: z.coerce.number().int().min(100).default(2_000),
  /** Which parts to run: `redis`, `fleet` (many confirming clients, drain rates on one Redis and a cluster), `postgres`. */
  BENCH_SCALE_PARTS: z.string().default("redis,fleet,postgres").transform((text) => text.split(",")),
  BENCH_SCALE_FLEET_CLIENTS: z.coerce.number().int().min(1).default(200),
  BENCH_SCALE_FLEET_RATE: z.coerce.number().min(0.1).default(10),
  BENCH_SCALE_FLEET_SECONDS: z.coerce.number().int().min(1).default(20),
  /** Snapshots of the drain-rate figures; 0 measures the confirmed fleet alone. */
  BENCH_SCALE_DRAIN: z.coerce.number().int().refine((n) => n === 0 || n >= 1_000, "0 or at least 1000").default(50_000),
  BENCH_SCALE_CLIENTS: z.string().default("1,10,50,200").transform((text) => text.split(",").map(Number)),
  BENCH_SCALE_BACKLOG: z.coerce.number().int().min(0).default(100_000),
});

// `npm run bench:scale`: the fleet-scale figures (issue 11, item 5), the Redis half then the Postgres half.
const settings = parseEnv(settingsSchema, process.env);
const url = new URL(settings.DATABASE_URL);
url.pathname = `/${settings.BENCH_SCALE_DATABASE}`;
const log = (line: string) => console.log(line);
if (settings.BENCH_SCALE_PARTS.includes("redis")) {
  await measureRedisScale({ clientCounts: settings.BENCH_SCALE_CLIENTS, saves: 300, backlog: settings.BENCH_SCALE_BACKLOG, log });
}
if (settings.BENCH_SCALE_PARTS.includes("fleet")) {
  await measureConfirmedFleet({ clients: settings.BENCH_SCALE_FLEET_CLIENTS, ratePerClient: settings.BENCH_SCALE_FLEET_RATE, seconds: settings.BENCH_SCALE_FLEET_SECONDS, log });
  if (settings.BENCH_SCALE_DRAIN > 0) await measureDrainRates({ snapshots: settings.BENCH_SCALE_DRAIN, log });
}
if (settings.BENCH_SCALE_PARTS.includes("postgres")) {
  log(`Postgres at scale: the checkpointer's store on ${url.host}/${settings.BENCH_SCALE_DATABASE}, ${settings.BENCH_SCALE_SAMPLES} timed calls per figure`);
  const figures = await measurePostgresScale({
    databaseUrl: url.toString(),
    sizes: settings.BENCH_SCALE_SIZES,
    samples: settings.BENCH_SCALE_SAMPLES,
    keepCount: 100,
    log,
  });
  log("targets:");
  for (const line of describeTargets(figures)) log(`  ${line}`);
}
