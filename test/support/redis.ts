/**
 * A real redis-server (Debian's package, installed by `make install`) on 127.0.0.1 and a free port, no
 * persistence unless a test asks for it (then an append-only file, fsync'd on every write, in a temp dir:
 * what a production Redis that must not lose sessions on a restart is configured with).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createConnection } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from './service.js';

export const REDIS_SERVER = process.env.REDIS_SERVER ?? '/usr/bin/redis-server';

export interface RedisOptions {
  /** Keep the data across restarts (appendonly, appendfsync always). */
  readonly persistent?: boolean;
  /** `requirepass`. */
  readonly password?: string;
}

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
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), 'oidc-authz-redis-'));
  let child: ChildProcess | null = null;
  let output = '';

  const args = () => [
    '--bind', '127.0.0.1', '--port', String(port), '--dir', dir, '--save', '',
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
    url: `redis://127.0.0.1:${port}`,
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
