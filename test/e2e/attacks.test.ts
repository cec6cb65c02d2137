/**
 * Issue 13, "harder to fool": each attack of the adversarial review, replayed through a real Envoy
 * configured from our extension provider, with what the client and the upstream actually get.
 * In Kubeflow, notebooks and other upstreams are run by users on the same host as everything else, so
 * whatever reaches an upstream reaches a possible attacker.
 */
import { Browser, sendHttp, type Page, type RawExchange } from '../support/browser.js';
import { TestClock, startService, tempFile, type RunningService } from '../support/service.js';
import { STACK_CLIENT, STACK_RULES, startStack, type Stack } from '../support/stack.js';

const JSON_ACCEPT = { accept: 'application/json', 'sec-fetch-mode': 'cors' };
const NAVIGATE = { accept: 'text/html', 'sec-fetch-mode': 'navigate' };
const SESSION_SECRET = 'attacks-cookie-secret-0123456789abcdefghijklmnop';
const RULES = [
  { name: 'reports-read', paths: ['/reports/**'], methods: ['GET' as const], allow: 'authenticated' as const },
  { name: 'reports-no-writes', paths: ['/reports/**'], allow: 'deny' as const },
  ...STACK_RULES,
];

interface Echoed {
  method: string;
  path: string;
  headers: Record<string, string | string[] | undefined>;
  rawHeaderNames: string[];
}
const echoed = (page: { body: string }): Echoed => JSON.parse(page.body) as Echoed;

/** One request to Envoy with exactly these header lines (repeats kept), as a non-browser client sends them. */
function raw(stack: Stack, target: string, lines: ReadonlyArray<[string, string]>, method = 'GET'): Promise<RawExchange> {
  return sendHttp(method, stack.url, lines, undefined, target);
}

async function logIn(stack: Stack, user: string): Promise<Browser> {
  const browser = new Browser();
  const first = await browser.get(`${stack.url}/notebooks/`, NAVIGATE);
  expect(first.status).toBe(302);
  const back = await browser.get(await browser.loginAtIdp(first.location!, user, `${user}-pw`));
  expect(back.status).toBe(302);
  return browser;
}

/** The session cookie pairs ("oidc_authz=…", or each chunk's) a logged-in browser holds for the gateway. */
const sessionPairs = (stack: Stack, browser: Browser): string[] =>
  browser.jar.list(stack.url).filter((c) => /^oidc_authz(\.\d+)?$/.test(c.name)).map((c) => `${c.name}=${c.value}`);

/** Every Cookie header the upstream received since `from`. */
const upstreamCookies = (stack: Stack, from: number): string[] =>
  stack.echo.received.slice(from).flatMap((r) => {
    const value = r.headers.cookie;
    return value === undefined ? [] : Array.isArray(value) ? value : [value];
  });

async function metric(stack: Stack, pattern: RegExp): Promise<string | undefined> {
  const text = await fetch(`${stack.authz.metricsUrl}/metrics`).then((r) => r.text());
  return pattern.exec(text)?.[1];
}

describe('the session never reaches an upstream', () => {
  let stack: Stack;
  beforeAll(async () => {
    stack = await startStack({ rules: RULES });
  });
  afterAll(() => stack.stop());

  test("Mallory's notebook never receives Alice's session cookie; her other cookies arrive byte for byte, in order", async () => {
    const alice = await logIn(stack, 'alice');
    const from = stack.echo.received.length;
    const res = await raw(stack, '/notebook/mallory-ns/nb/', [
      ['accept', 'application/json'],
      ['cookie', `theme=dark; ${sessionPairs(stack, alice).join('; ')}; prefs={"a":1,"b":[2,3]}; _ga=GA1.2.3`],
    ]);
    expect(res.status).toBe(200);
    expect(echoed(res).headers['kubeflow-userid']).toBe('alice@example.com');
    expect(upstreamCookies(stack, from)).toEqual(['theme=dark; prefs={"a":1,"b":[2,3]}; _ga=GA1.2.3']);
  });

  test('a chunked session (hundreds of groups): no chunk reaches the upstream', async () => {
    const groups = Array.from({ length: 300 }, (_, i) => `a-rather-long-group-name-for-testing-${i}`);
    stack.idp.users.get('bob')!.groups = groups;
    try {
      const bob = await logIn(stack, 'bob');
      const pairs = sessionPairs(stack, bob);
      expect(pairs.length).toBeGreaterThanOrEqual(3);
      const from = stack.echo.received.length;
      const res = await raw(stack, '/notebook/mallory-ns/nb/', [['accept', 'application/json'], ['cookie', `a=1; ${pairs.join('; ')}; b=2`]]);
      expect(res.status).toBe(200);
      expect(echoed(res).headers['kubeflow-userid']).toBe('bob@example.com');
      expect(upstreamCookies(stack, from)).toEqual(['a=1; b=2']);
    } finally {
      stack.idp.users.get('bob')!.groups = ['team-b'];
    }
  });

  test('two Cookie lines (HTTP/1.1, joined by Envoy): the session line is gone, the other arrives', async () => {
    const alice = await logIn(stack, 'alice');
    const from = stack.echo.received.length;
    const res = await raw(stack, '/notebook/mallory-ns/nb/', [
      ['accept', 'application/json'],
      ['cookie', sessionPairs(stack, alice).join('; ')],
      ['cookie', 'theme=dark'],
    ]);
    expect(res.status).toBe(200);
    expect(echoed(res).rawHeaderNames.filter((n) => n.toLowerCase() === 'cookie')).toHaveLength(1);
    expect(upstreamCookies(stack, from)).toEqual(['theme=dark']);
  });

  test('a Cookie header of only our cookies is removed, on an authenticated and on an anonymous route', async () => {
    const alice = await logIn(stack, 'alice');
    const cookie = sessionPairs(stack, alice).join('; ');
    const from = stack.echo.received.length;
    const authenticated = await raw(stack, '/notebook/mallory-ns/nb/', [['accept', 'application/json'], ['cookie', cookie]]);
    const anonymous = await raw(stack, '/static/app.js', [['cookie', `${cookie}; oidc_authz_login_x=t`]]);
    expect([authenticated.status, anonymous.status]).toEqual([200, 200]);
    expect(echoed(anonymous).headers.cookie).toBeUndefined();
    expect(stack.echo.received.slice(from).map((r) => r.headers.cookie)).toEqual([undefined, undefined]);
  });

  test('a request without our cookies keeps its Cookie lines untouched', async () => {
    const from = stack.echo.received.length;
    const res = await raw(stack, '/static/app.js', [['cookie', 'a=1'], ['cookie', 'b=2']]);
    expect(res.status).toBe(200);
    expect(echoed(res).rawHeaderNames.filter((n) => n.toLowerCase() === 'cookie')).toHaveLength(2);
    expect(upstreamCookies(stack, from)).toEqual(['a=1; b=2']);
  });
});

describe('a cookie value cannot smuggle a session in, and the last copy never wins', () => {
  let stack: Stack;
  let alice: string;
  let bob: string;
  beforeAll(async () => {
    stack = await startStack({ rules: RULES });
    alice = sessionPairs(stack, await logIn(stack, 'alice'))[0]!.slice('oidc_authz='.length);
    bob = sessionPairs(stack, await logIn(stack, 'bob'))[0]!.slice('oidc_authz='.length);
  });
  afterAll(() => stack.stop());

  test("Bob's session after a space inside another cookie's value is that cookie's value: the request is Alice's", async () => {
    const res = await raw(stack, '/x', [['accept', 'application/json'], ['cookie', `oidc_authz=${alice}; prefs=x oidc_authz=${bob}`]]);
    expect(res.status).toBe(200);
    expect(echoed(res).headers['kubeflow-userid']).toBe('alice@example.com');
  });

  test.each<[string, (a: string, b: string) => ReadonlyArray<[string, string]>]>([
    ["Bob's session after a comma (a value a page script can set)", (a, b) => [['cookie', `oidc_authz=${a}; prefs=x,oidc_authz=${b}`]]],
    ['two Cookie lines: only the first line is where a browser puts its cookies', (a, b) => [['cookie', `oidc_authz=${a}`], ['cookie', `oidc_authz=${b}`]]],
  ])("%s: Bob's session is never read, and it does not reach the upstream", async (_what, lines) => {
    const from = stack.echo.received.length;
    const res = await raw(stack, '/x', [['accept', 'application/json'], ...lines(alice, bob)]);
    expect(res.status).toBe(200);
    expect(echoed(res).headers['kubeflow-userid']).toBe('alice@example.com');
    expect(upstreamCookies(stack, from).join('')).not.toContain(bob.slice(0, 40));
  });

  test("Bob's session after a comma with no session of the user's own: not read, the request has no session", async () => {
    const res = await raw(stack, '/x', [['accept', 'application/json'], ['cookie', `prefs=x,oidc_authz=${bob}`]]);
    expect(res.status).toBe(401);
    expect(JSON.parse(res.body)).toMatchObject({ reason: 'no_credentials' });
  });

  test.each<[string, (a: string, b: string) => ReadonlyArray<[string, string]>]>([
    ['a plain duplicate', (a, b) => [['cookie', `oidc_authz=${a}; oidc_authz=${b}`]]],
    ['a plain duplicate, Bob first', (a, b) => [['cookie', `oidc_authz=${b}; oidc_authz=${a}`]]],
  ])('%s: two session cookies are refused (401, cookies cleared), never "the last one wins"', async (_what, lines) => {
    const from = stack.echo.received.length;
    const res = await raw(stack, '/x', [['accept', 'application/json'], ...lines(alice, bob)]);
    expect(res.status).toBe(401);
    expect(JSON.parse(res.body)).toMatchObject({ reason: 'session_invalid' });
    expect(res.headers.getSetCookie().some((c) => /^oidc_authz=;/.test(c))).toBe(true);
    expect(stack.echo.received.length).toBe(from);
  });

  test('a page load with two session cookies is sent to log in, with the cookies cleared', async () => {
    const res = await raw(stack, '/x', [['accept', 'text/html'], ['cookie', `oidc_authz=${alice}; theme=dark; oidc_authz=${bob}`]]);
    expect(res.status).toBe(302);
    expect(res.headers.get('location')).toContain('/oauth2/start?rd=');
    expect(res.headers.getSetCookie().some((c) => /^oidc_authz=;/.test(c))).toBe(true);
  });

  test('59 KB of repeated "oidc_authz= " (the quadratic-scan header): 401, the upstream not reached; on a public path the header is removed', async () => {
    const hostile = 'oidc_authz= '.repeat(Math.floor((59 * 1024) / 12));
    const from = stack.echo.received.length;
    const res = await raw(stack, '/x', [['accept', 'application/json'], ['cookie', hostile]]);
    expect(res.status).toBe(401);
    expect(stack.echo.received.length).toBe(from);
    const open = await raw(stack, '/static/app.js', [['cookie', hostile]]);
    expect(open.status).toBe(200);
    expect(echoed(open).headers.cookie).toBeUndefined();
  });

  test('more than 1,000 cookie pairs: 400 too_many_cookies, nothing forwarded', async () => {
    const from = stack.echo.received.length;
    const res = await raw(stack, '/static/app.js', [['cookie', 'a=1;'.repeat(1001)]]);
    expect(res.status).toBe(400);
    expect(JSON.parse(res.body)).toEqual({ error: 'bad_request', reason: 'too_many_cookies' });
    expect(stack.echo.received.length).toBe(from);
  });
});

describe('sign-out ends the session everywhere it can', () => {
  const clock = new TestClock();
  const secretsFile = tempFile(SESSION_SECRET);
  let stack: Stack;
  let otherReplica: RunningService;
  beforeAll(async () => {
    stack = await startStack({ rules: RULES, session: { secretsFile, secure: false } }, { now: clock.now });
    // A second replica of the same deployment: same IdP, client and cookie secret, no shared state.
    otherReplica = await startService({
      publicUrl: stack.url,
      oidc: { issuer: stack.idp.issuer, clientId: STACK_CLIENT.clientId, clientSecretFile: tempFile(STACK_CLIENT.clientSecret) },
      session: { secretsFile, secure: false },
      rules: RULES,
    }, { now: clock.now });
  });
  afterAll(async () => {
    await otherReplica.close();
    await stack.stop();
  });
  afterEach(() => {
    clock.offsetMs = 0;
  });

  test("a cookie copied before sign-out: refused at once by the replica that signed out, by the others at their next revalidation (session.revalidateAfter)", async () => {
    const alice = await logIn(stack, 'alice');
    const stolen = sessionPairs(stack, alice).join('; ');
    const onOther = () => fetch(`${otherReplica.url}/authz/x`, { headers: { host: new URL(stack.url).host, cookie: stolen, accept: 'application/json' } });
    expect((await onOther()).status).toBe(200);

    const signOut = await alice.get(`${stack.url}/oauth2/sign_out`);
    expect(signOut.status).toBe(302);
    expect(await metric(stack, /oidc_authz_sign_outs_total\{refresh_token="revoked"\} (\d+)/)).toBe('1');

    const replayed = await raw(stack, '/x', [['accept', 'application/json'], ['cookie', stolen]]);
    expect(replayed.status).toBe(401);
    expect(JSON.parse(replayed.body)).toMatchObject({ reason: 'session_revoked' });
    // The other replica has the session open in its cache: it asks the IdP again within revalidateAfter.
    expect((await onOther()).status).toBe(200);
    clock.advance(5 * 60_000 + 1_000);
    const later = await onOther();
    expect(later.status).toBe(401);
    expect(await later.json()).toMatchObject({ reason: 'session_revoked' });
  });

  test('a user disabled at the IdP loses access within session.revalidateAfter, though the ID token has an hour left', async () => {
    const bob = await logIn(stack, 'bob');
    expect((await bob.get(`${stack.url}/x`, JSON_ACCEPT)).status).toBe(200);
    expect(await stack.idp.revokeRefreshTokens('bob')).toBeGreaterThan(0);
    clock.advance(4 * 60_000);
    expect((await bob.get(`${stack.url}/x`, JSON_ACCEPT)).status).toBe(200);
    clock.advance(60_000 + 1_000);
    const res = await bob.get(`${stack.url}/x`, JSON_ACCEPT);
    expect(res.status).toBe(401);
    expect(JSON.parse(res.body)).toMatchObject({ reason: 'session_revoked' });
  });

  test("POST /authservice/logout hands no token to the page script; the browser reaches the IdP's end-session with it", async () => {
    const alice = await logIn(stack, 'alice');
    const res = await alice.post(`${stack.url}/authservice/logout`, '', { accept: 'application/json' });
    expect(res.status).toBe(201);
    expect(JSON.parse(res.body)).toEqual({ afterLogoutURL: `${stack.url}/oauth2/end_session` });
    expect(res.body).not.toMatch(/eyJ|id_token/);
    const hop = await alice.get(`${stack.url}/oauth2/end_session`, NAVIGATE);
    expect(hop.status).toBe(302);
    const endSession = new URL(hop.location!);
    expect(endSession.href.startsWith(stack.idp.issuer)).toBe(true);
    expect(endSession.searchParams.get('id_token_hint')).toMatch(/^eyJ/);
    expect(endSession.searchParams.get('post_logout_redirect_uri')).toBe(`${stack.url}/oauth2/signed_out`);
  });
});

describe('sharp edges', () => {
  let stack: Stack;
  beforeAll(async () => {
    stack = await startStack({ rules: RULES });
  });
  afterAll(() => stack.stop());

  test('GET with X-HTTP-Method-Override: DELETE passes the GET-only rule but the upstream never sees the override', async () => {
    const alice = await logIn(stack, 'alice');
    const cookie = sessionPairs(stack, alice).join('; ');
    const res = await raw(stack, '/reports/q3', [
      ['accept', 'application/json'],
      ['cookie', cookie],
      ['x-http-method-override', 'DELETE'],
      ['X-HTTP-Method', 'DELETE'],
      ['x-method-override', 'DELETE'],
      ['x-trace-me', 'kept'],
    ]);
    expect(res.status).toBe(200);
    const seen = echoed(res);
    expect(seen.method).toBe('GET');
    expect(seen.rawHeaderNames.map((n) => n.toLowerCase()).filter((n) => /method/.test(n))).toEqual([]);
    expect(seen.headers['x-trace-me']).toBe('kept');
    // The write itself is judged by its own method.
    expect((await raw(stack, '/reports/q3', [['accept', 'application/json'], ['cookie', cookie]], 'DELETE')).status).toBe(403);
  });

  test.each<[string, string]>([
    ['access_denied with a made-up description', `error=access_denied&error_description=${encodeURIComponent('Your account is locked. Call +1-555-0100 and give them your password.')}`],
    ['an unknown error code carrying text', `error=${encodeURIComponent('Your account is locked. Call +1-555-0100')}`],
    ['text in the description of a known code, with a state that is not a transaction', `error=server_error&state=abc&error_description=${encodeURIComponent('Call +1-555-0100')}`],
  ])('attacker text on the callback error page (%s): the page shows only our words', async (_what, query) => {
    const page: Page = await new Browser().get(`${stack.url}/oauth2/callback?${query}`);
    expect([400, 403]).toContain(page.status);
    expect(page.body).not.toContain('555-0100');
    expect(page.body).not.toContain('locked');
    expect(page.body).toContain('Sign-in was not completed');
  });

  test("the IdP's own words are shown when the callback carries the login transaction it answers", async () => {
    const browser = new Browser();
    const start = await browser.follow(await browser.get(`${stack.url}/x`, NAVIGATE));
    const state = new URL(start.location!).searchParams.get('state')!;
    const page = await browser.get(`${stack.url}/oauth2/callback?error=access_denied&state=${state}&error_description=${encodeURIComponent('User cancelled <login>')}`);
    expect(page.status).toBe(403);
    expect(page.body).toContain('The sign-in was declined');
    expect(page.body).toContain('User cancelled &lt;login&gt;');
  });
});
