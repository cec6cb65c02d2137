/**
 * The offline-token route's pure parts: the rule's compile errors, the header plan (set only by the
 * hand-over answer, removed from every other allow), the one-time hand-over cookie, and decide + respond.
 */
import type { ServerResponse } from 'node:http';
import type { AuthResult, Authenticator } from '../../src/authn/authenticate.js';
import { buildIdentity, compileIssuerMappings } from '../../src/authn/identity.js';
import { decide, type Decision } from '../../src/check/decide.js';
import { checkRequestFrom } from '../../src/check/request.js';
import { createResponder, responderOptionsFor } from '../../src/check/respond.js';
import { parseConfig } from '../../src/config/load.js';
import type { ConfigInput } from '../../src/config/schema.js';
import { upstreamHeaderPlan } from '../../src/envoy-contract.js';
import { createOfflineHandover, OFFLINE_HANDOVER_SECONDS, type OfflineHandover } from '../../src/oidc/offline.js';
import { compilePolicy } from '../../src/policy/rules.js';
import { cookieNamesOf } from '../../src/session/cookie-header.js';
import { createSealer } from '../../src/session/seal.js';
import { secretsFromLines } from '../../src/session/secrets.js';

const ISSUER = 'https://idp.example.org/realms/r';
const base = { oidc: { issuer: ISSUER, clientId: 'oidc-authz', clientSecretFile: '/dev/null' }, session: { secretsFile: '/dev/null' }, publicUrl: 'https://kf.example.org' };
const RULES: NonNullable<ConfigInput['rules']> = [
  { name: 'grant', paths: ['/jobs/grant'], allow: 'authenticated', offlineToken: { header: 'x-offline-token' } },
  { name: 'rest', paths: ['/**'], allow: 'authenticated' },
];

describe('config', () => {
  test.each<[string, Record<string, unknown>, string]>([
    ['a capture', { paths: ['/jobs/{id}'] }, 'rules.0.paths.0: "/jobs/{id}": a rule with offlineToken takes exact paths only'],
    ['a wildcard', { paths: ['/jobs/grant', '/jobs/**'] }, 'rules.0.paths.1: "/jobs/**": a rule with offlineToken takes exact paths only'],
    ['anonymous', { allow: 'anonymous' }, 'rules.0.offlineToken: needs a rule that authenticates the caller'],
    ['audit mode', { mode: 'audit' }, 'rules.0.offlineToken: has no effect on a rule in mode: audit'],
    ['a reserved header', { offlineToken: { header: 'authorization' } }, 'rules.0.offlineToken.header: "authorization" is a header the gateway or this service sets'],
    ['an Envoy header', { offlineToken: { header: 'x-envoy-original-path' } }, 'rules.0.offlineToken.header'],
    ['with upstreamToken', { upstreamToken: { exchange: { audience: 'a' } } }, 'rules.0.offlineToken: cannot be combined with upstreamToken'],
  ])('%s is refused at start-up, naming the field', (_name, change, message) => {
    expect(() => parseConfig({ ...base, rules: [{ ...RULES[0]!, ...change } as never] })).toThrow(message);
  });

  test('the header is set upstream only by the hand-over and removed from every other allow', () => {
    const plan = upstreamHeaderPlan(parseConfig({ ...base, rules: RULES }));
    expect(plan.upstreamOnAllow).toContain('x-offline-token');
    expect(plan.removeOnAnonymousAllow.split(',')).toContain('x-offline-token');
    expect(plan.removeOnAuthenticatedAllow.split(',')).toContain('x-offline-token');
    expect(upstreamHeaderPlan(parseConfig({ ...base, rules: [RULES[1]!] })).upstreamOnAllow).not.toContain('x-offline-token');
  });
});

describe('the hand-over cookie', () => {
  const handover = createOfflineHandover(createSealer(secretsFromLines(['offline-handover-test-secret-0123456789abcdef'])), 'oidc_authz', { secure: 'auto', domain: undefined }, () => 1_000_000);
  const alice = { issuer: ISSUER, subject: 'alice' };
  const cookieOf = (setCookie: string) => setCookie.split(';')[0]!;

  test('scoped to the path, HttpOnly, short-lived; opened once, for that path and that user only', async () => {
    const setCookie = await handover.create('offline-token', alice, '/jobs/grant', true);
    expect(setCookie).toMatch(/^oidc_authz_login_offline=/);
    expect(setCookie).toContain('Path=/jobs/grant');
    expect(setCookie).toContain('HttpOnly');
    expect(setCookie).toContain(`Max-Age=${OFFLINE_HANDOVER_SECONDS}`);
    expect(setCookie).not.toContain('offline-token;');
    const cookie = cookieOf(setCookie);
    await expect(handover.consume(cookie, '/jobs/other', alice)).resolves.toEqual({ kind: 'none' });
    await expect(handover.consume(cookie, '/jobs/grant', { issuer: ISSUER, subject: 'bob' })).resolves.toEqual({ kind: 'other_user' });
    await expect(handover.consume(cookie, '/jobs/grant', alice)).resolves.toEqual({ kind: 'token', token: 'offline-token' });
    await expect(handover.consume(cookie, '/jobs/grant', alice)).resolves.toEqual({ kind: 'none' });
    await expect(handover.consume(`${cookie.slice(0, -3)}x~2`, '/jobs/grant', alice)).resolves.toEqual({ kind: 'none' });
    expect(handover.clear('/jobs/grant', true)).toMatch(/^oidc_authz_login_offline=; Max-Age=0; Path=\/jobs\/grant/);
  });
});

describe('decide and respond', () => {
  const config = parseConfig({ ...base, rules: RULES });
  const policy = compilePolicy(config);
  const mapping = compileIssuerMappings(config).get(ISSUER)!;
  const authenticator: Authenticator = {
    authenticate(request): AuthResult {
      const via = request.headers.authorization ? 'bearer' : 'cookie';
      const built = buildIdentity({ iss: ISSUER, sub: 'alice', email: 'alice@example.org', email_verified: true }, mapping, via);
      if (!built.ok) throw new Error(built.reason);
      return { kind: 'identity', identity: built.identity };
    },
  };
  let found: Awaited<ReturnType<OfflineHandover['consume']>> = { kind: 'none' };
  const offline: OfflineHandover = { cookieName: 'x', create: () => Promise.resolve(''), consume: () => Promise.resolve(found), clear: (path) => `gone; Path=${path}` };
  const respond = createResponder(responderOptionsFor(config, true));
  const check = async (path: string, headers: Record<string, string>) => {
    const request = checkRequestFrom('GET', path, { host: 'kf.example.org', cookie: 'a=1', ...headers }, 'https');
    const decision: Decision = await decide(request, { policy, authenticator, loginUrl: () => 'https://kf.example.org/oauth2/start?rd=x', cookieNames: cookieNamesOf(config.session), offline });
    let status = 0;
    let sent: string[] = [];
    respond({ writeHead: (s: number, h: string[]) => { status = s; sent = h; }, end: () => undefined } as unknown as ServerResponse, decision);
    const header = (name: string) => sent.flatMap((value, i) => (i % 2 === 0 && value === name ? [sent[i + 1]!] : []));
    return { decision, status, header };
  };

  test('with a hand-over: the token in the header (not also removed), the cookie deleted', async () => {
    found = { kind: 'token', token: 'offline-token' };
    const { status, header } = await check('/jobs/grant', { 'sec-fetch-mode': 'navigate', accept: 'text/html' });
    expect(status).toBe(200);
    expect(header('x-offline-token')).toEqual(['offline-token']);
    expect(header('x-envoy-auth-headers-to-remove')[0]!.split(',')).not.toContain('x-offline-token');
    expect(header('set-cookie')).toEqual(['gone; Path=/jobs/grant']);
  });

  test('without: a browser goes to the offline login, an API client gets 403, a bearer caller too; another route removes the header', async () => {
    found = { kind: 'none' };
    const navigation = await check('/jobs/grant', { 'sec-fetch-mode': 'navigate', accept: 'text/html' });
    expect(navigation.status).toBe(302);
    expect(navigation.header('location')).toEqual(['https://kf.example.org/oauth2/start?rd=x&offline=1']);
    expect((await check('/jobs/grant', { 'sec-fetch-mode': 'cors' })).decision).toMatchObject({ kind: 'forbidden', reason: 'offline_grant_required' });
    found = { kind: 'token', token: 'offline-token' };
    expect((await check('/jobs/grant', { authorization: 'Bearer t' })).decision).toMatchObject({ kind: 'forbidden', reason: 'offline_grant_required' });
    const other = await check('/notebooks/x', { 'sec-fetch-mode': 'navigate' });
    expect(other.status).toBe(200);
    expect(other.header('x-offline-token')).toEqual([]);
    expect(other.header('x-envoy-auth-headers-to-remove')[0]!.split(',')).toContain('x-offline-token');
  });

  test('a grant of another user is refused and deleted (no login loop)', async () => {
    found = { kind: 'other_user' };
    const { decision, header } = await check('/jobs/grant', { 'sec-fetch-mode': 'navigate' });
    expect(decision).toMatchObject({ kind: 'forbidden', reason: 'offline_grant_other_user' });
    expect(header('set-cookie')).toEqual(['gone; Path=/jobs/grant']);
  });
});
