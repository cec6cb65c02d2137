/**
 * A bearer token checked exactly as the service checks it (the verifier of authn/issuers.ts: issuer,
 * audiences or authorized parties, algorithm allow-list, exp/nbf with bearer.clockSkew, identity
 * mapping), and when it fails, the reason code plus what in the token and the config caused it.
 * `explain --token` verifies against the issuers' real JWKS; `oidc-authz test` against a JWKS file.
 */
import { decodeJwt, decodeProtectedHeader, type ProtectedHeaderParameters } from 'jose';
import type { AuthResult } from '../authn/authenticate.js';
import type { BearerVerifier } from '../authn/bearer.js';
import { lookupClaim, type Claims } from '../authn/claims.js';
import { compileIssuerMappings, type Identity } from '../authn/identity.js';
import { createBearerVerifier } from '../authn/issuers.js';
import { discoveryUrl } from '../oidc/discovery.js';
import { ASYMMETRIC_ALGORITHMS, type Config } from '../config/schema.js';
import { silentLogger, type Logger } from '../log.js';
import { createMetrics } from '../metrics.js';

export type TokenCheck =
  | { readonly ok: true; readonly identity: Identity; /** iss, aud, alg, kid, expiry: what was checked. */ readonly facts: string }
  | {
      readonly ok: false;
      /** What the service's authenticator answers for this token. */
      readonly auth: Extract<AuthResult, { kind: 'invalid' | 'unavailable' }>;
      /** Why, in the token's and the config's terms (no claim values beyond protocol claims). */
      readonly detail: string;
    };

export interface TokenCheckContext {
  readonly config: Config;
  readonly verifier: BearerVerifier | null;
  /** The time the verifier uses. */
  readonly now: () => number;
  /** Where an issuer's keys came from, for an unknown kid ("https://…/jwks", "the cases file's jwks"). */
  readonly keysOf: (issuer: string) => string;
  /** Why an issuer's keys could not be had, when known. */
  readonly keysProblem?: (issuer: string) => string | undefined;
}

/**
 * The service's verifier for `config`, fetching the issuers' JWKS over the network as the service
 * does; the last fetch error per issuer is kept to explain a jwks_unavailable.
 */
export function networkTokenContext(config: Config, now: () => number = Date.now): TokenCheckContext {
  const problems = new Map<string, string>();
  // The verifier reports a failed fetch to its logger: kept, not printed, to explain a jwks_unavailable.
  const logger: Logger = {
    ...silentLogger,
    warn: (msg, fields) => {
      if (msg === 'jwks fetch failed' && typeof fields?.issuer === 'string') problems.set(fields.issuer, describeError(fields.error));
    },
  };
  const verifier = createBearerVerifier(config, createMetrics({ defaultMetrics: false }), logger, now);
  return {
    config,
    verifier,
    now,
    keysOf: (issuer) => jwksUriOf(config, issuer) ?? `found by discovery at ${discoveryUrl(issuer)}`,
    keysProblem: (issuer) => problems.get(issuer),
  };
}

/** A pasted `Authorization` value ("Bearer eyJ…") or the bare token, without surrounding blanks. */
export function bareToken(text: string): string {
  const trimmed = text.trim();
  return /^bearer\s+/i.test(trimmed) ? trimmed.replace(/^bearer\s+/i, '') : trimmed;
}

export async function checkToken(token: string, context: TokenCheckContext): Promise<TokenCheck> {
  const { verifier } = context;
  if (verifier === null) {
    return { ok: false, auth: { kind: 'invalid', reason: 'unknown_issuer' }, detail: 'the config trusts no issuer (neither oidc nor issuers is set)' };
  }
  const result = await verifier.verify(token);
  const decoded = decode(token);
  if (result.kind === 'identity') {
    return { ok: true, identity: result.identity, facts: facts(decoded) };
  }
  if (result.kind === 'unavailable') {
    const issuer = typeof decoded.claims?.iss === 'string' ? decoded.claims.iss : '';
    const problem = context.keysProblem?.(issuer);
    return { ok: false, auth: { kind: 'unavailable', reason: 'jwks_unavailable' }, detail: `the keys of ${issuer} (${context.keysOf(issuer)}) could not be fetched${problem ? `: ${problem}` : ''}` };
  }
  const auth = result.issuer === undefined ? { kind: 'invalid' as const, reason: result.reason } : { kind: 'invalid' as const, reason: result.reason, issuer: result.issuer };
  return { ok: false, auth, detail: diagnose(result.reason, token, decoded, context) };
}

interface Decoded {
  readonly header: ProtectedHeaderParameters | null;
  readonly claims: Claims | null;
}

/** The token's header and claims, unverified: only to say what was wrong with it. */
function decode(token: string): Decoded {
  let header: ProtectedHeaderParameters | null = null;
  let claims: Claims | null = null;
  try {
    header = decodeProtectedHeader(token);
  } catch {
    // Reported by the verifier as malformed_token.
  }
  try {
    claims = decodeJwt(token) as Claims;
  } catch {
    // Likewise.
  }
  return { header, claims };
}

function facts({ header, claims }: Decoded): string {
  const parts = [
    `iss ${claims?.iss ?? '?'}`,
    `aud ${JSON.stringify(claims?.aud ?? null)}`,
    ...(typeof claims?.azp === 'string' ? [`azp ${claims.azp}`] : []),
    `alg ${header?.alg ?? '?'}`,
    ...(typeof header?.kid === 'string' ? [`kid ${header.kid}`] : []),
    ...(typeof claims?.exp === 'number' ? [`expires ${isoTime(claims.exp * 1000)}`] : []),
  ];
  return parts.join('; ');
}

/** The service's settings for one issuer, as authn/issuers.ts derives them. */
interface IssuerSettings {
  readonly audiences: readonly string[];
  readonly authorizedParties: readonly string[];
  readonly algorithms: readonly string[];
}

function issuerSettings(config: Config, issuer: string): IssuerSettings | null {
  if (config.oidc?.issuer === issuer) {
    return { audiences: [config.oidc.clientId, ...config.oidc.audiences], authorizedParties: config.oidc.authorizedParties, algorithms: config.oidc.algorithms ?? ASYMMETRIC_ALGORITHMS };
  }
  const entry = config.issuers.find((candidate) => candidate.issuer === issuer);
  return entry === undefined ? null : { audiences: entry.audiences, authorizedParties: entry.authorizedParties, algorithms: entry.algorithms ?? ASYMMETRIC_ALGORITHMS };
}

function jwksUriOf(config: Config, issuer: string): string | undefined {
  return config.oidc?.issuer === issuer ? config.oidc.jwksUri : config.issuers.find((entry) => entry.issuer === issuer)?.jwksUri;
}

function configuredIssuers(config: Config): string[] {
  return [...(config.oidc ? [config.oidc.issuer] : []), ...config.issuers.map((entry) => entry.issuer)];
}

/** What made the verifier answer `reason`, from the unverified token and the issuer's settings. */
function diagnose(reason: string, token: string, { header, claims }: Decoded, context: TokenCheckContext): string {
  const { config } = context;
  const iss = typeof claims?.iss === 'string' ? claims.iss : undefined;
  const settings = iss === undefined ? null : issuerSettings(config, iss);
  const skew = `bearer.clockSkew ${config.bearer.clockSkew / 1000} s`;
  const now = isoTime(context.now());
  switch (reason) {
    case 'malformed_token':
      return header === null || claims === null
        ? 'not a JWT: a compact JWS is three base64url parts (header.payload.signature) whose header and payload are JSON'
        : 'the token is not a well-formed JWS';
    case 'token_too_large':
      return `${Buffer.byteLength(token)} bytes; bearer.maxTokenBytes is ${config.bearer.maxTokenBytes}`;
    case 'unknown_issuer':
      return `${iss === undefined ? 'the token has no iss claim' : `iss ${JSON.stringify(iss)} is not a configured issuer`} (configured: ${configuredIssuers(config).join(', ') || 'none'}; iss must match exactly, trailing "/" included)`;
    case 'disallowed_algorithm':
      return `alg ${JSON.stringify(header?.alg ?? null)} is not one of the issuer's algorithms (${(settings?.algorithms ?? ASYMMETRIC_ALGORITHMS).join(', ')})`;
    case 'disallowed_header': {
      const named = (['jku', 'x5u', 'jwk'] as const).filter((name) => header?.[name] !== undefined);
      return `the header carries ${named.join(', ')}: keys come from the issuer's JWKS only, never from the token`;
    }
    case 'unknown_key':
      return `kid ${JSON.stringify(header?.kid ?? null)} is not among the issuer's keys (${context.keysOf(iss ?? '')})`;
    case 'bad_signature':
      return `the signature does not verify with the issuer's key ${JSON.stringify(header?.kid ?? null)} (${context.keysOf(iss ?? '')})`;
    case 'token_expired':
      return `exp ${timeClaim(claims?.exp)} is more than ${skew} before now (${now})`;
    case 'token_not_yet_valid':
      return `nbf ${timeClaim(claims?.nbf)} is more than ${skew} after now (${now})`;
    case 'missing_claim':
      return 'the token has no exp claim (required: tokens without an expiry are refused)';
    case 'wrong_audience': {
      const azp = typeof claims?.azp === 'string' ? `, azp ${JSON.stringify(claims.azp)}` : '';
      const parties = settings !== null && settings.authorizedParties.length > 0 ? ` or authorized parties (azp) ${JSON.stringify(settings.authorizedParties)}` : '';
      return `aud ${JSON.stringify(claims?.aud ?? null)}${azp}: not one of the issuer's audiences ${JSON.stringify(settings?.audiences ?? [])}${parties}`;
    }
    case 'missing_user_id':
    case 'unverified_email':
    case 'invalid_user_id':
      return iss === undefined || claims === null ? reason : diagnoseIdentity(reason, config, iss, claims);
    default:
      return 'a registered claim (iss, iat, nbf, exp, aud) has a value of the wrong type';
  }
}

/** Which claim the user id was to come from, and why it was refused. */
function diagnoseIdentity(reason: string, config: Config, iss: string, claims: Claims): string {
  const tokenMapping = compileIssuerMappings(config).get(iss);
  if (tokenMapping === undefined) return reason;
  const machine = tokenMapping.machine !== null && typeof lookupClaim(claims, tokenMapping.machine.when) === 'string' ? tokenMapping.machine : null;
  const mapping = machine?.mapping ?? tokenMapping;
  const who = machine === null ? 'the user id' : `a machine's user id (machineIdentity, as the token carries ${machine.when.source})`;
  switch (reason) {
    case 'missing_user_id':
      return `${who} comes from claim ${mapping.userIdClaim.source}, which the token lacks or leaves empty`;
    case 'unverified_email': {
      const verified = claims.email_verified;
      return `${who} comes from email, which counts only when verified: email_verified is ${verified === undefined ? `absent and the issuer's emailVerifiedWhenAbsent is ${mapping.emailVerifiedWhenAbsent}` : JSON.stringify(verified)}`;
    }
    default: {
      const start = mapping.userIdMustStartWith === '' ? '' : ` must start with ${JSON.stringify(mapping.userIdMustStartWith)} (userIdMustStartWith),`;
      return `${who} from claim ${mapping.userIdClaim.source}${start} must not start another issuer's user-id space, and must be printable ASCII without blanks at either end (at most 512 characters)`;
    }
  }
}

function timeClaim(value: unknown): string {
  return typeof value === 'number' ? isoTime(value * 1000) : JSON.stringify(value ?? null);
}

function isoTime(ms: number): string {
  return Number.isFinite(ms) && Math.abs(ms) < 8.64e15 ? new Date(ms).toISOString().replace('.000Z', 'Z') : String(ms);
}

/** An error's message and, for Node's fetch, its cause's (the message alone is "fetch failed"). */
function describeError(error: unknown): string {
  if (!(error instanceof Error)) return String(error);
  const cause = error.cause as { code?: unknown; message?: unknown } | undefined;
  if (cause === undefined) return error.message;
  const causeText = typeof cause.message === 'string' && cause.message !== '' ? cause.message : String(cause.code ?? cause);
  return `${error.message}: ${causeText}`;
}
