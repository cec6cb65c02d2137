/**
 * An open-loop load generator: requests leave on a fixed schedule (`rate` per second) whether or not
 * earlier ones were answered, and each latency is measured from the request's scheduled time, so a stall
 * shows as latency instead of as fewer requests (no coordinated omission). Every answer is classified
 * against what that caller should get in the phase the request was sent in and the phase it was
 * answered in (a fault that starts or ends while a request is in flight may decide it either way).
 */
import { Agent, request } from 'node:http';

export type Kind = 'bearer' | 'newkid' | 'cookie';

export interface Caller {
  readonly kind: Kind;
  /** What the upstream must receive as kubeflow-userid / kubeflow-groups on a 200. */
  readonly user: string;
  readonly groups: string;
  /** bearer: the token */
  readonly token?: string;
  /** cookie: the browser's cookie jar (name → value), updated from each answer's Set-Cookie */
  readonly jar?: Map<string, string>;
  /** cookie: answers that cleared our session cookie (a lost session) */
  cleared?: number;
}

export interface Phase {
  readonly scenario: string;
  readonly name: string;
  /** The statuses a caller of this kind may get in this phase. */
  allowed(kind: Kind): readonly number[];
}

export interface Wrong {
  readonly at: string;
  readonly scenario: string;
  readonly phase: string;
  readonly kind: Kind;
  readonly user: string;
  readonly status: number;
  readonly why: string;
}

/** One scenario's tally. */
export class Tally {
  sent = 0;
  answered = 0;
  readonly byStatus = new Map<number, number>();
  readonly byKindStatus = new Map<string, number>();
  readonly wrong: Wrong[] = [];
  wrongCount = 0;
  overTimeout = 0;
  /** The first answers slower than the provider timeout: when, what, how slow. */
  readonly slow: Array<{ at: string; kind: Kind; status: number; ms: number; phase: string }> = [];
  private latencies: number[] = [];
  record(kind: Kind, status: number, latencyMs: number, timeoutMs: number, phase = ''): void {
    this.answered++;
    this.byStatus.set(status, (this.byStatus.get(status) ?? 0) + 1);
    const key = `${kind} ${status}`;
    this.byKindStatus.set(key, (this.byKindStatus.get(key) ?? 0) + 1);
    this.latencies.push(latencyMs);
    if (latencyMs > timeoutMs) {
      this.overTimeout++;
      if (this.slow.length < 20) this.slow.push({ at: new Date().toISOString(), kind, status, ms: Math.round(latencyMs), phase });
    }
  }
  addWrong(wrong: Wrong): void {
    this.wrongCount++;
    if (this.wrong.length < 50) this.wrong.push(wrong);
  }
  percentile(p: number): number {
    if (this.latencies.length === 0) return NaN;
    const sorted = Float64Array.from(this.latencies).sort();
    return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
  }
}

export interface LoadOptions {
  readonly url: string;
  readonly rate: number;
  readonly pick: () => Caller;
  readonly phase: () => Phase;
  readonly tally: (scenario: string) => Tally;
  /** The provider timeout: answers slower than this are counted. */
  readonly timeoutMs: number;
  /** A request not answered within this is recorded with status 0. */
  readonly hardTimeoutMs: number;
}

export interface Load {
  readonly inFlight: number;
  readonly sent: number;
  /** Latencies (ms from schedule) and send times of 200s, for the steady-state windows. */
  readonly samples: Array<{ at: number; ms: number; status: number }>;
  keepSamples(on: boolean): void;
  /** Stops sending and resolves when every request sent has been answered or timed out. */
  stop(): Promise<void>;
}

const SESSION_COOKIE = /^oidc_authz(\.\d+)?$/;

export function startLoad(options: LoadOptions): Load {
  const agent = new Agent({ keepAlive: true, maxSockets: 1024 });
  const target = new URL(options.url);
  const t0 = performance.now();
  const interval = 1000 / options.rate;
  let sent = 0;
  let inFlight = 0;
  let stopping = false;
  let idle: (() => void) | null = null;
  let keep = false;
  const samples: Array<{ at: number; ms: number; status: number }> = [];
  let counter = 0;

  const finish = (caller: Caller, sentPhase: Phase, scheduled: number, status: number, why: string | null) => {
    const latency = performance.now() - scheduled;
    const answerPhase = options.phase();
    const tally = options.tally(sentPhase.scenario);
    tally.record(caller.kind, status, latency, options.timeoutMs, `${sentPhase.name}→${answerPhase.name}`);
    if (keep) samples.push({ at: Date.now(), ms: latency, status });
    const allowed = new Set([...sentPhase.allowed(caller.kind), ...answerPhase.allowed(caller.kind)]);
    let wrong: string | null = null;
    if (!allowed.has(status)) wrong = `status ${status} not in [${[...allowed].join(',')}]${why ? `: ${why}` : ''}`;
    else if (status === 200 && why !== null) wrong = why;
    if (wrong !== null) {
      tally.addWrong({ at: new Date().toISOString(), scenario: sentPhase.scenario, phase: `${sentPhase.name}→${answerPhase.name}`, kind: caller.kind, user: caller.user, status, why: wrong });
    }
    inFlight--;
    if (stopping && inFlight === 0) idle?.();
  };

  const send = (scheduled: number) => {
    const caller = options.pick();
    const phase = options.phase();
    options.tally(phase.scenario).sent++;
    sent++;
    inFlight++;
    const headers: Record<string, string> = { accept: 'application/json', 'x-requested-with': 'XMLHttpRequest' };
    if (caller.token !== undefined) headers.authorization = `Bearer ${caller.token}`;
    if (caller.jar !== undefined) headers.cookie = [...caller.jar].map(([n, v]) => `${n}=${v}`).join('; ');
    let done = false;
    const req = request({
      host: target.hostname,
      port: target.port,
      path: `/soak/${caller.kind}/${++counter}`,
      method: 'GET',
      headers,
      agent,
    }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        const status = res.statusCode ?? 0;
        if (caller.jar !== undefined) {
          for (const line of res.headers['set-cookie'] ?? []) {
            const [pair] = line.split(';');
            const eq = pair!.indexOf('=');
            const name = pair!.slice(0, eq).trim();
            if (!SESSION_COOKIE.test(name)) continue;
            if (/max-age=0/i.test(line) || pair!.slice(eq + 1) === '') {
              caller.jar.delete(name);
              caller.cleared = (caller.cleared ?? 0) + 1;
            } else {
              caller.jar.set(name, pair!.slice(eq + 1));
            }
          }
        }
        const body = Buffer.concat(chunks).toString('utf8');
        const why = status === 200 ? checkEcho(caller, body) : reasonOf(body, res.headers['www-authenticate']);
        finish(caller, phase, scheduled, status, why);
      });
      res.on('error', () => undefined);
    });
    const timer = setTimeout(() => {
      if (done) return;
      done = true;
      req.destroy();
      finish(caller, phase, scheduled, 0, `no answer within ${options.hardTimeoutMs} ms`);
    }, options.hardTimeoutMs);
    req.on('error', (error) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      finish(caller, phase, scheduled, 0, `client error ${(error as NodeJS.ErrnoException).code ?? error.message}`);
    });
    req.end();
  };

  const tick = setInterval(() => {
    if (stopping) return;
    const now = performance.now();
    const due = Math.floor((now - t0) / interval);
    while (sent < due) send(t0 + sent * interval);
  }, 2);

  return {
    get inFlight() {
      return inFlight;
    },
    get sent() {
      return sent;
    },
    samples,
    keepSamples(on) {
      keep = on;
    },
    async stop() {
      stopping = true;
      clearInterval(tick);
      if (inFlight > 0) await new Promise<void>((resolve) => (idle = resolve));
      agent.destroy();
    },
  };
}

/** What a denial said about itself (our JSON body's reason, or the challenge). */
function reasonOf(body: string, challenge: string | undefined): string | null {
  try {
    const json = JSON.parse(body) as { reason?: unknown; error?: unknown };
    if (typeof json.reason === 'string') return json.reason;
  } catch {
    // Envoy's own answers (statusOnError) have no body.
  }
  return challenge ?? (body === '' ? null : body.slice(0, 80));
}

/** A 200's body is the echo app's view of the request: the identity it received must be this caller's. */
function checkEcho(caller: Caller, body: string): string | null {
  let seen: { headers?: Record<string, unknown> };
  try {
    seen = JSON.parse(body) as typeof seen;
  } catch {
    return 'a 200 that is not the echo app';
  }
  const headers = seen.headers ?? {};
  if (headers['kubeflow-userid'] !== caller.user) return `upstream saw kubeflow-userid ${JSON.stringify(headers['kubeflow-userid'])}`;
  if (headers['kubeflow-groups'] !== caller.groups) return `upstream saw kubeflow-groups ${JSON.stringify(headers['kubeflow-groups'])}, want ${JSON.stringify(caller.groups)}`;
  const cookie = typeof headers.cookie === 'string' ? headers.cookie : '';
  if (/(^|[;,]\s*)oidc_authz/.test(cookie)) return 'the upstream received our session cookie';
  if (headers.authorization !== undefined && caller.kind === 'cookie') return 'a cookie session reached the upstream with an authorization header';
  return null;
}
