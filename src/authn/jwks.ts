/**
 * Signing keys of one issuer: found by OIDC discovery or a configured `jwksUri`, fetched lazily on the
 * first token, refreshed in the background when older than `maxAge` (stale keys keep working while
 * the issuer is unreachable), and refetched on an unknown `kid` at most once per `cooldown` (within the
 * cooldown of a failed fetch an unknown `kid` is "keys unavailable", not "no such key").
 * Fetches are single-flight: a burst of tokens triggers one request.
 */
import { createLocalJWKSet, type JSONWebKeySet, type JWTVerifyGetKey } from 'jose';
import { discoveryUrl } from '../oidc/discovery.js';
import { EDGE_ATTRIBUTES, SPAN_NAMES } from '../tracing/contract.js';
import { traced } from '../tracing/edge.js';
import { SelectedKeys } from './sync-verify.js';

export interface JwksSettings {
  readonly maxAgeMs: number;
  readonly cooldownMs: number;
  readonly timeoutMs: number;
}

/** The issuer's keys could not be fetched and there are none cached to fall back on. */
export class KeysUnavailableError extends Error {
  constructor(readonly issuer: string, cause: unknown) {
    super(`keys of ${issuer} unavailable: ${cause instanceof Error ? cause.message : String(cause)}`);
    this.name = 'KeysUnavailableError';
  }
}

export interface KeySet {
  readonly getKey: JWTVerifyGetKey;
  readonly kids: ReadonlySet<string>;
  readonly fetchedAt: number;
  /** The keys getKey has returned, for synchronous verification of later tokens with the same alg and kid. */
  readonly selected: SelectedKeys;
}

/** A key set over `jwks`: jose selects and imports the keys; what it selects is remembered for sync-verify.ts. */
export function keySetOf(jwks: JSONWebKeySet, fetchedAt: number): KeySet {
  const local = createLocalJWKSet(jwks);
  const selected = new SelectedKeys();
  const getKey: JWTVerifyGetKey = async (header, token) => {
    const key = await local(header, token);
    selected.remember(header.alg, header.kid, key);
    return key;
  };
  const kids = new Set(jwks.keys.map((k) => k.kid).filter((k): k is string => typeof k === 'string'));
  return { getKey, kids, fetchedAt, selected };
}

const MAX_DOCUMENT_BYTES = 512 * 1024;

/** What bearer verification needs of an issuer's keys: IssuerKeys, or a fixed set (policy tests' JWKS file). */
export type KeySource = Pick<IssuerKeys, 'keys' | 'refetchForUnknownKey'>;

export class IssuerKeys {
  private current: KeySet | null = null;
  private inflight: Promise<KeySet> | null = null;
  private jwksUri: string | null;
  private lastFetchStartedAt = -Infinity;
  /** Why the last fetch failed; null once one succeeds. */
  private lastFetchError: KeysUnavailableError | null = null;

  constructor(
    readonly issuer: string,
    jwksUri: string | undefined,
    private readonly settings: JwksSettings,
    private readonly onFetch: (result: 'ok' | 'error', error?: unknown) => void = () => undefined,
    private readonly now: () => number = Date.now,
  ) {
    this.jwksUri = jwksUri ?? null;
  }

  /** Cached keys if any (refreshing them in the background when stale), else a fetch. */
  keys(): KeySet | Promise<KeySet> {
    const current = this.current;
    if (current === null) return this.load();
    if (this.now() - current.fetchedAt > this.settings.maxAgeMs) this.load().catch(() => undefined);
    return current;
  }

  /**
   * After a token named a key we do not have: refetch unless we did so within the cooldown.
   * Returns the new key set, or null when the cooldown forbids a refetch.
   */
  async refetchForUnknownKey(): Promise<KeySet | null> {
    if (this.inflight) return this.inflight;
    if (this.now() - this.lastFetchStartedAt < this.settings.cooldownMs) {
      // The last fetch failed: the key may be one the issuer published since, we could not ask. The
      // token is unverifiable for now (503), not invalid (401, which the token cache would remember).
      if (this.lastFetchError !== null) throw this.lastFetchError;
      return null;
    }
    return this.load();
  }

  private load(): Promise<KeySet> {
    if (this.inflight) return this.inflight;
    this.lastFetchStartedAt = this.now();
    // Traced (src/tracing) as a child of the check that needed the keys; a failure is the span's error.
    this.inflight = traced(SPAN_NAMES.jwksFetch, { [EDGE_ATTRIBUTES.issuer]: this.issuer }, () => this.fetchKeySet(), (keySet) => ({ result: 'ok', attributes: { [EDGE_ATTRIBUTES.keys]: keySet.kids.size } }))
      .then((keySet) => {
        this.current = keySet;
        this.lastFetchError = null;
        this.onFetch('ok');
        return keySet;
      })
      .catch((error: unknown) => {
        this.onFetch('error', error);
        this.lastFetchError = new KeysUnavailableError(this.issuer, error);
        throw this.lastFetchError;
      })
      .finally(() => {
        this.inflight = null;
      });
    return this.inflight;
  }

  private async fetchKeySet(): Promise<KeySet> {
    this.jwksUri ??= await this.discoverJwksUri();
    const jwks = await this.fetchJson(this.jwksUri);
    if (!isJwks(jwks)) throw new Error(`${this.jwksUri} is not a JWK set`);
    return keySetOf(jwks, this.now());
  }

  private async discoverJwksUri(): Promise<string> {
    const url = discoveryUrl(this.issuer);
    const document = await this.fetchJson(url);
    if (typeof document !== 'object' || document === null) throw new Error(`${url} is not a JSON object`);
    const { issuer, jwks_uri: jwksUri } = document as Record<string, unknown>;
    // OIDC Discovery §4.3: the document must name exactly the issuer we asked about.
    if (issuer !== this.issuer) throw new Error(`${url} names issuer ${JSON.stringify(issuer)}`);
    if (typeof jwksUri !== 'string' || !/^https?:\/\//.test(jwksUri)) throw new Error(`${url} has no usable jwks_uri`);
    return jwksUri;
  }

  private async fetchJson(url: string): Promise<unknown> {
    const response = await fetch(url, {
      headers: { accept: 'application/json, application/jwk-set+json' },
      redirect: 'error',
      signal: AbortSignal.timeout(this.settings.timeoutMs),
    });
    if (response.status !== 200) {
      await response.body?.cancel();
      throw new Error(`${url} answered ${response.status}`);
    }
    const text = await response.text();
    if (text.length > MAX_DOCUMENT_BYTES) throw new Error(`${url} sent more than ${MAX_DOCUMENT_BYTES} bytes`);
    try {
      return JSON.parse(text);
    } catch {
      throw new Error(`${url} did not send JSON`);
    }
  }
}

function isJwks(value: unknown): value is JSONWebKeySet {
  return typeof value === 'object' && value !== null && Array.isArray((value as JSONWebKeySet).keys);
}
