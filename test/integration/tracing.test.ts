/**
 * Tracing (src/tracing/contract.ts) with real parts: a real OTLP/HTTP receiver (test/support/otlp-receiver.ts)
 * gets what the service's exporter sends; a real issuer serves the JWKS, a real OpenID Provider
 * (oidc-provider, demo/dev-idp.ts) logs in and refreshes, a real redis-server keeps the sessions.
 * The joining with Envoy's own trace is test/e2e/tracing-envoy.test.ts.
 */
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startDevIdp, type DevIdp } from '../../demo/dev-idp.js';
import type { ConfigInput } from '../../src/config/schema.js';
import { CHECK_ATTRIBUTES, EDGE_ATTRIBUTES, SPAN_NAMES } from '../../src/tracing/contract.js';
import { Browser, sendHttp } from '../support/browser.js';
import { metricValue } from '../support/gateway-client.js';
import { startOpaqueTokenServer } from '../support/introspection-server.js';
import { createSigningKey, startIssuer, type TestIssuer } from '../support/issuer.js';
import { startServeProcess, writeTempConfig } from '../support/process.js';
import { startRedis, type RunningRedis } from '../support/redis.js';
import { startOtlpReceiver, SPAN_KIND, type OtlpReceiver, type ReceivedSpan } from '../support/otlp-receiver.js';
import { freePort, pollUntil, startService, tempFile, TestClock, type RunningService } from '../support/service.js';

const COOKIE_SECRET = 'tracing-test-cookie-secret-0123456789abcdefgh';
const CLIENT = { clientId: 'kubeflow', clientSecret: 'tracing-test-client-secret' };
const OTLP_KEY = 'otlp-api-key-that-must-stay-in-the-header';
const API_AUDIENCE = 'tracing-api';
/** A value that must never reach a span: it is in the query string. */
const QUERY_SECRET = 'query-secret-never-traced';

let receiver: OtlpReceiver;
let apiIssuer: TestIssuer;
let idp: DevIdp;
let redis: RunningRedis;
let port: number;
let publicUrl: string;
let host: string;
const headersFile = tempFile(`# the collector's key\nAuthorization: Bearer ${OTLP_KEY}\n`);
const secretsFile = tempFile(COOKIE_SECRET);
const clientSecretFile = tempFile(CLIENT.clientSecret);

beforeAll(async () => {
  receiver = await startOtlpReceiver();
  apiIssuer = await startIssuer([await createSigningKey('RS256', 'api-1')], '/api-issuer');
  port = await freePort();
  publicUrl = `http://127.0.0.1:${port}`;
  host = `127.0.0.1:${port}`;
  redis = await startRedis();
  idp = await startDevIdp({
    issuerPath: '/dex',
    users: { alice: { password: 'alice-pw', email: 'alice@example.com', groups: ['team-a'] } },
    clients: [{ ...CLIENT, redirectUris: [`${publicUrl}/oauth2/callback`], postLogoutRedirectUris: [`${publicUrl}/oauth2/signed_out`] }],
    log: () => undefined,
  });
});

afterAll(async () => {
  await idp.stop();
  await redis.stop();
  await apiIssuer.stop();
  await receiver.stop();
});

function config(tracing: ConfigInput['tracing']): ConfigInput {
  return {
    listen: { port },
    publicUrl,
    oidc: { issuer: idp.issuer, clientId: CLIENT.clientId, clientSecretFile },
    issuers: [{ issuer: apiIssuer.issuer, audiences: [API_AUDIENCE], userIdClaim: 'sub', userIdPrefix: 'api:' }],
    session: { secretsFile, secure: false, store: 'redis', redis: { url: redis.url, cacheFor: '1s', commandTimeout: '1s' } },
    rules: [
      { name: 'public', paths: ['/public/**'], allow: 'anonymous' },
      { name: 'team-b-only', paths: ['/team-b/**'], allow: { groups: ['team-b'] } },
      { name: 'everything', paths: ['/**'], allow: 'authenticated' },
    ],
    tracing,
  };
}

/** A W3C traceparent as a caller (Envoy) sends it, with fresh ids. */
function traceparent(): { header: string; traceId: string; parentId: string } {
  const hex = (bytes: number) => Array.from({ length: bytes }, () => Math.floor(Math.random() * 256).toString(16).padStart(2, '0')).join('');
  const traceId = hex(16);
  const parentId = hex(8);
  return { header: `00-${traceId}-${parentId}-01`, traceId, parentId };
}

function check(service: RunningService, path: string, headers: Record<string, string>) {
  return sendHttp('GET', `${service.url}/authz${path}`, { host, accept: 'application/json', 'sec-fetch-mode': 'cors', ...headers });
}

const childrenOf = (parent: ReceivedSpan) => (span: ReceivedSpan) => span.traceId === parent.traceId && span.parentSpanId === parent.spanId;

/** Every value a span must never hold, and where it would come from. */
function assertNoSecretIn(receiver: OtlpReceiver, secrets: readonly string[]) {
  const everything = receiver.requests.map((r) => r.text).join('\n');
  for (const secret of secrets) {
    expect(secret.length).toBeGreaterThan(8);
    expect(everything).not.toContain(secret);
    for (const span of receiver.spans) for (const value of Object.values(span.attributes)) expect(String(value)).not.toContain(secret);
  }
}

describe('tracing on: spans reach a real OTLP receiver', () => {
  let service: RunningService;
  const clock = new TestClock();
  beforeAll(async () => {
    service = await startService(config({ enabled: true, endpoint: receiver.url, serviceName: 'oidc-authz-under-test', headersFile }), { now: clock.now });
  });
  afterAll(async () => {
    await service.close();
  });

  test('a bearer check: the check span is the child of the caller\'s traceparent, the JWKS fetch its child; attributes without the token or the query', async () => {
    const token = await apiIssuer.sign({ sub: 'robot-1', aud: API_AUDIENCE });
    const parent = traceparent();
    const answer = await check(service, `/api/items?access_token=${QUERY_SECRET}`, { authorization: `Bearer ${token}`, traceparent: parent.header });
    expect(answer.status).toBe(200);
    await service.tracing!.flush();

    const checkSpan = await receiver.waitFor((s) => s.name === SPAN_NAMES.check && s.traceId === parent.traceId, 'check');
    expect(checkSpan).toMatchObject({ parentSpanId: parent.parentId, kind: SPAN_KIND.server, service: 'oidc-authz-under-test', statusCode: 0 });
    expect(checkSpan.attributes).toEqual({
      [CHECK_ATTRIBUTES.method]: 'GET',
      [CHECK_ATTRIBUTES.host]: host,
      [CHECK_ATTRIBUTES.path]: '/api/items',
      [CHECK_ATTRIBUTES.status]: 200,
      [CHECK_ATTRIBUTES.decision]: 'allow',
      [CHECK_ATTRIBUTES.reason]: 'bearer',
      [CHECK_ATTRIBUTES.rule]: 'everything',
    });
    const jwks = await receiver.waitFor((s) => childrenOf(checkSpan)(s) && s.name === SPAN_NAMES.jwksFetch, 'jwks fetch under the check');
    expect(jwks.kind).toBe(SPAN_KIND.client);
    expect(jwks.attributes).toEqual({ [EDGE_ATTRIBUTES.issuer]: apiIssuer.issuer, [EDGE_ATTRIBUTES.result]: 'ok', [EDGE_ATTRIBUTES.keys]: 1 });

    // A refused token: the reason is on the span, the token is not.
    const forged = `${token.slice(0, -8)}AAAAAAAA`;
    const refused = traceparent();
    expect((await check(service, '/api/items', { authorization: `Bearer ${forged}`, traceparent: refused.header })).status).toBe(401);
    await service.tracing!.flush();
    const refusedSpan = await receiver.waitFor((s) => s.name === SPAN_NAMES.check && s.traceId === refused.traceId, 'refused check');
    expect(refusedSpan.attributes).toMatchObject({ [CHECK_ATTRIBUTES.decision]: 'unauthorized', [CHECK_ATTRIBUTES.reason]: 'bad_signature', [CHECK_ATTRIBUTES.status]: 401 });

    // The collector's key went in the header (tracing.headersFile), nowhere else.
    expect(receiver.requests.every((r) => r.headers.authorization === `Bearer ${OTLP_KEY}` && r.contentType === 'application/json')).toBe(true);
    expect(JSON.stringify(service.logs)).not.toContain(OTLP_KEY);
    assertNoSecretIn(receiver, [token, token.split('.')[2]!, forged.split('.')[2]!, QUERY_SECRET, OTLP_KEY]);
  });

  test('parent-based sampling: a caller\'s traceparent that says "not sampled" records nothing, its JWKS fetch included', async () => {
    const other = await startIssuer([await createSigningKey('ES256', 'unsampled-1')], '/unsampled-issuer');
    const local = await startService({
      listen: { port: 0 },
      issuers: [{ issuer: other.issuer, audiences: [API_AUDIENCE], userIdClaim: 'sub' }],
      rules: [{ name: 'everything', paths: ['/**'], allow: 'authenticated' }],
      tracing: { enabled: true, endpoint: receiver.url, serviceName: 'oidc-authz-unsampled' },
    });
    try {
      const unsampled = traceparent();
      const header = unsampled.header.replace(/-01$/, '-00');
      const token = await other.sign({ sub: 'robot-2', aud: API_AUDIENCE });
      expect((await sendHttp('GET', `${local.url}/authz/x`, { host: 'api.example.com', authorization: `Bearer ${token}`, traceparent: header })).status).toBe(200);
      // The same service's next check, sampled, is exported: the flush below is known to have sent what there was.
      const sampled = traceparent();
      expect((await sendHttp('GET', `${local.url}/authz/y`, { host: 'api.example.com', authorization: `Bearer ${token}`, traceparent: sampled.header })).status).toBe(200);
      await local.tracing!.flush();
      await receiver.waitFor((s) => s.traceId === sampled.traceId && s.name === SPAN_NAMES.check, 'the sampled check');
      expect(receiver.spans.filter((s) => s.traceId === unsampled.traceId)).toEqual([]);
      expect(receiver.spans.filter((s) => s.service === 'oidc-authz-unsampled' && s.name === SPAN_NAMES.jwksFetch)).toEqual([]);
    } finally {
      await local.close();
      await other.stop();
    }
  });

  test('a cookie session in Redis: Redis commands and the refresh are children of the check that needed them; no cookie, token or secret in any span', async () => {
    const browser = new Browser();
    const first = await browser.get(`${publicUrl}/authz/notebooks/`, { host, 'sec-fetch-mode': 'navigate', accept: 'text/html' });
    expect(first.status).toBe(302);
    const landed = await browser.get(await browser.loginAtIdp(first.location!, 'alice', 'alice-pw'));
    expect(landed.status).toBe(302);
    const cookie = browser.jar.list(publicUrl).filter((c) => /^oidc_authz(\.\d+)?$/.test(c.name)).map((c) => `${c.name}=${c.value}`).join('; ');
    expect(cookie).not.toBe('');

    // Past session.redis.cacheFor: the check reads the session from Redis again.
    clock.advance(2_000);
    const read = traceparent();
    expect((await check(service, '/notebooks/', { cookie, traceparent: read.header })).status).toBe(200);
    await service.tracing!.flush();
    const readCheck = await receiver.waitFor((s) => s.name === SPAN_NAMES.check && s.traceId === read.traceId, 'cookie check');
    expect(readCheck.attributes).toMatchObject({ [CHECK_ATTRIBUTES.decision]: 'allow', [CHECK_ATTRIBUTES.reason]: 'cookie', [CHECK_ATTRIBUTES.rule]: 'everything' });
    const get = await receiver.waitFor((s) => childrenOf(readCheck)(s) && s.name === 'redis GET', 'redis GET under the check');
    expect(get.attributes).toEqual({ [EDGE_ATTRIBUTES.dbSystem]: 'redis', [EDGE_ATTRIBUTES.dbOperation]: 'GET', [EDGE_ATTRIBUTES.result]: 'ok' });

    // Past session.revalidateAfter (5m): the check refreshes the session at the IdP, under a Redis lease.
    clock.advance(6 * 60_000);
    const renew = traceparent();
    const renewed = await check(service, '/team-b/x', { cookie, traceparent: renew.header });
    expect(renewed.status).toBe(403);
    await service.tracing!.flush();
    const renewCheck = await receiver.waitFor((s) => s.name === SPAN_NAMES.check && s.traceId === renew.traceId, 'refreshing check');
    expect(renewCheck.attributes).toMatchObject({ [CHECK_ATTRIBUTES.decision]: 'forbidden', [CHECK_ATTRIBUTES.reason]: 'requirement_not_met', [CHECK_ATTRIBUTES.rule]: 'team-b-only', [CHECK_ATTRIBUTES.status]: 403 });
    const refresh = await receiver.waitFor((s) => childrenOf(renewCheck)(s) && s.name === SPAN_NAMES.sessionRefresh, 'session refresh under the check');
    expect(refresh.attributes).toEqual({ [EDGE_ATTRIBUTES.result]: 'ok' });
    // The lease is taken (SET NX) by the check before the refresh; the renewed record is written after it.
    await receiver.waitFor((s) => childrenOf(renewCheck)(s) && s.name === 'redis SET', 'the lease under the check');
    const redisSpans = receiver.spans.filter((s) => s.traceId === renew.traceId && s.name.startsWith(SPAN_NAMES.redisPrefix));
    expect(redisSpans.length).toBeGreaterThanOrEqual(2);
    const ids = new Set([renewCheck.spanId, refresh.spanId]);
    expect(redisSpans.every((s) => ids.has(s.parentSpanId))).toBe(true);

    const cookieValues = cookie.split('; ').map((pair) => pair.slice(pair.indexOf('=') + 1));
    assertNoSecretIn(receiver, [...cookieValues, COOKIE_SECRET, CLIENT.clientSecret, OTLP_KEY]);
    // Nor a person: the user's email is in no span.
    expect(receiver.requests.map((r) => r.text).join('\n')).not.toContain('alice@example.com');
  });
});

describe('introspection', () => {
  test('an opaque token: the introspection (with its discovery) is a child of the check; neither the token nor the client secret is exported', async () => {
    const opaque = await startOpaqueTokenServer();
    const service = await startService({
      listen: { port: 0 },
      issuers: [{ issuer: opaque.issuer, audiences: ['kubeflow'], introspection: { clientId: opaque.clientId, clientSecretFile: tempFile(opaque.clientSecret) } }],
      rules: [{ name: 'everything', paths: ['/**'], allow: 'authenticated' }],
      tracing: { enabled: true, endpoint: receiver.url, serviceName: 'oidc-authz-introspecting' },
    });
    try {
      const token = opaque.issue({ sub: 'u-1', aud: 'kubeflow', email: 'carol@example.com', email_verified: true });
      const parent = traceparent();
      const answer = await sendHttp('GET', `${service.url}/authz/data`, { host: 'api.example.com', authorization: `Bearer ${token}`, traceparent: parent.header });
      expect(answer.status).toBe(200);
      await service.tracing!.flush();
      const checkSpan = await receiver.waitFor((s) => s.name === SPAN_NAMES.check && s.traceId === parent.traceId, 'check');
      expect(checkSpan.attributes).toMatchObject({ [CHECK_ATTRIBUTES.decision]: 'allow', [CHECK_ATTRIBUTES.reason]: 'bearer' });
      const introspection = await receiver.waitFor((s) => childrenOf(checkSpan)(s) && s.name === SPAN_NAMES.introspection, 'introspection under the check');
      expect(introspection.attributes).toEqual({ [EDGE_ATTRIBUTES.issuer]: opaque.issuer, [EDGE_ATTRIBUTES.result]: 'active' });
      assertNoSecretIn(receiver, [token, opaque.clientSecret]);
      expect(receiver.requests.map((r) => r.text).join('\n')).not.toContain('carol@example.com');
    } finally {
      await service.close();
      await opaque.stop();
    }
  });
});

describe('token exchange', () => {
  /**
   * The IdP here is a small HTTP server on 127.0.0.1 (discovery, real keys, a token endpoint that grants the
   * exchange), as in token-exchange-idp.test.ts: the dev IdP has no RFC 8693 grant; Keycloak's own answers
   * are tested in test/idp. Everything on our side is the real service.
   */
  test('a rule\'s upstreamToken: the exchange is a child of the check, with the audience and scope asked for; neither token is exported', async () => {
    const key = await createSigningKey('RS256', 'idp-1');
    const exchanged = 'exchanged-access-token-for-ml-pipeline';
    let issuer = '';
    const idpServer = createServer((req, res) => {
      req.resume();
      req.on('end', () => {
        const send = (body: object) => res.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'no-store' }).end(JSON.stringify(body));
        if (req.url === '/.well-known/openid-configuration') {
          return send({ issuer, authorization_endpoint: `${issuer}/auth`, token_endpoint: `${issuer}/token`, jwks_uri: `${issuer}/jwks`, response_types_supported: ['code'], subject_types_supported: ['public'], id_token_signing_alg_values_supported: ['RS256'] });
        }
        if (req.url === '/jwks') return send({ keys: [key.publicJwk] });
        if (req.url === '/token') return send({ access_token: exchanged, token_type: 'Bearer', expires_in: 300, issued_token_type: 'urn:ietf:params:oauth:token-type:access_token' });
        res.writeHead(404).end();
      });
    });
    await new Promise<void>((resolve) => idpServer.listen(0, '127.0.0.1', resolve));
    issuer = `http://127.0.0.1:${(idpServer.address() as AddressInfo).port}`;
    const service = await startService({
      listen: { port: 0 },
      publicUrl: 'http://kubeflow.example.com',
      oidc: { issuer, clientId: 'oidc-authz', clientSecretFile, audiences: ['oidc-authz'] },
      session: { secretsFile, secure: false },
      rules: [{ name: 'pipelines', paths: ['/**'], allow: 'authenticated', upstreamToken: { exchange: { audience: 'ml-pipeline', scope: 'read' } } }],
      tracing: { enabled: true, endpoint: receiver.url, serviceName: 'oidc-authz-exchanging' },
    });
    try {
      const { SignJWT } = await import('jose');
      const now = Math.floor(Date.now() / 1000);
      const subject = await new SignJWT({ sub: 'u-dave', email: 'dave@example.com', email_verified: true, azp: 'oidc-authz' })
        .setProtectedHeader({ alg: 'RS256', kid: key.kid }).setIssuer(issuer).setAudience('oidc-authz').setIssuedAt(now).setExpirationTime(now + 600)
        .sign(key.privateKey);
      const parent = traceparent();
      const answer = await sendHttp('GET', `${service.url}/authz/pipelines/`, { host: 'kubeflow.example.com', authorization: `Bearer ${subject}`, traceparent: parent.header });
      expect(answer.status).toBe(200);
      expect(answer.headers.get('authorization')).toBe(`Bearer ${exchanged}`);
      await service.tracing!.flush();
      const checkSpan = await receiver.waitFor((s) => s.name === SPAN_NAMES.check && s.traceId === parent.traceId, 'check');
      expect(checkSpan.attributes).toMatchObject({ [CHECK_ATTRIBUTES.decision]: 'allow', [CHECK_ATTRIBUTES.rule]: 'pipelines' });
      const exchange = await receiver.waitFor((s) => childrenOf(checkSpan)(s) && s.name === SPAN_NAMES.tokenExchange, 'token exchange under the check');
      expect(exchange.attributes).toEqual({ [EDGE_ATTRIBUTES.audience]: 'ml-pipeline', [EDGE_ATTRIBUTES.scope]: 'read', [EDGE_ATTRIBUTES.result]: 'ok' });
      assertNoSecretIn(receiver, [subject.split('.')[2]!, exchanged, CLIENT.clientSecret]);
    } finally {
      await service.close();
      idpServer.closeAllConnections();
      await new Promise<void>((resolve) => idpServer.close(() => resolve()));
    }
  });
});

describe('export failures never change an answer', () => {
  test('the collector unreachable (nothing listens on its port): checks answer as before; failed exports are counted and logged once', async () => {
    const closedPort = await freePort();
    const service = await startService({
      listen: { port: 0 },
      rules: [{ name: 'public', paths: ['/**'], allow: 'anonymous' }],
      tracing: { enabled: true, endpoint: `http://127.0.0.1:${closedPort}/v1/traces`, timeout: '300ms' },
    });
    try {
      for (let round = 0; round < 2; round++) {
        const answer = await sendHttp('GET', `${service.url}/authz/page`, { host: 'app.example.com', traceparent: traceparent().header });
        expect(answer.status).toBe(200);
        await service.tracing!.flush();
      }
      // A failed export is counted when the exporter gives up, which on a loaded machine can be after flush() returned.
      await pollUntil(() => metricValue(service, 'oidc_authz_trace_export_failures_total'), (failures) => failures >= 2, 5_000);
      expect(await metricValue(service, 'oidc_authz_trace_export_failures_total')).toBe(2);
      expect(service.logs.filter((line) => line.msg === 'trace export failed; its spans are dropped')).toHaveLength(1);
    } finally {
      await service.close();
    }
  });
});

describe('off by default', () => {
  /**
   * The built service (dist/cli.js serve) with a module hook that writes down every module it resolves, so
   * the test sees what was loaded, not what the code says it loads. With tracing on, the same hook sees the
   * SDK (the hook works) and the spans of the last check arrive when SIGTERM's shutdown flushes them.
   */
  function hookFiles(): { args: string[]; log: string } {
    const dir = mkdtempSync(join(tmpdir(), 'oidc-authz-hook-'));
    const log = join(dir, 'resolved.txt');
    writeFileSync(log, '');
    writeFileSync(join(dir, 'hooks.mjs'), [
      "import { appendFileSync } from 'node:fs';",
      'export async function resolve(specifier, context, next) {',
      '  const result = await next(specifier, context);',
      `  appendFileSync(${JSON.stringify(log)}, result.url + '\\n');`,
      '  return result;',
      '}',
    ].join('\n'));
    writeFileSync(join(dir, 'register.mjs'), "import { register } from 'node:module';\nregister('./hooks.mjs', import.meta.url);\n");
    return { args: ['--import', join(dir, 'register.mjs')], log };
  }

  async function serveOnce(tracing: ConfigInput['tracing'] | undefined): Promise<string[]> {
    const { args, log } = hookFiles();
    const file = writeTempConfig({
      listen: { host: '127.0.0.1', port: 0, metricsPort: 0 },
      rules: [{ name: 'public', paths: ['/**'], allow: 'anonymous' }],
      ...(tracing === undefined ? {} : { tracing }),
    });
    const serve = startServeProcess(file, { nodeArgs: args });
    try {
      const listening = await serve.waitForLog('listening');
      const answer = await sendHttp('GET', `http://127.0.0.1:${String(listening.port)}/authz/page`, { host: 'app.example.com', traceparent: traceparent().header });
      expect(answer.status).toBe(200);
    } finally {
      serve.child.kill('SIGTERM');
      expect(await serve.exited).toBe(0);
    }
    return readFileSync(log, 'utf8').split('\n').filter((url) => url !== '');
  }

  test('no tracing config: no OpenTelemetry module and not src/tracing/sdk is ever loaded, and nothing is exported', async () => {
    const before = receiver.requests.length;
    const resolved = await serveOnce(undefined);
    expect(resolved.some((url) => url.endsWith('/dist/cli.js'))).toBe(true);
    expect(resolved.filter((url) => url.includes('opentelemetry') || url.endsWith('/tracing/sdk.js'))).toEqual([]);
    expect(receiver.requests.length).toBe(before);
  });

  test('tracing.enabled: the SDK is loaded, and SIGTERM flushes the last check\'s span to the receiver', async () => {
    const resolved = await serveOnce({ enabled: true, endpoint: receiver.url, serviceName: 'oidc-authz-process' });
    expect(resolved.some((url) => url.endsWith('/dist/tracing/sdk.js'))).toBe(true);
    expect(resolved.some((url) => url.includes('@opentelemetry/sdk-trace-base'))).toBe(true);
    const span = await receiver.waitFor((s) => s.service === 'oidc-authz-process' && s.name === SPAN_NAMES.check, 'check of the process');
    expect(span.attributes).toMatchObject({ [CHECK_ATTRIBUTES.decision]: 'allow', [CHECK_ATTRIBUTES.reason]: 'anonymous', [CHECK_ATTRIBUTES.rule]: 'public' });
  });
});
