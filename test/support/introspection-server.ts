/**
 * A small, real OAuth 2.0 authorization server on 127.0.0.1 that issues opaque access tokens (random
 * strings, as Auth0's, Okta's "opaque" or Ory Hydra's default tokens are) and answers RFC 7662
 * introspection for them: client_secret_basic authentication, `active: false` for tokens it does not
 * know, has revoked or that expired on its clock. Keycloak's access tokens are always JWTs, so this is
 * what opaque-token tests run against. It can be stopped and started again on the same port (IdP down).
 */
import { randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

/** Longer tokens are refused with 400 (a real IdP's limit on what it reads). */
const MAX_TOKEN_LENGTH = 4096;

export interface OpaqueTokenServer {
  readonly issuer: string;
  readonly introspectionEndpoint: string;
  readonly clientId: string;
  readonly clientSecret: string;
  /** Issues an opaque token with these claims (the answer's fields besides active), valid for `ttlMs`. */
  issue(claims: Record<string, unknown>, ttlMs?: number): string;
  /**
   * Makes the server vouch for a token it did not mint (a JWT of another issuer, as an IdP that issues JWTs
   * and introspects them does): its answer carries these claims (give `iss` to override the server's).
   */
  register(token: string, claims: Record<string, unknown>, ttlMs?: number): void;
  /** Issues a refresh token (introspected with token_type "refresh_token"). */
  issueRefreshToken(claims: Record<string, unknown>): string;
  revoke(token: string): void;
  /** Introspection requests answered (with valid client credentials) so far. */
  readonly introspections: number;
  /** Requests refused for bad client credentials so far. */
  readonly unauthorized: number;
  /** The form fields of the last introspection request. */
  readonly lastForm: URLSearchParams | null;
  /** Stops listening and drops open connections (the IdP goes down). */
  stop(): Promise<void>;
  /** Listens again on the same port. */
  start(): Promise<void>;
}

interface Issued {
  readonly claims: Record<string, unknown>;
  readonly expiresAt: number;
  revoked: boolean;
}

export async function startOpaqueTokenServer(): Promise<OpaqueTokenServer> {
  const clientId = 'oidc-authz-introspection';
  const clientSecret = randomBytes(16).toString('hex');
  const tokens = new Map<string, Issued>();
  let introspections = 0;
  let unauthorized = 0;
  let lastForm: URLSearchParams | null = null;
  let port = 0;
  let issuer = '';

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const send = (status: number, body: unknown, headers: Record<string, string> = {}) => {
      res.writeHead(status, { 'content-type': 'application/json', 'cache-control': 'no-store', ...headers });
      res.end(JSON.stringify(body));
    };
    if (req.method === 'GET' && req.url === '/.well-known/openid-configuration') {
      send(200, { issuer, introspection_endpoint: `${issuer}/introspect`, introspection_endpoint_auth_methods_supported: ['client_secret_basic'] });
      return;
    }
    if (req.method !== 'POST' || req.url !== '/introspect') {
      send(404, { error: 'not_found' });
      return;
    }
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    // RFC 7662 §2.1: the protected resource authenticates; here with client_secret_basic only.
    const expected = `Basic ${Buffer.from(`${clientId}:${clientSecret}`).toString('base64')}`;
    if (req.headers.authorization !== expected) {
      unauthorized++;
      send(401, { error: 'invalid_client' }, { 'www-authenticate': 'Basic realm="introspection"' });
      return;
    }
    if (req.headers['content-type'] !== 'application/x-www-form-urlencoded') {
      send(400, { error: 'invalid_request' });
      return;
    }
    const form = new URLSearchParams(Buffer.concat(chunks).toString('utf8'));
    lastForm = form;
    // As IdPs do with a token they will not read (too long for any they issue): 400, about this token only.
    if ((form.get('token') ?? '').length > MAX_TOKEN_LENGTH) {
      send(400, { error: 'invalid_request', error_description: 'token too long' });
      return;
    }
    introspections++;
    const issued = tokens.get(form.get('token') ?? '');
    if (issued === undefined || issued.revoked || issued.expiresAt <= Date.now()) {
      send(200, { active: false });
      return;
    }
    send(200, { active: true, iss: issuer, exp: Math.floor(issued.expiresAt / 1000), iat: Math.floor(Date.now() / 1000), token_type: 'Bearer', ...issued.claims });
  };

  const server: Server = createServer((req, res) => {
    handle(req, res).catch(() => {
      res.statusCode = 500;
      res.end();
    });
  });
  const listen = () => new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
  await listen();
  port = (server.address() as AddressInfo).port;
  issuer = `http://127.0.0.1:${port}`;

  const mint = (claims: Record<string, unknown>, ttlMs: number) => {
    const token = randomBytes(24).toString('base64url');
    tokens.set(token, { claims, expiresAt: Date.now() + ttlMs, revoked: false });
    return token;
  };

  return {
    issuer,
    introspectionEndpoint: `${issuer}/introspect`,
    clientId,
    clientSecret,
    issue: (claims, ttlMs = 3_600_000) => mint(claims, ttlMs),
    register(token, claims, ttlMs = 3_600_000) {
      tokens.set(token, { claims, expiresAt: Date.now() + ttlMs, revoked: false });
    },
    issueRefreshToken: (claims) => mint({ ...claims, token_type: 'refresh_token' }, 3_600_000),
    revoke(token) {
      const issued = tokens.get(token);
      if (issued !== undefined) issued.revoked = true;
    },
    get introspections() {
      return introspections;
    },
    get unauthorized() {
      return unauthorized;
    },
    get lastForm() {
      return lastForm;
    },
    stop: () => new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
    }),
    start: listen,
  };
}
