/**
 * The pure parts of `oidc-authz login | token | logout`: token-file permissions and atomic writes, the
 * refresh decision, settings precedence, and the mapping of the IdP's RFC 8628 / RFC 6749 answers to
 * messages and exit codes (a scripted token endpoint on loopback; the poll loop's sleep is recorded, not waited).
 */
import { chmodSync, existsSync, mkdtempSync, readdirSync, statSync, utimesSync, writeFileSync, mkdirSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { login, printToken, scopesFor, type UserCliIo } from '../../src/user-cli/commands.js';
import { EXIT, UserCliError, type StoredTokens } from '../../src/user-cli/contract.js';
import { pollForTokens, type DeviceAuthorization, type IdpEndpoints } from '../../src/user-cli/device-flow.js';
import { decide, jwtExpiresAt } from '../../src/user-cli/expiry.js';
import { runUserCli } from '../../src/user-cli/main.js';
import { resolveSettings } from '../../src/user-cli/settings.js';
import { getProfile, putProfile, readTokenFile, tokenFilePath, unsafeReason, withTokenFileLock } from '../../src/user-cli/token-store.js';

const fakeJwt = (claims: Record<string, unknown>) => `e30.${Buffer.from(JSON.stringify(claims)).toString('base64url')}.c2ln`;
const NOW = 1_800_000_000_000;

function entry(overrides: Partial<StoredTokens> = {}): StoredTokens {
  return {
    issuer: 'https://idp.example.com', clientId: 'cli', scope: 'openid',
    idToken: fakeJwt({ exp: NOW / 1000 + 600 }), accessToken: 'opaque', accessTokenExpiresAt: NOW + 600_000,
    refreshToken: 'rt-1', obtainedAt: NOW, ...overrides,
  };
}

/** What `fn` throws (the test fails if it returns). */
function thrown(fn: () => unknown): UserCliError {
  try {
    fn();
  } catch (error) {
    return error as UserCliError;
  }
  throw new Error('expected a throw');
}

const tempHome = () => mkdtempSync(join(tmpdir(), 'oidc-authz-cli-'));

describe('token file', () => {
  test('is written 0600 in a 0700 directory under XDG_CONFIG_HOME, atomically (no temp file left), other profiles kept', () => {
    const env = { XDG_CONFIG_HOME: tempHome() };
    const path = tokenFilePath(env);
    expect(path).toBe(join(env.XDG_CONFIG_HOME, 'oidc-authz', 'tokens.json'));
    putProfile(path, 'default', entry());
    putProfile(path, 'prod', entry({ clientId: 'prod-cli' }));
    expect(statSync(path).mode & 0o777).toBe(0o600);
    expect(statSync(join(env.XDG_CONFIG_HOME, 'oidc-authz')).mode & 0o777).toBe(0o700);
    expect(readdirSync(join(env.XDG_CONFIG_HOME, 'oidc-authz'))).toEqual(['tokens.json']);
    putProfile(path, 'default', undefined);
    expect(Object.keys(readTokenFile(path).profiles)).toEqual(['prod']);
    expect(getProfile(path, 'prod')?.clientId).toBe('prod-cli');
  });

  test('defaults to ~/.config when XDG_CONFIG_HOME is unset or relative', () => {
    expect(tokenFilePath({ HOME: '/home/u' })).toBe('/home/u/.config/oidc-authz/tokens.json');
    expect(tokenFilePath({ HOME: '/home/u', XDG_CONFIG_HOME: 'rel' })).toBe('/home/u/.config/oidc-authz/tokens.json');
  });

  test('a file group or others can read is refused (exit 6) and named with the fix, like ssh', () => {
    const env = { XDG_CONFIG_HOME: tempHome() };
    const path = tokenFilePath(env);
    putProfile(path, 'default', entry());
    chmodSync(path, 0o644);
    const refused = thrown(() => readTokenFile(path));
    expect(refused.message).toBe(`${path} is readable or writable by group or others (mode 0644): refusing to use tokens others may have read; run "chmod 600 ${path}" if it is yours and unshared, or delete it and run oidc-authz login again`);
    expect(refused.exitCode).toBe(EXIT.unsafeStore);
  });

  test('unsafeReason: mode, owner and file type', () => {
    expect(unsafeReason({ mode: 0o100600, uid: 1000, isFile: true }, 1000)).toBeUndefined();
    expect(unsafeReason({ mode: 0o100640, uid: 1000, isFile: true }, 1000)).toMatch(/group or others \(mode 0640\)/);
    expect(unsafeReason({ mode: 0o100602, uid: 1000, isFile: true }, 1000)).toMatch(/mode 0602/);
    expect(unsafeReason({ mode: 0o100600, uid: 0, isFile: true }, 1000)).toBe('is owned by uid 0, not by you (1000)');
    expect(unsafeReason({ mode: 0o120777, uid: 1000, isFile: false }, 1000)).toBe('is not a regular file');
  });
});

describe('which token `token` prints, refreshes or refuses', () => {
  test('uses a token valid beyond min-valid, refreshes one that is not, asks for login without a refresh token', () => {
    expect(decide(entry(), 'id', NOW, 60_000)).toEqual({ action: 'use', token: entry().idToken });
    expect(decide(entry(), 'access', NOW, 60_000)).toEqual({ action: 'use', token: 'opaque' });
    expect(decide(entry(), 'id', NOW + 540_001, 60_000)).toEqual({ action: 'refresh' });
    expect(decide(entry(), 'id', NOW, 600_000)).toEqual({ action: 'refresh' });
    expect(decide(entry({ idToken: undefined }), 'id', NOW, 0)).toEqual({ action: 'refresh' });
    expect(decide(entry({ refreshToken: undefined }), 'id', NOW + 600_000, 60_000)).toMatchObject({ action: 'login', why: expect.stringMatching(/no refresh token/) });
    expect(decide(entry({ refreshToken: undefined, idToken: undefined }), 'id', NOW, 0)).toEqual({ action: 'login', why: 'no ID token is stored' });
  });

  test('a JWT\'s exp is read without verification; anything else has none', () => {
    expect(jwtExpiresAt(fakeJwt({ exp: 1234 }))).toBe(1_234_000);
    expect(jwtExpiresAt('opaque')).toBeUndefined();
    expect(jwtExpiresAt('a.!!!.c')).toBeUndefined();
  });
});

describe('settings and scopes', () => {
  test('flags beat env, env beats cli.yaml; a profile section beats its top level', () => {
    const home = tempHome();
    mkdirSync(join(home, 'oidc-authz'));
    writeFileSync(join(home, 'oidc-authz', 'cli.yaml'), 'issuer: https://file.example.com\nclientId: file-cli\nprofiles:\n  prod:\n    issuer: https://prod.example.com\n    scope: openid groups\n');
    const env = { XDG_CONFIG_HOME: home };
    expect(resolveSettings({}, env)).toEqual({ profile: 'default', issuer: 'https://file.example.com', clientId: 'file-cli', scopes: undefined, audience: undefined });
    expect(resolveSettings({}, { ...env, OIDC_AUTHZ_ISSUER: 'https://env.example.com' }).issuer).toBe('https://env.example.com');
    expect(resolveSettings({ issuer: 'https://flag.example.com' }, { ...env, OIDC_AUTHZ_ISSUER: 'https://env.example.com' }).issuer).toBe('https://flag.example.com');
    expect(() => resolveSettings({ profile: 'prod' }, env)).toThrow(/login needs --client-id/);
    expect(resolveSettings({ profile: 'prod', clientId: 'c' }, env)).toMatchObject({ issuer: 'https://prod.example.com', scopes: ['openid', 'groups'] });
  });

  test('plain http only on loopback; missing settings are a usage error', () => {
    const env = { XDG_CONFIG_HOME: tempHome() };
    expect(() => resolveSettings({ issuer: 'http://idp.example.com', clientId: 'c' }, env)).toThrow(/use https/);
    expect(resolveSettings({ issuer: 'http://127.0.0.1:5556/dex', clientId: 'c' }, env).issuer).toBe('http://127.0.0.1:5556/dex');
    expect(thrown(() => resolveSettings({}, env)).exitCode).toBe(EXIT.usage);
  });

  test('default scopes are filtered by scopes_supported (Keycloak has no "groups"); explicit ones kept, openid added', () => {
    expect(scopesFor(undefined, ['openid', 'email', 'profile', 'offline_access'])).toEqual(['openid', 'email', 'profile', 'offline_access']);
    expect(scopesFor(undefined, undefined)).toEqual(['openid', 'email', 'profile', 'groups', 'offline_access']);
    expect(scopesFor(['email'], [])).toEqual(['openid', 'email']);
  });
});

/** A token endpoint that answers from a script, one answer per request, and records the requests. */
interface ScriptedIdp {
  readonly issuer: string;
  readonly endpoints: IdpEndpoints;
  /** Token endpoint requests. */
  readonly requests: Array<Record<string, string>>;
  readonly deviceRequests: Array<Record<string, string>>;
  close(): Promise<void>;
}

async function scriptedIdp(answers: Array<[number, Record<string, unknown>]>): Promise<ScriptedIdp> {
  const requests: Array<Record<string, string>> = [];
  const deviceRequests: Array<Record<string, string>> = [];
  let issuer = '';
  const server: Server = createServer((req: IncomingMessage, res: ServerResponse) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString()));
    req.on('end', () => {
      const send = (status: number, json: unknown) => {
        res.writeHead(status, { 'content-type': 'application/json' });
        res.end(JSON.stringify(json));
      };
      if (req.url === '/.well-known/openid-configuration') {
        return send(200, { issuer, token_endpoint: `${issuer}/token`, device_authorization_endpoint: `${issuer}/device`, scopes_supported: ['openid', 'offline_access'] });
      }
      if (req.url === '/device') deviceRequests.push(Object.fromEntries(new URLSearchParams(body)));
      if (req.url === '/device') return send(200, { device_code: 'dc', user_code: 'ABCD-EFGH', verification_uri: `${issuer}/verify`, verification_uri_complete: `${issuer}/verify?user_code=ABCD-EFGH`, expires_in: 60, interval: 2 });
      requests.push(Object.fromEntries(new URLSearchParams(body)));
      const [status, json] = answers.shift() ?? [500, { error: 'server_error' }];
      send(status, json);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  issuer = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    issuer,
    endpoints: { issuer, deviceAuthorizationEndpoint: `${issuer}/device`, tokenEndpoint: `${issuer}/token`, revocationEndpoint: undefined, scopesSupported: undefined },
    requests,
    deviceRequests,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}

/** A clock that moves only when the code under test sleeps; the sleeps are recorded. */
function fakeClock() {
  let now = NOW;
  const slept: number[] = [];
  const sleep = async (ms: number): Promise<void> => {
    slept.push(ms);
    now += ms;
  };
  return { slept, now: () => now, sleep };
}

const AUTHORIZATION: DeviceAuthorization = { deviceCode: 'dc', userCode: 'ABCD-EFGH', verificationUri: 'x', verificationUriComplete: undefined, expiresInS: 60, intervalS: 5 };
const pending: [number, Record<string, unknown>] = [400, { error: 'authorization_pending' }];

describe('polling the token endpoint (RFC 8628 §3.5)', () => {
  test('an approval answered at the first poll after expires_in still counts: the IdP decides, not our clock', async () => {
    const idp = await scriptedIdp([pending, [200, { access_token: 'at' }]]);
    try {
      const clock = fakeClock();
      const { tokens } = await pollForTokens(idp.endpoints, 'cli', { ...AUTHORIZATION, expiresInS: 8 }, clock);
      expect(tokens.access_token).toBe('at');
      expect(clock.slept).toEqual([5_000, 5_000]);
    } finally {
      await idp.close();
    }
  });

  test('waits the interval, keeps polling while pending, adds 5 s at each slow_down and keeps it', async () => {
    const idp = await scriptedIdp([pending, [400, { error: 'slow_down' }], pending, [200, { access_token: 'at', id_token: 'it', expires_in: 60 }]]);
    try {
      const clock = fakeClock();
      const { tokens, report } = await pollForTokens(idp.endpoints, 'cli', AUTHORIZATION, clock);
      expect(tokens).toMatchObject({ access_token: 'at', id_token: 'it' });
      expect(clock.slept).toEqual([5_000, 5_000, 10_000, 10_000]);
      expect(report).toEqual({ polls: 4, slowDowns: 1, finalIntervalS: 10 });
      expect(idp.requests[0]).toEqual({ grant_type: 'urn:ietf:params:oauth:grant-type:device_code', device_code: 'dc', client_id: 'cli' });
    } finally {
      await idp.close();
    }
  });

  test.each([
    ['access_denied', EXIT.denied, 'the login was refused on the verification page (access_denied): nothing was stored; run oidc-authz login again to retry'],
    ['expired_token', EXIT.expired, 'the code ABCD-EFGH expired before it was approved (expired_token, after 60 s): run oidc-authz login again'],
    ['invalid_client', EXIT.failure, 'the IdP refused the device login: invalid_client: nope'],
  ])('%s → exit %d with a clear message', async (error, exitCode, message) => {
    const idp = await scriptedIdp([pending, [400, { error, error_description: 'nope' }]]);
    try {
      await expect(pollForTokens(idp.endpoints, 'cli', AUTHORIZATION, fakeClock())).rejects.toEqual(new UserCliError(message, exitCode));
    } finally {
      await idp.close();
    }
  });

  test('stops on its own when expires_in has passed, whatever the IdP keeps saying', async () => {
    const idp = await scriptedIdp(Array.from({ length: 20 }, () => pending));
    try {
      const clock = fakeClock();
      const failure = pollForTokens(idp.endpoints, 'cli', AUTHORIZATION, clock);
      await expect(failure).rejects.toEqual(new UserCliError('the code ABCD-EFGH expired before it was approved (still pending at the IdP, after 60 s): run oidc-authz login again', EXIT.expired));
      // Polls at 5, 10, …, 60 s: the last one at the deadline, in case the user approved just before it.
      expect(idp.requests).toHaveLength(12);
    } finally {
      await idp.close();
    }
  });
});

describe('login and token against the scripted IdP', () => {
  function io(env: NodeJS.ProcessEnv) {
    const out: string[] = [];
    const err: string[] = [];
    const clock = fakeClock();
    const value: UserCliIo = { stdout: (t) => void out.push(t), stderr: (t) => void err.push(t), env, now: clock.now, sleep: clock.sleep };
    return { io: value, out, err };
  }

  test('login prints the URL and code on stderr only; token prints exactly the token; a refused refresh says "login again" (exit 3)', async () => {
    const idToken = fakeJwt({ email: 'alice@example.com', exp: NOW / 1000 + 120 });
    const idp = await scriptedIdp([pending, [200, { access_token: 'at-1', id_token: idToken, refresh_token: 'rt-1', expires_in: 120 }], [400, { error: 'invalid_grant', error_description: 'Token is not active' }]]);
    try {
      const env = { XDG_CONFIG_HOME: tempHome() };
      const session = io(env);
      expect(await login({ profile: 'default', issuer: idp.issuer, clientId: 'cli', scopes: undefined, audience: undefined }, session.io)).toBe(0);
      expect(session.out).toEqual([]);
      expect(session.err.join('')).toContain(`  ${idp.issuer}/verify?user_code=ABCD-EFGH\n`);
      expect(session.err.join('')).toContain('the code ABCD-EFGH');
      expect(session.err.join('')).toMatch(/Logged in as alice@example\.com .* after 4 s and 2 polls/);
      expect(session.err.join('')).not.toContain(idToken);
      expect(getProfile(tokenFilePath(env), 'default')).toMatchObject({ scope: 'openid offline_access', refreshToken: 'rt-1', accessToken: 'at-1' });

      const printed = io(env);
      expect(await printToken({ profile: 'default', kind: 'id', minValidMs: 60_000 }, printed.io)).toBe(0);
      expect(printed.out).toEqual([`${idToken}\n`]);
      expect(printed.err).toEqual([]);

      const refused = io(env);
      expect(await printToken({ profile: 'default', kind: 'id', minValidMs: 300_000 }, refused.io).catch((e: UserCliError) => e)).toEqual(
        new UserCliError('the IdP refused the stored refresh token (invalid_grant: Token is not active): run oidc-authz login again', EXIT.loginRequired),
      );
      expect(idp.requests.at(-1)).toEqual({ grant_type: 'refresh_token', refresh_token: 'rt-1', client_id: 'cli' });
      expect(refused.out).toEqual([]);
    } finally {
      await idp.close();
    }
  });

  test('parallel `token` runs refresh one at a time (file lock): one refresh at the IdP, both print the new token', async () => {
    const fresh = fakeJwt({ email: 'alice@example.com', exp: NOW / 1000 + 3600 });
    // A second refresh with the spent token would get Dex's answer: the lock must keep it from happening.
    const idp = await scriptedIdp([[200, { access_token: 'at-2', id_token: fresh, refresh_token: 'rt-2', expires_in: 3600 }], [400, { error: 'invalid_request', error_description: 'Refresh token is invalid or has already been claimed by another client.' }]]);
    try {
      const env = { XDG_CONFIG_HOME: tempHome() };
      putProfile(tokenFilePath(env), 'default', entry({ issuer: idp.issuer, idToken: fakeJwt({ exp: NOW / 1000 + 30 }) }));
      const runs = [io(env), io(env)];
      const codes = await Promise.all(runs.map((run) => printToken({ profile: 'default', kind: 'id', minValidMs: 60_000 }, run.io)));
      expect(codes).toEqual([0, 0]);
      expect(runs.map((run) => run.out)).toEqual([[`${fresh}\n`], [`${fresh}\n`]]);
      expect(idp.requests).toEqual([{ grant_type: 'refresh_token', refresh_token: 'rt-1', client_id: 'cli' }]);
      expect(getProfile(tokenFilePath(env), 'default')).toMatchObject({ refreshToken: 'rt-2', accessToken: 'at-2', idToken: fresh });
      expect(existsSync(`${tokenFilePath(env)}.lock`)).toBe(false);
    } finally {
      await idp.close();
    }
  });

  test('a lock left by a killed run is broken once stale', async () => {
    const path = tokenFilePath({ XDG_CONFIG_HOME: tempHome() });
    mkdirSync(join(path, '..'), { recursive: true });
    writeFileSync(`${path}.lock`, '12345\n');
    const old = new Date(Date.now() - 120_000);
    utimesSync(`${path}.lock`, old, old);
    expect(await withTokenFileLock(path, async () => 'ran')).toBe('ran');
    expect(existsSync(`${path}.lock`)).toBe(false);
  });

  test('--audience and --scope reach the device authorization request', async () => {
    const idp = await scriptedIdp([[200, { access_token: 'at' }]]);
    try {
      const session = io({ XDG_CONFIG_HOME: tempHome() });
      await login({ profile: 'default', issuer: idp.issuer, clientId: 'cli', scopes: ['email'], audience: 'https://api.example.com' }, session.io);
      expect(idp.deviceRequests).toEqual([{ client_id: 'cli', scope: 'openid email', audience: 'https://api.example.com' }]);
      expect(session.err.join('')).toContain('no refresh token (add offline_access to --scope to stay logged in)');
    } finally {
      await idp.close();
    }
  });

  test('flag mistakes are usage errors (exit 2) on stderr', async () => {
    const session = io({ XDG_CONFIG_HOME: tempHome() });
    expect(await runUserCli('token', ['--id-token', '--access-token'], session.io)).toBe(EXIT.usage);
    expect(await runUserCli('token', ['--min-valid', 'soon'], session.io)).toBe(EXIT.usage);
    expect(await runUserCli('login', ['--bogus'], session.io)).toBe(EXIT.usage);
    expect(await runUserCli('token', ['--profile', '../x'], session.io)).toBe(EXIT.usage);
    expect(session.out).toEqual([]);
    expect(session.err[0]).toBe('oidc-authz token: --id-token or --access-token, not both\n');
    expect(session.err[1]).toBe('oidc-authz token: --min-valid "soon": use a duration like 60s, 5m or 1h\n');
    expect(session.err[2]).toMatch(/^oidc-authz login: Unknown option '--bogus'/);
  });

  test('token without a login: exit 3', async () => {
    const session = io({ XDG_CONFIG_HOME: tempHome() });
    await expect(printToken({ profile: 'default', kind: 'id', minValidMs: 0 }, session.io)).rejects.toMatchObject({ exitCode: EXIT.loginRequired, message: expect.stringMatching(/^not logged in \(profile default, .*\): run oidc-authz login$/) });
  });
});
