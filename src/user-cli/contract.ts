/**
 * The contract of the user-facing CLI (`oidc-authz login | token | logout`): what a person runs on a
 * laptop or in a notebook to get a token that passes our bearer check, for scripts and SDKs
 * (`kfp.Client(existing_token=…)`, `curl -H "Authorization: Bearer $(oidc-authz token)"`).
 *
 * - login:  OAuth 2.0 Device Authorization Grant (RFC 8628) as a public client of the IdP; prints the
 *           verification URL and user code on stderr, polls, stores the tokens.
 * - token:  prints exactly one token (ID token by default) and a newline on stdout, nothing else; refreshes
 *           first when the stored one expires within --min-valid.
 * - logout: deletes the profile's entry and revokes its refresh token where the IdP has a revocation endpoint.
 *
 * Settings come from flags, then env (OIDC_AUTHZ_ISSUER, OIDC_AUTHZ_CLIENT_ID, OIDC_AUTHZ_SCOPE,
 * OIDC_AUTHZ_AUDIENCE, OIDC_AUTHZ_PROFILE), then $XDG_CONFIG_HOME/oidc-authz/cli.yaml. The service's
 * config file is never needed: the CLI runs where that file is not.
 *
 * Everything else in this folder implements what is written here; the names below are stable.
 */

/** Exit codes, so scripts can tell "log in again" from "the IdP is down". */
export const EXIT = {
  ok: 0,
  /** Anything else: the IdP unreachable or answering nonsense, an unexpected error. */
  failure: 1,
  /** Bad flags or missing settings. */
  usage: 2,
  /** No stored tokens for the profile, or the refresh token was refused (invalid_grant): run login. */
  loginRequired: 3,
  /** The user refused the request on the verification page (access_denied). */
  denied: 4,
  /** The device code expired before the user approved it (expired_token). */
  expired: 5,
  /** The token file is readable by group or others, or not ours: refused, like ssh does. */
  unsafeStore: 6,
} as const;
export type ExitCode = (typeof EXIT)[keyof typeof EXIT];

/** The profile used when none is named. */
export const DEFAULT_PROFILE = 'default';

/**
 * Scopes asked for when none are given, minus those the IdP's discovery document does not list
 * (Keycloak has no `groups` scope and refuses the whole request for it). offline_access: a CLI token
 * should outlive the IdP's browser session, as kubectl's oidc-login does.
 */
export const DEFAULT_SCOPES = ['openid', 'email', 'profile', 'groups', 'offline_access'] as const;

/** `token` refreshes when the printed token would expire within this (a request must not race its expiry). */
export const DEFAULT_MIN_VALID_MS = 60_000;

/** The device code grant's type (RFC 8628 §3.4). */
export const DEVICE_CODE_GRANT = 'urn:ietf:params:oauth:grant-type:device_code';

/** RFC 8628 §3.2: clients poll every 5 s when the IdP names no interval; §3.5: slow_down adds 5 s. */
export const DEFAULT_POLL_INTERVAL_S = 5;
export const SLOW_DOWN_STEP_S = 5;

/** Which settings a profile carries (flags, env and cli.yaml fill them in that order). */
export interface ClientSettings {
  readonly profile: string;
  readonly issuer: string;
  readonly clientId: string;
  /** Explicit scopes; undefined: DEFAULT_SCOPES the IdP supports. */
  readonly scopes: readonly string[] | undefined;
  /** Sent as the `audience` parameter (Auth0, Okta); Dex uses the scope audience:server:client_id:<id>. */
  readonly audience: string | undefined;
}

/** One profile's entry in tokens.json. Times are epoch milliseconds. */
export interface StoredTokens {
  readonly issuer: string;
  readonly clientId: string;
  readonly scope: string;
  readonly idToken?: string | undefined;
  readonly accessToken: string;
  /** When the access token expires (from expires_in, or its own exp when a JWT). */
  readonly accessTokenExpiresAt: number;
  readonly refreshToken?: string | undefined;
  readonly obtainedAt: number;
}

/**
 * tokens.json: the file holds every profile; it is rewritten whole (atomically) on every change, holding
 * tokens.json.lock, so parallel runs neither lose each other's profiles nor refresh with the same token.
 */
export interface TokenFile {
  readonly version: 1;
  readonly profiles: Readonly<Record<string, StoredTokens>>;
}

/** Which token `token` prints. */
export type TokenKind = 'id' | 'access';

/** A failure the CLI explains in one sentence on stderr and maps to an exit code. */
export class UserCliError extends Error {
  constructor(
    message: string,
    readonly exitCode: ExitCode,
  ) {
    super(message);
    this.name = 'UserCliError';
  }
}
