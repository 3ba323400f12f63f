/**
 * checkpoint:fork: a full checkpoint becomes a new home that a second daemon runs side by side with
 * the first. The fork has the branch's state (not what the first daemon did since), records its
 * origin, continues the lineage, is private on disk, and the two then diverge independently.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { MessagesApiServer } from '../fixtures/messages-api-server.js';
import type { DaemonHandle } from '../helpers/daemon-process.js';
import { expectCode } from './helpers.js';
import { observe, startFull, withSandbox } from './full-helpers.js';

const mode = (p: string): number => fs.statSync(p).mode & 0o777;

describe('checkpoint:fork', () => {
  let api: MessagesApiServer;
  let first: DaemonHandle;
  let second: DaemonHandle | null = null;
  const parent = fs.mkdtempSync(path.join(os.tmpdir(), 'agentd-forks-'));
  const home = path.join(parent, 'branch');

  beforeAll(async () => {
    ({ d: first, api } = await startFull());
  }, 120_000);
  afterAll(async () => {
    await Promise.all([first?.stop(), second?.stop()]);
    await api?.close();
    fs.rmSync(parent, { recursive: true, force: true });
  });

  it('runs a second daemon on the branch while the first goes on', async () => {
    const rq = (event: string, data: Record<string, unknown> = {}) =>
      first.client.request<Record<string, unknown>>(event, data, { timeoutMs: 120_000 });
    await rq('agent:spawn', { agent_id: 'alice', system: 'A' });
    await rq('agent:send', { agent_id: 'alice', message: 'hi' });
    await rq('kg:add_nodes', { nodes: [{ id: 'n1', label: 'Hypothesis' }] });
    await rq('memo:put', { values: { a: 1 } });
    if (withSandbox) {
      await rq('sandbox:create', { session_id: 'box' });
      await rq('sandbox:exec', { session_id: 'box', language: 'bash', code: 'echo branch > /workspace/f.txt' });
    }
    const branch = await observe(first.client);
    const saved = await rq('checkpoint:save', { label: 'hypothesis-1', scope: 'full' });
    const id = saved.checkpoint_id as number;
    // The first daemon goes on after the save.
    await rq('agent:spawn', { agent_id: 'bob', system: 'B' });
    await rq('kg:add_nodes', { nodes: [{ id: 'n2', label: 'Hypothesis' }] });

    const f = await rq('checkpoint:fork', { checkpoint_id: id, home });
    expect(f).toMatchObject({
      home,
      checkpoint_id: id,
      origin: { home: first.home, checkpoint_id: id, label: 'hypothesis-1' },
      notes: [],
    });
    expect(f.start).toBe(`AGENTD_HOME=${home} daemon-control start`);
    expect(mode(home)).toBe(0o700);
    expect(mode(path.join(home, 'db'))).toBe(0o700);
    expect(mode(path.join(home, 'db', 'agentd.db'))).toBe(0o600);
    expect(mode(path.join(home, 'db', 'kg.db'))).toBe(0o600);
    expect(fs.readdirSync(parent)).toEqual(['branch']); // built aside, renamed into place

    second = (await startFull({ api, home })).d;
    expect(await observe(second.client)).toEqual(branch);
    const st = await second.client.request<{
      origin: Record<string, unknown>;
      head_id: number;
      boot: { restored: Record<string, number> };
    }>('checkpoint:status');
    expect(st.origin).toMatchObject({ origin_home: first.home, checkpoint_id: id, label: 'hypothesis-1' });
    expect(st.head_id).toBe(id);
    expect(st.boot.restored.memo).toBe(id);
    if (withSandbox) {
      const out = await second.client.request<{ stdout: string }>(
        'sandbox:exec',
        { session_id: 'box', language: 'bash', code: 'cat /workspace/f.txt' },
        { timeoutMs: 120_000 },
      );
      expect(out.stdout.trim()).toBe('branch');
    }

    // Side by side, each on its own state.
    await second.client.request('kg:add_nodes', { nodes: [{ id: 'n3', label: 'Hypothesis' }] });
    await second.client.request('agent:send', { agent_id: 'alice', message: 'on the branch' }, { timeoutMs: 60_000 });
    await rq('kg:add_nodes', { nodes: [{ id: 'n4', label: 'Hypothesis' }] });
    const ids = async (d: DaemonHandle) =>
      (await d.client.request<{ nodes: Array<{ id: string }> }>('kg:export', {})).nodes.map((n) => n.id).sort();
    expect(await ids(first)).toEqual(['n1', 'n2', 'n4']);
    expect(await ids(second)).toEqual(['n1', 'n3']);
    const agents = async (d: DaemonHandle) =>
      (await d.client.request<{ agents: Array<{ agent_id: string }> }>('agent:list', {})).agents
        .map((a) => a.agent_id)
        .sort();
    expect(await agents(first)).toEqual(['alice', 'bob']);
    expect(await agents(second)).toEqual(['alice']);
    // The lineage goes on in the fork from the checkpoint it came from.
    const next = await second.client.request<{ parent_id: number }>('checkpoint:save', {});
    expect(next.parent_id).toBe(id);
  }, 300_000);

  it('refuses a home that is not new and private', async () => {
    const rq = (data: Record<string, unknown>) =>
      first.client.request<Record<string, unknown>>('checkpoint:fork', data, { timeoutMs: 60_000 });
    const id = (
      await first.client.request<{ checkpoints: Array<{ id: number; scope: string }> }>('checkpoint:list')
    ).checkpoints.find((c) => c.scope === 'full')!.id;
    expect(await expectCode(rq({ checkpoint_id: id, home }))).toBe('CONFLICT'); // not empty
    const shared = path.join(parent, 'shared');
    fs.mkdirSync(shared, { mode: 0o777 });
    fs.chmodSync(shared, 0o777);
    expect(await expectCode(rq({ checkpoint_id: id, home: shared }))).toBe('CONFLICT');
    const link = path.join(parent, 'link');
    fs.mkdirSync(path.join(parent, 'target'), { mode: 0o700 });
    fs.symlinkSync(path.join(parent, 'target'), link);
    expect(await expectCode(rq({ checkpoint_id: id, home: link }))).toBe('CONFLICT');
    expect(await expectCode(rq({ checkpoint_id: id, home: path.join(parent, 'no', 'such', 'parent') }))).toBe(
      'NOT_FOUND',
    );
    // An empty private directory of ours is fine.
    const empty = path.join(parent, 'empty');
    fs.mkdirSync(empty, { mode: 0o700 });
    expect(await rq({ checkpoint_id: id, home: empty })).toMatchObject({ home: empty });
  }, 120_000);
});
