import { once } from "node:events";
import { createServer, type Server } from "node:net";
import { fileURLToPath } from "node:url";
import { ServiceProcess } from "@savepoint/shared/testing";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

const MODEL_SERVER_MAIN = fileURLToPath(new URL("../dist/main.js", import.meta.url));

describe("model server start-up", () => {
  let taken: Server;
  let port: number;
  const started: ServiceProcess[] = [];

  beforeAll(async () => {
    taken = createServer().listen(0, "0.0.0.0");
    await once(taken, "listening");
    port = (taken.address() as { port: number }).port;
  });
  afterAll(async () => {
    await Promise.all(started.map((service) => service.kill("SIGKILL")));
    taken?.close();
  });

  it("on a MODEL_SERVER_PORT in use exits 1 with one line naming the setting, no stack trace", async () => {
    const service = ServiceProcess.start(MODEL_SERVER_MAIN, { MODEL_SERVER_PORT: String(port), MODEL_SERVER_HOST: "0.0.0.0" });
    started.push(service);

    expect((await service.exited).code).toBe(1);
    const lines = service.output.filter((line) => !line.includes('"msg":"model-server starting"'));
    expect(lines).toEqual([
      `model-server: MODEL_SERVER_PORT=${port} is in use: another process listens on it; stop that process or set MODEL_SERVER_PORT to a free port`,
    ]);
  });

  it("on a malformed MODEL_SERVER_PORT exits 1 naming it, no stack trace", async () => {
    const service = ServiceProcess.start(MODEL_SERVER_MAIN, { MODEL_SERVER_PORT: "eighty" });
    started.push(service);

    expect((await service.exited).code).toBe(1);
    const output = service.output.join("\n");
    expect(output).toContain('MODEL_SERVER_PORT: must be a number (got "eighty")');
    expect(output).not.toMatch(/^\s+at /m);
  });
});
