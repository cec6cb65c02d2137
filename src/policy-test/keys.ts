/**
 * Token identities of a cases file are verified by the service's own verifier (authn/issuers.ts), with
 * the keys of the file's `jwks` in place of the issuers' JWKS and the clock at the file's `now`.
 */
import type { JSONWebKeySet } from 'jose';
import { bearerVerifierFor } from '../authn/issuers.js';
import { keySetOf, type KeySource } from '../authn/jwks.js';
import type { Config } from '../config/schema.js';
import { ANY_ISSUER, type CasesFile } from './cases.js';
import { networkTokenContext, type TokenCheckContext } from './token.js';

/** A fixed key set: never fetched, never refetched. */
export function fixedKeys(jwks: JSONWebKeySet, now: () => number): KeySource {
  const keySet = keySetOf(jwks, now());
  return { keys: () => keySet, refetchForUnknownKey: () => Promise.resolve(null) };
}

/** How a cases file's token identities are checked: its jwks and now, or the issuers' JWKS and the clock. */
export function tokenContextFor(config: Config, cases: Pick<CasesFile, 'jwks' | 'now'>): TokenCheckContext {
  const fixedNow = cases.now;
  const now = fixedNow === null ? Date.now : () => fixedNow;
  const jwks = cases.jwks;
  if (jwks === null) return networkTokenContext(config, now);
  const none: JSONWebKeySet = { keys: [] };
  const entryOf = (issuer: string) => jwks.get(issuer) ?? jwks.get(ANY_ISSUER);
  return {
    config,
    // An issuer the file gives no keys for has none: its tokens fail with unknown_key, never a fetch.
    verifier: bearerVerifierFor(config, (issuer) => fixedKeys(entryOf(issuer)?.keys ?? none, now), now),
    now,
    keysOf: (issuer) => {
      const entry = entryOf(issuer);
      return entry === undefined ? 'none: the cases file\'s jwks has no keys for this issuer' : `the cases file's jwks ${entry.file}`;
    },
  };
}
