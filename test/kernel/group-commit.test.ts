/**
 * The kernel's group commit: one transaction (and one fsync) per event-loop turn for every plugin
 * sharing the database; bookkeeping rides along without asking for the disk.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, describe, expect, it } from 'vitest';
import { GroupCommit } from '../../daemon/group-commit.js';
import { openDatabase } from '../../daemon/persistence.js';

const dirs: string[] = [];
function freshDb(): Database.Database {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'agentd-gc-'));
  dirs.push(dir);
  const db = openDatabase(dir);
  db.exec('CREATE TABLE t (k TEXT PRIMARY KEY, v INTEGER)');
  return db;
}

afterEach(() => {
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});

describe('group commit', () => {
  it('shares one transaction among the operations of one turn, from any caller', async () => {
    const db = freshDb();
    const a = GroupCommit.for(db);
    const b = GroupCommit.for(db);
    expect(b).toBe(a);
    const ins = db.prepare('INSERT INTO t VALUES (?, ?)');
    const results = await Promise.all([1, 2, 3].map((i) => (i % 2 ? a : b).run(() => ins.run(`k${i}`, i).changes)));
    expect(results).toEqual([1, 1, 1]);
    expect(a.stats.commits).toBe(1);
    expect(a.stats.ops).toBe(3);
    // Committed by the time the promises settled: another connection sees all three.
    const other = new Database(db.name, { readonly: true });
    expect((other.prepare('SELECT COUNT(*) AS n FROM t').get() as { n: number }).n).toBe(3);
    other.close();
    db.close();
  });

  it('commits a batch someone waits on with synchronous=FULL, bookkeeping alone with NORMAL', async () => {
    const db = freshDb();
    const gc = new GroupCommit(db);
    const mode = (): number => db.pragma('synchronous', { simple: true }) as number;
    const [inDurable, alsoDurable] = await Promise.all([gc.later(mode), gc.run(mode)]);
    expect([inDurable, alsoDurable]).toEqual([2, 2]);
    expect(await gc.later(mode)).toBe(1);
    expect(mode()).toBe(2); // and the connection is back to FULL for everyone else
    db.close();
  });

  it('rolls back only the operation that failed; later() commits without asking for the disk', async () => {
    const db = freshDb();
    const gc = new GroupCommit(db);
    const ins = db.prepare('INSERT INTO t VALUES (?, ?)');
    const [ok, bad] = await Promise.allSettled([
      gc.later(() => ins.run('a', 1)),
      gc.later(() => {
        ins.run('b', 2);
        ins.run('a', 3); // duplicate key: this operation, and only this one, rolls back
      }),
    ]);
    expect(ok.status).toBe('fulfilled');
    expect(bad.status).toBe('rejected');
    expect(db.prepare('SELECT k FROM t ORDER BY k').all()).toEqual([{ k: 'a' }]);
    db.close();
  });

  it('bookkeeping (later) rides on the next durable batch, or is committed alone shortly after', async () => {
    const db = freshDb();
    const gc = new GroupCommit(db);
    const ins = db.prepare('INSERT INTO t VALUES (?, ?)');
    const both = Promise.all([gc.later(() => ins.run('l1', 1)), gc.run(() => ins.run('d1', 2))]);
    await both;
    expect(gc.stats.commits).toBe(1);
    const t0 = Date.now();
    await gc.later(() => ins.run('l2', 3));
    expect(gc.stats.commits).toBe(2);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(15);
    expect(db.prepare('SELECT k FROM t ORDER BY k').all()).toEqual([{ k: 'd1' }, { k: 'l1' }, { k: 'l2' }]);
    db.close();
  });

  it('flush() commits at once (stop), without waiting for the turn to end', async () => {
    const db = freshDb();
    const gc = new GroupCommit(db);
    let done = false;
    const p = gc.run(() => db.prepare('INSERT INTO t VALUES (?, ?)').run('s', 1)).then(() => (done = true));
    gc.flush();
    await Promise.resolve();
    expect(done).toBe(true);
    await p;
    db.close();
  });
});
