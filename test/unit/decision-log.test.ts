import { buildIdentity, compileIdentityMapping } from '../../src/authn/identity.js';
import type { Decision } from '../../src/check/decide.js';
import { checkRequestFrom } from '../../src/check/request.js';
import { parseConfig } from '../../src/config/load.js';
import { createDecisionLog, decisionLogFields, traceIdOf } from '../../src/decision-log.js';
import { compilePolicy } from '../../src/policy/rules.js';

const config = parseConfig({ rules: [{ name: 'apps', paths: ['/**'], allow: 'authenticated' }] });
const rule = compilePolicy(config).rules[0]!;
const built = buildIdentity({ iss: 'https://idp.example', sub: 's1', email: 'alice@example.org', email_verified: true }, compileIdentityMapping(config.identity), 'bearer');
if (!built.ok) throw new Error(built.reason);
const allow: Decision = { kind: 'allow', rule, identity: built.identity, reason: 'bearer', upstreamCookie: null };
const TRACE = '4bf92f3577b34da6a3ce929d0e0e4736';
const request = checkRequestFrom('GET', '/pipelines/runs?code=SECRET-CODE&token=abc', {
  host: 'kubeflow.example.org',
  authorization: 'Bearer eyJhbGciOiJSUzI1NiJ9.e30.sig',
  cookie: 'oidc_authz=sealed-session',
  traceparent: `00-${TRACE}-00f067aa0ba902b7-01`,
}, 'https');

describe('decision log lines', () => {
  test('say what was decided, by which rule, for whom, where; with the trace id', () => {
    expect(decisionLogFields(allow, request)).toEqual({
      decision: 'allow', status: 200, reason: 'bearer', rule: 'apps', user: 'alice@example.org', issuer: 'https://idp.example', via: 'bearer',
      method: 'GET', host: 'kubeflow.example.org', path: '/pipelines/runs', traceId: TRACE,
    });
  });

  test('never carry the query, a token or a cookie', () => {
    const lines: string[] = [];
    createDecisionLog({ enabled: true, sampleRate: 1, maxPerSecond: 10 }, (line) => lines.push(line)).record(allow, request);
    expect(lines).toHaveLength(1);
    for (const secret of ['SECRET-CODE', 'token=abc', 'eyJhbGciOiJSUzI1NiJ9', 'sealed-session', '?']) expect(lines[0]).not.toContain(secret);
    expect(JSON.parse(lines[0]!)).toMatchObject({ msg: 'decision', decision: 'allow', traceId: TRACE });
  });

  test.each([
    { what: 'a valid traceparent', header: `00-${TRACE}-00f067aa0ba902b7-01`, expected: TRACE },
    { what: 'upper-case hex (not allowed by W3C)', header: `00-${TRACE.toUpperCase()}-00f067aa0ba902b7-01`, expected: undefined },
    { what: 'the all-zero trace id', header: `00-${'0'.repeat(32)}-00f067aa0ba902b7-01`, expected: undefined },
    { what: 'something else', header: 'not-a-trace', expected: undefined },
    { what: 'two headers', header: [`00-${TRACE}-00f067aa0ba902b7-01`, 'x'], expected: undefined },
  ])('trace id of $what', ({ header, expected }) => {
    expect(traceIdOf(header)).toBe(expected);
  });

  test('is off unless enabled, and follows new settings (hot reload)', () => {
    const lines: string[] = [];
    const log = createDecisionLog({ enabled: false, sampleRate: 1, maxPerSecond: 10 }, (line) => lines.push(line));
    log.record(allow, request);
    expect(lines).toHaveLength(0);
    log.configure({ enabled: true, sampleRate: 1, maxPerSecond: 10 });
    log.record(allow, request);
    expect(lines).toHaveLength(1);
  });

  test('samples, caps per second, and counts what it leaves out', () => {
    const lines: string[] = [];
    let now = 1_000_000;
    const randoms = [0.1, 0.9, 0.2, 0.3, 0.4];
    const log = createDecisionLog({ enabled: true, sampleRate: 0.5, maxPerSecond: 2 }, (line) => lines.push(line), () => now, () => randoms.shift() ?? 0);
    for (let i = 0; i < 5; i++) log.record(allow, request);
    // 0.9 is sampled out; of the four left, two fit in this second.
    expect({ written: lines.length, dropped: Object.fromEntries(log.droppedTotals()) }).toEqual({ written: 2, dropped: { sampled_out: 1, rate_limited: 2 } });
    now += 1000;
    log.record(allow, request);
    expect(lines).toHaveLength(3);
  });
});
