import { describe, expect, it } from "vitest";
import { isConnectionError, isDataError, isRetryableConflict } from "../src/store/pg-errors.js";

/** An error as node-postgres throws it: a message, and Postgres's SQLSTATE (or the socket's errno) as `code`. */
const pgError = (code: string | undefined, message = "error") => Object.assign(new Error(message), code === undefined ? {} : { code });

describe("Postgres errors", () => {
  // Each error as node-postgres throws it, by the one class it belongs to (or none).
  const byClass = {
    connection: [
      ["a refused connection", pgError("ECONNREFUSED")],
      ["a reset connection", pgError("ECONNRESET")],
      ["an unknown host", pgError("ENOTFOUND")],
      ["an administrator's shutdown (57P01)", pgError("57P01")],
      ["too many connections (53300)", pgError("53300")],
      ["a connection exception class (08006)", pgError("08006")],
      ["a connection ended, by its message", pgError(undefined, "Connection terminated unexpectedly")],
      ["a pool timeout, by its message", pgError(undefined, "timeout exceeded when trying to connect")],
    ],
    conflict: [
      ["a serialization failure (40001)", pgError("40001")],
      ["a deadlock (40P01)", pgError("40P01")],
    ],
    data: [
      ["an invalid value (22P02)", pgError("22P02")],
      ["a unique violation (23505)", pgError("23505")],
      ["a JSON nested too deep (54001)", pgError("54001")],
    ],
    other: [
      ["a syntax error (42601)", pgError("42601")],
      ["an error without a code", pgError(undefined, "something else")],
    ],
  } satisfies Record<string, Array<[string, Error]>>;
  const cases = Object.entries(byClass).flatMap(([kind, errors]) => errors.map(([name, error]) => ({ name, error, kind })));

  it.each(cases)("$name is classed as $kind, and as nothing else", ({ error, kind }) => {
    expect({ connection: isConnectionError(error), conflict: isRetryableConflict(error), data: isDataError(error) }).toEqual({
      connection: kind === "connection",
      conflict: kind === "conflict",
      data: kind === "data",
    });
  });

  it.each([undefined, null, "ECONNREFUSED", { code: "ECONNREFUSED" }])("does not take %o, which is not an Error, as a lost connection", (thrown) => {
    expect(isConnectionError(thrown)).toBe(false);
  });
});
