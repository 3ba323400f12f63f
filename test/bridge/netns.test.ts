/**
 * Optional (root only): the fleet scenario across network namespaces, as real separate hosts with
 * their own network stacks. Host b is cut off the network mid-job — not killed: it finishes the job
 * but cannot report it; the job is redelivered to c, and when b comes back its late result is
 * deduplicated. The caller gets one result.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { ChildProcess } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLab, netnsMissing, startNsDaemon, type Lab, type NsDaemon } from './netns.js';
import { nodeConfig, readLog, until } from './fleet.js';

const skip = netnsMissing();
if (skip) console.warn(`skip netns scenario: ${skip}`);

const LOG = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'agentd-testwork-')), 'jobs.log');

describe.skipIf(skip)('bridge: three hosts in network namespaces', () => {
  let lab: Lab;
  let nats: ChildProcess;
  const d: Record<string, NsDaemon> = {};

  beforeAll(async () => {
    lab = createLab(['a', 'b', 'c']);
    nats = await lab.spawnNats();
    const start = (node: string, worker: boolean) =>
      startNsDaemon(lab, node, nodeConfig({ node, url: lab.natsUrl, worker, extra: { ack_wait_ms: 1500 } }), {
        AGENTD_BRIDGE_NODE: node,
        TESTWORK_LOG: LOG,
      });
    [d.a, d.b, d.c] = await Promise.all([start('a', false), start('b', true), start('c', true)]);
    await until(
      'peers',
      async () => {
        const s = (await d.a.client.request<Record<string, unknown>>('bridge:status')) as {
          peers: Array<{ alive: boolean; serves: string[] }>;
          jetstream: { state: string };
        };
        return (
          s.peers.filter((p) => p.alive && p.serves.includes('testwork')).length === 2 && s.jetstream.state === 'ready'
        );
      },
      30_000,
    );
  });

  afterAll(async () => {
    await Promise.all(Object.values(d).map((x) => x.kill('SIGTERM')));
    nats?.kill('SIGTERM');
    lab?.destroy();
  });

  it('forwards across hosts and shares work between b and c', async () => {
    const answers = await Promise.all(
      Array.from({ length: 12 }, (_, n) => d.a.client.request('testwork:echo', { n }, { timeoutMs: 5000 })),
    );
    expect(new Set(answers.map((r) => r.node)).size).toBe(2);
    const s = (await d.a.client.request<Record<string, unknown>>('bridge:status')) as { server: string };
    expect(s.server).toContain('10.199.0.1');
  });

  it('redelivers the job of a host cut off mid-exec; its late result is deduplicated, the caller gets one', async () => {
    const tag = `partition-${Date.now()}`;
    const started = await d.a.client.subscribe('testwork:started');
    const pending = d.a.client.request('testwork:exec', { tag, sleep_ms: 2500 }, { timeoutMs: 40_000 });
    let first = '';
    for await (const ev of started)
      if (ev.data.tag === tag) {
        first = ev.data.node as string;
        break;
      }
    const other = first === 'b' ? 'c' : 'b';
    lab.link(first, false);
    const r = await pending;
    expect(r).toMatchObject({ tag, node: other });
    lab.link(first, true);
    // The cut-off host finished too, and reports once it is back: JetStream drops the duplicate.
    await until('the cut-off host to finish', () => readLog(LOG).includes(`done ${first} ${tag}`), 15_000);
    await until(
      'its late result to be dropped as a duplicate',
      async () =>
        ((await d[first].client.request<Record<string, unknown>>('bridge:status')) as { stats: Record<string, number> })
          .stats.results_deduplicated === 1,
      30_000,
    );
    const s = (await d.a.client.request<Record<string, unknown>>('bridge:status')) as { stats: Record<string, number> };
    expect(s.stats.results_duplicate + s.stats.results_orphaned).toBe(0);
  });
});
