import { commonEnvSchema, port } from "@savepoint/shared";
import { z } from "zod";

/** The local model server's environment. */
export const modelServerEnvSchema = commonEnvSchema.pick({ LOG_LEVEL: true, LOG_FORMAT: true, SHUTDOWN_TIMEOUT_MS: true }).extend({
  MODEL_SERVER_PORT: port().default(8091),
  /** 0.0.0.0 in a container; 127.0.0.1 keeps it on this machine. */
  MODEL_SERVER_HOST: z.string().min(1).default("0.0.0.0"),
  /** Per-call latency, standing in for a real model's 1-3 s per call. */
  MODEL_SERVER_LATENCY_MS: z.coerce.number().int().min(0).max(600_000).default(1_500),
  /** When set, only this key is accepted; otherwise any key is. */
  MODEL_SERVER_API_KEY: z.string().optional(),
});
export type ModelServerConfig = z.infer<typeof modelServerEnvSchema>;
