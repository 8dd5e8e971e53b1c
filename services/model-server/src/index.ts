export { CallLedger, type CallOutcome, type SessionCalls } from "./call-ledger.js";
export { modelServerEnvSchema, type ModelServerConfig } from "./config.js";
export { FaultQueue, faultSchema, type Fault, type FaultRequest } from "./faults.js";
export { createModelServer, type ModelServer, type ModelServerOptions } from "./server.js";
