import { execFileSync } from "node:child_process";

/**
 * Tests use REDIS_URL / DATABASE_URL when set, and this machine's Redis and Postgres otherwise. Only when
 * neither is set and a Docker engine answers do they get throwaway containers (testcontainers).
 */
export default async function setup(): Promise<(() => Promise<void>) | void> {
  if (process.env.REDIS_URL || process.env.DATABASE_URL || !dockerAvailable()) return;
  const { GenericContainer, Wait } = await import("testcontainers");
  const [redis, postgres] = await Promise.all([
    new GenericContainer("redis:7-alpine").withCommand(["redis-server", "--appendonly", "yes", "--maxmemory-policy", "noeviction"]).withExposedPorts(6379).start(),
    new GenericContainer("postgres:17-alpine")
      .withEnvironment({ POSTGRES_HOST_AUTH_METHOD: "trust" })
      .withExposedPorts(5432)
      .withWaitStrategy(Wait.forLogMessage(/database system is ready to accept connections/, 2))
      .start(),
  ]);
  process.env.REDIS_URL = `redis://${redis.getHost()}:${redis.getMappedPort(6379)}`;
  process.env.DATABASE_URL = `postgres://postgres@${postgres.getHost()}:${postgres.getMappedPort(5432)}/postgres`;
  return async () => {
    await Promise.all([redis.stop(), postgres.stop()]);
  };
}

function dockerAvailable(): boolean {
  try {
    execFileSync("docker", ["info"], { stdio: "ignore", timeout: 5_000 });
    return true;
  } catch {
    return false;
  }
}
