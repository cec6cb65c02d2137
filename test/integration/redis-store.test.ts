/**
 * The Redis session store on its own, against a real redis-server: the renewal races two replicas can
 * run into, driven step by step. The IdP side of a renewal is the store's own callback (contract.ts:
 * renew), which the test answers when it chooses; everything else is the real store and a real Redis.
 */
import { createMetrics } from '../../src/metrics.js';
import { silentLogger } from '../../src/log.js';
import { parseConfig } from '../../src/config/load.js';
import { createSealer } from '../../src/session/seal.js';
import { SecretRing, secretsFromLines } from '../../src/session/secrets.js';
import type { Renewal, SessionData, SessionOwner } from '../../src/session-store/contract.js';
import { SessionTooLargeError } from '../../src/session-store/contract.js';
import { redisStoreFromConfig, type RedisSessionStore } from '../../src/session-store/redis-store.js';
import { startRedis, type RunningRedis } from '../support/redis.js';
import { pollUntil, tempFile } from '../support/service.js';

const SECRET = 'redis-store-unit-secret-0123456789abcdefghijkl';
const OWNER: SessionOwner = { userId: 'alice@example.com', issuer: 'https://idp.example.com', subject: 'u-alice', sid: 'sid-1' };

let redis: RunningRedis;
let replicaA: RedisSessionStore;
let replicaB: RedisSessionStore;

function replica(ring?: SecretRing): RedisSessionStore {
  const config = parseConfig({
    publicUrl: 'https://kubeflow.example.com',
    oidc: { issuer: OWNER.issuer, clientId: 'kubeflow' },
    session: { secretsFile: tempFile(SECRET), store: 'redis', redis: { url: redis.url, refreshLease: '1s' } },
  });
  const secrets = ring ?? secretsFromLines([SECRET]);
  const store = redisStoreFromConfig(config, createSealer(secrets), secrets, { metrics: createMetrics({ defaultMetrics: false }), logger: silentLogger });
  store.start();
  return store;
}

const session = (refreshToken: string, claims = ''): SessionData => ({
  idToken: `header.${claims}.signature`, addedClaims: {}, refreshToken, createdAt: Date.now(), expiresAt: Date.now() + 60_000,
});

/** A renewal the test answers later: how a slow IdP looks to the store. */
function heldRenewal() {
  let answer!: (renewal: Renewal) => void;
  let asked!: () => void;
  const wasAsked = new Promise<void>((resolve) => (asked = resolve));
  const callback = () => {
    asked();
    return new Promise<Renewal>((resolve) => (answer = resolve));
  };
  return { callback, wasAsked, answer: (renewal: Renewal) => answer(renewal) };
}

/**
 * A session issued by replica A and due, and A's renewal of it under way, its IdP answer held: what the
 * other replica sees while replica A waits for a slow IdP.
 */
async function renewalUnderWay(refreshToken: string) {
  const issued = await replicaA.issue(session(refreshToken), [], true, OWNER);
  const stale = (await replicaA.open(issued.sealed)) as SessionData;
  const slow = heldRenewal();
  const first = replicaA.renew(issued.sealed, stale, slow.callback);
  await slow.wasAsked;
  return { handle: issued.sealed, stale, first, answer: slow.answer };
}

/** Drops every renewal lease, as a failover that lost the lock key does. */
async function dropLeases(): Promise<void> {
  const leases = (await redis.command('KEYS', 'oidc-authz:lock:*')).split('\r\n').filter((line) => line.startsWith('oidc-authz:'));
  await redis.command('DEL', ...leases);
}

beforeAll(async () => {
  redis = await startRedis();
  replicaA = replica();
  replicaB = replica();
  await pollUntil(async () => replicaA.problem() === null && replicaB.problem() === null, (ready) => ready);
});

afterAll(async () => {
  await replicaA.close();
  await replicaB.close();
  await redis.stop();
});

describe('renewal races between replicas', () => {
  test('the lease lost mid-renewal (its key dropped, as by a failover): the IdP refuses the first replica, the session the second renewed stays', async () => {
    const { handle, stale, first, answer } = await renewalUnderWay('rt-1');
    // The lock key is gone: replica B takes its own lease and renews with the same token first.
    await dropLeases();
    const second = await replicaB.renew(handle, stale, async () => ({ kind: 'renewed', session: session('rt-2'), owner: OWNER }));
    expect(second.kind).toBe('renewed');
    // The rotating IdP refuses replica A's spent token.
    answer({ kind: 'rejected' });
    const outcome = await first;
    expect(outcome).toMatchObject({ kind: 'current', session: { refreshToken: 'rt-2' } });
    expect(await replicaB.open(handle)).toMatchObject({ refreshToken: 'rt-2' });
  });

  test('the lease lost mid-renewal, both renewed: the session written first is kept, the other replica takes it', async () => {
    const { handle, stale, first, answer } = await renewalUnderWay('rt-3');
    await dropLeases();
    expect((await replicaB.renew(handle, stale, async () => ({ kind: 'renewed', session: session('rt-4b'), owner: OWNER }))).kind).toBe('renewed');
    answer({ kind: 'renewed', session: session('rt-4a'), owner: OWNER });
    expect(await first).toMatchObject({ kind: 'current', session: { refreshToken: 'rt-4b' } });
    expect(await replicaA.open(handle)).toMatchObject({ refreshToken: 'rt-4b' });
  });

  test('a waiting replica takes the renewed session instead of asking the IdP', async () => {
    const { handle, stale, first, answer } = await renewalUnderWay('rt-5');
    let askedB = false;
    const second = replicaB.renew(handle, stale, async () => {
      askedB = true;
      return { kind: 'rejected' };
    });
    answer({ kind: 'renewed', session: session('rt-6'), owner: OWNER });
    expect(await first).toMatchObject({ kind: 'renewed' });
    expect(await second).toMatchObject({ kind: 'current', session: { refreshToken: 'rt-6' } });
    expect(askedB).toBe(false);
  });

  test('a session signed out while the IdP answers stays signed out', async () => {
    const { handle, first, answer } = await renewalUnderWay('rt-7');
    expect(await replicaB.end(handle)).toBe(true);
    answer({ kind: 'renewed', session: session('rt-8'), owner: OWNER });
    expect(await first).toEqual({ kind: 'gone' });
    expect(await replicaA.open(handle)).toBeNull();
  });
});

test('a session too large to keep is refused at login, not stored to be refused at every check', async () => {
  await expect(replicaA.issue(session('rt-9', 'x'.repeat(1_100_000)), [], true, OWNER)).rejects.toBeInstanceOf(SessionTooLargeError);
});

test('cookie secrets rotated (a reload with a new first secret): a session stored before renews, and its handle still opens', async () => {
  const NEW = 'redis-store-rotated-secret-abcdefghijklmnopqrstuvwx';
  const ring = new SecretRing(secretsFromLines([SECRET]));
  const store = replica(ring);
  try {
    await pollUntil(async () => store.problem() === null, (ready) => ready);
    const issued = await store.issue(session('rt-10'), [], true, OWNER);
    const stale = (await store.open(issued.sealed)) as SessionData;
    ring.replace(secretsFromLines([NEW, SECRET]));
    // The record's version was written under the old first secret: the renewal replaces it all the same.
    expect(await store.renew(issued.sealed, stale, async () => ({ kind: 'renewed', session: session('rt-11'), owner: OWNER }))).toMatchObject({ kind: 'renewed' });
    expect(await store.open(issued.sealed)).toMatchObject({ refreshToken: 'rt-11' });
    // New handles are signed with the new first secret; once the old one is dropped, the old handle is refused.
    const fresh = await store.issue(session('rt-12'), [], true, OWNER);
    ring.replace(secretsFromLines([NEW]));
    expect(await store.open(fresh.sealed)).toMatchObject({ refreshToken: 'rt-12' });
    expect(await store.open(issued.sealed)).toBeNull();
  } finally {
    await store.close();
  }
});
