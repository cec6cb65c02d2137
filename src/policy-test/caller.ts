/**
 * Who a request explained or tested comes from, and the identity the service would make of given claims.
 */
import type { Claims } from '../authn/claims.js';
import { buildIdentity, compileDefaultMapping, compileIssuerMappings, type IdentityResult } from '../authn/identity.js';
import type { Config } from '../config/schema.js';

/**
 * Claims stand for a bearer token of their `iss` (mapped with that issuer's settings: the login issuer's,
 * another's, or the defaults for none), or with `session` for a browser session of the oidc issuer.
 */
export interface ClaimsCaller {
  readonly claims: Claims;
  readonly session: boolean;
}

/**
 * The identity the service makes of `claims`: a token's mapping is its issuer's (machineIdentity
 * included); a session's is the oidc issuer's for people only, as oidc/setup.ts wires it.
 * Null for a session without oidc in the config (there are no sessions then).
 */
export function identityFromClaims(config: Config, caller: ClaimsCaller): IdentityResult | null {
  const { claims, session } = caller;
  const mappings = compileIssuerMappings(config);
  if (session) {
    if (!config.oidc) return null;
    return buildIdentity(claims, { ...mappings.get(config.oidc.issuer)!, machine: null }, 'cookie');
  }
  const mapping = (typeof claims.iss === 'string' ? mappings.get(claims.iss) : undefined) ?? compileDefaultMapping(config);
  return buildIdentity(claims, mapping, 'bearer');
}
