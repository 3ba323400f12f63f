import { describe, expect, it } from 'vitest';
import { IdleCollector, fullCollection } from '../../daemon/idle-gc.js';

/** A process whose memory the test sets, and a collection that brings it back to `floor`. */
function fake(floor: number) {
  const m = { rss: floor, collections: 0 };
  const c = new IdleCollector(
    () => {
      m.collections++;
      m.rss = floor;
    },
    () => m.rss,
  );
  return { m, c };
}

describe('idle collection', () => {
  it('collects once when a busy period that grew memory ends, not while busy and not again while idle', () => {
    const MB = 1048576;
    const { m, c } = fake(100 * MB);
    m.rss = 900 * MB;
    c.check(0.9);
    c.check(0.6);
    expect(m.collections).toBe(0);
    c.check(0.01);
    expect(m.collections).toBe(1);
    expect(m.rss).toBe(100 * MB);
    expect(c.stats.freed_mb).toBe(800);
    c.check(0.01);
    c.check(0);
    expect(m.collections).toBe(1);
  });

  it('leaves alone a busy period that did not grow memory', () => {
    const { m, c } = fake(100);
    m.rss = 110;
    c.check(0.9);
    c.check(0);
    expect(m.collections).toBe(0);
  });

  it('a process started without --expose-gc can still run a full collection', () => {
    const gc = fullCollection();
    expect(typeof gc).toBe('function');
    expect(() => gc!()).not.toThrow();
  });
});
