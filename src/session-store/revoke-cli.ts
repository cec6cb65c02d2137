/**
 * `oidc-authz sessions revoke`: ends sessions kept in Redis, by user id, by subject or by the IdP's session
 * id, on every replica (each refuses them within session.redis.cacheFor). It needs what a replica needs to
 * reach them — the config, the Redis password and the cookie secrets — so whoever runs it has those: on
 * Kubernetes, `kubectl exec` into an oidc-authz pod (RBAC: pods/exec in its namespace). There is no HTTP
 * endpoint for it, so there is nothing to switch on or to guard.
 */
import { ConfigError } from '../config/load.js';
import type { Config } from '../config/schema.js';
import { silentLogger } from '../log.js';
import { createMetrics } from '../metrics.js';
import { createSealer } from '../session/seal.js';
import { readSecretsFile } from '../session/secrets.js';
import { redisStoreFromConfig } from './redis-store.js';

export type RevokeTarget =
  | { readonly kind: 'user'; readonly userId: string }
  | { readonly kind: 'subject'; readonly issuer: string; readonly subject: string }
  | { readonly kind: 'idp-session'; readonly issuer: string; readonly sid: string };

/** Ends the target's sessions; the number ended. */
export async function revokeSessions(config: Config, target: RevokeTarget): Promise<number> {
  if (config.session.store !== 'redis') throw new ConfigError('config', ['session.store: sessions can be revoked only when they are kept in Redis (session.store: redis); cookie sessions end at sign-out or revalidation (session.revalidateAfter)']);
  const secrets = readSecretsFile(config.session.secretsFile!);
  const store = redisStoreFromConfig(config, createSealer(secrets), secrets, { metrics: createMetrics({ defaultMetrics: false }), logger: silentLogger });
  try {
    await store.connected();
    switch (target.kind) {
      case 'user':
        return await store.revokeUser(target.userId);
      case 'subject':
        return await store.revokeSubject(target.issuer, target.subject);
      case 'idp-session':
        return await store.revokeIdpSession(target.issuer, target.sid);
    }
  } finally {
    await store.close();
  }
}
