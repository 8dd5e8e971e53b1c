import { z } from "zod";
import { redactUrl } from "./redaction.js";

/** A missing or malformed environment variable: the message names each one and what it must be. */
export class ConfigError extends Error {
  override name = "ConfigError";
}

const LOG_LEVELS = ["fatal", "error", "warn", "info", "debug", "trace", "silent"] as const;

const url = (protocols: readonly string[], example: string) =>
  z
    .string()
    .refine((value) => {
      try {
        return protocols.includes(new URL(value).protocol.replace(/:$/, ""));
      } catch {
        return false;
      }
    }, `must be a ${protocols.join("/")} URL such as ${example}`);

/** A whole number from the environment, between `min` and `max`. */
export const envInt = (min: number, max: number) =>
  z.coerce
    .number({ error: "must be a number" })
    .int("must be a whole number")
    .min(min, `must be at least ${min}`)
    .max(max, `must be at most ${max}`);

/** A positive number (fractions allowed) from the environment, such as a number of hours. */
export const envPositive = () => z.coerce.number({ error: "must be a number" }).positive("must be greater than 0");

export const port = () => envInt(0, 65535);

/** `true` or `false` from the environment (nothing else, so a typo is refused rather than read as false). */
export const envFlag = () => z.enum(["true", "false"], "must be true or false").transform((value) => value === "true");

/** PostgreSQL, for the checkpointer (its only writer) and `npm run migrate`. */
export const databaseEnvSchema = z.object({
  DATABASE_URL: url(["postgres", "postgresql"], "postgres://postgres@127.0.0.1:5432/savepoint").default(
    "postgres://postgres@127.0.0.1:5432/savepoint",
  ),
});

/** `host:port,host:port,…`: nodes of a Redis Cluster to discover it from. */
const clusterNodes = z
  .string()
  .transform((value, context) => {
    const nodes = value.split(",").map((entry) => entry.trim()).filter((entry) => entry !== "");
    const parsed = nodes.map((entry) => /^(?<host>[^\s:]+|\[[0-9a-fA-F:]+\]):(?<port>\d{1,5})$/.exec(entry)?.groups);
    if (nodes.length === 0 || parsed.some((node) => !node || Number(node.port) > 65535)) {
      context.addIssue({ code: "custom", message: "must be host:port pairs separated by commas, such as 10.0.0.1:6379,10.0.0.2:6379" });
      return z.NEVER;
    }
    return parsed.map((node) => ({ host: node!.host!.replace(/^\[|\]$/g, ""), port: Number(node!.port) }));
  });

/** Variables every service reads. Defaults point at 127.0.0.1 so a local Redis and Postgres need no setup. */
export const commonEnvSchema = z.object({
  REDIS_URL: url(["redis", "rediss"], "redis://127.0.0.1:6379").default("redis://127.0.0.1:6379"),
  /** When set, every connection is a cluster connection to these nodes and REDIS_URL is unused. */
  REDIS_CLUSTER_NODES: clusterNodes.optional(),
  LOG_LEVEL: z.enum(LOG_LEVELS).default("info"),
  /** Unset: human-readable when stdout is a terminal, JSON otherwise (see resolveLogFormat). */
  LOG_FORMAT: z.enum(["json", "pretty"]).optional(),
  QUEUE_PREFIX: z
    .string()
    // A hash tag ({savepoint}) keeps each queue's keys in one slot, as BullMQ needs on a Redis Cluster.
    .regex(/^(?:[A-Za-z0-9_-]{1,64}|\{[A-Za-z0-9_-]{1,62}\})$/, "must be 1-64 letters, digits, '_' or '-', or such a name in braces as a cluster hash tag ({savepoint})")
    .default("savepoint"),
  /** SIGTERM/SIGINT: in-flight work gets this long to finish (final checkpoints included), then the process exits. */
  SHUTDOWN_TIMEOUT_MS: envInt(1, 600_000).default(20_000),
});
export type CommonEnv = z.infer<typeof commonEnvSchema>;

const SECRET_NAME = /KEY|SECRET|PASSWORD|TOKEN/;

/**
 * Parses `env` with `schema`. Empty strings count as unset, so `FOO=` in a compose file falls back to the
 * default. Every problem is reported at once, each naming its variable.
 */
export function parseEnv<S extends z.ZodObject>(schema: S, env: NodeJS.ProcessEnv = process.env): z.infer<S> {
  const present = Object.fromEntries(Object.entries(env).filter(([, value]) => value !== undefined && value !== ""));
  const result = schema.safeParse(present);
  if (result.success) return result.data;
  const problems = result.error.issues.map((issue) => {
    const name = String(issue.path[0] ?? "(environment)");
    const raw = present[name];
    const shown =
      raw === undefined
        ? "not set"
        : SECRET_NAME.test(name)
          ? "set (value hidden)"
          : `got ${JSON.stringify(name.endsWith("_URL") ? redactUrl(raw) : raw)}`;
    return `  ${name}: ${issue.message} (${shown})`;
  });
  throw new ConfigError(`Invalid configuration:\n${problems.join("\n")}\nFix these environment variables and start again.`);
}
