/**
 * Return URLs after login and sign-out (`rd`, DESIGN.md §4 and §6): a path on the public host or a host
 * on the allow-list; everything else falls back. Every row, accepted or refused, is also checked against
 * the invariant that matters: whatever comes back is an absolute http(s) URL, without credentials, on the
 * public origin or an allow-listed host.
 */
import { safeReturnUrl, type RedirectPolicy } from '../../src/oidc/redirect.js';

const policy: RedirectPolicy = {
  publicOrigin: 'https://kubeflow.example.com',
  allowList: ['.example.org', 'tools.example.net:8443', 'any-port.example.net:*', 'docs.example.net', 'Mixed.Example.NET'],
};
/** The allow-list of DESIGN.md §5: a whole domain that also contains the public host. */
const domainPolicy: RedirectPolicy = { publicOrigin: 'https://kubeflow.example.com', allowList: ['.example.com'] };
const FALLBACK = 'https://kubeflow.example.com/';
const PUBLIC = 'https://kubeflow.example.com';

const DEFAULT_PORTS: Record<string, string> = { 'http:': '80', 'https:': '443' };

/** An allow-list check written independently of the one under test ("host", "host:port", "host:*", ".domain"). */
function allowedByList(url: URL, allowList: readonly string[]): boolean {
  const port = url.port === '' ? DEFAULT_PORTS[url.protocol] : url.port;
  return allowList.some((raw) => {
    const entry = raw.toLowerCase();
    const withPort = /^(.+):(\d+|\*)$/.exec(entry);
    const host = withPort ? withPort[1]! : entry;
    const portOk = withPort ? withPort[2] === '*' || withPort[2] === port : url.port === '';
    const hostOk = host.startsWith('.') ? url.hostname === host.slice(1) || url.hostname.endsWith(host) : url.hostname === host;
    return portOk && hostOk;
  });
}

/** The invariant: an absolute http(s) URL, in canonical form, without userinfo, on an allowed origin. */
function expectSafe(result: string, p: RedirectPolicy): void {
  expect(typeof result).toBe('string');
  expect(result).not.toMatch(/[\s\\\x00-\x1f\x7f]/);
  const url = new URL(result); // throws (and fails the test) when not absolute
  expect(['http:', 'https:']).toContain(url.protocol);
  expect(url.href).toBe(result);
  expect(url.username).toBe('');
  expect(url.password).toBe('');
  expect(url.origin === p.publicOrigin || allowedByList(url, p.allowList)).toBe(true);
}

describe('safeReturnUrl: accepted return URLs come back absolute', () => {
  test.each<{ what: string; rd: string; expected: string; p?: RedirectPolicy }>([
    // Paths on the public host.
    { what: 'a path with a query becomes absolute on the public origin', rd: '/pipelines/?ns=a', expected: `${PUBLIC}/pipelines/?ns=a` },
    { what: 'the root', rd: '/', expected: `${PUBLIC}/` },
    { what: 'a path with a query and a fragment', rd: '/_/jupyter/?ns=kubeflow-user#new', expected: `${PUBLIC}/_/jupyter/?ns=kubeflow-user#new` },
    { what: 'a query holding an absolute URL stays a query on the public host', rd: '/x?next=https://evil.com/', expected: `${PUBLIC}/x?next=https://evil.com/` },
    { what: 'an encoded backslash stays a path on the public host', rd: '/%5cevil.com', expected: `${PUBLIC}/%5cevil.com` },
    { what: 'encoded slashes stay a path on the public host', rd: '/%2F%2Fevil.com', expected: `${PUBLIC}/%2F%2Fevil.com` },
    { what: 'an "@" in the path is not userinfo', rd: '/@evil.com', expected: `${PUBLIC}/@evil.com` },
    { what: 'dot segments that leave "//" in the path stay on the public host', rd: '/..//evil.com', expected: `${PUBLIC}//evil.com` },
    { what: 'a full-width solidus is percent-encoded in the path', rd: '/\uff0fevil.com', expected: `${PUBLIC}/%EF%BC%8Fevil.com` },
    { what: 'a path of exactly 4096 characters', rd: `/${'a'.repeat(4095)}`, expected: `${PUBLIC}/${'a'.repeat(4095)}` },
    // Absolute URLs on the public origin.
    { what: 'the public origin, absolute', rd: 'https://kubeflow.example.com/x', expected: `${PUBLIC}/x` },
    { what: 'the public origin in upper case is normalized', rd: 'HTTPS://KUBEFLOW.EXAMPLE.COM/x', expected: `${PUBLIC}/x` },
    { what: 'the public origin with its default port spelled out', rd: 'https://kubeflow.example.com:443/x', expected: `${PUBLIC}/x` },
    { what: 'the public origin with an empty port', rd: 'https://kubeflow.example.com:/x', expected: `${PUBLIC}/x` },
    { what: 'the public host spelled with percent-encoded dots', rd: 'https://kubeflow%2Eexample%2Ecom/x', expected: `${PUBLIC}/x` },
    { what: 'an empty userinfo ("https://@host") is dropped, no credentials remain', rd: 'https://@kubeflow.example.com/', expected: `${PUBLIC}/` },
    { what: 'the public host followed by a zero-width space (IDNA removes it)', rd: 'https://kubeflow.example.com\u200b/a', expected: `${PUBLIC}/a` },
    // The allow-list.
    { what: 'an allow-listed domain (apex)', rd: 'https://example.org/a', expected: 'https://example.org/a' },
    { what: 'an allow-listed domain (sub-domain), over http', rd: 'http://a.b.example.org/a', expected: 'http://a.b.example.org/a' },
    { what: 'an allow-listed domain written with ideographic full stops', rd: 'https://docs\u3002example\u3002org/', expected: 'https://docs.example.org/' },
    { what: 'an allow-listed domain with an internationalized sub-domain (punycode)', rd: 'https://b\u00fccher.example.org/', expected: 'https://xn--bcher-kva.example.org/' },
    { what: 'an allow-listed host:port', rd: 'https://tools.example.net:8443/t', expected: 'https://tools.example.net:8443/t' },
    { what: 'host:* allows any port', rd: 'https://any-port.example.net:9999/', expected: 'https://any-port.example.net:9999/' },
    { what: 'host:* allows the default port too', rd: 'https://any-port.example.net/', expected: 'https://any-port.example.net/' },
    { what: 'a plain allow-listed host over https', rd: 'https://docs.example.net/guide?x=1#y', expected: 'https://docs.example.net/guide?x=1#y' },
    { what: 'a plain allow-listed host over http', rd: 'http://docs.example.net/', expected: 'http://docs.example.net/' },
    { what: 'allow-list entries match case-insensitively', rd: 'https://mixed.example.net/', expected: 'https://mixed.example.net/' },
    // ".example.com": the apex and every sub-domain, the public host over http included.
    { what: '".example.com" allows the apex', rd: 'https://example.com/', expected: 'https://example.com/', p: domainPolicy },
    { what: '".example.com" allows a sub-domain', rd: 'https://dex.example.com/dex/', expected: 'https://dex.example.com/dex/', p: domainPolicy },
    { what: '".example.com" allows the public host over http', rd: 'http://kubeflow.example.com/', expected: 'http://kubeflow.example.com/', p: domainPolicy },
  ])('$what', ({ rd, expected, p = policy }) => {
    const result = safeReturnUrl(rd, p);
    expect(result).toBe(expected);
    expectSafe(result, p);
  });
});

describe('safeReturnUrl: allow-list entries with a default port or an IPv6 literal', () => {
  // "host:443" is how an operator writes "https on the usual port"; the URL parser drops a default port,
  // so the entry must be compared with the effective port. "[::1]" is a host like any other.
  test.each<{ what: string; entry: string; rd: string; expected: string }>([
    { what: '"host:443" allows https://host/', entry: 'tls.example.net:443', rd: 'https://tls.example.net/x', expected: 'https://tls.example.net/x' },
    { what: '"host:443" allows https://host:443/', entry: 'tls.example.net:443', rd: 'https://tls.example.net:443/x', expected: 'https://tls.example.net/x' },
    { what: '"host:80" allows http://host/', entry: 'plain.example.net:80', rd: 'http://plain.example.net/', expected: 'http://plain.example.net/' },
    { what: '"[::1]" allows http://[::1]/', entry: '[::1]', rd: 'http://[::1]/', expected: 'http://[::1]/' },
    { what: '"[::1]:8080" allows http://[::1]:8080/', entry: '[::1]:8080', rd: 'http://[::1]:8080/', expected: 'http://[::1]:8080/' },
  ])('$what', ({ entry, rd, expected }) => {
    const p: RedirectPolicy = { publicOrigin: PUBLIC, allowList: [entry] };
    const result = safeReturnUrl(rd, p);
    expect(result).toBe(expected);
    expectSafe(result, p);
  });

  test.each<{ what: string; entry: string; rd: string }>([
    { what: '"host:443" does not allow http://host/ (port 80)', entry: 'tls.example.net:443', rd: 'http://tls.example.net/' },
    { what: '"host:443" does not allow another port', entry: 'tls.example.net:443', rd: 'https://tls.example.net:8443/' },
    { what: '"[::1]" does not allow another port', entry: '[::1]', rd: 'http://[::1]:8080/' },
    { what: '"[::1]" does not allow [::2]', entry: '[::1]', rd: 'http://[::2]/' },
  ])('$what', ({ entry, rd }) => {
    const p: RedirectPolicy = { publicOrigin: PUBLIC, allowList: [entry] };
    const result = safeReturnUrl(rd, p);
    expect(result).toBe(FALLBACK);
    expectSafe(result, p);
  });
});

describe('safeReturnUrl: refused return URLs fall back to the public root', () => {
  test.each<{ what: string; rd: string; p?: RedirectPolicy }>([
    // Scheme-relative and backslash spellings (browsers read "\" as "/").
    { what: 'scheme-relative "//evil.com"', rd: '//evil.com/x' },
    { what: 'three slashes', rd: '///evil.com' },
    { what: 'four slashes', rd: '////evil.com' },
    { what: 'slash-backslash', rd: '/\\evil.com' },
    { what: 'two backslashes', rd: '\\\\evil.com' },
    { what: 'backslash-slash', rd: '\\/evil.com' },
    { what: 'a backslash deep in a path', rd: '/a/b\\c' },
    { what: 'a backslash inside an absolute URL', rd: 'https://evil.com\\@kubeflow.example.com' },
    { what: 'a backslash before an allow-listed domain', rd: 'https://evil.com\\.example.org/' },
    // Whitespace and control characters (browsers strip tabs and newlines before parsing).
    { what: 'a leading space', rd: ' /x' },
    { what: 'a trailing space', rd: '/x ' },
    { what: 'a space inside a path', rd: '/ /evil.com' },
    { what: 'a tab between the slashes', rd: '/\t/evil.com' },
    { what: 'a newline between the slashes', rd: '/\n/evil.com' },
    { what: 'a carriage return and line feed (header injection)', rd: '/x\r\nSet-Cookie: a=b' },
    { what: 'a newline inside a scheme', rd: 'java\nscript:alert(1)' },
    { what: 'a tab inside a scheme', rd: 'java\tscript:alert(1)' },
    { what: 'a NUL character', rd: '/x\x00' },
    { what: 'a DEL character', rd: '/x\x7f' },
    { what: 'a leading no-break space', rd: '\u00a0/x' },
    { what: 'a leading byte-order mark', rd: '\ufeff/x' },
    { what: 'a line separator inside', rd: '/x\u2028y' },
    // Other schemes.
    { what: 'javascript:', rd: 'javascript:alert(1)' },
    { what: 'JavaScript: in mixed case', rd: 'JavaScript:alert(1)' },
    { what: 'javascript: with an encoded newline after "//"', rd: 'javascript://%0aalert(1)' },
    { what: 'data:', rd: 'data:text/html,<script>alert(1)</script>' },
    { what: 'vbscript:', rd: 'vbscript:msgbox(1)' },
    { what: 'ftp: on the public host', rd: 'ftp://kubeflow.example.com/' },
    { what: 'file:', rd: 'file:///etc/passwd' },
    { what: 'ws: on the public host', rd: 'ws://kubeflow.example.com/' },
    { what: 'blob: (its origin is the public origin, its scheme is not http)', rd: 'blob:https://kubeflow.example.com/0b1c' },
    // Userinfo tricks.
    { what: 'the public host as userinfo of another host', rd: 'https://kubeflow.example.com@evil.com/' },
    { what: 'the public host as userinfo with an empty password', rd: 'https://kubeflow.example.com:@evil.com/' },
    { what: 'the public host after "#@" (fragment trick)', rd: 'https://evil.com#@kubeflow.example.com' },
    { what: 'the public host after "?@" (query trick)', rd: 'https://evil.com?@kubeflow.example.com' },
    { what: 'credentials on the public host', rd: 'https://user:pass@kubeflow.example.com/' },
    { what: 'a user name on the public host', rd: 'https://user@kubeflow.example.com/' },
    { what: 'an empty user name with a password on the public host', rd: 'https://:pass@kubeflow.example.com/' },
    { what: 'credentials on an allow-listed host', rd: 'https://user:pass@docs.example.net/' },
    { what: 'an encoded "@" in the host', rd: 'https://kubeflow.example.com%40evil.com/' },
    // Look-alike hosts and ports.
    { what: 'another host', rd: 'https://evil.com/' },
    { what: 'the public host as a prefix of another domain', rd: 'https://kubeflow.example.com.evil.com/' },
    { what: 'the public host with a trailing dot', rd: 'https://kubeflow.example.com./' },
    { what: 'the public host over http', rd: 'http://kubeflow.example.com/' },
    { what: 'the public host on another port', rd: 'https://kubeflow.example.com:8443/' },
    { what: 'a look-alike of an allow-listed domain', rd: 'https://evilexample.org/' },
    { what: 'an allow-listed domain as a prefix of another domain', rd: 'https://example.org.evil.com/' },
    { what: 'an allow-listed domain in the path of another host', rd: 'https://evil.com/.example.org' },
    { what: 'an allow-listed domain after an encoded slash in the host', rd: 'https://evil.com%2F.example.org/' },
    { what: 'an allow-listed domain after an encoded "#" in the host', rd: 'https://evil.com%23.example.org/' },
    { what: 'an allow-listed domain after an encoded NUL in the host', rd: 'https://evil.com%00.example.org/' },
    { what: 'an allow-listed domain after a full-width solidus in the host', rd: 'https://evil.com\uff0f.example.org/' },
    { what: 'an allow-listed domain on another port', rd: 'https://example.org:8443/' },
    { what: 'an allow-listed host:port on its default port', rd: 'https://tools.example.net/t' },
    { what: 'an allow-listed host:port on a third port', rd: 'https://tools.example.net:8444/t' },
    { what: 'a sub-domain of an exact allow-listed host', rd: 'https://sub.tools.example.net:8443/' },
    { what: 'a host:* entry as a prefix of another domain', rd: 'https://any-port.example.net.evil.com:9999/' },
    { what: 'a plain allow-listed host on another port', rd: 'https://docs.example.net:8443/' },
    { what: 'a loopback address', rd: 'https://127.0.0.1/' },
    { what: 'a hex IPv4 address', rd: 'https://0x7f.1/' },
    { what: 'an IPv6 address', rd: 'https://[::1]/' },
    { what: 'a look-alike of ".example.com"', rd: 'https://evilexample.com/', p: domainPolicy },
    { what: 'the public host as a prefix of another domain under ".example.com"', rd: 'https://kubeflow.example.com.evil.com/', p: domainPolicy },
    { what: '".example.com" on another port', rd: 'https://dex.example.com:5556/', p: domainPolicy },
    // Spellings as they arrive after the query parser decoded them once.
    { what: '"%2F%2Fevil.com" (the raw query was %252F%252F)', rd: '%2F%2Fevil.com' },
    { what: '"%252F%252Fevil.com" (double-encoded)', rd: '%252F%252Fevil.com' },
    { what: '"%5C%5Cevil.com" (encoded backslashes)', rd: '%5C%5Cevil.com' },
    { what: '"https:%2F%2Fevil.com"', rd: 'https:%2F%2Fevil.com' },
    // Not a path and not an absolute URL.
    { what: 'a bare host name', rd: 'evil.com' },
    { what: 'a relative path without a leading slash', rd: 'pipelines/' },
    { what: 'a query only', rd: '?x=1' },
    { what: 'a fragment only', rd: '#x' },
    { what: 'dot-dot', rd: '..' },
    { what: 'empty', rd: '' },
    { what: 'over-long (a path of 4097 characters)', rd: `/${'a'.repeat(4096)}` },
    { what: 'over-long (an absolute URL on the public origin)', rd: `${PUBLIC}/${'a'.repeat(5000)}` },
  ])('$what', ({ rd, p = policy }) => {
    const result = safeReturnUrl(rd, p);
    expect(result).toBe(FALLBACK);
    expectSafe(result, p);
  });

  test.each<{ what: string; rd: unknown }>([
    { what: 'undefined (no rd parameter)', rd: undefined },
    { what: 'null', rd: null },
    { what: 'an array (rd given twice)', rd: ['/a', '/b'] },
    { what: 'an array of one path', rd: ['/a'] },
    { what: 'an object (rd[x]=… in an extended query)', rd: { rd: '/x' } },
    { what: 'a number', rd: 42 },
    { what: 'a boolean', rd: true },
    { what: 'a String object', rd: new String('/x') },
  ])('non-string: $what', ({ rd }) => {
    const result = safeReturnUrl(rd, policy);
    expect(result).toBe(FALLBACK);
    expectSafe(result, policy);
  });

  test.each<{ what: string; rd: unknown; expected: string }>([
    { what: 'a refused URL gets the caller\'s fallback', rd: '//evil.com', expected: 'https://kubeflow.example.com/goodbye' },
    { what: 'a missing rd gets the caller\'s fallback', rd: undefined, expected: 'https://kubeflow.example.com/goodbye' },
    { what: 'an accepted URL ignores the caller\'s fallback', rd: '/x', expected: 'https://kubeflow.example.com/x' },
  ])('$what', ({ rd, expected }) => {
    expect(safeReturnUrl(rd, policy, 'https://kubeflow.example.com/goodbye')).toBe(expected);
  });
});
