import type { Worker } from "bullmq";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { StopRequest } from "../src/schemas/session-control.js";
import { listenForStop, requestStop, StopRefusedError, traderControlQueueName } from "../src/session-control.js";
import { createTestEnvironment, openQueueWithEvents, type QueueWithEvents, type TestEnvironment } from "../src/testing/index.js";

describe("a trader's control queue (the catalog's trader-control, one queue per session)", () => {
  const sessionId = "control-session";
  let env: TestEnvironment;
  let worker: Worker;
  let control: QueueWithEvents;
  const asked: StopRequest[] = [];
  const connection = () => ({ url: env.redisUrl, maxRetriesPerRequest: null });
  const stopOptions = () => ({ connection: connection(), eventsConnection: connection(), prefix: env.queuePrefix, timeoutMs: 5_000 });

  beforeAll(async () => {
    env = await createTestEnvironment("session_control");
    worker = listenForStop({ connection: connection(), prefix: env.queuePrefix, sessionId, name: "trader@test" }, async (request) => {
      asked.push(request);
      return { sessionId, epoch: 2, status: "stopped", confirmed: true };
    });
    await worker.waitUntilReady();
    control = await openQueueWithEvents(env, traderControlQueueName(sessionId));
  });
  afterAll(async () => {
    await control?.close();
    await worker?.close();
    await env?.dispose();
  });

  it("answers a stop for its session with the trader's result", async () => {
    await expect(requestStop(stopOptions(), { sessionId, requestedBy: "tester", reason: "done" })).resolves.toEqual({ sessionId, epoch: 2, status: "stopped", confirmed: true });
    expect(asked).toEqual([{ sessionId, requestedBy: "tester", reason: "done" }]);
  });

  it("refuses, through the catalog helper, a job name it does not have, a payload that does not parse and another session's stop", async () => {
    const refused = async (name: string, data: unknown) => {
      const job = await control.queue.add(name, data, { attempts: 3 });
      const error = await job.waitUntilFinished(control.events, 10_000).then(
        () => undefined,
        (failure: Error) => failure.message,
      );
      expect((await control.queue.getJob(job.id!))?.attemptsMade, `${name} is not retried`).toBe(1);
      return error;
    };
    const before = asked.length;

    expect(await refused("pause", { sessionId, requestedBy: "tester" })).toBe(`unknown job name "pause" on queue "trader-control.${sessionId}"; expected one of: stop`);
    expect(await refused("stop", { sessionId, requestedBy: "" })).toMatch(/^invalid stop job: requestedBy:/);
    expect(await refused("stop", { sessionId: "another-session", requestedBy: "tester" })).toBe(`stop job for session another-session on the control queue of ${sessionId}`);
    expect(asked.length).toBe(before);
  });

  it("refuses a stop at once when no trader listens on the session's queue", async () => {
    const refusal = await requestStop(stopOptions(), { sessionId: "nobody-trades-this", requestedBy: "tester" }).catch((error: unknown) => error);
    expect(refusal).toBeInstanceOf(StopRefusedError);
    expect((refusal as StopRefusedError).code).toBe("not_running");
  });
});
