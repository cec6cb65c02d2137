/** Runs the built CLI (dist/cli.js, made by `make build`) as a child process and reads its JSON logs. */
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export const CLI = join(process.cwd(), 'dist', 'cli.js');

export function writeTempConfig(config: unknown): string {
  const dir = mkdtempSync(join(tmpdir(), 'oidc-authz-'));
  const file = join(dir, 'config.yaml');
  writeFileSync(file, typeof config === 'string' ? config : JSON.stringify(config, null, 2));
  return file;
}

export interface ServeProcess {
  readonly child: ChildProcessWithoutNullStreams;
  readonly logs: Array<Record<string, unknown>>;
  /** Resolves with the first log record whose msg is `msg`. */
  waitForLog(msg: string): Promise<Record<string, unknown>>;
  readonly exited: Promise<number | null>;
}

/** `nodeArgs`: options for node itself, before the script (--import a module hook). */
export function startServeProcess(configFile: string, options: { nodeArgs?: readonly string[] } = {}): ServeProcess {
  const child = spawn(process.execPath, [...(options.nodeArgs ?? []), CLI, 'serve', '--config', configFile], { stdio: 'pipe' });
  const logs: Array<Record<string, unknown>> = [];
  const waiters: Array<{ msg: string; resolve: (r: Record<string, unknown>) => void }> = [];
  let buffer = '';
  child.stdout.setEncoding('utf8');
  child.stdout.on('data', (chunk: string) => {
    buffer += chunk;
    let newline: number;
    while ((newline = buffer.indexOf('\n')) !== -1) {
      const record = JSON.parse(buffer.slice(0, newline)) as Record<string, unknown>;
      buffer = buffer.slice(newline + 1);
      logs.push(record);
      for (const waiter of waiters.filter((w) => w.msg === record.msg)) {
        waiters.splice(waiters.indexOf(waiter), 1);
        waiter.resolve(record);
      }
    }
  });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return {
    child,
    logs,
    exited,
    waitForLog(msg) {
      const seen = logs.find((r) => r.msg === msg);
      if (seen) return Promise.resolve(seen);
      return new Promise((resolve) => waiters.push({ msg, resolve }));
    },
  };
}

/** Runs a CLI command to completion. */
export function runCli(args: string[], env: NodeJS.ProcessEnv = {}): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [CLI, ...args], { env: { ...process.env, ...env } });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    child.on('exit', (code) => resolve({ code, stdout, stderr }));
  });
}
