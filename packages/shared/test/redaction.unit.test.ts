import { describe, expect, it } from "vitest";
import { parseEnv, databaseEnvSchema } from "../src/config.js";
import { redactUrl } from "../src/redaction.js";

describe("redactUrl", () => {
  it.each([
    ["postgres://app:hunter2@db:5432/savepoint", "postgres://app:***@db:5432/savepoint"],
    ["redis://127.0.0.1:6379", "redis://127.0.0.1:6379"],
    ["postgres://postgres@127.0.0.1:5432/savepoint", "postgres://postgres@127.0.0.1:5432/savepoint"],
    ["redis://:s3cret@cache:6379/0", "redis://:***@cache:6379/0"],
    // A raw '@' in the password: the authority ends at the last '@' before the host.
    ["postgres://postgres:Le@k3dPart9@db.internal:5432/savepoint", "postgres://postgres:***@db.internal:5432/savepoint"],
    ["redis://default:a@b@c@cache:6379", "redis://default:***@cache:6379"],
    // Percent-encoded passwords are masked whole too.
    ["postgres://app:p%40ss%3Aword@db/savepoint", "postgres://app:***@db/savepoint"],
  ])("masks the userinfo password of %s", (given, shown) => {
    expect(redactUrl(given)).toBe(shown);
  });

  it.each([
    ["postgres://db/savepoint?password=hunter2", "postgres://db/savepoint?password=***"],
    ["postgres://app@db/savepoint?sslmode=require&password=hunter2&application_name=x", "postgres://app@db/savepoint?sslmode=require&password=***&application_name=x"],
    ["postgres://db/savepoint?sslpassword=k&sslkey=/etc/key.pem", "postgres://db/savepoint?sslpassword=***&sslkey=***"],
    ["redis://cache:6379?token=abc&api_key=def&PassWord=ghi", "redis://cache:6379?token=***&api_key=***&PassWord=***"],
    // An encoded key is decoded before it is judged.
    ["postgres://db/x?pass%77ord=hunter2", "postgres://db/x?pass%77ord=***"],
    ["postgres://u:p@db/x?password=a&password=b#frag", "postgres://u:***@db/x?password=***&password=***#frag"],
  ])("masks secret query parameters of %s", (given, shown) => {
    expect(redactUrl(given)).toBe(shown);
  });

  it.each([
    "postgres://db/x?options=-c%20search_path%3Dapp&sslmode=verify-full",
    "http://localhost:6379",
    "HTTP://Example.COM:80/a/../b?x=1",
    "redis://cache?flag&x=",
  ])("keeps %s exactly as written", (given) => {
    expect(redactUrl(given)).toBe(given);
  });

  it.each([
    // Raw '/', '?' and '#' in a password make the URL unparseable; its text is masked all the same.
    ["postgres://app:pa/ss@db:5432/savepoint", "postgres://app:***@db:5432/savepoint"],
    ["postgres://app:pa?ss@db:5432/savepoint", "postgres://app:***@db:5432/savepoint"],
    ["postgres://app:pa#ss@w@db:5432/savepoint?password=x", "postgres://app:***@db:5432/savepoint?password=***"],
  ])("masks an unparseable URL from its text: %s", (given, shown) => {
    expect(redactUrl(given)).toBe(shown);
  });

  it("leaves a value that is no URL alone", () => {
    expect(redactUrl("not a url")).toBe("not a url");
  });

  it("hides the password when a malformed DATABASE_URL is reported at boot", () => {
    let message = "";
    try {
      parseEnv(databaseEnvSchema, { DATABASE_URL: "mysql://app:Le@k3dPart9@db/savepoint" });
    } catch (error) {
      message = (error as Error).message;
    }
    expect(message).toContain('DATABASE_URL: must be a postgres/postgresql URL');
    expect(message).toContain('got "mysql://app:***@db/savepoint"');
    expect(message).not.toContain("k3dPart9");
  });
});
