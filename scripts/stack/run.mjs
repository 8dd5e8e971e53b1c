#!/usr/bin/env node
/**
 * `npm run stack`: the whole stack as local processes, for a machine with Redis and PostgreSQL but no Docker.
 * Reads docker-compose.yml (./compose.mjs: its services, commands, environment, health checks, dependencies and
 * grace periods, with the few rules that make them local processes), runs the migrations, then starts every
 * service, each once what it depends on is healthy; prefixes their output; and on Ctrl+C (or SIGTERM) stops
 * them in reverse dependency order, each within its grace period.
 *
 *   node scripts/stack/run.mjs [--port-offset N] [--dotenv PATH]
 *
 * --port-offset moves every port (8080-8091) by N, to run beside another stack. --dotenv names the
 * settings file (default: .env at the repository root, when there is one); the process environment wins
 * over it, as with docker compose, and its COMPOSE_PROFILES picks profiles the same way.
 */
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { nativePlan } from "./compose.mjs";
import { readEnvFile } from "./environment.mjs";
import { waitForHealthy, waitForPort } from "./health.mjs";
import { prefixedOutput } from "./output.mjs";
import { SupervisedProcess } from "./supervised-process.mjs";

const REPOSITORY = fileURLToPath(new URL("../..", import.meta.url));
const RUNNER = "stack";
const INFRASTRUCTURE_TIMEOUT_MS = 10_000;
const HEALTH_TIMEOUT_MS = 90_000;
const USAGE = "usage: node scripts/stack/run.mjs [--port-offset N] [--dotenv PATH]";

function commandLine() {
  try {
    const { values } = parseArgs({
      options: { "port-offset": { type: "string", default: "0" }, dotenv: { type: "string", default: join(REPOSITORY, ".env") } },
    });
    const portOffset = Number(values["port-offset"]);
    if (!Number.isInteger(portOffset) || portOffset < 0 || portOffset > 50_000) {
      throw new Error(`--port-offset must be a whole number from 0 to 50000, got "${values["port-offset"]}"`);
    }
    return { portOffset, envFile: values.dotenv };
  } catch (error) {
    console.error(`${error.message}\n${USAGE}`);
    process.exit(2);
  }
}

/** The stack docker-compose.yml defines, as local processes; a compose file it cannot read stops the runner here. */
function plan() {
  try {
    return nativePlan(userEnv, { portOffset });
  } catch (error) {
    console.error(`cannot read the stack: ${error.message}`);
    process.exit(2);
  }
}

const { portOffset, envFile } = commandLine();
const userEnv = { ...readEnvFile(envFile), ...process.env };
const services = plan();
const byName = new Map(services.map((service) => [service.name, service]));
const output = prefixedOutput([RUNNER, ...services.filter((service) => service.command).map((service) => service.name)]);
const say = (line) => output(RUNNER, line);
/** @type {Map<string, SupervisedProcess>} */
const processes = new Map();
const startup = new AbortController();

/** Memoized per service: resolves once it is healthy (or, for a one-shot step, has succeeded). */
const settled = new Map();
function settle(name) {
  if (!byName.has(name)) return Promise.reject(new Error(`a service depends on ${name}, which is not in the stack (a profile left out of COMPOSE_PROFILES?)`));
  if (!settled.has(name)) settled.set(name, bringUp(byName.get(name)));
  return settled.get(name);
}

async function bringUp(service) {
  await Promise.all(Object.keys(service.dependsOn ?? {}).map(settle));
  startup.signal.throwIfAborted();
  if (service.kind === "infrastructure") {
    if (!service.address) {
      throw new Error(
        `${service.name} (profile ${service.profiles.join(", ")} in COMPOSE_PROFILES) is a container only docker compose runs; leave COMPOSE_PROFILES unset for npm run stack`,
      );
    }
    try {
      await waitForPort(service.address, { timeoutMs: INFRASTRUCTURE_TIMEOUT_MS });
    } catch (error) {
      throw new Error(`${service.name}: ${error.message}; start it, or point ${service.variable} at yours (in .env or the environment)`, { cause: error });
    }
    say(`${service.name} answers`);
    return;
  }
  const supervised = new SupervisedProcess({
    name: service.name,
    command: service.command,
    // The user's environment under what compose would set in the container, as the service's own.
    env: { ...userEnv, ...service.env },
    cwd: REPOSITORY,
    output,
    restart: service.kind === "service",
  }).start();
  processes.set(service.name, supervised);
  if (service.kind === "one-shot") {
    const code = await supervised.exitCode();
    if (code !== 0) throw new Error(`${service.name} failed with exit code ${code} (its output is above)`);
    say(`${service.name} done`);
    return;
  }
  if (!service.health) {
    say(`${service.name} started (docker-compose.yml gives it no health check)`);
    return;
  }
  await waitForHealthy(service.health, { timeoutMs: HEALTH_TIMEOUT_MS, signal: startup.signal });
  say(`${service.name} healthy: ${service.health}`);
}

/** Stops every process started, each only after the services that depend on it (compose's order). */
async function stopAll() {
  const stopped = new Map();
  const stop = (name) => {
    if (!stopped.has(name)) {
      const dependents = services.filter((service) => Object.hasOwn(service.dependsOn ?? {}, name)).map((service) => service.name);
      stopped.set(
        name,
        Promise.all(dependents.map(stop)).then(() => processes.get(name)?.stop(byName.get(name).stopGraceMs)),
      );
    }
    return stopped.get(name);
  };
  await Promise.all(services.map((service) => stop(service.name)));
}

let stopping = false;
let firstSignalAt = 0;
async function shutdown(signal) {
  if (stopping) {
    // One Ctrl+C can arrive twice (from the terminal and from a wrapper such as `timeout` passing it on).
    if (Date.now() - firstSignalAt < 1_000) return;
    say(`${signal} again: killing every service now`);
    for (const supervised of processes.values()) supervised.kill();
    process.exit(130);
  }
  stopping = true;
  firstSignalAt = Date.now();
  startup.abort(new Error(`${signal} received`));
  say(`${signal}: stopping (dependents first; ${signal} again kills everything at once)`);
  await stopAll();
  say("stopped");
  process.exit(0);
}
process.on("SIGINT", () => void shutdown("SIGINT"));
process.on("SIGTERM", () => void shutdown("SIGTERM"));
process.on("SIGHUP", () => void shutdown("SIGHUP"));
// Whoever read the output is gone (`npm run stack | head`, a closed terminal): stop the stack, not just this runner.
process.stdout.on("error", () => void shutdown("output closed"));
// The services run in their own process groups, so nothing else stops them if this runner dies unexpectedly.
process.on("exit", () => {
  for (const supervised of processes.values()) supervised.abandon();
});

say(`starting ${services.filter((service) => service.kind === "service").length} services${portOffset ? ` (ports +${portOffset})` : ""}`);
try {
  await Promise.all(services.map((service) => settle(service.name)));
} catch (error) {
  // After Ctrl+C during startup, shutdown() is stopping everything already and exits when done.
  if (!stopping) {
    stopping = true;
    startup.abort(error);
    say(`cannot start the stack: ${error.message}`);
    await stopAll();
    process.exit(1);
  }
}
if (!stopping) {
  const board = byName.get("bull-board");
  const password = userEnv.BULL_BOARD_PASSWORD ? "BULL_BOARD_PASSWORD" : `"${board.env.BULL_BOARD_PASSWORD}" (development default; set BULL_BOARD_PASSWORD)`;
  const consoleService = byName.get("console");
  const consolePassword = userEnv.CONSOLE_PASSWORD ? "CONSOLE_PASSWORD" : `"${consoleService.env.CONSOLE_PASSWORD}" (development default; set CONSOLE_PASSWORD)`;
  say(`stack is up. Bull Board: http://127.0.0.1:${board.port}/ (user ${userEnv.BULL_BOARD_USER || "admin"}, password ${password}).`);
  say(`Console: http://127.0.0.1:${consoleService.port}/ (user ${userEnv.CONSOLE_USER || "admin"}, password ${consolePassword}). Ctrl+C stops everything.`);
}
