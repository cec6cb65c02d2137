/**
 * The cookie of a session kept in Redis: `r1.<secret id>.<random>.<mac>`, 256 random bits signed with the
 * newest cookie secret (HMAC-SHA256, 128 bits kept). About 80 characters, so the cookie never needs chunks.
 * Nothing in it is secret but the random part, so it is signed rather than encrypted: a forged or guessed
 * handle is refused without a Redis read, and a handle from before a secret was dropped stops working.
 * The Redis key is a hash of the random part: a copy of Redis (or its keys) yields no usable cookie.
 */
import { createHmac, hash, randomBytes, timingSafeEqual } from 'node:crypto';
import { secretSource, type SealingSecrets, type SecretSource } from '../session/secrets.js';

const VERSION = 'r1';
const HANDLE_SHAPE = /^r1\.(\d{1,12})\.([A-Za-z0-9_-]{43})\.([A-Za-z0-9_-]{22})$/;

export interface SessionHandles {
  /** A new handle and the id its session is stored under. */
  create(): { value: string; id: string };
  /** The id a handle's session is stored under; null for anything we did not sign with a current secret. */
  idOf(value: string): string | null;
  /** Keys for index names: one per current secret, the newest first (lookups try each, writes use the first). */
  readonly indexKeys: readonly Buffer[];
}

interface HandleKeys {
  readonly macKeys: ReadonlyMap<string, Buffer>;
  readonly newestId: string;
  readonly newestMacKey: Buffer;
  readonly indexKeys: readonly Buffer[];
}

function keysOf(secrets: SealingSecrets): HandleKeys {
  const derive = (secret: string, purpose: string) => createHmac('sha256', secret).update(`oidc-authz ${purpose}`).digest();
  const macKeys = new Map(Object.entries(secrets.unseal).map(([id, secret]) => [id, derive(secret, 'session handle')]));
  const [newestId, newestSecret] = Object.entries(secrets.seal)[0]!;
  const newestMacKey = macKeys.get(newestId) ?? derive(newestSecret, 'session handle');
  const indexKeys = [derive(newestSecret, 'session index'), ...Object.entries(secrets.unseal).filter(([id]) => id !== newestId).map(([, secret]) => derive(secret, 'session index'))];
  return { macKeys, newestId, newestMacKey, indexKeys };
}

/**
 * `secrets`: a fixed set, or a ring (hot reload): keys are derived again once per new secret list, so a
 * rotation signs new handles with the new first secret and opens old ones while their secret is listed.
 */
export function createSessionHandles(secrets: SealingSecrets | SecretSource): SessionHandles {
  const source = secretSource(secrets);
  let derivedFrom = source.current;
  let derived = keysOf(derivedFrom);
  const keys = (): HandleKeys => {
    const current = source.current;
    if (current !== derivedFrom) {
      derived = keysOf(current);
      derivedFrom = current;
    }
    return derived;
  };
  const mac = (key: Buffer, body: string) => createHmac('sha256', key).update(body).digest().subarray(0, 16);

  return {
    create() {
      const { newestId, newestMacKey } = keys();
      const random = randomBytes(32).toString('base64url');
      const body = `${VERSION}.${newestId}.${random}`;
      return { value: `${body}.${mac(newestMacKey, body).toString('base64url')}`, id: idFor(random) };
    },
    idOf(value) {
      const match = HANDLE_SHAPE.exec(value);
      if (match === null) return null;
      const [, secretId, random, signature] = match as unknown as [string, string, string, string];
      const key = keys().macKeys.get(secretId);
      if (key === undefined) return null;
      // Compared as text: base64url's last character carries spare bits, so decoding would let one handle
      // have several spellings (each its own cache entry).
      const expected = Buffer.from(mac(key, `${VERSION}.${secretId}.${random}`).toString('base64url'));
      const given = Buffer.from(signature);
      return given.length === expected.length && timingSafeEqual(given, expected) ? idFor(random) : null;
    },
    get indexKeys() {
      return keys().indexKeys;
    },
  };
}

function idFor(random: string): string {
  return hash('sha256', random, 'base64url');
}
