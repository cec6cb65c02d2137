/**
 * session.store "redis": the session is sealed (the cookie secrets, Iron) under `<prefix>s:<id>` with the
 * session's remaining lifetime as TTL; the cookie is a signed handle (handle.ts). Index sets find a user's,
 * a subject's and an IdP session's sessions (`<prefix>u:`, `sub:`, `sid:` + an HMAC of the value, so key
 * names reveal no one). Every command is single-key, so the same code runs on a single Redis, Sentinel and
 * Cluster. Renewals take a lease (`<prefix>lock:<id>`) renewed while the IdP call runs.
 */
import { createHmac, randomBytes } from 'node:crypto';
import type { Logger } from '../log.js';
import type { Metrics } from '../metrics.js';
import { sessionCookieName, type CookieNames } from '../session/cookie-header.js';
import { attributesFor, sessionSetCookies, type CookiePolicy, type SessionCookie } from '../session/cookies.js';
import type { Sealer } from '../session/seal.js';
import { CookieSessionStore, sessionDataFrom, type SessionData } from '../session/store.js';
import {
  SessionTooLargeError, STORE_UNAVAILABLE, StoreUnavailableError,
  type IssuedSession, type Renewal, type RenewOutcome, type SessionOwner, type SessionRevoker, type SessionStore, type StoreUnavailable,
} from './contract.js';
import type { Config } from '../config/schema.js';
import { cookieNamesOf } from '../session/cookie-header.js';
import type { SealingSecrets, SecretSource } from '../session/secrets.js';
import { createSessionHandles, type SessionHandles } from './handle.js';
import { connectRedis, type RedisClient } from './redis-connection.js';

export interface RedisStoreOptions {
  readonly names: CookieNames;
  readonly attributes: CookiePolicy;
  readonly maxAgeMs: number;
  readonly keyPrefix: string;
  /** session.redis.cacheFor */
  readonly recheckAfterMs: number;
  /** session.redis.refreshLease */
  readonly leaseMs: number;
  /** How long a check waits for another replica's renewal (the IdP's timeout and a lease). */
  readonly renewalWaitMs: number;
}

/** The store session.redis describes (not connected yet: start()). Throws ConfigError for unreadable files. */
export function redisStoreFromConfig(config: Config, sealer: Sealer, secrets: SealingSecrets | SecretSource, deps: { readonly metrics: Metrics; readonly logger: Logger }, now: () => number = Date.now): RedisSessionStore {
  const redis = config.session.redis!;
  return new RedisSessionStore(connectRedis(redis), sealer, createSessionHandles(secrets), {
    names: cookieNamesOf(config.session),
    attributes: { secure: config.session.secure, domain: config.session.domain },
    maxAgeMs: config.session.maxAge,
    keyPrefix: redis.keyPrefix,
    recheckAfterMs: redis.cacheFor,
    leaseMs: redis.refreshLease,
    // A check waits for another replica's renewal as long as that replica may wait for the IdP, and a lease.
    renewalWaitMs: (config.oidc?.timeout ?? 10_000) + redis.refreshLease,
  }, deps, now);
}

/** What a record holds beside the session: the index sets it is in (to leave them when it ends). */
interface StoredRecord {
  readonly session: SessionData;
  readonly indexes: readonly string[];
}

/** A record as read, with the version it was stored under (its `<version>.` prefix). */
interface ReadRecord extends StoredRecord {
  readonly version: string;
}

/** Larger sessions are refused at login (a page saying so) rather than stored and never opened. */
const MAX_RECORD_CHARS = 1024 * 1024;

/** A waiting check reads the session again this often while another replica renews it. */
const RENEWAL_POLL_MS = 50;
/** Sign-outs that could not reach Redis, retried when it is back; beyond this the oldest are dropped. */
const MAX_PENDING_ENDS = 10_000;
const PENDING_RETRY_MS = 2_000;

/**
 * A record is `<version>.<seal>`; the version is an HMAC of the session's refresh token and expiry, so a
 * renewal can replace (or a refused one delete) exactly the session it renewed: if another replica renewed
 * it meanwhile (its lease lost, a failover that dropped the lock key), the stored version differs and the
 * newer session is kept. Returns 1 done, 0 no record, -1 another version.
 */
const REPLACE_IF_VERSION = `local v = redis.call('get', KEYS[1])
if not v then return 0 end
if string.sub(v, 1, string.len(ARGV[1]) + 1) ~= ARGV[1] .. '.' then return -1 end
redis.call('set', KEYS[1], ARGV[2], 'PX', ARGV[3])
return 1`;
const DELETE_IF_VERSION = `local v = redis.call('get', KEYS[1])
if not v then return 0 end
if string.sub(v, 1, string.len(ARGV[1]) + 1) ~= ARGV[1] .. '.' then return -1 end
redis.call('del', KEYS[1])
return 1`;
const RENEW_LEASE = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('pexpire', KEYS[1], ARGV[2]) else return 0 end";
const RELEASE_LEASE = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) else return 0 end";

type Op = 'read' | 'write' | 'renew' | 'end' | 'revoke' | 'lock';

export class RedisSessionStore implements SessionStore, SessionRevoker {
  readonly kind = 'redis';
  readonly recheckAfterMs: number;
  /** Cookie work (reading, clearing) is the same as for cookie sessions. */
  private readonly cookies: CookieSessionStore;
  private readonly pendingEnds = new Set<string>();
  private retryTimer: NodeJS.Timeout | undefined;
  private answering = false;
  private everAnswered = false;

  constructor(
    private readonly redis: RedisClient,
    private readonly sealer: Sealer,
    private readonly handles: SessionHandles,
    private readonly options: RedisStoreOptions,
    private readonly deps: { readonly metrics: Metrics; readonly logger: Logger },
    private readonly now: () => number = Date.now,
  ) {
    this.recheckAfterMs = options.recheckAfterMs;
    this.cookies = new CookieSessionStore(sealer, { names: options.names, attributes: options.attributes, maxAgeMs: options.maxAgeMs }, now);
    redis.on('ready', () => {
      if (!this.answering) deps.logger.info('session store reachable', { store: 'redis' });
      this.answering = true;
      this.everAnswered = true;
      void this.retryPendingEnds();
    });
    // Without an 'error' listener ioredis would print every failed reconnect; the state change is what matters.
    redis.on('error', (error: Error) => {
      if (this.answering) deps.logger.warn('session store unreachable', { store: 'redis', error: error.message });
      this.answering = false;
    });
    redis.on('end', () => (this.answering = false));
    redis.on('close', () => {
      if (this.answering) deps.logger.warn('session store connection closed', { store: 'redis' });
      this.answering = false;
    });
  }

  /** Connects (start-up does not wait for it: readiness says when Redis is there). */
  start(): void {
    this.redis.connect().catch(() => undefined);
  }

  /** Connects and waits until Redis answers (the CLI); throws StoreUnavailableError. */
  async connected(): Promise<void> {
    try {
      await this.redis.connect();
      await this.redis.ping();
    } catch (error) {
      throw new StoreUnavailableError(`session store (Redis): ${(error as Error).message}`);
    }
  }

  /**
   * Readiness: only until Redis has answered once. Afterwards an outage fails the checks that need Redis
   * (503) but not readiness: bearer tokens, anonymous routes and sessions in memory still work, and a
   * whole Deployment going unready would turn them all into the gateway's 503s.
   */
  problem(): string | null {
    return this.everAnswered ? null : `session store (Redis) not reached yet (${this.redis.status})`;
  }

  reachable(): boolean {
    return this.answering;
  }

  async close(): Promise<void> {
    clearInterval(this.retryTimer);
    // A client still trying to connect would keep trying (and the process alive): only a ready one says QUIT.
    if (this.redis.status !== 'ready') return void this.redis.disconnect();
    try {
      await this.redis.quit();
    } catch {
      this.redis.disconnect();
    }
  }

  read(cookieHeader: string | undefined): SessionCookie {
    return this.cookies.read(cookieHeader);
  }

  endOf(createdAt: number): number {
    return this.cookies.endOf(createdAt);
  }

  clear(names: readonly string[], requestSecure = true): string[] {
    return this.cookies.clear(names, requestSecure);
  }

  clearAlongPath(names: readonly string[], requestPath: string, requestSecure = true, keepOurs = false): string[] {
    return this.cookies.clearAlongPath(names, requestPath, requestSecure, keepOurs);
  }

  async issue(data: SessionData, previousNames: readonly string[], requestSecure: boolean, owner: SessionOwner): Promise<IssuedSession> {
    const handle = this.handles.create();
    const ttlMs = this.endOf(data.createdAt) - this.now();
    const indexes = this.indexesOf(owner, 0);
    try {
      await this.writeRecord(handle.id, { session: data, indexes }, ttlMs);
      await this.addToIndexes(handle.id, indexes);
      this.count('write', 'ok');
    } catch (error) {
      if (error instanceof SessionTooLargeError) throw error;
      this.count('write', 'error');
      throw new StoreUnavailableError(`session store (Redis): ${(error as Error).message}`);
    }
    // Never re-sent on renewal: the cookie lives until the session's end.
    const remainingSeconds = Math.max(1, Math.floor(ttlMs / 1000));
    const name = sessionCookieName(this.options.names);
    return { setCookies: sessionSetCookies(name, handle.value, remainingSeconds, attributesFor(this.options.attributes, requestSecure), previousNames), sealed: handle.value, chunks: 1 };
  }

  async open(value: string): Promise<SessionData | null | StoreUnavailable> {
    const id = this.handles.idOf(value);
    if (id === null) return null;
    const record = await this.readRecord(id, 'read');
    return record === STORE_UNAVAILABLE || record === null ? record : record.session;
  }

  async renew(value: string, stale: SessionData, renew: (current: SessionData) => Promise<Renewal>): Promise<RenewOutcome> {
    const id = this.handles.idOf(value);
    if (id === null) return { kind: 'gone' };
    const lockKey = `${this.options.keyPrefix}lock:${id}`;
    const token = randomBytes(16).toString('base64url');
    const deadline = this.now() + this.options.renewalWaitMs;
    for (;;) {
      let acquired: boolean;
      try {
        acquired = (await this.redis.set(lockKey, token, 'PX', this.options.leaseMs, 'NX')) === 'OK';
        this.count('lock', 'ok');
      } catch {
        this.count('lock', 'error');
        return { kind: STORE_UNAVAILABLE };
      }
      if (acquired) return this.renewHolding(id, lockKey, token, stale, renew);
      // Another replica is renewing: its result is read, the IdP is not asked twice.
      await delay(RENEWAL_POLL_MS);
      const current = await this.readRecord(id, 'renew');
      if (current === STORE_UNAVAILABLE) return { kind: STORE_UNAVAILABLE };
      if (current === null) return { kind: 'gone' };
      if (renewedSince(current.session, stale)) return { kind: 'current', session: current.session };
      if (this.now() > deadline) return { kind: 'not_renewed', renewal: { kind: 'failed', final: false } };
    }
  }

  private async renewHolding(id: string, lockKey: string, token: string, stale: SessionData, renew: (current: SessionData) => Promise<Renewal>): Promise<RenewOutcome> {
    // Renewed every third of the lease while the IdP answers: a slow IdP never frees the lock mid-refresh,
    // a crashed holder frees it after one lease.
    const keepLease = setInterval(() => {
      this.redis.eval(RENEW_LEASE, 1, lockKey, token, String(this.options.leaseMs)).catch(() => this.count('lock', 'error'));
    }, Math.max(100, Math.floor(this.options.leaseMs / 3)));
    try {
      // Read again under the lease: a renewal that finished just before it was taken is used, not repeated.
      const current = await this.readRecord(id, 'renew');
      if (current === STORE_UNAVAILABLE) return { kind: STORE_UNAVAILABLE };
      if (current === null) return { kind: 'gone' };
      if (renewedSince(current.session, stale)) return { kind: 'current', session: current.session };
      const renewal = await renew(current.session);
      // The version as stored, not as computed now: a cookie secret rotated since the write (a reload or a
      // restart with a new first secret) would compute another one and take the record for someone else's.
      const version = current.version;
      if (renewal.kind === 'rejected' || (renewal.kind === 'failed' && renewal.final)) {
        // Only the session that was refused: one renewed meanwhile elsewhere (with the token the IdP rotated to) stays.
        const deleted = await this.ifVersion(DELETE_IF_VERSION, id, version, []).catch(() => null);
        if (deleted === -1) return this.currentOr(id);
        if (deleted === 1) await Promise.all(current.indexes.map((index) => this.redis.srem(index, id))).catch(() => undefined);
        if (deleted === null) this.queueEnd(id);
        return { kind: 'not_renewed', renewal };
      }
      if (renewal.kind === 'failed') return { kind: 'not_renewed', renewal };
      const indexes = [...new Set([...current.indexes, ...this.indexesOf(renewal.owner, 0)])];
      const ttl = this.endOf(renewal.session.createdAt) - this.now();
      // Tried twice: the IdP has rotated the refresh token, and until it is stored only this replica has it.
      for (let attempt = 1; ; attempt++) {
        try {
          const written = await this.ifVersion(REPLACE_IF_VERSION, id, version, [await this.sealRecord(id, { session: renewal.session, indexes }, ttl), String(Math.max(1_000, Math.floor(ttl)))]);
          this.count('renew', 'ok');
          // Ended while the IdP answered: it stays ended.
          if (written === 0) return { kind: 'gone' };
          // Renewed elsewhere meanwhile (this replica's lease was lost): that session is the one kept.
          if (written === -1) return this.currentOr(id);
          // A renewed identity may bring new index names (a changed user id, a new IdP session).
          await this.addToIndexes(id, indexes.filter((index) => !current.indexes.includes(index)));
          break;
        } catch (error) {
          this.count('renew', 'error');
          if (error instanceof SessionTooLargeError) return { kind: 'not_renewed', renewal: { kind: 'failed', final: true } };
          if (attempt < 2) continue;
          this.deps.logger.warn('renewed session could not be stored; other replicas will find its refresh token spent', { error: (error as Error).message });
          break;
        }
      }
      return { kind: 'renewed', session: renewal.session, setCookies: [] };
    } finally {
      clearInterval(keepLease);
      // A release that fails (Redis away, or a user without EVAL) leaves the lease to expire: counted.
      this.redis.eval(RELEASE_LEASE, 1, lockKey, token).catch(() => this.count('lock', 'error'));
    }
  }

  async end(value: string): Promise<boolean> {
    const id = this.handles.idOf(value);
    if (id === null) return true;
    try {
      const record = await this.readRecord(id, 'end', true);
      await this.endById(id, record === null ? [] : record.indexes);
      return true;
    } catch {
      this.queueEnd(id);
      return false;
    }
  }

  revokeUser(userId: string): Promise<number> {
    return this.revokeIndex('u', userId.toLowerCase());
  }

  revokeSubject(issuer: string, subject: string): Promise<number> {
    return this.revokeIndex('sub', `${issuer}\n${subject}`);
  }

  revokeIdpSession(issuer: string, sid: string): Promise<number> {
    return this.revokeIndex('sid', `${issuer}\n${sid}`);
  }

  async firstUse(issuer: string, jti: string, ttlMs: number): Promise<boolean> {
    return (await this.redis.set(this.jtiKey(issuer, jti), '1', 'PX', Math.max(1, Math.ceil(ttlMs)), 'NX')) === 'OK';
  }

  /** Forgets a logout token's jti (its revocation failed: the IdP's retry must be taken). */
  async forgetUse(issuer: string, jti: string): Promise<void> {
    await this.redis.del(this.jtiKey(issuer, jti));
  }

  private jtiKey(issuer: string, jti: string): string {
    return `${this.options.keyPrefix}jti:${this.indexName(0, `${issuer}\n${jti}`)}`;
  }

  /** Ends every session in the index sets of `value` (one per current secret); throws when Redis fails. */
  private async revokeIndex(kind: 'u' | 'sub' | 'sid', value: string): Promise<number> {
    let ended = 0;
    try {
      for (let secret = 0; secret < this.handles.indexKeys.length; secret++) {
        const index = `${this.options.keyPrefix}${kind}:${this.indexName(secret, value)}`;
        // Only the ids handled leave the set: a login made meanwhile stays findable.
        for (const id of await this.redis.smembers(index)) {
          const record = await this.readRecord(id, 'revoke', true);
          if (record !== null) ended += await this.endById(id, record.indexes);
          await this.redis.srem(index, id);
        }
      }
      this.count('revoke', 'ok');
    } catch (error) {
      this.count('revoke', 'error');
      throw new StoreUnavailableError(`session store (Redis): ${(error as Error).message}`);
    }
    return ended;
  }

  /** Deletes a session and leaves its index sets; 1 when it still existed. */
  private async endById(id: string, indexes: readonly string[]): Promise<number> {
    const deleted = await this.redis.del(this.recordKey(id));
    await Promise.all(indexes.map((index) => this.redis.srem(index, id)));
    this.count('end', 'ok');
    return deleted;
  }

  private async addToIndexes(id: string, indexes: readonly string[]): Promise<void> {
    await Promise.all(indexes.map(async (index) => {
      await this.redis.sadd(index, id);
      // An index lives as long as the newest session in it can.
      await this.redis.pexpire(index, this.options.maxAgeMs);
    }));
  }

  private queueEnd(id: string): void {
    this.count('end', 'error');
    if (this.pendingEnds.size >= MAX_PENDING_ENDS) this.pendingEnds.delete(this.pendingEnds.values().next().value as string);
    this.pendingEnds.add(id);
    // Retried on reconnection and, for a command that failed on a live connection (a timeout), on a timer.
    this.retryTimer ??= setInterval(() => {
      if (this.pendingEnds.size === 0) {
        clearInterval(this.retryTimer);
        this.retryTimer = undefined;
      } else if (this.answering) {
        void this.retryPendingEnds();
      }
    }, PENDING_RETRY_MS).unref();
  }

  private retrying = false;

  private async retryPendingEnds(): Promise<void> {
    if (this.pendingEnds.size === 0 || this.retrying) return;
    this.retrying = true;
    try {
      await this.retryPendingEndsOnce();
    } finally {
      this.retrying = false;
    }
  }

  private async retryPendingEndsOnce(): Promise<void> {
    const ids = [...this.pendingEnds];
    let done = 0;
    for (const id of ids) {
      try {
        const record = await this.readRecord(id, 'end', true);
        await this.endById(id, record === null ? [] : record.indexes);
        this.pendingEnds.delete(id);
        done++;
      } catch {
        break;
      }
    }
    this.deps.logger.info('sign-outs made while the session store was unreachable are done', { done, left: this.pendingEnds.size });
  }

  private recordKey(id: string): string {
    return `${this.options.keyPrefix}s:${id}`;
  }

  /** HMAC of an index value under the secret at `secret` (0: the newest). */
  private indexName(secret: number, value: string): string {
    return createHmac('sha256', this.handles.indexKeys[secret]!).update(value).digest('base64url');
  }

  private indexesOf(owner: SessionOwner, secret: number): string[] {
    const p = this.options.keyPrefix;
    return [
      `${p}u:${this.indexName(secret, owner.userId.toLowerCase())}`,
      `${p}sub:${this.indexName(secret, `${owner.issuer}\n${owner.subject}`)}`,
      ...(owner.sid === undefined ? [] : [`${p}sid:${this.indexName(secret, `${owner.issuer}\n${owner.sid}`)}`]),
    ];
  }

  private async writeRecord(id: string, record: StoredRecord, ttlMs: number): Promise<void> {
    const ttl = Math.max(1_000, Math.floor(ttlMs));
    await this.redis.set(this.recordKey(id), await this.sealRecord(id, record, ttl), 'PX', ttl);
  }

  /** `<version>.<seal>`; the id is sealed in, so a record copied under another key (by anyone who can write to Redis) does not open. */
  private async sealRecord(id: string, record: StoredRecord, ttlMs: number): Promise<string> {
    const sealed = await this.sealer.seal({ i: id, d: record.session, x: record.indexes }, Math.ceil(Math.max(1_000, ttlMs) / 1000));
    if (sealed.length > MAX_RECORD_CHARS) throw new SessionTooLargeError(`a session of ${sealed.length} characters (more than ${MAX_RECORD_CHARS})`);
    return `${this.versionOf(record.session)}.${sealed}`;
  }

  /** Which renewal of a session this is: an HMAC of its refresh token and expiry (reveals neither). */
  private versionOf(session: SessionData): string {
    return createHmac('sha256', this.handles.indexKeys[0]!).update(`version\n${session.refreshToken ?? ''}\n${session.expiresAt}`).digest('base64url').slice(0, 16);
  }

  private async ifVersion(script: string, id: string, version: string, args: readonly string[]): Promise<number> {
    return Number(await this.redis.eval(script, 1, this.recordKey(id), version, ...args));
  }

  /** The session as stored now (after a lost race): current, gone, or unavailable. */
  private async currentOr(id: string): Promise<RenewOutcome> {
    const now = await this.readRecord(id, 'renew');
    if (now === STORE_UNAVAILABLE) return { kind: STORE_UNAVAILABLE };
    return now === null ? { kind: 'gone' } : { kind: 'current', session: now.session };
  }

  /** The record, null when absent or unreadable; STORE_UNAVAILABLE on a Redis failure (or throws, `throwOnError`). */
  private async readRecord(id: string, op: Op, throwOnError: true): Promise<ReadRecord | null>;
  private async readRecord(id: string, op: Op, throwOnError?: false): Promise<ReadRecord | null | StoreUnavailable>;
  private async readRecord(id: string, op: Op, throwOnError = false): Promise<ReadRecord | null | StoreUnavailable> {
    let raw: string | null;
    try {
      raw = await this.redis.get(this.recordKey(id));
      this.count(op, 'ok');
    } catch (error) {
      this.count(op, 'error');
      if (throwOnError) throw error;
      return STORE_UNAVAILABLE;
    }
    if (raw === null) return null;
    const dot = raw.indexOf('.');
    const data = dot === -1 ? null : await this.sealer.unseal(raw.slice(dot + 1), Math.ceil(this.options.maxAgeMs / 1000), MAX_RECORD_CHARS);
    if (data === null || data.i !== id || typeof data.d !== 'object' || data.d === null) return null;
    const session = sessionDataFrom(data.d as Record<string, unknown>);
    const indexes = Array.isArray(data.x) ? data.x.filter((x): x is string => typeof x === 'string' && x.startsWith(this.options.keyPrefix)) : [];
    return session === null ? null : { session, indexes, version: raw.slice(0, dot) };
  }

  private count(op: Op, result: 'ok' | 'error'): void {
    this.deps.metrics.storeOperations.inc({ op, result });
  }
}

/** The stored session is newer than the copy that was due: renewed by someone else. */
function renewedSince(current: SessionData, stale: SessionData): boolean {
  return current.refreshToken !== stale.refreshToken || current.expiresAt !== stale.expiresAt;
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
