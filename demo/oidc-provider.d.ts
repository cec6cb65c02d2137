/**
 * oidc-provider 8 ships no TypeScript types. These declarations cover only what demo/dev-idp.ts uses,
 * written from the library's source (lib/provider.js, lib/helpers/defaults.js, lib/models/*).
 * If more of the API is needed, widen them here (or switch to @types/oidc-provider).
 */
declare module 'oidc-provider' {
  import type { IncomingMessage, ServerResponse } from 'node:http';

  /** What a storage adapter stores for one model instance (token, session, grant, interaction…). */
  export interface AdapterPayload {
    [key: string]: unknown;
    accountId?: string;
    clientId?: string;
    grantId?: string;
    /** Sessions only. */
    uid?: string;
    /** Device codes only. */
    userCode?: string;
    consumed?: number;
  }

  export interface Adapter {
    upsert(id: string, payload: AdapterPayload, expiresIn: number): Promise<void>;
    find(id: string): Promise<AdapterPayload | undefined>;
    findByUserCode(userCode: string): Promise<AdapterPayload | undefined>;
    findByUid(uid: string): Promise<AdapterPayload | undefined>;
    consume(id: string): Promise<void>;
    destroy(id: string): Promise<void>;
    revokeByGrantId(grantId: string): Promise<void>;
  }

  export type AdapterConstructor = new (modelName: string) => Adapter;

  export interface Account {
    accountId: string;
    claims(use: string, scope: string, claims: unknown, rejected: string[]): Promise<Record<string, unknown>> | Record<string, unknown>;
  }

  export interface ClientMetadata {
    [key: string]: unknown;
    client_id: string;
    client_secret?: string;
    client_name?: string;
    redirect_uris: string[];
    post_logout_redirect_uris?: string[];
    grant_types?: string[];
    response_types?: string[];
    token_endpoint_auth_method?: string;
  }

  /** The koa context oidc-provider passes to its helpers, narrowed to what is used here. */
  export interface KoaContextWithOIDC {
    type: string;
    body: unknown;
    status: number;
    readonly host: string;
    readonly path: string;
    oidc: {
      readonly client?: { readonly clientId: string; readonly clientName?: string };
      readonly issuer: string;
    };
  }

  export interface ErrorOut {
    error: string;
    error_description?: string;
    state?: string;
    iss?: string;
  }

  type TTLValue = number;

  export interface CookieOptions {
    httpOnly?: boolean;
    sameSite?: 'lax' | 'strict' | 'none';
    secure?: boolean;
    signed?: boolean;
  }

  export interface Configuration {
    adapter?: AdapterConstructor;
    clients?: ClientMetadata[];
    jwks?: { keys: Array<Record<string, unknown>> };
    cookies?: {
      keys?: string[];
      long?: CookieOptions;
      short?: CookieOptions;
      names?: { session?: string; interaction?: string; resume?: string };
    };
    claims?: Record<string, readonly string[] | null>;
    scopes?: string[];
    conformIdTokenClaims?: boolean;
    expiresWithSession?: (ctx: KoaContextWithOIDC, code: unknown) => Promise<boolean>;
    findAccount?: (ctx: KoaContextWithOIDC, sub: string, token?: unknown) => Promise<Account | undefined>;
    features?: {
      devInteractions?: { enabled: boolean };
      revocation?: { enabled: boolean };
      userinfo?: { enabled: boolean };
      backchannelLogout?: { enabled: boolean };
      rpInitiatedLogout?: {
        enabled: boolean;
        logoutSource?: (ctx: KoaContextWithOIDC, form: string) => Promise<void>;
        postLogoutSuccessSource?: (ctx: KoaContextWithOIDC) => Promise<void>;
      };
    };
    interactions?: { url?: (ctx: KoaContextWithOIDC, interaction: Interaction) => Promise<string> | string };
    pkce?: { methods?: Array<'S256' | 'plain'>; required?: (ctx: KoaContextWithOIDC, client: unknown) => boolean };
    responseTypes?: string[];
    rotateRefreshToken?: boolean;
    ttl?: Partial<Record<'AccessToken' | 'AuthorizationCode' | 'IdToken' | 'RefreshToken' | 'Session' | 'Grant' | 'Interaction', TTLValue>>;
    renderError?: (ctx: KoaContextWithOIDC, out: ErrorOut, error: Error) => Promise<void>;
    clientBasedCORS?: (ctx: KoaContextWithOIDC, origin: string, client: unknown) => boolean;
  }

  export interface Interaction {
    readonly uid: string;
    readonly returnTo: string;
    readonly params: Record<string, unknown>;
    readonly prompt: { name: string; reasons: string[]; details: Record<string, unknown> };
    readonly session?: { accountId: string; uid?: string };
    readonly grantId?: string;
  }

  export interface InteractionResults {
    login?: { accountId: string; remember?: boolean; amr?: string[]; acr?: string };
    consent?: { grantId?: string };
    error?: string;
    error_description?: string;
  }

  export interface Grant {
    readonly jti?: string;
    accountId?: string;
    clientId?: string;
    addOIDCScope(scope: string): void;
    addOIDCClaims(claims: string[]): void;
    addResourceScope(resource: string, scope: string): void;
    save(): Promise<string>;
  }

  export interface GrantConstructor {
    new (properties: { accountId: string; clientId: string }): Grant;
    find(id: string): Promise<Grant | undefined>;
  }

  export interface RefreshToken {
    readonly jti: string;
    readonly grantId?: string;
    readonly accountId?: string;
    readonly clientId?: string;
    destroy(): Promise<void>;
  }

  export interface RefreshTokenConstructor {
    find(value: string, options?: { ignoreExpiration?: boolean }): Promise<RefreshToken | undefined>;
  }

  export default class Provider {
    constructor(issuer: string, configuration?: Configuration);
    readonly issuer: string;
    readonly Grant: GrantConstructor;
    readonly RefreshToken: RefreshTokenConstructor;
    readonly app: { silent?: boolean };
    callback(): (req: IncomingMessage, res: ServerResponse) => Promise<void>;
    on(event: string, listener: (...args: unknown[]) => void): this;
    interactionDetails(req: IncomingMessage, res: ServerResponse): Promise<Interaction>;
    interactionFinished(
      req: IncomingMessage,
      res: ServerResponse,
      result: InteractionResults,
      options?: { mergeWithLastSubmission?: boolean },
    ): Promise<void>;
  }
}
