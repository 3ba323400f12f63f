/** The shared helpers of client/: time (sleep, withTimeout, backoff, drain) and validation issues. */
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { formatIssues, listIssues } from '../../client/issues.js';
import { Backoff, drainUntil, settledWithin, sleep, TimeoutError, withTimeout } from '../../client/timing.js';

describe('time helpers (fake timers)', () => {
  beforeEach(() => void vi.useFakeTimers());
  afterEach(() => void vi.useRealTimers());

  it('sleep resolves after its time, and rejects at once when its signal aborts', async () => {
    let done = false;
    const p = sleep(100).then(() => (done = true));
    await vi.advanceTimersByTimeAsync(99);
    expect(done).toBe(false);
    await vi.advanceTimersByTimeAsync(1);
    await p;
    expect(done).toBe(true);
    const ac = new AbortController();
    const q = sleep(1000, { signal: ac.signal });
    ac.abort(new Error('stop'));
    await expect(q).rejects.toThrow('stop');
    await expect(sleep(5, { signal: ac.signal })).rejects.toThrow('stop');
  });

  it('withTimeout settles as the promise does, or rejects with a TimeoutError naming what did not finish', async () => {
    await expect(withTimeout(Promise.resolve(7), 10, 'x')).resolves.toBe(7);
    await expect(withTimeout(Promise.reject(new Error('no')), 10, 'x')).rejects.toThrow('no');
    const slow = withTimeout(new Promise(() => undefined), 50, 'start of kg');
    const seen = slow.catch((e: unknown) => e);
    await vi.advanceTimersByTimeAsync(50);
    const e = await seen;
    expect(e).toBeInstanceOf(TimeoutError);
    expect(e).toMatchObject({ ms: 50, message: 'start of kg did not finish within 50 ms' });
  });

  it('settledWithin says whether work settled in time, a rejection included', async () => {
    await expect(settledWithin(Promise.reject(new Error('x')), 10)).resolves.toBe(true);
    const late = settledWithin(new Promise(() => undefined), 10);
    await vi.advanceTimersByTimeAsync(10);
    await expect(late).resolves.toBe(false);
  });

  it('drainUntil lets work finish until finishBy, then aborts what is left and waits for it until abortedBy', async () => {
    const now = Date.now();
    const work = new Map<string, { done: Promise<void>; finish: () => void }>();
    for (const [id, ms] of [
      ['quick', 10],
      ['slow', 10_000],
    ] as const) {
      let finish!: () => void;
      const done = new Promise<void>((r) => (finish = r)).then(() => void work.delete(id));
      setTimeout(() => finish(), ms);
      work.set(id, { done, finish });
    }
    const aborted: string[] = [];
    const p = drainUntil({
      inflight: () => [...work.keys()],
      done: (id) => work.get(id)?.done ?? Promise.resolve(),
      finishBy: now + 100,
      abort: (left) => {
        aborted.push(...left);
        for (const id of left) work.get(id)!.finish();
      },
      abortedBy: now + 200,
    });
    await vi.advanceTimersByTimeAsync(100);
    await expect(p).resolves.toEqual({ finished: 1, left: ['slow'] });
    expect(aborted).toEqual(['slow']);
  });
});

describe('Backoff', () => {
  it('doubles from the initial delay up to the cap, spread by the jitter, and starts over on reset', () => {
    const mid = new Backoff({ initialMs: 100, maxMs: 1000, random: () => 0.5 });
    expect([1, 2, 3, 4, 5, 6].map(() => mid.next())).toEqual([100, 200, 400, 800, 1000, 1000]);
    expect(mid.attempts).toBe(6);
    mid.reset();
    expect(mid.next()).toBe(100);
    const low = new Backoff({ initialMs: 100, maxMs: 1000, jitter: 0.2, random: () => 0 });
    const high = new Backoff({ initialMs: 100, maxMs: 1000, jitter: 0.2, random: () => 1 });
    expect([low.next(), low.next()]).toEqual([80, 160]);
    expect([high.next(), high.next()]).toEqual([120, 240]);
  });
});

describe('validation issues', () => {
  const issues = [
    { path: ['messages', 0, 'content'], message: 'Required', code: 'invalid_type' },
    { path: [], message: 'Unrecognized key: "x"' },
  ];
  it('lists dotted paths (the root named when empty) and formats one line, optionally counting the rest', () => {
    expect(listIssues(issues)).toEqual([
      { path: 'messages.0.content', message: 'Required', code: 'invalid_type' },
      { path: '(data)', message: 'Unrecognized key: "x"' },
    ]);
    expect(formatIssues(issues, { root: '(file)' })).toBe(
      'messages.0.content: Required; (file): Unrecognized key: "x"',
    );
    expect(formatIssues(issues, { max: 1 })).toBe('messages.0.content: Required (+1 more)');
  });
});
