import { ServiceProcess } from "./service-process.js";

/** The Authorization header of HTTP basic auth, for a test's requests to Bull Board or the console. */
export function basicAuth(user: string, password: string): Record<string, string> {
  return { authorization: `Basic ${Buffer.from(`${user}:${password}`).toString("base64")}` };
}

export interface RunningWebService {
  url: string;
  process: ServiceProcess;
}

/**
 * Starts a built web service (`main`, e.g. the board's dist/main.js) as a real process on a free port and
 * resolves once it serves: HTTP_PORT 0, its `starting` log line says which port it got, and a line whose message
 * begins with `serving` that it listens. A service that gets neither is killed, and the wait's error thrown.
 */
export async function startWebService(main: string, env: Record<string, string>, logs: { starting: string; serving: string }): Promise<RunningWebService> {
  const service = ServiceProcess.start(main, { ...env, HTTP_PORT: "0" });
  try {
    const started = await service.waitForLog(logs.starting);
    await service.waitForLog((line) => typeof line.msg === "string" && line.msg.startsWith(logs.serving));
    return { url: `http://127.0.0.1:${String(started.httpPort)}`, process: service };
  } catch (error) {
    await service.kill("SIGKILL");
    throw error;
  }
}
