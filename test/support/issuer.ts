/**
 * A real JWKS issuer for tests: keys made by jose, served over HTTP on 127.0.0.1 with an OpenID
 * discovery document. Tests can rotate keys, take the server down, or hold responses until released.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { exportJWK, generateKeyPair, SignJWT, type CryptoKey, type JWK } from 'jose';

export interface SigningKey {
  readonly kid: string;
  readonly alg: string;
  readonly privateKey: CryptoKey;
  readonly publicJwk: JWK;
}

export async function createSigningKey(alg: 'RS256' | 'ES256' | 'EdDSA' | 'PS256', kid: string): Promise<SigningKey> {
  const { privateKey, publicKey } = await generateKeyPair(alg, alg === 'EdDSA' ? { crv: 'Ed25519', extractable: true } : { extractable: true });
  const publicJwk = { ...(await exportJWK(publicKey)), kid, alg, use: 'sig' };
  return { kid, alg, privateKey, publicJwk };
}

export interface TestIssuer {
  /** e.g. http://127.0.0.1:41234/issuer */
  readonly issuer: string;
  readonly jwksUri: string;
  /** Requests received, by path. */
  readonly hits: Map<string, number>;
  /** Keys published in the JWKS (mutable: rotate by assigning). */
  keys: SigningKey[];
  /** Sign a token with `key` (default: the first key); claims default iss/iat/exp(+1h). */
  sign(claims: Record<string, unknown>, options?: { key?: SigningKey; header?: Record<string, unknown> }): Promise<string>;
  /** Until release(), requests are received but not answered. Resolves `received` on the first. */
  hold(): { received: Promise<void>; release(): void };
  /** Stops listening and drops connections: fetches now fail with ECONNREFUSED. */
  stop(): Promise<void>;
  hitsOf(path: string): number;
}

export async function startIssuer(keys: SigningKey[], path = '/issuer'): Promise<TestIssuer> {
  let held: { waiting: Array<() => void>; onReceived: () => void } | null = null;
  const hits = new Map<string, number>();
  let issuer = '';

  const answer = (req: IncomingMessage, res: ServerResponse) => {
    const url = req.url ?? '';
    if (url === `${path}/.well-known/openid-configuration`) {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ issuer, jwks_uri: `${issuer}/jwks`, id_token_signing_alg_values_supported: ['RS256', 'ES256', 'EdDSA'] }));
    } else if (url === `${path}/jwks`) {
      res.writeHead(200, { 'content-type': 'application/jwk-set+json' });
      res.end(JSON.stringify({ keys: test.keys.map((k) => k.publicJwk) }));
    } else {
      res.writeHead(404).end();
    }
  };

  const server: Server = createServer((req, res) => {
    hits.set(req.url ?? '', (hits.get(req.url ?? '') ?? 0) + 1);
    if (held) {
      held.onReceived();
      held.waiting.push(() => answer(req, res));
      return;
    }
    answer(req, res);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  issuer = `http://127.0.0.1:${(server.address() as AddressInfo).port}${path}`;

  const test: TestIssuer = {
    issuer,
    jwksUri: `${issuer}/jwks`,
    hits,
    keys,
    async sign(claims, options = {}) {
      const key = options.key ?? test.keys[0]!;
      const now = Math.floor(Date.now() / 1000);
      return new SignJWT({ iss: issuer, iat: now, exp: now + 3600, ...claims })
        .setProtectedHeader({ alg: key.alg, kid: key.kid, typ: 'JWT', ...options.header })
        .sign(key.privateKey);
    },
    hold() {
      let onReceived!: () => void;
      const received = new Promise<void>((resolve) => (onReceived = resolve));
      const state = { waiting: [] as Array<() => void>, onReceived };
      held = state;
      return {
        received,
        release() {
          held = null;
          state.waiting.splice(0).forEach((send) => send());
        },
      };
    },
    async stop() {
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
    },
    hitsOf(p) {
      return hits.get(`${path}${p}`) ?? 0;
    },
  };
  return test;
}
