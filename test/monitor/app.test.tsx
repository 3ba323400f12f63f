/**
 * The monitor's components on rendered frames (ink-testing-library), against a real daemon: what
 * the daemon emits shows up, keys work, missing plugins are empty panels, a restart is survived.
 */
import React from 'react';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EventClient } from '../../client/index.js';
import { App } from '../../interfaces/monitor/app.js';
import { startMonitorDaemon, sleep } from './helpers.js';
import { mountApp } from './mount.js';
import type { DaemonHandle } from '../helpers/daemon-process.js';

const KEY = { enter: '\r', esc: '\x1b', tab: '\t', up: '\x1b[A', down: '\x1b[B' };

let daemon: DaemonHandle;
let client: EventClient;

beforeAll(async () => {
  daemon = await startMonitorDaemon({ subscriberQueue: 50 });
  client = await EventClient.connect({ socketPath: daemon.socketPath });
});

afterAll(async () => {
  await client?.close();
  await daemon?.stop();
});

const mount = (props: Partial<React.ComponentProps<typeof App>> = {}) => mountApp(client, { props });

describe('monitor app', () => {
  it('backfills history, then shows live events, health and plugins', async () => {
    await client.request('burst:emit', { n: 2, event: 'burst:before', data: { tag: 'early' } });
    const m = mount();
    try {
      await m.until((f) => f.includes('burst:before') && f.includes('tag=early'), 'backfilled events');
      await m.until((f) => /● \w+/.test(f) && f.includes('burst') && f.includes('budget'), 'health and plugins');
      await client.request('burst:emit', { n: 3, event: 'burst:alpha', data: { tag: 'live-1' } });
      const f = await m.until((x) => x.includes('burst:alpha') && x.includes('i=2 tag=live-1'), 'live events');
      // A missing plugin is an empty panel, not an error.
      expect(f).toMatch(/sandbox: not loaded/);
      expect(f).toMatch(/agent: not loaded/);
      expect(f).toMatch(/nodes \d+ · edges \d+/); // kg is loaded
    } finally {
      m.unmount();
    }
  });

  it('filters the log by pattern, with history the old filter hid', async () => {
    const m = mount();
    try {
      await client.request('burst:emit', { n: 1, event: 'burst:beta', data: { tag: 'b-old' } });
      await m.until((f) => f.includes('tag=b-old') && f.includes('q quit'), 'first events');
      m.stdin.write('/');
      await m.until((f) => f.includes('filter:'), 'filter prompt');
      m.stdin.write('burst:beta');
      await m.until((f) => f.includes('filter: burst:beta'), 'typed filter');
      m.stdin.write(KEY.enter);
      await client.request('burst:emit', { n: 2, event: 'burst:gamma', data: { tag: 'hidden' } });
      await client.request('burst:emit', { n: 1, event: 'burst:beta', data: { tag: 'b-new' } });
      const f = await m.until(
        (x) => x.includes('[burst:beta]') && x.includes('tag=b-new') && x.includes('tag=b-old'),
        'filtered log',
      );
      expect(f).not.toContain('burst:gamma');
      expect(f).not.toContain('burst:alpha');
      // A bad pattern is refused with a message, and the old filter stays.
      m.stdin.write('/');
      await m.until((x) => x.includes('filter: burst:beta'), 'filter prompt with the current filter');
      m.stdin.write('\x15'); // ctrl-u clears the line
      m.stdin.write('Bad:*');
      await m.until((x) => x.includes('filter: Bad:*'), 'typed bad filter');
      m.stdin.write(KEY.enter);
      await m.until((x) => x.includes('bad pattern "Bad:*"'), 'error');
      m.stdin.write(KEY.esc);
      await m.until((x) => x.includes('q quit') && x.includes('[burst:beta]'), 'back to normal');
    } finally {
      m.unmount();
    }
  });

  it('pauses and resumes the log', async () => {
    const m = mount();
    try {
      await client.request('burst:emit', { n: 1, event: 'burst:pause_a', data: {} });
      await m.until((f) => f.includes('burst:pause_a') && f.includes('p pause'), 'first event');
      m.stdin.write('p');
      await m.until((f) => f.includes('PAUSED'), 'paused');
      await client.request('burst:emit', { n: 4, event: 'burst:pause_b', data: {} });
      const paused = await m.until((f) => f.includes('PAUSED +4'), 'missed count');
      expect(paused).not.toContain('burst:pause_b');
      m.stdin.write('p');
      const resumed = await m.until((f) => f.includes('burst:pause_b') && !f.includes('PAUSED'), 'resumed');
      expect(resumed).toContain('p pause');
      // Walking back through the log pauses it; enter opens the selected (second newest) entry.
      m.stdin.write(KEY.up + KEY.up);
      await m.until((f) => f.includes('PAUSED'), 'paused by browsing');
      m.stdin.write(KEY.enter);
      const d = await m.until(
        (f) => f.includes('▶ burst:pause_b #') && f.includes('"i": 2'),
        'details of the selected entry',
      );
      expect(d).toContain('"event": "burst:pause_b"');
      m.stdin.write(KEY.esc);
      await m.until((f) => f.includes('p resume'), 'back to the paused log');
      m.stdin.write(KEY.esc);
      await m.until((f) => f.includes('p pause') && !f.includes('PAUSED'), 'back to the tail');
    } finally {
      m.unmount();
    }
  });

  it('shows budget gauges and opens details of the selected plugin', async () => {
    await client.request('budget:set', { scope: 'global', limit_usd: 10 });
    const m = mount();
    try {
      await m.until((f) => /global\s+░+\s+0%/.test(f) && f.includes('$0.00 of $10.00'), 'budget gauge');
      // Focus moves log → health with tab (wrapping); enter opens the first plugin's details.
      m.stdin.write(KEY.tab);
      const before = await m.until((f) => f.includes('▶ Plugins'), 'plugins focused');
      m.stdin.write(KEY.down);
      m.stdin.write(KEY.enter);
      const d = await m.until((f) => f.includes('esc to close') && f.includes('"status"'), 'details');
      // The second row of the plugins panel, as it was on screen.
      const second = /╔═ ▶ Plugins[^\n]*\n║\S+[^\n]*\n║(\S+)/.exec(before)?.[1];
      expect(second, before).toBeTruthy();
      expect(d).toContain(`▶ Plugin ${second} `);
      m.stdin.write(KEY.esc);
      await m.until((f) => f.includes('q quit') && f.includes('Knowledge graph'), 'panels back');
    } finally {
      m.unmount();
    }
  });

  it('reports events the daemon dropped because the monitor read too slowly', async () => {
    const m = mount();
    try {
      await m.until((f) => f.includes('q quit') && /● /.test(f), 'ready');
      // Ask for a flood of events the monitor takes in full (agent:*), then stop reading: the daemon's queue for us (50) overflows.
      const flood = client.request('burst:emit', { n: 30_000, event: 'agent:flood' }, { timeoutMs: 30_000 });
      await sleep(30);
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 1500);
      await flood;
      const f = await m.until(
        (x) => /\d+(\.\d+)?k? dropped ╗/.test(x) && x.includes('agent:flood i=29999'),
        'dropped count',
        15_000,
      );
      expect(f).not.toContain('agent:flood i=100 '); // those were dropped or scrolled away, not kept in order
      // The notice itself stays in the log whatever the filter.
      m.stdin.write('/');
      await m.until((x) => x.includes('filter:'), 'filter prompt');
      m.stdin.write('kg:*');
      m.stdin.write(KEY.enter);
      await m.until((x) => x.includes('[kg:*]') && /⚠ \d+ events dropped by the daemon/.test(x), 'dropped notice');
    } finally {
      m.unmount();
    }
  });

  it('shows "reconnecting…" across a daemon restart, then follows the new daemon', async () => {
    const m = mount();
    try {
      await m.until((f) => /● \w+/.test(f), 'connected');
      await daemon.stop();
      await m.until((f) => f.includes('reconnecting…'), 'reconnecting');
      daemon = await startMonitorDaemon({ home: daemon.home, subscriberQueue: 50 });
      await m.until((f) => f.includes('daemon restarted') && /● \w+/.test(f), 'reconnected', 20_000);
      await client.request('burst:emit', { n: 1, event: 'burst:after', data: { tag: 'new-daemon' } });
      await m.until((f) => f.includes('tag=new-daemon'), 'events of the new daemon');
    } finally {
      m.unmount();
    }
  }, 150_000);
});
