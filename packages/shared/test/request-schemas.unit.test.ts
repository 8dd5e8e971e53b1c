import { describe, expect, it } from "vitest";
import { describeIssues } from "../src/jobs.js";
import { latestRequestSchema } from "../src/schemas/requests.js";

const problem = (input: unknown) => {
  const result = latestRequestSchema.safeParse(input);
  return result.success ? "ok" : describeIssues(result.error);
};

describe("latest request", () => {
  it("reads a session lookup and an owner lookup with a status filter", () => {
    expect(latestRequestSchema.parse({ service: "trader", sessionId: "s-1" })).toEqual({ service: "trader", sessionId: "s-1" });
    expect(latestRequestSchema.parse({ service: "trader", ownerId: "acct", status: "active" })).toEqual({
      service: "trader",
      ownerId: "acct",
      statuses: ["active"],
    });
  });

  it("names the field at fault", () => {
    expect(problem({ service: "trader", ownerId: "acct", status: "weird" })).toMatch(/^status/);
    expect(problem({ service: "trader" })).toBe("sessionId: give exactly one of sessionId or ownerId");
    expect(problem({ service: "trader", sessionId: "s", ownerId: "acct" })).toBe("sessionId: give exactly one of sessionId or ownerId");
    expect(problem({ service: "trader", sessionId: "s", status: "active" })).toBe(
      "status: filters an owner's sessions; use it with ownerId, not sessionId",
    );
  });
});
