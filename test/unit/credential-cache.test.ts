/**
 * The caches of the check's hot path (src/cache.ts) and the per-policy route memory (src/check/route.ts):
 * a hit is only ever the credential's (or route's) own answer.
 */
import { CredentialCache, ExpiringLru, REFUSAL_KEPT_CHARS } from '../../src/cache.js';
import { compilePolicy } from '../../src/policy/rules.js';
import { MAX_ROUTES, rememberedRoute, routeOf } from '../../src/check/route.js';
import { parseConfig } from '../../src/config/load.js';

const NOW = 1_000_000;
const tail = 'x'.repeat(64);

describe('CredentialCache', () => {
  test('a hit needs the whole credential: two that end alike never get each other\'s answer', () => {
    const cache = new CredentialCache<string>(10, true);
    cache.set(`alice.${tail}`, 'alice', NOW + 1000, true);
    expect(cache.get(`alice.${tail}`, NOW)).toBe('alice');
    expect(cache.get(`mallory.${tail}`, NOW)).toBeUndefined();
    // The later one replaces the earlier (one entry per ending): a miss for alice, never mallory's answer.
    cache.set(`mallory.${tail}`, 'mallory', NOW + 1000, true);
    expect(cache.get(`alice.${tail}`, NOW)).toBeUndefined();
    expect(cache.get(`mallory.${tail}`, NOW)).toBe('mallory');
  });

  test('refusals are found again by the same credential only, a long one by its digest', () => {
    const cache = new CredentialCache<string>(10, true);
    cache.set(`forged-1.${tail}`, 'refused', NOW + 1000, false);
    expect(cache.get(`forged-1.${tail}`, NOW)).toBe('refused');
    expect(cache.get(`forged-2.${tail}`, NOW)).toBeUndefined();
    expect(cache.get('short', NOW)).toBeUndefined();
    const long = (c: string) => `${c.repeat(REFUSAL_KEPT_CHARS)}.${tail}`;
    cache.set(long('a'), 'refused long', NOW + 1000, false);
    expect(cache.get(long('a'), NOW)).toBe('refused long');
    expect(cache.get(long('b'), NOW)).toBeUndefined();
  });

  test('expiry and delete: an expired entry is gone; delete removes only the credential\'s own entry', () => {
    const cache = new CredentialCache<string>(10, true);
    cache.set('token-a', 'a', NOW + 10, true);
    expect(cache.get('token-a', NOW + 10)).toBeUndefined();
    cache.set(`one.${tail}`, 'one', NOW + 1000, true);
    cache.delete(`two.${tail}`, NOW);
    expect(cache.get(`one.${tail}`, NOW)).toBe('one');
    cache.delete(`one.${tail}`, NOW);
    expect(cache.get(`one.${tail}`, NOW)).toBeUndefined();
    expect(cache.size).toBe(0);
  });
});

describe('ExpiringLru: bounded, and an entry in use is never the one evicted', () => {
  test('small caches behave as an exact LRU', () => {
    const lru = new ExpiringLru<number>(2);
    lru.set('a', 1, NOW + 1000);
    lru.set('b', 2, NOW + 1000);
    expect(lru.get('a', NOW)).toBe(1);
    lru.set('c', 3, NOW + 1000);
    expect(lru.get('b', NOW)).toBeUndefined();
    expect(lru.get('a', NOW)).toBe(1);
    expect(lru.size).toBe(2);
  });

  test('a large cache: a key read while others stream through survives many times the capacity of insertions', () => {
    const lru = new ExpiringLru<number>(1000);
    lru.set('hot', 0, NOW + 1000);
    for (let i = 0; i < 10_000; i++) {
      lru.set(`cold-${i}`, i, NOW + 1000);
      if (i % 100 === 0) expect(lru.get('hot', NOW)).toBe(0);
    }
    expect(lru.get('hot', NOW)).toBe(0);
    expect(lru.get('cold-0', NOW)).toBeUndefined();
    expect(lru.size).toBe(1000);
  });
});

describe('route memory: the same route as computing it, for every spelling, and bounded', () => {
  const policy = compilePolicy(parseConfig({
    rules: [
      { name: 'public', paths: ['/static/**'], allow: 'anonymous' },
      { name: 'ws', hosts: ['{ws}.example.org'], paths: ['/workspaces/{team}/**'], methods: ['GET'], allow: { groups: ['{team}'] } },
      { name: 'rest', paths: ['/**'], allow: 'authenticated' },
    ],
  }));

  test.each([
    ['GET', 'kubeflow.example.com', '/static/app.js'],
    ['GET', 'alice.example.org', '/workspaces/team-a/x'],
    ['POST', 'alice.example.org', '/workspaces/team-a/x'],
    ['GET', 'Alice.Example.org.:443', '/workspaces//team-a/%78'],
    ['GET', 'kubeflow.example.com', '/a/../admin'],
    ['GET', 'kubeflow.example.com', '/a;b'],
    ['GET', 'bad host', '/'],
    ['GET', '', '/'],
  ])('%s %s %s', (method, host, path) => {
    const first = rememberedRoute(policy, method, host, path);
    expect(first).toEqual(routeOf(policy, method, host, path));
    expect(rememberedRoute(policy, method, host, path)).toBe(first);
  });

  test('a flood of distinct paths starts the memory over instead of growing it; long paths are never kept', () => {
    const first = rememberedRoute(policy, 'GET', 'kubeflow.example.com', '/kept');
    for (let i = 0; i < MAX_ROUTES; i++) rememberedRoute(policy, 'GET', 'kubeflow.example.com', `/flood/${i}`);
    const again = rememberedRoute(policy, 'GET', 'kubeflow.example.com', '/kept');
    expect(again).not.toBe(first);
    expect(again).toEqual(first);
    const long = `/${'l'.repeat(300)}`;
    expect(rememberedRoute(policy, 'GET', 'kubeflow.example.com', long)).not.toBe(rememberedRoute(policy, 'GET', 'kubeflow.example.com', long));
  });

  test('each policy has its own memory: a reloaded policy never answers with the old one\'s rules', () => {
    const reloaded = compilePolicy(parseConfig({ rules: [{ name: 'only', paths: ['/**'], allow: 'deny' }] }));
    const before = rememberedRoute(policy, 'GET', 'kubeflow.example.com', '/static/app.js');
    const after = rememberedRoute(reloaded, 'GET', 'kubeflow.example.com', '/static/app.js');
    expect(before.ok && before.match.rule.name).toBe('public');
    expect(after.ok && after.match.rule.name).toBe('only');
  });
});
