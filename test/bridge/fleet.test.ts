/**
 * Three daemon processes on one real nats-server: "a" has no worker plugin, "b" and "c" serve the
 * test-only `testwork` namespace. Events cross with their origin and no echoes; requests for a
 * namespace a does not own reach b or c through a queue group with causality and deadline carried;
 * durable jobs survive a worker killed mid-exec and a nats-server restart, answering once.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { DaemonError } from '../../client/errors.js';
import type { EventFrame } from '../../client/protocol.js';
import type { DaemonHandle } from '../helpers/daemon-process.js';
import { natsMissing, startNats, type NatsServer } from './nats.js';
import { readLog, startNode, stopAndClean, until } from './fleet.js';

const skip = natsMissing();
if (skip) console.warn(`skip: ${skip}`);

const LOG = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'agentd-testwork-')), 'jobs.log');
const env = { TESTWORK_LOG: LOG };

interface Status {
  state: string;
  peers: Array<{ node: string; alive: boolean; serves: string[] }>;
  subjects: { publish: string[]; subscribe: string[]; serve: string[] };
  lag: Record<string, unknown>;
  stats: Record<string, number>;
  jetstream: { state: string };
}

describe.skipIf(skip)('bridge: a fleet of three daemons on nats-server', () => {
  let nats: NatsServer;
  let a: DaemonHandle, b: DaemonHandle, c: DaemonHandle;
  let raw: NatsConnection;
  const killed: DaemonHandle[] = [];
  const nodes = () => ({ a, b, c });

  beforeAll(async () => {
    nats = await startNats();
    [a, b, c] = await Promise.all([
      startNode({ node: 'a', url: nats.url, worker: false, env }),
      startNode({ node: 'b', url: nats.url, worker: true, env }),
      startNode({ node: 'c', url: nats.url, worker: true, env }),
    ]);
    raw = await connect({ servers: nats.url });
    // Everyone sees everyone, and the workers' queues exist.
    await until(
      'peers',
      async () => {
        const s = (await a.client.request('bridge:status')) as unknown as Status;
        return (
          s.peers.filter((p) => p.alive && p.serves.includes('testwork')).length === 2 && s.jetstream.state === 'ready'
        );
      },
      20_000,
    );
  });

  afterAll(async () => {
    await raw?.close().catch(() => undefined);
    await stopAndClean([a, b, c, ...killed]);
    await nats?.stop();
  });

  it('reports connection, peers, subjects and lag in bridge:status and system:health', async () => {
    const s = (await a.client.request('bridge:status')) as unknown as Status;
    expect(s.state).toBe('connected');
    expect(
      s.peers
        .filter((p) => p.alive)
        .map((p) => p.node)
        .sort(),
    ).toEqual(['b', 'c']);
    expect(s.peers.find((p) => p.node === 'b')!.serves).toEqual(['testwork']);
    expect(s.subjects.subscribe).toEqual(['agentd.ev.>']);
    expect(s.subjects.publish).toEqual(['agentd.ev.testwork.*']);
    const sb = (await b.client.request('bridge:status')) as unknown as Status;
    expect(sb.subjects.serve).toEqual(expect.arrayContaining(['agentd.req.testwork.>', 'agentd.node.b.>']));
    expect(s.lag).toHaveProperty('event_ms');
    const h = (await a.client.request('system:health')) as {
      plugins: Record<string, { status: string; details?: Record<string, unknown> }>;
    };
    expect(h.plugins.bridge.status).toBe('ok');
    expect(h.plugins.bridge.details).toMatchObject({
      enabled: true,
      node: 'a',
      state: 'connected',
      jetstream: 'ready',
    });
    expect((h.plugins.bridge.details!.peers as string[]).sort()).toEqual(['b', 'c']);
  });

  it('delivers remote events to local subscribers with their origin, once, without echoes', async () => {
    const seen: Record<string, EventFrame[]> = { a: [], b: [], c: [] };
    const subs = await Promise.all(
      Object.entries(nodes()).map(([n, d]) => d.client.subscribe('testwork:announced', (ev) => seen[n].push(ev))),
    );
    try {
      await b.client.request('testwork:announce', { text: 'hello fleet' });
      await until('a and c to see it', () => seen.a.length >= 1 && seen.c.length >= 1 && seen.b.length >= 1);
      await new Promise((r) => setTimeout(r, 500)); // room for an echo or a duplicate to show up
      for (const n of ['a', 'b', 'c']) expect(seen[n].map((e) => e.data.text)).toEqual(['hello fleet']);
      expect(seen.a[0].context?.origin).toBe('b');
      expect(seen.c[0].context?.origin).toBe('b');
      expect(seen.b[0].context?.origin).toBeUndefined();
      // Causality survives the crossing: same root, one level deeper.
      expect(seen.a[0].context!.root_id).toBe(seen.b[0].context!.root_id);
      expect(seen.a[0].context!.depth).toBe(seen.b[0].context!.depth + 1);
    } finally {
      await Promise.all(subs.map((s) => s.unsubscribe()));
    }
  });

  it('forwards requests for a namespace a does not own to b and c through a queue group, deadline and causality carried', async () => {
    const answers = await Promise.all(
      Array.from({ length: 20 }, (_, n) => a.client.request('testwork:echo', { n }, { timeoutMs: 5000 })),
    );
    expect(answers.map((r) => r.n)).toEqual(Array.from({ length: 20 }, (_, n) => n));
    const by = new Set(answers.map((r) => r.node));
    expect([...by].sort()).toEqual(['b', 'c']); // P(all 20 on one node) ≈ 2e-6
    for (const r of answers) {
      expect(r.remaining_ms as number).toBeLessThanOrEqual(5000);
      expect(r.remaining_ms as number).toBeGreaterThan(3000);
      // One causal hop from a's request (depth 0) to the handler on b or c.
      expect(r.context).toMatchObject({ depth: 1, parent_id: expect.any(String) });
      expect((r.context as { origin?: string }).origin).toBeUndefined();
    }
    // A deadline shorter than the work: TIMEOUT at about the caller's deadline, not the server's.
    const t0 = Date.now();
    const err = await a.client
      .request('testwork:echo', { sleep_ms: 3000 }, { timeoutMs: 400 })
      .catch((e: DaemonError) => e);
    expect(err).toBeInstanceOf(DaemonError);
    expect((err as DaemonError).code).toBe('TIMEOUT');
    expect(Date.now() - t0).toBeLessThan(2500);
    // Typed errors come back as they were raised remotely.
    const bad = await a.client.request('testwork:echo', { n: 'x' }).catch((e: DaemonError) => e);
    expect((bad as DaemonError).code).toBe('INVALID_DATA');
  });

  it('answers UNAVAILABLE when nobody in the fleet serves the namespace; keeps UNKNOWN_EVENT for local namespaces', async () => {
    const e1 = await a.client.request('nosuch:thing').catch((e: DaemonError) => e);
    expect((e1 as DaemonError).code).toBe('UNAVAILABLE');
    const e2 = await a.client.request('system:nosuch').catch((e: DaemonError) => e);
    expect((e2 as DaemonError).code).toBe('UNKNOWN_EVENT');
    const e3 = await a.client
      .request('bridge:request', { event: 'system:ping', node: 'zzz' })
      .catch((e: DaemonError) => e);
    expect((e3 as DaemonError).code).toBe('UNAVAILABLE');
  });

  it('reaches one node directly with bridge:request, and refuses what that node does not expose', async () => {
    const r = await a.client.request('bridge:request', { event: 'system:ping', node: 'b' });
    expect(r).toMatchObject({ node: 'b', data: { pong: true } });
    const e = await a.client
      .request('bridge:request', { event: 'system:shutdown', node: 'b' })
      .catch((x: DaemonError) => x);
    expect((e as DaemonError).code).toBe('UNKNOWN_EVENT');
    expect((await b.client.request('system:ping')).pong).toBe(true);
  });

  it('refuses bad input from the bus with typed errors and keeps running', async () => {
    const ask = async (subject: string, body: string | Uint8Array) =>
      JSON.parse((await raw.request(subject, body, { timeout: 3000 })).string()) as {
        ok: boolean;
        error?: { code: string };
      };
    expect((await ask('agentd.req.testwork.echo', '{not json')).error?.code).toBe('BAD_JSON');
    expect((await ask('agentd.req.testwork.echo', new Uint8Array([0xff, 0xfe, 0x7b]))).error?.code).toBe('BAD_JSON');
    expect((await ask('agentd.req.testwork.echo', '[1,2]')).error?.code).toBe('BAD_FRAME');
    expect((await ask('agentd.req.testwork.echo', JSON.stringify({ v: 1, event: 'testwork:echo' }))).error?.code).toBe(
      'BAD_FRAME',
    );
    const env = (event: string, data: unknown) =>
      JSON.stringify({
        v: 1,
        event,
        data,
        context: { id: 'x-1', parent_id: null, root_id: 'x-1', depth: 0 },
        timeout_ms: 2000,
        from: 'tester',
      });
    expect((await ask('agentd.req.testwork.echo', env('testwork:announce', {}))).error?.code).toBe('BAD_FRAME');
    expect((await ask('agentd.req.testwork.echo', env('testwork:echo', { n: 'x' }))).error?.code).toBe('INVALID_DATA');
    expect((await ask('agentd.node.b.system.shutdown', env('system:shutdown', {}))).error?.code).toBe('UNKNOWN_EVENT');
    const deep = JSON.stringify({
      v: 1,
      event: 'testwork:echo',
      data: {},
      context: { id: 'x-2', parent_id: null, root_id: 'x-2', depth: 500 },
      timeout_ms: 2000,
      from: 'tester',
    });
    expect((await ask('agentd.req.testwork.echo', deep)).error?.code).toBe('LOOP_DETECTED');
    expect(await ask('agentd.req.testwork.echo', env('testwork:echo', { n: 7 }))).toMatchObject({
      ok: true,
      data: { n: 7 },
    });
    // Bad events and bad jobs: refused and counted, never delivered, never fatal.
    const before = ((await a.client.request('bridge:status')) as unknown as Status).stats.events_refused;
    raw.publish('agentd.ev.testwork.announced', '{"v":1');
    raw.publish(
      'agentd.ev.testwork.announced',
      JSON.stringify({
        v: 1,
        event: 'testwork:other',
        data: {},
        context: { id: 'q', parent_id: null, root_id: 'q', depth: 0 },
        origin: 'z',
        seq: 1,
        timestamp: 1,
      }),
    );
    raw.publish(
      'agentd.ev.system.shutdown_begin',
      JSON.stringify({
        v: 1,
        event: 'system:shutdown_begin',
        data: {},
        context: { id: 'q', parent_id: null, root_id: 'q', depth: 0 },
        origin: 'z',
        seq: 2,
        timestamp: 1,
      }),
    );
    raw.publish('agentd.work.testwork.exec', 'garbage');
    await until(
      'refusals counted',
      async () => ((await a.client.request('bridge:status')) as unknown as Status).stats.events_refused >= before + 3,
    );
    for (const d of [a, b, c]) expect((await d.client.request('system:ping')).pong).toBe(true);
    const h = (await a.client.request('system:health')) as { status: string };
    expect(h.status).toBe('healthy');
  });

  it('answers a failed durable job once with its typed error; hands a job refused as UNAVAILABLE to other workers up to max_deliver', async () => {
    const tag = `fail-${Date.now()}`;
    const e = await a.client
      .request('testwork:exec', { tag, fail_code: 'CONFLICT' }, { timeoutMs: 20_000 })
      .catch((x: DaemonError) => x);
    expect(e).toBeInstanceOf(DaemonError);
    expect((e as DaemonError).code).toBe('CONFLICT');
    expect(['b', 'c']).toContain((e as DaemonError).details?.node);
    expect(readLog(LOG).filter((l) => l.endsWith(` ${tag}`))).toHaveLength(1);
    const tag2 = `handback-${Date.now()}`;
    const e2 = await a.client
      .request('testwork:exec', { tag: tag2, fail_code: 'UNAVAILABLE' }, { timeoutMs: 20_000 })
      .catch((x: DaemonError) => x);
    expect((e2 as DaemonError).code).toBe('UNAVAILABLE');
    expect(readLog(LOG).filter((l) => l.endsWith(` ${tag2}`))).toHaveLength(5); // max_deliver
  });

  it('accepts a durable job asked for while nats-server is down, once the server is back', async () => {
    await nats.down();
    const tag = `down-${Date.now()}`;
    const pending = a.client.request('testwork:exec', { tag, sleep_ms: 100 }, { timeoutMs: 30_000 });
    await until(
      'a to notice',
      async () => ((await a.client.request('bridge:status')) as unknown as Status).state !== 'connected',
    );
    await new Promise((r) => setTimeout(r, 500));
    await nats.up();
    const r = await pending;
    expect(r.tag).toBe(tag);
    expect(readLog(LOG).filter((l) => l.endsWith(` ${tag}`))).toEqual([
      `start ${r.node} ${tag}`,
      `done ${r.node} ${tag}`,
    ]);
  });

  it('runs durable work through nats-server being restarted mid-job: the bridge reconnects and the result arrives once', async () => {
    const tag = `restart-${Date.now()}`;
    const started = await a.client.subscribe('testwork:started');
    const pending = a.client.request('testwork:exec', { tag, sleep_ms: 2500 }, { timeoutMs: 30_000 });
    for await (const ev of started) if (ev.data.tag === tag) break;
    await nats.restart();
    const r = await pending;
    expect(r.tag).toBe(tag);
    expect(readLog(LOG).filter((l) => l.endsWith(` ${tag}`))).toEqual([
      `start ${r.node} ${tag}`,
      `done ${r.node} ${tag}`,
    ]);
    const s = (await until('a reconnected', async () => {
      const st = (await a.client.request('bridge:status')) as unknown as Status;
      return st.state === 'connected' && st.stats.reconnects >= 1 ? st : null;
    })) as Status;
    expect(s.stats.reconnects).toBeGreaterThanOrEqual(1);
    // Plain forwarding works again too.
    expect((await a.client.request('testwork:echo', { n: 1 }, { timeoutMs: 5000 })).n).toBe(1);
  });

  it('survives plugin:reload of the bridge: reconnects and forwards plain and durable requests again', async () => {
    const r = await a.client.request('plugin:reload', { name: 'bridge' });
    expect(r).toMatchObject({ plugin: 'bridge', status: expect.stringMatching(/ok|degraded/) });
    await until(
      'a connected again',
      async () => ((await a.client.request('bridge:status')) as unknown as Status).state === 'connected',
    );
    expect((await a.client.request('testwork:echo', { n: 3 }, { timeoutMs: 5000 })).n).toBe(3);
    const tag = `reload-${Date.now()}`;
    expect(await a.client.request('testwork:exec', { tag }, { timeoutMs: 20_000 })).toMatchObject({ tag });
  });

  it('redelivers a durable job whose worker is SIGKILLed mid-exec to another worker; the caller gets one result', async () => {
    const tag = `kill-${Date.now()}`;
    const started = await a.client.subscribe('testwork:started');
    const pending = a.client.request('testwork:exec', { tag, sleep_ms: 3000 }, { timeoutMs: 30_000 });
    let first = '';
    for await (const ev of started)
      if (ev.data.tag === tag) {
        first = ev.data.node as string;
        break;
      }
    const victim = first === 'b' ? b : c;
    await victim.kill('SIGKILL');
    const r = await pending;
    expect(r).toMatchObject({ tag, node: first === 'b' ? 'c' : 'b' });
    const lines = readLog(LOG).filter((l) => l.endsWith(` ${tag}`));
    expect(lines.filter((l) => l.startsWith('start')).sort()).toEqual([`start b ${tag}`, `start c ${tag}`]);
    expect(lines.filter((l) => l.startsWith('done'))).toEqual([`done ${r.node} ${tag}`]);
    const s = (await a.client.request('bridge:status')) as unknown as Status;
    expect(s.stats.jobs_completed).toBeGreaterThanOrEqual(2);
    expect(s.stats.results_duplicate + s.stats.results_orphaned).toBe(0);
    // The survivor saw the job a second time.
    const survivor = first === 'b' ? c : b;
    expect(
      ((await survivor.client.request('bridge:status')) as unknown as Status).stats.jobs_redelivered,
    ).toBeGreaterThanOrEqual(1);
    killed.push(victim);
    if (first === 'b') b = null as unknown as DaemonHandle;
    else c = null as unknown as DaemonHandle;
  });
});
