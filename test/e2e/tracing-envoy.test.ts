/**
 * One trace across the gateway and oidc-authz, with real parts: a real Envoy (configured from our extension
 * provider, src/envoy-config.ts) traces with its own OpenTelemetry tracer and exports to the same real
 * OTLP/HTTP receiver as the service (Envoy in protobuf, the service in JSON). Envoy sends its ext_authz
 * span's context to the check in `traceparent` (in includeRequestHeadersInCheck), so the check span's
 * parent is Envoy's ext_authz span, in the trace the client started.
 */
import { CHECK_REQUEST_HEADERS } from '../../src/envoy-contract.js';
import { CHECK_ATTRIBUTES, EDGE_ATTRIBUTES, SPAN_NAMES } from '../../src/tracing/contract.js';
import { sendHttp } from '../support/browser.js';
import { createSigningKey, startIssuer, type TestIssuer } from '../support/issuer.js';
import { startOtlpReceiver, SPAN_KIND, type OtlpReceiver } from '../support/otlp-receiver.js';
import { freePort } from '../support/service.js';
import { startGateway, type Gateway } from '../support/stack.js';

const AUDIENCE = 'tracing-e2e';

let receiver: OtlpReceiver;
let issuer: TestIssuer;
let gateway: Gateway;

beforeAll(async () => {
  receiver = await startOtlpReceiver();
  issuer = await startIssuer([await createSigningKey('ES256', 'e2e-1')], '/e2e-issuer');
  gateway = await startGateway({
    port: await freePort(),
    config: {
      issuers: [{ issuer: issuer.issuer, audiences: [AUDIENCE], userIdClaim: 'sub' }],
      rules: [
        { name: 'static', paths: ['/static/**'], allow: 'anonymous' },
        { name: 'everything', paths: ['/**'], allow: 'authenticated' },
      ],
      tracing: { enabled: true, endpoint: receiver.url, serviceName: 'oidc-authz' },
    },
    envoyTracing: { collector: { host: '127.0.0.1', port: receiver.port }, serviceName: 'ingress-gateway' },
  });
});

afterAll(async () => {
  await gateway?.stop();
  await issuer.stop();
  await receiver.stop();
});

test('traceparent is one of the headers Envoy sends to the check', () => {
  expect(CHECK_REQUEST_HEADERS).toContain('traceparent');
});

test('Envoy traces itself: the check span is the child of Envoy\'s ext_authz span in the client\'s trace, the JWKS fetch the check\'s child', async () => {
  const traceId = '4bf92f3577b34da6a3ce929d0e0e4736';
  const clientSpanId = '00f067aa0ba902b7';
  const token = await issuer.sign({ sub: 'pipeline-runner', aud: AUDIENCE });
  const answer = await sendHttp('GET', `${gateway.url}/pipelines/runs?page_token=abc`, {
    accept: 'application/json',
    authorization: `Bearer ${token}`,
    traceparent: `00-${traceId}-${clientSpanId}-01`,
  });
  expect(answer.status).toBe(200);
  await gateway.authz.tracing!.flush();

  // Envoy's span for the request: the child of the client's span.
  const ingress = await receiver.waitFor((s) => s.service === 'ingress-gateway' && s.traceId === traceId && s.kind === SPAN_KIND.server, 'Envoy\'s request span');
  expect(ingress.parentSpanId).toBe(clientSpanId);
  // Envoy's span for the ext_authz call: the request span's child.
  const extAuthz = await receiver.waitFor((s) => s.service === 'ingress-gateway' && s.traceId === traceId && s.parentSpanId === ingress.spanId && s.kind === SPAN_KIND.client, 'Envoy\'s ext_authz span');
  // Ours: the ext_authz span's child.
  const check = await receiver.waitFor((s) => s.service === 'oidc-authz' && s.name === SPAN_NAMES.check && s.traceId === traceId, 'the check span');
  expect(check.parentSpanId).toBe(extAuthz.spanId);
  expect(check.kind).toBe(SPAN_KIND.server);
  expect(check.attributes).toMatchObject({
    [CHECK_ATTRIBUTES.method]: 'GET',
    [CHECK_ATTRIBUTES.path]: '/pipelines/runs',
    [CHECK_ATTRIBUTES.status]: 200,
    [CHECK_ATTRIBUTES.decision]: 'allow',
    [CHECK_ATTRIBUTES.reason]: 'bearer',
    [CHECK_ATTRIBUTES.rule]: 'everything',
  });
  const jwks = await receiver.waitFor((s) => s.name === SPAN_NAMES.jwksFetch && s.traceId === traceId && s.parentSpanId === check.spanId, 'the JWKS fetch under the check');
  expect(jwks.attributes[EDGE_ATTRIBUTES.result]).toBe('ok');

  // Neither side's spans hold the token. The query is in none of ours; Envoy's own request span does carry
  // it (its http.url attribute), which is the gateway's tracing to configure, not ours (README "Tracing").
  const everything = receiver.requests.map((r) => r.text).join('\n');
  expect(everything).not.toContain(token.split('.')[2]!);
  const ours = receiver.requests.filter((r) => r.contentType === 'application/json').map((r) => r.text).join('\n');
  expect(ours).toContain(check.spanId);
  expect(ours).not.toContain('page_token');
});

test('a request the check refuses: Envoy passes our 401 on, and the check span says why, under Envoy\'s ext_authz span', async () => {
  const traceId = 'a3ce929d0e0e47364bf92f3577b34da6';
  const answer = await sendHttp('GET', `${gateway.url}/pipelines/`, { accept: 'application/json', traceparent: `00-${traceId}-b7ad6b7169203331-01` });
  expect(answer.status).toBe(401);
  await gateway.authz.tracing!.flush();
  const check = await receiver.waitFor((s) => s.service === 'oidc-authz' && s.traceId === traceId && s.name === SPAN_NAMES.check, 'the refused check');
  expect(check.attributes).toMatchObject({ [CHECK_ATTRIBUTES.decision]: 'unauthorized', [CHECK_ATTRIBUTES.reason]: 'no_credentials', [CHECK_ATTRIBUTES.status]: 401 });
  const parent = await receiver.waitFor((s) => s.service === 'ingress-gateway' && s.spanId === check.parentSpanId, 'Envoy\'s span above the check');
  expect(parent.kind).toBe(SPAN_KIND.client);
  expect(parent.traceId).toBe(traceId);
});
