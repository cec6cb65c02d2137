/**
 * The soak's processes on 127.0.0.1: Dex (behind a fault proxy), two oidc-authz processes (`node
 * dist/cli.js serve`, fixed ports so a restarted one comes back where it was), and Envoy configured as
 * the gateway (src/envoy-config.ts) whose ext_authz cluster takes its endpoints from a file (EDS), the
 * way istiod hands a gateway the endpoints of a Kubernetes Service: the soak removes a terminating
 * process from it and adds a ready one, as the endpoints controller does.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, renameSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { join, resolve } from 'node:path';
import { gatewayConfig, type GatewayOptions } from '../src/envoy-config.js';
import { dexConfig, DEX_BIN, type DexOptions } from '../test/support/dex.js';

export const ENVOY_BIN = process.env.ENVOY_BIN ?? resolve(process.cwd(), '.tools/envoy/envoy/_bin/envoy');
const CLI = resolve(process.cwd(), 'dist/cli.js');

/** Every child the soak starts, so that exit and Ctrl-C can end them (by pid, each one). */
export const children = new Set<ChildProcess>();

export function killChildren(): void {
  for (const child of children) {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  }
}

function track(child: ChildProcess): ChildProcess {
  children.add(child);
  child.once('exit', () => children.delete(child));
  return child;
}

/** Keeps the last lines a child wrote (for a failure report) and counts its error lines. */
export class Tail {
  private lines: string[] = [];
  private partial = '';
  errors = 0;
  warnings: string[] = [];
  constructor(private readonly max = 300) {}
  push(chunk: string): void {
    const text = this.partial + chunk;
    const parts = text.split('\n');
    this.partial = parts.pop() ?? '';
    for (const line of parts) {
      if (line.includes('"level":"error"')) this.errors++;
      if (line.includes('"level":"warn"') && this.warnings.length < 200) this.warnings.push(line.slice(0, 400));
      this.lines.push(line);
      if (this.lines.length > this.max) this.lines.shift();
    }
  }
  /** The last line whose msg is `msg`, parsed. */
  last(msg: string): Record<string, unknown> | null {
    for (let i = this.lines.length - 1; i >= 0; i--) {
      if (!this.lines[i]!.includes(`"msg":"${msg}"`)) continue;
      try {
        return JSON.parse(this.lines[i]!) as Record<string, unknown>;
      } catch {
        return null;
      }
    }
    return null;
  }
  text(): string {
    return this.lines.join('\n');
  }
}

const until = async (what: string, probe: () => Promise<boolean>, timeoutMs: number): Promise<void> => {
  const deadline = Date.now() + timeoutMs;
  while (!(await probe())) {
    if (Date.now() > deadline) throw new Error(`gave up waiting for ${what} after ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 20));
  }
};

const answers = async (url: string, status = 200): Promise<boolean> => {
  try {
    const response = await fetch(url, { signal: AbortSignal.timeout(2000) });
    await response.body?.cancel();
    return response.status === status;
  } catch {
    return false;
  }
};

export const accepting = (port: number): Promise<boolean> =>
  new Promise((resolvePromise) => {
    const socket = connect(port, '127.0.0.1');
    socket.once('connect', () => {
      socket.destroy();
      resolvePromise(true);
    });
    socket.once('error', () => resolvePromise(false));
  });

// ---------------------------------------------------------------- Dex

export interface SoakDex {
  readonly issuer: string;
  readonly port: number;
  readonly tail: Tail;
  stop(): Promise<void>;
}

/**
 * Dex whose issuer URL is the fault proxy's (every party, browser and oidc-authz, reaches Dex through it),
 * listening itself on `port`.
 */
export async function startSoakDex(dir: string, issuer: string, port: number, options: DexOptions): Promise<SoakDex> {
  const file = join(dir, 'dex.yaml');
  writeFileSync(file, JSON.stringify(dexConfig(issuer, port, options), null, 2));
  const tail = new Tail(100);
  const child = track(spawn(DEX_BIN, ['serve', file], { stdio: ['ignore', 'pipe', 'pipe'] }));
  child.stdout!.setEncoding('utf8').on('data', (c: string) => tail.push(c));
  child.stderr!.setEncoding('utf8').on('data', (c: string) => tail.push(c));
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  await until('Dex', async () => {
    if (child.exitCode !== null) throw new Error(`dex exited:\n${tail.text()}`);
    return answers(`http://127.0.0.1:${port}/dex/.well-known/openid-configuration`);
  }, 30_000);
  return {
    issuer,
    port,
    tail,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      await exited;
    },
  };
}

// ---------------------------------------------------------------- oidc-authz processes

export interface ServiceProcess {
  readonly name: string;
  readonly port: number;
  readonly metricsPort: number;
  readonly child: ChildProcess;
  readonly tail: Tail;
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null; atMs: number }>;
  /** SIGTERM: the service drains and exits. */
  terminate(): void;
}

export async function startServiceProcess(name: string, configFile: string, port: number, metricsPort: number): Promise<ServiceProcess> {
  const tail = new Tail();
  const child = track(spawn(process.execPath, [CLI, 'serve', '--config', configFile], { stdio: ['ignore', 'pipe', 'pipe'] }));
  child.stdout!.setEncoding('utf8').on('data', (c: string) => tail.push(c));
  child.stderr!.setEncoding('utf8').on('data', (c: string) => tail.push(c));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null; atMs: number }>((r) =>
    child.once('exit', (code, signal) => r({ code, signal, atMs: Date.now() })),
  );
  let gone = false;
  void exited.then(() => (gone = true));
  await until(`${name} ready`, async () => {
    if (gone) throw new Error(`${name} exited before it was ready:\n${tail.text()}`);
    return answers(`http://127.0.0.1:${port}/readyz`);
    // Generous: on a machine shared with other work a Node process under load can take tens of seconds to start.
  }, 120_000);
  return { name, port, metricsPort, child, tail, exited, terminate: () => void child.kill('SIGTERM') };
}

// ---------------------------------------------------------------- Envoy

export interface SoakEnvoy {
  readonly url: string;
  readonly adminPort: number;
  /** Replaces the ext_authz cluster's endpoints (atomically, as one EDS update). */
  setEndpoints(ports: readonly number[]): Promise<void>;
  /** Envoy's view of the ext_authz cluster: the endpoints it balances across. */
  endpoints(): Promise<number[]>;
  stats(filter: string): Promise<Record<string, number>>;
  readonly tail: Tail;
  stop(): Promise<void>;
}

export async function startSoakEnvoy(dir: string, options: GatewayOptions & { adminPort: number; authzPorts: readonly number[] }): Promise<SoakEnvoy> {
  const edsDir = join(dir, 'eds');
  mkdirSync(edsDir, { recursive: true });
  const edsFile = join(edsDir, 'oidc-authz.json');
  let version = 0;
  const writeEds = (ports: readonly number[]) => {
    const assignment = {
      version_info: String(++version),
      resources: [{
        '@type': 'type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment',
        cluster_name: 'oidc-authz',
        endpoints: [{ lb_endpoints: ports.map((port) => ({ endpoint: { address: { socket_address: { address: '127.0.0.1', port_value: port } } } })) }],
      }],
    };
    const temp = join(dir, `eds-${version}.json`);
    writeFileSync(temp, JSON.stringify(assignment));
    renameSync(temp, edsFile);
  };
  writeEds(options.authzPorts);
  const config = gatewayConfig(options) as ReturnType<typeof gatewayConfig> & { admin?: unknown; node?: unknown };
  // A file-based EDS source needs the node to name itself, as a gateway does to istiod.
  config.node = { id: 'soak-gateway', cluster: 'soak' };
  // The ext_authz cluster as istiod gives it to a gateway: endpoints from EDS, the default connection pool,
  // no active health checks and no outlier detection (neither exists without a DestinationRule).
  const clusters = config.static_resources.clusters as unknown as Array<Record<string, unknown>>;
  const index = clusters.findIndex((c) => c.name === 'oidc-authz');
  clusters[index] = {
    name: 'oidc-authz',
    type: 'EDS',
    connect_timeout: '1s',
    eds_cluster_config: {
      eds_config: { resource_api_version: 'V3', path_config_source: { path: edsFile, watched_directory: { path: edsDir } } },
    },
  };
  config.admin = { address: { socket_address: { address: '127.0.0.1', port_value: options.adminPort } } };
  const configFile = join(dir, 'envoy.json');
  writeFileSync(configFile, JSON.stringify(config, null, 2));
  const tail = new Tail(200);
  const child = track(spawn(ENVOY_BIN, ['-c', configFile, '--use-dynamic-base-id', '-l', 'warning', '--concurrency', '1', '--disable-hot-restart'], { stdio: ['ignore', 'ignore', 'pipe'] }));
  child.stderr!.setEncoding('utf8').on('data', (c: string) => tail.push(c));
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  const admin = `http://127.0.0.1:${options.adminPort}`;
  await until('Envoy', async () => {
    if (child.exitCode !== null) throw new Error(`envoy exited:\n${tail.text()}`);
    return (await accepting(options.listenPort)) && answers(`${admin}/ready`);
  }, 30_000);
  const endpoints = async () => {
    const text = await fetch(`${admin}/clusters`).then((r) => r.text());
    const ports = new Set<number>();
    for (const line of text.split('\n')) {
      const m = /^oidc-authz::127\.0\.0\.1:(\d+)::/.exec(line);
      if (m) ports.add(Number(m[1]));
    }
    return [...ports].sort((a, b) => a - b);
  };
  return {
    url: `http://127.0.0.1:${options.listenPort}`,
    adminPort: options.adminPort,
    tail,
    endpoints,
    async setEndpoints(ports) {
      writeEds(ports);
      const want = [...ports].sort((a, b) => a - b).join(',');
      // Envoy applies the file when it sees it moved into place: wait until its cluster says so.
      await until(`Envoy endpoints ${want}`, async () => (await endpoints()).join(',') === want, 10_000);
    },
    async stats(filter) {
      const text = await fetch(`${admin}/stats?filter=${encodeURIComponent(filter)}`).then((r) => r.text());
      const out: Record<string, number> = {};
      for (const line of text.split('\n')) {
        const m = /^(\S+): (\d+)$/.exec(line);
        if (m) out[m[1]!] = Number(m[2]);
      }
      return out;
    },
    async stop() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      await exited;
    },
  };
}
