import { describe, expect, it } from "vitest";
import { isConnectionError, isDataError, isRetryableConflict } from "../src/store/pg-errors.js";

/** An error as node-postgres throws it: a message, and Postgres's SQLSTATE (or the socket's errno) as `code`. */
const pgError = (code: string | undefined, message = "error") => Object.assign(new Error(message), code === undefined ? {} : { code });

describe("Postgres errors", () => {
  it.each([
    { name: "a refused connection", error: pgError("ECONNREFUSED"), connection: true, conflict: false, data: false },
    { name: "a reset connection", error: pgError("ECONNRESET"), connection: true, conflict: false, data: false },
    { name: "an unknown host", error: pgError("ENOTFOUND"), connection: true, conflict: false, data: false },
    { name: "an administrator's shutdown (57P01)", error: pgError("57P01"), connection: true, conflict: false, data: false },
    { name: "too many connections (53300)", error: pgError("53300"), connection: true, conflict: false, data: false },
    { name: "a connection exception class (08006)", error: pgError("08006"), connection: true, conflict: false, data: false },
    { name: "a connection ended, by its message", error: pgError(undefined, "Connection terminated unexpectedly"), connection: true, conflict: false, data: false },
    { name: "a pool timeout, by its message", error: pgError(undefined, "timeout exceeded when trying to connect"), connection: true, conflict: false, data: false },
    { name: "a serialization failure (40001)", error: pgError("40001"), connection: false, conflict: true, data: false },
    { name: "a deadlock (40P01)", error: pgError("40P01"), connection: false, conflict: true, data: false },
    { name: "an invalid value (22P02)", error: pgError("22P02"), connection: false, conflict: false, data: true },
    { name: "a unique violation (23505)", error: pgError("23505"), connection: false, conflict: false, data: true },
    { name: "a JSON nested too deep (54001)", error: pgError("54001"), connection: false, conflict: false, data: true },
    { name: "a syntax error (42601)", error: pgError("42601"), connection: false, conflict: false, data: false },
    { name: "an error without a code", error: pgError(undefined, "something else"), connection: false, conflict: false, data: false },
  ])("$name: connection $connection, conflict $conflict, data $data", ({ error, connection, conflict, data }) => {
    expect([isConnectionError(error), isRetryableConflict(error), isDataError(error)]).toEqual([connection, conflict, data]);
  });

  it.each([undefined, null, "ECONNREFUSED", { code: "ECONNREFUSED" }])("does not take %o, which is not an Error, as a lost connection", (thrown) => {
    expect(isConnectionError(thrown)).toBe(false);
  });
});
