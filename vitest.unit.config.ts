import { fileURLToPath } from "node:url";
import { defineConfig } from "vitest/config";

const source = (path: string) => fileURLToPath(new URL(path, import.meta.url));

/**
 * `npm run test:unit`: the `*.unit.test.ts` files only, which need no Redis, Postgres, network or build
 * (the workspace libraries they import, `@savepoint/shared`, `@savepoint/alpaca-simulator` and
 * `@savepoint/model-server`, resolve to their sources). `npm test` runs them too, with everything else.
 */
export default defineConfig({
  resolve: {
    alias: [
      { find: /^@savepoint\/shared\/testing$/, replacement: source("./packages/shared/src/testing/index.ts") },
      { find: /^@savepoint\/shared$/, replacement: source("./packages/shared/src/index.ts") },
      { find: /^@savepoint\/alpaca-simulator\/testing$/, replacement: source("./services/alpaca-simulator/src/testing.ts") },
      { find: /^@savepoint\/alpaca-simulator$/, replacement: source("./services/alpaca-simulator/src/index.ts") },
      { find: /^@savepoint\/model-server$/, replacement: source("./services/model-server/src/index.ts") },
    ],
  },
  test: {
    include: ["packages/*/test/**/*.unit.test.ts", "services/*/test/**/*.unit.test.ts", "test/**/*.unit.test.ts"],
    setupFiles: ["./test/unit-setup.ts"],
    pool: "threads",
    maxWorkers: 2,
    // Unit files keep no state that outlives them, so a worker loads the shared modules (zod, the SDKs, the
    // sources of @savepoint/shared) once rather than once per file: the run takes seconds instead of a minute.
    isolate: false,
  },
});
