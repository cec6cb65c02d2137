/**
 * A development OpenID Provider ("oidc-authz dev IdP") built on oidc-provider 8, for integration tests
 * and `make demo`. It behaves like the parts of Dex that oidc-authz relies on:
 *
 * - discovery at `<issuer>/.well-known/openid-configuration`, RS256 keys generated at start;
 * - authorization code flow with PKCE (S256, always required), state and nonce;
 * - `email`, `email_verified`, `groups`, `name`, `preferred_username` released for the scopes `email`,
 *   `groups` and `profile`, and put into the ID token as well as userinfo (as Dex does);
 * - refresh tokens when the client asks for `offline_access` — without an explicit `prompt=consent`
 *   (oidc-provider follows OIDC Core and would drop `offline_access` otherwise, see `askConsentForOfflineAccess`);
 * - its own login page at `/interaction/:uid` (username + password from `users`); consent is granted
 *   automatically, so there is no consent screen;
 * - RP-initiated logout honouring registered `post_logout_redirect_uri`s; the confirmation page submits
 *   itself in a JavaScript browser, and a script-less client submits its one form (`logout=yes`);
 * - token revocation, and helpers to revoke refresh tokens from the test side.
 *
 * Plain http on loopback only: cookies are `SameSite=Lax` without `Secure`. Everything lives in memory of
 * this instance; `stop()` forgets it. Not for production, obviously.
 */
import { createHash, generateKeyPair, randomBytes, timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { promisify } from 'node:util';
import Provider, {
  type Account,
  type AdapterPayload,
  type ClientMetadata,
  type Configuration,
  type ErrorOut,
  type Interaction,
  type KoaContextWithOIDC,
} from 'oidc-provider';

export const DEV_IDP_NAME = 'oidc-authz dev IdP';

export interface DevIdpUser {
  password: string;
  email: string;
  /** Default true. */
  emailVerified?: boolean;
  name?: string;
  groups: string[];
  /**
   * More claims for this user (e.g. `{ hd: 'example.com' }`), released with the `profile` scope into
   * the ID token and userinfo. They cannot replace `sub` or the standard claims above.
   */
  claims?: Record<string, unknown>;
}

export interface DevIdpClient {
  clientId: string;
  /** Absent: a public client (`token_endpoint_auth_method: none`). Present: `client_secret_basic` or `_post`. */
  clientSecret?: string;
  /** Shown on the login page. Default: the client id. */
  name?: string;
  redirectUris: string[];
  postLogoutRedirectUris?: string[];
  /**
   * OIDC Back-Channel Logout: where a logout token is POSTed when a session this client took part in ends
   * at the IdP (its ID tokens then carry `sid`).
   */
  backchannelLogoutUri?: string;
}

/** Lifetimes in seconds. */
export interface DevIdpTtl {
  /** Default 3600. */
  IdToken?: number;
  /** Default 3600. */
  AccessToken?: number;
  /** Default 14 days. Keep it no longer than `Grant`: a refresh token dies with its grant. */
  RefreshToken?: number;
  /** The IdP's own login session (its `_session` cookie). Default 1 day. */
  Session?: number;
  /** Default 14 days. */
  Grant?: number;
  /** How long a login page stays usable. Default 1 hour. */
  Interaction?: number;
  /** Default 60. */
  AuthorizationCode?: number;
}

export interface DevIdpOptions {
  /** Default 127.0.0.1. */
  host?: string;
  /** Default 0: a free port. */
  port?: number;
  /** Path of the issuer on the server, e.g. '/dex' → issuer `http://127.0.0.1:<port>/dex`. Default ''. */
  issuerPath?: string;
  /** Username → user. The username is also the `sub` and `preferred_username`. */
  users?: Record<string, DevIdpUser>;
  clients?: DevIdpClient[];
  ttl?: DevIdpTtl;
  /**
   * true (default): every refresh returns a new refresh token and the used one is spent (as Dex does;
   * presenting a spent one revokes the whole grant). false: refresh tokens are reused until they expire.
   */
  rotateRefreshTokens?: boolean;
  /** Where internal errors are reported. Default: console.error. */
  log?: (message: string) => void;
}

export interface DevIdp {
  /** e.g. http://127.0.0.1:41234/dex */
  readonly issuer: string;
  /** The server's origin, e.g. http://127.0.0.1:41234 */
  readonly url: string;
  readonly discoveryUrl: string;
  /** The underlying oidc-provider instance, for advanced use. */
  readonly provider: Provider;
  /**
   * The users, live: changes (e.g. new groups) show in tokens issued afterwards, refreshes included.
   * Claim names in `claims` that no user had at start are not released.
   */
  readonly users: Map<string, DevIdpUser>;
  /**
   * Revokes a refresh token as the revocation endpoint does: the token and everything else issued
   * under the same grant (access tokens, rotated refresh tokens). False when the token is unknown.
   */
  revokeRefreshToken(token: string): Promise<boolean>;
  /** Revokes the refresh tokens (and their grants) of `accountId`, or of everybody. Returns how many were still usable. */
  revokeRefreshTokens(accountId?: string): Promise<number>;
  /** Stops listening and drops open connections. */
  stop(): Promise<void>;
}

const DEFAULT_TTL: Required<DevIdpTtl> = {
  IdToken: 3600,
  AccessToken: 3600,
  RefreshToken: 14 * 24 * 3600,
  Session: 24 * 3600,
  Grant: 14 * 24 * 3600,
  Interaction: 3600,
  AuthorizationCode: 60,
};

/** Which scope releases which claims. */
const SCOPE_CLAIMS = {
  openid: ['sub'],
  email: ['email', 'email_verified'],
  profile: ['name', 'preferred_username'],
  groups: ['groups'],
} as const;

const MAX_FORM_BYTES = 64 * 1024;

export async function startDevIdp(options: DevIdpOptions = {}): Promise<DevIdp> {
  const host = options.host ?? '127.0.0.1';
  const issuerPath = normalizeIssuerPath(options.issuerPath ?? '');
  const users = new Map(Object.entries(options.users ?? {}));
  const clients = options.clients ?? [];
  const ttl = { ...DEFAULT_TTL, ...options.ttl };
  const log = options.log ?? ((message: string) => console.error(message));
  const store = new Store();

  const server: Server = createServer((req, res) => {
    handle(req, res).catch((err: unknown) => {
      log(`${DEV_IDP_NAME}: ${req.method} ${req.url}: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
      if (!res.headersSent) sendPage(res, 500, 'Error', '<p class="error" role="alert">Internal error in the dev IdP.</p>');
      else res.destroy();
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const { port } = server.address() as AddressInfo;
  const url = `http://${host.includes(':') ? `[${host}]` : host}:${port}`;
  const issuer = `${url}${issuerPath}`;

  const provider = new Provider(issuer, {
    adapter: store.adapterFor(),
    clients: clients.map(toClientMetadata),
    jwks: { keys: [await generateSigningKey()] },
    cookies: {
      keys: [randomBytes(32).toString('base64url')],
      // oidc-provider's default SameSite=None would need Secure, which plain http cannot have.
      long: { httpOnly: true, sameSite: 'lax' },
      short: { httpOnly: true, sameSite: 'lax' },
    },
    claims: { ...SCOPE_CLAIMS, profile: [...SCOPE_CLAIMS.profile, ...extraClaimNames(users)] },
    scopes: ['openid', 'offline_access', ...Object.keys(SCOPE_CLAIMS).filter((s) => s !== 'openid')],
    // Scope-requested claims go into the ID token too, not only userinfo (Dex does this; oidc-authz reads them there).
    conformIdTokenClaims: false,
    // Codes and tokens do not depend on the IdP's browser session (as with Dex). oidc-provider would bind
    // them to it without offline_access, and each new login replaces the session, so a code issued to one
    // tab would stop working once another tab of the same browser finished logging in.
    expiresWithSession: async () => false,
    findAccount: async (_ctx, sub) => {
      const user = users.get(sub);
      return user === undefined ? undefined : account(sub, user);
    },
    features: {
      devInteractions: { enabled: false },
      revocation: { enabled: true },
      userinfo: { enabled: true },
      rpInitiatedLogout: { enabled: true, logoutSource, postLogoutSuccessSource },
      backchannelLogout: { enabled: true },
    },
    interactions: { url: (_ctx, interaction) => `${issuerPath}/interaction/${interaction.uid}` },
    pkce: { methods: ['S256'], required: () => true },
    responseTypes: ['code'],
    rotateRefreshToken: options.rotateRefreshTokens ?? true,
    ttl,
    renderError,
    clientBasedCORS: () => false,
  } satisfies Configuration);
  provider.on('server_error', (_ctx, err) => {
    log(`${DEV_IDP_NAME}: server_error: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
  });
  const providerCallback = provider.callback();

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const requestUrl = new URL(req.url ?? '/', url);
    const path = requestUrl.pathname;
    if (issuerPath !== '' && path !== issuerPath && !path.startsWith(`${issuerPath}/`)) {
      sendPage(res, 404, 'Not found', `<p>Nothing here. The issuer is <code>${escapeHtml(issuer)}</code>.</p>`);
      return;
    }
    const local = path.slice(issuerPath.length) || '/';
    const interaction = /^\/interaction\/([^/]+)$/.exec(local);
    if (interaction) {
      await handleInteraction(req, res, decodeURIComponent(interaction[1]!));
      return;
    }
    if (local === '/auth' && req.method === 'GET') askConsentForOfflineAccess(requestUrl);
    // Mount oidc-provider under issuerPath the way express does: it reads the prefix from originalUrl.
    (req as IncomingMessage & { originalUrl?: string }).originalUrl = `${path}${requestUrl.search}`;
    req.url = `${local}${requestUrl.search}`;
    await providerCallback(req, res);
  }

  async function handleInteraction(req: IncomingMessage, res: ServerResponse, uid: string): Promise<void> {
    let details: Interaction;
    try {
      details = await provider.interactionDetails(req, res);
    } catch (err) {
      if (err instanceof Error && err.name === 'SessionNotFound') {
        sendExpired(res);
        return;
      }
      throw err;
    }
    // The interaction cookie is scoped to this path, so a mismatch means a stale or foreign link.
    if (details.uid !== uid) {
      sendExpired(res);
      return;
    }
    const clientId = String(details.params.client_id ?? '');
    const page = { uid, client: clients.find((c) => c.clientId === clientId)?.name ?? clientId };

    if (req.method === 'GET') {
      const accountId = details.session?.accountId;
      if (details.prompt.name !== 'login' && accountId !== undefined && users.has(accountId)) {
        // Already signed in here; only consent is missing (new scopes, or offline_access): grant it.
        const grantId = await saveGrant(details, accountId);
        await provider.interactionFinished(req, res, { consent: { grantId } }, { mergeWithLastSubmission: true });
        return;
      }
      const hint = details.params.login_hint;
      sendLoginPage(res, 200, { ...page, username: typeof hint === 'string' ? hint : '' });
      return;
    }
    if (req.method !== 'POST') {
      res.writeHead(405, { allow: 'GET, POST' }).end();
      return;
    }

    const form = await readForm(req);
    if (form.get('action') === 'cancel') {
      await provider.interactionFinished(
        req, res,
        { error: 'access_denied', error_description: 'the user cancelled the sign-in' },
        { mergeWithLastSubmission: false },
      );
      return;
    }
    const username = form.get('username') ?? '';
    const user = users.get(username);
    if (user === undefined || !samePassword(user.password, form.get('password') ?? '')) {
      sendLoginPage(res, 401, { ...page, username, error: 'Invalid username or password.' });
      return;
    }
    const grantId = await saveGrant(details, username);
    await provider.interactionFinished(
      req, res,
      { login: { accountId: username }, consent: { grantId } },
      { mergeWithLastSubmission: false },
    );
  }

  /** Grants everything the client asked for (scopes, claims), to this account: there is no consent screen. */
  async function saveGrant(details: Interaction, accountId: string): Promise<string> {
    const clientId = String(details.params.client_id);
    let grant = details.grantId === undefined ? undefined : await provider.Grant.find(details.grantId);
    if (grant === undefined || grant.accountId !== accountId || grant.clientId !== clientId) {
      grant = new provider.Grant({ accountId, clientId });
    }
    const { scope, claims } = details.params;
    if (typeof scope === 'string' && scope !== '') grant.addOIDCScope(scope);
    if (typeof claims === 'string') grant.addOIDCClaims(requestedClaimNames(claims));
    const { missingOIDCScope, missingOIDCClaims, missingResourceScopes } = details.prompt.details;
    if (Array.isArray(missingOIDCScope)) grant.addOIDCScope(missingOIDCScope.join(' '));
    if (Array.isArray(missingOIDCClaims)) grant.addOIDCClaims(missingOIDCClaims.map(String));
    if (missingResourceScopes !== null && typeof missingResourceScopes === 'object') {
      for (const [resource, scopes] of Object.entries(missingResourceScopes)) {
        if (Array.isArray(scopes)) grant.addResourceScope(resource, scopes.join(' '));
      }
    }
    return grant.save();
  }

  function sendLoginPage(res: ServerResponse, status: number, page: { uid: string; client: string; username: string; error?: string }): void {
    const action = `${issuerPath}/interaction/${encodeURIComponent(page.uid)}`;
    sendPage(res, status, 'Sign in', `
      <p>Sign in to continue to <strong>${escapeHtml(page.client)}</strong>.</p>
      ${page.error === undefined ? '' : `<p class="error" role="alert">${escapeHtml(page.error)}</p>`}
      <form method="post" action="${escapeHtml(action)}">
        <label for="username">Username</label>
        <input id="username" name="username" type="text" autocomplete="username" autocapitalize="none" required autofocus value="${escapeHtml(page.username)}">
        <label for="password">Password</label>
        <input id="password" name="password" type="password" autocomplete="current-password" required>
        <button type="submit">Sign in</button>
        <button type="submit" name="action" value="cancel" formnovalidate class="secondary">Cancel</button>
      </form>`);
  }

  function sendExpired(res: ServerResponse): void {
    sendPage(res, 400, 'Sign-in expired',
      '<p class="error" role="alert">This sign-in attempt has expired or was already completed.</p><p>Go back to the application and start again.</p>');
  }

  return {
    issuer,
    url,
    discoveryUrl: `${issuer}/.well-known/openid-configuration`,
    provider,
    users,
    async revokeRefreshToken(token) {
      const refreshToken = await provider.RefreshToken.find(token, { ignoreExpiration: true });
      if (refreshToken === undefined) return false;
      await refreshToken.destroy();
      if (refreshToken.grantId !== undefined) store.revokeGrant(refreshToken.grantId);
      return true;
    },
    async revokeRefreshTokens(accountId) {
      const tokens = store.payloads('RefreshToken').filter((p) => accountId === undefined || p.accountId === accountId);
      for (const token of tokens) {
        if (typeof token.grantId === 'string') store.revokeGrant(token.grantId);
        if (typeof token.jti === 'string') store.delete('RefreshToken', token.jti);
      }
      return tokens.filter((token) => token.consumed === undefined).length;
    },
    async stop() {
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
    },
  };
}

/**
 * oidc-provider, following OIDC Core 1.0 §11, ignores `offline_access` unless the request also says
 * `prompt=consent`. Dex (and most IdPs) issue the refresh token anyway, so we add `consent` to the prompt.
 * Our interaction page grants consent without asking, so the user sees no difference; with an existing
 * IdP session this costs one extra redirect through `/interaction/:uid`. `prompt=none` is left alone.
 * Only GET authorization requests are rewritten (what browsers following openid-client's URLs send).
 */
function askConsentForOfflineAccess(url: URL): void {
  const scopes = url.searchParams.getAll('scope');
  const prompts = url.searchParams.getAll('prompt');
  if (scopes.length !== 1 || prompts.length > 1) return; // malformed: let oidc-provider reject it
  if (!scopes[0]!.split(' ').includes('offline_access')) return;
  const prompt = (prompts[0] ?? '').split(' ').filter((p) => p !== '');
  if (prompt.includes('consent') || prompt.includes('none')) return;
  url.searchParams.set('prompt', [...prompt, 'consent'].join(' '));
}

function account(username: string, user: DevIdpUser): Account {
  return {
    accountId: username,
    claims: () => ({
      ...user.claims,
      sub: username,
      preferred_username: username,
      name: user.name ?? username,
      email: user.email,
      email_verified: user.emailVerified ?? true,
      groups: [...user.groups],
    }),
  };
}

function extraClaimNames(users: Map<string, DevIdpUser>): string[] {
  const standard = new Set<string>(Object.values(SCOPE_CLAIMS).flat());
  const names = new Set<string>();
  for (const user of users.values()) {
    for (const name of Object.keys(user.claims ?? {})) if (!standard.has(name)) names.add(name);
  }
  return [...names];
}

function toClientMetadata(client: DevIdpClient): ClientMetadata {
  return {
    client_id: client.clientId,
    ...(client.name === undefined ? {} : { client_name: client.name }),
    ...(client.clientSecret === undefined
      ? { token_endpoint_auth_method: 'none' }
      // oidc-provider 8 accepts client_secret_post from a client registered with _basic, and vice versa.
      : { client_secret: client.clientSecret, token_endpoint_auth_method: 'client_secret_basic' }),
    redirect_uris: client.redirectUris,
    post_logout_redirect_uris: client.postLogoutRedirectUris ?? [],
    ...(client.backchannelLogoutUri === undefined ? {} : { backchannel_logout_uri: client.backchannelLogoutUri, backchannel_logout_session_required: true }),
    grant_types: ['authorization_code', 'refresh_token'],
    response_types: ['code'],
  };
}

async function generateSigningKey(): Promise<Record<string, unknown>> {
  const { privateKey } = await promisify(generateKeyPair)('rsa', { modulusLength: 2048 });
  return { ...privateKey.export({ format: 'jwk' }), kid: `dev-${randomBytes(8).toString('hex')}`, alg: 'RS256', use: 'sig' };
}

function normalizeIssuerPath(path: string): string {
  const trimmed = path.replace(/\/+$/, '');
  if (trimmed !== '' && !/^\/[A-Za-z0-9._~\-/]+$/.test(trimmed)) {
    throw new Error(`issuerPath must be empty or a path like '/dex', got ${JSON.stringify(path)}`);
  }
  return trimmed;
}

/** Claim names requested through the `claims` authorization parameter (if a client sends it). */
function requestedClaimNames(claims: string): string[] {
  try {
    const parsed = JSON.parse(claims) as { id_token?: object; userinfo?: object } | null;
    return [...Object.keys(parsed?.id_token ?? {}), ...Object.keys(parsed?.userinfo ?? {})];
  } catch {
    return [];
  }
}

function samePassword(expected: string, actual: string): boolean {
  const digest = (s: string) => createHash('sha256').update(s).digest();
  return timingSafeEqual(digest(expected), digest(actual));
}

async function readForm(req: IncomingMessage): Promise<URLSearchParams> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > MAX_FORM_BYTES) throw new Error('form body too large');
    chunks.push(chunk);
  }
  return new URLSearchParams(Buffer.concat(chunks).toString('utf8'));
}

async function logoutSource(ctx: KoaContextWithOIDC, form: string): Promise<void> {
  // `form` is oidc-provider's `<form id="op.logoutForm" …>` holding the xsrf token. `logout=yes` ends the
  // whole IdP session (not just this client's grant). A JavaScript browser submits it at once; anything
  // else (the tests' HTTP browser, or a user without JS) submits the one form on the page.
  const withLogout = form.replace('</form>', '<input type="hidden" name="logout" value="yes"/></form>');
  ctx.type = 'html';
  ctx.body = pageHtml('Sign out', `
      <p>Signing you out of ${escapeHtml(DEV_IDP_NAME)}…</p>
      ${withLogout}
      <button type="submit" form="op.logoutForm">Sign out</button>
      <script>document.getElementById('op.logoutForm').submit();</script>`);
}

async function postLogoutSuccessSource(ctx: KoaContextWithOIDC): Promise<void> {
  ctx.type = 'html';
  ctx.body = pageHtml('Signed out', `<p>You are signed out of ${escapeHtml(DEV_IDP_NAME)}.</p>`);
}

async function renderError(ctx: KoaContextWithOIDC, out: ErrorOut): Promise<void> {
  ctx.type = 'html';
  ctx.body = pageHtml('Error', `
      <p class="error" role="alert"><strong>${escapeHtml(out.error)}</strong>${out.error_description === undefined ? '' : `: ${escapeHtml(out.error_description)}`}</p>`);
}

function sendPage(res: ServerResponse, status: number, title: string, body: string): void {
  res.writeHead(status, {
    'content-type': 'text/html; charset=utf-8',
    'cache-control': 'no-store',
    'content-security-policy': "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'",
  });
  res.end(pageHtml(title, body));
}

function pageHtml(title: string, body: string): string {
  return `<!DOCTYPE html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <title>${escapeHtml(title)} · ${escapeHtml(DEV_IDP_NAME)}</title>
  <style>
    body{font-family:system-ui,sans-serif;background:#f4f5f7;margin:0;padding:3rem 1rem}
    main{max-width:22rem;margin:0 auto;background:#fff;padding:1.5rem 2rem;border-radius:6px;box-shadow:0 1px 3px rgba(0,0,0,.2)}
    h1{font-size:1.3rem;margin-top:0}
    label{display:block;margin-top:.8rem;font-weight:600}
    input{width:100%;box-sizing:border-box;padding:.5rem;margin-top:.25rem;font-size:1rem}
    button{margin-top:1rem;padding:.5rem 1rem;font-size:1rem;cursor:pointer}
    button.secondary{background:none;border:none;color:#555}
    .error{color:#b00020}
    .note{color:#666;font-size:.8rem;margin-top:1.5rem}
  </style>
</head>
<body>
  <main>
    <h1>${escapeHtml(DEV_IDP_NAME)}</h1>
    ${body}
    <p class="note">A development identity provider. Never use it in production.</p>
  </main>
</body>
</html>`;
}

function escapeHtml(value: string): string {
  return value.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

interface Entry {
  payload: AdapterPayload;
  /** Epoch ms; undefined = no expiry. */
  expiresAt: number | undefined;
}

/**
 * In-memory storage for this provider instance only (oidc-provider's bundled MemoryAdapter is one
 * module-wide LRU of 1000 entries, shared by every provider in the process). Keys are `<model>:<id>`.
 */
class Store {
  readonly #entries = new Map<string, Entry>();
  /** Session uid → session id; device user code → id. */
  readonly #index = new Map<string, string>();
  #writes = 0;

  adapterFor() {
    // eslint-disable-next-line @typescript-eslint/no-this-alias
    const store = this;
    return class DevIdpAdapter {
      readonly #model: string;

      constructor(model: string) {
        this.#model = model;
      }

      async upsert(id: string, payload: AdapterPayload, expiresIn: number): Promise<void> {
        store.#sweep();
        const expiresAt = expiresIn > 0 ? Date.now() + expiresIn * 1000 : undefined;
        store.#entries.set(`${this.#model}:${id}`, { payload: { ...payload }, expiresAt });
        if (this.#model === 'Session' && typeof payload.uid === 'string') store.#index.set(`sessionUid:${payload.uid}`, id);
        if (typeof payload.userCode === 'string') store.#index.set(`userCode:${payload.userCode}`, id);
      }

      async find(id: string): Promise<AdapterPayload | undefined> {
        return store.#get(`${this.#model}:${id}`);
      }

      async findByUid(uid: string): Promise<AdapterPayload | undefined> {
        const id = store.#index.get(`sessionUid:${uid}`);
        return id === undefined ? undefined : this.find(id);
      }

      async findByUserCode(userCode: string): Promise<AdapterPayload | undefined> {
        const id = store.#index.get(`userCode:${userCode}`);
        return id === undefined ? undefined : this.find(id);
      }

      async consume(id: string): Promise<void> {
        const entry = store.#entries.get(`${this.#model}:${id}`);
        if (entry) entry.payload.consumed = Math.floor(Date.now() / 1000);
      }

      async destroy(id: string): Promise<void> {
        store.delete(this.#model, id);
      }

      async revokeByGrantId(grantId: string): Promise<void> {
        store.#deleteWhere((key, entry) => key.startsWith(`${this.#model}:`) && entry.payload.grantId === grantId);
      }
    };
  }

  /** Unexpired payloads of one model (copies). */
  payloads(model: string): AdapterPayload[] {
    const out: AdapterPayload[] = [];
    for (const key of [...this.#entries.keys()]) {
      if (!key.startsWith(`${model}:`)) continue;
      const payload = this.#get(key);
      if (payload) out.push(payload);
    }
    return out;
  }

  delete(model: string, id: string): void {
    this.#entries.delete(`${model}:${id}`);
  }

  /** Drops a grant and every token issued under it. */
  revokeGrant(grantId: string): void {
    this.#entries.delete(`Grant:${grantId}`);
    this.#deleteWhere((_key, entry) => entry.payload.grantId === grantId);
  }

  #get(key: string): AdapterPayload | undefined {
    const entry = this.#entries.get(key);
    if (entry === undefined) return undefined;
    if (entry.expiresAt !== undefined && entry.expiresAt <= Date.now()) {
      this.#entries.delete(key);
      return undefined;
    }
    return { ...entry.payload };
  }

  #deleteWhere(predicate: (key: string, entry: Entry) => boolean): void {
    for (const [key, entry] of [...this.#entries]) if (predicate(key, entry)) this.#entries.delete(key);
  }

  /** Every 200 writes, forget expired entries so a long-running demo does not grow without bound. */
  #sweep(): void {
    if (++this.#writes % 200 !== 0) return;
    const now = Date.now();
    this.#deleteWhere((_key, entry) => entry.expiresAt !== undefined && entry.expiresAt <= now);
    for (const [key, id] of [...this.#index]) {
      const model = key.startsWith('sessionUid:') ? 'Session' : 'DeviceCode';
      if (!this.#entries.has(`${model}:${id}`)) this.#index.delete(key);
    }
  }
}
