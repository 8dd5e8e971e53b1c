import { setTimeout as sleep } from "node:timers/promises";
import { createMetricsRegistry, describeIssues, listenOn, registerOpsRoutes } from "@savepoint/shared";
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from "fastify";
import { z } from "zod";
import { CallLedger, type CallOutcome } from "./call-ledger.js";
import { answer } from "./deterministic-analyst.js";
import { FaultQueue, faultSchema, type Fault } from "./faults.js";
import { generate } from "./generation.js";
import { KNOWN_MODELS } from "./known-models.js";
import { modelInfo, modelListQuerySchema, modelPage } from "./models-api.js";
import {
  combineTurns,
  conversationProblem,
  ERROR_TYPES,
  errorBody,
  estimateTokens,
  messageResponse,
  messagesRequestSchema,
  newId,
  sseFrame,
  streamEvents,
  type GeneratedMessage,
} from "./messages-api.js";

export interface ModelServerOptions {
  /** How long each call takes, standing in for a real model's 1-3 s (spread over the events when streamed). */
  latencyMs: number;
  /** When set, calls must carry this key (x-api-key or Authorization: Bearer); otherwise any key will do. */
  apiKey?: string;
  /** The models it answers for and their `max_tokens` limits; the API's (`KNOWN_MODELS`) unless a test says. */
  models?: ReadonlyMap<string, { maxTokens: number }>;
}

export interface ModelServer {
  app: FastifyInstance;
  ledger: CallLedger;
  faults: FaultQueue;
  latencyMs: number;
  /** Resolves with the port bound; a port in use or privileged fails with a `PortUnavailableError` naming MODEL_SERVER_PORT. */
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

const INJECTED_MESSAGES: Record<number, string> = { 429: "rate limit exceeded (injected)", 500: "internal error (injected)", 529: "Overloaded (injected)" };

/**
 * A Messages-API-compatible server for running the stack and the tests offline: `POST /v1/messages` answered
 * by a deterministic analyst, plain or streamed over server-sent events, with the API's auth, validation, error
 * shapes and retry headers; admin routes to inject faults, change latency and read per-session call counts.
 */
export function createModelServer(options: ModelServerOptions): ModelServer {
  const app = Fastify({ logger: false, bodyLimit: BODY_LIMIT });
  const ledger = new CallLedger();
  const faults = new FaultQueue();
  const models = options.models ?? KNOWN_MODELS;
  let requests = 0;
  const server: ModelServer = {
    app,
    ledger,
    faults,
    latencyMs: options.latencyMs,
    listen: (port, host = "127.0.0.1") => listenOn(app, { host, port, setting: "MODEL_SERVER_PORT" }),
    close: () => app.close(),
  };

  const fail = (reply: FastifyReply, status: number, message: string) =>
    reply.code(status).send(errorBody(status, message, String(reply.getHeader("request-id"))));
  app.addHook("onRequest", async (_request, reply) => {
    requests += 1;
    reply.header("request-id", `req_local_${requests.toString().padStart(8, "0")}`);
  });
  app.setErrorHandler((error: { statusCode?: number; message: string }, _request, reply) => {
    const status = error.statusCode === 413 ? 413 : (error.statusCode ?? 500) < 500 ? 400 : 500;
    return fail(reply, status, error.message);
  });
  app.setNotFoundHandler((request, reply) =>
    fail(reply, 404, `${request.method} ${request.url} does not exist; the local model server serves POST /v1/messages, GET /v1/models and GET /v1/models/{model_id}`),
  );
  /** The API's key check, the same on every /v1 route; sends the 401 and answers true when the key is refused. */
  const refusedKey = (request: FastifyRequest, reply: FastifyReply): boolean => {
    const key = presentedKey(request);
    if (!key) void fail(reply, 401, "missing API key: send x-api-key or Authorization: Bearer");
    else if (options.apiKey && key !== options.apiKey) void fail(reply, 401, "invalid x-api-key");
    return reply.sent;
  };

  app.get("/v1/models", async (request, reply) => {
    if (refusedKey(request, reply)) return reply;
    const query = modelListQuerySchema.safeParse(request.query);
    if (!query.success) return fail(reply, 400, describeIssues(query.error));
    return modelPage(models, query.data);
  });
  app.get<{ Params: { modelId: string } }>("/v1/models/:modelId", async (request, reply) => {
    if (refusedKey(request, reply)) return reply;
    const model = models.get(request.params.modelId);
    // The API's wording for an unknown id, as for an unknown `model` in POST /v1/messages.
    if (!model) return fail(reply, 404, `model: ${request.params.modelId}`);
    return modelInfo(request.params.modelId, model);
  });

  app.post("/v1/messages", async (request, reply) => {
    if (refusedKey(request, reply)) return reply;
    const parsed = messagesRequestSchema.safeParse(request.body);
    if (!parsed.success) return fail(reply, 400, describeIssues(parsed.error));
    const body = combineTurns(parsed.data);
    // The API's own wording for both refusals.
    const model = models.get(body.model);
    if (!model) return fail(reply, 404, `model: ${body.model}`);
    if (body.max_tokens > model.maxTokens) {
      return fail(reply, 400, `max_tokens: ${body.max_tokens} > ${model.maxTokens}, which is the maximum allowed number of output tokens for ${body.model}`);
    }
    const problem = conversationProblem(body);
    if (problem) return fail(reply, 400, problem);
    const sessionId = body.metadata?.user_id ?? "anonymous";
    ledger.received(sessionId, body.stream === true);

    const hangUp = new AbortController();
    reply.raw.on("close", () => {
      if (!reply.raw.writableFinished) hangUp.abort();
    });
    const analysis = answer(body);
    const generated = generate(analysis, { maxTokens: body.max_tokens, stopSequences: body.stop_sequences ?? [] });
    const message: GeneratedMessage = {
      id: newId("msg"),
      model: body.model,
      content: generated.content,
      stopReason: generated.stopReason,
      stopSequence: generated.stopSequence,
      usage: { input: estimateTokens(body), output: generated.outputTokens },
    };
    const fault = faults.take(sessionId);
    if (fault?.status && !(fault.midStream && body.stream)) {
      ledger.settled(sessionId, analysis.iteration, "failed");
      if (fault.retryAfterMs !== undefined) reply.header("retry-after-ms", String(fault.retryAfterMs));
      if (fault.retryAfterSeconds !== undefined) reply.header("retry-after", String(fault.retryAfterSeconds));
      return fail(reply, fault.status, INJECTED_MESSAGES[fault.status]!);
    }
    if (body.stream) {
      await stream(reply, message, {
        latencyMs: server.latencyMs,
        fault,
        hangUp: hangUp.signal,
        settle: (outcome) => ledger.settled(sessionId, analysis.iteration, outcome),
      });
      return reply.sent ? reply : fail(reply, 499, "client closed the request");
    }
    if ((await wait((fault?.hangMs ?? 0) + server.latencyMs, hangUp.signal)) === ABORTED) {
      ledger.settled(sessionId, analysis.iteration, "aborted");
      return fail(reply, 499, "client closed the request");
    }
    ledger.settled(sessionId, analysis.iteration, "answered");
    return messageResponse(message);
  });

  registerOpsRoutes(app, { service: "model-server", registry: createMetricsRegistry("model-server"), readiness: {} });
  // The key check belongs to the admin routes themselves (a hook of their scope), so it runs for whatever URL the
  // router matched to them, after it decoded and normalised the path: /%61dmin/latency is /admin/latency here too.
  void app.register(
    async (admin) => {
      admin.addHook("onRequest", async (request, reply) => {
        if (options.apiKey && presentedKey(request) !== options.apiKey) {
          return fail(reply, 401, "admin routes need the server's key: send x-api-key or Authorization: Bearer");
        }
      });
      admin.get("/calls", async () => ledger.all());
      admin.get<{ Params: { sessionId: string } }>("/calls/:sessionId", async (request) => ledger.session(request.params.sessionId));
      admin.delete("/calls", async () => {
        ledger.reset();
        return { reset: true };
      });
      admin.post("/faults", async (request, reply) => {
        const parsedFault = faultSchema.safeParse(request.body);
        if (!parsedFault.success) return fail(reply, 400, `invalid fault: ${describeIssues(parsedFault.error)}`);
        faults.add(parsedFault.data);
        return { pending: faults.list() };
      });
      admin.get("/faults", async () => ({ pending: faults.list() }));
      admin.delete("/faults", async () => {
        faults.clear();
        return { pending: [] };
      });
      admin.put("/latency", async (request, reply) => {
        const parsedLatency = z.strictObject({ ms: z.number().int().min(0).max(600_000) }).safeParse(request.body);
        if (!parsedLatency.success) return fail(reply, 400, `invalid latency: ${describeIssues(parsedLatency.error)}`);
        server.latencyMs = parsedLatency.data.ms;
        return { latencyMs: server.latencyMs };
      });
    },
    { prefix: "/admin" },
  );
  return server;
}

/**
 * Streams `message` as the API's server-sent events: `message_start` at once and the other events spread over
 * `latencyMs`. A hang fault holds the stream before its first byte (so a client's timeout can fire) or, with
 * `stallBefore`, just before that event; a mid-stream fault ends it with an `error` event once the first block
 * has begun. `settle` is told once how the call ended: answered as soon as `message_delta` is out, as the
 * whole answer then is (all that is left is `message_stop`), whether or not the client stays for the end.
 */
async function stream(
  reply: FastifyReply,
  message: GeneratedMessage,
  how: { latencyMs: number; fault: Fault | undefined; hangUp: AbortSignal; settle: (outcome: CallOutcome) => void },
): Promise<void> {
  const events = streamEvents(message);
  const firstDelta = events.findIndex((event) => event.type === "content_block_delta");
  const failAt = how.fault?.status ? Math.max(firstDelta, 1) : -1;
  const stallAt = how.fault?.hangMs ? (how.fault.stallBefore ? events.findIndex((event) => event.type === how.fault?.stallBefore) : 0) : -1;
  const gapMs = events.length > 1 ? how.latencyMs / (events.length - 1) : 0;
  let delivered = false;
  const hungUp = () => {
    reply.raw.destroy();
    if (!delivered) how.settle("aborted");
  };
  if (stallAt === 0 && (await wait(how.fault!.hangMs!, how.hangUp)) === ABORTED) return how.settle("aborted");
  reply.hijack();
  reply.raw.writeHead(200, {
    "content-type": "text/event-stream; charset=utf-8",
    "cache-control": "no-cache",
    connection: "keep-alive",
    "request-id": String(reply.getHeader("request-id")),
  });
  for (const [index, event] of events.entries()) {
    if (index > 0 && (await wait(gapMs, how.hangUp)) === ABORTED) return hungUp();
    if (index === stallAt && index > 0 && (await wait(how.fault!.hangMs!, how.hangUp)) === ABORTED) return hungUp();
    if (index === failAt && how.fault?.status) {
      const status = how.fault.status;
      reply.raw.end(sseFrame({ type: "error", error: { type: ERROR_TYPES[status] ?? "api_error", message: INJECTED_MESSAGES[status]! } }));
      return how.settle("failed");
    }
    reply.raw.write(sseFrame(event));
    if (event.type === "message_delta") {
      delivered = true;
      how.settle("answered");
    }
  }
  reply.raw.end();
}
