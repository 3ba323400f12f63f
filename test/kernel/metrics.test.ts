/**
 * system:metrics: every request the router answered, by event, origin and code, with a latency
 * histogram (what the gateway's /metrics turns into agentd_requests_total and
 * agentd_request_duration_seconds), and what socket subscribers lost for not reading.
 */
import { afterEach, describe, expect, it } from 'vitest';
import type { DaemonHandle } from '../helpers/daemon-process.js';
import { waitFor } from '../helpers/events.js';
import { RawConn } from '../helpers/raw-socket.js';
import { startKernel } from './kit.js';

interface Row {
  event: string;
  origin: 'client' | 'plugin';
  count: number;
  codes: Record<string, number>;
  sum_s: number;
  buckets: number[];
}
interface Metrics {
  latency_buckets_s: number[];
  requests: Row[];
  socket: { requests: number; events_dropped: number; dropped_notices: number };
}

let d: DaemonHandle | undefined;
afterEach(async () => {
  await d?.stop();
  d = undefined;
});

const metrics = () => d!.client.request<Metrics>('system:metrics');
const row = (m: Metrics, event: string, origin: Row['origin']) =>
  m.requests.find((r) => r.event === event && r.origin === origin);

describe('system:metrics', () => {
  it('counts every answered request by event, origin and code, with a cumulative latency histogram', async () => {
    d = await startKernel();
    for (let i = 0; i < 5; i++) await d.client.request('system:ping');
    await d.client.request('testkit:sleep', { ms: 30 });
    await expect(d.client.request('testkit:conflict')).rejects.toMatchObject({ code: 'CONFLICT' });
    await expect(d.client.request('testkit:typed', { n: 'not a number' })).rejects.toMatchObject({
      code: 'INVALID_DATA',
    });
    await expect(d.client.request('nosuch:event')).rejects.toMatchObject({ code: 'UNKNOWN_EVENT' });
    // Kernel-internal events are unknown to clients: counted as `other`, not under their name.
    await expect(d.client.request('plugin:snapshot')).rejects.toMatchObject({ code: 'UNKNOWN_EVENT' });
    // testkit:recurse asks itself: the nested requests are the plugin's own.
    await d.client.request('testkit:recurse', { n: 3 });

    const m = await metrics();
    expect(m.latency_buckets_s.length).toBeGreaterThan(10);
    const ping = row(m, 'system:ping', 'client')!;
    expect(ping.codes).toEqual({ OK: 5 });
    expect(ping.count).toBe(5);
    // Cumulative, one per bound, ending at most at the count (the rest are above the last bound).
    expect(ping.buckets).toHaveLength(m.latency_buckets_s.length);
    for (let i = 1; i < ping.buckets.length; i++) expect(ping.buckets[i]).toBeGreaterThanOrEqual(ping.buckets[i - 1]!);
    expect(ping.buckets.at(-1)).toBe(5);
    const sleep = row(m, 'testkit:sleep', 'client')!;
    expect(sleep.sum_s).toBeGreaterThanOrEqual(0.03);
    const within = (s: number) => sleep.buckets[m.latency_buckets_s.indexOf(s)];
    expect(within(0.025)).toBe(0);
    expect(within(300)).toBe(1);
    expect(row(m, 'testkit:conflict', 'client')!.codes).toEqual({ CONFLICT: 1 });
    expect(row(m, 'testkit:typed', 'client')!.codes).toEqual({ INVALID_DATA: 1 });
    expect(row(m, 'other', 'client')!.codes).toEqual({ UNKNOWN_EVENT: 2 });
    expect(m.requests.some((r) => r.event === 'nosuch:event' || r.event === 'plugin:snapshot')).toBe(false);
    expect(row(m, 'testkit:recurse', 'client')!.count).toBe(1);
    expect(row(m, 'testkit:recurse', 'plugin')!.codes).toEqual({ OK: 3 });
    // This request itself is answered after its snapshot was taken.
    expect(row(m, 'system:metrics', 'client')).toBeUndefined();
    expect(row(await metrics(), 'system:metrics', 'client')!.count).toBe(1);
  });

  it('counts the events socket subscribers lost and the monitor:dropped notices that told them', async () => {
    d = await startKernel({ env: { AGENTD_DAEMON_SUBSCRIBER_QUEUE: '1000' } });
    const before = await metrics();
    expect(before.socket).toMatchObject({ events_dropped: 0, dropped_notices: 0 });
    const slow = await RawConn.connect(d.socketPath);
    try {
      slow.request('monitor:subscribe', { patterns: ['testkit:tick'] }, 'sub');
      await slow.one();
      slow.socket.pause();
      for (let i = 0; i < 20; i++) await d.client.request('testkit:emit', { count: 1000, size: 200 });
      slow.socket.resume();
      const told: number[] = [];
      let delivered = 0;
      await waitFor(
        async () => {
          for (const f of await slow.take(slow.pending(), 1000)) {
            if (f.event === 'monitor:dropped') told.push(f.data.count);
            else if (f.event === 'testkit:tick') delivered++;
          }
          return delivered + told.reduce((a, b) => a + b, 0) >= 20_000;
        },
        30_000,
        'every event delivered or reported dropped',
      );
      expect(told.length).toBeGreaterThan(0);
      const after = await metrics();
      expect(after.socket.events_dropped).toBe(told.reduce((a, b) => a + b, 0));
      expect(after.socket.dropped_notices).toBe(told.length);
    } finally {
      slow.close();
    }
    // A closed connection's counts stay counted.
    await waitFor(
      async () => (await d!.client.request<{ connections: number }>('system:health')).connections === 1,
      10_000,
      'closed',
    );
    expect((await metrics()).socket.dropped_notices).toBeGreaterThan(0);
  }, 60_000);
});
