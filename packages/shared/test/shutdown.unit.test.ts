import { pino } from "pino";
import { describe, expect, it } from "vitest";
import { GracefulShutdown } from "../src/shutdown.js";

const silent = pino({ level: "silent" });

describe("GracefulShutdown", () => {
  it("closes parts in registration order and exits 0", async () => {
    const closed: string[] = [];
    let exitCode: number | undefined;
    const shutdown = new GracefulShutdown(silent, 1_000, (code) => (exitCode = code))
      .add("workers", async () => void closed.push("workers"))
      .add("connections", async () => void closed.push("connections"));
    await shutdown.shutdown("test");
    expect(closed).toEqual(["workers", "connections"]);
    expect(exitCode).toBe(0);
  });

  it("exits 1 at the deadline when a part never finishes closing", async () => {
    let exitCode: number | undefined;
    const started = Date.now();
    const shutdown = new GracefulShutdown(silent, 200, (code) => (exitCode = code)).add("stuck worker", () => new Promise(() => undefined));
    await shutdown.shutdown("test");
    expect(exitCode).toBe(1);
    expect(Date.now() - started).toBeLessThan(1_000);
  });

  it("goes on closing the other parts after one fails, and exits 1", async () => {
    const closed: string[] = [];
    let exitCode: number | undefined;
    const shutdown = new GracefulShutdown(silent, 1_000, (code) => (exitCode = code))
      .add("broken", async () => {
        throw new Error("boom");
      })
      .add("connections", async () => void closed.push("connections"));
    await shutdown.shutdown("test");
    expect(closed).toEqual(["connections"]);
    expect(exitCode).toBe(1);
  });

  it("exits with the code a part ended with, logging no error for it", async () => {
    const errors: unknown[] = [];
    const logger = pino({ level: "info" }, { write: (line: string) => void (JSON.parse(line).level >= 50 && errors.push(line)) });
    let exitCode: number | undefined;
    const shutdown = new GracefulShutdown(logger, 1_000, (code) => (exitCode = code))
      .add("trader", async () => 3)
      .add("connections", async () => undefined);
    await shutdown.shutdown("test");
    expect(exitCode).toBe(3);
    expect(errors).toEqual([]);
  });
});
