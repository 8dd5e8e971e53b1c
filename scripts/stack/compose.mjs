/**
 * The stack as docker-compose.yml defines it, read the way docker compose reads it, and the few rules that
 * turn it into local processes for `npm run stack` (./run.mjs). The compose file is the one definition of the
 * stack; test/stack/compose.test.ts checks this reading against `docker-compose config`.
 */
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { parse } from "yaml";

export const COMPOSE_FILE = fileURLToPath(new URL("../../docker-compose.yml", import.meta.url));

/** Compose's default when a service gives no stop_grace_period. */
const DEFAULT_STOP_GRACE_MS = 10_000;

/**
 * @typedef {"healthy" | "completed" | "started"} Condition  service_healthy, service_completed_successfully, service_started
 * @typedef {{
 *   name: string,
 *   built: boolean,
 *   profiles: string[],
 *   command?: string[],
 *   environment: Record<string, string>,
 *   healthcheck?: string[],
 *   restart?: string,
 *   stopGraceMs: number,
 *   dependsOn: Record<string, Condition>,
 * }} ComposeService
 */

/**
 * Every service of the compose file, profiled ones included (as `docker-compose config` lists them): anchors
 * and `<<` merges resolved, `${VAR}`, `${VAR:-default}` and `${VAR-default}` taken from `userEnv` (the .env
 * file under the process environment, as compose takes them), `$$` kept escaped as `docker-compose config`
 * prints it (only the images' own commands have any, and those run under compose alone).
 *
 * @param {Record<string, string | undefined>} userEnv
 * @returns {ComposeService[]}
 */
export function composeServices(userEnv, file = COMPOSE_FILE) {
  const document = parse(readFileSync(file, "utf8"), { merge: true });
  const interpolate = (value) => interpolateValue(String(value), userEnv);
  return Object.entries(document.services).map(([name, service]) => ({
    name,
    built: service.build !== undefined,
    profiles: service.profiles ?? [],
    ...(service.command ? { command: [service.command].flat().map(interpolate) } : {}),
    environment: Object.fromEntries(environmentEntries(service.environment).map(([variable, value]) => [variable, interpolate(value)])),
    ...(service.healthcheck?.test ? { healthcheck: service.healthcheck.test.map(interpolate) } : {}),
    ...(service.restart !== undefined ? { restart: String(service.restart) } : {}),
    stopGraceMs: service.stop_grace_period ? durationMs(service.stop_grace_period, name) : DEFAULT_STOP_GRACE_MS,
    dependsOn: dependencies(service.depends_on, name),
  }));
}

function environmentEntries(environment = {}) {
  if (!Array.isArray(environment)) return Object.entries(environment).map(([variable, value]) => [variable, value ?? ""]);
  return environment.map((entry) => {
    const at = String(entry).indexOf("=");
    return at < 0 ? [entry, ""] : [entry.slice(0, at), entry.slice(at + 1)];
  });
}

const CONDITIONS = { service_healthy: "healthy", service_completed_successfully: "completed", service_started: "started" };

function dependencies(dependsOn = {}, name) {
  if (Array.isArray(dependsOn)) return Object.fromEntries(dependsOn.map((dependency) => [dependency, "started"]));
  return Object.fromEntries(
    Object.entries(dependsOn).map(([dependency, { condition = "service_started" } = {}]) => {
      if (!CONDITIONS[condition]) throw new Error(`docker-compose.yml: ${name} depends on ${dependency} with condition "${condition}", which npm run stack does not know`);
      return [dependency, CONDITIONS[condition]];
    }),
  );
}

function durationMs(duration, name) {
  const match = /^(\d+)(ms|s|m)$/.exec(String(duration));
  if (!match) throw new Error(`docker-compose.yml: ${name}'s stop_grace_period "${duration}" is not a duration npm run stack reads (e.g. 30s)`);
  return Number(match[1]) * { ms: 1, s: 1_000, m: 60_000 }[match[2]];
}

/** Compose's variable substitution in one value; an unset or (with `:-`) empty variable takes the default. */
function interpolateValue(value, userEnv) {
  return value.replace(/\$(\$)|\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?)-([^}]*))?\}|\$([A-Za-z_][A-Za-z0-9_]*)|\$\{[^}]*\}/g, (whole, escaped, braced, colon, fallback, bare) => {
    if (escaped) return "$$";
    const variable = braced ?? bare;
    if (!variable) throw new Error(`docker-compose.yml: "${whole}" is a substitution npm run stack does not read (it reads \${VAR}, \${VAR:-default}, \${VAR-default})`);
    const given = userEnv[variable];
    if (fallback === undefined) return given ?? "";
    return given === undefined || (colon && given === "") ? fallback : given;
  });
}

/**
 * What running natively changes, and nothing else:
 * - a service built from this repository (`build: .`) runs as a local process of its command, from the
 *   repository root (./supervised-process.mjs runs `node` as the node running the runner); with
 *   `restart: "no"` it is a one-shot step the others wait for, otherwise it is restarted like compose's
 *   `unless-stopped`;
 * - a service that is only an image (Redis, Postgres) is not started: LOCAL_INFRASTRUCTURE names the
 *   variable through which the user points at theirs; without an entry it runs under docker compose only;
 * - a URL naming a service of the stack names 127.0.0.1 instead, and one naming infrastructure takes the
 *   user's own setting of that variable (or of the infrastructure's) when there is one;
 * - a started service's port, the one its health check (`node scripts/healthcheck.mjs URL`) asks, moves by
 *   --port-offset: in the variable that sets it, in its health URL and in every URL naming the service.
 */
export const LOCAL_INFRASTRUCTURE = { redis: "REDIS_URL", postgres: "DATABASE_URL" };

const LOCALHOST = "127.0.0.1";

/**
 * @typedef {{
 *   name: string,
 *   kind: "infrastructure" | "one-shot" | "service",
 *   profiles: string[],
 *   command?: string[],
 *   env: Record<string, string>,
 *   port?: number,
 *   health?: string,
 *   variable?: string,
 *   address?: string,
 *   stopGraceMs: number,
 *   dependsOn: Record<string, Condition>,
 * }} NativeService
 */

/**
 * The stack `npm run stack` runs: the compose file's services of no profile or of one named in
 * COMPOSE_PROFILES (as compose picks them), under the rules above. A started service's `env` holds what compose
 * would set in its container; the runner starts it with the user's environment under that.
 *
 * @param {Record<string, string | undefined>} userEnv
 * @returns {NativeService[]}
 */
export function nativePlan(userEnv, { portOffset = 0, file = COMPOSE_FILE } = {}) {
  const active = new Set((userEnv.COMPOSE_PROFILES ?? "").split(",").map((profile) => profile.trim()).filter(Boolean));
  const services = composeServices(userEnv, file).filter((service) => service.profiles.length === 0 || service.profiles.some((profile) => active.has(profile)));
  const ports = new Map(services.filter((service) => service.built).flatMap((service) => (service.healthcheck ? [[service.name, healthUrl(service).port]] : [])));
  const moved = (port) => String(Number(port) + portOffset);
  const infrastructure = new Set(services.filter((service) => !service.built).map((service) => service.name));
  const started = new Set(services.filter((service) => service.built).map((service) => service.name));

  /** A value as it applies natively: only whole URLs naming a service of the stack change. */
  const local = (variable, value) => {
    let url;
    try {
      url = new URL(value);
    } catch {
      return value;
    }
    if (infrastructure.has(url.hostname)) {
      const own = [variable, LOCAL_INFRASTRUCTURE[url.hostname]].map((name) => name && userEnv[name]).find((setting) => setting !== undefined && setting !== "");
      if (own !== undefined) return own;
    } else if (started.has(url.hostname)) {
      if (url.port === ports.get(url.hostname)) url.port = moved(url.port);
    } else {
      return value;
    }
    url.hostname = LOCALHOST;
    // URL adds a slash to an origin ("http://127.0.0.1:8091/"); the compose value had none.
    return value.endsWith("/") || url.pathname !== "/" ? url.href : url.href.replace(/\/$/, "");
  };

  return services.map((service) => {
    const base = { name: service.name, profiles: service.profiles, stopGraceMs: service.stopGraceMs, dependsOn: service.dependsOn };
    if (!service.built) {
      const variable = LOCAL_INFRASTRUCTURE[service.name];
      const address = variable && local(variable, defaultAddress(services, service.name));
      return { ...base, kind: "infrastructure", env: {}, ...(variable ? { variable, address } : {}) };
    }
    const port = ports.get(service.name);
    const env = Object.fromEntries(
      Object.entries(service.environment).map(([variable, value]) => [variable, port && value === port ? moved(port) : local(variable, value)]),
    );
    const health = port && healthUrl(service);
    if (health) health.port = moved(port);
    return {
      ...base,
      kind: service.restart === "no" ? "one-shot" : "service",
      command: service.command,
      env,
      ...(port ? { port: Number(moved(port)), health: health.href } : {}),
    };
  });
}

/** The URL a service's health check asks (`node scripts/healthcheck.mjs URL`, as every built service's is). */
function healthUrl(service) {
  const [form, program, script, url] = service.healthcheck;
  if (form !== "CMD" || program !== "node" || script !== "scripts/healthcheck.mjs" || !url) {
    throw new Error(`docker-compose.yml: ${service.name}'s health check is not "node scripts/healthcheck.mjs URL", the one npm run stack can run natively`);
  }
  return new URL(url);
}

/** Where the stack's services reach an infrastructure service: the first of their URLs that names it. */
function defaultAddress(services, name) {
  for (const service of services) {
    for (const value of Object.values(service.environment)) {
      if (URL.canParse(value) && new URL(value).hostname === name) return value;
    }
  }
  throw new Error(`docker-compose.yml: no service's environment has a URL naming ${name}, so npm run stack cannot tell where it is`);
}
