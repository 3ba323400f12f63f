import { describe, expect, it, vi } from 'vitest';
import { EventFlush } from '../../daemon/event-flush.js';

/** A connection whose write takes `ms` of CPU, as a write to a socket does. */
function sink(ms: number, log: string[], name: string) {
  return {
    flushEvents(): void {
      const end = performance.now() + ms;
      while (performance.now() < end);
      log.push(name);
    },
  };
}

/** Turns of the event loop until `cond` holds (vi.waitFor's polling interval would outlast the pause). */
async function until(cond: () => boolean): Promise<void> {
  while (!cond()) await new Promise((r) => setImmediate(r));
}

describe('EventFlush', () => {
  it('after a long pass, events marked meanwhile wait for the pause and then leave together; now() does not wait', async () => {
    const log: string[] = [];
    const flush = new EventFlush(0.25, 50);
    const slow = Array.from({ length: 20 }, (_, i) => sink(0.5, log, `s${i}`));
    for (const s of slow) flush.mark(s);
    await until(() => log.length === 20);
    // The pass took ~10 ms over 20 connections: a pause of that order follows, and what is marked in it waits.
    const late = sink(0, log, 'late');
    flush.mark(late);
    await new Promise((r) => setImmediate(r));
    expect(log).not.toContain('late');
    expect(flush.stats.pauses).toBe(1);
    const urgent = sink(0, log, 'urgent');
    flush.mark(urgent);
    flush.now(urgent);
    expect(log.at(-1)).toBe('urgent');
    await vi.waitFor(() => expect(log).toContain('late'));
    expect(log.filter((x) => x === 'urgent')).toHaveLength(1);
  });

  it('a long pass over a few connections (a slow machine, not a fan-out) is not followed by a pause', async () => {
    const log: string[] = [];
    const flush = new EventFlush(0.25, 50);
    flush.mark(sink(5, log, 'a'));
    await until(() => log.length === 1);
    flush.mark(sink(0, log, 'b'));
    await until(() => log.length === 2);
    expect(flush.stats.pauses).toBe(0);
  });

  it('a short pass is not followed by a pause', async () => {
    const log: string[] = [];
    const flush = new EventFlush(0.25, 50);
    flush.mark(sink(0, log, 'a'));
    await vi.waitFor(() => expect(log).toEqual(['a']));
    flush.mark(sink(0, log, 'b'));
    await new Promise((r) => setImmediate(r));
    await new Promise((r) => setImmediate(r));
    expect(log).toEqual(['a', 'b']);
    expect(flush.stats.pauses).toBe(0);
  });
});
