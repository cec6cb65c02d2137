/**
 * Where login's issuer, client id, scopes and audience come from: flags, then env, then the small
 * cli.yaml next to the tokens (a profile's section, then its top level). Never the service's config file:
 * the CLI runs on laptops and in notebooks, where that file is not.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'yaml';
import { DEFAULT_PROFILE, EXIT, UserCliError, type ClientSettings } from './contract.js';
import { configDir } from './token-store.js';

/** What flags may set (undefined: not given). */
export interface SettingFlags {
  readonly profile?: string | undefined;
  readonly issuer?: string | undefined;
  readonly clientId?: string | undefined;
  readonly scope?: string | undefined;
  readonly audience?: string | undefined;
}

interface FileSection {
  issuer?: string;
  clientId?: string;
  scope?: string;
  audience?: string;
}

/** cli.yaml: a top-level section and `profiles: { name: section }`. Missing file: no settings. */
export function readCliFile(path: string): { top: FileSection; profiles: Record<string, FileSection> } {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return { top: {}, profiles: {} };
    throw error;
  }
  let value: unknown;
  try {
    value = parse(text);
  } catch (error) {
    throw new UserCliError(`${path}: not YAML: ${(error as Error).message}`, EXIT.usage);
  }
  if (value === null || value === undefined) return { top: {}, profiles: {} };
  if (typeof value !== 'object' || Array.isArray(value)) throw new UserCliError(`${path}: expected a mapping`, EXIT.usage);
  const record = value as Record<string, unknown>;
  const section = (raw: unknown, where: string): FileSection => {
    if (raw === undefined || raw === null) return {};
    if (typeof raw !== 'object' || Array.isArray(raw)) throw new UserCliError(`${path}: ${where} must be a mapping`, EXIT.usage);
    const out: FileSection = {};
    for (const [key, v] of Object.entries(raw as Record<string, unknown>)) {
      if (key === 'profiles' && where === 'the top level') continue;
      if (!['issuer', 'clientId', 'scope', 'audience'].includes(key)) throw new UserCliError(`${path}: ${where}: unknown key "${key}" (issuer, clientId, scope, audience)`, EXIT.usage);
      if (typeof v !== 'string' || v === '') throw new UserCliError(`${path}: ${where}.${key} must be a non-empty string`, EXIT.usage);
      out[key as keyof FileSection] = v;
    }
    return out;
  };
  const profilesRaw = record.profiles ?? {};
  if (typeof profilesRaw !== 'object' || profilesRaw === null || Array.isArray(profilesRaw)) throw new UserCliError(`${path}: profiles must be a mapping`, EXIT.usage);
  const profiles = Object.fromEntries(Object.entries(profilesRaw as Record<string, unknown>).map(([name, raw]) => [name, section(raw, `profiles.${name}`)]));
  return { top: section(record, 'the top level'), profiles };
}

export function cliFilePath(env: NodeJS.ProcessEnv): string {
  return join(configDir(env), 'cli.yaml');
}

/** The profile name: --profile, then OIDC_AUTHZ_PROFILE, then "default". */
export function profileName(flags: SettingFlags, env: NodeJS.ProcessEnv): string {
  const name = flags.profile ?? env.OIDC_AUTHZ_PROFILE ?? DEFAULT_PROFILE;
  if (!/^[A-Za-z0-9._-]{1,64}$/.test(name)) throw new UserCliError(`profile "${name}": use letters, digits, ".", "_" or "-"`, EXIT.usage);
  return name;
}

/** Settings for login; throws a usage error naming where to set what is missing. */
export function resolveSettings(flags: SettingFlags, env: NodeJS.ProcessEnv): ClientSettings {
  const profile = profileName(flags, env);
  const file = readCliFile(cliFilePath(env));
  const section = file.profiles[profile] ?? {};
  const pick = (flag: string | undefined, envName: string, key: keyof FileSection) =>
    flag ?? (env[envName] || undefined) ?? section[key] ?? (profile === DEFAULT_PROFILE || file.profiles[profile] === undefined ? file.top[key] : undefined);
  const issuer = pick(flags.issuer, 'OIDC_AUTHZ_ISSUER', 'issuer');
  const clientId = pick(flags.clientId, 'OIDC_AUTHZ_CLIENT_ID', 'clientId');
  const scope = pick(flags.scope, 'OIDC_AUTHZ_SCOPE', 'scope');
  const audience = pick(flags.audience, 'OIDC_AUTHZ_AUDIENCE', 'audience');
  const missing = [issuer === undefined ? '--issuer (or OIDC_AUTHZ_ISSUER)' : '', clientId === undefined ? '--client-id (or OIDC_AUTHZ_CLIENT_ID)' : ''].filter(Boolean);
  if (missing.length > 0) throw new UserCliError(`login needs ${missing.join(' and ')}, or ${cliFilePath(env)}`, EXIT.usage);
  let url: URL;
  try {
    url = new URL(issuer!);
  } catch {
    throw new UserCliError(`issuer "${issuer}" is not a URL`, EXIT.usage);
  }
  // Tokens over plain HTTP are readable on the wire: only loopback (tests, port-forwards) may use it.
  if (url.protocol !== 'https:' && !(url.protocol === 'http:' && ['127.0.0.1', 'localhost', '[::1]'].includes(url.hostname))) {
    throw new UserCliError(`issuer "${issuer}": use https (plain http only for 127.0.0.1 and localhost)`, EXIT.usage);
  }
  return {
    profile,
    issuer: issuer!,
    clientId: clientId!,
    scopes: scope === undefined ? undefined : scope.split(/[\s,]+/).filter(Boolean),
    audience,
  };
}
