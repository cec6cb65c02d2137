// A worker thread of the memory step (orchestrate.mjs): issues sessions number `from` … `from + count - 1`
// with bench/sessions.mjs (the service's own store code), `parallel` at a time, and posts their Cookie
// headers back in batches, so the orchestrator can check them while more are being sealed.
import { setPriority } from 'node:os';
import { parentPort, workerData } from 'node:worker_threads';
import { createSessionMaker } from './sessions.mjs';

// This thread only (Linux: setpriority on the calling thread): on the core the sealing shares with the
// orchestrator's checking client, the client goes first, so the service always has sessions to open.
setPriority(0, 10);

const { root, rawConfig, idToken, issuer, from, count, parallel, batch } = workerData;
const maker = await createSessionMaker(root, rawConfig, {
  idToken,
  // As many users as sessions (what 100k sessions are in a real deployment): each session has its own
  // user and subject index set in Redis. The ID token inside is the same for all (signing 100k would
  // take minutes); sessions stay distinct (own refresh token, own seal, own cookie).
  owner: (i) => ({ userId: `user-${i}@example.com`, issuer, subject: `bench-subject-${i}`, sid: undefined }),
});
let pending = [];
let bytes = 0;
for (let i = from; i < from + count; i += parallel) {
  const made = await Promise.all(Array.from({ length: Math.min(parallel, from + count - i) }, (_, k) => maker.make(i + k)));
  for (const m of made) {
    pending.push(m.cookie);
    bytes = m.valueBytes;
  }
  if (pending.length >= batch) {
    parentPort.postMessage({ cookies: pending });
    pending = [];
  }
}
if (pending.length) parentPort.postMessage({ cookies: pending });
await maker.close();
parentPort.postMessage({ done: true, valueBytes: bytes });
