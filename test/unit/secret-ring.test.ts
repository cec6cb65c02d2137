/**
 * The secret ring (hot reload of session.secretsFile): one list replaced whole; sealers and Redis handle
 * keys built on it follow each replace — seal with the first secret, open with any listed one.
 */
import { createSealer } from '../../src/session/seal.js';
import { SecretRing, sameSecrets, secretsFromLines, SecretsError } from '../../src/session/secrets.js';
import { createSessionHandles } from '../../src/session-store/handle.js';

const OLD = 'old-ring-secret-0123456789abcdefghijklmnopq';
const NEW = 'new-ring-secret-0123456789abcdefghijklmnopq';
const data = { idToken: 'h.p.s', refreshToken: null, createdAt: 1, expiresAt: 2 };
/** The secret id a seal names (Iron's second component). */
const sealedWith = (sealed: string) => sealed.split('*')[1];

describe('SecretRing', () => {
  test('a sealer on the ring seals with the current first secret and opens with any current one', async () => {
    const ring = new SecretRing(secretsFromLines([OLD]));
    const sealer = createSealer(ring);
    const before = await sealer.seal(data, 60);

    ring.replace(secretsFromLines([NEW, OLD]));
    const after = await sealer.seal(data, 60);
    expect(sealedWith(after)).not.toBe(sealedWith(before));
    expect(sealedWith(after)).toBe(sealedWith(await createSealer(secretsFromLines([NEW])).seal(data, 60)));
    await expect(sealer.unseal(before, 60)).resolves.toEqual(data);
    await expect(sealer.unseal(after, 60)).resolves.toEqual(data);

    ring.replace(secretsFromLines([NEW]));
    await expect(sealer.unseal(before, 60)).resolves.toBeNull();
    await expect(sealer.unseal(after, 60)).resolves.toEqual(data);
  });

  test('Redis handles on the ring: new handles signed with the new first secret, old ones open while their secret is listed', () => {
    const ring = new SecretRing(secretsFromLines([OLD]));
    const handles = createSessionHandles(ring);
    const before = handles.create();
    expect(handles.indexKeys).toHaveLength(1);

    ring.replace(secretsFromLines([NEW, OLD]));
    const after = handles.create();
    expect(after.value.split('.')[1]).not.toBe(before.value.split('.')[1]);
    expect(handles.idOf(before.value)).toBe(before.id);
    expect(handles.idOf(after.value)).toBe(after.id);
    // Index names are written under the newest secret and looked up under each.
    expect(handles.indexKeys).toHaveLength(2);
    expect(handles.indexKeys[0]).toEqual(createSessionHandles(secretsFromLines([NEW])).indexKeys[0]);

    ring.replace(secretsFromLines([NEW]));
    expect(handles.idOf(before.value)).toBeNull();
    expect(handles.idOf(after.value)).toBe(after.id);
  });

  test('a bad secrets file never reaches the ring: secretsFromLines refuses it, the ring keeps its list', () => {
    const ring = new SecretRing(secretsFromLines([OLD]));
    const running = ring.current;
    expect(() => ring.replace(secretsFromLines([NEW, 'too-short']))).toThrow(SecretsError);
    expect(ring.current).toBe(running);
  });

  test('sameSecrets: same list in the same order only', () => {
    expect(sameSecrets(secretsFromLines([NEW, OLD]), secretsFromLines(['# comment', NEW, '', OLD]))).toBe(true);
    expect(sameSecrets(secretsFromLines([NEW, OLD]), secretsFromLines([OLD, NEW]))).toBe(false);
    expect(sameSecrets(secretsFromLines([NEW, OLD]), secretsFromLines([NEW]))).toBe(false);
  });
});
