/**
 * The public origin of a request without publicUrl: its scheme and Host, when the Host is on
 * allowedHosts. Anything else gets no origin, so no URL is ever built on a host an attacker chose.
 */
import { parseConfig } from '../../src/config/load.js';
import { createPublicOrigins } from '../../src/http/public-origin.js';

const derived = createPublicOrigins(parseConfig({ allowedHosts: ['localhost:*', '127.0.0.1:8080', 'kubeflow.example.com', '.corp.example.org', '[::1]:8080'], trustForwardedProto: true }));

describe('createPublicOrigins without publicUrl', () => {
  test.each<{ host: string | undefined; scheme: 'http' | 'https'; expected: string | null }>([
    { host: 'localhost:8080', scheme: 'http', expected: 'http://localhost:8080' },
    { host: 'LOCALHOST:31380', scheme: 'http', expected: 'http://localhost:31380' },
    { host: '127.0.0.1:8080', scheme: 'http', expected: 'http://127.0.0.1:8080' },
    { host: '127.0.0.1:8081', scheme: 'http', expected: null },
    { host: 'kubeflow.example.com', scheme: 'https', expected: 'https://kubeflow.example.com' },
    { host: 'kubeflow.example.com:443', scheme: 'https', expected: 'https://kubeflow.example.com' },
    { host: 'kubeflow.example.com:8443', scheme: 'https', expected: null },
    { host: 'ml.corp.example.org', scheme: 'https', expected: 'https://ml.corp.example.org' },
    { host: 'corp.example.org.evil.example', scheme: 'https', expected: null },
    { host: '[::1]:8080', scheme: 'http', expected: 'http://[::1]:8080' },
    { host: 'evil.example.com', scheme: 'https', expected: null },
    { host: 'user@localhost:8080', scheme: 'http', expected: null },
    { host: 'localhost:8080/path', scheme: 'http', expected: null },
    { host: 'localhost:8080?x', scheme: 'http', expected: null },
    { host: 'localhost:8080#x', scheme: 'http', expected: null },
    { host: 'local host', scheme: 'http', expected: null },
    { host: '', scheme: 'http', expected: null },
    { host: undefined, scheme: 'http', expected: null },
    { host: `${'a'.repeat(300)}.example.com`, scheme: 'http', expected: null },
  ])('$scheme with Host "$host" → $expected', ({ host, scheme, expected }) => {
    expect(derived.of(host, scheme)).toBe(expected);
  });

  test('headers: x-forwarded-proto decides the scheme when trusted', () => {
    expect(derived.ofHeaders({ host: 'kubeflow.example.com', 'x-forwarded-proto': 'https' })).toBe('https://kubeflow.example.com');
    expect(derived.ofHeaders({ host: 'kubeflow.example.com' })).toBe('http://kubeflow.example.com');
    const untrusting = createPublicOrigins(parseConfig({ allowedHosts: ['kubeflow.example.com'] }));
    expect(untrusting.ofHeaders({ host: 'kubeflow.example.com', 'x-forwarded-proto': 'https' })).toBe('http://kubeflow.example.com');
  });

  test('with publicUrl every request gets its origin, whatever the Host', () => {
    const fixed = createPublicOrigins(parseConfig({ publicUrl: 'https://kf.example.com/base', allowedHosts: ['localhost:*'] }));
    expect(fixed.fixed).toBe('https://kf.example.com');
    expect(fixed.of('evil.example.com', 'http')).toBe('https://kf.example.com');
  });
});
