/**
 * A full restore that cannot stop a plugin in time changes nothing: a plugin still busy past the
 * deadline might still write, so its tables are not put back under it; every plugin runs on as before.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { DaemonHandle } from '../helpers/daemon-process.js';
import { openDb, startDaemon, testConfig } from './helpers.js';

describe('a full restore that cannot stop a plugin', () => {
  let d: DaemonHandle;
  beforeAll(async () => {
    d = await startDaemon({
      config: testConfig({ keep: ['kg'], disableFixtures: ['hang'], checkpoint: { restore_stop_timeout_ms: 500 } }),
      env: { NOTES_HANG_STOP: '1' },
    });
  });
  afterAll(async () => {
    await d?.kill('SIGKILL'); // its notes plugin never stops
  });

  it('answers UNAVAILABLE naming it, restores nothing, and serves on', async () => {
    const rq = <T = Record<string, unknown>>(event: string, data: Record<string, unknown> = {}) =>
      d.client.request<T>(event, data, { timeoutMs: 60_000 });
    await rq('notes:put', { id: 'a', text: 'saved' });
    await rq('kg:add_nodes', { nodes: [{ id: 'k1', label: 'Concept' }] });
    const { checkpoint_id } = await rq<{ checkpoint_id: number }>('checkpoint:save', { scope: 'full' });
    await rq('notes:put', { id: 'b', text: 'later' });
    await rq('kg:add_nodes', { nodes: [{ id: 'k2', label: 'Concept' }] });
    const err = await rq('checkpoint:restore', { checkpoint_id }).then(
      () => null,
      (e: { code: string; details?: Record<string, unknown> }) => e,
    );
    expect(err).toMatchObject({ code: 'UNAVAILABLE', details: { unfinished: ['notes'] } });
    expect((await rq<{ notes: Array<{ id: string }> }>('notes:list')).notes.map((n) => n.id)).toEqual(['a', 'b']);
    expect((await rq<{ nodes: Array<{ id: string }> }>('kg:export')).nodes.map((n) => n.id)).toEqual(['k1', 'k2']);
    const db = openDb(d.home);
    expect(db.prepare('SELECT phase FROM checkpoint_restores ORDER BY id DESC LIMIT 1').pluck().get()).toBe(
      'abandoned',
    );
    db.close();
  });
});
