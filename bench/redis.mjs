// The bench's own redis-server (Debian's, as installed by `make install`): 127.0.0.1, a free port, no
// persistence (--save '' --appendonly no), pinned with taskset to the core the service runs on: Redis is
// part of the server side's cost, and the other core belongs to the load generator.
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createConnection, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export const REDIS_SERVER = process.env.REDIS_SERVER ?? '/usr/bin/redis-server';

function freePort() {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

/** Starts redis-server under `taskset -c cpu`; `onChild` sees the process (for the caller's kill-on-exit list). */
export async function startRedis({ cpu, onChild = () => undefined, timeoutMs = 10_000 }) {
  if (!existsSync(REDIS_SERVER)) throw new Error(`${REDIS_SERVER} is missing: \`make install\` installs it (or set REDIS_SERVER)`);
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), 'oidc-authz-bench-redis-'));
  const args = ['-c', String(cpu), REDIS_SERVER, '--bind', '127.0.0.1', '--port', String(port), '--dir', dir, '--save', '', '--appendonly', 'no'];
  const child = spawn('taskset', args, { stdio: ['ignore', 'pipe', 'pipe'] });
  onChild(child);
  let output = '';
  child.stdout.on('data', (d) => (output += d));
  child.stderr.on('data', (d) => (output += d));
  const exited = new Promise((r) => child.once('exit', (code, signal) => r({ code, signal })));
  await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`redis-server not ready after ${timeoutMs} ms:\n${output}`)), timeoutMs);
    child.stdout.on('data', () => {
      if (!output.includes('Ready to accept connections')) return;
      clearTimeout(timer);
      resolve();
    });
    exited.then(({ code, signal }) => {
      clearTimeout(timer);
      reject(new Error(`redis-server exited (${code ?? signal}) before it was ready:\n${output}`));
    });
  });
  // taskset execs redis-server, so the child's pid is Redis's; its threads inherit the affinity.
  const status = readFileSync(`/proc/${child.pid}/status`, 'utf8');
  const allowed = /^Cpus_allowed_list:\s*(\S+)$/m.exec(status)?.[1];
  if (allowed !== String(cpu)) throw new Error(`redis-server not pinned to CPU ${cpu}: ${allowed}`);
  const version = /v=(\d+\.\d+\.\d+)/.exec(output)?.[1] ?? /Redis version=(\d+\.\d+\.\d+)/.exec(output)?.[1] ?? 'unknown';
  return {
    pid: child.pid,
    port,
    url: `redis://127.0.0.1:${port}`,
    version,
    command: (...commandArgs) => rawCommand(port, commandArgs),
    /** INFO memory as numbers (used_memory, used_memory_rss, …). */
    async memory() {
      const text = await rawCommand(port, ['INFO', 'memory']);
      const fields = {};
      for (const line of text.split('\r\n')) {
        const m = /^([a-z_]+):(\d+)$/.exec(line);
        if (m) fields[m[1]] = Number(m[2]);
      }
      return fields;
    },
    async keys() {
      return Number(/^:(\d+)/.exec(await rawCommand(port, ['DBSIZE']))?.[1] ?? NaN);
    },
    async stop() {
      child.kill('SIGTERM');
      const outcome = await Promise.race([exited, new Promise((r) => setTimeout(() => r(null), 5_000))]);
      if (outcome === null) {
        child.kill('SIGKILL');
        await exited;
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

const encode = (args) => `*${args.length}\r\n${args.map((a) => `$${Buffer.byteLength(a)}\r\n${a}\r\n`).join('')}`;

/** One command over a fresh connection (RESP, then QUIT): the command's raw reply. */
function rawCommand(port, args) {
  return new Promise((resolve, reject) => {
    const socket = createConnection({ host: '127.0.0.1', port });
    let data = '';
    socket.setEncoding('utf8');
    socket.setTimeout(5_000, () => socket.destroy(new Error(`redis ${args[0]}: no answer in 5 s`)));
    socket.on('connect', () => socket.write(encode(args) + encode(['QUIT'])));
    socket.on('data', (chunk) => (data += chunk));
    socket.on('error', reject);
    socket.on('close', () => resolve(data.replace(/\+OK\r\n$/, '')));
  });
}
