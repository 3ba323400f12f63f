/** The checkpoint store and the serial queue as plain modules, without a daemon. */
import Database from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import { migrate } from '../../daemon/persistence.js';
import { SerialQueue } from '../../plugins/checkpoint/serial.js';
import { CheckpointStore, MIGRATIONS, sha256, verifyPart } from '../../plugins/checkpoint/store.js';

function store(): { db: Database.Database; s: CheckpointStore } {
  const db = new Database(':memory:');
  db.pragma('foreign_keys = ON');
  db.exec(
    'CREATE TABLE kernel_migrations (plugin TEXT NOT NULL, version INTEGER NOT NULL, applied_at REAL NOT NULL, PRIMARY KEY (plugin, version))',
  );
  migrate(db, 'checkpoint', MIGRATIONS);
  return { db, s: new CheckpointStore(db) };
}

const part = (plugin: string, state: unknown) => ({ plugin, version: 1, json: JSON.stringify(state) });

describe('CheckpointStore', () => {
  it('writes a checkpoint with its parts and applies retention in the same transaction', () => {
    const { db, s } = store();
    const ids: number[] = [];
    for (let i = 0; i < 6; i++) {
      const label = i === 1 ? 'keep-me' : null;
      const { row, pruned } = s.insert({
        parentId: ids.at(-1) ?? null,
        label,
        reason: 'manual',
        durationMs: 1,
        parts: [part('a', { i }), part('b', [i])],
        errors: {},
        keep: 2,
      });
      expect(row.size_bytes).toBe(Buffer.byteLength(JSON.stringify({ i })) + Buffer.byteLength(JSON.stringify([i])));
      expect(pruned).toBe(i >= 3 ? 1 : 0);
      ids.push(row.id);
    }
    expect(s.list(100).map((c) => c.id)).toEqual([ids[5], ids[4], ids[1]]);
    expect(s.counts()).toMatchObject({ n: 3, labelled: 1 });
    // Parts of pruned checkpoints are gone with them.
    expect((db.prepare('SELECT COUNT(*) AS n FROM checkpoint_parts').get() as { n: number }).n).toBe(6);
    expect(s.parts(ids[0])).toEqual([]);
    expect(s.parts(ids[5]).map((p) => p.plugin)).toEqual(['a', 'b']);
    expect(s.get(ids[5])).toMatchObject({ parent_id: ids[4], plugins: ['a', 'b'], errors: {} });
    // The commit is forced to synchronous=FULL, and the connection's own setting is left as it was.
    db.pragma('synchronous = OFF');
    s.insert({ parentId: null, label: null, reason: 'manual', durationMs: 1, parts: [], errors: {}, keep: 2 });
    expect(db.pragma('synchronous', { simple: true })).toBe(0);
  });

  it('verifies a part by checksum and JSON before anyone sees it', () => {
    const good = { plugin: 'a', version: 1, state: '{"x":1}', sha256: sha256('{"x":1}') };
    expect(verifyPart(good)).toEqual({ ok: true, state: { x: 1 } });
    expect(verifyPart({ ...good, state: '{"x":2}' })).toMatchObject({
      ok: false,
      reason: expect.stringMatching(/checksum/),
    });
    expect(verifyPart({ ...good, state: '{"x":', sha256: sha256('{"x":') })).toMatchObject({
      ok: false,
      reason: expect.stringMatching(/JSON/),
    });
  });

  it('reads damaged metadata as empty instead of throwing, and deletes one checkpoint', () => {
    const { db, s } = store();
    const { row } = s.insert({
      parentId: null,
      label: 'x',
      reason: 'manual',
      durationMs: 1,
      parts: [part('a', 1)],
      errors: { b: 'boom' },
      keep: 5,
    });
    db.prepare("UPDATE checkpoint_checkpoints SET plugins = '[', errors = 'nope' WHERE id = ?").run(row.id);
    expect(s.get(row.id)).toMatchObject({ plugins: [], errors: {} });
    expect(s.delete(row.id)).toBe(true);
    expect(s.delete(row.id)).toBe(false);
    expect(s.parts(row.id)).toEqual([]);
  });
});

describe('SerialQueue', () => {
  it('runs jobs one at a time in arrival order and refuses beyond its bound', async () => {
    const q = new SerialQueue(2);
    const log: string[] = [];
    const job = (n: string, ms: number) => () =>
      new Promise<string>((r) => {
        log.push(`start ${n}`);
        setTimeout(() => (log.push(`end ${n}`), r(n)), ms);
      });
    const a = q.run(job('a', 20));
    const b = q.run(job('b', 5));
    const c = q.run(job('c', 1));
    await expect(c).rejects.toMatchObject({ code: 'OVERLOADED' });
    expect(q.busy).toBe(true);
    expect(await Promise.all([a, b])).toEqual(['a', 'b']);
    expect(log).toEqual(['start a', 'end a', 'start b', 'end b']);
    // A failed job does not stop the ones behind it.
    const bad = q.run(() => Promise.reject(new Error('x')));
    const after = q.run(async () => 'after');
    await expect(bad).rejects.toThrow('x');
    expect(await after).toBe('after');
    await q.idle();
    expect(q.busy).toBe(false);
  });
});
