/**
 * session.store "redis" with real parts: a real redis-server (test/support/redis.ts), a real OpenID
 * Provider (oidc-provider, demo/dev-idp.ts) and two service replicas in this process, as two pods behind
 * one gateway: a browser logs in through replica A, its checks go to either.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { startDevIdp, type DevIdp } from '../../demo/dev-idp.js';
import type { ConfigInput } from '../../src/config/schema.js';
import { Browser, sendHttp, type RawExchange } from '../support/browser.js';
import { runCli, startServeProcess, writeTempConfig, type ServeProcess } from '../support/process.js';
import { createSealer } from '../../src/session/seal.js';
import { secretsFromLines } from '../../src/session/secrets.js';
import { readCookieHeader } from '../../src/session/cookie-header.js';
import { CookieSessionStore } from '../../src/session/store.js';
import { metricValue } from '../support/gateway-client.js';
import { join } from 'node:path';
import { startCluster, startRedis, startSentinelSet, TEST_TLS_DIR, type RunningRedis } from '../support/redis.js';
import { freePort, pollUntil, startService, tempFile, TestClock, type RunningService } from '../support/service.js';

const SECRET = 'redis-store-cookie-secret-0123456789abcdefghij';
const CLIENT = { clientId: 'kubeflow', clientSecret: 'client-secret-for-redis-tests' };
const CACHE_FOR_MS = 1_000;
const manyGroups = Array.from({ length: 500 }, (_, i) => `team-with-a-long-descriptive-name-${String(i).padStart(3, '0')}`);
/** 500 groups whose names make an ID token of about 20 KB: the largest session the issue asks about. */
const hugeGroups = Array.from({ length: 500 }, (_, i) => `g${String(i).padStart(3, '0')}-${'w'.repeat(20)}`);

let idp: DevIdp;
let redis: RunningRedis;
let portA: number;
let publicUrl: string;
let host: string;
const clock = new TestClock();
/**
 * Between the IdP and replica A for back-channel logouts: keeps each logout token the IdP sent (to replay
 * it) and passes the request on unchanged.
 */
let relay: Server;
const logoutTokens: string[] = [];
const secretsFile = tempFile(SECRET);
const clientSecretFile = tempFile(CLIENT.clientSecret);

beforeAll(async () => {
  portA = await freePort();
  publicUrl = `http://127.0.0.1:${portA}`;
  host = `127.0.0.1:${portA}`;
  redis = await startRedis({ persistent: true });
  relay = createServer((req, res) => {
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (chunk: string) => (body += chunk));
    req.on('end', () => {
      const token = new URLSearchParams(body).get('logout_token');
      if (token !== null) logoutTokens.push(token);
      postForm(`${publicUrl}/oauth2/backchannel_logout`, body).then(
        (answer) => res.writeHead(answer.status, { 'content-type': 'application/json' }).end(answer.body),
        () => res.writeHead(502).end(),
      );
    });
  });
  await new Promise<void>((resolve) => relay.listen(0, '127.0.0.1', resolve));
  idp = await startDevIdp({
    issuerPath: '/dex',
    users: {
      alice: { password: 'alice-pw', email: 'alice@example.com', groups: ['team-a'] },
      bob: { password: 'bob-pw', email: 'bob@example.com', groups: ['team-b'] },
      big: { password: 'big-pw', email: 'big@example.com', groups: manyGroups },
      huge: { password: 'huge-pw', email: 'huge@example.com', groups: hugeGroups },
    },
    clients: [{
      ...CLIENT,
      redirectUris: [`${publicUrl}/oauth2/callback`],
      postLogoutRedirectUris: [`${publicUrl}/oauth2/signed_out`],
      backchannelLogoutUri: `http://127.0.0.1:${(relay.address() as AddressInfo).port}/backchannel_logout`,
    }],
    log: () => undefined,
  });
});

afterAll(async () => {
  await new Promise((resolve) => relay.close(resolve));
  await idp.stop();
  await redis.stop();
});

type RedisSettings = NonNullable<NonNullable<ConfigInput['session']>['redis']>;

function config(overrides: { port?: number; store?: 'cookie' | 'redis'; redis?: RedisSettings } = {}): ConfigInput {
  return {
    listen: { port: overrides.port ?? 0 },
    publicUrl,
    oidc: { issuer: idp.issuer, clientId: CLIENT.clientId, clientSecretFile },
    session: {
      secretsFile, secure: false, maxAge: '12h',
      store: overrides.store ?? 'redis',
      ...(overrides.store === 'cookie' ? {} : { redis: overrides.redis ?? { url: redis.url, cacheFor: CACHE_FOR_MS / 1000, commandTimeout: '1s' } }),
    },
    rules: [{ name: 'everything', paths: ['/**'], allow: 'authenticated' }],
  };
}

type Answer = RawExchange;

/** A check as Envoy sends it for an API call from the browser on the public host, at one replica. */
function check(svc: { readonly url: string }, path: string, cookie?: string, headers: Record<string, string> = {}): Promise<Answer> {
  return ask(`${svc.url}/authz${path}`, { host, accept: 'application/json', 'sec-fetch-mode': 'cors', ...(cookie ? { cookie } : {}), ...headers });
}

function ask(url: string, headers: Record<string, string>): Promise<Answer> {
  return sendHttp('GET', url, headers);
}

/** A form POST as an IdP sends a logout token (to replica A unless `url` says otherwise). */
function postForm(url: string, body: string): Promise<Answer> {
  return sendHttp('POST', url, { host, 'content-type': 'application/x-www-form-urlencoded' }, body);
}

/** Replica A (on the public port, where the IdP sends browsers back) and replica B, both on one clock; once B is ready. */
async function startReplicas(redisSettings?: RedisSettings): Promise<[RunningService, RunningService]> {
  const a = await startService(config({ port: portA, redis: redisSettings }), { now: clock.now });
  const b = await startService(config({ redis: redisSettings }), { now: clock.now });
  await pollUntil(() => ask(`${b.url}/readyz`, {}), (answer) => answer.status === 200);
  return [a, b];
}

/** Logs `username` in through replica A (publicUrl); the session cookie as a Cookie header, and its Set-Cookie lines. */
async function login(username: string, password: string, browser = new Browser()): Promise<{ cookie: string; setCookies: string[]; browser: Browser }> {
  const first = await browser.get(`${publicUrl}/authz/notebooks/`, { host, 'sec-fetch-mode': 'navigate', accept: 'text/html' });
  expect(first.status).toBe(302);
  const callback = await browser.loginAtIdp(first.location!, username, password);
  const landed = await browser.get(callback);
  expect(landed.status).toBe(302);
  const setCookies = landed.headers.getSetCookie().filter((line) => /^oidc_authz(\.\d+)?=/.test(line));
  const cookie = browser.jar.list(publicUrl).filter((c) => /^oidc_authz(\.\d+)?$/.test(c.name)).map((c) => `${c.name}=${c.value}`).join('; ');
  expect(cookie).not.toBe('');
  return { cookie, setCookies, browser };
}

describe('two replicas, one Redis', () => {
  let a: RunningService;
  let b: RunningService;
  beforeAll(async () => {
    [a, b] = await startReplicas();
  });
  afterAll(async () => {
    await a.close();
    await b.close();
  });

  test('the cookie is a short signed handle; the session it stands for answers on either replica', async () => {
    const { cookie, setCookies } = await login('alice', 'alice-pw');
    expect(setCookies).toHaveLength(1);
    expect(Buffer.byteLength(setCookies[0]!)).toBeLessThan(200);
    expect(cookie).toMatch(/^oidc_authz=r1\.\d+\.[A-Za-z0-9_-]{43}\.[A-Za-z0-9_-]{22}$/);
    for (const svc of [a, b]) {
      const answer = await check(svc, '/notebooks/', cookie);
      expect(answer.status).toBe(200);
      expect(answer.headers.get('kubeflow-userid')).toBe('alice@example.com');
    }
  });

  test('a Redis reader learns nothing: no user id, group or token in any key or value', async () => {
    await login('alice', 'alice-pw');
    const keys = (await redis.command('KEYS', '*')).split('\r\n').filter((line) => line.startsWith('oidc-authz:'));
    expect(keys.some((k) => k.startsWith('oidc-authz:s:'))).toBe(true);
    for (const key of keys) {
      expect(key).not.toMatch(/alice|example\.com|team-a/);
      const type = await redis.command('TYPE', key);
      const value = type.includes('string') ? await redis.command('GET', key) : await redis.command('SMEMBERS', key);
      expect(value).not.toMatch(/alice|example\.com|team-a|eyJ/);
    }
  });

  test("someone who can write to Redis but has no cookie secret cannot give their cookie another user's session", async () => {
    const alice = await login('alice', 'alice-pw');
    const mallory = await login('bob', 'bob-pw');
    // A record's key is the SHA-256 of the handle's random part; Mallory knows her own handle, and Alice's key is among the records.
    const records = (await redis.command('KEYS', 'oidc-authz:s:*')).split('\r\n').filter((line) => line.startsWith('oidc-authz:s:'));
    const { createHash } = await import('node:crypto');
    const keyOf = (cookie: string) => `oidc-authz:s:${createHash('sha256').update(cookie.split('.')[2]!).digest('base64url')}`;
    expect(records).toEqual(expect.arrayContaining([keyOf(alice.cookie), keyOf(mallory.cookie)]));
    const alicesRecord = await redis.command('GET', keyOf(alice.cookie));
    const sealed = alicesRecord.split('\r\n')[1]!;
    expect(await redis.command('SET', keyOf(mallory.cookie), sealed, 'KEEPTTL')).toBe('+OK');
    clock.advance(CACHE_FOR_MS);
    const answer = await check(b, '/x', mallory.cookie);
    expect(answer.status).toBe(401);
    expect(answer.headers.get('kubeflow-userid')).toBeNull();
  });

  test('a forged handle, or one signed with another secret, is refused without a session', async () => {
    const { cookie } = await login('alice', 'alice-pw');
    const tampered = cookie.replace(/.(?=\.[A-Za-z0-9_-]{22}$)/, (c) => (c === 'A' ? 'B' : 'A'));
    expect((await check(b, '/x', tampered)).status).toBe(401);
    expect((await check(b, '/x', 'oidc_authz=r1.1.' + 'a'.repeat(43) + '.' + 'b'.repeat(22))).status).toBe(401);
  });

  test('sign-out on one replica: refused there at once, on the other within session.redis.cacheFor', async () => {
    const { cookie } = await login('alice', 'alice-pw');
    expect((await check(b, '/x', cookie)).status).toBe(200);
    const signedOut = await ask(`${a.url}/oauth2/sign_out`, { host, cookie, accept: 'text/html' });
    expect(signedOut.status).toBe(302);
    expect((await check(a, '/x', cookie)).status).toBe(401);
    // B read the session less than cacheFor ago; its next read, once cacheFor is over, finds it gone.
    clock.advance(CACHE_FOR_MS + 1);
    const refused = await check(b, '/x', cookie);
    expect({ status: refused.status, body: JSON.parse(refused.body) as unknown }).toMatchObject({ status: 401, body: { reason: 'session_invalid' } });
  });

  test("`oidc-authz sessions revoke --user` ends every session of that user on both replicas, and no one else's", async () => {
    const first = await login('alice', 'alice-pw');
    const second = await login('alice', 'alice-pw');
    const bob = await login('bob', 'bob-pw');
    for (const cookie of [first.cookie, second.cookie, bob.cookie]) expect((await check(b, '/x', cookie)).status).toBe(200);
    const { revokeSessions } = await import('../../src/session-store/revoke-cli.js');
    const { parseConfig } = await import('../../src/config/load.js');
    expect(await revokeSessions(parseConfig(config()), { kind: 'user', userId: 'Alice@Example.com' })).toBeGreaterThanOrEqual(2);
    for (const svc of [a, b]) {
      for (const cookie of [first.cookie, second.cookie]) await pollUntil(() => check(svc, '/x', cookie), (answer) => answer.status === 401, 5_000);
    }
    expect((await check(a, '/x', bob.cookie)).status).toBe(200);
  });

  test('back-channel logout from the IdP (oidc-provider): the sessions of that IdP session end on both replicas, no one else\'s', async () => {
    const alice = await login('alice', 'alice-pw');
    const bob = await login('bob', 'bob-pw');
    for (const cookie of [alice.cookie, bob.cookie]) expect((await check(b, '/x', cookie)).status).toBe(200);
    // Alice signs out at the IdP itself (another application's sign-out, or the IdP's own page).
    const confirm = await alice.browser.get(`${idp.issuer}/session/end`);
    const ended = await alice.browser.followRedirects(await alice.browser.submitForm(confirm));
    expect(ended.status).toBe(200);
    await pollUntil(() => metricValue(a, 'oidc_authz_backchannel_logouts_total{result="ok"}'), (n) => n >= 1, 5_000);
    for (const svc of [a, b]) await pollUntil(() => check(svc, '/x', alice.cookie), (answer) => answer.status === 401, 5_000);
    expect((await check(b, '/x', bob.cookie)).status).toBe(200);
  });

  test('back-channel logout refuses what is not a fresh logout token from the IdP: missing, unsigned, altered, replayed', async () => {
    const post = (body: string) => postForm(`${a.url}/oauth2/backchannel_logout`, body);
    const real = logoutTokens.at(-1);
    expect(real).toBeDefined();
    const [header, payload, signature] = real!.split('.') as [string, string, string];
    const claims = JSON.parse(Buffer.from(payload, 'base64url').toString('utf8')) as Record<string, unknown>;
    expect(claims).toMatchObject({ iss: idp.issuer, aud: CLIENT.clientId, events: { 'http://schemas.openid.net/event/backchannel-logout': {} } });
    expect(typeof claims.sid).toBe('string');

    const replayed = await post(`logout_token=${real}`);
    expect(replayed.status).toBe(400);
    expect(JSON.parse(replayed.body)).toMatchObject({ error: 'invalid_request', error_description: expect.stringContaining('jti') });
    const missing = await post('');
    expect(missing.status).toBe(400);
    const unsigned = `${Buffer.from(JSON.stringify({ alg: 'none' })).toString('base64url')}.${payload}.`;
    expect((await post(`logout_token=${unsigned}`)).status).toBe(400);
    // Another user's subject and a new jti in the IdP's own token: the signature no longer matches.
    const altered = Buffer.from(JSON.stringify({ ...claims, sub: 'someone-else', jti: 'new' })).toString('base64url');
    expect((await post(`logout_token=${header}.${altered}.${signature}`)).status).toBe(400);
    expect(await metricValue(a, 'oidc_authz_backchannel_logouts_total{result="replayed"}')).toBe(1);
    expect(await metricValue(a, 'oidc_authz_backchannel_logouts_total{result="invalid_token"}')).toBeGreaterThanOrEqual(3);
  });

  test('due for refresh on both replicas at once, with an IdP that rotates refresh tokens: one refresh cluster-wide, every check 200, the session lives on', async () => {
    const { cookie } = await login('alice', 'alice-pw');
    const refreshes = async (result: string) => (await metricValue(a, `oidc_authz_session_refreshes_total{result="${result}",error="none"}`)) + (await metricValue(b, `oidc_authz_session_refreshes_total{result="${result}",error="none"}`));
    for (let round = 1; round <= 2; round++) {
      const before = await refreshes('ok');
      // Past session.revalidateAfter (5m): every replica finds the session due.
      clock.advance(6 * 60_000);
      const answers = await Promise.all(Array.from({ length: 40 }, (_, i) => check(i % 2 === 0 ? a : b, `/x/${i}`, cookie)));
      expect(answers.map((answer) => answer.status)).toEqual(Array(40).fill(200));
      expect(await refreshes('ok')).toBe(before + 1);
    }
    expect(await metricValue(a, 'oidc_authz_session_refreshes_total{result="rejected",error="invalid_grant"}') + await metricValue(b, 'oidc_authz_session_refreshes_total{result="rejected",error="invalid_grant"}')).toBe(0);
  });

  test('Redis sees one read per session per session.redis.cacheFor per replica, however many checks', async () => {
    const { cookie } = await login('alice', 'alice-pw');
    const reads = () => metricValue(b, 'oidc_authz_session_store_operations_total{op="read",result="ok"}');
    const before = await reads();
    const thaw = clock.freeze();
    try {
      for (let i = 0; i < 25; i++) expect((await check(b, `/x/${i}`, cookie)).status).toBe(200);
      expect(await reads()).toBe(before + 1);
      clock.advance(CACHE_FOR_MS);
      for (let i = 0; i < 25; i++) expect((await check(b, `/y/${i}`, cookie)).status).toBe(200);
      expect(await reads()).toBe(before + 2);
    } finally {
      thaw();
    }
  });

  test('a new login in the same browser ends the session it replaces', async () => {
    const first = await login('alice', 'alice-pw');
    // The sign-in link of a page (the IdP still knows the browser: no password asked this time).
    const callback = await first.browser.loginAtIdp(`${publicUrl}/oauth2/start?rd=${encodeURIComponent(`${publicUrl}/`)}`, 'alice', 'alice-pw');
    expect((await first.browser.get(callback)).status).toBe(302);
    const again = first.browser.jar.list(publicUrl).filter((c) => c.name === 'oidc_authz').map((c) => `${c.name}=${c.value}`).join('; ');
    expect(again).not.toBe(first.cookie);
    await pollUntil(() => check(b, '/x', first.cookie), (answer) => answer.status === 401, 5_000);
    expect((await check(b, '/x', again)).status).toBe(200);
  });

  test('the largest session (500 groups, a 20 KB ID token): with Redis the cookie stays one line under 200 bytes', async () => {
    const { cookie, setCookies } = await login('huge', 'huge-pw');
    expect(setCookies).toHaveLength(1);
    expect(Buffer.byteLength(setCookies[0]!)).toBeLessThan(200);
    const answer = await check(b, '/x', cookie);
    expect(answer.status).toBe(200);
    expect(String(answer.headers.get('kubeflow-groups')).split(',')).toHaveLength(500);
  });
});

describe('cookie sessions', () => {
  let svc: RunningService;
  beforeAll(async () => {
    svc = await startService(config({ port: portA, store: 'cookie' }));
  });
  afterAll(async () => {
    await svc.close();
  });

  test('back-channel logout answers 501, saying it needs sessions kept in Redis', async () => {
    const answer = await postForm(`${svc.url}/oauth2/backchannel_logout`, 'logout_token=x.y.z');
    expect(answer.status).toBe(501);
    expect(JSON.parse(answer.body)).toMatchObject({ error: 'not_supported', error_description: expect.stringContaining('session.store: redis') });
  });

  test('the largest session (500 groups, a 20 KB ID token) in a cookie: chunks of under 4 KB each, about 30 KB in all', async () => {
    const { cookie, setCookies } = await login('huge', 'huge-pw');
    const names = { base: 'oidc_authz', sessionPrefix: '' } as const;
    const session = readCookieHeader(cookie, names).session;
    expect(session.kind).toBe('present');
    const store = new CookieSessionStore(createSealer(secretsFromLines([SECRET])), { names, attributes: { secure: false }, maxAgeMs: 12 * 3600_000 });
    const data = await store.open(session.kind === 'present' ? session.value : '');
    expect(data!.idToken.length).toBeGreaterThan(19_000);
    expect(data!.idToken.length).toBeLessThan(25_000);
    expect(setCookies.length).toBeGreaterThan(5);
    for (const line of setCookies) expect(Buffer.byteLength(line)).toBeLessThan(4_096);
    const total = setCookies.reduce((sum, line) => sum + Buffer.byteLength(line), 0);
    expect(total).toBeGreaterThan(20_000);
    expect((await check(svc, '/x', cookie)).status).toBe(200);
  });
});

describe('Redis not there at start-up', () => {
  test('not ready until Redis answers, naming it; ready once it does', async () => {
    const later = await freePort();
    const svc = await startService(config({ redis: { url: `redis://127.0.0.1:${later}`, commandTimeout: '1s' } }));
    let late: RunningRedis | undefined;
    try {
      const before = await ask(`${svc.url}/readyz`, {});
      expect(before.status).toBe(503);
      expect(JSON.parse(before.body)).toMatchObject({ reason: 'session_store_unreachable' });
      expect(await metricValue(svc, 'oidc_authz_session_store_up')).toBe(0);
      late = await startRedis({ port: later });
      await pollUntil(() => ask(`${svc.url}/readyz`, {}), (answer) => answer.status === 200, 10_000);
      expect(await metricValue(svc, 'oidc_authz_session_store_up')).toBe(1);
    } finally {
      await svc.close();
      await late?.stop();
    }
  });
});

describe('Redis down, slow, back', () => {
  let a: RunningService;
  let b: RunningService;
  beforeAll(async () => {
    [a, b] = await startReplicas();
  });
  afterAll(async () => {
    redis.resume();
    await a.close();
    await b.close();
  });

  test('killed: 503 with retry-after for sessions not in memory, still ready, counted; restarted: no session lost, a sign-out made meanwhile is applied', async () => {
    const kept = await login('alice', 'alice-pw');
    const signedOutMeanwhile = await login('bob', 'bob-pw');
    // A login begun before the outage (sent on to the IdP), finished during it.
    const early = new Browser();
    const earlyStart = await early.get(`${publicUrl}/authz/y`, { host, 'sec-fetch-mode': 'navigate', accept: 'text/html' });
    const toIdp = await early.get(earlyStart.location!);
    expect(toIdp.status).toBe(302);
    await redis.kill();
    // Past the replicas' memory of both sessions.
    clock.advance(CACHE_FOR_MS + 1);
    const down = await check(b, '/x', kept.cookie);
    expect(down.status).toBe(503);
    expect(down.headers.get('retry-after')).toBe('5');
    expect(JSON.parse(down.body)).toMatchObject({ reason: 'session_store_unavailable' });
    // Still ready: bearer tokens, anonymous routes and sessions in memory work; a whole Deployment going
    // unready would turn them into the gateway's 503s too.
    expect((await ask(`${b.url}/readyz`, {})).status).toBe(200);
    expect(await metricValue(b, 'oidc_authz_session_store_up')).toBe(0);
    expect(await metricValue(b, 'oidc_authz_session_store_operations_total{op="read",result="error"}')).toBeGreaterThan(0);
    // A sign-out while Redis is away: cookies cleared now, the session ended once Redis is back.
    const signOut = await ask(`${a.url}/oauth2/sign_out`, { host, cookie: signedOutMeanwhile.cookie, accept: 'text/html' });
    expect(signOut.status).toBe(302);
    // A login while Redis is away: a clear page before the IdP; and one that began before the outage ends
    // on a clear page at the callback. No session either way.
    const browser = new Browser();
    const start = await browser.get(`${publicUrl}/authz/x`, { host, 'sec-fetch-mode': 'navigate', accept: 'text/html' });
    const refused = await browser.get(start.location!);
    expect(refused.status).toBe(503);
    expect(refused.headers.get('retry-after')).toBe('5');
    expect(refused.body).toContain('cannot store sessions right now');
    const failed = await early.get(await early.loginAtIdp(toIdp.location!, 'alice', 'alice-pw'));
    expect(failed.status).toBe(503);
    expect(failed.body).toContain('cannot store sessions right now');
    expect(early.jar.list(publicUrl).some((c) => c.name === 'oidc_authz')).toBe(false);

    await redis.restart();
    for (const svc of [a, b]) await pollUntil(() => metricValue(svc, 'oidc_authz_session_store_up'), (up) => up === 1, 10_000);
    expect((await check(b, '/x', kept.cookie)).status).toBe(200);
    await pollUntil(() => check(b, '/x', signedOutMeanwhile.cookie), (answer) => answer.status === 401, 5_000);
  });

  test('answering slowly: a check waits at most session.redis.commandTimeout, then 503; answers again when Redis does, and a sign-out made meanwhile is applied', async () => {
    const { cookie } = await login('alice', 'alice-pw');
    const signedOutWhileSlow = await login('bob', 'bob-pw');
    clock.advance(CACHE_FOR_MS + 1);
    redis.pause();
    try {
      const slow = await check(b, '/x', cookie);
      expect(slow.status).toBe(503);
      expect(JSON.parse(slow.body)).toMatchObject({ reason: 'session_store_unavailable' });
      // Its deletion times out on a connection that stays open (no reconnection to retry on).
      expect((await ask(`${a.url}/oauth2/sign_out`, { host, cookie: signedOutWhileSlow.cookie, accept: 'text/html' })).status).toBe(302);
    } finally {
      redis.resume();
    }
    await pollUntil(() => check(b, '/x', cookie), (answer) => answer.status === 200, 10_000);
    await pollUntil(() => check(b, '/x', signedOutWhileSlow.cookie), (answer) => answer.status === 401, 10_000);
  });
});

describe('two service processes (oidc-authz serve)', () => {
  const processes: ServeProcess[] = [];
  afterAll(async () => {
    for (const proc of processes) proc.child.kill('SIGTERM');
    await Promise.all(processes.map((proc) => proc.exited));
  });

  test('sign-out at one process: the other refuses within cacheFor; `oidc-authz sessions revoke --user` from the command line ends the rest', async () => {
    const configFile = (port: number) => writeTempConfig({ ...config({ port }), listen: { host: '127.0.0.1', port, metricsPort: 0 } });
    const fileA = configFile(portA);
    // Sessions of the tests above are in this Redis too: the count below is about this test's alone.
    await redis.command('FLUSHALL');
    processes.push(startServeProcess(fileA), startServeProcess(configFile(0)));
    const [listeningA, listeningB] = await Promise.all(processes.map((proc) => proc.waitForLog('listening')));
    const [procA, procB] = [listeningA, listeningB].map((record) => ({ url: `http://127.0.0.1:${String(record!.port)}` })) as [{ url: string }, { url: string }];
    for (const proc of [procA, procB]) await pollUntil(() => ask(`${proc.url}/readyz`, {}), (answer) => answer.status === 200);

    const alice = await login('alice', 'alice-pw');
    const bob = await login('bob', 'bob-pw');
    for (const cookie of [alice.cookie, bob.cookie]) expect((await check(procB, '/x', cookie)).status).toBe(200);
    expect((await ask(`${procA.url}/oauth2/sign_out`, { host, cookie: alice.cookie, accept: 'text/html' })).status).toBe(302);
    await pollUntil(() => check(procB, '/x', alice.cookie), (answer) => answer.status === 401, 5_000);

    const revoked = await runCli(['sessions', 'revoke', '--user', 'bob@example.com', '--config', fileA]);
    expect(revoked).toMatchObject({ code: 0, stdout: expect.stringMatching(/^1 session ended/) });
    for (const proc of [procA, procB]) await pollUntil(() => check(proc, '/x', bob.cookie), (answer) => answer.status === 401, 5_000);
  });
});

describe('Sentinel and Cluster', () => {
  test('through Sentinel: sessions survive a failover (the replica promoted, the service follows it)', async () => {
    const set = await startSentinelSet();
    const settings: RedisSettings = { sentinel: { name: set.masterName, nodes: [set.sentinel] }, cacheFor: CACHE_FOR_MS / 1000, commandTimeout: '1s' };
    const [a, b] = await startReplicas(settings);
    try {
      const { cookie } = await login('alice', 'alice-pw');
      expect((await check(b, '/x', cookie)).status).toBe(200);
      await set.killMaster();
      await pollUntil(() => set.currentMasterPort(), (port) => port === set.replicaPort, 20_000);
      clock.advance(CACHE_FOR_MS);
      // Each replica reconnects on its own retry schedule: until then a read fails at once (503, no queue).
      for (const replica of [b, a]) {
        const after = await pollUntil(() => check(replica, '/x', cookie), (answer) => answer.status !== 503, 20_000);
        expect(after.status).toBe(200);
      }
      // Writes reach the new master: a sign-out there is seen by the other replica.
      expect((await ask(`${a.url}/oauth2/sign_out`, { host, cookie, accept: 'text/html' })).status).toBe(302);
      await pollUntil(() => check(b, '/x', cookie), (answer) => answer.status === 401, 5_000);
    } finally {
      await a.close();
      await b.close();
      await set.stop();
    }
  }, 90_000);

  test('on a Redis Cluster of three masters: login, checks on both replicas, revocation by user across slots', async () => {
    const cluster = await startCluster();
    const settings: RedisSettings = { cluster: { nodes: [cluster.nodes[0]!] }, cacheFor: CACHE_FOR_MS / 1000, commandTimeout: '1s' };
    const [a, b] = await startReplicas(settings);
    try {
      const sessions = [await login('alice', 'alice-pw'), await login('alice', 'alice-pw'), await login('bob', 'bob-pw')];
      for (const { cookie } of sessions) expect((await check(b, '/x', cookie)).status).toBe(200);
      const { revokeSessions } = await import('../../src/session-store/revoke-cli.js');
      const { parseConfig } = await import('../../src/config/load.js');
      expect(await revokeSessions(parseConfig(config({ redis: settings })), { kind: 'user', userId: 'alice@example.com' })).toBe(2);
      for (const { cookie } of sessions.slice(0, 2)) await pollUntil(() => check(b, '/x', cookie), (answer) => answer.status === 401, 5_000);
      expect((await check(b, '/x', sessions[2]!.cookie)).status).toBe(200);
    } finally {
      await a.close();
      await b.close();
      await cluster.stop();
    }
  });
});

describe('TLS and a password', () => {
  test('rediss:// with the CA from tls.caFile and the password from passwordFile: sessions on both replicas; without the CA, never ready', async () => {
    const password = 'redis-password-for-tests-0123456789';
    const secure = await startRedis({ tls: true, password });
    const settings: RedisSettings = { url: secure.url, tls: { caFile: join(TEST_TLS_DIR, 'ca.crt') }, passwordFile: tempFile(password), cacheFor: CACHE_FOR_MS / 1000, commandTimeout: '1s' };
    const [a, b] = await startReplicas(settings);
    // Short connect timeouts: a refused client's last attempt (and its timer) ends soon after it is closed.
    const untrusting = await startService(config({ redis: { ...settings, tls: undefined, connectTimeout: '200ms' } }), { now: clock.now });
    const wrongPassword = await startService(config({ redis: { ...settings, passwordFile: tempFile('not-the-password'), connectTimeout: '200ms' } }), { now: clock.now });
    try {
      const { cookie } = await login('alice', 'alice-pw');
      expect((await check(b, '/x', cookie)).headers.get('kubeflow-userid')).toBe('alice@example.com');
      // The server's certificate is checked (rediss:// alone trusts only the public roots), and so is the password.
      for (const refused of [untrusting, wrongPassword]) {
        expect((await ask(`${refused.url}/readyz`, {})).status).toBe(503);
        expect((await check(refused, '/x', cookie)).status).toBe(503);
      }
    } finally {
      for (const svc of [a, b, untrusting, wrongPassword]) await svc.close();
      await secure.stop();
    }
  });
});
