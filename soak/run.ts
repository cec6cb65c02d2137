/**
 * `make soak`: faults and operations under a fixed-rate load, with real parts on 127.0.0.1 only.
 *
 *   load generator ──► Envoy (gateway config of src/envoy-config.ts; ext_authz cluster from EDS)
 *                        ├─ ext_authz ──► oidc-authz A, oidc-authz B   (node dist/cli.js serve)
 *                        └─ upstream  ──► echo app (reports the identity headers it received)
 *   oidc-authz ──► fault proxy ──► Dex            (logins, refreshes)
 *   oidc-authz ──► fault proxy ──► local issuer's JWKS (bearer tokens)
 *
 * Scenarios: 1 rolling restart, 2 cookie-key rotation, 3 JWKS unreachable, 4 IdP unreachable during
 * refreshes, 5 steady load for SOAK_S seconds. Each reports requests sent, answers by status, wrong
 * answers (must be zero) and p50/p99; the tables go to bench/SOAK.md.
 */
import { mkdtempSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { startEcho } from '../demo/echo.js';
import { extAuthzProvider } from '../src/envoy-contract.js';
import { AUTHZ_ROUTES } from '../src/envoy-config.js';
import { parseConfig } from '../src/config/load.js';
import { createSealer } from '../src/session/seal.js';
import { secretsFromLines } from '../src/session/secrets.js';
import { createSigningKey, startIssuer, type SigningKey } from '../test/support/issuer.js';
import { freePort } from '../test/support/service.js';
import { startFaultProxy, type FaultProxy } from './fault-proxy.js';
import { startLoad, Tally, type Caller, type Kind, type Load, type Phase } from './load.js';
import { killChildren, startServiceProcess, startSoakDex, startSoakEnvoy, type ServiceProcess, type SoakEnvoy } from './stack.js';
import { writeReport, type Report } from './report.js';

const env = (name: string, fallback: number) => {
  const value = process.env[name];
  if (value === undefined || value === '') return fallback;
  const n = Number(value);
  if (!Number.isFinite(n) || n < 0) throw new Error(`${name} must be a number`);
  return n;
};

const SOAK_S = env('SOAK_S', 300);
/**
 * 100/s by default: this machine's 2 cores are shared with other work, and at 200/s a cold start or a process
 * starting beside the load pushed checks past Envoy's 3 s timeout (503s that are the machine's, not the service's).
 */
const RATE = env('SOAK_RATE', 100);
const BEARER_USERS = env('SOAK_BEARER_USERS', 3000);
const LOGINS = env('SOAK_LOGINS', 300);
const OUTAGE_S = env('SOAK_OUTAGE_S', SOAK_S >= 3600 ? 60 : 20);
/** How long after SIGTERM the gateway still has the endpoint: the endpoints controller and istiod's push (Kubernetes: ~0.1–2 s). */
const EDS_LAG_MS = env('SOAK_EDS_LAG_MS', 1000);
const HARD_TIMEOUT_S = env('SOAK_TIMEOUT_S', SOAK_S + 15 * OUTAGE_S + 600);
const PROVIDER_TIMEOUT_MS = 3000;
const REVALIDATE_S = 30;
const JWKS_COOLDOWN_S = 10;
const JWKS_TIMEOUT_S = 5;
const OIDC_TIMEOUT_S = 5;
const CLIENT = { id: 'kubeflow-oidc-authservice', secret: 'soak-client-secret' };
const SECRET_OLD = 'soak-cookie-secret-one-0123456789abcdefghijklmnop';
const SECRET_NEW = 'soak-cookie-secret-two-0123456789abcdefghijklmnop';

/** For development: run only these scenarios (e.g. SOAK_ONLY=1,3); the default runs all five. */
const ONLY = new Set((process.env.SOAK_ONLY ?? '1,2,3,4,5').split(',').map((x) => x.trim()));
const started = Date.now();
const log = (message: string) => console.log(`[soak ${((Date.now() - started) / 1000).toFixed(1).padStart(6)}s] ${message}`);
const wait = (ms: number) => new Promise((r) => setTimeout(r, ms));

const cleanups: Array<() => Promise<void> | void> = [];
let workDir = '';
const cleanupSync = () => {
  killChildren();
  if (workDir !== '') rmSync(workDir, { recursive: true, force: true });
};
process.on('exit', cleanupSync);
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.on(signal, () => {
    console.error(`\nsoak: ${signal}, stopping every process it started`);
    cleanupSync();
    process.exit(130);
  });
}
const hardTimeout = setTimeout(() => {
  console.error(`soak: hard timeout of ${HARD_TIMEOUT_S} s reached, stopping`);
  cleanupSync();
  process.exit(2);
}, HARD_TIMEOUT_S * 1000);
hardTimeout.unref();

// ---------------------------------------------------------------- phases

const ok: readonly number[] = [200];
const phaseOf = (scenario: string, name: string, allowed: Partial<Record<Kind, readonly number[]>> = {}): Phase => ({
  scenario,
  name,
  allowed: (kind) => allowed[kind] ?? ok,
});
let phase: Phase = phaseOf('setup', 'warm-up');
const tallies = new Map<string, Tally>();
const tally = (scenario: string) => {
  let t = tallies.get(scenario);
  if (t === undefined) tallies.set(scenario, (t = new Tally()));
  return t;
};
const scenarioWindows = new Map<string, { from: number; to: number; notes: string[] }>();
const notes = (scenario: string) => scenarioWindows.get(scenario)!.notes;
const beginScenario = (scenario: string, first: string) => {
  scenarioWindows.set(scenario, { from: Date.now(), to: 0, notes: [] });
  phase = phaseOf(scenario, first);
  log(`== ${scenario}`);
};
const endScenario = (scenario: string) => {
  scenarioWindows.get(scenario)!.to = Date.now();
  phase = phaseOf('between', 'idle');
};

// ---------------------------------------------------------------- metrics of the service processes

type Sample = Record<string, number>;
async function scrape(metricsPort: number): Promise<Sample> {
  let text: string;
  try {
    text = await fetch(`http://127.0.0.1:${metricsPort}/metrics`, { signal: AbortSignal.timeout(10_000) }).then((r) => r.text());
  } catch (error) {
    log(`metrics of :${metricsPort} unreadable: ${(error as Error).message}`);
    return {};
  }
  const out: Sample = {};
  for (const line of text.split('\n')) {
    if (line.startsWith('#') || line === '') continue;
    const space = line.lastIndexOf(' ');
    out[line.slice(0, space)] = Number(line.slice(space + 1));
  }
  return out;
}
const sumOf = (sample: Sample, prefix: string) => Object.entries(sample).filter(([k]) => k.startsWith(prefix)).reduce((s, [, v]) => s + v, 0);

// ---------------------------------------------------------------- logins through the gateway

/** A browser's login, without a browser: /oauth2/start → Dex's login form → callback, all by HTTP. */
async function login(gateway: string, email: string, password: string): Promise<Map<string, string>> {
  const cookiesOf = (response: Response) => response.headers.getSetCookie().map((line) => line.split(';')[0]!);
  const start = await fetch(`${gateway}/oauth2/start?rd=${encodeURIComponent('/soak/after-login')}`, { redirect: 'manual', headers: { accept: 'text/html' } });
  if (start.status !== 302) throw new Error(`/oauth2/start answered ${start.status}`);
  const transaction = cookiesOf(start).join('; ');
  let url = new URL(start.headers.get('location')!);
  // Dex: /auth → /auth/local (one connector) → the login form.
  for (let hop = 0; hop < 5 && !url.pathname.endsWith('/auth/local/login'); hop++) {
    const r = await fetch(url, { redirect: 'manual' });
    await r.body?.cancel();
    const next = r.headers.get('location');
    if (next === null) throw new Error(`Dex ${url.pathname} answered ${r.status} without a redirect`);
    url = new URL(next, url);
  }
  const posted = await fetch(url, { method: 'POST', redirect: 'manual', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams({ login: email, password }) });
  await posted.body?.cancel();
  let next = posted.headers.get('location');
  for (let hop = 0; hop < 5 && next !== null && !next.startsWith(gateway); hop++) {
    const r = await fetch(new URL(next, url), { redirect: 'manual' });
    await r.body?.cancel();
    next = r.headers.get('location');
  }
  if (next === null) throw new Error(`Dex did not send ${email} back to the callback`);
  const callback = await fetch(next, { redirect: 'manual', headers: { cookie: transaction, accept: 'text/html' } });
  await callback.body?.cancel();
  if (callback.status !== 302) throw new Error(`/oauth2/callback answered ${callback.status}`);
  const jar = new Map<string, string>();
  for (const pair of cookiesOf(callback)) {
    const eq = pair.indexOf('=');
    const name = pair.slice(0, eq);
    if (/^oidc_authz(\.\d+)?$/.test(name) && pair.length > eq + 1) jar.set(name, pair.slice(eq + 1));
  }
  if (jar.size === 0) throw new Error(`no session cookie after ${email}'s login`);
  return jar;
}

async function inBatches<T>(count: number, parallel: number, each: (i: number) => Promise<T>): Promise<T[]> {
  const out: T[] = new Array<T>(count);
  let next = 0;
  await Promise.all(Array.from({ length: parallel }, async () => {
    while (next < count) {
      const i = next++;
      out[i] = await each(i);
    }
  }));
  return out;
}

// ---------------------------------------------------------------- main

async function main(): Promise<void> {
  workDir = mkdtempSync(join(tmpdir(), 'oidc-authz-soak-'));
  log(`SOAK_S=${SOAK_S} rate=${RATE}/s bearer users=${BEARER_USERS} logins=${LOGINS} outage=${OUTAGE_S}s eds lag=${EDS_LAG_MS}ms hard timeout=${HARD_TIMEOUT_S}s, ${cpus().length} cores`);

  const [envoyPort, adminPort, portA, metricsA, portB, metricsB, dexPort] = await Promise.all(Array.from({ length: 7 }, () => freePort()));
  const gateway = `http://127.0.0.1:${envoyPort!}`;

  // The upstream.
  const echo = await startEcho();
  cleanups.push(() => echo.stop());
  const trimEcho = setInterval(() => (echo.received.length = 0), 1000);
  cleanups.push(() => clearInterval(trimEcho));

  // Bearer tokens: a local issuer whose JWKS is reached through a fault proxy.
  const k1 = await createSigningKey('RS256', 'soak-key-1');
  const k2: SigningKey = await createSigningKey('RS256', 'soak-key-2');
  const issuer = await startIssuer([k1]);
  cleanups.push(() => issuer.stop());
  const jwksProxy: FaultProxy = await startFaultProxy({ host: '127.0.0.1', port: Number(new URL(issuer.issuer).port) });
  cleanups.push(() => jwksProxy.close());

  // Dex, reached through a fault proxy by everyone (its issuer URL is the proxy's).
  const dexProxy = await startFaultProxy({ host: '127.0.0.1', port: dexPort! });
  cleanups.push(() => dexProxy.close());
  const dexIssuer = `http://127.0.0.1:${dexProxy.port}/dex`;
  const loginUsers = Array.from({ length: LOGINS }, (_, i) => ({ username: `login${i}`, email: `login${i}@soak.test`, password: 'alice-pw', groups: [`team-${i % 7}`, 'browser'] }));
  const dex = await startSoakDex(workDir, dexIssuer, dexPort!, {
    users: loginUsers,
    clients: [{ id: CLIENT.id, secret: CLIENT.secret, redirectURIs: [`${gateway}/oauth2/callback`] }],
    // Several replicas refresh one session now and then (README: Dex guide §4); the window also outlasts an
    // outage that cut a refresh's answer after Dex had rotated the token.
    refreshTokenReuseInterval: '10m',
  });
  cleanups.push(() => dex.stop());

  // oidc-authz: two processes, one config each (ports), one secrets file.
  const secretsFile = join(workDir, 'cookie-secrets');
  const writeSecrets = (lines: string[]) => {
    writeFileSync(`${secretsFile}.new`, `${lines.join('\n')}\n`);
    renameSync(`${secretsFile}.new`, secretsFile);
  };
  writeSecrets([SECRET_OLD]);
  writeFileSync(join(workDir, 'client-secret'), `${CLIENT.secret}\n`);
  const configFor = (port: number, metricsPort: number) => ({
    listen: { host: '127.0.0.1', port, metricsPort, shutdownTimeout: '20s' },
    checkPathPrefix: '/authz',
    trustForwardedProto: true,
    publicUrl: gateway,
    oidc: { issuer: dexIssuer, clientId: CLIENT.id, clientSecretFile: join(workDir, 'client-secret'), scopes: ['openid', 'email', 'profile', 'groups', 'offline_access'], timeout: `${OIDC_TIMEOUT_S}s` },
    session: { secretsFile, secure: false, maxAge: '12h', revalidateAfter: `${REVALIDATE_S}s` },
    identity: { userIdClaim: 'email', groupsClaim: 'groups' },
    issuers: [{ issuer: issuer.issuer, audiences: ['soak-api'], userIdPrefix: 'api:', jwksUri: `http://127.0.0.1:${jwksProxy.port}/issuer/jwks` }],
    jwks: { cooldown: `${JWKS_COOLDOWN_S}s`, timeout: `${JWKS_TIMEOUT_S}s` },
    defaultRule: 'deny',
    rules: [{ name: 'authenticated', paths: ['/**'], allow: 'authenticated' }],
    log: { level: 'info' },
  });
  const configFiles = new Map<number, string>();
  for (const [port, metricsPort] of [[portA!, metricsA!], [portB!, metricsB!]] as const) {
    const dir = mkdtempSync(join(workDir, `svc-${port}-`));
    const file = join(dir, 'config.yaml');
    writeFileSync(file, JSON.stringify(configFor(port, metricsPort), null, 2));
    configFiles.set(port, file);
  }
  const parsed = parseConfig(configFor(portA!, metricsA!));
  const provider = extAuthzProvider(parsed, { service: '127.0.0.1', port: portA!, timeout: `${PROVIDER_TIMEOUT_MS / 1000}s` });
  const processes = new Map<number, ServiceProcess>();
  const startProcess = async (port: number, metricsPort: number) => {
    const p = await startServiceProcess(port === portA ? 'A' : 'B', configFiles.get(port)!, port, metricsPort);
    processes.set(port, p);
    return p;
  };
  await Promise.all([startProcess(portA!, metricsA!), startProcess(portB!, metricsB!)]);
  log(`oidc-authz A on ${portA} (metrics ${metricsA}), B on ${portB} (metrics ${metricsB}); Dex ${dexIssuer} → :${dexPort}`);

  const envoy: SoakEnvoy = await startSoakEnvoy(workDir, {
    listenPort: envoyPort!,
    adminPort: adminPort!,
    authz: { host: '127.0.0.1', port: portA! },
    authzPorts: [portA!, portB!],
    upstream: { host: '127.0.0.1', port: echo.port },
    provider,
    authzRoutes: AUTHZ_ROUTES,
  });
  cleanups.push(() => envoy.stop());
  log(`Envoy on ${gateway}, ext_authz endpoints ${(await envoy.endpoints()).join(', ')}`);

  // Callers.
  const expiry = Math.floor(Date.now() / 1000) + HARD_TIMEOUT_S + 3600;
  const bearerCallers: Caller[] = await inBatches(BEARER_USERS, 4, async (i) => {
    const email = `api${i}@soak.test`;
    const groups = [`team-${i % 5}`, 'api'];
    const token = await issuer.sign({ sub: `api-${i}`, email, email_verified: true, groups, aud: 'soak-api', exp: expiry });
    return { kind: 'bearer' as const, user: `api:${email}`, groups: groups.join(','), token };
  });
  const newKidCallers: Caller[] = await inBatches(200, 4, async (i) => {
    const email = `newkid${i}@soak.test`;
    const token = await issuer.sign({ sub: `newkid-${i}`, email, email_verified: true, groups: ['rotated'], aud: 'soak-api', exp: expiry }, { key: k2 });
    return { kind: 'newkid' as const, user: `api:${email}`, groups: 'rotated', token };
  });
  log(`${bearerCallers.length} bearer tokens (kid ${k1.kid}) and ${newKidCallers.length} with kid ${k2.kid} (not published yet)`);
  const loginStarted = Date.now();
  const cookieCallers: Caller[] = await inBatches(LOGINS, 6, async (i) => {
    const user = loginUsers[i]!;
    const jar = await login(gateway, user.email, user.password);
    return { kind: 'cookie' as const, user: user.email, groups: user.groups.join(','), jar };
  });
  log(`${cookieCallers.length} real logins through Envoy and Dex in ${((Date.now() - loginStarted) / 1000).toFixed(1)} s`);

  let sendNewKid = false;
  let pick = 0;
  const picker = (): Caller => {
    pick++;
    if (sendNewKid && pick % 20 === 0) return newKidCallers[Math.floor(Math.random() * newKidCallers.length)]!;
    if (pick % 5 < 2) return cookieCallers[Math.floor(Math.random() * cookieCallers.length)]!;
    return bearerCallers[Math.floor(Math.random() * bearerCallers.length)]!;
  };
  const load: Load = startLoad({ url: gateway, rate: RATE, pick: picker, phase: () => phase, tally, timeoutMs: PROVIDER_TIMEOUT_MS, hardTimeoutMs: 15_000 });
  cleanups.push(() => load.stop());
  await wait(5000);

  const ports = [portA!, portB!];
  const metricsPortOf = (port: number) => (port === portA ? metricsA! : metricsB!);
  const totals = async (prefix: string) => {
    let sum = 0;
    for (const port of ports) sum += sumOf(await scrape(metricsPortOf(port)), prefix);
    return sum;
  };

  /** SIGTERM one process; the endpoint leaves the gateway EDS_LAG_MS later; a new process on its port; it joins once ready. */
  const roll = async (scenario: string) => {
    for (const port of ports) {
      const old = processes.get(port)!;
      const t0 = Date.now();
      const envoyBefore = await envoy.stats('cluster.oidc-authz.');
      old.terminate();
      const others = ports.filter((p) => p !== port);
      const removal = wait(EDS_LAG_MS).then(() => envoy.setEndpoints(others));
      const exit = await old.exited;
      await removal;
      const fresh = await startProcess(port, metricsPortOf(port));
      await envoy.setEndpoints(ports);
      const stopped = old.tail.last('stopped accepting');
      notes(scenario).push(`${old.name} (:${port}): SIGTERM → kept accepting ${String(stopped?.afterMs ?? '?')} ms while checks still came → exit ${exit.code ?? exit.signal} after ${exit.atMs - t0} ms; endpoint removed from Envoy ${EDS_LAG_MS} ms after SIGTERM; new process ready and back in the cluster after ${Date.now() - t0} ms`);
      await wait(5000);
      const envoyAfter = await envoy.stats('cluster.oidc-authz.');
      const delta = (name: string) => (envoyAfter[`cluster.oidc-authz.${name}`] ?? 0) - (envoyBefore[`cluster.oidc-authz.${name}`] ?? 0);
      notes(scenario).push(`  Envoy's ext_authz cluster meanwhile: connect failures ${delta('upstream_cx_connect_fail')}, request timeouts ${delta('upstream_rq_timeout')}, resets with a request in flight ${delta('upstream_cx_destroy_remote_with_active_rq')}, 5xx ${delta('upstream_rq_5xx')}`);
      log(notes(scenario).slice(-2).join('\n'));
      void fresh;
    }
  };

  // ---------------------------------------------------------- 1. rolling restart
  if (ONLY.has('1')) {
    beginScenario('1 rolling restart', 'roll');
    await roll('1 rolling restart');
    endScenario('1 rolling restart');
  }

  // ---------------------------------------------------------- 2. cookie-key rotation
  if (ONLY.has('2')) {
    const s = '2 cookie-key rotation';
    beginScenario(s, 'new first line');
    writeSecrets([SECRET_NEW, SECRET_OLD]);
    notes(s).push('secrets file: new secret added as the first line (old one second); both processes rolled');
    await roll(s);
    phase = phaseOf(s, 'sessions move');
    const onlyNew = createSealer(secretsFromLines([SECRET_NEW]));
    const moved = async () => {
      let n = 0;
      for (const caller of cookieCallers) {
        const value = caller.jar!.get('oidc_authz');
        if (value !== undefined && (await onlyNew.unseal(value, 12 * 3600)) !== null) n++;
      }
      return n;
    };
    const t0 = Date.now();
    let count = await moved();
    while (count < cookieCallers.length && Date.now() - t0 < (REVALIDATE_S * 3 + 30) * 1000) {
      await wait(1000);
      count = await moved();
    }
    notes(s).push(`${count} of ${cookieCallers.length} sessions re-sealed with the new secret ${((Date.now() - t0) / 1000).toFixed(0)} s after the roll (each at its next refresh; revalidateAfter ${REVALIDATE_S}s)`);
    log(notes(s).at(-1)!);
    phase = phaseOf(s, 'old line dropped');
    writeSecrets([SECRET_NEW]);
    notes(s).push('secrets file: old line dropped; both processes rolled again');
    await roll(s);
    await wait(5000);
    endScenario(s);
  }

  // ---------------------------------------------------------- 3. JWKS unreachable
  if (ONLY.has('3')) {
    const s = '3 JWKS unreachable';
    beginScenario(s, 'before');
    const fetchErrors0 = await totals('oidc_authz_jwks_fetches_total{issuer="' + issuer.issuer + '",result="error"');
    await wait(5000);
    // The issuer rotates a new key in while nobody can reach it; tokens signed with it start arriving.
    issuer.keys = [k1, k2];
    phase = phaseOf(s, 'refused', { newkid: [503] });
    await jwksProxy.set('refuse');
    sendNewKid = true;
    await wait((OUTAGE_S / 2) * 1000);
    phase = phaseOf(s, 'black-holed', { newkid: [503] });
    await jwksProxy.set('blackhole');
    await wait((OUTAGE_S / 2) * 1000);
    await jwksProxy.set('pass');
    // A new kid is looked up again at most once per cooldown; the last failed fetch may still be running.
    phase = phaseOf(s, 'recovering', { newkid: [503, 200] });
    await wait((JWKS_COOLDOWN_S + JWKS_TIMEOUT_S + 2) * 1000);
    phase = phaseOf(s, 'recovered');
    await wait(10_000);
    sendNewKid = false;
    const fetchErrors = (await totals('oidc_authz_jwks_fetches_total{issuer="' + issuer.issuer + '",result="error"')) - fetchErrors0;
    notes(s).push(`JWKS refused for ${OUTAGE_S / 2} s, then black-holed for ${OUTAGE_S / 2} s (kid ${k2.kid} published meanwhile); failed JWKS fetches counted by the two processes since the restart: ${fetchErrors}; recovery window ${JWKS_COOLDOWN_S + JWKS_TIMEOUT_S + 2} s (jwks.cooldown ${JWKS_COOLDOWN_S}s + jwks.timeout ${JWKS_TIMEOUT_S}s + 2 s)`);
    endScenario(s);
  }

  // ---------------------------------------------------------- 4. IdP unreachable during refreshes
  if (ONLY.has('4')) {
    const s = '4 IdP unreachable';
    beginScenario(s, 'before');
    const refreshes = async () => {
      const out: Record<string, number> = {};
      for (const port of ports) {
        for (const [k, v] of Object.entries(await scrape(metricsPortOf(port)))) {
          const m = /^oidc_authz_session_refreshes_total\{(.*)\}$/.exec(k);
          if (m) out[m[1]!] = (out[m[1]!] ?? 0) + v;
        }
      }
      return out;
    };
    const r0 = await refreshes();
    await wait(5000);
    phase = phaseOf(s, 'refused', { cookie: [200, 503] });
    await dexProxy.set('refuse');
    await wait((OUTAGE_S / 2) * 1000);
    phase = phaseOf(s, 'black-holed', { cookie: [200, 503] });
    await dexProxy.set('blackhole');
    await wait((OUTAGE_S / 2) * 1000);
    const r1 = await refreshes();
    await dexProxy.set('pass');
    phase = phaseOf(s, 'recovering', { cookie: [200, 503] });
    await wait((OIDC_TIMEOUT_S + 2) * 1000);
    phase = phaseOf(s, 'recovered');
    await wait((REVALIDATE_S + 10) * 1000);
    const r2 = await refreshes();
    const diff = (a: Record<string, number>, b: Record<string, number>) =>
      Object.entries(b).map(([k, v]) => [k, v - (a[k] ?? 0)] as const).filter(([, v]) => v > 0).map(([k, v]) => `${k}: ${v}`).join('; ');
    notes(s).push(`Dex refused for ${OUTAGE_S / 2} s, then black-holed for ${OUTAGE_S / 2} s. Refreshes during the outage: ${diff(r0, r1) || 'none'}. After: ${diff(r1, r2) || 'none'}`);
    const lost = cookieCallers.filter((c) => !c.jar!.has('oidc_authz') || (c.cleared ?? 0) > 0).length;
    notes(s).push(`sessions without a session cookie or ever cleared: ${lost}`);
    endScenario(s);
  }

  // ---------------------------------------------------------- 5. steady load
  const steady: Array<{ at: number; port: number; sample: Sample }> = [];
  if (ONLY.has('5')) {
    const s = '5 steady load';
    beginScenario(s, 'steady');
    load.keepSamples(true);
    const t0 = Date.now();
    while (Date.now() - t0 < SOAK_S * 1000) {
      for (const port of ports) steady.push({ at: Date.now(), port, sample: await scrape(metricsPortOf(port)) });
      await wait(5000);
    }
    for (const port of ports) steady.push({ at: Date.now(), port, sample: await scrape(metricsPortOf(port)) });
    load.keepSamples(false);
    endScenario(s);
  }

  await load.stop();
  cleanups.pop();
  const report: Report = {
    settings: { SOAK_S, RATE, BEARER_USERS, LOGINS, OUTAGE_S, EDS_LAG_MS, PROVIDER_TIMEOUT_MS, REVALIDATE_S, JWKS_COOLDOWN_S, cores: cpus().length, startedAt: new Date(started).toISOString(), durationS: Math.round((Date.now() - started) / 1000) },
    tallies,
    windows: scenarioWindows,
    steady: { samples: load.samples, metrics: steady, processes: Object.fromEntries(ports.map((p) => [String(p), p === portA ? 'A' : 'B'])) },
    errorLines: [...processes.values()].reduce((s, p) => s + p.tail.errors, 0),
  };
  const wrong = writeReport(report, 'bench/SOAK.md');
  for (const cleanup of cleanups.reverse()) await cleanup();
  for (const p of processes.values()) {
    p.terminate();
    await p.exited;
  }
  if (wrong > 0) {
    console.error(`soak: ${wrong} wrong answers`);
    process.exitCode = 1;
  }
}

main().catch((error: unknown) => {
  console.error('soak failed:', error);
  cleanupSync();
  process.exit(1);
});
