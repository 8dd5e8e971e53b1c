export type { CallOutcome, SessionCalls } from "./call-ledger.js";
export type { Fault, FaultRequest } from "./faults.js";
export { KNOWN_MODELS } from "./known-models.js";
export { createModelServer, type ModelServer, type ModelServerOptions } from "./server.js";
