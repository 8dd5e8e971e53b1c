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
import { composeServices, nativePlan } from "../../scripts/stack/compose.mjs";
import { readEnvFile } from "../../scripts/stack/environment.mjs";

const REPOSITORY = fileURLToPath(new URL("../..", import.meta.url));
const COMPOSE_FILE = join(REPOSITORY, "docker-compose.yml");

interface ComposeService {
  build?: unknown;
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
  restart?: string;
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

/** What `npm run stack` takes from docker-compose.yml (scripts/stack/compose.mjs), given the same .env. */
const readByRunner = (envFile: string) => composeServices(readEnvFile(envFile));
const seconds = (duration: string) => {
  const match = /^(\d+)s$/.exec(duration);
  if (!match) throw new Error(`stop_grace_period "${duration}" is not in seconds (e.g. 30s)`);
  return Number(match[1]) * 1000;
};
const CONDITIONS: Record<string, string> = { service_healthy: "healthy", service_completed_successfully: "completed", service_started: "started" };

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

  /** Fails unless the runner's reading of the compose file, given `envFile`, is docker-compose's, service by service. */
  const expectRunnerAgrees = (envFile: string) => {
    const configured = composeConfig(envFile);
    const read = readByRunner(envFile);
    expect(read.map((service) => service.name).sort()).toEqual(Object.keys(configured.services).sort());
    for (const service of read) {
      const container = configured.services[service.name]!;
      expect(service.built, `${service.name} is built from this repository`).toBe(container.build !== undefined);
      expect(service.profiles, service.name).toEqual(container.profiles ?? []);
      expect(service.command, service.name).toEqual(container.command);
      expect(service.environment, service.name).toEqual(container.environment ?? {});
      expect(service.healthcheck, service.name).toEqual(container.healthcheck?.test);
      expect(service.restart, service.name).toBe(container.restart);
      expect(service.stopGraceMs, service.name).toBe(seconds(container.stop_grace_period ?? "10s"));
      expect(service.dependsOn, service.name).toEqual(
        Object.fromEntries(Object.entries(container.depends_on ?? {}).map(([name, { condition }]) => [name, CONDITIONS[condition]])),
      );
    }
    return configured;
  };

  it("parses and names every service of the stack, and the cluster profile's one more", () => {
    expect(unprofiled().sort()).toEqual(
      ["alpaca-simulator", "bull-board", "checkpointer", "console", "migrate", "model-server", "postgres", "reasoner", "redis", "trader"].sort(),
    );
    expect(Object.fromEntries(Object.entries(compose.services).filter(([, service]) => service.profiles).map(([name, service]) => [name, service.profiles]))).toEqual({
      "redis-cluster": ["cluster"],
    });
    // What the native runner starts without a profile: the same services.
    expect(nativePlan({}).map((service) => service.name).sort()).toEqual(unprofiled().sort());
  });

  it("is read by npm run stack as docker-compose reads it: commands, environment, health checks, order, grace periods", () => {
    expectRunnerAgrees(join(scratch, "empty.env"));
  });

  it("is read by npm run stack as docker-compose reads it with every variable it passes set in .env", () => {
    const names = [...new Set(Object.values(compose.services).flatMap((service) => Object.keys(service.environment ?? {})))];
    const dotenv = join(scratch, "all-set.env");
    // One set empty, which ${VAR:-default} treats as unset.
    writeFileSync(dotenv, [...names.filter((name) => name !== "TRADER_INTERVAL_SECONDS").map((name) => `${name}=from-dotenv-${name}`), "TRADER_INTERVAL_SECONDS="].join("\n"));

    const configured = expectRunnerAgrees(dotenv);

    // Fixed settings stay fixed, whatever .env says (the services rely on them: their ports, their shutdown budget).
    expect(configured.services.checkpointer!.environment).toMatchObject({ HTTP_PORT: "8081", SHUTDOWN_TIMEOUT_MS: "20000", LOG_LEVEL: "from-dotenv-LOG_LEVEL" });
    expect(configured.services.trader!.environment).toMatchObject({ TRADER_INTERVAL_SECONDS: "60" });
  });

  it("with the cluster profile's settings in .env, points every service that uses Redis at its cluster, with a hash-tag prefix", () => {
    const dotenv = join(scratch, "cluster.env");
    writeFileSync(dotenv, "COMPOSE_PROFILES=cluster\nREDIS_CLUSTER_NODES=redis-cluster:7001,redis-cluster:7002,redis-cluster:7003\nQUEUE_PREFIX={savepoint}\n");
    const configured = expectRunnerAgrees(dotenv);

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

    // Natively the profile's container is in the stack too, but as one only compose can run (the runner refuses it).
    const native = nativePlan(readEnvFile(dotenv)).find((service) => service.name === "redis-cluster");
    expect(native).toMatchObject({ kind: "infrastructure", profiles: ["cluster"] });
    expect(native?.address).toBeUndefined();
  });

  it("runs natively with compose's settings, only this machine's addresses and ports in place of the containers'", () => {
    const userEnv = { REDIS_URL: "redis://127.0.0.1:6390", DATABASE_URL: "postgres://me@127.0.0.1:5433/mine", BULL_BOARD_PASSWORD: "from-the-user" };
    const read = new Map(composeServices(userEnv).map((service) => [service.name, service]));
    const plan = nativePlan(userEnv, { portOffset: 1000 });

    for (const service of plan) {
      const composed = read.get(service.name)!;
      expect(service.dependsOn, service.name).toEqual(composed.dependsOn);
      expect(service.stopGraceMs, service.name).toBe(composed.stopGraceMs);
      if (!composed.built) {
        expect(service.kind, service.name).toBe("infrastructure");
        continue;
      }
      expect(service.kind, service.name).toBe(composed.restart === "no" ? "one-shot" : "service");
      expect(service.command, service.name).toEqual(composed.command);
      expect(Object.keys(service.env), service.name).toEqual(Object.keys(composed.environment));
      for (const [name, value] of Object.entries(service.env)) {
        // Only a value naming a container (a URL at one of the stack's services) or a service's own port differs.
        const differs = value !== composed.environment[name];
        const namesContainer = URL.canParse(composed.environment[name]!) && read.has(new URL(composed.environment[name]!).hostname);
        expect(!differs || namesContainer || Number(value) === Number(composed.environment[name]) + 1000, `${service.name} ${name}=${value}`).toBe(true);
      }
    }

    const byName = new Map(plan.map((service) => [service.name, service]));
    // The infrastructure is the user's, through the variables the services use.
    expect(byName.get("redis")).toMatchObject({ variable: "REDIS_URL", address: "redis://127.0.0.1:6390" });
    expect(byName.get("postgres")).toMatchObject({ variable: "DATABASE_URL", address: "postgres://me@127.0.0.1:5433/mine" });
    expect(byName.get("console")!.env).toMatchObject({ CONSOLE_DATABASE_URL: "postgres://me@127.0.0.1:5433/mine", REDIS_URL: "redis://127.0.0.1:6390" });
    // The stack's own services on 127.0.0.1, every port moved by the offset.
    expect(byName.get("reasoner")).toMatchObject({ port: 9083, health: "http://127.0.0.1:9083/readyz" });
    expect(byName.get("reasoner")!.env).toMatchObject({ HTTP_PORT: "9083", ANTHROPIC_BASE_URL: "http://127.0.0.1:9091", APCA_API_BASE_URL: "http://127.0.0.1:9090" });
    expect(byName.get("model-server")!.env).toMatchObject({ MODEL_SERVER_PORT: "9091", MODEL_SERVER_HOST: "0.0.0.0" });
    expect(byName.get("bull-board")!.env).toMatchObject({ BULL_BOARD_PASSWORD: "from-the-user" });
    // Without the user's settings, the local defaults: compose's URLs at 127.0.0.1.
    expect(nativePlan({}).find((service) => service.name === "postgres")!.address).toBe("postgres://postgres:savepoint@127.0.0.1:5432/savepoint");
  });

  it("checks each service's health on its own port, and gives it a grace period above its SHUTDOWN_TIMEOUT_MS", () => {
    for (const service of nativePlan({})) {
      const container = compose.services[service.name]!;
      if (service.kind === "one-shot") {
        expect(container.healthcheck, service.name).toBeUndefined();
        continue;
      }
      expect(container.healthcheck?.test.length, `${service.name} has a health check`).toBeGreaterThan(0);
      if (service.kind !== "service") continue;
      expect(service.health, service.name).toMatch(new RegExp(`^http://127\\.0\\.0\\.1:${service.port}/(readyz|healthz)$`));
      expect(Object.values(service.env), `${service.name} listens where its health is checked`).toContain(String(service.port));
      const shutdownTimeoutMs = Number(service.env.SHUTDOWN_TIMEOUT_MS);
      expect(service.stopGraceMs, `${service.name}: grace period above SHUTDOWN_TIMEOUT_MS`).toBeGreaterThanOrEqual(shutdownTimeoutMs + 5_000);
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
    for (const service of readByRunner(join(scratch, "empty.env")).filter((candidate) => candidate.built)) {
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
      expect(dockerfile.split(manifest).length - 1, `${manifest} in the manifests stage`).toBe(1);
      expect(dockerfile).toContain(`COPY --from=build /app/${workspace}/dist ${workspace}/dist`);
    }
    // The build and the runtime stage both install from the manifests stage.
    expect(dockerfile.split("COPY --from=manifests /app ./").length - 1).toBe(2);
    expect(dockerfile).toMatch(/npm ci --omit=dev/);
    expect(dockerfile).toMatch(/^USER node$/m);
  });
});
