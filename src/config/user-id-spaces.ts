/**
 * User-id spaces: where each issuer's user ids live, so that a person of one issuer can never be sent
 * upstream under the user id of a person or machine of another.
 *
 * The space of an issuer's people is its user-id prefix followed by its userIdMustStartWith (every id it
 * maps starts with both); the space of its machines is machineIdentity.userIdPrefix. Two spaces relate in
 * one of three ways:
 * - disjoint (neither start is a prefix of the other): their ids can never meet;
 * - nested ("" and "system:serviceaccount:"): safe because every mapping refuses an id that falls into a
 *   longer space of someone else that extends its own (`nestedStarts`), so each id has one owner;
 * - equal: nothing tells the two owners' ids apart, so the config is refused at start-up (`spaceClashes`),
 *   unless both are the same kind of identity of issuers that declare one `userIdSpace` — the operator's
 *   statement that the two issuers are one population (one IdP reachable under two issuer URLs).
 * Starts are compared ignoring ASCII case: emails, and the `users` requirement, ignore it too, so "SA:x"
 * and "sa:x" must not be two different users.
 *
 * Pure functions over the parsed config's shape; the schema (start-up) and the identity mapping (run
 * time) share them, so what start-up accepts is exactly what run time enforces.
 */

/** An issuer entry's settings that decide where its user ids live (under `oidc` or `issuers[]`). */
export interface IssuerIdSettings {
  readonly userIdPrefix?: string | undefined;
  readonly userIdMustStartWith?: string | undefined;
  readonly userIdSpace?: string | undefined;
  readonly machineIdentity?: { readonly userIdPrefix: string } | undefined;
}

export type IssuerPath = readonly ['oidc'] | readonly ['issuers', number];

export interface UserIdSpace {
  /** Every user id of the space starts with this (case-sensitively). */
  readonly start: string;
  readonly kind: 'people' | 'machines';
  /** The issuer entry it belongs to. */
  readonly issuer: IssuerPath;
  /** The issuer's `userIdSpace`, if it declares one. */
  readonly shared: string | undefined;
}

/** The issuer entries of a config, the oidc issuer first, each with its config path. */
export function issuerEntries<O extends IssuerIdSettings, I extends IssuerIdSettings>(config: { readonly oidc?: O | undefined; readonly issuers: readonly I[] }): Array<{ path: IssuerPath; settings: O | I }> {
  const entries: Array<{ path: IssuerPath; settings: O | I }> = config.oidc === undefined ? [] : [{ path: ['oidc'], settings: config.oidc }];
  config.issuers.forEach((settings, index) => entries.push({ path: ['issuers', index], settings }));
  return entries;
}

/** Where an issuer's people's user ids start: its prefix (else identity.userIdPrefix), then userIdMustStartWith. */
export function peopleStart(settings: IssuerIdSettings, defaultPrefix: string): string {
  return (settings.userIdPrefix ?? defaultPrefix) + (settings.userIdMustStartWith ?? '');
}

/** Every user-id space of a config: each issuer's people, and its machines when it has machineIdentity. */
export function userIdSpaces(entries: ReadonlyArray<{ path: IssuerPath; settings: IssuerIdSettings }>, defaultPrefix: string): UserIdSpace[] {
  const spaces: UserIdSpace[] = [];
  for (const { path, settings } of entries) {
    spaces.push({ start: peopleStart(settings, defaultPrefix), kind: 'people', issuer: path, shared: settings.userIdSpace });
    if (settings.machineIdentity) spaces.push({ start: settings.machineIdentity.userIdPrefix, kind: 'machines', issuer: path, shared: settings.userIdSpace });
  }
  return spaces;
}

const sameOwner = (a: UserIdSpace, b: UserIdSpace) => a.issuer.join('.') === b.issuer.join('.') && a.kind === b.kind;

/** Equal spaces of one kind whose issuers both declare the same userIdSpace: one population, by the operator's word. */
function declaredShared(a: UserIdSpace, b: UserIdSpace): boolean {
  return a.kind === b.kind && a.shared !== undefined && a.shared === b.shared;
}

/** Pairs of spaces with the same start (ignoring case) that nothing makes safe; `later` comes after `earlier` in the config. */
export function spaceClashes(spaces: readonly UserIdSpace[]): Array<{ later: UserIdSpace; earlier: UserIdSpace }> {
  const clashes: Array<{ later: UserIdSpace; earlier: UserIdSpace }> = [];
  spaces.forEach((later, index) => {
    const earlier = spaces.slice(0, index).find((other) =>
      !sameOwner(other, later) && other.start.toLowerCase() === later.start.toLowerCase() && !declaredShared(other, later));
    if (earlier) clashes.push({ later, earlier });
  });
  return clashes;
}

/**
 * Of `others` (the starts of other owners' spaces: other issuers', or the other kind of the same
 * issuer), those inside `own` and longer, lower-cased: an id of `own` that starts with one of them
 * (ignoring case) is theirs and must be refused (invalid_user_id).
 */
export function nestedStarts(own: string, others: readonly string[]): string[] {
  const lower = own.toLowerCase();
  return [...new Set(others.map((other) => other.toLowerCase()).filter((other) => other.length > lower.length && other.startsWith(lower)))];
}

/** Issuers that declare one userIdSpace but whose people's ids start differently (a name must mean one space). */
export function sharedNameMismatches(spaces: readonly UserIdSpace[]): Array<{ later: UserIdSpace; earlier: UserIdSpace }> {
  const people = spaces.filter((s) => s.kind === 'people' && s.shared !== undefined);
  const mismatches: Array<{ later: UserIdSpace; earlier: UserIdSpace }> = [];
  people.forEach((later, index) => {
    const earlier = people.slice(0, index).find((other) => other.shared === later.shared && other.start !== later.start);
    if (earlier) mismatches.push({ later, earlier });
  });
  return mismatches;
}

/** A start-up problem for a clash: the config path to fix and a message naming both sides and the fixes. */
export function describeClash({ later, earlier }: { later: UserIdSpace; earlier: UserIdSpace }): { path: Array<string | number>; message: string } {
  const sameIssuer = later.issuer.join('.') === earlier.issuer.join('.');
  const other = `${sameIssuer ? 'this issuer' : earlier.issuer.join('.')}'s`;
  if (later.kind === 'machines') {
    const path = [...later.issuer, 'machineIdentity', 'userIdPrefix'];
    if (earlier.kind === 'machines') {
      return { path, message: `"${later.start}" is also the machine prefix of ${earlier.issuer.join('.')}: machines of two issuers could get the same user id. Give each issuer its own prefix; only if both issuers are one IdP under two issuer URLs, give both the same userIdSpace` };
    }
    return { path, message: `"${later.start}" is also where the user ids of ${other} people start (userIdPrefix + userIdMustStartWith): a machine and a person could get the same user id. Give the machines another prefix, or the people another userIdPrefix` };
  }
  const path = [...later.issuer];
  if (earlier.kind === 'machines') {
    return { path, message: `the user ids of its people start with "${later.start}" (userIdPrefix + userIdMustStartWith), the machine prefix of ${earlier.issuer.join('.')}: a person and a machine could get the same user id. Give the people another userIdPrefix, or the machines another prefix` };
  }
  return {
    path,
    message: `the user ids of its people and of ${other} people both start with "${later.start}" (userIdPrefix + userIdMustStartWith): a person of each issuer could get the same user id. Give one of them its own userIdPrefix (e.g. "partner:"), or a userIdMustStartWith that all its ids start with (Kubernetes service accounts: "system:serviceaccount:"); only if both issuers are the same users (one IdP under two issuer URLs), give both the same userIdSpace`,
  };
}
