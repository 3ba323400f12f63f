/**
 * Group commit for the shared SQLite connection. Every durable write costs an fsync (0.3-1 ms here);
 * paid once per operation, 50 concurrent calls queue behind each other's disk flushes. Instead,
 * operations arriving in the same event-loop turn, from any plugin, share one transaction and one
 * fsync, each inside its own savepoint so one failing operation rolls back only itself. A caller's
 * promise settles only after the shared commit returned, so "acknowledged" still means "on disk".
 * Bookkeeping that may be lost on power failure (recovery redoes it) rides along for free.
 *
 * The fsync stays on the event loop's thread: handing it to libuv's pool was measured slower for a
 * waiting caller (two thread wake-ups cost more than the sync, here) and no faster when draining.
 * Part of the kernel's persistence layer.
 */
import { performance } from 'node:perf_hooks';
import type Database from 'better-sqlite3';

interface Pending {
  op: () => unknown;
  durable: boolean;
  resolve: (v: unknown) => void;
  reject: (e: unknown) => void;
}

const shared = new WeakMap<Database.Database, GroupCommit>();

/** Event-loop time spent committing (BEGIN, COMMIT and its fsync) by every group commit of the process, ms. */
let commitMsTotal = 0;

/**
 * Loop time the commits took, beyond the operations they ran: work shared by every request of a turn,
 * one commit whatever their number, so admission must not charge it to the requests that happened to
 * run before it (see daemon/admission.ts).
 */
export function sharedCommitMs(): number {
  return commitMsTotal;
}

/** How long bookkeeping waits for a durable batch to ride on before it is committed by itself. */
const LATER_MS = 20;

export class GroupCommit {
  private pending: Pending[] = [];
  /** How the next commit is scheduled: at once (someone waits for it), or later (bookkeeping only). */
  private scheduled: 'immediate' | 'timer' | null = null;
  private timer: NodeJS.Timeout | null = null;
  /** Number of commits and operations, for health and benchmarks. */
  readonly stats = { commits: 0, ops: 0 };

  /** The connection's one group commit: plugins sharing a database share its transactions and syncs. */
  static for(db: Database.Database): GroupCommit {
    let gc = shared.get(db);
    if (!gc) shared.set(db, (gc = new GroupCommit(db)));
    return gc;
  }

  /**
   * Made once: better-sqlite3 builds four wrapper functions per `db.transaction()` call, which cost
   * ~7 µs, about as much as the statement it would wrap. Called inside a transaction it is a savepoint.
   */
  private readonly atomic: (op: () => unknown) => unknown;

  constructor(private readonly db: Database.Database) {
    this.atomic = atomically(db);
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
        setImmediate(() => this.flush());
      } else if (!this.scheduled) {
        this.scheduled = 'timer';
        this.timer = setTimeout(() => this.flush(), LATER_MS);
      }
    });
  }

  /** Commit what is pending now (also used at stop, so nothing waits on a timer that will not fire). */
  flush(): void {
    this.scheduled = null;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    const batch = this.pending;
    if (batch.length === 0) return;
    this.pending = [];
    const durable = batch.some((p) => p.durable);
    const outcomes: Array<{ ok: true; v: unknown } | { ok: false; e: unknown }> = [];
    let opsMs = 0;
    const body = (): void => {
      const t = performance.now();
      try {
        // Alone in its batch, an operation needs no savepoint: the transaction is its rollback.
        if (batch.length === 1) {
          outcomes.push({ ok: true, v: batch[0]!.op() });
          return;
        }
        for (const p of batch) {
          try {
            outcomes.push({ ok: true, v: this.atomic(p.op) });
          } catch (e) {
            outcomes.push({ ok: false, e });
          }
        }
      } finally {
        opsMs = performance.now() - t;
      }
    };
    const t0 = performance.now();
    try {
      // The connection's own mode (FULL) when someone waits for the disk; NORMAL for bookkeeping only.
      if (durable) this.atomic(body);
      else runLazy(this.db, body);
    } catch (e) {
      // The commit failed, or a lone operation threw (and took its transaction with it).
      for (const p of batch) p.reject(e);
      return;
    }
    commitMsTotal += Math.max(0, performance.now() - t0 - opsMs);
    this.stats.commits++;
    this.stats.ops += batch.length;
    batch.forEach((p, i) => {
      const o = outcomes[i]!;
      if (o.ok) p.resolve(o.v);
      else p.reject(o.e);
    });
  }
}

/**
 * Run a write without waiting for the disk (synchronous=NORMAL for this one transaction). Only for
 * writes whose loss on power failure is harmless: in WAL mode the next durable commit on the connection
 * flushes these frames too, and a process crash (kill -9) never loses a committed transaction.
 */
export function runLazy<T>(db: Database.Database, op: () => T): T {
  let full = fullLevel.get(db);
  if (full === undefined) fullLevel.set(db, (full = db.pragma('synchronous', { simple: true }) as number));
  const atomic = atomically(db);
  if (full <= 1) return atomic(op) as T;
  // Executed afresh each time, not as a prepared statement: SQLite may apply a PRAGMA when it is
  // prepared rather than when it runs, so re-running a prepared one is not guaranteed to set anything.
  db.exec('PRAGMA synchronous = NORMAL');
  try {
    return atomic(op) as T;
  } finally {
    db.exec(`PRAGMA synchronous = ${full}`);
  }
}

/** Run `op` in a transaction, or in a savepoint when one is open: one wrapper per connection. */
function atomically(db: Database.Database): (op: () => unknown) => unknown {
  let run = runners.get(db);
  if (!run) runners.set(db, (run = db.transaction((op: () => unknown) => op())));
  return run;
}

const runners = new WeakMap<Database.Database, (op: () => unknown) => unknown>();

/** The connection's own synchronous level, read once. */
const fullLevel = new WeakMap<Database.Database, number>();
