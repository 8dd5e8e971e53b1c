import { port } from "@savepoint/shared";
import { z } from "zod";

/** The local model server's environment. */
export const modelServerEnvSchema = z.object({
  MODEL_SERVER_PORT: port().default(8091),
  /** 0.0.0.0 in a container; 127.0.0.1 keeps it on this machine. */
  MODEL_SERVER_HOST: z.string().min(1).default("0.0.0.0"),
  /** Per-call latency, standing in for a real model's 1-3 s per call. */
  MODEL_SERVER_LATENCY_MS: z.coerce.number().int().min(0).max(600_000).default(1_500),
  /** When set, only this key is accepted; otherwise any key is. */
  MODEL_SERVER_API_KEY: z.string().optional(),
  LOG_LEVEL: z.enum(["fatal", "error", "warn", "info", "debug", "trace", "silent"]).default("info"),
  LOG_FORMAT: z.enum(["json", "pretty"]).default("json"),
});
export type ModelServerConfig = z.infer<typeof modelServerEnvSchema>;
