/**
 * A JWKS that cannot be reached while the issuer has rotated a new key in (found by `make soak`, scenario 3):
 * tokens with a cached key keep working, a token with the new `kid` is unverifiable (503) for the whole
 * outage — not only the first one, whose refetch failed, but also those within the cooldown after it,
 * which used to get 401 unknown_key (and have that 401 remembered) — and works once the JWKS is back.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import request from 'supertest';
import { createSigningKey, startIssuer, type SigningKey, type TestIssuer } from '../support/issuer.js';
import { startService, TestClock, type RunningService } from '../support/service.js';

const AUDIENCE = 'soak-api';
let issuer: TestIssuer;
let k1: SigningKey;
let k2: SigningKey;
let jwks: Server;
let svc: RunningService;
const clock = new TestClock();
/** What the JWKS server publishes, and whether it answers at all. */
const state = { published: [] as SigningKey[], down: false, fetches: 0 };

beforeAll(async () => {
  [k1, k2] = await Promise.all([createSigningKey('RS256', 'outage-1'), createSigningKey('RS256', 'outage-2')]);
  issuer = await startIssuer([k1], '/outage');
  state.published = [k1];
  // The issuer's JWKS behind a server the test can take down: it then resets every connection.
  jwks = createServer((req, res) => {
    state.fetches++;
    if (state.down) {
      req.socket.resetAndDestroy();
      return;
    }
    res.writeHead(200, { 'content-type': 'application/jwk-set+json' });
    res.end(JSON.stringify({ keys: state.published.map((k) => k.publicJwk) }));
  });
  await new Promise<void>((resolve) => jwks.listen(0, '127.0.0.1', resolve));
  svc = await startService(
    {
      issuers: [{ issuer: issuer.issuer, audiences: [AUDIENCE], jwksUri: `http://127.0.0.1:${(jwks.address() as AddressInfo).port}/jwks` }],
      jwks: { cooldown: '30s' },
      rules: [{ name: 'all', paths: ['/**'], allow: 'authenticated' }],
    },
    { now: clock.now },
  );
});

afterAll(async () => {
  await svc.close();
  await issuer.stop();
  await new Promise<void>((resolve) => {
    jwks.close(() => resolve());
    jwks.closeAllConnections();
  });
});

const token = (user: string, key: SigningKey) =>
  issuer.sign({ aud: AUDIENCE, sub: user, email: `${user}@example.com`, email_verified: true, iat: Math.floor(clock.now() / 1000), exp: Math.floor(clock.now() / 1000) + 3600 }, { key });
const check = (jwt: string) => request(svc.url).get('/authz/x').set('host', 'h').set('authorization', `Bearer ${jwt}`);

test('a new kid gets 503 for the whole outage, cached keys keep working, and it works once the JWKS is back', async () => {
  await check(await token('before', k1)).expect(200);
  // Later than one cooldown after that fetch: an unknown kid may be looked up again.
  clock.advance(31_000);

  state.down = true;
  state.published = [k1, k2];
  const first = await token('new-1', k2);
  const second = await token('new-2', k2);

  const a = await check(first);
  expect(a.status).toBe(503);
  expect(a.body).toEqual({ error: 'unavailable', reason: 'jwks_unavailable' });
  const fetchesAfterFirst = state.fetches;
  // Within the cooldown of the failed fetch: still unavailable, and no fetch per token.
  const b = await check(second);
  expect(b.status).toBe(503);
  expect(b.body.reason).toBe('jwks_unavailable');
  expect((await check(first)).status).toBe(503);
  expect(state.fetches).toBe(fetchesAfterFirst);
  // A key that was cached before the outage: a token never seen before still verifies.
  const cached = await check(await token('during', k1));
  expect(cached.status).toBe(200);
  expect(cached.headers['kubeflow-userid']).toBe('during@example.com');

  // Back after the cooldown: the next unknown kid refetches and finds the new key; nothing was remembered as invalid.
  state.down = false;
  clock.advance(31_000);
  const c = await check(first);
  expect(c.status).toBe(200);
  expect(c.headers['kubeflow-userid']).toBe('new-1@example.com');
  await check(second).expect(200);
});

test('a kid the issuer does not publish is still refused (401) within the cooldown of a fetch that worked', async () => {
  const stranger = await createSigningKey('RS256', 'outage-stranger');
  const fetches = state.fetches;
  const a = await check(await token('stranger-1', stranger));
  expect(a.status).toBe(401);
  expect(a.body.reason).toBe('unknown_key');
  const b = await check(await token('stranger-2', stranger));
  expect(b.status).toBe(401);
  expect(state.fetches).toBeLessThanOrEqual(fetches + 1);
});
