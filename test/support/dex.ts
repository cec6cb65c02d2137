/**
 * A real Dex (v2.45.1, built from the Go module proxy into .tools/ by `make install`) on 127.0.0.1, with
 * in-memory storage, static passwords and static clients, configured the way Kubeflow configures its Dex
 * (password database, no approval screen) apart from what a test picks: users, clients, token lifetimes.
 * Dex reads its configuration once at start, so a test starts it after it knows its redirect URIs.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { freePort } from './service.js';

export const DEX_VERSION = 'v2.45.1';
export const DEX_BIN = process.env.DEX_BIN ?? resolve(process.cwd(), `.tools/dex/dex-${DEX_VERSION}`);

/**
 * bcrypt hashes (cost 10, Dex's minimum) of the test passwords, made once with golang.org/x/crypto/bcrypt:
 * Dex accepts only bcrypt hashes for static passwords, and Node has no bcrypt of its own.
 */
export const DEX_PASSWORD_HASHES: Readonly<Record<string, string>> = {
  'alice-pw': '$2a$10$clWse6D/B1BMK8clKmePMuxiaxbOm2mib4BJ1xbhzIKAg5.iq/1E6',
  'bob-pw': '$2a$10$LcqohPv0Jg/iurP4njyAruLsJjf0Ccns6ExF/grRCHx4h3zm6VYI2',
  'carol-pw': '$2a$10$COB48JrpYdLBOfVEEwrEG.wFfiSZLWv74yW4/SORi7ATkDTMS4kwK',
  'dave-pw': '$2a$10$pDs.IHi6AiaCfyFXbnpQCOXfJM.T2tTQKxIZtxD2S6adhPHUPle7O',
  /** Kubeflow's example user (user@example.com) has this password. */
  '12341234': '$2a$10$.o4TH7k./LUuA45qA9BbheW2ovDq6ikGQucbQ9c6mm6Fgm04Z9XRG',
};

export interface DexUser {
  readonly username: string;
  readonly email: string;
  /** One of the passwords in DEX_PASSWORD_HASHES. */
  readonly password: string;
  readonly groups?: readonly string[];
}

export interface DexClient {
  readonly id: string;
  readonly secret?: string;
  readonly name?: string;
  readonly public?: boolean;
  readonly redirectURIs: readonly string[];
}

export interface DexOptions {
  readonly users: readonly DexUser[];
  readonly clients: readonly DexClient[];
  /** Dex's `expiry.idTokens` (its access tokens live as long). Default 24h, as Dex's own. */
  readonly idTokenLifetime?: string;
  /**
   * Dex's `expiry.refreshTokens.reuseInterval`: how long a rotated refresh token may be used again.
   * Dex's default is none: a second use of a refresh token, even at the same moment, is refused.
   */
  readonly refreshTokenReuseInterval?: string;
  /** Dex's `expiry.deviceRequests`: how long a device code (RFC 8628) may wait for approval. Default 5m, as Dex's own. */
  readonly deviceRequestLifetime?: string;
}

export interface RunningDex {
  /** http://127.0.0.1:<port>/dex */
  readonly issuer: string;
  readonly port: number;
  readonly process: ChildProcess;
  /** Everything Dex wrote (JSON log lines). */
  log(): string;
  /** A token response from the password grant (Dex's `passwordConnector: local`). */
  passwordGrant(client: DexClient, username: string, password: string, scope?: string): Promise<Record<string, unknown>>;
  stop(): Promise<void>;
}

export function dexInstalled(): boolean {
  return existsSync(DEX_BIN);
}

/** Dex's configuration file (JSON is YAML): Kubeflow's choices, plus what the test asks for. */
export function dexConfig(issuer: string, port: number, options: DexOptions): object {
  return {
    issuer,
    storage: { type: 'memory' },
    web: { http: `127.0.0.1:${port}` },
    logger: { level: 'debug', format: 'json' },
    expiry: {
      idTokens: options.idTokenLifetime ?? '24h',
      ...(options.refreshTokenReuseInterval ? { refreshTokens: { reuseInterval: options.refreshTokenReuseInterval } } : {}),
      ...(options.deviceRequestLifetime ? { deviceRequests: options.deviceRequestLifetime } : {}),
    },
    oauth2: { skipApprovalScreen: true, passwordConnector: 'local' },
    enablePasswordDB: true,
    staticPasswords: options.users.map((user) => {
      const hash = DEX_PASSWORD_HASHES[user.password];
      if (hash === undefined) throw new Error(`no bcrypt hash for "${user.password}" in DEX_PASSWORD_HASHES`);
      return { email: user.email, hash, username: user.username, userID: `${user.username}-id`, groups: user.groups ?? [] };
    }),
    staticClients: options.clients.map((client) => ({
      id: client.id,
      name: client.name ?? client.id,
      redirectURIs: client.redirectURIs,
      ...(client.public ? { public: true } : { secret: client.secret }),
    })),
  };
}

/** Starts Dex and resolves once its discovery document answers. */
export async function startDex(options: DexOptions): Promise<RunningDex> {
  if (!dexInstalled()) throw new Error(`Dex not found at ${DEX_BIN}: run "make install"`);
  const port = await freePort();
  const issuer = `http://127.0.0.1:${port}/dex`;
  const dir = mkdtempSync(join(tmpdir(), 'oidc-authz-dex-'));
  const configFile = join(dir, 'config.yaml');
  writeFileSync(configFile, JSON.stringify(dexConfig(issuer, port, options), null, 2));
  const child = spawn(DEX_BIN, ['serve', configFile], { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout!.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr!.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const exited = new Promise<number | null>((resolvePromise) => child.once('exit', (code) => resolvePromise(code)));

  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM');
      await exited;
    }
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    await untilDiscoveryAnswers(issuer, exited, () => output);
  } catch (error) {
    await stop();
    throw error;
  }

  return {
    issuer,
    port,
    process: child,
    log: () => output,
    stop,
    async passwordGrant(client, username, password, scope = 'openid email profile groups offline_access') {
      const body = new URLSearchParams({ grant_type: 'password', username, password, scope });
      const headers: Record<string, string> = { 'content-type': 'application/x-www-form-urlencoded' };
      if (client.secret !== undefined) headers.authorization = `Basic ${Buffer.from(`${encodeURIComponent(client.id)}:${encodeURIComponent(client.secret)}`).toString('base64')}`;
      else body.set('client_id', client.id);
      const response = await fetch(`${issuer}/token`, { method: 'POST', headers, body });
      const json = (await response.json()) as Record<string, unknown>;
      if (response.status !== 200) throw new Error(`Dex password grant for ${username}: ${response.status} ${JSON.stringify(json)}`);
      return json;
    },
  };
}

/** Polls the discovery document (Dex starts in well under a second); fails with Dex's output if it exits. */
async function untilDiscoveryAnswers(issuer: string, exited: Promise<number | null>, output: () => string): Promise<void> {
  let gone = false;
  void exited.then(() => (gone = true));
  const deadline = Date.now() + 30_000;
  while (Date.now() < deadline) {
    if (gone) throw new Error(`dex exited before serving:\n${output().slice(-4000)}`);
    try {
      const response = await fetch(`${issuer}/.well-known/openid-configuration`);
      await response.body?.cancel();
      if (response.status === 200) return;
    } catch {
      // not listening yet
    }
    await new Promise((resolvePromise) => setTimeout(resolvePromise, 25));
  }
  throw new Error(`dex did not serve ${issuer} within 30 s:\n${output().slice(-4000)}`);
}
