import { createTestEnvironment, type TestEnvironment } from "@savepoint/shared/testing";
import { existsSync, mkdirSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { chromium, type BrowserContext } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { BOARD_QUEUES, PASSWORD, SEEDED_AGENTS, SEEDED_JOBS, seedJobs, startBoard, USER, type RunningBoard } from "./support.js";

const CHROMIUM = "/usr/bin/chromium";
const ARTIFACTS = fileURLToPath(new URL("../../../test-artifacts/", import.meta.url));

describe("Bull Board in headless Chromium", () => {
  let env: TestEnvironment;
  let board: RunningBoard;
  let profile: string;
  let browser: BrowserContext;

  beforeAll(async () => {
    if (!existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} not found: install Debian's chromium (apt-get install chromium); .ci/run does`);
    env = await createTestEnvironment("board_browser");
    await seedJobs(env);
    board = await startBoard(env);
    profile = await mkdtemp(join(tmpdir(), "savepoint-chromium-"));
    browser = await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM,
      args: [
        "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
        "--disable-component-update", "--disable-sync",
      ],
      viewport: { width: 1280, height: 800 },
    });
  });

  afterAll(async () => {
    await browser?.close();
    await board?.process.kill("SIGTERM");
    if (profile) await rm(profile, { recursive: true, force: true });
    await env?.dispose();
  });

  it("asks for credentials, then shows every queue of the catalog with its jobs", async () => {
    const page = await browser.newPage();

    const challenge = page.waitForResponse(`${board.url}/`);
    await expect(page.goto(`${board.url}/`)).rejects.toThrow(/ERR_INVALID_AUTH_CREDENTIALS/);
    const refused = await challenge;
    expect(refused.status()).toBe(401);
    expect(refused.headers()["www-authenticate"]).toMatch(/^Basic realm="Savepoint Bull Board"/);

    await browser.setHTTPCredentials({ username: USER, password: PASSWORD, origin: board.url });
    const overview = await page.goto(`${board.url}/`);
    expect(overview?.status()).toBe(200);
    for (const queue of BOARD_QUEUES) {
      const card = page.locator("main li", { has: page.locator(`a[title="${queue}"]`) });
      const jobs = SEEDED_JOBS[queue]!;
      await card.getByText(`${jobs} ${jobs === 1 ? "Job" : "Jobs"}`, { exact: true }).waitFor();
    }
    mkdirSync(ARTIFACTS, { recursive: true });
    await page.screenshot({ path: join(ARTIFACTS, "bull-board.png"), fullPage: true });

    await page.goto(`${board.url}/queue/reasoning?status=waiting`);
    for (const agent of SEEDED_AGENTS) await page.locator("main").getByText(`"${agent}"`).waitFor();
    await page.screenshot({ path: join(ARTIFACTS, "bull-board-reasoning.png"), fullPage: true });
  });
});
