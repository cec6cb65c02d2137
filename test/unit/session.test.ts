/** Cookie secrets, iron sealing and the session store, with real sealing and a clock the test moves. */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readSessionCookie } from '../../src/session/cookie-header.js';
import { createSealer } from '../../src/session/seal.js';
import { readSecretsFile, SecretsError, secretsFromLines } from '../../src/session/secrets.js';
import { CookieSessionStore } from '../../src/session/store.js';

const A = 'first-secret-aaaaaaaaaaaaaaaaaaaaaaaaaaaa';
const B = 'second-secret-bbbbbbbbbbbbbbbbbbbbbbbbbbb';
const C = 'third-secret-cccccccccccccccccccccccccccc';

describe('secretsFromLines', () => {
  test('the first secret seals, every secret unseals', () => {
    const secrets = secretsFromLines([B, A]);
    expect(Object.values(secrets.seal)).toEqual([B]);
    expect(Object.values(secrets.unseal).sort()).toEqual([A, B].sort());
  });

  test('ids are derived from the secret: stable when a new first line is added or the last removed', () => {
    const idOf = (lines: string[], secret: string) => Object.entries(secretsFromLines(lines).unseal).find(([, s]) => s === secret)![0];
    expect(idOf([A], A)).toBe(idOf([C, B, A], A));
    expect(idOf([B, A], B)).toBe(idOf([C, B], B));
  });

  test('blank lines and # comments are ignored', () => {
    expect(Object.values(secretsFromLines(['', '# rotated 2026-11', `  ${A}  `, '']).seal)).toEqual([A]);
  });

  test.each<[string, string[], RegExp]>([
    ['a short secret', [A, 'short'], /line 2 .* shorter than 32/],
    ['no secret at all', ['', '# only a comment'], /holds no secret/],
  ])('%s is refused', (_name, lines, message) => {
    expect(() => secretsFromLines(lines)).toThrow(SecretsError);
    expect(() => secretsFromLines(lines)).toThrow(message);
  });

  test('readSecretsFile reads a file and refuses a missing one', () => {
    const dir = mkdtempSync(join(tmpdir(), 'oidc-authz-secrets-'));
    writeFileSync(join(dir, 'secrets'), `${A}\n${B}\n`);
    expect(Object.values(readSecretsFile(join(dir, 'secrets')).seal)).toEqual([A]);
    expect(() => readSecretsFile(join(dir, 'missing'))).toThrow(/cannot read .*ENOENT/);
  });
});

describe('createSealer (iron)', () => {
  const data = { idToken: 'header.payload.signature', n: 1 };

  test('round trip, and rotation: old seals open while their secret is listed, not after', async () => {
    const sealed = await createSealer(secretsFromLines([A])).seal(data, 3600);
    await expect(createSealer(secretsFromLines([A])).unseal(sealed, 3600)).resolves.toEqual(data);
    await expect(createSealer(secretsFromLines([B, A])).unseal(sealed, 3600)).resolves.toEqual(data);
    await expect(createSealer(secretsFromLines([B])).unseal(sealed, 3600)).resolves.toBeNull();
  });

  test.each<[string, (s: string) => string]>([
    ['a flipped character', (s) => `${s.slice(0, 60)}${s[60] === 'A' ? 'B' : 'A'}${s.slice(61)}`],
    ['truncated', (s) => s.slice(0, -20)],
    ['junk after the version suffix (iron-session alone would ignore it)', (s) => `${s}xyz`],
    ['another version suffix', (s) => `${s.slice(0, -1)}1`],
    ['garbage', () => 'not a seal at all'],
    ['an empty string', () => ''],
    ['the right prefix with nonsense', () => 'Fe26.2**1*a*b*c*d*e*f~2'],
  ])('%s → null, never a throw', async (_name, mangle) => {
    const sealer = createSealer(secretsFromLines([A]));
    const sealed = await sealer.seal(data, 3600);
    await expect(sealer.unseal(mangle(sealed), 3600)).resolves.toBeNull();
  });
});

describe('CookieSessionStore', () => {
  let now = Date.UTC(2026, 10, 23, 12, 0, 0);
  const store = new CookieSessionStore(createSealer(secretsFromLines([A])), { names: { base: 'oidc_authz', sessionPrefix: '' }, attributes: { secure: true, domain: 'example.com' }, maxAgeMs: 12 * 3600_000 }, () => now);
  const session = { idToken: 'x'.repeat(10_000), addedClaims: {}, refreshToken: 'refresh-1', createdAt: now, expiresAt: now + 3600_000 };
  const cookieHeader = (setCookies: string[]) => setCookies.map((c) => c.split(';', 1)[0]).join('; ');

  test('a large session needs several cookies, reads back whole, and opens to the same data', async () => {
    const issued = await store.issue(session);
    expect(issued.chunks).toBeGreaterThanOrEqual(3);
    const read = store.read(cookieHeader(issued.setCookies));
    expect(read).toMatchObject({ kind: 'present', value: issued.sealed });
    await expect(store.open(issued.sealed)).resolves.toEqual(session);
  });

  test('Max-Age is what is left of the absolute session age; attributes as configured', async () => {
    now = session.createdAt + 2 * 3600_000;
    const issued = await store.issue(session);
    for (const cookie of issued.setCookies) {
      expect(cookie).toContain(`Max-Age=${10 * 3600}`);
      expect(cookie).toMatch(/HttpOnly/);
      expect(cookie).toMatch(/Secure/);
      expect(cookie).toMatch(/SameSite=Lax/);
      expect(cookie).toMatch(/Domain=example\.com/);
      expect(cookie).toMatch(/Path=\//);
    }
    expect(store.endOf(session.createdAt)).toBe(session.createdAt + 12 * 3600_000);
  });

  test('a re-issued smaller session expires the old chunks it does not overwrite', async () => {
    const big = await store.issue(session);
    const read = readSessionCookie(cookieHeader(big.setCookies), 'oidc_authz');
    if (read.kind !== 'present') throw new Error(`expected a session, got ${read.kind}`);
    const { names } = read;
    const small = await store.issue({ ...session, idToken: 'short' }, names);
    expect(small.setCookies[0]).toMatch(/^oidc_authz=/);
    const expired = small.setCookies.slice(1);
    expect(expired).toHaveLength(names.length);
    expect(expired.every((c) => /^oidc_authz\.\d+=;/.test(c) && /Max-Age=0/.test(c))).toBe(true);
  });

  test.each<[string, Record<string, unknown>]>([
    ['no idToken', { refreshToken: null, createdAt: 1, expiresAt: 2 }],
    ['a numeric refresh token', { idToken: 'x', refreshToken: 5, createdAt: 1, expiresAt: 2 }],
    ['a string createdAt', { idToken: 'x', refreshToken: null, createdAt: 'yesterday', expiresAt: 2 }],
  ])('a seal with %s opens to null', async (_name, data) => {
    const sealed = await createSealer(secretsFromLines([A])).seal(data, 3600);
    await expect(store.open(sealed)).resolves.toBeNull();
  });

  test('clear expires every named cookie', () => {
    const cleared = store.clear(['oidc_authz.0', 'oidc_authz.1']);
    expect(cleared).toHaveLength(2);
    expect(cleared.every((c) => /Max-Age=0/.test(c) && /Expires=Thu, 01 Jan 1970/.test(c))).toBe(true);
  });
});
