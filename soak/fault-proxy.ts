/**
 * A TCP proxy on 127.0.0.1 in front of a real server (the JWKS issuer, the IdP) that the soak can make
 * unreachable without a mock:
 * - "pass": connections are piped to the target;
 * - "refuse": the listening socket is closed (connections are refused, ECONNREFUSED) and open ones reset;
 * - "blackhole": connections are accepted and never answered (the client waits for its own timeout), and
 *   open ones stop carrying bytes.
 * Every change of mode destroys the connections opened before it, as a network fault would.
 */
import { createServer, connect, type Server, type Socket } from 'node:net';

export type FaultMode = 'pass' | 'refuse' | 'blackhole';

export interface FaultProxy {
  readonly port: number;
  readonly mode: FaultMode;
  set(mode: FaultMode): Promise<void>;
  /** Connections accepted since start (for the report). */
  readonly accepted: number;
  close(): Promise<void>;
}

export async function startFaultProxy(target: { host: string; port: number }, port = 0): Promise<FaultProxy> {
  let mode: FaultMode = 'pass';
  let accepted = 0;
  const open = new Set<Socket>();
  const track = (socket: Socket) => {
    open.add(socket);
    socket.once('close', () => open.delete(socket));
    socket.on('error', () => undefined);
  };
  const server: Server = createServer((client) => {
    accepted++;
    track(client);
    if (mode === 'blackhole') {
      // Read and drop: the client's request is taken and nothing ever comes back.
      client.on('data', () => undefined);
      return;
    }
    const upstream = connect(target.port, target.host);
    track(upstream);
    client.pipe(upstream);
    upstream.pipe(client);
    client.once('close', () => upstream.destroy());
    upstream.once('close', () => client.destroy());
  });
  const listen = () =>
    new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, '127.0.0.1', () => {
        server.off('error', reject);
        port = (server.address() as { port: number }).port;
        resolve();
      });
    });
  await listen();
  const dropAll = () => {
    for (const socket of open) {
      if (mode === 'refuse') socket.resetAndDestroy();
      else socket.destroy();
    }
    open.clear();
  };
  return {
    get port() {
      return port;
    },
    get mode() {
      return mode;
    },
    get accepted() {
      return accepted;
    },
    async set(next) {
      if (next === mode) return;
      const wasListening = server.listening;
      mode = next;
      dropAll();
      if (next === 'refuse' && wasListening) await new Promise<void>((resolve) => server.close(() => resolve()));
      if (next !== 'refuse' && !wasListening) await listen();
    },
    async close() {
      dropAll();
      if (server.listening) await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
