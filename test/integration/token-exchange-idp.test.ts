/**
 * The exchange request and how every kind of token-endpoint answer is classified, against a small
 * HTTP IdP on 127.0.0.1 whose token endpoint answers as told: what Keycloak sends (a grant, a refusal)
 * is tested with Keycloak itself (test/idp/token-exchange.test.ts); outages are easier to make here.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createLogger } from '../../src/log.js';
import { OidcClient } from '../../src/oidc/client.js';

type Behaviour = (req: IncomingMessage, res: ServerResponse) => void;

let server: Server;
let issuer: string;
let behaviour: Behaviour;
const forms: URLSearchParams[] = [];
const authorizations: Array<string | undefined> = [];

beforeAll(async () => {
  server = createServer((req, res) => {
    if (req.url === '/.well-known/openid-configuration') {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({
        issuer, authorization_endpoint: `${issuer}/auth`, token_endpoint: `${issuer}/token`, jwks_uri: `${issuer}/jwks`,
        response_types_supported: ['code'], subject_types_supported: ['public'], id_token_signing_alg_values_supported: ['RS256'],
      }));
      return;
    }
    let body = '';
    req.on('data', (chunk: Buffer) => (body += chunk.toString()));
    req.on('end', () => {
      forms.push(new URLSearchParams(body));
      authorizations.push(req.headers.authorization);
      behaviour(req, res);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  issuer = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  server.closeAllConnections();
  await new Promise<void>((resolve) => server.close(() => resolve()));
});

const json = (status: number, body: object): Behaviour => (_req, res) => {
  res.writeHead(status, { 'content-type': 'application/json', 'cache-control': 'no-store' });
  res.end(JSON.stringify(body));
};

function client(at = issuer): OidcClient {
  return new OidcClient({
    issuer: at, clientId: 'oidc-authz', clientSecret: 'client-secret', scopes: undefined, relativeRedirectUri: undefined,
    timeoutMs: 1000, extraAuthParams: {}, postLogoutRedirectUri: undefined,
  }, createLogger('error', () => undefined));
}

const TARGET = { audience: 'ml-pipeline', scope: 'openid read' };

test('the request: RFC 8693 parameters, as this client (HTTP Basic); the answer\'s expires_in becomes the expiry', async () => {
  behaviour = json(200, { access_token: 'exchanged', token_type: 'Bearer', expires_in: 300, issued_token_type: 'urn:ietf:params:oauth:token-type:access_token' });
  await expect(client().exchangeToken('subject', TARGET, 1_000)).resolves.toEqual({ kind: 'ok', accessToken: 'exchanged', expiresAt: 301_000 });
  expect(Object.fromEntries(forms.at(-1)!)).toEqual({
    grant_type: 'urn:ietf:params:oauth:grant-type:token-exchange',
    subject_token: 'subject',
    subject_token_type: 'urn:ietf:params:oauth:token-type:access_token',
    requested_token_type: 'urn:ietf:params:oauth:token-type:access_token',
    audience: 'ml-pipeline',
    scope: 'openid read',
  });
  // RFC 6749 §2.3.1: id and secret form-urlencoded, then Basic.
  const basic = Buffer.from(authorizations.at(-1)!.replace(/^Basic /, ''), 'base64').toString('utf8').split(':').map(decodeURIComponent);
  expect(basic).toEqual(['oidc-authz', 'client-secret']);
});

test.each<[string, Behaviour, { kind: string; error: string }]>([
  ['400 invalid_target', json(400, { error: 'invalid_target' }), { kind: 'refused', error: 'invalid_target' }],
  ['400 invalid_request (Keycloak: audience not available)', json(400, { error: 'invalid_request', error_description: 'Requested audience not available: x' }), { kind: 'refused', error: 'invalid_request' }],
  ['401 invalid_client', json(401, { error: 'invalid_client' }), { kind: 'refused', error: 'invalid_client' }],
  ['403 access_denied', json(403, { error: 'access_denied' }), { kind: 'refused', error: 'access_denied' }],
  // openid-client reads no OAuth body from a 5xx: counted as server_error whatever it says.
  ['503 temporarily_unavailable', json(503, { error: 'temporarily_unavailable' }), { kind: 'unavailable', error: 'server_error' }],
  ['429 slow_down', json(429, { error: 'slow_down' }), { kind: 'unavailable', error: 'other' }],
  ['500 server_error', json(500, { error: 'server_error' }), { kind: 'unavailable', error: 'server_error' }],
  ['502 from a proxy (HTML)', (_req, res) => { res.writeHead(502, { 'content-type': 'text/html' }); res.end('<h1>Bad gateway</h1>'); }, { kind: 'unavailable', error: 'server_error' }],
  ['200 without a token', json(200, { token_type: 'Bearer' }), { kind: 'unavailable', error: 'bad_response' }],
  ['no answer within oidc.timeout', () => undefined, { kind: 'unavailable', error: 'timeout' }],
  ['the connection dropped', (req) => req.socket.destroy(), { kind: 'unavailable', error: 'unreachable' }],
])('%s: classified as expected', async (_name, answer, expected) => {
  behaviour = answer;
  await expect(client().exchangeToken('subject', TARGET, 1_000)).resolves.toEqual(expected);
});

test('an IdP that cannot be discovered is unavailable, not a refusal', async () => {
  await expect(client('http://127.0.0.1:9/realms/none').exchangeToken('subject', TARGET, 1_000)).resolves.toEqual({ kind: 'unavailable', error: 'unreachable' });
});
