/**
 * Retention of full checkpoints: bounded by count and by bytes; the oldest unlabelled go first,
 * labelled ones are never removed by retention (a save that would need one gone is refused), a
 * deleted checkpoint's copy goes with it, and copies a crash left behind are removed at start.
 */
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { DaemonHandle } from '../helpers/daemon-process.js';
import { expectCode, startDaemon, testConfig } from './helpers.js';

const fullDirs = (home: string): string[] => {
  const dir = path.join(home, 'checkpoint', 'full');
  return fs.existsSync(dir) ? fs.readdirSync(dir).sort() : [];
};

interface Cp {
  id: number;
  scope: string;
  label: string | null;
  full_bytes?: number;
}

describe('full checkpoint retention', () => {
  let d: DaemonHandle | null = null;
  afterAll(async () => {
    await d?.stop();
  });
  const rq = <T = Record<string, unknown>>(event: string, data: Record<string, unknown> = {}) =>
    d!.client.request<T>(event, data, { timeoutMs: 120_000 });
  const fulls = async () =>
    (await rq<{ checkpoints: Cp[] }>('checkpoint:list', { limit: 1000 })).checkpoints
      .filter((c) => c.scope === 'full')
      .map((c) => c.id);

  it('keeps at most full_keep, the oldest unlabelled going first, and refuses rather than drop a labelled one', async () => {
    d = await startDaemon({
      config: testConfig({ keep: ['kg'], disableFixtures: ['hang'], checkpoint: { full_keep: 3 } }),
    });
    const save = async (label?: string) =>
      await rq<{ checkpoint_id: number; full: { pruned_full: number[] } }>('checkpoint:save', {
        scope: 'full',
        ...(label ? { label } : {}),
      });
    const l1 = (await save('one')).checkpoint_id;
    const u1 = (await save()).checkpoint_id;
    const u2 = (await save()).checkpoint_id;
    expect(await fulls()).toEqual([u2, u1, l1]);
    const u3 = await save();
    expect(u3.full.pruned_full).toEqual([u1]);
    expect(await fulls()).toEqual([u3.checkpoint_id, u2, l1]);
    expect(fullDirs(d.home)).toHaveLength(3);
    await save('two');
    await save('three');
    expect(await fulls()).toHaveLength(3);
    // Three labelled: no room for a fourth without dropping one, which only checkpoint:delete does.
    expect(await expectCode(save())).toBe('CONFLICT');
    expect(fullDirs(d.home)).toHaveLength(3);
    await rq('checkpoint:delete', { checkpoint_id: l1 });
    expect(fullDirs(d.home)).toHaveLength(2);
    expect((await save()).checkpoint_id).toBeGreaterThan(0);
  }, 180_000);

  it('refuses a full checkpoint that does not fit in full_max_bytes, leaving nothing behind; removes leftovers at start', async () => {
    await d?.stop();
    d = await startDaemon({
      config: testConfig({ keep: ['kg'], disableFixtures: ['hang'], checkpoint: { full_max_bytes: 1024 * 1024 } }),
    });
    // A graph of a couple of MB: bigger than the bound on its own.
    for (let b = 0; b < 4; b++) {
      await rq('kg:add_nodes', {
        nodes: Array.from({ length: 1000 }, (_, i) => ({
          id: `n${b}-${i}`,
          label: 'Concept',
          properties: { text: 'x'.repeat(500) },
        })),
      });
    }
    expect(await expectCode(rq('checkpoint:save', { scope: 'full' }))).toBe('CONFLICT');
    expect(fullDirs(d.home)).toEqual([]);
    expect(await fulls()).toEqual([]);
    const home = d.home;
    await d.stop();
    // A save a crash cut short leaves a directory no checkpoint refers to.
    fs.mkdirSync(path.join(home, 'checkpoint', 'full', 'left-over'), { recursive: true });
    d = await startDaemon({ home, config: testConfig({ keep: ['kg'], disableFixtures: ['hang'] }) });
    expect(fullDirs(home)).toEqual([]);
  }, 180_000);
});
