import { connect } from "node:net";
import { setTimeout as sleep } from "node:timers/promises";

const POLL_MS = 250;

/**
 * Resolves once `url` answers 200. Rejects after `timeoutMs`, or as soon as `signal` aborts, with the last
 * answer (a /readyz body names what is not ready) or connection error.
 */
export async function waitForHealthy(url, { timeoutMs, signal }) {
  const deadline = Date.now() + timeoutMs;
  let last = "no answer yet";
  while (Date.now() < deadline) {
    signal?.throwIfAborted();
    try {
      const response = await fetch(url, { signal: AbortSignal.timeout(2_000) });
      const body = await response.text();
      if (response.status === 200) return;
      last = `${response.status} ${body.slice(0, 300)}`;
    } catch (error) {
      last = error.cause?.code ?? error.cause?.message ?? error.message;
    }
    await sleep(POLL_MS);
  }
  throw new Error(`${url} not healthy within ${timeoutMs / 1000} s (last answer: ${last})`);
}

/** Resolves once the host and port of `url` (redis://…, postgres://…) accept a TCP connection. */
export async function waitForPort(url, { timeoutMs }) {
  const { hostname, port } = new URL(url);
  const defaultPorts = { "redis:": 6379, "rediss:": 6379, "postgres:": 5432, "postgresql:": 5432 };
  const target = { host: hostname.replace(/^\[|\]$/g, ""), port: Number(port || defaultPorts[new URL(url).protocol]) };
  const deadline = Date.now() + timeoutMs;
  let last = "no answer";
  while (Date.now() < deadline) {
    try {
      await new Promise((resolve, reject) => {
        const socket = connect(target, () => {
          socket.end();
          resolve();
        });
        socket.setTimeout(1_000, () => socket.destroy(new Error("timed out")));
        socket.on("error", reject);
      });
      return;
    } catch (error) {
      last = error.code ?? error.message;
    }
    await sleep(POLL_MS);
  }
  throw new Error(`nothing answers at ${target.host}:${target.port} (${last})`);
}
