import { pino, type Logger, type LoggerOptions } from "pino";

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

export interface LoggerSettings {
  service: string;
  level: string;
  /** "pretty" for humans in development; JSON otherwise. */
  format?: "json" | "pretty";
}

export function createLogger({ service, level, format = "json" }: LoggerSettings): Logger {
  const options: LoggerOptions = {
    name: service,
    level,
    base: { service },
    redact: { paths: REDACTED_PATHS, censor: "[redacted]" },
    timestamp: pino.stdTimeFunctions.isoTime,
  };
  if (format === "pretty") {
    return pino({ ...options, transport: { target: "pino-pretty", options: { colorize: true, translateTime: "SYS:HH:MM:ss.l" } } });
  }
  return pino(options);
}
