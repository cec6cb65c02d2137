/**
 * Opaque access tokens through the check endpoint, introspected (RFC 7662) at a real authorization server
 * on 127.0.0.1 that issues random opaque tokens (test/support/introspection-server.ts; Keycloak issues
 * JWTs only, its introspection of those is in test/idp/keycloak-introspection.test.ts). The service clock
 * is moved to expire cached answers; nothing sleeps.
 */
import request from 'supertest';
import type { ConfigInput } from '../../src/config/schema.js';
import { metricValue } from '../support/gateway-client.js';
import { startOpaqueTokenServer, type OpaqueTokenServer } from '../support/introspection-server.js';
import { createSigningKey, startIssuer, type TestIssuer } from '../support/issuer.js';
import { startService, tempFile, TestClock, type RunningService } from '../support/service.js';

const AUDIENCE = 'kubeflow';
const rules: NonNullable<ConfigInput['rules']> = [
  { name: 'workspace', paths: ['/workspaces/{ws}/**'], allow: { groups: ['{ws}'] } },
  { name: 'everything-else', paths: ['/**'], allow: 'authenticated' },
];

let idp: OpaqueTokenServer;
let svc: RunningService;
/** A JWT issuer whose tokens the same authorization server introspects (jwt: always). */
let jwtIssuer: TestIssuer;
let jwtSvc: RunningService;
const clock = new TestClock();

beforeAll(async () => {
  idp = await startOpaqueTokenServer();
  jwtIssuer = await startIssuer([await createSigningKey('ES256', 'ec-1')], '/jwt');
  jwtSvc = await startService({
    issuers: [{
      issuer: jwtIssuer.issuer,
      audiences: [AUDIENCE],
      introspection: { endpoint: idp.introspectionEndpoint, clientId: idp.clientId, clientSecretFile: tempFile(idp.clientSecret), opaqueTokens: false, jwt: 'always', cacheFor: '30s' },
    }],
    rules,
  }, { now: clock.now });
  svc = await startService({
    issuers: [{
      issuer: idp.issuer,
      audiences: [AUDIENCE],
      // The endpoint comes from the server's discovery document.
      introspection: { clientId: idp.clientId, clientSecretFile: tempFile(`${idp.clientSecret}\n`), cacheFor: '30s', inactiveCacheFor: '10s', unavailableFor: '2s' },
    }],
    rules,
  }, { now: clock.now });
});

afterAll(async () => {
  await Promise.all([svc?.close(), jwtSvc?.close()]);
  await Promise.all([idp?.stop(), jwtIssuer?.stop()]);
});

const check = (path: string, token: string, service = svc) => request(service.url).get(`/authz${path}`).set('host', 'kubeflow.example.com').set('authorization', `Bearer ${token}`);
const person = (extra: Record<string, unknown> = {}) => ({ sub: 'u-1', aud: AUDIENCE, email: 'alice@example.com', email_verified: true, groups: ['ws-a'], ...extra });
const introspections = (result: string) => metricValue(svc, `oidc_authz_introspections_total{issuer="${idp.issuer}",result="${result}"}`);

test('active opaque token → 200 with the identity mapped from the answer; the rules see its groups; cached', async () => {
  const token = idp.issue(person());
  const before = idp.introspections;
  const res = await check('/workspaces/ws-a/x', token);
  expect(res.status).toBe(200);
  expect(res.headers['kubeflow-userid']).toBe('alice@example.com');
  expect(res.headers['kubeflow-groups']).toBe('ws-a');
  // The request was RFC 7662's: the token and the hint, client_secret_basic accepted.
  expect(idp.lastForm?.get('token')).toBe(token);
  expect(idp.lastForm?.get('token_type_hint')).toBe('access_token');
  expect((await check('/workspaces/ws-b/x', token)).status).toBe(403);
  await check('/pipelines/', token).expect(200);
  expect(idp.introspections).toBe(before + 1);
  expect(await introspections('active')).toBeGreaterThanOrEqual(1);
});

test('concurrent checks of one new token make one introspection request (single-flight)', async () => {
  const token = idp.issue(person());
  const before = idp.introspections;
  const answers = await Promise.all(Array.from({ length: 10 }, () => check('/pipelines/', token)));
  expect(answers.map((res) => res.status)).toEqual(Array(10).fill(200));
  expect(idp.introspections).toBe(before + 1);
});

test('an opaque token that happens to look like a JWT (three base64url parts) is introspected too', async () => {
  const token = 'opaque1.opaque2.opaque3';
  idp.register(token, person({ email: 'bob@example.com', groups: [] }));
  const res = await check('/pipelines/', token);
  expect(res.status).toBe(200);
  expect(res.headers['kubeflow-userid']).toBe('bob@example.com');
});

test('inactive (unknown) token → 401 token_inactive, remembered for inactiveCacheFor, then asked again', async () => {
  const junk = 'not-a-token-this-server-issued';
  const before = idp.introspections;
  const res = await check('/pipelines/', junk);
  expect(res.status).toBe(401);
  expect(res.body).toMatchObject({ error: 'unauthorized', reason: 'token_inactive' });
  expect(res.headers['www-authenticate']).toMatch(/^Bearer /);
  await check('/pipelines/', junk).expect(401);
  expect(idp.introspections).toBe(before + 1);
  clock.advance(11_000);
  await check('/pipelines/', junk).expect(401);
  expect(idp.introspections).toBe(before + 2);
  expect(await introspections('inactive')).toBeGreaterThanOrEqual(2);
});

test('a token the IdP refuses to read (400) is inactive for that token only: the next caller\'s token is still asked about', async () => {
  const res = await check('/pipelines/', 'x'.repeat(5000));
  expect(res.status).toBe(401);
  expect(res.body).toMatchObject({ reason: 'token_inactive' });
  await check('/pipelines/', idp.issue(person())).expect(200);
});

test('revoked at the IdP → still answered from cache within cacheFor, then 401 token_inactive', async () => {
  const token = idp.issue(person());
  await check('/pipelines/', token).expect(200);
  idp.revoke(token);
  await check('/pipelines/', token).expect(200);
  clock.advance(31_000);
  const res = await check('/pipelines/', token);
  expect(res.status).toBe(401);
  expect(res.body.reason).toBe('token_inactive');
});

test.each<[string, () => string, string]>([
  ['a token for another client (aud, azp, client_id) → wrong_audience', () => idp.issue(person({ aud: 'other-app', client_id: 'other-app' })), 'wrong_audience'],
  ['a refresh token → invalid_token', () => idp.issueRefreshToken(person()), 'invalid_token'],
  ['an active token whose answer has no verified email → unverified_email', () => idp.issue(person({ email_verified: false })), 'unverified_email'],
])('%s', async (_name, makeToken, reason) => {
  const res = await check('/pipelines/', makeToken());
  expect(res.status).toBe(401);
  expect(res.body.reason).toBe(reason);
});

test('IdP down → 503 introspection_unavailable, not cached; a flood within unavailableFor costs no request; back up → 200', async () => {
  const token = idp.issue(person());
  const errorsBefore = await introspections('error');
  await idp.stop();
  // unavailableFor is on the service's clock: held still, the flood below is within it however slow the machine.
  const thaw = clock.freeze();
  try {
    const res = await check('/pipelines/', token);
    expect(res.status).toBe(503);
    expect(res.body).toEqual({ error: 'unavailable', reason: 'introspection_unavailable' });
    expect(res.headers['retry-after']).toBeDefined();
    // Other tokens within unavailableFor: answered 503 without trying the IdP again.
    for (const other of [idp.issue(person()), 'junk-1', 'junk-2']) await check('/pipelines/', other).expect(503);
    expect(await introspections('error')).toBe(errorsBefore + 1);
    expect(svc.logs.some((line) => line.msg === 'introspection failed' && JSON.stringify(line).includes(idp.clientSecret))).toBe(false);
  } finally {
    thaw();
    await idp.start();
  }
  clock.advance(2_001);
  // The 503 was not cached: the same token works as soon as the IdP answers.
  const res = await check('/pipelines/', token);
  expect(res.status).toBe(200);
  expect(res.headers['kubeflow-userid']).toBe('alice@example.com');
});

describe('jwt: always (a JWT issuer whose tokens are introspected too)', () => {
  const jwt = (claims: Record<string, unknown> = {}) => jwtIssuer.sign(person(claims));

  test('a verified JWT the IdP says is active → 200 with the JWT\'s claims; revoked → 401 token_inactive after cacheFor', async () => {
    const token = await jwt({ email: 'carol@example.com' });
    idp.register(token, { iss: jwtIssuer.issuer, sub: 'u-1', aud: AUDIENCE });
    const res = await check('/workspaces/ws-a/x', token, jwtSvc);
    expect(res.status).toBe(200);
    expect(res.headers['kubeflow-userid']).toBe('carol@example.com');
    expect(idp.lastForm?.get('token')).toBe(token);
    idp.revoke(token);
    await check('/pipelines/', token, jwtSvc).expect(200);
    clock.advance(31_000);
    const revoked = await check('/pipelines/', token, jwtSvc);
    expect(revoked.status).toBe(401);
    expect(revoked.body.reason).toBe('token_inactive');
  });

  test('a valid JWT the IdP does not know → 401 token_inactive', async () => {
    const res = await check('/pipelines/', await jwt(), jwtSvc);
    expect(res.status).toBe(401);
    expect(res.body.reason).toBe('token_inactive');
  });

  test('a JWT that fails its own checks is refused without asking the IdP', async () => {
    const before = idp.introspections;
    const res = await check('/pipelines/', await jwt({ aud: 'other-app' }), jwtSvc);
    expect(res.status).toBe(401);
    expect(res.body.reason).toBe('wrong_audience');
    expect(idp.introspections).toBe(before);
  });

  test('an opaque token goes nowhere when no issuer takes them (opaqueTokens: false) → 401 malformed_token', async () => {
    const before = idp.introspections;
    const res = await check('/pipelines/', idp.issue(person()), jwtSvc);
    expect(res.status).toBe(401);
    expect(res.body.reason).toBe('malformed_token');
    expect(idp.introspections).toBe(before);
  });
});
