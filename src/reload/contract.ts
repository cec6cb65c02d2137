/**
 * Hot reload's contract: which config fields a running service applies when its files change (or on
 * SIGHUP), which need a restart, and what a reload reports.
 *
 * Everything a check reads is built from one validated config into one immutable runtime, and the service
 * swaps that runtime in one assignment: a check reads it once when it starts, so it sees the old config or
 * the new one, never a mix (server.ts). A candidate is built whole (parsed, validated, policy compiled,
 * bearer verifier and mappings made, secrets read) before anything is swapped; any problem keeps the running
 * config.
 *
 * Reloadable fields are those whose effect lives in that runtime. Everything else is restart-only, for one
 * of these reasons, and is named in one warn line and keeps its running value while the rest is applied:
 * - sockets: listen.* (ports, hosts, header limits, the shutdown timeout);
 * - Envoy's contract: checkPathPrefix, identity header names, identity.authRequestHeaders, forwardIdToken and
 *   removeMethodOverrideHeaders decide the Istio provider's header lists, which change with the mesh config
 *   and a restart, never on their own;
 * - the browser login: oidc's issuer, client and URLs (the discovery client and /oauth2 routes are built once),
 *   publicUrl, allowedHosts, redirectAllowList, trustForwardedProto, and the client secret file's content;
 * - sessions: session.* (cookie names, lifetime, the Redis connection); the cookie secrets file's *content*
 *   is reloadable (the secret ring), its path is not;
 * - caches and limits sized at start-up: jwks.*, bearer.*, log.rateLimit, reload.*.
 * A field the list below does not name is restart-only: a new field is safe until someone decides otherwise.
 */
import { isDeepStrictEqual } from 'node:util';
import type { Config } from '../config/schema.js';

/**
 * Config fields (dotted paths) a reload applies; a path covers everything under it. The chart reads this
 * list (files/reload-contract.json) to leave these fields out of the checksum that rolls the pods.
 */
export const RELOADABLE_FIELDS = [
  // The policy.
  'rules',
  'defaultRule',
  // Bearer issuers and the oidc issuer's bearer settings (its tokens' audiences, machines, user-id space).
  'issuers',
  'oidc.audiences',
  'oidc.authorizedParties',
  'oidc.audienceCheckedBy',
  'oidc.machineIdentity',
  'oidc.userIdPrefix',
  'oidc.userIdMustStartWith',
  'oidc.userIdSpace',
  'oidc.emailVerifiedWhenAbsent',
  'oidc.jwksUri',
  'oidc.algorithms',
  // RFC 7662 introspection of its bearer tokens (the secret file is read again when the verifier is rebuilt).
  'oidc.introspection',
  // The identity mapping (not the header names: those are Envoy's contract).
  'identity.userIdClaim',
  'identity.userIdPrefix',
  'identity.userIdTransformers',
  'identity.groupsClaim',
  'identity.groupTransformers',
  'identity.allowUnverifiedEmail',
  'log.level',
  // The decision log: read by the check handler from the runtime.
  'log.decisions',
] as const;

/** Files whose content a reload reads again, by the config field that names them. */
export const RELOADABLE_FILES = ['session.secretsFile'] as const;
/** Files whose content is read at start-up only: a change is reported as needing a restart. */
export const RESTART_ONLY_FILES = ['oidc.clientSecretFile'] as const;

export type ReloadTrigger = 'start' | 'signal' | 'watch' | 'manual';

/** `unchanged`: the config and secret files hold what the running config was built from (nothing swapped). */
export type ReloadResult = 'success' | 'failure' | 'unchanged';

export interface ReloadOutcome {
  readonly result: ReloadResult;
  /** The active config's hash after this reload (configHash: what `sha256sum` of the config file starts with). */
  readonly hash: string;
  /** On failure, every problem as "field.path: reason" (never a secret value). */
  readonly problems: readonly string[];
  /** Fields the files change that need a restart (kept at their running values). */
  readonly restartRequired: readonly string[];
}

export interface Reloader {
  /** Reads the files again and applies what changed; never throws (a failure is an outcome). */
  reload(trigger: ReloadTrigger): Promise<ReloadOutcome>;
  /** The active config's hash. */
  readonly activeHash: string;
  /** Starts watching the files' directories (config reload.watch). */
  watch(): void;
  /** Stops watching and cancels a pending debounce: no timer or watcher is left. */
  close(): void;
}

/** The hash shown for a config: the first 12 hex digits of its file's SHA-256 (compare with `sha256sum FILE`). */
export const HASH_LENGTH = 12;

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/**
 * The dotted paths of the fields that differ between two configs. Objects are compared field by field;
 * arrays and values as wholes (a rule list that changed is one path, `rules`), a field present on one side
 * only is a path of its own (`oidc` when login is added or removed).
 */
export function changedFields(before: unknown, after: unknown, prefix = ''): string[] {
  if (isPlainObject(before) && isPlainObject(after)) {
    const keys = new Set([...Object.keys(before), ...Object.keys(after)]);
    const changed: string[] = [];
    for (const key of [...keys].sort()) changed.push(...changedFields(before[key], after[key], prefix === '' ? key : `${prefix}.${key}`));
    return changed;
  }
  return isDeepStrictEqual(before, after) ? [] : [prefix === '' ? '(root)' : prefix];
}

/** Whether a reload applies the field at `path` (it is, or is under, a reloadable field). */
export function isReloadable(path: string, reloadable: readonly string[] = RELOADABLE_FIELDS): boolean {
  return reloadable.some((field) => path === field || path.startsWith(`${field}.`));
}

/**
 * The changes between the running config and a new one that need a restart: every changed field that is
 * not reloadable. `oidc.issuer` is one; `oidc` (login added or removed) is one too, even though some of
 * its fields are reloadable, because a reloadable field applies only where its parent exists on both sides.
 */
export function restartRequiredChanges(running: Config, next: Config): string[] {
  return changedFields(running, next).filter((path) => !isReloadable(path));
}

/** The value at a dotted path of a raw config object (undefined when any step is missing). */
function valueAt(raw: Record<string, unknown>, path: readonly string[]): unknown {
  let node: unknown = raw;
  for (const segment of path) {
    if (!isPlainObject(node)) return undefined;
    node = node[segment];
  }
  return node;
}

/**
 * A raw config (as written, after environment overrides) whose restart-only `fields` hold the running
 * raw config's values instead, so that validating it gives the config to apply: the new reloadable fields
 * with the running restart-only ones. A field absent from the running raw config is removed (it ran on its
 * default). Validated again by the caller: a new field may only make sense beside a new restart-only one.
 */
export function keepRunningValues(next: Record<string, unknown>, running: Record<string, unknown>, fields: readonly string[]): Record<string, unknown> {
  if (fields.includes('(root)')) return structuredClone(running);
  const merged = structuredClone(next);
  for (const field of fields) {
    const path = field.split('.');
    const value = valueAt(running, path);
    const last = path[path.length - 1]!;
    if (value === undefined) {
      // Nothing to create: remove the field where it exists.
      const parent = valueAt(merged, path.slice(0, -1));
      if (isPlainObject(parent)) delete parent[last];
      continue;
    }
    let node = merged;
    for (const segment of path.slice(0, -1)) {
      if (!isPlainObject(node[segment])) node[segment] = {};
      node = node[segment] as Record<string, unknown>;
    }
    node[last] = structuredClone(value);
  }
  return merged;
}
