/**
 * Sealing with iron-session's Iron format (AES-256-CBC + HMAC-SHA256 over WebCrypto): a seal is
 * authenticated before it is decrypted or parsed, and carries its own expiry.
 */
import { sealData, unsealData } from 'iron-session';
import { secretSource, type SealingSecrets, type SecretSource } from './secrets.js';

export interface Sealer {
  seal(data: Record<string, unknown>, ttlSeconds: number): Promise<string>;
  /** The data, or null when the seal is forged, tampered, expired, from an unknown secret or longer than `maxLength`. */
  unseal(sealed: string, ttlSeconds: number, maxLength?: number): Promise<Record<string, unknown> | null>;
}

/**
 * Exactly what iron-session writes: an Iron seal plus its "~2" version suffix. iron-session ignores
 * anything after the version digit, so without this check "<seal>~2junk" would open like the seal and
 * let one session take endless spellings (each a cache miss and an unseal).
 */
const SEAL_SHAPE = /^Fe26\.2\*[A-Za-z0-9_*-]+~2$/;

/**
 * `secrets`: a fixed set, or a ring (hot reload) read at each seal and unseal, so a rotation reaches every
 * sealer at once: the login's transaction cookies, the sign-out hand-over and sessions in Redis.
 */
export function createSealer(secrets: SealingSecrets | SecretSource): Sealer {
  const source = secretSource(secrets);
  return {
    seal: (data, ttlSeconds) => sealData(data, { password: source.current.seal, ttl: ttlSeconds }),
    // 64 KiB: more than any cookie header can carry; a session kept in Redis may be larger.
    async unseal(sealed, ttlSeconds, maxLength = 64 * 1024) {
      if (sealed.length > maxLength || !SEAL_SHAPE.test(sealed)) return null;
      try {
        const data = await unsealData<Record<string, unknown>>(sealed, { password: source.current.unseal, ttl: ttlSeconds });
        return typeof data === 'object' && data !== null && Object.keys(data).length > 0 ? data : null;
      } catch {
        return null;
      }
    },
  };
}
