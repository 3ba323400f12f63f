/**
 * The warm pool: for each pooled language, N started containers of the default image whose
 * interpreter is already running and waiting for one exec (zygote.ts). Each serves exactly one exec
 * and is then destroyed, so nothing leaks from one exec to the next; refills run one container at a
 * time in the background so a burst does not make the daemon fight its own execs for CPU.
 */
import type { Logger } from 'pino';
import type { Containers, Managed } from './containers.js';
import type { Limits } from './hardening.js';
import type { Language } from './languages.js';
import { Backoff, withTimeout } from '../../daemon/plugin-api.js';

/** A pooled interpreter taking longer than this to start does not hold up the next container. */
const READY_WAIT_MS = 30_000;

export interface PoolOptions {
  size: number;
  languages: readonly Language[];
  image: string;
  limits: Limits;
  log: Logger;
  /** Whether refilling may run now (engine up, not stopping). */
  canRefill: () => boolean;
}

export class WarmPool {
  private readonly idle = new Map<Language, Managed[]>();
  private refilling: Promise<void> | null = null;
  private failures = 0;
  private readonly retryDelay = new Backoff({ initialMs: 500, maxMs: 30_000 });
  private retry: NodeJS.Timeout | null = null;
  /** Ends a refill's wait for an interpreter when the pool is drained or forgotten. */
  private halt = new AbortController();
  lastError: string | null = null;

  constructor(
    private readonly containers: Containers,
    private readonly opts: PoolOptions,
  ) {
    for (const l of opts.languages) this.idle.set(l, []);
  }

  /** Warm containers wanted per pooled language. */
  get size(): number {
    return this.opts.size;
  }

  get languages(): readonly Language[] {
    return this.opts.languages;
  }

  /** Warm containers ready, all languages together. */
  get available(): number {
    let n = 0;
    for (const list of this.idle.values()) n += list.length;
    return n;
  }

  /** Warm containers ready, per pooled language. */
  readyByLanguage(): Record<string, number> {
    return Object.fromEntries([...this.idle].map(([l, list]) => [l, list.length]));
  }

  ids(): string[] {
    return [...this.idle.values()].flatMap((list) => list.map((m) => m.id));
  }

  /**
   * A warm container for `language` if one is ready. The caller refills once its exec is over: a
   * container start is CPU-heavy work for the engine, better not done while the exec runs.
   */
  take(language: Language): Managed | null {
    const list = this.idle.get(language);
    if (!list) return null;
    for (const dead of list.filter((m) => m.attachment?.ended)) {
      list.splice(list.indexOf(dead), 1);
      void this.containers.discard(dead);
    }
    // One whose interpreter already waits, else one still starting (sooner than a new container).
    const i = Math.max(
      0,
      list.findIndex((m) => m.attachment?.ready),
    );
    return list.splice(i, 1)[0] ?? null;
  }

  /** Top the pool up in the background (no-op when full or already refilling). */
  refill(): void {
    if (this.refilling || this.retry || this.opts.size === 0 || this.idle.size === 0) return;
    if (this.halt.signal.aborted) this.halt = new AbortController();
    this.refilling = this.fill().finally(() => {
      this.refilling = null;
    });
  }

  /** Resolves once the running refill (if any) is done. */
  async settled(): Promise<void> {
    await this.refilling;
  }

  /** The pooled language with the fewest ready containers, if any is short. */
  private neediest(): Language | null {
    let best: Language | null = null;
    for (const [l, list] of this.idle)
      if (list.length < this.opts.size && (best === null || list.length < this.idle.get(best)!.length)) best = l;
    return best;
  }

  private async fill(): Promise<void> {
    for (let language = this.neediest(); language && this.opts.canRefill(); language = this.neediest()) {
      try {
        const m = await this.containers.create({
          image: this.opts.image,
          kind: 'pool',
          limits: this.opts.limits,
          language,
        });
        if (!this.opts.canRefill()) {
          await this.containers.discard(m);
          return;
        }
        this.idle.get(language)!.push(m);
        // A zygote that dies while it waits (its interpreter is missing, someone killed it) leaves,
        // and counts as a failure so a broken image is not restarted in a tight loop.
        m.attachment?.whenIdleEnds(() => this.died(language, m));
        // One interpreter starting at a time: they compete for the same CPUs as the execs.
        const halted = new Promise<void>((resolve) =>
          this.halt.signal.addEventListener('abort', () => resolve(), { once: true }),
        );
        await withTimeout(
          Promise.race([m.attachment?.whenReady() ?? Promise.resolve(), halted]),
          READY_WAIT_MS,
          'interpreter start',
        ).catch(() => undefined);
        if (m.attachment?.ended) continue;
        this.failures = 0;
        this.retryDelay.reset();
        this.lastError = null;
      } catch (err) {
        this.failed(err as Error);
        return;
      }
    }
  }

  private died(language: Language, m: Managed): void {
    const list = this.idle.get(language);
    const i = list?.indexOf(m) ?? -1;
    if (i < 0) return;
    list!.splice(i, 1);
    void this.containers.discard(m);
    // The engine going away closes every stream at once: that is not the pool's failure.
    if (this.opts.canRefill()) this.failed(new Error(`warm ${language} container exited while waiting`));
  }

  private failed(err: Error): void {
    this.failures++;
    this.lastError = err.message;
    this.opts.log.warn({ err, failures: this.failures }, 'warm pool refill failed');
    // Retry later with backoff (a timer, so shutdown never waits on it).
    if (this.retry) clearTimeout(this.retry);
    this.retry = setTimeout(() => {
      this.retry = null;
      this.refill();
    }, this.retryDelay.next());
    this.retry.unref();
  }

  /** Remove every idle container (shutdown, engine lost). */
  async drain(): Promise<void> {
    this.cancelRetry();
    this.halt.abort();
    const all = [...this.idle.values()].flatMap((list) => list.splice(0));
    await Promise.all(all.map((m) => this.containers.discard(m)));
  }

  /** Forget idle containers without asking the engine (it is gone; they went with it or get reaped). */
  forget(): void {
    this.cancelRetry();
    this.halt.abort();
    for (const list of this.idle.values()) for (const m of list.splice(0)) m.attachment?.close();
  }

  /** Reset the backoff (engine came back: try at once). */
  cancelRetry(): void {
    if (this.retry) clearTimeout(this.retry);
    this.retry = null;
    this.failures = 0;
    this.retryDelay.reset();
  }
}
