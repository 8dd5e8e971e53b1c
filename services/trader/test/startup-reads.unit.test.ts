import { recordingLogger } from "@savepoint/shared/testing";
import { describe, expect, it } from "vitest";
import { BrokerReadError } from "../src/broker/errors.js";
import { readAtStartup, StartupError } from "../src/trader.js";

const OPERATION = "GET /v2/account";
/** A read the broker's rate limit refuses, its reset a moment away. */
const captureLogger = () => recordingLogger<{ msg: string; event?: string }>();
const rateLimited = () => new BrokerReadError(OPERATION, "rate limited (HTTP 429)", 429, new Date(Date.now() + 20));

describe("a broker read the trader cannot start without", () => {
  it("waits for the rate limit's reset, saying so, and reads again", async () => {
    const { logger, lines } = captureLogger();
    let sent = 0;
    const answer = await readAtStartup("read the broker account", async () => (++sent < 3 ? Promise.reject(rateLimited()) : "account"), logger);
    expect(answer).toBe("account");
    expect(lines.filter((line) => line.event === "rate_limited_at_start")).toHaveLength(2);
  });

  it("fails in one line saying the rate limit still refuses and what to do, after three waits", async () => {
    const { logger } = captureLogger();
    let sent = 0;
    const failed = readAtStartup("read the broker account", () => (sent++, Promise.reject(rateLimited())), logger);
    await expect(failed).rejects.toThrow(StartupError);
    await expect(failed).rejects.toThrow(
      /^cannot read the broker account: the broker's rate limit \(HTTP 429\) still refuses requests after 3 waits for its reset, now until \S+Z\. Something else uses these API keys' requests \(Alpaca allows 200 a minute per key\), or BROKER_REQUESTS_PER_MINUTE is above the account's limit: stop the other client or lower it, then start again\.$/,
    );
    expect(sent).toBe(4);
  });

  it("fails at once on any other failure, with the advice given", async () => {
    const { logger } = captureLogger();
    const failed = readAtStartup("read the broker account", () => Promise.reject(new BrokerReadError(OPERATION, "HTTP 401: unauthorized", 401)), logger, "Check the API keys.");
    await expect(failed).rejects.toThrow(new StartupError("cannot read the broker account: GET /v2/account failed: HTTP 401: unauthorized. Check the API keys."));
  });
});
