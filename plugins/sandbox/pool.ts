/**
 * The warm pool: N started containers of the default image waiting for an exec. Each serves exactly
 * one exec and is then destroyed, so nothing leaks from one exec to the next; refills run one at a
 * time in the background so a burst does not make the daemon fight its own execs for CPU.
 */
import type { Logger } from 'pino';
import { Backoff } from '../../client/timing.js';
import type { Containers, Managed } from './containers.js';
import type { Limits } from './hardening.js';

export interface PoolOptions {
  size: number;
  image: string;
  limits: Limits;
  log: Logger;
  /** Whether refilling may run now (engine up, not stopping). */
  canRefill: () => boolean;
}

export class WarmPool {
  private readonly idle: Managed[] = [];
  private refilling: Promise<void> | null = null;
  private readonly backoff = new Backoff({ initialMs: 500, maxMs: 30_000 });
  private retry: NodeJS.Timeout | null = null;
  lastError: string | null = null;

  constructor(
    private readonly containers: Containers,
    private readonly opts: PoolOptions,
  ) {}

  get size(): number {
    return this.opts.size;
  }

  get available(): number {
    return this.idle.length;
  }

  ids(): string[] {
    return this.idle.map((m) => m.id);
  }

  /** A warm container if one is ready; starts a refill either way. */
  take(): Managed | null {
    const m = this.idle.shift() ?? null;
    this.refill();
    return m;
  }

  /** Top the pool up in the background (no-op when full or already refilling). */
  refill(): void {
    if (this.refilling || this.retry || this.opts.size === 0) return;
    this.refilling = this.fill().finally(() => {
      this.refilling = null;
    });
  }

  /** Resolves once the running refill (if any) is done. */
  async settled(): Promise<void> {
    await this.refilling;
  }

  private async fill(): Promise<void> {
    while (this.idle.length < this.opts.size && this.opts.canRefill()) {
      try {
        const m = await this.containers.create({ image: this.opts.image, kind: 'pool', limits: this.opts.limits });
        if (!this.opts.canRefill()) {
          await this.containers.remove(m.container);
          return;
        }
        this.idle.push(m);
        this.backoff.reset();
        this.lastError = null;
      } catch (err) {
        const delay = this.backoff.next();
        this.lastError = (err as Error).message;
        this.opts.log.warn({ err, failures: this.backoff.attempts }, 'warm pool refill failed');
        // Stop here and retry later with backoff (a timer, so shutdown never waits on it).
        this.retry = setTimeout(() => {
          this.retry = null;
          this.refill();
        }, delay);
        this.retry.unref();
        return;
      }
    }
  }

  /** Remove every idle container (shutdown, engine lost). */
  async drain(): Promise<void> {
    this.cancelRetry();
    const all = this.idle.splice(0);
    await Promise.all(all.map((m) => this.containers.remove(m.container)));
  }

  /** Forget idle containers without asking the engine (it is gone; they went with it or get reaped). */
  forget(): void {
    this.cancelRetry();
    this.idle.splice(0);
  }

  /** Reset the backoff (engine came back: try at once). */
  cancelRetry(): void {
    if (this.retry) clearTimeout(this.retry);
    this.retry = null;
    this.backoff.reset();
  }
}
