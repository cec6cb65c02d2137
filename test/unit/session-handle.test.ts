import { createSessionHandles } from '../../src/session-store/handle.js';
import { secretsFromLines } from '../../src/session/secrets.js';

const OLD = 'old-cookie-secret-0123456789abcdefghijklmnop';
const NEW = 'new-cookie-secret-0123456789abcdefghijklmnop';

describe('session handles (session.store: redis)', () => {
  test('a handle is about 80 characters, opens to the id it was stored under, and no two are alike', () => {
    const handles = createSessionHandles(secretsFromLines([NEW]));
    const a = handles.create();
    const b = handles.create();
    expect(a.value.length).toBeLessThan(90);
    expect(handles.idOf(a.value)).toBe(a.id);
    expect(a.id).not.toBe(b.id);
    // The stored id is a hash of the random part: the key in Redis is not the cookie.
    expect(a.value).not.toContain(a.id);
  });

  test('rotation: handles signed with the old secret still open while it is listed, not after it is dropped', () => {
    const before = createSessionHandles(secretsFromLines([OLD])).create();
    const rotated = createSessionHandles(secretsFromLines([NEW, OLD]));
    expect(rotated.idOf(before.value)).toBe(before.id);
    expect(createSessionHandles(secretsFromLines([NEW])).idOf(before.value)).toBeNull();
    expect(rotated.indexKeys).toHaveLength(2);
  });

  test.each([
    ['one character of the random part changed', (v: string) => {
      const [version, secret, random, mac] = v.split('.') as [string, string, string, string];
      return [version, secret, `${random[0] === 'A' ? 'B' : 'A'}${random.slice(1)}`, mac].join('.');
    }],
    ['another secret id', (v: string) => v.replace(/^r1\.\d+/, 'r1.7')],
    ['the signature changed', (v: string) => `${v.slice(0, -1)}${v.endsWith('A') ? 'B' : 'A'}`],
    ['another version', (v: string) => v.replace(/^r1/, 'r2')],
    ['trailing junk', (v: string) => `${v}x`],
    ['a sealed cookie session', () => 'Fe26.2*1*abc~2'],
    ['empty', () => ''],
  ])('refuses %s', (_what, change) => {
    const handles = createSessionHandles(secretsFromLines([NEW]));
    expect(handles.idOf(change(handles.create().value))).toBeNull();
  });
});
