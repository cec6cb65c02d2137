/**
 * A real Keycloak for the real-IdP tests: `launchKeycloak` starts the server installed by
 * scripts/install-keycloak.sh (`make install`) on 127.0.0.1 from a copy of its database template,
 * `KeycloakAdmin` drives its admin REST API, and `createTestRealm` builds the realm our tests rely on
 * (clients, groups, users, mappers — the names are part of the contract with the tests).
 *
 * Why Keycloak and not only the dev IdP: Kubeflow deployments put Keycloak (or Dex in front of it)
 * behind oidc-authz, and its tokens differ from a hand-rolled issuer's in ways that matter to us —
 * `aud` lists the clients whose roles the user holds, `azp` names the requesting client, groups are
 * full paths, user attributes can be mapped into userinfo only, service accounts have no email.
 *
 * Starting Keycloak costs ~25 s even from the template, so a test run starts one (jest globalSetup)
 * and every test file creates its own realm in it. Nothing here imports src/, so a globalSetup can
 * load this module without loading the service.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { appendFileSync, copyFileSync, existsSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

/** The Keycloak installation (made by scripts/install-keycloak.sh and already `kc.sh build`-ed). */
export const KEYCLOAK_HOME = resolve(process.cwd(), process.env.KEYCLOAK_HOME ?? '.tools/keycloak-26.7.3');

/**
 * An H2 database with the master realm and the bootstrap admin (admin/admin) already created: the first
 * start of an empty database spends 1–2 minutes on migrations. Only ever copied, never opened.
 */
export const KEYCLOAK_DB_TEMPLATE = resolve(process.cwd(), process.env.KEYCLOAK_DB_TEMPLATE ?? '.tools/keycloak-26.7.3-db/keycloakdb.mv.db');

/** The bootstrap admin of the template (a loopback test server only). */
export const KEYCLOAK_ADMIN = { username: 'admin', password: 'admin' } as const;

/** How long a start from the template may take on a busy 2-core machine before we give up. */
const STARTUP_TIMEOUT_MS = 180_000;
/** How long Keycloak gets to shut down cleanly after SIGTERM before the process group is killed. */
const STOP_GRACE_MS = 15_000;
/** Parallel admin requests: enough to hide latency, few enough not to starve a 2-core Keycloak. */
const BATCH_SIZE = 10;

/** True when both the server and the database template are installed. */
export function keycloakInstalled(): boolean {
  return existsSync(join(KEYCLOAK_HOME, 'bin', 'kc.sh')) && existsSync(KEYCLOAK_DB_TEMPLATE);
}

/** A Keycloak started by `launchKeycloak`. */
export interface RunningKeycloak {
  /** e.g. http://127.0.0.1:41234 (realms live under /realms/<name>). */
  readonly url: string;
  readonly port: number;
  /** Pid of kc.sh, which is also the id of the process group holding it and its java child. */
  readonly pid: number;
  /** Everything Keycloak wrote to stdout and stderr. */
  log(): string;
  /** Stops Keycloak (SIGTERM, SIGKILL after 15 s) and removes its database copy. */
  stop(): Promise<void>;
}

/**
 * A port that was free a moment ago. (test/support/service.ts has the same helper, but importing it
 * would load the whole service into a globalSetup.)
 */
async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolvePromise) => server.listen(0, '127.0.0.1', resolvePromise));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolvePromise) => server.close(() => resolvePromise()));
  return port;
}

function exited(child: ChildProcess): boolean {
  return child.exitCode !== null || child.signalCode !== null;
}

/** Signals the whole process group: kc.sh runs java as a background child rather than exec-ing it. */
function signalGroup(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pid, signal);
  } catch {
    // ESRCH: the group is already gone.
  }
}

/** Resolves true once `child` has exited, false if it is still running after `ms`. */
function exitWithin(child: ChildProcess, ms: number): Promise<boolean> {
  if (exited(child)) return Promise.resolve(true);
  return new Promise((resolvePromise) => {
    const timer = setTimeout(() => {
      child.off('exit', onExit);
      resolvePromise(false);
    }, ms);
    const onExit = () => {
      clearTimeout(timer);
      resolvePromise(true);
    };
    child.once('exit', onExit);
  });
}

/** One readiness probe: does `GET /realms/master` answer 200? Connection errors count as "not yet". */
async function masterRealmAnswers(url: string): Promise<boolean> {
  try {
    const response = await fetch(`${url}/realms/master`, { signal: AbortSignal.timeout(5_000) });
    await response.arrayBuffer();
    return response.status === 200;
  } catch {
    return false;
  }
}

/**
 * Polls `GET /realms/master` until it answers 200. Keycloak opens its HTTP port before the realms are
 * loaded, so a TCP connect is not enough. `gaveUp()` lets a caller stop waiting early (the server
 * exited): it returns the reason, or undefined to keep polling.
 */
async function pollUntilReady(url: string, timeoutMs: number, gaveUp: () => string | undefined = () => undefined): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await masterRealmAnswers(url)) return;
    const reason = gaveUp();
    if (reason !== undefined) throw new Error(reason);
    if (Date.now() >= deadline) throw new Error(`Keycloak at ${url} did not answer GET /realms/master with 200 within ${timeoutMs} ms`);
    await new Promise((resolvePromise) => setTimeout(resolvePromise, 250));
  }
}

/** Resolves when the Keycloak at `url` (started by another process, e.g. jest's globalSetup) serves its master realm. */
export async function waitForKeycloak(url: string, timeoutMs: number): Promise<void> {
  await pollUntilReady(url.replace(/\/+$/, ''), timeoutMs);
}

/**
 * Waits for the Keycloak at `url` (started elsewhere, e.g. by jest's globalSetup) and returns an admin
 * client logged in as the template's bootstrap admin.
 */
export async function connectKeycloak(url: string, timeoutMs = 60_000): Promise<KeycloakAdmin> {
  const base = url.replace(/\/+$/, '');
  await waitForKeycloak(base, timeoutMs);
  const admin = new KeycloakAdmin(base);
  await admin.login();
  return admin;
}

/** A Keycloak that `spawnKeycloak` started and that may still be booting. */
export interface StartingKeycloak extends RunningKeycloak {
  /** Resolves once it serves the master realm; rejects (and stops it) if it exits first or takes over 180 s. */
  readonly ready: Promise<void>;
}

/**
 * Starts Keycloak on a free 127.0.0.1 port from a fresh copy of the database template and returns at
 * once: its URL is known before it is ready, so a jest globalSetup can start it and let the tests that
 * need it wait while others run. It runs in its own process group so that `stop()` reaches java too;
 * should the caller never call stop(), the group is killed when this Node process exits. `logFile`
 * receives its output as well (for a test process that did not start it).
 */
export async function spawnKeycloak(options: { logFile?: string } = {}): Promise<StartingKeycloak> {
  if (!keycloakInstalled()) {
    throw new Error(`Keycloak not found at ${KEYCLOAK_HOME} (or its database template ${KEYCLOAK_DB_TEMPLATE}): run "make install"`);
  }
  const dir = mkdtempSync(join(tmpdir(), 'oidc-authz-keycloak-'));
  copyFileSync(KEYCLOAK_DB_TEMPLATE, join(dir, 'keycloakdb.mv.db'));
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const child = spawn(
    join(KEYCLOAK_HOME, 'bin', 'kc.sh'),
    [
      'start',
      '--optimized',
      '--http-enabled=true',
      '--http-host=127.0.0.1',
      `--http-port=${port}`,
      // Issuers follow the request's host, so tests may reach it as 127.0.0.1 or localhost.
      '--hostname-strict=false',
      `--db-url=jdbc:h2:file:${join(dir, 'keycloakdb')};NON_KEYWORDS=VALUE`,
    ],
    {
      cwd: KEYCLOAK_HOME,
      detached: true,
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, JAVA_OPTS_KC_HEAP: '-Xms128m -Xmx768m' },
    },
  );
  const pid = child.pid;
  if (pid === undefined) {
    rmSync(dir, { recursive: true, force: true });
    throw new Error(`could not start ${join(KEYCLOAK_HOME, 'bin', 'kc.sh')}`);
  }
  let output = '';
  const record = (chunk: Buffer) => {
    output += chunk.toString();
    if (options.logFile !== undefined) appendFileSync(options.logFile, chunk);
  };
  child.stdout!.on('data', record);
  child.stderr!.on('data', record);
  // A crashed or forgetful test must not leave a JVM eating one of the two cores.
  const killOnExit = () => signalGroup(pid, 'SIGKILL');
  process.once('exit', killOnExit);

  let stopping: Promise<void> | undefined;
  const stop = (): Promise<void> => {
    stopping ??= (async () => {
      if (!exited(child)) {
        signalGroup(pid, 'SIGTERM');
        if (!(await exitWithin(child, STOP_GRACE_MS))) {
          signalGroup(pid, 'SIGKILL');
          await exitWithin(child, 5_000);
        }
      }
      // kc.sh waits for java before exiting; this catches a java left behind if kc.sh itself was killed.
      signalGroup(pid, 'SIGKILL');
      process.off('exit', killOnExit);
      rmSync(dir, { recursive: true, force: true });
    })();
    return stopping;
  };

  const ready = pollUntilReady(url, STARTUP_TIMEOUT_MS, () =>
    exited(child) ? `Keycloak exited (${child.exitCode ?? child.signalCode}) before serving ${url}` : undefined,
  ).catch(async (error: unknown) => {
    await stop();
    throw new Error(`${(error as Error).message}; Keycloak said:\n${output.slice(-4000)}`, { cause: error });
  });
  return { url, port, pid, ready, log: () => output, stop };
}

/** Starts Keycloak (spawnKeycloak) and resolves once it serves the master realm. */
export async function launchKeycloak(): Promise<RunningKeycloak> {
  const keycloak = await spawnKeycloak();
  await keycloak.ready;
  return keycloak;
}

/** An OAuth token endpoint's successful answer. */
export interface TokenResponse {
  readonly access_token: string;
  readonly token_type: string;
  readonly expires_in: number;
  readonly id_token?: string;
  readonly refresh_token?: string;
  readonly refresh_expires_in?: number;
  readonly scope?: string;
  readonly session_state?: string;
  readonly [field: string]: unknown;
}

/** A token endpoint's error answer (RFC 6749 §5.2), thrown so tests can match on `error`. */
export class TokenError extends Error {
  constructor(
    readonly status: number,
    readonly error: string | undefined,
    readonly errorDescription: string | undefined,
    readonly body: string,
  ) {
    super(`token endpoint answered HTTP ${status}: ${body}`);
    this.name = 'TokenError';
  }
}

/** POSTs a form to a token endpoint; returns the token response or throws a TokenError. */
export async function requestToken(tokenEndpoint: string, form: Record<string, string | undefined>): Promise<TokenResponse> {
  const body = new URLSearchParams();
  for (const [name, value] of Object.entries(form)) if (value !== undefined) body.append(name, value);
  const response = await fetch(tokenEndpoint, { method: 'POST', body });
  const text = await response.text();
  if (!response.ok) {
    let parsed: { error?: string; error_description?: string } = {};
    try {
      parsed = JSON.parse(text) as typeof parsed;
    } catch {
      // Not JSON (a proxy error page, say): the body in the message is all there is.
    }
    throw new TokenError(response.status, parsed.error, parsed.error_description, text);
  }
  return JSON.parse(text) as TokenResponse;
}

/** A protocol mapper as the admin API takes it; `config` values are strings ("true", "false"). */
export interface ProtocolMapper {
  name: string;
  protocolMapper: string;
  protocol?: string;
  config: Record<string, string>;
}

/** The subset of Keycloak's ClientRepresentation we set; anything else passes through. */
export interface ClientSettings {
  clientId: string;
  publicClient?: boolean;
  standardFlowEnabled?: boolean;
  directAccessGrantsEnabled?: boolean;
  serviceAccountsEnabled?: boolean;
  implicitFlowEnabled?: boolean;
  redirectUris?: string[];
  webOrigins?: string[];
  attributes?: Record<string, string>;
  [setting: string]: unknown;
}

/** A user to create: enabled, with a non-temporary password and no required actions. */
export interface NewUser {
  username: string;
  password: string;
  email?: string;
  emailVerified?: boolean;
  firstName?: string;
  lastName?: string;
  attributes?: Record<string, string[]>;
}

/** One entry of `GET /admin/realms/{realm}/users/{id}/sessions`. */
export interface UserSession {
  readonly id: string;
  readonly username: string;
  readonly userId: string;
  readonly ipAddress: string;
  readonly start: number;
  readonly lastAccess: number;
  /** Client UUID → clientId, for the clients the session has logged in to. */
  readonly clients: Record<string, string>;
  readonly [field: string]: unknown;
}

/**
 * Keycloak's admin REST API (`/admin/realms/...`) as the master realm's admin, through `admin-cli`'s
 * password grant. Admin tokens live 60 s, so each request first fetches a new one when the current one
 * is about to expire. Every non-2xx answer throws an Error naming the request, the status and the body.
 */
export class KeycloakAdmin {
  #token: { value: string; expiresAt: number } | undefined;
  #loggingIn: Promise<string> | undefined;

  constructor(
    readonly url: string,
    readonly credentials: { readonly username: string; readonly password: string } = KEYCLOAK_ADMIN,
  ) {}

  /** Logs in now (requests also log in on demand); fails fast on wrong credentials. */
  async login(): Promise<void> {
    this.#token = undefined;
    await this.#accessToken();
  }

  /** A valid admin token; concurrent callers share one login. */
  async #accessToken(): Promise<string> {
    // 15 s of margin: a request queued behind others on a busy server must not arrive with an expired token.
    if (this.#token && this.#token.expiresAt - 15_000 > Date.now()) return this.#token.value;
    this.#loggingIn ??= requestToken(`${this.url}/realms/master/protocol/openid-connect/token`, {
      grant_type: 'password',
      client_id: 'admin-cli',
      username: this.credentials.username,
      password: this.credentials.password,
    })
      .then((tokens) => {
        this.#token = { value: tokens.access_token, expiresAt: Date.now() + tokens.expires_in * 1000 };
        return tokens.access_token;
      })
      .finally(() => (this.#loggingIn = undefined));
    return this.#loggingIn;
  }

  /** One admin API call; `path` is below /admin/realms. Returns the response (body unread) for 2xx. */
  async #send(method: string, path: string, body?: unknown): Promise<Response> {
    const token = await this.#accessToken();
    const response = await fetch(`${this.url}/admin/realms${path}`, {
      method,
      headers: { authorization: `Bearer ${token}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    if (!response.ok) throw new Error(`Keycloak admin ${method} ${path}: HTTP ${response.status} ${await response.text()}`);
    return response;
  }

  /** An admin API call whose answer is JSON. */
  async request<T>(method: string, path: string, body?: unknown): Promise<T> {
    return (await (await this.#send(method, path, body)).json()) as T;
  }

  /** An admin API call whose answer is empty (or ignored). */
  async call(method: string, path: string, body?: unknown): Promise<void> {
    await (await this.#send(method, path, body)).arrayBuffer();
  }

  /** A POST that creates something: returns the new object's id, the last segment of Location. */
  async #create(path: string, body: unknown): Promise<string> {
    const response = await this.#send('POST', path, body);
    await response.arrayBuffer();
    const location = response.headers.get('location');
    if (location === null) throw new Error(`Keycloak admin POST ${path}: HTTP ${response.status} without a Location header`);
    return location.slice(location.lastIndexOf('/') + 1);
  }

  /** Creates a realm from a RealmRepresentation (`realm` is its name). */
  async createRealm(settings: { realm: string; [setting: string]: unknown }): Promise<void> {
    await this.call('POST', '', settings);
  }

  /** Deletes a realm and everything in it. */
  async deleteRealm(realm: string): Promise<void> {
    await this.call('DELETE', `/${enc(realm)}`);
  }

  /** The realm's declarative user profile (UPConfig). */
  async getUserProfile(realm: string): Promise<Record<string, unknown>> {
    return this.request('GET', `/${enc(realm)}/users/profile`);
  }

  /** Replaces the realm's declarative user profile. */
  async updateUserProfile(realm: string, profile: Record<string, unknown>): Promise<void> {
    await this.call('PUT', `/${enc(realm)}/users/profile`, profile);
  }

  /** Creates a client; returns its internal id (a UUID, not the clientId). */
  async createClient(realm: string, client: ClientSettings): Promise<string> {
    return this.#create(`/${enc(realm)}/clients`, { protocol: 'openid-connect', enabled: true, ...client });
  }

  /** A client's whole representation by clientId (`id` is its internal id), to change and put back with updateClient. */
  async getClient(realm: string, clientId: string): Promise<ClientSettings & { id: string }> {
    const found = await this.request<Array<ClientSettings & { id: string }>>('GET', `/${enc(realm)}/clients?clientId=${enc(clientId)}`);
    const client = found.find((c) => c.clientId === clientId);
    if (client === undefined) throw new Error(`no client ${clientId} in realm ${realm}`);
    return client;
  }

  /** Replaces a client's settings with a whole representation (as getClient returns it). */
  async updateClient(realm: string, client: ClientSettings & { id: string }): Promise<void> {
    await this.call('PUT', `/${enc(realm)}/clients/${client.id}`, client);
  }

  /** The secret of a confidential client, by internal id. */
  async getClientSecret(realm: string, clientUuid: string): Promise<string> {
    const { value } = await this.request<{ value?: string }>('GET', `/${enc(realm)}/clients/${clientUuid}/client-secret`);
    if (value === undefined) throw new Error(`client ${clientUuid} of realm ${realm} has no secret (a public client?)`);
    return value;
  }

  /** Adds a role to a client, by internal id. */
  async addClientRole(realm: string, clientUuid: string, role: string): Promise<void> {
    await this.call('POST', `/${enc(realm)}/clients/${clientUuid}/roles`, { name: role });
  }

  /** Adds a protocol mapper to a client, by internal id. */
  async addProtocolMapper(realm: string, clientUuid: string, mapper: ProtocolMapper): Promise<void> {
    await this.call('POST', `/${enc(realm)}/clients/${clientUuid}/protocol-mappers/models`, { protocol: 'openid-connect', ...mapper });
  }

  /** Creates a top-level group; returns its id. */
  async createGroup(realm: string, name: string): Promise<string> {
    return this.#create(`/${enc(realm)}/groups`, { name });
  }

  /** Creates an enabled user with a non-temporary password and no required actions; returns its id. */
  async createUser(realm: string, user: NewUser): Promise<string> {
    const { password, ...profile } = user;
    return this.#create(`/${enc(realm)}/users`, {
      ...profile,
      enabled: true,
      requiredActions: [],
      credentials: [{ type: 'password', value: password, temporary: false }],
    });
  }

  /** Makes a user a member of groups (by id), BATCH_SIZE requests at a time. */
  async addUserToGroups(realm: string, userId: string, groupIds: readonly string[]): Promise<void> {
    await inBatches(groupIds, (groupId) => this.call('PUT', `/${enc(realm)}/users/${userId}/groups/${groupId}`));
  }

  /** Grants a user a role of a client (by the client's internal id). */
  async grantClientRole(realm: string, userId: string, clientUuid: string, role: string): Promise<void> {
    const representation = await this.request<{ id: string; name: string }>('GET', `/${enc(realm)}/clients/${clientUuid}/roles/${enc(role)}`);
    await this.call('POST', `/${enc(realm)}/users/${userId}/role-mappings/clients/${clientUuid}`, [representation]);
  }

  /** A user's id by exact username. */
  async findUserId(realm: string, username: string): Promise<string> {
    const users = await this.request<Array<{ id: string; username: string }>>('GET', `/${enc(realm)}/users?exact=true&username=${enc(username)}`);
    const user = users.find((u) => u.username === username.toLowerCase());
    if (user === undefined) throw new Error(`no user ${username} in realm ${realm}`);
    return user.id;
  }

  /** A user's online (not offline) sessions. */
  async listUserSessions(realm: string, userId: string): Promise<UserSession[]> {
    return this.request('GET', `/${enc(realm)}/users/${userId}/sessions`);
  }

  /** Ends all of a user's sessions (Keycloak also refuses tokens issued before now for this user). */
  async logoutUser(realm: string, userId: string): Promise<void> {
    await this.call('POST', `/${enc(realm)}/users/${userId}/logout`);
  }
}

function enc(segment: string): string {
  return encodeURIComponent(segment);
}

/** Runs `task` over `items`, BATCH_SIZE at a time, keeping results in order. */
async function inBatches<T, R>(items: readonly T[], task: (item: T) => Promise<R>): Promise<R[]> {
  const results: R[] = [];
  for (let start = 0; start < items.length; start += BATCH_SIZE) {
    results.push(...(await Promise.all(items.slice(start, start + BATCH_SIZE).map(task))));
  }
  return results;
}

/** The 81 groups carol belongs to: enough full paths to overflow a cookie or a header if we copied them naively. */
export const LONG_GROUPS: readonly string[] = Array.from(
  { length: 81 },
  (_, i) => `workspace-team-with-a-long-descriptive-name-${String(i).padStart(3, '0')}`,
);

/** The users of the test realm; each one's password is `<username>-pw`. */
export type TestUsername = 'alice' | 'bob' | 'carol' | 'dave';

/** What `createTestRealm` needs from the test. */
export interface TestRealmOptions {
  /** Default: `oidc-authz-<random>`, so test files can share one Keycloak. */
  name?: string;
  /** Registered redirect URIs of the `oidc-authz` client (our /oauth2/callback). */
  redirectUris: string[];
  /** Registered post-logout redirect URIs of the `oidc-authz` client. */
  postLogoutRedirectUris: string[];
}

/** The realm built by `createTestRealm`, with helpers to get tokens from it. */
export interface TestRealm {
  readonly name: string;
  /** `<keycloak url>/realms/<name>`, the `iss` of its tokens when reached through the same host. */
  readonly issuer: string;
  readonly clients: {
    /** Our confidential client: code flow with S256 PKCE, password grant allowed for tests. */
    readonly oidcAuthz: { readonly clientId: 'oidc-authz'; readonly secret: string };
    /** A confidential client whose tokens our service must refuse (audience/azp is not oidc-authz). */
    readonly otherApp: { readonly clientId: 'other-app'; readonly secret: string };
    /** A service account (client credentials grant). */
    readonly ciBot: { readonly clientId: 'ci-bot'; readonly secret: string };
    /** A public client whose access tokens carry `aud: oidc-authz` through an audience mapper. */
    readonly cli: { readonly clientId: 'kubeflow-cli' };
  };
  readonly users: Readonly<Record<TestUsername, { readonly password: string; readonly email: string; readonly id: string }>>;
  readonly admin: KeycloakAdmin;
  /** Resource-owner password grant; `secret` undefined for public clients. Default scope `openid`. */
  passwordGrant(clientId: string, secret: string | undefined, username: string, password: string, scope?: string): Promise<TokenResponse>;
  /** Client credentials grant (ci-bot). */
  clientCredentialsGrant(clientId: string, secret: string): Promise<TokenResponse>;
  /** Refresh grant; `secret` undefined for public clients. */
  refreshGrant(clientId: string, secret: string | undefined, refreshToken: string): Promise<TokenResponse>;
  /** The user's online sessions. */
  userSessions(username: TestUsername): Promise<UserSession[]>;
  /** Ends all of the user's sessions, as an admin would. */
  logoutUser(username: TestUsername): Promise<void>;
  /** Deletes the realm. */
  remove(): Promise<void>;
}

/** `groups` claim with full paths (`/ws-a`) in the ID token, access token and userinfo. */
const GROUPS_MAPPER: ProtocolMapper = {
  name: 'groups',
  protocolMapper: 'oidc-group-membership-mapper',
  config: {
    'claim.name': 'groups',
    'full.path': 'true',
    'id.token.claim': 'true',
    'access.token.claim': 'true',
    'userinfo.token.claim': 'true',
    'introspection.token.claim': 'true',
  },
};

/** `team` from the user attribute, in userinfo only: tests check we read claims from userinfo. */
const TEAM_MAPPER: ProtocolMapper = {
  name: 'team',
  protocolMapper: 'oidc-usermodel-attribute-mapper',
  config: {
    'user.attribute': 'team',
    'claim.name': 'team',
    'jsonType.label': 'String',
    'id.token.claim': 'false',
    'access.token.claim': 'false',
    'lightweight.claim': 'false',
    'introspection.token.claim': 'false',
    'userinfo.token.claim': 'true',
  },
};

/** Keycloak's recommended way to make another client's access tokens acceptable to oidc-authz. */
const OIDC_AUTHZ_AUDIENCE_MAPPER: ProtocolMapper = {
  name: 'oidc-authz-audience',
  protocolMapper: 'oidc-audience-mapper',
  config: {
    'included.client.audience': 'oidc-authz',
    'id.token.claim': 'false',
    'access.token.claim': 'true',
    'introspection.token.claim': 'true',
  },
};

/** Confidential, with every flow off unless a client turns it on. */
const NO_FLOWS = {
  publicClient: false,
  standardFlowEnabled: false,
  implicitFlowEnabled: false,
  directAccessGrantsEnabled: false,
  serviceAccountsEnabled: false,
} as const;

/** Creates the realm's clients and mappers; returns the internal ids of the clients others refer to. */
async function createClients(admin: KeycloakAdmin, realm: string, options: TestRealmOptions) {
  const [oidcAuthz, cli, wsA, wsB, otherApp, ciBot] = await Promise.all([
    admin.createClient(realm, {
      ...NO_FLOWS,
      clientId: 'oidc-authz',
      standardFlowEnabled: true,
      // Tests fetch tokens for our client with the password grant instead of driving a browser.
      directAccessGrantsEnabled: true,
      redirectUris: options.redirectUris,
      webOrigins: [],
      attributes: {
        'post.logout.redirect.uris': options.postLogoutRedirectUris.join('##'),
        'pkce.code.challenge.method': 'S256',
      },
    }),
    admin.createClient(realm, {
      ...NO_FLOWS,
      clientId: 'kubeflow-cli',
      publicClient: true,
      standardFlowEnabled: true,
      directAccessGrantsEnabled: true,
      redirectUris: ['http://127.0.0.1/*'],
      webOrigins: [],
    }),
    admin.createClient(realm, { ...NO_FLOWS, clientId: 'ws-a' }),
    admin.createClient(realm, { ...NO_FLOWS, clientId: 'ws-b' }),
    admin.createClient(realm, { ...NO_FLOWS, clientId: 'other-app', directAccessGrantsEnabled: true }),
    admin.createClient(realm, { ...NO_FLOWS, clientId: 'ci-bot', serviceAccountsEnabled: true }),
  ]);
  await Promise.all([
    admin.addProtocolMapper(realm, oidcAuthz, GROUPS_MAPPER),
    admin.addProtocolMapper(realm, oidcAuthz, TEAM_MAPPER),
    admin.addProtocolMapper(realm, cli, GROUPS_MAPPER),
    admin.addProtocolMapper(realm, cli, OIDC_AUTHZ_AUDIENCE_MAPPER),
    admin.addClientRole(realm, wsA, 'ws_access'),
    admin.addClientRole(realm, wsB, 'ws_access'),
  ]);
  return { oidcAuthz, wsA, otherApp, ciBot };
}

/** Creates the groups (in batches); returns name → id. */
async function createGroups(admin: KeycloakAdmin, realm: string): Promise<Map<string, string>> {
  const names = ['ws-a', 'ws-b', 'ml', ...LONG_GROUPS];
  const ids = await inBatches(names, (name) => admin.createGroup(realm, name));
  return new Map(names.map((name, i) => [name, ids[i]!]));
}

/** The four users with their profile complete, so a login never stops at "update your profile". */
function testUsers(): Array<NewUser & { username: TestUsername }> {
  const user = (username: TestUsername, firstName: string, extra: Pick<NewUser, 'emailVerified' | 'attributes'> = {}): NewUser & { username: TestUsername } => ({
    username,
    password: `${username}-pw`,
    email: `${username}@example.com`,
    emailVerified: true,
    firstName,
    lastName: 'Tester',
    ...extra,
  });
  return [
    user('alice', 'Alice', { attributes: { team: ['blue'] } }),
    user('bob', 'Bob'),
    user('carol', 'Carol'),
    user('dave', 'Dave', { emailVerified: false }),
  ];
}

/**
 * Builds the test realm in a running Keycloak (see the module comment and TestRealm for what is in it):
 * clients oidc-authz, kubeflow-cli, ws-a, ws-b, other-app, ci-bot; groups ws-a, ws-b, ml and 81 long
 * ones; users alice (ws-a, ml, role ws-a/ws_access, team=blue), bob (ws-b), carol (the 81 long groups)
 * and dave (email not verified, no groups).
 */
export async function createTestRealm(admin: KeycloakAdmin, options: TestRealmOptions): Promise<TestRealm> {
  const name = options.name ?? `oidc-authz-${randomBytes(4).toString('hex')}`;
  await admin.createRealm({
    realm: name,
    enabled: true,
    // Seconds; Keycloak gives ID tokens the access token's lifespan.
    accessTokenLifespan: 120,
    // Plain HTTP on loopback: the default ("external") would still allow 127.0.0.1, but not other hosts.
    sslRequired: 'none',
    registrationAllowed: false,
    loginWithEmailAllowed: false,
    duplicateEmailsAllowed: false,
    // dave's unverified email must not stop his login at a "verify your email" page.
    verifyEmail: false,
    resetPasswordAllowed: false,
  });
  // Since Keycloak 24 the declarative user profile drops attributes it does not declare, which would
  // silently lose alice's `team`; let admins set undeclared ones (users neither see nor edit them).
  const profile = await admin.getUserProfile(name);
  await admin.updateUserProfile(name, { ...profile, unmanagedAttributePolicy: 'ADMIN_EDIT' });

  const [clients, groups] = await Promise.all([createClients(admin, name, options), createGroups(admin, name)]);
  const [oidcAuthzSecret, otherAppSecret, ciBotSecret] = await Promise.all([
    admin.getClientSecret(name, clients.oidcAuthz),
    admin.getClientSecret(name, clients.otherApp),
    admin.getClientSecret(name, clients.ciBot),
  ]);

  const specs = testUsers();
  const ids = await Promise.all(specs.map((spec) => admin.createUser(name, spec)));
  const id = (username: TestUsername) => ids[specs.findIndex((spec) => spec.username === username)]!;
  const groupIds = (names: readonly string[]) => names.map((group) => groups.get(group)!);
  await Promise.all([
    admin.addUserToGroups(name, id('alice'), groupIds(['ws-a', 'ml'])),
    admin.grantClientRole(name, id('alice'), clients.wsA, 'ws_access'),
    admin.addUserToGroups(name, id('bob'), groupIds(['ws-b'])),
    admin.addUserToGroups(name, id('carol'), groupIds(LONG_GROUPS)),
  ]);

  const users = Object.fromEntries(
    specs.map((spec) => [spec.username, { password: spec.password, email: spec.email!, id: id(spec.username) }]),
  ) as TestRealm['users'];
  const issuer = `${admin.url}/realms/${name}`;
  const tokenEndpoint = `${issuer}/protocol/openid-connect/token`;
  return {
    name,
    issuer,
    clients: {
      oidcAuthz: { clientId: 'oidc-authz', secret: oidcAuthzSecret },
      otherApp: { clientId: 'other-app', secret: otherAppSecret },
      ciBot: { clientId: 'ci-bot', secret: ciBotSecret },
      cli: { clientId: 'kubeflow-cli' },
    },
    users,
    admin,
    passwordGrant: (clientId, secret, username, password, scope = 'openid') =>
      requestToken(tokenEndpoint, { grant_type: 'password', client_id: clientId, client_secret: secret, username, password, scope }),
    clientCredentialsGrant: (clientId, secret) =>
      requestToken(tokenEndpoint, { grant_type: 'client_credentials', client_id: clientId, client_secret: secret }),
    refreshGrant: (clientId, secret, refreshToken) =>
      requestToken(tokenEndpoint, { grant_type: 'refresh_token', client_id: clientId, client_secret: secret, refresh_token: refreshToken }),
    userSessions: (username) => admin.listUserSessions(name, users[username].id),
    logoutUser: (username) => admin.logoutUser(name, users[username].id),
    remove: () => admin.deleteRealm(name),
  };
}
