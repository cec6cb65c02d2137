/**
 * Sealing with iron-session's Iron format (AES-256-CBC + HMAC-SHA256 over WebCrypto): a seal is
 * authenticated before it is decrypted or parsed, and carries its own expiry.
 */
import { sealData, unsealData } from 'iron-session';
import type { SealingSecrets } from './secrets.js';

export interface Sealer {
  seal(data: Record<string, unknown>, ttlSeconds: number): Promise<string>;
  /** The data, or null when the seal is forged, tampered, expired or from an unknown secret. */
  unseal(sealed: string, ttlSeconds: number): Promise<Record<string, unknown> | null>;
}

export function createSealer(secrets: SealingSecrets): Sealer {
  return {
    seal: (data, ttlSeconds) => sealData(data, { password: secrets.seal, ttl: ttlSeconds }),
    async unseal(sealed, ttlSeconds) {
      try {
        const data = await unsealData<Record<string, unknown>>(sealed, { password: secrets.unseal, ttl: ttlSeconds });
        return typeof data === 'object' && data !== null && Object.keys(data).length > 0 ? data : null;
      } catch {
        return null;
      }
    },
  };
}
