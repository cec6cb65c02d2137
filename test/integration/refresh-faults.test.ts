/**
 * What a refresh outcome does to a session, for the answers a real IdP cannot be made to give on demand
 * (5xx, 429, an HTML page, a token response without tokens, userinfo down right after a good refresh).
 * The IdP here is a STUB: a node:http server with a real discovery document, real keys (jose) and a
 * token endpoint whose answer each test sets. Everything else is the real service. The answers real
 * IdPs give (invalid_grant from oidc-provider, invalid_request from Dex, invalid_client for a wrong
 * secret) are tested against them: login.test.ts, test/idp/.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createSealer } from '../../src/session/seal.js';
import { secretsFromLines } from '../../src/session/secrets.js';
import { CookieSessionStore } from '../../src/session/store.js';
import { metricValue } from '../support/gateway-client.js';
import { createSigningKey, type SigningKey } from '../support/issuer.js';
import { startService, tempFile, TestClock, type RunningService } from '../support/service.js';
import { SignJWT } from 'jose';

const CLIENT_ID = 'stub-client';
const SECRET = 'refresh-faults-cookie-secret-0123456789abcdef';
const HOST = 'kubeflow.example.com';

interface StubAnswer {
  readonly status: number;
  readonly headers?: Record<string, string>;
  readonly body: string;
}

let key: SigningKey;
let server: Server;
let issuer: string;
/** What the token endpoint answers next; null: a good refresh with new tokens. */
let tokenAnswer: StubAnswer | null = null;
/** What userinfo answers; null: the user's claims. */
let userinfoAnswer: StubAnswer | null = null;
/** While true the token endpoint answers nothing (a black-holed IdP); the held requests are ended after the test. */
let holdToken = false;
const heldTokenRequests: Array<() => void> = [];
let refreshes = 0;
const clock = new TestClock();

const json = (status: number, body: unknown, headers: Record<string, string> = {}): StubAnswer => ({
  status, headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify(body),
});

async function idToken(claims: Record<string, unknown> = {}): Promise<string> {
  return new SignJWT({ sub: 'u-alice', email: 'alice@example.com', email_verified: true, groups: ['team-a'], ...claims })
    .setProtectedHeader({ alg: key.alg, kid: key.kid })
    .setIssuer(issuer)
    .setAudience(CLIENT_ID)
    .setIssuedAt()
    .setExpirationTime('10m')
    .sign(key.privateKey);
}

beforeAll(async () => {
  key = await createSigningKey('RS256', 'stub-1');
  server = createServer((req, res) => {
    const url = req.url ?? '';
    const send = (answer: StubAnswer) => res.writeHead(answer.status, answer.headers ?? {}).end(answer.body);
    req.resume();
    req.on('end', () => {
      if (url === '/stub/.well-known/openid-configuration') {
        return send(json(200, {
          issuer, authorization_endpoint: `${issuer}/auth`, token_endpoint: `${issuer}/token`, userinfo_endpoint: `${issuer}/userinfo`,
          jwks_uri: `${issuer}/jwks`, response_types_supported: ['code'], subject_types_supported: ['public'], id_token_signing_alg_values_supported: ['RS256'],
        }));
      }
      if (url === '/stub/jwks') return send(json(200, { keys: [key.publicJwk] }));
      if (url === '/stub/userinfo') return send(userinfoAnswer ?? json(200, { sub: 'u-alice', team: 'blue' }));
      if (url === '/stub/token') {
        refreshes++;
        if (holdToken) return void heldTokenRequests.push(() => res.destroy());
        if (tokenAnswer !== null) return send(tokenAnswer);
        void idToken().then((token) => send(json(200, { access_token: 'opaque-access', token_type: 'Bearer', expires_in: 600, id_token: token, refresh_token: `rotated-${refreshes}` })));
        return;
      }
      send({ status: 404, body: '' });
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  issuer = `http://127.0.0.1:${(server.address() as AddressInfo).port}/stub`;
});

afterAll(async () => {
  await new Promise<void>((resolve) => server.close(() => resolve()));
});

afterEach(() => {
  tokenAnswer = null;
  userinfoAnswer = null;
  holdToken = false;
  for (const end of heldTokenRequests.splice(0)) end();
  clock.offsetMs = 0;
});

async function service(claimsFrom: Array<'id_token' | 'access_token' | 'userinfo'> = ['id_token', 'access_token'], timeout?: string): Promise<RunningService> {
  return startService({
    publicUrl: `https://${HOST}`,
    oidc: { issuer, clientId: CLIENT_ID, clientSecretFile: tempFile('stub-secret'), claimsFrom, ...(timeout === undefined ? {} : { timeout }) },
    session: { secretsFile: tempFile(SECRET) },
    rules: [
      { name: 'blue', paths: ['/blue/**'], allow: { claims: { team: 'blue' } } },
      { name: 'all', paths: ['/**'], allow: 'authenticated' },
    ],
  }, { now: clock.now });
}

/** A session as a login leaves it, sealed with the service's secret; its tokens expire in a minute. */
async function sessionCookie(addedClaims: Record<string, unknown> = {}): Promise<string> {
  const store = new CookieSessionStore(createSealer(secretsFromLines([SECRET])), { names: { base: 'oidc_authz', sessionPrefix: '' }, attributes: { secure: true }, maxAgeMs: 7 * 24 * 3600_000 }, clock.now);
  const issued = await store.issue({ idToken: await idToken(), addedClaims, refreshToken: 'refresh-1', createdAt: clock.now(), expiresAt: clock.now() + 60_000 });
  return issued.setCookies.map((c) => c.split(';', 1)[0]).join('; ');
}

const check = (svc: RunningService, cookie: string, path = '/x') =>
  fetch(`${svc.url}/authz${path}`, { headers: { host: HOST, cookie, accept: 'application/json' } });

describe('refresh answers that must NOT end the session (503, the session kept, retried later) — stub IdP', () => {
  test.each<{ what: string; answer: () => StubAnswer; label: string }>([
    { what: 'a wrong client secret answered with a WWW-Authenticate challenge', answer: () => json(401, { error: 'invalid_client' }, { 'www-authenticate': 'Basic realm="stub", error="invalid_client"' }), label: 'misconfigured' },
    { what: 'invalid_client without a challenge', answer: () => json(401, { error: 'invalid_client', error_description: 'client authentication failed' }), label: 'misconfigured' },
    { what: 'unauthorized_client', answer: () => json(400, { error: 'unauthorized_client' }), label: 'misconfigured' },
    { what: 'a 503 temporarily_unavailable', answer: () => json(503, { error: 'temporarily_unavailable' }), label: 'server_error' },
    { what: 'a 500 without an OAuth body', answer: () => ({ status: 500, headers: { 'content-type': 'text/plain' }, body: 'oops' }), label: 'server_error' },
    { what: 'a 429 slow_down', answer: () => json(429, { error: 'slow_down' }), label: 'server_error' },
    { what: 'an HTML page with status 200 (a proxy\'s login page)', answer: () => ({ status: 200, headers: { 'content-type': 'text/html' }, body: '<html>sign in</html>' }), label: 'bad_response' },
    { what: 'a 200 JSON without an access token', answer: () => json(200, { token_type: 'Bearer' }), label: 'bad_response' },
    { what: 'invalid_scope (the IdP\'s configuration changed, not the user\'s session)', answer: () => json(400, { error: 'invalid_scope' }), label: 'server_error' },
  ])('$what → 503, label $label, and the same cookie works once the IdP answers again', async ({ answer, label }) => {
    const svc = await service();
    try {
      const cookie = await sessionCookie();
      clock.advance(120_000);
      tokenAnswer = answer();
      const failed = await check(svc, cookie);
      expect(failed.status).toBe(503);
      expect(failed.headers.getSetCookie()).toEqual([]);
      expect(await metricValue(svc, `oidc_authz_session_refreshes_total{result="unavailable",error="${label}"}`)).toBe(1);
      tokenAnswer = null;
      const recovered = await check(svc, cookie);
      expect(recovered.status).toBe(200);
      expect(recovered.headers.getSetCookie().some((c) => c.startsWith('oidc_authz='))).toBe(true);
    } finally {
      await svc.close();
    }
  });
});

describe('a token endpoint that never answers — stub IdP', () => {
  test('held past oidc.timeout → 503, counted as timeout (not bad_response), and the same cookie works once the IdP answers again', async () => {
    const svc = await service(undefined, '1s');
    try {
      const cookie = await sessionCookie();
      clock.advance(120_000);
      holdToken = true;
      const failed = await check(svc, cookie);
      expect(failed.status).toBe(503);
      expect(failed.headers.getSetCookie()).toEqual([]);
      expect(await metricValue(svc, 'oidc_authz_session_refreshes_total{result="unavailable",error="timeout"}')).toBe(1);
      expect(await metricValue(svc, 'oidc_authz_session_refreshes_total{result="unavailable",error="bad_response"}')).toBe(0);
      holdToken = false;
      expect((await check(svc, cookie)).status).toBe(200);
    } finally {
      await svc.close();
    }
  });
});

describe('refresh answers that end the session — stub IdP', () => {
  test.each([
    { what: 'invalid_grant (revoked, expired, used)', error: 'invalid_grant' },
    { what: 'invalid_request (Dex: a newer login replaced the refresh token)', error: 'invalid_request' },
  ])('$what → 401 session_revoked, remembered for the rest of the session (no second call to the IdP)', async ({ error }) => {
    const svc = await service();
    try {
      const cookie = await sessionCookie();
      clock.advance(120_000);
      tokenAnswer = json(400, { error, error_description: 'no longer good' });
      const before = refreshes;
      expect((await check(svc, cookie)).status).toBe(401);
      clock.advance(3600_000);
      tokenAnswer = null;
      const later = await check(svc, cookie);
      expect(later.status).toBe(401);
      expect(await later.json()).toMatchObject({ reason: 'session_revoked' });
      expect(refreshes - before).toBe(1);
    } finally {
      await svc.close();
    }
  });
});

describe('a good refresh whose claim sources cannot be read — stub IdP', () => {
  test('userinfo down right after the refresh: the new tokens are kept (not the spent refresh token), its claims left out until the next refresh', async () => {
    const svc = await service(['id_token', 'userinfo']);
    try {
      const cookie = await sessionCookie({ team: 'blue' });
      expect((await check(svc, cookie, '/blue/board')).status).toBe(200);
      clock.advance(120_000);
      userinfoAnswer = { status: 503, headers: { 'content-type': 'text/plain' }, body: 'down' };
      const degraded = await check(svc, cookie, '/blue/board');
      // Fail closed on what could not be read: the userinfo-only claim does not match…
      expect(degraded.status).toBe(403);
      // …but the session carries the rotated refresh token in a new cookie, so it does not end.
      const renewed = degraded.headers.getSetCookie().find((c) => c.startsWith('oidc_authz='));
      expect(renewed).toBeDefined();
      expect(await metricValue(svc, 'oidc_authz_session_refreshes_total{result="ok",error="claims_unavailable"}')).toBe(1);
      expect(svc.logs.find((l) => String(l.msg).startsWith('claims could not be read after a refresh'))).toBeDefined();
      // Userinfo back; the next refresh (30 s later at the most) reads the claim again.
      userinfoAnswer = null;
      clock.advance(31_000);
      const restored = await check(svc, renewed!.split(';', 1)[0]!, '/blue/board');
      expect(restored.status).toBe(200);
    } finally {
      await svc.close();
    }
  });

  test('a refresh without a new ID token or expires_in does not make every check refresh', async () => {
    const svc = await service();
    try {
      const cookie = await sessionCookie();
      clock.advance(120_000);
      tokenAnswer = json(200, { access_token: 'opaque', token_type: 'Bearer', refresh_token: 'rotated-x' });
      const before = refreshes;
      const first = await check(svc, cookie);
      expect(first.status).toBe(200);
      const renewed = first.headers.getSetCookie().find((c) => c.startsWith('oidc_authz='))!.split(';', 1)[0]!;
      for (let i = 0; i < 3; i++) expect((await check(svc, renewed)).status).toBe(200);
      expect(refreshes - before).toBe(1);
    } finally {
      await svc.close();
    }
  });
});
