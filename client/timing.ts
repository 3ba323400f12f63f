/**
 * Time helpers, each written once for the kernel, the plugins and the clients: sleep, a timeout
 * around a promise, backoff with jitter, and the shutdown drain (let work finish until a deadline,
 * then stop what is left). Only `sleep` may keep the process alive, and only when asked to.
 */

/**
 * Resolve after `ms`; with a signal, reject with its reason as soon as it aborts. `unref`: the wait
 * alone does not keep the process alive (for a daemon's background loops; a CLI waiting on it must not).
 */
export function sleep(ms: number, opts: { signal?: AbortSignal; unref?: boolean } = {}): Promise<void> {
  const { signal } = opts;
  if (signal?.aborted) return Promise.reject(signal.reason);
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => (signal?.removeEventListener('abort', onAbort), resolve()), Math.max(0, ms));
    if (opts.unref) t.unref();
    const onAbort = (): void => (clearTimeout(t), reject(signal!.reason));
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/** The error `withTimeout` rejects with: callers tell a deadline from a failure by its class. */
export class TimeoutError extends Error {
  constructor(
    message: string,
    readonly ms: number,
  ) {
    super(message);
    this.name = 'TimeoutError';
  }
}

/**
 * Race a promise against a deadline: it settles as `p` does, or rejects with a `TimeoutError`
 * ("<what> did not finish within <ms> ms") once `ms` has passed. `p` is not cancelled (give it a
 * signal of its own for that).
 */
export function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const t = setTimeout(() => reject(new TimeoutError(`${what} did not finish within ${ms} ms`, ms)), Math.max(0, ms));
    t.unref();
    p.then(
      (v) => (clearTimeout(t), resolve(v)),
      (e) => (clearTimeout(t), reject(e)),
    );
  });
}

/** Wait for `work` to settle (fulfilled or rejected), at most `ms`: true when it settled in time. */
export function settledWithin(work: Promise<unknown>, ms: number): Promise<boolean> {
  return withTimeout(work, ms, 'work').then(
    () => true,
    (e: unknown) => !(e instanceof TimeoutError),
  );
}

/**
 * Exponential backoff with jitter: each `next()` is twice the previous delay (from `initialMs`,
 * capped at `maxMs`), spread by ±`jitter` so that many clients that lost the same backend do not
 * all come back in the same instant. `reset()` after a success.
 */
export class Backoff {
  private base: number;
  private tries = 0;

  constructor(
    private readonly opts: {
      initialMs: number;
      maxMs: number;
      factor?: number;
      jitter?: number;
      random?: () => number;
    },
  ) {
    this.base = opts.initialMs;
  }

  /** The delay before the next attempt, in ms. */
  next(): number {
    const jitter = this.opts.jitter ?? 0.2;
    const r = (this.opts.random ?? Math.random)();
    const delay = Math.round(Math.min(this.opts.maxMs, this.base * (1 + jitter * (2 * r - 1))));
    this.base = Math.min(this.base * (this.opts.factor ?? 2), this.opts.maxMs);
    this.tries++;
    return Math.max(0, delay);
  }

  /** The next delay before jitter, without advancing. */
  peek(): number {
    return this.base;
  }

  /** Attempts since the last reset. */
  get attempts(): number {
    return this.tries;
  }

  reset(): void {
    this.base = this.opts.initialMs;
    this.tries = 0;
  }
}

/**
 * The shutdown drain: let the work in flight finish until `finishBy` (epoch ms); hand what is still
 * in flight then to `abort` (cancel it, hand it back), and give that until `abortedBy` to settle.
 * Answers how many finished in time and which were left.
 */
export async function drainUntil<T>(opts: {
  /** The work in flight, asked again once the first wait is over. */
  inflight: () => T[];
  done: (item: T) => Promise<unknown>;
  finishBy: number;
  abort?: (left: T[]) => void | Promise<unknown>;
  abortedBy?: number;
}): Promise<{ finished: number; left: T[] }> {
  const before = opts.inflight();
  await settledWithin(Promise.allSettled(before.map(opts.done)), opts.finishBy - Date.now());
  const left = opts.inflight();
  if (left.length && opts.abort) {
    await opts.abort(left);
    await settledWithin(Promise.allSettled(left.map(opts.done)), (opts.abortedBy ?? opts.finishBy) - Date.now());
  }
  return { finished: Math.max(0, before.length - left.length), left };
}
