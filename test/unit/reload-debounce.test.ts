/**
 * The pure parts of watching (src/reload/debounce.ts, source.ts): a burst of events is one reload, after
 * the last event; the fingerprint tells "nothing changed" from a change; the shown hash is sha256sum's.
 */
import { createHash } from 'node:crypto';
import { Debouncer, type Timers } from '../../src/reload/debounce.js';
import { fingerprintOf, hashOfText } from '../../src/reload/source.js';

/** Timers the test runs by hand: `advance(ms)` fires what is due, in order. */
class ManualTimers implements Timers {
  now = 0;
  private next = 1;
  readonly pending = new Map<number, { at: number; fire: () => void }>();
  set(fire: () => void, ms: number): unknown {
    const handle = this.next++;
    this.pending.set(handle, { at: this.now + ms, fire });
    return handle;
  }
  clear(handle: unknown): void {
    this.pending.delete(handle as number);
  }
  advance(ms: number): void {
    this.now += ms;
    for (const [handle, { at, fire }] of [...this.pending].sort(([, a], [, b]) => a.at - b.at)) {
      if (at > this.now) continue;
      this.pending.delete(handle);
      fire();
    }
  }
}

describe('Debouncer', () => {
  test('a burst of events fires once, the delay after the last one', () => {
    const timers = new ManualTimers();
    let fired = 0;
    const debouncer = new Debouncer(200, () => fired++, timers);
    // Kubernetes' update: a new directory, ..data_tmp, its rename over ..data — a few ms apart.
    debouncer.poke();
    timers.advance(5);
    debouncer.poke();
    timers.advance(150);
    debouncer.poke();
    timers.advance(199);
    expect(fired).toBe(0);
    expect(debouncer.pending).toBe(true);
    timers.advance(1);
    expect(fired).toBe(1);
    expect(debouncer.pending).toBe(false);
    expect(timers.pending.size).toBe(0);
  });

  test('events after a fire start a new delay; cancel leaves no timer', () => {
    const timers = new ManualTimers();
    let fired = 0;
    const debouncer = new Debouncer(50, () => fired++, timers);
    debouncer.poke();
    timers.advance(50);
    debouncer.poke();
    timers.advance(50);
    expect(fired).toBe(2);
    debouncer.poke();
    debouncer.cancel();
    timers.advance(1_000);
    expect(fired).toBe(2);
    expect(timers.pending.size).toBe(0);
  });
});

describe('hashes', () => {
  test('the shown hash is the first 12 hex digits of sha256sum', () => {
    const text = 'rules: []\n';
    expect(hashOfText(text)).toBe(createHash('sha256').update(text).digest('hex').slice(0, 12));
  });

  test('the fingerprint covers every file, not their order, and changes with any of them', () => {
    const a = fingerprintOf(new Map([['(file)', 'x: 1'], ['session.secretsFile', 's1']]));
    expect(fingerprintOf(new Map([['session.secretsFile', 's1'], ['(file)', 'x: 1']]))).toBe(a);
    expect(fingerprintOf(new Map([['(file)', 'x: 1'], ['session.secretsFile', 's2']]))).not.toBe(a);
    expect(fingerprintOf(new Map([['(file)', 'x: 2'], ['session.secretsFile', 's1']]))).not.toBe(a);
    // The same text under another field is another set of files.
    expect(fingerprintOf(new Map([['(file)', 'x: 1'], ['oidc.clientSecretFile', 's1']]))).not.toBe(a);
  });
});
