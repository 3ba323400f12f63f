/**
 * Group commit for the shared SQLite connection. Every durable write needs the disk to confirm it
 * (0.3-1 ms here); paid once per operation, on the event loop's thread, 50 concurrent calls queue
 * behind each other's disk flushes and nothing else runs meanwhile. Instead:
 *
 * - operations arriving in the same event-loop turn, from any plugin, share one transaction (each in
 *   its own savepoint, so one failing operation rolls back only itself);
 * - that transaction is committed without waiting for the disk (synchronous=NORMAL: WAL frames
 *   written, no fsync), and the WAL file is then fdatasync'ed on libuv's thread pool, one sync for
 *   every batch committed before it started, while the event loop goes on serving;
 * - a caller's promise settles only after that sync returned, so "acknowledged" still means "on disk".
 *
 * Syncing the WAL ourselves is what synchronous=FULL does at each commit; doing it after the commit
 * only moves the wait off the thread. It can never make the database inconsistent: it persists pages
 * the kernel could have written back at any moment anyway. Part of the kernel's persistence layer.
 */
import fs from 'node:fs';
import path from 'node:path';
import type Database from 'better-sqlite3';

interface Pending {
  op: () => unknown;
  durable: boolean;
  resolve: (v: unknown) => void;
  reject: (e: unknown) => void;
}

const shared = new WeakMap<Database.Database, GroupCommit>();

/** How long bookkeeping waits for a durable batch to ride on before it is committed by itself. */
const LATER_MS = 20;

export class GroupCommit {
  private pending: Pending[] = [];
  /** How the next commit is scheduled: at once (someone waits for it), or later (bookkeeping only). */
  private scheduled: 'immediate' | 'timer' | null = null;
  private timer: NodeJS.Timeout | null = null;
  private readonly wal: WalSync | null;
  /** Number of commits, operations and disk syncs, for health and benchmarks. */
  readonly stats = { commits: 0, ops: 0, syncs: 0 };

  /** The connection's one group commit: plugins sharing a database share its transactions and syncs. */
  static for(db: Database.Database): GroupCommit {
    let gc = shared.get(db);
    if (!gc) shared.set(db, (gc = new GroupCommit(db)));
    return gc;
  }

  constructor(private readonly db: Database.Database) {
    this.wal = WalSync.for(db);
  }

  /** Run `op` (synchronous, using the db) in the next shared transaction; resolves once it is on disk. */
  run<T>(op: () => T): Promise<T> {
    return this.enqueue(op, true);
  }

  /**
   * Run `op` in a coming shared transaction without asking for the disk: for bookkeeping whose loss on
   * power failure is harmless (recovery redoes it). It rides on the next durable batch, or is committed
   * on its own after LATER_MS if none comes; either way in order with everything queued around it.
   */
  later<T>(op: () => T): Promise<T> {
    return this.enqueue(op, false);
  }

  private enqueue<T>(op: () => T, durable: boolean): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      this.pending.push({ op, durable, resolve: resolve as (v: unknown) => void, reject });
      if (durable && this.scheduled !== 'immediate') {
        if (this.timer) clearTimeout(this.timer);
        this.timer = null;
        this.scheduled = 'immediate';
        setImmediate(() => this.commitPending(false));
      } else if (!this.scheduled) {
        this.scheduled = 'timer';
        this.timer = setTimeout(() => this.commitPending(false), LATER_MS);
      }
    });
  }

  /**
   * Commit what is pending now, durably before returning (used at stop, when nothing may wait on a
   * timer or a thread that will not run again).
   */
  flush(): void {
    this.commitPending(true);
  }

  private commitPending(syncNow: boolean): void {
    this.scheduled = null;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    const batch = this.pending;
    if (batch.length === 0) return;
    this.pending = [];
    const durable = batch.some((p) => p.durable);
    const outcomes: Array<{ ok: true; v: unknown } | { ok: false; e: unknown }> = [];
    const body = (): void => {
      // Alone in its batch, an operation needs no savepoint: the transaction is its rollback.
      if (batch.length === 1) {
        outcomes.push({ ok: true, v: batch[0]!.op() });
        return;
      }
      for (const p of batch) {
        try {
          outcomes.push({ ok: true, v: this.db.transaction(p.op)() });
        } catch (e) {
          outcomes.push({ ok: false, e });
        }
      }
    };
    try {
      // Off-thread sync when there is a WAL file to sync; otherwise the connection's own mode (FULL).
      if (this.wal && !syncNow) runLazy(this.db, body);
      else this.db.transaction(body)();
    } catch (e) {
      // The commit failed, or a lone operation threw (and took its transaction with it).
      for (const p of batch) p.reject(e);
      return;
    }
    this.stats.commits++;
    this.stats.ops += batch.length;
    const settle = (): void => batch.forEach((p, i) => {
      const o = outcomes[i]!;
      if (o.ok) p.resolve(o.v);
      else p.reject(o.e);
    });
    if (!durable || !this.wal || syncNow) {
      settle();
      return;
    }
    this.stats.syncs++;
    this.wal.sync().then(settle, (e: unknown) => {
      // Committed but not known to be on disk: nobody may be told it is.
      const err = new Error(`the database could not be synced to disk: ${(e as Error).message}`, { cause: e });
      for (const p of batch) p.reject(err);
    });
  }
}

/**
 * fdatasync of one database's WAL file, coalesced: a sync asked for while one is running waits for the
 * next one (the running one may have started before the caller's frames were written).
 */
class WalSync {
  private fd: number | null = null;
  private ino = -1;
  private checkedAt = 0;
  private dirSynced = false;
  private running: Promise<void> | null = null;
  private next: Promise<void> | null = null;

  /** Only for a file database in WAL mode; in-memory or rollback-journal databases sync in SQLite. */
  static for(db: Database.Database): WalSync | null {
    if (db.memory || !db.name) return null;
    const mode = String(db.pragma('journal_mode', { simple: true })).toLowerCase();
    if (mode !== 'wal') return null;
    let w = syncs.get(db);
    if (!w) syncs.set(db, (w = new WalSync(`${path.resolve(db.name)}-wal`)));
    return w;
  }

  private constructor(private readonly walPath: string) {}

  sync(): Promise<void> {
    if (!this.running) {
      this.running = this.once().finally(() => (this.running = null));
      return this.running;
    }
    this.next ??= this.running.then(
      () => ((this.next = null), this.sync()),
      () => ((this.next = null), this.sync()),
    );
    return this.next;
  }

  private async once(): Promise<void> {
    // SQLite keeps the WAL file (same inode) while the connection is open; should it ever be replaced,
    // the next check (at most a second later, before that sync) reopens it.
    const now = Date.now();
    if (this.fd === null || now - this.checkedAt >= 1000) {
      const ino = fs.statSync(this.walPath).ino;
      this.checkedAt = now;
      if (this.fd === null || ino !== this.ino) {
        if (this.fd !== null) fs.closeSync(this.fd);
        this.fd = fs.openSync(this.walPath, 'r');
        this.ino = ino;
      }
    }
    const fd = this.fd;
    await new Promise<void>((resolve, reject) => fs.fdatasync(fd, (e) => (e ? reject(e) : resolve())));
    if (!this.dirSynced) {
      // The WAL file's own directory entry, once: a file whose name is not on disk is not on disk.
      const dir = fs.openSync(path.dirname(this.walPath), 'r');
      try {
        await new Promise<void>((resolve, reject) => fs.fsync(dir, (e) => (e ? reject(e) : resolve())));
      } finally {
        fs.closeSync(dir);
      }
      this.dirSynced = true;
    }
  }
}

const syncs = new WeakMap<Database.Database, WalSync>();

/**
 * Run a write without waiting for the disk (synchronous=NORMAL for this one transaction). Only for
 * writes whose loss on power failure is harmless: in WAL mode the next durable commit on the connection
 * flushes these frames too, and a process crash (kill -9) never loses a committed transaction.
 */
export function runLazy<T>(db: Database.Database, op: () => T): T {
  let p = pragmas.get(db);
  if (!p) {
    // Prepared once per connection: parsing a PRAGMA on every write showed up in profiles.
    const full = db.pragma('synchronous', { simple: true }) as number;
    p = { full, normal: db.prepare('PRAGMA synchronous = NORMAL'), restore: db.prepare(`PRAGMA synchronous = ${full}`) };
    pragmas.set(db, p);
  }
  if (p.full <= 1) return db.transaction(op)();
  p.normal.run();
  try {
    return db.transaction(op)();
  } finally {
    p.restore.run();
  }
}

const pragmas = new WeakMap<Database.Database, { full: number; normal: Database.Statement; restore: Database.Statement }>();
