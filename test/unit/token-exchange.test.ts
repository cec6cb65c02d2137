/**
 * Per-route token exchange, without an IdP: the contract's pure parts (cache key, reuse window, error
 * mapping), the exchanger (cache, single flight, failures not cached), the rule schema and compiler, the
 * header plan, and decide + respond on the answer Envoy gets.
 */
import type { ServerResponse } from 'node:http';
import type { AuthResult, Authenticator } from '../../src/authn/authenticate.js';
import { buildIdentity, compileIssuerMappings } from '../../src/authn/identity.js';
import { decide, type Decision } from '../../src/check/decide.js';
import { checkRequestFrom } from '../../src/check/request.js';
import { createResponder, responderOptionsFor } from '../../src/check/respond.js';
import { ConfigError, parseConfig } from '../../src/config/load.js';
import type { Config, ConfigInput } from '../../src/config/schema.js';
import { extAuthzProvider, upstreamHeaderPlan } from '../../src/envoy-contract.js';
import { compilePolicy, PolicyError } from '../../src/policy/rules.js';
import { cookieNamesOf } from '../../src/session/cookie-header.js';
import {
  exchangeCacheKey, exchangeErrorOf, failureOfStatus, reusableUntil, EXCHANGE_EXPIRY_MARGIN_MS,
  type ExchangeGrantResult, type ExchangeTarget, type TokenExchanger,
} from '../../src/token-exchange/contract.js';
import { createTokenExchanger } from '../../src/token-exchange/exchanger.js';

const A: ExchangeTarget = { audience: 'ws-a', scope: null };

describe('the contract', () => {
  test('cache key: the subject token only hashed; audience and scope each make their own entry', () => {
    const key = exchangeCacheKey('secret-token', A);
    expect(key).not.toContain('secret-token');
    expect(key).toBe(exchangeCacheKey('secret-token', { audience: 'ws-a', scope: null }));
    expect(new Set([key, exchangeCacheKey('secret-token', { audience: 'ws-b', scope: null }), exchangeCacheKey('secret-token', { audience: 'ws-a', scope: 'read' }), exchangeCacheKey('other-token', A)]).size).toBe(4);
  });

  test('reuse: until the margin before exp, never past the subject token, not at all without a stated expiry', () => {
    const now = 1_000_000;
    expect(reusableUntil(now, now + 300_000, null)).toBe(now + 300_000 - EXCHANGE_EXPIRY_MARGIN_MS);
    expect(reusableUntil(now, now + 300_000, now + 60_000)).toBe(now + 60_000);
    expect(reusableUntil(now, now + EXCHANGE_EXPIRY_MARGIN_MS, null)).toBeNull();
    expect(reusableUntil(now, null, now + 60_000)).toBeNull();
  });

  test('errors: the IdP\'s trouble is 503, its refusals 403; unknown codes are "other"', () => {
    expect(failureOfStatus(400, 'invalid_request')).toEqual({ kind: 'refused', error: 'invalid_request' });
    expect(failureOfStatus(401, 'invalid_client')).toEqual({ kind: 'refused', error: 'invalid_client' });
    expect(failureOfStatus(403, 'access_denied')).toEqual({ kind: 'refused', error: 'access_denied' });
    expect(failureOfStatus(400, 'made_up_by_the_idp')).toEqual({ kind: 'refused', error: 'other' });
    expect(failureOfStatus(502, undefined)).toEqual({ kind: 'unavailable', error: 'other' });
    expect(failureOfStatus(503, 'temporarily_unavailable')).toEqual({ kind: 'unavailable', error: 'temporarily_unavailable' });
    expect(failureOfStatus(429, 'slow_down')).toEqual({ kind: 'unavailable', error: 'other' });
    expect(failureOfStatus(400, 'server_error').kind).toBe('unavailable');
    expect(exchangeErrorOf(undefined)).toBe('other');
  });
});

/** A grant whose answers the test releases one by one. */
function controlledGrant() {
  const calls: Array<{ subject: string; target: ExchangeTarget; answer: (result: ExchangeGrantResult) => void }> = [];
  const grant = (subject: string, target: ExchangeTarget) => new Promise<ExchangeGrantResult>((resolve) => calls.push({ subject, target, answer: resolve }));
  return { calls, grant };
}

describe('the exchanger', () => {
  let now = 1_000_000;
  const counted: string[] = [];
  const make = (grant: (subject: string, target: ExchangeTarget) => Promise<ExchangeGrantResult>) =>
    createTokenExchanger({ issuer: ISSUER, grant, now: () => now, maxEntries: 2, count: (result, error) => counted.push(`${result}:${error}`) });
  beforeEach(() => {
    now = 1_000_000;
    counted.length = 0;
  });

  test('one IdP call for concurrent requests; the next answers synchronously from the cache until the margin', async () => {
    const { calls, grant } = controlledGrant();
    const exchanger = make(grant);
    const first = exchanger.exchange('t1', null, A);
    const second = exchanger.exchange('t1', null, A);
    expect(first).toBe(second);
    expect(calls).toHaveLength(1);
    calls[0]!.answer({ kind: 'ok', accessToken: 'exchanged-1', expiresAt: now + 120_000 });
    await expect(first).resolves.toEqual({ ok: true, token: 'exchanged-1' });
    expect(exchanger.exchange('t1', null, A)).toEqual({ ok: true, token: 'exchanged-1' });
    now += 120_000 - EXCHANGE_EXPIRY_MARGIN_MS;
    expect(exchanger.exchange('t1', null, A)).toBeInstanceOf(Promise);
    expect(calls).toHaveLength(2);
    expect(counted).toEqual(['ok:', 'hit:']);
  });

  test('never reused past the subject token\'s expiry; another audience is another exchange', async () => {
    const { calls, grant } = controlledGrant();
    const exchanger = make(grant);
    const pending = exchanger.exchange('t1', now + 10_000, A);
    calls[0]!.answer({ kind: 'ok', accessToken: 'exchanged', expiresAt: now + 300_000 });
    await pending;
    expect(exchanger.exchange('t1', now + 10_000, A)).toEqual({ ok: true, token: 'exchanged' });
    expect(exchanger.exchange('t1', now + 10_000, { audience: 'ws-b', scope: null })).toBeInstanceOf(Promise);
    now += 10_000;
    expect(exchanger.exchange('t1', now, A)).toBeInstanceOf(Promise);
  });

  test('refusals and outages are answered, not cached; a throwing grant is an outage', async () => {
    const { calls, grant } = controlledGrant();
    const exchanger = make(grant);
    const refused = exchanger.exchange('t1', null, A);
    calls[0]!.answer({ kind: 'refused', error: 'invalid_request' });
    await expect(refused).resolves.toEqual({ ok: false, reason: 'exchange_refused', error: 'invalid_request' });
    const down = exchanger.exchange('t1', null, A);
    expect(calls).toHaveLength(2);
    calls[1]!.answer({ kind: 'unavailable', error: 'timeout' });
    await expect(down).resolves.toEqual({ ok: false, reason: 'exchange_unavailable', error: 'timeout' });
    const broken = make(() => Promise.reject(new Error('bug')));
    await expect(broken.exchange('t1', null, A)).resolves.toEqual({ ok: false, reason: 'exchange_unavailable', error: 'other' });
    expect(counted).toEqual(['refused:invalid_request', 'unavailable:timeout', 'unavailable:other']);
  });

  test('bounded: the least recently used token goes first', async () => {
    const exchanger = make((subject) => Promise.resolve({ kind: 'ok', accessToken: `x-${subject}`, expiresAt: now + 300_000 }));
    for (const subject of ['a', 'b', 'c']) await exchanger.exchange(subject, null, A);
    expect(exchanger.size).toBe(2);
    expect(exchanger.exchange('a', null, A)).toBeInstanceOf(Promise);
  });
});

const ISSUER = 'https://idp.example.org/realms/r';
const oidc = { issuer: ISSUER, clientId: 'oidc-authz', clientSecretFile: '/dev/null' };
const session = { secretsFile: '/dev/null' };
const publicUrl = 'https://kf.example.org';
const EXCHANGE_RULES: NonNullable<ConfigInput['rules']> = [
  { name: 'pipelines', paths: ['/pipelines/**'], allow: 'authenticated', upstreamToken: { exchange: { audience: 'ws-a', scope: 'openid read' } }, cors: { preflight: 'allow' } },
  { name: 'rest', paths: ['/**'], allow: 'authenticated' },
];

describe('config', () => {
  test('upstreamToken needs an authenticating, enforcing rule', () => {
    const rules = (rule: Record<string, unknown>) => [{ name: 'r', paths: ['/x'], upstreamToken: { exchange: { audience: 'a' } }, ...rule }] as ConfigInput['rules'];
    const compile = (rule: Record<string, unknown>) => () => compilePolicy({ rules: rules(rule) as Config['rules'], defaultRule: 'deny' });
    expect(compile({ allow: 'anonymous' })).toThrow(new PolicyError('rules.0.upstreamToken', 'needs a rule that authenticates the caller (allow: authenticated or a requirement), not allow: anonymous'));
    expect(compile({ allow: 'deny' })).toThrow(PolicyError);
    // At start-up: the config is refused naming the field.
    expect(() => parseConfig({ oidc, session, publicUrl, rules: rules({ allow: 'anonymous' }) })).toThrow('rules.0.upstreamToken: needs a rule that authenticates');
    expect(compile({ allow: 'authenticated', mode: 'audit' })).toThrow('rules.0.upstreamToken: has no effect on a rule in mode: audit');
    expect(compilePolicy(parseConfig({ oidc, session, publicUrl, rules: EXCHANGE_RULES })).rules[0]!.exchange).toEqual({ audience: 'ws-a', scope: 'openid read' });
  });

  test.each([
    [{ exchange: { audience: 'has space' } }, 'rules.0.upstreamToken.exchange.audience'],
    [{ exchange: { audience: 'a', scope: 'two  spaces' } }, 'rules.0.upstreamToken.exchange.scope'],
    [{ exchange: { audience: 'a', resource: 'x' } }, 'rules.0.upstreamToken.exchange'],
    [{ exchange: {} }, 'rules.0.upstreamToken.exchange.audience'],
  ])('%j is refused naming %s', (upstreamToken, field) => {
    let error: unknown;
    try {
      parseConfig({ oidc, session, publicUrl, rules: [{ name: 'r', paths: ['/x'], allow: 'authenticated', upstreamToken } as never] });
    } catch (caught) {
      error = caught;
    }
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as ConfigError).message).toContain(field);
  });

  test('the plan lists authorization when a rule exchanges (so ours replaces the client\'s), and not otherwise', () => {
    const withExchange = parseConfig({ oidc, session, publicUrl, rules: EXCHANGE_RULES });
    expect(upstreamHeaderPlan(withExchange).upstreamOnAllow).toContain('authorization');
    expect(extAuthzProvider(withExchange, { service: 's', port: 1 }).headersToUpstreamOnAllow).toContain('authorization');
    expect(upstreamHeaderPlan(parseConfig({ oidc, session, publicUrl, rules: [EXCHANGE_RULES[1]!] })).upstreamOnAllow).not.toContain('authorization');
    // Never removed: the other routes keep getting the client's own Authorization header as before.
    expect(upstreamHeaderPlan(withExchange).removeOnAuthenticatedAllow.split(',')).not.toContain('authorization');
  });

  test('an offline-token header is removed in its underscore spellings too (WSGI reads x_offline_token as x-offline-token)', () => {
    const plan = upstreamHeaderPlan(parseConfig({ oidc, session, publicUrl, rules: [{ name: 'grant', paths: ['/jobs/grant'], allow: 'authenticated', offlineToken: { header: 'x-offline-token' } }] }));
    for (const list of [plan.removeOnAnonymousAllow, plan.removeOnAuthenticatedAllow]) {
      expect(list.split(',')).toEqual(expect.arrayContaining(['x-offline-token', 'x_offline_token', 'x_offline-token', 'x-offline_token']));
    }
  });
});

describe('decide and respond', () => {
  const config: Config = parseConfig({ oidc, session, publicUrl, rules: EXCHANGE_RULES });
  const policy = compilePolicy(config);
  const mapping = compileIssuerMappings(config).get(ISSUER)!;
  const authenticator: Authenticator = {
    authenticate(request): AuthResult {
      const via = request.headers.authorization ? 'bearer' : request.headers.cookie ? 'cookie' : null;
      if (via === null) return { kind: 'none' };
      // x-foreign: a token of another trusted issuer (a Kubernetes service account's, say).
      const iss = request.headers['x-foreign'] ? 'https://kubernetes.default.svc.cluster.local' : ISSUER;
      const built = buildIdentity({ iss, sub: 'alice', email: 'alice@example.org', email_verified: true, exp: 2_000_000_000 }, mapping, via);
      if (!built.ok) throw new Error(built.reason);
      // A session begun while a rule exchanges keeps its access token.
      return { kind: 'identity', identity: request.headers.cookie === 'kept=1' ? { ...built.identity, accessToken: 'session-access-token' } : built.identity };
    },
  };
  const asked: Array<{ subject: string; exp: number | null; target: ExchangeTarget }> = [];
  let answer: ReturnType<TokenExchanger['exchange']> = { ok: true, token: 'exchanged-token' };
  const exchange: TokenExchanger = {
    issuer: ISSUER,
    exchange(subject, exp, target) {
      asked.push({ subject, exp, target });
      return answer;
    },
  };
  const respond = createResponder(responderOptionsFor(config, true));
  const check = async (path: string, headers: Record<string, string>) => {
    const request = checkRequestFrom(headers.method ?? 'GET', path, { host: 'kf.example.org', ...headers }, 'https');
    const decision: Decision = await decide(request, { policy, authenticator, loginUrl: null, cookieNames: cookieNamesOf(config.session), exchange });
    let status = 0;
    let sent: string[] = [];
    respond({ writeHead: (s: number, h: string[]) => { status = s; sent = h; }, end: () => undefined } as unknown as ServerResponse, decision);
    const header = (name: string) => sent.flatMap((value, i) => (i % 2 === 0 && value === name ? [sent[i + 1]!] : []));
    return { decision, status, header, sent };
  };
  beforeEach(() => {
    asked.length = 0;
    answer = { ok: true, token: 'exchanged-token' };
  });

  test('an exchange rule\'s allow sends the exchanged token as authorization, from the caller\'s bearer token and its exp', async () => {
    const { status, header, decision } = await check('/pipelines/runs', { authorization: 'Bearer callers-token' });
    expect(status).toBe(200);
    expect(header('authorization')).toEqual(['Bearer exchanged-token']);
    expect(asked).toEqual([{ subject: 'callers-token', exp: 2_000_000_000_000, target: { audience: 'ws-a', scope: 'openid read' } }]);
    expect(decision).toMatchObject({ kind: 'allow', upstreamToken: 'exchanged-token' });
  });

  test('a token of another issuer is never sent to the login IdP\'s token endpoint: 403 exchange_refused (no_subject_token)', async () => {
    const { status, decision } = await check('/pipelines/runs', { authorization: 'Bearer service-account-token', 'x-foreign': '1' });
    expect(status).toBe(403);
    expect(decision).toMatchObject({ kind: 'forbidden', reason: 'exchange_refused', exchangeError: 'no_subject_token' });
    expect(asked).toEqual([]);
  });

  test('another route asks for no exchange and sets no authorization (the client\'s own passes as before)', async () => {
    const { status, sent } = await check('/notebooks/x', { authorization: 'Bearer callers-token' });
    expect(status).toBe(200);
    expect(asked).toEqual([]);
    expect(sent).not.toContain('authorization');
  });

  test('refused → 403 exchange_refused, unavailable → 503 exchange_unavailable, with the IdP\'s error', async () => {
    answer = Promise.resolve({ ok: false, reason: 'exchange_refused', error: 'invalid_request' });
    const refused = await check('/pipelines/runs', { authorization: 'Bearer callers-token' });
    expect(refused.status).toBe(403);
    expect(refused.decision).toMatchObject({ kind: 'forbidden', reason: 'exchange_refused', exchangeError: 'invalid_request' });
    answer = { ok: false, reason: 'exchange_unavailable', error: 'timeout' };
    const down = await check('/pipelines/runs', { authorization: 'Bearer callers-token' });
    expect(down.status).toBe(503);
    expect(down.decision).toMatchObject({ kind: 'unavailable', reason: 'exchange_unavailable', exchangeError: 'timeout' });
  });

  test('a session\'s kept access token is the subject token', async () => {
    const { status, header } = await check('/pipelines/runs', { cookie: 'kept=1' });
    expect(status).toBe(200);
    expect(header('authorization')).toEqual(['Bearer exchanged-token']);
    expect(asked.map((a) => a.subject)).toEqual(['session-access-token']);
  });

  test('a session without an access token (begun before a rule exchanged): refused as no_subject_token, the IdP not asked', async () => {
    const { status, decision } = await check('/pipelines/runs', { cookie: 'x=1' });
    expect(status).toBe(403);
    expect(decision).toMatchObject({ kind: 'forbidden', reason: 'exchange_refused', exchangeError: 'no_subject_token' });
    expect(asked).toEqual([]);
  });

  test('a CORS preflight let through to an exchange route has the client\'s authorization removed', async () => {
    const { status, sent } = await check('/pipelines/runs', { method: 'OPTIONS', origin: 'https://app.example.org', 'access-control-request-method': 'POST', authorization: 'Bearer callers-token' });
    expect(status).toBe(200);
    expect(sent[sent.indexOf('x-envoy-auth-headers-to-remove') + 1]!.split(',')).toContain('authorization');
  });
});
