import type { ModelServer } from "@savepoint/model-server";
import { defaultJobOptions, requestDecision, thinkJobId, type ThinkPayload, type ThinkResult } from "@savepoint/shared";
import { createTestEnvironment, stopNewestFirst, type QueueWithEvents, type TestEnvironment } from "@savepoint/shared/testing";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { launchHeadlessChromium, saveScreenshot, type HeadlessBrowser } from "@savepoint/shared/testing/browser";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { basicAuth, MARKET, PASSWORD, spawnTrader, startConsole, startInstantSimulator, startReasoningBackend, USER, type RunningConsole } from "./support.js";

const payload = (agentId: string): ThinkPayload => ({ agentId, symbol: "AAPL", marketContext: MARKET, maxIterations: 6 });

describe("console actions in headless Chromium: fork, re-drive and stop behind confirm dialogs, against reasoner and trader processes", () => {
  let env: TestEnvironment;
  let model: ModelServer;
  let producer: QueueWithEvents;
  let service: RunningConsole;
  let browser: HeadlessBrowser["context"];
  const stops: Array<() => Promise<unknown>> = [];
  let source: string;
  let deadLettered: string;

  beforeAll(async () => {
    env = await createTestEnvironment("console_actions_browser");
    stops.push(() => env.dispose());
    ({ model, producer } = await startReasoningBackend(env, stops));
    service = await startConsole(env, { CONSOLE_ACTIONS_ENABLED: "true", CONSOLE_REFRESH_SECONDS: "1" });
    stops.push(() => service.process.kill("SIGTERM"));

    // A finished run to fork, and a run that failed for good to re-drive.
    const finished = await requestDecision(producer.queue, thinkJobId("agent-ui", 1), payload("agent-ui"));
    await finished.waitUntilFinished(producer.events, 60_000);
    source = finished.id!;
    deadLettered = thinkJobId("agent-ui-dead", 1);
    model.faults.add({ status: 500, count: 1_000, sessionId: deadLettered });
    const failing = await producer.queue.add("think", payload("agent-ui-dead"), { ...defaultJobOptions.reasoning, jobId: deadLettered, attempts: 1 });
    await expect(failing.waitUntilFinished(producer.events, 60_000)).rejects.toThrow(/the model API failed/);
    model.faults.clear();

    const launched = await launchHeadlessChromium({ viewport: { width: 1280, height: 900 } });
    stops.push(() => launched.close());
    browser = launched.context;
    await browser.setHTTPCredentials({ username: USER, password: PASSWORD, origin: service.url });
  }, 120_000);

  afterAll(() => stopNewestFirst(stops));

  it("forks a run from the trace: confirm dialog, the new run's link, and its page following it to a decision", async () => {
    const page = await browser.newPage();
    await page.goto(`${service.url}/sessions/reasoner/${source}`);
    await expect(page.locator("header .mode").textContent()).resolves.toBe("actions enabled");
    // Every iteration before the decision offers a fork; the decision does not.
    const offered = await page.locator("article.step button[data-action=fork]").count();
    await expect(page.locator("article.step").count()).resolves.toBe(offered + 1);

    await page.click("article.step[data-iteration='2'] button[data-action=fork]");
    await expect(page.locator("dialog#confirm-action .question").textContent()).resolves.toBe(
      `Fork ${source} at iteration 2? A new run starts from its first 2 iteration(s) and thinks on from there; this run is untouched.`,
    );
    await saveScreenshot(page, "console-fork-dialog.png", { fullPage: false });
    await page.click("dialog#confirm-action button.confirm");
    const outcome = page.locator("#action-outcome[data-code=ok]");
    await expect(outcome.textContent({ timeout: 30_000 })).resolves.toMatch(new RegExp(`^Forked: new run think\\.agent-ui\\.fork-[0-9a-f]{8} starts from the first 2 iteration\\(s\\) of ${source.replaceAll(".", "\\.")}\\.$`));
    const forkId = (await outcome.locator("a").textContent())!;

    await outcome.locator("a").click();
    await page.waitForURL(`${service.url}/sessions/reasoner/${forkId}`);
    await expect(page.locator(".fork-of").textContent()).resolves.toBe(`Forked from ${source} at iteration 2: its first 2 iteration(s) were copied into this run.`);
    // The run finishes while the page is open; the live refresh brings its decision in without a reload.
    await ((await producer.queue.getJob(forkId))!.waitUntilFinished(producer.events, 60_000) as Promise<ThinkResult>);
    await page.locator("article.step .decision").waitFor({ timeout: 30_000 });
    await expect(page.locator("article.step .copied").allTextContents()).resolves.toEqual([`copied from ${source}`, `copied from ${source}`]);
    await saveScreenshot(page, "console-fork.png");
  });

  it("does nothing when the dialog is cancelled", async () => {
    const page = await browser.newPage();
    await page.goto(`${service.url}/sessions/reasoner/${source}`);
    const before = await producer.queue.getJobCounts("waiting", "active", "completed");
    await page.click("article.step[data-iteration='1'] button[data-action=fork]");
    await page.click("dialog#confirm-action button.cancel");
    await expect(page.locator("dialog#confirm-action").evaluate((dialog) => (dialog as unknown as { open: boolean }).open)).resolves.toBe(false);
    await expect(page.locator("#action-outcome").textContent()).resolves.toBe("");
    expect(await producer.queue.getJobCounts("waiting", "active", "completed")).toEqual(before);
  });

  it("shows the fleet and re-drives a dead-lettered run from it", async () => {
    const page = await browser.newPage();
    await page.goto(`${service.url}/fleet`);
    await expect(page.locator("table.queues tr[data-queue=reasoning] td").last().textContent()).resolves.toBe("1");
    await expect(page.locator("table.workers").textContent()).resolves.toContain("reasoning");
    await expect(page.locator("table.sessions-per-state tr[data-service=reasoner]").count()).resolves.toBe(1);
    const row = page.locator(`table.dead-letters tr[data-session="${deadLettered}"]`);
    await expect(row.textContent()).resolves.toMatch(/the model API failed/);
    await saveScreenshot(page, "console-fleet.png");

    await row.locator("button[data-action=redrive]").click();
    await page.click("dialog#confirm-action button.confirm");
    await expect(page.locator("#action-outcome[data-code=ok]").textContent({ timeout: 30_000 })).resolves.toBe(
      `Re-driven ${deadLettered}: attempt 2 resumes it from its last checkpoint.`,
    );
    await (await producer.queue.getJob(deadLettered))!.waitUntilFinished(producer.events, 60_000);
    // Gone from the dead letters at the next refresh.
    await page.locator(`table.dead-letters tr[data-session="${deadLettered}"]`).waitFor({ state: "detached", timeout: 30_000 });
  });

  it("stops a running trading session from its page, behind the confirm dialog", async () => {
    const sim = await startInstantSimulator("console-ui-stop");
    stops.push(() => sim.close());
    const { trader, sessionId } = await spawnTrader(env, sim.url, ["--symbols", "AAPL,MSFT", "--interval", "1", "--checkpoint-interval", "1"]);
    stops.push(() => trader.kill("SIGKILL"));
    // Its stop listener connects just after it starts trading: wait until the fleet lists it.
    const deadline = Date.now() + 20_000;
    for (;;) {
      const fleet = (await (await fetch(`${service.url}/api/fleet`, { headers: basicAuth(USER, PASSWORD) })).json()) as { workers: Array<{ queue: string }> };
      if (fleet.workers.some((worker) => worker.queue === `trader-control.${sessionId}`)) break;
      if (Date.now() > deadline) throw new Error(`the trader of ${sessionId} never listened for stop requests`);
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    const page = await browser.newPage();
    await page.goto(`${service.url}/sessions/trader/${sessionId}`);

    await page.click("button[data-action=stop]");
    await expect(page.locator("dialog#confirm-action .question").textContent()).resolves.toMatch(new RegExp(`^Stop trading session ${sessionId}\\? `));
    await page.click("dialog#confirm-action button.confirm");

    await expect(page.locator("#action-outcome[data-code=ok]").textContent({ timeout: 40_000 })).resolves.toMatch(
      new RegExp(`^Stopped ${sessionId} \\(epoch \\d+\\): final checkpoint stopped, confirmed\\.$`),
    );
    expect(await trader.exited).toEqual({ code: 0, signal: null });
    // The page follows: the session is stopped, and the button is gone.
    await page.locator("button[data-action=stop]").waitFor({ state: "detached", timeout: 30_000 });
    await saveScreenshot(page, "console-stop.png");
  });

  it("refuses an action posted by a page of another site, although the browser sends the credentials", async () => {
    const evil = createServer((_request, response) => {
      response.setHeader("content-type", "text/html");
      response.end(`<form method="post" action="${service.url}/api/actions/fork" enctype="text/plain"><input name='{"sessionId":"${source}","iteration":1,"x":"' value='"}'></form>
<script>document.forms[0].submit()</script>`);
    });
    await new Promise<void>((resolve) => evil.listen(0, "127.0.0.1", resolve));
    stops.push(() => {
      // The browser keeps its connection to the page open; close would wait for it.
      evil.closeAllConnections();
      return new Promise((resolve) => evil.close(resolve));
    });
    const page = await browser.newPage();
    // Chromium first asks without credentials (401), then with them: the second answer is the console's verdict.
    const answer = page.waitForResponse((response) => response.url() === `${service.url}/api/actions/fork` && response.status() !== 401);
    await page.goto(`http://127.0.0.1:${(evil.address() as AddressInfo).port}/`);
    const response = await answer;
    expect(response.status()).toBe(403);
    expect(await response.json()).toMatchObject({ error: { code: "forbidden_origin" } });
  });
});
