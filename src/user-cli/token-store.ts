/**
 * tokens.json under the XDG config directory: refresh tokens are long-lived credentials, so the directory
 * is 0700, the file 0600 and written atomically (a temp file in the same directory, then rename: a crash or
 * a concurrent reader never sees half a file), and a file that group or others can read, or that another
 * user owns, is refused rather than used (as ssh refuses a private key with loose permissions).
 */
import { randomBytes } from 'node:crypto';
import { chmodSync, closeSync, fsyncSync, lstatSync, mkdirSync, openSync, readFileSync, renameSync, rmSync, statSync, writeSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';
import { EXIT, UserCliError, type StoredTokens, type TokenFile } from './contract.js';

const EMPTY: TokenFile = { version: 1, profiles: {} };

/** $XDG_CONFIG_HOME/oidc-authz (default ~/.config/oidc-authz): tokens.json and cli.yaml live there. */
export function configDir(env: NodeJS.ProcessEnv): string {
  const xdg = env.XDG_CONFIG_HOME;
  // The XDG spec says a relative value is invalid and must be ignored.
  const base = xdg !== undefined && xdg.startsWith('/') ? xdg : join(env.HOME ?? homedir(), '.config');
  return join(base, 'oidc-authz');
}

export function tokenFilePath(env: NodeJS.ProcessEnv): string {
  return join(configDir(env), 'tokens.json');
}

/** Why a token file at `mode`/`uid` may not be used, or undefined when it may. Pure, for the tests. */
export function unsafeReason(stat: { mode: number; uid: number; isFile: boolean }, myUid: number | undefined): string | undefined {
  if (!stat.isFile) return 'is not a regular file';
  if (myUid !== undefined && stat.uid !== myUid) return `is owned by uid ${stat.uid}, not by you (${myUid})`;
  if ((stat.mode & 0o077) !== 0) return `is readable or writable by group or others (mode ${(stat.mode & 0o777).toString(8).padStart(4, '0')})`;
  return undefined;
}

/** The token file, or an empty one when there is none yet. Throws UserCliError (unsafeStore) when unsafe. */
export function readTokenFile(path: string): TokenFile {
  let stat;
  try {
    stat = lstatSync(path);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return EMPTY;
    throw error;
  }
  const reason = unsafeReason({ mode: stat.mode, uid: stat.uid, isFile: stat.isFile() }, process.getuid?.());
  if (reason !== undefined) {
    throw new UserCliError(`${path} ${reason}: refusing to use tokens others may have read; run "chmod 600 ${path}" if it is yours and unshared, or delete it and run oidc-authz login again`, EXIT.unsafeStore);
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(path, 'utf8'));
  } catch {
    throw new UserCliError(`${path} is not valid JSON: delete it and run oidc-authz login again`, EXIT.failure);
  }
  if (!isTokenFile(parsed)) throw new UserCliError(`${path} is not a token file of this version: delete it and run oidc-authz login again`, EXIT.failure);
  return parsed;
}

function isTokenFile(value: unknown): value is TokenFile {
  if (typeof value !== 'object' || value === null) return false;
  const file = value as { version?: unknown; profiles?: unknown };
  return file.version === 1 && typeof file.profiles === 'object' && file.profiles !== null && !Array.isArray(file.profiles);
}

/** Writes the whole file atomically with mode 0600, creating the directory with 0700. */
export function writeTokenFile(path: string, file: TokenFile): void {
  const dir = dirname(path);
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  // An existing directory keeps its mode otherwise; ours holds credentials only.
  const dirStat = lstatSync(dir);
  if ((dirStat.mode & 0o077) !== 0 && dirStat.uid === process.getuid?.()) chmodSync(dir, 0o700);
  const temp = join(dir, `.tokens.${process.pid}.${randomBytes(4).toString('hex')}.tmp`);
  // 'wx': never follow or reuse a file someone planted; the mode applies at creation (umask can only narrow it).
  const fd = openSync(temp, 'wx', 0o600);
  try {
    writeSync(fd, `${JSON.stringify(file, null, 2)}\n`);
    fsyncSync(fd);
  } catch (error) {
    closeSync(fd);
    rmSync(temp, { force: true });
    throw error;
  }
  closeSync(fd);
  renameSync(temp, path);
}

export function getProfile(path: string, profile: string): StoredTokens | undefined {
  return readTokenFile(path).profiles[profile];
}

/** Sets (or with undefined, deletes) one profile's entry; re-reads the file first so other profiles survive. */
export function putProfile(path: string, profile: string, tokens: StoredTokens | undefined): void {
  const current = readTokenFile(path);
  const profiles: Record<string, StoredTokens> = { ...current.profiles };
  if (tokens === undefined) delete profiles[profile];
  else profiles[profile] = tokens;
  writeTokenFile(path, { version: 1, profiles });
}

/**
 * A lock held by a process that died (killed mid-refresh) is broken after this: longer than one refresh can take
 * (discovery and the token request, 30 s each at most).
 */
const LOCK_STALE_MS = 90_000;
const LOCK_RETRY_MS = 50;

/**
 * Runs `fn` holding `<path>.lock` (created with O_EXCL), so parallel `oidc-authz token` runs (`xargs -P`, a
 * notebook's threads) refresh one at a time: the IdP rotates refresh tokens, and Dex refuses a second use of the
 * old one, so two refreshes at once would log the loser out. Callers re-read the file inside.
 */
export async function withTokenFileLock<T>(path: string, fn: () => Promise<T>): Promise<T> {
  const lock = `${path}.lock`;
  mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
  for (;;) {
    try {
      const fd = openSync(lock, 'wx', 0o600);
      writeSync(fd, `${process.pid}\n`);
      closeSync(fd);
      break;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    }
    let age: number | undefined;
    try {
      age = Date.now() - statSync(lock).mtimeMs;
    } catch {
      continue; // released between our attempt and the stat
    }
    if (age > LOCK_STALE_MS) rmSync(lock, { force: true });
    else await new Promise((resolve) => setTimeout(resolve, LOCK_RETRY_MS));
  }
  try {
    return await fn();
  } finally {
    rmSync(lock, { force: true });
  }
}
