/**
 * The kernel's group commit: one transaction per event-loop turn for every plugin sharing the
 * database, committed without a blocking fsync and acknowledged only after the WAL file was synced.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, describe, expect, it, vi } from 'vitest';
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
  vi.restoreAllMocks();
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});

/** What file a descriptor of this process refers to. */
const fdPath = (fd: number): string => fs.readlinkSync(`/proc/self/fd/${fd}`);

describe('group commit', () => {
  it('shares one transaction and one WAL sync among the operations of one turn, from any caller', async () => {
    const db = freshDb();
    const a = GroupCommit.for(db);
    const b = GroupCommit.for(db);
    expect(b).toBe(a);
    const synced: string[] = [];
    const real = fs.fdatasync;
    vi.spyOn(fs, 'fdatasync').mockImplementation(((fd: number, cb: (e: NodeJS.ErrnoException | null) => void) => {
      synced.push(fdPath(fd));
      real(fd, cb);
    }) as typeof fs.fdatasync);
    const ins = db.prepare('INSERT INTO t VALUES (?, ?)');
    const results = await Promise.all([1, 2, 3].map((i) => (i % 2 ? a : b).run(() => ins.run(`k${i}`, i).changes)));
    expect(results).toEqual([1, 1, 1]);
    expect(a.stats.commits).toBe(1);
    expect(a.stats.ops).toBe(3);
    expect(synced).toEqual([`${db.name}-wal`]);
    // Committed: another connection sees all three.
    const other = new Database(db.name, { readonly: true });
    expect((other.prepare('SELECT COUNT(*) AS n FROM t').get() as { n: number }).n).toBe(3);
    other.close();
    db.close();
  });

  it('acknowledges a write only after the WAL sync returned, and not at all when the sync fails', async () => {
    const db = freshDb();
    const gc = new GroupCommit(db);
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    let fail = false;
    vi.spyOn(fs, 'fdatasync').mockImplementation(((_fd: number, cb: (e: NodeJS.ErrnoException | null) => void) => {
      void gate.then(() => cb(fail ? Object.assign(new Error('EIO: i/o error'), { code: 'EIO' }) : null));
    }) as typeof fs.fdatasync);
    let acked = false;
    const p = gc.run(() => db.prepare('INSERT INTO t VALUES (?, ?)').run('x', 1)).then(() => (acked = true));
    await new Promise((r) => setTimeout(r, 30));
    expect(acked).toBe(false);
    release();
    await p;
    expect(acked).toBe(true);

    fail = true;
    await expect(gc.run(() => db.prepare('INSERT INTO t VALUES (?, ?)').run('y', 2))).rejects.toThrow(/could not be synced to disk: EIO/);
    db.close();
  });

  it('rolls back only the operation that failed; later() commits without asking for the disk', async () => {
    const db = freshDb();
    const gc = new GroupCommit(db);
    const sync = vi.spyOn(fs, 'fdatasync');
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
    expect(sync).not.toHaveBeenCalled();
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

  it('flush() commits durably at once (stop), and an in-memory database needs no WAL sync', async () => {
    const db = freshDb();
    const gc = new GroupCommit(db);
    const sync = vi.spyOn(fs, 'fdatasync');
    const p = gc.run(() => db.prepare('INSERT INTO t VALUES (?, ?)').run('s', 1));
    gc.flush();
    await p;
    expect(sync).not.toHaveBeenCalled(); // synchronous=FULL did it inside the commit
    db.close();

    const mem = new Database(':memory:');
    mem.exec('CREATE TABLE t (k TEXT)');
    const mgc = new GroupCommit(mem);
    await mgc.run(() => mem.prepare('INSERT INTO t VALUES (?)').run('m'));
    expect(mgc.stats.syncs).toBe(0);
    expect(sync).not.toHaveBeenCalled();
  });
});
