/**
 * Denial logs under attack: the real service (real JWKS issuer on 127.0.0.1, real HTTP checks) flooded
 * with forged tokens writes a bounded number of "check denied" lines and counts the rest in /metrics.
 */
import { createSigningKey, startIssuer, type TestIssuer } from '../support/issuer.js';
import { startDevIdp, type DevIdp } from '../../demo/dev-idp.js';
import { startService, tempFile, TestClock, type RunningService } from '../support/service.js';

const AUDIENCE = 'kubeflow-oidc-authservice';
const PER_REASON = 20;
const FLOOD = 2000;

let issuer: TestIssuer;
let svc: RunningService;
const clock = new TestClock();

beforeAll(async () => {
  issuer = await startIssuer([await createSigningKey('RS256', 'k1')], '/dex');
  svc = await startService({
    issuers: [{ issuer: issuer.issuer, audiences: [AUDIENCE] }],
    rules: [{ name: 'everything', paths: ['/**'], allow: 'authenticated' }],
    // A window far longer than the flood takes on a slow machine: the test moves the clock, never waits.
    log: { level: 'info', rateLimit: { perReason: PER_REASON, window: '1h' } },
  }, { now: clock.now });
});

afterAll(async () => {
  await svc.close();
  await issuer.stop();
});

const check = (token: string) =>
  fetch(`${svc.url}/authz/pipelines/apis/v2beta1/runs`, { headers: { host: 'kubeflow.example.com', authorization: `Bearer ${token}` } });

/** A real token with its payload rewritten (each one different, so no cache answers for the signature check). */
async function forgedTokens(count: number): Promise<string[]> {
  const [header, payload, signature] = (await issuer.sign({ aud: AUDIENCE, email: 'mallory@example.com' })).split('.') as [string, string, string];
  const claims = JSON.parse(Buffer.from(payload, 'base64url').toString()) as Record<string, unknown>;
  return Array.from({ length: count }, (_, i) => `${header}.${Buffer.from(JSON.stringify({ ...claims, email: 'admin@example.com', jti: `forged-${i}` })).toString('base64url')}.${signature}`);
}

/** Sends every token, a few at a time (as a client flooding over some connections would). */
async function sendAll(tokens: string[], concurrency = 16): Promise<number[]> {
  const statuses: number[] = [];
  let next = 0;
  await Promise.all(Array.from({ length: concurrency }, async () => {
    while (next < tokens.length) {
      const res = await check(tokens[next++]!);
      await res.arrayBuffer();
      statuses.push(res.status);
    }
  }));
  return statuses;
}

const denialLines = (reason: string) => svc.logs.filter((r) => r.msg === 'check denied' && r.reason === reason);

async function metric(name: string, labels: string): Promise<number | undefined> {
  const text = await (await fetch(`${svc.metricsUrl}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith(`${name}{${labels}}`));
  return line === undefined ? undefined : Number(line.slice(line.lastIndexOf(' ') + 1));
}

test(`a flood of ${FLOOD.toLocaleString('en')} forged-token checks writes at most ${PER_REASON} denial lines and counts the rest`, async () => {
  const statuses = await sendAll(await forgedTokens(FLOOD));
  // Every forged token is still refused: the limit is on lines, never on answers.
  expect(statuses).toHaveLength(FLOOD);
  expect(new Set(statuses)).toEqual(new Set([401]));
  expect(await metric('oidc_authz_checks_total', 'decision="unauthorized",reason="bad_signature",rule="everything"')).toBe(FLOOD);

  expect(denialLines('bad_signature')).toHaveLength(PER_REASON);
  expect(await metric('oidc_authz_log_lines_suppressed_total', 'reason="bad_signature"')).toBe(FLOOD - PER_REASON);

  // The flood does not hide a denial of another reason: a token for another audience is logged.
  const res = await check(await issuer.sign({ aud: 'another-app', email: 'bob@example.com' }));
  expect(res.status).toBe(401);
  expect(denialLines('wrong_audience')).toHaveLength(1);

  // Once the window is over, the next denial of that reason brings the summary, then its own line.
  clock.advance(3_600_000);
  const [late] = await forgedTokens(1);
  expect((await check(late!)).status).toBe(401);
  const summaries = svc.logs.filter((r) => r.msg === 'log lines suppressed');
  expect(summaries).toEqual([expect.objectContaining({ level: 'warn', line: 'check denied', reason: 'bad_signature', suppressed: FLOOD - PER_REASON, limit: PER_REASON, windowSeconds: 3600 })]);
  expect(svc.logs.indexOf(summaries[0]!)).toBe(svc.logs.indexOf(denialLines('bad_signature')[PER_REASON]!) - 1);
  expect(denialLines('bad_signature')).toHaveLength(PER_REASON + 1);
  expect(svc.logs.filter((r) => r.msg === 'check denied')).toHaveLength(PER_REASON + 2);
});

describe('the limit applies to the info line only, and nothing dropped goes unsaid', () => {
  const startWith = (level: 'debug' | 'info') =>
    startService({
      issuers: [{ issuer: issuer.issuer, audiences: [AUDIENCE] }],
      rules: [{ name: 'everything', paths: ['/**'], allow: 'authenticated' }],
      log: { level, rateLimit: { perReason: 1, window: '1h' } },
    });
  const sendTo = async (service: RunningService, tokens: string[]) => {
    for (const token of tokens) {
      const res = await fetch(`${service.url}/authz/x`, { headers: { host: 'kubeflow.example.com', authorization: `Bearer ${token}` } });
      expect(res.status).toBe(401);
    }
  };

  test('at level debug every decision is logged, denials included: the operator asked for all of them', async () => {
    const debug = await startWith('debug');
    try {
      await sendTo(debug, await forgedTokens(5));
      expect(debug.logs.filter((r) => r.msg === 'check denied')).toHaveLength(5);
      expect(debug.logs.filter((r) => r.msg === 'log lines suppressed')).toEqual([]);
    } finally {
      await debug.close();
    }
  });

  test('a flood that stops before its window ends is summed up at shutdown', async () => {
    const info = await startWith('info');
    await sendTo(info, await forgedTokens(4));
    await info.close();
    const messages = info.logs.map((r) => r.msg);
    expect(messages.filter((m) => m === 'check denied')).toHaveLength(1);
    expect(info.logs.find((r) => r.msg === 'log lines suppressed')).toMatchObject({ reason: 'bad_signature', suppressed: 3 });
    expect(messages.indexOf('log lines suppressed')).toBeLessThan(messages.indexOf('stopped'));
  });
});

describe('the login endpoints under a flood', () => {
  let idp: DevIdp;
  let login: RunningService;
  beforeAll(async () => {
    idp = await startDevIdp({ issuerPath: '/dex', users: {}, clients: [{ clientId: 'kubeflow', clientSecret: 'flood-client-secret', redirectUris: ['http://kubeflow.example.com/oauth2/callback'] }], log: () => undefined });
    login = await startService({
      publicUrl: 'http://kubeflow.example.com',
      oidc: { issuer: idp.issuer, clientId: 'kubeflow', clientSecretFile: tempFile('flood-client-secret') },
      session: { secretsFile: tempFile('flood-cookie-secret-0123456789abcdefghijklmnop'), secure: false },
      log: { level: 'info', rateLimit: { perReason: PER_REASON, window: '1h' } },
    }, { now: clock.now });
  });
  afterAll(async () => {
    await login.close();
    await idp.stop();
  });

  test('500 made-up IdP errors sent to /oauth2/callback write at most 20 lines; every one still gets its page', async () => {
    const statuses: number[] = [];
    for (let i = 0; i < 500; i++) {
      const res = await fetch(`${login.url}/oauth2/callback?error=access_denied&error_description=flood-${i}`);
      await res.arrayBuffer();
      statuses.push(res.status);
    }
    expect(new Set(statuses)).toEqual(new Set([403]));
    expect(login.logs.filter((r) => r.msg === 'login refused by the identity provider')).toHaveLength(PER_REASON);
    const text = await (await fetch(`${login.metricsUrl}/metrics`)).text();
    expect(text).toContain(`oidc_authz_log_lines_suppressed_total{reason="login_idp_error"} ${500 - PER_REASON}`);
    // Without the transaction, the IdP's (here: the attacker's) words are not logged either.
    expect(login.logs.some((r) => JSON.stringify(r).includes('flood-'))).toBe(false);
  });
});
