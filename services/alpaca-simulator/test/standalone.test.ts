import { ServiceProcess } from "@savepoint/shared/testing";
import { afterEach, describe, expect, it } from "vitest";
import { sdk, SIMULATOR_MAIN } from "./support.js";

// The built entry point (`npm start -w @savepoint/alpaca-simulator`), as compose runs it; `npm run build` first.
describe("standalone simulator process", () => {
  let service: ServiceProcess | undefined;

  afterEach(async () => {
    await service?.kill("SIGKILL");
    service = undefined;
  });

  it("serves the Alpaca API on SIM_PORT, ticks on its own clock and shuts down cleanly on SIGTERM", async () => {
    service = ServiceProcess.start(SIMULATOR_MAIN, { SIM_PORT: "0", SIM_TICK_MS: "20", SIM_SEED: "standalone", SIM_START: "2026-01-05T15:00:00Z" });
    const listening = await service.waitForLog("simulator listening");
    expect(listening).toMatchObject({ seed: "standalone", simulatedNow: "2026-01-05T15:00:00.000Z" });
    const api = sdk(`http://127.0.0.1:${listening.port as number}`);

    expect((await api.account.getAccount()).cash).toBe("100000");
    const deadline = Date.now() + 10_000;
    let now = (await api.clock.legacyClock()).timestamp;
    while (now.getTime() < Date.parse("2026-01-05T15:05:00Z") && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 20));
      now = (await api.clock.legacyClock()).timestamp;
    }
    expect(now.getTime()).toBeGreaterThanOrEqual(Date.parse("2026-01-05T15:05:00Z"));

    expect(await service.kill("SIGTERM")).toEqual({ code: 0, signal: null });
    expect(service.logs.map((line) => line.msg)).toContain("shut down");
  });

  it("refuses to start on a bad environment, naming the variable", async () => {
    service = ServiceProcess.start(SIMULATOR_MAIN, { SIM_PORT: "0", SIM_SYMBOLS: "AAPL,not-a-ticker" });
    expect(await service.exited).toEqual({ code: 1, signal: null });
    expect(service.output.join("\n")).toContain("SIM_SYMBOLS: must be SYMBOL or SYMBOL:PRICE entries");
  });
});
