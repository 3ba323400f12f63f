import { describe, expect, it } from 'vitest';
import { EventClient } from '../../client/event-client.js';
import { DaemonError } from '../../client/errors.js';
import type { EventFrame } from '../../client/protocol.js';
import { waitFor } from '../helpers/events.js';
import { startKernel } from './kit.js';

describe('event client', () => {
  it('reconnects after a daemon restart and renews its subscriptions', async () => {
    const d1 = await startKernel();
    const client = await EventClient.connect({ socketPath: d1.socketPath });
    const seen: EventFrame[] = [];
    await client.subscribe(['testkit:*'], (ev) => seen.push(ev));
    let reconnected = false;
    client.on('reconnect', () => (reconnected = true));
    await d1.kill('SIGKILL');
    // In flight while the daemon is gone: a typed error, not a hang.
    await expect(client.request('system:ping', {}, { timeoutMs: 500 })).rejects.toBeInstanceOf(DaemonError);
    const d2 = await startKernel({ home: d1.home });
    try {
      await waitFor(() => reconnected, 10_000, 'the reconnect');
      await d2.client.request('testkit:emit', { count: 2 });
      await waitFor(() => seen.length >= 2, 5_000, 'two renewed-subscription events');
      expect(seen.map((e) => e.event)).toEqual(['testkit:tick', 'testkit:tick']);
      expect((await client.request('system:ping')).pong).toBe(true);
    } finally {
      await client.close();
      await d2.stop();
    }
  });

  it('iterates a subscription and ends it cleanly', async () => {
    const d = await startKernel();
    try {
      const c = await d.connect();
      const sub = await c.subscribe('testkit:tick');
      await c.request('testkit:emit', { count: 3 });
      const got: number[] = [];
      for await (const ev of sub) {
        got.push(ev.data.i as number);
        if (got.length === 3) break; // break unsubscribes
      }
      expect(got).toEqual([0, 1, 2]);
      const h = await c.request<{ subscribers: number }>('system:health');
      expect(h.subscribers).toBe(0);
      await c.close();
    } finally {
      await d.stop();
    }
  });
});
