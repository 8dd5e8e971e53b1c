/** One pino record as it is written in JSON mode. */
export type LogRecord = Record<string, unknown>;

const LEVELS: Record<number, { label: string; color: string }> = {
  10: { label: "TRACE", color: "\x1b[90m" },
  20: { label: "DEBUG", color: "\x1b[36m" },
  30: { label: "INFO", color: "\x1b[32m" },
  40: { label: "WARN", color: "\x1b[33m" },
  50: { label: "ERROR", color: "\x1b[31m" },
  60: { label: "FATAL", color: "\x1b[35m" },
};
const DIM = "\x1b[2m";
const RESET = "\x1b[0m";
const ERROR_LEVEL = 50;

/** Written on every line by pino itself, or the same on every line of one process: never worth repeating. */
const PROCESS_FIELDS = new Set(["level", "time", "msg", "pid", "hostname", "name", "service", "err"]);

/**
 * One log record as a person at a terminal reads it: `12:04:31 INFO  💾 Checkpoint #10 created`, then the
 * structured fields as `key=value` (dimmed when colored), except those every line has and those whose
 * value the message already states. An error's type and message follow, and at level error and above
 * its stack, indented, on the lines below.
 */
export function formatPretty(record: LogRecord, { color }: { color: boolean }): string {
  const level = LEVELS[Number(record.level)] ?? { label: String(record.level), color: "" };
  const message = typeof record.msg === "string" ? record.msg : "";
  const paint = (code: string, text: string) => (color && text !== "" ? `${code}${text}${RESET}` : text);

  const fields = Object.entries(record)
    .filter(([key, value]) => !PROCESS_FIELDS.has(key) && value !== undefined && !statedIn(message, value))
    .map(([key, value]) => `${key}=${showValue(value)}`);
  const error = describeError(record.err);
  if (error) fields.unshift(`err=${error.summary}`);

  const head = `${clock(record.time)} ${paint(level.color, level.label.padEnd(5))} ${message}`;
  const tail = fields.length > 0 ? `  ${paint(DIM, fields.join(" "))}` : "";
  const stack = error?.stack && Number(record.level) >= ERROR_LEVEL ? `\n${paint(DIM, indent(error.stack))}` : "";
  return `${head}${tail}${stack}\n`;
}

function clock(time: unknown): string {
  const date = new Date(typeof time === "string" || typeof time === "number" ? time : Date.now());
  return Number.isNaN(date.getTime()) ? String(time) : date.toTimeString().slice(0, 8);
}

/** True when the message already says this value as a word of its own (`#10` states 10, but not 1). */
function statedIn(message: string, value: unknown): boolean {
  if (typeof value !== "string" && typeof value !== "number") return false;
  const text = String(value);
  if (text === "") return false;
  const escaped = text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
  return new RegExp(`(^|[^\\w.-])${escaped}($|[^\\w-]|\\.(?!\\w))`).test(message);
}

function showValue(value: unknown): string {
  if (typeof value === "string") return /^[^\s"=]+$/.test(value) ? value : JSON.stringify(value);
  return JSON.stringify(value) ?? String(value);
}

function describeError(err: unknown): { summary: string; stack?: string } | undefined {
  if (typeof err !== "object" || err === null) return err === undefined ? undefined : { summary: showValue(err) };
  const { type, message, stack } = err as { type?: unknown; message?: unknown; stack?: unknown };
  const summary = `${typeof type === "string" ? `${type}: ` : ""}${typeof message === "string" ? message : JSON.stringify(err)}`;
  // The stack's first line repeats the summary; the frames are what it adds.
  const frames = typeof stack === "string" ? stack.split("\n").slice(1).join("\n") : "";
  return { summary: JSON.stringify(summary), ...(frames ? { stack: frames } : {}) };
}

function indent(text: string): string {
  return text
    .split("\n")
    .map((line) => `    ${line.trim()}`)
    .join("\n");
}
