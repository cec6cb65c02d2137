/** An upstream app that answers with the request it received (method, path, headers) as JSON. */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface EchoRequest {
  readonly method: string;
  readonly path: string;
  readonly headers: Record<string, string | string[] | undefined>;
  /** Header names exactly as they arrived, in order (shows `kubeflow_userid` next to `kubeflow-userid`). */
  readonly rawHeaderNames: string[];
}

export interface Echo {
  readonly port: number;
  readonly url: string;
  /** Requests received so far. */
  readonly received: EchoRequest[];
  stop(): Promise<void>;
}

export async function startEcho(options: { port?: number } = {}): Promise<Echo> {
  const received: EchoRequest[] = [];
  // Large enough for a session cookie of several chunks plus a long kubeflow-groups header.
  const server: Server = createServer({ maxHeaderSize: 256 * 1024 }, (req, res) => {
    const names: string[] = [];
    for (let i = 0; i < req.rawHeaders.length; i += 2) names.push(req.rawHeaders[i]!);
    const seen: EchoRequest = { method: req.method ?? '', path: req.url ?? '', headers: req.headers, rawHeaderNames: names };
    received.push(seen);
    req.resume();
    req.on('end', () => {
      const body = JSON.stringify(seen);
      const html = (req.headers.accept ?? '').includes('text/html');
      res.writeHead(200, {
        'content-type': html ? 'text/html; charset=utf-8' : 'application/json',
        'set-cookie': 'upstream_cookie=1; Path=/',
      });
      res.end(html ? echoPage(seen) : body);
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, '127.0.0.1', resolve);
  });
  const { port } = server.address() as AddressInfo;
  return {
    port,
    url: `http://127.0.0.1:${port}`,
    received,
    stop: () => new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
    }),
  };
}

const escape = (text: string) => text.replace(/[&<>"]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' })[c]!);

/** A page a person (or a headless browser) can read: who the upstream thinks you are. */
function echoPage(seen: EchoRequest): string {
  const user = String(seen.headers['kubeflow-userid'] ?? '(none)');
  const groups = String(seen.headers['kubeflow-groups'] ?? '(none)');
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>echo app</title>
<style>body{font-family:system-ui,sans-serif;max-width:48rem;margin:3rem auto;padding:0 1rem}pre{background:#f4f4f4;padding:1rem;overflow:auto}</style>
</head><body><h1>echo app</h1>
<p>The upstream received <code>${escape(seen.method)} ${escape(seen.path)}</code></p>
<p>kubeflow-userid: <strong id="user">${escape(user)}</strong></p>
<p>kubeflow-groups: <strong id="groups">${escape(groups)}</strong></p>
<pre id="headers">${escape(JSON.stringify(seen.headers, null, 2))}</pre>
<p><a href="/oauth2/sign_out">Sign out</a></p>
</body></html>`;
}
