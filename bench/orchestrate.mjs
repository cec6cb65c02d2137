// Load benchmark of the check endpoint (`make bench`). Method: /work/shared/research/perf.md.
//
// For every round and every variant (interleaved: A B C D, A B C D, …): a fresh server process pinned
// to one core, a probe that it answers the expected status, a warm-up wrk run (discarded), a measured
// wrk run pinned to another core, server CPU from /proc/PID/stat, RSS from /proc/PID/status, the
// server's own decision counters, then the server is stopped. Medians over rounds; "vs bare" is the
// median of per-round ratios to bare node:http measured in the same round. The Redis-session variants
// share one redis-server (bench/redis.mjs) pinned to the server's core, whose CPU is counted apart.
// With O2P_BIN, oauth2-proxy v7.8.1 runs in the rounds as two more variants (research/perf.md's anchor).
// After the rounds, the open-loop step: oha at a fixed rate (50 % of each variant's closed-loop req/s),
// latency-corrected, directly and through a real Envoy. Then the memory step: RSS of the service after
// 100k distinct sessions, in each store, and 100k distinct bearer tokens, and the cache size for 256 MiB.
//
// Environment: ROUNDS (3), DURATION (8 s), WARMUP (2 s), CONNECTIONS (64), POOL (5000 tokens),
// FRESH_CACHE (100 entries), VARIANTS (comma-separated ids, default all), SERVER_CPU (0), WRK_CPU (1),
// PROFILE (a variant id: one extra run of it under `node --cpu-prof` after the rounds; not in results),
// MAX_OTHER_CORES (0.1) and REDOS (4): a run during which other processes on the machine used more
// than MAX_OTHER_CORES cores is redone once, at most REDOS times per bench. REDIS_POOL (1000 sessions
// for redis-first), MEMORY_SESSIONS (100000; 0 skips the memory step), MEMORY_WORKERS (2 threads sealing),
// MEMORY_TOKENS (100000), CONTAINER_MIB (256), MEMORY_HEADROOM (0.25), OPEN_LOOP (variant ids or "none"),
// OPEN_SHARE (0.5), OPEN_DURATION (8 s), OPEN_CONNECTIONS (64), ENVOY_CPU (= WRK_CPU), OHA_BIN, ENVOY_BIN, O2P_BIN.
import { spawn } from 'node:child_process';
import { KeyObject, randomUUID, sign as cryptoSign } from 'node:crypto';
import { mkdirSync, readFileSync, readdirSync, writeFileSync, existsSync } from 'node:fs';
import { Agent as HttpAgent, createServer, request as httpRequest } from 'node:http';
import { connect, createServer as createNetServer } from 'node:net';
import { cpus } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, URLSearchParams } from 'node:url';
import { Worker } from 'node:worker_threads';
import { exportJWK, generateKeyPair, SignJWT } from 'jose';
import { startRedis } from './redis.mjs';
import { createSessionMaker } from './sessions.mjs';

const BENCH_DIR = dirname(fileURLToPath(import.meta.url));
const ROOT = resolve(BENCH_DIR, '..');
const WORK = join(BENCH_DIR, '.work');

const intEnv = (name, fallback, min = 1) => {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  const value = Number(raw);
  if (!Number.isInteger(value) || value < min) throw new Error(`${name}=${raw}: expected an integer ≥ ${min}`);
  return value;
};
const OPTIONS = {
  rounds: intEnv('ROUNDS', 3),
  duration: intEnv('DURATION', 8),
  warmup: intEnv('WARMUP', 2, 0),
  connections: intEnv('CONNECTIONS', 64),
  pool: intEnv('POOL', 5000),
  freshCache: intEnv('FRESH_CACHE', 100),
  serverCpu: intEnv('SERVER_CPU', 0, 0),
  wrkCpu: intEnv('WRK_CPU', 1, 0),
  profile: process.env.PROFILE || null,
  /** A run during which other processes used more than this many cores is redone once … */
  maxOtherCores: Number(process.env.MAX_OTHER_CORES ?? 0.1),
  /** … at most this many times per bench (bounds the duration). */
  redos: intEnv('REDOS', 4, 0),
  redisPool: intEnv('REDIS_POOL', 1000),
  memorySessions: intEnv('MEMORY_SESSIONS', 100_000, 0),
  memoryWorkers: intEnv('MEMORY_WORKERS', 2),
  /** Memory step, cookie store: then this many distinct valid bearer tokens (0: none). */
  memoryTokens: intEnv('MEMORY_TOKENS', 100_000, 0),
  /** The 256 MiB container the cache sizes are worked out for, and the share of it kept free. */
  containerMiB: intEnv('CONTAINER_MIB', 256),
  headroom: Number(process.env.MEMORY_HEADROOM ?? 0.25),
  /** Open-loop step: these variants (comma list; "none" skips it), at OPEN_SHARE of their closed-loop req/s. */
  openLoop: (process.env.OPEN_LOOP ?? 'bare,bearer-cached,cookie-cached').split(',').map((v) => v.trim()).filter((v) => v && v !== 'none'),
  openShare: Number(process.env.OPEN_SHARE ?? 0.5),
  openDuration: intEnv('OPEN_DURATION', 8),
  openConnections: intEnv('OPEN_CONNECTIONS', 64),
  /** Seconds of the closed-loop run through Envoy that sets the rate through it. */
  openGatewayProbe: intEnv('OPEN_GATEWAY_PROBE', 4),
  /** The core Envoy (one worker) runs on in the open-loop runs through Envoy: the generator's, by default. */
  envoyCpu: intEnv('ENVOY_CPU', intEnv('WRK_CPU', 1, 0), 0),
  /** oauth2-proxy binary (v7.8.1, `make oauth2-proxy`): adds the o2p-* variants to the rounds. */
  o2pBin: process.env.O2P_BIN || null,
  ohaBin: process.env.OHA_BIN || resolve(dirname(fileURLToPath(import.meta.url)), '../.tools/oha/bin/oha'),
  envoyBin: process.env.ENVOY_BIN || resolve(dirname(fileURLToPath(import.meta.url)), '../.tools/envoy/envoy/_bin/envoy'),
};
if (!(OPTIONS.openShare > 0 && OPTIONS.openShare <= 1)) throw new Error(`OPEN_SHARE=${process.env.OPEN_SHARE}: expected a number in (0, 1]`);
if (!Number.isFinite(OPTIONS.maxOtherCores)) throw new Error(`MAX_OTHER_CORES=${process.env.MAX_OTHER_CORES}: expected a number`);
const HOST = 'kubeflow.example.com';
const AUDIENCE = 'oidc-authz-bench';
const CLK_TCK = 100;
/** research/perf.md: below this share of its core the server was not the bottleneck (generator or noise). */
const SATURATED = 0.97; // Linux USER_HZ; checked against `getconf CLK_TCK` below.

// ---------------------------------------------------------------------------------------------------
// Service config. Rules in front of the measured ones so the match is not trivially the first rule.

function authzConfig(ctx, overrides = {}) {
  return {
    listen: { host: '127.0.0.1', port: 0, metricsHost: '127.0.0.1', metricsPort: 0, shutdownTimeout: '2s' },
    checkPathPrefix: '/authz',
    issuers: [{ issuer: ctx.issuer, audiences: [AUDIENCE], jwksUri: ctx.jwksUri, algorithms: ['RS256', 'ES256'] }],
    bearer: { cacheMaxEntries: overrides.cacheMaxEntries ?? 10_000 },
    defaultRule: 'deny',
    rules: [
      { name: 'health', paths: ['/healthz', '/readyz'], allow: 'anonymous' },
      { name: 'static', hosts: [HOST], paths: ['/static/**', '/favicon.ico'], allow: 'anonymous' },
      { name: 'admin', hosts: [HOST], paths: ['/admin/**'], allow: { groups: ['bench-admins'] } },
      { name: 'profiles', hosts: [HOST], paths: ['/profiles/{ns}/**'], allow: { anyOf: [{ groups: ['bench-admins'] }, { groups: ['ns-{ns}'] }] } },
      { name: 'api', hosts: [HOST, '*.example.com'], paths: ['/api/**', '/pipelines/**'], allow: 'authenticated' },
    ],
  };
}

/** The cookie-session variants: browser login configured, no bearer issuers. */
function cookieConfig(ctx) {
  return {
    ...authzConfig(ctx),
    issuers: [],
    publicUrl: `https://${HOST}`,
    oidc: { issuer: ctx.issuer, clientId: AUDIENCE, jwksUri: ctx.jwksUri },
    // No IdP runs in the bench: the session (sealed below, due for refresh when its hour-long token ends)
    // must not be revalidated during it.
    session: { secretsFile: ctx.sessionSecretsFile, revalidateAfter: '2h' },
  };
}

/**
 * The Redis-session variants: as cookieConfig, with session.store "redis" on the bench's redis-server.
 * `cacheFor` (session.redis.cacheFor): how long the service trusts a session it read; undefined = the default.
 */
function redisConfig(ctx, cacheFor, url = ctx.redis.url) {
  const base = cookieConfig(ctx);
  return { ...base, session: { ...base.session, store: 'redis', redis: { url, ...(cacheFor === undefined ? {} : { cacheFor }) } } };
}
/** redis-cached: longer than any run (probe, warm-up and measured run take ~12 s), so all its checks hit memory. */
const REDIS_CACHED_FOR = '60s';

/**
 * The header of issue 13's quadratic-scan report: just under Envoy's 60 KiB header budget, the session
 * cookie's name again and again with no separator a cookie parser splits on.
 */
const HOSTILE_COOKIE = 'oidc_authz= '.repeat(Math.floor((59 * 1024) / 'oidc_authz= '.length));

// ---------------------------------------------------------------------------------------------------
// Variants. To add one (e.g. a cookie session): a Lua script next to this file, and an entry here.
//   server:  'bare' | 'authz'            config(ctx): the service config (authz only)
//   path, headers(ctx): the request; the probe sends exactly this, and wrk gets it as BENCH_* env
//   env(ctx): extra environment for the Lua script; needsPool: sign the pool of distinct tokens
//   expect:  { status, decision }        decision = the server's oidc_authz_checks_total label

const API_PATH = '/authz/api/v1/namespaces/team-a/experiments?limit=20';
const ADMIN_PATH = '/authz/admin/users/alice?view=full';

const VALID_TOKEN = { status: 200, decision: 'allow' };
const FORGED_TOKEN = { status: 401, decision: 'unauthorized', reason: 'bad_signature' };

/**
 * A row that sends a different token of `pool` on every request: the probe uses the pool's first token, wrk
 * cycles through the whole pool (BENCH_TOKENS_FILE), and a token cache of OPTIONS.freshCache entries has always
 * evicted a token before it comes back, so every request is a first sight.
 */
function tokenPoolVariant(id, label, pool, expect) {
  return {
    id,
    label,
    server: 'authz',
    config: (ctx) => authzConfig(ctx, { cacheMaxEntries: OPTIONS.freshCache }),
    lua: 'bearer-fresh.lua',
    needsPool: pool,
    path: API_PATH,
    headers: (ctx) => ({ host: HOST, authorization: `Bearer ${ctx.pools[pool].tokens[0]}` }),
    env: (ctx) => ({ BENCH_TOKENS_FILE: ctx.pools[pool].file }),
    expect,
  };
}

const VARIANTS = [
  {
    id: 'bare',
    label: 'bare node:http (ceiling)',
    server: 'bare',
    lua: 'bare.lua',
    path: API_PATH,
    headers: (ctx) => ({ host: HOST, authorization: `Bearer ${ctx.token}` }),
    expect: { status: 200 },
  },
  {
    id: 'bearer-cached',
    label: 'cached bearer → 200',
    server: 'authz',
    config: (ctx) => authzConfig(ctx),
    lua: 'bearer-cached.lua',
    path: API_PATH,
    headers: (ctx) => ({ host: HOST, authorization: `Bearer ${ctx.token}` }),
    expect: { status: 200, decision: 'allow' },
  },
  {
    id: 'bearer-traced',
    label: 'cached bearer, tracing on (every check a sampled span, exported over OTLP/HTTP) → 200',
    server: 'authz',
    // Off (every other row) the check handler is the untraced function itself; this row is what turning it on costs.
    config: (ctx) => ({ ...authzConfig(ctx), tracing: { enabled: true, endpoint: ctx.otlpUrl, sampleRatio: 1 } }),
    lua: 'bearer-cached.lua',
    path: API_PATH,
    headers: (ctx) => ({ host: HOST, authorization: `Bearer ${ctx.token}` }),
    expect: { status: 200, decision: 'allow' },
  },
  tokenPoolVariant('bearer-fresh', 'fresh token each request (cache miss, RS256 verify) → 200', 'rs256', VALID_TOKEN),
  tokenPoolVariant('bearer-fresh-es256', 'fresh token each request (cache miss, ES256 verify) → 200', 'es256', VALID_TOKEN),
  tokenPoolVariant('bearer-forged', 'forged RS256 signature, a different token each request → 401', 'forgedRs256', FORGED_TOKEN),
  tokenPoolVariant('bearer-forged-es256', 'forged ES256 signature, a different token each request → 401', 'forgedEs256', FORGED_TOKEN),
  {
    id: 'cookie-cached',
    label: 'valid session cookie (no refresh) → 200',
    server: 'authz',
    config: (ctx) => cookieConfig(ctx),
    lua: 'cookie-cached.lua',
    path: API_PATH,
    headers: (ctx) => ({ host: HOST, cookie: ctx.sessionCookie, accept: 'application/json' }),
    expect: { status: 200, decision: 'allow' },
  },
  {
    id: 'redis-cached',
    label: `Redis session, in memory (cacheFor ${REDIS_CACHED_FOR}) → 200`,
    server: 'authz',
    redis: true,
    config: (ctx) => redisConfig(ctx, REDIS_CACHED_FOR),
    lua: 'cookie-cached.lua',
    path: API_PATH,
    headers: (ctx) => ({ host: HOST, cookie: ctx.redisCookie, accept: 'application/json' }),
    expect: { status: 200, decision: 'allow' },
    // The first probe reads the session from Redis; every later check is a memory hit.
    storeReads: 'first',
  },
  {
    id: 'redis-first',
    label: 'Redis session, read + unsealed on every check (cacheFor 0) → 200',
    server: 'authz',
    redis: true,
    config: (ctx) => redisConfig(ctx, '0s'),
    lua: 'cookie-pool.lua',
    path: API_PATH,
    // The probe uses the pool's first session; wrk cycles through the whole pool (BENCH_COOKIES_FILE).
    headers: (ctx) => ({ host: HOST, cookie: ctx.redisPool[0], accept: 'application/json' }),
    env: (ctx) => ({ BENCH_COOKIES_FILE: ctx.redisPoolFile }),
    expect: { status: 200, decision: 'allow' },
    storeReads: 'every',
  },
  {
    id: 'bare-hostile',
    label: 'bare node:http, the same 59 KB Cookie (what parsing it costs Node)',
    server: 'bare',
    lua: 'cookie-cached.lua',
    path: API_PATH,
    headers: () => ({ host: HOST, cookie: HOSTILE_COOKIE, accept: 'application/json' }),
    expect: { status: 200 },
  },
  {
    id: 'cookie-hostile',
    label: '59 KB Cookie of repeated `oidc_authz= ` (issue 13) → 401',
    server: 'authz',
    config: (ctx) => cookieConfig(ctx),
    lua: 'cookie-cached.lua',
    path: API_PATH,
    headers: () => ({ host: HOST, cookie: HOSTILE_COOKIE, accept: 'application/json' }),
    expect: { status: 401, decision: 'unauthorized' },
  },
  {
    id: 'bearer-forbidden',
    label: 'cached bearer, group missing → 403',
    server: 'authz',
    config: (ctx) => authzConfig(ctx),
    lua: 'bearer-forbidden.lua',
    path: ADMIN_PATH,
    headers: (ctx) => ({ host: HOST, authorization: `Bearer ${ctx.token}` }),
    expect: { status: 403, decision: 'forbidden' },
  },
  // oauth2-proxy's anchor (research/perf.md), only with O2P_BIN: its auth endpoint, as a gateway's ext_authz would call it.
  {
    id: 'o2p-bearer',
    label: 'oauth2-proxy v7.8.1 `/oauth2/auth`, the cached-bearer token (verified every time) → 202',
    server: 'o2p',
    lua: 'bearer-cached.lua',
    path: '/oauth2/auth',
    headers: (ctx) => ({ host: HOST, authorization: `Bearer ${ctx.token}` }),
    expect: { status: 202 },
  },
  {
    id: 'o2p-cookie',
    label: 'oauth2-proxy v7.8.1 `/oauth2/auth`, its session cookie (from one real login) → 202',
    server: 'o2p',
    lua: 'cookie-cached.lua',
    path: '/oauth2/auth',
    headers: (ctx) => ({ host: HOST, cookie: ctx.o2pCookie, accept: 'application/json' }),
    expect: { status: 202 },
  },
];

// ---------------------------------------------------------------------------------------------------
// The session cookie of the cookie variant: sealed by the service's own code (dist/) with a secret
// written for the bench, holding the same ID token as the bearer variants (as after a real login).

const SESSION_SECRET = 'bench-cookie-secret-0123456789abcdefghijklmnop';

async function sealSession(idToken) {
  const { createSealer } = await import(join(ROOT, 'dist/session/seal.js'));
  const { secretsFromLines } = await import(join(ROOT, 'dist/session/secrets.js'));
  const { CookieSessionStore } = await import(join(ROOT, 'dist/session/store.js'));
  const secretsFile = join(WORK, 'cookie-secrets');
  writeFileSync(secretsFile, `${SESSION_SECRET}\n`);
  const store = new CookieSessionStore(createSealer(secretsFromLines([SESSION_SECRET])), {
    names: { base: 'oidc_authz', sessionPrefix: '' }, attributes: { secure: true }, maxAgeMs: 7 * 24 * 3600_000,
  });
  const exp = JSON.parse(Buffer.from(idToken.split('.')[1], 'base64url').toString()).exp;
  const issued = await store.issue({ idToken, refreshToken: 'bench-refresh-token', createdAt: Date.now(), expiresAt: exp * 1000 });
  const cookie = issued.setCookies.map((line) => line.split(';', 1)[0]).join('; ');
  return { sessionCookie: `theme=dark; ${cookie}; _ga=GA1.2.123456789.1700000000`, sessionSecretsFile: secretsFile, sessionBytes: issued.sealed.length };
}

// ---------------------------------------------------------------------------------------------------
// Small helpers.

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const median = (values) => {
  const v = values.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  if (v.length === 0) return NaN;
  const mid = Math.floor(v.length / 2);
  return v.length % 2 ? v[mid] : (v[mid - 1] + v[mid]) / 2;
};
const log = (line) => process.stderr.write(`[bench] ${line}\n`);

class BenchFailure extends Error {}
const fail = (message) => {
  throw new BenchFailure(message);
};

function run(command, args, { timeoutMs = 30_000, env } = {}) {
  return new Promise((resolvePromise, reject) => {
    const child = spawn(command, args, { cwd: ROOT, env: env ? { ...process.env, ...env } : process.env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new BenchFailure(`${command} ${args.join(' ')}: no exit after ${timeoutMs} ms, killed`));
    }, timeoutMs);
    child.on('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolvePromise({ code, signal, stdout, stderr });
    });
  });
}

/** utime + stime of a process, in clock ticks (fields 14 and 15 of /proc/PID/stat). */
function processTicks(pid) {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' '); // fields[0] is field 3 (state)
  return Number(fields[11]) + Number(fields[12]);
}

function processMemory(pid) {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (name) => Number(new RegExp(`^${name}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? NaN);
  return { rssKb: kb('VmRSS'), hwmKb: kb('VmHWM') };
}

/** Busy and idle jiffies of one CPU (and the steal of all CPUs) from /proc/stat. */
function cpuTimes(cpu) {
  const lines = readFileSync('/proc/stat', 'utf8').split('\n');
  const parse = (line) => line.trim().split(/\s+/).slice(1).map(Number);
  const one = parse(lines.find((l) => l.startsWith(`cpu${cpu} `)));
  const all = parse(lines[0]);
  const total = one.slice(0, 8).reduce((a, b) => a + b, 0);
  const allTotal = all.slice(0, 8).reduce((a, b) => a + b, 0);
  return { total, idle: one[3] + one[4], steal: all[7], allTotal, allBusy: allTotal - all[3] - all[4] };
}

/** One HTTP request with exactly these headers (node:http, so Host can be set). */
function probe(port, path, headers, timeoutMs = 10_000) {
  return new Promise((resolvePromise, reject) => {
    const req = httpRequest({ host: '127.0.0.1', port, path, method: 'GET', headers, agent: false, timeout: timeoutMs }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d) => (body += d));
      res.on('end', () => resolvePromise({ status: res.statusCode, headers: res.headers, body }));
    });
    req.on('timeout', () => req.destroy(new Error(`probe timed out after ${timeoutMs} ms`)));
    req.on('error', reject);
    req.end();
  });
}

/** Sums oidc_authz_checks_total by decision from the server's /metrics. */
async function decisionCounts(metricsPort) {
  const { status, body } = await probe(metricsPort, '/metrics', { host: '127.0.0.1' });
  if (status !== 200) fail(`/metrics answered ${status}`);
  const counts = {};
  for (const line of body.split('\n')) {
    const m = /^oidc_authz_checks_total\{([^}]*)\}\s+(\S+)$/.exec(line);
    if (!m) continue;
    const decision = /decision="([^"]*)"/.exec(m[1])?.[1] ?? '?';
    const reason = /reason="([^"]*)"/.exec(m[1])?.[1] ?? '?';
    const key = `${decision}/${reason}`;
    counts[key] = (counts[key] ?? 0) + Number(m[2]);
  }
  const gauge = (name) => {
    const value = new RegExp(`^${name}\\s+(\\S+)$`, 'm').exec(body)?.[1];
    return value === undefined ? null : Number(value);
  };
  const storeOps = (result) => Number(new RegExp(`^oidc_authz_session_store_operations_total\\{(?=[^}]*op="read")(?=[^}]*result="${result}")[^}]*\\}\\s+(\\S+)$`, 'm').exec(body)?.[1] ?? 0);
  return {
    counts,
    tokenCacheEntries: gauge('oidc_authz_token_cache_entries'),
    sessionCacheEntries: gauge('oidc_authz_session_cache_entries'),
    storeUp: gauge('oidc_authz_session_store_up'),
    storeReads: storeOps('ok'),
    storeReadErrors: storeOps('error'),
    heapUsedBytes: gauge('oidc_authz_nodejs_heap_size_used_bytes'),
  };
}

/** Until the service says its session store (Redis) is reachable: before that a check answers 503. */
async function waitForStore(metricsPort, id, timeoutMs = 10_000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if ((await decisionCounts(metricsPort)).storeUp === 1) return;
    if (Date.now() > deadline) fail(`${id}: the service did not reach Redis within ${timeoutMs} ms`);
    await sleep(20);
  }
}

// ---------------------------------------------------------------------------------------------------
// Processes.

const live = new Set();
function killAll() {
  for (const child of live) {
    try {
      child.kill('SIGKILL');
    } catch {
      /* already gone */
    }
  }
}
process.on('exit', killAll);
for (const signal of ['SIGINT', 'SIGTERM']) {
  process.on(signal, () => {
    killAll();
    process.exit(130);
  });
}

async function startServer(variant, ctx, { profileDir, exposeGc = false } = {}) {
  if (variant.server === 'o2p') return startO2p(ctx, variant.id);
  const nodeArgs = profileDir ? ['--cpu-prof', '--cpu-prof-dir', profileDir, '--cpu-prof-interval', '250'] : [];
  if (exposeGc) nodeArgs.push('--expose-gc');
  const script = join(BENCH_DIR, variant.server === 'bare' ? 'server-bare.mjs' : 'server-authz.mjs');
  const args = variant.server === 'bare' ? [] : [ctx.configFiles[variant.id]];
  const child = spawn('taskset', ['-c', String(OPTIONS.serverCpu), process.execPath, ...nodeArgs, script, ...args], {
    cwd: ROOT,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  live.add(child);
  let stderr = '';
  child.stderr.on('data', (d) => (stderr += d));
  const exited = new Promise((r) => child.once('exit', (code, signal) => r({ code, signal })));
  // Lines the server writes after the ready line (server-authz.mjs's memory reports), for gcMemory().
  const laterLines = [];
  let lineWaiter = null;
  const ready = await new Promise((resolvePromise, reject) => {
    let buffer = '';
    let readySeen = false;
    const timer = setTimeout(() => reject(new BenchFailure(`${variant.id}: server not ready after 15 s\n${stderr}`)), 15_000);
    child.stdout.on('data', (d) => {
      buffer += d;
      if (readySeen) {
        let nl;
        while ((nl = buffer.indexOf('\n')) !== -1) {
          laterLines.push(buffer.slice(0, nl));
          buffer = buffer.slice(nl + 1);
        }
        lineWaiter?.();
        return;
      }
      const nl = buffer.indexOf('\n');
      if (nl === -1) return;
      readySeen = true;
      clearTimeout(timer);
      try {
        const line = buffer.slice(0, nl);
        buffer = buffer.slice(nl + 1);
        resolvePromise(JSON.parse(line));
      } catch {
        reject(new BenchFailure(`${variant.id}: unexpected server output: ${buffer}`));
      }
    });
    exited.then(({ code, signal }) => {
      clearTimeout(timer);
      reject(new BenchFailure(`${variant.id}: server exited (${code ?? signal}) before it was ready\n${stderr}`));
    });
  });
  // taskset execs node, so the child's pid is the server's pid.
  if (ready.pid !== child.pid) fail(`${variant.id}: server pid ${ready.pid} is not the spawned pid ${child.pid}`);
  const affinity = await run('taskset', ['-pc', String(child.pid)]);
  if (!new RegExp(`: ${OPTIONS.serverCpu}\\s*$`).test(affinity.stdout)) fail(`${variant.id}: server not pinned: ${affinity.stdout.trim()}`);
  if (variant.redis) await waitForStore(ready.metricsPort, variant.id);
  return {
    pid: child.pid,
    port: ready.port,
    metricsPort: ready.metricsPort ?? null,
    stderr: () => stderr,
    /** Started with exposeGc: a full GC in the server, then its process.memoryUsage() (bytes) and VmRSS after it. */
    async gcMemory(timeoutMs = 30_000) {
      const seen = laterLines.length;
      child.kill('SIGUSR2');
      const deadline = Date.now() + timeoutMs;
      while (laterLines.length === seen) {
        if (Date.now() > deadline) fail(`${variant.id}: no memory report ${timeoutMs} ms after SIGUSR2`);
        await Promise.race([new Promise((r) => (lineWaiter = r)), sleep(100)]);
      }
      const usage = JSON.parse(laterLines[seen]);
      if (!usage.gc) fail(`${variant.id}: unexpected server output ${laterLines[seen]}`);
      return { ...usage, ...processMemory(child.pid) };
    },
    async stop() {
      child.kill('SIGTERM');
      const outcome = await Promise.race([exited, sleep(5_000).then(() => null)]);
      if (outcome === null) {
        child.kill('SIGKILL');
        await exited;
      }
      live.delete(child);
    },
  };
}

async function wrk(variant, ctx, port, seconds) {
  const headers = variant.headers(ctx);
  const env = {
    BENCH_DIR,
    BENCH_PATH: variant.path,
    BENCH_HOST: headers.host ?? '',
    BENCH_AUTHORIZATION: headers.authorization ?? '',
    BENCH_COOKIE: headers.cookie ?? '',
    ...(variant.env ? variant.env(ctx) : {}),
  };
  const args = [
    '-c', String(OPTIONS.wrkCpu), 'wrk', '-t1', `-c${OPTIONS.connections}`, `-d${seconds}s`, '--timeout', '5s', '--latency',
    '-s', join(BENCH_DIR, variant.lua), `http://127.0.0.1:${port}/`,
  ];
  // Through sh, which reports wrk's CPU time (its cutime+cstime once wrk has been waited for), so
  // the CPU used by other processes on the machine during the run can be worked out.
  const wrapper = 'taskset "$@"; rc=$?; set -- $(sed "s/.*) //" /proc/$$/stat); echo "WRK_CPU_TICKS $((${14} + ${15}))"; exit $rc';
  const startedAt = process.hrtime.bigint();
  const result = await run('sh', ['-c', wrapper, 'sh', ...args], { env, timeoutMs: (seconds + 20) * 1000 });
  const wallS = Number(process.hrtime.bigint() - startedAt) / 1e9;
  const line = result.stdout.split('\n').find((l) => l.startsWith('BENCH_RESULT '));
  if (result.code !== 0 || !line) fail(`${variant.id}: wrk failed (exit ${result.code ?? result.signal})\n${result.stdout}\n${result.stderr}`);
  const wrkTicks = Number(/^WRK_CPU_TICKS (\d+)$/m.exec(result.stdout)?.[1] ?? NaN);
  const text = result.stdout.replace(/^(BENCH_RESULT|WRK_CPU_TICKS) .*\n?/gm, '');
  return { ...JSON.parse(line.slice('BENCH_RESULT '.length)), wallS, wrkCpuS: wrkTicks / CLK_TCK, text };
}

async function checkExpected(variant, ctx, port, when) {
  const response = await probe(port, variant.path, variant.headers(ctx));
  if (response.status !== variant.expect.status) {
    fail(`${variant.id}: ${when} probe answered ${response.status}, expected ${variant.expect.status}: ${response.body.slice(0, 300)}`);
  }
  if (variant.server === 'authz' && variant.expect.status === 200 && response.headers['kubeflow-userid'] !== 'alice@example.com') {
    fail(`${variant.id}: ${when} probe: 200 without the expected kubeflow-userid header: ${JSON.stringify(response.headers)}`);
  }
  return response.status;
}

/** Zero unexpected answers: wrk's own counts, and for the service its decision counters. */
function validate(variant, measured, warm, decisions, scraped) {
  const problems = [];
  for (const [name, run_] of [['warm-up', warm], ['measured', measured]]) {
    if (!run_) continue;
    const e = run_.errors;
    if (e.connect + e.read + e.write + e.timeout > 0) problems.push(`${name}: socket errors ${JSON.stringify(e)}`);
    const expectedStatusErrors = variant.expect.status >= 400 ? run_.requests : 0;
    if (e.status !== expectedStatusErrors) {
      problems.push(`${name}: ${e.status} responses ≥ 400 of ${run_.requests}, expected ${expectedStatusErrors} (every answer ${variant.expect.status})`);
    }
  }
  if (decisions) {
    // decision/reason keys; with expect.reason only that reason counts.
    const wanted = variant.expect.reason ? `${variant.expect.decision}/${variant.expect.reason}` : `${variant.expect.decision}/`;
    const matches = (k) => (variant.expect.reason ? k === wanted : k.startsWith(wanted));
    const expected = Object.entries(decisions).filter(([k]) => matches(k)).reduce((a, [, n]) => a + n, 0);
    const other = Object.entries(decisions).filter(([k, n]) => !matches(k) && n > 0);
    if (other.length > 0) problems.push(`server decided ${JSON.stringify(Object.fromEntries(other))} besides ${wanted}`);
    // The server also answered the probes and up to `connections` requests wrk never counted.
    const sent = measured.requests + (warm?.requests ?? 0);
    if (expected < sent) problems.push(`server counted ${expected} ${variant.expect.decision} decisions, wrk received ${sent} answers`);
  }
  if (variant.storeReads && scraped) {
    // The service's own count of Redis reads (oidc_authz_session_store_operations_total{op="read"}).
    const sent = measured.requests + (warm?.requests ?? 0);
    if (scraped.storeReadErrors > 0) problems.push(`${scraped.storeReadErrors} failed Redis reads`);
    if (variant.storeReads === 'every' && scraped.storeReads < sent) problems.push(`${scraped.storeReads} Redis reads for ${sent} checks: not every check read Redis`);
    if (variant.storeReads === 'first' && scraped.storeReads !== 1) problems.push(`${scraped.storeReads} Redis reads, expected 1 (the first probe): checks did not stay in memory`);
  }
  if (problems.length > 0) fail(`${variant.id}: unexpected answers:\n  ${problems.join('\n  ')}`);
}

async function measureOnce(variant, ctx, { profileDir } = {}) {
  const server = await startServer(variant, ctx, { profileDir });
  try {
    await checkExpected(variant, ctx, server.port, 'pre-run');
    const warm = OPTIONS.warmup > 0 ? await wrk(variant, ctx, server.port, OPTIONS.warmup) : null;
    await checkExpected(variant, ctx, server.port, 'post-warm-up');

    const redisPid = ctx.redis?.pid;
    const ticks0 = processTicks(server.pid);
    const redisTicks0 = redisPid ? processTicks(redisPid) : 0;
    const cpu0 = cpuTimes(OPTIONS.wrkCpu);
    const t0 = process.hrtime.bigint();
    const measured = await wrk(variant, ctx, server.port, OPTIONS.duration);
    const t1 = process.hrtime.bigint();
    const ticks1 = processTicks(server.pid);
    const redisTicks1 = redisPid ? processTicks(redisPid) : 0;
    const cpu1 = cpuTimes(OPTIONS.wrkCpu);
    const memory = processMemory(server.pid);
    const scraped = server.metricsPort ? await decisionCounts(server.metricsPort) : null;
    const decisions = scraped?.counts ?? null;

    validate(variant, measured, warm, decisions, scraped);
    const wallS = Number(t1 - t0) / 1e9;
    const serverCpuS = (ticks1 - ticks0) / CLK_TCK;
    // The bench's redis-server shares the server's core; idle (a few ticks of its timer) unless the variant uses it.
    const redisCpuS = (redisTicks1 - redisTicks0) / CLK_TCK;
    const reqPerS = measured.requests / (measured.duration_us / 1e6);
    return {
      variant: variant.id,
      reqPerS,
      p50Ms: measured.latency_us.p50 / 1000,
      p99Ms: measured.latency_us.p99 / 1000,
      serverCpuUsPerReq: (serverCpuS * 1e6) / measured.requests,
      redisCpuUsPerReq: variant.redis ? (redisCpuS * 1e6) / measured.requests : null,
      // The server side's share of its core: the service, plus Redis for the variants that use it.
      serverBusy: (serverCpuS + (variant.redis ? redisCpuS : 0)) / wallS,
      serviceBusy: serverCpuS / wallS,
      wrkCoreBusy: 1 - (cpu1.idle - cpu0.idle) / (cpu1.total - cpu0.total),
      stealShare: (cpu1.steal - cpu0.steal) / (cpu1.allTotal - cpu0.allTotal),
      wrkCpuS: measured.wrkCpuS,
      // Cores' worth of CPU used by everything else (other processes, kernel threads) during the run.
      otherCores: ((cpu1.allBusy - cpu0.allBusy) / CLK_TCK - serverCpuS - redisCpuS - measured.wrkCpuS) / wallS,
      rssMb: memory.rssKb / 1024,
      hwmMb: memory.hwmKb / 1024,
      requests: measured.requests,
      warmupRequests: warm?.requests ?? 0,
      wallS,
      serverCpuS,
      redisCpuS,
      storeReads: scraped?.storeReads ?? null,
      sessionCacheEntries: scraped?.sessionCacheEntries ?? null,
      latencyUs: measured.latency_us,
      errors: measured.errors,
      decisions,
      tokenCacheEntries: scraped?.tokenCacheEntries ?? null,
      wrkText: measured.text,
    };
  } finally {
    await server.stop();
  }
}

// ---------------------------------------------------------------------------------------------------
// Keys, tokens, JWKS.

async function prepare() {
  mkdirSync(WORK, { recursive: true });
  const suffix = randomUUID().slice(0, 8);
  // Two signing keys in the issuer's JWKS: RS256 (the bearer variants' and the sessions' ID token) and
  // ES256 (the ES256 variants). The issuer accepts both algorithms.
  const keys = {
    RS256: { kid: `bench-rs-${suffix}`, ...(await generateKeyPair('RS256', { modulusLength: 2048, extractable: true })) },
    ES256: { kid: `bench-es-${suffix}`, ...(await generateKeyPair('ES256', { extractable: true })) },
  };
  const jwks = JSON.stringify({
    keys: await Promise.all(Object.entries(keys).map(async ([alg, k]) => ({ ...(await exportJWK(k.publicKey)), kid: k.kid, alg, use: 'sig' }))),
  });

  const jwksHits = { count: 0 };
  const otlpHits = { exports: 0, bytes: 0 };
  // The bench's issuer on 127.0.0.1: its JWKS for the service and, for oauth2-proxy (O2P_BIN), OIDC
  // discovery and a minimal code flow (authorize answers at once with a code; the token endpoint
  // returns an ID token for it), enough for one real login.
  const issuerHits = { discovery: 0, authorize: 0, token: 0, userinfo: 0 };
  const codes = new Map();
  let issuerRoutes = null;
  const jwksServer = createServer((req, res) => {
    const url = new URL(req.url, 'http://127.0.0.1');
    if (url.pathname === '/issuer/jwks') {
      jwksHits.count++;
      res.writeHead(200, { 'content-type': 'application/jwk-set+json' }).end(jwks);
    } else if (url.pathname === '/otlp/v1/traces' && req.method === 'POST') {
      // The bearer-traced variant's OTLP/HTTP receiver: takes the batch, counts its bytes, answers as a collector does.
      req.on('data', (chunk) => { otlpHits.bytes += chunk.length; });
      req.on('end', () => { otlpHits.exports++; res.writeHead(200, { 'content-type': 'application/json' }).end('{}'); });
    } else if (issuerRoutes && url.pathname.startsWith('/issuer/')) {
      issuerRoutes(req, res, url).catch((error) => res.writeHead(500).end(String(error)));
    } else {
      res.writeHead(404).end();
    }
  });
  await new Promise((r) => jwksServer.listen(0, '127.0.0.1', r));
  const base = `http://127.0.0.1:${jwksServer.address().port}`;
  const issuer = `${base}/issuer`;
  issuerRoutes = async (req, res, url) => {
    const json = (status, body) => res.writeHead(status, { 'content-type': 'application/json', 'cache-control': 'no-store' }).end(JSON.stringify(body));
    if (url.pathname === '/issuer/.well-known/openid-configuration') {
      issuerHits.discovery++;
      return json(200, {
        issuer, authorization_endpoint: `${issuer}/auth`, token_endpoint: `${issuer}/token`, jwks_uri: `${issuer}/jwks`, userinfo_endpoint: `${issuer}/userinfo`,
        response_types_supported: ['code'], subject_types_supported: ['public'], id_token_signing_alg_values_supported: ['RS256', 'ES256'],
        scopes_supported: ['openid', 'email', 'profile', 'groups', 'offline_access'], token_endpoint_auth_methods_supported: ['client_secret_basic', 'client_secret_post'],
        grant_types_supported: ['authorization_code', 'refresh_token'], claims_supported: ['sub', 'email', 'email_verified', 'groups', 'name'],
      });
    }
    if (url.pathname === '/issuer/auth') {
      issuerHits.authorize++;
      const redirect = new URL(url.searchParams.get('redirect_uri'));
      const code = randomUUID();
      codes.set(code, { nonce: url.searchParams.get('nonce') ?? undefined, clientId: url.searchParams.get('client_id') });
      redirect.searchParams.set('code', code);
      redirect.searchParams.set('state', url.searchParams.get('state') ?? '');
      return res.writeHead(302, { location: redirect.toString() }).end();
    }
    if (url.pathname === '/issuer/token' && req.method === 'POST') {
      issuerHits.token++;
      let body = '';
      for await (const chunk of req) body += chunk;
      const params = new URLSearchParams(body);
      const grant = codes.get(params.get('code'));
      if (!grant) return json(400, { error: 'invalid_grant' });
      codes.delete(params.get('code'));
      const idToken = await new SignJWT({ ...claims('login'), ...(grant.nonce ? { nonce: grant.nonce } : {}) })
        .setProtectedHeader({ alg: 'RS256', kid: keys.RS256.kid, typ: 'JWT' })
        .setIssuer(issuer).setAudience(grant.clientId ?? AUDIENCE).setSubject('CiQwOGE4Njg0Yi1kYjg4LTRiNzMtOTBhOS0zY2QxNjYxZjU0NjYSBWxvY2Fs')
        .setIssuedAt().setExpirationTime('1h').sign(keys.RS256.privateKey);
      return json(200, { access_token: idToken, id_token: idToken, refresh_token: `bench-refresh-${randomUUID()}`, token_type: 'Bearer', expires_in: 3600 });
    }
    if (url.pathname === '/issuer/userinfo') {
      issuerHits.userinfo++;
      return json(200, { sub: 'CiQwOGE4Njg0Yi1kYjg4LTRiNzMtOTBhOS0zY2QxNjYxZjU0NjYSBWxvY2Fs', email: 'alice@example.com', email_verified: true, groups: ['kubeflow-users', 'team-a', 'ml-engineers'] });
    }
    return res.writeHead(404).end();
  };

  const now = Math.floor(Date.now() / 1000);
  // Claims shaped like a Dex/Keycloak ID token, ~1 KB signed (research/perf.md used 982 B).
  const claims = (n, extra = {}) => ({
    email: 'alice@example.com',
    email_verified: true,
    groups: ['kubeflow-users', 'team-a', 'ml-engineers'],
    name: 'Alice Example',
    preferred_username: 'alice',
    azp: AUDIENCE,
    at_hash: 'q3Ia-5mx3ZRiHVkXBYY-mw',
    auth_time: now - 60,
    nonce: `n-${n}`,
    jti: randomUUID(),
    ...extra,
  });
  const sign = (n, alg = 'RS256') =>
    new SignJWT(claims(n))
      .setProtectedHeader({ alg, kid: keys[alg].kid, typ: 'JWT' })
      .setIssuer(issuer)
      .setAudience(AUDIENCE)
      .setSubject('CiQwOGE4Njg0Yi1kYjg4LTRiNzMtOTBhOS0zY2QxNjYxZjU0NjYSBWxvY2Fs')
      .setIssuedAt(now)
      .setExpirationTime(now + 3600)
      .sign(keys[alg].privateKey);

  const token = await sign(0);
  // Pools of distinct tokens, one per kind a selected variant needs (VARIANTS[].needsPool). A forged
  // token is a valid token's header and payload (known kid, unexpired, right iss/aud) with the
  // signature of the next valid token of the same key: well-formed, the right length, wrong.
  const pools = {};
  const needed = ctxNeededPools();
  const signPool = async (alg) => {
    const pool = [];
    for (let i = 1; pool.length < OPTIONS.pool; i += 64) {
      const batch = [];
      for (let j = i; j < i + 64 && pool.length + batch.length < OPTIONS.pool; j++) batch.push(sign(j, alg));
      pool.push(...(await Promise.all(batch)));
    }
    return pool;
  };
  const forge = (valid) => valid.map((t, i) => `${t.slice(0, t.lastIndexOf('.'))}.${valid[(i + 1) % valid.length].split('.')[2]}`);
  const started = Date.now();
  const valid = {};
  for (const alg of ['RS256', 'ES256']) {
    const lower = alg.toLowerCase();
    const kinds = [lower, `forged${alg[0]}${lower.slice(1)}`];
    if (!kinds.some((k) => needed.has(k))) continue;
    valid[alg] = await signPool(alg);
    pools[kinds[0]] = valid[alg];
    pools[kinds[1]] = forge(valid[alg]);
  }
  for (const [kind, tokens] of Object.entries(pools)) {
    if (new Set(tokens).size !== tokens.length) fail(`token pool ${kind} has duplicates`);
    // Round-robin over the pool: a token's reuse distance is pool-1 distinct tokens. It must exceed the
    // LRU capacity (plus the requests in flight) by far, or some requests would hit the cache.
    if (tokens.length < 10 * (OPTIONS.freshCache + OPTIONS.connections)) {
      fail(`POOL=${tokens.length} is too small to guarantee misses with FRESH_CACHE=${OPTIONS.freshCache} and ${OPTIONS.connections} connections`);
    }
    const file = join(WORK, `tokens-${kind}.txt`);
    writeFileSync(file, `${tokens.join('\n')}\n`);
    pools[kind] = { tokens, file };
  }
  if (Object.keys(pools).length) log(`signed ${Object.keys(valid).map((a) => `${valid[a].length} ${a}`).join(' + ')} pool tokens in ${((Date.now() - started) / 1000).toFixed(1)} s (pools: ${Object.keys(pools).join(', ')})`);
  for (const kind of POOL_KINDS) pools[kind] ??= { tokens: [], file: null };

  const session = await sealSession(token);
  const ctx = {
    issuer, jwksUri: `${base}/issuer/jwks`, otlpUrl: `${base}/otlp/v1/traces`, otlpHits, token, pools, keys, claims, now, configFiles: {}, jwksHits, issuerHits, jwksServer, ...session,
    redis: null, redisCookie: null, redisPool: [], redisPoolFile: join(WORK, 'redis-cookies.txt'), redisIssue: null,
  };
  if (ctxNeedsRedis()) {
    ctx.redis = await startRedis({ cpu: OPTIONS.serverCpu, onChild: (child) => live.add(child) });
    log(`redis-server ${ctx.redis.version} on ${ctx.redis.url}, pid ${ctx.redis.pid}, pinned to CPU ${OPTIONS.serverCpu}`);
  }
  for (const variant of selectedVariants()) {
    if (variant.server !== 'authz') continue;
    const file = join(WORK, `config-${variant.id}.json`);
    writeFileSync(file, `${JSON.stringify(variant.config(ctx), null, 2)}\n`);
    ctx.configFiles[variant.id] = file;
  }
  if (ctx.redis) await issueRedisSessions(ctx);
  if (selectedVariants().some((v) => v.id === 'o2p-cookie')) {
    ctx.o2pCookie = await o2pLogin(ctx);
    log(`oauth2-proxy login done: session cookie ${Buffer.byteLength(ctx.o2pCookie)} B Cookie header`);
  }
  return ctx;
}

/**
 * The Redis variants' sessions, issued by the service's own RedisSessionStore (bench/sessions.mjs) into
 * the bench's Redis: one for redis-cached, and for redis-first a pool of REDIS_POOL distinct ones, all
 * alice's, holding the same ID token as the bearer variants (as after a real login).
 */
async function issueRedisSessions(ctx) {
  const started = Date.now();
  const subject = JSON.parse(Buffer.from(ctx.token.split('.')[1], 'base64url').toString()).sub;
  const maker = await createSessionMaker(ROOT, redisConfig(ctx, '0s'), {
    idToken: ctx.token,
    owner: () => ({ userId: 'alice@example.com', issuer: ctx.issuer, subject, sid: undefined }),
  });
  try {
    const first = await maker.make(0);
    ctx.redisCookie = first.cookie;
    ctx.redisHandleBytes = first.valueBytes;
    const wantPool = selectedVariants().some((v) => v.id === 'redis-first') || OPTIONS.profile === 'redis-first';
    const count = wantPool ? OPTIONS.redisPool : 0;
    for (let i = 1; ctx.redisPool.length < count; i += 64) {
      const batch = Array.from({ length: Math.min(64, count - ctx.redisPool.length) }, (_, k) => maker.make(i + k));
      ctx.redisPool.push(...(await Promise.all(batch)).map((m) => m.cookie));
    }
  } finally {
    await maker.close();
  }
  if (new Set(ctx.redisPool).size !== ctx.redisPool.length) fail('Redis session pool has duplicates');
  // Round-robin over the pool: no two of the requests in flight may carry the same session, or the
  // service would open it once for both (one Redis read for two checks).
  if (ctx.redisPool.length > 0 && ctx.redisPool.length < 10 * OPTIONS.connections) {
    fail(`REDIS_POOL=${ctx.redisPool.length} is too small: every request in flight (${OPTIONS.connections}) must carry its own session`);
  }
  writeFileSync(ctx.redisPoolFile, ctx.redisPool.length ? `${ctx.redisPool.join('\n')}\n` : '');
  ctx.redisIssue = { sessions: 1 + ctx.redisPool.length, seconds: (Date.now() - started) / 1000, keys: await ctx.redis.keys(), memory: await ctx.redis.memory() };
  log(`issued ${ctx.redisIssue.sessions} Redis sessions in ${ctx.redisIssue.seconds.toFixed(1)} s (${ctx.redisIssue.keys} keys)`);
}

function selectedVariants() {
  const wanted = process.env.VARIANTS ? process.env.VARIANTS.split(',').map((s) => s.trim()).filter(Boolean) : null;
  if (wanted?.some((id) => id.startsWith('o2p-')) && !OPTIONS.o2pBin) fail('the o2p-* variants need O2P_BIN=/path/to/oauth2-proxy (make oauth2-proxy builds it)');
  if (!wanted) return VARIANTS.filter((v) => v.server !== 'o2p' || OPTIONS.o2pBin);
  const unknown = wanted.filter((id) => !VARIANTS.some((v) => v.id === id));
  if (unknown.length) fail(`unknown VARIANTS ${unknown.join(', ')}; known: ${VARIANTS.map((v) => v.id).join(', ')}`);
  return VARIANTS.filter((v) => wanted.includes(v.id));
}
function ctxNeedsRedis() {
  return selectedVariants().some((v) => v.redis) || VARIANTS.some((v) => v.id === OPTIONS.profile && v.redis);
}
const POOL_KINDS = ['rs256', 'es256', 'forgedRs256', 'forgedEs256'];
/** The token pools the selected variants (and the PROFILE one) cycle through. */
function ctxNeededPools() {
  return new Set([...selectedVariants(), ...VARIANTS.filter((v) => v.id === OPTIONS.profile)].map((v) => v.needsPool).filter(Boolean));
}

// ---------------------------------------------------------------------------------------------------
// oauth2-proxy (O2P_BIN), as research/perf.md's anchor ran it.

const O2P_COOKIE_SECRET = 'bench-o2p-cookie-secret-32bytes!'; // 32 bytes: AES-256 for the session cookie
const O2P_CLIENT_SECRET = 'bench-o2p-client-secret';

/** Starts oauth2-proxy pinned to the server core with GOMAXPROCS=1; resolves once /ping answers 200. */
async function startO2p(ctx, id, { logging = false } = {}) {
  const port = await freePort();
  const args = [
    '-c', String(OPTIONS.serverCpu), OPTIONS.o2pBin,
    '--provider=oidc', `--oidc-issuer-url=${ctx.issuer}`, `--client-id=${AUDIENCE}`, `--client-secret=${O2P_CLIENT_SECRET}`,
    `--cookie-secret=${O2P_COOKIE_SECRET}`, '--cookie-secure=false', '--email-domain=*', '--upstream=static://200',
    '--reverse-proxy', '--set-xauthrequest', '--skip-jwt-bearer-tokens', '--skip-provider-button',
    `--http-address=127.0.0.1:${port}`, `--redirect-url=http://127.0.0.1:${port}/oauth2/callback`,
    ...(logging ? [] : ['--request-logging=false', '--auth-logging=false', '--standard-logging=false']),
  ];
  const child = spawn('taskset', args, { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, GOMAXPROCS: '1' } });
  live.add(child);
  // Its log goes to stdout: both streams are kept, for failure messages.
  let stderr = '';
  child.stdout.on('data', (d) => (stderr += d));
  child.stderr.on('data', (d) => (stderr += d));
  const exited = new Promise((r) => child.once('exit', (code, signal) => r({ code, signal })));
  const stop = async () => {
    child.kill('SIGTERM');
    if ((await Promise.race([exited, sleep(5_000).then(() => null)])) === null) {
      child.kill('SIGKILL');
      await exited;
    }
    live.delete(child);
  };
  const deadline = Date.now() + 15_000;
  let gone = null;
  exited.then((outcome) => (gone = outcome));
  for (;;) {
    if (gone) fail(`${id}: oauth2-proxy exited (${gone.code ?? gone.signal}) before it was ready\n${stderr.slice(-3000)}`);
    const answer = await probe(port, '/ping', { host: '127.0.0.1' }, 1_000).catch(() => null);
    if (answer?.status === 200) break;
    if (Date.now() > deadline) {
      await stop();
      fail(`${id}: oauth2-proxy not ready after 15 s\n${stderr.slice(-3000)}`);
    }
    await sleep(50);
  }
  const affinity = await run('taskset', ['-pc', String(child.pid)]);
  if (!new RegExp(`: ${OPTIONS.serverCpu}\\s*$`).test(affinity.stdout)) fail(`${id}: oauth2-proxy not pinned: ${affinity.stdout.trim()}`);
  return { pid: child.pid, port, metricsPort: null, stderr: () => stderr, stop };
}

/** Cookie name=value pairs from Set-Cookie headers (oauth2-proxy may split a large session in _0, _1 …). */
const cookiePairs = (setCookie) => (setCookie ?? []).map((line) => line.split(';', 1)[0]).filter((pair) => pair.indexOf('=') > 0 && pair.indexOf('=') < pair.length - 1);

/**
 * One real login through oauth2-proxy against the bench issuer: /oauth2/start → the issuer's authorize
 * (answers with a code at once) → /oauth2/callback (oauth2-proxy redeems the code at the token endpoint
 * and verifies the ID token) → its session cookie. Sealed with the fixed cookie secret, so every later
 * oauth2-proxy process of the bench accepts it.
 */
async function o2pLogin(ctx) {
  // With its logs on: a failed login says why in them.
  const server = await startO2p(ctx, 'o2p-login', { logging: true });
  try {
    const start = await probe(server.port, '/oauth2/start?rd=%2F', { host: `127.0.0.1:${server.port}` });
    if (start.status !== 302) fail(`oauth2-proxy login: /oauth2/start answered ${start.status}: ${start.body.slice(0, 300)}`);
    const csrf = cookiePairs(start.headers['set-cookie']);
    const authorize = new URL(start.headers.location);
    const issuerPort = Number(new URL(ctx.issuer).port);
    const auth = await probe(issuerPort, `${authorize.pathname}${authorize.search}`, { host: authorize.host });
    if (auth.status !== 302) fail(`oauth2-proxy login: the issuer's authorize answered ${auth.status}`);
    const callback = new URL(auth.headers.location);
    const done = await probe(server.port, `${callback.pathname}${callback.search}`, { host: `127.0.0.1:${server.port}`, cookie: csrf.join('; ') });
    const session = cookiePairs(done.headers['set-cookie']).filter((pair) => pair.startsWith('_oauth2_proxy') && !pair.startsWith('_oauth2_proxy_csrf'));
    if (done.status !== 302 || session.length === 0) fail(`oauth2-proxy login: callback answered ${done.status} without a session cookie: ${done.body.slice(0, 300)} ${server.stderr().slice(-2000)}`);
    return `theme=dark; ${session.join('; ')}; _ga=GA1.2.123456789.1700000000`;
  } finally {
    await server.stop();
  }
}

// ---------------------------------------------------------------------------------------------------
// Open-loop step: a user's latency at normal load. For each OPEN_LOOP variant, at OPEN_SHARE (50 %) of
// the req/s it reached closed-loop in this run: oha at a fixed rate with latency correction (every
// request's latency counts from when it was due, not from when a free connection sent it), pinned to
// the generator's core, (a) directly against the server and (b) through a real Envoy configured like the
// gateway (src/envoy-config.ts, our ext_authz provider), whose routed upstream is an Envoy
// direct_response 200 (no upstream process: the latency is Envoy + the check).

const OHA_VERSION = '1.16.0';

/** A free TCP port on 127.0.0.1 (bound, read, released). */
function freePort() {
  return new Promise((resolvePromise, reject) => {
    const server = createNetServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolvePromise(port));
    });
  });
}

/** Until something accepts TCP connections on 127.0.0.1:port, or fails after timeoutMs. */
async function acceptingConnections(port, timeoutMs, what) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const accepted = await new Promise((r) => {
      const socket = connect(port, '127.0.0.1');
      socket.once('connect', () => {
        socket.destroy();
        r(true);
      });
      socket.once('error', () => r(false));
    });
    if (accepted) return;
    if (Date.now() > deadline) fail(`${what}: nothing accepts connections on 127.0.0.1:${port} after ${timeoutMs} ms`);
    await sleep(20);
  }
}

/**
 * A real Envoy (one worker, pinned to ENVOY_CPU) in front of the server on `authzPort`: the gateway
 * config the e2e tests use (dist/envoy-config.js gatewayConfig with extAuthzProvider from the service's
 * own config), except that the checked route answers with an Envoy direct_response 200.
 */
async function startGateway(variant, ctx, authzPort) {
  const [{ gatewayConfig, AUTHZ_ROUTES }, { extAuthzProvider }, { parseConfig }] = await Promise.all([
    import(join(ROOT, 'dist/envoy-config.js')), import(join(ROOT, 'dist/envoy-contract.js')), import(join(ROOT, 'dist/config/load.js')),
  ]);
  // The bare server has no config; its provider is the cached-bearer variant's (same header lists).
  const config = parseConfig(variant.server === 'authz' ? variant.config(ctx) : authzConfig(ctx), 'bench config');
  const listenPort = await freePort();
  const gateway = gatewayConfig({
    listenPort,
    authz: { host: '127.0.0.1', port: authzPort },
    upstream: { host: '127.0.0.1', port: 9 },
    provider: extAuthzProvider(config, { service: '127.0.0.1', port: authzPort, timeout: '3s' }),
    authzRoutes: AUTHZ_ROUTES,
  });
  const routes = gateway.static_resources.listeners[0].filter_chains[0].filters[0].typed_config.route_config.virtual_hosts[0].routes;
  const checked = routes.find((r) => r.match.prefix === '/' && r.route?.cluster === 'upstream');
  if (!checked) fail('gateway config: no checked route to the upstream cluster');
  delete checked.route;
  checked.direct_response = { status: 200 };
  const file = join(WORK, `envoy-${variant.id}.json`);
  writeFileSync(file, `${JSON.stringify(gateway, null, 2)}\n`);
  const child = spawn('taskset', ['-c', String(OPTIONS.envoyCpu), OPTIONS.envoyBin, '-c', file, '--use-dynamic-base-id', '-l', 'warning', '--concurrency', '1', '--disable-hot-restart'], {
    cwd: ROOT, stdio: ['ignore', 'ignore', 'pipe'],
  });
  live.add(child);
  let stderr = '';
  child.stderr.on('data', (d) => (stderr += d));
  const exited = new Promise((r) => child.once('exit', (code, signal) => r({ code, signal })));
  const stop = async () => {
    child.kill('SIGTERM');
    if ((await Promise.race([exited, sleep(5_000).then(() => null)])) === null) {
      child.kill('SIGKILL');
      await exited;
    }
    live.delete(child);
  };
  try {
    await Promise.race([acceptingConnections(listenPort, 15_000, 'envoy'), exited.then(({ code, signal }) => fail(`envoy exited (${code ?? signal}) before it listened:\n${stderr.slice(-3000)}`))]);
  } catch (error) {
    await stop();
    throw error;
  }
  return { pid: child.pid, port: listenPort, file, stderr: () => stderr, stop };
}

/** One oha run at `rate` req/s for `seconds`, pinned to the generator's core; its JSON report and CPU. */
async function oha(variant, ctx, port, path, rate, seconds) {
  const headers = variant.headers(ctx);
  const args = ['-c', String(OPTIONS.wrkCpu), OPTIONS.ohaBin, '--no-tui', '--output-format', 'json', '-z', `${seconds}s`, '-q', String(rate), '--latency-correction',
    '-w', '-c', String(OPTIONS.openConnections), '-t', '5s', '--disable-compression', '--host', headers.host];
  for (const [name, value] of Object.entries(headers)) if (name !== 'host') args.push('-H', `${name}: ${value}`);
  args.push(`http://127.0.0.1:${port}${path}`);
  const wrapper = 'taskset "$@" > "$OHA_OUT"; rc=$?; set -- $(sed "s/.*) //" /proc/$$/stat); echo "OHA_CPU_TICKS $((${14} + ${15}))"; exit $rc';
  const out = join(WORK, 'oha-last.json');
  const result = await run('sh', ['-c', wrapper, 'sh', ...args], { env: { OHA_OUT: out }, timeoutMs: (seconds + 30) * 1000 });
  if (result.code !== 0) fail(`${variant.id}: oha failed (exit ${result.code ?? result.signal})\n${result.stdout}\n${result.stderr}`);
  const report = JSON.parse(readFileSync(out, 'utf8'));
  const ticks = Number(/^OHA_CPU_TICKS (\d+)$/m.exec(result.stdout)?.[1] ?? NaN);
  return { report, cpuS: ticks / CLK_TCK };
}

/** The counts of an oha report: answers by status, errors by kind, and the latency percentiles in ms. */
function ohaCounts(report) {
  const statuses = report.statusCodeDistribution ?? {};
  const answered = Object.values(statuses).reduce((a, n) => a + n, 0);
  const errors = report.errorDistribution ?? {};
  const ms = (key) => (report.latencyPercentiles?.[key] ?? NaN) * 1000;
  return { statuses, answered, errors, errorCount: Object.values(errors).reduce((a, n) => a + n, 0), p50Ms: ms('p50'), p90Ms: ms('p90'), p99Ms: ms('p99'), p999Ms: ms('p99.9'), maxMs: (report.summary?.slowest ?? NaN) * 1000 };
}

async function openLoopOnce(variant, ctx, via, directRate) {
  const server = await startServer(variant, ctx);
  let gateway = null;
  let rate = directRate;
  let gatewayMax = null;
  try {
    await checkExpected(variant, ctx, server.port, 'pre-run');
    let port = server.port;
    let path = variant.path;
    if (via === 'envoy') {
      gateway = await startGateway(variant, ctx, server.port);
      port = gateway.port;
      path = variant.path.slice('/authz'.length);
      const answer = await probe(port, path, variant.headers(ctx));
      if (answer.status !== variant.expect.status) fail(`${variant.id} via Envoy: probe answered ${answer.status}, expected ${variant.expect.status}: ${answer.body.slice(0, 300)}`);
      // Envoy shares the generator's core, so the path through it may saturate below the server's own
      // maximum: its closed-loop maximum (wrk as in the rounds, warm-up then OPEN_GATEWAY_PROBE s), and
      // the rate is the share of the smaller of the two.
      const through = { ...variant, path };
      if (OPTIONS.warmup > 0) await wrk(through, ctx, port, OPTIONS.warmup);
      const closed = await wrk(through, ctx, port, OPTIONS.openGatewayProbe);
      const e = closed.errors;
      if (e.connect + e.read + e.write + e.timeout + e.status > 0) fail(`${variant.id} via Envoy: closed-loop run had errors ${JSON.stringify(e)}`);
      gatewayMax = closed.requests / (closed.duration_us / 1e6);
      rate = Math.max(1, Math.round(Math.min(directRate, gatewayMax * OPTIONS.openShare)));
    }
    const before = server.metricsPort ? await decisionCounts(server.metricsPort) : null;
    // Warm-up at the same rate (JIT tier-up, Envoy's connection pool), discarded.
    if (OPTIONS.warmup > 0) await oha(variant, ctx, port, path, rate, OPTIONS.warmup);
    const ticks0 = processTicks(server.pid);
    const envoyTicks0 = gateway ? processTicks(gateway.pid) : 0;
    const cpu0 = cpuTimes(OPTIONS.wrkCpu);
    const t0 = process.hrtime.bigint();
    const { report, cpuS } = await oha(variant, ctx, port, path, rate, OPTIONS.openDuration);
    const wallS = Number(process.hrtime.bigint() - t0) / 1e9;
    const serverCpuS = (processTicks(server.pid) - ticks0) / CLK_TCK;
    const envoyCpuS = gateway ? (processTicks(gateway.pid) - envoyTicks0) / CLK_TCK : 0;
    const cpu1 = cpuTimes(OPTIONS.wrkCpu);
    const counts = ohaCounts(report);
    const problems = [];
    if (counts.errorCount > 0) problems.push(`oha errors ${JSON.stringify(counts.errors)}`);
    const wrong = Object.entries(counts.statuses).filter(([status]) => Number(status) !== variant.expect.status);
    if (wrong.length > 0) problems.push(`answers other than ${variant.expect.status}: ${JSON.stringify(Object.fromEntries(wrong))}`);
    if (server.metricsPort) {
      // Every answer through Envoy was the service's decision, not Envoy's own (a 200 without a check).
      const after = await decisionCounts(server.metricsPort);
      const sum = (c) => Object.entries(c.counts).filter(([k]) => k.startsWith(`${variant.expect.decision}/`)).reduce((a, [, n]) => a + n, 0);
      const other = Object.entries(after.counts).filter(([k, n]) => !k.startsWith(`${variant.expect.decision}/`) && n > 0);
      if (other.length > 0) problems.push(`server decided ${JSON.stringify(Object.fromEntries(other))}`);
      if (sum(after) - sum(before) < counts.answered) problems.push(`server counted ${sum(after) - sum(before)} decisions for ${counts.answered} answers`);
    }
    if (problems.length) fail(`${variant.id} open loop (${via}): unexpected answers:\n  ${problems.join('\n  ')}`);
    const achieved = counts.answered / OPTIONS.openDuration;
    return {
      variant: variant.id, via, rate, achieved, gatewayMax, ...counts, statuses: counts.statuses, errors: counts.errors,
      wallS, serverBusy: serverCpuS / wallS, serverCpuUsPerReq: (serverCpuS * 1e6) / counts.answered,
      envoyBusy: gateway ? envoyCpuS / wallS : null, envoyCpuUsPerReq: gateway ? (envoyCpuS * 1e6) / counts.answered : null,
      ohaBusy: cpuS / wallS, genCoreBusy: 1 - (cpu1.idle - cpu0.idle) / (cpu1.total - cpu0.total),
    };
  } finally {
    await gateway?.stop();
    await server.stop();
  }
}

/** The open-loop step over OPEN_LOOP variants that ran closed-loop; rate = OPEN_SHARE × their median req/s. */
async function openLoopStep(runs, ctx) {
  const results = [];
  for (const id of OPTIONS.openLoop) {
    const variant = VARIANTS.find((v) => v.id === id);
    const mine = runs.filter((r) => r.variant === id);
    if (!variant || mine.length === 0) continue;
    const max = median(mine.map((r) => r.reqPerS));
    const rate = Math.max(1, Math.round(max * OPTIONS.openShare));
    for (const via of ['direct', 'envoy']) {
      const result = await openLoopOnce(variant, ctx, via, rate);
      results.push({ ...result, closedLoopMax: max });
      log(`open loop ${id.padEnd(14)} ${via.padEnd(6)} ${fmtInt(result.rate)} req/s due, ${fmtInt(result.achieved)} answered/s  p50 ${fmt(result.p50Ms, 3)} ms  p99 ${fmt(result.p99Ms, 3)} ms  p99.9 ${fmt(result.p999Ms, 3)} ms  max ${fmt(result.maxMs, 1)} ms  server ${pct(result.serverBusy)}${result.envoyBusy === null ? '' : `  envoy ${pct(result.envoyBusy)}`}  oha ${pct(result.ohaBusy)}`);
    }
  }
  return results;
}

// ---------------------------------------------------------------------------------------------------
// Memory step: the service's RSS after MEMORY_SESSIONS distinct sessions, with each session store.

const agentFor = (connections) => new HttpAgent({ keepAlive: true, maxSockets: connections });

/** One check with a keep-alive agent: the status and the user id the service answered with. */
function check(agent, port, cookie, headers = { host: HOST, cookie, accept: 'application/json' }) {
  return new Promise((resolvePromise, reject) => {
    const req = httpRequest({ host: '127.0.0.1', port, path: API_PATH, method: 'GET', agent, timeout: 30_000, headers }, (res) => {
      res.resume();
      res.on('end', () => resolvePromise({ status: res.statusCode, userId: res.headers['kubeflow-userid'] }));
    });
    req.on('timeout', () => req.destroy(new Error('check timed out after 30 s')));
    req.on('error', reject);
    req.end();
  });
}

/**
 * One mode: a fresh service (pinned like in the rounds, default cache bound and, for Redis, default
 * cacheFor) and, for Redis, a fresh redis-server on the same core. On the other core, MEMORY_WORKERS worker
 * threads issue the sessions with the service's own store code (bench/session-worker.mjs) and the
 * orchestrator checks each one once as soon as it exists (64 at a time), so sealing and the service's
 * unsealing overlap. Then VmRSS and the service's own gauges, and Redis's INFO memory.
 */
async function memoryRun(mode, ctx) {
  const n = OPTIONS.memorySessions;
  const id = `memory-${mode}`;
  let redis = null;
  let server = null;
  const workers = [];
  try {
    // Redis on the generator's core here (in the rounds it shares the service's): with 100k entries in the
    // session cache the service's full GCs on its core took long enough for the sealing workers' Redis
    // commands to time out. The memory figures do not depend on the core.
    if (mode === 'redis') redis = await startRedis({ cpu: OPTIONS.wrkCpu, onChild: (child) => live.add(child) });
    const base = mode === 'redis' ? redisConfig(ctx, undefined, redis.url) : cookieConfig(ctx);
    // Caches raised to hold every session and token (bearer.cacheMaxEntries bounds the session cache
    // and the verified-token cache alike), so the per-entry cost is measured with the caches full;
    // the oidc issuer also accepts bearer tokens (aud = clientId), ES256 ones included.
    const rawConfig = { ...base, oidc: { ...base.oidc, algorithms: ['RS256', 'ES256'] }, bearer: { cacheMaxEntries: memoryCacheBound() } };
    const file = join(WORK, `config-${id}.json`);
    writeFileSync(file, `${JSON.stringify(rawConfig, null, 2)}\n`);
    ctx.configFiles[id] = file;
    server = await startServer({ id, server: 'authz', redis: mode === 'redis' }, ctx, { exposeGc: true });
    // One check of each kind first, so the idle figure includes the code paths' first-use allocations
    // (JIT, JWKS fetched, key imported) and the deltas are the caches' entries.
    await primeServer(server, ctx, mode);
    const idle = { ...processMemory(server.pid), ...(await decisionCounts(server.metricsPort)), gc: await server.gcMemory() };
    const redisIdle = redis ? await redis.memory() : null;

    // The service (and Redis) keep their core; sealing and the checking client get the other one (every
    // thread of this process, and the worker threads inherit it). Undone in `finally`.
    await pinSelf(String(OPTIONS.wrkCpu));
    const queue = [];
    let next = 0;
    let workersDone = 0;
    let valueBytes = NaN;
    let waiting = [];
    const wakeAll = () => {
      const w = waiting;
      waiting = [];
      for (const resolveWait of w) resolveWait();
    };
    const started = Date.now();
    let generatedAt = NaN;
    const workerFailed = new Promise((_, reject) => {
      const share = Math.ceil(n / OPTIONS.memoryWorkers);
      for (let from = 0; from < n; from += share) {
        const worker = new Worker(new URL('./session-worker.mjs', import.meta.url), {
          workerData: { root: ROOT, rawConfig, idToken: ctx.token, issuer: ctx.issuer, from, count: Math.min(share, n - from), parallel: 32, batch: 256 },
        });
        workers.push(worker);
        worker.on('message', (message) => {
          if (message.cookies) queue.push(...message.cookies);
          if (message.done) {
            valueBytes = message.valueBytes;
            if (++workersDone === workers.length) generatedAt = Date.now();
          }
          wakeAll();
        });
        worker.on('error', (error) => reject(new BenchFailure(`${id}: session worker failed: ${error.stack ?? error}`)));
        worker.on('exit', (code) => code !== 0 && reject(new BenchFailure(`${id}: session worker exited with ${code}`)));
      }
    });
    const agent = agentFor(OPTIONS.connections);
    const problems = [];
    let allowed = 0;
    const sender = async () => {
      for (;;) {
        if (next < queue.length) {
          const cookie = queue[next];
          queue[next++] = undefined;
          const answer = await check(agent, server.port, cookie);
          if (answer.status === 200 && answer.userId === 'alice@example.com') allowed++;
          else if (problems.length < 5) problems.push(`${answer.status} (user ${answer.userId})`);
        } else if (workersDone === workers.length && workers.length > 0) {
          return;
        } else {
          await new Promise((resolveWait) => waiting.push(resolveWait));
        }
      }
    };
    await Promise.race([Promise.all(Array.from({ length: OPTIONS.connections }, sender)), workerFailed]);
    const checkedAt = Date.now();
    agent.destroy();
    if (queue.length !== n || allowed !== n) fail(`${id}: ${queue.length} sessions issued, ${allowed} of them allowed, expected ${n}; e.g. ${problems.join(', ')}`);

    const after = { ...processMemory(server.pid), ...(await decisionCounts(server.metricsPort)) };
    after.gc = await server.gcMemory();
    const decided = Object.entries(after.counts);
    if (decided.some(([k, c]) => !k.startsWith('allow/') && c > 0) || decided.reduce((a, [, c]) => a + c, 0) < n) fail(`${id}: server decisions ${JSON.stringify(after.counts)}`);
    if (redis && after.storeReads < n) fail(`${id}: ${after.storeReads} Redis reads for ${n} first checks`);
    const redisAfter = redis ? await redis.memory() : null;
    const tokens = mode === 'cookie' && OPTIONS.memoryTokens > 0 ? await fillBearerCache(server, ctx, after) : null;
    const result = {
      mode,
      sessions: n,
      workers: workers.length,
      generateS: (generatedAt - started) / 1000,
      totalS: (checkedAt - started) / 1000,
      valueBytes,
      idleRssMb: idle.rssKb / 1024,
      rssMb: after.rssKb / 1024,
      hwmMb: after.hwmKb / 1024,
      idleHeapMb: idle.heapUsedBytes / 2 ** 20,
      heapMb: after.heapUsedBytes / 2 ** 20,
      sessionCacheEntries: after.sessionCacheEntries,
      cacheBound: memoryCacheBound(),
      idleGc: idle.gc,
      afterGc: after.gc,
      idleSessionEntries: idle.sessionCacheEntries,
      tokens,
      storeReads: redis ? after.storeReads : null,
      decisions: after.counts,
      redis: redis ? { version: redis.version, keys: await redis.keys(), idleUsedMemory: redisIdle.used_memory, usedMemory: redisAfter.used_memory, usedMemoryRss: redisAfter.used_memory_rss } : null,
    };
    log(`memory ${mode}: ${n} sessions issued in ${fmt(result.generateS, 1)} s and checked by ${fmt(result.totalS, 1)} s; RSS ${fmt(result.idleRssMb, 0)} → ${fmt(result.rssMb, 0)} MB (peak ${fmt(result.hwmMb, 0)}), heap ${fmt(result.heapMb, 0)} MB, session cache ${result.sessionCacheEntries}${result.redis ? `, Redis used_memory ${fmt(result.redis.usedMemory / 2 ** 20, 1)} MB, ${result.redis.keys} keys` : ''}`);
    return result;
  } finally {
    await Promise.all(workers.map((w) => w.terminate()));
    await pinSelf(OWN_CPUS);
    await server?.stop();
    await redis?.stop();
  }
}

/** bearer.cacheMaxEntries in the memory step: large enough for every session and every token. */
const memoryCacheBound = () => Math.max(OPTIONS.memorySessions, OPTIONS.memoryTokens, 1);

/** Before the idle reading (cookie mode): one session check and one bearer check, each answered 200. */
async function primeServer(server, ctx, mode) {
  const agent = agentFor(1);
  try {
    // Redis mode: the step's Redis is empty, so the first issued session is its first check instead.
    if (mode !== 'cookie') return;
    const answers = [
      await check(agent, server.port, ctx.sessionCookie),
      await check(agent, server.port, null, { host: HOST, authorization: `Bearer ${ctx.token}` }),
    ];
    if (answers.some((a) => a.status !== 200)) fail(`memory-${mode}: priming checks answered ${answers.map((a) => a.status).join(', ')}`);
  } finally {
    agent.destroy();
  }
}

/**
 * Memory step, after the sessions (cookie store): MEMORY_TOKENS distinct valid bearer tokens, each checked
 * once (CONNECTIONS at a time from the generator's core) and so verified and cached. ES256 (signing RS256 on the
 * generator's core would take minutes), signed here with node:crypto right before each is sent, with the
 * claims of the rounds' tokens (distinct jti and nonce). Then the service's memory after a full GC.
 */
async function fillBearerCache(server, ctx, before) {
  const n = OPTIONS.memoryTokens;
  const key = KeyObject.from(ctx.keys.ES256.privateKey);
  const header = Buffer.from(JSON.stringify({ alg: 'ES256', kid: ctx.keys.ES256.kid, typ: 'JWT' })).toString('base64url');
  const subject = JSON.parse(Buffer.from(ctx.token.split('.')[1], 'base64url').toString()).sub;
  const make = (i) => {
    const payload = { ...ctx.claims(`m-${i}`), iss: ctx.issuer, aud: AUDIENCE, sub: subject, iat: ctx.now, exp: ctx.now + 3600 };
    const input = `${header}.${Buffer.from(JSON.stringify(payload)).toString('base64url')}`;
    return `${input}.${cryptoSign('sha256', Buffer.from(input), { key, dsaEncoding: 'ieee-p1363' }).toString('base64url')}`;
  };
  await pinSelf(String(OPTIONS.wrkCpu));
  const agent = agentFor(OPTIONS.connections);
  const started = Date.now();
  let next = 0;
  let allowed = 0;
  let tokenBytes = 0;
  const problems = [];
  try {
    const sender = async () => {
      while (next < n) {
        const token = make(next++);
        tokenBytes = token.length;
        const answer = await check(agent, server.port, null, { host: HOST, authorization: `Bearer ${token}` });
        if (answer.status === 200 && answer.userId === 'alice@example.com') allowed++;
        else if (problems.length < 5) problems.push(`${answer.status} (user ${answer.userId})`);
      }
    };
    await Promise.all(Array.from({ length: OPTIONS.connections }, sender));
  } finally {
    agent.destroy();
    await pinSelf(OWN_CPUS);
  }
  const seconds = (Date.now() - started) / 1000;
  if (allowed !== n) fail(`memory-cookie: ${allowed} of ${n} bearer tokens allowed; e.g. ${problems.join(', ')}`);
  const after = { ...processMemory(server.pid), ...(await decisionCounts(server.metricsPort)) };
  after.gc = await server.gcMemory();
  if (after.tokenCacheEntries - before.tokenCacheEntries < 0.99 * n) fail(`memory-cookie: token cache grew by ${after.tokenCacheEntries - before.tokenCacheEntries} entries for ${n} tokens`);
  const result = {
    tokens: n, tokenBytes, seconds,
    rssMb: after.rssKb / 1024, hwmMb: after.hwmKb / 1024, heapMb: after.heapUsedBytes / 2 ** 20,
    tokenCacheEntriesBefore: before.tokenCacheEntries, tokenCacheEntries: after.tokenCacheEntries, gc: after.gc,
  };
  log(`memory bearer: ${n} tokens checked in ${fmt(seconds, 1)} s; RSS ${fmt(result.rssMb, 0)} MB (after GC ${fmt(after.gc.rssKb / 1024, 0)} MB), token cache ${after.tokenCacheEntries}`);
  return result;
}

/** The CPUs this process may use as started (restored after the memory step). */
const OWN_CPUS = /^Cpus_allowed_list:\s*(\S+)$/m.exec(readFileSync('/proc/self/status', 'utf8'))[1];

/** Sets the CPU affinity of every thread of this process (taskset -a). */
async function pinSelf(cpuList) {
  const result = await run('taskset', ['-a', '-pc', cpuList, String(process.pid)]);
  if (result.code !== 0) fail(`taskset -a -pc ${cpuList} ${process.pid}: ${result.stderr}`);
}

// ---------------------------------------------------------------------------------------------------
// Profile: top self-time frames of a .cpuprofile.

function summarizeProfile(file, top = 25) {
  const profile = JSON.parse(readFileSync(file, 'utf8'));
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const self = new Map();
  let total = 0;
  // timeDeltas[i] is the time before sample i; attribute it to sample i-1's node (the one running).
  for (let i = 1; i < profile.samples.length; i++) {
    const node = byId.get(profile.samples[i - 1]);
    const dt = profile.timeDeltas[i];
    const cf = node.callFrame;
    const where = cf.url ? `${cf.url.replace(`file://${ROOT}/`, '').replace(/^node:/, 'node:')}:${cf.lineNumber + 1}` : '';
    const key = `${cf.functionName || '(anonymous)'}${where ? `  ${where}` : ''}`;
    self.set(key, (self.get(key) ?? 0) + dt);
    total += dt;
  }
  const rows = [...self.entries()].sort((a, b) => b[1] - a[1]).slice(0, top);
  return { totalMs: total / 1000, rows: rows.map(([frame, us]) => ({ frame, ms: us / 1000, share: us / total })) };
}

// ---------------------------------------------------------------------------------------------------
// Report.

function machineInfo(wrkVersion) {
  const cpuinfo = readFileSync('/proc/cpuinfo', 'utf8');
  return {
    nproc: cpus().length,
    cpuModel: /^model name\s*:\s*(.*)$/m.exec(cpuinfo)?.[1] ?? 'unknown',
    node: process.version,
    wrk: wrkVersion,
    kernel: readFileSync('/proc/sys/kernel/osrelease', 'utf8').trim(),
  };
}

const fmtInt = (n) => (Number.isFinite(n) ? Math.round(n).toLocaleString('en-US') : 'n/a');
const fmt = (n, d) => (Number.isFinite(n) ? n.toFixed(d) : 'n/a');
const pct = (n) => (Number.isFinite(n) ? `${Math.round(n * 100)} %` : 'n/a');

/**
 * Issue 13's target for the hostile header: its server CPU per request within 2x a normal cookie check's,
 * as the median of per-round ratios (both measured in the same round), or null without both variants.
 */
function hostileCookieTarget(runs) {
  const cookieByRound = new Map(runs.filter((r) => r.variant === 'cookie-cached').map((r) => [r.round, r.serverCpuUsPerReq]));
  const ratios = runs.filter((r) => r.variant === 'cookie-hostile').map((r) => r.serverCpuUsPerReq / cookieByRound.get(r.round)).filter(Number.isFinite);
  if (ratios.length === 0) return null;
  return { ratio: median(ratios), min: Math.min(...ratios), max: Math.max(...ratios) };
}

function hostileCookieLine(runs) {
  const target = hostileCookieTarget(runs);
  if (target === null) return '';
  return `Target: the 59 KB hostile Cookie costs ≤ 2× the server CPU of a normal cookie check — **${target.ratio <= 2 ? 'met' : 'NOT met'}** (median ${fmt(target.ratio, 2)}×, rounds ${fmt(target.min, 2)}–${fmt(target.max, 2)}×).`;
}

/** Median of per-round ratios a/b of one field between two variants measured in the same rounds. */
function perRoundRatio(runs, idA, idB, field) {
  const byRound = new Map(runs.filter((r) => r.variant === idB).map((r) => [r.round, r[field]]));
  const ratios = runs.filter((r) => r.variant === idA).map((r) => r[field] / byRound.get(r.round)).filter(Number.isFinite);
  if (ratios.length === 0) return null;
  return { ratio: median(ratios), min: Math.min(...ratios), max: Math.max(...ratios) };
}

/**
 * Issue 17's targets, each only when the variants it needs ran: cached bearer and cookie ≥ 0.75 of bare;
 * a forged signature costs ≤ a first-seen valid token (server CPU per request, same algorithm, same
 * round); first-seen RS256/ES256 ≥ 2× oauth2-proxy's bearer check per CPU-second (same round).
 */
function targetLines(summary, runs) {
  const lines = [];
  const range = (r, d) => `median ${fmt(r.ratio, d)}, rounds ${fmt(r.min, d)}–${fmt(r.max, d)}`;
  const verdict = (ok) => (ok ? 'met' : 'NOT met');
  for (const [id, what] of [['bearer-cached', 'cached bearer'], ['cookie-cached', 'session cookie (cached)']]) {
    const s = summary.find((x) => x.id === id);
    if (s && Number.isFinite(s.ratio)) lines.push({ id, met: s.ratio >= 0.75, text: `Target: ${what} ≥ 0.75 of bare node:http — ${verdict(s.ratio >= 0.75)} (${range({ ratio: s.ratio, min: s.ratioMin, max: s.ratioMax }, 3)}).` });
  }
  for (const [forged, fresh, alg] of [['bearer-forged', 'bearer-fresh', 'RS256'], ['bearer-forged-es256', 'bearer-fresh-es256', 'ES256']]) {
    const r = perRoundRatio(runs, forged, fresh, 'serverCpuUsPerReq');
    if (r) lines.push({ id: forged, met: r.ratio <= 1, text: `Target: a forged ${alg} signature costs ≤ a first-seen valid ${alg} token (server CPU µs/req, forged ÷ valid) — ${verdict(r.ratio <= 1)} (${range(r, 2)}).` });
  }
  for (const [fresh, alg] of [['bearer-fresh', 'RS256'], ['bearer-fresh-es256', 'ES256']]) {
    // Requests per CPU-second = 1 / CPU per request, so ours ÷ oauth2-proxy's = its µs/req ÷ ours.
    const r = perRoundRatio(runs, 'o2p-bearer', fresh, 'serverCpuUsPerReq');
    if (r) lines.push({ id: fresh, met: r.ratio >= 2, text: `Target: a first-seen ${alg} token ≥ 2× oauth2-proxy's bearer check per CPU-second — ${verdict(r.ratio >= 2)} (${range(r, 2)}×; oauth2-proxy's row verifies the RS256 token).` });
  }
  return lines;
}

function summarize(runs, variants) {
  const bareByRound = new Map(runs.filter((r) => r.variant === 'bare').map((r) => [r.round, r.reqPerS]));
  return variants.map((variant) => {
    const mine = runs.filter((r) => r.variant === variant.id);
    const ratios = mine.map((r) => r.reqPerS / bareByRound.get(r.round)).filter(Number.isFinite);
    return {
      id: variant.id,
      label: variant.label,
      expect: variant.expect.status,
      runs: mine.length,
      reqPerS: median(mine.map((r) => r.reqPerS)),
      reqPerSMin: Math.min(...mine.map((r) => r.reqPerS)),
      reqPerSMax: Math.max(...mine.map((r) => r.reqPerS)),
      ratio: median(ratios),
      ratioMin: ratios.length ? Math.min(...ratios) : NaN,
      ratioMax: ratios.length ? Math.max(...ratios) : NaN,
      p50Ms: median(mine.map((r) => r.p50Ms)),
      p99Ms: median(mine.map((r) => r.p99Ms)),
      cpuUs: median(mine.map((r) => r.serverCpuUsPerReq)),
      redisCpuUs: variant.redis ? median(mine.map((r) => r.redisCpuUsPerReq)) : null,
      rssMb: median(mine.map((r) => r.rssMb)),
      serverBusy: median(mine.map((r) => r.serverBusy)),
      wrkCoreBusy: median(mine.map((r) => r.wrkCoreBusy)),
    };
  });
}

function table(summary) {
  const lines = [
    '| variant | expect | req/s (median) | vs bare (median, min–max) | p50 ms | p99 ms | server CPU µs/req | req per CPU-second | Redis CPU µs/req | RSS MB | server core busy | wrk core busy |',
    '|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|',
  ];
  for (const s of summary) {
    const ratio = s.id === 'bare' ? '1.00' : Number.isFinite(s.ratio) ? `${fmt(s.ratio, 3)} (${fmt(s.ratioMin, 3)}–${fmt(s.ratioMax, 3)})` : 'n/a';
    lines.push(`| ${s.label} | ${s.expect} | ${fmtInt(s.reqPerS)} | ${ratio} | ${fmt(s.p50Ms, 2)} | ${fmt(s.p99Ms, 2)} | ${fmt(s.cpuUs, 1)} | ${fmtInt(1e6 / s.cpuUs)} | ${s.redisCpuUs === null ? '–' : fmt(s.redisCpuUs, 1)} | ${fmt(s.rssMb, 0)} | ${pct(s.serverBusy)} | ${pct(s.wrkCoreBusy)} |`);
  }
  return lines.join('\n');
}

function perRoundTable(runs, variants) {
  const rounds = [...new Set(runs.map((r) => r.round))].sort((a, b) => a - b);
  const lines = [`| variant | ${rounds.map((r) => `round ${r} req/s (µs/req)`).join(' | ')} |`, `|---|${rounds.map(() => '---:').join('|')}|`];
  for (const v of variants) {
    const cells = rounds.map((round) => {
      const r = runs.find((x) => x.round === round && x.variant === v.id);
      return r ? `${fmtInt(r.reqPerS)} (${fmt(r.serverCpuUsPerReq, 1)}${v.redis ? ` + Redis ${fmt(r.redisCpuUsPerReq, 1)}` : ''})${r.serverBusy < SATURATED ? ` ⚠ ${fmt(r.serverBusy * 100, 1)} % busy` : ''}` : '–';
    });
    lines.push(`| ${v.id} | ${cells.join(' | ')} |`);
  }
  return lines.join('\n');
}

function unsaturatedNote(runs) {
  const low = runs.filter((r) => r.serverBusy < SATURATED);
  // Clamped at 0: jiffy rounding makes an idle machine read a few hundredths of a core below 0.
  const others = runs.map((r) => Math.max(0, r.otherCores)).filter(Number.isFinite);
  const foreign = others.length ? `CPU used by other processes on the machine during the measured runs: ${fmt(Math.min(...others), 2)}–${fmt(Math.max(...others), 2)} cores (median ${fmt(median(others), 2)}).` : '';
  if (low.length === 0) return `\nEvery server sat at ≥ ${pct(SATURATED)} of its core during its measured run. ${foreign}\n`;
  return `\n${foreign}\n\n**Not saturated:** ${low.map((r) => `round ${r.round} ${r.variant} (${fmt(r.serverBusy * 100, 1)} % busy, wrk core ${pct(r.wrkCoreBusy)}, other processes ${fmt(Math.max(0, r.otherCores), 2)} cores)`).join('; ')}.
In such a run the server waited on the generator (or the machine was noisy), so its req/s is too low;
when that run is \`bare\`, the ratios of its round are overstated. Re-run (or raise ROUNDS) before
drawing conclusions from those rounds.
`;
}

function writeResults({ machine, startedAt, finishedAt, runs, discarded, variants, ctx, profile, memory = [], openLoop = [] }) {
  const summary = summarize(runs, variants);
  const tokenBytes = Buffer.byteLength(ctx.token);
  const rsPool = ctx.pools.rs256.tokens;
  const poolRange = (kind) => {
    const lengths = ctx.pools[kind].tokens.map((t) => t.length);
    return lengths.length ? `${Math.min(...lengths)}–${Math.max(...lengths)} B` : 'n/a';
  };
  const decisionsSeen = runs
    .filter((r) => r.decisions)
    .map((r) => `round ${r.round} ${r.variant}: ${Object.entries(r.decisions).map(([k, n]) => `${k}=${n}`).join(', ')}; token cache entries ${r.tokenCacheEntries ?? 'n/a'}${VARIANTS.find((v) => v.id === r.variant)?.redis ? `; session cache entries ${r.sessionCacheEntries ?? 'n/a'}; Redis reads ${r.storeReads ?? 'n/a'}` : ''}`);
  const redisIdle = !ctx.redis ? [] : runs.filter((r) => !VARIANTS.find((v) => v.id === r.variant)?.redis && Number.isFinite(r.redisCpuS));
  const firstRate = summary.find((s) => s.id === 'redis-first')?.reqPerS;
  // What each variant is, for those in this run.
  const notes = {
    'bare': `- **bare**: \`bench/server-bare.mjs\`, node:http answering 200 with \`content-length: 0\`. Same request
  bytes as the cached bearer variant (Host + ${tokenBytes} B bearer JWT).`,
    'bearer-cached': `- **bearer-cached**: \`GET ${API_PATH}\`, Host \`${HOST}\`,
  one valid RS256 token (${tokenBytes} B; iss = the bench issuer, aud \`${AUDIENCE}\`, exp in 1 h, email + groups claims).
  The matched rule (\`api\`, 5th of 5, \`authenticated\`) sits behind four others. After the probe the
  token is answered from the verified-token cache.`,
    'bearer-traced': `- **bearer-traced**: bearer-cached with \`tracing.enabled\` and \`sampleRatio: 1\` (no \`traceparent\` in the
  request, so every check starts a sampled trace): one \`check\` span per request, batched and exported over OTLP/HTTP
  to a receiver in the orchestrator (\`${ctx.otlpHits.exports}\` exports, \`${Math.round(ctx.otlpHits.bytes / 1024 / 1024)}\` MiB in the whole run). Every other
  row runs with tracing off, the default: the service then loads no OpenTelemetry module and the check handler is the
  untraced function itself, so their figures are the "off" cost.`,
    'bearer-fresh': `- **bearer-fresh**: same URL, a different valid token on every request: a pool of ${rsPool.length.toLocaleString('en-US')} distinct tokens
  (${poolRange('rs256')}, distinct \`jti\`/\`nonce\`), signed once by the orchestrator into \`bench/.work/tokens-rs256.txt\`,
  which \`bench/bearer-fresh.lua\` cycles through in order. The server runs with
  \`bearer.cacheMaxEntries: ${OPTIONS.freshCache}\`. **Why every request misses:** with \`-t1\` there is a single Lua
  state generating requests, so the sequence is strictly round-robin over the pool; a token comes back
  only after ${(rsPool.length - 1).toLocaleString('en-US')} other distinct tokens, and the cache is an LRU of ${OPTIONS.freshCache} entries,
  so it has always been evicted by then (reuse distance ${(rsPool.length - 1).toLocaleString('en-US')} ≫ capacity ${OPTIONS.freshCache}). Every
  request therefore runs the full jose \`jwtVerify\` (RS256, WebCrypto on the pinned libuv threadpool).
  The server CPU per request in the table (vs bearer-cached) confirms it, and the token-cache gauge
  read after each run sits at its bound (below).`,
    'bearer-fresh-es256': `- **bearer-fresh-es256**: as bearer-fresh, with a pool of ${ctx.pools.es256.tokens.length.toLocaleString('en-US')} distinct ES256 tokens (P-256 key, its own
  \`kid\` in the same JWKS; same claims, ${poolRange('es256')}), \`bench/.work/tokens-es256.txt\`: every request runs jose's ES256 verify.`,
    'bearer-forged': `- **bearer-forged**: what a flood of forged tokens costs: a pool of ${ctx.pools.forgedRs256.tokens.length.toLocaleString('en-US')} distinct tokens, each the
  header and payload of one valid RS256 token of the pool above (known \`kid\`, right \`iss\`/\`aud\`, unexpired)
  followed by the signature of the *next* valid token (well-formed, the right length, wrong), cycled like
  bearer-fresh with \`bearer.cacheMaxEntries: ${OPTIONS.freshCache}\` (the service also remembers failures, so the pool keeps every
  request a first sight) → 401, counted by the service as \`unauthorized\`/\`bad_signature\` (checked after every run).`,
    'bearer-forged-es256': `- **bearer-forged-es256**: the same with the ES256 pool → 401.`,
    'cookie-cached': `- **cookie-cached**: same URL, a \`Cookie\` header with the session cookie (${ctx.sessionBytes.toLocaleString('en-US')} B sealed value) between
  two other cookies. The session holds the bearer variants' ID token and a refresh token; it is sealed by
  the service's own \`CookieSessionStore\` from \`dist/\` with a cookie secret written for the bench, and
  \`session.revalidateAfter: 2h\` keeps the service from refreshing it (no IdP runs). After the probe the
  session is answered from the session cache.`,
    'redis-cached': `- **redis-cached**: as cookie-cached, with \`session.store: redis\`. The session is issued into the bench's Redis
  by the service's own \`RedisSessionStore\` (\`redisStoreFromConfig\` from \`dist/\`, with the config and
  cookie secret the service reads, then \`issue(session, [], true, owner)\`, as a login does); the cookie is
  its signed handle (${ctx.redisHandleBytes ?? 'n/a'} B). \`session.redis.cacheFor: ${REDIS_CACHED_FOR}\` (the default is 5s, the cap 5m) is longer than a
  run's probe, warm-up and measured run (~${OPTIONS.warmup + OPTIONS.duration + 2} s), so every check after the first probe is a memory hit:
  the service counted exactly one Redis read per run (below).`,
    'redis-first': `- **redis-first**: what the first check of a session on a replica costs: \`session.redis.cacheFor: 0\`, so
  the service trusts no read and **every check reads Redis** (handle signature, \`GET\`, Iron unseal,
  identity), and a pool of ${ctx.redisPool.length.toLocaleString('en-US')} distinct sessions (issued like redis-cached's, all alice's),
  cycled round-robin by \`bench/cookie-pool.lua\`. The pool is needed as well: the service opens
  concurrent checks of one cookie once (single-flight per cookie, \`src/authn/session.ts\`), so with one
  cookie and ${OPTIONS.connections} requests in flight one Redis read would answer many checks; round-robin over
  ${ctx.redisPool.length.toLocaleString('en-US')} sessions, no two requests in flight carry the same one. A check's code path is a
  first check's under any cacheFor; only the expiry of the cache entry it leaves behind differs. (The
  alternative, sessions used once each, would need req/s × ${OPTIONS.warmup + OPTIONS.duration} s × ${OPTIONS.rounds} rounds${firstRate ? ` ≈ ${fmtInt(firstRate * (OPTIONS.warmup + OPTIONS.duration) * OPTIONS.rounds)}` : ''}
  sessions sealed before the rounds, more on a faster machine; with cacheFor 0 the pool is fixed.) The
  Redis read count per run (below) is at least the number of checks. The sessions were issued in ${ctx.redisIssue ? fmt(ctx.redisIssue.seconds, 1) : 'n/a'} s; Redis held
  ${ctx.redisIssue ? `${ctx.redisIssue.keys.toLocaleString('en-US')} keys, used_memory ${fmt(ctx.redisIssue.memory.used_memory / 2 ** 20, 1)} MB` : 'n/a'} during the rounds.`,
    'bare-hostile': `- **bare-hostile**: bare node:http sent issue 13's 59 KB Cookie header (\`oidc_authz= \` repeated): what
  parsing that header costs Node alone.`,
    'cookie-hostile': `- **cookie-hostile**: the service sent the same header → 401 (\`session_invalid\`).`,
    'o2p-bearer': `- **o2p-bearer** (only with \`O2P_BIN\`): oauth2-proxy v7.8.1 as research/perf.md's anchor ran it: \`GOMAXPROCS=1\`, pinned to
  core ${OPTIONS.serverCpu} like the service; \`--provider=oidc\` with discovery from the bench's issuer on 127.0.0.1 (the same
  keys and JWKS; the issuer also serves a minimal code flow), \`--skip-jwt-bearer-tokens\`, \`--email-domain=*\`,
  \`--upstream=static://200\`, \`--reverse-proxy\`, \`--set-xauthrequest\`, a fixed 32-byte \`--cookie-secret\`, request,
  auth and standard logging off. \`GET /oauth2/auth\` with the cached-bearer variant's token → 202. oauth2-proxy
  has no verification cache: it verifies the RS256 signature on every request, so this row compares with
  bearer-fresh (first-seen) per CPU-second, and with bearer-cached as what a cache buys.`,
    'o2p-cookie': `- **o2p-cookie** (only with \`O2P_BIN\`): its own session cookie (${ctx.o2pCookie ? `${Buffer.byteLength(ctx.o2pCookie).toLocaleString('en-US')} B Cookie header with the two other cookies` : 'n/a'}), minted once per
  bench by one real login: \`/oauth2/start\` → the issuer's authorize (answers with a code) → \`/oauth2/callback\`
  (oauth2-proxy redeems the code at the token endpoint and verifies the ID token) → its \`_oauth2_proxy\`
  cookie, valid in every later process (same cookie secret). \`GET /oauth2/auth\` → 202. Issuer requests during
  the bench: ${Object.entries(ctx.issuerHits).map(([k, v]) => `${k} ${v}`).join(', ')} (discovery at each oauth2-proxy start; one login).`,
    'bearer-forbidden': `- **bearer-forbidden**: \`GET ${ADMIN_PATH}\`, the cached token; the \`admin\` rule requires group
  \`bench-admins\`, which the token lacks → 403 with a JSON body.`,
  };
  const md = `# Check endpoint load benchmark

Generated by \`make bench\` (bench/run.sh → bench/orchestrate.mjs). Overwritten on every run; the raw
per-round numbers are in \`bench/.work/\` (git-ignored). Absolute req/s vary a lot between runs on this
shared machine (research/perf.md: 38k–67k req/s for the same bare server); compare the **vs bare** ratios,
which are taken within a round.

- Date: ${startedAt.toISOString()} (finished ${finishedAt.toISOString()})
- Machine: ${machine.nproc} CPUs, ${machine.cpuModel}, Linux ${machine.kernel}
- Node ${machine.node}; ${machine.wrk}
- Settings: ${OPTIONS.rounds} rounds × ${variants.length} variants, ${OPTIONS.warmup} s warm-up + ${OPTIONS.duration} s measured, wrk -t1 -c${OPTIONS.connections}

## Results

${table(summary)}

${targetLines(summary, runs).map((t) => `${t.text.replace(/^(Target: [^—]*— )(met|NOT met)/, '$1**$2**')}  `).join('\n')}

${hostileCookieLine(runs)}

Per round (req/s, server CPU µs/req in brackets; ⚠ = server below ${pct(SATURATED)} of its core):

${perRoundTable(runs, variants)}
${unsaturatedNote(runs)}
${discarded.length ? `Redone because other processes took CPU during the run (the first attempt is kept in the raw JSON as \`discarded\`): ${discarded.map((d) => `round ${d.round} ${d.variant} (${fmt(Math.max(0, d.otherCores), 2)} cores)`).join('; ')}.\n` : ''}
## Method

As prescribed in research/perf.md:

- Server: a fresh process per run (\`taskset -c ${OPTIONS.serverCpu} node …\`, which pins the whole process: main
  thread, libuv threadpool, GC threads), listening on 127.0.0.1. Generator: \`taskset -c ${OPTIONS.wrkCpu} wrk -t1 -c${OPTIONS.connections} --latency\`.
- Per run: a probe request with the same URL and headers must answer the expected status (and, for 200s
  from the service, carry \`kubeflow-userid\`), else the bench stops; a ${OPTIONS.warmup} s wrk warm-up run on the same
  process, discarded (JIT tier-up); a probe again; then the ${OPTIONS.duration} s measured run.
- Rounds are interleaved (${variants.map((v) => v.id).join(', ')}, then again); every figure is the median over rounds.
  "vs bare" is the median of per-round ratios to the bare server measured in the same round, with the
  min–max over rounds.
- req/s, p50 and p99 come from wrk (closed loop, 64 in flight: latencies are queueing at saturation,
  not service time). Server CPU µs/req = Δ(utime+stime) of the server process from /proc/PID/stat over
  the measured run ÷ requests wrk completed. RSS = VmRSS from /proc/PID/status right after the measured
  run. "Server core busy" = server CPU time ÷ wall time (should be ≥ 97 %, or the generator is the
  limit); "wrk core busy" = share of core ${OPTIONS.wrkCpu} not idle, from /proc/stat.
- Zero unexpected answers, checked after every run: wrk reported no socket errors; for 200 variants no
  response ≥ 400, for the 401 and 403 variants every response was ≥ 400 (wrk counts them) **and** the service's
  own \`oidc_authz_checks_total\` counters (scraped from its metrics port after the run) show only the
  expected decision (\`allow\`, \`unauthorized\`/\`bad_signature\` for the forged tokens, \`forbidden\`: 200, 401, 403),
  at least as many as wrk received. (oauth2-proxy has no such counters: only wrk's counts.)
- "req per CPU-second" = 10⁶ ÷ server CPU µs/req: how many checks one core's second of the server's CPU
  pays for, the measure that compares servers whatever the load (research/perf.md's oauth2-proxy anchor).
- Targets (issue 17) are computed in the run from per-round ratios (both variants in the same round):
  cached bearer and cookie ≥ 0.75 of bare (req/s); a forged signature ≤ a first-seen valid token of the
  same algorithm (server CPU µs/req; the forged pool is as large as the valid one, so both are first sights);
  first-seen RS256/ES256 ≥ 2× oauth2-proxy's bearer check per CPU-second (only when O2P_BIN is given).
- The service runs from \`dist/\` with production metrics (\`createMetrics()\`, default process metrics on)
  and \`silentLogger\`. In production at log level \`info\`, each 403 also writes one JSON log line; that
  cost is not in the 403 row.
${ctx.redis ? `- Redis (the \`redis-*\` rows): one \`redis-server\` ${ctx.redis.version} (Debian's) for all rounds, started by the
  bench on 127.0.0.1 and a free port with \`--save '' --appendonly no\`, **pinned to core ${OPTIONS.serverCpu} with the service**
  (\`taskset -c ${OPTIONS.serverCpu}\`): Redis is part of the server side's cost, and core ${OPTIONS.wrkCpu} is the generator's. So the
  req/s of those rows pay for the service and Redis on one core; in production Redis runs on other
  hardware, and a replica's throughput would be higher by about Redis's share. **Redis CPU µs/req** =
  Δ(utime+stime) of the redis-server process over the measured run ÷ requests, apart from the service's
  own µs/req; "server core busy" of those rows counts both. After every run the service's own count of
  Redis reads (\`oidc_authz_session_store_operations_total{op="read"}\`) is checked: exactly 1 (the first
  probe) for redis-cached, at least one per answered check for redis-first, no failed read. While the
  other variants ran, Redis sat idle: ${redisIdle.length ? `at most ${fmt(Math.max(...redisIdle.map((r) => r.redisCpuS)) * 1000, 0)} ms of its CPU in one measured run` : 'n/a'}.
` : ''}
## Variants

${variants.map((v) => notes[v.id]).join('\n')}

JWKS: served by the orchestrator on 127.0.0.1 (\`${ctx.jwksUri}\`), fetched ${ctx.jwksHits.count} times in total
for ${[...runs, ...discarded].filter((r) => r.variant.startsWith('bearer-')).length + (profile && profile.variant.startsWith('bearer-') ? 1 : 0)} processes of the bearer variants (once per process; its first request is the probe, never a measured
one; the session variants verify no token).

Server decisions per run (its \`oidc_authz_checks_total\` and \`oidc_authz_token_cache_entries\` after the
measured run; the counts include the probes and the warm-up run):

${decisionsSeen.map((l) => `- ${l}`).join('\n')}
${openLoop.length ? openLoopSection(openLoop, machine) : ''}${memory.length ? memorySection(memory, runs) : ''}${profile ? `
## CPU profile (${profile.variant}, one extra ${OPTIONS.duration} s run under \`node --cpu-prof\`, not in the table)

Profile: \`${profile.file.replace(`${ROOT}/`, '')}\`, ${fmt(profile.totalMs, 0)} ms sampled. Top self-time frames:

| self % | self ms | frame |
|---:|---:|---|
${profile.rows.map((r) => `| ${fmt(r.share * 100, 1)} | ${fmt(r.ms, 0)} | \`${r.frame}\` |`).join('\n')}
` : ''}`;
  writeFileSync(join(BENCH_DIR, 'RESULTS.md'), md);
  return summary;
}

function openLoopSection(results, machine) {
  const rows = results.map((r) => `| ${r.variant} | ${r.via === 'direct' ? 'direct' : 'through Envoy'} | ${fmtInt(r.closedLoopMax)}${r.gatewayMax === null ? '' : ` (through Envoy: ${fmtInt(r.gatewayMax)})`} | ${fmtInt(r.rate)} | ${fmtInt(r.achieved)}${r.achieved < 0.97 * r.rate ? ' ⚠' : ''} | ${fmt(r.p50Ms, 3)} | ${fmt(r.p90Ms, 3)} | ${fmt(r.p99Ms, 3)} | ${fmt(r.p999Ms, 3)} | ${fmt(r.maxMs, 2)} | ${pct(r.serverBusy)} | ${r.envoyBusy === null ? '–' : `${pct(r.envoyBusy)} (${fmt(r.envoyCpuUsPerReq, 1)} µs/req)`} | ${pct(r.ohaBusy)} | ${pct(r.genCoreBusy)} |`);
  const short = results.filter((r) => r.achieved < 0.97 * r.rate);
  const tools = machine.openLoopTools ?? {};
  return `
## Latency at normal load (open loop, ${pct(OPTIONS.openShare)} of the closed-loop maximum)

What a user waits for at normal load, not queueing at saturation. After the closed-loop rounds, for
each variant in OPEN_LOOP: the rate is ${pct(OPTIONS.openShare)} of that variant's median closed-loop req/s **in this run**
(the table above); through Envoy, ${pct(OPTIONS.openShare)} of the smaller of that and the closed-loop req/s of the same
path through Envoy (wrk -t1 -c${OPTIONS.connections}, ${OPTIONS.warmup} s warm-up + ${OPTIONS.openGatewayProbe} s, on the same processes right before; Envoy shares the
generator's core, so the gateway path can saturate first). The requests are sent for ${OPTIONS.openDuration} s after a ${OPTIONS.warmup} s warm-up at the same rate (discarded), once
directly against the server and once through Envoy, each with a fresh server process (pinned to core
${OPTIONS.serverCpu} as in the rounds). Latency percentiles are over every request of the measured run, in ms.

| variant | path | closed-loop max req/s | rate req/s | answered/s | p50 | p90 | p99 | p99.9 | max | server core busy | Envoy CPU | oha CPU | core ${OPTIONS.wrkCpu} busy |
|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|
${rows.join('\n')}
${short.length ? `\n⚠ answered/s below 97 % of the rate: ${short.map((r) => `${r.variant} (${r.via})`).join(', ')}: the generator (or Envoy on its core) did not keep up, so that row is not at the intended load.\n` : ''}
- **Generator: oha** (${tools.oha ?? 'n/a'}, built from crates.io by \`make bench\` into \`.tools/oha\`, \`cargo install --locked --no-default-features --features native-tls\`), \`-q RATE --latency-correction
  -c ${OPTIONS.openConnections} -w -z ${OPTIONS.openDuration}s --no-tui --output-format json\`, pinned with \`taskset -c ${OPTIONS.wrkCpu}\`. Why oha: wrk is closed-loop (each
  connection waits for its answer before sending the next, so a slow answer delays the requests that
  should have followed it and they are never measured late: coordinated omission), and the Debian wrk
  has no rate option (that is wrk2). With \`-q\`, oha's scheduler releases request *i* at start + i/rate to
  whichever of the ${OPTIONS.openConnections} connections is free, and \`--latency-correction\` counts each latency from that
  release instant, not from when a connection picked it up, so a stall shows up in every request it
  delayed. (Read in oha ${OHA_VERSION}'s \`client.rs\`, \`work_until_with_qps_latency_correction\`, and checked once by
  hand when this step was written, not by every bench: against a node:http server that blocks its event loop
  for 200 ms every second, \`-q 1000 -c 8 -z 4s\` reported p90 1.1 ms / p99 7.5 ms without the correction and
  p90 107 ms / p99 191 ms with it, as a fixed arrival rate predicts: a fifth of the requests fall due during a
  stall.) Limits: oha's
  scheduler sleeps on tokio's timer, whose resolution is 1 ms, so requests are released in batches of
  about rate/1000 each millisecond rather than evenly spaced: a batch of ${fmtInt(Math.max(...results.map((r) => r.rate)) / 1000)} arriving together queues
  briefly at the one-core server, which is in p50–p99 (arrivals are burstier than Poisson at the
  sub-millisecond scale). \`-w\` waits for the requests in flight at the deadline, so none is dropped
  as an error. ${OPTIONS.openConnections} connections are kept open (keep-alive), as Envoy keeps a pool to the service.
- **Direct**: oha → server (\`GET ${API_PATH}\`, the variant's Host/Authorization/Cookie headers). For the
  service this is the check as Envoy's ext_authz HTTP client sends it.
- **Through Envoy**: oha → a real Envoy ${tools.envoy ?? ''} (\`.tools/envoy\`, one worker, \`--concurrency 1\`) → ext_authz → server,
  then Envoy's router. The config is the e2e tests' gateway (\`gatewayConfig\` and \`extAuthzProvider\` from
  \`dist/\`: Istio's header matchers, path prefix \`/authz\`, timeout 3s, BASE path normalization) with one change:
  the checked route answers with an Envoy \`direct_response\` 200, so no upstream process runs and the
  latency is Envoy + the check (written to \`bench/.work/envoy-<variant>.json\`). The request is the same
  without the \`/authz\` prefix (Envoy adds it). For \`bare\` the ext_authz server is the bare node:http
  server (Envoy's own floor). **Envoy is pinned to core ${OPTIONS.envoyCpu}**, ${OPTIONS.envoyCpu === OPTIONS.wrkCpu ? "sharing the generator's core" : 'its own core'}: core ${OPTIONS.serverCpu} stays the
  server's alone, as in the rounds (the two-core machine has no third core; in a cluster the gateway
  runs on other nodes). "Envoy CPU" is its share of a core and CPU µs per request; "core ${OPTIONS.wrkCpu} busy" is
  Envoy + oha + anything else there.
- Checked for every run: oha reported no errors and only the expected status, and the service's
  \`oidc_authz_checks_total\` grew by at least as many \`allow\` decisions as oha got answers (so every
  answer through Envoy was the service's decision).
`;
}

/**
 * The per-entry costs and the cache size that fits the container (CONTAINER_MIB, MEMORY_HEADROOM): every
 * figure from this run. Baseline = the service's largest RSS in the closed-loop rounds (under load,
 * caches nearly empty) or, without rounds of the service, its idle RSS in the memory step.
 */
function memorySizing(memory, runs) {
  const perEntry = (from, to, entries) => (entries > 0 ? (to - from) / entries : NaN);
  const sessions = memory.map((m) => {
    const entries = m.sessionCacheEntries - (m.idleSessionEntries ?? 0);
    return {
      mode: m.mode,
      entries,
      rssBytes: perEntry(m.idleGc.rssKb * 1024, m.afterGc.rssKb * 1024, entries),
      heapBytes: perEntry(m.idleGc.heapUsed + m.idleGc.external, m.afterGc.heapUsed + m.afterGc.external, entries),
    };
  });
  const withTokens = memory.find((m) => m.tokens);
  const tokens = withTokens ? {
    entries: withTokens.tokens.tokenCacheEntries - withTokens.tokens.tokenCacheEntriesBefore,
    rssBytes: perEntry(withTokens.afterGc.rssKb * 1024, withTokens.tokens.gc.rssKb * 1024, withTokens.tokens.tokenCacheEntries - withTokens.tokens.tokenCacheEntriesBefore),
    heapBytes: perEntry(withTokens.afterGc.heapUsed + withTokens.afterGc.external, withTokens.tokens.gc.heapUsed + withTokens.tokens.gc.external, withTokens.tokens.tokenCacheEntries - withTokens.tokens.tokenCacheEntriesBefore),
  } : null;
  const serviceRuns = runs.filter((r) => VARIANTS.find((v) => v.id === r.variant)?.server === 'authz');
  const loadRss = serviceRuns.length ? Math.max(...serviceRuns.map((r) => r.rssMb)) : NaN;
  const idleRss = Math.max(...memory.map((m) => m.idleGc.rssKb / 1024));
  const baselineMb = Number.isFinite(loadRss) ? Math.max(loadRss, idleRss) : idleRss;
  // The costlier of the measured ways to fill each entry: RSS delta or JS heap + external delta.
  const cost = (e) => Math.max(e.rssBytes, e.heapBytes);
  const sessionBytes = Math.max(...sessions.map(cost).filter(Number.isFinite));
  const tokenBytes = tokens ? cost(tokens) : NaN;
  const usableBytes = OPTIONS.containerMiB * 2 ** 20 * (1 - OPTIONS.headroom) - baselineMb * 2 ** 20;
  const fit = Math.floor(usableBytes / (sessionBytes + tokenBytes));
  return { sessions, tokens, loadRss, idleRss, baselineMb, sessionBytes, tokenBytes, usableBytes, fit };
}

function memorySection(memory, runs) {
  const mb = (bytes) => fmt(bytes / 2 ** 20, 1);
  const gcMb = (g) => fmt(g.rssKb / 1024, 0);
  const rows = memory.map((m) => `| ${m.mode} | ${m.sessions.toLocaleString('en-US')} | ${m.valueBytes.toLocaleString('en-US')} | ${fmt(m.generateS, 1)} | ${fmt(m.totalS, 1)} | ${fmt(m.idleRssMb, 0)} → **${fmt(m.rssMb, 0)}** | ${gcMb(m.idleGc)} → **${gcMb(m.afterGc)}** | ${fmt(m.hwmMb, 0)} | ${fmt(m.idleGc.heapUsed / 2 ** 20, 0)} → ${fmt(m.afterGc.heapUsed / 2 ** 20, 0)} | ${fmtInt(m.sessionCacheEntries)} (bound ${fmtInt(m.cacheBound)}) | ${m.redis ? `${mb(m.redis.idleUsedMemory)} → **${mb(m.redis.usedMemory)}** (${fmtInt((m.redis.usedMemory - m.redis.idleUsedMemory) / m.sessions)} B/session), ${m.redis.keys.toLocaleString('en-US')} keys` : '–'} |`);
  const n = memory[0].sessions.toLocaleString('en-US');
  const t = memory.find((m) => m.tokens)?.tokens;
  const z = memorySizing(memory, runs);
  const sizingRows = [
    ...z.sessions.map((e) => `| cached session (${e.mode} store) | ${fmtInt(e.entries)} | ${fmtInt(e.rssBytes)} | ${fmtInt(e.heapBytes)} |`),
    ...(z.tokens ? [`| cached bearer token (${t.tokenBytes} B ES256 JWT) | ${fmtInt(z.tokens.entries)} | ${fmtInt(z.tokens.rssBytes)} | ${fmtInt(z.tokens.heapBytes)} |`] : []),
  ];
  const fitLine = Number.isFinite(z.fit)
    ? `**N = (${OPTIONS.containerMiB} MiB × ${fmt(1 - OPTIONS.headroom, 2)} − ${fmt(z.baselineMb, 0)} MiB) ÷ (${fmtInt(z.sessionBytes)} B + ${fmtInt(z.tokenBytes)} B) = ${fmtInt(z.fit)} entries** per cache`
    : 'N: not computed (needs both the session and the token figures: MEMORY_SESSIONS and MEMORY_TOKENS > 0)';
  return `
## Memory after ${n} distinct sessions${t ? ` and ${t.tokens.toLocaleString('en-US')} distinct bearer tokens` : ''}

A separate step after the rounds, once per session store: a fresh service process (pinned to core ${OPTIONS.serverCpu} as in the
rounds, started with \`--expose-gc\`; config as cookie-cached resp. redis-cached with \`session.redis.cacheFor\` at its
default 5s, but with **\`bearer.cacheMaxEntries: ${fmtInt(memory[0].cacheBound)}\`** so that the caches hold every session and token: that
one setting bounds both the session cache and the verified-token cache (\`src/oidc/setup.ts\` passes it to the
session authenticator), and the per-entry cost is measured with them full) and, for Redis, a fresh empty
\`redis-server\` pinned to core ${OPTIONS.wrkCpu} (not the service's: with the cache that large, the service's full GCs on its
core delayed Redis enough for the sealing workers' commands to time out). In cookie mode the service first answers one session and one bearer
check (so first-use allocations, the JWKS and the imported keys are in the idle figure). Then on core
${OPTIONS.wrkCpu}, ${memory[0].workers} worker threads of the orchestrator issue ${n} sessions with the service's own store code
(\`bench/session-worker.mjs\` → \`bench/sessions.mjs\`: \`CookieSessionStore\` resp. \`RedisSessionStore\` from
\`dist/\`, the service's config and secret), each with its own refresh token and seal; in Redis each has its
own user and subject (as ${n} users would; the ID token inside is the same). The orchestrator checks every
session exactly once as soon as it exists (${OPTIONS.connections} at a time, keep-alive, also from core ${OPTIONS.wrkCpu}), so sealing and the
service's unsealing overlap: "issued in" is when the last session was sealed, "all checked by" when the last check was
answered (every one 200 with \`kubeflow-userid\`; the service's counters agree${memory.some((m) => m.redis) ? ', and for Redis it read the store for each' : ''}).
${t ? `In cookie mode, after the sessions, ${t.tokens.toLocaleString('en-US')} distinct valid bearer tokens (ES256, ${t.tokenBytes} B, the rounds' claims with a distinct
\`jti\`/\`nonce\` each, signed with node:crypto on core ${OPTIONS.wrkCpu} just before each is sent: RS256 signing there would
take minutes) are each checked once, ${OPTIONS.connections} at a time, in ${fmt(t.seconds, 1)} s, every one 200; the service verified and cached each
(its \`oidc_authz_token_cache_entries\` grew by ${fmtInt(t.tokenCacheEntries - t.tokenCacheEntriesBefore)}).
` : ''}
Read after each fill: VmRSS and VmHWM (/proc/PID/status) as they are, then a full GC in the service
(\`global.gc()\` on SIGUSR2, \`bench/server-authz.mjs\`) and VmRSS and \`process.memoryUsage()\` again; the cache
gauges; Redis's \`INFO memory\` \`used_memory\` (empty → after) and \`DBSIZE\`.

| session store | sessions | cookie value B | issued in s | all checked by s | RSS MB idle → after | RSS MB after GC: idle → after | peak RSS MB | JS heap MB after GC | session cache entries | Redis used_memory MB empty → after |
|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|
${rows.join('\n')}
${t ? `
Then, same cookie-mode process, after the ${t.tokens.toLocaleString('en-US')} bearer tokens: **RSS ${fmt(t.rssMb, 0)} MB** (peak ${fmt(t.hwmMb, 0)}), after GC
**${gcMb(t.gc)} MB**, JS heap ${fmt(t.gc.heapUsed / 2 ** 20, 0)} MB, token cache ${fmtInt(t.tokenCacheEntries)} entries and session cache still ${fmtInt(memory.find((m) => m.tokens).sessionCacheEntries)}.
` : ''}
### Per cached entry, and the cache size for a ${OPTIONS.containerMiB} MiB container

| entry | entries added | bytes each, RSS after GC | bytes each, JS heap + external after GC |
|---|---:|---:|---:|
${sizingRows.join('\n')}

- Baseline RSS: **${fmt(z.baselineMb, 0)} MiB** = the larger of the service's largest RSS right after a closed-loop run in the
  rounds above (${Number.isFinite(z.loadRss) ? `${fmt(z.loadRss, 0)} MiB: under full load, caches nearly empty, garbage included` : 'no service variant ran'}) and its idle RSS after GC here (${fmt(z.idleRss, 0)} MiB).
- Per entry, the larger of the two columns: session ${fmtInt(z.sessionBytes)} B (the costlier store), token ${Number.isFinite(z.tokenBytes) ? `${fmtInt(z.tokenBytes)} B` : 'n/a'}.
- Both caches are bounded by the one setting \`bearer.cacheMaxEntries\` = N, so in the worst case both are full.
  Headroom ${pct(OPTIONS.headroom)} of the container for what is not a cache entry (garbage between collections, request
  bursts, a reload building a second config, the session single-flight maps):
  N × (session + token) ≤ ${OPTIONS.containerMiB} MiB × (1 − ${OPTIONS.headroom}) − baseline, i.e.
  ${fitLine}.
- The session cache holds at most N opened sessions whatever the number of sessions: past that, the least
  recently used is dropped (and opened again, with an unseal and for Redis a read, when it comes back).
  Redis-mode entries past cacheFor stay in it until evicted or looked up. Entry sizes depend on the token
  and session contents (claims, groups); these are the bench's (~1 KB ID token, 3 groups).
${memory.some((m) => m.redis) ? `- ${n} Redis sessions each hold a sealed record and, with a user and a subject of their own, two index sets.\n` : ''}`;
}

// ---------------------------------------------------------------------------------------------------

async function main() {
  const startedAt = new Date();
  if (!existsSync(join(ROOT, 'dist/http/server.js'))) fail('dist/ is missing: run `make build` first (make bench does)');
  const clk = await run('getconf', ['CLK_TCK']);
  if (Number(clk.stdout.trim()) !== CLK_TCK) fail(`CLK_TCK is ${clk.stdout.trim()}, this script assumes ${CLK_TCK}`);
  const nproc = cpus().length;
  if (nproc < 2 || OPTIONS.serverCpu === OPTIONS.wrkCpu || Math.max(OPTIONS.serverCpu, OPTIONS.wrkCpu) >= nproc) {
    fail(`need two distinct CPUs for server (${OPTIONS.serverCpu}) and wrk (${OPTIONS.wrkCpu}); this machine has ${nproc}`);
  }
  const wrkVersion = (await run('wrk', ['-v'])).stdout.split('\n')[0].replace(/\s+Copyright.*$/, '').trim();
  const variants = selectedVariants();
  let ohaVersion = null;
  if (OPTIONS.openLoop.some((id) => variants.some((v) => v.id === id))) {
    if (!existsSync(OPTIONS.ohaBin)) fail(`oha not found at ${OPTIONS.ohaBin}: make bench builds it (cargo install --locked --no-default-features --features native-tls oha@${OHA_VERSION} --root .tools/oha); OPEN_LOOP=none skips the open-loop step`);
    if (!existsSync(OPTIONS.envoyBin)) fail(`Envoy not found at ${OPTIONS.envoyBin}: run make install; OPEN_LOOP=none skips the open-loop step`);
    ohaVersion = (await run(OPTIONS.ohaBin, ['--version'])).stdout.trim();
    if (!ohaVersion.includes(OHA_VERSION)) log(`warning: ${ohaVersion}, the bench was written for oha ${OHA_VERSION}`);
    const envoyVersion = (await run(OPTIONS.envoyBin, ['--version'])).stdout.trim();
    ohaVersion = { oha: ohaVersion, envoy: /version: (\S+)/.exec(envoyVersion)?.[1] ?? envoyVersion };
  }
  if (OPTIONS.profile && !VARIANTS.some((v) => v.id === OPTIONS.profile)) fail(`unknown PROFILE ${OPTIONS.profile}`);

  const ctx = await prepare();
  const machine = { ...machineInfo(wrkVersion), openLoopTools: ohaVersion };
  const estimate = OPTIONS.rounds * variants.length * (OPTIONS.warmup + OPTIONS.duration + 1.5);
  log(`${OPTIONS.rounds} rounds × ${variants.length} variants (${variants.map((v) => v.id).join(', ')}), about ${Math.round(estimate)} s${OPTIONS.memorySessions > 0 ? `, then the memory step (${OPTIONS.memorySessions} sessions × 2 stores, roughly ${Math.round((OPTIONS.memorySessions * 2.5) / 1000)} s on a quiet machine)` : ''}`);

  const runs = [];
  const discarded = [];
  const rawFile = join(WORK, `results-${startedAt.toISOString().replace(/[:.]/g, '-')}.json`);
  const saveRaw = (extra = {}) => {
    const raw = JSON.stringify({ startedAt, options: OPTIONS, machine, runs, ...extra }, null, 2);
    writeFileSync(rawFile, raw);
    writeFileSync(join(WORK, 'latest.json'), raw);
  };
  try {
    let redosLeft = OPTIONS.redos;
    for (let round = 1; round <= OPTIONS.rounds; round++) {
      for (const variant of variants) {
        let result = await measureOnce(variant, ctx);
        // Other processes on this shared machine took CPU during the run: the run measured them too.
        // Redo it once, in place (same position in the round), within a bounded budget of redos.
        if (result.otherCores > OPTIONS.maxOtherCores && redosLeft > 0) {
          redosLeft--;
          log(`round ${round}/${OPTIONS.rounds} ${variant.id}: other processes used ${fmt(result.otherCores, 2)} cores, redoing the run`);
          discarded.push({ round, ...result, discardedBecause: `other processes used ${fmt(result.otherCores, 2)} cores` });
          result = await measureOnce(variant, ctx);
        }
        runs.push({ round, ...result });
        saveRaw({ discarded });
        log(`round ${round}/${OPTIONS.rounds} ${variant.id.padEnd(17)} ${fmtInt(result.reqPerS).padStart(7)} req/s  p50 ${fmt(result.p50Ms, 2)} ms  p99 ${fmt(result.p99Ms, 2)} ms  ${fmt(result.serverCpuUsPerReq, 1)} µs/req  busy ${pct(result.serverBusy)}  wrk core ${pct(result.wrkCoreBusy)}  RSS ${fmt(result.rssMb, 0)} MB  other ${fmt(Math.max(0, result.otherCores), 2)} cores`);
      }
    }

    let profile = null;
    if (OPTIONS.profile) {
      const variant = VARIANTS.find((v) => v.id === OPTIONS.profile);
      if (variant.server === 'authz' && !ctx.configFiles[variant.id]) {
        const file = join(WORK, `config-${variant.id}.json`);
        writeFileSync(file, `${JSON.stringify(variant.config(ctx), null, 2)}\n`);
        ctx.configFiles[variant.id] = file;
      }
      const dir = join(WORK, 'profiles', `${variant.id}-${Date.now()}`);
      mkdirSync(dir, { recursive: true });
      log(`profiling ${variant.id} (extra run under --cpu-prof)`);
      const result = await measureOnce(variant, ctx, { profileDir: dir });
      const file = readdirSync(dir).filter((f) => f.endsWith('.cpuprofile')).map((f) => join(dir, f))[0];
      if (!file) fail(`no .cpuprofile written in ${dir}`);
      profile = { variant: variant.id, file, ...summarizeProfile(file), run: { reqPerS: result.reqPerS, serverCpuUsPerReq: result.serverCpuUsPerReq } };
      saveRaw({ discarded, profile });
    }

    const openLoop = OPTIONS.openLoop.length ? await openLoopStep(runs, ctx) : [];
    if (openLoop.length) saveRaw({ discarded, profile, openLoop });

    // The rounds' Redis is done; the memory step starts its own (an empty one, for used_memory).
    await ctx.redis?.stop();
    const memory = [];
    if (OPTIONS.memorySessions > 0) {
      log(`memory step: ${OPTIONS.memorySessions} distinct sessions, cookie then redis`);
      for (const mode of ['cookie', 'redis']) {
        memory.push(await memoryRun(mode, ctx));
        saveRaw({ discarded, profile, openLoop, memory });
      }
    }

    const summary = writeResults({ machine, startedAt, finishedAt: new Date(), runs, discarded, variants, ctx, profile, memory, openLoop });
    saveRaw({ summary, discarded, profile, openLoop, memory });
    process.stdout.write(`\n${table(summary)}\n${unsaturatedNote(runs)}\n`);
    for (const t of targetLines(summary, runs)) process.stdout.write(`${t.text}\n`);
    const hostile = hostileCookieLine(runs);
    if (hostile !== '') process.stdout.write(`${hostile.replaceAll('**', '')}\n`);
    if (profile) {
      process.stdout.write(`\nTop self-time frames (${profile.variant}):\n`);
      for (const r of profile.rows.slice(0, 15)) process.stdout.write(`  ${fmt(r.share * 100, 1).padStart(5)} %  ${r.frame}\n`);
    }
    process.stdout.write(`\nwrote bench/RESULTS.md and ${rawFile.replace(`${ROOT}/`, '')}\n`);
  } finally {
    ctx.jwksServer.close();
    ctx.jwksServer.closeAllConnections();
    await ctx.redis?.stop().catch(() => undefined);
  }
}

main().catch((error) => {
  process.stderr.write(`\n[bench] FAILED: ${error instanceof BenchFailure ? error.message : error.stack}\n`);
  killAll();
  process.exit(1);
});
