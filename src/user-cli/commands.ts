/**
 * `oidc-authz login | token | logout`, as functions of their settings and an injected IO (streams, env,
 * clock, sleep): src/cli.ts parses flags and calls these. Tokens reach stdout only from `token`, and then
 * exactly one token and a newline, so `$(oidc-authz token)` is the token; everything else goes to stderr.
 */
import {
  DEFAULT_SCOPES, EXIT, UserCliError, type ClientSettings, type StoredTokens, type TokenKind,
} from './contract.js';
import {
  discover, OAuthError, pollForTokens, refreshTokens, revokeToken, startDeviceAuthorization, type Sleep, type TokenAnswer,
} from './device-flow.js';
import { accessTokenExpiresAt, decide, expiresAt, type TokenDecision } from './expiry.js';
import { getProfile, putProfile, tokenFilePath, withTokenFileLock } from './token-store.js';

export interface UserCliIo {
  readonly stdout: (text: string) => void;
  readonly stderr: (text: string) => void;
  readonly env: NodeJS.ProcessEnv;
  readonly now: () => number;
  readonly sleep: Sleep;
}

/** The scopes to ask for: the explicit ones, or our defaults minus those the IdP does not list. */
export function scopesFor(explicit: readonly string[] | undefined, supported: readonly string[] | undefined): string[] {
  if (explicit !== undefined) return explicit.includes('openid') ? [...explicit] : ['openid', ...explicit];
  return DEFAULT_SCOPES.filter((scope) => scope === 'openid' || supported === undefined || supported.includes(scope));
}

/** Who the tokens are for, for the "logged in as" line (never the token itself). */
function whoOf(tokens: { id_token?: string | undefined; access_token: string }): string {
  const token = tokens.id_token ?? tokens.access_token;
  try {
    const claims = JSON.parse(Buffer.from(token.split('.')[1] ?? '', 'base64url').toString('utf8')) as Record<string, unknown>;
    const name = claims.email ?? claims.preferred_username ?? claims.sub;
    return typeof name === 'string' ? name : 'an unnamed user';
  } catch {
    return 'a user (opaque token)';
  }
}

function stored(issuer: string, clientId: string, scope: string, answer: TokenAnswer, now: number, previous?: StoredTokens): StoredTokens {
  return {
    issuer,
    clientId,
    scope: answer.scope ?? scope,
    // A refresh answer may leave out the ID token or the refresh token (RFC 6749 §6): keep the ones we had.
    idToken: answer.id_token ?? previous?.idToken,
    accessToken: answer.access_token,
    accessTokenExpiresAt: accessTokenExpiresAt(answer.access_token, answer.expires_in, now),
    refreshToken: answer.refresh_token ?? previous?.refreshToken,
    obtainedAt: now,
  };
}

const inSeconds = (ms: number) => `${Math.round(ms / 1000)} s`;

/** RFC 8628 end to end: prints where to go and the code, polls, stores the tokens. */
export async function login(settings: ClientSettings, io: UserCliIo): Promise<number> {
  const idp = await discover(settings.issuer);
  const scope = scopesFor(settings.scopes, idp.scopesSupported).join(' ');
  const started = io.now();
  const authorization = await startDeviceAuthorization(idp, settings.clientId, scope, settings.audience);
  const lines = ['To sign in, open this URL in a browser (on any device):', ''];
  if (authorization.verificationUriComplete !== undefined) {
    lines.push(`  ${authorization.verificationUriComplete}`, '', `and check that it shows the code ${authorization.userCode}`, `(or open ${authorization.verificationUri} and enter the code).`);
  } else {
    lines.push(`  ${authorization.verificationUri}`, '', `and enter the code ${authorization.userCode}`);
  }
  lines.push('', `Waiting for approval (the code expires in ${authorization.expiresInS} s)…`, '');
  io.stderr(lines.join('\n'));
  const { tokens, report } = await pollForTokens(idp, settings.clientId, authorization, io);
  const now = io.now();
  const path = tokenFilePath(io.env);
  await withTokenFileLock(path, async () => putProfile(path, settings.profile, stored(idp.issuer, settings.clientId, scope, tokens, now)));
  const refresh = tokens.refresh_token === undefined ? '; no refresh token (add offline_access to --scope to stay logged in)' : '';
  io.stderr(`Logged in as ${whoOf(tokens)} at ${idp.issuer} (client ${settings.clientId}, profile ${settings.profile}) after ${inSeconds(now - started)} and ${report.polls} poll${report.polls === 1 ? '' : 's'}${report.slowDowns ? ` (${report.slowDowns} slow_down)` : ''}; tokens in ${path}${refresh}\n`);
  return EXIT.ok;
}

export interface TokenOptions {
  readonly profile: string;
  readonly kind: TokenKind;
  readonly minValidMs: number;
}

/** Prints one valid token on stdout, refreshing (and storing the rotated tokens) when it would expire soon. */
export async function printToken(options: TokenOptions, io: UserCliIo): Promise<number> {
  const path = tokenFilePath(io.env);
  const entry = getProfile(path, options.profile);
  if (entry === undefined) throw new UserCliError(`not logged in (profile ${options.profile}, ${path}): run oidc-authz login`, EXIT.loginRequired);
  let decision = decide(entry, options.kind, io.now(), options.minValidMs);
  if (decision.action === 'refresh') {
    // Under the lock, from the file as it is now: a parallel run may have refreshed while we waited.
    decision = await withTokenFileLock(path, () => refreshed(path, options, io));
  }
  if (decision.action === 'login') throw new UserCliError(`${decision.why}: run oidc-authz login again`, EXIT.loginRequired);
  if (decision.action !== 'use') throw new UserCliError('no token after the refresh', EXIT.failure);
  io.stdout(`${decision.token}\n`);
  return EXIT.ok;
}

/** The refresh step of `token`, run holding the file lock. */
async function refreshed(path: string, options: TokenOptions, io: UserCliIo): Promise<TokenDecision> {
  const current = getProfile(path, options.profile);
  if (current === undefined) throw new UserCliError(`not logged in (profile ${options.profile}, ${path}): run oidc-authz login`, EXIT.loginRequired);
  const again = decide(current, options.kind, io.now(), options.minValidMs);
  if (again.action !== 'refresh') return again;
  const idp = await discover(current.issuer);
  let answer: TokenAnswer;
  try {
    answer = await refreshTokens(idp, current.clientId, current.refreshToken!);
  } catch (error) {
    if (!(error instanceof OAuthError)) throw error;
    // invalid_grant is RFC 6749's word for a spent, revoked or expired refresh token; Dex says invalid_request
    // ("… already been claimed by another client"). Any 4xx refusal: this token will not work again.
    if (error.error === 'invalid_grant' || (error.status >= 400 && error.status < 500)) {
      throw new UserCliError(`the IdP refused the stored refresh token (${error.message}): run oidc-authz login again`, EXIT.loginRequired);
    }
    throw new UserCliError(`the IdP could not refresh the token (${error.message}, HTTP ${error.status}): try again later`, EXIT.failure);
  }
  const entry = stored(current.issuer, current.clientId, current.scope, answer, io.now(), current);
  putProfile(path, options.profile, entry);
  const decision = decide({ ...entry, refreshToken: undefined }, options.kind, io.now(), options.minValidMs);
  if (decision.action === 'use') return decision;
  // The IdP's lifetime is shorter than --min-valid: the fresh token is the best there is, so print it
  // and say so (failing would fail on every call until the IdP's settings change).
  const token = options.kind === 'id' ? entry.idToken : entry.accessToken;
  const until = expiresAt(entry, options.kind);
  if (token === undefined || until === undefined || until <= io.now()) {
    const why = options.kind === 'id' && entry.idToken === undefined ? 'the refresh answer has no ID token (use --access-token)' : 'the refreshed token is already expired (is this machine\'s clock right?)';
    throw new UserCliError(`${why}: run oidc-authz login again`, EXIT.failure);
  }
  io.stderr(`oidc-authz token: refreshed, but the IdP's token is valid for ${inSeconds(until - io.now())}, less than --min-valid ${inSeconds(options.minValidMs)}\n`);
  return { action: 'use', token };
}

/** Forgets the profile's tokens here, then revokes the refresh token at the IdP where it can. */
export async function logout(profile: string, io: UserCliIo): Promise<number> {
  const path = tokenFilePath(io.env);
  const entry = getProfile(path, profile);
  if (entry === undefined) {
    io.stderr(`not logged in (profile ${profile}): nothing to do\n`);
    return EXIT.ok;
  }
  // Local first: whatever the IdP says, this machine no longer holds the tokens.
  await withTokenFileLock(path, async () => putProfile(path, profile, undefined));
  if (entry.refreshToken === undefined) {
    io.stderr(`Logged out (profile ${profile}); there was no refresh token to revoke\n`);
    return EXIT.ok;
  }
  let endpoint: string | undefined;
  try {
    endpoint = (await discover(entry.issuer)).revocationEndpoint;
  } catch (error) {
    io.stderr(`Logged out (profile ${profile}); could not revoke the refresh token: ${(error as Error).message}\n`);
    return EXIT.ok;
  }
  if (endpoint === undefined) {
    io.stderr(`Logged out (profile ${profile}); ${entry.issuer} has no revocation endpoint, so the refresh token stays valid at the IdP until it expires\n`);
    return EXIT.ok;
  }
  const revoked = await revokeToken(endpoint, entry.clientId, entry.refreshToken, 'refresh_token');
  io.stderr(revoked ? `Logged out (profile ${profile}); the refresh token is revoked at the IdP\n` : `Logged out (profile ${profile}); the IdP did not confirm the revocation of the refresh token\n`);
  return EXIT.ok;
}
