/**
 * The file work of full checkpoints, kept free of the daemon so it can be measured and tested alone:
 * a consistent cut of several SQLite files taken at one instant, copied online page by page; and
 * putting tables, files and directories back in transactions that a crash leaves whole or untouched.
 */
import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { DaemonError } from '../../daemon/plugin-api.js';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** A double-quoted SQL identifier. */
export const ident = (name: string): string => `"${name.replace(/"/g, '""')}"`;

/**
 * A read transaction open on each source: together they are one consistent cut, because they are all
 * opened in one synchronous block and every writer of these files runs on this same thread. The
 * daemon keeps writing while the copies are made: WAL readers keep their snapshot.
 */
export class Cut {
  private readonly readers: Array<{ db: Database.Database; dest: string }> = [];

  /** Open every source now (synchronously). A source that does not exist is skipped. */
  constructor(sources: Array<{ src: string; dest: string }>) {
    try {
      for (const s of sources) {
        if (!fs.existsSync(s.src)) continue;
        const db = new Database(s.src, { readonly: true, fileMustExist: true });
        this.readers.push({ db, dest: s.dest });
        db.exec('BEGIN');
        // The first read pins the snapshot.
        db.prepare('SELECT count(*) FROM sqlite_master').get();
      }
    } catch (e) {
      this.close();
      throw e;
    }
  }

  get copied(): string[] {
    return this.readers.map((r) => r.dest);
  }

  /** Copy each snapshot to its destination with SQLite's backup API, `pages` per event-loop turn. */
  async copy(pages: number): Promise<void> {
    for (const r of this.readers) {
      fs.mkdirSync(path.dirname(r.dest), { recursive: true, mode: 0o700 });
      await r.db.backup(r.dest, { progress: () => pages });
    }
  }

  close(): void {
    for (const r of this.readers) {
      try {
        if (r.db.inTransaction) r.db.exec('COMMIT');
        r.db.close();
      } catch {
        /* closing a reader cannot lose anything */
      }
    }
    this.readers.length = 0;
  }
}

/** A copy made by the backup API keeps the source's WAL mode; make it one self-contained, private file (synced by the caller). */
export function sealCopy(file: string): void {
  const db = new Database(file);
  try {
    db.pragma('journal_mode = DELETE');
  } finally {
    db.close();
  }
  fs.chmodSync(file, 0o600);
}

export function treeBytes(root: string): number {
  if (!fs.existsSync(root)) return 0;
  const st = fs.lstatSync(root);
  if (!st.isDirectory()) return st.size;
  let n = 0;
  for (const e of fs.readdirSync(root)) n += treeBytes(path.join(root, e));
  return n;
}

/** Copy a directory tree (modes kept, symlinks copied as links, never followed). */
export async function copyTree(src: string, dest: string): Promise<void> {
  await fs.promises.cp(src, dest, {
    recursive: true,
    verbatimSymlinks: true,
    preserveTimestamps: true,
    errorOnExist: false,
    force: true,
  });
}

const isBusy = (e: unknown): boolean => /^SQLITE_(BUSY|LOCKED)/.test((e as { code?: string }).code ?? '');

/**
 * Take the write lock without blocking the event loop: better-sqlite3 would wait for a busy lock
 * synchronously, which freezes the whole daemon; here each refusal yields and tries again.
 */
async function lock(db: Database.Database, deadline: number, what: string): Promise<void> {
  for (;;) {
    try {
      db.exec('BEGIN IMMEDIATE');
      return;
    } catch (e) {
      if (!isBusy(e)) throw e;
      if (Date.now() > deadline)
        throw new DaemonError('UNAVAILABLE', `${what} stayed locked by another process`, { file: db.name });
      await sleep(20);
    }
  }
}

const tablesOf = (db: Database.Database, schema: string): Array<{ name: string; sql: string }> =>
  db
    .prepare(
      `SELECT name, sql FROM ${schema}.sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name`,
    )
    .all() as Array<{ name: string; sql: string }>;

/** Each table emptied, then filled from the same table of `ck` (identical schema: SQLite copies the records as they are). */
function swapTables(db: Database.Database, tables: string[]): void {
  for (const t of tables) {
    db.exec(`DELETE FROM main.${ident(t)}`);
    db.exec(`INSERT INTO main.${ident(t)} SELECT * FROM ck.${ident(t)}`);
  }
}

function openForSwap(file: string, copy: string): Database.Database {
  // No busy handler: a lock is waited for in `lock`, off the event loop's back.
  const db = new Database(file, { timeout: 0 });
  db.pragma('synchronous = FULL');
  db.prepare('ATTACH DATABASE ? AS ck').run(copy);
  return db;
}

function finish(db: Database.Database): void {
  try {
    if (db.inTransaction) db.exec('ROLLBACK');
    db.exec('DETACH DATABASE ck');
  } catch {
    /* closing below releases everything */
  }
  db.close();
}

/**
 * Put `tables` of the shared database back from the copy, one table per transaction with a turn of the
 * event loop between them (the daemon answers meanwhile; the plugins owning these tables are stopped,
 * and a crash part-way is redone whole from the journal), then mark the journal.
 */
export async function restoreTables(
  dbFile: string,
  copy: string,
  tables: string[],
  mark: { sql: string; args: unknown[] },
  deadline: number,
): Promise<void> {
  const db = openForSwap(dbFile, copy);
  try {
    // A table that one side lacks (its plugin gone, or not yet installed at the save) is left alone.
    const live = new Set(tablesOf(db, 'main').map((t) => t.name));
    const saved = new Set(tablesOf(db, 'ck').map((t) => t.name));
    for (const t of tables.filter((x) => live.has(x) && saved.has(x))) {
      await lock(db, deadline, 'the database');
      swapTables(db, [t]);
      db.exec('COMMIT');
      await new Promise((r) => setImmediate(r));
    }
    await lock(db, deadline, 'the database');
    db.prepare(mark.sql).run(...mark.args);
    db.exec('COMMIT');
  } finally {
    finish(db);
  }
}

/**
 * Put a plugin's whole SQLite file back from its copy. Its plugin is stopped; the file is first
 * locked for writing (waited for without blocking the event loop) to be sure no other process is
 * writing it, then the copy is written beside it off the event loop and renamed over it, the old
 * file's WAL removed first so it can never be replayed onto the copy. A crash part-way leaves the
 * journal at "applying", and the next start does it again. Absent at the save: the file goes.
 */
export async function restoreFile(live: string, copy: string | null, deadline: number): Promise<void> {
  const sidecars = ['-wal', '-shm', '-journal'];
  if (copy === null) {
    for (const suffix of ['', ...sidecars]) fs.rmSync(live + suffix, { force: true });
    return;
  }
  if (fs.existsSync(live)) {
    const db = new Database(live, { timeout: 0 });
    try {
      await lock(db, deadline, live);
    } finally {
      if (db.inTransaction) db.exec('ROLLBACK');
      db.close();
    }
  }
  fs.mkdirSync(path.dirname(live), { recursive: true, mode: 0o700 });
  const tmp = `${live}.restoring`;
  await fs.promises.copyFile(copy, tmp);
  await fs.promises.chmod(tmp, 0o600);
  await fsyncAsync(tmp);
  for (const suffix of sidecars) fs.rmSync(live + suffix, { force: true });
  fs.renameSync(tmp, live);
  await fsyncAsync(path.dirname(live));
}

/** fsync on libuv's pool: a large file's flush does not hold the event loop. */
export async function fsyncAsync(p: string): Promise<void> {
  const fh = await fs.promises.open(p, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

/** fsyncAsync of every file and directory under `root`, and root itself. */
export async function fsyncTreeAsync(root: string): Promise<void> {
  if (!fs.existsSync(root)) return;
  const st = fs.lstatSync(root);
  if (st.isSymbolicLink()) return;
  if (st.isDirectory()) for (const e of fs.readdirSync(root)) await fsyncTreeAsync(path.join(root, e));
  await fsyncAsync(root);
}

/** Put a directory back whole from its copy (absent at the save: it goes). Redone from scratch after a crash. */
export async function restoreDir(live: string, copy: string | null): Promise<void> {
  const tmp = `${live}.restoring`;
  const old = `${live}.replaced`;
  fs.rmSync(tmp, { recursive: true, force: true });
  fs.rmSync(old, { recursive: true, force: true });
  if (copy !== null && fs.existsSync(copy)) await copyTree(copy, tmp);
  if (fs.existsSync(live)) fs.renameSync(live, old);
  if (fs.existsSync(tmp)) fs.renameSync(tmp, live);
  fs.rmSync(old, { recursive: true, force: true });
}

/** Differences in schema between a live file's tables and its copy's (empty: compatible). */
export function schemaDifferences(live: string, copy: string, tables?: string[]): string[] {
  if (!fs.existsSync(live) || !fs.existsSync(copy)) return [];
  const db = new Database(live, { readonly: true, fileMustExist: true });
  try {
    db.prepare('ATTACH DATABASE ? AS ck').run(copy);
    const a = new Map(tablesOf(db, 'main').map((t) => [t.name, t.sql]));
    const b = new Map(tablesOf(db, 'ck').map((t) => [t.name, t.sql]));
    if (!tables && a.size === 0) return []; // a fresh file takes the copy's schema
    const out: string[] = [];
    for (const name of tables ?? [...new Set([...a.keys(), ...b.keys()])]) {
      if (!b.has(name)) out.push(`${name}: not in the checkpoint`);
      else if (!a.has(name)) {
        if (!tables) out.push(`${name}: not in the live database`);
      } else if (a.get(name) !== b.get(name)) out.push(`${name}: its definition changed since the save`);
    }
    return out;
  } finally {
    db.close();
  }
}
