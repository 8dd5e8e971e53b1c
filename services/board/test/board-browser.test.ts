import { createTestEnvironment, type RunningWebService, type TestEnvironment } from "@savepoint/shared/testing";
import { expectBasicAuthChallenge, launchHeadlessChromium, saveScreenshot, type HeadlessBrowser } from "@savepoint/shared/testing/browser";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { BOARD_QUEUES, PASSWORD, SEEDED_AGENTS, SEEDED_JOBS, seedJobs, startBoard, USER } from "./support.js";

describe("Bull Board in headless Chromium", () => {
  let env: TestEnvironment;
  let board: RunningWebService;
  let chromium: HeadlessBrowser;
  let browser: HeadlessBrowser["context"];

  beforeAll(async () => {
    env = await createTestEnvironment("board_browser");
    await seedJobs(env);
    board = await startBoard(env);
    chromium = await launchHeadlessChromium({ viewport: { width: 1280, height: 800 } });
    browser = chromium.context;
  });

  afterAll(async () => {
    await chromium?.close();
    await board?.process.kill("SIGTERM");
    await env?.dispose();
  });

  it("asks for credentials, then shows every queue of the catalog with its jobs", async () => {
    const page = await browser.newPage();

    await expectBasicAuthChallenge(page, `${board.url}/`, "Savepoint Bull Board");

    await browser.setHTTPCredentials({ username: USER, password: PASSWORD, origin: board.url });
    const overview = await page.goto(`${board.url}/`);
    expect(overview?.status()).toBe(200);
    for (const queue of BOARD_QUEUES) {
      const card = page.locator("main li", { has: page.locator(`a[title="${queue}"]`) });
      const jobs = SEEDED_JOBS[queue]!;
      await card.getByText(`${jobs} ${jobs === 1 ? "Job" : "Jobs"}`, { exact: true }).waitFor();
    }
    await saveScreenshot(page, "bull-board.png");

    await page.goto(`${board.url}/queue/reasoning?status=waiting`);
    for (const agent of SEEDED_AGENTS) await page.locator("main").getByText(`"${agent}"`).waitFor();
    await saveScreenshot(page, "bull-board-reasoning.png");
  });
});
