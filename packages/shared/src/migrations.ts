import { fileURLToPath } from "node:url";
import { redactUrl } from "./redaction.js";

/*
 * node-pg-migrate (with jiti and glob) and pg are loaded when a migration runs, not with the package: every
 * service imports @savepoint/shared, and most (the trader, the reasoner) never migrate, yet paid for them in
 * start-up time.
 */

/** The repository's `migrations/` folder (SQL files run by node-pg-migrate). */
export const MIGRATIONS_DIR = fileURLToPath(new URL("../../../migrations", import.meta.url));

export interface MigrateOptions {
  databaseUrl: string;
  direction: "up" | "down";
  /** How many migrations to apply or revert; all pending ones by default when going up. */
  count?: number;
  log?: (message: string) => void;
}

/** Creates the database named in `databaseUrl` if it does not exist yet (connecting to `postgres` to do so). */
export async function ensureDatabase(databaseUrl: string): Promise<void> {
  const target = new URL(databaseUrl);
  const name = decodeURIComponent(target.pathname.replace(/^\//, ""));
  if (!name) throw new Error(`DATABASE_URL ${redactUrl(databaseUrl)} names no database`);
  const admin = new URL(databaseUrl);
  admin.pathname = "/postgres";
  const { default: pg } = await import("pg");
  const client = new pg.Client({ connectionString: admin.toString() });
  await client.connect();
  try {
    const { rowCount } = await client.query("SELECT 1 FROM pg_database WHERE datname = $1", [name]);
    if (!rowCount) await client.query(`CREATE DATABASE ${pg.escapeIdentifier(name)}`);
  } catch (error) {
    // Another process may have created it between the check and the CREATE.
    if ((error as { code?: string }).code !== "42P04") throw error;
  } finally {
    await client.end();
  }
}

/** Applies (or reverts) the SQL migrations; already-applied ones are skipped, so running it twice is harmless. */
export async function migrate({ databaseUrl, direction, count, log = () => undefined }: MigrateOptions): Promise<string[]> {
  if (direction === "up") await ensureDatabase(databaseUrl);
  const { runner } = await import("node-pg-migrate");
  const applied = await runner({
    databaseUrl,
    dir: MIGRATIONS_DIR,
    direction,
    count: count ?? (direction === "up" ? Infinity : 1),
    migrationsTable: "pgmigrations",
    checkOrder: true,
    singleTransaction: true,
    advisoryLockMode: "wait",
    log,
  });
  return applied.map((migration) => migration.name);
}
