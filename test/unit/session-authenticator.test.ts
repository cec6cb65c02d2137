/**
 * The session authenticator's revalidation and sign-out (src/authn/session.ts), with real sealing, a
 * clock the test moves, and a refresher that answers like an IdP that rotates refresh tokens. The
 * refresher is the test's own because these tests need to see and hold each refresh (how many, and one
 * kept in flight while a sign-out happens) — a timing a real IdP cannot be made to show on demand. The
 * same behaviour against real IdPs: test/e2e/attacks.test.ts, test/idp/dex.test.ts, test/idp/keycloak.test.ts.
 */
import { parseConfig } from '../../src/config/load.js';
import { compileIdentityMapping } from '../../src/authn/identity.js';
import { SessionAuthenticator, SessionMemory, type RefreshResult, type TokenRefresher } from '../../src/authn/session.js';
import { createSealer } from '../../src/session/seal.js';
import { secretsFromLines } from '../../src/session/secrets.js';
import { CookieSessionStore, type SessionData } from '../../src/session/store.js';

const SECRET = 'authenticator-secret-aaaaaaaaaaaaaaaaaaaaaaa';
const MINUTE = 60_000;
const REVALIDATE_AFTER = 5 * MINUTE;
const T0 = Date.UTC(2026, 11, 2, 9, 0, 0);

const base64url = (value: object) => Buffer.from(JSON.stringify(value)).toString('base64url');
/** An ID token as the session keeps it (the session trusts what it sealed; nothing here verifies signatures). */
const idToken = (sub: string, exp: number) =>
  `${base64url({ alg: 'RS256' })}.${base64url({ iss: 'https://idp.example.com', sub, aud: 'kubeflow', email: `${sub}@example.com`, email_verified: true, exp: Math.floor(exp / 1000) })}.c2ln`;

/** Rotates refresh tokens like Dex: each refresh spends the old token and hands out the next one. */
class RotatingRefresher implements TokenRefresher {
  calls = 0;
  held: Array<() => void> = [];
  hold = false;
  /** Resolves when a held refresh has started. */
  started: Promise<void>;
  private markStarted!: () => void;
  private serial = 0;

  constructor(private readonly now: () => number) {
    this.started = new Promise((resolve) => (this.markStarted = resolve));
  }

  async refresh(session: SessionData): Promise<RefreshResult> {
    this.calls++;
    if (this.hold) {
      const release = new Promise<void>((resolve) => this.held.push(resolve));
      this.markStarted();
      await release;
    }
    const sub = JSON.parse(Buffer.from(session.idToken.split('.')[1]!, 'base64url').toString()).sub as string;
    return {
      kind: 'ok',
      tokens: { idToken: idToken(sub, this.now() + 60 * MINUTE), refreshToken: `rt-${sub}-${++this.serial}`, addedClaims: {}, expiresAt: this.now() + 60 * MINUTE },
    };
  }
}

let now = T0;
const clock = () => now;
const cookieHeaderOf = (setCookies: readonly string[]) => setCookies.filter((c) => !/Max-Age=0/.test(c)).map((c) => c.split(';', 1)[0]).join('; ');

function setUp(revalidateAfter = REVALIDATE_AFTER) {
  const store = new CookieSessionStore(createSealer(secretsFromLines([SECRET])), { names: { base: 'oidc_authz', sessionPrefix: '' }, attributes: { secure: true }, maxAgeMs: 7 * 24 * 60 * MINUTE }, clock);
  const refresher = new RotatingRefresher(clock);
  const sessions = new SessionAuthenticator(store, compileIdentityMapping(parseConfig({}).identity), refresher, { refreshed: () => undefined, issued: () => undefined }, 1000, clock, revalidateAfter);
  const logIn = async (sub: string) => {
    const issued = await sessions.issue({ idToken: idToken(sub, now + 60 * MINUTE), addedClaims: {}, refreshToken: `rt-${sub}-0`, createdAt: now, expiresAt: now + 60 * MINUTE });
    if ('failure' in issued) throw new Error(issued.failure);
    return cookieHeaderOf(issued.setCookies);
  };
  return { store, refresher, sessions, logIn };
}

beforeEach(() => {
  now = T0;
});

describe('session.revalidateAfter', () => {
  test('a session whose ID token has an hour left is refreshed with the IdP after revalidateAfter, not before', async () => {
    const { sessions, refresher, logIn } = setUp();
    const cookie = await logIn('alice');
    now += REVALIDATE_AFTER - 1_000;
    expect((await sessions.authenticate(cookie)).kind).toBe('identity');
    expect(refresher.calls).toBe(0);
    now += 2_000;
    const result = await sessions.authenticate(cookie);
    expect(result.kind).toBe('identity');
    expect(refresher.calls).toBe(1);
    expect(result.kind === 'identity' && result.setCookie?.length).toBeGreaterThan(0);
  });

  test('a cookie sealed before revalidation existed (its refresh an hour ahead) is revalidated at once', async () => {
    const { store, sessions, refresher } = setUp();
    const old = await store.issue({ idToken: idToken('bob', now + 60 * MINUTE), addedClaims: {}, refreshToken: 'rt-bob-0', createdAt: now, expiresAt: now + 60 * MINUTE });
    expect((await sessions.authenticate(cookieHeaderOf(old.setCookies))).kind).toBe('identity');
    expect(refresher.calls).toBe(1);
  });

  test('a session without a refresh token lives as long as its ID token', async () => {
    const { sessions, refresher } = setUp();
    const issued = await sessions.issue({ idToken: idToken('carol', now + 60 * MINUTE), addedClaims: {}, refreshToken: null, createdAt: now, expiresAt: now + 60 * MINUTE });
    if ('failure' in issued) throw new Error(issued.failure);
    now += 30 * MINUTE;
    expect((await sessions.authenticate(cookieHeaderOf(issued.setCookies))).kind).toBe('identity');
    expect(refresher.calls).toBe(0);
  });
});

describe('sign-out on this replica', () => {
  test('refuses the signed-out cookie and every refresh of it, not another login of the same user', async () => {
    const { sessions, logIn } = setUp();
    const first = await logIn('alice');
    now += REVALIDATE_AFTER + 1_000;
    const refreshed = await sessions.authenticate(first);
    expect(refreshed.kind).toBe('identity');
    const second = cookieHeaderOf(refreshed.kind === 'identity' ? refreshed.setCookie ?? [] : []);
    const otherLogin = await logIn('alice');

    const out = await sessions.signOut(first);
    // The session's own refresh token and the successor the refresh a moment ago handed out.
    expect(out.refreshTokens).toEqual(['rt-alice-0', 'rt-alice-1']);
    expect(await sessions.authenticate(first)).toMatchObject({ kind: 'invalid', reason: 'session_revoked', setCookie: [] });
    expect(await sessions.authenticate(second)).toMatchObject({ kind: 'invalid', reason: 'session_revoked' });
    expect((await sessions.authenticate(otherLogin)).kind).toBe('identity');
  });

  test('(refresher held open: the race needs a refresh in flight) a sign-out during a refresh of the same cookie ends the new refresh token too, and refuses the new cookie', async () => {
    const { sessions, refresher, logIn } = setUp();
    const cookie = await logIn('alice');
    now += REVALIDATE_AFTER + 1_000;
    refresher.hold = true;
    const check = sessions.authenticate(cookie);
    await refresher.started;
    expect(refresher.held).toHaveLength(1);
    const signOut = sessions.signOut(cookie);
    refresher.held.shift()!();
    const [checked, out] = await Promise.all([check, signOut]);
    expect(out.refreshTokens).toEqual(['rt-alice-0', 'rt-alice-1']);
    // The check that raced the sign-out may still answer with the new cookie: that cookie is refused.
    const racedCookie = cookieHeaderOf(checked.kind === 'identity' ? checked.setCookie ?? [] : []);
    expect(racedCookie).toMatch(/^oidc_authz=/);
    expect(await sessions.authenticate(racedCookie)).toMatchObject({ kind: 'invalid', reason: 'session_revoked' });
  });

  test('a sign-out is remembered until the session would have ended, then forgotten', async () => {
    const { sessions, logIn } = setUp(24 * 60 * MINUTE);
    const cookie = await logIn('dave');
    await sessions.signOut(cookie);
    expect(await sessions.authenticate(cookie)).toMatchObject({ reason: 'session_revoked' });
    now += 7 * 24 * 60 * MINUTE;
    expect(await sessions.authenticate(cookie)).toMatchObject({ reason: 'session_expired' });
  });
});

describe('a hot reload between two checks of one session (a new authenticator sharing SessionMemory)', () => {
  /** The authenticator a reload builds for a new identity mapping: same store and refresher, shared memory. */
  function reloaded(setup: ReturnType<typeof setUp>, memory: SessionMemory, userIdPrefix: string) {
    const mapping = compileIdentityMapping(parseConfig({ identity: { userIdPrefix } }).identity);
    return new SessionAuthenticator(setup.store, mapping, setup.refresher, { refreshed: () => undefined, issued: () => undefined }, 1000, clock, REVALIDATE_AFTER, memory);
  }

  test('(refresher held open) a refresh in flight before the reload is joined after it: the IdP is asked once, the answer is mapped by the new config', async () => {
    const setup = setUp();
    const memory = new SessionMemory();
    const before = reloaded(setup, memory, 'old:');
    const issued = await before.issue({ idToken: idToken('alice', now + 60 * MINUTE), addedClaims: {}, refreshToken: 'rt-alice-0', createdAt: now, expiresAt: now + 60 * MINUTE });
    if ('failure' in issued) throw new Error(issued.failure);
    const cookie = cookieHeaderOf(issued.setCookies);
    now += REVALIDATE_AFTER + 1_000;
    setup.refresher.hold = true;
    const first = before.authenticate(cookie);
    await setup.refresher.started;

    const after = reloaded(setup, memory, 'new:');
    const second = after.authenticate(cookie);
    setup.refresher.held.shift()!();
    const [a, b] = await Promise.all([first, second]);
    expect(setup.refresher.calls).toBe(1);
    expect(a).toMatchObject({ kind: 'identity', identity: { userId: 'old:alice@example.com' } });
    expect(b).toMatchObject({ kind: 'identity', identity: { userId: 'new:alice@example.com' } });
    // Both answers carry the one new cookie, which the new authenticator opens without asking the IdP.
    const renewedCookie = cookieHeaderOf(a.kind === 'identity' ? a.setCookie ?? [] : []);
    expect(cookieHeaderOf(b.kind === 'identity' ? b.setCookie ?? [] : [])).toBe(renewedCookie);
    expect(await after.authenticate(renewedCookie)).toMatchObject({ kind: 'identity', identity: { userId: 'new:alice@example.com' } });
    expect(setup.refresher.calls).toBe(1);
  });

  test('a sign-out before the reload is still refused after it', async () => {
    const setup = setUp();
    const memory = new SessionMemory();
    const before = reloaded(setup, memory, '');
    const issued = await before.issue({ idToken: idToken('bob', now + 60 * MINUTE), addedClaims: {}, refreshToken: 'rt-bob-0', createdAt: now, expiresAt: now + 60 * MINUTE });
    if ('failure' in issued) throw new Error(issued.failure);
    const cookie = cookieHeaderOf(issued.setCookies);
    await before.signOut(cookie);
    expect(await reloaded(setup, memory, 'x:').authenticate(cookie)).toMatchObject({ kind: 'invalid', reason: 'session_revoked' });
    // Without the shared memory (a restart) the cookie would open again: the memory is what carries it.
    expect((await reloaded(setup, new SessionMemory(), 'x:').authenticate(cookie)).kind).toBe('identity');
  });
});
