/**
 * Identity: who the caller is, derived once from verified claims and cached with them, so the hot
 * path only copies prepared header values. The mapping follows Kubeflow's conventions: user id from a
 * claim (default `email`), ordered regex transformers (first match wins), a prefix; groups from a claim.
 * Each issuer's ids stay in its own user-id space (config/user-id-spaces.ts).
 */
import type { Config, IdentityConfig, MachineIdentityConfig } from '../config/schema.js';
import { issuerEntries, nestedStarts, peopleStart, userIdSpaces, type IssuerIdSettings } from '../config/user-id-spaces.js';
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
  /**
   * A bearer token of an issuer with audienceCheckedBy: rules: nothing checked its `aud`/`azp` yet, so only
   * a rule whose requirement does may let it through.
   */
  readonly audienceUnchecked: boolean;
  /** The session's ID token (cookie sessions only), for identity.forwardIdToken. */
  readonly idToken?: string | undefined;
  /**
   * The exchange's subject token when it is not the request's bearer token: the session's access token (kept
   * only while a rule exchanges tokens), or the policy simulator's stand-in.
   */
  readonly accessToken?: string | undefined;
}

export type IdentityFailure = 'missing_user_id' | 'unverified_email' | 'invalid_user_id';
export type IdentityResult = { ok: true; identity: Identity } | { ok: false; reason: IdentityFailure };

type Transformer = { readonly match: RegExp; readonly replace: string };

export interface IdentityMapping {
  readonly userIdClaim: ClaimPath;
  readonly groupsClaim: ClaimPath;
  readonly userIdPrefix: string;
  /** After the transformers, before the prefix, the id must start with this (the issuer's own space). */
  readonly userIdMustStartWith: string;
  readonly transformers: readonly Transformer[];
  readonly groupTransformers: readonly Transformer[];
  readonly allowUnverifiedEmail: boolean;
  /** An email without `email_verified` counts as verified (the issuer's emailVerifiedWhenAbsent). */
  readonly emailVerifiedWhenAbsent: boolean;
  /**
   * Lower-cased starts of other owners' user-id spaces nested in this one (config/user-id-spaces.ts): an
   * id that starts with one (ignoring case) belongs there and is refused, so two owners never share an id.
   */
  readonly foreignStarts: readonly string[];
  /** Tokens carrying the `when` claim are machines' and use `mapping` instead. */
  readonly machine: { readonly when: ClaimPath; readonly mapping: IdentityMapping } | null;
  /** The issuer's audienceCheckedBy is "rules": its bearer identities are marked audienceUnchecked. */
  readonly audienceCheckedByRules: boolean;
}

/** One issuer's own settings: its entry under `oidc` or `issuers[]`. */
export interface MappingOverrides extends IssuerIdSettings {
  readonly userIdClaim?: string | undefined;
  readonly groupsClaim?: string | undefined;
  readonly emailVerifiedWhenAbsent?: boolean | undefined;
  readonly machineIdentity?: MachineIdentityConfig | undefined;
  readonly audienceCheckedBy?: 'issuer' | 'rules' | undefined;
}

const compileTransformers = (list: IdentityConfig['userIdTransformers']): Transformer[] =>
  list.map((t) => ({ match: new RegExp(t.match, 'u'), replace: t.replace }));

/**
 * The identity mapping for tokens of one issuer: `overrides` are the issuer's own settings, `otherStarts`
 * the starts of every user-id space of the other issuers. Its people and its machines are two spaces too,
 * so each refuses the other's where it is nested inside its own.
 */
export function compileIdentityMapping(config: IdentityConfig, overrides: MappingOverrides = {}, otherStarts: readonly string[] = []): IdentityMapping {
  const groupsClaim = parseClaimPath(overrides.groupsClaim ?? config.groupsClaim);
  const groupTransformers = compileTransformers(config.groupTransformers);
  const emailVerifiedWhenAbsent = overrides.emailVerifiedWhenAbsent ?? false;
  const ownPeople = peopleStart(overrides, config.userIdPrefix);
  const machineConfig = overrides.machineIdentity;
  const audienceCheckedByRules = overrides.audienceCheckedBy === 'rules';
  const machine = machineConfig === undefined ? null : {
    when: parseClaimPath(machineConfig.when),
    mapping: {
      userIdClaim: parseClaimPath(machineConfig.userIdClaim ?? machineConfig.when),
      groupsClaim: machineConfig.groupsClaim === undefined ? groupsClaim : parseClaimPath(machineConfig.groupsClaim),
      userIdPrefix: machineConfig.userIdPrefix,
      userIdMustStartWith: '',
      // The user-id transformers rewrite people's emails; a machine's name is used as it is.
      transformers: [],
      groupTransformers,
      allowUnverifiedEmail: config.allowUnverifiedEmail,
      emailVerifiedWhenAbsent,
      foreignStarts: nestedStarts(machineConfig.userIdPrefix, [...otherStarts, ownPeople]),
      machine: null,
      audienceCheckedByRules,
    },
  };
  return {
    userIdClaim: parseClaimPath(overrides.userIdClaim ?? config.userIdClaim),
    groupsClaim,
    userIdPrefix: overrides.userIdPrefix ?? config.userIdPrefix,
    userIdMustStartWith: overrides.userIdMustStartWith ?? '',
    transformers: compileTransformers(config.userIdTransformers),
    groupTransformers,
    allowUnverifiedEmail: config.allowUnverifiedEmail,
    emailVerifiedWhenAbsent,
    foreignStarts: nestedStarts(ownPeople, machineConfig === undefined ? otherStarts : [...otherStarts, machineConfig.userIdPrefix]),
    machine,
    audienceCheckedByRules,
  };
}

/**
 * Every configured issuer's mapping, by issuer URL (the oidc issuer's first): each refuses the ids of
 * every other issuer's spaces nested in its own. A browser session uses the oidc issuer's, as a person.
 */
export function compileIssuerMappings(config: Pick<Config, 'oidc' | 'issuers' | 'identity'>): Map<string, IdentityMapping> {
  const entries = issuerEntries(config);
  const spaces = userIdSpaces(entries, config.identity.userIdPrefix);
  const mappings = new Map<string, IdentityMapping>();
  for (const { path, settings } of entries) {
    const others = spaces.filter((space) => space.issuer.join('.') !== path.join('.')).map((space) => space.start);
    mappings.set(settings.issuer, compileIdentityMapping(config.identity, settings, others));
  }
  return mappings;
}

/** The mapping for claims of no configured issuer (explain without iss): the defaults, outside every configured space. */
export function compileDefaultMapping(config: Pick<Config, 'oidc' | 'issuers' | 'identity'>): IdentityMapping {
  return compileIdentityMapping(config.identity, {}, userIdSpaces(issuerEntries(config), config.identity.userIdPrefix).map((space) => space.start));
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
  // Outside the issuer's own space: its ids could meet another issuer's (config/user-id-spaces.ts).
  if (!userId.startsWith(mapping.userIdMustStartWith)) return { ok: false, reason: 'invalid_user_id' };
  userId = mapping.userIdPrefix + userId;
  if (userId.length > MAX_USER_ID_LENGTH || !SAFE_USER_ID.test(userId)) return { ok: false, reason: 'invalid_user_id' };
  if (mapping.foreignStarts.length > 0) {
    const lower = userId.toLowerCase();
    for (const start of mapping.foreignStarts) if (lower.startsWith(start)) return { ok: false, reason: 'invalid_user_id' };
  }

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
      audienceUnchecked: via === 'bearer' && mapping.audienceCheckedByRules,
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
