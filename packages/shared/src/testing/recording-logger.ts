import { Writable } from "node:stream";
import { pino } from "pino";
import type { Logger } from "../logger.js";
import type { LogLine } from "./service-process.js";

/** A pino logger whose JSON lines a test reads back, in order, as `Line`s; `base` is in every line. */
export function recordingLogger<Line extends object = LogLine>(level = "info", base?: Record<string, unknown>): { logger: Logger; lines: Line[] } {
  const lines: Line[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _encoding, done) {
      for (const text of chunk.toString("utf8").split("\n")) if (text) lines.push(JSON.parse(text) as Line);
      done();
    },
  });
  return { logger: pino({ level, ...(base ? { base } : {}) }, sink), lines };
}
