/**
 * Builds the bearer verifier from config: the OIDC issuer (its ID tokens, audience = client id) and
 * every entry of `issuers` (e.g. the Kubernetes service-account issuer for machine-to-machine calls).
 * A hot reload builds a new verifier (new settings, an empty token cache) but keeps each issuer's keys
 * when its key source did not change, so a reload never makes every replica fetch every JWKS again.
 * Issuers with `introspection` get an Introspector (introspection.ts); its client secret file is read
 * when the verifier is built (start-up, and a reload that changes the bearer settings), never logged.
 */
import { readFileSync } from 'node:fs';
import { ASYMMETRIC_ALGORITHMS, takesOpaqueTokens, type Config, type IntrospectionConfig } from '../config/schema.js';
import type { Logger } from '../log.js';
import type { Metrics } from '../metrics.js';
import { BearerVerifier, type TrustedIssuer } from './bearer.js';
import { compileIssuerMappings } from './identity.js';
import { Introspector } from './introspection.js';
import { IssuerKeys, type KeySource } from './jwks.js';

/** Where an issuer's signing keys come from, given its URL and configured jwksUri. */
export type KeysFor = (issuer: string, jwksUri: string | undefined) => KeySource;
/** The introspector of an issuer with introspection settings; absent (policy tests): tokens are judged offline. */
export type IntrospectorFor = (issuer: string, settings: IntrospectionConfig, opaqueTokens: boolean) => Introspector;

export interface BearerSetup {
  readonly verifier: BearerVerifier | null;
  /** Each issuer's keys, by keySourceOf: what the next reload may keep. */
  readonly keys: ReadonlyMap<string, IssuerKeys>;
}

/** Where an issuer's keys come from: the same issuer and jwksUri are the same keys (jwks.* settings need a restart). */
export function keySourceOf(issuer: string, jwksUri: string | undefined): string {
  return `${issuer} ${jwksUri ?? '(discovery)'}`;
}

/**
 * A verifier with live JWKS but without introspection (`oidc-authz explain --token`): explaining a token
 * needs no client secret and never asks the IdP about it.
 */
export function createBearerVerifier(config: Config, metrics: Metrics, logger: Logger, now: () => number = Date.now): BearerVerifier | null {
  return buildBearer(config, metrics, logger, now, new Map(), false).verifier;
}

/**
 * `running`: the keys of the verifier in use (hot reload), kept for issuers whose key source is unchanged.
 * `introspect`: issuers' introspection settings are applied (their client secret files read).
 */
export function buildBearer(config: Config, metrics: Metrics, logger: Logger, now: () => number = Date.now, running: ReadonlyMap<string, IssuerKeys> = new Map(), introspect = true): BearerSetup {
  const settings = { maxAgeMs: config.jwks.maxAge, cooldownMs: config.jwks.cooldown, timeoutMs: config.jwks.timeout };
  const keys = new Map<string, IssuerKeys>();
  const keysFor: KeysFor = (issuer, jwksUri) => {
    const source = keySourceOf(issuer, jwksUri);
    const issuerKeys = running.get(source) ?? new IssuerKeys(issuer, jwksUri, settings, (result, error) => {
      metrics.jwksFetches.inc({ issuer, result });
      if (result === 'error') logger.warn('jwks fetch failed', { issuer, error });
      else logger.debug('jwks fetched', { issuer });
    }, now);
    keys.set(source, issuerKeys);
    return issuerKeys;
  };
  const introspectorFor: IntrospectorFor = (issuer, settings, opaqueTokens) => new Introspector({
    issuer,
    endpoint: settings.endpoint,
    clientId: settings.clientId,
    clientSecret: readClientSecret(settings.clientSecretFile),
    timeoutMs: settings.timeout,
    cacheForMs: settings.cacheFor,
    inactiveCacheForMs: settings.inactiveCacheFor,
    unavailableForMs: settings.unavailableFor,
    opaqueTokens,
    jwt: settings.jwt,
  }, (result, error) => {
    metrics.introspections.inc({ issuer, result });
    if (result === 'error') logger.warn('introspection failed', { issuer, error });
  }, now);
  return { verifier: bearerVerifierFor(config, keysFor, now, introspect ? introspectorFor : undefined), keys };
}

/**
 * The verifier the service uses for this config (issuers, audiences, algorithms, clock skew, identity
 * mapping), with keys from `keysFor`: `oidc-authz test` verifies its cases' tokens against a JWKS file.
 */
export function bearerVerifierFor(config: Config, keysFor: KeysFor, now: () => number = Date.now, introspectorFor?: IntrospectorFor): BearerVerifier | null {
  const introspection = (issuer: string, settings: IntrospectionConfig | undefined) =>
    settings === undefined || introspectorFor === undefined ? undefined : introspectorFor(issuer, settings, takesOpaqueTokens(config, settings));
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
      introspection: introspection(config.oidc.issuer, config.oidc.introspection),
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
      introspection: introspection(entry.issuer, entry.introspection),
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

/** The first line of a client secret file; an error names the file, never its content. */
function readClientSecret(file: string): string {
  let secret: string;
  try {
    secret = readFileSync(file, 'utf8').split(/\r?\n/)[0]!.trim();
  } catch (error) {
    throw new Error(`introspection.clientSecretFile ${file} cannot be read: ${(error as NodeJS.ErrnoException).code ?? 'error'}`, { cause: error });
  }
  if (secret.length === 0) throw new Error(`introspection.clientSecretFile ${file} is empty`);
  return secret;
}
