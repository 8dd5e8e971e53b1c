import { describe } from "vitest";
import { InMemoryCheckpoints } from "../src/testing/in-memory-checkpoints.js";
import { checkpointPortContract } from "./checkpoint-port.contract.js";

describe("InMemoryCheckpoints keeps the CheckpointPort contract", () => {
  checkpointPortContract(async () => new InMemoryCheckpoints());
});
