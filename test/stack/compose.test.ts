import { execFileSync } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import type { z } from "zod";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { boardEnvSchema } from "../../services/board/src/config.js";
import { checkpointerEnvSchema } from "../../services/checkpointer/src/config.js";
import { consoleEnvSchema } from "../../services/console/src/config.js";
import { reasonerEnvSchema } from "../../services/reasoner/src/config.js";
import { modelServerEnvSchema } from "../../services/model-server/src/config.js";
import { traderEnvSchema } from "../../services/trader/src/config.js";
import { simulatorEnvSchema } from "../../services/alpaca-simulator/src/config.js";
import { COMPOSE_PLACEMENT, stackServices } from "../../scripts/stack/definition.mjs";

const REPOSITORY = fileURLToPath(new URL("../..", import.meta.url));
const COMPOSE_FILE = join(REPOSITORY, "docker-compose.yml");

interface ComposeService {
  command?: string[];
  environment?: Record<string, string>;
  healthcheck?: { test: string[] };
  depends_on?: Record<string, { condition: string }>;
  stop_grace_period?: string;
  ports?: string[];
  volumes?: string[];
  container_name?: string;
  image?: string;
  profiles?: string[];
}
interface ComposeFile {
  services: Record<string, ComposeService>;
  volumes?: Record<string, unknown>;
}

/**
 * The compose file as Debian's docker-compose 1.29 reads it (validated, anchors merged, ${…} interpolated
 * from `envFile` alone), turned into JSON by PyYAML, a dependency of docker-compose itself.
 */
function composeConfig(envFile: string): ComposeFile {
  const yaml = execFileSync("docker-compose", ["-f", COMPOSE_FILE, "--env-file", envFile, "config"], {
    env: { PATH: process.env.PATH },
    encoding: "utf8",
    stdio: ["ignore", "pipe", "pipe"],
  });
  const json = execFileSync("python3", ["-c", "import json, sys, yaml; json.dump(yaml.safe_load(sys.stdin), sys.stdout)"], {
    input: yaml,
    encoding: "utf8",
  });
  return JSON.parse(json) as ComposeFile;
}

const definition = stackServices(COMPOSE_PLACEMENT);
const containers = definition.filter((service) => service.command);
const defaultOf = (value: string | { default: string }) => (typeof value === "string" ? value : value.default);
const seconds = (duration: string) => {
  const match = /^(\d+)s$/.exec(duration);
  if (!match) throw new Error(`stop_grace_period "${duration}" is not in seconds (e.g. 30s)`);
  return Number(match[1]) * 1000;
};

const variables = (schema: z.ZodObject, ...unused: string[]) => Object.keys(schema.shape).filter((name) => !unused.includes(name));

/** The variables each container's service parses from its environment. */
const READS: Record<string, string[]> = {
  migrate: ["DATABASE_URL"],
  checkpointer: variables(checkpointerEnvSchema),
  // Both extend the common schema, DATABASE_URL included, but never connect: only the checkpointer writes Postgres.
  reasoner: variables(reasonerEnvSchema, "DATABASE_URL"),
  trader: variables(traderEnvSchema, "DATABASE_URL"),
  "model-server": variables(modelServerEnvSchema),
  "alpaca-simulator": variables(simulatorEnvSchema),
  "bull-board": variables(boardEnvSchema),
  console: variables(consoleEnvSchema),
};

describe("docker-compose.yml", () => {
  let scratch: string;
  let compose: ComposeFile;

  beforeAll(() => {
    try {
      execFileSync("docker-compose", ["version"], { stdio: "ignore" });
    } catch {
      throw new Error("docker-compose is not installed: apt-get install docker-compose (Debian's 1.29; .ci/run installs it)");
    }
    scratch = mkdtempSync(join(tmpdir(), "savepoint-compose-"));
    const empty = join(scratch, "empty.env");
    writeFileSync(empty, "");
    compose = composeConfig(empty);
  });

  afterAll(() => {
    if (scratch) rmSync(scratch, { recursive: true, force: true });
  });

  /** The services `docker compose up` starts without a profile: the stack's. */
  const unprofiled = () => Object.keys(compose.services).filter((name) => !compose.services[name]!.profiles);

  it("parses and names every service of the stack, and the cluster profile's one more", () => {
    expect(unprofiled().sort()).toEqual(
      ["alpaca-simulator", "bull-board", "checkpointer", "console", "migrate", "model-server", "postgres", "reasoner", "redis", "trader"].sort(),
    );
    expect(unprofiled().sort()).toEqual(definition.map((service) => service.name).sort());
    expect(Object.fromEntries(Object.entries(compose.services).filter(([, service]) => service.profiles).map(([name, service]) => [name, service.profiles]))).toEqual({
      "redis-cluster": ["cluster"],
    });
  });

  it("with the cluster profile's settings in .env, points every service that uses Redis at its cluster, with a hash-tag prefix", () => {
    const dotenv = join(scratch, "cluster.env");
    writeFileSync(dotenv, "COMPOSE_PROFILES=cluster\nREDIS_CLUSTER_NODES=redis-cluster:7001,redis-cluster:7002,redis-cluster:7003\nQUEUE_PREFIX={savepoint}\n");
    const configured = composeConfig(dotenv);

    const users = Object.entries(READS).filter(([, reads]) => reads.includes("REDIS_CLUSTER_NODES")).map(([name]) => name);
    expect(users.sort()).toEqual(["bull-board", "checkpointer", "console", "reasoner", "trader"]);
    for (const name of users) {
      expect(configured.services[name]!.environment, name).toMatchObject({
        REDIS_CLUSTER_NODES: "redis-cluster:7001,redis-cluster:7002,redis-cluster:7003",
        QUEUE_PREFIX: "{savepoint}",
      });
    }
    // Three masters on the ports .env names, persisted like the single Redis, healthy only once the cluster is.
    const cluster = configured.services["redis-cluster"]!;
    const script = cluster.command!.join(" ");
    expect(script).toMatch(/redis-cli --cluster create 127\.0\.0\.1:7001 127\.0\.0\.1:7002 127\.0\.0\.1:7003 --cluster-replicas 0/);
    expect(script).toMatch(/--cluster-announce-hostname redis-cluster --cluster-preferred-endpoint-type hostname/);
    expect(script).toMatch(/--appendonly yes/);
    expect(script).toMatch(/--maxmemory-policy noeviction/);
    expect(cluster.volumes).toEqual(["redis-cluster-data:/data:rw"]);
    expect(cluster.healthcheck?.test.join(" ")).toMatch(/cluster_state:ok/);
    expect(cluster.ports).toBeUndefined();
  });

  it("runs each service with the command and settings of the shared definition (scripts/stack/definition.mjs)", () => {
    for (const service of containers) {
      const container = compose.services[service.name]!;
      expect(container.command, service.name).toEqual(service.command);
      expect(container.image, service.name).toBe("savepoint:local");
      for (const [name, value] of Object.entries(service.env ?? {})) {
        expect(container.environment?.[name], `${service.name} ${name}`).toBe(defaultOf(value));
      }
    }
  });

  it("takes the settings the definition leaves to the user from .env, and no others", () => {
    const names = [...new Set(containers.flatMap((service) => Object.keys(service.env ?? {})))];
    const dotenv = join(scratch, "all-set.env");
    writeFileSync(dotenv, names.map((name) => `${name}=from-dotenv-${name}`).join("\n"));

    const configured = composeConfig(dotenv);

    for (const service of containers) {
      for (const [name, value] of Object.entries(service.env ?? {})) {
        const expected = typeof value === "string" ? value : `from-dotenv-${name}`;
        expect(configured.services[service.name]!.environment?.[name], `${service.name} ${name}`).toBe(expected);
      }
    }
  });

  it("checks health where the definition says, waits for what it depends on, and stops within its grace period", () => {
    const conditions = { healthy: "service_healthy", completed: "service_completed_successfully" };
    for (const service of definition) {
      const container = compose.services[service.name]!;
      const dependsOn = Object.fromEntries(Object.entries(container.depends_on ?? {}).map(([name, { condition }]) => [name, condition]));
      expect(dependsOn, service.name).toEqual(
        Object.fromEntries(Object.entries(service.dependsOn ?? {}).map(([name, condition]) => [name, conditions[condition]])),
      );
      if (service.kind === "one-shot") {
        expect(container.healthcheck, service.name).toBeUndefined();
        continue;
      }
      expect(container.healthcheck?.test.length, `${service.name} has a health check`).toBeGreaterThan(0);
      if (service.kind !== "service") continue;
      expect(container.healthcheck?.test, service.name).toEqual(["CMD", "node", "scripts/healthcheck.mjs", `http://127.0.0.1:${service.port}${service.health}`]);
      expect(seconds(container.stop_grace_period ?? "10s"), service.name).toBe(service.stopGraceMs);
      const shutdownTimeoutMs = Number(defaultOf(service.env!.SHUTDOWN_TIMEOUT_MS!));
      expect(service.stopGraceMs!, `${service.name}: grace period above SHUTDOWN_TIMEOUT_MS`).toBeGreaterThanOrEqual(shutdownTimeoutMs + 5_000);
    }
  });

  it("keeps Redis (AOF, noeviction) and Postgres data in volumes, and lets the reasoner scale", () => {
    const redis = compose.services.redis!;
    expect(redis.command?.join(" ")).toMatch(/--appendonly yes/);
    expect(redis.command?.join(" ")).toMatch(/--maxmemory-policy noeviction/);
    expect(redis.volumes).toEqual(["redis-data:/data:rw"]);
    expect(compose.services.postgres!.volumes).toEqual(["postgres-data:/var/lib/postgresql/data:rw"]);
    expect(Object.keys(compose.volumes ?? {}).sort()).toEqual(["postgres-data", "redis-cluster-data", "redis-data"]);

    for (const [name, container] of Object.entries(compose.services)) expect(container.container_name, name).toBeUndefined();
    expect(compose.services.reasoner!.ports).toBeUndefined();
    for (const [name, container] of Object.entries(compose.services)) {
      for (const port of container.ports ?? []) expect(port, `${name} publishes on this machine only`).toMatch(/^127\.0\.0\.1:/);
    }
  });

  it("passes every variable a service reads to its container, and .env.example documents each", () => {
    const documented = readFileSync(join(REPOSITORY, ".env.example"), "utf8");
    for (const service of containers) {
      const reads = READS[service.name];
      expect(reads, `${service.name} is listed in READS`).toBeDefined();
      for (const name of reads!) {
        expect(Object.keys(compose.services[service.name]!.environment ?? {}), `${service.name} gets ${name}`).toContain(name);
        expect(documented, `.env.example mentions ${name}`).toMatch(new RegExp(`\\b${name}\\b`));
      }
    }
  });

  it("builds one image holding every workspace", () => {
    const dockerfile = readFileSync(join(REPOSITORY, "Dockerfile"), "utf8");
    const workspaces = ["packages", "services"].flatMap((folder) =>
      readdirSync(join(REPOSITORY, folder)).filter((name) => existsSync(join(REPOSITORY, folder, name, "package.json"))).map((name) => `${folder}/${name}`),
    );
    for (const workspace of workspaces) {
      const manifest = `COPY ${workspace}/package.json ${workspace}/`;
      expect(dockerfile.split(manifest).length - 1, `${manifest} in both stages`).toBe(2);
      expect(dockerfile).toContain(`COPY --from=build /app/${workspace}/dist ${workspace}/dist`);
    }
    expect(dockerfile).toMatch(/npm ci --omit=dev/);
    expect(dockerfile).toMatch(/^USER node$/m);
  });
});
