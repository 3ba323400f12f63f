/**
 * The monitor under a flood, against a real daemon: the log is a sample (and says so), while the
 * counts stay exact, lifecycle events are never sampled away, a filter's rare match still shows,
 * and tokens/s is scaled by what the daemon skipped. The exact figures are read through the hook
 * itself (a probe component); what the user sees, through the App's frames.
 */
import React, { useMemo } from 'react';
import { Text } from 'ink';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { render } from 'ink-testing-library';
import { EventClient } from '../../client/index.js';
import { FrameClock } from '../../interfaces/monitor/frame-clock.js';
import { useEventStream } from '../../interfaces/monitor/hooks/use-event-stream.js';
import type { StreamState } from '../../interfaces/monitor/state/stream.js';
import type { DaemonHandle } from '../helpers/daemon-process.js';
import { sleep, startMonitorDaemon, stripAnsi, waitUntil } from './helpers.js';
import { mountApp } from './mount.js';

let daemon: DaemonHandle;
let client: EventClient;

beforeAll(async () => {
  daemon = await startMonitorDaemon();
  client = await EventClient.connect({ socketPath: daemon.socketPath });
});

afterAll(async () => {
  await client?.close();
  await daemon?.stop();
});

/** The hook's state, one JSON line per render. */
function Probe({ client: c }: { client: EventClient }): React.JSX.Element {
  const clock = useMemo(() => new FrameClock({ fastMs: 50, slowMs: 200 }), []);
  const { state } = useEventStream(c, { clock, capacity: 1000 });
  return <Text>{JSON.stringify(summary(state))}</Text>;
}

function summary(s: StreamState) {
  const names = (name: string): number => s.log.filter((e) => e.event === name).length;
  return {
    seen: s.received,
    burst: s.byNamespace.burst ?? 0,
    skipped: s.skipped,
    sampling: s.sampling,
    many: names('burst:many'),
    marker: names('agent:marker'),
    tokens: s.completionTotals.tokens,
    row: s.completions.r1?.tokens ?? null,
    status: s.completions.r1?.status ?? null,
  };
}
type Summary = ReturnType<typeof summary>;

function mountProbe() {
  const r = render(<Probe client={client} />);
  const read = (): Summary | null => {
    try {
      // Ink wraps the line at the terminal's width.
      return JSON.parse(stripAnsi(r.lastFrame() ?? '').replace(/\n/g, '')) as Summary;
    } catch {
      return null;
    }
  };
  const until = async (ok: (s: Summary) => boolean, what: string, ms = 8000): Promise<Summary> =>
    (await waitUntil(read, (s) => s !== null && ok(s), ms, what))!;
  return { ...r, until };
}

const seq = async (): Promise<number> =>
  Number((await client.request<{ events: { seq: number } }>('system:health')).events.seq);

describe('the monitor under a flood', () => {
  it('counts every event exactly while the log gets a sample, and never samples away a lifecycle event', async () => {
    const p = mountProbe();
    try {
      await p.until((s) => s.seen > 0, 'the probe');
      // One request: 3,000 events in one breath, then an agent event right behind them.
      await client.request('burst:emit', {
        n: 3000,
        event: 'burst:many',
        tail: { event: 'agent:marker', data: { note: 'after the flood' } },
      });
      const total = await seq();
      // Exact: history up to the census's start, then census frames and skips (the reports come once a second).
      const s = await p.until((x) => x.seen === total && x.marker === 1, `${total} seen`);
      expect(s.burst).toBe(3000);
      // The log has a sample of the flood (the census's burst of 100, little more) and knows what it lacks.
      expect(s.many).toBeGreaterThanOrEqual(100);
      expect(s.many).toBeLessThan(200);
      expect(s.many + s.skipped).toBe(3000);
      expect(s.sampling).toBe(true);
      // A few quiet seconds later it is no longer sampling; the count of what it lacks stays.
      const later = await p.until((x) => !x.sampling, 'sampling to end');
      expect(later.skipped).toBe(s.skipped);
      expect(later.seen).toBe(total);
    } finally {
      p.unmount();
    }
  }, 30_000);

  it('scales tokens/s by the token events the daemon skipped, and lets the result settle the request', async () => {
    const p = mountProbe();
    try {
      await p.until((s) => s.seen > 0, 'the probe');
      await client.request('burst:emit', { n: 1, event: 'completion:started', data: { request_id: 'r1', model: 'm' } });
      // 1,000 token events of one token each (4 characters), far over the token subscription's 100 a second.
      await client.request('burst:emit', {
        n: 1000,
        event: 'completion:token',
        data: { request_id: 'r1', text: 'abcd' },
      });
      const running = await p.until((x) => x.tokens === 1000, 'the skipped tokens estimated');
      expect(running.status).toBe('running');
      expect(running.row).toBeGreaterThanOrEqual(100); // the delivered ones, counted against the request
      expect(running.row).toBeLessThan(1000);
      await client.request('burst:emit', {
        n: 1,
        event: 'completion:result',
        data: { request_id: 'r1', usage: { output_tokens: 1000 } },
      });
      const done = await p.until((x) => x.status === 'completed', 'the result');
      expect(done.row).toBe(1000);
      expect(done.tokens).toBe(1000); // the estimate is not counted a second time
    } finally {
      p.unmount();
    }
  }, 30_000);

  it('says the log is sampled, and with a filter still shows its rare match at the end of a flood', async () => {
    const m = mountApp(client, { waitMs: 10_000 });
    const { frame, until } = m;
    try {
      await until((f) => f.includes('q quit') && /● \w+/.test(f), 'ready');
      await sleep(1200); // the buckets refill after the tests before
      await client.request('burst:emit', { n: 5000, event: 'burst:many' });
      await until((f) => /sampled, \d+(\.\d+)?k? skipped ╗/.test(f), 'the sampled log title');
      const subscriptions = async () => (await client.request('system:health', {})).subscribers;
      const before = await subscriptions();
      m.stdin.write('/burst:rare\r');
      await until((f) => f.includes('[burst:rare]'), 'the filter');
      await vi.waitFor(async () => expect(await subscriptions()).toBeGreaterThan(before)); // its own subscription is made
      // The census is spent by the flood; the rare event comes right behind it.
      await client.request('burst:emit', {
        n: 5000,
        event: 'burst:many',
        tail: { event: 'burst:rare', data: { tag: 'needle' } },
      });
      const f = await until((x) => x.includes('burst:rare tag=needle'), 'the rare event');
      expect(f).not.toContain('burst:many');
      await sleep(1500); // the census's report of the flood comes in
      // Nothing matching the filter is missing: no "skipped" in the title.
      expect(frame()).not.toMatch(/skipped/);
    } finally {
      m.unmount();
    }
  }, 40_000);
});
