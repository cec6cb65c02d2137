/**
 * Without publicUrl, the public origin is each request's own (scheme from x-forwarded-proto when trusted,
 * Host on allowedHosts): Kubeflow is reached at http://localhost:8080 through a port-forward as often as
 * at https://kubeflow.example.com. Against a real OpenID Provider (oidc-provider, demo/dev-idp.ts), with
 * the test browser playing Envoy's part for checks.
 */
import { startDevIdp, type DevIdp } from '../../demo/dev-idp.js';
import type { ConfigInput } from '../../src/config/schema.js';
import { Browser } from '../support/browser.js';
import { freePort, startService, tempFile, TestClock, type RunningService } from '../support/service.js';

const CLIENT = { clientId: 'kubeflow-oidc-authservice', clientSecret: 'public-origin-client-secret' };
let idp: DevIdp;
let svc: RunningService;
let port: number;

/** The service as Kubeflow's overlay runs it: no publicUrl, the hosts a browser may use, cookies Secure on https only. */
function config(overrides: Partial<ConfigInput> = {}, oidc: Partial<NonNullable<ConfigInput['oidc']>> = {}): ConfigInput {
  return {
    listen: { port },
    trustForwardedProto: true,
    allowedHosts: ['localhost:*', '127.0.0.1:*', 'kubeflow.example.com'],
    oidc: { issuer: idp.issuer, clientId: CLIENT.clientId, clientSecretFile: tempFile(CLIENT.clientSecret), ...oidc },
    session: { secretsFile: tempFile('public-origin-cookie-secret-0123456789abcdef'), secure: 'auto' },
    rules: [{ name: 'all', paths: ['/**'], allow: 'authenticated' }],
    ...overrides,
  };
}

beforeAll(async () => {
  port = await freePort();
  idp = await startDevIdp({
    issuerPath: '/dex',
    users: { alice: { password: 'alice-pw', email: 'alice@example.com', groups: ['team-a'] } },
    clients: [{
      ...CLIENT,
      redirectUris: [`http://localhost:${port}/oauth2/callback`, `http://127.0.0.1:${port}/oauth2/callback`, 'https://kubeflow.example.com/oauth2/callback'],
      postLogoutRedirectUris: [`http://localhost:${port}/oauth2/signed_out`],
    }],
    log: () => undefined,
  });
  svc = await startService(config());
});

afterAll(async () => {
  await svc.close();
  await idp.stop();
});

/** What Envoy sends for a browser's page load of `path` at `host` (over `proto`). */
const pageLoad = (browser: Browser, host: string, path: string, proto = 'http') =>
  browser.get(`http://127.0.0.1:${port}/authz${path}`, { host, accept: 'text/html', 'sec-fetch-mode': 'navigate', 'x-forwarded-proto': proto });

describe('the public origin comes from the request', () => {
  test.each([
    { what: 'http://localhost:<port>', host: () => `localhost:${port}`, proto: 'http', origin: () => `http://localhost:${port}` },
    { what: 'http://127.0.0.1:<port>', host: () => `127.0.0.1:${port}`, proto: 'http', origin: () => `http://127.0.0.1:${port}` },
    { what: 'https://kubeflow.example.com', host: () => 'kubeflow.example.com', proto: 'https', origin: () => 'https://kubeflow.example.com' },
  ])('a page load at $what is sent to log in on that origin', async ({ host, proto, origin }) => {
    const res = await pageLoad(new Browser(), host(), '/jupyter/', proto);
    expect(res.status).toBe(302);
    expect(res.location).toBe(`${origin()}/oauth2/start?rd=${encodeURIComponent(`${origin()}/jupyter/`)}`);
  });

  test.each([
    { host: 'evil.example.com', reason: 'host_not_allowed' },
    { host: 'kubeflow.example.com.evil.example', reason: 'host_not_allowed' },
    { host: 'kubeflow.example.com:8443', reason: 'host_not_allowed' },
    { host: 'user@localhost', reason: 'bad_host' },
    { host: 'localhost/x', reason: 'bad_host' },
  ])(
    'a host not on allowedHosts ($host) gets 400 $reason, never a redirect to it',
    async ({ host, reason }) => {
      const res = await pageLoad(new Browser(), host, '/jupyter/');
      expect(res.status).toBe(400);
      expect(JSON.parse(res.body)).toEqual({ error: 'bad_request', reason });
      expect(res.location).toBeUndefined();
      const start = await new Browser().get(`http://127.0.0.1:${port}/oauth2/start?rd=/`, { host });
      expect(start.status).toBe(400);
      expect(start.body).toContain('Unknown host');
    },
  );

  test('x-forwarded-proto counts only when trusted', async () => {
    const untrusting = await startService({ ...config({ listen: { port: 0 }, trustForwardedProto: false }), session: { secretsFile: tempFile('public-origin-cookie-secret-0123456789abcdef'), secure: false } });
    try {
      const res = await new Browser().get(`${untrusting.url}/authz/jupyter/`, { host: 'kubeflow.example.com', accept: 'text/html', 'sec-fetch-mode': 'navigate', 'x-forwarded-proto': 'https' });
      expect(res.location).toBe(`http://kubeflow.example.com/oauth2/start?rd=${encodeURIComponent('http://kubeflow.example.com/jupyter/')}`);
    } finally {
      await untrusting.close();
    }
  });
});

describe('a whole login on http://localhost (Kubeflow\'s port-forward)', () => {
  test('redirect_uri on the request\'s origin; cookies without Secure over http ("auto"); back on the page', async () => {
    const browser = new Browser();
    const host = `localhost:${port}`;
    const first = await pageLoad(browser, host, '/jupyter/');
    const start = await browser.get(first.location!.replace(`http://${host}`, `http://127.0.0.1:${port}`), { host });
    expect(start.status).toBe(302);
    expect(new URL(start.location!).searchParams.get('redirect_uri')).toBe(`http://${host}/oauth2/callback`);
    expect(start.headers.getSetCookie().every((c) => !/;\s*Secure/i.test(c))).toBe(true);
    const callbackUrl = new URL(await browser.loginAtIdp(start.location!, 'alice', 'alice-pw'));
    expect(callbackUrl.origin).toBe(`http://${host}`);
    // The browser's cookie jar is keyed by 127.0.0.1: carry the transaction cookie the way a browser at localhost would.
    const txCookie = start.headers.getSetCookie()[0]!.split(';', 1)[0]!;
    const callback = await browser.get(`http://127.0.0.1:${port}${callbackUrl.pathname}${callbackUrl.search}`, { host, cookie: txCookie });
    expect(callback.status).toBe(302);
    expect(callback.location).toBe(`http://${host}/jupyter/`);
    const session = callback.headers.getSetCookie().find((c) => c.startsWith('oidc_authz='))!;
    expect(session).not.toMatch(/;\s*Secure/i);
    const allowed = await browser.get(`http://127.0.0.1:${port}/authz/jupyter/`, { host, cookie: session.split(';', 1)[0]!, accept: 'application/json' });
    expect(allowed.status).toBe(200);
    expect(allowed.headers.get('kubeflow-userid')).toBe('alice@example.com');
  });

  test('the same login over https (x-forwarded-proto) sets Secure cookies: the transaction\'s and the session\'s', async () => {
    const browser = new Browser();
    const https = { host: 'kubeflow.example.com', 'x-forwarded-proto': 'https' };
    const start = await browser.get(`http://127.0.0.1:${port}/oauth2/start?rd=/jupyter/`, https);
    expect(new URL(start.location!).searchParams.get('redirect_uri')).toBe('https://kubeflow.example.com/oauth2/callback');
    const txCookie = start.headers.getSetCookie()[0]!;
    expect(txCookie).toMatch(/;\s*Secure/i);
    const callbackUrl = new URL(await browser.loginAtIdp(start.location!, 'alice', 'alice-pw'));
    const callback = await browser.get(`http://127.0.0.1:${port}${callbackUrl.pathname}${callbackUrl.search}`, { ...https, cookie: txCookie.split(';', 1)[0]! });
    expect(callback.location).toBe('https://kubeflow.example.com/jupyter/');
    expect(callback.headers.getSetCookie().find((c) => c.startsWith('oidc_authz='))).toMatch(/;\s*Secure/i);
  });
});

describe('session.secure "auto" on refreshes in a check', () => {
  const clock = new TestClock();
  afterEach(() => {
    clock.offsetMs = 0;
  });

  /** A session as a login over `origin` left it, then a check past its expiry with the gateway's x-forwarded-proto. */
  async function refreshedCookie(service: RunningService, host: string, loginProto: string, checkProto: string): Promise<string> {
    const browser = new Browser();
    const start = await browser.get(`${service.url}/oauth2/start?rd=/x`, { host, 'x-forwarded-proto': loginProto });
    const txCookie = start.headers.getSetCookie()[0]!.split(';', 1)[0]!;
    const callbackUrl = new URL(await browser.loginAtIdp(start.location!, 'alice', 'alice-pw'));
    const callback = await browser.get(`${service.url}${callbackUrl.pathname}${callbackUrl.search}`, { host, 'x-forwarded-proto': loginProto, cookie: txCookie });
    const session = callback.headers.getSetCookie().find((c) => c.startsWith('oidc_authz='))!.split(';', 1)[0]!;
    clock.advance(2 * 3600_000);
    const check = await browser.get(`${service.url}/authz/x`, { host, cookie: session, accept: 'application/json', 'x-forwarded-proto': checkProto });
    expect(check.status).toBe(200);
    return check.headers.getSetCookie().find((c) => c.startsWith('oidc_authz='))!;
  }

  test('with publicUrl https, a refresh keeps Secure even when the gateway says http (TLS ended at a load balancer)', async () => {
    await svc.close();
    const fixed = await startService(config({ publicUrl: 'https://kubeflow.example.com' }), { now: clock.now });
    try {
      expect(await refreshedCookie(fixed, 'kubeflow.example.com', 'https', 'http')).toMatch(/;\s*Secure/i);
    } finally {
      await fixed.close();
      svc = await startService(config());
    }
  });

  test('without publicUrl, Secure follows the request\'s own scheme: https → Secure, the port-forward\'s http → not', async () => {
    await svc.close();
    const derived = await startService(config(), { now: clock.now });
    try {
      expect(await refreshedCookie(derived, 'kubeflow.example.com', 'https', 'https')).toMatch(/;\s*Secure/i);
      expect(await refreshedCookie(derived, `localhost:${port}`, 'http', 'http')).not.toMatch(/;\s*Secure/i);
    } finally {
      await derived.close();
      svc = await startService(config());
    }
  });
});

describe('after login and sign-out', () => {
  test('oidc.afterLoginUrl: the callback lands there first, with ?next=<the page asked for>', async () => {
    await svc.close();
    const other = await startService(config({}, { afterLoginUrl: '/welcome' }));
    try {
      const browser = new Browser();
      const host = `127.0.0.1:${port}`;
      const first = await pageLoad(browser, host, '/pipelines/?ns=team-a');
      const start = await browser.follow(first);
      const callback = await browser.get(await browser.loginAtIdp(start.location!, 'alice', 'alice-pw'));
      expect(callback.status).toBe(302);
      expect(callback.location).toBe(`http://${host}/welcome?next=${encodeURIComponent('/pipelines/?ns=team-a')}`);
    } finally {
      await other.close();
      svc = await startService(config());
    }
  });

  test.each([
    { method: 'GET', path: '/oauth2/sign_out', status: 302 },
    { method: 'POST', path: '/oauth2/sign_out', status: 302 },
    { method: 'GET', path: '/authservice/logout', status: 302 },
    { method: 'POST', path: '/authservice/logout', status: 201 },
  ])('$method $path ends the session ($status)', async ({ method, path, status }) => {
    const browser = new Browser();
    const host = `localhost:${port}`;
    const first = await pageLoad(browser, `127.0.0.1:${port}`, '/x');
    const callback = await browser.get(await browser.loginAtIdp((await browser.follow(first)).location!, 'alice', 'alice-pw'));
    expect(callback.status).toBe(302);
    const cookie = browser.jar.header(`http://127.0.0.1:${port}/`)!;
    const res = await browser.request(method, `http://127.0.0.1:${port}${path}`, { headers: { host, cookie } });
    expect(res.status).toBe(status);
    expect(res.headers.getSetCookie().some((c) => /^oidc_authz=;/.test(c))).toBe(true);
    // The landing is on the request's origin: the IdP's end-session, then our signed-out page there.
    let target = res.location!;
    if (status === 201) {
      // The JSON names our end-session hop on the same origin; the ID token waits there in a cookie.
      const afterLogoutURL = (JSON.parse(res.body) as { afterLogoutURL: string }).afterLogoutURL;
      expect(afterLogoutURL).toBe(`http://${host}/oauth2/end_session`);
      const handover = browser.jar.header(`http://127.0.0.1:${port}/oauth2/end_session`)!;
      const hop = await browser.request('GET', `http://127.0.0.1:${port}/oauth2/end_session`, { headers: { host, cookie: handover } });
      expect(hop.status).toBe(302);
      target = hop.location!;
    }
    expect(new URL(target).searchParams.get('post_logout_redirect_uri')).toBe(`http://${host}/oauth2/signed_out`);
  });
});
