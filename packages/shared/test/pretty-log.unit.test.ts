import { pino } from "pino";
import { describe, expect, it } from "vitest";
import { resolveLogFormat } from "../src/logger.js";
import { formatPretty, type LogRecord } from "../src/pretty-log.js";

/** The records a real pino logger writes for `log`, in JSON mode, as createLogger configures it. */
function recordsOf(log: (logger: pino.Logger) => void): LogRecord[] {
  const lines: string[] = [];
  const logger = pino(
    { name: "trader", base: { service: "trader" }, timestamp: pino.stdTimeFunctions.isoTime, level: "trace" },
    { write: (line: string) => lines.push(line) },
  );
  log(logger);
  return lines.map((line) => JSON.parse(line) as LogRecord);
}

const plain = (records: LogRecord[]) => records.map((record) => formatPretty(record, { color: false }));
const CLOCK = /^\d{2}:\d{2}:\d{2} /;

describe("resolveLogFormat", () => {
  it.each([
    [undefined, true, "pretty"],
    [undefined, false, "json"],
    ["json", true, "json"],
    ["pretty", false, "pretty"],
  ] as const)("LOG_FORMAT %s with a terminal: %s gives %s", (format, terminal, expected) => {
    expect(resolveLogFormat(format, terminal)).toBe(expected);
  });
});

describe("formatPretty", () => {
  it("prints the seed's checkpoint line as the seed shows it, the fields it does not state after it", () => {
    const [line] = plain(recordsOf((logger) => logger.info({ sessionId: "abc-123-def-456", checkpoints: 10 }, "💾 Checkpoint #10 created")));

    expect(line).toMatch(CLOCK);
    expect(line!.replace(CLOCK, "")).toBe("INFO  💾 Checkpoint #10 created  sessionId=abc-123-def-456\n");
  });

  it("prints the seed's resume summary line by line, each message first", () => {
    const at = { sessionId: "abc-123-def-456", epoch: 1, seq: 42 };
    const lines = plain(
      recordsOf((logger) => {
        logger.info({ ...at, status: "interrupted" }, "✓ Resumed session: abc-123-def-456");
        logger.info({ ...at, symbols: ["AAPL", "MSFT", "GOOGL"] }, "Symbols: AAPL,MSFT,GOOGL");
        logger.info({ ...at, positions: 3 }, "✓ Loaded 3 positions from database");
        logger.info({ ...at, portfolioValue: 102345.67 }, "Last known portfolio value: $102,345.67");
      }),
    ).map((line) => line.replace(CLOCK, ""));

    expect(lines).toEqual([
      "INFO  ✓ Resumed session: abc-123-def-456  epoch=1 seq=42 status=interrupted\n",
      'INFO  Symbols: AAPL,MSFT,GOOGL  sessionId=abc-123-def-456 epoch=1 seq=42 symbols=["AAPL","MSFT","GOOGL"]\n',
      "INFO  ✓ Loaded 3 positions from database  sessionId=abc-123-def-456 epoch=1 seq=42\n",
      "INFO  Last known portfolio value: $102,345.67  sessionId=abc-123-def-456 epoch=1 seq=42 portfolioValue=102345.67\n",
    ]);
  });

  it("repeats a number the message only contains as part of another", () => {
    const [line] = plain(recordsOf((logger) => logger.warn({ epoch: 1 }, "checkpoint #10 not confirmed yet")));
    expect(line!.replace(CLOCK, "")).toBe("WARN  checkpoint #10 not confirmed yet  epoch=1\n");
  });

  it("quotes string values with spaces and shows an error's type and message, its stack below at level error", () => {
    const error = new Error("connect ECONNREFUSED 127.0.0.1:5432");
    const [warning, failure] = plain(
      recordsOf((logger) => {
        logger.warn({ problem: "no answer in time", attempt: 2 }, "retrying");
        logger.error({ err: error }, "checkpoint refused by the checkpointer");
      }),
    );

    expect(warning!.replace(CLOCK, "")).toBe('WARN  retrying  problem="no answer in time" attempt=2\n');
    const [head, ...frames] = failure!.replace(CLOCK, "").trimEnd().split("\n");
    expect(head).toBe('ERROR checkpoint refused by the checkpointer  err="Error: connect ECONNREFUSED 127.0.0.1:5432"');
    expect(frames.length).toBeGreaterThan(0);
    for (const frame of frames) expect(frame).toMatch(/^ {4}at /);
  });

  it("colors the level and dims the fields only when asked", () => {
    const [record] = recordsOf((logger) => logger.info({ queue: "checkpoints" }, "consuming"));
    const colored = formatPretty(record!, { color: true });
    expect(colored).toContain("\x1b[32mINFO \x1b[0m consuming  \x1b[2mqueue=checkpoints\x1b[0m");
    expect(formatPretty(record!, { color: false })).not.toContain("\x1b[");
  });
});
