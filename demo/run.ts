/**
 * `make demo`: the product on one machine. Starts the development IdP (demo users below), oidc-authz
 * with demo/config.yaml (the real CLI, the real config file), an echo app as the upstream, and Envoy in
 * front when it is installed. Prints where to go and who to log in as; Ctrl-C stops everything.
 * The dev IdP exists only here and in the tests; the service itself never includes it.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { loadConfigFile } from '../src/config/load.js';
import { extAuthzProvider } from '../src/envoy-contract.js';
import { AUTHZ_ROUTES } from '../src/envoy-config.js';
import { startDevIdp, type DevIdpUser } from './dev-idp.js';
import { startEcho } from './echo.js';
import { envoyInstalled, ENVOY_BIN, startEnvoy, type RunningEnvoy } from './envoy.js';

const CONFIG_FILE = resolve('demo/config.yaml');
const ENVOY_PORT = 8080;
const IDP_PORT = 5556;
const ECHO_PORT = 8082;

/** Demo users: password is the name + "-pw". */
export const DEMO_USERS: Record<string, DevIdpUser> = {
  alice: {
    password: 'alice-pw',
    email: 'alice@example.com',
    name: 'Alice Analyst',
    groups: ['team-a', 'ml-users'],
    claims: { resource_access: { 'team-a': { roles: ['ws_access'] } } },
  },
  bob: { password: 'bob-pw', email: 'bob@example.com', name: 'Bob Builder', groups: ['team-b'] },
  carol: { password: 'carol-pw', email: 'carol@example.com', name: 'Carol Admin', groups: ['team-a', 'team-b', 'admins'] },
};

function ensureSecrets(): void {
  mkdirSync('.demo', { recursive: true });
  if (!existsSync('.demo/client-secret')) writeFileSync('.demo/client-secret', randomBytes(24).toString('base64url'), { mode: 0o600 });
  if (!existsSync('.demo/cookie-secrets')) writeFileSync('.demo/cookie-secrets', `${randomBytes(32).toString('base64url')}\n`, { mode: 0o600 });
}

function prefixed(child: ChildProcess, name: string): void {
  for (const stream of [child.stdout, child.stderr]) {
    let buffer = '';
    stream?.setEncoding('utf8');
    stream?.on('data', (chunk: string) => {
      buffer += chunk;
      let newline: number;
      while ((newline = buffer.indexOf('\n')) !== -1) {
        process.stdout.write(`[${name}] ${buffer.slice(0, newline)}\n`);
        buffer = buffer.slice(newline + 1);
      }
    });
  }
}

const children: ChildProcess[] = [];

/** Starts `oidc-authz serve` and resolves when it logs "listening". */
function startService(): Promise<ChildProcess> {
  // Its own process group: Ctrl-C reaches only the demo, which then stops the service with one SIGTERM.
  const child = spawn(process.execPath, [resolve('dist/cli.js'), 'serve', '--config', CONFIG_FILE], { stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  children.push(child);
  process.once('exit', () => child.kill('SIGTERM'));
  prefixed(child, 'oidc-authz');
  return new Promise((resolvePromise, reject) => {
    const onData = (chunk: Buffer | string) => {
      if (String(chunk).includes('"msg":"listening"')) {
        child.stdout!.off('data', onData);
        resolvePromise(child);
      }
    };
    child.stdout!.on('data', onData);
    child.once('exit', (code) => reject(new Error(`oidc-authz exited with ${code} (see its output above)`)));
  });
}

async function main(): Promise<void> {
  ensureSecrets();
  const config = loadConfigFile(CONFIG_FILE);
  const clientSecret = readFileSync('.demo/client-secret', 'utf8').trim();
  const publicUrl = config.publicUrl!;

  const idp = await startDevIdp({
    port: IDP_PORT,
    issuerPath: '/dex',
    users: DEMO_USERS,
    clients: [{
      clientId: config.oidc!.clientId,
      clientSecret,
      name: 'Kubeflow (oidc-authz demo)',
      redirectUris: [`${publicUrl}/oauth2/callback`],
      postLogoutRedirectUris: [`${publicUrl}/oauth2/signed_out`],
    }],
  });
  const echo = await startEcho({ port: ECHO_PORT });
  const service = await startService();

  let envoy: RunningEnvoy | null = null;
  if (envoyInstalled()) {
    envoy = await startEnvoy({
      listenPort: ENVOY_PORT,
      authz: { host: config.listen.host, port: config.listen.port },
      upstream: { host: '127.0.0.1', port: echo.port },
      provider: extAuthzProvider(config, { service: config.listen.host, port: config.listen.port }),
      authzRoutes: AUTHZ_ROUTES,
    });
  }

  const users = Object.entries(DEMO_USERS)
    .map(([name, user]) => `    ${name.padEnd(6)} / ${user.password.padEnd(9)} groups: ${user.groups.join(', ')}`)
    .join('\n');
  const entry = envoy
    ? `Open ${publicUrl}/ in a browser (Envoy → oidc-authz → echo app).`
    : `Envoy is not installed (${ENVOY_BIN}); run "make install" to get it, then "make demo" again.
  Without Envoy there is no gateway, but the check endpoint answers directly, e.g.:
    curl -i -H 'accept: text/html' http://${config.listen.host}:${config.listen.port}/authz/team-a/`;
  process.stdout.write(`
────────────────────────────────────────────────────────────────────────────────
  oidc-authz demo is running.

  ${entry}

  Log in at the dev IdP as:
${users}

  Try:  ${publicUrl}/public/            anonymous (no login)
        ${publicUrl}/notebooks/         any logged-in user
        ${publicUrl}/team-a/            team-a only (alice, carol; bob gets 403)
        ${publicUrl}/workspaces/team-b/ read needs group team-b (bob, carol)
        ${publicUrl}/oauth2/userinfo    who you are, as JSON
        ${publicUrl}/oauth2/sign_out    sign out
  Metrics: http://${config.listen.host}:${config.listen.metricsPort}/metrics
  Why 403?  node dist/cli.js explain GET ${publicUrl}/team-a/ --config demo/config.yaml --claims '{"email":"bob@example.com","email_verified":true,"groups":["team-b"]}'

  Config: demo/config.yaml (a real config file).  Ctrl-C stops everything.
────────────────────────────────────────────────────────────────────────────────
`);

  let stopping = false;
  const stop = async () => {
    if (stopping) return;
    stopping = true;
    process.stdout.write('\nstopping…\n');
    await envoy?.stop();
    await new Promise<void>((done) => {
      if (service.exitCode !== null) return done();
      service.once('exit', () => done());
      service.kill('SIGTERM');
    });
    await echo.stop();
    await idp.stop();
    process.stdout.write('demo stopped.\n');
    process.exit(0);
  };
  process.on('SIGINT', () => void stop());
  process.on('SIGTERM', () => void stop());
  service.once('exit', (code) => {
    if (!stopping) {
      process.stderr.write(`oidc-authz exited (${code}); stopping the demo.\n`);
      void stop();
    }
  });
}

main().catch((error: unknown) => {
  for (const child of children) child.kill('SIGTERM');
  process.stderr.write(`demo failed: ${error instanceof Error ? error.message : String(error)}\n`);
  if (String(error).includes('EADDRINUSE')) process.stderr.write('A demo port (5556, 8080, 8081, 8082, 9091) is in use: stop whatever uses it and try again.\n');
  process.exit(1);
});
