/**
 * Sealing (src/session/seal.ts) with real iron sealing: round trips, key rotation, and every way a seal
 * can be forged, tampered with, cut short, padded or expired — each opens to null and never throws.
 */
import { createSealer, type Sealer } from '../../src/session/seal.js';
import { secretsFromLines, type SealingSecrets } from '../../src/session/secrets.js';

const A = 'first-secret-aaaaaaaaaaaaaaaaaaaaaaaaaaaa';
const B = 'second-secret-bbbbbbbbbbbbbbbbbbbbbbbbbbb';
const C = 'third-secret-cccccccccccccccccccccccccccc';

const data = { idToken: 'eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ1In0.c2ln', refreshToken: 'refresh-1', createdAt: 1_790_000_000_000, expiresAt: 1_790_000_360_000 };
const sealerOf = (...lines: string[]): Sealer => createSealer(secretsFromLines(lines));
const TTL = 3600;

/** The eight `*`-separated components of an Iron seal, without the "~2" version suffix. */
function components(sealed: string): string[] {
  expect(sealed.endsWith('~2')).toBe(true);
  return sealed.slice(0, -2).split('*');
}
const assemble = (parts: readonly string[]): string => `${parts.join('*')}~2`;

/** A different character of the same kind (digit → digit, letter → letter), so the seal keeps its shape. */
function flipChar(c: string): string {
  if (/[0-9]/.test(c)) return String((Number(c) + 1) % 10);
  if (c === 'A') return 'B';
  if (/[A-Za-z]/.test(c)) return 'A';
  return c === '-' ? '_' : '-';
}
function flipMiddle(value: string): string {
  const at = Math.floor(value.length / 2);
  return `${value.slice(0, at)}${flipChar(value[at]!)}${value.slice(at + 1)}`;
}
function withComponent(sealed: string, index: number, change: (part: string) => string): string {
  const parts = components(sealed);
  parts[index] = change(parts[index]!);
  return assemble(parts);
}

describe('createSealer: round trips and rotation', () => {
  test.each<{ what: string; value: Record<string, unknown> }>([
    { what: 'a session', value: data },
    { what: 'a session without a refresh token', value: { ...data, refreshToken: null } },
    { what: 'nested values and unicode', value: { a: { b: [1, 'zwei', { drei: true }] }, name: 'Zoë 山田 🍪' } },
    { what: 'a 10 KB ID token', value: { ...data, idToken: 'e'.repeat(10_000) } },
  ])('$what opens to the same data', async ({ value }) => {
    const sealer = sealerOf(A);
    const sealed = await sealer.seal(value, TTL);
    expect(sealed).toMatch(/^Fe26\.2\*[A-Za-z0-9_*-]+~2$/);
    await expect(sealer.unseal(sealed, TTL)).resolves.toEqual(value);
  });

  test('two seals of the same data differ (random salts and IV) and both open', async () => {
    const sealer = sealerOf(A);
    const [one, two] = [await sealer.seal(data, TTL), await sealer.seal(data, TTL)];
    expect(one).not.toBe(two);
    await expect(sealer.unseal(one, TTL)).resolves.toEqual(data);
    await expect(sealer.unseal(two, TTL)).resolves.toEqual(data);
  });

  test.each<{ what: string; sealWith: string[]; openWith: string[]; opens: boolean }>([
    { what: 'sealed with [A], opened with [A]', sealWith: [A], openWith: [A], opens: true },
    { what: 'sealed with [A], opened after rotation to [B, A]', sealWith: [A], openWith: [B, A], opens: true },
    { what: 'sealed with [A], opened with [C, B, A]', sealWith: [A], openWith: [C, B, A], opens: true },
    { what: 'sealed with [A], opened after A was dropped: [B]', sealWith: [A], openWith: [B], opens: false },
    { what: 'sealed with [B, A] (B seals), opened with [B]', sealWith: [B, A], openWith: [B], opens: true },
    { what: 'sealed with [B, A] (B seals), opened with [A] alone', sealWith: [B, A], openWith: [A], opens: false },
    { what: 'sealed with [A, B] (A seals), opened with [B, A]', sealWith: [A, B], openWith: [B, A], opens: true },
    { what: 'sealed with another secret altogether', sealWith: [C], openWith: [B, A], opens: false },
  ])('$what', async ({ sealWith, openWith, opens }) => {
    const sealed = await sealerOf(...sealWith).seal(data, TTL);
    await expect(sealerOf(...openWith).unseal(sealed, TTL)).resolves.toEqual(opens ? data : null);
  });

  test('a seal names the id of the first secret', async () => {
    const secrets = secretsFromLines([B, A]);
    const sealed = await createSealer(secrets).seal(data, TTL);
    expect(components(sealed)[1]).toBe(Object.keys(secrets.seal)[0]);
  });

  test('a seal made with another secret under the same id does not open (HMAC check)', async () => {
    const forger: SealingSecrets = { seal: { 7: C }, unseal: { 7: C } };
    const victim: SealingSecrets = { seal: { 7: A }, unseal: { 7: A } };
    const sealed = await createSealer(forger).seal(data, TTL);
    expect(components(sealed)[1]).toBe('7');
    await expect(createSealer(victim).unseal(sealed, TTL)).resolves.toBeNull();
  });

  test('a seal of an empty object opens to null (iron-session answers {} for a bad seal)', async () => {
    const sealer = sealerOf(A);
    await expect(sealer.unseal(await sealer.seal({}, TTL), TTL)).resolves.toBeNull();
  });
});

describe('createSealer: expiry', () => {
  // A negative ttl puts the seal's expiry in the past at sealing time: no clock has to move.
  // iron allows 60 s of clock skew, so the expiry must lie more than a minute back.
  test.each<{ what: string; ttl: number; opens: boolean }>([
    { what: 'a seal that expired an hour ago', ttl: -3600, opens: false },
    { what: 'a seal that expired two minutes ago', ttl: -120, opens: false },
    { what: 'a seal that expired a day ago', ttl: -86_400, opens: false },
    { what: 'a seal that expires in an hour', ttl: 3600, opens: true },
  ])('$what', async ({ ttl, opens }) => {
    const sealer = sealerOf(A);
    const sealed = await sealer.seal(data, ttl);
    await expect(sealer.unseal(sealed, TTL)).resolves.toEqual(opens ? data : null);
  });

  test('the seal carries its expiry: sealing time plus ttl, in ms', async () => {
    const before = Date.now();
    const sealed = await sealerOf(A).seal(data, 600);
    const after = Date.now();
    const expiry = Number(components(sealed)[5]);
    expect(expiry).toBeGreaterThanOrEqual(before + 600_000);
    expect(expiry).toBeLessThanOrEqual(after + 600_000);
  });

  test.each<{ what: string; change: (expiry: string) => string }>([
    { what: 'an expired seal whose expiry is moved a year ahead', change: (expiry) => String(Number(expiry) + 365 * 86_400_000) },
    { what: 'an expired seal whose expiry is removed', change: () => '' },
  ])('$what does not open (the expiry is under the HMAC)', async ({ change }) => {
    const sealer = sealerOf(A);
    const sealed = await sealer.seal(data, -3600);
    await expect(sealer.unseal(withComponent(sealed, 5, change), TTL)).resolves.toBeNull();
  });
});

describe('createSealer: tampered, truncated, padded and garbage seals open to null, never a throw', () => {
  const sealer = sealerOf(A);
  let sealed = '';
  let other = '';
  beforeAll(async () => {
    sealed = await sealer.seal(data, TTL);
    other = await sealer.seal({ ...data, idToken: 'someone-else' }, TTL);
  });

  test.each<{ what: string; mangle: (s: string) => string }>([
    // One character changed.
    { what: 'a character flipped in the middle of the seal', mangle: (s) => flipMiddle(s) },
    { what: 'a character flipped in the password id', mangle: (s) => withComponent(s, 1, flipMiddle) },
    { what: 'a character flipped in the encryption salt', mangle: (s) => withComponent(s, 2, flipMiddle) },
    { what: 'a character flipped in the IV', mangle: (s) => withComponent(s, 3, flipMiddle) },
    { what: 'a character flipped in the ciphertext', mangle: (s) => withComponent(s, 4, flipMiddle) },
    { what: 'a digit changed in the expiry', mangle: (s) => withComponent(s, 5, flipMiddle) },
    { what: 'a character flipped in the HMAC salt', mangle: (s) => withComponent(s, 6, flipMiddle) },
    { what: 'a character flipped in the HMAC', mangle: (s) => withComponent(s, 7, flipMiddle) },
    { what: 'the last character of the HMAC changed', mangle: (s) => withComponent(s, 7, (h) => `${h.slice(0, -1)}${flipChar(h.at(-1)!)}`) },
    { what: 'the prefix changed to Fe26.1', mangle: (s) => s.replace('Fe26.2', 'Fe26.1') },
    { what: 'the version suffix changed to ~1', mangle: (s) => `${s.slice(0, -1)}1` },
    // Parts of two genuine seals combined.
    { what: 'the ciphertext of another seal', mangle: (s) => withComponent(s, 4, () => components(other)[4]!) },
    { what: 'the HMAC of another seal', mangle: (s) => withComponent(s, 7, () => components(other)[7]!) },
    { what: 'the HMAC salt and HMAC of another seal', mangle: (s) => assemble([...components(s).slice(0, 6), ...components(other).slice(6)]) },
    // Truncated.
    { what: 'truncated by one character (the "~" remains)', mangle: (s) => s.slice(0, -1) },
    { what: 'without its "~2" suffix', mangle: (s) => s.slice(0, -2) },
    { what: 'the HMAC one character short, suffix kept', mangle: (s) => withComponent(s, 7, (h) => h.slice(0, -1)) },
    { what: 'the ciphertext one character short', mangle: (s) => withComponent(s, 4, (e) => e.slice(0, -1)) },
    { what: 'cut in half', mangle: (s) => s.slice(0, Math.floor(s.length / 2)) },
    { what: 'cut in half with the suffix put back', mangle: (s) => `${s.slice(0, Math.floor(s.length / 2))}~2` },
    { what: 'the HMAC removed', mangle: (s) => assemble(components(s).slice(0, 7)) },
    { what: 'an empty HMAC', mangle: (s) => withComponent(s, 7, () => '') },
    // Appended.
    { what: 'a character appended after the suffix', mangle: (s) => `${s}x` },
    { what: 'junk appended after the suffix (iron-session alone would ignore it)', mangle: (s) => `${s}xyz` },
    { what: 'a second version suffix', mangle: (s) => `${s}~2` },
    { what: 'a character appended to the HMAC', mangle: (s) => withComponent(s, 7, (h) => `${h}A`) },
    { what: 'a character appended to the ciphertext', mangle: (s) => withComponent(s, 4, (e) => `${e}A`) },
    { what: 'a ninth component', mangle: (s) => assemble([...components(s), 'extra']) },
    { what: 'a leading space', mangle: (s) => ` ${s}` },
    { what: 'the seal twice', mangle: (s) => `${s}${s}` },
    // Password ids that name properties of a plain object.
    { what: 'password id "constructor"', mangle: (s) => withComponent(s, 1, () => 'constructor') },
    { what: 'password id "__proto__"', mangle: (s) => withComponent(s, 1, () => '__proto__') },
    { what: 'password id "toString"', mangle: (s) => withComponent(s, 1, () => 'toString') },
    { what: 'an empty password id', mangle: (s) => withComponent(s, 1, () => '') },
  ])('$what', async ({ mangle }) => {
    const mangled = mangle(sealed);
    expect(mangled).not.toBe(sealed);
    await expect(sealer.unseal(mangled, TTL)).resolves.toBeNull();
  });

  test('the untouched seal opens (the rows above start from a good seal)', async () => {
    await expect(sealer.unseal(sealed, TTL)).resolves.toEqual(data);
  });

  test.each<{ what: string; value: string }>([
    { what: 'an empty string', value: '' },
    { what: 'plain text', value: 'not a seal at all' },
    { what: 'the prefix alone', value: 'Fe26.2' },
    { what: 'the suffix alone', value: '~2' },
    { what: 'the right shape with a non-numeric expiry', value: 'Fe26.2*1*a*b*c*d*e*f~2' },
    { what: 'the right shape with a numeric expiry far ahead', value: 'Fe26.2*1*a*b*c*99999999999999*e*f~2' },
    { what: 'the right shape with empty components', value: 'Fe26.2*******~2' },
    { what: 'the right prefix with nonsense', value: 'Fe26.2**1*a*b*c*d*e*f~2' },
    { what: 'JSON', value: JSON.stringify(data) },
    { what: 'base64 of JSON', value: Buffer.from(JSON.stringify(data)).toString('base64url') },
    { what: 'non-ASCII characters', value: 'Fe26.2*ü*ß*é*字*1*x*y~2' },
    { what: 'a NUL character', value: 'Fe26.2*1*a*b*c*\u0000*e*f~2' },
    { what: 'over 64 KB of seal-shaped text', value: `Fe26.2*1*${'A'.repeat(70_000)}*b*c**e*f~2` },
  ])('garbage: $what', async ({ value }) => {
    await expect(sealer.unseal(value, TTL)).resolves.toBeNull();
  });
});
