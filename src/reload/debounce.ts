/**
 * A burst of file events read once: Kubernetes' update of a mounted volume is several events (a new
 * timestamped directory, a `..data_tmp` symlink, its rename over `..data`), an editor's save is several
 * more. Each event restarts the delay; the reload runs once the files have been quiet for it.
 */
export interface Timers {
  set(fire: () => void, ms: number): unknown;
  clear(handle: unknown): void;
}

/** Node's timers, unreferenced: a pending reload never keeps a stopping process alive. */
export const nodeTimers: Timers = {
  set: (fire, ms) => setTimeout(fire, ms).unref(),
  clear: (handle) => clearTimeout(handle as NodeJS.Timeout),
};

export class Debouncer {
  private handle: unknown = null;

  constructor(
    private readonly delayMs: number,
    private readonly fire: () => void,
    private readonly timers: Timers = nodeTimers,
  ) {}

  /** An event: (re)starts the delay. */
  poke(): void {
    if (this.handle !== null) this.timers.clear(this.handle);
    this.handle = this.timers.set(() => {
      this.handle = null;
      this.fire();
    }, this.delayMs);
  }

  get pending(): boolean {
    return this.handle !== null;
  }

  /** Drops a pending fire (shutdown): no timer is left behind. */
  cancel(): void {
    if (this.handle !== null) this.timers.clear(this.handle);
    this.handle = null;
  }
}
