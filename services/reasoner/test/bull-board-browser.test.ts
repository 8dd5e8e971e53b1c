import { createRequire } from "node:module";
import { ServiceProcess } from "@savepoint/shared/testing";
import { launchHeadlessChromium, saveScreenshot, type HeadlessBrowser } from "@savepoint/shared/testing/browser";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { decisionOf, iterationsStored, settledIterations, think, useReasonerStack } from "./support.js";

/** The built board's entry point, found the way Node finds the package. */
const BOARD_MAIN = createRequire(import.meta.url).resolve("@savepoint/board");
const USER = "operator";
const PASSWORD = "correct horse battery staple";
const ITERATIONS = 8;

describe("a resumed run in Bull Board, in headless Chromium", () => {
  const stack = useReasonerStack("reasoner-board", { modelLatencyMs: 150 });
  let board: ServiceProcess | undefined;
  let boardUrl: string;
  let chromium: HeadlessBrowser | undefined;

  beforeAll(async () => {
    board = ServiceProcess.start(BOARD_MAIN, { ...stack.env.env, HTTP_PORT: "0", BULL_BOARD_USER: USER, BULL_BOARD_PASSWORD: PASSWORD });
    const started = await board.waitForLog("bull-board starting");
    await board.waitForLog((line) => typeof line.msg === "string" && line.msg.startsWith("Bull Board on"));
    boardUrl = `http://127.0.0.1:${String(started.httpPort)}`;
    chromium = await launchHeadlessChromium({ viewport: { width: 1280, height: 1000 }, httpCredentials: { username: USER, password: PASSWORD } });
  });
  afterAll(async () => {
    await chromium?.close();
    await board?.kill("SIGTERM");
  });

  it("shows the run's progress and its log: each thought step, the interruption and the resume", async () => {
    const { reasoner: first } = await stack.startInProcessReasoner();
    const job = await think(stack.producer.queue, "agent-board", ITERATIONS);
    await iterationsStored(stack.env, job.id!, 3);
    await first.close();
    const stoppedAt = (await settledIterations(stack.env, job.id!)).length;
    await stack.startInProcessReasoner();
    const result = await decisionOf(job, stack.producer.events);

    const page = await chromium!.context.newPage();
    await page.goto(`${boardUrl}/queue/reasoning/${encodeURIComponent(job.id!)}`);
    const main = page.locator("main");
    // The job's progress object, as the board renders it on its Progress tab.
    await main.getByText("Progress", { exact: true }).click();
    await main.getByText('phase:"completed"').waitFor();
    await main.getByText(`resumedAt:${stoppedAt}`).waitFor();
    await main.getByText(`iteration:${ITERATIONS}`).waitFor();
    await saveScreenshot(page, "bull-board-resumed-run-progress.png");
    // Its log: a line per thought step, the interruption and the resume, in order.
    await main.getByText("Logs", { exact: true }).click();
    await main.getByText(`resumed at iteration ${stoppedAt} of ${ITERATIONS} from its checkpoints`, { exact: false }).waitFor();
    await main.getByText(`interrupted by a shutdown before iteration ${stoppedAt + 1}; checkpointed and requeued`, { exact: false }).waitFor();
    await main.getByText(`iteration ${ITERATIONS} · decision: ${result.action}`, { exact: false }).waitFor();
    const text = await main.innerText();
    const steps = [...text.matchAll(/iteration (\d+) · /g)].map((match) => Number(match[1]));
    expect(steps).toEqual(Array.from({ length: ITERATIONS }, (_, i) => i + 1));
    expect(text.indexOf("interrupted by a shutdown")).toBeGreaterThan(text.indexOf(`iteration ${stoppedAt} · `));
    expect(text.indexOf("resumed at iteration")).toBeLessThan(text.indexOf(`iteration ${stoppedAt + 1} · `));
    await saveScreenshot(page, "bull-board-resumed-run-log.png");
  });
});
