/** The error `withTimeout` rejects with: callers tell a deadline from a failure by its class. */
export class TimeoutError extends Error {
  constructor(message: string, readonly ms: number) {
    super(message);
    this.name = 'TimeoutError';
  }
}

/**
 * Race a promise against a deadline: it settles as `p` does, or rejects with a `TimeoutError`
 * ("<what> did not finish within <ms> ms") once `ms` has passed. The timer never keeps the process
 * alive, and `p` is not cancelled (pass it a signal of its own for that).
 */
export function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const t = setTimeout(() => reject(new TimeoutError(`${what} did not finish within ${ms} ms`, ms)), ms);
    t.unref();
    p.then(
      (v) => (clearTimeout(t), resolve(v)),
      (e) => (clearTimeout(t), reject(e)),
    );
  });
}
