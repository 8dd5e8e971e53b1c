import { setTimeout as sleep } from "node:timers/promises";
import { createMetricsRegistry, describeIssues, registerOpsRoutes } from "@savepoint/shared";
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from "fastify";
import { z } from "zod";
import { CallLedger } from "./call-ledger.js";
import { answer } from "./deterministic-analyst.js";
import { FaultQueue, faultSchema } from "./faults.js";
import { conversationProblem, errorBody, estimateTokens, messageResponse, messagesRequestSchema } from "./messages-api.js";

export interface ModelServerOptions {
  /** How long each call takes, standing in for a real model's 1-3 s. */
  latencyMs: number;
  /** When set, calls must carry this key (x-api-key or Authorization: Bearer); otherwise any key will do. */
  apiKey?: string;
}

export interface ModelServer {
  app: FastifyInstance;
  ledger: CallLedger;
  faults: FaultQueue;
  latencyMs: number;
  listen(port: number, host?: string): Promise<number>;
  close(): Promise<void>;
}

const BODY_LIMIT = 32 * 1024 * 1024;
const ABORTED = Symbol("aborted");

function presentedKey(request: FastifyRequest): string | undefined {
  const apiKey = request.headers["x-api-key"];
  if (typeof apiKey === "string" && apiKey) return apiKey;
  const bearer = /^Bearer\s+(.+)$/i.exec(request.headers.authorization ?? "");
  return bearer?.[1];
}

/** Resolves after `ms`, or with ABORTED as soon as the client hangs up. */
function wait(ms: number, signal: AbortSignal): Promise<void | typeof ABORTED> {
  if (signal.aborted) return Promise.resolve(ABORTED);
  if (ms <= 0) return Promise.resolve();
  return sleep(ms, undefined, { signal }).then(
    () => undefined,
    () => ABORTED,
  );
}

/**
 * A Messages-API-compatible server for running the stack and the tests offline: `POST /v1/messages` answered
 * by a deterministic analyst, with the API's auth, error shapes and retry headers; admin routes to inject
 * faults, change latency and read per-session call counts.
 */
export function createModelServer(options: ModelServerOptions): ModelServer {
  const app = Fastify({ logger: false, bodyLimit: BODY_LIMIT });
  const ledger = new CallLedger();
  const faults = new FaultQueue();
  let requests = 0;
  const server: ModelServer = {
    app,
    ledger,
    faults,
    latencyMs: options.latencyMs,
    async listen(port, host = "127.0.0.1") {
      await app.listen({ port, host });
      const address = app.server.address();
      return typeof address === "object" && address ? address.port : port;
    },
    close: () => app.close(),
  };

  const fail = (reply: FastifyReply, status: number, message: string) =>
    reply.code(status).send(errorBody(status, message, String(reply.getHeader("request-id"))));
  app.addHook("onRequest", async (request, reply) => {
    requests += 1;
    reply.header("request-id", `req_local_${requests.toString().padStart(8, "0")}`);
    // With a key configured, fault injection and counters are as protected as the API itself.
    if (options.apiKey && request.url.startsWith("/admin/") && presentedKey(request) !== options.apiKey) {
      return fail(reply, 401, "admin routes need the server's key: send x-api-key or Authorization: Bearer");
    }
  });
  app.setErrorHandler((error: { statusCode?: number; message: string }, _request, reply) => {
    const status = error.statusCode === 413 ? 413 : (error.statusCode ?? 500) < 500 ? 400 : 500;
    return fail(reply, status, error.message);
  });
  app.setNotFoundHandler((request, reply) => fail(reply, 404, `${request.method} ${request.url} does not exist; the local model server serves POST /v1/messages`));

  app.post("/v1/messages", async (request, reply) => {
    const key = presentedKey(request);
    if (!key) return fail(reply, 401, "missing API key: send x-api-key or Authorization: Bearer");
    if (options.apiKey && key !== options.apiKey) return fail(reply, 401, "invalid x-api-key");
    const parsed = messagesRequestSchema.safeParse(request.body);
    if (!parsed.success) return fail(reply, 400, describeIssues(parsed.error));
    const problem = conversationProblem(parsed.data);
    if (problem) return fail(reply, 400, problem);
    const body = parsed.data;
    const sessionId = body.metadata?.user_id ?? "anonymous";
    ledger.received(sessionId);

    const hangUp = new AbortController();
    reply.raw.on("close", () => {
      if (!reply.raw.writableFinished) hangUp.abort();
    });
    const analysis = answer(body);
    const fault = faults.take(sessionId);
    if (fault?.status) {
      ledger.settled(sessionId, analysis.iteration, "failed");
      if (fault.retryAfterMs !== undefined) reply.header("retry-after-ms", String(fault.retryAfterMs));
      if (fault.retryAfterSeconds !== undefined) reply.header("retry-after", String(fault.retryAfterSeconds));
      const message = fault.status === 429 ? "rate limit exceeded (injected)" : fault.status === 529 ? "Overloaded (injected)" : "internal error (injected)";
      return fail(reply, fault.status, message);
    }
    if ((await wait((fault?.hangMs ?? 0) + server.latencyMs, hangUp.signal)) === ABORTED) {
      ledger.settled(sessionId, analysis.iteration, "aborted");
      return fail(reply, 499, "client closed the request");
    }
    const outputTokens = estimateTokens(analysis.content);
    ledger.settled(sessionId, analysis.iteration, "answered");
    if (outputTokens > body.max_tokens) {
      const text = analysis.content.map((block) => (block.type === "text" ? block.text : "")).join(" ");
      return messageResponse(`msg_local_${requests}`, body.model, [{ type: "text", text: text.slice(0, body.max_tokens * 4), citations: null }], "max_tokens", {
        input: estimateTokens(body),
        output: body.max_tokens,
      });
    }
    return messageResponse(`msg_local_${requests}`, body.model, analysis.content, analysis.stopReason, { input: estimateTokens(body), output: outputTokens });
  });

  registerOpsRoutes(app, { service: "model-server", registry: createMetricsRegistry("model-server"), readiness: {} });
  app.get("/admin/calls", async () => ledger.all());
  app.get<{ Params: { sessionId: string } }>("/admin/calls/:sessionId", async (request) => ledger.session(request.params.sessionId));
  app.delete("/admin/calls", async () => {
    ledger.reset();
    return { reset: true };
  });
  app.post("/admin/faults", async (request, reply) => {
    const parsed = faultSchema.safeParse(request.body);
    if (!parsed.success) return fail(reply, 400, `invalid fault: ${describeIssues(parsed.error)}`);
    faults.add(parsed.data);
    return { pending: faults.list() };
  });
  app.get("/admin/faults", async () => ({ pending: faults.list() }));
  app.delete("/admin/faults", async () => {
    faults.clear();
    return { pending: [] };
  });
  app.put("/admin/latency", async (request, reply) => {
    const parsed = z.strictObject({ ms: z.number().int().min(0).max(600_000) }).safeParse(request.body);
    if (!parsed.success) return fail(reply, 400, `invalid latency: ${describeIssues(parsed.error)}`);
    server.latencyMs = parsed.data.ms;
    return { latencyMs: server.latencyMs };
  });
  return server;
}
