/**
 * When every delivery of a durable job dies with its worker (max_deliver reached), the caller is
 * told (UNAVAILABLE) as soon as a worker asks for work again — JetStream notices the exhausted job
 * on its next delivery attempt — instead of at its deadline; the job leaves the queue, and the
 * restarted worker neither runs it again nor misses new work. Also: a graceful stop mid-job, and
 * the misconfigurations a fleet can have (two daemons with one name, serving what is not owned).
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DaemonError } from '../../client/errors.js';
import type { DaemonHandle } from '../helpers/daemon-process.js';
import { natsMissing, startNats, type NatsServer } from './nats.js';
import { readLog, startNode, stopAndClean, until } from './fleet.js';

const skip = natsMissing();
const LOG = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'agentd-testwork-')), 'jobs.log');
const env = { TESTWORK_LOG: LOG };
const extra = { max_deliver: 1, ack_wait_ms: 1000 };

describe.skipIf(skip)('bridge: jobs outliving their workers, graceful stops, fleet misconfiguration', () => {
  let nats: NatsServer;
  let a: DaemonHandle;
  let w: DaemonHandle | null = null;
  const gone: DaemonHandle[] = [];

  beforeAll(async () => {
    nats = await startNats();
    [a, w] = await Promise.all([
      startNode({ node: 'a', url: nats.url, worker: false, env, extra }),
      startNode({ node: 'w', url: nats.url, worker: true, env, extra }),
    ]);
    await until(
      'worker queue',
      async () => {
        const s = (await a.client.request<Record<string, unknown>>('bridge:status')) as {
          peers: Array<{ alive: boolean; serves: string[] }>;
          jetstream: { state: string };
        };
        return s.peers.some((p) => p.alive && p.serves.includes('testwork')) && s.jetstream.state === 'ready';
      },
      20_000,
    );
  });

  afterAll(async () => {
    await stopAndClean([a, w, ...gone]);
    await nats?.stop();
  });

  it('fails the caller with UNAVAILABLE once a worker is back, and the job is not run again', async () => {
    const tag = `orphan-${Date.now()}`;
    const started = await a.client.subscribe('testwork:started');
    const t0 = Date.now();
    const pending = a.client
      .request('testwork:exec', { tag, sleep_ms: 5000 }, { timeoutMs: 60_000 })
      .catch((e: DaemonError) => e);
    for await (const ev of started) if (ev.data.tag === tag) break;
    const home = w!.home;
    await w!.kill('SIGKILL');
    w = null;
    await new Promise((res) => setTimeout(res, 1500)); // past ack_wait: the only delivery is spent
    w = await startNode({ node: 'w', url: nats.url, worker: true, env, extra, home });
    const e = await pending;
    expect(e).toBeInstanceOf(DaemonError);
    expect((e as DaemonError).code).toBe('UNAVAILABLE');
    expect((e as DaemonError).message).toMatch(/gave up after 1 deliver/);
    expect(Date.now() - t0).toBeLessThan(30_000); // not the 60 s deadline
    // New work runs on the restarted worker; the dead job does not.
    const tag2 = `after-${Date.now()}`;
    const r = await a.client.request('testwork:exec', { tag: tag2 }, { timeoutMs: 20_000 });
    expect(r).toMatchObject({ tag: tag2, node: 'w' });
    await new Promise((res) => setTimeout(res, 1500));
    expect(readLog(LOG).filter((l) => l.endsWith(` ${tag}`))).toEqual([`start w ${tag}`]);
  });

  it('lets a worker stopped gracefully mid-job finish it: the result arrives once', async () => {
    const tag = `graceful-${Date.now()}`;
    const started = await a.client.subscribe('testwork:started');
    const pending = a.client.request('testwork:exec', { tag, sleep_ms: 1500 }, { timeoutMs: 30_000 });
    for await (const ev of started) if (ev.data.tag === tag) break;
    gone.push(w!);
    const code = await w!.stop();
    w = null;
    expect(code).toBe(0);
    expect(await pending).toMatchObject({ tag, node: 'w' });
    expect(readLog(LOG).filter((l) => l.endsWith(` ${tag}`))).toEqual([`start w ${tag}`, `done w ${tag}`]);
  });

  it('degrades both daemons when two announce the same node name', async () => {
    const twin = await startNode({ node: 'a', url: nats.url, worker: false, env, extra });
    try {
      for (const d of [a, twin]) {
        const h = await until('degraded', async () => {
          const x = (await d.client.request('system:health')) as {
            plugins: Record<string, { status: string; reason: string | null; reason_code: string | null }>;
          };
          return x.plugins.bridge.status === 'degraded' ? x : null;
        });
        expect(h.plugins.bridge.reason_code).toBe('CONFIG_INVALID');
      }
    } finally {
      await stopAndClean([twin]);
    }
  });

  it('degrades a worker whose serve list names a namespace it does not own', async () => {
    const d = await startNode({
      node: 'v',
      url: nats.url,
      worker: true,
      env,
      extra: { ...extra, serve: ['testwork', 'ghost'] },
    });
    try {
      const h = await until('degraded', async () => {
        const x = (await d.client.request('system:health')) as {
          plugins: Record<string, { status: string; reason: string | null; reason_code: string | null }>;
        };
        return x.plugins.bridge.status === 'degraded' ? x : null;
      });
      expect(h.plugins.bridge.reason_code).toBe('CONFIG_INVALID');
      expect(h.plugins.bridge.reason).toContain('ghost');
    } finally {
      await stopAndClean([d]);
    }
  });
});
