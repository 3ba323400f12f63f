/**
 * A bounded serial queue: saves and restores run one at a time, in arrival order, so two
 * checkpoints never interleave and a restore never races a save. A full queue refuses at once
 * (OVERLOADED) instead of growing without bound.
 */
import { DaemonError } from '../../daemon/plugin-api.js';

export class SerialQueue {
  private tail: Promise<unknown> = Promise.resolve();
  private waiting = 0;
  private active = false;

  constructor(private readonly maxWaiting: number) {}

  /** Jobs queued behind the running one. */
  get pending(): number {
    return this.waiting;
  }

  get busy(): boolean {
    return this.active || this.waiting > 0;
  }

  run<T>(job: () => Promise<T>): Promise<T> {
    if (this.waiting >= this.maxWaiting) {
      return Promise.reject(
        new DaemonError('OVERLOADED', `${this.waiting} checkpoint operations are already queued`, {
          pending: this.waiting,
        }),
      );
    }
    this.waiting++;
    const out = this.tail.then(() => {
      this.waiting--;
      this.active = true;
      return job().finally(() => void (this.active = false));
    });
    this.tail = out.catch(() => undefined);
    return out;
  }

  /** Resolves once everything queued so far has finished. */
  idle(): Promise<void> {
    return this.tail.then(() => undefined);
  }
}
