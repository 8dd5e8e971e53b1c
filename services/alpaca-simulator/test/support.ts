import { startSimulator, type RunningSimulator, type SimulatorOptions } from "../src/server.js";

export { failureOf, sdk, SIMULATOR_MAIN, type Sdk, type SdkOptions } from "../src/testing.js";

/** A fixed simulated start, so bar timestamps are reproducible too (a Monday, 15:00 UTC). */
export const START = new Date("2026-01-05T15:00:00.000Z");

export function startTestSimulator(options: SimulatorOptions = {}): Promise<RunningSimulator> {
  return startSimulator({ seed: "test-seed", start: START, historyBars: 600, ...options });
}
