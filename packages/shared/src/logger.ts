import { pino, type Logger, type LoggerOptions } from "pino";
import { formatPretty, type LogRecord } from "./pretty-log.js";

export type { Logger } from "pino";

/** Paths whose values never reach a log line, wherever they appear in a logged object. */
const REDACTED_PATHS = [
  "password",
  "*.password",
  "apiKey",
  "*.apiKey",
  "secret",
  "*.secret",
  "authorization",
  "*.authorization",
  "headers.authorization",
  "*.headers.authorization",
  "*.headers['x-api-key']",
  "*.headers['apca-api-secret-key']",
  "APCA_API_SECRET_KEY",
  "*.APCA_API_SECRET_KEY",
  "ANTHROPIC_API_KEY",
  "*.ANTHROPIC_API_KEY",
  "BULL_BOARD_PASSWORD",
  "*.BULL_BOARD_PASSWORD",
];

export type LogFormat = "json" | "pretty";

export interface LoggerSettings {
  service: string;
  level: string;
  /** `LOG_FORMAT`: "json" or "pretty"; unset, pretty when stdout is a terminal and JSON otherwise. */
  format?: LogFormat;
}

/** The format a logger writes in: the one asked for, else pretty on a terminal (a person) and JSON elsewhere. */
export function resolveLogFormat(format: LogFormat | undefined, stdoutIsTerminal = process.stdout.isTTY === true): LogFormat {
  return format ?? (stdoutIsTerminal ? "pretty" : "json");
}

export function createLogger({ service, level, format }: LoggerSettings): Logger {
  const options: LoggerOptions = {
    name: service,
    level,
    base: { service },
    redact: { paths: REDACTED_PATHS, censor: "[redacted]" },
    timestamp: pino.stdTimeFunctions.isoTime,
  };
  // Synchronous either way, so the last lines before process.exit are written, not lost in a buffer.
  const stdout = pino.destination({ fd: 1, sync: true });
  if (resolveLogFormat(format) === "json") return pino(options, stdout);
  const color = process.stdout.isTTY === true && !process.env.NO_COLOR;
  return pino(options, { write: (line: string) => stdout.write(formatPretty(JSON.parse(line) as LogRecord, { color })) });
}
