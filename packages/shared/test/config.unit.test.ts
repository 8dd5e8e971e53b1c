import { describe, expect, it } from "vitest";
import { z } from "zod";
import { commonEnvSchema, ConfigError, databaseEnvSchema, parseEnv, port } from "../src/config.js";

const schema = commonEnvSchema.extend({ HTTP_PORT: port().default(8081), ANTHROPIC_API_KEY: z.string().min(20) });

describe("parseEnv", () => {
  it("applies defaults that point at this machine, treating empty strings as unset", () => {
    const config = parseEnv(commonEnvSchema.extend(databaseEnvSchema.shape), { REDIS_URL: "", LOG_LEVEL: "" });
    expect(config).toMatchObject({
      REDIS_URL: "redis://127.0.0.1:6379",
      DATABASE_URL: "postgres://postgres@127.0.0.1:5432/savepoint",
      LOG_LEVEL: "info",
      QUEUE_PREFIX: "savepoint",
    });
  });

  it("names every missing or malformed variable in one error, hiding secret values", () => {
    const attempt = () =>
      parseEnv(schema, {
        REDIS_URL: "http://localhost:6379",
        DATABASE_URL: "postgres://app:hunter2@db:5432/x",
        HTTP_PORT: "99999",
        LOG_LEVEL: "loud",
        ANTHROPIC_API_KEY: "short-secret",
      });
    expect(attempt).toThrow(ConfigError);
    const message = (() => {
      try {
        attempt();
        return "";
      } catch (error) {
        return (error as Error).message;
      }
    })();
    expect(message).toContain('REDIS_URL: must be a redis/rediss URL such as redis://127.0.0.1:6379 (got "http://localhost:6379")');
    expect(message).toContain("HTTP_PORT:");
    expect(message).toContain('LOG_LEVEL:');
    expect(message).toContain("ANTHROPIC_API_KEY:");
    expect(message).toContain("set (value hidden)");
    expect(message).not.toContain("short-secret");
    expect(message).not.toContain("DATABASE_URL");
  });

  it("reports a required variable that is not set", () => {
    expect(() => parseEnv(schema, {})).toThrow(/ANTHROPIC_API_KEY: .*\(not set\)/);
  });
});
