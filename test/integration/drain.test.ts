/**
 * SIGTERM while the gateway still sends checks (found by `make soak`, scenario 1): Kubernetes removes a
 * terminating pod's endpoint while it sends SIGTERM, so Envoy keeps opening connections here for a moment.
 * A listener closed at once refused them and Envoy answered 503 to users; now the listener stays open
 * while requests keep arriving (each answer closes its connection) and closes once they stop.
 */
import { request as httpRequest } from 'node:http';
import { startServeProcess, writeTempConfig } from '../support/process.js';

/** One check on a connection of its own (as Envoy opens one once we answer with Connection: close). */
const check = (port: number) =>
  new Promise<{ status: number; connection: string | undefined } | { error: string }>((resolve) => {
    const req = httpRequest({ host: '127.0.0.1', port, path: '/authz/public/x', headers: { host: 'h' }, agent: false }, (res) => {
      res.resume();
      res.on('end', () => resolve({ status: res.statusCode ?? 0, connection: res.headers.connection }));
    });
    req.on('error', (error: NodeJS.ErrnoException) => resolve({ error: error.code ?? error.message }));
    req.end();
  });

test('after SIGTERM, checks that keep arriving on new connections are answered, then the listener closes and the process exits 0', async () => {
  const configFile = writeTempConfig({
    listen: { host: '127.0.0.1', port: 0, metricsPort: 0, shutdownTimeout: '20s' },
    rules: [{ name: 'public', paths: ['/**'], allow: 'anonymous' }],
  });
  const proc = startServeProcess(configFile);
  try {
    const port = (await proc.waitForLog('listening')).port as number;
    expect(await check(port)).toMatchObject({ status: 200 });

    // A gateway that has not heard of the termination yet: a check every 20 ms, each on a new connection.
    const answers: Array<Awaited<ReturnType<typeof check>>> = [];
    let sending = true;
    const stream = (async () => {
      while (sending) {
        answers.push(await check(port));
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
    })();
    proc.child.kill('SIGTERM');
    await proc.waitForLog('draining');
    const readyz = await fetch(`http://127.0.0.1:${port}/readyz`);
    expect(readyz.status).toBe(503);
    // The gateway goes on for a while (its endpoint update is on its way), then stops.
    const sentDuringDrain = answers.length;
    while (answers.length < sentDuringDrain + 15) await new Promise((resolve) => setTimeout(resolve, 20));
    sending = false;
    await stream;

    expect(answers.filter((a) => 'error' in a)).toEqual([]);
    expect(answers.slice(sentDuringDrain).every((a) => 'status' in a && a.status === 200 && a.connection === 'close')).toBe(true);
    const stopped = await proc.waitForLog('stopped accepting');
    expect(stopped.afterMs as number).toBeLessThanOrEqual(5_000);
    expect(await proc.exited).toBe(0);
    expect(await check(port)).toEqual({ error: 'ECONNREFUSED' });
  } finally {
    proc.child.kill('SIGKILL');
  }
});
