import { BACKCHANNEL_LOGOUT_EVENT, logoutTargetOf, MAX_LOGOUT_TOKEN_AGE_MS } from '../../src/oidc/backchannel.js';

const NOW = Date.UTC(2026, 11, 2, 12, 0, 0);
const SKEW = 30_000;
const base = { iss: 'https://idp.example.com', aud: 'kubeflow', iat: NOW / 1000, jti: 'j-1', sid: 'sid-1', sub: 'u-1', events: { [BACKCHANNEL_LOGOUT_EVENT]: {} } };

describe('logoutTargetOf (OIDC Back-Channel Logout 1.0 §2.6, after signature and issuer)', () => {
  test('a token with sid ends that IdP session; without sid, every session of the subject', () => {
    expect(logoutTargetOf(base, 'kubeflow', NOW, SKEW)).toEqual({ ok: true, target: { jti: 'j-1', by: 'sid', sid: 'sid-1' } });
    const { sid: _sid, ...withoutSid } = base;
    expect(logoutTargetOf(withoutSid, 'kubeflow', NOW, SKEW)).toEqual({ ok: true, target: { jti: 'j-1', by: 'sub', sub: 'u-1' } });
    expect(logoutTargetOf({ ...base, aud: ['other', 'kubeflow'] }, 'kubeflow', NOW, SKEW).ok).toBe(true);
  });

  test.each<[string, Record<string, unknown>, string]>([
    ['another client', { aud: 'other' }, 'aud'],
    ['no aud', { aud: undefined }, 'aud'],
    ['no iat', { iat: undefined }, 'iat'],
    ['iat in the future', { iat: (NOW + SKEW + 5_000) / 1000 }, 'future'],
    ['older than 10 minutes', { iat: (NOW - MAX_LOGOUT_TOKEN_AGE_MS - SKEW - 1_000) / 1000 }, '10 minutes'],
    ['no events', { events: undefined }, 'events'],
    ['the event as an array member (not an object)', { events: [BACKCHANNEL_LOGOUT_EVENT] }, 'events'],
    ['the event with a non-object value', { events: { [BACKCHANNEL_LOGOUT_EVENT]: true } }, 'events'],
    ['a nonce (an ID token)', { nonce: 'n' }, 'nonce'],
    ['no jti', { jti: undefined }, 'jti'],
    ['neither sid nor sub', { sid: undefined, sub: undefined }, 'neither'],
    ['an empty sid and sub', { sid: '', sub: '' }, 'neither'],
  ])('refuses %s', (_what, change, problem) => {
    const result = logoutTargetOf({ ...base, ...change }, 'kubeflow', NOW, SKEW);
    expect(result.ok).toBe(false);
    expect(!result.ok && result.problem).toContain(problem);
  });
});
