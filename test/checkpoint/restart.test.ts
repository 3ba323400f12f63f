/**
 * Restore at start, across real restarts on one home: after a clean stop, after kill -9, with a
 * damaged checkpoint, with a checkpoint of another format, and with a plugin whose snapshot
 * version changed. The daemon always comes up; what it could not use it reports and skips.
 */
import { describe, expect, it } from 'vitest';
import { tempHome, type DaemonHandle } from '../helpers/daemon-process.js';
import { openDb, startDaemon, testConfig } from './helpers.js';

interface Boot {
  id: number;
  head_id: number | null;
  restored: Record<string, number>;
  skipped: Array<{ checkpoint_id: number; plugin: string; reason: string }>;
  corrupt: Array<{ checkpoint_id: number; plugin: string | null; reason: string }>;
}
interface Memo {
  entries: Record<string, unknown>;
  restores: number;
  stops: number;
  restored_before_start: boolean | null;
}

const config = testConfig();
const boot = async (d: DaemonHandle) => (await d.client.request<{ boot: Boot }>('checkpoint:status')).boot;
const memo = (d: DaemonHandle) => d.client.request<Memo>('memo:dump');
const newest = async (d: DaemonHandle) =>
  (
    await d.client.request<{ checkpoints: Array<{ id: number; reason: string; parent_id: number | null }> }>(
      'checkpoint:list',
      { limit: 1 },
    )
  ).checkpoints[0];

describe('restore at start', () => {
  it('comes back where it was after a clean stop, and after kill -9 to the last checkpoint', async () => {
    const home = tempHome();
    let d = await startDaemon({ home, config });
    await d.client.request('memo:put', { values: { a: 1 } });
    await d.client.request('flaky:set', { value: 'f1' });
    const manual = (await d.client.request<{ checkpoint_id: number }>('checkpoint:save')).checkpoint_id;
    await d.client.request('memo:put', { values: { b: 2 } });
    expect(await d.kill('SIGTERM')).toBe(0);

    d = await startDaemon({ home });
    const m = await memo(d);
    // The final checkpoint was taken after stop(): it holds b and the stop itself.
    expect(m.entries).toEqual({ a: 1, b: 2 });
    expect(m.stops).toBe(1);
    expect(m.restores).toBe(1);
    expect(m.restored_before_start).toBe(true);
    expect((await d.client.request<{ value: unknown }>('flaky:get')).value).toBe('f1');
    const final = await newest(d);
    expect(final).toMatchObject({ reason: 'shutdown', parent_id: manual });
    const b1 = await boot(d);
    expect(b1).toMatchObject({
      head_id: final.id,
      restored: { memo: final.id, flaky: final.id },
      skipped: [],
      corrupt: [],
    });
    // The boot restore is an event in the history for late joiners.
    const hist = await d.client.request<{ events: Array<{ data: Record<string, unknown> }> }>('monitor:events', {
      patterns: ['checkpoint:restored'],
    });
    expect(hist.events.at(-1)?.data).toMatchObject({ live: false, checkpoint_id: final.id, boot_id: b1.id });

    await d.client.request('memo:put', { values: { c: 3 } });
    const saved = await d.client.request<{ checkpoint_id: number; parent_id: number }>('checkpoint:save');
    expect(saved.parent_id).toBe(final.id);
    await d.client.request('memo:put', { values: { d: 4 } });
    expect(await d.kill('SIGKILL')).toBe('SIGKILL');

    d = await startDaemon({ home });
    // kill -9: no final checkpoint; state is the last checkpoint's (d was never checkpointed).
    expect((await memo(d)).entries).toEqual({ a: 1, b: 2, c: 3 });
    expect((await boot(d)).restored).toEqual({ memo: saved.checkpoint_id, flaky: saved.checkpoint_id });
    expect(await d.stop()).toBe(0);
  });

  it('skips a damaged part or an unreadable checkpoint and falls back per plugin to the previous one', async () => {
    const home = tempHome();
    let d = await startDaemon({ home, config });
    await d.client.request('memo:put', { values: { v: 'old' } });
    await d.client.request('flaky:set', { value: 'old' });
    const older = (await d.client.request<{ checkpoint_id: number }>('checkpoint:save')).checkpoint_id;
    await d.client.request('memo:put', { values: { v: 'new' } });
    await d.client.request('flaky:set', { value: 'new' });
    const latest = (await d.client.request<{ checkpoint_id: number }>('checkpoint:save')).checkpoint_id;
    expect(await d.kill('SIGKILL')).toBe('SIGKILL');
    // Damage memo's part of the newest checkpoint.
    let db = openDb(home);
    db.prepare(
      "UPDATE checkpoint_parts SET state = substr(state, 1, length(state) - 3) WHERE checkpoint_id = ? AND plugin = 'memo'",
    ).run(latest);
    db.close();

    d = await startDaemon({ home });
    let b = await boot(d);
    expect(b.corrupt).toEqual([{ checkpoint_id: latest, plugin: 'memo', reason: expect.stringMatching(/checksum/) }]);
    expect(b.restored).toEqual({ memo: older, flaky: latest });
    expect((await memo(d)).entries).toEqual({ v: 'old' });
    expect((await d.client.request<{ value: unknown }>('flaky:get')).value).toBe('new');
    expect((await d.client.request<{ status: string }>('system:health')).status).toBe('healthy');
    expect(await d.kill('SIGKILL')).toBe('SIGKILL');

    // A whole checkpoint in a format this version does not read is skipped too.
    db = openDb(home);
    db.prepare('UPDATE checkpoint_checkpoints SET format = 99 WHERE id = ?').run(latest);
    db.close();
    d = await startDaemon({ home });
    b = await boot(d);
    expect(b.corrupt).toEqual([{ checkpoint_id: latest, plugin: null, reason: expect.stringMatching(/format 99/) }]);
    expect(b.restored).toEqual({ memo: older, flaky: older });
    expect((await d.client.request<{ value: unknown }>('flaky:get')).value).toBe('old');
    // A live restore of it is refused as a conflict; nothing changes.
    await expect(d.client.request('checkpoint:restore', { checkpoint_id: latest })).rejects.toMatchObject({
      code: 'CONFLICT',
    });
    expect((await memo(d)).entries).toEqual({ v: 'old' });
    expect(await d.stop()).toBe(0);
  });

  it('skips the part of a plugin whose snapshot version changed, and uses an older compatible one', async () => {
    const home = tempHome();
    let d = await startDaemon({ home, config });
    await d.client.request('memo:put', { values: { era: 'v1' } });
    expect(await d.stop()).toBe(0);
    const v1 = await (async () => {
      const db = openDb(home);
      const r = db
        .prepare("SELECT MAX(checkpoint_id) AS id FROM checkpoint_parts WHERE plugin = 'memo' AND version = 1")
        .get() as { id: number };
      db.close();
      return r.id;
    })();

    // Upgrade: memo now writes version 2; the version-1 state is not handed to it.
    d = await startDaemon({ home, env: { MEMO_VERSION: '2' } });
    let b = await boot(d);
    expect(b.restored.memo).toBeUndefined();
    expect(b.skipped).toContainEqual({
      checkpoint_id: v1,
      plugin: 'memo',
      reason: expect.stringMatching(/version 1 does not match plugin version 2/),
    });
    expect(await memo(d)).toMatchObject({ entries: {}, restores: 0 });
    await d.client.request('memo:put', { values: { era: 'v2' } });
    expect(await d.stop()).toBe(0);

    // Downgrade: the newest memo part is version 2, so the older version-1 one is used instead.
    d = await startDaemon({ home, env: { MEMO_VERSION: '1' } });
    b = await boot(d);
    expect(b.restored.memo).toBe(v1);
    expect(
      b.skipped.some((s) => s.plugin === 'memo' && /version 2 does not match plugin version 1/.test(s.reason)),
    ).toBe(true);
    expect((await memo(d)).entries).toEqual({ era: 'v1' });
    expect(await d.stop()).toBe(0);
  });

  it('survives kill -9 in the middle of writing large checkpoints: the last committed one is intact', async () => {
    const home = tempHome();
    let d = await startDaemon({ home, config });
    await d.client.request('memo:fill', { count: 10_000 });
    const first = (await d.client.request<{ checkpoint_id: number }>('checkpoint:save')).checkpoint_id;
    const acked: number[] = [first];
    let stop = false;
    const saver = (async () => {
      for (let i = 0; !stop; i++) {
        await d.client.request('memo:put', { values: { [`w${i}`]: i } });
        acked.push((await d.client.request<{ checkpoint_id: number }>('checkpoint:save')).checkpoint_id);
      }
    })().catch(() => undefined);
    await new Promise((r) => setTimeout(r, 300 + Math.floor(Math.random() * 700)));
    stop = true;
    d.proc.kill('SIGKILL');
    expect(await d.exited).toBe('SIGKILL');
    await saver;
    await d.client.close();

    d = await startDaemon({ home });
    const b = await boot(d);
    expect(b.corrupt).toEqual([]);
    // The newest checkpoint that committed: the last acknowledged one, or one whose answer the kill cut off.
    expect(b.restored.memo).toBeGreaterThanOrEqual(acked[acked.length - 1]);
    expect(b.restored.memo).toBeLessThanOrEqual(acked[acked.length - 1] + 1);
    const m = await d.client.request<{ size: number; keys: string[] }>('memo:dump', { keys_only: true });
    const writes = m.keys.filter((k) => k.startsWith('w')).length;
    expect(m.size).toBe(10_000 + writes);
    expect(writes).toBeGreaterThanOrEqual(acked.length - 1);
    expect(await d.stop()).toBe(0);
  });
});
