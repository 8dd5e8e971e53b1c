import { createTestEnvironment, type TestEnvironment } from "@savepoint/shared/testing";
import { launchHeadlessChromium, saveScreenshot, type HeadlessBrowser } from "@savepoint/shared/testing/browser";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  PASSWORD,
  reasoningSnapshots,
  REASONING_SESSION,
  seedSnapshots,
  startConsole,
  TRADING_SESSION,
  tradingSnapshots,
  USER,
  type RunningConsole,
} from "./support.js";

describe("the console in headless Chromium", () => {
  let env: TestEnvironment;
  let service: RunningConsole;
  let chromium: HeadlessBrowser;
  let browser: HeadlessBrowser["context"];

  beforeAll(async () => {
    env = await createTestEnvironment("console_browser");
    await seedSnapshots(env, [...tradingSnapshots(), ...reasoningSnapshots()]);
    service = await startConsole(env, { CONSOLE_REFRESH_SECONDS: "1" });
    chromium = await launchHeadlessChromium({ viewport: { width: 1280, height: 900 } });
    browser = chromium.context;
  });

  afterAll(async () => {
    await chromium?.close();
    await service?.process.kill("SIGTERM");
    await env?.dispose();
  });

  it("asks for credentials, then lists the sessions with their status, position and resumes", async () => {
    const page = await browser.newPage();
    const challenge = page.waitForResponse(`${service.url}/sessions`);
    await expect(page.goto(`${service.url}/sessions`)).rejects.toThrow(/ERR_INVALID_AUTH_CREDENTIALS/);
    const refused = await challenge;
    expect(refused.status()).toBe(401);
    expect(refused.headers()["www-authenticate"]).toMatch(/^Basic realm="Savepoint console"/);

    await browser.setHTTPCredentials({ username: USER, password: PASSWORD, origin: service.url });
    const response = await page.goto(`${service.url}/`);
    expect(response?.status()).toBe(200);
    expect(page.url()).toBe(`${service.url}/sessions`);
    await expect(page.locator("header .mode").textContent()).resolves.toBe("read-only");
    await expect(page.locator("button[data-action], dialog").count()).resolves.toBe(0);

    const trading = page.locator(`tr[data-session="trader/${TRADING_SESSION}"] td`);
    await expect(trading.allTextContents()).resolves.toEqual(["trader", TRADING_SESSION, "PA-TEST-ACCOUNT", "active", "2, 2", expect.stringMatching(/^\d{4}-\d\d-\d\d \d\d:\d\d:\d\dZ$/), "9", expect.stringMatching(/KiB$/), "1"]);
    const reasoning = page.locator(`tr[data-session="reasoner/${REASONING_SESSION}"] td`);
    await expect(reasoning.nth(3).textContent()).resolves.toBe("completed");
    await expect(reasoning.nth(8).textContent()).resolves.toBe("1");
    await saveScreenshot(page, "console-sessions.png");

    await page.selectOption("select[name=status]", "completed");
    await page.click("form.filters button");
    await page.waitForURL(/status=completed/);
    await expect(page.locator("table.sessions tbody tr").count()).resolves.toBe(1);
  });

  it("shows a trading session: equity curve split at the resume, positions, closed trades and the reconciliation", async () => {
    const page = await browser.newPage();
    await page.goto(`${service.url}/sessions`);
    await page.click(`a[href="/sessions/trader/${TRADING_SESSION}"]`);
    await page.waitForURL(`${service.url}/sessions/trader/${TRADING_SESSION}`);

    await expect(page.locator("h1").textContent()).resolves.toBe(`Trading session ${TRADING_SESSION}`);
    await expect(page.locator("svg.equity polyline.curve").evaluateAll((lines) => lines.map((line) => line.getAttribute("data-epoch")))).resolves.toEqual(["1", "2"]);
    await expect(page.locator("svg.equity line.resume").count()).resolves.toBe(1);
    await expect(page.locator("svg.equity").getAttribute("aria-label")).resolves.toBe("Equity curve: portfolio value from $100,000.00 to $100,140.00 over 9 snapshots");
    await expect(page.locator("table.positions tbody td").allTextContents()).resolves.toEqual([
      "MSFT", "long", "50", "$400.00", "$392.00", "$416.00", "adopted", "2026-01-05 14:31:00Z",
    ]);
    await expect(page.locator("table.closings tbody tr").allTextContents()).resolves.toEqual([
      expect.stringContaining("AAPL long 50 @ $180.00"),
      expect.stringContaining("(opened and closed between checkpoints)"),
    ]);
    const resume = await page.locator("table.resumes tbody tr").textContent();
    expect(resume).toContain("1 → 2");
    expect(resume).toContain("10 min 0 s");
    expect(resume).toContain("adopted MSFT#1; 1 trade(s) booked (+$30.00)");
    await expect(page.locator("table.timeline tr.gap").count()).resolves.toBe(1);
    await saveScreenshot(page, "console-trading.png");
  });

  it("shows a reasoning run: each iteration with its worker and epoch, the resume and what it saved", async () => {
    const page = await browser.newPage();
    await page.goto(`${service.url}/sessions/reasoner/${REASONING_SESSION}`);

    const steps = page.locator("article.step");
    await expect(steps.locator("h3").allTextContents()).resolves.toEqual([
      "Iteration 1 · question", "Iteration 2 · options", "Iteration 3 · evaluation", "Iteration 4 · decision",
    ]);
    await expect(steps.nth(0).locator(".meta").textContent()).resolves.toContain("epoch 1 · seq 1 · host-a:101");
    await expect(steps.nth(2).locator(".meta").textContent()).resolves.toContain("epoch 2 · seq 3 · host-b:202");
    await expect(page.locator(".event.resume").textContent()).resolves.toBe(
      "Resumed by host-b:202 (epoch 2) after 7 min 0 s: 2 model call(s) taken from checkpoints",
    );
    await expect(steps.nth(3).locator(".decision").textContent()).resolves.toBe("Decision: OPEN_LONG (confidence 0.8): Trend and volume agree.");
    await saveScreenshot(page, "console-reasoning.png");
  });

  it("follows new checkpoints without a reload", async () => {
    const page = await browser.newPage();
    await page.goto(`${service.url}/sessions/trader/${TRADING_SESSION}`);
    // A mark on the page's global object survives a swap of its parts, and is gone after a reload.
    await page.evaluate(() => Object.assign(globalThis, { notReloaded: true }));
    const [last] = tradingSnapshots().slice(-1);
    await seedSnapshots(env, [{ ...last!, seq: 3, takenAt: "2026-01-05T14:48:00.000Z", state: { ...last!.state, account: { ...(last!.state.account as object), portfolioValue: 100_400 } } }]);

    await page.locator("svg.equity[aria-label$='to $100,400.00 over 10 snapshots']").waitFor();
    await expect(page.evaluate(() => (globalThis as { notReloaded?: boolean }).notReloaded)).resolves.toBe(true);
  });
});
