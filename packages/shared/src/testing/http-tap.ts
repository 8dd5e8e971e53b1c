import http from "node:http";
import type net from "node:net";

export interface TappedRequest {
  method: string;
  /** The path without the query string. */
  path: string;
}

/**
 * An HTTP forwarder in front of a server, recording every request that passes through it: give each client its
 * own tap and the server's traffic can be told apart by client (which of two traders sent an order, say).
 */
export class HttpTap {
  readonly requests: TappedRequest[] = [];

  private constructor(
    private readonly server: http.Server,
    readonly url: string,
  ) {}

  /** Forwards to `target` (an http:// base URL such as http://127.0.0.1:8090). */
  static async start(target: string): Promise<HttpTap> {
    const upstream = new URL(target);
    let tap: HttpTap | undefined;
    const server = http.createServer((request, response) => {
      tap!.requests.push({ method: request.method ?? "GET", path: (request.url ?? "/").split("?")[0]! });
      const forwarded = http.request(
        { host: upstream.hostname, port: upstream.port, method: request.method, path: request.url, headers: { ...request.headers, host: upstream.host } },
        (answer) => {
          response.writeHead(answer.statusCode ?? 502, answer.headers);
          answer.pipe(response);
        },
      );
      forwarded.on("error", () => response.destroy());
      request.pipe(forwarded);
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const { port } = server.address() as net.AddressInfo;
    tap = new HttpTap(server, `http://127.0.0.1:${port}`);
    return tap;
  }

  /** Requests with this method whose path starts with `path`. */
  count(method: string, path: string): number {
    return this.requests.filter((request) => request.method === method && request.path.startsWith(path)).length;
  }

  async close(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}
