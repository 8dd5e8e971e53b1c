import type { ModelServer } from "@savepoint/model-server";
import { Queue } from "bullmq";
import { defaultJobOptions, requestDecision, thinkJobId, type ThinkPayload, type ThinkResult } from "@savepoint/shared";
import { createTestEnvironment, stopNewestFirst, type QueueWithEvents, type TestEnvironment } from "@savepoint/shared/testing";
import { createServer, type AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { basicAuth, MARKET, PASSWORD, postAction, savepoint, spawnTrader, startConsole, startInstantSimulator, startReasoningBackend, USER, type RunningConsole } from "./support.js";

const ITERATIONS = 6;

/** Polls `read` until it answers something, for state that has no event to await (a client connecting to Redis). */
async function until<T>(read: () => Promise<T | undefined>, timeoutMs = 20_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await read();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`not reached within ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/** A port nothing listens on: one the system just handed out and took back. */
async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

// The answers are what these tests check, field by field.
// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Answer = Record<string, any>;

describe("console actions end to end: fork, re-drive and stop and their refusals, through the console to reasoner and trader processes", () => {
  let env: TestEnvironment;
  let model: ModelServer;
  let producer: QueueWithEvents;
  let service: RunningConsole;
  let readOnly: RunningConsole;
  const stops: Array<() => Promise<unknown>> = [];
  let runs = 0;
  const payload = (agentId: string): ThinkPayload => ({ agentId, symbol: "AAPL", marketContext: MARKET, maxIterations: ITERATIONS });
  const get = async (path: string): Promise<Answer> => (await fetch(`${service.url}${path}`, { headers: basicAuth(USER, PASSWORD) })).json() as Promise<Answer>;
  const finished = async (sessionId: string) => {
    const job = (await producer.queue.getJob(sessionId))!;
    return (await job.waitUntilFinished(producer.events, 60_000)) as ThinkResult;
  };
  const completedRun = async (agentId: string) => {
    runs += 1;
    const job = await requestDecision(producer.queue, thinkJobId(agentId, runs), payload(agentId));
    await job.waitUntilFinished(producer.events, 60_000);
    return job.id!;
  };

  beforeAll(async () => {
    env = await createTestEnvironment("console_actions");
    stops.push(() => env.dispose());
    ({ model, producer } = await startReasoningBackend(env, stops));
    service = await startConsole(env, { CONSOLE_ACTIONS_ENABLED: "true" });
    stops.push(() => service.process.kill("SIGTERM"));
    readOnly = await startConsole(env);
    stops.push(() => readOnly.process.kill("SIGTERM"));
  }, 120_000);

  afterAll(() => stopNewestFirst(stops));

  it("forks a finished run at iteration 2: the new run starts from its first two steps, thinks on, and the original is untouched", async () => {
    const source = await completedRun("agent-fork");
    const before = await get(`/api/reasoning/${source}`);
    const sourceRows = (await env.query("SELECT epoch, seq, state::text FROM checkpoints WHERE session_id = $1 ORDER BY epoch, seq", [source])).rows;

    const { status, body } = await postAction(service, "fork", { sessionId: source, iteration: 2 });
    expect(status).toBe(202);
    expect(body).toEqual({ action: "fork", sessionId: expect.stringMatching(/^think\.agent-fork\.fork-[0-9a-f]{8}$/), forkOf: { sessionId: source, iteration: 2 } });
    const result = await finished(body.sessionId);

    expect(result).toMatchObject({ sessionId: body.sessionId, resumed: true, resumedAtIteration: 2, modelCallsSaved: 2 });
    const fork = await get(`/api/reasoning/${body.sessionId}`);
    expect(fork.forkOf).toEqual({ sessionId: source, iteration: 2 });
    const strip = ({ epoch: _epoch, seq: _seq, worker: _worker, ...step }: Answer) => step;
    expect(fork.iterations.slice(0, 2).map(strip)).toEqual(before.iterations.slice(0, 2).map(strip));
    expect(fork.iterations.length).toBeGreaterThan(2);
    expect(fork.events.map((event: Answer) => event.type)).toEqual(["completed"]);
    // Only the iterations after the fork point cost model calls.
    expect(model.ledger.session(body.sessionId).answeredByIteration).not.toHaveProperty("1");
    expect(model.ledger.session(body.sessionId).answeredByIteration).not.toHaveProperty("2");
    expect((await env.query("SELECT epoch, seq, state::text FROM checkpoints WHERE session_id = $1 ORDER BY epoch, seq", [source])).rows).toEqual(sourceRows);

    const consoleLog = await service.process.waitForLog((line) => line.event === "console_action" && line.action === "fork");
    expect(consoleLog).toMatchObject({ user: USER, input: { sessionId: source, iteration: 2 } });
  });

  it("refuses forks that cannot start, with codes, and queues nothing", async () => {
    const source = await completedRun("agent-refusals");
    const { iterations } = await get(`/api/reasoning/${source}`);
    const decidedAt = iterations.find((step: Answer) => step.decision).iteration;
    const waitingBefore = await producer.queue.getJobCounts("waiting", "active");

    for (const [body, status, code, message] of [
      [{ sessionId: source, iteration: iterations.length + 1 }, 409, "not_forkable", `it has ${iterations.length} iteration(s) stored`],
      [{ sessionId: source, iteration: decidedAt }, 409, "not_forkable", `iteration ${decidedAt} is its decision`],
      [{ sessionId: "think.nobody.1", iteration: 1 }, 404, "not_found", "no reasoner session think.nobody.1 is stored"],
      [{ sessionId: source }, 400, "invalid_request", "body: iteration: must be a number"],
    ] as const) {
      const answer = await postAction(service, "fork", body);
      expect(answer.status, JSON.stringify(body)).toBe(status);
      expect(answer.body.error.code).toBe(code);
      expect(answer.body.error.message).toContain(message);
    }
    expect(await producer.queue.getJobCounts("waiting", "active")).toEqual(waitingBefore);
  });

  it("re-drives a dead-lettered run from its last checkpoint, and refuses one that is not dead-lettered", async () => {
    runs += 1;
    const sessionId = thinkJobId("agent-dead", runs);
    model.faults.add({ status: 500, count: 1_000, sessionId });
    const job = await producer.queue.add("think", payload("agent-dead"), { ...defaultJobOptions.reasoning, jobId: sessionId, attempts: 1 });
    await expect(job.waitUntilFinished(producer.events, 60_000)).rejects.toThrow(/the model API failed/);
    const fleet = await get("/api/fleet");
    expect(fleet.deadLetters).toEqual([expect.objectContaining({ sessionId, failedReason: expect.stringMatching(/the model API failed/) })]);
    expect((await get(`/api/reasoning/${sessionId}`)).deadLettered).toBe(true);

    model.faults.clear();
    const { status, body } = await postAction(service, "redrive", { sessionId });
    expect(status).toBe(202);
    expect(body).toEqual({ action: "redrive", sessionId, nextAttempt: 2 });
    expect(await finished(sessionId)).toMatchObject({ sessionId, iterations: expect.any(Number) });
    expect((await get(`/api/reasoning/${sessionId}`)).deadLettered).toBe(false);

    const again = await postAction(service, "redrive", { sessionId });
    expect(again.status).toBe(409);
    expect(again.body.error).toEqual({ code: "not_dead_lettered", message: `think job "${sessionId}" is completed, not failed: only a dead-lettered run can be re-driven` });
    const missing = await postAction(service, "redrive", { sessionId: "think.nobody.2" });
    expect(missing.status).toBe(404);
    expect(missing.body.error.code).toBe("no_job");
  });

  it("stops a running trader gracefully: final checkpoint stopped, the trader exits 0, and a second stop is refused", async () => {
    const sim = await startInstantSimulator("console-stop");
    stops.push(() => sim.close());
    const { trader, sessionId } = await spawnTrader(env, sim.url, ["--symbols", "AAPL,MSFT", "--interval", "1", "--checkpoint-interval", "1"]);
    stops.push(() => trader.kill("SIGKILL"));
    // The trader starts listening for stop requests once it trades; its worker connection follows shortly.
    const listening = await until(async () => (await get("/api/fleet")).workers.find((worker: Answer) => worker.queue === `trader-control.${sessionId}`));
    expect(listening.name).toMatch(/^trader@.+:\d+$/);

    const { status, body } = await postAction(service, "stop", { sessionId, reason: "end of the test" });

    expect(status).toBe(200);
    expect(body).toEqual({ action: "stop", sessionId, epoch: expect.any(Number), status: "stopped", confirmed: true });
    expect(await trader.exited).toEqual({ code: 0, signal: null });
    expect(await trader.waitForLog((line) => line.event === "stop_requested")).toMatchObject({ requestedBy: `${USER}@console`, reason: "end of the test" });
    const stored = await env.query("SELECT status, latest_epoch FROM checkpoint_sessions WHERE service = 'trader' AND session_id = $1", [sessionId]);
    expect(stored.rows).toEqual([{ status: "stopped", latest_epoch: String(body.epoch) }]);

    const again = await postAction(service, "stop", { sessionId });
    expect(again.status).toBe(409);
    expect(again.body.error).toEqual({ code: "not_stoppable", message: `trader session ${sessionId} is stopped, not active: nothing is trading it` });
    const missing = await postAction(service, "stop", { sessionId: "trader-none" });
    expect(missing.status).toBe(404);
    expect(missing.body.error.code).toBe("not_found");
  });

  it("refuses to stop an active session whose trader is gone (not_running), leaving no request behind", async () => {
    const sim = await startInstantSimulator("console-gone");
    stops.push(() => sim.close());
    const { trader, sessionId } = await spawnTrader(env, sim.url, ["--symbols", "AAPL", "--interval", "1"]);
    await trader.kill("SIGKILL");

    const { status, body } = await postAction(service, "stop", { sessionId });

    expect(status).toBe(409);
    expect(body.error).toEqual({ code: "not_running", message: `no trader is running session ${sessionId} (none listens on its control queue), so there is nothing to stop` });
    const control = new Queue(`trader-control.${sessionId}`, { connection: { url: env.redisUrl }, prefix: env.queuePrefix });
    try {
      expect(await control.count()).toBe(0);
    } finally {
      await control.close();
    }
  });

  it("refuses actions from another site, without JSON, unknown ones, and every action while read-only", async () => {
    const crossSite = await postAction(service, "redrive", { sessionId: "think.x.1" }, { origin: "https://evil.example" });
    expect(crossSite.status).toBe(403);
    expect(crossSite.body.error.code).toBe("forbidden_origin");
    const fetchSite = await postAction(service, "redrive", { sessionId: "think.x.1" }, { "sec-fetch-site": "cross-site" });
    expect(fetchSite.body.error.code).toBe("forbidden_origin");
    const form = await fetch(`${service.url}/api/actions/redrive`, {
      method: "POST",
      headers: { ...basicAuth(USER, PASSWORD), "content-type": "text/plain" },
      body: '{"sessionId":"think.x.1"}',
    });
    expect(form.status).toBe(400);
    expect(((await form.json()) as Answer).error.code).toBe("invalid_request");
    const unknown = await postAction(service, "reset", {});
    expect(unknown.status).toBe(404);
    expect(unknown.body.error.code).toBe("unknown_action");
    for (const action of ["fork", "redrive", "stop"]) {
      const refused = await postAction(readOnly, action, { sessionId: "think.x.1", iteration: 1 });
      expect(refused.status).toBe(403);
      expect(refused.body.error.code).toBe("read_only");
    }
    const unauthenticated = await fetch(`${service.url}/api/actions/fork`, { method: "POST", headers: { "content-type": "application/json" }, body: "{}" });
    expect(unauthenticated.status).toBe(401);
  });

  it("answers the fleet: queues with their depths and workers, sessions per state, resumed vs fresh, checkpoint rate", async () => {
    const fleet = await get("/api/fleet");
    const reasoning = fleet.queues.find((queue: Answer) => queue.name === "reasoning");
    expect(reasoning).toMatchObject({ prefix: env.queuePrefix, workers: 1, counts: expect.objectContaining({ waiting: 0, active: 0 }) });
    expect(fleet.queues.map((queue: Answer) => queue.name)).toEqual(expect.arrayContaining(["checkpoints", "checkpoints-confirmed", "checkpoint-requests", "checkpoint-maintenance", "reasoning"]));
    expect(fleet.workers).toContainEqual(expect.objectContaining({ queue: "reasoning", name: expect.stringMatching(/^.+:\d+$/) }));
    expect(fleet.workers).toContainEqual(expect.objectContaining({ queue: "checkpoints" }));
    expect(fleet.sessionsByState).toContainEqual({ service: "reasoner", status: "completed", sessions: expect.any(Number) });
    const starts = fleet.starts.find((row: Answer) => row.service === "reasoner");
    // The re-driven run had two owners; every other one.
    expect(starts).toEqual({ service: "reasoner", resumed: 1, fresh: expect.any(Number) });
    expect(fleet.checkpointRate).toContainEqual(expect.objectContaining({ service: "reasoner", checkpoints: expect.any(Number) }));
    expect(fleet.rateSeconds).toBe(60);
  });

  it("npx savepoint lists, shows, forks and re-drives through the console, with one-line errors and exit codes", async () => {
    const source = await completedRun("agent-cli");
    const listed = await savepoint(service, ["sessions", "--service", "reasoner", "--status", "completed"]);
    expect(listed.code).toBe(0);
    expect(listed.output.split("\n")[0]).toMatch(/^SERVICE\s+SESSION\s+OWNER\s+STATUS\s+EPOCH\.SEQ\s+UPDATED\s+CHECKPOINTS\s+RESUMES$/);
    expect(listed.output).toMatch(new RegExp(`^reasoner\\s+${source.replaceAll(".", "\\.")}\\s+agent-cli\\s+completed\\s`, "m"));

    const shown = await savepoint(service, ["show", "reasoner", source]);
    expect(shown.code).toBe(0);
    expect(shown.output).toMatch(new RegExp(`^reasoner ${source.replaceAll(".", "\\.")}: completed, owner agent-cli,`));
    expect(shown.output).toMatch(/^\s+1 \w+\s+epoch 1 /m);

    const forked = await savepoint(service, ["fork", source, "1"]);
    expect(forked.code).toBe(0);
    const forkId = /new run (\S+) /.exec(forked.output)?.[1];
    expect(forkId).toMatch(/^think\.agent-cli\.fork-/);
    await finished(forkId!);

    expect(await savepoint(service, ["redrive", source])).toEqual({
      code: 3,
      output: `savepoint: not_dead_lettered: think job "${source}" is completed, not failed: only a dead-lettered run can be re-driven`,
    });
    expect(await savepoint(service, ["show", "reasoner", "think.nobody.3"])).toEqual({ code: 4, output: "savepoint: not_found: no reasoner session think.nobody.3 is stored" });
    expect(await savepoint(readOnly, ["fork", source, "1"])).toEqual({
      code: 3,
      output: "savepoint: read_only: the console is read-only; set CONSOLE_ACTIONS_ENABLED=true to allow actions",
    });
    expect(await savepoint(service, ["sessions"], "wrong password!")).toEqual({
      code: 3,
      output: `savepoint: the console at ${service.url} refused CONSOLE_USER ${USER} and CONSOLE_PASSWORD; check them`,
    });
    expect((await savepoint(service, ["fork", source])).code).toBe(2);
    const closed = await freePort();
    expect(await savepoint({ ...service, url: `http://127.0.0.1:${closed}` }, ["sessions"])).toEqual({
      code: 1,
      output: `savepoint: cannot reach the console at http://127.0.0.1:${closed} (ECONNREFUSED); start it, or set SAVEPOINT_CONSOLE_URL`,
    });
  });
});
