/**
 * A real browser (Debian's Chromium, driven by playwright-core) through Envoy: open a protected page,
 * log in at the IdP's form, land back on the page and read the identity the upstream received.
 * Screenshots go to test-artifacts/.
 */
import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { chromium, type Browser as Chromium } from 'playwright-core';
import { startStack, type Stack } from '../support/stack.js';

const CHROMIUM = process.env.CHROMIUM_BIN ?? '/usr/bin/chromium';
const ARTIFACTS = join(process.cwd(), 'test-artifacts');
const PNG_SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);

/** Chromium starts slowly on this machine. */
const SLOW = 60_000;

let stack: Stack;
let browser: Chromium;

beforeAll(async () => {
  mkdirSync(ARTIFACTS, { recursive: true });
  stack = await startStack();
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    // As root, without a sandbox; no background traffic (this machine has no network beyond loopback).
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
}, SLOW);

afterAll(async () => {
  await browser?.close();
  await stack?.stop();
});

function expectPng(file: string): void {
  const bytes = readFileSync(file);
  expect(bytes.length).toBeGreaterThan(1000);
  expect(bytes.subarray(0, 8).equals(PNG_SIGNATURE)).toBe(true);
}

test('log in through Envoy and see the identity the upstream received; sign out', async () => {
  const context = await browser.newContext();
  const page = await context.newPage();
  const protectedUrl = `${stack.url}/notebooks/?ns=team-a`;

  await page.goto(protectedUrl);
  await page.waitForURL((url) => url.href.startsWith(stack.idp.url) && url.pathname.includes('/interaction/'));
  await expect(page.getByRole('heading').first().textContent()).resolves.toBeTruthy();
  await page.getByLabel(/user ?name/i).fill('alice');
  await page.getByLabel(/password/i).fill('alice-pw');
  await page.getByRole('button', { name: /sign in|log in|continue/i }).click();

  await page.waitForURL(protectedUrl);
  await expect(page.locator('#user').textContent()).resolves.toBe('alice@example.com');
  await expect(page.locator('#groups').textContent()).resolves.toBe('team-a,ml');
  const loggedIn = join(ARTIFACTS, 'browser-login.png');
  await page.screenshot({ path: loggedIn, fullPage: true });
  expectPng(loggedIn);

  const cookies = await context.cookies(stack.url);
  const session = cookies.find((c) => c.name === 'oidc_authz');
  expect(session).toMatchObject({ httpOnly: true, sameSite: 'Lax', path: '/' });
  expect(cookies.some((c) => c.name.includes('_login_'))).toBe(false);

  // Sign-out: the IdP's end-session (its confirmation submits itself), back to afterLogoutUrl (our "/"),
  // which is protected, so the browser ends on the IdP's login form again.
  const navigations: string[] = [];
  page.on('framenavigated', (frame) => {
    if (frame === page.mainFrame()) navigations.push(frame.url());
  });
  await page.getByRole('link', { name: 'Sign out' }).click();
  await page.waitForURL((url) => url.href.startsWith(stack.idp.url) && url.pathname.includes('/interaction/'));
  expect(navigations.some((url) => url.startsWith(`${stack.idp.issuer}/session/end`))).toBe(true);
  expect(await context.cookies(stack.url)).not.toContainEqual(expect.objectContaining({ name: 'oidc_authz' }));
  await expect(page.getByLabel(/password/i).count()).resolves.toBe(1);
  const signedOut = join(ARTIFACTS, 'browser-signed-out.png');
  await page.screenshot({ path: signedOut, fullPage: true });
  expectPng(signedOut);
  await context.close();
}, SLOW);

test('a wrong password shows the IdP error and leaves no session', async () => {
  const context = await browser.newContext();
  const page = await context.newPage();
  await page.goto(`${stack.url}/notebooks/`);
  await page.waitForURL((url) => url.href.startsWith(stack.idp.url));
  await page.getByLabel(/user ?name/i).fill('alice');
  await page.getByLabel(/password/i).fill('not-her-password');
  await page.getByRole('button', { name: /sign in|log in|continue/i }).click();
  await expect(page.getByText(/invalid|wrong|incorrect/i).first().isVisible()).resolves.toBe(true);
  expect(page.url().startsWith(stack.idp.url)).toBe(true);
  expect((await context.cookies(stack.url)).some((c) => c.name.startsWith('oidc_authz') && !c.name.includes('_login_'))).toBe(false);
  await context.close();
}, SLOW);
