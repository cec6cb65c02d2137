/**
 * Issue 13 in a real browser (Debian's Chromium through a real Envoy): a long return URL no longer
 * breaks the login (the transaction cookie stays under the browser's 4,096-byte limit), and the
 * `__Host-`/`__Secure-` cookie prefixes (session.cookiePrefixes) are kept by Chromium and stop a page
 * script from planting a second session cookie beside the user's.
 *
 * Every wait is Playwright's own (waitForURL, auto-waiting locators): no sleeps.
 */
import type { Browser, Page } from 'playwright-core';
import { launchChromium, loopbackCookies, Profiles, screenshot, SLOW } from '../support/chromium.js';
import { tempFile } from '../support/service.js';
import { startStack, type Stack } from '../support/stack.js';

let browser: Browser;
let profiles: Profiles;

beforeAll(async () => {
  browser = await launchChromium();
  profiles = new Profiles(browser);
}, SLOW);

afterAll(async () => {
  await profiles?.closeAll();
  await browser?.close();
}, SLOW);

async function signIn(stack: Stack, page: Page, username: string): Promise<void> {
  await page.waitForURL((url) => url.origin === stack.idp.url && url.pathname.startsWith('/dex/interaction/'));
  await page.getByLabel('Username').fill(username);
  await page.getByLabel('Password').fill(`${username}-pw`);
  await page.getByRole('button', { name: 'Sign in' }).click();
}

/** The user id the echo upstream received, from its JSON answer. */
const echoedUser = (body: string) => (JSON.parse(body) as { headers: Record<string, string> }).headers['kubeflow-userid'];

/** The user id the echo upstream shows on its page. */
const shownUser = (page: Page) => page.locator('#user').textContent();

describe('a long return URL (rd)', () => {
  let stack: Stack;
  beforeAll(async () => {
    stack = await startStack();
  }, SLOW);
  afterAll(() => stack?.stop(), SLOW);

  test.each([
    { what: 'a 1,500-character query comes back whole', length: 1_500, back: 'whole' as const },
    { what: 'a 3,000-character query (the login cookie would pass 4,096 bytes) comes back as its path', length: 3_000, back: 'path' as const },
  ])('$what, and the login completes in Chromium', async ({ length, back }) => {
    const { context, page } = await profiles.open();
    const path = `/notebooks/lab?state=${'q'.repeat(length)}`;
    await page.goto(`${stack.url}${path}`);
    // Chromium kept the transaction cookie (it drops one over 4,096 bytes): it is there while the user is at the IdP.
    await page.waitForURL((url) => url.origin === stack.idp.url);
    const kept = (await loopbackCookies(context)).filter((c) => c.name.startsWith('oidc_authz_login_'));
    expect(kept).toHaveLength(1);
    expect(kept[0]!.name.length + kept[0]!.value.length).toBeLessThan(4000);
    await signIn(stack, page, 'alice');
    const landing = back === 'whole' ? `${stack.url}${path}` : `${stack.url}/notebooks/lab`;
    await page.waitForURL(landing);
    expect(await shownUser(page)).toBe('alice@example.com');
    await screenshot(page, `long-rd-${length}.png`);
  }, SLOW);
});

describe('cookie prefixes (session.cookiePrefixes)', () => {
  let stack: Stack;
  beforeAll(async () => {
    // Secure cookies on http://127.0.0.1: Chromium treats loopback as a secure context.
    stack = await startStack({ session: { secretsFile: tempFile('prefixes-cookie-secret-0123456789abcdefghijklmnop'), secure: true, cookiePrefixes: true } });
  }, SLOW);
  afterAll(() => stack?.stop(), SLOW);

  test('Chromium keeps __Host-oidc_authz (Secure, Path=/, no Domain) and the __Secure- login cookie; the login completes', async () => {
    const { context, page } = await profiles.open();
    await page.goto(`${stack.url}/notebooks/`);
    await page.waitForURL((url) => url.origin === stack.idp.url);
    const during = await loopbackCookies(context);
    expect(during.filter((c) => c.name.startsWith('__Secure-oidc_authz_login_')).map((c) => [c.secure, c.path])).toEqual([[true, '/oauth2/callback']]);
    await signIn(stack, page, 'alice');
    await page.waitForURL(`${stack.url}/notebooks/`);
    expect(await shownUser(page)).toBe('alice@example.com');
    const session = (await loopbackCookies(context)).filter((c) => c.name.includes('oidc_authz'));
    expect(session.map((c) => ({ name: c.name, secure: c.secure, path: c.path, httpOnly: c.httpOnly }))).toEqual([
      { name: '__Host-oidc_authz', secure: true, path: '/', httpOnly: true },
    ]);
  }, SLOW);

  test("a page script cannot plant a second __Host- session for its own path; a plain-named one is not a session and never reaches the upstream", async () => {
    const { context, page } = await profiles.open();
    await page.goto(`${stack.url}/notebooks/`);
    await signIn(stack, page, 'alice');
    await page.waitForURL(`${stack.url}/notebooks/`);
    // What a script in Mallory's notebook can try on the shared origin.
    await page.evaluate("document.cookie = '__Host-oidc_authz=planted; Path=/notebooks/; Secure'");
    await page.evaluate("document.cookie = 'oidc_authz=planted; Path=/notebooks/'");
    const planted = (await loopbackCookies(context)).filter((c) => c.value === 'planted');
    // Chromium refuses the __Host- cookie (its Path is not /); the other one it keeps.
    expect(planted.map((c) => c.name)).toEqual(['oidc_authz']);
    const before = stack.echo.received.length;
    await page.reload();
    expect(await shownUser(page)).toBe('alice@example.com');
    const seen = stack.echo.received.slice(before).filter((r) => r.path.startsWith('/notebooks/'));
    expect(seen.length).toBeGreaterThan(0);
    for (const request of seen) expect(String(request.headers.cookie ?? '')).not.toContain('oidc_authz');
  }, SLOW);

  test("a page script hides Bob's __Host- session inside another cookie's value (after \",\"): never read, for a user with or without a session", async () => {
    const bob = await profiles.open();
    await bob.page.goto(`${stack.url}/notebooks/`);
    await signIn(stack, bob.page, 'bob');
    await bob.page.waitForURL(`${stack.url}/notebooks/`);
    const bobSession = (await loopbackCookies(bob.context)).find((c) => c.name === '__Host-oidc_authz')!.value;

    // Alice, signed in: the hidden session is neither read nor forwarded.
    const alice = await profiles.open();
    await alice.page.goto(`${stack.url}/notebooks/`);
    await signIn(stack, alice.page, 'alice');
    await alice.page.waitForURL(`${stack.url}/notebooks/`);
    await alice.page.evaluate(`document.cookie = 'prefs=x,__Host-oidc_authz=${bobSession}; Path=/'`);
    expect((await loopbackCookies(alice.context)).find((c) => c.name === 'prefs')?.value).toBe(`x,__Host-oidc_authz=${bobSession}`);
    const before = stack.echo.received.length;
    await alice.page.reload();
    expect(await shownUser(alice.page)).toBe('alice@example.com');
    for (const request of stack.echo.received.slice(before)) expect(String(request.headers.cookie ?? '')).not.toContain(bobSession.slice(0, 40));

    // A browser without a session of its own (the plant set on a shared machine): still nobody, never Bob.
    const stranger = await profiles.open();
    await stranger.page.goto(`${stack.url}/static/x`);
    await stranger.page.evaluate(`document.cookie = 'prefs=x,__Host-oidc_authz=${bobSession}; Path=/'`);
    const answer = await stranger.page.evaluate(async () => (await fetch('/notebooks/x', { headers: { accept: 'application/json' } })).status);
    expect(answer).toBe(401);
  }, SLOW);
});

describe('without cookie prefixes', () => {
  let stack: Stack;
  beforeAll(async () => {
    stack = await startStack();
  }, SLOW);
  afterAll(() => stack?.stop(), SLOW);

  test("Bob's session planted by a page script for a sub-path makes two sessions: refused once, the plant cleared, Alice stays Alice, never Bob", async () => {
    // Mallory's script plants a real session of another account (Bob's) beside Alice's, for /notebooks/.
    const bob = await profiles.open();
    await bob.page.goto(`${stack.url}/notebooks/`);
    await signIn(stack, bob.page, 'bob');
    await bob.page.waitForURL(`${stack.url}/notebooks/`);
    const bobSession = (await loopbackCookies(bob.context)).find((c) => c.name === 'oidc_authz')!.value;

    const { context, page } = await profiles.open();
    await page.goto(`${stack.url}/notebooks/`);
    await signIn(stack, page, 'alice');
    await page.waitForURL(`${stack.url}/notebooks/`);
    await page.evaluate(`document.cookie = 'oidc_authz=${bobSession}; Path=/notebooks/'`);
    expect((await loopbackCookies(context)).filter((c) => c.name === 'oidc_authz').map((c) => c.path).sort()).toEqual(['/', '/notebooks/']);
    const fetchJson = () => page.evaluate(async () => {
      const res = await fetch('/notebooks/x', { headers: { accept: 'application/json' } });
      return { status: res.status, body: await res.text() };
    });
    const answer = await fetchJson();
    expect(answer.status).toBe(401);
    expect(JSON.parse(answer.body)).toMatchObject({ reason: 'session_invalid' });
    // The plant is cleared with its own path; Alice's own cookie ("/", where only we set it) is kept.
    expect((await loopbackCookies(context)).filter((c) => c.name === 'oidc_authz').map((c) => c.path)).toEqual(['/']);
    const next = await fetchJson();
    expect(next.status).toBe(200);
    expect(echoedUser(next.body)).toBe('alice@example.com');
  }, SLOW);
});
