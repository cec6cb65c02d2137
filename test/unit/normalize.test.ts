import { MAX_PATH_LENGTH, normalizeHost, normalizePath, type BadRequestReason, type NormalizedHost, type NormalizedPath } from '../../src/check/normalize.js';

const refused = (reason: BadRequestReason): NormalizedPath => ({ ok: false, reason });
const accepted = (path: string): NormalizedPath => ({ ok: true, path });

describe('normalizePath refuses every spelling an upstream could read another way', () => {
  test.each<{ what: string; input: string; expected: NormalizedPath }>([
    // Dot segments, in every spelling.
    { what: 'a ".." segment in the middle', input: '/static/../admin', expected: refused('dot_segment') },
    { what: 'a ".." segment at the end', input: '/static/..', expected: refused('dot_segment') },
    { what: 'a ".." segment right after the root', input: '/..', expected: refused('dot_segment') },
    { what: 'a ".." segment followed by a trailing slash', input: '/a/../', expected: refused('dot_segment') },
    { what: 'a "." segment in the middle', input: '/static/./admin', expected: refused('dot_segment') },
    { what: 'a "." segment at the end', input: '/static/.', expected: refused('dot_segment') },
    { what: 'a lone "." after the root', input: '/.', expected: refused('dot_segment') },
    { what: 'a "." segment hidden behind "//"', input: '/a//./b', expected: refused('dot_segment') },
    { what: '"%2e%2e" (encoded "..")', input: '/static/%2e%2e/admin', expected: refused('dot_segment') },
    { what: '"%2E%2e" (mixed-case encoded "..")', input: '/static/%2E%2e/admin', expected: refused('dot_segment') },
    { what: '".%2e" (half-encoded "..")', input: '/static/.%2e/admin', expected: refused('dot_segment') },
    { what: '"%2e." (half-encoded "..", other half)', input: '/static/%2e./admin', expected: refused('dot_segment') },
    { what: '"%2e" (encoded ".") as a whole segment', input: '/static/%2e/admin', expected: refused('dot_segment') },
    { what: 'an encoded ".." as the last segment', input: '/static/%2e%2e', expected: refused('dot_segment') },
    { what: 'an encoded ".." directly after the root', input: '/%2e%2e/admin', expected: refused('dot_segment') },
    { what: 'an encoded ".." that "//" collapsing would bring next to a slash', input: '/a//%2e%2e//b', expected: refused('dot_segment') },
    // Encoded separators.
    { what: '"..%2f" (dot-dot with an encoded slash)', input: '/static/..%2fadmin', expected: refused('encoded_slash') },
    { what: '"%2f" (encoded slash)', input: '/a%2fb', expected: refused('encoded_slash') },
    { what: '"%2F" (upper-case encoded slash)', input: '/a%2Fb', expected: refused('encoded_slash') },
    { what: '"%5c" (encoded backslash)', input: '/static/..%5cadmin', expected: refused('backslash') },
    { what: '"%5C" (upper-case encoded backslash)', input: '/a%5Cb', expected: refused('backslash') },
    { what: 'a raw backslash', input: '/static\\..\\admin', expected: refused('backslash') },
    // Path parameters (Tomcat and Jetty strip them).
    { what: '"..;" (Tomcat dot-dot with a parameter)', input: '/static/..;/admin', expected: refused('semicolon') },
    { what: 'a ";x=1" path parameter', input: '/a;x=1/b', expected: refused('semicolon') },
    { what: 'a ";jsessionid" parameter at the end', input: '/a;jsessionid=1', expected: refused('semicolon') },
    { what: '"%3b" (encoded semicolon)', input: '/a%3bx=1', expected: refused('semicolon') },
    { what: '"%3B" (upper-case encoded semicolon)', input: '/a%3Bx=1', expected: refused('semicolon') },
    // Double encoding.
    { what: '"%252e" (double-encoded dot)', input: '/static/%252e%252e/admin', expected: refused('double_encoding') },
    { what: '"%25" (encoded percent)', input: '/a%25b', expected: refused('double_encoding') },
    { what: '"%252f" (double-encoded slash)', input: '/a%252fb', expected: refused('double_encoding') },
    // Bytes that are not UTF-8.
    { what: '"%c0%ae" (overlong encoding of ".")', input: '/static/%c0%ae%c0%ae/admin', expected: refused('invalid_utf8') },
    { what: '"%c0%af" (overlong encoding of "/")', input: '/a%c0%afb', expected: refused('invalid_utf8') },
    { what: '"%ed%a0%80" (an encoded UTF-16 surrogate)', input: '/a%ed%a0%80', expected: refused('invalid_utf8') },
    { what: 'a lone continuation byte "%80"', input: '/a%80', expected: refused('invalid_utf8') },
    { what: 'a truncated multi-byte sequence "%c3"', input: '/caf%c3', expected: refused('invalid_utf8') },
    { what: '"%ff" (never valid in UTF-8)', input: '/a%ff', expected: refused('invalid_utf8') },
    // Malformed escapes.
    { what: 'a lone "%" at the end', input: '/a%', expected: refused('bad_escape') },
    { what: 'a lone "%" in the middle', input: '/a%/b', expected: refused('bad_escape') },
    { what: 'a "%" with one hex digit at the end ("%4")', input: '/a%4', expected: refused('bad_escape') },
    { what: 'a "%" with one hex digit before a slash', input: '/a%4/b', expected: refused('bad_escape') },
    { what: 'a "%" followed by non-hex characters ("%zz")', input: '/a%zzb', expected: refused('bad_escape') },
    { what: 'a "%" with a valid first and invalid second digit ("%2g")', input: '/a%2gb', expected: refused('bad_escape') },
    { what: '"%u002e" (IIS %u escape)', input: '/static/%u002e%u002e/admin', expected: refused('bad_escape') },
    { what: 'a bad escape after a good one', input: '/a%41%zz', expected: refused('bad_escape') },
    // Control characters, encoded and raw.
    { what: '"%00" (encoded NUL)', input: '/a%00b', expected: refused('control_character') },
    { what: '"%0a" (encoded line feed)', input: '/a%0ab', expected: refused('control_character') },
    { what: '"%0D" (upper-case encoded carriage return)', input: '/a%0Db', expected: refused('control_character') },
    { what: '"%1f" (encoded unit separator)', input: '/a%1fb', expected: refused('control_character') },
    { what: '"%7f" (encoded DEL)', input: '/a%7fb', expected: refused('control_character') },
    { what: 'a raw NUL', input: '/a\u0000b', expected: refused('control_character') },
    { what: 'a raw line feed', input: '/a\nb', expected: refused('control_character') },
    { what: 'a raw carriage return', input: '/a\rb', expected: refused('control_character') },
    { what: 'a raw tab', input: '/a\tb', expected: refused('control_character') },
    { what: 'a raw escape character', input: '/a\u001bb', expected: refused('control_character') },
    { what: 'a raw DEL', input: '/a\u007fb', expected: refused('control_character') },
    // Other characters that never appear raw in a request target.
    { what: 'a raw space', input: '/a b', expected: refused('invalid_character') },
    { what: 'a raw non-ASCII letter', input: '/café', expected: refused('invalid_character') },
    { what: 'a raw fullwidth solidus', input: '/a\uff0fb', expected: refused('invalid_character') },
    { what: 'a raw C1 control character (U+0085)', input: '/a\u0085b', expected: refused('invalid_character') },
    { what: 'a raw "#" (a fragment never reaches the server)', input: '/a#b', expected: refused('invalid_character') },
    // Unicode that folds (NFKC) into separators or dot segments.
    { what: '"%ef%bc%8f" (fullwidth solidus, folds to "/")', input: '/static%ef%bc%8fadmin', expected: refused('ambiguous_unicode') },
    { what: 'fullwidth full stops as a ".." segment', input: '/static/%ef%bc%8e%ef%bc%8e/admin', expected: refused('ambiguous_unicode') },
    { what: 'a fullwidth full stop as a "." segment', input: '/static/%ef%bc%8e/admin', expected: refused('ambiguous_unicode') },
    { what: 'a fullwidth full stop next to a plain one', input: '/static/.%ef%bc%8e/admin', expected: refused('ambiguous_unicode') },
    { what: '"%e2%80%a5" (two dot leader, folds to "..")', input: '/static/%e2%80%a5/admin', expected: refused('ambiguous_unicode') },
    { what: '"%ef%bc%bc" (fullwidth reverse solidus, folds to "\\")', input: '/a%ef%bc%bcb', expected: refused('ambiguous_unicode') },
    { what: '"%ef%bc%9b" (fullwidth semicolon, folds to ";")', input: '/a%ef%bc%9bx=1', expected: refused('ambiguous_unicode') },
    { what: '"%ef%bc%85" (fullwidth percent, folds to "%")', input: '/a%ef%bc%852f', expected: refused('ambiguous_unicode') },
    { what: 'a fullwidth full stop inside a segment (would escape a {ws}.{collection} split)', input: '/stac/collections/ws-alice%ef%bc%8ecrops', expected: refused('ambiguous_unicode') },
    { what: 'a fullwidth hyphen-minus inside a segment (would escape {ws}-default)', input: '/ui/ws%ef%bc%8ddefault', expected: refused('ambiguous_unicode') },
    { what: 'a small full stop (U+FE52, folds to ".")', input: '/c/a%ef%b9%92b', expected: refused('ambiguous_unicode') },
    // Shape and size.
    { what: 'a path without a leading slash', input: 'admin', expected: refused('no_leading_slash') },
    { what: 'a relative dot path', input: '../admin', expected: refused('no_leading_slash') },
    { what: 'an absolute URL instead of a path', input: 'http://evil.example/admin', expected: refused('no_leading_slash') },
    { what: 'an encoded leading slash', input: '%2fadmin', expected: refused('no_leading_slash') },
    { what: 'the empty string', input: '', expected: refused('no_leading_slash') },
    { what: 'a path one character over MAX_PATH_LENGTH', input: `/${'a'.repeat(MAX_PATH_LENGTH)}`, expected: refused('path_too_long') },
  ])('$what', ({ input, expected }) => {
    expect(normalizePath(input)).toEqual(expected);
  });
});

describe('normalizePath accepts ordinary paths and returns the form rules match', () => {
  test.each<{ what: string; input: string; expected: NormalizedPath }>([
    { what: 'the root', input: '/', expected: accepted('/') },
    { what: 'a plain path as is', input: '/a/b', expected: accepted('/a/b') },
    { what: '"//" inside the path collapsed to "/"', input: '/a//b', expected: accepted('/a/b') },
    { what: 'a run of slashes collapsed to one', input: '/a////b', expected: accepted('/a/b') },
    { what: 'a leading "//" collapsed ("//admin" is "/admin")', input: '//admin', expected: accepted('/admin') },
    { what: 'a path of slashes only collapsed to the root', input: '///', expected: accepted('/') },
    { what: 'a trailing "//" collapsed to one trailing slash', input: '/a//', expected: accepted('/a/') },
    { what: '"//" collapsed after decoding too', input: '//a%41//b', expected: accepted('/aA/b') },
    { what: 'unreserved escapes decoded ("%41" → "A", "%7e" → "~")', input: '/A%41b%7e', expected: accepted('/AAb~') },
    { what: 'upper-case hex decoded', input: '/%7E%5F%2D', expected: accepted('/~_-') },
    { what: 'an encoded space decoded', input: '/a%20b', expected: accepted('/a b') },
    { what: 'an encoded dot inside a name decoded', input: '/file%2ejson', expected: accepted('/file.json') },
    { what: 'valid UTF-8 decoded', input: '/caf%c3%a9', expected: accepted('/café') },
    { what: 'upper-case UTF-8 escapes decoded', input: '/caf%C3%A9', expected: accepted('/café') },
    { what: 'a fullwidth letter (it folds to a letter, not to punctuation)', input: '/ws-%ef%bd%81', expected: accepted('/ws-ａ') },
    { what: 'a four-byte UTF-8 character decoded', input: '/%f0%9f%98%80', expected: accepted('/\u{1f600}') },
    { what: 'a "..." segment (not a dot segment)', input: '/...', expected: accepted('/...') },
    { what: 'an encoded "..." segment', input: '/%2e%2e%2e', expected: accepted('/...') },
    { what: 'a dot file', input: '/a/.hidden', expected: accepted('/a/.hidden') },
    { what: 'a name that starts with ".."', input: '/a/..b', expected: accepted('/a/..b') },
    { what: 'a name that ends with ".."', input: '/a/b..', expected: accepted('/a/b..') },
    { what: 'case kept (matching is case-sensitive)', input: '/STATIC/x', expected: accepted('/STATIC/x') },
    { what: 'the trailing slash kept', input: '/a/b/', expected: accepted('/a/b/') },
    { what: 'sub-delimiters and ":" / "@" kept', input: "/a:b@c!$&'()*+,=", expected: accepted("/a:b@c!$&'()*+,=") },
    { what: 'an encoded "?" decoded into the path', input: '/a%3fb', expected: accepted('/a?b') },
    { what: 'a path exactly MAX_PATH_LENGTH long', input: `/${'a'.repeat(MAX_PATH_LENGTH - 1)}`, expected: accepted(`/${'a'.repeat(MAX_PATH_LENGTH - 1)}`) },
  ])('$what', ({ input, expected }) => {
    expect(normalizePath(input)).toEqual(expected);
  });
});

describe('normalizeHost', () => {
  const host = (value: string): NormalizedHost => ({ ok: true, host: value });
  const bad: NormalizedHost = { ok: false, reason: 'bad_host' };

  test.each<{ what: string; input: string | undefined; expected: NormalizedHost }>([
    { what: 'a plain host name as is', input: 'kubeflow.example.com', expected: host('kubeflow.example.com') },
    { what: 'upper case lowered', input: 'Kubeflow.EXAMPLE.com', expected: host('kubeflow.example.com') },
    { what: 'the port dropped', input: 'example.com:8080', expected: host('example.com') },
    { what: 'a one-digit port dropped', input: 'example.com:1', expected: host('example.com') },
    { what: 'the trailing dot dropped', input: 'example.com.', expected: host('example.com') },
    { what: 'case, trailing dot and port together', input: 'Example.COM.:443', expected: host('example.com') },
    { what: 'a single-label host', input: 'localhost', expected: host('localhost') },
    { what: 'hyphens and digits inside labels', input: 'my-app-2.example.com', expected: host('my-app-2.example.com') },
    { what: 'an IPv4 address with port', input: '127.0.0.1:8080', expected: host('127.0.0.1') },
    { what: 'an IPv6 literal without port', input: '[::1]', expected: host('[::1]') },
    { what: 'an IPv6 literal with port', input: '[::1]:8443', expected: host('[::1]') },
    { what: 'an upper-case IPv6 literal lowered', input: '[2001:DB8::A]:80', expected: host('[2001:db8::a]') },
    { what: 'an IPv4-mapped IPv6 literal', input: '[::ffff:192.0.2.1]', expected: host('[::ffff:192.0.2.1]') },
    { what: 'a 63-character label', input: `${'a'.repeat(63)}.example.com`, expected: host(`${'a'.repeat(63)}.example.com`) },
  ])('accepts $what', ({ input, expected }) => {
    expect(normalizeHost(input)).toEqual(expected);
  });

  test.each<{ what: string; input: string | undefined }>([
    { what: 'an absent Host', input: undefined },
    { what: 'an empty Host', input: '' },
    { what: 'a lone trailing dot', input: '.' },
    { what: 'an empty port', input: 'example.com:' },
    { what: 'a non-numeric port', input: 'example.com:https' },
    { what: 'a negative port', input: 'example.com:-1' },
    { what: 'a six-digit port', input: 'example.com:123456' },
    { what: 'two ports', input: 'example.com:80:80' },
    { what: 'a port without a host', input: ':8080' },
    { what: 'an underscore in a label', input: 'my_app.example.com' },
    { what: 'a space inside', input: 'exa mple.com' },
    { what: 'a leading space', input: ' example.com' },
    { what: 'a trailing space', input: 'example.com ' },
    { what: 'a 64-character label', input: `${'a'.repeat(64)}.example.com` },
    { what: 'an empty label', input: 'example..com' },
    { what: 'a leading dot', input: '.example.com' },
    { what: 'two trailing dots', input: 'example.com..' },
    { what: 'a label starting with "-"', input: '-example.com' },
    { what: 'a label ending with "-"', input: 'example-.com' },
    { what: 'userinfo in the Host', input: 'user@example.com' },
    { what: 'a path in the Host', input: 'example.com/admin' },
    { what: 'a non-ASCII host name', input: 'exämple.com' },
    { what: 'a Host over 300 characters', input: `${'a.'.repeat(150)}com` },
    { what: 'a control character', input: 'example.com\r\nx' },
    { what: 'an unterminated IPv6 literal', input: '[::1' },
    { what: 'an empty IPv6 literal', input: '[]' },
    { what: 'an IPv6 literal with non-hex characters', input: '[::g]' },
    { what: 'an IPv6 literal with a zone id', input: '[fe80::1%25eth0]' },
    { what: 'an IPv6 literal with an empty port', input: '[::1]:' },
    { what: 'an IPv6 literal with a non-numeric port', input: '[::1]:http' },
    { what: 'an IPv6 literal followed by text', input: '[::1]evil.com' },
  ])('refuses $what', ({ input }) => {
    expect(normalizeHost(input)).toEqual(bad);
  });
});
