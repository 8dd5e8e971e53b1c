import net from "node:net";

/**
 * A unit test that reaches for the network is an integration test in the wrong file: fail it at once,
 * naming the convention, rather than let `npm run test:unit` depend on Redis or Postgres being up.
 */
function refuse(): never {
  throw new Error("*.unit.test.ts files run without network (npm run test:unit); a test that needs Redis, Postgres or a server belongs in a *.test.ts file");
}
net.Socket.prototype.connect = refuse;
net.Server.prototype.listen = refuse;
