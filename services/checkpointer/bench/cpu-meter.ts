import { readFileSync } from "node:fs";
import os from "node:os";
import { performance } from "node:perf_hooks";

/** CPU seconds spent during one measured stretch, by whom; `undefined` where this platform cannot tell. */
export interface CpuSpend {
  wallSeconds: number;
  /** This process: the producer and measurer. */
  bench: number;
  /** The consumer's child process (checkpointer or no-op worker), when there is one. */
  consumer: number | undefined;
  /** The whole Redis server, which other work on this machine shares. */
  redis: number | undefined;
  /** Postgres backends connected to the benchmark's database. */
  postgres: number | undefined;
  /** Every core of the machine, whoever used it. */
  machine: number;
}

export interface CpuProbes {
  /** `INFO cpu` of the Redis server. */
  redisInfo: () => Promise<string>;
  /** Process ids of the Postgres backends serving the benchmark's database. */
  postgresPids: () => Promise<number[]>;
}

// /proc reports CPU times in USER_HZ ticks, which is 100 on every mainstream Linux build.
const USER_HZ = 100;

function processCpuSeconds(pid: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    // After "pid (comm) " come the fields from #3 (state) on; utime and stime are #14 and #15.
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return (Number(fields[11]) + Number(fields[12])) / USER_HZ;
  } catch {
    return undefined;
  }
}

function machineBusySeconds(): number {
  return os.cpus().reduce((sum, cpu) => sum + cpu.times.user + cpu.times.nice + cpu.times.sys + cpu.times.irq, 0) / 1000;
}

function redisCpuSeconds(info: string): number | undefined {
  const field = (name: string) => Number(new RegExp(`^${name}:([0-9.]+)`, "m").exec(info)?.[1]);
  const seconds = field("used_cpu_sys") + field("used_cpu_user");
  return Number.isFinite(seconds) ? seconds : undefined;
}

function postgresCpuSeconds(pids: number[]): Map<number, number> {
  const byPid = new Map<number, number>();
  for (const pid of pids) {
    const seconds = processCpuSeconds(pid);
    if (seconds !== undefined) byPid.set(pid, seconds);
  }
  return byPid;
}

const difference = (end: number | undefined, start: number | undefined) =>
  end === undefined || start === undefined ? undefined : end - start;

/** Reads who used the CPU between `start()` and the `stop()` it returns. */
export class CpuMeter {
  constructor(private readonly probes: CpuProbes) {}

  async start(consumerPid?: number): Promise<() => Promise<CpuSpend>> {
    const consumerAt = (): number | undefined => (consumerPid === undefined ? undefined : processCpuSeconds(consumerPid));
    const started = {
      wall: performance.now(),
      bench: process.cpuUsage(),
      consumer: consumerAt(),
      redis: redisCpuSeconds(await this.probes.redisInfo()),
      postgres: postgresCpuSeconds(await this.probes.postgresPids()),
      machine: machineBusySeconds(),
    };
    return async () => {
      const bench = process.cpuUsage(started.bench);
      const consumer = difference(consumerAt(), started.consumer);
      const machine = machineBusySeconds() - started.machine;
      const redis = difference(redisCpuSeconds(await this.probes.redisInfo()), started.redis);
      const postgresNow = postgresCpuSeconds(await this.probes.postgresPids());
      // A backend that connected during the stretch spent all its CPU in it; one that left cannot be read.
      let postgres: number | undefined;
      for (const [pid, seconds] of postgresNow) postgres = (postgres ?? 0) + seconds - (started.postgres.get(pid) ?? 0);
      return {
        wallSeconds: (performance.now() - started.wall) / 1000,
        bench: (bench.user + bench.system) / 1e6,
        consumer,
        redis,
        postgres,
        machine,
      };
    };
  }
}

const addOptional = (a: number | undefined, b: number | undefined) => (a === undefined || b === undefined ? undefined : a + b);

export function addSpend(a: CpuSpend, b: CpuSpend): CpuSpend {
  return {
    wallSeconds: a.wallSeconds + b.wallSeconds,
    bench: a.bench + b.bench,
    consumer: addOptional(a.consumer, b.consumer),
    redis: addOptional(a.redis, b.redis),
    postgres: addOptional(a.postgres, b.postgres),
    machine: a.machine + b.machine,
  };
}
