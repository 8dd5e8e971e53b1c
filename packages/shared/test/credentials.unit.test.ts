import { describe, expect, it } from "vitest";
import { credentialsChecker } from "../src/credentials.js";

describe("credentialsChecker", () => {
  const matches = credentialsChecker({ user: "operator", password: "correct horse battery staple" });

  it.each([
    ["the right user and password", "operator", "correct horse battery staple", true],
    ["a wrong password", "operator", "correct horse battery stapl", false],
    ["a longer password with the right one as its prefix", "operator", "correct horse battery staple!", false],
    ["a wrong user", "Operator", "correct horse battery staple", false],
    ["empty credentials", "", "", false],
    ["user and password swapped", "correct horse battery staple", "operator", false],
  ])("refuses or accepts %s", (_case, user, password, expected) => {
    expect(matches({ user, password })).toBe(expected);
  });
});
