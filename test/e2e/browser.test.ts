/**
 * A real browser (Debian's Chromium, driven by playwright-core) through a real Envoy: open a protected
 * page, sign in at the dev IdP's form as a person would, land back on the page and read the identity the
 * upstream received; the cookies the browser keeps; sign-out through the IdP's RP-initiated logout; a
 * wrong password. Screenshots go to test-artifacts/ (git-ignored).
 *
 * Every wait is Playwright's own (waitForURL, waitForRequest, auto-waiting locators): no sleeps.
 */
import type { Browser, BrowserContext, Cookie, Page } from 'playwright-core';
import { DEV_IDP_NAME } from '../../demo/dev-idp.js';
import { freshPage as newProfile, launchChromium, loopbackCookies as stackCookies, screenshot, SLOW } from '../support/chromium.js';
import { STACK_CLIENT, startStack, type Stack } from '../support/stack.js';

const SESSION_COOKIE = 'oidc_authz';

let stack: Stack;
let browser: Browser;
let protectedUrl: string;
const contexts: BrowserContext[] = [];

beforeAll(async () => {
  stack = await startStack();
  protectedUrl = `${stack.url}/notebooks/?ns=team-a`;
  browser = await launchChromium();
}, SLOW);

afterAll(async () => {
  for (const context of contexts) await context.close().catch(() => undefined);
  await browser?.close();
  await stack?.stop();
}, SLOW);

/** A fresh browser profile: no cookies from other tests. */
async function freshPage(): Promise<{ context: BrowserContext; page: Page }> {
  const profile = await newProfile(browser);
  contexts.push(profile.context);
  return profile;
}

const onIdpLoginPage = (url: URL) => url.origin === stack.idp.url && url.pathname.startsWith('/dex/interaction/');

/** Waits for the IdP's login form and checks it is the one a person would recognise. */
async function expectIdpLoginPage(page: Page): Promise<void> {
  await page.waitForURL(onIdpLoginPage);
  await page.getByRole('heading', { level: 1, name: DEV_IDP_NAME }).waitFor();
  expect(await page.title()).toBe(`Sign in · ${DEV_IDP_NAME}`);
  expect(await page.getByText('Sign in to continue to').textContent()).toContain(STACK_CLIENT.clientId);
  expect(await page.getByLabel('Username').getAttribute('name')).toBe('username');
  expect(await page.getByLabel('Password').getAttribute('type')).toBe('password');
  expect(await page.getByRole('button', { name: 'Sign in' }).isEnabled()).toBe(true);
}

async function signIn(page: Page, username: string, password: string): Promise<void> {
  await page.getByLabel('Username').fill(username);
  await page.getByLabel('Password').fill(password);
  await page.getByRole('button', { name: 'Sign in' }).click();
}

/** Opens the protected page in `page`, signs in as alice and waits to be back on the page. */
async function logInAsAlice(page: Page): Promise<void> {
  await page.goto(protectedUrl);
  await expectIdpLoginPage(page);
  await signIn(page, 'alice', 'alice-pw');
  await page.waitForURL(protectedUrl);
}

const isSessionCookie = (c: Cookie) => c.name === SESSION_COOKIE || c.name.startsWith(`${SESSION_COOKIE}.`);
const isLoginCookie = (c: Cookie) => c.name.startsWith(`${SESSION_COOKIE}_login_`);

/**
 * What the upstream received for the protected page. (Chromium also fetches /favicon.ico on its own, at a
 * moment of its choosing; that path is anonymous in STACK_RULES, so it is left out.)
 */
const notebookRequests = () => stack.echo.received.filter((r) => r.path.startsWith('/notebooks/'));


test('opening a protected page asks the IdP for a login and lands back on the page as alice', async () => {
  const { page } = await freshPage();
  const seenBefore = notebookRequests().length;

  await page.goto(protectedUrl);
  await expectIdpLoginPage(page);
  // The upstream has not been reached by an anonymous browser.
  expect(notebookRequests().length).toBe(seenBefore);

  await signIn(page, 'alice', 'alice-pw');
  await page.waitForURL(protectedUrl);

  expect(await page.locator('#user').textContent()).toBe('alice@example.com');
  expect(await page.locator('#groups').textContent()).toBe('team-a,ml');
  expect(notebookRequests().at(-1)).toMatchObject({ path: '/notebooks/?ns=team-a', headers: { 'kubeflow-userid': 'alice@example.com' } });
  await screenshot(page, 'browser-login.png');
  await page.context().close();
}, SLOW);

test('the session cookie is HttpOnly, SameSite=Lax, Path=/ and the login transaction cookie is gone', async () => {
  const { context, page } = await freshPage();

  await page.goto(protectedUrl);
  await expectIdpLoginPage(page);
  // While the browser is at the IdP, it holds the transaction cookie, scoped to the callback.
  const during = await stackCookies(context);
  expect(during.filter(isLoginCookie)).toEqual([expect.objectContaining({ path: '/oauth2/callback', httpOnly: true, sameSite: 'Lax' })]);
  expect(during.filter(isSessionCookie)).toEqual([]);

  await signIn(page, 'alice', 'alice-pw');
  await page.waitForURL(protectedUrl);
  expect(await page.locator('#user').textContent()).toBe('alice@example.com');

  const after = await stackCookies(context);
  expect(after.filter(isSessionCookie)).toEqual([
    expect.objectContaining({ name: SESSION_COOKIE, httpOnly: true, sameSite: 'Lax', path: '/', secure: false }),
  ]);
  expect(after.filter(isLoginCookie)).toEqual([]);
  // Scripts on the page cannot read the session (they do see the upstream's own, non-HttpOnly cookie).
  const scriptCookies = await page.evaluate<string>('document.cookie');
  expect(scriptCookies).toContain('upstream_cookie=1');
  expect(scriptCookies).not.toContain(`${SESSION_COOKIE}=`);
  await context.close();
}, SLOW);

test('Sign out goes through the IdP logout to the signed-out page; signing in again asks for a login', async () => {
  const { context, page } = await freshPage();
  await logInAsAlice(page);
  expect(await page.locator('#user').textContent()).toBe('alice@example.com');

  // The post-logout redirect: a navigation to our signed-out page coming straight from the IdP's end-session.
  const signedOutUrl = `${stack.url}/oauth2/signed_out`;
  const landed = page.waitForRequest((r) => r.isNavigationRequest() && r.url() === signedOutUrl);
  await page.getByRole('link', { name: 'Sign out' }).click();
  const landing = await landed;
  // The IdP's confirmation form submitted itself (POST …/session/end/confirm), which redirected to us.
  const confirm = landing.redirectedFrom();
  expect(confirm?.url()).toBe(`${stack.idp.issuer}/session/end/confirm`);
  expect(confirm?.method()).toBe('POST');

  // The landing is a page of ours, not a protected one (which would bounce straight back to the IdP).
  await page.waitForURL(signedOutUrl);
  await page.getByRole('heading', { level: 1, name: 'You are signed out' }).waitFor();
  expect((await stackCookies(context)).filter(isSessionCookie)).toEqual([]);
  await screenshot(page, 'browser-signed-out.png');

  // "Sign in again" starts a login, and the IdP shows its form: its session ended too, otherwise it
  // would sign alice straight back in.
  const seenBefore = notebookRequests().length;
  await page.getByRole('link', { name: 'Sign in again' }).click();
  await expectIdpLoginPage(page);
  await page.goto(protectedUrl);
  await expectIdpLoginPage(page);
  expect(notebookRequests().length).toBe(seenBefore);
  await context.close();
}, SLOW);

test('a wrong password shows the IdP error and leaves no session cookie', async () => {
  const { context, page } = await freshPage();
  const seenBefore = notebookRequests().length;
  await page.goto(protectedUrl);
  await expectIdpLoginPage(page);

  const answer = page.waitForResponse((r) => r.request().method() === 'POST' && onIdpLoginPage(new URL(r.url())));
  await signIn(page, 'alice', 'not-her-password');
  expect((await answer).status()).toBe(401);

  expect(await page.getByRole('alert').textContent()).toBe('Invalid username or password.');
  expect(onIdpLoginPage(new URL(page.url()))).toBe(true);
  expect(await page.getByLabel('Username').inputValue()).toBe('alice');
  expect(await page.getByLabel('Password').inputValue()).toBe('');
  expect((await stackCookies(context)).filter(isSessionCookie)).toEqual([]);
  expect(notebookRequests().length).toBe(seenBefore);
  await context.close();
}, SLOW);
