/**
 * Browser login against a real OpenID Provider (oidc-provider, demo/dev-idp.ts) on 127.0.0.1, driven
 * over HTTP with a cookie jar. The test browser plays Envoy's part for checks: it calls
 * /authz/<path> with the page's headers and cookies, as Envoy does for every request.
 */
import { startDevIdp, type DevIdp } from '../../demo/dev-idp.js';
import type { ConfigInput } from '../../src/config/schema.js';
import { Browser, type Page } from '../support/browser.js';
import { freePort, startService, tempFile, TestClock, type RunningService } from '../support/service.js';

const SECRET_A = 'a'.repeat(20) + '-first-cookie-secret-0123456789';
const SECRET_B = 'b'.repeat(20) + '-second-cookie-secret-987654321';
const CLIENT = { clientId: 'kubeflow', clientSecret: 'client-secret-for-tests' };
const manyGroups = Array.from({ length: 400 }, (_, i) => `team-with-a-long-descriptive-name-${String(i).padStart(3, '0')}`);

let idp: DevIdp;
let port: number;
let publicUrl: string;

beforeAll(async () => {
  port = await freePort();
  publicUrl = `http://127.0.0.1:${port}`;
  idp = await startDevIdp({
    issuerPath: '/dex',
    users: {
      alice: { password: 'alice-pw', email: 'alice@example.com', groups: ['team-a', 'ml'], name: 'Alice' },
      bob: { password: 'bob-pw', email: 'bob@example.com', groups: ['team-b'] },
      big: { password: 'big-pw', email: 'big@example.com', groups: manyGroups },
      unverified: { password: 'u-pw', email: 'u@example.com', emailVerified: false, groups: [] },
    },
    clients: [
      { ...CLIENT, redirectUris: [`${publicUrl}/oauth2/callback`], postLogoutRedirectUris: [`${publicUrl}/`, `${publicUrl}/goodbye`] },
      { clientId: 'public-spa', redirectUris: [`${publicUrl}/oauth2/callback`], postLogoutRedirectUris: [`${publicUrl}/`] },
    ],
    log: () => undefined,
  });
});

afterAll(async () => {
  await idp.stop();
});

function loginConfig(overrides: Partial<ConfigInput> = {}, secrets = [SECRET_A]): ConfigInput {
  return {
    listen: { port },
    publicUrl,
    oidc: { issuer: idp.issuer, clientId: CLIENT.clientId, clientSecretFile: tempFile(CLIENT.clientSecret), afterLogoutUrl: `${publicUrl}/goodbye` },
    session: { secretsFile: tempFile(secrets.join('\n')), secure: false, maxAge: '12h' },
    redirectAllowList: ['kubeflow.example.com'],
    rules: [
      { name: 'static', paths: ['/static/**'], allow: 'anonymous' },
      { name: 'team-a', paths: ['/team-a/**'], allow: { groups: ['team-a'] } },
      { name: 'everything', paths: ['/**'], allow: 'authenticated' },
    ],
    ...overrides,
  };
}

/**
 * What Envoy would send for a browser's page load of `path` on the public host. (Node's fetch sends
 * `sec-fetch-mode: cors` on its own; a browser's page load says `navigate`.)
 */
function check(browser: Browser, path: string, headers: Record<string, string> = {}): Promise<Page> {
  const mode = headers.accept?.includes('text/html') === false || headers['x-requested-with'] ? 'cors' : 'navigate';
  return browser.get(`${publicUrl}/authz${path}`, { host: `127.0.0.1:${port}`, 'sec-fetch-mode': mode, ...headers });
}

async function login(browser: Browser, username: string, password: string, path = '/pipelines/?ns=a'): Promise<Page> {
  const first = await check(browser, path);
  expect(first.status).toBe(302);
  const callback = await browser.loginAtIdp(first.location!, username, password);
  return browser.get(callback);
}

const sessionCookies = (browser: Browser) => browser.jar.list(publicUrl).filter((c) => /^oidc_authz(\.\d+)?$/.test(c.name));

describe('the whole flow', () => {
  let svc: RunningService;
  beforeAll(async () => {
    svc = await startService(loginConfig());
  });
  afterAll(() => svc.close());

  test('check → 302 → start → IdP → callback → cookie → 200 → userinfo → sign-out → 302', async () => {
    const browser = new Browser();
    const first = await check(browser, '/pipelines/?ns=a');
    expect(first.status).toBe(302);
    expect(first.location).toBe(`${publicUrl}/oauth2/start?rd=${encodeURIComponent(`http://127.0.0.1:${port}/pipelines/?ns=a`)}`);
    expect(first.headers.get('cache-control')).toBe('no-store');

    const start = await browser.follow(first);
    expect(start.status).toBe(302);
    const authorize = new URL(start.location!);
    expect(authorize.origin + authorize.pathname).toMatch(new RegExp(`^${idp.issuer}/`));
    expect(authorize.searchParams.get('code_challenge_method')).toBe('S256');
    expect(authorize.searchParams.get('state')).toBeTruthy();
    expect(authorize.searchParams.get('nonce')).toBeTruthy();
    expect(authorize.searchParams.get('redirect_uri')).toBe(`${publicUrl}/oauth2/callback`);
    const tx = browser.jar.list(publicUrl).find((c) => c.name.includes('_login_'));
    expect(tx).toMatchObject({ path: '/oauth2/callback', httpOnly: true, sameSite: expect.stringMatching(/^lax$/i) });

    const callbackUrl = await browser.loginAtIdp(start.location!, 'alice', 'alice-pw');
    const callback = await browser.get(callbackUrl);
    expect(callback.status).toBe(302);
    expect(callback.location).toBe(`http://127.0.0.1:${port}/pipelines/?ns=a`);
    expect(browser.jar.list(publicUrl).some((c) => c.name.includes('_login_'))).toBe(false);
    const [cookie] = sessionCookies(browser);
    expect(cookie).toMatchObject({ name: 'oidc_authz', path: '/', httpOnly: true, sameSite: expect.stringMatching(/^lax$/i) });

    const allowed = await check(browser, '/pipelines/?ns=a');
    expect(allowed.status).toBe(200);
    expect(allowed.headers.get('kubeflow-userid')).toBe('alice@example.com');
    expect(allowed.headers.get('kubeflow-groups')).toBe('team-a,ml');

    const userinfo = await browser.get(`${publicUrl}/oauth2/userinfo`);
    expect(userinfo.status).toBe(200);
    expect(JSON.parse(userinfo.body)).toMatchObject({ user: 'alice@example.com', email: 'alice@example.com', groups: ['team-a', 'ml'], name: 'Alice', iss: idp.issuer });

    const signOut = await browser.get(`${publicUrl}/oauth2/sign_out`);
    expect(signOut.status).toBe(302);
    const endSession = new URL(signOut.location!);
    expect(endSession.href.startsWith(idp.issuer)).toBe(true);
    expect(endSession.searchParams.get('id_token_hint')).toBeTruthy();
    expect(endSession.searchParams.get('post_logout_redirect_uri')).toBe(`${publicUrl}/goodbye`);
    expect(sessionCookies(browser)).toEqual([]);
    // oidc-provider asks to confirm the logout (a form a real browser submits by script).
    const confirm = await browser.follow(signOut);
    const landed = await browser.submitForm(confirm);
    expect(landed.location).toBe(`${publicUrl}/goodbye`);

    const after = await check(browser, '/pipelines/');
    expect(after.status).toBe(302);
    const userinfoAfter = await browser.get(`${publicUrl}/oauth2/userinfo`);
    expect(userinfoAfter.status).toBe(401);
  });

  test('the session goes through the rules like a bearer token', async () => {
    const browser = new Browser();
    await login(browser, 'bob', 'bob-pw');
    const denied = await check(browser, '/team-a/x', { accept: 'application/json' });
    expect(denied.status).toBe(403);
    expect(JSON.parse(denied.body)).toMatchObject({ rule: 'team-a', requirement: 'groups' });
    // A page load gets a page: who is signed in, which rule said no, and a way to switch accounts.
    const page = await check(browser, '/team-a/x');
    expect(page.status).toBe(403);
    expect(page.headers.get('content-type')).toBe('text/html; charset=utf-8');
    expect(page.headers.get('content-security-policy')).toContain("default-src 'none'");
    expect(page.body).toContain('<strong>bob@example.com</strong>');
    expect(page.body).toContain('<code>team-a</code>');
    expect(page.body).toContain(`href="/oauth2/sign_out"`);
    const xhr = await check(browser, '/api/v1/x', { accept: 'application/json', 'x-requested-with': 'XMLHttpRequest' });
    expect(xhr.status).toBe(200);
    expect(xhr.headers.get('kubeflow-userid')).toBe('bob@example.com');
  });

  test('API, XHR and non-GET requests without a session get 401, not a redirect', async () => {
    const browser = new Browser();
    const variants: Array<Record<string, string>> = [{ accept: 'application/json' }, { 'x-requested-with': 'XMLHttpRequest' }, { 'sec-fetch-mode': 'cors' }];
    for (const headers of variants) {
      const res = await check(browser, '/pipelines/', headers);
      expect(res.status).toBe(401);
    }
    const post = await browser.post(`${publicUrl}/authz/pipelines/`, 'x=1', { host: `127.0.0.1:${port}` });
    expect(post.status).toBe(401);
  });

  test('Kubeflow logout: POST /authservice/logout → 201 with afterLogoutURL, cookies cleared; no ID token handed to the page script', async () => {
    const browser = new Browser();
    await login(browser, 'alice', 'alice-pw');
    const res = await browser.post(`${publicUrl}/authservice/logout`, '', { accept: 'application/json' });
    expect(res.status).toBe(201);
    // The body is what the dashboard's script reads: our own hop, never the IdP URL with id_token_hint.
    expect(JSON.parse(res.body)).toEqual({ afterLogoutURL: `${publicUrl}/oauth2/end_session` });
    expect(res.body).not.toMatch(/eyJ|id_token/);
    expect(sessionCookies(browser)).toEqual([]);
    expect((await check(browser, '/x')).status).toBe(302);
    // The hop sends the browser on to the IdP with the hint (from an HttpOnly cookie), once.
    const hop = await browser.get(`${publicUrl}/oauth2/end_session`, { 'sec-fetch-mode': 'navigate' });
    expect(hop.status).toBe(302);
    const endSession = new URL(hop.location!);
    expect(endSession.searchParams.get('post_logout_redirect_uri')).toBe(`${publicUrl}/goodbye`);
    expect(endSession.searchParams.get('id_token_hint')).toMatch(/^eyJ/);
    const again = await browser.get(`${publicUrl}/oauth2/end_session`);
    expect(again.location).toBe(`${publicUrl}/goodbye`);
  });

  test('a script that fetches /oauth2/end_session (not a navigation) does not get the ID token in the redirect', async () => {
    const browser = new Browser();
    await login(browser, 'alice', 'alice-pw');
    expect((await browser.post(`${publicUrl}/authservice/logout`, '', { accept: 'application/json' })).status).toBe(201);
    const hop = await browser.get(`${publicUrl}/oauth2/end_session`, { 'sec-fetch-mode': 'cors' });
    expect(hop.status).toBe(302);
    const endSession = new URL(hop.location!);
    expect(endSession.searchParams.get('id_token_hint')).toBeNull();
    expect(endSession.searchParams.get('client_id')).toBe(CLIENT.clientId);
  });

  test('a script that fetches /oauth2/sign_out (not a navigation) gets no ID token in the redirect either', async () => {
    const browser = new Browser();
    await login(browser, 'alice', 'alice-pw');
    const res = await browser.get(`${publicUrl}/oauth2/sign_out`, { 'sec-fetch-mode': 'cors' });
    expect(res.status).toBe(302);
    const endSession = new URL(res.location!);
    expect(endSession.searchParams.get('id_token_hint')).toBeNull();
    expect(endSession.searchParams.get('post_logout_redirect_uri')).toBe(`${publicUrl}/goodbye`);
    expect(sessionCookies(browser)).toEqual([]);
  });

  test('a link to /oauth2/end_session without a sign-out behind it ends nobody\'s IdP session', async () => {
    const browser = new Browser();
    await login(browser, 'alice', 'alice-pw');
    const hop = await browser.get(`${publicUrl}/oauth2/end_session`);
    expect(hop.status).toBe(302);
    expect(hop.location).toBe(`${publicUrl}/goodbye`);
    expect((await check(browser, '/x', { accept: 'application/json' })).status).toBe(200);
  });

  test('identity.forwardIdToken: the allow also carries the session ID token as authorization (Kubeflow model)', async () => {
    const forwarding = await startService({ ...loginConfig(), listen: { port: 0 }, identity: { forwardIdToken: true } });
    try {
      const browser = new Browser();
      await login(browser, 'alice', 'alice-pw');
      for (const cookie of sessionCookies(browser)) browser.jar.set(forwarding.url, cookie.name, cookie.value);
      const res = await browser.get(`${forwarding.url}/authz/x`, { accept: 'application/json' });
      expect(res.status).toBe(200);
      const [scheme, token] = (res.headers.get('authorization') ?? '').split(' ');
      expect(scheme).toBe('Bearer');
      const claims = JSON.parse(Buffer.from(token!.split('.')[1]!, 'base64url').toString()) as Record<string, unknown>;
      expect(claims).toMatchObject({ email: 'alice@example.com', iss: idp.issuer, aud: CLIENT.clientId });
      expect((await check(browser, '/x', { accept: 'application/json' })).headers.get('authorization')).toBeNull();
    } finally {
      await forwarding.close();
    }
  });

  test.each([100, 2_000, 2_600, 4_000, 8_000, 30_000])('a return URL with a %i-character query: the login cookie stays under 4,000 bytes and the login lands on the page', async (length) => {
    const browser = new Browser();
    const path = `/notebooks/lab?q=${'x'.repeat(length)}`;
    const first = await check(browser, path);
    expect(first.status).toBe(302);
    const start = await browser.follow(first);
    expect(start.status).toBe(302);
    const loginCookie = start.headers.getSetCookie().find((c) => c.startsWith('oidc_authz_login_'))!;
    expect(loginCookie.length).toBeLessThanOrEqual(4000);
    const landing = await browser.get(await browser.loginAtIdp(start.location!, 'alice', 'alice-pw'));
    expect(landing.status).toBe(302);
    // What fits comes back whole, a longer one without its query (never a failed login); a return URL
    // over the accepted length (redirect.ts MAX_LENGTH) was never accepted and lands on the root.
    const expected = length <= 2_000 ? `${publicUrl}${path}` : length <= 4_000 ? `${publicUrl}/notebooks/lab` : `${publicUrl}/`;
    expect(landing.location).toBe(expected);
    expect(sessionCookies(browser).map((c) => c.name)).toEqual(['oidc_authz']);
  });

  test('two tabs logging in at once both complete', async () => {
    const browser = new Browser();
    const tab1 = await check(browser, '/one');
    const tab2 = await check(browser, '/two');
    const start1 = await browser.follow(tab1);
    const start2 = await browser.follow(tab2);
    expect(browser.jar.list(publicUrl).filter((c) => c.name.includes('_login_'))).toHaveLength(2);
    const cb1 = await browser.loginAtIdp(start1.location!, 'alice', 'alice-pw');
    const cb2 = await browser.loginAtIdp(start2.location!, 'alice', 'alice-pw');
    expect((await browser.get(cb2)).location).toBe(`http://127.0.0.1:${port}/two`);
    expect((await browser.get(cb1)).location).toBe(`http://127.0.0.1:${port}/one`);
    expect((await check(browser, '/one')).status).toBe(200);
  });

  test('an ID token that needs several cookies (400 groups) works end to end', async () => {
    const browser = new Browser();
    await login(browser, 'big', 'big-pw');
    const chunks = sessionCookies(browser).map((c) => c.name).sort();
    expect(chunks.length).toBeGreaterThanOrEqual(3);
    expect(chunks[0]).toBe('oidc_authz.0');
    const res = await check(browser, '/x');
    expect(res.status).toBe(200);
    expect(res.headers.get('kubeflow-groups')!.split(',')).toEqual(manyGroups);
    const metrics = await fetch(`${svc.metricsUrl}/metrics`).then((r) => r.text());
    expect(metrics).toMatch(new RegExp(`oidc_authz_sessions_issued_total\\{chunks="${chunks.length}"\\} 1`));
  });

  test('an account whose email is unverified cannot log in: clear page, no session', async () => {
    const browser = new Browser();
    const page = await login(browser, 'unverified', 'u-pw');
    expect(page.status).toBe(403);
    expect(page.body).toContain('unverified_email');
    expect(sessionCookies(browser)).toEqual([]);
  });

  test('metrics count logins and callbacks', async () => {
    const text = await fetch(`${svc.metricsUrl}/metrics`).then((r) => r.text());
    expect(text).toMatch(/oidc_authz_login_starts_total [1-9]/);
    expect(text).toMatch(/oidc_authz_login_callbacks_total\{result="ok"\} [1-9]/);
    expect(text).toMatch(/oidc_authz_checks_total\{decision="login",reason="no_credentials",rule="everything"\} [1-9]/);
  });
});

describe('callback and return URL hostility', () => {
  let svc: RunningService;
  beforeAll(async () => {
    svc = await startService(loginConfig());
  });
  afterAll(() => svc.close());

  test('a replayed callback (state already used) → 400 page with a retry link, no new session', async () => {
    const browser = new Browser();
    const first = await browser.follow(await check(browser, '/x'));
    const callbackUrl = await browser.loginAtIdp(first.location!, 'alice', 'alice-pw');
    expect((await browser.get(callbackUrl)).status).toBe(302);
    const cookieBefore = sessionCookies(browser)[0]!.value;
    const replay = await browser.get(callbackUrl);
    expect(replay.status).toBe(400);
    expect(replay.body).toContain('Sign-in expired or was already used');
    expect(replay.body).toContain('/oauth2/start?rd=');
    expect(sessionCookies(browser)[0]!.value).toBe(cookieBefore);
  });

  test('a callback in another browser (no transaction cookie) is refused', async () => {
    const victim = new Browser();
    const start = await victim.follow(await check(victim, '/x'));
    const callbackUrl = await victim.loginAtIdp(start.location!, 'alice', 'alice-pw');
    const attacker = new Browser();
    const res = await attacker.get(callbackUrl);
    expect(res.status).toBe(400);
    expect(sessionCookies(attacker)).toEqual([]);
  });

  test.each([
    ['unknown state', '?code=abc&state=not-a-state'],
    ['no state', '?code=abc'],
  ])('%s → 400, never a session', async (_name, query) => {
    const browser = new Browser();
    const res = await browser.get(`${publicUrl}/oauth2/callback${query}`);
    expect(res.status).toBe(400);
    expect(sessionCookies(browser)).toEqual([]);
  });

  test('the IdP refusing (access_denied) → 403 page with a retry link, counted', async () => {
    const browser = new Browser();
    const start = await browser.follow(await check(browser, '/x'));
    const state = new URL(start.location!).searchParams.get('state')!;
    const res = await browser.get(`${publicUrl}/oauth2/callback?error=access_denied&error_description=${encodeURIComponent('<b>user said no</b>')}&state=${state}`);
    expect(res.status).toBe(403);
    expect(res.body).toContain('&lt;b&gt;user said no&lt;/b&gt;');
    expect(res.body).toContain(`href="${publicUrl}/oauth2/start?rd=`);
    const text = await fetch(`${svc.metricsUrl}/metrics`).then((r) => r.text());
    expect(text).toMatch(/oidc_authz_login_callbacks_total\{result="idp_error"\} 1/);
  });

  test.each([
    '//evil.example.org/x',
    '/\\evil.example.org',
    'https://kubeflow.example.com@evil.example.org/',
    'https://evil.example.org/',
    'javascript:alert(1)',
    '%2F%2Fevil.example.org',
  ])('rd=%s lands on the public URL instead', async (rd) => {
    const browser = new Browser();
    const start = await browser.get(`${publicUrl}/oauth2/start?rd=${encodeURIComponent(rd)}`);
    const callbackUrl = await browser.loginAtIdp(start.location!, 'alice', 'alice-pw', { idpOrigin: idp.url });
    const res = await browser.get(callbackUrl);
    expect(res.status).toBe(302);
    expect(res.location).toBe(`${publicUrl}/`);
  });

  test('an allow-listed host is a valid return URL', async () => {
    const browser = new Browser();
    const start = await browser.get(`${publicUrl}/oauth2/start?rd=${encodeURIComponent('https://kubeflow.example.com/notebooks/?ns=a')}`);
    const res = await browser.get(await browser.loginAtIdp(start.location!, 'alice', 'alice-pw', { idpOrigin: idp.url }));
    expect(res.location).toBe('https://kubeflow.example.com/notebooks/?ns=a');
  });
});

describe('hostile session cookies: the documented answer, never a 500, never a session', () => {
  let svc: RunningService;
  let small: Browser;
  let big: Browser;
  let bigOther: Browser;
  beforeAll(async () => {
    svc = await startService(loginConfig());
    small = new Browser();
    big = new Browser();
    bigOther = new Browser();
    await login(small, 'alice', 'alice-pw');
    await login(big, 'big', 'big-pw');
    await login(bigOther, 'big', 'big-pw');
  });
  afterAll(() => svc.close());

  /** A page load and an API call, each from a browser holding exactly these cookies. */
  const withCookies = async (cookies: Array<[string, string]>) => {
    const holding = () => {
      const browser = new Browser();
      for (const [name, value] of cookies) browser.jar.set(publicUrl, name, value);
      return browser;
    };
    const page = await check(holding(), '/x');
    const xhr = await check(holding(), '/x', { accept: 'application/json' });
    return { page, xhr };
  };
  const chunksOf = (browser: Browser) => sessionCookies(browser).sort((a, b) => a.name.localeCompare(b.name)).map((c): [string, string] => [c.name, c.value]);

  test.each<[string, () => Array<[string, string]>]>([
    ['tampered value', () => chunksOf(small).map(([n, v]) => [n, `${v.slice(0, 40)}${v[40] === 'A' ? 'B' : 'A'}${v.slice(41)}`])],
    ['truncated value', () => chunksOf(small).map(([n, v]) => [n, v.slice(0, v.length - 10)])],
    ['garbage', () => [['oidc_authz', 'Fe26.2**garbage*~2']]],
    ['a missing chunk', () => chunksOf(big).filter(([n]) => n !== 'oidc_authz.1')],
    ['re-ordered chunks', () => { const c = chunksOf(big); return [[c[0]![0], c[1]![1]], [c[1]![0], c[0]![1]], ...c.slice(2)]; }],
    ['chunks of two sessions mixed', () => { const c = chunksOf(big); const o = chunksOf(bigOther); return [c[0]!, o[1]!, ...c.slice(2)]; }],
    ['a chunk with a forged tag', () => { const c = chunksOf(big); const o = chunksOf(bigOther); const tag = c[0]![1].split('~')[0]; return [c[0]!, [o[1]![0], `${tag}~${o[1]![1].split('~').slice(1).join('~')}`], ...c.slice(2)]; }],
  ])('%s → 302 for a page, 401 for an API call, cookies cleared', async (_name, cookies) => {
    const { page, xhr } = await withCookies(cookies());
    expect(page.status).toBe(302);
    expect(xhr.status).toBe(401);
    expect(JSON.parse(xhr.body).reason).toBe('session_invalid');
    const cleared = xhr.headers.getSetCookie().filter((c) => c.startsWith('oidc_authz'));
    expect(cleared.length).toBeGreaterThan(0);
    expect(cleared.every((c) => /Max-Age=0/.test(c))).toBe(true);
  });

  test('a cookie sealed with a secret this service does not know → session_invalid', async () => {
    const other = await startService({ ...loginConfig({}, [SECRET_B]), listen: { port: 0 } });
    try {
      const browser = new Browser();
      for (const [name, value] of chunksOf(small)) browser.jar.set(other.url, name, value);
      const res = await browser.get(`${other.url}/authz/x`, { accept: 'application/json' });
      expect(res.status).toBe(401);
      expect(JSON.parse(res.body).reason).toBe('session_invalid');
    } finally {
      await other.close();
    }
  });

  test('two Cookie lines joined by Envoy with ",": the session in the first line authenticates, in a later one it is not read', async () => {
    const [[name, value]] = chunksOf(small) as [[string, string]];
    const browser = new Browser();
    expect((await browser.get(`${publicUrl}/authz/x`, { cookie: `${name}=${value},theme=dark`, accept: 'application/json' })).status).toBe(200);
    // After "," it could sit inside another cookie's value, where a page script can put anything.
    const later = await browser.get(`${publicUrl}/authz/x`, { cookie: `theme=dark,${name}=${value}`, accept: 'application/json' });
    expect(later.status).toBe(401);
    expect(JSON.parse(later.body)).toMatchObject({ reason: 'no_credentials' });
  });
});

describe('key rotation', () => {
  test('sealed with the old secret: works after a new first secret, fails once the old one is removed', async () => {
    const browser = new Browser();
    let svc = await startService(loginConfig({}, [SECRET_A]));
    try {
      await login(browser, 'alice', 'alice-pw');
    } finally {
      await svc.close();
    }
    svc = await startService(loginConfig({}, [SECRET_B, SECRET_A]));
    try {
      const res = await check(browser, '/x');
      expect(res.status).toBe(200);
      expect(res.headers.get('kubeflow-userid')).toBe('alice@example.com');
    } finally {
      await svc.close();
    }
    svc = await startService(loginConfig({}, [SECRET_B]));
    try {
      const res = await check(browser, '/x', { accept: 'application/json' });
      expect(res.status).toBe(401);
      expect(JSON.parse(res.body).reason).toBe('session_invalid');
    } finally {
      await svc.close();
    }
  });
});

describe('refresh and session lifetime (the service clock is moved, nothing sleeps)', () => {
  let svc: RunningService;
  const clock = new TestClock();
  beforeAll(async () => {
    svc = await startService(loginConfig(), { now: clock.now });
  });
  afterAll(() => svc.close());
  beforeEach(() => {
    clock.offsetMs = 0;
  });

  test('expired tokens are refreshed once for concurrent checks; the new cookie comes back with the allow', async () => {
    const browser = new Browser();
    await login(browser, 'alice', 'alice-pw');
    const oldValue = sessionCookies(browser)[0]!.value;
    idp.users.get('alice')!.groups = ['team-a', 'ml', 'new-group'];
    clock.advance(2 * 3600_000);
    const results = await Promise.all(Array.from({ length: 5 }, () => check(browser, '/x', { accept: 'application/json' })));
    for (const res of results) {
      expect(res.status).toBe(200);
      expect(res.headers.get('kubeflow-groups')).toBe('team-a,ml,new-group');
      expect(res.headers.getSetCookie().some((c) => c.startsWith('oidc_authz='))).toBe(true);
    }
    const metrics = await fetch(`${svc.metricsUrl}/metrics`).then((r) => r.text());
    expect(metrics).toMatch(/oidc_authz_session_refreshes_total\{result="ok",error="none"\} 1\n/);
    expect(sessionCookies(browser)[0]!.value).not.toBe(oldValue);
    clock.offsetMs = 0;
    const later = await check(browser, '/x');
    expect(later.status).toBe(200);
    expect(later.headers.getSetCookie()).toEqual([]);
    idp.users.get('alice')!.groups = ['team-a', 'ml'];
  });

  test('a revoked refresh token ends the session: 302 to log in again, and no clearing cookie that could race a fresh one', async () => {
    const browser = new Browser();
    await login(browser, 'bob', 'bob-pw');
    expect(await idp.revokeRefreshTokens('bob')).toBeGreaterThan(0);
    clock.advance(2 * 3600_000);
    const cookie = browser.jar.header(`${publicUrl}/x`)!;
    const res = await check(browser, '/x');
    expect(res.status).toBe(302);
    expect(res.location).toBe(`${publicUrl}/oauth2/start?rd=${encodeURIComponent(`${publicUrl}/x`)}`);
    expect(res.headers.getSetCookie()).toEqual([]);
    const metrics = await fetch(`${svc.metricsUrl}/metrics`).then((r) => r.text());
    expect(metrics).toMatch(/oidc_authz_session_refreshes_total\{result="rejected",error="invalid_grant"\} [1-9]/);
    // The IdP's words are logged (the operator's clue), the refresh token never is.
    const logged = svc.logs.find((l) => l.msg === 'session refresh rejected by the IdP');
    expect(logged).toMatchObject({ error: 'invalid_grant' });
    expect(typeof logged?.description).toBe('string');
    // An API call with the same cookie hears why: the IdP ended the session.
    const api = await check(new Browser(), '/x', { accept: 'application/json', cookie });
    expect(api.status).toBe(401);
    expect(JSON.parse(api.body)).toMatchObject({ reason: 'session_revoked', message: expect.stringContaining('Sign in again') });
    // Logging in again replaces the dead session's cookie.
    const again = await login(browser, 'bob', 'bob-pw', '/x');
    expect(again.status).toBe(302);
    const fresh = await check(browser, '/x');
    expect(fresh.status).toBe(200);
    expect(fresh.headers.get('kubeflow-userid')).toBe('bob@example.com');
  });

  test('the session ends at session.maxAge however often it was refreshed', async () => {
    const browser = new Browser();
    await login(browser, 'alice', 'alice-pw');
    clock.advance(13 * 3600_000);
    const res = await check(browser, '/x', { accept: 'application/json' });
    expect(res.status).toBe(401);
    expect(JSON.parse(res.body).reason).toBe('session_expired');
  });
});

describe('IdP unreachable', () => {
  test('an expired session that cannot be refreshed gives 503, the session survives', async () => {
    const clock = new TestClock();
    const downPort = await freePort();
    const localIdp = await startDevIdp({
      port: downPort,
      users: { alice: { password: 'pw', email: 'alice@example.com', groups: [] } },
      clients: [{ ...CLIENT, redirectUris: [`${publicUrl}/oauth2/callback`] }],
      log: () => undefined,
    });
    const svc = await startService({ ...loginConfig(), oidc: { issuer: localIdp.issuer, clientId: CLIENT.clientId, clientSecretFile: tempFile(CLIENT.clientSecret) } }, { now: clock.now });
    try {
      const browser = new Browser();
      await login(browser, 'alice', 'pw');
      await localIdp.stop();
      clock.advance(2 * 3600_000);
      const res = await check(browser, '/x');
      expect(res.status).toBe(503);
      expect(res.headers.get('retry-after')).toBe('5');
      expect(res.headers.getSetCookie()).toEqual([]);
      expect(sessionCookies(browser)).toHaveLength(1);
    } finally {
      await svc.close();
    }
  });

  test('/oauth2/start with the IdP down → 503 page with a retry link', async () => {
    const downPort = await freePort();
    const svc = await startService({ ...loginConfig(), listen: { port: 0 }, oidc: { issuer: `http://127.0.0.1:${downPort}/gone`, clientId: 'x' } });
    try {
      const browser = new Browser();
      const res = await browser.get(`${svc.url}/oauth2/start?rd=/x`);
      expect(res.status).toBe(503);
      expect(res.body).toContain('Sign in again');
    } finally {
      await svc.close();
    }
  });
});

test('a public client (no secret, PKCE only) logs in', async () => {
  const svc = await startService({ ...loginConfig(), oidc: { issuer: idp.issuer, clientId: 'public-spa' } });
  try {
    const browser = new Browser();
    const res = await login(browser, 'alice', 'alice-pw');
    expect(res.status).toBe(302);
    expect((await check(browser, '/x')).status).toBe(200);
  } finally {
    await svc.close();
  }
});

test('a bad secrets file stops start-up naming session.secretsFile', async () => {
  await expect(startService(loginConfig({}, ['too-short']))).rejects.toThrow(/session\.secretsFile: the secret on line 1 is shorter than 32/);
});

test('configured scopes are sent as written; those the IdP does not list are named in a warning at discovery', async () => {
  const svc = await startService({ ...loginConfig(), oidc: { ...loginConfig().oidc!, scopes: ['openid', 'email', 'audience:server:client_id:other'] } });
  try {
    const start = await new Browser().get(`${publicUrl}/oauth2/start?rd=/x`);
    expect(start.status).toBe(302);
    // An IdP may accept scopes it does not list (Dex's cross-client scopes), so nothing is dropped…
    expect(new URL(start.location!).searchParams.get('scope')).toBe('openid email audience:server:client_id:other');
    // …but an operator hears which ones may make it refuse every login.
    expect(svc.logs.find((l) => String(l.msg).startsWith('oidc.scopes names scopes the IdP does not list'))).toMatchObject({
      level: 'warn',
      unlisted: ['audience:server:client_id:other'],
    });
  } finally {
    await svc.close();
  }
});

test('a wrong client secret at refresh time (a rotated secret) keeps every session: 503, not the end of it', async () => {
  const clock = new TestClock();
  const svc = await startService(loginConfig(), { now: clock.now });
  const browser = new Browser();
  let wrong: RunningService | undefined;
  try {
    await login(browser, 'alice', 'alice-pw');
    const cookie = browser.jar.header(`${publicUrl}/x`)!;
    // A second replica whose client secret is wrong: oidc-provider answers 401 invalid_client with a challenge.
    wrong = await startService({ ...loginConfig(), listen: { port: 0 }, oidc: { ...loginConfig().oidc!, clientSecretFile: tempFile('not-the-secret') } }, { now: clock.now });
    clock.advance(2 * 3600_000);
    const failed = await fetch(`${wrong.url}/authz/x`, { headers: { host: `127.0.0.1:${port}`, cookie, accept: 'application/json' } });
    expect(failed.status).toBe(503);
    expect(failed.headers.getSetCookie()).toEqual([]);
    const metrics = await fetch(`${wrong.metricsUrl}/metrics`).then((r) => r.text());
    expect(metrics).toMatch(/oidc_authz_session_refreshes_total\{result="unavailable",error="misconfigured"\} 1\n/);
    expect(wrong.logs.find((l) => l.msg === 'session refresh failed: IdP unavailable')).toMatchObject({ error: 'misconfigured', description: expect.stringContaining('client secret') });
    // The replica with the right secret refreshes the same session.
    const ok = await check(browser, '/x', { accept: 'application/json' });
    expect(ok.status).toBe(200);
  } finally {
    await wrong?.close();
    await svc.close();
  }
});
