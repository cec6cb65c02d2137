/** The `tracing` config section (src/config/schema.ts) and its headers file (src/tracing/sdk.ts). */
import { parseConfig } from '../../src/config/load.js';
import { problemsOf } from '../support/config-problems.js';
import { readHeadersFile } from '../../src/tracing/sdk.js';
import { tempFile } from '../support/service.js';

describe('tracing config', () => {
  test('off by default, with the defaults an operator reads in the README', () => {
    expect(parseConfig({}).tracing).toEqual({ enabled: false, serviceName: 'oidc-authz', sampleRatio: 1, headers: {}, timeout: 5_000 });
  });

  test('on, with every field', () => {
    const tracing = parseConfig({
      tracing: { enabled: true, endpoint: 'http://otel-collector.observability:4318/v1/traces', serviceName: 'authz-eu', sampleRatio: 0.25, headers: { 'X-Scope-OrgID': 'kubeflow' }, headersFile: '/etc/otlp/headers', timeout: '2s' },
    }).tracing;
    expect(tracing).toEqual({ enabled: true, endpoint: 'http://otel-collector.observability:4318/v1/traces', serviceName: 'authz-eu', sampleRatio: 0.25, headers: { 'X-Scope-OrgID': 'kubeflow' }, headersFile: '/etc/otlp/headers', timeout: 2_000 });
  });

  test.each([
    [{ enabled: true }, 'tracing.endpoint'],
    [{ enabled: true, endpoint: 'otel-collector:4318' }, 'tracing.endpoint'],
    [{ enabled: true, endpoint: 'http://user:pw@collector:4318/v1/traces' }, 'tracing.endpoint'],
    [{ endpoint: 'http://c:4318/v1/traces', sampleRatio: 1.5 }, 'tracing.sampleRatio'],
    [{ endpoint: 'http://c:4318/v1/traces', sampleRatio: -0.1 }, 'tracing.sampleRatio'],
    [{ serviceName: 'two words' }, 'tracing.serviceName'],
    [{ headers: { 'bad header': 'x' } }, 'tracing.headers.bad header'],
    [{ headers: { 'x-ok': 'line\nbreak' } }, 'tracing.headers.x-ok'],
    [{ timeout: '10ms' }, 'tracing.timeout'],
    [{ exporter: 'zipkin' }, 'tracing'],
  ])('%j is refused, naming %s', (tracing, path) => {
    const problems = problemsOf(() => parseConfig({ tracing }));
    expect(problems).toHaveLength(1);
    expect(problems[0]!.slice(0, problems[0]!.indexOf(': '))).toBe(path);
  });
});

describe('tracing.headersFile', () => {
  test('"Name: value" lines; blank lines and comments skipped; names in lower case', () => {
    expect(readHeadersFile(tempFile('# the collector key\nAuthorization: Bearer abc:def\n\nX-Scope-OrgID:  kubeflow  \n'))).toEqual({ authorization: 'Bearer abc:def', 'x-scope-orgid': 'kubeflow' });
  });

  test('a line that is no header names its line number, never its content', () => {
    const problems = problemsOf(() => readHeadersFile(tempFile('Authorization: Bearer ok\nsecret-without-colon\n')));
    expect(problems).toEqual(['tracing.headersFile: line 2 is not "Name: value"']);
  });

  test('an unreadable file is a config problem', () => {
    expect(problemsOf(() => readHeadersFile('/nonexistent/otlp-headers'))).toEqual(['tracing.headersFile: cannot read: ENOENT']);
  });
});
