/**
 * What every check adds to the metrics (oidc_authz_checks_total, oidc_authz_check_duration_seconds), kept in
 * plain maps and arrays and handed to Prometheus when it scrapes. prom-client builds a label hash string
 * per observation (~1 µs per check for a counter and a histogram, research/perf.md); here a check costs
 * three Map lookups of strings the code already holds and a bucket search.
 */
import type { MetricValueWithName } from 'prom-client';

/** Upper bounds of the check duration histogram, in seconds (from 50 µs: a cached check takes less than 100 µs). */
export const CHECK_DURATION_BUCKETS: readonly number[] = [0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5];

/** The counts and durations of one decision kind. */
interface KindTally {
  /** reason → rule → checks. */
  readonly reasons: Map<string, Map<string, number>>;
  /** Observations per bucket (not cumulative); the last slot is +Inf. */
  readonly buckets: Float64Array;
  sum: number;
  count: number;
}

export class CheckTally {
  private readonly kinds = new Map<string, KindTally>();

  /** One check: its decision kind, reason, rule, and how long it took. */
  record(decision: string, reason: string, rule: string, seconds: number): void {
    let kind = this.kinds.get(decision);
    if (kind === undefined) {
      kind = { reasons: new Map(), buckets: new Float64Array(CHECK_DURATION_BUCKETS.length + 1), sum: 0, count: 0 };
      this.kinds.set(decision, kind);
    }
    let rules = kind.reasons.get(reason);
    if (rules === undefined) {
      rules = new Map();
      kind.reasons.set(reason, rules);
    }
    rules.set(rule, (rules.get(rule) ?? 0) + 1);
    let bucket = 0;
    while (bucket < CHECK_DURATION_BUCKETS.length && seconds > CHECK_DURATION_BUCKETS[bucket]!) bucket++;
    kind.buckets[bucket]! += 1;
    kind.sum += seconds;
    kind.count += 1;
  }

  /** Checks so far by decision, reason and rule (monotonic). */
  *counts(): Generator<{ readonly decision: string; readonly reason: string; readonly rule: string; readonly total: number }> {
    for (const [decision, kind] of this.kinds) {
      for (const [reason, rules] of kind.reasons) for (const [rule, total] of rules) yield { decision, reason, rule, total };
    }
  }

  /** The duration histogram in Prometheus' shape: cumulative buckets, sum and count per decision. */
  durationValues(name: string): MetricValueWithName<string>[] {
    const values: MetricValueWithName<string>[] = [];
    for (const [decision, kind] of this.kinds) {
      let cumulative = 0;
      for (let i = 0; i <= CHECK_DURATION_BUCKETS.length; i++) {
        cumulative += kind.buckets[i]!;
        const le = i < CHECK_DURATION_BUCKETS.length ? CHECK_DURATION_BUCKETS[i]! : '+Inf';
        values.push({ metricName: `${name}_bucket`, labels: { le, decision }, value: cumulative });
      }
      values.push({ metricName: `${name}_sum`, labels: { decision }, value: kind.sum });
      values.push({ metricName: `${name}_count`, labels: { decision }, value: kind.count });
    }
    return values;
  }
}

/**
 * oidc_authz_check_duration_seconds as a prom-client registry entry that reads a CheckTally at scrape time
 * (a registry takes any object with a name and get()).
 */
export class TalliedHistogram {
  readonly type = 'histogram';
  readonly aggregator = 'sum';

  constructor(readonly name: string, readonly help: string, private readonly tally: CheckTally) {}

  get(): Promise<{ name: string; help: string; type: 'histogram'; aggregator: 'sum'; values: MetricValueWithName<string>[] }> {
    return Promise.resolve({ name: this.name, help: this.help, type: this.type, aggregator: this.aggregator, values: this.tally.durationValues(this.name) });
  }

  /** registry.resetMetrics(): what the tally counted stays (it is monotonic, as Prometheus expects). */
  reset(): void {}
}
