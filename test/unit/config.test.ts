import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseDurationMs } from '../../src/config/duration.js';
import { applyEnvOverrides, ConfigError, formatIssuePath, loadConfigFile, parseConfig } from '../../src/config/load.js';
import type { Config } from '../../src/config/schema.js';
import { problemsOf } from '../support/config-problems.js';

/** Reads `a.b.0.c` out of a value, for table rows. */
function at(value: unknown, path: string): unknown {
  return path.split('.').reduce<unknown>((current, key) => (current as Record<string, unknown> | undefined)?.[key], value);
}

/** The problems of the ConfigError `run` throws; fails the test if it throws anything else or nothing. */
/** What browser login needs besides the oidc section itself. */
const OIDC = { publicUrl: 'https://kubeflow.example.com', session: { secretsFile: '/secrets/cookie-secrets' } };
/** Browser login, so that session.store "redis" has sessions to keep. */
const LOGIN = { ...OIDC, oidc: { issuer: 'https://idp.example.com', clientId: 'kubeflow' } };

describe('parseConfig: defaults of an empty config', () => {
  const config = parseConfig({});

  test.each<{ path: string; expected: unknown }>([
    { path: 'listen.host', expected: '0.0.0.0' },
    { path: 'listen.port', expected: 8080 },
    { path: 'listen.metricsPort', expected: 9090 },
    { path: 'listen.maxHeaderBytes', expected: 65_536 },
    { path: 'listen.shutdownTimeout', expected: 20_000 },
    { path: 'checkPathPrefix', expected: '/authz' },
    { path: 'trustForwardedProto', expected: false },
    { path: 'publicUrl', expected: undefined },
    { path: 'oidc', expected: undefined },
    { path: 'issuers', expected: [] },
    { path: 'jwks.maxAge', expected: 600_000 },
    { path: 'jwks.cooldown', expected: 30_000 },
    { path: 'jwks.timeout', expected: 5_000 },
    { path: 'bearer.clockSkew', expected: 30_000 },
    { path: 'bearer.maxTokenBytes', expected: 16_384 },
    { path: 'bearer.cacheMaxEntries', expected: 3_500 },
    { path: 'session.cookieName', expected: 'oidc_authz' },
    { path: 'session.maxAge', expected: 7 * 86_400_000 },
    { path: 'session.secure', expected: true },
    { path: 'identity.userIdHeader', expected: 'kubeflow-userid' },
    { path: 'identity.userIdClaim', expected: 'email' },
    { path: 'identity.userIdPrefix', expected: '' },
    { path: 'identity.userIdTransformers', expected: [] },
    { path: 'identity.groupsHeader', expected: 'kubeflow-groups' },
    { path: 'identity.groupsClaim', expected: 'groups' },
    { path: 'identity.allowUnverifiedEmail', expected: false },
    { path: 'identity.authRequestHeaders', expected: false },
    { path: 'redirectAllowList', expected: [] },
    { path: 'defaultRule', expected: 'deny' },
    { path: 'rules', expected: [] },
    { path: 'log.level', expected: 'info' },
    { path: 'log.rateLimit.perReason', expected: 20 },
    { path: 'log.rateLimit.window', expected: 10_000 },
  ])('$path defaults to $expected', ({ path, expected }) => {
    expect(at(config, path)).toEqual(expected);
  });

  test.each<{ path: string; expected: unknown }>([
    { path: 'oidc.scopes', expected: undefined },
    { path: 'oidc.claimsFrom', expected: ['id_token', 'access_token'] },
    { path: 'oidc.authorizedParties', expected: [] },
    { path: 'oidc.audiences', expected: [] },
    { path: 'oidc.emailVerifiedWhenAbsent', expected: false },
  ])('$path defaults to $expected once the oidc section is present', ({ path, expected }) => {
    const withOidc = parseConfig({ ...OIDC, oidc: { issuer: 'https://dex.example.com/dex', clientId: 'kubeflow' } });
    expect(at(withOidc, path)).toEqual(expected);
  });
});

test('issuers[].emailVerifiedWhenAbsent defaults to false: an email the IdP says nothing about is not verified', () => {
  expect(parseConfig({ issuers: [{ issuer: 'https://saas.example.com', audiences: ['a'] }] }).issuers[0]!.emailVerifiedWhenAbsent).toBe(false);
});

describe('durations', () => {
  test.each<{ input: string | number; expected: number | undefined }>([
    { input: '30s', expected: 30_000 },
    { input: '10m', expected: 600_000 },
    { input: '12h', expected: 43_200_000 },
    { input: '7d', expected: 604_800_000 },
    { input: '1h30m', expected: 5_400_000 },
    { input: '1m30s500ms', expected: 90_500 },
    { input: '500ms', expected: 500 },
    { input: '0s', expected: 0 },
    { input: '90', expected: 90_000 },
    { input: ' 30s ', expected: 30_000 },
    { input: 45, expected: 45_000 },
    { input: 0, expected: 0 },
    { input: 1.5, expected: 1_500 },
    { input: '', expected: undefined },
    { input: 'abc', expected: undefined },
    { input: 's', expected: undefined },
    { input: '1.5h', expected: undefined },
    { input: '-5s', expected: undefined },
    { input: '30S', expected: undefined },
    { input: '30 s', expected: undefined },
    { input: '1h 30m', expected: undefined },
    { input: '1w', expected: undefined },
    { input: '30s!', expected: undefined },
    { input: -1, expected: undefined },
    { input: Number.NaN, expected: undefined },
    { input: Number.POSITIVE_INFINITY, expected: undefined },
  ])('parseDurationMs($input) is $expected', ({ input, expected }) => {
    expect(parseDurationMs(input)).toBe(expected);
  });

  test.each<{ what: string; input: Record<string, unknown>; path: string; expected: number }>([
    { what: '"30s" for jwks.cooldown', input: { jwks: { cooldown: '30s' } }, path: 'jwks.cooldown', expected: 30_000 },
    { what: '"1h30m" for jwks.maxAge', input: { jwks: { maxAge: '1h30m' } }, path: 'jwks.maxAge', expected: 5_400_000 },
    { what: '"7d" for session.maxAge', input: { session: { maxAge: '7d' } }, path: 'session.maxAge', expected: 604_800_000 },
    { what: 'a number of seconds for listen.shutdownTimeout', input: { listen: { shutdownTimeout: 5 } }, path: 'listen.shutdownTimeout', expected: 5_000 },
  ])('config reads $what in milliseconds', ({ input, path, expected }) => {
    expect(at(parseConfig(input), path)).toBe(expected);
  });

  test.each<{ what: string; input: Record<string, unknown>; expected: string[] }>([
    { what: 'a word', input: { session: { maxAge: 'forever' } }, expected: ['session.maxAge: "forever" is not a duration (examples: 30s, 10m, 12h, 7d)'] },
    { what: 'a fraction', input: { bearer: { clockSkew: '1.5s' } }, expected: ['bearer.clockSkew: "1.5s" is not a duration (examples: 30s, 10m, 12h, 7d)'] },
    { what: 'a negative number', input: { jwks: { timeout: -1 } }, expected: ['jwks.timeout: "-1" is not a duration (examples: 30s, 10m, 12h, 7d)'] },
  ])('a bad duration ($what) is an error naming the field', ({ input, expected }) => {
    expect(problemsOf(() => parseConfig(input))).toEqual(expected);
  });
});

/** The start-up message for two issuers' people in one user-id space (the later issuer is the path). */
const PEOPLE_CLASH = (other: string, start: string) =>
  `the user ids of its people and of ${other}'s people both start with "${start}" (userIdPrefix + userIdMustStartWith): a person of each issuer could get the same user id. Give one of them its own userIdPrefix (e.g. "partner:"), or a userIdMustStartWith that all its ids start with (Kubernetes service accounts: "system:serviceaccount:"); only if both issuers are the same users (one IdP under two issuer URLs), give both the same userIdSpace`;
const K8S_ISSUER = (issuer: string) => ({ issuer, audiences: ['a'], userIdClaim: 'sub', userIdMustStartWith: 'system:serviceaccount:' });

const ACCOUNT_RISK = 'must not contain "account": Keycloak puts it into the aud of tokens issued to every client of the realm, so any of them would be accepted; add an audience mapper for your client (docs/idp/keycloak.md) or use authorizedParties';

describe('parseConfig: validation', () => {
  test.each<{ what: string; input: unknown; expected: string[] }>([
    { what: 'an unknown top-level field', input: { lisen: {} }, expected: ['(root): unknown field(s) "lisen"'] },
    { what: 'an unknown nested field', input: { listen: { prot: 1 } }, expected: ['listen: unknown field(s) "prot"'] },
    { what: 'several unknown fields in one place', input: { session: { name: 'x', ttl: 1 } }, expected: ['session: unknown field(s) "name", "ttl"'] },
    { what: 'an unknown field in a rule', input: { rules: [{ name: 'a', paths: ['/'], allow: 'deny', extra: 1 }] }, expected: ['rules.0: unknown field(s) "extra"'] },
    { what: 'an unknown field in an issuer', input: { issuers: [{ issuer: 'https://k8s.example.com', audiences: ['a'], jwks: 'x' }] }, expected: ['issuers.0: unknown field(s) "jwks"'] },
    { what: 'duplicate rule names', input: { rules: [{ name: 'a', paths: ['/x'], allow: 'deny' }, { name: 'b', paths: ['/y'], allow: 'deny' }, { name: 'a', paths: ['/z'], allow: 'deny' }] }, expected: ['rules.2.name: duplicate rule name "a"'] },
    { what: 'an issuer listed twice', input: { ...OIDC, oidc: { issuer: 'https://dex.example.com', clientId: 'c' }, issuers: [{ issuer: 'https://dex.example.com', audiences: ['a'] }] }, expected: ['issuers.0.issuer: issuer "https://dex.example.com" is configured twice (bearer tokens of the oidc issuer are configured under oidc: audiences, authorizedParties, machineIdentity)'] },
    { what: 'the same header for user id and groups', input: { identity: { userIdHeader: 'x-user', groupsHeader: 'x-user' } }, expected: ['identity.groupsHeader: must differ from identity.userIdHeader'] },
    {
      what: 'an issuer that names neither audiences nor authorized parties',
      input: { issuers: [{ issuer: 'https://kc.example.com/realms/x' }] },
      expected: ['issuers.0.audiences: name at least one of audiences or authorizedParties (a token must be meant for us), or set audienceCheckedBy: rules and check it in the rules'],
    },
    {
      what: 'Keycloak\'s realm-wide "account" audience for a bearer issuer',
      input: { issuers: [{ issuer: 'https://kc.example.com/realms/x', audiences: ['account'] }] },
      expected: [`issuers.0.audiences: ${ACCOUNT_RISK}`],
    },
    {
      what: 'Keycloak\'s realm-wide "account" audience next to others',
      input: { issuers: [{ issuer: 'https://kc.example.com/realms/x', audiences: ['kubeflow', 'account'] }] },
      expected: [`issuers.0.audiences: ${ACCOUNT_RISK}`],
    },
    {
      what: 'Keycloak\'s realm-wide "account" audience for the oidc issuer',
      input: { ...OIDC, oidc: { issuer: 'https://kc.example.com/realms/x', clientId: 'c', audiences: ['account'] } },
      expected: [`oidc.audiences: ${ACCOUNT_RISK}`],
    },
    {
      what: 'claim sources that do not start with the ID token',
      input: { ...OIDC, oidc: { issuer: 'https://kc.example.com/realms/x', clientId: 'c', claimsFrom: ['access_token', 'id_token'] } },
      expected: ['oidc.claimsFrom: must start with id_token (the ID token is the identity; others add to it)'],
    },
    {
      what: 'a claim source named twice',
      input: { ...OIDC, oidc: { issuer: 'https://kc.example.com/realms/x', clientId: 'c', claimsFrom: ['id_token', 'userinfo', 'userinfo'] } },
      expected: ['oidc.claimsFrom: must not repeat a source'],
    },
    {
      what: 'two issuers whose machines would share ids (the same default prefix)',
      input: { ...OIDC, oidc: { issuer: 'https://kc.example.com/realms/a', clientId: 'c', machineIdentity: {} }, issuers: [{ issuer: 'https://kc.example.com/realms/b', audiences: ['c'], userIdPrefix: 'b:', machineIdentity: {} }] },
      expected: ['issuers.0.machineIdentity.userIdPrefix: "service-account:" is also the machine prefix of oidc: machines of two issuers could get the same user id. Give each issuer its own prefix; only if both issuers are one IdP under two issuer URLs, give both the same userIdSpace'],
    },
    // Issue 13, point 7: people of two issuers share one user-id space.
    {
      what: 'a service-account issuer (user id: sub) beside the login IdP, without userIdMustStartWith: a person whose email is an SA\'s sub would get its id',
      input: { ...OIDC, oidc: { issuer: 'https://dex.example.com/dex', clientId: 'c' }, issuers: [{ issuer: 'https://kubernetes.default.svc.cluster.local', audiences: ['a'], userIdClaim: 'sub' }] },
      expected: [`issuers.0: ${PEOPLE_CLASH('oidc', '')}`],
    },
    {
      what: 'both Kubernetes issuer URLs with userIdMustStartWith but no userIdSpace',
      input: { issuers: [K8S_ISSUER('https://kubernetes.default.svc.cluster.local'), K8S_ISSUER('https://kubernetes.default.svc')] },
      expected: [`issuers.1: ${PEOPLE_CLASH('issuers.0', 'system:serviceaccount:')}`],
    },
    {
      what: 'two issuers whose prefixes differ only in case (ids compare ignoring case)',
      input: { issuers: [{ issuer: 'https://a.example.com', audiences: ['c'], userIdPrefix: 'SA:' }, { issuer: 'https://b.example.com', audiences: ['c'], userIdPrefix: 'sa:' }] },
      expected: [`issuers.1: ${PEOPLE_CLASH('issuers.0', 'sa:')}`],
    },
    {
      what: 'a global identity.userIdPrefix does not tell two issuers apart',
      input: { identity: { userIdPrefix: 'kf:' }, issuers: [{ issuer: 'https://a.example.com', audiences: ['c'] }, { issuer: 'https://b.example.com', audiences: ['c'] }] },
      expected: [`issuers.1: ${PEOPLE_CLASH('issuers.0', 'kf:')}`],
    },
    {
      what: 'people whose space is another issuer\'s machine prefix',
      input: { issuers: [{ issuer: 'https://a.example.com', audiences: ['c'], userIdPrefix: 'a:', machineIdentity: { userIdPrefix: 'bots:' } }, { issuer: 'https://b.example.com', audiences: ['c'], userIdPrefix: 'bots:' }] },
      expected: ['issuers.1: the user ids of its people start with "bots:" (userIdPrefix + userIdMustStartWith), the machine prefix of issuers.0: a person and a machine could get the same user id. Give the people another userIdPrefix, or the machines another prefix'],
    },
    {
      what: 'one issuer\'s machine prefix equal to its own people\'s space',
      input: { issuers: [{ issuer: 'https://a.example.com', audiences: ['c'], userIdPrefix: 'service-account:', machineIdentity: {} }] },
      expected: ['issuers.0.machineIdentity.userIdPrefix: "service-account:" is also where the user ids of this issuer\'s people start (userIdPrefix + userIdMustStartWith): a machine and a person could get the same user id. Give the machines another prefix, or the people another userIdPrefix'],
    },
    {
      what: 'a shared userIdSpace does not let a person share a machine\'s space',
      input: { issuers: [{ issuer: 'https://a.example.com', audiences: ['c'], userIdPrefix: 'x:', userIdSpace: 'corp', machineIdentity: { userIdPrefix: 'corp:' } }, { issuer: 'https://b.example.com', audiences: ['c'], userIdPrefix: 'corp:', userIdSpace: 'corp' }] },
      expected: [
        'issuers.1: the user ids of its people start with "corp:" (userIdPrefix + userIdMustStartWith), the machine prefix of issuers.0: a person and a machine could get the same user id. Give the people another userIdPrefix, or the machines another prefix',
        'issuers.1.userIdSpace: "corp" is also the userIdSpace of issuers.0, whose people\'s user ids start with "x:", but this issuer\'s start with "corp:": issuers of one userIdSpace are one population and need the same userIdPrefix and userIdMustStartWith',
      ],
    },
    {
      what: 'one userIdSpace for issuers whose people\'s ids start differently',
      input: { issuers: [{ ...K8S_ISSUER('https://kubernetes.default.svc.cluster.local'), userIdSpace: 'k8s' }, { issuer: 'https://kubernetes.default.svc', audiences: ['a'], userIdClaim: 'sub', userIdSpace: 'k8s' }] },
      expected: ['issuers.1.userIdSpace: "k8s" is also the userIdSpace of issuers.0, whose people\'s user ids start with "system:serviceaccount:", but this issuer\'s start with "": issuers of one userIdSpace are one population and need the same userIdPrefix and userIdMustStartWith'],
    },
    {
      what: 'browser login without publicUrl or allowedHosts (no way to know the public origin)',
      input: { oidc: { issuer: 'https://dex.example.com', clientId: 'c' }, session: { secretsFile: '/s' } },
      expected: ['publicUrl: is required with oidc unless allowedHosts lists the hosts browsers use (the public origin is then taken from each request)'],
    },
    {
      what: 'a redirect URI that is not the callback',
      input: { ...OIDC, oidc: { issuer: 'https://dex.example.com', clientId: 'c', redirectUri: '/oauth2/other' } },
      expected: ['oidc.redirectUri: must be /oauth2/callback, or an absolute URL ending with it (where the callback is served)'],
    },
    {
      what: 'a relative redirect URI under a prefix (the callback is served at /oauth2/callback only)',
      input: { ...OIDC, oidc: { issuer: 'https://dex.example.com', clientId: 'c', redirectUri: '/kubeflow/oauth2/callback' } },
      expected: ['oidc.redirectUri: must be /oauth2/callback, or an absolute URL ending with it (where the callback is served)'],
    },
    {
      what: 'session.secure "auto" with neither publicUrl nor a trusted x-forwarded-proto (it would never be Secure)',
      input: { allowedHosts: ['kubeflow.example.com'], oidc: { issuer: 'https://dex.example.com', clientId: 'c' }, session: { secretsFile: '/s', secure: 'auto' } },
      expected: ['session.secure: "auto" decides by the request\'s scheme, which without publicUrl comes from x-forwarded-proto: set trustForwardedProto: true (behind a gateway that sets it), or publicUrl, or true/false'],
    },
    {
      what: 'scopes without openid',
      input: { ...OIDC, oidc: { issuer: 'https://kc.example.com/realms/x', clientId: 'c', scopes: ['email', 'profile'] } },
      expected: ['oidc.scopes: must include "openid"'],
    },
  ])('$what', ({ input, expected }) => {
    expect(problemsOf(() => parseConfig(input))).toEqual(expected);
  });

  test.each<{ what: string; input: unknown; path: string }>([
    { what: 'HS256 for a bearer issuer', input: { issuers: [{ issuer: 'https://k8s.example.com', audiences: ['a'], algorithms: ['HS256'] }] }, path: 'issuers.0.algorithms.0' },
    { what: 'HS512 among asymmetric algorithms for the oidc issuer', input: { ...OIDC, oidc: { issuer: 'https://dex.example.com', clientId: 'c', algorithms: ['RS256', 'HS512'] } }, path: 'oidc.algorithms.1' },
    { what: '"none" as an algorithm', input: { issuers: [{ issuer: 'https://k8s.example.com', audiences: ['a'], algorithms: ['none'] }] }, path: 'issuers.0.algorithms.0' },
    { what: 'an empty algorithm list', input: { issuers: [{ issuer: 'https://k8s.example.com', audiences: ['a'], algorithms: [] }] }, path: 'issuers.0.algorithms' },
    { what: 'an issuer URL with credentials', input: { issuers: [{ issuer: 'https://u:p@k8s.example.com', audiences: ['a'] }] }, path: 'issuers.0.issuer' },
    { what: 'a non-http issuer URL', input: { ...OIDC, oidc: { issuer: 'ftp://dex.example.com', clientId: 'c' } }, path: 'oidc.issuer' },
    { what: 'a port out of range', input: { listen: { port: 70_000 } }, path: 'listen.port' },
    { what: 'a port given as a string', input: { listen: { port: '8080' } }, path: 'listen.port' },
    { what: 'a check path prefix with a trailing slash', input: { checkPathPrefix: '/authz/' }, path: 'checkPathPrefix' },
    { what: 'an upper-case header name', input: { identity: { userIdHeader: 'Kubeflow-UserId' } }, path: 'identity.userIdHeader' },
    { what: 'a transformer that is not a regular expression', input: { identity: { userIdTransformers: [{ match: '(', replace: '' }] } }, path: 'identity.userIdTransformers.0.match' },
    { what: 'an unknown default rule', input: { defaultRule: 'allow' }, path: 'defaultRule' },
    { what: 'a log rate limit of no lines (it would hide every denial)', input: { log: { rateLimit: { perReason: 0 } } }, path: 'log.rateLimit.perReason' },
    { what: 'a log rate-limit window under a second', input: { log: { rateLimit: { window: '500ms' } } }, path: 'log.rateLimit.window' },
    { what: 'a log rate-limit window that is no duration', input: { log: { rateLimit: { window: 'often' } } }, path: 'log.rateLimit.window' },
    { what: 'an unknown method', input: { rules: [{ name: 'a', paths: ['/'], methods: ['FETCH'], allow: 'deny' }] }, path: 'rules.0.methods.0' },
    { what: 'a rule name with a space', input: { rules: [{ name: 'my rule', paths: ['/'], allow: 'deny' }] }, path: 'rules.0.name' },
    { what: 'an upper-case host glob', input: { rules: [{ name: 'a', hosts: ['Example.com'], paths: ['/'], allow: 'deny' }] }, path: 'rules.0.hosts.0' },
    { what: 'an email domain with "@"', input: { rules: [{ name: 'a', paths: ['/'], allow: { emailDomains: ['@example.com'] } }] }, path: 'rules.0.allow.emailDomains.0' },
    { what: 'a scheme-relative afterLogoutUrl', input: { ...OIDC, oidc: { issuer: 'https://dex.example.com', clientId: 'c', afterLogoutUrl: '//evil.example.com/' } }, path: 'oidc.afterLogoutUrl' },
    { what: 'a javascript: afterLoginUrl', input: { ...OIDC, oidc: { issuer: 'https://dex.example.com', clientId: 'c', afterLoginUrl: 'javascript:alert(1)' } }, path: 'oidc.afterLoginUrl' },
    { what: 'an upper-case allowed host', input: { allowedHosts: ['Kubeflow.example.com'] }, path: 'allowedHosts.0' },
    { what: 'an allowed host with a path', input: { allowedHosts: ['localhost:8080/x'] }, path: 'allowedHosts.0' },
    { what: 'session.secure neither a boolean nor "auto"', input: { session: { secure: 'sometimes' } }, path: 'session.secure' },
    { what: 'a group transformer that is not a regular expression', input: { identity: { groupTransformers: [{ match: '[', replace: '' }] } }, path: 'identity.groupTransformers.0.match' },
    { what: 'an unknown claim source', input: { ...OIDC, oidc: { issuer: 'https://kc.example.com/realms/x', clientId: 'c', claimsFrom: ['id_token', 'introspection'] } }, path: 'oidc.claimsFrom.1' },
    { what: 'a machine prefix with a space', input: { ...OIDC, oidc: { issuer: 'https://kc.example.com/realms/x', clientId: 'c', machineIdentity: { userIdPrefix: 'service account:' } } }, path: 'oidc.machineIdentity.userIdPrefix' },
    { what: 'an empty machine prefix (a machine could take a person\'s id)', input: { ...OIDC, oidc: { issuer: 'https://kc.example.com/realms/x', clientId: 'c', machineIdentity: { userIdPrefix: '' } } }, path: 'oidc.machineIdentity.userIdPrefix' },
    { what: 'a cookie name that carries a __Host- prefix itself', input: { session: { cookieName: '__Host-oidc_authz' } }, path: 'session.cookieName' },
    { what: 'a cookie name that carries a __secure- prefix itself', input: { session: { cookieName: '__secure-x' } }, path: 'session.cookieName' },
    { what: 'cookie prefixes with secure: "auto"', input: { trustForwardedProto: true, session: { secure: 'auto', cookiePrefixes: true } }, path: 'session.cookiePrefixes' },
    { what: 'cookie prefixes with a Domain', input: { session: { domain: 'example.com', cookiePrefixes: true } }, path: 'session.cookiePrefixes' },
    { what: 'a revalidation more often than every 30 s', input: { session: { revalidateAfter: '10s' } }, path: 'session.revalidateAfter' },
    { what: 'a per-issuer userIdPrefix with a space', input: { issuers: [{ issuer: 'https://a.example.com', audiences: ['c'], userIdPrefix: 'team a:' }] }, path: 'issuers.0.userIdPrefix' },
    { what: 'an empty userIdMustStartWith (it would narrow nothing)', input: { issuers: [{ issuer: 'https://a.example.com', audiences: ['c'], userIdMustStartWith: '' }] }, path: 'issuers.0.userIdMustStartWith' },
    { what: 'a userIdSpace name with a space', input: { ...OIDC, oidc: { issuer: 'https://kc.example.com/realms/x', clientId: 'c', userIdSpace: 'realm x' } }, path: 'oidc.userIdSpace' },
    { what: 'session.store redis without session.redis', input: { ...LOGIN, session: { ...OIDC.session, store: 'redis' } }, path: 'session.redis' },
    { what: 'session.redis with both a url and a sentinel', input: { ...LOGIN, session: { ...OIDC.session, store: 'redis', redis: { url: 'redis://r:6379', sentinel: { name: 'm', nodes: ['s:26379'] } } } }, path: 'session.redis' },
    { what: 'a password inside session.redis.url', input: { ...LOGIN, session: { ...OIDC.session, store: 'redis', redis: { url: 'redis://:hunter2@r:6379' } } }, path: 'session.redis.url' },
    { what: 'session.redis while the store is the cookie', input: { ...LOGIN, session: { ...OIDC.session, redis: { url: 'redis://r:6379' } } }, path: 'session.redis' },
    { what: 'session.store redis without oidc', input: { session: { store: 'redis', redis: { url: 'redis://r:6379' } } }, path: 'session.store' },
    { what: 'a session.redis.cacheFor over 5 minutes', input: { ...LOGIN, session: { ...OIDC.session, store: 'redis', redis: { url: 'redis://r:6379', cacheFor: '10m' } } }, path: 'session.redis.cacheFor' },
    { what: 'a sentinel node without a port', input: { ...LOGIN, session: { ...OIDC.session, store: 'redis', redis: { sentinel: { name: 'm', nodes: ['sentinel-0'] } } } }, path: 'session.redis.sentinel.nodes.0' },
    { what: 'emailVerifiedWhenAbsent as a string', input: { issuers: [{ issuer: 'https://a.example.com', audiences: ['c'], emailVerifiedWhenAbsent: 'yes' }] }, path: 'issuers.0.emailVerifiedWhenAbsent' },
  ])('refuses $what, naming $path', ({ input, path }) => {
    const problems = problemsOf(() => parseConfig(input));
    expect(problems.map((problem) => problem.slice(0, problem.indexOf(': ')))).toEqual([path]);
  });

  test.each<{ what: string; input: Record<string, unknown> }>([
    {
      what: 'nested spaces: the login IdP\'s people ("") and Kubernetes service accounts ("system:serviceaccount:")',
      input: { ...OIDC, oidc: { issuer: 'https://dex.example.com/dex', clientId: 'c' }, issuers: [K8S_ISSUER('https://kubernetes.default.svc.cluster.local')] },
    },
    {
      what: 'nested machine prefixes of two issuers ("sa:" and "sa:b:"; refused before issue 13, now each refuses the other\'s ids at run time)',
      input: { issuers: [{ issuer: 'https://a.example.com', audiences: ['c'], userIdPrefix: 'a:', machineIdentity: { userIdPrefix: 'sa:' } }, { issuer: 'https://b.example.com', audiences: ['c'], userIdPrefix: 'b:', machineIdentity: { userIdPrefix: 'sa:b:' } }] },
    },
    {
      what: 'both Kubernetes issuer URLs of one cluster, declared one population with userIdSpace',
      input: { issuers: [{ ...K8S_ISSUER('https://kubernetes.default.svc.cluster.local'), userIdSpace: 'k8s' }, { ...K8S_ISSUER('https://kubernetes.default.svc'), userIdSpace: 'k8s' }] },
    },
    {
      what: 'one Keycloak realm under two host names: people and machines shared through userIdSpace',
      input: { issuers: [
        { issuer: 'https://kc.example.com/realms/x', audiences: ['c'], userIdSpace: 'realm-x', machineIdentity: {} },
        { issuer: 'http://keycloak.keycloak.svc:8080/realms/x', audiences: ['c'], userIdSpace: 'realm-x', machineIdentity: {} },
      ] },
    },
    {
      what: 'a second email IdP with its own per-issuer userIdPrefix',
      input: { ...OIDC, oidc: { issuer: 'https://dex.example.com/dex', clientId: 'c' }, issuers: [{ issuer: 'https://partner.example.com', audiences: ['c'], userIdPrefix: 'partner:' }] },
    },
    {
      what: 'an issuer\'s empty userIdPrefix beside a global one (its space "" holds the others\' "kf:")',
      input: { identity: { userIdPrefix: 'kf:' }, issuers: [{ issuer: 'https://a.example.com', audiences: ['c'] }, { issuer: 'https://b.example.com', audiences: ['c'], userIdPrefix: '' }] },
    },
  ])('accepts $what', ({ input }) => {
    expect(() => parseConfig(input)).not.toThrow();
  });

  test('several problems are reported at once, each with its path', () => {
    const problems = problemsOf(() => parseConfig({ listen: { port: 'x', prot: 1 }, defaultRule: 'maybe', foo: 1, session: { maxAge: 'soon' } }));
    expect(problems.map((problem) => problem.slice(0, problem.indexOf(': '))).sort()).toEqual(['(root)', 'defaultRule', 'listen', 'listen.port', 'session.maxAge']);
    expect(problems).toEqual(expect.arrayContaining(['listen: unknown field(s) "prot"', '(root): unknown field(s) "foo"']));
  });

  test('the ConfigError message names the source and lists every problem', () => {
    let message = '';
    try {
      parseConfig({ foo: 1, bar: 2 }, 'my.yaml');
    } catch (error) {
      message = (error as Error).message;
    }
    expect(message).toBe('invalid configuration (my.yaml):\n  - (root): unknown field(s) "foo", "bar"');
  });

  test.each<{ path: PropertyKey[]; expected: string }>([
    { path: [], expected: '(root)' },
    { path: ['rules', 2, 'allow', 'groups', 0], expected: 'rules.2.allow.groups.0' },
  ])('formatIssuePath($path) is $expected', ({ path, expected }) => {
    expect(formatIssuePath(path)).toBe(expected);
  });
});

describe('parseConfig: the result is frozen', () => {
  const config = parseConfig({
    identity: { userIdTransformers: [{ match: '^(.*)$', replace: '$1' }] },
    rules: [{ name: 'all', paths: ['/**'], allow: { groups: ['a'] } }],
  });

  test.each<{ what: string; value: unknown }>([
    { what: 'the config', value: config },
    { what: 'a section', value: config.listen },
    { what: 'the rules list', value: config.rules },
    { what: 'a rule', value: config.rules[0] },
    { what: 'a rule\'s paths', value: config.rules[0]?.paths },
    { what: 'a rule\'s requirement', value: config.rules[0]?.allow },
    { what: 'a transformer', value: config.identity.userIdTransformers[0] },
  ])('$what is frozen', ({ value }) => {
    expect(value !== undefined && Object.isFrozen(value)).toBe(true);
  });

  test('assigning to a field throws', () => {
    expect(() => {
      (config.listen as { port: number }).port = 1;
    }).toThrow(TypeError);
    expect(config.listen.port).toBe(8080);
  });
});

describe('applyEnvOverrides', () => {
  test.each<{ what: string; raw: Record<string, unknown>; env: Record<string, string>; expected: Record<string, unknown> }>([
    { what: '"__" separates levels, a number stays a number', raw: {}, env: { OIDC_AUTHZ_LISTEN__PORT: '9000' }, expected: { listen: { port: 9000 } } },
    { what: '"_" separates words of a camelCase field', raw: {}, env: { OIDC_AUTHZ_IDENTITY__USER_ID_PREFIX: 'x' }, expected: { identity: { userIdPrefix: 'x' } } },
    { what: 'a JSON list becomes a list', raw: {}, env: { OIDC_AUTHZ_REDIRECT_ALLOW_LIST: '[".example.com","kubeflow.example.org"]' }, expected: { redirectAllowList: ['.example.com', 'kubeflow.example.org'] } },
    { what: 'a JSON boolean becomes a boolean', raw: {}, env: { OIDC_AUTHZ_SESSION__SECURE: 'false' }, expected: { session: { secure: false } } },
    { what: 'a JSON string keeps digits a string', raw: {}, env: { OIDC_AUTHZ_IDENTITY__USER_ID_PREFIX: '"123"' }, expected: { identity: { userIdPrefix: '123' } } },
    { what: 'a value that is not JSON stays a string', raw: {}, env: { OIDC_AUTHZ_OIDC__ISSUER: 'https://dex.example.com' }, expected: { oidc: { issuer: 'https://dex.example.com' } } },
    { what: 'it merges into a section from the file', raw: { listen: { host: '127.0.0.1', port: 8080 } }, env: { OIDC_AUTHZ_LISTEN__PORT: '9000' }, expected: { listen: { host: '127.0.0.1', port: 9000 } } },
    { what: 'it replaces a scalar where a section is needed', raw: { listen: 'x' }, env: { OIDC_AUTHZ_LISTEN__PORT: '9000' }, expected: { listen: { port: 9000 } } },
    { what: 'it replaces a whole top-level field', raw: { defaultRule: 'deny' }, env: { OIDC_AUTHZ_DEFAULT_RULE: 'authenticated' }, expected: { defaultRule: 'authenticated' } },
    { what: 'other variables are ignored', raw: {}, env: { HOME: '/root', OIDC_AUTHZX_LISTEN__PORT: '1', oidc_authz_listen__port: '2' }, expected: {} },
    { what: 'a "__proto__" spelling is ignored', raw: {}, env: { OIDC_AUTHZ___PROTO____POLLUTED: 'yes' }, expected: {} },
    { what: 'a "constructor.prototype" path is ignored', raw: {}, env: { OIDC_AUTHZ_CONSTRUCTOR__PROTOTYPE__POLLUTED: 'yes' }, expected: {} },
    { what: 'a nested "constructor" segment is ignored', raw: { listen: {} }, env: { OIDC_AUTHZ_LISTEN__CONSTRUCTOR: '1' }, expected: { listen: {} } },
    { what: 'a "prototype" segment is ignored', raw: {}, env: { OIDC_AUTHZ_PROTOTYPE: '1' }, expected: {} },
    { what: 'an empty level is ignored', raw: {}, env: { OIDC_AUTHZ_LISTEN____PORT: '1', OIDC_AUTHZ_: '1' }, expected: {} },
  ])('$what', ({ raw, env, expected }) => {
    const result = applyEnvOverrides(raw, env);
    expect(result).toEqual(expected);
    // structuredClone may build the result in another realm: check that realm's prototype too.
    expect([Object.hasOwn(Object.getPrototypeOf(result) as object, 'polluted'), Object.hasOwn(Object.prototype, 'polluted')]).toEqual([false, false]);
  });

  test('the input object is not changed', () => {
    const raw = { listen: { port: 8080 } };
    applyEnvOverrides(raw, { OIDC_AUTHZ_LISTEN__PORT: '9000' });
    expect(raw).toEqual({ listen: { port: 8080 } });
  });

  test('overrides go through the schema: OIDC_AUTHZ_LISTEN__PORT=9000 is listen.port 9000', () => {
    expect(parseConfig(applyEnvOverrides({}, { OIDC_AUTHZ_LISTEN__PORT: '9000' })).listen.port).toBe(9000);
  });
});

describe('loadConfigFile', () => {
  let dir = '';
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'oidc-authz-config-'));
  });
  afterAll(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  async function file(name: string, text: string): Promise<string> {
    const path = join(dir, name);
    await writeFile(path, text);
    return path;
  }

  const DESIGN_EXAMPLE = `
listen: { host: 0.0.0.0, port: 8080, metricsPort: 9090 }
checkPathPrefix: /authz              # Istio pathPrefix
trustForwardedProto: true
publicUrl: https://kubeflow.example.com
oidc:
  issuer: https://dex.example.com/dex
  clientId: kubeflow-oidc-authservice
  clientSecretFile: /secrets/client-secret
  scopes: [openid, email, profile, groups, offline_access]
issuers:
  - issuer: https://kubernetes.default.svc.cluster.local
    audiences: [istio-ingressgateway.istio-system.svc.cluster.local]
    jwksUri: https://kubernetes.default.svc/openid/v1/jwks
    userIdClaim: sub
    userIdMustStartWith: "system:serviceaccount:"   # added for issue 13: see the test below
session: { cookieName: oidc_authz, secretsFile: /secrets/cookie-secrets, maxAge: 7d, secure: true }
identity:
  userIdHeader: kubeflow-userid
  userIdClaim: email
  userIdPrefix: ""
  userIdTransformers: [{ match: "^(.*)@example\\\\.com$", replace: "$1" }]
  groupsHeader: kubeflow-groups
  groupsClaim: groups
redirectAllowList: [".example.com"]
defaultRule: deny
rules:
  - { name: static, paths: ["/static/**", "/favicon.ico"], allow: anonymous }
  - { name: workspace-read, paths: ["/workspaces/{ws}/**"], methods: [GET, HEAD],
      allow: { groups: ["{ws}"] } }
  - { name: workspace-write, paths: ["/workspaces/{ws}/**"],
      allow: { claims: { "resource_access.{ws}.roles": ws_access } } }
  - { name: everything-else, paths: ["/**"], allow: authenticated }
`;

  test('the DESIGN §5 example loads', async () => {
    const config: Config = loadConfigFile(await file('design.yaml', DESIGN_EXAMPLE), {});
    expect({
      port: config.listen.port,
      trustForwardedProto: config.trustForwardedProto,
      issuerUserIdClaim: config.issuers[0]?.userIdClaim,
      maxAge: config.session.maxAge,
      transformer: config.identity.userIdTransformers[0],
      rules: config.rules.map((rule) => rule.name),
      write: config.rules[2]?.allow,
    }).toEqual({
      port: 8080,
      trustForwardedProto: true,
      issuerUserIdClaim: 'sub',
      maxAge: 604_800_000,
      transformer: { match: '^(.*)@example\\.com$', replace: '$1' },
      rules: ['static', 'workspace-read', 'workspace-write', 'everything-else'],
      write: { claims: { 'resource_access.{ws}.roles': 'ws_access' } },
    });
  });

  test('the DESIGN §5 example without userIdMustStartWith is refused: Dex people and service accounts would share ids', async () => {
    const asFirstWritten = DESIGN_EXAMPLE.replace(/\n {4}userIdMustStartWith: .*\n/, '\n');
    expect(asFirstWritten).not.toContain('userIdMustStartWith');
    const path = await file('design-first.yaml', asFirstWritten);
    const problems = problemsOf(() => loadConfigFile(path, {}));
    expect(problems).toEqual([`issuers.0: ${PEOPLE_CLASH('oidc', '')}`]);
  });

  test.each<{ what: string; name: string; text: string; env: Record<string, string>; path: string; expected: unknown }>([
    { what: 'a JSON file', name: 'c.json', text: '{"listen":{"port":8081},"defaultRule":"authenticated"}', env: {}, path: 'defaultRule', expected: 'authenticated' },
    { what: 'an empty file gives the defaults', name: 'empty.yaml', text: '', env: {}, path: 'listen.port', expected: 8080 },
    { what: 'a file of comments gives the defaults', name: 'comments.yaml', text: '# nothing here\n', env: {}, path: 'defaultRule', expected: 'deny' },
    { what: 'an env override wins over the file', name: 'port.yaml', text: 'listen:\n  port: 8081\n', env: { OIDC_AUTHZ_LISTEN__PORT: '9000' }, path: 'listen.port', expected: 9000 },
    { what: 'an env override of a string field', name: 'prefix.yaml', text: 'identity: {}\n', env: { OIDC_AUTHZ_IDENTITY__USER_ID_PREFIX: 'x' }, path: 'identity.userIdPrefix', expected: 'x' },
    { what: 'an env override with a JSON list', name: 'list.yaml', text: 'redirectAllowList: [a.example.com]\n', env: { OIDC_AUTHZ_REDIRECT_ALLOW_LIST: '["b.example.com"]' }, path: 'redirectAllowList', expected: ['b.example.com'] },
  ])('reads $what', async ({ name, text, env, path, expected }) => {
    expect(at(loadConfigFile(await file(name, text), env), path)).toEqual(expected);
  });

  test('a file that does not exist is a ConfigError naming the file', () => {
    const missing = join(dir, 'missing.yaml');
    let caught: unknown;
    try {
      loadConfigFile(missing, {});
    } catch (error) {
      caught = error;
    }
    expect(caught).toBeInstanceOf(ConfigError);
    expect({ problems: (caught as ConfigError).problems, named: (caught as Error).message.includes(missing) }).toEqual({
      problems: ['(file): cannot read: ENOENT'],
      named: true,
    });
  });

  test('a directory is a ConfigError', async () => {
    const sub = join(dir, 'a-directory');
    await mkdir(sub);
    expect(problemsOf(() => loadConfigFile(sub, {}))).toEqual(['(file): cannot read: EISDIR']);
  });

  test.each<{ what: string; name: string; text: string; expected: RegExp }>([
    { what: 'invalid YAML', name: 'bad.yaml', text: 'listen: {port: 8080\n', expected: /^\(file\): not valid YAML\/JSON: / },
    { what: 'a tab-indented mapping', name: 'tabs.yaml', text: 'listen:\n\tport: 1\n', expected: /^\(file\): not valid YAML\/JSON: / },
    { what: 'a list at the root', name: 'list.yaml', text: '- a\n- b\n', expected: /^\(root\): must be a mapping of fields$/ },
    { what: 'a scalar at the root', name: 'scalar.yaml', text: 'hello\n', expected: /^\(root\): must be a mapping of fields$/ },
    { what: 'a schema problem', name: 'schema.yaml', text: 'listen:\n  prot: 1\n', expected: /^listen: unknown field\(s\) "prot"$/ },
  ])('$what is a ConfigError', async ({ name, text, expected }) => {
    const path = await file(name, text);
    const problems = problemsOf(() => loadConfigFile(path, {}));
    expect(problems).toHaveLength(1);
    expect(problems[0]).toMatch(expected);
  });

  test('an env override that breaks the schema is reported with its field', async () => {
    const path = await file('ok.yaml', 'listen: {}\n');
    expect(problemsOf(() => loadConfigFile(path, { OIDC_AUTHZ_LISTEN__PROT: '1' }))).toEqual(['listen: unknown field(s) "prot"']);
  });
});

describe('oidc.authorizationEndpoint', () => {
  const withEndpoint = (authorizationEndpoint: string) =>
    parseConfig({
      publicUrl: 'https://kubeflow.example.com',
      oidc: { issuer: 'http://dex.auth.svc.cluster.local:5556/dex', clientId: 'kubeflow', authorizationEndpoint },
      session: { secretsFile: '/secrets/cookie-secrets' },
    });

  test.each(['/dex/auth', 'https://kubeflow.example.com/dex/auth'])('%s is accepted', (value) => {
    expect(withEndpoint(value).oidc?.authorizationEndpoint).toBe(value);
  });

  test.each(['//evil.example.com/auth', 'javascript:alert(1)', 'dex/auth', '/dex/auth?x=1', 'https://user@evil.example.com/'])('%s is refused naming the field', (value) => {
    expect(() => withEndpoint(value)).toThrow(/oidc\.authorizationEndpoint/);
  });
});
