/**
 * A real redis-server (Debian's package, installed by `make install`) on 127.0.0.1 and a free port, no
 * persistence unless a test asks for it (then an append-only file, fsync'd on every write, in a temp dir:
 * what a production Redis that must not lose sessions on a restart is configured with).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createConnection } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { freePort } from './service.js';

export const REDIS_SERVER = process.env.REDIS_SERVER ?? '/usr/bin/redis-server';

export interface RedisOptions {
  /** Keep the data across restarts (appendonly, appendfsync always). */
  readonly persistent?: boolean;
  /** `requirepass`. */
  readonly password?: string;
  /** Default: a free one. */
  readonly port?: number;
  /**
   * TLS only, on `port`, with the test certificate in test/fixtures/redis-tls/ (server.crt for 127.0.0.1 and
   * localhost, signed by ca.crt; made once with openssl, valid until 2046, the CA's key discarded).
   */
  readonly tls?: boolean;
}

export const TEST_TLS_DIR = join(process.cwd(), 'test', 'fixtures', 'redis-tls');

export interface RunningRedis {
  readonly port: number;
  /** redis://127.0.0.1:<port> */
  readonly url: string;
  /** SIGKILL, as a crash: nothing flushed beyond what the append-only file already holds. */
  kill(): Promise<void>;
  /** Starts it again on the same port (and data directory). */
  restart(): Promise<void>;
  /** SIGSTOP / SIGCONT: connections stay open, nothing is answered (a Redis too slow to answer). */
  pause(): void;
  resume(): void;
  /** One command over a fresh connection (RESP), its raw reply. */
  command(...args: string[]): Promise<string>;
  stop(): Promise<void>;
}

export async function startRedis(options: RedisOptions = {}): Promise<RunningRedis> {
  const port = options.port ?? await freePort();
  const dir = mkdtempSync(join(tmpdir(), 'oidc-authz-redis-'));
  let child: ChildProcess | null = null;
  let output = '';

  const listen = options.tls
    ? ['--port', '0', '--tls-port', String(port), '--tls-cert-file', join(TEST_TLS_DIR, 'server.crt'), '--tls-key-file', join(TEST_TLS_DIR, 'server.key'), '--tls-ca-cert-file', join(TEST_TLS_DIR, 'ca.crt'), '--tls-auth-clients', 'no']
    : ['--port', String(port)];
  const args = () => [
    '--bind', '127.0.0.1', ...listen, '--dir', dir, '--save', '',
    '--appendonly', options.persistent ? 'yes' : 'no', '--appendfsync', 'always',
    ...(options.password ? ['--requirepass', options.password] : []),
  ];
  const launch = async () => {
    output = '';
    const started = spawn(REDIS_SERVER, args(), { stdio: ['ignore', 'pipe', 'pipe'] });
    child = started;
    started.stdout!.on('data', (chunk: Buffer) => (output += chunk.toString()));
    started.stderr!.on('data', (chunk: Buffer) => (output += chunk.toString()));
    await new Promise<void>((resolve, reject) => {
      const onExit = (code: number | null) => reject(new Error(`redis-server exited (${code}) before it was ready:\n${output}`));
      started.once('exit', onExit);
      started.stdout!.on('data', () => {
        if (output.includes('Ready to accept connections')) {
          started.off('exit', onExit);
          resolve();
        }
      });
    });
  };
  const kill = async () => {
    const running = child;
    child = null;
    if (running === null || running.exitCode !== null || running.signalCode !== null) return;
    const exited = new Promise<void>((resolve) => running.once('exit', () => resolve()));
    running.kill('SIGCONT');
    running.kill('SIGKILL');
    await exited;
  };

  await launch();
  return {
    port,
    url: `${options.tls ? 'rediss' : 'redis'}://127.0.0.1:${port}`,
    kill,
    async restart() {
      await kill();
      await launch();
    },
    pause: () => void child?.kill('SIGSTOP'),
    resume: () => void child?.kill('SIGCONT'),
    command: (...commandArgs) => rawCommand(port, options.password, commandArgs),
    async stop() {
      await kill();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

function encode(args: readonly string[]): string {
  return `*${args.length}\r\n${args.map((a) => `$${Buffer.byteLength(a)}\r\n${a}\r\n`).join('')}`;
}

/** Sends AUTH (when a password is set) and the command; resolves with the last reply's raw text. */
function rawCommand(port: number, password: string | undefined, args: readonly string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = createConnection({ host: '127.0.0.1', port });
    const replies = password === undefined ? 1 : 2;
    let data = '';
    socket.setEncoding('utf8');
    socket.on('connect', () => socket.write((password === undefined ? '' : encode(['AUTH', password])) + encode(args) + encode(['QUIT'])));
    socket.on('data', (chunk: string) => (data += chunk));
    socket.on('error', reject);
    socket.on('close', () => {
      // The replies, then QUIT's +OK: the command's reply is what sits between.
      const lines = data.split('\r\n');
      resolve(replies === 1 ? lines.slice(0, -2).join('\r\n') : lines.slice(1, -2).join('\r\n'));
    });
  });
}

/** A process started from a config file, until it prints `ready`. */
async function startFromConfig(lines: readonly string[], extraArgs: readonly string[], ready: string, dir: string): Promise<ChildProcess> {
  const file = join(dir, 'redis.conf');
  // Its files (a sentinel's rewritten config, a cluster's nodes.conf) stay in its own temp dir.
  writeFileSync(file, `${[`dir ${dir}`, ...lines].join('\n')}\n`);
  const child = spawn(REDIS_SERVER, [file, ...extraArgs], { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  await new Promise<void>((resolve, reject) => {
    const onExit = (code: number | null) => reject(new Error(`redis-server exited (${code}) before it was ready:\n${output}`));
    child.once('exit', onExit);
    const onData = (chunk: Buffer) => {
      output += chunk.toString();
      if (output.includes(ready)) {
        child.off('exit', onExit);
        resolve();
      }
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', onData);
  });
  return child;
}

async function stopProcess(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill('SIGKILL');
  await exited;
}

export interface RunningSentinelSet {
  /** host:port of the sentinel */
  readonly sentinel: string;
  readonly masterName: string;
  readonly masterPort: number;
  readonly replicaPort: number;
  /** Kills the master: the sentinel promotes the replica. */
  killMaster(): Promise<void>;
  /** The port of the master the sentinel names now. */
  currentMasterPort(): Promise<number>;
  stop(): Promise<void>;
}

/**
 * A master, one replica and one sentinel (quorum 1, a master is down after 1 s): the smallest set in which
 * a failover really happens.
 */
export async function startSentinelSet(): Promise<RunningSentinelSet> {
  const masterName = 'sessions';
  const [masterPort, replicaPort, sentinelPort] = [await freePort(), await freePort(), await freePort()];
  const dirs = [0, 1, 2].map(() => mkdtempSync(join(tmpdir(), 'oidc-authz-sentinel-')));
  // No 5 s wait before the replica's first sync (repl-diskless-sync-delay).
  const base = (port: number) => ['bind 127.0.0.1', `port ${port}`, "save ''", 'appendonly no', 'repl-diskless-sync-delay 0'];
  const master = await startFromConfig(base(masterPort), [], 'Ready to accept connections', dirs[0]!);
  const replica = await startFromConfig([...base(replicaPort), `replicaof 127.0.0.1 ${masterPort}`], [], 'MASTER <-> REPLICA sync: Finished with success', dirs[1]!);
  const sentinel = await startFromConfig([
    'bind 127.0.0.1', `port ${sentinelPort}`,
    `sentinel monitor ${masterName} 127.0.0.1 ${masterPort} 1`,
    `sentinel down-after-milliseconds ${masterName} 1000`,
    `sentinel failover-timeout ${masterName} 5000`,
  ], ['--sentinel'], '+slave', dirs[2]!);
  const processes = [master, replica, sentinel];
  return {
    sentinel: `127.0.0.1:${sentinelPort}`,
    masterName,
    masterPort,
    replicaPort,
    killMaster: () => stopProcess(master),
    async currentMasterPort() {
      // Sentinels do not know QUIT, which rawCommand ends with: ask with a client of our own.
      const client = new Redis({ host: '127.0.0.1', port: sentinelPort, lazyConnect: true, maxRetriesPerRequest: 0 });
      try {
        await client.connect();
        const reply = (await client.call('SENTINEL', 'get-master-addr-by-name', masterName)) as [string, string];
        return Number(reply[1]);
      } finally {
        client.disconnect();
      }
    },
    async stop() {
      for (const child of processes) await stopProcess(child);
      for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
    },
  };
}

export interface RunningCluster {
  /** host:port of every master */
  readonly nodes: readonly string[];
  stop(): Promise<void>;
}

/** Three masters (no replicas) joined into one Redis Cluster, all 16384 slots assigned. */
export async function startCluster(): Promise<RunningCluster> {
  const ports = [await freePort(), await freePort(), await freePort()];
  const dirs = ports.map(() => mkdtempSync(join(tmpdir(), 'oidc-authz-cluster-')));
  const processes = await Promise.all(ports.map((port, i) => startFromConfig(
    ['bind 127.0.0.1', `port ${port}`, "save ''", 'appendonly no', 'cluster-enabled yes', `cluster-config-file ${join(dirs[i]!, 'nodes.conf')}`, 'cluster-node-timeout 2000'],
    [], 'Ready to accept connections', dirs[i]!,
  )));
  const cli = spawn(REDIS_SERVER.replace(/redis-server$/, 'redis-cli'), ['--cluster', 'create', ...ports.map((p) => `127.0.0.1:${p}`), '--cluster-yes'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  cli.stdout!.on('data', (chunk: Buffer) => (output += chunk.toString()));
  cli.stderr!.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const code = await new Promise<number | null>((resolve) => cli.once('exit', resolve));
  if (code !== 0 || !output.includes('All 16384 slots covered')) throw new Error(`redis-cli --cluster create failed (${code}):\n${output}`);
  // Every node must agree before clients are pointed at it.
  for (const port of ports) {
    for (;;) {
      if ((await rawCommand(port, undefined, ['CLUSTER', 'INFO'])).includes('cluster_state:ok')) break;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }
  return {
    nodes: ports.map((p) => `127.0.0.1:${p}`),
    async stop() {
      for (const child of processes) await stopProcess(child);
      for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
    },
  };
}
