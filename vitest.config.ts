import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["packages/*/test/**/*.test.ts", "services/*/test/**/*.test.ts", "test/**/*.test.ts"],
    globalSetup: ["./test/global-setup.ts"],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    pool: "forks",
    // Two cores: more files at once only makes the crash and outage tests slower, not the suite faster.
    maxWorkers: 2,
    reporters: ["default", ["json", { outputFile: "test-artifacts/vitest-results.json" }]],
  },
});
