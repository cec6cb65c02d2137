/**
 * Session cookies on the wire. A sealed session up to CHUNK_SIZE characters travels in one cookie
 * `<name>`; a larger one is split into `<name>.0`, `<name>.1`, … Each chunk is `<tag>~<count>~<part>`,
 * where `tag` is a hash of the whole seal: chunks are reassembled only when all of them carry the same
 * tag and count and the joined value hashes to that tag, so chunks of two sessions never mix.
 * Reading them from a Cookie header is cookie-header.ts's job.
 */
import { hash } from 'node:crypto';
import { serialize } from 'cookie';

/** Leaves room for the name and attributes within browsers' 4096-byte limit per cookie. */
export const CHUNK_SIZE = 3800;
export const MAX_CHUNKS = 12;

export interface CookieAttributes {
  readonly secure: boolean;
  readonly domain?: string | undefined;
}

/** session.secure and session.domain: "auto" decides Secure per request (https or not). */
export interface CookiePolicy {
  readonly secure: boolean | 'auto';
  readonly domain?: string | undefined;
}

/** The attributes for a cookie set in answer to a request that came over https (`requestSecure`) or not. */
export function attributesFor(policy: CookiePolicy, requestSecure: boolean): CookieAttributes {
  return { secure: policy.secure === 'auto' ? requestSecure : policy.secure, domain: policy.domain };
}

export type SessionCookie =
  | { readonly kind: 'none' }
  | { readonly kind: 'present'; readonly value: string; readonly names: readonly string[] }
  | {
      readonly kind: 'invalid';
      /** `duplicate`: a session cookie or chunk twice in one request; `oversized`: longer than any we set. */
      readonly reason: 'chunks_mismatch' | 'chunks_incomplete' | 'duplicate' | 'oversized';
      readonly names: readonly string[];
    };

/**
 * The session in the cookies found under its name (`name`, `name.0`, `name.1`, …, each once): the single
 * cookie alone, or a complete set of chunks that belong together.
 */
export function assembleSession(cookies: ReadonlyMap<string, string>, name: string): SessionCookie {
  const names = [...cookies.keys()];
  const single = cookies.get(name);
  if (single !== undefined) {
    return names.length === 1 ? { kind: 'present', value: single, names } : { kind: 'invalid', reason: 'chunks_mismatch', names };
  }
  const first = parseChunk(cookies.get(`${name}.0`));
  if (first === null || first.count > MAX_CHUNKS || cookies.size !== first.count) return { kind: 'invalid', reason: 'chunks_incomplete', names };
  let value = '';
  for (let i = 0; i < first.count; i++) {
    const chunk = parseChunk(cookies.get(`${name}.${i}`));
    if (chunk === null) return { kind: 'invalid', reason: 'chunks_incomplete', names };
    if (chunk.tag !== first.tag || chunk.count !== first.count) return { kind: 'invalid', reason: 'chunks_mismatch', names };
    value += chunk.part;
  }
  if (tagOf(value) !== first.tag) return { kind: 'invalid', reason: 'chunks_mismatch', names };
  return { kind: 'present', value, names };
}

function parseChunk(raw: string | undefined): { tag: string; count: number; part: string } | null {
  if (raw === undefined) return null;
  const a = raw.indexOf('~');
  const b = a === -1 ? -1 : raw.indexOf('~', a + 1);
  if (b === -1) return null;
  const count = Number(raw.slice(a + 1, b));
  if (!Number.isInteger(count) || count < 2) return null;
  return { tag: raw.slice(0, a), count, part: raw.slice(b + 1) };
}

function tagOf(value: string): string {
  return hash('sha256', value, 'base64url').slice(0, 12);
}

/** The cookies that carry `sealed`, as name/value pairs. */
export function chunkSessionValue(name: string, sealed: string): Array<{ name: string; value: string }> {
  if (sealed.length <= CHUNK_SIZE) return [{ name, value: sealed }];
  const count = Math.ceil(sealed.length / CHUNK_SIZE);
  if (count > MAX_CHUNKS) throw new RangeError(`session of ${sealed.length} characters needs more than ${MAX_CHUNKS} cookies`);
  const tag = tagOf(sealed);
  return Array.from({ length: count }, (_, i) => ({
    name: `${name}.${i}`,
    value: `${tag}~${count}~${sealed.slice(i * CHUNK_SIZE, (i + 1) * CHUNK_SIZE)}`,
  }));
}

export function setCookieHeader(name: string, value: string, maxAgeSeconds: number, attributes: CookieAttributes, path = '/'): string {
  return serialize(name, value, {
    httpOnly: true,
    secure: attributes.secure,
    sameSite: 'lax',
    path,
    domain: attributes.domain,
    maxAge: Math.max(0, Math.floor(maxAgeSeconds)),
  });
}

export function clearCookieHeader(name: string, attributes: CookieAttributes, path = '/'): string {
  return serialize(name, '', {
    httpOnly: true,
    secure: attributes.secure,
    sameSite: 'lax',
    path,
    domain: attributes.domain,
    maxAge: 0,
    expires: new Date(0),
  });
}

/**
 * Set-Cookie headers that store `sealed` under `name` and expire every cookie of the old session
 * (`previous` names) that the new one does not overwrite.
 */
export function sessionSetCookies(name: string, sealed: string, maxAgeSeconds: number, attributes: CookieAttributes, previous: readonly string[] = []): string[] {
  const cookies = chunkSessionValue(name, sealed);
  const written = new Set(cookies.map((c) => c.name));
  return [
    ...cookies.map((c) => setCookieHeader(c.name, c.value, maxAgeSeconds, attributes)),
    ...previous.filter((n) => !written.has(n)).map((n) => clearCookieHeader(n, attributes)),
  ];
}
