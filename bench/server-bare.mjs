// The ceiling: bare node:http answering every request with 200 and an empty body.
// Usage: node bench/server-bare.mjs [port]   (default 0 = any free port). Prints one JSON line when ready.
import { createServer } from 'node:http';

const port = Number(process.argv[2] ?? 0);
// The same header limit as the service (listen.maxHeaderBytes): Envoy forwards up to 60 KiB of headers.
const server = createServer({ maxHeaderSize: 65_536 }, (req, res) => {
  res.writeHead(200, ['content-length', '0']);
  res.end();
});
server.keepAliveTimeout = 3_900_000;

server.listen(port, '127.0.0.1', () => {
  process.stdout.write(`${JSON.stringify({ ready: true, pid: process.pid, port: server.address().port })}\n`);
});

// Exit normally on SIGTERM so `node --cpu-prof` can write its profile.
const stop = () => {
  server.close(() => process.exit(0));
  server.closeAllConnections();
  setTimeout(() => process.exit(0), 2000).unref();
};
process.once('SIGTERM', stop);
process.once('SIGINT', stop);
