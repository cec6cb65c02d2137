/**
 * Identity: who the caller is, derived once from verified claims and cached with them, so the hot
 * path only copies prepared header values. The mapping follows Kubeflow's conventions: user id from a
 * claim (default `email`), ordered regex transformers (first match wins), a prefix; groups from a claim.
 */
import type { Config, IdentityConfig, MachineIdentityConfig } from '../config/schema.js';
import { lookupClaim, parseClaimPath, type ClaimPath, type Claims } from './claims.js';

export interface Identity {
  readonly subject: string;
  readonly issuer: string;
  /**
   * The email, only when it counts as verified: `email_verified` true, or absent with the issuer's
   * emailVerifiedWhenAbsent; any email with identity.allowUnverifiedEmail.
   */
  readonly email: string | null;
  /** The value sent upstream in the user-id header. */
  readonly userId: string;
  readonly groups: readonly string[];
  readonly groupSet: ReadonlySet<string>;
  /** Comma-joined groups, as sent upstream. */
  readonly groupsHeaderValue: string;
  readonly claims: Claims;
  readonly via: 'bearer' | 'cookie';
  /** A machine: a token without a person in it (client credentials), mapped by machineIdentity. */
  readonly machine: boolean;
  /** The session's ID token (cookie sessions only), for identity.forwardIdToken. */
  readonly idToken?: string | undefined;
}

export type IdentityFailure = 'missing_user_id' | 'unverified_email' | 'invalid_user_id';
export type IdentityResult = { ok: true; identity: Identity } | { ok: false; reason: IdentityFailure };

type Transformer = { readonly match: RegExp; readonly replace: string };

export interface IdentityMapping {
  readonly userIdClaim: ClaimPath;
  readonly groupsClaim: ClaimPath;
  readonly userIdPrefix: string;
  readonly transformers: readonly Transformer[];
  readonly groupTransformers: readonly Transformer[];
  readonly allowUnverifiedEmail: boolean;
  /** An email without `email_verified` counts as verified (the issuer's emailVerifiedWhenAbsent). */
  readonly emailVerifiedWhenAbsent: boolean;
  /** A person's user id may not start with any of these (every issuer's machine prefix), so the two can never meet. */
  readonly reservedPrefixes: readonly string[];
  /** Tokens carrying the `when` claim are machines' and use `mapping` instead. */
  readonly machine: { readonly when: ClaimPath; readonly mapping: IdentityMapping } | null;
}

export interface MappingOverrides {
  readonly userIdClaim?: string | undefined;
  readonly groupsClaim?: string | undefined;
  readonly emailVerifiedWhenAbsent?: boolean | undefined;
  readonly machineIdentity?: MachineIdentityConfig | undefined;
}

const compileTransformers = (list: IdentityConfig['userIdTransformers']): Transformer[] =>
  list.map((t) => ({ match: new RegExp(t.match, 'u'), replace: t.replace }));

/** Every machine prefix a config defines: no person's user id may start with one, whatever its issuer. */
export function machinePrefixes(config: Pick<Config, 'oidc' | 'issuers'>): string[] {
  const configured = [config.oidc?.machineIdentity, ...config.issuers.map((i) => i.machineIdentity)];
  return configured.filter((m): m is MachineIdentityConfig => m !== undefined).map((m) => m.userIdPrefix);
}

/**
 * The identity mapping for tokens of one issuer: `overrides` are the issuer's own settings,
 * `reservedPrefixes` every machine prefix of the config (machinePrefixes), refused for people.
 */
export function compileIdentityMapping(config: IdentityConfig, overrides: MappingOverrides = {}, reservedPrefixes: readonly string[] = []): IdentityMapping {
  const groupsClaim = parseClaimPath(overrides.groupsClaim ?? config.groupsClaim);
  const groupTransformers = compileTransformers(config.groupTransformers);
  const emailVerifiedWhenAbsent = overrides.emailVerifiedWhenAbsent ?? false;
  const machineConfig = overrides.machineIdentity;
  const machine = machineConfig === undefined ? null : {
    when: parseClaimPath(machineConfig.when),
    mapping: {
      userIdClaim: parseClaimPath(machineConfig.userIdClaim ?? machineConfig.when),
      groupsClaim: machineConfig.groupsClaim === undefined ? groupsClaim : parseClaimPath(machineConfig.groupsClaim),
      userIdPrefix: machineConfig.userIdPrefix,
      // The user-id transformers rewrite people's emails; a machine's name is used as it is.
      transformers: [],
      groupTransformers,
      allowUnverifiedEmail: config.allowUnverifiedEmail,
      emailVerifiedWhenAbsent,
      reservedPrefixes: [],
      machine: null,
    },
  };
  return {
    userIdClaim: parseClaimPath(overrides.userIdClaim ?? config.userIdClaim),
    groupsClaim,
    userIdPrefix: config.userIdPrefix,
    transformers: compileTransformers(config.userIdTransformers),
    groupTransformers,
    allowUnverifiedEmail: config.allowUnverifiedEmail,
    emailVerifiedWhenAbsent,
    reservedPrefixes: machineConfig === undefined || reservedPrefixes.includes(machineConfig.userIdPrefix) ? reservedPrefixes : [...reservedPrefixes, machineConfig.userIdPrefix],
    machine,
  };
}

/** Header-safe: printable ASCII, no leading/trailing blanks. Anything else could split or forge headers. */
const SAFE_USER_ID = /^[\x21-\x7e](?:[\x20-\x7e]*[\x21-\x7e])?$/;
/** Groups are joined by ",", so a group containing one would smuggle in a second group. */
const SAFE_GROUP = /^[\x21-\x2b\x2d-\x7e](?:[\x20-\x2b\x2d-\x7e]*[\x21-\x2b\x2d-\x7e])?$/;
const MAX_USER_ID_LENGTH = 512;
const MAX_GROUPS = 1000;

export function buildIdentity(claims: Claims, tokenMapping: IdentityMapping, via: Identity['via']): IdentityResult {
  const machineKind = tokenMapping.machine;
  const isMachine = machineKind !== null && isNonEmptyString(lookupClaim(claims, machineKind.when));
  const mapping = isMachine ? machineKind.mapping : tokenMapping;
  const emailClaim = typeof claims.email === 'string' ? claims.email : null;
  const email = emailClaim !== null && (mapping.allowUnverifiedEmail || emailVerified(claims.email_verified, mapping.emailVerifiedWhenAbsent)) ? emailClaim : null;

  const rawUserId = lookupClaim(claims, mapping.userIdClaim);
  if (typeof rawUserId !== 'string' || rawUserId.length === 0) return { ok: false, reason: 'missing_user_id' };
  if (mapping.userIdClaim.source === 'email' && email === null) return { ok: false, reason: 'unverified_email' };

  let userId = rawUserId;
  for (const transformer of mapping.transformers) {
    if (transformer.match.test(userId)) {
      userId = userId.replace(transformer.match, transformer.replace);
      break;
    }
  }
  userId = mapping.userIdPrefix + userId;
  if (userId.length > MAX_USER_ID_LENGTH || !SAFE_USER_ID.test(userId)) return { ok: false, reason: 'invalid_user_id' };
  for (const reserved of mapping.reservedPrefixes) if (userId.startsWith(reserved)) return { ok: false, reason: 'invalid_user_id' };

  const groups = readGroups(lookupClaim(claims, mapping.groupsClaim), mapping.groupTransformers);
  return {
    ok: true,
    identity: {
      subject: typeof claims.sub === 'string' ? claims.sub : '',
      issuer: typeof claims.iss === 'string' ? claims.iss : '',
      email,
      userId,
      groups,
      groupSet: new Set(groups),
      groupsHeaderValue: groups.join(','),
      claims,
      via,
      machine: isMachine,
    },
  };
}

/**
 * Whether `email_verified` vouches for the email. Only true (or "true": Cognito sends strings) does;
 * absent (or null) counts as the issuer's emailVerifiedWhenAbsent says; false, "false" or anything else
 * does not.
 */
export function emailVerified(value: unknown, whenAbsent: boolean): boolean {
  if (value === true || value === 'true') return true;
  if (value === undefined || value === null) return whenAbsent;
  return false;
}

function isNonEmptyString(value: unknown): value is string {
  return typeof value === 'string' && value.length > 0;
}

/**
 * A list of strings, or one string; each name through the first matching transformer; names that are
 * unsafe (or empty) after that are dropped rather than passed on.
 */
function readGroups(value: unknown, transformers: readonly Transformer[]): string[] {
  const list = typeof value === 'string' ? [value] : Array.isArray(value) ? value : [];
  const groups = new Set<string>();
  for (const item of list) {
    if (typeof item !== 'string') continue;
    const name = transformers.length === 0 ? item : transformName(item, transformers);
    if (SAFE_GROUP.test(name)) groups.add(name);
    if (groups.size >= MAX_GROUPS) break;
  }
  return [...groups];
}

function transformName(name: string, transformers: readonly Transformer[]): string {
  for (const transformer of transformers) {
    if (transformer.match.test(name)) return name.replace(transformer.match, transformer.replace);
  }
  return name;
}
