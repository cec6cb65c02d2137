/**
 * The rules language for platforms (EOEPCA's shapes): host captures, captures inside a segment, aud/azp
 * requirements, audienceCheckedBy: rules, audit mode and CORS preflights, through the real decide().
 */
import type { IncomingHttpHeaders } from 'node:http';
import type { AuthResult, Authenticator } from '../../src/authn/authenticate.js';
import { buildIdentity, compileIssuerMappings } from '../../src/authn/identity.js';
import { decide, type Decision } from '../../src/check/decide.js';
import { checkRequestFrom } from '../../src/check/request.js';
import { ConfigError, parseConfig } from '../../src/config/load.js';
import type { Config, ConfigInput } from '../../src/config/schema.js';
import { compilePolicy, type Policy } from '../../src/policy/rules.js';
import { pathSegments } from '../../src/policy/template.js';
import { explain } from '../../src/policy-test/explain.js';
import { cookieNamesOf } from '../../src/session/cookie-header.js';

const ISSUER = 'https://keycloak.example.org/realms/eoepca';

/** An authenticator that knows one identity per bearer token (the token's text is the key). */
function tokensAuthenticator(config: Config, claimsByToken: Record<string, Record<string, unknown>>): Authenticator {
  const mapping = compileIssuerMappings(config).get(ISSUER)!;
  return {
    authenticate(request) {
      const token = /^Bearer (.+)$/.exec(request.headers.authorization ?? '')?.[1];
      if (token === undefined) return { kind: 'none' };
      const claims = claimsByToken[token];
      if (claims === undefined) return { kind: 'invalid', reason: 'bad_signature' };
      const built = buildIdentity({ iss: ISSUER, sub: token, email: `${token}@example.org`, email_verified: true, ...claims }, mapping, 'bearer');
      if (!built.ok) throw new Error(built.reason);
      return { kind: 'identity', identity: built.identity } satisfies AuthResult;
    },
  };
}

interface Harness {
  readonly config: Config;
  readonly policy: Policy;
  check(method: string, url: string, token?: string, headers?: IncomingHttpHeaders): Decision;
}

function harness(input: ConfigInput, claimsByToken: Record<string, Record<string, unknown>> = {}): Harness {
  const config = parseConfig(input);
  const policy = compilePolicy(config);
  const authenticator = tokensAuthenticator(config, claimsByToken);
  return {
    config,
    policy,
    check(method, url, token, headers = {}) {
      const { host, pathname } = new URL(url);
      const request = checkRequestFrom(method, pathname, { host, ...(token ? { authorization: `Bearer ${token}` } : {}), ...headers }, 'https');
      const decision = decide(request, { policy, authenticator, loginUrl: null, cookieNames: cookieNamesOf(config.session) });
      if (decision instanceof Promise) throw new Error('the test authenticator answers synchronously');
      return decision;
    },
  };
}

const summary = (decision: Decision) => ({
  kind: decision.kind,
  reason: decision.reason,
  rule: decision.rule?.name ?? null,
  ...(decision.kind === 'forbidden' && decision.unmet ? { unmet: decision.unmet } : {}),
});

const bearerIssuer = (extra: Record<string, unknown> = {}) => ({ issuer: ISSUER, jwksUri: `${ISSUER}/protocol/openid-connect/certs`, userIdClaim: 'sub', ...extra });

describe('host captures feed requirements like path captures', () => {
  const h = harness({
    issuers: [bearerIssuer({ audiences: ['workspace-api'] })],
    rules: [
      {
        name: 'workspace-ui',
        hosts: ['editor-{ws}-default.lab.example.org', '{ws}-default-editor.lab.example.org', '{ws}-default.lab.example.org'],
        paths: ['/**'],
        allow: { claims: { 'resource_access.{ws}.roles': ['ws_access', 'ws_admin'] } },
      },
    ],
  }, {
    alice: { aud: 'workspace-api', resource_access: { 'ws-alice': { roles: ['ws_access'] } } },
    bob: { aud: 'workspace-api', resource_access: { 'ws-bob': { roles: ['ws_admin'] } } },
  });

  test.each([
    { what: 'the plain UI host of her workspace', url: 'https://ws-alice-default.lab.example.org/', token: 'alice', expected: 'allow' },
    { what: 'the editor- prefixed host: the prefix is not part of the workspace', url: 'https://editor-ws-alice-default.lab.example.org/tree', token: 'alice', expected: 'allow' },
    { what: 'the -editor suffixed host', url: 'https://ws-alice-default-editor.lab.example.org/', token: 'alice', expected: 'allow' },
    { what: 'another workspace\'s host', url: 'https://ws-bob-default.lab.example.org/', token: 'alice', expected: 'forbidden' },
    { what: 'an admin role of that workspace', url: 'https://editor-ws-bob-default.lab.example.org/', token: 'bob', expected: 'allow' },
    { what: 'a host outside the patterns falls to the default rule', url: 'https://ws-alice.lab.example.org/', token: 'alice', expected: 'forbidden' },
  ])('$what → $expected', ({ url, token, expected }) => {
    expect(h.check('GET', url, token).kind).toBe(expected);
  });

  test('the first host pattern that matches gives the captures', () => {
    const match = h.policy.match('GET', 'editor-ws-alice-default.lab.example.org', []);
    expect({ rule: match.rule.name, params: { ...match.params } }).toEqual({ rule: 'workspace-ui', params: { ws: 'ws-alice' } });
  });

  test('host and path captures come together', () => {
    const policy = compilePolicy(parseConfig({ rules: [{ name: 'r', hosts: ['{app}.apps.example.org'], paths: ['/ns/{ns}/**'], allow: { groups: ['{ns}-{app}'] } }] }));
    const match = policy.match('GET', 'jupyter.apps.example.org', pathSegments('/ns/team-a/lab'));
    expect({ ...match.params }).toEqual({ app: 'jupyter', ns: 'team-a' });
  });
});

describe('compilePolicy refuses what could mean two things, naming the field', () => {
  const refusal = (rules: ConfigInput['rules']): string => {
    try {
      parseConfig({ rules });
    } catch (error) {
      if (error instanceof ConfigError) return error.problems.join('\n');
      throw error;
    }
    return 'accepted';
  };

  test.each([
    {
      what: 'a general host pattern before a specific one',
      rules: [{ name: 'ui', hosts: ['{ws}-default.example.org', 'editor-{ws}-default.example.org'], paths: ['/**'], allow: { groups: ['{ws}'] } }],
      expected: 'rules.0.hosts.1: "editor-{ws}-default.example.org" is ambiguous after rules.0.hosts.0 "{ws}-default.example.org": the host "editor-x-default.example.org" matches both, giving ws="editor-x" there and ws="x" here; the first listed wins, so list the more specific pattern first',
    },
    {
      what: 'a whole-segment capture before a split one',
      rules: [{ name: 'stac', paths: ['/collections/{collection}', '/collections/{ws}.{name}'], allow: 'authenticated' }],
      expected: 'rules.0.paths.1: "/collections/{ws}.{name}" is ambiguous after rules.0.paths.0 "/collections/{collection}": the path "/collections/x.x" matches both, giving collection="x.x" there and ws="x", name="x" here; the first listed wins, so list the more specific pattern first',
    },
    {
      what: 'a name captured by the host and the path',
      rules: [{ name: 'r', hosts: ['{ws}.example.org'], paths: ['/w/{ws}'], allow: { groups: ['{ws}'] } }],
      expected: 'rules.0.paths.0: "/w/{ws}" captures {ws}, which host "{ws}.example.org" captures too: name them differently',
    },
    {
      what: 'a requirement parameter that one host pattern does not capture',
      rules: [{ name: 'r', hosts: ['{ws}.example.org', 'static.example.org'], paths: ['/**'], allow: { groups: ['{ws}'] } }],
      expected: 'rules.0.allow: uses {ws} but neither host "static.example.org" nor path "/**" captures it',
    },
    {
      what: 'cors on a rule that denies',
      rules: [{ name: 'r', paths: ['/**'], allow: 'deny', cors: { preflight: 'allow' } }],
      expected: 'rules.0.cors: a rule that denies has no preflights to let through',
    },
    {
      what: 'cors on an audit-mode rule',
      rules: [{ name: 'r', paths: ['/**'], allow: 'authenticated', mode: 'audit', cors: { preflight: 'allow' } }],
      expected: 'rules.0.cors: an audit-mode rule never decides, so it cannot let preflights through',
    },
    {
      what: 'two captures side by side in a host',
      rules: [{ name: 'r', hosts: ['{a}{b}.example.org'], paths: ['/**'], allow: 'authenticated' }],
      expected: 'rules.0.hosts.0: "{a}{b}.example.org": label "{a}{b}": {a}{b} is ambiguous, two captures need literal text between them',
    },
  ])('$what', ({ rules, expected }) => {
    expect(refusal(rules as ConfigInput['rules'])).toBe(expected);
  });

  test.each([
    { what: 'the specific host first', rules: [{ name: 'ui', hosts: ['editor-{ws}-default.example.org', '{ws}-default.example.org'], paths: ['/**'], allow: { groups: ['{ws}'] } }] },
    { what: 'the split segment first', rules: [{ name: 'stac', paths: ['/collections/{ws}.{name}', '/collections/{collection}'], allow: 'authenticated' }] },
    { what: 'alternatives that agree on the captures', rules: [{ name: 'r', paths: ['/w/{ws}/**', '/w/{ws}/files'], allow: { groups: ['{ws}'] } }] },
  ])('accepts $what', ({ rules }) => {
    expect(refusal(rules as ConfigInput['rules'])).toBe('accepted');
  });
});

describe('audiences and authorizedParties: a scalar is compared for equality, an array must contain', () => {
  const h = harness({
    issuers: [bearerIssuer({ audienceCheckedBy: 'rules' })],
    rules: [
      { name: 'ws', paths: ['/workspaces/{ws}/**'], allow: { audiences: ['{ws}'], authorizedParties: ['workspace-api'] } },
      { name: 'any-of', paths: ['/either/**'], allow: { anyOf: [{ audiences: ['a'] }, { authorizedParties: ['b'] }] } },
      { name: 'half', paths: ['/half/**'], allow: { anyOf: [{ audiences: ['a'] }, { groups: ['g'] }] } },
      { name: 'plain', paths: ['/plain/**'], allow: 'authenticated' },
    ],
  }, {
    scalar: { aud: 'ws-alice', azp: 'workspace-api' },
    array: { aud: ['account', 'ws-alice'], azp: 'workspace-api' },
    otherAzp: { aud: ['ws-alice'], azp: 'ws-alice' },
    azpArray: { aud: ['ws-alice'], azp: ['workspace-api'] },
    prefix: { aud: 'ws-alice-evil', azp: 'workspace-api' },
    a: { aud: 'a', groups: ['g'] },
    b: { aud: 'x', azp: 'b', groups: ['g'] },
  });

  test.each([
    { what: 'aud a string equal to the capture', path: '/workspaces/ws-alice/x', token: 'scalar', expected: { kind: 'allow', reason: 'bearer', rule: 'ws' } },
    { what: 'aud an array containing it', path: '/workspaces/ws-alice/x', token: 'array', expected: { kind: 'allow', reason: 'bearer', rule: 'ws' } },
    { what: 'another workspace', path: '/workspaces/ws-bob/x', token: 'array', expected: { kind: 'forbidden', reason: 'requirement_not_met', rule: 'ws', unmet: 'audiences' } },
    { what: 'a string that only starts like it', path: '/workspaces/ws-alice/x', token: 'prefix', expected: { kind: 'forbidden', reason: 'requirement_not_met', rule: 'ws', unmet: 'audiences' } },
    { what: 'the right aud asked for by another client', path: '/workspaces/ws-alice/x', token: 'otherAzp', expected: { kind: 'forbidden', reason: 'requirement_not_met', rule: 'ws', unmet: 'authorizedParties' } },
    { what: 'azp as an array (azp is one client: still compared by contains)', path: '/workspaces/ws-alice/x', token: 'azpArray', expected: { kind: 'allow', reason: 'bearer', rule: 'ws' } },
    { what: 'anyOf with the audience on every branch: first branch', path: '/either/1', token: 'a', expected: { kind: 'allow', reason: 'bearer', rule: 'any-of' } },
    { what: 'anyOf with the audience on every branch: second branch', path: '/either/1', token: 'b', expected: { kind: 'allow', reason: 'bearer', rule: 'any-of' } },
    { what: 'anyOf with a branch that does not check the audience', path: '/half/1', token: 'a', expected: { kind: 'forbidden', reason: 'audience_unchecked', rule: 'half' } },
    { what: 'a rule that checks no audience refuses the issuer\'s tokens', path: '/plain/1', token: 'a', expected: { kind: 'forbidden', reason: 'audience_unchecked', rule: 'plain' } },
  ])('$what', ({ path, token, expected }) => {
    expect(summary(h.check('GET', `https://api.example.org${path}`, token))).toEqual(expected);
  });

  test('with audienceCheckedBy: issuer (the default) the same rule still reads aud from the verified token', () => {
    const checked = harness({
      issuers: [bearerIssuer({ audiences: ['workspace-api'] })],
      rules: [{ name: 'plain', paths: ['/**'], allow: 'authenticated' }],
    }, { t: { aud: 'workspace-api' } });
    expect(summary(checked.check('GET', 'https://api.example.org/x', 't'))).toEqual({ kind: 'allow', reason: 'bearer', rule: 'plain' });
  });
});

describe('audienceCheckedBy: rules is explicit, never a silent accept-all', () => {
  const problems = (input: ConfigInput): string[] => {
    try {
      parseConfig(input);
      return [];
    } catch (error) {
      if (error instanceof ConfigError) return [...error.problems];
      throw error;
    }
  };
  const checksAudience = { name: 'ws', paths: ['/w/{ws}/**'], allow: { audiences: ['{ws}'] } };

  test.each([
    {
      what: 'audiences listed as well',
      input: { issuers: [bearerIssuer({ audienceCheckedBy: 'rules', audiences: ['x'] })], rules: [checksAudience] },
      expected: ['issuers.0.audienceCheckedBy: "rules" checks the audience in the rules only: remove audiences and authorizedParties here (or keep them with audienceCheckedBy: issuer)'],
    },
    {
      what: 'no rule that checks an audience',
      input: { issuers: [bearerIssuer({ audienceCheckedBy: 'rules' })], rules: [{ name: 'all', paths: ['/**'], allow: 'authenticated' }] },
      expected: ['issuers.0.audienceCheckedBy: "rules", but no rule requires audiences or authorizedParties: every bearer token of this issuer would be refused'],
    },
    {
      what: 'only an audit-mode rule checks one',
      input: { issuers: [bearerIssuer({ audienceCheckedBy: 'rules' })], rules: [{ ...checksAudience, mode: 'audit' }] },
      expected: ['issuers.0.audienceCheckedBy: "rules", but no rule requires audiences or authorizedParties: every bearer token of this issuer would be refused'],
    },
    {
      what: 'neither a list nor rules mode',
      input: { issuers: [bearerIssuer()] },
      expected: ['issuers.0.audiences: name at least one of audiences or authorizedParties (a token must be meant for us), or set audienceCheckedBy: rules and check it in the rules'],
    },
  ])('refused: $what', ({ input, expected }) => {
    expect(problems(input as ConfigInput)).toEqual(expected);
  });

  test('accepted with a rule that checks the audience', () => {
    expect(problems({ issuers: [bearerIssuer({ audienceCheckedBy: 'rules' })], rules: [checksAudience] } as ConfigInput)).toEqual([]);
  });
});

describe('audit mode: evaluated, recorded, then the next rule decides', () => {
  const h = harness({
    issuers: [bearerIssuer({ audiences: ['api'] })],
    rules: [
      { name: 'public', paths: ['/public/**'], allow: 'anonymous' },
      { name: 'stricter-writes', paths: ['/stac/**'], methods: ['POST', 'PUT', 'DELETE'], allow: { claims: { 'resource_access.eoapi.roles': 'stac_editor' } }, mode: 'audit' },
      { name: 'audit-public', paths: ['/public/next/**'], allow: { groups: ['readers'] }, mode: 'audit' },
      { name: 'stac', paths: ['/stac/**'], allow: 'authenticated' },
    ],
  }, {
    editor: { aud: 'api', resource_access: { eoapi: { roles: ['stac_editor'] } } },
    reader: { aud: 'api' },
  });

  test('the audited rule would deny, the next rule allows: allowed, with the would-be decision attached', () => {
    const decision = h.check('POST', 'https://eo.example.org/stac/collections', 'reader');
    expect(summary(decision)).toEqual({ kind: 'allow', reason: 'bearer', rule: 'stac' });
    expect(decision.audits?.map((a) => ({ rule: a.rule.name, decision: a.decision, reason: a.reason, unmet: a.unmet }))).toEqual([
      { rule: 'stricter-writes', decision: 'forbidden', reason: 'requirement_not_met', unmet: 'claims' },
    ]);
  });

  test('the audited rule would allow too', () => {
    const decision = h.check('PUT', 'https://eo.example.org/stac/x', 'editor');
    expect(decision.audits?.map((a) => [a.rule.name, a.decision])).toEqual([['stricter-writes', 'allow']]);
  });

  test('without credentials the audited rule would ask for them, as it would if it decided', () => {
    const decision = h.check('DELETE', 'https://eo.example.org/stac/x');
    expect(summary(decision)).toEqual({ kind: 'unauthorized', reason: 'no_credentials', rule: 'stac' });
    expect(decision.audits?.map((a) => [a.rule.name, a.decision, a.reason])).toEqual([['stricter-writes', 'unauthorized', 'no_credentials']]);
  });

  test('a method the audited rule does not cover: no audit recorded', () => {
    expect(h.check('GET', 'https://eo.example.org/stac/x', 'reader').audits).toBeUndefined();
  });

  test('an audit rule behind an anonymous rule it never reaches records nothing', () => {
    expect(h.check('GET', 'https://eo.example.org/public/next/x').audits).toBeUndefined();
  });
});

describe('CORS preflights: only on rules that say so, and only real preflights', () => {
  const input: ConfigInput = {
    issuers: [bearerIssuer({ audiences: ['api'] })],
    rules: [
      { name: 'stac-write', paths: ['/stac/**'], methods: ['POST', 'PUT'], allow: { groups: ['editors'] }, cors: { preflight: 'allow', origins: ['https://browser.example.org'] } },
      { name: 'stac-read', paths: ['/stac/**'], methods: ['GET'], allow: 'authenticated', cors: { preflight: 'allow' } },
      { name: 'api', paths: ['/api/**'], allow: 'authenticated' },
    ],
  };
  const h = harness(input);
  const preflight = (method: string, origin = 'https://browser.example.org') => ({ origin, 'access-control-request-method': method });

  test.each([
    { what: 'a preflight for a write from a listed origin', path: '/stac/items', headers: preflight('PUT'), expected: { kind: 'allow', reason: 'cors_preflight', rule: 'stac-write' } },
    { what: 'a preflight for a write from another origin', path: '/stac/items', headers: preflight('PUT', 'https://evil.example.net'), expected: { kind: 'forbidden', reason: 'default_deny', rule: 'default' } },
    { what: 'a preflight for a read (any origin)', path: '/stac/items', headers: preflight('GET', 'https://anyone.example.net'), expected: { kind: 'allow', reason: 'cors_preflight', rule: 'stac-read' } },
    { what: 'a preflight on a rule without cors is checked as any OPTIONS', path: '/api/x', headers: preflight('POST'), expected: { kind: 'unauthorized', reason: 'no_credentials', rule: 'api' } },
    { what: 'an OPTIONS without Access-Control-Request-Method is no preflight', path: '/stac/items', headers: { origin: 'https://browser.example.org' }, expected: { kind: 'forbidden', reason: 'default_deny', rule: 'default' } },
    { what: 'an OPTIONS without Origin is no preflight', path: '/stac/items', headers: { 'access-control-request-method': 'PUT' }, expected: { kind: 'forbidden', reason: 'default_deny', rule: 'default' } },
    { what: 'a preflight asking for a method no rule lets through is no pass', path: '/stac/items', headers: preflight('DELETE'), expected: { kind: 'forbidden', reason: 'default_deny', rule: 'default' } },
    { what: 'a malformed requested method is no preflight', path: '/stac/items', headers: preflight('put'), expected: { kind: 'forbidden', reason: 'default_deny', rule: 'default' } },
  ])('$what', ({ path, headers, expected }) => {
    // Anything but a pass is an ordinary OPTIONS: no rule here lists OPTIONS but "api", so the default decides.
    expect(summary(h.check('OPTIONS', `https://eo.example.org${path}`, undefined, headers))).toEqual(expected);
  });

  test('a preflight pass carries no identity, even with a valid token', () => {
    const withToken = harness(input, { t: { aud: 'api', groups: ['editors'] } });
    const decision = withToken.check('OPTIONS', 'https://eo.example.org/stac/items', 't', preflight('PUT'));
    expect(decision.kind === 'allow' ? { reason: decision.reason, identity: decision.identity } : decision.kind).toEqual({ reason: 'cors_preflight', identity: null });
  });

  test('the real request after the preflight is checked as always', () => {
    expect(summary(h.check('PUT', 'https://eo.example.org/stac/items', undefined, preflight('PUT')))).toEqual({ kind: 'unauthorized', reason: 'no_credentials', rule: 'stac-write' });
  });
});

describe('what the policy writes in the config stays the same for existing rules', () => {
  test('GET implies HEAD and "/x" is "/x/" for captures too', () => {
    const policy = compilePolicy(parseConfig({ rules: [{ name: 'c', paths: ['/collections/{ws}.{c}'], methods: ['GET'], allow: 'authenticated' }] }));
    const head = policy.match('HEAD', 'h', pathSegments('/collections/a.b/'));
    expect({ rule: head.rule.name, params: { ...head.params } }).toEqual({ rule: 'c', params: { ws: 'a', c: 'b' } });
  });
});

describe('explain names the host captures and the audit-mode rules a request passed', () => {
  const config = parseConfig({
    issuers: [bearerIssuer({ audienceCheckedBy: 'rules' })],
    rules: [
      { name: 'writes-audit', paths: ['/**'], methods: ['PUT'], allow: { authorizedParties: ['portal'] }, mode: 'audit' },
      { name: 'ui', hosts: ['editor-{ws}-default.example.org', '{ws}-default.example.org'], paths: ['/files/{file}'], allow: { audiences: ['{ws}'] }, cors: { preflight: 'allow' } },
    ],
  });
  const claims = { iss: ISSUER, sub: 'alice', aud: ['ws-alice'], azp: 'cli' };

  test('a host capture, the params, the audited rule\'s would-be answer, then the decision', () => {
    const text = explain(config, 'PUT', 'https://editor-ws-alice-default.example.org/files/a.txt', { kind: 'claims', claims, session: false });
    expect(text).toBe([
      'request:   PUT editor-ws-alice-default.example.org/files/a.txt',
      'normalized: /files/a.txt',
      'rule:      #1 ui',
      'host:      "editor-{ws}-default.example.org" captured {"ws":"ws-alice"}',
      'params:    {"ws":"ws-alice","file":"a.txt"}',
      'access:    {"audiences":["{ws}"]}',
      'cors:      preflights (OPTIONS with Origin and Access-Control-Request-Method) pass without credentials',
      'identity:  kubeflow-userid=alice kubeflow-groups= (audience checked by the rules)',
      'audit:     #0 writes-audit (mode: audit, passed over) would answer 403 forbidden (requirement_not_met: authorizedParties not met)',
      'decision:  200 allow (bearer)',
      '',
    ].join('\n'));
  });

  test('another workspace\'s host: the capture shows why', () => {
    const text = explain(config, 'GET', 'https://ws-bob-default.example.org/files/a.txt', { kind: 'claims', claims, session: false });
    expect(text).toContain('host:      "{ws}-default.example.org" captured {"ws":"ws-bob"}');
    expect(text).toContain('decision:  403 forbidden (requirement_not_met: audiences not met)');
    expect(text).not.toContain('audit:');
  });
});
