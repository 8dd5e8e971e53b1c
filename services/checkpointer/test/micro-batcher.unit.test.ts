import { describe, expect, it } from "vitest";
import { MicroBatcher } from "../src/domain/micro-batcher.js";
import { dedupeBatch } from "../src/domain/snapshot-batch.js";
import { snapshot } from "./snapshot-fixture.js";

function deferred<T>() {
  let resolve!: (value: T) => void;
  const promise = new Promise<T>((r) => (resolve = r));
  return { promise, resolve };
}

describe("MicroBatcher", () => {
  it("sends an item alone at once when nothing else is pending", async () => {
    const batches: number[][] = [];
    const batcher = new MicroBatcher<number, number>(async (items) => (batches.push(items), items.map((n) => n * 2)), {
      maxBatchSize: 10,
      maxConcurrentFlushes: 1,
    });
    expect(await batcher.submit(21)).toBe(42);
    expect(batches).toEqual([[21]]);
  });

  it("sends the first of several items submitted together to an idle batcher before the others arrive", async () => {
    const batches: number[][] = [];
    const batcher = new MicroBatcher<number, number>(async (items) => (batches.push(items), items), { maxBatchSize: 10, maxConcurrentFlushes: 1 });
    const first = batcher.submit(1);
    expect(batches).toEqual([[1]]);
    await Promise.all([first, batcher.submit(2), batcher.submit(3)]);
    expect(batches).toEqual([[1], [2, 3]]);
  });

  it("gathers items that arrive while a flush is running into the next batch, up to the size limit", async () => {
    const batches: number[][] = [];
    const gate = deferred<void>();
    const batcher = new MicroBatcher<number, number>(
      async (items) => {
        batches.push(items);
        if (batches.length === 1) await gate.promise;
        return items;
      },
      { maxBatchSize: 3, maxConcurrentFlushes: 1 },
    );
    const first = batcher.submit(0);
    await new Promise((resolve) => setImmediate(resolve));
    const rest = [1, 2, 3, 4, 5].map((n) => batcher.submit(n));
    gate.resolve();
    expect(await Promise.all([first, ...rest])).toEqual([0, 1, 2, 3, 4, 5]);
    expect(batches).toEqual([[0], [1, 2, 3], [4, 5]]);
  });

  it("fails only the item whose result is an Error, and every item when the flush throws", async () => {
    const batcher = new MicroBatcher<number, number>(
      async (items) => {
        if (items.includes(99)) throw new Error("flush failed");
        return items.map((n) => (n === 2 ? new Error("bad item") : n));
      },
      { maxBatchSize: 10, maxConcurrentFlushes: 1 },
    );
    const results = await Promise.allSettled([batcher.submit(1), batcher.submit(2), batcher.submit(3)]);
    expect(results.map((r) => r.status)).toEqual(["fulfilled", "rejected", "fulfilled"]);
    await expect(batcher.submit(99)).rejects.toThrow("flush failed");
  });

  it("never runs more flushes at once than allowed", async () => {
    let running = 0;
    let most = 0;
    const batcher = new MicroBatcher<number, number>(
      async (items) => {
        running += 1;
        most = Math.max(most, running);
        await new Promise((resolve) => setTimeout(resolve, 5));
        running -= 1;
        return items;
      },
      { maxBatchSize: 2, maxConcurrentFlushes: 2 },
    );
    await Promise.all(Array.from({ length: 20 }, (_, n) => batcher.submit(n)));
    expect(most).toBe(2);
  });
});

describe("dedupeBatch", () => {
  it("keeps one copy per (service, session, epoch, seq), sorted by session then position", () => {
    const a = { head: snapshot({ sessionId: "b", epoch: 0, seq: 2 }), stateJson: "{}" };
    const b = { head: snapshot({ sessionId: "a", epoch: 1, seq: 0 }), stateJson: "{}" };
    const c = { head: snapshot({ sessionId: "b", epoch: 0, seq: 1 }), stateJson: "{}" };
    const again = { head: { ...a.head }, stateJson: "{}" };
    const { unique, indexOf } = dedupeBatch([a, b, c, again]);
    expect(unique.map((s) => `${s.head.sessionId}:${s.head.epoch}:${s.head.seq}`)).toEqual(["a:1:0", "b:0:1", "b:0:2"]);
    expect(indexOf).toEqual([2, 0, 1, 2]);
  });
});
