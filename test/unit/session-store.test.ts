/**
 * The session store (src/session/store.ts) with real iron sealing and a clock the test sets: Max-Age is
 * what is left of the absolute session age (DESIGN.md §4), large sessions travel in several cookies and
 * read back whole, and only a well-formed session sealed with a known secret opens.
 */
import { CHUNK_SIZE } from '../../src/session/cookies.js';
import { createSealer } from '../../src/session/seal.js';
import { secretsFromLines } from '../../src/session/secrets.js';
import { CookieSessionStore, type SessionData } from '../../src/session/store.js';

const A = 'first-secret-aaaaaaaaaaaaaaaaaaaaaaaaaaaa';
const B = 'second-secret-bbbbbbbbbbbbbbbbbbbbbbbbbbb';
const NAME = 'oidc_authz';
const HOUR = 3600_000;
const MAX_AGE_MS = 12 * HOUR;
const T0 = Date.UTC(2026, 10, 23, 12, 0, 0);

/** An ID-token-shaped string of about `length` characters. */
const idTokenOf = (length: number): string => `eyJhbGciOiJSUzI1NiJ9.${'eyJzdWIiOiJ1c2VyIn0'.repeat(Math.ceil(length / 19)).slice(0, length - 40)}.c2lnbmF0dXJlc2lnbmF0dXJl`;

const session: SessionData = { idToken: idTokenOf(900), addedClaims: {}, refreshToken: 'refresh-1', createdAt: T0, expiresAt: T0 + HOUR };
const large: SessionData = { ...session, idToken: idTokenOf(10_000) };

let now = T0;
const clock = () => now;
function storeWith(secrets: string[], attributes: { secure: boolean; domain?: string } = { secure: true, domain: 'example.com' }): CookieSessionStore {
  return new CookieSessionStore(createSealer(secretsFromLines(secrets)), { names: { base: NAME, sessionPrefix: '' }, attributes, maxAgeMs: MAX_AGE_MS }, clock);
}
const store = storeWith([A]);

/** What a browser sends back: the name=value pairs of the Set-Cookie headers that were not expired. */
const cookieHeaderFrom = (setCookies: readonly string[]): string =>
  setCookies.filter((c) => !/Max-Age=0/.test(c)).map((c) => c.split(';', 1)[0]).join('; ');
const maxAgeOf = (setCookie: string): number => Number(/; Max-Age=(\d+)/.exec(setCookie)?.[1]);

beforeEach(() => {
  now = T0;
});

describe('CookieSessionStore.issue', () => {
  test.each<{ what: string; at: number; maxAge: number }>([
    { what: 'at login: the whole maximum age', at: T0, maxAge: 12 * 3600 },
    { what: 'two hours in: ten hours left', at: T0 + 2 * HOUR, maxAge: 10 * 3600 },
    { what: 'a refresh 29.5 s before the end: 29 s (rounded down)', at: T0 + MAX_AGE_MS - 29_500, maxAge: 29 },
    { what: 'one and a half seconds before the end: 1 s', at: T0 + MAX_AGE_MS - 1_500, maxAge: 1 },
    { what: 'at the end: never 0, which iron would read as "never expires"', at: T0 + MAX_AGE_MS, maxAge: 1 },
    { what: 'after the end: still 1 s, never 0 or negative', at: T0 + MAX_AGE_MS + HOUR, maxAge: 1 },
  ])('Max-Age $what', async ({ at, maxAge }) => {
    now = at;
    const issued = await store.issue(session);
    expect(issued.setCookies).toHaveLength(1);
    expect(maxAgeOf(issued.setCookies[0]!)).toBe(maxAge);
  });

  test('the seal expires with the cookie: its expiry is never missing (ttl ≥ 1 s)', async () => {
    now = T0 + MAX_AGE_MS + HOUR;
    const issued = await store.issue(session);
    const expiry = issued.sealed.slice(0, -2).split('*')[5];
    expect(expiry).toMatch(/^[0-9]+$/);
  });

  test.each<{ what: string; attributes: { secure: boolean; domain?: string }; expected: (name: string, value: string) => string }>([
    {
      what: 'Secure and Domain as configured',
      attributes: { secure: true, domain: 'example.com' },
      expected: (name, value) => `${name}=${value}; Max-Age=36000; Domain=example.com; Path=/; HttpOnly; Secure; SameSite=Lax`,
    },
    {
      what: 'plain-HTTP development without a Domain',
      attributes: { secure: false },
      expected: (name, value) => `${name}=${value}; Max-Age=36000; Path=/; HttpOnly; SameSite=Lax`,
    },
  ])('Set-Cookie attributes: $what', async ({ attributes, expected }) => {
    now = T0 + 2 * HOUR;
    const issued = await storeWith([A], attributes).issue(session);
    expect(issued.chunks).toBe(1);
    expect(issued.setCookies).toEqual([expected(NAME, issued.sealed)]);
  });

  test('a large session (10 KB ID token) needs three or more chunks, every one with the same attributes', async () => {
    now = T0 + 2 * HOUR;
    const issued = await store.issue(large);
    expect(issued.sealed.length).toBeGreaterThan(2 * CHUNK_SIZE);
    expect(issued.chunks).toBeGreaterThanOrEqual(3);
    expect(issued.chunks).toBe(Math.ceil(issued.sealed.length / CHUNK_SIZE));
    expect(issued.setCookies).toHaveLength(issued.chunks);
    issued.setCookies.forEach((cookie, i) => {
      expect(cookie).toMatch(new RegExp(`^${NAME}\\.${i}=[^;]+; Max-Age=36000; Domain=example\\.com; Path=/; HttpOnly; Secure; SameSite=Lax$`));
    });
  });

  test.each<{ what: string; data: SessionData; previous: string[]; expired: string[] }>([
    { what: 'a small session after a chunked one expires the old chunks', data: session, previous: [`${NAME}.0`, `${NAME}.1`, `${NAME}.2`], expired: [`${NAME}.0`, `${NAME}.1`, `${NAME}.2`] },
    { what: 'a chunked session after a small one expires the single cookie', data: large, previous: [NAME], expired: [NAME] },
    { what: 'the same cookie name as before: nothing expired', data: session, previous: [NAME], expired: [] },
  ])('$what', async ({ data, previous, expired }) => {
    const issued = await store.issue(data, previous);
    const cleared = issued.setCookies.filter((c) => /Max-Age=0/.test(c));
    expect(cleared.map((c) => c.split('=', 1)[0])).toEqual(expired);
    expect(issued.setCookies).toHaveLength(issued.chunks + expired.length);
  });
});

describe('CookieSessionStore.read and open: the cookies of issue come back as the session', () => {
  test.each<{ what: string; data: SessionData }>([
    { what: 'a small session', data: session },
    { what: 'a session without a refresh token', data: { ...session, refreshToken: null } },
    { what: 'a large session (10 KB ID token, 3+ chunks)', data: large },
  ])('$what', async ({ data }) => {
    const issued = await store.issue(data);
    const read = store.read(cookieHeaderFrom(issued.setCookies));
    const names = issued.chunks === 1 ? [NAME] : Array.from({ length: issued.chunks }, (_, i) => `${NAME}.${i}`);
    expect(read).toEqual({ kind: 'present', value: issued.sealed, names });
    await expect(store.open(issued.sealed)).resolves.toEqual(data);
  });

  test('a large session read from cookies in reverse order, among others, with Envoy\'s "," join', async () => {
    const issued = await store.issue(large);
    expect(issued.chunks).toBeGreaterThanOrEqual(3);
    const pairs = issued.setCookies.map((c) => c.split(';', 1)[0]!).reverse();
    const read = store.read(`a=1; ${pairs.slice(0, 2).join('; ')},b=2; ${pairs.slice(2).join('; ')}`);
    if (read.kind !== 'present') throw new Error(`expected a session, got ${read.kind}`);
    expect(read.value).toBe(issued.sealed);
    await expect(store.open(read.value)).resolves.toEqual(large);
  });

  test('open returns exactly the four session fields', async () => {
    const sealed = await createSealer(secretsFromLines([A])).seal({ ...session, isAdmin: true, groups: ['admins'] }, 3600);
    await expect(store.open(sealed)).resolves.toEqual(session);
  });

  test.each<{ what: string; header: string | undefined; kind: 'none' | 'invalid' }>([
    { what: 'no Cookie header', header: undefined, kind: 'none' },
    { what: 'other cookies only', header: 'a=1; b=2', kind: 'none' },
    { what: 'a lone chunk', header: `${NAME}.1=tag~2~abc`, kind: 'invalid' },
  ])('read: $what', ({ header, kind }) => {
    expect(store.read(header).kind).toBe(kind);
  });
});

describe('CookieSessionStore.open refuses', () => {
  test('a session sealed with another secret', async () => {
    const issued = await storeWith([B]).issue(session);
    await expect(storeWith([B]).open(issued.sealed)).resolves.toEqual(session);
    await expect(store.open(issued.sealed)).resolves.toBeNull();
  });

  test('a session sealed before rotation opens after it, and not once its secret is dropped', async () => {
    const issued = await storeWith([A]).issue(session);
    await expect(storeWith([B, A]).open(issued.sealed)).resolves.toEqual(session);
    await expect(storeWith([B]).open(issued.sealed)).resolves.toBeNull();
  });

  test.each<{ what: string; mangle: (s: string) => string }>([
    { what: 'a tampered seal', mangle: (s) => `${s.slice(0, 100)}${s[100] === 'A' ? 'B' : 'A'}${s.slice(101)}` },
    { what: 'a truncated seal', mangle: (s) => s.slice(0, -10) },
    { what: 'an empty value', mangle: () => '' },
    { what: 'garbage', mangle: () => 'not-a-session' },
  ])('$what', async ({ mangle }) => {
    const issued = await store.issue(session);
    await expect(store.open(mangle(issued.sealed))).resolves.toBeNull();
  });

  test.each<{ what: string; data: Record<string, unknown> }>([
    { what: 'no idToken', data: { refreshToken: null, createdAt: T0, expiresAt: T0 + HOUR } },
    { what: 'a numeric idToken', data: { idToken: 42, refreshToken: null, createdAt: T0, expiresAt: T0 + HOUR } },
    { what: 'an idToken of null', data: { idToken: null, refreshToken: null, createdAt: T0, expiresAt: T0 + HOUR } },
    { what: 'a numeric refresh token', data: { idToken: 'x', refreshToken: 5, createdAt: T0, expiresAt: T0 + HOUR } },
    { what: 'no refresh token field at all', data: { idToken: 'x', createdAt: T0, expiresAt: T0 + HOUR } },
    { what: 'an object as refresh token', data: { idToken: 'x', refreshToken: { t: 'r' }, createdAt: T0, expiresAt: T0 + HOUR } },
    { what: 'a string createdAt', data: { idToken: 'x', refreshToken: null, createdAt: 'yesterday', expiresAt: T0 + HOUR } },
    { what: 'no createdAt', data: { idToken: 'x', refreshToken: null, expiresAt: T0 + HOUR } },
    { what: 'a string expiresAt', data: { idToken: 'x', refreshToken: null, createdAt: T0, expiresAt: String(T0 + HOUR) } },
    { what: 'an expiresAt of null', data: { idToken: 'x', refreshToken: null, createdAt: T0, expiresAt: null } },
    { what: 'unrelated data', data: { state: 'abc', nonce: 'n', verifier: 'v' } },
  ])('a well-sealed value with $what', async ({ data }) => {
    const sealed = await createSealer(secretsFromLines([A])).seal(data, 3600);
    await expect(store.open(sealed)).resolves.toBeNull();
  });

  test('a seal whose own expiry has passed (sealed with a negative ttl, no clock moved)', async () => {
    const sealed = await createSealer(secretsFromLines([A])).seal({ ...session }, -3600);
    await expect(store.open(sealed)).resolves.toBeNull();
  });
});

describe('CookieSessionStore.clear and endOf', () => {
  test.each<{ what: string; names: string[]; attributes: { secure: boolean; domain?: string }; expected: string[] }>([
    { what: 'no names: nothing to clear', names: [], attributes: { secure: true, domain: 'example.com' }, expected: [] },
    {
      what: 'the single cookie, with Secure and Domain',
      names: [NAME], attributes: { secure: true, domain: 'example.com' },
      expected: [`${NAME}=; Max-Age=0; Domain=example.com; Path=/; Expires=Thu, 01 Jan 1970 00:00:00 GMT; HttpOnly; Secure; SameSite=Lax`],
    },
    {
      what: 'every chunk, plain HTTP',
      names: [`${NAME}.0`, `${NAME}.1`, `${NAME}.2`], attributes: { secure: false },
      expected: [0, 1, 2].map((i) => `${NAME}.${i}=; Max-Age=0; Path=/; Expires=Thu, 01 Jan 1970 00:00:00 GMT; HttpOnly; SameSite=Lax`),
    },
  ])('clear: $what', ({ names, attributes, expected }) => {
    expect(storeWith([A], attributes).clear(names)).toEqual(expected);
  });

  test('clear of the names read from issued cookies expires every one of them', async () => {
    const issued = await store.issue(large);
    const read = store.read(cookieHeaderFrom(issued.setCookies));
    if (read.kind !== 'present') throw new Error(`expected a session, got ${read.kind}`);
    const cleared = store.clear(read.names);
    expect(cleared.map((c) => c.split('=', 1)[0])).toEqual(read.names);
    expect(cleared.every((c) => /^[^=]+=; Max-Age=0;/.test(c))).toBe(true);
  });

  test('endOf is createdAt plus the maximum age, whatever the clock says', () => {
    now = T0 + 5 * HOUR;
    expect(store.endOf(T0)).toBe(T0 + MAX_AGE_MS);
    expect(store.endOf(T0 + HOUR)).toBe(T0 + HOUR + MAX_AGE_MS);
  });
});

describe('CookieSessionStore.clearAlongPath (several session cookies: one may have been planted for a sub-path)', () => {
  const pathsOf = (headers: readonly string[]) => headers.map((h) => /; Path=([^;]*)/.exec(h)?.[1]);
  const plain = storeWith([A], { secure: true });

  test.each<{ path: string; paths: string[] }>([
    { path: '/', paths: ['/'] },
    { path: '/x', paths: ['/', '/x'] },
    { path: '/notebook/mallory-ns/nb/', paths: ['/', '/notebook', '/notebook/', '/notebook/mallory-ns', '/notebook/mallory-ns/', '/notebook/mallory-ns/nb', '/notebook/mallory-ns/nb/'] },
    { path: '/a/b', paths: ['/', '/a', '/a/', '/a/b'] },
  ])('$path: every path a cookie for that request could carry, host-only', ({ path, paths }) => {
    const headers = plain.clearAlongPath([NAME], path);
    expect(pathsOf(headers)).toEqual(paths);
    expect(headers.every((h) => !h.includes('Domain=') && h.includes('Max-Age=0') && h.includes('Secure'))).toBe(true);
  });

  test('with a Domain configured, "/" is cleared with it and host-only (a script plants host-only cookies)', () => {
    const headers = store.clearAlongPath([NAME], '/x');
    expect(headers.map((h) => [/; Path=([^;]*)/.exec(h)?.[1], h.includes('Domain=example.com')])).toEqual([['/', true], ['/', false], ['/x', false]]);
  });

  test('at most 48 Set-Cookie lines, whatever the depth and the names (Envoy passes 100 headers of an answer)', () => {
    const deep = `/${Array.from({ length: 80 }, (_, i) => `s${i}`).join('/')}`;
    const names = [NAME, ...Array.from({ length: 12 }, (_, i) => `${NAME}.${i}`)];
    expect(plain.clearAlongPath(names, deep)).toHaveLength(48);
    expect(pathsOf(plain.clearAlongPath([NAME], deep))).toEqual(['/', ...Array.from({ length: 47 }, (_, i) => deep.split('/').slice(0, Math.floor(i / 2) + 2).join('/') + (i % 2 === 1 ? '/' : ''))]);
  });

  test('keepOurs (two cookies of one name: which is ours cannot be told): ours at "/" as configured is left alone', () => {
    expect(pathsOf(plain.clearAlongPath([NAME], '/a/b', true, true))).toEqual(['/a', '/a/', '/a/b']);
    const withDomain = store.clearAlongPath([NAME], '/a', true, true);
    expect(withDomain.map((h) => [/; Path=([^;]*)/.exec(h)?.[1], h.includes('Domain=')])).toEqual([['/', false], ['/a', false]]);
  });

  test('__Host- names are cleared at "/" only (browsers keep them nowhere else)', () => {
    expect(pathsOf(plain.clearAlongPath(['__Host-oidc_authz', '__Host-oidc_authz.0'], '/a/b'))).toEqual(['/', '/']);
  });
});
