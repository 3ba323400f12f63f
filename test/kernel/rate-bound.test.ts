/**
 * Rate-bounded subscriptions (`monitor:subscribe {max_rate}`), through the real socket: what is over
 * the rate is not sent but counted, reported once a second as `monitor:skipped`, and delivered +
 * skipped is exactly what was emitted. Plus the token bucket and the tally on their own.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { EventClient } from '../../client/event-client.js';
import type { EventFrame, SkippedData } from '../../client/protocol.js';
import type { DaemonHandle } from '../helpers/daemon-process.js';
import { errorOf, waitFor } from '../helpers/events.js';
import { MAX_SKIPPED_NAMES, OTHER_EVENTS, RateBound } from '../../daemon/rate-bound.js';
import { startKernel } from './kit.js';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Emit `rate` events a second for `seconds` in requests of `chunk`; resolves to how many and for how long. */
async function emitAt(
  c: EventClient,
  rate: number,
  seconds: number,
  event = 'testkit:tick',
  chunk = 100,
): Promise<{ sent: number; elapsed: number }> {
  const t0 = Date.now();
  let sent = 0;
  while (Date.now() - t0 < seconds * 1000) {
    if (((Date.now() - t0) / 1000) * rate - sent >= chunk) {
      await c.request('testkit:emit', { count: chunk, event });
      sent += chunk;
    } else await sleep(5);
  }
  return { sent, elapsed: (Date.now() - t0) / 1000 };
}

const skippedOf = (frames: EventFrame[]): SkippedData[] =>
  frames.filter((f) => f.event === 'monitor:skipped').map((f) => f.data as unknown as SkippedData);
const eventsOf = (frames: EventFrame[]): EventFrame[] => frames.filter((f) => f.event !== 'monitor:skipped');
const total = (frames: EventFrame[]): number =>
  eventsOf(frames).length + skippedOf(frames).reduce((n, s) => n + s.count, 0);

describe('rate-bounded subscriptions through the socket', () => {
  let d: DaemonHandle;
  beforeAll(async () => {
    d = await startKernel();
  });
  afterAll(async () => {
    await d?.stop();
  });

  it('sends at most about max_rate a second, counts the rest exactly, and leaves an unbounded subscription whole', async () => {
    const c = await d.connect();
    try {
      const bounded: EventFrame[] = [];
      const all: EventFrame[] = [];
      const sub = await c.subscribe(['testkit:*'], (f) => bounded.push(f), { maxRate: 50 });
      await c.subscribe(['testkit:*'], (f) => all.push(f));
      expect(sub.maxRate).toBe(50);
      expect(typeof sub.startSeq).toBe('number');

      const a = await emitAt(c, 2000, 3);
      const b = await emitAt(c, 2000, 0.3, 'testkit:tock');
      const emitted = a.sent + b.sent;
      const seconds = a.elapsed + b.elapsed;
      // The last report comes within a second of the last skip.
      await waitFor(() => total(bounded) >= emitted, 5000, 'the last monitor:skipped');
      await sleep(1200); // and nothing more arrives after it
      const delivered = eventsOf(bounded);
      const reports = skippedOf(bounded);

      // The unbounded subscription on the same connection got every event, in seq order.
      expect(all).toHaveLength(emitted);
      expect(all.every((f, i) => i === 0 || f.seq === all[i - 1].seq + 1)).toBe(true);
      // The bounded one: the burst (50) plus 50 a second, give or take timer slack.
      expect(delivered.length).toBeLessThanOrEqual(50 + 50 * seconds + 10);
      expect(delivered.length).toBeGreaterThanOrEqual(50 * seconds * 0.5);
      // Delivered + skipped is exactly what was emitted, name by name.
      expect(delivered.length + reports.reduce((n, s) => n + s.count, 0)).toBe(emitted);
      const byName = (name: string): number =>
        delivered.filter((f) => f.event === name).length + reports.reduce((n, s) => n + (s.by_event[name] ?? 0), 0);
      expect(byName('testkit:tick')).toBe(a.sent);
      expect(byName('testkit:tock')).toBe(b.sent);
      // Delivered seqs and skipped ranges together cover the emitted range without overlap.
      const first = all[0].seq;
      const last = all[all.length - 1].seq;
      for (const r of reports) {
        expect(r.subscription).toBe(sub.id);
        expect(r.first_seq).toBeGreaterThanOrEqual(first);
        expect(r.last_seq).toBeLessThanOrEqual(last);
        expect(r.last_seq - r.first_seq + 1).toBeGreaterThanOrEqual(r.count);
        expect(Object.values(r.by_event).reduce((x, y) => x + y, 0)).toBe(r.count);
      }
      // The frames carry the subscription id, so the client hands them to it; about one a second.
      const frames = bounded.filter((f) => f.event === 'monitor:skipped');
      expect(
        frames.every((f) => f.subscription === sub.id && f.seq === (f.data as unknown as SkippedData).last_seq),
      ).toBe(true);
      expect(reports.length).toBeGreaterThanOrEqual(2);
      expect(reports.length).toBeLessThanOrEqual(Math.ceil(seconds) + 2);
      // Once a second by the daemon's clock (the frame's timestamp is when it was written).
      for (let i = 1; i < frames.length; i++)
        expect(frames[i].timestamp - frames[i - 1].timestamp).toBeGreaterThan(0.9);
      // Reports keep their place in the stream: every event delivered after a report is newer than what it counts.
      bounded.forEach((f, i) => {
        if (f.event !== 'monitor:skipped') return;
        const lastSeq = (f.data as unknown as SkippedData).last_seq;
        expect(eventsOf(bounded.slice(i + 1)).every((later) => later.seq > lastSeq)).toBe(true);
      });
    } finally {
      await c.close();
    }
  }, 30_000);

  it('sends no monitor:skipped while a subscription stays under its rate', async () => {
    const c = await d.connect();
    try {
      const frames: EventFrame[] = [];
      await c.subscribe('testkit:tick', (f) => frames.push(f), { maxRate: 1000 });
      await c.request('testkit:emit', { count: 20 });
      await sleep(1500);
      expect(frames.map((f) => f.event)).toEqual(Array(20).fill('testkit:tick'));
    } finally {
      await c.close();
    }
  });

  it('answers the rate in monitor:subscribe and refuses a bad max_rate with INVALID_DATA', async () => {
    const r = await d.client.request<{ subscription_id: string; max_rate?: number; seq: number }>('monitor:subscribe', {
      patterns: ['testkit:never_emitted'],
      max_rate: 10,
    });
    expect(r.max_rate).toBe(10);
    await d.client.request('monitor:unsubscribe', { subscription_id: r.subscription_id });
    const plain = await d.client.request<{ subscription_id: string; max_rate?: number }>('monitor:subscribe', {
      patterns: ['testkit:never_emitted'],
    });
    expect(plain.max_rate).toBeUndefined();
    await d.client.request('monitor:unsubscribe', { subscription_id: plain.subscription_id });
    for (const bad of [0, -5, 1.5, '10', null, 10_000_000]) {
      const e = await errorOf(
        d.client.request<Record<string, unknown>>('monitor:subscribe', { patterns: ['*'], max_rate: bad }),
      );
      expect(e.code, String(bad)).toBe('INVALID_DATA');
      expect((e.details as { issues: Array<{ path: string }> }).issues.map((i) => i.path)).toContain('max_rate');
    }
    // None of the refused ones left a subscription behind.
    const h = await d.client.request<{ subscribers: number }>('system:health');
    const c = await d.connect();
    try {
      expect((await c.request<{ subscribers: number }>('system:health')).subscribers).toBe(h.subscribers);
    } finally {
      await c.close();
    }
  });

  it('gives history up to a seq (monitor:events until_seq), so a subscriber can backfill without overlap', async () => {
    const c = await d.connect();
    try {
      const sub = await c.subscribe('testkit:hist', () => undefined, { maxRate: 5 });
      const before = sub.startSeq!;
      await c.request('testkit:emit', { count: 5, event: 'testkit:hist' });
      const h = await c.request<{ events: Array<{ seq: number }> }>('monitor:events', {
        patterns: ['testkit:hist'],
        until_seq: before + 2,
        limit: 100,
      });
      expect(h.events.map((e) => e.seq)).toEqual([before + 1, before + 2]);
    } finally {
      await c.close();
    }
  });
});

describe('a rate-bounded subscription across a daemon restart', () => {
  it('is renewed with its rate by the client', async () => {
    const d1 = await startKernel();
    const { EventClient } = await import('../../client/event-client.js');
    const c = await EventClient.connect({ socketPath: d1.socketPath });
    let d2: DaemonHandle | null = null;
    try {
      const frames: EventFrame[] = [];
      const sub = await c.subscribe('testkit:tick', (f) => frames.push(f), { maxRate: 20 });
      let reconnected = false;
      c.on('reconnect', () => (reconnected = true));
      await d1.kill('SIGKILL');
      d2 = await startKernel({ home: d1.home });
      await waitFor(() => reconnected, 10_000, 'the reconnect');
      expect(sub.startSeq).not.toBeNull();
      const t0 = performance.now();
      await d2.client.request('testkit:emit', { count: 500 });
      // A burst of 20, plus the bucket's refill (20/s) while the 500 were being emitted: on a loaded
      // machine the emission itself can take long enough for a token or two to come back.
      const refill = Math.ceil((20 * (performance.now() - t0)) / 1000);
      await waitFor(() => total(frames) >= 500, 5000, 'the skipped report from the new daemon');
      expect(eventsOf(frames).length).toBeLessThanOrEqual(20 + refill);
      expect(total(frames)).toBe(500);
    } finally {
      await c.close();
      await (d2 ?? d1).stop();
    }
  }, 60_000);
});

describe('the token bucket and the tally', () => {
  it('admits a burst of max_rate, then max_rate a second, refilled continuously', () => {
    let t = 0;
    const b = new RateBound(10, () => t);
    const admitted = (n: number): number =>
      Array.from({ length: n }, (_, i) => b.admit('x:y', i)).filter(Boolean).length;
    expect(admitted(25)).toBe(10); // the burst
    t += 100;
    expect(admitted(5)).toBe(1); // 0.1 s refills one token
    t += 250;
    expect(admitted(5)).toBe(2); // 2.5 tokens: two whole ones, half a token kept
    t += 50;
    expect(admitted(5)).toBe(1);
    t += 60_000;
    expect(admitted(30)).toBe(10); // a long pause refills up to the burst, not beyond
    expect(b.pending).toBe(25 - 10 + 4 + 3 + 4 + 20);
  });

  it('tallies skipped events by name with their seq range, bounded in names', () => {
    const b = new RateBound(1, () => 0);
    expect(b.admit('a:b', 1)).toBe(true);
    expect(b.take()).toBeNull(); // nothing skipped: no report
    let seq = 2;
    for (let i = 0; i < MAX_SKIPPED_NAMES + 50; i++) {
      b.admit(`ns:e${i}`, seq++);
      b.admit(`ns:e${i}`, seq++);
    }
    const tally = b.take()!;
    expect(tally.count).toBe(2 * (MAX_SKIPPED_NAMES + 50));
    expect(tally.first_seq).toBe(2);
    expect(tally.last_seq).toBe(seq - 1);
    expect(Object.keys(tally.by_event)).toHaveLength(MAX_SKIPPED_NAMES + 1);
    expect(tally.by_event[OTHER_EVENTS]).toBe(100);
    expect(tally.by_event['ns:e0']).toBe(2);
    expect(Object.values(tally.by_event).reduce((x, y) => x + y, 0)).toBe(tally.count);
    // A new tally starts empty.
    expect(b.take()).toBeNull();
    b.admit('a:b', seq);
    expect(b.take()).toMatchObject({ count: 1, by_event: { 'a:b': 1 }, first_seq: seq, last_seq: seq });
  });
});
