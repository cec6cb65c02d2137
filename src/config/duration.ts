/**
 * Durations in config are written the way operators write them in YAML ("30s", "10m", "7d", "1h30m")
 * or as a plain number of seconds. Internally every duration is a number of milliseconds.
 */
const UNIT_MS: Record<string, number> = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 };
const DURATION = /^(?:\d+(?:ms|s|m|h|d))+$/;
const PART = /(\d+)(ms|s|m|h|d)/g;

/** Parses "1h30m" / "45s" / 30 (seconds) into milliseconds; returns undefined when malformed. */
export function parseDurationMs(value: string | number): number | undefined {
  if (typeof value === 'number') {
    return Number.isFinite(value) && value >= 0 ? Math.round(value * 1000) : undefined;
  }
  const text = value.trim();
  if (/^\d+$/.test(text)) return Number(text) * 1000;
  if (!DURATION.test(text)) return undefined;
  let total = 0;
  for (const [, amount, unit] of text.matchAll(PART)) total += Number(amount) * UNIT_MS[unit as string]!;
  return total;
}
