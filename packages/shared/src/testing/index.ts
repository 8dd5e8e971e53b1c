export * from "./test-environment.js";
export * from "./tcp-proxy.js";
export * from "./service-process.js";
export * from "./checkpointer-process.js";
export * from "./teardown.js";
export * from "./queue-with-events.js";
export * from "./in-memory-checkpoints.js";
