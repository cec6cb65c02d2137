/**
 * Session cookies on the wire (src/session/cookies.ts): chunking of large seals, reading them back from
 * a Cookie header (";" and Envoy's "," joins), refusing chunks that do not belong together, and the
 * Set-Cookie attributes of DESIGN.md §4 (HttpOnly, SameSite=Lax, Path=/, Secure and Domain as configured).
 */
import { hash } from 'node:crypto';
import {
  CHUNK_SIZE,
  MAX_CHUNKS,
  chunkSessionValue,
  clearCookieHeader,
  sessionSetCookies,
  setCookieHeader,
  type SessionCookie,
} from '../../src/session/cookies.js';
import { readSessionCookie } from '../../src/session/cookie-header.js';

const NAME = 'oidc_authz';
const SEAL_ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_*';

/** A deterministic seal-shaped string of `length` characters; different seeds give different strings. */
function sealLike(length: number, seed: number): string {
  let state = seed;
  let out = 'Fe26.2*';
  while (out.length < length - 2) {
    state = (state * 1103515245 + 12345) % 2147483648;
    out += SEAL_ALPHABET[state % SEAL_ALPHABET.length];
  }
  return `${out}~2`.slice(0, length);
}

/** The tag as documented: the first 12 characters of the base64url SHA-256 of the whole seal. */
const tagOf = (value: string): string => hash('sha256', value, 'base64url').slice(0, 12);

const header = (cookies: ReadonlyArray<{ name: string; value: string }>, separator = '; '): string =>
  cookies.map((c) => `${c.name}=${c.value}`).join(separator);

const present = (value: string, names: string[]): SessionCookie => ({ kind: 'present', value, names });
const invalid = (reason: 'chunks_mismatch' | 'chunks_incomplete' | 'duplicate', names: string[]): SessionCookie => ({ kind: 'invalid', reason, names });

const SMALL = sealLike(200, 1);
const THREE = sealLike(3 * CHUNK_SIZE - 100, 2); // three chunks, the last one shorter
const OTHER_THREE = sealLike(3 * CHUNK_SIZE - 100, 3); // another session of the same size
const TWO = sealLike(CHUNK_SIZE + 500, 4);

describe('chunkSessionValue', () => {
  test('the limits are the documented ones', () => {
    expect(CHUNK_SIZE).toBe(3800);
    expect(MAX_CHUNKS).toBe(12);
  });

  test.each<{ what: string; length: number; names: string[] }>([
    { what: 'an empty value is one cookie', length: 0, names: [NAME] },
    { what: 'a short seal is one cookie', length: 200, names: [NAME] },
    { what: 'exactly CHUNK_SIZE characters is still one cookie', length: CHUNK_SIZE, names: [NAME] },
    { what: 'one character more needs two chunks', length: CHUNK_SIZE + 1, names: [`${NAME}.0`, `${NAME}.1`] },
    { what: 'three full chunks', length: 3 * CHUNK_SIZE, names: [`${NAME}.0`, `${NAME}.1`, `${NAME}.2`] },
    { what: 'a little over three chunks needs four', length: 3 * CHUNK_SIZE + 1, names: [0, 1, 2, 3].map((i) => `${NAME}.${i}`) },
    { what: 'MAX_CHUNKS full chunks', length: MAX_CHUNKS * CHUNK_SIZE, names: Array.from({ length: MAX_CHUNKS }, (_, i) => `${NAME}.${i}`) },
  ])('$what', ({ length, names }) => {
    const sealed = sealLike(length, 7);
    const cookies = chunkSessionValue(NAME, sealed);
    expect(cookies.map((c) => c.name)).toEqual(names);
    if (names.length === 1) {
      expect(cookies[0]!.value).toBe(sealed);
      return;
    }
    const prefix = `${tagOf(sealed)}~${names.length}~`;
    cookies.forEach((c, i) => {
      expect(c.value).toBe(`${prefix}${sealed.slice(i * CHUNK_SIZE, (i + 1) * CHUNK_SIZE)}`);
    });
    expect(cookies.map((c) => c.value.slice(prefix.length)).join('')).toBe(sealed);
  });

  test.each<{ what: string; length: number }>([
    { what: 'one character more than MAX_CHUNKS chunks hold', length: MAX_CHUNKS * CHUNK_SIZE + 1 },
    { what: 'a seal of 100 000 characters', length: 100_000 },
  ])('$what is a RangeError', ({ length }) => {
    const sealed = sealLike(length, 8);
    expect(() => chunkSessionValue(NAME, sealed)).toThrow(RangeError);
    expect(() => chunkSessionValue(NAME, sealed)).toThrow(`session of ${length} characters needs more than ${MAX_CHUNKS} cookies`);
  });

  test('the largest chunk with every attribute stays within a browser\'s 4096 bytes per cookie', () => {
    const chunks = chunkSessionValue(NAME, sealLike(MAX_CHUNKS * CHUNK_SIZE, 9));
    const longest = setCookieHeader(chunks[MAX_CHUNKS - 1]!.name, chunks[MAX_CHUNKS - 1]!.value, 1_209_600, { secure: true, domain: 'kubeflow.example.com' });
    expect(Buffer.byteLength(longest)).toBeLessThanOrEqual(4096);
  });
});

describe('readSessionCookie reads what chunkSessionValue wrote', () => {
  const three = chunkSessionValue(NAME, THREE);
  const threeNames = three.map((c) => c.name);

  test.each<{ what: string; cookieHeader: string | undefined; expected: SessionCookie }>([
    { what: 'no Cookie header', cookieHeader: undefined, expected: { kind: 'none' } },
    { what: 'an empty Cookie header', cookieHeader: '', expected: { kind: 'none' } },
    { what: 'only other cookies', cookieHeader: 'a=1; b=2', expected: { kind: 'none' } },
    { what: 'a single cookie alone', cookieHeader: `${NAME}=${SMALL}`, expected: present(SMALL, [NAME]) },
    { what: 'a single cookie between others', cookieHeader: `a=1; ${NAME}=${SMALL}; b=2`, expected: present(SMALL, [NAME]) },
    // After ",": perhaps inside another cookie's value (a script's doing), so never read (cookie-header.ts).
    { what: 'a single cookie after a ","-joined line is not read', cookieHeader: `a=1,${NAME}=${SMALL}`, expected: { kind: 'none' } },
    { what: 'a single cookie after ", " is not read', cookieHeader: `a=1, ${NAME}=${SMALL}; b=2`, expected: { kind: 'none' } },
    { what: 'a single cookie after ";" without a space', cookieHeader: `a=1;${NAME}=${SMALL}`, expected: present(SMALL, [NAME]) },
    { what: 'a single cookie after a tab', cookieHeader: `a=1;\t${NAME}=${SMALL}`, expected: present(SMALL, [NAME]) },
    { what: 'a single cookie with spaces around "="', cookieHeader: `${NAME} = ${SMALL} ; b=2`, expected: present(SMALL, [NAME]) },
    { what: 'an empty single cookie (the seal check refuses it later)', cookieHeader: `${NAME}=; b=2`, expected: present('', [NAME]) },
    { what: 'chunks joined with "; "', cookieHeader: header(three), expected: present(THREE, threeNames) },
    { what: 'chunks joined with "," (one per Cookie line, joined by Envoy): only the first is read', cookieHeader: header(three, ','), expected: invalid('chunks_incomplete', [threeNames[0]!]) },
    { what: 'chunks joined with ", ": only the first is read', cookieHeader: header(three, ', '), expected: invalid('chunks_incomplete', [threeNames[0]!]) },
    {
      what: 'chunks spread over two Cookie lines joined by Envoy, with other cookies around',
      cookieHeader: `a=1; ${header(three.slice(0, 2))}; b=2,c=3; ${header(three.slice(2))}; d=4`,
      expected: present(THREE, threeNames),
    },
    { what: 'chunks in reverse order', cookieHeader: header([...three].reverse()), expected: present(THREE, [...threeNames].reverse()) },
    {
      what: 'cookies whose names only start with the session name are ignored',
      cookieHeader: `${NAME}X=1; ${NAME}.x=2; ${NAME}_login_abc=3; ${NAME}.123=4; ${NAME}.0x=5; ${NAME}.=6; my_${NAME}=7; ${NAME}=${SMALL}`,
      expected: present(SMALL, [NAME]),
    },
    {
      what: 'only look-alike names: no session',
      cookieHeader: `${NAME}X=1; ${NAME}.x=2; ${NAME}_login_abc=3; x${NAME}=4; a=${NAME}=5`,
      expected: { kind: 'none' },
    },
  ])('$what', ({ cookieHeader, expected }) => {
    expect(readSessionCookie(cookieHeader, NAME)).toEqual(expected);
  });

  test('a two-chunk seal round-trips', () => {
    const two = chunkSessionValue(NAME, TWO);
    expect(two).toHaveLength(2);
    expect(readSessionCookie(header(two), NAME)).toEqual(present(TWO, [`${NAME}.0`, `${NAME}.1`]));
  });

  test('MAX_CHUNKS chunks round-trip', () => {
    const sealed = sealLike(MAX_CHUNKS * CHUNK_SIZE, 10);
    const chunks = chunkSessionValue(NAME, sealed);
    expect(readSessionCookie(header(chunks), NAME)).toEqual(present(sealed, chunks.map((c) => c.name)));
  });
});

describe('readSessionCookie refuses chunks that do not belong together', () => {
  const three = chunkSessionValue(NAME, THREE);
  const other = chunkSessionValue(NAME, OTHER_THREE);
  const two = chunkSessionValue(NAME, TWO);
  const [c0, c1, c2] = three as [{ name: string; value: string }, { name: string; value: string }, { name: string; value: string }];
  const n = (...indexes: number[]) => indexes.map((i) => `${NAME}.${i}`);
  /** `value` with the chunk's part changed in one character and its tag and count left alone. */
  const tamperPart = (value: string) => {
    const at = value.length - 10;
    return `${value.slice(0, at)}${value[at] === 'A' ? 'B' : 'A'}${value.slice(at + 1)}`;
  };
  const withCount = (value: string, count: string) => {
    const [tag, , ...rest] = value.split('~');
    return [tag, count, ...rest].join('~');
  };

  test.each<{ what: string; cookies: Array<{ name: string; value: string }>; expected: SessionCookie }>([
    { what: 'a missing middle chunk', cookies: [c0, c2], expected: invalid('chunks_incomplete', n(0, 2)) },
    { what: 'a missing last chunk', cookies: [c0, c1], expected: invalid('chunks_incomplete', n(0, 1)) },
    { what: 'a missing first chunk', cookies: [c1, c2], expected: invalid('chunks_incomplete', n(1, 2)) },
    { what: 'an extra chunk beyond the count', cookies: [c0, c1, c2, { name: `${NAME}.3`, value: c2.value }], expected: invalid('chunks_incomplete', n(0, 1, 2, 3)) },
    { what: 'a gap: .0 and .2 of a two-chunk session', cookies: [two[0]!, { name: `${NAME}.2`, value: two[1]!.value }], expected: invalid('chunks_incomplete', n(0, 2)) },
    { what: 'values of .0 and .1 swapped', cookies: [{ name: c0.name, value: c1.value }, { name: c1.name, value: c0.value }, c2], expected: invalid('chunks_mismatch', n(0, 1, 2)) },
    { what: 'values of .1 and .2 swapped', cookies: [c0, { name: c1.name, value: c2.value }, { name: c2.name, value: c1.value }], expected: invalid('chunks_mismatch', n(0, 1, 2)) },
    { what: 'chunk .1 from another session of the same size', cookies: [c0, other[1]!, c2], expected: invalid('chunks_mismatch', n(0, 1, 2)) },
    { what: 'chunk .0 from another session of the same size', cookies: [other[0]!, c1, c2], expected: invalid('chunks_mismatch', n(0, 1, 2)) },
    { what: 'the first two chunks of a three-chunk session with the last of a two-chunk one', cookies: [c0, two[1]!, c2], expected: invalid('chunks_mismatch', n(0, 1, 2)) },
    { what: 'a two-chunk session\'s .0 with a three-chunk session\'s .1 and .2', cookies: [two[0]!, c1, c2], expected: invalid('chunks_incomplete', n(0, 1, 2)) },
    { what: 'a tampered part whose tag and count still match', cookies: [c0, { name: c1.name, value: tamperPart(c1.value) }, c2], expected: invalid('chunks_mismatch', n(0, 1, 2)) },
    { what: 'a tampered first part', cookies: [{ name: c0.name, value: tamperPart(c0.value) }, c1, c2], expected: invalid('chunks_mismatch', n(0, 1, 2)) },
    { what: 'a different tag on one chunk', cookies: [c0, { name: c1.name, value: `AAAAAAAAAAAA${c1.value.slice(12)}` }, c2], expected: invalid('chunks_mismatch', n(0, 1, 2)) },
    { what: 'the same wrong tag on every chunk', cookies: three.map((c) => ({ name: c.name, value: `AAAAAAAAAAAA${c.value.slice(12)}` })), expected: invalid('chunks_mismatch', n(0, 1, 2)) },
    { what: 'a later chunk claiming another count', cookies: [two[0]!, { name: two[1]!.name, value: withCount(two[1]!.value, '3') }], expected: invalid('chunks_mismatch', n(0, 1)) },
    { what: 'count "x"', cookies: three.map((c) => ({ name: c.name, value: withCount(c.value, 'x') })), expected: invalid('chunks_incomplete', n(0, 1, 2)) },
    { what: 'an empty count', cookies: three.map((c) => ({ name: c.name, value: withCount(c.value, '') })), expected: invalid('chunks_incomplete', n(0, 1, 2)) },
    { what: 'count "1"', cookies: [{ name: `${NAME}.0`, value: `${tagOf(SMALL)}~1~${SMALL}` }], expected: invalid('chunks_incomplete', n(0)) },
    { what: 'count "0"', cookies: three.map((c) => ({ name: c.name, value: withCount(c.value, '0') })), expected: invalid('chunks_incomplete', n(0, 1, 2)) },
    { what: 'count "-3"', cookies: three.map((c) => ({ name: c.name, value: withCount(c.value, '-3') })), expected: invalid('chunks_incomplete', n(0, 1, 2)) },
    { what: 'count "2.5"', cookies: two.map((c) => ({ name: c.name, value: withCount(c.value, '2.5') })), expected: invalid('chunks_incomplete', n(0, 1)) },
    { what: 'count "Infinity"', cookies: three.map((c) => ({ name: c.name, value: withCount(c.value, 'Infinity') })), expected: invalid('chunks_incomplete', n(0, 1, 2)) },
    { what: 'count "13" (above MAX_CHUNKS)', cookies: three.map((c) => ({ name: c.name, value: withCount(c.value, '13') })), expected: invalid('chunks_incomplete', n(0, 1, 2)) },
    { what: 'chunks without any "~"', cookies: [{ name: `${NAME}.0`, value: 'abc' }, { name: `${NAME}.1`, value: 'def' }], expected: invalid('chunks_incomplete', n(0, 1)) },
    { what: 'chunks with one "~" only', cookies: [{ name: `${NAME}.0`, value: 'tag~abc' }, { name: `${NAME}.1`, value: 'tag~def' }], expected: invalid('chunks_incomplete', n(0, 1)) },
    { what: 'an empty .0', cookies: [{ name: `${NAME}.0`, value: '' }, c1], expected: invalid('chunks_incomplete', n(0, 1)) },
    { what: 'the single cookie and chunks together', cookies: [{ name: NAME, value: SMALL }, ...three], expected: invalid('chunks_mismatch', [NAME, ...n(0, 1, 2)]) },
    { what: 'chunks, then the single cookie', cookies: [...three, { name: NAME, value: SMALL }], expected: invalid('chunks_mismatch', [...n(0, 1, 2), NAME]) },
    { what: 'the single cookie with one stray chunk', cookies: [{ name: NAME, value: SMALL }, c1], expected: invalid('chunks_mismatch', [NAME, ...n(1)]) },
  ])('$what', ({ cookies, expected }) => {
    expect(readSessionCookie(`a=1; ${header(cookies)}; b=2`, NAME)).toEqual(expected);
  });
});

describe('Set-Cookie headers', () => {
  const secure = { secure: true, domain: 'example.com' };
  const plain = { secure: false };
  const cleared = (name: string, attrs: string) => `${name}=; Max-Age=0${attrs.includes('Domain') ? '; Domain=example.com' : ''}; Path=/; Expires=Thu, 01 Jan 1970 00:00:00 GMT; HttpOnly${attrs.includes('Secure') ? '; Secure' : ''}; SameSite=Lax`;

  test.each<{ what: string; sealed: string; maxAge: number; attributes: { secure: boolean; domain?: string }; previous: string[]; expected: string[] }>([
    {
      what: 'a small session: one cookie, HttpOnly, SameSite=Lax, Path=/, Secure and Domain as configured',
      sealed: SMALL, maxAge: 3600, attributes: secure, previous: [],
      expected: [`${NAME}=${SMALL}; Max-Age=3600; Domain=example.com; Path=/; HttpOnly; Secure; SameSite=Lax`],
    },
    {
      what: 'plain-HTTP development: no Secure, no Domain',
      sealed: SMALL, maxAge: 3600, attributes: plain, previous: [],
      expected: [`${NAME}=${SMALL}; Max-Age=3600; Path=/; HttpOnly; SameSite=Lax`],
    },
    {
      what: 'a fractional Max-Age is rounded down',
      sealed: SMALL, maxAge: 59.9, attributes: plain, previous: [],
      expected: [`${NAME}=${SMALL}; Max-Age=59; Path=/; HttpOnly; SameSite=Lax`],
    },
    {
      what: 'a negative Max-Age becomes 0',
      sealed: SMALL, maxAge: -5, attributes: plain, previous: [],
      expected: [`${NAME}=${SMALL}; Max-Age=0; Path=/; HttpOnly; SameSite=Lax`],
    },
    {
      what: 'the same cookie names as before: nothing to expire',
      sealed: SMALL, maxAge: 60, attributes: secure, previous: [NAME],
      expected: [`${NAME}=${SMALL}; Max-Age=60; Domain=example.com; Path=/; HttpOnly; Secure; SameSite=Lax`],
    },
    {
      what: 'a small session after a chunked one expires every old chunk',
      sealed: SMALL, maxAge: 60, attributes: secure, previous: [`${NAME}.0`, `${NAME}.1`, `${NAME}.2`],
      expected: [
        `${NAME}=${SMALL}; Max-Age=60; Domain=example.com; Path=/; HttpOnly; Secure; SameSite=Lax`,
        cleared(`${NAME}.0`, 'Domain Secure'),
        cleared(`${NAME}.1`, 'Domain Secure'),
        cleared(`${NAME}.2`, 'Domain Secure'),
      ],
    },
    {
      what: 'a chunked session after a single one expires the single cookie',
      sealed: TWO, maxAge: 60, attributes: plain, previous: [NAME],
      expected: [
        ...chunkSessionValue(NAME, TWO).map((c) => `${c.name}=${c.value}; Max-Age=60; Path=/; HttpOnly; SameSite=Lax`),
        cleared(NAME, ''),
      ],
    },
    {
      what: 'fewer chunks than before: only the chunks not rewritten are expired',
      sealed: TWO, maxAge: 60, attributes: plain, previous: [`${NAME}.0`, `${NAME}.1`, `${NAME}.2`, `${NAME}.3`],
      expected: [
        ...chunkSessionValue(NAME, TWO).map((c) => `${c.name}=${c.value}; Max-Age=60; Path=/; HttpOnly; SameSite=Lax`),
        cleared(`${NAME}.2`, ''),
        cleared(`${NAME}.3`, ''),
      ],
    },
    {
      what: 'more chunks than before: nothing to expire',
      sealed: THREE, maxAge: 60, attributes: plain, previous: [`${NAME}.0`, `${NAME}.1`],
      expected: chunkSessionValue(NAME, THREE).map((c) => `${c.name}=${c.value}; Max-Age=60; Path=/; HttpOnly; SameSite=Lax`),
    },
  ])('$what', ({ sealed, maxAge, attributes, previous, expected }) => {
    expect(sessionSetCookies(NAME, sealed, maxAge, attributes, previous)).toEqual(expected);
  });

  test('the cookies sessionSetCookies writes read back as the same seal', () => {
    const setCookies = sessionSetCookies(NAME, THREE, 600, secure);
    const cookieHeader = setCookies.map((c) => c.split(';', 1)[0]).join('; ');
    expect(readSessionCookie(cookieHeader, NAME)).toEqual(present(THREE, [`${NAME}.0`, `${NAME}.1`, `${NAME}.2`]));
  });

  test.each<{ what: string; name: string; attributes: { secure: boolean; domain?: string }; path?: string; expected: string }>([
    { what: 'with Secure and Domain', name: NAME, attributes: secure, expected: cleared(NAME, 'Domain Secure') },
    { what: 'without Secure and Domain', name: `${NAME}.4`, attributes: plain, expected: cleared(`${NAME}.4`, '') },
    {
      what: 'on another path (the login-transaction cookie)',
      name: `${NAME}_login_abc`, attributes: plain, path: '/oauth2/callback',
      expected: `${NAME}_login_abc=; Max-Age=0; Path=/oauth2/callback; Expires=Thu, 01 Jan 1970 00:00:00 GMT; HttpOnly; SameSite=Lax`,
    },
  ])('clearCookieHeader $what', ({ name, attributes, path, expected }) => {
    expect(clearCookieHeader(name, attributes, path)).toBe(expected);
  });
});
