import { describe, expect, it } from "vitest";
import { CheckpointTimeoutError, namedError, ReasoningTimeoutError } from "../src/index.js";

describe("namedError", () => {
  it("declares an Error told apart by its class, named as the class, with the message as given", () => {
    class ExampleError extends namedError("ExampleError") {}
    const error = new ExampleError("what happened");
    expect(error).toBeInstanceOf(ExampleError);
    expect(error).toBeInstanceOf(Error);
    expect([error.name, error.message, String(error)]).toEqual(["ExampleError", "what happened", "ExampleError: what happened"]);
  });

  it("keeps two errors declared with it apart", () => {
    expect(new CheckpointTimeoutError("late")).not.toBeInstanceOf(ReasoningTimeoutError);
    expect(new ReasoningTimeoutError("late").name).toBe("ReasoningTimeoutError");
  });
});
