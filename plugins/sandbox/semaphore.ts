/** A counting semaphore with a bounded wait queue: past the bound callers get OVERLOADED at once. */
import { DaemonError } from '../../daemon/plugin-api.js';

export class Semaphore {
  private active = 0;
  private readonly waiters: Array<{ resolve: () => void; reject: (e: Error) => void }> = [];

  constructor(
    private readonly max: number,
    private readonly maxQueue: number,
  ) {}

  get running(): number {
    return this.active;
  }

  get queued(): number {
    return this.waiters.length;
  }

  async acquire(signal?: AbortSignal): Promise<() => void> {
    if (this.active < this.max) {
      this.active++;
      return this.releaser();
    }
    if (this.waiters.length >= this.maxQueue) {
      throw new DaemonError(
        'OVERLOADED',
        `sandbox busy: ${this.active} execs running and ${this.waiters.length} queued`,
        { running: this.active, queued: this.waiters.length },
      );
    }
    await new Promise<void>((resolve, reject) => {
      const w = { resolve, reject };
      this.waiters.push(w);
      signal?.addEventListener(
        'abort',
        () => {
          const i = this.waiters.indexOf(w);
          if (i >= 0) {
            this.waiters.splice(i, 1);
            reject(new DaemonError('CANCELLED', 'cancelled while waiting for a sandbox slot'));
          }
        },
        { once: true },
      );
    });
    return this.releaser();
  }

  /** Fail everyone still waiting (shutdown). */
  rejectAll(err: Error): void {
    for (const w of this.waiters.splice(0)) w.reject(err);
  }

  private releaser(): () => void {
    let done = false;
    return () => {
      if (done) return;
      done = true;
      const next = this.waiters.shift();
      // Hand the slot straight to the next waiter: `active` stays the same.
      if (next) next.resolve();
      else this.active--;
    };
  }
}
