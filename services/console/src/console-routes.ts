import basicAuth from "@fastify/basic-auth";
import { basicAuthValidator, type Logger } from "@savepoint/shared";
import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from "fastify";
import type { z } from "zod";
import {
  describeProblems,
  sessionIdParamsSchema,
  sessionParamsSchema,
  sessionsQuerySchema,
  timelineQuerySchema,
  viewQuerySchema,
  type ApiError,
} from "./api-schemas.js";
import { ActionRefusedError, forkInputSchema, redriveInputSchema, stopInputSchema, type ActionRefusal, type ConsoleActions } from "./actions.js";
import type { ConsoleConfig } from "./config.js";
import type { FleetReader } from "./fleet.js";
import { ACTIONS_SCRIPT } from "./pages/actions-script.js";
import { fleetPage } from "./pages/fleet-page.js";
import type { SafeHtml } from "./pages/html.js";
import { layout, type PageSettings } from "./pages/layout.js";
import { LIVE_SCRIPT } from "./pages/live-script.js";
import { reasoningPage, sessionPage, tradingPage } from "./pages/session-pages.js";
import { sessionsPage } from "./pages/sessions-page.js";
import type { ConsoleStore, StoredState } from "./store.js";
import { reasoningView } from "./views/reasoning.js";
import { tradingView } from "./views/trading.js";

export const CONSOLE_REALM = "Savepoint console";

class RequestProblem extends Error {
  constructor(
    readonly status: 400 | 403 | 404,
    readonly body: ApiError,
  ) {
    super(body.error.message);
  }
}

function parsed<S extends z.ZodType>(schema: S, input: unknown, what: string): z.output<S> {
  const result = schema.safeParse(input ?? {});
  if (!result.success) throw new RequestProblem(400, { error: { code: "invalid_request", message: `${what}: ${describeProblems(result.error)}` } });
  return result.data;
}

const notFound = (service: string, sessionId: string) =>
  new RequestProblem(404, { error: { code: "not_found", message: `no ${service} session ${sessionId} is stored` } });

/**
 * Why a POST did not come from the console's own pages (or a client with no browser, such as the CLI), or
 * undefined. Basic auth is sent by the browser to any page that posts here, so a form on another site could
 * otherwise act in the user's name: browsers say where a request comes from (Sec-Fetch-Site, Origin), and
 * actions only take JSON, which another site cannot send without a CORS preflight the console never grants.
 */
function crossSiteProblem(request: FastifyRequest): string | undefined {
  const site = request.headers["sec-fetch-site"];
  if (site !== undefined && site !== "same-origin" && site !== "none") return `the request came from another site (Sec-Fetch-Site: ${site})`;
  const origin = request.headers.origin;
  if (origin !== undefined) {
    let host: string | undefined;
    try {
      host = new URL(origin).host;
    } catch {
      host = undefined;
    }
    if (host !== request.headers.host) return `the request came from ${origin}, not from this console (${request.headers.host ?? "no Host"})`;
  }
  return undefined;
}

export interface ConsoleParts {
  store: ConsoleStore;
  fleet: FleetReader;
  actions: ConsoleActions;
}

/**
 * The console: its JSON API under /api and the pages built from the same reads, all behind basic auth.
 * Registered as its own Fastify scope, so /healthz, /readyz and /metrics beside it stay open.
 */
export function consoleRoutes(config: ConsoleConfig, { store, fleet, actions }: ConsoleParts, logger: Logger): FastifyPluginAsync {
  const settings: PageSettings = { actionsEnabled: config.CONSOLE_ACTIONS_ENABLED, refreshSeconds: config.CONSOLE_REFRESH_SECONDS };
  return async (app) => {
    app.addHook("onClose", async () => {
      await Promise.allSettled([actions.close(), fleet.close()]);
      await store.close();
    });

    await app.register(basicAuth, {
      authenticate: { realm: CONSOLE_REALM },
      validate: basicAuthValidator({ user: config.CONSOLE_USER, password: config.CONSOLE_PASSWORD }, logger, "console"),
    });
    app.addHook("onRequest", app.basicAuth);

    app.setErrorHandler(async (error, request, reply) => {
      if (error instanceof RequestProblem) return reply.code(error.status).send(error.body);
      if (error instanceof ActionRefusedError) return reply.code(error.status).send({ error: { code: error.code, message: error.message } } satisfies ApiError);
      if ((error as { statusCode?: number }).statusCode === 401) return reply.send(error);
      logger.error({ err: error, url: request.url }, "console request failed");
      return reply.code(500).send({ error: { code: "internal", message: "the console could not read the checkpoints; see its log" } });
    });

    const page = (reply: FastifyReply, title: string, body: SafeHtml) => reply.type("text/html; charset=utf-8").send(layout(title, settings, body).text);

    // --- JSON API (services/console/README.md documents it) ---
    const listSessions = async (input: unknown) => {
      const query = parsed(sessionsQuerySchema, input, "query");
      const sessions = await store.listSessions(query);
      return { query, sessions, next: sessions.length === query.limit ? sessions.at(-1)!.cursor : null };
    };
    const sessionWithTimeline = async (params: unknown, input: unknown) => {
      const { service, sessionId } = parsed(sessionParamsSchema, params, "path");
      const query = parsed(timelineQuerySchema, input, "query");
      const session = await store.session(service, sessionId);
      if (!session) throw notFound(service, sessionId);
      const timeline = await store.timeline(service, sessionId, query);
      const last = timeline.at(-1);
      return { session, timeline, next: timeline.length === query.limit && last ? `${last.epoch}.${last.seq}` : null };
    };
    /** A session's page data: the session, and `view` of its newest snapshots (up to the query's limit). */
    const sessionView =
      <View extends object>(service: "trader" | "reasoner", view: (snapshots: readonly StoredState[]) => View) =>
      async (params: unknown, input: unknown) => {
        const { sessionId } = parsed(sessionIdParamsSchema, params, "path");
        const { limit } = parsed(viewQuerySchema, input, "query");
        const session = await store.session(service, sessionId);
        if (!session) throw notFound(service, sessionId);
        const snapshots = await store.snapshots(service, sessionId, limit);
        return { session, truncated: snapshots.length === limit, ...view(snapshots) };
      };
    const trading = sessionView("trader", tradingView);
    const reasoning = sessionView("reasoner", reasoningView);

    app.get("/api/sessions", (request) => listSessions(request.query));
    app.get("/api/sessions/:service/:sessionId", (request) => sessionWithTimeline(request.params, request.query));
    app.get("/api/trading/:sessionId", (request) => trading(request.params, request.query));
    app.get("/api/reasoning/:sessionId", (request) => reasoning(request.params, request.query));
    app.get("/api/fleet", () => fleet.read());
    app.post("/api/actions/:action", async (request, reply) => {
      const { action } = request.params as { action: string };
      const refuse = (status: 400 | 403 | 404, code: ActionRefusal, message: string) => {
        logger.warn({ event: "console_action_refused", action, code, ip: request.ip }, `console action ${action} refused (${code}): ${message}`);
        return reply.code(status).send({ error: { code, message } } satisfies ApiError);
      };
      if (!config.CONSOLE_ACTIONS_ENABLED) return refuse(403, "read_only", "the console is read-only; set CONSOLE_ACTIONS_ENABLED=true to allow actions");
      const crossSite = crossSiteProblem(request);
      if (crossSite) return refuse(403, "forbidden_origin", `${crossSite}; actions are taken from the console's own pages, the API or the savepoint CLI`);
      if (!String(request.headers["content-type"] ?? "").startsWith("application/json")) {
        return refuse(400, "invalid_request", "actions take a JSON body (content-type: application/json)");
      }
      const by = `${config.CONSOLE_USER}@console`;
      const run = async () => {
        switch (action) {
          case "fork":
            return actions.fork(parsed(forkInputSchema, request.body, "body"));
          case "redrive":
            return actions.redrive(parsed(redriveInputSchema, request.body, "body"));
          case "stop":
            return actions.stop(parsed(stopInputSchema, request.body, "body"), by);
          default:
            return undefined;
        }
      };
      let result;
      try {
        result = await run();
      } catch (error) {
        if (error instanceof ActionRefusedError || error instanceof RequestProblem) {
          const code = error instanceof ActionRefusedError ? error.code : error.body.error.code;
          logger.warn({ event: "console_action_refused", action, code, input: request.body, user: config.CONSOLE_USER, ip: request.ip }, `console action ${action} refused (${code}): ${error.message}`);
        }
        throw error;
      }
      if (result === undefined) return refuse(404, "unknown_action", `no action "${action}"; the actions are fork, redrive and stop`);
      logger.info({ event: "console_action", action, input: request.body, result, user: config.CONSOLE_USER, ip: request.ip }, `console action ${action} done by ${by}`);
      return reply.code(action === "stop" ? 200 : 202).send(result);
    });

    // --- pages ---
    app.get("/", (_request, reply) => reply.redirect("/sessions"));
    app.get("/assets/live.js", (_request, reply) => reply.type("text/javascript; charset=utf-8").header("cache-control", "no-cache").send(LIVE_SCRIPT));
    app.get("/assets/actions.js", (_request, reply) => reply.type("text/javascript; charset=utf-8").header("cache-control", "no-cache").send(ACTIONS_SCRIPT));
    app.get("/fleet", async (_request, reply) => page(reply, "Fleet", fleetPage(await fleet.read(), settings)));
    app.get("/sessions", async (request, reply) => {
      const { query, sessions, next } = await listSessions(request.query);
      return page(reply, "Sessions", sessionsPage(sessions, query, next));
    });
    app.get("/sessions/:service/:sessionId", async (request, reply) => {
      const { service, sessionId } = parsed(sessionParamsSchema, request.params, "path");
      if (service === "trader") {
        const view = await trading({ sessionId }, {});
        const { timeline } = await sessionWithTimeline(request.params, {});
        return page(reply, `Trading ${sessionId}`, tradingPage(view.session, view, timeline, settings));
      }
      if (service === "reasoner") {
        const view = await reasoning({ sessionId }, {});
        return page(reply, `Reasoning ${sessionId}`, reasoningPage(view.session, view, settings));
      }
      const { session, timeline } = await sessionWithTimeline(request.params, {});
      return page(reply, `${service} ${sessionId}`, sessionPage(session, timeline));
    });
  };
}
