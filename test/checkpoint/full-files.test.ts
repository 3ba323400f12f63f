/**
 * The file work under full checkpoints, without a daemon: a cut of two files copied while another
 * connection keeps writing is exactly the state at the cut; a file or directory put back replaces the
 * live one whole; putting a file back waits for a lock another process holds, without blocking the
 * event loop; the diff of two files names exactly the keys added, removed and changed.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, describe, expect, it } from 'vitest';
import { diffEntity } from '../../plugins/checkpoint/full-diff.js';
import {
  Cut,
  restoreDir,
  restoreFile,
  restoreTables,
  schemaDifferences,
  sealCopy,
} from '../../plugins/checkpoint/full-files.js';

const dirs: string[] = [];
const temp = (): string => {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), 'agentd-full-files-'));
  dirs.push(d);
  return d;
};
afterEach(() => {
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});

function wal(file: string): Database.Database {
  const db = new Database(file);
  db.pragma('journal_mode = WAL');
  return db;
}

const count = (file: string, table: string): number => {
  const db = new Database(file, { readonly: true });
  try {
    return (db.prepare(`SELECT count(*) AS n FROM ${table}`).get() as { n: number }).n;
  } finally {
    db.close();
  }
};

describe('a cut', () => {
  it('copies two files as they were at the cut while writes go on between the copy steps', async () => {
    const dir = temp();
    const a = wal(path.join(dir, 'a.db'));
    const b = wal(path.join(dir, 'b.db'));
    a.exec('CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)');
    b.exec('CREATE TABLE u (id INTEGER PRIMARY KEY, v TEXT)');
    const insA = a.prepare('INSERT INTO t (v) VALUES (?)');
    const insB = b.prepare('INSERT INTO u (v) VALUES (?)');
    a.transaction(() => {
      for (let i = 0; i < 20_000; i++) insA.run('x'.repeat(200));
    })();
    b.transaction(() => {
      for (let i = 0; i < 20_000; i++) insB.run('y'.repeat(200));
    })();
    const cut = new Cut([
      { src: path.join(dir, 'a.db'), dest: path.join(dir, 'copy', 'a.db') },
      { src: path.join(dir, 'b.db'), dest: path.join(dir, 'copy', 'b.db') },
    ]);
    // Writers keep going while the copy proceeds a few pages per turn.
    let writes = 0;
    const writer = setInterval(() => {
      insA.run('late');
      insB.run('late');
      writes++;
    }, 0);
    await cut.copy(16);
    clearInterval(writer);
    cut.close();
    expect(writes).toBeGreaterThan(0);
    for (const f of ['a.db', 'b.db']) sealCopy(path.join(dir, 'copy', f));
    expect(count(path.join(dir, 'copy', 'a.db'), 't')).toBe(20_000);
    expect(count(path.join(dir, 'copy', 'b.db'), 'u')).toBe(20_000);
    expect(fs.existsSync(path.join(dir, 'copy', 'a.db-wal'))).toBe(false);
    expect(fs.statSync(path.join(dir, 'copy', 'a.db')).mode & 0o777).toBe(0o600);
    a.close();
    b.close();
  });
});

describe('putting back', () => {
  it('replaces tables from a copy together with a journal mark, leaving other tables alone', async () => {
    const dir = temp();
    const live = wal(path.join(dir, 'live.db'));
    live.exec(
      'CREATE TABLE x (k TEXT PRIMARY KEY, v INTEGER); CREATE TABLE keep (v INTEGER); CREATE TABLE j (phase TEXT)',
    );
    live.exec(
      "INSERT INTO x VALUES ('a', 1), ('b', 2); INSERT INTO keep VALUES (1); INSERT INTO j VALUES ('applying')",
    );
    live.exec(`VACUUM INTO '${path.join(dir, 'copy.db')}'`);
    live.exec("DELETE FROM x WHERE k = 'a'; INSERT INTO x VALUES ('c', 3); INSERT INTO keep VALUES (2)");
    await restoreTables(
      path.join(dir, 'live.db'),
      path.join(dir, 'copy.db'),
      ['x'],
      { sql: "UPDATE j SET phase = 'applied'", args: [] },
      Date.now() + 1000,
    );
    expect(live.prepare('SELECT k FROM x ORDER BY k').pluck().all()).toEqual(['a', 'b']);
    expect(live.prepare('SELECT count(*) FROM keep').pluck().get()).toBe(2);
    expect(live.prepare('SELECT phase FROM j').pluck().get()).toBe('applied');
    expect(schemaDifferences(path.join(dir, 'live.db'), path.join(dir, 'copy.db'), ['x'])).toEqual([]);
    live.exec('ALTER TABLE x ADD COLUMN w TEXT');
    expect(schemaDifferences(path.join(dir, 'live.db'), path.join(dir, 'copy.db'), ['x'])).toEqual([
      'x: its definition changed since the save',
    ]);
    live.close();
  });

  it('keeps a full-text index right when its content table is put back (the index follows through its triggers)', async () => {
    const dir = temp();
    const live = wal(path.join(dir, 'live.db'));
    live.exec(`CREATE TABLE docs (id TEXT PRIMARY KEY, terms TEXT NOT NULL);
      CREATE VIRTUAL TABLE docs_fts USING fts5(terms, content='docs', content_rowid='rowid');
      CREATE TRIGGER docs_ai AFTER INSERT ON docs BEGIN INSERT INTO docs_fts (rowid, terms) VALUES (new.rowid, new.terms); END;
      CREATE TRIGGER docs_ad AFTER DELETE ON docs BEGIN INSERT INTO docs_fts (docs_fts, rowid, terms) VALUES ('delete', old.rowid, old.terms); END;
      CREATE TABLE j (phase TEXT); INSERT INTO j VALUES ('applying');
      INSERT INTO docs VALUES ('a', 'protein folding'), ('b', 'graph theory');`);
    live.exec(`VACUUM INTO '${path.join(dir, 'copy.db')}'`);
    live.exec("DELETE FROM docs WHERE id = 'a'; INSERT INTO docs VALUES ('c', 'protein design')");
    await restoreTables(
      path.join(dir, 'live.db'),
      path.join(dir, 'copy.db'),
      ['docs'],
      { sql: "UPDATE j SET phase = 'applied'", args: [] },
      Date.now() + 1000,
    );
    const match = (q: string) =>
      live
        .prepare(
          'SELECT d.id FROM docs_fts JOIN docs d ON d.rowid = docs_fts.rowid WHERE docs_fts MATCH ? ORDER BY d.id',
        )
        .pluck()
        .all(q);
    expect(match('protein')).toEqual(['a']);
    expect(match('graph')).toEqual(['b']);
    // Throws SQLITE_CORRUPT_VTAB when the index does not match its content table.
    expect(() => live.prepare("INSERT INTO docs_fts (docs_fts) VALUES ('integrity-check')").run()).not.toThrow();
    live.close();
  });

  it('waits for a file another connection holds locked, keeping the event loop free, then replaces it whole', async () => {
    const dir = temp();
    const file = path.join(dir, 'g.db');
    const g = wal(file);
    g.exec("CREATE TABLE n (id TEXT PRIMARY KEY); INSERT INTO n VALUES ('old')");
    const copy = path.join(dir, 'copy.db');
    const c = new Database(copy);
    c.exec("CREATE TABLE n (id TEXT PRIMARY KEY); INSERT INTO n VALUES ('new1'), ('new2')");
    c.close();
    g.exec('BEGIN IMMEDIATE');
    let settled = false;
    const p = restoreFile(file, copy, Date.now() + 10_000).then(() => void (settled = true));
    let ticks = 0;
    for (let i = 0; i < 10; i++) {
      await new Promise((r) => setTimeout(r, 10));
      ticks++;
    }
    expect(ticks).toBe(10);
    expect(settled).toBe(false);
    g.exec('ROLLBACK');
    g.close();
    await p;
    expect(count(file, 'n')).toBe(2);
    expect(fs.existsSync(`${file}-wal`)).toBe(false);
    expect(fs.existsSync(`${file}.restoring`)).toBe(false);
  });

  it('gives up on a lock held past the deadline with UNAVAILABLE, changing nothing', async () => {
    const dir = temp();
    const file = path.join(dir, 'g.db');
    const g = wal(file);
    g.exec("CREATE TABLE n (id TEXT PRIMARY KEY); INSERT INTO n VALUES ('old')");
    g.exec('BEGIN IMMEDIATE');
    const copy = path.join(dir, 'copy.db');
    new Database(copy).exec('CREATE TABLE n (id TEXT PRIMARY KEY)');
    await expect(restoreFile(file, copy, Date.now() + 100)).rejects.toMatchObject({ code: 'UNAVAILABLE' });
    g.exec('ROLLBACK');
    expect(g.prepare('SELECT id FROM n').pluck().all()).toEqual(['old']);
    g.close();
  });

  it('replaces a directory whole, and removes one that did not exist at the save', async () => {
    const dir = temp();
    const live = path.join(dir, 'ws');
    const copy = path.join(dir, 'copy');
    fs.mkdirSync(path.join(copy, 's1'), { recursive: true });
    fs.writeFileSync(path.join(copy, 's1', 'f'), 'saved');
    fs.mkdirSync(path.join(live, 's2'), { recursive: true });
    fs.writeFileSync(path.join(live, 's2', 'f'), 'later');
    await restoreDir(live, copy);
    expect(fs.readdirSync(live)).toEqual(['s1']);
    expect(fs.readFileSync(path.join(live, 's1', 'f'), 'utf8')).toBe('saved');
    await restoreDir(live, null);
    expect(fs.existsSync(live)).toBe(false);
  });
});

describe('diff', () => {
  it('names exactly the keys added, removed and changed, composite keys as objects', () => {
    const dir = temp();
    const a = new Database(path.join(dir, 'a.db'));
    a.exec(`CREATE TABLE e (src TEXT, type TEXT, dst TEXT, props TEXT, PRIMARY KEY (src, type, dst));
            INSERT INTO e VALUES ('a', 'R', 'b', '{}'), ('b', 'R', 'c', '{}'), ('c', 'R', 'd', '{"w":1}')`);
    a.close();
    const b = new Database(path.join(dir, 'b.db'));
    b.exec(`CREATE TABLE e (src TEXT, type TEXT, dst TEXT, props TEXT, PRIMARY KEY (src, type, dst));
            INSERT INTO e VALUES ('a', 'R', 'b', '{}'), ('c', 'R', 'd', '{"w":2}'), ('d', 'S', 'a', '{}')`);
    b.close();
    const side = (f: string) => ({ db: null, files: { 'kg/kg': path.join(dir, f) } });
    const d = diffEntity(
      side('a.db'),
      side('b.db'),
      'kg',
      { file: 'kg', table: 'e', key: { from: 'src', type: 'type', to: 'dst' } },
      10,
    );
    expect(d).toEqual({
      plugin: 'kg',
      added: 1,
      removed: 1,
      changed: 1,
      truncated: false,
      ids: {
        added: [{ from: 'd', type: 'S', to: 'a' }],
        removed: [{ from: 'b', type: 'R', to: 'c' }],
        changed: [{ from: 'c', type: 'R', to: 'd' }],
      },
    });
    const capped = diffEntity(side('a.db'), side('b.db'), 'kg', { file: 'kg', table: 'e', key: 'src' }, 0);
    expect(capped).toMatchObject({ added: 1, removed: 1, changed: 1, truncated: true, ids: { added: [] } });
  });
});
