/**
 * Rate limits for log lines that a client can make us write for free. A denied check costs an attacker
 * one request and would cost us one line: a flood could fill the disk, rotate real events out of the
 * log and drown them in what is left. So such lines go through a limiter, per key.
 *
 * The contract of a LineLimiter, for every caller (the check handler's "check denied"; the login routes'
 * lines can use one the same way):
 * - A key is a fixed code (a decision reason such as "bad_signature"), never text from the request:
 *   keys are metric labels and each gets a little state. As a safeguard at most MAX_KEYS keys get their
 *   own budget; lines for any further key share one under OVERFLOW_KEY.
 * - `take(key)`: true means write the line now, false means drop it (it is counted). Ask only once the
 *   line would otherwise be written (after the level check) and build the line only on true: a dropped
 *   line then costs two integer increments, no allocation and no I/O.
 * - Each key has fixed windows of `windowMs`; a window starts with the first line after the last one
 *   ended. Within a window the first `perKey` lines are written, the rest dropped. Keys never share a
 *   budget, so a flood of one reason leaves every other reason's lines alone.
 * - When a window that dropped lines is over, `onSuppressed(key, count, windowStartedAt)` is called once
 *   for it: from the next `take` of that key (before that line is written) or from `flush()`, whichever
 *   comes first. The limiter keeps no timer of its own: the owner calls `flush()` on an unref()ed
 *   interval (and `flush(true)` when stopping) and tests move the injected clock instead of sleeping.
 * - `suppressedTotals()` are monotonic counts of dropped lines per key since creation (for Prometheus:
 *   Metrics.logLineSources reads them at scrape time, so the hot path never touches prom-client).
 * - Errors are never limited: `logger.error` lines are rare, and the ones an operator must not miss.
 */
import type { Logger } from './log.js';

export interface LineLimiter {
  take(key: string): boolean;
  /** Reports every window that is over and dropped lines; with `all`, also the current windows (shutdown). */
  flush(all?: boolean): void;
  suppressedTotals(): ReadonlyMap<string, number>;
}

export interface LineLimiterOptions {
  /** Lines written per key and window. */
  readonly perKey: number;
  readonly windowMs: number;
  readonly now: () => number;
  readonly onSuppressed: (key: string, suppressed: number, windowStartedAt: number) => void;
}

/** Far more than there are decision reasons; bounds memory if a caller ever passes open-ended keys. */
export const MAX_KEYS = 64;
export const OVERFLOW_KEY = 'other';

interface KeyState {
  windowStartedAt: number;
  /** False until the first line, and never again after. */
  started: boolean;
  written: number;
  /** Dropped in the current window, not yet reported. */
  suppressed: number;
  /** Dropped since creation. */
  total: number;
}

export function createLineLimiter(options: LineLimiterOptions): LineLimiter {
  const { perKey, windowMs, now, onSuppressed } = options;
  const keys = new Map<string, KeyState>();

  /** The key a line is counted under: its own while there is room, then the shared overflow key. */
  const bucketOf = (key: string) => (keys.size < MAX_KEYS - 1 || key === OVERFLOW_KEY ? key : OVERFLOW_KEY);
  const added = (key: string): KeyState => {
    const state: KeyState = { windowStartedAt: 0, started: false, written: 0, suppressed: 0, total: 0 };
    keys.set(key, state);
    return state;
  };

  const report = (key: string, state: KeyState) => {
    const count = state.suppressed;
    state.suppressed = 0;
    onSuppressed(key, count, state.windowStartedAt);
  };

  return {
    take(key) {
      let state = keys.get(key);
      if (state === undefined) {
        key = bucketOf(key);
        state = keys.get(key) ?? added(key);
      }
      const at = now();
      if (!state.started || at - state.windowStartedAt >= windowMs) {
        if (state.suppressed > 0) report(key, state);
        state.started = true;
        state.windowStartedAt = at;
        state.written = 0;
      }
      if (state.written < perKey) {
        state.written++;
        return true;
      }
      state.suppressed++;
      state.total++;
      return false;
    },
    flush(all = false) {
      const at = now();
      for (const [key, state] of keys) {
        if (state.suppressed > 0 && (all || at - state.windowStartedAt >= windowMs)) report(key, state);
      }
    },
    suppressedTotals() {
      const totals = new Map<string, number>();
      for (const [key, state] of keys) if (state.total > 0) totals.set(key, state.total);
      return totals;
    },
  };
}

/**
 * The summary line for a limiter whose lines are `line` (their msg): one warn line per window that
 * dropped lines, naming the reason and how many. Warn, not info: lines were lost, which is itself news.
 */
export function logSuppressed(logger: Logger, line: string, options: Pick<LineLimiterOptions, 'perKey' | 'windowMs'>): LineLimiterOptions['onSuppressed'] {
  return (reason, suppressed, windowStartedAt) =>
    logger.warn('log lines suppressed', {
      line,
      reason,
      suppressed,
      since: new Date(windowStartedAt).toISOString(),
      limit: options.perKey,
      windowSeconds: options.windowMs / 1000,
    });
}
