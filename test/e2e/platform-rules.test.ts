/**
 * The rules for platforms through a real Envoy configured from our extension provider: CORS preflights
 * (they need origin and access-control-request-method in includeRequestHeadersInCheck), host captures
 * from the Host the client sent, per-rule audiences for an issuer whose audience the rules check, audit
 * mode, and the decision log's trace id from traceparent.
 */
import { sendHttp, type RawExchange } from '../support/browser.js';
import { metricValue } from '../support/gateway-client.js';
import { createSigningKey, startIssuer, type TestIssuer } from '../support/issuer.js';
import { startStack, type Stack } from '../support/stack.js';

const ORIGIN = 'https://browser.example.org';
const TRACE = '0af7651916cd43dd8448eb211c80319c';

let stack: Stack;
let keycloak: TestIssuer;

beforeAll(async () => {
  keycloak = await startIssuer([await createSigningKey('RS256', 'realm-1')], '/realms/eoepca');
  stack = await startStack({
    issuers: [{ issuer: keycloak.issuer, audienceCheckedBy: 'rules', userIdClaim: 'preferred_username', userIdPrefix: 'eoepca:' }],
    log: { decisions: { enabled: true } },
    rules: [
      {
        name: 'workspace-ui',
        hosts: ['editor-{ws}-default.lab.example.org', '{ws}-default.lab.example.org'],
        paths: ['/**'],
        allow: { audiences: ['{ws}'], authorizedParties: ['workspace-api'], claims: { 'resource_access.{ws}.roles': ['ws_access', 'ws_admin'] } },
      },
      {
        name: 'stac-writes-stricter',
        paths: ['/stac/**'],
        methods: ['POST', 'PUT', 'DELETE'],
        allow: { audiences: ['eoapi'], claims: { 'resource_access.eoapi.roles': 'stac_editor' } },
        mode: 'audit',
      },
      {
        name: 'stac-writes',
        paths: ['/stac/**'],
        methods: ['POST', 'PUT', 'DELETE'],
        allow: { audiences: ['eoapi'] },
        cors: { preflight: 'allow', origins: [ORIGIN] },
      },
      { name: 'everything-else', paths: ['/**'], allow: { audiences: ['eoapi'] } },
    ],
  });
}, 60_000);

afterAll(async () => {
  await stack?.stop();
  await keycloak?.stop();
});

function send(method: string, path: string, lines: ReadonlyArray<[string, string]>): Promise<RawExchange> {
  return sendHttp(method, stack.url, lines, undefined, path);
}

const token = (claims: Record<string, unknown>) => keycloak.sign({ sub: 'u-1', preferred_username: 'alice', ...claims });

describe('CORS preflight through Envoy', () => {
  test('a preflight for a rule that allows them reaches the upstream without credentials or identity headers', async () => {
    const before = stack.echo.received.length;
    const answer = await send('OPTIONS', '/stac/collections/x/items', [
      ['origin', ORIGIN], ['access-control-request-method', 'PUT'], ['access-control-request-headers', 'authorization'],
      ['kubeflow-userid', 'admin@example.com'], ['kubeflow_groups', 'admins'],
      // A browser sends no credentials on a preflight: these come from another client and go no further.
      ['authorization', 'Bearer not-checked'], ['cookie', 'app_session=unchecked'],
    ]);
    expect(answer.status).toBe(200);
    expect(stack.echo.received.length).toBe(before + 1);
    const seen = stack.echo.received.at(-1)!;
    expect({ method: seen.method, path: seen.path }).toEqual({ method: 'OPTIONS', path: '/stac/collections/x/items' });
    expect(Object.keys(seen.headers).filter((name) => /kubeflow/i.test(name))).toEqual([]);
    expect(seen.headers.origin).toBe(ORIGIN);
    expect({ authorization: seen.headers.authorization, cookie: seen.headers.cookie }).toEqual({ authorization: undefined, cookie: undefined });
  });

  test.each([
    { what: 'an OPTIONS without Access-Control-Request-Method', lines: [['origin', ORIGIN]] as Array<[string, string]> },
    { what: 'a preflight from an origin the rule does not list', lines: [['origin', 'https://evil.example.net'], ['access-control-request-method', 'PUT']] as Array<[string, string]> },
    { what: 'a preflight for a method whose rule does not allow preflights', lines: [['origin', ORIGIN], ['access-control-request-method', 'GET']] as Array<[string, string]> },
  ])('$what gets no pass: 401 and the upstream never sees it', async ({ lines }) => {
    const before = stack.echo.received.length;
    const answer = await send('OPTIONS', '/stac/collections/x/items', lines);
    expect(answer.status).toBe(401);
    expect(stack.echo.received.length).toBe(before);
  });

  test('the write after the preflight still needs its credentials', async () => {
    const before = stack.echo.received.length;
    expect((await send('PUT', '/stac/collections/x/items', [['origin', ORIGIN]])).status).toBe(401);
    expect(stack.echo.received.length).toBe(before);
  });
});

describe('host captures and per-rule audiences through Envoy', () => {
  const alice = () => token({ aud: ['ws-alice', 'account'], azp: 'workspace-api', resource_access: { 'ws-alice': { roles: ['ws_access'] } } });

  test('the workspace comes from the Host the client sent: her UI host lets her in, with her identity upstream', async () => {
    const answer = await send('GET', '/lab/tree', [['host', 'editor-ws-alice-default.lab.example.org'], ['authorization', `Bearer ${await alice()}`]]);
    expect(answer.status).toBe(200);
    expect(stack.echo.received.at(-1)!.headers['kubeflow-userid']).toBe('eoepca:alice');
  });

  test.each([
    { what: 'another workspace\'s host', host: 'ws-bob-default.lab.example.org', claims: {} },
    { what: 'her host, but a token another client asked for', host: 'ws-alice-default.lab.example.org', claims: { azp: 'ws-alice' } },
    { what: 'her host, but a token not meant for her workspace', host: 'ws-alice-default.lab.example.org', claims: { aud: 'workspace-api' } },
  ])('$what → 403', async ({ host, claims }) => {
    const signed = await token({ aud: ['ws-alice'], azp: 'workspace-api', resource_access: { 'ws-alice': { roles: ['ws_access'] }, 'ws-bob': {} }, ...claims });
    const answer = await send('GET', '/', [['host', host], ['authorization', `Bearer ${signed}`]]);
    expect(answer.status).toBe(403);
  });
});

test('userinfo does not vouch for a token whose audience only the rules check', async () => {
  const signed = await token({ aud: 'some-other-app', azp: 'some-other-app' });
  const answer = await send('GET', '/oauth2/userinfo', [['authorization', `Bearer ${signed}`]]);
  expect(answer.status).toBe(401);
});

describe('audit mode and the decision log through Envoy', () => {
  test('the audited rule would deny a write, the enforced one allows it: allowed, counted, logged with the trace id', async () => {
    const sample = 'oidc_authz_audit_decisions_total{rule="stac-writes-stricter",decision="forbidden",reason="requirement_not_met"}';
    const before = await metricValue(stack.authz, sample);
    const signed = await token({ aud: 'eoapi' });
    const answer = await send('POST', '/stac/collections/x/items?token=QUERY-SECRET', [
      ['authorization', `Bearer ${signed}`], ['traceparent', `00-${TRACE}-b7ad6b7169203331-01`],
    ]);
    expect(answer.status).toBe(200);
    expect(await metricValue(stack.authz, sample)).toBe(before + 1);
    const line = stack.authz.logs.find((entry) => entry.msg === 'decision' && entry.traceId === TRACE);
    expect(line).toMatchObject({
      decision: 'allow', status: 200, reason: 'bearer', rule: 'stac-writes', user: 'eoepca:alice', issuer: keycloak.issuer,
      method: 'POST', path: '/stac/collections/x/items', audits: [{ rule: 'stac-writes-stricter', decision: 'forbidden', reason: 'requirement_not_met' }],
    });
    expect(JSON.stringify(stack.authz.logs)).not.toContain('QUERY-SECRET');
    expect(JSON.stringify(stack.authz.logs)).not.toContain(signed);
    expect(stack.authz.logs.find((entry) => entry.msg === 'audit rule would decide otherwise')).toMatchObject({ rule: 'stac-writes-stricter', would: 'forbidden', decision: 'allow', decidedBy: 'stac-writes' });
  });
});
