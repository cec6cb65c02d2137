/**
 * Headless Chromium (Debian's package) driven by playwright-core, for the tests that log in the way a
 * person does: on the IdP's own page. Every wait is Playwright's own (waitForURL, waitForRequest,
 * auto-waiting locators); nothing sleeps. Screenshots go to test-artifacts/ (git-ignored).
 */
import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { chromium, type Browser, type BrowserContext, type Cookie, type Page } from 'playwright-core';

export const CHROMIUM = process.env.CHROMIUM_BIN ?? '/usr/bin/chromium';
export const ARTIFACTS = join(process.cwd(), 'test-artifacts');
/** Chromium and the IdPs start slowly on a cold machine; Playwright gives up earlier, so a hang fails with its own message. */
export const SLOW = 90_000;
const PLAYWRIGHT_TIMEOUT = 20_000;
const PNG_SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);

export async function launchChromium(): Promise<Browser> {
  mkdirSync(ARTIFACTS, { recursive: true });
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    // We run as root (no sandbox); nothing but loopback is reachable, so no background traffic to Google.
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
}

/** A fresh browser profile: no cookies from other tests. */
export async function freshPage(browser: Browser): Promise<{ context: BrowserContext; page: Page }> {
  const context = await browser.newContext();
  context.setDefaultTimeout(PLAYWRIGHT_TIMEOUT);
  context.setDefaultNavigationTimeout(PLAYWRIGHT_TIMEOUT);
  return { context, page: await context.newPage() };
}

/** Every cookie of the context on 127.0.0.1, whatever its path (context.cookies(url) would filter by path). */
export async function loopbackCookies(context: BrowserContext): Promise<Cookie[]> {
  return (await context.cookies()).filter((c) => c.domain === '127.0.0.1');
}

/** The Cookie header the browser would send to 127.0.0.1 at path "/" (for requests made outside the browser). */
export async function cookieHeaderOf(context: BrowserContext, url: string): Promise<string> {
  return (await context.cookies(url)).map((c) => `${c.name}=${c.value}`).join('; ');
}

/** Saves a full-page screenshot and checks it is a real page (a PNG of a sensible size). */
export async function screenshot(page: Page, name: string): Promise<void> {
  const file = join(ARTIFACTS, name);
  await page.screenshot({ path: file, fullPage: true });
  const bytes = readFileSync(file);
  expect(bytes.length).toBeGreaterThan(1000);
  expect(bytes.subarray(0, 8).equals(PNG_SIGNATURE)).toBe(true);
  // IHDR: width and height of a real page, not an empty image.
  expect(bytes.readUInt32BE(16)).toBeGreaterThan(100);
  expect(bytes.readUInt32BE(20)).toBeGreaterThan(100);
}

/** Browser profiles opened by one test file, closed together at its end. */
export class Profiles {
  readonly #contexts: BrowserContext[] = [];

  constructor(private readonly browser: Browser) {}

  /** A fresh profile (no cookies from other tests) and a page in it. */
  async open(): Promise<{ context: BrowserContext; page: Page }> {
    const fresh = await freshPage(this.browser);
    this.#contexts.push(fresh.context);
    return fresh;
  }

  async closeAll(): Promise<void> {
    for (const context of this.#contexts.splice(0)) await context.close().catch(() => undefined);
  }
}

/** The names of oidc-authz's session cookies (`oidc_authz`, or its chunks `oidc_authz.N`) in a profile, sorted. */
export async function sessionCookieNames(context: BrowserContext, cookieName = 'oidc_authz'): Promise<string[]> {
  const pattern = new RegExp(`^${cookieName}(\\.\\d+)?$`);
  return (await loopbackCookies(context)).map((c) => c.name).filter((name) => pattern.test(name)).sort();
}
