export { startSimulator, simulatorOptionsSchema } from "./server.js";
export type { FaultSpec, RunningSimulator, SimulatorControl, SimulatorOptions, SimulatorState } from "./server.js";
export { simulatorEnvSchema, simulatorOptionsFromEnv, type SimulatorEnv } from "./config.js";
