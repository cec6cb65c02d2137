/** The soak's tables: printed and written to bench/SOAK.md with the method. */
import { writeFileSync } from 'node:fs';
import type { Tally } from './load.js';

export interface Report {
  readonly settings: Record<string, number | string>;
  readonly tallies: ReadonlyMap<string, Tally>;
  readonly windows: ReadonlyMap<string, { from: number; to: number; notes: string[] }>;
  readonly steady: {
    readonly samples: ReadonlyArray<{ at: number; ms: number; status: number }>;
    readonly metrics: ReadonlyArray<{ at: number; port: number; sample: Record<string, number> }>;
    readonly processes: Record<string, string>;
  };
  readonly errorLines: number;
}

const ms = (v: number) => (Number.isNaN(v) ? '–' : v >= 100 ? v.toFixed(0) : v.toFixed(1));
const mb = (v: number) => (v / 1024 / 1024).toFixed(1);

function percentile(values: number[], p: number): number {
  if (values.length === 0) return NaN;
  const sorted = Float64Array.from(values).sort();
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
}

const METHOD = `## Method

\`make soak\` (soak/run.ts) starts, on 127.0.0.1 only: a real Envoy 1.40 configured as the ingress gateway by
\`src/envoy-config.ts\` (the ext_authz filter Istio builds from \`extAuthzProvider()\`, 3 s timeout,
\`statusOnError: 503\`), whose ext_authz cluster takes its endpoints from a file (EDS) as a gateway gets a
Service's endpoints from istiod — no active health checks, no outlier detection, as without a DestinationRule;
**two** oidc-authz processes (\`node dist/cli.js serve\`, real config files, one cookie-secrets file); the echo
app (\`demo/echo.ts\`) as the upstream; Dex v2.45.1 (in-memory storage, static users) for logins and refreshes;
and a local JWKS issuer (\`test/support/issuer.ts\`, RS256) for bearer tokens. Dex and the JWKS are reached only
through a fault proxy (soak/fault-proxy.ts: a TCP proxy that can refuse connections — listener closed, open
ones reset — or black-hole them — accepted, never answered).

Load: an open-loop generator (soak/load.ts) sends at a fixed rate whatever the answers do, and measures each
latency from the request's scheduled send time (a stall shows as latency, not as fewer requests). 60 % of
requests carry a bearer token of one of several thousand distinct users (tokens minted by the local issuer),
40 % a session cookie of one of the users who logged in for real before the load started (\`/oauth2/start\` →
Dex's login form → \`/oauth2/callback\`, through Envoy, by HTTP; no sessions are forged). Sessions revalidate at
the IdP every 30 s (\`session.revalidateAfter\`, its minimum), so refreshes run all the time; the generator keeps
each session's cookie jar like a browser (a refreshed cookie replaces the old one). In scenario 3, 5 % of
requests carry a token signed with a key the JWKS does not publish yet.

Every answer is classified: its status must be one the request's class may get in the phase it was sent or
answered in (a fault starting or ending mid-request may decide it either way), and a 200 must have reached the
echo app with exactly that user's \`kubeflow-userid\` and \`kubeflow-groups\`, without our session cookie. Anything
else is a **wrong answer**. Latencies are through Envoy (check + upstream).

Rolling restart (scenarios 1, 2): SIGTERM a process; its endpoint leaves Envoy's cluster \`SOAK_EDS_LAG_MS\`
(default 1 s) later, as Kubernetes' endpoints controller and istiod's push take a moment after a pod starts
terminating; once it has exited a new process starts on the same port and joins the cluster when \`/readyz\`
answers 200; 5 s later the other process follows.

Settings that shape the figures: Dex's refresh-token reuse interval is 10 min (README: with several replicas set
one; it also covers a refresh whose answer an outage cut after Dex had rotated the token); \`jwks.cooldown\` 10 s
and \`jwks.timeout\` / \`oidc.timeout\` 5 s (longer than the gateway's 3 s: a check waiting on a black-holed fetch
gets Envoy's 503 at 3 s). Everything shares 2 cores with other work on this machine, so absolute latencies are
noisy; the wrong-answer counts are not.

## What the soak found (fixed, each with a regression test)

- **Rolling restart**: the service closed its listener at SIGTERM, but the gateway keeps sending to a
  terminating pod until its endpoint update arrives; every check in between was refused and answered 503 by
  Envoy (217 of 3,537 requests in a short run before the fix, 1 s endpoint lag). Now the listener stays open
  while checks keep arriving (answers close their connections) and closes 1 s after the last one, within a
  quarter of \`shutdownTimeout\` (src/http/server.ts; test/integration/drain.test.ts).
- **JWKS outage with a new key**: only the first token with the new \`kid\` got 503; the others within
  \`jwks.cooldown\` of that failed fetch got 401 \`unknown_key\` (and the token cache remembered it). Now an
  unknown \`kid\` within the cooldown of a failed fetch is "keys unavailable", 503 (src/authn/jwks.ts;
  test/integration/jwks-outage.test.ts).
`;

export function writeReport(report: Report, file: string): number {
  const lines: string[] = [];
  const s = report.settings;
  lines.push('# Soak: faults and operations under load', '');
  lines.push(`Run ${s.startedAt}, ${s.durationS} s, ${s.cores} cores shared by everything. Load ${s.RATE} req/s open loop; ${s.BEARER_USERS} bearer users, ${s.LOGINS} logged-in cookie sessions; outages ${s.OUTAGE_S} s; SOAK_S=${s.SOAK_S}. Reproduce: \`make soak\` (\`SOAK_S=3600 make soak\` for the hour).`, '');
  lines.push('## Scenarios', '');
  lines.push('| scenario | requests sent | answers by status | wrong answers | over 3 s | p50 ms | p99 ms |', '|---|---:|---|---:|---:|---:|---:|');
  let wrong = 0;
  const order = [...report.tallies.keys()].filter((k) => /^\d/.test(k)).sort();
  for (const name of [...order, ...[...report.tallies.keys()].filter((k) => !/^\d/.test(k))]) {
    const t = report.tallies.get(name)!;
    wrong += t.wrongCount;
    const statuses = [...t.byStatus].sort((a, b) => a[0] - b[0]).map(([st, n]) => `${st}: ${n}`).join(', ');
    lines.push(`| ${name} | ${t.sent} | ${statuses} | **${t.wrongCount}** | ${t.overTimeout} | ${ms(t.percentile(50))} | ${ms(t.percentile(99))} |`);
  }
  lines.push('');
  lines.push('Answers by class of request:', '');
  lines.push('| scenario | class: status = count |', '|---|---|');
  for (const name of order) {
    const t = report.tallies.get(name)!;
    lines.push(`| ${name} | ${[...t.byKindStatus].sort().map(([k, n]) => `${k} = ${n}`).join('; ')} |`);
  }
  lines.push('');
  for (const [name, w] of report.windows) {
    if (w.notes.length === 0) continue;
    lines.push(`**${name}**`, '', ...w.notes.map((n) => `- ${n}`), '');
  }
  if (wrong > 0) {
    lines.push('## Wrong answers (first 50 per scenario)', '', '| at | scenario | phase | class | user | status | why |', '|---|---|---|---|---|---|---|');
    for (const t of report.tallies.values()) for (const w of t.wrong) lines.push(`| ${w.at} | ${w.scenario} | ${w.phase} | ${w.kind} | ${w.user} | ${w.status} | ${w.why} |`);
    lines.push('');
  }

  const slow = [...report.tallies].filter(([, t]) => t.slow.length > 0);
  if (slow.length > 0) {
    lines.push('## Answers slower than the provider timeout (first 20 per scenario)', '', '| at | scenario | phase | class | status | ms |', '|---|---|---|---|---|---:|');
    for (const [name, t] of slow) for (const x of t.slow) lines.push(`| ${x.at} | ${name} | ${x.phase} | ${x.kind} | ${x.status} | ${x.ms} |`);
    lines.push('');
  }

  // Steady state: first tenth against last tenth.
  const steady = report.windows.get('5 steady load');
  if (steady !== undefined && steady.to > steady.from) {
    const span = steady.to - steady.from;
    const tenth = span / 10;
    const first = (at: number) => at <= steady.from + tenth;
    const last = (at: number) => at >= steady.to - tenth;
    lines.push(`## Steady load: first against last tenth (${(tenth / 1000).toFixed(0)} s each of ${(span / 1000).toFixed(0)} s)`, '');
    const lat = (pick: (at: number) => boolean) => report.steady.samples.filter((x) => pick(x.at)).map((x) => x.ms);
    const a = lat(first);
    const b = lat(last);
    lines.push('| measure | first tenth | last tenth |', '|---|---:|---:|');
    lines.push(`| requests answered | ${a.length} | ${b.length} |`);
    lines.push(`| latency p50 ms | ${ms(percentile(a, 50))} | ${ms(percentile(b, 50))} |`);
    lines.push(`| latency p99 ms | ${ms(percentile(a, 99))} | ${ms(percentile(b, 99))} |`);
    lines.push(`| latency max ms | ${ms(percentile(a, 100))} | ${ms(percentile(b, 100))} |`);
    for (const [port, name] of Object.entries(report.steady.processes)) {
      const of = (pick: (at: number) => boolean) => report.steady.metrics.filter((m) => String(m.port) === port && pick(m.at)).map((m) => m.sample);
      const fa = of(first);
      const fb = of(last);
      const avg = (xs: Array<Record<string, number>>, key: string) => xs.reduce((acc, x) => acc + (x[key] ?? NaN), 0) / xs.length;
      const max = (xs: Array<Record<string, number>>, key: string) => Math.max(...xs.map((x) => x[key] ?? NaN));
      const row = (label: string, f: (xs: Array<Record<string, number>>) => string) => lines.push(`| ${name}: ${label} | ${f(fa)} | ${f(fb)} |`);
      row('RSS MB (mean)', (xs) => mb(avg(xs, 'oidc_authz_process_resident_memory_bytes')));
      row('heap used MB (mean)', (xs) => mb(avg(xs, 'oidc_authz_nodejs_heap_size_used_bytes')));
      row('event-loop delay p99 ms (mean / max)', (xs) => `${ms(avg(xs, 'oidc_authz_nodejs_eventloop_lag_p99_seconds') * 1000)} / ${ms(max(xs, 'oidc_authz_nodejs_eventloop_lag_p99_seconds') * 1000)}`);
      row('event-loop delay mean ms', (xs) => ms(avg(xs, 'oidc_authz_nodejs_eventloop_lag_mean_seconds') * 1000));
      row('open fds (max)', (xs) => String(max(xs, 'oidc_authz_process_open_fds')));
      row('active handles (max)', (xs) => String(max(xs, 'oidc_authz_nodejs_active_handles_total')));
      row('active resources (max)', (xs) => String(max(xs, 'oidc_authz_nodejs_active_resources_total')));
      row('session cache entries (max)', (xs) => String(max(xs, 'oidc_authz_session_cache_entries')));
      row('token cache entries (max)', (xs) => String(max(xs, 'oidc_authz_token_cache_entries')));
    }
    lines.push('', 'Values per process are the means (or maxima) of the /metrics scrapes (every 5 s) in each window; the event-loop delay is prom-client\'s (monitorEventLoopDelay, 10 ms resolution). A and B are the processes started by the second roll of scenario 2.', '');
  }
  lines.push(`Error log lines written by the service processes: ${report.errorLines}.`, '');
  const table = lines.join('\n');
  console.log(`\n${table}`);
  writeFileSync(file, `${table}\n${METHOD}`);
  return wrong;
}
