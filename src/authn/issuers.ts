/**
 * Builds the bearer verifier from config: the OIDC issuer (its ID tokens, audience = client id) and
 * every entry of `issuers` (e.g. the Kubernetes service-account issuer for machine-to-machine calls).
 */
import { ASYMMETRIC_ALGORITHMS, type Config } from '../config/schema.js';
import type { Logger } from '../log.js';
import type { Metrics } from '../metrics.js';
import { BearerVerifier, type TrustedIssuer } from './bearer.js';
import { compileIssuerMappings } from './identity.js';
import { IssuerKeys, type KeySource } from './jwks.js';

/** Where an issuer's signing keys come from, given its URL and configured jwksUri. */
export type KeysFor = (issuer: string, jwksUri: string | undefined) => KeySource;

export function createBearerVerifier(config: Config, metrics: Metrics, logger: Logger, now: () => number = Date.now): BearerVerifier | null {
  const settings = { maxAgeMs: config.jwks.maxAge, cooldownMs: config.jwks.cooldown, timeoutMs: config.jwks.timeout };
  const keysFor: KeysFor = (issuer, jwksUri) =>
    new IssuerKeys(issuer, jwksUri, settings, (result, error) => {
      metrics.jwksFetches.inc({ issuer, result });
      if (result === 'error') logger.warn('jwks fetch failed', { issuer, error });
      else logger.debug('jwks fetched', { issuer });
    }, now);
  return bearerVerifierFor(config, keysFor, now);
}

/**
 * The verifier the service uses for this config (issuers, audiences, algorithms, clock skew, identity
 * mapping), with keys from `keysFor`: `oidc-authz test` verifies its cases' tokens against a JWKS file.
 */
export function bearerVerifierFor(config: Config, keysFor: KeysFor, now: () => number = Date.now): BearerVerifier | null {
  const trusted: TrustedIssuer[] = [];
  const mappings = compileIssuerMappings(config);
  if (config.oidc) {
    trusted.push({
      issuer: config.oidc.issuer,
      audiences: [config.oidc.clientId, ...config.oidc.audiences],
      authorizedParties: config.oidc.authorizedParties,
      algorithms: config.oidc.algorithms ?? [...ASYMMETRIC_ALGORITHMS],
      keys: keysFor(config.oidc.issuer, config.oidc.jwksUri),
      mapping: mappings.get(config.oidc.issuer)!,
    });
  }
  for (const entry of config.issuers) {
    trusted.push({
      issuer: entry.issuer,
      audiences: entry.audiences,
      authorizedParties: entry.authorizedParties,
      algorithms: entry.algorithms ?? [...ASYMMETRIC_ALGORITHMS],
      keys: keysFor(entry.issuer, entry.jwksUri),
      mapping: mappings.get(entry.issuer)!,
    });
  }
  if (trusted.length === 0) return null;
  return new BearerVerifier(trusted, {
    clockSkewMs: config.bearer.clockSkew,
    maxTokenBytes: config.bearer.maxTokenBytes,
    cacheMaxEntries: config.bearer.cacheMaxEntries,
    maxCacheMs: config.jwks.maxAge,
  }, now);
}
