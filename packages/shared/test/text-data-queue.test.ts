import { Job } from "bullmq";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { TextDataQueue } from "../src/text-data-queue.js";
import { createTestEnvironment, type TestEnvironment } from "../src/testing/index.js";

describe("TextDataQueue", () => {
  let env: TestEnvironment;
  let queue: TextDataQueue;

  beforeAll(async () => {
    env = await createTestEnvironment("text-queue");
    queue = new TextDataQueue("checkpoints", { connection: { url: env.redisUrl, maxRetriesPerRequest: null }, prefix: env.queuePrefix });
  });

  afterAll(async () => {
    await queue.close();
    await env.dispose();
  });

  it("stores a job's JSON text as its data, which BullMQ reads back as the object it encodes", async () => {
    const text = '{"v":1,"state":{"note":"a \\"quoted\\" word","n":[1,2]}}';
    const added = await queue.add("snapshot", text, { jobId: "text-1" });
    expect(added.data).toBe(text);
    const stored = await Job.fromId(queue, "text-1");
    expect(stored?.data).toEqual({ v: 1, state: { note: 'a "quoted" word', n: [1, 2] } });
  });
});
