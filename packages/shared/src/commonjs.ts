import { createRequire } from "node:module";

/*
 * BullMQ and ioredis, CommonJS packages, loaded with require rather than import. Node's import of a CommonJS
 * package first lexes its entry and every file it re-exports for their export names (cjs-module-lexer), then
 * loads them all again as CommonJS; bullmq's index re-exports some 200 files, which made it the slowest part of
 * every service's start: the trader's import of @savepoint/shared (bullmq 215-265 ms by import against 120-195
 * ms by require on Node 20, ioredis 95-135 against 75-80). The modules are the ones an `import` elsewhere gets
 * (the same require cache), so classes and instanceof agree everywhere; types come from `import type`.
 */
const require = createRequire(import.meta.url);

export const bullmq = require("bullmq") as typeof import("bullmq");
export const ioredis = require("ioredis") as typeof import("ioredis");
