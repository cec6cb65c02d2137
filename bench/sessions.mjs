// Sessions made the way the service makes them at login, from the compiled dist/ and the very config the
// service under test reads: the store src/oidc/setup.ts builds for session.store ("cookie": the sealed
// session is the cookie; "redis": the sealed session goes to Redis, the cookie is a signed handle), and
// its issue(). No IdP runs in the bench, so the ID token is one the bench signed itself.
import { join } from 'node:path';

/** The Cookie header a browser would send: the session cookie(s) amid other cookies. */
export const cookieHeaderOf = (sessionCookies) => `theme=dark; ${sessionCookies}; _ga=GA1.2.123456789.1700000000`;

/**
 * A session maker for a service config (the raw JSON object the service parses). make(i) issues one new
 * session and resolves with its Cookie header; `owner(i)` says whose it is (what Redis indexes it by).
 */
export async function createSessionMaker(root, rawConfig, { idToken, refreshToken = (i) => `bench-refresh-token-${i}`, owner }) {
  const dist = (path) => import(join(root, 'dist', path));
  const [{ parseConfig }, { createSealer }, { readSecretsFile }, { CookieSessionStore }, { cookieNamesOf }, { createMetrics }, { silentLogger }] = await Promise.all([
    dist('config/load.js'), dist('session/seal.js'), dist('session/secrets.js'), dist('session/store.js'),
    dist('session/cookie-header.js'), dist('metrics.js'), dist('log.js'),
  ]);
  const config = parseConfig(rawConfig, 'bench config');
  const secrets = readSecretsFile(config.session.secretsFile);
  const sealer = createSealer(secrets);
  let store;
  if (config.session.store === 'redis') {
    const { redisStoreFromConfig } = await dist('session-store/redis-store.js');
    store = redisStoreFromConfig(config, sealer, secrets, { metrics: createMetrics({ defaultMetrics: false }), logger: silentLogger });
    await store.connected();
  } else {
    store = new CookieSessionStore(sealer, { names: cookieNamesOf(config.session), attributes: { secure: config.session.secure, domain: config.session.domain }, maxAgeMs: config.session.maxAge });
  }
  const exp = JSON.parse(Buffer.from(idToken.split('.')[1], 'base64url').toString()).exp;
  return {
    kind: store.kind,
    async make(i) {
      const data = { idToken, addedClaims: {}, refreshToken: refreshToken(i), createdAt: Date.now(), expiresAt: exp * 1000 };
      const issued = await store.issue(data, [], true, owner(i));
      return { cookie: cookieHeaderOf(issued.setCookies.map((line) => line.split(';', 1)[0]).join('; ')), valueBytes: issued.sealed.length, chunks: issued.chunks };
    },
    close: () => store.close?.() ?? Promise.resolve(),
  };
}
