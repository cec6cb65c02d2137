import { safeReturnUrl, type RedirectPolicy } from '../../src/oidc/redirect.js';

const policy: RedirectPolicy = {
  publicOrigin: 'https://kubeflow.example.com',
  allowList: ['.example.org', 'tools.example.net:8443', 'any-port.example.net:*'],
};
const FALLBACK = 'https://kubeflow.example.com/';

describe('safeReturnUrl: accepted return URLs (always absolute)', () => {
  test.each([
    ['a path with query', '/pipelines/?ns=a', 'https://kubeflow.example.com/pipelines/?ns=a'],
    ['the root', '/', 'https://kubeflow.example.com/'],
    ['an encoded backslash stays a path on the public host', '/%5cevil.com', 'https://kubeflow.example.com/%5cevil.com'],
    ['the public origin, absolute', 'https://kubeflow.example.com/x', 'https://kubeflow.example.com/x'],
    ['an allow-listed domain (apex)', 'https://example.org/a', 'https://example.org/a'],
    ['an allow-listed domain (sub-domain)', 'http://a.b.example.org/a', 'http://a.b.example.org/a'],
    ['an allow-listed host:port', 'https://tools.example.net:8443/t', 'https://tools.example.net:8443/t'],
    ['host:* allows any port', 'https://any-port.example.net:9999/', 'https://any-port.example.net:9999/'],
  ])('%s', (_name, rd, expected) => {
    expect(safeReturnUrl(rd, policy)).toBe(expected);
  });
});

describe('safeReturnUrl: refused return URLs fall back', () => {
  test.each([
    ['scheme-relative', '//evil.com/x'],
    ['three slashes', '///evil.com'],
    ['slash-backslash', '/\\evil.com'],
    ['backslashes', '\\\\evil.com'],
    ['backslash inside an absolute URL', 'https://evil.com\\@kubeflow.example.com'],
    ['leading space', ' /x'],
    ['tab inside', '/\t/evil.com'],
    ['newline inside a scheme', 'java\nscript:alert(1)'],
    ['javascript:', 'javascript:alert(1)'],
    ['data:', 'data:text/html,<script>alert(1)</script>'],
    ['vbscript:', 'vbscript:msgbox(1)'],
    ['ftp:', 'ftp://kubeflow.example.com/'],
    ['userinfo trick', 'https://kubeflow.example.com@evil.com/'],
    ['fragment trick', 'https://evil.com#@kubeflow.example.com'],
    ['credentials on the public host', 'https://user:pass@kubeflow.example.com/'],
    ['look-alike suffix', 'https://kubeflow.example.com.evil.com/'],
    ['look-alike of an allow-listed domain', 'https://evilexample.org/'],
    ['allow-listed host on another port', 'https://tools.example.net/t'],
    ['the public host on another port', 'https://kubeflow.example.com:8443/'],
    ['decoded once by the query parser: //', '%2F%2Fevil.com'],
    ['double-encoded', '%252F%252Fevil.com'],
    ['empty', ''],
    ['over-long', `/${'a'.repeat(5000)}`],
  ])('%s', (_name, rd) => {
    expect(safeReturnUrl(rd, policy)).toBe(FALLBACK);
  });

  test.each([[undefined], [null], [['/a', '/b']], [{ rd: '/x' }], [42]])('non-string %p', (rd) => {
    expect(safeReturnUrl(rd, policy)).toBe(FALLBACK);
  });

  test('a caller-supplied fallback is used', () => {
    expect(safeReturnUrl('//evil.com', policy, 'https://kubeflow.example.com/goodbye')).toBe('https://kubeflow.example.com/goodbye');
  });
});
