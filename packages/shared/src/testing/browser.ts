import { existsSync, mkdirSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { chromium, type BrowserContext, type Page } from "playwright-core";

/** Debian's chromium, which CI installs (.ci/run); playwright-core drives it, downloading no browser of its own. */
const CHROMIUM = "/usr/bin/chromium";
/** test-artifacts/ at the repository's root, where browser tests leave their screenshots. */
const ARTIFACTS = fileURLToPath(new URL("../../../../test-artifacts/", import.meta.url));

export interface HeadlessBrowser {
  context: BrowserContext;
  /** Closes the browser and removes its throwaway profile. */
  close(): Promise<void>;
}

/**
 * Headless Chromium on a profile of its own (removed on close), for the tests that look at a service's pages
 * as a person would (Bull Board, the console).
 */
export async function launchHeadlessChromium(options: { viewport: { width: number; height: number }; httpCredentials?: { username: string; password: string } }): Promise<HeadlessBrowser> {
  if (!existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} not found: install Debian's chromium (apt-get install chromium); .ci/run does`);
  const profile = await mkdtemp(join(tmpdir(), "savepoint-chromium-"));
  try {
    const context = await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM,
      args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
      ...options,
    });
    return {
      context,
      close: async () => {
        await context.close();
        await rm(profile, { recursive: true, force: true });
      },
    };
  } catch (error) {
    await rm(profile, { recursive: true, force: true });
    throw error;
  }
}

/** A screenshot of `page` (the whole page unless told) into test-artifacts/ as `name`, for a person to look at after the run. */
export async function saveScreenshot(page: Page, name: string, { fullPage = true } = {}): Promise<void> {
  mkdirSync(ARTIFACTS, { recursive: true });
  await page.screenshot({ path: join(ARTIFACTS, name), fullPage });
}

/**
 * Opens `url` without credentials and fails unless the service asked for them: a 401 whose WWW-Authenticate
 * names `realm` (Chromium then fails the navigation with ERR_INVALID_AUTH_CREDENTIALS).
 */
export async function expectBasicAuthChallenge(page: Page, url: string, realm: string): Promise<void> {
  const challenge = page.waitForResponse(url);
  const opened = await page.goto(url).then(
    () => true,
    (error: Error) => {
      if (!/ERR_INVALID_AUTH_CREDENTIALS/.test(error.message)) throw error;
      return false;
    },
  );
  const response = await challenge;
  const asked = response.headers()["www-authenticate"] ?? "";
  if (opened || response.status() !== 401 || !asked.startsWith(`Basic realm="${realm}"`)) {
    throw new Error(`${url} without credentials: expected a 401 asking for realm "${realm}", got ${response.status()} (WWW-Authenticate: ${asked || "none"})`);
  }
}
