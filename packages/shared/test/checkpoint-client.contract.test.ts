import { afterAll, describe } from "vitest";
import { CheckpointClient } from "../src/checkpoint-client.js";
import { createTestEnvironment, spawnCheckpointer, type ServiceProcess, type TestEnvironment } from "../src/testing/index.js";
import { checkpointPortContract } from "./checkpoint-port.contract.js";

describe("CheckpointClient and the real checkpointer keep the CheckpointPort contract", () => {
  let env: TestEnvironment | undefined;
  let checkpointer: ServiceProcess | undefined;
  let client: CheckpointClient | undefined;

  checkpointPortContract(async () => {
    env = await createTestEnvironment("port-contract");
    checkpointer = await spawnCheckpointer(env);
    client = await CheckpointClient.connect({ redisUrl: env.redisUrl, queuePrefix: env.queuePrefix });
    return client;
  });

  afterAll(async () => {
    await client?.close();
    await checkpointer?.kill("SIGTERM");
    await env?.dispose();
  });
});
