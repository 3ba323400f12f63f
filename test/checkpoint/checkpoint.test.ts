/**
 * The checkpoint plugin through the real socket of a real daemon: save, list, status, lineage,
 * retention, live restore, bad input, a failing snapshot, concurrent saves, and a reload of the
 * plugin that must not replay the boot restore.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { EventFrame } from '../../client/protocol.js';
import type { DaemonHandle } from '../helpers/daemon-process.js';
import { expectCode, record, startDaemon, testConfig, waitFor } from './helpers.js';

interface Cp {
  id: number;
  parent_id: number | null;
  label: string | null;
  reason: string;
  age_s: number;
  size_bytes: number;
  duration_ms: number;
  plugins: string[];
  errors: Record<string, string>;
  complete: boolean;
}

interface Saved {
  checkpoint_id: number;
  parent_id: number | null;
  label: string | null;
  plugins: string[];
  errors: Record<string, string>;
  complete: boolean;
  size_bytes: number;
  duration_ms: number;
}

describe('checkpoint plugin on a live daemon', () => {
  let d: DaemonHandle;
  let events: EventFrame[];
  const save = (label?: string) => d.client.request<Saved>('checkpoint:save', label ? { label } : {});
  const list = async () =>
    await d.client.request<{ checkpoints: Cp[]; total: number; labelled: number }>('checkpoint:list', { limit: 100 });

  beforeAll(async () => {
    d = await startDaemon({ config: testConfig({ checkpoint: { keep: 3, max_pending: 3 } }) });
    events = await record(d.client, ['checkpoint:*']);
  });
  afterAll(async () => {
    await d?.stop();
  });

  it('starts with nothing to restore and says so', async () => {
    const st = await d.client.request<{
      last: unknown;
      count: number;
      head_id: unknown;
      boot: { restored: object; corrupt: unknown[] };
    }>('checkpoint:status');
    expect(st.last).toBeNull();
    expect(st.count).toBe(0);
    expect(st.head_id).toBeNull();
    expect(st.boot.restored).toEqual({});
    expect(st.boot.corrupt).toEqual([]);
    const plugins = await d.client.request<{ plugins: Array<{ name: string; status: string }> }>('plugin:list');
    expect(plugins.plugins.find((p) => p.name === 'checkpoint')?.status).toBe('ok');
  });

  it('saves with lineage, keeps the newest N unlabelled plus every labelled one, and reports status', async () => {
    await d.client.request('memo:put', { values: { a: 1 } });
    const first = await save('first');
    expect(first).toMatchObject({ parent_id: null, label: 'first', complete: true, errors: {} });
    expect(first.plugins.sort()).toEqual(['flaky', 'memo']);
    const ids = [first.checkpoint_id];
    for (let i = 0; i < 5; i++) {
      await d.client.request('memo:put', { values: { [`k${i}`]: i } });
      const s = await save();
      expect(s.parent_id).toBe(ids[ids.length - 1]);
      ids.push(s.checkpoint_id);
    }
    const l = await list();
    // keep: 3 → the three newest unlabelled, plus the labelled one however old.
    expect(l.checkpoints.map((c) => c.id)).toEqual([ids[5], ids[4], ids[3], ids[0]]);
    expect(l.total).toBe(4);
    expect(l.labelled).toBe(1);
    expect(l.checkpoints[0]).toMatchObject({ parent_id: ids[4], reason: 'manual', label: null, complete: true });
    const st = await d.client.request<{ last: Cp & { write_ms: number }; head_id: number; count: number }>(
      'checkpoint:status',
    );
    expect(st.head_id).toBe(ids[5]);
    expect(st.last.id).toBe(ids[5]);
    expect(st.last.age_s).toBeGreaterThanOrEqual(0);
    expect(st.last.age_s).toBeLessThan(10);
    expect(st.last.size_bytes).toBeGreaterThan(20);
    expect(st.last.duration_ms).toBeGreaterThan(0);
    expect(st.last.write_ms).toBeGreaterThan(0);
    await waitFor(
      () => events.filter((e) => e.event === 'checkpoint:saved').length >= 6,
      15_000,
      'checkpoint:saved events',
    );
    expect(events.filter((e) => e.event === 'checkpoint:saved').map((e) => e.data.checkpoint_id)).toEqual(ids);
  });

  it('restores a checkpoint live, then checkpoints the restored state as its child', async () => {
    const l = await list();
    const target = l.checkpoints.find((c) => c.label === 'first')!;
    await d.client.request('memo:put', { values: { a: 2, later: true } });
    const r = await d.client.request<{
      checkpoint_id: number;
      restored: string[];
      skipped: object;
      checkpoint_after: number;
    }>('checkpoint:restore', { checkpoint_id: target.id });
    expect(r.checkpoint_id).toBe(target.id);
    expect(r.restored.sort()).toEqual(['flaky', 'memo']);
    expect(r.skipped).toEqual({});
    const dump = await d.client.request<{ entries: Record<string, unknown>; restores: number }>('memo:dump');
    expect(dump.entries).toEqual({ a: 1 });
    expect(dump.restores).toBe(1);
    const after = (await list()).checkpoints[0];
    expect(after).toMatchObject({ id: r.checkpoint_after, parent_id: target.id, reason: 'restore' });
    const ev = await waitFor(
      () => events.find((e) => e.event === 'checkpoint:restored'),
      15_000,
      'checkpoint:restored',
    );
    expect(ev.data).toMatchObject({ live: true, checkpoint_id: target.id, checkpoint_after: r.checkpoint_after });
  });

  it('answers bad input with typed errors and changes nothing', async () => {
    const ids = async () => (await list()).checkpoints.map((c) => [c.id, c.parent_id, c.label]);
    const before = await ids();
    expect(await expectCode(d.client.request('checkpoint:restore', { checkpoint_id: 999_999 }))).toBe('NOT_FOUND');
    expect(
      await expectCode(d.client.request<Record<string, unknown>>('checkpoint:restore', { checkpoint_id: 'x' })),
    ).toBe('INVALID_DATA');
    expect(await expectCode(d.client.request<Record<string, unknown>>('checkpoint:restore', {}))).toBe('INVALID_DATA');
    expect(await expectCode(d.client.request('checkpoint:save', { label: '' }))).toBe('INVALID_DATA');
    expect(await expectCode(d.client.request('checkpoint:save', { label: 'x'.repeat(201) }))).toBe('INVALID_DATA');
    expect(await expectCode(d.client.request('checkpoint:list', { limit: 0 }))).toBe('INVALID_DATA');
    // The kernel-internal events behind checkpointing are not reachable from the socket.
    expect(await expectCode(d.client.request('plugin:snapshot', {}))).toBe('UNKNOWN_EVENT');
    expect(await expectCode(d.client.request('plugin:restore', { states: {} }))).toBe('UNKNOWN_EVENT');
    expect(await expectCode(d.client.request('checkpoint:delete', { checkpoint_id: 999_999 }))).toBe('NOT_FOUND');
    expect(await expectCode(d.client.request('checkpoint:delete', { checkpoint_id: -1 }))).toBe('INVALID_DATA');
    expect(await ids()).toEqual(before);
    expect((await d.client.request<{ entries: object }>('memo:dump')).entries).toEqual({ a: 1 });
  });

  it('takes the checkpoint without a plugin whose snapshot throws, and says so', async () => {
    await d.client.request('flaky:set', { value: 'v1' });
    const good = await save();
    expect(good.complete).toBe(true);
    await d.client.request('flaky:set', { value: 'v2', fail_snapshot: true });
    await d.client.request('memo:put', { values: { b: 2 } });
    const partial = await save('partial');
    expect(partial.complete).toBe(false);
    expect(partial.plugins).toEqual(['memo']);
    expect(partial.errors.flaky).toMatch(/flaky snapshot failure/);
    const st = await d.client.request<{ last: Cp }>('checkpoint:status');
    expect(st.last).toMatchObject({ id: partial.checkpoint_id, complete: false });
    expect(st.last.errors.flaky).toMatch(/flaky snapshot failure/);
    // Restoring it live leaves flaky alone (nothing of it in there) and restores memo.
    await d.client.request('memo:put', { values: { c: 3 } });
    const r = await d.client.request<{ restored: string[] }>('checkpoint:restore', {
      checkpoint_id: partial.checkpoint_id,
    });
    expect(r.restored).toEqual(['memo']);
    expect((await d.client.request<{ entries: object }>('memo:dump')).entries).toEqual({ a: 1, b: 2 });
    expect((await d.client.request<{ value: unknown }>('flaky:get')).value).toBe('v2');
    await d.client.request('flaky:set', { fail_snapshot: false });
  });

  it('serialises concurrent saves into one chain and refuses what does not fit the queue', async () => {
    await d.client.request('memo:slow_snapshot', { ms: 120 });
    const head = (await d.client.request<{ head_id: number }>('checkpoint:status')).head_id;
    const results = await Promise.allSettled(Array.from({ length: 8 }, (_, i) => save(`c${i}`)));
    await d.client.request('memo:slow_snapshot', { ms: 0 });
    const ok = results.filter((r): r is PromiseFulfilledResult<Saved> => r.status === 'fulfilled').map((r) => r.value);
    const refused = results
      .filter((r): r is PromiseRejectedResult => r.status === 'rejected')
      .map((r) => (r.reason as { code: string }).code);
    expect(ok.length).toBeGreaterThanOrEqual(3);
    expect(refused.length).toBeGreaterThanOrEqual(1);
    expect(new Set(refused)).toEqual(new Set(['OVERLOADED']));
    // One at a time: each accepted save is the parent of the next, in order.
    const chain = [...ok].sort((a, b) => a.checkpoint_id - b.checkpoint_id);
    expect(chain[0].parent_id).toBe(head);
    for (let i = 1; i < chain.length; i++) expect(chain[i].parent_id).toBe(chain[i - 1].checkpoint_id);
    for (const s of chain) expect(s.duration_ms).toBeGreaterThanOrEqual(100);
  });

  it('does not replay the boot restore when the checkpoint plugin is reloaded', async () => {
    const before = await d.client.request<{ head_id: number; boot: { id: number } }>('checkpoint:status');
    const memoBefore = await d.client.request<{ restores: number; entries: object }>('memo:dump');
    const r = await d.client.request<{ status: string }>('plugin:reload', { name: 'checkpoint' });
    expect(r.status).toBe('ok');
    const after = await d.client.request<{ head_id: number; boot: { id: number } }>('checkpoint:status');
    expect(after.boot.id).toBe(before.boot.id);
    expect(after.head_id).toBe(before.head_id);
    const memoAfter = await d.client.request<{ restores: number; entries: object }>('memo:dump');
    expect(memoAfter.restores).toBe(memoBefore.restores);
    expect(memoAfter.entries).toEqual(memoBefore.entries);
    // And it keeps working: the next save descends from the same head.
    expect((await save()).parent_id).toBe(before.head_id);
  });

  it('deletes a checkpoint, labelled or not, and only that one', async () => {
    const before = await list();
    const labelled = before.checkpoints.find((c) => c.label === 'partial')!;
    expect(await d.client.request('checkpoint:delete', { checkpoint_id: labelled.id })).toEqual({
      deleted: labelled.id,
    });
    const after = await list();
    expect(after.checkpoints.map((c) => c.id)).toEqual(
      before.checkpoints.map((c) => c.id).filter((id) => id !== labelled.id),
    );
    expect(after.labelled).toBe(before.labelled - 1);
    expect(await expectCode(d.client.request('checkpoint:delete', { checkpoint_id: labelled.id }))).toBe('NOT_FOUND');
    expect(await expectCode(d.client.request('checkpoint:restore', { checkpoint_id: labelled.id }))).toBe('NOT_FOUND');
  });
});

describe('periodic checkpoints', () => {
  it('are taken while something changed, and not while nothing did', async () => {
    const d = await startDaemon({ config: testConfig({ checkpoint: { interval_ms: 150 } }) });
    try {
      type St = { count: number; last: Cp | null; stats: { periodic_skipped_clean: number } };
      const status = () => d.client.request<St>('checkpoint:status');
      await waitFor(async () => (await status()).stats.periodic_skipped_clean >= 2, 20_000, 'idle ticks');
      expect((await status()).count).toBe(0);
      await d.client.request('memo:put', { values: { p: 1 } });
      const st = await waitFor(
        async () => {
          const s = await status();
          return s.count === 1 ? s : null;
        },
        20_000,
        'a periodic checkpoint',
      );
      expect(st.last).toMatchObject({ reason: 'periodic', complete: true });
      // Nothing changed since: ticks keep coming, no new checkpoint.
      const skipped = st.stats.periodic_skipped_clean;
      await waitFor(
        async () => (await status()).stats.periodic_skipped_clean >= skipped + 3,
        20_000,
        'more idle ticks',
      );
      expect((await status()).count).toBe(1);
    } finally {
      await d.stop();
    }
  });
});
