/**
 * Bounded caches with a per-entry expiry, for verified bearer tokens and unsealed sessions: a hit costs one
 * Map lookup, an expired entry is never returned.
 */
import { hash } from 'node:crypto';

/**
 * A bounded, approximately least-recently-used map with a per-entry expiry. A hit moves its entry to the
 * newest end of the Map's insertion order only once it has drifted into the older half: an entry in use
 * never reaches the eviction end, and most hits (the hot path) cost a lookup without a delete and re-insert.
 */
export class ExpiringLru<V> {
  private readonly entries = new Map<string, { value: V; expiresAt: number; stamp: number }>();
  /** Insertions and moves so far; an entry's stamp is this count when it last went to the newest end. */
  private clock = 0;
  /** A hit moves its entry when it is at least this many insertions old. */
  private readonly moveAfter: number;

  constructor(readonly maxEntries: number) {
    this.moveAfter = Math.max(1, maxEntries >> 1);
  }

  get size(): number {
    return this.entries.size;
  }

  get(key: string, now: number): V | undefined {
    const entry = this.entries.get(key);
    if (entry === undefined) return undefined;
    if (entry.expiresAt <= now) {
      this.entries.delete(key);
      return undefined;
    }
    if (this.clock - entry.stamp >= this.moveAfter) {
      // Re-inserting moves the key to the newest end of the Map's insertion order.
      this.entries.delete(key);
      entry.stamp = ++this.clock;
      this.entries.set(key, entry);
    }
    return entry.value;
  }

  delete(key: string): void {
    this.entries.delete(key);
  }

  set(key: string, value: V, expiresAt: number): void {
    if (this.maxEntries === 0) return;
    this.entries.delete(key);
    this.entries.set(key, { value, expiresAt, stamp: ++this.clock });
    while (this.entries.size > this.maxEntries) {
      const oldest = this.entries.keys().next().value as string;
      this.entries.delete(oldest);
    }
  }
}

/** A refused credential up to this length is kept as it is; a longer one by its digest. */
export const REFUSAL_KEPT_CHARS = 2048;

/** Characters of a credential that key its entry: a JWT's signature or a sealed cookie's MAC ends it. */
const KEY_CHARS = 64;

/**
 * An ExpiringLru for credentials (bearer tokens, session cookie values), keyed by the credential's last
 * characters and confirmed by the whole credential: a hit hashes 64 characters, not a kilobyte of token
 * through SHA-256 (research/perf.md). Two credentials that end alike share one entry, the later replacing
 * the earlier: never a wrong answer, only a miss.
 *
 * `retain`: the entry keeps the credential itself, for a cheap comparison (verified tokens, opened sessions:
 * their size is bounded by what an issuer or our own sealing makes). A refusal keeps the credential only up
 * to REFUSAL_KEPT_CHARS (a forged token costs no more to remember than a valid one), a longer one by its
 * SHA-256: a flood of large forged credentials cannot fill memory with copies.
 */
export class CredentialCache<V> {
  private readonly lru: ExpiringLru<{ readonly credential: string | null; readonly digest: string | null; readonly value: V }>;

  /**
   * `copy`: keep a copy of a retained credential that holds nothing else (detached): for credentials cut out
   * of a longer header (a session cookie out of a Cookie header that may carry kilobytes of other cookies).
   */
  constructor(maxEntries: number, private readonly copy: boolean) {
    this.lru = new ExpiringLru(maxEntries);
  }

  get size(): number {
    return this.lru.size;
  }

  get(credential: string, now: number): V | undefined {
    const entry = this.lru.get(keyOf(credential), now);
    if (entry === undefined) return undefined;
    if (entry.credential !== null) return entry.credential === credential ? entry.value : undefined;
    return entry.digest === digestOf(credential) ? entry.value : undefined;
  }

  set(credential: string, value: V, expiresAt: number, retain: boolean): void {
    const kept = retain || credential.length <= REFUSAL_KEPT_CHARS;
    const stored = kept && this.copy ? detached(credential) : credential;
    const entry = kept ? { credential: stored, digest: null, value } : { credential: null, digest: digestOf(credential), value };
    // The key is cut from the stored copy: cut from the original, it would keep the whole header alive after all.
    this.lru.set(keyOf(stored), entry, expiresAt);
  }

  /** Forgets the credential's entry (and only its own: another credential's that ends alike stays). */
  delete(credential: string, now: number): void {
    if (this.get(credential, now) !== undefined) this.lru.delete(keyOf(credential));
  }
}

function keyOf(credential: string): string {
  return credential.length > KEY_CHARS ? credential.slice(-KEY_CHARS) : credential;
}

/**
 * A copy of the credential that holds nothing else: a credential cut out of a header may keep the whole
 * header alive (V8's sliced strings), and a Cookie header may carry tens of kilobytes beside the session.
 */
function detached(credential: string): string {
  return Buffer.from(credential, 'utf8').toString('utf8');
}

/** What identifies a credential without keeping it: for single-flight maps and refusals. */
export function digestOf(credential: string): string {
  return hash('sha256', credential, 'base64url');
}
