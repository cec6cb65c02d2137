import { createLineLimiter, logSuppressed, MAX_KEYS, OVERFLOW_KEY, type LineLimiter } from '../../src/log-limit.js';
import { createLogger } from '../../src/log.js';
import { createMetrics } from '../../src/metrics.js';

const WINDOW = 10_000;
const START = Date.UTC(2030, 0, 1);

/** A limiter on a clock the test moves; `events` records written lines and summaries in order. */
function harness(perKey = 3) {
  let at = START;
  const events: string[] = [];
  const limiter = createLineLimiter({
    perKey,
    windowMs: WINDOW,
    now: () => at,
    onSuppressed: (key, count, since) => void events.push(`summary ${key} ${count} since +${since - START}`),
  });
  const line = (key: string) => {
    const written = limiter.take(key);
    if (written) events.push(`line ${key}`);
    return written;
  };
  return {
    limiter,
    events,
    line,
    lines: (key: string, n: number) => Array.from({ length: n }, () => line(key)),
    advance: (ms: number) => void (at += ms),
  };
}

describe('createLineLimiter', () => {
  test('a flood of one reason: the first perKey lines are written, the rest dropped and counted', () => {
    const h = harness(3);
    expect(h.lines('bad_signature', 1000).filter(Boolean)).toHaveLength(3);
    expect(h.events).toEqual(['line bad_signature', 'line bad_signature', 'line bad_signature']);
    expect([...h.limiter.suppressedTotals()]).toEqual([['bad_signature', 997]]);
  });

  test('a flood of one reason does not suppress lines of another', () => {
    const h = harness(3);
    h.lines('bad_signature', 500);
    expect(h.lines('token_expired', 3)).toEqual([true, true, true]);
    expect(h.line('token_expired')).toBe(false);
    expect(h.line('requirement_not_met')).toBe(true);
    expect(Object.fromEntries(h.limiter.suppressedTotals())).toEqual({ bad_signature: 497, token_expired: 1 });
  });

  test('a window rolls over after windowMs, and its summary comes before the next line of that reason', () => {
    const h = harness(2);
    h.lines('bad_signature', 5);
    h.advance(WINDOW - 1);
    expect(h.line('bad_signature')).toBe(false);
    h.advance(1);
    expect(h.line('bad_signature')).toBe(true);
    expect(h.events).toEqual(['line bad_signature', 'line bad_signature', 'summary bad_signature 4 since +0', 'line bad_signature']);
    // The new window started at that line: two lines in it, then drops again.
    expect(h.lines('bad_signature', 3)).toEqual([true, false, false]);
    expect(h.limiter.suppressedTotals().get('bad_signature')).toBe(6);
  });

  test('a window that dropped nothing ends without a summary', () => {
    const h = harness(3);
    h.lines('rule_deny', 3);
    h.advance(WINDOW);
    h.limiter.flush();
    h.line('rule_deny');
    expect(h.events.filter((e) => e.startsWith('summary'))).toEqual([]);
    expect(h.limiter.suppressedTotals().size).toBe(0);
  });

  test('flush() sums up windows that are over (a flood that stopped), once, and leaves open windows alone', () => {
    const h = harness(1);
    h.lines('bad_signature', 10);
    h.advance(WINDOW / 2);
    h.lines('wrong_audience', 4);
    h.limiter.flush();
    expect(h.events.filter((e) => e.startsWith('summary'))).toEqual([]);
    h.advance(WINDOW / 2);
    h.limiter.flush();
    h.limiter.flush();
    expect(h.events.filter((e) => e.startsWith('summary'))).toEqual(['summary bad_signature 9 since +0']);
    // The next line of that reason opens a new window without summing up the old one again.
    expect(h.line('bad_signature')).toBe(true);
    h.advance(WINDOW / 2);
    h.limiter.flush();
    expect(h.events.filter((e) => e.startsWith('summary'))).toEqual(['summary bad_signature 9 since +0', 'summary wrong_audience 3 since +5000']);
  });

  test('flush(true) (shutdown) sums up the windows still open', () => {
    const h = harness(1);
    h.lines('bad_signature', 3);
    h.limiter.flush(true);
    expect(h.events).toEqual(['line bad_signature', 'summary bad_signature 2 since +0']);
  });

  test(`more than ${MAX_KEYS} keys: the extra ones share the "${OVERFLOW_KEY}" budget, so memory stays bounded`, () => {
    const h = harness(1);
    for (let i = 0; i < 200; i++) h.lines(`reason-${i}`, 2);
    const totals = h.limiter.suppressedTotals();
    expect(totals.size).toBe(MAX_KEYS);
    expect(totals.get('reason-0')).toBe(1);
    // The keys past the first MAX_KEYS - 1 share one budget: 2 lines each, 1 of them all written.
    expect(totals.get(OVERFLOW_KEY)).toBe(2 * (200 - (MAX_KEYS - 1)) - 1);
  });
});

describe('oidc_authz_log_lines_suppressed_total', () => {
  async function counterValues(registryText: Promise<string>): Promise<Record<string, number>> {
    const values: Record<string, number> = {};
    for (const [, reason, value] of (await registryText).matchAll(/^oidc_authz_log_lines_suppressed_total\{reason="([^"]+)"\} (\d+)$/gm)) values[reason!] = Number(value);
    return values;
  }

  test('counts every dropped line by reason, across scrapes and limiters, without counting one twice', async () => {
    const metrics = createMetrics({ defaultMetrics: false });
    const denials: LineLimiter = harness(2).limiter;
    const other = harness(1).limiter;
    metrics.logLineSources.push(denials, other);
    for (let i = 0; i < 10; i++) denials.take('bad_signature');
    denials.take('token_expired');
    expect(await counterValues(metrics.registry.metrics())).toEqual({ bad_signature: 8 });

    for (let i = 0; i < 5; i++) denials.take('bad_signature');
    for (let i = 0; i < 3; i++) other.take('bad_signature');
    other.take('idp_error');
    other.take('idp_error');
    expect(await counterValues(metrics.registry.metrics())).toEqual({ bad_signature: 15, idp_error: 1 });
    expect(await counterValues(metrics.registry.metrics())).toEqual({ bad_signature: 15, idp_error: 1 });
  });
});

test('logSuppressed writes one warn line naming the line, the reason, the count and the window', () => {
  const written: Array<Record<string, unknown>> = [];
  const logger = createLogger('info', (line) => void written.push(JSON.parse(line) as Record<string, unknown>));
  logSuppressed(logger, 'check denied', { perKey: 20, windowMs: 10_000 })('bad_signature', 1980, START);
  expect(written).toHaveLength(1);
  expect(written[0]).toMatchObject({
    level: 'warn', msg: 'log lines suppressed', line: 'check denied', reason: 'bad_signature', suppressed: 1980,
    since: '2030-01-01T00:00:00.000Z', limit: 20, windowSeconds: 10,
  });
});
